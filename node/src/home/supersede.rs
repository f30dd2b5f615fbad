//! A superseded device erases what it holds (CLIENT.md §3.3).
//!
//! When this device learns, from a valid certificate of its own identity
//! with a higher serial, that it is no longer the identity's device, it
//! erases every message and prekey secret in one transaction and records
//! the certificate. From then on [`Home::open`] refuses the home.

use mayfly_protocol::DeviceCertificate;
use mayfly_protocol::codec::Codec;
use redb::{ReadableDatabase, ReadableTable};

use super::tables::{
    BROADCASTS, CHILDREN, EXPIRIES, INVITES, PREKEYS, RECEIVED, SENT, SLOTS, SUPERSEDED_KEY,
};
use super::{Home, HomeError, META};

/// What [`Home::supersede`] erased.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Superseded {
    /// The serial of the device that replaced this one.
    pub by_serial: u64,
    /// Received messages erased.
    pub received: usize,
    /// Sent messages erased.
    pub sent: usize,
    /// Secret slots wiped (content keys, revocation secrets, prekey
    /// secrets, invite tokens).
    pub secrets: usize,
}

impl Home {
    /// Erases this device's messages and secrets because `newer`, a
    /// certificate of this identity with a higher serial, replaced it.
    /// Fails with [`HomeError::Invalid`] (and changes nothing) unless
    /// `newer` is such a certificate.
    ///
    /// In one transaction: every received and sent record, the expiry and
    /// parent indexes, every prekey, every invite and every secret slot go,
    /// and `meta["superseded"]` records `newer`. The slots are wiped when
    /// it has committed (or, after a crash, by the next open).
    pub fn supersede(&self, newer: &DeviceCertificate) -> Result<Superseded, HomeError> {
        let own = self.device.certificate();
        newer.check_identity(&self.identity.public())?;
        if !newer.supersedes(own) {
            return Err(HomeError::Invalid(format!(
                "device #{} does not supersede this device #{}",
                newer.serial(),
                own.serial()
            )));
        }
        let bytes = newer.to_bytes();
        self.write(|tx| {
            let received = clear(&mut tx.txn.open_table(RECEIVED)?)?;
            let sent = clear(&mut tx.txn.open_table(SENT)?)?;
            clear(&mut tx.txn.open_table(PREKEYS)?)?;
            clear(&mut tx.txn.open_table(EXPIRIES)?)?;
            clear(&mut tx.txn.open_table(CHILDREN)?)?;
            clear(&mut tx.txn.open_table(INVITES)?)?;
            clear(&mut tx.txn.open_table(BROADCASTS)?)?;
            let names = {
                let t = tx.txn.open_table(SLOTS)?;
                let mut out = Vec::new();
                for row in t.iter()? {
                    out.push(*row?.0.value());
                }
                out
            };
            for name in &names {
                tx.drop_secret(name)?;
            }
            tx.txn
                .open_table(META)?
                .insert(SUPERSEDED_KEY, bytes.as_slice())?;
            Ok(Superseded {
                by_serial: newer.serial(),
                received,
                sent,
                secrets: names.len(),
            })
        })
    }

    /// The certificate that superseded this home's device, if one did.
    pub(super) fn superseded_by(
        db: &redb::Database,
    ) -> Result<Option<DeviceCertificate>, HomeError> {
        let txn = db.begin_read()?;
        let meta = txn.open_table(META)?;
        let Some(v) = meta.get(SUPERSEDED_KEY)? else {
            return Ok(None);
        };
        DeviceCertificate::decode(v.value())
            .map(Some)
            .map_err(|e| HomeError::corrupt(format!("meta[\"superseded\"] does not decode: {e}")))
    }
}

/// Removes every row of `table`; returns how many there were.
fn clear<K: redb::Key + 'static, V: redb::Value + 'static>(
    table: &mut redb::Table<'_, K, V>,
) -> Result<usize, HomeError> {
    let mut n = 0;
    table.retain(|_, _| {
        n += 1;
        false
    })?;
    Ok(n)
}
