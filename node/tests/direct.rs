//! Direct delivery in process: two client swarms on loopback TCP, the
//! receiver answering `/mayfly/direct/1` with a personal mailbox service
//! over its own store. No sleeps: every wait is an event with a timeout.

mod mailbox_client;

use std::sync::Arc;

use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use mailbox_client::{Clip, Party, Peer, TIMEOUT, accepted_all, code, deposit, now, rng, runtime};
use mayfly_node::clock::Clock;
use mayfly_node::config::Limits;
use mayfly_node::metrics::RelayMetrics;
use mayfly_node::net::{self, Event};
use mayfly_node::relay::PersonalEvent;
use mayfly_node::relay::service::{Service, ServiceLimits};
use mayfly_node::store::{RelayStore, StoreLimits};
use mayfly_protocol::mailbox::{ErrorCode, LoginProof, Request, Response, RevokeOutcome};
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use tokio::sync::mpsc;

/// The libp2p keypair of `device`'s key: a client's transport identity.
fn device_keypair(device: &Device) -> Keypair {
    let mut seed = *device.secret().to_seed();
    Keypair::ed25519_from_bytes(&mut seed).expect("an ed25519 seed")
}

/// A client answering direct requests for `owner` from `store`.
struct Receiver {
    peer: PeerId,
    address: Multiaddr,
    deliveries: mpsc::Receiver<PersonalEvent>,
    client: net::Client,
}

impl Receiver {
    async fn start(owner: &Party, store: Arc<RelayStore>) -> Receiver {
        let (client, mut events, event_loop) =
            net::new(device_keypair(&owner.device), &Limits::default()).expect("swarm");
        tokio::spawn(event_loop.run());
        client
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .await
            .expect("listens");
        let address = tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(Event::ListenAddr { address, .. }) = events.recv().await {
                    return address;
                }
            }
        })
        .await
        .expect("a listen address in time");
        let (tx, deliveries) = mpsc::channel(16);
        let peer = client.local_peer_id();
        let mut service = Service::personal(
            store,
            client.clone(),
            peer,
            owner.key(),
            ServiceLimits::default(),
            Arc::new(Clock::default()),
            rng(99),
            Arc::new(RelayMetrics::new()),
            tx,
        );
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    event = events.recv(), if service.has_room() => match event {
                        None => break,
                        Some(Event::InboundRequest { peer, request, hold, channel, .. }) => {
                            service.on_request(peer, *request, hold, channel);
                        }
                        Some(Event::ConnectionClosed { peer, remaining: 0, .. }) => {
                            service.on_disconnected(&peer);
                        }
                        Some(_) => {}
                    },
                    () = service.reap() => {}
                }
            }
            service.drain().await;
        });
        Receiver {
            peer,
            address,
            deliveries,
            client,
        }
    }

    async fn next_event(&mut self) -> PersonalEvent {
        tokio::time::timeout(TIMEOUT, self.deliveries.recv())
            .await
            .expect("a personal event in time")
            .expect("the service runs")
    }
}

/// `to`'s own store, serving its identity.
fn personal_store(dir: &std::path::Path, to: &Party, rng: ChaCha20Rng) -> Arc<RelayStore> {
    let store = RelayStore::open(dir, StoreLimits::default(), rng).expect("store");
    store
        .record_certificate(to.device.certificate())
        .expect("owner recorded");
    Arc::new(store)
}

/// An envelope for `clip` from `from` to `to`, sealed to `to`'s signed prekey.
fn envelope(from: &Party, to: &Party, clip: &Clip, rng: &mut ChaCha20Rng) -> Envelope {
    let bundle = PrekeyBundle {
        certificate: to.device.certificate().clone(),
        signed_prekey: to.prekeys.signed_prekey().clone(),
        one_time_prekey: None,
    };
    let prekeys = bundle.verify(&to.key(), now()).expect("bundle verifies");
    Envelope::seal(&clip.sealed, &from.device, &prekeys, rng).unwrap()
}

#[test]
fn a_clip_is_delivered_directly_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut rng = rng(7);
        let alice = Party::new(&mut rng);
        let bob = Party::new(&mut rng);
        let carol = Party::new(&mut rng);
        let store = personal_store(dir.path(), &bob, rng.clone());
        let mut bob_node = Receiver::start(&bob, store.clone()).await;
        assert_eq!(
            bob_node.peer,
            device_keypair(&bob.device).public().to_peer_id()
        );
        let alice_peer = Peer::connect_with(
            &bob_node.address,
            bob_node.peer,
            Keypair::generate_ed25519(),
        )
        .await;

        let clip = mailbox_client::seal_salted(300 * 1024, 3, &mut rng);
        let env = envelope(&alice, &bob, &clip, &mut rng);
        assert_eq!(
            alice_peer.deposit(&bob, &env, &clip).await,
            accepted_all(&clip)
        );
        alice_peer.upload(&clip).await;
        let PersonalEvent::Deposited { seq, message_id } = bob_node.next_event().await else {
            panic!("expected a deposit")
        };
        assert_eq!(message_id, clip.id());
        let (entries, more) = store.list(&bob.key(), 0, 64, now()).expect("lists");
        assert!(!more);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].seq, seq);
        assert_eq!(entries[0].envelope, env);
        // The sender may read back what it put.
        assert!(matches!(
            alice_peer
                .req(Request::GetManifest { message_id: clip.id() })
                .await,
            Response::Manifest(m) if *m == *clip.sealed.manifest()
        ));
        let hash = clip.sealed.manifest().chunk_hashes()[0];
        assert!(matches!(
            alice_peer
                .req(Request::GetChunk { hash, offset: 0, length: 0 })
                .await,
            Response::Chunk { bytes } if bytes == clip.chunks[0]
        ));

        // Only bob's own mailbox, and only the direct requests.
        let other = mailbox_client::seal_salted(70 * 1024, 4, &mut rng);
        let for_carol = envelope(&alice, &carol, &other, &mut rng);
        assert_eq!(
            code(&alice_peer.req(deposit(&carol, &for_carol, &other)).await),
            ErrorCode::Forbidden
        );
        for request in [
            Request::Challenge,
            Request::List {
                after: 0,
                limit: 64,
            },
            Request::FetchBundle {
                identity_key: bob.key(),
            },
            Request::Ack { seqs: vec![seq] },
            Request::Announce { addrs: vec![] },
            Request::Locate {
                identity_key: bob.key(),
            },
        ] {
            assert_eq!(
                code(&alice_peer.req(request.clone()).await),
                ErrorCode::Unsupported,
                "{request:?}"
            );
        }
        // No login either, whatever the proof.
        let proof = LoginProof::sign(
            &bob.device,
            &bob_node.peer.to_bytes(),
            &alice_peer.client.local_peer_id().to_bytes(),
            &[0; 32],
        )
        .unwrap();
        assert_eq!(
            code(&alice_peer.req(Request::Login(proof)).await),
            ErrorCode::Unsupported
        );
        // The sender revokes: bob hears of it and the data is gone.
        let record = clip.sealed.revoke(now());
        assert_eq!(
            alice_peer.req(Request::Revoke(record.clone())).await,
            Response::Revoked(RevokeOutcome::Revoked)
        );
        assert_eq!(
            bob_node.next_event().await,
            PersonalEvent::Revoked(record.clone())
        );
        assert!(store.get_manifest(&clip.id(), now()).is_err());
        assert!(
            store
                .list(&bob.key(), 0, 64, now())
                .expect("lists")
                .0
                .is_empty()
        );
        // Sent again, it is reported again: a home that missed it (its
        // event lost, or a crash after the store's revocation) applies it
        // then; applying it twice changes nothing.
        assert_eq!(
            alice_peer.req(Request::Revoke(record.clone())).await,
            Response::Revoked(RevokeOutcome::AlreadyRevoked)
        );
        assert_eq!(bob_node.next_event().await, PersonalEvent::Revoked(record));
        assert!(bob_node.deliveries.try_recv().is_err());
        alice_peer.close().await;
        bob_node.client.shutdown().await;
    });
}
