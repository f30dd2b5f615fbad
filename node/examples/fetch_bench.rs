//! Opening a clip from a sender on a slow link (the player-wait row of
//! BENCHMARKS.md): one process, an in-process relay on
//! loopback TCP, and two clients in temporary homes. erin sends bob a clip
//! through the relay; bob opens it while erin is online, her traffic shaped
//! to a set rate and the relay's not.
//!
//! ```sh
//! sudo cargo run --release -p mayfly-node --example fetch_bench -- --rate 40mbit,400mbit --rounds 3
//! ```
//!
//! The shaping is Linux traffic control on the loopback device: an `htb`
//! qdisc whose default class is unshaped, and a class at `--rate` that `u32`
//! filters send every packet from or to erin's listening TCP port (bob dials
//! her there). It needs `tc` and `CAP_NET_ADMIN`, and a loopback device with
//! no root qdisc of its own; the qdisc is removed at the end. Without them
//! the benchmark says so and stops.
//!
//! For each rate, bob restarts with each way of choosing sources, rounds
//! interleaved:
//!
//! - the relay alone (`fetch_from_sender: false`);
//! - erin's device, the relay on a stall only (`keep_up_with_playback: false`);
//! - erin's device, the relay on a stall or once she falls behind playback
//!   (the default);
//! - both from the start (`helpers_after` zero);
//! - saved to a file (`OpenTarget::File`) with the default configuration,
//!   which counts as a player that wants every chunk at once.
//!
//! Each open notes when each chunk is played out (`Progress::Advance`).
//! Besides the open's time, the benchmark reports how long a player would
//! wait in all if it started 1 s into the open (the startup allowance the
//! default policy assumes) and played at the clip's pace, its duration over
//! its chunks: `max(0, max over k of (chunk k played − (start + 1 s + k ×
//! pace)))`. The clip is `samples/hello.mp4` (4.000 s) with a `free` box up
//! to `--size-mib`, so the pace is 4 s over its chunks.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use mayfly_node::client::{self, Client, ClientConfig, Event, OpenTarget, Progress, SendOptions};
use mayfly_node::home::{Home, Profile, Via};
use mayfly_node::relay::local::LocalRelay;
use mayfly_protocol::MessageId;

#[path = "support/mod.rs"]
mod support;
use support::{ms, now, write_padded_clip};

/// The sample's duration: the clip's, whatever its size.
const SAMPLE_DURATION: Duration = Duration::from_secs(4);

/// The startup allowance the default policy assumes (its `helpers_after`,
/// at least 1 s).
const STARTUP: Duration = Duration::from_secs(1);

/// Upper bound on anything the benchmark waits for.
const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Parser)]
#[command(about = "Opening a clip from a sender on a shaped link, with and without the relay")]
struct Args {
    /// Rates of erin's link to try, comma-separated, as `tc` takes them
    /// (`40mbit`, `1kbit`: the latter is as good as unreachable).
    #[arg(long, value_delimiter = ',', default_value = "40mbit,400mbit")]
    rate: Vec<String>,
    /// Rounds per rate (each opens once with every way of choosing sources).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Size of the clip, in MiB.
    #[arg(long, default_value_t = 32)]
    size_mib: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        !args.rate.is_empty() && args.rounds > 0,
        "nothing to measure"
    );
    support::run_main(|root| async move { run(&args, &root).await })
}

/// Traffic control on loopback: packets from or to one TCP port go through
/// a class shaped to a rate; the rest is not shaped. Removed when dropped.
struct Shaper {
    port: u16,
}

impl Shaper {
    fn new(port: u16, rate: &str) -> anyhow::Result<Self> {
        tc(&[
            "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10", "r2q",
            "1000",
        ])
        .context("adding an htb qdisc to lo (needs tc, CAP_NET_ADMIN and no root qdisc on lo)")?;
        let shaper = Self { port };
        tc(&[
            "class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate",
            "100gbit",
        ])?;
        tc(&[
            "class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate", rate,
            "ceil", rate,
        ])?;
        let port = port.to_string();
        for way in ["sport", "dport"] {
            tc(&[
                "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
                "match", "ip", way, &port, "0xffff", "flowid", "1:20",
            ])?;
        }
        Ok(shaper)
    }

    fn set(&self, rate: &str) -> anyhow::Result<()> {
        tc(&[
            "class", "change", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate", rate,
            "ceil", rate,
        ])
    }
}

impl Drop for Shaper {
    fn drop(&mut self) {
        if let Err(e) = tc(&["qdisc", "del", "dev", "lo", "root"]) {
            eprintln!("removing the shaping of port {}: {e:#}", self.port);
        }
    }
}

fn tc(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("tc")
        .args(args)
        .output()
        .context("running tc")?;
    if !out.status.success() {
        bail!(
            "tc {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A running client and its events.
struct Party {
    client: Client,
    events: support::Events,
}

impl Party {
    async fn start(dir: &Path, name: &'static str, config: ClientConfig) -> anyhow::Result<Self> {
        let (client, events) = support::start_client(dir, name, config).await?;
        Ok(Self { client, events })
    }

    async fn wait<T>(&mut self, f: impl FnMut(&Event) -> Option<T>) -> anyhow::Result<T> {
        Ok(self.events.wait_for(TIMEOUT, f).await?.1)
    }
}

/// One open: how long it took, how long a player would have waited, and
/// how many chunks came from erin's device.
struct Opened {
    took: Duration,
    waited: Duration,
    from_erin: usize,
    chunks: usize,
}

/// How long in all a player that starts [`STARTUP`] after `start` and plays
/// chunk `k` at `k × pace` waits for chunks played out at `played`.
fn player_wait(start: Instant, played: &[Instant], pace: Duration) -> Duration {
    let first = start + STARTUP;
    played
        .iter()
        .enumerate()
        .map(|(k, at)| at.saturating_duration_since(first + pace * k as u32))
        .max()
        .unwrap_or_default()
}

async fn run(args: &Args, root: &Path) -> anyhow::Result<()> {
    let relay = LocalRelay::start(&root.join("relay"), support::relay_config()?).await?;
    for name in ["erin", "bob"] {
        let mut rng = mayfly_node::rng::node_rng(None)?;
        Home::create(
            &root.join(name),
            Profile {
                display_name: name.into(),
                relays: vec![relay.address.clone()],
            },
            now(),
            &mut rng,
        )?;
    }
    let (erin_home, bob_home) = (
        Home::open(&root.join("erin"))?,
        Home::open(&root.join("bob"))?,
    );
    erin_home.add_contact(&bob_home.card()?, now())?;
    bob_home.add_contact(&erin_home.card()?, now())?;
    let bob_id = erin_home.find_contact("bob")?.card.identity_key();
    drop((erin_home, bob_home));

    let mut erin = Party::start(&root.join("erin"), "erin", ClientConfig::default()).await?;
    let address = erin
        .wait(|e| match e {
            Event::Listening { address } => Some(address.clone()),
            _ => None,
        })
        .await?;
    let port = tcp_port(&address).context("erin listens on no TCP port")?;
    // bob neither listens nor announces: the clip goes through the relay.
    let bob_base = ClientConfig {
        listen: vec![],
        announce: false,
        ..ClientConfig::default()
    };
    let mut bob = Party::start(&root.join("bob"), "bob", bob_base.clone()).await?;

    let size = args.size_mib << 20;
    let clip = root.join("clip.mp4");
    write_padded_clip(&clip, size)?;
    let report = erin
        .client
        .send_file(
            &[bob_id],
            &clip,
            SendOptions {
                allow_save: true,
                ..SendOptions::default()
            },
        )
        .await?;
    ensure!(
        matches!(report.delivered[0].via, Via::Relay { .. }),
        "the clip to bob went direct"
    );
    let id = report.message_id;
    bob.wait(|e| {
        matches!(e, Event::Received { message_id, .. } if *message_id == id).then_some(())
    })
    .await?;

    let shaper = Shaper::new(port, &args.rate[0])?;
    // (label, bob's configuration, whether he saves to a file).
    let sources = [
        (
            "the relay alone",
            ClientConfig {
                fetch_from_sender: false,
                ..bob_base.clone()
            },
            false,
        ),
        (
            "erin's device, the relay on a stall only",
            ClientConfig {
                keep_up_with_playback: false,
                ..bob_base.clone()
            },
            false,
        ),
        (
            "erin's device, the relay on a stall or behind playback (default)",
            bob_base.clone(),
            false,
        ),
        (
            "both from the start (helpers_after 0)",
            ClientConfig {
                helpers_after: Duration::ZERO,
                ..bob_base.clone()
            },
            false,
        ),
        (
            "saved to a file: erin's device, the relay if not all in by 0.75 s (default)",
            bob_base.clone(),
            true,
        ),
    ];
    println!(
        "{} MiB clip of {:?} from erin (shaped) to bob through the relay (not shaped); erin listens on port {port}",
        args.size_mib, SAMPLE_DURATION
    );
    let mut results = Vec::new();
    for rate in &args.rate {
        shaper.set(rate)?;
        let mut opens: Vec<Vec<Opened>> = (0..sources.len()).map(|_| Vec::new()).collect();
        for round in 0..args.rounds {
            for k in 0..sources.len() {
                let v = (k + round) % sources.len();
                bob.client.shutdown().await;
                drop(bob);
                bob = Party::start(&root.join("bob"), "bob", sources[v].1.clone()).await?;
                let save = sources[v].2.then(|| root.join("saved.mp4"));
                let opened = open(&bob.client, id, save.as_deref()).await?;
                if let Some(path) = save {
                    std::fs::remove_file(path)?;
                }
                eprintln!(
                    "  {rate}, round {round}, {}: {:.0} ms, a player waits {:.0} ms, {} of {} chunks from erin",
                    sources[v].0,
                    ms(opened.took),
                    ms(opened.waited),
                    opened.from_erin,
                    opened.chunks
                );
                opens[v].push(opened);
            }
        }
        results.push((rate, opens));
    }
    drop(shaper);

    println!(
        "\n### Opening a {} MiB clip of {:?} from a sender on a shaped link\n",
        args.size_mib, SAMPLE_DURATION
    );
    println!(
        "| erin's link | sources | n | open, median ms | min | max | a player waits, median ms | max | chunks from erin, per open |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for (rate, opens) in &results {
        for (v, (name, _, _)) in sources.iter().enumerate() {
            let mut took: Vec<Duration> = opens[v].iter().map(|o| o.took).collect();
            let mut waited: Vec<Duration> = opens[v].iter().map(|o| o.waited).collect();
            took.sort();
            waited.sort();
            let from: Vec<String> = opens[v]
                .iter()
                .map(|o| format!("{}/{}", o.from_erin, o.chunks))
                .collect();
            println!(
                "| {rate} | {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
                took.len(),
                ms(took[took.len() / 2]),
                ms(took[0]),
                ms(took[took.len() - 1]),
                ms(waited[waited.len() / 2]),
                ms(waited[waited.len() - 1]),
                from.join(", ")
            );
        }
    }
    erin.client.revoke(&id).await?;
    for p in [&erin, &bob] {
        p.client.shutdown().await;
    }
    relay.stop().await?;
    Ok(())
}

/// Opens `id` (into a sink, or saved to `save`), noting when each chunk is
/// played out (its `Progress::Advance`, after its plaintext is written).
async fn open(client: &Client, id: MessageId, save: Option<&Path>) -> anyhow::Result<Opened> {
    let played = Arc::new(Mutex::new(Vec::new()));
    let notes = played.clone();
    let progress: client::ProgressFn = Arc::new(move |p| {
        if let Progress::Advance { .. } = p {
            let mut played = notes.lock().unwrap_or_else(PoisonError::into_inner);
            played.push(Instant::now());
        }
    });
    let start = Instant::now();
    let target = match save {
        Some(path) => OpenTarget::File(path.to_path_buf()),
        None => OpenTarget::Writer(Box::new(std::io::sink())),
    };
    let report = client.open(&id, target, progress).await?;
    let took = start.elapsed();
    let played = played.lock().unwrap_or_else(PoisonError::into_inner);
    let chunks = report.chunk_latencies.len();
    ensure!(played.len() == chunks, "one Advance per chunk");
    let pace = SAMPLE_DURATION / u32::try_from(chunks.max(1))?;
    Ok(Opened {
        took,
        waited: player_wait(start, &played, pace),
        from_erin: report.peer_chunks,
        chunks,
    })
}

fn tcp_port(address: &Multiaddr) -> Option<u16> {
    address.iter().find_map(|p| match p {
        Protocol::Tcp(port) => Some(port),
        _ => None,
    })
}
