//! The request-response behaviours of the mailbox protocol.
//!
//! Both protocols run on `libp2p::request_response`, whose handler bounds
//! the time of each exchange ([`Limits::request_timeout_secs`]: reading the
//! request, the relay's work and writing the response together) and the
//! streams open at once on each connection
//! ([`Limits::max_concurrent_streams`]; an inbound stream beyond it is
//! refused). An exchange that times out is dropped without an answer.
//!
//! **Notifications.** RELAY.md §2 describes `/mayfly/notify/1` as one
//! stream carrying notification frames until either side closes. Here each
//! notification is its own short stream, answered by the owner with
//! [`Response::Ok`](mayfly_protocol::mailbox::Response::Ok): the frames
//! are the same, and request_response then bounds and times out
//! notification streams like every other. (The spec text should say which
//! of the two is meant; this is the simpler one to bound.)

use libp2p::StreamProtocol;
use libp2p::request_response::{self, ProtocolSupport};
use mayfly_protocol::mailbox::{DIRECT_PROTOCOL, NOTIFY_PROTOCOL, RELAY_PROTOCOL};

use super::budget::ByteBudget;
use super::protocol::{NotifyCodec, RelayCodec};
use crate::config::Limits;

/// The behaviour for `/mayfly/relay/1` and `/mayfly/direct/1`.
pub type RelayBehaviour = request_response::Behaviour<RelayCodec>;
/// The behaviour for `/mayfly/notify/1`.
pub type NotifyBehaviour = request_response::Behaviour<NotifyCodec>;

/// Which side of the mailbox protocol a node plays. It decides which
/// direction of each protocol the node supports, so a client never accepts
/// relay requests and a relay never accepts notifications or direct
/// requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends requests to relays, receives notifications, and sends and
    /// receives direct requests (`/mayfly/direct/1`) from other clients.
    Client,
    /// Answers requests, sends notifications to logged-in owners.
    Relay,
}

fn config(limits: &Limits) -> request_response::Config {
    request_response::Config::default()
        .with_request_timeout(limits.request_timeout())
        .with_max_concurrent_streams(limits.max_concurrent_streams)
}

/// The request behaviour for `role`: the same frames and messages on
/// `/mayfly/relay/1` and `/mayfly/direct/1`.
///
/// A relay answers `/mayfly/relay/1` only. A client sends on
/// `/mayfly/relay/1` and sends and answers on `/mayfly/direct/1`. An
/// outbound request offers the protocols in that order and uses the first
/// the remote supports: `/mayfly/relay/1` to a relay, `/mayfly/direct/1`
/// to another client (which does not answer relay requests). So
/// [`Client::request`](crate::net::Client::request) reaches either, and
/// every inbound request a client receives came on `/mayfly/direct/1`.
///
/// Inbound requests hold bytes of `budget`, the swarm's one budget of
/// [`Limits::max_buffered_request_bytes`].
pub fn relay(role: Role, limits: &Limits, budget: ByteBudget) -> RelayBehaviour {
    let relay = StreamProtocol::new(RELAY_PROTOCOL);
    let direct = StreamProtocol::new(DIRECT_PROTOCOL);
    let protocols = match role {
        Role::Client => vec![
            (relay, ProtocolSupport::Outbound),
            (direct, ProtocolSupport::Full),
        ],
        Role::Relay => vec![(relay, ProtocolSupport::Inbound)],
    };
    request_response::Behaviour::with_codec(
        RelayCodec::with_budget(budget),
        protocols,
        config(limits),
    )
}

/// The `/mayfly/notify/1` behaviour for `role`.
pub fn notify(role: Role, limits: &Limits) -> NotifyBehaviour {
    let support = match role {
        Role::Client => ProtocolSupport::Inbound,
        Role::Relay => ProtocolSupport::Outbound,
    };
    request_response::Behaviour::new(
        [(StreamProtocol::new(NOTIFY_PROTOCOL), support)],
        config(limits),
    )
}
