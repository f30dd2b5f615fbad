//! Deleting: acknowledgement, revocation, expiry, and the one routine that
//! removes a message with everything of it.

use mayfly_protocol::{
    Applied, Envelope, MAX_ACKS, RevocationLedger, RevocationRecord, SigningPublicKey, UnixMillis,
};
use rand_chacha::ChaCha20Rng;
use redb::{ReadableTable, ReadableTableMetadata};

use super::chunk_rows::{self, ChunkForm};
use super::crypt::{SEAL_OVERHEAD, random_nonce};
use super::records::{EnvelopeMeta, IdentityRecord, MessageMeta};
use super::tables::{RESERVED_BYTES, STORED_BYTES, T_CHUNKS, Tables, seconds};
use super::{CollectStats, FF32, RelayStore, StoreError, ZERO32};

impl RelayStore {
    /// Deletes the complete entries `seqs` of `mailbox` (unknown sequence
    /// numbers are ignored) and returns how many it deleted. A message whose
    /// last envelope goes is deleted with its manifest and chunks, and its
    /// data key is wiped.
    pub fn ack(&self, mailbox: &SigningPublicKey, seqs: &[u64]) -> Result<usize, StoreError> {
        if seqs.len() > MAX_ACKS {
            return Err(StoreError::TooLarge("acknowledgement"));
        }
        let mb = mailbox.to_bytes();
        let mut w = self.writer();
        let (mut wipe, mut gone) = (Vec::new(), Vec::new());
        let mut deleted = 0;
        let txn = self.db.begin_write()?;
        {
            let mut t = Tables::open(&txn)?;
            for &seq in seqs {
                let Some(id) = t.mailbox_seq.get((&mb, seq))?.map(|g| *g.value()) else {
                    continue;
                };
                let env = remove_envelope(&mut t, &mb, &id)?;
                deleted += 1;
                let Some(mut meta) = get_meta(&t, &id)? else {
                    return Err(StoreError::corrupt("an envelope without its message"));
                };
                meta.envelopes = meta.envelopes.saturating_sub(1);
                if env.seq == 0 {
                    meta.pending = meta.pending.saturating_sub(1);
                }
                if meta.envelopes == 0 {
                    if let Some(slot) = self.erase_message(&mut t, &id, &mut w.rng)? {
                        wipe.push(slot);
                        gone.push(id);
                    }
                } else {
                    t.messages.insert(&id, meta.encode().as_slice())?;
                }
            }
        }
        self.commit(txn)?;
        self.release_erased(&mut w, &wipe, &gone)?;
        Ok(deleted)
    }

    /// Applies a revocation record (decoded, hence verified) at `now`
    /// (SPEC §11): a new one leaves a tombstone, so the message cannot be
    /// deposited again until `keep_until`, and deletes every envelope, the
    /// manifest and the chunks of the message at once, wiping its data key.
    /// A replay answers [`Applied::AlreadyRevoked`] and changes nothing.
    ///
    /// Fails with [`StoreError::Invalid`] for a record from the future and
    /// [`StoreError::QuotaExceeded`] when the tombstones are at
    /// [`super::StoreLimits::max_tombstones`] even after dropping those due.
    pub fn revoke(
        &self,
        record: &RevocationRecord,
        now: UnixMillis,
    ) -> Result<Applied, StoreError> {
        let id = record.message_id().0;
        // The protocol's ledger decides validity and keep_until; the store persists the result.
        let mut ledger = RevocationLedger::new(1);
        ledger
            .apply(record, now)
            .map_err(|_| StoreError::Invalid("revocation from the future"))?;
        let tomb = *ledger
            .get(&record.message_id())
            .ok_or_else(|| StoreError::corrupt("ledger"))?;
        let mut w = self.writer();
        let txn = self.db.begin_write()?;
        let wipe;
        {
            let mut t = Tables::open(&txn)?;
            if t.tombstones.get(&id)?.is_some() {
                return Ok(Applied::AlreadyRevoked);
            }
            if t.tombstones.len()? >= self.limits.max_tombstones {
                drop_tombstones(&mut t, now, u64::from(self.limits.collect_batch))?;
                if t.tombstones.len()? >= self.limits.max_tombstones {
                    return Err(StoreError::QuotaExceeded("tombstones"));
                }
            }
            t.tombstones
                .insert(&id, (tomb.revoked_at.0, tomb.keep_until.0))?;
            t.tombstone_expiries.insert((tomb.keep_until.0, &id), ())?;
            wipe = self.erase_message(&mut t, &id, &mut w.rng)?;
        }
        self.commit(txn)?;
        self.release_erased(&mut w, wipe.as_slice(), &[id])?;
        Ok(Applied::Revoked)
    }

    /// Deletes every message whose `expires_at ≤ now` (with its envelopes,
    /// manifest and chunks, wiping its key), every envelope still pending
    /// [`super::StoreLimits::pending_ttl_secs`] after its deposit (an
    /// abandoned upload, RELAY.md §5.2 step 4), and every
    /// tombstone whose `keep_until ≤ now`, at most
    /// [`super::StoreLimits::collect_batch`] of each per call, in one
    /// transaction; `more` says whether to call again.
    pub fn collect(&self, now: UnixMillis) -> Result<CollectStats, StoreError> {
        let batch = self.limits.collect_batch as usize;
        let mut stats = CollectStats::default();
        let mut w = self.writer();
        let (mut wipe, mut gone) = (Vec::new(), Vec::new());
        let txn = self.db.begin_write()?;
        {
            let mut t = Tables::open(&txn)?;
            let due: Vec<(u64, [u8; 32])> = t
                .expiries
                .range((0u64, &ZERO32)..=(now.0, &FF32))?
                .take(batch + 1)
                .map(|r| r.map(|(k, _)| (k.value().0, *k.value().1)))
                .collect::<Result<_, _>>()?;
            stats.more = due.len() > batch;
            for (expires_at, id) in due.iter().take(batch) {
                let envelopes = get_meta(&t, id)?.map_or(0, |m| m.envelopes);
                if let Some(slot) = self.erase_message(&mut t, id, &mut w.rng)? {
                    wipe.push(slot);
                    gone.push(*id);
                    stats.messages += 1;
                    stats.envelopes += u64::from(envelopes);
                } else {
                    // An index row without its message: drop it.
                    t.expiries.remove((*expires_at, id))?;
                }
            }
            let more = self.collect_abandoned(
                &mut t,
                now,
                batch,
                &mut stats,
                &mut w.rng,
                (&mut wipe, &mut gone),
            )?;
            stats.more |= more;
            let (n, more) = drop_tombstones(&mut t, now, batch as u64)?;
            stats.tombstones = n;
            stats.more |= more;
        }
        self.commit(txn)?;
        self.release_erased(&mut w, &wipe, &gone)?;
        drop(w);
        if let Some(replay) = &self.replay {
            let replays = replay.collect(now)?;
            stats.replay_segments = replays.segments;
            stats.replay_tombstones = replays.tombstones;
            stats.more |= replays.more;
        }
        Ok(stats)
    }
}

impl RelayStore {
    /// Deletes up to `limit` envelopes deposited at least
    /// [`super::StoreLimits::pending_ttl_secs`] before `now` and still
    /// pending, as expiry would delete them: each gives back what it charged
    /// to its mailbox and depositor, and a message left with no envelope is
    /// erased with its manifest and chunks (its key slot and id are added to
    /// `wipe` and `gone`). A message that another envelope still refers to
    /// keeps its chunks. Returns whether more are due.
    fn collect_abandoned(
        &self,
        t: &mut Tables,
        now: UnixMillis,
        limit: usize,
        stats: &mut CollectStats,
        rng: &mut ChaCha20Rng,
        (wipe, gone): (&mut Vec<u32>, &mut Vec<[u8; 32]>),
    ) -> Result<bool, StoreError> {
        // Deposited at or before `cutoff`: deadline (deposited_at + TTL) ≤ now.
        let Some(cutoff) = now.0.checked_sub(self.limits.pending_ttl_ms()) else {
            return Ok(false);
        };
        let due: Vec<(u64, [u8; 32], [u8; 32])> = t
            .pending
            .range((0u64, &ZERO32, &ZERO32)..=(cutoff, &FF32, &FF32))?
            .take(limit + 1)
            .map(|r| r.map(|(k, _)| (k.value().0, *k.value().1, *k.value().2)))
            .collect::<Result<_, _>>()?;
        for (at, mb, id) in due.iter().take(limit) {
            let env = match t.envelopes.get((mb, id))? {
                Some(g) => Some(EnvelopeMeta::decode(g.value())?.0),
                None => None,
            };
            if !env.is_some_and(|e| e.seq == 0 && e.deposited_at == *at) {
                // An index row without its pending envelope: drop it.
                t.pending.remove((*at, mb, id))?;
                continue;
            }
            remove_envelope(t, mb, id)?;
            stats.abandoned += 1;
            stats.envelopes += 1;
            let Some(mut meta) = get_meta(t, id)? else {
                return Err(StoreError::corrupt("an envelope without its message"));
            };
            meta.envelopes = meta.envelopes.saturating_sub(1);
            meta.pending = meta.pending.saturating_sub(1);
            if meta.envelopes == 0 {
                if let Some(slot) = self.erase_message(t, id, rng)? {
                    wipe.push(slot);
                    gone.push(*id);
                    stats.messages += 1;
                }
            } else {
                t.messages.insert(id, meta.encode().as_slice())?;
            }
        }
        Ok(due.len() > limit)
    }
}

/// Drops up to `limit` tombstones with `keep_until ≤ now`; returns how many,
/// and whether more are due.
fn drop_tombstones(t: &mut Tables, now: UnixMillis, limit: u64) -> Result<(u64, bool), StoreError> {
    let due: Vec<(u64, [u8; 32])> = t
        .tombstone_expiries
        .range((0u64, &ZERO32)..=(now.0, &FF32))?
        .take(limit as usize + 1)
        .map(|r| r.map(|(k, _)| (k.value().0, *k.value().1)))
        .collect::<Result<_, _>>()?;
    let more = due.len() as u64 > limit;
    let mut n = 0;
    for (keep_until, id) in due.iter().take(limit as usize) {
        t.tombstone_expiries.remove((*keep_until, id))?;
        if t.tombstones.remove(id)?.is_some() {
            n += 1;
        }
    }
    Ok((n, more))
}

pub(super) fn get_meta(t: &Tables, id: &[u8; 32]) -> Result<Option<MessageMeta>, StoreError> {
    t.messages
        .get(id)?
        .map(|g| MessageMeta::decode(g.value()))
        .transpose()
}

pub(super) fn get_identity(
    t: &Tables,
    identity: &[u8; 32],
) -> Result<Option<IdentityRecord>, StoreError> {
    t.identities
        .get(identity)?
        .map(|g| IdentityRecord::decode(g.value()))
        .transpose()
}

/// Removes the envelope of message `id` in `mailbox` with its index rows,
/// and gives back what it charged to the mailbox and the depositor. The
/// message's own counters are the caller's.
pub(super) fn remove_envelope(
    t: &mut Tables,
    mailbox: &[u8; 32],
    id: &[u8; 32],
) -> Result<EnvelopeMeta, StoreError> {
    let raw = t
        .envelopes
        .remove((mailbox, id))?
        .map(|g| g.value().to_vec())
        .ok_or_else(|| StoreError::corrupt("a listed envelope is missing"))?;
    let (env, _) = EnvelopeMeta::decode(&raw)?;
    t.message_envelopes.remove((id, mailbox))?;
    if env.seq != 0 {
        t.mailbox_seq.remove((mailbox, env.seq))?;
    } else {
        t.pending.remove((env.deposited_at, mailbox, id))?;
    }
    if let Some(mut rec) = get_identity(t, mailbox)? {
        rec.entries = rec.entries.saturating_sub(1);
        rec.bytes = rec.bytes.saturating_sub(env.charged);
        t.identities.insert(mailbox, rec.encode().as_slice())?;
    }
    let dep = t
        .depositors
        .get(env.depositor.as_slice())?
        .map(|g| g.value());
    if let Some((bytes, entries)) = dep {
        if entries <= 1 {
            t.depositors.remove(env.depositor.as_slice())?;
        } else {
            t.depositors.insert(
                env.depositor.as_slice(),
                (bytes.saturating_sub(env.charged), entries - 1),
            )?;
        }
    }
    t.add_counter(STORED_BYTES, -(Envelope::LEN as i128))?;
    Ok(env)
}

impl RelayStore {
    /// Deletes message `id`: its remaining envelopes, its manifest, its
    /// references to chunks, and each chunk no other message names. A shared
    /// chunk sealed under this message's key is re-sealed under the key of a
    /// message that still names it; one in this message's chunk file is copied
    /// into a record of form 1. Returns the message's key slot, to wipe once
    /// the transaction has committed (`None` if there was no such message),
    /// when its chunk file is removed too ([`RelayStore::release_erased`]).
    pub(super) fn erase_message(
        &self,
        t: &mut Tables,
        id: &[u8; 32],
        rng: &mut ChaCha20Rng,
    ) -> Result<Option<u32>, StoreError> {
        let keys = &self.keys;
        let Some(meta) = get_meta(t, id)? else {
            return Ok(None);
        };
        let mailboxes = seconds(&t.message_envelopes, id)?;
        for mb in &mailboxes {
            remove_envelope(t, mb, id)?;
        }
        let hashes = seconds(&t.message_chunks, id)?;
        // `None` when the key is lost (see `RelayStore::reconcile`).
        let key = keys.key_for(meta.slot, id)?;
        for h in &hashes {
            t.message_chunks.remove((id, h))?;
            t.chunk_refs.remove((h, id))?;
            let Some(row) = chunk_rows::get(&t.chunks, &t.chunk_tails, h)? else {
                continue;
            };
            let len = row.chunk_len().unwrap_or(0);
            let other = t
                .chunk_refs
                .range((h, &ZERO32)..=(h, &FF32))?
                .next()
                .transpose()?
                .map(|(k, _)| *k.value().1);
            match other {
                None => {
                    chunk_rows::remove(t, h)?;
                    t.add_counter(STORED_BYTES, -(len as i128))?;
                }
                // A chunk kept as uploaded needs no key: the next holder reads it
                // as it is, from a record once this message's file is gone.
                Some(next) if row.owner == *id && row.form == ChunkForm::InFile => {
                    let index = row.in_file().map_or(0, |(i, _)| i);
                    match self.files.read(id, index, 0, len) {
                        Ok(data) => {
                            let mut r = chunk_rows::record(&next, ChunkForm::AsReceived, len);
                            r.extend_from_slice(&data);
                            chunk_rows::put(t, h, &r)?;
                        }
                        Err(StoreError::NotFound(_) | StoreError::Corrupt(_)) => {
                            drop_chunk(t, h, len)?;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Some(next) if row.owner == *id && row.form == ChunkForm::Sealed => {
                    let next_key = match get_meta(t, &next)? {
                        Some(m) => keys.key_for(m.slot, &next)?,
                        None => None,
                    };
                    match (&key, next_key) {
                        (Some(k), Some(nk)) => {
                            let plain = k.open(T_CHUNKS, h, &row.data)?;
                            let mut r = chunk_rows::record(
                                &next,
                                ChunkForm::Sealed,
                                plain.len() + SEAL_OVERHEAD,
                            );
                            nk.seal_into(T_CHUNKS, h, &plain, random_nonce(rng), &mut r)?;
                            chunk_rows::put(t, h, &r)?;
                        }
                        // Unreadable without a key.
                        _ => drop_chunk(t, h, len)?,
                    }
                }
                Some(_) => {}
            }
        }
        t.manifests.remove(id)?;
        t.expiries.remove((meta.expires_at, id))?;
        t.messages.remove(id)?;
        t.add_counter(STORED_BYTES, -i128::from(meta.manifest_len))?;
        t.add_counter(RESERVED_BYTES, -i128::from(meta.reserved()))?;
        Ok(Some(meta.slot))
    }
}

/// Deletes chunk `h` (`len` bytes) that cannot be kept for the messages
/// that still name it: they lack it again.
fn drop_chunk(t: &mut Tables, h: &[u8; 32], len: usize) -> Result<(), StoreError> {
    chunk_rows::remove(t, h)?;
    t.add_counter(STORED_BYTES, -(len as i128))?;
    let holders = seconds(&t.chunk_refs, h)?;
    for x in &holders {
        if let Some(mut m) = get_meta(t, x)? {
            m.present = m.present.saturating_sub(1);
            t.messages.insert(x, m.encode().as_slice())?;
        }
    }
    Ok(())
}
