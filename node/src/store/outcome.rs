//! What store operations report back.

/// The answer to a deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposited {
    /// Chunk indices the store does not hold yet, strictly increasing: what
    /// the depositor still has to upload (empty once the clip is complete).
    pub missing: Vec<u32>,
    /// The sequence number this call gave the envelope, if it made the
    /// envelope complete (every chunk was already stored, e.g. the same clip
    /// deposited for a second recipient). The relay notifies the mailbox.
    /// `None` for a pending envelope and for a repeated deposit.
    pub listed: Option<u64>,
}

/// What one [`super::RelayStore::collect`] call deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectStats {
    /// Messages deleted, with every envelope, manifest and chunk of them:
    /// expired ones, and those whose last envelope was an abandoned upload.
    pub messages: u64,
    /// Envelopes deleted: with those messages, and abandoned ones.
    pub envelopes: u64,
    /// Of those envelopes, the ones deleted because their upload did not
    /// complete within [`super::StoreLimits::pending_ttl_secs`].
    pub abandoned: u64,
    /// Tombstones dropped past their `keep_until`.
    pub tombstones: u64,
    /// Live replay segments deleted 24 hours after they were produced.
    pub replay_segments: u64,
    /// Replay tombstones dropped past their `keep_until`.
    pub replay_tombstones: u64,
    /// True if a batch limit was reached and more may be due: call again.
    pub more: bool,
}

/// Counts for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Bytes of chunks, manifests and envelopes held (before sealing overhead).
    pub stored_bytes: u64,
    /// Bytes reserved by the distinct messages held (declared ciphertext and manifests).
    pub reserved_bytes: u64,
    /// Envelopes, pending and complete.
    pub envelopes: u64,
    /// Distinct chunks.
    pub chunks: u64,
    /// Distinct messages (clips).
    pub messages: u64,
    /// Tombstones.
    pub tombstones: u64,
    /// Identities served.
    pub identities: u64,
}
