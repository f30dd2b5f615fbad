//! What the network tells the application.

use std::io;
use std::time::Duration;

use libp2p::core::transport::ListenerId;
use libp2p::swarm::{ConnectionError, ConnectionId};
use libp2p::{Multiaddr, PeerId, identify};
use mayfly_protocol::mailbox::{Notify, Request};

use super::Reply;
use crate::mailbox::Hold;

/// Which side opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The remote dialed us.
    Inbound,
    /// We dialed the remote.
    Outbound,
}

/// Something the application may want to act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A listener accepts connections on `address` (which has no `/p2p`
    /// suffix). One listener may report several, e.g. for `0.0.0.0`.
    ListenAddr {
        /// The listener.
        listener: ListenerId,
        /// The address, with the port the OS picked if it was 0.
        address: Multiaddr,
    },
    /// A listener no longer accepts connections on `address`.
    ListenAddrExpired {
        /// The listener.
        listener: ListenerId,
        /// The address.
        address: Multiaddr,
    },
    /// A listener stopped, on its own or after an error.
    ListenerClosed {
        /// The listener.
        listener: ListenerId,
        /// Why, if it was not asked to.
        error: Option<io::Error>,
    },
    /// A connection was established and authenticated.
    ConnectionEstablished {
        /// The authenticated remote.
        peer: PeerId,
        /// The connection.
        connection: ConnectionId,
        /// Who dialed.
        direction: Direction,
        /// The remote's address (for inbound connections, the one it dialed from).
        address: Multiaddr,
    },
    /// A connection was closed.
    ConnectionClosed {
        /// The remote.
        peer: PeerId,
        /// The connection.
        connection: ConnectionId,
        /// Why, if it was not closed cleanly.
        cause: Option<ConnectionError>,
        /// Connections to the peer still open.
        remaining: u32,
    },
    /// A peer identified itself.
    Identified {
        /// The peer.
        peer: PeerId,
        /// What it said about itself: protocol and agent versions, listen
        /// addresses, protocols, the address it sees us at.
        info: Box<identify::Info>,
    },
    /// An outbound ping was answered.
    Pong {
        /// The peer.
        peer: PeerId,
        /// The connection it was measured on.
        connection: ConnectionId,
        /// The round-trip time.
        rtt: Duration,
    },
    /// A peer sent a mailbox request: on `/mayfly/relay/1` to a relay, on
    /// `/mayfly/direct/1` to a client (direct delivery), or as one PutChunk
    /// or GetChunk frame of a chunk stream (`/mayfly/chunks/1`) to either. Answer it
    /// with [`Client::respond`](super::Client::respond); dropping `channel`
    /// closes the stream without an answer.
    InboundRequest {
        /// The peer.
        peer: PeerId,
        /// The connection it came on; `None` on a chunk stream, whose
        /// connection libp2p-stream does not report.
        connection: Option<ConnectionId>,
        /// The request, decoded (boxed: a chunk upload is large).
        request: Box<Request>,
        /// Its bytes in the swarm's request budget
        /// ([`Limits::max_buffered_request_bytes`](crate::config::Limits)):
        /// keep it until the request is answered, and drop it then.
        hold: Hold,
        /// Where the answer goes.
        channel: Reply,
    },
    /// A relay sent a notification (clients only). It has been answered.
    Notification {
        /// The relay.
        peer: PeerId,
        /// The notification.
        notify: Notify,
    },
}
