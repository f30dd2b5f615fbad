//! Taking in what arrives: one worker task that applies revocations, syncs
//! the local mailbox after direct deliveries, and syncs a relay after it
//! announced a deposit.
//!
//! The event loop only marks what is wanted ([`Intake::want_local`],
//! [`Intake::want_relay`], [`Intake::revoked`]) and wakes the worker. Marks
//! coalesce: a burst of announcements makes one sync, and a mark made while
//! a sync runs makes another one after it, so none is ever lost. (Before,
//! each announcement spawned a task and one beyond the task limit was
//! dropped: the last clip of a burst could wait, never taken in and with
//! no `Event::Received`, until something else made the client sync.)

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use mayfly_protocol::RevocationRecord;
use tokio::sync::Notify;

use super::Event;
use super::inner::{Inner, lock};

/// Revocations waiting to be applied; beyond it the event loop stops
/// taking personal events, which holds the revoking peer's request back.
pub(super) const MAX_PENDING_REVOCATIONS: usize = 256;

/// Relays marked for a sync at once: the relays this client logged in to
/// are the only ones that announce, so this is never reached in practice;
/// beyond it a mark is dropped (the next sync of that relay finds it).
const MAX_PENDING_RELAYS: usize = 64;

#[derive(Default)]
struct Pending {
    local: bool,
    relays: BTreeSet<PeerId>,
    revocations: Vec<RevocationRecord>,
    closing: bool,
}

/// What the worker is to do next, and its wake-up.
#[derive(Default)]
pub(super) struct Intake {
    pending: Mutex<Pending>,
    wake: Notify,
    /// Told when the worker takes the pending revocations.
    room: Notify,
}

impl Intake {
    /// A direct delivery completed in the local store.
    pub fn want_local(&self) {
        lock(&self.pending).local = true;
        self.wake.notify_one();
    }

    /// `relay` announced a deposit.
    pub fn want_relay(&self, relay: PeerId) {
        {
            let mut p = lock(&self.pending);
            if p.relays.len() < MAX_PENDING_RELAYS {
                p.relays.insert(relay);
            } else {
                tracing::debug!(%relay, "too many relays waiting for a sync: mark dropped");
            }
        }
        self.wake.notify_one();
    }

    /// A revocation was applied to the local store; the home must erase
    /// the clip too.
    pub fn revoked(&self, record: RevocationRecord) {
        lock(&self.pending).revocations.push(record);
        self.wake.notify_one();
    }

    /// Whether another revocation may be queued.
    pub fn has_room(&self) -> bool {
        lock(&self.pending).revocations.len() < MAX_PENDING_REVOCATIONS
    }

    /// Resolves once the worker has taken the revocations waiting (for an
    /// event loop that stopped taking personal events for lack of room).
    pub async fn room_freed(&self) {
        self.room.notified().await;
    }

    /// Asks the worker to finish what is marked, then stop.
    pub fn close(&self) {
        lock(&self.pending).closing = true;
        self.wake.notify_one();
    }

    /// The worker: runs until [`Intake::close`], then once more.
    pub async fn run(self: Arc<Self>, inner: Arc<Inner>) {
        loop {
            self.wake.notified().await;
            let p = std::mem::take(&mut *lock(&self.pending));
            self.room.notify_one();
            // Revocations first: a clip revoked in the same burst as its
            // delivery is not taken in only to be erased.
            for record in &p.revocations {
                if let Err(e) = inner.apply_revocation(record).await {
                    inner.emit(Event::Warning {
                        message: format!("applying a revocation: {e}"),
                    });
                }
            }
            if p.local
                && let Err(e) = inner.sync_local().await
            {
                inner.emit(Event::Warning {
                    message: format!("taking in a direct delivery: {e}"),
                });
            }
            for relay in p.relays {
                if let Err(e) = inner.sync_relay(relay).await {
                    inner.emit(Event::Warning {
                        message: format!("sync with {relay}: {e}"),
                    });
                }
            }
            if p.closing {
                return;
            }
        }
    }
}
