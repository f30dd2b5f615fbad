//! `mayfly relay`: today the networking skeleton of the relay — a node with
//! a persistent identity that listens, accepts connections under limits, and
//! answers identify and ping. Mailboxes and storage come next.
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
//! once. Everything else goes to the log.

use std::collections::HashSet;
use std::future::Future;
use std::io::{self, Write};
use std::path::Path;

use libp2p::core::transport::ListenerId;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;

use crate::config::RelayConfig;
use crate::net::{self, BuildError, Client, Event, NetError, PROTOCOL_VERSION};
use crate::node_key::{self, NodeKeyError};

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
}

/// Runs the relay with its identity in `home`, writing its peer id and
/// listen addresses to `out`, until `shutdown` completes.
pub async fn run(
    config: &RelayConfig,
    home: &Path,
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
    let (client, events, event_loop) = net::new(key.keypair, &config.limits)?;
    let task = tokio::spawn(event_loop.run());

    let result = serve(config, &client, events, peer, out, shutdown).await;

    // `serve` dropped the event receiver, so the loop cannot be stuck
    // delivering an event and sees the request.
    client.shutdown().await;
    if let Err(e) = task.await {
        tracing::error!("the network event loop failed: {e}");
    }
    tracing::info!("relay stopped");
    result
}

async fn serve(
    config: &RelayConfig,
    client: &Client,
    mut events: mpsc::Receiver<Event>,
    peer: PeerId,
    out: &mut (dyn Write + Send),
    shutdown: impl Future,
) -> Result<(), RelayError> {
    announce(out, format_args!("peer id {peer}"))?;
    let mut listeners = HashSet::<ListenerId>::new();
    for address in &config.listen {
        listeners.insert(client.listen_on(address.clone()).await?);
    }
    tracing::info!(
        protocol = PROTOCOL_VERSION,
        agent = %net::agent_version(),
        "relay started"
    );
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            event = events.recv() => event.ok_or(RelayError::EventLoopStopped)?,
        };
        match event {
            Event::ListenAddr { address, .. } => {
                let full = with_peer(address, peer);
                tracing::info!(address = %full, "listening");
                announce(out, format_args!("listening {full}"))?;
            }
            Event::ListenAddrExpired { address, .. } => {
                tracing::info!(%address, "no longer listening");
            }
            Event::ListenerClosed { listener, error } => {
                listeners.remove(&listener);
                match &error {
                    Some(e) => tracing::error!(?listener, "listener closed: {e}"),
                    None => tracing::warn!(?listener, "listener closed"),
                }
                if listeners.is_empty() {
                    return Err(RelayError::ListenersClosed(error));
                }
            }
            Event::ConnectionEstablished {
                peer,
                direction,
                address,
                ..
            } => {
                tracing::debug!(%peer, ?direction, %address, "connection established");
            }
            Event::ConnectionClosed { peer, cause, .. } => match cause {
                Some(cause) => tracing::debug!(%peer, "connection closed: {cause}"),
                None => tracing::debug!(%peer, "connection closed"),
            },
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
