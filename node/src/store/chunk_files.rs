//! Chunk files: a personal store's chunks as uploaded, one file per message
//! beside the database (RELAY.md §7, form 2), instead of 256 KiB values in
//! redb.
//!
//! The file of message `id` is `chunks/<lowercase hex of id>`; chunk `i` of
//! its manifest lies at byte `i × CIPHERTEXT_CHUNK_SIZE`, so the file is
//! written in place as chunks arrive, in any order, and read with one
//! positioned read. Its chunk rows in redb are small records that say where.
//!
//! Durability: a chunk is written with a plain positioned write, and its
//! message is marked dirty. Before any durable redb commit the store syncs
//! every dirty file ([`ChunkFiles::sync_dirty`]), so no durable row ever
//! names chunk data that a crash could lose. Each dirty file is also synced
//! in the background once [`BACKGROUND_SYNC_BYTES`] have been written to it
//! since its last sync, so that the sync before the commit that completes a
//! clip has little left to write.
//!
//! Deletion: a message's file is removed after the transaction that
//! deletes the message commits, while the writer lock is held; a file left
//! behind by a crash in between is removed at the next open
//! ([`ChunkFiles::sweep`]).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mayfly_protocol::CIPHERTEXT_CHUNK_SIZE;

use super::StoreError;
use super::fileio::{pos, sync_dir};

/// Name of the chunk file directory in the store directory.
pub const CHUNK_DIR_NAME: &str = "chunks";

/// Bytes written to a file since its last sync after which it is synced in
/// the background (without waiting for it).
pub(super) const BACKGROUND_SYNC_BYTES: u64 = 8 << 20;

/// The chunk files of a store.
#[derive(Debug)]
pub(super) struct ChunkFiles {
    dir: PathBuf,
    /// Whether new chunks are written here (`RelayStore::with_chunk_files`).
    writing: AtomicBool,
    /// Whether the directory may hold files: it existed at open, or this
    /// store writes chunk files. Then a chunk's presence is looked up in
    /// `chunks` rows, where form 2 records are.
    in_use: AtomicBool,
    /// Messages whose files have writes not yet synced, with the bytes
    /// written since the last sync. At most one entry per message being
    /// uploaded, so bounded by the store's message quota.
    dirty: Mutex<HashMap<[u8; 32], Dirty>>,
}

#[derive(Debug, Default)]
struct Dirty {
    /// The file, open for writing: the next chunk needs no open. Dropped
    /// with the entry, at the sync before any durable commit (every
    /// deposit and every completed upload is one) or when the file is
    /// removed; so only files written since the last durable commit stay
    /// open, at most about as many as uploads run at once.
    file: Option<Arc<File>>,
    /// Bytes written since the last sync (or background sync start).
    unsynced: u64,
    /// Whether a background sync of this file is running.
    syncing: Arc<AtomicBool>,
}

impl ChunkFiles {
    /// The chunk files of the store in `store_dir`.
    pub(super) fn new(store_dir: &Path) -> Self {
        let dir = store_dir.join(CHUNK_DIR_NAME);
        let in_use = dir.is_dir();
        Self {
            dir,
            writing: AtomicBool::new(false),
            in_use: AtomicBool::new(in_use),
            dirty: Mutex::new(HashMap::new()),
        }
    }

    /// Writes new chunks to files from now on.
    pub(super) fn enable(&self) {
        self.writing.store(true, Ordering::Relaxed);
        self.in_use.store(true, Ordering::Relaxed);
    }

    /// Whether new chunks go to files.
    pub(super) fn writing(&self) -> bool {
        self.writing.load(Ordering::Relaxed)
    }

    /// Whether chunk records may be of form 2 (see `chunk_rows::contains`).
    pub(super) fn in_use(&self) -> bool {
        self.in_use.load(Ordering::Relaxed)
    }

    fn path(&self, id: &[u8; 32]) -> PathBuf {
        self.dir.join(hex::encode(id))
    }

    /// Whether message `id` has a file.
    pub(super) fn exists(&self, id: &[u8; 32]) -> bool {
        self.path(id).exists()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], Dirty>> {
        self.dirty.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes chunk `index` of message `id` into the message's file
    /// (created if missing), not synced.
    pub(super) fn write(&self, id: &[u8; 32], index: u32, bytes: &[u8]) -> Result<(), StoreError> {
        let open = self.lock().get(id).and_then(|d| d.file.clone());
        let file = match open {
            Some(file) => file,
            None => Arc::new(self.open(id)?),
        };
        pos::write_all_at(&file, bytes, offset(index))?;
        // Marked after the write: a sync that takes the mark covers it.
        self.mark_written(id, file, bytes.len() as u64, false);
        Ok(())
    }

    /// Makes the file at `from`, `len` bytes laid out as a chunk file (chunk
    /// `i` at byte `i × CIPHERTEXT_CHUNK_SIZE`: a sender's spool), the
    /// chunk file of message `id`, by renaming it, replacing any. It counts
    /// as `len` bytes written and not synced: the next durable commit syncs
    /// it, and a sync starts in the background as for written chunks.
    /// `Ok(false)`, with `from` left where it is, when it cannot be renamed
    /// (on another file system, say).
    pub(super) fn adopt(&self, id: &[u8; 32], from: &Path, len: u64) -> Result<bool, StoreError> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(id);
        if let Err(e) = std::fs::rename(from, &path) {
            tracing::debug!(error = %e, "could not move a file into the chunk files");
            return Ok(false);
        }
        let file = match OpenOptions::new().write(true).open(&path) {
            Ok(f) => Arc::new(f),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e.into());
            }
        };
        self.mark_written(id, file, len, true);
        Ok(true)
    }

    /// Marks `bytes` written to `file`, the file of message `id` (`fresh`:
    /// it replaces whatever file the mark held), and starts a background
    /// sync once enough are.
    fn mark_written(&self, id: &[u8; 32], file: Arc<File>, bytes: u64, fresh: bool) {
        let background = {
            let mut dirty = self.lock();
            // `remove` unlinks under this lock: a file it unlinked while
            // this chunk was written is not kept open for the next one.
            let linked = pos::is_linked(&file);
            let d = dirty.entry(*id).or_default();
            if (d.file.is_none() || fresh) && linked {
                d.file = Some(file.clone());
            }
            d.unsynced += bytes;
            if d.unsynced >= BACKGROUND_SYNC_BYTES && !d.syncing.swap(true, Ordering::AcqRel) {
                d.unsynced = 0;
                Some(d.syncing.clone())
            } else {
                None
            }
        };
        if let Some(flag) = background {
            // Starts the writeback early; the message stays dirty, so the
            // sync before a durable commit still waits for all of it.
            let spawned = std::thread::Builder::new()
                .name("chunk-file-sync".into())
                .spawn(move || {
                    let _ = file.sync_data();
                    flag.store(false, Ordering::Release);
                });
            if spawned.is_err() {
                // No thread: the sync before the commit does it all.
                // (The flag stays set; this message gets no more background syncs.)
                tracing::debug!("could not start a background chunk file sync");
            }
        }
    }

    /// The file of message `id`, open for writing, created if missing.
    fn open(&self, id: &[u8; 32]) -> Result<File, StoreError> {
        let path = self.path(id);
        let mut open = OpenOptions::new();
        open.write(true).create(true).truncate(false);
        Ok(match open.open(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.dir)?;
                open.open(&path)?
            }
            r => r?,
        })
    }

    /// Reads bytes `start..end` of chunk `index` of message `id`.
    /// [`StoreError::NotFound`] if the file is gone (its message was deleted
    /// after the caller read the row); a short file is corruption.
    pub(super) fn read(
        &self,
        id: &[u8; 32],
        index: u32,
        start: usize,
        end: usize,
    ) -> Result<Vec<u8>, StoreError> {
        let file = match File::open(self.path(id)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound("chunk"));
            }
            r => r?,
        };
        let mut buf = vec![0u8; end.saturating_sub(start)];
        match pos::read_exact_at(&file, &mut buf, offset(index) + start as u64) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(StoreError::corrupt("a chunk file is shorter than its rows"))
            }
            r => r.map(|()| buf).map_err(StoreError::from),
        }
    }

    /// Syncs every file written since the last call, then the directory.
    /// The caller holds the writer lock and is about to commit durably.
    pub(super) fn sync_dirty(&self) -> Result<(), StoreError> {
        let ids: Vec<([u8; 32], Option<Arc<File>>)> = {
            let mut dirty = self.lock();
            if dirty.is_empty() {
                return Ok(());
            }
            dirty.drain().map(|(id, d)| (id, d.file)).collect()
        };
        let r = self.sync_files(&ids);
        if r.is_err() {
            // Not known to be durable: keep them dirty.
            let mut dirty = self.lock();
            for (id, _) in ids {
                dirty.entry(id).or_default();
            }
        }
        r
    }

    fn sync_files(&self, ids: &[([u8; 32], Option<Arc<File>>)]) -> Result<(), StoreError> {
        for (id, file) in ids {
            if let Some(file) = file {
                file.sync_data()?;
                continue;
            }
            match File::open(self.path(id)) {
                Ok(f) => f.sync_data()?,
                // Deleted meanwhile: nothing to keep.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        sync_dir(&self.dir);
        Ok(())
    }

    /// Removes the file of message `id`, if any. The caller holds the writer
    /// lock, after committing the deletion of the message.
    pub(super) fn remove(&self, id: &[u8; 32]) -> Result<(), StoreError> {
        // Unlinked under the lock (see `write`).
        let mut dirty = self.lock();
        dirty.remove(id);
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r.map_err(StoreError::from),
        }
    }

    /// Removes every file whose message `keep` does not know, at open.
    /// Names that are not a message id in hex are left alone.
    pub(super) fn sweep(
        &self,
        mut keep: impl FnMut(&[u8; 32]) -> Result<bool, StoreError>,
    ) -> Result<usize, StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            r => r?,
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(parse_id) else {
                continue;
            };
            if !keep(&id)? {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Byte offset of chunk `index` in its file.
fn offset(index: u32) -> u64 {
    u64::from(index) * CIPHERTEXT_CHUNK_SIZE as u64
}

/// A file name that is a message id in lowercase hex.
fn parse_id(name: &str) -> Option<[u8; 32]> {
    if name.len() != 64 || name.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut id = [0u8; 32];
    hex::decode_to_slice(name, &mut id).ok()?;
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_read_back_where_they_were_written_and_sweep_keeps_known_ids() {
        let dir = tempfile::tempdir().unwrap();
        let files = ChunkFiles::new(dir.path());
        assert!(!files.in_use());
        files.enable();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        files.write(&a, 2, b"third").unwrap();
        files.write(&a, 0, b"first").unwrap();
        files.write(&b, 0, b"other").unwrap();
        assert_eq!(files.read(&a, 2, 0, 5).unwrap(), b"third");
        assert_eq!(files.read(&a, 0, 1, 4).unwrap(), b"irs");
        assert_eq!(files.read(&a, 1, 0, 5).unwrap(), [0u8; 5], "a hole");
        assert!(matches!(
            files.read(&a, 3, 0, 5),
            Err(StoreError::Corrupt(_))
        ));
        files.sync_dirty().unwrap();
        assert!(files.lock().is_empty());

        std::fs::write(dir.path().join(CHUNK_DIR_NAME).join("notes.txt"), b"x").unwrap();
        let removed = files.sweep(|id| Ok(*id == a)).unwrap();
        assert_eq!(removed, 1);
        assert!(matches!(
            files.read(&b, 0, 0, 5),
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(files.read(&a, 0, 0, 5).unwrap(), b"first");
        files.remove(&a).unwrap();
        files.remove(&a).unwrap();
        assert!(matches!(
            files.read(&a, 0, 0, 5),
            Err(StoreError::NotFound(_))
        ));
        assert!(dir.path().join(CHUNK_DIR_NAME).join("notes.txt").exists());
        assert!(ChunkFiles::new(dir.path()).in_use());
    }

    #[test]
    fn a_file_stays_open_while_dirty_and_not_past_its_removal() {
        let dir = tempfile::tempdir().unwrap();
        let files = ChunkFiles::new(dir.path());
        files.enable();
        let a = [1u8; 32];
        files.write(&a, 0, b"first").unwrap();
        let open = files.lock().get(&a).and_then(|d| d.file.clone()).unwrap();
        files.write(&a, 1, b"second").unwrap();
        let same = files.lock().get(&a).and_then(|d| d.file.clone()).unwrap();
        assert!(
            Arc::ptr_eq(&open, &same),
            "the second chunk reused the open file"
        );
        files.sync_dirty().unwrap();
        assert!(files.lock().is_empty(), "closed once synced");
        // A removed file is not written through a handle kept from before.
        files.write(&a, 0, b"first").unwrap();
        files.remove(&a).unwrap();
        assert!(!pos::is_linked(&open));
        files.write(&a, 0, b"again").unwrap();
        assert_eq!(files.read(&a, 0, 0, 5).unwrap(), b"again");
    }

    #[test]
    fn only_lowercase_hex_ids_are_file_names() {
        assert_eq!(parse_id(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(parse_id(&"AB".repeat(32)), None);
        assert_eq!(parse_id(&"ab".repeat(31)), None);
        assert_eq!(parse_id(&"zz".repeat(32)), None);
    }
}
