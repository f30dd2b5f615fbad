//! Printing results: text for people, one JSON object for scripts.
//!
//! Everything the binary prints on stdout goes through [`Stdout`]: when the
//! reader of a pipe goes away (`mayfly inbox | head -1`), the write fails
//! with `BrokenPipe`, the command unwinds as for any error, and `main` ends
//! it quietly (exit 0, nothing on stderr), as a Unix tool killed by SIGPIPE
//! would end. Nothing here panics on a closed stdout or stderr.

use std::fmt::Display;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

/// Set once a write to stdout found the pipe closed.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a write to stdout found its reader gone: the command's error,
/// if any, is that, and is not worth reporting.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Standard output, noting a closed pipe (see [`stdout_closed`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

fn note<T>(r: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &r
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
    r
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        note(io::stdout().lock().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        note(io::stdout().lock().write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        note(io::stdout().lock().flush())
    }
}

/// Prints `line` and a newline on stdout, flushed.
pub fn line(line: impl Display) -> io::Result<()> {
    let mut out = Stdout;
    writeln!(out, "{line}")?;
    out.flush()
}

/// Prints `line` and a newline on stderr; a failure to do so is ignored
/// (there is nowhere left to report it).
pub fn eline(line: impl Display) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Prints `value` as JSON if `json`, else `text` (nothing if it is empty).
pub fn print(json: bool, value: Value, text: impl FnOnce() -> String) -> io::Result<()> {
    if json {
        line(value)
    } else {
        let t = text();
        if t.is_empty() { Ok(()) } else { line(t) }
    }
}

/// A message id's short form (the first 12 hex digits).
pub fn short(hex: &str) -> &str {
    &hex[..hex.len().min(12)]
}

/// An error and its causes on one line, each cause once: a cause whose
/// text the line already holds (an error that prints its source, as
/// `"reading x: No such file or directory (os error 2)"` does, and also
/// returns it as its source) is not repeated.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let t = cause.to_string();
        if t.is_empty() || text.contains(&t) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&t);
    }
    text.lines().collect::<Vec<_>>().join(" ")
}

/// A contact as one line of a list: its name and the first 16 hex digits
/// of its identity key.
pub fn contact_line(c: &mayfly_node::home::Contact) -> String {
    format!(
        "{}  {}",
        c.name,
        &hex::encode(c.card.identity_key().to_bytes())[..16]
    )
}
