//! Probing and checking the committed sample clips in `samples/`.

use std::path::PathBuf;

use mayfly_node::media::{DEFAULT_FLIKS, MP4_MEDIA_TYPE, MediaError, check, probe, probe_path};
use mayfly_protocol::header::ClipKind;

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../samples")
        .join(name)
}

/// Each sample, with its duration as ffprobe reported it when it was made.
const SAMPLES: &[(&str, u32)] = &[
    ("hello.mp4", 4_000),
    ("flik-wave.mp4", 2_534),
    ("flik-nod.mp4", 2_000),
    ("too-long-flik.mp4", 6_000),
    ("too-long.mp4", 181_000),
    ("three-minutes.mp4", 180_000),
];

#[test]
fn samples_probe_to_their_ffprobe_durations() {
    for &(name, ffprobe_ms) in SAMPLES {
        let info = probe_path(sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            info.duration_ms.abs_diff(ffprobe_ms) <= 50,
            "{name}: probed {} ms, ffprobe said {ffprobe_ms} ms",
            info.duration_ms
        );
        assert_eq!(info.media_type, MP4_MEDIA_TYPE, "{name}");
        assert!(info.has_video, "{name}");
    }
    let hello = probe_path(sample("hello.mp4")).unwrap();
    assert_eq!(hello.dimensions, Some((160, 120)));
}

#[test]
fn check_applies_the_clip_and_flik_limits() {
    let kinds = [ClipKind::Clip, ClipKind::Reaction];
    // (sample, passes as a clip, passes as a flik)
    let expect = [
        ("hello.mp4", true, true),
        ("flik-wave.mp4", true, true),
        ("flik-nod.mp4", true, true),
        ("too-long-flik.mp4", true, false),
        ("too-long.mp4", false, false),
        ("three-minutes.mp4", true, false),
    ];
    for (name, as_clip, as_flik) in expect {
        let info = probe_path(sample(name)).unwrap();
        for (kind, ok) in kinds.into_iter().zip([as_clip, as_flik]) {
            match check(&info, kind) {
                Ok(()) => assert!(ok, "{name} passed as {kind:?}"),
                Err(MediaError::TooLong { limit_ms, .. }) => {
                    assert!(!ok, "{name} refused as {kind:?}");
                    assert_eq!(limit_ms, kind.max_duration_ms());
                }
                Err(e) => panic!("{name} as {kind:?}: {e}"),
            }
        }
    }
    let long = probe_path(sample("too-long.mp4")).unwrap();
    assert_eq!(
        check(&long, ClipKind::Clip).unwrap_err().to_string(),
        "clip is 181.0 s; video messages are at most 180 s"
    );
    let flik = probe_path(sample("too-long-flik.mp4")).unwrap();
    assert_eq!(
        check(&flik, ClipKind::Reaction).unwrap_err().to_string(),
        "clip is 6.0 s; fliks are at most 5 s"
    );
}

#[test]
fn not_video_is_a_parse_error() {
    let e = probe_path(sample("not-video.mp4")).unwrap_err();
    assert!(matches!(e, MediaError::NotMp4 { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        r#"not a readable MP4 file: the file does not start with an ftyp box (it starts with "This is a plain ")"#
    );
}

#[test]
fn a_missing_file_is_an_open_error_naming_it() {
    let path = sample("no-such-clip.mp4");
    let e = probe_path(&path).unwrap_err();
    assert!(matches!(e, MediaError::Open { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("cannot open {}: ", path.display())),
        "{e}"
    );
}

#[test]
fn a_truncated_sample_is_refused_as_incomplete() {
    let hello = std::fs::read(sample("hello.mp4")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &hello[..10_000]).unwrap();
    let e = probe_path(&cut).unwrap_err();
    assert!(
        matches!(
            e,
            MediaError::Truncated {
                needed: 32_113,
                len: 10_000,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the MP4 file is incomplete: its 'mdat' box runs to byte 32113, but the file has only 10000 bytes"
    );
}

#[test]
fn default_fliks_are_the_flik_samples() {
    for (name, bytes) in DEFAULT_FLIKS {
        let on_disk = std::fs::read(sample(&format!("flik-{name}.mp4"))).unwrap();
        assert_eq!(*bytes, &on_disk[..], "{name}");
        let info = probe(std::io::Cursor::new(bytes)).unwrap();
        check(&info, ClipKind::Reaction).unwrap();
    }
}
