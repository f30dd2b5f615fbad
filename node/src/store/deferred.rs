//! Deferred chunk rows: a store with lazy chunk commits and chunk files
//! (a client's personal store, RELAY.md §8) writes the rows of a clip's
//! chunks in a few transactions per clip instead of one per chunk.
//!
//! A chunk checked against its manifest and written to its chunk file is
//! answered at once, and its row waits in memory with the others of its
//! upload. The rows are written together when the upload has every chunk
//! it was missing (durably, with the file: that transaction lists the
//! clip), when [`DEFERRED_ROWS_PER_UPLOAD`] are waiting, when the upload is
//! evicted to make room for another, and when the store is dropped. A
//! crash loses the waiting rows, as lazy commits may lose any chunk not
//! yet made durable; the sender resumes or falls back to the relays.
//!
//! Completion is tracked per upload: when an upload is first seen, the
//! chunks its manifest names that have no row are its missing set, read
//! under this module's lock; each chunk accepted leaves the set. That set
//! is also the upload's chunk table: while no message has been deleted
//! since a read snapshot last found the upload's message (the store counts
//! deletions, [`RelayStore::deletions`]), a chunk is checked against the
//! cached manifest and the set alone, with no read transaction of its own
//! (`put_known_chunk`); after a deletion, the next chunk of each upload
//! takes a snapshot again. The rows
//! of an evicted upload are written under that lock (if that fails, the
//! upload stays and the one that wanted its place is refused), so a
//! missing set read later for the same message is not stale. A completed
//! upload is dropped just before its rows are written; a chunk of it that
//! arrives again in between starts an upload that can only wait for
//! chunks already written, and is evicted in time. When writing rows
//! fails, the chunk whose call wrote them gets the error, so its sender
//! stops and falls back to the relays.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use mayfly_protocol::Manifest;
use redb::ReadableDatabase;

use super::chunk_batch::Listed;
use super::chunk_rows;
use super::deposit::{Checked, PreparedChunk};
use super::tables::{CHUNK_TAILS, CHUNKS};
use super::{RelayStore, StoreError};

/// Uploads whose chunk rows may wait at once, in a store with lazy chunk
/// commits and chunk files; the least recently used is written out and
/// dropped to make room.
pub const MAX_DEFERRED_UPLOADS: usize = 64;

/// Chunk rows of one upload that may wait (64 × 256 KiB = 16 MiB of clip).
pub const DEFERRED_ROWS_PER_UPLOAD: usize = 64;

/// The uploads whose rows wait.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    uploads: HashMap<[u8; 32], Upload>,
    /// Use counter, for least-recently-used eviction.
    tick: u64,
}

#[derive(Debug)]
struct Upload {
    manifest_hash: [u8; 32],
    /// By manifest index: whether the chunk is still missing (built once,
    /// from the rows, when the upload starts; at most `MAX_CHUNKS`).
    missing: Vec<bool>,
    /// [`RelayStore::deletions`] before the latest snapshot that found the
    /// message: while it is unchanged, the message is still stored and its
    /// chunks take [`RelayStore::put_known_chunk`].
    checked: u64,
    remaining: usize,
    /// Accepted chunks whose rows are not written yet (at most
    /// [`DEFERRED_ROWS_PER_UPLOAD`]).
    waiting: Vec<PreparedChunk>,
    used: u64,
}

impl Deferred {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the upload of message `id` (deleted: its rows would be refused).
    pub(super) fn forget(&self, id: &[u8; 32]) {
        self.lock().uploads.remove(id);
    }
}

impl RelayStore {
    /// Whether chunk rows wait ([`Deferred`]): lazy commits and chunk files.
    pub(super) fn defers_rows(&self) -> bool {
        self.lazy_chunks && self.files.writing()
    }

    /// Accepts chunk `index` of message `id` (`checked`: its chunk is
    /// `None` when it already has a row) into its upload, and writes the waiting
    /// rows when the upload is complete or [`DEFERRED_ROWS_PER_UPLOAD`]
    /// wait. Returns what writing them listed; an error refuses this chunk.
    pub(super) fn defer_chunk(
        &self,
        id: &[u8; 32],
        index: u32,
        checked: Checked,
    ) -> Result<Listed, StoreError> {
        let Checked {
            chunk,
            manifest,
            manifest_hash,
            generation,
        } = checked;
        let mut s = self.deferred.lock();
        s.tick += 1;
        let tick = s.tick;
        let known = s
            .uploads
            .get(id)
            .is_some_and(|u| u.manifest_hash == manifest_hash);
        if !known {
            if s.uploads.len() >= MAX_DEFERRED_UPLOADS && !s.uploads.contains_key(id) {
                self.evict_oldest(&mut s)?;
            }
            let missing = self.missing_rows(&manifest)?;
            let remaining = missing.iter().filter(|&&m| m).count();
            let upload = Upload {
                manifest_hash,
                missing,
                checked: generation,
                remaining,
                waiting: Vec::new(),
                used: tick,
            };
            s.uploads.insert(*id, upload);
        }
        let Some(upload) = s.uploads.get_mut(id) else {
            return Err(StoreError::corrupt("a deferred upload vanished"));
        };
        upload.used = tick;
        upload.checked = upload.checked.max(generation);
        if let Some(m) = upload.missing.get_mut(index as usize)
            && *m
        {
            *m = false;
            upload.remaining -= 1;
        }
        upload.waiting.extend(chunk);
        let batch = if upload.remaining == 0 {
            s.uploads.remove(id).map(|u| u.waiting)
        } else if upload.waiting.len() >= DEFERRED_ROWS_PER_UPLOAD {
            Some(std::mem::take(&mut upload.waiting))
        } else {
            None
        };
        drop(s);
        let Some(batch) = batch.filter(|b| !b.is_empty()) else {
            return Ok(Listed::new());
        };
        let outcomes = self.write_chunks_txn(&batch)?;
        let mut listed = Listed::new();
        for (c, outcome) in batch.iter().zip(outcomes) {
            match outcome {
                Ok(l) => listed.extend(l),
                Err(e) if c.index() == index && c.id == *id => return Err(e),
                // Its message went meanwhile; that chunk was answered already.
                Err(e) => tracing::debug!("a deferred chunk row was refused: {e}"),
            }
        }
        Ok(listed)
    }

    /// [`RelayStore::put_chunk`] in a store that defers rows, for chunk
    /// `index` of an upload under way whose message no deletion can have
    /// touched since a snapshot found it: checked against the cached
    /// manifest and the upload's missing set, and written to the chunk
    /// file, with no read transaction. `None` leaves it to the snapshot
    /// (no such upload, its manifest not cached, or a deletion since; a
    /// chunk written meanwhile is written again, or its file removed).
    pub(super) fn put_known_chunk(
        &self,
        id: &[u8; 32],
        index: u32,
        bytes: &[u8],
    ) -> Option<Result<Listed, StoreError>> {
        let generation = self.deletions();
        let (manifest_hash, missing) = {
            let s = self.deferred.lock();
            let upload = s.uploads.get(id).filter(|u| u.checked == generation)?;
            (upload.manifest_hash, *upload.missing.get(index as usize)?)
        };
        let manifest = self.manifests.get(id, &manifest_hash)?;
        let Some(chunk) = manifest.check_chunk(index, bytes) else {
            return Some(Err(StoreError::Conflict(
                "the chunk does not match the manifest",
            )));
        };
        let prepared = if missing {
            if let Err(e) = self.files.write(id, index, bytes) {
                return Some(Err(e));
            }
            Some(PreparedChunk::written(
                id,
                index,
                bytes.len(),
                *chunk.hash(),
            ))
        } else {
            None
        };
        // A deletion that removed the file before the write above counted
        // itself first.
        if self.deletions() != generation {
            return None;
        }
        let checked = Checked {
            chunk: prepared,
            manifest,
            manifest_hash,
            generation,
        };
        Some(self.defer_chunk(id, index, checked))
    }

    /// `missing` (indices of `manifest`'s chunks without a row, for message
    /// `id`) without those whose rows wait: they are held. Takes the
    /// deferred lock, so the caller must not hold the writer lock.
    pub(super) fn not_waiting(
        &self,
        id: &[u8; 32],
        manifest: &Manifest,
        missing: Vec<u32>,
    ) -> Vec<u32> {
        if !self.defers_rows() {
            return missing;
        }
        let s = self.deferred.lock();
        match s.uploads.get(id) {
            Some(u) if u.manifest_hash == manifest.hash() => missing
                .into_iter()
                .filter(|&i| u.missing.get(i as usize).copied().unwrap_or(true))
                .collect(),
            _ => missing,
        }
    }

    /// Writes the rows of the least recently used upload and drops it. The
    /// caller holds the deferred lock, so no upload of that message is
    /// started before they are written.
    fn evict_oldest(&self, s: &mut State) -> Result<(), StoreError> {
        let Some(oldest) = s
            .uploads
            .iter()
            .min_by_key(|(_, u)| u.used)
            .map(|(id, _)| *id)
        else {
            return Ok(());
        };
        let Some(upload) = s.uploads.remove(&oldest) else {
            return Ok(());
        };
        if !upload.waiting.is_empty()
            && let Err(e) = self.write_chunks_txn(&upload.waiting)
        {
            // Its chunks were answered: it stays, to be written later,
            // and the upload that wanted its place is refused.
            s.uploads.insert(oldest, upload);
            return Err(e);
        }
        Ok(())
    }

    /// Writes every waiting row, durably, with every lazy commit before
    /// (when the store is dropped).
    pub(super) fn flush_deferred(&self) -> Result<(), StoreError> {
        if !self.lazy_chunks {
            return Ok(());
        }
        let mut s = self.deferred.lock();
        let batch: Vec<PreparedChunk> = s.uploads.drain().flat_map(|(_, u)| u.waiting).collect();
        if !batch.is_empty() {
            self.write_chunks_txn(&batch)?;
        }
        // Lazy commits (the one above, earlier ones, a held clip's) become
        // durable when the database closes: this commit syncs the chunk
        // files they name first.
        let w = self.writer();
        let txn = self.db.begin_write()?;
        self.commit(txn)?;
        drop(w);
        Ok(())
    }

    /// By manifest index, whether the chunk has no row.
    fn missing_rows(&self, manifest: &Manifest) -> Result<Vec<bool>, StoreError> {
        let txn = self.db.begin_read()?;
        let (chunks, tails) = (txn.open_table(CHUNKS)?, txn.open_table(CHUNK_TAILS)?);
        let in_files = self.in_files();
        manifest
            .chunk_hashes()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let len = manifest.chunk_ciphertext_len(i as u32);
                Ok(!chunk_rows::contains(&chunks, &tails, h, len, in_files)?)
            })
            .collect()
    }
}
