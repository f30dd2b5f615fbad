//! The raw-transfer protocol `/mayfly/bench/1` (`net::bench`), which the
//! relay benchmark measures store-and-forward against: served only when the
//! config enables it.

mod common;

use common::{Relay, TIMEOUT};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use mayfly_node::config::Limits;
use mayfly_node::net::{self, Role, bench};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Connects a client with the bench protocol to `address`, moves `up` bytes
/// to the relay and `down` back, and shuts the client down.
async fn transfer(address: &Multiaddr, relay: PeerId, up: u64, down: u64) -> std::io::Result<()> {
    let limits = Limits {
        bench_protocol: true,
        ..Limits::default()
    };
    let (client, mut events, event_loop, control) =
        net::new_with_bench(Keypair::generate_ed25519(), &limits, Role::Client).unwrap();
    let mut control = control.expect("bench protocol on");
    let task = tokio::spawn(event_loop.run());
    let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
    let peer = tokio::time::timeout(TIMEOUT, client.dial(address.clone()))
        .await
        .expect("dial in time")
        .expect("dial");
    assert_eq!(peer, relay);
    let result = tokio::time::timeout(TIMEOUT, bench::transfer(&mut control, relay, up, down))
        .await
        .expect("transfer in time");
    client.shutdown().await;
    task.await.unwrap();
    drain.abort();
    result
}

#[test]
fn a_relay_with_the_bench_protocol_moves_bytes_both_ways() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("relay.toml");
    std::fs::write(&config, "[limits]\nbench_protocol = true\n").unwrap();
    let relay = Relay::start(home.path(), &["--config", config.to_str().unwrap()], 2);
    runtime().block_on(async {
        for address in [relay.tcp(), relay.quic()] {
            transfer(&address, relay.peer_id, 1 << 20, 3 << 20)
                .await
                .expect("transfer");
            transfer(&address, relay.peer_id, 0, 0)
                .await
                .expect("empty");
        }
    });
    relay.stop();
}

#[test]
fn a_relay_without_it_refuses_the_protocol() {
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    runtime().block_on(async {
        let e = transfer(&relay.tcp(), relay.peer_id, 10, 10)
            .await
            .expect_err("unsupported");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    });
    relay.stop();
}

#[test]
fn the_bench_protocol_is_off_by_default() {
    assert!(!Limits::default().bench_protocol);
    let (_, _, _, control) =
        net::new_with_bench(Keypair::generate_ed25519(), &Limits::default(), Role::Relay).unwrap();
    assert!(control.is_none());
}
