//! `mayfly demo`: a relay on loopback and three clients (alice, bob, carol),
//! each in its own temporary home, walking through the whole protocol —
//! clips, reactions, revocation, then a live broadcast to followers — and
//! printing each step with its timing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use mayfly_node::client::{self, Client, ClientConfig, Event, OpenTarget, SendOptions};
use mayfly_node::home::{Home, Profile, Via};
use mayfly_node::live::control::{self, ControlRequest};
use mayfly_node::live::{
    AudienceEvent, BroadcastConfig, Broadcaster, WatchConfig, WatchUpdate, replay_viewers,
    revoke_replay, watch, watch_replay,
};
use mayfly_protocol::fmp4::{Cutter, CutterConfig, Piece};
use mayfly_protocol::mailbox::{ErrorCode, Request, Response};
use mayfly_protocol::{MessageId, UnixMillis};
use tokio::sync::mpsc;

use super::output;

/// The clip alice sends.
const SAMPLE: &[u8] = include_bytes!("../../../samples/hello.mp4");

/// The fragmented MP4 alice goes live with.
const LIVE_SAMPLE: &[u8] = include_bytes!("../../../samples/live.mp4");
/// What bob says during the demo broadcast.
const DEMO_COMMENT: &str = "first!";

/// How long any one step may take before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the demo, printing to stdout.
pub fn run(keep: bool) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("mayfly-demo-{}-{}", std::process::id(), now().0));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = super::runtime()?.block_on(demo(&dir));
    let kept = if keep {
        output::line(format_args!("homes kept in {}", dir.display()))
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    };
    result?;
    Ok(kept?)
}

fn now() -> UnixMillis {
    UnixMillis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

struct Steps {
    n: usize,
    at: Instant,
}

impl Steps {
    fn done(&mut self, text: &str) -> std::io::Result<()> {
        self.n += 1;
        let ms = self.at.elapsed().as_secs_f64() * 1000.0;
        output::line(format_args!("{:>2}. {text} ({ms:.1} ms)", self.n))?;
        self.at = Instant::now();
        Ok(())
    }
}

struct Party {
    name: &'static str,
    dir: PathBuf,
    client: Option<(Client, mpsc::Receiver<Event>)>,
}

impl Party {
    fn create(root: &Path, name: &'static str, relay: &str) -> anyhow::Result<Self> {
        let dir = root.join(name);
        let mut rng = mayfly_node::rng::node_rng(None)?;
        mayfly_node::client::create_home(
            &dir,
            Profile {
                display_name: name.into(),
                relays: vec![relay.to_owned()],
            },
            now(),
            &mut rng,
        )?;
        Ok(Self {
            name,
            dir,
            client: None,
        })
    }

    async fn online(&mut self) -> anyhow::Result<()> {
        let home = Home::open(&self.dir)?;
        let (client, events, event_loop) = client::new(home, ClientConfig::default())?;
        tokio::spawn(event_loop.run());
        client.start().await?;
        self.client = Some((client, events));
        Ok(())
    }

    async fn offline(&mut self) {
        if let Some((client, _)) = self.client.take() {
            // Waits for the event loop; dropping the handle then closes the home.
            client.shutdown().await;
        }
    }

    fn client(&self) -> &Client {
        &self.client.as_ref().expect("online").0
    }

    /// Waits for an event `f` picks, skipping others.
    async fn wait<T>(&mut self, mut f: impl FnMut(&Event) -> Option<T>) -> anyhow::Result<T> {
        let name = self.name;
        let events = &mut self.client.as_mut().expect("online").1;
        tokio::time::timeout(STEP_TIMEOUT, async {
            while let Some(e) = events.recv().await {
                if let Some(t) = f(&e) {
                    return Ok(t);
                }
            }
            bail!("{name}'s client stopped")
        })
        .await
        .with_context(|| format!("{name} waited too long"))?
    }
}

async fn demo(root: &Path) -> anyhow::Result<()> {
    let mut steps = Steps {
        n: 0,
        at: Instant::now(),
    };
    // 1. A relay on loopback.
    let relay = mayfly_node::relay::local::LocalRelay::loopback(&root.join("relay")).await?;
    let relay_addr = relay.address.clone();
    steps.done(&format!("relay listening on {relay_addr}"))?;

    // 2. Three people, each with a home; alice and bob swap cards, carol
    // joins through alice's invite.
    let mut alice = Party::create(root, "alice", &relay_addr)?;
    let mut bob = Party::create(root, "bob", &relay_addr)?;
    let mut carol = Party::create(root, "carol", &relay_addr)?;
    {
        let a = Home::open(&alice.dir)?;
        let b = Home::open(&bob.dir)?;
        a.add_contact(&b.card()?, now())?;
        b.add_contact(&a.card()?, now())?;
    }
    steps.done("homes for alice, bob and carol; alice and bob added each other's cards")?;

    alice.online().await?;
    bob.online().await?;
    bob.offline().await;
    carol.online().await?;
    let invite = alice.client().invite()?;
    carol.client().accept_invite(&invite).await?;
    let carol_name = alice
        .wait(|e| match e {
            Event::ContactAdded { name, .. } => Some(name.clone()),
            _ => None,
        })
        .await?;
    steps.done(&format!(
        "alice invited carol ({} characters); {carol_name} accepted and both are contacts; bob published prekeys and went offline",
        invite_len(&invite)
    ))?;

    // 3. alice sends a clip to bob (offline: via the relay) and carol
    // (online: direct).
    let clip_path = root.join("hello.mp4");
    std::fs::write(&clip_path, SAMPLE)?;
    let to = alice.client().with_home(|h| -> anyhow::Result<_> {
        Ok(vec![
            h.find_contact("bob")?.card.identity_key(),
            h.find_contact("carol")?.card.identity_key(),
        ])
    })?;
    let report = alice
        .client()
        .send_file(&to, &clip_path, SendOptions::default())
        .await?;
    let id = report.message_id;
    ensure!(
        report.failed.is_empty(),
        "a delivery failed: {:?}",
        report.failed
    );
    let vias: Vec<String> = report
        .delivered
        .iter()
        .map(|d| match &d.via {
            Via::Direct => format!("{} direct", d.name),
            Via::Relay { .. } => format!("{} via the relay", d.name),
            Via::Pending => format!("{} (pending)", d.name),
        })
        .collect();
    steps.done(&format!(
        "alice sent samples/hello.mp4 ({} bytes, {} bytes sealed) as {}: {}",
        SAMPLE.len(),
        report.ciphertext_len,
        short(&id),
        vias.join(", ")
    ))?;
    carol
        .wait(|e| {
            matches!(e, Event::Received { message_id, .. } if *message_id == id).then_some(())
        })
        .await?;
    steps.done("carol received it straight from alice; the relay carried none of it")?;

    // 4. bob comes online and opens it while it streams.
    bob.online().await?;
    let (sink, written) = Sink::new();
    let report = bob
        .client()
        .open(
            &id,
            OpenTarget::Writer(Box::new(sink)),
            client::progress_none(),
        )
        .await?;
    ensure!(written.take() == SAMPLE, "bob's clip differs from alice's");
    let first = report.chunk_latencies.first().copied().unwrap_or_default();
    // The envelope came through the relay; the chunks come from alice's
    // device while she is online (RELAY.md §8), else from the relay.
    let from = match report.peer_chunks {
        0 => "from the relay".to_owned(),
        n if n == report.chunk_latencies.len() => "from alice's device".to_owned(),
        n => format!("{n} chunks from alice's device, the rest from the relay"),
    };
    steps.done(&format!(
        "bob came online, synced (the envelope was at the relay) and streamed the clip {from}: {} bytes intact, first plaintext {:.2} ms after its chunk arrived",
        report.bytes,
        first.as_secs_f64() * 1000.0
    ))?;
    let bob_key = bob
        .client()
        .with_home(|h| h.received_key(&id))?
        .context("bob holds the key")?;

    // 5. carol reacts with a flik.
    let reaction = carol
        .client()
        .react(&id, Some("wave"), SendOptions::default())
        .await?;
    alice
        .wait(|e| {
            matches!(e, Event::Received { message_id, .. } if *message_id == reaction.message_id)
                .then_some(())
        })
        .await?;
    steps.done(&format!(
        "carol reacted with the flik \"wave\" ({}); alice received it",
        short(&reaction.message_id)
    ))?;

    // 6. alice revokes the clip.
    let revoked = alice.client().revoke(&id).await?;
    for party in [&mut bob, &mut carol] {
        party
            .wait(|e| matches!(e, Event::Revoked { message_id } if *message_id == id).then_some(()))
            .await?;
    }
    steps.done(&format!(
        "alice revoked {}: {} relay deleted it, {} recipients erased it, {} reaction erased with it",
        short(&id),
        revoked.relays.len(),
        revoked.notified.len(),
        revoked.reactions
    ))?;

    // 7. Nothing left that opens it.
    let relay_peer = mayfly_node::client::parse_relay(&relay_addr)?.0;
    let answer = bob
        .client()
        .relay_request(relay_peer, Request::GetManifest { message_id: id })
        .await?;
    ensure!(
        matches!(
            answer,
            Response::Error {
                code: ErrorCode::NotFound | ErrorCode::Revoked,
                ..
            }
        ),
        "the relay still serves the manifest: {answer:?}"
    );
    let in_bob = bob.client().with_home(|h| h.received(&id))?.is_some();
    ensure!(!in_bob, "bob's home still lists the clip");
    let found = scan(&bob.dir, bob_key.as_bytes())?;
    ensure!(found.is_empty(), "bob's key is still in {found:?}");
    let gone = bob
        .client()
        .open(
            &id,
            OpenTarget::Writer(Box::new(std::io::sink())),
            client::progress_none(),
        )
        .await;
    ensure!(gone.is_err(), "bob can still open the clip");
    steps.done(&format!(
        "the relay answers {} for it; bob's home has no record of it and none of its {} files holds its key; opening it fails",
        match answer {
            Response::Error { code, .. } => format!("{code:?}"),
            _ => String::new(),
        },
        count_files(&bob.dir)
    ))?;

    // dave joins for the live part, through an invite of alice's.
    let mut dave = Party::create(root, "dave", &relay_addr)?;
    dave.online().await?;
    let invite = alice.client().invite()?;
    dave.client().accept_invite(&invite).await?;
    alice
        .wait(|e| matches!(e, Event::ContactAdded { .. }).then_some(()))
        .await?;

    live(&mut steps, &mut alice, &mut bob, &mut carol, &mut dave).await?;

    for p in [&mut alice, &mut bob, &mut carol, &mut dave] {
        p.offline().await;
    }
    relay.stop().await?;
    output::line(format_args!(
        "demo complete: {} sent, streamed, reacted to and revoked; alice went live to her followers, who watched, commented and played the replay, which she revoked",
        short(&id)
    ))?;
    Ok(())
}

/// 10–14: bob, carol and dave follow alice, she goes live with
/// `samples/live.mp4`, bob and carol (anonymously) watch from the start
/// and dave joins late, over the overlay; they comment, alice sees her
/// viewer list, and the replay is watched and then erased.
async fn live(
    steps: &mut Steps,
    alice: &mut Party,
    bob: &mut Party,
    carol: &mut Party,
    dave: &mut Party,
) -> anyhow::Result<()> {
    for party in [&*bob, &*carol, &*dave] {
        let a = party.client().with_home(|h| h.find_contact("alice"))?;
        party.client().follow(&a).await?;
    }
    for _ in 0..3 {
        alice
            .wait(|e| {
                matches!(
                    e,
                    Event::Follower {
                        following: true,
                        ..
                    }
                )
                .then_some(())
            })
            .await?;
    }
    let followers: Vec<_> = alice
        .client()
        .followers()?
        .into_iter()
        .map(|(c, _)| c.card.identity_key())
        .collect();
    steps.done(&format!(
        "bob, carol and dave (who accepted an invite of alice's) followed alice: {} followers",
        followers.len()
    ))?;

    // With a replay: the relay keeps the sealed segments for a day.
    let config = BroadcastConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse()?,
        replay: true,
        ..BroadcastConfig::default()
    };
    let (mut b, failed) = Broadcaster::start(alice.client(), followers, config).await?;
    ensure!(failed.is_empty(), "a start notification failed: {failed:?}");
    let bid = b.id();
    let mut broadcasts = Vec::new();
    for party in [&mut *bob, &mut *carol, &mut *dave] {
        party
            .wait(|e| {
                matches!(e, Event::LiveKey { grant, .. } if grant.broadcast_id == bid && grant.epoch == 0)
                    .then_some(())
            })
            .await?;
        broadcasts.push(
            party
                .client()
                .with_home(|h| h.find_broadcast(&hex::encode(bid.0)))?,
        );
    }
    steps.done(&format!(
        "alice went live ({}); bob, carol and dave got the start notification and its key in an envelope",
        &hex::encode(bid.0)[..12]
    ))?;

    let watch_config = WatchConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse()?,
        idle: STEP_TIMEOUT,
        ..WatchConfig::default()
    };
    // Carol watches anonymously: alice counts her without learning who.
    let carol_config = WatchConfig {
        anonymous: true,
        ..watch_config.clone()
    };
    let mut audience = b.audience_events().expect("taken once, here");
    let (comment_tx, comment_rx) = tokio::sync::mpsc::channel(1);
    let carol_heard = std::cell::RefCell::new(Vec::new());
    let (bob_out, bob_written) = Sink::new();
    let (carol_out, carol_written) = Sink::new();
    let (dave_out, dave_written) = Sink::new();
    // dave starts watching once alice has sent two segments.
    let (late_tx, late_rx) = tokio::sync::oneshot::channel::<()>();
    let dave_watch = async {
        let mut dave_out = dave_out;
        late_rx
            .await
            .map_err(|_| anyhow::anyhow!("alice stopped early"))?;
        anyhow::Ok(
            watch(
                dave.client(),
                None,
                &broadcasts[2],
                &mut dave_out,
                &watch_config,
                None,
                |_| {},
            )
            .await?,
        )
    };
    let watching = async {
        let mut bob_out = bob_out;
        let mut carol_out = carol_out;
        tokio::try_join!(
            watch(
                bob.client(),
                None,
                &broadcasts[0],
                &mut bob_out,
                &watch_config,
                Some(comment_rx),
                |_| {}
            ),
            watch(
                carol.client(),
                None,
                &broadcasts[1],
                &mut carol_out,
                &carol_config,
                None,
                |u| {
                    if let WatchUpdate::Audience(AudienceEvent::Comment { text, .. }) = u {
                        carol_heard.borrow_mut().push(text.clone());
                    }
                }
            ),
        )
    };
    let broadcasting = async {
        let deadline = Instant::now() + STEP_TIMEOUT;
        while b.viewers_in_overlay().await? < 2 {
            ensure!(Instant::now() < deadline, "the viewers did not join");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut init = Vec::new();
        let mut sent = 0;
        let mut late_tx = Some(late_tx);
        for p in Cutter::cut_all(LIVE_SAMPLE, CutterConfig::default())? {
            match p {
                Piece::Init(i) => init = i,
                Piece::Segment(seg) => {
                    if sent == 2
                        && let Some(tx) = late_tx.take()
                    {
                        // dave comes in now: the next segment goes out once
                        // he is in the overlay.
                        let _ = tx.send(());
                        let deadline = Instant::now() + STEP_TIMEOUT;
                        while b.viewers_in_overlay().await? < 3 {
                            ensure!(Instant::now() < deadline, "dave did not join");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    b.send(&init, &seg).await?;
                    sent += 1;
                    if sent == 3 {
                        // Bob comments (as `mayfly live comment` would,
                        // through his running watch).
                        let (request, answer) = ControlRequest::new(control::Request::Comment {
                            broadcast: hex::encode(bid.0),
                            text: DEMO_COMMENT.to_owned(),
                        });
                        comment_tx
                            .send(request)
                            .await
                            .map_err(|_| anyhow::anyhow!("bob's watch ended early"))?;
                        answer
                            .await?
                            .map_err(|e| anyhow::anyhow!("bob's comment: {e}"))?;
                    }
                    // A quarter of real time: the demo stays short.
                    tokio::time::sleep(Duration::from_millis(u64::from(seg.duration_ms) / 4)).await;
                }
            }
        }
        anyhow::Ok(b.end(Duration::from_millis(300)).await?)
    };
    let (watched, dave_s, stats) = tokio::join!(watching, dave_watch, broadcasting);
    let (bob_s, carol_s) = watched?;
    let (dave_s, stats) = (dave_s?, stats?);
    ensure!(
        bob_written.take() == LIVE_SAMPLE && carol_written.take() == LIVE_SAMPLE,
        "a viewer wrote something else than alice's stream"
    );
    // dave started at the first keyframe segment he got, at or after the
    // third, and wrote the stream from there on.
    let (init, segments) = Cutter::cut_all(LIVE_SAMPLE, CutterConfig::default())?
        .into_iter()
        .fold((Vec::new(), Vec::new()), |(mut i, mut s), p| {
            match p {
                Piece::Init(x) => i = x,
                Piece::Segment(x) => s.push(x),
            }
            (i, s)
        });
    let from = segments.len() - dave_s.progress.played as usize;
    let mut tail = init.clone();
    for s in &segments[from..] {
        tail.extend_from_slice(&s.bytes);
    }
    ensure!(
        dave_s.ended && from >= 2 && dave_written.take() == tail,
        "dave, who joined late, wrote something else than the stream from a keyframe on"
    );
    let mut lat: Vec<u64> = bob_s
        .latencies_ms
        .iter()
        .chain(&carol_s.latencies_ms)
        .copied()
        .collect();
    lat.sort_unstable();
    steps.done(&format!(
        "alice streamed samples/live.mp4 in {} sealed, signed segments ({} bytes) over the viewers' overlay; bob and carol each wrote it byte for byte ({} segments each, latency p50 {:.1} ms, max {:.1} ms); dave joined late, after 2 segments, and wrote the rest from the next keyframe on, byte for byte",
        stats.segments,
        stats.bytes,
        bob_s.progress.played,
        lat.get(lat.len() / 2).copied().unwrap_or(0) as f64,
        lat.last().copied().unwrap_or(0) as f64
    ))?;

    let bob_id = bob.client().with_home(|h| h.identity().public());
    let mut alice_heard = Vec::new();
    while let Ok(e) = audience.try_recv() {
        if let AudienceEvent::Comment { from, text, .. } = e {
            ensure!(from == bob_id, "a comment from someone else than bob");
            alice_heard.push(text);
        }
    }
    let dave_id = dave.client().with_home(|h| h.identity().public());
    ensure!(
        stats.named_viewers == [bob_id, dave_id] && stats.anonymous_viewers == 1,
        "alice's viewer list: {:?} and {} anonymous",
        stats.named_viewers,
        stats.anonymous_viewers
    );
    ensure!(
        alice_heard == [DEMO_COMMENT] && *carol_heard.borrow() == [DEMO_COMMENT],
        "the comment did not reach everyone: alice {alice_heard:?}, carol {:?}",
        carol_heard.borrow()
    );
    steps.done(&format!(
        "bob commented \"{DEMO_COMMENT}\", sealed under the broadcast key and signed by his device; alice and carol saw it. Alice's viewer list, from signed joins: bob, dave, and 1 anonymous viewer (carol, who published no signed join)"
    ))?;

    // The replay: kept at alice's relay, played back after the end.
    let kept = stats.replay.as_ref().map_or(0, |r| r.kept);
    ensure!(
        kept == stats.segments,
        "the relay kept {kept} of {} segments",
        stats.segments
    );
    let (mut replay_out, replay_written) = Sink::new();
    let replayed = watch_replay(
        carol.client(),
        &broadcasts[1],
        &mut replay_out,
        &watch_config,
        |_| {},
    )
    .await?;
    ensure!(
        replayed.ended && replay_written.take() == LIVE_SAMPLE,
        "the replay is not alice's stream"
    );
    // Carol left a signed join with the replay: alice's replay viewers.
    let carol_id = carol.client().with_home(|h| h.identity().public());
    let audience = replay_viewers(alice.client(), &broadcasts[0]).await?;
    ensure!(
        audience.named == [carol_id] && audience.anonymous == 0,
        "alice's replay viewers: {audience:?}"
    );
    // Alice revokes: the relay deletes the replay, and her followers
    // erase the keys.
    let revoked = revoke_replay(alice.client(), &broadcasts[0]).await?;
    ensure!(
        revoked.deleted_at.len() == 1 && revoked.told == 3,
        "the revocation: {revoked:?}"
    );
    for party in [&mut *bob, &mut *carol, &mut *dave] {
        party
            .wait(|e| {
                matches!(e, Event::LiveRevoked { broadcast_id, .. } if *broadcast_id == bid)
                    .then_some(())
            })
            .await?;
        ensure!(
            party.client().with_home(|h| h.live_keys(&bid))?.is_empty(),
            "a follower kept the keys"
        );
    }
    let gone = watch_replay(
        carol.client(),
        &broadcasts[1],
        &mut std::io::sink(),
        &watch_config,
        |_| {},
    )
    .await;
    ensure!(gone.is_err(), "the revoked replay still plays");
    steps.done(&format!(
        "the relay kept the replay ({kept} segments, sealed); after the end carol played it back from the relay, byte for byte, and alice's replay viewer list shows her (a signed join kept with the replay). Alice revoked the broadcast: the relay deleted the replay, and her followers' devices erased its keys"
    ))?;
    Ok(())
}

fn short(id: &MessageId) -> String {
    id.to_hex()[..12].to_owned()
}

fn invite_len(invite: &mayfly_protocol::Invite) -> usize {
    invite.to_text().len()
}

/// Every file under `dir` that contains `needle`.
fn scan(dir: &Path, needle: &[u8]) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in walk(dir)? {
        let bytes = std::fs::read(&entry)?;
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(entry);
        }
    }
    Ok(found)
}

fn count_files(dir: &Path) -> usize {
    walk(dir).map(|v| v.len()).unwrap_or(0)
}

fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    Ok(out)
}

/// A writer that collects what a player would receive.
struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

struct Written(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Written {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Sink {
    fn new() -> (Self, Written) {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        (Self(buf.clone()), Written(buf))
    }
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
