//! The store's hot path: `RelayStore::put_chunk` for every chunk of a 64 MiB
//! clip, in the three modes (relay: sealed and durable; client: lazy commits,
//! sealed in redb or as uploaded in chunk files), next to BLAKE3 over the same chunks as a baseline
//! run in the same process, and the durable floor: BLAKE3 of each chunk, a
//! positioned write to a file, a background `fdatasync` every 8 MiB and a
//! final one (what `client_bench`'s raw + store receiver does), on one
//! thread.
//!
//! ```sh
//! cargo run --release -p mayfly-node --example store_bench
//! THREADS=8 cargo run --release -p mayfly-node --example store_bench   # 8 uploads at once
//! ```
use std::time::Instant;

use mayfly_node::store::{RelayStore, StoreLimits};
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

fn main() {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let identity = Identity::generate(&mut rng);
    let device = identity.new_device(1, NOW, &mut rng);
    let prekeys = PrekeyStore::new(&device, NOW, &mut rng);
    let recipient = Recipient {
        identity_key: identity.public(),
        prekey: prekeys.signed_prekey().public(),
    };
    let len = 64 << 20;
    let data = vec![0x5au8; len];
    for round in 0..3 {
        for (lazy, seal) in [(true, true), (true, false), (false, true)] {
            let header = ClipHeader {
                kind: ClipKind::Clip,
                allow_save: false,
                duration_ms: 10_000,
                created_at: NOW,
                expires_at: NOW.plus(DEFAULT_CLIP_TTL_MS),
                content_len: len as u64,
                parent: None,
                media_type: "video/mp4".into(),
            };
            let mut k = [0u8; 32];
            k[0] = round as u8;
            k[1] = lazy as u8 + 2 * seal as u8;
            let mut sealer = ClipSealer::with_keys(
                header,
                ContentKey::from_bytes(k),
                SigningSecret::generate(&mut rng),
            )
            .unwrap();
            let mut chunks = Vec::new();
            let mut at = 0;
            while let Some(n) = sealer.next_content_len() {
                let mut out = Vec::new();
                sealer.seal_next(&data[at..at + n], &mut out).unwrap();
                at += n;
                chunks.push(out);
            }
            let sealed = sealer.finish().unwrap();
            let env = Envelope::seal(&sealed, &device, &recipient, &mut rng).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let mut store = RelayStore::open(
                dir.path(),
                StoreLimits::default(),
                ChaCha20Rng::from_seed([1; 32]),
            )
            .unwrap();
            if lazy {
                store = store.with_lazy_chunk_commits();
            }
            if !seal {
                store = store.with_chunk_files();
            }
            store.record_certificate(device.certificate()).unwrap();
            store
                .deposit(&identity.public(), &env, sealed.manifest(), b"x", NOW)
                .unwrap();
            let t = Instant::now();
            let threads: usize = std::env::var("THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let next = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|sc| {
                for _ in 0..threads {
                    sc.spawn(|| {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= chunks.len() {
                                break;
                            }
                            store
                                .put_chunk(&sealed.message_id(), i as u32, &chunks[i])
                                .unwrap();
                        }
                    });
                }
            });
            let put = t.elapsed();
            let t = Instant::now();
            let mut h = 0u64;
            for c in &chunks {
                let x = blake3::hash(c);
                h ^= x.as_bytes()[0] as u64;
            }
            let hash = t.elapsed();
            let floor = durable_floor(dir.path(), &chunks);
            println!(
                "round {round} lazy={lazy} seal={seal} (false: chunk files): put_chunk x{} {:?} ({:.3} ms/chunk); blake3 alone {:?} {h}; the durable floor {:?}",
                chunks.len(),
                put,
                put.as_secs_f64() * 1e3 / chunks.len() as f64,
                hash,
                floor,
            );
        }
    }
}

/// BLAKE3 of each chunk and a positioned write at its offset in a file in
/// `dir`, a background `fdatasync` every 8 MiB, and a final one.
fn durable_floor(dir: &std::path::Path, chunks: &[Vec<u8>]) -> std::time::Duration {
    use std::os::unix::fs::FileExt;
    let path = dir.join("floor");
    let file = std::sync::Arc::new(std::fs::File::create(&path).unwrap());
    let t = Instant::now();
    let (mut offset, mut unsynced) = (0u64, 0u64);
    let mut syncs = Vec::new();
    for c in chunks {
        std::hint::black_box(blake3::hash(c));
        file.write_all_at(c, offset).unwrap();
        offset += CIPHERTEXT_CHUNK_SIZE as u64;
        unsynced += c.len() as u64;
        if unsynced >= 8 << 20 {
            unsynced = 0;
            let f = file.clone();
            syncs.push(std::thread::spawn(move || f.sync_data()));
        }
    }
    file.sync_data().unwrap();
    for s in syncs {
        s.join().unwrap().unwrap();
    }
    let took = t.elapsed();
    std::fs::remove_file(path).unwrap();
    took
}
