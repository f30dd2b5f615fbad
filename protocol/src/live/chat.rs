//! Live chat: joins, leaves and comments that viewers publish to a
//! broadcast's overlay, sealed under its epoch key (LIVE.md §12).
//!
//! A [`ChatMessage`] is what travels: the broadcast, the epoch whose key
//! sealed it, a random salt and the ciphertext. Only holders of the epoch
//! key can read or check it, so a peer that holds no key forwards none.
//! Inside, a [`Chat`] says what happened (a viewer joined, left or
//! commented), when, under which per-watch token, and, unless the viewer
//! watches anonymously, which device signed it.
//!
//! Sans-IO: [`ChatGate`] judges incoming messages at `now` (layout, key,
//! signature, freshness, once each, a rate per sender and in all), and
//! [`ViewerList`] turns what the gate accepts into who is watching.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use zeroize::Zeroizing;

use super::{BroadcastId, EpochKey};
use crate::aead;
use crate::codec::{Codec, Reader, Writer, read_header, tag, write_header};
use crate::error::{DecodeError, Error};
use crate::identity::{Device, DeviceCertificate};
use crate::keys::SigningPublicKey;
use crate::limits::TAG_SIZE;
use crate::time::UnixMillis;

/// Signature context of a signed chat message.
pub const LIVE_CHAT_CONTEXT: &str = "mayfly/v1/live-chat";
/// BLAKE3 `derive_key` context of a chat message's key.
pub const CTX_LIVE_CHAT_KEY: &str = "mayfly 2026-12 v1 live chat key";
/// Longest comment, in bytes of UTF-8.
pub const MAX_COMMENT_LEN: usize = 500;
/// How old (by `sent_at`) a chat message may be and still be accepted, and
/// how far ahead of the receiver's clock.
pub const CHAT_MAX_AGE_MS: u64 = 60_000;
/// How often a watching viewer repeats its join (RECOMMENDED).
pub const PRESENCE_INTERVAL_MS: u64 = 30_000;
/// How long after its last message a viewer still counts as watching.
pub const PRESENCE_TIMEOUT_MS: u64 = 75_000;
/// Messages one sender may send at once (its bucket's size).
pub const CHAT_SENDER_BURST: u32 = 5;
/// One more message per sender after this many ms.
pub const CHAT_SENDER_REFILL_MS: u64 = 2_000;
/// Messages all senders together may send at once.
pub const CHAT_TOTAL_BURST: u32 = 128;
/// One more message in all after this many ms (about 66 a second).
pub const CHAT_TOTAL_REFILL_MS: u64 = 15;
/// Senders whose rate a gate remembers, and viewers a list tracks.
pub const MAX_CHAT_SENDERS: usize = 1024;
/// Message hashes a gate remembers to refuse a replay: more than the total
/// rate lets through while a message can be accepted (twice
/// [`CHAT_MAX_AGE_MS`]: 120 s × 66.7 + 128 = 8,128), so none is forgotten
/// while it could come again.
pub const MAX_CHAT_SEEN: usize = 8192;

/// Bytes of the head: type, version, broadcast id, epoch, salt.
pub const CHAT_HEAD_LEN: usize = 2 + 32 + 4 + 32;
const MIN_PLAINTEXT_LEN: usize = 1 + 8 + 16 + 2 + 1;
const MAX_PLAINTEXT_LEN: usize = MIN_PLAINTEXT_LEN + MAX_COMMENT_LEN + DeviceCertificate::LEN + 64;

/// What a chat message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChatKind {
    /// The viewer is watching (sent on joining and every
    /// [`PRESENCE_INTERVAL_MS`] after).
    Join,
    /// The viewer stopped watching.
    Leave,
    /// A comment; always signed.
    Comment,
}

impl ChatKind {
    fn byte(self) -> u8 {
        match self {
            ChatKind::Join => 1,
            ChatKind::Leave => 2,
            ChatKind::Comment => 3,
        }
    }
    fn of(b: u8) -> Option<Self> {
        match b {
            1 => Some(ChatKind::Join),
            2 => Some(ChatKind::Leave),
            3 => Some(ChatKind::Comment),
            _ => None,
        }
    }
}

/// A chat message's content, as its sender writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatBody {
    /// What it says.
    pub kind: ChatKind,
    /// When it was sent, by the sender's clock.
    pub sent_at: UnixMillis,
    /// Random for each watch, the same in all its messages: tells one
    /// anonymous viewer from another without saying who they are.
    pub token: [u8; 16],
    /// A comment's text (1 to [`MAX_COMMENT_LEN`] bytes, no control
    /// characters); empty for a join or a leave.
    pub text: String,
}

/// An opened, checked chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    /// What it says, when, under which token.
    pub body: ChatBody,
    /// The sender's device certificate; `None` for an anonymous viewer.
    pub sender: Option<DeviceCertificate>,
    /// The epoch whose key sealed it.
    pub epoch: u32,
}

impl Chat {
    /// The sender's identity, unless anonymous.
    pub fn identity(&self) -> Option<SigningPublicKey> {
        self.sender.as_ref().map(DeviceCertificate::identity_key)
    }
}

/// A sealed chat message as it travels (LIVE.md §12.2). Decoding checks the
/// layout only: without the epoch key nothing else can be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    broadcast_id: BroadcastId,
    epoch: u32,
    salt: [u8; 32],
    ciphertext: Vec<u8>,
}

impl ChatMessage {
    /// The broadcast.
    pub fn broadcast_id(&self) -> BroadcastId {
        self.broadcast_id
    }
    /// The epoch whose key sealed it.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    fn head(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHAT_HEAD_LEN);
        write_header(&mut out, tag::LIVE_CHAT);
        out.put(&self.broadcast_id.0);
        out.put_u32(self.epoch);
        out.put(&self.salt);
        out
    }

    /// Seals `body` under `key` (the key of `epoch` of broadcast `id`) with
    /// a fresh random `salt`, signed by `signer` unless the viewer is
    /// anonymous. A comment must be signed and carry text; a join or leave
    /// carries none.
    pub fn seal(
        id: BroadcastId,
        epoch: u32,
        key: &EpochKey,
        salt: [u8; 32],
        body: &ChatBody,
        signer: Option<&Device>,
    ) -> Result<Self, Error> {
        check_body(body, signer.is_some()).map_err(Error::InvalidParams)?;
        let mut m = ChatMessage {
            broadcast_id: id,
            epoch,
            salt,
            ciphertext: Vec::new(),
        };
        let head = m.head();
        let mut buf = Zeroizing::new(Vec::with_capacity(MAX_PLAINTEXT_LEN + TAG_SIZE));
        buf.put_u8(body.kind.byte());
        buf.put_u64(body.sent_at.0);
        buf.put(&body.token);
        buf.put_string_u16(&body.text);
        match signer {
            None => buf.put_u8(0),
            Some(device) => {
                buf.put_u8(1);
                device.certificate().encode(&mut buf);
                let signature = device
                    .secret()
                    .sign(LIVE_CHAT_CONTEXT, &[&head[..], &buf[..]].concat());
                buf.put(&signature);
            }
        }
        let tag = aead::seal_in_place(&chat_key(key, &id, &salt), &[0; 12], &head, &mut buf)?;
        buf.put(&tag);
        m.ciphertext = buf.to_vec();
        Ok(m)
    }

    /// Opens and checks it with `key`, the key of its epoch: decryption,
    /// the plaintext's layout and rules, and the sender's signature. Any
    /// failure is the one coarse [`Error::Decrypt`].
    pub fn open(&self, key: &EpochKey) -> Result<Chat, Error> {
        let head = self.head();
        let at = self.ciphertext.len() - TAG_SIZE;
        let mut buf = Zeroizing::new(self.ciphertext[..at].to_vec());
        let tag: [u8; TAG_SIZE] = self.ciphertext[at..].try_into().expect("16 bytes");
        aead::open_in_place(
            &chat_key(key, &self.broadcast_id, &self.salt),
            &[0; 12],
            &head,
            &mut buf,
            &tag,
        )?;
        parse_plaintext(&head, &buf, self.epoch).ok_or(Error::Decrypt)
    }
}

/// `derive_key(CTX_LIVE_CHAT_KEY, epoch_key ‖ broadcast_id ‖ salt)`.
fn chat_key(key: &EpochKey, id: &BroadcastId, salt: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut material = Zeroizing::new([0u8; 96]);
    material[..32].copy_from_slice(key.as_bytes());
    material[32..64].copy_from_slice(&id.0);
    material[64..].copy_from_slice(salt);
    Zeroizing::new(blake3::derive_key(CTX_LIVE_CHAT_KEY, &material[..]))
}

/// The rules of a body (LIVE.md §12.1), as a reason for the sealer.
fn check_body(body: &ChatBody, signed: bool) -> Result<(), &'static str> {
    match body.kind {
        ChatKind::Comment if !signed => Err("a comment is signed"),
        ChatKind::Comment
            if body.text.is_empty()
                || body.text.len() > MAX_COMMENT_LEN
                || body.text.chars().any(char::is_control) =>
        {
            Err("a comment is 1 to 500 bytes of text without control characters")
        }
        ChatKind::Join | ChatKind::Leave if !body.text.is_empty() => {
            Err("a join or leave carries no text")
        }
        _ => Ok(()),
    }
}

fn parse_plaintext(head: &[u8], p: &[u8], epoch: u32) -> Option<Chat> {
    let mut r = Reader::new(p);
    let kind = ChatKind::of(r.u8().ok()?)?;
    let sent_at = UnixMillis(r.u64().ok()?);
    let token = r.array().ok()?;
    let text = r.string_u16("comment", MAX_COMMENT_LEN).ok()?;
    let sender = match r.u8().ok()? {
        0 => None,
        1 => {
            let cert = DeviceCertificate::read(&mut r).ok()?;
            let signed = &p[..p.len() - r.remaining()];
            let signature: [u8; 64] = r.array().ok()?;
            cert.device_key()
                .verify(
                    LIVE_CHAT_CONTEXT,
                    &[head, signed].concat(),
                    &signature,
                    "live chat",
                )
                .ok()?;
            Some(cert)
        }
        _ => return None,
    };
    r.finish().ok()?;
    let body = ChatBody {
        kind,
        sent_at,
        token,
        text,
    };
    check_body(&body, sender.is_some()).ok()?;
    Some(Chat {
        body,
        sender,
        epoch,
    })
}

impl Codec for ChatMessage {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put(&self.head());
        out.put_u32(self.ciphertext.len() as u32);
        out.put(&self.ciphertext);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_header(r, tag::LIVE_CHAT)?;
        let broadcast_id = BroadcastId(r.array()?);
        let epoch = r.u32()?;
        let salt = r.array()?;
        let ciphertext = r.bytes_u32("chat ciphertext", MAX_PLAINTEXT_LEN + TAG_SIZE)?;
        if ciphertext.len() < MIN_PLAINTEXT_LEN + TAG_SIZE {
            return Err(DecodeError::Invalid("chat ciphertext too short"));
        }
        Ok(Self {
            broadcast_id,
            epoch,
            salt,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

/// Why a gate refused a chat message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChatRefusal {
    /// The bytes are not a chat message.
    #[error("not a valid chat message: {0}")]
    Invalid(DecodeError),
    /// Another broadcast's.
    #[error("another broadcast")]
    OtherBroadcast,
    /// Sealed under an epoch other than the newest whose key is held.
    #[error("not under the newest key held")]
    NotNewestEpoch,
    /// It did not open under the key, or its content breaks a rule, or its
    /// signature does not verify.
    #[error("does not open")]
    Unopenable,
    /// `sent_at` lies more than [`CHAT_MAX_AGE_MS`] ahead.
    #[error("sent in the future")]
    FromTheFuture,
    /// `sent_at` is more than [`CHAT_MAX_AGE_MS`] ago.
    #[error("too old")]
    TooOld,
    /// Accepted once already.
    #[error("a duplicate")]
    Duplicate,
    /// Its sender, or all senders together, went over their rate.
    #[error("over the rate")]
    OverRate,
}

impl ChatRefusal {
    /// True when the peer that sent it should be penalised: no honest
    /// forwarder sends bytes that do not decode or open. The rest depends
    /// on the path, the timing or the clocks, not on the forwarder's
    /// honesty (it may hold a newer key, see an older rate, run a clock a
    /// minute ahead).
    pub fn is_offence(&self) -> bool {
        matches!(
            self,
            ChatRefusal::Invalid(_) | ChatRefusal::OtherBroadcast | ChatRefusal::Unopenable
        )
    }
}

/// A token bucket over injected time.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    at: UnixMillis,
}

impl Bucket {
    fn full(burst: u32, now: UnixMillis) -> Self {
        Self {
            tokens: burst,
            at: now,
        }
    }
    /// Refills for the time since the last refill, then takes one token if
    /// there is one.
    fn take(&mut self, burst: u32, refill_ms: u64, now: UnixMillis) -> bool {
        let gained = now.since(self.at) / refill_ms;
        if gained > 0 {
            self.tokens = (u64::from(self.tokens) + gained).min(u64::from(burst)) as u32;
            self.at = UnixMillis(self.at.0 + gained * refill_ms);
        }
        if self.tokens >= burst {
            self.at = self.at.max(now);
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// Who a rate is kept for: a signer's identity, or an anonymous token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Sender {
    Identity([u8; 32]),
    Anonymous([u8; 16]),
}

/// A viewer's (and the broadcaster's) check of incoming chat messages
/// (LIVE.md §12.3). Bounded: at most [`crate::live::MAX_EPOCH_KEYS`] keys,
/// [`MAX_CHAT_SEEN`] hashes and [`MAX_CHAT_SENDERS`] rates.
#[derive(Debug)]
pub struct ChatGate {
    broadcast_id: BroadcastId,
    keys: BTreeMap<u32, EpochKey>,
    seen: HashSet<[u8; 32]>,
    seen_order: VecDeque<([u8; 32], UnixMillis)>,
    senders: HashMap<Sender, Bucket>,
    total: Option<Bucket>,
}

impl ChatGate {
    /// A gate for the chat of `broadcast_id`.
    pub fn new(broadcast_id: BroadcastId) -> Self {
        Self {
            broadcast_id,
            keys: BTreeMap::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            senders: HashMap::new(),
            total: None,
        }
    }

    /// Adds the key of `epoch`, forgetting the oldest beyond
    /// [`crate::live::MAX_EPOCH_KEYS`].
    pub fn add_key(&mut self, epoch: u32, key: EpochKey) {
        self.keys.insert(epoch, key);
        while self.keys.len() > super::MAX_EPOCH_KEYS {
            self.keys.pop_first();
        }
    }

    /// The broadcast this gate admits.
    pub fn broadcast_id(&self) -> BroadcastId {
        self.broadcast_id
    }

    /// The newest epoch and its key: what this viewer seals its own
    /// messages under.
    pub fn newest(&self) -> Option<(u32, &EpochKey)> {
        self.keys.iter().next_back().map(|(e, k)| (*e, k))
    }

    /// Records a message this peer sent itself, so that it is refused as a
    /// duplicate if it comes back.
    pub fn sent(&mut self, bytes: &[u8], now: UnixMillis) {
        self.remember(*blake3::hash(bytes).as_bytes(), now);
    }

    /// Decodes, opens and checks `bytes` at `now` (LIVE.md §12.3). A peer
    /// forwards exactly what this accepts.
    pub fn accept(&mut self, bytes: &[u8], now: UnixMillis) -> Result<Chat, ChatRefusal> {
        let m = ChatMessage::decode(bytes).map_err(ChatRefusal::Invalid)?;
        if m.broadcast_id != self.broadcast_id {
            return Err(ChatRefusal::OtherBroadcast);
        }
        let Some((newest, key)) = self.newest() else {
            return Err(ChatRefusal::NotNewestEpoch);
        };
        if m.epoch != newest {
            return Err(ChatRefusal::NotNewestEpoch);
        }
        let chat = m.open(key).map_err(|_| ChatRefusal::Unopenable)?;
        let sent_at = chat.body.sent_at;
        if sent_at > now.plus(CHAT_MAX_AGE_MS) {
            return Err(ChatRefusal::FromTheFuture);
        }
        if now.since(sent_at) > CHAT_MAX_AGE_MS {
            return Err(ChatRefusal::TooOld);
        }
        self.forget_old(now);
        let hash = *blake3::hash(bytes).as_bytes();
        if self.seen.contains(&hash) {
            return Err(ChatRefusal::Duplicate);
        }
        let sender = match chat.identity() {
            Some(id) => Sender::Identity(id.to_bytes()),
            None => Sender::Anonymous(chat.body.token),
        };
        self.rate(sender, now)?;
        self.remember(hash, now);
        Ok(chat)
    }

    /// Takes one message from `sender`'s rate and from the total.
    fn rate(&mut self, sender: Sender, now: UnixMillis) -> Result<(), ChatRefusal> {
        let total = self
            .total
            .get_or_insert_with(|| Bucket::full(CHAT_TOTAL_BURST, now));
        let mut mine = self
            .senders
            .get(&sender)
            .copied()
            .unwrap_or_else(|| Bucket::full(CHAT_SENDER_BURST, now));
        // Check both before taking from either.
        let mut t = *total;
        if !t.take(CHAT_TOTAL_BURST, CHAT_TOTAL_REFILL_MS, now)
            || !mine.take(CHAT_SENDER_BURST, CHAT_SENDER_REFILL_MS, now)
        {
            return Err(ChatRefusal::OverRate);
        }
        *total = t;
        if !self.senders.contains_key(&sender) {
            // Forget the sender refilled least recently (quiet longest).
            make_room(&mut self.senders, |b| b.at);
        }
        self.senders.insert(sender, mine);
        Ok(())
    }

    fn remember(&mut self, hash: [u8; 32], now: UnixMillis) {
        if self.seen.insert(hash) {
            self.seen_order.push_back((hash, now));
            while self.seen_order.len() > MAX_CHAT_SEEN {
                if let Some((h, _)) = self.seen_order.pop_front() {
                    self.seen.remove(&h);
                }
            }
        }
    }

    /// Forgets hashes of messages accepted more than twice the longest age
    /// ago: sent at most that far ahead, they are too old by now.
    fn forget_old(&mut self, now: UnixMillis) {
        while let Some((h, at)) = self.seen_order.front().copied() {
            if now.since(at) <= 2 * CHAT_MAX_AGE_MS {
                break;
            }
            self.seen_order.pop_front();
            self.seen.remove(&h);
        }
    }
}

/// Makes room for one more entry in `map`, which holds at most
/// [`MAX_CHAT_SENDERS`]: when full, the entry whose `at` is oldest goes.
fn make_room<K: Copy + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    at: impl Fn(&V) -> UnixMillis,
) {
    if map.len() < MAX_CHAT_SENDERS {
        return;
    }
    if let Some(oldest) = map.iter().min_by_key(|(_, v)| at(v)).map(|(k, _)| *k) {
        map.remove(&oldest);
    }
}

/// A change in who is watching.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViewerChange {
    /// A viewer started watching (named by its identity, or anonymous).
    Joined(Option<SigningPublicKey>),
    /// A viewer left, or was not heard from for [`PRESENCE_TIMEOUT_MS`].
    Left(Option<SigningPublicKey>),
}

#[derive(Debug, Clone)]
struct Watcher {
    identity: Option<SigningPublicKey>,
    last_seen: UnixMillis,
}

/// Who is watching, from the chat messages a [`ChatGate`] accepted
/// (LIVE.md §12.4): each token is one watch, present from its first
/// message until its leave or [`PRESENCE_TIMEOUT_MS`] of silence. Bounded
/// to [`MAX_CHAT_SENDERS`] watches, the longest silent going first.
#[derive(Debug, Default)]
pub struct ViewerList {
    watches: HashMap<[u8; 16], Watcher>,
    named_ever: Vec<SigningPublicKey>,
    anonymous_ever: u64,
}

impl ViewerList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in an accepted message; returns the change it makes, if any.
    pub fn observe(&mut self, chat: &Chat, now: UnixMillis) -> Option<ViewerChange> {
        let identity = chat.identity();
        let token = chat.body.token;
        if chat.body.kind == ChatKind::Leave {
            // A leave counts only from the watch's own sender: a token seen
            // with a signature is not ended by an unsigned leave.
            let w = self.watches.get(&token)?;
            if w.identity != identity {
                return None;
            }
            let w = self.watches.remove(&token)?;
            return Some(ViewerChange::Left(w.identity));
        }
        if let Some(w) = self.watches.get_mut(&token) {
            if w.identity == identity {
                w.last_seen = w.last_seen.max(now);
            }
            return None;
        }
        make_room(&mut self.watches, |w| w.last_seen);
        self.watches.insert(
            token,
            Watcher {
                identity,
                last_seen: now,
            },
        );
        match identity {
            Some(id) if !self.named_ever.contains(&id) => {
                if self.named_ever.len() < MAX_CHAT_SENDERS {
                    self.named_ever.push(id);
                }
            }
            Some(_) => {}
            None => self.anonymous_ever += 1,
        }
        Some(ViewerChange::Joined(identity))
    }

    /// Ends the watches not heard from for [`PRESENCE_TIMEOUT_MS`] and
    /// returns them.
    pub fn expire(&mut self, now: UnixMillis) -> Vec<ViewerChange> {
        let gone: Vec<[u8; 16]> = self
            .watches
            .iter()
            .filter(|(_, w)| now.since(w.last_seen) > PRESENCE_TIMEOUT_MS)
            .map(|(t, _)| *t)
            .collect();
        gone.into_iter()
            .filter_map(|t| self.watches.remove(&t))
            .map(|w| ViewerChange::Left(w.identity))
            .collect()
    }

    /// Who is watching now: each named identity once (however many watches
    /// it has open), and how many anonymous watches.
    pub fn present(&self) -> (Vec<SigningPublicKey>, usize) {
        let mut named: Vec<SigningPublicKey> = Vec::new();
        let mut anonymous = 0;
        for w in self.watches.values() {
            match w.identity {
                Some(id) if !named.contains(&id) => named.push(id),
                Some(_) => {}
                None => anonymous += 1,
            }
        }
        named.sort_by_key(SigningPublicKey::to_bytes);
        (named, anonymous)
    }

    /// Everyone who watched at some point: named identities in the order
    /// they joined, and the number of anonymous watches.
    pub fn ever(&self) -> (&[SigningPublicKey], u64) {
        (&self.named_ever, self.anonymous_ever)
    }
}

#[cfg(test)]
mod tests;
