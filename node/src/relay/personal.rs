//! Personal mode of the mailbox service: a client answering direct
//! requests (`/mayfly/direct/1`, RELAY.md §8) over its own store, for its
//! own identity only.

use mayfly_protocol::mailbox::{ErrorCode, Request, Response};
use mayfly_protocol::{MessageId, RevocationRecord, SigningPublicKey};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// What a personal service tells its application.
// Unboxed: events are rare and few are queued; matching on them stays plain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonalEvent {
    /// A deposit for the owner became complete (every chunk stored) and is
    /// listed in the local store: where a relay would send NewDeposit.
    Deposited {
        /// Its sequence number in the owner's local mailbox.
        seq: u64,
        /// The clip.
        message_id: MessageId,
    },
    /// A revocation was applied: the clip's data is gone from the store.
    Revoked(RevocationRecord),
}

/// Whom the service works for.
#[derive(Debug)]
pub(super) enum Mode {
    /// A relay: every request of RELAY.md §3.
    Relay,
    /// A client's personal service.
    Personal {
        /// The identity whose mailbox deposits go to.
        owner: SigningPublicKey,
        /// Where completed deposits and revocations are reported.
        deliveries: mpsc::Sender<PersonalEvent>,
    },
}

/// Whether a personal service for `owner` takes `request` at all:
/// Deposit for `owner`'s mailbox (another mailbox is Forbidden), PutChunk,
/// GetChunk, GetManifest and Revoke; anything else is Unsupported.
pub(super) fn admit(owner: &SigningPublicKey, request: &Request) -> Result<(), Response> {
    match request {
        Request::Deposit { mailbox, .. } if mailbox != owner => Err(Response::error(
            ErrorCode::Forbidden,
            "direct deposits go to this client's own mailbox only",
        )),
        Request::Deposit { .. }
        | Request::PutChunk { .. }
        | Request::GetChunk { .. }
        | Request::GetManifest { .. }
        | Request::Revoke(_) => Ok(()),
        _ => Err(Response::error(
            ErrorCode::Unsupported,
            "not answered by direct delivery",
        )),
    }
}

/// Reports `event`, waiting for room in the channel (a closed one is
/// ignored): for what must not be lost, a revocation the home has to apply.
pub(super) async fn deliver_wait(deliveries: &mpsc::Sender<PersonalEvent>, event: PersonalEvent) {
    if deliveries.send(event).await.is_err() {
        tracing::debug!("personal event channel closed");
    }
}

/// Reports `event` without waiting: a full channel loses it (logged), a
/// closed one is ignored. For a completed deposit this loses nothing: the
/// events queued ahead of it each make the application list the whole
/// local mailbox after this one is in it.
pub(super) fn deliver(deliveries: &mpsc::Sender<PersonalEvent>, event: PersonalEvent) {
    match deliveries.try_send(event) {
        Ok(()) => {}
        Err(TrySendError::Full(event)) => {
            tracing::warn!(?event, "personal event channel full: event dropped");
        }
        Err(TrySendError::Closed(_)) => {
            tracing::debug!("personal event channel closed");
        }
    }
}
