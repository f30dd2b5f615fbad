//! The bad-input campaign (RELIABILITY.md §4): every kind of hostile peer at
//! once against one `mayfly relay`, while an honest sender and recipient
//! keep exchanging clips through it. Their round trips (deposit, upload,
//! list, fetch, acknowledge) are timed before the attack and during it, in
//! the same run; every one must succeed, the relay must stay up, and its
//! peak memory is reported.
//!
//! The attackers, each a loop until the attack ends:
//! * raw TCP: connections that send random bytes instead of a handshake;
//! * garbage frames on the mailbox protocol: random bytes, a truncated
//!   frame, an oversize length, a valid frame with bytes after it;
//! * slow-loris: connections whose streams send half a frame and stall;
//! * a stream flood: many requests at once on one connection;
//! * a connection flood: connections opened and dropped as fast as they go;
//! * protocol-valid hostility: listing and acknowledging without a login,
//!   revocations of unknown ids, replayed deposits of the honest clips,
//!   a depositor filling its quota, and a superseded device still asking.
//!
//! `MAYFLY_HOSTILE_ROUNDS` sets the honest round trips per phase (20).

mod common;
mod mailbox_client;
mod raw_peer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Relay, TIMEOUT};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use mailbox_client::{Party, Peer, code, now, rng as seeded, runtime, seal};
use mayfly_protocol::mailbox::{ErrorCode, MAX_FRAME_LEN, Request, Response, encode_frame};
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use tokio::io::AsyncWriteExt;

/// Bytes of each honest clip.
const CLIP: usize = 64 * 1024;

/// An honest round starts at most this often.
const ROUND_EVERY: Duration = Duration::from_millis(100);

/// What the attackers did, for the figures line.
#[derive(Default)]
struct Counts {
    tcp_garbage: AtomicU64,
    bad_frames: AtomicU64,
    slow_streams: AtomicU64,
    flood_requests: AtomicU64,
    flood_connections: AtomicU64,
    hostile_requests: AtomicU64,
}

fn socket_of(addr: &Multiaddr) -> std::net::SocketAddr {
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    std::net::SocketAddr::new(ip.expect("ip4"), port.expect("tcp"))
}

/// One honest round trip: alice deposits and uploads a clip to bob, bob
/// lists, fetches, opens and acknowledges it. Returns its duration.
async fn honest_round(
    alice: &Peer,
    alice_party: &Party,
    bob: &Peer,
    bob_party: &mut Party,
    rng: &mut ChaCha20Rng,
    deposits: &mut Vec<Request>,
) -> Duration {
    let clip = seal(CLIP, rng);
    let t = Instant::now();
    let envelope = alice.envelope(alice_party, bob_party, &clip, rng).await;
    let deposit = mailbox_client::deposit(bob_party, &envelope, &clip);
    deposits.push(deposit.clone());
    assert_eq!(
        alice.req(deposit).await,
        mailbox_client::accepted_all(&clip)
    );
    alice.upload(&clip).await;
    let entries = mailbox_client::list_all(bob).await;
    let ids: Vec<MessageId> = entries.iter().map(|e| e.message_id).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "an entry listed twice");
    let entry = entries
        .iter()
        .find(|e| e.message_id == clip.id())
        .expect("the clip is listed");
    let plaintext = mailbox_client::open_entry(bob, bob_party, entry).await;
    assert!(plaintext == clip.content, "the clip opens to what was sent");
    assert_eq!(
        bob.req(Request::Ack {
            seqs: vec![entry.seq]
        })
        .await,
        Response::Ok
    );
    let took = t.elapsed();
    // Paced as a person would use it: one clip each ROUND_EVERY, well within
    // the relay's request rate per peer (bob makes four requests a round).
    tokio::time::sleep(ROUND_EVERY.saturating_sub(took)).await;
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn tcp_garbage(addr: std::net::SocketAddr, stop: Arc<AtomicBool>, c: Arc<Counts>) {
    let mut rng = seeded(1);
    while !stop.load(Ordering::Relaxed) {
        if let Ok(Ok(mut s)) =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await
        {
            let mut junk = vec![0u8; 4096];
            rng.fill_bytes(&mut junk);
            let _ = s.write_all(&junk).await;
            c.tcp_garbage.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn bad_frames(addr: Multiaddr, stop: Arc<AtomicBool>, c: Arc<Counts>) {
    let mut rng = seeded(2);
    let mut kind = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let bytes = match kind % 4 {
            0 => {
                let mut b = vec![0u8; 1 + (rng.next_u32() % 2048) as usize];
                rng.fill_bytes(&mut b);
                b
            }
            // A frame that says 1000 bytes and carries 10.
            1 => {
                let mut b = 1000u32.to_be_bytes().to_vec();
                b.extend_from_slice(&[0u8; 10]);
                b
            }
            // A length past the limit.
            2 => ((MAX_FRAME_LEN + 1) as u32).to_be_bytes().to_vec(),
            // A valid request with bytes after it.
            _ => {
                let mut b = encode_frame(&codec::Codec::to_bytes(&Request::Challenge));
                b.extend_from_slice(b"trailing");
                b
            }
        };
        kind += 1;
        let answers = raw_peer::send_raw_all(&addr, vec![bytes; 4], Duration::ZERO).await;
        c.bad_frames
            .fetch_add(answers.len() as u64, Ordering::Relaxed);
    }
}

async fn slow_loris(addr: Multiaddr, stop: Arc<AtomicBool>, c: Arc<Counts>) {
    while !stop.load(Ordering::Relaxed) {
        // Half a length prefix on 16 streams, held for 3 s.
        let n = raw_peer::send_raw_all(&addr, vec![vec![0, 0]; 16], Duration::from_secs(3))
            .await
            .len();
        c.slow_streams.fetch_add(n as u64, Ordering::Relaxed);
    }
}

async fn stream_flood(addr: Multiaddr, relay: PeerId, stop: Arc<AtomicBool>, c: Arc<Counts>) {
    let peer = Peer::connect(&addr, relay).await;
    while !stop.load(Ordering::Relaxed) {
        let answers = futures::future::join_all(
            (0..64).map(|_| peer.client.request(relay, Request::Challenge, TIMEOUT)),
        )
        .await;
        c.flood_requests
            .fetch_add(answers.len() as u64, Ordering::Relaxed);
    }
    peer.close().await;
}

async fn connection_flood(addr: Multiaddr, relay: PeerId, stop: Arc<AtomicBool>, c: Arc<Counts>) {
    while !stop.load(Ordering::Relaxed) {
        let peers = futures::future::join_all((0..8).map(|_| {
            let addr = addr.clone();
            async move {
                let (client, _events, event_loop) = mayfly_node::net::new(
                    libp2p::identity::Keypair::generate_ed25519(),
                    &mayfly_node::config::Limits::default(),
                )
                .expect("swarm");
                let task = tokio::spawn(event_loop.run());
                let _ = tokio::time::timeout(Duration::from_secs(5), client.dial(addr)).await;
                client.shutdown().await;
                let _ = task.await;
            }
        }))
        .await;
        c.flood_connections
            .fetch_add(peers.len() as u64, Ordering::Relaxed);
        let _ = relay;
    }
}

/// Protocol-valid hostility, with the honest parties' public keys and the
/// deposits they made (to replay).
async fn hostile(
    addr: Multiaddr,
    relay: PeerId,
    bob_key: SigningPublicKey,
    deposits: Arc<std::sync::Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    c: Arc<Counts>,
) {
    let mut rng = seeded(3);
    let mut mallory = Party::new(&mut rng);
    let anon = Peer::connect(&addr, relay).await;
    let logged = Peer::connect(&addr, relay).await;
    logged.login_and_publish(&mut mallory, 0, &mut rng).await;
    // A device of mallory's that a newer one supersedes.
    let old = Peer::connect(&addr, relay).await;
    old.login_ok(&mallory.device).await;
    let device2 = mallory.identity.new_device(2, now(), &mut rng);
    let newer = Peer::connect(&addr, relay).await;
    newer.login_ok(&device2).await;
    logged.login_ok(&device2).await;
    let mut quota_full = false;
    while !stop.load(Ordering::Relaxed) {
        // No login: no mailbox to list or acknowledge in.
        for r in [
            Request::List {
                after: 0,
                limit: 64,
            },
            Request::Ack {
                seqs: vec![1, 2, 3],
            },
        ] {
            let got = anon.req(r).await;
            assert!(
                matches!(
                    code(&got),
                    ErrorCode::Unauthenticated | ErrorCode::RateLimited
                ),
                "{got:?}"
            );
        }
        // The superseded device is refused.
        let got = old.req(Request::List { after: 0, limit: 1 }).await;
        assert!(
            matches!(
                code(&got),
                ErrorCode::Forbidden | ErrorCode::Unauthenticated | ErrorCode::RateLimited
            ),
            "{got:?}"
        );
        // A revocation signed by mallory can only name mallory's ids.
        let clip = seal(1000, &mut rng);
        // (The relay limits revocations per peer: a flood is refused.)
        let got = logged.req(Request::Revoke(clip.sealed.revoke(now()))).await;
        assert!(
            matches!(
                got,
                Response::Revoked(_)
                    | Response::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    }
            ),
            "{got:?}"
        );
        // Replayed deposits of the honest clips: at most accepted again
        // with nothing missing, never a second entry (checked by bob).
        let replay = deposits.lock().unwrap().last().cloned();
        if let Some(d) = replay {
            let got = logged.req(d).await;
            assert!(
                matches!(
                    got,
                    Response::DepositAccepted { .. }
                        | Response::Error {
                            code: ErrorCode::NotFound
                                | ErrorCode::Conflict
                                | ErrorCode::QuotaExceeded
                                | ErrorCode::RateLimited,
                            ..
                        }
                ),
                "a replayed deposit: {got:?}"
            );
        }
        // Filling mallory's depositor quota with clips to bob, never uploaded.
        if !quota_full {
            let big = seal(256 * 1024, &mut rng);
            let Response::Bundle(bundle) = logged
                .req(Request::FetchBundle {
                    identity_key: bob_key,
                })
                .await
            else {
                // Bundles have a rate of their own.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let Ok(prekeys) = bundle.verify(&bob_key, now()) else {
                continue;
            };
            let env = Envelope::seal(&big.sealed, &mallory.device, &prekeys, &mut rng).unwrap();
            let got = logged
                .req(Request::Deposit {
                    mailbox: bob_key,
                    envelope: env,
                    manifest: big.sealed.manifest().clone(),
                })
                .await;
            match got {
                Response::DepositAccepted { .. } => {}
                Response::Error {
                    code: ErrorCode::QuotaExceeded,
                    ..
                } => quota_full = true,
                Response::Error {
                    code: ErrorCode::RateLimited,
                    ..
                } => {}
                other => panic!("mallory's deposit: {other:?}"),
            }
        }
        c.hostile_requests.fetch_add(6, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(quota_full, "mallory's deposits reached the depositor quota");
    for p in [anon, logged, old, newer] {
        p.close().await;
    }
}

#[test]
fn honest_clients_are_served_while_hostile_peers_attack() {
    let rounds: usize = std::env::var("MAYFLY_HOSTILE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let home = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    // A depositor quota small enough to reach in the attack (2 MiB); the
    // mailbox's is larger, so one depositor cannot fill a mailbox.
    let config = config_dir.path().join("relay.toml");
    std::fs::write(
        &config,
        "[store]\ndepositor_bytes = 2_097_152\nmailbox_bytes = 67_108_864\n",
    )
    .unwrap();
    let relay = Relay::start(home.path(), &["--config", config.to_str().unwrap()], 2);
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    let rt = runtime();
    let (quiet, attacked, counts) = rt.block_on(async {
        let mut rng = seeded(0x686f7374);
        let alice_party = Party::new(&mut rng);
        let mut bob_party = Party::new(&mut rng);
        let alice = Peer::connect(&addr, relay_id).await;
        let bob = Peer::connect(&addr, relay_id).await;
        bob.login_and_publish(&mut bob_party, 0, &mut rng).await;
        let mut deposits = Vec::new();

        let mut quiet = Vec::new();
        for _ in 0..rounds {
            quiet.push(
                honest_round(
                    &alice,
                    &alice_party,
                    &bob,
                    &mut bob_party,
                    &mut rng,
                    &mut deposits,
                )
                .await,
            );
        }

        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let shared = Arc::new(std::sync::Mutex::new(deposits.clone()));
        let tcp = socket_of(&addr);
        let attackers = vec![
            tokio::spawn(tcp_garbage(tcp, stop.clone(), counts.clone())),
            tokio::spawn(bad_frames(addr.clone(), stop.clone(), counts.clone())),
            tokio::spawn(slow_loris(addr.clone(), stop.clone(), counts.clone())),
            tokio::spawn(stream_flood(
                addr.clone(),
                relay_id,
                stop.clone(),
                counts.clone(),
            )),
            tokio::spawn(connection_flood(
                addr.clone(),
                relay_id,
                stop.clone(),
                counts.clone(),
            )),
            tokio::spawn(hostile(
                addr.clone(),
                relay_id,
                bob_party.key(),
                shared.clone(),
                stop.clone(),
                counts.clone(),
            )),
        ];
        // Let every attacker get going before measuring.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut attacked = Vec::new();
        for _ in 0..rounds {
            attacked.push(
                honest_round(
                    &alice,
                    &alice_party,
                    &bob,
                    &mut bob_party,
                    &mut rng,
                    &mut deposits,
                )
                .await,
            );
            *shared.lock().unwrap() = deposits.clone();
        }
        stop.store(true, Ordering::Relaxed);
        for a in attackers {
            tokio::time::timeout(TIMEOUT, a)
                .await
                .expect("an attacker stops")
                .expect("an attacker's checks hold");
        }
        alice.close().await;
        bob.close().await;
        (quiet, attacked, counts)
    });
    let mut relay = relay;
    assert!(relay.is_running(), "the relay is up after the attack");
    let rss_mib = relay.peak_rss_kib() / 1024;
    relay.stop();
    let (mut quiet, mut attacked) = (quiet, attacked);
    quiet.sort();
    attacked.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let c = &counts;
    eprintln!(
        "hostile campaign: {rounds} honest round trips per phase, all served; p50 / p99 {:.1} / {:.1} ms quiet, {:.1} / {:.1} ms under attack ({:.2}x / {:.2}x); attackers sent {} garbage TCP connections, {} bad frames, {} stalled streams, {} flood requests, {} flood connections, {} hostile requests; relay peak RSS {rss_mib} MiB",
        ms(percentile(&quiet, 0.5)),
        ms(percentile(&quiet, 0.99)),
        ms(percentile(&attacked, 0.5)),
        ms(percentile(&attacked, 0.99)),
        ms(percentile(&attacked, 0.5)) / ms(percentile(&quiet, 0.5)),
        ms(percentile(&attacked, 0.99)) / ms(percentile(&quiet, 0.99)),
        c.tcp_garbage.load(Ordering::Relaxed),
        c.bad_frames.load(Ordering::Relaxed),
        c.slow_streams.load(Ordering::Relaxed),
        c.flood_requests.load(Ordering::Relaxed),
        c.flood_connections.load(Ordering::Relaxed),
        c.hostile_requests.load(Ordering::Relaxed),
    );
    assert!(
        rss_mib < 1024,
        "the relay's memory stays bounded: {rss_mib} MiB"
    );
}
