//! The sender's spool: a clip is sealed once into a file of ciphertext
//! chunks, from which every recipient's upload reads. The file holds only
//! ciphertext. It is laid out as a chunk file of the local store (chunk
//! `i` at byte `i × CIPHERTEXT_CHUNK_SIZE`), which keeps it as the sent
//! clip's held copy ([`Spool::held`]); otherwise it is removed when the
//! send ends.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use mayfly_protocol::{CIPHERTEXT_CHUNK_SIZE, ClipHeader, Manifest, SealedClip, seal_reader};
use rand_chacha::ChaCha20Rng;

use super::ClientError;

/// A sealed clip's ciphertext on disk.
pub(super) struct Spool {
    path: PathBuf,
    file: File,
    /// Whether the file is the store's now (not removed on drop).
    held: bool,
}

impl Spool {
    /// Seals `content` (exactly `header.content_len` bytes) into a new file
    /// in `dir`.
    pub fn seal(
        dir: &Path,
        header: ClipHeader,
        content: &mut dyn Read,
        rng: &mut ChaCha20Rng,
    ) -> Result<(SealedClip, Spool), ClientError> {
        std::fs::create_dir_all(dir).map_err(|e| ClientError::io("creating the spool", e))?;
        let mut name = [0u8; 16];
        rand_core::Rng::fill_bytes(rng, &mut name);
        let path = dir.join(format!("{}.chunks", hex::encode(name)));
        let mut out = File::create(&path).map_err(|e| ClientError::io("creating the spool", e))?;
        let spool_err = |e| ClientError::io("writing the spool", e);
        let sealed = seal_reader(header, content, |_, chunk| out.write_all(chunk), rng);
        let sealed = match sealed {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e.into());
            }
        };
        out.flush().map_err(spool_err)?;
        drop(out);
        let file = File::open(&path).map_err(|e| ClientError::io("reading the spool", e))?;
        Ok((
            sealed,
            Spool {
                path,
                file,
                held: false,
            },
        ))
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file was moved into the local store, which removes it with
    /// the clip.
    pub fn held(mut self) {
        self.held = true;
    }

    /// Ciphertext chunk `index` of `manifest`.
    pub fn chunk(&self, manifest: &Manifest, index: u32) -> Result<Vec<u8>, ClientError> {
        let mut buf = vec![0u8; manifest.chunk_ciphertext_len(index)];
        let offset = u64::from(index) * CIPHERTEXT_CHUNK_SIZE as u64;
        read_exact_at(&self.file, &mut buf, offset)
            .map_err(|e| ClientError::io("reading the spool", e))?;
        Ok(buf)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.held {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut f = f;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}
