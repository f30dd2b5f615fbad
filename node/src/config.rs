//! The relay's configuration and every default it uses, in one place.
//!
//! A configuration file is TOML; every key is optional and unknown keys are
//! rejected, so a typo is an error rather than a silently ignored setting:
//!
//! ```toml
//! listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
//! collect_interval_secs = 60
//! metrics_listen = "127.0.0.1:9090"   # Prometheus metrics; off when absent
//!
//! [limits]
//! max_pending_incoming = 1024
//! max_pending_per_ip = 16
//! max_pending_outgoing = 64
//! max_established_incoming = 1024
//! max_established_outgoing = 128
//! max_established_per_peer = 8
//! max_established_per_ip = 64
//! handshake_timeout_secs = 5
//! max_memory = { percent = 80.0 }   # or { bytes = 2_147_483_648 }
//! idle_connection_timeout_secs = 60
//! request_timeout_secs = 30
//! max_concurrent_streams = 16
//! max_buffered_request_bytes = 67_108_864
//! max_buffered_response_bytes = 67_108_864
//! max_chunk_streams = 1024
//! chunk_bytes_per_sec = 67_108_864
//! chunk_burst_bytes = 268_435_456
//!
//! [rate]
//! requests_per_sec = 50.0
//! burst = 200
//! max_peers = 16384
//! deposits_per_sec = 10.0
//! deposit_burst = 100
//! bundles_per_sec = 10.0
//! bundle_burst = 100
//! locates_per_sec = 20.0
//! locate_burst = 200
//! revocations_per_sec = 10.0
//! revocation_burst = 100
//! chunk_requests_per_sec = 256.0
//! chunk_request_burst = 1024
//!
//! [uploads]
//! max_concurrent = 32
//! max_per_peer = 4
//! max_waiting = 4096
//! wait_secs = 20
//! idle_secs = 30
//!
//! [store]
//! mailbox_bytes = 4_294_967_296
//! mailbox_entries = 1000
//! pending_ttl_secs = 21_600   # an upload not complete after 6 h is deleted
//!
//! [live]                # carrying live broadcasts (LIVE.md §8.2)
//! max_forwards = 64     # 0: off
//! forwards_per_broadcaster = 2
//! forward_idle_secs = 60
//! # forward_listen = "/ip4/0.0.0.0/tcp/0"   # default: the first TCP listen host, port 0
//! ```
//!
//! `[store]` takes every field of [`StoreLimits`] (`max_clip_bytes`,
//! `mailbox_bytes`, `mailbox_entries`, `depositor_bytes`, `total_bytes`,
//! `max_messages`, `max_identities`, `max_one_time_prekeys`,
//! `max_tombstones`, `pending_ttl_secs`, `collect_batch`, `cache_bytes`,
//! and the live replays' `replay_bytes`, `replay_total_bytes`,
//! `replays_per_broadcaster`, `max_replay_segments`, `replay_watches`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::Multiaddr;
use serde::Deserialize;

use crate::store::StoreLimits;

/// Addresses the relay listens on when neither `--listen` nor the
/// configuration file names any: loopback only, on ports the OS picks, so an
/// unconfigured relay is never reachable from outside the machine.
pub const DEFAULT_LISTEN: [&str; 2] = ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"];

/// Configuration of `mayfly relay`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// Addresses to listen on. `--listen` on the command line replaces them.
    pub listen: Vec<Multiaddr>,
    /// Connection and resource limits.
    pub limits: Limits,
    /// Per-peer request rate limits.
    pub rate: RateLimits,
    /// Clips whose chunks are uploaded at once.
    pub uploads: UploadLimits,
    /// Storage quotas.
    pub store: StoreLimits,
    /// Seconds between runs of the expiry collector.
    pub collect_interval_secs: u64,
    /// Serve Prometheus metrics over HTTP at `http://ADDR/metrics` (e.g.
    /// `"127.0.0.1:9090"`). Off when absent; `--metrics` replaces it.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Carrying live broadcasts in their overlays (LIVE.md §8.2).
    pub live: LiveForwarding,
}

/// `[live]`: how the relay joins broadcasts' overlays when their
/// broadcasters ask (LIVE.md §8.2).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveForwarding {
    /// Broadcasts forwarded at once; 0 turns forwarding off.
    pub max_forwards: usize,
    /// Broadcasts one broadcaster may have forwarded at once.
    pub forwards_per_broadcaster: usize,
    /// Seconds a forwarder waits for a segment before it stops.
    pub forward_idle_secs: u64,
    /// Where forwarders listen, each on a port of its own (port 0: the OS
    /// picks). Default: the host of the relay's first TCP listen address.
    pub forward_listen: Option<Multiaddr>,
}

impl Default for LiveForwarding {
    fn default() -> Self {
        let d = crate::live::ForwardLimits::default();
        Self {
            max_forwards: d.max_forwards,
            forwards_per_broadcaster: d.per_broadcaster,
            forward_idle_secs: d.idle.as_secs(),
            forward_listen: None,
        }
    }
}

impl RelayConfig {
    /// The forwarders' limits: `[live]`, listening by default on the host
    /// of the first TCP listen address, on port 0.
    pub fn forward_limits(&self) -> crate::live::ForwardLimits {
        use libp2p::multiaddr::Protocol;
        let listen = self.live.forward_listen.clone().unwrap_or_else(|| {
            self.listen
                .iter()
                .find_map(|a| {
                    let mut it = a.iter();
                    let host = it.next()?;
                    matches!(it.next(), Some(Protocol::Tcp(_)))
                        .then(|| Multiaddr::empty().with(host).with(Protocol::Tcp(0)))
                })
                .unwrap_or_else(|| crate::live::ForwardLimits::default().listen)
        });
        crate::live::ForwardLimits {
            max_forwards: self.live.max_forwards,
            per_broadcaster: self.live.forwards_per_broadcaster,
            idle: Duration::from_secs(self.live.forward_idle_secs.max(1)),
            listen,
            ..crate::live::ForwardLimits::default()
        }
    }
}

/// Per-peer token buckets on mailbox requests: a peer may send `burst`
/// requests at once and `requests_per_sec` on average; a request beyond
/// that is answered `RateLimited`. The requests that cost the relay or
/// other users most have a bucket of their own besides (RELAY.md §5.5):
/// Deposit (a new pending entry in someone's mailbox), FetchBundle (uses
/// up the recipient's one-time prekeys), Locate (reveals presence) and
/// Revoke (grows the ledger).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Tokens added per second.
    pub requests_per_sec: f64,
    /// Bucket size.
    pub burst: u32,
    /// Peers whose buckets are remembered, per bucket kind; beyond it, full
    /// buckets are forgotten first.
    pub max_peers: usize,
    /// Deposits per second per peer, on average.
    pub deposits_per_sec: f64,
    /// Deposits per peer at once.
    pub deposit_burst: u32,
    /// FetchBundle requests per second per peer, on average.
    pub bundles_per_sec: f64,
    /// FetchBundle requests per peer at once.
    pub bundle_burst: u32,
    /// Locate requests per second per peer, on average.
    pub locates_per_sec: f64,
    /// Locate requests per peer at once.
    pub locate_burst: u32,
    /// Revocations per second per peer, on average.
    pub revocations_per_sec: f64,
    /// Revocations per peer at once.
    pub revocation_burst: u32,
    /// PutChunk and GetChunk requests per second per peer, on average, on
    /// request streams. They take no token of `requests_per_sec`, and chunks
    /// on chunk streams take none of these either: those are shaped by
    /// bytes (`limits.chunk_bytes_per_sec`) instead of refused.
    pub chunk_requests_per_sec: f64,
    /// PutChunk and GetChunk requests per peer at once, on request streams.
    pub chunk_request_burst: u32,
}

/// Upload admission (RELAY.md §5.5, `relay/uploads.rs`): a Deposit whose
/// clip has chunks missing is answered once the clip has an upload slot.
/// Each slot lets one sender upload one clip's chunks (a few streams, each
/// with up to 256 KiB in flight), so `max_concurrent` bounds the relay's
/// memory for chunk uploads however many clients are connected.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadLimits {
    /// Clips uploaded at once over the relay (at least 1).
    pub max_concurrent: usize,
    /// Clips one peer uploads at once; a Deposit beyond it is refused
    /// (RateLimited) at once.
    pub max_per_peer: usize,
    /// Deposits waiting for a slot; one beyond it is refused at once.
    pub max_waiting: usize,
    /// Longest a Deposit waits for a slot before it is refused
    /// (RateLimited). Keep it below `limits.request_timeout_secs`.
    pub wait_secs: u64,
    /// A slot whose sender has sent no chunk for this long is freed.
    pub idle_secs: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            // 32 clips × 8 chunks in flight × 256 KiB windows: 64 MiB.
            max_concurrent: 32,
            max_per_peer: 4,
            max_waiting: 4096,
            wait_secs: 20,
            idle_secs: 30,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            // Chunks take none of these (RELAY.md §5.5): they are shaped by
            // bytes, or have their own bucket below.
            requests_per_sec: 50.0,
            burst: 200,
            max_peers: 16_384,
            // A send to a large group is a locate, a bundle and a deposit
            // per recipient at once, and so is a revocation (its notice);
            // after that, a few a second.
            deposits_per_sec: 10.0,
            deposit_burst: 100,
            bundles_per_sec: 10.0,
            bundle_burst: 100,
            locates_per_sec: 20.0,
            locate_burst: 200,
            revocations_per_sec: 10.0,
            revocation_burst: 100,
            // 64 MiB/s of 256 KiB chunks, a 256 MiB burst: the same as the
            // chunk streams' shaping, for a peer that cannot open them.
            chunk_requests_per_sec: 256.0,
            chunk_request_burst: 1024,
        }
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .iter()
                .map(|a| a.parse().expect("default listen addresses are valid"))
                .collect(),
            limits: Limits::default(),
            rate: RateLimits::default(),
            uploads: UploadLimits::default(),
            store: StoreLimits::default(),
            collect_interval_secs: 60,
            metrics_listen: None,
            live: LiveForwarding::default(),
        }
    }
}

/// Limits on connections and the memory they may use.
///
/// These apply to every swarm the node builds, the relay's and a client's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Incoming connections still in their handshake.
    pub max_pending_incoming: u32,
    /// Incoming connections from one address (an IPv4 address or an IPv6
    /// /64) still in their handshake (`net::ip_limits`). One beyond it is
    /// refused as soon as it is accepted.
    pub max_pending_per_ip: u32,
    /// Outgoing connections still in their handshake.
    pub max_pending_outgoing: u32,
    /// Established incoming connections.
    pub max_established_incoming: u32,
    /// Established outgoing connections.
    pub max_established_outgoing: u32,
    /// Established connections with any one peer, both directions together.
    pub max_established_per_peer: u32,
    /// Established incoming connections from one address (an IPv4 address
    /// or an IPv6 /64), whatever peers they are.
    pub max_established_per_ip: u32,
    /// Longest a connection may take to authenticate and agree on
    /// multiplexing (Noise and yamux; QUIC's handshake), in both
    /// directions. One that has not finished by then is closed, freeing its
    /// handshake slot.
    pub handshake_timeout_secs: u64,
    /// New connections are refused while the process uses more memory than this.
    pub max_memory: MemoryLimit,
    /// A connection no protocol has used for this long is closed.
    pub idle_connection_timeout_secs: u64,
    /// Longest a mailbox exchange (request, work, response) may take.
    pub request_timeout_secs: u64,
    /// Mailbox streams open at once on one connection, per protocol.
    pub max_concurrent_streams: usize,
    /// Bytes of inbound mailbox requests the node holds at once, read but
    /// not yet answered, over all connections together. A request beyond
    /// it waits unread (within its request timeout) until earlier ones are
    /// answered; values below one frame are raised to one frame.
    pub max_buffered_request_bytes: usize,
    /// Bytes of chunk responses a mailbox service holds at once, read from
    /// its store but not yet written to their streams. A GetChunk beyond it
    /// waits (within its request timeout) until earlier answers are written;
    /// values below one frame are raised to one frame.
    pub max_buffered_response_bytes: usize,
    /// Chunk streams (`/mayfly/chunks/1`) open at once over all
    /// peers; one peer may hold at most `max_concurrent_streams` of them. A
    /// stream beyond either is closed unread.
    pub max_chunk_streams: usize,
    /// Bytes per second one peer moves over its chunk streams, on average
    /// (chunks it puts, and chunks it gets counted as whole chunks). Past
    /// `chunk_burst_bytes`, its frames are read later: its transfers slow
    /// down to this rate and never fail on it. 0 shapes nothing.
    pub chunk_bytes_per_sec: u64,
    /// Bytes one peer moves over its chunk streams at once, before
    /// `chunk_bytes_per_sec` applies.
    pub chunk_burst_bytes: u64,
    /// For benchmarks only: runs the raw-transfer protocol `/mayfly/bench/1`
    /// (see `net::bench`): any peer may send it bytes and ask for bytes
    /// back. Off by default; never enable it on a relay serving users.
    pub bench_protocol: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Handshakes take milliseconds; a pending connection costs a
            // socket and a few KiB. Per address, enough for a few clients
            // behind one NAT connecting at the same moment.
            max_pending_incoming: 1024,
            max_pending_per_ip: 16,
            max_pending_outgoing: 64,
            max_established_incoming: 1024,
            max_established_outgoing: 128,
            // A client may hold a TCP and a QUIC connection, plus one more of
            // each while it reconnects.
            max_established_per_peer: 8,
            // A sixteenth of `max_established_incoming`: one host cannot take
            // every slot, and a NAT with dozens of users behind it still fits.
            max_established_per_ip: 64,
            // Noise XX and yamux take two round trips: 5 s allows for very
            // slow links, and frees a slot held by a silent connection in
            // half libp2p's default time.
            handshake_timeout_secs: 5,
            max_memory: MemoryLimit::Percent(80.0),
            idle_connection_timeout_secs: 60,
            request_timeout_secs: 30,
            max_concurrent_streams: 16,
            max_buffered_request_bytes: 64 << 20,
            max_buffered_response_bytes: 64 << 20,
            max_chunk_streams: 1024,
            // 512 Mbit/s per peer on average; a 200 MB message goes at the
            // link's speed, a 1 GiB clip spends 12 s more than it would
            // unshaped.
            chunk_bytes_per_sec: 64 << 20,
            chunk_burst_bytes: 256 << 20,
            bench_protocol: false,
        }
    }
}

impl Limits {
    /// The idle connection timeout as a [`Duration`].
    pub fn idle_connection_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_connection_timeout_secs)
    }

    /// The handshake timeout as a [`Duration`].
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }

    /// The mailbox request timeout as a [`Duration`].
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// A ceiling on the process's resident memory, past which new connections
/// are refused (established ones are kept).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum MemoryLimit {
    /// A percentage of the machine's physical memory, in `(0, 100]`.
    Percent(f64),
    /// An absolute number of bytes.
    Bytes(u64),
}

/// Why a configuration file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`] (or endless, like a
    /// device).
    #[error("config file {path} is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a valid configuration.
    #[error("invalid config file {path}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: InvalidConfig,
    },
}

/// The largest configuration file read: far more than any configuration
/// needs, and a bound on what a wrong path (a device, a log) can make the
/// relay allocate.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// What is wrong with a configuration: invalid TOML, an unknown key, a value
/// of the wrong type or out of range. One line, with the position when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(String);

impl RelayConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        use std::io::Read;
        let read = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(read)?
            .take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read)?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
            });
        }
        Self::from_toml(&text).map_err(|source| ConfigError::Invalid {
            path: path.to_owned(),
            source,
        })
    }

    /// Parses and validates a configuration from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, InvalidConfig> {
        let config: Self =
            toml::from_str(text).map_err(|e| InvalidConfig(one_line_message(text, &e)))?;
        config.validate()?;
        Ok(config)
    }

    /// The expiry collector's period.
    pub fn collect_interval(&self) -> Duration {
        Duration::from_secs(self.collect_interval_secs)
    }

    /// Checks the values that parse but make no sense.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.limits.validate()?;
        let invalid = |m: &str| Err(InvalidConfig(m.to_owned()));
        let r = &self.rate;
        let rates = [
            r.requests_per_sec,
            r.deposits_per_sec,
            r.bundles_per_sec,
            r.locates_per_sec,
            r.revocations_per_sec,
            r.chunk_requests_per_sec,
        ];
        if !rates.iter().all(|x| x.is_finite() && *x > 0.0) {
            return invalid("every rate.*_per_sec must be positive");
        }
        let bursts = [
            r.burst,
            r.deposit_burst,
            r.bundle_burst,
            r.locate_burst,
            r.revocation_burst,
            r.chunk_request_burst,
        ];
        if bursts.contains(&0) || r.max_peers == 0 {
            return invalid("every rate.*burst and rate.max_peers must be positive");
        }
        if self.collect_interval_secs == 0 {
            return invalid("collect_interval_secs must be positive");
        }
        if self.store.collect_batch == 0 {
            return invalid("store.collect_batch must be positive");
        }
        if self.store.pending_ttl_secs == 0 {
            return invalid("store.pending_ttl_secs must be positive");
        }
        let u = &self.uploads;
        if u.max_concurrent == 0 || u.max_per_peer == 0 {
            return invalid("uploads.max_concurrent and uploads.max_per_peer must be positive");
        }
        if u.wait_secs >= self.limits.request_timeout_secs {
            return invalid("uploads.wait_secs must be below limits.request_timeout_secs");
        }
        if u.idle_secs == 0 {
            return invalid("uploads.idle_secs must be positive");
        }
        Ok(())
    }
}

/// toml's own message quotes the offending line over several lines; this
/// keeps it to one: `line L, column C: what is wrong`.
fn one_line_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before[line_start..].chars().count() + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

impl Limits {
    /// Checks the values that parse but make no sense.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let invalid = |m: &str| Err(InvalidConfig(m.to_owned()));
        match self.max_memory {
            MemoryLimit::Percent(p) if !(p > 0.0 && p <= 100.0) => {
                return invalid("limits.max_memory.percent must be in (0, 100]");
            }
            MemoryLimit::Bytes(0) => return invalid("limits.max_memory.bytes must be positive"),
            _ => {}
        }
        if self.max_established_per_peer == 0 {
            return invalid("limits.max_established_per_peer must be positive");
        }
        if self.max_pending_per_ip == 0
            || self.max_established_per_ip == 0
            || self.handshake_timeout_secs == 0
        {
            return invalid(
                "limits.max_pending_per_ip, limits.max_established_per_ip and limits.handshake_timeout_secs must be positive",
            );
        }
        if self.idle_connection_timeout_secs == 0 {
            return invalid("limits.idle_connection_timeout_secs must be positive");
        }
        if self.request_timeout_secs == 0 || self.max_concurrent_streams == 0 {
            return invalid(
                "limits.request_timeout_secs and limits.max_concurrent_streams must be positive",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(RelayConfig::from_toml("").unwrap(), RelayConfig::default());
    }

    #[test]
    fn the_documented_example_parses() {
        let text: String = include_str!("config.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
            .collect();
        let config = RelayConfig::from_toml(&text).unwrap();
        assert_eq!(config.listen.len(), 2);
        assert_eq!(
            config.metrics_listen,
            Some("127.0.0.1:9090".parse().unwrap())
        );
        assert_eq!(config.limits.max_memory, MemoryLimit::Percent(80.0));
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.rate, RateLimits::default());
        assert_eq!(config.store, StoreLimits::default());
        assert_eq!(config.uploads, UploadLimits::default());
    }

    #[test]
    fn live_forwarders_listen_on_the_relays_host_unless_told() {
        let c = RelayConfig::from_toml(
            "listen = [\"/ip4/127.0.0.1/udp/4001/quic-v1\", \"/ip4/10.1.2.3/tcp/4001\"]\n[live]\nmax_forwards = 3\n",
        )
        .unwrap();
        let f = c.forward_limits();
        assert_eq!(f.max_forwards, 3);
        assert_eq!(
            f.listen,
            "/ip4/10.1.2.3/tcp/0".parse::<Multiaddr>().unwrap()
        );
        assert_eq!(f.per_broadcaster, 2);
        let c = RelayConfig::from_toml(
            "[live]\nforward_listen = \"/ip4/0.0.0.0/tcp/0\"\nforward_idle_secs = 5\n",
        )
        .unwrap();
        let f = c.forward_limits();
        assert_eq!(f.listen, "/ip4/0.0.0.0/tcp/0".parse::<Multiaddr>().unwrap());
        assert_eq!(f.idle, Duration::from_secs(5));
        assert!(RelayConfig::from_toml("[live]\nmax_forward = 3\n").is_err());
    }

    #[test]
    fn the_store_table_sets_quotas_and_keeps_the_other_defaults() {
        let c = RelayConfig::from_toml("collect_interval_secs = 5\n[store]\nmailbox_entries = 7\n")
            .unwrap();
        assert_eq!(c.store.mailbox_entries, 7);
        assert_eq!(c.collect_interval(), Duration::from_secs(5));
        assert_eq!(c.store.mailbox_bytes, StoreLimits::default().mailbox_bytes);
    }

    #[test]
    fn partial_tables_keep_the_other_defaults() {
        let c = RelayConfig::from_toml("[limits]\nmax_memory = { bytes = 1000000 }\n").unwrap();
        assert_eq!(c.limits.max_memory, MemoryLimit::Bytes(1_000_000));
        assert_eq!(c.limits.max_established_incoming, 1024);
        assert_eq!(c.listen, RelayConfig::default().listen);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        for text in [
            "lisen = []",
            "[limits]\nmax_established_incomming = 3",
            "listen = [\"not a multiaddr\"]",
            "[limits]\nmax_memory = { percent = 0 }",
            "[limits]\nmax_memory = { percent = 150 }",
            "[limits]\nmax_memory = { kib = 5 }",
            "[limits]\nidle_connection_timeout_secs = 0",
            "[limits]\nmax_pending_incoming = -1",
            "[storage]\nquota = 1",
            "[store]\nquota = 1",
            "[store]\npending_ttl_secs = 0",
            "collect_interval_secs = 0",
            "[rate]\nburst = 0",
            "[rate]\nrequests_per_sec = -1.0",
            "[rate]\nbundles_per_sec = 0.0",
            "[rate]\ndeposit_burst = 0",
            "[uploads]\nmax_concurrent = 0",
            "[uploads]\nwait_secs = 30",
            "[uploads]\nidle_secs = 0",
            "metrics_listen = \"localhost\"",
        ] {
            let e = RelayConfig::from_toml(text).expect_err(text);
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn load_names_the_file_in_its_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        let e = RelayConfig::load(&path).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        std::fs::write(&path, "\n[limits]\nmax_pending_incoming = \"many\"").unwrap();
        let e = RelayConfig::load(&path).unwrap_err();
        assert!(e.to_string().contains("relay.toml"), "{e}");
        let ConfigError::Invalid { source, .. } = e else {
            panic!("{e}")
        };
        assert!(
            source.to_string().starts_with("line 3, column 24: "),
            "{source}"
        );
    }
}
