//! The node's libp2p identity: an Ed25519 keypair kept in `<home>/node.key`
//! (libp2p's protobuf key encoding), created on first start and reused after,
//! so the node's peer id is stable across restarts.
//!
//! The file is created with mode 0600 and appears atomically: it is written
//! to a temporary file, synced, then hard-linked into place, which fails
//! rather than overwrites when another process got there first. A file that
//! exists but cannot be read or decoded is an error and is never replaced: it
//! is the node's identity, and replacing it would silently change the peer id
//! every client knows it by.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use libp2p::PeerId;
use libp2p::identity::{KeyType, Keypair};
use zeroize::Zeroizing;

/// The key file's name inside the node's home directory.
pub const NODE_KEY_FILE: &str = "node.key";

/// The node's keypair and where it came from.
#[derive(Debug)]
pub struct NodeKey {
    /// The keypair.
    pub keypair: Keypair,
    /// The file it is kept in.
    pub path: PathBuf,
    /// Whether this start created it.
    pub created: bool,
}

impl NodeKey {
    /// The peer id derived from the key.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }
}

/// Why the node key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    /// The home directory could not be created.
    #[error("cannot create home directory {path}")]
    CreateHome {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The key file exists but could not be read.
    #[error("cannot read node key {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The key file does not hold a libp2p keypair.
    #[error(
        "node key {path} is corrupt ({reason}); it was left as it is: restore it from a backup, or move it away to start with a new peer id"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The key file holds a keypair of another type.
    #[error("node key {path} holds a {key_type} key, not an Ed25519 one")]
    WrongKeyType {
        /// The file.
        path: PathBuf,
        /// The type found.
        key_type: KeyType,
    },
    /// A new key file could not be written.
    #[error("cannot write node key {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Loads `<home>/node.key`, or creates it (and `home`, mode 0700) if it does
/// not exist.
pub fn load_or_create(home: &Path) -> Result<NodeKey, NodeKeyError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .map_err(|source| NodeKeyError::CreateHome {
            path: home.to_owned(),
            source,
        })?;
    let path = home.join(NODE_KEY_FILE);
    match load(&path) {
        Err(NodeKeyError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    let keypair = Keypair::generate_ed25519();
    match create(home, &path, &keypair) {
        Ok(()) => Ok(NodeKey {
            keypair,
            path,
            created: true,
        }),
        // Another process created it between our read and our link: use its.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load(&path),
        Err(source) => Err(NodeKeyError::Write { path, source }),
    }
}

/// Loads an existing key file.
pub fn load(path: &Path) -> Result<NodeKey, NodeKeyError> {
    let bytes = Zeroizing::new(fs::read(path).map_err(|source| NodeKeyError::Read {
        path: path.to_owned(),
        source,
    })?);
    let keypair = Keypair::from_protobuf_encoding(&bytes).map_err(|e| NodeKeyError::Corrupt {
        path: path.to_owned(),
        reason: error_chain(&e),
    })?;
    if keypair.key_type() != KeyType::Ed25519 {
        return Err(NodeKeyError::WrongKeyType {
            path: path.to_owned(),
            key_type: keypair.key_type(),
        });
    }
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "node key is accessible to other users (mode {mode:o}); `chmod 600` it"
            );
        }
    }
    Ok(NodeKey {
        keypair,
        path: path.to_owned(),
        created: false,
    })
}

/// Writes `keypair` to `path` without ever leaving a partial file there, and
/// without replacing a file that appeared meanwhile.
fn create(home: &Path, path: &Path, keypair: &Keypair) -> io::Result<()> {
    let bytes = Zeroizing::new(keypair.to_protobuf_encoding().map_err(io::Error::other)?);
    let tmp = home.join(format!(".{NODE_KEY_FILE}.{}.tmp", std::process::id()));
    // A leftover from a crashed process that had our pid.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::hard_link(&tmp, path)
    })();
    let _ = fs::remove_file(&tmp);
    result?;
    // Make the new directory entry durable too.
    File::open(home)?.sync_all()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_mode_0600_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("a/b");
        let first = load_or_create(&home).unwrap();
        assert!(first.created);
        let meta = fs::metadata(home.join(NODE_KEY_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(&home).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let second = load_or_create(&home).unwrap();
        assert!(!second.created);
        assert_eq!(first.peer_id(), second.peer_id());
        // Nothing but the key is left behind.
        assert_eq!(fs::read_dir(&home).unwrap().count(), 1);
    }

    #[test]
    fn a_corrupt_or_empty_key_is_an_error_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(NODE_KEY_FILE);
        for contents in [&b""[..], b"not a key", &[0x08, 0x01, 0x12, 0x40][..]] {
            fs::write(&path, contents).unwrap();
            let e = load_or_create(dir.path()).unwrap_err();
            assert!(matches!(e, NodeKeyError::Corrupt { .. }), "{e}");
            assert!(e.to_string().contains("node.key"), "{e}");
            assert_eq!(fs::read(&path).unwrap(), contents);
        }
    }

    #[test]
    fn an_unreadable_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(NODE_KEY_FILE)).unwrap();
        let e = load_or_create(dir.path()).unwrap_err();
        assert!(matches!(e, NodeKeyError::Read { .. }), "{e}");
    }
}
