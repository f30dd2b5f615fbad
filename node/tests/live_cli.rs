//! Going live through the CLI, as users would: a `mayfly relay`, a
//! broadcaster and followers as processes on loopback. Followers follow,
//! the broadcaster goes live with a fragmented MP4 file, the followers
//! watch, and what they write is the broadcaster's input, byte for byte.

mod cli_fixture;
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;

use cli_fixture::{befriend, init, json, mayfly, run};
use common::{Relay, TIMEOUT};
use serde_json::Value;

const LIVE_SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/live.mp4");
const NOT_VIDEO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/not-video.mp4");
const LOOPBACK: &str = "/ip4/127.0.0.1/tcp/0";

/// A running `mayfly --json …` whose stdout lines are read as JSON.
struct Running {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Running {
    fn start(home: &Path, args: &[&str]) -> Running {
        Self::spawn(home, args, Stdio::null())
    }

    fn spawn(home: &Path, args: &[&str], stdin: Stdio) -> Running {
        let mut child = mayfly(home)
            .arg("--json")
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mayfly starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        Running { child, lines }
    }

    fn next(&self) -> Value {
        self.lines.recv_timeout(TIMEOUT).expect("a line in time")
    }

    /// A watch's summary line (it has no `event`), and the lines before it.
    fn until_summary(&self) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let v = self.next();
            if v.get("event").is_none() {
                return (v, before);
            }
            before.push(v);
        }
    }

    /// The next line whose `event` is `event`, and the lines skipped.
    fn until(&self, event: &str) -> (Value, Vec<Value>) {
        let mut skipped = Vec::new();
        loop {
            let Ok(v) = self.lines.recv_timeout(TIMEOUT) else {
                panic!("no {event} line in time; before it: {skipped:?}");
            };
            if v["event"] == event {
                return (v, skipped);
            }
            skipped.push(v);
        }
    }

    /// Waits for the process to exit; asserts success and returns stderr.
    fn finish(mut self) -> String {
        let status = self.child.wait().expect("wait");
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut stderr).ok();
        }
        assert!(status.success(), "{status}: {stderr}");
        stderr
    }
}

/// A relay process, and the homes of alice, bob, carol and dave, each of
/// the last three a contact of alice.
fn four_friends(dir: &Path) -> (Relay, [std::path::PathBuf; 4]) {
    let relay = Relay::start(&dir.join("relay"), &["--listen", LOOPBACK], 1);
    let address = relay.tcp().to_string();
    let homes = ["alice", "bob", "carol", "dave"].map(|n| init(dir, n, &address));
    for f in &homes[1..] {
        befriend(&homes[0], f);
    }
    (relay, homes)
}

#[test]
fn followers_watch_a_live_broadcast_and_write_exactly_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let (_relay, [alice, bob, carol, dave]) = four_friends(dir.path());

    // Nobody follows alice yet: going live needs followers or --to.
    let out = run(&alice, &["live", "start", LIVE_SAMPLE]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no followers yet"));

    // bob, carol and dave follow; dave changes his mind.
    for f in [&bob, &carol, &dave] {
        assert_eq!(json(f, &["follow", "alice"])["following"], true);
    }
    assert_eq!(json(&dave, &["unfollow", "alice"])["following"], false);
    let followers = json(&alice, &["followers"]);
    let names: Vec<&str> = followers["followers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "carol"], "{followers}");

    // A file that is not fragmented MP4 is refused before anyone is told.
    let out = run(&alice, &["live", "start", NOT_VIDEO]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not fragmented MP4"), "{stderr}");
    assert_eq!(
        json(&bob, &["live", "list"])["broadcasts"],
        serde_json::json!([])
    );

    // alice goes live and waits for both viewers before the first segment.
    let live = Running::start(
        &alice,
        &[
            "live",
            "start",
            "--listen",
            LOOPBACK,
            "--wait-for",
            "2",
            LIVE_SAMPLE,
        ],
    );
    let started = live.next();
    assert_eq!(started["event"], "live", "{started}");
    assert_eq!(started["viewers"], 2, "{started}");
    let id = started["broadcast_id"].as_str().unwrap().to_owned();

    // The start notification reached the followers (not dave).
    for f in [&bob, &carol] {
        let list = json(f, &["live", "list"]);
        assert_eq!(list["broadcasts"][0]["broadcast_id"], id.as_str(), "{list}");
        assert_eq!(list["broadcasts"][0]["broadcaster"], "alice");
    }
    assert_eq!(
        json(&dave, &["live", "list"])["broadcasts"],
        serde_json::json!([])
    );

    // bob watches as himself, carol anonymously.
    let watchers: Vec<_> = [(&bob, false), (&carol, true)]
        .iter()
        .map(|(f, anonymous)| {
            let out = f.join("watched.mp4");
            let mut args = vec![
                "live",
                "watch",
                &id[..8],
                "--out",
                out.to_str().unwrap(),
                "--listen",
                LOOPBACK,
                "--idle",
                "20s",
            ];
            if *anonymous {
                args.push("--anonymous");
            }
            (Running::start(f, &args), out)
        })
        .collect();
    // alice sees both join: bob by name, carol as an anonymous viewer.
    let mut joined = Vec::new();
    while joined.len() < 2 {
        let (j, _) = live.until("joined");
        joined.push(j["who"].as_str().unwrap().to_owned());
    }
    joined.sort();
    assert_eq!(joined, ["an anonymous viewer", "bob"]);
    // bob comments from another terminal: `live comment` goes through his
    // running watch (which holds his home).
    let out = run(&bob, &["live", "comment", &id[..8], "hello from bob"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("through the running broadcast or watch"),
        "{stdout}"
    );
    let (c, _) = live.until("comment");
    assert_eq!(
        (c["who"].as_str(), c["text"].as_str()),
        (Some("bob"), Some("hello from bob"))
    );
    // A bad comment is one clear line.
    let out = run(&bob, &["live", "comment", &id[..8], "two\nlines"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .trim_end()
            .lines()
            .count(),
        1
    );
    let (ended, _) = live.until("ended");
    assert_eq!(ended["viewers"], serde_json::json!(["bob"]), "{ended}");
    assert_eq!(ended["anonymous_viewers"], 1, "{ended}");
    live.finish();
    let input = std::fs::read(LIVE_SAMPLE).unwrap();
    let segments = ended["segments"].as_u64().unwrap();
    assert!(segments >= 5, "{ended}");
    for (i, (w, out)) in watchers.into_iter().enumerate() {
        let (summary, lines) = w.until_summary();
        w.finish();
        if i == 1 {
            // carol saw bob's comment.
            assert!(
                lines
                    .iter()
                    .any(|l| l["event"] == "comment" && l["text"] == "hello from bob"),
                "{lines:?}"
            );
        }
        assert_eq!(summary["ended"], true, "{summary}");
        assert_eq!(summary["skipped"], 0, "{summary}");
        // Every segment but the end marker played.
        assert_eq!(
            summary["segments"].as_u64().unwrap(),
            segments - 1,
            "{summary}"
        );
        let got = std::fs::read(&out).unwrap();
        assert!(
            got == input,
            "{} bytes written, {} in",
            got.len(),
            input.len()
        );
    }
}

/// The epochs whose keys `home` holds for its only broadcast.
fn epochs(home: &Path) -> Vec<u64> {
    let list = json(home, &["live", "list"]);
    list["broadcasts"][0]["epochs"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|e| e.as_u64().unwrap())
        .collect()
}

#[test]
fn a_follower_who_unfollows_or_is_removed_while_live_gets_no_later_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_relay, [alice, bob, carol, dave]) = four_friends(dir.path());
    for f in [&bob, &carol, &dave] {
        assert_eq!(json(f, &["follow", "alice"])["following"], true);
    }
    // alice streams from stdin: the test decides when the stream ends. She
    // waits for bob and dave to be in the overlay before the first segment.
    let mut live = Running::spawn(
        &alice,
        &[
            "live",
            "start",
            "--listen",
            LOOPBACK,
            "--wait-for",
            "2",
            "-",
        ],
        Stdio::piped(),
    );
    let input = std::fs::read(LIVE_SAMPLE).unwrap();
    let (first, rest) = input.split_at(input.len() / 2);
    let mut stdin = live.child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, first).unwrap();
    let started = live.next();
    assert_eq!(started["viewers"], 3, "{started}");
    let id = started["broadcast_id"].as_str().unwrap().to_owned();
    let out = bob.join("watched.mp4");
    let watch = |home: &Path, idle: &str| {
        let out = home.join("watched.mp4");
        let args = [
            "live",
            "watch",
            &id[..8],
            "--out",
            out.to_str().unwrap(),
            "--listen",
            LOOPBACK,
            "--idle",
            idle,
        ];
        Running::start(home, &args)
    };
    let bob_watch = watch(&bob, "30s");
    let dave_watch = watch(&dave, "3s");
    // dave unfollows from another terminal while he watches: his running
    // watch sends it, and alice's key rotates without him.
    dave_watch.until("watching");
    let r = json(&dave, &["unfollow", "alice"]);
    assert_eq!(r["following"], false, "{r}");
    let (r, _) = live.until("rotated");
    assert_eq!(
        (r["removed"].as_str(), r["epoch"].as_u64()),
        (Some("dave"), Some(1)),
        "{r}"
    );
    // alice removes carol from another terminal: it goes through the
    // running broadcast, which rotates again.
    let removed = json(&alice, &["followers", "--remove", "carol"]);
    assert_eq!(removed["rotated"], true, "{removed}");
    let (r, _) = live.until("rotated");
    assert_eq!(
        (r["removed"].as_str(), r["epoch"].as_u64()),
        (Some("carol"), Some(2)),
        "{r}"
    );
    // The rest of the stream, then its end.
    std::io::Write::write_all(&mut stdin, rest).unwrap();
    drop(stdin);
    let (ended, _) = live.until("ended");
    assert_eq!(ended["epochs"], 3, "{ended}");
    live.finish();
    let (summary, _) = bob_watch.until_summary();
    bob_watch.finish();
    assert_eq!(summary["ended"], true, "{summary}");
    // dave's watch went idle without the end: he never got its key. (How
    // many segments he played before the rotation depends on timing; with
    // none, the watch also exits non-zero, which is not checked here.)
    let (summary, _) = dave_watch.until_summary();
    let mut dave_watch = dave_watch;
    dave_watch.child.wait().unwrap();
    assert_eq!(summary["ended"], false, "{summary}");
    // bob played across both rotations and wrote the input byte for byte.
    assert!(
        std::fs::read(&out).unwrap() == input,
        "bob's stream differs"
    );
    // Each holds exactly the keys sealed while they were a viewer.
    assert_eq!(epochs(&bob), [0, 1, 2]);
    assert_eq!(epochs(&carol), [0, 1]);
    assert_eq!(epochs(&dave), [0]);
    let names: Vec<String> = json(&alice, &["followers"])["followers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["bob"]);
}

/// The 32-byte keys in the used slots of every `replay.slots` under `dir`
/// (RELAY.md §7: a slot is `name ‖ key`, all zero when free).
fn replay_keys(dir: &Path) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for f in files_under(dir) {
        if f.ends_with("replay.slots") {
            let bytes = std::fs::read(&f).unwrap();
            for s in bytes[64..].chunks_exact(64) {
                if s.iter().any(|&b| b != 0) {
                    keys.push(s[32..].to_vec());
                }
            }
        }
    }
    keys
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// How many of `keys` some file under `dir` holds.
fn keys_found(dir: &Path, keys: &[Vec<u8>]) -> usize {
    let files: Vec<Vec<u8>> = files_under(dir)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    keys.iter()
        .filter(|k| files.iter().any(|f| f.windows(32).any(|w| w == &k[..])))
        .count()
}

/// `alice` goes live with a replay, with nobody watching, and returns the
/// broadcast's id and its `ended` line.
fn broadcast_with_replay(alice: &Path) -> (String, Value) {
    let live = Running::start(
        alice,
        &[
            "live",
            "start",
            "--replay",
            "--no-pace",
            "--listen",
            LOOPBACK,
            LIVE_SAMPLE,
        ],
    );
    let started = live.next();
    assert_eq!(started["event"], "live", "{started}");
    let id = started["broadcast_id"].as_str().unwrap().to_owned();
    let (ended, _) = live.until("ended");
    live.finish();
    (id, ended)
}

#[test]
fn a_replay_plays_after_the_broadcast_and_is_erased_when_revoked_or_24_hours_old() {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("/ip4/127.0.0.1/tcp/{}", cli_fixture::free_port());
    let relay_home = dir.path().join("relay");
    let relay = cli_fixture::relay_at(&relay_home, &listen, &[]);
    let address = relay.tcp().to_string();
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(|n| init(dir.path(), n, &address));
    for f in [&bob, &carol] {
        befriend(&alice, f);
        assert_eq!(json(f, &["follow", "alice"])["following"], true);
    }

    // alice goes live with a replay; nobody watches. Every segment is kept.
    let (id, ended) = broadcast_with_replay(&alice);
    let segments = ended["segments"].as_u64().unwrap();
    assert_eq!(
        ended["replay"],
        serde_json::json!({"kept": segments, "failed": 0, "dropped": 0}),
        "{ended}"
    );
    // Her own broadcast is listed for her, to revoke.
    let list = json(&alice, &["live", "list"]);
    assert_eq!(list["broadcasts"][0]["broadcaster"], "you", "{list}");

    // bob watches after the end: the broadcast cannot be joined, so its
    // replay plays, from the start; carol asks for the replay outright.
    let input = std::fs::read(LIVE_SAMPLE).unwrap();
    for (f, args) in [(&bob, &[][..]), (&carol, &["--replay", "--anonymous"][..])] {
        let out = f.join("replay.mp4");
        let mut a = vec!["live", "watch", &id[..8], "--out", out.to_str().unwrap()];
        a.extend_from_slice(args);
        let w = Running::start(f, &a);
        let (summary, lines) = w.until_summary();
        w.finish();
        assert_eq!(summary["replay"], true, "{summary}");
        assert_eq!(summary["ended"], true, "{summary}");
        assert_eq!(summary["skipped"], 0, "{summary}");
        assert_eq!(summary["refused"], 0, "{summary}");
        assert_eq!(
            summary["segments"].as_u64(),
            Some(segments - 1),
            "{summary}"
        );
        if args.is_empty() {
            assert!(lines.iter().any(|l| l["event"] == "replay"), "{lines:?}");
        }
        let got = std::fs::read(&out).unwrap();
        assert!(
            got == input,
            "{} bytes written, {} in",
            got.len(),
            input.len()
        );
    }
    // alice's replay viewer list: bob by name (his signed join), carol as
    // an anonymous viewer.
    let viewers = json(&alice, &["live", "viewers", &id[..8]]);
    assert_eq!(viewers["viewers"], serde_json::json!(["bob"]), "{viewers}");
    assert_eq!(viewers["anonymous_viewers"], 1, "{viewers}");
    assert_eq!(viewers["unreadable"], 0, "{viewers}");
    let first = replay_keys(&relay_home);
    assert_eq!(first.len() as u64, segments, "a key slot per segment");
    assert_eq!(
        keys_found(&relay_home, &first),
        first.len(),
        "the scan finds them"
    );

    // A second broadcast, revoked: its replay is gone from the relay's
    // files at once, and the relay refuses it from then on.
    let (id2, _) = broadcast_with_replay(&alice);
    let second: Vec<Vec<u8>> = replay_keys(&relay_home)
        .into_iter()
        .filter(|k| !first.contains(k))
        .collect();
    assert!(!second.is_empty());
    let revoked = json(&alice, &["live", "revoke", &id2[..8]]);
    assert_eq!(revoked["keys_erased"], true, "{revoked}");
    assert_eq!(revoked["followers_told"], 2, "{revoked}");
    assert_eq!(
        revoked["deleted_at"].as_array().unwrap().len(),
        1,
        "{revoked}"
    );
    assert_eq!(
        keys_found(&relay_home, &second),
        0,
        "revoked keys left in a file"
    );
    assert_eq!(keys_found(&relay_home, &first), first.len());
    // alice erased its keys, and bob and carol theirs at their next sync
    // (the revocation notice): the broadcast is gone from every list.
    for h in [&alice, &bob, &carol] {
        let list = json(h, &["live", "list"]);
        let ids: Vec<&str> = list["broadcasts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["broadcast_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id.as_str()], "{list}");
    }
    let out = run(
        &bob,
        &["live", "watch", &id2[..8], "--replay", "--out", "-"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no broadcast"), "{stderr}");

    // A day later the relay's collector has erased the first replay too
    // (it runs when the relay starts: a bounded wait), and bob's keys are
    // gone with the day.
    relay.stop();
    let ahead = (DAY_MS + 60_000).to_string();
    let relay = cli_fixture::relay_at(&relay_home, &listen, &[("MAYFLY_CLOCK_OFFSET_MS", &ahead)]);
    let deadline = std::time::Instant::now() + TIMEOUT;
    while keys_found(&relay_home, &first) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a day-old replay is still in the relay's files"
        );
        thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = cli_fixture::mayfly(&bob)
        .env("MAYFLY_CLOCK_OFFSET_MS", &ahead)
        .args(["live", "watch", &id[..8], "--replay", "--out", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no broadcast"), "{stderr}");
    relay.stop();
}
