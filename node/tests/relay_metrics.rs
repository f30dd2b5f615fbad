//! `mayfly relay --metrics`: a deposit flow against the relay process, then
//! a scrape of its Prometheus endpoint over plain HTTP.

mod common;
mod mailbox_client;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::{Relay, TIMEOUT};
use mailbox_client::{Party, Peer, code, deposit_clip, rng, runtime, seal};
use mayfly_protocol::mailbox::{ErrorCode, Request, Response};

/// `GET path` on `address` with a minimal HTTP/1.1 client: (status, body).
fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT).expect("connects");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers end");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line in {head:?}"));
    (status, body.to_owned())
}

/// The value of the sample `series` (name and labels, as exposed), or 0 if
/// it is not exposed yet.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().expect("a number"))
}

#[test]
fn metrics_count_a_deposit_and_a_refused_list() {
    let home = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(home.path(), &["--metrics", "127.0.0.1:0"], 2);
    let line = relay.next_line();
    let address: SocketAddr = line
        .strip_prefix("metrics http://")
        .and_then(|l| l.strip_suffix("/metrics"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| {
            relay.fail(&format!(
                "expected `metrics http://…/metrics`, got {line:?}"
            ))
        });
    assert_ne!(address.port(), 0);

    let (status, before) = get(address, "/metrics");
    assert_eq!(status, 200, "{before}");
    assert!(before.ends_with("# EOF\n"), "{before}");
    assert_eq!(
        sample(&before, "mayfly_relay_deposits_completed_total"),
        0.0
    );
    assert_eq!(sample(&before, "mayfly_relay_store_chunks"), 0.0);
    assert_eq!(get(address, "/other").0, 404);

    let (tcp, relay_id) = (relay.tcp(), relay.peer_id);
    let chunks = runtime().block_on(async {
        let mut rng = rng(11);
        let alice = Party::new(&mut rng);
        let mut bob = Party::new(&mut rng);
        let bob_peer = Peer::connect(&tcp, relay_id).await;
        assert_eq!(bob_peer.login(&bob.device).await, Response::Ok);
        bob_peer.publish(&mut bob, 2, &mut rng).await;

        let alice_peer = Peer::connect(&tcp, relay_id).await;
        let clip = seal(600 * 1024, &mut rng);
        deposit_clip(&alice_peer, &alice, &bob, &clip, &mut rng).await;
        // Alice never logged in: her List is refused.
        let r = alice_peer.req(Request::List { after: 0, limit: 1 }).await;
        assert_eq!(code(&r), ErrorCode::Unauthenticated);
        let Response::Entries { entries, .. } = bob_peer.list().await else {
            panic!("no entries")
        };
        assert_eq!(entries.len(), 1);
        let Response::Chunk { bytes } = bob_peer
            .req(Request::GetChunk {
                hash: clip.sealed.manifest().chunk_hashes()[0],
                offset: 0,
                length: 0,
            })
            .await
        else {
            panic!("no chunk")
        };
        assert_eq!(bytes, clip.chunks[0]);

        let (_, text) = get(address, "/metrics");
        assert!(sample(&text, "mayfly_relay_connections") >= 2.0, "{text}");
        alice_peer.close().await;
        bob_peer.close().await;
        clip.chunks
    });

    let (status, text) = get(address, "/metrics");
    assert_eq!(status, 200);
    let n = chunks.len() as f64;
    let bytes: usize = chunks.iter().map(Vec::len).sum();
    for (series, at_least) in [
        ("mayfly_relay_deposits_completed_total", 1.0),
        ("mayfly_relay_store_chunks", n),
        ("mayfly_relay_store_messages", 1.0),
        ("mayfly_relay_store_envelopes", 1.0),
        ("mayfly_relay_store_identities", 1.0),
        ("mayfly_relay_store_stored_bytes", bytes as f64),
        ("mayfly_relay_chunks_stored_total", n),
        ("mayfly_relay_received_bytes_total", bytes as f64),
        ("mayfly_relay_served_bytes_total", chunks[0].len() as f64),
        ("mayfly_relay_notifications_sent_total", 1.0),
        ("mayfly_relay_requests_total{type=\"put_chunk\"}", n),
        ("mayfly_relay_requests_total{type=\"deposit\"}", 1.0),
        ("mayfly_relay_requests_total{type=\"list\"}", 2.0),
        ("mayfly_relay_responses_total{outcome=\"ok\"}", n + 3.0),
        (
            "mayfly_relay_responses_total{outcome=\"unauthenticated\"}",
            1.0,
        ),
    ] {
        let v = sample(&text, series);
        assert!(v >= at_least, "{series} = {v} < {at_least} in\n{text}");
    }
    assert_eq!(
        sample(
            &text,
            "mayfly_relay_rate_limited_total{bucket=\"requests\"}"
        ),
        0.0
    );
    assert_eq!(
        sample(&text, "mayfly_relay_responses_total{outcome=\"forbidden\"}"),
        0.0
    );
    relay.stop();
}
