//! An offline integrity check of a relay store: what the crash and power-cut
//! campaigns (RELIABILITY.md) and an operator run against a stopped store.
//!
//! [`RelayStore::check`] reads every record back and checks that the store
//! is whole: redb's own integrity check; every message's key slot, sealed
//! manifest (hashing to its record's hash) and envelopes open; every stored
//! chunk reads back to its BLAKE3 hash; every listed envelope's message is
//! complete; no message or envelope has a tombstone; every used key slot
//! belongs to a message, so no erased key is left in the key file. Its cost
//! is a read of the whole store; memory is bounded by one manifest at a
//! time.

use mayfly_protocol::Manifest;
use mayfly_protocol::codec::Codec;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::chunk_rows::{self, ChunkForm};
use super::records::{EnvelopeMeta, MessageMeta};
use super::tables::{
    CHUNK_TAILS, CHUNKS, ENVELOPES, MAILBOX_SEQ, MANIFESTS, MESSAGES, T_CHUNKS, T_ENVELOPES,
    T_MANIFESTS, TOMBSTONES,
};
use super::{RelayStore, StoreError};

/// What [`RelayStore::check`] counted in a whole store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreCheck {
    /// Whether redb found damage and repaired it (a crash never should
    /// cause any: redb's commits are atomic).
    pub repaired: bool,
    /// Messages (clips), complete or not.
    pub messages: u64,
    /// Of those, the complete ones.
    pub complete: u64,
    /// Envelopes, pending or listable.
    pub envelopes: u64,
    /// Chunks read back and hash-checked.
    pub chunks: u64,
    /// Used slots in the key file.
    pub key_slots: u64,
}

impl RelayStore {
    /// Checks the whole store (see the module documentation). Needs `&mut`
    /// because redb's check wants no transaction open; run it on a store
    /// that nothing else is using, such as one just opened. The first
    /// problem found is returned as [`StoreError::Corrupt`].
    pub fn check(&mut self) -> Result<StoreCheck, StoreError> {
        // Rows the relay deferred are written first, as at a shutdown.
        self.flush_deferred()?;
        let repaired = !self
            .db
            .check_integrity()
            .map_err(|e| StoreError::corrupt(format!("redb integrity check: {e}")))?;
        let mut out = StoreCheck {
            repaired,
            ..StoreCheck::default()
        };
        let txn = self.db.begin_read()?;
        let messages = txn.open_table(MESSAGES)?;
        let manifests = txn.open_table(MANIFESTS)?;
        let chunks = txn.open_table(CHUNKS)?;
        let tails = txn.open_table(CHUNK_TAILS)?;
        let envelopes = txn.open_table(ENVELOPES)?;
        let seqs = txn.open_table(MAILBOX_SEQ)?;
        let tombstones = txn.open_table(TOMBSTONES)?;
        let bad = |what: &str, id: &[u8; 32]| {
            StoreError::corrupt(format!("{what} (message {})", hex::encode(&id[..8])))
        };

        let mut owned_slots = std::collections::HashSet::new();
        for row in messages.iter()? {
            let (id, meta) = row?;
            let id = *id.value();
            let meta = MessageMeta::decode(meta.value())?;
            out.messages += 1;
            if tombstones.get(&id)?.is_some() {
                return Err(bad("a revoked message is stored", &id));
            }
            if !owned_slots.insert(meta.slot) {
                return Err(bad("two messages share a key slot", &id));
            }
            let key = self
                .keys
                .key_for(meta.slot, &id)?
                .ok_or_else(|| bad("a message's key slot is not its own", &id))?;
            let sealed = manifests
                .get(&id)?
                .ok_or_else(|| bad("a message without its manifest", &id))?;
            let bytes = key
                .open(T_MANIFESTS, &id, sealed.value())
                .map_err(|_| bad("a manifest does not open", &id))?;
            if *blake3::hash(&bytes).as_bytes() != meta.manifest_hash {
                return Err(bad("a manifest does not match its hash", &id));
            }
            let manifest = Manifest::decode(&bytes)
                .map_err(|_| bad("a stored manifest does not decode", &id))?;
            let mut present = 0u32;
            let mut seen = std::collections::HashSet::new();
            for (i, hash) in manifest.chunk_hashes().iter().enumerate() {
                if !seen.insert(*hash) {
                    continue;
                }
                let Some(row) = chunk_rows::get(&chunks, &tails, hash)? else {
                    continue;
                };
                present += 1;
                let bytes = match row.form {
                    ChunkForm::AsReceived => row.data,
                    ChunkForm::InFile => {
                        let (index, len) = row
                            .in_file()
                            .ok_or_else(|| bad("a chunk file record", &id))?;
                        self.files.read(&row.owner, index, 0, len).map_err(|e| {
                            bad(
                                &format!("chunk {i} (file chunk {index}, {len} bytes): {e}"),
                                &id,
                            )
                        })?
                    }
                    ChunkForm::Sealed => {
                        let owner = messages
                            .get(&row.owner)?
                            .map(|g| MessageMeta::decode(g.value()))
                            .transpose()?
                            .ok_or_else(|| bad("a chunk without its owner", &id))?;
                        let key = self
                            .keys
                            .key_for(owner.slot, &row.owner)?
                            .ok_or_else(|| bad("a chunk's owner has no key", &id))?;
                        key.open_owned(T_CHUNKS, hash, row.data)
                            .map_err(|_| bad("a chunk does not open", &id))?
                    }
                };
                if bytes.len() != manifest.chunk_ciphertext_len(i as u32)
                    || blake3::hash(&bytes).as_bytes() != hash
                {
                    return Err(bad("a chunk does not match its hash", &id));
                }
                out.chunks += 1;
            }
            if present != meta.present || seen.len() as u32 != meta.distinct {
                return Err(bad("a message record miscounts its chunks", &id));
            }
            if meta.complete() {
                out.complete += 1;
            }
        }
        let mut listable = 0u64;
        for row in envelopes.iter()? {
            let (k, v) = row?;
            let (mailbox, id) = k.value();
            let (env, sealed) = EnvelopeMeta::decode(v.value())?;
            out.envelopes += 1;
            let meta = messages
                .get(id)?
                .map(|g| MessageMeta::decode(g.value()))
                .transpose()?
                .ok_or_else(|| bad("an envelope without its message", id))?;
            let key = self
                .keys
                .key_for(meta.slot, id)?
                .ok_or_else(|| bad("an envelope's message has no key", id))?;
            key.open(
                T_ENVELOPES,
                &super::deposit::envelope_key(mailbox, id),
                sealed,
            )
            .map_err(|_| bad("an envelope does not open", id))?;
            if env.seq != 0 {
                listable += 1;
                if !meta.complete() {
                    return Err(bad("an incomplete message is listed", id));
                }
                if seqs.get((mailbox, env.seq))?.map(|g| *g.value()) != Some(*id) {
                    return Err(bad("a listed envelope has no sequence row", id));
                }
            }
        }
        if seqs.len()? != listable {
            return Err(StoreError::corrupt(
                "the mailbox sequence rows do not match the listed envelopes",
            ));
        }
        let slots = self
            .writer
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .slots;
        self.keys.scan(slots, |u| {
            if owned_slots.contains(&u.slot) {
                out.key_slots += 1;
                Ok(())
            } else {
                Err(StoreError::corrupt(format!(
                    "key slot {} is used but no message owns it",
                    u.slot
                )))
            }
        })?;
        Ok(out)
    }
}
