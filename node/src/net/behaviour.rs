//! The protocols every Mayfly swarm runs, combined into one behaviour.

use std::convert::Infallible;

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{connection_limits, identify, memory_connection_limits, ping, request_response};
use mayfly_protocol::mailbox::{Notify, Request, Response};

use crate::config::{Limits, MemoryLimit};
use crate::mailbox::{self, ByteBudget, Held, NotifyBehaviour, RelayBehaviour, Role};

/// The identify protocol version Mayfly nodes announce. A peer announcing
/// another one speaks another protocol family.
pub const PROTOCOL_VERSION: &str = "/mayfly/id/1";

/// The agent version announced over identify: `mayfly/<crate version>`.
pub fn agent_version() -> String {
    format!("mayfly/{}", env!("CARGO_PKG_VERSION"))
}

/// The node's network behaviour.
///
/// The limits come first: the swarm asks behaviours in field order whether
/// to accept a connection, so a connection over a limit is refused before
/// the protocols below do any work for it.
#[derive(NetworkBehaviour)]
#[behaviour(to_swarm = "BehaviourEvent")]
pub struct Behaviour {
    /// Counts of incoming connections per address, first so that a
    /// connection it refuses takes none of the node-wide slots below.
    pub per_ip: super::ip_limits::Behaviour,
    /// Counts of pending and established connections.
    pub limits: connection_limits::Behaviour,
    /// Refuses new connections while the process uses too much memory.
    pub memory: memory_connection_limits::Behaviour,
    /// Exchanges protocol and agent versions and listen addresses.
    pub identify: identify::Behaviour,
    /// Measures round trips and detects dead connections.
    pub ping: ping::Behaviour,
    /// `/mayfly/relay/1`: requests from clients to relays; and
    /// `/mayfly/direct/1`: requests between clients (client role only).
    pub relay: RelayBehaviour,
    /// `/mayfly/notify/1`: notifications from relays to mailbox owners.
    pub notify: NotifyBehaviour,
    /// Accepts `/mayfly/chunks/1` streams ([`super::chunks`]).
    pub chunks: super::chunks_inbound::Behaviour,
    /// Opens `/mayfly/chunks/1` streams, and runs `/mayfly/bench/1`
    /// ([`super::bench`], for benchmarks only) when
    /// [`Limits::bench_protocol`] is set.
    pub streams: libp2p_stream::Behaviour,
}

/// What [`Behaviour`]'s protocols report. The limits report nothing: they
/// only refuse connections.
#[derive(Debug)]
pub enum BehaviourEvent {
    /// From identify (boxed: it is several times the size of the others).
    Identify(Box<identify::Event>),
    /// From ping.
    Ping(ping::Event),
    /// From the mailbox request protocol (boxed: it carries a whole request).
    Relay(Box<request_response::Event<Held<Request>, Held<Response>>>),
    /// From the mailbox notification protocol.
    Notify(Box<request_response::Event<Held<Notify>, Held<Response>>>),
    /// From the stream protocols, which report nothing (their streams go
    /// to a [`libp2p_stream::Control`]); never emitted.
    Streams,
}

impl From<()> for BehaviourEvent {
    fn from((): ()) -> Self {
        Self::Streams
    }
}

impl From<request_response::Event<Held<Request>, Held<Response>>> for BehaviourEvent {
    fn from(event: request_response::Event<Held<Request>, Held<Response>>) -> Self {
        Self::Relay(Box::new(event))
    }
}

impl From<request_response::Event<Held<Notify>, Held<Response>>> for BehaviourEvent {
    fn from(event: request_response::Event<Held<Notify>, Held<Response>>) -> Self {
        Self::Notify(Box::new(event))
    }
}

impl From<Infallible> for BehaviourEvent {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

impl From<identify::Event> for BehaviourEvent {
    fn from(event: identify::Event) -> Self {
        Self::Identify(Box::new(event))
    }
}

impl From<ping::Event> for BehaviourEvent {
    fn from(event: ping::Event) -> Self {
        Self::Ping(event)
    }
}

impl Behaviour {
    /// The behaviour for a node with `keypair` playing `role`, under `limits`.
    /// Inbound mailbox requests hold bytes of `budget`; inbound chunk
    /// streams go to `chunk_queue`.
    pub fn new(
        keypair: &Keypair,
        limits: &Limits,
        role: Role,
        budget: ByteBudget,
        chunk_queue: super::chunks_inbound::Queue,
    ) -> Self {
        let connection_limits = connection_limits::ConnectionLimits::default()
            .with_max_pending_incoming(Some(limits.max_pending_incoming))
            .with_max_pending_outgoing(Some(limits.max_pending_outgoing))
            .with_max_established_incoming(Some(limits.max_established_incoming))
            .with_max_established_outgoing(Some(limits.max_established_outgoing))
            .with_max_established_per_peer(Some(limits.max_established_per_peer));
        let memory = match limits.max_memory {
            // libp2p calls it a percentage but takes a fraction.
            MemoryLimit::Percent(p) => {
                memory_connection_limits::Behaviour::with_max_percentage(p / 100.0)
            }
            MemoryLimit::Bytes(b) => memory_connection_limits::Behaviour::with_max_bytes(
                usize::try_from(b).unwrap_or(usize::MAX),
            ),
        };
        let identify = identify::Config::new(PROTOCOL_VERSION.to_owned(), keypair.public())
            .with_agent_version(agent_version());
        Self {
            per_ip: super::ip_limits::Behaviour::new(limits),
            limits: connection_limits::Behaviour::new(connection_limits),
            memory,
            identify: identify::Behaviour::new(identify),
            ping: ping::Behaviour::new(ping::Config::new()),
            relay: mailbox::behaviour::relay(role, limits, budget),
            notify: mailbox::behaviour::notify(role, limits),
            chunks: super::chunks_inbound::Behaviour::new(chunk_queue),
            streams: libp2p_stream::Behaviour::new(),
        }
    }
}
