//! The client library in process: direct delivery and its erasure at
//! expiry, device replacement seen by relays and contacts, unknown senders,
//! and saving rules.

mod client_fixture;

use client_fixture::*;
use mayfly_node::client::{ClientConfig, ClientError, Event, OpenTarget, SendOptions};
use mayfly_node::home::{HomeError, Via};
use mayfly_protocol::DAY_MS;
use mayfly_protocol::mailbox::{ErrorCode, Request, Response};

fn identity(p: &Person) -> mayfly_protocol::SigningPublicKey {
    p.card().identity_key()
}

#[test]
fn a_direct_delivery_is_erased_everywhere_at_expiry() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_relay, mut alice, mut carol) = friends(dir.path(), ("alice", 1), ("carol", 2)).await;
        carol.online(ClientConfig::default()).await;
        alice.online(ClientConfig::default()).await;
        let to = [identity(&carol)];
        let options = SendOptions {
            ttl_ms: DAY_MS,
            ..SendOptions::default()
        };
        let report = alice
            .client()
            .send_file(&to, SAMPLE.as_ref(), options)
            .await
            .unwrap();
        assert!(matches!(report.delivered[0].via, Via::Direct));
        let id = report.message_id;
        carol
            .wait(|e| {
                matches!(e, Event::Received { message_id, direct: true, .. } if *message_id == id)
                    .then_some(())
            })
            .await;
        let key = carol
            .client()
            .with_home(|h| h.received_key(&id))
            .unwrap()
            .unwrap();
        let secret = alice
            .client()
            .with_home(|h| h.sent_revocation_secret(&id))
            .unwrap()
            .unwrap();
        // The clip sits in carol's local store; a day later it is gone from
        // both homes, with its key and the sender's revocation key.
        assert!(!files_containing(&carol.dir, key.as_bytes()).is_empty());
        for p in [&alice, &carol] {
            p.client().advance_clock(DAY_MS as i64 + 1);
            let expired = p.client().expire().await.unwrap();
            assert_eq!(expired, [id], "{}", p.name);
        }
        assert!(files_containing(&carol.dir, key.as_bytes()).is_empty());
        assert!(files_containing(&alice.dir, secret.to_seed().as_slice()).is_empty());
        let gone = carol
            .client()
            .open(
                &id,
                OpenTarget::Writer(Box::new(std::io::sink())),
                mayfly_node::client::progress_none(),
            )
            .await;
        assert!(
            matches!(gone, Err(ClientError::UnknownMessage(_))),
            "{gone:?}"
        );
        alice.offline().await;
        carol.offline().await;
    });
}

#[test]
fn a_replaced_device_is_refused_and_contacts_follow_the_new_one() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_relay, mut alice, mut bob) = friends(dir.path(), ("alice", 3), ("bob", 4)).await;
        // A copy of bob's home before the replacement: the "old device".
        bob.online(ClientConfig::default()).await;
        bob.offline().await;
        let old = dir.path().join("bob-old");
        copy_dir(&bob.dir, &old);
        {
            let mut home = mayfly_node::home::Home::open(&bob.dir).unwrap();
            let mut rng = mayfly_node::rng::node_rng(Some(9)).unwrap();
            home.replace_device(now(), &mut rng).unwrap();
        }
        alice.online(ClientConfig::default()).await;
        bob.online(ClientConfig::default()).await;
        bob.client().send_card_update().await.unwrap();
        alice
            .wait(|e| matches!(e, Event::ContactUpdated { .. }).then_some(()))
            .await;
        let serial = alice
            .client()
            .with_home(|h| h.contact(&identity(&bob)))
            .unwrap()
            .unwrap()
            .certificate
            .serial();
        assert_eq!(serial, 2);
        // alice's clip reaches the new device.
        let report = alice
            .client()
            .send_file(&[identity(&bob)], SAMPLE.as_ref(), SendOptions::default())
            .await
            .unwrap();
        let id = report.message_id;
        bob.received(&id).await;
        bob.offline().await;
        // The old device is refused by the relay.
        let home = mayfly_node::home::Home::open(&old).unwrap();
        let config = ClientConfig {
            listen: Vec::new(),
            ..ClientConfig::default()
        };
        let (client, _events, event_loop) = mayfly_node::client::new(home, config).unwrap();
        tokio::spawn(event_loop.run());
        let err = client.sync().await.unwrap_err();
        assert!(
            matches!(err, ClientError::DeviceReplaced { by_serial: 2 }),
            "{err:?}"
        );
        client.shutdown().await;
        alice.offline().await;
    });
}

#[test]
fn clips_from_strangers_arrive_marked_unknown_and_saving_follows_the_sender() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let relay = TestRelay::start(&dir.path().join("relay")).await;
        let mut alice = Person::create(dir.path(), "alice", &relay.address, 5);
        let mut dave = Person::create(dir.path(), "dave", &relay.address, 6);
        // Only alice knows dave.
        {
            let h = mayfly_node::home::Home::open(&alice.dir).unwrap();
            h.add_contact(&dave.card(), now()).unwrap();
        }
        dave.online(ClientConfig::default()).await;
        alice.online(ClientConfig::default()).await;
        let options = SendOptions {
            allow_save: true,
            ..SendOptions::default()
        };
        let id = alice
            .client()
            .send_file(&[identity(&dave)], SAMPLE.as_ref(), options)
            .await
            .unwrap()
            .message_id;
        let name = dave
            .wait(|e| match e {
                Event::Received {
                    message_id,
                    sender_name,
                    ..
                } if *message_id == id => Some(sender_name.clone()),
                _ => None,
            })
            .await;
        assert_eq!(name, None, "alice is not dave's contact");
        let path = dir.path().join("saved.mp4");
        dave.client()
            .open(
                &id,
                OpenTarget::File(path.clone()),
                mayfly_node::client::progress_none(),
            )
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(SAMPLE).unwrap()
        );
        // dave cannot send to alice: she is not his contact.
        let err = dave
            .client()
            .send_file(&[identity(&alice)], SAMPLE.as_ref(), SendOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Home(HomeError::UnknownContact(_))),
            "{err:?}"
        );
        alice.offline().await;
        dave.offline().await;
    });
}

/// `SAMPLE` followed by a top-level `free` box, `len` bytes in all: a clip
/// of several chunks.
fn padded_sample(dir: &std::path::Path, len: usize) -> std::path::PathBuf {
    let mut clip = std::fs::read(SAMPLE).unwrap();
    let pad = len - clip.len();
    clip.extend_from_slice(&u32::try_from(pad).unwrap().to_be_bytes());
    clip.extend_from_slice(b"free");
    clip.resize(len, 0);
    let path = dir.join("padded.mp4");
    std::fs::write(&path, clip).unwrap();
    path
}

/// Checks that `opened` played all of `clip`, in order, with some of its
/// chunks from the sender's device and some from the relay.
fn played_from_both(
    opened: &mayfly_node::client::OpenReport,
    played: &[u8],
    clip: &std::path::Path,
) {
    let clip = std::fs::read(clip).unwrap();
    let chunks = opened.chunk_latencies.len();
    assert_eq!(opened.bytes, clip.len() as u64);
    assert!(
        (1..chunks).contains(&opened.peer_chunks),
        "{} of {chunks} chunks from the sender's device",
        opened.peer_chunks
    );
    assert!(played == clip, "played out of order");
}

#[test]
fn a_recipient_fetches_from_the_sender_and_the_relay_at_once_and_plays_in_order() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (relay, mut alice, mut bob) = friends(dir.path(), ("alice", 1), ("bob", 2)).await;
        // 40 chunks: more than the lookahead, so chunks arrive out of order.
        let len = 10 << 20;
        let clip = padded_sample(dir.path(), len);
        bob.online(ClientConfig::default()).await;
        bob.offline().await;
        alice.online(ClientConfig::default()).await;
        let report = alice
            .client()
            .send_file(&[identity(&bob)], &clip, SendOptions::default())
            .await
            .unwrap();
        assert!(matches!(report.delivered[0].via, Via::Relay { .. }));
        let id = report.message_id;
        // The relay helps from the start: alice's device and the relay both
        // serve (the lead is asked for chunk 0, the relay for chunk 1).
        bob.online(ClientConfig {
            helpers_after: std::time::Duration::ZERO,
            ..ClientConfig::default()
        })
        .await;
        bob.received(&id).await;
        // Alice's copy of the last chunk is damaged on her disk, so that
        // chunk plays from the relay whichever source is faster: it lies
        // past the lookahead from chunk 0, so it is asked for only after
        // alice's first chunks have played, and her source stops on it.
        let hashes = bob
            .client()
            .with_home(|h| h.received(&id))
            .unwrap()
            .unwrap()
            .manifest
            .chunk_hashes()
            .to_vec();
        let last = hashes.len() - 1;
        assert!(last > mayfly_protocol::fetch::LOOKAHEAD as usize + 1);
        damage_held_chunk(&bob, &relay, &alice, hashes[last]).await;
        let (sink, written) = Collect::new();
        let opened = open_into(&bob, &id, Box::new(sink)).await;
        played_from_both(&opened, &written.take(), &clip);
        alice.offline().await;
        bob.offline().await;
    });
}

/// Flips a byte of the chunk with `hash` in `sender`'s own files, found by
/// its bytes as `recipient` reads them from `relay`: her device then serves
/// it damaged.
async fn damage_held_chunk(
    recipient: &Person,
    relay: &TestRelay,
    sender: &Person,
    hash: mayfly_protocol::ChunkHash,
) {
    let get = Request::GetChunk {
        hash,
        offset: 0,
        length: 0,
    };
    let address: libp2p::Multiaddr = relay.address.parse().unwrap();
    let Some(libp2p::multiaddr::Protocol::P2p(relay_peer)) = address.iter().last() else {
        panic!("{address} names no peer")
    };
    let served = recipient
        .client()
        .relay_request(relay_peer, get)
        .await
        .unwrap();
    let Response::Chunk { bytes } = served else {
        panic!("{served:?}")
    };
    let needle = &bytes[..4096.min(bytes.len())];
    let files = files_containing(&sender.dir, needle);
    assert_eq!(files.len(), 1, "{files:?}");
    let data = std::fs::read(&files[0]).unwrap();
    let at = data
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
        + 100;
    // In place: the file stays open in the sender's store.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[data[at] ^ 1], at as u64).unwrap();
}

#[test]
fn a_sender_that_goes_silent_mid_clip_is_covered_by_the_relay() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_relay, alice, mut bob) = friends(dir.path(), ("alice", 1), ("bob", 2)).await;
        let len = 10 << 20;
        let clip = padded_sample(dir.path(), len);
        bob.online(ClientConfig::default()).await;
        bob.offline().await;
        let alice = Freezable::start(&alice.dir, ClientConfig::default()).await;
        let report = alice
            .client
            .send_file(&[identity(&bob)], &clip, SendOptions::default())
            .await
            .unwrap();
        let id = report.message_id;
        bob.online(ClientConfig::default()).await;
        bob.received(&id).await;
        // Alice's device goes silent once her first chunk is played: her
        // connection stays open, and what she was asked for never comes.
        // The relay is asked for it a second later, far inside the request
        // timeout (60 s), which this open would otherwise wait out.
        let alice = std::sync::Arc::new(alice);
        let silenced = std::sync::Once::new();
        let freezer = alice.clone();
        let progress: mayfly_node::client::ProgressFn = std::sync::Arc::new(move |p| {
            if matches!(p, mayfly_node::client::Progress::Advance { .. }) {
                silenced.call_once(|| freezer.freeze());
            }
        });
        let (sink, written) = Collect::new();
        let opened = tokio::time::timeout(
            TIMEOUT,
            bob.client()
                .open(&id, OpenTarget::Writer(Box::new(sink)), progress),
        )
        .await
        .expect("the open does not wait for the silent sender")
        .unwrap();
        played_from_both(&opened, &written.take(), &clip);
        bob.offline().await;
        let Ok(alice) = std::sync::Arc::try_unwrap(alice) else {
            panic!("the progress callback still holds alice")
        };
        alice.stop().await;
    });
}

/// Opens `id` into a sink and returns the report.
async fn open_report(
    p: &Person,
    id: &mayfly_protocol::MessageId,
) -> mayfly_node::client::OpenReport {
    open_into(p, id, Box::new(std::io::sink())).await
}

/// Opens `id` into `out` and returns the report.
async fn open_into(
    p: &Person,
    id: &mayfly_protocol::MessageId,
    out: Box<dyn std::io::Write + Send>,
) -> mayfly_node::client::OpenReport {
    p.client()
        .open(
            id,
            OpenTarget::Writer(out),
            mayfly_node::client::progress_none(),
        )
        .await
        .unwrap()
}

/// The chunk file of `id` in `p`'s local store.
fn held_file(p: &Person, id: &mayfly_protocol::MessageId) -> std::path::PathBuf {
    p.dir
        .join("mailbox")
        .join(mayfly_node::store::CHUNK_DIR_NAME)
        .join(id.to_hex())
}

#[test]
fn a_recipient_fetches_from_the_online_sender_and_from_the_relay_what_it_does_not_serve() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_relay, mut alice, mut bob) = friends(dir.path(), ("alice", 1), ("bob", 2)).await;
        let to = [identity(&bob)];
        let len = std::fs::metadata(SAMPLE).unwrap().len();
        // Bob registers at the relay (prekeys), then goes offline.
        bob.online(ClientConfig::default()).await;
        bob.offline().await;
        // Bob is offline: both clips go through the relay. Alice keeps a
        // copy of the first only.
        let mut ids = Vec::new();
        for serve_sent in [true, false] {
            alice
                .online(ClientConfig {
                    serve_sent,
                    ..ClientConfig::default()
                })
                .await;
            let report = alice
                .client()
                .send_file(&to, SAMPLE.as_ref(), SendOptions::default())
                .await
                .unwrap();
            assert!(matches!(report.delivered[0].via, Via::Relay { .. }));
            ids.push(report.message_id);
            // The spool the clip was sealed into is gone: it became the
            // held copy's chunk file, or was removed.
            let spool = std::fs::read_dir(alice.dir.join("spool")).unwrap();
            assert_eq!(spool.count(), 0);
            assert_eq!(held_file(&alice, &report.message_id).exists(), serve_sent);
            if !serve_sent {
                break;
            }
            alice.offline().await;
        }
        bob.online(ClientConfig::default()).await;
        for id in &ids {
            bob.received(id).await;
        }
        // The first from alice's device, the second (which she does not
        // hold: NotFound) from the relay.
        let first = open_report(&bob, &ids[0]).await;
        assert_eq!((first.bytes, first.local), (len, false));
        assert_eq!(first.peer_chunks, first.chunk_latencies.len());
        assert!(first.peer_chunks > 0);
        let second = open_report(&bob, &ids[1]).await;
        assert_eq!((second.bytes, second.peer_chunks), (len, 0));
        // Alice's device serves the first clip's chunks to whoever asks by
        // hash, until she revokes it.
        let hash = bob
            .client()
            .with_home(|h| h.received(&ids[0]))
            .unwrap()
            .unwrap()
            .manifest
            .chunk_hashes()[0];
        let get = Request::GetChunk {
            hash,
            offset: 0,
            length: 0,
        };
        let alice_peer = alice.client().peer_id();
        let served = bob.client().relay_request(alice_peer, get.clone()).await;
        assert!(matches!(served, Ok(Response::Chunk { .. })), "{served:?}");
        alice.client().revoke(&ids[0]).await.unwrap();
        assert!(!held_file(&alice, &ids[0]).exists());
        let gone = bob.client().relay_request(alice_peer, get).await.unwrap();
        assert!(
            matches!(
                gone,
                Response::Error {
                    code: ErrorCode::NotFound,
                    ..
                }
            ),
            "{gone:?}"
        );
        // Alice offline: the relay alone.
        alice.offline().await;
        let again = open_report(&bob, &ids[1]).await;
        assert_eq!((again.bytes, again.peer_chunks), (len, 0));
        bob.offline().await;
    });
}

#[test]
fn a_live_start_reaches_an_offline_follower_at_sync_and_an_online_one_at_once() {
    use mayfly_protocol::LiveKeyGrant;
    use mayfly_protocol::live::{BroadcastId, EpochKey};
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_relay, mut alice, mut bob) = friends(dir.path(), ("alice", 21), ("bob", 22)).await;
        let carol = Person::create(dir.path(), "carol", &_relay.address, 23);
        // carol knows bob, but bob does not know carol.
        {
            let h = mayfly_node::home::Home::open(&carol.dir).unwrap();
            h.add_contact(&bob.card(), now()).unwrap();
        }
        let mut carol = carol;
        let grant = LiveKeyGrant {
            broadcast_id: BroadcastId([7; 32]),
            epoch: 0,
            key: EpochKey::from_bytes([9; 32]),
            started_at: now(),
            replay: true,
            peers: vec!["/ip4/127.0.0.1/tcp/4001".into()],
        };
        // bob registered once, then went offline: the start waits in his
        // mailbox.
        bob.online(ClientConfig::default()).await;
        bob.offline().await;
        alice.online(ClientConfig::default()).await;
        let failed = alice
            .client()
            .send_live_key(&[identity(&bob)], &grant)
            .await
            .unwrap();
        assert!(failed.is_empty(), "{failed:?}");
        carol.online(ClientConfig::default()).await;
        carol
            .client()
            .send_live_key(&[identity(&bob)], &grant)
            .await
            .unwrap();
        bob.online(ClientConfig::default()).await;
        let (who, got) = bob
            .wait(|e| match e {
                Event::LiveKey {
                    broadcaster_name,
                    grant,
                    ..
                } => Some((broadcaster_name.clone(), grant.clone())),
                _ => None,
            })
            .await;
        assert_eq!((who.as_str(), &got), ("alice", &grant));
        // Online now: the next epoch's key is pushed at once.
        let next = LiveKeyGrant {
            epoch: 1,
            key: EpochKey::from_bytes([10; 32]),
            ..grant.clone()
        };
        alice
            .client()
            .send_live_key(&[identity(&bob)], &next)
            .await
            .unwrap();
        // Every live key event is alice's: carol, whom bob does not know,
        // raised none (hers was taken in at the same sync as alice's first).
        let got = bob
            .wait(|e| match e {
                Event::LiveKey {
                    broadcaster_name,
                    grant,
                    ..
                } => {
                    assert_eq!(broadcaster_name, "alice");
                    (grant.epoch == 1).then(|| grant.clone())
                }
                _ => None,
            })
            .await;
        assert_eq!(got, next);
        // A broadcast that started over a day ago is refused.
        let stale = LiveKeyGrant {
            started_at: mayfly_protocol::UnixMillis(now().0 - DAY_MS - 1),
            ..grant.clone()
        };
        assert!(
            alice
                .client()
                .send_live_key(&[identity(&bob)], &stale)
                .await
                .is_err()
        );
        for p in [&mut alice, &mut bob, &mut carol] {
            p.offline().await;
        }
    });
}

/// A burst of deliveries, more than the client's background tasks:
/// every clip is taken in and announced with `Event::Received`, with no
/// sync asked for. Before the intake worker (`client/intake.rs`), each
/// delivery spawned a sync task and those beyond the limit were dropped,
/// so the last clips of a burst could stay unannounced.
#[test]
fn every_clip_of_a_burst_of_direct_deliveries_is_received() {
    const BURST: usize = 48;
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_relay, mut alice, mut carol) = friends(dir.path(), ("alice", 1), ("carol", 2)).await;
        carol.online(ClientConfig::default()).await;
        alice.online(ClientConfig::default()).await;
        let to = [identity(&carol)];
        let client = alice.client().clone();
        let sends = (0..BURST).map(|_| {
            let client = client.clone();
            async move {
                client
                    .send_file(&to, SAMPLE.as_ref(), SendOptions::default())
                    .await
                    .expect("sent")
            }
        });
        let reports = futures::future::join_all(sends).await;
        let mut ids: std::collections::BTreeSet<_> = reports.iter().map(|r| r.message_id).collect();
        assert_eq!(ids.len(), BURST);
        // Most go direct; the sender's per-peer rate sends the rest
        // through the relay, whose announcements take the same way in.
        let direct = reports
            .iter()
            .filter(|r| matches!(r.delivered[0].via, Via::Direct))
            .count();
        assert!(direct > 16, "{direct} of {BURST} went direct");
        while !ids.is_empty() {
            let id = carol
                .wait(|e| match e {
                    Event::Received { message_id, .. } => Some(*message_id),
                    _ => None,
                })
                .await;
            ids.remove(&id);
        }
    });
}
