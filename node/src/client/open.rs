//! Opening a clip as a stream: chunks are fetched a few ahead, each is
//! checked against its manifest hash on arrival, decrypted, and written out
//! at once, so a player reading the output starts before the last chunk is
//! in.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use libp2p::PeerId;
use mayfly_protocol::fetch::{Next, Policy, Schedule};
use mayfly_protocol::mailbox::{ErrorCode, Request, Response};
use mayfly_protocol::{
    ChunkHash, ClipHeader, ClipOpener, Manifest, MessageId, SigningPublicKey, VerifiedChunk,
};
use tokio::sync::Notify;

use super::ingest::ChunkSource;
use super::inner::{Inner, card_relays, lock, unexpected};
use super::peer;
use super::progress::{Progress, ProgressFn};
use super::{Client, ClientError};
use crate::home::Source;
use crate::net::chunks;

/// Longest an open tries to reach the sender's device before that source
/// stops. The relay does not wait for it: reaching the sender counts as
/// the lead's time to deliver, so the relay joins after `helpers_after`
/// (or when the chunks are late) if the sender is not reached by then.
const SENDER_WAIT: Duration = Duration::from_secs(2);

/// Where an opened clip goes.
pub enum OpenTarget {
    /// Standard output (always allowed: it plays, it does not keep).
    Stdout,
    /// A file: a copy that stays, allowed only if the sender allowed saving.
    File(PathBuf),
    /// Any writer, e.g. a player's pipe (always allowed: a modified client
    /// can keep whatever it decrypts anyway, see SPEC §15.5).
    Writer(Box<dyn Write + Send>),
}

/// What an open did.
#[derive(Debug, Clone)]
pub struct OpenReport {
    /// The clip's header.
    pub header: ClipHeader,
    /// Content bytes written.
    pub bytes: u64,
    /// For each chunk, the time from its ciphertext being available to its
    /// first decrypted byte being written out.
    pub chunk_latencies: Vec<Duration>,
    /// Whether it came from the local store (a direct delivery).
    pub local: bool,
    /// Chunks fetched from the sender's own device (RELAY.md §8) rather
    /// than from the local store or a relay.
    pub peer_chunks: usize,
}

impl Client {
    /// Streams clip `id` to `target`. Fails before writing anything if the
    /// clip expired or if `target` is a file and saving is not allowed.
    ///
    /// If a relay no longer has the clip, the mailbox is synced: when that
    /// brings the sender's revocation (which erases the clip here), the
    /// error is [`ClientError::Revoked`].
    pub async fn open(
        &self,
        id: &MessageId,
        target: OpenTarget,
        progress: ProgressFn,
    ) -> Result<OpenReport, ClientError> {
        match self.inner.open(id, target, progress).await {
            Err(
                e @ ClientError::Refused {
                    code: ErrorCode::NotFound | ErrorCode::Revoked,
                    ..
                },
            ) => {
                // A revocation waiting in the mailbox is applied by the sync.
                if let Err(sync) = self.sync().await {
                    tracing::debug!("sync after a missing chunk: {sync}");
                }
                match self.inner.home().received(id)? {
                    None => Err(ClientError::Revoked(id.to_hex())),
                    Some(_) => Err(e),
                }
            }
            r => r,
        }
    }
}

impl Inner {
    async fn open(
        &self,
        id: &MessageId,
        target: OpenTarget,
        progress: ProgressFn,
    ) -> Result<OpenReport, ClientError> {
        let (received, key) = {
            let home = self.home();
            let r = home
                .received(id)?
                .ok_or_else(|| ClientError::UnknownMessage(id.to_hex()))?;
            let k = home
                .received_key(id)?
                .ok_or_else(|| ClientError::UnknownMessage(id.to_hex()))?;
            (r, k)
        };
        let now = self.now();
        if received.header.expires_at <= now {
            return Err(ClientError::Expired(id.to_hex()));
        }
        // A save has no player: it wants every chunk at once.
        let saving = matches!(target, OpenTarget::File(_));
        let mut out: Box<dyn Write + Send> = match target {
            OpenTarget::Stdout => Box::new(std::io::stdout()),
            OpenTarget::File(path) => {
                if !received.header.allow_save {
                    return Err(ClientError::SaveNotAllowed);
                }
                Box::new(
                    std::fs::File::create(&path)
                        .map_err(|e| ClientError::io(format!("creating {}", path.display()), e))?,
                )
            }
            OpenTarget::Writer(w) => w,
        };
        let source = self.chunk_source(&received.sources).await?;
        let mut opener = ClipOpener::new(received.manifest.clone(), &key, now)?;
        drop(key);
        let label = format!("clip {}", &id.to_hex()[..12]);
        progress(Progress::Start {
            label: label.clone(),
            total: received.header.content_len,
        });
        let manifest = &received.manifest;
        let hashes = manifest.chunk_hashes();
        let mut latencies = Vec::with_capacity(hashes.len());
        let mut written = 0u64;
        // Decrypts and writes out the next chunk, checked, which arrived at
        // `arrived`.
        let mut play = |chunk: VerifiedChunk<'_>, arrived: Instant| {
            let plain = opener.open_verified(chunk)?;
            out.write_all(plain)
                .and_then(|()| out.flush())
                .map_err(|e| ClientError::io("writing the clip", e))?;
            latencies.push(arrived.elapsed());
            written += plain.len() as u64;
            progress(Progress::Advance {
                label: label.clone(),
                bytes: plain.len() as u64,
            });
            Ok::<_, ClientError>(())
        };
        let mut peer_chunks = 0;
        // What the chunk streams left: chunks that came out of order, and
        // where the requests below start.
        let mut left = None;
        if let ChunkSource::Remote(relay) = source {
            // From the sender's device, while it is online and has them,
            // with the relay's help if it stalls (reaching it counts); what
            // neither stream delivers, from the relay by requests below.
            let sender = self
                .config
                .fetch_from_sender
                .then_some(Peer::Sender(&received.sender));
            let sources: Vec<Peer<'_>> = sender.into_iter().chain([Peer::Known(relay)]).collect();
            let duration = Duration::from_millis(received.header.duration_ms.into());
            let pace = match saving {
                true => Some(Duration::ZERO),
                false => (!duration.is_zero()).then(|| duration / manifest.chunk_count().max(1)),
            };
            let policy = Policy {
                helpers_after: self.config.helpers_after,
                pace: pace.filter(|_| self.config.keep_up_with_playback),
            };
            let (schedule, from_peers) = self
                .stream_chunks(&sources, manifest, policy, &mut play)
                .await?;
            peer_chunks = from_peers;
            left = Some(schedule);
        }
        let first = left.as_ref().map_or(0, |l| l.schedule.next_take()) as usize;
        let mut next = hashes.iter().enumerate().skip(first);
        let mut fetches = FuturesOrdered::new();
        loop {
            while fetches.len() < self.config.pipeline.max(1) {
                let Some((index, hash)) = next.next() else {
                    break;
                };
                let waiting = left.as_mut().and_then(|l| l.take(index as u32));
                fetches.push_back(async move {
                    let r = match waiting {
                        Some(arrived) => Ok(arrived),
                        None => {
                            let bytes = self.fetch_chunk(source, hash).await;
                            bytes.map(|b| (b, Instant::now()))
                        }
                    };
                    (index as u32, r)
                });
            }
            let Some((index, fetched)) = fetches.next().await else {
                break;
            };
            let (bytes, arrived) = fetched?;
            let chunk = manifest
                .check_chunk(index, &bytes)
                .ok_or(mayfly_protocol::Error::Decrypt)?;
            play(chunk, arrived)?;
        }
        let header = opener.finish()?;
        progress(Progress::Finish { label });
        self.home().mark_opened(id)?;
        Ok(OpenReport {
            header,
            bytes: written,
            chunk_latencies: latencies,
            local: matches!(source, ChunkSource::Local),
            peer_chunks,
        })
    }

    /// Fetches the clip's chunks from `sources` at once, one chunk stream
    /// (`/mayfly/chunks/1`) each, and plays them in order: the first source
    /// leads, the others help once it stalls, falls behind playback or
    /// stops, as `policy` says ([`mayfly_protocol::fetch`]). The last source
    /// is the relay.
    /// Returns what the streams left (the schedule, whose next chunk to
    /// take is where they stopped: all of them, if they delivered
    /// everything) and how many chunks came from sources other than the
    /// relay. An error of `play` (writing out) ends the open.
    async fn stream_chunks(
        &self,
        sources: &[Peer<'_>],
        manifest: &Manifest,
        policy: Policy,
        play: &mut (dyn FnMut(VerifiedChunk<'_>, Instant) -> Result<(), ClientError> + Send),
    ) -> Result<(Left, usize), ClientError> {
        let count = manifest.chunk_count();
        let shared = Arc::new(Shared {
            schedule: Mutex::new(Schedule::new(
                0,
                count,
                sources.len(),
                policy,
                Duration::ZERO,
            )),
            origin: Instant::now(),
            changed: Notify::new(),
            failed: AtomicBool::new(false),
            relay: sources.len() - 1,
        });
        let player = Mutex::new(Player {
            play,
            from_peers: 0,
            error: None,
        });
        let runs = sources.iter().enumerate().map(|(index, &peer)| {
            self.stream_source(Feed { index, peer }, &shared, manifest, &player)
        });
        // Every chunk played (or playing failed): a source still waiting
        // for answers, such as a silent one whose chunks came from the
        // other, is dropped, which resets its stream.
        let finished = async {
            loop {
                let changed = shared.changed.notified();
                let mut changed = std::pin::pin!(changed);
                changed.as_mut().enable();
                if shared.failed.load(Ordering::Acquire)
                    || lock(&shared.schedule).next_take() == count
                {
                    return;
                }
                changed.await;
            }
        };
        tokio::select! {
            _ = futures::future::join_all(runs) => {}
            () = finished => {}
        }
        let player = player.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = player.error {
            return Err(e);
        }
        let schedule = std::mem::replace(
            &mut *lock(&shared.schedule),
            Schedule::new(count, count, 1, Policy::default(), Duration::ZERO),
        );
        let left = Left {
            schedule,
            origin: shared.origin,
        };
        Ok((left, player.from_peers))
    }

    /// One source of [`Inner::stream_chunks`]: opens its stream once it has
    /// something to ask for, then asks and plays until the schedule has
    /// nothing more for it. A failure only stops this source.
    async fn stream_source(
        &self,
        source: Feed<'_>,
        shared: &Arc<Shared>,
        manifest: &Manifest,
        player: &Mutex<Player<'_>>,
    ) {
        let Feed { index: me, peer } = source;
        let Some(first) = shared.ask(me).await else {
            return;
        };
        let peer = match peer {
            Peer::Known(peer) => peer,
            Peer::Sender(sender) => match self.sender_device(sender).await {
                Some(peer) => peer,
                None => {
                    shared.stop(me);
                    return;
                }
            },
        };
        let stream = match self.net.open_chunks(peer).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(%peer, "no chunk stream: {e}");
                shared.stop(me);
                return;
            }
        };
        let hashes: Arc<[ChunkHash]> = manifest.chunk_hashes().into();
        let mut first = Some(first);
        let next = || {
            let (shared, hashes, first) = (shared.clone(), hashes.clone(), first.take());
            async move {
                let index = match first {
                    Some(i) => Some(i),
                    None => shared.ask(me).await,
                };
                Ok::<_, SourceStop>(index.map(|i| Request::GetChunk {
                    hash: hashes[i as usize],
                    offset: 0,
                    length: 0,
                }))
            }
        };
        let answered = |response| match response {
            Response::Chunk { bytes } => shared.arrived(source, bytes, manifest, player),
            Response::Error { code, detail } => Err(SourceStop::Error(ClientError::Refused {
                peer: peer.to_string(),
                code,
                detail,
            })),
            _ => Err(unexpected(peer, "get chunk").into()),
        };
        let timeout = self.config.request_timeout;
        if let Err(e) = chunks::send_each(stream, next, answered, timeout).await {
            tracing::debug!(%peer, "chunk stream stopped: {e}");
            shared.stop(me);
        }
    }

    /// The sender's device, connected, if it is a contact and online
    /// (located at its relays) and answers within [`SENDER_WAIT`]. Any
    /// failure is `None`: the sender's source then stops, and the relay
    /// serves the rest.
    async fn sender_device(&self, sender: &SigningPublicKey) -> Option<PeerId> {
        tokio::time::timeout(SENDER_WAIT, self.reach_sender(sender))
            .await
            .ok()?
    }

    async fn reach_sender(&self, sender: &SigningPublicKey) -> Option<PeerId> {
        let contact = self.home().contact(sender).ok()??;
        let relays = card_relays(&contact.card);
        let (peer, addrs) = self.locate(sender, &relays).await.ok()??;
        for addr in &addrs {
            if self.connect(peer, addr).await.is_ok() {
                return Some(peer);
            }
        }
        None
    }

    /// The first usable source of a clip: the local store, else a relay
    /// that holds it (connected and logged in).
    async fn chunk_source(&self, sources: &[Source]) -> Result<ChunkSource, ClientError> {
        if sources.iter().any(|s| matches!(s, Source::Local { .. })) {
            return Ok(ChunkSource::Local);
        }
        let mut last = None;
        for s in sources {
            if let Source::Relay { address, .. } = s {
                let (relay, dial) = peer::parse_relay(address)?;
                match self.connect(relay, &dial).await {
                    Ok(()) => return Ok(ChunkSource::Remote(relay)),
                    Err(e) => last = Some(e),
                }
            }
        }
        Err(last.unwrap_or(ClientError::NoRelay))
    }
}

/// What the chunk streams of a fetch left: chunks that came out of order,
/// and where requests start.
struct Left {
    schedule: Schedule,
    /// Where the schedule's times count from.
    origin: Instant,
}

impl Left {
    /// Chunk `index` and when it arrived, if it is waiting here.
    fn take(&mut self, index: u32) -> Option<(Vec<u8>, Instant)> {
        let arrived = self.schedule.remove(index)?;
        Some((arrived.bytes, self.origin + arrived.at))
    }
}

/// One source of a fetch: its number in the schedule and its peer.
#[derive(Clone, Copy)]
struct Feed<'a> {
    /// Its number in the schedule.
    index: usize,
    peer: Peer<'a>,
}

/// Who a source of a fetch is.
#[derive(Clone, Copy)]
enum Peer<'a> {
    /// A peer already connected (the relay).
    Known(PeerId),
    /// The sender's device, reached (located and dialled) only once its
    /// source has a chunk to ask for: until then it counts as stalled, so
    /// an unreachable sender holds up the fetch no longer than a silent one.
    Sender(&'a SigningPublicKey),
}

/// What the sources of one fetch share.
struct Shared {
    /// Times in `schedule` count from here.
    origin: Instant,
    schedule: Mutex<Schedule>,
    /// Told whenever the schedule changes in a way a waiting source may
    /// care about.
    changed: Notify,
    /// Playing failed: every source stops.
    failed: AtomicBool,
    /// The relay's number among the sources (the last).
    relay: usize,
}

/// Why one source of a fetch stopped (logged only: the others go on).
#[derive(Debug, thiserror::Error)]
enum SourceStop {
    /// It refused a chunk, answered something else, or the stream failed.
    #[error(transparent)]
    Error(#[from] ClientError),
    /// A chunk it sent failed its check.
    #[error("a chunk it sent failed its check")]
    BadChunk,
    /// The fetch no longer needs it: it was stopped, or playing failed.
    #[error("no longer needed")]
    Unneeded,
}

/// Where the chunks of a fetch go, in order.
struct Player<'a> {
    play: &'a mut (dyn FnMut(VerifiedChunk<'_>, Instant) -> Result<(), ClientError> + Send),
    from_peers: usize,
    /// Why playing failed.
    error: Option<ClientError>,
}

impl Shared {
    /// Now, as the schedule counts time: since [`Shared::origin`].
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// The next chunk `source` asks for, waiting while there is none yet;
    /// `None` once there is nothing more for it.
    async fn ask(&self, source: usize) -> Option<u32> {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before the schedule is read: no change is missed.
            changed.as_mut().enable();
            if self.failed.load(Ordering::Acquire) {
                return None;
            }
            let next = lock(&self.schedule).next(source, self.now());
            match next {
                Next::Ask(i) => return Some(i),
                Next::End => return None,
                Next::Wait(None) => changed.await,
                Next::Wait(Some(until)) => {
                    let until = tokio::time::Instant::from_std(self.origin + until);
                    let _ = tokio::time::timeout_at(until, changed).await;
                }
            }
        }
    }

    /// `source` stopped: what it owed goes to the others.
    fn stop(&self, source: usize) {
        lock(&self.schedule).stop(source);
        self.changed.notify_waiters();
    }

    /// A chunk from `source`: plays every chunk that is next in order. A
    /// chunk that fails its check stops its source and is asked of another.
    fn arrived(
        &self,
        source: Feed,
        bytes: Vec<u8>,
        manifest: &Manifest,
        player: &Mutex<Player<'_>>,
    ) -> Result<(), SourceStop> {
        if self.failed.load(Ordering::Acquire) {
            return Err(SourceStop::Unneeded);
        }
        let mut schedule = lock(&self.schedule);
        if schedule.arrived(source.index, bytes, self.now()).is_none() {
            // This source was stopped meanwhile: its stream ends.
            return Err(SourceStop::Unneeded);
        }
        let mut rejected_mine = false;
        while let Some((index, arrived)) = schedule.take(self.now()) {
            let Some(chunk) = manifest.check_chunk(index, &arrived.bytes) else {
                tracing::debug!(index, "a chunk failed its check: asked of another source");
                rejected_mine |= arrived.source == source.index;
                schedule.reject(index, arrived.source);
                continue;
            };
            let mut player = lock(player);
            if let Err(e) = (player.play)(chunk, self.origin + arrived.at) {
                player.error = Some(e);
                self.failed.store(true, Ordering::Release);
                break;
            }
            if arrived.source != self.relay {
                player.from_peers += 1;
            }
        }
        drop(schedule);
        self.changed.notify_waiters();
        if self.failed.load(Ordering::Acquire) {
            return Err(SourceStop::Unneeded);
        }
        match rejected_mine {
            true => Err(SourceStop::BadChunk),
            false => Ok(()),
        }
    }
}
