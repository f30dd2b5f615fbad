//! The client's event loop: it runs the network, serves direct deliveries
//! from peers (a personal mailbox service over the local store), follows
//! relay notifications, and erases expired clips on a timer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;

use mayfly_protocol::mailbox::Notify;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::inner::{Inner, lock};
use super::intake::Intake;
use super::{ClientError, Event, peer};
use crate::metrics::RelayMetrics;
use crate::net;
use crate::relay::PersonalEvent;
use crate::relay::service::{Service, ServiceLimits};

/// Background tasks (announcements) running at once; beyond it, one is
/// dropped (the next address change announces again). Syncs and
/// revocations are not tasks: they go to the intake worker ([`Intake`]).
const MAX_TASKS: usize = 16;

/// The first pause before a lost relay session is opened again; it doubles
/// after each failure, up to [`RESUME_LAST_PAUSE`].
const RESUME_FIRST_PAUSE: Duration = Duration::from_millis(200);
const RESUME_LAST_PAUSE: Duration = Duration::from_secs(30);

/// Personal-service events queued before the service drops them.
const PERSONAL_CHANNEL_CAPACITY: usize = 64;

/// Drives a client; run it with [`EventLoop::run`] on its own task.
pub struct EventLoop {
    inner: Arc<Inner>,
    net_events: mpsc::Receiver<net::Event>,
    net_loop: Option<net::EventLoop>,
    service: Service,
    personal: mpsc::Receiver<PersonalEvent>,
    tasks: JoinSet<()>,
    intake: Arc<Intake>,
    /// Relay sessions being opened again, by relay (at most one per relay
    /// of the home).
    resuming: HashMap<PeerId, JoinHandle<()>>,
}

impl EventLoop {
    pub(super) fn new(
        inner: Arc<Inner>,
        net_events: mpsc::Receiver<net::Event>,
        net_loop: net::EventLoop,
    ) -> Result<Self, ClientError> {
        let (tx, personal) = mpsc::channel(PERSONAL_CHANNEL_CAPACITY);
        let rng = {
            let mut seed = [0u8; 32];
            rand_core::Rng::fill_bytes(&mut *lock(&inner.rng), &mut seed);
            <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed(seed)
        };
        let service = Service::personal(
            inner.local.clone(),
            inner.net.clone(),
            inner.net.local_peer_id(),
            inner.identity,
            ServiceLimits {
                rate: inner.config.direct_rate.clone(),
                max_buffered_response_bytes: inner.config.limits.max_buffered_response_bytes,
                ..ServiceLimits::default()
            },
            inner.clock.clone(),
            rng,
            Arc::new(RelayMetrics::new()),
            tx,
        );
        Ok(Self {
            inner,
            net_events,
            net_loop: Some(net_loop),
            service,
            personal,
            tasks: JoinSet::new(),
            intake: Arc::new(Intake::default()),
            resuming: HashMap::new(),
        })
    }

    /// Runs until the client shuts down (or every handle is dropped).
    pub async fn run(mut self) {
        let net_loop = self.net_loop.take().expect("run once");
        let network = tokio::spawn(net_loop.run());
        let intake = tokio::spawn(self.intake.clone().run(self.inner.clone()));
        let mut tick = tokio::time::interval(self.inner.config.expiry_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.net_events.recv() => {
                    let Some(event) = event else { break };
                    self.on_net(event);
                }
                Some(event) = self.personal.recv(), if self.intake.has_room() => {
                    self.on_personal(event);
                }
                () = self.intake.room_freed(), if !self.intake.has_room() => {}
                _ = tick.tick() => {
                    let inner = self.inner.clone();
                    self.spawn(async move {
                        if let Err(e) = inner.expire().await {
                            inner.emit(Event::Warning { message: format!("expiry: {e}") });
                        }
                    });
                }
                () = self.service.reap() => {}
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
        self.service.drain().await;
        self.tasks.shutdown().await;
        for (_, task) in self.resuming.drain() {
            task.abort();
            let _ = task.await;
        }
        // What the drained requests delivered or revoked is taken in first.
        while let Ok(event) = self.personal.try_recv() {
            self.on_personal(event);
        }
        self.intake.close();
        let _ = intake.await;
        let _ = network.await;
        // Everything that holds the home goes first, so that a caller woken
        // by the signal can open it again.
        let stopped = self.inner.stopped.clone();
        drop(self);
        stopped.send_replace(true);
    }

    /// The connection to relay `peer`, with this client's session, was
    /// lost (a reset, a relay restart, a network change): opens the
    /// session again, with backoff, so that its notifications keep coming,
    /// and syncs what arrived meanwhile. One task per relay, ended at
    /// shutdown. (Found by the network-fault campaign: before, a client
    /// stayed without relay notifications until it was restarted.)
    fn resume_session(&mut self, peer: PeerId) {
        self.resuming.retain(|_, t| !t.is_finished());
        if self.resuming.contains_key(&peer) || self.inner.relay_address(&peer).is_none() {
            return;
        }
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            let mut pause = RESUME_FIRST_PAUSE;
            loop {
                tokio::time::sleep(pause).await;
                match inner.relay_session(peer).await {
                    Ok(()) => return,
                    Err(e @ ClientError::DeviceReplaced { .. }) => {
                        inner.emit(Event::Warning {
                            message: format!("relay {peer}: {e}"),
                        });
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(%peer, ?pause, "resuming a relay session: {e}");
                        pause = (pause * 2).min(RESUME_LAST_PAUSE);
                    }
                }
            }
        });
        self.resuming.insert(peer, task);
    }

    fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        if self.tasks.len() < MAX_TASKS {
            self.tasks.spawn(task);
        } else {
            tracing::debug!("client busy: background task dropped");
        }
    }

    fn on_net(&mut self, event: net::Event) {
        match event {
            net::Event::ListenAddr { address, .. } => {
                let with_peer = peer::with_peer(address.clone(), self.inner.net.local_peer_id());
                lock(&self.inner.listen_addrs).push(address);
                self.inner.emit(Event::Listening { address: with_peer });
                // A session may have announced before this address was known.
                if self.inner.config.announce {
                    let relays: Vec<_> = lock(&self.inner.logged_in).iter().copied().collect();
                    for relay in relays {
                        let inner = self.inner.clone();
                        self.spawn(async move {
                            if let Err(e) = inner.announce(relay).await {
                                inner.emit(Event::Warning {
                                    message: format!("announcing to {relay}: {e}"),
                                });
                            }
                        });
                    }
                }
            }
            net::Event::ConnectionEstablished { peer, .. } => {
                lock(&self.inner.connected).insert(peer);
            }
            net::Event::ConnectionClosed {
                peer, remaining: 0, ..
            } => {
                let had_session = lock(&self.inner.logged_in).contains(&peer);
                self.inner.disconnected(&peer);
                self.service.on_disconnected(&peer);
                if had_session {
                    self.resume_session(peer);
                }
            }
            // Beyond the service's room, dropping `channel` closes the
            // stream: the peer retries or falls back to a relay.
            net::Event::InboundRequest {
                peer,
                request,
                hold,
                channel,
                ..
            } if self.service.has_room() => {
                self.service.on_request(peer, *request, hold, channel);
            }
            net::Event::Notification {
                peer,
                notify: Notify::NewDeposit { .. },
            } => self.intake.want_relay(peer),
            _ => {}
        }
    }

    fn on_personal(&mut self, event: PersonalEvent) {
        match event {
            PersonalEvent::Deposited { .. } => self.intake.want_local(),
            PersonalEvent::Revoked(record) => self.intake.revoked(record),
        }
    }
}
