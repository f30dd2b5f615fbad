use proptest::prelude::*;

use super::*;

/// 6 s of 160x120 15 fps H.264 (a keyframe every 8 frames) and AAC, as
/// ffmpeg writes it with `frag_keyframe+empty_moov+default_base_moof`
/// (samples/README.md).
const LIVE: &[u8] = include_bytes!("../../../samples/live.mp4");
/// The sample's `ftyp` + `moov`: everything before its first `moof`.
const LIVE_INIT_LEN: usize = 1260;
/// Its video track lasts 90 frames of 1024 ticks at 15360 Hz (ffprobe:
/// stream duration 6.000000).
const LIVE_VIDEO_MS: u64 = 6000;

fn cut_with(config: CutterConfig, input: &[u8], step: usize) -> Result<Vec<Piece>, CutError> {
    let mut c = Cutter::new(config);
    let mut pieces = Vec::new();
    for piece in input.chunks(step.max(1)) {
        c.push(piece)?;
        assert!(c.buffered() <= config.max_segment_len.max(config.max_init_len) + 16);
        pieces.extend(core::iter::from_fn(|| c.next_piece()));
    }
    pieces.extend(c.finish()?);
    Ok(pieces)
}

fn cut(input: &[u8]) -> Result<Vec<Piece>, CutError> {
    cut_with(CutterConfig::default(), input, input.len())
}

/// The error of pushing `input` whole (with `config`), or of finishing.
fn cut_err(config: CutterConfig, input: &[u8]) -> CutError {
    cut_with(config, input, input.len()).expect_err("the cut must fail")
}

fn segments(pieces: &[Piece]) -> Vec<&MediaSegment> {
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Segment(s) => Some(s),
            Piece::Init(_) => None,
        })
        .collect()
}

fn joined(pieces: &[Piece]) -> Vec<u8> {
    pieces
        .iter()
        .flat_map(|p| match p {
            Piece::Init(b) => b.as_slice(),
            Piece::Segment(s) => s.bytes.as_slice(),
        })
        .copied()
        .collect()
}

/// Checks what holds of every cut: the init part first and only there,
/// segments that tile in time, and the pieces together are the input.
fn check(pieces: &[Piece], input: &[u8]) {
    assert!(matches!(pieces.first(), Some(Piece::Init(_))));
    assert!(pieces[1..].iter().all(|p| matches!(p, Piece::Segment(_))));
    let segs = segments(pieces);
    for pair in segs.windows(2) {
        assert_eq!(
            pair[0].start_ms + u64::from(pair[0].duration_ms),
            pair[1].start_ms
        );
    }
    assert_eq!(joined(pieces), input);
}

#[test]
fn cuts_the_sample() {
    let pieces = cut(LIVE).unwrap();
    check(&pieces, LIVE);
    let Piece::Init(init) = &pieces[0] else {
        unreachable!()
    };
    assert_eq!(init.len(), LIVE_INIT_LEN);
    assert_eq!(&init[4..8], b"ftyp");
    let segs = segments(&pieces);
    // 12 fragments of 8 frames (the last of 10 frames), two to a segment.
    assert_eq!(segs.len(), 6);
    assert!(segs.iter().all(|s| s.keyframe));
    assert!(segs.iter().all(|s| &s.bytes[4..8] == b"moof"));
    assert_eq!(segs[0].start_ms, 0);
    for s in &segs[..segs.len() - 1] {
        assert!(s.duration_ms >= 1000, "{s:?}");
        assert!(s.duration_ms <= 1100, "{s:?}");
    }
    let total: u64 = segs.iter().map(|s| u64::from(s.duration_ms)).sum();
    assert!(total.abs_diff(LIVE_VIDEO_MS) <= 67, "{total} ms");
    // The stream's trailing mfra stays with the last segment.
    let last = segs.last().unwrap();
    assert_eq!(&last.bytes[last.bytes.len() - 528 + 4..][..4], b"mfra");
}

#[test]
fn byte_at_a_time_cuts_the_same() {
    let whole = cut(LIVE).unwrap();
    assert_eq!(cut_with(CutterConfig::default(), LIVE, 1).unwrap(), whole);
    assert_eq!(cut_with(CutterConfig::default(), LIVE, 7).unwrap(), whole);
}

proptest! {
    #[test]
    fn random_splits_cut_the_same(cuts in proptest::collection::vec(0..LIVE.len(), 0..40)) {
        let mut cuts = cuts;
        cuts.push(0);
        cuts.push(LIVE.len());
        cuts.sort_unstable();
        let mut c = Cutter::new(CutterConfig::default());
        let mut pieces = Vec::new();
        for w in cuts.windows(2) {
            c.push(&LIVE[w[0]..w[1]]).unwrap();
            pieces.extend(core::iter::from_fn(|| c.next_piece()));
        }
        pieces.extend(c.finish().unwrap());
        prop_assert_eq!(pieces, cut(LIVE).unwrap());
    }

    /// The fuzz oracle, on the sample with some bytes changed.
    #[test]
    fn altered_sample_holds_the_oracle(
        split in any::<u8>(),
        edits in proptest::collection::vec((0..LIVE.len(), any::<u8>()), 0..6),
    ) {
        let mut data = vec![split];
        data.extend_from_slice(LIVE);
        for (at, b) in edits {
            data[1 + at] = b;
        }
        crate::fuzzing::fmp4_cutter(&data);
    }

    #[test]
    fn garbage_never_panics(split in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut input = vec![split];
        input.extend(data);
        crate::fuzzing::fmp4_cutter(&input);
    }
}

#[test]
fn a_smaller_segment_limit_cuts_early() {
    let config = CutterConfig {
        target_ms: 10_000,
        max_segment_len: 12_000,
        ..CutterConfig::default()
    };
    let pieces = cut_with(config, LIVE, 1000).unwrap();
    check(&pieces, LIVE);
    let segs = segments(&pieces);
    assert!(segs.len() >= 6, "{}", segs.len());
    assert!(segs.iter().all(|s| s.bytes.len() <= 12_000 && s.keyframe));
}

#[test]
fn the_duration_limit_cuts_early() {
    let config = CutterConfig {
        target_ms: 60_000,
        max_duration_ms: 1_800,
        ..CutterConfig::default()
    };
    let pieces = cut_with(config, LIVE, 333).unwrap();
    check(&pieces, LIVE);
    let segs = segments(&pieces);
    // Three fragments of 533 ms to a segment.
    assert_eq!(segs.len(), 4);
    assert!(segs.iter().all(|s| s.duration_ms <= 1_800));
}

#[test]
fn a_fragment_longer_than_the_duration_limit_fails() {
    let config = CutterConfig {
        max_duration_ms: 500,
        ..CutterConfig::default()
    };
    assert_eq!(
        cut_err(config, LIVE),
        CutError::FragmentTooLong { limit_ms: 500 }
    );
}

#[test]
fn a_fragment_larger_than_the_segment_limit_fails() {
    let config = CutterConfig {
        max_segment_len: 4000,
        ..CutterConfig::default()
    };
    assert_eq!(
        cut_err(config, LIVE),
        CutError::FragmentTooLarge { limit: 4000 }
    );
}

#[test]
fn truncated_input_fails_at_finish() {
    for end in [
        1,
        27,
        LIVE_INIT_LEN + 3,
        LIVE_INIT_LEN + 100,
        LIVE.len() / 2,
        LIVE.len() - 1,
    ] {
        let mut c = Cutter::new(CutterConfig::default());
        c.push(&LIVE[..end]).unwrap();
        assert_eq!(c.finish(), Err(CutError::Truncated), "{end}");
    }
    // The stream ends between boxes, before the first moof.
    assert_eq!(
        cut_err(CutterConfig::default(), &LIVE[..LIVE_INIT_LEN]),
        CutError::NoFragment
    );
    assert_eq!(cut(&[]), Ok(Vec::new()));
    // Between boxes after a fragment: fine.
    let end = LIVE_INIT_LEN + 324 + 5114;
    let pieces = cut(&LIVE[..end]).unwrap();
    check(&pieces, &LIVE[..end]);
    assert_eq!(segments(&pieces).len(), 1);
}

#[test]
fn a_box_smaller_than_its_header_fails() {
    assert_eq!(
        cut_err(
            CutterConfig::default(),
            &[0, 0, 0, 7, b'f', b'r', b'e', b'e']
        ),
        CutError::BadBoxSize(7)
    );
    let mut large = vec![0, 0, 0, 1, b'f', b'r', b'e', b'e'];
    large.extend_from_slice(&15u64.to_be_bytes());
    assert_eq!(
        cut_err(CutterConfig::default(), &large),
        CutError::BadBoxSize(15)
    );
    // After the init part too.
    let mut s = LIVE[..LIVE_INIT_LEN + 324 + 5114].to_vec();
    s.extend_from_slice(&[0, 0, 0, 4, b'm', b'o', b'o', b'f']);
    assert_eq!(
        cut_err(CutterConfig::default(), &s),
        CutError::BadBoxSize(4)
    );
}

#[test]
fn a_box_to_the_end_of_the_file_fails() {
    let mut s = LIVE[..LIVE_INIT_LEN + 324].to_vec();
    s.extend_from_slice(&[0, 0, 0, 0, b'm', b'd', b'a', b't']);
    assert_eq!(cut_err(CutterConfig::default(), &s), CutError::UnboundedBox);
}

#[test]
fn a_64_bit_box_size_is_read() {
    // A free box with a 64-bit size before the moov.
    let mut s = LIVE[..28].to_vec();
    s.extend_from_slice(&[0, 0, 0, 1, b'f', b'r', b'e', b'e']);
    s.extend_from_slice(&20u64.to_be_bytes());
    s.extend_from_slice(b"four");
    s.extend_from_slice(&LIVE[28..]);
    let pieces = cut_with(CutterConfig::default(), &s, 3).unwrap();
    check(&pieces, &s);
    let Piece::Init(init) = &pieces[0] else {
        unreachable!()
    };
    assert_eq!(init.len(), LIVE_INIT_LEN + 20);
}

#[test]
fn an_oversized_box_fails_at_its_header() {
    // Only the header is pushed: the limit is checked before any payload
    // is held, let alone allocated.
    let mut c = Cutter::new(CutterConfig::default());
    assert_eq!(
        c.push(&[0xff, 0xff, 0xff, 0xf0, b'f', b'r', b'e', b'e']),
        Err(CutError::InitTooLarge {
            limit: MAX_INIT_LEN
        })
    );
    assert_eq!(c.buffered(), 0);
    // An mdat of 2^40 bytes after the init part.
    let mut c = Cutter::new(CutterConfig::default());
    c.push(&LIVE[..LIVE_INIT_LEN + 324]).unwrap();
    let mut head = vec![0, 0, 0, 1, b'm', b'd', b'a', b't'];
    head.extend_from_slice(&(1u64 << 40).to_be_bytes());
    assert_eq!(
        c.push(&head),
        Err(CutError::FragmentTooLarge {
            limit: MAX_SEGMENT_MEDIA_LEN
        })
    );
    assert_eq!(c.buffered(), 0);
    // The largest 64-bit size does not overflow.
    let mut c = Cutter::new(CutterConfig::default());
    let mut head = vec![0, 0, 0, 1, b'f', b'r', b'e', b'e'];
    head.extend_from_slice(&u64::MAX.to_be_bytes());
    assert!(matches!(c.push(&head), Err(CutError::InitTooLarge { .. })));
}

#[test]
fn an_init_part_over_its_limit_fails() {
    let config = CutterConfig {
        max_init_len: LIVE_INIT_LEN - 1,
        ..CutterConfig::default()
    };
    assert_eq!(
        cut_err(config, LIVE),
        CutError::InitTooLarge {
            limit: LIVE_INIT_LEN - 1
        }
    );
}

#[test]
fn a_moof_without_a_moov_before_it_fails() {
    let mut s = LIVE[..28].to_vec();
    s.extend_from_slice(&LIVE[LIVE_INIT_LEN..]);
    assert_eq!(cut_err(CutterConfig::default(), &s), CutError::NoMoov);
}

#[test]
fn an_mdat_before_any_moof_fails() {
    let mut s = LIVE[..LIVE_INIT_LEN].to_vec();
    s.extend_from_slice(&LIVE[LIVE_INIT_LEN + 324..]);
    assert_eq!(
        cut_err(CutterConfig::default(), &s),
        CutError::MdatBeforeMoof
    );
    // An mdat after a box that opens the next fragment, before its moof.
    let first = LIVE_INIT_LEN + 324 + 5114;
    let mut s = LIVE[..first].to_vec();
    s.extend_from_slice(&bx(b"styp", b"msdh\0\0\0\0"));
    s.extend_from_slice(&bx(b"mdat", b"data"));
    assert_eq!(
        cut_err(CutterConfig::default(), &s),
        CutError::MdatBeforeMoof
    );
}

#[test]
fn garbage_fails() {
    let text = b"This is a plain text file, not an MP4 video.\n";
    assert_eq!(
        cut_err(CutterConfig::default(), text),
        CutError::InitTooLarge {
            limit: MAX_INIT_LEN
        }
    );
    assert_eq!(
        cut_err(
            CutterConfig::default(),
            &[0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef]
        ),
        CutError::BadBoxSize(2)
    );
    // Well-formed boxes, but a moov that holds garbage.
    let mut s = bx(b"moov", &bx(b"trak", &[0xff; 12]));
    s.extend_from_slice(&bx(b"moof", &[]));
    assert_eq!(
        cut_err(CutterConfig::default(), &s),
        CutError::Malformed("child box size")
    );
}

#[test]
fn an_error_sticks() {
    let mut c = Cutter::new(CutterConfig::default());
    let e = c.push(&[0, 0, 0, 2, 0, 0, 0, 0]).unwrap_err();
    assert_eq!(c.push(&LIVE[..28]), Err(e.clone()));
    assert_eq!(c.push(&[]), Err(e.clone()));
    assert_eq!(c.finish(), Err(e));
    // Pieces completed before the error can still be taken.
    let mut s = LIVE.to_vec();
    s.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 0]);
    let mut c = Cutter::new(CutterConfig::default());
    c.push(&s[..LIVE.len() - 528]).unwrap();
    assert_eq!(c.push(&s[LIVE.len() - 528..]), Err(CutError::BadBoxSize(3)));
    let taken: Vec<Piece> = core::iter::from_fn(|| c.next_piece()).collect();
    assert_eq!(segments(&taken).len(), 5);
    assert!(LIVE.starts_with(&joined(&taken)));
}

// Synthetic streams, for what the sample does not show.

fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut b = (8 + payload.len() as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(payload);
    b
}

fn full(kind: &[u8; 4], version: u8, flags: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = ((u32::from(version) << 24) | flags).to_be_bytes().to_vec();
    p.extend_from_slice(payload);
    bx(kind, &p)
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

/// A trak with a version 0 or 1 `tkhd` and `mdhd`.
fn trak(id: u32, timescale: u32, handler: &[u8; 4], version: u8) -> Vec<u8> {
    let times = if version == 1 { 16 } else { 8 };
    let mut tkhd = vec![0; times];
    tkhd.extend_from_slice(&u32s(&[id, 0, 0, 0]));
    let mut mdhd = vec![0; times];
    mdhd.extend_from_slice(&u32s(&[timescale, 0, 0]));
    let hdlr = cat(&[u32s(&[0]), handler.to_vec(), vec![0; 13]]);
    bx(
        b"trak",
        &cat(&[
            full(b"tkhd", version, 3, &tkhd),
            bx(
                b"mdia",
                &cat(&[full(b"mdhd", version, 0, &mdhd), full(b"hdlr", 0, 0, &hdlr)]),
            ),
        ]),
    )
}

/// `ftyp` + `moov` with these traks and `trex` (id, duration, flags).
fn init(traks: &[Vec<u8>], trex: &[(u32, u32, u32)]) -> Vec<u8> {
    let mvex: Vec<Vec<u8>> = trex
        .iter()
        .map(|&(id, d, f)| full(b"trex", 0, 0, &u32s(&[id, 1, d, 0, f])))
        .collect();
    let mut moov = traks.concat();
    if !trex.is_empty() {
        moov.extend_from_slice(&bx(b"mvex", &mvex.concat()));
    }
    cat(&[bx(b"ftyp", b"isom\0\0\0\0"), bx(b"moov", &moov)])
}

const SYNC: u32 = 0x0200_0000;
const NON_SYNC: u32 = 0x0101_0000;

/// A traf: `tfhd` with a default duration and flags, `tfdt` v1 at `base`,
/// and a `trun` of `count` samples whose first has `first` flags.
fn traf(id: u32, base: u64, count: u32, duration: u32, first: u32) -> Vec<u8> {
    bx(
        b"traf",
        &cat(&[
            full(b"tfhd", 0, 0x02_0028, &u32s(&[id, duration, NON_SYNC])),
            full(b"tfdt", 1, 0, &base.to_be_bytes()),
            full(b"trun", 0, 0x005, &u32s(&[count, 0, first])),
        ]),
    )
}

/// moof + mdat of `len` payload bytes.
fn frag(trafs: &[Vec<u8>], len: usize) -> Vec<u8> {
    let moof = bx(
        b"moof",
        &cat(&[full(b"mfhd", 0, 0, &[0; 4]), trafs.concat()]),
    );
    cat(&[moof, bx(b"mdat", &vec![0xaa; len])])
}

/// (keyframe, start_ms, duration_ms) of each segment.
fn shape(pieces: &[Piece]) -> Vec<(bool, u64, u32)> {
    segments(pieces)
        .iter()
        .map(|s| (s.keyframe, s.start_ms, s.duration_ms))
        .collect()
}

/// One-track stream at 1000 Hz of fragments (keyframe, ms), 10 samples each.
fn simple(frags: &[(bool, u32)]) -> Vec<u8> {
    let mut s = init(&[trak(1, 1000, b"vide", 0)], &[(1, 0, 0)]);
    let mut t = 0u64;
    for &(k, ms) in frags {
        let flags = if k { SYNC } else { NON_SYNC };
        s.extend_from_slice(&frag(&[traf(1, t, 10, ms / 10, flags)], 100));
        t += u64::from(ms);
    }
    s
}

#[test]
fn segments_start_only_at_keyframes() {
    let s = simple(&[
        (true, 600),
        (false, 600),
        (false, 600),
        (true, 600),
        (true, 300),
        (true, 400),
        (false, 500),
        (true, 200),
    ]);
    let pieces = cut_with(CutterConfig::default(), &s, 5).unwrap();
    check(&pieces, &s);
    // A segment of 900 ms takes the next keyframe fragment; one of 1300 ms
    // waits for the next keyframe.
    assert_eq!(
        shape(&pieces),
        [(true, 0, 1800), (true, 1800, 1800), (true, 3600, 200)]
    );
}

#[test]
fn a_stream_may_start_without_a_keyframe() {
    let s = simple(&[(false, 500), (true, 500), (true, 1000)]);
    let pieces = cut(&s).unwrap();
    check(&pieces, &s);
    assert_eq!(shape(&pieces), [(false, 0, 1000), (true, 1000, 1000)]);
}

#[test]
fn without_keyframes_the_duration_limit_cuts() {
    let config = CutterConfig {
        max_duration_ms: 2000,
        ..CutterConfig::default()
    };
    let s = simple(&[(true, 800), (false, 800), (false, 800), (false, 800)]);
    let pieces = cut_with(config, &s, s.len()).unwrap();
    check(&pieces, &s);
    assert_eq!(shape(&pieces), [(true, 0, 1600), (false, 1600, 1600)]);
}

#[test]
fn the_first_video_track_is_chosen() {
    // Audio is track 1 (every sample a sync sample); video is track 2 at
    // 90 kHz, its second fragment not a keyframe.
    let mut s = init(
        &[trak(1, 48000, b"soun", 0), trak(2, 90000, b"vide", 1)],
        &[(1, 1024, 0), (2, 0, 0)],
    );
    let f = |t: u64, k: bool| {
        frag(
            &[
                traf(1, t * 48, 47, 1024, 0),
                traf(2, t * 90, 18, 3000 * 2, if k { SYNC } else { NON_SYNC }),
            ],
            50,
        )
    };
    for (t, k) in [(0, true), (1200, false), (2400, true)] {
        s.extend_from_slice(&f(t, k));
    }
    let pieces = cut(&s).unwrap();
    check(&pieces, &s);
    assert_eq!(shape(&pieces), [(true, 0, 2400), (true, 2400, 1200)]);
}

#[test]
fn without_video_the_first_track_is_chosen() {
    let mut s = init(&[trak(7, 1000, b"soun", 0), trak(8, 1000, b"text", 0)], &[]);
    for t in [0u64, 500, 1000, 1500] {
        s.extend_from_slice(&frag(
            &[traf(8, t, 1, 500, NON_SYNC), traf(7, t, 5, 100, 0)],
            10,
        ));
    }
    let pieces = cut(&s).unwrap();
    check(&pieces, &s);
    assert_eq!(shape(&pieces), [(true, 0, 1000), (true, 1000, 1000)]);
}

#[test]
fn defaults_come_from_trex_and_per_sample_fields() {
    // trex: 250 ticks a sample, non-sync by default.
    let mut s = init(&[trak(1, 1000, b"vide", 0)], &[(1, 250, NON_SYNC)]);
    let bare_tfhd = full(b"tfhd", 0, 0x02_0000, &u32s(&[1]));
    // 1: no defaults in tfhd or trun: non-sync (trex), 4 x 250 ms.
    s.extend_from_slice(&frag(
        &[bx(
            b"traf",
            &cat(&[
                bare_tfhd.clone(),
                full(b"tfdt", 0, 0, &u32s(&[0])),
                full(b"trun", 0, 0, &u32s(&[4])),
            ]),
        )],
        10,
    ));
    // 2: per-sample durations, sizes and flags, the first not a sync sample.
    s.extend_from_slice(&frag(
        &[bx(
            b"traf",
            &cat(&[
                bare_tfhd.clone(),
                full(b"tfdt", 0, 0, &u32s(&[1000])),
                full(
                    b"trun",
                    0,
                    0x701,
                    &u32s(&[2, 0, 300, 5, NON_SYNC, 200, 5, SYNC]),
                ),
            ]),
        )],
        10,
    ));
    // 3: no tfdt (it follows on), two truns, the first empty; flags from
    // tfhd's default: sync.
    s.extend_from_slice(&frag(
        &[bx(
            b"traf",
            &cat(&[
                full(b"tfhd", 0, 0x02_0020, &u32s(&[1, 0])),
                full(b"trun", 0, 0, &u32s(&[0])),
                full(b"trun", 0, 0, &u32s(&[2])),
            ]),
        )],
        10,
    ));
    let pieces = cut(&s).unwrap();
    check(&pieces, &s);
    assert_eq!(shape(&pieces), [(false, 0, 1500), (true, 1500, 500)]);
}

#[test]
fn leading_boxes_open_the_next_fragment() {
    let mut s = simple(&[(true, 1000)]);
    let styp = bx(b"styp", b"msdh\0\0\0\0");
    let second = frag(&[traf(1, 1000, 10, 100, SYNC)], 100);
    s.extend_from_slice(&styp);
    s.extend_from_slice(&second);
    // Trailing boxes that open no fragment stay with the last one.
    s.extend_from_slice(&styp);
    let pieces = cut_with(CutterConfig::default(), &s, 9).unwrap();
    check(&pieces, &s);
    let segs = segments(&pieces);
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[1].bytes, cat(&[styp.clone(), second, styp]));
}

#[test]
fn a_fragment_without_the_track_is_not_a_keyframe() {
    let mut s = init(&[trak(1, 1000, b"vide", 0), trak(2, 1000, b"soun", 0)], &[]);
    s.extend_from_slice(&frag(&[traf(1, 0, 10, 100, SYNC)], 10));
    s.extend_from_slice(&frag(&[traf(2, 1000, 10, 100, 0)], 10));
    s.extend_from_slice(&frag(&[traf(1, 1000, 10, 100, SYNC)], 10));
    let pieces = cut(&s).unwrap();
    check(&pieces, &s);
    assert_eq!(shape(&pieces), [(true, 0, 1000), (true, 1000, 1000)]);
    let first = frag(&[traf(1, 0, 10, 100, SYNC)], 10);
    let audio = frag(&[traf(2, 1000, 10, 100, 0)], 10);
    assert_eq!(segments(&pieces)[0].bytes, cat(&[first, audio]));
}

#[test]
fn malformed_boxes_fail() {
    let f = frag(&[traf(1, 0, 10, 100, SYNC)], 10);
    let case =
        |init: Vec<u8>, frag: &[u8]| cut_err(CutterConfig::default(), &cat(&[init, frag.to_vec()]));
    // No track.
    assert_eq!(case(init(&[], &[]), &f), CutError::NoTrack);
    // A timescale of 0.
    assert_eq!(
        case(init(&[trak(1, 0, b"vide", 0)], &[]), &f),
        CutError::Malformed("mdhd timescale 0")
    );
    // An unknown tkhd version.
    assert_eq!(
        case(init(&[trak(1, 1000, b"vide", 2)], &[]), &f),
        CutError::Malformed("tkhd version")
    );
    // A trun whose sample table overruns it.
    let good = init(&[trak(1, 1000, b"vide", 0)], &[]);
    let bad = frag(
        &[bx(
            b"traf",
            &cat(&[
                full(b"tfhd", 0, 0x02_0000, &u32s(&[1])),
                full(b"trun", 0, 0x100, &u32s(&[u32::MAX, 1, 2])),
            ]),
        )],
        10,
    );
    assert_eq!(case(good.clone(), &bad), CutError::Malformed("trun"));
    // Samples with no duration anywhere.
    let bad = frag(
        &[bx(
            b"traf",
            &cat(&[
                full(b"tfhd", 0, 0x02_0000, &u32s(&[1])),
                full(b"trun", 0, 0, &u32s(&[3])),
            ]),
        )],
        10,
    );
    assert_eq!(
        case(good.clone(), &bad),
        CutError::Malformed("trun without sample durations")
    );
    // A traf without tfhd.
    let bad = frag(&[bx(b"traf", &full(b"tfdt", 0, 0, &u32s(&[0])))], 10);
    assert_eq!(
        case(good.clone(), &bad),
        CutError::Malformed("traf without tfhd")
    );
    // A decode time that overflows.
    let bad = frag(&[traf(1, u64::MAX - 5, 10, 100, SYNC)], 10);
    assert_eq!(
        case(good, &bad),
        CutError::Malformed("decode time overflows")
    );
}
