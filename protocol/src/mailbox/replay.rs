//! A live broadcast's replay at relays (RELAY.md §5.7, LIVE.md §13): the
//! broadcaster uploads each sealed segment, exactly the bytes it published
//! on the overlay, in pieces of at most [`REPLAY_PIECE_LEN`] bytes; viewers
//! list the segments a relay holds and fetch them piece by piece, then check
//! and open them as they would off the overlay.
//!
//! Pieces exist because a segment (up to 4 MiB of plaintext) is larger than
//! a frame; cutting it at fixed offsets gives each segment one way to be
//! split, so a relay can store and serve pieces without holding a whole
//! segment in memory, and both sides know every piece's length.

use crate::codec::{Codec, Reader, Writer, read_header, tag};
use crate::error::DecodeError;
use crate::identity::DeviceCertificate;
use crate::limits::TAG_SIZE;
use crate::live::{BroadcastId, MAX_SEGMENT_PLAINTEXT_LEN};
use crate::time::UnixMillis;

/// Bytes of every piece of a segment but its last (256 KiB).
pub const REPLAY_PIECE_LEN: usize = 256 * 1024;
/// Bytes of a segment's encoding around its ciphertext (LIVE.md §4.2).
pub const SEGMENT_OVERHEAD: usize = 273;
/// The shortest segment: its ciphertext is at least an init length and a tag.
pub const MIN_SEGMENT_LEN: u32 = (SEGMENT_OVERHEAD + 4 + TAG_SIZE) as u32;
/// The longest segment: the largest plaintext, sealed.
pub const MAX_SEGMENT_LEN: u32 = (SEGMENT_OVERHEAD + MAX_SEGMENT_PLAINTEXT_LEN + TAG_SIZE) as u32;
/// The most pieces of one segment.
pub const MAX_REPLAY_PIECES: u16 = MAX_SEGMENT_LEN.div_ceil(REPLAY_PIECE_LEN as u32) as u16;
/// Most segments one ReplaySegments answer lists.
pub const MAX_REPLAY_LIST: usize = 64;
/// Bytes of a segment's head up to and including `ct_len`: what a relay
/// reads of the first piece (LIVE.md §4.2).
pub const SEGMENT_HEAD_LEN: usize = 209;

/// How many pieces a segment of `segment_len` bytes is cut into.
pub fn piece_count(segment_len: u32) -> u16 {
    segment_len.div_ceil(REPLAY_PIECE_LEN as u32) as u16
}

/// The length of piece `index` of a segment of `segment_len` bytes, or
/// `None` if the segment has no such piece.
pub fn piece_len(segment_len: u32, index: u16) -> Option<usize> {
    let start = usize::from(index) * REPLAY_PIECE_LEN;
    let len = segment_len as usize;
    (start < len).then(|| (len - start).min(REPLAY_PIECE_LEN))
}

/// The pieces of a segment's bytes, in order.
pub fn pieces(segment: &[u8]) -> impl Iterator<Item = &[u8]> {
    segment.chunks(REPLAY_PIECE_LEN)
}

/// One piece of a segment: what ReplayPut uploads and ReplayPiece answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The whole segment's length, [`MIN_SEGMENT_LEN`] to [`MAX_SEGMENT_LEN`].
    pub segment_len: u32,
    /// Which piece, below [`piece_count`]`(segment_len)`.
    pub index: u16,
    /// Its bytes: exactly [`piece_len`]`(segment_len, index)` of them.
    pub bytes: Vec<u8>,
}

impl Piece {
    /// Writes `segment_len ‖ index ‖ opaque32 bytes`.
    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        out.put_u32(self.segment_len);
        out.put_u16(self.index);
        out.put_u32(self.bytes.len() as u32);
        out.put(&self.bytes);
    }

    /// Reads and checks `segment_len ‖ index ‖ opaque32 bytes`: the length
    /// in range, the index below the piece count, and the bytes exactly the
    /// piece's length.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let segment_len = read_segment_len(r)?;
        let index = r.u16()?;
        let want = piece_len(segment_len, index).ok_or(DecodeError::Invalid("piece index"))?;
        let bytes = r.bytes_u32("piece", REPLAY_PIECE_LEN)?;
        if bytes.len() != want {
            return Err(DecodeError::Invalid("piece length"));
        }
        Ok(Self {
            segment_len,
            index,
            bytes: bytes.to_vec(),
        })
    }
}

/// Reads a segment length and checks it is one a segment can have.
pub(crate) fn read_segment_len(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    let len = r.u32()?;
    if !(MIN_SEGMENT_LEN..=MAX_SEGMENT_LEN).contains(&len) {
        return Err(DecodeError::Invalid("segment length"));
    }
    Ok(len)
}

/// One segment a relay holds, as ReplaySegments lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayEntry {
    /// The segment's sequence number.
    pub seq: u64,
    /// Its length in bytes.
    pub segment_len: u32,
}

/// What a relay reads of a segment's first piece before it stores it
/// (RELAY.md §5.7): the head, up to the ciphertext's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHead {
    /// The broadcast.
    pub broadcast_id: BroadcastId,
    /// The broadcaster's device certificate, its signature checked.
    pub certificate: DeviceCertificate,
    /// The sequence number.
    pub seq: u64,
    /// When it was sealed.
    pub produced_at: UnixMillis,
    /// The whole segment's length: [`SEGMENT_OVERHEAD`] + `ct_len`.
    pub segment_len: u32,
}

impl SegmentHead {
    /// Reads the head of a segment from the start of its first piece:
    /// type, version, broadcast id, a valid certificate, epoch, seq, known
    /// flags, `produced_at`, a `duration_ms` in range and a `ct_len` in
    /// range. The signature is not checked here: it covers the whole
    /// segment (a relay checks it once every piece is in).
    pub fn read(piece: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(
            piece
                .get(..SEGMENT_HEAD_LEN)
                .ok_or(DecodeError::Truncated)?,
        );
        read_header(&mut r, tag::LIVE_SEGMENT)?;
        let broadcast_id = BroadcastId(r.array()?);
        let certificate = DeviceCertificate::read(&mut r)?;
        let _epoch = r.u32()?;
        let seq = r.u64()?;
        if r.u8()? & !(crate::live::FLAG_KEYFRAME | crate::live::FLAG_END) != 0 {
            return Err(DecodeError::Invalid("unknown segment flag"));
        }
        let produced_at = UnixMillis(r.u64()?);
        if r.u32()? > crate::limits::MAX_LIVE_SEGMENT_DURATION_MS {
            return Err(DecodeError::Invalid("segment duration"));
        }
        let ct_len = r.u32()?;
        let segment_len = ct_len
            .checked_add(SEGMENT_OVERHEAD as u32)
            .filter(|l| (MIN_SEGMENT_LEN..=MAX_SEGMENT_LEN).contains(l))
            .ok_or(DecodeError::Invalid("segment ciphertext length"))?;
        r.finish()?;
        Ok(Self {
            broadcast_id,
            certificate,
            seq,
            produced_at,
            segment_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_largest_segment() {
        assert_eq!(MAX_REPLAY_PIECES, 17);
        assert_eq!(piece_count(MIN_SEGMENT_LEN), 1);
        assert_eq!(piece_count(REPLAY_PIECE_LEN as u32), 1);
        assert_eq!(piece_count(REPLAY_PIECE_LEN as u32 + 1), 2);
        assert_eq!(piece_len(REPLAY_PIECE_LEN as u32 + 1, 1), Some(1));
        assert_eq!(piece_len(REPLAY_PIECE_LEN as u32 + 1, 2), None);
        let total: usize = (0..MAX_REPLAY_PIECES)
            .map(|i| piece_len(MAX_SEGMENT_LEN, i).unwrap())
            .sum();
        assert_eq!(total, MAX_SEGMENT_LEN as usize);
        assert_eq!(piece_len(MAX_SEGMENT_LEN, MAX_REPLAY_PIECES), None);
    }
}
