//! `mayfly follow`, `unfollow`, `followers` and `mayfly live …`: going live
//! to followers and watching (spec/LIVE.md).

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use libp2p::Multiaddr;
use mayfly_node::client::{Client, ClientConfig, Event};
use mayfly_node::live::control::{self, Request};
use mayfly_node::live::{
    AudienceEvent, BroadcastConfig, Broadcaster, LiveError, Speaker, WatchConfig, WatchSummary,
    WatchUpdate, replay_viewers, revoke_replay, watch, watch_replay,
};
use mayfly_protocol::fmp4::{Cutter, CutterConfig, Piece};
use mayfly_protocol::live::chat::MAX_COMMENT_LEN;
use serde_json::json;
use tokio::sync::mpsc;

use super::output::{Stdout, contact_line, eline, print, short};
use super::{one_shot_config, start};

/// `mayfly follow` and `mayfly unfollow`.
pub fn follow(dir: &Path, contact: &str, follow: bool, json: bool) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let verb = if follow { "following" } else { "no longer following" };
        // While a watch or broadcast holds the home, it sends the message.
        let request = Request::Follow {
            name: contact.to_owned(),
            follow,
        };
        if through_running(dir, &request).await? {
            print(json, json!({"name": contact, "following": follow}), || {
                format!("{verb} {contact} (sent by the running watch or broadcast)")
            })?;
            return anyhow::Ok(());
        }
        let (client, _events) = start(dir, one_shot_config()).await?;
        let c = client.with_home(|h| h.find_contact(contact))?;
        let r = if follow {
            client.follow(&c).await
        } else {
            client.unfollow(&c).await
        };
        client.shutdown().await;
        r?;
        print(
            json,
            json!({"name": c.name, "identity": hex::encode(c.card.identity_key().to_bytes()), "following": follow}),
            || format!("{verb} {} (they learn of it at their next sync)", c.name),
        )?;
        anyhow::Ok(())
    })
}

/// Hands `request` to the watch or broadcast running in the home at `dir`
/// (CLIENT.md §4.7): true once it is done there, false when nothing runs
/// (the caller then opens the home itself).
async fn through_running(dir: &Path, request: &Request) -> anyhow::Result<bool> {
    match control::send(dir, request).await {
        Ok(()) => Ok(true),
        Err(control::ControlError::NotRunning { .. }) => Ok(false),
        Err(e) => bail!("{e}"),
    }
}

/// `mayfly followers` (and `mayfly followers --remove`). While `live start`
/// runs in this home, a removal goes through it, so that its key rotates.
pub fn followers(dir: &Path, remove: Option<&str>, json: bool) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        if let Some(name) = remove {
            let request = Request::RemoveFollower {
                name: name.to_owned(),
            };
            if through_running(dir, &request).await? {
                print(json, json!({"removed": name, "rotated": true}), || {
                    format!("removed {name} from your followers; the running broadcast's key rotated without them")
                })?;
                return anyhow::Ok(());
            }
        }
        let (client, _events) = start(dir, one_shot_config()).await?;
        // Take in pending follows first (offline: what is here).
        let synced = client.sync().await;
        let r = (|| {
            if let Some(name) = remove {
                let c = client.with_home(|h| h.find_contact(name))?;
                if !client.remove_follower(&c.card.identity_key())? {
                    bail!("{} does not follow you", c.name);
                }
                eline(format_args!("removed {} from your followers", c.name));
            }
            Ok(client.followers()?)
        })();
        client.shutdown().await;
        let list = r?;
        if let Err(e) = synced {
            eline(format_args!("mayfly: warning: no relay reached ({e}); listing what is here"));
        }
        let rows: Vec<_> = list
            .iter()
            .map(|(c, since)| json!({"name": c.name, "identity": hex::encode(c.card.identity_key().to_bytes()), "since": since.0}))
            .collect();
        print(json, json!({ "followers": rows }), || {
            if list.is_empty() {
                return "no followers yet".to_owned();
            }
            list.iter()
                .map(|(c, _)| contact_line(c))
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        anyhow::Ok(())
    })
}

/// What `mayfly live start` was asked to do.
pub struct StartOptions<'a> {
    /// Contacts to send the broadcast to; empty for the followers.
    pub to: &'a [String],
    /// Let relays keep a replay.
    pub replay: bool,
    /// The fragmented MP4 input: a file, or `-` for stdin.
    pub input: &'a str,
    /// Where the overlay peer listens.
    pub listen: Option<Multiaddr>,
    /// Wait until this many peers have joined before the first segment.
    pub wait_for: usize,
    /// Publish as fast as the input comes, not at the media's pace.
    pub no_pace: bool,
}

/// How long `live start --wait-for` waits at most.
const WAIT_FOR_VIEWERS: Duration = Duration::from_secs(60);
/// Cut pieces waiting for their time before more input is read.
const MAX_QUEUED: usize = 16;
/// How long the broadcaster stays up after its end segment.
const END_LINGER: Duration = Duration::from_millis(1_500);
/// Input read at a time.
const READ_CHUNK: usize = 64 << 10;

/// `mayfly live start`.
pub fn start_live(dir: &Path, o: &StartOptions<'_>, json: bool) -> anyhow::Result<()> {
    let input: Box<dyn Read + Send> = if o.input == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(o.input).with_context(|| format!("cannot open {}", o.input))?)
    };
    super::runtime()?.block_on(async {
        let (client, mut events) = start(dir, ClientConfig::default()).await?;
        let r = broadcast(&client, &mut events, o, input, json).await;
        client.shutdown().await;
        r
    })
}

async fn broadcast(
    client: &Client,
    events: &mut mpsc::Receiver<Event>,
    o: &StartOptions<'_>,
    mut input: Box<dyn Read + Send>,
    json: bool,
) -> anyhow::Result<()> {
    client.start().await?;
    let viewers = if o.to.is_empty() {
        let f = client.followers()?;
        if f.is_empty() {
            bail!(
                "you have no followers yet: name viewers with --to, or ask contacts to `mayfly follow` you"
            );
        }
        f.into_iter().map(|(c, _)| c.card.identity_key()).collect()
    } else {
        client.with_home(|h| {
            o.to.iter()
                .map(|n| Ok(h.find_contact(n)?.card.identity_key()))
                .collect::<anyhow::Result<Vec<_>>>()
        })?
    };
    let mut config = BroadcastConfig {
        replay: o.replay,
        ..BroadcastConfig::default()
    };
    if let Some(l) = &o.listen {
        config.listen = l.clone();
    }
    // The input is read on a thread of its own (stdin blocks).
    let (tx, mut rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(16);
    std::thread::spawn(move || {
        loop {
            let mut buf = vec![0u8; READ_CHUNK];
            match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(buf)).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    // The init part comes first: a stream that is not fragmented MP4 is
    // refused before anyone is told of the broadcast.
    let mut cutter = Some(Cutter::new(CutterConfig::default()));
    let mut ready = Vec::new();
    while ready.is_empty() {
        let c = cutter.as_mut().expect("the cutter is there until the end");
        match rx.recv().await {
            Some(Ok(bytes)) => {
                c.push(&bytes).context("the input is not fragmented MP4")?;
                ready.extend(std::iter::from_fn(|| c.next_piece()));
            }
            Some(Err(e)) => return Err(e).context("reading the input"),
            None => bail!("the input ended before its first fragment"),
        }
    }
    let (mut b, failed) = Broadcaster::start(client, viewers.clone(), config).await?;
    let id = hex::encode(b.id().0);
    let mut audience = b.audience_events().expect("taken once, here");
    let (_socket, mut control) = control::serve(&client.home_dir())
        .context("cannot serve the control socket for `live comment`")?;
    for (name, e) in &failed {
        eline(format_args!("mayfly: warning: {name} was not told: {e}"));
    }
    for e in &b.stats().forward_errors {
        eline(format_args!(
            "mayfly: warning: a relay does not carry the broadcast: {e}"
        ));
    }
    let relays = b.stats().forwarding_relays.clone();
    print(
        json,
        json!({"event": "live", "broadcast_id": id, "viewers": viewers.len() - failed.len(), "peers": b.peers(), "forwarding_relays": relays}),
        || {
            format!(
                "live {} to {} viewer(s); overlay at {}{}",
                short(&id),
                viewers.len() - failed.len(),
                b.peers().join(" "),
                match relays.len() {
                    0 => String::new(),
                    n => format!(" (through {n} relay(s) for viewers who cannot dial you)"),
                }
            )
        },
    )?;
    if o.wait_for > 0 {
        let deadline = Instant::now() + WAIT_FOR_VIEWERS;
        while b.viewers_in_overlay().await? < o.wait_for {
            if Instant::now() >= deadline {
                bail!(
                    "fewer than {} viewer(s) joined within {WAIT_FOR_VIEWERS:?}",
                    o.wait_for
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut pacer = Pacer {
        init: Vec::new(),
        started: tokio::time::Instant::now(),
        first_ms: None,
        sent: 0,
        pace: !o.no_pace,
        bar: spinner(!json),
        viewers: (Vec::new(), 0),
    };
    // Pieces wait here for their time; the input is read only while few
    // wait, so a long file is not read into memory ahead of its pace.
    let mut queue: std::collections::VecDeque<Piece> = ready.into();
    let mut input_done = false;
    loop {
        while let Some(p) = queue.front() {
            if pacer.due_at(p) > tokio::time::Instant::now() {
                break;
            }
            let p = queue.pop_front().expect("there is a front");
            pacer.send(&mut b, p).await?;
        }
        if input_done && queue.is_empty() {
            break;
        }
        let wake = queue.front().map(|p| pacer.due_at(p));
        tokio::select! {
            chunk = rx.recv(), if !input_done && queue.len() < MAX_QUEUED => match chunk {
                Some(Ok(bytes)) => {
                    let c = cutter.as_mut().expect("the cutter is there until the end");
                    c.push(&bytes).context("the input is not fragmented MP4")?;
                    queue.extend(std::iter::from_fn(|| c.next_piece()));
                }
                Some(Err(e)) => return Err(e).context("reading the input"),
                None => {
                    let c = cutter.take().expect("the cutter is there until the end");
                    queue.extend(c.finish().context("the input is not fragmented MP4")?);
                    input_done = true;
                }
            },
            () = tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)), if wake.is_some() => {}
            Some(a) = audience.recv() => {
                show_audience(client, &a, &pacer.bar, json, false);
                pacer.viewers = b.watching();
            }
            Some(r) = control.recv() => {
                let answer = match &r.request {
                    Request::Comment { broadcast, text } => {
                        if !id.starts_with(&broadcast.to_ascii_lowercase()) {
                            Err(format!("this home is broadcasting {}, not {broadcast}", short(&id)))
                        } else {
                            match b.comment(text).await {
                                Ok(true) => Ok(()),
                                Ok(false) => Err("no viewer has joined the overlay yet".into()),
                                Err(e) => Err(e.to_string()),
                            }
                        }
                    }
                    Request::RemoveFollower { name } => {
                        remove_follower(client, &mut b, name, &pacer.bar, json).await
                    }
                    Request::Follow { name, follow } => {
                        mayfly_node::live::follow(client, name, *follow).await
                    }
                    _ => Err("not a request a broadcast takes".into()),
                };
                let _ = r.reply.send(answer);
            }
            e = events.recv() => {
                if let Some(Event::Follower { identity, name, following }) = e {
                    if following {
                        b.add_viewer(identity).await?;
                        show(&pacer.bar, json, json!({"event": "viewer_added", "name": name}), format!("{name} followed you and joined"));
                    } else if b.viewers().contains(&identity) {
                        b.remove_viewer(&identity).await?;
                        show(&pacer.bar, json, json!({"event": "rotated", "removed": name, "epoch": b.stats().epochs - 1}), format!("{name} unfollowed: the key rotated without them"));
                    }
                }
            }
        }
    }
    // What the audience said while the last segments went out.
    while let Ok(a) = audience.try_recv() {
        show_audience(client, &a, &pacer.bar, json, false);
    }
    let stats = b.end(END_LINGER).await?;
    pacer.bar.finish_and_clear();
    let named: Vec<String> = stats
        .named_viewers
        .iter()
        .map(|id| speaker(client, &Speaker::Named(*id)))
        .collect();
    if let Some(r) = &stats.replay {
        for e in &r.errors {
            eline(format_args!("mayfly: warning: replay: {e}"));
        }
    }
    let replay = stats
        .replay
        .as_ref()
        .map(|r| json!({"kept": r.kept, "failed": r.failed, "dropped": r.dropped}));
    let replay_line = stats.replay.as_ref().map_or_else(String::new, |r| {
        let lost = r.failed + r.dropped;
        format!(
            "\nreplay: {} segment(s) kept at your relays for 24 h{}",
            r.kept,
            if lost == 0 {
                String::new()
            } else {
                format!(", {lost} missing")
            }
        )
    });
    print(
        json,
        json!({"event": "ended", "broadcast_id": id, "segments": stats.segments, "published": stats.published, "bytes": stats.bytes, "epochs": stats.epochs, "refused": stats.refused, "viewers": named, "anonymous_viewers": stats.anonymous_viewers, "replay": replay}),
        || {
            format!(
                "ended {}: {} segment(s), {} bytes, {} epoch key(s); {} went out to the overlay\nwatched by: {}{}{replay_line}",
                short(&id),
                stats.segments,
                stats.bytes,
                stats.epochs,
                stats.published,
                if named.is_empty() {
                    "nobody by name".to_owned()
                } else {
                    named.join(", ")
                },
                match stats.anonymous_viewers {
                    0 => String::new(),
                    n => format!(", and {n} anonymous viewer(s)"),
                }
            )
        },
    )?;
    Ok(())
}

/// Sends the cut pieces of the input, at the media's pace unless told not
/// to, and shows how far the broadcast is.
struct Pacer {
    init: Vec<u8>,
    started: tokio::time::Instant,
    first_ms: Option<u64>,
    sent: u64,
    pace: bool,
    bar: ProgressBar,
    /// Who is watching: named, and how many anonymous.
    viewers: (Vec<mayfly_protocol::SigningPublicKey>, usize),
}

impl Pacer {
    /// When `piece` is due: at the media's pace, segment N goes out when its
    /// start time has come, counted from the first; anything else at once.
    fn due_at(&mut self, piece: &Piece) -> tokio::time::Instant {
        match piece {
            Piece::Segment(seg) if self.pace => {
                let first = *self.first_ms.get_or_insert(seg.start_ms);
                self.started + Duration::from_millis(seg.start_ms.saturating_sub(first))
            }
            _ => self.started,
        }
    }

    async fn send(&mut self, b: &mut Broadcaster, piece: Piece) -> anyhow::Result<()> {
        match piece {
            Piece::Init(i) => self.init = i,
            Piece::Segment(seg) => {
                let first = *self.first_ms.get_or_insert(seg.start_ms);
                b.send(&self.init, &seg).await?;
                self.sent += 1;
                self.bar.set_message(format!(
                    "live: {} segment(s), {:.1} s, {} peer(s) in mesh, {} watching",
                    self.sent,
                    (seg.start_ms - first + u64::from(seg.duration_ms)) as f64 / 1000.0,
                    b.peer().mesh_size().await.unwrap_or(0),
                    self.viewers.0.len() + self.viewers.1,
                ));
            }
        }
        Ok(())
    }
}

fn spinner(enabled: bool) -> ProgressBar {
    use std::io::IsTerminal;
    let target = if enabled && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// `mayfly live list`: broadcasts this device holds keys for.
pub fn list(dir: &Path, json: bool) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let (client, _events) = start(dir, one_shot_config()).await?;
        let synced = client.sync().await;
        let r = client.with_home(|h| -> anyhow::Result<_> {
            let mut rows = Vec::new();
            let own = h.identity().public();
            for b in h.broadcasts()? {
                let name = match h.contact(&b.broadcaster)? {
                    _ if b.broadcaster == own => "you".to_owned(),
                    Some(c) => c.name,
                    None => "?".to_owned(),
                };
                rows.push((b, name));
            }
            Ok(rows)
        });
        client.shutdown().await;
        let rows = r?;
        if let Err(e) = synced {
            eline(format_args!("mayfly: warning: no relay reached ({e}); listing what is here"));
        }
        let list: Vec<_> = rows
            .iter()
            .map(|(b, name)| json!({"broadcast_id": hex::encode(b.id.0), "broadcaster": name, "started_at": b.started_at.0, "replay": b.replay, "epochs": b.epochs, "peers": b.peers}))
            .collect();
        print(json, json!({ "broadcasts": list }), || {
            if rows.is_empty() {
                return "no broadcasts".to_owned();
            }
            rows.iter()
                .map(|(b, name)| format!("{}  {name}  {} key(s)", short(&hex::encode(b.id.0)), b.epochs.len()))
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        anyhow::Ok(())
    })
}

/// What `mayfly live watch` was asked to do.
pub struct WatchOptions<'a> {
    /// The broadcast (an id prefix).
    pub id: &'a str,
    /// A file, or `-` for stdout.
    pub out: &'a str,
    /// Overlay peers to dial besides the key's.
    pub peers: Vec<Multiaddr>,
    /// Where the overlay peer listens.
    pub listen: Option<Multiaddr>,
    /// Give up after this long with nothing new.
    pub idle: Duration,
    /// Publish no signed join.
    pub anonymous: bool,
    /// Play the replay from its start.
    pub replay: bool,
}

/// `mayfly live watch`.
pub fn watch_live(dir: &Path, o: &WatchOptions<'_>, json: bool) -> anyhow::Result<()> {
    let out = o.out;
    super::runtime()?.block_on(async {
        let (client, mut events) = start(dir, ClientConfig::default()).await?;
        let r = async {
            client.start().await?;
            let b = client.with_home(|h| h.find_broadcast(o.id))?;
            let mut config = WatchConfig {
                extra_peers: o.peers.clone(),
                idle: o.idle,
                anonymous: o.anonymous,
                ..WatchConfig::default()
            };
            if let Some(l) = &o.listen {
                config.listen = l.clone();
            }
            let (_socket, comments) = control::serve(&client.home_dir())
                .context("cannot serve the control socket for `live comment`")?;
            let bar = spinner(!json);
            let show = |u: WatchUpdate<'_>| match u {
                WatchUpdate::Progress(p) if p.replay => bar.set_message(format!(
                    "replay: {} segment(s), {} skipped, {} bytes",
                    p.played, p.skipped, p.bytes
                )),
                WatchUpdate::Progress(p) => bar.set_message(format!(
                    "{} segment(s), {} skipped, {} bytes, latency {} ms",
                    p.played, p.skipped, p.bytes, p.latency_ms
                )),
                WatchUpdate::Audience(a) => show_audience(&client, a, &bar, json, out == "-"),
                WatchUpdate::Joined => {
                    let how = if o.anonymous {
                        "anonymously"
                    } else {
                        "as yourself"
                    };
                    let v = json!({"event": "watching", "anonymous": o.anonymous});
                    if json && out == "-" {
                        eline(v.to_string());
                    } else {
                        show(&bar, json, v, format!("joined the broadcast {how}"));
                    }
                }
                _ => {}
            };
            let from_replay = |bar: &ProgressBar| {
                self::show(
                    bar,
                    json && out != "-",
                    json!({"event": "replay"}),
                    "the broadcast is over: playing its replay from the broadcaster's relays"
                        .to_owned(),
                )
            };
            let s = if out == "-" {
                watch_or_replay(
                    &client,
                    &mut events,
                    &b,
                    &mut Stdout,
                    &config,
                    o.replay,
                    comments,
                    show,
                    from_replay,
                    &bar,
                )
                .await?
            } else {
                let mut f = std::io::BufWriter::new(
                    std::fs::File::create(out).with_context(|| format!("cannot create {out}"))?,
                );
                watch_or_replay(
                    &client,
                    &mut events,
                    &b,
                    &mut f,
                    &config,
                    o.replay,
                    comments,
                    show,
                    from_replay,
                    &bar,
                )
                .await?
            };
            bar.finish_and_clear();
            anyhow::Ok((b, s))
        }
        .await;
        client.shutdown().await;
        let (b, s) = r?;
        report(&hex::encode(b.id.0), &s, out, json)?;
        if s.progress.played == 0 {
            bail!("no segment of the broadcast arrived within {:?}", o.idle);
        }
        anyhow::Ok(())
    })
}

/// Watches `b` live, or plays its replay: when asked to (`replay`), or when
/// the broadcast, which has a replay, can no longer be joined.
#[allow(clippy::too_many_arguments)]
async fn watch_or_replay<W: std::io::Write>(
    client: &Client,
    events: &mut mpsc::Receiver<Event>,
    b: &mayfly_node::home::Broadcast,
    out: &mut W,
    config: &WatchConfig,
    replay: bool,
    comments: mpsc::Receiver<control::ControlRequest>,
    mut show: impl FnMut(WatchUpdate<'_>),
    from_replay: impl Fn(&ProgressBar),
    bar: &ProgressBar,
) -> anyhow::Result<WatchSummary> {
    if !replay {
        // A broadcast that is over plays its replay: nobody can be dialled,
        // or whom the viewer reached had nothing to give (a relay's
        // forwarder that outlived a broadcaster that stopped short).
        match watch(
            client,
            Some(events),
            b,
            out,
            config,
            Some(comments),
            &mut show,
        )
        .await
        {
            Err(LiveError::NoPeers) if b.replay => from_replay(bar),
            Ok(s) if b.replay && s.progress.played == 0 => from_replay(bar),
            r => return Ok(r?),
        }
    } else if !b.replay {
        bail!("this broadcast has no replay: it was not started with --replay");
    }
    Ok(watch_replay(client, b, out, config, show).await?)
}

/// `mayfly live viewers`: who watched the replay of this home's own
/// broadcast, from the joins kept with it at its relays.
pub fn viewers(dir: &Path, id: &str, json: bool) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let (client, _events) = start(dir, one_shot_config()).await?;
        let r = async {
            let b = client.with_home(|h| h.find_broadcast(id))?;
            let a = replay_viewers(&client, &b).await?;
            let names: Vec<String> = a
                .named
                .iter()
                .map(|i| speaker(&client, &Speaker::Named(*i)))
                .collect();
            anyhow::Ok((hex::encode(b.id.0), a, names))
        }
        .await;
        client.shutdown().await;
        let (id, a, names) = r?;
        print(
            json,
            json!({"broadcast_id": id, "viewers": names, "anonymous_viewers": a.anonymous, "unreadable": a.unreadable}),
            || {
                format!(
                    "the replay of {} was watched by: {}{}",
                    short(&id),
                    if names.is_empty() {
                        "nobody by name".to_owned()
                    } else {
                        names.join(", ")
                    },
                    match a.anonymous {
                        0 => String::new(),
                        n => format!(", and {n} anonymous viewer(s)"),
                    }
                )
            },
        )?;
        anyhow::Ok(())
    })
}

/// `mayfly live revoke`: deletes the replay of this home's own broadcast
/// at its relays and erases its keys here.
pub fn revoke(dir: &Path, id: &str, json: bool) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let (client, _events) = start(dir, one_shot_config()).await?;
        let r = async {
            let b = client.with_home(|h| h.find_broadcast(id))?;
            anyhow::Ok((hex::encode(b.id.0), revoke_replay(&client, &b).await?))
        }
        .await;
        client.shutdown().await;
        let (id, r) = r?;
        for (relay, e) in &r.failed {
            eline(format_args!("mayfly: warning: the replay at {relay} was not deleted: {e}"));
        }
        for (name, e) in &r.not_told {
            eline(format_args!("mayfly: warning: {name} was not told to erase the keys: {e}"));
        }
        print(
            json,
            json!({"revoked": id, "deleted_at": r.deleted_at, "failed": r.failed.iter().map(|(a, _)| a).collect::<Vec<_>>(), "keys_erased": r.keys_erased, "followers_told": r.told}),
            || {
                format!(
                    "revoked {}: replay deleted at {} relay(s), keys erased here; {} follower(s) told to erase theirs",
                    short(&id),
                    r.deleted_at.len(),
                    r.told
                )
            },
        )?;
        if r.deleted_at.is_empty() {
            bail!("no relay deleted the replay");
        }
        anyhow::Ok(())
    })
}

/// How long a one-off `live comment` waits for a peer of the broadcast.
const COMMENT_WITHIN: Duration = Duration::from_secs(10);

/// `mayfly live comment`: through the broadcast or watch running in this
/// home if there is one, else by joining the overlay just for it.
pub fn comment(dir: &Path, id: &str, text: &str, json: bool) -> anyhow::Result<()> {
    if text.is_empty() || text.len() > MAX_COMMENT_LEN || text.chars().any(char::is_control) {
        bail!(
            "a comment is 1 to {MAX_COMMENT_LEN} bytes of text on one line, without control characters"
        );
    }
    super::runtime()?.block_on(async {
        let request = control::Request::Comment {
            broadcast: id.to_owned(),
            text: text.to_owned(),
        };
        let via = if through_running(dir, &request).await? {
            "the running broadcast or watch"
        } else {
            let (client, _events) = start(dir, ClientConfig::default()).await?;
            let r = async {
                let b = client.with_home(|h| h.find_broadcast(id))?;
                mayfly_node::live::comment(
                    &client,
                    &b,
                    text,
                    &WatchConfig::default(),
                    COMMENT_WITHIN,
                )
                .await?;
                anyhow::Ok(())
            }
            .await;
            client.shutdown().await;
            r?;
            "the overlay"
        };
        print(json, json!({"commented": text, "broadcast": id}), || {
            format!("commented on {id} through {via}")
        })?;
        anyhow::Ok(())
    })
}

/// A line for the user: JSON on stdout, or text above the spinner.
fn show(bar: &ProgressBar, json: bool, value: serde_json::Value, text: String) {
    if json {
        let _ = print(true, value, String::new);
    } else if bar.is_hidden() {
        eline(text);
    } else {
        bar.println(text);
    }
}

/// `followers --remove NAME` handed to the running broadcast: the follower
/// goes, and the key rotates without them if they were a viewer.
async fn remove_follower(
    client: &Client,
    b: &mut Broadcaster,
    name: &str,
    bar: &ProgressBar,
    json: bool,
) -> Result<(), String> {
    let c = client
        .with_home(|h| h.find_contact(name))
        .map_err(|e| e.to_string())?;
    let identity = c.card.identity_key();
    let was_follower = client
        .remove_follower(&identity)
        .map_err(|e| e.to_string())?;
    let was_viewer = b.viewers().contains(&identity);
    if !was_follower && !was_viewer {
        return Err(format!("{} does not follow you", c.name));
    }
    if was_viewer {
        let failed = b
            .remove_viewer(&identity)
            .await
            .map_err(|e| e.to_string())?;
        for (who, e) in failed {
            eline(format_args!(
                "mayfly: warning: {who} did not get the new key: {e}"
            ));
        }
        show(
            bar,
            json,
            json!({"event": "rotated", "removed": c.name, "epoch": b.stats().epochs - 1}),
            format!("removed {}: the key rotated without them", c.name),
        );
    }
    Ok(())
}

/// A chat speaker's name: a contact's name, "you", or a short fingerprint.
fn speaker(client: &Client, s: &Speaker) -> String {
    match s {
        Speaker::Anonymous => "an anonymous viewer".to_owned(),
        Speaker::Named(id) => client
            .with_home(|h| {
                if h.identity().public() == *id {
                    return Some("you".to_owned());
                }
                h.contact(id).ok().flatten().map(|c| c.name)
            })
            .unwrap_or_else(|| format!("someone ({})", short(&hex::encode(id.to_bytes())))),
    }
}

/// Prints a join, leave or comment above the spinner on stderr, or as a
/// JSON line: on stdout unless it carries the video (`video_out`).
fn show_audience(
    client: &Client,
    a: &AudienceEvent,
    bar: &ProgressBar,
    json: bool,
    video_out: bool,
) {
    let (event, who, line) = match a {
        AudienceEvent::Joined(s) => {
            let who = speaker(client, s);
            ("joined", who.clone(), format!("{who} is watching"))
        }
        AudienceEvent::Left(s) => {
            let who = speaker(client, s);
            ("left", who.clone(), format!("{who} left"))
        }
        AudienceEvent::Comment { from, text, .. } => {
            let who = speaker(client, &Speaker::Named(*from));
            ("comment", who.clone(), format!("{who}: {text}"))
        }
        _ => return,
    };
    let text = match a {
        AudienceEvent::Comment { text, .. } => Some(text.as_str()),
        _ => None,
    };
    let v = json!({"event": event, "who": who, "text": text});
    if json && video_out {
        // Stdout carries the video.
        eline(v.to_string());
    } else {
        show(bar, json, v, line);
    }
}

fn report(id: &str, s: &WatchSummary, out: &str, json: bool) -> anyhow::Result<()> {
    let mut l = s.latencies_ms.clone();
    l.sort_unstable();
    let pct = |q: f64| {
        l.get(((l.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    let p = &s.progress;
    let msg = json!({
        "broadcast_id": id, "ended": s.ended, "segments": p.played, "skipped": p.skipped,
        "bytes": p.bytes, "latency_p50_ms": pct(0.5), "latency_p99_ms": pct(0.99),
        "no_key": p.no_key, "refused": p.refused, "replay": p.replay,
    });
    let how = match (s.ended, p.replay) {
        (true, false) => "watched",
        (false, false) => "stopped watching",
        (true, true) => "watched the replay of",
        (false, true) => "played what the relays keep of the replay of",
    };
    let text = if p.replay {
        format!(
            "{how} {}: {} segment(s), {} skipped, {} bytes",
            short(id),
            p.played,
            p.skipped,
            p.bytes
        )
    } else {
        format!(
            "{how} {}: {} segment(s), {} skipped, {} bytes, latency p50 {} ms, p99 {} ms",
            short(id),
            p.played,
            p.skipped,
            p.bytes,
            pct(0.5).unwrap_or(0),
            pct(0.99).unwrap_or(0)
        )
    };
    if out == "-" {
        // Stdout carries the video.
        eline(if json { msg.to_string() } else { text });
    } else {
        print(json, msg, || text)?;
    }
    Ok(())
}
