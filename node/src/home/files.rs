//! The plain files of a home: the lock, `identity.key`, `device.key`,
//! `device.cert`, written atomically with mode 0600.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

use mayfly_protocol::{Codec, Device, DeviceCertificate, Identity, SigningSecret};
use zeroize::Zeroizing;

use super::error::{HomeError, IoAt};

/// The lock file.
pub const LOCK_FILE: &str = "lock";
/// The identity secret key: [`IDENTITY_MAGIC`] ‖ 32-byte Ed25519 seed.
pub const IDENTITY_FILE: &str = "identity.key";
/// The device secret key: [`DEVICE_MAGIC`] ‖ 32-byte Ed25519 seed.
pub const DEVICE_KEY_FILE: &str = "device.key";
/// The device certificate (its protocol encoding).
pub const DEVICE_CERT_FILE: &str = "device.cert";
/// First 16 bytes of `identity.key`.
pub const IDENTITY_MAGIC: [u8; 16] = *b"mayfly ident v1\n";
/// First 16 bytes of `device.key`.
pub const DEVICE_MAGIC: [u8; 16] = *b"mayfly devkey v1";
/// Suffix of a file being replaced by `device.key`/`device.cert`.
const NEW: &str = ".new";
/// Suffix of a temporary file before its rename.
const TMP: &str = ".tmp";

/// Takes the exclusive lock on `DIR/lock`, held while the returned file lives.
pub(super) fn lock(dir: &Path) -> Result<File, HomeError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(HomeError::InUse {
            dir: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(HomeError::io(&path, e)),
    }
}

/// Writes `bytes` to `DIR/name` through a synced temporary file (mode 0600)
/// renamed over it, then syncs the directory.
pub(super) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), HomeError> {
    let tmp = dir.join(format!("{name}{TMP}"));
    write_synced(&tmp, bytes)?;
    let path = dir.join(name);
    fs::rename(&tmp, &path).at(&path)?;
    sync_dir(dir)
}

/// Creates (or truncates) `path` with mode 0600, writes `bytes` and syncs it.
pub(super) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), HomeError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).at(path)?;
    f.write_all(bytes).at(path)?;
    f.sync_all().at(path)
}

/// Makes renames and new entries in `dir` durable (best effort where a
/// directory cannot be opened).
pub(super) fn sync_dir(dir: &Path) -> Result<(), HomeError> {
    if let Ok(d) = File::open(dir) {
        d.sync_all().at(dir)?;
    }
    Ok(())
}

fn secret_bytes(magic: &[u8; 16], secret: &SigningSecret) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(48));
    v.extend_from_slice(magic);
    v.extend_from_slice(secret.to_seed().as_ref());
    v
}

fn read_secret(path: &Path, magic: &[u8; 16]) -> Result<SigningSecret, HomeError> {
    let bytes = Zeroizing::new(fs::read(path).at(path)?);
    if bytes.len() != 48 || bytes[..16] != magic[..] {
        return Err(HomeError::corrupt(format!(
            "{} is not a Mayfly key file",
            path.display()
        )));
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&bytes[16..]);
    Ok(SigningSecret::from_seed(&seed))
}

/// Writes `identity.key`.
pub(super) fn write_identity(dir: &Path, identity: &Identity) -> Result<(), HomeError> {
    write_atomic(
        dir,
        IDENTITY_FILE,
        &secret_bytes(&IDENTITY_MAGIC, identity.secret()),
    )
}

/// Reads `identity.key`.
pub(super) fn read_identity(dir: &Path) -> Result<Identity, HomeError> {
    Ok(Identity::from_secret(read_secret(
        &dir.join(IDENTITY_FILE),
        &IDENTITY_MAGIC,
    )?))
}

/// Replaces `device.key` and `device.cert`: both are written as `*.new`
/// files and synced, then renamed key first, certificate second. A crash
/// in between is finished by [`read_device`].
pub(super) fn write_device(dir: &Path, device: &Device) -> Result<(), HomeError> {
    let key_new = dir.join(format!("{DEVICE_KEY_FILE}{NEW}"));
    let cert_new = dir.join(format!("{DEVICE_CERT_FILE}{NEW}"));
    write_synced(&key_new, &secret_bytes(&DEVICE_MAGIC, device.secret()))?;
    write_synced(&cert_new, &device.certificate().to_bytes())?;
    sync_dir(dir)?;
    let key = dir.join(DEVICE_KEY_FILE);
    fs::rename(&key_new, &key).at(&key)?;
    let cert = dir.join(DEVICE_CERT_FILE);
    fs::rename(&cert_new, &cert).at(&cert)?;
    sync_dir(dir)
}

/// Reads the device, first settling an interrupted [`write_device`]: with
/// both `*.new` files present nothing was renamed yet and they are removed;
/// with only `device.cert.new` the key was renamed and the certificate is.
pub(super) fn read_device(dir: &Path) -> Result<Device, HomeError> {
    let key_new = dir.join(format!("{DEVICE_KEY_FILE}{NEW}"));
    let cert_new = dir.join(format!("{DEVICE_CERT_FILE}{NEW}"));
    let cert = dir.join(DEVICE_CERT_FILE);
    if cert_new.exists() {
        if key_new.exists() {
            fs::remove_file(&key_new).at(&key_new)?;
            fs::remove_file(&cert_new).at(&cert_new)?;
        } else {
            fs::rename(&cert_new, &cert).at(&cert)?;
        }
        sync_dir(dir)?;
    } else if key_new.exists() {
        fs::remove_file(&key_new).at(&key_new)?;
    }
    let secret = read_secret(&dir.join(DEVICE_KEY_FILE), &DEVICE_MAGIC)?;
    let cert_bytes = fs::read(&cert).at(&cert)?;
    let certificate = DeviceCertificate::decode(&cert_bytes)
        .map_err(|e| HomeError::corrupt(format!("{} does not decode: {e}", cert.display())))?;
    Device::from_parts(secret, certificate)
        .map_err(|_| HomeError::corrupt("device.key and device.cert are not the same device"))
}
