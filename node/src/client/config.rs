//! The client's settings, with defaults in one place.

use std::time::Duration;

use libp2p::Multiaddr;

use crate::config::{Limits, RateLimits};

/// How a client behaves on the network.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Where to accept direct deliveries from peers. Empty: none (the client
    /// then receives through its relays only).
    pub listen: Vec<Multiaddr>,
    /// Whether to tell the relays where this device can be reached directly
    /// (RELAY.md, Announce). Whoever knows the identity key can then learn
    /// the addresses while the client is online.
    pub announce: bool,
    /// Whether to try delivering straight to an online recipient first.
    pub direct: bool,
    /// Whether to keep a copy of each clip sent (its ciphertext chunks, in
    /// the local store, until it expires or is revoked) and serve its
    /// chunks to recipients who fetch from this device while it is online
    /// (RELAY.md §8). Costs the clip's size on disk.
    pub serve_sent: bool,
    /// Whether opening a clip that came through a relay first fetches its
    /// chunks from the sender's device, if the sender is a contact and
    /// online (RELAY.md §8). The sender then learns this device's address.
    pub fetch_from_sender: bool,
    /// How long the sender's device may go without delivering the next
    /// chunk of a clip being opened before the relay is asked for chunks
    /// too (both then serve at once; zero: both from the start). After a
    /// stall this long, and at least 1 s, each is also asked for the
    /// chunks the other owes (RELAY.md §8).
    pub helpers_after: Duration,
    /// Whether the relay is also asked for chunks, and for what the
    /// sender's device owes, once the sender's device falls behind the
    /// clip's playback: a player that starts `helpers_after` (at least 1 s)
    /// into the open and plays at the clip's pace (its duration over its
    /// chunks) needs the next chunk within 250 ms and it is not in. A save
    /// to a file counts as a player that wants every chunk at once, so the
    /// relay joins if the whole clip is not in by then. Without it, only a
    /// stall of `helpers_after` brings the relay in, so a sender that is
    /// slow but steady serves the whole clip (RELAY.md §8).
    pub keep_up_with_playback: bool,
    /// How long to wait for a peer to answer a dial.
    pub dial_timeout: Duration,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// How long a request refused `RateLimited` is tried again, waiting
    /// longer each time (100 ms, doubling to 2 s), before the refusal is
    /// reported. A peer's rate limits then pace this client instead of
    /// failing what it is doing. Zero: never tried again.
    pub rate_limited_patience: Duration,
    /// Chunk uploads or downloads in flight at once per transfer.
    pub pipeline: usize,
    /// One-time prekeys to keep published.
    pub one_time_prekeys: usize,
    /// How often the event loop looks for expired clips.
    pub expiry_interval: Duration,
    /// Network limits of the swarm.
    pub limits: Limits,
    /// Request rate each peer may use for direct deliveries to this device.
    /// The default lets a sender upload a whole 1 GiB clip (4096 chunks) in
    /// one burst; storage quotas bound what it can leave behind.
    pub direct_rate: RateLimits,
    /// Offset added to the system clock (tests only).
    pub clock_offset_ms: i64,
    /// A fixed seed for the client's randomness (tests only; `None` in
    /// production, which draws from the operating system).
    pub seed: Option<u64>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")],
            announce: true,
            direct: true,
            serve_sent: true,
            fetch_from_sender: true,
            helpers_after: Duration::from_secs(1),
            keep_up_with_playback: true,
            dial_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            rate_limited_patience: Duration::from_secs(20),
            pipeline: 8,
            one_time_prekeys: 50,
            expiry_interval: Duration::from_secs(5),
            limits: Limits::default(),
            direct_rate: RateLimits {
                requests_per_sec: 2_000.0,
                burst: mayfly_protocol::MAX_CHUNKS + 64,
                max_peers: 256,
                chunk_requests_per_sec: 2_000.0,
                chunk_request_burst: mayfly_protocol::MAX_CHUNKS + 64,
                ..RateLimits::default()
            },
            clock_offset_ms: 0,
            seed: None,
        }
    }
}
