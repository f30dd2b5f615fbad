//! Fuzz harnesses, one per decoder and state machine. Each `fuzz/` target is a
//! one-line call into this module, so the harnesses build and run with the crate.
//!
//! Decoders get a decode → encode round-trip oracle: anything that decodes
//! must re-encode to exactly the input bytes, in one piece and split; and
//! the owned decoder, and the decoder of a frame read in two parts, must
//! agree with the borrowed one.

use crate::codec::Codec;

pub mod interaction;

fn round_trip<T: Codec + PartialEq + core::fmt::Debug>(data: &[u8]) {
    let decoded = T::decode(data);
    if let Ok(v) = &decoded {
        assert_eq!(v.to_bytes(), data, "decode -> encode is not the identity");
        let (head, tail) = v.encode_split();
        assert_eq!(
            [head.as_slice(), tail].concat(),
            data,
            "split encoding differs"
        );
    }
    assert_eq!(
        T::decode_owned(data.to_vec()),
        decoded,
        "owned decoding differs"
    );
    // Split where a frame reader splits it, and at every byte near there.
    if let Some(&first) = data.first() {
        let at = T::head_len(first).unwrap_or(data.len() / 2);
        for cut in at.saturating_sub(2)..=(at + 2).min(data.len()) {
            let (head, tail) = data.split_at(cut);
            assert_eq!(
                T::decode_parts(head, tail.to_vec()),
                decoded,
                "decoding in two parts differs (cut at {cut})"
            );
        }
    }
}

/// Device certificate decoder.
pub fn device_certificate(data: &[u8]) {
    round_trip::<crate::identity::DeviceCertificate>(data);
}

/// Prekey decoder.
pub fn prekey(data: &[u8]) {
    round_trip::<crate::prekey::Prekey>(data);
}

/// Prekey bundle decoder.
pub fn prekey_bundle(data: &[u8]) {
    round_trip::<crate::prekey::PrekeyBundle>(data);
}

/// Contact card decoder, binary and text forms.
pub fn contact_card(data: &[u8]) {
    round_trip::<crate::card::ContactCard>(data);
    if let Ok(text) = core::str::from_utf8(data)
        && let Ok(card) = crate::card::ContactCard::from_text(text)
    {
        assert_eq!(card.to_text(), text.trim());
    }
}

/// Control message decoder.
pub fn control(data: &[u8]) {
    round_trip::<crate::control::Control>(data);
}

/// Invite decoder, binary and text forms.
pub fn invite(data: &[u8]) {
    round_trip::<crate::control::Invite>(data);
    if let Ok(text) = core::str::from_utf8(data)
        && let Ok(invite) = crate::control::Invite::from_text(text)
    {
        assert_eq!(invite.to_text(), text.trim());
    }
}

/// Manifest decoder.
pub fn manifest(data: &[u8]) {
    round_trip::<crate::manifest::Manifest>(data);
}

/// Envelope decoder, and opening what decodes with a fixed recipient.
pub fn envelope(data: &[u8]) {
    round_trip::<crate::envelope::Envelope>(data);
    if let Ok(env) = crate::envelope::Envelope::decode(data) {
        let k = fixture();
        let _ = env.open(&k.identity, &k.prekey);
    }
}

/// Revocation record decoder.
pub fn revocation(data: &[u8]) {
    round_trip::<crate::revocation::RevocationRecord>(data);
}

/// Mailbox protocol request decoder.
pub fn mailbox_request(data: &[u8]) {
    round_trip::<crate::mailbox::Request>(data);
}

/// Mailbox protocol response decoder.
pub fn mailbox_response(data: &[u8]) {
    round_trip::<crate::mailbox::Response>(data);
    round_trip::<crate::mailbox::Notify>(data);
}

/// The frame decoder state machine: bytes fed in arbitrary pieces yield the
/// same frames as fed whole, and never a frame over the limit.
pub fn mailbox_frames(data: &[u8]) {
    use crate::mailbox::{FrameDecoder, MAX_FRAME_LEN};
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let run = |step: usize| {
        let mut d = FrameDecoder::new();
        let mut frames = Vec::new();
        for mut piece in data.chunks(step.max(1)) {
            while !piece.is_empty() {
                match d.feed(piece) {
                    Ok(n) => piece = &piece[n..],
                    Err(_) => return (frames, true),
                }
                if let Some(f) = d.take() {
                    assert!(!f.is_empty() && f.len() <= MAX_FRAME_LEN);
                    frames.push(f);
                }
            }
        }
        (frames, false)
    };
    assert_eq!(run(usize::from(split)), run(data.len()));
}

/// Clip header decoder (the plaintext of the sealed header).
pub fn header(data: &[u8]) {
    if let Ok(bytes) = <&[u8; crate::header::HEADER_LEN]>::try_from(data)
        && let Ok(h) = crate::header::ClipHeader::decode(bytes)
    {
        assert_eq!(&h.encode(), bytes);
    }
}

/// The chunk-stream opener: the input is split into chunks that are fed to an
/// opener for a fixed sealed clip. It must never accept anything but the
/// genuine chunks, in order, in full.
pub fn chunk_stream_open(data: &[u8]) {
    let k = fixture();
    let Ok(mut opener) = crate::open::ClipOpener::new(k.manifest.clone(), &k.content_key, k.now)
    else {
        panic!("fixture must open");
    };
    let mut genuine = true;
    let mut rest = data;
    let mut index = 0usize;
    while !rest.is_empty() {
        let take = usize::from(rest[0]) % 4;
        rest = &rest[1..];
        // Choose a chunk: the genuine one, another genuine one, or fuzzer bytes.
        let chunk: Vec<u8> = match take {
            0 | 1 => k.chunks.get(index + take).cloned().unwrap_or_default(),
            2 => {
                let n = rest.len().min(64);
                let (c, r) = rest.split_at(n);
                rest = r;
                c.to_vec()
            }
            _ => {
                let mut c = k.chunks.get(index).cloned().unwrap_or_default();
                if let (Some(b), Some(&x)) = (c.first_mut(), rest.first()) {
                    *b ^= x | 1;
                    rest = &rest[1..];
                }
                c
            }
        };
        let is_genuine = k.chunks.get(index) == Some(&chunk);
        let result = opener.open_next(&chunk);
        if genuine && is_genuine {
            assert!(result.is_ok(), "genuine chunk rejected");
            index += 1;
        } else {
            assert!(result.is_err(), "non-genuine chunk accepted");
            genuine = false;
        }
    }
    let done = opener.finish();
    assert_eq!(done.is_ok(), genuine && index == k.chunks.len());
}

/// The revocation ledger state machine, driven by a sequence of operations:
/// applying fixture records, collecting at advancing times. Checks idempotence
/// and that nothing is revoked that no record named.
pub fn revocation_ledger(data: &[u8]) {
    use crate::revocation::{Applied, RevocationLedger};
    use crate::time::UnixMillis;
    let k = fixture();
    let mut ledger = RevocationLedger::new(4);
    let mut now = k.now;
    for op in data {
        let rec = &k.revocations[usize::from(op & 3)];
        match op >> 6 {
            0 | 1 => {
                let before = ledger.is_revoked(&rec.message_id());
                match ledger.apply(rec, now) {
                    Ok(Applied::AlreadyRevoked) => assert!(before),
                    Ok(Applied::Revoked) => assert!(!before),
                    Err(_) => {}
                }
            }
            2 => now = UnixMillis(now.0.saturating_add(u64::from(*op) * crate::limits::DAY_MS)),
            _ => {
                ledger.collect(now);
            }
        }
        assert!(ledger.len() <= 4);
    }
}

/// The multi-source fetch schedule ([`crate::fetch::Schedule`]): the first
/// four bytes choose the clip's chunk count (1 to 80), the sources (1 to
/// 3), `helpers_after` (0 to 2 s) and the pace (none, or 0 to 254 ms); each
/// further byte is an operation: a source asks, answers its oldest request,
/// the next chunk is played or fails its check, a source stops, or time
/// passes. After each, the schedule's invariants hold and anything asked
/// for is still needed; at the end, with every live source answering at
/// once, the whole clip is played in order, each chunk once.
pub fn fetch_schedule(data: &[u8]) {
    use crate::fetch::{HEDGE_AFTER, Next, Policy, Schedule};
    use core::time::Duration;
    let [a, b, c, d, ops @ ..] = data else {
        return;
    };
    let count = 1 + u32::from(*a) % 80;
    let sources = 1 + usize::from(*b) % 3;
    let policy = Policy {
        helpers_after: Duration::from_millis(u64::from(*c) * 8),
        pace: d.checked_sub(1).map(|p| Duration::from_millis(p.into())),
    };
    let mut now = Duration::from_secs(1);
    let mut s = Schedule::new(0, count, sources, policy, now);
    let mut played = Vec::new();
    for &op in ops {
        let src = usize::from(op >> 4) % sources;
        match op & 15 {
            0..=3 => {
                if let Next::Ask(i) = s.next(src, now) {
                    assert!(i < count && i >= s.next_take(), "asked for {i}");
                }
            }
            4..=7 => {
                if !s.stopped(src) && s.owes(src) {
                    s.arrived(src, Vec::new(), now);
                }
            }
            8..=10 => played.extend(s.take(now).map(|(i, _)| i)),
            11 => {
                if let Some((i, a)) = s.take(now) {
                    s.reject(i, a.source);
                }
            }
            12 => s.stop(src),
            _ => now += Duration::from_millis(u64::from(op >> 4) * 100),
        }
        s.check();
        for src in 0..sources {
            if s.stopped(src) {
                assert_eq!(s.next(src, now), Next::End);
            }
        }
    }
    // From here every live source answers at once; time passes so that
    // stalls count.
    for _ in 0..(4 * count + 8) {
        for src in 0..sources {
            while !s.stopped(src) && s.owes(src) {
                s.arrived(src, Vec::new(), now);
            }
            if let Next::Ask(_) = s.next(src, now) {
                s.arrived(src, Vec::new(), now);
            }
        }
        played.extend(core::iter::from_fn(|| s.take(now).map(|(i, _)| i)));
        s.check();
        now += HEDGE_AFTER;
    }
    if (0..sources).any(|src| !s.stopped(src)) {
        assert_eq!(s.next_take(), count, "a live source finishes the clip");
    }
    // Played in order, each once (a rejected chunk is played when a good
    // copy comes).
    assert!(
        played.iter().copied().eq(0..played.len() as u32),
        "{played:?}"
    );
}

struct Fixture {
    identity: crate::keys::SigningPublicKey,
    prekey: crate::keys::DhSecret,
    manifest: crate::manifest::Manifest,
    content_key: crate::kdf::ContentKey,
    chunks: Vec<Vec<u8>>,
    revocations: Vec<crate::revocation::RevocationRecord>,
    now: crate::time::UnixMillis,
}

fn fixture() -> &'static Fixture {
    use std::sync::OnceLock;
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        use crate::header::{ClipHeader, ClipKind};
        use rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([0x5a; 32]);
        let now = crate::time::UnixMillis(1_800_000_000_000);
        let id = crate::identity::Identity::generate(&mut rng);
        let prekey = crate::keys::DhSecret::generate(&mut rng);
        let content: Vec<u8> = (0..(crate::limits::CHUNK_SIZE * 2 + 100))
            .map(|i| i as u8)
            .collect();
        let header = ClipHeader {
            kind: ClipKind::Clip,
            allow_save: false,
            duration_ms: 1000,
            created_at: now,
            expires_at: now.plus(crate::limits::DAY_MS),
            content_len: content.len() as u64,
            parent: None,
            media_type: "video/mp4".into(),
        };
        let mut chunks = Vec::new();
        let sealed = crate::seal::seal_reader(
            header,
            &mut content.as_slice(),
            |_, c| {
                chunks.push(c.to_vec());
                Ok(())
            },
            &mut rng,
        )
        .expect("fixture seals");
        let revocations = (0..4)
            .map(|i| {
                crate::revocation::RevocationRecord::sign(
                    &crate::keys::SigningSecret::generate(&mut rng),
                    now.plus(i),
                )
            })
            .collect();
        Fixture {
            identity: id.public(),
            prekey,
            manifest: sealed.manifest().clone(),
            content_key: sealed.content_key().clone(),
            chunks,
            revocations,
            now,
        }
    })
}

/// Live segment decoder ([`crate::live::Segment`]).
pub fn live_segment(data: &[u8]) {
    round_trip::<crate::live::Segment>(data);
}

/// The head a relay reads of a replay segment's first piece
/// ([`crate::mailbox::replay::SegmentHead`]): never panics, and whatever it
/// accepts agrees with the full segment decoder on every field the head
/// holds whenever the whole input is a valid segment.
pub fn replay_head(data: &[u8]) {
    let head = crate::mailbox::replay::SegmentHead::read(data);
    if let Ok(seg) = crate::live::Segment::decode(data) {
        let head = head.expect("a valid segment has a valid head");
        assert_eq!(head.broadcast_id, seg.broadcast_id());
        assert_eq!(head.seq, seg.seq());
        assert_eq!(head.produced_at, seg.produced_at());
        assert_eq!(head.segment_len as usize, data.len());
        assert_eq!(&head.certificate, seg.certificate());
    }
}

/// The live segment gate ([`crate::live::SegmentGate`]), driven by pairs of
/// bytes: the low 10 bits pick one of 600 validly signed segments of one
/// broadcast (sequence numbers 0 to 599), the top bits whether it is sent
/// as is, with a flipped bit, or time moves a day on. Checks that a segment
/// is accepted at most once, never when altered, never a window or more
/// below the highest accepted, and opens to what was sealed.
pub fn live_gate(data: &[u8]) {
    use crate::live::{LIVE_REPLAY_WINDOW, Refusal, SegmentGate};
    use std::sync::OnceLock;
    static SEGMENTS: OnceLock<(
        crate::live::BroadcastId,
        crate::keys::SigningPublicKey,
        Vec<Vec<u8>>,
    )> = OnceLock::new();
    let k = fixture();
    let (id, identity, segments) = SEGMENTS.get_or_init(|| {
        use rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([0x1f; 32]);
        let identity = crate::identity::Identity::generate(&mut rng);
        let device = identity.new_device(1, k.now, &mut rng);
        let id = crate::live::BroadcastId([0x1f; 32]);
        let key = crate::live::EpochKey::from_bytes([0x2f; 32]);
        let mut sealer = crate::live::SegmentSealer::new(device, id, key);
        let segments = (0..600u64)
            .map(|seq| {
                let media = seq.to_be_bytes();
                let kf = seq % 4 == 0;
                let init: &[u8] = if kf { b"init" } else { &[] };
                sealer
                    .seal(kf, false, init, &media, 1000, k.now)
                    .expect("seals")
                    .to_bytes()
            })
            .collect();
        (id, identity.public(), segments)
    });
    let mut gate = SegmentGate::new(*id, *identity, 1);
    gate.add_key(0, crate::live::EpochKey::from_bytes([0x2f; 32]));
    let mut now = k.now;
    let mut accepted = std::collections::BTreeSet::new();
    for pair in data.chunks_exact(2) {
        let v = u16::from_be_bytes([pair[0], pair[1]]);
        let seq = u64::from(v & 0x3ff) % 600;
        let bytes = &segments[seq as usize];
        let highest = gate.highest();
        match v >> 14 {
            0 | 1 => match gate.accept(bytes, now) {
                Ok(seg) => {
                    assert!(accepted.insert(seq), "{seq} accepted twice");
                    assert!(highest.is_none_or(|h| seq + LIVE_REPLAY_WINDOW > h));
                    let plain = gate.open(&seg).expect("a key").expect("opens");
                    assert_eq!(plain.media, seq.to_be_bytes());
                }
                Err(Refusal::Duplicate) => assert!(accepted.contains(&seq)),
                Err(Refusal::Stale) => {
                    assert!(highest.is_some_and(|h| seq + LIVE_REPLAY_WINDOW <= h));
                }
                Err(Refusal::Expired) => {}
                Err(e) => panic!("a genuine segment refused: {e}"),
            },
            2 => {
                let mut b = bytes.clone();
                let at = usize::from(pair[1]) * 7 % b.len();
                b[at] ^= 1 << (pair[0] & 7);
                assert!(gate.accept(&b, now).is_err(), "an altered segment accepted");
            }
            _ => now = now.plus(crate::limits::DAY_MS / 2),
        }
    }
}

/// Live chat decoder ([`crate::live::chat::ChatMessage`]).
pub fn live_chat(data: &[u8]) {
    round_trip::<crate::live::chat::ChatMessage>(data);
}

/// The live chat gate and viewer list ([`crate::live::chat::ChatGate`],
/// [`crate::live::chat::ViewerList`]), driven by pairs of bytes: the low 6
/// bits pick one of 64 genuine messages (comments signed by two devices,
/// signed and anonymous joins and leaves), the top bits whether it is sent
/// as is, with a flipped bit, or time moves on. Checks that a message is
/// accepted at most once, never when altered, never over a sender's rate,
/// opens to what was sealed, and that the list stays within its bound.
pub fn live_chat_gate(data: &[u8]) {
    use crate::live::chat::{
        CHAT_MAX_AGE_MS, CHAT_SENDER_BURST, CHAT_SENDER_REFILL_MS, ChatBody, ChatGate, ChatKind,
        ChatMessage, ChatRefusal, MAX_CHAT_SENDERS, ViewerList,
    };
    use std::sync::OnceLock;
    type Fixtures = (crate::live::BroadcastId, Vec<(Vec<u8>, ChatBody)>);
    static MESSAGES: OnceLock<Fixtures> = OnceLock::new();
    let k = fixture();
    let (id, messages) = MESSAGES.get_or_init(|| {
        use rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([0x3c; 32]);
        let devices: Vec<_> = (0..2)
            .map(|_| crate::identity::Identity::generate(&mut rng).new_device(1, k.now, &mut rng))
            .collect();
        let id = crate::live::BroadcastId([0x3c; 32]);
        let key = crate::live::EpochKey::from_bytes([0x4c; 32]);
        let messages = (0..64u8)
            .map(|i| {
                let kind = match i % 4 {
                    0 | 1 => ChatKind::Comment,
                    2 => ChatKind::Join,
                    _ => ChatKind::Leave,
                };
                let signer =
                    (kind == ChatKind::Comment || i % 8 < 4).then(|| &devices[usize::from(i / 32)]);
                let body = ChatBody {
                    kind,
                    sent_at: k.now,
                    token: [i % 8; 16],
                    text: if kind == ChatKind::Comment {
                        format!("c{i}")
                    } else {
                        String::new()
                    },
                };
                let m = ChatMessage::seal(id, 0, &key, [i; 32], &body, signer).expect("seals");
                (crate::codec::Codec::to_bytes(&m), body)
            })
            .collect();
        (id, messages)
    });
    let mut gate = ChatGate::new(*id);
    gate.add_key(0, crate::live::EpochKey::from_bytes([0x4c; 32]));
    let mut list = ViewerList::new();
    let mut now = k.now;
    let mut accepted = std::collections::BTreeSet::new();
    let mut by_sender: std::collections::BTreeMap<Option<[u8; 32]>, u32> = Default::default();
    for pair in data.chunks_exact(2) {
        let v = u16::from_be_bytes([pair[0], pair[1]]);
        let (bytes, body) = &messages[usize::from(v & 0x3f)];
        match v >> 14 {
            0 | 1 => match gate.accept(bytes, now) {
                Ok(chat) => {
                    assert!(accepted.insert(v & 0x3f), "accepted twice");
                    assert_eq!(&chat.body, body);
                    // A sender gets its burst and one more per refill.
                    let n = by_sender
                        .entry(chat.identity().map(|i| i.to_bytes()))
                        .or_default();
                    *n += 1;
                    if chat.identity().is_some() {
                        let refills = now.since(k.now) / CHAT_SENDER_REFILL_MS;
                        assert!(
                            u64::from(*n) <= u64::from(CHAT_SENDER_BURST) + refills,
                            "a sender over its rate"
                        );
                    }
                    list.observe(&chat, now);
                }
                Err(ChatRefusal::Duplicate) => assert!(accepted.contains(&(v & 0x3f))),
                Err(ChatRefusal::OverRate | ChatRefusal::TooOld) => {}
                Err(e) => panic!("a genuine message refused: {e}"),
            },
            2 => {
                let mut b = bytes.clone();
                let at = usize::from(pair[1]) * 7 % b.len();
                b[at] ^= 1 << (pair[0] & 7);
                assert!(gate.accept(&b, now).is_err(), "an altered message accepted");
            }
            _ => {
                now = now.plus(CHAT_MAX_AGE_MS / 2);
                list.expire(now);
            }
        }
        let (named, anonymous) = list.present();
        assert!(named.len() + anonymous <= MAX_CHAT_SENDERS);
    }
}

/// The fragmented-MP4 cutter ([`crate::fmp4::Cutter`]), with small limits:
/// the first byte is the size of the pieces the rest is fed in. Fed in
/// pieces, the stream gives the same pieces and the same verdict as fed
/// whole; the cutter never holds more than its limits allow; the pieces
/// are the init part first, then segments within the limits, and together
/// they are the start of the stream (all of it when the cut succeeds).
pub fn fmp4_cutter(data: &[u8]) {
    use crate::fmp4::{Cutter, CutterConfig, Piece};
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let config = CutterConfig {
        target_ms: 1000,
        max_duration_ms: 4000,
        max_segment_len: 1 << 14,
        max_init_len: 1 << 12,
    };
    let run = |step: usize| {
        let mut c = Cutter::new(config);
        let mut pieces = Vec::new();
        let mut verdict = Ok(());
        for piece in data.chunks(step.max(1)) {
            verdict = c.push(piece);
            assert!(c.buffered() <= config.max_segment_len.max(config.max_init_len) + 16);
            pieces.extend(core::iter::from_fn(|| c.next_piece()));
            if verdict.is_err() {
                break;
            }
        }
        if verdict.is_ok() {
            match c.finish() {
                Ok(rest) => pieces.extend(rest),
                Err(e) => verdict = Err(e),
            }
        }
        (pieces, verdict)
    };
    let (pieces, verdict) = run(data.len());
    assert_eq!(run(usize::from(split)), (pieces.clone(), verdict.clone()));
    let mut joined = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Init(init) => {
                assert_eq!(i, 0, "the init part comes first, once");
                assert!(init.len() <= config.max_init_len);
                joined.extend_from_slice(init);
            }
            Piece::Segment(s) => {
                assert!(i > 0, "a segment before the init part");
                assert!(!s.bytes.is_empty() && s.bytes.len() <= config.max_segment_len);
                assert!(s.duration_ms <= config.max_duration_ms);
                joined.extend_from_slice(&s.bytes);
            }
        }
    }
    assert!(data.starts_with(&joined), "pieces are not the stream");
    if verdict.is_ok() {
        assert_eq!(joined.len(), data.len(), "bytes lost");
    }
}

/// Drives a [`crate::playout::Playout`] with segments and clock steps read
/// from `data` (3 bytes per step: sequence number, flags, time step) and
/// checks its promises: media plays in increasing order, each once, at
/// most `max_held` segments wait, nothing follows the end.
pub fn playout(data: &[u8]) {
    use crate::live::SegmentPlaintext;
    use crate::playout::{Output, Playout, PlayoutConfig};
    use crate::time::UnixMillis;
    let config = PlayoutConfig {
        max_wait_ms: 500,
        max_held: 6,
    };
    let mut p = Playout::new(config);
    let mut now = 1_000_000u64;
    let mut last: Option<u64> = None;
    let mut ended = false;
    for step in data.chunks_exact(3) {
        let seq = u64::from(step[0]);
        let flags = step[1] & 0x03;
        now += u64::from(step[2]) * 10;
        let keyframe = flags & crate::live::FLAG_KEYFRAME != 0;
        let plaintext = SegmentPlaintext {
            init: if keyframe { vec![step[1]] } else { Vec::new() },
            media: vec![step[0]],
        };
        p.push(seq, flags, UnixMillis(now), plaintext, UnixMillis(now));
        while let Some(o) = p.poll(UnixMillis(now)) {
            assert!(!ended, "output after the end");
            match o {
                Output::Media { seq, bytes, .. } => {
                    assert!(last.is_none_or(|l| seq > l), "out of order");
                    assert_eq!(bytes, vec![seq as u8]);
                    last = Some(seq);
                }
                Output::Skipped { from, to } => assert!(from < to),
                Output::End => ended = true,
                _ => {}
            }
        }
        assert!(p.held() <= config.max_held);
    }
}

/// Two senders, a recipient and a relay exchanging mailbox frames over a
/// network the input controls ([`interaction::run`]; the input is written
/// by [`interaction::Script`]): Bob takes in only what was sent to him, each
/// message once, never anything altered, revoked or expired.
pub fn interaction(data: &[u8]) {
    interaction::run(data);
}
