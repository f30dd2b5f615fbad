//! Cutting a fragmented MP4 stream into live segments (spec/LIVE.md).
//!
//! A broadcaster's encoder writes one fragmented MP4 stream, as
//! `ffmpeg … -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof -`
//! does: an init part (`ftyp`, `moov`) and then fragments (`moof` + `mdat`),
//! each starting at a keyframe. [`Cutter`] takes that stream in pieces of any
//! size and hands back the init part once ([`Piece::Init`]), then media
//! segments of about [`CutterConfig::target_ms`] each ([`Piece::Segment`]),
//! each made of whole fragments and starting at a keyframe when the stream
//! allows it. The init part followed by every segment is exactly the input.
//!
//! Sans-IO and bounded: the cutter holds at most the init part or one
//! segment plus one box header, parses only the boxes it needs (top-level
//! boxes; in `moov` the tracks' `tkhd`, `mdhd`, `hdlr` and `mvex/trex`; in
//! `moof` the chosen track's `tfhd`, `tfdt` and `trun`), checks every
//! length before it reads, and never allocates from a declared box size:
//! bytes are stored as they arrive, after the box's size has been checked
//! against the limit.
//!
//! ```
//! use mayfly_protocol::fmp4::{Cutter, CutterConfig, Piece};
//! # let stream: &[u8] = &[];
//! let mut cutter = Cutter::new(CutterConfig::default());
//! for piece in stream.chunks(4096) {
//!     cutter.push(piece)?;
//!     while let Some(p) = cutter.next_piece() {
//!         match p {
//!             Piece::Init(_init) => { /* kept, sent with keyframe segments */ }
//!             Piece::Segment(_segment) => { /* sealed and sent */ }
//!         }
//!     }
//! }
//! let _last_pieces = cutter.finish()?;
//! # Ok::<(), mayfly_protocol::fmp4::CutError>(())
//! ```

use std::collections::VecDeque;

use thiserror::Error;

use crate::limits::MAX_LIVE_SEGMENT_DURATION_MS;
use crate::live::{MAX_INIT_LEN, MAX_SEGMENT_PLAINTEXT_LEN};

/// The default [`CutterConfig::target_ms`]: segments of about a second.
pub const LIVE_TARGET_SEGMENT_MS: u32 = 1_000;

/// The default [`CutterConfig::max_segment_len`]: the most media a segment
/// can carry next to a full init part (`MAX_INIT_LEN`) and its 4-byte
/// length prefix within `MAX_SEGMENT_PLAINTEXT_LEN`.
pub const MAX_SEGMENT_MEDIA_LEN: usize = MAX_SEGMENT_PLAINTEXT_LEN - MAX_INIT_LEN - 4;

/// `sample_is_non_sync_sample` in ISO/IEC 14496-12 sample flags.
pub const SAMPLE_IS_NON_SYNC: u32 = 0x0001_0000;

type FourCc = [u8; 4];

const MOOV: FourCc = *b"moov";
const MOOF: FourCc = *b"moof";
const MDAT: FourCc = *b"mdat";
const TRAK: FourCc = *b"trak";
const TKHD: FourCc = *b"tkhd";
const MDIA: FourCc = *b"mdia";
const MDHD: FourCc = *b"mdhd";
const HDLR: FourCc = *b"hdlr";
const MVEX: FourCc = *b"mvex";
const TREX: FourCc = *b"trex";
const TRAF: FourCc = *b"traf";
const TFHD: FourCc = *b"tfhd";
const TFDT: FourCc = *b"tfdt";
const TRUN: FourCc = *b"trun";
const VIDE: FourCc = *b"vide";

/// Boxes that, after a fragment's `mdat`, open the next fragment.
const LEADING: [FourCc; 5] = [*b"styp", *b"sidx", *b"ssix", *b"prft", *b"emsg"];

/// Why a stream could not be cut. After one, the cutter refuses further
/// input with the same error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CutError {
    /// The input ended inside a box.
    #[error("the stream ends inside a box")]
    Truncated,
    /// A top-level box's size is smaller than its own header (8 bytes, or
    /// 16 with a 64-bit size).
    #[error("box size {0} is smaller than the box header")]
    BadBoxSize(u64),
    /// A top-level box has size 0 ("to the end of the file"), which a
    /// stream cannot have.
    #[error("box size 0 (to the end of the file) is not supported")]
    UnboundedBox,
    /// The boxes before the first `moof` exceed [`CutterConfig::max_init_len`].
    #[error("the init part exceeds its limit of {limit} bytes")]
    InitTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The first `moof` came with no `moov` before it.
    #[error("no moov box before the first moof")]
    NoMoov,
    /// The `moov` has no track.
    #[error("the moov box has no track")]
    NoTrack,
    /// An `mdat` with no `moof` before it in its fragment.
    #[error("an mdat box with no moof before it")]
    MdatBeforeMoof,
    /// One fragment alone exceeds [`CutterConfig::max_segment_len`].
    #[error("a fragment exceeds the segment limit of {limit} bytes")]
    FragmentTooLarge {
        /// The limit.
        limit: usize,
    },
    /// One fragment alone lasts longer than [`CutterConfig::max_duration_ms`].
    #[error("a fragment lasts longer than the limit of {limit_ms} ms")]
    FragmentTooLong {
        /// The limit.
        limit_ms: u32,
    },
    /// The input ended before its first `moof`.
    #[error("the stream ends before its first fragment")]
    NoFragment,
    /// A box inside `moov` or `moof` is malformed, or a time overflows.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// Limits and target of a [`Cutter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutterConfig {
    /// A segment is closed at the first fragment that starts with a
    /// keyframe once the segment lasts at least this long.
    pub target_ms: u32,
    /// A segment is closed before a fragment that would make it last longer
    /// than this; a fragment longer on its own is an error.
    pub max_duration_ms: u32,
    /// A segment is closed before a box that would make it longer than
    /// this; a fragment longer on its own is an error.
    pub max_segment_len: usize,
    /// The longest init part (everything before the first `moof`).
    pub max_init_len: usize,
}

impl Default for CutterConfig {
    /// [`LIVE_TARGET_SEGMENT_MS`], `MAX_LIVE_SEGMENT_DURATION_MS`,
    /// [`MAX_SEGMENT_MEDIA_LEN`] and `MAX_INIT_LEN`: every segment can be
    /// sealed with the init part by `live::SegmentSealer::seal`.
    fn default() -> Self {
        Self {
            target_ms: LIVE_TARGET_SEGMENT_MS,
            max_duration_ms: MAX_LIVE_SEGMENT_DURATION_MS,
            max_segment_len: MAX_SEGMENT_MEDIA_LEN,
            max_init_len: MAX_INIT_LEN,
        }
    }
}

/// What a [`Cutter`] hands back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The init part: every box before the first `moof`. Comes first, once.
    Init(Vec<u8>),
    /// A media segment: one or more whole fragments.
    Segment(MediaSegment),
}

/// A media segment: the bytes of one or more whole fragments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSegment {
    /// The segment's boxes, as they were in the stream.
    pub bytes: Vec<u8>,
    /// Whether its first fragment starts with a sync sample of the chosen
    /// track, so that a player can start here.
    pub keyframe: bool,
    /// The decode time of its first sample, in ms (`baseMediaDecodeTime`
    /// in the track's timescale, rounded down).
    pub start_ms: u64,
    /// How long its samples of the chosen track last, in ms: the end time
    /// in ms minus `start_ms`, so consecutive segments tile exactly.
    pub duration_ms: u32,
}

/// The track that segments are timed and cut by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Track {
    id: u32,
    timescale: u32,
    /// `trex` default sample duration and flags, when there is a `trex`.
    default_duration: Option<u32>,
    default_flags: Option<u32>,
}

/// A parsed fragment: its first sample's sync flag, start and length in
/// track ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frag {
    keyframe: bool,
    base: u64,
    ticks: u64,
}

/// The fragments of the current segment before the open one.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    frags: u32,
    keyframe: bool,
    base: u64,
    ticks: u64,
}

impl Run {
    fn add(&mut self, f: Frag) -> Result<(), CutError> {
        if self.frags == 0 {
            self.keyframe = f.keyframe;
            self.base = f.base;
        }
        self.ticks = add(self.ticks, f.ticks)?;
        self.frags = self.frags.saturating_add(1);
        Ok(())
    }
}

/// The fragment being read: where it starts in the buffer (its leading
/// boxes included) and, once its `moof` is in, what it holds.
#[derive(Debug, Clone, Copy)]
struct Open {
    start: usize,
    frag: Option<Frag>,
}

/// The top-level box being read.
#[derive(Debug, Clone, Copy)]
struct Cur {
    kind: FourCc,
    /// Where the box starts in the buffer, and where its payload does.
    start: usize,
    payload: usize,
    /// Bytes still to come.
    left: u64,
}

/// A push parser that cuts a fragmented MP4 stream into an init part and
/// media segments. See the [module documentation](self).
#[derive(Debug)]
pub struct Cutter {
    config: CutterConfig,
    /// The init part until the first `moof`, then the current segment.
    buf: Vec<u8>,
    /// The header of the next box, as far as it has arrived.
    head: [u8; 16],
    head_len: usize,
    cur: Option<Cur>,
    /// The track of the first `moov`, once it is in.
    moov_track: Option<Track>,
    /// Set at the first `moof`: the init part is done.
    track: Option<Track>,
    closed: Run,
    open: Option<Open>,
    /// Where boxes that open the next fragment start, before its `moof`.
    lead_start: Option<usize>,
    /// The decode time after the last fragment, for one without `tfdt`.
    next_base: u64,
    /// The end of the last segment, in ms.
    next_start_ms: u64,
    out: VecDeque<Piece>,
    failed: Option<CutError>,
}

impl Cutter {
    /// A cutter waiting for the start of a stream.
    pub fn new(config: CutterConfig) -> Self {
        Self {
            config,
            buf: Vec::new(),
            head: [0; 16],
            head_len: 0,
            cur: None,
            moov_track: None,
            track: None,
            closed: Run::default(),
            open: None,
            lead_start: None,
            next_base: 0,
            next_start_ms: 0,
            out: VecDeque::new(),
            failed: None,
        }
    }

    /// Takes the next bytes of the stream, split anywhere. Pieces that are
    /// complete wait in [`Cutter::next_piece`]. After an error, every call
    /// returns it again; the pieces completed before it can still be taken.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), CutError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.push_inner(bytes);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
            self.buf = Vec::new();
            self.head_len = 0;
        }
        r
    }

    /// The next complete piece, if any: the init part first, then segments
    /// in stream order.
    pub fn next_piece(&mut self) -> Option<Piece> {
        self.out.pop_front()
    }

    /// How many stream bytes the cutter holds that are not yet in a piece:
    /// at most [`CutterConfig::max_init_len`] before the first `moof` and
    /// [`CutterConfig::max_segment_len`] after, plus one box header.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.head_len
    }

    /// Cuts a whole stream held in memory: every piece, in order.
    pub fn cut_all(input: &[u8], config: CutterConfig) -> Result<Vec<Piece>, CutError> {
        let mut c = Self::new(config);
        c.push(input)?;
        c.finish()
    }

    /// Ends the stream: returns the pieces not yet taken and then the last
    /// segment. Fails if the stream ends inside a box or before its first
    /// fragment; an empty stream gives no piece.
    pub fn finish(mut self) -> Result<Vec<Piece>, CutError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.head_len > 0 || self.cur.is_some() {
            return Err(CutError::Truncated);
        }
        if self.track.is_none() {
            return if self.buf.is_empty() {
                Ok(self.out.into())
            } else {
                Err(CutError::NoFragment)
            };
        }
        self.close_open()?;
        if !self.buf.is_empty() {
            self.emit_until(self.buf.len())?;
        }
        Ok(self.out.into())
    }

    fn push_inner(&mut self, mut bytes: &[u8]) -> Result<(), CutError> {
        while !bytes.is_empty() {
            if let Some(cur) = &mut self.cur {
                let n = usize::try_from(cur.left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.buf.extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                cur.left -= n as u64;
                if cur.left == 0 {
                    self.end_box()?;
                }
                continue;
            }
            let need = if self.head_len >= 8 && self.head[..4] == [0, 0, 0, 1] {
                16
            } else {
                8
            };
            let n = (need - self.head_len).min(bytes.len());
            self.head[self.head_len..self.head_len + n].copy_from_slice(&bytes[..n]);
            self.head_len += n;
            bytes = &bytes[n..];
            if self.head_len < 8 {
                continue;
            }
            let (size, head_len) = match u32::from_be_bytes([
                self.head[0],
                self.head[1],
                self.head[2],
                self.head[3],
            ]) {
                0 => return Err(CutError::UnboundedBox),
                1 if self.head_len < 16 => continue,
                1 => (be_u64(&self.head[8..16]), 16),
                s => (u64::from(s), 8),
            };
            if size < head_len as u64 {
                return Err(CutError::BadBoxSize(size));
            }
            let kind = [self.head[4], self.head[5], self.head[6], self.head[7]];
            self.start_box(kind, size, head_len)?;
        }
        Ok(())
    }

    /// A box header is in: place the box, emitting a segment first if the
    /// box would not fit in the current one.
    fn start_box(&mut self, kind: FourCc, size: u64, head_len: usize) -> Result<(), CutError> {
        if self.track.is_none() {
            match kind {
                MOOF => self.end_init()?,
                MDAT => return Err(CutError::MdatBeforeMoof),
                _ => {
                    if !fits(self.buf.len(), size, self.config.max_init_len) {
                        return Err(CutError::InitTooLarge {
                            limit: self.config.max_init_len,
                        });
                    }
                    return self.begin(kind, size, head_len);
                }
            }
        }
        if kind == MOOF || LEADING.contains(&kind) || (kind != MDAT && self.open.is_none()) {
            // The first box of the next fragment (or another one before its
            // moof): whatever is open is complete.
            self.close_open()?;
            let start = *self.lead_start.get_or_insert(self.buf.len());
            self.make_room(start, size)?;
            if kind == MOOF {
                self.open = Some(Open {
                    start: self.lead_start.take().unwrap_or(0),
                    frag: None,
                });
            }
        } else {
            // An mdat, or another box after this fragment's moof.
            let Some(open) = self.open else {
                return Err(CutError::MdatBeforeMoof);
            };
            self.make_room(open.start, size)?;
        }
        self.begin(kind, size, head_len)
    }

    /// Stores the box header and waits for the payload.
    fn begin(&mut self, kind: FourCc, size: u64, head_len: usize) -> Result<(), CutError> {
        let start = self.buf.len();
        self.buf.extend_from_slice(&self.head[..head_len]);
        self.head_len = 0;
        self.cur = Some(Cur {
            kind,
            start,
            payload: start + head_len,
            left: size - head_len as u64,
        });
        if size == head_len as u64 {
            self.end_box()?;
        }
        Ok(())
    }

    /// A box is complete.
    fn end_box(&mut self) -> Result<(), CutError> {
        let Some(cur) = self.cur.take() else {
            return Ok(());
        };
        let payload = self.buf.get(cur.payload..).unwrap_or_default();
        match (cur.kind, self.track) {
            (MOOV, None) if self.moov_track.is_none() => {
                self.moov_track = Some(parse_moov(payload)?);
            }
            (MOOF, Some(track)) => {
                let frag = parse_moof(payload, &track, self.next_base)?;
                self.end_moof(frag, track.timescale, cur.start)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// A `moof` is in: close the segment before its fragment if the
    /// fragment starts with a keyframe and the segment is long enough, or if
    /// the segment would grow too long.
    fn end_moof(&mut self, frag: Frag, timescale: u32, moof_start: usize) -> Result<(), CutError> {
        self.next_base = add(frag.base, frag.ticks)?;
        let limit_ms = self.config.max_duration_ms;
        if span_ms(frag.base, frag.ticks, timescale)? > u64::from(limit_ms) {
            return Err(CutError::FragmentTooLong { limit_ms });
        }
        let start = self.open.map_or(moof_start, |o| o.start);
        if self.closed.frags > 0 {
            let run = self.closed;
            let now_ms = span_ms(run.base, run.ticks, timescale)?;
            let then_ms = span_ms(run.base, add(run.ticks, frag.ticks)?, timescale)?;
            if (frag.keyframe && now_ms >= u64::from(self.config.target_ms))
                || then_ms > u64::from(limit_ms)
            {
                self.emit_until(start)?;
            }
        }
        if let Some(open) = &mut self.open {
            open.frag = Some(frag);
        }
        Ok(())
    }

    /// Makes room for a box of `size` bytes in the current segment: if it
    /// does not fit, the fragments before `split` go out as a segment; if it
    /// still does not fit, the fragment is too large.
    fn make_room(&mut self, split: usize, size: u64) -> Result<(), CutError> {
        let limit = self.config.max_segment_len;
        if !fits(self.buf.len(), size, limit) && split > 0 {
            self.emit_until(split)?;
        }
        if fits(self.buf.len(), size, limit) {
            Ok(())
        } else {
            Err(CutError::FragmentTooLarge { limit })
        }
    }

    /// Moves the open fragment, complete, into the current segment's run.
    fn close_open(&mut self) -> Result<(), CutError> {
        if let Some(Open {
            frag: Some(frag), ..
        }) = self.open.take()
        {
            self.closed.add(frag)?;
        }
        Ok(())
    }

    /// The first `moof` header is in: everything before it is the init part.
    fn end_init(&mut self) -> Result<(), CutError> {
        let track = self.moov_track.ok_or(CutError::NoMoov)?;
        self.track = Some(track);
        self.out
            .push_back(Piece::Init(core::mem::take(&mut self.buf)));
        Ok(())
    }

    /// Emits the buffer's first `at` bytes, which hold the closed run, as a
    /// segment.
    fn emit_until(&mut self, at: usize) -> Result<(), CutError> {
        let at = at.min(self.buf.len());
        let tail = self.buf.split_off(at);
        let bytes = core::mem::replace(&mut self.buf, tail);
        let run = core::mem::take(&mut self.closed);
        let timescale = self.track.map_or(1, |t| t.timescale);
        let seg = if run.frags == 0 {
            // Only boxes that would have opened a fragment, at the end.
            MediaSegment {
                bytes,
                keyframe: false,
                start_ms: self.next_start_ms,
                duration_ms: 0,
            }
        } else {
            let duration = span_ms(run.base, run.ticks, timescale)?;
            MediaSegment {
                bytes,
                keyframe: run.keyframe,
                start_ms: ms(run.base, timescale)?,
                duration_ms: u32::try_from(duration)
                    .map_err(|_| CutError::Malformed("segment duration"))?,
            }
        };
        self.next_start_ms = seg.start_ms.saturating_add(seg.duration_ms.into());
        self.out.push_back(Piece::Segment(seg));
        if let Some(s) = &mut self.lead_start {
            *s = s.saturating_sub(at);
        }
        if let Some(o) = &mut self.open {
            o.start = o.start.saturating_sub(at);
        }
        if let Some(c) = &mut self.cur {
            c.start = c.start.saturating_sub(at);
            c.payload = c.payload.saturating_sub(at);
        }
        Ok(())
    }
}

/// Whether `len + size` bytes stay within `limit`.
fn fits(len: usize, size: u64, limit: usize) -> bool {
    (len as u64)
        .checked_add(size)
        .is_some_and(|total| total <= limit as u64)
}

fn add(a: u64, b: u64) -> Result<u64, CutError> {
    a.checked_add(b)
        .ok_or(CutError::Malformed("decode time overflows"))
}

/// `t` ticks in ms, rounded down.
fn ms(t: u64, timescale: u32) -> Result<u64, CutError> {
    u64::try_from(u128::from(t) * 1000 / u128::from(timescale.max(1)))
        .map_err(|_| CutError::Malformed("decode time overflows"))
}

/// How many ms `ticks` from `base` span: end in ms minus start in ms.
fn span_ms(base: u64, ticks: u64, timescale: u32) -> Result<u64, CutError> {
    Ok(ms(add(base, ticks)?, timescale)? - ms(base, timescale)?)
}

fn be_u64(b: &[u8]) -> u64 {
    b.iter().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

/// A bounds-checked reader over a box payload.
struct Rd<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Rd<'a> {
    fn new(b: &'a [u8], what: &'static str) -> Self {
        Self { b, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CutError> {
        if n > self.b.len() {
            return Err(CutError::Malformed(self.what));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, CutError> {
        Ok(be_u64(self.take(4)?) as u32)
    }

    fn u64(&mut self) -> Result<u64, CutError> {
        Ok(be_u64(self.take(8)?))
    }

    fn fourcc(&mut self) -> Result<FourCc, CutError> {
        let b = self.take(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    /// A full box's version and flags.
    fn full(&mut self) -> Result<(u8, u32), CutError> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
}

/// The child boxes of a box payload.
struct Boxes<'a> {
    rest: &'a [u8],
}

impl<'a> Boxes<'a> {
    fn new(payload: &'a [u8]) -> Self {
        Self { rest: payload }
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<(FourCc, &'a [u8]), CutError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let all = self.rest;
        let r = (|| {
            let mut r = Rd::new(all, "child box header");
            let size = r.u32()?;
            let kind = r.fourcc()?;
            let (size, head_len) = match size {
                0 => return Err(CutError::Malformed("child box of size 0")),
                1 => (r.u64()?, 16),
                s => (u64::from(s), 8),
            };
            let size = usize::try_from(size)
                .ok()
                .filter(|&s| s >= head_len && s <= all.len())
                .ok_or(CutError::Malformed("child box size"))?;
            Ok((kind, &all[head_len..size], &all[size..]))
        })();
        match r {
            Ok((kind, payload, rest)) => {
                self.rest = rest;
                Some(Ok((kind, payload)))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// The first video track of a `moov` payload (by `hdlr` handler type
/// `vide`), else its first track, with its `trex` defaults.
fn parse_moov(moov: &[u8]) -> Result<Track, CutError> {
    let mut first = None;
    let mut video = None;
    for child in Boxes::new(moov) {
        let (kind, payload) = child?;
        if kind == TRAK {
            let (track, handler) = parse_trak(payload)?;
            first.get_or_insert(track);
            if handler == Some(VIDE) {
                video.get_or_insert(track);
            }
        }
    }
    let mut track = video.or(first).ok_or(CutError::NoTrack)?;
    for child in Boxes::new(moov) {
        let (kind, payload) = child?;
        if kind != MVEX {
            continue;
        }
        for child in Boxes::new(payload) {
            let (kind, payload) = child?;
            if kind != TREX {
                continue;
            }
            let mut r = Rd::new(payload, "trex");
            r.full()?;
            let id = r.u32()?;
            r.u32()?; // default_sample_description_index
            let duration = r.u32()?;
            r.u32()?; // default_sample_size
            let flags = r.u32()?;
            if id == track.id && track.default_duration.is_none() {
                track.default_duration = Some(duration);
                track.default_flags = Some(flags);
            }
        }
    }
    Ok(track)
}

/// A `trak` payload's track id (`tkhd`), timescale (`mdhd`) and handler
/// type (`hdlr`).
fn parse_trak(trak: &[u8]) -> Result<(Track, Option<FourCc>), CutError> {
    let mut id = None;
    let mut timescale = None;
    let mut handler = None;
    for child in Boxes::new(trak) {
        let (kind, payload) = child?;
        if kind == TKHD && id.is_none() {
            let mut r = Rd::new(payload, "tkhd");
            match r.full()?.0 {
                0 => r.take(8)?,
                1 => r.take(16)?,
                _ => return Err(CutError::Malformed("tkhd version")),
            };
            id = Some(r.u32()?);
        } else if kind == MDIA {
            for child in Boxes::new(payload) {
                let (kind, payload) = child?;
                if kind == MDHD && timescale.is_none() {
                    let mut r = Rd::new(payload, "mdhd");
                    match r.full()?.0 {
                        0 => r.take(8)?,
                        1 => r.take(16)?,
                        _ => return Err(CutError::Malformed("mdhd version")),
                    };
                    let t = r.u32()?;
                    if t == 0 {
                        return Err(CutError::Malformed("mdhd timescale 0"));
                    }
                    timescale = Some(t);
                } else if kind == HDLR && handler.is_none() {
                    let mut r = Rd::new(payload, "hdlr");
                    r.full()?;
                    r.u32()?; // pre_defined
                    handler = Some(r.fourcc()?);
                }
            }
        }
    }
    let track = Track {
        id: id.ok_or(CutError::Malformed("trak without tkhd"))?,
        timescale: timescale.ok_or(CutError::Malformed("trak without mdhd"))?,
        default_duration: None,
        default_flags: None,
    };
    Ok((track, handler))
}

/// The chosen track's fragment in a `moof` payload: whether its first
/// sample is a sync sample, its `baseMediaDecodeTime` (or `next_base`
/// without `tfdt`), and the sum of its sample durations. A `moof` without
/// the track is a fragment of no samples, not a keyframe.
fn parse_moof(moof: &[u8], track: &Track, next_base: u64) -> Result<Frag, CutError> {
    let mut base = None;
    let mut keyframe = None;
    let mut ticks = 0u64;
    for child in Boxes::new(moof) {
        let (kind, traf) = child?;
        if kind != TRAF {
            continue;
        }
        let mut tfhd = None;
        for child in Boxes::new(traf) {
            let (kind, payload) = child?;
            if kind == TFHD {
                tfhd = Some(parse_tfhd(payload)?);
                break;
            }
        }
        let (id, duration, flags) = tfhd.ok_or(CutError::Malformed("traf without tfhd"))?;
        if id != track.id {
            continue;
        }
        let duration = duration.or(track.default_duration);
        let flags = flags.or(track.default_flags).unwrap_or(0);
        let mut traf_base = None;
        for child in Boxes::new(traf) {
            let (kind, payload) = child?;
            if kind == TFDT && traf_base.is_none() {
                let mut r = Rd::new(payload, "tfdt");
                traf_base = Some(match r.full()?.0 {
                    0 => u64::from(r.u32()?),
                    1 => r.u64()?,
                    _ => return Err(CutError::Malformed("tfdt version")),
                });
            } else if kind == TRUN {
                let (first, run_ticks) = parse_trun(payload, duration, flags)?;
                if keyframe.is_none() {
                    keyframe = first.map(|f| f & SAMPLE_IS_NON_SYNC == 0);
                }
                ticks = add(ticks, run_ticks)?;
            }
        }
        if base.is_none() {
            base = traf_base;
        }
    }
    Ok(Frag {
        keyframe: keyframe.unwrap_or(false),
        base: base.unwrap_or(next_base),
        ticks,
    })
}

/// A `tfhd` payload's track id, default sample duration and default sample
/// flags.
fn parse_tfhd(tfhd: &[u8]) -> Result<(u32, Option<u32>, Option<u32>), CutError> {
    let mut r = Rd::new(tfhd, "tfhd");
    let (_, flags) = r.full()?;
    let id = r.u32()?;
    if flags & 0x01 != 0 {
        r.u64()?; // base_data_offset
    }
    if flags & 0x02 != 0 {
        r.u32()?; // sample_description_index
    }
    let duration = if flags & 0x08 != 0 {
        Some(r.u32()?)
    } else {
        None
    };
    if flags & 0x10 != 0 {
        r.u32()?; // default_sample_size
    }
    let sample_flags = if flags & 0x20 != 0 {
        Some(r.u32()?)
    } else {
        None
    };
    Ok((id, duration, sample_flags))
}

/// A `trun` payload's first sample flags (none without samples) and the sum
/// of its sample durations.
fn parse_trun(
    trun: &[u8],
    default_duration: Option<u32>,
    default_flags: u32,
) -> Result<(Option<u32>, u64), CutError> {
    let mut r = Rd::new(trun, "trun");
    let (_, flags) = r.full()?;
    let count = r.u32()?;
    if flags & 0x001 != 0 {
        r.u32()?; // data_offset
    }
    let first_flags = if flags & 0x004 != 0 {
        Some(r.u32()?)
    } else {
        None
    };
    let has = |bit: u32| flags & bit != 0;
    let per_sample = 4 * [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|&&b| has(b))
        .count();
    let table = usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(per_sample))
        .ok_or(CutError::Malformed("trun"))?;
    let table = r.take(table)?;
    if count == 0 {
        return Ok((None, 0));
    }
    let ticks = if has(0x100) {
        table
            .chunks_exact(per_sample)
            .try_fold(0u64, |acc, s| add(acc, be_u64(&s[..4])))?
    } else {
        let d = default_duration.ok_or(CutError::Malformed("trun without sample durations"))?;
        u64::from(count) * u64::from(d)
    };
    let first = first_flags.unwrap_or_else(|| {
        if has(0x400) {
            let at = 4 * usize::from(has(0x100)) + 4 * usize::from(has(0x200));
            be_u64(&table[at..at + 4]) as u32
        } else {
            default_flags
        }
    });
    Ok((Some(first), ticks))
}

#[cfg(test)]
mod tests;
