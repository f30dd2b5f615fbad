//! The mailbox protocol's messages: round trips, strictness and the login proof.

mod common;

use common::*;
use mayfly_protocol::codec::Codec;
use mayfly_protocol::live::chat::{ChatBody, ChatKind, ChatMessage};
use mayfly_protocol::live::{BroadcastId, EpochKey};
use mayfly_protocol::mailbox::replay::{self, *};
use mayfly_protocol::mailbox::*;
use mayfly_protocol::*;
use proptest::prelude::*;

struct World {
    alice: Party,
    bob: Party,
    clip: SealedClip,
    chunks: Vec<Vec<u8>>,
    envelope: Envelope,
}

fn world(seed: u64) -> World {
    let mut rng = rng(seed);
    let alice = Party::new(&mut rng);
    let mut bob = Party::new(&mut rng);
    bob.prekeys.issue_one_time(&bob.device, 3, NOW, &mut rng);
    let (clip, chunks) = seal(&content(CHUNK_SIZE + 10, 1), &mut rng);
    let envelope = Envelope::seal(&clip, &alice.device, &bob.recipient(), &mut rng).unwrap();
    World {
        alice,
        bob,
        clip,
        chunks,
        envelope,
    }
}

fn requests(w: &World, seed: u64) -> Vec<Request> {
    let mut rng = rng(seed);
    let otks = PrekeyStore::new(&w.bob.device, NOW, &mut rng).issue_one_time(
        &w.bob.device,
        5,
        NOW,
        &mut rng,
    );
    vec![
        Request::Challenge,
        Request::Login(LoginProof::sign(&w.bob.device, b"relay", b"client", &[7; 32]).unwrap()),
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
            message_id: w.clip.message_id(),
            index: 1,
            bytes: w.chunks[1].clone(),
        },
        Request::GetChunk {
            hash: w.clip.manifest().chunk_hashes()[0],
            offset: 100,
            length: 0,
        },
        Request::List {
            after: seed,
            limit: 64,
        },
        Request::GetManifest {
            message_id: w.clip.message_id(),
        },
        Request::Ack {
            seqs: vec![1, 5, seed.max(6)],
        },
        Request::Revoke(w.clip.revoke(NOW)),
        Request::Announce { addrs: vec![] },
        Request::Announce { addrs: addrs(seed) },
        Request::Locate {
            identity_key: w.alice.identity.public(),
        },
        Request::ReplayPut {
            broadcast_id: BroadcastId([seed as u8; 32]),
            seq: seed,
            piece: replay_piece(seed),
        },
        Request::ReplayGet {
            broadcaster: w.alice.identity.public(),
            broadcast_id: BroadcastId([3; 32]),
            seq: seed,
            index: (seed % u64::from(MAX_REPLAY_PIECES)) as u16,
        },
        Request::ReplayList {
            broadcaster: w.bob.identity.public(),
            broadcast_id: BroadcastId([4; 32]),
            from: seed,
            limit: 1 + (seed % MAX_REPLAY_LIST as u64) as u16,
        },
        Request::ReplayDelete {
            broadcast_id: BroadcastId([5; 32]),
        },
        Request::ReplayWatched {
            broadcaster: w.alice.identity.public(),
            chat: join(w, seed),
        },
        Request::LiveForward {
            broadcast_id: BroadcastId([seed as u8; 32]),
        },
        Request::ReplayViewers {
            broadcast_id: BroadcastId([6; 32]),
            from: seed as u32,
            limit: 1 + (seed % MAX_REPLAY_LIST as u64) as u16,
        },
    ]
}

/// A replay viewer's join: signed by bob for an even `seed`, anonymous
/// for an odd one.
fn join(w: &World, seed: u64) -> ChatMessage {
    let body = ChatBody {
        kind: ChatKind::Join,
        sent_at: NOW,
        token: [seed as u8; 16],
        text: String::new(),
    };
    let signer = seed.is_multiple_of(2).then_some(&w.bob.device);
    ChatMessage::seal(
        BroadcastId([5; 32]),
        seed as u32,
        &EpochKey::from_bytes([7; 32]),
        [seed as u8; 32],
        &body,
        signer,
    )
    .unwrap()
}

/// A piece of a segment whose length `seed` chooses: its last piece.
fn replay_piece(seed: u64) -> replay::Piece {
    let segment_len = MIN_SEGMENT_LEN + (seed as u32 * 7919) % (3 * REPLAY_PIECE_LEN as u32);
    let index = piece_count(segment_len) - 1;
    replay::Piece {
        segment_len,
        index,
        bytes: vec![seed as u8; piece_len(segment_len, index).unwrap()],
    }
}

/// Up to [`MAX_ANNOUNCE_ADDRS`] distinct addresses of varied lengths
/// (1 to [`MAX_ADDR_LEN`] bytes), chosen by `seed`.
fn addrs(seed: u64) -> Vec<Vec<u8>> {
    let n = 1 + (seed as usize % MAX_ANNOUNCE_ADDRS);
    (0..n)
        .map(|i| {
            let len = 1 + (seed as usize * 31 + i * 97) % MAX_ADDR_LEN;
            let mut a = vec![seed as u8; len];
            a[0] = i as u8;
            a
        })
        .collect()
}

fn responses(w: &World, seed: u64) -> Vec<Response> {
    vec![
        Response::error(ErrorCode::QuotaExceeded, "mailbox is full"),
        Response::error(ErrorCode::Other(999), ""),
        Response::Challenge {
            nonce: [seed as u8; 32],
        },
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
            bytes: w.chunks[0].clone(),
        },
        Response::Entries {
            entries: vec![Entry {
                seq: seed,
                message_id: w.clip.message_id(),
                deposited_at: NOW,
                envelope: w.envelope.clone(),
            }],
            more: seed.is_multiple_of(2),
        },
        Response::Manifest(Box::new(w.clip.manifest().clone())),
        Response::Revoked(RevokeOutcome::AlreadyRevoked),
        Response::Located {
            certificate: Box::new(w.bob.device.certificate().clone()),
            addrs: addrs(seed),
        },
        Response::ReplayPiece(replay_piece(seed)),
        Response::Forwarding { addrs: addrs(seed) },
        Response::ReplaySegments {
            entries: vec![],
            more: false,
        },
        Response::ReplayWatches {
            watches: (0..1 + seed % 4)
                .map(|i| (i as u32 * 2, join(w, seed + i)))
                .collect(),
            more: seed.is_multiple_of(2),
        },
        Response::ReplaySegments {
            entries: (0..1 + seed % MAX_REPLAY_LIST as u64)
                .map(|i| ReplayEntry {
                    seq: seed + i * 3,
                    segment_len: MIN_SEGMENT_LEN + i as u32,
                })
                .collect(),
            more: seed.is_multiple_of(3),
        },
    ]
}

fn strict<T: Codec + PartialEq + std::fmt::Debug>(v: &T) -> Result<(), TestCaseError> {
    let bytes = v.to_bytes();
    prop_assert!(bytes.len() <= MAX_FRAME_LEN);
    prop_assert_eq!(&T::decode(&bytes).unwrap(), v);
    prop_assert!(T::decode(&bytes[..bytes.len() - 1]).is_err());
    let (head, tail) = v.encode_split();
    prop_assert_eq!([head.as_slice(), tail].concat(), bytes.clone());
    let mut longer = bytes.clone();
    longer.push(0);
    prop_assert!(T::decode(&longer).is_err());
    for b in [bytes.clone(), bytes[..bytes.len() - 1].to_vec(), longer] {
        same_as_decode::<T>(b)?;
    }
    Ok(())
}

/// `decode_owned`, and `decode_parts` of the bytes split anywhere (among
/// others where a frame reader splits them, at `head_len`), accept and
/// refuse exactly what `decode` does.
fn same_as_decode<T: Codec + PartialEq + std::fmt::Debug>(
    bytes: Vec<u8>,
) -> Result<(), TestCaseError> {
    let borrowed = T::decode(&bytes);
    let head_len = bytes.first().and_then(|&b| T::head_len(b));
    let near = head_len.map_or(0..0, |h| h.saturating_sub(2)..h + 3);
    for cut in (0..=bytes.len()).filter(|c| c % 97 == 0 || near.contains(c)) {
        let (head, tail) = bytes.split_at(cut);
        prop_assert_eq!(
            &T::decode_parts(head, tail.to_vec()),
            &borrowed,
            "cut at {}",
            cut
        );
    }
    prop_assert_eq!(T::decode_owned(bytes), borrowed);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn every_message_round_trips_strictly(seed in 0u64..1000) {
        let w = world(seed);
        for r in requests(&w, seed) {
            strict(&r)?;
        }
        for r in responses(&w, seed) {
            strict(&r)?;
        }
        strict(&Notify::NewDeposit { seq: seed })?;
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
        let _ = Notify::decode(&bytes);
    }

    #[test]
    fn owned_decoding_agrees_on_chunk_shaped_garbage(
        tag in prop::sample::select(vec![0x06u8, 0x85]),
        body in prop::collection::vec(any::<u8>(), 0..80),
        len in prop::option::of(0u32..64),
    ) {
        // A chunk type byte, then bytes that may or may not hold a length
        // matching what follows.
        let mut bytes = vec![tag];
        match len {
            Some(len) if tag == 0x85 => {
                bytes.extend_from_slice(&len.to_be_bytes());
                bytes.extend_from_slice(&body);
            }
            Some(len) => {
                bytes.extend_from_slice(&[7; 32]);
                bytes.extend_from_slice(&(len % 3).to_be_bytes());
                bytes.extend_from_slice(&len.to_be_bytes());
                bytes.extend_from_slice(&body);
            }
            None => bytes.extend_from_slice(&body),
        }
        same_as_decode::<Request>(bytes.clone())?;
        same_as_decode::<Response>(bytes)?;
    }
}

#[test]
fn largest_messages_fit_in_a_frame() {
    let w = world(1);
    let big = Request::PutChunk {
        message_id: w.clip.message_id(),
        index: 0,
        bytes: vec![0; CIPHERTEXT_CHUNK_SIZE],
    };
    assert!(big.to_bytes().len() <= MAX_FRAME_LEN);
    let too_big = Request::PutChunk {
        message_id: w.clip.message_id(),
        index: 0,
        bytes: vec![0; CIPHERTEXT_CHUNK_SIZE + 1],
    };
    assert!(matches!(
        Request::decode(&too_big.to_bytes()),
        Err(DecodeError::TooLong { .. })
    ));
    assert!(matches!(
        Request::decode_owned(too_big.to_bytes()),
        Err(DecodeError::TooLong { .. })
    ));
    let bytes = too_big.to_bytes();
    let (head, tail) = bytes.split_at(Request::head_len(0x06).unwrap());
    assert!(matches!(
        Request::decode_parts(head, tail.to_vec()),
        Err(DecodeError::TooLong { .. })
    ));
    let too_big = Response::Chunk {
        bytes: vec![0; CIPHERTEXT_CHUNK_SIZE + 1],
    };
    assert!(matches!(
        Response::decode_owned(too_big.to_bytes()),
        Err(DecodeError::TooLong { .. })
    ));
}

#[test]
fn non_canonical_orders_and_limits_are_refused() {
    assert!(Request::decode(&Request::Ack { seqs: vec![2, 2] }.to_bytes()).is_err());
    assert!(Request::decode(&Request::Ack { seqs: vec![3, 2] }.to_bytes()).is_err());
    assert!(Request::decode(&Request::Ack { seqs: vec![] }.to_bytes()).is_err());
    assert!(Request::decode(&Request::List { after: 0, limit: 0 }.to_bytes()).is_err());
    assert!(
        Request::decode(
            &Request::List {
                after: 0,
                limit: 65
            }
            .to_bytes()
        )
        .is_err()
    );
    assert!(
        Response::decode(
            &Response::DepositAccepted {
                missing: vec![1, 0]
            }
            .to_bytes()
        )
        .is_err()
    );
    assert!(
        Response::decode(&[0x80, 0, 0, 0, 0]).is_err(),
        "error code 0"
    );
    assert!(Request::decode(&[0x7f]).is_err());
    let long = Response::error(ErrorCode::Internal, &"é".repeat(300));
    assert!(Response::decode(&long.to_bytes()).is_ok());
}

#[test]
fn replay_pieces_are_exactly_their_segment_cut() {
    let put = |segment_len: u32, index: u16, len: usize| {
        Request::ReplayPut {
            broadcast_id: BroadcastId([1; 32]),
            seq: 0,
            piece: replay::Piece {
                segment_len,
                index,
                bytes: vec![0; len],
            },
        }
        .to_bytes()
    };
    let two = REPLAY_PIECE_LEN as u32 + 10;
    assert!(Request::decode(&put(two, 0, REPLAY_PIECE_LEN)).is_ok());
    assert!(Request::decode(&put(two, 1, 10)).is_ok());
    // A piece of another length than its place in the segment gives.
    assert!(Request::decode(&put(two, 1, 9)).is_err());
    assert!(Request::decode(&put(two, 0, 10)).is_err());
    // No such piece, a segment too short or too long.
    assert!(Request::decode(&put(two, 2, 0)).is_err());
    assert!(Request::decode(&put(MIN_SEGMENT_LEN - 1, 0, MIN_SEGMENT_LEN as usize - 1)).is_err());
    assert!(
        Request::decode(&put(
            MAX_SEGMENT_LEN,
            MAX_REPLAY_PIECES - 1,
            MAX_SEGMENT_LEN as usize % REPLAY_PIECE_LEN
        ))
        .is_ok()
    );
    assert!(Request::decode(&put(MAX_SEGMENT_LEN + 1, 0, REPLAY_PIECE_LEN)).is_err());
    // The largest piece fits a frame.
    assert!(put(MAX_SEGMENT_LEN, 0, REPLAY_PIECE_LEN).len() <= MAX_FRAME_LEN);
    let broadcaster = world(4).alice.identity.public();
    let get = |index: u16| {
        Request::ReplayGet {
            broadcaster,
            broadcast_id: BroadcastId([1; 32]),
            seq: 0,
            index,
        }
        .to_bytes()
    };
    assert!(Request::decode(&get(MAX_REPLAY_PIECES - 1)).is_ok());
    assert!(Request::decode(&get(MAX_REPLAY_PIECES)).is_err());
    let list = |limit: u16| {
        Request::ReplayList {
            broadcaster,
            broadcast_id: BroadcastId([1; 32]),
            from: 0,
            limit,
        }
        .to_bytes()
    };
    assert!(Request::decode(&list(MAX_REPLAY_LIST as u16)).is_ok());
    assert!(Request::decode(&list(0)).is_err());
    assert!(Request::decode(&list(MAX_REPLAY_LIST as u16 + 1)).is_err());
    let listed = |seqs: &[u64]| {
        Response::ReplaySegments {
            entries: seqs
                .iter()
                .map(|&seq| ReplayEntry {
                    seq,
                    segment_len: MIN_SEGMENT_LEN,
                })
                .collect(),
            more: false,
        }
        .to_bytes()
    };
    let w = world(5);
    let watches = |numbers: &[u32]| {
        Response::ReplayWatches {
            watches: numbers.iter().map(|&n| (n, join(&w, 1))).collect(),
            more: false,
        }
        .to_bytes()
    };
    assert!(Response::decode(&watches(&[0, 7])).is_ok());
    assert!(Response::decode(&watches(&[7, 7])).is_err());
    let viewers = |limit: u16| {
        Request::ReplayViewers {
            broadcast_id: BroadcastId([1; 32]),
            from: 0,
            limit,
        }
        .to_bytes()
    };
    assert!(Request::decode(&viewers(64)).is_ok());
    assert!(Request::decode(&viewers(0)).is_err());
    assert!(Request::decode(&viewers(65)).is_err());
    assert_eq!(
        hex(&viewers(64)),
        format!("13{}000000000040", "01".repeat(32))
    );
    let forward = Request::LiveForward {
        broadcast_id: BroadcastId([0xab; 32]),
    };
    assert_eq!(hex(&forward.to_bytes()), format!("14{}", "ab".repeat(32)));
    // A forwarder is somewhere: no addresses is not an answer.
    assert!(Response::decode(&Response::Forwarding { addrs: vec![] }.to_bytes()).is_err());
    let one = Response::Forwarding {
        addrs: vec![vec![0x04, 127, 0, 0, 1, 0x06, 0x0f, 0xa1]],
    };
    assert_eq!(hex(&one.to_bytes()), "8d00010008047f000001060fa1");
    assert!(Response::decode(&listed(&[1, 2])).is_ok());
    assert!(Response::decode(&listed(&[2, 2])).is_err());
    assert!(Response::decode(&listed(&[3, 2])).is_err());
}

#[test]
fn replay_encodings_are_stable() {
    let broadcaster = Identity::from_secret(SigningSecret::from_seed(&[7; 32])).public();
    let key = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
    let get = Request::ReplayGet {
        broadcaster,
        broadcast_id: BroadcastId([0xab; 32]),
        seq: 258,
        index: 3,
    };
    assert_eq!(
        hex(&get.to_bytes()),
        format!("0f{key}{}00000000000001020003", "ab".repeat(32))
    );
    let list = Request::ReplayList {
        broadcaster,
        broadcast_id: BroadcastId([0xab; 32]),
        from: 1,
        limit: 64,
    };
    assert_eq!(
        hex(&list.to_bytes()),
        format!("10{key}{}00000000000000010040", "ab".repeat(32))
    );
    let delete = Request::ReplayDelete {
        broadcast_id: BroadcastId([0xab; 32]),
    };
    assert_eq!(hex(&delete.to_bytes()), format!("11{}", "ab".repeat(32)));
    let put = Request::ReplayPut {
        broadcast_id: BroadcastId([0xab; 32]),
        seq: 7,
        piece: replay::Piece {
            segment_len: 293,
            index: 0,
            bytes: vec![0xcd; 293],
        },
    };
    assert_eq!(
        hex(&put.to_bytes()),
        format!(
            "0e{}0000000000000007000001250000\
             00000125{}",
            "ab".repeat(32),
            "cd".repeat(293)
        )
    );
    let piece = Response::ReplayPiece(replay::Piece {
        segment_len: 293,
        index: 0,
        bytes: vec![0xcd; 293],
    });
    assert_eq!(
        hex(&piece.to_bytes()),
        format!("8a00000125000000000125{}", "cd".repeat(293))
    );
    let segments = Response::ReplaySegments {
        entries: vec![
            ReplayEntry {
                seq: 0,
                segment_len: 293,
            },
            ReplayEntry {
                seq: 2,
                segment_len: 70000,
            },
        ],
        more: true,
    };
    assert_eq!(
        hex(&segments.to_bytes()),
        "8b0002000000000000000000000125000000000000000200011170\
         01"
    );
}

#[test]
fn login_proofs_bind_the_connection_and_the_nonce() {
    let w = world(2);
    let proof = LoginProof::sign(&w.bob.device, b"relay-peer", b"bob-peer", &[1; 32]).unwrap();
    assert!(proof.verify(b"relay-peer", b"bob-peer", &[1; 32]).is_ok());
    assert!(proof.verify(b"other-relay", b"bob-peer", &[1; 32]).is_err());
    assert!(proof.verify(b"relay-peer", b"mallory", &[1; 32]).is_err());
    assert!(proof.verify(b"relay-peer", b"bob-peer", &[2; 32]).is_err());
    // Length-prefixed: moving bytes between the two peer ids changes the message.
    assert!(proof.verify(b"relay-pee", b"rbob-peer", &[1; 32]).is_err());
    assert_eq!(proof.certificate.identity_key(), w.bob.identity.public());
    assert!(LoginProof::sign(&w.alice.device, &[0; 65], b"x", &[0; 32]).is_err());
}

#[test]
fn address_lists_are_bounded_and_canonical() {
    let w = world(3);
    let announce = |addrs: Vec<Vec<u8>>| Request::Announce { addrs }.to_bytes();
    let located = |addrs: Vec<Vec<u8>>| {
        Response::Located {
            certificate: Box::new(w.bob.device.certificate().clone()),
            addrs,
        }
        .to_bytes()
    };
    let most: Vec<Vec<u8>> = (0..MAX_ANNOUNCE_ADDRS)
        .map(|i| vec![i as u8; MAX_ADDR_LEN])
        .collect();
    assert!(Request::decode(&announce(most.clone())).is_ok());
    assert!(Response::decode(&located(most.clone())).is_ok());
    let mut too_many = most.clone();
    too_many.push(vec![0xee]);
    assert!(matches!(
        Request::decode(&announce(too_many.clone())),
        Err(DecodeError::TooLong { .. })
    ));
    assert!(Response::decode(&located(too_many)).is_err());
    let too_long = vec![vec![1; MAX_ADDR_LEN + 1]];
    assert!(matches!(
        Request::decode(&announce(too_long.clone())),
        Err(DecodeError::TooLong { .. })
    ));
    assert!(Response::decode(&located(too_long)).is_err());
    for bad in [vec![vec![]], vec![vec![4, 1], vec![4, 1]]] {
        assert!(Request::decode(&announce(bad.clone())).is_err(), "{bad:?}");
        assert!(Response::decode(&located(bad.clone())).is_err(), "{bad:?}");
    }
    // Announcing nothing withdraws; locating nothing is not an answer.
    assert!(Request::decode(&announce(vec![])).is_ok());
    assert!(Response::decode(&located(vec![])).is_err());
    // A count that promises more than the body holds is truncated, not allocated.
    assert!(Request::decode(&[0x0c, 0x00, 0x08, 0x00, 0x01]).is_err());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn locate_and_announce_encodings_are_stable() {
    // /ip4/127.0.0.1/tcp/4001 and /ip6/::1/udp/4001/quic-v1, as binary multiaddrs.
    let tcp = vec![0x04, 127, 0, 0, 1, 0x06, 0x0f, 0xa1];
    let mut quic = vec![0x29];
    quic.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    quic.extend_from_slice(&[0x91, 0x02, 0x0f, 0xa1, 0xcc, 0x03]);
    let announce = Request::Announce {
        addrs: vec![tcp.clone(), quic.clone()],
    };
    assert_eq!(
        hex(&announce.to_bytes()),
        "0c00020008047f000001060fa100172900000000000000000000000000000001910\
         20fa1cc03"
    );
    let identity = Identity::from_secret(SigningSecret::from_seed(&[7; 32]));
    let locate = Request::Locate {
        identity_key: identity.public(),
    };
    assert_eq!(
        hex(&locate.to_bytes()),
        "0dea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
    );
    let device = identity.certify(
        SigningSecret::from_seed(&[8; 32]).public(),
        1,
        UnixMillis(1_700_000_000_000),
    );
    let located = Response::Located {
        certificate: Box::new(device),
        addrs: vec![tcp],
    };
    // Type, the certificate (146 bytes: version, type, identity key, device
    // key, serial, issued_at, signature), one address of 8 bytes.
    assert_eq!(
        hex(&located.to_bytes()),
        "89\
         0101\
         ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c\
         1398f62c6d1a457c51ba6a4b5f3dbd2f69fca93216218dc8997e416bd17d93ca\
         0000000000000001\
         0000018bcfe56800\
         55e426f1d228c4571ced04c322740012ba942ad9813ab59895eca212d097b5ec\
         eb224c0d3d16c9a0b9e1109946733596083b918865de1c4a7934a4e97446150e\
         0001\
         0008047f000001060fa1"
    );
    for (bytes, snapshot) in [
        (announce.to_bytes(), &announce),
        (locate.to_bytes(), &locate),
    ] {
        assert_eq!(&Request::decode(&bytes).unwrap(), snapshot);
    }
    assert_eq!(Response::decode(&located.to_bytes()).unwrap(), located);
}
