//! The state a client's handle and event loop share, and the request
//! plumbing every operation uses.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use libp2p::{Multiaddr, PeerId};
use mayfly_protocol::mailbox::{ErrorCode, LoginProof, Request, Response};
use mayfly_protocol::{SigningPublicKey, UnixMillis};
use rand_chacha::ChaCha20Rng;
use tokio::sync::mpsc;

use super::event_loop::EventLoop;
use super::{ClientConfig, ClientError, EVENT_CHANNEL_CAPACITY, Event, peer};
use crate::clock::Clock;
use crate::home::Home;
use crate::net;
use crate::rng::node_rng;
use crate::store::{RelayStore, StoreLimits};

/// The first pause before a request refused `RateLimited` is tried again.
const RATE_LIMITED_FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);
/// The longest pause between tries of a request refused `RateLimited`.
const RATE_LIMITED_LAST_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);

/// Page cache of the local mailbox store: a client holds few clips.
const LOCAL_STORE_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// Shared by the [`super::Client`] handle and the [`EventLoop`].
pub(super) struct Inner {
    pub home: Mutex<Home>,
    pub net: net::Client,
    /// Clips delivered straight to this device, kept like a relay keeps them.
    pub local: Arc<RelayStore>,
    pub rng: Mutex<ChaCha20Rng>,
    pub clock: Arc<Clock>,
    pub config: ClientConfig,
    pub identity: SigningPublicKey,
    /// Peers with an open connection.
    pub connected: Mutex<HashSet<PeerId>>,
    /// Relays this device is logged in to on its current connection.
    pub logged_in: Mutex<HashSet<PeerId>>,
    /// Where this device accepts direct deliveries.
    pub listen_addrs: Mutex<Vec<Multiaddr>>,
    pub events: mpsc::Sender<Event>,
    /// Held while a mailbox is synced, so entries are taken in once.
    pub sync_lock: tokio::sync::Mutex<()>,
    /// Set once the event loop has finished.
    pub stopped: Arc<tokio::sync::watch::Sender<bool>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    pub fn build(
        home: Home,
        config: ClientConfig,
    ) -> Result<(Arc<Self>, mpsc::Receiver<Event>, EventLoop), ClientError> {
        let keypair = peer::keypair(home.device());
        let (net, net_events, net_loop) = net::new(keypair, &config.limits)
            .map_err(|e| ClientError::io("starting the network", std::io::Error::other(e)))?;
        let mut rng = node_rng(config.seed).map_err(|e| ClientError::io("seeding", e))?;
        let store_rng = {
            let mut seed = [0u8; 32];
            rand_core::Rng::fill_bytes(&mut rng, &mut seed);
            <ChaCha20Rng as rand_core::SeedableRng>::from_seed(seed)
        };
        let limits = StoreLimits {
            cache_bytes: LOCAL_STORE_CACHE_BYTES,
            ..StoreLimits::default()
        };
        // Lazy chunk commits and chunk files: RELAY.md §8.
        let local = Arc::new(
            RelayStore::open(&home.mailbox_dir(), limits, store_rng)?
                .with_lazy_chunk_commits()
                .with_chunk_files(),
        );
        // The personal service accepts deposits for this identity only once
        // its device is recorded, as a relay records it at login.
        local.record_certificate(home.device().certificate())?;
        let identity = home.identity().public();
        let (events_tx, events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let inner = Arc::new(Self {
            home: Mutex::new(home),
            net,
            local,
            rng: Mutex::new(rng),
            clock: Arc::new(Clock::with_offset(config.clock_offset_ms)),
            config,
            identity,
            connected: Mutex::new(HashSet::new()),
            logged_in: Mutex::new(HashSet::new()),
            listen_addrs: Mutex::new(Vec::new()),
            events: events_tx,
            sync_lock: tokio::sync::Mutex::new(()),
            stopped: Arc::new(tokio::sync::watch::Sender::new(false)),
        });
        let event_loop = EventLoop::new(inner.clone(), net_events, net_loop)?;
        Ok((inner, events, event_loop))
    }

    pub fn now(&self) -> UnixMillis {
        self.clock.now()
    }

    pub fn home(&self) -> MutexGuard<'_, Home> {
        lock(&self.home)
    }

    /// Tells the application, dropping the event if it is not keeping up.
    pub fn emit(&self, event: Event) {
        if self.events.try_send(event).is_err() {
            tracing::debug!("client event dropped: the application is not reading events");
        }
    }

    /// Connects to `peer` at `address` unless a connection is open.
    pub async fn connect(&self, peer: PeerId, address: &Multiaddr) -> Result<(), ClientError> {
        if lock(&self.connected).contains(&peer) {
            return Ok(());
        }
        let dial = self.net.dial(peer::with_peer(address.clone(), peer));
        match tokio::time::timeout(self.config.dial_timeout, dial).await {
            Ok(Ok(_)) => {
                lock(&self.connected).insert(peer);
                Ok(())
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(net::NetError::Timeout { peer }.into()),
        }
    }

    /// Sends `request` to `peer` and returns its answer; an error answer is
    /// [`ClientError::Refused`].
    ///
    /// A refusal for `RateLimited` is tried again after a pause, doubling
    /// from 100 ms to 2 s, for up to [`ClientConfig::rate_limited_patience`]:
    /// every mailbox request may be repeated (a refused one had no effect),
    /// so the peer's limits pace the client instead of failing a transfer.
    ///
    /// [`ClientConfig::rate_limited_patience`]: super::ClientConfig::rate_limited_patience
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, ClientError> {
        self.request_with(peer, || Ok(request.clone())).await
    }

    /// Like [`Inner::request`], with the request made by `make` for each
    /// try, so that a large one (a chunk) is not copied to be kept for a
    /// try that may never come: it is made again instead.
    pub async fn request_with(
        &self,
        peer: PeerId,
        mut make: impl FnMut() -> Result<Request, ClientError>,
    ) -> Result<Response, ClientError> {
        let started = tokio::time::Instant::now();
        let mut pause = RATE_LIMITED_FIRST_PAUSE;
        loop {
            let response = self
                .net
                .request(peer, make()?, self.config.request_timeout)
                .await?;
            match response {
                Response::Error {
                    code: ErrorCode::RateLimited,
                    ..
                } if started.elapsed() + pause <= self.config.rate_limited_patience => {
                    tracing::debug!(%peer, ?pause, "rate limited; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RATE_LIMITED_LAST_PAUSE);
                }
                Response::Error { code, detail } => {
                    return Err(ClientError::Refused {
                        peer: peer.to_string(),
                        code,
                        detail,
                    });
                }
                r => return Ok(r),
            }
        }
    }

    /// Logs in to relay `peer` as this device, unless already logged in on
    /// the current connection.
    pub async fn login(&self, peer: PeerId) -> Result<(), ClientError> {
        if lock(&self.logged_in).contains(&peer) {
            return Ok(());
        }
        let Response::Challenge { nonce } = self.request(peer, Request::Challenge).await? else {
            return Err(unexpected(peer, "challenge"));
        };
        let proof = {
            let home = self.home();
            LoginProof::sign(
                home.device(),
                &peer.to_bytes(),
                &self.net.local_peer_id().to_bytes(),
                &nonce,
            )?
        };
        match self.request(peer, Request::Login(proof)).await {
            Ok(Response::Ok) => {
                lock(&self.logged_in).insert(peer);
                Ok(())
            }
            Ok(_) => Err(unexpected(peer, "login")),
            Err(
                e @ ClientError::Refused {
                    code: mayfly_protocol::mailbox::ErrorCode::Forbidden,
                    ..
                },
            ) => match self.newer_device(peer).await {
                Some(newer) => {
                    let erased = self.home().supersede(&newer)?;
                    tracing::warn!(
                        "device #{} replaced this one: erased {} received and {} sent message(s), {} secret(s)",
                        erased.by_serial,
                        erased.received,
                        erased.sent,
                        erased.secrets
                    );
                    self.emit(Event::DeviceReplaced {
                        by_serial: erased.by_serial,
                    });
                    Err(ClientError::DeviceReplaced {
                        by_serial: erased.by_serial,
                    })
                }
                // A refusal without proof erases nothing: it is only a
                // relay that does not serve this device.
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// A valid certificate of this identity with a higher serial than this
    /// device's, from relay `peer`'s prekey bundle for the identity
    /// (CLIENT.md §3.3), or None.
    async fn newer_device(&self, peer: PeerId) -> Option<mayfly_protocol::DeviceCertificate> {
        let (identity_key, own) = {
            let home = self.home();
            (
                home.identity().public(),
                home.device().certificate().clone(),
            )
        };
        match self
            .request(peer, Request::FetchBundle { identity_key })
            .await
        {
            Ok(Response::Bundle(b)) => {
                let cert = b.certificate;
                (cert.check_identity(&identity_key).is_ok() && cert.supersedes(&own))
                    .then_some(cert)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::debug!("no bundle of this identity from {peer}: {e}");
                None
            }
        }
    }

    /// The connection to `peer` closed.
    pub fn disconnected(&self, peer: &PeerId) {
        lock(&self.connected).remove(peer);
        lock(&self.logged_in).remove(peer);
    }

    /// This home's relays, parsed.
    pub fn own_relays(&self) -> Result<Vec<(String, PeerId, Multiaddr)>, ClientError> {
        let relays = self.home().profile().relays.clone();
        relays
            .into_iter()
            .map(|r| peer::parse_relay(&r).map(|(p, a)| (r, p, a)))
            .collect()
    }

    /// A relay's address string for `peer`, if it is one of ours.
    pub fn relay_address(&self, relay: &PeerId) -> Option<String> {
        self.own_relays()
            .ok()?
            .into_iter()
            .find(|(_, p, _)| p == relay)
            .map(|(s, _, _)| s)
    }
}

/// The error for an answer of the wrong type.
pub(super) fn unexpected(peer: PeerId, request: &'static str) -> ClientError {
    ClientError::UnexpectedResponse {
        peer: peer.to_string(),
        request,
    }
}

/// Identity keys as short hex, for names of unknown senders and messages.
pub(super) fn short_hex(bytes: &[u8]) -> String {
    bytes[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Contacts' relays, parsed, skipping any that do not parse.
pub(super) fn card_relays(card: &mayfly_protocol::ContactCard) -> Vec<(String, PeerId, Multiaddr)> {
    card.relays()
        .iter()
        .filter_map(|r| peer::parse_relay(r).ok().map(|(p, a)| (r.clone(), p, a)))
        .collect()
}
