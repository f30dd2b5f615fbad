//! What a [`Client`](super::Client) asks of the [`EventLoop`](super::EventLoop).

use std::io;

use libp2p::core::transport::{ListenerId, TransportError};
use libp2p::request_response::{OutboundFailure, ResponseChannel};
use libp2p::swarm::DialError;
use libp2p::{Multiaddr, PeerId};
use mayfly_protocol::mailbox::{Notify, Request, Response};
use tokio::sync::oneshot;

use crate::mailbox::Held;

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
    Request {
        peer: PeerId,
        request: Box<Request>,
        reply: oneshot::Sender<Result<Response, OutboundFailure>>,
    },
    Respond {
        channel: ResponseChannel<Held<Response>>,
        response: Held<Response>,
    },
    Notify {
        peer: PeerId,
        notify: Notify,
    },
    Shutdown,
}
