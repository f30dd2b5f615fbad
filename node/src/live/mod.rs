//! Live segments carried by the viewers: one libp2p gossipsub topic per
//! broadcast, with [`SegmentGate`] as the application's message validation
//! (LIVE.md §6, §8).
//!
//! Gossipsub does the distribution: each peer keeps a small mesh of others
//! in the topic and forwards each message to its mesh once, so the
//! broadcaster sends each segment to a few peers however many watch. A
//! message is forwarded only after this module accepts it: the gate checks
//! the broadcaster's signature, freshness and sequence number without any
//! key, so forged, corrupted and replayed segments stop at the first
//! honest peer, and gossipsub scores down the peer that sent them.
//!
//! Messages are published anonymously (no libp2p source or sequence number
//! on the wire): the segment carries its own signature, and the id gossipsub
//! uses to drop duplicates is the BLAKE3 hash of the segment.
//!
//! [`LivePeer`] runs one peer's swarm in a task: the broadcaster (which
//! publishes), a viewer, or a relay helping viewers (which forwards without
//! keys). [`Broadcaster`] goes live on top of it, [`watch`] watches.

mod audience;
mod broadcast;
pub mod control;
mod discovery;
mod forward;
mod peer;
mod replay;
mod watch;

pub use audience::{Audience, AudienceEvent, Speaker};
pub use broadcast::{BroadcastConfig, BroadcastStats, Broadcaster, Failed};
pub use forward::{ForwardError, ForwardLimits, Forwards};
pub use peer::{LiveEvent, LivePeer, LivePeerError};
pub use replay::{
    ReplayAudience, ReplayStats, Revoked, replay_viewers, revoke_replay, watch_replay,
};
pub use watch::{WatchConfig, WatchProgress, WatchSummary, WatchUpdate, comment, watch};

/// A live broadcast or watch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The overlay peer failed.
    #[error(transparent)]
    Peer(#[from] LivePeerError),
    /// The client failed (sending a key).
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// The home failed (reading keys).
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    /// Sealing failed (a segment too long, the broadcast ended).
    #[error(transparent)]
    Protocol(#[from] mayfly_protocol::Error),
    /// Writing the video out failed.
    #[error("writing the video: {0}")]
    Output(std::io::Error),
    /// None of the broadcast's overlay addresses could be dialled.
    #[error("the broadcast names no address that can be dialled")]
    NoPeers,
    /// A comment could not be posted.
    #[error("the comment was not posted: {0}")]
    Comment(String),
    /// A broadcast with a replay needs a relay to keep it.
    #[error("a replay is kept at your relays, and this home has none")]
    NoRelayRef,
    /// Only its broadcaster can revoke a broadcast.
    #[error("this broadcast is not yours to revoke")]
    NotYours,
}

/// Follows or unfollows the contact `name` for a control request (CLIENT.md
/// §4.7), as `mayfly follow` and `unfollow` do.
pub async fn follow(
    client: &crate::client::Client,
    name: &str,
    follow: bool,
) -> Result<(), String> {
    let c = client
        .with_home(|h| h.find_contact(name))
        .map_err(|e| e.to_string())?;
    let r = if follow {
        client.follow(&c).await
    } else {
        client.unfollow(&c).await
    };
    r.map_err(|e| e.to_string())
}

/// `config` with the client's clock: its test offset applied to the
/// peer's freshness checks.
fn on_clock_of(client: &crate::client::Client, config: &LiveConfig) -> LiveConfig {
    LiveConfig {
        clock_offset_ms: client.now().0 as i64 - system_now_ms() as i64,
        ..config.clone()
    }
}

/// The system clock in Unix ms.
fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

use std::time::Duration;

use libp2p::gossipsub::{self, IdentTopic, MessageId};
use mayfly_protocol::live::{BroadcastId, MAX_SEGMENT_PLAINTEXT_LEN};

/// Gossipsub's protocol id prefix for Mayfly live topics.
pub const PROTOCOL_PREFIX: &str = "/mayfly/live";

/// The largest gossip message data: a segment of the largest plaintext.
pub const MAX_MESSAGE_LEN: usize = MAX_SEGMENT_PLAINTEXT_LEN + 16 + 273;
/// Room in a gossipsub RPC for what surrounds one message's data (the
/// topic, protobuf framing, control messages piggybacked on it).
const RPC_OVERHEAD: usize = 4096;

/// How a live peer joins the overlay. Defaults live here.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Peers each viewer keeps in its mesh (gossipsub D); bounds of the mesh
    /// are D − 2 and D + 4.
    pub mesh_n: usize,
    /// Peers the broadcaster keeps in its mesh: what it uploads per segment.
    pub broadcaster_mesh_n: usize,
    /// Gossipsub's heartbeat, which repairs meshes and sends gossip.
    pub heartbeat: Duration,
    /// Events queued for the application before the peer waits for it.
    pub event_queue: usize,
    /// Commands queued for the peer's task.
    pub command_queue: usize,
    /// Whether the broadcaster sends each segment to every peer it is
    /// connected to, not only its mesh (direct fan-out: a baseline for
    /// benchmarks, never the default).
    pub flood_publish: bool,
    /// Added to the system clock when judging segments' freshness (tests
    /// of expiry; the client's `clock_offset_ms`).
    pub clock_offset_ms: i64,
    /// Accepted segments of an epoch whose key has not come yet, held until
    /// it does (then opened), the oldest going out unopened beyond this.
    pub hold_without_key: usize,
    /// Other viewers a viewer dials after discovering them at the
    /// broadcaster (LIVE.md §8.1).
    pub discover_peers: usize,
    /// Registrations a viewer asks for in one discovery (each is a signed
    /// peer record of a few hundred bytes; rendezvous messages are at most
    /// 1 MiB).
    pub discover_limit: u64,
    /// How long a viewer's registration at the broadcaster lasts; it
    /// registers again (and looks for more viewers) every third of it.
    pub registration_ttl: Duration,
    /// The most registrations a broadcaster keeps (one per viewer).
    pub max_registrations: usize,
    /// Incoming connections a broadcaster takes: its viewers, each of
    /// whom dials it to join.
    pub max_viewers: u32,
    /// Incoming connections a viewer takes (other viewers dial it after
    /// discovering it).
    pub max_incoming: u32,
    /// Outgoing connections a peer makes.
    pub max_outgoing: u32,
    /// Incoming connections in their handshake, in all.
    pub max_pending_incoming: u32,
    /// Incoming connections in their handshake from one address.
    pub max_pending_per_ip: u32,
    /// Incoming connections established from one address.
    pub max_per_ip: u32,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            mesh_n: 6,
            broadcaster_mesh_n: 3,
            heartbeat: Duration::from_millis(700),
            event_queue: 1024,
            command_queue: 64,
            flood_publish: false,
            clock_offset_ms: 0,
            hold_without_key: 8,
            discover_peers: 6,
            discover_limit: 256,
            registration_ttl: Duration::from_secs(120),
            max_registrations: 4096,
            max_viewers: 4096,
            max_incoming: 128,
            max_outgoing: 64,
            max_pending_incoming: 128,
            max_pending_per_ip: 16,
            max_per_ip: 256,
        }
    }
}

/// The gossip topic of a broadcast.
pub fn topic(id: &BroadcastId) -> IdentTopic {
    IdentTopic::new(format!("{PROTOCOL_PREFIX}/1/{}", hex::encode(id.0)))
}

/// The gossipsub configuration of one peer: anonymous messages identified
/// by their hash, validated by the application before they are forwarded,
/// never flooded by the publisher, and at most [`MAX_MESSAGE_LEN`] bytes
/// of data.
pub fn gossipsub_config(
    config: &LiveConfig,
    broadcaster: bool,
) -> Result<gossipsub::Config, LivePeerError> {
    let d = if broadcaster {
        config.broadcaster_mesh_n
    } else {
        config.mesh_n
    };
    gossipsub::ConfigBuilder::default()
        .protocol_id_prefix(PROTOCOL_PREFIX)
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|m| MessageId::from(blake3::hash(&m.data).as_bytes().to_vec()))
        .max_transmit_size(MAX_MESSAGE_LEN + RPC_OVERHEAD)
        .flood_publish(config.flood_publish)
        .mesh_n(d)
        .mesh_n_low(d.saturating_sub(2).max(1))
        // Viewers graft the broadcaster first (it is whom they dial): it
        // prunes its mesh back to D at each heartbeat, so what it uploads
        // stays D copies of each segment.
        .mesh_n_high(if broadcaster { d } else { d + 4 })
        // And it sends no gossip (IHAVE) at all: each IWANT it answered
        // was one more copy it uploaded (3.05-3.15x the stream with gossip
        // to 3 peers a heartbeat, 3.00x without, BENCHMARKS.md). Viewers
        // outside its mesh get segments from the viewers they found at
        // the broadcaster, or from a relay's forwarder; viewers gossip
        // among themselves as usual.
        .gossip_lazy(if broadcaster { 0 } else { d })
        .gossip_factor(if broadcaster { 0.0 } else { 0.25 })
        .mesh_outbound_min(1.min(d / 2))
        .heartbeat_interval(config.heartbeat)
        .build()
        .map_err(|e| LivePeerError::Config(e.to_string()))
}

/// How a message that arrived over gossip is judged, from its gate's
/// verdict: accepted ones are forwarded; offences (`is_offence`) are
/// rejected, which penalises the sender; the rest (a duplicate, no key, too
/// old, over the rate) are dropped quietly (LIVE.md §6, §12.4).
pub fn acceptance<T, R>(
    result: &Result<T, R>,
    is_offence: impl Fn(&R) -> bool,
) -> gossipsub::MessageAcceptance {
    match result {
        Ok(_) => gossipsub::MessageAcceptance::Accept,
        Err(r) if is_offence(r) => gossipsub::MessageAcceptance::Reject,
        Err(_) => gossipsub::MessageAcceptance::Ignore,
    }
}
