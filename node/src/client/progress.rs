//! Progress of uploads and downloads, for progress bars.

use std::sync::Arc;

/// Where a transfer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// A transfer starts: `total` bytes to `label`.
    Start {
        /// What is transferred where (e.g. "bob via relay").
        label: String,
        /// Bytes in all.
        total: u64,
    },
    /// `bytes` more were transferred for `label`.
    Advance {
        /// The transfer.
        label: String,
        /// Bytes just done.
        bytes: u64,
    },
    /// The transfer for `label` finished.
    Finish {
        /// The transfer.
        label: String,
    },
}

/// A progress callback; cheap to clone.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// A callback that ignores progress.
pub fn none() -> ProgressFn {
    Arc::new(|_| {})
}
