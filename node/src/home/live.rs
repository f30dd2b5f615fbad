//! Live broadcasts: this identity's followers, and the broadcasts this
//! device was handed keys for (records in `broadcasts`, epoch keys in
//! slots of purpose 6). `spec/CLIENT.md` §4.6 and §4.7.

use mayfly_protocol::codec::{Reader, Writer};
use mayfly_protocol::limits::{MAX_LIVE_PEERS, MAX_LIVE_TTL_MS, MAX_RELAY_ADDR_LEN};
use mayfly_protocol::live::{BroadcastId, EpochKey, MAX_EPOCH_KEYS};
use mayfly_protocol::{LiveKeyGrant, SigningPublicKey, UnixMillis};
use redb::{ReadableDatabase, ReadableTable};

use super::slots::{Purpose, Tx, slot_name};
use super::tables::{BROADCASTS, FOLLOWERS};
use super::{Home, HomeError};

/// Version byte of a broadcast record.
const RECORD_V1: u8 = 1;

/// A live broadcast this device holds keys for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// The broadcast.
    pub id: BroadcastId,
    /// The broadcaster's identity key (the sender of its keys).
    pub broadcaster: SigningPublicKey,
    /// When it started (the broadcaster's clock).
    pub started_at: UnixMillis,
    /// Whether relays keep a replay.
    pub replay: bool,
    /// Where its overlay is joined (the newest key's list).
    pub peers: Vec<String>,
    /// The epochs whose keys are held, ascending.
    pub epochs: Vec<u32>,
    /// When its keys are erased: `MAX_LIVE_TTL_MS` after the newest key
    /// arrived.
    pub expires_at: UnixMillis,
}

impl Broadcast {
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_V1];
        out.put(&self.broadcaster.to_bytes());
        out.put_u64(self.started_at.0);
        out.put_u8(u8::from(self.replay));
        out.put_u64(self.expires_at.0);
        out.put_u8(self.epochs.len() as u8);
        for e in &self.epochs {
            out.put_u32(*e);
        }
        out.put_u8(self.peers.len() as u8);
        for p in &self.peers {
            out.put_string_u16(p);
        }
        out
    }

    fn decode(id: BroadcastId, bytes: &[u8]) -> Result<Self, HomeError> {
        let bad = |e: mayfly_protocol::DecodeError| HomeError::Corrupt(format!("broadcast: {e}"));
        let mut r = Reader::new(bytes);
        if r.u8().map_err(bad)? != RECORD_V1 {
            return Err(HomeError::Corrupt("broadcast record version".into()));
        }
        let broadcaster = SigningPublicKey::from_bytes(&r.array().map_err(bad)?)
            .map_err(|e| HomeError::Corrupt(format!("broadcast: {e}")))?;
        let started_at = UnixMillis(r.u64().map_err(bad)?);
        let replay = r.bool("replay").map_err(bad)?;
        let expires_at = UnixMillis(r.u64().map_err(bad)?);
        let n = usize::from(r.u8().map_err(bad)?);
        if n > MAX_EPOCH_KEYS {
            return Err(HomeError::Corrupt("broadcast epoch count".into()));
        }
        let epochs = (0..n)
            .map(|_| r.u32().map_err(bad))
            .collect::<Result<Vec<_>, _>>()?;
        let n = usize::from(r.u8().map_err(bad)?);
        if n > MAX_LIVE_PEERS {
            return Err(HomeError::Corrupt("broadcast peer count".into()));
        }
        let peers = (0..n)
            .map(|_| r.string_u16("peer", MAX_RELAY_ADDR_LEN).map_err(bad))
            .collect::<Result<Vec<_>, _>>()?;
        r.finish().map_err(bad)?;
        Ok(Self {
            id,
            broadcaster,
            started_at,
            replay,
            peers,
            epochs,
            expires_at,
        })
    }
}

/// The slot name of an epoch key.
fn key_slot(id: &BroadcastId, epoch: u32) -> [u8; 32] {
    let mut m = [0u8; 36];
    m[..32].copy_from_slice(&id.0);
    m[32..].copy_from_slice(&epoch.to_be_bytes());
    slot_name(Purpose::LiveKey, &m)
}

/// Erases every broadcast whose keys expired at `now`.
fn purge(tx: &mut Tx<'_>, now: UnixMillis) -> Result<usize, HomeError> {
    let mut gone = Vec::new();
    for row in tx.txn.open_table(BROADCASTS)?.iter()? {
        let (k, v) = row?;
        let b = Broadcast::decode(BroadcastId(*k.value()), v.value())?;
        if b.expires_at <= now {
            gone.push(b);
        }
    }
    for b in &gone {
        tx.txn.open_table(BROADCASTS)?.remove(&b.id.0)?;
        for e in &b.epochs {
            tx.drop_secret(&key_slot(&b.id, *e))?;
        }
    }
    Ok(gone.len())
}

impl Home {
    /// Records `identity` (a contact) as a follower; true if it was not one.
    pub fn add_follower(
        &self,
        identity: &SigningPublicKey,
        now: UnixMillis,
    ) -> Result<bool, HomeError> {
        if self.contact(identity)?.is_none() {
            return Err(HomeError::UnknownContact(hex::encode(identity.to_bytes())));
        }
        let key = identity.to_bytes();
        self.write(|tx| {
            let mut t = tx.txn.open_table(FOLLOWERS)?;
            if t.get(&key)?.is_some() {
                return Ok(false);
            }
            t.insert(&key, now.0)?;
            Ok(true)
        })
    }

    /// Removes a follower; true if it was one.
    pub fn remove_follower(&self, identity: &SigningPublicKey) -> Result<bool, HomeError> {
        let key = identity.to_bytes();
        self.write(|tx| Ok(tx.txn.open_table(FOLLOWERS)?.remove(&key)?.is_some()))
    }

    /// Every follower and since when it follows, oldest first.
    pub fn followers(&self) -> Result<Vec<(SigningPublicKey, UnixMillis)>, HomeError> {
        let txn = self.db.begin_read()?;
        let mut all = Vec::new();
        for row in txn.open_table(FOLLOWERS)?.iter()? {
            let (k, v) = row?;
            let id = SigningPublicKey::from_bytes(k.value())
                .map_err(|e| HomeError::Corrupt(format!("follower: {e}")))?;
            all.push((id, UnixMillis(v.value())));
        }
        all.sort_by_key(|(id, since)| (*since, id.to_bytes()));
        Ok(all)
    }

    /// Keeps the epoch key `grant` hands over, from `broadcaster` (the
    /// envelope's sender), until `MAX_LIVE_TTL_MS` after `now`. At most
    /// `MAX_EPOCH_KEYS` keys of one broadcast are kept, the oldest epochs
    /// erased first. Returns the broadcast and whether it is new here. A
    /// grant for a broadcast id another broadcaster's keys were stored
    /// under is refused. Expired broadcasts are erased on the way.
    pub fn store_live_key(
        &self,
        broadcaster: &SigningPublicKey,
        grant: &LiveKeyGrant,
        now: UnixMillis,
    ) -> Result<(Broadcast, bool), HomeError> {
        grant
            .check()
            .map_err(|e| HomeError::Invalid(e.to_string()))?;
        let id = grant.broadcast_id;
        self.write(|tx| {
            purge(tx, now)?;
            let old = tx
                .txn
                .open_table(BROADCASTS)?
                .get(&id.0)?
                .map(|v| Broadcast::decode(id, v.value()))
                .transpose()?;
            let is_new = old.is_none();
            let mut b = match old {
                Some(b) if b.broadcaster != *broadcaster => {
                    return Err(HomeError::Invalid(
                        "a live key for another broadcaster's broadcast".into(),
                    ));
                }
                Some(b) => b,
                None => Broadcast {
                    id,
                    broadcaster: *broadcaster,
                    started_at: grant.started_at,
                    replay: grant.replay,
                    peers: Vec::new(),
                    epochs: Vec::new(),
                    expires_at: now,
                },
            };
            b.peers.clone_from(&grant.peers);
            b.expires_at = b.expires_at.max(now.plus(MAX_LIVE_TTL_MS));
            if !b.epochs.contains(&grant.epoch) {
                tx.put_secret(
                    &key_slot(&id, grant.epoch),
                    &zeroize::Zeroizing::new(*grant.key.as_bytes()),
                )?;
                b.epochs.push(grant.epoch);
                b.epochs.sort_unstable();
                while b.epochs.len() > MAX_EPOCH_KEYS {
                    let oldest = b.epochs.remove(0);
                    tx.drop_secret(&key_slot(&id, oldest))?;
                }
            }
            tx.txn
                .open_table(BROADCASTS)?
                .insert(&id.0, b.encode().as_slice())?;
            Ok((b, is_new))
        })
    }

    /// Every broadcast held, newest start first.
    pub fn broadcasts(&self) -> Result<Vec<Broadcast>, HomeError> {
        let txn = self.db.begin_read()?;
        let mut all = Vec::new();
        for row in txn.open_table(BROADCASTS)?.iter()? {
            let (k, v) = row?;
            all.push(Broadcast::decode(BroadcastId(*k.value()), v.value())?);
        }
        all.sort_by_key(|b| std::cmp::Reverse((b.started_at, b.id.0)));
        Ok(all)
    }

    /// The broadcast whose hex id starts with `prefix` (at least 4
    /// characters; must match one).
    pub fn find_broadcast(&self, prefix: &str) -> Result<Broadcast, HomeError> {
        let prefix = prefix.to_ascii_lowercase();
        if prefix.len() < 4 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(HomeError::Invalid(format!(
                "{prefix:?}: a broadcast id is at least 4 hex characters"
            )));
        }
        let mut found: Vec<Broadcast> = self
            .broadcasts()?
            .into_iter()
            .filter(|b| hex::encode(b.id.0).starts_with(&prefix))
            .collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(HomeError::Invalid(format!(
                "no broadcast {prefix} (keys are kept for 24 h after they arrive)"
            ))),
            n => Err(HomeError::Invalid(format!(
                "{n} broadcasts start with {prefix}: give more characters"
            ))),
        }
    }

    /// The epoch keys held for broadcast `id`, by epoch.
    pub fn live_keys(&self, id: &BroadcastId) -> Result<Vec<(u32, EpochKey)>, HomeError> {
        let txn = self.db.begin_read()?;
        let Some(b) = txn
            .open_table(BROADCASTS)?
            .get(&id.0)?
            .map(|v| Broadcast::decode(*id, v.value()))
            .transpose()?
        else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for e in b.epochs {
            if let Some(k) = self.slots.read(&self.db, &key_slot(id, e))? {
                out.push((e, EpochKey::from_bytes(*k)));
            }
        }
        Ok(out)
    }

    /// Erases every broadcast whose keys expired at `now`; returns how many.
    pub fn erase_expired_broadcasts(&self, now: UnixMillis) -> Result<usize, HomeError> {
        self.write(|tx| purge(tx, now))
    }

    /// Erases broadcast `id` and every epoch key of it held here, at once
    /// (its broadcaster revoked it). Returns whether it was held.
    pub fn erase_broadcast(&self, id: &BroadcastId) -> Result<bool, HomeError> {
        self.write(|tx| {
            let Some(b) = tx
                .txn
                .open_table(BROADCASTS)?
                .remove(&id.0)?
                .map(|v| Broadcast::decode(*id, v.value()))
                .transpose()?
            else {
                return Ok(false);
            };
            for e in &b.epochs {
                tx.drop_secret(&key_slot(&b.id, *e))?;
            }
            Ok(true)
        })
    }
}
