//! Large clips through a `mayfly relay` with its default settings, driven
//! through the CLI: a 3-minute clip of 200 MB (the size of a real 3-minute
//! phone video) is sent, and opened several times in a row with a small
//! clip between, without any RateLimited refusal (RELAY.md §5.5: chunk
//! streams are shaped, never refused).
//!
//! The clip is `samples/three-minutes.mp4` (180.000 s) followed by a
//! top-level `free` box of zeros up to the size: valid for the MP4 check,
//! and as large as the real thing on the wire.
//!
//! `MAYFLY_LARGE_CLIP_MB` sets the size (default 200). The long form sends
//! the format's limit, 1 GiB:
//! `MAYFLY_LARGE_CLIP_MB=1024 cargo test --release -p mayfly-node --test large_clips`.

mod cli_fixture;
mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use cli_fixture::{befriend, init, json, mayfly};
use common::Relay;

const THREE_MINUTES: &[u8] = include_bytes!("../../samples/three-minutes.mp4");
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/hello.mp4");

/// Writes [`THREE_MINUTES`] and a `free` box of zeros up to `size` bytes
/// (a box's 32-bit size: at most 4 GiB); returns the file's BLAKE3 hash.
fn write_padded(path: &Path, size: u64) -> blake3::Hash {
    let pad = size - THREE_MINUTES.len() as u64;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hash = blake3::Hasher::new();
    let zeros = vec![0u8; 1 << 20];
    let head = [
        THREE_MINUTES,
        &u32::try_from(pad).unwrap().to_be_bytes()[..],
        b"free",
    ];
    let mut left = pad - 8;
    let tail = std::iter::from_fn(|| {
        let n = left.min(zeros.len() as u64) as usize;
        left -= n as u64;
        (n > 0).then(|| &zeros[..n])
    });
    for b in head.into_iter().chain(tail) {
        f.write_all(b).unwrap();
        hash.update(b);
    }
    f.flush().unwrap();
    hash.finalize()
}

/// `mayfly open ID --out -`, hashing what it writes; returns the hash and
/// the byte count.
fn open_hash(home: &Path, id: &str) -> (blake3::Hash, u64) {
    let mut child = mayfly(home)
        .args(["open", id, "--out", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut hash = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = out.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        hash.update(&buf[..k]);
        n += k as u64;
    }
    let result = child.wait_with_output().unwrap();
    assert!(
        result.status.success(),
        "open {id}: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    (hash.finalize(), n)
}

#[test]
fn a_three_minute_200_mb_clip_sends_and_opens_through_a_default_relay() {
    let mb: u64 = std::env::var("MAYFLY_LARGE_CLIP_MB").ok().map_or(200, |v| {
        v.parse().expect("MAYFLY_LARGE_CLIP_MB is a number")
    });
    let size = (mb << 20).min(1 << 30);
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(
        &dir.path().join("relay"),
        &["--listen", "/ip4/127.0.0.1/tcp/0"],
        1,
    );
    let address = relay.tcp().to_string();
    let alice = init(dir.path(), "alice", &address);
    let bob = init(dir.path(), "bob", &address);
    befriend(&alice, &bob);
    let clip = dir.path().join("big.mp4");
    let want = write_padded(&clip, size);

    let t = Instant::now();
    let sent = json(&alice, &["send", "--to", "bob", clip.to_str().unwrap()]);
    let send_s = t.elapsed().as_secs_f64();
    assert_eq!(sent["failed"].as_array().map(Vec::len), Some(0), "{sent}");
    let big = sent["message_id"].as_str().unwrap().to_owned();
    let small = json(&alice, &["send", "--to", "bob", SAMPLE])["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let inbox = json(&bob, &["inbox"]);
    let row = |id: &str| {
        inbox["received"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} not received: {inbox}"))
            .clone()
    };
    assert_eq!(row(&big)["duration_ms"], 180_000);
    row(&small);

    // Opened, then a small clip, then opened again: each in full.
    let mut opens = Vec::new();
    for id in [&big, &small, &big] {
        let t = Instant::now();
        let (got, n) = open_hash(&bob, id);
        opens.push(t.elapsed().as_secs_f64());
        if *id == big {
            assert_eq!(n, size);
            assert_eq!(got, want, "the opened clip differs from the one sent");
        } else {
            assert_eq!(n, std::fs::metadata(SAMPLE).unwrap().len());
        }
    }
    eprintln!(
        "{mb} MiB clip: send {send_s:.1} s ({:.0} MiB/s), opens {:.1} s, {:.1} s (small), {:.1} s",
        mb as f64 / send_s,
        opens[0],
        opens[1],
        opens[2]
    );
    relay.stop();
}
