//! The clip manifest: the public description of a sealed clip.
//!
//! Relays and peers see manifests. From one they learn the message id, the
//! per-message revocation key, the expiry, the padded size and every chunk's
//! BLAKE3 hash, enough to store, verify, serve and expire chunks without any
//! key. The header and the sender stay encrypted.

use crate::codec::{Codec, Reader, Writer, read_header, tag, write_header};
use crate::error::DecodeError;
use crate::header::HEADER_LEN;
use crate::kdf::MessageId;
use crate::keys::SigningPublicKey;
use crate::limits::{CHUNK_SIZE, MAX_CLIP_LEN, TAG_SIZE};
use crate::padding::is_padded_len;
use crate::time::UnixMillis;

/// A chunk's address: the BLAKE3 hash of its ciphertext.
pub type ChunkHash = [u8; 32];

/// Length of the encrypted header inside a manifest.
pub const SEALED_HEADER_LEN: usize = HEADER_LEN + TAG_SIZE;

/// A ciphertext chunk whose BLAKE3 hash was checked against a manifest.
/// Only [`Manifest::check_chunk`] makes one.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedChunk<'a> {
    index: u32,
    hash: ChunkHash,
    bytes: &'a [u8],
}

impl<'a> VerifiedChunk<'a> {
    /// The chunk's index in its clip.
    pub fn index(&self) -> u32 {
        self.index
    }
    /// The verified hash.
    pub fn hash(&self) -> &ChunkHash {
        &self.hash
    }
    /// The ciphertext bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// A sealed clip's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub(crate) message_id: MessageId,
    pub(crate) revocation_key: SigningPublicKey,
    pub(crate) expires_at: UnixMillis,
    pub(crate) padded_len: u64,
    pub(crate) commitment: [u8; 32],
    pub(crate) sealed_header: [u8; SEALED_HEADER_LEN],
    pub(crate) chunk_hashes: Vec<ChunkHash>,
}

/// Number of chunks of a clip whose padded plaintext is `padded_len` bytes.
pub fn chunk_count(padded_len: u64) -> u32 {
    // padded_len <= MAX_CLIP_LEN, so this fits.
    padded_len.div_ceil(CHUNK_SIZE as u64) as u32
}

/// Plaintext length of chunk `index` of a clip padded to `padded_len`.
pub fn chunk_plaintext_len(padded_len: u64, index: u32) -> usize {
    let start = u64::from(index) * CHUNK_SIZE as u64;
    (padded_len.saturating_sub(start)).min(CHUNK_SIZE as u64) as usize
}

impl Manifest {
    /// Length of the fixed part, before the chunk hashes.
    pub const FIXED_LEN: usize = 2 + 32 + 32 + 8 + 8 + 32 + SEALED_HEADER_LEN;

    /// The message id, bound to the revocation key.
    pub fn message_id(&self) -> MessageId {
        self.message_id
    }
    /// The per-message key that signs this clip's revocation.
    pub fn revocation_key(&self) -> SigningPublicKey {
        self.revocation_key
    }
    /// When the clip expires (equal to the encrypted header's `expires_at`).
    pub fn expires_at(&self) -> UnixMillis {
        self.expires_at
    }
    /// Padded plaintext length.
    pub fn padded_len(&self) -> u64 {
        self.padded_len
    }
    /// The chunk hashes, in stream order.
    pub fn chunk_hashes(&self) -> &[ChunkHash] {
        &self.chunk_hashes
    }
    /// Number of chunks.
    pub fn chunk_count(&self) -> u32 {
        chunk_count(self.padded_len)
    }
    /// Ciphertext length of chunk `index`.
    pub fn chunk_ciphertext_len(&self, index: u32) -> usize {
        chunk_plaintext_len(self.padded_len, index) + TAG_SIZE
    }
    /// Total ciphertext bytes of all chunks: what a relay stores.
    pub fn ciphertext_len(&self) -> u64 {
        self.padded_len + u64::from(self.chunk_count()) * TAG_SIZE as u64
    }
    /// BLAKE3 hash of the encoded manifest, which the sender signs.
    pub fn hash(&self) -> [u8; 32] {
        *blake3::hash(&self.to_bytes()).as_bytes()
    }
    /// Checks a ciphertext chunk against its hash, with no key.
    pub fn verify_chunk(&self, index: u32, ciphertext: &[u8]) -> bool {
        self.check_chunk(index, ciphertext).is_some()
    }

    /// Checks a ciphertext chunk against its length and hash, with no key, and
    /// returns it as a [`VerifiedChunk`] that an opener accepts without hashing
    /// it again. Relays and peers check every chunk on arrival; this is that check.
    pub fn check_chunk<'a>(&self, index: u32, ciphertext: &'a [u8]) -> Option<VerifiedChunk<'a>> {
        let want = self.chunk_hashes.get(index as usize)?;
        if ciphertext.len() != self.chunk_ciphertext_len(index) {
            return None;
        }
        let hash = *blake3::hash(ciphertext).as_bytes();
        (hash == *want).then_some(VerifiedChunk {
            index,
            hash,
            bytes: ciphertext,
        })
    }
}

impl Codec for Manifest {
    fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(Self::FIXED_LEN + 32 * self.chunk_hashes.len());
        write_header(out, tag::MANIFEST);
        out.put(&self.message_id.0);
        out.put(&self.revocation_key.to_bytes());
        out.put_u64(self.expires_at.0);
        out.put_u64(self.padded_len);
        out.put(&self.commitment);
        out.put(&self.sealed_header);
        for h in &self.chunk_hashes {
            out.put(h);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_header(r, tag::MANIFEST)?;
        let message_id = MessageId(r.array()?);
        let revocation_key = SigningPublicKey::read(r)?;
        if MessageId::for_revocation_key(&revocation_key) != message_id {
            return Err(DecodeError::Invalid(
                "message id does not match revocation key",
            ));
        }
        let expires_at = UnixMillis(r.u64()?);
        let padded_len = r.u64()?;
        if padded_len > MAX_CLIP_LEN {
            return Err(DecodeError::TooLong {
                field: "padded length",
                limit: MAX_CLIP_LEN as usize,
            });
        }
        if !is_padded_len(padded_len) {
            return Err(DecodeError::NonCanonical("padded length"));
        }
        let commitment = r.array()?;
        let sealed_header = r.array()?;
        let n = chunk_count(padded_len) as usize;
        // Bounded by MAX_CHUNKS via MAX_CLIP_LEN, and checked against the input before allocating.
        if r.remaining() < n * 32 {
            return Err(DecodeError::Truncated);
        }
        let chunk_hashes = (0..n).map(|_| r.array()).collect::<Result<_, _>>()?;
        Ok(Self {
            message_id,
            revocation_key,
            expires_at,
            padded_len,
            commitment,
            sealed_header,
            chunk_hashes,
        })
    }
}
