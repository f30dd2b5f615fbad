//! `kill -9` in the middle of uploads, repeated on one `--home`: whatever
//! the relay acknowledged survives, a partial deposit is never listed, and an
//! upload resumes across the crash (RELAY.md §5.2).
//!
//! Each round deposits three fresh clips (¼–1 MiB, one per mailbox) from
//! three clients, uploads their chunks concurrently, and SIGKILLs the relay
//! once N chunk acknowledgements have arrived (N from a seeded RNG). After a
//! restart on the same directory the recipients list, open and acknowledge
//! what they find, and the senders resume what was incomplete. Every wait is
//! bounded.

mod common;
mod mailbox_client;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::{Relay, TIMEOUT, kill9};
use futures::future::join_all;
use libp2p::{Multiaddr, PeerId};
use mailbox_client::{
    Clip, Party, Peer, list_all, now, open_entry, rng as seeded, seal_salted as seal,
};
use mayfly_protocol::mailbox::{Entry, ErrorCode, Request, Response};
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use tokio::sync::watch;

const ROUNDS: usize = 5;
const MAILBOXES: usize = 3;
const MIB: usize = 1 << 20;

/// A number in `lo..=hi` from `rng`.
fn pick(rng: &mut ChaCha20Rng, lo: usize, hi: usize) -> usize {
    lo + (rng.next_u64() % (hi - lo + 1) as u64) as usize
}

/// One upload: the clip, its recipient, its envelope, and what the relay
/// answered. `sent` holds every chunk whose PutChunk left the client (so may
/// have reached the relay), `acked` those answered Ok.
struct Upload {
    round: usize,
    to: usize,
    clip: Clip,
    envelope: Envelope,
    sent: BTreeSet<u32>,
    acked: BTreeSet<u32>,
}

impl Upload {
    fn all(&self) -> BTreeSet<u32> {
        (0..self.clip.chunks.len() as u32).collect()
    }
    fn complete(&self) -> bool {
        self.acked.len() == self.clip.chunks.len()
    }
    fn deposit(&self, bobs: &[Party]) -> Request {
        Request::Deposit {
            mailbox: bobs[self.to].key(),
            envelope: self.envelope.clone(),
            manifest: self.clip.sealed.manifest().clone(),
        }
    }
    fn put(&self, i: u32) -> Request {
        Request::PutChunk {
            message_id: self.clip.id(),
            index: i,
            bytes: self.clip.chunks[i as usize].clone(),
        }
    }
}

/// What the concurrent uploaders report back.
#[derive(Default)]
struct Progress {
    sent: Vec<BTreeSet<u32>>,
    acked: Vec<BTreeSet<u32>>,
}

/// Counts of what the rounds saw, for the summary line.
#[derive(Default, Debug)]
struct Tally {
    acked_chunks: usize,
    complete_at_kill: usize,
    incomplete_at_kill: usize,
    listed_with_last_ack_lost: usize,
    resumed: usize,
    opened: usize,
}

/// After a restart: each recipient lists its mailbox. Every upload whose
/// chunks were all acknowledged must be listed and open to its plaintext;
/// an upload with a chunk that never left the client must not be listed
/// (one whose only unacknowledged chunks were in flight at the kill may be:
/// the relay may have made them durable before it died). Everything listed
/// is opened and acknowledged, and must not come back.
async fn check(
    addr: &Multiaddr,
    relay_id: PeerId,
    bobs: &mut [Party],
    open: &mut Vec<Upload>,
    gone: &mut BTreeSet<MessageId>,
    tally: &mut Tally,
) {
    let results = {
        let (open, gone) = (&*open, &*gone);
        join_all(bobs.iter_mut().enumerate().map(|(b, bob)| {
            let uploads = open.iter().filter(|u| u.to == b).collect();
            check_mailbox(addr, relay_id, b, bob, uploads, gone)
        }))
        .await
    };
    for (ids, last_ack_lost) in results {
        tally.opened += ids.len();
        tally.listed_with_last_ack_lost += last_ack_lost;
        gone.extend(ids);
    }
    open.retain(|u| !gone.contains(&u.clip.id()));
}

/// [`check`] for mailbox `b`: returns the ids it listed (now opened and
/// acknowledged) and how many of them had a chunk acknowledgement lost to
/// the kill.
async fn check_mailbox(
    addr: &Multiaddr,
    relay_id: PeerId,
    b: usize,
    bob: &mut Party,
    uploads: Vec<&Upload>,
    gone: &BTreeSet<MessageId>,
) -> (Vec<MessageId>, usize) {
    let peer = Peer::connect(addr, relay_id).await;
    peer.login_ok(&bob.device).await;
    let entries = list_all(&peer).await;
    let listed: BTreeMap<MessageId, &Entry> = entries.iter().map(|e| (e.message_id, e)).collect();
    assert_eq!(listed.len(), entries.len(), "an id listed twice");
    for id in listed.keys() {
        assert!(!gone.contains(id), "an acknowledged entry came back");
    }
    let mut seqs = Vec::new();
    let mut last_ack_lost = 0;
    for up in uploads {
        let whole_sent = up.sent.len() == up.clip.chunks.len();
        match listed.get(&up.clip.id()) {
            None => assert!(
                !up.complete(),
                "round {} clip to {b}: every chunk acknowledged, yet not listed",
                up.round
            ),
            Some(entry) => {
                assert!(
                    whole_sent,
                    "round {} clip to {b}: listed though chunks {:?} never reached the relay",
                    up.round,
                    up.all().difference(&up.sent).collect::<Vec<_>>()
                );
                if !up.complete() {
                    last_ack_lost += 1;
                }
                let plaintext = open_entry(&peer, bob, entry).await;
                assert!(plaintext == up.clip.content, "plaintext differs");
                seqs.push(entry.seq);
            }
        }
    }
    assert_eq!(
        seqs.len(),
        listed.len(),
        "mailbox {b} lists entries nobody deposited"
    );
    if !seqs.is_empty() {
        seqs.sort_unstable();
        assert_eq!(peer.req(Request::Ack { seqs }).await, Response::Ok);
    }
    for id in listed.keys() {
        let r = peer.req(Request::GetManifest { message_id: *id }).await;
        assert!(
            matches!(
                r,
                Response::Error {
                    code: ErrorCode::NotFound,
                    ..
                }
            ),
            "{r:?}"
        );
    }
    peer.close().await;
    (listed.into_keys().collect(), last_ack_lost)
}

/// Resumes every upload still open: the repeated deposit must name no chunk
/// the relay acknowledged and every chunk it never received; then the
/// missing ones are sent, so the clip is complete.
async fn resume(
    addr: &Multiaddr,
    relay_id: PeerId,
    bobs: &[Party],
    open: &mut [Upload],
    tally: &mut Tally,
) {
    let peer = Peer::connect(addr, relay_id).await;
    join_all(open.iter_mut().map(|up| resume_one(&peer, bobs, up))).await;
    tally.resumed += open.len();
    peer.close().await;
}

async fn resume_one(peer: &Peer, bobs: &[Party], up: &mut Upload) {
    let Response::DepositAccepted { missing } = peer.req(up.deposit(bobs)).await else {
        panic!("the repeated deposit is refused")
    };
    let missing: BTreeSet<u32> = missing.into_iter().collect();
    let unacked: BTreeSet<u32> = up.all().difference(&up.acked).copied().collect();
    let unsent: BTreeSet<u32> = up.all().difference(&up.sent).copied().collect();
    assert!(
        missing.is_subset(&unacked),
        "round {}: chunks {:?} acknowledged before the kill are missing after it",
        up.round,
        missing.intersection(&up.acked).collect::<Vec<_>>()
    );
    assert!(
        unsent.is_subset(&missing),
        "round {}: chunks {:?} never sent are not missing",
        up.round,
        unsent.difference(&missing).collect::<Vec<_>>()
    );
    for &i in &missing {
        assert_eq!(peer.req(up.put(i)).await, Response::Ok);
    }
    up.acked = up.all();
    up.sent = up.all();
    let r = peer.req(up.deposit(bobs)).await;
    assert_eq!(r, Response::DepositAccepted { missing: vec![] });
}

/// Three clients upload concurrently; the relay is SIGKILLed after `kill_at`
/// chunk acknowledgements. Returns the uploads with what was sent and acked.
async fn upload_and_kill(
    addr: &Multiaddr,
    relay_id: PeerId,
    mut uploads: Vec<Upload>,
    bobs: &[Party],
    relay: Relay,
    kill_at: usize,
) -> Vec<Upload> {
    // Deposits first, each from its own client, all acknowledged.
    let mut peers = Vec::new();
    for up in &uploads {
        let peer = Peer::connect(addr, relay_id).await;
        let r = peer.req(up.deposit(bobs)).await;
        let expected: Vec<u32> = up.all().into_iter().collect();
        assert_eq!(r, Response::DepositAccepted { missing: expected });
        peers.push(peer);
    }
    let progress = Arc::new(Mutex::new(Progress {
        sent: vec![BTreeSet::new(); uploads.len()],
        acked: vec![BTreeSet::new(); uploads.len()],
    }));
    let (count_tx, mut count_rx) = watch::channel(0usize);
    let count_tx = Arc::new(count_tx);
    let mut tasks = Vec::new();
    for (k, (peer, up)) in peers.into_iter().zip(&uploads).enumerate() {
        let puts: Vec<(u32, Request)> = (0..up.clip.chunks.len() as u32)
            .map(|i| (i, up.put(i)))
            .collect();
        let progress = progress.clone();
        let count_tx = count_tx.clone();
        tasks.push(tokio::spawn(async move {
            for (i, put) in puts {
                progress.lock().unwrap().sent[k].insert(i);
                match peer.try_req(put).await {
                    Ok(Response::Ok) => {
                        progress.lock().unwrap().acked[k].insert(i);
                        count_tx.send_modify(|n| *n += 1);
                    }
                    // The relay is gone: the connection failed or closed.
                    Err(_) => break,
                    Ok(other) => panic!("PutChunk {i} answered {other:?}"),
                }
            }
            peer
        }));
    }
    tokio::time::timeout(TIMEOUT, count_rx.wait_for(|n| *n >= kill_at))
        .await
        .expect("acknowledgements in time")
        .expect("a sender lives");
    kill9(relay);
    for task in tasks {
        let peer = tokio::time::timeout(TIMEOUT, task)
            .await
            .expect("uploaders stop once the relay is gone")
            .expect("uploader");
        peer.close().await;
    }
    let progress = progress.lock().unwrap();
    for (k, up) in uploads.iter_mut().enumerate() {
        up.sent = progress.sent[k].clone();
        up.acked = progress.acked[k].clone();
    }
    uploads
}

#[test]
fn acknowledged_uploads_survive_sigkill_and_partial_ones_resume() {
    let started = Instant::now();
    let home = tempfile::tempdir().unwrap();
    let mut rng = seeded(0x6b696c6c);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let alice = Party::new(&mut rng);
    let mut bobs: Vec<Party> = (0..MAILBOXES).map(|_| Party::new(&mut rng)).collect();

    let mut relay = Relay::start(home.path(), &[], 2);
    let relay_id = relay.peer_id;
    rt.block_on(async {
        let addr = relay.tcp();
        for bob in bobs.iter_mut() {
            let peer = Peer::connect(&addr, relay_id).await;
            peer.login_ok(&bob.device).await;
            let one_time = bob
                .prekeys
                .issue_one_time(&bob.device, ROUNDS + 2, now(), &mut rng);
            let r = peer
                .req(Request::PublishPrekeys {
                    signed_prekey: bob.prekeys.signed_prekey().clone(),
                    one_time,
                })
                .await;
            assert_eq!(r, Response::Ok);
            peer.close().await;
        }
    });

    let mut open: Vec<Upload> = Vec::new();
    let mut gone = BTreeSet::new();
    let mut tally = Tally::default();
    let mut kill_points = Vec::new();
    for round in 0..=ROUNDS {
        let addr = relay.tcp();
        let last = round == ROUNDS;
        let uploads = rt.block_on(async {
            let mut uploads = Vec::new();
            if last {
                return uploads;
            }
            let peer = Peer::connect(&addr, relay_id).await;
            for (to, bob) in bobs.iter().enumerate() {
                let len = pick(&mut rng, MIB / 4, MIB);
                let clip = seal(len, (round * MAILBOXES + to) as u8, &mut rng);
                let envelope = peer.envelope(&alice, bob, &clip, &mut rng).await;
                uploads.push(Upload {
                    round,
                    to,
                    clip,
                    envelope,
                    sent: BTreeSet::new(),
                    acked: BTreeSet::new(),
                });
            }
            peer.close().await;
            uploads
        });
        let total: usize = uploads.iter().map(|u| u.clip.chunks.len()).sum();
        // The last pass kills an idle relay: it checks the resumed uploads once more.
        let kill_at = if last { 0 } else { pick(&mut rng, 0, total) };
        kill_points.push((kill_at, total));
        let uploads = rt.block_on(upload_and_kill(
            &addr, relay_id, uploads, &bobs, relay, kill_at,
        ));
        for up in &uploads {
            tally.acked_chunks += up.acked.len();
            if up.complete() {
                tally.complete_at_kill += 1;
            } else {
                tally.incomplete_at_kill += 1;
            }
        }
        open.extend(uploads);

        relay = Relay::start(home.path(), &[], 2);
        assert_eq!(relay.peer_id, relay_id, "the relay keeps its identity");
        let addr = relay.tcp();
        rt.block_on(async {
            check(&addr, relay_id, &mut bobs, &mut open, &mut gone, &mut tally).await;
            resume(&addr, relay_id, &bobs, &mut open, &mut tally).await;
        });
    }
    // The uploads resumed after the last kill are listed and opened now.
    rt.block_on(check(
        &relay.tcp(),
        relay_id,
        &mut bobs,
        &mut open,
        &mut gone,
        &mut tally,
    ));
    assert!(open.is_empty(), "every upload ends complete and fetched");
    assert_eq!(tally.opened, ROUNDS * MAILBOXES);
    relay.stop();
    eprintln!(
        "kill points (acks, of chunks): {kill_points:?}; {tally:?}; {:?}",
        started.elapsed()
    );
}
