//! STREAM chunked encryption (Hoang, Reyhanitabar, Rogaway, Vizár 2015), in
//! the manner of age: ChaCha20-Poly1305 with a nonce of an 11-byte big-endian
//! chunk counter followed by a last-chunk flag byte.

use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};

use crate::error::Error;
use crate::kdf::SubKey;
use crate::limits::TAG_SIZE;

/// The nonce of chunk `index`; `last` marks the final chunk.
pub fn chunk_nonce(index: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// A keyed STREAM cipher. The key is zeroized when this is dropped.
pub(crate) struct Stream {
    aead: ChaCha20Poly1305,
    _key: SubKey,
}

impl Stream {
    pub(crate) fn new(key: SubKey) -> Self {
        Self {
            aead: ChaCha20Poly1305::new(&Key::from(key.0)),
            _key: key,
        }
    }

    /// Encrypts `buf` in place and appends the tag.
    pub(crate) fn seal(&self, nonce: [u8; 12], buf: &mut Vec<u8>) {
        let tag = self
            .aead
            .encrypt_inout_detached(&Nonce::from(nonce), &[], buf.as_mut_slice().into())
            .expect("chunk lengths are far below the ChaCha20 limit");
        buf.extend_from_slice(&tag);
    }

    /// Decrypts `ct` (ciphertext followed by tag) into `out`, which is left
    /// empty unless the tag verifies.
    pub(crate) fn open(&self, nonce: [u8; 12], ct: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let Some(body_len) = ct.len().checked_sub(TAG_SIZE) else {
            zeroize::Zeroize::zeroize(out.as_mut_slice());
            out.clear();
            return Err(Error::Decrypt);
        };
        let (body, tag) = ct.split_at(body_len);
        // Every byte is overwritten below: a buffer reused from the last
        // chunk is only cut or grown to length, not zeroed first.
        out.resize(body_len, 0);
        let opened = Tag::try_from(tag).ok().is_some_and(|tag| {
            // Decrypt out of place: the ciphertext is read once, no copy first.
            InOutBuf::new(body, out.as_mut_slice()).is_ok_and(|inout| {
                self.aead
                    .decrypt_inout_detached(&Nonce::from(nonce), &[], inout, &tag)
                    .is_ok()
            })
        });
        if !opened {
            zeroize::Zeroize::zeroize(out.as_mut_slice());
            out.clear();
            return Err(Error::Decrypt);
        }
        Ok(())
    }
}
