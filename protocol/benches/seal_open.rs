//! Clip sealing and opening throughput against a raw ChaCha20-Poly1305 baseline,
//! and the cost of one envelope seal and open.
//!
//! Run with `cargo bench -p mayfly-protocol --bench seal_open`; see
//! BENCHMARKS.md for the numbers and how to read them.

use std::hint::black_box;
use std::time::Duration;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// Size of the benchmarked clip: 64 MiB.
const CLIP_LEN: usize = 64 * 1024 * 1024;
const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

fn clip_header(content_len: u64) -> ClipHeader {
    ClipHeader {
        kind: ClipKind::Clip,
        allow_save: false,
        duration_ms: 60_000,
        created_at: NOW,
        expires_at: NOW.plus(DEFAULT_CLIP_TTL_MS),
        content_len,
        parent: None,
        media_type: "video/mp4".into(),
    }
}

/// Pseudo-random content: incompressible, like real video.
fn content() -> Vec<u8> {
    let mut data = vec![0u8; CLIP_LEN];
    ChaCha20Rng::from_seed([1; 32]).fill_bytes(&mut data);
    data
}

/// Seals `data` with a sealer drawn from `rng`, passing each chunk to `sink`.
fn seal_all(
    data: &[u8],
    rng: &mut ChaCha20Rng,
    out: &mut Vec<u8>,
    mut sink: impl FnMut(&[u8]),
) -> SealedClip {
    let mut sealer = ClipSealer::new(clip_header(data.len() as u64), rng).unwrap();
    let mut pos = 0;
    while let Some(n) = sealer.next_content_len() {
        sealer.seal_next(&data[pos..pos + n], out).unwrap();
        pos += n;
        sink(out);
    }
    sealer.finish().unwrap()
}

fn clip(c: &mut Criterion) {
    let data = content();
    let mut g = c.benchmark_group("clip_64MiB");
    g.throughput(Throughput::Bytes(CLIP_LEN as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(8));

    // Baseline: the AEAD alone, in place, detached tag, STREAM-style counter
    // nonce. Re-encrypting the previous iteration's output costs the same.
    g.bench_function("raw_chacha20poly1305", |b| {
        let aead = ChaCha20Poly1305::new(&Key::from([9u8; 32]));
        let mut buf = data.clone();
        b.iter(|| {
            let chunks = buf.len().div_ceil(CHUNK_SIZE);
            for (i, chunk) in buf.chunks_mut(CHUNK_SIZE).enumerate() {
                let nonce = chunk_nonce(i as u32, i + 1 == chunks);
                let tag = aead
                    .encrypt_inout_detached(&Nonce::from(nonce), &[], chunk.into())
                    .unwrap();
                black_box(tag);
            }
        });
    });

    // The sealer: copy into the output buffer, pad, encrypt, append the tag,
    // hash the ciphertext chunk. One output buffer, chunks go nowhere.
    g.bench_function("seal", |b| {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let mut out = Vec::with_capacity(CIPHERTEXT_CHUNK_SIZE);
        b.iter(|| {
            black_box(seal_all(&data, &mut rng, &mut out, |c| {
                black_box(c);
            }))
        });
    });

    // Sealing in place, like the baseline: each chunk buffer already holds its
    // content (as after a read into it); the previous iteration's ciphertext
    // is cut back to the content length and sealed again.
    g.bench_function("seal_in_place", |b| {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let mut bufs: Vec<Vec<u8>> = data
            .chunks(CHUNK_SIZE)
            .map(|c| {
                let mut v = Vec::with_capacity(CIPHERTEXT_CHUNK_SIZE);
                v.extend_from_slice(c);
                v
            })
            .collect();
        b.iter(|| {
            let mut sealer = ClipSealer::new(clip_header(CLIP_LEN as u64), &mut rng).unwrap();
            for buf in bufs.iter_mut() {
                let n = sealer.next_content_len().unwrap();
                buf.truncate(n);
                black_box(sealer.seal_next_in_place(buf).unwrap());
            }
            black_box(sealer.finish().unwrap())
        });
    });

    // The opener over pre-sealed chunks: hash check, out-of-place decrypt, padding check.
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let sealed = seal_all(&data, &mut rng, &mut Vec::new(), |c| {
        chunks.push(c.to_vec())
    });
    g.bench_function("open", |b| {
        b.iter(|| {
            let mut opener =
                ClipOpener::new(sealed.manifest().clone(), sealed.content_key(), NOW).unwrap();
            for ct in &chunks {
                black_box(opener.open_next(ct).unwrap());
            }
            opener.finish().unwrap()
        });
    });
    // Opening chunks that were hash-checked on arrival (as the node does when
    // it receives or stores them): AEAD and padding check only.
    let verified: Vec<VerifiedChunk<'_>> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| sealed.manifest().check_chunk(i as u32, c).unwrap())
        .collect();
    g.bench_function("open_verified", |b| {
        b.iter(|| {
            let mut opener =
                ClipOpener::new(sealed.manifest().clone(), sealed.content_key(), NOW).unwrap();
            for chunk in &verified {
                black_box(opener.open_verified(*chunk).unwrap());
            }
            opener.finish().unwrap()
        });
    });
    g.finish();
}

fn envelope(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let alice = Identity::generate(&mut rng);
    let alice_dev = alice.new_device(1, NOW, &mut rng);
    let bob = Identity::generate(&mut rng);
    let bob_dev = bob.new_device(1, NOW, &mut rng);
    let mut bob_prekeys = PrekeyStore::new(&bob_dev, NOW, &mut rng);
    let bundle = PrekeyBundle {
        certificate: bob_dev.certificate().clone(),
        signed_prekey: bob_prekeys.signed_prekey().clone(),
        one_time_prekey: None,
    };
    let to_bob = bundle.verify(&bob.public(), NOW).unwrap();
    // A one-chunk clip: the envelope does not depend on the clip's size
    // (apart from hashing the manifest, which grows by 32 bytes a chunk).
    let sealed = seal_all(&[7u8; 1000], &mut rng, &mut Vec::new(), |_| {});
    let envelope = Envelope::seal(&sealed, &alice_dev, &to_bob, &mut rng).unwrap();
    let secret = bob_prekeys.take_secret(&envelope.prekey()).unwrap();

    let mut g = c.benchmark_group("envelope");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("seal", |b| {
        b.iter(|| Envelope::seal(&sealed, &alice_dev, &to_bob, &mut rng).unwrap());
    });
    g.bench_function("open", |b| {
        b.iter(|| envelope.open(&bob.public(), &secret).unwrap());
    });
    g.finish();
}

criterion_group!(benches, clip, envelope);
criterion_main!(benches);
