//! Store quotas and per-peer rate limits over the wire (RELAY.md §5.2, §5.5):
//! `mayfly relay --config` with tiny limits, clients built with the library.
//! Every wait is bounded.

mod common;
mod mailbox_client;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Relay;
use mailbox_client::{
    Clip, Party, Peer, accepted_all, code, open_entry, rng as seeded, runtime, seal_salted,
};
use mayfly_protocol::mailbox::{ErrorCode, Request, Response};
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;

/// Starts the relay with `config` written to a file in `dir` (not its home).
fn start_with(home: &Path, dir: &Path, config: &str) -> Relay {
    let path = dir.join("relay.toml");
    std::fs::write(&path, config).unwrap();
    Relay::start(home, &["--config", path.to_str().unwrap()], 2)
}

/// Seals `len` bytes of a pattern that does not repeat within a chunk.
fn seal(len: usize, rng: &mut ChaCha20Rng) -> Clip {
    seal_salted(len, 0, rng)
}

/// `(seq, message id)` of every entry of the logged-in mailbox.
async fn listed(peer: &Peer) -> Vec<(u64, MessageId)> {
    let Response::Entries { entries, more } = peer.list().await else {
        panic!("no entries")
    };
    assert!(!more);
    entries.iter().map(|e| (e.seq, e.message_id)).collect()
}

#[test]
fn mailbox_depositor_and_clip_size_quotas_hold_and_free_up() {
    let started = Instant::now();
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = seeded(11);
    let alice = Party::new(&mut rng);
    let mut bob = Party::new(&mut rng);
    let mut carol = Party::new(&mut rng);
    let mut dave = Party::new(&mut rng);
    let first = seal(300 * 1024, &mut rng);
    let second = seal(300 * 1024, &mut rng);
    let to_carol = seal(300 * 1024, &mut rng);
    let to_dave = seal(300 * 1024, &mut rng);
    let big = seal(900 * 1024, &mut rng);
    let c = first.charge();
    for clip in [&second, &to_carol, &to_dave] {
        assert_eq!(clip.charge(), c);
    }
    assert!(big.charge() > 2 * c);
    // A mailbox holds one clip, not two; a depositor two, not three; a clip
    // may be twice the small ones, not three times.
    let config = format!(
        "[store]\nmax_clip_bytes = {}\nmailbox_bytes = {}\ndepositor_bytes = {}\n",
        2 * c,
        c + c / 2,
        2 * c + c / 2
    );
    let relay = start_with(home.path(), dir.path(), &config);
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let bob_peer = Peer::connect(&addr, relay_id).await;
        bob_peer.login_and_publish(&mut bob, 1, &mut rng).await;
        for party in [&mut carol, &mut dave] {
            let p = Peer::connect(&addr, relay_id).await;
            p.login_and_publish(party, 1, &mut rng).await;
            p.close().await;
        }
        let alice_peer = Peer::connect(&addr, relay_id).await;

        // Over the clip size: TooLarge, whatever the quotas.
        let env = alice_peer.envelope(&alice, &bob, &big, &mut rng).await;
        let r = alice_peer.deposit(&bob, &env, &big).await;
        assert_eq!(code(&r), ErrorCode::TooLarge, "{r:?}");

        // One clip fits the mailbox.
        let env_first = alice_peer.envelope(&alice, &bob, &first, &mut rng).await;
        let r = alice_peer.deposit(&bob, &env_first, &first).await;
        assert_eq!(r, accepted_all(&first));
        alice_peer.upload(&first).await;

        // A second does not: refused, and nothing of it is stored.
        let env_second = alice_peer.envelope(&alice, &bob, &second, &mut rng).await;
        let r = alice_peer.deposit(&bob, &env_second, &second).await;
        assert_eq!(code(&r), ErrorCode::QuotaExceeded, "{r:?}");
        let r = alice_peer
            .req(Request::GetManifest {
                message_id: second.sealed.message_id(),
            })
            .await;
        assert_eq!(code(&r), ErrorCode::NotFound);

        // The depositor's quota counts pending deposits too: a second clip
        // (to Carol, never uploaded) fits, a third (to Dave, whose mailbox is
        // empty) does not, while another peer may still deposit it.
        let env_carol = alice_peer
            .envelope(&alice, &carol, &to_carol, &mut rng)
            .await;
        let r = alice_peer.deposit(&carol, &env_carol, &to_carol).await;
        assert_eq!(r, accepted_all(&to_carol));
        let env_dave = alice_peer.envelope(&alice, &dave, &to_dave, &mut rng).await;
        let r = alice_peer.deposit(&dave, &env_dave, &to_dave).await;
        assert_eq!(code(&r), ErrorCode::QuotaExceeded, "{r:?}");
        let other = Peer::connect(&addr, relay_id).await;
        let r = other.deposit(&dave, &env_dave, &to_dave).await;
        assert_eq!(r, accepted_all(&to_dave));
        other.close().await;

        // Bob acknowledges the first clip: its charge is returned to his
        // mailbox and to Alice, and the second deposit succeeds.
        let entries = listed(&bob_peer).await;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].1, first.sealed.message_id());
        let r = bob_peer
            .req(Request::Ack {
                seqs: vec![entries[0].0],
            })
            .await;
        assert_eq!(r, Response::Ok);
        let r = alice_peer.deposit(&bob, &env_second, &second).await;
        assert_eq!(r, accepted_all(&second));
        alice_peer.upload(&second).await;

        // And it arrives whole.
        let Response::Entries { entries, .. } = bob_peer
            .req(Request::List {
                after: 0,
                limit: 64,
            })
            .await
        else {
            panic!("no entries")
        };
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(entry.message_id, second.sealed.message_id());
        let plaintext = open_entry(&bob_peer, &mut bob, entry).await;
        assert!(plaintext == second.content, "plaintext differs");
        alice_peer.close().await;
        bob_peer.close().await;
    });
    relay.stop();
    eprintln!("quotas: {:?}", started.elapsed());
}

#[test]
fn a_mailbox_entry_quota_counts_pending_deposits() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = seeded(12);
    let alice = Party::new(&mut rng);
    let mut bob = Party::new(&mut rng);
    let clips: Vec<Clip> = (0..3).map(|_| seal(1000, &mut rng)).collect();
    let relay = start_with(home.path(), dir.path(), "[store]\nmailbox_entries = 2\n");
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let bob_peer = Peer::connect(&addr, relay_id).await;
        bob_peer.login_and_publish(&mut bob, 1, &mut rng).await;
        let alice_peer = Peer::connect(&addr, relay_id).await;
        let mut envs = Vec::new();
        for clip in &clips {
            envs.push(alice_peer.envelope(&alice, &bob, clip, &mut rng).await);
        }
        // Two pending deposits fill the mailbox; a repeated one is no new entry.
        for (clip, env) in clips.iter().zip(&envs).take(2) {
            assert_eq!(
                alice_peer.deposit(&bob, env, clip).await,
                accepted_all(clip)
            );
        }
        let r = alice_peer.deposit(&bob, &envs[1], &clips[1]).await;
        assert_eq!(r, accepted_all(&clips[1]));
        let r = alice_peer.deposit(&bob, &envs[2], &clips[2]).await;
        assert_eq!(code(&r), ErrorCode::QuotaExceeded, "{r:?}");
        alice_peer.close().await;
        bob_peer.close().await;
    });
    relay.stop();
}

#[test]
fn a_peer_over_its_request_rate_is_refused_then_served_again() {
    let started = Instant::now();
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let relay = start_with(
        home.path(),
        dir.path(),
        "[rate]\nrequests_per_sec = 1.0\nburst = 3\n",
    );
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let peer = Peer::connect(&addr, relay_id).await;
        let answers =
            futures::future::join_all((0..10).map(|_| peer.req(Request::Challenge))).await;
        let limited = answers
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Response::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    }
                )
            })
            .count();
        let served = answers
            .iter()
            .filter(|r| matches!(r, Response::Challenge { .. }))
            .count();
        assert_eq!(limited + served, 10, "{answers:?}");
        assert!(limited >= 1, "{answers:?}");
        // The burst, and what refilled while the requests were in flight.
        let elapsed = started.elapsed().as_secs_f64();
        assert!(
            served >= 3 && served as f64 <= 3.0 + elapsed + 1.0,
            "{served} served in {elapsed} s"
        );

        // The bucket is per peer: another one is served at once.
        let other = Peer::connect(&addr, relay_id).await;
        assert!(matches!(
            other.req(Request::Challenge).await,
            Response::Challenge { .. }
        ));
        other.close().await;

        // At one token a second, the first peer is served again within 2 s.
        let limited_at = Instant::now();
        let deadline = limited_at + Duration::from_secs(2);
        loop {
            match peer.req(Request::Challenge).await {
                Response::Challenge { .. } => break,
                r => assert_eq!(code(&r), ErrorCode::RateLimited),
            }
            assert!(Instant::now() < deadline, "still rate limited after 2 s");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        eprintln!("served again after {:?}", limited_at.elapsed());
        peer.close().await;
    });
    relay.stop();
}

#[test]
fn a_deposit_waits_for_an_upload_slot_and_gets_it_when_the_upload_before_it_completes() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = seeded(13);
    let alice = Party::new(&mut rng);
    let carol = Party::new(&mut rng);
    let mut bob = Party::new(&mut rng);
    let (first, second, third) = (
        seal(1000, &mut rng),
        seal(1000, &mut rng),
        seal(1000, &mut rng),
    );
    // One slot; each peer one upload at a time.
    let relay = start_with(
        home.path(),
        dir.path(),
        "[uploads]\nmax_concurrent = 1\nmax_per_peer = 1\n",
    );
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let bob_peer = Peer::connect(&addr, relay_id).await;
        bob_peer.login_and_publish(&mut bob, 2, &mut rng).await;
        let alice_peer = Peer::connect(&addr, relay_id).await;
        let carol_peer = Peer::connect(&addr, relay_id).await;
        let to_first = alice_peer.envelope(&alice, &bob, &first, &mut rng).await;
        let to_second = carol_peer.envelope(&carol, &bob, &second, &mut rng).await;
        let to_third = alice_peer.envelope(&alice, &bob, &third, &mut rng).await;

        // Alice takes the only slot.
        let r = alice_peer.deposit(&bob, &to_first, &first).await;
        assert_eq!(r, accepted_all(&first));
        // A second clip of hers is over her share: refused at once.
        let r = alice_peer.deposit(&bob, &to_third, &third).await;
        assert_eq!(code(&r), ErrorCode::RateLimited, "{r:?}");

        // Carol's deposit waits for the slot ...
        let mut waiting = Box::pin(carol_peer.deposit(&bob, &to_second, &second));
        // ... while the relay goes on answering others (Bob lists twice:
        // the second answer comes after the relay took Carol's deposit).
        for _ in 0..2 {
            tokio::select! {
                biased;
                r = &mut waiting => panic!("answered while the slot was taken: {r:?}"),
                r = bob_peer.list() => assert!(matches!(r, Response::Entries { .. })),
            }
        }
        // Alice's last chunk frees the slot, and Carol's deposit is answered.
        alice_peer.upload(&first).await;
        assert_eq!(waiting.await, accepted_all(&second));
        carol_peer.upload(&second).await;
        assert_eq!(listed(&bob_peer).await.len(), 2);
        // And Alice may upload again.
        let r = alice_peer.deposit(&bob, &to_third, &third).await;
        assert_eq!(r, accepted_all(&third));
        for p in [alice_peer, carol_peer, bob_peer] {
            p.close().await;
        }
    });
    relay.stop();
}

#[test]
fn prekey_bundles_have_a_rate_of_their_own() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = seeded(14);
    let nobody = Party::new(&mut rng);
    // Two bundles, then one every 1000 s: none more within this test.
    let relay = start_with(
        home.path(),
        dir.path(),
        "[rate]\nbundles_per_sec = 0.001\nbundle_burst = 2\n",
    );
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let peer = Peer::connect(&addr, relay_id).await;
        let fetch = || Request::FetchBundle {
            identity_key: nobody.key(),
        };
        for _ in 0..2 {
            let r = peer.req(fetch()).await;
            assert_eq!(code(&r), ErrorCode::NotFound, "{r:?}");
        }
        let r = peer.req(fetch()).await;
        assert_eq!(code(&r), ErrorCode::RateLimited, "{r:?}");
        // Other requests are still served, and other peers get bundles.
        assert!(matches!(
            peer.req(Request::Challenge).await,
            Response::Challenge { .. }
        ));
        let other = Peer::connect(&addr, relay_id).await;
        assert_eq!(code(&other.req(fetch()).await), ErrorCode::NotFound);
        other.close().await;
        peer.close().await;
    });
    relay.stop();
}
