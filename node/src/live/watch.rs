//! Watching: the viewer's side (LIVE.md §6, §7). The viewer joins the
//! broadcast's overlay at the peers its key named, forwards what its gate
//! accepts, opens segments with the epoch keys it holds and writes them in
//! order, as fragmented MP4, through a [`Playout`].

use std::io::Write;
use std::time::Duration;

use libp2p::Multiaddr;
use mayfly_protocol::UnixMillis;
use mayfly_protocol::live::SegmentGate;
use mayfly_protocol::playout::{Output, Playout, PlayoutConfig};
use tokio::sync::mpsc;

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
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            listen: "/ip4/0.0.0.0/tcp/0".parse().expect("a multiaddr"),
            extra_peers: Vec::new(),
            live: LiveConfig::default(),
            playout: PlayoutConfig::default(),
            idle: Duration::from_secs(30),
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
/// re-read from the home when a segment does not open. `on_progress` is
/// called after each segment written.
pub async fn watch<W: Write>(
    client: &Client,
    mut events: Option<&mut mpsc::Receiver<Event>>,
    broadcast: &Broadcast,
    out: &mut W,
    config: &WatchConfig,
    mut on_progress: impl FnMut(&WatchProgress),
) -> Result<WatchSummary, LiveError> {
    let (serial, keys) = client.with_home(|h| -> Result<_, LiveError> {
        let serial = h
            .contact(&broadcast.broadcaster)?
            .map_or(0, |c| c.certificate.serial());
        Ok((serial, h.live_keys(&broadcast.id)?))
    })?;
    let mut gate = SegmentGate::new(broadcast.id, broadcast.broadcaster, serial);
    let mut held: Vec<u32> = Vec::new();
    for (e, k) in keys {
        gate.add_key(e, k);
        held.push(e);
    }
    let live = super::on_clock_of(client, &config.live);
    let (peer, mut segments) =
        LivePeer::start(gate, false, config.listen.clone(), &live, None).await?;
    let mut dialled = 0;
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
    if dialled == 0 {
        peer.stop().await;
        return Err(LiveError::NoPeers);
    }
    let mut playout = Playout::new(config.playout);
    let mut summary = WatchSummary::default();
    let mut idle_since = tokio::time::Instant::now();
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
                    Some(LiveEvent::Segment { seq, flags, produced_at, plaintext, .. }) => {
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
                () = tokio::time::sleep_until(wake) => {
                    if tokio::time::Instant::now() >= idle_at && playout.next_deadline().is_none() {
                        return Ok(());
                    }
                }
            }
            while let Some(o) = playout.poll(client.now()) {
                if write_output(o, out, client.now(), &mut summary)? {
                    on_progress(&summary.progress);
                }
            }
            if playout.ended() {
                summary.ended = true;
                return Ok(());
            }
        }
    }
    .await;
    peer.stop().await;
    out.flush().map_err(LiveError::Output)?;
    result.map(|()| summary)
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
fn write_output<W: Write>(
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
            p.latency_ms = now.0.saturating_sub(produced_at.0);
            summary.latencies_ms.push(p.latency_ms);
            Ok(true)
        }
        Output::Skipped { from, to } => {
            p.skipped += to - from;
            Ok(false)
        }
        _ => Ok(false),
    }
}
