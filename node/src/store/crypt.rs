//! Values at rest: every envelope, manifest and chunk the store writes to
//! redb is sealed with ChaCha20-Poly1305 under its message's data key.
//!
//! A sealed value is `nonce (12) ‖ ciphertext ‖ tag (16)`, with a random
//! nonce and the associated data `u8(len(table)) ‖ table ‖ key`, so a value
//! cannot be moved to another table or key without failing to open.

use mayfly_protocol::aead;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::StoreError;

/// Bytes a sealed value adds to its plaintext.
pub(super) const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
const NONCE_LEN: usize = aead::NONCE_LEN;
const TAG_LEN: usize = aead::TAG_LEN;

/// A message's data key. It lives in the key file, never in redb, and is
/// wiped from memory when dropped.
pub(super) struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh random key.
    pub(super) fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(k.as_mut());
        Self(k)
    }

    /// A key read from its slot.
    pub(super) fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Zeroizing::new(*bytes))
    }

    pub(super) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Seals `plaintext` for `table` at `key`.
    pub(super) fn seal<R: CryptoRng + ?Sized>(
        &self,
        table: &str,
        key: &[u8],
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        self.seal_into(table, key, plaintext, random_nonce(rng), &mut out)?;
        Ok(out)
    }

    /// [`DataKey::seal`] with a `nonce` the caller drew at random, appending
    /// the sealed value to `out`.
    pub(super) fn seal_into(
        &self,
        table: &str,
        key: &[u8],
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
        out: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        out.reserve(plaintext.len() + SEAL_OVERHEAD);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = aead::seal_in_place(&self.0, &nonce, &aad(table, key), &mut out[start..])
            .map_err(|_| StoreError::TooLarge("value to seal"))?;
        out.extend_from_slice(&tag);
        Ok(())
    }

    /// Opens a value sealed by [`DataKey::seal`] for the same `table` and `key`.
    pub(super) fn open(
        &self,
        table: &str,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        self.open_owned(table, key, sealed.to_vec())
    }

    /// [`DataKey::open`] in place: the plaintext reuses `sealed`'s buffer.
    pub(super) fn open_owned(
        &self,
        table: &str,
        key: &[u8],
        mut sealed: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(StoreError::corrupt(format!(
                "short sealed value in {table}"
            )));
        }
        let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
        let at = rest.len() - TAG_LEN;
        let (ct, tag) = rest.split_at_mut(at);
        let nonce: [u8; NONCE_LEN] = (&*nonce)
            .try_into()
            .map_err(|_| StoreError::corrupt("nonce length"))?;
        let tag: [u8; TAG_LEN] = (&*tag)
            .try_into()
            .map_err(|_| StoreError::corrupt("tag length"))?;
        aead::open_in_place(&self.0, &nonce, &aad(table, key), ct, &tag)
            .map_err(|_| StoreError::corrupt(format!("a value in {table} does not decrypt")))?;
        sealed.truncate(NONCE_LEN + at);
        sealed.drain(..NONCE_LEN);
        Ok(sealed)
    }
}

/// A random nonce for [`DataKey::seal_into`].
pub(super) fn random_nonce<R: CryptoRng + ?Sized>(rng: &mut R) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    nonce
}

/// Length of the plaintext inside a sealed value of `sealed_len` bytes.
pub(super) fn plaintext_len(sealed_len: usize) -> Option<usize> {
    sealed_len.checked_sub(SEAL_OVERHEAD)
}

fn aad(table: &str, key: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(1 + table.len() + key.len());
    // Table names are short constants.
    a.push(table.len() as u8);
    a.extend_from_slice(table.as_bytes());
    a.extend_from_slice(key);
    a
}
