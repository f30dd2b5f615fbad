//! Randomness for the node: the protocol takes an RNG, the node supplies one.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A ChaCha20 generator seeded from the operating system, or from `seed` when
/// given (for reproducible runs).
pub fn node_rng(seed: Option<u64>) -> std::io::Result<ChaCha20Rng> {
    let mut s = [0u8; 32];
    match seed {
        Some(v) => s[..8].copy_from_slice(&v.to_le_bytes()),
        None => getrandom::fill(&mut s).map_err(std::io::Error::other)?,
    }
    Ok(ChaCha20Rng::from_seed(s))
}
