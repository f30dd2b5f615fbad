//! Client benchmarks (the direct-delivery rows of BENCHMARKS.md): one
//! process, loopback TCP, an in-process relay and clients in temporary homes.
//!
//! ```sh
//! cargo run --release -p mayfly-node --example client_bench -- --rounds 5 --opens 30
//! ```
//!
//! A client's personal mailbox service (what accepts direct deliveries)
//! rate-limits each sender with `ClientConfig::direct_rate`, whose burst
//! covers a whole clip of `MAX_CHUNKS` chunks; a delivery refused part way
//! would fall back to the relay, and the benchmark reports such rounds
//! apart. `--pause-secs` waits before each direct delivery (from when the
//! burst was the relay's default of 200).
//!
//! 1. Direct delivery of a 64 MiB clip (alice → carol, online) against a raw
//!    libp2p transfer of as many bytes over loopback TCP (`/mayfly/bench/1`),
//!    the variants interleaved round by round. The client API does not
//!    expose its swarm's bench control, so the raw baselines run from
//!    separate swarms built with `net::new_with_bench`: one between two raw
//!    swarms, and one from a raw swarm into carol's own client swarm (which
//!    serves the bench protocol since its limits enable it). A third,
//!    supplementary baseline (`support/raw_store.rs`) is the raw transfer
//!    with the least a recipient must do to keep a clip durably: BLAKE3 of
//!    each 256 KiB piece, a file write, background and final `fdatasync`.
//!    It is reported beside the others and does not replace them.
//! 2. First chunk available → first decrypted byte (`OpenReport::chunk_latencies`):
//!    carol opening small clips from her local store and bob from the relay,
//!    and every chunk of each 64 MiB clip carol opens.
//! 3. `alice.revoke(id)` → carol's `Event::Revoked` for small clips delivered
//!    directly (and, as an extra, bob's for clips that went through the relay).
//! 4. bob opening a large clip that came through the relay: from the relay
//!    alone, from alice's device with the relay's help on a stall or once
//!    she falls behind playback (the default), and from both from the start
//!    (`helpers_after` zero). `fetch_bench.rs` does the same with the
//!    sender on a shaped link.
//!
//! `--large-only` runs 1. alone (for a profile of the deliveries).
//!
//! Clients run with `ClientConfig { limits: Limits { bench_protocol: true, .. }, .. }`.
//! bob neither listens nor announces, so clips for him go through the relay;
//! he fetches them from the relay alone except in 4.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use mayfly_node::client::{
    self, Client, ClientConfig, Event, OpenReport, OpenTarget, Progress, SendOptions,
};
use mayfly_node::config::{Limits, RelayConfig};
use mayfly_node::home::{Home, Profile, Via};
use mayfly_node::net::{self, Role, bench};
use mayfly_node::relay::local::LocalRelay;
use mayfly_protocol::{MessageId, SigningPublicKey};

#[path = "support/raw_store.rs"]
mod raw_store;
#[path = "support/mod.rs"]
mod support;
use support::{SAMPLE, ms, now, write_padded_clip};

/// The small clip (one chunk).
/// Upper bound on anything the benchmark waits for.
const TIMEOUT: Duration = Duration::from_secs(120);

/// How long to wait for `Event::Received` before calling `Client::sync`.
const MISSED_AFTER: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(about = "Client benchmarks: direct delivery vs raw, open latency, revocation")]
struct Args {
    /// Rounds of the 64 MiB comparison (each runs every variant once).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Size of the large clip and of the raw transfer, in MiB.
    #[arg(long, default_value_t = 64)]
    size_mib: u64,
    /// Small clips sent to carol (and as many to bob): opens and revocations.
    #[arg(long, default_value_t = 30)]
    opens: usize,
    /// Pause before each direct delivery, in seconds (the recipient's personal
    /// service rate-limits the sender).
    #[arg(long, default_value_t = 0.0)]
    pause_secs: f64,
    /// Skip the pipeline-16 sender.
    #[arg(long)]
    no_pipeline16: bool,
    /// Run the 64 MiB comparison (1.) alone, as for a profile.
    #[arg(long)]
    large_only: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    support::run_main(|root| async move { run(&args, &root).await })
}

/// A running client and its events, each stamped when the client queued it
/// (a forwarding task reads the client's channel at once).
struct Party {
    name: &'static str,
    client: Client,
    events: support::Events,
    /// Clips whose `Received` only came after an explicit `sync()`.
    missed: usize,
}

impl Party {
    async fn start(dir: &Path, name: &'static str, config: ClientConfig) -> anyhow::Result<Self> {
        let (client, events) = support::start_client(dir, name, config).await?;
        Ok(Self {
            name,
            client,
            events,
            missed: 0,
        })
    }

    /// Waits for an event `f` picks, skipping others; returns when it was queued.
    async fn wait<T>(
        &mut self,
        f: impl FnMut(&Event) -> Option<T>,
    ) -> anyhow::Result<(Instant, T)> {
        self.events.wait_for(TIMEOUT, f).await
    }

    /// Waits for `Event::Received` of `id`. If none comes within
    /// [`MISSED_AFTER`], calls `Client::sync` (which also takes in the local
    /// store) and waits again; counts such misses.
    async fn received(&mut self, id: MessageId) -> anyhow::Result<Instant> {
        let pick = |e: &Event| {
            matches!(e, Event::Received { message_id, .. } if *message_id == id).then_some(())
        };
        if let Ok((at, ())) = self.events.wait_for(MISSED_AFTER, pick).await {
            return Ok(at);
        }
        self.missed += 1;
        eprintln!(
            "  [{}] no Received for {} after {:?}: calling sync()",
            self.name,
            &id.to_hex()[..12],
            MISSED_AFTER
        );
        self.client.sync().await?;
        Ok(self
            .wait(pick)
            .await
            .with_context(|| format!("waiting for Received {} after sync()", id.to_hex()))?
            .0)
    }

    async fn revoked(&mut self, id: MessageId) -> anyhow::Result<Instant> {
        Ok(self
            .wait(|e| matches!(e, Event::Revoked { message_id } if *message_id == id).then_some(()))
            .await
            .with_context(|| format!("waiting for Revoked {}", id.to_hex()))?
            .0)
    }

    async fn open(&self, id: MessageId) -> anyhow::Result<OpenReport> {
        let report = self
            .client
            .open(
                &id,
                OpenTarget::Writer(Box::new(std::io::sink())),
                client::progress_none(),
            )
            .await?;
        Ok(report)
    }
}

/// A bare swarm with the bench protocol, for the raw baseline.
struct Raw {
    client: net::Client,
    bench: bench::Control,
    peer: PeerId,
    addr: Option<Multiaddr>,
}

impl Raw {
    async fn new(listen: bool) -> anyhow::Result<Self> {
        let limits = Limits {
            bench_protocol: true,
            idle_connection_timeout_secs: 3600,
            ..Limits::default()
        };
        let keypair = Keypair::generate_ed25519();
        let peer = keypair.public().to_peer_id();
        let (client, mut events, event_loop, bench) =
            net::new_with_bench(keypair, &limits, Role::Client)?;
        tokio::spawn(event_loop.run());
        let mut addr = None;
        if listen {
            client.listen_on("/ip4/127.0.0.1/tcp/0".parse()?).await?;
            while let Some(e) = tokio::time::timeout(TIMEOUT, events.recv()).await? {
                if let net::Event::ListenAddr { address, .. } = e {
                    addr = Some(address.with(Protocol::P2p(peer)));
                    break;
                }
            }
        }
        // Keeps the event channel drained, so the swarm never stalls.
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        Ok(Self {
            client,
            bench: bench.context("bench protocol on")?,
            peer,
            addr,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Direct8,
    Direct16,
    RawPair,
    RawToCarol,
    RawStore,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Direct8 => "direct delivery, pipeline 8 (alice → carol)",
            Variant::Direct16 => "direct delivery, pipeline 16 (dave → carol)",
            Variant::RawPair => "raw bench::transfer, raw swarm → raw swarm",
            Variant::RawToCarol => "raw bench::transfer, raw swarm → carol's client swarm",
            Variant::RawStore => {
                "supplementary: raw transfer + BLAKE3 + file write + fdatasync at the receiver"
            }
        }
    }
}

/// Sorted copy.
fn sorted(v: &[Duration]) -> Vec<Duration> {
    let mut s = v.to_vec();
    s.sort();
    s
}

/// Nearest-rank percentile (`p` in 0..=100) of a non-empty sorted slice.
fn pct(s: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn median(s: &[Duration]) -> Duration {
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2
    }
}

fn latency_line(name: &str, v: &[Duration]) {
    if v.is_empty() {
        println!("| {name} | 0 | - | - | - | - | - |");
        return;
    }
    let s = sorted(v);
    println!(
        "| {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
        s.len(),
        ms(pct(&s, 50.0)),
        ms(pct(&s, 99.0)),
        ms(s[0]),
        ms(*s.last().expect("non-empty")),
        ms(median(&s)),
    );
}

async fn run(args: &Args, root: &Path) -> anyhow::Result<()> {
    // The relay, in process, with rate limits out of the way.
    let config = RelayConfig {
        limits: Limits {
            request_timeout_secs: 600,
            idle_connection_timeout_secs: 600,
            max_concurrent_streams: 64,
            ..Limits::default()
        },
        ..support::relay_config()?
    };
    let relay = LocalRelay::start(&root.join("relay"), config).await?;
    let relay_addr = relay.address.clone();
    println!("relay {relay_addr}");

    // Homes: alice and dave (the pipeline-16 sender) know bob and carol.
    let names = ["alice", "dave", "bob", "carol"];
    for name in names {
        let mut rng = mayfly_node::rng::node_rng(None)?;
        Home::create(
            &root.join(name),
            Profile {
                display_name: name.into(),
                relays: vec![relay_addr.clone()],
            },
            now(),
            &mut rng,
        )?;
    }
    {
        let homes: Vec<Home> = names
            .iter()
            .map(|n| Home::open(&root.join(n)))
            .collect::<Result<_, _>>()?;
        for (a, b) in [(0, 2), (0, 3), (1, 2), (1, 3)] {
            homes[a].add_contact(&homes[b].card()?, now())?;
            homes[b].add_contact(&homes[a].card()?, now())?;
        }
    }
    let base = ClientConfig {
        limits: Limits {
            bench_protocol: true,
            ..Limits::default()
        },
        ..ClientConfig::default()
    };
    let mut carol = Party::start(&root.join("carol"), "carol", base.clone()).await?;
    let (_, carol_addr) = carol
        .wait(|e| match e {
            Event::Listening { address } => Some(address.clone()),
            _ => None,
        })
        .await?;
    let mut bob = Party::start(
        &root.join("bob"),
        "bob",
        ClientConfig {
            listen: vec![],
            announce: false,
            // Opens measure fetching from the relay, not from the sender.
            fetch_from_sender: false,
            ..base.clone()
        },
    )
    .await?;
    let alice = Party::start(&root.join("alice"), "alice", base.clone()).await?;
    let dave = Party::start(
        &root.join("dave"),
        "dave",
        ClientConfig {
            pipeline: 16,
            ..base.clone()
        },
    )
    .await?;
    let ident = |c: &Client, name: &str| -> anyhow::Result<SigningPublicKey> {
        c.with_home(|h| -> anyhow::Result<_> { Ok(h.find_contact(name)?.card.identity_key()) })
    };
    let carol_id = ident(&alice.client, "carol")?;
    let bob_id = ident(&alice.client, "bob")?;
    println!("carol listens on {carol_addr}; bob is reachable through the relay only");

    // The large clip: hello.mp4 and a top-level `free` box up to the size.
    let size = args.size_mib << 20;
    let big = root.join("big.mp4");
    write_padded_clip(&big, size)?;
    let small = root.join("hello.mp4");
    std::fs::write(&small, SAMPLE)?;

    // Raw baselines.
    let raw_server = Raw::new(true).await?;
    let mut raw_a = Raw::new(false).await?;
    let mut raw_c = Raw::new(false).await?;
    raw_a
        .client
        .dial(raw_server.addr.clone().expect("listening"))
        .await?;
    raw_c.client.dial(carol_addr.clone()).await?;
    let raw_store_dir = root.join("raw-store");
    std::fs::create_dir_all(&raw_store_dir)?;
    raw_store::serve(raw_server.bench.clone(), raw_store_dir)?;
    let carol_peer = carol.client.peer_id();

    // 1. 64 MiB: direct vs raw, interleaved.
    let mut variants = vec![
        Variant::Direct8,
        Variant::RawPair,
        Variant::RawToCarol,
        Variant::RawStore,
    ];
    if !args.no_pipeline16 {
        variants.insert(1, Variant::Direct16);
    }
    let mut times: Vec<(Variant, Vec<Duration>)> =
        variants.iter().map(|&v| (v, Vec::new())).collect();
    let mut totals: Vec<(Variant, Vec<Duration>)> = Vec::new();
    let mut outside: Vec<Duration> = Vec::new();
    let mut big_chunks: Vec<Duration> = Vec::new();
    let mut big_first: Vec<Duration> = Vec::new();
    let mut big_open: Vec<Duration> = Vec::new();
    let mut big_revoke: Vec<Duration> = Vec::new();
    let mut fell_back = 0usize;
    let mut uploads: Vec<Duration> = Vec::new();
    let mut setups: Vec<Duration> = Vec::new();
    let mut fallbacks: Vec<(Variant, Vec<Duration>)> = Vec::new();
    let mut big_chunks_relay: Vec<Duration> = Vec::new();
    println!(
        "\n1. {} MiB, {} rounds, variants rotated each round",
        args.size_mib, args.rounds
    );
    for round in 0..args.rounds {
        for k in 0..variants.len() {
            let v = variants[(k + round) % variants.len()];
            let cpu0 = process_cpu();
            let wall0 = Instant::now();
            let t = match v {
                Variant::RawPair => {
                    let t = Instant::now();
                    bench::transfer(&mut raw_a.bench, raw_server.peer, size, 0).await?;
                    t.elapsed()
                }
                Variant::RawToCarol => {
                    let t = Instant::now();
                    bench::transfer(&mut raw_c.bench, carol_peer, size, 0).await?;
                    t.elapsed()
                }
                Variant::RawStore => {
                    let t = Instant::now();
                    raw_store::transfer(&mut raw_a.bench, raw_server.peer, size).await?;
                    t.elapsed()
                }
                Variant::Direct8 | Variant::Direct16 => {
                    if args.pause_secs > 0.0 {
                        tokio::time::sleep(Duration::from_secs_f64(args.pause_secs)).await;
                    }
                    let sender = if v == Variant::Direct8 { &alice } else { &dave };
                    // When the chunk upload starts (after `DepositAccepted`)
                    // and ends, from the progress callback.
                    let marks = Arc::new(Mutex::new((None, None)));
                    let cpu_marks = Arc::new(Mutex::new((Duration::ZERO, Duration::ZERO)));
                    let cm = cpu_marks.clone();
                    let m = marks.clone();
                    let options = SendOptions {
                        progress: Arc::new(move |p| {
                            let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                            match p {
                                Progress::Start { label, .. } if label.contains("direct") => {
                                    m.0 = Some(Instant::now());
                                    cm.lock().unwrap_or_else(|e| e.into_inner()).0 = process_cpu();
                                }
                                Progress::Finish { label } if label.contains("direct") => {
                                    m.1 = Some(Instant::now());
                                    cm.lock().unwrap_or_else(|e| e.into_inner()).1 = process_cpu();
                                }
                                _ => {}
                            }
                        }),
                        ..SendOptions::default()
                    };
                    let t = Instant::now();
                    let report = sender.client.send_file(&[carol_id], &big, options).await?;
                    let total = t.elapsed();
                    let (up_start, up_end) = *marks.lock().unwrap_or_else(|e| e.into_inner());
                    let upload = match (up_start, up_end) {
                        (Some(a), Some(b)) => Some(b.saturating_duration_since(a)),
                        _ => None,
                    };
                    let d = report
                        .delivered
                        .first()
                        .context("delivered to nobody")?
                        .clone();
                    let id = report.message_id;
                    carol.received(id).await?;
                    let t_open = Instant::now();
                    let open = carol.open(id).await?;
                    big_open.push(t_open.elapsed());
                    ensure!(open.bytes == size, "carol opened {} bytes", open.bytes);
                    if open.local {
                        big_chunks.extend_from_slice(&open.chunk_latencies);
                        big_first.extend(open.chunk_latencies.first().copied());
                    } else {
                        big_chunks_relay.extend_from_slice(&open.chunk_latencies);
                    }
                    let t_rev = Instant::now();
                    sender.client.revoke(&id).await?;
                    let at = carol.revoked(id).await?;
                    big_revoke.push(at.saturating_duration_since(t_rev));
                    let direct = matches!(d.via, Via::Direct);
                    let (c0, c1) = *cpu_marks.lock().unwrap_or_else(|e| e.into_inner());
                    eprintln!(
                        "  cpu {v:?} chunk upload: {:.0} ms of CPU",
                        ms(c1.saturating_sub(c0))
                    );
                    println!(
                        "  round {round} {:?}: elapsed {:.1} ms (chunk upload {}) via {}, send_file total {:.1} ms (outside elapsed {:.1} ms), carol's open {:.1} ms (local: {})",
                        v,
                        ms(d.elapsed),
                        upload.map_or("-".into(), |u| format!("{:.1} ms", ms(u))),
                        if direct { "direct" } else { "RELAY" },
                        ms(total),
                        ms(total.saturating_sub(d.elapsed)),
                        ms(*big_open.last().expect("pushed")),
                        open.local,
                    );
                    if !direct {
                        fell_back += 1;
                        // Not a direct delivery: kept apart from the direct figures.
                        match fallbacks.iter_mut().find(|(x, _)| *x == v) {
                            Some((_, list)) => list.push(d.elapsed),
                            None => fallbacks.push((v, vec![d.elapsed])),
                        }
                        continue;
                    }
                    outside.push(total.saturating_sub(d.elapsed));
                    if let Some(u) = upload {
                        uploads.push(u);
                        setups.push(d.elapsed.saturating_sub(u));
                    }
                    match totals.iter_mut().find(|(x, _)| *x == v) {
                        Some((_, list)) => list.push(total),
                        None => totals.push((v, vec![total])),
                    }
                    d.elapsed
                }
            };
            eprintln!(
                "  cpu {:?}: {:.0} ms of CPU over {:.0} ms (incl. open/revoke for direct)",
                v,
                ms(process_cpu().saturating_sub(cpu0)),
                ms(wall0.elapsed())
            );
            if matches!(
                v,
                Variant::RawPair | Variant::RawToCarol | Variant::RawStore
            ) {
                println!("  round {round} {v:?}: {:.1} ms", ms(t));
            }
            times
                .iter_mut()
                .find(|(x, _)| *x == v)
                .expect("listed")
                .1
                .push(t);
        }
    }

    if args.large_only {
        report_large(args, &times, &totals, &fallbacks, fell_back);
        for p in [&alice, &dave, &bob, &carol] {
            p.client.shutdown().await;
        }
        relay.stop().await?;
        return Ok(());
    }

    // 2 and 3. Small clips: carol (direct, opens from her store) and bob
    // (through the relay), alternating which goes first.
    println!(
        "\n2-3. {} small clips each to carol (direct) and bob (relay)",
        args.opens
    );
    let mut first_local: Vec<Duration> = Vec::new();
    let mut first_relay: Vec<Duration> = Vec::new();
    let mut revoke_carol: Vec<Duration> = Vec::new();
    let mut revoke_call_carol: Vec<Duration> = Vec::new();
    let mut revoke_bob: Vec<Duration> = Vec::new();
    let mut small_vias = (0usize, 0usize);
    let mut carol_notified_direct = 0usize;
    for i in 0..args.opens {
        for carol_turn in [i % 2 == 0, i % 2 == 1] {
            let (party, to) = if carol_turn {
                (&mut carol, carol_id)
            } else {
                (&mut bob, bob_id)
            };
            let report = alice
                .client
                .send_file(&[to], &small, SendOptions::default())
                .await?;
            let id = report.message_id;
            let via_direct = matches!(report.delivered.first().map(|d| &d.via), Some(Via::Direct));
            if via_direct {
                small_vias.0 += 1;
            } else {
                small_vias.1 += 1;
            }
            party.received(id).await?;
            let open = party.open(id).await?;
            ensure!(open.bytes == SAMPLE.len() as u64);
            let first = *open.chunk_latencies.first().context("no chunk")?;
            if open.local {
                first_local.push(first);
            } else {
                first_relay.push(first);
            }
            let t = Instant::now();
            let revoked = alice.client.revoke(&id).await?;
            let call = t.elapsed();
            if carol_turn
                && revoked
                    .notified
                    .iter()
                    .any(|(_, via)| matches!(via, Via::Direct))
            {
                carol_notified_direct += 1;
            }
            let at = party.revoked(id).await?;
            if carol_turn {
                revoke_carol.push(at.saturating_duration_since(t));
                revoke_call_carol.push(call);
            } else {
                revoke_bob.push(at.saturating_duration_since(t));
            }
        }
    }

    // Results.
    report_large(args, &times, &totals, &fallbacks, fell_back);
    println!("\n### Latencies (ms; p99 is nearest-rank, so with n < 100 it is the max)\n");
    println!("| what | n | p50 | p99 | min | max | median |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    latency_line(
        "send_file time outside `elapsed` (probe + seal + record), large clip, direct rounds",
        &outside,
    );
    latency_line(
        "direct rounds: chunk upload only (progress Start → Finish, after DepositAccepted)",
        &uploads,
    );
    latency_line(
        "direct rounds: `elapsed` before the chunk upload (bundle, locate, dial, deposit)",
        &setups,
    );
    latency_line(
        "first chunk → first byte, small clip, carol from her local store",
        &first_local,
    );
    latency_line(
        "first chunk → first byte, small clip, bob from the relay",
        &first_relay,
    );
    let mut both = first_local.clone();
    both.extend_from_slice(&first_relay);
    latency_line("first chunk → first byte, small clips, both", &both);
    latency_line(
        "first chunk → first byte, large clip, carol (local)",
        &big_first,
    );
    latency_line(
        "every chunk → its first byte, large clips, carol (local)",
        &big_chunks,
    );
    latency_line(
        "every chunk → its first byte, large clips that fell back, carol (from the relay)",
        &big_chunks_relay,
    );
    latency_line("carol's whole open of a large clip", &big_open);
    latency_line(
        "revoke() called → carol's Event::Revoked, small clip (direct)",
        &revoke_carol,
    );
    latency_line(
        "revoke() call returns, small clip to carol",
        &revoke_call_carol,
    );
    latency_line(
        "revoke() called → bob's Event::Revoked, small clip (via relay)",
        &revoke_bob,
    );
    latency_line(
        "revoke() called → carol's Event::Revoked, large clip",
        &big_revoke,
    );
    println!(
        "\nsmall clips delivered direct: {}, via the relay: {}",
        small_vias.0, small_vias.1
    );

    println!(
        "revocations of carol's small clips notified to her directly: {carol_notified_direct} of {}",
        revoke_carol.len()
    );
    println!(
        "clips whose Received event only came after an explicit sync(): carol {}, bob {}",
        carol.missed, bob.missed
    );

    // 4. A large clip that came through the relay, opened by bob from the
    // relay alone, from alice's device with the relay's help on a stall or
    // behind playback (the default), and from both from the start. Bob restarts with each
    // configuration (one home, one client at a time); rounds interleave.
    println!(
        "\n4. {} MiB clip through the relay, opened by bob ({} rounds)",
        args.size_mib, args.rounds
    );
    let report = alice
        .client
        .send_file(&[bob_id], &big, SendOptions::default())
        .await?;
    ensure!(
        matches!(report.delivered[0].via, Via::Relay { .. }),
        "the clip to bob went direct"
    );
    let id = report.message_id;
    bob.received(id).await?;
    let bob_dir = root.join("bob");
    let bob_base = ClientConfig {
        listen: vec![],
        announce: false,
        ..base.clone()
    };
    let sources = [
        (
            "relay only",
            ClientConfig {
                fetch_from_sender: false,
                ..bob_base.clone()
            },
        ),
        (
            "alice's device, the relay on a stall or behind playback (default)",
            bob_base.clone(),
        ),
        (
            "both from the start (helpers_after 0)",
            ClientConfig {
                helpers_after: Duration::ZERO,
                ..bob_base.clone()
            },
        ),
    ];
    let mut opens: Vec<Vec<(Duration, usize)>> = vec![Vec::new(); sources.len()];
    for round in 0..args.rounds {
        for k in 0..sources.len() {
            let v = (k + round) % sources.len();
            bob.client.shutdown().await;
            // The old client holds the home until it is dropped.
            drop(bob);
            bob = Party::start(&bob_dir, "bob", sources[v].1.clone()).await?;
            let t = Instant::now();
            let open = bob.open(id).await?;
            let took = t.elapsed();
            ensure!(open.bytes == size, "bob opened {} bytes", open.bytes);
            eprintln!(
                "  round {round} {}: {:.1} ms, {} of {} chunks from alice's device",
                sources[v].0,
                ms(took),
                open.peer_chunks,
                open.chunk_latencies.len()
            );
            opens[v].push((took, open.peer_chunks));
        }
    }
    println!(
        "\n### 4. opening a {} MiB clip that came through the relay\n",
        args.size_mib
    );
    println!(
        "| sources | n | median ms | min ms | max ms | MiB/s (median) | chunks from alice, per open |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for (v, (name, _)) in sources.iter().enumerate() {
        let times: Vec<Duration> = opens[v].iter().map(|o| o.0).collect();
        let s = sorted(&times);
        let m = median(&s);
        let from: Vec<String> = opens[v].iter().map(|o| o.1.to_string()).collect();
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {} |",
            s.len(),
            ms(m),
            ms(s[0]),
            ms(*s.last().expect("rounds > 0")),
            args.size_mib as f64 / m.as_secs_f64(),
            from.join(", ")
        );
    }
    alice.client.revoke(&id).await?;

    for p in [&alice, &dave, &bob, &carol] {
        p.client.shutdown().await;
    }
    relay.stop().await?;
    Ok(())
}

/// Durations of each variant of section 1.
type Times = Vec<(Variant, Vec<Duration>)>;

/// Section 1's table and ratios.
fn report_large(args: &Args, times: &Times, totals: &Times, fallbacks: &Times, fell_back: usize) {
    println!(
        "\n### 1. {} MiB: direct delivery (`Delivered::elapsed`) vs raw transfer\n",
        args.size_mib
    );
    println!(
        "| variant | n | median ms | min ms | max ms | MiB/s (median) | raw pair / this | raw→carol / this |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let med = |v: Variant| {
        times
            .iter()
            .find(|(x, _)| *x == v)
            .filter(|(_, l)| !l.is_empty())
            .map(|(_, l)| median(&sorted(l)))
    };
    let raw_pair = med(Variant::RawPair);
    let raw_carol = med(Variant::RawToCarol);
    // One table row: median, min, max, throughput and both ratios.
    let row = |label: String, list: &[Duration]| {
        if list.is_empty() {
            println!("| {label} | 0 | - | - | - | - | - | - |");
            return;
        }
        let s = sorted(list);
        let m = median(&s);
        let ratio = |r: Option<Duration>| {
            r.map_or("-".into(), |r| {
                format!("{:.2}×", r.as_secs_f64() / m.as_secs_f64())
            })
        };
        println!(
            "| {label} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} |",
            s.len(),
            ms(m),
            ms(s[0]),
            ms(*s.last().expect("non-empty")),
            args.size_mib as f64 / m.as_secs_f64(),
            ratio(raw_pair),
            ratio(raw_carol),
        );
    };
    for (v, list) in times {
        row(v.label().to_string(), list);
    }
    for (v, list) in totals {
        row(
            format!("{} incl. probe + seal (whole `send_file`)", v.label()),
            list,
        );
    }
    for (v, list) in fallbacks {
        row(
            format!(
                "{} — FELL BACK to the relay (`elapsed` = failed direct attempt + relay upload)",
                v.label()
            ),
            list,
        );
    }
    if let (Some(store), Some(direct)) = (med(Variant::RawStore), med(Variant::Direct8)) {
        println!(
            "\nsupplementary baseline (not the asked one): raw + store / direct, pipeline 8 = {:.2}×",
            store.as_secs_f64() / direct.as_secs_f64()
        );
    }
    println!("\ndeliveries that fell back to the relay (kept apart above): {fell_back}");
}

/// CPU time of every thread of this process so far (`/proc/self/task/*/schedstat`).
fn process_cpu() -> Duration {
    let mut ns = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            if let Ok(s) = std::fs::read_to_string(e.path().join("schedstat")) {
                ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(ns)
}
