//! Going live: the broadcaster's side (LIVE.md §3, §5, §8). A
//! [`Broadcaster`] draws a broadcast id and epoch keys from the client's
//! generator, hands each key to its viewers in envelopes (epoch 0 is the
//! start notification), seals and signs each segment and publishes it to
//! the overlay, where the viewers carry it.

use libp2p::Multiaddr;
use mayfly_protocol::fmp4::MediaSegment;
use mayfly_protocol::live::{BroadcastId, EpochKey, LIVE_EPOCH_MS, SegmentGate, SegmentSealer};
use mayfly_protocol::{Codec, LiveKeyGrant, SigningPublicKey, UnixMillis};

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
}

impl Default for BroadcastConfig {
    fn default() -> Self {
        Self {
            replay: false,
            epoch_ms: LIVE_EPOCH_MS,
            listen: "/ip4/0.0.0.0/tcp/0".parse().expect("a multiaddr"),
            advertise: Vec::new(),
            live: LiveConfig::default(),
        }
    }
}

/// What a broadcast has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastStats {
    /// Segments sealed.
    pub segments: u64,
    /// Of those, segments published to at least one peer.
    pub published: u64,
    /// Bytes of sealed segments.
    pub bytes: u64,
    /// Epoch keys used (1 + rotations).
    pub epochs: u32,
    /// Messages other peers sent this broadcaster that its gate refused.
    pub refused: u64,
}

/// Contacts that could not be handed a key, and why.
pub type Failed = Vec<(String, ClientError)>;

/// A running broadcast.
pub struct Broadcaster {
    client: Client,
    peer: LivePeer,
    refused: tokio::task::JoinHandle<u64>,
    sealer: SegmentSealer,
    id: BroadcastId,
    started_at: UnixMillis,
    epoch_started: UnixMillis,
    viewers: Vec<SigningPublicKey>,
    peers: Vec<String>,
    config: BroadcastConfig,
    stats: BroadcastStats,
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
        let key = EpochKey::from_bytes(client.random_32());
        let (device, identity) = client.with_home(|h| (h.device().clone(), h.identity().public()));
        // The broadcaster's own gate only judges what others send it.
        let gate = SegmentGate::new(id, identity, device.certificate().serial());
        let live = super::on_clock_of(client, &config.live);
        let (peer, mut events) =
            LivePeer::start(gate, true, config.listen.clone(), &live, None).await?;
        let refused = tokio::spawn(async move {
            let mut n = 0;
            while let Some(e) = events.recv().await {
                if matches!(e, LiveEvent::Refused { .. }) {
                    n += 1;
                }
            }
            n
        });
        let advertise = if config.advertise.is_empty() {
            peer.addresses().to_vec()
        } else {
            config.advertise.clone()
        };
        let peers = advertise
            .iter()
            .take(mayfly_protocol::limits::MAX_LIVE_PEERS)
            .map(|a| {
                a.clone()
                    .with(libp2p::multiaddr::Protocol::P2p(peer.peer_id()))
                    .to_string()
            })
            .collect();
        let now = client.now();
        let b = Self {
            client: client.clone(),
            peer,
            refused,
            sealer: SegmentSealer::new(device, id, key),
            id,
            started_at: now,
            epoch_started: now,
            viewers,
            peers,
            config,
            stats: BroadcastStats {
                epochs: 1,
                ..BroadcastStats::default()
            },
        };
        let grant = b.grant(0, b.sealer.key().clone());
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

    /// Who is handed keys.
    pub fn viewers(&self) -> &[SigningPublicKey] {
        &self.viewers
    }

    /// What the broadcast has done so far.
    pub fn stats(&self) -> &BroadcastStats {
        &self.stats
    }

    /// Adds a viewer and hands it the current key.
    pub async fn add_viewer(&mut self, identity: SigningPublicKey) -> Result<Failed, LiveError> {
        if !self.viewers.contains(&identity) {
            self.viewers.push(identity);
        }
        let grant = self.grant(self.sealer.epoch(), self.sealer.key().clone());
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
        self.epoch_started = self.client.now();
        self.stats.epochs += 1;
        let grant = self.grant(epoch, key);
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
        tokio::time::sleep(linger).await;
        self.peer.stop().await;
        self.stats.refused = self.refused.await.unwrap_or(0);
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
        self.stats.segments += 1;
        self.stats.bytes += bytes.len() as u64;
        let took = self.peer.publish(bytes).await?;
        if took {
            self.stats.published += 1;
        }
        Ok(took)
    }

    fn grant(&self, epoch: u32, key: EpochKey) -> LiveKeyGrant {
        LiveKeyGrant {
            broadcast_id: self.id,
            epoch,
            key,
            started_at: self.started_at,
            replay: self.config.replay,
            peers: self.peers.clone(),
        }
    }
}
