//! Live distribution over gossipsub (`mayfly_node::live`), measured: a
//! broadcaster and N viewers in this process on loopback TCP.
//!
//! For each N, three runs in the same process. In each, every viewer dials
//! only the broadcaster, at the address a start notification names (with
//! its `/p2p/` id), as `mayfly live watch` does:
//! - **overlay**: the default. Viewers discover each other at the
//!   broadcaster (rendezvous, LIVE.md §8.1) and dial up to six; the
//!   broadcaster keeps a mesh of `broadcaster_mesh_n` (3), never floods.
//! - **star**: the same without discovery (what `live watch` did before
//!   it): every viewer is connected to the broadcaster alone, so the
//!   broadcaster serves those outside its mesh by gossip (IHAVE/IWANT).
//! - **fan-out**: the baseline. The broadcaster floods each segment to
//!   every viewer (one copy per viewer).
//! - **relay**: a relay's forwarder in the overlay (LIVE.md §8.2): the
//!   broadcaster sends it every segment (an explicit peer) and keeps a mesh
//!   one smaller (2); viewers dial the broadcaster and the forwarder, as a
//!   start notification naming both tells them to.
//! - **NAT**: the same, with the broadcaster out of the viewers' reach:
//!   they dial the forwarder alone and find each other there; the
//!   broadcaster's only connection is the one it made to the forwarder.
//!
//! Reported per run: the broadcaster's gossip bytes sent (gossipsub's
//! `topic_msg_sent_bytes`) divided by the stream's bytes; glass-to-glass
//! latency (sealed → accepted and decrypted at a viewer) p50 and p99 over
//! every delivery; deliveries made of those due; CPU per stream second of
//! all peers together, of the broadcaster alone (it runs on a thread of
//! its own) and of a viewer on average; and the process's peak RSS.
//!
//! `cargo run --release -p mayfly-node --example live_bench -- [--viewers 10,50,100] [--segments 20] [--segment-kib 128] [--interval-ms 250] [--heartbeat-ms 700]`
//!
//! The gossipsub heartbeat is the default one (700 ms) unless told.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use libp2p::Multiaddr;
use mayfly_node::live::{LiveConfig, LiveEvent, LivePeer};
use mayfly_protocol::live::{BroadcastId, EpochKey, SegmentGate, SegmentSealer};
use mayfly_protocol::{Codec, Identity, UnixMillis};
use prometheus_client::registry::Registry;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::sync::mpsc;

fn now() -> UnixMillis {
    UnixMillis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

struct Args {
    viewers: Vec<usize>,
    segments: u64,
    segment_bytes: usize,
    interval: Duration,
    heartbeat: Duration,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        viewers: vec![10, 50, 100],
        segments: 20,
        segment_bytes: 128 << 10,
        interval: Duration::from_millis(250),
        heartbeat: LiveConfig::default().heartbeat,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--viewers" => {
                a.viewers = v
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .context("--viewers")?
            }
            "--segments" => a.segments = v.parse().context("--segments")?,
            "--segment-kib" => a.segment_bytes = v.parse::<usize>().context("--segment-kib")? << 10,
            "--heartbeat-ms" => {
                a.heartbeat = Duration::from_millis(v.parse().context("--heartbeat-ms")?)
            }
            "--interval-ms" => {
                a.interval = Duration::from_millis(v.parse().context("--interval-ms")?)
            }
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok(a)
}

/// CPU time of this process so far (user + system).
fn cpu() -> Duration {
    cpu_of("/proc/self/stat")
}

/// CPU time of one thread of this process so far.
fn thread_cpu(tid: u32) -> Duration {
    cpu_of(&format!("/proc/self/task/{tid}/stat"))
}

/// The calling thread's id.
fn this_thread_id() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) in a `stat` file of procfs.
fn cpu_of(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, r)| r.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 (1-based); after ") " the
    // state is index 0, so they are indices 11 and 12. 100 ticks a second.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Peak resident set size of this process, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The sum of `topic_msg_sent_bytes` in `registry`.
fn sent_bytes(registry: &Registry) -> anyhow::Result<u64> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("topic_msg_sent_bytes"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

struct Outcome {
    upload_ratio: f64,
    p50: u64,
    p99: u64,
    delivered: usize,
    due: usize,
    cpu_per_stream_s: f64,
    caster_cpu_per_stream_s: f64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Overlay,
    Star,
    FanOut,
    Relay,
    Nat,
}

async fn run(n: usize, mode: Mode, a: &Args) -> anyhow::Result<Outcome> {
    let fan_out = mode == Mode::FanOut;
    let mut rng = ChaCha20Rng::from_seed([n as u8; 32]);
    let alice = Identity::generate(&mut rng);
    let device = alice.new_device(1, now(), &mut rng);
    let id = BroadcastId([n as u8 ^ mode as u8; 32]);
    let key = EpochKey::from_bytes([7; 32]);
    let gate = || {
        let mut g = SegmentGate::new(id, alice.public(), 1);
        g.add_key(0, key.clone());
        g
    };
    let through_relay = matches!(mode, Mode::Relay | Mode::Nat);
    let discovery = matches!(mode, Mode::Overlay | Mode::Relay | Mode::Nat);
    let config = LiveConfig {
        heartbeat: a.heartbeat,
        flood_publish: fan_out,
        discover_peers: if discovery { 6 } else { 0 },
        ..LiveConfig::default()
    };
    let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse()?;
    // The relay's forwarder holds no key.
    let forwarder = if through_relay {
        let (f, mut rx) = LivePeer::start_forwarder(
            SegmentGate::new(id, alice.public(), 1),
            listen.clone(),
            &config,
        )
        .await?;
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        Some(f)
    } else {
        None
    };
    let caster_config = LiveConfig {
        broadcaster_mesh_n: if through_relay {
            config.broadcaster_mesh_n - 1
        } else {
            config.broadcaster_mesh_n
        },
        ..config.clone()
    };
    // The broadcaster runs on a thread of its own, so that its CPU time can
    // be told from the viewers'.
    let registry = std::sync::Arc::new(std::sync::Mutex::new(Registry::default()));
    let (started_tx, started) = tokio::sync::oneshot::channel();
    {
        let (gate, listen, config, registry) =
            (gate(), listen.clone(), caster_config, registry.clone());
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                // Registered into here, then handed back for reading.
                let mut r = Registry::default();
                let started = LivePeer::start(gate, true, listen, &config, Some(&mut r)).await;
                *registry.lock().expect("not poisoned") = r;
                match started {
                    Ok((caster, mut rx)) => {
                        let _ = started_tx.send(Ok((caster, this_thread_id())));
                        while rx.recv().await.is_some() {}
                    }
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                    }
                }
            });
        });
    }
    let (caster, caster_tid) = started.await??;
    let at = |p: &LivePeer| {
        p.address()
            .clone()
            .with(libp2p::multiaddr::Protocol::P2p(p.peer_id()))
    };
    if let Some(f) = &forwarder {
        caster.add_direct(at(f)).await?;
    }
    let (tx, mut events) = mpsc::channel::<LiveEvent>(65_536);
    let mut viewers: Vec<LivePeer> = Vec::new();
    for _ in 0..n {
        let (v, mut rx) = LivePeer::start(gate(), false, listen.clone(), &config, None).await?;
        if mode != Mode::Nat {
            v.dial(at(&caster)).await?;
        }
        if let Some(f) = &forwarder {
            v.dial(at(f)).await?;
        }
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                if tx.send(e).await.is_err() {
                    break;
                }
            }
        });
        viewers.push(v);
    }
    // Wait for every mesh to form (at most 30 s): with discovery, every
    // viewer connected to another viewer as well as the broadcaster.
    let formed = Instant::now();
    let others = if discovery && n > 1 { 2 } else { 1 };
    let at_caster = match mode {
        Mode::Nat => 1,
        Mode::Relay => n + 1,
        _ => n,
    };
    loop {
        let mut ok = caster.subscribers().await? == at_caster;
        if discovery {
            for v in &viewers {
                ok &= v.mesh_size().await? > 0 && v.connections().await? >= others;
            }
        }
        if ok {
            break;
        }
        if formed.elapsed() > Duration::from_secs(30) {
            let mut state = Vec::new();
            for v in &viewers {
                state.push((v.mesh_size().await?, v.connections().await?));
            }
            bail!(
                "the overlay of {n} viewers did not form in 30 s: {} subscribed at the broadcaster; (mesh, connections) per viewer: {state:?}",
                caster.subscribers().await?
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let five heartbeats settle the meshes (and, for fan-out, every
    // viewer's subscription reach the broadcaster).
    tokio::time::sleep(a.heartbeat * 5).await;
    let mut sealer = SegmentSealer::new(device, id, key.clone());
    let media = vec![0x5a; a.segment_bytes];
    let mut stream_bytes = 0u64;
    let sent_before = sent_bytes(&registry.lock().expect("not poisoned"))?;
    let cpu_before = cpu();
    let caster_cpu_before = thread_cpu(caster_tid);
    for seq in 0..a.segments {
        let kf = seq % 4 == 0;
        let init: &[u8] = if kf { b"ftyp moov" } else { &[] };
        let seg = sealer
            .seal(
                kf,
                false,
                init,
                &media,
                a.interval.as_millis() as u32,
                now(),
            )?
            .to_bytes();
        stream_bytes += seg.len() as u64;
        caster.publish(seg).await?;
        tokio::time::sleep(a.interval).await;
    }
    let due = n * a.segments as usize;
    let mut latencies = Vec::with_capacity(due);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while latencies.len() < due {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(LiveEvent::Segment {
                produced_at,
                arrived_at,
                plaintext: Some(_),
                ..
            })) => latencies.push(arrived_at.since(produced_at)),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let cpu_used = cpu() - cpu_before;
    let caster_cpu = thread_cpu(caster_tid) - caster_cpu_before;
    let sent = sent_bytes(&registry.lock().expect("not poisoned"))? - sent_before;
    for v in viewers.iter().chain([&caster]).chain(forwarder.as_ref()) {
        v.stop().await;
    }
    latencies.sort_unstable();
    let pct = |p: usize| {
        latencies
            .get(latencies.len() * p / 100)
            .copied()
            .unwrap_or(0)
    };
    let stream_secs = a.segments as f64 * a.interval.as_secs_f64();
    Ok(Outcome {
        upload_ratio: sent as f64 / stream_bytes as f64,
        p50: pct(50),
        p99: pct(99),
        delivered: latencies.len(),
        due,
        cpu_per_stream_s: cpu_used.as_secs_f64() * 1000.0 / stream_secs,
        caster_cpu_per_stream_s: caster_cpu.as_secs_f64() * 1000.0 / stream_secs,
    })
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "{} segments of {} KiB, one every {} ms; heartbeat {} ms",
        a.segments,
        a.segment_bytes >> 10,
        a.interval.as_millis(),
        a.heartbeat.as_millis()
    );
    println!(
        "viewers | run | upload / stream | latency p50 / p99 | delivered | CPU ms per stream s: all peers, broadcaster, per viewer"
    );
    for &n in &a.viewers {
        for mode in [
            Mode::Overlay,
            Mode::Star,
            Mode::FanOut,
            Mode::Relay,
            Mode::Nat,
        ] {
            let o = rt.block_on(run(n, mode, &a))?;
            println!(
                "{n} | {} | {:.2}x | {} / {} ms | {}/{} | {:.0}, {:.0}, {:.1}",
                match mode {
                    Mode::Overlay => "overlay",
                    Mode::Star => "star",
                    Mode::FanOut => "fan-out",
                    Mode::Relay => "relay",
                    Mode::Nat => "NAT",
                },
                o.upload_ratio,
                o.p50,
                o.p99,
                o.delivered,
                o.due,
                o.cpu_per_stream_s,
                o.caster_cpu_per_stream_s,
                (o.cpu_per_stream_s - o.caster_cpu_per_stream_s) / n as f64
            );
        }
    }
    println!("peak RSS of the process: {:.0} MiB", peak_rss_mib());
    Ok(())
}
