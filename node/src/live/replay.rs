//! The replay (LIVE.md §13): a broadcaster that goes live with a replay
//! keeps each sealed segment at its relays as it publishes it
//! ([`Uploader`]); a viewer who comes later fetches them from the
//! broadcaster's relays and plays the broadcast from its start
//! ([`watch_replay`]), checking every segment as it would one off the
//! overlay (§6), so a relay can withhold segments but cannot forge, alter
//! or reorder them unnoticed.

use std::io::Write;

use mayfly_protocol::SigningPublicKey;
use mayfly_protocol::live::chat::{ChatBody, ChatKind, ChatMessage};
use mayfly_protocol::live::{BroadcastId, SegmentGate};
use mayfly_protocol::playout::{Playout, PlayoutConfig};
use tokio::sync::mpsc;

use super::LiveError;
use super::watch::{WatchConfig, WatchSummary, WatchUpdate, write_output};
use crate::client::{Client, RelayRef};
use crate::home::Broadcast;

/// What the uploader did, at the end of a broadcast.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Segments stored at one relay at least.
    pub kept: u64,
    /// Segments no relay took.
    pub failed: u64,
    /// Segments dropped because the uploader had fallen
    /// `replay_queue` segments behind.
    pub dropped: u64,
    /// Each relay's first refusal or failure, if it had one.
    pub errors: Vec<String>,
}

/// Uploads the broadcast's segments to the broadcaster's relays in order,
/// on a task of its own, so a slow relay never holds the stream up: at most
/// `queue` segments wait, and one beyond is left out of the replay.
#[derive(Debug)]
pub(super) struct Uploader {
    tx: mpsc::Sender<(u64, Vec<u8>)>,
    task: tokio::task::JoinHandle<ReplayStats>,
    dropped: u64,
}

impl Uploader {
    /// Starts uploading to `relays` for broadcast `id`.
    pub(super) fn start(
        client: &Client,
        relays: Vec<RelayRef>,
        id: BroadcastId,
        queue: usize,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<(u64, Vec<u8>)>(queue.max(1));
        let client = client.clone();
        let task = tokio::spawn(async move {
            let mut stats = ReplayStats::default();
            // Each relay's first failure is reported once.
            let mut warned = vec![false; relays.len()];
            while let Some((seq, segment)) = rx.recv().await {
                let mut kept = false;
                for (i, relay) in relays.iter().enumerate() {
                    match client.replay_put(relay, &id, seq, &segment).await {
                        Ok(()) => kept = true,
                        Err(e) if !warned[i] => {
                            warned[i] = true;
                            let e = format!("{} refused segment {seq}: {e}", relay.address);
                            tracing::warn!("replay: {e}");
                            stats.errors.push(e);
                        }
                        Err(_) => {}
                    }
                }
                if kept {
                    stats.kept += 1;
                } else {
                    stats.failed += 1;
                }
            }
            stats
        });
        Self {
            tx,
            task,
            dropped: 0,
        }
    }

    /// Queues segment `seq` (its bytes as published) for the replay.
    pub(super) fn push(&mut self, seq: u64, segment: Vec<u8>) {
        if self.tx.try_send((seq, segment)).is_err() {
            self.dropped += 1;
        }
    }

    /// Waits until every queued segment is uploaded (or refused), for at
    /// most `within`; what is still queued then is counted as failed.
    pub(super) async fn finish(self, within: std::time::Duration) -> ReplayStats {
        let Self { tx, task, dropped } = self;
        let queued = (tx.max_capacity() - tx.capacity()) as u64;
        drop(tx);
        let abort = task.abort_handle();
        let mut stats = match tokio::time::timeout(within, task).await {
            Ok(Ok(stats)) => stats,
            _ => {
                abort.abort();
                ReplayStats {
                    failed: queued,
                    ..ReplayStats::default()
                }
            }
        };
        stats.dropped = dropped;
        stats
    }
}

/// Plays `broadcast`'s replay from its start: lists the segments at the
/// broadcaster's relays (the next relay takes over where one fails), checks
/// each (LIVE.md §6), opens it with the epoch keys the home holds, and
/// writes it in order, as fragmented MP4. A gap in the replay is passed
/// over to the next keyframe segment. Ends after the end segment, or when
/// no relay has more.
///
/// Unless `config.anonymous`, the viewer leaves a signed join with the
/// first relay that lists the replay, and an anonymous viewer an unsigned
/// one, for the broadcaster's viewer list (§13.2); the relay cannot read
/// either.
pub async fn watch_replay<W: Write>(
    client: &Client,
    broadcast: &Broadcast,
    out: &mut W,
    config: &WatchConfig,
    mut on_update: impl FnMut(WatchUpdate<'_>),
) -> Result<WatchSummary, LiveError> {
    let playout = config.playout;
    let relays = client.broadcaster_relays(&broadcast.broadcaster)?;
    let serial = client.with_home(|h| -> Result<_, LiveError> {
        Ok(h.contact(&broadcast.broadcaster)?
            .map_or(0, |c| c.certificate.serial()))
    })?;
    let mut gate = SegmentGate::new(broadcast.id, broadcast.broadcaster, serial);
    let mut held = add_keys(client, broadcast, &mut gate, &[])?;
    // In order from a relay: a missing segment is not coming later, so a
    // gap is passed over at once.
    let mut playout = Playout::new(PlayoutConfig {
        max_wait_ms: 0,
        ..playout
    });
    let mut summary = WatchSummary::default();
    summary.progress.replay = true;
    let mut from = 0u64;
    let mut last_error: Option<LiveError> = None;
    let mut any = false;
    let mut joined = false;
    'relays: for relay in &relays {
        loop {
            let (entries, more) = match client
                .replay_list(relay, &broadcast.broadcaster, &broadcast.id, from)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    last_error = Some(e.into());
                    continue 'relays;
                }
            };
            any = true;
            if !joined {
                joined = true;
                if leave_join(client, broadcast, relay, config.anonymous).await {
                    on_update(WatchUpdate::Joined);
                }
            }
            for entry in &entries {
                let bytes = match client
                    .replay_segment(relay, &broadcast.broadcaster, &broadcast.id, entry)
                    .await
                {
                    Ok(b) => b,
                    Err(e) => {
                        last_error = Some(e.into());
                        continue 'relays;
                    }
                };
                from = entry.seq + 1;
                let seg = match gate.accept(&bytes, client.now()) {
                    Ok(seg) => seg,
                    Err(_) => {
                        summary.progress.refused += 1;
                        continue;
                    }
                };
                if gate.open(&seg).is_none() {
                    held = add_keys(client, broadcast, &mut gate, &held)?;
                }
                match gate.open(&seg) {
                    Some(Ok(p)) => {
                        playout.push(seg.seq(), seg.flags(), seg.produced_at(), p, client.now());
                    }
                    _ => summary.progress.no_key += 1,
                }
                while let Some(o) = playout.poll(client.now()) {
                    if write_output(o, out, client.now(), &mut summary)? {
                        on_update(WatchUpdate::Progress(&summary.progress));
                    }
                }
                if playout.ended() {
                    summary.ended = true;
                    break 'relays;
                }
            }
            if !more {
                break 'relays;
            }
        }
    }
    out.flush().map_err(LiveError::Output)?;
    match last_error {
        Some(e) if !any => Err(e),
        _ => Ok(summary),
    }
}

/// Seals a join under the newest key of the broadcast held (signed unless
/// `anonymous`) and leaves it with the replay at `relay`. Best effort: a
/// replay plays whether or not the join is kept. True if it was.
async fn leave_join(
    client: &Client,
    broadcast: &Broadcast,
    relay: &RelayRef,
    anonymous: bool,
) -> bool {
    let Ok(keys) = client.with_home(|h| h.live_keys(&broadcast.id)) else {
        return false;
    };
    let Some((epoch, key)) = keys.into_iter().max_by_key(|(e, _)| *e) else {
        return false;
    };
    let token: [u8; 16] = client.random_32()[..16].try_into().expect("16 bytes");
    let body = ChatBody {
        kind: ChatKind::Join,
        sent_at: client.now(),
        token,
        text: String::new(),
    };
    let device = client.with_home(|h| h.device().clone());
    let signer = (!anonymous).then_some(&device);
    let Ok(chat) = ChatMessage::seal(broadcast.id, epoch, &key, client.random_32(), &body, signer)
    else {
        return false;
    };
    match client
        .replay_watched(relay, &broadcast.broadcaster, chat)
        .await
    {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!("replay: the join was not kept: {e}");
            false
        }
    }
}

/// Who watched a replay, as its joins at the broadcaster's relays say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayAudience {
    /// Viewers who signed their join, in the order they came.
    pub named: Vec<SigningPublicKey>,
    /// Anonymous joins, each watch counted once (by its token).
    pub anonymous: usize,
    /// Joins that did not open: sealed under a key this home lacks, or not
    /// a valid join (the relay cannot tell; it keeps what it is given).
    pub unreadable: usize,
}

/// The replay viewer list of this home's own broadcast `broadcast`: the
/// joins kept with its replay at this device's relays, opened with the
/// epoch keys kept here (LIVE.md §13.2). A viewer who watched twice, or
/// whose join is at two relays, counts once.
pub async fn replay_viewers(
    client: &Client,
    broadcast: &Broadcast,
) -> Result<ReplayAudience, LiveError> {
    let own = client.with_home(|h| h.identity().public());
    if broadcast.broadcaster != own {
        return Err(LiveError::NotYours);
    }
    let keys: std::collections::BTreeMap<u32, _> = client
        .with_home(|h| h.live_keys(&broadcast.id))?
        .into_iter()
        .collect();
    let mut out = ReplayAudience::default();
    let mut tokens = std::collections::HashSet::new();
    let mut last_error = None;
    let mut reached = false;
    for relay in client.own_relays()? {
        let mut from = 0u32;
        loop {
            let (watches, more) = match client.replay_viewers(&relay, &broadcast.id, from).await {
                Ok(page) => page,
                Err(e) => {
                    last_error = Some(e);
                    break;
                }
            };
            reached = true;
            for (n, chat) in watches {
                from = n.saturating_add(1);
                let opened = keys.get(&chat.epoch()).map(|k| chat.open(k));
                let Some(Ok(c)) = opened else {
                    out.unreadable += 1;
                    continue;
                };
                if c.body.kind != ChatKind::Join || !tokens.insert(c.body.token) {
                    continue;
                }
                match c.identity() {
                    Some(id) if !out.named.contains(&id) => out.named.push(id),
                    Some(_) => {}
                    None => out.anonymous += 1,
                }
            }
            if !more {
                break;
            }
        }
    }
    match last_error {
        Some(e) if !reached => Err(e.into()),
        _ => Ok(out),
    }
}

/// What revoking a replay did.
#[derive(Debug, Default)]
pub struct Revoked {
    /// The relays that deleted it (or never had it).
    pub deleted_at: Vec<String>,
    /// The relays that could not be reached or refused, and why.
    pub failed: Vec<(String, String)>,
    /// Whether this home held the broadcast's keys, now erased.
    pub keys_erased: bool,
    /// Followers told to erase their keys.
    pub told: usize,
    /// Followers that could not be told, and why.
    pub not_told: Vec<(String, String)>,
}

/// Revokes this home's own broadcast `broadcast`: deletes its replay at
/// every relay of this device (each keeps a tombstone, so a segment still
/// on its way does not bring it back), erases the epoch keys kept here,
/// and tells the followers to erase theirs (RELAY.md §5.7, LIVE.md §13.3).
/// Viewers named with `--to` who do not follow are not told: their keys
/// go at the end of their day.
pub async fn revoke_replay(client: &Client, broadcast: &Broadcast) -> Result<Revoked, LiveError> {
    let own = client.with_home(|h| h.identity().public());
    if broadcast.broadcaster != own {
        return Err(LiveError::NotYours);
    }
    let mut out = Revoked::default();
    for relay in client.own_relays()? {
        match client.replay_delete(&relay, &broadcast.id).await {
            Ok(()) => out.deleted_at.push(relay.address),
            Err(e) => out.failed.push((relay.address, e.to_string())),
        }
    }
    out.keys_erased = client.with_home(|h| h.erase_broadcast(&broadcast.id))?;
    let followers: Vec<_> = client
        .followers()?
        .into_iter()
        .map(|(c, _)| c.card.identity_key())
        .collect();
    let failed = client.send_live_revoked(&followers, &broadcast.id).await?;
    out.told = followers.len() - failed.len();
    out.not_told = failed
        .into_iter()
        .map(|(n, e)| (n, e.to_string()))
        .collect();
    Ok(out)
}

/// Hands `gate` every key of the broadcast the home holds that is not in
/// `held`; returns the epochs now held.
fn add_keys(
    client: &Client,
    broadcast: &Broadcast,
    gate: &mut SegmentGate,
    held: &[u32],
) -> Result<Vec<u32>, LiveError> {
    let keys = client.with_home(|h| h.live_keys(&broadcast.id))?;
    let mut now_held = held.to_vec();
    for (e, k) in keys {
        if !now_held.contains(&e) {
            now_held.push(e);
            gate.add_key(e, k);
        }
    }
    Ok(now_held)
}
