//! What a clip file holds: its container, duration and tracks, checked against
//! the limits of its [`ClipKind`] before it is sealed and sent.
//!
//! Parsing uses Mozilla's [`mp4parse`], the pure-Rust MP4 demuxer Firefox
//! ships: it is fuzzed continuously, allocates fallibly (a hostile size field
//! gives an error, not an abort) and pulls in only a handful of small crates.
//! [`probe`] walks the top-level boxes itself, seeking past `mdat`, and hands
//! the parser only the `moov` box, so a 1 GiB clip costs at most
//! [`MAX_MOOV_LEN`] bytes of memory.

use std::path::{Path, PathBuf};

use mayfly_protocol::header::ClipKind;
use mayfly_protocol::limits::MAX_CLIP_LEN;

pub mod fuzzing;
mod probe;

pub use probe::{MAX_MOOV_LEN, probe, probe_path};

/// The media type of every clip [`probe`] accepts.
pub const MP4_MEDIA_TYPE: &str = "video/mp4";

/// The fliks a new home starts with, as `(name, MP4 bytes)`: `init` copies
/// them in so a user can react before recording any of their own.
pub const DEFAULT_FLIKS: &[(&str, &[u8])] = &[
    ("wave", include_bytes!("../../samples/flik-wave.mp4")),
    ("nod", include_bytes!("../../samples/flik-nod.mp4")),
];

/// What [`probe`] found in a clip file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// Playback duration in milliseconds (the longest track, edits applied);
    /// 0 when the file does not say.
    pub duration_ms: u32,
    /// The media type to put in the clip header: always [`MP4_MEDIA_TYPE`].
    pub media_type: &'static str,
    /// Whether the file has at least one video track.
    pub has_video: bool,
    /// Width and height in pixels of the first video track, if it says.
    pub dimensions: Option<(u32, u32)>,
}

/// Why a clip file cannot be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The bytes are not a readable MP4 file.
    #[error("not a readable MP4 file: {reason}")]
    NotMp4 {
        /// What the box walk or the parser objected to.
        reason: String,
    },
    /// The file is an MP4 without any video track.
    #[error("the MP4 file has no video track")]
    NoVideoTrack,
    /// The file gives no duration, or a duration of zero.
    #[error("the clip's duration is zero or unknown")]
    NoDuration,
    /// The clip is longer than its kind allows.
    #[error("clip is {} s; {} are at most {} s", tenths(*.duration_ms), kind_plural(*.kind), secs(*.limit_ms))]
    TooLong {
        /// The clip's duration in milliseconds.
        duration_ms: u32,
        /// The longest duration `kind` allows, in milliseconds.
        limit_ms: u32,
        /// The kind the clip was checked as.
        kind: ClipKind,
    },
    /// The file ends before data it says it holds: it was cut short, e.g.
    /// by an unfinished download or copy.
    #[error(
        "the MP4 file is incomplete: {what} runs to byte {needed}, but the file has only {len} bytes"
    )]
    Truncated {
        /// What runs past the end: a box, or a sample of a track.
        what: String,
        /// The length the file would need.
        needed: u64,
        /// The file's length.
        len: u64,
    },
    /// The file is larger than any clip may be.
    #[error("{} is {}; clips are at most {}", .path.display(), size(*.len), size(*.limit))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
        /// The largest clip, in bytes.
        limit: u64,
    },
    /// The file could not be opened.
    #[error("cannot open {}: {source}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// Reading the file failed.
    #[error("cannot read the clip: {0}")]
    Io(#[from] std::io::Error),
}

/// Checks a probed clip against the rules for `kind`: it must have a video
/// track and a duration above zero and at most `kind.max_duration_ms()`.
pub fn check(info: &MediaInfo, kind: ClipKind) -> Result<(), MediaError> {
    if !info.has_video {
        return Err(MediaError::NoVideoTrack);
    }
    if info.duration_ms == 0 {
        return Err(MediaError::NoDuration);
    }
    let limit_ms = kind.max_duration_ms();
    if info.duration_ms > limit_ms {
        return Err(MediaError::TooLong {
            duration_ms: info.duration_ms,
            limit_ms,
            kind,
        });
    }
    Ok(())
}

/// Checks a clip file's length, before anything else is read: at most
/// [`MAX_CLIP_LEN`] (1 GiB), the clip format's limit.
pub fn check_len(path: &Path, len: u64) -> Result<(), MediaError> {
    if len > MAX_CLIP_LEN {
        return Err(MediaError::TooLarge {
            path: path.to_owned(),
            len,
            limit: MAX_CLIP_LEN,
        });
    }
    Ok(())
}

/// A length for messages: exact bytes, with binary units when over 1 KiB
/// ("1.5 GiB (1610612736 bytes)"; "1 GiB (1073741824 bytes)").
fn size(bytes: u64) -> String {
    const UNITS: [(&str, u32); 3] = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in UNITS {
        if bytes >= 1 << shift {
            let whole = bytes >> shift;
            let tenths = ((bytes - (whole << shift)) * 10) >> shift;
            let value = match tenths {
                0 => whole.to_string(),
                t => format!("{whole}.{t}"),
            };
            let exact = bytes.is_multiple_of(1 << shift);
            let approx = if exact || tenths != 0 { "" } else { "over " };
            return format!("{approx}{value} {unit} ({bytes} bytes)");
        }
    }
    format!("{bytes} bytes")
}

/// How error messages name a kind of clip, in the plural.
fn kind_plural(kind: ClipKind) -> &'static str {
    match kind {
        ClipKind::Clip => "video messages",
        ClipKind::Reaction => "fliks",
        ClipKind::LiveSegment => "live segments",
    }
}

/// Milliseconds as seconds with one decimal, rounded up, so a clip just over
/// a limit never reads as equal to it: 180_001 is "180.1".
fn tenths(ms: u32) -> String {
    let t = ms.div_ceil(100);
    format!("{}.{}", t / 10, t % 10)
}

/// Milliseconds as seconds: whole seconds bare ("180"), otherwise as [`tenths`].
fn secs(ms: u32) -> String {
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        tenths(ms)
    }
}

#[cfg(test)]
mod tests;
