//! Abandoned uploads over the wire (RELAY.md §5.2 step 4): a relay
//! restarted past `store.pending_ttl_secs` (`MAYFLY_CLOCK_OFFSET_MS`) has
//! deleted a partial upload and given its quota back. Every wait is bounded.

mod common;
mod mailbox_client;

use std::time::{Duration, Instant};

use common::Relay;
use mailbox_client::{
    Party, Peer, TIMEOUT, accepted_all, code, put, rng as seeded, runtime, seal_salted,
};
use mayfly_node::store::StoreLimits;
use mayfly_protocol::mailbox::{ErrorCode, Request, Response};

#[test]
fn a_partial_upload_is_gone_and_its_quota_free_after_the_pending_ttl() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = seeded(21);
    let alice = Party::new(&mut rng);
    let mut bob = Party::new(&mut rng);
    let first = seal_salted(600 * 1024, 1, &mut rng);
    let second = seal_salted(600 * 1024, 2, &mut rng);
    let c = first.charge();
    assert_eq!(second.charge(), c);
    // Bob's mailbox holds one of the two clips.
    let config = dir.path().join("relay.toml");
    std::fs::write(&config, format!("[store]\nmailbox_bytes = {}\n", c + c / 2)).unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let relay = Relay::start(home.path(), &args, 2);
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    let rt = runtime();
    let env_second = rt.block_on(async {
        let bob_peer = Peer::connect(&addr, relay_id).await;
        bob_peer.login_and_publish(&mut bob, 2, &mut rng).await;
        let alice_peer = Peer::connect(&addr, relay_id).await;
        let env_first = alice_peer.envelope(&alice, &bob, &first, &mut rng).await;
        let env_second = alice_peer.envelope(&alice, &bob, &second, &mut rng).await;
        // The first clip's upload breaks off after one chunk of three.
        let r = alice_peer.deposit(&bob, &env_first, &first).await;
        assert_eq!(r, accepted_all(&first));
        assert_eq!(alice_peer.req(put(&first, 0)).await, Response::Ok);
        let r = alice_peer.deposit(&bob, &env_second, &second).await;
        assert_eq!(code(&r), ErrorCode::QuotaExceeded, "{r:?}");
        alice_peer.close().await;
        bob_peer.close().await;
        env_second
    });
    relay.stop();

    // The relay again, its clock past the first deposit's deadline (the
    // clips themselves live for days more).
    let ttl_ms = StoreLimits::default().pending_ttl_secs * 1000;
    let offset = (ttl_ms + 60_000).to_string();
    let relay = Relay::start_with_env(
        home.path(),
        &args,
        2,
        &[("MAYFLY_CLOCK_OFFSET_MS", offset.as_str())],
    );
    let addr = relay.tcp();
    rt.block_on(async {
        let alice_peer = Peer::connect(&addr, relay_id).await;
        // The collector runs when the relay starts: wait, bounded, for it
        // to give back the quota.
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let r = alice_peer.deposit(&bob, &env_second, &second).await;
            if r == accepted_all(&second) {
                break;
            }
            assert_eq!(code(&r), ErrorCode::QuotaExceeded, "{r:?}");
            assert!(
                Instant::now() < deadline,
                "the partial upload still holds the quota"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = alice_peer
            .req(Request::GetChunk {
                hash: first.sealed.manifest().chunk_hashes()[0],
                offset: 0,
                length: 0,
            })
            .await;
        assert_eq!(code(&r), ErrorCode::NotFound, "{r:?}");
        let r = alice_peer.req(put(&first, 1)).await;
        assert_eq!(code(&r), ErrorCode::NotFound, "{r:?}");
        alice_peer.close().await;
    });
    relay.stop();
}
