//! Every protocol constant and limit, in one place.
//!
//! The values here are normative: SPEC.md §2 lists the same numbers, and a
//! decoder that accepted anything beyond them would not interoperate.

/// Plaintext bytes per STREAM chunk (256 KiB). The last chunk may be shorter.
pub const CHUNK_SIZE: usize = 256 * 1024;
/// Bytes of Poly1305 tag appended to every ciphertext chunk.
pub const TAG_SIZE: usize = 16;
/// Bytes of one ciphertext chunk that carries a full plaintext chunk.
pub const CIPHERTEXT_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_SIZE;
/// The smallest padded plaintext length: every clip occupies at least this much.
pub const MIN_PADDED_LEN: u64 = 64 * 1024;
/// The largest content (and padded) length of a clip: 1 GiB.
pub const MAX_CLIP_LEN: u64 = 1 << 30;
/// The most chunks a manifest can name (`MAX_CLIP_LEN / CHUNK_SIZE`).
pub const MAX_CHUNKS: u32 = (MAX_CLIP_LEN / CHUNK_SIZE as u64) as u32;

/// Longest duration of a video message, in milliseconds (3 minutes).
pub const MAX_CLIP_DURATION_MS: u32 = 180_000;
/// Longest duration of a reaction clip ("flik"), in milliseconds.
pub const MAX_REACTION_DURATION_MS: u32 = 5_000;
/// Longest duration of one live segment, in milliseconds.
pub const MAX_LIVE_SEGMENT_DURATION_MS: u32 = 10_000;

/// One hour, in milliseconds.
pub const HOUR_MS: u64 = 60 * 60 * 1000;
/// One day, in milliseconds.
pub const DAY_MS: u64 = 24 * HOUR_MS;
/// Default lifetime of a clip or reaction: 14 days.
pub const DEFAULT_CLIP_TTL_MS: u64 = 14 * DAY_MS;
/// Longest lifetime of a clip or reaction: 14 days.
pub const MAX_CLIP_TTL_MS: u64 = 14 * DAY_MS;
/// Longest lifetime of a live segment (the live replay window): 24 hours.
pub const MAX_LIVE_TTL_MS: u64 = DAY_MS;
/// How far in the future a sender's `created_at` may lie before a receiver rejects it.
pub const MAX_CLOCK_SKEW_MS: u64 = 10 * 60 * 1000;

/// A signed prekey is replaced after this long.
pub const SIGNED_PREKEY_ROTATION_MS: u64 = 2 * DAY_MS;
/// A sender refuses a signed prekey older than this (rotation plus slack for offline devices).
pub const SIGNED_PREKEY_MAX_AGE_MS: u64 = 7 * DAY_MS;
/// A signed prekey's secret is erased this long after its `created_at`: a sender may use it for
/// up to [`SIGNED_PREKEY_MAX_AGE_MS`], and what it sealed lives at most [`MAX_CLIP_TTL_MS`].
pub const SIGNED_PREKEY_ERASE_AFTER_MS: u64 =
    SIGNED_PREKEY_MAX_AGE_MS + MAX_CLIP_TTL_MS + MAX_CLOCK_SKEW_MS;
/// A sender ignores a one-time prekey older than this and uses the signed prekey instead.
pub const ONE_TIME_PREKEY_MAX_AGE_MS: u64 = 7 * DAY_MS;
/// An unused one-time prekey's secret is erased this long after its `created_at`.
pub const ONE_TIME_PREKEY_ERASE_AFTER_MS: u64 =
    ONE_TIME_PREKEY_MAX_AGE_MS + MAX_CLIP_TTL_MS + MAX_CLOCK_SKEW_MS;
/// The most one-time prekeys a device keeps unused at once.
pub const MAX_ONE_TIME_PREKEYS: usize = 200;
/// The most retired signed prekeys a device keeps at once.
pub const MAX_RETIRED_SIGNED_PREKEYS: usize = 16;

/// Longest media type, in bytes.
pub const MAX_MEDIA_TYPE_LEN: usize = 64;
/// Longest display name on a contact card, in bytes of UTF-8.
pub const MAX_DISPLAY_NAME_LEN: usize = 64;
/// Most relay addresses on a contact card.
pub const MAX_RELAYS: usize = 8;
/// Longest relay address on a contact card, in bytes of UTF-8.
pub const MAX_RELAY_ADDR_LEN: usize = 256;
/// Most overlay peers a live key names (LIVE.md §3.3).
pub const MAX_LIVE_PEERS: usize = 8;
/// Most entries a [`crate::revocation::RevocationLedger`] holds by default.
pub const DEFAULT_LEDGER_CAPACITY: usize = 1 << 20;

/// Longest transport peer id (a libp2p multihash) the mailbox protocol carries.
pub const MAX_PEER_ID_LEN: usize = 64;
/// Most one-time prekeys one publish request carries.
pub const MAX_PREKEYS_PER_PUBLISH: usize = 100;
/// Most mailbox entries one list response carries.
pub const MAX_LIST_ENTRIES: usize = 64;
/// Most sequence numbers one acknowledgement carries.
pub const MAX_ACKS: usize = 256;
/// Most direct-dial addresses one Announce (or Located) carries.
pub const MAX_ANNOUNCE_ADDRS: usize = 8;
/// Longest direct-dial address (a binary multiaddr) in an Announce or Located, in bytes.
pub const MAX_ADDR_LEN: usize = 256;
/// Longest human-readable error detail in a response, in bytes.
pub const MAX_ERROR_DETAIL_LEN: usize = 256;
/// Largest encoded manifest (one with [`MAX_CHUNKS`] chunk hashes).
pub const MAX_MANIFEST_LEN: usize = crate::manifest::Manifest::FIXED_LEN + 32 * MAX_CHUNKS as usize;
