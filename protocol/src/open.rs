//! Opening a clip: a manifest and its content key in, verified plaintext out.
//!
//! [`ClipOpener::new`] checks the key commitment before decrypting anything,
//! then decrypts and checks the header. [`ClipOpener::open_next`] takes the
//! ciphertext chunks in order and releases a chunk's plaintext only after its
//! hash and tag verify. [`ClipOpener::finish`] consumes the opener and fails if
//! the stream is incomplete. Any failure poisons the opener.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::Error;
use crate::header::{ClipHeader, HEADER_LEN};
use crate::kdf::ContentKey;
use crate::limits::{CHUNK_SIZE, MAX_CLOCK_SKEW_MS, TAG_SIZE};
use crate::manifest::{Manifest, VerifiedChunk};
use crate::stream::{Stream, chunk_nonce};
use crate::time::UnixMillis;

/// Opens one clip's chunks in order.
pub struct ClipOpener {
    manifest: Manifest,
    header: ClipHeader,
    stream: Stream,
    next: u32,
    poisoned: bool,
    plain: Vec<u8>,
}

impl core::fmt::Debug for ClipOpener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClipOpener")
            .field("message_id", &self.manifest.message_id())
            .field("next", &self.next)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl ClipOpener {
    /// Checks the commitment, decrypts the header and checks it against the
    /// manifest and `now`. Fails with [`Error::Decrypt`] on any cryptographic
    /// mismatch and with [`Error::Expired`] past `expires_at`.
    pub fn new(manifest: Manifest, key: &ContentKey, now: UnixMillis) -> Result<Self, Error> {
        let id = manifest.message_id();
        if !bool::from(key.commitment(&id).ct_eq(&manifest.commitment)) {
            return Err(Error::Decrypt);
        }
        let header_key = key.header_key(&id);
        let aead = ChaCha20Poly1305::new((&header_key.0).into());
        let mut buf = [0u8; HEADER_LEN];
        buf.copy_from_slice(&manifest.sealed_header[..HEADER_LEN]);
        let tag =
            Tag::try_from(&manifest.sealed_header[HEADER_LEN..]).map_err(|_| Error::Decrypt)?;
        aead.decrypt_inout_detached(
            &Nonce::from([0u8; 12]),
            &[],
            buf.as_mut_slice().into(),
            &tag,
        )
        .map_err(|_| Error::Decrypt)?;
        let header = ClipHeader::decode(&buf);
        buf.zeroize();
        // A header that authenticates but breaks the rules came from a broken or malicious sender.
        let header = header.map_err(|_| Error::Decrypt)?;
        if header.expires_at != manifest.expires_at()
            || header.padded_len() != manifest.padded_len()
        {
            return Err(Error::Decrypt);
        }
        if now >= header.expires_at {
            return Err(Error::Expired);
        }
        if header.created_at > now.plus(MAX_CLOCK_SKEW_MS) {
            return Err(Error::FromTheFuture);
        }
        Ok(Self {
            stream: Stream::new(key.payload_key(&id)),
            manifest,
            header,
            next: 0,
            poisoned: false,
            plain: Vec::with_capacity(CHUNK_SIZE),
        })
    }

    /// The decrypted, validated header.
    pub fn header(&self) -> &ClipHeader {
        &self.header
    }

    /// The manifest being opened.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Index of the chunk [`ClipOpener::open_next`] expects, or `None` when all are opened.
    pub fn next_index(&self) -> Option<u32> {
        (self.next < self.manifest.chunk_count()).then_some(self.next)
    }

    /// Verifies and decrypts the next chunk, returning its content bytes (padding removed).
    /// Nothing is returned for a chunk that fails; the opener is then poisoned.
    pub fn open_next(&mut self, ciphertext: &[u8]) -> Result<&[u8], Error> {
        if self.poisoned {
            return Err(Error::Decrypt);
        }
        match self.manifest.check_chunk(self.next, ciphertext) {
            Some(chunk) => self.open_verified(chunk),
            None => {
                self.poisoned = true;
                Err(Error::Decrypt)
            }
        }
    }

    /// Like [`ClipOpener::open_next`] for a chunk already checked against its
    /// hash on arrival ([`Manifest::check_chunk`]), so it is not hashed twice.
    /// The chunk must be the next one and its hash the one this manifest names.
    pub fn open_verified(&mut self, chunk: VerifiedChunk<'_>) -> Result<&[u8], Error> {
        if self.poisoned {
            return Err(Error::Decrypt);
        }
        let index = self.next;
        let count = self.manifest.chunk_count();
        let named = self.manifest.chunk_hashes().get(index as usize);
        if chunk.index() != index || named != Some(chunk.hash()) {
            self.poisoned = true;
            return Err(Error::Decrypt);
        }
        let ciphertext = chunk.bytes();
        let last = index + 1 == count;
        if self
            .stream
            .open(chunk_nonce(index, last), ciphertext, &mut self.plain)
            .is_err()
        {
            self.poisoned = true;
            return Err(Error::Decrypt);
        }
        let start = u64::from(index) * CHUNK_SIZE as u64;
        let content = self
            .header
            .content_len
            .saturating_sub(start)
            .min(self.plain.len() as u64) as usize;
        if self.plain[content..].iter().any(|&b| b != 0) {
            self.plain.zeroize();
            self.poisoned = true;
            return Err(Error::Decrypt);
        }
        self.next += 1;
        Ok(&self.plain[..content])
    }

    /// Ends the stream: fails unless every chunk was opened and none failed.
    pub fn finish(mut self) -> Result<ClipHeader, Error> {
        self.plain.zeroize();
        if self.poisoned || self.next != self.manifest.chunk_count() {
            return Err(Error::Decrypt);
        }
        Ok(self.header)
    }
}

/// Reads the concatenated ciphertext chunks from `reader`, writes the content
/// to `writer` chunk by chunk, and fails on truncation or trailing data.
/// Memory use is one chunk.
pub fn open_reader<R, W>(
    mut opener: ClipOpener,
    reader: &mut R,
    writer: &mut W,
) -> Result<ClipHeader, Error>
where
    R: std::io::Read + ?Sized,
    W: std::io::Write + ?Sized,
{
    let mut buf = vec![0u8; CHUNK_SIZE + TAG_SIZE];
    while let Some(index) = opener.next_index() {
        let len = opener.manifest().chunk_ciphertext_len(index);
        read_full(reader, &mut buf[..len])?;
        let plain = opener.open_next(&buf[..len])?;
        writer
            .write_all(plain)
            .map_err(|e| Error::Io(e.to_string()))?;
    }
    let mut probe = [0u8; 1];
    match read_full(reader, &mut probe) {
        Ok(()) => return Err(Error::Decrypt), // trailing data
        Err(Error::Decrypt) => {}             // end of input, as it must be
        Err(e) => return Err(e),
    }
    opener.finish()
}

/// `read_exact` that maps a short read to [`Error::Decrypt`] (truncation) and other failures to [`Error::Io`].
fn read_full<R: std::io::Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> Result<(), Error> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Decrypt,
        _ => Error::Io(e.to_string()),
    })
}
