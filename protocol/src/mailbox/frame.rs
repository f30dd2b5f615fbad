//! Framing: every message on a stream is `u32 length || body`, with
//! `1 <= length <= MAX_FRAME_LEN`. [`FrameDecoder`] takes bytes as they arrive
//! and yields whole frames, never buffering more than one frame.

use crate::error::DecodeError;
use crate::limits::CIPHERTEXT_CHUNK_SIZE;

/// Largest frame body: a whole ciphertext chunk with its request header fits,
/// as does the largest manifest with an envelope.
pub const MAX_FRAME_LEN: usize = CIPHERTEXT_CHUNK_SIZE + 1024;

// The largest deposit (type, mailbox, envelope, manifest length and the
// largest manifest) fits in one frame.
const _: () = assert!(
    1 + 32 + crate::envelope::Envelope::LEN + 4 + crate::limits::MAX_MANIFEST_LEN <= MAX_FRAME_LEN
);

/// Prefixes `body` with its length. The caller keeps bodies within [`MAX_FRAME_LEN`].
pub fn encode_frame(body: &[u8]) -> Vec<u8> {
    debug_assert!(!body.is_empty() && body.len() <= MAX_FRAME_LEN);
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Reassembles frames from a byte stream.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    want: Option<usize>,
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns how many were consumed (fewer than given once a
    /// frame is complete: call [`FrameDecoder::take`], then feed the rest).
    pub fn feed(&mut self, mut data: &[u8]) -> Result<usize, DecodeError> {
        let start = data.len();
        loop {
            match self.want {
                None => {
                    let need = 4 - self.buf.len();
                    let n = need.min(data.len());
                    self.buf.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if self.buf.len() < 4 {
                        return Ok(start - data.len());
                    }
                    let len =
                        u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                            as usize;
                    if len == 0 {
                        return Err(DecodeError::Invalid("empty frame"));
                    }
                    if len > MAX_FRAME_LEN {
                        return Err(DecodeError::TooLong {
                            field: "frame",
                            limit: MAX_FRAME_LEN,
                        });
                    }
                    self.buf.clear();
                    self.buf.reserve_exact(len);
                    self.want = Some(len);
                }
                Some(len) => {
                    let n = (len - self.buf.len()).min(data.len());
                    self.buf.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    return Ok(start - data.len());
                }
            }
        }
    }

    /// The completed frame body, if one is complete; the decoder then starts the next.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        match self.want {
            Some(len) if self.buf.len() == len => {
                self.want = None;
                Some(core::mem::take(&mut self.buf))
            }
            _ => None,
        }
    }

    /// True if no partial frame is buffered (a stream may end here cleanly).
    pub fn is_idle(&self) -> bool {
        self.want.is_none() && self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn frames_reassemble_from_any_split(
            bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 1..5),
            split in 1usize..50,
        ) {
            let wire: Vec<u8> = bodies.iter().flat_map(|b| encode_frame(b)).collect();
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for mut piece in wire.chunks(split) {
                while !piece.is_empty() {
                    let n = d.feed(piece).unwrap();
                    piece = &piece[n..];
                    if let Some(f) = d.take() {
                        got.push(f);
                    }
                }
            }
            prop_assert!(d.is_idle());
            prop_assert_eq!(got, bodies);
        }
    }

    #[test]
    fn oversize_and_empty_frames_are_refused_before_allocating() {
        let mut d = FrameDecoder::new();
        let too_big = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
        assert!(matches!(d.feed(&too_big), Err(DecodeError::TooLong { .. })));
        let mut d = FrameDecoder::new();
        assert!(d.feed(&[0, 0, 0, 0]).is_err());
        let mut d = FrameDecoder::new();
        assert_eq!(d.feed(&[0, 0]).unwrap(), 2);
        assert!(!d.is_idle());
    }
}
