//! `mayfly` client processes in temporary homes, driven through the CLI as a
//! user would, for the process tests that need a relay and a few clients.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::Relay;

/// `mayfly --home HOME`, with the environment's `RUST_LOG` and
/// `MAYFLY_HOME` out of the way.
pub fn mayfly(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mayfly"));
    c.env_remove("RUST_LOG")
        .env_remove("MAYFLY_HOME")
        .env_remove("MAYFLY_CLOCK_OFFSET_MS")
        .arg("--home")
        .arg(home);
    c
}

/// Runs `mayfly --json ARGS` with the clock `offset_ms` ahead (0: the real
/// clock), asserts success, and returns the JSON it printed.
pub fn json_at(home: &Path, offset_ms: i64, args: &[&str]) -> Value {
    let out = mayfly(home)
        .env("MAYFLY_CLOCK_OFFSET_MS", offset_ms.to_string())
        .arg("--json")
        .args(args)
        .output()
        .expect("mayfly runs");
    assert!(
        out.status.success(),
        "mayfly {args:?} failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// [`json_at`] on the real clock.
pub fn json(home: &Path, args: &[&str]) -> Value {
    json_at(home, 0, args)
}

/// Runs `mayfly ARGS` (no `--json`) on the real clock.
pub fn run(home: &Path, args: &[&str]) -> Output {
    mayfly(home).args(args).output().expect("mayfly runs")
}

/// A new home `dir/name` using the relay at `relay`, with the clock
/// `offset_ms` ahead.
pub fn init_at(dir: &Path, name: &str, relay: &str, offset_ms: i64) -> PathBuf {
    let home = dir.join(name);
    let v = json_at(
        &home,
        offset_ms,
        &["init", "--name", name, "--relay", relay],
    );
    assert!(v["card"].as_str().expect("a card").starts_with("mfcard1"));
    home
}

/// [`init_at`] on the real clock.
pub fn init(dir: &Path, name: &str, relay: &str) -> PathBuf {
    init_at(dir, name, relay, 0)
}

/// The card of the home.
pub fn card(home: &Path) -> String {
    json(home, &["card"])["card"]
        .as_str()
        .expect("a card")
        .to_owned()
}

/// `a` and `b` add each other's cards.
pub fn befriend(a: &Path, b: &Path) {
    json(a, &["contact", "add", &card(b)]);
    json(b, &["contact", "add", &card(a)]);
}

/// The ids of the clips `inbox` lists as received, with the clock
/// `offset_ms` ahead.
pub fn received_ids_at(home: &Path, offset_ms: i64) -> Vec<String> {
    json_at(home, offset_ms, &["inbox"])["received"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// [`received_ids_at`] on the real clock.
pub fn received_ids(home: &Path) -> Vec<String> {
    received_ids_at(home, 0)
}

/// A relay subprocess listening on `listen` (e.g. a fixed loopback port, to
/// restart it where its clients expect it), with `env` set.
pub fn relay_at(home: &Path, listen: &str, env: &[(&str, &str)]) -> Relay {
    Relay::start_with_env(home, &["--listen", listen], 1, env)
}

/// A loopback TCP port free now (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}
