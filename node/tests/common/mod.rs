//! A `mayfly relay` subprocess for process tests (as in `relay_process.rs`):
//! its stdout read on a thread, every wait bounded.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Upper bound for anything a test waits on.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A running `mayfly relay`, killed if the test fails before stopping it.
pub struct Relay {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    pub peer_id: PeerId,
    pub listen: Vec<Multiaddr>,
}

impl Relay {
    /// Starts `mayfly relay --home <home> <args>` and waits for its peer id
    /// and `expected_listeners` addresses.
    pub fn start(home: &Path, args: &[&str], expected_listeners: usize) -> Relay {
        Self::start_with_env(home, args, expected_listeners, &[])
    }

    /// Like [`Relay::start`], with `env` set for the process.
    pub fn start_with_env(
        home: &Path,
        args: &[&str],
        expected_listeners: usize,
        env: &[(&str, &str)],
    ) -> Relay {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mayfly"))
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .arg("relay")
            .arg("--home")
            .arg(home)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mayfly starts");
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("piped");
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut relay = Relay {
            child,
            lines,
            stderr: Some(stderr),
            peer_id: PeerId::random(),
            listen: Vec::new(),
        };
        let first = relay.next_line();
        relay.peer_id = first
            .strip_prefix("peer id ")
            .unwrap_or_else(|| relay.fail(&format!("expected `peer id …`, got {first:?}")))
            .parse()
            .unwrap_or_else(|e| relay.fail(&format!("bad peer id in {first:?}: {e}")));
        while relay.listen.len() < expected_listeners {
            let line = relay.next_line();
            let address: Multiaddr = line
                .strip_prefix("listening ")
                .unwrap_or_else(|| relay.fail(&format!("expected `listening …`, got {line:?}")))
                .parse()
                .unwrap_or_else(|e| relay.fail(&format!("bad multiaddr in {line:?}: {e}")));
            assert_eq!(
                address.iter().last(),
                Some(Protocol::P2p(relay.peer_id)),
                "{line}"
            );
            relay.listen.push(address);
        }
        relay
    }

    /// The relay's next line of output (after those `start` read).
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(e) => self.fail(&format!("no line from the relay: {e}")),
        }
    }

    /// The announced TCP address.
    pub fn tcp(&self) -> Multiaddr {
        self.find(|p| matches!(p, Protocol::Tcp(_)))
    }

    /// The announced QUIC address.
    pub fn quic(&self) -> Multiaddr {
        self.find(|p| matches!(p, Protocol::QuicV1))
    }

    fn find(&self, is: fn(&Protocol) -> bool) -> Multiaddr {
        self.listen
            .iter()
            .find(|a| a.iter().any(|p| is(&p)))
            .unwrap_or_else(|| panic!("no such address among {:?}", self.listen))
            .clone()
    }

    /// True while the process runs.
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the relay's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` to the relay process.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal delivered");
    }

    /// Waits (bounded) for the relay to exit; returns its status and stderr.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let status = wait_with_timeout(&mut self.child)
            .unwrap_or_else(|| self.fail("the relay did not exit in time"));
        let stderr = self.stderr.take().expect("once").join().expect("reader");
        (status, stderr)
    }

    /// Sends SIGTERM and waits for a clean exit; returns stderr.
    pub fn stop(self) -> String {
        self.signal(Signal::SIGTERM);
        let (status, stderr) = self.wait();
        assert!(status.success(), "relay exit {status}; stderr:\n{stderr}");
        stderr
    }

    /// Kills the relay and panics with what it logged.
    pub fn fail(&mut self, message: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        panic!("{message}\nrelay stderr:\n{stderr}");
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Kills the relay with SIGKILL (no shutdown, no flush) and reaps it; returns
/// its stderr.
pub fn kill9(relay: Relay) -> String {
    relay.signal(Signal::SIGKILL);
    relay.wait().1
}

/// Polls `child` until it exits, for at most [`TIMEOUT`].
pub fn wait_with_timeout(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(5));
    }
    None
}
