//! Deposits and chunk uploads (RELAY.md §5.2).

use mayfly_protocol::{
    CIPHERTEXT_CHUNK_SIZE, Codec, Envelope, MAX_CLIP_TTL_MS, MAX_CLOCK_SKEW_MS, MAX_PEER_ID_LEN,
    Manifest, MessageId, SigningPublicKey, UnixMillis,
};
use rand_chacha::ChaCha20Rng;
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::chunk_batch::Listed;
use super::chunk_rows::{self, ChunkForm};
use super::crypt::{DataKey, SEAL_OVERHEAD, random_nonce};
use super::erase::{get_identity, get_meta};
use super::records::{EnvelopeMeta, MessageMeta};
use super::tables::{
    CHUNK_TAILS, CHUNKS, MANIFESTS, MESSAGES, RESERVED_BYTES, STORED_BYTES, T_CHUNKS, T_ENVELOPES,
    T_MANIFESTS, TOMBSTONES, Tables, seconds,
};
use super::{Deposited, RelayStore, StoreError, Writer};

impl RelayStore {
    /// Records `envelope` for `mailbox`, with the clip's `manifest`, on
    /// behalf of the peer `depositor` (its opaque id, at most
    /// `MAX_PEER_ID_LEN` bytes), at `now` (RELAY.md §5.2 step 1).
    ///
    /// Refuses, in this order: a revoked message id ([`StoreError::Revoked`]);
    /// an `expires_at ≤ now` or beyond `now + MAX_CLIP_TTL_MS +
    /// MAX_CLOCK_SKEW_MS` ([`StoreError::Expired`]); a clip larger than
    /// `max_clip_bytes` ([`StoreError::TooLarge`]); a mailbox the store does
    /// not serve (no identity on record: [`StoreError::NotFound`]); a known
    /// message id with another manifest, or a known deposit with another
    /// envelope ([`StoreError::Conflict`]); a deposit beyond the mailbox's,
    /// the depositor's or the store's quota ([`StoreError::QuotaExceeded`]).
    ///
    /// The envelope stays **pending**, never listed, until every chunk is
    /// stored. If they all are already (the same clip deposited for another
    /// recipient), it is listed at once. Repeating a deposit changes nothing
    /// and answers the chunks still missing, so an upload can resume; it
    /// does not move the pending deadline: an envelope still pending
    /// [`super::StoreLimits::pending_ttl_secs`] after the deposit that
    /// created it is deleted by [`RelayStore::collect`], and a deposit after
    /// that is a new one.
    pub fn deposit(
        &self,
        mailbox: &SigningPublicKey,
        envelope: &Envelope,
        manifest: &Manifest,
        depositor: &[u8],
        now: UnixMillis,
    ) -> Result<Deposited, StoreError> {
        if depositor.len() > MAX_PEER_ID_LEN {
            return Err(StoreError::TooLarge("depositor id"));
        }
        let mut w = self.writer();
        let mut fresh = None;
        let r = self.deposit_txn(
            &mut w, &mut fresh, mailbox, envelope, manifest, depositor, now,
        );
        if r.is_err()
            && let Some(slot) = fresh
        {
            // The transaction did not commit: nothing refers to the new key.
            let _ = self.release_slots(&mut w, &[slot]);
        }
        drop(w);
        let mut d = r?;
        d.missing = self.not_waiting(&manifest.message_id().0, manifest, d.missing);
        Ok(d)
    }

    #[allow(clippy::too_many_arguments)]
    fn deposit_txn(
        &self,
        w: &mut Writer,
        fresh: &mut Option<u32>,
        mailbox: &SigningPublicKey,
        envelope: &Envelope,
        manifest: &Manifest,
        depositor: &[u8],
        now: UnixMillis,
    ) -> Result<Deposited, StoreError> {
        let id = manifest.message_id().0;
        let mb = mailbox.to_bytes();
        let manifest_bytes = manifest.to_bytes();
        let envelope_bytes = envelope.to_bytes();
        let charge = manifest.ciphertext_len();
        let txn = self.db.begin_write()?;
        let out;
        {
            let mut t = Tables::open(&txn)?;
            self.check_clip(&t, manifest, now)?;
            let Some(mut ident) = get_identity(&t, &mb)? else {
                return Err(StoreError::NotFound("mailbox"));
            };
            let existing = get_meta(&t, &id)?;
            if let Some(m) = &existing
                && m.manifest_hash != manifest.hash()
            {
                return Err(StoreError::Conflict("another manifest for this message id"));
            }
            // A repeated deposit: it answers what is missing, and leaves
            // the pending deadline where the first one set it.
            if let Some(m) = &existing
                && let Some(raw) = t.envelopes.get((&mb, &id))?.map(|g| g.value().to_vec())
            {
                let (_, sealed) = EnvelopeMeta::decode(&raw)?;
                let key = self.key_locked(&id, m.slot)?;
                if key.open(T_ENVELOPES, &envelope_key(&mb, &id), sealed)? != envelope_bytes {
                    return Err(StoreError::Conflict("another envelope for this deposit"));
                }
                let missing = missing_chunks(&t, manifest, m, self.in_files())?;
                return Ok(Deposited {
                    missing,
                    listed: None,
                });
            }
            // A new envelope: every quota first.
            if ident.entries >= self.limits.mailbox_entries {
                return Err(StoreError::QuotaExceeded("mailbox entries"));
            }
            if ident.bytes.saturating_add(charge) > self.limits.mailbox_bytes {
                return Err(StoreError::QuotaExceeded("mailbox bytes"));
            }
            let dep = t.depositors.get(depositor)?.map(|g| g.value());
            let (dep_bytes, dep_entries) = dep.unwrap_or((0, 0));
            if dep_bytes.saturating_add(charge) > self.limits.depositor_bytes {
                return Err(StoreError::QuotaExceeded("depositor bytes"));
            }
            let (mut meta, key) = match existing {
                Some(m) => {
                    let key = self.key_locked(&id, m.slot)?;
                    (m, key)
                }
                None => self.new_message(w, fresh, &mut t, manifest, &manifest_bytes)?,
            };
            let seq = if meta.complete() {
                let s = ident.next_seq;
                ident.next_seq += 1;
                t.mailbox_seq.insert((&mb, s), &id)?;
                s
            } else {
                meta.pending += 1;
                // The collector's deadline for an upload that never completes.
                t.pending.insert((now.0, &mb, &id), ())?;
                0
            };
            meta.envelopes += 1;
            let env = EnvelopeMeta {
                seq,
                deposited_at: now.0,
                charged: charge,
                depositor: depositor.to_vec(),
            };
            let sealed = key.seal(
                T_ENVELOPES,
                &envelope_key(&mb, &id),
                &envelope_bytes,
                &mut w.rng,
            )?;
            t.envelopes
                .insert((&mb, &id), env.encode_with(&sealed).as_slice())?;
            t.message_envelopes.insert((&id, &mb), ())?;
            t.messages.insert(&id, meta.encode().as_slice())?;
            ident.entries += 1;
            ident.bytes += charge;
            t.identities.insert(&mb, ident.encode().as_slice())?;
            t.depositors
                .insert(depositor, (dep_bytes + charge, dep_entries + 1))?;
            t.add_counter(STORED_BYTES, Envelope::LEN as i128)?;
            out = Deposited {
                missing: missing_chunks(&t, manifest, &meta, self.in_files())?,
                listed: (seq != 0).then_some(seq),
            };
        }
        self.commit(txn)?;
        Ok(out)
    }

    /// Records `manifest` as a new message under the store's message and
    /// byte quotas, with a fresh data key in a new slot (reported in
    /// `fresh`, so the caller can release it if the transaction fails).
    pub(super) fn new_message(
        &self,
        w: &mut Writer,
        fresh: &mut Option<u32>,
        t: &mut Tables,
        manifest: &Manifest,
        manifest_bytes: &[u8],
    ) -> Result<(MessageMeta, DataKey), StoreError> {
        if t.messages.len()? >= u64::from(self.limits.max_messages) {
            return Err(StoreError::QuotaExceeded("messages"));
        }
        let reserve = manifest.ciphertext_len() + manifest_bytes.len() as u64;
        if t.counter(RESERVED_BYTES)?.saturating_add(reserve) > self.limits.total_bytes {
            return Err(StoreError::QuotaExceeded("store bytes"));
        }
        let (slot, key) = self.alloc_slot(w, &manifest.message_id().0)?;
        *fresh = Some(slot);
        let in_files = self.in_files();
        let meta = insert_message(
            t,
            manifest,
            manifest_bytes,
            (slot, &key),
            &mut w.rng,
            in_files,
        )?;
        Ok((meta, key))
    }

    /// Refuses a clip that may not be stored at `now`: a revoked message id
    /// ([`StoreError::Revoked`]), an `expires_at ≤ now` or beyond `now +
    /// MAX_CLIP_TTL_MS + MAX_CLOCK_SKEW_MS` ([`StoreError::Expired`]), a
    /// clip larger than `max_clip_bytes` ([`StoreError::TooLarge`]).
    pub(super) fn check_clip(
        &self,
        t: &Tables,
        manifest: &Manifest,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        if t.tombstones.get(&manifest.message_id().0)?.is_some() {
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
        if manifest.ciphertext_len() > self.limits.max_clip_bytes {
            return Err(StoreError::TooLarge("clip"));
        }
        Ok(())
    }

    /// Stores chunk `index` of message `id` once it matches the manifest's
    /// length and BLAKE3 hash (RELAY.md §5.2 step 2), durably before it
    /// returns. A chunk already held is accepted again without change.
    ///
    /// Returns the `(mailbox, seq)` of every envelope this chunk completed:
    /// when the last missing chunk of a message arrives, each of its pending
    /// envelopes gets its mailbox's next sequence number and becomes listable,
    /// and the relay notifies those mailboxes.
    ///
    /// The chunk is checked and sealed before the writer lock is taken, so
    /// concurrent uploads hash and encrypt in parallel and only their
    /// transactions take turns.
    pub fn put_chunk(
        &self,
        id: &MessageId,
        index: u32,
        bytes: &[u8],
    ) -> Result<Vec<(SigningPublicKey, u64)>, StoreError> {
        if bytes.len() > CIPHERTEXT_CHUNK_SIZE {
            return Err(StoreError::TooLarge("chunk"));
        }
        let id = id.0;
        if self.defers_rows()
            && let Some(r) = self.put_known_chunk(&id, index, bytes)
        {
            return r;
        }
        let checked = match self.prepare_chunk(&id, index, bytes) {
            Ok(p) => p,
            Err(e) => {
                if self.defers_rows() && matches!(e, StoreError::NotFound(_) | StoreError::Revoked)
                {
                    self.deferred.forget(&id);
                    // A chunk written before the message went (its file
                    // removed) may have brought the file back.
                    self.remove_orphan_file_unlocked(&id)?;
                }
                return Err(e);
            }
        };
        if self.defers_rows() {
            return self.defer_chunk(&id, index, checked);
        }
        match checked.chunk {
            Some(prepared) => self.commit_chunk(prepared),
            None => Ok(Vec::new()),
        }
    }

    /// Writes a prepared chunk in the writer's transaction. The inner error
    /// refuses this chunk alone and is returned before anything is written;
    /// the outer one fails the whole transaction.
    pub(super) fn write_chunk(
        &self,
        t: &mut Tables,
        chunk: &PreparedChunk,
    ) -> Result<Result<Listed, StoreError>, StoreError> {
        let id = chunk.id;
        if t.tombstones.get(&id)?.is_some() {
            return Ok(Err(StoreError::Revoked));
        }
        // The message may have gone, or gone and come back under a new
        // data key or manifest, since the chunk was sealed.
        let Some(meta) = get_meta(t, &id)? else {
            return Ok(Err(StoreError::NotFound("message")));
        };
        if chunk.form == ChunkForm::Sealed
            && Some(self.key_locked(&id, meta.slot)?.as_bytes())
                != chunk.key.as_ref().map(DataKey::as_bytes)
        {
            return Ok(Err(StoreError::NotFound("message")));
        }
        let h = chunk.hash;
        if t.message_chunks.get((&id, &h))?.is_none() {
            return Ok(Err(StoreError::NotFound("message")));
        }
        if chunk_rows::contains(&t.chunks, &t.chunk_tails, &h, chunk.len, self.in_files())? {
            return Ok(Ok(Vec::new()));
        }
        chunk_rows::put(t, &h, &chunk.record)?;
        t.add_counter(STORED_BYTES, chunk.len as i128)?;
        let holders = seconds(&t.chunk_refs, &h)?;
        let mut listed = Vec::new();
        for x in &holders {
            let Some(mut m) = get_meta(t, x)? else {
                return Err(StoreError::corrupt("a chunk reference without its message"));
            };
            m.present = (m.present + 1).min(m.distinct);
            if m.complete() {
                listed.extend(list_pending(t, x, &mut m)?);
            }
            t.messages.insert(x, m.encode().as_slice())?;
        }
        Ok(Ok(listed))
    }

    /// The part of [`RelayStore::put_chunk`] that needs no lock: checks the
    /// chunk against the manifest (in a read snapshot) and seals it or
    /// writes it to its chunk file (no chunk when it is already stored).
    fn prepare_chunk(
        &self,
        id: &[u8; 32],
        index: u32,
        bytes: &[u8],
    ) -> Result<Checked, StoreError> {
        // Read before the snapshot: a deletion after it counts as one since.
        let generation = self.deletions();
        let txn = self.db.begin_read()?;
        if txn.open_table(TOMBSTONES)?.get(id)?.is_some() {
            return Err(StoreError::Revoked);
        }
        let Some(meta) = txn
            .open_table(MESSAGES)?
            .get(id)?
            .map(|g| MessageMeta::decode(g.value()))
            .transpose()?
        else {
            return Err(StoreError::NotFound("message"));
        };
        let key = match self.key_for_read(id, meta.slot) {
            Err(StoreError::NotFound(_)) => return Err(StoreError::NotFound("message")),
            r => r?,
        };
        let manifest = self.manifests.get_or_load(id, &meta.manifest_hash, || {
            open_manifest(&txn.open_table(MANIFESTS)?, id, &key)
        })?;
        let Some(chunk) = manifest.check_chunk(index, bytes) else {
            return Err(StoreError::Conflict(
                "the chunk does not match the manifest",
            ));
        };
        let hash = *chunk.hash();
        let (chunks, tails) = (txn.open_table(CHUNKS)?, txn.open_table(CHUNK_TAILS)?);
        if chunk_rows::contains(&chunks, &tails, &hash, bytes.len(), self.in_files())? {
            return Ok(Checked {
                chunk: None,
                manifest,
                manifest_hash: meta.manifest_hash,
                generation,
            });
        }
        drop((chunks, tails));
        drop(txn);
        let prepared = if self.files.writing() {
            self.files.write(id, index, bytes)?;
            PreparedChunk::written(id, index, bytes.len(), hash)
        } else {
            let nonce = random_nonce(&mut self.writer().rng);
            let mut r = chunk_rows::record(id, ChunkForm::Sealed, bytes.len() + SEAL_OVERHEAD);
            key.seal_into(T_CHUNKS, &hash, bytes, nonce, &mut r)?;
            PreparedChunk {
                id: *id,
                index,
                len: bytes.len(),
                hash,
                key: Some(key),
                form: ChunkForm::Sealed,
                record: r,
            }
        };
        Ok(Checked {
            chunk: Some(prepared),
            manifest,
            manifest_hash: meta.manifest_hash,
            generation,
        })
    }
}

/// What [`RelayStore::put_chunk`] checked a chunk against, and the chunk
/// ready to write (`None` when it is already stored).
pub(super) struct Checked {
    pub(super) chunk: Option<PreparedChunk>,
    pub(super) manifest: Arc<Manifest>,
    /// The stored manifest's hash, as its message records it.
    pub(super) manifest_hash: [u8; 32],
    /// [`RelayStore::deletions`] before the snapshot that found the message.
    pub(super) generation: u64,
}

/// A chunk checked against its manifest and ready to write.
pub(super) struct PreparedChunk {
    pub(super) id: [u8; 32],
    /// Its index in the manifest it was checked against.
    index: u32,
    /// Length of the chunk as uploaded.
    len: usize,
    hash: [u8; 32],
    /// The data key it was sealed under (checked again under the lock);
    /// none for a chunk in its chunk file.
    key: Option<DataKey>,
    form: ChunkForm,
    /// The chunk record to store (`chunk_rows::record` with its data).
    record: Vec<u8>,
}

impl PreparedChunk {
    /// Chunk `index` of message `id`, `len` bytes with BLAKE3 `hash`,
    /// written to the message's chunk file.
    pub(super) fn written(id: &[u8; 32], index: u32, len: usize, hash: [u8; 32]) -> Self {
        Self {
            id: *id,
            index,
            len,
            hash,
            key: None,
            form: ChunkForm::InFile,
            record: chunk_rows::in_file_record(id, index, len),
        }
    }

    /// Its index in the manifest it was checked against.
    pub(super) fn index(&self) -> u32 {
        self.index
    }

    /// Whether the chunk's bytes were written to its message's chunk file.
    pub(super) fn in_file(&self) -> bool {
        self.form == ChunkForm::InFile
    }
}

impl std::fmt::Debug for PreparedChunk {
    // Not the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedChunk")
            .field("len", &self.len)
            .field("form", &self.form)
            .finish_non_exhaustive()
    }
}

/// The key of an envelope row, as associated data.
pub(super) fn envelope_key(mailbox: &[u8; 32], id: &[u8; 32]) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(mailbox);
    k[32..].copy_from_slice(id);
    k
}

/// Decrypts and decodes the manifest of message `id`.
pub(super) fn open_manifest(
    manifests: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    id: &[u8; 32],
    key: &DataKey,
) -> Result<Manifest, StoreError> {
    let sealed = manifests
        .get(id)?
        .map(|g| g.value().to_vec())
        .ok_or_else(|| StoreError::corrupt("a message without its manifest"))?;
    let bytes = key.open(T_MANIFESTS, id, &sealed)?;
    Manifest::decode(&bytes).map_err(|_| StoreError::corrupt("a stored manifest does not decode"))
}

/// Records a new message: its bookkeeping, sealed manifest, expiry and
/// chunk references. `present` counts the chunks already stored (for other
/// messages that name them; `in_files`: see `chunk_rows::contains`).
fn insert_message(
    t: &mut Tables,
    manifest: &Manifest,
    manifest_bytes: &[u8],
    (slot, key): (u32, &DataKey),
    rng: &mut ChaCha20Rng,
    in_files: bool,
) -> Result<MessageMeta, StoreError> {
    let id = manifest.message_id().0;
    let mut hashes: Vec<([u8; 32], usize)> = (0..manifest.chunk_count())
        .map(|i| {
            (
                manifest.chunk_hashes()[i as usize],
                manifest.chunk_ciphertext_len(i),
            )
        })
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    let mut present = 0u32;
    for (h, len) in &hashes {
        t.chunk_refs.insert((h, &id), ())?;
        t.message_chunks.insert((&id, h), ())?;
        if chunk_rows::contains(&t.chunks, &t.chunk_tails, h, *len, in_files)? {
            present += 1;
        }
    }
    let meta = MessageMeta {
        slot,
        expires_at: manifest.expires_at().0,
        ciphertext_len: manifest.ciphertext_len(),
        manifest_len: manifest_bytes.len() as u32,
        manifest_hash: manifest.hash(),
        // At most MAX_CHUNKS (4096).
        distinct: hashes.len() as u32,
        present,
        envelopes: 0,
        pending: 0,
    };
    let sealed = key.seal(T_MANIFESTS, &id, manifest_bytes, rng)?;
    t.manifests.insert(&id, sealed.as_slice())?;
    t.expiries.insert((meta.expires_at, &id), ())?;
    t.add_counter(STORED_BYTES, manifest_bytes.len() as i128)?;
    t.add_counter(RESERVED_BYTES, i128::from(meta.reserved()))?;
    Ok(meta)
}

/// Gives every pending envelope of the (now complete) message `id` its
/// mailbox's next sequence number. `meta` is the caller's to write back.
fn list_pending(
    t: &mut Tables,
    id: &[u8; 32],
    meta: &mut MessageMeta,
) -> Result<Vec<(SigningPublicKey, u64)>, StoreError> {
    let mailboxes = seconds(&t.message_envelopes, id)?;
    let mut out = Vec::new();
    for mb in &mailboxes {
        let raw = t
            .envelopes
            .get((mb, id))?
            .map(|g| g.value().to_vec())
            .ok_or_else(|| StoreError::corrupt("an indexed envelope is missing"))?;
        let (mut env, sealed) = EnvelopeMeta::decode(&raw)?;
        if env.seq != 0 {
            continue;
        }
        let Some(mut ident) = get_identity(t, mb)? else {
            return Err(StoreError::corrupt("an envelope for an unknown mailbox"));
        };
        t.pending.remove((env.deposited_at, mb, id))?;
        env.seq = ident.next_seq;
        ident.next_seq += 1;
        t.identities.insert(mb, ident.encode().as_slice())?;
        t.mailbox_seq.insert((mb, env.seq), id)?;
        t.envelopes
            .insert((mb, id), env.encode_with(sealed).as_slice())?;
        let owner = SigningPublicKey::from_bytes(mb)
            .map_err(|_| StoreError::corrupt("a stored mailbox key is invalid"))?;
        out.push((owner, env.seq));
    }
    meta.pending = 0;
    Ok(out)
}

/// Indices of the chunks of `manifest` not stored yet, in order
/// (`in_files`: see `chunk_rows::contains`).
pub(super) fn missing_chunks(
    t: &Tables,
    manifest: &Manifest,
    meta: &MessageMeta,
    in_files: bool,
) -> Result<Vec<u32>, StoreError> {
    if meta.complete() {
        return Ok(Vec::new());
    }
    let mut missing = Vec::new();
    for (i, h) in manifest.chunk_hashes().iter().enumerate() {
        let len = manifest.chunk_ciphertext_len(i as u32);
        if !chunk_rows::contains(&t.chunks, &t.chunk_tails, h, len, in_files)? {
            // At most MAX_CHUNKS.
            missing.push(i as u32);
        }
    }
    Ok(missing)
}
