//! Upload admission (RELAY.md §5.5): a relay-wide bound on the clips whose
//! chunks are being uploaded at once.
//!
//! A depositor whose clip has chunks missing takes an upload slot before its
//! Deposit is answered; a sender uploads chunks only after that answer, so
//! the bound caps how many chunk streams honest senders keep open at the
//! relay, and with it the bytes the multiplexer buffers for them (yamux
//! grants each new stream a 256 KiB window before anyone reads it). When
//! every slot is taken, the Deposit waits for one, up to
//! [`UploadLimits::wait_secs`], and is then refused (RateLimited).
//!
//! A slot is given back when the clip's chunks are all in (or the clip is
//! revoked), when its peer disconnects, or when the peer has sent no chunk
//! of it for [`UploadLimits::idle_secs`]. One peer holds at most
//! [`UploadLimits::max_per_peer`] slots.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use mayfly_protocol::MessageId;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::service::lock;
use crate::config::UploadLimits;

/// How often a waiting Deposit looks for idle slots to reclaim.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Why an upload was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The peer already holds its share of slots.
    #[error("too many uploads in progress from this peer")]
    PeerBusy,
    /// No slot came free in time, or too many deposits wait already.
    #[error("the relay is busy with other uploads; retry later")]
    RelayBusy,
}

#[derive(Debug)]
struct Slot {
    _permit: OwnedSemaphorePermit,
    /// When the peer last deposited or sent a chunk of the clip.
    last: Instant,
}

/// One deposit counted as waiting, for as long as it lives (a cancelled
/// wait is uncounted too).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    /// Counts one more waiter, unless `max` wait already.
    fn enter(count: &'a AtomicUsize, max: usize) -> Result<Self, Refused> {
        if count.fetch_add(1, Ordering::Relaxed) >= max {
            count.fetch_sub(1, Ordering::Relaxed);
            return Err(Refused::RelayBusy);
        }
        Ok(Self(count))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The relay's upload slots.
#[derive(Debug)]
pub struct Uploads {
    limits: UploadLimits,
    slots: Arc<Semaphore>,
    held: std::sync::Mutex<HashMap<(PeerId, MessageId), Slot>>,
    waiting: AtomicUsize,
    /// Signalled when a deposit starts waiting.
    more_waiting: Notify,
}

impl Uploads {
    /// Slots under `limits` (at least one, and one per peer).
    pub fn new(limits: UploadLimits) -> Self {
        let n = limits.max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            limits,
            slots: Arc::new(Semaphore::new(n)),
            held: std::sync::Mutex::new(HashMap::new()),
            waiting: AtomicUsize::new(0),
            more_waiting: Notify::new(),
        }
    }

    /// Deposits waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Completes once a deposit has started waiting since the last call
    /// (the relay's main loop then takes more requests: waiting deposits do
    /// not count against its bound of requests in flight).
    pub async fn more_waiting(&self) {
        self.more_waiting.notified().await;
    }

    /// Slots held now.
    pub fn in_progress(&self) -> usize {
        lock(&self.held).len()
    }

    /// Admits `peer`'s upload of `id` at once if it holds a slot for it
    /// already or one is free. `Ok(false)`: every slot is taken.
    pub fn try_admit(&self, peer: PeerId, id: MessageId, now: Instant) -> Result<bool, Refused> {
        let mut held = lock(&self.held);
        if let Some(slot) = held.get_mut(&(peer, id)) {
            slot.last = now;
            return Ok(true);
        }
        if self.at_peer_cap(&held, peer) {
            return Err(Refused::PeerBusy);
        }
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                held.insert(
                    (peer, id),
                    Slot {
                        _permit: permit,
                        last: now,
                    },
                );
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// Admits `peer`'s upload of `id`, waiting for a slot up to the
    /// configured time.
    pub async fn admit(&self, peer: PeerId, id: MessageId) -> Result<(), Refused> {
        if self.try_admit(peer, id, Instant::now())? {
            return Ok(());
        }
        let _waiting = Waiting::enter(&self.waiting, self.limits.max_waiting)?;
        self.more_waiting.notify_one();
        self.wait(peer, id).await
    }

    /// True if `peer` holds its share of slots in `held`.
    fn at_peer_cap(&self, held: &HashMap<(PeerId, MessageId), Slot>, peer: PeerId) -> bool {
        held.keys().filter(|(p, _)| *p == peer).count() >= self.limits.max_per_peer.max(1)
    }

    async fn wait(&self, peer: PeerId, id: MessageId) -> Result<(), Refused> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.limits.wait_secs);
        loop {
            self.sweep(Instant::now());
            let until = (tokio::time::Instant::now() + SWEEP_EVERY).min(deadline);
            // Waiting on the semaphore keeps waiters in arrival order.
            match tokio::time::timeout_at(until, self.slots.clone().acquire_owned()).await {
                Ok(Ok(permit)) => return self.insert(peer, id, permit, Instant::now()),
                // Closed: the service is shutting down.
                Ok(Err(_)) => return Err(Refused::RelayBusy),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(Refused::RelayBusy);
                }
                Err(_) => {}
            }
        }
    }

    fn insert(
        &self,
        peer: PeerId,
        id: MessageId,
        permit: OwnedSemaphorePermit,
        now: Instant,
    ) -> Result<(), Refused> {
        let mut held = lock(&self.held);
        if let Some(slot) = held.get_mut(&(peer, id)) {
            // A second Deposit of the same clip got in first: keep one slot.
            slot.last = now;
            return Ok(());
        }
        if self.at_peer_cap(&held, peer) {
            return Err(Refused::PeerBusy);
        }
        held.insert(
            (peer, id),
            Slot {
                _permit: permit,
                last: now,
            },
        );
        Ok(())
    }

    /// Refuses every waiting and later Deposit (RelayBusy) at once, e.g. at
    /// shutdown; uploads already admitted go on.
    pub fn close(&self) {
        self.slots.close();
    }

    /// `peer` sent a chunk of `id`: its slot is not idle.
    pub fn touch(&self, peer: PeerId, id: MessageId, now: Instant) {
        if let Some(slot) = lock(&self.held).get_mut(&(peer, id)) {
            slot.last = now;
        }
    }

    /// Every chunk of `id` is in, or `id` was revoked: its slots are free.
    pub fn finish(&self, id: &MessageId) {
        lock(&self.held).retain(|(_, m), _| m != id);
    }

    /// `peer` disconnected: its slots are free.
    pub fn forget_peer(&self, peer: &PeerId) {
        lock(&self.held).retain(|(p, _), _| p != peer);
    }

    /// Frees the slots idle for longer than the configured time at `now`.
    pub fn sweep(&self, now: Instant) {
        let idle = Duration::from_secs(self.limits.idle_secs);
        lock(&self.held).retain(|_, slot| now.saturating_duration_since(slot.last) < idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_concurrent: usize, max_per_peer: usize) -> UploadLimits {
        UploadLimits {
            max_concurrent,
            max_per_peer,
            max_waiting: 2,
            wait_secs: 5,
            idle_secs: 30,
        }
    }

    fn id(n: u8) -> MessageId {
        MessageId([n; 32])
    }

    #[test]
    fn slots_are_bounded_per_relay_and_per_peer() {
        let u = Uploads::new(limits(2, 1));
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let t = Instant::now();
        assert_eq!(u.try_admit(a, id(1), t), Ok(true));
        // The same clip again keeps its slot.
        assert_eq!(u.try_admit(a, id(1), t), Ok(true));
        assert_eq!(u.try_admit(a, id(2), t), Err(Refused::PeerBusy));
        assert_eq!(u.try_admit(b, id(2), t), Ok(true));
        assert_eq!(u.try_admit(c, id(3), t), Ok(false));
        assert_eq!(u.in_progress(), 2);
        u.finish(&id(1));
        assert_eq!(u.try_admit(c, id(3), t), Ok(true));
        u.forget_peer(&b);
        assert_eq!(u.in_progress(), 1);
    }

    #[test]
    fn idle_slots_are_reclaimed_and_chunks_keep_them_busy() {
        let u = Uploads::new(limits(2, 2));
        let (a, b) = (PeerId::random(), PeerId::random());
        let t = Instant::now();
        u.try_admit(a, id(1), t).unwrap();
        u.try_admit(b, id(2), t).unwrap();
        u.touch(b, id(2), t + Duration::from_secs(20));
        u.sweep(t + Duration::from_secs(29));
        assert_eq!(u.in_progress(), 2);
        u.sweep(t + Duration::from_secs(30));
        assert_eq!(u.in_progress(), 1, "a's slot was idle for 30 s");
        u.sweep(t + Duration::from_secs(50));
        assert_eq!(u.in_progress(), 0);
    }

    /// `peer`'s admission of `id`, running on its own task.
    fn spawn_admit(
        u: &Arc<Uploads>,
        peer: PeerId,
        id: MessageId,
    ) -> tokio::task::JoinHandle<Result<(), Refused>> {
        let u = u.clone();
        tokio::spawn(async move { u.admit(peer, id).await })
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_deposit_gets_the_next_free_slot_or_gives_up() {
        let u = Arc::new(Uploads::new(limits(1, 1)));
        let (a, b, c, d) = (
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
        );
        u.admit(a, id(1)).await.unwrap();
        let waiter = spawn_admit(&u, b, id(2));
        tokio::task::yield_now().await;
        assert_eq!(u.waiting(), 1);
        u.finish(&id(1));
        assert_eq!(waiter.await.unwrap(), Ok(()));
        // Nobody frees b's slot: c and d wait out their 5 s and are refused,
        // and a third deposit finds the two waiting places taken.
        let c_wait = spawn_admit(&u, c, id(3));
        let d_wait = spawn_admit(&u, d, id(4));
        tokio::task::yield_now().await;
        assert_eq!(
            u.admit(PeerId::random(), id(5)).await,
            Err(Refused::RelayBusy)
        );
        assert_eq!(c_wait.await.unwrap(), Err(Refused::RelayBusy));
        assert_eq!(d_wait.await.unwrap(), Err(Refused::RelayBusy));
        assert_eq!(u.waiting(), 0);
        assert_eq!(u.in_progress(), 1);

        // A wait that is cancelled is no longer counted.
        let cancelled = spawn_admit(&u, PeerId::random(), id(7));
        tokio::task::yield_now().await;
        assert_eq!(u.waiting(), 1);
        cancelled.abort();
        assert!(cancelled.await.unwrap_err().is_cancelled());
        assert_eq!(u.waiting(), 0);

        // Closed (shutdown): a waiter is refused at once, the held slot stays.
        let e_wait = spawn_admit(&u, PeerId::random(), id(6));
        tokio::task::yield_now().await;
        assert_eq!(u.waiting(), 1);
        let t = tokio::time::Instant::now();
        u.close();
        assert_eq!(e_wait.await.unwrap(), Err(Refused::RelayBusy));
        assert_eq!(t.elapsed(), Duration::ZERO, "no wait after close");
        assert_eq!(u.in_progress(), 1);
    }
}
