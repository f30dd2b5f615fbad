//! The application's handle on the network.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::core::transport::{ListenerId, TransportError};
use libp2p::request_response::OutboundFailure;
use libp2p::swarm::DialError;
use libp2p::{Multiaddr, PeerId, Stream};
use libp2p_stream::{Control, OpenStreamError};
use mayfly_protocol::mailbox::{Notify, Request, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::command::Command;
use super::reply::{Reply, Route};
use crate::mailbox::Held;

/// Why a request to the network failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The event loop is no longer running.
    #[error("the network event loop has stopped")]
    Stopped,
    /// No transport can listen on the address.
    #[error(
        "cannot listen on {address}: not a TCP or QUIC address (e.g. /ip4/0.0.0.0/tcp/4001, /ip6/::/udp/4001/quic-v1)"
    )]
    UnsupportedAddress {
        /// The address.
        address: Multiaddr,
    },
    /// A listener could not be started on the address.
    #[error("cannot listen on {address}")]
    Listen {
        /// The address.
        address: Multiaddr,
        /// Why.
        source: io::Error,
    },
    /// No connection could be established.
    #[error("cannot dial {address}")]
    Dial {
        /// The address.
        address: Multiaddr,
        /// Why (boxed: a dial error is large).
        source: Box<DialError>,
    },
    /// A mailbox request got no response.
    #[error("mailbox request to {peer} failed: {source}")]
    Request {
        /// The relay.
        peer: PeerId,
        /// Why.
        source: OutboundFailure,
    },
    /// A mailbox request got no response in time.
    #[error("mailbox request to {peer} timed out")]
    Timeout {
        /// The relay.
        peer: PeerId,
    },
    /// The peer does not accept chunk streams (`/mayfly/chunks/1`).
    #[error("{peer} does not accept chunk streams")]
    ChunkStreamsUnsupported {
        /// The peer.
        peer: PeerId,
    },
    /// A chunk stream could not be opened.
    #[error("cannot open a chunk stream to {peer}")]
    ChunkStream {
        /// The peer.
        peer: PeerId,
        /// Why.
        source: io::Error,
    },
}

/// A cheap, cloneable handle on the [`EventLoop`](super::EventLoop).
///
/// Requests travel over a bounded channel: when the event loop is busy, a
/// request waits for room rather than queueing without limit.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    streams: Control,
    slots: OutboundSlots,
}

/// Mailbox requests this node has in flight per peer: at most half the
/// streams a connection takes (`Limits::max_concurrent_streams`, which
/// counts both directions), so that the rest stay for the peer's requests.
/// A request beyond it waits for a slot, within its timeout, instead of
/// failing with libp2p's "max sub-streams reached".
#[derive(Clone, Debug)]
struct OutboundSlots {
    per_peer: usize,
    peers: Arc<Mutex<HashMap<PeerId, Arc<Semaphore>>>>,
}

impl OutboundSlots {
    fn new(max_concurrent_streams: usize) -> Self {
        Self {
            per_peer: (max_concurrent_streams / 2).max(1),
            peers: Arc::default(),
        }
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, Arc<Semaphore>>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn acquire(&self, peer: PeerId) -> Slot {
        let semaphore = self
            .peers()
            .entry(peer)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_peer)))
            .clone();
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        Slot {
            slots: self.clone(),
            peer,
            semaphore,
            permit: Some(permit),
        }
    }
}

/// A request's slot; its peer's entry goes when no request holds or waits
/// for one, so the map holds only peers with requests in flight.
struct Slot {
    slots: OutboundSlots,
    peer: PeerId,
    semaphore: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut peers = self.slots.peers();
        // Held by the map and by this slot alone: nobody else waits.
        if Arc::strong_count(&self.semaphore) == 2
            && peers
                .get(&self.peer)
                .is_some_and(|s| Arc::ptr_eq(s, &self.semaphore))
        {
            peers.remove(&self.peer);
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("local_peer_id", &self.local_peer_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(super) fn new(
        commands: mpsc::Sender<Command>,
        local_peer_id: PeerId,
        streams: Control,
        max_concurrent_streams: usize,
    ) -> Self {
        Self {
            commands,
            local_peer_id,
            streams,
            slots: OutboundSlots::new(max_concurrent_streams),
        }
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Starts a listener on `address`. Once it is ready, an
    /// [`Event::ListenAddr`](super::Event::ListenAddr) reports the address it
    /// accepts connections on (with the port picked, if `address` had 0).
    pub async fn listen_on(&self, address: Multiaddr) -> Result<ListenerId, NetError> {
        let (reply, response) = oneshot::channel();
        self.send(Command::ListenOn {
            address: address.clone(),
            reply,
        })
        .await?;
        response
            .await
            .map_err(|_| NetError::Stopped)?
            .map_err(|e| match e {
                TransportError::MultiaddrNotSupported(address) => {
                    NetError::UnsupportedAddress { address }
                }
                TransportError::Other(source) => NetError::Listen { address, source },
            })
    }

    /// Dials `address` and waits until the connection is established,
    /// returning the remote's authenticated peer id. If `address` ends in
    /// `/p2p/<peer id>`, a remote with another peer id is an error.
    ///
    /// There is no overall deadline beyond the transports' own; wrap the call
    /// in a timeout when one matters.
    pub async fn dial(&self, address: Multiaddr) -> Result<PeerId, NetError> {
        let (reply, response) = oneshot::channel();
        self.send(Command::Dial {
            address: address.clone(),
            reply,
        })
        .await?;
        response
            .await
            .map_err(|_| NetError::Stopped)?
            .map_err(|source| NetError::Dial {
                address,
                source: Box::new(source),
            })
    }

    /// Sends `request` to `peer` on `/mayfly/relay/1`, or on
    /// `/mayfly/direct/1` if `peer` is a client that answers direct requests
    /// (the first of the two the peer supports), dialing it if not
    /// connected and its address is known, and waits at most `timeout` for
    /// the response. An error response is a response: it is `Ok` here.
    pub async fn request(
        &self,
        peer: PeerId,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, NetError> {
        let (reply, response) = oneshot::channel();
        tokio::time::timeout(timeout, async {
            let _slot = self.slots.acquire(peer).await;
            self.send(Command::Request {
                peer,
                request: Box::new(request),
                reply,
            })
            .await?;
            response
                .await
                .map_err(|_| NetError::Stopped)?
                .map_err(|source| NetError::Request { peer, source })
        })
        .await
        .map_err(|_| NetError::Timeout { peer })?
    }

    /// Opens a chunk stream (`/mayfly/chunks/1`, RELAY.md §2.1) to
    /// `peer`, over the existing connection (or dialing it if its address
    /// is known). [`NetError::ChunkStreamsUnsupported`] if the peer does not
    /// accept one: send its chunks as PutChunk requests instead.
    pub async fn open_chunks(&self, peer: PeerId) -> Result<Stream, NetError> {
        let mut control = self.streams.clone();
        control
            .open_stream(peer, super::chunks::PROTOCOL)
            .await
            .map_err(|e| match e {
                OpenStreamError::UnsupportedProtocol(_) => {
                    NetError::ChunkStreamsUnsupported { peer }
                }
                OpenStreamError::Io(source) => NetError::ChunkStream { peer, source },
                other => NetError::ChunkStream {
                    peer,
                    source: io::Error::other(other.to_string()),
                },
            })
    }

    /// Answers an [`Event::InboundRequest`](super::Event::InboundRequest).
    /// The response's hold is given back once it has been written to the
    /// stream (or the stream has failed).
    pub async fn respond(&self, reply: Reply, response: Held<Response>) -> Result<(), NetError> {
        match reply.0 {
            Route::Stream(channel) => self.send(Command::Respond { channel, response }).await,
            // The stream's task writes it; if the task is gone, so is the
            // stream, and the response (with its hold) is dropped.
            Route::ChunkStream(answer) => {
                let _ = answer.send(response);
                Ok(())
            }
        }
    }

    /// Sends `notify` to `peer` on `/mayfly/notify/1` if it is connected;
    /// does nothing otherwise. Delivery is best effort and not reported.
    pub async fn notify(&self, peer: PeerId, notify: Notify) -> Result<(), NetError> {
        self.send(Command::Notify { peer, notify }).await
    }

    /// Asks the event loop to stop. Its connections and listeners close when
    /// it returns. Stopping a stopped loop does nothing.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }

    async fn send(&self, command: Command) -> Result<(), NetError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NetError::Stopped)
    }
}
