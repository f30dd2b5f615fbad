//! The mailbox protocol between clients and relays, sans-IO: frames,
//! requests, responses and notifications, and the login proof a mailbox
//! owner presents. `spec/RELAY.md` is its normative description; the node
//! drives it over libp2p streams.

pub mod frame;
pub mod login;
pub mod message;
pub mod replay;

pub use frame::{FrameDecoder, MAX_FRAME_LEN, encode_frame};
pub use login::LoginProof;
pub use message::{Entry, ErrorCode, Notify, Request, Response, RevokeOutcome};

/// libp2p protocol id of request/response streams: one request, one response.
pub const RELAY_PROTOCOL: &str = "/mayfly/relay/1";
/// libp2p protocol id of direct delivery: the same frames and messages as
/// [`RELAY_PROTOCOL`], spoken from one client to another (RELAY.md §8).
pub const DIRECT_PROTOCOL: &str = "/mayfly/direct/1";
/// libp2p protocol id of the relay-to-owner notification stream.
pub const NOTIFY_PROTOCOL: &str = "/mayfly/notify/1";
/// libp2p protocol id of chunk streams (RELAY.md §2.1): many PutChunk or
/// GetChunk request frames on one stream, each answered in order.
pub const CHUNKS_PROTOCOL: &str = "/mayfly/chunks/1";
/// Most frames the opener of a chunk stream may have sent on it and
/// not yet seen answered (RELAY.md §2.1). A receiver reads no further frame
/// while this many are unanswered.
pub const CHUNKS_WINDOW: usize = 8;
