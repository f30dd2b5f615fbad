//! Opening a clip as a stream: chunks are fetched a few ahead, each is
//! checked against its manifest hash on arrival, decrypted, and written out
//! at once, so a player reading the output starts before the last chunk is
//! in.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use mayfly_protocol::mailbox::{Request, Response};
use mayfly_protocol::{ClipHeader, ClipOpener, MessageId};

use super::ingest::ChunkSource;
use super::inner::{Inner, unexpected};
use super::peer;
use super::progress::{Progress, ProgressFn};
use super::{Client, ClientError};
use crate::home::Source;
use crate::net::NetError;
use crate::net::chunks::{self, SendError};

/// Where an opened clip goes.
pub enum OpenTarget {
    /// Standard output (always allowed: it plays, it does not keep).
    Stdout,
    /// A file: a copy that stays, allowed only if the sender allowed saving.
    File(PathBuf),
    /// Any writer, e.g. a player's pipe (always allowed: a modified client
    /// can keep whatever it decrypts anyway, see SPEC §15.5).
    Writer(Box<dyn Write + Send>),
}

/// What an open did.
#[derive(Debug, Clone)]
pub struct OpenReport {
    /// The clip's header.
    pub header: ClipHeader,
    /// Content bytes written.
    pub bytes: u64,
    /// For each chunk, the time from its ciphertext being available to its
    /// first decrypted byte being written out.
    pub chunk_latencies: Vec<Duration>,
    /// Whether it came from the local store (a direct delivery).
    pub local: bool,
}

impl Client {
    /// Streams clip `id` to `target`. Fails before writing anything if the
    /// clip expired or if `target` is a file and saving is not allowed.
    pub async fn open(
        &self,
        id: &MessageId,
        target: OpenTarget,
        progress: ProgressFn,
    ) -> Result<OpenReport, ClientError> {
        self.inner.open(id, target, progress).await
    }
}

impl Inner {
    async fn open(
        &self,
        id: &MessageId,
        target: OpenTarget,
        progress: ProgressFn,
    ) -> Result<OpenReport, ClientError> {
        let (received, key) = {
            let home = self.home();
            let r = home
                .received(id)?
                .ok_or_else(|| ClientError::UnknownMessage(id.to_hex()))?;
            let k = home
                .received_key(id)?
                .ok_or_else(|| ClientError::UnknownMessage(id.to_hex()))?;
            (r, k)
        };
        let now = self.now();
        if received.header.expires_at <= now {
            return Err(ClientError::Expired(id.to_hex()));
        }
        let mut out: Box<dyn Write + Send> = match target {
            OpenTarget::Stdout => Box::new(std::io::stdout()),
            OpenTarget::File(path) => {
                if !received.header.allow_save {
                    return Err(ClientError::SaveNotAllowed);
                }
                Box::new(
                    std::fs::File::create(&path)
                        .map_err(|e| ClientError::io(format!("creating {}", path.display()), e))?,
                )
            }
            OpenTarget::Writer(w) => w,
        };
        let source = self.chunk_source(&received.sources).await?;
        let mut opener = ClipOpener::new(received.manifest.clone(), &key, now)?;
        drop(key);
        let label = format!("clip {}", &id.to_hex()[..12]);
        progress(Progress::Start {
            label: label.clone(),
            total: received.header.content_len,
        });
        let hashes = received.manifest.chunk_hashes().to_vec();
        let mut latencies = Vec::with_capacity(hashes.len());
        let mut written = 0u64;
        // Checks, decrypts and writes out chunk `index`, which arrived at
        // `arrived`.
        let mut take = |index: u32, bytes: Vec<u8>, arrived: Instant| {
            let chunk = received
                .manifest
                .check_chunk(index, &bytes)
                .ok_or(mayfly_protocol::Error::Decrypt)?;
            let plain = opener.open_verified(chunk)?;
            out.write_all(plain)
                .and_then(|()| out.flush())
                .map_err(|e| ClientError::io("writing the clip", e))?;
            latencies.push(arrived.elapsed());
            written += plain.len() as u64;
            progress(Progress::Advance {
                label: label.clone(),
                bytes: plain.len() as u64,
            });
            Ok::<_, ClientError>(())
        };
        let mut done = 0;
        if let ChunkSource::Remote(peer) = source {
            done = self.stream_chunks(peer, &hashes, &mut take).await?;
        }
        let mut next = hashes.iter().enumerate().skip(done);
        let mut fetches = FuturesOrdered::new();
        loop {
            while fetches.len() < self.config.pipeline.max(1) {
                let Some((index, hash)) = next.next() else {
                    break;
                };
                fetches.push_back(async move {
                    let r = self.fetch_chunk(source, hash).await;
                    (index as u32, r, Instant::now())
                });
            }
            let Some((index, bytes, arrived)) = fetches.next().await else {
                break;
            };
            take(index, bytes?, arrived)?;
        }
        let header = opener.finish()?;
        progress(Progress::Finish { label });
        self.home().mark_opened(id)?;
        Ok(OpenReport {
            header,
            bytes: written,
            chunk_latencies: latencies,
            local: matches!(source, ChunkSource::Local),
        })
    }

    /// Fetches `hashes` from relay `peer` on one chunk stream
    /// (`/mayfly/chunks/1`), handing each chunk to `take` as it arrives, and
    /// returns how many it handed over: all of them, or, if the relay does
    /// not speak the protocol or reset the stream, those before (the rest
    /// are then fetched as requests).
    async fn stream_chunks(
        &self,
        peer: libp2p::PeerId,
        hashes: &[mayfly_protocol::ChunkHash],
        take: &mut impl FnMut(u32, Vec<u8>, Instant) -> Result<(), ClientError>,
    ) -> Result<usize, ClientError> {
        let stream = match self.net.open_chunks(peer).await {
            Ok(stream) => stream,
            Err(NetError::ChunkStreamsUnsupported { .. }) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let mut done = 0;
        let get = |i: usize| {
            Ok(Request::GetChunk {
                hash: hashes[i],
                offset: 0,
                length: 0,
            })
        };
        let got = |i: usize, response| match response {
            Response::Chunk { bytes } => {
                take(i as u32, bytes, Instant::now())?;
                done += 1;
                Ok(())
            }
            Response::Error { code, detail } => Err(ClientError::Refused {
                peer: peer.to_string(),
                code,
                detail,
            }),
            _ => Err(unexpected(peer, "get chunk")),
        };
        let sent = chunks::send(stream, hashes.len(), get, got, self.config.request_timeout).await;
        match sent {
            Ok(()) => Ok(done),
            Err(SendError::Stopped(e)) => Err(e),
            Err(SendError::Timeout) => Err(NetError::Timeout { peer }.into()),
            Err(SendError::Stream(e)) => {
                tracing::debug!(%peer, "chunk stream failed ({e}); the rest as requests");
                Ok(done)
            }
        }
    }

    /// The first usable source of a clip: the local store, else a relay
    /// that holds it (connected and logged in).
    async fn chunk_source(&self, sources: &[Source]) -> Result<ChunkSource, ClientError> {
        if sources.iter().any(|s| matches!(s, Source::Local { .. })) {
            return Ok(ChunkSource::Local);
        }
        let mut last = None;
        for s in sources {
            if let Source::Relay { address, .. } = s {
                let (relay, dial) = peer::parse_relay(address)?;
                match self.connect(relay, &dial).await {
                    Ok(()) => return Ok(ChunkSource::Remote(relay)),
                    Err(e) => last = Some(e),
                }
            }
        }
        Err(last.unwrap_or(ClientError::NoRelay))
    }
}
