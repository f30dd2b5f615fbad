//! A minimal mailbox client for process tests against `mayfly relay`
//! (parties, a connected peer, sealed clips, deposits, listing and opening),
//! shared by the `relay_*.rs` process tests. Every wait is bounded by
//! `TIMEOUT`.

#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use mayfly_node::config::Limits;
use mayfly_node::net::{self, Event, NetError};
use mayfly_protocol::mailbox::{Entry, ErrorCode, LoginProof, Notify, Request, Response};
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

/// A sealed clip, its ciphertext chunks and its plaintext.
pub struct Clip {
    pub sealed: SealedClip,
    pub chunks: Vec<Vec<u8>>,
    pub content: Vec<u8>,
}

impl Clip {
    pub fn id(&self) -> MessageId {
        self.sealed.message_id()
    }

    /// What the store charges for it.
    pub fn charge(&self) -> u64 {
        self.sealed.manifest().ciphertext_len()
    }
}

/// Seals `len` bytes of a short repeating pattern.
pub fn seal(len: usize, rng: &mut ChaCha20Rng) -> Clip {
    seal_content((0..len).map(|i| (i % 251) as u8).collect(), rng)
}

/// Seals `len` bytes of a pattern that does not repeat within a chunk,
/// varied by `salt`.
pub fn seal_salted(len: usize, salt: u8, rng: &mut ChaCha20Rng) -> Clip {
    let content = (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8 ^ salt)
        .collect();
    seal_content(content, rng)
}

pub fn seal_content(content: Vec<u8>, rng: &mut ChaCha20Rng) -> Clip {
    seal_until(content, now().plus(DEFAULT_CLIP_TTL_MS), rng)
}

/// Seals `content` as a clip that expires at `expires_at`.
pub fn seal_until(content: Vec<u8>, expires_at: UnixMillis, rng: &mut ChaCha20Rng) -> Clip {
    let header = ClipHeader {
        kind: ClipKind::Clip,
        allow_save: false,
        duration_ms: 10_000,
        created_at: now(),
        expires_at,
        content_len: content.len() as u64,
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
pub struct Peer {
    pub client: net::Client,
    pub relay: PeerId,
    pub notifications: mpsc::Receiver<Notify>,
    task: JoinHandle<()>,
    drain: JoinHandle<()>,
}

impl Peer {
    pub async fn connect(address: &Multiaddr, relay: PeerId) -> Peer {
        Self::connect_with(address, relay, Keypair::generate_ed25519()).await
    }

    /// Connects with the client identity `keypair`.
    pub async fn connect_with(address: &Multiaddr, relay: PeerId, keypair: Keypair) -> Peer {
        let (client, mut events, event_loop) =
            net::new(keypair, &Limits::default()).expect("swarm");
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

    pub async fn try_req(&self, request: Request) -> Result<Response, NetError> {
        self.client.request(self.relay, request, TIMEOUT).await
    }

    pub async fn req(&self, request: Request) -> Response {
        self.try_req(request).await.expect("a response")
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

    /// Logs in as `device` and asserts the relay accepted it.
    pub async fn login_ok(&self, device: &Device) {
        assert_eq!(self.login(device).await, Response::Ok);
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

    /// Logs in as `party` and publishes its signed prekey and `one_time`
    /// one-time prekeys.
    pub async fn login_and_publish(
        &self,
        party: &mut Party,
        one_time: usize,
        rng: &mut ChaCha20Rng,
    ) {
        self.login_ok(&party.device).await;
        self.publish(party, one_time, rng).await;
    }

    /// Fetches `to`'s bundle and seals an envelope for `clip` from `from`.
    pub async fn envelope(
        &self,
        from: &Party,
        to: &Party,
        clip: &Clip,
        rng: &mut ChaCha20Rng,
    ) -> Envelope {
        envelope_for(self, from, to, clip, rng).await.0
    }

    pub async fn deposit(&self, to: &Party, envelope: &Envelope, clip: &Clip) -> Response {
        self.req(deposit(to, envelope, clip)).await
    }

    /// Puts every chunk of `clip`, each answered Ok.
    pub async fn upload(&self, clip: &Clip) {
        for i in 0..clip.chunks.len() {
            assert_eq!(self.req(put(clip, i)).await, Response::Ok);
        }
    }

    pub async fn next_notification(&mut self) -> Notify {
        tokio::time::timeout(TIMEOUT, self.notifications.recv())
            .await
            .expect("a notification in time")
            .expect("event loop running")
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

pub fn deposit(to: &Party, envelope: &Envelope, clip: &Clip) -> Request {
    Request::Deposit {
        mailbox: to.key(),
        envelope: envelope.clone(),
        manifest: clip.sealed.manifest().clone(),
    }
}

pub fn put(clip: &Clip, i: usize) -> Request {
    Request::PutChunk {
        message_id: clip.sealed.message_id(),
        index: i as u32,
        bytes: clip.chunks[i].clone(),
    }
}

/// Every chunk index of `clip`.
pub fn all(clip: &Clip) -> Vec<u32> {
    (0..clip.chunks.len() as u32).collect()
}

/// The answer to a deposit of `clip` with none of its chunks stored yet.
pub fn accepted_all(clip: &Clip) -> Response {
    Response::DepositAccepted { missing: all(clip) }
}

/// `from_peer` fetches `to`'s bundle and seals an envelope for `clip` from
/// `from` to it: the envelope and the bundle.
pub async fn envelope_for(
    from_peer: &Peer,
    from: &Party,
    to: &Party,
    clip: &Clip,
    rng: &mut ChaCha20Rng,
) -> (Envelope, PrekeyBundle) {
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
    (envelope, *bundle)
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
    let envelope = from_peer.envelope(from, to, clip, rng).await;
    assert_eq!(
        from_peer.deposit(to, &envelope, clip).await,
        accepted_all(clip)
    );
    from_peer.upload(clip).await;
}

/// Every complete entry of the logged-in mailbox, page by page.
pub async fn list_all(peer: &Peer) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.seq);
        let Response::Entries { entries, more } =
            peer.req(Request::List { after, limit: 64 }).await
        else {
            panic!("no entries")
        };
        out.extend(entries);
        if !more {
            return out;
        }
    }
}

/// Fetches the manifest and every chunk of `entry` and opens it as `bob`:
/// its plaintext.
pub async fn open_entry(peer: &Peer, bob: &mut Party, entry: &Entry) -> Vec<u8> {
    let Response::Manifest(manifest) = peer
        .req(Request::GetManifest {
            message_id: entry.message_id,
        })
        .await
    else {
        panic!("no manifest for a listed entry")
    };
    let secret = bob
        .prekeys
        .take_secret(&entry.envelope.prekey())
        .expect("prekey secret");
    let contents = entry
        .envelope
        .open(&bob.key(), &secret)
        .expect("envelope opens");
    let hashes = manifest.chunk_hashes().to_vec();
    let mut opener = contents.open_manifest(*manifest, now()).expect("manifest");
    let mut out = Vec::new();
    for hash in hashes {
        let Response::Chunk { bytes } = peer
            .req(Request::GetChunk {
                hash,
                offset: 0,
                length: 0,
            })
            .await
        else {
            panic!("a chunk of a listed entry is missing")
        };
        out.extend_from_slice(opener.open_next(&bytes).expect("chunk opens"));
    }
    opener.finish().expect("complete");
    out
}
