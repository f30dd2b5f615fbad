//! Watching: the viewer's side (LIVE.md §6, §7). The viewer joins the
//! broadcast's overlay at the peers its key named, forwards what its gate
//! accepts, opens segments with the epoch keys it holds and writes them in
//! order, as fragmented MP4, through a [`Playout`].

use std::io::Write;
use std::time::Duration;

use libp2p::Multiaddr;
use mayfly_protocol::UnixMillis;
use mayfly_protocol::live::SegmentGate;
use mayfly_protocol::live::chat::{ChatBody, ChatKind, PRESENCE_INTERVAL_MS};
use mayfly_protocol::playout::{Output, Playout, PlayoutConfig};
use tokio::sync::mpsc;

use super::audience::{Audience, AudienceEvent};
use super::control::{ControlRequest, Request};
use super::{LiveConfig, LiveError, LiveEvent, LivePeer};
use crate::client::{Client, Event};
use crate::home::Broadcast;

/// How a viewer watches. Defaults live here.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Where the overlay peer listens (other viewers may join through it).
    pub listen: Multiaddr,
    /// Peers to dial besides those the broadcast's key named.
    pub extra_peers: Vec<Multiaddr>,
    /// The overlay's settings.
    pub live: LiveConfig,
    /// Reordering and skipping ahead.
    pub playout: PlayoutConfig,
    /// How long to wait with no new segment before giving up.
    pub idle: Duration,
    /// Watch without a signed join: the broadcaster counts an anonymous
    /// viewer (LIVE.md §12.5). Comments are signed all the same.
    pub anonymous: bool,
    /// How often the join is repeated while watching.
    pub presence_interval: Duration,
    /// How long joining waits for a connection to one of the overlay's
    /// peers before the broadcast counts as one that cannot be joined
    /// ([`LiveError::NoPeers`]: over, or unreachable).
    pub connect_within: Duration,
    /// Seconds in a row without any overlay connection after which a watch
    /// ends: [`LiveError::NoPeers`] if nothing played (the viewer came
    /// after the end), else as an idle watch does.
    pub alone_ticks: u32,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            listen: "/ip4/0.0.0.0/tcp/0".parse().expect("a multiaddr"),
            extra_peers: Vec::new(),
            live: LiveConfig::default(),
            playout: PlayoutConfig::default(),
            idle: Duration::from_secs(30),
            anonymous: false,
            presence_interval: Duration::from_millis(PRESENCE_INTERVAL_MS),
            connect_within: Duration::from_secs(10),
            alone_ticks: 3,
        }
    }
}

/// Where a watch is, reported after each segment written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchProgress {
    /// Segments written.
    pub played: u64,
    /// Segments passed over (lost or too late).
    pub skipped: u64,
    /// Bytes written.
    pub bytes: u64,
    /// From the broadcaster sealing the last segment written to writing it.
    pub latency_ms: u64,
    /// Segments accepted that no key held could open.
    pub no_key: u64,
    /// Messages the gate refused (forged, corrupt, replayed, stale).
    pub refused: u64,
    /// Comments received.
    pub comments: u64,
    /// Whether this is a replay, fetched from relays (then latencies mean
    /// nothing and are not measured).
    pub replay: bool,
}

/// What a watch reports as it goes.
#[derive(Debug)]
#[non_exhaustive]
pub enum WatchUpdate<'a> {
    /// A segment was written.
    Progress(&'a WatchProgress),
    /// Someone joined, left or commented.
    Audience(&'a AudienceEvent),
    /// This viewer's own join reached the overlay (first time only).
    Joined,
}

/// How a watch ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSummary {
    /// The counters at the end.
    pub progress: WatchProgress,
    /// Whether the broadcaster's end segment was played (else the watch
    /// went idle).
    pub ended: bool,
    /// Latencies of the segments written, in ms, in order.
    pub latencies_ms: Vec<u64>,
}

/// Watches `broadcast` and writes it to `out` until its end segment plays
/// or nothing arrives for `config.idle`. `events` (the client's) brings
/// the keys of later epochs as they are handed over; keys are also
/// re-read from the home when a segment does not open. The viewer joins
/// the broadcast's chat (signed, or anonymous), repeats its join while it
/// watches and leaves at the end; `control` brings comments to post (from
/// `mayfly live comment`, over the control socket).
/// `on_update` hears of each segment written and of the audience.
pub async fn watch<W: Write>(
    client: &Client,
    mut events: Option<&mut mpsc::Receiver<Event>>,
    broadcast: &Broadcast,
    out: &mut W,
    config: &WatchConfig,
    mut control: Option<mpsc::Receiver<ControlRequest>>,
    mut on_update: impl FnMut(WatchUpdate<'_>),
) -> Result<WatchSummary, LiveError> {
    let (peer, mut segments, mut held) = join(client, broadcast, config).await?;
    let mut playout = Playout::new(config.playout);
    let mut summary = WatchSummary::default();
    let mut idle_since = tokio::time::Instant::now();
    let mut presence = Presence::new(client, config);
    let mut audience = Audience::new();
    // Until the join is out, it is tried again every second.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // Seconds in a row with no overlay connection.
    let mut alone = 0u32;
    let result: Result<(), LiveError> = async {
        loop {
            let deadline = playout.next_deadline().map(|d| {
                let wait = d.0.saturating_sub(client.now().0);
                tokio::time::Instant::now() + Duration::from_millis(wait)
            });
            let idle_at = idle_since + config.idle;
            let wake = deadline.map_or(idle_at, |d| d.min(idle_at));
            tokio::select! {
                e = segments.recv() => match e {
                    None => return Err(LiveError::Peer(super::LivePeerError::Stopped)),
                    Some(LiveEvent::Refused { .. }) => summary.progress.refused += 1,
                    Some(LiveEvent::ChatRefused { reason, .. }) => {
                        if reason.is_offence() {
                            summary.progress.refused += 1;
                        }
                    }
                    Some(LiveEvent::Chat { chat, .. }) => {
                        for e in audience.observe(&chat, client.now()) {
                            if matches!(e, AudienceEvent::Comment { .. }) {
                                summary.progress.comments += 1;
                            }
                            on_update(WatchUpdate::Audience(&e));
                        }
                    }
                    Some(LiveEvent::Segment { seq, flags, produced_at, plaintext, .. }) => {
                        // A segment: the overlay is there, so the join can go.
                        if presence.due() && presence.send(client, &peer, ChatKind::Join).await {
                            on_update(WatchUpdate::Joined);
                        }
                        idle_since = tokio::time::Instant::now();
                        match plaintext {
                            Some(p) => {
                                playout.push(seq, flags, produced_at, p, client.now());
                            }
                            None => {
                                summary.progress.no_key += 1;
                                refresh_keys(client, &peer, broadcast, &mut held).await?;
                            }
                        }
                    }
                },
                e = next_event(&mut events) => {
                    if let Some(Event::LiveKey { grant, .. }) = e
                        && grant.broadcast_id == broadcast.id
                        && !held.contains(&grant.epoch)
                    {
                        held.push(grant.epoch);
                        peer.add_key(grant.epoch, grant.key).await?;
                    }
                }
                _ = tick.tick() => {
                    // Every peer gone (the broadcast is over, and its
                    // relays' forwarders have stopped): no segment can come.
                    if peer.connections().await? == 0 {
                        alone += 1;
                        if alone >= config.alone_ticks {
                            if summary.progress.played == 0 {
                                return Err(LiveError::NoPeers);
                            }
                            return Ok(());
                        }
                    } else {
                        alone = 0;
                    }
                    for e in audience.expire(client.now()) {
                        on_update(WatchUpdate::Audience(&e));
                    }
                    if presence.due() && presence.send(client, &peer, ChatKind::Join).await {
                        on_update(WatchUpdate::Joined);
                    }
                }
                r = next_request(&mut control) => {
                    let answer = match &r.request {
                        Request::Comment { broadcast: id, text } => {
                            post_comment(client, &peer, broadcast, &presence, text, id).await
                        }
                        Request::Follow { name, follow } => super::follow(client, name, *follow).await,
                        _ => Err("this home is watching, not broadcasting".into()),
                    };
                    let _ = r.reply.send(answer);
                }
                () = tokio::time::sleep_until(wake) => {
                    if tokio::time::Instant::now() >= idle_at && playout.next_deadline().is_none() {
                        return Ok(());
                    }
                }
            }
            while let Some(o) = playout.poll(client.now()) {
                if write_output(o, out, client.now(), &mut summary)? {
                    on_update(WatchUpdate::Progress(&summary.progress));
                }
            }
            if playout.ended() {
                summary.ended = true;
                return Ok(());
            }
        }
    }
    .await;
    if presence.joined() {
        // Best effort: a viewer that leaves without saying so times out.
        presence.send(client, &peer, ChatKind::Leave).await;
        tokio::time::sleep(LEAVE_LINGER).await;
    }
    peer.stop().await;
    out.flush().map_err(LiveError::Output)?;
    result.map(|()| summary)
}

/// How long a viewer stays up after its leave, so the leave goes out.
const LEAVE_LINGER: Duration = Duration::from_millis(200);

/// This watch's joins and leaves (LIVE.md §12.5): one token for the
/// watch, signed unless anonymous, a join repeated every interval.
struct Presence {
    token: [u8; 16],
    signer: Option<mayfly_protocol::Device>,
    interval: Duration,
    last: Option<tokio::time::Instant>,
    device: mayfly_protocol::Device,
}

impl Presence {
    fn new(client: &Client, config: &WatchConfig) -> Self {
        let device = client.with_home(|h| h.device().clone());
        Self {
            token: client.random_32()[..16].try_into().expect("16 bytes"),
            signer: (!config.anonymous).then(|| device.clone()),
            interval: config.presence_interval,
            last: None,
            device,
        }
    }

    fn joined(&self) -> bool {
        self.last.is_some()
    }

    /// Whether a join is due: none has gone out yet, or the interval has
    /// passed since the last.
    fn due(&self) -> bool {
        self.last.is_none_or(|t| t.elapsed() >= self.interval)
    }

    /// Publishes a join or leave; true for the first join that reached a
    /// peer. Failures are logged, not fatal: chat is not the stream.
    async fn send(&mut self, client: &Client, peer: &LivePeer, kind: ChatKind) -> bool {
        let body = ChatBody {
            kind,
            sent_at: client.now(),
            token: self.token,
            text: String::new(),
        };
        match peer
            .chat(body, self.signer.clone(), client.random_32())
            .await
        {
            Ok(true) if kind == ChatKind::Join => {
                let first = self.last.is_none();
                self.last = Some(tokio::time::Instant::now());
                first
            }
            Ok(_) => false,
            Err(e) => {
                tracing::debug!("live presence: {e}");
                false
            }
        }
    }
}

/// Posts a comment handed over the control socket, signed by the device
/// (comments are signed even when watching anonymously).
async fn post_comment(
    client: &Client,
    peer: &LivePeer,
    broadcast: &Broadcast,
    presence: &Presence,
    text: &str,
    id: &str,
) -> Result<(), String> {
    if !hex::encode(broadcast.id.0).starts_with(&id.to_ascii_lowercase()) || id.is_empty() {
        return Err(format!(
            "this home is watching {}, not {id}",
            &hex::encode(broadcast.id.0)[..8]
        ));
    }
    let body = ChatBody {
        kind: ChatKind::Comment,
        sent_at: client.now(),
        token: presence.token,
        text: text.to_owned(),
    };
    match peer
        .chat(body, Some(presence.device.clone()), client.random_32())
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err("no other peer of the broadcast is connected yet".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Joins `broadcast`'s overlay: starts a viewer's peer with the epoch keys
/// the home holds (in both of its gates, segments and chat, before it dials
/// anyone) and dials the peers the key named and `config.extra_peers`.
/// Returns the peer, its events and the epochs whose keys it holds.
async fn join(
    client: &Client,
    broadcast: &Broadcast,
    config: &WatchConfig,
) -> Result<(LivePeer, mpsc::Receiver<LiveEvent>, Vec<u32>), LiveError> {
    let (serial, keys) = client.with_home(|h| -> Result<_, LiveError> {
        let serial = h
            .contact(&broadcast.broadcaster)?
            .map_or(0, |c| c.certificate.serial());
        Ok((serial, h.live_keys(&broadcast.id)?))
    })?;
    let gate = SegmentGate::new(broadcast.id, broadcast.broadcaster, serial);
    let live = super::on_clock_of(client, &config.live);
    let (peer, events) = LivePeer::start(gate, false, config.listen.clone(), &live, None).await?;
    let mut held: Vec<u32> = Vec::new();
    let mut dialled = 0;
    let r: Result<(), LiveError> = async {
        for (e, k) in keys {
            peer.add_key(e, k).await?;
            held.push(e);
        }
        for a in broadcast
            .peers
            .iter()
            .filter_map(|p| p.parse::<Multiaddr>().ok())
            .chain(config.extra_peers.iter().cloned())
        {
            if peer.dial(a).await.is_ok() {
                dialled += 1;
            }
        }
        // A dial is only queued: wait for a connection to come up, or
        // for every dial to fail (the broadcast is over).
        let deadline = tokio::time::Instant::now() + config.connect_within;
        while dialled > 0 && peer.connections().await? == 0 {
            if tokio::time::Instant::now() >= deadline || peer.failed_dials().await? >= dialled {
                dialled = 0;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(())
    }
    .await;
    match r {
        Ok(()) if dialled > 0 => Ok((peer, events, held)),
        other => {
            peer.stop().await;
            Err(other.err().unwrap_or(LiveError::NoPeers))
        }
    }
}

/// Posts one comment on `broadcast` without watching: joins the overlay at
/// the peers its key named, publishes the comment once a peer is there
/// (waiting up to `within`), lets it go out, and leaves.
pub async fn comment(
    client: &Client,
    broadcast: &Broadcast,
    text: &str,
    config: &WatchConfig,
    within: Duration,
) -> Result<(), LiveError> {
    let (peer, _events, _) = join(client, broadcast, config).await?;
    let r = async {
        let presence = Presence::new(client, config);
        let deadline = tokio::time::Instant::now() + within;
        let id = hex::encode(broadcast.id.0);
        loop {
            match post_comment(client, &peer, broadcast, &presence, text, &id).await {
                Ok(()) => break,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(LiveError::Comment(e)),
            }
        }
        // Gossipsub sends on its own time: give it a moment.
        tokio::time::sleep(COMMENT_LINGER).await;
        Ok(())
    }
    .await;
    peer.stop().await;
    r
}

/// How long a one-off commenter stays after publishing.
const COMMENT_LINGER: Duration = Duration::from_millis(500);

/// The next control request, or never when there is no receiver.
async fn next_request(control: &mut Option<mpsc::Receiver<ControlRequest>>) -> ControlRequest {
    match control {
        Some(rx) => match rx.recv().await {
            Some(r) => r,
            None => {
                *control = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// The client's next event, or never when there is no receiver (or it
/// has closed).
async fn next_event(events: &mut Option<&mut mpsc::Receiver<Event>>) -> Option<Event> {
    match events {
        Some(rx) => match rx.recv().await {
            Some(e) => Some(e),
            None => {
                *events = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// Hands the peer any key of the broadcast the home holds and it lacks.
async fn refresh_keys(
    client: &Client,
    peer: &LivePeer,
    broadcast: &Broadcast,
    held: &mut Vec<u32>,
) -> Result<(), LiveError> {
    let keys = client.with_home(|h| h.live_keys(&broadcast.id))?;
    for (e, k) in keys {
        if !held.contains(&e) {
            held.push(e);
            peer.add_key(e, k).await?;
        }
    }
    Ok(())
}

/// Writes one playout output; true for a segment's media.
pub(super) fn write_output<W: Write>(
    o: Output,
    out: &mut W,
    now: UnixMillis,
    summary: &mut WatchSummary,
) -> Result<bool, LiveError> {
    let p = &mut summary.progress;
    match o {
        Output::Init(init) => {
            out.write_all(&init).map_err(LiveError::Output)?;
            p.bytes += init.len() as u64;
            Ok(false)
        }
        Output::Media {
            produced_at, bytes, ..
        } => {
            out.write_all(&bytes).map_err(LiveError::Output)?;
            p.bytes += bytes.len() as u64;
            p.played += 1;
            if !p.replay {
                p.latency_ms = now.0.saturating_sub(produced_at.0);
                summary.latencies_ms.push(p.latency_ms);
            }
            Ok(true)
        }
        Output::Skipped { from, to } => {
            p.skipped += to - from;
            Ok(false)
        }
        _ => Ok(false),
    }
}
