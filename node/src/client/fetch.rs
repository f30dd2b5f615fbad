//! Which peer is asked for which chunk when a clip is fetched from several
//! at once (RELAY.md §8): the sender's device leads, and the relay helps
//! when the lead stalls ([`ClientConfig::helpers_after`]) or stops.
//!
//! [`ClientConfig::helpers_after`]: super::ClientConfig::helpers_after
//!
//! [`Schedule`] is the bookkeeping alone, with time passed in; the streams
//! that follow it are in `open.rs`. Chunks are asked for in order, at most
//! [`LOOKAHEAD`] past the first one not yet played, so whatever arrives out
//! of order waits in a bounded buffer. Each peer's answers come in the order
//! it was asked. A chunk that a stopped peer was asked for and did not
//! deliver is asked of another.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use mayfly_protocol::mailbox::CHUNKS_WINDOW;

/// Chunks asked for beyond the first one not yet taken: what may wait out
/// of order is at most this many chunks (8 MiB).
pub(super) const LOOKAHEAD: u32 = 2 * CHUNKS_WINDOW as u32;

/// What a source does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Ask for this chunk.
    Ask(u32),
    /// Nothing to ask for now: wait for a change, or until this time, when
    /// the answer may differ.
    Wait(Option<Instant>),
    /// Nothing more for this source.
    End,
}

/// A chunk that arrived and waits for its turn.
#[derive(Debug)]
pub(super) struct Arrived {
    /// Its ciphertext, not yet checked against its hash.
    pub bytes: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
    /// The source it came from.
    pub source: usize,
}

#[derive(Debug, Default)]
struct Source {
    /// Chunks asked for and not yet answered, in the order asked.
    asked: VecDeque<u32>,
    stopped: bool,
}

/// The chunks of one clip among its sources. Source 0 leads; the others
/// help once the lead goes `helpers_after` without delivering the next
/// chunk in order, or stops.
#[derive(Debug)]
pub(super) struct Schedule {
    count: u32,
    /// The first chunk not yet asked of anyone.
    next_new: u32,
    /// Chunks to ask for again: their source stopped, or what it sent
    /// failed its check.
    again: BTreeSet<u32>,
    /// The first chunk not yet taken.
    next_take: u32,
    ready: BTreeMap<u32, Arrived>,
    sources: Vec<Source>,
    helping: bool,
    helpers_after: Duration,
    /// When the last chunk was taken (or the fetch started).
    progress: Instant,
}

impl Schedule {
    /// A schedule for chunks `first..count` among `sources` sources.
    pub fn new(
        first: u32,
        count: u32,
        sources: usize,
        helpers_after: Duration,
        now: Instant,
    ) -> Self {
        Self {
            count,
            next_new: first,
            again: BTreeSet::new(),
            next_take: first,
            ready: BTreeMap::new(),
            sources: (0..sources).map(|_| Source::default()).collect(),
            helping: sources == 1,
            helpers_after,
            progress: now,
        }
    }

    /// What `source` does next.
    pub fn next(&mut self, source: usize, now: Instant) -> Next {
        if self.sources[source].stopped {
            return Next::End;
        }
        let stalled_at = self.progress + self.helpers_after;
        if source != 0 && !self.helping && now >= stalled_at {
            self.helping = true;
        }
        if source == 0 || self.helping {
            let index = match self.again.pop_first() {
                Some(i) => Some(i),
                None if self.next_new < self.count
                    && self.next_new < self.next_take.saturating_add(LOOKAHEAD) =>
                {
                    self.next_new += 1;
                    Some(self.next_new - 1)
                }
                None => None,
            };
            if let Some(i) = index {
                self.sources[source].asked.push_back(i);
                return Next::Ask(i);
            }
        }
        if self.next_new >= self.count && self.again.is_empty() {
            return Next::End;
        }
        match source == 0 || self.helping {
            true => Next::Wait(None),
            false => Next::Wait(Some(stalled_at)),
        }
    }

    /// `source` answered the oldest chunk it was asked for with `bytes`.
    /// Returns its index; `None` if `source` has stopped (the chunk is asked
    /// of another) or was asked for nothing.
    pub fn arrived(&mut self, source: usize, bytes: Vec<u8>, at: Instant) -> Option<u32> {
        let s = &mut self.sources[source];
        if s.stopped {
            return None;
        }
        let index = s.asked.pop_front()?;
        self.ready.insert(index, Arrived { bytes, at, source });
        Some(index)
    }

    /// The next chunk in order, if it has arrived. It counts as taken;
    /// [`Schedule::reject`] it if it fails its check.
    pub fn take(&mut self, now: Instant) -> Option<(u32, Arrived)> {
        let arrived = self.ready.remove(&self.next_take)?;
        self.next_take += 1;
        self.progress = now;
        Some((self.next_take - 1, arrived))
    }

    /// The chunk just taken failed its check: its source is stopped and the
    /// chunk is asked of another.
    pub fn reject(&mut self, index: u32, source: usize) {
        self.next_take = index;
        self.again.insert(index);
        self.stop(source);
    }

    /// `source` stopped (its stream failed, or it refused a chunk): what it
    /// was asked for and did not deliver is asked of the others, and the
    /// helpers start if it led.
    pub fn stop(&mut self, source: usize) {
        let s = &mut self.sources[source];
        s.stopped = true;
        self.again.extend(s.asked.drain(..));
        if source == 0 {
            self.helping = true;
        }
    }

    /// The first chunk not yet taken.
    pub fn next_take(&self) -> u32 {
        self.next_take
    }

    /// Takes chunk `index` out of the buffer if it arrived (after the
    /// sources have ended, for what is left).
    pub fn remove(&mut self, index: u32) -> Option<Arrived> {
        self.ready.remove(&index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELPERS_AFTER: Duration = Duration::from_secs(1);

    fn schedule(first: u32, count: u32, sources: usize, now: Instant) -> Schedule {
        Schedule::new(first, count, sources, HELPERS_AFTER, now)
    }

    fn arrive(s: &mut Schedule, source: usize, now: Instant) -> Option<u32> {
        s.arrived(source, vec![source as u8], now)
    }

    #[test]
    fn the_lead_asks_in_order_within_the_lookahead_and_a_helper_waits() {
        let t0 = Instant::now();
        let mut s = schedule(0, 100, 2, t0);
        for i in 0..LOOKAHEAD {
            assert_eq!(s.next(0, t0), Next::Ask(i));
        }
        assert_eq!(s.next(0, t0), Next::Wait(None), "the lookahead is full");
        assert_eq!(s.next(1, t0), Next::Wait(Some(t0 + HELPERS_AFTER)));
        // Chunk 0 arrives and is taken: one more may be asked for.
        assert_eq!(arrive(&mut s, 0, t0), Some(0));
        let (index, a) = s.take(t0).unwrap();
        assert_eq!((index, a.source), (0, 0));
        assert!(s.take(t0).is_none());
        assert_eq!(s.next(0, t0), Next::Ask(LOOKAHEAD));
    }

    #[test]
    fn a_helper_starts_when_the_lead_stalls_and_chunks_are_taken_in_order() {
        let t0 = Instant::now();
        let mut s = schedule(0, 10, 2, t0);
        assert_eq!(s.next(0, t0), Next::Ask(0));
        assert_eq!(s.next(0, t0), Next::Ask(1));
        let late = t0 + HELPERS_AFTER;
        assert_eq!(s.next(1, late), Next::Ask(2));
        assert_eq!(s.next(1, late), Next::Ask(3));
        // The helper answers first; its chunks wait for 0 and 1.
        assert_eq!(arrive(&mut s, 1, late), Some(2));
        assert!(s.take(late).is_none());
        assert_eq!(arrive(&mut s, 0, late), Some(0));
        assert_eq!(arrive(&mut s, 0, late), Some(1));
        let order: Vec<_> =
            std::iter::from_fn(|| s.take(late).map(|(i, a)| (i, a.source))).collect();
        assert_eq!(order, [(0, 0), (1, 0), (2, 1)]);
        assert_eq!(s.next_take(), 3);
    }

    #[test]
    fn what_a_stopped_lead_was_asked_for_goes_to_the_helper() {
        let t0 = Instant::now();
        let mut s = schedule(0, 3, 2, t0);
        assert_eq!(s.next(0, t0), Next::Ask(0));
        assert_eq!(s.next(0, t0), Next::Ask(1));
        assert_eq!(s.next(0, t0), Next::Ask(2));
        assert_eq!(s.next(0, t0), Next::End, "all asked for");
        assert_eq!(arrive(&mut s, 0, t0), Some(0));
        s.stop(0);
        assert_eq!(
            arrive(&mut s, 0, t0),
            None,
            "a stopped source's answers are dropped"
        );
        assert_eq!(s.next(0, t0), Next::End);
        // The helper starts at once, with the chunks the lead still owed.
        assert_eq!(s.next(1, t0), Next::Ask(1));
        assert_eq!(s.next(1, t0), Next::Ask(2));
        assert_eq!(s.next(1, t0), Next::End);
        assert_eq!(arrive(&mut s, 1, t0), Some(1));
        assert_eq!(arrive(&mut s, 1, t0), Some(2));
        let order: Vec<_> = std::iter::from_fn(|| s.take(t0).map(|(i, a)| (i, a.source))).collect();
        assert_eq!(order, [(0, 0), (1, 1), (2, 1)]);
    }

    #[test]
    fn a_rejected_chunk_is_asked_of_another_source() {
        let t0 = Instant::now();
        let mut s = schedule(0, 2, 2, t0);
        assert_eq!(s.next(0, t0), Next::Ask(0));
        assert_eq!(s.next(0, t0), Next::Ask(1));
        assert_eq!(arrive(&mut s, 0, t0), Some(0));
        let (index, a) = s.take(t0).unwrap();
        s.reject(index, a.source);
        assert_eq!(s.next_take(), 0);
        assert_eq!(s.next(0, t0), Next::End);
        assert_eq!(s.next(1, t0), Next::Ask(0));
        assert_eq!(s.next(1, t0), Next::Ask(1));
        assert_eq!(arrive(&mut s, 1, t0), Some(0));
        assert_eq!(s.take(t0).map(|(i, a)| (i, a.source)), Some((0, 1)));
    }

    #[test]
    fn a_helper_of_a_small_clip_the_lead_has_all_of_ends_without_asking() {
        let t0 = Instant::now();
        let mut s = schedule(0, 1, 2, t0);
        assert_eq!(s.next(0, t0), Next::Ask(0));
        assert_eq!(s.next(1, t0 + HELPERS_AFTER * 5), Next::End);
    }

    #[test]
    fn a_single_source_asks_from_where_the_fetch_starts() {
        let t0 = Instant::now();
        let mut s = schedule(5, 7, 1, t0);
        assert_eq!(s.next(0, t0), Next::Ask(5));
        assert_eq!(s.next(0, t0), Next::Ask(6));
        assert_eq!(s.next(0, t0), Next::End);
        assert_eq!(arrive(&mut s, 0, t0), Some(5));
        assert_eq!(s.remove(5).map(|a| a.source), Some(0));
    }
}
