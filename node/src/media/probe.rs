//! Finding the `moov` box without reading `mdat`, and summarizing what
//! [`mp4parse`] makes of it.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use mp4parse::{MediaContext, Status, Track, TrackType};

use super::{MP4_MEDIA_TYPE, MediaError, MediaInfo};

/// The largest `moov` box [`probe`] reads into memory (16 MiB). A 3-minute
/// clip's is well under 1 MiB; anything past this is refused as unreadable.
pub const MAX_MOOV_LEN: u64 = 16 << 20;

/// Most top-level boxes [`probe`] steps over while looking for `moov`.
const MAX_TOP_LEVEL_BOXES: usize = 1024;

/// Probes the MP4 file at `path`; see [`probe`].
pub fn probe_path(path: impl AsRef<Path>) -> Result<MediaInfo, MediaError> {
    probe(BufReader::new(File::open(path)?))
}

/// Reads an MP4 file's duration and tracks from `reader`, positioned at the
/// start of the file. Only box headers and the `moov` box (at most
/// [`MAX_MOOV_LEN`] bytes) are read; everything else is seeked over.
///
/// The result says what the file holds; [`super::check`] says whether that
/// may be sent as a given kind of clip.
pub fn probe<R: Read + Seek>(mut reader: R) -> Result<MediaInfo, MediaError> {
    let moov = find_moov(&mut reader)?;
    let context = mp4parse::read_mp4(&mut Cursor::new(moov)).map_err(|e| parser_error(&e))?;
    Ok(summarize(&context))
}

/// Walks the top-level boxes and returns the `moov` box, header included
/// (rewritten as a plain 32-bit header).
fn find_moov<R: Read + Seek>(r: &mut R) -> Result<Vec<u8>, MediaError> {
    let mut pos = r.stream_position()?;
    for index in 0..MAX_TOP_LEVEL_BOXES {
        let Some(head) = read_header(r)? else {
            return Err(not_mp4(if index == 0 {
                "the file is empty"
            } else {
                "no moov box"
            }));
        };
        if index == 0 && &head.kind != b"ftyp" {
            return Err(not_mp4(format!(
                "the file does not start with an ftyp box (it starts with '{}')",
                fourcc(head.kind)
            )));
        }
        if &head.kind == b"moov" {
            return read_moov(r, &head);
        }
        let Some(size) = head.size else {
            return Err(not_mp4("no moov box before a box that runs to the end"));
        };
        pos = pos
            .checked_add(size)
            .ok_or_else(|| not_mp4("a box size overflows"))?;
        r.seek(SeekFrom::Start(pos))?;
    }
    Err(not_mp4(format!(
        "no moov box among the first {MAX_TOP_LEVEL_BOXES} boxes"
    )))
}

/// One box header: its type, its own length, and the box's whole length
/// (`None` for a box that runs to the end of the file).
struct BoxHead {
    kind: [u8; 4],
    header_len: u64,
    size: Option<u64>,
}

/// Reads the box header at the current position; `None` at a clean end.
fn read_header<R: Read>(r: &mut R) -> Result<Option<BoxHead>, MediaError> {
    let mut head = [0u8; 8];
    match read_full(r, &mut head)? {
        0 => return Ok(None),
        8 => {}
        _ => return Err(not_mp4("truncated box header")),
    }
    let kind = [head[4], head[5], head[6], head[7]];
    let (header_len, size) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
        0 => (8, None),
        1 => {
            let mut wide = [0u8; 8];
            if read_full(r, &mut wide)? != 8 {
                return Err(not_mp4("truncated box header"));
            }
            (16, Some(u64::from_be_bytes(wide)))
        }
        n => (8, Some(u64::from(n))),
    };
    if size.is_some_and(|s| s < header_len) {
        return Err(not_mp4(format!(
            "box '{}' has an impossible size",
            fourcc(kind)
        )));
    }
    Ok(Some(BoxHead {
        kind,
        header_len,
        size,
    }))
}

/// Reads the body of the `moov` box whose header was just read.
fn read_moov<R: Read>(r: &mut R, head: &BoxHead) -> Result<Vec<u8>, MediaError> {
    let too_big = || {
        not_mp4(format!(
            "the moov box is over the {} MiB this reads",
            MAX_MOOV_LEN >> 20
        ))
    };
    let want = match head.size {
        Some(size) if size - head.header_len > MAX_MOOV_LEN - 8 => return Err(too_big()),
        Some(size) => size - head.header_len,
        None => MAX_MOOV_LEN - 8 + 1,
    };
    let mut body = Vec::new();
    r.take(want).read_to_end(&mut body)?;
    match head.size {
        Some(_) if body.len() as u64 != want => return Err(not_mp4("truncated moov box")),
        None if body.len() as u64 == want => return Err(too_big()),
        _ => {}
    }
    // Fits in 32 bits: at most MAX_MOOV_LEN.
    let total = u32::try_from(body.len() + 8).map_err(|_| too_big())?;
    let mut moov = Vec::with_capacity(body.len() + 8);
    moov.extend_from_slice(&total.to_be_bytes());
    moov.extend_from_slice(b"moov");
    moov.extend_from_slice(&body);
    Ok(moov)
}

/// Fills `buf` as far as the stream allows; returns how much was read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The summary [`probe`] returns.
fn summarize(context: &MediaContext) -> MediaInfo {
    let movie_scale = context.timescale.map(|t| t.0);
    let mut duration_ms = 0;
    let mut has_video = false;
    let mut dimensions = None;
    for track in context.tracks.iter() {
        if track.track_type == TrackType::Video {
            has_video = true;
            if dimensions.is_none() {
                dimensions = track.tkhd.as_ref().map(|t| (t.width >> 16, t.height >> 16));
            }
        }
        duration_ms = duration_ms.max(track_duration_ms(track, movie_scale));
    }
    MediaInfo {
        duration_ms: u32::try_from(duration_ms).unwrap_or(u32::MAX),
        media_type: MP4_MEDIA_TYPE,
        has_video,
        dimensions,
    }
}

/// A track's duration: from `tkhd` (edits applied, in the movie's timescale)
/// when it gives one, else from `mdhd`; 0 when neither does.
fn track_duration_ms(track: &Track, movie_scale: Option<u64>) -> u64 {
    // All ones means "unknown" in both the 32- and 64-bit forms.
    let known = |d: u64| d != 0 && d != u64::from(u32::MAX) && d != u64::MAX;
    if let (Some(tkhd), Some(scale)) = (&track.tkhd, movie_scale)
        && known(tkhd.duration)
    {
        return to_ms(tkhd.duration, scale);
    }
    match (track.duration, track.timescale) {
        (Some(d), Some(s)) if known(d.0) => to_ms(d.0, s.0),
        _ => 0,
    }
}

/// `units` of `1 / scale` seconds, in whole milliseconds (rounded).
fn to_ms(units: u64, scale: u64) -> u64 {
    if scale == 0 {
        return 0;
    }
    let ms = (u128::from(units) * 1000 + u128::from(scale) / 2) / u128::from(scale);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// A [`MediaError::NotMp4`] for what the parser reported, on one line.
fn parser_error(e: &mp4parse::Error) -> MediaError {
    let reason = match e {
        // Converting the generic statuses to text panics in mp4parse.
        mp4parse::Error::InvalidData(
            s @ (Status::Ok
            | Status::BadArg
            | Status::Invalid
            | Status::Unsupported
            | Status::Eof
            | Status::Io
            | Status::Oom),
        ) => format!("invalid data ({s:?})"),
        mp4parse::Error::InvalidData(s) => <&str>::from(*s).to_owned(),
        mp4parse::Error::Unsupported(what) => format!("unsupported: {what}"),
        mp4parse::Error::UnexpectedEOF => "unexpected end of data".to_owned(),
        mp4parse::Error::Io(e) => e.to_string(),
        mp4parse::Error::MoovMissing => "no moov box".to_owned(),
        mp4parse::Error::OutOfMemory => "out of memory".to_owned(),
    };
    not_mp4(reason.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A [`MediaError::NotMp4`] with `reason`.
fn not_mp4(reason: impl Into<String>) -> MediaError {
    MediaError::NotMp4 {
        reason: reason.into(),
    }
}

/// A box type for messages: printable ASCII as is, anything else as `?`.
fn fourcc(kind: [u8; 4]) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}
