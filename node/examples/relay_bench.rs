//! Relay benchmarks against `mayfly relay` as a subprocess (see the "Relay"
//! section of BENCHMARKS.md).
//!
//! Store-and-forward against a raw transfer, per transport, in the same run
//! and between the same two processes:
//!
//! ```sh
//! cargo run --release -p mayfly-node --example relay_bench -- --size-mib 64 --transport both --rounds 3
//! ```
//!
//! Many clients at once (one swarm each, all in this process):
//!
//! ```sh
//! cargo run --release -p mayfly-node --example relay_bench -- --clients 1000 --clip-mib 1
//! cargo run --release -p mayfly-node --example relay_bench -- --clients 1000 --mixed
//! ```
//!
//! The relay runs with a config that enables the bench protocol
//! (`limits.bench_protocol`) and raises the connection, timeout and rate
//! limits (written out in [`RELAY_CONFIG`]). Unless `--relay-bin` names a
//! binary, `cargo build --release -p mayfly-node --bin mayfly` runs first and
//! the `mayfly` next to this example's directory is used.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail, ensure};
use clap::{Parser, ValueEnum};
use futures::{StreamExt, stream};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use std::sync::atomic::{AtomicUsize, Ordering};

use mayfly_node::config::Limits;
use mayfly_node::net::{self, Role, bench, chunks};
use mayfly_protocol::mailbox::{LoginProof, Request, Response};
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::task::JoinHandle;

/// The relay's configuration for every benchmark: the bench protocol on,
/// limits raised so that the benchmark, not a limit, sets the pace.
const RELAY_CONFIG: &str = r#"
listen = ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"]

[limits]
bench_protocol = true
max_pending_incoming = 4096
max_established_incoming = 4096
# Every client here comes from 127.0.0.1: the per-address limits, meant for
# hosts on the internet, would refuse all but a few dozen of them.
max_pending_per_ip = 4096
max_established_per_ip = 4096
idle_connection_timeout_secs = 600
request_timeout_secs = 600
max_concurrent_streams = 64

[rate]
requests_per_sec = 1000000.0
burst = 1000000
deposits_per_sec = 1000000.0
deposit_burst = 1000000
bundles_per_sec = 1000000.0
bundle_burst = 1000000
locates_per_sec = 1000000.0
locate_burst = 1000000
revocations_per_sec = 1000000.0
revocation_burst = 1000000
"#;

/// Upper bound on anything the benchmark waits for.
const TIMEOUT: Duration = Duration::from_secs(600);

/// Chunk streams the relay reset, whose chunks then went as requests.
static STREAM_RESETS: AtomicUsize = AtomicUsize::new(0);

#[derive(Parser)]
#[command(about = "Relay benchmarks: store-and-forward vs raw transfer, and many clients")]
struct Args {
    /// Clip size for the store-and-forward comparison, in MiB.
    #[arg(long, default_value_t = 64)]
    size_mib: usize,
    /// Transport(s) for the comparison.
    #[arg(long, value_enum, default_value_t = Transport::Both)]
    transport: Transport,
    /// Rounds per transport.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Requests in flight during upload and download.
    #[arg(long, default_value_t = 8)]
    pipeline: usize,
    /// Run the many-clients test with this many clients instead.
    #[arg(long)]
    clients: Option<usize>,
    /// Clip size for the many-clients test, in MiB.
    #[arg(long, default_value_t = 1)]
    clip_mib: usize,
    /// A mixed workload for the many-clients test (the load campaign,
    /// RELIABILITY.md §3): clips of 64 KiB, 256 KiB, 1 MiB and 4 MiB in
    /// turn, one sender in eight revoking its clip before it is fetched,
    /// every fetched clip acknowledged, and one recipient in four sending a
    /// reaction back, which its sender then fetches. `--clip-mib` is ignored.
    #[arg(long)]
    mixed: bool,
    /// Upload and download chunks as PutChunk and GetChunk requests
    /// (`pipeline` in flight) instead of on one chunk stream each way
    /// (`/mayfly/chunks/1`, what the client library does).
    #[arg(long)]
    chunk_requests: bool,
    /// The `mayfly` binary to run (by default: built and found next to this example).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    Tcp,
    Quic,
    Both,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match &args.relay_bin {
        Some(bin) => bin.clone(),
        None => build_relay()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let home = tempfile::tempdir()?;
    let relay = RelayProcess::start(&bin, home.path())?;
    println!("relay {} (pid {})", relay.peer_id, relay.child.id());
    let result = runtime.block_on(async {
        match args.clients {
            Some(n) => {
                many_clients(
                    &relay,
                    n,
                    (!args.mixed).then_some(args.clip_mib << 20),
                    args.pipeline,
                    args.chunk_requests,
                )
                .await
            }
            None => compare(&relay, &args).await,
        }
    });
    println!(
        "chunk streams reset by the relay (their chunks then sent as requests): {}",
        STREAM_RESETS.load(Ordering::Relaxed)
    );
    let peak = relay.peak_rss_kib();
    relay.stop()?;
    match peak {
        Some(kib) => println!("relay peak RSS (VmHWM): {:.1} MiB", kib as f64 / 1024.0),
        None => println!("relay peak RSS: unavailable"),
    }
    result
}

/// Builds the relay binary and returns its path.
fn build_relay() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--release", "-p", "mayfly-node", "--bin", "mayfly"])
        .status()
        .context("running cargo build")?;
    ensure!(status.success(), "cargo build failed");
    // <target>/release/examples/relay_bench -> <target>/release/mayfly
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("mayfly"))
        .ok_or_else(|| anyhow!("no directory above {}", exe.display()))?;
    ensure!(bin.exists(), "no relay binary at {}", bin.display());
    Ok(bin)
}

/// `mayfly relay` as a subprocess, its log in `<home>/relay.log`.
struct RelayProcess {
    child: Child,
    peer_id: PeerId,
    tcp: Multiaddr,
    quic: Multiaddr,
}

impl RelayProcess {
    fn start(bin: &Path, home: &Path) -> anyhow::Result<Self> {
        let config = home.join("relay.toml");
        std::fs::write(&config, RELAY_CONFIG)?;
        let log = std::fs::File::create(home.join("relay.log"))?;
        let mut child = Command::new(bin)
            .env("RUST_LOG", "warn")
            .arg("relay")
            .arg("--home")
            .arg(home)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut next = || -> anyhow::Result<String> {
            Ok(lines.next().ok_or_else(|| anyhow!("the relay exited"))??)
        };
        let peer_id: PeerId = next()?
            .strip_prefix("peer id ")
            .ok_or_else(|| anyhow!("expected `peer id`"))?
            .parse()?;
        let (mut tcp, mut quic) = (None, None);
        while tcp.is_none() || quic.is_none() {
            let line = next()?;
            let address: Multiaddr = line
                .strip_prefix("listening ")
                .ok_or_else(|| anyhow!("expected `listening`, got {line:?}"))?
                .parse()?;
            if address.iter().any(|p| matches!(p, Protocol::QuicV1)) {
                quic = Some(address);
            } else {
                tcp = Some(address);
            }
        }
        // Keep the pipe drained (the relay writes nothing more).
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self {
            child,
            peer_id,
            tcp: tcp.expect("set"),
            quic: quic.expect("set"),
        })
    }

    /// VmHWM from `/proc/<pid>/status`, in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    fn stop(mut self) -> anyhow::Result<()> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let status = self.child.wait()?;
        ensure!(status.success(), "relay exit {status}");
        Ok(())
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn now() -> UnixMillis {
    UnixMillis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as u64,
    )
}

fn rng(seed: u64) -> ChaCha20Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(s)
}

/// A user: identity, device, prekeys.
struct Party {
    identity: Identity,
    device: Device,
    prekeys: PrekeyStore,
}

impl Party {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        let identity = Identity::generate(rng);
        let device = identity.new_device(1, now(), rng);
        let prekeys = PrekeyStore::new(&device, now(), rng);
        Self {
            identity,
            device,
            prekeys,
        }
    }

    fn key(&self) -> SigningPublicKey {
        self.identity.public()
    }
}

/// A sealed clip: its manifest and ciphertext chunks, and a digest of the content.
struct Clip {
    sealed: SealedClip,
    chunks: Vec<Vec<u8>>,
    content_hash: blake3::Hash,
}

fn seal(len: usize, seed: u32, rng: &mut ChaCha20Rng) -> anyhow::Result<Clip> {
    let content: Vec<u8> = (0..len)
        .map(|i| (i as u32 ^ seed).wrapping_mul(2_654_435_761) as u8)
        .collect();
    // One reading of the clock: two could straddle a millisecond and make
    // the lifetime one longer than the limit.
    let created_at = now();
    let header = ClipHeader {
        kind: ClipKind::Clip,
        allow_save: false,
        duration_ms: 10_000,
        created_at,
        expires_at: created_at.plus(DEFAULT_CLIP_TTL_MS),
        content_len: len as u64,
        parent: None,
        media_type: "video/mp4".into(),
    };
    let mut chunks = Vec::new();
    let sealed = seal_reader(
        header,
        &mut &content[..],
        |_, c| {
            chunks.push(c.to_vec());
            Ok(())
        },
        rng,
    )
    .map_err(|e| anyhow!("sealing: {e:?}"))?;
    Ok(Clip {
        sealed,
        chunks,
        content_hash: blake3::hash(&content),
    })
}

/// A client swarm connected to the relay.
struct Peer {
    client: net::Client,
    relay: PeerId,
    bench: Option<bench::Control>,
    task: JoinHandle<()>,
    drain: JoinHandle<()>,
}

impl Peer {
    async fn connect(address: &Multiaddr, relay: PeerId, with_bench: bool) -> anyhow::Result<Self> {
        let limits = Limits {
            request_timeout_secs: TIMEOUT.as_secs(),
            idle_connection_timeout_secs: TIMEOUT.as_secs(),
            max_concurrent_streams: 64,
            bench_protocol: with_bench,
            ..Limits::default()
        };
        let (client, mut events, event_loop, bench) =
            net::new_with_bench(Keypair::generate_ed25519(), &limits, Role::Client)?;
        let task = tokio::spawn(event_loop.run());
        // Keeps the event channel drained, so the swarm never stalls.
        let drain = tokio::spawn(async move { while let Some(_e) = events.recv().await {} });
        let peer = tokio::time::timeout(TIMEOUT, client.dial(address.clone()))
            .await
            .context("dial timed out")??;
        ensure!(peer == relay, "dialled {peer}, expected {relay}");
        Ok(Self {
            client,
            relay,
            bench,
            task,
            drain,
        })
    }

    async fn req(&self, request: Request) -> anyhow::Result<Response> {
        Ok(self.client.request(self.relay, request, TIMEOUT).await?)
    }

    async fn ok(&self, request: Request) -> anyhow::Result<()> {
        match self.req(request).await? {
            Response::Ok => Ok(()),
            other => bail!("expected Ok, got {other:?}"),
        }
    }

    async fn login(&self, device: &Device) -> anyhow::Result<()> {
        let Response::Challenge { nonce } = self.req(Request::Challenge).await? else {
            bail!("no challenge")
        };
        let proof = LoginProof::sign(
            device,
            &self.relay.to_bytes(),
            &self.client.local_peer_id().to_bytes(),
            &nonce,
        )
        .map_err(|e| anyhow!("login proof: {e:?}"))?;
        self.ok(Request::Login(proof)).await
    }

    /// Logs in and publishes `party`'s prekeys with `one_time` one-time prekeys.
    async fn publish(
        &self,
        party: &mut Party,
        one_time: usize,
        rng: &mut ChaCha20Rng,
    ) -> anyhow::Result<()> {
        self.login(&party.device).await?;
        let one_time = party
            .prekeys
            .issue_one_time(&party.device, one_time, now(), rng);
        self.ok(Request::PublishPrekeys {
            signed_prekey: party.prekeys.signed_prekey().clone(),
            one_time,
        })
        .await
    }

    /// An envelope for `clip` from `from` to `to`, over `to`'s bundle.
    async fn envelope(
        &self,
        from: &Party,
        to: SigningPublicKey,
        clip: &Clip,
        rng: &mut ChaCha20Rng,
    ) -> anyhow::Result<Envelope> {
        let Response::Bundle(bundle) = self.req(Request::FetchBundle { identity_key: to }).await?
        else {
            bail!("no bundle")
        };
        let recipient = bundle
            .verify(&to, now())
            .map_err(|e| anyhow!("bundle: {e:?}"))?;
        Envelope::seal(&clip.sealed, &from.device, &recipient, rng)
            .map_err(|e| anyhow!("envelope: {e:?}"))
    }

    /// Deposit and upload every chunk: on one chunk stream, or as
    /// PutChunk requests with `pipeline` in flight.
    async fn deposit(
        &self,
        to: SigningPublicKey,
        envelope: Envelope,
        clip: &Clip,
        pipeline: usize,
        chunk_requests: bool,
    ) -> anyhow::Result<()> {
        let r = self
            .req(Request::Deposit {
                mailbox: to,
                envelope,
                manifest: clip.sealed.manifest().clone(),
            })
            .await?;
        let Response::DepositAccepted { missing } = r else {
            bail!("deposit: {r:?}")
        };
        let message_id = clip.sealed.message_id();
        let put = |index: u32| Request::PutChunk {
            message_id,
            index,
            bytes: clip.chunks[index as usize].clone(),
        };
        if chunk_requests {
            let mut puts = stream::iter(missing)
                .map(|index| self.ok(put(index)))
                .buffer_unordered(pipeline);
            while let Some(r) = puts.next().await {
                r?;
            }
            return Ok(());
        }
        let stream = self.client.open_chunks(self.relay).await?;
        let mut done = 0;
        let sent = chunks::send(
            stream,
            missing.len(),
            |i| Ok::<_, anyhow::Error>(put(missing[i])),
            |_, r| match r {
                Response::Ok => {
                    done += 1;
                    Ok(())
                }
                r => Err(anyhow!("put chunk: {r:?}")),
            },
            TIMEOUT,
        )
        .await;
        match sent {
            Ok(()) => Ok(()),
            // As the client library does: a reset stream's unanswered
            // chunks go as requests (RELAY.md §2.1).
            Err(chunks::SendError::Stream(_)) => {
                STREAM_RESETS.fetch_add(1, Ordering::Relaxed);
                let mut puts = stream::iter(missing[done..].to_vec())
                    .map(|index| self.ok(put(index)))
                    .buffer_unordered(pipeline);
                while let Some(r) = puts.next().await {
                    r?;
                }
                Ok(())
            }
            Err(e) => Err(anyhow!("upload: {e:#}")),
        }
    }

    /// Lists the mailbox, fetches the first clip (`pipeline` chunk requests
    /// in flight), opens it, and returns its sequence number and its
    /// plaintext (which the caller checks after its timer stops: the raw
    /// transfer it is compared with checks nothing).
    async fn fetch(
        &self,
        me: &mut Party,
        pipeline: usize,
        chunk_requests: bool,
    ) -> anyhow::Result<(u64, Vec<u8>)> {
        let r = self
            .req(Request::List {
                after: 0,
                limit: 64,
            })
            .await?;
        let Response::Entries { entries, .. } = r else {
            bail!("list: {r:?}")
        };
        let entry = entries.first().ok_or_else(|| anyhow!("empty mailbox"))?;
        let r = self
            .req(Request::GetManifest {
                message_id: entry.message_id,
            })
            .await?;
        let Response::Manifest(manifest) = r else {
            bail!("manifest: {r:?}")
        };
        let secret = me
            .prekeys
            .take_secret(&entry.envelope.prekey())
            .ok_or_else(|| anyhow!("no prekey secret"))?;
        let contents = entry
            .envelope
            .open(&me.key(), &secret)
            .map_err(|e| anyhow!("envelope: {e:?}"))?;
        let hashes = manifest.chunk_hashes().to_vec();
        let mut opener = contents
            .open_manifest(*manifest, now())
            .map_err(|e| anyhow!("manifest: {e:?}"))?;
        let mut plaintext = Vec::with_capacity(opener.header().content_len as usize);
        let mut done = 0;
        if !chunk_requests {
            let stream = self.client.open_chunks(self.relay).await?;
            let get = |i: usize| {
                Ok::<_, anyhow::Error>(Request::GetChunk {
                    hash: hashes[i],
                    offset: 0,
                    length: 0,
                })
            };
            let got = |_, r| match r {
                Response::Chunk { bytes } => {
                    let plain = opener
                        .open_next(&bytes)
                        .map_err(|e| anyhow!("chunk: {e:?}"))?;
                    plaintext.extend_from_slice(plain);
                    done += 1;
                    Ok(())
                }
                r => Err(anyhow!("get chunk: {r:?}")),
            };
            match chunks::send(stream, hashes.len(), get, got, TIMEOUT).await {
                Ok(()) => {
                    opener.finish().map_err(|e| anyhow!("finish: {e:?}"))?;
                    return Ok((entry.seq, plaintext));
                }
                // As the client library does: the rest as requests.
                Err(chunks::SendError::Stream(_)) => {
                    STREAM_RESETS.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => bail!("chunk stream: {e:#}"),
            }
        }
        let mut chunks = stream::iter(hashes.into_iter().skip(done))
            .map(|hash| {
                self.req(Request::GetChunk {
                    hash,
                    offset: 0,
                    length: 0,
                })
            })
            .buffered(pipeline);
        while let Some(r) = chunks.next().await {
            let Response::Chunk { bytes } = r? else {
                bail!("no chunk")
            };
            let plain = opener
                .open_next(&bytes)
                .map_err(|e| anyhow!("chunk: {e:?}"))?;
            plaintext.extend_from_slice(plain);
        }
        opener.finish().map_err(|e| anyhow!("finish: {e:?}"))?;
        Ok((entry.seq, plaintext))
    }

    async fn close(self) {
        self.client.shutdown().await;
        let _ = self.task.await;
        self.drain.abort();
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Raw transfer against store-and-forward, round by round, per transport.
async fn compare(relay: &RelayProcess, args: &Args) -> anyhow::Result<()> {
    let len = args.size_mib << 20;
    let transports: &[(&str, &Multiaddr)] = match args.transport {
        Transport::Tcp => &[("tcp", &relay.tcp)],
        Transport::Quic => &[("quic", &relay.quic)],
        Transport::Both => &[("tcp", &relay.tcp), ("quic", &relay.quic)],
    };
    let mut rng = rng(1);
    println!(
        "{} MiB, {} rounds, {} requests in flight",
        args.size_mib, args.rounds, args.pipeline
    );
    for (name, address) in transports {
        let alice = Party::new(&mut rng);
        let mut bob = Party::new(&mut rng);
        let mut alice_peer = Peer::connect(address, relay.peer_id, true).await?;
        let mut bob_peer = Peer::connect(address, relay.peer_id, true).await?;
        bob_peer.publish(&mut bob, args.rounds, &mut rng).await?;
        // Warm-up: a small transfer each way and a small clip.
        raw(&mut alice_peer, &mut bob_peer, relay.peer_id, 1 << 20).await?;
        println!("\n{name}: round, raw up+down, store-and-forward deposit+fetch (seal), ratio");
        let (mut raws, mut sfs) = (Vec::new(), Vec::new());
        for round in 1..=args.rounds {
            let t_raw = raw(&mut alice_peer, &mut bob_peer, relay.peer_id, len as u64).await?;

            let t = Instant::now();
            let clip = seal(len, round as u32, &mut rng)?;
            let t_seal = t.elapsed().as_secs_f64();
            let envelope = alice_peer
                .envelope(&alice, bob.key(), &clip, &mut rng)
                .await?;
            let t = Instant::now();
            alice_peer
                .deposit(
                    bob.key(),
                    envelope,
                    &clip,
                    args.pipeline,
                    args.chunk_requests,
                )
                .await?;
            let t_deposit = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let (seq, plaintext) = bob_peer
                .fetch(&mut bob, args.pipeline, args.chunk_requests)
                .await?;
            let t_fetch = t.elapsed().as_secs_f64();
            ensure!(
                blake3::hash(&plaintext) == clip.content_hash,
                "the clip came back different"
            );
            bob_peer.ok(Request::Ack { seqs: vec![seq] }).await?;

            let t_sf = t_deposit + t_fetch;
            let mib_s = |t: f64| 2.0 * args.size_mib as f64 / t;
            println!(
                "| {name} | {round} | {:.0} ms ({:.0} MiB/s) | {:.0} ms = {:.0} + {:.0} ({:.0} MiB/s) | {:.0} ms | {:.2}x |",
                t_raw * 1e3,
                mib_s(t_raw),
                t_sf * 1e3,
                t_deposit * 1e3,
                t_fetch * 1e3,
                mib_s(t_sf),
                t_seal * 1e3,
                t_sf / t_raw,
            );
            raws.push(t_raw);
            sfs.push(t_sf);
        }
        let ratios: Vec<f64> = raws.iter().zip(&sfs).map(|(r, s)| s / r).collect();
        println!(
            "{name} medians: raw {:.0} ms, store-and-forward {:.0} ms, ratio of medians {:.2}x, median ratio {:.2}x",
            median(&raws) * 1e3,
            median(&sfs) * 1e3,
            median(&sfs) / median(&raws),
            median(&ratios),
        );
        alice_peer.close().await;
        bob_peer.close().await;
    }
    Ok(())
}

/// `len` bytes from Alice to the relay over one raw stream, then `len`
/// bytes from the relay to Bob over another: the volume of a deposit and
/// a fetch. Returns seconds.
async fn raw(alice: &mut Peer, bob: &mut Peer, relay: PeerId, len: u64) -> anyhow::Result<f64> {
    let t = Instant::now();
    let up = alice.bench.as_mut().expect("bench on");
    bench::transfer(up, relay, len, 0).await?;
    let down = bob.bench.as_mut().expect("bench on");
    bench::transfer(down, relay, 0, len).await?;
    Ok(t.elapsed().as_secs_f64())
}

/// Waits for every task and returns what the successful ones gave; prints
/// the first five failures, naming them `what`.
async fn join_all_counted<T>(
    tasks: Vec<JoinHandle<anyhow::Result<T>>>,
    what: &str,
) -> anyhow::Result<Vec<T>> {
    let mut ok = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for task in tasks {
        match task.await? {
            Ok(t) => ok.push(t),
            Err(e) => {
                failed += 1;
                if failed <= 5 {
                    println!("{what} failed: {e:#}");
                }
            }
        }
    }
    Ok(ok)
}

/// One client of the many-clients test, shared by its tasks.
type SharedClient = Arc<tokio::sync::Mutex<(Peer, Party, ChaCha20Rng)>>;

/// The mixed workload's reactions: recipient i with i % 4 == 0 sends a
/// 64 KiB clip back to its sender, all at once; then those senders fetch
/// it, all at once.
async fn reactions(
    clients: &[SharedClient],
    keys: &[SigningPublicKey],
    pipeline: usize,
    chunk_requests: bool,
) -> anyhow::Result<()> {
    let n = clients.len();
    let reactors: Vec<usize> = (0..n).filter(|i| i % 4 == 0).collect();
    let t = Instant::now();
    let mut tasks = Vec::new();
    let mut expected = std::collections::HashMap::new();
    for &i in &reactors {
        let sender = (i + n - 1) % n;
        let client = clients[i].clone();
        let to = keys[sender];
        let clip = {
            let mut guard = client.lock().await;
            Arc::new(seal(64 << 10, (n + i) as u32, &mut guard.2)?)
        };
        expected.insert(sender, clip.content_hash);
        tasks.push(tokio::spawn(async move {
            let mut guard = client.lock().await;
            let (peer, party, rng) = &mut *guard;
            let envelope = peer.envelope(party, to, &clip, rng).await?;
            peer.deposit(to, envelope, &clip, pipeline, chunk_requests)
                .await?;
            anyhow::Ok(())
        }));
    }
    let sent = join_all_counted(tasks, "reaction").await?.len();
    let mut tasks = Vec::new();
    for (&sender, &hash) in &expected {
        let client = clients[sender].clone();
        tasks.push(tokio::spawn(async move {
            let mut guard = client.lock().await;
            let (peer, party, _) = &mut *guard;
            let (seq, plaintext) = peer.fetch(party, pipeline, chunk_requests).await?;
            ensure!(blake3::hash(&plaintext) == hash, "wrong reaction");
            peer.ok(Request::Ack { seqs: vec![seq] }).await?;
            anyhow::Ok(())
        }));
    }
    let received = join_all_counted(tasks, "reaction fetch").await?.len();
    println!(
        "reactions: {sent} of {} sent, {received} received, in {:.1} s",
        reactors.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Sizes of the mixed workload's clips, in turn.
const MIXED_SIZES: [usize; 4] = [64 << 10, 256 << 10, 1 << 20, 4 << 20];

/// `n` clients connect, log in and publish prekeys; then each deposits a
/// clip of `len` bytes (`None`: the mixed workload, see `--mixed`) for the
/// next one; then each fetches its own.
async fn many_clients(
    relay: &RelayProcess,
    n: usize,
    len: Option<usize>,
    pipeline: usize,
    chunk_requests: bool,
) -> anyhow::Result<()> {
    ensure!(n >= 2, "at least two clients");
    let relay_id = relay.peer_id;
    let address = relay.tcp.clone();
    let mixed = len.is_none();
    let len_of = |i: usize| len.unwrap_or(MIXED_SIZES[i % MIXED_SIZES.len()]);
    // In the mixed workload, sender i revokes when i % 8 == 7.
    let revokes = |i: usize| mixed && i % 8 == 7;
    match len {
        Some(len) => println!("{n} clients over TCP, {} MiB clips", len >> 20),
        None => println!(
            "{n} clients over TCP, mixed: clips of 64 KiB, 256 KiB, 1 MiB and 4 MiB in turn, one sender in eight revokes, one recipient in four reacts"
        ),
    }

    let t = Instant::now();
    let connected: Vec<anyhow::Result<(Peer, Party, ChaCha20Rng)>> = stream::iter(0..n)
        .map(|i| {
            let address = address.clone();
            tokio::spawn(async move {
                let mut rng = rng(1000 + i as u64);
                let mut party = Party::new(&mut rng);
                let peer = Peer::connect(&address, relay_id, false).await?;
                peer.publish(&mut party, 1, &mut rng).await?;
                Ok((peer, party, rng))
            })
        })
        .buffered(64)
        .map(|r| r.map_err(anyhow::Error::from).and_then(|r| r))
        .collect()
        .await;
    let mut clients = Vec::with_capacity(n);
    for c in connected {
        clients.push(c?);
    }
    println!(
        "connected, logged in and published: {n} clients in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let keys: Vec<SigningPublicKey> = clients.iter().map(|(_, p, _)| p.key()).collect();
    let mut clips = Vec::with_capacity(n);
    for (i, (_, _, rng)) in clients.iter_mut().enumerate() {
        clips.push(Arc::new(seal(len_of(i), i as u32, rng)?));
    }
    println!("sealed {n} clips in {:.1} s", t.elapsed().as_secs_f64());

    // Deposits, all at once.
    let clients: Vec<_> = clients
        .into_iter()
        .map(|(peer, party, rng)| Arc::new(tokio::sync::Mutex::new((peer, party, rng))))
        .collect();
    let t = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (i, client) in clients.iter().enumerate() {
        let client = client.clone();
        let to = keys[(i + 1) % n];
        let clip = clips[i].clone();
        tasks.push(tokio::spawn(async move {
            let mut guard = client.lock().await;
            let (peer, party, rng) = &mut *guard;
            let started = Instant::now();
            let envelope = peer.envelope(party, to, &clip, rng).await?;
            peer.deposit(to, envelope, &clip, pipeline, chunk_requests)
                .await?;
            anyhow::Ok(started.elapsed().as_secs_f64())
        }));
    }
    let mut latencies = join_all_counted(tasks, "deposit").await?;
    let deposit_wall = t.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    println!(
        "deposits: {} of {n} in {deposit_wall:.1} s; latency (bundle + deposit + upload) p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        percentile(&latencies, 50.0) * 1e3,
        percentile(&latencies, 99.0) * 1e3,
        latencies.last().copied().unwrap_or(f64::NAN) * 1e3,
    );

    // The mixed workload's revocations, all at once.
    if mixed {
        let t = Instant::now();
        let mut tasks = Vec::new();
        for (i, client) in clients.iter().enumerate().filter(|(i, _)| revokes(*i)) {
            let client = client.clone();
            let record = clips[i].sealed.revoke(now());
            tasks.push(tokio::spawn(async move {
                let guard = client.lock().await;
                match guard.0.req(Request::Revoke(record)).await? {
                    Response::Revoked(_) => anyhow::Ok(()),
                    other => bail!("revoke: {other:?}"),
                }
            }));
        }
        let n_revoked = tasks.len();
        let answered = join_all_counted(tasks, "revocation").await?.len();
        println!(
            "revocations: {answered} of {n_revoked} answered in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }

    // Fetches, all at once; each fetched clip is acknowledged. A revoked
    // clip's recipient must find an empty mailbox.
    let t = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (i, client) in clients.iter().enumerate() {
        let client = client.clone();
        let from = (i + n - 1) % n;
        let expected = clips[from].content_hash;
        let gone = revokes(from);
        tasks.push(tokio::spawn(async move {
            let mut guard = client.lock().await;
            let (peer, party, _) = &mut *guard;
            let started = Instant::now();
            if gone {
                let r = peer
                    .req(Request::List {
                        after: 0,
                        limit: 64,
                    })
                    .await?;
                let Response::Entries { entries, .. } = r else {
                    bail!("list: {r:?}")
                };
                ensure!(entries.is_empty(), "a revoked clip is listed");
                return anyhow::Ok(None);
            }
            let (seq, plaintext) = peer.fetch(party, pipeline, chunk_requests).await?;
            let elapsed = started.elapsed().as_secs_f64();
            ensure!(blake3::hash(&plaintext) == expected, "wrong clip");
            if mixed {
                peer.ok(Request::Ack { seqs: vec![seq] }).await?;
            }
            anyhow::Ok(Some(elapsed))
        }));
    }
    let outcomes = join_all_counted(tasks, "fetch").await?;
    let gone = outcomes.iter().filter(|o| o.is_none()).count();
    let mut fetches: Vec<f64> = outcomes.into_iter().flatten().collect();
    let fetch_wall = t.elapsed().as_secs_f64();
    fetches.sort_by(f64::total_cmp);
    let delivered_bytes: usize = (0..n)
        .filter(|&i| !revokes((i + n - 1) % n))
        .map(|i| len_of((i + n - 1) % n))
        .sum();
    println!(
        "delivered: {} of {} in {fetch_wall:.1} s ({:.0} MiB/s); fetch latency p50 {:.0} ms, p99 {:.0} ms; revoked and gone: {gone}",
        fetches.len(),
        n - (0..n).filter(|&i| revokes(i)).count(),
        delivered_bytes as f64 / (1 << 20) as f64 / fetch_wall,
        percentile(&fetches, 50.0) * 1e3,
        percentile(&fetches, 99.0) * 1e3,
    );
    if mixed {
        reactions(&clients, &keys, pipeline, chunk_requests).await?;
    }
    println!(
        "wall time, deposits + fetches: {:.1} s",
        deposit_wall + fetch_wall
    );
    for client in clients {
        if let Ok(client) = Arc::try_unwrap(client) {
            client.into_inner().0.close().await;
        }
    }
    Ok(())
}
