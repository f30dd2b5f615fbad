//! Group commit of chunk uploads: chunks that arrive while a transaction is
//! being written and synced wait, and the next writer stores them all in one
//! transaction with one `fsync`. An acknowledged chunk is still durable
//! before its `put_chunk` returns; concurrent uploads just share the sync.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use mayfly_protocol::SigningPublicKey;

use super::deposit::PreparedChunk;
use super::{RelayStore, StoreError};

/// Most chunks one transaction stores (each at most 256 KiB).
const MAX_BATCH: usize = 32;

/// What a stored chunk completed: `(mailbox, seq)` of each listed envelope.
pub(super) type Listed = Vec<(SigningPublicKey, u64)>;

/// Chunks waiting for a transaction, and the outcomes of those written.
#[derive(Debug, Default)]
pub(super) struct ChunkBatches {
    state: Mutex<BatchState>,
    written: Condvar,
}

#[derive(Debug, Default)]
struct BatchState {
    next_ticket: u64,
    /// At most one per `put_chunk` call in progress.
    waiting: Vec<(u64, PreparedChunk)>,
    /// Outcomes not yet collected, at most one per call in progress.
    outcomes: HashMap<u64, Result<Listed, StoreError>>,
    /// Whether a call is writing a batch now.
    writing: bool,
}

impl ChunkBatches {
    fn lock(&self) -> MutexGuard<'_, BatchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RelayStore {
    /// Stores `chunk` in the next transaction and returns its outcome once
    /// that transaction has committed. The caller that finds no transaction
    /// in progress writes one for every chunk waiting (up to [`MAX_BATCH`]).
    pub(super) fn commit_chunk(&self, chunk: PreparedChunk) -> Result<Listed, StoreError> {
        let batches = &self.batches;
        let mut s = batches.lock();
        let ticket = s.next_ticket;
        s.next_ticket += 1;
        s.waiting.push((ticket, chunk));
        loop {
            if let Some(outcome) = s.outcomes.remove(&ticket) {
                return outcome;
            }
            if s.writing {
                s = batches.written.wait(s).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            s.writing = true;
            let n = s.waiting.len().min(MAX_BATCH);
            let (tickets, batch): (Vec<u64>, Vec<PreparedChunk>) = s.waiting.drain(..n).unzip();
            drop(s);
            let mut writing = Writing {
                batches,
                tickets,
                outcomes: Vec::new(),
            };
            writing.outcomes = match self.write_chunks_txn(&batch) {
                Ok(outcomes) => outcomes,
                // A failed transaction fails every chunk in it, each with a
                // copy of the (internal) error.
                Err(e) => batch
                    .iter()
                    .map(|_| Err(StoreError::Io(std::io::Error::other(e.to_string()))))
                    .collect(),
            };
            drop(writing);
            s = batches.lock();
        }
    }

    /// Writes `batch` in one transaction. A chunk refused on its own (its
    /// message gone or revoked meanwhile) does not hold back the others; a
    /// database error fails them all.
    pub(super) fn write_chunks_txn(
        &self,
        batch: &[PreparedChunk],
    ) -> Result<Vec<Result<Listed, StoreError>>, StoreError> {
        let _writer = self.writer();
        let mut txn = self.db.begin_write()?;
        let mut outcomes = Vec::with_capacity(batch.len());
        {
            let mut t = super::tables::Tables::open(&txn)?;
            for chunk in batch {
                outcomes.push(self.write_chunk(&mut t, chunk)?);
            }
        }
        let listed = outcomes
            .iter()
            .any(|o| o.as_ref().is_ok_and(|l| !l.is_empty()));
        if self.lazy_chunks && !listed {
            txn.set_durability(redb::Durability::None)
                .map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
            txn.commit()?;
        } else {
            self.commit(txn)?;
        }
        // A chunk written to the file of a message deleted meanwhile: no row
        // names that file any more (the message is gone, under this lock).
        for (chunk, outcome) in batch.iter().zip(&outcomes) {
            if chunk.in_file()
                && matches!(outcome, Err(StoreError::NotFound(_) | StoreError::Revoked))
                && let Err(e) = self.remove_orphan_file(&chunk.id)
            {
                // The rows are committed; the next open sweeps the file.
                tracing::warn!(error = %e, "could not remove an orphaned chunk file");
            }
        }
        Ok(outcomes)
    }
}

/// Publishes a batch's outcomes, in the order of its tickets, and hands the
/// writing over, even if writing panicked (then every chunk of the batch
/// gets an error).
struct Writing<'a> {
    batches: &'a ChunkBatches,
    tickets: Vec<u64>,
    outcomes: Vec<Result<Listed, StoreError>>,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let mut s = self.batches.lock();
        let mut outcomes = std::mem::take(&mut self.outcomes).into_iter();
        for &t in &self.tickets {
            let o = outcomes
                .next()
                .unwrap_or_else(|| Err(StoreError::corrupt("a chunk batch failed")));
            s.outcomes.insert(t, o);
        }
        s.writing = false;
        self.batches.written.notify_all();
    }
}
