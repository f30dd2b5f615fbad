//! Chunk records, split over two tables so that each redb page stays small.
//!
//! A chunk record is `owner message id (32) ‖ form (1) ‖ data`. Its form
//! says what `data` is: [`ChunkForm::Sealed`], the chunk sealed under its
//! owner's data key (`nonce ‖ ciphertext ‖ tag`, what a relay stores), or
//! [`ChunkForm::AsReceived`], the chunk exactly as uploaded (it is the clip's
//! own ciphertext; a client's personal store, RELAY.md §8).
//!
//! A sealed full chunk is 262 188 bytes. redb gives a leaf holding one value
//! a page of the next power-of-two size, and a 256 KiB page cannot hold a
//! record that size, so stored whole it would take (and zero, and write) a
//! 512 KiB page: several times slower to insert, and twice the disk
//! (BENCHMARKS.md). So the first [`HEAD_MAX`] bytes of a record go in
//! `chunks` and the rest, if any, in `chunk_tails` under the same key
//! (RELAY.md §7).

use redb::ReadableTable;

use super::StoreError;
use super::tables::Tables;

/// Largest head row: what fits a 256 KiB leaf page with its key and headers.
pub(super) const HEAD_MAX: usize = 256 * 1024 - 256;

/// Owner id and form byte.
const PREFIX: usize = 33;

/// What the data of a chunk record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ChunkForm {
    /// Sealed under the owner message's data key (form byte 0).
    Sealed,
    /// The chunk's bytes as uploaded (form byte 1).
    AsReceived,
}

/// A chunk record read back.
pub(super) struct ChunkRow {
    /// The message whose data key seals a [`ChunkForm::Sealed`] chunk.
    pub owner: [u8; 32],
    pub form: ChunkForm,
    pub data: Vec<u8>,
}

/// Starts a record, `owner ‖ form`, with room for `data_len` bytes of data
/// to be appended.
pub(super) fn record(owner: &[u8; 32], form: ChunkForm, data_len: usize) -> Vec<u8> {
    let mut r = Vec::with_capacity(PREFIX + data_len);
    r.extend_from_slice(owner);
    r.push(match form {
        ChunkForm::Sealed => 0,
        ChunkForm::AsReceived => 1,
    });
    r
}

/// Writes `record` (from [`record`], data appended) for chunk `hash`,
/// replacing any.
pub(super) fn put(t: &mut Tables, hash: &[u8; 32], record: &[u8]) -> Result<(), StoreError> {
    let (head, tail) = record.split_at(record.len().min(HEAD_MAX));
    t.chunks.insert(hash, head)?;
    if tail.is_empty() {
        t.chunk_tails.remove(hash)?;
    } else {
        t.chunk_tails.insert(hash, tail)?;
    }
    Ok(())
}

/// Reads the record of chunk `hash` from its two tables.
pub(super) fn get(
    chunks: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    tails: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    hash: &[u8; 32],
) -> Result<Option<ChunkRow>, StoreError> {
    let Some(head) = chunks.get(hash)? else {
        return Ok(None);
    };
    let head = head.value();
    if head.len() < PREFIX {
        return Err(StoreError::corrupt("short chunk record"));
    }
    let mut owner = [0u8; 32];
    owner.copy_from_slice(&head[..32]);
    let form = match head[32] {
        0 => ChunkForm::Sealed,
        1 => ChunkForm::AsReceived,
        _ => return Err(StoreError::corrupt("unknown chunk record form")),
    };
    let tail = tails.get(hash)?;
    let tail = tail.as_ref().map_or(&[][..], |g| g.value());
    let mut data = Vec::with_capacity(head.len() - PREFIX + tail.len());
    data.extend_from_slice(&head[PREFIX..]);
    data.extend_from_slice(tail);
    Ok(Some(ChunkRow { owner, form, data }))
}

/// Whether chunk `hash`, `chunk_len` bytes long as uploaded, is stored.
///
/// A record longer than [`HEAD_MAX`] always has a tail row, and a chunk
/// whose record would be longer in either form is looked up there: tail
/// rows are small and many share a page, while a lookup in `chunks` reads
/// (and may load from disk) a whole 256 KiB leaf. Only shorter chunks, at
/// most one per clip, are looked up in `chunks`.
pub(super) fn contains(
    chunks: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    tails: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    hash: &[u8; 32],
    chunk_len: usize,
) -> Result<bool, StoreError> {
    if PREFIX + chunk_len > HEAD_MAX {
        Ok(tails.get(hash)?.is_some())
    } else {
        Ok(chunks.get(hash)?.is_some())
    }
}

/// Deletes the record of chunk `hash`.
pub(super) fn remove(t: &mut Tables, hash: &[u8; 32]) -> Result<(), StoreError> {
    t.chunks.remove(hash)?;
    t.chunk_tails.remove(hash)?;
    Ok(())
}

impl ChunkRow {
    /// Length of the chunk itself (without a seal's nonce and tag).
    pub(super) fn chunk_len(&self) -> Option<usize> {
        match self.form {
            ChunkForm::Sealed => super::crypt::plaintext_len(self.data.len()),
            ChunkForm::AsReceived => Some(self.data.len()),
        }
    }
}
