//! Per-peer token buckets (RELAY.md §5.5: request rates per peer).

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;

use crate::config::RateLimits;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One token bucket per peer, at most `max_peers` of them: when the map is
/// full, buckets that have refilled (which carry no information) are
/// forgotten, and if none has, the emptiest-looking one is kept and an
/// arbitrary other one dropped.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    buckets: HashMap<PeerId, Bucket>,
}

impl RateLimiter {
    /// Buckets under `limits`.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            buckets: HashMap::new(),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens =
            (b.tokens + elapsed * self.limits.requests_per_sec).min(f64::from(self.limits.burst));
        b.at = now;
    }

    /// Takes a token from `peer`'s bucket at `now`; false if it is empty.
    pub fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        if !self.buckets.contains_key(&peer) && self.buckets.len() >= self.limits.max_peers {
            self.evict(now);
        }
        let burst = f64::from(self.limits.burst);
        let mut bucket = self.buckets.get(&peer).copied().unwrap_or(Bucket {
            tokens: burst,
            at: now,
        });
        self.refill(&mut bucket, now);
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        self.buckets.insert(peer, bucket);
        allowed
    }

    fn evict(&mut self, now: Instant) {
        let burst = f64::from(self.limits.burst);
        let rate = self.limits.requests_per_sec;
        self.buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            b.tokens + elapsed * rate < burst
        });
        if self.buckets.len() >= self.limits.max_peers
            && let Some(peer) = self.buckets.keys().next().copied()
        {
            self.buckets.remove(&peer);
        }
    }

    /// Peers with a bucket.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True if no peer has a bucket.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_empties_and_refills_and_the_map_stays_bounded() {
        let mut r = RateLimiter::new(RateLimits {
            requests_per_sec: 10.0,
            burst: 3,
            max_peers: 4,
        });
        let t = Instant::now();
        let p = PeerId::random();
        assert!((0..3).all(|_| r.allow(p, t)));
        assert!(!r.allow(p, t));
        assert!(r.allow(p, t + Duration::from_millis(110)));
        for _ in 0..100 {
            r.allow(PeerId::random(), t);
        }
        assert!(r.len() <= 4);
    }
}
