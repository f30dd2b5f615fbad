//! `/mayfly/chunks/1` (RELAY.md §2.1): many PutChunk or GetChunk frames on
//! one stream, each answered in order. [`send`] is the opener's side; the
//! rest is the receiver's.
//!
//! On the receiving side, each frame becomes an [`Event::InboundRequest`]
//! whose [`Reply`] leads back here, so the application answers it exactly
//! as it answers a PutChunk or GetChunk that came on its own request stream
//! (same checks, rate limits, upload admission, response budget and
//! metrics). What this adds is the stream: it reads a frame only while
//! fewer than [`CHUNKS_WINDOW`] are unanswered, takes each frame's length
//! from the node's request budget before reading its body, writes the
//! answers in the order the frames came, and gives every frame and every
//! answer the request timeout. Anything but a strictly decoded PutChunk or
//! GetChunk frame, a timeout, or a frame the application drops unanswered
//! ends the stream, after the answers to the frames before it.
//!
//! Streams are bounded over the node ([`Limits::max_chunk_streams`]) and
//! per peer ([`Limits::max_concurrent_streams`]); one beyond either is
//! dropped unread, which resets it. The bytes a peer moves over all its
//! chunk streams are shaped ([`super::shaper`],
//! [`Limits::chunk_bytes_per_sec`]): past its burst, its next frame is read
//! later, so its uploads and downloads slow to the rate and never fail on
//! it. Frames that came on a chunk stream take no token of the request
//! rate limits for that reason.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use mayfly_protocol::CIPHERTEXT_CHUNK_SIZE;
use mayfly_protocol::mailbox::{CHUNKS_PROTOCOL, CHUNKS_WINDOW, Request, Response};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use super::shaper::Shaper;
use super::{Event, Reply};
use crate::config::Limits;
use crate::mailbox::protocol::{read_held, read_held_or_end, write_frame};
use crate::mailbox::{ByteBudget, Held};

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new(CHUNKS_PROTOCOL);

/// How the chunk stream server is bounded.
#[derive(Debug, Clone, Copy)]
pub(super) struct ServeLimits {
    /// Streams at once over all peers.
    pub max_streams: usize,
    /// Streams at once from one peer.
    pub max_per_peer: usize,
    /// Longest wait for a frame, or for the answer to one.
    pub timeout: Duration,
    /// Bytes per second one peer moves on average over its chunk streams.
    pub bytes_per_sec: u64,
    /// Bytes one peer moves at once.
    pub burst_bytes: u64,
}

impl ServeLimits {
    pub fn new(limits: &Limits) -> Self {
        Self {
            max_streams: limits.max_chunk_streams,
            max_per_peer: limits.max_concurrent_streams,
            timeout: limits.request_timeout(),
            bytes_per_sec: limits.chunk_bytes_per_sec,
            burst_bytes: limits.chunk_burst_bytes,
        }
    }
}

/// Serves each `/mayfly/chunks/1` stream of `incoming` (queued by
/// [`super::chunks_inbound`]) in its own task, until the swarm is dropped.
/// Streams in progress end when the event channel closes.
pub(super) async fn serve(
    mut incoming: mpsc::Receiver<(PeerId, Stream)>,
    events: mpsc::WeakSender<Event>,
    budget: ByteBudget,
    limits: ServeLimits,
) {
    let open = Open::default();
    // One entry per peer at most, and only while it is over its burst.
    let shaper = Arc::new(Mutex::new(Shaper::new(
        limits.bytes_per_sec as f64,
        limits.burst_bytes,
        limits.max_streams,
    )));
    while let Some((peer, stream)) = incoming.recv().await {
        let Some(slot) = open.take(peer, &limits) else {
            tracing::debug!(%peer, "chunk stream refused: too many open");
            continue;
        };
        let events = events.clone();
        let budget = budget.clone();
        let shaper = shaper.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let served = answer(peer, stream, &events, &budget, &shaper, limits.timeout);
            if let Err(e) = served.await {
                tracing::debug!(%peer, "chunk stream closed: {e}");
            }
        });
    }
}

/// Chunk streams open, per peer.
#[derive(Clone, Default)]
struct Open(Arc<Mutex<HashMap<PeerId, usize>>>);

impl Open {
    fn take(&self, peer: PeerId, limits: &ServeLimits) -> Option<Slot> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let total: usize = open.values().sum();
        let mine = open.get(&peer).copied().unwrap_or(0);
        if total >= limits.max_streams || mine >= limits.max_per_peer {
            return None;
        }
        open.insert(peer, mine + 1);
        Some(Slot {
            open: self.clone(),
            peer,
        })
    }
}

/// One open stream; gives its place back when dropped.
struct Slot {
    open: Open,
    peer: PeerId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// Serves one stream: a reader that turns frames into events and a writer
/// that answers them in order.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    peer: PeerId,
    stream: S,
    events: &mpsc::WeakSender<Event>,
    budget: &ByteBudget,
    shaper: &Mutex<Shaper>,
    timeout: Duration,
) -> io::Result<()> {
    let shaped = |s: &Mutex<Shaper>| {
        s.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .delay(&peer, Instant::now())
    };
    let (mut reader, mut writer) = stream.split();
    let window = Semaphore::new(CHUNKS_WINDOW);
    let (answers, mut pending) = mpsc::channel::<oneshot::Receiver<Held<Response>>>(CHUNKS_WINDOW);
    let read = async {
        let answers = answers;
        loop {
            // Room in the window first: no byte of the next frame is read
            // while CHUNKS_WINDOW frames are unanswered.
            window
                .acquire()
                .await
                .map_err(|_| io::Error::other("the writer has stopped"))?
                .forget();
            // Then the peer's byte rate: a peer past its burst waits here,
            // its frame unread, which slows its sender through flow control.
            loop {
                let delay = shaped(shaper);
                if delay.is_zero() {
                    break;
                }
                tokio::time::sleep(delay).await;
            }
            let next = read_held_or_end(&mut reader, Some(budget));
            let Some(frame) = within(timeout, next).await? else {
                return Ok::<_, io::Error>(());
            };
            let Held { message, hold } = frame;
            let bytes = match &message {
                Request::PutChunk { bytes, .. } => bytes.len() as u64,
                // The answer's size, at most a whole chunk.
                Request::GetChunk { length: 0, .. } => CIPHERTEXT_CHUNK_SIZE as u64,
                Request::GetChunk { length, .. } => {
                    u64::from(*length).min(CIPHERTEXT_CHUNK_SIZE as u64)
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a chunk stream carries only PutChunk and GetChunk frames",
                    ));
                }
            };
            shaper
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .charge(peer, bytes, Instant::now());
            let (reply, answer) = Reply::chunk_stream();
            let event = Event::InboundRequest {
                peer,
                connection: None,
                request: Box::new(message),
                hold,
                channel: reply,
            };
            let gone = || io::Error::other("the event loop has stopped");
            let events = events.upgrade().ok_or_else(gone)?;
            events.send(event).await.map_err(|_| gone())?;
            answers
                .send(answer)
                .await
                .map_err(|_| io::Error::other("the writer is gone"))?;
        }
    };
    let write = async {
        let written = async {
            while let Some(answer) = pending.recv().await {
                let response = within(timeout, async {
                    answer
                        .await
                        .map_err(|_| io::Error::other("the frame was dropped unanswered"))
                })
                .await?;
                write_frame(&mut writer, &response.message).await?;
                drop(response);
                window.add_permits(1);
            }
            Ok::<_, io::Error>(())
        }
        .await;
        // A reader waiting for room learns that there will be none.
        window.close();
        written
    };
    // A bad frame stops the reader, but the frames before it are still
    // answered; then the stream is reset (dropped unclosed) instead of
    // closed.
    let (read, write) = futures::join!(read, write);
    write.and(read)?;
    writer.close().await
}

async fn within<T>(timeout: Duration, work: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "chunk stream timed out"))?
}

/// Why [`send`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum SendError<E> {
    /// The stream failed: reset, closed early, or a frame that does not
    /// decode.
    #[error("chunk stream failed")]
    Stream(#[source] io::Error),
    /// An answer did not come within the timeout.
    #[error("chunk stream timed out")]
    Timeout,
    /// `next` or `answered` returned an error.
    #[error(transparent)]
    Stopped(E),
}

/// The opener's side of a chunk stream: sends `next(i)` for each `i` in
/// `0..count` (PutChunk or GetChunk requests) on `stream`, at most [`CHUNKS_WINDOW`]
/// unanswered, and hands each answer in order to `answered(i, response)`,
/// each within `timeout`. Closes its side after the last request. Stops at
/// the first error of either callback or of the stream.
pub async fn send<E>(
    stream: Stream,
    count: usize,
    mut next: impl FnMut(usize) -> Result<Request, E>,
    mut answered: impl FnMut(usize, Response) -> Result<(), E>,
    timeout: Duration,
) -> Result<(), SendError<E>> {
    let mut sent = 0;
    let mut received = 0;
    send_each(
        stream,
        || {
            std::future::ready(match sent == count {
                true => Ok(None),
                false => {
                    sent += 1;
                    next(sent - 1).map(Some)
                }
            })
        },
        |response| {
            received += 1;
            answered(received - 1, response)
        },
        timeout,
    )
    .await
    .map(|_| ())
}

/// Like [`send`], for requests that are not known in advance: sends what
/// `next` returns until it returns `None` (it may wait, for example until
/// there is room to take more), at most [`CHUNKS_WINDOW`] unanswered, and
/// hands each answer in order to `answered`. The timeout runs only while
/// an answer is due. Returns how many requests were answered.
pub async fn send_each<E, F>(
    stream: Stream,
    mut next: impl FnMut() -> F,
    mut answered: impl FnMut(Response) -> Result<(), E>,
    timeout: Duration,
) -> Result<usize, SendError<E>>
where
    F: Future<Output = Result<Option<Request>, E>>,
{
    let (mut reader, mut writer) = stream.split();
    let window = Semaphore::new(CHUNKS_WINDOW);
    // Requests written, and whether the last one is: the reader waits for
    // an answer only while one is due.
    let sent = AtomicUsize::new(0);
    let finished = AtomicBool::new(false);
    let wake = Notify::new();
    let write = async {
        let written = async {
            loop {
                window
                    .acquire()
                    .await
                    .map_err(|_| SendError::Stream(io::Error::other("window closed")))?
                    .forget();
                let Some(request) = next().await.map_err(SendError::Stopped)? else {
                    break;
                };
                write_frame(&mut writer, &request)
                    .await
                    .map_err(SendError::Stream)?;
                sent.fetch_add(1, Ordering::AcqRel);
                wake.notify_one();
            }
            // The end of the stream tells the receiver there is nothing more.
            writer.close().await.map_err(SendError::Stream)
        }
        .await;
        finished.store(true, Ordering::Release);
        wake.notify_one();
        written
    };
    let read = async {
        let mut done = 0;
        loop {
            while done == sent.load(Ordering::Acquire) {
                if finished.load(Ordering::Acquire) {
                    return Ok(done);
                }
                wake.notified().await;
            }
            // Decoded in place: a chunk keeps the frame's buffer.
            let response =
                tokio::time::timeout(timeout, read_held::<_, Response>(&mut reader, None))
                    .await
                    .map_err(|_| SendError::Timeout)?
                    .map_err(SendError::Stream)?
                    .message;
            answered(response).map_err(SendError::Stopped)?;
            done += 1;
            window.add_permits(1);
        }
    };
    futures::try_join!(write, read).map(|((), done)| done)
}

#[cfg(test)]
mod tests {
    use mayfly_protocol::MessageId;
    use mayfly_protocol::mailbox::encode_frame;
    use tokio::io::AsyncWriteExt as _;
    use tokio_util::compat::TokioAsyncReadCompatExt;

    use super::super::reply::Route;
    use super::*;

    fn put(index: u32) -> Vec<u8> {
        let request = Request::PutChunk {
            message_id: MessageId([7; 32]),
            index,
            bytes: vec![1; 100],
        };
        encode_frame(&mayfly_protocol::codec::Codec::to_bytes(&request))
    }

    async fn next_reply(
        events: &mut mpsc::Receiver<Event>,
    ) -> Option<oneshot::Sender<Held<Response>>> {
        match events.recv().await? {
            Event::InboundRequest {
                request, channel, ..
            } => {
                assert!(matches!(*request, Request::PutChunk { .. }));
                match channel.0 {
                    Route::ChunkStream(sender) => Some(sender),
                    Route::Stream(_) => panic!("not a chunk stream reply"),
                }
            }
            other => panic!("unexpected event {other:?}"),
        }
    }

    #[test]
    fn streams_are_bounded_overall_and_per_peer() {
        let open = Open::default();
        let limits = ServeLimits {
            max_streams: 3,
            max_per_peer: 2,
            timeout: Duration::from_secs(1),
            bytes_per_sec: 0,
            burst_bytes: 0,
        };
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let a1 = open.take(a, &limits).unwrap();
        let _a2 = open.take(a, &limits).unwrap();
        assert!(
            open.take(a, &limits).is_none(),
            "a third stream of one peer"
        );
        let _b1 = open.take(b, &limits).unwrap();
        assert!(open.take(c, &limits).is_none(), "a fourth stream overall");
        drop(a1);
        let _c1 = open.take(c, &limits).unwrap();
        assert!(open.take(a, &limits).is_none());
    }

    /// Time is paused: a wait that nothing ends runs the clock forward to
    /// the next timer, so "nothing more came" is checked without sleeping.
    #[tokio::test(start_paused = true)]
    async fn no_frame_is_read_while_a_window_of_them_is_unanswered() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let (sender, mut events) = mpsc::channel(64);
        let weak = sender.downgrade();
        let budget = ByteBudget::new(1 << 20);
        let timeout = Duration::from_secs(30);
        let server = tokio::spawn(async move {
            let unshaped = Mutex::new(Shaper::new(0.0, 0, 1));
            answer(
                PeerId::random(),
                ours.compat(),
                &weak,
                &budget,
                &unshaped,
                timeout,
            )
            .await
        });
        for i in 0..20 {
            theirs.write_all(&put(i)).await.unwrap();
        }
        let mut replies = Vec::new();
        for _ in 0..CHUNKS_WINDOW {
            replies.push(next_reply(&mut events).await.unwrap());
        }
        let more = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
        assert!(more.is_err(), "a frame beyond the window was read");
        // One answer makes room for exactly one more frame.
        replies
            .remove(0)
            .send(Held::outbound(Response::Ok))
            .unwrap();
        replies.push(next_reply(&mut events).await.unwrap());
        let more = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
        assert!(more.is_err(), "a frame beyond the window was read");
        let mut answer = [0u8; 5];
        tokio::io::AsyncReadExt::read_exact(&mut theirs, &mut answer)
            .await
            .unwrap();
        assert_eq!(answer, [0, 0, 0, 1, 0x82]);
        // Unanswered past the timeout: the stream is given up.
        let result = server.await.unwrap();
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::TimedOut);
        drop(sender);
    }
}
