//! A mailbox survives its devices' and relay's clocks jumping ahead and back
//! (SPEC §5.1 rotation, RELAY.md §5.1): prekeys made while a clock was ahead
//! are replaced as soon as it is put right, and a device whose prekey
//! publish is refused still receives what is in its mailbox.

mod cli_fixture;
mod common;

use cli_fixture::{befriend, free_port, init_at, json, received_ids_at, relay_at};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/hello.mp4");

/// 15 days, the jump of the report: beyond any prekey's rotation period.
const AHEAD_MS: i64 = 15 * 24 * 3600 * 1000;

#[test]
fn a_mailbox_keeps_receiving_after_the_clocks_jump_ahead_and_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let relay_home = dir.path().join("relay");
    let ahead = AHEAD_MS.to_string();

    // Cards swapped on the real clock.
    let relay = relay_at(&relay_home, &listen, &[]);
    let r = relay.tcp().to_string();
    let alice = init_at(dir.path(), "alice", &r, 0);
    let bob = init_at(dir.path(), "bob", &r, 0);
    befriend(&alice, &bob);
    relay.stop();

    // Every clock jumps 15 days ahead: bob's device rotates its signed
    // prekey, dated then, and the relay (as far ahead) takes it.
    let relay = relay_at(&relay_home, &listen, &[("MAYFLY_CLOCK_OFFSET_MS", &ahead)]);
    assert!(received_ids_at(&bob, AHEAD_MS).is_empty());
    relay.stop();

    // Back on the real clock. Before any fix, every bob command warned
    // "prekey from the future", alice's send said "sent" (sealed to bob's
    // card), and bob never received it.
    let relay = relay_at(&relay_home, &listen, &[]);
    let sent = json(&alice, &["send", "--to", "bob", SAMPLE]);
    let id = sent["message_id"].as_str().expect("an id").to_owned();
    let out = cli_fixture::mayfly(&bob)
        .args(["--json", "inbox"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bob's inbox failed: {stderr}");
    assert!(
        !stderr.contains("from the future"),
        "bob's device still publishes a prekey from the future: {stderr}"
    );
    let inbox: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let received: Vec<&str> = inbox["received"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["id"].as_str().expect("an id"))
        .collect();
    assert_eq!(received, [id.as_str()], "bob must receive what alice sent");

    // The relay now serves bob's new prekey: a second send seals to a
    // bundle the sender accepts, and arrives too.
    let again = json(&alice, &["send", "--to", "bob", SAMPLE]);
    let id2 = again["message_id"].as_str().expect("an id").to_owned();
    let ids = received_ids_at(&bob, 0);
    assert!(ids.contains(&id2), "{ids:?} lacks {id2}");
    relay.stop();
}
