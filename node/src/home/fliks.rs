//! Fliks: named clips kept in `DIR/fliks/`, one file per flik.

use std::fs;
use std::path::PathBuf;

use super::error::IoAt;
use super::files::write_atomic;
use super::{Home, HomeError};

/// The fliks directory in the home directory.
pub const FLIKS_DIR: &str = "fliks";
/// Longest flik name.
pub const MAX_FLIK_NAME_LEN: usize = 32;

/// True for `[a-z0-9-]{1,32}`.
pub fn valid_flik_name(name: &str) -> bool {
    (1..=MAX_FLIK_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn check(name: &str) -> Result<(), HomeError> {
    if valid_flik_name(name) {
        Ok(())
    } else {
        Err(HomeError::InvalidName(name.to_owned()))
    }
}

impl Home {
    /// Saves `bytes` as flik `name` (replacing one of that name), atomically.
    /// Returns its path, `DIR/fliks/NAME`.
    pub fn add_flik(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, HomeError> {
        check(name)?;
        let dir = self.dir.join(FLIKS_DIR);
        fs::create_dir_all(&dir).at(&dir)?;
        write_atomic(&dir, name, bytes)?;
        Ok(dir.join(name))
    }

    /// Every flik, sorted by name. Files with other names are ignored.
    pub fn fliks(&self) -> Result<Vec<(String, PathBuf)>, HomeError> {
        let dir = self.dir.join(FLIKS_DIR);
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if valid_flik_name(&name) && entry.file_type().at(&entry.path())?.is_file() {
                out.push((name, entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The path of flik `name`.
    pub fn flik(&self, name: &str) -> Result<PathBuf, HomeError> {
        check(name)?;
        let path = self.dir.join(FLIKS_DIR).join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(HomeError::UnknownFlik(name.to_owned()))
        }
    }
}
