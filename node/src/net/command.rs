//! What a [`Client`](super::Client) asks of the [`EventLoop`](super::EventLoop).

use std::io;

use libp2p::core::transport::{ListenerId, TransportError};
use libp2p::swarm::DialError;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::oneshot;

#[derive(Debug)]
pub(super) enum Command {
    ListenOn {
        address: Multiaddr,
        reply: oneshot::Sender<Result<ListenerId, TransportError<io::Error>>>,
    },
    Dial {
        address: Multiaddr,
        reply: oneshot::Sender<Result<PeerId, DialError>>,
    },
    Shutdown,
}
