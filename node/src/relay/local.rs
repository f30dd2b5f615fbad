//! A relay inside the current process, on loopback: for the demo, tests and
//! benchmarks, which need a relay without a second process.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{RelayError, run};
use crate::config::RelayConfig;

/// How long [`LocalRelay::start`] waits for the relay to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A relay running as a task of the current runtime.
#[derive(Debug)]
pub struct LocalRelay {
    /// Its first listen address, with `/p2p/<peer id>`.
    pub address: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RelayError>>>,
}

/// Forwards the relay's announcement lines.
struct Lines(std_mpsc::SyncSender<String>, Vec<u8>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        while let Some(i) = self.1.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.1.drain(..=i).collect();
            let _ = self
                .0
                .try_send(String::from_utf8_lossy(&line).trim().to_owned());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LocalRelay {
    /// Starts a relay with its state in `home` on TCP loopback, port 0.
    pub async fn loopback(home: &Path) -> Result<LocalRelay, RelayError> {
        let config = RelayConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")],
            ..RelayConfig::default()
        };
        Self::start(home, config).await
    }

    /// Starts a relay with its state in `home` under `config` and waits
    /// until it listens.
    pub async fn start(home: &Path, config: RelayConfig) -> Result<LocalRelay, RelayError> {
        let (lines, announced) = std_mpsc::sync_channel(16);
        let (stop, stopped) = oneshot::channel::<()>();
        let home = home.to_path_buf();
        let task = tokio::spawn(async move {
            let mut out = Lines(lines, Vec::new());
            run(&config, &home, &mut out, async {
                let _ = stopped.await;
            })
            .await
        });
        let address = tokio::task::spawn_blocking(move || {
            while let Ok(line) = announced.recv_timeout(START_TIMEOUT) {
                if let Some(a) = line.strip_prefix("listening ") {
                    return Some(a.to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let mut relay = LocalRelay {
            address: String::new(),
            stop: Some(stop),
            task: Some(task),
        };
        match address {
            Some(a) => {
                relay.address = a;
                Ok(relay)
            }
            None => Err(relay
                .stop()
                .await
                .err()
                .unwrap_or(RelayError::NoListenAddrs)),
        }
    }

    /// Stops the relay and waits for it to finish.
    pub async fn stop(mut self) -> Result<(), RelayError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.task.take() {
            Some(t) => t.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for LocalRelay {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
