//! The seed corpus generator, shared by `examples/gen-corpus.rs` (which
//! writes `fuzz/corpus/<target>/`) and `tests/corpus.rs` (which checks that
//! the files are exactly what this code produces).
//!
//! Each fuzz target gets valid encodings of what it decodes and the negative
//! vectors of `spec/vectors/` for it, scripts for the state machines, and
//! for the MP4 targets the clips of `samples/` (whole, and cut short). Every
//! seed comes from the vectors, the samples or a fixed seed, so the corpus
//! changes only when they do. A seed's file name is the first 16 hex digits
//! of the BLAKE3 hash of its bytes.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use mayfly_protocol::codec::Codec;
use mayfly_protocol::fuzzing::interaction::{Script, Sender, Size};
use mayfly_protocol::live::chat::{ChatBody, ChatKind, ChatMessage};
use mayfly_protocol::live::{BroadcastId, EpochKey};
use mayfly_protocol::mailbox::replay::{self, MIN_SEGMENT_LEN, ReplayEntry, piece_len};
use mayfly_protocol::mailbox::*;
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde_json::Value;

/// Most seeds of one target.
pub const MAX_FILES: usize = 64;
/// Most bytes of one target's seeds.
pub const MAX_BYTES: usize = 1 << 20;

/// The seed every generated structure is derived from.
pub const SEED: [u8; 32] = *b"mayfly fuzz seed corpus v1 2026!";
const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

/// Target name to its seeds, by file name.
pub type Corpus = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A seed's file name.
pub fn file_name(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..16].to_owned()
}

/// The names of the fuzz targets, from `fuzz/Cargo.toml`.
pub fn targets() -> Vec<String> {
    let toml = std::fs::read_to_string(root().join("fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(v) = line.strip_prefix("name = ") {
            names.push(v.trim_matches('"').to_owned());
        }
    }
    names.sort();
    names
}

/// Every seed of every target.
pub fn generate() -> Corpus {
    let vs = vectors();
    let mut c = Corpus::new();
    let mut add = |target: &str, seeds: Vec<Vec<u8>>| {
        let files = c.entry(target.to_owned()).or_default();
        for s in seeds {
            files.insert(file_name(&s), s);
        }
    };
    let w = world();

    // Decoders: the vectors of their type, positive and negative, and the
    // same structures as they appear inside other vectors.
    add("device_certificate", decoded(&vs, "device_certificate"));
    add("prekey", decoded(&vs, "prekey"));
    add(
        "prekey_bundle",
        [
            decoded(&vs, "prekey_bundle"),
            field(&vs, "prekey_bundle_verify", "bundle"),
        ]
        .concat(),
    );
    add(
        "contact_card",
        [
            decoded(&vs, "contact_card"),
            decoded(&vs, "contact_card_text"),
        ]
        .concat(),
    );
    add("control", decoded(&vs, "control"));
    add(
        "invite",
        [decoded(&vs, "invite"), decoded(&vs, "invite_text")].concat(),
    );
    add(
        "manifest",
        [decoded(&vs, "manifest"), field(&vs, "clip", "manifest")].concat(),
    );
    add(
        "envelope",
        [decoded(&vs, "envelope"), field(&vs, "clip", "envelope")].concat(),
    );
    add(
        "revocation",
        [
            decoded(&vs, "revocation"),
            steps(&vs, "revocation_ledger", "record"),
        ]
        .concat(),
    );
    let segments = [
        decoded(&vs, "live_segment"),
        field(&vs, "live_open", "segment"),
        steps(&vs, "live_gate", "segment"),
    ]
    .concat();
    add("live_segment", segments.clone());
    add("replay_head", replay_heads(&vs, &segments));
    add(
        "live_chat",
        [
            decoded(&vs, "live_chat"),
            field(&vs, "live_chat_open", "message"),
        ]
        .concat(),
    );
    add("header", headers());

    // The mailbox protocol: one of each message, and frames of them.
    let requests: Vec<Vec<u8>> = requests(&w).iter().map(Codec::to_bytes).collect();
    add("mailbox_request", requests.clone());
    let mut responses: Vec<Vec<u8>> = responses(&w).iter().map(Codec::to_bytes).collect();
    responses.push(Notify::NewDeposit { seq: 7 }.to_bytes());
    add("mailbox_response", responses);
    add("mailbox_frames", frames(&requests));

    // State machines: scripts of operations.
    add("chunk_stream_open", chunk_stream_scripts());
    add("revocation_ledger", ledger_scripts());
    add("fetch_schedule", schedule_scripts());
    add("live_gate", gate_scripts(0x3ff));
    add("live_chat_gate", gate_scripts(0x3f));
    add("playout", playout_scripts());
    add("interaction", interaction_scripts());

    // Media: the samples.
    add("mp4_probe", mp4_samples());
    add("fmp4_cutter", fmp4_streams());
    c
}

// --- Vectors -------------------------------------------------------------

/// Every vector, in file name order.
fn vectors() -> Vec<Value> {
    let dir = root().join("spec/vectors");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("spec/vectors exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            serde_json::from_str(&std::fs::read_to_string(p).expect("readable")).expect("JSON")
        })
        .collect()
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn of_kind<'a>(vs: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    vs.iter().filter(move |v| v["kind"] == kind)
}

/// The input of every `decode:<ty>` vector: its bytes, or its text.
fn decoded(vs: &[Value], ty: &str) -> Vec<Vec<u8>> {
    of_kind(vs, &format!("decode:{ty}"))
        .map(|v| match &v["input"]["text"] {
            Value::String(t) => t.as_bytes().to_vec(),
            _ => unhex(&v["input"]["bytes"]),
        })
        .collect()
}

/// Field `name` (hex) of the input of every vector of `kind`.
fn field(vs: &[Value], kind: &str, name: &str) -> Vec<Vec<u8>> {
    of_kind(vs, kind)
        .map(|v| unhex(&v["input"][name]))
        .collect()
}

/// Field `name` (hex) of every step of every vector of `kind` that has one.
fn steps(vs: &[Value], kind: &str, name: &str) -> Vec<Vec<u8>> {
    of_kind(vs, kind)
        .flat_map(|v| v["input"]["steps"].as_array().expect("steps").iter())
        .filter(|s| s[name].is_string())
        .map(|s| unhex(&s[name]))
        .collect()
}

// --- Structures made here ------------------------------------------------

struct Party {
    identity: Identity,
    device: Device,
    prekeys: PrekeyStore,
}

struct World {
    rng: ChaCha20Rng,
    alice: Party,
    bob: Party,
    clip: SealedClip,
    chunks: Vec<Vec<u8>>,
    envelope: Envelope,
}

fn party(rng: &mut ChaCha20Rng) -> Party {
    let identity = Identity::generate(rng);
    let device = identity.new_device(1, NOW, rng);
    let prekeys = PrekeyStore::new(&device, NOW, rng);
    Party {
        identity,
        device,
        prekeys,
    }
}

fn clip_header(content_len: usize) -> ClipHeader {
    ClipHeader {
        kind: ClipKind::Clip,
        allow_save: false,
        duration_ms: 4_000,
        created_at: NOW,
        expires_at: NOW.plus(DEFAULT_CLIP_TTL_MS),
        content_len: content_len as u64,
        parent: None,
        media_type: "video/mp4".into(),
    }
}

fn world() -> World {
    let mut rng = ChaCha20Rng::from_seed(SEED);
    let alice = party(&mut rng);
    let bob = party(&mut rng);
    let content: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    let mut chunks = Vec::new();
    let clip = seal_reader(
        clip_header(content.len()),
        &mut content.as_slice(),
        |_, c| {
            chunks.push(c.to_vec());
            Ok(())
        },
        &mut rng,
    )
    .expect("seals");
    let to_bob = Recipient {
        identity_key: bob.identity.public(),
        prekey: bob.prekeys.signed_prekey().public(),
    };
    let envelope = Envelope::seal(&clip, &alice.device, &to_bob, &mut rng).expect("envelope");
    World {
        rng,
        alice,
        bob,
        clip,
        chunks,
        envelope,
    }
}

/// Headers of each kind, and some that break one rule each (by byte).
fn headers() -> Vec<Vec<u8>> {
    let clip = clip_header(1000);
    let reaction = ClipHeader {
        kind: ClipKind::Reaction,
        duration_ms: 3_000,
        parent: Some(MessageId([7; 32])),
        ..clip.clone()
    };
    let segment = ClipHeader {
        kind: ClipKind::LiveSegment,
        duration_ms: 2_000,
        expires_at: NOW.plus(MAX_LIVE_TTL_MS),
        parent: Some(MessageId([9; 32])),
        ..clip.clone()
    };
    let control = ClipHeader {
        duration_ms: 0,
        media_type: CONTROL_MEDIA_TYPE.into(),
        content_len: 3,
        ..clip.clone()
    };
    let good: Vec<[u8; 128]> = [&clip, &reaction, &segment, &control]
        .iter()
        .map(|h| h.encode())
        .collect();
    let mut out: Vec<Vec<u8>> = good.iter().map(|h| h.to_vec()).collect();
    // Offsets of SPEC §3.7: kind 0, flags 1, content_len 22..30, media type length 62.
    let broken: [(usize, u8); 6] = [(0, 9), (1, 2), (29, 0), (62, 65), (63, b'V'), (127, 1)];
    for (at, v) in broken {
        let mut h = good[0];
        h[at] = v;
        if at == 29 {
            h[22..30].fill(0);
        }
        out.push(h.to_vec());
    }
    out
}

fn join(w: &World, n: u8) -> ChatMessage {
    let body = ChatBody {
        kind: ChatKind::Join,
        sent_at: NOW,
        token: [n; 16],
        text: String::new(),
    };
    let signer = n.is_multiple_of(2).then_some(&w.bob.device);
    ChatMessage::seal(
        BroadcastId([5; 32]),
        u32::from(n),
        &EpochKey::from_bytes([7; 32]),
        [n; 32],
        &body,
        signer,
    )
    .expect("seals")
}

fn piece() -> replay::Piece {
    let segment_len = MIN_SEGMENT_LEN + 100;
    replay::Piece {
        segment_len,
        index: 0,
        bytes: vec![0x5a; piece_len(segment_len, 0).expect("one piece")],
    }
}

fn addrs() -> Vec<Vec<u8>> {
    vec![
        b"\x04\x7f\x00\x00\x01\x06\x0f\xa1".to_vec(),
        b"\x29\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x06\x0f\xa1"
            .to_vec(),
    ]
}

/// One request of each type.
fn requests(w: &World) -> Vec<Request> {
    let mut rng = w.rng.clone();
    let otks = PrekeyStore::new(&w.bob.device, NOW, &mut rng).issue_one_time(
        &w.bob.device,
        2,
        NOW,
        &mut rng,
    );
    let id = w.clip.message_id();
    vec![
        Request::Challenge,
        Request::Login(
            LoginProof::sign(&w.bob.device, b"relay", b"client", &[7; 32]).expect("signs"),
        ),
        Request::PublishPrekeys {
            signed_prekey: w.bob.prekeys.signed_prekey().clone(),
            one_time: otks,
        },
        Request::FetchBundle {
            identity_key: w.bob.identity.public(),
        },
        Request::Deposit {
            mailbox: w.bob.identity.public(),
            envelope: w.envelope.clone(),
            manifest: w.clip.manifest().clone(),
        },
        Request::PutChunk {
            message_id: id,
            index: 0,
            bytes: w.chunks[0].clone(),
        },
        Request::GetChunk {
            hash: w.clip.manifest().chunk_hashes()[0],
            offset: 100,
            length: 50,
        },
        Request::List {
            after: 3,
            limit: 64,
        },
        Request::GetManifest { message_id: id },
        Request::Ack {
            seqs: vec![1, 5, 6],
        },
        Request::Revoke(w.clip.revoke(NOW)),
        Request::Announce { addrs: vec![] },
        Request::Announce { addrs: addrs() },
        Request::Locate {
            identity_key: w.alice.identity.public(),
        },
        Request::ReplayPut {
            broadcast_id: BroadcastId([1; 32]),
            seq: 4,
            piece: piece(),
        },
        Request::ReplayGet {
            broadcaster: w.alice.identity.public(),
            broadcast_id: BroadcastId([3; 32]),
            seq: 4,
            index: 0,
        },
        Request::ReplayList {
            broadcaster: w.bob.identity.public(),
            broadcast_id: BroadcastId([4; 32]),
            from: 2,
            limit: 10,
        },
        Request::ReplayDelete {
            broadcast_id: BroadcastId([5; 32]),
        },
        Request::ReplayWatched {
            broadcaster: w.alice.identity.public(),
            chat: join(w, 2),
        },
        Request::LiveForward {
            broadcast_id: BroadcastId([6; 32]),
        },
        Request::ReplayViewers {
            broadcast_id: BroadcastId([6; 32]),
            from: 1,
            limit: 5,
        },
    ]
}

/// One response of each type.
fn responses(w: &World) -> Vec<Response> {
    vec![
        Response::error(ErrorCode::QuotaExceeded, "mailbox is full"),
        Response::error(ErrorCode::Other(999), ""),
        Response::Challenge { nonce: [3; 32] },
        Response::Ok,
        Response::Bundle(Box::new(PrekeyBundle {
            certificate: w.bob.device.certificate().clone(),
            signed_prekey: w.bob.prekeys.signed_prekey().clone(),
            one_time_prekey: None,
        })),
        Response::DepositAccepted {
            missing: vec![0, 1],
        },
        Response::DepositAccepted { missing: vec![] },
        Response::Chunk {
            bytes: w.chunks[0][..300].to_vec(),
        },
        Response::Entries {
            entries: vec![Entry {
                seq: 9,
                message_id: w.clip.message_id(),
                deposited_at: NOW,
                envelope: w.envelope.clone(),
            }],
            more: true,
        },
        Response::Entries {
            entries: vec![],
            more: false,
        },
        Response::Manifest(Box::new(w.clip.manifest().clone())),
        Response::Revoked(RevokeOutcome::Revoked),
        Response::Revoked(RevokeOutcome::AlreadyRevoked),
        Response::Located {
            certificate: Box::new(w.bob.device.certificate().clone()),
            addrs: addrs(),
        },
        Response::ReplayPiece(piece()),
        Response::Forwarding { addrs: addrs() },
        Response::ReplaySegments {
            entries: (0..3)
                .map(|i| ReplayEntry {
                    seq: 10 + i * 3,
                    segment_len: MIN_SEGMENT_LEN + i as u32,
                })
                .collect(),
            more: true,
        },
        Response::ReplayWatches {
            watches: (0..2).map(|i| (u32::from(i) * 2, join(w, i))).collect(),
            more: false,
        },
    ]
}

/// Frame streams: the first byte is the size of the pieces the rest is fed in.
fn frames(requests: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let small: Vec<&Vec<u8>> = requests.iter().filter(|r| r.len() < 2048).collect();
    let stream =
        |bodies: &[&Vec<u8>]| -> Vec<u8> { bodies.iter().flat_map(|b| encode_frame(b)).collect() };
    let mut out = Vec::new();
    for (split, from) in [(1u8, 0usize), (3, 2), (64, 5), (255, 9)] {
        let mut s = vec![split];
        s.extend(stream(&small[from..(from + 4).min(small.len())]));
        out.push(s);
    }
    // An empty frame, a frame over the limit, and a stream cut in a body.
    out.push(vec![2, 0, 0, 0, 0]);
    let mut over = vec![4];
    over.extend_from_slice(&((MAX_FRAME_LEN + 1) as u32).to_be_bytes());
    out.push(over);
    let mut cut = vec![5];
    cut.extend(stream(&small[..2]));
    cut.truncate(cut.len() - 3);
    out.push(cut);
    out
}

/// Valid segments, the negative ones, and a valid one cut before and at
/// the end of its head.
fn replay_heads(vs: &[Value], segments: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = segments.to_vec();
    if let Some(seg) = of_kind(vs, "decode:live_segment")
        .find(|v| v["expected"] == "ok")
        .map(|v| unhex(&v["input"]["bytes"]))
    {
        for cut in [208, 209, seg.len() - 1] {
            out.push(seg[..cut.min(seg.len())].to_vec());
        }
    }
    out
}

// --- Scripts -------------------------------------------------------------

/// `fuzzing::chunk_stream_open`: 0 = the genuine chunk, 1 = the one after
/// it, 2 = the next 64 input bytes, 3 = the genuine chunk with its first
/// byte changed by the next input byte.
fn chunk_stream_scripts() -> Vec<Vec<u8>> {
    let mut with_bytes = vec![0, 2];
    with_bytes.extend(0..64u8);
    with_bytes.push(0);
    vec![
        vec![0, 0, 0],
        vec![0, 0],
        vec![0, 0, 0, 0],
        vec![1, 0, 0],
        vec![0, 3, 0x55, 0, 0],
        with_bytes,
    ]
}

/// `fuzzing::revocation_ledger`: top bits 0-1 apply record `op & 3`, 2
/// moves time by `op` days, 3 collects.
fn ledger_scripts() -> Vec<Vec<u8>> {
    vec![
        vec![0, 1, 2, 3],
        vec![0, 0, 0x41, 0xc0],
        vec![0, 1, 2, 3, 0, 0x8f, 0xc0, 0, 1],
        vec![0, 0xbf, 0xc0, 0x01, 0xbf, 0xbf, 0xc0, 0],
    ]
}

/// `fuzzing::fetch_schedule`: four bytes of setup, then operations.
fn schedule_scripts() -> Vec<Vec<u8>> {
    let mut rng = ChaCha20Rng::from_seed(SEED);
    let mut out = vec![
        vec![0, 0, 0, 0],
        vec![0, 1, 125, 0, 0xAD, 0x10, 0x0C],
        vec![
            3, 1, 0, 0, 0x00, 0x04, 0x08, 0x00, 0x04, 0x08, 0x00, 0x04, 0x08, 0x0d,
        ],
        vec![
            79, 2, 10, 21, 0x00, 0x10, 0x20, 0x04, 0x14, 0x08, 0x0b, 0x0c, 0xff,
        ],
    ];
    for _ in 0..4 {
        let mut s = vec![0u8; 48];
        rng.fill_bytes(&mut s);
        out.push(s);
    }
    out
}

/// `fuzzing::live_gate` and `fuzzing::live_chat_gate`: pairs of bytes, the
/// low bits (`mask`) choosing a message, the top two the operation (0-1
/// take it, 2 alter it, 3 let time pass).
fn gate_scripts(mask: u16) -> Vec<Vec<u8>> {
    let pairs = |vs: &[u16]| -> Vec<u8> { vs.iter().flat_map(|v| v.to_be_bytes()).collect() };
    let top = mask.min(599);
    vec![
        pairs(&(0..16).collect::<Vec<_>>()),
        pairs(&[0, 1, 1, 0, 2, 2]),
        pairs(&[top, 0, 1, top - 1]),
        pairs(&[0, 0x8000 | 5, 0x8100, 1, 0xc000, 2, 0xc000, 0xc000, 3]),
        pairs(&[0x4003, 0x4002, 0x4001, 0x4000]),
    ]
}

/// `fuzzing::playout`: triples of sequence number, flags (1 keyframe, 2
/// end) and time step.
fn playout_scripts() -> Vec<Vec<u8>> {
    vec![
        vec![0, 1, 10, 1, 0, 10, 2, 0, 10, 3, 1, 10, 4, 2, 10],
        vec![1, 0, 5, 0, 1, 5, 3, 0, 5, 2, 0, 5, 4, 1, 100],
        vec![5, 1, 0, 9, 0, 0, 6, 0, 60, 7, 0, 60, 20, 1, 0, 21, 2, 0],
        vec![0, 1, 0, 0, 1, 0, 200, 3, 255],
    ]
}

/// `fuzzing::interaction`: scripts of the two senders, Bob, the relay and the network.
fn interaction_scripts() -> Vec<Vec<u8>> {
    let clean = |seed| {
        Script::new(seed)
            .send(Sender::Alice, Size::Small)
            .send(Sender::Carol, Size::Small)
            .flush()
            .sync(15)
            .flush()
    };
    let mut replays = clean(3);
    let mut flips = clean(4).sync(15);
    let mut reorder = Script::new(5)
        .send(Sender::Alice, Size::Big)
        .flush()
        .sync(0);
    for i in 0..24u8 {
        replays = replays.replay(i);
        flips = flips.flip(i, u16::from(i) * 41, i).deliver(i);
        reorder = reorder.deliver(255 - i);
    }
    let scripts = [
        clean(1),
        clean(2).play_held(0).play_held(1),
        Script::new(6)
            .fetch_bundle(Sender::Alice)
            .deliver_oldest(2)
            .send(Sender::Alice, Size::Small)
            .send(Sender::Alice, Size::Small)
            .flush()
            .sync(0)
            .flush(),
        replays.flush().sync(15).flush(),
        flips.flush(),
        reorder.flush(),
        Script::new(7)
            .send(Sender::Alice, Size::Small)
            .flush()
            .sync(0)
            .flush()
            .play_held(0)
            .revoke(Sender::Alice, 0)
            .flush()
            .sync(0)
            .flush()
            .play_held(0)
            .replay(0)
            .replay(1)
            .flush(),
        Script::new(8)
            .send(Sender::Alice, Size::Small)
            .send(Sender::Carol, Size::Small)
            .drop_frame(0)
            .duplicate(0)
            .truncate(1, 40)
            .flush()
            .sync(3)
            .duplicate(0)
            .flush(),
        Script::new(9)
            .send(Sender::Alice, Size::ShortLived)
            .send(Sender::Carol, Size::Small)
            .flush()
            .advance(4, 1)
            .sync(15)
            .flush()
            .advance(7, 2)
            .maintain(3)
            .flush()
            .fetch_bundle(Sender::Carol)
            .flush()
            .send(Sender::Carol, Size::Small)
            .flush()
            .advance(5, 2)
            .play_held(0),
        Script::new(10)
            .send(Sender::Alice, Size::Small)
            .replace_device(Sender::Alice)
            .send(Sender::Alice, Size::Small)
            .flush()
            .sync(15)
            .flush(),
    ];
    scripts.into_iter().map(Script::into_bytes).collect()
}

// --- Media ---------------------------------------------------------------

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(root().join("samples").join(name)).expect("sample")
}

/// Every sample clip, and the start of the larger ones.
fn mp4_samples() -> Vec<Vec<u8>> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("samples"))
        .expect("samples/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".mp4"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for n in &names {
        let s = sample(n);
        if s.len() > 8192 {
            out.push(s[..4096].to_vec());
        }
        out.push(s);
    }
    out
}

/// `fuzzing::fmp4_cutter`: the first byte is the size of the pieces the
/// stream is fed in; the stream is `samples/live.mp4`, whole and cut short.
fn fmp4_streams() -> Vec<Vec<u8>> {
    let live = sample("live.mp4");
    [
        (255u8, live.len()),
        (97, live.len()),
        (255, 16 * 1024),
        (31, 2048),
    ]
    .iter()
    .map(|&(split, len)| {
        let mut s = vec![split];
        s.extend_from_slice(&live[..len.min(live.len())]);
        s
    })
    .collect()
}
