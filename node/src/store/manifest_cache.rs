//! The decoded manifests of the clips being uploaded, so that each chunk
//! is checked against its manifest without decrypting and decoding it
//! again (a manifest names up to 4096 chunks, and decoding checks its keys).

use std::sync::{Arc, Mutex};

use mayfly_protocol::Manifest;

/// Manifests kept (each at most about 130 KiB decoded).
const CAPACITY: usize = 16;

/// The decoded manifests, keyed by message id and manifest hash: a stored
/// message's manifest hash names exactly the manifest it was decoded from,
/// so an entry is never stale, even for a message deleted and stored again.
pub(super) type ManifestCache = Mru<Manifest>;

/// A small most-recently-used cache keyed by two 32-byte values.
#[derive(Debug)]
pub(super) struct Mru<T> {
    /// Most recently used last; at most [`CAPACITY`].
    entries: Mutex<Vec<Entry<T>>>,
}

/// `(id, hash, value)`.
type Entry<T> = ([u8; 32], [u8; 32], Arc<T>);

impl<T> Default for Mru<T> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Mru<T> {
    /// The value for `(id, hash)`, if cached.
    pub(super) fn get(&self, id: &[u8; 32], hash: &[u8; 32]) -> Option<Arc<T>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let i = entries.iter().position(|(i, h, _)| i == id && h == hash)?;
        let entry = entries.remove(i);
        let value = entry.2.clone();
        entries.push(entry);
        Some(value)
    }

    /// The value for `(id, hash)`, made by `load` unless cached.
    pub(super) fn get_or_load<E>(
        &self,
        id: &[u8; 32],
        hash: &[u8; 32],
        load: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        if let Some(value) = self.get(id, hash) {
            return Ok(value);
        }
        // Decoded outside the lock; two callers may both decode, harmlessly.
        let manifest = Arc::new(load()?);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if !entries.iter().any(|(i, h, _)| i == id && h == hash) {
            if entries.len() >= CAPACITY {
                entries.remove(0);
            }
            entries.push((*id, *hash, manifest.clone()));
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(c: &Mru<u32>, id: u8, hash: u8, value: u32) -> u32 {
        *c.get_or_load::<()>(&[id; 32], &[hash; 32], || Ok(value))
            .unwrap()
    }

    #[test]
    fn hits_keep_their_value_and_the_least_recently_used_goes_first() {
        let c = Mru::default();
        assert_eq!(get(&c, 1, 1, 10), 10);
        assert_eq!(get(&c, 1, 1, 99), 10, "a hit does not load");
        assert_eq!(get(&c, 1, 2, 20), 20, "another hash is another entry");
        for id in 2..=CAPACITY as u8 {
            get(&c, id, 0, 0);
        }
        // (1, 1) was used before (1, 2): it went first.
        assert_eq!(get(&c, 1, 2, 99), 20);
        assert_eq!(get(&c, 1, 1, 11), 11);
        assert_eq!(c.entries.lock().unwrap().len(), CAPACITY);
        assert!(c.get_or_load(&[9; 32], &[9; 32], || Err("no")).is_err());
    }
}
