//! Time as the protocol sees it: milliseconds since the Unix epoch, always passed in.

use core::fmt;

/// A point in time, in milliseconds since 1970-01-01T00:00:00Z (UTC, leap seconds ignored).
///
/// The protocol never reads a clock: every operation that depends on time takes `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// This time plus `ms`, saturating at the end of representable time.
    pub fn plus(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, or 0 if `earlier` is later.
    pub fn since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for UnixMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}
