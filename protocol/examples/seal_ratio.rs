//! Same-run throughput ratios of sealing and opening against raw
//! ChaCha20-Poly1305, with the variants interleaved round by round so that a
//! noisy machine slows them alike. Prints medians and ratios.
//!
//! `cargo run --release -p mayfly-protocol --example seal_ratio -- [ROUNDS] [MIB]`

use std::hint::black_box;
use std::time::Instant;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

fn header(len: usize) -> ClipHeader {
    ClipHeader {
        kind: ClipKind::Clip,
        allow_save: false,
        duration_ms: 60_000,
        created_at: NOW,
        expires_at: NOW.plus(DEFAULT_CLIP_TTL_MS),
        content_len: len as u64,
        parent: None,
        media_type: "video/mp4".into(),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(21);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let len = mib * 1024 * 1024;
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);

    // Buffers for in-place work, one per chunk.
    let mut raw_bufs: Vec<Vec<u8>> = data.chunks(CHUNK_SIZE).map(<[u8]>::to_vec).collect();
    let mut seal_bufs: Vec<Vec<u8>> = data
        .chunks(CHUNK_SIZE)
        .map(|c| {
            let mut v = Vec::with_capacity(CIPHERTEXT_CHUNK_SIZE);
            v.extend_from_slice(c);
            v
        })
        .collect();
    let mut out = Vec::with_capacity(CIPHERTEXT_CHUNK_SIZE);
    let mut sealer = ClipSealer::new(header(len), &mut rng).unwrap();
    let mut chunks = Vec::new();
    for c in data.chunks(CHUNK_SIZE) {
        sealer.seal_next(c, &mut out).unwrap();
        chunks.push(out.clone());
    }
    let sealed = sealer.finish().unwrap();
    let aead = ChaCha20Poly1305::new(&Key::from([9u8; 32]));

    let names = [
        "raw_chacha20poly1305",
        "seal_in_place",
        "seal_from_slice",
        "open",
        "open_verified",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        let t = Instant::now();
        let n = raw_bufs.len();
        for (i, b) in raw_bufs.iter_mut().enumerate() {
            let nonce = chunk_nonce(i as u32, i + 1 == n);
            black_box(
                aead.encrypt_inout_detached(&Nonce::from(nonce), &[], b.as_mut_slice().into())
                    .unwrap(),
            );
        }
        times[0].push(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let mut s = ClipSealer::new(header(len), &mut rng).unwrap();
        for b in seal_bufs.iter_mut() {
            b.truncate(s.next_content_len().unwrap());
            black_box(s.seal_next_in_place(b).unwrap());
        }
        black_box(s.finish().unwrap());
        times[1].push(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let mut s = ClipSealer::new(header(len), &mut rng).unwrap();
        for c in data.chunks(CHUNK_SIZE) {
            black_box(s.seal_next(c, &mut out).unwrap());
        }
        black_box(s.finish().unwrap());
        times[2].push(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let mut o = ClipOpener::new(sealed.manifest().clone(), sealed.content_key(), NOW).unwrap();
        for c in &chunks {
            black_box(o.open_next(c).unwrap());
        }
        o.finish().unwrap();
        times[3].push(t.elapsed().as_secs_f64());

        let verified: Vec<_> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| sealed.manifest().check_chunk(i as u32, c).unwrap())
            .collect();
        let t = Instant::now();
        let mut o = ClipOpener::new(sealed.manifest().clone(), sealed.content_key(), NOW).unwrap();
        for c in &verified {
            black_box(o.open_verified(*c).unwrap());
        }
        o.finish().unwrap();
        times[4].push(t.elapsed().as_secs_f64());
    }
    let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    println!(
        "{rounds} interleaved rounds over {mib} MiB, one core; median throughput and ratio to raw:"
    );
    for (name, m) in names.iter().zip(&medians) {
        println!(
            "  {name:<22} {:>8.0} MiB/s   {:.2}x",
            mib as f64 / m,
            medians[0] / m
        );
    }
}
