//! Chunk records, split over two tables so that each redb page stays small.
//!
//! A chunk record is `owner message id (32) ‖ form (1) ‖ data`. Its form
//! says what `data` is: [`ChunkForm::Sealed`], the chunk sealed under its
//! owner's data key (`nonce ‖ ciphertext ‖ tag`, what a relay stores),
//! [`ChunkForm::AsReceived`], the chunk exactly as uploaded (it is the clip's
//! own ciphertext), or [`ChunkForm::InFile`], where the chunk as uploaded
//! lies in its owner's chunk file (`index (4) ‖ length (4)`, big-endian;
//! `super::chunk_files`; a client's personal store, RELAY.md §8).
//!
//! A sealed full chunk is 262 188 bytes. redb gives a leaf holding one value
//! a page of the next power-of-two size, and a 256 KiB page cannot hold a
//! record that size, so stored whole it would take (and zero, and write) a
//! 512 KiB page: several times slower to insert, and twice the disk
//! (measured with `examples/redb_page_probe.rs`). So the first [`HEAD_MAX`] bytes of a record go in
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
    /// The chunk as uploaded is chunk `index` of its owner's chunk file
    /// (form byte 2; the data is `index ‖ length`).
    InFile,
}

/// Data length of an [`ChunkForm::InFile`] record.
const IN_FILE_LEN: usize = 8;

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
        ChunkForm::InFile => 2,
    });
    r
}

/// The record of a chunk kept in its owner's chunk file as chunk `index`,
/// `len` bytes long.
pub(super) fn in_file_record(owner: &[u8; 32], index: u32, len: usize) -> Vec<u8> {
    let mut r = record(owner, ChunkForm::InFile, IN_FILE_LEN);
    r.extend_from_slice(&index.to_be_bytes());
    // At most CIPHERTEXT_CHUNK_SIZE.
    r.extend_from_slice(&(len as u32).to_be_bytes());
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
        2 if head.len() == PREFIX + IN_FILE_LEN => ChunkForm::InFile,
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
/// whose record would be longer in form 0 or 1 is looked up there: tail
/// rows are small and many share a page, while a lookup in `chunks` reads
/// (and may load from disk) a whole 256 KiB leaf. Only shorter chunks, at
/// most one per clip, are looked up in `chunks`, unless `in_files` says
/// that records may be of form 2, which never have a tail (in a store that
/// keeps chunk files, `chunks` rows are mostly small).
pub(super) fn contains(
    chunks: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    tails: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    hash: &[u8; 32],
    chunk_len: usize,
    in_files: bool,
) -> Result<bool, StoreError> {
    if !in_files && PREFIX + chunk_len > HEAD_MAX {
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
            ChunkForm::InFile => Some(self.in_file()?.1),
        }
    }

    /// The `(index, length)` of a [`ChunkForm::InFile`] record.
    pub(super) fn in_file(&self) -> Option<(u32, usize)> {
        let d: &[u8; IN_FILE_LEN] = self.data.as_slice().try_into().ok()?;
        let index = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
        let len = u32::from_be_bytes([d[4], d[5], d[6], d[7]]) as usize;
        (self.form == ChunkForm::InFile).then_some((index, len))
    }
}
