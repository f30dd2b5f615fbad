//! Checks `spec/vectors/`: the files are exactly what the generator produces
//! from its fixed seed (a hex snapshot of every structure), and each one,
//! evaluated on its own through the public API, has its stated outcome.

mod vectors_gen;

use std::collections::BTreeMap;
use std::path::PathBuf;

use mayfly_protocol::codec::Codec;
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
        assert_eq!(card.to_text(), text);
        return Ok(());
    }
    if ty == "invite_text" {
        let text = input["text"].as_str().expect("text");
        let invite = Invite::from_text(text)?;
        assert_eq!(invite.to_text(), text);
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
        other => panic!("unknown decode type {other}"),
    };
    assert_eq!(reencoded, bytes, "a decoded vector re-encodes to itself");
    Ok(())
}

fn eval_ledger(input: &Value) {
    let mut ledger = RevocationLedger::default();
    for step in input["steps"].as_array().expect("steps") {
        let now = UnixMillis(step["now"].as_u64().expect("now"));
        match step["op"].as_str().expect("op") {
            "apply" => {
                let rec = RevocationRecord::decode(&unhex(&step["record"])).expect("valid record");
                let got = match ledger.apply(&rec, now).expect("applies") {
                    Applied::Revoked => "revoked",
                    Applied::AlreadyRevoked => "already_revoked",
                };
                assert_eq!(got, step["outcome"].as_str().expect("outcome"));
                assert!(ledger.is_revoked(&rec.message_id()));
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
