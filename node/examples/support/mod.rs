//! What the client benchmarks share: the sample clip padded to a size, an
//! in-process relay's configuration with rate limits out of the way,
//! starting a client and waiting for its events, and the process set-up. Included by `client_bench.rs` and `fetch_bench.rs`
//! (`#[path]`; not an example of its own).

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use mayfly_node::client::{self, Client, ClientConfig, Event};
use mayfly_node::config::{RateLimits, RelayConfig};
use mayfly_node::home::Home;
use mayfly_protocol::UnixMillis;
use tokio::sync::mpsc;

/// `samples/hello.mp4` (4.000 s, and so is every clip [`write_padded_clip`]
/// writes).
pub const SAMPLE: &[u8] = include_bytes!("../../../samples/hello.mp4");

/// The system clock.
pub fn now() -> UnixMillis {
    UnixMillis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Logs to stderr (`RUST_LOG`, errors only by default), then runs `run`
/// with a temporary directory on a multi-thread runtime.
pub fn run_main<F, Fut>(run: F) -> anyhow::Result<()>
where
    F: FnOnce(std::path::PathBuf) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    runtime.block_on(run(dir.path().to_path_buf()))
}

/// A relay on loopback TCP whose rate limits never get in the way.
pub fn relay_config() -> anyhow::Result<RelayConfig> {
    Ok(RelayConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        rate: RateLimits {
            requests_per_sec: 1_000_000.0,
            burst: 1_000_000,
            deposits_per_sec: 1_000_000.0,
            deposit_burst: 1_000_000,
            bundles_per_sec: 1_000_000.0,
            bundle_burst: 1_000_000,
            locates_per_sec: 1_000_000.0,
            locate_burst: 1_000_000,
            revocations_per_sec: 1_000_000.0,
            revocation_burst: 1_000_000,
            ..RateLimits::default()
        },
        ..RelayConfig::default()
    })
}

/// Writes [`SAMPLE`] and a top-level `free` box of zeros up to `size`
/// bytes: a clip that passes the MP4 check (the probe reads only `moov`).
pub fn write_padded_clip(path: &Path, size: u64) -> anyhow::Result<()> {
    let pad = size
        .checked_sub(SAMPLE.len() as u64)
        .context("the clip is smaller than the sample")?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(SAMPLE)?;
    f.write_all(&u32::try_from(pad)?.to_be_bytes())?;
    f.write_all(b"free")?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = pad - 8;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    anyhow::ensure!(std::fs::metadata(path)?.len() == size);
    Ok(())
}

/// A client's events, read as they come (so the client never waits on
/// them), each stamped with when the client queued it.
pub struct Events {
    name: &'static str,
    rx: mpsc::UnboundedReceiver<(Instant, Event)>,
}

impl Events {
    /// Waits up to `limit` for an event `f` picks, skipping others (and
    /// printing warnings); returns when it was queued.
    pub async fn wait_for<T>(
        &mut self,
        limit: Duration,
        mut f: impl FnMut(&Event) -> Option<T>,
    ) -> anyhow::Result<(Instant, T)> {
        let name = self.name;
        tokio::time::timeout(limit, async {
            while let Some((at, e)) = self.rx.recv().await {
                if let Event::Warning { message } = &e {
                    eprintln!("  [{name}] warning: {message}");
                }
                if let Some(t) = f(&e) {
                    return Ok((at, t));
                }
            }
            anyhow::bail!("{name}'s client stopped")
        })
        .await
        .with_context(|| format!("{name} waited too long"))?
    }
}

/// Starts the client of the home in `dir`: its event loop, a task that
/// forwards its events, and its sessions with its relays.
pub async fn start_client(
    dir: &Path,
    name: &'static str,
    config: ClientConfig,
) -> anyhow::Result<(Client, Events)> {
    let (client, mut rx, event_loop) = client::new(Home::open(dir)?, config)?;
    tokio::spawn(event_loop.run());
    let (tx, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if tx.send((Instant::now(), e)).is_err() {
                break;
            }
        }
    });
    client.start().await?;
    Ok((client, Events { name, rx: events }))
}
