//! The relay's durable store: prekeys, mailboxes, deposits, chunks,
//! tombstones and expiry, on [redb](https://docs.rs/redb), synchronous (the
//! async relay calls it through `spawn_blocking`).
//!
//! # Transactions and durability
//!
//! Every operation is one redb write transaction, committed with
//! [`redb::Durability::Immediate`] (an `fsync`) before it returns `Ok`, so
//! whatever the store acknowledges is durable, and a crash at any point
//! leaves the old state or the new one. Time is always passed in (`now`);
//! the store never reads a clock. Randomness comes from a [`ChaCha20Rng`]
//! the caller seeds (from the operating system in production:
//! [`crate::rng::node_rng`]`(None)`; a fixed seed only in tests, because a
//! store reopened with the same seed would draw the same keys and nonces
//! again).
//!
//! Expiry is enforced by [`RelayStore::collect`], which the relay runs on a
//! short timer: reads do not take the time, so a message stays readable
//! from its `expires_at` until the next collection (clients check expiry
//! themselves, SPEC §12). The same collector deletes envelopes still pending
//! [`StoreLimits::pending_ttl_secs`] after their deposit (abandoned
//! uploads, RELAY.md §5.2 step 4), and their messages when no other
//! envelope refers to them.
//!
//! Every limit ([`StoreLimits`]) is checked before anything is written, and
//! nothing is collected in memory beyond what one request can carry (at most
//! one manifest's 4096 chunk hashes, the envelopes of one message, a list
//! page, a collect batch), except the key file's free-slot list, which is
//! bounded by [`StoreLimits::max_messages`].
//!
//! # Erasure
//!
//! redb is copy-on-write: it never overwrites a committed page in place, and
//! a freed page keeps its old bytes until the allocator hands it out again
//! (redb's design notes, "Epoch based reclamation"; redb once zeroed freed
//! pages and stopped, cberner/redb#442). Deleting a key from a table
//! therefore does **not** remove its bytes from `relay.redb`. So the store
//! never writes anything to redb that must disappear later:
//!
//! * every envelope, manifest and chunk value is sealed with
//!   ChaCha20-Poly1305 under a random 32-byte **data key of its message**
//!   (random 12-byte nonce stored with the value, associated data
//!   `table name ‖ key`); a store opened
//!   [`with_chunk_files`](RelayStore::with_chunk_files) keeps chunks as
//!   uploaded, the clip's own ciphertext, in a file per message that is
//!   removed with the message (RELAY.md §7, §8);
//! * the data keys are **not** in redb but in `keys.slots`, a small file of
//!   fixed 64-byte slots (`message id ‖ key`) written and wiped **in place**
//!   with positioned writes and `fdatasync`;
//! * when a message is deleted — acknowledged by its last recipient, revoked,
//!   expired, or its last envelope abandoned — the transaction that deletes its rows commits first, then
//!   its slot is overwritten with zeros and synced. From then on, whatever
//!   copies of its sealed values linger in freed redb pages are ciphertext
//!   under a key that no longer exists anywhere in the store's files.
//!
//! Crash safety of that order: a key slot is written and synced *before* the
//! transaction that refers to it commits, and wiped only *after* the
//! transaction that stops referring to it commits. A crash in between leaves
//! a slot that no message refers to; [`RelayStore::open`] wipes every such
//! orphan and rebuilds the free-slot list from the file, so an interrupted
//! deletion finishes at the next start.
//!
//! **What this guarantees**: once an operation that deletes a message has
//! returned `Ok`, no file in the store directory holds its data key, and no
//! file holds its envelopes, manifest or chunks in a form the store itself
//! could decrypt; read back, the logical bytes of both files show neither the
//! plaintext values nor the key (`node/tests/store.rs` scans every byte).
//! If the wipe itself fails, the operation returns [`StoreError::Io`] even
//! though its transaction committed (retrying it is harmless), the slot is
//! not reused, and the next [`RelayStore::open`] wipes it.
//!
//! **What it cannot guarantee**:
//!
//! * In-place overwrite reaches the medium only where the file system and the
//!   device overwrite in place. Copy-on-write and log-structured file systems
//!   (btrfs, ZFS, bcachefs, F2FS, ext4 with `data=journal`), snapshots and
//!   backups of the directory, and SSD/flash wear levelling (which remaps a
//!   rewritten block and leaves the old one until garbage collection) may keep
//!   an old copy of a slot. There erasure is best effort. Run relays on
//!   full-disk encryption (e.g. LUKS/dm-crypt) so that whatever the medium
//!   keeps is ciphertext under a key that leaves with the machine, and keep
//!   the store out of snapshots.
//! * Metadata is not sealed: redb keys and bookkeeping (message ids, mailbox
//!   identity keys, depositor peer ids, sequence numbers, sizes, expiry
//!   times, tombstones, published prekeys, which are public) are plaintext and,
//!   after deletion, may linger in freed pages until reused. Chunk values are
//!   the clip's own ciphertext in any case, useless without the content key
//!   that only envelopes carry.
//! * Memory: keys and values pass through process memory; swap and core dumps
//!   are the operator's to disable.
//! * Shared chunks: chunks are content-addressed, so a chunk named by two
//!   messages' manifests is stored once and kept while either needs it. If
//!   the message whose key seals it goes, the chunk is re-sealed under the
//!   other message's key in the same transaction. Revoking one message
//!   therefore does not delete a chunk another live message names.
//! * A relay that ignores all this can keep anything; SPEC §15.5 explains why
//!   that yields ciphertext only.

mod check;
mod chunk_batch;
mod chunk_files;
mod chunk_rows;
mod crypt;
mod deferred;
mod deposit;
mod erase;
mod error;
mod fetch;
mod fileio;
mod hold;
pub(crate) mod keyfile;
mod limits;
mod manifest_cache;
mod outcome;
mod prekeys;
mod records;
mod replay;
mod tables;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use rand_chacha::ChaCha20Rng;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

pub use check::StoreCheck;
pub use chunk_files::CHUNK_DIR_NAME;
pub use deferred::{DEFERRED_ROWS_PER_UPLOAD, MAX_DEFERRED_UPLOADS};
pub use error::StoreError;
pub use keyfile::{KEY_FILE_HEADER_LEN, KEY_FILE_MAGIC, KEY_FILE_NAME, KEY_SLOT_LEN};
pub use limits::StoreLimits;
pub use outcome::{CollectStats, Deposited, StoreStats};
pub use replay::{
    REPLAY_DB_FILE_NAME, REPLAY_SLOT_CONTEXT, REPLAY_SLOT_FILE_MAGIC, REPLAY_SLOT_FILE_NAME,
    ReplayCollected, ReplayStats, ReplayStore,
};

use crypt::DataKey;
use keyfile::KeyFile;
use records::MessageMeta;
use tables::{MESSAGES, Tables};

/// Name of the database file in the store directory.
pub const DB_FILE_NAME: &str = "relay.redb";

/// The relay's store. Cheap to share (`Arc`): reads run concurrently, writes
/// are serialized.
#[derive(Debug)]
pub struct RelayStore {
    db: Database,
    keys: KeyFile,
    writer: Mutex<Writer>,
    limits: StoreLimits,
    dir: PathBuf,
    /// Whether a chunk that does not complete its message is committed
    /// without an `fsync` ([`RelayStore::with_lazy_chunk_commits`]).
    lazy_chunks: bool,
    /// Chunks kept as uploaded, in a file per message
    /// ([`RelayStore::with_chunk_files`]); otherwise chunks are sealed
    /// under their message's data key in redb (the default).
    files: chunk_files::ChunkFiles,
    /// Chunk uploads waiting for a shared transaction.
    batches: chunk_batch::ChunkBatches,
    /// Manifests of the clips being uploaded, decoded.
    manifests: manifest_cache::ManifestCache,
    /// Chunk rows waiting to be written ([`deferred`]).
    deferred: deferred::Deferred,
    /// Live replays, in files of their own (RELAY.md §5.7), on a relay
    /// ([`RelayStore::with_replays`]).
    replay: Option<ReplayStore>,
    /// Committed transactions that deleted messages, counted before their
    /// chunk files are removed ([`RelayStore::deletions`]).
    deletions: AtomicU64,
}

/// State only the (single) writer touches.
struct Writer {
    rng: ChaCha20Rng,
    /// Free slots below `slots`, lowest last (popped first).
    free: Vec<u32>,
    /// Slots in the key file.
    slots: u32,
}

impl std::fmt::Debug for Writer {
    // Not the RNG: its buffered output is future keys and nonces.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("free", &self.free.len())
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl RelayStore {
    /// Opens the store in `dir` (created if missing), wiping orphaned key
    /// slots left by an interrupted operation. `rng` supplies data keys and
    /// nonces.
    pub fn open(dir: &Path, limits: StoreLimits, rng: ChaCha20Rng) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let (keys, slots) = KeyFile::open(dir)?;
        let db = Database::builder()
            .set_cache_size(usize::try_from(limits.cache_bytes).unwrap_or(usize::MAX))
            .create(dir.join(DB_FILE_NAME))?;
        {
            let txn = db.begin_write()?;
            Tables::create(&txn)?;
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
            dir: dir.to_path_buf(),
            lazy_chunks: false,
            files: chunk_files::ChunkFiles::new(dir),
            batches: chunk_batch::ChunkBatches::default(),
            manifests: manifest_cache::ManifestCache::default(),
            deferred: deferred::Deferred::default(),
            replay: None,
            deletions: AtomicU64::new(0),
        };
        store.reconcile(slots)?;
        Ok(store)
    }

    /// Commits a chunk that does not complete its message without waiting for
    /// the disk; the chunk that completes it is committed durably, which
    /// makes every earlier commit durable too. So a deposit is never listed
    /// before all of it is on disk, but a chunk acknowledged before a crash
    /// may be lost. For a client's own store of direct deliveries, whose
    /// sender falls back to a relay when the upload breaks; a relay, whose
    /// acknowledgements must mean durable (RELAY.md §5.2), keeps the default.
    /// With [`RelayStore::with_chunk_files`] too, the rows of an upload's
    /// chunks are also written together rather than one transaction per
    /// chunk (`deferred`; RELAY.md §8).
    pub fn with_lazy_chunk_commits(mut self) -> Self {
        self.lazy_chunks = true;
        self
    }

    /// Stores the chunks it receives from now on as they arrive, not sealed
    /// under their message's data key, in a file per message in
    /// [`CHUNK_DIR_NAME`] beside the database (RELAY.md §7, §8). A chunk is
    /// the clip's own ciphertext, and its content key lives only in
    /// envelopes; sealing it again matters where that content key is kept
    /// elsewhere than the data key, as on a relay. A client's personal store
    /// keeps both in the same home and erases them together, so the second
    /// seal only costs time there, and files cost less than 256 KiB values
    /// in a copy-on-write database. Chunks already stored keep their form.
    pub fn with_chunk_files(self) -> Self {
        self.files.enable();
        self
    }

    /// Whether chunk records may be of form 2 (`chunk_rows::contains`).
    fn in_files(&self) -> bool {
        self.files.in_use()
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps live replays too, in `replay.redb` and `replay.slots` beside
    /// the database (RELAY.md §5.7, §7): what a relay does. A client's
    /// personal store keeps none.
    pub fn with_replays(mut self) -> Result<Self, StoreError> {
        let rng = {
            let mut w = self.writer();
            let mut seed = [0u8; 32];
            rand_core::Rng::fill_bytes(&mut w.rng, &mut seed);
            <ChaCha20Rng as rand_core::SeedableRng>::from_seed(seed)
        };
        self.replay = Some(ReplayStore::open(&self.dir, self.limits.clone(), rng)?);
        Ok(self)
    }

    /// The live replays kept beside the clips; NotFound for a store that
    /// keeps none.
    pub fn replay(&self) -> Result<&ReplayStore, StoreError> {
        self.replay
            .as_ref()
            .ok_or(StoreError::NotFound("replays: this store keeps none"))
    }

    /// The limits in force.
    pub fn limits(&self) -> &StoreLimits {
        &self.limits
    }

    /// Counts for metrics.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let txn = self.db.begin_read()?;
        let counters = txn.open_table(tables::COUNTERS)?;
        let counter = |name| -> Result<u64, StoreError> {
            Ok(counters.get(name)?.map(|g| g.value()).unwrap_or(0))
        };
        Ok(StoreStats {
            stored_bytes: counter(tables::STORED_BYTES)?,
            reserved_bytes: counter(tables::RESERVED_BYTES)?,
            envelopes: txn.open_table(tables::ENVELOPES)?.len()?,
            chunks: txn.open_table(tables::CHUNKS)?.len()?,
            messages: txn.open_table(MESSAGES)?.len()?,
            tombstones: txn.open_table(tables::TOMBSTONES)?.len()?,
            identities: txn.open_table(tables::IDENTITIES)?.len()?,
        })
    }

    /// Matches the key file against the database after a start: wipes slots
    /// no message refers to, deletes messages whose key is gone (their values
    /// cannot be read any more), and rebuilds the free-slot list.
    fn reconcile(&mut self, slots: u32) -> Result<(), StoreError> {
        let mut used = vec![false; slots as usize];
        let mut orphans = Vec::new();
        let mut lost = Vec::new();
        {
            let txn = self.db.begin_read()?;
            let messages = txn.open_table(MESSAGES)?;
            self.keys.scan(slots, |u| {
                let owned = match messages.get(&u.id)? {
                    Some(m) => MessageMeta::decode(m.value())?.slot == u.slot,
                    None => false,
                };
                if owned {
                    used[u.slot as usize] = true;
                } else {
                    orphans.push(u.slot);
                }
                Ok(())
            })?;
            for row in messages.iter()? {
                let (id, meta) = row?;
                let id = *id.value();
                let slot = MessageMeta::decode(meta.value())?.slot;
                let ok = (slot as usize) < used.len()
                    && used[slot as usize]
                    && self.keys.key_for(slot, &id)?.is_some();
                if !ok {
                    lost.push(id);
                }
            }
        }
        if !orphans.is_empty() {
            tracing::info!(slots = orphans.len(), "wiping orphaned key slots");
            self.keys.wipe(&orphans)?;
        }
        if !lost.is_empty() {
            tracing::warn!(
                messages = lost.len(),
                "deleting messages whose data key is missing"
            );
            let mut w = self.writer();
            let txn = self.db.begin_write()?;
            {
                let mut t = Tables::open(&txn)?;
                for id in &lost {
                    self.erase_message(&mut t, id, &mut w.rng)?;
                }
            }
            self.commit(txn)?;
        }
        // Chunk files of messages deleted before a crash let them go.
        let swept = {
            let txn = self.db.begin_read()?;
            let messages = txn.open_table(MESSAGES)?;
            self.files.sweep(|id| Ok(messages.get(id)?.is_some()))?
        };
        if swept > 0 {
            tracing::info!(files = swept, "removed chunk files of deleted messages");
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

    /// The writer lock. A panic while it was held leaves at worst a slot
    /// that no message refers to, which the next open wipes; so poisoning is
    /// not fatal.
    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a fresh data key for message `id` into a free slot (synced).
    fn alloc_slot(&self, w: &mut Writer, id: &[u8; 32]) -> Result<(u32, DataKey), StoreError> {
        let slot = match w.free.pop() {
            Some(s) => s,
            None => {
                let s = w.slots;
                w.slots = s
                    .checked_add(1)
                    .ok_or(StoreError::QuotaExceeded("key slots"))?;
                s
            }
        };
        let key = DataKey::generate(&mut w.rng);
        if let Err(e) = self.keys.store(slot, id, &key) {
            let _ = self.keys.wipe(&[slot]);
            w.free.push(slot);
            return Err(e);
        }
        Ok((slot, key))
    }

    /// Commits `txn` durably, after syncing the chunk files written since
    /// the last durable commit, so that no durable row names chunk data a
    /// crash could lose. The caller holds the writer lock.
    fn commit(&self, txn: redb::WriteTransaction) -> Result<(), StoreError> {
        self.files.sync_dirty()?;
        txn.commit()?;
        Ok(())
    }

    /// After a committed transaction deleted messages `gone`, whose key
    /// slots are `slots`: wipes the slots ([`RelayStore::release_slots`])
    /// and removes the messages' chunk files. A file that cannot be removed
    /// is only logged: it is ciphertext whose key is gone, and the next
    /// open removes it.
    fn release_erased(
        &self,
        w: &mut Writer,
        slots: &[u32],
        gone: &[[u8; 32]],
    ) -> Result<(), StoreError> {
        if !gone.is_empty() {
            self.deletions.fetch_add(1, Ordering::SeqCst);
        }
        let wiped = self.release_slots(w, slots);
        for id in gone {
            if let Err(e) = self.files.remove(id) {
                tracing::warn!(error = %e, "could not remove a chunk file; the next open will");
            }
        }
        wiped
    }

    /// Removes the chunk file of message `id` if no such message exists
    /// (a chunk was written to it while the message was deleted). The
    /// caller holds the writer lock.
    fn remove_orphan_file(&self, id: &[u8; 32]) -> Result<(), StoreError> {
        let txn = self.db.begin_read()?;
        if txn.open_table(MESSAGES)?.get(id)?.is_none() {
            self.files.remove(id)?;
        }
        Ok(())
    }

    /// [`RelayStore::remove_orphan_file`] for a caller without the writer
    /// lock; nothing to do (and no lock taken) when there is no such file.
    fn remove_orphan_file_unlocked(&self, id: &[u8; 32]) -> Result<(), StoreError> {
        if !self.files.exists(id) {
            return Ok(());
        }
        let _w = self.writer();
        self.remove_orphan_file(id)
    }

    /// How many committed transactions have deleted messages so far. Read
    /// before a snapshot that finds a message: while it has not changed,
    /// that message is still stored (a deletion counts itself after its
    /// commit and before it removes the message's chunk file).
    fn deletions(&self) -> u64 {
        self.deletions.load(Ordering::SeqCst)
    }

    /// Wipes the slots of messages a committed transaction deleted and
    /// makes them free. On an I/O error the slots stay out of the free list
    /// (their content is unknown) and the next open wipes them.
    fn release_slots(&self, w: &mut Writer, slots: &[u32]) -> Result<(), StoreError> {
        self.keys.wipe(slots)?;
        w.free.extend_from_slice(slots);
        Ok(())
    }

    /// The data key of message `id` (in `slot`) for a writer, which holds the
    /// writer lock: the slot cannot change under it, so a mismatch is corruption.
    fn key_locked(&self, id: &[u8; 32], slot: u32) -> Result<DataKey, StoreError> {
        self.keys
            .key_for(slot, id)?
            .ok_or_else(|| StoreError::corrupt("a message's data key is missing"))
    }

    /// The data key of message `id` (in `slot`, as a read snapshot saw it).
    /// The message may have been deleted since, and its slot wiped or
    /// reused: then it is not found.
    fn key_for_read(&self, id: &[u8; 32], slot: u32) -> Result<DataKey, StoreError> {
        if let Some(k) = self.keys.key_for(slot, id)? {
            return Ok(k);
        }
        let txn = self.db.begin_read()?;
        let messages = txn.open_table(MESSAGES)?;
        let still = match messages.get(id)? {
            Some(m) => MessageMeta::decode(m.value())?.slot == slot,
            None => false,
        };
        if !still {
            return Err(StoreError::NotFound("message"));
        }
        // Slots are written before the transaction that refers to them commits.
        self.keys
            .key_for(slot, id)?
            .ok_or_else(|| StoreError::corrupt("a message's data key is missing"))
    }
}

impl Drop for RelayStore {
    /// Writes the chunk rows still waiting (`deferred`), durably, so
    /// that closing the store loses no chunk it answered; in a store with
    /// lazy chunk commits, always with a durable commit of its own, which
    /// syncs the chunk files first (redb makes lazy commits durable when
    /// it closes, with no such sync: a power cut after a clean exit then
    /// kept the rows and lost the bytes, found by the client power-cut
    /// campaign).
    fn drop(&mut self) {
        if let Err(e) = self.flush_deferred() {
            tracing::warn!(error = %e, "could not write waiting chunk rows at close");
        }
    }
}

/// The smallest and largest 32-byte keys, for ranges over composite keys.
const ZERO32: [u8; 32] = [0; 32];
const FF32: [u8; 32] = [0xff; 32];
