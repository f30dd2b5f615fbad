//! The client's home directory: its identity, device and prekeys, contacts,
//! received and sent messages, invites, relay cursors and fliks.
//!
//! `spec/CLIENT.md` describes the layout and the erasure guarantees. In
//! short: secret keys of the identity and device are plain files (mode
//! 0600, replaced atomically); every secret that must later become
//! unrecoverable — content keys, revocation secrets, prekey secrets, invite
//! tokens — lives in `secrets.slots`, fixed slots written and wiped in
//! place, never in `client.redb` (copy-on-write, keeps freed pages). A slot
//! is written and synced before the transaction that refers to it commits,
//! and wiped after the transaction that drops it commits; [`Home::open`]
//! wipes slots no row refers to.
//!
//! Time comes in as `now` and randomness as a [`ChaCha20Rng`]: the home
//! never reads a clock. One process at a time: the home holds an exclusive
//! lock on `DIR/lock` while open.

mod contacts;
mod error;
mod files;
mod fliks;
mod invites;
mod live;
mod messages;
mod prekeys;
mod records;
mod slots;
mod supersede;
mod tables;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use mayfly_protocol::{ContactCard, Device, Identity, PrekeyStore, UnixMillis};
use rand_chacha::ChaCha20Rng;
use redb::{Database, ReadableDatabase};
use serde::{Deserialize, Serialize};

pub use error::HomeError;
pub use files::{DEVICE_CERT_FILE, DEVICE_KEY_FILE, IDENTITY_FILE, LOCK_FILE};
pub use fliks::FLIKS_DIR;
pub use invites::INVITE_TTL_MS;
pub use live::Broadcast;
pub use records::{Contact, Delivery, Erased, Received, Sent, Source, Via};
pub use slots::{SLOT_FILE_MAGIC, SLOT_FILE_NAME, SLOT_NAME_CONTEXT};
pub use supersede::Superseded;

use error::IoAt;
use tables::{FORMAT_KEY, FORMAT_VERSION, META, PROFILE_KEY};

/// Name of the metadata database in the home directory.
pub const DB_FILE_NAME: &str = "client.redb";
/// Directory of the local mailbox (a relay store) in the home directory.
pub const MAILBOX_DIR: &str = "mailbox";
/// redb page cache bound of `client.redb`.
pub const DB_CACHE_BYTES: usize = 8 << 20;

/// What the user chose: the name on their card and the relays they use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The display name on the contact card.
    pub display_name: String,
    /// Relay multiaddrs, each ending in `/p2p/<peer id>`.
    pub relays: Vec<String>,
}

/// An open home directory, locked against other processes.
#[derive(Debug)]
pub struct Home {
    dir: PathBuf,
    db: Database,
    slots: slots::Slots,
    identity: Identity,
    device: Device,
    profile: Profile,
    /// Holds the exclusive lock on `DIR/lock` while the home is open.
    _lock: File,
}

impl Home {
    /// Creates a home in `dir` (made if missing) with a new identity, device
    /// number 1 and a fresh prekey store. Fails with
    /// [`HomeError::AlreadyInitialized`] if `dir` already holds a home.
    pub fn create(
        dir: &Path,
        profile: Profile,
        now: UnixMillis,
        rng: &mut ChaCha20Rng,
    ) -> Result<Home, HomeError> {
        let exists = |d: &Path| d.join(IDENTITY_FILE).exists() || d.join(DB_FILE_NAME).exists();
        if exists(dir) {
            return Err(HomeError::AlreadyInitialized {
                dir: dir.to_path_buf(),
            });
        }
        fs::create_dir_all(dir).at(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).at(dir)?;
        }
        let lock = files::lock(dir)?;
        if exists(dir) {
            return Err(HomeError::AlreadyInitialized {
                dir: dir.to_path_buf(),
            });
        }
        let identity = Identity::generate(rng);
        let device = identity.new_device(1, now, rng);
        let store = PrekeyStore::new(&device, now, rng);
        // Checks the profile against the card's limits before writing anything.
        ContactCard::new(
            &identity,
            &device,
            store.signed_prekey().clone(),
            profile.relays.clone(),
            profile.display_name.clone(),
        )?;
        files::write_identity(dir, &identity)?;
        files::write_device(dir, &device)?;
        let db = open_db(dir)?;
        let slots = slots::Slots::open(dir, &db)?;
        let json = serde_json::to_vec(&profile).expect("a profile serializes");
        slots::write(&db, &slots, |tx| {
            prekeys::save(tx, device.certificate().serial(), &store.snapshot())?;
            let mut meta = tx.txn.open_table(META)?;
            meta.insert(PROFILE_KEY, json.as_slice())?;
            meta.insert(FORMAT_KEY, FORMAT_VERSION.to_be_bytes().as_slice())?;
            Ok(())
        })?;
        let fliks = dir.join(FLIKS_DIR);
        fs::create_dir_all(&fliks).at(&fliks)?;
        files::sync_dir(dir)?;
        Ok(Home {
            dir: dir.to_path_buf(),
            db,
            slots,
            identity,
            device,
            profile,
            _lock: lock,
        })
    }

    /// Opens the home in `dir`, settling whatever an interrupted operation
    /// left: orphan secret slots are wiped, a half-replaced device is
    /// finished or rolled back, prekeys of another device are erased.
    pub fn open(dir: &Path) -> Result<Home, HomeError> {
        if !dir.join(IDENTITY_FILE).exists() {
            return Err(HomeError::NotInitialized {
                dir: dir.to_path_buf(),
            });
        }
        let lock = files::lock(dir)?;
        let identity = files::read_identity(dir)?;
        let device = files::read_device(dir)?;
        if device.identity_key() != identity.public() {
            return Err(HomeError::corrupt(
                "device.cert was not issued by identity.key",
            ));
        }
        let db_path = dir.join(DB_FILE_NAME);
        if !db_path.exists() {
            return Err(HomeError::corrupt(format!(
                "{} is missing (an interrupted create?)",
                db_path.display()
            )));
        }
        let db = open_db(dir)?;
        let profile = {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            let format = meta.get(FORMAT_KEY)?.map(|v| v.value().to_vec());
            if format.as_deref() != Some(FORMAT_VERSION.to_be_bytes().as_slice()) {
                return Err(HomeError::corrupt(
                    "client.redb is incomplete or of an unknown format version",
                ));
            }
            let json = meta
                .get(PROFILE_KEY)?
                .ok_or_else(|| HomeError::corrupt("the profile is missing"))?;
            serde_json::from_slice::<Profile>(json.value())
                .map_err(|e| HomeError::corrupt(format!("the profile does not decode: {e}")))?
        };
        // Opening the slots wipes any a crash left unwiped, also those a
        // superseded device dropped (§3.3); then the home is refused.
        let slots = slots::Slots::open(dir, &db)?;
        if let Some(newer) = Home::superseded_by(&db)? {
            return Err(HomeError::Superseded {
                dir: dir.to_path_buf(),
                serial: device.certificate().serial(),
                by_serial: newer.serial(),
            });
        }
        let serial = device.certificate().serial();
        slots::write(&db, &slots, |tx| prekeys::purge_others(tx, serial))?;
        let home = Home {
            dir: dir.to_path_buf(),
            db,
            slots,
            identity,
            device,
            profile,
            _lock: lock,
        };
        // Fails now, not at first use, if the prekeys are missing or broken.
        home.with_prekeys(|_, _| ())?;
        Ok(home)
    }

    /// The home directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The identity (secret key included).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The current device (secret key and certificate).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The directory reserved for the local mailbox: `DIR/mailbox`.
    pub fn mailbox_dir(&self) -> PathBuf {
        self.dir.join(MAILBOX_DIR)
    }

    /// Replaces the relay list (checked against the card's limits) and saves it.
    pub fn set_relays(&mut self, relays: Vec<String>) -> Result<(), HomeError> {
        let profile = Profile {
            display_name: self.profile.display_name.clone(),
            relays,
        };
        ContactCard::new(
            &self.identity,
            &self.device,
            self.current_signed_prekey()?,
            profile.relays.clone(),
            profile.display_name.clone(),
        )?;
        let json = serde_json::to_vec(&profile).expect("a profile serializes");
        slots::write(&self.db, &self.slots, |tx| {
            tx.txn
                .open_table(META)?
                .insert(PROFILE_KEY, json.as_slice())?;
            Ok(())
        })?;
        self.profile = profile;
        Ok(())
    }

    /// This device's contact card: identity, device certificate, current
    /// signed prekey, relays and display name, signed by the identity.
    pub fn card(&self) -> Result<ContactCard, HomeError> {
        Ok(ContactCard::new(
            &self.identity,
            &self.device,
            self.current_signed_prekey()?,
            self.profile.relays.clone(),
            self.profile.display_name.clone(),
        )?)
    }

    /// Replaces the device: a new device key certified by the identity with
    /// the next serial, and a fresh prekey store. The old device's prekey
    /// secrets are wiped. Returns the new device.
    pub fn replace_device(
        &mut self,
        now: UnixMillis,
        rng: &mut ChaCha20Rng,
    ) -> Result<Device, HomeError> {
        let serial = self
            .device
            .certificate()
            .serial()
            .checked_add(1)
            .ok_or_else(|| HomeError::Invalid("no device serial left".into()))?;
        let device = self.identity.new_device(serial, now, rng);
        let store = PrekeyStore::new(&device, now, rng);
        // 1. The new prekeys, tagged with the new serial (open drops them
        //    if the device files are not switched).
        slots::write(&self.db, &self.slots, |tx| {
            prekeys::save(tx, serial, &store.snapshot())
        })?;
        // 2. The device files: from here on, open sees the new device.
        files::write_device(&self.dir, &device)?;
        self.device = device.clone();
        // 3. The old device's prekeys go, and their slots are wiped.
        slots::write(&self.db, &self.slots, |tx| {
            prekeys::purge_others(tx, serial)
        })?;
        Ok(device)
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut slots::Tx<'_>) -> Result<T, HomeError>,
    ) -> Result<T, HomeError> {
        slots::write(&self.db, &self.slots, f)
    }
}

/// Opens (or creates) `client.redb` and creates any missing table.
fn open_db(dir: &Path) -> Result<Database, HomeError> {
    let db = Database::builder()
        .set_cache_size(DB_CACHE_BYTES)
        .create(dir.join(DB_FILE_NAME))?;
    let txn = db.begin_write()?;
    tables::create_all(&txn)?;
    txn.commit()?;
    Ok(db)
}
