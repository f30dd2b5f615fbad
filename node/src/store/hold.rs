//! Held clips: a clip kept only so that its chunks can be served, with no
//! envelope for anyone (a sender's copy of a clip it sent, RELAY.md §8).

use mayfly_protocol::{MAX_CLIP_TTL_MS, MAX_CLOCK_SKEW_MS, Manifest, UnixMillis};
use redb::{ReadableTable, ReadableTableMetadata};

use super::deposit::{insert_message, missing_chunks};
use super::erase::get_meta;
use super::tables::{RESERVED_BYTES, Tables};
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
        r
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
        let charge = manifest.ciphertext_len();
        let txn = self.db.begin_write()?;
        let missing;
        {
            let mut t = Tables::open(&txn)?;
            if t.tombstones.get(&id)?.is_some() {
                return Err(StoreError::Revoked);
            }
            let expires_at = manifest.expires_at();
            if expires_at <= now {
                return Err(StoreError::Expired("the clip has expired"));
            }
            if expires_at > now.plus(MAX_CLIP_TTL_MS + MAX_CLOCK_SKEW_MS) {
                return Err(StoreError::Expired(
                    "the clip expires too far in the future",
                ));
            }
            if charge > self.limits.max_clip_bytes {
                return Err(StoreError::TooLarge("clip"));
            }
            if let Some(meta) = get_meta(&t, &id)? {
                if meta.manifest_hash != manifest.hash() {
                    return Err(StoreError::Conflict("another manifest for this message id"));
                }
                return missing_chunks(&t, manifest, &meta);
            }
            if t.messages.len()? >= u64::from(self.limits.max_messages) {
                return Err(StoreError::QuotaExceeded("messages"));
            }
            let reserve = charge + manifest_bytes.len() as u64;
            if t.counter(RESERVED_BYTES)?.saturating_add(reserve) > self.limits.total_bytes {
                return Err(StoreError::QuotaExceeded("store bytes"));
            }
            let (slot, key) = self.alloc_slot(w, &id)?;
            *fresh = Some(slot);
            let meta = insert_message(&mut t, manifest, &manifest_bytes, slot, &key, &mut w.rng)?;
            t.messages.insert(&id, meta.encode().as_slice())?;
            missing = missing_chunks(&t, manifest, &meta)?;
        }
        txn.commit()?;
        Ok(missing)
    }
}
