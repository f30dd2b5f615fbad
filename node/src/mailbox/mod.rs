//! The libp2p side of the mailbox protocol (`spec/RELAY.md`): the stream
//! codec for `/mayfly/relay/1`, `/mayfly/direct/1` (the same messages,
//! client to client, RELAY.md §8) and `/mayfly/notify/1`, and the
//! request-response behaviours that run them. Laid out like a rust-libp2p
//! protocol crate: [`protocol`] is the wire (one length-prefixed frame each
//! way, decoded strictly by `mayfly-protocol`), [`behaviour`] configures the
//! behaviours.
//!
//! # Why `request_response` and not a hand-written handler
//!
//! `/mayfly/relay/1` is exactly one request frame, one response frame, then
//! close: the shape `libp2p::request_response` implements. Its connection
//! handler already gives what RELAY.md §2 asks of a relay and would
//! otherwise have to be written and tested by hand: a timeout covering the
//! whole exchange (reading the request, the relay's work, writing the
//! response), a bound on concurrent streams per connection (further inbound
//! streams are refused, not queued), protocol negotiation, and clean
//! failure reporting. What it does not do — framing and strict decoding —
//! is [`protocol::FrameCodec`], a few dozen lines with nothing to get wrong
//! in the stream handling.
//!
//! `/mayfly/notify/1` is run the same way, one notification per stream
//! answered by `Ok` (see [`behaviour`] for how that relates to the spec's
//! long-lived notification stream).

pub mod behaviour;
pub mod budget;
pub mod protocol;

pub use behaviour::{NotifyBehaviour, RelayBehaviour, Role};
pub use budget::{ByteBudget, Held, Hold};
pub use protocol::{FrameCodec, NotifyCodec, RelayCodec};
