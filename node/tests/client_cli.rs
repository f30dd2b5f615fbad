//! End-to-end scenarios: a `mayfly relay` and several `mayfly` client
//! processes on loopback, driven through the CLI as a user would, with
//! erasure scans of the homes afterwards.

mod cli_fixture;
mod client_fixture;
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;

use cli_fixture::{befriend, card, init, json, json_at, mayfly, received_ids, run};
use client_fixture::{copy_dir, files_containing};
use common::{Relay, TIMEOUT};
use mayfly_node::home::Home;
use mayfly_protocol::MessageId;
use serde_json::Value;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/hello.mp4");
const TOO_LONG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/too-long.mp4");

/// Asserts failure with one line on stderr containing `needle`.
fn fails(home: &Path, args: &[&str], needle: &str) {
    let out = run(home, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} lacks {needle:?}"
    );
}

/// A `mayfly online` process printing JSON events.
struct Online {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Online {
    fn start(home: &Path) -> Online {
        let mut child = mayfly(home)
            .args(["--json", "online"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let mut online = Online { child, lines };
        online.wait_for("listening");
        online
    }

    fn wait_for(&mut self, event: &str) -> Value {
        loop {
            match self.lines.recv_timeout(TIMEOUT) {
                Ok(v) if v["event"] == event => return v,
                Ok(_) => {}
                Err(e) => {
                    let _ = self.child.kill();
                    panic!("no {event} event: {e}");
                }
            }
        }
    }

    fn stop(mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("signal");
        let status = common::wait_with_timeout(&mut self.child).expect("stops");
        assert!(status.success(), "online exited with {status}");
    }
}

impl Drop for Online {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// A relay subprocess on loopback TCP, and its address.
fn tcp_relay(dir: &Path) -> (Relay, String) {
    let relay = Relay::start(&dir.join("relay"), &["--listen", "/ip4/127.0.0.1/tcp/0"], 1);
    let address = relay.tcp().to_string();
    (relay, address)
}

fn id_of(v: &Value) -> String {
    v["message_id"].as_str().unwrap().to_owned()
}

fn message_id(hex: &str) -> MessageId {
    let mut b = [0u8; 32];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    MessageId(b)
}

#[test]
fn send_stream_react_revoke_between_three_clients() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, r) = tcp_relay(dir.path());
    let alice = init(dir.path(), "alice", &r);
    let bob = init(dir.path(), "bob", &r);
    let carol = init(dir.path(), "carol", &r);

    // alice and bob swap cards; carol joins by alice's invite.
    json(&alice, &["contact", "add", &card(&bob)]);
    json(&bob, &["contact", "add", &card(&alice)]);
    json(&bob, &["inbox"]); // publishes bob's prekeys at the relay
    let invite = json(&alice, &["invite"])["invite"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(invite.starts_with("mfinvite1"));
    json(&carol, &["invite", "accept", &invite]);
    json(&alice, &["inbox"]); // takes in carol's reply
    let names: Vec<String> = json(&alice, &["contact", "list"])["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["bob", "carol"]);

    // carol is online, bob is not: carol gets it direct, bob via the relay.
    let mut carol_online = Online::start(&carol);
    let sent = json(&alice, &["send", "--to", "bob,carol", SAMPLE]);
    let id = id_of(&sent);
    let vias: Vec<(String, String)> = sent["delivered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["to"].as_str().unwrap().into(),
                d["via"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(vias[0].0, "bob");
    assert!(vias[0].1.starts_with("relay "), "{vias:?}");
    assert_eq!(vias[1], ("carol".into(), "direct".into()));
    let got = carol_online.wait_for("received");
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["direct"], true);
    carol_online.stop();

    // bob syncs and streams it to stdout; saving to a file is refused.
    assert_eq!(received_ids(&bob), std::slice::from_ref(&id));
    let out = run(&bob, &["open", &id[..8], "--out", "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, std::fs::read(SAMPLE).unwrap());
    fails(
        &bob,
        &[
            "open",
            &id,
            "--out",
            dir.path().join("copy.mp4").to_str().unwrap(),
        ],
        "did not allow saving",
    );
    assert!(!dir.path().join("copy.mp4").exists());
    let bob_key = Home::open(&bob)
        .unwrap()
        .received_key(&message_id(&id))
        .unwrap()
        .expect("bob holds the key");

    // carol reacts; alice gets the reaction.
    let reaction = id_of(&json(&carol, &["react", &id, "wave"]));
    let inbox = json(&alice, &["inbox"]);
    let r0 = &inbox["received"][0];
    assert_eq!(r0["id"], reaction.as_str());
    assert_eq!(r0["kind"], "flik");
    assert_eq!(r0["parent"], id.as_str());

    // alice revokes: the relay deletes it; bob (offline) and carol learn at
    // their next sync and erase the key; the reaction goes too.
    let revoked = json(&alice, &["revoke", &id]);
    assert_eq!(revoked["relays"].as_array().unwrap().len(), 1, "{revoked}");
    assert_eq!(
        revoked["notified"].as_array().unwrap().len(),
        2,
        "{revoked}"
    );
    assert_eq!(revoked["reactions_erased"], 1);
    assert!(received_ids(&alice).is_empty());
    assert!(received_ids(&bob).is_empty());
    assert!(received_ids(&carol).is_empty());
    assert_eq!(
        files_containing(&bob, bob_key.as_bytes()),
        Vec::<PathBuf>::new()
    );
    fails(&bob, &["open", &id, "--out", "-"], "no message");
    relay.stop();
}

#[test]
fn expiry_erases_on_the_recipient_at_its_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, r) = tcp_relay(dir.path());
    let alice = init(dir.path(), "alice", &r);
    let bob = init(dir.path(), "bob", &r);
    json(&alice, &["contact", "add", &card(&bob)]);
    json(&bob, &["contact", "add", &card(&alice)]);
    let id = id_of(&json(
        &alice,
        &["send", "--to", "bob", "--expires", "1h", SAMPLE],
    ));
    assert_eq!(received_ids(&bob), std::slice::from_ref(&id));
    let key = Home::open(&bob)
        .unwrap()
        .received_key(&message_id(&id))
        .unwrap()
        .expect("key");
    // Two hours later (by bob's clock), the clip is gone and so is its key,
    // without contacting any relay.
    let later = 2 * 3_600_000;
    let v = json_at(&bob, later, &["inbox", "--offline"]);
    assert!(v["received"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(
        files_containing(&bob, key.as_bytes()),
        Vec::<PathBuf>::new()
    );
    // A sync does not bring it back.
    let v = json_at(&bob, later, &["inbox"]);
    assert!(v["received"].as_array().unwrap().is_empty(), "{v}");
    // The sender's record (and revocation key) expires too.
    let v = json_at(&alice, later, &["inbox"]);
    assert!(v["sent"].as_array().unwrap().is_empty(), "{v}");
    relay.stop();
}

#[test]
fn bad_input_gives_one_clear_line_and_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("nowhere");
    fails(&nowhere, &["card"], "no mayfly home");
    let home = dir.path().join("h");
    fails(
        &home,
        &["init", "--name", "x", "--relay", "/ip4/127.0.0.1/tcp/1"],
        "/p2p/",
    );
    json(&home, &["init", "--name", "x"]);
    fails(&home, &["init", "--name", "x"], "already");
    fails(
        &home,
        &["contact", "add", "mfcard1aaaa"],
        "not a valid contact card",
    );
    fails(&home, &["send", "--to", "nobody", SAMPLE], "nobody");
    let other = dir.path().join("other");
    json(&other, &["init", "--name", "other"]);
    json(&home, &["contact", "add", &card(&other)]);
    fails(&home, &["send", "--to", "other", TOO_LONG], "181.0 s");
    fails(&home, &["open", "abc", "--out", "-"], "6 hex digits");
    let out = run(&home, &["send", "--to", "other", "--expires", "3x", SAMPLE]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("the unit must be"));
}

/// A home with one contact, `other`, and no relay: enough for everything a
/// send checks before it delivers.
fn home_with_a_contact(dir: &Path) -> PathBuf {
    let home = dir.join("h");
    json(&home, &["init", "--name", "me"]);
    let other = dir.join("other");
    json(&other, &["init", "--name", "other"]);
    json(&home, &["contact", "add", &card(&other)]);
    home
}

/// Runs `mayfly` with stdout a pipe whose reader has already gone, as in
/// `mayfly … | head -1` once `head` has its line.
fn run_into_closed_pipe(mut command: Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    command
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("runs")
}

/// Asserts that `out` ended quietly: exit 0, nothing on stderr.
fn quiet(what: &str, out: &Output) {
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).as_ref()
        ),
        (Some(0), ""),
        "{what}"
    );
}

#[test]
fn a_closed_stdout_ends_each_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let home = home_with_a_contact(dir.path());
    for args in [
        &["card"][..],
        &["--json", "card"],
        &["contact", "list"],
        &["--json", "contact", "list"],
        &["invite"],
        &["inbox", "--offline"],
        &["--json", "inbox", "--offline"],
        &["--help"],
    ] {
        let mut command = mayfly(&home);
        command.args(args);
        quiet(&format!("{args:?}"), &run_into_closed_pipe(command));
    }
    let mut demo = Command::new(env!("CARGO_BIN_EXE_mayfly"));
    demo.args(["demo", "--local", "--seed", "7", "--size-kib", "64"]);
    quiet("demo --local", &run_into_closed_pipe(demo));
}

#[test]
fn send_refuses_a_lifetime_over_14_days() {
    let dir = tempfile::tempdir().unwrap();
    let home = home_with_a_contact(dir.path());
    for expires in ["15d", "337h", "20161m"] {
        let out = run(
            &home,
            &["send", "--to", "other", "--expires", expires, SAMPLE],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{expires}: a usage error: {stderr}"
        );
        assert!(
            stderr.contains(&format!("{expires} is too long: clips live at most 14d")),
            "{expires}: {stderr}"
        );
    }
}

#[test]
fn a_truncated_clip_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = home_with_a_contact(dir.path());
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &std::fs::read(SAMPLE).unwrap()[..10_000]).unwrap();
    fails(
        &home,
        &["send", "--to", "other", cut.to_str().unwrap()],
        "the MP4 file is incomplete: its 'mdat' box runs to byte 32113, but the file has only 10000 bytes",
    );
}

#[test]
fn file_errors_say_plainly_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let home = home_with_a_contact(dir.path());

    // An OS error is printed once, with the file it is about.
    let missing = dir.path().join("missing.mp4");
    let out = run(&home, &["send", "--to", "other", missing.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "mayfly: error: cannot open {}: No such file or directory (os error 2)",
            missing.display()
        )
    );

    // Not an MP4: the error quotes how the file really starts.
    let not_video = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/not-video.mp4");
    fails(
        &home,
        &["send", "--to", "other", not_video],
        r#"(it starts with "This is a plain ")"#,
    );

    // Over the size limit: the error says what the limit is (a sparse file,
    // refused before it is read).
    let big = dir.path().join("big.mp4");
    std::fs::File::create(&big)
        .unwrap()
        .set_len((1 << 30) + 1)
        .unwrap();
    fails(
        &home,
        &["send", "--to", "other", big.to_str().unwrap()],
        "is over 1 GiB (1073741825 bytes); clips are at most 1 GiB (1073741824 bytes)",
    );
}

#[test]
fn adding_your_own_card_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    json(&home, &["init", "--name", "me"]);
    fails(
        &home,
        &["contact", "add", &card(&home)],
        "that is your own card",
    );
    let contacts = json(&home, &["contact", "list"]);
    assert_eq!(contacts["contacts"], serde_json::json!([]));
}

#[test]
fn open_to_stdout_is_quiet_and_a_revoked_clip_says_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, r) = tcp_relay(dir.path());
    let alice = init(dir.path(), "alice", &r);
    let bob = init(dir.path(), "bob", &r);
    json(&alice, &["contact", "add", &card(&bob)]);
    json(&bob, &["contact", "add", &card(&alice)]);
    let id = id_of(&json(&alice, &["send", "--to", "bob", SAMPLE]));
    assert_eq!(received_ids(&bob), std::slice::from_ref(&id));

    // Stdout carries the clip; stderr stays empty unless --json asks for
    // the report.
    let out = run(&bob, &["open", &id, "--out", "-"]);
    assert_eq!(out.stdout, std::fs::read(SAMPLE).unwrap());
    quiet("open --out -", &out);
    let out = run(&bob, &["--json", "open", &id, "--out", "-"]);
    assert_eq!(out.stdout, std::fs::read(SAMPLE).unwrap());
    let report: Value = serde_json::from_slice(&out.stderr).expect("a JSON report on stderr");
    assert_eq!(report["message_id"], id.as_str());

    // A player that quits early: the open ends quietly.
    let mut command = mayfly(&bob);
    command.args(["open", &id, "--out", "-"]);
    quiet(
        "open --out - into a closed pipe",
        &run_into_closed_pipe(command),
    );

    // alice revokes; bob has not synced since, and opens it.
    json(&alice, &["revoke", &id]);
    fails(
        &bob,
        &["open", &id, "--out", "-"],
        &format!("message {id} was revoked by its sender"),
    );
    assert!(received_ids(&bob).is_empty());
    relay.stop();
}

/// Runs `command` with stderr on a pseudo-terminal; returns its exit status
/// and everything it wrote there.
fn run_on_a_terminal(mut command: Command) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(pty.slave))
        .spawn()
        .expect("starts");
    // The child holds the terminal's only other end now.
    drop(command);
    let reader = thread::spawn(move || {
        let mut master = std::fs::File::from(pty.master);
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the child has closed the terminal.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
        }
        bytes
    });
    let status = common::wait_with_timeout(&mut child).expect("ends");
    let bytes = reader.join().expect("reads");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[test]
fn sends_show_progress_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, r) = tcp_relay(dir.path());
    let alice = init(dir.path(), "alice", &r);
    let bob = init(dir.path(), "bob", &r);
    json(&alice, &["contact", "add", &card(&bob)]);
    json(&bob, &["inbox"]);

    // On a terminal: a bar for sealing the file, then one for the upload.
    let mut command = mayfly(&alice);
    command.args(["send", "--to", "bob", SAMPLE]);
    let (status, terminal) = run_on_a_terminal(command);
    assert!(status.success(), "{terminal}");
    let sealing = terminal.find("sealing hello.mp4").expect(&terminal);
    let upload = terminal.find("bob (via relay)").expect(&terminal);
    assert!(sealing < upload, "{terminal}");
    assert!(terminal.contains("31.36 KiB/31.36 KiB"), "{terminal}");

    // Not with --json, and not when stderr is not a terminal.
    let mut command = mayfly(&alice);
    command.args(["--json", "send", "--to", "bob", SAMPLE]);
    let (status, terminal) = run_on_a_terminal(command);
    assert!(status.success(), "{terminal}");
    assert_eq!(terminal, "");
    let out = run(&alice, &["send", "--to", "bob", SAMPLE]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    relay.stop();
}

#[test]
fn a_replaced_device_erases_its_keys_when_it_learns_of_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, r) = tcp_relay(dir.path());
    let alice = init(dir.path(), "alice", &r);
    let bob = init(dir.path(), "bob", &r);
    befriend(&alice, &bob);
    let id = id_of(&json(&alice, &["send", "--to", "bob", SAMPLE]));
    assert_eq!(received_ids(&bob), std::slice::from_ref(&id));
    let key = Home::open(&bob)
        .unwrap()
        .received_key(&message_id(&id))
        .unwrap()
        .expect("bob holds the key");
    // The old phone keeps a copy of the home; bob moves to a new device.
    let old = dir.path().join("bob-old");
    copy_dir(&bob, &old);
    let replaced = json(&bob, &["device", "replace"]);
    assert_eq!(replaced["device_serial"], 2, "{replaced}");
    assert_eq!(files_containing(&old, key.as_bytes()).len(), 1);

    // The old device's next sync: the relay refuses it and shows the newer
    // certificate, so it erases every message key it holds.
    fails(&old, &["inbox"], "replaced by device #2");
    assert_eq!(
        files_containing(&old, key.as_bytes()),
        Vec::<PathBuf>::new()
    );
    // And from then on refuses to run, even offline.
    fails(&old, &["inbox", "--offline"], "replaced by device #2");
    fails(&old, &["open", &id, "--out", "-"], "replaced by device #2");
    relay.stop();
}
