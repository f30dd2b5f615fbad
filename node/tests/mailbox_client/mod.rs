//! A minimal mailbox client for process tests against `mayfly relay`
//! (parties, a connected peer, sealed clips), shared by `relay_metrics.rs`
//! and `relay_devices.rs`. Every wait is bounded by `common::TIMEOUT`.

#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use mayfly_node::config::Limits;
use mayfly_node::net::{self, Event};
use mayfly_protocol::mailbox::{ErrorCode, LoginProof, Notify, Request, Response};
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Upper bound for anything a test waits on.
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub fn now() -> UnixMillis {
    UnixMillis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    )
}

pub fn rng(seed: u64) -> ChaCha20Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(s)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A user: identity, device, prekeys.
pub struct Party {
    pub identity: Identity,
    pub device: Device,
    pub prekeys: PrekeyStore,
}

impl Party {
    pub fn new(rng: &mut ChaCha20Rng) -> Self {
        let identity = Identity::generate(rng);
        let device = identity.new_device(1, now(), rng);
        let prekeys = PrekeyStore::new(&device, now(), rng);
        Self {
            identity,
            device,
            prekeys,
        }
    }

    pub fn key(&self) -> SigningPublicKey {
        self.identity.public()
    }
}

/// A sealed clip and its ciphertext chunks.
pub struct Clip {
    pub sealed: SealedClip,
    pub chunks: Vec<Vec<u8>>,
}

pub fn seal(len: usize, rng: &mut ChaCha20Rng) -> Clip {
    let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
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
    Clip { sealed, chunks }
}

/// A client swarm connected to the relay.
pub struct Peer {
    pub client: net::Client,
    pub relay: PeerId,
    pub notifications: mpsc::Receiver<Notify>,
    task: JoinHandle<()>,
    drain: JoinHandle<()>,
}

impl Peer {
    pub async fn connect(address: &Multiaddr, relay: PeerId) -> Peer {
        let (client, mut events, event_loop) =
            net::new(Keypair::generate_ed25519(), &Limits::default()).expect("swarm");
        let task = tokio::spawn(event_loop.run());
        let (tx, notifications) = mpsc::channel(64);
        // Keeps the event channel drained, so the swarm never stalls.
        let drain = tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if let Event::Notification { notify, .. } = e {
                    let _ = tx.try_send(notify);
                }
            }
        });
        let peer = tokio::time::timeout(TIMEOUT, client.dial(address.clone()))
            .await
            .expect("dial in time")
            .expect("dial");
        assert_eq!(peer, relay);
        Peer {
            client,
            relay,
            notifications,
            task,
            drain,
        }
    }

    pub async fn req(&self, request: Request) -> Response {
        self.client
            .request(self.relay, request, TIMEOUT)
            .await
            .expect("a response")
    }

    pub async fn login(&self, device: &Device) -> Response {
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
        self.req(Request::Login(proof)).await
    }

    /// Publishes `party`'s signed prekey and `one_time` one-time prekeys
    /// (logged in as `party.device`).
    pub async fn publish(&self, party: &mut Party, one_time: usize, rng: &mut ChaCha20Rng) {
        let otks = party
            .prekeys
            .issue_one_time(&party.device, one_time, now(), rng);
        let r = self
            .req(Request::PublishPrekeys {
                signed_prekey: party.prekeys.signed_prekey().clone(),
                one_time: otks,
            })
            .await;
        assert_eq!(r, Response::Ok);
    }

    pub async fn list(&self) -> Response {
        self.req(Request::List {
            after: 0,
            limit: 64,
        })
        .await
    }

    pub async fn close(self) {
        self.client.shutdown().await;
        let _ = self.task.await;
        self.drain.abort();
    }
}

pub fn code(r: &Response) -> ErrorCode {
    match r {
        Response::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Fetches `to`'s bundle over `from_peer` and deposits `clip` to it from
/// `from` with every chunk: the message is then complete at the relay.
pub async fn deposit_clip(
    from_peer: &Peer,
    from: &Party,
    to: &Party,
    clip: &Clip,
    rng: &mut ChaCha20Rng,
) {
    let Response::Bundle(bundle) = from_peer
        .req(Request::FetchBundle {
            identity_key: to.key(),
        })
        .await
    else {
        panic!("no bundle")
    };
    let prekeys = bundle.verify(&to.key(), now()).expect("bundle verifies");
    let envelope = Envelope::seal(&clip.sealed, &from.device, &prekeys, rng).unwrap();
    let r = from_peer
        .req(Request::Deposit {
            mailbox: to.key(),
            envelope,
            manifest: clip.sealed.manifest().clone(),
        })
        .await;
    let all: Vec<u32> = (0..clip.chunks.len() as u32).collect();
    assert_eq!(r, Response::DepositAccepted { missing: all });
    for (i, bytes) in clip.chunks.iter().enumerate() {
        let r = from_peer
            .req(Request::PutChunk {
                message_id: clip.sealed.message_id(),
                index: i as u32,
                bytes: bytes.clone(),
            })
            .await;
        assert_eq!(r, Response::Ok);
    }
}
