//! Creating a client's home: what `mayfly init` does.

use std::path::Path;

use mayfly_protocol::UnixMillis;
use rand_chacha::ChaCha20Rng;

use super::ClientError;
use crate::home::{Home, Profile};
use crate::media::DEFAULT_FLIKS;

/// Creates a home in `dir` (identity, device, prekeys) with the default
/// fliks in its library.
pub fn create_home(
    dir: &Path,
    profile: Profile,
    now: UnixMillis,
    rng: &mut ChaCha20Rng,
) -> Result<Home, ClientError> {
    let home = Home::create(dir, profile, now, rng)?;
    for (name, bytes) in DEFAULT_FLIKS {
        home.add_flik(name, bytes)?;
    }
    Ok(home)
}
