//! Accepting `/mayfly/chunks/1` streams: a behaviour and connection handler
//! that hand every inbound chunk stream to the server ([`super::chunks`])
//! through one bounded queue.
//!
//! Outbound chunk streams are opened with libp2p-stream's `Control`, but its
//! inbound side queues one stream per protocol and drops any that arrives
//! while that one waits: a burst of streams from many peers (a thousand
//! clients fetching at once) lost most of them. This queue holds up to
//! [`Limits::max_chunk_streams`](crate::config::Limits::max_chunk_streams)
//! streams; one beyond it is dropped, which resets it, as RELAY.md §2.1
//! allows.

use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::core::upgrade::{DeniedUpgrade, ReadyUpgrade};
use libp2p::core::{Endpoint, transport::PortUse};
use libp2p::swarm::handler::{ConnectionEvent, FullyNegotiatedInbound};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, Stream};
use tokio::sync::mpsc;

use super::chunks::PROTOCOL;

/// Where accepted chunk streams go.
pub(super) type Queue = mpsc::Sender<(PeerId, Stream)>;

/// Accepts `/mayfly/chunks/1` streams on every connection into one queue.
pub struct Behaviour {
    queue: Queue,
}

impl Behaviour {
    /// A behaviour that puts accepted streams on `queue`.
    pub(super) fn new(queue: Queue) -> Self {
        Self { queue }
    }

    fn handler(&self, peer: PeerId) -> Handler {
        Handler {
            peer,
            queue: self.queue.clone(),
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        never: THandlerOutEvent<Self>,
    ) {
        match never {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// One connection's side: offers the protocol and queues what it accepts.
pub struct Handler {
    peer: PeerId,
    queue: Queue,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = ReadyUpgrade<libp2p::StreamProtocol>;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Infallible;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL), ())
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, Infallible, Infallible>> {
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, never: Infallible) {
        match never {}
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, DeniedUpgrade, (), Infallible>,
    ) {
        if let ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
            protocol: stream,
            ..
        }) = event
            && self.queue.try_send((self.peer, stream)).is_err()
        {
            tracing::debug!(peer = %self.peer, "chunk stream dropped: the queue is full");
        }
    }
}
