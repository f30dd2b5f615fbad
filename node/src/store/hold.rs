//! Held clips: a clip kept only so that its chunks can be served, with no
//! envelope for anyone (a sender's copy of a clip it sent, RELAY.md §8).

use mayfly_protocol::{Manifest, UnixMillis};

use super::deposit::missing_chunks;
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
