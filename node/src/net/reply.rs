//! Where the answer to an inbound mailbox request goes.

use libp2p::request_response::ResponseChannel;
use mayfly_protocol::mailbox::Response;
use tokio::sync::oneshot;

use crate::mailbox::Held;

/// The way back for one [`Event::InboundRequest`](super::Event::InboundRequest):
/// its request stream, or its place on a chunk stream. Answer it with
/// [`Client::respond`](super::Client::respond); dropping it closes the
/// stream without an answer.
#[derive(Debug)]
pub struct Reply(pub(super) Route);

#[derive(Debug)]
pub(super) enum Route {
    /// A request-response stream (`/mayfly/relay/1`, `/mayfly/direct/1`),
    /// answered through the swarm.
    Stream(ResponseChannel<Held<Response>>),
    /// One frame of a chunk stream (`/mayfly/chunks/1`), answered to the
    /// task that serves the stream.
    ChunkStream(oneshot::Sender<Held<Response>>),
}

impl Reply {
    /// The reply for a request that came on a request-response stream.
    pub(super) fn stream(channel: ResponseChannel<Held<Response>>) -> Self {
        Self(Route::Stream(channel))
    }

    /// True if the request came as a frame of a chunk stream, whose bytes
    /// the stream's server has already shaped.
    pub fn is_chunk_stream(&self) -> bool {
        matches!(self.0, Route::ChunkStream(_))
    }

    /// The reply for a frame of a chunk stream, and where its answer
    /// arrives.
    pub(super) fn chunk_stream() -> (Self, oneshot::Receiver<Held<Response>>) {
        let (sender, receiver) = oneshot::channel();
        (Self(Route::ChunkStream(sender)), receiver)
    }
}
