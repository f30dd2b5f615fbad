//! Going live: the broadcaster's side (LIVE.md §3, §5, §8). A
//! [`Broadcaster`] draws a broadcast id and epoch keys from the client's
//! generator, hands each key to its viewers in envelopes (epoch 0 is the
//! start notification), seals and signs each segment and publishes it to
//! the overlay, where the viewers carry it.

use std::sync::{Arc, Mutex};

use libp2p::Multiaddr;
use mayfly_protocol::fmp4::MediaSegment;
use mayfly_protocol::live::chat::{ChatBody, ChatKind};
use mayfly_protocol::live::{BroadcastId, EpochKey, LIVE_EPOCH_MS, SegmentGate, SegmentSealer};
use mayfly_protocol::{Codec, LiveKeyGrant, SigningPublicKey, UnixMillis};

use super::audience::{Audience, AudienceEvent};
use super::replay::{ReplayStats, Uploader};
use super::{LiveConfig, LiveError, LiveEvent, LivePeer};
use crate::client::{Client, ClientError};

/// How a broadcast runs. Defaults live here.
#[derive(Debug, Clone)]
pub struct BroadcastConfig {
    /// Whether relays keep the segments for a replay.
    pub replay: bool,
    /// The longest life of one epoch key, in ms: the key rotates on the
    /// first segment after it.
    pub epoch_ms: u64,
    /// Where the overlay peer listens.
    pub listen: Multiaddr,
    /// Addresses viewers are told to join at; empty for the listening
    /// addresses.
    pub advertise: Vec<Multiaddr>,
    /// The overlay's settings.
    pub live: LiveConfig,
    /// Audience events queued for the application; beyond, they are
    /// dropped (and counted) rather than stall the overlay.
    pub audience_queue: usize,
    /// Segments waiting to be uploaded to the replay; one beyond is left
    /// out of the replay rather than hold the stream up.
    pub replay_queue: usize,
    /// How long the end of a broadcast waits for the replay's uploads.
    pub replay_finish: std::time::Duration,
    /// Whether to ask this device's relays to carry the broadcast in their
    /// overlays (LIVE.md §8.2), so that viewers who cannot dial the
    /// broadcaster reach it through them.
    pub relay_forward: bool,
}

impl Default for BroadcastConfig {
    fn default() -> Self {
        Self {
            replay: false,
            epoch_ms: LIVE_EPOCH_MS,
            listen: "/ip4/0.0.0.0/tcp/0".parse().expect("a multiaddr"),
            advertise: Vec::new(),
            live: LiveConfig::default(),
            audience_queue: 256,
            replay_queue: 64,
            replay_finish: std::time::Duration::from_secs(30),
            relay_forward: true,
        }
    }
}

/// What a broadcast has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastStats {
    /// Segments sealed.
    pub segments: u64,
    /// Of those, segments published to at least one peer (a viewer, or a
    /// relay's forwarder).
    pub published: u64,
    /// Bytes of sealed segments.
    pub bytes: u64,
    /// Epoch keys used (1 + rotations).
    pub epochs: u32,
    /// Messages other peers sent this broadcaster that its gates refused.
    pub refused: u64,
    /// Everyone who watched under their name, in the order they joined.
    pub named_viewers: Vec<SigningPublicKey>,
    /// How many anonymous watches there were.
    pub anonymous_viewers: u64,
    /// Audience events dropped because the application did not take them
    /// in time (the queue is bounded).
    pub audience_dropped: u64,
    /// What the replay's uploads did, with a replay.
    pub replay: Option<ReplayStats>,
    /// Relays that carry the broadcast in their overlays (their addresses).
    pub forwarding_relays: Vec<String>,
    /// Relays asked to carry it that did not, and why.
    pub forward_errors: Vec<String>,
}

/// Contacts that could not be handed a key, and why.
pub type Failed = Vec<(String, ClientError)>;

/// A running broadcast.
pub struct Broadcaster {
    client: Client,
    peer: LivePeer,
    listener: tokio::task::JoinHandle<(u64, u64)>,
    audience: Arc<Mutex<Audience>>,
    audience_rx: Option<tokio::sync::mpsc::Receiver<AudienceEvent>>,
    token: [u8; 16],
    sealer: SegmentSealer,
    id: BroadcastId,
    started_at: UnixMillis,
    epoch_started: UnixMillis,
    viewers: Vec<SigningPublicKey>,
    peers: Vec<String>,
    config: BroadcastConfig,
    stats: BroadcastStats,
    /// The replay's uploads, with a replay.
    uploader: Option<Uploader>,
    /// The overlay peer ids of the relays' forwarders.
    forwarder_ids: Vec<libp2p::PeerId>,
}

impl Broadcaster {
    /// Starts a broadcast to `viewers` (contacts' identity keys): starts
    /// the overlay peer and sends each viewer the start notification
    /// (epoch 0). Returns the viewers that could not be told; they can
    /// still be added with [`Broadcaster::add_viewer`].
    pub async fn start(
        client: &Client,
        viewers: Vec<SigningPublicKey>,
        config: BroadcastConfig,
    ) -> Result<(Self, Failed), LiveError> {
        let id = BroadcastId(client.random_32());
        let uploader = if config.replay {
            let relays = client.own_relays()?;
            if relays.is_empty() {
                return Err(LiveError::NoRelayRef);
            }
            Some(Uploader::start(client, relays, id, config.replay_queue))
        } else {
            None
        };
        let key = EpochKey::from_bytes(client.random_32());
        let (device, identity) = client.with_home(|h| (h.device().clone(), h.identity().public()));
        // The broadcaster's own gate only judges what others send it.
        let gate = SegmentGate::new(id, identity, device.certificate().serial());
        let (forwarders, forwarding_relays, forward_errors) = if config.relay_forward {
            ask_relays(client, id).await
        } else {
            Default::default()
        };
        let mut live = super::on_clock_of(client, &config.live);
        // Each forwarder takes every segment (an explicit peer): the mesh
        // gives up a place for it, so the upload stays what the mesh alone
        // would be (LIVE.md §8.2).
        live.broadcaster_mesh_n = live
            .broadcaster_mesh_n
            .saturating_sub(forwarders.len())
            .max(1);
        let (peer, events) =
            LivePeer::start(gate, true, config.listen.clone(), &live, None).await?;
        for f in &forwarders {
            if let Some(a) = f.first() {
                peer.add_direct(a.clone()).await?;
            }
        }
        let forwarders: Vec<Multiaddr> = forwarders.into_iter().flatten().collect();
        // Its chat gate needs the keys: viewers seal joins and comments
        // under them.
        peer.add_key(0, key.clone()).await?;
        let audience = Arc::new(Mutex::new(Audience::new()));
        let (audience_tx, audience_rx) = tokio::sync::mpsc::channel(config.audience_queue);
        let listener = tokio::spawn(listen(
            client.clone(),
            events,
            audience.clone(),
            audience_tx,
        ));
        let advertise = if config.advertise.is_empty() {
            peer.addresses().to_vec()
        } else {
            config.advertise.clone()
        };
        // Room for the relays' forwarders: viewers who cannot dial the
        // broadcaster dial them.
        let own = mayfly_protocol::limits::MAX_LIVE_PEERS
            .saturating_sub(forwarders.len())
            .max(1);
        let peers = advertise
            .iter()
            .take(own)
            .map(|a| {
                a.clone()
                    .with(libp2p::multiaddr::Protocol::P2p(peer.peer_id()))
                    .to_string()
            })
            .chain(forwarders.iter().map(Multiaddr::to_string))
            .take(mayfly_protocol::limits::MAX_LIVE_PEERS)
            .collect();
        let now = client.now();
        let b = Self {
            client: client.clone(),
            peer,
            listener,
            audience,
            audience_rx: Some(audience_rx),
            token: client.random_32()[..16].try_into().expect("16 bytes"),
            sealer: SegmentSealer::new(device, id, key),
            id,
            started_at: now,
            epoch_started: now,
            viewers,
            peers,
            config,
            stats: BroadcastStats {
                epochs: 1,
                forwarding_relays,
                forward_errors,
                ..BroadcastStats::default()
            },
            uploader,
            forwarder_ids: forwarders
                .iter()
                .filter_map(|a| match a.iter().last() {
                    Some(libp2p::multiaddr::Protocol::P2p(p)) => Some(p),
                    _ => None,
                })
                .collect(),
        };
        let grant = b.grant();
        b.keep_own_key(&grant)?;
        let failed = b.client.send_live_key(&b.viewers, &grant).await?;
        Ok((b, failed))
    }

    /// The broadcast's id.
    pub fn id(&self) -> BroadcastId {
        self.id
    }

    /// When it started.
    pub fn started_at(&self) -> UnixMillis {
        self.started_at
    }

    /// The overlay addresses viewers are told to join at.
    pub fn peers(&self) -> &[String] {
        &self.peers
    }

    /// The overlay peer (for tests and tools: its address, its mesh).
    pub fn peer(&self) -> &LivePeer {
        &self.peer
    }

    /// How many viewers are in the overlay now: the peers subscribed to the
    /// broadcast that are not relays' forwarders.
    pub async fn viewers_in_overlay(&self) -> Result<usize, LiveError> {
        Ok(self
            .peer
            .subscribed_peers()
            .await?
            .iter()
            .filter(|p| !self.forwarder_ids.contains(p))
            .count())
    }

    /// Who is handed keys.
    pub fn viewers(&self) -> &[SigningPublicKey] {
        &self.viewers
    }

    /// What the broadcast has done so far.
    pub fn stats(&self) -> &BroadcastStats {
        &self.stats
    }

    /// The audience's joins, leaves and comments as they happen (LIVE.md
    /// §12). There is one receiver; later calls get `None`.
    pub fn audience_events(&mut self) -> Option<tokio::sync::mpsc::Receiver<AudienceEvent>> {
        self.audience_rx.take()
    }

    /// Who is watching now: the named viewers, and how many anonymous.
    pub fn watching(&self) -> (Vec<SigningPublicKey>, usize) {
        lock(&self.audience).present()
    }

    /// Posts a comment of the broadcaster's own, signed by its device.
    /// False if no viewer has joined the overlay yet.
    pub async fn comment(&self, text: &str) -> Result<bool, LiveError> {
        let body = ChatBody {
            kind: ChatKind::Comment,
            sent_at: self.client.now(),
            token: self.token,
            text: text.to_owned(),
        };
        let device = self.client.with_home(|h| h.device().clone());
        Ok(self
            .peer
            .chat(body, Some(device), self.client.random_32())
            .await?)
    }

    /// Adds a viewer and hands it the current key.
    pub async fn add_viewer(&mut self, identity: SigningPublicKey) -> Result<Failed, LiveError> {
        if !self.viewers.contains(&identity) {
            self.viewers.push(identity);
        }
        let grant = self.grant();
        Ok(self.client.send_live_key(&[identity], &grant).await?)
    }

    /// Removes a viewer: the key rotates at once and the new key goes to
    /// the others only (LIVE.md §3.4). The removed viewer can still open
    /// every segment sealed before.
    pub async fn remove_viewer(
        &mut self,
        identity: &SigningPublicKey,
    ) -> Result<Failed, LiveError> {
        self.viewers.retain(|v| v != identity);
        self.rotate().await
    }

    /// Starts a new epoch: a fresh key, handed to every viewer.
    pub async fn rotate(&mut self) -> Result<Failed, LiveError> {
        let key = EpochKey::from_bytes(self.client.random_32());
        let epoch = self.sealer.rotate(key.clone())?;
        self.peer.add_key(epoch, key).await?;
        self.epoch_started = self.client.now();
        self.stats.epochs += 1;
        let grant = self.grant();
        self.keep_own_key(&grant)?;
        Ok(self.client.send_live_key(&self.viewers, &grant).await?)
    }

    /// Seals `segment` (with `init`, the stream's init data, if it is a
    /// keyframe segment) and publishes it. The key rotates first if its
    /// epoch is older than `epoch_ms`. Returns whether any peer took it.
    pub async fn send(&mut self, init: &[u8], segment: &MediaSegment) -> Result<bool, LiveError> {
        if self.client.now().0.saturating_sub(self.epoch_started.0) >= self.config.epoch_ms {
            self.rotate().await?;
        }
        let init = if segment.keyframe { init } else { &[] };
        self.publish(
            segment.keyframe,
            false,
            init,
            &segment.bytes,
            segment.duration_ms,
        )
        .await
    }

    /// Ends the broadcast: publishes the end segment and stops the overlay
    /// peer after `linger` (so the end reaches the viewers).
    pub async fn end(mut self, linger: std::time::Duration) -> Result<BroadcastStats, LiveError> {
        self.publish(false, true, &[], &[], 0).await?;
        let linger = tokio::time::sleep(linger);
        if let Some(u) = self.uploader.take() {
            self.stats.replay = Some(u.finish(self.config.replay_finish).await);
        }
        linger.await;
        self.peer.stop().await;
        let (refused, dropped) = self.listener.await.unwrap_or((0, 0));
        self.stats.refused = refused;
        self.stats.audience_dropped = dropped;
        let (named, anonymous) = lock(&self.audience).ever();
        self.stats.named_viewers = named;
        self.stats.anonymous_viewers = anonymous;
        Ok(self.stats)
    }

    async fn publish(
        &mut self,
        keyframe: bool,
        end: bool,
        init: &[u8],
        media: &[u8],
        duration_ms: u32,
    ) -> Result<bool, LiveError> {
        let now = self.client.now();
        let seg = self
            .sealer
            .seal(keyframe, end, init, media, duration_ms, now)?;
        let bytes = seg.to_bytes();
        if let Some(u) = &mut self.uploader {
            u.push(seg.seq(), bytes.clone());
        }
        self.stats.segments += 1;
        self.stats.bytes += bytes.len() as u64;
        let took = self.peer.publish(bytes).await?;
        if took {
            self.stats.published += 1;
        }
        Ok(took)
    }

    /// With a replay, keeps the broadcaster's own copy of each epoch key
    /// in its home for `MAX_LIVE_TTL_MS`, as a viewer does (LIVE.md §3.2):
    /// its own replay can then be watched, and the broadcast is in `live
    /// list` to revoke. Without one, keys live in memory only.
    fn keep_own_key(&self, grant: &LiveKeyGrant) -> Result<(), LiveError> {
        if self.config.replay {
            let now = self.client.now();
            self.client.with_home(|h| {
                let own = h.identity().public();
                h.store_live_key(&own, grant, now)
            })?;
        }
        Ok(())
    }

    /// The current epoch's key, as a `LiveKey` message.
    fn grant(&self) -> LiveKeyGrant {
        LiveKeyGrant {
            broadcast_id: self.id,
            epoch: self.sealer.epoch(),
            key: self.sealer.key().clone(),
            started_at: self.started_at,
            replay: self.config.replay,
            peers: self.peers.clone(),
        }
    }
}

/// Relay forwarders a broadcast names at most, so that its own addresses
/// keep room among `MAX_LIVE_PEERS`.
const MAX_FORWARDERS: usize = 4;

/// Asks each of the device's relays to carry broadcast `id` (LIVE.md
/// §8.2). Returns each forwarder's addresses (at most [`MAX_FORWARDERS`]
/// in all), the relays that forward, and the refusals.
async fn ask_relays(
    client: &Client,
    id: BroadcastId,
) -> (Vec<Vec<Multiaddr>>, Vec<String>, Vec<String>) {
    let (mut forwarders, mut relays, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    let own = match client.own_relays() {
        Ok(r) => r,
        Err(e) => return (forwarders, relays, vec![e.to_string()]),
    };
    let mut room = MAX_FORWARDERS;
    for relay in own {
        if room == 0 {
            break;
        }
        match client.live_forward(&relay, &id).await {
            Ok(found) if !found.is_empty() => {
                let found: Vec<Multiaddr> = found.into_iter().take(room).collect();
                room -= found.len();
                forwarders.push(found);
                relays.push(relay.address.clone());
            }
            Ok(_) => errors.push(format!("{}: no forwarder address", relay.address)),
            Err(e) => errors.push(format!("{}: {e}", relay.address)),
        }
    }
    (forwarders, relays, errors)
}

/// How often silent viewers are looked for.
const EXPIRE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

fn lock(a: &Mutex<Audience>) -> std::sync::MutexGuard<'_, Audience> {
    // The audience holds no invariant a panic could break halfway.
    a.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Takes in what other peers send the broadcaster: counts refusals, keeps
/// the audience and passes its events on. Returns the refusals and the
/// events dropped when the application lagged.
async fn listen(
    client: Client,
    mut events: tokio::sync::mpsc::Receiver<LiveEvent>,
    audience: Arc<Mutex<Audience>>,
    tx: tokio::sync::mpsc::Sender<AudienceEvent>,
) -> (u64, u64) {
    let (mut refused, mut dropped) = (0, 0);
    let mut tick = tokio::time::interval(EXPIRE_EVERY);
    loop {
        let changes = tokio::select! {
            e = events.recv() => match e {
                None => return (refused, dropped),
                Some(LiveEvent::Refused { .. } | LiveEvent::ChatRefused { .. }) => {
                    refused += 1;
                    continue;
                }
                Some(LiveEvent::Chat { chat, .. }) => lock(&audience).observe(&chat, client.now()),
                Some(_) => continue,
            },
            _ = tick.tick() => lock(&audience).expire(client.now()),
        };
        for c in changes {
            if tx.try_send(c).is_err() {
                dropped += 1;
            }
        }
    }
}
