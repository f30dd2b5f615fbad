//! The one codec every wire structure uses: big-endian integers, fixed-size
//! arrays and length-prefixed byte strings, decoded strictly.
//!
//! In the manner of rustls' `msgs/codec.rs`: a [`Reader`] over a borrowed
//! slice, a [`Codec`] trait with `encode` and `read`, and [`Codec::decode`]
//! that rejects trailing bytes.

use crate::error::DecodeError;

/// A cursor over input bytes. Every read checks the remaining length first.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes read so far.
    pub fn consumed(&self) -> &'a [u8] {
        &self.buf[..self.pos]
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated);
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Reads a boolean encoded as one byte, 0 or 1.
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::NonCanonical(field)),
        }
    }

    /// Reads a UTF-8 string with a one-byte length prefix, checking the limit before copying.
    pub fn string_u8(&mut self, field: &'static str, limit: usize) -> Result<String, DecodeError> {
        let len = usize::from(self.u8()?);
        self.string_body(field, len, limit)
    }

    /// Reads a UTF-8 string with a two-byte length prefix, checking the limit before copying.
    pub fn string_u16(&mut self, field: &'static str, limit: usize) -> Result<String, DecodeError> {
        let len = usize::from(self.u16()?);
        self.string_body(field, len, limit)
    }

    fn string_body(
        &mut self,
        field: &'static str,
        len: usize,
        limit: usize,
    ) -> Result<String, DecodeError> {
        if len > limit {
            return Err(DecodeError::TooLong { field, limit });
        }
        let bytes = self.take(len)?;
        let s = core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidText(field))?;
        if s.chars().any(char::is_control) {
            return Err(DecodeError::InvalidText(field));
        }
        Ok(s.to_owned())
    }

    /// Reads a byte string with a four-byte length prefix, checking the limit before copying.
    pub fn bytes_u32(
        &mut self,
        field: &'static str,
        limit: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        if len > limit {
            return Err(DecodeError::TooLong { field, limit });
        }
        self.take(len)
    }

    /// Reads a two-byte count, checking it against `limit`.
    pub fn count_u16(&mut self, field: &'static str, limit: usize) -> Result<usize, DecodeError> {
        let n = usize::from(self.u16()?);
        if n > limit {
            return Err(DecodeError::TooLong { field, limit });
        }
        Ok(n)
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// Appends encodings to a byte vector.
pub trait Writer {
    /// Appends one byte.
    fn put_u8(&mut self, v: u8);
    /// Appends a big-endian `u16`.
    fn put_u16(&mut self, v: u16);
    /// Appends a big-endian `u32`.
    fn put_u32(&mut self, v: u32);
    /// Appends a big-endian `u64`.
    fn put_u64(&mut self, v: u64);
    /// Appends raw bytes.
    fn put(&mut self, v: &[u8]);
    /// Appends a string with a one-byte length prefix. The caller has checked its length.
    fn put_string_u8(&mut self, s: &str);
    /// Appends a string with a two-byte length prefix. The caller has checked its length.
    fn put_string_u16(&mut self, s: &str);
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put(&mut self, v: &[u8]) {
        self.extend_from_slice(v);
    }
    fn put_string_u8(&mut self, s: &str) {
        let len = u8::try_from(s.len()).expect("length checked by the constructor");
        self.push(len);
        self.extend_from_slice(s.as_bytes());
    }
    fn put_string_u16(&mut self, s: &str) {
        let len = u16::try_from(s.len()).expect("length checked by the constructor");
        self.extend_from_slice(&len.to_be_bytes());
        self.extend_from_slice(s.as_bytes());
    }
}

/// A wire structure with exactly one encoding.
pub trait Codec: Sized {
    /// Appends the encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Reads one structure from `r`, leaving the reader after it.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// The encoding as a new vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes `bytes`, which must hold exactly one structure and nothing after it.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish()?;
        Ok(v)
    }

    /// The encoding as a head and a borrowed tail whose concatenation is
    /// [`Codec::to_bytes`]. A structure that ends in a large byte string (a
    /// chunk) returns that string as the tail, so that a writer need not
    /// copy it; others return everything as the head.
    fn encode_split(&self) -> (Vec<u8>, &[u8]) {
        (self.to_bytes(), &[])
    }

    /// [`Codec::decode`] of a buffer it may keep: a structure that ends in a
    /// large byte string (a chunk) may reuse `bytes` for it instead of
    /// copying. It accepts and refuses exactly what `decode` does, with the
    /// same errors.
    fn decode_owned(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        Self::decode(&bytes)
    }

    /// For a structure that is a fixed-length head and then a large byte
    /// string (a chunk): the head's length, given the encoding's first
    /// byte. A reader may then read the head and the string into separate
    /// buffers and hand both to [`Codec::decode_parts`], so the string is
    /// never moved. `None`, the default, for every other structure.
    fn head_len(first: u8) -> Option<usize> {
        let _ = first;
        None
    }

    /// [`Codec::decode`] of `head ‖ tail`, keeping `tail` for the chunk in
    /// it where it can. It accepts and refuses exactly what `decode` does,
    /// with the same errors, however the bytes are split.
    fn decode_parts(head: &[u8], tail: Vec<u8>) -> Result<Self, DecodeError> {
        Self::decode_owned([head, &tail].concat())
    }
}

/// Decodes `bytes` as a structure that is a head read by `read_head` then
/// a chunk filling the rest (its `u32` length first, at most `limit`),
/// keeping `bytes` for the chunk. Errors as a strict `decode` of the same
/// layout would report them.
pub fn decode_with_tail<H>(
    mut bytes: Vec<u8>,
    read_head: impl FnOnce(&mut Reader<'_>) -> Result<H, DecodeError>,
    field: &'static str,
    limit: usize,
) -> Result<(H, Vec<u8>), DecodeError> {
    let (head, start) = {
        let mut r = Reader::new(&bytes);
        let head = read_head(&mut r)?;
        let len = r.u32()? as usize;
        if len > limit {
            return Err(DecodeError::TooLong { field, limit });
        }
        r.take(len)?;
        r.finish()?;
        (head, bytes.len() - len)
    };
    bytes.drain(..start);
    Ok((head, bytes))
}

/// Like [`decode_with_tail`], for a structure whose bytes come as `head`
/// and `tail`, keeping `tail` for the chunk without moving it. `head_len`
/// is the length of everything before the chunk (`read_head`'s fields and
/// the chunk's `u32` length); when `head` is not exactly that long (the
/// split is elsewhere), the parts are joined and decoded as one. Errors as
/// a strict `decode` of `head ‖ tail` would report them.
pub fn decode_parts_with_tail<H>(
    head: &[u8],
    tail: Vec<u8>,
    head_len: usize,
    read_head: impl Fn(&mut Reader<'_>) -> Result<H, DecodeError>,
    field: &'static str,
    limit: usize,
) -> Result<(H, Vec<u8>), DecodeError> {
    if head.len() != head_len {
        return decode_with_tail([head, &tail].concat(), read_head, field, limit);
    }
    let mut r = Reader::new(head);
    let h = read_head(&mut r)?;
    let len = r.u32()? as usize;
    if len > limit {
        return Err(DecodeError::TooLong { field, limit });
    }
    if r.remaining() != 0 {
        return decode_with_tail([head, &tail].concat(), read_head, field, limit);
    }
    let mut t = Reader::new(&tail);
    t.take(len)?;
    t.finish()?;
    Ok((h, tail))
}

/// Wire type bytes, the first byte of every top-level structure.
pub mod tag {
    /// Device certificate.
    pub const DEVICE_CERTIFICATE: u8 = 0x01;
    /// Signed prekey or one-time prekey.
    pub const PREKEY: u8 = 0x02;
    /// Prekey bundle.
    pub const PREKEY_BUNDLE: u8 = 0x03;
    /// Contact card.
    pub const CONTACT_CARD: u8 = 0x04;
    /// Clip manifest.
    pub const MANIFEST: u8 = 0x05;
    /// Envelope.
    pub const ENVELOPE: u8 = 0x06;
    /// Revocation record.
    pub const REVOCATION: u8 = 0x07;
    /// Control message between clients.
    pub const CONTROL: u8 = 0x08;
    /// Invite.
    pub const INVITE: u8 = 0x09;
    /// Live segment.
    pub const LIVE_SEGMENT: u8 = 0x0a;
    /// Live chat message (join, leave, comment).
    pub const LIVE_CHAT: u8 = 0x0b;
}

/// The protocol version byte this implementation writes and reads.
pub const VERSION: u8 = 1;

/// Reads and checks a structure's type and version bytes.
pub fn read_header(r: &mut Reader<'_>, expected: u8) -> Result<(), DecodeError> {
    let found = r.u8()?;
    if found != expected {
        return Err(DecodeError::WrongType { expected, found });
    }
    match r.u8()? {
        VERSION => Ok(()),
        v => Err(DecodeError::UnsupportedVersion(v)),
    }
}

/// Writes a structure's type and version bytes.
pub fn write_header(out: &mut Vec<u8>, tag: u8) {
    out.put_u8(tag);
    out.put_u8(VERSION);
}
