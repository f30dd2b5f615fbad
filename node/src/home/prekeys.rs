//! The device's prekeys: public parts in the `prekeys` table, tagged with
//! the device serial; secrets in `secrets.slots`.

use std::collections::BTreeSet;

use mayfly_protocol::codec::{Reader, Writer};
use mayfly_protocol::prekey::{OneTimePrekeySecret, PrekeySnapshot, SignedPrekeySecret};
use mayfly_protocol::{Codec, Device, DhPublicKey, DhSecret, Prekey, PrekeyStore, UnixMillis};
use redb::{ReadableDatabase, ReadableTable};

use super::slots::{Purpose, Tx, slot_name};
use super::tables::PREKEYS;
use super::{Home, HomeError};

const V1: u8 = 1;
const CURRENT: u8 = 1;
const RETIRED: u8 = 2;
const ONE_TIME: u8 = 3;

/// A decoded `prekeys` row.
struct Row {
    serial: u64,
    role: u8,
    created_at: UnixMillis,
    prekey: Option<Prekey>,
}

fn encode(serial: u64, role: u8, created_at: UnixMillis, prekey: Option<&Prekey>) -> Vec<u8> {
    let mut out = vec![V1];
    out.put_u64(serial);
    out.put_u8(role);
    out.put_u64(created_at.0);
    if let Some(p) = prekey {
        p.encode(&mut out);
    }
    out
}

fn decode(bytes: &[u8]) -> Result<Row, HomeError> {
    let mut r = Reader::new(bytes);
    if r.u8()? != V1 {
        return Err(HomeError::corrupt("prekey record version"));
    }
    let serial = r.u64()?;
    let role = r.u8()?;
    let created_at = UnixMillis(r.u64()?);
    let prekey = match role {
        CURRENT | RETIRED => Some(Prekey::read(&mut r)?),
        ONE_TIME => None,
        _ => return Err(HomeError::corrupt("prekey record role")),
    };
    r.finish()?;
    Ok(Row {
        serial,
        role,
        created_at,
        prekey,
    })
}

fn name(public: &DhPublicKey) -> [u8; 32] {
    slot_name(Purpose::Prekey, public.as_bytes())
}

/// Makes the rows and slots of device `serial` match `snap`: new secrets
/// are written, rows no longer in it are deleted and their slots dropped.
pub(super) fn save(tx: &mut Tx<'_>, serial: u64, snap: &PrekeySnapshot) -> Result<(), HomeError> {
    let mut keep = BTreeSet::new();
    let mut rows = Vec::new();
    let mut signed = |s: &SignedPrekeySecret, role| {
        keep.insert(s.prekey.public());
        rows.push((
            s.prekey.public(),
            s.secret.clone(),
            encode(serial, role, s.prekey.created_at(), Some(&s.prekey)),
        ));
    };
    signed(&snap.current, CURRENT);
    for s in &snap.retired {
        signed(s, RETIRED);
    }
    for o in &snap.one_time {
        keep.insert(o.public);
        rows.push((
            o.public,
            o.secret.clone(),
            encode(serial, ONE_TIME, o.created_at, None),
        ));
    }
    let mut gone = Vec::new();
    for row in tx.txn.open_table(PREKEYS)?.iter()? {
        let (k, v) = row?;
        let public = DhPublicKey::from_bytes(k.value())?;
        if decode(v.value())?.serial == serial && !keep.contains(&public) {
            gone.push(public);
        }
    }
    for public in &gone {
        tx.txn.open_table(PREKEYS)?.remove(public.as_bytes())?;
        tx.drop_secret(&name(public))?;
    }
    for (public, secret, record) in &rows {
        tx.put_secret(&name(public), secret.as_bytes())?;
        tx.txn
            .open_table(PREKEYS)?
            .insert(public.as_bytes(), record.as_slice())?;
    }
    Ok(())
}

/// Deletes the prekeys of every device but `serial` and drops their secrets.
pub(super) fn purge_others(tx: &mut Tx<'_>, serial: u64) -> Result<(), HomeError> {
    let mut gone = Vec::new();
    for row in tx.txn.open_table(PREKEYS)?.iter()? {
        let (k, v) = row?;
        if decode(v.value())?.serial != serial {
            gone.push(*k.value());
        }
    }
    for public in &gone {
        tx.txn.open_table(PREKEYS)?.remove(public)?;
        tx.drop_secret(&slot_name(Purpose::Prekey, public))?;
    }
    Ok(())
}

/// Reads device `serial`'s prekeys and their secrets.
fn load(tx: &Tx<'_>, serial: u64) -> Result<PrekeySnapshot, HomeError> {
    let mut current = None;
    let mut retired = Vec::new();
    let mut one_time = Vec::new();
    for row in tx.txn.open_table(PREKEYS)?.iter()? {
        let (k, v) = row?;
        let row = decode(v.value())?;
        if row.serial != serial {
            continue;
        }
        let public = DhPublicKey::from_bytes(k.value())?;
        let secret = tx
            .secret(&name(&public))?
            .ok_or_else(|| HomeError::corrupt("a prekey secret is missing"))?;
        let secret = DhSecret::from_bytes(*secret);
        match (row.role, row.prekey) {
            (ONE_TIME, _) => one_time.push(OneTimePrekeySecret {
                public,
                secret,
                created_at: row.created_at,
            }),
            (role, Some(prekey)) => {
                let s = SignedPrekeySecret { prekey, secret };
                if role == CURRENT {
                    if current.replace(s).is_some() {
                        return Err(HomeError::corrupt("two current signed prekeys"));
                    }
                } else {
                    retired.push(s);
                }
            }
            _ => {
                return Err(HomeError::corrupt(
                    "a signed prekey record without its prekey",
                ));
            }
        }
    }
    retired.sort_by_key(|s| s.prekey.created_at());
    Ok(PrekeySnapshot {
        current: current.ok_or_else(|| HomeError::corrupt("no current signed prekey"))?,
        retired,
        one_time,
    })
}

impl Home {
    /// Runs `f` on the device's prekey store and saves what it did: secrets
    /// it created are written to slots before the transaction commits;
    /// secrets it took or erased are wiped after it commits.
    pub fn with_prekeys<T>(
        &self,
        f: impl FnOnce(&mut PrekeyStore, &Device) -> T,
    ) -> Result<T, HomeError> {
        let device = &self.device;
        let serial = device.certificate().serial();
        self.write(|tx| {
            let snap = load(tx, serial)?;
            let mut store = PrekeyStore::restore(device, snap)
                .map_err(|e| HomeError::corrupt(format!("the stored prekeys: {e}")))?;
            let out = f(&mut store, device);
            save(tx, serial, &store.snapshot())?;
            Ok(out)
        })
    }

    /// The current signed prekey (public), from the table.
    pub(super) fn current_signed_prekey(&self) -> Result<Prekey, HomeError> {
        let serial = self.device.certificate().serial();
        let txn = self.db.begin_read()?;
        for row in txn.open_table(PREKEYS)?.iter()? {
            let (_, v) = row?;
            let row = decode(v.value())?;
            if row.serial == serial && row.role == CURRENT {
                return row.prekey.ok_or_else(|| {
                    HomeError::corrupt("a signed prekey record without its prekey")
                });
            }
        }
        Err(HomeError::corrupt("no current signed prekey"))
    }
}
