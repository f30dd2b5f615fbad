//! What can go wrong in the store, typed so the relay can answer with the
//! matching mailbox error code.

use std::io;

use mayfly_protocol::mailbox::ErrorCode;

/// A store operation failed. Nothing was changed unless the variant says so:
/// every operation is one transaction that commits whole or not at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No such mailbox, message, chunk or bundle.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The request conflicts with what is stored (another manifest for a known
    /// message id, another envelope for a known deposit, a chunk that is not
    /// the manifest's).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A quota is exhausted (mailbox, depositor, store, tombstones, identities).
    #[error("quota exceeded: {0}")]
    QuotaExceeded(&'static str),
    /// Something is larger than a limit allows, or a range lies outside a chunk.
    #[error("too large: {0}")]
    TooLarge(&'static str),
    /// The message is revoked: a tombstone exists.
    #[error("the message is revoked")]
    Revoked,
    /// The message is expired, or its expiry lies too far in the future.
    #[error("expired: {0}")]
    Expired(&'static str),
    /// A device certificate older than the one on record (one active device per identity).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A signature, kind or timestamp that the protocol refuses.
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// The files are inconsistent (a value that does not decrypt or decode, a missing key).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The key file could not be read or written.
    #[error("store I/O error")]
    Io(#[from] io::Error),
    /// The database failed.
    #[error("database error")]
    Db(#[from] redb::Error),
}

impl StoreError {
    /// The mailbox error code a relay answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            Self::TooLarge(_) => ErrorCode::TooLarge,
            Self::Revoked => ErrorCode::Revoked,
            Self::Expired(_) => ErrorCode::Expired,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Invalid(_) => ErrorCode::Malformed,
            Self::Corrupt(_) | Self::Io(_) | Self::Db(_) => ErrorCode::Internal,
        }
    }

    pub(super) fn corrupt(what: impl Into<String>) -> Self {
        Self::Corrupt(what.into())
    }
}

crate::redb_errors::from_redb!(StoreError);
