//! Plumbing that lets `snow` run sans-IO: its ephemeral keys come from a
//! generator seeded by the caller's RNG instead of the operating system.

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, Rng, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// The Noise protocol name of envelopes.
pub const ENVELOPE_NOISE_PARAMS: &str = "Noise_N_25519_ChaChaPoly_BLAKE2s";

struct SeededRandom(Option<ChaCha20Rng>);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        match &mut self.0 {
            Some(rng) => {
                rng.fill_bytes(dest);
                Ok(())
            }
            None => Err(snow::Error::Rng),
        }
    }
}

/// A resolver whose randomness is a ChaCha20 stream seeded from the caller.
pub(crate) struct InjectedResolver {
    seed: std::sync::Mutex<Option<[u8; 32]>>,
}

impl InjectedResolver {
    pub(crate) fn new<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Self {
            seed: std::sync::Mutex::new(Some(seed)),
        }
    }

    /// A resolver whose randomness always fails (for the responder, which needs none).
    pub(crate) fn without_rng() -> Self {
        Self {
            seed: std::sync::Mutex::new(None),
        }
    }
}

impl CryptoResolver for InjectedResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        let seed = self.seed.lock().ok()?.take();
        Some(Box::new(SeededRandom(seed.map(ChaCha20Rng::from_seed))))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}
