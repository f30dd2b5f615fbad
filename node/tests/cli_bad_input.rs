//! The CLI's share of the bad-input campaign (RELIABILITY.md §4): every
//! command that takes a string, an id, a card, an invite or a file is run
//! with bad ones (empty, huge, non-UTF-8, look-alike prefixes, unknown ids,
//! missing files, directories, empty, random, truncated and endless files,
//! bad configurations, a home that is a file). Each run must end in time
//! with a non-zero exit and never a panic; an error of ours (exit 1) is one
//! line on stderr, and a usage error is clap's (exit 2).

mod cli_fixture;
mod common;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use cli_fixture::{befriend, mayfly};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/hello.mp4");
const NOT_VIDEO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/not-video.mp4");
const TOO_LONG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/too-long.mp4");
/// The longest any one bad run may take.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `mayfly --home HOME ARGS` and checks how it failed; returns its
/// exit code.
fn check(home: &Path, args: &[OsString]) -> i32 {
    let child = mayfly(home)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mayfly starts");
    let pid = child.id();
    // Shown in failures: the arguments, each cut to 60 characters.
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().chars().take(60).collect())
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(LIMIT) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{shown:?} still runs after {LIMIT:?}");
        }
    };
    let status = out.status;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let args = &shown;
    let code = status
        .code()
        .unwrap_or_else(|| panic!("{args:?} died of a signal: {status}"));
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert_ne!(code, 101, "{args:?}: {stderr}");
    assert_ne!(code, 0, "{args:?} succeeded with bad input");
    if code == 1 {
        let lines: Vec<&str> = stderr.trim_end().lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: not one line: {stderr}");
        assert!(
            lines[0].starts_with("mayfly: error: "),
            "{args:?}: {stderr}"
        );
    } else {
        assert_eq!(code, 2, "{args:?}: exit {code}: {stderr}");
    }
    code
}

fn os(s: &str) -> OsString {
    s.into()
}

#[test]
fn bad_strings_files_and_flags_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let relay = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWRGM39uL4zHrZEndpXQ1ongc8L4knhgZK38f4cdYGHMVE";
    let alice = dir.path().join("alice");
    let bob = dir.path().join("bob");
    for (home, name) in [(&alice, "alice"), (&bob, "bob")] {
        let out = mayfly(home)
            .args(["init", "--name", name, "--relay", relay])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    befriend(&alice, &bob);

    // Bad files.
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let random = files.join("random.mp4");
    let mut junk = vec![0u8; 100_000];
    for (i, b) in junk.iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0];
    }
    std::fs::write(&random, &junk).unwrap();
    let truncated = files.join("truncated.mp4");
    std::fs::write(&truncated, &std::fs::read(SAMPLE).unwrap()[..600]).unwrap();
    let empty = files.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let bad_toml = files.join("bad.toml");
    std::fs::write(
        &bad_toml,
        b"listen = [\"/ip4/0.0.0.0/tcp/x\"]\n[store]\nno_such_key = 1\n",
    )
    .unwrap();
    let garbage_toml = files.join("garbage.toml");
    std::fs::write(&garbage_toml, &junk[..4000]).unwrap();
    let bad_files: Vec<OsString> = vec![
        files.join("missing.mp4").into(),
        files.clone().into(),
        empty.into(),
        random.clone().into(),
        truncated.into(),
        os(NOT_VIDEO),
        os(TOO_LONG),
        os("/dev/zero"),
    ];

    // Bad strings.
    let huge = "f".repeat(100_000);
    let bad_strings: Vec<OsString> = vec![
        os(""),
        os("x"),
        os(&huge),
        OsString::from_vec(vec![0xff, 0xfe, b'a']),
        os("-1"),
        os("99999999999999999999999999"),
        os("../../etc/passwd"),
        os("mfcard1qqqqqqqqqqqqqqqqqqqq"),
        os("mfinvite1qqqqqqqqqqqqqqqqqq"),
        os(&"ab".repeat(32)),
        os("ab"),
        os("nobody"),
    ];

    let mut runs = 0;
    let mut by_code = [0usize; 3];
    let mut run = |home: &Path, args: Vec<OsString>| {
        let code = check(home, &args);
        by_code[code as usize] += 1;
        runs += 1;
    };
    let v = |parts: &[&str], value: &OsString, tail: &[&str]| -> Vec<OsString> {
        let mut a: Vec<OsString> = parts.iter().map(|s| os(s)).collect();
        a.push(value.clone());
        a.extend(tail.iter().map(|s| os(s)));
        a
    };
    for s in &bad_strings {
        run(&alice, v(&["contact", "add"], s, &[]));
        run(&alice, v(&["invite", "accept"], s, &[]));
        run(&alice, v(&["send", "--to"], s, &[SAMPLE]));
        run(&alice, v(&["react"], s, &["wave"]));
        run(&alice, v(&["open"], s, &["--out", "-"]));
        run(&alice, v(&["revoke"], s, &[]));
        run(&alice, v(&["follow"], s, &[]));
        run(&alice, v(&["unfollow"], s, &[]));
        run(&alice, v(&["live", "watch"], s, &["--out", "-"]));
        run(&alice, v(&["live", "revoke"], s, &[]));
        run(&alice, v(&["live", "viewers"], s, &[]));
        run(&alice, v(&["init", "--name", "carol", "--relay"], s, &[]));
        run(&alice, v(&["--json", "open"], s, &["--out", "-"]));
    }
    for f in &bad_files {
        run(&alice, v(&["send", "--to", "bob"], f, &[]));
        run(&alice, v(&["--json", "send", "--to", "bob"], f, &[]));
        // (An empty file is a valid configuration: every default.)
        if std::fs::metadata(f).is_ok_and(|m| m.is_file() && m.len() == 0) {
            continue;
        }
        run(&alice, v(&["relay", "--config"], f, &[]));
    }
    for f in [&bad_toml, &garbage_toml] {
        run(&alice, v(&["relay", "--config"], &f.into(), &[]));
    }
    // Flags: unknown, duplicated, missing values, out of range.
    for args in [
        vec!["--no-such-flag", "inbox"],
        vec!["send", "--to", "bob"],
        vec!["send", "--to", "bob", "--to", "bob", SAMPLE, SAMPLE],
        vec!["open", "--out"],
        vec!["relay", "--listen", "not-a-multiaddr"],
        vec!["relay", "--listen", "/ip4/127.0.0.1/tcp/99999"],
        vec!["live", "start", "--segment-ms", "-5", "-"],
        vec!["inbox", "extra"],
    ] {
        run(&alice, args.iter().map(|s| os(s)).collect());
    }
    // A home that is a file, and one that does not exist.
    run(&random, vec![os("inbox")]);
    run(&dir.path().join("nowhere"), vec![os("inbox")]);
    run(&dir.path().join("nowhere"), vec![os("card")]);

    eprintln!(
        "cli bad input: {runs} runs, none panicked or hung; {} errors of ours (one line), {} usage errors",
        by_code[1], by_code[2]
    );
    // Nothing was stored by any of it: the homes still hold one contact each.
    let out = mayfly(&alice)
        .args(["--json", "contact", "list"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["contacts"].as_array().unwrap().len(), 1);
}
