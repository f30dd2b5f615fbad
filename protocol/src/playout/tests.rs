use proptest::prelude::*;

use super::*;

const KF: u8 = FLAG_KEYFRAME;

fn seg(init: &[u8], media: &[u8]) -> SegmentPlaintext {
    SegmentPlaintext {
        init: init.to_vec(),
        media: media.to_vec(),
    }
}

fn t(ms: u64) -> UnixMillis {
    UnixMillis(1_000_000 + ms)
}

/// Drains the playout at `now`.
fn drain(p: &mut Playout, now: UnixMillis) -> Vec<Output> {
    std::iter::from_fn(|| p.poll(now)).collect()
}

fn media(seq: u64, at: u64, b: &[u8]) -> Output {
    Output::Media {
        seq,
        produced_at: t(at),
        bytes: b.to_vec(),
    }
}

#[test]
fn in_order_segments_play_with_the_init_once_and_end() {
    let mut p = Playout::new(PlayoutConfig::default());
    let mut out = Vec::new();
    // Each segment is polled for as it arrives (as a viewer does).
    assert!(p.push(0, KF, t(0), seg(b"I", b"a"), t(5)));
    out.extend(drain(&mut p, t(5)));
    assert!(p.push(1, KF, t(1), seg(b"I", b"b"), t(6)));
    assert!(p.push(2, 0, t(2), seg(b"", b"c"), t(7)));
    assert!(p.push(3, FLAG_END, t(3), seg(b"", b""), t(8)));
    out.extend(drain(&mut p, t(8)));
    assert_eq!(
        out,
        vec![
            Output::Init(b"I".to_vec()),
            media(0, 0, b"a"),
            media(1, 1, b"b"),
            media(2, 2, b"c"),
            Output::End
        ]
    );
    assert!(p.ended());
    assert!(
        !p.push(4, KF, t(4), seg(b"I", b"d"), t(9)),
        "nothing after the end"
    );
    assert_eq!(p.poll(t(9)), None);
}

#[test]
fn a_late_joiner_starts_at_the_newest_keyframe_segment() {
    let mut p = Playout::new(PlayoutConfig::default());
    // Joined mid-stream: a non-keyframe segment, then two keyframe ones.
    p.push(10, 0, t(0), seg(b"", b"x"), t(0));
    p.push(11, KF, t(1), seg(b"I", b"k1"), t(0));
    p.push(12, 0, t(2), seg(b"", b"y"), t(0));
    p.push(13, KF, t(3), seg(b"I", b"k2"), t(0));
    assert_eq!(
        drain(&mut p, t(0)),
        vec![Output::Init(b"I".to_vec()), media(13, 3, b"k2")]
    );
    assert!(
        !p.push(12, 0, t(2), seg(b"", b"y"), t(1)),
        "behind the start"
    );
}

#[test]
fn nothing_plays_before_a_keyframe_and_what_waits_is_bounded() {
    let cfg = PlayoutConfig {
        max_wait_ms: 100,
        max_held: 3,
    };
    let mut p = Playout::new(cfg);
    for s in 0..10 {
        p.push(s, 0, t(s), seg(b"", b"x"), t(s));
        assert_eq!(p.poll(t(s)), None);
        assert!(p.held() <= 3);
    }
    assert_eq!(p.next_seq(), None);
    p.push(10, KF, t(10), seg(b"I", b"k"), t(10));
    assert_eq!(
        drain(&mut p, t(10)),
        vec![Output::Init(b"I".to_vec()), media(10, 10, b"k")]
    );
}

#[test]
fn segments_out_of_order_are_put_back_in_order() {
    let mut p = Playout::new(PlayoutConfig::default());
    p.push(0, KF, t(0), seg(b"I", b"0"), t(0));
    assert_eq!(
        drain(&mut p, t(0)),
        vec![Output::Init(b"I".to_vec()), media(0, 0, b"0")]
    );
    p.push(2, KF, t(2), seg(b"I", b"2"), t(0));
    assert_eq!(drain(&mut p, t(0)), vec![], "2 waits for 1");
    assert!(!p.push(2, KF, t(2), seg(b"I", b"2"), t(1)), "a duplicate");
    p.push(1, 0, t(1), seg(b"", b"1"), t(1));
    assert_eq!(
        drain(&mut p, t(1)),
        vec![media(1, 1, b"1"), media(2, 2, b"2")]
    );
    assert!(!p.push(1, 0, t(1), seg(b"", b"1"), t(1)), "already played");
}

#[test]
fn a_missing_segment_is_skipped_after_the_wait() {
    let cfg = PlayoutConfig {
        max_wait_ms: 500,
        max_held: 8,
    };
    let mut p = Playout::new(cfg);
    p.push(0, KF, t(0), seg(b"I", b"0"), t(0));
    drain(&mut p, t(0));
    // 1 is lost; 2 is not a keyframe segment, 3 is.
    p.push(2, 0, t(2), seg(b"", b"2"), t(100));
    p.push(3, KF, t(3), seg(b"I", b"3"), t(200));
    assert_eq!(p.next_deadline(), Some(t(600)));
    assert_eq!(drain(&mut p, t(599)), vec![]);
    assert_eq!(
        drain(&mut p, t(600)),
        vec![Output::Skipped { from: 1, to: 3 }, media(3, 3, b"3")]
    );
    // 1 arriving now is too late.
    assert!(!p.push(1, 0, t(1), seg(b"", b"1"), t(601)));
}

#[test]
fn a_viewer_that_falls_far_behind_skips_at_once() {
    let cfg = PlayoutConfig {
        max_wait_ms: 60_000,
        max_held: 4,
    };
    let mut p = Playout::new(cfg);
    p.push(0, KF, t(0), seg(b"I", b"0"), t(0));
    drain(&mut p, t(0));
    for s in 2..6 {
        p.push(s, KF, t(s), seg(b"I", b"s"), t(1));
    }
    let out = drain(&mut p, t(1));
    assert_eq!(out[0], Output::Skipped { from: 1, to: 2 });
    assert_eq!(out.len(), 5);
}

#[test]
fn new_init_data_is_written_again() {
    let mut p = Playout::new(PlayoutConfig::default());
    p.push(0, KF, t(0), seg(b"A", b"0"), t(0));
    p.push(1, KF, t(1), seg(b"A", b"1"), t(0));
    p.push(2, KF, t(2), seg(b"B", b"2"), t(0));
    p.push(0, KF, t(0), seg(b"A", b"0"), t(0));
    let out = drain(&mut p, t(0));
    // Started at the newest keyframe segment (2): only B.
    assert_eq!(out, vec![Output::Init(b"B".to_vec()), media(2, 2, b"2")]);
    // Played one by one, the init goes out once per change.
    let mut p2 = Playout::new(PlayoutConfig::default());
    let mut all = Vec::new();
    for (s, i) in [(0, b"A"), (1, b"A"), (2, b"B")] {
        p2.push(s, KF, t(s), seg(i, b"m"), t(0));
        all.extend(drain(&mut p2, t(0)));
    }
    let inits: Vec<_> = all
        .iter()
        .filter_map(|o| match o {
            Output::Init(i) => Some(i.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(inits, vec![b"A".to_vec(), b"B".to_vec()]);
}

proptest! {
    /// Whatever arrives in whatever order: media plays in increasing order,
    /// each at most once, at most `max_held` wait, and with no loss, no
    /// wait past the deadline and room for all, everything plays.
    #[test]
    fn playout_order_and_bounds(
        order in Just((0u64..24).collect::<Vec<_>>()).prop_shuffle(),
        drop in proptest::collection::vec(any::<bool>(), 24),
        max_held in 1usize..30,
        step in 0u64..300,
    ) {
        let cfg = PlayoutConfig { max_wait_ms: 1_000, max_held };
        let mut p = Playout::new(cfg);
        let mut played = Vec::new();
        let mut now = 0;
        for &s in &order {
            now += step;
            if !drop[s as usize] {
                p.push(s, KF, t(s), seg(b"I", &s.to_be_bytes()), t(now));
            }
            for o in drain(&mut p, t(now)) {
                if let Output::Media { seq, bytes, .. } = o {
                    prop_assert_eq!(bytes, seq.to_be_bytes().to_vec());
                    played.push(seq);
                }
            }
            prop_assert!(p.held() <= max_held);
        }
        prop_assert!(played.windows(2).all(|w| w[0] < w[1]), "{:?}", played);
        // The first segment pushed starts the playout and nothing is lost
        // or late: then all from it on play.
        if step == 0 && max_held >= 24 && !drop.iter().any(|d| *d) && order[0] == 0 {
            prop_assert_eq!(played, (0..24).collect::<Vec<_>>());
        }
    }
}

proptest! {
    /// The fuzz harness's checks hold on random input.
    #[test]
    fn the_fuzz_harness_holds(data in proptest::collection::vec(any::<u8>(), 0..900)) {
        crate::fuzzing::playout(&data);
    }
}
