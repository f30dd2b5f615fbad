use std::collections::BTreeSet;

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::identity::Identity;

const T0: UnixMillis = UnixMillis(1_800_000_000_000);
const INIT: &[u8] = b"ftyp....moov....";

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

struct Setup {
    identity: Identity,
    sealer: SegmentSealer,
    gate: SegmentGate,
    key: EpochKey,
}

fn setup(seed: u8) -> Setup {
    let mut r = rng(seed);
    let identity = Identity::generate(&mut r);
    let device = identity.new_device(1, T0, &mut r);
    let id = BroadcastId([seed; 32]);
    let key = EpochKey::from_bytes([seed ^ 0x55; 32]);
    let sealer = SegmentSealer::new(device, id, key.clone());
    let mut gate = SegmentGate::new(id, identity.public(), 1);
    gate.add_key(0, key.clone());
    Setup {
        identity,
        sealer,
        gate,
        key,
    }
}

fn media(seq: u64) -> Vec<u8> {
    format!("moof+mdat of segment {seq}").into_bytes()
}

#[test]
fn segments_seal_verify_and_open_in_order() {
    let mut s = setup(1);
    for seq in 0..5u64 {
        let keyframe = seq % 2 == 0;
        let init = if keyframe { INIT } else { &[][..] };
        let seg = s
            .sealer
            .seal(
                keyframe,
                seq == 4,
                init,
                &media(seq),
                1000,
                T0.plus(seq * 1000),
            )
            .unwrap();
        let bytes = seg.to_bytes();
        assert_eq!(
            bytes.len(),
            Segment::HEAD_LEN + 4 + 4 + init.len() + media(seq).len() + 16 + 64
        );
        let got = s.gate.accept(&bytes, T0.plus(seq * 1000 + 200)).unwrap();
        assert_eq!(got, seg);
        let plain = s.gate.open(&got).unwrap().unwrap();
        assert_eq!(plain.init, init);
        assert_eq!(plain.media, media(seq));
    }
    assert_eq!(s.gate.highest(), Some(4));
    // After the end, the sealer refuses and the gate would too.
    assert!(s.sealer.seal(false, false, &[], b"x", 1000, T0).is_err());
}

#[test]
fn the_sealer_refuses_what_breaks_a_limit() {
    let mut s = setup(2);
    let e = |r: Result<Segment, Error>| matches!(r, Err(Error::InvalidParams(_)));
    assert!(e(s.sealer.seal(true, false, &[], b"m", 1000, T0)));
    assert!(e(s.sealer.seal(false, false, INIT, b"m", 1000, T0)));
    assert!(e(s.sealer.seal(
        true,
        false,
        &vec![1; MAX_INIT_LEN + 1],
        b"m",
        1000,
        T0
    )));
    assert!(e(s.sealer.seal(
        false,
        false,
        &[],
        &vec![0; MAX_SEGMENT_PLAINTEXT_LEN - 3],
        1000,
        T0
    )));
    assert!(e(s.sealer.seal(
        false,
        false,
        &[],
        b"m",
        MAX_LIVE_SEGMENT_DURATION_MS + 1,
        T0
    )));
    // Nothing was used up.
    assert_eq!(s.sealer.next_seq(), 0);
    s.sealer
        .seal(
            false,
            false,
            &[],
            &vec![0; MAX_SEGMENT_PLAINTEXT_LEN - 4],
            1000,
            T0,
        )
        .unwrap();
}

#[test]
fn forged_corrupted_and_replayed_segments_are_refused() {
    let mut s = setup(3);
    let seg = s
        .sealer
        .seal(true, false, INIT, &media(0), 1000, T0)
        .unwrap();
    let bytes = seg.to_bytes();
    let now = T0.plus(500);

    // Any flipped bit: the signature (or the certificate's) fails, or the
    // layout does. Checked at every byte of the head and some of the rest.
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        let r = s.gate.accept(&b, now);
        assert!(matches!(r, Err(Refusal::Invalid(_))), "byte {i}: {r:?}");
        assert!(r.unwrap_err().is_offence());
    }
    // Trailing bytes, truncation.
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(
        s.gate.accept(&long, now),
        Err(Refusal::Invalid(DecodeError::TrailingBytes(1)))
    ));
    assert!(matches!(
        s.gate.accept(&bytes[..bytes.len() - 1], now),
        Err(Refusal::Invalid(_))
    ));

    // Validly signed by someone else: another identity, a superseded device.
    let mut r = rng(30);
    let mallory = Identity::generate(&mut r).new_device(1, T0, &mut r);
    let mut forger = SegmentSealer::new(mallory, seg.broadcast_id(), s.key.clone());
    let forged = forger.seal(true, false, INIT, b"fake", 1000, T0).unwrap();
    assert_eq!(
        s.gate.accept(&forged.to_bytes(), now),
        Err(Refusal::WrongSigner)
    );
    // The gate adopts serial 2 from an accepted segment, then refuses
    // serial 1 (the same identity's superseded device).
    let mut newer = SegmentSealer::new(
        s.identity.new_device(2, T0, &mut r),
        seg.broadcast_id(),
        s.key.clone(),
    );
    let mut old_device = SegmentSealer::new(
        s.identity.new_device(1, T0, &mut r),
        seg.broadcast_id(),
        s.key.clone(),
    );
    for _ in 0..6 {
        newer.seal(false, false, &[], b"skip", 1000, T0).unwrap();
        old_device
            .seal(false, false, &[], b"skip", 1000, T0)
            .unwrap();
    }
    let from_new = newer.seal(false, false, &[], b"new", 1000, T0).unwrap();
    s.gate.accept(&from_new.to_bytes(), now).unwrap();
    old_device
        .seal(false, false, &[], b"skip", 1000, T0)
        .unwrap();
    let from_old = old_device
        .seal(false, false, &[], b"old", 1000, T0)
        .unwrap();
    assert_eq!(from_old.seq(), 7);
    assert_eq!(
        s.gate.accept(&from_old.to_bytes(), now),
        Err(Refusal::WrongSigner)
    );

    // The first segment came from serial 1 too: refused from now on.
    assert_eq!(s.gate.accept(&bytes, now), Err(Refusal::WrongSigner));
    // Replays: the same segment twice is a duplicate (not an offence).
    let dup = s.gate.accept(&from_new.to_bytes(), now).unwrap_err();
    assert_eq!(dup, Refusal::Duplicate);
    assert!(!dup.is_offence());

    // Another broadcast.
    let mut other = SegmentSealer::new(
        s.identity.new_device(2, T0, &mut r),
        BroadcastId([9; 32]),
        s.key.clone(),
    );
    let o = other.seal(true, false, INIT, b"x", 1000, T0).unwrap();
    assert_eq!(
        s.gate.accept(&o.to_bytes(), now),
        Err(Refusal::OtherBroadcast)
    );
}

#[test]
fn time_window_and_end_are_enforced() {
    let mut s = setup(4);
    let future = s
        .sealer
        .seal(
            true,
            false,
            INIT,
            b"m",
            1000,
            T0.plus(MAX_CLOCK_SKEW_MS + 1),
        )
        .unwrap();
    assert_eq!(
        s.gate.accept(&future.to_bytes(), T0),
        Err(Refusal::FromTheFuture)
    );
    let old = s.sealer.seal(true, false, INIT, b"m", 1000, T0).unwrap();
    assert_eq!(
        s.gate.accept(&old.to_bytes(), T0.plus(MAX_LIVE_TTL_MS + 1)),
        Err(Refusal::Expired)
    );
    // Replay viewers accept anything within a day.
    s.gate
        .accept(&old.to_bytes(), T0.plus(MAX_LIVE_TTL_MS))
        .unwrap();
    let end = s.sealer.seal(false, true, &[], b"end", 1000, T0).unwrap();
    s.gate.accept(&end.to_bytes(), T0).unwrap();
    // A segment numbered after the end (which only a forger could sign if
    // the broadcaster's sealer is honest; here a second sealer of the same
    // device stands in).
    let mut r = rng(40);
    let mut twin = SegmentSealer::new(
        s.identity.new_device(1, T0, &mut r),
        old.broadcast_id(),
        s.key.clone(),
    );
    for _ in 0..3 {
        twin.seal(false, false, &[], b"skip", 1000, T0).unwrap();
    }
    let after = twin.seal(false, false, &[], b"after", 1000, T0).unwrap();
    assert_eq!(s.gate.accept(&after.to_bytes(), T0), Err(Refusal::AfterEnd));
}

#[test]
fn a_removed_viewer_cannot_open_after_the_rotation() {
    let mut s = setup(5);
    let before = s
        .sealer
        .seal(true, false, INIT, b"before", 1000, T0)
        .unwrap();
    let new_key = EpochKey::from_bytes([0xee; 32]);
    assert_eq!(s.sealer.rotate(new_key.clone()).unwrap(), 1);
    let after = s
        .sealer
        .seal(true, false, INIT, b"after", 1000, T0)
        .unwrap();
    assert_eq!(after.epoch(), 1);
    // The removed viewer keeps epoch 0's key only.
    let removed = &mut s.gate;
    removed.accept(&before.to_bytes(), T0).unwrap();
    removed.accept(&after.to_bytes(), T0).unwrap();
    assert_eq!(removed.open(&before).unwrap().unwrap().media, b"before");
    assert!(removed.open(&after).is_none());
    // Even trying epoch 0's key on it fails, as one coarse error.
    assert_eq!(after.open(&s.key), Err(Error::Decrypt));
    assert_eq!(after.open(&new_key).unwrap().media, b"after");
    // Erasing the keys ends reading what they sealed.
    removed.erase_keys();
    assert!(removed.open(&before).is_none());
}

#[test]
fn the_gate_holds_at_most_max_epoch_keys() {
    let mut s = setup(6);
    for e in 1..=(MAX_EPOCH_KEYS as u32 + 3) {
        s.gate.add_key(e, EpochKey::from_bytes([e as u8; 32]));
    }
    assert_eq!(s.gate.keys.len(), MAX_EPOCH_KEYS);
    assert!(!s.gate.keys.contains_key(&0));
}

#[test]
fn hex_snapshot() {
    let mut s = setup(7);
    let seg = s
        .sealer
        .seal(true, false, b"init", b"media", 1000, T0)
        .unwrap();
    assert_eq!(crate::keys::hex(&seg.to_bytes()), SNAPSHOT.concat());
}

/// `hex_snapshot`'s segment: head (type, version, broadcast id, the
/// certificate, epoch, seq, flags, produced_at, duration), ciphertext,
/// signature.
const SNAPSHOT: [&str; 4] = [
    "0a010707070707070707070707070707070707070707070707070707070707070707",
    "0101e79a4e621583674785585866dc854fb85e2b5d208693483a4cdecd901f43d85d22944b66fbfd6a5db6403efc3b8059fd1beb2d1d19e9aee02e5ace33aa76b27c0000000000000001000001a3185c5000fe27aac0337514db20b3591515b76713bf1289b72e7c1176554f58f718ceb3f25a262e921a3b97746a7e6d9ec2bbfc6bd0cc470e7cb54ce0ece8cbae39ef3e02",
    "00000000000000000000000001000001a3185c5000000003e8",
    "0000001d080324943bee619ae4c9618f024057af374dfb5a88ef3d4c2596c70f3badd39e51b4a360954e0419dad1285329ea52afdc6883338e447e78ec20bbe23278d5ebb0db723e239b36f7e08457371cbc910d6ef5dff2579042afd8c9ee520a",
];

proptest! {
    #[test]
    fn round_trip(seed in 0u8..=255, keyframe: bool, end: bool, media in proptest::collection::vec(any::<u8>(), 0..2000), dur in 0u32..=MAX_LIVE_SEGMENT_DURATION_MS) {
        let mut s = setup(seed);
        let init = if keyframe { INIT } else { &[][..] };
        let seg = s.sealer.seal(keyframe, end, init, &media, dur, T0).unwrap();
        let bytes = seg.to_bytes();
        let back = Segment::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &seg);
        prop_assert_eq!(back.to_bytes(), bytes);
        let plain = back.open(&s.key).unwrap();
        prop_assert_eq!(&plain.media, &media);
    }

    /// The fuzz harnesses' own checks, on random operations.
    #[test]
    fn the_fuzz_harnesses_hold(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        crate::fuzzing::live_gate(&data);
        crate::fuzzing::live_segment(&data);
        crate::fuzzing::replay_head(&data);
    }

    /// A relay's reading of a segment's head (RELAY.md §5.7) agrees with
    /// the segment, on a real one, on every prefix that holds the head, and
    /// with one byte of the head changed.
    #[test]
    fn a_replay_head_is_the_segments_own(seed in 1u8..40, media in proptest::collection::vec(any::<u8>(), 0..300), at in 0usize..209, bit in 0u8..8) {
        let mut s = setup(seed);
        let bytes = s.sealer.seal(true, false, INIT, &media, 1000, T0).unwrap().to_bytes();
        crate::fuzzing::replay_head(&bytes);
        let head = crate::mailbox::replay::SegmentHead::read(&bytes).unwrap();
        prop_assert_eq!(head.segment_len as usize, bytes.len());
        prop_assert_eq!(head.certificate.identity_key(), s.identity.public());
        prop_assert!(crate::mailbox::replay::SegmentHead::read(&bytes[..208]).is_err());
        prop_assert_eq!(crate::mailbox::replay::SegmentHead::read(&bytes[..209]), Ok(head));
        let mut flipped = bytes.clone();
        flipped[at] ^= 1 << bit;
        crate::fuzzing::replay_head(&flipped);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut s = setup(8);
        let _ = s.gate.accept(&bytes, T0);
    }

    /// The replay window against a model: a sequence number is accepted
    /// once, unless it is a window or more below the highest accepted.
    #[test]
    fn the_replay_window_matches_a_model(seqs in proptest::collection::vec(0u64..1200, 1..300)) {
        let mut s = setup(9);
        let mut seen = BTreeSet::new();
        let mut highest: Option<u64> = None;
        for seq in seqs {
            let want = if seen.contains(&seq) && highest.is_some_and(|h| h - seq < LIVE_REPLAY_WINDOW) {
                Err(Refusal::Duplicate)
            } else if highest.is_some_and(|h| seq < h && h - seq >= LIVE_REPLAY_WINDOW) {
                Err(Refusal::Stale)
            } else {
                Ok(())
            };
            let got = s.gate.check_seq(seq);
            prop_assert_eq!(got.clone(), want);
            if got.is_ok() {
                s.gate.mark(seq, false);
                seen.insert(seq);
                highest = Some(highest.map_or(seq, |h| h.max(seq)));
            }
        }
    }
}
