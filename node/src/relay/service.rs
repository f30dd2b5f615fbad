//! The mailbox service: answers `/mayfly/relay/1` requests from the store
//! (RELAY.md §3–§5), keeps login state and announced addresses per peer
//! ([`super::locate`]), notifies logged-in owners and runs the expiry
//! collector. In personal mode ([`Service::personal`], `relay/personal.rs`)
//! it answers a client's direct requests (`/mayfly/direct/1`, RELAY.md §8)
//! instead. One device per identity is active: every
//! logged-in request checks that no newer device certificate of the identity
//! has been recorded since the login; if one has, it is refused (Forbidden)
//! and the session is dropped.
//!
//! The relay's main loop hands each request to [`Service::on_request`],
//! which spawns a task for it; at most [`MAX_IN_FLIGHT`] run at once (the
//! main loop stops taking events beyond that, which back-pressures the
//! swarm). Each task runs its store call on the blocking pool, updates the
//! login state if it is a login, sends notifications and then answers, so a
//! client that has seen `Ok` for its login is logged in for its next request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use libp2p::PeerId;
use mayfly_protocol::limits::CIPHERTEXT_CHUNK_SIZE;
use mayfly_protocol::mailbox::replay::REPLAY_PIECE_LEN;
use mayfly_protocol::mailbox::{ErrorCode, Notify, Request, Response, RevokeOutcome};
use mayfly_protocol::{Applied, DeviceCertificate, MessageId, SigningPublicKey};
use rand_chacha::ChaCha20Rng;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::personal::{self, Mode, PersonalEvent};
use super::rate::RateLimiter;
use super::uploads::Uploads;
use crate::clock::Clock;
use crate::config::{Limits, RateLimits, UploadLimits};
use crate::live::{ForwardError, Forwards};
use crate::mailbox::{ByteBudget, Held, Hold};
use crate::metrics::{RelayMetrics, RequestType};
use crate::net::{Client, Reply};
use crate::store::{RelayStore, StoreError};

/// What a [`Service`] allows its peers.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceLimits {
    /// Per-peer request rates.
    pub rate: RateLimits,
    /// Upload admission (RELAY.md §5.5).
    pub uploads: UploadLimits,
    /// Bytes of chunk responses produced but not yet written to their
    /// streams, over all peers together
    /// ([`Limits::max_buffered_response_bytes`]).
    pub max_buffered_response_bytes: usize,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        Self {
            rate: RateLimits::default(),
            uploads: UploadLimits::default(),
            max_buffered_response_bytes: Limits::default().max_buffered_response_bytes,
        }
    }
}

/// Requests handled at once.
pub const MAX_IN_FLIGHT: usize = 64;

/// Batches one collector run may delete before it yields to the next tick.
const MAX_COLLECT_BATCHES: usize = 16;

/// What the relay knows about a connected peer.
#[derive(Debug)]
pub(super) struct Session {
    /// Distinguishes this session from an earlier one of the same peer, so
    /// a login that completes after its peer disconnected is not applied to
    /// the peer's next connection.
    pub(super) generation: u64,
    /// The last challenge issued, good once.
    nonce: Option<[u8; 32]>,
    /// The certificate the peer logged in with.
    pub(super) login: Option<DeviceCertificate>,
    /// The direct-dial addresses the logged-in peer announced (binary
    /// multiaddrs), cleared by every login. They live and die with the
    /// session.
    pub(super) addrs: Vec<Vec<u8>>,
}

#[derive(Debug, Default)]
pub(super) struct Sessions {
    pub(super) peers: HashMap<PeerId, Session>,
    next_generation: u64,
}

/// Shared between the service and its request tasks.
pub(super) struct Ctx {
    store: Arc<RelayStore>,
    client: Client,
    relay_peer: PeerId,
    pub(super) sessions: Mutex<Sessions>,
    rng: Mutex<ChaCha20Rng>,
    pub(super) metrics: Arc<RelayMetrics>,
    /// A relay, or a client's personal service.
    pub(super) mode: Mode,
    /// Where expiry and prekey ages are read from.
    clock: Arc<Clock>,
    /// Upload slots (RELAY.md §5.5).
    uploads: Uploads,
    /// Bytes of chunk responses not yet written (RELAY.md §5.5).
    responses: ByteBudget,
    /// Forwarders of live broadcasts (LIVE.md §8.2), on a relay that
    /// carries them.
    forwards: Option<Arc<Forwards>>,
}

/// The mailbox service of one relay.
pub struct Service {
    ctx: Arc<Ctx>,
    rate: RateLimiter,
    tasks: JoinSet<()>,
    collector: Option<tokio::task::JoinHandle<()>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn store_error(e: &StoreError) -> Response {
    match e.code() {
        ErrorCode::Internal => {
            tracing::error!("store error: {e:#}");
            Response::error(ErrorCode::Internal, "internal error")
        }
        code => Response::error(code, &e.to_string()),
    }
}

impl Service {
    /// A service over `store`, answering through `client`, as `relay_peer`,
    /// reading the time from `clock`, counting what it does in `metrics`.
    pub fn new(
        store: Arc<RelayStore>,
        client: Client,
        relay_peer: PeerId,
        limits: ServiceLimits,
        clock: Arc<Clock>,
        rng: ChaCha20Rng,
        metrics: Arc<RelayMetrics>,
    ) -> Self {
        let parts = (store, client, relay_peer, clock);
        Self::with_mode(parts, limits, rng, metrics, Mode::Relay)
    }

    /// Carries live broadcasts in their overlays when their broadcasters
    /// ask (LIVE.md §8.2), with `forwards`. Before the service runs.
    pub fn with_forwards(mut self, forwards: Arc<Forwards>) -> Self {
        if let Some(ctx) = Arc::get_mut(&mut self.ctx) {
            ctx.forwards = Some(forwards);
        }
        self
    }

    /// A client's personal service over its own `store`, answering direct
    /// requests (`/mayfly/direct/1`, RELAY.md §8) through `client`, the
    /// swarm of `local_peer`, for the identity `owner`.
    ///
    /// It accepts Deposit for `owner`'s mailbox only (another mailbox is
    /// Forbidden), PutChunk, GetChunk, GetManifest and Revoke, and answers
    /// every other request Unsupported. `store` must serve `owner` (its
    /// device certificate recorded with [`RelayStore::record_certificate`]),
    /// or deposits are NotFound. Each deposit that becomes complete is
    /// reported on `deliveries` as [`PersonalEvent::Deposited`] with
    /// `try_send` (a full channel loses it, logged: the events ahead of it
    /// make the application list the mailbox after it is in `store`); each
    /// revocation, applied now or before, as [`PersonalEvent::Revoked`],
    /// waiting for room, so that none is lost.
    #[allow(clippy::too_many_arguments)]
    pub fn personal(
        store: Arc<RelayStore>,
        client: Client,
        local_peer: PeerId,
        owner: SigningPublicKey,
        limits: ServiceLimits,
        clock: Arc<Clock>,
        rng: ChaCha20Rng,
        metrics: Arc<RelayMetrics>,
        deliveries: mpsc::Sender<PersonalEvent>,
    ) -> Self {
        let mode = Mode::Personal { owner, deliveries };
        let parts = (store, client, local_peer, clock);
        Self::with_mode(parts, limits, rng, metrics, mode)
    }

    fn with_mode(
        (store, client, relay_peer, clock): (Arc<RelayStore>, Client, PeerId, Arc<Clock>),
        limits: ServiceLimits,
        rng: ChaCha20Rng,
        metrics: Arc<RelayMetrics>,
        mode: Mode,
    ) -> Self {
        Self {
            ctx: Arc::new(Ctx {
                store,
                client,
                relay_peer,
                sessions: Mutex::new(Sessions::default()),
                rng: Mutex::new(rng),
                metrics,
                mode,
                clock,
                uploads: Uploads::new(limits.uploads),
                responses: ByteBudget::new(limits.max_buffered_response_bytes),
                forwards: None,
            }),
            rate: RateLimiter::new(limits.rate),
            tasks: JoinSet::new(),
            collector: None,
        }
    }

    /// True if another request may be taken now. Deposits waiting for an
    /// upload slot do not count: they do no work, and the uploads they wait
    /// for need requests to be taken.
    pub fn has_room(&self) -> bool {
        self.tasks.len() < MAX_IN_FLIGHT + self.ctx.uploads.waiting()
    }

    /// Waits for a request task to finish (pending forever if none runs), or
    /// for a deposit to start waiting for an upload slot: either may make
    /// room for another request.
    pub async fn reap(&mut self) {
        let ctx = self.ctx.clone();
        tokio::select! {
            finished = self.tasks.join_next() => match finished {
                Some(Err(e)) if e.is_panic() => tracing::error!("a request task panicked: {e}"),
                Some(_) => {}
                None => std::future::pending().await,
            },
            () = ctx.uploads.more_waiting() => {}
        }
    }

    /// Waits for every running request task, e.g. at shutdown. Deposits
    /// waiting for an upload slot are refused at once (RateLimited) instead
    /// of waiting it out.
    pub async fn drain(&mut self) {
        self.ctx.uploads.close();
        while self.tasks.join_next().await.is_some() {}
    }

    /// The peer's last connection closed: its login, nonce and announced
    /// addresses are gone.
    pub fn on_disconnected(&self, peer: &PeerId) {
        lock(&self.ctx.sessions).peers.remove(peer);
        self.ctx.uploads.forget_peer(peer);
        self.ctx.count_uploads();
    }

    /// Takes a request from `peer` and answers it on `channel`.
    pub fn on_request(&mut self, peer: PeerId, request: Request, hold: Hold, channel: Reply) {
        let ctx = self.ctx.clone();
        ctx.metrics.request(RequestType::of(&request));
        let on_chunk_stream = channel.is_chunk_stream();
        if let Err(limited) = self
            .rate
            .check(peer, &request, on_chunk_stream, Instant::now())
        {
            tracing::debug!(%peer, ?limited, "rate limited");
            ctx.metrics.rate_limited(limited);
            self.tasks.spawn(async move {
                let r = Response::error(ErrorCode::RateLimited, limited.detail());
                ctx.respond(channel, Held::outbound(r)).await;
            });
            return;
        }
        let generation = {
            let mut s = lock(&ctx.sessions);
            let next = s.next_generation;
            let session = s.peers.entry(peer).or_insert(Session {
                generation: next,
                nonce: None,
                login: None,
                addrs: Vec::new(),
            });
            let generation = session.generation;
            if generation == next {
                s.next_generation += 1;
            }
            generation
        };
        if matches!(request, Request::PutChunk { .. }) {
            // The most frequent request, answered from the blocking pool
            // directly: one task hop per chunk instead of two. What is
            // async after it (a relay's notification, which may take one
            // more blocking thread) runs here with `block_on`; requests in
            // flight are bounded (MAX_IN_FLIGHT), far below the pool's size.
            let handle = tokio::runtime::Handle::current();
            self.tasks.spawn_blocking(move || {
                let response = ctx.put_chunk_now(peer, request, &handle);
                drop(hold);
                handle.block_on(ctx.respond(channel, Held::outbound(response)));
            });
            return;
        }
        self.tasks.spawn(async move {
            let response = ctx.answer(peer, generation, request, hold).await;
            ctx.respond(channel, response).await;
        });
    }

    /// Starts a collector run unless one is still going.
    pub fn collect(&mut self) {
        if self.collector.as_ref().is_some_and(|c| !c.is_finished()) {
            return;
        }
        let store = self.ctx.store.clone();
        let metrics = self.ctx.metrics.clone();
        let clock = self.ctx.clock.clone();
        self.collector = Some(tokio::task::spawn_blocking(move || {
            for _ in 0..MAX_COLLECT_BATCHES {
                match store.collect(clock.now()) {
                    Ok(stats) => {
                        metrics.collected(&stats);
                        if stats.messages + stats.tombstones + stats.replay_segments > 0 {
                            tracing::info!(
                                messages = stats.messages,
                                envelopes = stats.envelopes,
                                tombstones = stats.tombstones,
                                replay_segments = stats.replay_segments,
                                "collected expired data"
                            );
                        }
                        if !stats.more {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::error!("collector failed: {e:#}");
                        break;
                    }
                }
            }
        }));
    }
}

impl Ctx {
    /// Sends `response` on `channel`, counting its outcome. Its hold is
    /// given back once it has been written to the stream.
    async fn respond(&self, channel: Reply, response: Held<Response>) {
        self.metrics.response(&response.message);
        let _ = self.client.respond(channel, response).await;
    }

    /// The certificate `peer` is logged in with in this session, if it is
    /// still the identity's newest device (RELAY.md §4: one active device
    /// per identity). A session whose device was superseded since it logged
    /// in is dropped and answered Forbidden.
    pub(super) async fn current_login(
        &self,
        peer: &PeerId,
        generation: u64,
    ) -> Result<DeviceCertificate, Response> {
        let cert = self
            .login(peer, generation)
            .ok_or_else(|| Response::error(ErrorCode::Unauthenticated, "log in first"))?;
        let identity = cert.identity_key();
        let newest = self.blocking(move |s| s.device_serial(&identity)).await?;
        if newest.is_some_and(|serial| serial > cert.serial()) {
            let mut s = lock(&self.sessions);
            if s.peers
                .get(peer)
                .is_some_and(|session| session.generation == generation)
            {
                s.peers.remove(peer);
                self.metrics.session_superseded();
                tracing::debug!(%peer, "a newer device logged in: session dropped");
            }
            return Err(Response::error(
                ErrorCode::Forbidden,
                "a newer device of this identity has logged in",
            ));
        }
        Ok(cert)
    }

    /// Runs `f` on the store in the blocking pool.
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&RelayStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, Response> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(store_error(&e)),
            Err(e) => {
                tracing::error!("store task failed: {e}");
                Err(Response::error(ErrorCode::Internal, "internal error"))
            }
        }
    }

    /// The certificate `peer` is logged in with, in this session.
    fn login(&self, peer: &PeerId, generation: u64) -> Option<DeviceCertificate> {
        let s = lock(&self.sessions);
        s.peers
            .get(peer)
            .filter(|s| s.generation == generation)
            .and_then(|s| s.login.clone())
    }

    /// The answer to `request`. `hold` keeps the request's bytes counted in
    /// the request budget; it is given back once they are freed.
    async fn answer(
        &self,
        peer: PeerId,
        generation: u64,
        request: Request,
        hold: Hold,
    ) -> Held<Response> {
        let mut out = Hold::none();
        match self
            .dispatch(peer, generation, request, hold, &mut out)
            .await
        {
            Ok(message) | Err(message) => Held { message, hold: out },
        }
    }

    /// Upload slots held and deposits waiting, into the metrics.
    fn count_uploads(&self) {
        self.metrics
            .uploads(self.uploads.in_progress(), self.uploads.waiting());
    }

    async fn dispatch(
        &self,
        peer: PeerId,
        generation: u64,
        request: Request,
        hold: Hold,
        out: &mut Hold,
    ) -> Result<Response, Response> {
        if let Mode::Personal { owner, .. } = &self.mode {
            personal::admit(owner, &request)?;
        }
        match request {
            Request::Challenge => {
                let mut nonce = [0u8; 32];
                rand_core::Rng::fill_bytes(&mut *lock(&self.rng), &mut nonce);
                let mut s = lock(&self.sessions);
                match s.peers.get_mut(&peer) {
                    Some(session) if session.generation == generation => {
                        session.nonce = Some(nonce);
                        Ok(Response::Challenge { nonce })
                    }
                    _ => Err(Response::error(ErrorCode::Unauthenticated, "not connected")),
                }
            }
            Request::Login(proof) => {
                let nonce = {
                    let mut s = lock(&self.sessions);
                    s.peers
                        .get_mut(&peer)
                        .filter(|s| s.generation == generation)
                        .and_then(|s| s.nonce.take())
                };
                let Some(nonce) = nonce else {
                    return Err(Response::error(
                        ErrorCode::Unauthenticated,
                        "no challenge to answer",
                    ));
                };
                proof
                    .verify(&self.relay_peer.to_bytes(), &peer.to_bytes(), &nonce)
                    .map_err(|_| {
                        Response::error(ErrorCode::Forbidden, "the login proof does not verify")
                    })?;
                let cert = proof.certificate;
                let c = cert.clone();
                self.blocking(move |s| s.record_certificate(&c)).await?;
                let mut s = lock(&self.sessions);
                match s.peers.get_mut(&peer) {
                    Some(session) if session.generation == generation => {
                        tracing::debug!(%peer, "logged in");
                        session.login = Some(cert);
                        session.addrs.clear();
                        Ok(Response::Ok)
                    }
                    _ => Err(Response::error(ErrorCode::Unauthenticated, "not connected")),
                }
            }
            Request::PublishPrekeys {
                signed_prekey,
                one_time,
            } => {
                let cert = self.current_login(&peer, generation).await?;
                let now = self.clock.now();
                self.blocking(move |s| s.publish_prekeys(&cert, signed_prekey, one_time, now))
                    .await?;
                Ok(Response::Ok)
            }
            Request::FetchBundle { identity_key } => {
                let now = self.clock.now();
                match self
                    .blocking(move |s| s.take_bundle(&identity_key, now))
                    .await?
                {
                    Some(b) => Ok(Response::Bundle(Box::new(b))),
                    None => Err(Response::error(ErrorCode::NotFound, "no prekeys")),
                }
            }
            Request::Deposit {
                mailbox,
                envelope,
                manifest,
            } => {
                let now = self.clock.now();
                let depositor = peer.to_bytes();
                let message_id = manifest.message_id();
                let d = self
                    .blocking(move |s| s.deposit(&mailbox, &envelope, &manifest, &depositor, now))
                    .await?;
                if let Some(seq) = d.listed {
                    self.metrics.deposits_completed(1);
                    self.completed(&mailbox, seq, message_id).await;
                }
                if !d.missing.is_empty() {
                    // Waiting for a slot holds no request bytes.
                    drop(hold);
                    self.count_uploads();
                    let admitted = self.uploads.admit(peer, message_id).await;
                    self.count_uploads();
                    admitted
                        .map_err(|e| Response::error(ErrorCode::RateLimited, &e.to_string()))?;
                }
                Ok(Response::DepositAccepted { missing: d.missing })
            }
            // `on_request` answers every PutChunk from the blocking pool
            // (`put_chunk_now`); none comes here.
            Request::PutChunk { .. } => Err(Response::error(ErrorCode::Internal, "internal error")),
            Request::GetChunk {
                hash,
                offset,
                length,
            } => {
                // The answer's bytes count from before they are read until
                // they are written: many fetches at once wait here instead
                // of filling memory with responses that cannot be sent yet.
                let most = match length {
                    0 => CIPHERTEXT_CHUNK_SIZE,
                    l => (l as usize).min(CIPHERTEXT_CHUNK_SIZE),
                };
                drop(hold);
                *out = self
                    .responses
                    .take(most)
                    .await
                    .map_err(|_| Response::error(ErrorCode::Internal, "internal error"))?;
                let bytes = self
                    .blocking(move |s| s.get_chunk(&hash, offset, length))
                    .await?;
                self.metrics.served(bytes.len());
                Ok(Response::Chunk { bytes })
            }
            Request::List { after, limit } => {
                let cert = self.current_login(&peer, generation).await?;
                let mailbox = cert.identity_key();
                let now = self.clock.now();
                let (entries, more) = self
                    .blocking(move |s| s.list(&mailbox, after, limit, now))
                    .await?;
                Ok(Response::Entries { entries, more })
            }
            Request::GetManifest { message_id } => {
                let now = self.clock.now();
                let m = self
                    .blocking(move |s| s.get_manifest(&message_id, now))
                    .await?;
                Ok(Response::Manifest(Box::new(m)))
            }
            Request::Ack { seqs } => {
                let cert = self.current_login(&peer, generation).await?;
                let mailbox = cert.identity_key();
                self.blocking(move |s| s.ack(&mailbox, &seqs)).await?;
                Ok(Response::Ok)
            }
            Request::Revoke(record) => {
                let now = self.clock.now();
                let r = record.clone();
                let applied = self.blocking(move |s| s.revoke(&r, now)).await?;
                let outcome = match applied {
                    Applied::Revoked => {
                        self.metrics.revocation_applied();
                        self.uploads.finish(&record.message_id());
                        self.count_uploads();
                        RevokeOutcome::Revoked
                    }
                    Applied::AlreadyRevoked => RevokeOutcome::AlreadyRevoked,
                };
                // A personal service tells its application either way, and
                // waits for room to do so: a revocation the home never
                // applied (its event lost, or a crash after the store's)
                // is applied when the sender sends it again.
                if let Mode::Personal { deliveries, .. } = &self.mode {
                    personal::deliver_wait(deliveries, PersonalEvent::Revoked(record)).await;
                }
                Ok(Response::Revoked(outcome))
            }
            Request::Announce { addrs } => self.announce(peer, generation, addrs).await,
            Request::Locate { identity_key } => self.locate(identity_key).await,
            Request::ReplayPut {
                broadcast_id,
                seq,
                piece,
            } => {
                let owner = self.current_login(&peer, generation).await?.identity_key();
                let now = self.clock.now();
                self.blocking(move |s| s.replay()?.put(&owner, &broadcast_id, seq, &piece, now))
                    .await?;
                Ok(Response::Ok)
            }
            Request::ReplayGet {
                broadcaster,
                broadcast_id,
                seq,
                index,
            } => {
                // As for a chunk: the answer's bytes count until written.
                drop(hold);
                *out = self
                    .responses
                    .take(REPLAY_PIECE_LEN)
                    .await
                    .map_err(|_| Response::error(ErrorCode::Internal, "internal error"))?;
                let now = self.clock.now();
                let piece = self
                    .blocking(move |s| {
                        s.replay()?
                            .get(&broadcaster, &broadcast_id, seq, index, now)
                    })
                    .await?;
                self.metrics.served(piece.bytes.len());
                Ok(Response::ReplayPiece(piece))
            }
            Request::ReplayList {
                broadcaster,
                broadcast_id,
                from,
                limit,
            } => {
                let now = self.clock.now();
                let (entries, more) = self
                    .blocking(move |s| {
                        s.replay()?
                            .list(&broadcaster, &broadcast_id, from, limit, now)
                    })
                    .await?;
                Ok(Response::ReplaySegments { entries, more })
            }
            Request::ReplayDelete { broadcast_id } => {
                let owner = self.current_login(&peer, generation).await?.identity_key();
                let now = self.clock.now();
                self.blocking(move |s| s.replay()?.delete(&owner, &broadcast_id, now))
                    .await?;
                Ok(Response::Ok)
            }
            Request::LiveForward { broadcast_id } => {
                let cert = self.current_login(&peer, generation).await?;
                let Some(forwards) = &self.forwards else {
                    return Err(Response::error(
                        ErrorCode::Unsupported,
                        "this relay carries no live broadcast",
                    ));
                };
                let addrs = forwards
                    .forward(cert.identity_key(), cert.serial(), broadcast_id)
                    .await
                    .map_err(|e| {
                        let code = match &e {
                            ForwardError::Full => ErrorCode::RateLimited,
                            ForwardError::TooMany => ErrorCode::QuotaExceeded,
                            ForwardError::NotYours => ErrorCode::Forbidden,
                            _ => {
                                tracing::error!("live forwarder: {e}");
                                return Response::error(ErrorCode::Internal, "internal error");
                            }
                        };
                        Response::error(code, &e.to_string())
                    })?;
                Ok(Response::Forwarding {
                    addrs: addrs.iter().map(|a| a.to_vec()).collect(),
                })
            }
            Request::ReplayWatched { broadcaster, chat } => {
                self.blocking(move |s| s.replay()?.watched(&broadcaster, &chat))
                    .await?;
                Ok(Response::Ok)
            }
            Request::ReplayViewers {
                broadcast_id,
                from,
                limit,
            } => {
                let owner = self.current_login(&peer, generation).await?.identity_key();
                let (watches, more) = self
                    .blocking(move |s| s.replay()?.viewers(&owner, &broadcast_id, from, limit))
                    .await?;
                Ok(Response::ReplayWatches { watches, more })
            }
        }
    }

    /// Answers a PutChunk on a blocking thread (`handle` runs what is
    /// async), with the checks of [`Ctx::dispatch`]: the only place a
    /// PutChunk is answered.
    fn put_chunk_now(
        &self,
        peer: PeerId,
        request: Request,
        handle: &tokio::runtime::Handle,
    ) -> Response {
        if let Mode::Personal { owner, .. } = &self.mode
            && let Err(refused) = personal::admit(owner, &request)
        {
            return refused;
        }
        let Request::PutChunk {
            message_id,
            index,
            bytes,
        } = request
        else {
            return Response::error(ErrorCode::Internal, "internal error");
        };
        let len = bytes.len();
        self.uploads.touch(peer, message_id, Instant::now());
        match self.store.put_chunk(&message_id, index, &bytes) {
            Ok(listed) => {
                drop(bytes);
                handle.block_on(self.chunk_put(len, message_id, listed));
                Response::Ok
            }
            Err(e) => store_error(&e),
        }
    }

    /// A chunk of `len` bytes of `message_id` was stored, completing the
    /// entries `listed`.
    async fn chunk_put(
        &self,
        len: usize,
        message_id: MessageId,
        listed: Vec<(SigningPublicKey, u64)>,
    ) {
        self.metrics.chunk_stored(len);
        self.metrics.deposits_completed(listed.len());
        if !listed.is_empty() {
            self.uploads.finish(&message_id);
            self.count_uploads();
        }
        for (mailbox, seq) in listed {
            self.completed(&mailbox, seq, message_id).await;
        }
    }

    /// Entry `seq` of `mailbox`, holding `message_id`, became complete: a
    /// relay notifies the logged-in owner, a personal service tells its
    /// application.
    async fn completed(&self, mailbox: &SigningPublicKey, seq: u64, message_id: MessageId) {
        match &self.mode {
            Mode::Relay => self.notify(mailbox, seq).await,
            Mode::Personal { deliveries, .. } => {
                personal::deliver(deliveries, PersonalEvent::Deposited { seq, message_id });
            }
        }
    }

    /// Tells every peer logged in to `mailbox` about entry `seq`.
    async fn notify(&self, mailbox: &SigningPublicKey, seq: u64) {
        let peers: Vec<(PeerId, u64)> = lock(&self.sessions)
            .peers
            .iter()
            .filter_map(|(p, s)| {
                let cert = s.login.as_ref()?;
                (cert.identity_key() == *mailbox).then(|| (*p, cert.serial()))
            })
            .collect();
        if peers.is_empty() {
            return;
        }
        // A superseded device is not told (its next request is refused).
        let identity = *mailbox;
        let newest = self
            .blocking(move |s| s.device_serial(&identity))
            .await
            .ok()
            .flatten()
            .unwrap_or(0);
        for (peer, _) in peers.into_iter().filter(|&(_, serial)| serial >= newest) {
            tracing::debug!(%peer, seq, "notifying");
            if self
                .client
                .notify(peer, Notify::NewDeposit { seq })
                .await
                .is_ok()
            {
                self.metrics.notification_sent();
            }
        }
    }
}
