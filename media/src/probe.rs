//! Finding the `moov` box without reading `mdat`, and summarizing what
//! [`mp4parse`] makes of it.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use mp4parse::{MediaContext, Status, Track, TrackType};

use super::{MP4_MEDIA_TYPE, MediaError, MediaInfo};

/// The largest `moov` box [`probe`] reads into memory (16 MiB). A 3-minute
/// clip's is well under 1 MiB; anything past this is refused as unreadable.
pub const MAX_MOOV_LEN: u64 = 16 << 20;

/// Most top-level boxes [`probe`] steps over while looking for `moov`.
const MAX_TOP_LEVEL_BOXES: usize = 1024;

/// Most top-level boxes [`probe`] steps over after `moov`, looking for the
/// media data (a fragmented file has a `moof` and an `mdat` per fragment).
const MAX_BOXES_AFTER_MOOV: usize = 65_536;

/// How many of a file's first bytes an error quotes.
const QUOTED_PREFIX: usize = 16;

/// Probes the MP4 file at `path`; see [`probe`].
pub fn probe_path(path: impl AsRef<Path>) -> Result<MediaInfo, MediaError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| MediaError::Open {
        path: path.to_owned(),
        source,
    })?;
    probe(BufReader::new(file))
}

/// Reads an MP4 file's duration and tracks from `reader`, positioned at the
/// start of the file. Only box headers and the `moov` box (at most
/// [`MAX_MOOV_LEN`] bytes) are read; everything else is seeked over.
///
/// The file must be complete: every top-level box must end within the
/// file, and every sample the tracks' sample tables (`stsc`, `stsz`,
/// `stco`/`co64`) place must lie within an `mdat` box
/// ([`MediaError::Truncated`] if it runs past the end of the file).
///
/// The result says what the file holds; [`super::check`] says whether that
/// may be sent as a given kind of clip.
pub fn probe<R: Read + Seek>(mut reader: R) -> Result<MediaInfo, MediaError> {
    let layout = walk(&mut reader)?;
    let moov = without_metadata(&layout.moov);
    check_counts(&moov, 0)?;
    let context = mp4parse::read_mp4(&mut Cursor::new(&moov)).map_err(|e| parser_error(&e))?;
    check_samples(&context, &layout)?;
    Ok(summarize(&context))
}

/// `moov` (a plain 32-bit header, then its boxes) without its `udta` and
/// `meta` boxes: titles, tags and cover art say nothing the probe needs, and
/// the parser reads their items by their claimed sizes. Boxes that do not
/// parse are left for [`check_counts`] and the parser to refuse.
fn without_metadata(moov: &[u8]) -> Vec<u8> {
    let body = moov.get(8..).unwrap_or_default();
    let mut kept = Vec::with_capacity(moov.len());
    let mut rest = body;
    while rest.len() >= 8 {
        let size = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let fourcc = &rest[4..8];
        if size < 8 || size > rest.len() {
            break;
        }
        if fourcc != b"udta" && fourcc != b"meta" {
            kept.extend_from_slice(&rest[..size]);
        }
        rest = &rest[size..];
    }
    kept.extend_from_slice(rest);
    let mut out = Vec::with_capacity(8 + kept.len());
    out.extend_from_slice(&((8 + kept.len()) as u32).to_be_bytes());
    out.extend_from_slice(b"moov");
    out.extend_from_slice(&kept);
    out
}

/// Boxes inside `moov` that the parser descends into.
const CONTAINERS: [&[u8; 4]; 9] = [
    b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl", b"sinf", b"schi", b"mvex",
];
/// Sample entries whose fixed fields (after the box header) are 78 bytes,
/// then child boxes (ISO 14496-12 §12.1.3).
const VISUAL_ENTRIES: [&[u8; 4]; 11] = [
    b"avc1", b"avc3", b"hvc1", b"hev1", b"vp08", b"vp09", b"av01", b"mp4v", b"encv", b"s263",
    b"dvh1",
];
/// Sample entries whose fixed fields are 28 bytes (version 0; version 1
/// adds 16, version 2 adds 36), then child boxes (§12.2.3).
const AUDIO_ENTRIES: [&[u8; 4]; 9] = [
    b"mp4a", b"enca", b"Opus", b"fLaC", b"ac-3", b"ec-3", b"alac", b".mp3", b"ipcm",
];
/// How deep boxes nest at most (`moov/trak/mdia/minf/stbl/stsd/avc1/sinf/
/// schi/tenc` is 10).
const MAX_DEPTH: usize = 12;

/// Checks, before the parser sees them, every box of the `moov` box
/// (`bytes`: boxes, header included) the parser reads into memory: none
/// may claim more bytes than its parent holds, and every table must have
/// room for the entries its count claims. The parser reserves memory for a
/// box's claimed size, and for a table's claimed count, before reading, so
/// a box of a few bytes claiming four gigabytes would reserve them; here
/// such a file is refused as not MP4.
fn check_counts(bytes: &[u8], depth: usize) -> Result<(), MediaError> {
    let not_mp4 = |reason: String| MediaError::NotMp4 { reason };
    if depth > MAX_DEPTH {
        return Err(not_mp4("its boxes nest too deep".into()));
    }
    let mut rest = bytes;
    // Fewer than 8 bytes left is padding the parser skips.
    while rest.len() >= 8 {
        let size = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
        let fourcc: [u8; 4] = rest[4..8].try_into().expect("4 bytes");
        let (header, len) = match size {
            0 => (8, rest.len() as u64),
            1 if rest.len() >= 16 => (
                16,
                u64::from_be_bytes(rest[8..16].try_into().expect("8 bytes")),
            ),
            n => (8, u64::from(n)),
        };
        if len < header as u64 || len > rest.len() as u64 {
            return Err(not_mp4(format!(
                "its {} box claims {len} bytes where {} remain",
                String::from_utf8_lossy(&fourcc),
                rest.len()
            )));
        }
        let body = &rest[header..len as usize];
        if CONTAINERS.contains(&&fourcc) {
            check_counts(body, depth + 1)?;
        } else if &fourcc == b"stsd" {
            table_fits(&fourcc, body).map_err(not_mp4)?;
            // Version and flags, the count, then one box per entry.
            check_counts(body.get(8..).unwrap_or_default(), depth + 1)?;
        } else if VISUAL_ENTRIES.contains(&&fourcc) {
            check_counts(body.get(78..).unwrap_or_default(), depth + 1)?;
        } else if AUDIO_ENTRIES.contains(&&fourcc) {
            let version = body
                .get(8..10)
                .map_or(0, |v| u16::from_be_bytes([v[0], v[1]]));
            let fixed = match version {
                1 => 44,
                2 => 64,
                _ => 28,
            };
            check_counts(body.get(fixed..).unwrap_or_default(), depth + 1)?;
        } else {
            table_fits(&fourcc, body).map_err(not_mp4)?;
        }
        rest = &rest[len as usize..];
    }
    Ok(())
}

/// Whether a table box's count of entries fits in its body.
fn table_fits(fourcc: &[u8; 4], body: &[u8]) -> Result<(), String> {
    let u32_at = |at: usize| {
        body.get(at..at + 4)
            .map(|b| u64::from(u32::from_be_bytes(b.try_into().expect("4 bytes"))))
    };
    let version = body.first().copied().unwrap_or(0);
    // (offset of the count after the version and flags, bytes per entry)
    let (at, entry) = match fourcc {
        b"stsd" => (4, 8),
        b"stts" | b"ctts" | b"co64" => (4, 8),
        b"stsc" => (4, 12),
        b"stco" | b"stss" => (4, 4),
        b"elst" => (4, if version == 1 { 20 } else { 12 }),
        // A sample size of 0 means a table of sizes follows.
        b"stsz" if u32_at(4) == Some(0) => (8, 4),
        _ => return Ok(()),
    };
    let Some(count) = u32_at(at) else {
        return Ok(()); // too short: the parser says so
    };
    let room = body.len().saturating_sub(at + 4) as u64;
    if count * entry > room {
        return Err(format!(
            "its {} box lists {count} entries in {room} bytes",
            String::from_utf8_lossy(fourcc)
        ));
    }
    Ok(())
}

/// What [`walk`] found: the `moov` box, where the media data is, and how
/// long the file is. Positions count from the start of the file.
struct Layout {
    /// The `moov` box, header included (as a plain 32-bit header).
    moov: Vec<u8>,
    /// The bodies of the `mdat` boxes.
    mdats: Vec<Range<u64>>,
    /// The file's length.
    len: u64,
}

/// Walks the top-level boxes: reads the `moov` box, notes where each
/// `mdat` box is, and checks that every box ends within the file.
fn walk<R: Read + Seek>(r: &mut R) -> Result<Layout, MediaError> {
    let start = r.stream_position()?;
    let len = r.seek(SeekFrom::End(0))?.saturating_sub(start);
    r.seek(SeekFrom::Start(start))?;
    let mut first = [0u8; QUOTED_PREFIX];
    let n = read_full(r, &mut first)?;
    if n > 0 && (n < 8 || &first[4..8] != b"ftyp") {
        return Err(not_mp4(format!(
            "the file does not start with an ftyp box (it starts with {})",
            quote(&first[..n])
        )));
    }
    r.seek(SeekFrom::Start(start))?;
    let mut pos = 0u64;
    let mut moov = None;
    let mut mdats = Vec::new();
    let mut after_moov = 0;
    for index in 0.. {
        if index >= MAX_TOP_LEVEL_BOXES && moov.is_none() {
            return Err(not_mp4(format!(
                "no moov box among the first {MAX_TOP_LEVEL_BOXES} boxes"
            )));
        }
        if moov.is_some() {
            after_moov += 1;
            if after_moov > MAX_BOXES_AFTER_MOOV {
                return Err(not_mp4(format!(
                    "more than {MAX_BOXES_AFTER_MOOV} boxes after the moov box"
                )));
            }
        }
        if (1..8).contains(&(len - pos)) {
            return Err(MediaError::Truncated {
                what: "a box header".into(),
                needed: pos + 8,
                len,
            });
        }
        let Some(head) = read_header(r)? else {
            break;
        };
        let end = match head.size {
            Some(size) => pos
                .checked_add(size)
                .ok_or_else(|| not_mp4("a box size overflows"))?,
            None => len,
        };
        if end > len {
            return Err(MediaError::Truncated {
                what: format!("its '{}' box", fourcc(head.kind)),
                needed: end,
                len,
            });
        }
        match &head.kind {
            b"moov" if moov.is_none() => moov = Some(read_moov(r, &head)?),
            b"mdat" => mdats.push(pos + head.header_len..end),
            _ => {}
        }
        if head.size.is_none() {
            break;
        }
        pos = end;
        r.seek(SeekFrom::Start(start + pos))?;
    }
    let Some(moov) = moov else {
        return Err(not_mp4(if len == 0 {
            "the file is empty"
        } else {
            "no moov box"
        }));
    };
    Ok(Layout { moov, mdats, len })
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

/// Checks that every sample of every track lies within an `mdat` box of
/// the file: the sample tables place samples in chunks (`stsc`), chunks at
/// offsets (`stco` or `co64`), and give each sample's size (`stsz`).
/// Tracks without sample tables (a fragmented file's) have nothing to check.
fn check_samples(context: &MediaContext, layout: &Layout) -> Result<(), MediaError> {
    for (n, track) in context.tracks.iter().enumerate() {
        let (Some(stsc), Some(stsz), Some(stco)) = (&track.stsc, &track.stsz, &track.stco) else {
            continue;
        };
        let number = track.track_id.map_or(n as u64 + 1, u64::from);
        let bad = |what: String| not_mp4(format!("track {number}: {what}"));
        let chunks = &stco.offsets;
        let entries = &stsc.samples;
        let mut sizes = stsz.sample_sizes.iter();
        let mut sample = 0u64;
        if entries.first().is_some_and(|e| e.first_chunk != 1) {
            return Err(bad(
                "the sample-to-chunk table does not start at chunk 1".into()
            ));
        }
        for (i, entry) in entries.iter().enumerate() {
            let first = u64::from(entry.first_chunk);
            let last = match entries.get(i + 1) {
                Some(next) if u64::from(next.first_chunk) <= first => {
                    return Err(bad("the sample-to-chunk table is out of order".into()));
                }
                Some(next) => u64::from(next.first_chunk) - 1,
                None => chunks.len() as u64,
            };
            if last > chunks.len() as u64 {
                return Err(bad(format!(
                    "the sample-to-chunk table names chunk {last}, but there are {}",
                    chunks.len()
                )));
            }
            for chunk in first..=last {
                let offset = chunks[(chunk - 1) as usize];
                let per_chunk = u64::from(entry.samples_per_chunk);
                let bytes = if stsz.sample_size != 0 {
                    u64::from(stsz.sample_size).checked_mul(per_chunk)
                } else {
                    let mut sum = 0u64;
                    for _ in 0..per_chunk {
                        let size = sizes.next().ok_or_else(|| {
                            bad(format!(
                                "its chunks hold more samples than the {} sizes it lists",
                                stsz.sample_sizes.len()
                            ))
                        })?;
                        sum += u64::from(*size);
                    }
                    Some(sum)
                };
                let end = bytes
                    .and_then(|b| offset.checked_add(b))
                    .ok_or_else(|| bad(format!("chunk {chunk} overflows")))?;
                sample += per_chunk;
                if end == offset {
                    continue;
                }
                if end > layout.len {
                    return Err(MediaError::Truncated {
                        what: format!("sample {sample} of track {number}"),
                        needed: end,
                        len: layout.len,
                    });
                }
                if !layout
                    .mdats
                    .iter()
                    .any(|m| m.start <= offset && end <= m.end)
                {
                    return Err(bad(format!(
                        "chunk {chunk} (bytes {offset}..{end}) is not within an mdat box"
                    )));
                }
            }
        }
        if sizes.next().is_some() {
            return Err(bad(format!(
                "it lists {} sample sizes, but its chunks hold {sample} samples",
                stsz.sample_sizes.len()
            )));
        }
    }
    Ok(())
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

/// Bytes for messages, in double quotes: printable ASCII as is, anything
/// else escaped (`\n`, `\xff`).
fn quote(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
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
