//! The test-vector generator, shared by `examples/gen-vectors.rs` (which
//! writes `spec/vectors/`) and `tests/vectors.rs` (which checks that the files
//! are exactly what this code produces, then evaluates each one independently).
//!
//! Everything is derived from one fixed seed, so the output never changes
//! unless the protocol does.

#![allow(dead_code)]

use mayfly_protocol::codec::Codec;
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

/// The seed every vector is derived from.
pub const SEED: [u8; 32] = *b"mayfly test vectors v1 seed 2026";
/// The `now` of every vector, unless a case says otherwise.
pub const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

pub fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

/// One vector file: its name (without `.json`) and its JSON value.
pub struct Case {
    pub name: String,
    pub value: Value,
}

fn case(name: &str, description: &str, kind: &str, expected: &str, input: Value) -> Case {
    Case {
        name: name.to_owned(),
        value: json!({
            "description": description,
            "kind": kind,
            "expected": expected,
            "input": input,
        }),
    }
}

/// A sealed clip with everything a vector needs.
struct Clip {
    header: ClipHeader,
    content: Vec<u8>,
    sealed: SealedClip,
    chunks: Vec<Vec<u8>>,
}

fn seal(header: ClipHeader, content: Vec<u8>, rng: &mut ChaCha20Rng) -> Clip {
    let mut chunks = Vec::new();
    let sealed = seal_reader(
        header.clone(),
        &mut content.as_slice(),
        |_, c| {
            chunks.push(c.to_vec());
            Ok(())
        },
        rng,
    )
    .expect("vector clip seals");
    Clip {
        header,
        content,
        sealed,
        chunks,
    }
}

fn header(content_len: usize) -> ClipHeader {
    ClipHeader {
        kind: ClipKind::Clip,
        allow_save: false,
        duration_ms: 4_000,
        created_at: NOW,
        expires_at: NOW.plus(DEFAULT_CLIP_TTL_MS),
        content_len: content_len as u64,
        parent: None,
        media_type: "video/mp4".into(),
    }
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ salt)
        .collect()
}

fn header_json(h: &ClipHeader) -> Value {
    json!({
        "kind": h.kind as u8,
        "allow_save": h.allow_save,
        "duration_ms": h.duration_ms,
        "created_at": h.created_at.0,
        "expires_at": h.expires_at.0,
        "content_len": h.content_len,
        "parent": h.parent.map(|p| hex(&p.0)),
        "media_type": h.media_type,
    })
}

struct Party {
    identity: Identity,
    device: Device,
    prekeys: PrekeyStore,
}

fn party(serial: u64, rng: &mut ChaCha20Rng) -> Party {
    let identity = Identity::generate(rng);
    let device = identity.new_device(serial, NOW, rng);
    let prekeys = PrekeyStore::new(&device, NOW, rng);
    Party {
        identity,
        device,
        prekeys,
    }
}

#[allow(clippy::too_many_arguments)]
fn clip_case(
    name: &str,
    description: &str,
    expected: &str,
    now: UnixMillis,
    recipient_identity: &SigningPublicKey,
    prekey_secret: &DhSecret,
    envelope: &[u8],
    manifest: &[u8],
    chunks: &[Vec<u8>],
    trailing: &[u8],
    plaintext: Option<&Clip>,
    sender: &SigningPublicKey,
) -> Case {
    let mut ciphertext = chunks.concat();
    ciphertext.extend_from_slice(trailing);
    let mut input = json!({
        "now": now.0,
        "recipient_identity_key": hex(&recipient_identity.to_bytes()),
        "recipient_prekey_secret": hex(prekey_secret.as_bytes()),
        "envelope": hex(envelope),
        "manifest": hex(manifest),
        "ciphertext": hex(&ciphertext),
    });
    if let Some(clip) = plaintext {
        let obj = input.as_object_mut().expect("object");
        obj.insert("sender_identity_key".into(), json!(hex(&sender.to_bytes())));
        obj.insert("message_id".into(), json!(hex(&clip.sealed.message_id().0)));
        obj.insert(
            "content_key".into(),
            json!(hex(clip.sealed.content_key().as_bytes())),
        );
        obj.insert("header".into(), header_json(&clip.header));
        obj.insert("plaintext_len".into(), json!(clip.content.len()));
        obj.insert(
            "plaintext_blake3".into(),
            json!(hex(blake3::hash(&clip.content).as_bytes())),
        );
        if clip.content.len() <= 4096 {
            obj.insert("plaintext".into(), json!(hex(&clip.content)));
        }
    }
    case(name, description, "clip", expected, input)
}

/// Every vector, in a fixed order.
pub fn generate() -> Vec<Case> {
    let mut rng = ChaCha20Rng::from_seed(SEED);
    let mut out = Vec::new();
    let alice = party(1, &mut rng);
    let mut bob = party(1, &mut rng);
    let carol = party(1, &mut rng);
    let bob_otk = bob
        .prekeys
        .issue_one_time(&bob.device, 1, NOW, &mut rng)
        .remove(0);
    let bob_otk_secret = bob.prekeys.take_secret(&bob_otk.public()).expect("issued");
    let bob_spk_secret = bob
        .prekeys
        .take_secret(&bob.prekeys.signed_prekey().public())
        .expect("current");
    let to_bob_otk = PrekeyBundle {
        certificate: bob.device.certificate().clone(),
        signed_prekey: bob.prekeys.signed_prekey().clone(),
        one_time_prekey: Some(bob_otk.clone()),
    };
    let to_bob_otk_r = to_bob_otk
        .verify(&bob.identity.public(), NOW)
        .expect("bundle");
    let to_bob_spk = Recipient {
        identity_key: bob.identity.public(),
        prekey: bob.prekeys.signed_prekey().public(),
    };
    let bob_id = bob.identity.public();
    let alice_id = alice.identity.public();

    // --- Whole clips -------------------------------------------------------
    let small = seal(header(1000), pattern(1000, 1), &mut rng);
    let env_small = Envelope::seal(&small.sealed, &alice.device, &to_bob_otk_r, &mut rng)
        .expect("envelope")
        .to_bytes();
    let m_small = small.sealed.manifest().to_bytes();
    out.push(clip_case(
        "clip-small-one-time-prekey",
        "A 1000-byte clip (one 64 KiB padded chunk) from alice to bob's one-time prekey. Opens.",
        "ok",
        NOW,
        &bob_id,
        &bob_otk_secret,
        &env_small,
        &m_small,
        &small.chunks,
        &[],
        Some(&small),
        &alice_id,
    ));

    let two = seal(header(CHUNK_SIZE + 1), pattern(CHUNK_SIZE + 1, 2), &mut rng);
    let env_two = Envelope::seal(&two.sealed, &alice.device, &to_bob_spk, &mut rng)
        .expect("envelope")
        .to_bytes();
    let m_two = two.sealed.manifest().to_bytes();
    out.push(clip_case(
        "clip-two-chunks-signed-prekey",
        "A clip of CHUNK_SIZE + 1 bytes (two chunks: 262144 and 8192 padded bytes) to bob's signed prekey. Opens.",
        "ok", NOW, &bob_id, &bob_spk_secret, &env_two, &m_two, &two.chunks, &[],
        Some(&two), &alice_id,
    ));

    let neg = |name: &str,
               d: &str,
               expected: &str,
               env: &[u8],
               m: &[u8],
               chunks: &[Vec<u8>],
               trailing: &[u8]| {
        clip_case(
            name,
            d,
            expected,
            NOW,
            &bob_id,
            &bob_spk_secret,
            env,
            m,
            chunks,
            trailing,
            None,
            &alice_id,
        )
    };
    // Negative cases use the small clip sealed to bob's signed prekey, except
    // those that need two chunks.
    let env_s = Envelope::seal(&small.sealed, &alice.device, &to_bob_spk, &mut rng)
        .expect("envelope")
        .to_bytes();
    let sc = &small.chunks;
    let mut flipped = sc.clone();
    flipped[0][100] ^= 0x01;
    out.push(neg(
        "clip-neg-chunk-bit-flip",
        "One bit of the chunk flipped.",
        "decrypt_error",
        &env_s,
        &m_small,
        &flipped,
        &[],
    ));
    out.push(neg(
        "clip-neg-missing-final-chunk",
        "No chunk at all: the final chunk is missing.",
        "decrypt_error",
        &env_s,
        &m_small,
        &[],
        &[],
    ));
    let mut short = sc.clone();
    short[0].pop();
    out.push(neg(
        "clip-neg-truncated-final-chunk",
        "The final chunk is one byte short.",
        "decrypt_error",
        &env_s,
        &m_small,
        &short,
        &[],
    ));
    out.push(neg(
        "clip-neg-trailing-data",
        "One byte follows the final chunk.",
        "decrypt_error",
        &env_s,
        &m_small,
        sc,
        &[0],
    ));
    let extra = vec![sc[0].clone(), sc[0].clone()];
    out.push(neg(
        "clip-neg-extra-chunk",
        "The final chunk appears twice.",
        "decrypt_error",
        &env_s,
        &m_small,
        &extra,
        &[],
    ));
    let dup = vec![two.chunks[0].clone(), two.chunks[0].clone()];
    out.push(neg(
        "clip-neg-duplicated-chunk",
        "Two-chunk clip: the first chunk is sent in place of the second.",
        "decrypt_error",
        &env_two,
        &m_two,
        &dup,
        &[],
    ));
    let reordered = vec![two.chunks[1].clone(), two.chunks[0].clone()];
    out.push(neg(
        "clip-neg-reordered-chunks",
        "Two-chunk clip: the chunks in the wrong order.",
        "decrypt_error",
        &env_two,
        &m_two,
        &reordered,
        &[],
    ));
    let other_two = seal(header(CHUNK_SIZE + 1), pattern(CHUNK_SIZE + 1, 2), &mut rng);
    let spliced = vec![two.chunks[0].clone(), other_two.chunks[1].clone()];
    out.push(neg(
        "clip-neg-spliced-chunk",
        "Two-chunk clip: the second chunk comes from another clip with the same plaintext.",
        "decrypt_error",
        &env_two,
        &m_two,
        &spliced,
        &[],
    ));

    // Wrong recipient: carol tries bob's envelope with her own keys, and bob with the wrong identity.
    let carol_spk = carol.prekeys.signed_prekey().public();
    let mut carol_prekeys = carol.prekeys;
    let carol_secret = carol_prekeys.take_secret(&carol_spk).expect("current");
    out.push(clip_case(
        "clip-neg-wrong-recipient",
        "Carol's prekey secret and identity against an envelope for bob.",
        "decrypt_error",
        NOW,
        &carol.identity.public(),
        &carol_secret,
        &env_s,
        &m_small,
        sc,
        &[],
        None,
        &alice_id,
    ));
    out.push(clip_case(
        "clip-neg-wrong-recipient-identity",
        "Bob's prekey secret but carol's identity key in the Noise prologue.",
        "decrypt_error",
        NOW,
        &carol.identity.public(),
        &bob_spk_secret,
        &env_s,
        &m_small,
        sc,
        &[],
        None,
        &alice_id,
    ));

    // Envelope and manifest tampering.
    let mut env_flip = env_s.clone();
    env_flip[200] ^= 0x80;
    out.push(neg(
        "clip-neg-envelope-bit-flip",
        "One bit of the envelope's Noise ciphertext flipped.",
        "decrypt_error",
        &env_flip,
        &m_small,
        sc,
        &[],
    ));
    let other = seal(header(1000), pattern(1000, 1), &mut rng);
    let m_other = other.sealed.manifest().to_bytes();
    out.push(neg(
        "clip-neg-other-manifest",
        "A valid manifest of another clip in place of the signed one.",
        "decrypt_error",
        &env_s,
        &m_other,
        sc,
        &[],
    ));
    let mut m_commit = m_small.clone();
    m_commit[2 + 32 + 32 + 8 + 8] ^= 0x01;
    out.push(neg(
        "clip-neg-commitment",
        "The manifest's key commitment altered (the manifest hash then mismatches too).",
        "decrypt_error",
        &env_s,
        &m_commit,
        sc,
        &[],
    ));
    let mut m_trailing = m_small.clone();
    m_trailing.push(0);
    out.push(neg(
        "clip-neg-manifest-trailing-byte",
        "A byte after the manifest.",
        "decode_error",
        &env_s,
        &m_trailing,
        sc,
        &[],
    ));

    // Surreptitious forwarding: bob re-wraps alice's signed payload to carol.
    let forwarded = rewrap(
        &env_s,
        &bob_id,
        &bob_spk_secret,
        &carol.identity.public(),
        &carol_spk,
        &mut rng,
    );
    out.push(clip_case(
        "clip-neg-forwarded-payload", "Bob re-wraps the payload alice signed for him into a new envelope to carol. The signature names bob, so carol rejects it.",
        "decrypt_error", NOW, &carol.identity.public(), &carol_secret, &forwarded, &m_small, sc, &[], None, &alice_id,
    ));

    // Two keys for one ciphertext: the commitment is checked before decryption.
    let wrong_key = ContentKey::from_bytes([0x77; 32]);
    let forged = forge_envelope(
        &alice.device,
        &to_bob_spk,
        &small.sealed.message_id(),
        &small.sealed.manifest().hash(),
        &wrong_key,
        &mut rng,
    );
    out.push(neg("clip-neg-wrong-content-key", "A validly signed envelope carrying a content key other than the one the manifest commits to.", "decrypt_error", &forged, &m_small, sc, &[]));

    // Expiry.
    out.push(clip_case(
        "clip-neg-expired",
        "The small clip opened at exactly its expires_at.",
        "expired",
        NOW.plus(DEFAULT_CLIP_TTL_MS),
        &bob_id,
        &bob_spk_secret,
        &env_s,
        &m_small,
        sc,
        &[],
        None,
        &alice_id,
    ));

    // A malicious sender: a reaction longer than 5 s, sealed without validation.
    let mut bad_header = header(1000);
    bad_header.kind = ClipKind::Reaction;
    bad_header.parent = Some(small.sealed.message_id());
    bad_header.duration_ms = MAX_REACTION_DURATION_MS + 1;
    let bad = seal_unchecked(bad_header, pattern(1000, 3), &mut rng);
    let env_bad = Envelope::seal(&bad.sealed, &alice.device, &to_bob_spk, &mut rng)
        .expect("envelope")
        .to_bytes();
    out.push(neg(
        "clip-neg-reaction-too-long",
        "An authentic reaction whose header claims 5001 ms: the header breaks a limit.",
        "decrypt_error",
        &env_bad,
        &bad.sealed.manifest().to_bytes(),
        &bad.chunks,
        &[],
    ));

    // --- Structures ----------------------------------------------------------
    let cert = alice.device.certificate().to_bytes();
    out.push(decode_case(
        "device-certificate",
        "Alice's device certificate.",
        "device_certificate",
        "ok",
        &cert,
    ));
    let mut bad_sig = cert.clone();
    bad_sig[DeviceCertificate::LEN - 1] ^= 1;
    out.push(decode_case(
        "device-certificate-neg-signature",
        "Last signature byte altered.",
        "device_certificate",
        "decode_error",
        &bad_sig,
    ));
    let mut bad_ver = cert.clone();
    bad_ver[1] = 2;
    out.push(decode_case(
        "device-certificate-neg-version",
        "Version byte 2.",
        "device_certificate",
        "decode_error",
        &bad_ver,
    ));
    let mut bad_type = cert.clone();
    bad_type[0] = 0x02;
    out.push(decode_case(
        "device-certificate-neg-type",
        "Type byte of a prekey.",
        "device_certificate",
        "decode_error",
        &bad_type,
    ));
    out.push(decode_case(
        "device-certificate-neg-truncated",
        "Missing its last byte.",
        "device_certificate",
        "decode_error",
        &cert[..cert.len() - 1],
    ));
    let mut noncanon = cert.clone();
    noncanon[2..34].copy_from_slice(&[0xff; 32]);
    noncanon[33] = 0x7f;
    out.push(decode_case(
        "device-certificate-neg-noncanonical-key",
        "Identity key 0xff..ff7f, a non-canonical encoding.",
        "device_certificate",
        "decode_error",
        &noncanon,
    ));
    let mut small_order = cert.clone();
    small_order[2..34].copy_from_slice(&[0; 32]);
    small_order[2] = 1;
    out.push(decode_case(
        "device-certificate-neg-small-order-key",
        "Identity key of the neutral point (small order).",
        "device_certificate",
        "decode_error",
        &small_order,
    ));

    // A validly signed certificate whose device key is a non-canonical
    // encoding (y >= p) of a point of large order.
    let p_le = {
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        p
    };
    let noncanonical_device_key = (0u8..19)
        .map(|k| {
            let mut b = p_le;
            b[0] += k;
            b
        })
        .find(|b| {
            curve25519_dalek::edwards::CompressedEdwardsY(*b)
                .decompress()
                .is_some_and(|pt| !pt.is_small_order())
        })
        .expect("some y >= p decodes to a large-order point");
    let mut body = vec![0x01, 0x01];
    body.extend_from_slice(&alice_id.to_bytes());
    body.extend_from_slice(&noncanonical_device_key);
    body.extend_from_slice(&9u64.to_be_bytes());
    body.extend_from_slice(&NOW.0.to_be_bytes());
    let sig = alice
        .identity
        .secret()
        .sign("mayfly/v1/device-certificate", &body);
    body.extend_from_slice(&sig);
    out.push(decode_case(
        "device-certificate-neg-noncanonical-device-key",
        "Signed by alice's identity, but the device key is a non-canonical encoding (y >= p) of a large-order point.",
        "device_certificate",
        "decode_error",
        &body,
    ));

    let spk = bob.prekeys.signed_prekey().to_bytes();
    out.push(decode_case(
        "prekey-signed",
        "Bob's signed prekey.",
        "prekey",
        "ok",
        &spk,
    ));
    let mut spk_kind = spk.clone();
    spk_kind[2] = 3;
    out.push(decode_case(
        "prekey-neg-kind",
        "Prekey kind 3.",
        "prekey",
        "decode_error",
        &spk_kind,
    ));
    let mut spk_low = spk.clone();
    spk_low[3..35].copy_from_slice(&[0; 32]);
    out.push(decode_case(
        "prekey-neg-zero-key",
        "X25519 key 0 (small order).",
        "prekey",
        "decode_error",
        &spk_low,
    ));
    let mut spk_p = spk.clone();
    spk_p[3] = 0xed;
    spk_p[4..34].copy_from_slice(&[0xff; 30]);
    spk_p[34] = 0x7f;
    out.push(decode_case(
        "prekey-neg-noncanonical-key",
        "X25519 key equal to p = 2^255 - 19.",
        "prekey",
        "decode_error",
        &spk_p,
    ));

    let bundle = to_bob_otk.to_bytes();
    out.push(decode_case(
        "prekey-bundle",
        "Bob's bundle with a one-time prekey.",
        "prekey_bundle",
        "ok",
        &bundle,
    ));
    let mut bundle_flag = bundle.clone();
    let flag_at = 2 + DeviceCertificate::LEN + Prekey::LEN;
    bundle_flag[flag_at] = 2;
    out.push(decode_case(
        "prekey-bundle-neg-flag",
        "One-time-prekey flag 2 (only 0 and 1 are canonical).",
        "prekey_bundle",
        "decode_error",
        &bundle_flag,
    ));

    // Bundle verification: the one-time prekey is used while fresh; once it is
    // older than ONE_TIME_PREKEY_MAX_AGE_MS the sender falls back to the signed
    // prekey. Bob's signed prekey is rotated so that it is still fresh then.
    let mut bob_later = PrekeyStore::new(&bob.device, NOW.plus(5 * DAY_MS), &mut rng);
    let late_spk = bob_later.signed_prekey().clone();
    let bundle_late = PrekeyBundle {
        certificate: bob.device.certificate().clone(),
        signed_prekey: late_spk.clone(),
        one_time_prekey: Some(bob_otk.clone()),
    };
    for (name, d, at, want) in [
        (
            "prekey-bundle-verify-one-time",
            "The fresh one-time prekey is chosen.",
            NOW.plus(5 * DAY_MS),
            bob_otk.public(),
        ),
        (
            "prekey-bundle-verify-stale-one-time",
            "The one-time prekey is older than 7 days: the signed prekey is chosen.",
            NOW.plus(ONE_TIME_PREKEY_MAX_AGE_MS + 1),
            late_spk.public(),
        ),
    ] {
        out.push(case(
            name,
            d,
            "prekey_bundle_verify",
            "ok",
            json!({
                "bundle": hex(&bundle_late.to_bytes()),
                "identity_key": hex(&bob_id.to_bytes()),
                "now": at.0,
                "chosen_prekey": hex(want.as_bytes()),
            }),
        ));
    }
    out.push(case(
        "prekey-bundle-verify-neg-stale-signed",
        "The signed prekey is older than 7 days: the bundle is refused.",
        "prekey_bundle_verify",
        "expired",
        json!({
            "bundle": hex(&bundle_late.to_bytes()),
            "identity_key": hex(&bob_id.to_bytes()),
            "now": NOW.plus(5 * DAY_MS + SIGNED_PREKEY_MAX_AGE_MS + 1).0,
        }),
    ));
    drop(bob_later.take_secret(&late_spk.public()));

    // A card that carries a one-time prekey where its signed prekey belongs,
    // validly signed by alice's identity.
    let mut alice_prekeys = alice.prekeys;
    let alice_otk = alice_prekeys
        .issue_one_time(&alice.device, 1, NOW, &mut rng)
        .remove(0);
    let mut card_otk = vec![0x04, 0x01];
    card_otk.extend_from_slice(&alice.device.certificate().to_bytes());
    card_otk.extend_from_slice(&alice_otk.to_bytes());
    card_otk.extend_from_slice(&[0, 1, b'A']);
    let sig = alice
        .identity
        .secret()
        .sign("mayfly/v1/contact-card", &card_otk);
    card_otk.extend_from_slice(&sig);
    out.push(decode_case(
        "contact-card-neg-one-time-prekey",
        "A validly signed card whose prekey has kind 2 (one-time).",
        "contact_card",
        "decode_error",
        &card_otk,
    ));

    let card = ContactCard::new(
        &alice.identity,
        &alice.device,
        alice_prekeys.signed_prekey().clone(),
        vec!["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWExample".into()],
        "Alice".into(),
    )
    .expect("card");
    out.push(decode_case(
        "contact-card",
        "Alice's contact card.",
        "contact_card",
        "ok",
        &card.to_bytes(),
    ));
    let mut card_bad = card.to_bytes();
    let n = card_bad.len();
    card_bad[n - 70] ^= 0x20; // inside the display name
    out.push(decode_case(
        "contact-card-neg-signature",
        "Display name altered after signing.",
        "contact_card",
        "decode_error",
        &card_bad,
    ));
    let text = card.to_text();
    out.push(text_case(
        "contact-card-text",
        "Alice's card as text.",
        "ok",
        &text,
    ));
    let mut t = text.clone().into_bytes();
    let last = t.len() - 1;
    t[last] = if t[last] == b'a' { b'b' } else { b'a' };
    out.push(text_case(
        "contact-card-text-neg-checksum",
        "Last character changed.",
        "decode_error",
        &String::from_utf8(t).expect("ascii"),
    ));
    out.push(text_case(
        "contact-card-text-neg-uppercase",
        "The base32 part in upper case.",
        "decode_error",
        &format!("mfcard1{}", text["mfcard1".len()..].to_uppercase()),
    ));
    out.push(text_case(
        "contact-card-text-neg-prefix",
        "Missing prefix.",
        "decode_error",
        &text["mfcard1".len()..],
    ));

    out.push(decode_case(
        "manifest",
        "The manifest of clip-two-chunks-signed-prekey.",
        "manifest",
        "ok",
        &m_two,
    ));
    let mut m_pad = m_two.clone();
    m_pad[2 + 32 + 32 + 8..2 + 32 + 32 + 16].copy_from_slice(&(270_337u64).to_be_bytes());
    out.push(decode_case(
        "manifest-neg-noncanonical-padded-len",
        "padded_len 270337 is not a Padmé value.",
        "manifest",
        "decode_error",
        &m_pad,
    ));
    let mut m_id = m_two.clone();
    m_id[2] ^= 1;
    out.push(decode_case(
        "manifest-neg-message-id",
        "Message id not derived from the revocation key.",
        "manifest",
        "decode_error",
        &m_id,
    ));
    out.push(decode_case(
        "manifest-neg-missing-hash",
        "The last chunk hash is missing.",
        "manifest",
        "decode_error",
        &m_two[..m_two.len() - 32],
    ));

    out.push(decode_case(
        "envelope",
        "The envelope of clip-two-chunks-signed-prekey.",
        "envelope",
        "ok",
        &env_two,
    ));
    let mut env_zero_e = env_two.clone();
    env_zero_e[34..66].copy_from_slice(&[0; 32]);
    out.push(decode_case(
        "envelope-neg-small-order-ephemeral",
        "The Noise ephemeral key is 0, a point of small order.",
        "envelope",
        "decode_error",
        &env_zero_e,
    ));
    out.push(decode_case(
        "envelope-neg-trailing-byte",
        "A byte after the envelope.",
        "envelope",
        "decode_error",
        &[env_two.clone(), vec![0]].concat(),
    ));

    let rev = small.sealed.revoke(NOW.plus(1000));
    let rev_b = rev.to_bytes();
    out.push(decode_case(
        "revocation",
        "Revocation of clip-small-one-time-prekey.",
        "revocation",
        "ok",
        &rev_b,
    ));
    let mut rev_sig = rev_b.clone();
    rev_sig[RevocationRecord::LEN - 64] ^= 1;
    out.push(decode_case(
        "revocation-neg-signature",
        "Signature altered.",
        "revocation",
        "decode_error",
        &rev_sig,
    ));
    let mut rev_ts = rev_b.clone();
    rev_ts[2 + 32 + 32 + 7] ^= 1;
    out.push(decode_case(
        "revocation-neg-timestamp",
        "revoked_at altered after signing.",
        "revocation",
        "decode_error",
        &rev_ts,
    ));
    let forged_rev = RevocationRecord::sign(&SigningSecret::generate(&mut rng), NOW).to_bytes();
    let mut rev_other = forged_rev.clone();
    rev_other[2..34].copy_from_slice(&small.sealed.message_id().0);
    out.push(decode_case(
        "revocation-neg-not-the-sender",
        "Someone else's key signing a revocation that names alice's message id.",
        "revocation",
        "decode_error",
        &rev_other,
    ));
    out.push(Case {
        name: "revocation-ledger-replay".into(),
        value: json!({
            "description": "A revocation applied, replayed, then a revocation of an unknown message (becomes a tombstone), then collection 14 days + 20 min later.",
            "kind": "revocation_ledger",
            "expected": "ok",
            "input": {
                "steps": [
                    {"op": "apply", "record": hex(&rev_b), "now": NOW.0 + 2000, "outcome": "revoked"},
                    {"op": "apply", "record": hex(&rev_b), "now": NOW.0 + 3000, "outcome": "already_revoked"},
                    {"op": "apply", "record": hex(&forged_rev), "now": NOW.0 + 3000, "outcome": "revoked"},
                    {"op": "collect", "now": NOW.0 + 3000 + MAX_CLIP_TTL_MS + 2 * MAX_CLOCK_SKEW_MS, "outcome": 2},
                ]
            }
        }),
    });

    // --- Algorithms ----------------------------------------------------------
    let lens = [
        1u64,
        1000,
        65_535,
        65_536,
        65_537,
        262_145,
        1_000_000,
        10_000_000,
        1 << 30,
    ];
    out.push(Case {
        name: "padding".into(),
        value: json!({
            "description": "padded_len(content_len) = max(padme(content_len), 65536).",
            "kind": "padding",
            "expected": "ok",
            "input": { "pairs": lens.iter().map(|&l| json!([l, padding::padded_len(l)])).collect::<Vec<_>>() }
        }),
    });
    // Control messages and invites (CLIENT-MESSAGES.md §2, §3).
    let token = [0x5au8; 16];
    let reply = Control::InviteReply {
        token,
        card: card.clone(),
    }
    .to_bytes();
    out.push(decode_case(
        "control-invite-reply",
        "An invite reply carrying a token and Alice's card.",
        "control",
        "ok",
        &reply,
    ));
    out.push(decode_case(
        "control-revoked",
        "A revocation notice carrying the revocation vector's record.",
        "control",
        "ok",
        &Control::Revoked(rev.clone()).to_bytes(),
    ));
    let mut bad_kind = reply.clone();
    bad_kind[2] = 9;
    out.push(decode_case(
        "control-neg-kind",
        "An unknown control message kind.",
        "control",
        "decode_error",
        &bad_kind,
    ));
    let mut trailing = Control::CardUpdate(card.clone()).to_bytes();
    trailing.push(0);
    out.push(decode_case(
        "control-neg-trailing-byte",
        "A card update followed by one byte.",
        "control",
        "decode_error",
        &trailing,
    ));
    let invite = Invite {
        token,
        card: card.clone(),
    };
    out.push(decode_case(
        "invite",
        "An invite to Alice.",
        "invite",
        "ok",
        &invite.to_bytes(),
    ));
    let invite_text = invite.to_text();
    out.push(case(
        "invite-text",
        "The invite as text.",
        "decode:invite_text",
        "ok",
        json!({ "text": invite_text }),
    ));
    let mut t = invite_text.clone().into_bytes();
    let last = t.len() - 1;
    t[last] = if t[last] == b'a' { b'b' } else { b'a' };
    out.push(case(
        "invite-text-neg-checksum",
        "The invite text with its last character changed.",
        "decode:invite_text",
        "decode_error",
        json!({ "text": String::from_utf8(t).expect("ascii") }),
    ));
    out.push(Case {
        name: "safety-number".into(),
        value: json!({
            "description": "The safety number of alice and bob (the same from either side).",
            "kind": "safety_number",
            "expected": "ok",
            "input": {
                "a": hex(&alice_id.to_bytes()),
                "b": hex(&bob_id.to_bytes()),
                "safety_number": safety_number(&alice_id, &bob_id),
            }
        }),
    });
    out
}

fn decode_case(name: &str, d: &str, ty: &str, expected: &str, bytes: &[u8]) -> Case {
    case(
        name,
        d,
        &format!("decode:{ty}"),
        expected,
        json!({ "bytes": hex(bytes) }),
    )
}

fn text_case(name: &str, d: &str, expected: &str, text: &str) -> Case {
    case(
        name,
        d,
        "decode:contact_card_text",
        expected,
        json!({ "text": text }),
    )
}

/// Seals without validating the header, as a malicious sender would.
fn seal_unchecked(header: ClipHeader, content: Vec<u8>, rng: &mut ChaCha20Rng) -> Clip {
    let mut key = [0u8; 32];
    rand_core::Rng::fill_bytes(rng, &mut key);
    let mut sealer = ClipSealer::with_keys_unvalidated(
        header.clone(),
        ContentKey::from_bytes(key),
        SigningSecret::generate(rng),
    );
    let mut chunks = Vec::new();
    let mut pos = 0;
    let mut buf = Vec::new();
    while let Some(n) = sealer.next_content_len() {
        sealer
            .seal_next(&content[pos..pos + n], &mut buf)
            .expect("seal");
        pos += n;
        chunks.push(buf.clone());
    }
    let sealed = sealer.finish().expect("finish");
    Clip {
        header,
        content,
        sealed,
        chunks,
    }
}

/// A snow resolver with a seeded RNG (the default resolver has none in this build).
struct SeededResolver([u8; 32]);

struct SeededRng(ChaCha20Rng);

impl snow::types::Random for SeededRng {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        rand_core::Rng::fill_bytes(&mut self.0, dest);
        Ok(())
    }
}

impl snow::resolvers::CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn snow::types::Random>> {
        Some(Box::new(SeededRng(ChaCha20Rng::from_seed(self.0))))
    }
    fn resolve_dh(&self, c: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
        snow::resolvers::DefaultResolver.resolve_dh(c)
    }
    fn resolve_hash(&self, c: &snow::params::HashChoice) -> Option<Box<dyn snow::types::Hash>> {
        snow::resolvers::DefaultResolver.resolve_hash(c)
    }
    fn resolve_cipher(
        &self,
        c: &snow::params::CipherChoice,
    ) -> Option<Box<dyn snow::types::Cipher>> {
        snow::resolvers::DefaultResolver.resolve_cipher(c)
    }
}

fn builder<'a>(seed: [u8; 32]) -> snow::Builder<'a> {
    snow::Builder::with_resolver(
        ENVELOPE_NOISE_PARAMS.parse().expect("params"),
        Box::new(SeededResolver(seed)),
    )
}

/// Builds a Noise_N message to `prekey` with the given payload, the way any
/// implementation would, using snow directly.
fn noise_n(
    recipient_identity: &SigningPublicKey,
    prekey: &DhPublicKey,
    payload: &[u8],
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let mut eph = [0u8; 32];
    rand_core::Rng::fill_bytes(rng, &mut eph);
    let mut prologue = b"mayfly/v1/envelope\0".to_vec();
    prologue.extend_from_slice(&recipient_identity.to_bytes());
    let mut hs = builder(eph)
        .prologue(&prologue)
        .expect("prologue")
        .remote_public_key(prekey.as_bytes())
        .expect("rs")
        .build_initiator()
        .expect("initiator");
    let mut msg = vec![0u8; 32 + payload.len() + 16];
    hs.write_message(payload, &mut msg).expect("write");
    let mut env = vec![0x06, 0x01];
    env.extend_from_slice(prekey.as_bytes());
    env.extend_from_slice(&msg);
    env
}

fn open_payload(env: &[u8], identity: &SigningPublicKey, secret: &DhSecret) -> Vec<u8> {
    let mut prologue = b"mayfly/v1/envelope\0".to_vec();
    prologue.extend_from_slice(&identity.to_bytes());
    let mut hs = builder([0; 32])
        .prologue(&prologue)
        .expect("prologue")
        .local_private_key(secret.as_bytes())
        .expect("s")
        .build_responder()
        .expect("responder");
    let mut payload = vec![0u8; env.len()];
    let n = hs.read_message(&env[34..], &mut payload).expect("opens");
    payload.truncate(n);
    payload
}

fn rewrap(
    env: &[u8],
    from_identity: &SigningPublicKey,
    from_secret: &DhSecret,
    to_identity: &SigningPublicKey,
    to_prekey: &DhPublicKey,
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let payload = open_payload(env, from_identity, from_secret);
    noise_n(to_identity, to_prekey, &payload, rng)
}

/// An envelope correctly signed by `sender` whose content key is `key`.
fn forge_envelope(
    sender: &Device,
    to: &Recipient,
    id: &MessageId,
    manifest_hash: &[u8; 32],
    key: &ContentKey,
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let mut signed = sender.certificate().to_bytes();
    signed.extend_from_slice(&to.identity_key.to_bytes());
    signed.extend_from_slice(to.prekey.as_bytes());
    signed.extend_from_slice(&id.0);
    signed.extend_from_slice(manifest_hash);
    let sig = sender.secret().sign("mayfly/v1/envelope", &signed);
    let mut payload = sender.certificate().to_bytes();
    payload.extend_from_slice(&id.0);
    payload.extend_from_slice(manifest_hash);
    payload.extend_from_slice(key.as_bytes());
    payload.extend_from_slice(&sig);
    noise_n(&to.identity_key, &to.prekey, &payload, rng)
}

/// Renders a case as the bytes of its file.
pub fn render(c: &Case) -> String {
    let mut s = serde_json::to_string_pretty(&c.value).expect("json");
    s.push('\n');
    s
}
