//! The relay crash campaign (RELIABILITY.md §1): `kill -9` of `mayfly
//! relay` at random points of a mixed load, many times over one `--home`.
//!
//! Each run deposits fresh clips (¼–1 MiB, some expiring soon) to three
//! mailboxes and, at the same time, revokes some earlier clips and has the
//! recipients fetch, open and acknowledge others; the relay is SIGKILLed
//! once N operations (each a request answered) have completed, N drawn from
//! a seeded RNG. Before each restart the stopped store is opened in process
//! and checked whole ([`RelayStore::check`]), and every file under the home
//! is searched for the data keys of clips known erased. Some restarts move
//! the relay's clock an hour on (`MAYFLY_CLOCK_OFFSET_MS`), so that the
//! clips expiring soon expire. After each restart:
//!
//! * every clip whose chunks were all acknowledged, and that nobody revoked
//!   or acknowledged, is listed and opens to its plaintext;
//! * no clip with a chunk that never left its sender is listed;
//! * no clip whose revocation or acknowledgement was answered, and no
//!   expired clip, is listed or served, and a revoked one cannot be
//!   deposited again.
//!
//! Unanswered revocations are sent again and unfinished uploads resume.
//!
//! `MAYFLY_CRASH_RUNS` sets the number of kills (50 by default, the CI
//! form; the long form is 1000), `MAYFLY_CRASH_SEED` the seed, and
//! `MAYFLY_CRASH_FIGURES` a file to append the figures line to.

mod common;
mod lazyfs;

use lazyfs::{Disk, Fault, env_number};
mod mailbox_client;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Instant;

use common::{Relay, TIMEOUT, kill9};
use futures::future::join_all;
use libp2p::{Multiaddr, PeerId};
use mailbox_client::{Clip, Party, Peer, now, rng as seeded, seal_until};
use mayfly_node::relay::STORE_DIR;
use mayfly_node::store::{
    KEY_FILE_HEADER_LEN, KEY_FILE_NAME, KEY_SLOT_LEN, RelayStore, StoreLimits,
};
use mayfly_protocol::mailbox::{Entry, ErrorCode, Request, Response};
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use tokio::sync::watch;

const MAILBOXES: usize = 3;
const MIB: usize = 1 << 20;
/// How far a restart that expires clips moves the relay's clock.
const HOUR_MS: u64 = 3_600_000;

fn pick(rng: &mut ChaCha20Rng, lo: usize, hi: usize) -> usize {
    lo + (rng.next_u64() % (hi - lo + 1) as u64) as usize
}

fn chance(rng: &mut ChaCha20Rng, percent: u64) -> bool {
    rng.next_u64() % 100 < percent
}

/// One clip to one mailbox, and everything the campaign knows of it.
struct Sent {
    run: usize,
    to: usize,
    clip: Clip,
    envelope: Envelope,
    /// Chunks whose PutChunk left the sender / was answered Ok.
    sent: BTreeSet<u32>,
    acked: BTreeSet<u32>,
    /// A revocation was sent / answered.
    revoke_sent: bool,
    revoked: bool,
    /// The recipient's Ack was sent / answered.
    ack_sent: bool,
    fetched: bool,
    /// The restart after which the relay's clock was past its expiry.
    expired_since: Option<usize>,
    /// The first run after which its key was certainly erased.
    gone_since: Option<usize>,
}

impl Sent {
    fn id(&self) -> MessageId {
        self.clip.id()
    }
    fn all(&self) -> BTreeSet<u32> {
        (0..self.clip.chunks.len() as u32).collect()
    }
    fn complete(&self) -> bool {
        self.acked.len() == self.clip.chunks.len()
    }
    /// Whether the relay must list it.
    fn must_list(&self) -> bool {
        self.complete() && !self.revoke_sent && !self.ack_sent && self.expired_since.is_none()
    }
    /// Whether the relay must not list or serve it.
    fn must_be_gone(&self) -> bool {
        self.revoked || self.fetched || self.expired_since.is_some()
    }
    /// Whether its data key is certainly erased from every file at a check
    /// after restart `restart` (an expired clip's key goes at the collector's
    /// next run, which is done a restart later).
    fn erased_by(&self, restart: usize) -> bool {
        self.revoked || self.fetched || self.expired_since.is_some_and(|r| r + 2 <= restart)
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
            message_id: self.id(),
            index: i,
            bytes: self.clip.chunks[i as usize].clone(),
        }
    }
}

/// Counts for the figures line.
#[derive(Default, Debug)]
struct Tally {
    kills: usize,
    clips: usize,
    acked_chunks: usize,
    opened_at_checks: usize,
    fetched_and_acked: usize,
    revoked: usize,
    expired: usize,
    resumed_uploads: usize,
    key_scans: usize,
    store_checks: usize,
    /// Completed operations when the relay was killed, summed.
    ops_at_kill: usize,
    /// Time in the offline checks (store check and key search) and in the
    /// online ones, seconds.
    offline_secs: f64,
    store_check_secs: f64,
    scanned_mib: f64,
    online_secs: f64,
}

/// The relay's clock: the test's plus the offset it was started with.
fn relay_now(offset_ms: u64) -> UnixMillis {
    now().plus(offset_ms)
}

/// A pool of progress the concurrent tasks of one run report: completed
/// operations and finished tasks.
type Progress = watch::Sender<(usize, usize)>;

fn tick(p: &Progress) {
    p.send_modify(|(ops, _)| *ops += 1);
}

/// What one run's tasks did, for the bookkeeping afterwards.
enum Report {
    Upload {
        k: usize,
        sent: BTreeSet<u32>,
        acked: BTreeSet<u32>,
    },
    Revoke {
        k: usize,
        answered: bool,
    },
    Fetch {
        k: usize,
        ack_sent: bool,
        acked: bool,
    },
}

async fn upload_task(peer: Peer, k: usize, puts: Vec<(u32, Request)>, p: Progress) -> Vec<Report> {
    let (mut sent, mut acked) = (BTreeSet::new(), BTreeSet::new());
    for (i, put) in puts {
        sent.insert(i);
        match peer.try_req(put).await {
            Ok(Response::Ok) => {
                acked.insert(i);
                tick(&p);
            }
            Err(_) => break,
            Ok(other) => panic!("PutChunk {i} answered {other:?}"),
        }
    }
    peer.close().await;
    vec![Report::Upload { k, sent, acked }]
}

async fn revoke_task(peer: Peer, records: Vec<(usize, Request)>, p: Progress) -> Vec<Report> {
    let mut out = Vec::new();
    for (k, record) in records {
        match peer.try_req(record).await {
            Ok(Response::Revoked(_)) => {
                out.push(Report::Revoke { k, answered: true });
                tick(&p);
            }
            Err(_) => {
                out.push(Report::Revoke { k, answered: false });
                break;
            }
            Ok(other) => panic!("Revoke answered {other:?}"),
        }
    }
    peer.close().await;
    out
}

/// The recipient fetches each of `wanted` (clip index, expected plaintext,
/// envelope secret) that is listed, opens it and acknowledges it.
async fn fetch_task(
    peer: Peer,
    wanted: Vec<(usize, MessageId, Vec<u8>, DhSecret, SigningPublicKey)>,
    p: Progress,
) -> Vec<Report> {
    let mut out = Vec::new();
    let Ok(entries) = try_list(&peer).await else {
        peer.close().await;
        return out;
    };
    tick(&p);
    let listed: BTreeMap<MessageId, Entry> =
        entries.into_iter().map(|e| (e.message_id, e)).collect();
    for (k, id, content, secret, me) in wanted {
        let Some(entry) = listed.get(&id) else {
            continue;
        };
        match try_open(&peer, entry, &me, &secret, &p).await {
            Ok(plaintext) => assert!(plaintext == content, "a fetched clip differs"),
            Err(_) => break,
        }
        let r = peer
            .try_req(Request::Ack {
                seqs: vec![entry.seq],
            })
            .await;
        let acked = matches!(r, Ok(Response::Ok));
        if let Ok(other) = &r {
            assert!(acked, "Ack answered {other:?}");
            tick(&p);
        }
        out.push(Report::Fetch {
            k,
            ack_sent: true,
            acked,
        });
        if !acked {
            break;
        }
    }
    peer.close().await;
    out
}

async fn try_list(peer: &Peer) -> Result<Vec<Entry>, ()> {
    let mut out: Vec<Entry> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.seq);
        match peer.try_req(Request::List { after, limit: 64 }).await {
            Ok(Response::Entries { entries, more }) => {
                out.extend(entries);
                if !more {
                    return Ok(out);
                }
            }
            Ok(other) => panic!("List answered {other:?}"),
            Err(_) => return Err(()),
        }
    }
}

/// Fetches and opens a listed entry; `Err` if the relay went away.
async fn try_open(
    peer: &Peer,
    entry: &Entry,
    me: &SigningPublicKey,
    secret: &DhSecret,
    p: &Progress,
) -> Result<Vec<u8>, ()> {
    let r = peer
        .try_req(Request::GetManifest {
            message_id: entry.message_id,
        })
        .await;
    let manifest = match r {
        Ok(Response::Manifest(m)) => m,
        Ok(other) => panic!("no manifest for a listed entry: {other:?}"),
        Err(_) => return Err(()),
    };
    tick(p);
    let contents = entry.envelope.open(me, secret).expect("envelope opens");
    let hashes = manifest.chunk_hashes().to_vec();
    let mut opener = contents.open_manifest(*manifest, now()).expect("manifest");
    let mut out = Vec::new();
    for hash in hashes {
        let r = peer
            .try_req(Request::GetChunk {
                hash,
                offset: 0,
                length: 0,
            })
            .await;
        let bytes = match r {
            Ok(Response::Chunk { bytes }) => bytes,
            Ok(other) => panic!("a chunk of a listed entry is missing: {other:?}"),
            Err(_) => return Err(()),
        };
        tick(p);
        out.extend_from_slice(opener.open_next(&bytes).expect("chunk opens"));
    }
    opener.finish().expect("complete");
    Ok(out)
}

/// The data keys in the stopped relay's key file, by message id.
fn read_keys(store: &Path) -> HashMap<[u8; 32], [u8; 32]> {
    let bytes = std::fs::read(store.join(KEY_FILE_NAME)).expect("key file");
    let mut keys = HashMap::new();
    for slot in bytes[KEY_FILE_HEADER_LEN as usize..].chunks_exact(KEY_SLOT_LEN) {
        if slot.iter().any(|&b| b != 0) {
            let id: [u8; 32] = slot[..32].try_into().unwrap();
            keys.insert(id, slot[32..].try_into().unwrap());
        }
    }
    keys
}

/// Every file under `dir`, read whole.
fn all_files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.unwrap();
        let path = e.path();
        if e.file_type().unwrap().is_dir() {
            all_files(&path, out);
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
}

/// The offline checks of a stopped relay's home after kill `restart`.
fn check_offline(
    home: &Path,
    disk: &Path,
    restart: usize,
    sent: &[Sent],
    keys_seen: &mut HashMap<[u8; 32], [u8; 32]>,
    tally: &mut Tally,
) {
    let store_dir = home.join(STORE_DIR);
    let t = Instant::now();
    {
        let mut store =
            RelayStore::open(&store_dir, StoreLimits::default(), seeded(restart as u64))
                .and_then(RelayStore::with_replays)
                .expect("the store opens after a kill");
        store
            .check()
            .unwrap_or_else(|e| panic!("kill {restart}: the store fails its check: {e}"));
    }
    tally.store_checks += 1;
    tally.store_check_secs += t.elapsed().as_secs_f64();
    keys_seen.extend(read_keys(&store_dir));
    let erased: Vec<[u8; 32]> = sent
        .iter()
        .filter(|s| s.erased_by(restart))
        .filter_map(|s| keys_seen.get(&s.id().0).copied())
        .collect();
    if erased.is_empty() {
        return;
    }
    let mut files = Vec::new();
    all_files(disk, &mut files);
    for key in &erased {
        let finder = memchr::memmem::Finder::new(key);
        for (name, bytes) in &files {
            assert!(
                finder.find(bytes).is_none(),
                "kill {restart}: an erased data key is still in {name}"
            );
        }
    }
    tally.key_scans += 1;
    tally.scanned_mib += files.iter().map(|(_, b)| b.len()).sum::<usize>() as f64 / MIB as f64;
}

/// Lists every mailbox of the restarted relay and checks it against what
/// the campaign knows; opens what must be there; sends unanswered
/// revocations again and resumes unfinished uploads.
async fn check_online(
    addr: &Multiaddr,
    relay_id: PeerId,
    bobs: &[Party],
    secrets: &[DhSecret],
    sent: &mut [Sent],
    offset_ms: u64,
    tally: &mut Tally,
) {
    for (b, bob) in bobs.iter().enumerate() {
        let peer = Peer::connect(addr, relay_id).await;
        peer.login_ok(&bob.device).await;
        let entries = try_list(&peer).await.expect("the relay answers");
        let listed: BTreeMap<MessageId, &Entry> =
            entries.iter().map(|e| (e.message_id, e)).collect();
        assert_eq!(listed.len(), entries.len(), "an id listed twice");
        let secret = &secrets[b];
        for s in sent.iter_mut().filter(|s| s.to == b) {
            let id = s.id();
            match listed.get(&id) {
                Some(entry) => {
                    assert!(
                        !s.must_be_gone(),
                        "run {} clip to {b}: listed though revoked {} / acknowledged {} / expired {:?}",
                        s.run,
                        s.revoked,
                        s.fetched,
                        s.expired_since
                    );
                    assert!(
                        s.sent.len() == s.clip.chunks.len(),
                        "run {} clip to {b}: a partial clip is listed",
                        s.run
                    );
                    let p = watch::channel((0, 0)).0;
                    let plaintext = try_open(&peer, entry, &bob.key(), secret, &p)
                        .await
                        .expect("the relay answers");
                    assert!(plaintext == s.clip.content, "plaintext differs");
                    tally.opened_at_checks += 1;
                    // A lost Ack answer: the ack did not take.
                    s.ack_sent = false;
                }
                None => {
                    assert!(
                        !s.must_list(),
                        "run {} clip to {b}: every chunk acknowledged, yet not listed",
                        s.run
                    );
                    if s.ack_sent && !s.fetched {
                        // Its Ack took before the kill, though unanswered.
                        s.fetched = true;
                    }
                }
            }
            if s.must_be_gone() {
                let r = peer.req(Request::GetManifest { message_id: id }).await;
                assert!(
                    matches!(
                        r,
                        Response::Error {
                            code: ErrorCode::NotFound,
                            ..
                        }
                    ),
                    "run {} clip to {b}: a gone clip is served: {r:?}",
                    s.run
                );
            }
        }
        peer.close().await;
    }

    // Revocations again (unanswered ones), then uploads resumed.
    let peer = Peer::connect(addr, relay_id).await;
    for s in sent.iter_mut().filter(|s| s.revoke_sent && !s.revoked) {
        let r = peer
            .req(Request::Revoke(s.clip.sealed.revoke(relay_now(offset_ms))))
            .await;
        assert!(matches!(r, Response::Revoked(_)), "{r:?}");
        s.revoked = true;
        tally.revoked += 1;
    }
    for s in sent.iter().filter(|s| s.revoked) {
        let r = peer.req(s.deposit(bobs)).await;
        assert!(
            matches!(
                r,
                Response::Error {
                    code: ErrorCode::Revoked,
                    ..
                } | Response::Error {
                    code: ErrorCode::Expired,
                    ..
                }
            ),
            "a revoked clip is taken again: {r:?}"
        );
    }
    for s in sent
        .iter_mut()
        .filter(|s| !s.complete() && !s.revoke_sent && s.expired_since.is_none())
    {
        let Response::DepositAccepted { missing } = peer.req(s.deposit(bobs)).await else {
            panic!("the repeated deposit is refused")
        };
        let missing: BTreeSet<u32> = missing.into_iter().collect();
        let unacked: BTreeSet<u32> = s.all().difference(&s.acked).copied().collect();
        let unsent: BTreeSet<u32> = s.all().difference(&s.sent).copied().collect();
        assert!(
            missing.is_subset(&unacked),
            "run {}: chunks acknowledged before the kill are missing after it",
            s.run
        );
        assert!(
            unsent.is_subset(&missing),
            "run {}: unsent chunks are not missing",
            s.run
        );
        for &i in &missing {
            assert_eq!(peer.req(s.put(i)).await, Response::Ok);
        }
        s.acked = s.all();
        s.sent = s.all();
        tally.resumed_uploads += 1;
    }
    peer.close().await;
}

#[test]
fn acknowledged_clips_survive_sigkill_and_erased_ones_stay_gone() {
    campaign(Fault::Crash);
}

#[test]
fn acknowledged_clips_survive_power_cuts_and_erased_ones_stay_gone() {
    campaign(Fault::PowerCut);
}

fn campaign(fault: Fault) {
    let (runs, name) = match fault {
        Fault::Crash => (env_number("MAYFLY_CRASH_RUNS", 50), "crash"),
        Fault::PowerCut => (env_number("MAYFLY_POWER_CUT_RUNS", 50), "power-cut"),
    };
    let runs = runs as usize;
    let seed = env_number("MAYFLY_CRASH_SEED", 0x6b696c6c);
    let started = Instant::now();
    let root = tempfile::tempdir().unwrap();
    // The relay's home: a plain directory, or one on a lazy file system
    // whose backing directory is what survives a power cut.
    let Some(disk) = Disk::new(fault, root.path(), "home", name) else {
        return;
    };
    let (home, on_disk) = (disk.dir.clone(), disk.disk.clone());
    let mut rng = seeded(seed);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let alice = Party::new(&mut rng);
    let mut bobs: Vec<Party> = (0..MAILBOXES).map(|_| Party::new(&mut rng)).collect();
    let mut offset_ms = 0u64;
    let start = |offset_ms: u64| {
        let offset = offset_ms.to_string();
        Relay::start_with_env(
            &home,
            &[],
            2,
            &[("MAYFLY_CLOCK_OFFSET_MS", offset.as_str())],
        )
    };
    let mut relay = start(offset_ms);
    let relay_id = relay.peer_id;
    rt.block_on(async {
        let addr = relay.tcp();
        for bob in bobs.iter_mut() {
            let peer = Peer::connect(&addr, relay_id).await;
            // No one-time prekeys: every envelope is to the signed prekey,
            // so a clip opened before a kill opens again after it.
            peer.login_and_publish(bob, 0, &mut rng).await;
            peer.close().await;
        }
    });
    let secrets: Vec<DhSecret> = bobs
        .iter_mut()
        .map(|bob| {
            let public = bob.prekeys.signed_prekey().public();
            bob.prekeys
                .take_secret(&public)
                .expect("the signed prekey's secret")
        })
        .collect();

    let mut sent: Vec<Sent> = Vec::new();
    let mut keys_seen = HashMap::new();
    let mut tally = Tally::default();
    for run in 0..runs {
        let addr = relay.tcp();
        // New clips: deposits answered before the load starts.
        let first_new = sent.len();
        let fresh = rt.block_on(async {
            let peer = Peer::connect(&addr, relay_id).await;
            let mut fresh = Vec::new();
            for (to, bob) in bobs.iter().enumerate() {
                let len = pick(&mut rng, MIB / 4, MIB);
                let content: Vec<u8> = (0..len)
                    .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8 ^ (run * 3 + to) as u8)
                    .collect();
                // A clip's lifetime counts from its creation on this clock.
                let expires_at = if chance(&mut rng, 20) {
                    relay_now(offset_ms).plus(HOUR_MS / 2)
                } else {
                    now().plus(DEFAULT_CLIP_TTL_MS)
                };
                let clip = seal_until(content, expires_at, &mut rng);
                let envelope = peer.envelope(&alice, bob, &clip, &mut rng).await;
                let s = Sent {
                    run,
                    to,
                    clip,
                    envelope,
                    sent: BTreeSet::new(),
                    acked: BTreeSet::new(),
                    revoke_sent: false,
                    revoked: false,
                    ack_sent: false,
                    fetched: false,
                    expired_since: None,
                    gone_since: None,
                };
                let r = peer.req(s.deposit(&bobs)).await;
                assert_eq!(
                    r,
                    Response::DepositAccepted {
                        missing: s.all().into_iter().collect()
                    }
                );
                fresh.push(s);
            }
            peer.close().await;
            fresh
        });
        tally.clips += fresh.len();
        sent.extend(fresh);

        // Earlier live clips: a quarter revoked, half of the rest fetched.
        let mut revoke = Vec::new();
        let mut fetch: Vec<Vec<usize>> = vec![Vec::new(); MAILBOXES];
        for (k, s) in sent[..first_new].iter().enumerate() {
            if s.revoke_sent || s.fetched || s.expired_since.is_some() {
                continue;
            }
            if chance(&mut rng, 25) {
                revoke.push(k);
            } else if s.complete() && chance(&mut rng, 50) {
                fetch[s.to].push(k);
            }
        }
        let total_ops: usize = sent[first_new..]
            .iter()
            .map(|s| s.clip.chunks.len())
            .sum::<usize>()
            + revoke.len()
            + fetch
                .iter()
                .flatten()
                .map(|&k| sent[k].clip.chunks.len() + 3)
                .sum::<usize>();
        let kill_at = pick(&mut rng, 0, total_ops);

        let reports = rt.block_on(async {
            let (p, mut pr) = watch::channel((0usize, 0usize));
            let mut tasks = Vec::new();
            for (k, s) in sent.iter().enumerate().skip(first_new) {
                let peer = Peer::connect(&addr, relay_id).await;
                let puts = (0..s.clip.chunks.len() as u32)
                    .map(|i| (i, s.put(i)))
                    .collect();
                tasks.push(tokio::spawn(upload_task(peer, k, puts, p.clone())));
            }
            let records: Vec<(usize, Request)> = revoke
                .iter()
                .map(|&k| {
                    (
                        k,
                        Request::Revoke(sent[k].clip.sealed.revoke(relay_now(offset_ms))),
                    )
                })
                .collect();
            for &k in &revoke {
                sent[k].revoke_sent = true;
            }
            let peer = Peer::connect(&addr, relay_id).await;
            tasks.push(tokio::spawn(revoke_task(peer, records, p.clone())));
            for (b, ks) in fetch.iter().enumerate() {
                let peer = Peer::connect(&addr, relay_id).await;
                peer.login_ok(&bobs[b].device).await;
                let secret = secrets[b].clone();
                let wanted = ks
                    .iter()
                    .map(|&k| {
                        let s = &sent[k];
                        (
                            k,
                            s.id(),
                            s.clip.content.clone(),
                            secret.clone(),
                            bobs[b].key(),
                        )
                    })
                    .collect();
                tasks.push(tokio::spawn(fetch_task(peer, wanted, p.clone())));
            }
            let n = tasks.len();
            let tasks: Vec<_> = tasks
                .into_iter()
                .map(|t| {
                    let p = p.clone();
                    tokio::spawn(async move {
                        let r = t.await.expect("a load task");
                        p.send_modify(|(_, done)| *done += 1);
                        r
                    })
                })
                .collect();
            let (ops, _) = *tokio::time::timeout(
                TIMEOUT,
                pr.wait_for(|&(ops, done)| ops >= kill_at || done == n),
            )
            .await
            .expect("the load makes progress")
            .expect("a task lives");
            tally.ops_at_kill += ops;
            kill9(relay);
            disk.cut();
            let mut reports = Vec::new();
            for r in join_all(tasks).await {
                reports.extend(r.expect("a load task"));
            }
            reports
        });
        tally.kills += 1;
        for r in reports {
            match r {
                Report::Upload { k, sent: s, acked } => {
                    tally.acked_chunks += acked.len();
                    sent[k].sent = s;
                    sent[k].acked = acked;
                }
                Report::Revoke { k, answered } => {
                    if answered {
                        sent[k].revoked = true;
                        tally.revoked += 1;
                    }
                }
                Report::Fetch { k, ack_sent, acked } => {
                    sent[k].ack_sent |= ack_sent;
                    if acked {
                        sent[k].fetched = true;
                        tally.fetched_and_acked += 1;
                    }
                }
            }
        }

        let t = Instant::now();
        check_offline(&home, &on_disk, run, &sent, &mut keys_seen, &mut tally);
        tally.offline_secs += t.elapsed().as_secs_f64();

        // One restart in ten moves the relay's clock an hour on.
        if chance(&mut rng, 10) {
            offset_ms += HOUR_MS;
            let t = relay_now(offset_ms);
            for s in sent.iter_mut().filter(|s| s.expired_since.is_none()) {
                if s.clip.sealed.manifest().expires_at() <= t {
                    s.expired_since = Some(run);
                    tally.expired += 1;
                }
            }
        }
        relay = start(offset_ms);
        assert_eq!(relay.peer_id, relay_id, "the relay keeps its identity");
        let addr = relay.tcp();
        let t = Instant::now();
        rt.block_on(check_online(
            &addr, relay_id, &bobs, &secrets, &mut sent, offset_ms, &mut tally,
        ));
        tally.online_secs += t.elapsed().as_secs_f64();
        // Forget clips erased long enough ago that their keys were searched for.
        for s in sent.iter_mut() {
            if s.gone_since.is_none() && s.erased_by(run) {
                s.gone_since = Some(run);
            }
        }
        sent.retain(|s| s.gone_since.is_none_or(|g| g + 3 > run));
    }
    relay.stop();
    let lazy = disk.figures();
    let line = format!(
        "{name} campaign: seed {seed:#x}, {} kills of the relay in {:.1} s; {tally:?}{lazy}; acknowledged clips lost: 0",
        tally.kills,
        started.elapsed().as_secs_f64()
    );
    eprintln!("{line}");
    if let Ok(path) = std::env::var("MAYFLY_CRASH_FIGURES") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("figures file");
        writeln!(f, "{line}").unwrap();
    }
}
