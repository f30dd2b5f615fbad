//! A viewer's playout (LIVE.md §7.1): puts accepted, opened segments back in
//! order, starts a late joiner at the newest keyframe segment, and skips
//! ahead past a segment that does not come rather than stalling for ever.
//!
//! Sans-IO: segments and `now` go in through [`Playout::push`], what to
//! write comes out of [`Playout::poll`]. Call `poll` until it returns
//! `None` after each `push`, and again at [`Playout::next_deadline`].

use std::collections::{BTreeMap, VecDeque};

use crate::live::{FLAG_END, FLAG_KEYFRAME, SegmentPlaintext};
use crate::time::UnixMillis;

/// How long a playout waits for a missing segment, and how much it holds.
/// Defaults live here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayoutConfig {
    /// How long a segment that could play next waits for the one missing
    /// before it, in ms.
    pub max_wait_ms: u64,
    /// How many segments wait at most; past this the playout skips ahead
    /// at once (and, with no keyframe to skip to, drops the oldest).
    pub max_held: usize,
}

impl Default for PlayoutConfig {
    fn default() -> Self {
        Self {
            max_wait_ms: 2_000,
            max_held: 8,
        }
    }
}

/// What to write next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// The stream's init data (`ftyp`, `moov`): first, and again whenever
    /// a keyframe segment carries different init data.
    Init(Vec<u8>),
    /// A segment's media (`moof`, `mdat`), in order.
    Media {
        /// Its sequence number.
        seq: u64,
        /// When the broadcaster produced it.
        produced_at: UnixMillis,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Segments `from..to` never came (or came too late) and were passed
    /// over; playing resumes at keyframe segment `to`.
    Skipped {
        /// The first missing sequence number.
        from: u64,
        /// The keyframe segment playing resumes at.
        to: u64,
    },
    /// The broadcaster's last segment has played: nothing more follows.
    End,
}

struct Held {
    flags: u8,
    produced_at: UnixMillis,
    arrived_at: UnixMillis,
    plaintext: SegmentPlaintext,
}

/// The playout of one broadcast.
pub struct Playout {
    config: PlayoutConfig,
    /// The next sequence number to play; `None` until a keyframe segment
    /// has arrived.
    next: Option<u64>,
    held: BTreeMap<u64, Held>,
    init: Vec<u8>,
    out: VecDeque<Output>,
    ended: bool,
}

impl Playout {
    /// A playout that has played nothing yet.
    pub fn new(config: PlayoutConfig) -> Self {
        Self {
            config: PlayoutConfig {
                max_held: config.max_held.max(1),
                ..config
            },
            next: None,
            held: BTreeMap::new(),
            init: Vec::new(),
            out: VecDeque::new(),
            ended: false,
        }
    }

    /// Takes in segment `seq` (accepted and opened), which arrived at
    /// `now`. Returns false if it came too late to play (its place has
    /// passed, or the broadcast has ended) or is a duplicate.
    pub fn push(
        &mut self,
        seq: u64,
        flags: u8,
        produced_at: UnixMillis,
        plaintext: SegmentPlaintext,
        now: UnixMillis,
    ) -> bool {
        if self.ended || self.next.is_some_and(|n| seq < n) || self.held.contains_key(&seq) {
            return false;
        }
        self.held.insert(
            seq,
            Held {
                flags,
                produced_at,
                arrived_at: now,
                plaintext,
            },
        );
        true
    }

    /// The next thing to write, if any is ready at `now`.
    pub fn poll(&mut self, now: UnixMillis) -> Option<Output> {
        loop {
            if let Some(o) = self.out.pop_front() {
                return Some(o);
            }
            if self.ended {
                return None;
            }
            let Some(next) = self.next else {
                // Start at the newest keyframe segment held; until one
                // comes, hold at most `max_held`, dropping the oldest.
                match self.newest_keyframe() {
                    Some(k) => {
                        self.held = self.held.split_off(&k);
                        self.next = Some(k);
                        continue;
                    }
                    None => {
                        self.trim();
                        return None;
                    }
                }
            };
            if let Some(h) = self.held.remove(&next) {
                self.play(next, h);
                continue;
            }
            let (&first, oldest) = self.held.iter().next()?;
            let waited = now.0.saturating_sub(oldest.arrived_at.0) >= self.config.max_wait_ms;
            if !waited && self.held.len() < self.config.max_held {
                return None;
            }
            // Skip to the first keyframe segment after the gap.
            match self
                .held
                .iter()
                .find(|(_, h)| h.flags & FLAG_KEYFRAME != 0)
                .map(|(s, _)| *s)
            {
                Some(k) => {
                    self.held = self.held.split_off(&k);
                    self.next = Some(k);
                    self.out.push_back(Output::Skipped { from: next, to: k });
                }
                None => {
                    // Nothing decodable after the gap yet: what waits
                    // cannot play without a keyframe before it.
                    if self.held.len() >= self.config.max_held {
                        self.held.remove(&first);
                    }
                    return None;
                }
            }
        }
    }

    /// When [`Playout::poll`] should be called again if nothing arrives:
    /// when the oldest held segment has waited `max_wait_ms`.
    pub fn next_deadline(&self) -> Option<UnixMillis> {
        if self.ended || self.next.is_none() {
            return None;
        }
        self.held
            .values()
            .next()
            .map(|h| h.arrived_at.plus(self.config.max_wait_ms))
    }

    /// The next sequence number to play, once playing has started.
    pub fn next_seq(&self) -> Option<u64> {
        self.next
    }

    /// How many segments wait.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Whether the last segment has played.
    pub fn ended(&self) -> bool {
        self.ended
    }

    fn newest_keyframe(&self) -> Option<u64> {
        self.held
            .iter()
            .rev()
            .find(|(_, h)| h.flags & FLAG_KEYFRAME != 0)
            .map(|(s, _)| *s)
    }

    fn trim(&mut self) {
        while self.held.len() > self.config.max_held {
            self.held.pop_first();
        }
    }

    fn play(&mut self, seq: u64, mut h: Held) {
        let p = &mut h.plaintext;
        if !p.init.is_empty() && p.init != self.init {
            self.init = std::mem::take(&mut p.init);
            self.out.push_back(Output::Init(self.init.clone()));
        }
        if !p.media.is_empty() {
            self.out.push_back(Output::Media {
                seq,
                produced_at: h.produced_at,
                bytes: std::mem::take(&mut p.media),
            });
        }
        self.next = Some(seq.saturating_add(1));
        if h.flags & FLAG_END != 0 {
            self.out.push_back(Output::End);
            self.ended = true;
            self.held.clear();
        }
    }
}

#[cfg(test)]
mod tests;
