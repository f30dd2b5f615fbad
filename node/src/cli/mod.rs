//! The client subcommands of the `mayfly` binary: each opens the home,
//! starts a client, does one thing, prints it (text or `--json`) and stops.

pub mod commands;
pub mod demo;
pub mod live;
pub mod output;
pub mod progress;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use mayfly_node::client::{self, Client, ClientConfig, Event};
use mayfly_node::home::Home;
use tokio::sync::mpsc;

/// The home directory: `--home`, else `$MAYFLY_HOME`, else `~/.mayfly`.
pub fn home_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    if let Some(dir) = std::env::var_os("MAYFLY_HOME") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").context("no --home given and $HOME is not set")?;
    Ok(Path::new(&home).join(".mayfly"))
}

/// A multi-threaded runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Settings of a one-shot command: no listener, nothing announced.
pub fn one_shot_config() -> ClientConfig {
    ClientConfig {
        listen: Vec::new(),
        announce: false,
        ..ClientConfig::default()
    }
}

/// Clock offset for tests: `MAYFLY_CLOCK_OFFSET_MS` (milliseconds, may be
/// negative). Shifts only this process's idea of now.
pub fn clock_offset() -> anyhow::Result<i64> {
    match std::env::var("MAYFLY_CLOCK_OFFSET_MS") {
        Ok(v) => v
            .parse()
            .with_context(|| format!("MAYFLY_CLOCK_OFFSET_MS={v:?} is not an integer")),
        Err(_) => Ok(0),
    }
}

/// Opens the home at `dir` and starts a client on it; the event loop runs
/// on the current runtime.
pub async fn start(
    dir: &Path,
    mut config: ClientConfig,
) -> anyhow::Result<(Client, mpsc::Receiver<Event>)> {
    config.clock_offset_ms = clock_offset()?;
    let home = Home::open(dir)?;
    let (client, events, event_loop) = client::new(home, config)?;
    tokio::spawn(event_loop.run());
    Ok((client, events))
}

/// Parses a lifetime such as `90s`, `30m`, `12h` or `2d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, e.g. 2d, 12h, 30m, 90s"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    if secs == 0 {
        return Err("the lifetime must be positive".into());
    }
    Ok(Duration::from_secs(secs))
}

/// Parses `send --expires`: a lifetime as [`parse_duration`] reads it, of at
/// most 14 days (`MAX_CLIP_TTL_MS`).
pub fn parse_expires(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    let limit = Duration::from_millis(mayfly_protocol::MAX_CLIP_TTL_MS);
    if d > limit {
        return Err(format!("{s} is too long: clips live at most 14d"));
    }
    Ok(d)
}
