//! Reading: listing a mailbox, manifests and chunks (RELAY.md §5.3). Reads
//! run in read transactions, concurrently with the writer.

use mayfly_protocol::mailbox::Entry;
use mayfly_protocol::{
    ChunkHash, Codec, Envelope, MAX_LIST_ENTRIES, Manifest, MessageId, SigningPublicKey, UnixMillis,
};
use redb::ReadableDatabase;

use super::chunk_rows::{self, ChunkForm};
use super::deposit::envelope_key;
use super::records::{EnvelopeMeta, MessageMeta};
use super::tables::{
    CHUNK_TAILS, CHUNKS, ENVELOPES, MAILBOX_SEQ, MANIFESTS, MESSAGES, T_CHUNKS, T_ENVELOPES,
    T_MANIFESTS,
};
use super::{RelayStore, StoreError};

impl RelayStore {
    /// The complete entries of `mailbox` with `seq > after`, in order, at most
    /// `limit` (clamped to 1..=`MAX_LIST_ENTRIES`), and whether more follow.
    /// Pending envelopes are never listed, nor entries whose message has
    /// expired at `now` (the collector deletes them at its next run).
    pub fn list(
        &self,
        mailbox: &SigningPublicKey,
        after: u64,
        limit: u16,
        now: UnixMillis,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        let limit = usize::from(limit).clamp(1, MAX_LIST_ENTRIES);
        let Some(first) = after.checked_add(1) else {
            return Ok((Vec::new(), false));
        };
        let mb = mailbox.to_bytes();
        let txn = self.db.begin_read()?;
        let seqs = txn.open_table(MAILBOX_SEQ)?;
        let envelopes = txn.open_table(ENVELOPES)?;
        let messages = txn.open_table(MESSAGES)?;
        // Expired entries are skipped, not counted: a mailbox holds at most
        // `mailbox_entries` of them, so the scan stays bounded.
        let mut rows: Vec<(u64, [u8; 32], MessageMeta)> = Vec::with_capacity(limit + 1);
        for row in seqs.range((&mb, first)..=(&mb, u64::MAX))? {
            let (k, v) = row?;
            let id = *v.value();
            let message = messages
                .get(&id)?
                .map(|g| MessageMeta::decode(g.value()))
                .transpose()?
                .ok_or_else(|| StoreError::corrupt("an envelope without its message"))?;
            if message.expires_at > now.0 {
                rows.push((k.value().1, id, message));
                if rows.len() > limit {
                    break;
                }
            }
        }
        let more = rows.len() > limit;
        let mut entries = Vec::with_capacity(rows.len().min(limit));
        for (seq, id, message) in rows.into_iter().take(limit) {
            let raw = envelopes
                .get((&mb, &id))?
                .map(|g| g.value().to_vec())
                .ok_or_else(|| StoreError::corrupt("a listed envelope is missing"))?;
            let (meta, sealed) = EnvelopeMeta::decode(&raw)?;
            let slot = message.slot;
            let key = match self.key_for_read(&id, slot) {
                Ok(k) => k,
                // Deleted since this snapshot was taken: no longer listed.
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let bytes = key.open(T_ENVELOPES, &envelope_key(&mb, &id), sealed)?;
            let envelope = Envelope::decode(&bytes)
                .map_err(|_| StoreError::corrupt("a stored envelope does not decode"))?;
            entries.push(Entry {
                seq,
                message_id: MessageId(id),
                deposited_at: UnixMillis(meta.deposited_at),
                envelope,
            });
        }
        Ok((entries, more))
    }

    /// The manifest of message `id` (pending or complete), unless it has
    /// expired at `now`.
    pub fn get_manifest(&self, id: &MessageId, now: UnixMillis) -> Result<Manifest, StoreError> {
        let id = id.0;
        let txn = self.db.begin_read()?;
        let messages = txn.open_table(MESSAGES)?;
        let Some(meta) = messages
            .get(&id)?
            .map(|g| MessageMeta::decode(g.value()))
            .transpose()?
            .filter(|m| m.expires_at > now.0)
        else {
            return Err(StoreError::NotFound("message"));
        };
        let sealed = txn
            .open_table(MANIFESTS)?
            .get(&id)?
            .map(|g| g.value().to_vec())
            .ok_or_else(|| StoreError::corrupt("a message without its manifest"))?;
        let key = self.key_for_read(&id, meta.slot)?;
        let bytes = key.open(T_MANIFESTS, &id, &sealed)?;
        Manifest::decode(&bytes)
            .map_err(|_| StoreError::corrupt("a stored manifest does not decode"))
    }

    /// Bytes `offset..offset + length` of the chunk with BLAKE3 `hash`
    /// (`length` 0: to the end). The range must lie within the chunk
    /// ([`StoreError::TooLarge`] otherwise; with `length` 0 it must not be
    /// empty).
    pub fn get_chunk(
        &self,
        hash: &ChunkHash,
        offset: u32,
        length: u32,
    ) -> Result<Vec<u8>, StoreError> {
        // A shared chunk is re-sealed when the message whose key sealed it
        // goes; a snapshot taken just before then finds that key wiped, and
        // a second look finds the chunk under its new owner.
        match self.get_chunk_once(hash, offset, length) {
            Err(StoreError::NotFound(_)) => self.get_chunk_once(hash, offset, length),
            r => r,
        }
    }

    fn get_chunk_once(
        &self,
        hash: &ChunkHash,
        offset: u32,
        length: u32,
    ) -> Result<Vec<u8>, StoreError> {
        let txn = self.db.begin_read()?;
        let chunks = txn.open_table(CHUNKS)?;
        let tails = txn.open_table(CHUNK_TAILS)?;
        let Some(row) = chunk_rows::get(&chunks, &tails, hash)? else {
            return Err(StoreError::NotFound("chunk"));
        };
        let len = row
            .chunk_len()
            .ok_or_else(|| StoreError::corrupt("short sealed chunk"))?;
        let start = offset as usize;
        let end = if length == 0 {
            len
        } else {
            start.saturating_add(length as usize)
        };
        if start >= len || end > len {
            return Err(StoreError::TooLarge("range outside the chunk"));
        }
        let mut bytes = match row.form {
            ChunkForm::InFile => {
                let (index, _) = row
                    .in_file()
                    .ok_or_else(|| StoreError::corrupt("a chunk file record"))?;
                return self.files.read(&row.owner, index, start, end);
            }
            ChunkForm::AsReceived => row.data,
            ChunkForm::Sealed => {
                let slot = txn
                    .open_table(MESSAGES)?
                    .get(&row.owner)?
                    .map(|g| MessageMeta::decode(g.value()))
                    .transpose()?
                    .ok_or_else(|| StoreError::corrupt("a chunk without its owner"))?
                    .slot;
                let key = match self.key_for_read(&row.owner, slot) {
                    Ok(k) => k,
                    Err(StoreError::NotFound(_)) => return Err(StoreError::NotFound("chunk")),
                    Err(e) => return Err(e),
                };
                key.open_owned(T_CHUNKS, hash, row.data)?
            }
        };
        bytes.truncate(end);
        bytes.drain(..start);
        Ok(bytes)
    }
}
