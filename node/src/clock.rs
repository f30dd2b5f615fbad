//! Where the node reads the time, client and relay alike: the system clock,
//! shifted by an offset that tests use to jump ahead (expiry) without
//! sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use mayfly_protocol::UnixMillis;

/// The node's clock: system time plus an adjustable offset.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// A clock `offset_ms` ahead of (or, if negative, behind) the system's.
    pub fn with_offset(offset_ms: i64) -> Self {
        Self {
            offset_ms: AtomicI64::new(offset_ms),
        }
    }

    /// Moves the clock `ms` further ahead.
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// The current time.
    pub fn now(&self) -> UnixMillis {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        UnixMillis(
            system
                .saturating_add(self.offset_ms.load(Ordering::Relaxed))
                .max(0) as u64,
        )
    }
}
