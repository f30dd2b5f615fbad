//! Control messages and invites (`spec/CLIENT-MESSAGES.md`).
//!
//! A control message is what one client tells another outside a video clip:
//! that it accepts an invite, that a clip was revoked, that its card
//! changed. It travels as the content of an ordinary sealed clip whose
//! media type is [`CONTROL_MEDIA_TYPE`], so relays cannot tell it from a
//! (very short) video message, and it inherits the clip's sealing, sender
//! signature and expiry.
//!
//! An [`Invite`] is a contact card with a one-time token, in a text form a
//! person can paste into an app that has never seen Mayfly before.

use data_encoding::BASE32_NOPAD as BASE32;

use crate::card::ContactCard;
use crate::codec::{Codec, Reader, Writer, read_header, tag, write_header};
use crate::error::DecodeError;
use crate::limits::{MAX_LIVE_PEERS, MAX_RELAY_ADDR_LEN};
use crate::live::{BroadcastId, EpochKey};
use crate::revocation::RevocationRecord;
use crate::time::UnixMillis;

/// The media type of clips that carry a [`Control`] message.
pub const CONTROL_MEDIA_TYPE: &str = "application/vnd.mayfly.control";

/// Prefix of an invite's text form.
pub const INVITE_TEXT_PREFIX: &str = "mfinvite1";

/// Length of an invite token.
pub const INVITE_TOKEN_LEN: usize = 16;

/// A message from one client to another, carried as clip content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// The sender accepts the recipient's invite: the invite's token and the
    /// sender's card. The card's identity MUST be the envelope's sender.
    InviteReply {
        /// The token from the invite.
        token: [u8; INVITE_TOKEN_LEN],
        /// The invitee's card.
        card: ContactCard,
    },
    /// A clip the recipient may hold was revoked by its sender.
    Revoked(RevocationRecord),
    /// The sender's card changed (a new device, new relays). Its identity
    /// MUST be the envelope's sender.
    CardUpdate(ContactCard),
    /// A key of the sender's live broadcast, for the recipient to watch it
    /// (LIVE.md §3.3). Epoch 0 is the broadcast's start notification.
    LiveKey(LiveKeyGrant),
    /// The sender asks to follow the recipient: to be told when the
    /// recipient goes live (LIVE.md §3.4). Only a contact's request counts.
    Follow,
    /// The sender no longer follows the recipient (LIVE.md §3.4).
    Unfollow,
    /// The sender revoked its live broadcast: the recipient erases the
    /// broadcast's epoch keys (LIVE.md §13.3). Only the broadcaster of a
    /// broadcast the recipient holds keys for can revoke it.
    LiveRevoked(BroadcastId),
}

/// One epoch key of a live broadcast, handed to a viewer in an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveKeyGrant {
    /// The broadcast.
    pub broadcast_id: BroadcastId,
    /// The epoch the key seals.
    pub epoch: u32,
    /// The epoch key.
    pub key: EpochKey,
    /// When the broadcast started.
    pub started_at: UnixMillis,
    /// Whether relays keep its segments for a replay (up to
    /// `MAX_LIVE_TTL_MS` after each segment).
    pub replay: bool,
    /// Where the viewer joins the broadcast's overlay: multiaddrs of
    /// peers carrying it (the broadcaster's, or a relay's), at most
    /// [`MAX_LIVE_PEERS`], each non-empty and at most
    /// [`MAX_RELAY_ADDR_LEN`] bytes.
    pub peers: Vec<String>,
}

impl LiveKeyGrant {
    /// Checks the limits on `peers`.
    pub fn check(&self) -> Result<(), crate::Error> {
        if self.peers.len() > MAX_LIVE_PEERS {
            return Err(crate::Error::InvalidParams("too many live peers"));
        }
        if self.peers.iter().any(|p| {
            p.is_empty() || p.len() > MAX_RELAY_ADDR_LEN || p.chars().any(char::is_control)
        }) {
            return Err(crate::Error::InvalidParams("bad live peer address"));
        }
        Ok(())
    }
}

mod kind {
    pub const INVITE_REPLY: u8 = 1;
    pub const REVOKED: u8 = 2;
    pub const CARD_UPDATE: u8 = 3;
    pub const LIVE_KEY: u8 = 4;
    pub const FOLLOW: u8 = 5;
    pub const UNFOLLOW: u8 = 6;
    pub const LIVE_REVOKED: u8 = 7;
}

impl Codec for Control {
    fn encode(&self, out: &mut Vec<u8>) {
        write_header(out, tag::CONTROL);
        match self {
            Self::InviteReply { token, card } => {
                out.put_u8(kind::INVITE_REPLY);
                out.put(token);
                card.encode(out);
            }
            Self::Revoked(record) => {
                out.put_u8(kind::REVOKED);
                record.encode(out);
            }
            Self::CardUpdate(card) => {
                out.put_u8(kind::CARD_UPDATE);
                card.encode(out);
            }
            Self::LiveKey(g) => {
                out.put_u8(kind::LIVE_KEY);
                out.put(&g.broadcast_id.0);
                out.put_u32(g.epoch);
                out.put(g.key.as_bytes());
                out.put_u64(g.started_at.0);
                out.put_u8(u8::from(g.replay));
                out.put_u8(g.peers.len() as u8);
                for p in &g.peers {
                    out.put_string_u16(p);
                }
            }
            Self::Follow => out.put_u8(kind::FOLLOW),
            Self::Unfollow => out.put_u8(kind::UNFOLLOW),
            Self::LiveRevoked(id) => {
                out.put_u8(kind::LIVE_REVOKED);
                out.put(&id.0);
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_header(r, tag::CONTROL)?;
        match r.u8()? {
            kind::INVITE_REPLY => Ok(Self::InviteReply {
                token: r.array()?,
                card: ContactCard::read(r)?,
            }),
            kind::REVOKED => Ok(Self::Revoked(RevocationRecord::read(r)?)),
            kind::CARD_UPDATE => Ok(Self::CardUpdate(ContactCard::read(r)?)),
            kind::LIVE_KEY => Ok(Self::LiveKey(LiveKeyGrant {
                broadcast_id: BroadcastId(r.array()?),
                epoch: r.u32()?,
                key: EpochKey::from_bytes(r.array()?),
                started_at: UnixMillis(r.u64()?),
                replay: r.bool("replay")?,
                peers: read_live_peers(r)?,
            })),
            kind::FOLLOW => Ok(Self::Follow),
            kind::UNFOLLOW => Ok(Self::Unfollow),
            kind::LIVE_REVOKED => Ok(Self::LiveRevoked(BroadcastId(r.array()?))),
            _ => Err(DecodeError::Invalid("control message kind")),
        }
    }
}

/// The `peers` of a [`LiveKeyGrant`]: `count (u8) ‖ string16 × count`.
fn read_live_peers(r: &mut Reader<'_>) -> Result<Vec<String>, DecodeError> {
    let n = usize::from(r.u8()?);
    if n > MAX_LIVE_PEERS {
        return Err(DecodeError::TooLong {
            field: "live peer count",
            limit: MAX_LIVE_PEERS,
        });
    }
    (0..n)
        .map(|_| {
            let s = r.string_u16("live peer address", MAX_RELAY_ADDR_LEN)?;
            if s.is_empty() {
                return Err(DecodeError::Invalid("empty live peer address"));
            }
            Ok(s)
        })
        .collect()
}

/// An invite: the inviter's card and a one-time token the inviter keeps.
/// Whoever accepts it adds the card and answers with
/// [`Control::InviteReply`] carrying the token and their own card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The one-time token.
    pub token: [u8; INVITE_TOKEN_LEN],
    /// The inviter's card.
    pub card: ContactCard,
}

impl Codec for Invite {
    fn encode(&self, out: &mut Vec<u8>) {
        write_header(out, tag::INVITE);
        out.put(&self.token);
        self.card.encode(out);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_header(r, tag::INVITE)?;
        Ok(Self {
            token: r.array()?,
            card: ContactCard::read(r)?,
        })
    }
}

impl Invite {
    /// The text form: `mfinvite1` and lowercase unpadded base32 of the
    /// encoding followed by the first 4 bytes of its BLAKE3 hash.
    pub fn to_text(&self) -> String {
        let mut bytes = self.to_bytes();
        let check = blake3::hash(&bytes);
        bytes.extend_from_slice(&check.as_bytes()[..4]);
        let mut s = String::from(INVITE_TEXT_PREFIX);
        s.push_str(&BASE32.encode(&bytes).to_ascii_lowercase());
        s
    }

    /// Parses the text form; surrounding whitespace is ignored, the rest must
    /// be exactly what [`Invite::to_text`] writes.
    pub fn from_text(text: &str) -> Result<Self, DecodeError> {
        let body = text
            .trim()
            .strip_prefix(INVITE_TEXT_PREFIX)
            .ok_or(DecodeError::BadPrefix(INVITE_TEXT_PREFIX))?;
        let max_bytes = 2 + INVITE_TOKEN_LEN + ContactCard::MAX_LEN + 4;
        if body.len() > BASE32.encode_len(max_bytes) {
            return Err(DecodeError::TooLong {
                field: "invite text",
                limit: BASE32.encode_len(max_bytes),
            });
        }
        if body.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(DecodeError::NonCanonical("invite text case"));
        }
        let bytes = BASE32
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| DecodeError::Invalid("invite text base32"))?;
        if bytes.len() < 4 {
            return Err(DecodeError::Truncated);
        }
        let (invite, check) = bytes.split_at(bytes.len() - 4);
        if blake3::hash(invite).as_bytes()[..4] != *check {
            return Err(DecodeError::BadChecksum);
        }
        Self::decode(invite)
    }
}
