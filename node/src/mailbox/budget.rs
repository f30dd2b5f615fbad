//! A node-wide budget of bytes held in mailbox messages.
//!
//! The swarm's codec keeps one for inbound requests: each request takes its
//! frame length before its body is read, and gives it back when the node is
//! done with it (when the [`Hold`] that travels with the request is
//! dropped). While the budget is spent, streams wait in the codec with their
//! bodies unread, and the node decodes and queues no more. The mailbox
//! service keeps another for chunk responses: a GetChunk takes the chunk's
//! length before the chunk is read from the store, and the codec gives it
//! back once the response is written. Either wait counts against the
//! request timeout like the rest of the exchange.
//!
//! What a budget does not bound: bytes the multiplexer has already taken
//! for a stream, up to its flow-control window (yamux grants each new
//! stream 256 KiB). With 1,000 clients uploading 8 chunks each at once, a
//! relay held 63 MiB of decoded requests under the budget but 776 MiB in
//! yamux's stream buffers (measured by relay_bench's many-clients form, before upload admission); upload admission
//! (`relay/uploads.rs`) bounds those by bounding the uploads in progress.

use std::io;
use std::sync::Arc;

use mayfly_protocol::mailbox::MAX_FRAME_LEN;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A budget of bytes, shared by everything that holds from it (every
/// connection of a swarm, or every request task of a service).
#[derive(Debug, Clone)]
pub struct ByteBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl ByteBudget {
    /// A budget of `bytes`, raised to one largest frame if smaller (so every
    /// valid message fits).
    pub fn new(bytes: usize) -> Self {
        let total = bytes.clamp(MAX_FRAME_LEN, Semaphore::MAX_PERMITS);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// The budget's size in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes not held by any message now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Waits until `len` bytes (at most [`MAX_FRAME_LEN`]) are free and takes them.
    pub async fn take(&self, len: usize) -> io::Result<Hold> {
        let n = u32::try_from(len.min(MAX_FRAME_LEN)).unwrap_or(u32::MAX);
        let permit = self
            .bytes
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| io::Error::other("the byte budget is closed"))?;
        Ok(Hold(Some(permit)))
    }
}

/// Bytes of one message held against a [`ByteBudget`], given back on drop.
/// [`Hold::none`] holds nothing (an outbound request, or a message without
/// a budget).
#[derive(Debug, Default)]
pub struct Hold(Option<OwnedSemaphorePermit>);

impl Hold {
    /// Holds nothing.
    pub fn none() -> Self {
        Self(None)
    }

    /// How many bytes this holds.
    pub fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }
}

/// A message and the budget it holds while the node works on it.
#[derive(Debug)]
pub struct Held<M> {
    /// The message.
    pub message: M,
    /// Its bytes in the budget (nothing for an outbound message).
    pub hold: Hold,
}

impl<M> Held<M> {
    /// A message that holds nothing: what an outbound request is.
    pub fn outbound(message: M) -> Self {
        Self {
            message,
            hold: Hold::none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn a_request_waits_until_held_bytes_are_given_back() {
        let budget = ByteBudget::new(MAX_FRAME_LEN + 10);
        assert_eq!(budget.total(), MAX_FRAME_LEN + 10);
        let first = budget.take(MAX_FRAME_LEN).now_or_never().unwrap().unwrap();
        assert_eq!(first.bytes(), MAX_FRAME_LEN);
        assert_eq!(budget.available(), 10);
        // Small requests still fit; a large one waits.
        let small = budget.take(10).now_or_never().unwrap().unwrap();
        let mut large = Box::pin(budget.take(100));
        assert!((&mut large).now_or_never().is_none());
        drop(small);
        drop(first);
        let large = large.now_or_never().unwrap().unwrap();
        assert_eq!(large.bytes(), 100);
        assert_eq!(budget.available(), MAX_FRAME_LEN + 10 - 100);
    }

    #[test]
    fn a_budget_below_one_frame_is_raised_to_one() {
        let budget = ByteBudget::new(1);
        assert_eq!(budget.total(), MAX_FRAME_LEN);
        assert!(budget.take(MAX_FRAME_LEN).now_or_never().is_some());
    }
}
