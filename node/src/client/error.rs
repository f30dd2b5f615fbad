//! Why a client operation failed.

use mayfly_protocol::mailbox::ErrorCode;

use crate::home::HomeError;
use crate::media::MediaError;
use crate::net::NetError;
use crate::store::StoreError;

/// A client error: one clear line each.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The home directory failed.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The local mailbox store failed.
    #[error("local mailbox: {0}")]
    Store(#[from] StoreError),
    /// The network failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The file is not a clip this kind allows.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The protocol refused something (a bad signature, an expired clip, a
    /// clip that does not open).
    #[error("{0}")]
    Protocol(#[from] mayfly_protocol::Error),
    /// A relay or peer answered with an error.
    #[error("{peer} refused: {detail} ({code:?})")]
    Refused {
        /// Who answered.
        peer: String,
        /// The typed code.
        code: ErrorCode,
        /// The detail it gave.
        detail: String,
    },
    /// A relay or peer answered something the request does not expect.
    #[error("{peer} answered a {request} request with something else")]
    UnexpectedResponse {
        /// Who answered.
        peer: String,
        /// The request.
        request: &'static str,
    },
    /// A relay address in the profile or a card is not `/…/p2p/<peer id>`.
    #[error("bad relay address {address:?}: {reason}")]
    BadRelayAddress {
        /// The address.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The home has no relay to use.
    #[error("no relay configured: run `mayfly init --relay MULTIADDR` or `mayfly relays set`")]
    NoRelay,
    /// No relay of the recipient could be reached, and it was not online.
    #[error("could not deliver to {name}: {reason}")]
    Undeliverable {
        /// The recipient.
        name: String,
        /// The last failure.
        reason: String,
    },
    /// No such message in the inbox or outbox.
    #[error("no message {0} (see `mayfly inbox`)")]
    UnknownMessage(String),
    /// The message id given is not valid hex or is ambiguous.
    #[error("message id {0:?}: {1}")]
    BadMessageId(String, &'static str),
    /// A clip's lifetime is longer than its kind allows.
    #[error("a lifetime of {} is too long: clips live at most {}", days(*.ttl_ms), days(*.limit_ms))]
    LifetimeTooLong {
        /// The lifetime asked for, in milliseconds.
        ttl_ms: u64,
        /// The longest lifetime allowed, in milliseconds.
        limit_ms: u64,
    },
    /// The clip was revoked by its sender: its key is erased here.
    #[error("message {0} was revoked by its sender")]
    Revoked(String),
    /// The clip is past its expiry.
    #[error("message {0} has expired")]
    Expired(String),
    /// The sender did not allow saving and the output is a file.
    #[error("the sender did not allow saving this clip; open it with `--out -` to play it")]
    SaveNotAllowed,
    /// This device was replaced by a newer one of the same identity (a
    /// relay showed its certificate), and has erased its messages and keys
    /// (CLIENT.md §3.3).
    #[error(
        "this device was replaced by device #{by_serial} of the same identity, and has erased its messages and keys"
    )]
    DeviceReplaced {
        /// The serial of the device that replaced this one.
        by_serial: u64,
    },
    /// The invite is not valid, or was already used.
    #[error("invite: {0}")]
    Invite(String),
    /// The client has stopped.
    #[error("the client has stopped")]
    Stopped,
}

/// Milliseconds as days, hours, minutes or seconds, whichever is whole
/// ("14 days", "36 hours", "90 s").
fn days(ms: u64) -> String {
    const DAY: u64 = 86_400_000;
    const HOUR: u64 = 3_600_000;
    const MINUTE: u64 = 60_000;
    match ms {
        ms if ms.is_multiple_of(DAY) => plural(ms / DAY, "day"),
        ms if ms.is_multiple_of(HOUR) => plural(ms / HOUR, "hour"),
        ms if ms.is_multiple_of(MINUTE) => plural(ms / MINUTE, "minute"),
        ms if ms.is_multiple_of(1000) => format!("{} s", ms / 1000),
        ms => format!("{ms} ms"),
    }
}

fn plural(n: u64, unit: &str) -> String {
    match n {
        1 => format!("1 {unit}"),
        n => format!("{n} {unit}s"),
    }
}

impl ClientError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
