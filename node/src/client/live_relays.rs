//! What live broadcasts ask of relays: the replay (RELAY.md §5.7, LIVE.md
//! §13) — the broadcaster keeps each sealed segment at its own relays, a
//! viewer fetches them from the broadcaster's relays as its contact card
//! names them and leaves its join there, and the broadcaster deletes the
//! replay when it revokes the broadcast — and forwarding (RELAY.md §5.8,
//! LIVE.md §8.2), a relay carrying the broadcast in its overlay.

use libp2p::{Multiaddr, PeerId};
use mayfly_protocol::SigningPublicKey;
use mayfly_protocol::live::BroadcastId;
use mayfly_protocol::live::chat::ChatMessage;
use mayfly_protocol::mailbox::replay::{MAX_REPLAY_LIST, Piece, ReplayEntry, pieces};
use mayfly_protocol::mailbox::{Request, Response};

use super::inner::{Inner, card_relays, unexpected};
use super::{Client, ClientError};

/// A relay a live broadcast uses: one of this device's, or a broadcaster's.
#[derive(Debug, Clone)]
pub struct RelayRef {
    /// Its address, as configured or as a contact card names it.
    pub address: String,
    peer: PeerId,
    dial: Multiaddr,
}

impl Client {
    /// This device's relays, where its broadcasts' replays are kept and
    /// which carry its broadcasts in their overlays.
    pub fn own_relays(&self) -> Result<Vec<RelayRef>, ClientError> {
        Ok(to_relays(self.inner.own_relays()?))
    }

    /// The relays of `broadcaster` (a contact), where its replays are.
    pub fn broadcaster_relays(
        &self,
        broadcaster: &SigningPublicKey,
    ) -> Result<Vec<RelayRef>, ClientError> {
        let contact = self.inner.home().contact(broadcaster)?.ok_or_else(|| {
            ClientError::from(crate::home::HomeError::UnknownContact(hex::encode(
                broadcaster.to_bytes(),
            )))
        })?;
        Ok(to_relays(card_relays(&contact.card)))
    }

    /// Uploads sealed segment `seq` (its bytes as published) to `relay`'s
    /// replay of broadcast `id`, piece by piece, logged in as this device.
    pub async fn replay_put(
        &self,
        relay: &RelayRef,
        id: &BroadcastId,
        seq: u64,
        segment: &[u8],
    ) -> Result<(), ClientError> {
        let inner = &self.inner;
        inner.connect(relay.peer, &relay.dial).await?;
        inner.login(relay.peer).await?;
        for (index, bytes) in pieces(segment).enumerate() {
            let request = Request::ReplayPut {
                broadcast_id: *id,
                seq,
                piece: Piece {
                    segment_len: segment.len() as u32,
                    index: index as u16,
                    bytes: bytes.to_vec(),
                },
            };
            expect_ok(inner, relay.peer, request, "replay put").await?;
        }
        Ok(())
    }

    /// Deletes broadcast `id`'s replay at `relay` (logged in as this device).
    pub async fn replay_delete(
        &self,
        relay: &RelayRef,
        id: &BroadcastId,
    ) -> Result<(), ClientError> {
        let inner = &self.inner;
        inner.connect(relay.peer, &relay.dial).await?;
        inner.login(relay.peer).await?;
        let request = Request::ReplayDelete { broadcast_id: *id };
        expect_ok(inner, relay.peer, request, "replay delete").await
    }

    /// Up to [`MAX_REPLAY_LIST`] complete segments of `broadcaster`'s
    /// replay of `id` at `relay`, from `from` on, and whether more follow.
    pub async fn replay_list(
        &self,
        relay: &RelayRef,
        broadcaster: &SigningPublicKey,
        id: &BroadcastId,
        from: u64,
    ) -> Result<(Vec<ReplayEntry>, bool), ClientError> {
        self.inner.connect(relay.peer, &relay.dial).await?;
        let request = Request::ReplayList {
            broadcaster: *broadcaster,
            broadcast_id: *id,
            from,
            limit: MAX_REPLAY_LIST as u16,
        };
        match self.inner.request(relay.peer, request).await? {
            Response::ReplaySegments { entries, more } => Ok((entries, more)),
            _ => Err(unexpected(relay.peer, "replay list")),
        }
    }

    /// Segment `entry` of `broadcaster`'s replay of `id` at `relay`,
    /// fetched piece by piece. Its bytes are the relay's word only: the
    /// caller checks the segment as it would one off the overlay.
    pub async fn replay_segment(
        &self,
        relay: &RelayRef,
        broadcaster: &SigningPublicKey,
        id: &BroadcastId,
        entry: &ReplayEntry,
    ) -> Result<Vec<u8>, ClientError> {
        self.inner.connect(relay.peer, &relay.dial).await?;
        let mut out = Vec::with_capacity(entry.segment_len as usize);
        let mut index = 0u16;
        while out.len() < entry.segment_len as usize {
            let request = Request::ReplayGet {
                broadcaster: *broadcaster,
                broadcast_id: *id,
                seq: entry.seq,
                index,
            };
            match self.inner.request(relay.peer, request).await? {
                Response::ReplayPiece(p)
                    if p.index == index && p.segment_len == entry.segment_len =>
                {
                    out.extend_from_slice(&p.bytes);
                }
                _ => return Err(unexpected(relay.peer, "replay get")),
            }
            index += 1;
        }
        Ok(out)
    }
}

impl Client {
    /// Leaves `chat`, a join sealed under an epoch key of the broadcast it
    /// names, with `broadcaster`'s replay at `relay`, for the broadcaster's
    /// viewer list (no login: the relay learns no more than the fetches
    /// told it).
    pub async fn replay_watched(
        &self,
        relay: &RelayRef,
        broadcaster: &SigningPublicKey,
        chat: ChatMessage,
    ) -> Result<(), ClientError> {
        self.inner.connect(relay.peer, &relay.dial).await?;
        let request = Request::ReplayWatched {
            broadcaster: *broadcaster,
            chat,
        };
        expect_ok(&self.inner, relay.peer, request, "replay watched").await
    }

    /// Up to [`MAX_REPLAY_LIST`] joins kept with this device's replay of
    /// `id` at `relay`, from number `from` on, and whether more follow.
    pub async fn replay_viewers(
        &self,
        relay: &RelayRef,
        id: &BroadcastId,
        from: u32,
    ) -> Result<(Vec<(u32, ChatMessage)>, bool), ClientError> {
        let inner = &self.inner;
        inner.connect(relay.peer, &relay.dial).await?;
        inner.login(relay.peer).await?;
        let request = Request::ReplayViewers {
            broadcast_id: *id,
            from,
            limit: MAX_REPLAY_LIST as u16,
        };
        match inner.request(relay.peer, request).await? {
            Response::ReplayWatches { watches, more } => Ok((watches, more)),
            _ => Err(unexpected(relay.peer, "replay viewers")),
        }
    }
}

impl Client {
    /// Asks `relay` (one of ours) to carry this device's live broadcast `id`
    /// in its overlay (LIVE.md §8.2); returns where its forwarder can be
    /// dialled.
    pub async fn live_forward(
        &self,
        relay: &RelayRef,
        id: &BroadcastId,
    ) -> Result<Vec<Multiaddr>, ClientError> {
        let inner = &self.inner;
        inner.connect(relay.peer, &relay.dial).await?;
        inner.login(relay.peer).await?;
        let request = Request::LiveForward { broadcast_id: *id };
        match inner.request(relay.peer, request).await? {
            Response::Forwarding { addrs } => Ok(addrs
                .into_iter()
                .filter_map(|a| Multiaddr::try_from(a).ok())
                .collect()),
            _ => Err(unexpected(relay.peer, "live forward")),
        }
    }
}

fn to_relays(relays: Vec<(String, PeerId, Multiaddr)>) -> Vec<RelayRef> {
    relays
        .into_iter()
        .map(|(address, peer, dial)| RelayRef {
            address,
            peer,
            dial,
        })
        .collect()
}

async fn expect_ok(
    inner: &Inner,
    peer: PeerId,
    request: Request,
    what: &'static str,
) -> Result<(), ClientError> {
    match inner.request(peer, request).await? {
        Response::Ok => Ok(()),
        _ => Err(unexpected(peer, what)),
    }
}
