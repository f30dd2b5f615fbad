//! Live segments carried by the viewers (`mayfly_node::live`): a
//! broadcaster and 20 viewers in one process on loopback TCP, each of whom
//! dials only the broadcaster and finds the others there (rendezvous,
//! LIVE.md §8.1), so that the mesh forms among the viewers; and a hostile
//! peer that publishes forged and corrupted segments. Every viewer gets
//! every segment and opens it; nothing the gate refuses is forwarded by an
//! honest peer; a viewer that joins late receives what is sealed after it
//! joined; viewers that drop out do not stop the others getting every
//! segment, and get every segment sealed after they come back.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::{Multiaddr, PeerId};
use mayfly_node::live::{LiveConfig, LiveEvent, LivePeer};
use mayfly_protocol::live::{BroadcastId, EpochKey, SegmentGate, SegmentSealer};
use mayfly_protocol::{Codec, Identity, UnixMillis};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::sync::mpsc;

const VIEWERS: usize = 20;
const SEGMENTS: u64 = 30;
const LIMIT: Duration = Duration::from_secs(60);
/// Viewers that drop out before segment `DROP_AT` and come back, as new
/// overlay peers, before segment `REJOIN_AT`.
const DROPPED: [usize; 2] = [1, 2];
const DROP_AT: u64 = 18;
const REJOIN_AT: u64 = 21;

fn now() -> UnixMillis {
    UnixMillis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    )
}

fn media(seq: u64) -> Vec<u8> {
    let mut m = format!("segment {seq} ").into_bytes();
    m.resize(20_000, seq as u8);
    m
}

async fn wait_until<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) {
    tokio::time::timeout(LIMIT, async {
        while !f().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("in time");
}

#[test]
fn twenty_viewers_get_every_segment_and_no_forgery_travels() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let alice = Identity::generate(&mut rng);
    let device = alice.new_device(1, now(), &mut rng);
    let id = BroadcastId([0x42; 32]);
    let key = EpochKey::from_bytes([0x24; 32]);
    let gate = || {
        let mut g = SegmentGate::new(id, alice.public(), 1);
        g.add_key(0, key.clone());
        g
    };
    let config = LiveConfig {
        heartbeat: Duration::from_millis(100),
        ..LiveConfig::default()
    };
    let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
    let (caster, mut caster_events) = LivePeer::start(gate(), true, listen.clone(), &config, None)
        .await
        .unwrap();
    // The broadcaster's own events are not needed; drain them.
    tokio::spawn(async move { while caster_events.recv().await.is_some() {} });

    // As a start notification names it: with the broadcaster's peer id.
    let caster_address = caster
        .address()
        .clone()
        .with(libp2p::multiaddr::Protocol::P2p(caster.peer_id()));
    let mut viewers: Vec<(LivePeer, mpsc::Receiver<LiveEvent>)> = Vec::new();
    for _ in 0..VIEWERS {
        let (v, rx) = LivePeer::start(gate(), false, listen.clone(), &config, None)
            .await
            .unwrap();
        v.dial(caster_address.clone()).await.unwrap();
        viewers.push((v, rx));
    }
    // mallory: her own identity, the same broadcast id.
    let mallory_id = Identity::generate(&mut rng);
    let mallory_gate = SegmentGate::new(id, alice.public(), 1);
    let (mallory, mut mallory_events) =
        LivePeer::start(mallory_gate, false, listen.clone(), &config, None)
            .await
            .unwrap();
    tokio::spawn(async move { while mallory_events.recv().await.is_some() {} });
    for j in [4, 9, 14] {
        mallory.dial(viewers[j].0.address().clone()).await.unwrap();
    }
    // The overlay forms: every peer has a mesh.
    let all: Vec<LivePeer> = viewers
        .iter()
        .map(|(v, _)| v.clone())
        .chain([caster.clone(), mallory.clone()])
        .collect();
    wait_until(|| {
        let all = all.clone();
        async move {
            for p in &all {
                if p.mesh_size().await.unwrap() == 0 {
                    return false;
                }
            }
            // Each viewer found others at the broadcaster and dialled
            // them: it is connected to more than the broadcaster.
            for p in &all[..VIEWERS] {
                if p.connections().await.unwrap() < 2 {
                    return false;
                }
            }
            true
        }
    })
    .await;
    // The broadcaster's mesh stays at its D, however many dialled it.
    assert!(caster.mesh_size().await.unwrap() <= config.broadcaster_mesh_n);

    // Collect every viewer's events in the background.
    let (tx, mut collected) = mpsc::channel::<(usize, LiveEvent)>(4096);
    for (i, (_, mut rx)) in viewers.drain(..).enumerate() {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                if tx.send((i, e)).await.is_err() {
                    break;
                }
            }
        });
    }

    let mut sealer = SegmentSealer::new(device, id, key.clone());
    let mut forger = SegmentSealer::new(mallory_id.new_device(1, now(), &mut rng), id, key.clone());
    let peers: BTreeMap<PeerId, usize> = all
        .iter()
        .enumerate()
        .map(|(i, p)| (p.peer_id(), i))
        .collect();
    let mut late: Option<(LivePeer, mpsc::Receiver<LiveEvent>)> = None;
    let mut rejoined: Vec<(LivePeer, mpsc::Receiver<LiveEvent>)> = Vec::new();
    for seq in 0..SEGMENTS {
        if seq == DROP_AT {
            // Two viewers drop out (their peers stop, connections close):
            // the others' meshes repair and keep getting everything.
            for &i in &DROPPED {
                all[i].stop().await;
            }
        }
        if seq == REJOIN_AT {
            // And come back as new overlay peers, dialling the broadcaster
            // again, as a restarted `live watch` does.
            for _ in DROPPED {
                let (v, rx) = LivePeer::start(gate(), false, listen.clone(), &config, None)
                    .await
                    .unwrap();
                v.dial(caster_address.clone()).await.unwrap();
                let probe = v.clone();
                wait_until(|| {
                    let p = probe.clone();
                    async move {
                        p.mesh_size().await.unwrap() > 0 && p.connections().await.unwrap() >= 2
                    }
                })
                .await;
                rejoined.push((v, rx));
            }
        }
        let keyframe = seq % 5 == 0;
        let init: &[u8] = if keyframe { b"ftyp moov" } else { &[] };
        let seg = sealer
            .seal(
                keyframe,
                seq + 1 == SEGMENTS,
                init,
                &media(seq),
                1000,
                now(),
            )
            .unwrap();
        let bytes = seg.to_bytes();
        caster.publish(bytes.clone()).await.unwrap();
        if seq == 10 {
            // A forgery (mallory's own device) and a corrupted copy.
            let forged = forger
                .seal(true, false, b"ftyp moov", b"fake", 1000, now())
                .unwrap();
            mallory.publish(forged.to_bytes()).await.unwrap();
            let mut corrupt = bytes.clone();
            corrupt[300] ^= 1;
            mallory.publish(corrupt).await.unwrap();
        }
        if seq == 14 {
            // A late joiner dials the broadcaster and finds viewers there.
            let (v, rx) = LivePeer::start(gate(), false, listen.clone(), &config, None)
                .await
                .unwrap();
            v.dial(caster_address.clone()).await.unwrap();
            let probe = v.clone();
            wait_until(|| {
                let p = probe.clone();
                async move {
                    p.mesh_size().await.unwrap() > 0 && p.connections().await.unwrap() >= 2
                }
            })
            .await;
            late = Some((v, rx));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    // Every viewer: every segment once, opened to what was sealed.
    let mut got: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); VIEWERS];
    let mut latencies = Vec::new();
    let mut refused_from = Vec::new();
    tokio::time::timeout(LIMIT, async {
        while got
            .iter()
            .enumerate()
            .any(|(i, s)| !DROPPED.contains(&i) && s.len() < SEGMENTS as usize)
        {
            let (i, e) = collected.recv().await.unwrap();
            match e {
                LiveEvent::Segment {
                    seq,
                    produced_at,
                    arrived_at,
                    plaintext,
                    ..
                } => {
                    assert!(seq < SEGMENTS, "viewer {i} accepted a forged segment");
                    assert!(got[i].insert(seq), "viewer {i} got {seq} twice");
                    let p = plaintext.expect("the viewer holds the key");
                    assert_eq!(p.media, media(seq));
                    latencies.push(arrived_at.since(produced_at));
                }
                LiveEvent::Refused { reason, from } if reason.is_offence() => {
                    refused_from.push(from);
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        let counts: Vec<usize> = got.iter().map(BTreeSet::len).collect();
        panic!("segments per viewer: {counts:?}")
    });
    // Both bad messages reached the viewers mallory dialed, were refused
    // there, and came from nobody else: no honest peer forwarded them.
    assert!(!refused_from.is_empty());
    for from in &refused_from {
        assert_eq!(
            peers.get(from),
            Some(&(VIEWERS + 1)),
            "a refused segment came from an honest peer"
        );
    }
    // The late joiner has every segment sealed after it joined.
    let (late_peer, mut late_rx) = late.unwrap();
    let mut late_got = BTreeSet::new();
    tokio::time::timeout(LIMIT, async {
        while !(15..SEGMENTS).all(|s| late_got.contains(&s)) {
            if let Some(LiveEvent::Segment { seq, .. }) = late_rx.recv().await {
                late_got.insert(seq);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the late joiner got {late_got:?}"));
    // So do the viewers who dropped out and came back.
    for (i, (_, rx)) in rejoined.iter_mut().enumerate() {
        let mut back = BTreeSet::new();
        tokio::time::timeout(LIMIT, async {
            while !(REJOIN_AT..SEGMENTS).all(|s| back.contains(&s)) {
                if let Some(LiveEvent::Segment { seq, .. }) = rx.recv().await {
                    back.insert(seq);
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("rejoined viewer {i} got {back:?}"));
    }
    latencies.sort_unstable();
    eprintln!(
        "{} deliveries; latency p50 {} ms, p99 {} ms",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100]
    );
    for p in all
        .iter()
        .chain([&late_peer])
        .chain(rejoined.iter().map(|(p, _)| p))
    {
        p.stop().await;
    }
}

#[test]
fn a_viewer_takes_no_more_connections_than_its_limit() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let alice = Identity::generate(&mut ChaCha20Rng::from_seed([5; 32]));
            let gate = || SegmentGate::new(BroadcastId([5; 32]), alice.public(), 1);
            let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
            let config = LiveConfig {
                max_incoming: 2,
                ..LiveConfig::default()
            };
            let (target, _rx) = LivePeer::start(gate(), false, listen.clone(), &config, None)
                .await
                .unwrap();
            let mut others = Vec::new();
            for _ in 0..5 {
                let (p, rx) = LivePeer::start(gate(), false, listen.clone(), &config, None)
                    .await
                    .unwrap();
                p.dial(target.address().clone()).await.unwrap();
                others.push((p, rx));
            }
            // Two are taken; the other three are refused, and stay so.
            let probe = target.clone();
            wait_until(|| {
                let p = probe.clone();
                async move { p.connections().await.unwrap() == 2 }
            })
            .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(target.connections().await.unwrap(), 2);
            let mut connected = 0;
            for (p, _) in &others {
                connected += p.connections().await.unwrap();
            }
            assert_eq!(connected, 2);
        });
}
