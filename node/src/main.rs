//! The `mayfly` command.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, Subcommand};
use libp2p::Multiaddr;
use mayfly_node::config::RelayConfig;
use mayfly_node::demo::{DemoOptions, run};
use mayfly_node::shutdown::ShutdownSignals;
use mayfly_protocol::UnixMillis;
use tracing_subscriber::EnvFilter;

/// Mayfly: end-to-end encrypted, expiring, revocable video clips over libp2p.
#[derive(Debug, Parser)]
#[command(name = "mayfly", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Seal a clip for a second identity, open it as a stream, revoke it and show it no longer opens.
    Demo {
        /// Size of the synthetic clip, in KiB.
        #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
        size_kib: u64,
        /// Seed keys from this number instead of the OS RNG (reproducible runs).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run a relay: print its peer id and listen addresses, serve mailboxes until SIGTERM or SIGINT.
    Relay {
        /// Directory for the relay's state; its identity is DIR/node.key, created on first start.
        #[arg(long, value_name = "DIR")]
        home: PathBuf,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { size_kib, seed } => demo(size_kib, seed),
        Command::Relay {
            home,
            listen,
            config,
            metrics,
        } => relay(&home, listen, config.as_deref(), metrics),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mayfly: error: {e:#}");
            ExitCode::FAILURE
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
    let report = run(&opts, &mut std::io::stdout().lock())?;
    anyhow::ensure!(
        report.opened_intact,
        "the opened clip differs from the sealed one"
    );
    anyhow::ensure!(
        report.unopenable_after_revocation,
        "the clip still opens after revocation"
    );
    println!(
        "demo complete: message {} sealed, opened, revoked",
        report.message_id
    );
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
        mayfly_node::relay::run(&config, home, &mut std::io::stdout(), signals.recv()).await?;
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
