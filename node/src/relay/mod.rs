//! `mayfly relay`: a node with a persistent identity that listens, accepts
//! connections under limits, answers identify and ping, and serves the
//! mailbox protocol (`spec/RELAY.md`) from its store in `<home>/store`
//! ([`service`]).
//!
//! The relay writes lines meant for programs to its output:
//!
//! ```text
//! peer id 12D3KooW…
//! listening /ip4/127.0.0.1/tcp/40001/p2p/12D3KooW…
//! listening /ip4/127.0.0.1/udp/51234/quic-v1/p2p/12D3KooW…
//! ```
//!
//! one `listening` line per address as it becomes ready, each flushed at
//! once. With metrics on (`metrics_listen`, `--metrics`), once every
//! listener has announced an address it adds
//!
//! ```text
//! metrics http://127.0.0.1:9090/metrics
//! ```
//!
//! with the bound address ([`crate::metrics`]). Everything else goes to the
//! log.

use std::collections::HashSet;
use std::future::Future;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use libp2p::core::transport::ListenerId;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::config::RelayConfig;
use crate::metrics::{self, RelayMetrics};
use crate::net::{self, BuildError, Client, Event, NetError, PROTOCOL_VERSION, Role};
use crate::node_key::{self, NodeKeyError};
use crate::store::{RelayStore, StoreError};

pub mod local;
pub mod locate;
mod personal;
pub mod rate;
pub mod service;
pub mod uploads;

pub use personal::PersonalEvent;
use service::{Service, ServiceLimits};

/// The store's directory under the relay's home.
pub const STORE_DIR: &str = "store";

/// How long a stopping relay waits for requests in progress.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the relay could not start, or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The node key could not be loaded or created.
    #[error(transparent)]
    NodeKey(#[from] NodeKeyError),
    /// The swarm could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A listener could not be started.
    #[error(transparent)]
    Net(#[from] NetError),
    /// There is nowhere to listen.
    #[error("no listen address: give --listen, or `listen` in the config file")]
    NoListenAddrs,
    /// Every listener closed (after an error, or the addresses went away).
    #[error("every listener has closed")]
    ListenersClosed(#[source] Option<io::Error>),
    /// The network event loop stopped without being asked to.
    #[error("the network event loop stopped unexpectedly")]
    EventLoopStopped,
    /// The announcement lines could not be written.
    #[error("cannot write to the output")]
    Output(#[source] io::Error),
    /// The store could not be opened.
    #[error("cannot open the store in {path}")]
    Store {
        /// The store directory.
        path: std::path::PathBuf,
        /// Why.
        source: StoreError,
    },
    /// The metrics listener could not be bound.
    #[error("cannot serve metrics on {address}")]
    Metrics {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The operating system's random generator failed.
    #[error("cannot seed the random generator")]
    Rng(#[source] io::Error),
}

/// Runs the relay with its identity in `home`, writing its peer id and
/// listen addresses to `out`, until `shutdown` completes.
pub async fn run(
    config: &RelayConfig,
    home: &Path,
    out: &mut (dyn Write + Send),
    shutdown: impl Future,
) -> Result<(), RelayError> {
    run_with_clock(config, home, Arc::new(Clock::default()), out, shutdown).await
}

/// Like [`run`], reading the time (expiry, prekey ages) from `clock`.
pub async fn run_with_clock(
    config: &RelayConfig,
    home: &Path,
    clock: Arc<Clock>,
    out: &mut (dyn Write + Send),
    shutdown: impl Future,
) -> Result<(), RelayError> {
    if config.listen.is_empty() {
        return Err(RelayError::NoListenAddrs);
    }
    let key = node_key::load_or_create(home)?;
    let peer = key.peer_id();
    if key.created {
        tracing::info!(%peer, path = %key.path.display(), "created a new node key");
    } else {
        tracing::info!(%peer, path = %key.path.display(), "loaded the node key");
    }
    let store_dir = home.join(STORE_DIR);
    let store = {
        let (dir, limits) = (store_dir.clone(), config.store.clone());
        let rng = crate::rng::node_rng(None).map_err(RelayError::Rng)?;
        tokio::task::spawn_blocking(move || {
            RelayStore::open(&dir, limits, rng).and_then(RelayStore::with_replays)
        })
        .await
        .map_err(|e| RelayError::Store {
            path: store_dir.clone(),
            source: StoreError::Io(io::Error::other(e.to_string())),
        })?
        .map_err(|source| RelayError::Store {
            path: store_dir.clone(),
            source,
        })?
    };
    tracing::info!(path = %store_dir.display(), "store open");
    let store = Arc::new(store);
    let metrics = Arc::new(RelayMetrics::new());
    let metrics_server = match config.metrics_listen {
        Some(address) => {
            let listener = metrics::bind(address)
                .await
                .map_err(|source| RelayError::Metrics { address, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| RelayError::Metrics { address, source })?;
            tracing::info!(%bound, "serving metrics");
            let task = tokio::spawn(metrics::serve(listener, metrics.clone(), store.clone()));
            Some((bound, AbortOnDrop(task)))
        }
        None => None,
    };
    let offset_ms = clock_offset_ms(&clock);
    let (client, events, event_loop) =
        net::new_with_role(key.keypair, &config.limits, Role::Relay)?;
    let task = tokio::spawn(event_loop.run());
    let service = Service::new(
        store,
        client.clone(),
        peer,
        ServiceLimits {
            rate: config.rate.clone(),
            uploads: config.uploads.clone(),
            max_buffered_response_bytes: config.limits.max_buffered_response_bytes,
        },
        clock,
        crate::rng::node_rng(None).map_err(RelayError::Rng)?,
        metrics.clone(),
    );
    let service = if config.live.max_forwards > 0 {
        let mut limits = config.forward_limits();
        limits.live.clock_offset_ms = offset_ms;
        service.with_forwards(Arc::new(crate::live::Forwards::new(limits)))
    } else {
        service
    };

    let served = Served {
        service,
        metrics,
        metrics_address: metrics_server.as_ref().map(|(a, _)| *a),
    };
    let result = serve(config, &client, events, served, peer, out, shutdown).await;
    drop(metrics_server);

    // `serve` dropped the event receiver, so the loop cannot be stuck
    // delivering an event and sees the request.
    client.shutdown().await;
    if let Err(e) = task.await {
        tracing::error!("the network event loop failed: {e}");
    }
    tracing::info!("relay stopped");
    result
}

/// How far `clock` is from the system clock, in ms (tests shift it).
fn clock_offset_ms(clock: &Clock) -> i64 {
    let system = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    clock.now().0 as i64 - system
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the main loop drives besides the swarm.
struct Served {
    service: Service,
    metrics: Arc<RelayMetrics>,
    /// The bound metrics address, announced once every listener has
    /// announced an address.
    metrics_address: Option<std::net::SocketAddr>,
}

async fn serve(
    config: &RelayConfig,
    client: &Client,
    mut events: mpsc::Receiver<Event>,
    served: Served,
    peer: PeerId,
    out: &mut (dyn Write + Send),
    shutdown: impl Future,
) -> Result<(), RelayError> {
    let Served {
        mut service,
        metrics,
        mut metrics_address,
    } = served;
    announce(out, format_args!("peer id {peer}"))?;
    let mut listeners = HashSet::<ListenerId>::new();
    for address in &config.listen {
        listeners.insert(client.listen_on(address.clone()).await?);
    }
    // Listeners that have not announced an address yet.
    let mut unannounced = listeners.clone();
    tracing::info!(
        protocol = PROTOCOL_VERSION,
        agent = %net::agent_version(),
        "relay started"
    );
    tokio::pin!(shutdown);
    let mut collect = tokio::time::interval(config.collect_interval());
    collect.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            _ = &mut shutdown => {
                // Requests in progress get their answers; new ones wait.
                if tokio::time::timeout(DRAIN_TIMEOUT, service.drain()).await.is_err() {
                    tracing::warn!("requests still running at shutdown");
                }
                return Ok(());
            }
            _ = collect.tick() => {
                service.collect();
                continue;
            }
            () = service.reap() => continue,
            event = events.recv(), if service.has_room() => {
                event.ok_or(RelayError::EventLoopStopped)?
            }
        };
        match event {
            Event::ListenAddr { address, listener } => {
                let full = with_peer(address, peer);
                tracing::info!(address = %full, "listening");
                announce(out, format_args!("listening {full}"))?;
                unannounced.remove(&listener);
                if unannounced.is_empty()
                    && let Some(bound) = metrics_address.take()
                {
                    announce(out, format_args!("metrics http://{bound}/metrics"))?;
                }
            }
            Event::ListenAddrExpired { address, .. } => {
                tracing::info!(%address, "no longer listening");
            }
            Event::ListenerClosed { listener, error } => {
                listeners.remove(&listener);
                unannounced.remove(&listener);
                match &error {
                    Some(e) => tracing::error!(?listener, "listener closed: {e}"),
                    None => tracing::warn!(?listener, "listener closed"),
                }
                if listeners.is_empty() {
                    return Err(RelayError::ListenersClosed(error));
                }
                if unannounced.is_empty()
                    && let Some(bound) = metrics_address.take()
                {
                    announce(out, format_args!("metrics http://{bound}/metrics"))?;
                }
            }
            Event::ConnectionEstablished {
                peer,
                direction,
                address,
                ..
            } => {
                tracing::debug!(%peer, ?direction, %address, "connection established");
                metrics.connection_opened();
            }
            Event::ConnectionClosed {
                peer,
                cause,
                remaining,
                ..
            } => {
                metrics.connection_closed();
                match cause {
                    Some(cause) => tracing::debug!(%peer, "connection closed: {cause}"),
                    None => tracing::debug!(%peer, "connection closed"),
                }
                if remaining == 0 {
                    service.on_disconnected(&peer);
                }
            }
            Event::InboundRequest {
                peer,
                request,
                hold,
                channel,
                ..
            } => service.on_request(peer, *request, hold, channel),
            Event::Notification { peer, .. } => {
                tracing::debug!(%peer, "unexpected notification");
            }
            Event::Identified { peer, info } => {
                if info.protocol_version == PROTOCOL_VERSION {
                    tracing::debug!(%peer, agent = %info.agent_version, "peer identified");
                } else {
                    tracing::debug!(
                        %peer,
                        protocol = %info.protocol_version,
                        "peer speaks another protocol"
                    );
                }
            }
            Event::Pong { peer, rtt, .. } => {
                tracing::trace!(%peer, ?rtt, "ping");
            }
        }
    }
}

/// `address` with `/p2p/<peer>` appended, as clients dial it.
fn with_peer(address: Multiaddr, peer: PeerId) -> Multiaddr {
    address.with_p2p(peer).unwrap_or_else(|address| address)
}

fn announce(out: &mut (dyn Write + Send), line: std::fmt::Arguments<'_>) -> Result<(), RelayError> {
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(RelayError::Output)
}
