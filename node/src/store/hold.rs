//! Held clips: a clip kept only so that its chunks can be served, with no
//! envelope for anyone (a sender's copy of a clip it sent, RELAY.md §8).

use std::path::Path;

use mayfly_protocol::{Manifest, UnixMillis};

use super::deposit::{PreparedChunk, missing_chunks};
use super::erase::get_meta;
use super::tables::Tables;
use super::{RelayStore, StoreError, Writer};

impl RelayStore {
    /// Keeps `manifest`'s clip at `now` with no envelope, so that GetChunk
    /// can serve its chunks once they are added with
    /// [`RelayStore::put_chunk`]. Returns the indices of the chunks still
    /// missing. It is erased like any clip: at expiry by
    /// [`RelayStore::collect`], or at once by [`RelayStore::revoke`]; it is
    /// never listed. Holding a clip already stored changes nothing.
    ///
    /// Refuses a revoked message id, an expired clip or one expiring too far
    /// ahead, one larger than `max_clip_bytes`, a known id with another
    /// manifest, and a clip beyond the store's message or byte quota.
    pub fn hold(&self, manifest: &Manifest, now: UnixMillis) -> Result<Vec<u32>, StoreError> {
        let mut w = self.writer();
        let mut fresh = None;
        let r = self.hold_txn(&mut w, &mut fresh, manifest, now);
        if r.is_err()
            && let Some(slot) = fresh
        {
            // The transaction did not commit: nothing refers to the new key.
            let _ = self.release_slots(&mut w, &[slot]);
        }
        drop(w);
        Ok(self.not_waiting(&manifest.message_id().0, manifest, r?))
    }

    /// [`RelayStore::hold`] for a clip whose ciphertext is already in the
    /// file at `spool`, laid out as a chunk file (chunk `i` at byte `i ×
    /// CIPHERTEXT_CHUNK_SIZE`, as a sender seals it): in a store that keeps
    /// chunk files, the file itself becomes the clip's chunk file (renamed
    /// into `chunks/`, so on the same file system) and its chunk records
    /// name it, in one transaction, with no chunk read, hashed or written
    /// again. The caller vouches that the file holds the chunks the
    /// manifest names (it sealed them and computed their hashes); whoever
    /// fetches a chunk checks it against the manifest in any case.
    ///
    /// `Ok(true)`: held, complete, and the file is the store's. `Ok(false)`:
    /// nothing changed and the file is where it was, because the store
    /// keeps no chunk files, the clip is stored already, or the file could
    /// not be moved; [`RelayStore::hold`] and [`RelayStore::put_chunk`] do
    /// it then. Refuses what `hold` refuses, and a file whose length is not
    /// the clip's.
    ///
    /// The transaction commits as a chunk that completes nothing does
    /// ([`RelayStore::with_lazy_chunk_commits`]); the file counts as
    /// written and unsynced, so the next durable commit syncs it first.
    pub fn hold_file(
        &self,
        manifest: &Manifest,
        now: UnixMillis,
        spool: &Path,
    ) -> Result<bool, StoreError> {
        if !self.files.writing() {
            return Ok(false);
        }
        if std::fs::metadata(spool)?.len() != manifest.ciphertext_len() {
            return Err(StoreError::Invalid("the file is not the clip's ciphertext"));
        }
        let id = manifest.message_id().0;
        let mut w = self.writer();
        let mut fresh = None;
        let mut adopted = false;
        let r = self.hold_file_txn(&mut w, &mut fresh, &mut adopted, manifest, now, spool);
        if !matches!(r, Ok(true)) {
            // Nothing committed: nothing refers to the new key or the file.
            if adopted && let Err(e) = self.files.remove(&id) {
                tracing::warn!(error = %e, "could not remove a chunk file; the next open will");
            }
            if let Some(slot) = fresh {
                let _ = self.release_slots(&mut w, &[slot]);
            }
        }
        r
    }

    fn hold_file_txn(
        &self,
        w: &mut Writer,
        fresh: &mut Option<u32>,
        adopted: &mut bool,
        manifest: &Manifest,
        now: UnixMillis,
        spool: &Path,
    ) -> Result<bool, StoreError> {
        let id = manifest.message_id().0;
        let manifest_bytes = mayfly_protocol::codec::Codec::to_bytes(manifest);
        let mut txn = self.db.begin_write()?;
        {
            let mut t = Tables::open(&txn)?;
            self.check_clip(&t, manifest, now)?;
            if get_meta(&t, &id)?.is_some() {
                return Ok(false);
            }
            let (meta, _) = self.new_message(w, fresh, &mut t, manifest, &manifest_bytes)?;
            t.messages.insert(&id, meta.encode().as_slice())?;
            if !self.files.adopt(&id, spool, manifest.ciphertext_len())? {
                return Ok(false);
            }
            *adopted = true;
            for (index, hash) in (0u32..).zip(manifest.chunk_hashes()) {
                let len = manifest.chunk_ciphertext_len(index);
                let chunk = PreparedChunk::written(&id, index, len, *hash);
                // Refused only if the message were gone: it was made above.
                self.write_chunk(&mut t, &chunk)??;
            }
        }
        if self.lazy_chunks {
            txn.set_durability(redb::Durability::None)
                .map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
            txn.commit()?;
        } else {
            self.commit(txn)?;
        }
        Ok(true)
    }

    fn hold_txn(
        &self,
        w: &mut Writer,
        fresh: &mut Option<u32>,
        manifest: &Manifest,
        now: UnixMillis,
    ) -> Result<Vec<u32>, StoreError> {
        let id = manifest.message_id().0;
        let manifest_bytes = mayfly_protocol::codec::Codec::to_bytes(manifest);
        let txn = self.db.begin_write()?;
        let missing;
        {
            let mut t = Tables::open(&txn)?;
            self.check_clip(&t, manifest, now)?;
            if let Some(meta) = get_meta(&t, &id)? {
                if meta.manifest_hash != manifest.hash() {
                    return Err(StoreError::Conflict("another manifest for this message id"));
                }
                return missing_chunks(&t, manifest, &meta, self.in_files());
            }
            let (meta, _) = self.new_message(w, fresh, &mut t, manifest, &manifest_bytes)?;
            t.messages.insert(&id, meta.encode().as_slice())?;
            missing = missing_chunks(&t, manifest, &meta, self.in_files())?;
        }
        self.commit(txn)?;
        Ok(missing)
    }
}
