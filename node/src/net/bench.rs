//! `/mayfly/bench/1`: a raw-transfer protocol for benchmarks only, the
//! baseline the mailbox protocol's store-and-forward is measured against
//! (`node/examples/relay_bench.rs`).
//!
//! It runs only on swarms built with [`Limits::bench_protocol`] set (off by
//! default). On such a swarm, [`crate::net::new_with_bench`] spawns a server
//! that accepts every `/mayfly/bench/1` stream and answers it: the opener
//! writes a 16-byte header, `up` then `down` as big-endian `u64`s, followed
//! by `up` bytes; the server reads them all, writes `down` bytes and closes
//! the stream. [`transfer`] is the opener's side. Nothing is stored and
//! nothing is checked: it moves bytes over one libp2p stream as fast as the
//! transport allows.
//!
//! [`Limits::bench_protocol`]: crate::config::Limits::bench_protocol

use std::io;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
pub use libp2p_stream::{Behaviour, Control};

/// The protocol name.
pub const BENCH_PROTOCOL: StreamProtocol = StreamProtocol::new("/mayfly/bench/1");

/// Bytes read or written per call.
const BUF_LEN: usize = 64 * 1024;

/// Largest transfer either way a server agrees to: 4 GiB.
pub const MAX_TRANSFER: u64 = 4 << 30;

/// Accepts `/mayfly/bench/1` streams on `control`'s swarm and serves each in
/// its own task, until the swarm is dropped. Spawn it on a tokio runtime.
pub async fn serve(mut control: Control) {
    let mut incoming = match control.accept(BENCH_PROTOCOL) {
        Ok(incoming) => incoming,
        Err(e) => {
            tracing::warn!("bench protocol not served: {e}");
            return;
        }
    };
    // The server needs no control: dropping it lets the stream of
    // incoming streams end with the swarm.
    drop(control);
    while let Some((peer, stream)) = incoming.next().await {
        tokio::spawn(async move {
            if let Err(e) = answer(stream).await {
                tracing::debug!(%peer, "bench stream failed: {e}");
            }
        });
    }
}

async fn answer(mut stream: Stream) -> io::Result<()> {
    let mut header = [0u8; 16];
    stream.read_exact(&mut header).await?;
    let (up, down) = split_header(&header);
    if up > MAX_TRANSFER || down > MAX_TRANSFER {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "transfer too large",
        ));
    }
    let received = drain(&mut stream, up).await?;
    if received != up {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    fill(&mut stream, down).await?;
    stream.close().await
}

fn split_header(header: &[u8; 16]) -> (u64, u64) {
    let mut up = [0u8; 8];
    let mut down = [0u8; 8];
    up.copy_from_slice(&header[..8]);
    down.copy_from_slice(&header[8..]);
    (u64::from_be_bytes(up), u64::from_be_bytes(down))
}

/// Reads up to `limit` bytes, stopping early at the end of the stream;
/// returns how many were read.
async fn drain(stream: &mut Stream, limit: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; BUF_LEN];
    let mut total = 0u64;
    while total < limit {
        let want = usize::try_from(limit - total).map_or(BUF_LEN, |r| r.min(BUF_LEN));
        let n = stream.read(&mut buf[..want]).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    Ok(total)
}

/// Writes `count` filler bytes in writes of 64 KiB and flushes, as
/// [`transfer`] sends its upload (also used by the benchmarks' own streams).
pub async fn fill(stream: &mut Stream, count: u64) -> io::Result<()> {
    let buf = vec![0xA5u8; BUF_LEN];
    let mut left = count;
    while left > 0 {
        let n = usize::try_from(left).map_or(BUF_LEN, |l| l.min(BUF_LEN));
        stream.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    stream.flush().await
}

/// Opens a `/mayfly/bench/1` stream to `peer` (dialling it if need be),
/// sends `up` bytes, and reads `down` bytes back and the end of the stream.
pub async fn transfer(control: &mut Control, peer: PeerId, up: u64, down: u64) -> io::Result<()> {
    let mut stream = control
        .open_stream(peer, BENCH_PROTOCOL)
        .await
        .map_err(|e| io::Error::new(io::ErrorKind::ConnectionRefused, e.to_string()))?;
    let mut header = [0u8; 16];
    header[..8].copy_from_slice(&up.to_be_bytes());
    header[8..].copy_from_slice(&down.to_be_bytes());
    stream.write_all(&header).await?;
    fill(&mut stream, up).await?;
    // One byte more than expected, to see the end of the stream.
    let received = drain(&mut stream, down.saturating_add(1)).await?;
    if received != down {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected {down} bytes back, got {received}"),
        ));
    }
    stream.close().await
}
