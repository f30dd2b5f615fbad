//! Live broadcasts between clients in one process: key rotation when a
//! viewer is removed (LIVE.md §3.4, §9).

mod client_fixture;

use std::time::Duration;

use client_fixture::*;
use mayfly_node::client::{ClientConfig, Event};
use mayfly_node::live::{BroadcastConfig, Broadcaster, WatchConfig, watch};
use mayfly_protocol::fmp4::{Cutter, CutterConfig, MediaSegment, Piece};

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

#[test]
fn a_removed_viewer_cannot_open_what_is_sealed_after_the_rotation() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (relay, mut alice, mut bob) = friends(dir.path(), ("alice", 41), ("bob", 42)).await;
        let mut carol = Person::create(dir.path(), "carol", &relay.address, 43);
        befriend(&alice, &carol);
        for p in [&mut alice, &mut bob, &mut carol] {
            p.online(ClientConfig::default()).await;
        }
        let ids = [bob.card().identity_key(), carol.card().identity_key()];
        let config = BroadcastConfig {
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            ..BroadcastConfig::default()
        };
        let (mut b, failed) = Broadcaster::start(alice.client(), ids.to_vec(), config)
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
                    |_| {}
                ),
                watch(carol_client, None, &broadcasts[1], &mut co, &wc, |_| {}),
            )
        };
        let broadcasting = async {
            while b.peer().subscribers().await.unwrap() < 2 {
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
