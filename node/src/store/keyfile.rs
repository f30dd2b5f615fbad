//! The key file `keys.slots`: the only place message data keys are written.
//!
//! Layout: a 64-byte header (`KEY_FILE_MAGIC`, then zeros), then fixed
//! 64-byte slots, slot `n` at byte `64 + 64 n`. A used slot is
//! `message id (32) ‖ data key (32)`; a free slot is 64 zero bytes. Slots are
//! written and wiped in place with positioned writes followed by `fdatasync`,
//! so the file never holds a second copy of a key the way a copy-on-write
//! database would.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use zeroize::Zeroizing;

use super::StoreError;
use super::crypt::DataKey;
use super::fileio::{pos, sync_dir};

/// Name of the key file in the store directory.
pub const KEY_FILE_NAME: &str = "keys.slots";
/// First bytes of the key file.
pub const KEY_FILE_MAGIC: [u8; 16] = *b"mayfly keys v1\n\0";
/// Bytes before the first slot.
pub const KEY_FILE_HEADER_LEN: u64 = 64;
/// Bytes per slot: message id, then data key.
pub const KEY_SLOT_LEN: usize = 64;

/// Slots read at once when scanning the file.
const SCAN_BATCH: usize = 1024;

/// The open key file. Reads and writes are positioned, so `&self` suffices
/// and readers need no lock; the store's writer lock orders the writes.
#[derive(Debug)]
pub(crate) struct KeyFile {
    file: File,
}

/// What a scan found in one used slot.
pub(crate) struct UsedSlot {
    /// The slot number.
    pub slot: u32,
    /// The 32-byte id (name) written in it.
    pub id: [u8; 32],
}

impl KeyFile {
    /// Opens or creates the key file in `dir`. Returns it with its slot
    /// count. A torn slot at the end (a crash while appending one, before
    /// any database commit could refer to it) is wiped and cut off.
    pub(super) fn open(dir: &Path) -> Result<(Self, u32), StoreError> {
        Self::open_named(dir, KEY_FILE_NAME, &KEY_FILE_MAGIC)
    }

    /// Opens or creates the slot file `name` in `dir`, whose header starts
    /// with `magic` (the same layout as `keys.slots`, for other stores that
    /// keep 32-byte secrets under 32-byte ids).
    pub(crate) fn open_named(
        dir: &Path,
        name: &str,
        magic: &[u8; 16],
    ) -> Result<(Self, u32), StoreError> {
        let path = dir.join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let kf = Self { file };
        let len = kf.file.metadata()?.len();
        if len < KEY_FILE_HEADER_LEN {
            if len != 0 {
                // A crash while creating the file: nothing can refer to it yet.
                kf.write_at(&vec![0; len as usize], 0)?;
            }
            let mut header = [0u8; KEY_FILE_HEADER_LEN as usize];
            header[..magic.len()].copy_from_slice(magic);
            kf.write_at(&header, 0)?;
            kf.file.set_len(KEY_FILE_HEADER_LEN)?;
            kf.file.sync_all()?;
            sync_dir(dir);
            return Ok((kf, 0));
        }
        let mut found = [0u8; 16];
        kf.read_at(&mut found, 0)?;
        if found != *magic {
            return Err(StoreError::corrupt(format!(
                "{} is not a Mayfly slot file",
                path.display()
            )));
        }
        let body = len - KEY_FILE_HEADER_LEN;
        let torn = body % KEY_SLOT_LEN as u64;
        let slots = body / KEY_SLOT_LEN as u64;
        let slots = u32::try_from(slots)
            .map_err(|_| StoreError::corrupt("the key file has too many slots"))?;
        if torn != 0 {
            let end = len - torn;
            kf.write_at(&vec![0; torn as usize], end)?;
            kf.file.sync_data()?;
            kf.file.set_len(end)?;
            kf.file.sync_all()?;
        }
        Ok((kf, slots))
    }

    /// Calls `f` with every used slot among the first `slots`, in order,
    /// reading [`SCAN_BATCH`] slots at a time.
    pub(crate) fn scan(
        &self,
        slots: u32,
        mut f: impl FnMut(UsedSlot) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut buf = Zeroizing::new(vec![0u8; SCAN_BATCH * KEY_SLOT_LEN]);
        let mut start = 0u32;
        while start < slots {
            let n = (slots - start).min(SCAN_BATCH as u32) as usize;
            let bytes = &mut buf[..n * KEY_SLOT_LEN];
            self.read_at(bytes, slot_offset(start))?;
            for (i, s) in bytes.chunks_exact(KEY_SLOT_LEN).enumerate() {
                if s.iter().any(|&b| b != 0) {
                    let mut id = [0u8; 32];
                    id.copy_from_slice(&s[..32]);
                    f(UsedSlot {
                        slot: start + i as u32,
                        id,
                    })?;
                }
            }
            start += n as u32;
        }
        Ok(())
    }

    /// The key in `slot` if the slot belongs to message `id`, else `None`.
    pub(super) fn key_for(&self, slot: u32, id: &[u8; 32]) -> Result<Option<DataKey>, StoreError> {
        Ok(self.secret_for(slot, id)?.map(|k| DataKey::from_bytes(&k)))
    }

    /// The 32-byte secret in `slot` if the slot belongs to `id`, else `None`.
    pub(crate) fn secret_for(
        &self,
        slot: u32,
        id: &[u8; 32],
    ) -> Result<Option<Zeroizing<[u8; 32]>>, StoreError> {
        let mut s = Zeroizing::new([0u8; KEY_SLOT_LEN]);
        match self.read_at(s.as_mut(), slot_offset(slot)) {
            Ok(()) => {}
            // A slot past the end was cut off: it is not this message's.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        if s[..32] != id[..] {
            return Ok(None);
        }
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&s[32..]);
        Ok(Some(k))
    }

    /// Writes `id ‖ key` into `slot` and makes it durable.
    pub(super) fn store(&self, slot: u32, id: &[u8; 32], key: &DataKey) -> Result<(), StoreError> {
        self.store_secret(slot, id, key.as_bytes())
    }

    /// Writes `id ‖ secret` into `slot` and makes it durable.
    pub(crate) fn store_secret(
        &self,
        slot: u32,
        id: &[u8; 32],
        secret: &[u8; 32],
    ) -> Result<(), StoreError> {
        let mut s = Zeroizing::new([0u8; KEY_SLOT_LEN]);
        s[..32].copy_from_slice(id);
        s[32..].copy_from_slice(secret);
        self.write_at(s.as_ref(), slot_offset(slot))?;
        self.file.sync_data()?;
        Ok(())
    }

    /// Overwrites `slots` with zeros in place, then makes that durable.
    pub(crate) fn wipe(&self, slots: &[u32]) -> Result<(), StoreError> {
        if slots.is_empty() {
            return Ok(());
        }
        let zeros = [0u8; KEY_SLOT_LEN];
        for &slot in slots {
            self.write_at(&zeros, slot_offset(slot))?;
        }
        self.file.sync_data()?;
        Ok(())
    }

    /// Cuts the file after its first `slots` slots (all later ones are free,
    /// hence already zero).
    pub(crate) fn truncate(&self, slots: u32) -> Result<(), StoreError> {
        self.file.set_len(slot_offset(slots))?;
        self.file.sync_all()?;
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        pos::read_exact_at(&self.file, buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        pos::write_all_at(&self.file, buf, offset)
    }
}

fn slot_offset(slot: u32) -> u64 {
    KEY_FILE_HEADER_LEN + u64::from(slot) * KEY_SLOT_LEN as u64
}
