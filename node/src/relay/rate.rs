//! Per-peer token buckets (RELAY.md §5.5: request rates per peer), one
//! kind for every request and one for each costly operation.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;
use mayfly_protocol::mailbox::Request;

use crate::config::RateLimits;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// What a refused request ran out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limited {
    /// Requests of any kind.
    Requests,
    /// Deposits.
    Deposits,
    /// Prekey bundles.
    Bundles,
    /// Locate requests.
    Locates,
    /// Revocations.
    Revocations,
    /// PutChunk and GetChunk requests on their own request streams.
    Chunks,
}

impl Limited {
    /// The bucket kind a request takes a token from besides the general
    /// one, if any.
    fn of(request: &Request) -> Option<Self> {
        match request {
            Request::Deposit { .. } => Some(Self::Deposits),
            Request::FetchBundle { .. } => Some(Self::Bundles),
            Request::Locate { .. } => Some(Self::Locates),
            Request::Revoke(_) => Some(Self::Revocations),
            _ => None,
        }
    }

    /// The error detail a refused request is answered with.
    pub fn detail(self) -> &'static str {
        match self {
            Self::Requests => "too many requests",
            Self::Deposits => "too many deposits",
            Self::Bundles => "too many prekey bundle requests",
            Self::Locates => "too many locate requests",
            Self::Revocations => "too many revocations",
            Self::Chunks => "too many chunk requests",
        }
    }
}

/// One token bucket per peer, at most `max_peers` of them: when the map is
/// full, buckets that have refilled (which carry no information) are
/// forgotten, and if none has, the emptiest-looking one is kept and an
/// arbitrary other one dropped.
#[derive(Debug)]
pub struct Buckets {
    per_sec: f64,
    burst: f64,
    max_peers: usize,
    buckets: HashMap<PeerId, Bucket>,
}

impl Buckets {
    /// Buckets of `burst` tokens refilled at `per_sec`, for at most
    /// `max_peers` peers.
    pub fn new(per_sec: f64, burst: u32, max_peers: usize) -> Self {
        Self {
            per_sec,
            burst: f64::from(burst),
            max_peers: max_peers.max(1),
            buckets: HashMap::new(),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_sec).min(self.burst);
        b.at = now;
    }

    /// True if `peer`'s bucket holds a token at `now`.
    fn has_token(&mut self, peer: PeerId, now: Instant) -> bool {
        self.bucket(peer, now).tokens >= 1.0
    }

    /// Takes a token from `peer`'s bucket at `now`; false if it is empty.
    pub fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        let mut bucket = self.bucket(peer, now);
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        self.buckets.insert(peer, bucket);
        allowed
    }

    /// `peer`'s bucket refilled to `now` (a full new one if it had none).
    fn bucket(&mut self, peer: PeerId, now: Instant) -> Bucket {
        if !self.buckets.contains_key(&peer) && self.buckets.len() >= self.max_peers {
            self.evict(now);
        }
        let mut bucket = self.buckets.get(&peer).copied().unwrap_or(Bucket {
            tokens: self.burst,
            at: now,
        });
        self.refill(&mut bucket, now);
        bucket
    }

    fn evict(&mut self, now: Instant) {
        let (burst, rate) = (self.burst, self.per_sec);
        self.buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            b.tokens + elapsed * rate < burst
        });
        if self.buckets.len() >= self.max_peers
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

/// Every bucket kind of [`RateLimits`].
#[derive(Debug)]
pub struct RateLimiter {
    requests: Buckets,
    deposits: Buckets,
    bundles: Buckets,
    locates: Buckets,
    revocations: Buckets,
    chunks: Buckets,
}

impl RateLimiter {
    /// Buckets under `limits`.
    pub fn new(limits: RateLimits) -> Self {
        let n = limits.max_peers;
        Self {
            requests: Buckets::new(limits.requests_per_sec, limits.burst, n),
            deposits: Buckets::new(limits.deposits_per_sec, limits.deposit_burst, n),
            bundles: Buckets::new(limits.bundles_per_sec, limits.bundle_burst, n),
            locates: Buckets::new(limits.locates_per_sec, limits.locate_burst, n),
            revocations: Buckets::new(limits.revocations_per_sec, limits.revocation_burst, n),
            chunks: Buckets::new(limits.chunk_requests_per_sec, limits.chunk_request_burst, n),
        }
    }

    fn kind(&mut self, kind: Limited) -> &mut Buckets {
        match kind {
            Limited::Requests => &mut self.requests,
            Limited::Deposits => &mut self.deposits,
            Limited::Bundles => &mut self.bundles,
            Limited::Locates => &mut self.locates,
            Limited::Revocations => &mut self.revocations,
            Limited::Chunks => &mut self.chunks,
        }
    }

    /// Takes `peer`'s tokens for `request` at `now`: one from the general
    /// bucket and one from its own kind's, if it has one. A refused request
    /// takes nothing, and says which bucket was empty.
    ///
    /// A PutChunk or GetChunk (or a replay's ReplayPut or ReplayGet, which
    /// carry pieces of segments) takes its token from the chunk bucket alone,
    /// so a large clip does not use up the requests every other operation
    /// needs; and one that came on a chunk stream (`on_chunk_stream`) takes
    /// none at all: the stream's server shapes its bytes instead
    /// (`net::shaper`), so a legal clip is slowed, never refused.
    pub fn check(
        &mut self,
        peer: PeerId,
        request: &Request,
        on_chunk_stream: bool,
        now: Instant,
    ) -> Result<(), Limited> {
        if matches!(
            request,
            Request::PutChunk { .. }
                | Request::GetChunk { .. }
                | Request::ReplayPut { .. }
                | Request::ReplayGet { .. }
        ) {
            return match on_chunk_stream || self.chunks.allow(peer, now) {
                true => Ok(()),
                false => Err(Limited::Chunks),
            };
        }
        if !self.requests.has_token(peer, now) {
            return Err(Limited::Requests);
        }
        if let Some(kind) = Limited::of(request)
            && !self.kind(kind).allow(peer, now)
        {
            return Err(kind);
        }
        self.requests.allow(peer, now);
        Ok(())
    }

    /// Peers with a bucket of any kind, counted per kind.
    pub fn len(&self) -> usize {
        [
            &self.requests,
            &self.deposits,
            &self.bundles,
            &self.locates,
            &self.revocations,
            &self.chunks,
        ]
        .iter()
        .map(|b| b.len())
        .sum()
    }

    /// True if no peer has a bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mayfly_protocol::SigningSecret;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn a_bucket_empties_and_refills_and_the_map_stays_bounded() {
        let mut r = Buckets::new(10.0, 3, 4);
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

    #[test]
    fn costly_requests_have_their_own_bucket_and_a_refusal_takes_nothing() {
        let mut r = RateLimiter::new(RateLimits {
            requests_per_sec: 1.0,
            burst: 5,
            bundles_per_sec: 1.0,
            bundle_burst: 2,
            ..RateLimits::default()
        });
        let key = SigningSecret::generate(&mut ChaCha20Rng::seed_from_u64(1)).public();
        let bundle = Request::FetchBundle { identity_key: key };
        let (t, p) = (Instant::now(), PeerId::random());
        assert_eq!(r.check(p, &bundle, false, t), Ok(()));
        assert_eq!(r.check(p, &bundle, false, t), Ok(()));
        assert_eq!(r.check(p, &bundle, false, t), Err(Limited::Bundles));
        // The refused bundle took no general token: three are left.
        for _ in 0..3 {
            assert_eq!(r.check(p, &Request::Challenge, false, t), Ok(()));
        }
        assert_eq!(
            r.check(p, &Request::Challenge, false, t),
            Err(Limited::Requests)
        );
        // Another peer has buckets of its own.
        assert_eq!(r.check(PeerId::random(), &bundle, false, t), Ok(()));
    }

    #[test]
    fn chunks_never_use_up_the_general_requests_and_streamed_ones_take_nothing() {
        let mut r = RateLimiter::new(RateLimits {
            requests_per_sec: 1.0,
            burst: 2,
            chunk_requests_per_sec: 1.0,
            chunk_request_burst: 3,
            ..RateLimits::default()
        });
        let get = Request::GetChunk {
            hash: [7; 32],
            offset: 0,
            length: 0,
        };
        let (t, p) = (Instant::now(), PeerId::random());
        // A whole large clip on chunk streams: nothing is counted.
        for _ in 0..10_000 {
            assert_eq!(r.check(p, &get, true, t), Ok(()));
        }
        // On request streams, the chunk bucket alone.
        for _ in 0..3 {
            assert_eq!(r.check(p, &get, false, t), Ok(()));
        }
        assert_eq!(r.check(p, &get, false, t), Err(Limited::Chunks));
        // The general requests are all still there.
        for _ in 0..2 {
            assert_eq!(r.check(p, &Request::Challenge, false, t), Ok(()));
        }
        assert_eq!(
            r.check(p, &Request::Challenge, false, t),
            Err(Limited::Requests)
        );
    }
}
