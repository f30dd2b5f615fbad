//! Announce and Locate end to end: `mayfly relay` as a subprocess, clients
//! built with the library. An owner's addresses live with its session.

mod common;
mod mailbox_client;

use std::time::Duration;

use common::{Relay, TIMEOUT};
use libp2p::Multiaddr;
use libp2p::identity::Keypair;
use mailbox_client::{Party, Peer, code, now, rng, runtime};
use mayfly_node::relay::locate::device_peer_id;
use mayfly_protocol::mailbox::{ErrorCode, Request, Response};
use mayfly_protocol::*;

/// The libp2p keypair of `device`'s key: a client's transport identity.
fn device_keypair(device: &Device) -> Keypair {
    let mut seed = *device.secret().to_seed();
    Keypair::ed25519_from_bytes(&mut seed).expect("an ed25519 seed")
}

fn addr(s: &str) -> Vec<u8> {
    s.parse::<Multiaddr>().expect("a multiaddr").to_vec()
}

fn locate(who: &Party) -> Request {
    Request::Locate {
        identity_key: who.key(),
    }
}

fn announce(addrs: Vec<Vec<u8>>) -> Request {
    Request::Announce { addrs }
}

/// Asks until `who` is no longer found (the relay drops a session when it
/// sees the connection close), at most [`TIMEOUT`].
async fn until_not_found(peer: &Peer, who: &Party) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match peer.req(locate(who)).await {
            Response::Error {
                code: ErrorCode::NotFound,
                ..
            } => return,
            Response::Located { .. } => {
                assert!(tokio::time::Instant::now() < deadline, "still located");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn an_owner_is_located_while_its_session_lasts() {
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    let (address, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let mut rng = rng(1);
        let bob = Party::new(&mut rng);
        let bob_peer = Peer::connect_with(&address, relay_id, device_keypair(&bob.device)).await;
        let alice_peer = Peer::connect(&address, relay_id).await;
        let addrs = vec![
            addr("/ip4/192.0.2.7/tcp/4001"),
            addr("/ip6/2001:db8::7/udp/4001/quic-v1"),
        ];

        assert_eq!(
            code(&alice_peer.req(locate(&bob)).await),
            ErrorCode::NotFound
        );
        assert_eq!(
            code(&bob_peer.req(announce(addrs.clone())).await),
            ErrorCode::Unauthenticated
        );
        bob_peer.login_ok(&bob.device).await;
        // Logged in without addresses: not locatable.
        assert_eq!(
            code(&alice_peer.req(locate(&bob)).await),
            ErrorCode::NotFound
        );
        assert_eq!(bob_peer.req(announce(addrs.clone())).await, Response::Ok);
        let Response::Located {
            certificate,
            addrs: found,
        } = alice_peer.req(locate(&bob)).await
        else {
            panic!("bob is not located")
        };
        assert_eq!(&*certificate, bob.device.certificate());
        assert_eq!(found, addrs);
        assert_eq!(
            device_peer_id(&certificate),
            Some(bob_peer.client.local_peer_id()),
            "the caller derives the peer to dial from the certificate"
        );

        // An empty announcement withdraws; a new one replaces.
        assert_eq!(bob_peer.req(announce(vec![])).await, Response::Ok);
        assert_eq!(
            code(&alice_peer.req(locate(&bob)).await),
            ErrorCode::NotFound
        );
        let one = vec![addr("/ip4/198.51.100.1/udp/9/quic-v1")];
        assert_eq!(bob_peer.req(announce(one.clone())).await, Response::Ok);
        assert!(matches!(
            alice_peer.req(locate(&bob)).await,
            Response::Located { addrs, .. } if addrs == one
        ));

        // The addresses end with the session.
        bob_peer.close().await;
        until_not_found(&alice_peer, &bob).await;
        alice_peer.close().await;
    });
    relay.stop();
}

#[test]
fn bad_announcements_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    let (address, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let mut rng = rng(2);
        let bob = Party::new(&mut rng);
        let bob_peer = Peer::connect_with(&address, relay_id, device_keypair(&bob.device)).await;
        let alice_peer = Peer::connect(&address, relay_id).await;
        bob_peer.login_ok(&bob.device).await;

        // Bytes that are no multiaddr.
        assert_eq!(
            code(&bob_peer.req(announce(vec![vec![0xff, 0xff, 0xff]])).await),
            ErrorCode::Malformed
        );
        // Too many or too long addresses do not decode: the stream is dropped.
        let many: Vec<Vec<u8>> = (0..=MAX_ANNOUNCE_ADDRS)
            .map(|i| addr(&format!("/ip4/192.0.2.{i}/tcp/4001")))
            .collect();
        assert!(bob_peer.try_req(announce(many)).await.is_err());
        let long = "/dns4/".to_owned() + &"a".repeat(MAX_ADDR_LEN) + "/tcp/1";
        assert!(bob_peer.try_req(announce(vec![addr(&long)])).await.is_err());
        assert_eq!(
            code(&alice_peer.req(locate(&bob)).await),
            ErrorCode::NotFound,
            "nothing refused was kept"
        );

        // A login from a peer that is not the device key's may not announce.
        let stranger = Peer::connect(&address, relay_id).await;
        stranger.login_ok(&bob.device).await;
        assert_eq!(
            code(
                &stranger
                    .req(announce(vec![addr("/ip4/192.0.2.9/tcp/1")]))
                    .await
            ),
            ErrorCode::Forbidden
        );

        // A newer device supersedes the announcing one: it is not found.
        let good = vec![addr("/ip4/192.0.2.1/tcp/4001")];
        assert_eq!(bob_peer.req(announce(good)).await, Response::Ok);
        assert!(matches!(
            alice_peer.req(locate(&bob)).await,
            Response::Located { .. }
        ));
        let newer = bob.identity.new_device(2, now(), &mut rng);
        let newer_peer = Peer::connect_with(&address, relay_id, device_keypair(&newer)).await;
        newer_peer.login_ok(&newer).await;
        assert_eq!(
            code(&alice_peer.req(locate(&bob)).await),
            ErrorCode::NotFound
        );
        let newer_addrs = vec![addr("/ip4/192.0.2.2/tcp/4001")];
        assert_eq!(
            newer_peer.req(announce(newer_addrs.clone())).await,
            Response::Ok
        );
        assert!(matches!(
            alice_peer.req(locate(&bob)).await,
            Response::Located { certificate, addrs }
                if *certificate == *newer.certificate() && addrs == newer_addrs
        ));
        for p in [bob_peer, alice_peer, stranger, newer_peer] {
            p.close().await;
        }
    });
    relay.stop();
}
