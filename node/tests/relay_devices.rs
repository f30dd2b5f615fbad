//! One active device per identity (RELAY.md §4): once a newer device of an
//! identity has logged in, the older device's session is refused on every
//! logged-in request and dropped.

mod common;
mod mailbox_client;

use common::Relay;
use mailbox_client::{Party, Peer, code, deposit_clip, now, rng, runtime, seal};
use mayfly_protocol::PrekeyStore;
use mayfly_protocol::mailbox::{ErrorCode, Request, Response};

#[test]
fn a_newer_device_supersedes_the_older_devices_session() {
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    let (tcp, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let mut rng = rng(21);
        let alice = Party::new(&mut rng);
        let mut bob1 = Party::new(&mut rng);
        let device2 = bob1.identity.new_device(2, now(), &mut rng);
        let mut bob2 = Party {
            prekeys: PrekeyStore::new(&device2, now(), &mut rng),
            identity: bob1.identity.clone(),
            device: device2,
        };

        // Device 1 logs in and works.
        let peer1 = Peer::connect(&tcp, relay_id).await;
        assert_eq!(peer1.login(&bob1.device).await, Response::Ok);
        peer1.publish(&mut bob1, 1, &mut rng).await;
        assert!(matches!(peer1.list().await, Response::Entries { .. }));

        // Device 2 of the same identity logs in from another peer.
        let peer2 = Peer::connect(&tcp, relay_id).await;
        assert_eq!(peer2.login(&bob2.device).await, Response::Ok);

        // Device 1's logged-in requests are refused from now on.
        assert_eq!(code(&peer1.list().await), ErrorCode::Forbidden);
        // Its session was dropped: it is no longer logged in at all.
        assert_eq!(code(&peer1.list().await), ErrorCode::Unauthenticated);
        // Nor can it log in again with the superseded certificate.
        assert_eq!(code(&peer1.login(&bob1.device).await), ErrorCode::Forbidden);

        // Device 2 works: it publishes, receives a clip and lists it.
        peer2.publish(&mut bob2, 1, &mut rng).await;
        let alice_peer = Peer::connect(&tcp, relay_id).await;
        let clip = seal(1000, &mut rng);
        deposit_clip(&alice_peer, &alice, &bob2, &clip, &mut rng).await;
        let Response::Entries { entries, more } = peer2.list().await else {
            panic!("device 2 cannot list")
        };
        assert!(!more);
        assert_eq!(entries.len(), 1);
        let seq = entries[0].seq;
        assert_eq!(
            peer2.req(Request::Ack { seqs: vec![seq] }).await,
            Response::Ok
        );
        for p in [peer1, peer2, alice_peer] {
            p.close().await;
        }
    });
    relay.stop();
}

#[test]
fn every_logged_in_request_of_a_superseded_device_is_forbidden() {
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    let (tcp, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let mut rng = rng(22);
        let mut bob1 = Party::new(&mut rng);
        let device2 = bob1.identity.new_device(2, now(), &mut rng);

        let old = [
            Peer::connect(&tcp, relay_id).await,
            Peer::connect(&tcp, relay_id).await,
            Peer::connect(&tcp, relay_id).await,
        ];
        for p in &old {
            assert_eq!(p.login(&bob1.device).await, Response::Ok);
        }
        let otks = bob1
            .prekeys
            .issue_one_time(&bob1.device, 1, now(), &mut rng);
        let new = Peer::connect(&tcp, relay_id).await;
        assert_eq!(new.login(&device2).await, Response::Ok);

        let publish = Request::PublishPrekeys {
            signed_prekey: bob1.prekeys.signed_prekey().clone(),
            one_time: otks,
        };
        let requests = [
            publish,
            Request::List { after: 0, limit: 1 },
            Request::Ack { seqs: vec![1] },
        ];
        for (p, r) in old.iter().zip(requests) {
            assert_eq!(code(&p.req(r).await), ErrorCode::Forbidden);
        }
        for p in old {
            p.close().await;
        }
        new.close().await;
    });
    relay.stop();
}
