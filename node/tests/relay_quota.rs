//! Store quotas and per-peer rate limits over the wire (RELAY.md §5.2, §5.5):
//! `mayfly relay --config` with tiny limits, clients built with the library.
//! Every wait is bounded.

mod common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Relay, TIMEOUT};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use mayfly_node::config::Limits;
use mayfly_node::net;
use mayfly_protocol::mailbox::{ErrorCode, LoginProof, Request, Response};
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::task::JoinHandle;

fn now() -> UnixMillis {
    UnixMillis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    )
}

fn seeded(seed: u64) -> ChaCha20Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(s)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Starts the relay with `config` written to a file in `dir` (not its home).
fn start_with(home: &Path, dir: &Path, config: &str) -> Relay {
    let path = dir.join("relay.toml");
    std::fs::write(&path, config).unwrap();
    Relay::start(home, &["--config", path.to_str().unwrap()], 2)
}

/// A user: identity, device, prekeys.
struct Party {
    identity: Identity,
    device: Device,
    prekeys: PrekeyStore,
}

impl Party {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        let identity = Identity::generate(rng);
        let device = identity.new_device(1, now(), rng);
        let prekeys = PrekeyStore::new(&device, now(), rng);
        Self {
            identity,
            device,
            prekeys,
        }
    }
    fn key(&self) -> SigningPublicKey {
        self.identity.public()
    }
}

/// A sealed clip and its ciphertext chunks.
struct Clip {
    sealed: SealedClip,
    chunks: Vec<Vec<u8>>,
    content: Vec<u8>,
}

impl Clip {
    /// What the store charges for it.
    fn charge(&self) -> u64 {
        self.sealed.manifest().ciphertext_len()
    }
}

fn seal(len: usize, rng: &mut ChaCha20Rng) -> Clip {
    let content: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
        .collect();
    let header = ClipHeader {
        kind: ClipKind::Clip,
        allow_save: false,
        duration_ms: 10_000,
        created_at: now(),
        expires_at: now().plus(DEFAULT_CLIP_TTL_MS),
        content_len: len as u64,
        parent: None,
        media_type: "video/mp4".into(),
    };
    let mut chunks = Vec::new();
    let sealed = seal_reader(
        header,
        &mut &content[..],
        |_, c| {
            chunks.push(c.to_vec());
            Ok(())
        },
        rng,
    )
    .expect("seals");
    Clip {
        sealed,
        chunks,
        content,
    }
}

/// A client swarm connected to the relay.
struct Peer {
    client: net::Client,
    relay: PeerId,
    task: JoinHandle<()>,
    drain: JoinHandle<()>,
}

impl Peer {
    async fn connect(address: &Multiaddr, relay: PeerId) -> Peer {
        let (client, mut events, event_loop) =
            net::new(Keypair::generate_ed25519(), &Limits::default()).expect("swarm");
        let task = tokio::spawn(event_loop.run());
        let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
        let peer = tokio::time::timeout(TIMEOUT, client.dial(address.clone()))
            .await
            .expect("dial in time")
            .expect("dial");
        assert_eq!(peer, relay);
        Peer {
            client,
            relay,
            task,
            drain,
        }
    }

    async fn req(&self, request: Request) -> Response {
        self.client
            .request(self.relay, request, TIMEOUT)
            .await
            .expect("a response")
    }

    async fn login(&self, device: &Device) {
        let Response::Challenge { nonce } = self.req(Request::Challenge).await else {
            panic!("no challenge")
        };
        let proof = LoginProof::sign(
            device,
            &self.relay.to_bytes(),
            &self.client.local_peer_id().to_bytes(),
            &nonce,
        )
        .unwrap();
        assert_eq!(self.req(Request::Login(proof)).await, Response::Ok);
    }

    /// Logs in as `party` and publishes its signed prekey and one one-time prekey.
    async fn publish(&self, party: &mut Party, rng: &mut ChaCha20Rng) {
        self.login(&party.device).await;
        let one_time = party.prekeys.issue_one_time(&party.device, 1, now(), rng);
        let r = self
            .req(Request::PublishPrekeys {
                signed_prekey: party.prekeys.signed_prekey().clone(),
                one_time,
            })
            .await;
        assert_eq!(r, Response::Ok);
    }

    /// Fetches `to`'s bundle and seals an envelope for `clip` from `from`.
    async fn envelope(
        &self,
        from: &Party,
        to: &Party,
        clip: &Clip,
        rng: &mut ChaCha20Rng,
    ) -> Envelope {
        let Response::Bundle(bundle) = self
            .req(Request::FetchBundle {
                identity_key: to.key(),
            })
            .await
        else {
            panic!("no bundle")
        };
        let prekeys = bundle.verify(&to.key(), now()).expect("bundle verifies");
        Envelope::seal(&clip.sealed, &from.device, &prekeys, rng).unwrap()
    }

    async fn deposit(&self, to: &Party, envelope: &Envelope, clip: &Clip) -> Response {
        self.req(Request::Deposit {
            mailbox: to.key(),
            envelope: envelope.clone(),
            manifest: clip.sealed.manifest().clone(),
        })
        .await
    }

    async fn upload(&self, clip: &Clip) {
        for (i, bytes) in clip.chunks.iter().enumerate() {
            let r = self
                .req(Request::PutChunk {
                    message_id: clip.sealed.message_id(),
                    index: i as u32,
                    bytes: bytes.clone(),
                })
                .await;
            assert_eq!(r, Response::Ok);
        }
    }

    async fn close(self) {
        self.client.shutdown().await;
        let _ = self.task.await;
        self.drain.abort();
    }
}

fn code(r: &Response) -> ErrorCode {
    match r {
        Response::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn accepted_all(clip: &Clip) -> Response {
    Response::DepositAccepted {
        missing: (0..clip.chunks.len() as u32).collect(),
    }
}

/// `(seq, message id)` of every entry of the logged-in mailbox.
async fn listed(peer: &Peer) -> Vec<(u64, MessageId)> {
    let Response::Entries { entries, more } = peer
        .req(Request::List {
            after: 0,
            limit: 64,
        })
        .await
    else {
        panic!("no entries")
    };
    assert!(!more);
    entries.iter().map(|e| (e.seq, e.message_id)).collect()
}

#[test]
fn mailbox_depositor_and_clip_size_quotas_hold_and_free_up() {
    let started = Instant::now();
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = seeded(11);
    let alice = Party::new(&mut rng);
    let mut bob = Party::new(&mut rng);
    let mut carol = Party::new(&mut rng);
    let mut dave = Party::new(&mut rng);
    let first = seal(300 * 1024, &mut rng);
    let second = seal(300 * 1024, &mut rng);
    let to_carol = seal(300 * 1024, &mut rng);
    let to_dave = seal(300 * 1024, &mut rng);
    let big = seal(900 * 1024, &mut rng);
    let c = first.charge();
    for clip in [&second, &to_carol, &to_dave] {
        assert_eq!(clip.charge(), c);
    }
    assert!(big.charge() > 2 * c);
    // A mailbox holds one clip, not two; a depositor two, not three; a clip
    // may be twice the small ones, not three times.
    let config = format!(
        "[store]\nmax_clip_bytes = {}\nmailbox_bytes = {}\ndepositor_bytes = {}\n",
        2 * c,
        c + c / 2,
        2 * c + c / 2
    );
    let relay = start_with(home.path(), dir.path(), &config);
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let bob_peer = Peer::connect(&addr, relay_id).await;
        bob_peer.publish(&mut bob, &mut rng).await;
        for party in [&mut carol, &mut dave] {
            let p = Peer::connect(&addr, relay_id).await;
            p.publish(party, &mut rng).await;
            p.close().await;
        }
        let alice_peer = Peer::connect(&addr, relay_id).await;

        // Over the clip size: TooLarge, whatever the quotas.
        let env = alice_peer.envelope(&alice, &bob, &big, &mut rng).await;
        let r = alice_peer.deposit(&bob, &env, &big).await;
        assert_eq!(code(&r), ErrorCode::TooLarge, "{r:?}");

        // One clip fits the mailbox.
        let env_first = alice_peer.envelope(&alice, &bob, &first, &mut rng).await;
        let r = alice_peer.deposit(&bob, &env_first, &first).await;
        assert_eq!(r, accepted_all(&first));
        alice_peer.upload(&first).await;

        // A second does not: refused, and nothing of it is stored.
        let env_second = alice_peer.envelope(&alice, &bob, &second, &mut rng).await;
        let r = alice_peer.deposit(&bob, &env_second, &second).await;
        assert_eq!(code(&r), ErrorCode::QuotaExceeded, "{r:?}");
        let r = alice_peer
            .req(Request::GetManifest {
                message_id: second.sealed.message_id(),
            })
            .await;
        assert_eq!(code(&r), ErrorCode::NotFound);

        // The depositor's quota counts pending deposits too: a second clip
        // (to Carol, never uploaded) fits, a third (to Dave, whose mailbox is
        // empty) does not, while another peer may still deposit it.
        let env_carol = alice_peer
            .envelope(&alice, &carol, &to_carol, &mut rng)
            .await;
        let r = alice_peer.deposit(&carol, &env_carol, &to_carol).await;
        assert_eq!(r, accepted_all(&to_carol));
        let env_dave = alice_peer.envelope(&alice, &dave, &to_dave, &mut rng).await;
        let r = alice_peer.deposit(&dave, &env_dave, &to_dave).await;
        assert_eq!(code(&r), ErrorCode::QuotaExceeded, "{r:?}");
        let other = Peer::connect(&addr, relay_id).await;
        let r = other.deposit(&dave, &env_dave, &to_dave).await;
        assert_eq!(r, accepted_all(&to_dave));
        other.close().await;

        // Bob acknowledges the first clip: its charge is returned to his
        // mailbox and to Alice, and the second deposit succeeds.
        let entries = listed(&bob_peer).await;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].1, first.sealed.message_id());
        let r = bob_peer
            .req(Request::Ack {
                seqs: vec![entries[0].0],
            })
            .await;
        assert_eq!(r, Response::Ok);
        let r = alice_peer.deposit(&bob, &env_second, &second).await;
        assert_eq!(r, accepted_all(&second));
        alice_peer.upload(&second).await;

        // And it arrives whole.
        let Response::Entries { entries, .. } = bob_peer
            .req(Request::List {
                after: 0,
                limit: 64,
            })
            .await
        else {
            panic!("no entries")
        };
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(entry.message_id, second.sealed.message_id());
        let secret = bob
            .prekeys
            .take_secret(&entry.envelope.prekey())
            .expect("prekey secret");
        let contents = entry.envelope.open(&bob.key(), &secret).expect("opens");
        let mut opener = contents
            .open_manifest(second.sealed.manifest().clone(), now())
            .expect("manifest");
        let mut plaintext = Vec::new();
        for hash in second.sealed.manifest().chunk_hashes().to_vec() {
            let Response::Chunk { bytes } = bob_peer
                .req(Request::GetChunk {
                    hash,
                    offset: 0,
                    length: 0,
                })
                .await
            else {
                panic!("no chunk")
            };
            plaintext.extend_from_slice(opener.open_next(&bytes).expect("chunk opens"));
        }
        opener.finish().expect("complete");
        assert!(plaintext == second.content, "plaintext differs");
        alice_peer.close().await;
        bob_peer.close().await;
    });
    relay.stop();
    eprintln!("quotas: {:?}", started.elapsed());
}

#[test]
fn a_mailbox_entry_quota_counts_pending_deposits() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = seeded(12);
    let alice = Party::new(&mut rng);
    let mut bob = Party::new(&mut rng);
    let clips: Vec<Clip> = (0..3).map(|_| seal(1000, &mut rng)).collect();
    let relay = start_with(home.path(), dir.path(), "[store]\nmailbox_entries = 2\n");
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let bob_peer = Peer::connect(&addr, relay_id).await;
        bob_peer.publish(&mut bob, &mut rng).await;
        let alice_peer = Peer::connect(&addr, relay_id).await;
        let mut envs = Vec::new();
        for clip in &clips {
            envs.push(alice_peer.envelope(&alice, &bob, clip, &mut rng).await);
        }
        // Two pending deposits fill the mailbox; a repeated one is no new entry.
        for (clip, env) in clips.iter().zip(&envs).take(2) {
            assert_eq!(
                alice_peer.deposit(&bob, env, clip).await,
                accepted_all(clip)
            );
        }
        let r = alice_peer.deposit(&bob, &envs[1], &clips[1]).await;
        assert_eq!(r, accepted_all(&clips[1]));
        let r = alice_peer.deposit(&bob, &envs[2], &clips[2]).await;
        assert_eq!(code(&r), ErrorCode::QuotaExceeded, "{r:?}");
        alice_peer.close().await;
        bob_peer.close().await;
    });
    relay.stop();
}

#[test]
fn a_peer_over_its_request_rate_is_refused_then_served_again() {
    let started = Instant::now();
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let relay = start_with(
        home.path(),
        dir.path(),
        "[rate]\nrequests_per_sec = 1.0\nburst = 3\n",
    );
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let peer = Peer::connect(&addr, relay_id).await;
        let answers =
            futures::future::join_all((0..10).map(|_| peer.req(Request::Challenge))).await;
        let limited = answers
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Response::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    }
                )
            })
            .count();
        let served = answers
            .iter()
            .filter(|r| matches!(r, Response::Challenge { .. }))
            .count();
        assert_eq!(limited + served, 10, "{answers:?}");
        assert!(limited >= 1, "{answers:?}");
        // The burst, and what refilled while the requests were in flight.
        let elapsed = started.elapsed().as_secs_f64();
        assert!(
            served >= 3 && served as f64 <= 3.0 + elapsed + 1.0,
            "{served} served in {elapsed} s"
        );

        // The bucket is per peer: another one is served at once.
        let other = Peer::connect(&addr, relay_id).await;
        assert!(matches!(
            other.req(Request::Challenge).await,
            Response::Challenge { .. }
        ));
        other.close().await;

        // At one token a second, the first peer is served again within 2 s.
        let limited_at = Instant::now();
        let deadline = limited_at + Duration::from_secs(2);
        loop {
            match peer.req(Request::Challenge).await {
                Response::Challenge { .. } => break,
                r => assert_eq!(code(&r), ErrorCode::RateLimited),
            }
            assert!(Instant::now() < deadline, "still rate limited after 2 s");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        eprintln!("served again after {:?}", limited_at.elapsed());
        peer.close().await;
    });
    relay.stop();
}
