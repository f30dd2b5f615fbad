//! The key schedule: every key and identifier derived from a clip's content key.
//!
//! All derivations use BLAKE3's `derive_key` mode with a fixed context string.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::keys::SigningPublicKey;

/// Context of the message id, derived from the per-message revocation key.
pub const CTX_MESSAGE_ID: &str = "mayfly 2026-11 v1 message id";
/// Context of the key commitment.
pub const CTX_COMMITMENT: &str = "mayfly 2026-11 v1 key commitment";
/// Context of the payload (chunk) key.
pub const CTX_PAYLOAD_KEY: &str = "mayfly 2026-11 v1 payload key";
/// Context of the header key.
pub const CTX_HEADER_KEY: &str = "mayfly 2026-11 v1 header key";

/// A 32-byte message identifier: `derive_key(CTX_MESSAGE_ID, revocation_key)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 32]);

impl MessageId {
    /// The id bound to a per-message revocation key.
    pub fn for_revocation_key(key: &SigningPublicKey) -> Self {
        Self(blake3::derive_key(CTX_MESSAGE_ID, &key.to_bytes()))
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        crate::keys::hex(&self.0)
    }
}

impl core::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "MessageId({})", self.to_hex())
    }
}

impl core::fmt::Display for MessageId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A clip's 32-byte content key, zeroized on drop. Erasing it (and every
/// envelope secret that could recover it) makes the clip unreadable.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ContentKey(pub(crate) [u8; 32]);

impl ContentKey {
    /// The key with these bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes. Handle with care.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn derive(&self, ctx: &str, id: &MessageId) -> [u8; 32] {
        let mut material = [0u8; 64];
        material[..32].copy_from_slice(&self.0);
        material[32..].copy_from_slice(&id.0);
        let out = blake3::derive_key(ctx, &material);
        material.zeroize();
        out
    }

    /// The key commitment stored in the manifest.
    pub fn commitment(&self, id: &MessageId) -> [u8; 32] {
        self.derive(CTX_COMMITMENT, id)
    }

    /// The ChaCha20-Poly1305 key of the chunks.
    pub(crate) fn payload_key(&self, id: &MessageId) -> SubKey {
        SubKey(self.derive(CTX_PAYLOAD_KEY, id))
    }

    /// The ChaCha20-Poly1305 key of the encrypted header.
    pub(crate) fn header_key(&self, id: &MessageId) -> SubKey {
        SubKey(self.derive(CTX_HEADER_KEY, id))
    }
}

impl core::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ContentKey(..)")
    }
}

/// A derived symmetric key, zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct SubKey(pub(crate) [u8; 32]);
