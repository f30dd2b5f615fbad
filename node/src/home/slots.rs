//! `secrets.slots`: every secret that must become unrecoverable, in fixed
//! slots written and wiped in place (the relay's key-file code, see
//! `crate::store::keyfile`), named by [`slot_name`] and referred to from the
//! `slots` table.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};
use zeroize::Zeroizing;

use super::HomeError;
use super::tables::SLOTS;
use crate::store::keyfile::KeyFile;

/// Name of the slot file in the home directory.
pub const SLOT_FILE_NAME: &str = "secrets.slots";
/// First 16 bytes of the slot file.
pub const SLOT_FILE_MAGIC: [u8; 16] = *b"mayfly secret v1";
/// BLAKE3 `derive_key` context of slot names.
pub const SLOT_NAME_CONTEXT: &str = "mayfly client secret slot v1";

/// What a slot holds; the first byte of a slot name's derivation input.
#[derive(Debug, Clone, Copy)]
pub(super) enum Purpose {
    /// A received message's content key; id = message id.
    ReceivedKey = 1,
    /// A sent message's content key; id = message id.
    SentKey = 2,
    /// A sent message's revocation secret (Ed25519 seed); id = message id.
    Revocation = 3,
    /// A prekey's X25519 secret; id = the prekey's public key.
    Prekey = 4,
    /// An invite token (16 bytes, then 16 zeros); id = the token.
    Invite = 5,
    /// An epoch key of a live broadcast received; id = broadcast id ‖
    /// epoch (u32 BE).
    LiveKey = 6,
}

/// The 32-byte slot name: `derive_key(SLOT_NAME_CONTEXT, purpose ‖ id)`.
pub(super) fn slot_name(purpose: Purpose, id: &[u8]) -> [u8; 32] {
    let mut m = Vec::with_capacity(1 + id.len());
    m.push(purpose as u8);
    m.extend_from_slice(id);
    blake3::derive_key(SLOT_NAME_CONTEXT, &m)
}

/// The slot file and its allocator. The allocator's mutex is also the
/// home's writer lock.
#[derive(Debug)]
pub(super) struct Slots {
    file: KeyFile,
    path: PathBuf,
    alloc: Mutex<Alloc>,
}

/// Free slots (lowest last) and the slot count.
#[derive(Debug, Default)]
pub(super) struct Alloc {
    free: Vec<u32>,
    len: u32,
}

impl Slots {
    /// Opens the slot file in `dir` and matches it against `db`: slots no
    /// row names are wiped (an interrupted write or erase), rows whose slot
    /// does not hold their name are deleted.
    pub(super) fn open(dir: &Path, db: &Database) -> Result<Self, HomeError> {
        let path = dir.join(SLOT_FILE_NAME);
        let (file, len) = KeyFile::open_named(dir, SLOT_FILE_NAME, &SLOT_FILE_MAGIC)
            .map_err(|e| HomeError::slots(&path, e))?;
        let mut used = vec![false; len as usize];
        let mut orphans = Vec::new();
        let mut lost = Vec::new();
        {
            let txn = db.begin_read()?;
            let table = txn.open_table(SLOTS)?;
            let mut bad: Option<HomeError> = None;
            file.scan(len, |u| {
                match table.get(&u.id) {
                    Ok(Some(s)) if s.value() == u.slot => used[u.slot as usize] = true,
                    Ok(_) => orphans.push(u.slot),
                    Err(e) => bad = Some(e.into()),
                }
                Ok(())
            })
            .map_err(|e| HomeError::slots(&path, e))?;
            if let Some(e) = bad {
                return Err(e);
            }
            for row in table.iter()? {
                let (name, slot) = row?;
                let slot = slot.value();
                if !(used.get(slot as usize).copied().unwrap_or(false)) {
                    lost.push(*name.value());
                }
            }
        }
        if !orphans.is_empty() {
            tracing::info!(slots = orphans.len(), "wiping orphaned secret slots");
            file.wipe(&orphans)
                .map_err(|e| HomeError::slots(&path, e))?;
        }
        if !lost.is_empty() {
            tracing::warn!(rows = lost.len(), "forgetting secrets whose slot is gone");
            let txn = db.begin_write()?;
            {
                let mut t = txn.open_table(SLOTS)?;
                for name in &lost {
                    t.remove(name)?;
                }
            }
            txn.commit()?;
        }
        let n = used.iter().rposition(|&u| u).map_or(0, |i| i + 1) as u32;
        if n < len {
            file.truncate(n).map_err(|e| HomeError::slots(&path, e))?;
        }
        let free = (0..n).rev().filter(|&s| !used[s as usize]).collect();
        Ok(Self {
            file,
            path,
            alloc: Mutex::new(Alloc { free, len: n }),
        })
    }

    /// The writer lock. A panic while it was held leaves at worst an orphan
    /// slot, which the next open wipes.
    pub(super) fn lock(&self) -> MutexGuard<'_, Alloc> {
        self.alloc.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The secret named `name`, read through a read transaction.
    pub(super) fn read(
        &self,
        db: &Database,
        name: &[u8; 32],
    ) -> Result<Option<Zeroizing<[u8; 32]>>, HomeError> {
        let txn = db.begin_read()?;
        let slot = match txn.open_table(SLOTS)?.get(name)? {
            Some(s) => s.value(),
            None => return Ok(None),
        };
        // Wiped or reused since: then the slot no longer carries the name.
        self.file
            .secret_for(slot, name)
            .map_err(|e| HomeError::slots(&self.path, e))
    }

    fn wipe(&self, slots: &[u32]) -> Result<(), HomeError> {
        self.file
            .wipe(slots)
            .map_err(|e| HomeError::slots(&self.path, e))
    }
}

/// One write: a redb write transaction plus the slots it writes and drops.
pub(super) struct Tx<'a> {
    /// The transaction.
    pub txn: WriteTransaction,
    slots: &'a Slots,
    alloc: &'a mut Alloc,
    written: Vec<u32>,
    dropped: Vec<u32>,
}

impl Tx<'_> {
    /// Stores `secret` under `name`, unless the name is already stored
    /// (returns false). The slot is written and synced now, before the
    /// transaction that refers to it commits.
    pub(super) fn put_secret(
        &mut self,
        name: &[u8; 32],
        secret: &[u8; 32],
    ) -> Result<bool, HomeError> {
        let mut table = self.txn.open_table(SLOTS)?;
        if table.get(name)?.is_some() {
            return Ok(false);
        }
        let slot = match self.alloc.free.pop() {
            Some(s) => s,
            None => {
                let s = self.alloc.len;
                self.alloc.len = s
                    .checked_add(1)
                    .ok_or_else(|| HomeError::Invalid("too many secrets".into()))?;
                s
            }
        };
        // Wiped again if anything below fails.
        self.written.push(slot);
        self.slots
            .file
            .store_secret(slot, name, secret)
            .map_err(|e| HomeError::slots(&self.slots.path, e))?;
        table.insert(name, slot)?;
        Ok(true)
    }

    /// Drops the secret named `name`: its row goes with this transaction,
    /// its slot is wiped once the transaction has committed.
    pub(super) fn drop_secret(&mut self, name: &[u8; 32]) -> Result<bool, HomeError> {
        let mut table = self.txn.open_table(SLOTS)?;
        let slot = table.remove(name)?.map(|s| s.value());
        match slot {
            Some(s) => {
                self.dropped.push(s);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The secret named `name`, as this transaction sees it.
    pub(super) fn secret(&self, name: &[u8; 32]) -> Result<Option<Zeroizing<[u8; 32]>>, HomeError> {
        let slot = match self.txn.open_table(SLOTS)?.get(name)? {
            Some(s) => s.value(),
            None => return Ok(None),
        };
        self.slots
            .file
            .secret_for(slot, name)
            .map_err(|e| HomeError::slots(&self.slots.path, e))?
            .map(Some)
            .ok_or_else(|| HomeError::corrupt("a secret slot does not hold its secret"))
    }
}

/// Runs `f` in one write: on success the transaction commits and the
/// dropped slots are wiped (and freed); on failure the written slots are
/// wiped (and freed) and nothing changes. If the wipe after a commit fails,
/// the error is returned, the slots stay out of use and the next open
/// wipes them.
pub(super) fn write<T>(
    db: &Database,
    slots: &Slots,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T, HomeError>,
) -> Result<T, HomeError> {
    let mut alloc = slots.lock();
    let txn = db.begin_write()?;
    let mut tx = Tx {
        txn,
        slots,
        alloc: &mut alloc,
        written: Vec::new(),
        dropped: Vec::new(),
    };
    let result = f(&mut tx);
    let Tx {
        txn,
        written,
        dropped,
        ..
    } = tx;
    let result = result.and_then(|v| {
        txn.commit()?;
        Ok(v)
    });
    match result {
        Ok(v) => {
            slots.wipe(&dropped)?;
            alloc.free.extend_from_slice(&dropped);
            Ok(v)
        }
        Err(e) => {
            if slots.wipe(&written).is_ok() {
                alloc.free.extend_from_slice(&written);
            }
            Err(e)
        }
    }
}
