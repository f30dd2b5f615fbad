//! Prometheus metrics of a relay, for its operator, and the small HTTP
//! server that serves them at `/metrics` (OpenMetrics text).
//!
//! Every label takes values from a fixed set (request types, response
//! outcomes, kinds of collected data): nothing a peer sends, and no peer id,
//! ever becomes a label, so the series stay bounded. The store gauges are
//! read from [`RelayStore::stats`] at each scrape.
//!
//! | Metric | Type | Labels |
//! | --- | --- | --- |
//! | `mayfly_relay_requests_total` | counter | `type`: `challenge`, `login`, `publish_prekeys`, `fetch_bundle`, `deposit`, `put_chunk`, `get_chunk`, `list`, `get_manifest`, `ack`, `revoke`, `announce`, `locate` |
//! | `mayfly_relay_responses_total` | counter | `outcome`: `ok` or an error code name (`malformed`, `unauthenticated`, `forbidden`, `not_found`, `too_large`, `quota_exceeded`, `rate_limited`, `revoked`, `expired`, `conflict`, `internal`, `unsupported`, `other`) |
//! | `mayfly_relay_deposits_completed_total` | counter | envelopes that became complete (listed) |
//! | `mayfly_relay_chunks_stored_total` | counter | chunks answered `Ok` (including ones already held) |
//! | `mayfly_relay_received_bytes_total` | counter | chunk bytes accepted by PutChunk |
//! | `mayfly_relay_served_bytes_total` | counter | chunk bytes answered to GetChunk |
//! | `mayfly_relay_notifications_sent_total` | counter | NewDeposit notifications sent to logged-in owners |
//! | `mayfly_relay_revocations_applied_total` | counter | revocations new to the relay |
//! | `mayfly_relay_rate_limited_total` | counter | `bucket`: `requests`, `deposits`, `bundles`, `locates`, `revocations`: requests refused by the rate limiter, by the bucket that was empty |
//! | `mayfly_relay_superseded_sessions_total` | counter | logins dropped because a newer device logged in |
//! | `mayfly_relay_collected_total` | counter | `kind`: `messages`, `envelopes`, `tombstones`, `replay_segments`, `replay_tombstones` deleted by the expiry collector; `abandoned`: of those envelopes, pending ones whose upload did not complete in time |
//! | `mayfly_relay_connections` | gauge | open connections |
//! | `mayfly_relay_uploads_in_progress` | gauge | clips holding an upload slot |
//! | `mayfly_relay_uploads_waiting` | gauge | deposits waiting for an upload slot |
//! | `mayfly_relay_store_stored_bytes`, `…_reserved_bytes`, `…_envelopes`, `…_chunks`, `…_messages`, `…_tombstones`, `…_identities` | gauge | the store's counts |
//! | `mayfly_relay_store_replays`, `…_replay_segments`, `…_replay_bytes` | gauge | the live replays held (RELAY.md §5.7) |

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use mayfly_protocol::mailbox::{self, ErrorCode};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::relay::rate::Limited;
use crate::store::{CollectStats, RelayStore};

/// Scrape connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 8;

/// Longest one scrape connection may stay open.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The `Content-Type` of a scrape.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A request's type, as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestType {
    /// Challenge.
    Challenge,
    /// Login.
    Login,
    /// PublishPrekeys.
    PublishPrekeys,
    /// FetchBundle.
    FetchBundle,
    /// Deposit.
    Deposit,
    /// PutChunk.
    PutChunk,
    /// GetChunk.
    GetChunk,
    /// List.
    List,
    /// GetManifest.
    GetManifest,
    /// Ack.
    Ack,
    /// Revoke.
    Revoke,
    /// Announce.
    Announce,
    /// Locate.
    Locate,
    /// ReplayPut.
    ReplayPut,
    /// ReplayGet.
    ReplayGet,
    /// ReplayList.
    ReplayList,
    /// ReplayDelete.
    ReplayDelete,
    /// ReplayWatched.
    ReplayWatched,
    /// LiveForward.
    LiveForward,
    /// ReplayViewers.
    ReplayViewers,
}

impl RequestType {
    /// The type of `request`.
    pub fn of(request: &mailbox::Request) -> Self {
        use mailbox::Request as R;
        match request {
            R::Challenge => Self::Challenge,
            R::Login(_) => Self::Login,
            R::PublishPrekeys { .. } => Self::PublishPrekeys,
            R::FetchBundle { .. } => Self::FetchBundle,
            R::Deposit { .. } => Self::Deposit,
            R::PutChunk { .. } => Self::PutChunk,
            R::GetChunk { .. } => Self::GetChunk,
            R::List { .. } => Self::List,
            R::GetManifest { .. } => Self::GetManifest,
            R::Ack { .. } => Self::Ack,
            R::Revoke(_) => Self::Revoke,
            R::Announce { .. } => Self::Announce,
            R::Locate { .. } => Self::Locate,
            R::ReplayPut { .. } => Self::ReplayPut,
            R::ReplayGet { .. } => Self::ReplayGet,
            R::ReplayList { .. } => Self::ReplayList,
            R::ReplayDelete { .. } => Self::ReplayDelete,
            R::ReplayWatched { .. } => Self::ReplayWatched,
            R::LiveForward { .. } => Self::LiveForward,
            R::ReplayViewers { .. } => Self::ReplayViewers,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Challenge => "challenge",
            Self::Login => "login",
            Self::PublishPrekeys => "publish_prekeys",
            Self::FetchBundle => "fetch_bundle",
            Self::Deposit => "deposit",
            Self::PutChunk => "put_chunk",
            Self::GetChunk => "get_chunk",
            Self::List => "list",
            Self::GetManifest => "get_manifest",
            Self::Ack => "ack",
            Self::Revoke => "revoke",
            Self::Announce => "announce",
            Self::Locate => "locate",
            Self::ReplayPut => "replay_put",
            Self::ReplayGet => "replay_get",
            Self::ReplayList => "replay_list",
            Self::ReplayDelete => "replay_delete",
            Self::ReplayWatched => "replay_watched",
            Self::LiveForward => "live_forward",
            Self::ReplayViewers => "replay_viewers",
        }
    }
}

impl EncodeLabelValue for RequestType {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// How a request was answered, as a label: `ok` (any success response) or
/// the error code's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Outcome(&'static str);

impl Outcome {
    /// The outcome `response` reports.
    pub fn of(response: &mailbox::Response) -> Self {
        let code = match response {
            mailbox::Response::Error { code, .. } => *code,
            _ => return Self("ok"),
        };
        Self(match code {
            ErrorCode::Malformed => "malformed",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Revoked => "revoked",
            ErrorCode::Expired => "expired",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Internal => "internal",
            ErrorCode::Unsupported => "unsupported",
            // One label value for every unknown code keeps the set bounded.
            ErrorCode::Other(_) => "other",
        })
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0)
    }
}

/// What the collector deleted, as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Collected {
    Messages,
    Envelopes,
    Abandoned,
    Tombstones,
    ReplaySegments,
    ReplayTombstones,
}

impl EncodeLabelValue for Collected {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            Self::Messages => "messages",
            Self::Envelopes => "envelopes",
            Self::Abandoned => "abandoned",
            Self::Tombstones => "tombstones",
            Self::ReplaySegments => "replay_segments",
            Self::ReplayTombstones => "replay_tombstones",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TypeLabel {
    r#type: RequestType,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: Collected,
}

impl EncodeLabelValue for Limited {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            Self::Requests => "requests",
            Self::Deposits => "deposits",
            Self::Bundles => "bundles",
            Self::Locates => "locates",
            Self::Revocations => "revocations",
            Self::Chunks => "chunks",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BucketLabel {
    bucket: Limited,
}

/// Gauges read from the store at each scrape.
#[derive(Debug, Default)]
struct StoreGauges {
    stored_bytes: Gauge,
    reserved_bytes: Gauge,
    envelopes: Gauge,
    chunks: Gauge,
    messages: Gauge,
    tombstones: Gauge,
    identities: Gauge,
    replays: Gauge,
    replay_segments: Gauge,
    replay_bytes: Gauge,
}

/// The relay's metrics. Cheap to update from any task.
#[derive(Debug)]
pub struct RelayMetrics {
    registry: Registry,
    requests: Family<TypeLabel, Counter>,
    responses: Family<OutcomeLabel, Counter>,
    deposits_completed: Counter,
    chunks_stored: Counter,
    received_bytes: Counter,
    served_bytes: Counter,
    notifications_sent: Counter,
    revocations_applied: Counter,
    rate_limited: Family<BucketLabel, Counter>,
    superseded_sessions: Counter,
    collected: Family<KindLabel, Counter>,
    connections: Gauge,
    uploads_in_progress: Gauge,
    uploads_waiting: Gauge,
    store: StoreGauges,
}

impl Default for RelayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl RelayMetrics {
    /// Every metric registered, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mayfly_relay");
        let m = Self {
            registry: Registry::default(),
            requests: Family::default(),
            responses: Family::default(),
            deposits_completed: Counter::default(),
            chunks_stored: Counter::default(),
            received_bytes: Counter::default(),
            served_bytes: Counter::default(),
            notifications_sent: Counter::default(),
            revocations_applied: Counter::default(),
            rate_limited: Family::default(),
            superseded_sessions: Counter::default(),
            collected: Family::default(),
            connections: Gauge::default(),
            uploads_in_progress: Gauge::default(),
            uploads_waiting: Gauge::default(),
            store: StoreGauges::default(),
        };
        let r = &mut registry;
        r.register(
            "requests",
            "Mailbox requests received, by type",
            m.requests.clone(),
        );
        r.register(
            "responses",
            "Mailbox responses sent, by outcome",
            m.responses.clone(),
        );
        r.register(
            "deposits_completed",
            "Envelopes that became complete (all chunks durable) and listable",
            m.deposits_completed.clone(),
        );
        r.register(
            "chunks_stored",
            "Chunks answered Ok to PutChunk",
            m.chunks_stored.clone(),
        );
        r.register(
            "received_bytes",
            "Ciphertext chunk bytes accepted by PutChunk",
            m.received_bytes.clone(),
        );
        r.register(
            "served_bytes",
            "Ciphertext chunk bytes answered to GetChunk",
            m.served_bytes.clone(),
        );
        r.register(
            "notifications_sent",
            "NewDeposit notifications sent to logged-in owners",
            m.notifications_sent.clone(),
        );
        r.register(
            "revocations_applied",
            "Revocation records new to this relay",
            m.revocations_applied.clone(),
        );
        r.register(
            "rate_limited",
            "Requests refused by the per-peer rate limiter, by empty bucket",
            m.rate_limited.clone(),
        );
        r.register(
            "superseded_sessions",
            "Logins dropped because a newer device of the identity logged in",
            m.superseded_sessions.clone(),
        );
        r.register(
            "collected",
            "Items deleted by the expiry collector, by kind",
            m.collected.clone(),
        );
        r.register("connections", "Open connections", m.connections.clone());
        r.register(
            "uploads_in_progress",
            "Clips holding an upload slot (RELAY.md §5.5)",
            m.uploads_in_progress.clone(),
        );
        r.register(
            "uploads_waiting",
            "Deposits waiting for an upload slot",
            m.uploads_waiting.clone(),
        );
        let s = r.sub_registry_with_prefix("store");
        let g = &m.store;
        s.register(
            "stored_bytes",
            "Bytes of chunks, manifests and envelopes held (before sealing overhead)",
            g.stored_bytes.clone(),
        );
        s.register(
            "reserved_bytes",
            "Bytes reserved by the messages held (declared ciphertext and manifests)",
            g.reserved_bytes.clone(),
        );
        s.register(
            "envelopes",
            "Envelopes held, pending and complete",
            g.envelopes.clone(),
        );
        s.register("chunks", "Distinct chunks held", g.chunks.clone());
        s.register(
            "messages",
            "Distinct messages (clips) held",
            g.messages.clone(),
        );
        s.register("tombstones", "Revocation tombstones", g.tombstones.clone());
        s.register("identities", "Identities served", g.identities.clone());
        s.register("replays", "Live replays held", g.replays.clone());
        s.register(
            "replay_segments",
            "Live replay segments held, complete or not",
            g.replay_segments.clone(),
        );
        s.register(
            "replay_bytes",
            "Bytes of live replay segments held",
            g.replay_bytes.clone(),
        );
        Self { registry, ..m }
    }

    /// A request of `kind` arrived.
    pub fn request(&self, kind: RequestType) {
        self.requests
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
    }

    /// `response` is being sent.
    pub fn response(&self, response: &mailbox::Response) {
        self.responses
            .get_or_create(&OutcomeLabel {
                outcome: Outcome::of(response),
            })
            .inc();
    }

    /// `n` envelopes became complete.
    pub fn deposits_completed(&self, n: usize) {
        self.deposits_completed.inc_by(n as u64);
    }

    /// A chunk of `len` bytes was stored (or was already held).
    pub fn chunk_stored(&self, len: usize) {
        self.chunks_stored.inc();
        self.received_bytes.inc_by(len as u64);
    }

    /// `len` chunk bytes were served.
    pub fn served(&self, len: usize) {
        self.served_bytes.inc_by(len as u64);
    }

    /// A notification was sent.
    pub fn notification_sent(&self) {
        self.notifications_sent.inc();
    }

    /// A new revocation was applied.
    pub fn revocation_applied(&self) {
        self.revocations_applied.inc();
    }

    /// A request was refused by the rate limiter.
    pub fn rate_limited(&self, bucket: Limited) {
        self.rate_limited
            .get_or_create(&BucketLabel { bucket })
            .inc();
    }

    /// A superseded device's login was dropped.
    pub fn session_superseded(&self) {
        self.superseded_sessions.inc();
    }

    /// The collector deleted what `stats` counts.
    pub fn collected(&self, stats: &CollectStats) {
        for (kind, n) in [
            (Collected::Messages, stats.messages),
            (Collected::Envelopes, stats.envelopes),
            (Collected::Abandoned, stats.abandoned),
            (Collected::Tombstones, stats.tombstones),
            (Collected::ReplaySegments, stats.replay_segments),
            (Collected::ReplayTombstones, stats.replay_tombstones),
        ] {
            self.collected.get_or_create(&KindLabel { kind }).inc_by(n);
        }
    }

    /// A connection opened.
    pub fn connection_opened(&self) {
        self.connections.inc();
    }

    /// A connection closed.
    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    /// Upload slots held and deposits waiting for one, now.
    pub fn uploads(&self, in_progress: usize, waiting: usize) {
        self.uploads_in_progress
            .set(saturating_i64(in_progress as u64));
        self.uploads_waiting.set(saturating_i64(waiting as u64));
    }

    /// Reads the store gauges from `store`; on failure they keep their
    /// last values.
    pub fn refresh(&self, store: &RelayStore) {
        match store.stats() {
            Ok(s) => {
                let g = &self.store;
                g.stored_bytes.set(saturating_i64(s.stored_bytes));
                g.reserved_bytes.set(saturating_i64(s.reserved_bytes));
                g.envelopes.set(saturating_i64(s.envelopes));
                g.chunks.set(saturating_i64(s.chunks));
                g.messages.set(saturating_i64(s.messages));
                g.tombstones.set(saturating_i64(s.tombstones));
                g.identities.set(saturating_i64(s.identities));
            }
            Err(e) => tracing::warn!("cannot read store stats for metrics: {e:#}"),
        }
        if let Ok(replay) = store.replay() {
            match replay.stats() {
                Ok(r) => {
                    let g = &self.store;
                    g.replays.set(saturating_i64(r.replays));
                    g.replay_segments.set(saturating_i64(r.segments));
                    g.replay_bytes.set(saturating_i64(r.bytes));
                }
                Err(e) => tracing::warn!("cannot read replay stats for metrics: {e:#}"),
            }
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("cannot encode metrics: {e}");
            out.clear();
            let _ = writeln!(out, "# EOF");
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped or
/// aborted, refreshing the store gauges from `store` at each scrape.
pub async fn serve(listener: TcpListener, metrics: Arc<RelayMetrics>, store: Arc<RelayStore>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("metrics listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (metrics, store) = (metrics.clone(), store.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let (metrics, store) = (metrics.clone(), store.clone());
                async move { Ok::<_, Infallible>(handle(req, metrics, store).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, "metrics connection: {e}"),
                Err(_) => tracing::debug!(%peer, "metrics connection timed out"),
            }
        });
    }
}

/// Binds the metrics listener on `address`; its bound address is the
/// listener's `local_addr`.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

async fn handle(
    req: Request<Incoming>,
    metrics: Arc<RelayMetrics>,
    store: Arc<RelayStore>,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *r.status_mut() = status;
        r
    };
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "not found; try /metrics\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    let text = tokio::task::spawn_blocking(move || {
        metrics.refresh(&store);
        metrics.encode()
    })
    .await;
    match text {
        Ok(text) => {
            let mut r = Response::new(Full::new(Bytes::from(text)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(CONTENT_TYPE),
            );
            r
        }
        Err(e) => {
            tracing::error!("metrics task failed: {e}");
            reply(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_labels_encode_with_bounded_values() {
        let m = RelayMetrics::new();
        m.request(RequestType::PublishPrekeys);
        m.response(&mailbox::Response::Ok);
        m.response(&mailbox::Response::error(ErrorCode::Other(999), "x"));
        m.response(&mailbox::Response::error(ErrorCode::NotFound, "x"));
        m.chunk_stored(10);
        m.rate_limited(Limited::Bundles);
        m.collected(&CollectStats {
            messages: 2,
            abandoned: 1,
            ..CollectStats::default()
        });
        let text = m.encode();
        for line in [
            "mayfly_relay_requests_total{type=\"publish_prekeys\"} 1",
            "mayfly_relay_responses_total{outcome=\"ok\"} 1",
            "mayfly_relay_responses_total{outcome=\"other\"} 1",
            "mayfly_relay_responses_total{outcome=\"not_found\"} 1",
            "mayfly_relay_chunks_stored_total 1",
            "mayfly_relay_received_bytes_total 10",
            "mayfly_relay_collected_total{kind=\"messages\"} 2",
            "mayfly_relay_collected_total{kind=\"abandoned\"} 1",
            "mayfly_relay_rate_limited_total{bucket=\"bundles\"} 1",
            "mayfly_relay_store_chunks 0",
            "mayfly_relay_connections 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
