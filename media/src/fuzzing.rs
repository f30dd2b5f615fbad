//! The fuzz harness of the MP4 probe; `fuzz/fuzz_targets/mp4_probe.rs` is
//! one line that calls it, and a property test runs it under `cargo test`.

use std::io::{self, Cursor, Read, Seek, SeekFrom};

use mayfly_protocol::header::ClipKind;

use crate::{MediaError, check, probe};

/// Probes `data` as an MP4 file. Never panics; gives the same verdict when
/// the bytes come a few at a time (short reads) as when they come whole;
/// and what it accepts, [`check`] judges without panicking for every kind
/// of clip.
pub fn mp4_probe(data: &[u8]) {
    let whole = probe(Cursor::new(data));
    // The first byte sets how many bytes each read returns (1 to 8).
    let step = usize::from(data.first().copied().unwrap_or(0) % 8) + 1;
    let trickled = probe(Trickle {
        inner: Cursor::new(data),
        step,
    });
    match (&whole, &trickled) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "short reads changed the result"),
        (Err(a), Err(b)) => assert_eq!(
            a.to_string(),
            b.to_string(),
            "short reads changed the error"
        ),
        _ => panic!("short reads changed the verdict: {whole:?} against {trickled:?}"),
    }
    if let Ok(info) = whole {
        assert!(data.len() as u64 >= 8, "an MP4 file has at least one box");
        for kind in [ClipKind::Clip, ClipKind::Reaction, ClipKind::LiveSegment] {
            let _ = check(&info, kind);
        }
    } else if let Err(MediaError::Open { .. }) = whole {
        panic!("probing bytes in memory never opens a file");
    }
}

/// A reader that returns at most `step` bytes per read.
struct Trickle<'a> {
    inner: Cursor<&'a [u8]>,
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step);
        self.inner.read(&mut buf[..n])
    }
}

impl Seek for Trickle<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}
