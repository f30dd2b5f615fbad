//! Live replays (RELAY.md §5.7, §7): the sealed segments of broadcasts
//! whose broadcasters asked relays to keep them, each until 24 hours after
//! it was produced, or until its broadcaster deletes the replay.
//!
//! A replay lives in `replay.redb` beside the relay's database, keyed by
//! its broadcaster's identity and its broadcast id, so one identity can
//! neither fill nor delete another's replay. Each segment is stored in its
//! pieces (`mayfly_protocol::mailbox::replay`), each piece sealed under a
//! random data key of the segment that lives only in `replay.slots`, the
//! same in-place slot file as the clips' `keys.slots`: when a segment goes,
//! its rows are deleted, the transaction commits, and then its slot is
//! overwritten, so what lingers in freed database pages cannot be opened
//! (the erasure argument of `super`'s documentation, segment by segment).
//!
//! Every operation is one write transaction committed durably; the time is
//! passed in; each limit ([`super::StoreLimits`]'s `replay_*`) is checked
//! before anything is written.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use mayfly_protocol::codec::Codec;
use mayfly_protocol::live::chat::ChatMessage;
use mayfly_protocol::live::{BroadcastId, Segment};
use mayfly_protocol::mailbox::replay::{Piece, ReplayEntry, SegmentHead, piece_count, piece_len};
use mayfly_protocol::{MAX_CLOCK_SKEW_MS, MAX_LIVE_TTL_MS, SigningPublicKey, UnixMillis};
use rand_chacha::ChaCha20Rng;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::StoreError;
use super::crypt::DataKey;
use super::keyfile::KeyFile;
use super::limits::StoreLimits;

/// Name of the replay database in the store directory.
pub const REPLAY_DB_FILE_NAME: &str = "replay.redb";
/// Name of the replay key slots in the store directory.
pub const REPLAY_SLOT_FILE_NAME: &str = "replay.slots";
/// First 16 bytes of `replay.slots`.
pub const REPLAY_SLOT_FILE_MAGIC: [u8; 16] = *b"mayfly replay v1";
/// BLAKE3 `derive_key` context of a segment's slot name.
pub const REPLAY_SLOT_CONTEXT: &str = "mayfly relay replay segment slot v1";

/// A replay: its broadcaster's identity key ‖ its broadcast id.
type Rk = [u8; 64];
type K64 = &'static [u8; 64];

/// Replay → (segments, bytes) stored.
const REPLAYS: TableDefinition<K64, (u64, u64)> = TableDefinition::new("replays");
/// (replay, seq) → [`SegmentRecord`].
const SEGMENTS: TableDefinition<(K64, u64), &[u8]> = TableDefinition::new("replay_segments");
/// (replay, seq, index) → the piece sealed under the segment's data key.
const PIECES: TableDefinition<(K64, u64, u16), &[u8]> = TableDefinition::new("replay_pieces");
/// (expires_at, replay, seq): the collector's queue.
const EXPIRIES: TableDefinition<(u64, K64, u64), ()> = TableDefinition::new("replay_expiries");
/// Replay → keep_until: deleted by its broadcaster; refused until then.
const TOMBSTONES: TableDefinition<K64, u64> = TableDefinition::new("replay_tombstones");
/// (keep_until, replay): the tombstone collector's queue.
const TOMBSTONE_EXPIRIES: TableDefinition<(u64, K64), ()> =
    TableDefinition::new("replay_tombstone_expiries");
/// (replay, n) → a replay viewer's join (a chat message, LIVE.md §12.2),
/// numbered from 0 in the order they came.
const WATCHES: TableDefinition<(K64, u32), &[u8]> = TableDefinition::new("replay_watches");
/// (replay, BLAKE3 of a join) → its number: each join is kept once.
const WATCH_HASHES: TableDefinition<(K64, &[u8; 32]), u32> =
    TableDefinition::new("replay_watch_hashes");
/// Replay → joins kept.
const WATCH_COUNTS: TableDefinition<K64, u32> = TableDefinition::new("replay_watch_counts");
/// Broadcaster identity → (bytes, replays and tombstones) it holds.
const OWNERS: TableDefinition<&[u8; 32], (u64, u64)> = TableDefinition::new("replay_owners");
/// Name → counter.
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("replay_counters");
/// Counter: bytes of all segments held.
const TOTAL_BYTES: &str = "bytes";

/// Table name in a sealed piece's associated data.
const T_PIECES: &str = "replay_pieces";

/// The replay key of `broadcaster`'s broadcast `id`.
fn replay_key(broadcaster: &SigningPublicKey, id: &BroadcastId) -> Rk {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(&broadcaster.to_bytes());
    k[32..].copy_from_slice(&id.0);
    k
}

/// The name a segment's slot holds: `derive_key(REPLAY_SLOT_CONTEXT, replay ‖ seq)`.
fn slot_name(rk: &Rk, seq: u64) -> [u8; 32] {
    let mut m = [0u8; 72];
    m[..64].copy_from_slice(rk);
    m[64..].copy_from_slice(&seq.to_be_bytes());
    blake3::derive_key(REPLAY_SLOT_CONTEXT, &m)
}

/// The row key in a sealed piece's associated data: replay ‖ seq ‖ index.
fn piece_aad_key(rk: &Rk, seq: u64, index: u16) -> [u8; 74] {
    let mut k = [0u8; 74];
    k[..64].copy_from_slice(rk);
    k[64..72].copy_from_slice(&seq.to_be_bytes());
    k[72..].copy_from_slice(&index.to_be_bytes());
    k
}

/// A stored segment: `segment_len u32 ‖ held u16 ‖ complete u8 ‖
/// produced_at u64 ‖ slot u32`.
#[derive(Debug, Clone, Copy)]
struct SegmentRecord {
    segment_len: u32,
    held: u16,
    complete: bool,
    produced_at: u64,
    slot: u32,
}

impl SegmentRecord {
    const LEN: usize = 19;

    fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..4].copy_from_slice(&self.segment_len.to_be_bytes());
        b[4..6].copy_from_slice(&self.held.to_be_bytes());
        b[6] = u8::from(self.complete);
        b[7..15].copy_from_slice(&self.produced_at.to_be_bytes());
        b[15..].copy_from_slice(&self.slot.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Self, StoreError> {
        if b.len() != Self::LEN || b[6] > 1 {
            return Err(StoreError::corrupt("a replay segment record"));
        }
        let be = |r: std::ops::Range<usize>| -> u64 {
            b[r].iter().fold(0u64, |a, &x| (a << 8) | u64::from(x))
        };
        Ok(Self {
            segment_len: be(0..4) as u32,
            held: be(4..6) as u16,
            complete: b[6] == 1,
            produced_at: be(7..15),
            slot: be(15..19) as u32,
        })
    }

    fn expires_at(&self) -> u64 {
        self.produced_at.saturating_add(MAX_LIVE_TTL_MS)
    }
}

/// What one [`ReplayStore::collect`] call deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayCollected {
    /// Segments past their 24 hours.
    pub segments: u64,
    /// Tombstones past their `keep_until`.
    pub tombstones: u64,
    /// True if a batch limit was reached: call again.
    pub more: bool,
}

/// Counts for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Replays held.
    pub replays: u64,
    /// Segments held, complete or not.
    pub segments: u64,
    /// Bytes of those segments.
    pub bytes: u64,
}

/// The replays of a relay. Reads run concurrently; writes are serialized.
#[derive(Debug)]
pub struct ReplayStore {
    db: Database,
    keys: KeyFile,
    writer: Mutex<Writer>,
    limits: StoreLimits,
}

struct Writer {
    rng: ChaCha20Rng,
    /// Free slots below `slots`, lowest last.
    free: Vec<u32>,
    slots: u32,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("free", &self.free.len())
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

/// The tables of one write transaction.
struct Tables<'t> {
    replays: redb::Table<'t, K64, (u64, u64)>,
    segments: redb::Table<'t, (K64, u64), &'static [u8]>,
    pieces: redb::Table<'t, (K64, u64, u16), &'static [u8]>,
    expiries: redb::Table<'t, (u64, K64, u64), ()>,
    tombstones: redb::Table<'t, K64, u64>,
    tombstone_expiries: redb::Table<'t, (u64, K64), ()>,
    owners: redb::Table<'t, &'static [u8; 32], (u64, u64)>,
    counters: redb::Table<'t, &'static str, u64>,
    watches: redb::Table<'t, (K64, u32), &'static [u8]>,
    watch_hashes: redb::Table<'t, (K64, &'static [u8; 32]), u32>,
    watch_counts: redb::Table<'t, K64, u32>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            replays: txn.open_table(REPLAYS)?,
            segments: txn.open_table(SEGMENTS)?,
            pieces: txn.open_table(PIECES)?,
            expiries: txn.open_table(EXPIRIES)?,
            tombstones: txn.open_table(TOMBSTONES)?,
            tombstone_expiries: txn.open_table(TOMBSTONE_EXPIRIES)?,
            owners: txn.open_table(OWNERS)?,
            counters: txn.open_table(COUNTERS)?,
            watches: txn.open_table(WATCHES)?,
            watch_hashes: txn.open_table(WATCH_HASHES)?,
            watch_counts: txn.open_table(WATCH_COUNTS)?,
        })
    }

    fn owner(&self, identity: &[u8; 32]) -> Result<(u64, u64), StoreError> {
        Ok(self.owners.get(identity)?.map_or((0, 0), |g| g.value()))
    }

    /// Adds to the broadcaster's (bytes, replays), dropping its row at zero.
    fn charge_owner(
        &mut self,
        identity: &[u8; 32],
        bytes: i128,
        replays: i128,
    ) -> Result<(), StoreError> {
        let (b, r) = self.owner(identity)?;
        let b = u64::try_from(i128::from(b) + bytes)
            .map_err(|_| StoreError::corrupt("replay owner bytes"))?;
        let r = u64::try_from(i128::from(r) + replays)
            .map_err(|_| StoreError::corrupt("replay owner count"))?;
        if b == 0 && r == 0 {
            self.owners.remove(identity)?;
        } else {
            self.owners.insert(identity, (b, r))?;
        }
        Ok(())
    }

    fn total(&self) -> Result<u64, StoreError> {
        Ok(self.counters.get(TOTAL_BYTES)?.map_or(0, |g| g.value()))
    }

    fn add_total(&mut self, delta: i128) -> Result<(), StoreError> {
        let v = u64::try_from(i128::from(self.total()?) + delta)
            .map_err(|_| StoreError::corrupt("replay byte counter"))?;
        self.counters.insert(TOTAL_BYTES, v)?;
        Ok(())
    }

    fn segment(&self, rk: &Rk, seq: u64) -> Result<Option<SegmentRecord>, StoreError> {
        self.segments
            .get((rk, seq))?
            .map(|g| SegmentRecord::decode(g.value()))
            .transpose()
    }

    /// Deletes a segment's rows and gives back what it charged; the replay
    /// goes with its last segment. Returns the slot to wipe after commit.
    fn erase_segment(&mut self, rk: &Rk, seq: u64, rec: &SegmentRecord) -> Result<u32, StoreError> {
        self.segments.remove((rk, seq))?;
        for index in 0..piece_count(rec.segment_len) {
            self.pieces.remove((rk, seq, index))?;
        }
        self.expiries.remove((rec.expires_at(), rk, seq))?;
        let len = i128::from(rec.segment_len);
        let owner: [u8; 32] = rk[..32].try_into().expect("32 bytes");
        let (segments, bytes) = self.replays.get(rk)?.map_or((0, 0), |g| g.value());
        let gone = segments <= 1;
        if gone {
            self.replays.remove(rk)?;
            self.erase_watches(rk)?;
        } else {
            self.replays.insert(
                rk,
                (segments - 1, bytes.saturating_sub(rec.segment_len.into())),
            )?;
        }
        self.charge_owner(&owner, -len, if gone { -1 } else { 0 })?;
        self.add_total(-len)?;
        Ok(rec.slot)
    }
}

impl Tables<'_> {
    /// Deletes the joins kept with a replay (it is gone).
    fn erase_watches(&mut self, rk: &Rk) -> Result<(), StoreError> {
        if self.watch_counts.remove(rk)?.is_none() {
            return Ok(());
        }
        self.watches
            .retain_in((rk, 0)..=(rk, u32::MAX), |_, _| false)?;
        let (lo, hi) = ([0u8; 32], [0xffu8; 32]);
        self.watch_hashes
            .retain_in((rk, &lo)..=(rk, &hi), |_, _| false)?;
        Ok(())
    }
}

impl ReplayStore {
    /// Opens the replays in `dir` (created if missing), wiping the slots no
    /// segment refers to and deleting segments whose slot is gone (an
    /// interrupted write or deletion).
    pub fn open(dir: &Path, limits: StoreLimits, rng: ChaCha20Rng) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let (keys, slots) =
            KeyFile::open_named(dir, REPLAY_SLOT_FILE_NAME, &REPLAY_SLOT_FILE_MAGIC)?;
        let db = Database::builder()
            .set_cache_size(16 << 20)
            .create(dir.join(REPLAY_DB_FILE_NAME))?;
        {
            let txn = db.begin_write()?;
            Tables::open(&txn)?;
            txn.commit()?;
        }
        let mut store = Self {
            db,
            keys,
            writer: Mutex::new(Writer {
                rng,
                free: Vec::new(),
                slots,
            }),
            limits,
        };
        store.reconcile(slots)?;
        Ok(store)
    }

    fn reconcile(&mut self, slots: u32) -> Result<(), StoreError> {
        let mut used = vec![false; slots as usize];
        let mut lost = Vec::new();
        {
            let txn = self.db.begin_read()?;
            let segments = txn.open_table(SEGMENTS)?;
            for row in segments.iter()? {
                let (k, v) = row?;
                let (rk, seq) = (*k.value().0, k.value().1);
                let rec = SegmentRecord::decode(v.value())?;
                let ok = (rec.slot as usize) < used.len()
                    && self
                        .keys
                        .secret_for(rec.slot, &slot_name(&rk, seq))?
                        .is_some();
                if ok {
                    used[rec.slot as usize] = true;
                } else {
                    lost.push((rk, seq, rec));
                }
            }
        }
        let mut orphans = Vec::new();
        self.keys.scan(slots, |u| {
            if !used[u.slot as usize] {
                orphans.push(u.slot);
            }
            Ok(())
        })?;
        if !orphans.is_empty() {
            tracing::info!(slots = orphans.len(), "wiping orphaned replay key slots");
            self.keys.wipe(&orphans)?;
        }
        if !lost.is_empty() {
            tracing::warn!(
                segments = lost.len(),
                "deleting replay segments whose key is missing"
            );
            let txn = self.db.begin_write()?;
            {
                let mut t = Tables::open(&txn)?;
                for (rk, seq, rec) in &lost {
                    t.erase_segment(rk, *seq, rec)?;
                }
            }
            txn.commit()?;
        }
        let len = used.iter().rposition(|&u| u).map_or(0, |i| i + 1);
        if (len as u32) < slots {
            self.keys.truncate(len as u32)?;
        }
        let w = self.writer.get_mut().unwrap_or_else(|e| e.into_inner());
        w.slots = len as u32;
        w.free = (0..len as u32)
            .rev()
            .filter(|&s| !used[s as usize])
            .collect();
        Ok(())
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A panic while it was held leaves at worst an orphaned slot, which
        // the next open wipes.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn alloc_slot(&self, w: &mut Writer, name: &[u8; 32]) -> Result<(u32, DataKey), StoreError> {
        let slot = match w.free.pop() {
            Some(s) => s,
            None => {
                if w.slots >= self.limits.max_replay_segments {
                    return Err(StoreError::QuotaExceeded("replay segments"));
                }
                w.slots += 1;
                w.slots - 1
            }
        };
        let key = DataKey::generate(&mut w.rng);
        if let Err(e) = self.keys.store(slot, name, &key) {
            let _ = self.keys.wipe(&[slot]);
            w.free.push(slot);
            return Err(e);
        }
        Ok((slot, key))
    }

    /// Wipes the slots of segments a committed transaction deleted.
    fn release(&self, w: &mut Writer, slots: &[u32]) -> Result<(), StoreError> {
        self.keys.wipe(slots)?;
        w.free.extend_from_slice(slots);
        Ok(())
    }

    fn key(&self, rk: &Rk, seq: u64, slot: u32) -> Result<Option<DataKey>, StoreError> {
        Ok(self
            .keys
            .secret_for(slot, &slot_name(rk, seq))?
            .map(|k| DataKey::from_bytes(&k)))
    }

    /// Stores piece `piece` of segment `seq` of `broadcaster`'s broadcast
    /// `id` (RELAY.md §5.7). Returns true if this piece completed the
    /// segment, which was then checked whole. A piece already held is
    /// accepted again and changes nothing.
    pub fn put(
        &self,
        broadcaster: &SigningPublicKey,
        id: &BroadcastId,
        seq: u64,
        piece: &Piece,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        let rk = replay_key(broadcaster, id);
        let owner = broadcaster.to_bytes();
        let mut w = self.writer();
        let txn = self.db.begin_write()?;
        let mut wipe = Vec::new();
        let result = {
            let mut t = Tables::open(&txn)?;
            if t.tombstones.get(&rk)?.is_some() {
                return Err(StoreError::Revoked);
            }
            let rec = match t.segment(&rk, seq)? {
                Some(rec) if rec.segment_len != piece.segment_len => {
                    return Err(StoreError::Conflict("another length for this segment"));
                }
                Some(rec) => rec,
                None if piece.index != 0 => {
                    return Err(StoreError::NotFound(
                        "the segment: its first piece comes first",
                    ));
                }
                None => {
                    let head = SegmentHead::read(&piece.bytes)
                        .map_err(|_| StoreError::Invalid("the segment's head does not decode"))?;
                    if head.broadcast_id != *id
                        || head.seq != seq
                        || head.segment_len != piece.segment_len
                    {
                        return Err(StoreError::Invalid(
                            "the segment's head is not this piece's",
                        ));
                    }
                    if head.certificate.identity_key() != *broadcaster {
                        return Err(StoreError::Forbidden("the segment is another identity's"));
                    }
                    if head.produced_at.0 > now.0.saturating_add(MAX_CLOCK_SKEW_MS) {
                        return Err(StoreError::Expired("the segment is dated in the future"));
                    }
                    if now.0.saturating_sub(head.produced_at.0) >= MAX_LIVE_TTL_MS {
                        return Err(StoreError::Expired("the segment is over 24 hours old"));
                    }
                    let len = u64::from(piece.segment_len);
                    let (owner_bytes, owner_replays) = t.owner(&owner)?;
                    let new_replay = t.replays.get(&rk)?.is_none();
                    if owner_bytes + len > self.limits.replay_bytes {
                        return Err(StoreError::QuotaExceeded("replay bytes of the broadcaster"));
                    }
                    if new_replay && owner_replays >= self.limits.replays_per_broadcaster {
                        return Err(StoreError::QuotaExceeded("replays of the broadcaster"));
                    }
                    if t.total()? + len > self.limits.replay_total_bytes {
                        return Err(StoreError::QuotaExceeded("replay bytes of the relay"));
                    }
                    let (slot, _) = self.alloc_slot(&mut w, &slot_name(&rk, seq))?;
                    let rec = SegmentRecord {
                        segment_len: piece.segment_len,
                        held: 0,
                        complete: false,
                        produced_at: head.produced_at.0,
                        slot,
                    };
                    t.segments.insert((&rk, seq), &rec.encode()[..])?;
                    t.expiries.insert((rec.expires_at(), &rk, seq), ())?;
                    let (n, b) = t.replays.get(&rk)?.map_or((0, 0), |g| g.value());
                    t.replays.insert(&rk, (n + 1, b + len))?;
                    t.charge_owner(&owner, len.into(), i128::from(new_replay))?;
                    t.add_total(len.into())?;
                    rec
                }
            };
            if rec.complete || t.pieces.get((&rk, seq, piece.index))?.is_some() {
                // Held already: nothing to write.
                drop(t);
                txn.abort()?;
                return Ok(false);
            }
            let key = self
                .key(&rk, seq, rec.slot)?
                .ok_or_else(|| StoreError::corrupt("a replay segment's key is missing"))?;
            let sealed = key.seal(
                T_PIECES,
                &piece_aad_key(&rk, seq, piece.index),
                &piece.bytes,
                &mut w.rng,
            )?;
            t.pieces
                .insert((&rk, seq, piece.index), sealed.as_slice())?;
            let mut rec = SegmentRecord {
                held: rec.held + 1,
                ..rec
            };
            if rec.held < piece_count(rec.segment_len) {
                t.segments.insert((&rk, seq), &rec.encode()[..])?;
                Ok(false)
            } else if verify(&t, &key, &rk, seq, &rec, broadcaster, id)? {
                rec.complete = true;
                t.segments.insert((&rk, seq), &rec.encode()[..])?;
                Ok(true)
            } else {
                wipe.push(t.erase_segment(&rk, seq, &rec)?);
                Err(StoreError::Invalid("the segment does not verify"))
            }
        };
        txn.commit()?;
        self.release(&mut w, &wipe)?;
        result
    }

    /// Up to `limit` complete, unexpired segments of a replay from `from` on,
    /// and whether more follow.
    pub fn list(
        &self,
        broadcaster: &SigningPublicKey,
        id: &BroadcastId,
        from: u64,
        limit: u16,
        now: UnixMillis,
    ) -> Result<(Vec<ReplayEntry>, bool), StoreError> {
        let rk = replay_key(broadcaster, id);
        let txn = self.db.begin_read()?;
        held(&txn, &rk)?;
        let segments = txn.open_table(SEGMENTS)?;
        let mut entries = Vec::new();
        for row in segments.range((&rk, from)..=(&rk, u64::MAX))? {
            let (k, v) = row?;
            let rec = SegmentRecord::decode(v.value())?;
            if !rec.complete || rec.expires_at() <= now.0 {
                continue;
            }
            if entries.len() == usize::from(limit) {
                return Ok((entries, true));
            }
            entries.push(ReplayEntry {
                seq: k.value().1,
                segment_len: rec.segment_len,
            });
        }
        Ok((entries, false))
    }

    /// Piece `index` of a complete, unexpired segment.
    pub fn get(
        &self,
        broadcaster: &SigningPublicKey,
        id: &BroadcastId,
        seq: u64,
        index: u16,
        now: UnixMillis,
    ) -> Result<Piece, StoreError> {
        let rk = replay_key(broadcaster, id);
        let txn = self.db.begin_read()?;
        if txn.open_table(TOMBSTONES)?.get(&rk)?.is_some() {
            return Err(StoreError::Revoked);
        }
        let not_found = StoreError::NotFound("no such replay segment");
        let Some(rec) = txn.open_table(SEGMENTS)?.get((&rk, seq))? else {
            return Err(not_found);
        };
        let rec = SegmentRecord::decode(rec.value())?;
        if !rec.complete || rec.expires_at() <= now.0 {
            return Err(not_found);
        }
        if piece_len(rec.segment_len, index).is_none() {
            return Err(StoreError::NotFound("no such piece"));
        }
        let Some(sealed) = txn.open_table(PIECES)?.get((&rk, seq, index))? else {
            return Err(StoreError::corrupt("a piece of a complete replay segment"));
        };
        // Deleted since this snapshot was taken: its key is gone.
        let Some(key) = self.key(&rk, seq, rec.slot)? else {
            return Err(not_found);
        };
        let bytes = key.open(T_PIECES, &piece_aad_key(&rk, seq, index), sealed.value())?;
        Ok(Piece {
            segment_len: rec.segment_len,
            index,
            bytes,
        })
    }

    /// Deletes `broadcaster`'s replay of `id` now, and refuses it until the
    /// time a segment of it could still be uploaded has passed. Returns the
    /// segments deleted.
    pub fn delete(
        &self,
        broadcaster: &SigningPublicKey,
        id: &BroadcastId,
        now: UnixMillis,
    ) -> Result<u64, StoreError> {
        let rk = replay_key(broadcaster, id);
        let owner = broadcaster.to_bytes();
        let mut w = self.writer();
        let txn = self.db.begin_write()?;
        let mut wipe = Vec::new();
        {
            let mut t = Tables::open(&txn)?;
            if t.tombstones.get(&rk)?.is_some() {
                return Ok(0);
            }
            let existed = t.replays.get(&rk)?.is_some();
            if !existed && t.owner(&owner)?.1 >= self.limits.replays_per_broadcaster {
                return Err(StoreError::QuotaExceeded("replays of the broadcaster"));
            }
            let rows: Vec<(u64, SegmentRecord)> = t
                .segments
                .range((&rk, 0)..=(&rk, u64::MAX))?
                .map(|r| {
                    let (k, v) = r?;
                    Ok((k.value().1, SegmentRecord::decode(v.value())?))
                })
                .collect::<Result<_, StoreError>>()?;
            for (seq, rec) in &rows {
                wipe.push(t.erase_segment(&rk, *seq, rec)?);
            }
            t.erase_watches(&rk)?;
            // The tombstone takes the replay's place in the count.
            let keep_until = now.0 + MAX_LIVE_TTL_MS + MAX_CLOCK_SKEW_MS;
            t.tombstones.insert(&rk, keep_until)?;
            t.tombstone_expiries.insert((keep_until, &rk), ())?;
            t.charge_owner(&owner, 0, 1)?;
        }
        txn.commit()?;
        self.release(&mut w, &wipe)?;
        Ok(wipe.len() as u64)
    }

    /// Deletes segments past their 24 hours and tombstones past their time,
    /// at most `collect_batch` of each.
    pub fn collect(&self, now: UnixMillis) -> Result<ReplayCollected, StoreError> {
        let batch = self.limits.collect_batch as usize;
        let mut out = ReplayCollected::default();
        let mut w = self.writer();
        let txn = self.db.begin_write()?;
        let mut wipe = Vec::new();
        {
            let mut t = Tables::open(&txn)?;
            let lo = [0u8; 64];
            let hi = [0xffu8; 64];
            let due: Vec<(u64, Rk, u64)> = t
                .expiries
                .range((0u64, &lo, 0u64)..=(now.0, &hi, u64::MAX))?
                .take(batch + 1)
                .map(|r| r.map(|(k, _)| (k.value().0, *k.value().1, k.value().2)))
                .collect::<Result<_, _>>()?;
            out.more = due.len() > batch;
            for (at, rk, seq) in due.iter().take(batch) {
                match t.segment(rk, *seq)? {
                    Some(rec) => {
                        wipe.push(t.erase_segment(rk, *seq, &rec)?);
                        out.segments += 1;
                    }
                    None => {
                        t.expiries.remove((*at, rk, *seq))?;
                    }
                }
            }
            let due: Vec<(u64, Rk)> = t
                .tombstone_expiries
                .range((0u64, &lo)..=(now.0, &hi))?
                .take(batch + 1)
                .map(|r| r.map(|(k, _)| (k.value().0, *k.value().1)))
                .collect::<Result<_, _>>()?;
            out.more |= due.len() > batch;
            for (at, rk) in due.iter().take(batch) {
                t.tombstone_expiries.remove((*at, rk))?;
                if t.tombstones.remove(rk)?.is_some() {
                    let owner: [u8; 32] = rk[..32].try_into().expect("32 bytes");
                    t.charge_owner(&owner, 0, -1)?;
                    out.tombstones += 1;
                }
            }
        }
        txn.commit()?;
        self.release(&mut w, &wipe)?;
        Ok(out)
    }

    /// Keeps a replay viewer's join (`chat`, sealed under an epoch key of
    /// the broadcast it names) with `broadcaster`'s replay, for the
    /// broadcaster's viewer list. The same join again changes nothing.
    pub fn watched(
        &self,
        broadcaster: &SigningPublicKey,
        chat: &ChatMessage,
    ) -> Result<(), StoreError> {
        let rk = replay_key(broadcaster, &chat.broadcast_id());
        let bytes = chat.to_bytes();
        let hash = *blake3::hash(&bytes).as_bytes();
        let _w = self.writer();
        let txn = self.db.begin_write()?;
        {
            let mut t = Tables::open(&txn)?;
            if t.tombstones.get(&rk)?.is_some() {
                return Err(StoreError::Revoked);
            }
            if t.replays.get(&rk)?.is_none() {
                return Err(StoreError::NotFound("no replay of this broadcast"));
            }
            if t.watch_hashes.get((&rk, &hash))?.is_some() {
                return Ok(());
            }
            let n = t.watch_counts.get(&rk)?.map_or(0, |g| g.value());
            if n >= self.limits.replay_watches {
                return Err(StoreError::QuotaExceeded("viewers of the replay"));
            }
            t.watches.insert((&rk, n), bytes.as_slice())?;
            t.watch_hashes.insert((&rk, &hash), n)?;
            t.watch_counts.insert(&rk, n + 1)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Up to `limit` of the joins kept with a replay, numbered from `from`
    /// on, and whether more follow.
    pub fn viewers(
        &self,
        broadcaster: &SigningPublicKey,
        id: &BroadcastId,
        from: u32,
        limit: u16,
    ) -> Result<(Vec<(u32, ChatMessage)>, bool), StoreError> {
        let rk = replay_key(broadcaster, id);
        let txn = self.db.begin_read()?;
        held(&txn, &rk)?;
        let watches = txn.open_table(WATCHES)?;
        let mut out = Vec::new();
        for row in watches.range((&rk, from)..=(&rk, u32::MAX))? {
            let (k, v) = row?;
            if out.len() == usize::from(limit) {
                return Ok((out, true));
            }
            let chat = ChatMessage::decode(v.value())
                .map_err(|_| StoreError::corrupt("a replay viewer's join"))?;
            out.push((k.value().1, chat));
        }
        Ok((out, false))
    }

    /// Counts for metrics.
    pub fn stats(&self) -> Result<ReplayStats, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(ReplayStats {
            replays: txn.open_table(REPLAYS)?.len()?,
            segments: txn.open_table(SEGMENTS)?.len()?,
            bytes: txn
                .open_table(COUNTERS)?
                .get(TOTAL_BYTES)?
                .map_or(0, |g| g.value()),
        })
    }
}

/// Revoked for a deleted replay, NotFound for one not held, as a read
/// snapshot `txn` sees it.
fn held(txn: &redb::ReadTransaction, rk: &Rk) -> Result<(), StoreError> {
    if txn.open_table(TOMBSTONES)?.get(rk)?.is_some() {
        return Err(StoreError::Revoked);
    }
    if txn.open_table(REPLAYS)?.get(rk)?.is_none() {
        return Err(StoreError::NotFound("no replay of this broadcast"));
    }
    Ok(())
}

/// Reads a segment's pieces back and checks the whole as a viewer would
/// before it plays or forwards it (LIVE.md §6 steps 1–4, and the signer's
/// identity): layout, certificate, signature, broadcast, sequence number.
fn verify(
    t: &Tables<'_>,
    key: &DataKey,
    rk: &Rk,
    seq: u64,
    rec: &SegmentRecord,
    broadcaster: &SigningPublicKey,
    id: &BroadcastId,
) -> Result<bool, StoreError> {
    let mut bytes = Vec::with_capacity(rec.segment_len as usize);
    for index in 0..piece_count(rec.segment_len) {
        let sealed = t
            .pieces
            .get((rk, seq, index))?
            .ok_or_else(|| StoreError::corrupt("a piece of a replay segment"))?;
        bytes.extend_from_slice(&key.open(
            T_PIECES,
            &piece_aad_key(rk, seq, index),
            sealed.value(),
        )?);
    }
    Ok(match Segment::decode(&bytes) {
        Ok(s) => {
            s.broadcast_id() == *id
                && s.seq() == seq
                && s.certificate().identity_key() == *broadcaster
        }
        Err(_) => false,
    })
}
