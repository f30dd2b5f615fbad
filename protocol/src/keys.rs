//! Public keys, secret keys and the validation every decoder applies to them.

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec::Reader;
use crate::error::{DecodeError, Error};

/// An Ed25519 public key that decoded canonically and is not of small order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SigningPublicKey(VerifyingKey);

impl SigningPublicKey {
    /// Validates 32 bytes: a canonical encoding of a point that is not of small order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, DecodeError> {
        // Canonical: decompressing and compressing again gives the same bytes
        // (rejects y >= p and a set sign bit on x = 0).
        let point = curve25519_dalek::edwards::CompressedEdwardsY(*bytes)
            .decompress()
            .ok_or(DecodeError::InvalidKey)?;
        if point.compress().to_bytes() != *bytes {
            return Err(DecodeError::InvalidKey);
        }
        let vk = VerifyingKey::from_bytes(bytes).map_err(|_| DecodeError::InvalidKey)?;
        if vk.is_weak() {
            return Err(DecodeError::InvalidKey);
        }
        Ok(Self(vk))
    }

    /// Reads and validates 32 bytes.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::from_bytes(&r.array()?)
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Checks `sig` over `context || 0x00 || msg` with `verify_strict`.
    pub fn verify(
        &self,
        context: &str,
        msg: &[u8],
        sig: &[u8; 64],
        what: &'static str,
    ) -> Result<(), Error> {
        let sig = Signature::from_bytes(sig);
        self.0
            .verify_strict(&signed_message(context, msg), &sig)
            .map_err(|_| Error::BadSignature(what))
    }
}

impl fmt::Debug for SigningPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningPublicKey({})", hex(&self.to_bytes()))
    }
}

/// An Ed25519 secret key (identity, device or per-message revocation key).
#[derive(Clone)]
pub struct SigningSecret(SigningKey);

impl SigningSecret {
    /// Draws a new key from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// The key whose RFC 8032 seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The RFC 8032 seed. Handle with care.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> SigningPublicKey {
        SigningPublicKey(self.0.verifying_key())
    }

    /// Signs `context || 0x00 || msg`.
    pub fn sign(&self, context: &str, msg: &[u8]) -> [u8; 64] {
        self.0.sign(&signed_message(context, msg)).to_bytes()
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningSecret({:?})", self.public())
    }
}

fn signed_message(context: &str, msg: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(context.len() + 1 + msg.len());
    m.extend_from_slice(context.as_bytes());
    m.push(0);
    m.extend_from_slice(msg);
    m
}

/// An X25519 public key: canonical (below 2^255 - 19) and not of small order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DhPublicKey([u8; 32]);

impl DhPublicKey {
    /// Validates 32 bytes as a canonical u-coordinate of a point that is not of small order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, DecodeError> {
        if !is_canonical_u(bytes) {
            return Err(DecodeError::InvalidKey);
        }
        // A small-order point yields an all-zero shared secret with any clamped scalar.
        let probe = x25519_dalek::StaticSecret::from([0x42u8; 32]);
        if !probe
            .diffie_hellman(&x25519_dalek::PublicKey::from(*bytes))
            .was_contributory()
        {
            return Err(DecodeError::InvalidKey);
        }
        Ok(Self(*bytes))
    }

    /// Reads and validates 32 bytes.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::from_bytes(&r.array()?)
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The 32-byte encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DhPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DhPublicKey({})", hex(&self.0))
    }
}

/// True if the little-endian 32 bytes are below p = 2^255 - 19.
fn is_canonical_u(b: &[u8; 32]) -> bool {
    if b[31] & 0x80 != 0 {
        return false;
    }
    // Values >= p are exactly: b[31] == 0x7f, b[1..31] all 0xff, b[0] >= 0xed.
    !(b[31] == 0x7f && b[1..31].iter().all(|&x| x == 0xff) && b[0] >= 0xed)
}

/// An X25519 secret key, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DhSecret([u8; 32]);

impl DhSecret {
    /// Draws a new key from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        Self(k)
    }

    /// The key with these 32 bytes (clamped when used, per RFC 7748).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 bytes. Handle with care.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The public half.
    pub fn public(&self) -> DhPublicKey {
        let secret = x25519_dalek::StaticSecret::from(self.0);
        DhPublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }
}

impl fmt::Debug for DhSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DhSecret({:?})", self.public())
    }
}

/// Lowercase hex, for `Debug` output.
pub(crate) fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// p = 2^255 - 19, little-endian.
    fn p_plus(k: u8) -> [u8; 32] {
        let mut b = [0xffu8; 32];
        b[0] = 0xed + k;
        b[31] = 0x7f;
        b
    }

    #[test]
    fn non_canonical_ed25519_encodings_are_rejected() {
        // Every y in [p, 2^255 - 1] is a non-canonical encoding of y - p.
        for k in 0..19 {
            assert_eq!(
                SigningPublicKey::from_bytes(&p_plus(k)),
                Err(DecodeError::InvalidKey),
                "p + {k}"
            );
            let mut with_sign = p_plus(k);
            with_sign[31] |= 0x80;
            assert_eq!(
                SigningPublicKey::from_bytes(&with_sign),
                Err(DecodeError::InvalidKey)
            );
        }
        // The identity point (small order) and its sign-bit twin.
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(SigningPublicKey::from_bytes(&one).is_err());
        one[31] = 0x80;
        assert!(SigningPublicKey::from_bytes(&one).is_err());
    }

    #[test]
    fn non_canonical_and_small_order_x25519_keys_are_rejected() {
        for k in 0..19 {
            assert_eq!(
                DhPublicKey::from_bytes(&p_plus(k)),
                Err(DecodeError::InvalidKey)
            );
        }
        let mut high = [9u8; 32];
        high[31] |= 0x80;
        assert_eq!(DhPublicKey::from_bytes(&high), Err(DecodeError::InvalidKey));
        assert_eq!(
            DhPublicKey::from_bytes(&[0; 32]),
            Err(DecodeError::InvalidKey)
        );
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(DhPublicKey::from_bytes(&one), Err(DecodeError::InvalidKey));
        let mut nine = [0u8; 32];
        nine[0] = 9; // the base point
        assert!(DhPublicKey::from_bytes(&nine).is_ok());
    }
}
