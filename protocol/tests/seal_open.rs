//! Properties of sealing and opening: round trips, and every rejection the
//! spec lists (bit flips, truncation, reordering, duplication, splicing,
//! missing or extra final chunk, trailing data, wrong recipient, a second key
//! for one ciphertext, expiry).

mod common;

use common::*;
use mayfly_protocol::codec::Codec;
use mayfly_protocol::*;
use proptest::prelude::*;

/// Lengths that cover one chunk, the floor, chunk boundaries and several chunks.
fn content_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        1usize..5_000,
        (CHUNK_SIZE - 2)..(CHUNK_SIZE + 2),
        1usize..(3 * CHUNK_SIZE + 1000),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn seal_then_open_round_trips(len in content_len(), seed in any::<u64>()) {
        let mut rng = rng(seed);
        let data = content(len, seed as u8);
        let (clip, chunks) = seal(&data, &mut rng);
        prop_assert_eq!(chunks.len() as u32, clip.manifest().chunk_count());
        let total: usize = chunks.iter().map(Vec::len).sum();
        prop_assert_eq!(total as u64, clip.manifest().ciphertext_len());
        prop_assert!(clip.manifest().padded_len() >= len as u64);
        for (i, c) in chunks.iter().enumerate() {
            prop_assert!(clip.manifest().verify_chunk(i as u32, c));
        }
        prop_assert_eq!(open_chunks(&clip, &chunks, NOW).unwrap(), data);
    }

    #[test]
    fn whole_path_through_an_envelope(len in content_len(), seed in any::<u64>()) {
        let mut rng = rng(seed);
        let alice = Party::new(&mut rng);
        let mut bob = Party::new(&mut rng);
        let data = content(len, 7);
        let (clip, chunks) = seal(&data, &mut rng);
        let env = Envelope::seal(&clip, &alice.device, &bob.recipient(), &mut rng).unwrap();
        let env = Envelope::decode(&env.to_bytes()).unwrap();
        let secret = bob.spk_secret();
        let contents = env.open(&bob.identity.public(), &secret).unwrap();
        prop_assert_eq!(contents.sender.identity_key(), alice.identity.public());
        let manifest = Manifest::decode(&clip.manifest().to_bytes()).unwrap();
        let opener = contents.open_manifest(manifest, NOW).unwrap();
        let mut out = Vec::new();
        open_reader(opener, &mut chunks.concat().as_slice(), &mut out).unwrap();
        prop_assert_eq!(out, data);
    }

    #[test]
    fn any_bit_flip_in_the_ciphertext_is_rejected(
        len in 1usize..(2 * CHUNK_SIZE + 10), pos in any::<prop::sample::Index>(), bit in 0u8..8, seed in any::<u64>()
    ) {
        let mut rng = rng(seed);
        let data = content(len, 1);
        let (clip, chunks) = seal(&data, &mut rng);
        let mut stream = chunks.concat();
        let at = pos.index(stream.len());
        stream[at] ^= 1 << bit;
        let mut out = Vec::new();
        let opener = ClipOpener::new(clip.manifest().clone(), clip.content_key(), NOW).unwrap();
        prop_assert_eq!(open_reader(opener, &mut stream.as_slice(), &mut out), Err(Error::Decrypt));
        // Only whole chunks before the damaged one were released.
        let damaged_chunk = at / CIPHERTEXT_CHUNK_SIZE;
        prop_assert_eq!(out.len(), (damaged_chunk * CHUNK_SIZE).min(len));
        prop_assert_eq!(&out[..], &data[..out.len()]);
    }

    #[test]
    fn any_truncation_or_trailing_data_is_rejected(
        len in 1usize..(2 * CHUNK_SIZE + 10), cut in any::<prop::sample::Index>(), extra in 1usize..40, seed in any::<u64>()
    ) {
        let mut rng = rng(seed);
        let (clip, chunks) = seal(&content(len, 2), &mut rng);
        let stream = chunks.concat();
        let keep = cut.index(stream.len());
        let opener = ClipOpener::new(clip.manifest().clone(), clip.content_key(), NOW).unwrap();
        prop_assert_eq!(open_reader(opener, &mut &stream[..keep], &mut std::io::sink()), Err(Error::Decrypt));
        let mut longer = stream.clone();
        longer.extend(std::iter::repeat_n(0u8, extra));
        let opener = ClipOpener::new(clip.manifest().clone(), clip.content_key(), NOW).unwrap();
        prop_assert_eq!(open_reader(opener, &mut longer.as_slice(), &mut std::io::sink()), Err(Error::Decrypt));
    }

    #[test]
    fn any_bit_flip_in_envelope_or_manifest_is_rejected(
        pos in any::<prop::sample::Index>(), bit in 0u8..8, in_envelope in any::<bool>(), seed in any::<u64>()
    ) {
        let mut rng = rng(seed);
        let alice = Party::new(&mut rng);
        let mut bob = Party::new(&mut rng);
        let (clip, _) = seal(&content(3000, 3), &mut rng);
        let mut env = Envelope::seal(&clip, &alice.device, &bob.recipient(), &mut rng).unwrap().to_bytes();
        let mut manifest = clip.manifest().to_bytes();
        let target = if in_envelope { &mut env } else { &mut manifest };
        let at = pos.index(target.len());
        target[at] ^= 1 << bit;
        let secret = bob.spk_secret();
        let result = (|| {
            let contents = Envelope::decode(&env)?.open(&bob.identity.public(), &secret)?;
            contents.open_manifest(Manifest::decode(&manifest)?, NOW)
        })();
        prop_assert!(result.is_err());
    }
}

#[test]
fn reordered_duplicated_spliced_missing_and_extra_chunks_are_rejected() {
    let mut rng = rng(1);
    let data = content(3 * CHUNK_SIZE + 5, 9);
    let (clip, chunks) = seal(&data, &mut rng);
    let (other, other_chunks) = seal(&data, &mut rng);
    assert_eq!(chunks.len(), 4);
    assert_eq!(open_chunks(&clip, &chunks, NOW).unwrap(), data);
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "swapped",
            vec![
                chunks[1].clone(),
                chunks[0].clone(),
                chunks[2].clone(),
                chunks[3].clone(),
            ],
        ),
        (
            "duplicated",
            vec![
                chunks[0].clone(),
                chunks[0].clone(),
                chunks[2].clone(),
                chunks[3].clone(),
            ],
        ),
        (
            "spliced",
            vec![
                chunks[0].clone(),
                other_chunks[1].clone(),
                chunks[2].clone(),
                chunks[3].clone(),
            ],
        ),
        ("missing final", chunks[..3].to_vec()),
        (
            "missing middle",
            vec![chunks[0].clone(), chunks[2].clone(), chunks[3].clone()],
        ),
        (
            "extra final",
            [chunks.clone(), vec![chunks[3].clone()]].concat(),
        ),
        ("final first", vec![chunks[3].clone()]),
        ("empty", vec![]),
    ];
    for (name, c) in cases {
        assert_eq!(open_chunks(&clip, &c, NOW), Err(Error::Decrypt), "{name}");
    }
    // The other clip's chunks with this clip's manifest, and the reverse.
    assert_eq!(open_chunks(&clip, &other_chunks, NOW), Err(Error::Decrypt));
    assert_eq!(open_chunks(&other, &chunks, NOW), Err(Error::Decrypt));
}

#[test]
fn a_failed_chunk_poisons_the_opener() {
    let mut rng = rng(2);
    let (clip, chunks) = seal(&content(2 * CHUNK_SIZE, 1), &mut rng);
    let mut opener = ClipOpener::new(clip.manifest().clone(), clip.content_key(), NOW).unwrap();
    let mut bad = chunks[0].clone();
    bad[0] ^= 1;
    assert_eq!(opener.open_next(&bad).unwrap_err(), Error::Decrypt);
    // Even the genuine chunk is refused afterwards.
    assert_eq!(opener.open_next(&chunks[0]).unwrap_err(), Error::Decrypt);
    assert_eq!(opener.finish().unwrap_err(), Error::Decrypt);
}

#[test]
fn a_second_key_for_the_same_ciphertext_is_rejected_before_decryption() {
    let mut rng = rng(3);
    let (clip, chunks) = seal(&content(1000, 1), &mut rng);
    let other_key = ContentKey::from_bytes([9; 32]);
    assert_eq!(
        ClipOpener::new(clip.manifest().clone(), &other_key, NOW).unwrap_err(),
        Error::Decrypt
    );
    assert_eq!(open_chunks(&clip, &chunks, NOW).unwrap(), content(1000, 1));
}

#[test]
fn wrong_recipient_cannot_open_the_envelope() {
    let mut rng = rng(4);
    let alice = Party::new(&mut rng);
    let mut bob = Party::new(&mut rng);
    let mut carol = Party::new(&mut rng);
    let (clip, _) = seal(&content(1000, 1), &mut rng);
    let env = Envelope::seal(&clip, &alice.device, &bob.recipient(), &mut rng).unwrap();
    let carol_secret = carol.spk_secret();
    let bob_secret = bob.spk_secret();
    assert_eq!(
        env.open(&carol.identity.public(), &carol_secret)
            .unwrap_err(),
        Error::Decrypt
    );
    assert_eq!(
        env.open(&carol.identity.public(), &bob_secret).unwrap_err(),
        Error::Decrypt
    );
    assert!(env.open(&bob.identity.public(), &bob_secret).is_ok());
}

#[test]
fn one_time_prekey_opens_once_then_its_secret_is_gone() {
    let mut rng = rng(5);
    let alice = Party::new(&mut rng);
    let mut bob = Party::new(&mut rng);
    let otk = bob
        .prekeys
        .issue_one_time(&bob.device, 3, NOW, &mut rng)
        .remove(0);
    let bundle = PrekeyBundle {
        certificate: bob.device.certificate().clone(),
        signed_prekey: bob.prekeys.signed_prekey().clone(),
        one_time_prekey: Some(otk.clone()),
    };
    let bundle = PrekeyBundle::decode(&bundle.to_bytes()).unwrap();
    let to = bundle.verify(&bob.identity.public(), NOW).unwrap();
    assert_eq!(to.prekey, otk.public());
    let (clip, _) = seal(&content(10, 1), &mut rng);
    let env = Envelope::seal(&clip, &alice.device, &to, &mut rng).unwrap();
    let secret = bob.prekeys.take_secret(&env.prekey()).unwrap();
    assert!(env.open(&bob.identity.public(), &secret).is_ok());
    assert!(
        bob.prekeys.take_secret(&env.prekey()).is_none(),
        "replay finds no key"
    );
    assert_eq!(bob.prekeys.one_time_count(), 2);
}

#[test]
fn expiry_is_enforced_at_opening() {
    let mut rng = rng(6);
    let (clip, chunks) = seal(&content(100, 1), &mut rng);
    let expires = clip.header().expires_at;
    assert!(open_chunks(&clip, &chunks, UnixMillis(expires.0 - 1)).is_ok());
    assert_eq!(open_chunks(&clip, &chunks, expires), Err(Error::Expired));
    assert_eq!(
        open_chunks(&clip, &chunks, expires.plus(1)),
        Err(Error::Expired)
    );
    // A clip from further in the future than the allowed skew.
    let early = UnixMillis(NOW.0 - MAX_CLOCK_SKEW_MS - 1);
    assert_eq!(
        open_chunks(&clip, &chunks, early),
        Err(Error::FromTheFuture)
    );
}

#[test]
fn sealing_enforces_the_limits() {
    let mut rng = rng(7);
    let ok = header(100);
    let parent = Some(MessageId([1; 32]));
    let cases: Vec<(&str, ClipHeader)> = vec![
        (
            "clip over 180 s",
            ClipHeader {
                duration_ms: MAX_CLIP_DURATION_MS + 1,
                ..ok.clone()
            },
        ),
        (
            "reaction over 5 s",
            ClipHeader {
                kind: ClipKind::Reaction,
                parent,
                duration_ms: 5_001,
                ..ok.clone()
            },
        ),
        (
            "reaction without parent",
            ClipHeader {
                kind: ClipKind::Reaction,
                duration_ms: 1_000,
                ..ok.clone()
            },
        ),
        (
            "clip with parent",
            ClipHeader {
                parent,
                ..ok.clone()
            },
        ),
        (
            "zero parent",
            ClipHeader {
                kind: ClipKind::Reaction,
                parent: Some(MessageId([0; 32])),
                duration_ms: 1,
                ..ok.clone()
            },
        ),
        (
            "ttl over 14 days",
            ClipHeader {
                expires_at: NOW.plus(MAX_CLIP_TTL_MS + 1),
                ..ok.clone()
            },
        ),
        (
            "live over 24 h",
            ClipHeader {
                kind: ClipKind::LiveSegment,
                duration_ms: 1,
                expires_at: NOW.plus(MAX_LIVE_TTL_MS + 1),
                ..ok.clone()
            },
        ),
        (
            "expires before created",
            ClipHeader {
                expires_at: NOW,
                ..ok.clone()
            },
        ),
        (
            "empty",
            ClipHeader {
                content_len: 0,
                ..ok.clone()
            },
        ),
        (
            "over 1 GiB",
            ClipHeader {
                content_len: MAX_CLIP_LEN + 1,
                ..ok.clone()
            },
        ),
        (
            "media type",
            ClipHeader {
                media_type: "Video/MP4".into(),
                ..ok.clone()
            },
        ),
        (
            "media type without slash",
            ClipHeader {
                media_type: "video".into(),
                ..ok.clone()
            },
        ),
    ];
    for (name, h) in cases {
        assert!(
            matches!(ClipSealer::new(h, &mut rng), Err(Error::InvalidParams(_))),
            "{name} must be refused"
        );
    }
    let live = ClipHeader {
        kind: ClipKind::LiveSegment,
        duration_ms: 2_000,
        expires_at: NOW.plus(MAX_LIVE_TTL_MS),
        parent,
        ..ok.clone()
    };
    assert!(ClipSealer::new(live, &mut rng).is_ok());
    let flik = ClipHeader {
        kind: ClipKind::Reaction,
        duration_ms: 5_000,
        parent,
        ..ok
    };
    assert!(ClipSealer::new(flik, &mut rng).is_ok());
}

#[test]
fn sealer_refuses_misuse() {
    let mut rng = rng(8);
    let mut sealer = ClipSealer::new(header(10), &mut rng).unwrap();
    let mut out = Vec::new();
    assert!(matches!(
        sealer.seal_next(&[0; 9], &mut out),
        Err(Error::Stream(_))
    ));
    sealer.seal_next(&[0; 10], &mut out).unwrap();
    assert!(matches!(
        sealer.seal_next(&[], &mut out),
        Err(Error::Stream(_))
    ));
    assert!(sealer.finish().is_ok());
    let sealer = ClipSealer::new(header(10), &mut rng).unwrap();
    assert!(matches!(sealer.finish(), Err(Error::Stream(_))));
    // A reader that yields more or fewer bytes than declared.
    let r = seal_reader(header(10), &mut &[0u8; 11][..], |_, _| Ok(()), &mut rng);
    assert!(matches!(r, Err(Error::Stream(_))));
    let r = seal_reader(header(10), &mut &[0u8; 9][..], |_, _| Ok(()), &mut rng);
    assert!(matches!(r, Err(Error::Io(_))));
}

#[test]
fn sizes_leak_only_the_padded_bucket() {
    let mut rng = rng(9);
    // Two clips of different lengths in the same Padmé bucket have identical public sizes.
    let (a, _) = seal(&content(300_000, 1), &mut rng);
    let (b, _) = seal(&content(301_000, 1), &mut rng);
    assert_eq!(a.manifest().padded_len(), b.manifest().padded_len());
    assert_eq!(a.manifest().to_bytes().len(), b.manifest().to_bytes().len());
}

#[test]
fn sealing_is_reproducible_from_the_seed() {
    let (a, ca) = seal(&content(5000, 1), &mut rng(10));
    let (b, cb) = seal(&content(5000, 1), &mut rng(10));
    assert_eq!(a.manifest(), b.manifest());
    assert_eq!(ca, cb);
}

#[test]
fn verified_chunks_must_be_the_next_ones_of_this_manifest() {
    let mut rng = rng(11);
    let data = content(2 * CHUNK_SIZE + 3, 4);
    let (clip, chunks) = seal(&data, &mut rng);
    let (other, other_chunks) = seal(&data, &mut rng);
    let m = clip.manifest();
    assert!(
        m.check_chunk(0, &other_chunks[0]).is_none(),
        "another clip's chunk"
    );
    assert!(m.check_chunk(3, &chunks[0]).is_none(), "index out of range");
    let mut short = chunks[0].clone();
    short.pop();
    assert!(m.check_chunk(0, &short).is_none(), "wrong length");

    // In order, verified chunks open to the content.
    let mut opener = ClipOpener::new(m.clone(), clip.content_key(), NOW).unwrap();
    let mut out = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        out.extend_from_slice(
            opener
                .open_verified(m.check_chunk(i as u32, c).unwrap())
                .unwrap(),
        );
    }
    opener.finish().unwrap();
    assert_eq!(out, data);

    // Out of order, or verified against another manifest: refused and poisoned.
    let mut opener = ClipOpener::new(m.clone(), clip.content_key(), NOW).unwrap();
    assert_eq!(
        opener
            .open_verified(m.check_chunk(1, &chunks[1]).unwrap())
            .unwrap_err(),
        Error::Decrypt
    );
    assert_eq!(
        opener
            .open_verified(m.check_chunk(0, &chunks[0]).unwrap())
            .unwrap_err(),
        Error::Decrypt
    );
    let mut opener = ClipOpener::new(m.clone(), clip.content_key(), NOW).unwrap();
    let foreign = other.manifest().check_chunk(0, &other_chunks[0]).unwrap();
    assert_eq!(opener.open_verified(foreign).unwrap_err(), Error::Decrypt);
}
