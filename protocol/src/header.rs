//! The encrypted clip header: what only recipients learn about a clip.

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, Error};
use crate::kdf::MessageId;
use crate::limits::{
    MAX_CLIP_DURATION_MS, MAX_CLIP_LEN, MAX_CLIP_TTL_MS, MAX_LIVE_SEGMENT_DURATION_MS,
    MAX_LIVE_TTL_MS, MAX_MEDIA_TYPE_LEN, MAX_REACTION_DURATION_MS,
};
use crate::padding::padded_len;
use crate::time::UnixMillis;

/// Plaintext length of the encoded header; it is always padded to this size.
pub const HEADER_LEN: usize = 128;

/// What a clip is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClipKind {
    /// A video message of up to [`MAX_CLIP_DURATION_MS`].
    Clip = 1,
    /// A reaction clip ("flik") to a parent message, up to [`MAX_REACTION_DURATION_MS`].
    Reaction = 2,
    /// One segment of a live broadcast, up to [`MAX_LIVE_SEGMENT_DURATION_MS`].
    LiveSegment = 3,
}

impl ClipKind {
    /// The longest duration this kind allows.
    pub fn max_duration_ms(self) -> u32 {
        match self {
            ClipKind::Clip => MAX_CLIP_DURATION_MS,
            ClipKind::Reaction => MAX_REACTION_DURATION_MS,
            ClipKind::LiveSegment => MAX_LIVE_SEGMENT_DURATION_MS,
        }
    }

    /// The longest lifetime (`expires_at - created_at`) this kind allows.
    pub fn max_ttl_ms(self) -> u64 {
        match self {
            ClipKind::Clip | ClipKind::Reaction => MAX_CLIP_TTL_MS,
            ClipKind::LiveSegment => MAX_LIVE_TTL_MS,
        }
    }
}

/// The clip header, encrypted inside the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipHeader {
    /// Clip, reaction or live segment.
    pub kind: ClipKind,
    /// Whether the sender allows recipients to keep a copy.
    pub allow_save: bool,
    /// Playback duration in milliseconds.
    pub duration_ms: u32,
    /// When the sender created the clip.
    pub created_at: UnixMillis,
    /// When every copy of the key must be erased.
    pub expires_at: UnixMillis,
    /// Content length in bytes, before padding.
    pub content_len: u64,
    /// The message this reacts to (reactions) or the broadcast it belongs to (live segments).
    pub parent: Option<MessageId>,
    /// The media type, e.g. `video/mp4`.
    pub media_type: String,
}

impl ClipHeader {
    /// Checks every header rule of SPEC.md §3.7 that does not depend on the current time.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m| Err(Error::InvalidParams(m));
        if self.duration_ms > self.kind.max_duration_ms() {
            return bad("duration exceeds the limit for this kind");
        }
        if self.expires_at <= self.created_at {
            return bad("expires_at must be after created_at");
        }
        if self.expires_at.since(self.created_at) > self.kind.max_ttl_ms() {
            return bad("lifetime exceeds the limit for this kind");
        }
        if self.content_len == 0 || self.content_len > MAX_CLIP_LEN {
            return bad("content length out of range");
        }
        match (self.kind, self.parent) {
            (ClipKind::Reaction, None) => return bad("a reaction needs a parent message"),
            (ClipKind::Clip, Some(_)) => return bad("a clip has no parent"),
            _ => {}
        }
        if self.parent == Some(MessageId([0; 32])) {
            return bad("parent id must not be all zero");
        }
        if !valid_media_type(&self.media_type) {
            return bad("media type must be 1-64 bytes of lowercase token characters with one '/'");
        }
        Ok(())
    }

    /// The padded length a manifest for this header carries.
    pub fn padded_len(&self) -> u64 {
        padded_len(self.content_len)
    }

    /// The fixed-size encoding (SPEC.md §3.7).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut v = Vec::with_capacity(HEADER_LEN);
        v.put_u8(self.kind as u8);
        v.put_u8(u8::from(self.allow_save));
        v.put_u32(self.duration_ms);
        v.put_u64(self.created_at.0);
        v.put_u64(self.expires_at.0);
        v.put_u64(self.content_len);
        v.put(&self.parent.map_or([0; 32], |p| p.0));
        v.put_string_u8(&self.media_type);
        let mut out = [0u8; HEADER_LEN];
        out[..v.len()].copy_from_slice(&v);
        out
    }

    /// Decodes and validates the fixed-size encoding.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let kind = match r.u8()? {
            1 => ClipKind::Clip,
            2 => ClipKind::Reaction,
            3 => ClipKind::LiveSegment,
            _ => return Err(DecodeError::Invalid("clip kind")),
        };
        let allow_save = r.bool("flags")?;
        let duration_ms = r.u32()?;
        let created_at = UnixMillis(r.u64()?);
        let expires_at = UnixMillis(r.u64()?);
        let content_len = r.u64()?;
        let parent = r.array::<32>()?;
        let parent = (parent != [0; 32]).then_some(MessageId(parent));
        let media_type = r.string_u8("media type", MAX_MEDIA_TYPE_LEN)?;
        if r.take(r.remaining())?.iter().any(|&b| b != 0) {
            return Err(DecodeError::NonCanonical("header padding"));
        }
        let h = Self {
            kind,
            allow_save,
            duration_ms,
            created_at,
            expires_at,
            content_len,
            parent,
            media_type,
        };
        h.validate()
            .map_err(|_| DecodeError::Invalid("clip header"))?;
        Ok(h)
    }
}

/// `type/subtype` with lowercase RFC 6838 restricted-name characters, at most 64 bytes.
fn valid_media_type(s: &str) -> bool {
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || b"!#$&-^_.+".contains(&c);
    let Some((t, sub)) = s.split_once('/') else {
        return false;
    };
    s.len() <= MAX_MEDIA_TYPE_LEN
        && !t.is_empty()
        && !sub.is_empty()
        && t.bytes().all(ok)
        && sub.bytes().all(ok)
}
