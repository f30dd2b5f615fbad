//! Checks `spec/vectors/`: the files are exactly what the generator produces
//! from its fixed seed (a hex snapshot of every structure), and each one,
//! evaluated on its own through the public API, has its stated outcome.
//! Each negative vector names the one rule it breaks: the reference
//! implementation must fail it with the error of that rule, and an
//! independent reading of the spec (`independent/`), which runs every check
//! it can rather than stopping at the first, must find that rule and no
//! other.

mod independent;
mod vectors_gen;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use mayfly_protocol::codec::Codec;
use mayfly_protocol::live::chat::{Chat, ChatKind, ChatMessage};
use mayfly_protocol::live::{BroadcastId, EpochKey, Refusal, Segment, SegmentGate};
use mayfly_protocol::*;
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}

fn files() -> BTreeMap<String, String> {
    std::fs::read_dir(dir())
        .expect("spec/vectors exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_stem().expect("stem").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("readable"))
        })
        .collect()
}

#[test]
fn files_match_the_generator() {
    let on_disk = files();
    let generated: BTreeMap<String, String> = vectors_gen::generate()
        .iter()
        .map(|c| (c.name.clone(), vectors_gen::render(c)))
        .collect();
    assert_eq!(
        on_disk.keys().collect::<Vec<_>>(),
        generated.keys().collect::<Vec<_>>(),
        "vector file set differs; run `cargo run -p mayfly-protocol --example gen-vectors`"
    );
    for (name, text) in &generated {
        assert!(
            on_disk[name] == *text,
            "{name}.json differs from the generator; run `cargo run -p mayfly-protocol --example gen-vectors`"
        );
    }
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn arr32(v: &Value) -> [u8; 32] {
    unhex(v).try_into().expect("32 bytes")
}

fn class(e: &Error) -> &'static str {
    match e {
        Error::Decode(_) => "decode_error",
        Error::Decrypt => "decrypt_error",
        Error::Expired => "expired",
        _ => "other_error",
    }
}

/// Opens a clip vector the way a recipient would; returns the outcome class.
fn eval_clip(input: &Value) -> Result<(), Error> {
    let now = UnixMillis(input["now"].as_u64().expect("now"));
    let identity = SigningPublicKey::from_bytes(&arr32(&input["recipient_identity_key"]))?;
    let prekey = DhSecret::from_bytes(arr32(&input["recipient_prekey_secret"]));
    let envelope = Envelope::decode(&unhex(&input["envelope"]))?;
    let contents = envelope.open(&identity, &prekey)?;
    let manifest = Manifest::decode(&unhex(&input["manifest"]))?;
    let opener = contents.open_manifest(manifest, now)?;
    let ciphertext = unhex(&input["ciphertext"]);
    let mut plain = Vec::new();
    let header = open_reader(opener, &mut ciphertext.as_slice(), &mut plain)?;
    // Positive vectors state what must come out.
    if let Some(h) = input.get("plaintext_blake3") {
        assert_eq!(
            hex::encode(blake3::hash(&plain).as_bytes()),
            h.as_str().expect("hex")
        );
        assert_eq!(
            plain.len() as u64,
            input["plaintext_len"].as_u64().expect("len")
        );
        assert_eq!(
            hex::encode(contents.sender.identity_key().to_bytes()),
            input["sender_identity_key"].as_str().expect("hex")
        );
        assert_eq!(
            hex::encode(contents.message_id.0),
            input["message_id"].as_str().expect("hex")
        );
        assert_eq!(
            hex::encode(contents.content_key.as_bytes()),
            input["content_key"].as_str().expect("hex")
        );
        let h_json = &input["header"];
        assert_eq!(header.kind as u64, h_json["kind"].as_u64().expect("kind"));
        assert_eq!(
            header.expires_at.0,
            h_json["expires_at"].as_u64().expect("expires")
        );
        assert_eq!(
            header.media_type,
            h_json["media_type"].as_str().expect("mt")
        );
        if let Some(p) = input.get("plaintext") {
            assert_eq!(plain, unhex(p));
        }
    }
    Ok(())
}

fn eval_decode(ty: &str, input: &Value) -> Result<(), Error> {
    if ty == "contact_card_text" {
        let text = input["text"].as_str().expect("text");
        let card = ContactCard::from_text(text)?;
        assert_eq!(card.to_text(), text.trim());
        return Ok(());
    }
    if ty == "invite_text" {
        let text = input["text"].as_str().expect("text");
        let invite = Invite::from_text(text)?;
        assert_eq!(invite.to_text(), text.trim());
        return Ok(());
    }
    let bytes = unhex(&input["bytes"]);
    let reencoded = match ty {
        "control" => Control::decode(&bytes)?.to_bytes(),
        "invite" => Invite::decode(&bytes)?.to_bytes(),
        "device_certificate" => DeviceCertificate::decode(&bytes)?.to_bytes(),
        "prekey" => Prekey::decode(&bytes)?.to_bytes(),
        "prekey_bundle" => PrekeyBundle::decode(&bytes)?.to_bytes(),
        "contact_card" => ContactCard::decode(&bytes)?.to_bytes(),
        "manifest" => Manifest::decode(&bytes)?.to_bytes(),
        "envelope" => Envelope::decode(&bytes)?.to_bytes(),
        "revocation" => RevocationRecord::decode(&bytes)?.to_bytes(),
        "live_segment" => Segment::decode(&bytes)?.to_bytes(),
        "live_chat" => ChatMessage::decode(&bytes)?.to_bytes(),
        other => panic!("unknown decode type {other}"),
    };
    assert_eq!(reencoded, bytes, "a decoded vector re-encodes to itself");
    Ok(())
}

/// Decodes a live segment and opens it with the epoch key (LIVE.md §7).
fn eval_live_open(input: &Value) -> Result<(), Error> {
    let seg = Segment::decode(&unhex(&input["segment"]))?;
    let plain = seg.open(&EpochKey::from_bytes(arr32(&input["epoch_key"])))?;
    // Positive vectors state what must come out.
    if let Some(init) = input.get("init") {
        assert_eq!(plain.init, unhex(init));
        assert_eq!(plain.media, unhex(&input["media"]));
    }
    Ok(())
}

/// Decodes a chat message and opens it with the epoch key (LIVE.md §12.4
/// steps 1, 4 and 5).
fn eval_live_chat_open(input: &Value) -> Result<(), Error> {
    let m = ChatMessage::decode(&unhex(&input["message"]))?;
    let chat = m.open(&EpochKey::from_bytes(arr32(&input["epoch_key"])))?;
    if let Some(o) = input.get("opened") {
        assert_eq!(opened_json(&chat), *o);
    }
    Ok(())
}

/// An opened chat message in the vectors' `opened` form.
fn opened_json(chat: &Chat) -> Value {
    serde_json::json!({
        "kind": match chat.body.kind {
            ChatKind::Join => "join",
            ChatKind::Leave => "leave",
            _ => "comment",
        },
        "sent_at": chat.body.sent_at.0,
        "token": hex::encode(chat.body.token),
        "text": chat.body.text,
        "identity_key": chat.sender.as_ref().map(|c| hex::encode(c.identity_key().to_bytes())),
        "device_key": chat.sender.as_ref().map(|c| hex::encode(c.device_key().to_bytes())),
    })
}

/// Runs a `live_gate` case's steps on one `SegmentGate` (LIVE.md §6).
fn eval_live_gate(input: &Value) {
    let mut gate = SegmentGate::new(
        BroadcastId(arr32(&input["broadcast_id"])),
        SigningPublicKey::from_bytes(&arr32(&input["broadcaster_identity_key"]))
            .expect("broadcaster"),
        input["min_serial"].as_u64().expect("min_serial"),
    );
    for step in input["steps"].as_array().expect("steps") {
        let now = UnixMillis(step["now"].as_u64().expect("now"));
        let highest = gate.highest();
        let got = match gate.accept(&unhex(&step["segment"]), now) {
            Ok(_) => "accepted",
            Err(Refusal::OtherBroadcast) => "other_broadcast",
            Err(Refusal::WrongSigner) => "wrong_signer",
            Err(Refusal::FromTheFuture) => "from_the_future",
            Err(Refusal::Expired) => "expired",
            Err(Refusal::AfterEnd) => "after_end",
            Err(Refusal::Duplicate) => "duplicate",
            Err(Refusal::Stale) => "stale",
            Err(e) => panic!("unexpected refusal {e:?} at {step}"),
        };
        let want = step["outcome"].as_str().expect("outcome");
        assert_eq!(got, want, "{step}");
        // A refused step names its rule and records nothing.
        assert_eq!(
            step.get("rule").and_then(Value::as_str),
            vectors_gen::live_gate_rule(want),
            "{step}"
        );
        if want != "accepted" {
            assert_eq!(gate.highest(), highest, "{step}");
        }
    }
}

fn eval_ledger(input: &Value) {
    let mut ledger = match input.get("capacity") {
        Some(c) => RevocationLedger::new(c.as_u64().expect("capacity") as usize),
        None => RevocationLedger::default(),
    };
    for step in input["steps"].as_array().expect("steps") {
        let now = UnixMillis(step["now"].as_u64().expect("now"));
        match step["op"].as_str().expect("op") {
            "apply" => {
                let rec = RevocationRecord::decode(&unhex(&step["record"])).expect("valid record");
                let was_revoked = ledger.is_revoked(&rec.message_id());
                let len = ledger.len();
                let got = match ledger.apply(&rec, now) {
                    Ok(Applied::Revoked) => "revoked",
                    Ok(Applied::AlreadyRevoked) => "already_revoked",
                    Err(Error::FromTheFuture) => "from_the_future",
                    Err(Error::Full(_)) => "full",
                    Err(e) => panic!("unexpected ledger error {e:?}"),
                };
                let want = step["outcome"].as_str().expect("outcome");
                assert_eq!(got, want, "{step}");
                // A failed step names its rule and leaves the ledger unchanged.
                if want == "from_the_future" || want == "full" {
                    let rule = step["rule"]
                        .as_str()
                        .expect("a failing step names its rule");
                    assert_eq!(
                        rule,
                        if want == "full" {
                            "§11 step 3"
                        } else {
                            "§11 step 1"
                        }
                    );
                    assert_eq!(ledger.is_revoked(&rec.message_id()), was_revoked);
                    assert_eq!(ledger.len(), len);
                } else {
                    assert!(step.get("rule").is_none());
                    assert!(ledger.is_revoked(&rec.message_id()));
                }
            }
            "collect" => {
                assert_eq!(
                    ledger.collect(now) as u64,
                    step["outcome"].as_u64().expect("n")
                );
            }
            other => panic!("unknown op {other}"),
        }
    }
}

#[test]
fn every_vector_has_its_stated_outcome() {
    let all = files();
    assert!(
        all.len() >= 40,
        "expected the full vector set, found {}",
        all.len()
    );
    let mut negatives = 0;
    for (name, text) in &all {
        let v: Value = serde_json::from_str(text).expect("json");
        let kind = v["kind"].as_str().expect("kind");
        let expected = v["expected"].as_str().expect("expected");
        let input = &v["input"];
        if expected != "ok" {
            negatives += 1;
        }
        let outcome = match kind {
            "clip" => eval_clip(input),
            k if k.starts_with("decode:") => eval_decode(&k["decode:".len()..], input),
            "revocation_ledger" => {
                eval_ledger(input);
                Ok(())
            }
            "live_open" => eval_live_open(input),
            "live_chat_open" => eval_live_chat_open(input),
            "live_gate" => {
                eval_live_gate(input);
                Ok(())
            }
            "prekey_bundle_verify" => (|| {
                let bundle = PrekeyBundle::decode(&unhex(&input["bundle"]))?;
                let id = SigningPublicKey::from_bytes(&arr32(&input["identity_key"]))?;
                let now = UnixMillis(input["now"].as_u64().expect("now"));
                let r = bundle.verify(&id, now)?;
                assert_eq!(
                    hex::encode(r.prekey.as_bytes()),
                    input["chosen_prekey"].as_str().expect("hex"),
                    "{name}"
                );
                Ok(())
            })(),
            "padding" => {
                for pair in input["pairs"].as_array().expect("pairs") {
                    let l = pair[0].as_u64().expect("len");
                    assert_eq!(
                        padding::padded_len(l),
                        pair[1].as_u64().expect("padded"),
                        "{name}"
                    );
                }
                Ok(())
            }
            "safety_number" => {
                let a = SigningPublicKey::from_bytes(&arr32(&input["a"])).expect("a");
                let b = SigningPublicKey::from_bytes(&arr32(&input["b"])).expect("b");
                let want = input["safety_number"].as_str().expect("sn");
                assert_eq!(safety_number(&a, &b), want);
                assert_eq!(safety_number(&b, &a), want);
                Ok(())
            }
            other => panic!("{name}: unknown kind {other}"),
        };
        let got = match &outcome {
            Ok(()) => "ok",
            Err(e) => class(e),
        };
        assert_eq!(got, expected, "{name}: {outcome:?}");
    }
    assert!(
        negatives >= 25,
        "expected negative vectors, found {negatives}"
    );
}

/// Every negative vector: the rule it breaks (as its file says) and the
/// error the reference implementation reports for it (`Debug` form). A
/// decryption failure carries no detail by design (§9.3, §10); for those the
/// independent reader tells which step failed.
const NEGATIVE: &[(&str, &str, &str)] = &[
    ("clip-neg-chunk-bit-flip", "§10 step 7.2", "Decrypt"),
    ("clip-neg-chunk-padding", "§10 step 7.3", "Decrypt"),
    ("clip-neg-commitment", "§10 step 3", "Decrypt"),
    ("clip-neg-created-in-future", "§10 step 6", "FromTheFuture"),
    ("clip-neg-duplicated-chunk", "§10 step 7.2", "Decrypt"),
    ("clip-neg-envelope-bit-flip", "§9.3 step 4", "Decrypt"),
    ("clip-neg-envelope-message-id", "§10 step 2", "Decrypt"),
    ("clip-neg-expired", "§10 step 6", "Expired"),
    ("clip-neg-extra-chunk", "§10 step 8", "Decrypt"),
    ("clip-neg-final-flag", "§10 step 7.2", "Decrypt"),
    ("clip-neg-forwarded-payload", "§9.3 step 6", "Decrypt"),
    ("clip-neg-header-allow-save", "§3.1 boolean", "Decrypt"),
    ("clip-neg-header-clip-with-parent", "§3.7 rule 5", "Decrypt"),
    ("clip-neg-header-empty", "§3.7 rule 4", "Decrypt"),
    (
        "clip-neg-header-expires-at-created",
        "§3.7 rule 2",
        "Decrypt",
    ),
    ("clip-neg-header-kind", "§3.7 kind", "Decrypt"),
    ("clip-neg-header-lifetime", "§3.7 rule 3", "Decrypt"),
    ("clip-neg-header-media-type", "§3.7 rule 6", "Decrypt"),
    ("clip-neg-header-padding", "§3.7 padding", "Decrypt"),
    (
        "clip-neg-header-reaction-without-parent",
        "§3.7 rule 5",
        "Decrypt",
    ),
    ("clip-neg-manifest-expires-at", "§10 step 5", "Decrypt"),
    ("clip-neg-manifest-padded-len", "§10 step 5", "Decrypt"),
    (
        "clip-neg-manifest-trailing-byte",
        "§3.1 trailing bytes",
        "Decode(TrailingBytes(1))",
    ),
    ("clip-neg-missing-final-chunk", "§10 step 8", "Decrypt"),
    ("clip-neg-other-manifest", "§10 step 2", "Decrypt"),
    ("clip-neg-reaction-too-long", "§3.7 rule 1", "Decrypt"),
    ("clip-neg-reordered-chunks", "§10 step 7.2", "Decrypt"),
    ("clip-neg-spliced-chunk", "§10 step 7.2", "Decrypt"),
    ("clip-neg-substituted-chunk", "§10 step 7.1", "Decrypt"),
    ("clip-neg-trailing-data", "§10 step 8", "Decrypt"),
    ("clip-neg-truncated-final-chunk", "§10 step 8", "Decrypt"),
    ("clip-neg-wrong-recipient", "§9.3 step 2", "Decrypt"),
    (
        "clip-neg-wrong-recipient-identity",
        "§9.3 step 4",
        "Decrypt",
    ),
    (
        "contact-card-neg-control-character",
        "§3.1 string: control character",
        "Decode(InvalidText(\"display name\"))",
    ),
    (
        "contact-card-neg-display-name-too-long",
        "§3.6 display_name",
        "Decode(TooLong { field: \"display name\", limit: 64 })",
    ),
    (
        "contact-card-neg-empty-relay",
        "§3.6 relays",
        "Decode(Invalid(\"empty relay address\"))",
    ),
    (
        "contact-card-neg-invalid-utf8",
        "§3.1 string: UTF-8",
        "Decode(InvalidText(\"display name\"))",
    ),
    (
        "contact-card-neg-one-time-prekey",
        "§3.6 step 1",
        "Decode(Invalid(\"card prekey kind\"))",
    ),
    (
        "contact-card-neg-prekey-signature",
        "§3.6 step 3",
        "Decode(BadSignature(\"signed prekey\"))",
    ),
    (
        "contact-card-neg-relay-count",
        "§3.6 relay_count",
        "Decode(TooLong { field: \"relay count\", limit: 8 })",
    ),
    (
        "contact-card-neg-relay-too-long",
        "§3.6 relays",
        "Decode(TooLong { field: \"relay address\", limit: 256 })",
    ),
    (
        "contact-card-neg-signature",
        "§3.6 step 2",
        "Decode(BadSignature(\"contact card\"))",
    ),
    (
        "contact-card-text-neg-checksum",
        "§3.6.1 step 6",
        "Decode(BadChecksum)",
    ),
    (
        "contact-card-text-neg-prefix",
        "§3.6.1 step 2",
        "Decode(BadPrefix(\"mfcard1\"))",
    ),
    (
        "contact-card-text-neg-uppercase",
        "§3.6.1 step 4",
        "Decode(NonCanonical(\"card text case\"))",
    ),
    (
        "control-neg-kind",
        "CLIENT-MESSAGES.md §2 kind",
        "Decode(Invalid(\"control message kind\"))",
    ),
    (
        "control-neg-live-key-replay",
        "§3.1 boolean",
        "Decode(NonCanonical(\"replay\"))",
    ),
    (
        "control-neg-live-key-peer-count",
        "CLIENT-MESSAGES.md §2 live key peers",
        "Decode(TooLong { field: \"live peer count\", limit: 8 })",
    ),
    (
        "control-neg-live-key-empty-peer",
        "CLIENT-MESSAGES.md §2 live key peers",
        "Decode(Invalid(\"empty live peer address\"))",
    ),
    (
        "control-neg-live-revoked-truncated",
        "§3.1 truncation",
        "Decode(Truncated)",
    ),
    (
        "control-neg-follow-body",
        "§3.1 trailing bytes",
        "Decode(TrailingBytes(1))",
    ),
    (
        "control-neg-trailing-byte",
        "§3.1 trailing bytes",
        "Decode(TrailingBytes(1))",
    ),
    (
        "device-certificate-neg-noncanonical-device-key",
        "§3.2 Ed25519 check 2",
        "Decode(InvalidKey)",
    ),
    (
        "device-certificate-neg-signature",
        "§3.3 signature",
        "Decode(BadSignature(\"device certificate\"))",
    ),
    (
        "device-certificate-neg-signature-s-not-reduced",
        "§3.2 strict verification: S < L",
        "Decode(BadSignature(\"device certificate\"))",
    ),
    (
        "device-certificate-neg-signature-small-order-r",
        "§3.2 strict verification: R not of small order",
        "Decode(BadSignature(\"device certificate\"))",
    ),
    (
        "device-certificate-neg-small-order-device-key",
        "§3.2 Ed25519 check 3",
        "Decode(InvalidKey)",
    ),
    (
        "device-certificate-neg-small-order-key",
        "§3.2 Ed25519 check 3",
        "Decode(InvalidKey)",
    ),
    (
        "device-certificate-neg-truncated",
        "§3.1 truncation",
        "Decode(Truncated)",
    ),
    (
        "device-certificate-neg-type",
        "§3.1 type",
        "Decode(WrongType { expected: 1, found: 2 })",
    ),
    (
        "device-certificate-neg-version",
        "§3.1 version",
        "Decode(UnsupportedVersion(2))",
    ),
    (
        "envelope-neg-high-bit-ephemeral",
        "§3.2 X25519 check 1 (bit 255)",
        "Decode(InvalidKey)",
    ),
    (
        "envelope-neg-small-order-ephemeral",
        "§3.2 X25519 check 2",
        "Decode(InvalidKey)",
    ),
    (
        "envelope-neg-trailing-byte",
        "§3.1 trailing bytes",
        "Decode(TrailingBytes(1))",
    ),
    (
        "manifest-neg-padded-len-too-large",
        "§3.8 padded_len",
        "Decode(TooLong { field: \"padded length\", limit: 1073741824 })",
    ),
    ("clip-neg-header-live-lifetime", "§3.7 rule 3", "Decrypt"),
    (
        "invite-text-neg-inner-whitespace",
        "§3.6.1 step 5",
        "Decode(Invalid(\"invite text base32\"))",
    ),
    (
        "invite-text-neg-prefix-case",
        "§3.6.1 step 2",
        "Decode(BadPrefix(\"mfinvite1\"))",
    ),
    (
        "invite-text-neg-trailing-bits",
        "§3.6.1 step 5",
        "Decode(Invalid(\"invite text base32\"))",
    ),
    (
        "invite-text-neg-uppercase",
        "§3.6.1 step 4",
        "Decode(NonCanonical(\"invite text case\"))",
    ),
    (
        "invite-text-neg-checksum",
        "CLIENT-MESSAGES.md §3 checksum",
        "Decode(BadChecksum)",
    ),
    (
        "manifest-neg-message-id",
        "§3.8 message_id",
        "Decode(Invalid(\"message id does not match revocation key\"))",
    ),
    (
        "manifest-neg-missing-hash",
        "§3.1 truncation",
        "Decode(Truncated)",
    ),
    (
        "manifest-neg-noncanonical-padded-len",
        "§3.8 padded_len",
        "Decode(NonCanonical(\"padded length\"))",
    ),
    (
        "manifest-neg-noncanonical-revocation-key",
        "§3.2 Ed25519 check 2",
        "Decode(InvalidKey)",
    ),
    (
        "manifest-neg-revocation-key-not-a-point",
        "§3.2 Ed25519 check 1",
        "Decode(InvalidKey)",
    ),
    (
        "manifest-neg-small-order-revocation-key",
        "§3.2 Ed25519 check 3",
        "Decode(InvalidKey)",
    ),
    (
        "prekey-bundle-neg-flag",
        "§3.1 boolean",
        "Decode(NonCanonical(\"one-time prekey flag\"))",
    ),
    (
        "prekey-bundle-verify-neg-one-time-kind",
        "§5.4 step 7",
        "Decode(Invalid(\"one-time prekey kind\"))",
    ),
    (
        "prekey-bundle-verify-neg-one-time-signature",
        "§5.4 step 7",
        "BadSignature(\"prekey\")",
    ),
    (
        "prekey-bundle-verify-neg-signed-future",
        "§5.4 step 5",
        "FromTheFuture",
    ),
    (
        "prekey-bundle-verify-neg-signed-kind",
        "§5.4 step 3",
        "Decode(Invalid(\"signed prekey kind\"))",
    ),
    (
        "prekey-bundle-verify-neg-signed-signature",
        "§5.4 step 4",
        "BadSignature(\"prekey\")",
    ),
    (
        "prekey-bundle-verify-neg-stale-signed",
        "§5.4 step 6",
        "Expired",
    ),
    (
        "prekey-bundle-verify-neg-wrong-identity",
        "§5.4 step 2",
        "WrongSigner",
    ),
    (
        "prekey-neg-high-bit",
        "§3.2 X25519 check 1 (bit 255)",
        "Decode(InvalidKey)",
    ),
    (
        "prekey-neg-kind",
        "§3.4 kind",
        "Decode(Invalid(\"prekey kind\"))",
    ),
    (
        "prekey-neg-noncanonical-key",
        "§3.2 X25519 check 1 (u < p)",
        "Decode(InvalidKey)",
    ),
    (
        "prekey-neg-zero-key",
        "§3.2 X25519 check 2",
        "Decode(InvalidKey)",
    ),
    (
        "revocation-neg-not-the-sender",
        "§3.10 message_id",
        "Decode(Invalid(\"message id does not match revocation key\"))",
    ),
    (
        "revocation-neg-signature",
        "§3.10 signature",
        "Decode(BadSignature(\"revocation record\"))",
    ),
    (
        "revocation-neg-timestamp",
        "§3.10 signature",
        "Decode(BadSignature(\"revocation record\"))",
    ),
    (
        "live-segment-neg-type",
        "LIVE.md §6 step 1",
        "Decode(WrongType { expected: 10, found: 11 })",
    ),
    (
        "live-segment-neg-version",
        "LIVE.md §6 step 1",
        "Decode(UnsupportedVersion(2))",
    ),
    (
        "live-segment-neg-unknown-flag",
        "LIVE.md §6 step 1",
        "Decode(Invalid(\"unknown segment flag\"))",
    ),
    (
        "live-segment-neg-duration",
        "LIVE.md §6 step 1",
        "Decode(Invalid(\"segment duration\"))",
    ),
    (
        "live-segment-neg-ciphertext-too-short",
        "LIVE.md §6 step 1",
        "Decode(Invalid(\"segment ciphertext too short\"))",
    ),
    (
        "live-segment-neg-trailing-byte",
        "LIVE.md §6 step 1",
        "Decode(TrailingBytes(1))",
    ),
    (
        "live-segment-neg-truncated",
        "LIVE.md §6 step 1",
        "Decode(Truncated)",
    ),
    (
        "live-segment-neg-certificate-serial",
        "LIVE.md §6 step 2",
        "Decode(BadSignature(\"device certificate\"))",
    ),
    (
        "live-segment-neg-certificate-small-order-device-key",
        "LIVE.md §6 step 2",
        "Decode(InvalidKey)",
    ),
    (
        "live-segment-neg-signature",
        "LIVE.md §6 step 3",
        "Decode(BadSignature(\"live segment\"))",
    ),
    (
        "live-segment-neg-produced-at",
        "LIVE.md §6 step 3",
        "Decode(BadSignature(\"live segment\"))",
    ),
    (
        "live-segment-neg-other-device",
        "LIVE.md §6 step 3",
        "Decode(BadSignature(\"live segment\"))",
    ),
    (
        "live-chat-neg-type",
        "LIVE.md §12.4 step 1",
        "Decode(WrongType { expected: 11, found: 10 })",
    ),
    (
        "live-chat-neg-version",
        "LIVE.md §12.4 step 1",
        "Decode(UnsupportedVersion(2))",
    ),
    (
        "live-chat-neg-ciphertext-too-short",
        "LIVE.md §12.4 step 1",
        "Decode(Invalid(\"chat ciphertext too short\"))",
    ),
    (
        "live-chat-neg-ciphertext-too-long",
        "LIVE.md §12.4 step 1",
        "Decode(TooLong { field: \"chat ciphertext\", limit: 754 })",
    ),
    (
        "live-chat-neg-trailing-byte",
        "LIVE.md §12.4 step 1",
        "Decode(TrailingBytes(1))",
    ),
    (
        "live-chat-neg-truncated",
        "LIVE.md §12.4 step 1",
        "Decode(Truncated)",
    ),
    (
        "live-chat-open-neg-wrong-key",
        "LIVE.md §12.4 step 4",
        "Decrypt",
    ),
    (
        "live-chat-open-neg-ciphertext-bit-flip",
        "LIVE.md §12.4 step 4",
        "Decrypt",
    ),
    (
        "live-chat-open-neg-head-epoch",
        "LIVE.md §12.4 step 4",
        "Decrypt",
    ),
    ("live-chat-open-neg-kind", "LIVE.md §12.4 step 5", "Decrypt"),
    (
        "live-chat-open-neg-unsigned-comment",
        "LIVE.md §12.4 step 5",
        "Decrypt",
    ),
    (
        "live-chat-open-neg-join-with-text",
        "LIVE.md §12.4 step 5",
        "Decrypt",
    ),
    (
        "live-chat-open-neg-empty-comment",
        "LIVE.md §12.4 step 5",
        "Decrypt",
    ),
    (
        "live-chat-open-neg-control-character",
        "LIVE.md §12.4 step 5",
        "Decrypt",
    ),
    (
        "live-chat-open-neg-invalid-utf8",
        "LIVE.md §12.4 step 5",
        "Decrypt",
    ),
    (
        "live-chat-open-neg-signed-byte",
        "LIVE.md §12.4 step 5",
        "Decrypt",
    ),
    (
        "live-chat-open-neg-trailing-byte",
        "LIVE.md §12.4 step 5",
        "Decrypt",
    ),
    (
        "live-chat-open-neg-signature",
        "LIVE.md §12.4 step 5",
        "Decrypt",
    ),
    (
        "live-chat-open-neg-signature-other-head",
        "LIVE.md §12.4 step 5",
        "Decrypt",
    ),
    (
        "live-open-neg-wrong-epoch-key",
        "LIVE.md §7 step 2",
        "Decrypt",
    ),
    (
        "live-open-neg-ciphertext-bit-flip",
        "LIVE.md §7 step 2",
        "Decrypt",
    ),
    (
        "live-open-neg-head-resigned",
        "LIVE.md §7 step 2",
        "Decrypt",
    ),
    (
        "live-open-neg-keyframe-without-init",
        "LIVE.md §7 step 3",
        "Decrypt",
    ),
    (
        "live-open-neg-init-without-keyframe",
        "LIVE.md §7 step 3",
        "Decrypt",
    ),
    (
        "live-open-neg-init-len-past-end",
        "LIVE.md §7 step 3",
        "Decrypt",
    ),
    (
        "live-open-neg-init-too-long",
        "LIVE.md §7 step 3",
        "Decrypt",
    ),
];

/// How each negative vector isolates its rule:
///
/// - Decoder faults change one field and, where a signature covers it,
///   re-sign the structure with the right key, so the signature still
///   verifies (a key of small order that is the neutral point signs with
///   discrete log 0; S + L and a neutral R with S = k·a keep the equation
///   true).
/// - Keys that break one §3.2 check are chosen so the others hold: p + 9
///   reduces to the base point, 9 with bit 255 set is the base point once
///   the bit is cleared, a non-canonical y >= p encodes a large-order point,
///   and a manifest's bad revocation key comes with the message id derived
///   from its bytes.
/// - Clip faults that only a sender can make (a header rule, a damaged or
///   misplaced chunk that the manifest names, a bad commitment) come with an
///   envelope that validly signs the manifest as built, so §9.3 and §10
///   steps 2–3 pass; relay and recipient faults (a substituted chunk, a
///   truncated or extended stream) leave the signed manifest as it is.
/// - Live segment faults (LIVE.md) are built field by field: whatever is
///   changed in the head is sealed again under the right segment key (the
///   head is the AAD) and signed again by the broadcaster's device, so only
///   the named step fails. LIVE.md names one step for several checks (§6
///   step 1 is the whole layout, §7 step 3 the whole plaintext); the
///   independent reader names the check within it, as `step N (check)`, so
///   that a vector must still break exactly one check.
///
/// The independent reader checks all of this: for each negative vector the
/// set of rules it finds broken is exactly the named one, and for each
/// positive vector it is empty.
#[test]
fn every_negative_vector_breaks_exactly_its_rule() {
    let all = files();
    let table: BTreeMap<&str, (&str, &str)> =
        NEGATIVE.iter().map(|&(n, r, e)| (n, (r, e))).collect();
    assert_eq!(table.len(), NEGATIVE.len(), "a vector is listed twice");
    let mut seen = 0;
    for (name, text) in &all {
        let v: Value = serde_json::from_str(text).expect("json");
        let kind = v["kind"].as_str().expect("kind");
        let expected = v["expected"].as_str().expect("expected");
        let input = &v["input"];
        let rule = v.get("rule").and_then(Value::as_str);
        if expected == "ok" {
            assert!(rule.is_none(), "{name}: a positive vector names no rule");
        } else {
            let (want_rule, want_error) = table
                .get(name.as_str())
                .unwrap_or_else(|| panic!("{name}: not in NEGATIVE"));
            assert_eq!(rule, Some(*want_rule), "{name}: rule");
            let err = reference_error(kind, input).expect_err("a negative vector fails");
            assert_eq!(format!("{err:?}"), *want_error, "{name}: reference error");
            if kind == "clip" {
                assert_eq!(
                    reference_clip_stage(input),
                    clip_stage_of(want_rule),
                    "{name}: where the reference implementation fails"
                );
            }
            seen += 1;
        }
        let faults = match kind {
            "clip" => independent::clip(input),
            k if k.starts_with("decode:") => independent::decode(&k["decode:".len()..], input),
            "prekey_bundle_verify" => {
                let (faults, chosen) = independent::bundle_verify(input);
                if let Some(want) = input.get("chosen_prekey") {
                    assert_eq!(chosen.map(hex::encode).as_deref(), want.as_str(), "{name}");
                }
                faults
            }
            "live_open" => {
                let (faults, plain) = independent::live_open(input);
                if let Some(init) = input.get("init") {
                    let (i, m) = plain.unwrap_or_else(|| panic!("{name}: opens"));
                    assert_eq!(hex::encode(i), init.as_str().expect("hex"), "{name}");
                    assert_eq!(hex::encode(m), input["media"].as_str().expect("hex"));
                }
                faults
            }
            "live_chat_open" => {
                let (faults, opened) = independent::live_chat_open(input);
                if let Some(want) = input.get("opened") {
                    assert_eq!(opened.as_ref(), Some(want), "{name}");
                }
                faults
            }
            "live_gate" => {
                // Each step: the refusals an independent gate finds are
                // exactly the stated one, or none for an accepted segment.
                let steps = input["steps"].as_array().expect("steps");
                let got = independent::live_gate(input);
                assert_eq!(got.len(), steps.len());
                for (i, (step, refusals)) in steps.iter().zip(got).enumerate() {
                    let outcome = step["outcome"].as_str().expect("outcome");
                    let want: BTreeSet<String> = Some(outcome)
                        .filter(|o| *o != "accepted")
                        .into_iter()
                        .map(str::to_owned)
                        .collect();
                    assert_eq!(refusals, want, "{name}: step {i}");
                }
                independent::Faults::new()
            }
            _ => continue,
        };
        // A check named `LIVE.md §N step M (check)` breaks rule `LIVE.md
        // §N step M`; every check counts, so two checks of one step fail.
        let steps: independent::Faults = faults
            .iter()
            .map(|f| match f.split_once(" (") {
                Some((step, _)) if f.starts_with("LIVE.md ") => step.to_owned(),
                _ => f.clone(),
            })
            .collect();
        let want: independent::Faults = rule.into_iter().map(str::to_owned).collect();
        assert_eq!(
            (steps, faults.len()),
            (want.clone(), want.len()),
            "{name}: the rules an independent reader finds broken: {faults:?}"
        );
    }
    assert_eq!(seen, NEGATIVE.len(), "every listed vector exists");
}

/// The error the reference implementation reports for a negative vector.
fn reference_error(kind: &str, input: &Value) -> Result<(), Error> {
    match kind {
        "clip" => eval_clip(input),
        k if k.starts_with("decode:") => eval_decode(&k["decode:".len()..], input),
        "prekey_bundle_verify" => {
            let bundle = PrekeyBundle::decode(&unhex(&input["bundle"]))?;
            let id = SigningPublicKey::from_bytes(&arr32(&input["identity_key"]))?;
            bundle.verify(&id, UnixMillis(input["now"].as_u64().expect("now")))?;
            Ok(())
        }
        "live_open" => eval_live_open(input),
        "live_chat_open" => eval_live_chat_open(input),
        other => panic!("no negative vectors of kind {other}"),
    }
}

/// SPEC.md §16.4 lists every vector with its kind, outcome and rule.
#[test]
fn the_spec_lists_every_vector() {
    let spec =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/SPEC.md"))
            .expect("SPEC.md");
    let all = files();
    assert!(
        spec.contains(&format!("There are {} vectors.", all.len())),
        "SPEC.md §16.4 states the number of vectors"
    );
    for (name, text) in &all {
        let v: Value = serde_json::from_str(text).expect("json");
        let row = format!(
            "| `{name}` | `{}` | `{}` | {} |",
            v["kind"].as_str().expect("kind"),
            v["expected"].as_str().expect("expected"),
            v.get("rule").and_then(Value::as_str).unwrap_or(""),
        );
        assert!(spec.contains(&row), "SPEC.md §16.4 lacks {row}");
    }
}

/// Where the reference implementation fails a clip, told apart through its
/// public API: a decryption failure carries no detail, but each call covers
/// known steps, and the chunk hash (§10 step 7.1) is checked on its own by
/// `Manifest::check_chunk` before `ClipOpener::open_verified` decrypts.
fn reference_clip_stage(input: &Value) -> &'static str {
    let now = UnixMillis(input["now"].as_u64().expect("now"));
    let identity =
        SigningPublicKey::from_bytes(&arr32(&input["recipient_identity_key"])).expect("identity");
    let prekey = DhSecret::from_bytes(arr32(&input["recipient_prekey_secret"]));
    let Ok(envelope) = Envelope::decode(&unhex(&input["envelope"])) else {
        return "§9.3 step 1";
    };
    let Ok(contents) = envelope.open(&identity, &prekey) else {
        return "§9.3 steps 2–6";
    };
    let Ok(manifest) = Manifest::decode(&unhex(&input["manifest"])) else {
        return "§10 step 1";
    };
    let mut opener = match contents.open_manifest(manifest.clone(), now) {
        Ok(o) => o,
        Err(Error::Expired | Error::FromTheFuture) => return "§10 step 6",
        Err(_) => return "§10 steps 2–5",
    };
    let ciphertext = unhex(&input["ciphertext"]);
    let mut off = 0;
    for i in 0..manifest.chunk_count() {
        let len = manifest.chunk_ciphertext_len(i);
        let Some(c) = ciphertext.get(off..off + len) else {
            return "§10 step 8";
        };
        off += len;
        let Some(chunk) = manifest.check_chunk(i, c) else {
            return "§10 step 7.1";
        };
        if opener.open_verified(chunk).is_err() {
            return "§10 steps 7.2–7.3";
        }
    }
    if off != ciphertext.len() {
        return "§10 step 8";
    }
    opener.finish().expect("every chunk opened");
    "opens"
}

/// The stage of [`reference_clip_stage`] that a clip vector's rule is in.
fn clip_stage_of(rule: &str) -> &'static str {
    match rule {
        "§9.3 step 2" | "§9.3 step 4" | "§9.3 step 6" => "§9.3 steps 2–6",
        "§3.1 trailing bytes" => "§10 step 1",
        "§10 step 6" => "§10 step 6",
        "§10 step 7.1" => "§10 step 7.1",
        "§10 step 7.2" | "§10 step 7.3" => "§10 steps 7.2–7.3",
        "§10 step 8" => "§10 step 8",
        r if r.starts_with("§10 step ") || r.starts_with("§3.7 ") || r == "§3.1 boolean" => {
            "§10 steps 2–5"
        }
        other => panic!("no clip stage for rule {other}"),
    }
}
