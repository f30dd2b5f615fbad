//! Drives the `mayfly` binary as a separate process.

use std::process::Command;

fn mayfly() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mayfly"))
}

#[test]
fn demo_seals_opens_revokes_and_shows_the_clip_no_longer_opens() {
    let out = mayfly()
        .args(["demo", "--local", "--seed", "7", "--size-kib", "600"])
        .output()
        .expect("mayfly runs");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Timings vary; everything else is fixed by the seed and the clip size.
    let lines: Vec<String> = stdout
        .lines()
        .map(|l| match l.rfind(" (") {
            Some(i) if l.ends_with(" ms)") => l[..i].to_owned(),
            _ => l.to_owned(),
        })
        .map(|l| match l.find("first plaintext after ") {
            Some(i) => {
                let rest = &l[i..];
                let end = rest.find(',').unwrap_or(rest.len());
                format!("{}first plaintext after [t]{}", &l[..i], &rest[end..])
            }
            None => l,
        })
        .collect();
    let expected = include_str!("snapshots/demo.txt");
    assert_eq!(lines.join("\n").trim_end(), expected.trim_end());
}

#[test]
fn bad_arguments_give_one_clear_error_and_a_nonzero_exit() {
    let out = mayfly()
        .args(["demo", "--local", "--size-kib", "0"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--size-kib"), "{stderr}");
    let out = mayfly().arg("frobnicate").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_lists_the_commands() {
    let out = mayfly().arg("--help").output().expect("runs");
    assert!(out.status.success());
    let expected = include_str!("snapshots/help.txt");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        expected.trim_end()
    );
}

/// Replaces what varies between runs (timings, ids, addresses) with
/// placeholders.
fn normalize_networked(line: &str) -> String {
    let line = match line.rfind(" (") {
        Some(i) if line.ends_with(" ms)") => &line[..i],
        _ => line,
    };
    line.split(' ')
        .map(|w| {
            let core = w.trim_end_matches([',', ';', ':', ')']);
            let tail = &w[core.len()..];
            let is_id = core.len() == 12 && core.bytes().all(|b| b.is_ascii_hexdigit());
            let is_id_paren = core.len() == 13
                && core.starts_with('(')
                && core[1..].bytes().all(|b| b.is_ascii_hexdigit());
            if is_id {
                format!("<id>{tail}")
            } else if is_id_paren {
                format!("(<id>{tail}")
            } else if core.starts_with("/ip4/") {
                format!("<addr>{tail}")
            } else if core.parse::<f64>().is_ok() && core.contains('.') && !core.ends_with('.') {
                format!("<t>{tail}")
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn networked_demo_runs_every_step_and_ends_with_the_revocation_shown() {
    let out = mayfly().arg("demo").output().expect("mayfly runs");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = stdout.lines().map(normalize_networked).collect();
    let expected = include_str!("snapshots/demo-networked.txt");
    assert_eq!(lines.join("\n").trim_end(), expected.trim_end());
}
