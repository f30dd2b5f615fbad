//! A supplementary baseline for `client_bench`: a raw libp2p transfer whose
//! receiver does the least a recipient must do to keep a clip, and nothing
//! of the protocol. The opener writes an 8-byte big-endian length and that
//! many bytes on one stream; the receiver reads them in pieces of a
//! ciphertext chunk's size, checks each with BLAKE3 and writes it at its
//! offset in a file (up to [`IN_FLIGHT`] pieces at once on the blocking
//! pool), starts a background `fdatasync` every [`SYNC_EVERY`] bytes as a
//! personal store does, syncs the file at the end, and answers one byte.
//! No frames, no event loop, no database, no manifest.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use mayfly_node::net::bench::{self, Control};
use mayfly_protocol::CIPHERTEXT_CHUNK_SIZE;
use tokio::task::JoinSet;

/// The protocol name (served only inside the benchmark).
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/mayfly-bench/raw-store/1");

/// Pieces hashed and written at once, as a chunk stream's window.
const IN_FLIGHT: usize = mayfly_protocol::mailbox::CHUNKS_WINDOW;

/// Bytes written between background syncs, as a personal store's chunk files.
const SYNC_EVERY: u64 = 8 << 20;

/// The largest transfer accepted, as the largest clip.
const MAX_LEN: u64 = mayfly_protocol::MAX_CHUNKS as u64 * CIPHERTEXT_CHUNK_SIZE as u64;

/// Serves [`PROTOCOL`] on `control`'s swarm, each transfer into a file in
/// `dir` that is removed afterwards.
pub fn serve(mut control: Control, dir: PathBuf) -> anyhow::Result<()> {
    let mut incoming = control.accept(PROTOCOL)?;
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Some((peer, mut stream)) = incoming.next().await {
            n += 1;
            let path = dir.join(format!("raw-store-{n}"));
            if let Err(e) = receive(&mut stream, &path).await {
                eprintln!("raw store transfer from {peer} failed: {e}");
            }
            let _ = std::fs::remove_file(&path);
        }
    });
    Ok(())
}

async fn receive(stream: &mut Stream, path: &Path) -> io::Result<()> {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).await?;
    let len = u64::from_be_bytes(header);
    if len > MAX_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "transfer too large",
        ));
    }
    let file = Arc::new(File::create(path)?);
    let mut pieces = JoinSet::new();
    let mut syncs = JoinSet::new();
    let (mut offset, mut unsynced) = (0u64, 0u64);
    while offset < len {
        let n = usize::try_from(len - offset)
            .map_or(CIPHERTEXT_CHUNK_SIZE, |l| l.min(CIPHERTEXT_CHUNK_SIZE));
        let mut piece = vec![0u8; n];
        stream.read_exact(&mut piece).await?;
        if pieces.len() >= IN_FLIGHT {
            pieces.join_next().await.expect("non-empty")??;
        }
        let f = file.clone();
        pieces.spawn_blocking(move || {
            std::hint::black_box(blake3::hash(&piece));
            f.write_all_at(&piece, offset)
        });
        offset += n as u64;
        unsynced += n as u64;
        if unsynced >= SYNC_EVERY {
            unsynced = 0;
            let f = file.clone();
            syncs.spawn_blocking(move || f.sync_data());
        }
    }
    while let Some(r) = pieces.join_next().await {
        r??;
    }
    let f = file.clone();
    tokio::task::spawn_blocking(move || f.sync_data()).await??;
    while let Some(r) = syncs.join_next().await {
        r??;
    }
    stream.write_all(&[1]).await?;
    stream.close().await
}

/// Sends `len` bytes to `peer` on [`PROTOCOL`] and waits for the answer
/// that they are in its file, durably.
pub async fn transfer(control: &mut Control, peer: PeerId, len: u64) -> anyhow::Result<()> {
    let mut stream = control.open_stream(peer, PROTOCOL).await?;
    stream.write_all(&len.to_be_bytes()).await?;
    bench::fill(&mut stream, len).await?;
    let mut done = [0u8; 1];
    stream.read_exact(&mut done).await?;
    anyhow::ensure!(done == [1], "raw store answered {done:?}");
    Ok(())
}
