//! What can go wrong with the home directory, one clear line each.

use std::io;
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// A home directory operation failed. Every change is one database
/// transaction (plus its slot writes), so a failed operation changed nothing
/// unless the variant says otherwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    /// `Home::create` found a home already there.
    #[error("a mayfly home already exists in {}", dir.display())]
    AlreadyInitialized {
        /// The home directory.
        dir: PathBuf,
    },
    /// `Home::open` found no home.
    #[error("no mayfly home in {} (create one first)", dir.display())]
    NotInitialized {
        /// The directory that was opened.
        dir: PathBuf,
    },
    /// The directory's lock is held by another process (or another `Home`).
    #[error("another mayfly process is using {}", dir.display())]
    InUse {
        /// The home directory.
        dir: PathBuf,
    },
    /// This home's device was replaced by a newer device of its identity,
    /// and erased its messages and secrets (CLIENT.md §3.3).
    #[error(
        "the device in {} (#{serial}) was replaced by device #{by_serial} of the same identity and has erased its messages and keys: use the new device",
        dir.display()
    )]
    Superseded {
        /// The home directory.
        dir: PathBuf,
        /// This device's serial.
        serial: u64,
        /// The serial of the device that replaced it.
        by_serial: u64,
    },
    /// No contact has this name or identity key prefix.
    #[error("no contact is named {0:?} or has an identity key starting with it")]
    UnknownContact(String),
    /// More than one contact has this name or identity key prefix.
    #[error("{0:?} matches more than one contact; use more of the identity key")]
    AmbiguousContact(String),
    /// The card to add as a contact is this home's own.
    #[error("that is your own card: give it to others, and add theirs")]
    OwnCard,
    /// A flik name outside `[a-z0-9-]{1,32}`.
    #[error("invalid flik name {0:?}: use 1 to 32 characters among a-z, 0-9 and -")]
    InvalidName(String),
    /// No flik has this name.
    #[error("no flik named {0:?}")]
    UnknownFlik(String),
    /// An argument the home refuses (a field too long, a mismatched id).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The protocol refused something (e.g. a card field breaking a limit).
    #[error("protocol error: {0}")]
    Protocol(#[from] mayfly_protocol::Error),
    /// A file or record does not decode, or the files disagree.
    #[error("corrupt home: {0}")]
    Corrupt(String),
    /// A file could not be read or written.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The database failed.
    #[error("database error in client.redb: {0}")]
    Db(#[from] redb::Error),
}

impl HomeError {
    pub(super) fn corrupt(what: impl Into<String>) -> Self {
        Self::Corrupt(what.into())
    }

    pub(super) fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Maps a slot-file error (from the shared relay key-file code).
    pub(super) fn slots(path: &Path, e: StoreError) -> Self {
        match e {
            StoreError::Io(source) => Self::io(path, source),
            StoreError::Db(e) => Self::Db(e),
            StoreError::Corrupt(s) => Self::Corrupt(s),
            other => Self::Corrupt(other.to_string()),
        }
    }
}

/// Adds the path to an I/O error.
pub(super) trait IoAt<T> {
    /// The error, with `path`.
    fn at(self, path: &Path) -> Result<T, HomeError>;
}

impl<T> IoAt<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, HomeError> {
        self.map_err(|e| HomeError::io(path, e))
    }
}

crate::redb_errors::from_redb!(HomeError);

impl From<mayfly_protocol::DecodeError> for HomeError {
    fn from(e: mayfly_protocol::DecodeError) -> Self {
        Self::Corrupt(format!("a record does not decode: {e}"))
    }
}
