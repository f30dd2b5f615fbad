//! Requests, responses and notifications of the mailbox protocol, each with
//! exactly one encoding (`spec/RELAY.md` §3).

use crate::codec::{Codec, Reader, Writer, decode_parts_with_tail, decode_with_tail};
use crate::envelope::Envelope;
use crate::error::DecodeError;
use crate::identity::DeviceCertificate;
use crate::kdf::MessageId;
use crate::keys::SigningPublicKey;
use crate::limits::{
    CIPHERTEXT_CHUNK_SIZE, MAX_ACKS, MAX_ADDR_LEN, MAX_ANNOUNCE_ADDRS, MAX_CHUNKS,
    MAX_ERROR_DETAIL_LEN, MAX_LIST_ENTRIES, MAX_MANIFEST_LEN, MAX_PREKEYS_PER_PUBLISH,
};
use crate::live::BroadcastId;
use crate::live::chat::ChatMessage;
use crate::mailbox::login::LoginProof;
use crate::mailbox::replay::{MAX_REPLAY_LIST, Piece, ReplayEntry, read_segment_len};
use crate::manifest::{ChunkHash, Manifest};
use crate::prekey::{Prekey, PrekeyBundle};
use crate::revocation::RevocationRecord;
use crate::time::UnixMillis;

/// What a client asks a relay. One request per stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Ask for a login nonce.
    Challenge,
    /// Prove control of a device of the mailbox's identity.
    Login(LoginProof),
    /// Publish the device's signed prekey and one-time prekeys (logged in).
    PublishPrekeys {
        /// The current signed prekey.
        signed_prekey: Prekey,
        /// Fresh one-time prekeys, at most [`MAX_PREKEYS_PER_PUBLISH`].
        one_time: Vec<Prekey>,
    },
    /// Fetch a prekey bundle for an identity (hands out one one-time prekey).
    FetchBundle {
        /// Whose bundle.
        identity_key: SigningPublicKey,
    },
    /// Deposit an envelope for a mailbox, with the clip's manifest.
    Deposit {
        /// The recipient identity whose mailbox receives the envelope.
        mailbox: SigningPublicKey,
        /// The envelope.
        envelope: Envelope,
        /// The clip's manifest.
        manifest: Manifest,
    },
    /// Upload one ciphertext chunk of a deposited clip.
    PutChunk {
        /// The clip.
        message_id: MessageId,
        /// The chunk's index.
        index: u32,
        /// The ciphertext chunk.
        bytes: Vec<u8>,
    },
    /// Download (part of) a chunk by its hash.
    GetChunk {
        /// The chunk's BLAKE3 hash.
        hash: ChunkHash,
        /// First byte wanted.
        offset: u32,
        /// Bytes wanted (0 means to the end).
        length: u32,
    },
    /// List the mailbox's complete deposits after a sequence number (logged in).
    List {
        /// Return entries with a larger sequence number.
        after: u64,
        /// At most this many, 1 to [`MAX_LIST_ENTRIES`].
        limit: u16,
    },
    /// Fetch a clip's manifest.
    GetManifest {
        /// The clip.
        message_id: MessageId,
    },
    /// Acknowledge entries, which the relay then deletes (logged in).
    Ack {
        /// Sequence numbers, strictly increasing, at most [`MAX_ACKS`].
        seqs: Vec<u64>,
    },
    /// Revoke a clip.
    Revoke(RevocationRecord),
    /// Announce the logged-in device's direct-dial addresses, replacing any
    /// announced before; an empty list withdraws them (logged in).
    Announce {
        /// Binary multiaddrs, each 1 to [`MAX_ADDR_LEN`] bytes, no two
        /// equal, at most [`MAX_ANNOUNCE_ADDRS`], in the owner's order of
        /// preference.
        addrs: Vec<Vec<u8>>,
    },
    /// Ask where an identity's logged-in device can be dialed directly.
    Locate {
        /// Whose device.
        identity_key: SigningPublicKey,
    },
    /// Upload one piece of a sealed live segment for the broadcast's
    /// replay (logged in as the broadcaster; RELAY.md §5.7).
    ReplayPut {
        /// The broadcast.
        broadcast_id: BroadcastId,
        /// The segment's sequence number.
        seq: u64,
        /// The piece.
        piece: Piece,
    },
    /// Download one piece of a replay's segment.
    ReplayGet {
        /// The broadcaster's identity: each identity's replays are its own.
        broadcaster: SigningPublicKey,
        /// The broadcast.
        broadcast_id: BroadcastId,
        /// The segment's sequence number.
        seq: u64,
        /// Which piece.
        index: u16,
    },
    /// List the complete segments of a replay from a sequence number on.
    ReplayList {
        /// The broadcaster's identity.
        broadcaster: SigningPublicKey,
        /// The broadcast.
        broadcast_id: BroadcastId,
        /// The lowest sequence number wanted.
        from: u64,
        /// At most this many, 1 to [`MAX_REPLAY_LIST`].
        limit: u16,
    },
    /// Delete a replay now and refuse it from then on (logged in as the
    /// broadcaster).
    ReplayDelete {
        /// The broadcast.
        broadcast_id: BroadcastId,
    },
    /// A replay viewer's join (a chat message of the broadcast, LIVE.md
    /// §12), kept with the replay for its broadcaster's viewer list.
    ReplayWatched {
        /// The broadcaster's identity.
        broadcaster: SigningPublicKey,
        /// The join, sealed under an epoch key (its broadcast id names the
        /// replay).
        chat: ChatMessage,
    },
    /// Ask the relay to carry the logged-in broadcaster's live broadcast in
    /// its overlay (LIVE.md §8.2): the relay joins the broadcast's topic as
    /// a forwarder without keys.
    LiveForward {
        /// The broadcast.
        broadcast_id: BroadcastId,
    },
    /// The joins kept with a replay (logged in as the broadcaster).
    ReplayViewers {
        /// The broadcast.
        broadcast_id: BroadcastId,
        /// The lowest number wanted.
        from: u32,
        /// At most this many, 1 to [`MAX_REPLAY_LIST`].
        limit: u16,
    },
}

/// One mailbox entry: a complete deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The mailbox's sequence number of this entry.
    pub seq: u64,
    /// The clip, to fetch its manifest.
    pub message_id: MessageId,
    /// When the relay accepted the deposit.
    pub deposited_at: UnixMillis,
    /// The envelope.
    pub envelope: Envelope,
}

/// What applying a revocation did at the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The clip was revoked now; its data is gone.
    Revoked = 1,
    /// It was revoked before.
    AlreadyRevoked = 2,
}

/// Typed error codes. Unknown codes decode as [`ErrorCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request did not decode.
    Malformed,
    /// The request needs a login.
    Unauthenticated,
    /// Logged in, but not allowed (another mailbox, a superseded device).
    Forbidden,
    /// No such mailbox, clip, chunk or bundle.
    NotFound,
    /// Something exceeds a size limit.
    TooLarge,
    /// A storage quota is exhausted.
    QuotaExceeded,
    /// Too many requests; retry later.
    RateLimited,
    /// The clip is revoked.
    Revoked,
    /// The clip is expired or its expiry is out of range.
    Expired,
    /// The request conflicts with stored state (e.g. a chunk that is not the manifest's).
    Conflict,
    /// The relay failed internally.
    Internal,
    /// The relay does not support this request.
    Unsupported,
    /// A code this implementation does not know.
    Other(u16),
}

impl ErrorCode {
    /// The wire value.
    pub fn to_u16(self) -> u16 {
        match self {
            Self::Malformed => 1,
            Self::Unauthenticated => 2,
            Self::Forbidden => 3,
            Self::NotFound => 4,
            Self::TooLarge => 5,
            Self::QuotaExceeded => 6,
            Self::RateLimited => 7,
            Self::Revoked => 8,
            Self::Expired => 9,
            Self::Conflict => 10,
            Self::Internal => 11,
            Self::Unsupported => 12,
            Self::Other(v) => v,
        }
    }

    /// The code for a wire value.
    pub fn from_u16(v: u16) -> Self {
        match v {
            1 => Self::Malformed,
            2 => Self::Unauthenticated,
            3 => Self::Forbidden,
            4 => Self::NotFound,
            5 => Self::TooLarge,
            6 => Self::QuotaExceeded,
            7 => Self::RateLimited,
            8 => Self::Revoked,
            9 => Self::Expired,
            10 => Self::Conflict,
            11 => Self::Internal,
            12 => Self::Unsupported,
            v => Self::Other(v),
        }
    }
}

/// What a relay answers. One response per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The request failed.
    Error {
        /// Why, for programs.
        code: ErrorCode,
        /// Why, for people (at most [`MAX_ERROR_DETAIL_LEN`] bytes).
        detail: String,
    },
    /// A login nonce.
    Challenge {
        /// Fresh random bytes to sign.
        nonce: [u8; 32],
    },
    /// Done.
    Ok,
    /// A prekey bundle.
    Bundle(Box<PrekeyBundle>),
    /// The deposit is recorded; these chunk indices are still missing.
    DepositAccepted {
        /// Missing chunk indices, strictly increasing.
        missing: Vec<u32>,
    },
    /// Chunk bytes.
    Chunk {
        /// The requested range of the chunk.
        bytes: Vec<u8>,
    },
    /// Mailbox entries.
    Entries {
        /// Entries in increasing sequence order.
        entries: Vec<Entry>,
        /// Whether more entries follow the last one.
        more: bool,
    },
    /// A manifest.
    Manifest(Box<Manifest>),
    /// The revocation was applied.
    Revoked(RevokeOutcome),
    /// Where an identity's device can be dialed: the answer to
    /// [`Request::Locate`].
    Located {
        /// The certificate the device logged in with; its device key is the
        /// device's transport (peer) key (boxed: it is the largest field of
        /// any response).
        certificate: Box<DeviceCertificate>,
        /// Its announced binary multiaddrs: 1 to [`MAX_ANNOUNCE_ADDRS`],
        /// each 1 to [`MAX_ADDR_LEN`] bytes, no two equal.
        addrs: Vec<Vec<u8>>,
    },
    /// A piece of a replay's segment: the answer to [`Request::ReplayGet`].
    ReplayPiece(Piece),
    /// Where the relay's forwarder of a broadcast can be dialled: the
    /// answer to [`Request::LiveForward`].
    Forwarding {
        /// Binary multiaddrs, each with the forwarder's `/p2p/` peer id: 1
        /// to [`MAX_ANNOUNCE_ADDRS`], each 1 to [`MAX_ADDR_LEN`] bytes, no
        /// two equal.
        addrs: Vec<Vec<u8>>,
    },
    /// A replay's complete segments: the answer to [`Request::ReplayList`].
    ReplaySegments {
        /// Segments in strictly increasing sequence order.
        entries: Vec<ReplayEntry>,
        /// Whether more segments follow the last one.
        more: bool,
    },
    /// The joins kept with a replay, numbered in the order they came: the
    /// answer to [`Request::ReplayViewers`].
    ReplayWatches {
        /// (number, join), numbers strictly increasing.
        watches: Vec<(u32, ChatMessage)>,
        /// Whether more follow the last one.
        more: bool,
    },
}

impl Response {
    /// An error response; `detail` is cut to [`MAX_ERROR_DETAIL_LEN`] bytes at a
    /// character boundary and stripped of control characters.
    pub fn error(code: ErrorCode, detail: &str) -> Self {
        let mut d: String = detail.chars().filter(|c| !c.is_control()).collect();
        while d.len() > MAX_ERROR_DETAIL_LEN {
            d.pop();
        }
        Self::Error { code, detail: d }
    }
}

/// What a relay pushes to a logged-in mailbox owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notify {
    /// A new complete deposit is in the mailbox.
    NewDeposit {
        /// Its sequence number.
        seq: u64,
    },
}

fn put_manifest(out: &mut Vec<u8>, m: &Manifest) {
    let bytes = m.to_bytes();
    out.put_u32(bytes.len() as u32);
    out.put(&bytes);
}

/// Bytes of a PutChunk before its chunk: type, message id, index, length.
const PUT_CHUNK_HEAD_LEN: usize = 1 + 32 + 4 + 4;

/// Everything of a PutChunk before the chunk bytes themselves.
fn put_chunk_head(out: &mut Vec<u8>, message_id: &MessageId, index: u32, len: usize) {
    out.put_u8(0x06);
    out.put(&message_id.0);
    out.put_u32(index);
    out.put_u32(len as u32);
}

/// A PutChunk's message id and index, after its type byte.
fn read_put_chunk_head(r: &mut Reader<'_>) -> Result<(MessageId, u32), DecodeError> {
    let message_id = MessageId(r.array()?);
    let index = r.u32()?;
    if index >= MAX_CHUNKS {
        return Err(DecodeError::Invalid("chunk index"));
    }
    Ok((message_id, index))
}

/// Bytes of a Chunk response before its chunk: type, length.
const PUT_CHUNK_RESPONSE_HEAD_LEN: usize = 1 + 4;

/// Everything of a Chunk response before the chunk bytes themselves.
fn put_chunk_response_head(out: &mut Vec<u8>, len: usize) {
    out.put_u8(0x85);
    out.put_u32(len as u32);
}

fn read_manifest(r: &mut Reader<'_>) -> Result<Manifest, DecodeError> {
    Manifest::decode(r.bytes_u32("manifest", MAX_MANIFEST_LEN)?)
}

fn strictly_increasing<T: PartialOrd>(v: &[T], field: &'static str) -> Result<(), DecodeError> {
    if v.windows(2).all(|w| w[0] < w[1]) {
        Ok(())
    } else {
        Err(DecodeError::NonCanonical(field))
    }
}

fn put_addrs(out: &mut Vec<u8>, addrs: &[Vec<u8>]) {
    out.put_u16(addrs.len() as u16);
    for a in addrs {
        out.put_u16(a.len() as u16);
        out.put(a);
    }
}

/// Reads `count16<MAX_ANNOUNCE_ADDRS>` of `opaque16<MAX_ADDR_LEN>`, each
/// non-empty and no two equal; with `non_empty`, at least one. Every length
/// is checked before anything is copied.
fn read_addrs(r: &mut Reader<'_>, non_empty: bool) -> Result<Vec<Vec<u8>>, DecodeError> {
    let n = r.count_u16("addresses", MAX_ANNOUNCE_ADDRS)?;
    if non_empty && n == 0 {
        return Err(DecodeError::Invalid("no addresses"));
    }
    let mut addrs: Vec<Vec<u8>> = Vec::with_capacity(n);
    for _ in 0..n {
        let len = usize::from(r.u16()?);
        if len > MAX_ADDR_LEN {
            return Err(DecodeError::TooLong {
                field: "address",
                limit: MAX_ADDR_LEN,
            });
        }
        if len == 0 {
            return Err(DecodeError::Invalid("empty address"));
        }
        let a = r.take(len)?;
        if addrs.iter().any(|b| b == a) {
            return Err(DecodeError::NonCanonical("duplicate address"));
        }
        addrs.push(a.to_vec());
    }
    Ok(addrs)
}

impl Codec for Request {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Challenge => out.put_u8(0x01),
            Self::Login(p) => {
                out.put_u8(0x02);
                p.certificate.encode(out);
                out.put(&p.signature);
            }
            Self::PublishPrekeys {
                signed_prekey,
                one_time,
            } => {
                out.put_u8(0x03);
                signed_prekey.encode(out);
                out.put_u16(one_time.len() as u16);
                for p in one_time {
                    p.encode(out);
                }
            }
            Self::FetchBundle { identity_key } => {
                out.put_u8(0x04);
                out.put(&identity_key.to_bytes());
            }
            Self::Deposit {
                mailbox,
                envelope,
                manifest,
            } => {
                out.put_u8(0x05);
                out.put(&mailbox.to_bytes());
                envelope.encode(out);
                put_manifest(out, manifest);
            }
            Self::PutChunk {
                message_id,
                index,
                bytes,
            } => {
                put_chunk_head(out, message_id, *index, bytes.len());
                out.put(bytes);
            }
            Self::GetChunk {
                hash,
                offset,
                length,
            } => {
                out.put_u8(0x07);
                out.put(hash);
                out.put_u32(*offset);
                out.put_u32(*length);
            }
            Self::List { after, limit } => {
                out.put_u8(0x08);
                out.put_u64(*after);
                out.put_u16(*limit);
            }
            Self::GetManifest { message_id } => {
                out.put_u8(0x09);
                out.put(&message_id.0);
            }
            Self::Ack { seqs } => {
                out.put_u8(0x0a);
                out.put_u16(seqs.len() as u16);
                for s in seqs {
                    out.put_u64(*s);
                }
            }
            Self::Revoke(rec) => {
                out.put_u8(0x0b);
                rec.encode(out);
            }
            Self::Announce { addrs } => {
                out.put_u8(0x0c);
                put_addrs(out, addrs);
            }
            Self::ReplayPut {
                broadcast_id,
                seq,
                piece,
            } => {
                out.put_u8(0x0e);
                out.put(&broadcast_id.0);
                out.put_u64(*seq);
                piece.put(out);
            }
            Self::ReplayGet {
                broadcaster,
                broadcast_id,
                seq,
                index,
            } => {
                out.put_u8(0x0f);
                out.put(&broadcaster.to_bytes());
                out.put(&broadcast_id.0);
                out.put_u64(*seq);
                out.put_u16(*index);
            }
            Self::ReplayList {
                broadcaster,
                broadcast_id,
                from,
                limit,
            } => {
                out.put_u8(0x10);
                out.put(&broadcaster.to_bytes());
                out.put(&broadcast_id.0);
                out.put_u64(*from);
                out.put_u16(*limit);
            }
            Self::ReplayDelete { broadcast_id } => {
                out.put_u8(0x11);
                out.put(&broadcast_id.0);
            }
            Self::ReplayWatched { broadcaster, chat } => {
                out.put_u8(0x12);
                out.put(&broadcaster.to_bytes());
                chat.encode(out);
            }
            Self::LiveForward { broadcast_id } => {
                out.put_u8(0x14);
                out.put(&broadcast_id.0);
            }
            Self::ReplayViewers {
                broadcast_id,
                from,
                limit,
            } => {
                out.put_u8(0x13);
                out.put(&broadcast_id.0);
                out.put_u32(*from);
                out.put_u16(*limit);
            }
            Self::Locate { identity_key } => {
                out.put_u8(0x0d);
                out.put(&identity_key.to_bytes());
            }
        }
    }

    fn encode_split(&self) -> (Vec<u8>, &[u8]) {
        match self {
            Self::PutChunk {
                message_id,
                index,
                bytes,
            } => {
                let mut head = Vec::with_capacity(PUT_CHUNK_HEAD_LEN);
                put_chunk_head(&mut head, message_id, *index, bytes.len());
                (head, bytes)
            }
            _ => (self.to_bytes(), &[]),
        }
    }

    fn decode_owned(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        if bytes.first() != Some(&0x06) {
            return Self::decode(&bytes);
        }
        let read_head = |r: &mut Reader<'_>| {
            r.u8()?;
            read_put_chunk_head(r)
        };
        let ((message_id, index), bytes) =
            decode_with_tail(bytes, read_head, "chunk", CIPHERTEXT_CHUNK_SIZE)?;
        Ok(Self::PutChunk {
            message_id,
            index,
            bytes,
        })
    }

    fn head_len(first: u8) -> Option<usize> {
        (first == 0x06).then_some(PUT_CHUNK_HEAD_LEN)
    }

    fn decode_parts(head: &[u8], tail: Vec<u8>) -> Result<Self, DecodeError> {
        if head.first() != Some(&0x06) {
            return Self::decode_owned([head, &tail].concat());
        }
        let read_head = |r: &mut Reader<'_>| {
            r.u8()?;
            read_put_chunk_head(r)
        };
        let ((message_id, index), bytes) = decode_parts_with_tail(
            head,
            tail,
            PUT_CHUNK_HEAD_LEN,
            read_head,
            "chunk",
            CIPHERTEXT_CHUNK_SIZE,
        )?;
        Ok(Self::PutChunk {
            message_id,
            index,
            bytes,
        })
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0x01 => Self::Challenge,
            0x02 => Self::Login(LoginProof {
                certificate: DeviceCertificate::read(r)?,
                signature: r.array()?,
            }),
            0x03 => {
                let signed_prekey = Prekey::read(r)?;
                let n = r.count_u16("one-time prekeys", MAX_PREKEYS_PER_PUBLISH)?;
                let one_time = (0..n).map(|_| Prekey::read(r)).collect::<Result<_, _>>()?;
                Self::PublishPrekeys {
                    signed_prekey,
                    one_time,
                }
            }
            0x04 => Self::FetchBundle {
                identity_key: SigningPublicKey::read(r)?,
            },
            0x05 => Self::Deposit {
                mailbox: SigningPublicKey::read(r)?,
                envelope: Envelope::read(r)?,
                manifest: read_manifest(r)?,
            },
            0x06 => {
                let (message_id, index) = read_put_chunk_head(r)?;
                let bytes = r.bytes_u32("chunk", CIPHERTEXT_CHUNK_SIZE)?.to_vec();
                Self::PutChunk {
                    message_id,
                    index,
                    bytes,
                }
            }
            0x07 => Self::GetChunk {
                hash: r.array()?,
                offset: r.u32()?,
                length: r.u32()?,
            },
            0x08 => {
                let after = r.u64()?;
                let limit = r.u16()?;
                if limit == 0 || usize::from(limit) > MAX_LIST_ENTRIES {
                    return Err(DecodeError::Invalid("list limit"));
                }
                Self::List { after, limit }
            }
            0x09 => Self::GetManifest {
                message_id: MessageId(r.array()?),
            },
            0x0a => {
                let n = r.count_u16("acks", MAX_ACKS)?;
                if n == 0 {
                    return Err(DecodeError::Invalid("empty ack"));
                }
                let seqs: Vec<u64> = (0..n).map(|_| r.u64()).collect::<Result<_, _>>()?;
                strictly_increasing(&seqs, "ack order")?;
                Self::Ack { seqs }
            }
            0x0b => Self::Revoke(RevocationRecord::read(r)?),
            0x0c => Self::Announce {
                addrs: read_addrs(r, false)?,
            },
            0x0d => Self::Locate {
                identity_key: SigningPublicKey::read(r)?,
            },
            0x0e => Self::ReplayPut {
                broadcast_id: BroadcastId(r.array()?),
                seq: r.u64()?,
                piece: Piece::read(r)?,
            },
            0x0f => {
                let broadcaster = SigningPublicKey::read(r)?;
                let broadcast_id = BroadcastId(r.array()?);
                let seq = r.u64()?;
                let index = r.u16()?;
                if index >= crate::mailbox::replay::MAX_REPLAY_PIECES {
                    return Err(DecodeError::Invalid("piece index"));
                }
                Self::ReplayGet {
                    broadcaster,
                    broadcast_id,
                    seq,
                    index,
                }
            }
            0x10 => {
                let broadcaster = SigningPublicKey::read(r)?;
                let broadcast_id = BroadcastId(r.array()?);
                let from = r.u64()?;
                let limit = r.u16()?;
                if limit == 0 || usize::from(limit) > MAX_REPLAY_LIST {
                    return Err(DecodeError::Invalid("replay list limit"));
                }
                Self::ReplayList {
                    broadcaster,
                    broadcast_id,
                    from,
                    limit,
                }
            }
            0x11 => Self::ReplayDelete {
                broadcast_id: BroadcastId(r.array()?),
            },
            0x12 => Self::ReplayWatched {
                broadcaster: SigningPublicKey::read(r)?,
                chat: ChatMessage::read(r)?,
            },
            0x14 => Self::LiveForward {
                broadcast_id: BroadcastId(r.array()?),
            },
            0x13 => {
                let broadcast_id = BroadcastId(r.array()?);
                let from = r.u32()?;
                let limit = r.u16()?;
                if limit == 0 || usize::from(limit) > MAX_REPLAY_LIST {
                    return Err(DecodeError::Invalid("replay list limit"));
                }
                Self::ReplayViewers {
                    broadcast_id,
                    from,
                    limit,
                }
            }
            _ => return Err(DecodeError::Invalid("request type")),
        })
    }
}

impl Codec for Response {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Error { code, detail } => {
                out.put_u8(0x80);
                out.put_u16(code.to_u16());
                out.put_string_u16(detail);
            }
            Self::Challenge { nonce } => {
                out.put_u8(0x81);
                out.put(nonce);
            }
            Self::Ok => out.put_u8(0x82),
            Self::Bundle(b) => {
                out.put_u8(0x83);
                b.encode(out);
            }
            Self::DepositAccepted { missing } => {
                out.put_u8(0x84);
                out.put_u16(missing.len() as u16);
                for i in missing {
                    out.put_u32(*i);
                }
            }
            Self::Chunk { bytes } => {
                put_chunk_response_head(out, bytes.len());
                out.put(bytes);
            }
            Self::Entries { entries, more } => {
                out.put_u8(0x86);
                out.put_u16(entries.len() as u16);
                for e in entries {
                    out.put_u64(e.seq);
                    out.put(&e.message_id.0);
                    out.put_u64(e.deposited_at.0);
                    e.envelope.encode(out);
                }
                out.put_u8(u8::from(*more));
            }
            Self::Manifest(m) => {
                out.put_u8(0x87);
                put_manifest(out, m);
            }
            Self::Revoked(o) => {
                out.put_u8(0x88);
                out.put_u8(*o as u8);
            }
            Self::ReplayPiece(piece) => {
                out.put_u8(0x8a);
                piece.put(out);
            }
            Self::Forwarding { addrs } => {
                out.put_u8(0x8d);
                put_addrs(out, addrs);
            }
            Self::ReplayWatches { watches, more } => {
                out.put_u8(0x8c);
                out.put_u16(watches.len() as u16);
                for (n, chat) in watches {
                    out.put_u32(*n);
                    chat.encode(out);
                }
                out.put_u8(u8::from(*more));
            }
            Self::ReplaySegments { entries, more } => {
                out.put_u8(0x8b);
                out.put_u16(entries.len() as u16);
                for e in entries {
                    out.put_u64(e.seq);
                    out.put_u32(e.segment_len);
                }
                out.put_u8(u8::from(*more));
            }
            Self::Located { certificate, addrs } => {
                out.put_u8(0x89);
                certificate.encode(out);
                put_addrs(out, addrs);
            }
        }
    }

    fn encode_split(&self) -> (Vec<u8>, &[u8]) {
        match self {
            Self::Chunk { bytes } => {
                let mut head = Vec::with_capacity(PUT_CHUNK_RESPONSE_HEAD_LEN);
                put_chunk_response_head(&mut head, bytes.len());
                (head, bytes)
            }
            _ => (self.to_bytes(), &[]),
        }
    }

    fn decode_owned(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        if bytes.first() != Some(&0x85) {
            return Self::decode(&bytes);
        }
        let read_head = |r: &mut Reader<'_>| r.u8().map(drop);
        let ((), bytes) = decode_with_tail(bytes, read_head, "chunk", CIPHERTEXT_CHUNK_SIZE)?;
        Ok(Self::Chunk { bytes })
    }

    fn head_len(first: u8) -> Option<usize> {
        (first == 0x85).then_some(PUT_CHUNK_RESPONSE_HEAD_LEN)
    }

    fn decode_parts(head: &[u8], tail: Vec<u8>) -> Result<Self, DecodeError> {
        if head.first() != Some(&0x85) {
            return Self::decode_owned([head, &tail].concat());
        }
        let read_head = |r: &mut Reader<'_>| r.u8().map(drop);
        let ((), bytes) = decode_parts_with_tail(
            head,
            tail,
            PUT_CHUNK_RESPONSE_HEAD_LEN,
            read_head,
            "chunk",
            CIPHERTEXT_CHUNK_SIZE,
        )?;
        Ok(Self::Chunk { bytes })
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0x80 => {
                let code = ErrorCode::from_u16(r.u16()?);
                if code == ErrorCode::Other(0) {
                    return Err(DecodeError::Invalid("error code 0"));
                }
                Self::Error {
                    code,
                    detail: r.string_u16("error detail", MAX_ERROR_DETAIL_LEN)?,
                }
            }
            0x81 => Self::Challenge { nonce: r.array()? },
            0x82 => Self::Ok,
            0x83 => Self::Bundle(Box::new(PrekeyBundle::read(r)?)),
            0x84 => {
                let n = r.count_u16("missing chunks", MAX_CHUNKS as usize)?;
                let missing: Vec<u32> = (0..n).map(|_| r.u32()).collect::<Result<_, _>>()?;
                strictly_increasing(&missing, "missing chunk order")?;
                if missing.last().is_some_and(|&i| i >= MAX_CHUNKS) {
                    return Err(DecodeError::Invalid("chunk index"));
                }
                Self::DepositAccepted { missing }
            }
            0x85 => Self::Chunk {
                bytes: r.bytes_u32("chunk", CIPHERTEXT_CHUNK_SIZE)?.to_vec(),
            },
            0x86 => {
                let n = r.count_u16("entries", MAX_LIST_ENTRIES)?;
                let entries: Vec<Entry> = (0..n)
                    .map(|_| {
                        Ok(Entry {
                            seq: r.u64()?,
                            message_id: MessageId(r.array()?),
                            deposited_at: UnixMillis(r.u64()?),
                            envelope: Envelope::read(r)?,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?;
                let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
                strictly_increasing(&seqs, "entry order")?;
                Self::Entries {
                    entries,
                    more: r.bool("more flag")?,
                }
            }
            0x87 => Self::Manifest(Box::new(read_manifest(r)?)),
            0x88 => Self::Revoked(match r.u8()? {
                1 => RevokeOutcome::Revoked,
                2 => RevokeOutcome::AlreadyRevoked,
                _ => return Err(DecodeError::Invalid("revoke outcome")),
            }),
            0x89 => Self::Located {
                certificate: Box::new(DeviceCertificate::read(r)?),
                addrs: read_addrs(r, true)?,
            },
            0x8a => Self::ReplayPiece(Piece::read(r)?),
            0x8d => Self::Forwarding {
                addrs: read_addrs(r, true)?,
            },
            0x8c => {
                let n = r.count_u16("replay watches", MAX_REPLAY_LIST)?;
                let watches: Vec<(u32, ChatMessage)> = (0..n)
                    .map(|_| Ok((r.u32()?, ChatMessage::read(r)?)))
                    .collect::<Result<_, DecodeError>>()?;
                let numbers: Vec<u32> = watches.iter().map(|w| w.0).collect();
                strictly_increasing(&numbers, "replay watch order")?;
                Self::ReplayWatches {
                    watches,
                    more: r.bool("more flag")?,
                }
            }
            0x8b => {
                let n = r.count_u16("replay segments", MAX_REPLAY_LIST)?;
                let entries: Vec<ReplayEntry> = (0..n)
                    .map(|_| {
                        Ok(ReplayEntry {
                            seq: r.u64()?,
                            segment_len: read_segment_len(r)?,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?;
                let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
                strictly_increasing(&seqs, "replay segment order")?;
                Self::ReplaySegments {
                    entries,
                    more: r.bool("more flag")?,
                }
            }
            _ => return Err(DecodeError::Invalid("response type")),
        })
    }
}

impl Codec for Notify {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::NewDeposit { seq } => {
                out.put_u8(0x90);
                out.put_u64(*seq);
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0x90 => Ok(Self::NewDeposit { seq: r.u64()? }),
            _ => Err(DecodeError::Invalid("notification type")),
        }
    }
}
