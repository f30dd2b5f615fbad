//! The client crash and power-cut campaigns (RELIABILITY.md §1, §2):
//! `kill -9` of a `mayfly` client process at a random point of a send, a
//! sync (`inbox`), an open or a revocation, over and over on the same two
//! homes, with a `mayfly relay` between them. In the power-cut form the
//! homes are on a lazy file system ([`lazyfs`]) that then drops every write
//! not synced.
//!
//! After each kill the victim's home opens and its local store passes its
//! integrity check ([`RelayStore::check`]); then the two clients converge
//! (the recipient syncs; a killed revocation is run again) and:
//!
//! * every send that answered is received, and opens to the sample byte for
//!   byte; so does every clip the recipient lists (also one from a killed
//!   send), so no partial clip is offered;
//! * no clip whose revocation answered is listed, and its content key is in
//!   no file of the recipient's home.
//!
//! `MAYFLY_CLIENT_CRASH_RUNS` / `MAYFLY_CLIENT_POWER_CUT_RUNS` set the
//! number of kills (25 each by default), `MAYFLY_CRASH_SEED` the seed.

mod cli_fixture;
mod client_fixture;
mod common;
mod lazyfs;

use lazyfs::{Disk, Fault, env_number};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cli_fixture::{befriend, init, json, mayfly, received_ids, run};
use client_fixture::files_containing;
use common::Relay;
use mayfly_node::home::Home;
use mayfly_node::store::{RelayStore, StoreLimits};
use mayfly_protocol::MessageId;
use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use rand_core::SeedableRng;
use serde_json::Value;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/hello.mp4");

fn message_id(hex: &str) -> MessageId {
    let mut b = [0u8; 32];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    MessageId(b)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
enum Action {
    Send,
    Inbox,
    Open,
    Revoke,
}

/// Runs `mayfly --json ARGS` on `home` and SIGKILLs it after `delay`
/// unless it ended first: its JSON output if it finished successfully.
fn run_and_kill(home: &Path, args: &[&str], delay: Duration) -> Option<Value> {
    let mut child = mayfly(home)
        .arg("--json")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mayfly starts");
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("reaped");
    if out.status.success() {
        Some(serde_json::from_slice(&out.stdout).expect("JSON"))
    } else {
        None
    }
}

/// The victim's home opens and its local store passes its check.
fn check_home(home: &Path) {
    let dir = Home::open(home)
        .unwrap_or_else(|e| panic!("{} does not open after a kill: {e}", home.display()))
        .mailbox_dir();
    if dir.exists() {
        let mut store =
            RelayStore::open(&dir, StoreLimits::default(), ChaCha20Rng::seed_from_u64(7))
                .expect("the local store opens after a kill");
        if let Err(e) = store.check() {
            let keep = std::env::temp_dir().join("mayfly-failed-home");
            let _ = std::fs::remove_dir_all(&keep);
            client_fixture::copy_dir(home, &keep);
            panic!(
                "{}: the local store fails its check: {e} (home copied to {})",
                home.display(),
                keep.display()
            );
        }
    }
}

/// Times one run of `mayfly --json ARGS`, asserting success.
fn timed(home: &Path, args: &[&str]) -> (Value, Duration) {
    let t = Instant::now();
    let v = json(home, args);
    (v, t.elapsed())
}

#[derive(Default, Debug)]
struct Tally {
    kills: BTreeMap<String, usize>,
    finished_before_kill: usize,
    sends_answered: usize,
    sends_landed_unanswered: usize,
    revocations: usize,
    /// Killed revocations that had told everyone before the kill.
    revokes_done_before_kill: usize,
    opened: usize,
    key_scans: usize,
}

#[test]
fn client_kills_lose_nothing_acknowledged() {
    campaign(Fault::Crash);
}

#[test]
fn client_power_cuts_lose_nothing_acknowledged() {
    campaign(Fault::PowerCut);
}

fn campaign(fault: Fault) {
    let (runs, name) = match fault {
        Fault::Crash => (env_number("MAYFLY_CLIENT_CRASH_RUNS", 25), "client crash"),
        Fault::PowerCut => (
            env_number("MAYFLY_CLIENT_POWER_CUT_RUNS", 25),
            "client power-cut",
        ),
    };
    let seed = env_number("MAYFLY_CRASH_SEED", 0x6b696c6c);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let started = Instant::now();
    let root = tempfile::tempdir().unwrap();
    let Some(disk) = Disk::new(fault, root.path(), "homes", name) else {
        return;
    };
    let homes = disk.dir.clone();
    let relay = Relay::start(
        &root.path().join("relay"),
        &["--listen", "/ip4/127.0.0.1/tcp/0"],
        1,
    );
    let r = relay.tcp().to_string();
    let alice = init(&homes, "alice", &r);
    let bob = init(&homes, "bob", &r);
    let bob_disk = disk.disk.join("bob");
    befriend(&alice, &bob);
    json(&bob, &["inbox"]); // bob's prekeys reach the relay
    let sample = std::fs::read(SAMPLE).unwrap();

    // How long each action takes whole: kills fall within 0-120% of it.
    let (sent0, t_send) = timed(&alice, &["send", "--to", "bob", SAMPLE]);
    let id0 = sent0["message_id"].as_str().unwrap().to_owned();
    let (_, t_inbox) = timed(&bob, &["inbox"]);
    let t = Instant::now();
    let out = run(&bob, &["open", &id0, "--out", "-"]);
    assert!(out.status.success() && out.stdout == sample);
    let t_open = t.elapsed();
    let (_, t_revoke) = {
        let (v, _) = timed(&alice, &["send", "--to", "bob", SAMPLE]);
        let id = v["message_id"].as_str().unwrap().to_owned();
        timed(&alice, &["revoke", &id])
    };
    json(&bob, &["inbox"]);

    // Clips alice sent and that answered (to be received unless revoked),
    // the revoked ones, and the content keys bob held.
    let mut answered: BTreeSet<String> = [id0.clone()].into();
    let mut revoked: BTreeSet<String> = BTreeSet::new();
    let mut opened: BTreeSet<String> = [id0].into();
    let mut keys: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut tally = Tally::default();
    let mut history: Vec<String> = Vec::new();

    for _ in 0..runs {
        let live: Vec<&String> = answered.difference(&revoked).collect();
        let action = match rng.next_u64() % 10 {
            0..=3 => Action::Send,
            4..=5 => Action::Inbox,
            6..=7 if !live.is_empty() => Action::Open,
            _ if !live.is_empty() => Action::Revoke,
            _ => Action::Send,
        };
        let target = (!live.is_empty()).then(|| live[rng.next_u64() as usize % live.len()].clone());
        let (home, args, whole): (&Path, Vec<String>, Duration) = match action {
            Action::Send => (
                &alice,
                vec!["send".into(), "--to".into(), "bob".into(), SAMPLE.into()],
                t_send,
            ),
            Action::Inbox => (&bob, vec!["inbox".into()], t_inbox),
            Action::Open => (
                &bob,
                vec![
                    "open".into(),
                    target.clone().unwrap(),
                    "--out".into(),
                    "/dev/null".into(),
                ],
                t_open,
            ),
            Action::Revoke => (
                &alice,
                vec!["revoke".into(), target.clone().unwrap()],
                t_revoke,
            ),
        };
        let delay = whole.mul_f64((rng.next_u64() % 1200) as f64 / 1000.0);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let finished = run_and_kill(home, &args, delay);
        history.push(format!(
            "{action:?} {:?} after {delay:?}: {}",
            target.as_deref().map(|t| &t[..8]),
            if finished.is_some() {
                "finished"
            } else {
                "killed"
            }
        ));
        disk.cut();
        *tally.kills.entry(format!("{action:?}")).or_default() += 1;
        tally.finished_before_kill += finished.is_some() as usize;
        check_home(home);

        match (action, finished) {
            (Action::Send, Some(v)) => {
                answered.insert(v["message_id"].as_str().unwrap().to_owned());
                tally.sends_answered += 1;
            }
            (Action::Revoke, Some(_)) => {
                revoked.insert(target.unwrap());
                tally.revocations += 1;
            }
            (Action::Revoke, None) => {
                // Run again to the end. The sender erases its record of a
                // clip only once the relays and recipients were told, so
                // "no message" means the killed run got that far.
                let id = target.unwrap();
                let out = run(&alice, &["revoke", &id]);
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(
                    out.status.success() || stderr.contains("no message"),
                    "revoke again: {stderr}"
                );
                tally.revokes_done_before_kill += !out.status.success() as usize;
                revoked.insert(id);
                tally.revocations += 1;
            }
            _ => {}
        }

        // Converge: bob syncs; every clip listed opens whole.
        let listed: BTreeSet<String> = received_ids(&bob).into_iter().collect();
        for id in &listed {
            assert!(
                !revoked.contains(id),
                "a revoked clip {id} is listed; runs: {history:#?}"
            );
            if !answered.contains(id) {
                // From a send killed after its deposit: it must be whole.
                answered.insert(id.clone());
                tally.sends_landed_unanswered += 1;
            }
            if opened.insert(id.clone()) || action == Action::Open {
                let out = run(&bob, &["open", id, "--out", "-"]);
                assert!(
                    out.status.success(),
                    "{id} does not open: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(out.stdout == sample, "{id} opens to other bytes");
                tally.opened += 1;
            }
            if !keys.contains_key(id) {
                let key = Home::open(&bob)
                    .unwrap()
                    .received_key(&message_id(id))
                    .unwrap()
                    .expect("bob holds the key of a listed clip");
                keys.insert(id.clone(), key.as_bytes().to_vec());
            }
        }
        for id in answered.difference(&revoked) {
            assert!(listed.contains(id), "an answered send {id} is not received");
        }
        for id in &revoked {
            if let Some(key) = keys.get(id) {
                let found = files_containing(&bob_disk, key);
                assert!(found.is_empty(), "the key of revoked {id} is in {found:?}");
            }
        }
        tally.key_scans += 1;
    }
    relay.stop();
    let lazy = disk.figures();
    eprintln!(
        "{name} campaign: seed {seed:#x}, {runs} kills of a client in {:.1} s; whole actions: send {t_send:?}, inbox {t_inbox:?}, open {t_open:?}, revoke {t_revoke:?}; {tally:?}{lazy}; answered clips lost: 0",
        started.elapsed().as_secs_f64()
    );
}
