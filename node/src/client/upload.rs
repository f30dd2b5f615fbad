//! Uploading a clip to one peer (a relay or the recipient's device): the
//! Deposit, then the chunks it is missing on one chunk stream
//! (`/mayfly/chunks/1`, RELAY.md §2.1), or as PutChunk requests to a peer
//! that does not accept chunk streams.

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::PeerId;
use mayfly_protocol::mailbox::{Request, Response};
use mayfly_protocol::{Envelope, Manifest, SigningPublicKey};

use super::ClientError;
use super::inner::{Inner, unexpected};
use super::progress::{Progress, ProgressFn};
use super::spool::Spool;
use crate::net::NetError;
use crate::net::chunks::{self, SendError};

impl Inner {
    /// Deposits `parcel`'s envelope at `peer` (a relay or the recipient's
    /// own device) and uploads the chunks it is missing, reporting progress
    /// under `label`.
    pub async fn upload(
        &self,
        peer: PeerId,
        parcel: &Parcel<'_>,
        label: &str,
    ) -> Result<(), ClientError> {
        let Parcel {
            mailbox,
            envelope,
            manifest,
            progress,
            ..
        } = *parcel;
        let request = Request::Deposit {
            mailbox,
            envelope: envelope.clone(),
            manifest: manifest.clone(),
        };
        let Response::DepositAccepted { missing } = self.request(peer, request).await? else {
            return Err(unexpected(peer, "deposit"));
        };
        let total: u64 = missing
            .iter()
            .map(|&i| manifest.chunk_ciphertext_len(i) as u64)
            .sum();
        progress(Progress::Start {
            label: label.to_owned(),
            total,
        });
        let chunks = Chunks {
            peer,
            parcel: *parcel,
            label,
        };
        if !missing.is_empty() {
            match self.net.open_chunks(peer).await {
                Ok(stream) => {
                    let mut done = 0;
                    let sent = chunks::send(
                        stream,
                        missing.len(),
                        |i| chunks.request(missing[i]),
                        |i, response| {
                            chunks.answered(missing[i], response)?;
                            done += 1;
                            Ok(())
                        },
                        self.config.request_timeout,
                    )
                    .await;
                    match sent {
                        Ok(()) => {}
                        Err(SendError::Stopped(e)) => return Err(e),
                        Err(SendError::Timeout) => return Err(NetError::Timeout { peer }.into()),
                        // A busy receiver may reset a stream unread (RELAY.md
                        // §2.1): what is unanswered goes as requests.
                        Err(SendError::Stream(e)) => {
                            tracing::debug!(%peer, "chunk stream failed ({e}); the rest as requests");
                            self.put_chunks(&chunks, missing[done..].to_vec()).await?;
                        }
                    }
                }
                // No chunk stream to be had: requests, as to an older peer.
                Err(NetError::ChunkStreamsUnsupported { .. } | NetError::ChunkStream { .. }) => {
                    self.put_chunks(&chunks, missing).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        progress(Progress::Finish {
            label: label.to_owned(),
        });
        Ok(())
    }

    /// Uploads `missing` as PutChunk requests, several in flight at once.
    async fn put_chunks(&self, chunks: &Chunks<'_>, missing: Vec<u32>) -> Result<(), ClientError> {
        let peer = chunks.peer;
        let mut queue = missing.into_iter();
        let mut in_flight = FuturesUnordered::new();
        loop {
            while in_flight.len() < self.config.pipeline.max(1) {
                let Some(index) = queue.next() else { break };
                let answer = self.request_with(peer, move || chunks.request(index));
                in_flight.push(async move { (index, answer.await) });
            }
            let Some((index, result)) = in_flight.next().await else {
                return Ok(());
            };
            chunks.answered(index, result?)?;
        }
    }
}

/// What is uploaded to one recipient: its envelope and the clip's chunks.
#[derive(Clone, Copy)]
pub(super) struct Parcel<'a> {
    /// The recipient's identity, whose mailbox the deposit goes to.
    pub mailbox: SigningPublicKey,
    /// The recipient's envelope.
    pub envelope: &'a Envelope,
    /// The clip's manifest.
    pub manifest: &'a Manifest,
    /// The clip's ciphertext chunks.
    pub spool: &'a Spool,
    /// Where progress goes.
    pub progress: &'a ProgressFn,
}

/// The chunks of one upload to `peer`, with progress under `label`.
struct Chunks<'a> {
    peer: PeerId,
    parcel: Parcel<'a>,
    label: &'a str,
}

impl Chunks<'_> {
    /// The PutChunk request for chunk `index`.
    fn request(&self, index: u32) -> Result<Request, ClientError> {
        Ok(Request::PutChunk {
            message_id: self.parcel.manifest.message_id(),
            index,
            bytes: self.parcel.spool.chunk(self.parcel.manifest, index)?,
        })
    }

    /// Accounts for the answer to chunk `index`'s PutChunk.
    fn answered(&self, index: u32, response: Response) -> Result<(), ClientError> {
        match response {
            Response::Ok => {
                (self.parcel.progress)(Progress::Advance {
                    label: self.label.to_owned(),
                    bytes: self.parcel.manifest.chunk_ciphertext_len(index) as u64,
                });
                Ok(())
            }
            Response::Error { code, detail } => Err(ClientError::Refused {
                peer: self.peer.to_string(),
                code,
                detail,
            }),
            _ => Err(unexpected(self.peer, "put chunk")),
        }
    }
}
