//! Every wire type: proptest round trips, strictness (truncation, trailing
//! bytes, bit flips in signed structures), and hex snapshots.

mod common;

use common::*;
use mayfly_protocol::codec::Codec;
use mayfly_protocol::*;
use proptest::prelude::*;

/// Round trip plus strictness: every prefix fails, any trailing byte fails.
fn strict<T: Codec + PartialEq + std::fmt::Debug>(v: &T) -> Result<(), TestCaseError> {
    let bytes = v.to_bytes();
    let back = T::decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&back, v);
    prop_assert_eq!(back.to_bytes(), bytes.clone());
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        prop_assert!(
            T::decode(&bytes[..cut]).is_err(),
            "prefix of {} decoded",
            cut
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    prop_assert_eq!(
        T::decode(&longer).unwrap_err(),
        DecodeError::TrailingBytes(1)
    );
    Ok(())
}

/// For structures whose signature is checked when decoding: any bit flip is rejected.
fn flip_rejected<T: Codec>(bytes: &[u8], at: usize, bit: u8) -> Result<(), TestCaseError> {
    let mut b = bytes.to_vec();
    b[at % bytes.len()] ^= 1 << bit;
    prop_assert!(T::decode(&b).is_err());
    Ok(())
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ./:é]{1,40}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn device_certificate(seed in any::<u64>(), serial in any::<u64>(), t in any::<u64>(), at in any::<usize>(), bit in 0u8..8) {
        let mut rng = rng(seed);
        let id = Identity::generate(&mut rng);
        let dev = id.new_device(serial, UnixMillis(t), &mut rng);
        strict(dev.certificate())?;
        flip_rejected::<DeviceCertificate>(&dev.certificate().to_bytes(), at, bit)?;
    }

    #[test]
    fn prekey_and_bundle(seed in any::<u64>(), with_otk in any::<bool>()) {
        let mut rng = rng(seed);
        let p = Party::new(&mut rng);
        let mut store = PrekeyStore::new(&p.device, NOW, &mut rng);
        let otk = store.issue_one_time(&p.device, 1, NOW, &mut rng).pop();
        strict(store.signed_prekey())?;
        strict(otk.as_ref().unwrap())?;
        let bundle = PrekeyBundle {
            certificate: p.device.certificate().clone(),
            signed_prekey: store.signed_prekey().clone(),
            one_time_prekey: if with_otk { otk } else { None },
        };
        strict(&bundle)?;
        prop_assert!(bundle.verify(&p.identity.public(), NOW).is_ok());
    }

    #[test]
    fn contact_card(seed in any::<u64>(), name in text(), relays in prop::collection::vec(text(), 0..=MAX_RELAYS), at in any::<usize>(), bit in 0u8..8) {
        let mut rng = rng(seed);
        let p = Party::new(&mut rng);
        let card = ContactCard::new(&p.identity, &p.device, p.prekeys.signed_prekey().clone(), relays, name).unwrap();
        strict(&card)?;
        flip_rejected::<ContactCard>(&card.to_bytes(), at, bit)?;
        let text = card.to_text();
        prop_assert!(text.starts_with("mfcard1"));
        prop_assert_eq!(ContactCard::from_text(&format!("  {text}\n")).unwrap(), card.clone());
        // Any single-character change is caught.
        let mut t = text.clone().into_bytes();
        let i = 7 + at % (t.len() - 7);
        t[i] = if t[i] == b'a' { b'b' } else { b'a' };
        prop_assert!(ContactCard::from_text(std::str::from_utf8(&t).unwrap()).is_err());
    }

    #[test]
    fn control_messages_and_invites(seed in any::<u64>(), token in any::<[u8; 16]>(), name in text(), at in any::<usize>(), epoch in any::<u32>(), t in any::<u64>(), replay in any::<bool>(), peers in prop::collection::vec(text(), 0..=mayfly_protocol::limits::MAX_LIVE_PEERS)) {
        let mut rng = rng(seed);
        let p = Party::new(&mut rng);
        let card = ContactCard::new(&p.identity, &p.device, p.prekeys.signed_prekey().clone(), vec![], name).unwrap();
        let rec = RevocationRecord::sign(&SigningSecret::generate(&mut rng), NOW);
        strict(&Control::InviteReply { token, card: card.clone() })?;
        strict(&Control::Revoked(rec))?;
        strict(&Control::CardUpdate(card.clone()))?;
        strict(&Control::Follow)?;
        strict(&Control::Unfollow)?;
        strict(&Control::LiveRevoked(live::BroadcastId(token.repeat(2).try_into().unwrap())))?;
        let grant = LiveKeyGrant {
            broadcast_id: live::BroadcastId(token.repeat(2).try_into().unwrap()),
            epoch,
            key: live::EpochKey::from_bytes([7; 32]),
            started_at: UnixMillis(t),
            replay,
            peers,
        };
        prop_assert!(grant.check().is_ok());
        strict(&Control::LiveKey(grant))?;
        let invite = Invite { token, card };
        strict(&invite)?;
        let text = invite.to_text();
        prop_assert!(text.starts_with("mfinvite1"));
        prop_assert_eq!(Invite::from_text(&format!(" {text}\n")).unwrap(), invite.clone());
        let mut t = text.clone().into_bytes();
        let i = 9 + at % (t.len() - 9);
        t[i] = if t[i] == b'a' { b'b' } else { b'a' };
        prop_assert!(Invite::from_text(std::str::from_utf8(&t).unwrap()).is_err());
    }

    #[test]
    fn manifest_and_envelope(seed in any::<u64>(), len in 1usize..(CHUNK_SIZE * 2)) {
        let mut rng = rng(seed);
        let alice = Party::new(&mut rng);
        let bob = Party::new(&mut rng);
        let (clip, _) = seal(&content(len, 0), &mut rng);
        strict(clip.manifest())?;
        prop_assert_eq!(clip.manifest().to_bytes().len(), Manifest::FIXED_LEN + 32 * clip.manifest().chunk_count() as usize);
        let env = Envelope::seal(&clip, &alice.device, &bob.recipient(), &mut rng).unwrap();
        strict(&env)?;
        prop_assert_eq!(env.to_bytes().len(), Envelope::LEN);
    }

    #[test]
    fn revocation_record(seed in any::<u64>(), t in any::<u64>(), at in any::<usize>(), bit in 0u8..8) {
        let mut rng = rng(seed);
        let key = SigningSecret::generate(&mut rng);
        let rec = RevocationRecord::sign(&key, UnixMillis(t));
        strict(&rec)?;
        flip_rejected::<RevocationRecord>(&rec.to_bytes(), at, bit)?;
        prop_assert_eq!(rec.message_id(), MessageId::for_revocation_key(&key.public()));
    }

    #[test]
    fn header(kind in 1u8..=3, save in any::<bool>(), dur in 0u32..5_000, len in 1u64..MAX_CLIP_LEN, mt in "[a-z]{1,20}/[a-z0-9.+-]{1,20}") {
        let kind = [ClipKind::Clip, ClipKind::Reaction, ClipKind::LiveSegment][usize::from(kind - 1)];
        let h = ClipHeader {
            kind,
            allow_save: save,
            duration_ms: dur,
            created_at: NOW,
            expires_at: NOW.plus(kind.max_ttl_ms()),
            content_len: len,
            parent: (kind != ClipKind::Clip).then_some(MessageId([3; 32])),
            media_type: mt,
        };
        let bytes = h.encode();
        prop_assert_eq!(ClipHeader::decode(&bytes).unwrap(), h);
        let mut bad_pad = bytes;
        bad_pad[127] = 1;
        prop_assert!(ClipHeader::decode(&bad_pad).is_err());
    }

    #[test]
    fn decoders_never_panic_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = DeviceCertificate::decode(&bytes);
        let _ = Prekey::decode(&bytes);
        let _ = PrekeyBundle::decode(&bytes);
        let _ = ContactCard::decode(&bytes);
        let _ = Manifest::decode(&bytes);
        let _ = Envelope::decode(&bytes);
        let _ = RevocationRecord::decode(&bytes);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = ContactCard::from_text(s);
        }
    }
}

#[test]
fn wrong_type_and_version_bytes_are_rejected() {
    let mut rng = rng(1);
    let key = SigningSecret::generate(&mut rng);
    let mut rec = RevocationRecord::sign(&key, NOW).to_bytes();
    rec[0] = 0x05;
    assert_eq!(
        RevocationRecord::decode(&rec).unwrap_err(),
        DecodeError::WrongType {
            expected: 0x07,
            found: 0x05
        }
    );
    rec[0] = 0x07;
    rec[1] = 0x02;
    assert_eq!(
        RevocationRecord::decode(&rec).unwrap_err(),
        DecodeError::UnsupportedVersion(2)
    );
}

#[test]
fn over_limit_lengths_are_rejected_before_allocating() {
    let mut rng = rng(2);
    let p = Party::new(&mut rng);
    let card = ContactCard::new(
        &p.identity,
        &p.device,
        p.prekeys.signed_prekey().clone(),
        vec![],
        "x".into(),
    )
    .unwrap();
    let mut bytes = card.to_bytes();
    let count_at = 2 + DeviceCertificate::LEN + Prekey::LEN;
    bytes[count_at] = 255;
    assert_eq!(
        ContactCard::decode(&bytes).unwrap_err(),
        DecodeError::TooLong {
            field: "relay count",
            limit: MAX_RELAYS
        }
    );
    // A manifest claiming a padded length over the maximum.
    let (clip, _) = seal(&content(10, 0), &mut rng);
    let mut m = clip.manifest().to_bytes();
    m[2 + 32 + 32 + 8..2 + 32 + 32 + 16].copy_from_slice(&u64::MAX.to_be_bytes());
    assert!(matches!(
        Manifest::decode(&m).unwrap_err(),
        DecodeError::TooLong { .. }
    ));
}

#[test]
fn card_limits_are_enforced() {
    let mut rng = rng(3);
    let p = Party::new(&mut rng);
    let spk = p.prekeys.signed_prekey().clone();
    let mk = |relays: Vec<String>, name: &str| {
        ContactCard::new(&p.identity, &p.device, spk.clone(), relays, name.into())
    };
    assert!(mk(vec!["r".into(); MAX_RELAYS + 1], "a").is_err());
    assert!(mk(vec!["r".repeat(MAX_RELAY_ADDR_LEN + 1)], "a").is_err());
    assert!(mk(vec![String::new()], "a").is_err());
    assert!(mk(vec![], &"n".repeat(MAX_DISPLAY_NAME_LEN + 1)).is_err());
    assert!(mk(vec![], "bell\u{7}").is_err());
    let full = mk(
        vec!["r".repeat(MAX_RELAY_ADDR_LEN); MAX_RELAYS],
        &"n".repeat(MAX_DISPLAY_NAME_LEN),
    )
    .unwrap();
    assert_eq!(full.to_bytes().len(), ContactCard::MAX_LEN);
    assert_eq!(ContactCard::from_text(&full.to_text()).unwrap(), full);
}

/// Hex snapshots: the encodings of fixed-seed structures. They change only
/// when the wire format does, and then spec/ must change with them.
#[test]
fn hex_snapshots() {
    let mut rng = rng(42);
    let id = Identity::generate(&mut rng);
    let dev = id.new_device(7, NOW, &mut rng);
    let rev = RevocationRecord::sign(&SigningSecret::generate(&mut rng), NOW);
    let snap = [
        (
            "device certificate",
            hex::encode(dev.certificate().to_bytes()),
        ),
        ("revocation", hex::encode(rev.to_bytes())),
    ];
    let expected = [
        ("device certificate", DEVICE_CERT_HEX),
        ("revocation", REVOCATION_HEX),
    ];
    for ((name, got), (_, want)) in snap.iter().zip(expected) {
        assert_eq!(got, want, "{name} encoding changed");
    }
}

const DEVICE_CERT_HEX: &str = "0101552ea700fcbfa7e320ea0cf90555c989f3bcfead7058c747b212b17d2cebab1ce0586b2dcf544a035dabbe91eb032fff866e2b1a12f84f595ac051d5f2707db70000000000000007000001a3185c500094c8c5cd7de620d798e30e02a2a02380cbc894a8632ce68abe6d1671627f79a45d2e449603e83ba74fd8f7514bf83586f23990f31727d7f9eca5805fe1650808";
const REVOCATION_HEX: &str = "0701d68a9d919a49655f2fc1a709b1df967c5a48d3f5fd7ee36b3572915f02f7661564d351ac22c3b2a5eadc0c3511121a3cb0c94ca2097da706cf0760314b098cc0000001a3185c50005e597617f8947b309bd11ae27e0d855efe6919b876a425464d82ae68c77f91d6c25b3a4e156ccdbe886c66634d6dd8887eb0550274381bb1547ceda498e45f0c";
