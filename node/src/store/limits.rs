//! Every quota of the store, with its default, in one place.

use mayfly_protocol::{
    DEFAULT_LEDGER_CAPACITY, MAX_CHUNKS, MAX_CLIP_LEN, MAX_ONE_TIME_PREKEYS, TAG_SIZE,
};

const GIB: u64 = 1 << 30;

impl StoreLimits {
    /// [`StoreLimits::pending_ttl_secs`] in milliseconds.
    pub fn pending_ttl_ms(&self) -> u64 {
        self.pending_ttl_secs.saturating_mul(1000)
    }
}

/// The store's quotas. Each is checked before anything is written; a request
/// that would break one fails with [`super::StoreError::QuotaExceeded`] or
/// [`super::StoreError::TooLarge`] and changes nothing.
///
/// Sizes count a clip's ciphertext as its manifest declares it
/// ([`mayfly_protocol::Manifest::ciphertext_len`]), charged in full when the
/// envelope is deposited, before any chunk arrives: a partial upload holds
/// its whole clip's quota, never less than the chunks it stored. A pending
/// envelope gives its charge back when [`StoreLimits::pending_ttl_secs`]
/// runs out.
///
/// Deserializes from the relay configuration's `[store]` table: every key
/// optional, unknown keys refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreLimits {
    /// Largest clip ciphertext accepted. Default: the protocol's largest clip
    /// (`MAX_CLIP_LEN` + 16 bytes per chunk, about 1 GiB).
    pub max_clip_bytes: u64,
    /// Ciphertext bytes of all envelopes (pending and complete) of one mailbox. Default 4 GiB.
    pub mailbox_bytes: u64,
    /// Envelopes (pending and complete) in one mailbox. Default 1000.
    pub mailbox_entries: u64,
    /// Ciphertext bytes of all envelopes one depositing peer has in the store. Default 4 GiB.
    pub depositor_bytes: u64,
    /// Bytes of distinct messages (ciphertext and manifests) in the whole store. Default 64 GiB.
    pub total_bytes: u64,
    /// Distinct messages in the store; also the number of slots the key file
    /// may grow to (64 bytes each). Default 2^20 (a 64 MiB key file).
    pub max_messages: u32,
    /// Identities (mailboxes) the store serves. Default 2^20.
    pub max_identities: u64,
    /// Unused one-time prekeys kept per identity; a publish beyond it drops
    /// the oldest. Default `MAX_ONE_TIME_PREKEYS` (200).
    pub max_one_time_prekeys: u32,
    /// Tombstones kept (SPEC §11, §15.7). Default `DEFAULT_LEDGER_CAPACITY` (2^20).
    pub max_tombstones: u64,
    /// Seconds a deposit may stay pending (its clip's chunks not all
    /// stored) after the Deposit that created it; then the collector deletes
    /// the envelope as if its clip had expired, giving back what it charged,
    /// and the clip too unless another envelope refers to it (RELAY.md
    /// §5.2). A repeated Deposit, which resumes an upload, does not extend
    /// it. Default 6 hours: a 1 GiB clip, the largest, needs about 50 KB/s
    /// on average to finish in time, a 3-minute message (about 200 MB)
    /// about 10 KB/s; an upload that breaks off holds its quota for hours,
    /// not until its clip expires (up to 14 days).
    pub pending_ttl_secs: u64,
    /// Most expired messages, most abandoned envelopes
    /// ([`StoreLimits::pending_ttl_secs`]), and most tombstones one
    /// [`super::RelayStore::collect`] call deletes, so that one transaction
    /// stays bounded. Default 256.
    pub collect_batch: u32,
    /// Bytes of page cache the database may hold in memory. Default 64 MiB:
    /// redb's own default (1 GiB) would let a busy relay's resident memory
    /// grow far past what small hosts have.
    pub cache_bytes: u64,
    /// Bytes of live replay segments one broadcaster may have at the relay
    /// (RELAY.md §5.7). Default 4 GiB: about 6 hours of a 1.5 Mbit/s stream.
    pub replay_bytes: u64,
    /// Bytes of live replay segments at the relay in all. Default 64 GiB.
    pub replay_total_bytes: u64,
    /// Replays (and replay tombstones) one broadcaster may have at the
    /// relay at once. Default 64.
    pub replays_per_broadcaster: u64,
    /// Replay segments at the relay in all; also the number of slots
    /// `replay.slots` may grow to (64 bytes each). Default 2^20.
    pub max_replay_segments: u32,
    /// Replay viewers' joins kept with one replay (each at most 828
    /// bytes). Default 1024.
    pub replay_watches: u32,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_clip_bytes: MAX_CLIP_LEN + u64::from(MAX_CHUNKS) * TAG_SIZE as u64,
            mailbox_bytes: 4 * GIB,
            mailbox_entries: 1000,
            depositor_bytes: 4 * GIB,
            total_bytes: 64 * GIB,
            max_messages: 1 << 20,
            max_identities: 1 << 20,
            max_one_time_prekeys: MAX_ONE_TIME_PREKEYS as u32,
            max_tombstones: DEFAULT_LEDGER_CAPACITY as u64,
            pending_ttl_secs: 6 * 3600,
            collect_batch: 256,
            cache_bytes: 64 * 1024 * 1024,
            replay_bytes: 4 * GIB,
            replay_total_bytes: 64 * GIB,
            replays_per_broadcaster: 64,
            max_replay_segments: 1 << 20,
            replay_watches: 1024,
        }
    }
}
