//! Invite tokens (secret, in slots; expiry in the `invites` table) and
//! relay cursors.

use mayfly_protocol::UnixMillis;
use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use redb::{ReadableDatabase, ReadableTable};

use super::slots::{Purpose, Tx, slot_name};
use super::tables::{CURSORS, INVITES};
use super::{Home, HomeError};

/// How long an invite token can be taken: 7 days.
pub const INVITE_TTL_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// Deletes every invite expired at `now` and drops its token.
fn purge(tx: &mut Tx<'_>, now: UnixMillis) -> Result<(), HomeError> {
    let mut gone = Vec::new();
    for row in tx.txn.open_table(INVITES)?.iter()? {
        let (k, v) = row?;
        if v.value() <= now.0 {
            gone.push(*k.value());
        }
    }
    for name in &gone {
        tx.txn.open_table(INVITES)?.remove(name)?;
        tx.drop_secret(name)?;
    }
    Ok(())
}

impl Home {
    /// A new random 16-byte invite token, valid for [`INVITE_TTL_MS`].
    /// Expired tokens are erased on the way.
    pub fn new_invite_token(
        &self,
        now: UnixMillis,
        rng: &mut ChaCha20Rng,
    ) -> Result<[u8; 16], HomeError> {
        let mut token = [0u8; 16];
        rng.fill_bytes(&mut token);
        let name = slot_name(Purpose::Invite, &token);
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        secret[..16].copy_from_slice(&token);
        self.write(|tx| {
            purge(tx, now)?;
            tx.put_secret(&name, &secret)?;
            tx.txn
                .open_table(INVITES)?
                .insert(&name, now.plus(INVITE_TTL_MS).0)?;
            Ok(())
        })?;
        Ok(token)
    }

    /// Takes `token`: true the first time, if it was issued here and has
    /// not expired at `now`; its slot is wiped either way. Expired tokens
    /// are erased on the way.
    pub fn take_invite_token(&self, token: &[u8; 16], now: UnixMillis) -> Result<bool, HomeError> {
        let name = slot_name(Purpose::Invite, token);
        self.write(|tx| {
            let expires = tx
                .txn
                .open_table(INVITES)?
                .remove(&name)?
                .map(|v| v.value());
            let ok = match expires {
                Some(e) => {
                    tx.drop_secret(&name)?;
                    e > now.0
                }
                None => false,
            };
            purge(tx, now)?;
            Ok(ok)
        })
    }

    /// The last mailbox sequence number fetched from `relay` (0 if none).
    pub fn cursor(&self, relay: &str) -> Result<u64, HomeError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(CURSORS)?;
        let v = t.get(relay)?.map(|v| v.value()).unwrap_or(0);
        Ok(v)
    }

    /// Saves the last mailbox sequence number fetched from `relay`.
    pub fn set_cursor(&self, relay: &str, seq: u64) -> Result<(), HomeError> {
        self.write(|tx| {
            tx.txn.open_table(CURSORS)?.insert(relay, seq)?;
            Ok(())
        })
    }
}
