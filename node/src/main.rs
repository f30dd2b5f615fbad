//! The `mayfly` command.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use mayfly_node::demo::{DemoOptions, run};
use mayfly_protocol::UnixMillis;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { size_kib, seed } => demo(size_kib, seed),
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
