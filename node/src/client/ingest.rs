//! Taking in a deposit: fetch its manifest, open its envelope, check both,
//! and record the clip (or act on a control message).

use libp2p::PeerId;
use mayfly_protocol::mailbox::{Entry, Request, Response};
use mayfly_protocol::{
    CONTROL_MEDIA_TYPE, ClipOpener, Codec, Control, Envelope, EnvelopeContents, Manifest,
};

use super::inner::{Inner, unexpected};
use super::{ClientError, Event};
use crate::home::{Received, Source};

/// The cursor name of the local store (direct deliveries).
pub const LOCAL_CURSOR: &str = "local";

/// Largest control message content taken in.
const MAX_CONTROL_LEN: u64 = 16 * 1024;

/// Where a clip's chunks can be fetched.
#[derive(Debug, Clone, Copy)]
pub(super) enum ChunkSource {
    /// From a relay (or a peer) over the network.
    Remote(PeerId),
    /// From the local store.
    Local,
}

impl Inner {
    pub async fn ingest_relay_entry(
        &self,
        relay: PeerId,
        address: &str,
        entry: Entry,
    ) -> Result<(), ClientError> {
        let request = Request::GetManifest {
            message_id: entry.message_id,
        };
        let Response::Manifest(manifest) = self.request(relay, request).await? else {
            return Err(unexpected(relay, "get manifest"));
        };
        let source = Source::Relay {
            address: address.to_owned(),
            seq: entry.seq,
        };
        let done = self
            .take_in(
                &entry.envelope,
                *manifest,
                source,
                ChunkSource::Remote(relay),
            )
            .await?;
        if done {
            // A control message is consumed: the relay may drop it.
            let _ = self
                .request(
                    relay,
                    Request::Ack {
                        seqs: vec![entry.seq],
                    },
                )
                .await;
        }
        Ok(())
    }

    pub async fn ingest_local_entry(&self, entry: Entry) -> Result<(), ClientError> {
        let manifest = self
            .local
            .get_manifest(&entry.message_id, self.clock.now())?;
        let done = self
            .take_in(
                &entry.envelope,
                manifest,
                Source::Local { seq: entry.seq },
                ChunkSource::Local,
            )
            .await?;
        if done {
            self.local.ack(&self.identity, &[entry.seq])?;
        }
        Ok(())
    }

    /// Opens `envelope` for `manifest` and records the clip. Returns true for
    /// a control message, which is consumed here.
    async fn take_in(
        &self,
        envelope: &Envelope,
        manifest: Manifest,
        source: Source,
        chunks: ChunkSource,
    ) -> Result<bool, ClientError> {
        let id = manifest.message_id();
        if let Some(known) = self.home().received(&id)? {
            // The same clip from a second source: remember where it is.
            let mut r = known;
            if !r.sources.contains(&source) {
                r.sources.push(source);
                let key = self.home().received_key(&id)?;
                if let Some(key) = key {
                    self.home().put_received(&r, &key)?;
                }
            }
            return Ok(false);
        }
        let contents = self.open_envelope(envelope)?;
        if contents.message_id != id {
            return Err(mayfly_protocol::Error::Decrypt.into());
        }
        let now = self.now();
        let opener = contents.open_manifest(manifest.clone(), now)?;
        let header = opener.header().clone();
        let sender = contents.sender.identity_key();
        if self.home().update_certificate(&contents.sender)? {
            self.emit(Event::ContactUpdated { identity: sender });
        }
        if header.media_type == CONTROL_MEDIA_TYPE {
            let control = self.read_control(opener, chunks).await?;
            self.on_control(&contents, control).await?;
            return Ok(true);
        }
        let direct = matches!(source, Source::Local { .. });
        let received = Received {
            message_id: id,
            sender,
            sender_certificate: contents.sender.clone(),
            header: header.clone(),
            manifest,
            sources: vec![source],
            received_at: now,
            opened: false,
        };
        self.home().put_received(&received, &contents.content_key)?;
        let sender_name = self.home().contact(&sender)?.map(|c| c.name);
        self.emit(Event::Received {
            message_id: id,
            sender,
            sender_name,
            kind: header.kind,
            direct,
        });
        Ok(false)
    }

    /// Opens an envelope with the prekey it names (a one-time prekey's
    /// secret is erased as it is taken).
    fn open_envelope(&self, envelope: &Envelope) -> Result<EnvelopeContents, ClientError> {
        let prekey = envelope.prekey();
        let secret = self
            .home()
            .with_prekeys(|p, _| p.take_secret(&prekey))?
            .ok_or(mayfly_protocol::Error::Decrypt)?;
        Ok(envelope.open(&self.identity, &secret)?)
    }

    /// Reads and decodes a control message's content.
    async fn read_control(
        &self,
        mut opener: ClipOpener,
        chunks: ChunkSource,
    ) -> Result<Control, ClientError> {
        let header = opener.header().clone();
        if header.content_len > MAX_CONTROL_LEN {
            return Err(mayfly_protocol::Error::InvalidParams("control message too long").into());
        }
        let hashes = opener.manifest().chunk_hashes().to_vec();
        let mut content = Vec::new();
        for hash in hashes {
            let bytes = self.fetch_chunk(chunks, &hash).await?;
            content.extend_from_slice(opener.open_next(&bytes)?);
        }
        opener.finish()?;
        Ok(Control::decode(&content).map_err(mayfly_protocol::Error::from)?)
    }

    /// One whole ciphertext chunk from `source` (not yet checked).
    pub async fn fetch_chunk(
        &self,
        source: ChunkSource,
        hash: &mayfly_protocol::ChunkHash,
    ) -> Result<Vec<u8>, ClientError> {
        match source {
            ChunkSource::Local => Ok(self.local.get_chunk(hash, 0, 0)?),
            ChunkSource::Remote(peer) => {
                let request = Request::GetChunk {
                    hash: *hash,
                    offset: 0,
                    length: 0,
                };
                match self.request(peer, request).await? {
                    Response::Chunk { bytes } => Ok(bytes),
                    _ => Err(unexpected(peer, "get chunk")),
                }
            }
        }
    }

    /// Acts on a control message from the envelope's sender.
    async fn on_control(
        &self,
        contents: &EnvelopeContents,
        control: Control,
    ) -> Result<(), ClientError> {
        let sender = contents.sender.identity_key();
        let now = self.now();
        match control {
            Control::InviteReply { token, card } => {
                if card.identity_key() != sender {
                    return Err(ClientError::Invite(
                        "a reply whose card is not its sender's".into(),
                    ));
                }
                if !self.home().take_invite_token(&token, now)? {
                    return Err(ClientError::Invite(
                        "a reply to an unknown or used invite".into(),
                    ));
                }
                let contact = self.home().add_contact(&card, now)?;
                self.emit(Event::ContactAdded {
                    identity: sender,
                    name: contact.name,
                });
            }
            Control::Revoked(record) => {
                self.apply_revocation(&record).await?;
            }
            Control::CardUpdate(card)
                if card.identity_key() == sender && self.home().contact(&sender)?.is_some() =>
            {
                self.home().add_contact(&card, now)?;
                self.emit(Event::ContactUpdated { identity: sender });
            }
            // Live keys from contacts only: a stranger's "went live" is noise.
            Control::LiveKey(grant) => {
                // The home's guard must not live across the next call.
                let contact = self.home().contact(&sender)?;
                if let Some(contact) = contact {
                    self.home().store_live_key(&sender, &grant, now)?;
                    self.emit(Event::LiveKey {
                        broadcaster: sender,
                        broadcaster_name: contact.name,
                        grant,
                    });
                }
            }
            // Only the broadcaster of a broadcast held here revokes it.
            Control::LiveRevoked(id) => {
                let held = self.home().broadcasts()?.into_iter().find(|b| b.id == id);
                if held.is_some_and(|b| b.broadcaster == sender)
                    && self.home().erase_broadcast(&id)?
                {
                    self.emit(Event::LiveRevoked {
                        broadcaster: sender,
                        broadcast_id: id,
                    });
                }
            }
            Control::Follow | Control::Unfollow => {
                // Follows from contacts only (LIVE.md §3.4).
                let contact = self.home().contact(&sender)?;
                if let Some(contact) = contact {
                    let following = matches!(control, Control::Follow);
                    let changed = if following {
                        self.home().add_follower(&sender, now)?
                    } else {
                        self.home().remove_follower(&sender)?
                    };
                    if changed {
                        self.emit(Event::Follower {
                            identity: sender,
                            name: contact.name,
                            following,
                        });
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}
