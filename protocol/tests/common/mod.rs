//! Fixtures shared by the integration tests.

#![allow(dead_code)]

use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

pub fn rng(seed: u64) -> ChaCha20Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(s)
}

pub struct Party {
    pub identity: Identity,
    pub device: Device,
    pub prekeys: PrekeyStore,
}

impl Party {
    pub fn new(rng: &mut ChaCha20Rng) -> Self {
        let identity = Identity::generate(rng);
        let device = identity.new_device(1, NOW, rng);
        let prekeys = PrekeyStore::new(&device, NOW, rng);
        Self {
            identity,
            device,
            prekeys,
        }
    }

    /// A recipient for this party's signed prekey.
    pub fn recipient(&self) -> Recipient {
        Recipient {
            identity_key: self.identity.public(),
            prekey: self.prekeys.signed_prekey().public(),
        }
    }

    pub fn spk_secret(&mut self) -> DhSecret {
        let p = self.prekeys.signed_prekey().public();
        self.prekeys.take_secret(&p).expect("current signed prekey")
    }
}

pub fn header(content_len: usize) -> ClipHeader {
    ClipHeader {
        kind: ClipKind::Clip,
        allow_save: false,
        duration_ms: 10_000,
        created_at: NOW,
        expires_at: NOW.plus(DEFAULT_CLIP_TTL_MS),
        content_len: content_len as u64,
        parent: None,
        media_type: "video/mp4".into(),
    }
}

/// Content of `len` bytes that differs per `salt`.
pub fn content(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1] ^ salt)
        .collect()
}

/// Seals `content`, returning the sealed clip and its ciphertext chunks.
pub fn seal(content: &[u8], rng: &mut ChaCha20Rng) -> (SealedClip, Vec<Vec<u8>>) {
    let mut chunks = Vec::new();
    let sealed = seal_reader(
        header(content.len()),
        &mut &content[..],
        |_, c| {
            chunks.push(c.to_vec());
            Ok(())
        },
        rng,
    )
    .expect("seals");
    (sealed, chunks)
}

/// Opens `chunks` of `clip` with its own content key: the plaintext, or the error.
pub fn open_chunks(
    clip: &SealedClip,
    chunks: &[Vec<u8>],
    now: UnixMillis,
) -> Result<Vec<u8>, Error> {
    let mut opener = ClipOpener::new(clip.manifest().clone(), clip.content_key(), now)?;
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(opener.open_next(c)?);
    }
    opener.finish()?;
    Ok(out)
}
