//! The mailbox protocol end to end: `mayfly relay` as a subprocess, clients
//! built with the library (`net::new`, `Client::request`). Time is the real
//! clock, since the relay reads it. Every wait is bounded.

mod common;
mod mailbox_client;
mod raw_peer;

use std::time::Duration;

use common::{Relay, TIMEOUT};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use mailbox_client::{
    Clip, Party, Peer, all, code, deposit, envelope_for, now, open_entry, put, rng, runtime,
};
use mayfly_protocol::mailbox::{
    ErrorCode, LoginProof, MAX_FRAME_LEN, Notify, Request, Response, RevokeOutcome, encode_frame,
};
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use raw_peer::send_raw;

/// Seals `len` bytes of a pattern that does not repeat within a chunk.
fn seal(len: usize, rng: &mut ChaCha20Rng) -> Clip {
    mailbox_client::seal_salted(len, 0, rng)
}

/// Bob logs in and publishes prekeys (with `one_time` one-time prekeys).
async fn bob_publishes(bob_peer: &Peer, bob: &mut Party, one_time: usize, rng: &mut ChaCha20Rng) {
    bob_peer.login_and_publish(bob, one_time, rng).await;
}

/// Bob lists, fetches manifest and chunks, and opens the clip: its plaintext.
async fn bob_fetches(bob_peer: &Peer, bob: &mut Party) -> (u64, Vec<u8>) {
    let Response::Entries { entries, more } = bob_peer.list().await else {
        panic!("no entries")
    };
    assert!(!more);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    (entry.seq, open_entry(bob_peer, bob, entry).await)
}

const CLIP_LEN: usize = 600 * 1024;

#[test]
fn a_clip_travels_through_the_relay_over_tcp() {
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let mut rng = rng(1);
        let alice = Party::new(&mut rng);
        let mut bob = Party::new(&mut rng);
        let mut bob_peer = Peer::connect(&addr, relay_id).await;
        bob_publishes(&bob_peer, &mut bob, 2, &mut rng).await;

        let alice_peer = Peer::connect(&addr, relay_id).await;
        let clip = seal(CLIP_LEN, &mut rng);
        assert_eq!(clip.chunks.len(), 3);
        let (env, first) = envelope_for(&alice_peer, &alice, &bob, &clip, &mut rng).await;
        let first_otk = first.one_time_prekey.clone().expect("a one-time prekey");
        // The one-time prekey was handed out once: the next fetch gets another or none.
        let Response::Bundle(second) = alice_peer
            .req(Request::FetchBundle {
                identity_key: bob.key(),
            })
            .await
        else {
            panic!("no second bundle")
        };
        assert_ne!(second.one_time_prekey, Some(first_otk.clone()));
        assert_eq!(env.prekey(), first_otk.public());

        let r = alice_peer.req(deposit(&bob, &env, &clip)).await;
        assert_eq!(
            r,
            Response::DepositAccepted {
                missing: all(&clip)
            }
        );
        for i in 0..clip.chunks.len() {
            assert_eq!(alice_peer.req(put(&clip, i)).await, Response::Ok);
        }
        let Notify::NewDeposit { seq } = bob_peer.next_notification().await;

        let (listed, plaintext) = bob_fetches(&bob_peer, &mut bob).await;
        assert_eq!(listed, seq);
        assert!(plaintext == clip.content, "plaintext differs");

        assert_eq!(
            bob_peer.req(Request::Ack { seqs: vec![seq] }).await,
            Response::Ok
        );
        let r = bob_peer
            .req(Request::GetManifest {
                message_id: clip.sealed.message_id(),
            })
            .await;
        assert_eq!(code(&r), ErrorCode::NotFound);
        alice_peer.close().await;
        bob_peer.close().await;
    });
    relay.stop();
}

#[test]
fn a_clip_travels_through_the_relay_over_quic() {
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    let (addr, relay_id) = (relay.quic(), relay.peer_id);
    runtime().block_on(async {
        let mut rng = rng(2);
        let alice = Party::new(&mut rng);
        let mut bob = Party::new(&mut rng);
        let bob_peer = Peer::connect(&addr, relay_id).await;
        bob_publishes(&bob_peer, &mut bob, 1, &mut rng).await;
        let alice_peer = Peer::connect(&addr, relay_id).await;
        let clip = seal(100 * 1024, &mut rng);
        let (env, _) = envelope_for(&alice_peer, &alice, &bob, &clip, &mut rng).await;
        let r = alice_peer.req(deposit(&bob, &env, &clip)).await;
        assert_eq!(
            r,
            Response::DepositAccepted {
                missing: all(&clip)
            }
        );
        for i in 0..clip.chunks.len() {
            assert_eq!(alice_peer.req(put(&clip, i)).await, Response::Ok);
        }
        let (_, plaintext) = bob_fetches(&bob_peer, &mut bob).await;
        assert!(plaintext == clip.content, "plaintext differs");
        alice_peer.close().await;
        bob_peer.close().await;
    });
    relay.stop();
}

#[test]
fn an_upload_resumes_after_a_broken_connection() {
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let mut rng = rng(3);
        let alice = Party::new(&mut rng);
        let mut bob = Party::new(&mut rng);
        let bob_peer = Peer::connect(&addr, relay_id).await;
        bob_publishes(&bob_peer, &mut bob, 1, &mut rng).await;
        let alice_key = Keypair::generate_ed25519();
        let alice_peer = Peer::connect_with(&addr, relay_id, alice_key.clone()).await;
        let clip = seal(5 * CHUNK_SIZE, &mut rng);
        let n = clip.chunks.len();
        assert!(n >= 4);
        let (env, _) = envelope_for(&alice_peer, &alice, &bob, &clip, &mut rng).await;
        let r = alice_peer.req(deposit(&bob, &env, &clip)).await;
        assert_eq!(
            r,
            Response::DepositAccepted {
                missing: all(&clip)
            }
        );
        for i in (0..n).step_by(2) {
            assert_eq!(alice_peer.req(put(&clip, i)).await, Response::Ok);
        }
        alice_peer.close().await;

        // Not listed while incomplete.
        let r = bob_peer
            .req(Request::List {
                after: 0,
                limit: 64,
            })
            .await;
        assert_eq!(
            r,
            Response::Entries {
                entries: vec![],
                more: false
            }
        );

        let alice_peer = Peer::connect_with(&addr, relay_id, alice_key).await;
        let r = alice_peer.req(deposit(&bob, &env, &clip)).await;
        let odd: Vec<u32> = (1..n as u32).step_by(2).collect();
        assert_eq!(
            r,
            Response::DepositAccepted {
                missing: odd.clone()
            }
        );
        for i in odd {
            assert_eq!(alice_peer.req(put(&clip, i as usize)).await, Response::Ok);
        }
        let r = alice_peer.req(deposit(&bob, &env, &clip)).await;
        assert_eq!(r, Response::DepositAccepted { missing: vec![] });
        let (_, plaintext) = bob_fetches(&bob_peer, &mut bob).await;
        assert!(plaintext == clip.content, "plaintext differs");
        alice_peer.close().await;
        bob_peer.close().await;
    });
    relay.stop();
}

#[test]
fn mailboxes_need_a_login_bound_to_the_connection() {
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let mut rng = rng(4);
        let alice = Party::new(&mut rng);
        let mut bob = Party::new(&mut rng);
        let anon = Peer::connect(&addr, relay_id).await;
        let r = anon.req(Request::List { after: 0, limit: 1 }).await;
        assert_eq!(code(&r), ErrorCode::Unauthenticated);
        let r = anon.req(Request::Ack { seqs: vec![1] }).await;
        assert_eq!(code(&r), ErrorCode::Unauthenticated);
        let r = anon
            .req(Request::PublishPrekeys {
                signed_prekey: bob.prekeys.signed_prekey().clone(),
                one_time: vec![],
            })
            .await;
        assert_eq!(code(&r), ErrorCode::Unauthenticated);

        // Login without a challenge, with a proof for another nonce, for
        // another client peer, for another relay: all refused.
        let client_id = anon.client.local_peer_id().to_bytes();
        let proof =
            LoginProof::sign(&bob.device, &relay_id.to_bytes(), &client_id, &[0; 32]).unwrap();
        assert_ne!(anon.req(Request::Login(proof.clone())).await, Response::Ok);
        let Response::Challenge { nonce } = anon.req(Request::Challenge).await else {
            panic!()
        };
        assert_ne!(anon.req(Request::Login(proof)).await, Response::Ok);
        let wrong_peer = PeerId::random().to_bytes();
        for (relay_bytes, client_bytes) in [
            (relay_id.to_bytes(), wrong_peer.clone()),
            (wrong_peer.clone(), client_id.clone()),
        ] {
            let Response::Challenge { nonce } = anon.req(Request::Challenge).await else {
                panic!()
            };
            let proof = LoginProof::sign(&bob.device, &relay_bytes, &client_bytes, &nonce).unwrap();
            assert_ne!(anon.req(Request::Login(proof)).await, Response::Ok);
        }
        // A good proof for a nonce already used (the one above) is refused too.
        let proof =
            LoginProof::sign(&bob.device, &relay_id.to_bytes(), &client_id, &nonce).unwrap();
        assert_ne!(anon.req(Request::Login(proof)).await, Response::Ok);
        let r = anon.req(Request::List { after: 0, limit: 1 }).await;
        assert_eq!(code(&r), ErrorCode::Unauthenticated);

        // Bob gets a deposit; Alice, logged in as herself, sees only her own mailbox.
        let bob_peer = Peer::connect(&addr, relay_id).await;
        bob_publishes(&bob_peer, &mut bob, 1, &mut rng).await;
        let alice_peer = Peer::connect(&addr, relay_id).await;
        let clip = seal(1000, &mut rng);
        let (env, _) = envelope_for(&alice_peer, &alice, &bob, &clip, &mut rng).await;
        alice_peer.req(deposit(&bob, &env, &clip)).await;
        assert_eq!(alice_peer.req(put(&clip, 0)).await, Response::Ok);
        assert_eq!(alice_peer.login(&alice.device).await, Response::Ok);
        let r = alice_peer
            .req(Request::List {
                after: 0,
                limit: 64,
            })
            .await;
        assert_eq!(
            r,
            Response::Entries {
                entries: vec![],
                more: false
            }
        );
        assert_eq!(
            alice_peer.req(Request::Ack { seqs: vec![1] }).await,
            Response::Ok
        );
        let Response::Entries { entries, .. } = bob_peer
            .req(Request::List {
                after: 0,
                limit: 64,
            })
            .await
        else {
            panic!()
        };
        assert_eq!(entries.len(), 1);
        for p in [anon, alice_peer, bob_peer] {
            p.close().await;
        }
    });
    relay.stop();
}

fn frame<M: Codec>(m: &M) -> Vec<u8> {
    encode_frame(&m.to_bytes())
}

async fn still_serves(addr: &Multiaddr, relay: PeerId) {
    let p = Peer::connect(addr, relay).await;
    assert!(matches!(
        p.req(Request::Challenge).await,
        Response::Challenge { .. }
    ));
    p.close().await;
}

#[test]
fn revocation_deletes_and_forged_records_do_not_decode() {
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let mut rng = rng(5);
        let alice = Party::new(&mut rng);
        let mut bob = Party::new(&mut rng);
        let bob_peer = Peer::connect(&addr, relay_id).await;
        bob_publishes(&bob_peer, &mut bob, 1, &mut rng).await;
        let alice_peer = Peer::connect(&addr, relay_id).await;
        let clip = seal(1000, &mut rng);
        let (env, _) = envelope_for(&alice_peer, &alice, &bob, &clip, &mut rng).await;
        alice_peer.req(deposit(&bob, &env, &clip)).await;
        assert_eq!(alice_peer.req(put(&clip, 0)).await, Response::Ok);

        // A record with a forged signature is not even a request.
        let record = clip.sealed.revoke(now());
        let mut forged = frame(&Request::Revoke(record.clone()));
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let answer = send_raw(&addr, forged).await;
        if let Some(bytes) = answer {
            let r = Response::decode(&bytes[4..]).expect("a framed response");
            assert_eq!(code(&r), ErrorCode::Malformed);
        }
        let r = alice_peer
            .req(Request::GetManifest {
                message_id: clip.sealed.message_id(),
            })
            .await;
        assert!(matches!(r, Response::Manifest(_)), "{r:?}");

        let r = alice_peer.req(Request::Revoke(record.clone())).await;
        assert_eq!(r, Response::Revoked(RevokeOutcome::Revoked));
        let r = alice_peer.req(Request::Revoke(record)).await;
        assert_eq!(r, Response::Revoked(RevokeOutcome::AlreadyRevoked));
        let r = alice_peer
            .req(Request::GetManifest {
                message_id: clip.sealed.message_id(),
            })
            .await;
        assert_eq!(code(&r), ErrorCode::NotFound);
        let r = alice_peer.req(deposit(&bob, &env, &clip)).await;
        assert_eq!(code(&r), ErrorCode::Revoked);
        let r = bob_peer
            .req(Request::List {
                after: 0,
                limit: 64,
            })
            .await;
        assert_eq!(
            r,
            Response::Entries {
                entries: vec![],
                more: false
            }
        );
        alice_peer.close().await;
        bob_peer.close().await;
    });
    relay.stop();
}

#[test]
fn garbage_on_a_stream_does_not_hurt_the_relay() {
    let home = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(home.path(), &[], 2);
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let mut rng = rng(6);
        let mut random = vec![0u8; 4096];
        rand_core::Rng::fill_bytes(&mut rng, &mut random);
        let oversize = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes().to_vec();
        let mut huge = u32::MAX.to_be_bytes().to_vec();
        huge.extend_from_slice(&[0; 64]);
        let truncated = {
            let mut f = frame(&Request::List { after: 1, limit: 2 });
            f.truncate(f.len() - 3);
            f
        };
        let trailing = {
            let mut f = encode_frame(&[0x01, 0x00]);
            f.extend_from_slice(&[9; 9]);
            f
        };
        for bytes in [
            random,
            oversize,
            huge,
            truncated,
            vec![0, 0, 0, 0],
            encode_frame(&[0x7f]),
            trailing,
            vec![],
        ] {
            if let Some(answer) = send_raw(&addr, bytes).await {
                // Whatever comes back is a well-formed error response.
                let r = Response::decode(&answer[4..]).expect("a framed response");
                assert_eq!(code(&r), ErrorCode::Malformed);
            }
        }
        // A valid request over the raw codec is answered.
        let answer = send_raw(&addr, frame(&Request::Challenge))
            .await
            .expect("answer");
        assert!(matches!(
            Response::decode(&answer[4..]).unwrap(),
            Response::Challenge { .. }
        ));
        still_serves(&addr, relay_id).await;
    });
    assert!(relay.is_running());
    relay.stop();
}

#[test]
fn a_restarted_relay_keeps_its_mailboxes() {
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    let mut rng = rng(7);
    let alice = Party::new(&mut rng);
    let mut bob = Party::new(&mut rng);
    let clip = seal(300 * 1024, &mut rng);
    let rt = runtime();
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    rt.block_on(async {
        let bob_peer = Peer::connect(&addr, relay_id).await;
        bob_publishes(&bob_peer, &mut bob, 1, &mut rng).await;
        bob_peer.close().await;
        let alice_peer = Peer::connect(&addr, relay_id).await;
        let (env, _) = envelope_for(&alice_peer, &alice, &bob, &clip, &mut rng).await;
        let r = alice_peer.req(deposit(&bob, &env, &clip)).await;
        assert_eq!(
            r,
            Response::DepositAccepted {
                missing: all(&clip)
            }
        );
        for i in 0..clip.chunks.len() {
            assert_eq!(alice_peer.req(put(&clip, i)).await, Response::Ok);
        }
        alice_peer.close().await;
    });
    relay.stop();

    let relay = Relay::start(home.path(), &[], 2);
    assert_eq!(relay.peer_id, relay_id);
    let addr = relay.tcp();
    rt.block_on(async {
        let bob_peer = Peer::connect(&addr, relay_id).await;
        assert_eq!(bob_peer.login(&bob.device).await, Response::Ok);
        let (_, plaintext) = bob_fetches(&bob_peer, &mut bob).await;
        assert!(plaintext == clip.content, "plaintext differs");
        bob_peer.close().await;
    });
    relay.stop();
}

/// Expiry with injected time: the relay restarted two hours ahead
/// (`MAYFLY_CLOCK_OFFSET_MS`) no longer lists, describes or serves a clip
/// that expired in between, and keeps the one that did not.
#[test]
fn an_expired_clip_is_gone_from_a_relay_whose_clock_has_passed_its_expiry() {
    const HOUR_MS: u64 = 3_600_000;
    let home = tempfile::tempdir().unwrap();
    let relay = Relay::start(home.path(), &[], 2);
    let mut rng = rng(8);
    let alice = Party::new(&mut rng);
    let mut bob = Party::new(&mut rng);
    let content = |salt: u8| -> Vec<u8> {
        (0..300 * 1024u32)
            .map(|i| i.wrapping_mul(2_654_435_761) as u8 ^ salt)
            .collect()
    };
    let short = mailbox_client::seal_until(content(1), now().plus(HOUR_MS), &mut rng);
    let long = mailbox_client::seal_content(content(2), &mut rng);
    let rt = runtime();
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    rt.block_on(async {
        let bob_peer = Peer::connect(&addr, relay_id).await;
        bob_publishes(&bob_peer, &mut bob, 2, &mut rng).await;
        let alice_peer = Peer::connect(&addr, relay_id).await;
        for clip in [&short, &long] {
            let (env, _) = envelope_for(&alice_peer, &alice, &bob, clip, &mut rng).await;
            let r = alice_peer.req(deposit(&bob, &env, clip)).await;
            assert_eq!(r, Response::DepositAccepted { missing: all(clip) });
            alice_peer.upload(clip).await;
        }
        let Response::Entries { entries, .. } = bob_peer.list().await else {
            panic!("no entries")
        };
        assert_eq!(entries.len(), 2);
        alice_peer.close().await;
        bob_peer.close().await;
    });
    relay.stop();

    let offset = (2 * HOUR_MS).to_string();
    let relay = Relay::start_with_env(
        home.path(),
        &[],
        2,
        &[("MAYFLY_CLOCK_OFFSET_MS", offset.as_str())],
    );
    let addr = relay.tcp();
    rt.block_on(async {
        let bob_peer = Peer::connect(&addr, relay_id).await;
        assert_eq!(bob_peer.login(&bob.device).await, Response::Ok);
        // Only the clip that has not expired is listed, and it still opens.
        let (_, plaintext) = bob_fetches(&bob_peer, &mut bob).await;
        assert!(
            plaintext == long.content,
            "the listed clip is not the long-lived one"
        );
        let r = bob_peer
            .req(Request::GetManifest {
                message_id: short.id(),
            })
            .await;
        assert_eq!(code(&r), ErrorCode::NotFound, "{r:?}");
        // The collector runs when the relay starts: the expired clip's
        // chunks go with it (bounded wait for that run to commit).
        let hash = short.sealed.manifest().chunk_hashes()[0];
        let get = Request::GetChunk {
            hash,
            offset: 0,
            length: 0,
        };
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            match bob_peer.req(get.clone()).await {
                Response::Chunk { .. } => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "expired chunk still served"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                r => {
                    assert_eq!(code(&r), ErrorCode::NotFound, "{r:?}");
                    break;
                }
            }
        }
        let hash = long.sealed.manifest().chunk_hashes()[0];
        let r = bob_peer
            .req(Request::GetChunk {
                hash,
                offset: 0,
                length: 0,
            })
            .await;
        assert!(matches!(r, Response::Chunk { .. }), "{r:?}");
        bob_peer.close().await;
    });
    relay.stop();
}

/// Writes `bytes` on a new chunk stream of `peer`, closes its side, and
/// returns everything the relay writes back before the stream ends (an
/// error read counts as the end: the relay reset it).
async fn upload_raw(peer: &Peer, bytes: &[u8]) -> Vec<u8> {
    use futures::{AsyncReadExt, AsyncWriteExt};
    let mut stream = peer.client.open_chunks(peer.relay).await.expect("stream");
    let _ = stream.write_all(bytes).await;
    let _ = stream.close().await;
    let mut back = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut back))
        .await
        .expect("the relay answers or ends the stream in time");
    back
}

/// Splits `bytes` into frame bodies, decoded as responses.
fn responses(mut bytes: &[u8]) -> Vec<Response> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        out.push(Response::decode(&bytes[4..4 + len]).expect("a response"));
        bytes = &bytes[4 + len..];
    }
    out
}

#[test]
fn chunks_travel_on_a_chunk_stream_and_garbage_on_one_ends_only_that_stream() {
    let home = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(home.path(), &[], 2);
    let (addr, relay_id) = (relay.tcp(), relay.peer_id);
    runtime().block_on(async {
        let mut rng = rng(8);
        let alice = Party::new(&mut rng);
        let mut bob = Party::new(&mut rng);
        let bob_peer = Peer::connect(&addr, relay_id).await;
        bob_publishes(&bob_peer, &mut bob, 1, &mut rng).await;
        let alice_peer = Peer::connect(&addr, relay_id).await;
        let clip = seal(3 * CHUNK_SIZE + 100, &mut rng);
        let n = clip.chunks.len();
        let (env, _) = envelope_for(&alice_peer, &alice, &bob, &clip, &mut rng).await;
        let r = alice_peer.req(deposit(&bob, &env, &clip)).await;
        assert_eq!(
            r,
            Response::DepositAccepted {
                missing: all(&clip)
            }
        );

        // Garbage ends the stream with nothing written back.
        let oversize = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes().to_vec();
        let mut truncated = frame(&put(&clip, 0));
        truncated.truncate(truncated.len() - 7);
        let mut random = vec![0u8; 4096];
        rand_core::Rng::fill_bytes(&mut rng, &mut random);
        for bytes in [
            oversize,
            vec![0, 0, 0, 0],
            truncated,
            random,
            encode_frame(&[0x7f]),
            // A valid request, but not a PutChunk.
            frame(&Request::Challenge),
        ] {
            assert_eq!(upload_raw(&alice_peer, &bytes).await, Vec::<u8>::new());
        }

        // Frames before the garbage are answered, in order; the chunk with
        // wrong bytes is refused without ending the stream.
        let mut wrong = clip.chunks[1].clone();
        wrong[0] ^= 1;
        let mut bytes = frame(&put(&clip, 0));
        bytes.extend(frame(&Request::PutChunk {
            message_id: clip.sealed.message_id(),
            index: 1,
            bytes: wrong,
        }));
        bytes.extend(frame(&put(&clip, 1)));
        bytes.extend(frame(&Request::List { after: 0, limit: 1 }));
        bytes.extend(frame(&put(&clip, 2)));
        let back = responses(&upload_raw(&alice_peer, &bytes).await);
        assert_eq!(back.len(), 3, "{back:?}");
        assert_eq!(back[0], Response::Ok);
        assert_eq!(code(&back[1]), ErrorCode::Conflict);
        assert_eq!(back[2], Response::Ok);
        let r = alice_peer.req(deposit(&bob, &env, &clip)).await;
        let rest: Vec<u32> = (2..n as u32).collect();
        assert_eq!(
            r,
            Response::DepositAccepted {
                missing: rest.clone()
            }
        );

        // The rest on one stream, as the client library sends them.
        let stream = alice_peer.client.open_chunks(relay_id).await.unwrap();
        let mut answers = Vec::new();
        mayfly_node::net::chunks::send(
            stream,
            rest.len(),
            |i| Ok::<_, ()>(put(&clip, rest[i] as usize)),
            |_, r| {
                answers.push(r);
                Ok(())
            },
            TIMEOUT,
        )
        .await
        .unwrap();
        assert_eq!(answers, vec![Response::Ok; rest.len()]);
        let (_, plaintext) = bob_fetches(&bob_peer, &mut bob).await;
        assert!(plaintext == clip.content, "plaintext differs");

        // Downloads on one stream: every chunk, then one the relay lacks.
        let stream = bob_peer.client.open_chunks(relay_id).await.unwrap();
        let hashes = clip.sealed.manifest().chunk_hashes().to_vec();
        let mut got = Vec::new();
        mayfly_node::net::chunks::send(
            stream,
            n + 1,
            |i| {
                Ok::<_, ()>(Request::GetChunk {
                    hash: hashes.get(i).copied().unwrap_or([9; 32]),
                    offset: 0,
                    length: 0,
                })
            },
            |_, r| {
                got.push(r);
                Ok(())
            },
            TIMEOUT,
        )
        .await
        .unwrap();
        for (i, r) in got[..n].iter().enumerate() {
            assert_eq!(
                r,
                &Response::Chunk {
                    bytes: clip.chunks[i].clone()
                }
            );
        }
        assert_eq!(code(&got[n]), ErrorCode::NotFound);
        still_serves(&addr, relay_id).await;
        alice_peer.close().await;
        bob_peer.close().await;
    });
    assert!(relay.is_running());
    relay.stop();
}
