//! Typed errors of the protocol crate.

use thiserror::Error;

/// Why a byte string was not a valid encoding. Decoders check limits before
/// allocating, so a `DecodeError` never follows a large allocation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the structure did.
    #[error("input is truncated")]
    Truncated,
    /// Bytes follow the end of the structure.
    #[error("{0} trailing bytes after the structure")]
    TrailingBytes(usize),
    /// The type byte names another structure.
    #[error("expected structure type {expected:#04x}, found {found:#04x}")]
    WrongType {
        /// The type byte this decoder reads.
        expected: u8,
        /// The type byte in the input.
        found: u8,
    },
    /// The version byte is not one this implementation speaks.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// A length or count exceeds its limit.
    #[error("{field} exceeds its limit of {limit}")]
    TooLong {
        /// The field that was too long.
        field: &'static str,
        /// Its limit.
        limit: usize,
    },
    /// A field has a value that no encoder produces.
    #[error("non-canonical {0}")]
    NonCanonical(&'static str),
    /// A field is outside its allowed range.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// A public key is not a canonical, non-degenerate curve point.
    #[error("invalid public key")]
    InvalidKey,
    /// A text field is not valid UTF-8 or contains forbidden characters.
    #[error("invalid text in {0}")]
    InvalidText(&'static str),
    /// A signature carried inside the structure does not verify.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// The text form's prefix is missing.
    #[error("missing prefix {0:?}")]
    BadPrefix(&'static str),
    /// The text form's checksum does not match.
    #[error("checksum mismatch")]
    BadChecksum,
}

/// Errors of the protocol operations.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// Malformed input.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// Decryption or authentication failed. Deliberately says nothing more.
    #[error("decryption failed")]
    Decrypt,
    /// A signature on a public structure did not verify.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// The structure is signed by an identity or device other than the expected one.
    #[error("signed by an unexpected key")]
    WrongSigner,
    /// The clip, prekey or record is past its expiry.
    #[error("expired")]
    Expired,
    /// A timestamp lies too far in the future.
    #[error("timestamp is in the future")]
    FromTheFuture,
    /// Parameters given to a sealing or issuing operation break a protocol limit.
    #[error("invalid parameters: {0}")]
    InvalidParams(&'static str),
    /// A streaming operation was driven out of order (more chunks than declared, wrong length).
    #[error("stream misuse: {0}")]
    Stream(&'static str),
    /// A bounded collection is full.
    #[error("capacity of {0} reached")]
    Full(&'static str),
    /// An I/O error of a caller-provided reader or writer (convenience helpers only).
    #[error("i/o: {0}")]
    Io(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
