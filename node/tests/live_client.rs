//! Live broadcasts between clients in one process: key rotation when a
//! viewer is removed (LIVE.md §3.4, §9).

mod client_fixture;

use std::time::Duration;

use client_fixture::*;
use mayfly_node::client::{ClientConfig, Event};
use mayfly_node::home::Broadcast;
use mayfly_node::live::control::{ControlRequest, Request};
use mayfly_node::live::{
    AudienceEvent, BroadcastConfig, Broadcaster, Speaker, WatchConfig, WatchUpdate, watch,
};
use mayfly_protocol::SigningPublicKey;
use mayfly_protocol::fmp4::{Cutter, CutterConfig, MediaSegment, Piece};
use tokio::sync::mpsc;

const LIVE_SAMPLE: &[u8] = include_bytes!("../../samples/live.mp4");

/// The sample's init part and segments.
fn cut() -> (Vec<u8>, Vec<MediaSegment>) {
    let mut init = Vec::new();
    let mut segs = Vec::new();
    for p in Cutter::cut_all(LIVE_SAMPLE, CutterConfig::default()).unwrap() {
        match p {
            Piece::Init(i) => init = i,
            Piece::Segment(s) => segs.push(s),
        }
    }
    (init, segs)
}

/// alice live to bob and carol, who hold her start notification.
struct Live {
    _relay: TestRelay,
    _alice: Person,
    bob: Person,
    carol: Person,
    b: Broadcaster,
    /// bob's and carol's identity keys.
    ids: [SigningPublicKey; 2],
    /// The broadcast as bob's and carol's homes hold it.
    broadcasts: Vec<Broadcast>,
}

/// Three friends online (seeds `seed`, `seed + 1`, `seed + 2`), and alice
/// goes live to bob and carol.
async fn go_live(dir: &std::path::Path, seed: u64) -> Live {
    let config = BroadcastConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        ..BroadcastConfig::default()
    };
    go_live_with(dir, seed, config).await
}

/// [`go_live`] under `config`.
async fn go_live_with(dir: &std::path::Path, seed: u64, config: BroadcastConfig) -> Live {
    let (relay, mut alice, mut bob) = friends(dir, ("alice", seed), ("bob", seed + 1)).await;
    let mut carol = Person::create(dir, "carol", &relay.address, seed + 2);
    befriend(&alice, &carol);
    for p in [&mut alice, &mut bob, &mut carol] {
        p.online(ClientConfig::default()).await;
    }
    let ids = [bob.card().identity_key(), carol.card().identity_key()];
    let (b, failed) = Broadcaster::start(alice.client(), ids.to_vec(), config)
        .await
        .unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let id = b.id();
    let mut broadcasts = Vec::new();
    for p in [&mut bob, &mut carol] {
        p.wait(|e| {
            matches!(e, Event::LiveKey { grant, .. } if grant.broadcast_id == id).then_some(())
        })
        .await;
        broadcasts.push(
            p.client()
                .with_home(|h| h.find_broadcast(&hex::encode(id.0)))
                .unwrap(),
        );
    }
    Live {
        _relay: relay,
        _alice: alice,
        bob,
        carol,
        b,
        ids,
        broadcasts,
    }
}

#[test]
fn a_removed_viewer_cannot_open_what_is_sealed_after_the_rotation() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let Live {
            mut bob,
            carol,
            mut b,
            ids,
            broadcasts,
            // Kept alive to the end: the relay, and alice's client under
            // the broadcast.
            _relay,
            _alice,
        } = go_live(dir.path(), 41).await;
        let id = b.id();
        let wc = WatchConfig {
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            idle: Duration::from_secs(3),
            ..WatchConfig::default()
        };
        let (init, segs) = cut();
        assert!(segs.len() >= 6);
        let (bob_out, bob_got) = Collect::new();
        let (carol_out, carol_got) = Collect::new();
        let (bob_client, bob_events) = bob.client.as_mut().unwrap();
        let (carol_client, _) = carol.client.as_ref().unwrap();
        let watching = async {
            let (mut bo, mut co) = (bob_out, carol_out);
            tokio::join!(
                watch(
                    bob_client,
                    Some(bob_events),
                    &broadcasts[0],
                    &mut bo,
                    &wc,
                    None,
                    |_| {}
                ),
                watch(
                    carol_client,
                    None,
                    &broadcasts[1],
                    &mut co,
                    &wc,
                    None,
                    |_| {}
                ),
            )
        };
        let broadcasting = async {
            while b.viewers_in_overlay().await.unwrap() < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for s in &segs[..3] {
                b.send(&init, s).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // carol is removed: the key rotates, and only bob gets the new one.
            let failed = b.remove_viewer(&ids[1]).await.unwrap();
            assert!(failed.is_empty(), "{failed:?}");
            for s in &segs[3..] {
                b.send(&init, s).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            b.end(Duration::from_millis(300)).await.unwrap()
        };
        let ((bob_s, carol_s), stats) = tokio::join!(watching, broadcasting);
        let (bob_s, carol_s) = (bob_s.unwrap(), carol_s.unwrap());
        assert_eq!(stats.epochs, 2);
        // bob plays everything, across the rotation, and writes the input.
        assert!(bob_s.ended, "{bob_s:?}");
        assert_eq!(bob_s.progress.played as usize, segs.len(), "{bob_s:?}");
        assert!(bob_got.take() == LIVE_SAMPLE, "bob's stream differs");
        // carol plays what was sealed before the rotation and nothing after:
        // her stream is exactly the input's init and first three segments.
        assert!(!carol_s.ended, "{carol_s:?}");
        assert_eq!(carol_s.progress.played, 3, "{carol_s:?}");
        let mut before = init.clone();
        for s in &segs[..3] {
            before.extend_from_slice(&s.bytes);
        }
        assert!(carol_got.take() == before, "carol's stream differs");
        // She never held the new key.
        let keys = carol_client
            .with_home(|h| h.live_keys(&id))
            .unwrap()
            .into_iter()
            .map(|(e, _)| e)
            .collect::<Vec<_>>();
        assert_eq!(keys, vec![0]);
    });
}

#[test]
fn viewers_who_cannot_dial_the_broadcaster_watch_through_its_relay() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        // alice tells her viewers an address where nobody listens (as
        // behind a NAT): they reach the broadcast only through the
        // forwarder her relay runs for it, which she dialled out to.
        let config = BroadcastConfig {
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            advertise: vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()],
            ..BroadcastConfig::default()
        };
        let Live {
            bob,
            carol,
            mut b,
            broadcasts,
            _relay,
            _alice,
            ..
        } = go_live_with(dir.path(), 61, config).await;
        assert_eq!(b.stats().forwarding_relays.len(), 1, "{:?}", b.stats());
        assert_eq!(broadcasts[0].peers.len(), 2, "{:?}", broadcasts[0].peers);
        let wc = WatchConfig {
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            idle: Duration::from_secs(5),
            ..WatchConfig::default()
        };
        let (init, segs) = cut();
        let (bob_out, bob_got) = Collect::new();
        let (carol_out, carol_got) = Collect::new();
        // A viewer's join goes out once a peer of the topic is there: the
        // relay's forwarder, the only one it can reach.
        let (joined_tx, mut joined) = mpsc::unbounded_channel();
        let on_join = |tx: mpsc::UnboundedSender<()>| {
            move |u: WatchUpdate<'_>| {
                if matches!(u, WatchUpdate::Joined) {
                    let _ = tx.send(());
                }
            }
        };
        let watching = async {
            let (mut bo, mut co) = (bob_out, carol_out);
            let (b_join, c_join) = (on_join(joined_tx.clone()), on_join(joined_tx));
            tokio::join!(
                watch(
                    bob.client(),
                    None,
                    &broadcasts[0],
                    &mut bo,
                    &wc,
                    None,
                    b_join
                ),
                watch(
                    carol.client(),
                    None,
                    &broadcasts[1],
                    &mut co,
                    &wc,
                    None,
                    c_join
                ),
            )
        };
        let broadcasting = async {
            // Both viewers are in the overlay (through the relay) before
            // the first segment.
            for _ in 0..2 {
                joined.recv().await.unwrap();
            }
            for s in &segs {
                b.send(&init, s).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let connected = b.peer().connections().await.unwrap();
            (b.end(Duration::from_millis(300)).await.unwrap(), connected)
        };
        let ((bob_s, carol_s), (stats, connected)) = tokio::join!(watching, broadcasting);
        let (bob_s, carol_s) = (bob_s.unwrap(), carol_s.unwrap());
        // alice's only overlay connection is the one she made to the relay.
        assert_eq!(connected, 1);
        for (s, got) in [(&bob_s, &bob_got), (&carol_s, &carol_got)] {
            assert!(s.ended, "{s:?}");
            assert_eq!(s.progress.played as usize, segs.len(), "{s:?}");
            assert!(
                got.take() == LIVE_SAMPLE,
                "a stream through the relay differs"
            );
        }
        assert_eq!(stats.segments as usize, segs.len() + 1);
    });
}

/// Posts `text` through a watch's comment channel and returns the answer.
async fn comment(tx: &mpsc::Sender<ControlRequest>, id: &str, text: &str) -> Result<(), String> {
    let (request, answer) = ControlRequest::new(Request::Comment {
        broadcast: id.to_owned(),
        text: text.to_owned(),
    });
    tx.send(request)
        .await
        .map_err(|_| "the watch ended".to_owned())?;
    answer.await.map_err(|_| "no answer".to_owned())?
}

/// The next comment alice's audience hears, within 10 s.
async fn next_comment(rx: &mut mpsc::Receiver<AudienceEvent>) -> (Speaker, String) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(AudienceEvent::Comment { from, text, .. })) => {
                return (Speaker::Named(from), text);
            }
            Ok(Some(_)) => {}
            other => panic!("no comment came: {other:?}"),
        }
    }
}

#[test]
fn comments_are_signed_joins_build_the_viewer_list_and_a_removed_viewer_cannot_post() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let Live {
            mut bob,
            carol,
            mut b,
            ids,
            broadcasts,
            // Kept alive to the end: the relay, and alice's client under
            // the broadcast.
            _relay,
            _alice,
        } = go_live(dir.path(), 51).await;
        let hex_id = hex::encode(b.id().0);
        let mut audience = b.audience_events().unwrap();
        let wc = WatchConfig {
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            idle: Duration::from_secs(5),
            ..WatchConfig::default()
        };
        // carol watches anonymously.
        let carol_wc = WatchConfig {
            anonymous: true,
            ..wc.clone()
        };
        let (init, segs) = cut();
        let (bob_tx, bob_rx) = mpsc::channel(1);
        let (carol_tx, carol_rx) = mpsc::channel(1);
        let bob_played = std::sync::atomic::AtomicU64::new(0);
        let carol_heard = std::sync::Mutex::new(Vec::new());
        let (bob_out, _) = Collect::new();
        let (carol_out, _) = Collect::new();
        let (bob_client, bob_events) = bob.client.as_mut().unwrap();
        let (carol_client, _) = carol.client.as_ref().unwrap();
        let watching = async {
            let (mut bo, mut co) = (bob_out, carol_out);
            tokio::join!(
                watch(
                    bob_client,
                    Some(bob_events),
                    &broadcasts[0],
                    &mut bo,
                    &wc,
                    Some(bob_rx),
                    |u| {
                        if let WatchUpdate::Progress(p) = u {
                            bob_played.store(p.played, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                ),
                watch(
                    carol_client,
                    None,
                    &broadcasts[1],
                    &mut co,
                    &carol_wc,
                    Some(carol_rx),
                    |u| {
                        if let WatchUpdate::Audience(AudienceEvent::Comment { text, .. }) = u {
                            carol_heard.lock().unwrap().push(text.clone());
                        }
                    }
                ),
            )
        };
        let broadcasting = async {
            while b.viewers_in_overlay().await.unwrap() < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for s in &segs[..3] {
                b.send(&init, s).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Both joined: bob by name, carol anonymously.
            let mut joined = Vec::new();
            while joined.len() < 2 {
                match tokio::time::timeout(Duration::from_secs(10), audience.recv()).await {
                    Ok(Some(AudienceEvent::Joined(s))) => joined.push(s),
                    Ok(Some(_)) => {}
                    other => panic!("the viewers did not join: {other:?}"),
                }
            }
            assert!(joined.contains(&Speaker::Named(ids[0])), "{joined:?}");
            assert!(joined.contains(&Speaker::Anonymous), "{joined:?}");
            assert_eq!(b.watching(), (vec![ids[0]], 1));

            // Comments are signed: carol's names her, though she watches
            // anonymously.
            comment(&bob_tx, &hex_id[..8], "hello from bob")
                .await
                .unwrap();
            assert_eq!(
                next_comment(&mut audience).await,
                (Speaker::Named(ids[0]), "hello from bob".into())
            );
            comment(&carol_tx, &hex_id, "hi from carol").await.unwrap();
            assert_eq!(
                next_comment(&mut audience).await,
                (Speaker::Named(ids[1]), "hi from carol".into())
            );
            // Another broadcast's id is refused by the watch.
            assert!(
                comment(&bob_tx, "ffff", "lost")
                    .await
                    .unwrap_err()
                    .contains("not ffff")
            );

            // carol is removed: the key rotates.
            b.remove_viewer(&ids[1]).await.unwrap();
            for s in &segs[3..5] {
                b.send(&init, s).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Once bob plays epoch 1, he seals under its key.
            while bob_played.load(std::sync::atomic::Ordering::SeqCst) < 5 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // carol still posts, under the only key she holds (epoch 0):
            // alice, who holds epoch 1, refuses it (LIVE.md §12.4 step 3).
            comment(&carol_tx, &hex_id, "still here?").await.unwrap();
            comment(&bob_tx, &hex_id, "after the rotation")
                .await
                .unwrap();
            assert_eq!(
                next_comment(&mut audience).await,
                (Speaker::Named(ids[0]), "after the rotation".into())
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
            while let Ok(e) = audience.try_recv() {
                assert!(
                    !matches!(e, AudienceEvent::Comment { .. }),
                    "{e:?} reached alice"
                );
            }
            for s in &segs[5..] {
                b.send(&init, s).await.unwrap();
            }
            b.end(Duration::from_millis(300)).await.unwrap()
        };
        let ((bob_s, carol_s), stats) = tokio::join!(watching, broadcasting);
        let bob_s = bob_s.unwrap();
        carol_s.unwrap();
        assert!(bob_s.ended, "{bob_s:?}");
        // bob received carol's first comment (and not the one after her
        // removal, which he refuses once he holds epoch 1); carol received
        // bob's first comment, and not the one after the rotation.
        assert_eq!(bob_s.progress.comments, 1, "{bob_s:?}");
        assert_eq!(*carol_heard.lock().unwrap(), ["hello from bob"]);
        // The viewer list: bob by name, carol as one anonymous watch (her
        // signed comment does not take over her anonymous token).
        assert_eq!(stats.named_viewers, vec![ids[0]]);
        assert_eq!(stats.anonymous_viewers, 1);
    });
}
