use std::io::{self, Cursor, Read, Seek, SeekFrom};

use mayfly_protocol::header::ClipKind;

use super::*;

fn info(duration_ms: u32, has_video: bool) -> MediaInfo {
    MediaInfo {
        duration_ms,
        media_type: MP4_MEDIA_TYPE,
        has_video,
        dimensions: None,
    }
}

fn wave() -> &'static [u8] {
    DEFAULT_FLIKS[0].1
}

#[test]
fn check_enforces_each_kind_limit() {
    check(&info(180_000, true), ClipKind::Clip).unwrap();
    check(&info(5_000, true), ClipKind::Reaction).unwrap();
    check(&info(1, true), ClipKind::Reaction).unwrap();
    let e = check(&info(181_000, true), ClipKind::Clip).unwrap_err();
    assert_eq!(
        e.to_string(),
        "clip is 181.0 s; video messages are at most 180 s"
    );
    let e = check(&info(5_001, true), ClipKind::Reaction).unwrap_err();
    assert_eq!(e.to_string(), "clip is 5.1 s; fliks are at most 5 s");
    assert!(matches!(
        check(&info(10_001, true), ClipKind::LiveSegment),
        Err(MediaError::TooLong {
            duration_ms: 10_001,
            limit_ms: 10_000,
            kind: ClipKind::LiveSegment
        })
    ));
}

#[test]
fn check_wants_video_and_a_duration() {
    assert!(matches!(
        check(&info(1_000, false), ClipKind::Clip),
        Err(MediaError::NoVideoTrack)
    ));
    assert!(matches!(
        check(&info(0, true), ClipKind::Clip),
        Err(MediaError::NoDuration)
    ));
}

#[test]
fn default_fliks_probe_and_pass_as_fliks() {
    let names: Vec<_> = DEFAULT_FLIKS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["wave", "nod"]);
    for (name, bytes) in DEFAULT_FLIKS {
        let info = probe(Cursor::new(bytes)).unwrap();
        assert!(info.has_video, "{name}");
        assert_eq!(info.dimensions, Some((160, 120)), "{name}");
        check(&info, ClipKind::Reaction).unwrap();
    }
}

/// Every prefix, and thousands of seeded bit flips, byte overwrites and
/// splices of a real clip: each gives a result or an error, never a panic.
#[test]
fn damaged_input_gives_errors_not_panics() {
    let good = wave();
    for len in 0..good.len() {
        let _ = probe(Cursor::new(&good[..len]));
    }
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..4000 {
        let mut bytes = good.to_vec();
        // Most damage lands in the first 2 KiB, where ftyp and moov are.
        let span = if round % 2 == 0 { 2048 } else { bytes.len() };
        for _ in 0..1 + next() % 8 {
            let at = (next() as usize) % span;
            match next() % 3 {
                0 => bytes[at] ^= 1 << (next() % 8),
                1 => bytes[at] = next() as u8,
                _ => bytes[at] = [0x00, 0xff, 0x01, 0x7f][(next() % 4) as usize],
            }
        }
        if round % 5 == 0 {
            bytes.truncate((next() as usize) % bytes.len());
        }
        let _ = probe(Cursor::new(&bytes));
    }
    for len in 0..64 {
        let garbage: Vec<u8> = (0..len * 37).map(|_| next() as u8).collect();
        assert!(probe(Cursor::new(&garbage)).is_err());
    }
}

#[test]
fn odd_box_headers_are_errors() {
    let cases: &[&[u8]] = &[
        b"",
        b"\0\0\0",
        b"\0\0\0\x04ftyp",
        b"\0\0\0\x01ftyp\0\0\0\0\0\0\0\x02",
        b"\0\0\0\x0cftypisom",
        b"\0\0\0\0ftypisom",
    ];
    for bytes in cases {
        let e = probe(Cursor::new(bytes)).unwrap_err();
        assert!(matches!(e, MediaError::NotMp4 { .. }), "{bytes:?}: {e}");
        assert!(!e.to_string().contains('\n'), "{e}");
    }
    // A moov box that says it is longer than the file: cut short.
    let e = probe(Cursor::new(b"\0\0\0\x0cftypisom\0\0\x10\x00moov")).unwrap_err();
    assert!(
        matches!(
            e,
            MediaError::Truncated {
                needed: 4108,
                len: 20,
                ..
            }
        ),
        "{e}"
    );
    // An empty moov is well formed but holds nothing a clip needs.
    let empty = probe(Cursor::new(b"\0\0\0\x0cftypisom\0\0\0\x08moov")).unwrap();
    assert_eq!(empty, info(0, false));
    assert!(matches!(
        check(&empty, ClipKind::Clip),
        Err(MediaError::NoVideoTrack)
    ));
}

/// A file of `head`, then `gap` virtual bytes nobody should read, then `tail`.
struct Sparse {
    head: Vec<u8>,
    gap: u64,
    tail: Vec<u8>,
    pos: u64,
    bytes_read: u64,
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let head = self.head.len() as u64;
        let (src, off) = if self.pos < head {
            (&self.head[..], self.pos)
        } else if self.pos < head + self.gap {
            let n = buf.len().min((head + self.gap - self.pos) as usize);
            buf[..n].fill(0);
            self.pos += n as u64;
            self.bytes_read += n as u64;
            return Ok(n);
        } else {
            (&self.tail[..], self.pos - head - self.gap)
        };
        let n = (&src[off.min(src.len() as u64) as usize..]).read(buf)?;
        self.pos += n as u64;
        self.bytes_read += n as u64;
        Ok(n)
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let end = (self.head.len() + self.tail.len()) as u64 + self.gap;
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => end.saturating_add_signed(d),
            SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
        };
        Ok(self.pos)
    }
}

/// The top-level boxes of a plain (32-bit sized) MP4, by type.
fn top_box<'a>(mut bytes: &'a [u8], kind: &[u8; 4]) -> &'a [u8] {
    loop {
        let size = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        if &bytes[4..8] == kind {
            return &bytes[..size];
        }
        bytes = &bytes[size..];
    }
}

#[test]
fn a_gigabyte_of_mdat_before_moov_is_skipped_not_read() {
    let gap = 1u64 << 30;
    let mut head = top_box(wave(), b"ftyp").to_vec();
    head.extend_from_slice(&1u32.to_be_bytes());
    head.extend_from_slice(b"mdat");
    head.extend_from_slice(&(gap + 16).to_be_bytes());
    let mut file = Sparse {
        head,
        gap,
        tail: top_box(wave(), b"moov").to_vec(),
        pos: 0,
        bytes_read: 0,
    };
    let sparse = probe(&mut file).unwrap();
    assert_eq!(sparse, probe(Cursor::new(wave())).unwrap());
    assert!(file.bytes_read < 64 * 1024, "read {}", file.bytes_read);
}

/// `head -c N` of a clip, for every N short of the whole file: the sample
/// tables point past the end (or a box does), so each prefix is refused,
/// and those that keep the whole `moov` say that the file is incomplete.
#[test]
fn every_truncation_is_refused() {
    let good = wave();
    probe(Cursor::new(good)).unwrap();
    let moov_end = (top_box(good, b"ftyp").len() + top_box(good, b"moov").len()) as u64;
    for len in 0..good.len() {
        let e = probe(Cursor::new(&good[..len])).unwrap_err();
        if len as u64 >= moov_end {
            assert!(
                matches!(e, MediaError::Truncated { len: l, .. } if l == len as u64),
                "{len}: {e}"
            );
        }
    }
}

/// Put the samples somewhere else: a chunk offset past every `mdat`, but
/// within the file, is refused as well as one past its end.
#[test]
fn samples_outside_mdat_are_refused() {
    let good = wave();
    // Append a free box and point the first video chunk into it.
    let mut bytes = good.to_vec();
    let free_at = bytes.len() as u64;
    bytes.extend_from_slice(&(8u32 + 65_536).to_be_bytes());
    bytes.extend_from_slice(b"free");
    bytes.extend(std::iter::repeat_n(0u8, 65_536));
    let stco = bytes
        .windows(4)
        .position(|w| w == b"stco")
        .expect("an stco box");
    // version and flags, entry count, then the first offset.
    let first = stco + 4 + 4 + 4;
    bytes[first..first + 4].copy_from_slice(&((free_at + 8) as u32).to_be_bytes());
    let e = probe(Cursor::new(&bytes)).unwrap_err();
    assert!(matches!(e, MediaError::NotMp4 { .. }), "{e}");
    assert!(e.to_string().contains("not within an mdat box"), "{e}");
    bytes[first..first + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let e = probe(Cursor::new(&bytes)).unwrap_err();
    assert!(matches!(e, MediaError::Truncated { .. }), "{e}");
}

#[test]
fn the_not_mp4_error_quotes_the_first_bytes() {
    let e = probe(Cursor::new(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0more")).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"not a readable MP4 file: the file does not start with an ftyp box (it starts with "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")"#
    );
    let e = probe(Cursor::new(b"hi")).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"not a readable MP4 file: the file does not start with an ftyp box (it starts with "hi")"#
    );
}

#[test]
fn check_len_names_the_limit() {
    let path = std::path::Path::new("big.mp4");
    check_len(path, 1 << 30).unwrap();
    let e = check_len(path, (1 << 30) + (1 << 29)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "big.mp4 is 1.5 GiB (1610612736 bytes); clips are at most 1 GiB (1073741824 bytes)"
    );
    let e = check_len(path, (1 << 30) + 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "big.mp4 is over 1 GiB (1073741825 bytes); clips are at most 1 GiB (1073741824 bytes)"
    );
}

proptest::proptest! {
    #[test]
    fn the_fuzz_harness_holds_on_random_bytes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        crate::fuzzing::mp4_probe(&data);
    }

    #[test]
    fn the_fuzz_harness_holds_on_altered_samples(
        which in 0usize..3,
        flips in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), 0u8..8), 1..8),
        cut in proptest::prelude::any::<proptest::sample::Index>(),
        truncate: bool,
    ) {
        let sample: &[u8] = [
            &include_bytes!("../../samples/hello.mp4")[..],
            &include_bytes!("../../samples/flik-wave.mp4")[..],
            &include_bytes!("../../samples/live.mp4")[..],
        ][which];
        let mut data = sample.to_vec();
        for (at, bit) in flips {
            let i = at.index(data.len());
            data[i] ^= 1 << bit;
        }
        if truncate {
            data.truncate(cut.index(data.len()));
        }
        crate::fuzzing::mp4_probe(&data);
    }
}

#[test]
fn the_fuzz_harness_accepts_the_samples() {
    for sample in [
        &include_bytes!("../../samples/hello.mp4")[..],
        &include_bytes!("../../samples/flik-wave.mp4")[..],
    ] {
        assert!(probe(Cursor::new(sample)).is_ok());
        crate::fuzzing::mp4_probe(sample);
    }
}

/// Found by the `mp4_probe` fuzz target: files whose `moov` made the parser
/// reserve gigabytes before reading a byte — an `stsd` count of billions,
/// an `stts` count after a box that claims more than its parent, an `hdlr`
/// claiming 4 GB. Each is refused before the parser sees it. A fourth hid
/// the same in a `udta` item, which the probe drops unread.
#[test]
fn boxes_and_tables_larger_than_their_parent_are_refused_before_parsing() {
    for (data, why) in [
        (
            &include_bytes!("../testdata/stsd-count-overflow.mp4")[..],
            "stsd box lists",
        ),
        (
            &include_bytes!("../testdata/stts-count-in-clipped-box.mp4")[..],
            "minf box claims",
        ),
        (
            &include_bytes!("../testdata/hdlr-size-past-parent.mp4")[..],
            "box claims",
        ),
    ] {
        match probe(Cursor::new(data)) {
            Err(MediaError::NotMp4 { reason }) => assert!(reason.contains(why), "{reason}"),
            other => panic!("{other:?}"),
        }
        crate::fuzzing::mp4_probe(data);
    }
}

#[test]
fn metadata_is_dropped_unread() {
    let data = include_bytes!("../testdata/udta-item-past-parent.mp4");
    // Whatever the verdict on the rest of the file, the parser never reads
    // the `udta` box (under the fuzz target this allocated 4 GB).
    let _ = probe(Cursor::new(&data[..]));
    crate::fuzzing::mp4_probe(data);
    // And a file with metadata probes as it does without.
    let hello = include_bytes!("../../samples/hello.mp4");
    let info = probe(Cursor::new(&hello[..])).unwrap();
    assert!(info.has_video);
}
