//! Relays in the overlay (LIVE.md §8.2): at a broadcaster's request a relay
//! joins the broadcast's gossipsub topic as a peer that holds no key. It
//! checks every segment as any peer does (§6, which needs no key) and
//! forwards what passes, so viewers who cannot dial the broadcaster (it is
//! behind a NAT, or they are) dial the relay instead, and the broadcaster
//! reaches them by dialling out to it.
//!
//! [`Forwards`] keeps a relay's forwarders, bounded in number, per
//! broadcaster and in time: a forwarder stops once the broadcast has ended
//! or has been silent for a while.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use libp2p::Multiaddr;
use mayfly_protocol::SigningPublicKey;
use mayfly_protocol::live::{BroadcastId, FLAG_END, SegmentGate};
use tokio::sync::mpsc;

use super::{LiveConfig, LiveEvent, LivePeer, LivePeerError};

/// How a relay forwards broadcasts. Defaults live here; the relay's
/// configuration sets them (`[live]`).
#[derive(Debug, Clone)]
pub struct ForwardLimits {
    /// Broadcasts forwarded at once.
    pub max_forwards: usize,
    /// Broadcasts one broadcaster may have forwarded at once.
    pub per_broadcaster: usize,
    /// A forwarder that has taken in no segment for this long stops.
    pub idle: Duration,
    /// Where forwarders listen (each on a port of its own).
    pub listen: Multiaddr,
    /// The overlay's settings.
    pub live: LiveConfig,
}

impl Default for ForwardLimits {
    fn default() -> Self {
        Self {
            max_forwards: 64,
            per_broadcaster: 2,
            idle: Duration::from_secs(60),
            listen: "/ip4/0.0.0.0/tcp/0".parse().expect("a multiaddr"),
            live: LiveConfig::default(),
        }
    }
}

/// Why a broadcast is not forwarded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The relay forwards as many broadcasts as it takes.
    #[error("this relay forwards as many broadcasts as it takes")]
    Full,
    /// The broadcaster has as many forwarded as it may.
    #[error("this broadcaster has as many broadcasts forwarded as it may")]
    TooMany,
    /// The broadcast id is forwarded for another broadcaster.
    #[error("the broadcast is another broadcaster's")]
    NotYours,
    /// The forwarder could not start.
    #[error(transparent)]
    Peer(#[from] LivePeerError),
}

/// One forwarder.
struct Forward {
    broadcaster: SigningPublicKey,
    addresses: Vec<Multiaddr>,
    task: tokio::task::JoinHandle<()>,
}

/// A relay's forwarders, by broadcast.
pub struct Forwards {
    limits: ForwardLimits,
    running: Mutex<HashMap<BroadcastId, Forward>>,
}

impl std::fmt::Debug for Forwards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwards")
            .field("limits", &self.limits)
            .field("running", &self.lock().len())
            .finish()
    }
}

impl Forwards {
    /// No forwarders yet, under `limits`.
    pub fn new(limits: ForwardLimits) -> Self {
        Self {
            limits,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BroadcastId, Forward>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Broadcasts forwarded now.
    pub fn len(&self) -> usize {
        self.sweep();
        self.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the forwarders that have stopped.
    fn sweep(&self) {
        self.lock().retain(|_, f| !f.task.is_finished());
    }

    /// Forwards `broadcaster`'s broadcast `id`, whose current device has
    /// serial `serial` (from its login), and returns where the forwarder
    /// can be dialled, each address with its `/p2p/` id. Asking again for
    /// the same broadcast returns the same forwarder.
    pub async fn forward(
        &self,
        broadcaster: SigningPublicKey,
        serial: u64,
        id: BroadcastId,
    ) -> Result<Vec<Multiaddr>, ForwardError> {
        self.sweep();
        {
            let running = self.lock();
            if let Some(f) = running.get(&id) {
                return if f.broadcaster == broadcaster {
                    Ok(f.addresses.clone())
                } else {
                    Err(ForwardError::NotYours)
                };
            }
            if running.len() >= self.limits.max_forwards {
                return Err(ForwardError::Full);
            }
            let mine = running
                .values()
                .filter(|f| f.broadcaster == broadcaster)
                .count();
            if mine >= self.limits.per_broadcaster {
                return Err(ForwardError::TooMany);
            }
        }
        let gate = SegmentGate::new(id, broadcaster, serial);
        let (peer, events) =
            LivePeer::start_forwarder(gate, self.limits.listen.clone(), &self.limits.live).await?;
        let addresses: Vec<Multiaddr> = peer
            .addresses()
            .iter()
            .map(|a| {
                a.clone()
                    .with(libp2p::multiaddr::Protocol::P2p(peer.peer_id()))
            })
            .take(mayfly_protocol::limits::MAX_ANNOUNCE_ADDRS)
            .collect();
        let task = tokio::spawn(run(peer, events, self.limits.idle));
        let mut running = self.lock();
        // Two requests for one broadcast may have raced: the first wins.
        if let Some(f) = running.get(&id) {
            task.abort();
            return if f.broadcaster == broadcaster {
                Ok(f.addresses.clone())
            } else {
                Err(ForwardError::NotYours)
            };
        }
        running.insert(
            id,
            Forward {
                broadcaster,
                addresses: addresses.clone(),
                task,
            },
        );
        Ok(addresses)
    }
}

impl Drop for Forwards {
    fn drop(&mut self) {
        for f in self.lock().values() {
            f.task.abort();
        }
    }
}

/// How long a forwarder stays up after the end segment, so that it
/// reaches the viewers.
const END_LINGER: Duration = Duration::from_secs(2);

/// Takes in the forwarder's events (the gate has already decided what is
/// forwarded) until the broadcast ends or falls silent for `idle`.
async fn run(peer: LivePeer, mut events: mpsc::Receiver<LiveEvent>, idle: Duration) {
    loop {
        match tokio::time::timeout(idle, next_segment(&mut events)).await {
            Ok(Some(end)) if end => {
                tokio::time::sleep(END_LINGER).await;
                break;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    peer.stop().await;
}

/// The next segment the gate accepted: whether it is the end. `None` when
/// the peer stopped.
async fn next_segment(events: &mut mpsc::Receiver<LiveEvent>) -> Option<bool> {
    loop {
        if let LiveEvent::Segment { flags, .. } = events.recv().await? {
            return Some(flags & FLAG_END != 0);
        }
    }
}
