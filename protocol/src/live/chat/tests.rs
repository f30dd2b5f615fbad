use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::identity::Identity;

const T0: UnixMillis = UnixMillis(1_800_000_000_000);
const ID: BroadcastId = BroadcastId([0x42; 32]);

fn device(seed: u8) -> Device {
    let mut r = ChaCha20Rng::from_seed([seed; 32]);
    let identity = Identity::generate(&mut r);
    identity.new_device(1, T0, &mut r)
}

fn key(e: u8) -> EpochKey {
    EpochKey::from_bytes([e ^ 0x5a; 32])
}

fn body(kind: ChatKind, at: UnixMillis, token: u8, text: &str) -> ChatBody {
    ChatBody {
        kind,
        sent_at: at,
        token: [token; 16],
        text: text.into(),
    }
}

fn seal(b: &ChatBody, signer: Option<&Device>, salt: u8) -> Vec<u8> {
    ChatMessage::seal(ID, 0, &key(0), [salt; 32], b, signer)
        .expect("seals")
        .to_bytes()
}

fn gate() -> ChatGate {
    let mut g = ChatGate::new(ID);
    g.add_key(0, key(0));
    g
}

#[test]
fn a_signed_comment_opens_to_what_was_sent() {
    let bob = device(1);
    let b = body(ChatKind::Comment, T0, 7, "hello, world");
    let chat = gate()
        .accept(&seal(&b, Some(&bob), 1), T0)
        .expect("accepted");
    assert_eq!(chat.body, b);
    assert_eq!(chat.identity(), Some(bob.identity_key()));
    assert_eq!(chat.sender.as_ref(), Some(bob.certificate()));
    assert_eq!(chat.epoch, 0);
}

#[test]
fn an_anonymous_join_names_nobody() {
    let b = body(ChatKind::Join, T0, 9, "");
    let chat = gate().accept(&seal(&b, None, 1), T0).expect("accepted");
    assert_eq!(chat.identity(), None);
    assert_eq!(chat.body.token, [9; 16]);
}

#[test]
fn the_sealer_keeps_the_rules() {
    let bob = device(1);
    let seal_err = |b: &ChatBody, s: Option<&Device>| {
        ChatMessage::seal(ID, 0, &key(0), [0; 32], b, s).unwrap_err()
    };
    assert!(matches!(
        seal_err(&body(ChatKind::Comment, T0, 1, "hi"), None),
        Error::InvalidParams(_)
    ));
    assert!(matches!(
        seal_err(&body(ChatKind::Comment, T0, 1, ""), Some(&bob)),
        Error::InvalidParams(_)
    ));
    assert!(matches!(
        seal_err(&body(ChatKind::Comment, T0, 1, "a\x1b[2Jb"), Some(&bob)),
        Error::InvalidParams(_)
    ));
    let long = "x".repeat(MAX_COMMENT_LEN + 1);
    assert!(matches!(
        seal_err(&body(ChatKind::Comment, T0, 1, &long), Some(&bob)),
        Error::InvalidParams(_)
    ));
    assert!(matches!(
        seal_err(&body(ChatKind::Join, T0, 1, "hi"), Some(&bob)),
        Error::InvalidParams(_)
    ));
    let longest = "é".repeat(MAX_COMMENT_LEN / 2);
    let b = body(ChatKind::Comment, T0, 1, &longest);
    let bytes = seal(&b, Some(&bob), 3);
    assert_eq!(
        bytes.len(),
        CHAT_HEAD_LEN + 4 + MAX_PLAINTEXT_LEN + TAG_SIZE
    );
    assert_eq!(gate().accept(&bytes, T0).unwrap().body, b);
}

#[test]
fn any_altered_byte_is_refused() {
    let bob = device(1);
    let bytes = seal(&body(ChatKind::Comment, T0, 7, "hi"), Some(&bob), 1);
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        let r = gate().accept(&b, T0).unwrap_err();
        assert!(
            r.is_offence() || r == ChatRefusal::NotNewestEpoch,
            "byte {i}: {r:?}"
        );
    }
}

#[test]
fn a_signature_by_another_device_is_refused() {
    // Carol's certificate with a signature by bob's device: it opens,
    // but does not verify.
    let (bob, carol) = (device(1), device(2));
    let b = body(ChatKind::Comment, T0, 7, "hi");
    let m = ChatMessage::seal(ID, 0, &key(0), [1; 32], &b, Some(&bob)).unwrap();
    // Build the plaintext by hand: carol's certificate, bob's signature.
    let head = m.head();
    let mut p = Vec::new();
    p.put_u8(3);
    p.put_u64(T0.0);
    p.put(&[7; 16]);
    p.put_string_u16("hi");
    p.put_u8(1);
    carol.certificate().encode(&mut p);
    let sig = bob
        .secret()
        .sign(LIVE_CHAT_CONTEXT, &[&head[..], &p[..]].concat());
    p.put(&sig);
    let ck = chat_key(&key(0), &ID, &[1; 32]);
    let tag = aead::seal_in_place(&ck, &[0; 12], &head, &mut p).unwrap();
    p.put(&tag);
    let forged = ChatMessage { ciphertext: p, ..m };
    assert_eq!(
        gate().accept(&forged.to_bytes(), T0),
        Err(ChatRefusal::Unopenable)
    );
}

#[test]
fn only_the_newest_key_held_admits() {
    let mut g = gate();
    let b = body(ChatKind::Join, T0, 1, "");
    let old = seal(&b, None, 1);
    let new = ChatMessage::seal(ID, 1, &key(1), [2; 32], &b, None)
        .unwrap()
        .to_bytes();
    assert_eq!(g.accept(&new, T0), Err(ChatRefusal::NotNewestEpoch));
    g.add_key(1, key(1));
    assert_eq!(g.accept(&old, T0), Err(ChatRefusal::NotNewestEpoch));
    assert!(g.accept(&new, T0).is_ok());
    // The wrong key for the epoch: does not open.
    let wrong = ChatMessage::seal(ID, 1, &key(7), [3; 32], &b, None)
        .unwrap()
        .to_bytes();
    assert_eq!(g.accept(&wrong, T0), Err(ChatRefusal::Unopenable));
    // Another broadcast's.
    let other = ChatMessage::seal(BroadcastId([1; 32]), 1, &key(1), [4; 32], &b, None)
        .unwrap()
        .to_bytes();
    assert_eq!(g.accept(&other, T0), Err(ChatRefusal::OtherBroadcast));
    let mut none = ChatGate::new(ID);
    assert_eq!(none.accept(&new, T0), Err(ChatRefusal::NotNewestEpoch));
}

#[test]
fn freshness_and_once() {
    let mut g = gate();
    let bytes = seal(&body(ChatKind::Join, T0, 1, ""), None, 1);
    assert_eq!(
        g.accept(&bytes, T0.plus(CHAT_MAX_AGE_MS + 1)),
        Err(ChatRefusal::TooOld)
    );
    assert_eq!(
        g.accept(&bytes, UnixMillis(T0.0 - CHAT_MAX_AGE_MS - 1)),
        Err(ChatRefusal::FromTheFuture)
    );
    assert!(g.accept(&bytes, T0.plus(CHAT_MAX_AGE_MS)).is_ok());
    assert_eq!(g.accept(&bytes, T0), Err(ChatRefusal::Duplicate));
    // Sent by this peer: refused when it comes back.
    let mine = seal(&body(ChatKind::Join, T0, 2, ""), None, 2);
    g.sent(&mine, T0);
    assert_eq!(g.accept(&mine, T0), Err(ChatRefusal::Duplicate));
    assert!(!ChatRefusal::Duplicate.is_offence());
    assert!(!ChatRefusal::FromTheFuture.is_offence());
    assert!(ChatRefusal::Unopenable.is_offence());
}

#[test]
fn each_sender_has_a_rate_and_so_do_all() {
    let mut g = gate();
    let bob = device(1);
    let comment = |i: u32| {
        seal(
            &body(ChatKind::Comment, T0, 1, &format!("c{i}")),
            Some(&bob),
            i as u8,
        )
    };
    for i in 0..CHAT_SENDER_BURST {
        assert!(g.accept(&comment(i), T0).is_ok(), "{i}");
    }
    assert_eq!(g.accept(&comment(99), T0), Err(ChatRefusal::OverRate));
    // Refused over the rate is not remembered: it can come again later.
    assert!(
        g.accept(&comment(99), T0.plus(CHAT_SENDER_REFILL_MS))
            .is_ok()
    );
    // Anonymous joins under fresh tokens hit the total rate.
    let mut g = gate();
    let mut ok = 0;
    for t in 0..=255u8 {
        let m = ChatMessage::seal(
            ID,
            0,
            &key(0),
            [t; 32],
            &body(ChatKind::Join, T0, t, ""),
            None,
        )
        .unwrap()
        .to_bytes();
        if g.accept(&m, T0).is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, CHAT_TOTAL_BURST);
}

#[test]
fn the_viewer_list_follows_joins_leaves_and_silence() {
    let (bob, carol) = (device(1), device(2));
    let mut g = gate();
    let mut list = ViewerList::new();
    let mut see =
        |b: ChatBody, s: Option<&Device>, salt: u8, now: UnixMillis, list: &mut ViewerList| {
            let chat = g.accept(&seal(&b, s, salt), now).expect("accepted");
            list.observe(&chat, now)
        };
    assert_eq!(
        see(
            body(ChatKind::Join, T0, 1, ""),
            Some(&bob),
            1,
            T0,
            &mut list
        ),
        Some(ViewerChange::Joined(Some(bob.identity_key())))
    );
    assert_eq!(
        see(body(ChatKind::Join, T0, 2, ""), None, 2, T0, &mut list),
        Some(ViewerChange::Joined(None))
    );
    assert_eq!(
        see(
            body(ChatKind::Join, T0, 3, ""),
            Some(&carol),
            3,
            T0,
            &mut list
        ),
        Some(ViewerChange::Joined(Some(carol.identity_key())))
    );
    let (named, anon) = list.present();
    assert_eq!(named.len(), 2);
    assert_eq!(anon, 1);
    // An unsigned leave under bob's token does not end bob's watch.
    assert_eq!(
        see(body(ChatKind::Leave, T0, 1, ""), None, 4, T0, &mut list),
        None
    );
    // Carol leaves; bob's repeated join keeps him; the anonymous viewer
    // goes silent and times out.
    assert_eq!(
        see(
            body(ChatKind::Leave, T0, 3, ""),
            Some(&carol),
            5,
            T0,
            &mut list
        ),
        Some(ViewerChange::Left(Some(carol.identity_key())))
    );
    let later = T0.plus(PRESENCE_INTERVAL_MS * 2);
    assert_eq!(
        see(
            body(ChatKind::Join, later, 1, ""),
            Some(&bob),
            6,
            later,
            &mut list
        ),
        None
    );
    assert_eq!(
        list.expire(T0.plus(PRESENCE_TIMEOUT_MS + 1)),
        vec![ViewerChange::Left(None)]
    );
    assert_eq!(list.present(), (vec![bob.identity_key()], 0));
    let (ever, anon_ever) = list.ever();
    assert_eq!(ever, &[bob.identity_key(), carol.identity_key()]);
    assert_eq!(anon_ever, 1);
}

#[test]
fn hex_snapshot() {
    let bob = device(3);
    let b = body(ChatKind::Comment, T0, 0x33, "hi");
    let hex = crate::keys::hex(&seal(&b, Some(&bob), 0x44));
    // Head: type, version, broadcast id, epoch, salt.
    assert_eq!(
        &hex[..2 * CHAT_HEAD_LEN],
        "0b01424242424242424242424242424242424242424242424242424242424242424200000000\
         4444444444444444444444444444444444444444444444444444444444444444"
    );
    assert_eq!(&hex[2 * CHAT_HEAD_LEN..][..8], "00000100");
    assert_eq!(hex.len(), 2 * (CHAT_HEAD_LEN + 4 + 0x100));
    assert_eq!(
        &hex[hex.len() - 32..],
        SNAPSHOT_TAG,
        "the tag of the whole message"
    );
}

/// The last 16 bytes (the AEAD tag) of `hex_snapshot`'s message.
const SNAPSHOT_TAG: &str = "530312b94cccb552b8753af5454367b0";

proptest! {
    #[test]
    fn round_trip(kind in 1u8..=3, at in 0u64..u64::MAX / 2, token: [u8; 16], text in "[a-z ]{1,40}", signed: bool, salt: [u8; 32]) {
        let kind = ChatKind::of(kind).unwrap();
        let signed = signed || kind == ChatKind::Comment;
        let text = if kind == ChatKind::Comment { text } else { String::new() };
        let bob = device(4);
        let b = ChatBody { kind, sent_at: UnixMillis(at), token, text };
        let m = ChatMessage::seal(ID, 5, &key(5), salt, &b, signed.then_some(&bob)).unwrap();
        let bytes = m.to_bytes();
        let back = ChatMessage::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_bytes(), bytes);
        let chat = back.open(&key(5)).unwrap();
        prop_assert_eq!(chat.body, b);
        prop_assert_eq!(chat.sender.is_some(), signed);
    }

    #[test]
    fn the_fuzz_harnesses_hold(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        crate::fuzzing::live_chat(&data);
        crate::fuzzing::live_chat_gate(&data);
    }
}

#[test]
fn a_message_is_never_accepted_twice_however_busy_the_chat() {
    // A message dated a minute ahead stays acceptable for two minutes; the
    // chat runs at the total rate all that time; it is still refused when
    // it comes again at the end.
    let mut g = gate();
    let early = ChatMessage::seal(
        ID,
        0,
        &key(0),
        [0xee; 32],
        &body(ChatKind::Join, T0.plus(CHAT_MAX_AGE_MS), 0xee, ""),
        None,
    )
    .unwrap()
    .to_bytes();
    assert!(g.accept(&early, T0).is_ok());
    let mut accepted = 0;
    let mut i = 0u32;
    let mut now = T0;
    while now < T0.plus(2 * CHAT_MAX_AGE_MS - 1) {
        let mut token = [0u8; 16];
        token[..4].copy_from_slice(&i.to_be_bytes());
        let mut salt = [0u8; 32];
        salt[..4].copy_from_slice(&i.to_be_bytes());
        let b = ChatBody {
            kind: ChatKind::Join,
            sent_at: now,
            token,
            text: String::new(),
        };
        let m = ChatMessage::seal(ID, 0, &key(0), salt, &b, None)
            .unwrap()
            .to_bytes();
        if g.accept(&m, now).is_ok() {
            accepted += 1;
        }
        i += 1;
        now = now.plus(CHAT_TOTAL_REFILL_MS);
    }
    assert!(accepted > 7_000, "{accepted}");
    assert_eq!(g.accept(&early, now), Err(ChatRefusal::Duplicate));
    assert!(g.seen.len() <= MAX_CHAT_SEEN);
}
