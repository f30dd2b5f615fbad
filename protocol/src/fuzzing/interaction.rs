//! The interaction harness, in the manner of libsignal's `interaction` fuzz
//! target: two senders (Alice and Carol), a recipient (Bob) and a relay
//! exchange real mailbox frames (RELAY.md §2–§3) over a network that the
//! input controls.
//!
//! The input is a seed (its first 8 bytes, for a [`ChaCha20Rng`] that
//! draws every key, every clip's content and each party's clock skew)
//! followed by a script of operations ([`Script`] writes one): a sender
//! fetches Bob's prekey bundle, seals a clip to him and deposits it, or
//! revokes one (at the relay and with a *revoked* control clip to Bob); Bob
//! lists his mailbox, fetches manifests and chunks, acknowledges, rotates
//! and publishes prekeys, or plays a clip he holds again; Alice or Carol
//! replaces her device; time passes; and the network delivers a frame in
//! flight (any one of them, so in any order), drops, duplicates, truncates
//! or flips a bit of one, or replays any frame sent earlier. The relay is a
//! model of a mailbox (RELAY.md §5: prekeys, deposits, chunks, entries,
//! acknowledgements, a revocation ledger, expiry) in the harness; the
//! clients follow SPEC.md §9.3–§11 and CLIENT-MESSAGES.md §5 with the
//! crate's own types. Every frame is encoded on one side and decoded on the
//! other, after whatever the network did to it.
//!
//! Invariants (a panic is a finding):
//! - Bob accepts only content a sender sealed to him, byte for byte, with
//!   the header it sealed, from the device that sealed it;
//! - he accepts each message at most once, whatever is replayed, and a
//!   one-time prekey opens at most one envelope;
//! - tampered bytes never open: every envelope, manifest, chunk, prekey and
//!   revocation record that passes its check is one a party made, and an
//!   envelope that does not open fails with the one error *decryption
//!   failed*;
//! - once Bob has applied a revocation of a message, it never opens again
//!   (neither a new copy nor the clip he holds), and nothing opens after
//!   its expiry;
//! - every decoder round-trips what it accepts, and nothing panics;
//! - when the network neither dropped, duplicated, altered nor replayed
//!   anything, every clip that is neither revoked, expired nor from a
//!   replaced device reaches Bob once the network is drained.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::codec::Codec;
use crate::control::{CONTROL_MEDIA_TYPE, Control};
use crate::envelope::{Envelope, EnvelopeContents};
use crate::error::Error;
use crate::header::{ClipHeader, ClipKind};
use crate::identity::{Device, DeviceCertificate, Identity};
use crate::kdf::MessageId;
use crate::keys::DhPublicKey;
use crate::limits::{
    CHUNK_SIZE, DAY_MS, DEFAULT_CLIP_TTL_MS, HOUR_MS, MAX_CLIP_TTL_MS, MAX_CLOCK_SKEW_MS,
    MAX_LIST_ENTRIES, MAX_ONE_TIME_PREKEYS,
};
use crate::mailbox::{
    Entry, ErrorCode, FrameDecoder, Request, Response, RevokeOutcome, encode_frame,
};
use crate::manifest::Manifest;
use crate::open::ClipOpener;
use crate::prekey::{
    Prekey, PrekeyBundle, PrekeyKind, PrekeyStore, Recipient, check_signed_prekey,
};
use crate::revocation::{Applied, RevocationLedger};
use crate::seal::{SealedClip, seal_reader};
use crate::time::UnixMillis;

/// The shared clock's start (each party adds its own skew).
const T0: u64 = 1_800_000_000_000;
/// Most frames in flight; more are lost (and the run counts as lossy).
const MAX_POOL: usize = 512;
/// Most frames the network remembers for replays.
const MAX_TAPE: usize = 128;
/// Most clips each sender seals in one run (control clips included), and
/// most clips over one chunk in all: sealing and opening are the costly
/// part of a run.
const MAX_CLIPS: usize = 8;
const MAX_BIG: usize = 1;
/// One-time prekeys Bob publishes at the start, and most he issues in a run.
const FIRST_ONE_TIME: usize = 2;
const MAX_ONE_TIME: usize = 16;
/// Most operations of a script that run; the rest of the input is ignored.
const MAX_OPS: usize = 256;
/// Frames the final drain delivers at most, per round, and its rounds.
const DRAIN_STEPS: usize = 4096;
const DRAIN_ROUNDS: usize = 6;

/// The operations of a script: the low four bits of an operation byte.
mod op {
    pub const SEND: u8 = 0x0;
    pub const FETCH_BUNDLE: u8 = 0x1;
    pub const REVOKE: u8 = 0x2;
    pub const SYNC: u8 = 0x3;
    pub const MAINTAIN: u8 = 0x4;
    pub const DELIVER: u8 = 0x5;
    pub const DELIVER_OLDEST: u8 = 0x6;
    pub const DROP: u8 = 0x7;
    pub const DUPLICATE: u8 = 0x8;
    pub const FLIP: u8 = 0x9;
    pub const REPLAY: u8 = 0xa;
    pub const TRUNCATE: u8 = 0xb;
    pub const ADVANCE: u8 = 0xc;
    pub const REPLACE_DEVICE: u8 = 0xd;
    pub const PLAY_HELD: u8 = 0xe;
    pub const FLUSH: u8 = 0xf;
}

/// Time steps of [`Script::advance`], by index (the high bits of the byte).
const STEPS_MS: [u64; 8] = [
    1_000,
    60_000,
    MAX_CLOCK_SKEW_MS,
    HOUR_MS,
    6 * HOUR_MS,
    DAY_MS,
    2 * DAY_MS,
    7 * DAY_MS,
];

/// One of the two senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// Alice.
    Alice,
    /// Carol.
    Carol,
}

/// What a sent clip is like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 1 to 512 bytes (one 64 KiB padded chunk), living 14 days.
    Small,
    /// Small, living one hour.
    ShortLived,
    /// Just over one chunk (two chunks), living 14 days; at most one per run
    /// (the others are small).
    Big,
}

/// Writes the input of [`super::interaction`]: a seed, then operations.
#[derive(Debug, Clone)]
pub struct Script(Vec<u8>);

impl Script {
    /// A script whose parties and contents are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed.to_le_bytes().to_vec())
    }
    fn op(mut self, code: u8, hi: u8, args: &[u8]) -> Self {
        self.0.push(code | (hi << 4));
        self.0.extend_from_slice(args);
        self
    }
    fn who(s: Sender) -> u8 {
        match s {
            Sender::Alice => 0,
            Sender::Carol => 1,
        }
    }
    /// `from` seals a clip to Bob and deposits it.
    pub fn send(self, from: Sender, size: Size) -> Self {
        let class = match size {
            Size::Small => 0,
            Size::ShortLived => 6,
            Size::Big => 7,
        };
        self.op(op::SEND, Self::who(from) | class << 1, &[])
    }
    /// `from` fetches Bob's prekey bundle from the relay.
    pub fn fetch_bundle(self, from: Sender) -> Self {
        self.op(op::FETCH_BUNDLE, Self::who(from), &[])
    }
    /// `from` revokes its clip number `clip` (counting its own, modulo).
    pub fn revoke(self, from: Sender, clip: u8) -> Self {
        self.op(op::REVOKE, Self::who(from), &[clip])
    }
    /// Bob lists his mailbox (at most `4 × limit + 1` entries) and asks again
    /// for what he still misses.
    pub fn sync(self, limit: u8) -> Self {
        self.op(op::SYNC, limit & 15, &[])
    }
    /// Bob rotates his signed prekey if due, issues `one_time` (0 to 3)
    /// one-time prekeys and publishes them.
    pub fn maintain(self, one_time: u8) -> Self {
        self.op(op::MAINTAIN, one_time & 3, &[])
    }
    /// The network delivers frame `index` (modulo those in flight).
    pub fn deliver(self, index: u8) -> Self {
        self.op(op::DELIVER, 0, &[index])
    }
    /// The network delivers the oldest `n` (1 to 16) frames in flight.
    pub fn deliver_oldest(self, n: u8) -> Self {
        self.op(op::DELIVER_OLDEST, n.clamp(1, 16) - 1, &[])
    }
    /// The network drops frame `index`.
    pub fn drop_frame(self, index: u8) -> Self {
        self.op(op::DROP, 0, &[index])
    }
    /// The network duplicates frame `index`.
    pub fn duplicate(self, index: u8) -> Self {
        self.op(op::DUPLICATE, 0, &[index])
    }
    /// The network flips bit `bit` of a byte of frame `index`: with `at`
    /// below 0x8000, byte `at` modulo the first 512; else anywhere.
    pub fn flip(self, index: u8, at: u16, bit: u8) -> Self {
        let [a, b] = at.to_be_bytes();
        self.op(op::FLIP, bit & 7, &[index, a, b])
    }
    /// The network sends again frame `index` of those sent so far.
    pub fn replay(self, index: u8) -> Self {
        self.op(op::REPLAY, 0, &[index])
    }
    /// The network cuts frame `index` to `at` (modulo its length) bytes.
    pub fn truncate(self, index: u8, at: u8) -> Self {
        self.op(op::TRUNCATE, 0, &[index, at])
    }
    /// Time passes: `times` (1 or 2) steps of [1 s, 1 min, 10 min, 1 h,
    /// 6 h, 1 day, 2 days, 7 days] by `step`.
    pub fn advance(self, step: u8, times: u8) -> Self {
        self.op(op::ADVANCE, (step & 7) | u8::from(times > 1) << 3, &[])
    }
    /// `who` replaces her device with a new one (the next serial).
    pub fn replace_device(self, who: Sender) -> Self {
        self.op(op::REPLACE_DEVICE, Self::who(who), &[])
    }
    /// Bob plays clip `index` of those he holds again.
    pub fn play_held(self, index: u8) -> Self {
        self.op(op::PLAY_HELD, 0, &[index])
    }
    /// The network delivers everything in flight, oldest first, and what
    /// that causes.
    pub fn flush(self) -> Self {
        self.op(op::FLUSH, 0, &[])
    }
    /// The input bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
    /// The input bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// What a run did, for tests that check that a script does what it should.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Clips sealed to Bob (control clips included).
    pub sent: usize,
    /// Clips Bob took in.
    pub accepted: usize,
    /// Messages whose revocation Bob applied.
    pub revoked_at_bob: usize,
    /// Clips Bob played again from what he holds.
    pub replayed: usize,
    /// Whether the network dropped, duplicated, altered or replayed a frame.
    pub lossy: bool,
    /// Clips the liveness check expected to reach Bob (0 if lossy).
    pub expected: usize,
}

/// Runs a script (see [`Script`]) and returns what happened. Panics when an
/// invariant breaks.
pub fn run(data: &[u8]) -> Summary {
    let mut seed = [0u8; 32];
    let n = data.len().min(8);
    seed[..n].copy_from_slice(&data[..n]);
    let mut w = World::new(ChaCha20Rng::from_seed(seed));
    let mut ops = Ops {
        data: &data[n..],
        pos: 0,
    };
    for _ in 0..MAX_OPS {
        let Some(b) = ops.next() else {
            break;
        };
        w.step(b, &mut ops);
    }
    w.drain();
    w.finish()
}

struct Ops<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Ops<'_> {
    fn next(&mut self) -> Option<u8> {
        let b = self.data.get(self.pos).copied();
        self.pos += 1;
        b
    }
    fn arg(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Alice = 0,
    Carol = 1,
    Bob = 2,
    Relay = 3,
}

impl Node {
    fn sender(i: usize) -> Self {
        if i == 0 { Node::Alice } else { Node::Carol }
    }
}

/// A frame on the wire: a request to the relay, or the response on the
/// same stream back to the client that asked.
#[derive(Debug, Clone)]
struct Flight {
    from: Node,
    to: Node,
    stream: usize,
    bytes: Vec<u8>,
}

struct Outgoing {
    sealed: SealedClip,
    chunks: Vec<Vec<u8>>,
}

#[derive(Clone, Copy)]
enum SenderAsk {
    Bundle,
    Deposit(usize),
    Other,
}

struct SenderState {
    identity: Identity,
    device: Device,
    /// The last verified bundle of Bob's (its one-time prekey removed once used).
    bundle: Option<PrekeyBundle>,
    /// Bob's signed prekey from his contact card.
    card_prekey: Prekey,
    clips: Vec<Outgoing>,
    asked: Vec<SenderAsk>,
}

#[derive(Clone, Copy)]
enum BobAsk {
    List,
    Manifest(MessageId),
    Chunk(MessageId, u32),
    Other,
}

/// A clip Bob has taken the envelope of and is fetching.
struct Pending {
    seq: u64,
    contents: EnvelopeContents,
    opening: Option<Opening>,
}

struct Opening {
    opener: ClipOpener,
    /// Chunks checked on arrival, not yet opened.
    chunks: BTreeMap<u32, Vec<u8>>,
    opened: Vec<Vec<u8>>,
    content: Vec<u8>,
}

/// A clip Bob took in and may play again until it expires or is revoked.
struct Held {
    contents: EnvelopeContents,
    manifest: Manifest,
    chunks: Vec<Vec<u8>>,
    content: Vec<u8>,
}

struct BobState {
    identity: Identity,
    device: Device,
    prekeys: PrekeyStore,
    /// Every one-time prekey Bob issued.
    one_time: BTreeSet<DhPublicKey>,
    /// His contacts' current device certificates, by identity key.
    contacts: BTreeMap<[u8; 32], DeviceCertificate>,
    ledger: RevocationLedger,
    /// Message ids seen (SPEC §9.3 step 9), with their expiry once known.
    seen: BTreeMap<MessageId, Option<UnixMillis>>,
    /// Entries (relay sequence numbers) handled.
    handled: BTreeSet<u64>,
    cursor: u64,
    pending: BTreeMap<MessageId, Pending>,
    held: BTreeMap<MessageId, Held>,
    asked: Vec<BobAsk>,
}

struct Stored {
    manifest: Manifest,
    chunks: Vec<Option<Vec<u8>>>,
}

struct RelayState {
    /// Bob's certificate: the one mailbox this relay serves.
    owner: DeviceCertificate,
    signed: Option<Prekey>,
    one_time: VecDeque<Prekey>,
    ledger: RevocationLedger,
    messages: BTreeMap<MessageId, Stored>,
    /// Deposits whose chunks are not all there yet.
    pending: Vec<(MessageId, Envelope)>,
    entries: BTreeMap<u64, Entry>,
    next_seq: u64,
}

/// What each party really did, to check what Bob takes in against.
struct Sent {
    from: usize,
    certificate: DeviceCertificate,
    header: ClipHeader,
    content: Vec<u8>,
    manifest: Vec<u8>,
    chunks: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Oracle {
    sent: BTreeMap<MessageId, Sent>,
    envelopes: BTreeSet<Vec<u8>>,
    /// Every prekey Bob signed.
    prekeys: BTreeSet<Vec<u8>>,
    /// Every revocation record a sender signed.
    records: BTreeSet<Vec<u8>>,
    revoked_by_sender: BTreeSet<MessageId>,
    accepted: BTreeSet<MessageId>,
    bob_revoked: BTreeSet<MessageId>,
    one_time_opened: BTreeSet<DhPublicKey>,
    replayed: usize,
}

struct World {
    rng: ChaCha20Rng,
    elapsed: u64,
    skew: [i64; 4],
    senders: Vec<SenderState>,
    bob: BobState,
    relay: RelayState,
    pool: VecDeque<Flight>,
    tape: Vec<Flight>,
    oracle: Oracle,
    lossy: bool,
    big: usize,
}

fn unframe(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut d = FrameDecoder::new();
    let n = d.feed(bytes).ok()?;
    let body = d.take()?;
    (n == bytes.len()).then_some(body)
}

fn refuse(code: ErrorCode) -> Response {
    Response::error(code, "refused")
}

impl World {
    fn new(mut rng: ChaCha20Rng) -> Self {
        // Clocks within ±5 min of the shared one, so any two within 10 min.
        let half = (MAX_CLOCK_SKEW_MS / 2) as i64;
        let mut skew = [0i64; 4];
        for s in &mut skew {
            *s = i64::from(rng.next_u32() % (MAX_CLOCK_SKEW_MS as u32 + 1)) - half;
        }
        let at = |n: Node| UnixMillis(T0.saturating_add_signed(skew[n as usize]));
        let mut oracle = Oracle::default();
        let bob_identity = Identity::generate(&mut rng);
        let bob_device = bob_identity.new_device(1, at(Node::Bob), &mut rng);
        let mut prekeys = PrekeyStore::new(&bob_device, at(Node::Bob), &mut rng);
        let first = prekeys.issue_one_time(&bob_device, FIRST_ONE_TIME, at(Node::Bob), &mut rng);
        oracle.prekeys.insert(prekeys.signed_prekey().to_bytes());
        oracle.prekeys.extend(first.iter().map(|p| p.to_bytes()));
        let card_prekey = prekeys.signed_prekey().clone();
        let senders: Vec<SenderState> = [Node::Alice, Node::Carol]
            .into_iter()
            .map(|n| {
                let identity = Identity::generate(&mut rng);
                let device = identity.new_device(1, at(n), &mut rng);
                SenderState {
                    identity,
                    device,
                    bundle: None,
                    card_prekey: card_prekey.clone(),
                    clips: Vec::new(),
                    asked: Vec::new(),
                }
            })
            .collect();
        let contacts = senders
            .iter()
            .map(|s| {
                (
                    s.identity.public().to_bytes(),
                    s.device.certificate().clone(),
                )
            })
            .collect();
        let publish = Request::PublishPrekeys {
            signed_prekey: prekeys.signed_prekey().clone(),
            one_time: first.clone(),
        };
        let mut w = Self {
            relay: RelayState {
                owner: bob_device.certificate().clone(),
                signed: None,
                one_time: VecDeque::new(),
                ledger: RevocationLedger::new(1024),
                messages: BTreeMap::new(),
                pending: Vec::new(),
                entries: BTreeMap::new(),
                next_seq: 1,
            },
            bob: BobState {
                identity: bob_identity,
                device: bob_device,
                prekeys,
                one_time: first.iter().map(|p| p.public()).collect(),
                contacts,
                ledger: RevocationLedger::new(1024),
                seen: BTreeMap::new(),
                handled: BTreeSet::new(),
                cursor: 0,
                pending: BTreeMap::new(),
                held: BTreeMap::new(),
                asked: Vec::new(),
            },
            rng,
            elapsed: 0,
            skew,
            senders,
            pool: VecDeque::new(),
            tape: Vec::new(),
            oracle,
            lossy: false,
            big: 0,
        };
        // Bob's first prekeys reach the relay before anything else happens.
        let response = w.relay_handle(Node::Bob, publish.to_bytes());
        assert_eq!(
            response,
            Response::Ok,
            "the relay takes Bob's first prekeys"
        );
        w
    }

    fn now(&self, n: Node) -> UnixMillis {
        UnixMillis((T0 + self.elapsed).saturating_add_signed(self.skew[n as usize]))
    }

    fn step(&mut self, b: u8, ops: &mut Ops<'_>) {
        let hi = b >> 4;
        match b & 15 {
            op::SEND => {
                let size = match hi >> 1 {
                    6 => Size::ShortLived,
                    7 => Size::Big,
                    _ => Size::Small,
                };
                self.send(usize::from(hi & 1), size, None);
            }
            op::FETCH_BUNDLE => self.fetch_bundle(usize::from(hi & 1)),
            op::REVOKE => {
                let clip = ops.arg();
                self.revoke(usize::from(hi & 1), clip);
            }
            op::SYNC => self.sync(usize::from(hi) * 4 + 1),
            op::MAINTAIN => self.maintain(usize::from(hi & 3)),
            op::DELIVER => {
                let i = ops.arg();
                if let Some(f) = self.take(i) {
                    self.deliver(f);
                }
            }
            op::DELIVER_OLDEST => {
                for _ in 0..=hi {
                    if let Some(f) = self.pool.pop_front() {
                        self.deliver(f);
                    }
                }
            }
            op::DROP => {
                let i = ops.arg();
                if self.take(i).is_some() {
                    self.lossy = true;
                }
            }
            op::DUPLICATE => {
                let i = ops.arg();
                if let Some(f) = self.pick(i).cloned() {
                    self.lossy = true;
                    self.post(f, false);
                }
            }
            op::FLIP => {
                let (i, a, b) = (ops.arg(), ops.arg(), ops.arg());
                let at = usize::from(u16::from_be_bytes([a, b]));
                if let Some(f) = self.pick_mut(i) {
                    let len = f.bytes.len();
                    let pos = if at < 0x8000 {
                        at % len.min(512)
                    } else {
                        (at - 0x8000) * len / 0x8000
                    };
                    f.bytes[pos] ^= 1 << (hi & 7);
                    self.lossy = true;
                }
            }
            op::REPLAY => {
                let i = usize::from(ops.arg());
                if !self.tape.is_empty() {
                    let f = self.tape[i % self.tape.len()].clone();
                    self.lossy = true;
                    self.post(f, false);
                }
            }
            op::TRUNCATE => {
                let (i, at) = (ops.arg(), ops.arg());
                if let Some(f) = self.pick_mut(i) {
                    let len = f.bytes.len();
                    f.bytes.truncate(usize::from(at) % len);
                    self.lossy = true;
                }
            }
            op::ADVANCE => {
                let times = 1 + u64::from(hi >> 3);
                self.advance(STEPS_MS[usize::from(hi & 7)] * times);
            }
            op::REPLACE_DEVICE => self.replace_device(usize::from(hi & 1)),
            op::PLAY_HELD => {
                let i = ops.arg();
                self.play_held(i);
            }
            _ => self.flush(DRAIN_STEPS),
        }
    }

    // --- The network ------------------------------------------------------

    fn post(&mut self, f: Flight, original: bool) {
        if self.pool.len() >= MAX_POOL {
            self.lossy = true;
            return;
        }
        if original && self.tape.len() < MAX_TAPE {
            self.tape.push(f.clone());
        }
        self.pool.push_back(f);
    }

    fn ask(&mut self, from: Node, stream: usize, request: &Request) {
        let bytes = encode_frame(&request.to_bytes());
        self.post(
            Flight {
                from,
                to: Node::Relay,
                stream,
                bytes,
            },
            true,
        );
    }

    fn pick(&self, i: u8) -> Option<&Flight> {
        let len = self.pool.len();
        (len > 0)
            .then(|| self.pool.get(usize::from(i) % len))
            .flatten()
    }

    fn pick_mut(&mut self, i: u8) -> Option<&mut Flight> {
        let len = self.pool.len();
        // An empty frame has nothing to alter.
        self.pool
            .get_mut(usize::from(i) % len.max(1))
            .filter(|f| !f.bytes.is_empty())
    }

    fn take(&mut self, i: u8) -> Option<Flight> {
        let len = self.pool.len();
        (len > 0)
            .then(|| self.pool.remove(usize::from(i) % len))
            .flatten()
    }

    fn flush(&mut self, limit: usize) {
        for _ in 0..limit {
            let Some(f) = self.pool.pop_front() else {
                return;
            };
            self.deliver(f);
        }
    }

    fn deliver(&mut self, f: Flight) {
        // One frame per stream: anything else is a broken stream.
        let Some(body) = unframe(&f.bytes) else {
            return;
        };
        match f.to {
            Node::Relay => {
                let response = self.relay_handle(f.from, body);
                let bytes = encode_frame(&response.to_bytes());
                self.post(
                    Flight {
                        from: Node::Relay,
                        to: f.from,
                        stream: f.stream,
                        bytes,
                    },
                    true,
                );
            }
            Node::Bob => self.bob_response(f.stream, body),
            Node::Alice | Node::Carol => self.sender_response(f.to as usize, f.stream, body),
        }
    }

    fn advance(&mut self, ms: u64) {
        self.elapsed = self.elapsed.saturating_add(ms);
        self.relay_collect();
        self.bob_collect();
    }

    fn drain(&mut self) {
        for _ in 0..DRAIN_ROUNDS {
            self.sync(MAX_LIST_ENTRIES);
            self.flush(DRAIN_STEPS);
        }
    }

    // --- Senders ----------------------------------------------------------

    fn fetch_bundle(&mut self, i: usize) {
        let s = &mut self.senders[i];
        let stream = s.asked.len();
        s.asked.push(SenderAsk::Bundle);
        let request = Request::FetchBundle {
            identity_key: self.bob.identity.public(),
        };
        self.ask(Node::sender(i), stream, &request);
    }

    /// The prekey to seal to (SPEC §5.3): the bundle's one-time prekey if
    /// fresh, else its signed prekey, else the card's, if fresh.
    fn recipient(&mut self, i: usize) -> Option<Recipient> {
        let now = self.now(Node::sender(i));
        let bob = self.bob.identity.public();
        let bob_device = self.relay.owner.device_key();
        let s = &mut self.senders[i];
        if let Some(b) = &mut s.bundle
            && let Ok(r) = b.verify(&bob, now)
        {
            if b.one_time_prekey
                .as_ref()
                .is_some_and(|o| o.public() == r.prekey)
            {
                b.one_time_prekey = None;
            }
            return Some(r);
        }
        check_signed_prekey(&s.card_prekey, &bob_device, now).ok()?;
        Some(Recipient {
            identity_key: bob,
            prekey: s.card_prekey.public(),
        })
    }

    /// Seals a clip (or, with `control`, a control clip) to Bob and deposits it.
    fn send(&mut self, i: usize, size: Size, control: Option<Control>) {
        if self.senders[i].clips.len() >= MAX_CLIPS {
            return;
        }
        let Some(recipient) = self.recipient(i) else {
            return;
        };
        let now = self.now(Node::sender(i));
        let big = size == Size::Big && self.big < MAX_BIG;
        let content: Vec<u8> = match &control {
            Some(c) => c.to_bytes(),
            None => {
                let len = if big {
                    self.big += 1;
                    CHUNK_SIZE + 1 + self.rng.next_u32() as usize % 1024
                } else {
                    1 + self.rng.next_u32() as usize % 512
                };
                let mut c = vec![0u8; len];
                self.rng.fill_bytes(&mut c);
                c
            }
        };
        let header = ClipHeader {
            kind: ClipKind::Clip,
            allow_save: false,
            duration_ms: if control.is_some() { 0 } else { 1_000 },
            created_at: now,
            expires_at: now.plus(if size == Size::ShortLived {
                HOUR_MS
            } else {
                DEFAULT_CLIP_TTL_MS
            }),
            content_len: content.len() as u64,
            parent: None,
            media_type: if control.is_some() {
                CONTROL_MEDIA_TYPE.into()
            } else {
                "video/mp4".into()
            },
        };
        let mut chunks = Vec::new();
        let sealed = seal_reader(
            header.clone(),
            &mut content.as_slice(),
            |_, c| {
                chunks.push(c.to_vec());
                Ok(())
            },
            &mut self.rng,
        )
        .expect("a valid header seals");
        let s = &self.senders[i];
        let envelope = Envelope::seal(&sealed, &s.device, &recipient, &mut self.rng)
            .expect("an envelope seals to a verified recipient");
        let id = sealed.message_id();
        self.oracle.envelopes.insert(envelope.to_bytes());
        self.oracle.sent.insert(
            id,
            Sent {
                from: i,
                certificate: s.device.certificate().clone(),
                header,
                content,
                manifest: sealed.manifest().to_bytes(),
                chunks: chunks.clone(),
            },
        );
        let request = Request::Deposit {
            mailbox: self.bob.identity.public(),
            envelope,
            manifest: sealed.manifest().clone(),
        };
        let s = &mut self.senders[i];
        s.clips.push(Outgoing { sealed, chunks });
        let stream = s.asked.len();
        s.asked.push(SenderAsk::Deposit(s.clips.len() - 1));
        self.ask(Node::sender(i), stream, &request);
    }

    /// Revokes a clip at the relay and with a control clip to Bob (CLIENT-MESSAGES §5.2).
    fn revoke(&mut self, i: usize, clip: u8) {
        let now = self.now(Node::sender(i));
        let s = &mut self.senders[i];
        // Control clips are not revoked: count the clips of video only.
        let videos: Vec<usize> = (0..s.clips.len())
            .filter(|&c| s.clips[c].sealed.header().media_type != CONTROL_MEDIA_TYPE)
            .collect();
        if videos.is_empty() {
            return;
        }
        let c = videos[usize::from(clip) % videos.len()];
        let record = s.clips[c].sealed.revoke(now);
        self.oracle.records.insert(record.to_bytes());
        self.oracle.revoked_by_sender.insert(record.message_id());
        let stream = s.asked.len();
        s.asked.push(SenderAsk::Other);
        self.ask(Node::sender(i), stream, &Request::Revoke(record.clone()));
        self.send(i, Size::Small, Some(Control::Revoked(record)));
    }

    fn replace_device(&mut self, i: usize) {
        let now = self.now(Node::sender(i));
        let s = &mut self.senders[i];
        let serial = s.device.certificate().serial() + 1;
        s.device = s.identity.new_device(serial, now, &mut self.rng);
    }

    fn sender_response(&mut self, i: usize, stream: usize, body: Vec<u8>) {
        let Ok(response) = Response::decode_owned(body.clone()) else {
            return;
        };
        assert_eq!(
            response.to_bytes(),
            body,
            "a response re-encodes to other bytes"
        );
        let now = self.now(Node::sender(i));
        let bob = self.bob.identity.public();
        let Some(&asked) = self.senders[i].asked.get(stream) else {
            return;
        };
        match (asked, response) {
            (SenderAsk::Bundle, Response::Bundle(bundle)) => {
                if bundle.verify(&bob, now).is_err() {
                    return;
                }
                // A bundle that verifies holds Bob's certificate and prekeys he signed.
                assert_eq!(
                    bundle.certificate, self.relay.owner,
                    "a bundle of another device"
                );
                assert!(
                    self.oracle
                        .prekeys
                        .contains(&bundle.signed_prekey.to_bytes()),
                    "a bundle with a signed prekey Bob never signed verified"
                );
                if let Some(o) = &bundle.one_time_prekey {
                    assert!(
                        self.oracle.prekeys.contains(&o.to_bytes()),
                        "a bundle with a one-time prekey Bob never signed verified"
                    );
                }
                self.senders[i].bundle = Some(*bundle);
            }
            (SenderAsk::Deposit(c), Response::DepositAccepted { missing }) => {
                let id = self.senders[i].clips[c].sealed.message_id();
                for index in missing {
                    let Some(bytes) = self.senders[i].clips[c].chunks.get(index as usize) else {
                        continue;
                    };
                    let request = Request::PutChunk {
                        message_id: id,
                        index,
                        bytes: bytes.clone(),
                    };
                    let s = &mut self.senders[i];
                    let stream = s.asked.len();
                    s.asked.push(SenderAsk::Other);
                    self.ask(Node::sender(i), stream, &request);
                }
            }
            _ => {}
        }
    }

    // --- The relay (RELAY.md §5) -----------------------------------------

    fn relay_handle(&mut self, from: Node, body: Vec<u8>) -> Response {
        let now = self.now(Node::Relay);
        let Ok(request) = Request::decode_owned(body.clone()) else {
            return refuse(ErrorCode::Malformed);
        };
        assert_eq!(
            request.to_bytes(),
            body,
            "a request re-encodes to other bytes"
        );
        let owner = from == Node::Bob;
        let r = &mut self.relay;
        match request {
            Request::PublishPrekeys {
                signed_prekey,
                one_time,
            } => {
                if !owner {
                    return refuse(ErrorCode::Unauthenticated);
                }
                let key = r.owner.device_key();
                let fine = |p: &Prekey, kind| {
                    p.kind() == kind
                        && p.verify(&key).is_ok()
                        && p.created_at() <= now.plus(MAX_CLOCK_SKEW_MS)
                };
                if !fine(&signed_prekey, PrekeyKind::Signed)
                    || !one_time.iter().all(|p| fine(p, PrekeyKind::OneTime))
                {
                    return refuse(ErrorCode::Malformed);
                }
                for p in core::iter::once(&signed_prekey).chain(&one_time) {
                    assert!(
                        self.oracle.prekeys.contains(&p.to_bytes()),
                        "a prekey Bob never signed verified"
                    );
                }
                let replace = r.signed.as_ref().is_none_or(|s| {
                    s.created_at() < signed_prekey.created_at()
                        || s.created_at() > now.plus(MAX_CLOCK_SKEW_MS)
                });
                if replace {
                    r.signed = Some(signed_prekey);
                }
                for p in one_time {
                    if r.one_time.len() < MAX_ONE_TIME_PREKEYS {
                        r.one_time.push_back(p);
                    }
                }
                Response::Ok
            }
            Request::FetchBundle { identity_key } => {
                match (&r.signed, identity_key == r.owner.identity_key()) {
                    (Some(signed), true) => Response::Bundle(Box::new(PrekeyBundle {
                        certificate: r.owner.clone(),
                        signed_prekey: signed.clone(),
                        one_time_prekey: r.one_time.pop_front(),
                    })),
                    _ => refuse(ErrorCode::NotFound),
                }
            }
            Request::Deposit {
                mailbox,
                envelope,
                manifest,
            } => {
                if mailbox != r.owner.identity_key() {
                    return refuse(ErrorCode::NotFound);
                }
                let id = manifest.message_id();
                if r.ledger.is_revoked(&id) {
                    return refuse(ErrorCode::Revoked);
                }
                if manifest.expires_at() <= now
                    || manifest.expires_at() > now.plus(MAX_CLIP_TTL_MS + MAX_CLOCK_SKEW_MS)
                {
                    return refuse(ErrorCode::Expired);
                }
                let stored = r.messages.entry(id).or_insert_with(|| Stored {
                    chunks: vec![None; manifest.chunk_hashes().len()],
                    manifest: manifest.clone(),
                });
                if stored.manifest != manifest {
                    return refuse(ErrorCode::Conflict);
                }
                let missing: Vec<u32> = (0..manifest.chunk_count())
                    .filter(|&c| stored.chunks[c as usize].is_none())
                    .collect();
                let known = r.pending.iter().any(|(_, e)| *e == envelope)
                    || r.entries.values().any(|e| e.envelope == envelope);
                if !known {
                    r.pending.push((id, envelope));
                }
                self.relay_complete(id);
                Response::DepositAccepted { missing }
            }
            Request::PutChunk {
                message_id,
                index,
                bytes,
            } => {
                let Some(stored) = r.messages.get_mut(&message_id) else {
                    return refuse(ErrorCode::NotFound);
                };
                if stored.manifest.check_chunk(index, &bytes).is_none() {
                    return refuse(ErrorCode::Conflict);
                }
                if let Some(sent) = self.oracle.sent.get(&message_id)
                    && sent.manifest == stored.manifest.to_bytes()
                {
                    assert_eq!(
                        sent.chunks[index as usize], bytes,
                        "a chunk that is not the sender's passed its check"
                    );
                }
                stored.chunks[index as usize] = Some(bytes);
                self.relay_complete(message_id);
                Response::Ok
            }
            Request::GetChunk {
                hash,
                offset,
                length,
            } => {
                let found = r.messages.values().find_map(|m| {
                    let i = m.manifest.chunk_hashes().iter().position(|h| *h == hash)?;
                    m.chunks[i].as_ref()
                });
                let Some(chunk) = found else {
                    return refuse(ErrorCode::NotFound);
                };
                let start = offset as usize;
                let end = if length == 0 {
                    chunk.len()
                } else {
                    start.saturating_add(length as usize)
                };
                match chunk.get(start..end) {
                    Some(bytes) => Response::Chunk {
                        bytes: bytes.to_vec(),
                    },
                    None => refuse(ErrorCode::TooLarge),
                }
            }
            Request::List { after, limit } => {
                if !owner {
                    return refuse(ErrorCode::Unauthenticated);
                }
                let mut entries: Vec<Entry> = r
                    .entries
                    .range(after.saturating_add(1)..)
                    .map(|(_, e)| e.clone())
                    .take(usize::from(limit) + 1)
                    .collect();
                let more = entries.len() > usize::from(limit);
                entries.truncate(usize::from(limit));
                Response::Entries { entries, more }
            }
            Request::GetManifest { message_id } => match r.messages.get(&message_id) {
                Some(m) => Response::Manifest(Box::new(m.manifest.clone())),
                None => refuse(ErrorCode::NotFound),
            },
            Request::Ack { seqs } => {
                if !owner {
                    return refuse(ErrorCode::Unauthenticated);
                }
                let gone: Vec<MessageId> = seqs
                    .iter()
                    .filter_map(|seq| r.entries.remove(seq))
                    .map(|e| e.message_id)
                    .collect();
                for id in gone {
                    self.relay_forget_if_unused(id);
                }
                Response::Ok
            }
            Request::Revoke(record) => {
                assert!(
                    self.oracle.records.contains(&record.to_bytes()),
                    "a revocation record no sender signed decoded"
                );
                match r.ledger.apply(&record, now) {
                    Ok(Applied::Revoked) => {
                        let id = record.message_id();
                        r.messages.remove(&id);
                        r.pending.retain(|(m, _)| *m != id);
                        r.entries.retain(|_, e| e.message_id != id);
                        Response::Revoked(RevokeOutcome::Revoked)
                    }
                    Ok(Applied::AlreadyRevoked) => Response::Revoked(RevokeOutcome::AlreadyRevoked),
                    Err(_) => refuse(ErrorCode::Expired),
                }
            }
            _ => refuse(ErrorCode::Unsupported),
        }
    }

    /// Lists the deposits of `id` once every chunk is there (RELAY.md §5.2 step 3).
    fn relay_complete(&mut self, id: MessageId) {
        let r = &mut self.relay;
        let complete = r
            .messages
            .get(&id)
            .is_some_and(|m| m.chunks.iter().all(Option::is_some));
        if !complete {
            return;
        }
        let deposited_at = self.now(Node::Relay);
        let r = &mut self.relay;
        let (done, rest): (Vec<_>, Vec<_>) = r.pending.drain(..).partition(|(m, _)| *m == id);
        r.pending = rest;
        for (message_id, envelope) in done {
            let seq = r.next_seq;
            r.next_seq += 1;
            r.entries.insert(
                seq,
                Entry {
                    seq,
                    message_id,
                    deposited_at,
                    envelope,
                },
            );
        }
    }

    fn relay_forget_if_unused(&mut self, id: MessageId) {
        let r = &mut self.relay;
        let used = r.pending.iter().any(|(m, _)| *m == id)
            || r.entries.values().any(|e| e.message_id == id);
        if !used {
            r.messages.remove(&id);
        }
    }

    /// The collector: everything of an expired message goes, and old tombstones.
    fn relay_collect(&mut self) {
        let now = self.now(Node::Relay);
        let r = &mut self.relay;
        let expired: BTreeSet<MessageId> = r
            .messages
            .iter()
            .filter(|(_, m)| m.manifest.expires_at() <= now)
            .map(|(id, _)| *id)
            .collect();
        r.messages.retain(|id, _| !expired.contains(id));
        r.pending.retain(|(m, _)| !expired.contains(m));
        r.entries.retain(|_, e| !expired.contains(&e.message_id));
        r.ledger.collect(now);
    }

    // --- Bob --------------------------------------------------------------

    fn bob_ask(&mut self, what: BobAsk, request: &Request) {
        let stream = self.bob.asked.len();
        self.bob.asked.push(what);
        self.ask(Node::Bob, stream, request);
    }

    /// Lists the mailbox and asks again for every manifest and chunk still missing.
    fn sync(&mut self, limit: usize) {
        let after = self.bob.cursor;
        let limit = limit.min(MAX_LIST_ENTRIES) as u16;
        self.bob_ask(BobAsk::List, &Request::List { after, limit });
        let mut wanted = Vec::new();
        for (id, p) in &self.bob.pending {
            match &p.opening {
                None => wanted.push((
                    BobAsk::Manifest(*id),
                    Request::GetManifest { message_id: *id },
                )),
                Some(o) => {
                    let m = o.opener.manifest();
                    let from = o.opened.len() as u32;
                    for index in from..m.chunk_count() {
                        if !o.chunks.contains_key(&index) {
                            let hash = m.chunk_hashes()[index as usize];
                            let request = Request::GetChunk {
                                hash,
                                offset: 0,
                                length: 0,
                            };
                            wanted.push((BobAsk::Chunk(*id, index), request));
                        }
                    }
                }
            }
        }
        for (what, request) in wanted {
            self.bob_ask(what, &request);
        }
    }

    fn maintain(&mut self, count: usize) {
        let now = self.now(Node::Bob);
        let b = &mut self.bob;
        let count = count.min(MAX_ONE_TIME.saturating_sub(b.one_time.len()));
        b.prekeys.rotate_if_due(&b.device, now, &mut self.rng);
        let one_time = b
            .prekeys
            .issue_one_time(&b.device, count, now, &mut self.rng);
        b.one_time.extend(one_time.iter().map(|p| p.public()));
        let signed_prekey = b.prekeys.signed_prekey().clone();
        self.oracle.prekeys.insert(signed_prekey.to_bytes());
        self.oracle
            .prekeys
            .extend(one_time.iter().map(|p| p.to_bytes()));
        let request = Request::PublishPrekeys {
            signed_prekey,
            one_time,
        };
        self.bob_ask(BobAsk::Other, &request);
    }

    fn bob_collect(&mut self) {
        let now = self.now(Node::Bob);
        let b = &mut self.bob;
        b.prekeys.erase_expired(now);
        b.ledger.collect(now);
        b.seen.retain(|_, e| e.is_none_or(|e| now < e));
        b.held.retain(|_, h| now < h.manifest.expires_at());
        let expired: Vec<(MessageId, u64)> = b
            .pending
            .iter()
            .filter(|(_, p)| {
                p.opening
                    .as_ref()
                    .is_some_and(|o| now >= o.opener.header().expires_at)
            })
            .map(|(id, p)| (*id, p.seq))
            .collect();
        for (id, seq) in expired {
            self.bob.pending.remove(&id);
            self.bob_ack(seq);
        }
    }

    fn bob_ack(&mut self, seq: u64) {
        self.bob_ask(BobAsk::Other, &Request::Ack { seqs: vec![seq] });
    }

    fn bob_response(&mut self, stream: usize, body: Vec<u8>) {
        let Ok(response) = Response::decode_owned(body.clone()) else {
            return;
        };
        assert_eq!(
            response.to_bytes(),
            body,
            "a response re-encodes to other bytes"
        );
        let Some(&asked) = self.bob.asked.get(stream) else {
            return;
        };
        match (asked, response) {
            (BobAsk::List, Response::Entries { entries, more }) => {
                let last = entries.last().map(|e| e.seq);
                for e in entries {
                    self.bob_entry(e);
                }
                if more && let Some(after) = last {
                    self.bob_ask(
                        BobAsk::List,
                        &Request::List {
                            after,
                            limit: MAX_LIST_ENTRIES as u16,
                        },
                    );
                }
            }
            (BobAsk::Manifest(id), Response::Manifest(m)) => self.bob_manifest(id, *m),
            (BobAsk::Chunk(id, index), Response::Chunk { bytes }) => {
                self.bob_chunk(id, index, bytes);
            }
            _ => {}
        }
    }

    /// Takes in one mailbox entry: opens its envelope (SPEC §9.3) and asks
    /// for its manifest.
    fn bob_entry(&mut self, e: Entry) {
        let b = &mut self.bob;
        b.cursor = b.cursor.max(e.seq);
        if !b.handled.insert(e.seq) {
            return;
        }
        let prekey = e.envelope.prekey();
        // A one-time prekey's secret leaves the store as it is taken (§5.2).
        let Some(secret) = b.prekeys.take_secret(&prekey) else {
            self.bob_ack(e.seq);
            return;
        };
        let contents = match e.envelope.open(&b.identity.public(), &secret) {
            Ok(c) => c,
            Err(err) => {
                assert_eq!(
                    err,
                    Error::Decrypt,
                    "an envelope failed with a telling error"
                );
                self.bob_ack(e.seq);
                return;
            }
        };
        assert!(
            self.oracle.envelopes.contains(&e.envelope.to_bytes()),
            "an envelope no sender sealed opened"
        );
        if b.one_time.contains(&prekey) {
            assert!(
                self.oracle.one_time_opened.insert(prekey),
                "a one-time prekey opened a second envelope"
            );
        }
        let id = contents.message_id;
        let sender = contents.sender.identity_key().to_bytes();
        let superseded = match b.contacts.get_mut(&sender) {
            // Only contacts; never a certificate older than one seen (§4).
            None => true,
            Some(known) if known.supersedes(&contents.sender) => true,
            Some(known) => {
                if contents.sender.supersedes(known) {
                    *known = contents.sender.clone();
                }
                false
            }
        };
        // §9.3 step 9: a message seen or revoked before is ignored.
        if superseded || b.seen.contains_key(&id) || b.ledger.is_revoked(&id) {
            self.bob_ack(e.seq);
            return;
        }
        b.seen.insert(id, None);
        b.pending.insert(
            id,
            Pending {
                seq: e.seq,
                contents,
                opening: None,
            },
        );
        self.bob_ask(
            BobAsk::Manifest(id),
            &Request::GetManifest { message_id: id },
        );
    }

    fn bob_manifest(&mut self, id: MessageId, manifest: Manifest) {
        let now = self.now(Node::Bob);
        let Some(p) = self.bob.pending.get_mut(&id) else {
            return;
        };
        if p.opening.is_some() {
            return;
        }
        let bytes = manifest.to_bytes();
        match p.contents.open_manifest(manifest, now) {
            Ok(opener) => {
                assert_eq!(
                    Some(&bytes),
                    self.oracle.sent.get(&id).map(|s| &s.manifest),
                    "a manifest the sender did not make opened"
                );
                let hashes = opener.manifest().chunk_hashes().to_vec();
                self.bob.seen.insert(id, Some(opener.header().expires_at));
                p.opening = Some(Opening {
                    opener,
                    chunks: BTreeMap::new(),
                    opened: Vec::new(),
                    content: Vec::new(),
                });
                for (index, hash) in hashes.into_iter().enumerate() {
                    let request = Request::GetChunk {
                        hash,
                        offset: 0,
                        length: 0,
                    };
                    self.bob_ask(BobAsk::Chunk(id, index as u32), &request);
                }
            }
            // Another manifest, or an altered one: wait for the right one.
            Err(Error::Decrypt) => {}
            Err(Error::Expired | Error::FromTheFuture) => {
                assert_eq!(
                    Some(&bytes),
                    self.oracle.sent.get(&id).map(|s| &s.manifest),
                    "a manifest the sender did not make got as far as its header"
                );
                let seq = p.seq;
                self.bob.pending.remove(&id);
                self.bob_ack(seq);
            }
            Err(e) => panic!("opening a manifest failed with {e:?}"),
        }
    }

    fn bob_chunk(&mut self, id: MessageId, index: u32, bytes: Vec<u8>) {
        let Some(p) = self.bob.pending.get_mut(&id) else {
            return;
        };
        let Some(o) = &mut p.opening else {
            return;
        };
        if (index as usize) < o.opened.len() || o.chunks.contains_key(&index) {
            return;
        }
        // Checked on arrival against the manifest (SPEC §10 step 7.1).
        let genuine = &self.oracle.sent[&id].chunks[index as usize];
        if o.opener.manifest().check_chunk(index, &bytes).is_none() {
            assert_ne!(&bytes, genuine, "the sender's own chunk failed its check");
            return;
        }
        assert_eq!(
            &bytes, genuine,
            "a chunk that is not the sender's passed its check"
        );
        o.chunks.insert(index, bytes);
        while let Some(next) = o.opener.next_index() {
            let Some(chunk) = o.chunks.remove(&next) else {
                break;
            };
            let plain = o
                .opener
                .open_next(&chunk)
                .expect("a chunk that passed its check opens");
            o.content.extend_from_slice(plain);
            o.opened.push(chunk);
        }
        if o.opener.next_index().is_some() {
            return;
        }
        let Some(Pending {
            seq,
            contents,
            opening: Some(o),
        }) = self.bob.pending.remove(&id)
        else {
            unreachable!("the pending clip is there")
        };
        let manifest = o.opener.manifest().clone();
        let header = o
            .opener
            .finish()
            .expect("a clip whose chunks all opened finishes");
        self.bob_accept(id, contents, header, manifest, o.opened, o.content);
        self.bob_ack(seq);
    }

    /// Bob has a whole clip: check it against what was sent, and act on it.
    fn bob_accept(
        &mut self,
        id: MessageId,
        contents: EnvelopeContents,
        header: ClipHeader,
        manifest: Manifest,
        chunks: Vec<Vec<u8>>,
        content: Vec<u8>,
    ) {
        let now = self.now(Node::Bob);
        let sent = self
            .oracle
            .sent
            .get(&id)
            .expect("Bob took in a message nobody sent");
        assert_eq!(content, sent.content, "content differs from what was sent");
        assert_eq!(header, sent.header, "header differs from what was sent");
        assert_eq!(
            contents.sender, sent.certificate,
            "the sender is not the device that sealed it"
        );
        assert!(
            self.oracle.accepted.insert(id),
            "a message was taken in twice"
        );
        assert!(
            !self.oracle.bob_revoked.contains(&id),
            "a message opened after Bob applied its revocation"
        );
        assert!(now < header.expires_at, "a message opened after its expiry");
        if header.media_type == CONTROL_MEDIA_TYPE {
            if let Ok(Control::Revoked(record)) = Control::decode(&content) {
                assert!(self.oracle.records.contains(&record.to_bytes()));
                if self.bob.ledger.apply(&record, now).is_ok() {
                    let revoked = record.message_id();
                    self.oracle.bob_revoked.insert(revoked);
                    // Erase the clip, its key and anything on the way (§11).
                    self.bob.held.remove(&revoked);
                    if let Some(p) = self.bob.pending.remove(&revoked) {
                        self.bob_ack(p.seq);
                    }
                }
            }
            return;
        }
        self.bob.held.insert(
            id,
            Held {
                contents,
                manifest,
                chunks,
                content,
            },
        );
    }

    /// Bob plays a clip he holds again, from its key and cached chunks.
    fn play_held(&mut self, i: u8) {
        let now = self.now(Node::Bob);
        let Some(id) = self
            .bob
            .held
            .keys()
            .nth(usize::from(i) % self.bob.held.len().max(1))
            .copied()
        else {
            return;
        };
        assert!(
            !self.oracle.bob_revoked.contains(&id) && !self.bob.ledger.is_revoked(&id),
            "Bob holds a revoked clip"
        );
        let h = &self.bob.held[&id];
        match h.contents.open_manifest(h.manifest.clone(), now) {
            Ok(mut opener) => {
                assert!(now < h.manifest.expires_at(), "an expired clip opened");
                let mut content = Vec::new();
                for c in &h.chunks {
                    content.extend_from_slice(opener.open_next(c).expect("a held chunk opens"));
                }
                opener.finish().expect("a held clip finishes");
                assert_eq!(content, h.content, "a held clip plays other content");
                self.oracle.replayed += 1;
            }
            Err(Error::Expired) => {
                self.bob.held.remove(&id);
            }
            Err(e) => panic!("a held clip failed with {e:?}"),
        }
    }

    // --- The end ----------------------------------------------------------

    fn finish(self) -> Summary {
        let mut expected = 0;
        if !self.lossy {
            let latest = |i: usize| self.senders[i].device.certificate().serial();
            let late = self.now(Node::Bob).max(self.now(Node::Relay));
            for (id, sent) in &self.oracle.sent {
                let due = !self.oracle.revoked_by_sender.contains(id)
                    && sent.certificate.serial() == latest(sent.from)
                    && late < sent.header.expires_at;
                if due {
                    expected += 1;
                    assert!(
                        self.oracle.accepted.contains(id),
                        "a clip sent over a faithful network never arrived"
                    );
                }
            }
        }
        Summary {
            sent: self.oracle.sent.len(),
            accepted: self.oracle.accepted.len(),
            revoked_at_bob: self.oracle.bob_revoked.len(),
            replayed: self.oracle.replayed,
            lossy: self.lossy,
            expected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn clean(seed: u64) -> Script {
        Script::new(seed)
            .send(Sender::Alice, Size::Small)
            .send(Sender::Carol, Size::Small)
            .fetch_bundle(Sender::Alice)
            .flush()
            .send(Sender::Alice, Size::Small)
            .flush()
    }

    #[test]
    fn a_faithful_network_delivers_every_clip_once() {
        let s = run(clean(1).sync(15).flush().bytes());
        assert_eq!(s.sent, 3);
        assert_eq!(s.accepted, 3);
        assert_eq!(s.expected, 3);
        assert!(!s.lossy);
    }

    #[test]
    fn a_big_clip_arrives_in_any_order() {
        let mut script = Script::new(2)
            .send(Sender::Alice, Size::Big)
            .flush()
            .sync(0);
        // Deliver whatever is in flight last first, a few times over.
        for i in 0..40u8 {
            script = script.deliver(255 - i);
        }
        let s = run(script.flush().bytes());
        assert_eq!((s.sent, s.accepted, s.expected), (1, 1, 1));
    }

    #[test]
    fn replays_never_deliver_twice() {
        let mut script = clean(3).sync(15).flush();
        for i in 0..64u8 {
            script = script.replay(i);
        }
        let s = run(script.flush().sync(15).flush().bytes());
        assert!(s.lossy);
        assert_eq!(s.accepted, 3);
    }

    #[test]
    fn a_revoked_clip_is_erased_and_never_opens_again() {
        let mut script = Script::new(4)
            .send(Sender::Alice, Size::Small)
            .flush()
            .sync(0)
            .flush()
            .play_held(0)
            .revoke(Sender::Alice, 0)
            .flush()
            .sync(0)
            .flush()
            .play_held(0);
        // Replays of everything, including the revoked clip's deposit.
        for i in 0..64u8 {
            script = script.replay(i);
        }
        let s = run(script.flush().sync(15).flush().bytes());
        assert_eq!(s.sent, 2, "the clip and the revoked control clip");
        assert_eq!(s.accepted, 2);
        assert_eq!(s.revoked_at_bob, 1);
        assert_eq!(
            s.replayed, 1,
            "played again before, not after the revocation"
        );
    }

    #[test]
    fn expired_clips_do_not_open_and_prekeys_rotate() {
        let script = Script::new(5)
            .send(Sender::Alice, Size::ShortLived)
            .send(Sender::Carol, Size::Small)
            .flush()
            .advance(4, 1)
            .sync(15)
            .flush()
            // A week and more later: the card's prekey is stale, so the
            // senders need a fresh bundle after Bob rotates.
            .advance(7, 2)
            .maintain(3)
            .flush()
            .fetch_bundle(Sender::Alice)
            .fetch_bundle(Sender::Carol)
            .flush()
            .send(Sender::Alice, Size::Small)
            .send(Sender::Carol, Size::Small)
            .flush();
        let s = run(script.bytes());
        assert_eq!(s.sent, 4);
        assert_eq!(s.accepted, 3, "all but the one that expired");
        assert_eq!(s.expected, 2);
    }

    #[test]
    fn altered_frames_never_open() {
        let mut script = clean(6);
        for i in 0..60u8 {
            script = script
                .sync(0)
                .flip(i, u16::from(i) * 37, i)
                .flip(i.wrapping_mul(7), 0x8000 | u16::from(i) << 7, i + 3)
                .deliver(i);
        }
        let s = run(script.flush().sync(15).flush().bytes());
        assert!(s.lossy);
        assert!(s.accepted <= 3);
    }

    #[test]
    fn a_replaced_device_is_followed() {
        let script = Script::new(7)
            .send(Sender::Alice, Size::Small)
            .replace_device(Sender::Alice)
            .send(Sender::Alice, Size::Small)
            .flush()
            .sync(15)
            .flush();
        let s = run(script.bytes());
        assert_eq!(s.sent, 2);
        assert_eq!(
            s.expected, 1,
            "only the new device's clip is sure to arrive"
        );
        assert!(s.accepted >= 1);
    }

    #[test]
    fn short_and_empty_inputs_run() {
        for data in [
            &[][..],
            &[1],
            &[1, 2, 3, 4, 5, 6, 7, 8],
            &[0; 9],
            &[0xff; 40],
        ] {
            run(data);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Random scripts: the harness's invariants hold.
        #[test]
        fn random_scripts_keep_the_invariants(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            run(&data);
        }

        /// Random scripts of faithful operations only: everything due arrives.
        #[test]
        fn faithful_random_scripts_deliver(seed in any::<u64>(), ops in proptest::collection::vec(0u8..10, 0..40)) {
            let mut script = Script::new(seed);
            for (k, o) in ops.iter().enumerate() {
                let k = k as u8;
                script = match o {
                    0 => script.send(Sender::Alice, Size::Small),
                    1 => script.send(Sender::Carol, Size::ShortLived),
                    2 => script.fetch_bundle(if k.is_multiple_of(2) { Sender::Alice } else { Sender::Carol }),
                    3 => script.revoke(Sender::Alice, k),
                    4 => script.sync(k),
                    5 => script.maintain(k),
                    6 => script.deliver(k.wrapping_mul(13)),
                    7 => script.advance(k % 7, 1),
                    8 => script.play_held(k),
                    _ => script.deliver_oldest(k % 5 + 1),
                };
            }
            let s = run(script.bytes());
            prop_assert!(!s.lossy);
            prop_assert!(s.accepted >= s.expected);
        }
    }
}
