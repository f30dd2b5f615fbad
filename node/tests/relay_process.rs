//! `mayfly relay` as a separate process, dialed by a client swarm built with
//! the same library code.
//!
//! Nothing here sleeps to synchronise: the relay's stdout is read on a thread
//! and every wait is bounded, so a broken relay fails a test instead of
//! hanging it.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use mayfly_node::config::Limits;
use mayfly_node::net::{self, Direction, Event, PROTOCOL_VERSION};
use nix::sys::signal::Signal;

mod common;

use common::{Relay, TIMEOUT, wait_with_timeout};

fn mayfly() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mayfly"));
    // The default log filter, whatever the environment running the tests.
    cmd.env_remove("RUST_LOG");
    cmd
}

/// Runs a `mayfly` command expected to exit by itself; returns its status,
/// stdout and stderr.
fn run_to_exit(cmd: &mut Command) -> (ExitStatus, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mayfly starts");
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let Some(status) = wait_with_timeout(&mut child) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "mayfly did not exit in time; stderr:\n{}",
            err.join().unwrap_or_default()
        );
    };
    (
        status,
        out.join().expect("reader"),
        err.join().expect("reader"),
    )
}

/// What a client learnt from the relay over one connection.
struct Contact {
    address: Multiaddr,
    protocol_version: String,
    agent_version: String,
    rtt: Duration,
}

/// Dials `address` from a fresh in-process client swarm and waits until the
/// relay has both identified itself and answered a ping.
fn dial_and_ping(address: &Multiaddr, relay: PeerId) -> Contact {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (client, mut events, event_loop) =
            net::new(Keypair::generate_ed25519(), &Limits::default()).expect("swarm");
        let task = tokio::spawn(event_loop.run());
        let contact = tokio::time::timeout(TIMEOUT, async {
            let peer = client.dial(address.clone()).await.expect("dial");
            assert_eq!(peer, relay);
            let (mut connected, mut identified, mut rtt) = (None, None, None);
            while connected.is_none() || identified.is_none() || rtt.is_none() {
                match events.recv().await.expect("event loop running") {
                    Event::ConnectionEstablished {
                        peer,
                        direction,
                        address,
                        ..
                    } if peer == relay => {
                        assert_eq!(direction, Direction::Outbound);
                        connected = Some(address);
                    }
                    Event::Identified { peer, info } if peer == relay => identified = Some(info),
                    Event::Pong { peer, rtt: r, .. } if peer == relay => rtt = Some(r),
                    _ => {}
                }
            }
            let info = identified.expect("loop ended");
            Contact {
                address: connected.expect("loop ended"),
                protocol_version: info.protocol_version,
                agent_version: info.agent_version,
                rtt: rtt.expect("loop ended"),
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no identify and ping from the relay at {address}"));
        drop(events);
        client.shutdown().await;
        task.await.expect("event loop");
        contact
    })
}

fn assert_contact(relay: &Relay, address: &Multiaddr) {
    let contact = dial_and_ping(address, relay.peer_id);
    assert_eq!(&contact.address, address);
    assert_eq!(contact.protocol_version, PROTOCOL_VERSION);
    assert_eq!(contact.protocol_version, "/mayfly/id/1");
    assert!(
        contact.agent_version.starts_with("mayfly/"),
        "{}",
        contact.agent_version
    );
    assert!(contact.rtt < TIMEOUT);
}

fn is_tcp(p: &Protocol) -> bool {
    matches!(p, Protocol::Tcp(_))
}

fn is_quic(p: &Protocol) -> bool {
    matches!(p, Protocol::QuicV1)
}

#[test]
fn a_client_connects_over_tcp_and_the_relay_stops_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    // The defaults: loopback only, one TCP and one QUIC listener.
    for a in &relay.listen {
        assert!(
            a.to_string().starts_with("/ip4/127.0.0.1/"),
            "{:?}",
            relay.listen
        );
    }
    let tcp = relay.tcp();
    assert!(!tcp.iter().any(|p| is_quic(&p)), "{tcp}");
    assert_contact(&relay, &tcp);

    relay.signal(Signal::SIGTERM);
    let (status, stderr) = relay.wait();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("received SIGTERM"), "{stderr}");
}

#[test]
fn a_client_connects_over_quic_and_the_relay_stops_on_sigint() {
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    let quic = relay.quic();
    assert_contact(&relay, &quic);

    relay.signal(Signal::SIGINT);
    let (status, stderr) = relay.wait();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("received SIGINT"), "{stderr}");
}

#[test]
fn a_restart_with_the_same_home_keeps_the_peer_id() {
    use std::os::unix::fs::PermissionsExt;

    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("node.key");
    let first = Relay::start(home.path(), &[], 2);
    let peer_id = first.peer_id;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let bytes = std::fs::read(&key).unwrap();
    first.signal(Signal::SIGTERM);
    assert!(first.wait().0.success());

    let second = Relay::start(home.path(), &[], 2);
    assert_eq!(second.peer_id, peer_id);
    assert_eq!(std::fs::read(&key).unwrap(), bytes);
    second.signal(Signal::SIGTERM);
    assert!(second.wait().0.success());

    // Another home, another identity.
    let other = tempfile::tempdir().unwrap();
    let third = Relay::start(other.path(), &[], 2);
    assert_ne!(third.peer_id, peer_id);
}

#[test]
fn a_corrupt_node_key_is_one_clear_error_and_left_untouched() {
    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("node.key");
    let garbage = b"\x08\x01\x12\x05short".to_vec();
    std::fs::write(&key, &garbage).unwrap();
    let (status, stdout, stderr) =
        run_to_exit(mayfly().arg("relay").arg("--home").arg(home.path()));
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert_eq!(stdout, "");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("mayfly: error: node key "), "{stderr}");
    assert!(lines[0].contains(&key.display().to_string()), "{stderr}");
    assert!(lines[0].contains("corrupt"), "{stderr}");
    assert_eq!(std::fs::read(&key).unwrap(), garbage);
    // Nothing else was written next to it.
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 1);
}

#[test]
fn bad_listen_addresses_are_clear_errors() {
    let home = tempfile::tempdir().unwrap();
    // Not a multiaddr at all: rejected by the argument parser.
    let (status, _, stderr) = run_to_exit(
        mayfly()
            .args(["relay", "--listen", "127.0.0.1:4001", "--home"])
            .arg(home.path()),
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
    assert!(stderr.contains("127.0.0.1:4001"), "{stderr}");

    // A multiaddr no transport here can listen on (UDP without QUIC).
    let (status, stdout, stderr) = run_to_exit(
        mayfly()
            .args(["relay", "--listen", "/ip4/127.0.0.1/udp/0", "--home"])
            .arg(home.path()),
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(!stdout.contains("listening"), "{stdout}");
    let error: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("mayfly: error:"))
        .collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(
        error[0].starts_with(
            "mayfly: error: cannot listen on /ip4/127.0.0.1/udp/0: not a TCP or QUIC address"
        ),
        "{stderr}"
    );
}

#[test]
fn the_config_file_sets_the_listen_addresses_and_is_checked() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("relay.toml");
    std::fs::write(
        &config,
        "listen = [\"/ip4/127.0.0.1/tcp/0\"]\n[limits]\nmax_established_per_peer = 2\n",
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let relay = Relay::start(home.path(), &["--config", config_arg], 1);
    assert!(relay.listen[0].iter().any(|p| is_tcp(&p)));
    assert_contact(&relay, &relay.listen[0].clone());
    relay.signal(Signal::SIGTERM);
    let (status, stderr) = relay.wait();
    assert!(status.success(), "{stderr}");

    // --listen replaces the file's addresses.
    let relay = Relay::start(
        home.path(),
        &[
            "--config",
            config_arg,
            "--listen",
            "/ip4/127.0.0.1/udp/0/quic-v1",
        ],
        1,
    );
    assert!(relay.listen[0].iter().any(|p| is_quic(&p)));
    drop(relay);

    std::fs::write(&config, "[limits]\nmax_established_per_peeer = 2\n").unwrap();
    let (status, _, stderr) = run_to_exit(
        mayfly()
            .args(["relay", "--config", config_arg, "--home"])
            .arg(home.path()),
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("relay.toml"), "{stderr}");
    assert!(stderr.contains("max_established_per_peeer"), "{stderr}");
}
