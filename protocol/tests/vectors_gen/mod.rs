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

    // Every negative vector breaks exactly one rule, which its `rule` field
    // names (SPEC.md §16). Faults that a relay or another recipient can cause
    // are made by changing bytes after sealing. Faults that only a sender can
    // cause (a header that breaks a rule, a manifest that names a damaged
    // chunk) are made by a malicious sender, who signs a valid envelope for the
    // manifest it built, so that every other check passes. `rng2` draws the
    // randomness of these forgeries, so the vectors drawn from `rng` stay as
    // they were.
    let mut rng2 = ChaCha20Rng::from_seed(blake3::derive_key(
        "mayfly test vectors v1 isolated faults",
        &SEED,
    ));
    let neg = |name: &str,
               d: &str,
               expected: &str,
               rule: &str,
               env: &[u8],
               m: &[u8],
               chunks: &[Vec<u8>],
               trailing: &[u8]| {
        with_rule(
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
            ),
            rule,
        )
    };
    // Negative cases use the small clip sealed to bob's signed prekey, except
    // those that need two chunks.
    let env_s = Envelope::seal(&small.sealed, &alice.device, &to_bob_spk, &mut rng)
        .expect("envelope")
        .to_bytes();
    let sc = &small.chunks;
    let small_key = small.sealed.content_key().clone();

    // §10 step 7.2 alone: the chunk fails its tag, but the manifest (signed
    // by the sender) names the damaged chunk's hash, so step 7.1 passes.
    let mut flipped = sc.clone();
    flipped[0][100] ^= 0x01;
    let m_flipped = with_chunk_hashes(&m_small, &flipped);
    out.push(neg(
        "clip-neg-chunk-bit-flip",
        "One bit of the chunk flipped. The sender signed a manifest that names the flipped chunk's hash, so only the chunk's authentication tag fails.",
        "decrypt_error",
        "§10 step 7.2",
        &resign(&alice.device, &to_bob_spk, &m_flipped, &small_key, &mut rng2),
        &m_flipped,
        &flipped,
        &[],
    ));
    // §10 step 8 alone: the chunks that are there are the right ones.
    out.push(neg(
        "clip-neg-missing-final-chunk",
        "No chunk at all: the stream ends before the final chunk.",
        "decrypt_error",
        "§10 step 8",
        &env_s,
        &m_small,
        &[],
        &[],
    ));
    let mut short = sc.clone();
    short[0].pop();
    out.push(neg(
        "clip-neg-truncated-final-chunk",
        "The final chunk is one byte short: the stream ends before the final chunk is complete.",
        "decrypt_error",
        "§10 step 8",
        &env_s,
        &m_small,
        &short,
        &[],
    ));
    out.push(neg(
        "clip-neg-trailing-data",
        "One byte follows the final chunk.",
        "decrypt_error",
        "§10 step 8",
        &env_s,
        &m_small,
        sc,
        &[0],
    ));
    let extra = vec![sc[0].clone(), sc[0].clone()];
    out.push(neg(
        "clip-neg-extra-chunk",
        "The final chunk appears twice: data follows the final chunk.",
        "decrypt_error",
        "§10 step 8",
        &env_s,
        &m_small,
        &extra,
        &[],
    ));
    // §10 step 7.2 alone, for the chunk index and the final flag of the
    // nonce: a clip of two full chunks (equal lengths), whose manifest the
    // sender made to name the chunks as they are delivered.
    let _ = seal(header(CHUNK_SIZE + 1), pattern(CHUNK_SIZE + 1, 2), &mut rng);
    let full2 = seal(
        header(2 * CHUNK_SIZE),
        pattern(2 * CHUNK_SIZE, 4),
        &mut rng2,
    );
    let full2_key = full2.sealed.content_key().clone();
    let m_full2 = full2.sealed.manifest().to_bytes();
    let dup = vec![full2.chunks[0].clone(), full2.chunks[0].clone()];
    let m_dup = with_chunk_hashes(&m_full2, &dup);
    out.push(neg(
        "clip-neg-duplicated-chunk",
        "A clip of two full chunks: the first chunk is sent again in place of the second. The sender signed a manifest that names the first chunk's hash twice, so only the nonce (chunk index 1, final) fails the tag.",
        "decrypt_error",
        "§10 step 7.2",
        &resign(&alice.device, &to_bob_spk, &m_dup, &full2_key, &mut rng2),
        &m_dup,
        &dup,
        &[],
    ));
    let reordered = vec![full2.chunks[1].clone(), full2.chunks[0].clone()];
    let m_reordered = with_chunk_hashes(&m_full2, &reordered);
    out.push(neg(
        "clip-neg-reordered-chunks",
        "A clip of two full chunks, in the wrong order. The sender signed a manifest that names the hashes in that order, so only the nonces (chunk index and final flag) fail the tags.",
        "decrypt_error",
        "§10 step 7.2",
        &resign(&alice.device, &to_bob_spk, &m_reordered, &full2_key, &mut rng2),
        &m_reordered,
        &reordered,
        &[],
    ));
    let other_small = seal(header(1000), pattern(1000, 1), &mut rng2);
    let spliced = vec![other_small.chunks[0].clone()];
    let m_spliced = with_chunk_hashes(&m_small, &spliced);
    out.push(neg(
        "clip-neg-spliced-chunk",
        "The chunk of another clip with the same plaintext. The sender signed a manifest that names its hash, so only the tag fails: the chunk is encrypted under the other clip's payload key.",
        "decrypt_error",
        "§10 step 7.2",
        &resign(&alice.device, &to_bob_spk, &m_spliced, &small_key, &mut rng2),
        &m_spliced,
        &spliced,
        &[],
    ));

    // Wrong recipient: carol tries bob's envelope with her own keys, and bob with the wrong identity.
    let carol_spk = carol.prekeys.signed_prekey().public();
    let mut carol_prekeys = carol.prekeys;
    let carol_secret = carol_prekeys.take_secret(&carol_spk).expect("current");
    out.push(with_rule(
        clip_case(
            "clip-neg-wrong-recipient",
            "Carol's prekey secret and identity against an envelope for bob: the recipient holds no secret for the envelope's prekey.",
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
        ),
        "§9.3 step 2",
    ));
    out.push(with_rule(
        clip_case(
            "clip-neg-wrong-recipient-identity",
            "Bob's prekey secret but carol's identity key in the Noise prologue: the handshake message does not decrypt.",
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
        ),
        "§9.3 step 4",
    ));

    // Envelope and manifest tampering.
    let mut env_flip = env_s.clone();
    env_flip[200] ^= 0x80;
    out.push(neg(
        "clip-neg-envelope-bit-flip",
        "One bit of the envelope's Noise ciphertext flipped.",
        "decrypt_error",
        "§9.3 step 4",
        &env_flip,
        &m_small,
        sc,
        &[],
    ));
    // §10 step 2 alone: a second clip the sender sealed under the same
    // content key and revocation key (which a sender MUST NOT do), so its
    // manifest has the same message id and commitment; only its hash
    // differs from the one the envelope signs.
    let _ = seal(header(1000), pattern(1000, 1), &mut rng);
    let twin = seal_keys(
        header(1000),
        pattern(1000, 9),
        small_key.clone(),
        small.sealed.revocation_secret().clone(),
    );
    out.push(neg(
        "clip-neg-other-manifest",
        "The valid manifest and chunks of another clip that the sender sealed under the same content key and revocation key: same message id and commitment, but not the manifest hash the envelope signs.",
        "decrypt_error",
        "§10 step 2",
        &env_s,
        &twin.sealed.manifest().to_bytes(),
        &twin.chunks,
        &[],
    ));
    out.push(neg(
        "clip-neg-envelope-message-id",
        "A validly signed envelope that names another message id than the manifest whose hash it signs.",
        "decrypt_error",
        "§10 step 2",
        &forge_envelope(
            &alice.device,
            &to_bob_spk,
            &other_small.sealed.message_id(),
            &small.sealed.manifest().hash(),
            &small_key,
            &mut rng2,
        ),
        &m_small,
        sc,
        &[],
    ));
    // §10 step 3 alone: the sender signed the manifest with the bad
    // commitment, so step 2 passes, and the header and chunks are those of K.
    let mut m_commit = m_small.clone();
    m_commit[2 + 32 + 32 + 8 + 8] ^= 0x01;
    out.push(neg(
        "clip-neg-commitment",
        "A manifest whose key commitment is altered, in an envelope that signs that manifest: only the commitment fails.",
        "decrypt_error",
        "§10 step 3",
        &resign(&alice.device, &to_bob_spk, &m_commit, &small_key, &mut rng2),
        &m_commit,
        sc,
        &[],
    ));
    let mut m_trailing = m_small.clone();
    m_trailing.push(0);
    out.push(neg(
        "clip-neg-manifest-trailing-byte",
        "A byte after the manifest. The manifest hash, over the encoding without it, is the one the envelope signs.",
        "decode_error",
        "§3.1 trailing bytes",
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
    out.push(with_rule(clip_case(
        "clip-neg-forwarded-payload", "Bob re-wraps the payload alice signed for him into a new envelope to carol. The signature names bob, so carol rejects it.",
        "decrypt_error", NOW, &carol.identity.public(), &carol_secret, &forwarded, &m_small, sc, &[], None, &alice_id,
    ), "§9.3 step 6"));

    // A content key other than the committed one fails the commitment and
    // then the header's tag too, so it is not a vector; it is drawn only to
    // keep the vectors after it unchanged.
    let _ = forge_envelope(
        &alice.device,
        &to_bob_spk,
        &small.sealed.message_id(),
        &small.sealed.manifest().hash(),
        &ContentKey::from_bytes([0x77; 32]),
        &mut rng,
    );

    // Expiry.
    out.push(with_rule(
        clip_case(
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
        ),
        "§10 step 6",
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
        "§3.7 rule 1",
        &env_bad,
        &bad.sealed.manifest().to_bytes(),
        &bad.chunks,
        &[],
    ));

    // Headers and chunks that only a malicious sender makes: each breaks one
    // rule of §3.7 or §10 and is otherwise a valid clip, validly signed.
    for (name, d, expected, rule, raw) in raw_clips(&small, &mut rng2) {
        let (m, chunks) = raw.build();
        let env = resign(
            &alice.device,
            &to_bob_spk,
            &m,
            &ContentKey::from_bytes(raw.key),
            &mut rng2,
        );
        let delivered = raw.delivered.clone().unwrap_or(chunks);
        out.push(neg(name, d, expected, rule, &env, &m, &delivered, &[]));
    }

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
    assert!(
        s_below_l(&bad_sig[DeviceCertificate::LEN - 32..]),
        "S stays < L"
    );
    out.push(neg_decode(
        "device-certificate-neg-signature",
        "Last signature byte altered (S stays below L): the verification equation fails.",
        "device_certificate",
        "§3.3 signature",
        &bad_sig,
    ));
    let id_secret = alice.identity.secret();
    let mut bad_ver = cert[..82].to_vec();
    bad_ver[1] = 2;
    out.push(neg_decode(
        "device-certificate-neg-version",
        "Version byte 2, validly signed.",
        "device_certificate",
        "§3.1 version",
        &signed(id_secret, "mayfly/v1/device-certificate", bad_ver),
    ));
    let mut bad_type = cert[..82].to_vec();
    bad_type[0] = 0x02;
    out.push(neg_decode(
        "device-certificate-neg-type",
        "Type byte of a prekey, validly signed.",
        "device_certificate",
        "§3.1 type",
        &signed(id_secret, "mayfly/v1/device-certificate", bad_type),
    ));
    out.push(neg_decode(
        "device-certificate-neg-truncated",
        "Missing its last byte.",
        "device_certificate",
        "§3.1 truncation",
        &cert[..cert.len() - 1],
    ));
    // The identity point (small order) as the identity key. Its discrete log
    // is 0, so a signature under it is [s]B || s for any s: the signature
    // verifies, and only the key check fails.
    let mut small_order = cert[..82].to_vec();
    small_order[2..34].copy_from_slice(&IDENTITY_POINT);
    let s = curve25519_dalek::Scalar::from_bytes_mod_order([0x2a; 32]);
    small_order.extend_from_slice(
        curve25519_dalek::EdwardsPoint::mul_base(&s)
            .compress()
            .as_bytes(),
    );
    small_order.extend_from_slice(s.as_bytes());
    out.push(neg_decode(
        "device-certificate-neg-small-order-key",
        "Identity key of the neutral point (small order), with a signature that verifies under it.",
        "device_certificate",
        "§3.2 Ed25519 check 3",
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
    out.push(neg_decode(
        "device-certificate-neg-noncanonical-device-key",
        "Signed by alice's identity, but the device key is a non-canonical encoding (y >= p) of a large-order point.",
        "device_certificate",
        "§3.2 Ed25519 check 2",
        &signed(id_secret, "mayfly/v1/device-certificate", body),
    ));

    let spk = bob.prekeys.signed_prekey().to_bytes();
    out.push(decode_case(
        "prekey-signed",
        "Bob's signed prekey.",
        "prekey",
        "ok",
        &spk,
    ));
    // Each prekey below is re-signed by bob's device, although the decoder
    // does not check prekey signatures, so that it breaks nothing else.
    let bob_dev = bob.device.secret();
    let mut spk_kind = spk[..43].to_vec();
    spk_kind[2] = 3;
    out.push(neg_decode(
        "prekey-neg-kind",
        "Prekey kind 3.",
        "prekey",
        "§3.4 kind",
        &signed(bob_dev, "mayfly/v1/prekey", spk_kind),
    ));
    let mut spk_low = spk[..43].to_vec();
    spk_low[3..35].copy_from_slice(&[0; 32]);
    out.push(neg_decode(
        "prekey-neg-zero-key",
        "X25519 key 0: below p, bit 255 clear, but of small order.",
        "prekey",
        "§3.2 X25519 check 2",
        &signed(bob_dev, "mayfly/v1/prekey", spk_low),
    ));
    // p + 9 reduces to 9, the base point, so only "< p" fails.
    let mut spk_p = spk[..43].to_vec();
    let mut p_plus_9 = p_le;
    p_plus_9[0] += 9;
    spk_p[3..35].copy_from_slice(&p_plus_9);
    out.push(neg_decode(
        "prekey-neg-noncanonical-key",
        "X25519 key p + 9 = 2^255 - 10: not below p. Reduced modulo p it would be 9, the base point.",
        "prekey",
        "§3.2 X25519 check 1 (u < p)",
        &signed(bob_dev, "mayfly/v1/prekey", spk_p),
    ));
    let mut spk_high = spk[..43].to_vec();
    let mut nine_high = [0u8; 32];
    nine_high[0] = 9;
    nine_high[31] = 0x80;
    spk_high[3..35].copy_from_slice(&nine_high);
    out.push(neg_decode(
        "prekey-neg-high-bit",
        "X25519 key 9 with bit 255 set. With the bit cleared it would be 9, the base point.",
        "prekey",
        "§3.2 X25519 check 1 (bit 255)",
        &signed(bob_dev, "mayfly/v1/prekey", spk_high),
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
    out.push(neg_decode(
        "prekey-bundle-neg-flag",
        "One-time-prekey flag 2 (only 0 and 1 are canonical).",
        "prekey_bundle",
        "§3.1 boolean",
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
    out.push(with_rule(
        case(
            "prekey-bundle-verify-neg-stale-signed",
            "The signed prekey is older than 7 days: the bundle is refused.",
            "prekey_bundle_verify",
            "expired",
            json!({
                "bundle": hex(&bundle_late.to_bytes()),
                "identity_key": hex(&bob_id.to_bytes()),
                "now": NOW.plus(5 * DAY_MS + SIGNED_PREKEY_MAX_AGE_MS + 1).0,
            }),
        ),
        "§5.4 step 6",
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
    out.push(neg_decode(
        "contact-card-neg-one-time-prekey",
        "A validly signed card whose prekey has kind 2 (one-time), validly signed by the device.",
        "contact_card",
        "§3.6 step 1",
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
    assert_eq!(card_bad[n - 69], b'A', "the display name's first byte");
    card_bad[n - 69] ^= 0x20; // "Alice" becomes "alice": still a valid name
    out.push(neg_decode(
        "contact-card-neg-signature",
        "Display name changed from \"Alice\" to \"alice\" after signing: only the card's identity signature fails.",
        "contact_card",
        "§3.6 step 2",
        &card_bad,
    ));
    let text = card.to_text();
    out.push(text_case(
        "contact-card-text",
        "Alice's card as text.",
        "ok",
        &text,
    ));
    out.push(with_rule(
        text_case(
            "contact-card-text-neg-checksum",
            "The card's text form with the first checksum byte altered (then base32-encoded as usual, so the base32 is valid).",
            "decode_error",
            &bad_checksum_text("mfcard1", &card.to_bytes()),
        ),
        "§3.6.1 step 6",
    ));
    out.push(with_rule(
        text_case(
            "contact-card-text-neg-uppercase",
            "The base32 part in upper case.",
            "decode_error",
            &format!("mfcard1{}", text["mfcard1".len()..].to_uppercase()),
        ),
        "§3.6.1 step 4",
    ));
    out.push(with_rule(
        text_case(
            "contact-card-text-neg-prefix",
            "Missing prefix.",
            "decode_error",
            &text["mfcard1".len()..],
        ),
        "§3.6.1 step 2",
    ));
    out.push(text_case(
        "contact-card-text-whitespace",
        "The card's text form between leading U+3000, tab and space and trailing CR, LF and U+0085, all Unicode White_Space, which a parser strips.",
        "ok",
        &format!("\u{3000}\t {text}\r\n\u{85}"),
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
    out.push(neg_decode(
        "manifest-neg-noncanonical-padded-len",
        "padded_len 270337 is not a Padmé value. It asks for two chunks, as the manifest has.",
        "manifest",
        "§3.8 padded_len",
        &m_pad,
    ));
    let mut m_id = m_two.clone();
    m_id[2] ^= 1;
    out.push(neg_decode(
        "manifest-neg-message-id",
        "Message id not derived from the revocation key.",
        "manifest",
        "§3.8 message_id",
        &m_id,
    ));
    out.push(neg_decode(
        "manifest-neg-missing-hash",
        "The last chunk hash is missing.",
        "manifest",
        "§3.1 truncation",
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
    out.push(neg_decode(
        "envelope-neg-small-order-ephemeral",
        "The Noise ephemeral key is 0, a point of small order.",
        "envelope",
        "§3.2 X25519 check 2",
        &env_zero_e,
    ));
    out.push(neg_decode(
        "envelope-neg-trailing-byte",
        "A byte after the envelope.",
        "envelope",
        "§3.1 trailing bytes",
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
    // The first byte of S (not of R, which might then not decode).
    let mut rev_sig = rev_b.clone();
    rev_sig[RevocationRecord::LEN - 32] ^= 1;
    assert!(
        s_below_l(&rev_sig[RevocationRecord::LEN - 32..]),
        "S stays < L"
    );
    out.push(neg_decode(
        "revocation-neg-signature",
        "The signature's S altered (it stays below L): the verification equation fails.",
        "revocation",
        "§3.10 signature",
        &rev_sig,
    ));
    let mut rev_ts = rev_b.clone();
    rev_ts[2 + 32 + 32 + 7] ^= 1;
    out.push(neg_decode(
        "revocation-neg-timestamp",
        "revoked_at altered after signing.",
        "revocation",
        "§3.10 signature",
        &rev_ts,
    ));
    let other_rk = SigningSecret::generate(&mut rng);
    let forged_rev = RevocationRecord::sign(&other_rk, NOW).to_bytes();
    let mut rev_other = forged_rev[..74].to_vec();
    rev_other[2..34].copy_from_slice(&small.sealed.message_id().0);
    out.push(neg_decode(
        "revocation-neg-not-the-sender",
        "Someone else's key validly signing a revocation that names alice's message id: the message id is not derived from the record's key.",
        "revocation",
        "§3.10 message_id",
        &signed(&other_rk, "mayfly/v1/revocation", rev_other),
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
    let live_key = Control::LiveKey(LiveKeyGrant {
        broadcast_id: live::BroadcastId([0x42; 32]),
        epoch: 3,
        key: live::EpochKey::from_bytes([0x24; 32]),
        started_at: NOW,
        replay: true,
        peers: vec![
            "/ip4/192.0.2.7/tcp/4001".into(),
            "/ip6/2001:db8::7/tcp/4001".into(),
        ],
    })
    .to_bytes();
    out.push(decode_case(
        "control-live-key",
        "A live key: broadcast 0x42…42, epoch 3, key 0x24…24, started at NOW, with a replay, joined at two peers.",
        "control",
        "ok",
        &live_key,
    ));
    let no_peers = Control::LiveKey(LiveKeyGrant {
        broadcast_id: live::BroadcastId([0x42; 32]),
        epoch: 0,
        key: live::EpochKey::from_bytes([0x24; 32]),
        started_at: NOW,
        replay: false,
        peers: Vec::new(),
    })
    .to_bytes();
    out.push(decode_case(
        "control-live-key-start",
        "The start notification (epoch 0) of a broadcast without a replay, naming no peer.",
        "control",
        "ok",
        &no_peers,
    ));
    // The replay byte sits after the fixed fields: type, version, kind (3),
    // broadcast id (32), epoch (4), key (32), started_at (8).
    let replay_at = 3 + 32 + 4 + 32 + 8;
    let mut bad_replay = live_key.clone();
    bad_replay[replay_at] = 2;
    out.push(neg_decode(
        "control-neg-live-key-replay",
        "A live key whose replay byte is 2: a boolean is 0 or 1.",
        "control",
        "§3.1 boolean",
        &bad_replay,
    ));
    let mut too_many = no_peers.clone();
    too_many[replay_at + 1] = 9;
    for _ in 0..9 {
        too_many.extend_from_slice(&[0, 1, b'x']);
    }
    out.push(neg_decode(
        "control-neg-live-key-peer-count",
        "A live key naming 9 peers: at most 8.",
        "control",
        "CLIENT-MESSAGES.md §2 live key peers",
        &too_many,
    ));
    let mut empty_peer = no_peers.clone();
    empty_peer[replay_at + 1] = 1;
    empty_peer.extend_from_slice(&[0, 0]);
    out.push(neg_decode(
        "control-neg-live-key-empty-peer",
        "A live key naming one peer whose address is empty.",
        "control",
        "CLIENT-MESSAGES.md §2 live key peers",
        &empty_peer,
    ));
    out.push(decode_case(
        "control-follow",
        "A follow request (kind 5, no body).",
        "control",
        "ok",
        &Control::Follow.to_bytes(),
    ));
    out.push(decode_case(
        "control-unfollow",
        "An unfollow notice (kind 6, no body).",
        "control",
        "ok",
        &Control::Unfollow.to_bytes(),
    ));
    let live_revoked = Control::LiveRevoked(live::BroadcastId([0x5a; 32])).to_bytes();
    out.push(decode_case(
        "control-live-revoked",
        "The broadcaster revoked its broadcast (kind 7): the broadcast id.",
        "control",
        "ok",
        &live_revoked,
    ));
    out.push(neg_decode(
        "control-neg-live-revoked-truncated",
        "A live revocation whose broadcast id is one byte short.",
        "control",
        "§3.1 truncation",
        &live_revoked[..live_revoked.len() - 1],
    ));
    let mut follow_body = Control::Follow.to_bytes();
    follow_body.push(0);
    out.push(neg_decode(
        "control-neg-follow-body",
        "A follow request followed by one byte: it has no body.",
        "control",
        "§3.1 trailing bytes",
        &follow_body,
    ));
    let mut bad_kind = reply.clone();
    bad_kind[2] = 9;
    out.push(neg_decode(
        "control-neg-kind",
        "An unknown control message kind.",
        "control",
        "CLIENT-MESSAGES.md §2 kind",
        &bad_kind,
    ));
    let mut trailing = Control::CardUpdate(card.clone()).to_bytes();
    trailing.push(0);
    out.push(neg_decode(
        "control-neg-trailing-byte",
        "A card update followed by one byte.",
        "control",
        "§3.1 trailing bytes",
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
    out.push(with_rule(
        case(
            "invite-text-neg-checksum",
            "The invite's text form with the first checksum byte altered (then base32-encoded as usual, so the base32 is valid).",
            "decode:invite_text",
            "decode_error",
            json!({ "text": bad_checksum_text("mfinvite1", &invite.to_bytes()) }),
        ),
        "CLIENT-MESSAGES.md §3 checksum",
    ));
    let invite_body = &invite_text["mfinvite1".len()..];
    // The invite and its checksum are a whole number of bytes that is not a
    // multiple of 5, so the last base32 character ends in bits that must be
    // zero; setting its lowest bit changes none of the decoded bytes.
    assert_ne!((invite.to_bytes().len() + 4) % 5, 0);
    let mut bits = invite_text.clone().into_bytes();
    let last = bits.len() - 1;
    let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
    let v = alphabet
        .iter()
        .position(|&c| c == bits[last])
        .expect("base32");
    assert_eq!(v & 1, 0, "the lowest bit is a trailing bit, so it is clear");
    bits[last] = alphabet[v | 1];
    let trailing_bits = String::from_utf8(bits).expect("ascii");
    for (name, d, rule, text) in [
        (
            "invite-text-neg-prefix-case",
            "The invite text with its prefix in upper case (MFINVITE1) and the body as it is: the prefix is case-sensitive.",
            "§3.6.1 step 2",
            format!("MFINVITE1{invite_body}"),
        ),
        (
            "invite-text-neg-uppercase",
            "The invite text with its body in upper case.",
            "§3.6.1 step 4",
            format!("mfinvite1{}", invite_body.to_uppercase()),
        ),
        (
            "invite-text-neg-inner-whitespace",
            "The invite text with a space inside the body: only leading and trailing whitespace is stripped.",
            "§3.6.1 step 5",
            format!("mfinvite1{} {}", &invite_body[..40], &invite_body[40..]),
        ),
        (
            "invite-text-neg-trailing-bits",
            "The invite text with a non-zero trailing bit in its last character: the bytes it decodes to, checksum included, are unchanged.",
            "§3.6.1 step 5",
            trailing_bits,
        ),
    ] {
        out.push(with_rule(
            case(
                name,
                d,
                "decode:invite_text",
                "decode_error",
                json!({ "text": text }),
            ),
            rule,
        ));
    }
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

    // --- Vectors that each break one rule of a structure -------------------
    let id_secret = alice.identity.secret();
    let cert_body = |device_key: &[u8; 32]| {
        let mut b = vec![0x01, 0x01];
        b.extend_from_slice(&alice_id.to_bytes());
        b.extend_from_slice(device_key);
        b.extend_from_slice(&1u64.to_be_bytes());
        b.extend_from_slice(&NOW.0.to_be_bytes());
        b
    };
    out.push(neg_decode(
        "device-certificate-neg-small-order-device-key",
        "Validly signed by alice's identity, but the device key is a canonical point of order 8.",
        "device_certificate",
        "§3.2 Ed25519 check 3",
        &signed(
            id_secret,
            "mayfly/v1/device-certificate",
            cert_body(&ORDER8_POINT),
        ),
    ));
    let mut s_plus_l = cert.clone();
    add_l(&mut s_plus_l[DeviceCertificate::LEN - 32..]);
    out.push(neg_decode(
        "device-certificate-neg-signature-s-not-reduced",
        "Alice's certificate with S replaced by S + L: the equation still holds ([S + L]B = [S]B), but S is not below L.",
        "device_certificate",
        "§3.2 strict verification: S < L",
        &s_plus_l,
    ));
    out.push(neg_decode(
        "device-certificate-neg-signature-small-order-r",
        "Alice's certificate signed by her identity with R the neutral point and S = k·a mod L, so that the equation holds; only the small-order R fails.",
        "device_certificate",
        "§3.2 strict verification: R not of small order",
        &sign_small_order_r(
            id_secret,
            "mayfly/v1/device-certificate",
            cert[..82].to_vec(),
        ),
    ));

    // Manifests whose revocation key breaks one key check, with the message
    // id derived from the key's bytes as they stand.
    let not_a_point = (2u8..=255)
        .map(|y| {
            let mut b = [0u8; 32];
            b[0] = y;
            b
        })
        .find(|b| {
            curve25519_dalek::edwards::CompressedEdwardsY(*b)
                .decompress()
                .is_none()
        })
        .expect("some small y is not on the curve");
    for (name, d, rule, key) in [
        (
            "manifest-neg-revocation-key-not-a-point",
            "The revocation key's y has no x on the curve; the message id is derived from its bytes.",
            "§3.2 Ed25519 check 1",
            not_a_point,
        ),
        (
            "manifest-neg-noncanonical-revocation-key",
            "The revocation key is a non-canonical encoding (y >= p) of a large-order point; the message id is derived from its bytes.",
            "§3.2 Ed25519 check 2",
            noncanonical_device_key,
        ),
        (
            "manifest-neg-small-order-revocation-key",
            "The revocation key is the neutral point (small order); the message id is derived from its bytes.",
            "§3.2 Ed25519 check 3",
            IDENTITY_POINT,
        ),
    ] {
        let mut m = m_two.clone();
        m[34..66].copy_from_slice(&key);
        m[2..34].copy_from_slice(&blake3::derive_key("mayfly 2026-11 v1 message id", &key));
        out.push(neg_decode(name, d, "manifest", rule, &m));
    }
    // padded_len 2^30 + 2^25, a Padmé value above MAX_CLIP_LEN, with all
    // 4224 chunk hashes it asks for (zeros), so that only the limit fails.
    let too_large = (1u64 << 30) + (1 << 25);
    assert!(padding::is_padded_len(too_large));
    let mut m_large = m_two[..Manifest::FIXED_LEN].to_vec();
    m_large[2 + 32 + 32 + 8..2 + 32 + 32 + 16].copy_from_slice(&too_large.to_be_bytes());
    m_large.resize(
        Manifest::FIXED_LEN + 32 * too_large.div_ceil(CHUNK_SIZE as u64) as usize,
        0,
    );
    out.push(neg_decode(
        "manifest-neg-padded-len-too-large",
        "padded_len 2^30 + 2^25: a Padmé value, but above MAX_CLIP_LEN. The manifest has the 4224 chunk hashes (all zero) it would ask for.",
        "manifest",
        "§3.8 padded_len",
        &m_large,
    ));
    let mut env_high_e = env_two.clone();
    env_high_e[65] |= 0x80;
    out.push(neg_decode(
        "envelope-neg-high-bit-ephemeral",
        "The envelope of clip-two-chunks-signed-prekey with bit 255 of the Noise ephemeral key set.",
        "envelope",
        "§3.2 X25519 check 1 (bit 255)",
        &env_high_e,
    ));

    // Contact cards, each validly signed by alice's identity.
    let cert_b = alice.device.certificate().to_bytes();
    let spk_b = alice_prekeys.signed_prekey().to_bytes();
    let relay = b"/ip4/127.0.0.1/tcp/4001".to_vec();
    let mut spk_carol_signed = spk_b[..43].to_vec();
    spk_carol_signed
        .extend_from_slice(&carol.device.secret().sign("mayfly/v1/prekey", &spk_b[..43]));
    let long_relay = vec![b'a'; MAX_RELAY_ADDR_LEN + 1];
    let nine = vec![relay.clone(); MAX_RELAYS + 1];
    for (name, d, rule, prekey, relays, name_bytes) in [
        (
            "contact-card-neg-prekey-signature",
            "The card's signed prekey is signed by another device key; the card's own signature is valid.",
            "§3.6 step 3",
            &spk_carol_signed,
            vec![relay.clone()],
            b"Alice".to_vec(),
        ),
        (
            "contact-card-neg-relay-count",
            "Nine relays, each valid (the limit is 8).",
            "§3.6 relay_count",
            &spk_b,
            nine,
            b"Alice".to_vec(),
        ),
        (
            "contact-card-neg-relay-too-long",
            "A relay address of 257 bytes (the limit is 256).",
            "§3.6 relays",
            &spk_b,
            vec![long_relay],
            b"Alice".to_vec(),
        ),
        (
            "contact-card-neg-empty-relay",
            "An empty relay address.",
            "§3.6 relays",
            &spk_b,
            vec![Vec::new()],
            b"Alice".to_vec(),
        ),
        (
            "contact-card-neg-display-name-too-long",
            "A display name of 65 bytes (the limit is 64).",
            "§3.6 display_name",
            &spk_b,
            vec![relay.clone()],
            vec![b'A'; MAX_DISPLAY_NAME_LEN + 1],
        ),
        (
            "contact-card-neg-control-character",
            "The display name \"Alice\" followed by U+0085 (NEL, a C1 control character; UTF-8 c2 85).",
            "§3.1 string: control character",
            &spk_b,
            vec![relay.clone()],
            "Alice\u{85}".as_bytes().to_vec(),
        ),
        (
            "contact-card-neg-invalid-utf8",
            "A display name that is not UTF-8 (the bytes 41 ff).",
            "§3.1 string: UTF-8",
            &spk_b,
            vec![relay.clone()],
            vec![b'A', 0xff],
        ),
    ] {
        let mut body = vec![0x04, 0x01];
        body.extend_from_slice(&cert_b);
        body.extend_from_slice(prekey);
        body.push(relays.len() as u8);
        for r in &relays {
            body.extend_from_slice(&(r.len() as u16).to_be_bytes());
            body.extend_from_slice(r);
        }
        body.push(name_bytes.len() as u8);
        body.extend_from_slice(&name_bytes);
        out.push(neg_decode(
            name,
            d,
            "contact_card",
            rule,
            &signed(id_secret, "mayfly/v1/contact-card", body),
        ));
    }

    // Bundle verification (§5.4), at 5 days: bob's rotated signed prekey is
    // fresh and his one-time prekey is 5 days old. Each bundle breaks one step.
    let at = NOW.plus(5 * DAY_MS);
    let bob_dev = bob.device.secret();
    let carol_dev = carol.device.secret();
    let fresh_dh = |rng: &mut ChaCha20Rng| DhSecret::generate(rng).public().to_bytes();
    let spk_late = late_spk.to_bytes();
    let otk_b = bob_otk.to_bytes();
    let bundle_of = |spk: &[u8], otk: Option<&[u8]>| {
        let mut b = vec![0x03, 0x01];
        b.extend_from_slice(&bob.device.certificate().to_bytes());
        b.extend_from_slice(spk);
        match otk {
            Some(o) => {
                b.push(1);
                b.extend_from_slice(o);
            }
            None => b.push(0),
        }
        b
    };
    let verify_case = |name: &str,
                       d: &str,
                       expected: &str,
                       rule: Option<&str>,
                       bundle: Vec<u8>,
                       identity: &SigningPublicKey,
                       chosen: Option<DhPublicKey>| {
        let mut input = json!({
            "bundle": hex(&bundle),
            "identity_key": hex(&identity.to_bytes()),
            "now": at.0,
        });
        if let Some(c) = chosen {
            input["chosen_prekey"] = json!(hex(c.as_bytes()));
        }
        let c = case(name, d, "prekey_bundle_verify", expected, input);
        match rule {
            Some(r) => with_rule(c, r),
            None => c,
        }
    };
    out.push(verify_case(
        "prekey-bundle-verify-neg-wrong-identity",
        "Bob's valid bundle, but the sender expects alice's identity.",
        "other_error",
        Some("§5.4 step 2"),
        bundle_of(&spk_late, Some(&otk_b)),
        &alice_id,
        None,
    ));
    out.push(verify_case(
        "prekey-bundle-verify-neg-signed-kind",
        "The signed-prekey slot holds a one-time prekey (kind 2), validly signed and fresh; no one-time prekey.",
        "decode_error",
        Some("§5.4 step 3"),
        bundle_of(&prekey_bytes(bob_dev, 2, &fresh_dh(&mut rng2), at), None),
        &bob_id,
        None,
    ));
    out.push(verify_case(
        "prekey-bundle-verify-neg-signed-signature",
        "The signed prekey is signed by another device (carol's); no one-time prekey.",
        "other_error",
        Some("§5.4 step 4"),
        bundle_of(&prekey_bytes(carol_dev, 1, &fresh_dh(&mut rng2), at), None),
        &bob_id,
        None,
    ));
    out.push(verify_case(
        "prekey-bundle-verify-neg-signed-future",
        "The signed prekey is dated MAX_CLOCK_SKEW_MS + 1 ms after now; no one-time prekey.",
        "other_error",
        Some("§5.4 step 5"),
        bundle_of(
            &prekey_bytes(
                bob_dev,
                1,
                &fresh_dh(&mut rng2),
                at.plus(MAX_CLOCK_SKEW_MS + 1),
            ),
            None,
        ),
        &bob_id,
        None,
    ));
    out.push(verify_case(
        "prekey-bundle-verify-neg-one-time-kind",
        "The one-time slot holds a prekey of kind 1 (signed), validly signed and fresh.",
        "decode_error",
        Some("§5.4 step 7"),
        bundle_of(
            &spk_late,
            Some(&prekey_bytes(bob_dev, 1, &fresh_dh(&mut rng2), NOW)),
        ),
        &bob_id,
        None,
    ));
    out.push(verify_case(
        "prekey-bundle-verify-neg-one-time-signature",
        "The one-time prekey is signed by another device (carol's).",
        "other_error",
        Some("§5.4 step 7"),
        bundle_of(
            &spk_late,
            Some(&prekey_bytes(carol_dev, 2, &fresh_dh(&mut rng2), NOW)),
        ),
        &bob_id,
        None,
    ));
    out.push(verify_case(
        "prekey-bundle-verify-future-one-time",
        "The one-time prekey is dated MAX_CLOCK_SKEW_MS + 1 ms after now: it is stale, and the signed prekey is chosen (§5.4 step 7).",
        "ok",
        None,
        bundle_of(
            &spk_late,
            Some(&prekey_bytes(bob_dev, 2, &fresh_dh(&mut rng2), at.plus(MAX_CLOCK_SKEW_MS + 1))),
        ),
        &bob_id,
        Some(late_spk.public()),
    ));

    // The revocation ledger (§11): the future check, keep_until, capacity.
    let mut record = |at: UnixMillis| {
        hex(&RevocationRecord::sign(&SigningSecret::generate(&mut rng2), at).to_bytes())
    };
    let t = NOW.0;
    let ttl = MAX_CLIP_TTL_MS + 2 * MAX_CLOCK_SKEW_MS;
    let (f1, f2) = (
        record(NOW.plus(MAX_CLOCK_SKEW_MS + 1)),
        record(NOW.plus(MAX_CLOCK_SKEW_MS)),
    );
    out.push(ledger_case(
        "revocation-ledger-future",
        "A record dated MAX_CLOCK_SKEW_MS + 1 ms after now is refused as from the future and changes nothing; one dated exactly MAX_CLOCK_SKEW_MS after now is applied; the first is applied 1 ms later.",
        None,
        json!([
            {"op": "apply", "record": f1, "now": t, "outcome": "from_the_future", "rule": "§11 step 1"},
            {"op": "collect", "now": t + ttl * 2, "outcome": 0},
            {"op": "apply", "record": f2, "now": t, "outcome": "revoked"},
            {"op": "apply", "record": f1, "now": t + 1, "outcome": "revoked"},
        ]),
    ));
    let (k1, k2) = (record(NOW.plus(5 * 60_000)), record(UnixMillis(t - DAY_MS)));
    out.push(ledger_case(
        "revocation-ledger-keep-until",
        "keep_until = max(revoked_at, now) + 14 days + 20 min: a record dated 5 min ahead is kept from its revoked_at, one dated a day back from now. Applying the first again a day later does not extend it. Each tombstone is collected exactly at its keep_until.",
        None,
        json!([
            {"op": "apply", "record": k1, "now": t, "outcome": "revoked"},
            {"op": "apply", "record": k2, "now": t, "outcome": "revoked"},
            {"op": "apply", "record": k1, "now": t + DAY_MS, "outcome": "already_revoked"},
            {"op": "collect", "now": t + ttl - 1, "outcome": 0},
            {"op": "collect", "now": t + ttl, "outcome": 1},
            {"op": "collect", "now": t + 5 * 60_000 + ttl - 1, "outcome": 0},
            {"op": "collect", "now": t + 5 * 60_000 + ttl, "outcome": 1},
        ]),
    ));
    let (c1, c2) = (record(NOW), record(NOW));
    out.push(ledger_case(
        "revocation-ledger-capacity",
        "A ledger of capacity 1: a second record fails and changes nothing, while the first applied again is still already_revoked. Once the first tombstone is collected, the second is applied.",
        Some(1),
        json!([
            {"op": "apply", "record": c1, "now": t, "outcome": "revoked"},
            {"op": "apply", "record": c2, "now": t, "outcome": "full", "rule": "§11 step 3"},
            {"op": "apply", "record": c1, "now": t, "outcome": "already_revoked"},
            {"op": "collect", "now": t + ttl, "outcome": 1},
            {"op": "apply", "record": c2, "now": t + ttl, "outcome": "revoked"},
        ]),
    ));

    live_cases(&alice.identity, &alice.device, &carol.device, &mut out);
    live_chat_cases(&alice.device, &carol.device, &mut out);
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
    seal_keys(
        header,
        content,
        ContentKey::from_bytes(key),
        SigningSecret::generate(rng),
    )
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

/// Adds the rule a negative vector breaks (SPEC.md §16).
fn with_rule(mut c: Case, rule: &str) -> Case {
    c.value["rule"] = json!(rule);
    c
}

/// A negative `decode:` case that breaks `rule`.
fn neg_decode(name: &str, d: &str, ty: &str, rule: &str, bytes: &[u8]) -> Case {
    with_rule(decode_case(name, d, ty, "decode_error", bytes), rule)
}

/// A `revocation_ledger` case; `capacity` is omitted for the default.
fn ledger_case(name: &str, d: &str, capacity: Option<u64>, steps: Value) -> Case {
    let mut input = json!({ "steps": steps });
    if let Some(c) = capacity {
        input["capacity"] = json!(c);
    }
    case(name, d, "revocation_ledger", "ok", input)
}

/// `body` followed by `Sign(secret, context, body)`.
fn signed(secret: &SigningSecret, context: &str, mut body: Vec<u8>) -> Vec<u8> {
    let sig = secret.sign(context, &body);
    body.extend_from_slice(&sig);
    body
}

/// A prekey encoding of any kind, signed by `signer`.
fn prekey_bytes(
    signer: &SigningSecret,
    kind: u8,
    public: &[u8; 32],
    created_at: UnixMillis,
) -> Vec<u8> {
    let mut b = vec![0x02, 0x01, kind];
    b.extend_from_slice(public);
    b.extend_from_slice(&created_at.0.to_be_bytes());
    signed(signer, "mayfly/v1/prekey", b)
}

/// The neutral point of edwards25519 (y = 1): small order, canonical.
const IDENTITY_POINT: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 1;
    b
};

/// A canonical encoding of a point of order 8.
const ORDER8_POINT: [u8; 32] = [
    0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
    0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
];

/// L, the order of the edwards25519 base point, little-endian.
const L_LE: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// True if the 32 little-endian bytes `s` are below L.
fn s_below_l(s: &[u8]) -> bool {
    for i in (0..32).rev() {
        if s[i] != L_LE[i] {
            return s[i] < L_LE[i];
        }
    }
    false
}

/// Adds L to the 32 little-endian bytes `s` (S < L, so S + L < 2^256).
fn add_l(s: &mut [u8]) {
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s[i]) + u16::from(L_LE[i]) + carry;
        s[i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
}

fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    use sha2::Digest;
    let mut h = sha2::Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `body` followed by a signature under `secret` whose R is the neutral
/// point and whose S = k·a mod L, so that [S]B − [k]A = R holds: valid in
/// every respect but the small order of R.
fn sign_small_order_r(secret: &SigningSecret, context: &str, mut body: Vec<u8>) -> Vec<u8> {
    use curve25519_dalek::{EdwardsPoint, Scalar};
    let h = sha512(&[secret.to_seed().as_ref()]);
    let mut a_bytes: [u8; 32] = h[..32].try_into().expect("32");
    a_bytes[0] &= 248;
    a_bytes[31] &= 127;
    a_bytes[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a_bytes);
    let public = secret.public().to_bytes();
    assert_eq!(EdwardsPoint::mul_base(&a).compress().to_bytes(), public);
    let mut msg = context.as_bytes().to_vec();
    msg.push(0);
    msg.extend_from_slice(&body);
    let k = Scalar::from_bytes_mod_order_wide(&sha512(&[&IDENTITY_POINT, &public, &msg]));
    body.extend_from_slice(&IDENTITY_POINT);
    body.extend_from_slice((k * a).as_bytes());
    body
}

/// The text form of `bytes` with `prefix`, with the first checksum byte altered.
fn bad_checksum_text(prefix: &str, bytes: &[u8]) -> String {
    let mut b = bytes.to_vec();
    let check = blake3::hash(bytes);
    b.extend_from_slice(&check.as_bytes()[..4]);
    let n = b.len();
    b[n - 4] ^= 0x01;
    format!(
        "{prefix}{}",
        data_encoding::BASE32_NOPAD.encode(&b).to_ascii_lowercase()
    )
}

/// `m` with its chunk hashes replaced by the hashes of `chunks`.
fn with_chunk_hashes(m: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut m = m.to_vec();
    for (i, c) in chunks.iter().enumerate() {
        let at = Manifest::FIXED_LEN + 32 * i;
        m[at..at + 32].copy_from_slice(blake3::hash(c).as_bytes());
    }
    m
}

/// An envelope from `sender` to `to`, validly signed, for the manifest `m`
/// exactly as given, carrying `key`.
fn resign(
    sender: &Device,
    to: &Recipient,
    m: &[u8],
    key: &ContentKey,
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let id = MessageId(m[2..34].try_into().expect("32 bytes"));
    forge_envelope(sender, to, &id, blake3::hash(m).as_bytes(), key, rng)
}

/// Seals with the given keys, without validating the header.
fn seal_keys(
    header: ClipHeader,
    content: Vec<u8>,
    key: ContentKey,
    revocation: SigningSecret,
) -> Clip {
    let mut sealer = ClipSealer::with_keys_unvalidated(header.clone(), key, revocation);
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

/// A clip built field by field, as a malicious sender could: the header
/// bytes, the manifest's `expires_at` and `padded_len`, the padded
/// plaintext and the final flag are whatever the case needs.
pub struct Raw {
    key: [u8; 32],
    id: MessageId,
    revocation_key: [u8; 32],
    header: [u8; 128],
    expires_at: u64,
    padded_len: u64,
    plain: Vec<u8>,
    final_flag: bool,
    /// Chunks delivered in place of the ones the manifest names.
    delivered: Option<Vec<Vec<u8>>>,
}

fn aead_seal(key: &[u8; 32], nonce: [u8; 12], plain: &[u8]) -> Vec<u8> {
    aead_seal_aad(key, nonce, &[], plain)
}

fn aead_seal_aad(key: &[u8; 32], nonce: [u8; 12], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    let mut buf = plain.to_vec();
    let tag = chacha20poly1305::ChaCha20Poly1305::new(&chacha20poly1305::Key::from(*key))
        .encrypt_inout_detached(
            &chacha20poly1305::Nonce::from(nonce),
            aad,
            buf.as_mut_slice().into(),
        )
        .expect("seal");
    buf.extend_from_slice(&tag);
    buf
}

impl Raw {
    fn new(h: &ClipHeader, content: &[u8], rng: &mut ChaCha20Rng) -> Self {
        let mut key = [0u8; 32];
        rand_core::Rng::fill_bytes(rng, &mut key);
        let rk = SigningSecret::generate(rng).public();
        let padded_len = padding::padded_len(h.content_len);
        let n = content.len().min(h.content_len as usize);
        let mut plain = content[..n].to_vec();
        plain.resize(padded_len as usize, 0);
        Raw {
            key,
            id: MessageId::for_revocation_key(&rk),
            revocation_key: rk.to_bytes(),
            header: h.encode(),
            expires_at: h.expires_at.0,
            padded_len,
            plain,
            final_flag: true,
            delivered: None,
        }
    }

    fn derive(&self, ctx: &str) -> [u8; 32] {
        let mut m = self.key.to_vec();
        m.extend_from_slice(&self.id.0);
        blake3::derive_key(ctx, &m)
    }

    /// The STREAM chunks of `plain` under this clip's payload key.
    fn encrypt(&self, plain: &[u8]) -> Vec<Vec<u8>> {
        let key = self.derive(kdf::CTX_PAYLOAD_KEY);
        let n = plain.len().div_ceil(CHUNK_SIZE);
        plain
            .chunks(CHUNK_SIZE)
            .enumerate()
            .map(|(i, c)| {
                aead_seal(
                    &key,
                    chunk_nonce(i as u32, i + 1 == n && self.final_flag),
                    c,
                )
            })
            .collect()
    }

    /// The manifest and the chunks it names.
    fn build(&self) -> (Vec<u8>, Vec<Vec<u8>>) {
        let chunks = self.encrypt(&self.plain);
        let mut m = vec![0x05, 0x01];
        m.extend_from_slice(&self.id.0);
        m.extend_from_slice(&self.revocation_key);
        m.extend_from_slice(&self.expires_at.to_be_bytes());
        m.extend_from_slice(&self.padded_len.to_be_bytes());
        m.extend_from_slice(&self.derive(kdf::CTX_COMMITMENT));
        m.extend_from_slice(&aead_seal(
            &self.derive(kdf::CTX_HEADER_KEY),
            [0; 12],
            &self.header,
        ));
        for c in &chunks {
            m.extend_from_slice(blake3::hash(c).as_bytes());
        }
        (m, chunks)
    }
}

type RawCase = (&'static str, &'static str, &'static str, &'static str, Raw);

/// The clips a malicious sender builds, each breaking one rule.
fn raw_clips(small: &Clip, rng: &mut ChaCha20Rng) -> Vec<RawCase> {
    let content = pattern(1000, 5);
    let mut out: Vec<RawCase> = Vec::new();
    let mut add = |name, d, expected, rule, h: ClipHeader, tweak: &dyn Fn(&mut Raw)| {
        let mut raw = Raw::new(&h, &content, rng);
        tweak(&mut raw);
        out.push((name, d, expected, rule, raw));
    };
    let none = |_: &mut Raw| {};
    add(
        "clip-neg-header-kind",
        "The header's kind byte is 4.",
        "decrypt_error",
        "§3.7 kind",
        header(1000),
        &|r| r.header[0] = 4,
    );
    add(
        "clip-neg-header-allow-save",
        "The header's allow_save byte is 2, not a boolean.",
        "decrypt_error",
        "§3.1 boolean",
        header(1000),
        &|r| r.header[1] = 2,
    );
    add(
        "clip-neg-header-padding",
        "The header's last padding byte is 1.",
        "decrypt_error",
        "§3.7 padding",
        header(1000),
        &|r| r.header[127] = 1,
    );
    let mut h = header(1000);
    h.created_at = NOW.plus(5 * 60_000);
    h.expires_at = h.created_at;
    add(
        "clip-neg-header-expires-at-created",
        "expires_at equals created_at (both 5 minutes after now).",
        "decrypt_error",
        "§3.7 rule 2",
        h,
        &none,
    );
    let mut h = header(1000);
    h.expires_at = NOW.plus(MAX_CLIP_TTL_MS + 1);
    add(
        "clip-neg-header-lifetime",
        "A clip whose lifetime is MAX_CLIP_TTL_MS + 1 ms.",
        "decrypt_error",
        "§3.7 rule 3",
        h,
        &none,
    );
    let mut h = header(1000);
    h.kind = ClipKind::LiveSegment;
    h.duration_ms = 10_000;
    h.expires_at = NOW.plus(MAX_LIVE_TTL_MS + 1);
    add(
        "clip-neg-header-live-lifetime",
        "A live segment whose lifetime is MAX_LIVE_TTL_MS + 1 ms (24 h + 1 ms), within a clip's limit.",
        "decrypt_error",
        "§3.7 rule 3",
        h,
        &none,
    );
    add(
        "clip-neg-header-empty",
        "content_len 0: the padded chunk is 65536 zero bytes.",
        "decrypt_error",
        "§3.7 rule 4",
        header(0),
        &none,
    );
    let mut h = header(1000);
    h.kind = ClipKind::Reaction;
    h.duration_ms = 3_000;
    add(
        "clip-neg-header-reaction-without-parent",
        "A reaction whose parent is all zero.",
        "decrypt_error",
        "§3.7 rule 5",
        h,
        &none,
    );
    let mut h = header(1000);
    h.parent = Some(small.sealed.message_id());
    add(
        "clip-neg-header-clip-with-parent",
        "A clip (kind 1) with a parent.",
        "decrypt_error",
        "§3.7 rule 5",
        h,
        &none,
    );
    let mut h = header(1000);
    h.media_type = "video/MP4".into();
    add(
        "clip-neg-header-media-type",
        "Media type video/MP4: upper case is not allowed.",
        "decrypt_error",
        "§3.7 rule 6",
        h,
        &none,
    );
    add(
        "clip-neg-manifest-expires-at",
        "The manifest's expires_at is 1 ms later than the header's.",
        "decrypt_error",
        "§10 step 5",
        header(1000),
        &|r| r.expires_at += 1,
    );
    add(
        "clip-neg-manifest-padded-len",
        "The manifest's padded_len is 67584, the Padmé value after padded_len(1000) = 65536; the chunk is 67584 bytes.",
        "decrypt_error",
        "§10 step 5",
        header(1000),
        &|r| {
            r.padded_len = 67_584;
            r.plain.resize(67_584, 0);
        },
    );
    let mut h = header(1000);
    h.created_at = NOW.plus(MAX_CLOCK_SKEW_MS + 1);
    h.expires_at = h.created_at.plus(DEFAULT_CLIP_TTL_MS);
    add(
        "clip-neg-created-in-future",
        "created_at is MAX_CLOCK_SKEW_MS + 1 ms after now.",
        "other_error",
        "§10 step 6",
        h,
        &none,
    );
    add(
        "clip-neg-chunk-padding",
        "A padding byte of the chunk (offset 5000, after 1000 content bytes) is 1.",
        "decrypt_error",
        "§10 step 7.3",
        header(1000),
        &|r| r.plain[5000] = 1,
    );
    add(
        "clip-neg-final-flag",
        "The only chunk is encrypted with final flag 0, and the manifest names it.",
        "decrypt_error",
        "§10 step 7.2",
        header(1000),
        &|r| r.final_flag = false,
    );
    add(
        "clip-neg-substituted-chunk",
        "The chunk is replaced by other plaintext encrypted under the right payload key and nonce, as another recipient could: it authenticates, but its hash is not the manifest's.",
        "decrypt_error",
        "§10 step 7.1",
        header(1000),
        &|r| {
            let mut other = pattern(1000, 6);
            other.resize(r.plain.len(), 0);
            r.delivered = Some(r.encrypt(&other));
        },
    );
    out
}

// --- Live segments (LIVE.md) -------------------------------------------------

/// A live segment built field by field (LIVE.md §4.2), as its broadcaster
/// could build it: every field is whatever the case needs, the plaintext is
/// sealed under the epoch key with this head as the AAD (LIVE.md §5), and the
/// whole is signed by the key the case names.
#[derive(Clone)]
struct RawSegment {
    ty: u8,
    version: u8,
    broadcast_id: [u8; 32],
    certificate: Vec<u8>,
    epoch: u32,
    seq: u64,
    flags: u8,
    produced_at: u64,
    duration_ms: u32,
}

/// Offsets in a segment (LIVE.md §4.2).
const SEGMENT_HEAD_LEN: usize = 205;
const SEGMENT_PRODUCED_AT: usize = 193;
const SEGMENT_CERT_SERIAL: usize = 2 + 32 + 2 + 32 + 32;

impl RawSegment {
    fn of(seg: &live::Segment) -> Self {
        RawSegment {
            ty: 0x0a,
            version: 0x01,
            broadcast_id: seg.broadcast_id().0,
            certificate: seg.certificate().to_bytes(),
            epoch: seg.epoch(),
            seq: seg.seq(),
            flags: seg.flags(),
            produced_at: seg.produced_at().0,
            duration_ms: seg.duration_ms(),
        }
    }

    fn head(&self) -> Vec<u8> {
        let mut b = vec![self.ty, self.version];
        b.extend_from_slice(&self.broadcast_id);
        b.extend_from_slice(&self.certificate);
        b.extend_from_slice(&self.epoch.to_be_bytes());
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.push(self.flags);
        b.extend_from_slice(&self.produced_at.to_be_bytes());
        b.extend_from_slice(&self.duration_ms.to_be_bytes());
        b
    }

    /// `plaintext` sealed under the segment key of `key` with this head,
    /// signed by `signer`.
    fn seal(&self, key: &live::EpochKey, plaintext: &[u8], signer: &SigningSecret) -> Vec<u8> {
        let head = self.head();
        let mut material = key.as_bytes().to_vec();
        material.extend_from_slice(&self.broadcast_id);
        let segment_key = blake3::derive_key(live::CTX_LIVE_SEGMENT_KEY, &material);
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.seq.to_be_bytes());
        let ct = aead_seal_aad(&segment_key, nonce, &head, plaintext);
        self.sign(&ct, signer)
    }

    /// This head and `ciphertext` as it is, signed by `signer`.
    fn sign(&self, ciphertext: &[u8], signer: &SigningSecret) -> Vec<u8> {
        let mut b = self.head();
        b.extend_from_slice(&(ciphertext.len() as u32).to_be_bytes());
        b.extend_from_slice(ciphertext);
        signed(signer, live::LIVE_SEGMENT_CONTEXT, b)
    }
}

/// A segment's plaintext (LIVE.md §4.1): `init_len ‖ init ‖ media`.
fn live_plaintext(init: &[u8], media: &[u8]) -> Vec<u8> {
    let mut p = (init.len() as u32).to_be_bytes().to_vec();
    p.extend_from_slice(init);
    p.extend_from_slice(media);
    p
}

/// The bytes of a segment before its signature, signed again by `signer`.
fn resign_segment(bytes: &[u8], signer: &SigningSecret) -> Vec<u8> {
    signed(
        signer,
        live::LIVE_SEGMENT_CONTEXT,
        bytes[..bytes.len() - 64].to_vec(),
    )
}

fn random32(rng: &mut ChaCha20Rng) -> [u8; 32] {
    let mut b = [0u8; 32];
    rand_core::Rng::fill_bytes(rng, &mut b);
    b
}

fn live_open_case(
    name: &str,
    d: &str,
    segment: &[u8],
    key: &live::EpochKey,
    plain: Option<(&[u8], &[u8])>,
) -> Case {
    let mut input = json!({
        "segment": hex(segment),
        "epoch_key": hex(key.as_bytes()),
    });
    if let Some((init, media)) = plain {
        input["init"] = json!(hex(init));
        input["media"] = json!(hex(media));
    }
    case(
        name,
        d,
        "live_open",
        if plain.is_some() {
            "ok"
        } else {
            "decrypt_error"
        },
        input,
    )
}

/// The rule of a gate refusal (LIVE.md §6), by its outcome name.
pub fn live_gate_rule(outcome: &str) -> Option<&'static str> {
    match outcome {
        "accepted" => None,
        "other_broadcast" => Some("LIVE.md §6 step 4"),
        "wrong_signer" => Some("LIVE.md §6 step 5"),
        "from_the_future" | "expired" => Some("LIVE.md §6 step 6"),
        "after_end" => Some("LIVE.md §6 step 7"),
        "duplicate" | "stale" => Some("LIVE.md §6 step 8"),
        other => panic!("unknown gate outcome {other}"),
    }
}

fn gate_step(segment: &[u8], now: u64, outcome: &str) -> Value {
    let mut s = json!({ "segment": hex(segment), "now": now, "outcome": outcome });
    if let Some(rule) = live_gate_rule(outcome) {
        s["rule"] = json!(rule);
    }
    s
}

fn live_gate_case(
    name: &str,
    d: &str,
    id: &live::BroadcastId,
    broadcaster: &SigningPublicKey,
    min_serial: u64,
    steps: Vec<Value>,
) -> Case {
    case(
        name,
        d,
        "live_gate",
        "ok",
        json!({
            "broadcast_id": hex(&id.0),
            "broadcaster_identity_key": hex(&broadcaster.to_bytes()),
            "min_serial": min_serial,
            "steps": steps,
        }),
    )
}

/// The live segment vectors: `decode:live_segment` (LIVE.md §4.2, §6 steps
/// 1–3), `live_open` (§7) and `live_gate` (§6 steps 4–8). Alice broadcasts
/// from her device. Everything random is drawn from its own generator, so
/// the vectors before these stay as they were.
fn live_cases(identity: &Identity, device: &Device, other: &Device, out: &mut Vec<Case>) {
    use live::{BroadcastId, EpochKey, FLAG_END, FLAG_KEYFRAME, SegmentSealer};
    let mut rng = ChaCha20Rng::from_seed(blake3::derive_key("mayfly test vectors v1 live", &SEED));
    let id = BroadcastId(random32(&mut rng));
    let k0 = EpochKey::from_bytes(random32(&mut rng));
    let k1 = EpochKey::from_bytes(random32(&mut rng));
    let dev = device.secret();

    // Three segments: a keyframe and a plain one under epoch 0, then a
    // keyframe that ends the broadcast under epoch 1.
    let init = pattern(48, 0x11);
    let media = [pattern(300, 0x21), pattern(200, 0x22), pattern(100, 0x23)];
    let mut sealer = SegmentSealer::new(device.clone(), id, k0.clone());
    let s0 = sealer
        .seal(true, false, &init, &media[0], 1000, NOW)
        .expect("seals");
    let s1 = sealer
        .seal(false, false, &[], &media[1], 1000, NOW.plus(1000))
        .expect("seals");
    assert_eq!(sealer.rotate(k1.clone()).expect("epoch 1"), 1);
    let s2 = sealer
        .seal(true, true, &init, &media[2], 500, NOW.plus(2000))
        .expect("seals");
    let (b0, b1, b2) = (s0.to_bytes(), s1.to_bytes(), s2.to_bytes());
    let p0 = live_plaintext(&init, &media[0]);
    let p1 = live_plaintext(&[], &media[1]);
    // The field-by-field builder that makes the negative vectors seals
    // exactly as the sealer does.
    assert_eq!(RawSegment::of(&s0).seal(&k0, &p0, dev), b0);
    assert_eq!(RawSegment::of(&s1).seal(&k0, &p1, dev), b1);
    assert_eq!(
        RawSegment::of(&s2).seal(&k1, &live_plaintext(&init, &media[2]), dev),
        b2
    );

    let decode =
        |name: &str, d: &str, bytes: &[u8]| decode_case(name, d, "live_segment", "ok", bytes);
    out.push(decode(
        "live-segment-keyframe",
        "Alice's first segment (seq 0, epoch 0): a keyframe (flags 0x01) with a 48-byte init part and 300 bytes of media.",
        &b0,
    ));
    out.push(decode(
        "live-segment",
        "Alice's second segment (seq 1, epoch 0, flags 0x00): 200 bytes of media and no init part.",
        &b1,
    ));
    out.push(decode(
        "live-segment-end",
        "Alice's third segment (seq 2, epoch 1): a keyframe that ends the broadcast (flags 0x03), lasting 500 ms.",
        &b2,
    ));

    // LIVE.md §6 step 1: each breaks one rule of the layout. Whatever is
    // changed in the head is sealed again under the right key (the head is
    // the AAD) and signed again by alice's device.
    let raw0 = RawSegment::of(&s0);
    let step1 = "LIVE.md §6 step 1";
    let mut r = raw0.clone();
    r.ty = 0x0b;
    out.push(neg_decode(
        "live-segment-neg-type",
        "Type byte 0x0b, sealed and signed by alice's device.",
        "live_segment",
        step1,
        &r.seal(&k0, &p0, dev),
    ));
    let mut r = raw0.clone();
    r.version = 2;
    out.push(neg_decode(
        "live-segment-neg-version",
        "Version byte 2, sealed and signed by alice's device.",
        "live_segment",
        step1,
        &r.seal(&k0, &p0, dev),
    ));
    let mut r = raw0.clone();
    r.flags = FLAG_KEYFRAME | 0x04;
    out.push(neg_decode(
        "live-segment-neg-unknown-flag",
        "Flags 0x05: the keyframe bit and the unknown bit 0x04, sealed and signed by alice's device.",
        "live_segment",
        step1,
        &r.seal(&k0, &p0, dev),
    ));
    let mut r = raw0.clone();
    r.duration_ms = MAX_LIVE_SEGMENT_DURATION_MS + 1;
    out.push(neg_decode(
        "live-segment-neg-duration",
        "duration_ms 10001 (the limit is 10000), sealed and signed by alice's device.",
        "live_segment",
        step1,
        &r.seal(&k0, &p0, dev),
    ));
    out.push(neg_decode(
        "live-segment-neg-ciphertext-too-short",
        "ct_len 19: three bytes of plaintext (too few for init_len) and the tag, sealed under the right key and signed by alice's device. The least is 20.",
        "live_segment",
        step1,
        &RawSegment::of(&s1).seal(&k0, &[0, 0, 0], dev),
    ));
    out.push(neg_decode(
        "live-segment-neg-trailing-byte",
        "A byte after the signature of live-segment-keyframe.",
        "live_segment",
        step1,
        &[b0.clone(), vec![0]].concat(),
    ));
    out.push(neg_decode(
        "live-segment-neg-truncated",
        "live-segment-keyframe without the last byte of its signature.",
        "live_segment",
        step1,
        &b0[..b0.len() - 1],
    ));

    // LIVE.md §6 step 2: the certificate alone is invalid; the segment is
    // sealed and signed by the device key it names.
    let mut r = RawSegment::of(&s1);
    let at = SEGMENT_CERT_SERIAL - 34;
    r.certificate[at..at + 8].copy_from_slice(&2u64.to_be_bytes());
    out.push(neg_decode(
        "live-segment-neg-certificate-serial",
        "The certificate's serial changed from 1 to 2 (as a superseded device might claim), and the segment sealed and signed again by alice's device: only the certificate's signature fails.",
        "live_segment",
        "LIVE.md §6 step 2",
        &r.seal(&k0, &p1, dev),
    ));
    // A certificate, validly signed by alice's identity, for the neutral
    // point as the device key. Its discrete log is 0, so [s]B ‖ s signs
    // anything under it: the segment signature verifies, and only the
    // certificate's key check fails.
    let mut cert = vec![0x01, 0x01];
    cert.extend_from_slice(&identity.public().to_bytes());
    cert.extend_from_slice(&IDENTITY_POINT);
    cert.extend_from_slice(&1u64.to_be_bytes());
    cert.extend_from_slice(&NOW.0.to_be_bytes());
    let mut r = RawSegment::of(&s1);
    r.certificate = signed(identity.secret(), "mayfly/v1/device-certificate", cert);
    let mut neutral = r.seal(&k0, &p1, dev);
    neutral.truncate(neutral.len() - 64);
    let s = curve25519_dalek::Scalar::from_bytes_mod_order([0x2b; 32]);
    neutral.extend_from_slice(
        curve25519_dalek::EdwardsPoint::mul_base(&s)
            .compress()
            .as_bytes(),
    );
    neutral.extend_from_slice(s.as_bytes());
    out.push(neg_decode(
        "live-segment-neg-certificate-small-order-device-key",
        "A certificate validly signed by alice's identity whose device key is the neutral point (small order), and a segment signature that verifies under that key.",
        "live_segment",
        "LIVE.md §6 step 2",
        &neutral,
    ));

    // LIVE.md §6 step 3: only the segment's signature fails.
    let mut bad_sig = b1.clone();
    let n = bad_sig.len();
    bad_sig[n - 32] ^= 1;
    assert!(s_below_l(&bad_sig[n - 32..]), "S stays < L");
    out.push(neg_decode(
        "live-segment-neg-signature",
        "live-segment with the lowest bit of the signature's S flipped (S stays below L): the verification equation fails.",
        "live_segment",
        "LIVE.md §6 step 3",
        &bad_sig,
    ));
    let mut later = b1.clone();
    later[SEGMENT_PRODUCED_AT..SEGMENT_PRODUCED_AT + 8]
        .copy_from_slice(&NOW.plus(2000).0.to_be_bytes());
    out.push(neg_decode(
        "live-segment-neg-produced-at",
        "live-segment with produced_at moved 1 s later after signing, as a forwarder might to make it look fresh.",
        "live_segment",
        "LIVE.md §6 step 3",
        &later,
    ));
    out.push(neg_decode(
        "live-segment-neg-other-device",
        "A segment carrying alice's certificate, sealed under the right key but signed by carol's device key, as a viewer holding the epoch key might forge it.",
        "live_segment",
        "LIVE.md §6 step 3",
        &RawSegment::of(&s1).seal(&k0, &p1, other.secret()),
    ));

    // LIVE.md §7: opening. Every segment is valid (§6 steps 1–3 pass).
    out.push(live_open_case(
        "live-open-keyframe",
        "live-segment-keyframe opened with the key of epoch 0: the init part and the media part.",
        &b0,
        &k0,
        Some((&init, &media[0])),
    ));
    out.push(live_open_case(
        "live-open",
        "live-segment opened with the key of epoch 0: an empty init part and the media part.",
        &b1,
        &k0,
        Some((&[], &media[1])),
    ));
    out.push(live_open_case(
        "live-open-end",
        "live-segment-end opened with the key of epoch 1.",
        &b2,
        &k1,
        Some((&init, &media[2])),
    ));
    let step2 = "LIVE.md §7 step 2";
    let step3 = "LIVE.md §7 step 3";
    let neg_open = |name: &str, d: &str, rule: &str, segment: &[u8], key: &EpochKey| {
        with_rule(live_open_case(name, d, segment, key, None), rule)
    };
    out.push(neg_open(
        "live-open-neg-wrong-epoch-key",
        "live-segment-keyframe (epoch 0) with the key of epoch 1.",
        step2,
        &b0,
        &k1,
    ));
    let mut flipped = b1.clone();
    flipped[SEGMENT_HEAD_LEN + 4 + 10] ^= 0x01;
    out.push(neg_open(
        "live-open-neg-ciphertext-bit-flip",
        "live-segment with one bit of its ciphertext flipped, signed again by alice's device: the signature verifies, the tag does not.",
        step2,
        &resign_segment(&flipped, dev),
        &k0,
    ));
    let mut r = RawSegment::of(&s1);
    r.produced_at += 1000;
    out.push(neg_open(
        "live-open-neg-head-resigned",
        "live-segment's ciphertext under a head whose produced_at is 1 s later, signed by alice's device: the AAD is not the head it was sealed with.",
        step2,
        &r.sign(&b1[SEGMENT_HEAD_LEN + 4..b1.len() - 64], dev),
        &k0,
    ));
    let mut r = RawSegment::of(&s1);
    r.flags = FLAG_KEYFRAME;
    out.push(neg_open(
        "live-open-neg-keyframe-without-init",
        "Flagged keyframe, but init_len is 0; sealed under the right key and signed by alice's device.",
        step3,
        &r.seal(&k0, &p1, dev),
        &k0,
    ));
    out.push(neg_open(
        "live-open-neg-init-without-keyframe",
        "Not flagged keyframe, but it carries a 48-byte init part; sealed under the right key and signed by alice's device.",
        step3,
        &RawSegment::of(&s1).seal(&k0, &live_plaintext(&init, &media[1]), dev),
        &k0,
    ));
    let mut past = p0.clone();
    past[..4].copy_from_slice(&((init.len() + media[0].len() + 1) as u32).to_be_bytes());
    out.push(neg_open(
        "live-open-neg-init-len-past-end",
        "A keyframe whose init_len (349) is one more than the bytes that follow it; sealed under the right key and signed by alice's device.",
        step3,
        &raw0.seal(&k0, &past, dev),
        &k0,
    ));
    out.push(neg_open(
        "live-open-neg-init-too-long",
        "A keyframe whose init part is 65537 bytes (MAX_INIT_LEN + 1), followed by 300 bytes of media; sealed under the right key and signed by alice's device.",
        step3,
        &raw0.seal(
            &k0,
            &live_plaintext(&pattern(live::MAX_INIT_LEN + 1, 0x31), &media[0]),
            dev,
        ),
        &k0,
    ));

    // LIVE.md §6 steps 4–8: a gate for alice's broadcast. Each segment is
    // valid; `at(seq, flags, produced_at, device, broadcast)` seals one.
    let at = |seq: u64, flags: u8, produced_at: UnixMillis, by: &Device, bid: &BroadcastId| {
        let r = RawSegment {
            ty: 0x0a,
            version: 0x01,
            broadcast_id: bid.0,
            certificate: by.certificate().to_bytes(),
            epoch: 0,
            seq,
            flags,
            produced_at: produced_at.0,
            duration_ms: 1000,
        };
        let part: &[u8] = if flags & FLAG_KEYFRAME != 0 {
            &init
        } else {
            &[]
        };
        r.seal(
            &k0,
            &live_plaintext(part, &pattern(16, seq as u8)),
            by.secret(),
        )
    };
    let seg = |seq: u64| at(seq, 0, NOW.plus(seq * 1000), device, &id);
    let alice_id = identity.public();

    let t = NOW.0 + 1_000_000;
    let steps = [
        (0, "accepted"),
        (0, "duplicate"),
        (2, "accepted"),
        (1, "accepted"),
        (1, "duplicate"),
        (70, "accepted"),
        (2, "duplicate"),
        (3, "accepted"),
        (200, "accepted"),
        (0, "duplicate"),
        (256, "accepted"),
        (0, "stale"),
        (1, "duplicate"),
        (4, "accepted"),
        (4, "duplicate"),
        (600, "accepted"),
        (344, "stale"),
        (345, "accepted"),
        (256, "stale"),
    ]
    .iter()
    .map(|&(seq, outcome)| gate_step(&seg(seq), t, outcome))
    .collect();
    out.push(live_gate_case(
        "live-gate-replay-window",
        "Sequence numbers out of order: each is accepted once while it is less than 256 below the highest accepted, a duplicate after that, and stale once it is 256 or more below, whether or not it was accepted before. The highest moves up by 2, 68, 130, 56 and 344.",
        &id,
        &alice_id,
        1,
        steps,
    ));

    let (p, q) = (NOW, NOW.plus(1000));
    out.push(live_gate_case(
        "live-gate-time",
        "Seq 0, produced at T, at T - MAX_CLOCK_SKEW_MS - 1 (from the future) and at T - MAX_CLOCK_SKEW_MS (accepted); seq 1, produced at U, at U + MAX_LIVE_TTL_MS + 1 (expired) and at U + MAX_LIVE_TTL_MS (accepted). A refused segment is not recorded.",
        &id,
        &alice_id,
        1,
        vec![
            gate_step(&seg(0), p.0 - MAX_CLOCK_SKEW_MS - 1, "from_the_future"),
            gate_step(&seg(0), p.0 - MAX_CLOCK_SKEW_MS, "accepted"),
            gate_step(&seg(1), q.0 + MAX_LIVE_TTL_MS + 1, "expired"),
            gate_step(&seg(1), q.0 + MAX_LIVE_TTL_MS, "accepted"),
        ],
    ));

    let other_id = BroadcastId(random32(&mut rng));
    let newer = identity.new_device(2, NOW, &mut rng);
    let t = NOW.0 + 10_000;
    let by = |seq: u64, d: &Device| at(seq, 0, NOW.plus(seq * 1000), d, &id);
    out.push(live_gate_case(
        "live-gate-broadcaster",
        "A gate for alice's broadcast, her current serial 1: a segment of another broadcast by her device, one signed by carol's device (carol's certificate), then one from alice's new device (serial 2), which is adopted, so her old device's next segment is refused.",
        &id,
        &alice_id,
        1,
        vec![
            gate_step(&seg(0), t, "accepted"),
            gate_step(
                &at(1, 0, NOW.plus(1000), device, &other_id),
                t,
                "other_broadcast",
            ),
            gate_step(&by(1, other), t, "wrong_signer"),
            gate_step(&by(1, &newer), t, "accepted"),
            gate_step(&by(2, device), t, "wrong_signer"),
            gate_step(&by(2, &newer), t, "accepted"),
        ],
    ));

    let end = |seq: u64| at(seq, FLAG_END, NOW.plus(seq * 1000), device, &id);
    out.push(live_gate_case(
        "live-gate-end",
        "Seq 2 is flagged end: seq 3 and a later segment flagged end are refused, seq 1 is still accepted, and seq 2 again is a duplicate.",
        &id,
        &alice_id,
        1,
        vec![
            gate_step(&seg(0), t, "accepted"),
            gate_step(&end(2), t, "accepted"),
            gate_step(&seg(3), t, "after_end"),
            gate_step(&seg(1), t, "accepted"),
            gate_step(&end(2), t, "duplicate"),
            gate_step(&end(4), t, "after_end"),
        ],
    ));
}

// --- Live chat (LIVE.md §12) ------------------------------------------------

/// The plaintext of a chat message (LIVE.md §12.1), built field by field:
/// `kind ‖ sent_at ‖ token ‖ text (string16) ‖ signed`, then, when
/// `signer` is given, its certificate and a signature over `head` and
/// everything before it. `text` is raw bytes, so a case can break UTF-8.
fn chat_plaintext(
    head: &[u8],
    kind: u8,
    sent_at: u64,
    token: [u8; 16],
    text: &[u8],
    signer: Option<(&[u8], &SigningSecret)>,
    signed_byte: u8,
) -> Vec<u8> {
    let mut p = vec![kind];
    p.extend_from_slice(&sent_at.to_be_bytes());
    p.extend_from_slice(&token);
    p.extend_from_slice(&(text.len() as u16).to_be_bytes());
    p.extend_from_slice(text);
    p.push(signed_byte);
    if let Some((cert, secret)) = signer {
        p.extend_from_slice(cert);
        let sig = secret.sign(live::chat::LIVE_CHAT_CONTEXT, &[head, &p[..]].concat());
        p.extend_from_slice(&sig);
    }
    p
}

/// A chat message's head (LIVE.md §12.2).
fn chat_head(ty: u8, version: u8, id: &[u8; 32], epoch: u32, salt: &[u8; 32]) -> Vec<u8> {
    let mut h = vec![ty, version];
    h.extend_from_slice(id);
    h.extend_from_slice(&epoch.to_be_bytes());
    h.extend_from_slice(salt);
    h
}

/// `plaintext` sealed under the chat key of `key` with `head` as the AAD,
/// framed as a message (LIVE.md §12.3).
fn chat_seal(head: &[u8], key: &live::EpochKey, plaintext: &[u8]) -> Vec<u8> {
    let mut material = key.as_bytes().to_vec();
    material.extend_from_slice(&head[2..34]);
    material.extend_from_slice(&head[38..70]);
    let chat_key = blake3::derive_key(live::chat::CTX_LIVE_CHAT_KEY, &material);
    let ct = aead_seal_aad(&chat_key, [0; 12], head, plaintext);
    let mut b = head.to_vec();
    b.extend_from_slice(&(ct.len() as u32).to_be_bytes());
    b.extend_from_slice(&ct);
    b
}

fn live_chat_open_case(
    name: &str,
    d: &str,
    message: &[u8],
    key: &live::EpochKey,
    opened: Option<Value>,
) -> Case {
    let mut input = json!({ "message": hex(message), "epoch_key": hex(key.as_bytes()) });
    let expected = if opened.is_some() {
        "ok"
    } else {
        "decrypt_error"
    };
    if let Some(o) = opened {
        input["opened"] = o;
    }
    case(name, d, "live_chat_open", expected, input)
}

/// The live chat vectors: `decode:live_chat` (LIVE.md §12.2, §12.4 step 1)
/// and `live_chat_open` (§12.4 steps 4–5). Carol comments on a broadcast;
/// an anonymous viewer joins. Random values come from their own generator.
fn live_chat_cases(broadcaster: &Device, viewer: &Device, out: &mut Vec<Case>) {
    use live::chat::{ChatBody, ChatKind, ChatMessage};
    let mut rng = ChaCha20Rng::from_seed(blake3::derive_key(
        "mayfly test vectors v1 live chat",
        &SEED,
    ));
    let id = random32(&mut rng);
    let key = live::EpochKey::from_bytes(random32(&mut rng));
    let other_key = live::EpochKey::from_bytes(random32(&mut rng));
    let salts: Vec<[u8; 32]> = (0..24).map(|_| random32(&mut rng)).collect();
    let token = {
        let mut t = [0u8; 16];
        t.copy_from_slice(&random32(&mut rng)[..16]);
        t
    };
    let anon_token = {
        let mut t = [0u8; 16];
        t.copy_from_slice(&random32(&mut rng)[..16]);
        t
    };
    let epoch = 2;
    let cert = viewer.certificate().to_bytes();
    let dev = viewer.secret();
    let text = "Hello from the front row 👋";
    let comment_body = ChatBody {
        kind: ChatKind::Comment,
        sent_at: NOW,
        token,
        text: text.into(),
    };
    let comment = ChatMessage::seal(
        live::BroadcastId(id),
        epoch,
        &key,
        salts[0],
        &comment_body,
        Some(viewer),
    )
    .expect("seals")
    .to_bytes();
    // The field-by-field builder seals exactly as the sealer does.
    let h0 = chat_head(0x0b, 1, &id, epoch, &salts[0]);
    let built = |head: &[u8], kind: u8, text: &[u8], signer: bool, signed_byte: u8| {
        chat_plaintext(
            head,
            kind,
            NOW.0,
            token,
            text,
            signer.then_some((&cert[..], dev)),
            signed_byte,
        )
    };
    assert_eq!(
        chat_seal(&h0, &key, &built(&h0, 3, text.as_bytes(), true, 1)),
        comment
    );
    let join_body = ChatBody {
        kind: ChatKind::Join,
        sent_at: NOW,
        token: anon_token,
        text: String::new(),
    };
    let join = ChatMessage::seal(
        live::BroadcastId(id),
        epoch,
        &key,
        salts[1],
        &join_body,
        None,
    )
    .expect("seals")
    .to_bytes();
    let leave_body = ChatBody {
        kind: ChatKind::Leave,
        sent_at: NOW.plus(45_000),
        token,
        text: String::new(),
    };
    let leave = ChatMessage::seal(
        live::BroadcastId(id),
        epoch,
        &key,
        salts[2],
        &leave_body,
        Some(viewer),
    )
    .expect("seals")
    .to_bytes();

    let decode = |name: &str, d: &str, b: &[u8]| decode_case(name, d, "live_chat", "ok", b);
    out.push(decode(
        "live-chat-comment",
        "Carol's comment on a broadcast, sealed under the key of epoch 2 and signed by her device.",
        &comment,
    ));
    out.push(decode(
        "live-chat-anonymous-join",
        "An anonymous viewer's join (no signature) under the key of epoch 2.",
        &join,
    ));
    let step1 = "LIVE.md §12.4 step 1";
    let neg = |name: &str, d: &str, b: &[u8]| neg_decode(name, d, "live_chat", step1, b);
    let h = chat_head(0x0a, 1, &id, epoch, &salts[3]);
    out.push(neg(
        "live-chat-neg-type",
        "A comment whose type byte is 0x0a (a segment's), sealed with that head.",
        &chat_seal(&h, &key, &built(&h, 3, b"hi", true, 1)),
    ));
    let h = chat_head(0x0b, 2, &id, epoch, &salts[4]);
    out.push(neg(
        "live-chat-neg-version",
        "A comment whose version byte is 2, sealed with that head.",
        &chat_seal(&h, &key, &built(&h, 3, b"hi", true, 1)),
    ));
    let mut short = h0.clone();
    short.extend_from_slice(&43u32.to_be_bytes());
    short.extend_from_slice(&pattern(43, 0x31));
    out.push(neg(
        "live-chat-neg-ciphertext-too-short",
        "A message whose ciphertext is 43 bytes: the shortest plaintext (28 bytes) and its tag make 44.",
        &short,
    ));
    let mut long = h0.clone();
    long.extend_from_slice(&755u32.to_be_bytes());
    long.extend_from_slice(&pattern(755, 0x32));
    out.push(neg(
        "live-chat-neg-ciphertext-too-long",
        "A message whose ciphertext is 755 bytes: the longest plaintext (738 bytes) and its tag make 754.",
        &long,
    ));
    let mut trailing = comment.clone();
    trailing.push(0);
    out.push(neg(
        "live-chat-neg-trailing-byte",
        "live-chat-comment with one byte after it.",
        &trailing,
    ));
    out.push(neg(
        "live-chat-neg-truncated",
        "live-chat-comment without its last byte.",
        &comment[..comment.len() - 1],
    ));

    // §12.4 steps 4-5: opening.
    let opened = |b: &ChatBody, identity: Option<&Device>| {
        json!({
            "kind": match b.kind { ChatKind::Join => "join", ChatKind::Leave => "leave", _ => "comment" },
            "sent_at": b.sent_at.0,
            "token": hex(&b.token),
            "text": b.text,
            "identity_key": identity.map(|d| hex(&d.identity_key().to_bytes())),
            "device_key": identity.map(|d| hex(&d.certificate().device_key().to_bytes())),
        })
    };
    out.push(live_chat_open_case(
        "live-chat-open-comment",
        "live-chat-comment opened with the key of epoch 2: a comment signed by carol's device.",
        &comment,
        &key,
        Some(opened(&comment_body, Some(viewer))),
    ));
    out.push(live_chat_open_case(
        "live-chat-open-anonymous-join",
        "live-chat-anonymous-join opened: a join that names nobody.",
        &join,
        &key,
        Some(opened(&join_body, None)),
    ));
    out.push(live_chat_open_case(
        "live-chat-open-signed-leave",
        "Carol leaves, 45 s after her comment, under the same token, signed.",
        &leave,
        &key,
        Some(opened(&leave_body, Some(viewer))),
    ));
    let step4 = "LIVE.md §12.4 step 4";
    let step5 = "LIVE.md §12.4 step 5";
    let neg_open = |name: &str, d: &str, rule: &str, b: &[u8], k: &live::EpochKey| {
        with_rule(live_chat_open_case(name, d, b, k, None), rule)
    };
    out.push(neg_open(
        "live-chat-open-neg-wrong-key",
        "live-chat-comment opened with another epoch key.",
        step4,
        &comment,
        &other_key,
    ));
    let mut flipped = comment.clone();
    flipped[70 + 4 + 5] ^= 0x01;
    out.push(neg_open(
        "live-chat-open-neg-ciphertext-bit-flip",
        "live-chat-comment with one bit of its ciphertext flipped.",
        step4,
        &flipped,
        &key,
    ));
    let mut moved = comment.clone();
    moved[34..38].copy_from_slice(&3u32.to_be_bytes());
    out.push(neg_open(
        "live-chat-open-neg-head-epoch",
        "live-chat-comment with its epoch changed to 3 in the head (the AAD): it no longer opens.",
        step4,
        &moved,
        &key,
    ));
    let mut n = 5;
    let mut content = |name: &str, d: &str, plain: &dyn Fn(&[u8]) -> Vec<u8>| {
        let h = chat_head(0x0b, 1, &id, epoch, &salts[n]);
        n += 1;
        neg_open(name, d, step5, &chat_seal(&h, &key, &plain(&h)), &key)
    };
    out.push(content(
        "live-chat-open-neg-kind",
        "A signed message of kind 4.",
        &|h| built(h, 4, b"", true, 1),
    ));
    out.push(content(
        "live-chat-open-neg-unsigned-comment",
        "A comment with signed byte 0 and no signature: a comment is signed.",
        &|h| built(h, 3, b"hi", false, 0),
    ));
    out.push(content(
        "live-chat-open-neg-join-with-text",
        "A signed join carrying the text \"hi\": a join carries none.",
        &|h| built(h, 1, b"hi", true, 1),
    ));
    out.push(content(
        "live-chat-open-neg-empty-comment",
        "A signed comment with no text.",
        &|h| built(h, 3, b"", true, 1),
    ));
    out.push(content(
        "live-chat-open-neg-control-character",
        "A signed comment holding an ESC (0x1b) character.",
        &|h| built(h, 3, b"a\x1b[2Jb", true, 1),
    ));
    out.push(content(
        "live-chat-open-neg-invalid-utf8",
        "A signed comment whose text is the byte 0xff.",
        &|h| built(h, 3, &[0xff], true, 1),
    ));
    out.push(content(
        "live-chat-open-neg-signed-byte",
        "A join whose signed byte is 2.",
        &|h| built(h, 1, b"", false, 2),
    ));
    out.push(content(
        "live-chat-open-neg-trailing-byte",
        "An anonymous join with one byte after its signed byte.",
        &|h| {
            let mut p = built(h, 1, b"", false, 0);
            p.push(0);
            p
        },
    ));
    out.push(content(
        "live-chat-open-neg-signature",
        "A comment carrying carol's certificate, signed by the broadcaster's device.",
        &|h| {
            chat_plaintext(
                h,
                3,
                NOW.0,
                token,
                b"hi",
                Some((&cert[..], broadcaster.secret())),
                1,
            )
        },
    ));
    out.push(content(
        "live-chat-open-neg-signature-other-head",
        "A comment signed by carol's device over another head (epoch 3): the signature covers the head.",
        &|h| {
            let mut other = h.to_vec();
            other[34..38].copy_from_slice(&3u32.to_be_bytes());
            built(&other, 3, b"hi", true, 1)
        },
    ));
}
