//! Checks `fuzz/corpus/`: every fuzz target has seeds, within the size
//! bounds, and the files are exactly what the generator produces (like
//! `spec/vectors/`); the seeds of the harnesses in this crate run through
//! them without a finding.

mod corpus_gen;

use std::collections::BTreeMap;

use corpus_gen::{MAX_BYTES, MAX_FILES};

const REGENERATE: &str = "run `cargo run -p mayfly-protocol --example gen-corpus`";

fn on_disk(target: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = corpus_gen::root().join("fuzz/corpus").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("readable"))
        })
        .collect()
}

#[test]
fn every_target_has_a_small_seed_corpus() {
    let corpus = corpus_gen::generate();
    assert_eq!(
        corpus.keys().cloned().collect::<Vec<_>>(),
        corpus_gen::targets(),
        "the generator and fuzz/Cargo.toml name different targets"
    );
    for (target, seeds) in &corpus {
        let bytes: usize = seeds.values().map(Vec::len).sum();
        assert!(!seeds.is_empty(), "{target} has no seeds");
        assert!(
            seeds.len() <= MAX_FILES,
            "{target} has {} seeds",
            seeds.len()
        );
        assert!(bytes <= MAX_BYTES, "{target}'s seeds are {bytes} bytes");
    }
}

#[test]
fn files_match_the_generator() {
    let corpus = corpus_gen::generate();
    let dirs: Vec<String> = std::fs::read_dir(corpus_gen::root().join("fuzz/corpus"))
        .unwrap_or_else(|_| panic!("fuzz/corpus is missing; {REGENERATE}"))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        dirs,
        corpus.keys().cloned().collect::<Vec<_>>(),
        "fuzz/corpus holds other targets; {REGENERATE}"
    );
    for (target, seeds) in &corpus {
        let files = on_disk(target);
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            seeds.keys().collect::<Vec<_>>(),
            "fuzz/corpus/{target} holds other files; {REGENERATE}"
        );
        for (name, bytes) in seeds {
            assert!(
                files[name] == *bytes,
                "fuzz/corpus/{target}/{name} differs; {REGENERATE}"
            );
            assert_eq!(*name, corpus_gen::file_name(bytes));
        }
    }
}

/// A fuzz target's name and its harness.
type Harness = (&'static str, fn(&[u8]));

#[test]
fn the_seeds_pass_their_harnesses() {
    use mayfly_protocol::fuzzing as f;
    let harnesses: [Harness; 24] = [
        ("chunk_stream_open", f::chunk_stream_open),
        ("contact_card", f::contact_card),
        ("control", f::control),
        ("device_certificate", f::device_certificate),
        ("envelope", f::envelope),
        ("fetch_schedule", f::fetch_schedule),
        ("fmp4_cutter", f::fmp4_cutter),
        ("header", f::header),
        ("interaction", f::interaction),
        ("invite", f::invite),
        ("live_chat", f::live_chat),
        ("live_chat_gate", f::live_chat_gate),
        ("live_gate", f::live_gate),
        ("live_segment", f::live_segment),
        ("mailbox_frames", f::mailbox_frames),
        ("mailbox_request", f::mailbox_request),
        ("mailbox_response", f::mailbox_response),
        ("manifest", f::manifest),
        ("playout", f::playout),
        ("prekey", f::prekey),
        ("prekey_bundle", f::prekey_bundle),
        ("replay_head", f::replay_head),
        ("revocation", f::revocation),
        ("revocation_ledger", f::revocation_ledger),
    ];
    let corpus = corpus_gen::generate();
    // Every target but mp4_probe, whose harness is in mayfly-media.
    assert_eq!(harnesses.len() + 1, corpus.len());
    for (target, harness) in harnesses {
        for seed in corpus[target].values() {
            harness(seed);
        }
    }
}
