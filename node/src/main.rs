//! The `mayfly` command.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, Subcommand};
use libp2p::Multiaddr;
use mayfly_node::clock::Clock;
use mayfly_node::config::RelayConfig;
use mayfly_node::demo::{DemoOptions, run};
use mayfly_node::shutdown::ShutdownSignals;
use mayfly_protocol::UnixMillis;
use tracing_subscriber::EnvFilter;

mod cli;

/// Mayfly: end-to-end encrypted, expiring, revocable video clips over libp2p.
#[derive(Debug, Parser)]
#[command(name = "mayfly", version)]
struct Cli {
    /// The home directory of this device (default: $MAYFLY_HOME, else ~/.mayfly).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Print results as one JSON object per line, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a home: an identity, a device, prekeys and the default fliks.
    Init {
        /// Your display name, as contacts see it.
        #[arg(long)]
        name: String,
        /// A relay to receive through, as /ip4/…/tcp/…/p2p/<peer id> (repeatable).
        #[arg(long = "relay", value_name = "MULTIADDR")]
        relays: Vec<String>,
    },
    /// Print your contact card.
    Card,
    /// Add or list contacts.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Print an invite for someone who does not have Mayfly yet, or accept one.
    Invite {
        #[command(subcommand)]
        command: Option<InviteCommand>,
    },
    /// Send an MP4 clip (at most 180 s) to one or more contacts.
    Send {
        /// Contacts, by name or identity prefix, separated by commas.
        #[arg(long, value_delimiter = ',', required = true)]
        to: Vec<String>,
        /// The clip.
        file: PathBuf,
        /// Lifetime, e.g. 2d, 12h, 30m (at most 14d; default 14d).
        #[arg(long, value_parser = cli::parse_expires)]
        expires: Option<Duration>,
        /// Let recipients keep a copy (`open --out FILE`). A modified client can keep one anyway.
        #[arg(long)]
        allow_save: bool,
    },
    /// React to a received clip with a flik from your library.
    React {
        /// The message id (or a unique prefix of at least 6 hex digits).
        id: String,
        /// The flik's name (default: the first in your library).
        flik: Option<String>,
    },
    /// Sync with your relays and list received and sent clips.
    Inbox {
        /// Do not contact the relays; list what is already here.
        #[arg(long)]
        offline: bool,
    },
    /// Decrypt a clip as it streams, to a file (if the sender allowed saving) or to stdout (`-`).
    Open {
        /// The message id (or a unique prefix of at least 6 hex digits).
        id: String,
        /// Where to write it: a file, or `-` for stdout (e.g. piped into a player).
        #[arg(long, value_name = "FILE|-")]
        out: String,
    },
    /// Revoke a clip you sent: relays delete it and recipients erase it.
    Revoke {
        /// The message id (or a unique prefix of at least 6 hex digits).
        id: String,
    },
    /// Manage this identity's device.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Follow a contact: get their start notifications and keys when they go live.
    Follow {
        /// The contact, by name or identity prefix.
        contact: String,
    },
    /// Stop following a contact's broadcasts.
    Unfollow {
        /// The contact, by name or identity prefix.
        contact: String,
    },
    /// List the contacts who follow you, or remove one.
    Followers {
        /// Remove this follower (they get no more keys; a live broadcast rotates its key).
        #[arg(long, value_name = "CONTACT")]
        remove: Option<String>,
    },
    /// Go live to your followers, list broadcasts you can watch, watch one or its replay, comment, or revoke yours.
    #[command(subcommand)]
    Live(LiveCommand),
    /// Stay online: receive direct deliveries and relay pushes until SIGINT or SIGTERM.
    Online {
        /// Accept direct deliveries on this address (repeatable; default /ip4/127.0.0.1/tcp/0).
        #[arg(long, value_name = "MULTIADDR")]
        listen: Vec<Multiaddr>,
    },
    /// Run a relay: print its peer id and listen addresses, serve mailboxes until SIGTERM or SIGINT.
    Relay {
        /// Listen on this address (repeatable); replaces the config file's `listen`.
        /// Default: /ip4/127.0.0.1/tcp/0 and /ip4/127.0.0.1/udp/0/quic-v1.
        #[arg(long, value_name = "MULTIADDR")]
        listen: Vec<Multiaddr>,
        /// Read listen addresses, limits, rates and store quotas from this TOML file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9090; port 0 picks one);
        /// replaces the config file's `metrics_listen`.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Run a relay and three clients on loopback: send, stream, react, revoke, go live, watch, comment and replay.
    Demo {
        /// Keep the temporary homes and print where they are.
        #[arg(long)]
        keep: bool,
        /// Run the single-process walk-through of the clip format instead (no network).
        #[arg(long)]
        local: bool,
        /// With --local: size of the synthetic clip, in KiB.
        #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
        size_kib: u64,
        /// With --local: seed keys from this number (reproducible runs).
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum LiveCommand {
    /// Broadcast fragmented MP4 (e.g. from `ffmpeg … -movflags frag_keyframe+empty_moov -f mp4 -`)
    /// to your followers, end-to-end encrypted, in segments of about 1 s cut at keyframes.
    Start {
        /// Send to these contacts instead of your followers (names or identity prefixes, commas).
        #[arg(long, value_delimiter = ',')]
        to: Vec<String>,
        /// Let relays keep the segments for a 24-hour replay.
        #[arg(long)]
        replay: bool,
        /// Where viewers join the overlay (default /ip4/0.0.0.0/tcp/0).
        #[arg(long, value_name = "MULTIADDR")]
        listen: Option<Multiaddr>,
        /// Wait until this many viewers have joined before the first segment (at most 60 s).
        #[arg(long, value_name = "N", default_value_t = 0)]
        wait_for: usize,
        /// Publish as fast as the input comes instead of at the video's own pace.
        #[arg(long)]
        no_pace: bool,
        /// The input: a fragmented MP4 file, or `-` for stdin.
        input: String,
    },
    /// List the broadcasts you hold keys for (kept 24 h).
    List,
    /// Watch a broadcast: verify, decrypt and write it in order as fragmented MP4.
    Watch {
        /// The broadcast id (or a unique prefix of at least 4 hex digits), from `live list`.
        id: String,
        /// Where to write it: a file, or `-` for stdout (e.g. piped into ffplay or mpv).
        #[arg(long, value_name = "FILE|-")]
        out: String,
        /// Also join the overlay at this peer (repeatable).
        #[arg(long, value_name = "MULTIADDR")]
        peer: Vec<Multiaddr>,
        /// Where this viewer's overlay peer listens (default /ip4/0.0.0.0/tcp/0).
        #[arg(long, value_name = "MULTIADDR")]
        listen: Option<Multiaddr>,
        /// Give up after this long with no new segment, e.g. 30s, 2m.
        #[arg(long, value_parser = cli::parse_duration, default_value = "30s")]
        idle: Duration,
        /// Watch without telling anyone who you are: the broadcaster counts an anonymous viewer.
        /// (Commenting still signs the comment.)
        #[arg(long)]
        anonymous: bool,
        /// Play the replay from its start, from the broadcaster's relays (a broadcast started
        /// with --replay, within 24 h). Without this flag a broadcast that is over plays its
        /// replay.
        #[arg(long)]
        replay: bool,
    },
    /// Who watched the replay of your broadcast (named, and how many anonymously).
    Viewers {
        /// The broadcast id (or a unique prefix of at least 4 hex digits), from `live list`.
        id: String,
    },
    /// Revoke your broadcast: its replay is deleted at your relays and its keys erased here.
    Revoke {
        /// The broadcast id (or a unique prefix of at least 4 hex digits), from `live list`.
        id: String,
    },
    /// Comment on a broadcast: encrypted under its key, signed by your device, shown to every viewer.
    /// While `live watch` or `live start` runs in this home, the comment goes through it.
    Comment {
        /// The broadcast id (or a unique prefix of at least 4 hex digits), from `live list`.
        id: String,
        /// The comment: one line, at most 500 bytes.
        text: String,
    },
}

#[derive(Debug, Subcommand)]
enum ContactCommand {
    /// Add a contact from their card (`mfcard1…`) or invite (`mfinvite1…`).
    Add {
        /// The card or invite text.
        text: String,
    },
    /// List contacts with their safety numbers.
    List,
}

#[derive(Debug, Subcommand)]
enum InviteCommand {
    /// Accept an invite: both sides become contacts.
    Accept {
        /// The invite text (`mfinvite1…`).
        text: String,
    },
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// Make a new device for this identity; relays and contacts stop accepting the old one,
    /// which erases its message keys when it next reaches a relay.
    Replace,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let result = dispatch(cli);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout went away (`mayfly inbox | head -1`): the
        // command ends quietly, as a Unix tool would.
        Err(_) if cli::output::stdout_closed() => ExitCode::SUCCESS,
        Err(e) => {
            let message = cli::output::one_line(&e);
            if json {
                let _ = cli::output::line(serde_json::json!({ "error": message }));
            }
            cli::output::eline(format_args!("mayfly: error: {message}"));
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    let home = || cli::home_dir(cli.home.clone());
    match cli.command {
        Command::Demo {
            keep,
            local,
            size_kib,
            seed,
        } => {
            if local {
                demo(size_kib, seed)
            } else {
                cli::demo::run(keep)
            }
        }
        Command::Relay {
            listen,
            config,
            metrics,
        } => {
            let dir = cli.home.clone().context("mayfly relay needs --home DIR")?;
            relay(&dir, listen, config.as_deref(), metrics)
        }
        Command::Init { name, relays } => cli::commands::init(&home()?, name, relays, json),
        Command::Card => cli::commands::card(&home()?, json),
        Command::Contact(ContactCommand::Add { text }) => {
            cli::commands::contact_add(&home()?, &text, json)
        }
        Command::Contact(ContactCommand::List) => cli::commands::contact_list(&home()?, json),
        Command::Invite { command: None } => cli::commands::invite(&home()?, json),
        Command::Invite {
            command: Some(InviteCommand::Accept { text }),
        } => cli::commands::invite_accept(&home()?, &text, json),
        Command::Send {
            to,
            file,
            expires,
            allow_save,
        } => cli::commands::send(&home()?, &to, &file, expires, allow_save, json),
        Command::React { id, flik } => cli::commands::react(&home()?, &id, flik.as_deref(), json),
        Command::Inbox { offline } => cli::commands::inbox(&home()?, offline, json),
        Command::Open { id, out } => cli::commands::open(&home()?, &id, &out, json),
        Command::Revoke { id } => cli::commands::revoke(&home()?, &id, json),
        Command::Device(DeviceCommand::Replace) => cli::commands::device_replace(&home()?, json),
        Command::Follow { contact } => cli::live::follow(&home()?, &contact, true, json),
        Command::Unfollow { contact } => cli::live::follow(&home()?, &contact, false, json),
        Command::Followers { remove } => cli::live::followers(&home()?, remove.as_deref(), json),
        Command::Live(LiveCommand::Start {
            to,
            replay,
            listen,
            wait_for,
            no_pace,
            input,
        }) => cli::live::start_live(
            &home()?,
            &cli::live::StartOptions {
                to: &to,
                replay,
                input: &input,
                listen,
                wait_for,
                no_pace,
            },
            json,
        ),
        Command::Live(LiveCommand::List) => cli::live::list(&home()?, json),
        Command::Live(LiveCommand::Watch {
            id,
            out,
            peer,
            listen,
            idle,
            anonymous,
            replay,
        }) => cli::live::watch_live(
            &home()?,
            &cli::live::WatchOptions {
                id: &id,
                out: &out,
                peers: peer,
                listen,
                idle,
                anonymous,
                replay,
            },
            json,
        ),
        Command::Live(LiveCommand::Revoke { id }) => cli::live::revoke(&home()?, &id, json),
        Command::Live(LiveCommand::Viewers { id }) => cli::live::viewers(&home()?, &id, json),
        Command::Live(LiveCommand::Comment { id, text }) => {
            cli::live::comment(&home()?, &id, &text, json)
        }
        Command::Online { listen } => {
            init_logging()?;
            cli::commands::online(&home()?, listen, json)
        }
    }
}

fn demo(size_kib: u64, seed: Option<u64>) -> anyhow::Result<()> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let opts = DemoOptions {
        clip_bytes: usize::try_from(size_kib * 1024)?,
        seed,
        now: UnixMillis(now),
    };
    let report = run(&opts, &mut cli::output::Stdout)?;
    anyhow::ensure!(
        report.opened_intact,
        "the opened clip differs from the sealed one"
    );
    anyhow::ensure!(
        report.unopenable_after_revocation,
        "the clip still opens after revocation"
    );
    cli::output::line(format_args!(
        "demo complete: message {} sealed, opened, revoked",
        report.message_id
    ))?;
    Ok(())
}

/// How long the runtime may take to wind down its tasks once the relay has
/// stopped.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

fn relay(
    home: &Path,
    listen: Vec<Multiaddr>,
    config: Option<&Path>,
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    init_logging()?;
    let mut config = match config {
        Some(path) => RelayConfig::load(path)?,
        None => RelayConfig::default(),
    };
    if !listen.is_empty() {
        config.listen = listen;
    }
    if metrics.is_some() {
        config.metrics_listen = metrics;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mayfly-relay")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        // Before anything is announced, so that a signal from then on means
        // "stop gracefully".
        let signals = ShutdownSignals::install().context("cannot install signal handlers")?;
        // MAYFLY_CLOCK_OFFSET_MS shifts the relay's clock too (tests of expiry).
        let clock = Arc::new(Clock::with_offset(cli::clock_offset()?));
        let out = &mut cli::output::Stdout;
        mayfly_node::relay::run_with_clock(&config, home, clock, out, signals.recv()).await?;
        anyhow::Ok(())
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    result
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: the node's own
/// progress at `info`, everything else at `warn`).
fn init_logging() -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        // The parse error repeats itself as its own source: show it once.
        Ok(directives) => EnvFilter::try_new(&directives)
            .map_err(|e| anyhow::anyhow!("invalid RUST_LOG {directives:?}: {e}"))?,
        Err(_) => EnvFilter::new("warn,mayfly=info,mayfly_node=info"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}
