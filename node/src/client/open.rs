//! Opening a clip as a stream: chunks are fetched a few ahead, each is
//! checked against its manifest hash on arrival, decrypted, and written out
//! at once, so a player reading the output starts before the last chunk is
//! in.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use libp2p::PeerId;
use mayfly_protocol::mailbox::{Request, Response};
use mayfly_protocol::{ClipHeader, ClipOpener, MessageId, SigningPublicKey};

use super::ingest::ChunkSource;
use super::inner::{Inner, card_relays, unexpected};
use super::peer;
use super::progress::{Progress, ProgressFn};
use super::{Client, ClientError};
use crate::home::Source;
use crate::net::NetError;
use crate::net::chunks::{self, SendError};

/// Longest an open waits to reach the sender's device before it fetches
/// from the relay instead: an unreachable address would otherwise hold up
/// the first byte for a whole dial timeout.
const SENDER_WAIT: Duration = Duration::from_secs(2);

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
    /// Chunks fetched from the sender's own device (RELAY.md §8) rather
    /// than from the local store or a relay.
    pub peer_chunks: usize,
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
        let mut peer_chunks = 0;
        if let ChunkSource::Remote(relay) = source {
            // From the sender's device first, while it is online and has
            // them; whatever it does not serve comes from the relay.
            let sender = match self.config.fetch_from_sender {
                true => self.sender_device(&received.sender).await,
                false => None,
            };
            if let Some(sender) = sender {
                let (n, failed) = self.stream_chunks(sender, &hashes, &mut take).await?;
                if let Some(e) = failed {
                    tracing::debug!(%sender, "chunks from the sender stopped: {e}");
                }
                (done, peer_chunks) = (n, n);
            }
            let (n, failed) = self
                .stream_chunks(relay, &hashes[done..], &mut |i, bytes, at| {
                    take(i + done as u32, bytes, at)
                })
                .await?;
            done += n;
            match failed {
                // No chunk stream to be had, or a reset one: the rest as
                // requests.
                None
                | Some(ClientError::Net(
                    NetError::ChunkStreamsUnsupported { .. } | NetError::ChunkStream { .. },
                ))
                | Some(ClientError::Io { .. }) => {}
                Some(e) => return Err(e),
            }
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
            peer_chunks,
        })
    }

    /// Fetches `hashes` from `peer` (a relay, or the sender's device) on one
    /// chunk stream (`/mayfly/chunks/1`), handing each chunk to `take` as it
    /// arrives (`take` numbers them from 0). Returns how many it handed
    /// over, and why it stopped before the end if it did: the peer refused a
    /// chunk, does not speak the protocol, reset the stream
    /// ([`ClientError::Io`]) or timed out. An error of `take` itself
    /// (writing out, a chunk that fails its check) is the outer error.
    async fn stream_chunks(
        &self,
        peer: PeerId,
        hashes: &[mayfly_protocol::ChunkHash],
        take: &mut impl FnMut(u32, Vec<u8>, Instant) -> Result<(), ClientError>,
    ) -> Result<(usize, Option<ClientError>), ClientError> {
        if hashes.is_empty() {
            return Ok((0, None));
        }
        let stream = match self.net.open_chunks(peer).await {
            Ok(stream) => stream,
            Err(e) => return Ok((0, Some(e.into()))),
        };
        let mut done = 0;
        let mut local_error = None;
        let get = |i: usize| {
            Ok(Request::GetChunk {
                hash: hashes[i],
                offset: 0,
                length: 0,
            })
        };
        let got = |i: usize, response| match response {
            Response::Chunk { bytes } => match take(i as u32, bytes, Instant::now()) {
                Ok(()) => {
                    done += 1;
                    Ok(())
                }
                Err(e) => {
                    local_error = Some(e);
                    Err(None)
                }
            },
            Response::Error { code, detail } => Err(Some(ClientError::Refused {
                peer: peer.to_string(),
                code,
                detail,
            })),
            _ => Err(Some(unexpected(peer, "get chunk"))),
        };
        let sent = chunks::send(stream, hashes.len(), get, got, self.config.request_timeout).await;
        if let Some(e) = local_error {
            return Err(e);
        }
        let failed = match sent {
            Ok(()) => None,
            Err(SendError::Stopped(e)) => e,
            Err(SendError::Timeout) => Some(NetError::Timeout { peer }.into()),
            Err(SendError::Stream(e)) => {
                Some(ClientError::io(format!("chunk stream to {peer}"), e))
            }
        };
        Ok((done, failed))
    }

    /// The sender's device, connected, if it is a contact and online
    /// (located at its relays) and answers within [`SENDER_WAIT`]. Any
    /// failure is `None`: the clip then comes from the relay alone.
    async fn sender_device(&self, sender: &SigningPublicKey) -> Option<PeerId> {
        tokio::time::timeout(SENDER_WAIT, self.reach_sender(sender))
            .await
            .ok()?
    }

    async fn reach_sender(&self, sender: &SigningPublicKey) -> Option<PeerId> {
        let contact = self.home().contact(sender).ok()??;
        let relays = card_relays(&contact.card);
        let (peer, addrs) = self.locate(sender, &relays).await.ok()??;
        for addr in &addrs {
            if self.connect(peer, addr).await.is_ok() {
                return Some(peer);
            }
        }
        None
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
