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
use mayfly_protocol::mailbox::{NOTIFY_PROTOCOL, RELAY_PROTOCOL};

use super::protocol::{NotifyCodec, RelayCodec};
use crate::config::Limits;

/// The behaviour for `/mayfly/relay/1`.
pub type RelayBehaviour = request_response::Behaviour<RelayCodec>;
/// The behaviour for `/mayfly/notify/1`.
pub type NotifyBehaviour = request_response::Behaviour<NotifyCodec>;

/// Which side of the mailbox protocol a node plays. It decides which
/// direction of each protocol the node supports, so a client never accepts
/// relay requests and a relay never accepts notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends requests to relays, receives notifications.
    Client,
    /// Answers requests, sends notifications to logged-in owners.
    Relay,
}

fn config(limits: &Limits) -> request_response::Config {
    request_response::Config::default()
        .with_request_timeout(limits.request_timeout())
        .with_max_concurrent_streams(limits.max_concurrent_streams)
}

/// The `/mayfly/relay/1` behaviour for `role`.
pub fn relay(role: Role, limits: &Limits) -> RelayBehaviour {
    let support = match role {
        Role::Client => ProtocolSupport::Outbound,
        Role::Relay => ProtocolSupport::Inbound,
    };
    request_response::Behaviour::new(
        [(StreamProtocol::new(RELAY_PROTOCOL), support)],
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
