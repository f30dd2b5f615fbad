//! ChaCha20-Poly1305 (RFC 8439) with a detached tag, as plain functions on
//! byte slices, for callers that seal their own values (the node's store
//! seals what it keeps at rest with it).
//!
//! The cipher's code is generic; these non-generic wrappers instantiate it
//! once, here, in a crate that is optimized even in test builds, instead
//! of in every caller.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};

use crate::Error;

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of a nonce.
pub const NONCE_LEN: usize = 12;
/// Bytes of a tag.
pub const TAG_LEN: usize = 16;

/// Encrypts `buf` in place under `key` and `nonce`, authenticating `aad`
/// too, and returns the tag. A nonce MUST NOT be used twice with one key.
pub fn seal_in_place(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; TAG_LEN], Error> {
    let tag = ChaCha20Poly1305::new(key.into())
        .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into())
        .map_err(|_| Error::Stream("value too long for ChaCha20-Poly1305"))?;
    Ok(tag.into())
}

/// Decrypts `buf` in place if `tag` authenticates it and `aad`; otherwise
/// fails with [`Error::Decrypt`] and `buf` holds neither plaintext nor
/// ciphertext (it is zeroed).
pub fn open_in_place(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), Error> {
    let opened = ChaCha20Poly1305::new(key.into()).decrypt_inout_detached(
        &Nonce::from(*nonce),
        aad,
        (&mut *buf).into(),
        &Tag::from(*tag),
    );
    if opened.is_err() {
        zeroize::Zeroize::zeroize(buf);
        return Err(Error::Decrypt);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_fault_fails() {
        let key = [7u8; KEY_LEN];
        let nonce = [9u8; NONCE_LEN];
        let plain = b"a value at rest".to_vec();
        let mut buf = plain.clone();
        let tag = seal_in_place(&key, &nonce, b"table", &mut buf).unwrap();
        assert_ne!(buf, plain);
        let sealed = buf.clone();
        open_in_place(&key, &nonce, b"table", &mut buf, &tag).unwrap();
        assert_eq!(buf, plain);
        // RFC 8439 §2.8.2 vector.
        let key: [u8; 32] = core::array::from_fn(|i| 0x80 + i as u8);
        let nonce = [
            0x07, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
        ];
        let aad = [
            0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
        ];
        let mut text = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".to_vec();
        let tag = seal_in_place(&key, &nonce, &aad, &mut text).unwrap();
        assert_eq!(hex::encode(tag), "1ae10b594f09e26a7e902ecbd0600691");
        assert_eq!(hex::encode(&text[..16]), "d31a8d34648e60db7b86afbc53ef7ec2");
        // Another key, nonce, aad or tag, or a flipped bit: one error, and
        // the buffer is zeroed.
        let (k, n) = ([7u8; KEY_LEN], [9u8; NONCE_LEN]);
        let good = seal_in_place(&k, &n, b"table", &mut plain.clone()).unwrap();
        let fails = |key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], flip: Option<usize>, tag| {
            let mut b = sealed.clone();
            if let Some(i) = flip {
                b[i] ^= 1;
            }
            let r = open_in_place(key, nonce, aad, &mut b, tag);
            matches!(r, Err(Error::Decrypt)) && b.iter().all(|&x| x == 0)
        };
        assert!(fails(&[8; 32], &n, b"table", None, &good));
        assert!(fails(&k, &[8; 12], b"table", None, &good));
        assert!(fails(&k, &n, b"tablf", None, &good));
        assert!(fails(&k, &n, b"table", Some(3), &good));
        assert!(fails(&k, &n, b"table", None, &[0; 16]));
        assert!(!fails(&k, &n, b"table", None, &good));
    }
}
