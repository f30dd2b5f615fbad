//! Sealing a clip: content in, ciphertext chunks and a manifest out.
//!
//! [`ClipSealer`] takes the content chunk by chunk, in O(chunk) memory, and
//! [`ClipSealer::finish`] consumes it into a [`SealedClip`]. The content key
//! and the revocation key are drawn from the caller's RNG.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::header::ClipHeader;
use crate::kdf::{ContentKey, MessageId};
use crate::keys::SigningSecret;
use crate::limits::CHUNK_SIZE;
use crate::manifest::{ChunkHash, Manifest, SEALED_HEADER_LEN, chunk_count, chunk_plaintext_len};
use crate::revocation::RevocationRecord;
use crate::stream::{Stream, chunk_nonce};
use crate::time::UnixMillis;

/// Streams a clip's content into ciphertext chunks.
pub struct ClipSealer {
    header: ClipHeader,
    message_id: MessageId,
    content_key: ContentKey,
    revocation: SigningSecret,
    stream: Stream,
    padded_len: u64,
    next: u32,
    hashes: Vec<ChunkHash>,
}

impl core::fmt::Debug for ClipSealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClipSealer")
            .field("message_id", &self.message_id)
            .field("next", &self.next)
            .field("chunks", &self.chunk_count())
            .finish()
    }
}

impl ClipSealer {
    /// Starts sealing a clip described by `header`. Fails if the header breaks a limit.
    pub fn new<R: CryptoRng + ?Sized>(header: ClipHeader, rng: &mut R) -> Result<Self, Error> {
        header.validate()?;
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        let content_key = ContentKey(key);
        let revocation = SigningSecret::generate(rng);
        Self::with_keys(header, content_key, revocation)
    }

    /// Starts sealing with given keys (fresh, random, never reused). Fails if the header breaks a limit.
    pub fn with_keys(
        header: ClipHeader,
        content_key: ContentKey,
        revocation: SigningSecret,
    ) -> Result<Self, Error> {
        header.validate()?;
        Ok(Self::with_keys_unvalidated(header, content_key, revocation))
    }

    /// Starts sealing WITHOUT validating the header, as a malicious sender
    /// would: only for negative test vectors. Never use it to send.
    #[doc(hidden)]
    pub fn with_keys_unvalidated(
        header: ClipHeader,
        content_key: ContentKey,
        revocation: SigningSecret,
    ) -> Self {
        let message_id = MessageId::for_revocation_key(&revocation.public());
        let padded_len = header.padded_len();
        let stream = Stream::new(content_key.payload_key(&message_id));
        Self {
            header,
            message_id,
            stream,
            content_key,
            revocation,
            padded_len,
            next: 0,
            hashes: Vec::with_capacity(chunk_count(padded_len) as usize),
        }
    }

    /// The message id of the clip being sealed.
    pub fn message_id(&self) -> MessageId {
        self.message_id
    }

    /// Number of chunks the clip will have.
    pub fn chunk_count(&self) -> u32 {
        chunk_count(self.padded_len)
    }

    /// Content bytes the next chunk takes: [`CHUNK_SIZE`] until the content
    /// runs out, then what is left (possibly 0 for chunks of pure padding).
    /// `None` once every chunk is sealed.
    pub fn next_content_len(&self) -> Option<usize> {
        if self.next >= self.chunk_count() {
            return None;
        }
        let start = u64::from(self.next) * CHUNK_SIZE as u64;
        let left = self.header.content_len.saturating_sub(start);
        Some(left.min(CHUNK_SIZE as u64) as usize)
    }

    /// Seals the next chunk from exactly [`ClipSealer::next_content_len`] content
    /// bytes, appending padding where the content ends. Writes the ciphertext
    /// chunk to `out` (cleared first) and returns its index and hash.
    pub fn seal_next(
        &mut self,
        content: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(u32, ChunkHash), Error> {
        out.clear();
        out.extend_from_slice(content);
        self.seal_next_in_place(out)
    }

    /// Like [`ClipSealer::seal_next`], but `buf` holds the content bytes on
    /// entry and the ciphertext chunk on return, with no copy: read the content
    /// straight into `buf`. The plaintext is overwritten by the ciphertext.
    pub fn seal_next_in_place(&mut self, buf: &mut Vec<u8>) -> Result<(u32, ChunkHash), Error> {
        let want = self
            .next_content_len()
            .ok_or(Error::Stream("every chunk is already sealed"))?;
        if buf.len() != want {
            return Err(Error::Stream(
                "content length differs from next_content_len",
            ));
        }
        let index = self.next;
        let plain_len = chunk_plaintext_len(self.padded_len, index);
        buf.reserve(plain_len + crate::limits::TAG_SIZE - buf.len());
        buf.resize(plain_len, 0);
        let last = index + 1 == self.chunk_count();
        self.stream.seal(chunk_nonce(index, last), buf);
        let hash = *blake3::hash(buf).as_bytes();
        self.hashes.push(hash);
        self.next += 1;
        Ok((index, hash))
    }

    /// Completes the clip. Fails if any chunk is still unsealed.
    pub fn finish(self) -> Result<SealedClip, Error> {
        if self.next != self.chunk_count() {
            return Err(Error::Stream("not every chunk was sealed"));
        }
        let header_key = self.content_key.header_key(&self.message_id);
        let aead = ChaCha20Poly1305::new((&header_key.0).into());
        let mut buf = Zeroizing::new(self.header.encode().to_vec());
        let tag = aead
            .encrypt_inout_detached(&Nonce::from([0u8; 12]), &[], buf.as_mut_slice().into())
            .expect("header is far below the ChaCha20 limit");
        let mut sealed_header = [0u8; SEALED_HEADER_LEN];
        sealed_header[..buf.len()].copy_from_slice(&buf);
        sealed_header[buf.len()..].copy_from_slice(&tag);
        let manifest = Manifest {
            message_id: self.message_id,
            revocation_key: self.revocation.public(),
            expires_at: self.header.expires_at,
            padded_len: self.padded_len,
            commitment: self.content_key.commitment(&self.message_id),
            sealed_header,
            chunk_hashes: self.hashes,
        };
        Ok(SealedClip {
            manifest,
            content_key: self.content_key,
            revocation: self.revocation,
            header: self.header,
        })
    }
}

/// A sealed clip: its manifest and the secrets the sender keeps.
///
/// The sender keeps `content_key` only to seal envelopes and erases it at
/// expiry; it keeps the revocation key until expiry to be able to revoke.
pub struct SealedClip {
    manifest: Manifest,
    content_key: ContentKey,
    revocation: SigningSecret,
    header: ClipHeader,
}

impl core::fmt::Debug for SealedClip {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SealedClip")
            .field("message_id", &self.manifest.message_id)
            .finish_non_exhaustive()
    }
}

impl SealedClip {
    /// The manifest, to publish with the chunks.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The message id.
    pub fn message_id(&self) -> MessageId {
        self.manifest.message_id
    }
    /// The header that was sealed.
    pub fn header(&self) -> &ClipHeader {
        &self.header
    }
    /// The content key, for sealing envelopes.
    pub fn content_key(&self) -> &ContentKey {
        &self.content_key
    }
    /// The per-message revocation key.
    pub fn revocation_secret(&self) -> &SigningSecret {
        &self.revocation
    }
    /// A signed revocation of this clip, dated `now`.
    pub fn revoke(&self, now: UnixMillis) -> RevocationRecord {
        RevocationRecord::sign(&self.revocation, now)
    }
}

/// Seals everything `reader` yields (exactly `header.content_len` bytes),
/// passing each ciphertext chunk to `sink` with its index as soon as it is
/// sealed. Memory use is one chunk.
pub fn seal_reader<R, S, G>(
    header: ClipHeader,
    reader: &mut R,
    mut sink: S,
    rng: &mut G,
) -> Result<SealedClip, Error>
where
    R: std::io::Read + ?Sized,
    S: FnMut(u32, &[u8]) -> std::io::Result<()>,
    G: CryptoRng + ?Sized,
{
    let mut sealer = ClipSealer::new(header, rng)?;
    // Content is read straight into the buffer and sealed in place, so the
    // plaintext never sits anywhere else and is overwritten chunk by chunk.
    let mut buf = Zeroizing::new(Vec::with_capacity(CHUNK_SIZE + crate::limits::TAG_SIZE));
    while let Some(n) = sealer.next_content_len() {
        // read_exact overwrites all of it: the last chunk's buffer is cut
        // (or grown) to length, not zeroed first.
        buf.resize(n, 0);
        let read = reader.read_exact(&mut buf[..]);
        read.map_err(|e| Error::Io(e.to_string()))?;
        let (index, _) = sealer.seal_next_in_place(&mut buf)?;
        sink(index, &buf).map_err(|e| Error::Io(e.to_string()))?;
    }
    let mut probe = [0u8; 1];
    match reader.read(&mut probe) {
        Ok(0) => {}
        Ok(_) => return Err(Error::Stream("reader yields more than content_len bytes")),
        Err(e) => return Err(Error::Io(e.to_string())),
    }
    sealer.finish()
}
