//! Per-peer byte shaping for chunk streams (RELAY.md §5.5): a peer may move
//! `burst` bytes at once and `per_sec` on average; beyond that the server
//! reads its next frame later instead of refusing it, so a large clip is
//! slowed to the rate, never failed.
//!
//! This is the generic cell rate algorithm over bytes: each peer has a
//! theoretical arrival time `tat`, which every frame pushes on by its size
//! divided by the rate; a frame may be read once `tat` is less than
//! `burst / per_sec` ahead of now. A peer whose `tat` has passed carries no
//! state worth keeping, so the map holds only peers that have used their
//! burst recently, and at most `max_peers` of them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Byte shaping per peer.
#[derive(Debug)]
pub struct Shaper {
    per_sec: f64,
    tolerance: Duration,
    max_peers: usize,
    tat: HashMap<PeerId, Instant>,
}

impl Shaper {
    /// `per_sec` bytes a second on average, `burst` at once, remembered for
    /// at most `max_peers` peers. A rate of zero or less shapes nothing.
    pub fn new(per_sec: f64, burst: u64, max_peers: usize) -> Self {
        let tolerance = if per_sec > 0.0 {
            Duration::try_from_secs_f64(burst as f64 / per_sec).unwrap_or(Duration::MAX)
        } else {
            Duration::MAX
        };
        Self {
            per_sec,
            tolerance,
            max_peers: max_peers.max(1),
            tat: HashMap::new(),
        }
    }

    /// How long `peer` must wait at `now` before its next frame is read.
    pub fn delay(&self, peer: &PeerId, now: Instant) -> Duration {
        match self.tat.get(peer) {
            Some(&tat) => tat
                .saturating_duration_since(now)
                .saturating_sub(self.tolerance),
            None => Duration::ZERO,
        }
    }

    /// Counts `bytes` moved for `peer` at `now`.
    pub fn charge(&mut self, peer: PeerId, bytes: u64, now: Instant) {
        if self.per_sec <= 0.0 || self.tolerance == Duration::MAX {
            return;
        }
        let cost = Duration::try_from_secs_f64(bytes as f64 / self.per_sec)
            .unwrap_or(Duration::from_secs(3600));
        if !self.tat.contains_key(&peer) && self.tat.len() >= self.max_peers {
            self.tat.retain(|_, tat| *tat > now);
            if self.tat.len() >= self.max_peers {
                // Every remembered peer is still shaped: forget the one
                // closest to being free, which loses the least.
                if let Some(p) = self.tat.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p) {
                    self.tat.remove(&p);
                }
            }
        }
        let tat = self.tat.get(&peer).copied().unwrap_or(now).max(now);
        self.tat.insert(peer, tat + cost);
    }

    /// Peers remembered.
    pub fn len(&self) -> usize {
        self.tat.len()
    }

    /// True if no peer is remembered.
    pub fn is_empty(&self) -> bool {
        self.tat.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_then_the_rate_holds() {
        // 1 MB/s, 4 MB at once.
        let mut s = Shaper::new(1e6, 4_000_000, 16);
        let (p, t) = (PeerId::random(), Instant::now());
        for _ in 0..4 {
            assert_eq!(s.delay(&p, t), Duration::ZERO);
            s.charge(p, 1_000_000, t);
        }
        // The burst is spent: the next megabyte waits a second.
        s.charge(p, 1_000_000, t);
        assert_eq!(s.delay(&p, t), Duration::from_secs(1));
        assert_eq!(
            s.delay(&p, t + Duration::from_millis(400)),
            Duration::from_millis(600)
        );
        // Another peer is not held up.
        assert_eq!(s.delay(&PeerId::random(), t), Duration::ZERO);
        // Idle time refills the burst, and no more than it.
        let later = t + Duration::from_secs(60);
        for _ in 0..4 {
            assert_eq!(s.delay(&p, later), Duration::ZERO);
            s.charge(p, 1_000_000, later);
        }
        s.charge(p, 1_000_000, later);
        assert_eq!(s.delay(&p, later), Duration::from_secs(1));
    }

    #[test]
    fn the_map_stays_bounded() {
        let mut s = Shaper::new(1.0, 1, 8);
        let t = Instant::now();
        for _ in 0..100 {
            s.charge(PeerId::random(), 1000, t);
        }
        assert!(s.len() <= 8);
    }
}
