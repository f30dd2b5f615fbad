//! One function per client subcommand.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mayfly_node::client::{ClientConfig, ClientError, Event, OpenTarget, SendOptions};
use mayfly_node::home::{Home, Profile, Via};
use mayfly_protocol::{
    ClipKind, ContactCard, Invite, MessageId, SigningPublicKey, UnixMillis, safety_number,
};
use serde_json::json;

use super::output::{Stdout, contact_line, eline, print, short};
use super::{one_shot_config, progress, start};

fn now() -> UnixMillis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    UnixMillis(ms)
}

fn via_text(via: &Via) -> String {
    match via {
        Via::Direct => "direct".into(),
        Via::Relay { address } => format!("relay {address}"),
        Via::Pending => "pending".into(),
    }
}

/// `mayfly init`.
pub fn init(dir: &Path, name: String, relays: Vec<String>, json: bool) -> anyhow::Result<()> {
    for r in &relays {
        mayfly_node::client::parse_relay(r)?;
    }
    let mut rng = mayfly_node::rng::node_rng(None)?;
    let home = mayfly_node::client::create_home(
        dir,
        Profile {
            display_name: name,
            relays,
        },
        now(),
        &mut rng,
    )?;
    let card = home.card()?;
    let identity = hex::encode(home.identity().public().to_bytes());
    let has_relays = !home.profile().relays.is_empty();
    drop(home);
    // Register at the relays now (log in, publish prekeys), so that contacts
    // can deposit for us before our first `inbox`.
    let registered = if has_relays {
        super::runtime()?.block_on(async {
            let (client, _events) = start(dir, one_shot_config()).await?;
            let r = client.sync().await;
            client.shutdown().await;
            anyhow::Ok(r)
        })?
    } else {
        Ok(0)
    };
    let (reached, warning) = match registered {
        Ok(n) => (n, None),
        Err(e) => (0, Some(e.to_string())),
    };
    if let Some(w) = &warning {
        eline(format_args!(
            "mayfly: warning: no relay reached yet ({w}); `mayfly inbox` registers later"
        ));
    }
    print(
        json,
        json!({
            "home": dir.display().to_string(),
            "identity": identity,
            "card": card.to_text(),
            "relays_reached": reached,
        }),
        || {
            format!(
                "created {}\nidentity {identity}\nregistered at {reached} relay(s)\nyour card (give it to your contacts):\n{}",
                dir.display(),
                card.to_text()
            )
        },
    )?;
    Ok(())
}

/// `mayfly card`.
pub fn card(dir: &Path, json: bool) -> anyhow::Result<()> {
    let home = Home::open(dir)?;
    let card = home.card()?;
    print(
        json,
        json!({"card": card.to_text(), "name": card.display_name()}),
        || card.to_text(),
    )?;
    Ok(())
}

/// `mayfly contact add`: a card (one way) or an invite (both ways).
pub fn contact_add(dir: &Path, text: &str, json: bool) -> anyhow::Result<()> {
    let text = text.trim();
    if text.starts_with(mayfly_protocol::control::INVITE_TEXT_PREFIX) {
        return invite_accept(dir, text, json);
    }
    let card = ContactCard::from_text(text).context("not a valid contact card")?;
    let home = Home::open(dir)?;
    let contact = home.add_contact(&card, now())?;
    let sn = safety_number(&home.identity().public(), &card.identity_key());
    print(
        json,
        json!({"name": contact.name, "identity": hex::encode(card.identity_key().to_bytes()), "safety_number": sn}),
        || format!("added {}\nsafety number: {sn}", contact.name),
    )?;
    Ok(())
}

/// `mayfly contact list`.
pub fn contact_list(dir: &Path, json: bool) -> anyhow::Result<()> {
    let home = Home::open(dir)?;
    let contacts = home.contacts()?;
    let me = home.identity().public();
    let list: Vec<_> = contacts
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "identity": hex::encode(c.card.identity_key().to_bytes()),
                "device_serial": c.certificate.serial(),
                "safety_number": safety_number(&me, &c.card.identity_key()),
            })
        })
        .collect();
    print(json, json!({ "contacts": list }), || {
        contacts
            .iter()
            .map(contact_line)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(())
}

/// `mayfly invite`.
pub fn invite(dir: &Path, json: bool) -> anyhow::Result<()> {
    let home = Home::open(dir)?;
    let mut rng = mayfly_node::rng::node_rng(None)?;
    let token = home.new_invite_token(now(), &mut rng)?;
    let invite = Invite {
        token,
        card: home.card()?,
    };
    let text = invite.to_text();
    print(json, json!({ "invite": text }), || {
        format!("{text}\n(valid 7 days, once; the invitee runs `mayfly invite accept` with it)")
    })?;
    Ok(())
}

/// `mayfly invite accept`.
pub fn invite_accept(dir: &Path, text: &str, json: bool) -> anyhow::Result<()> {
    let invite = Invite::from_text(text).context("not a valid invite")?;
    super::runtime()?.block_on(async {
        let (client, _events) = start(dir, one_shot_config()).await?;
        client.sync().await.ok();
        let contact = client.accept_invite(&invite).await?;
        client.shutdown().await;
        print(
            json,
            json!({"name": contact.name, "identity": hex::encode(contact.card.identity_key().to_bytes())}),
            || {
                format!(
                    "added {}; they will add you when they next sync",
                    contact.name
                )
            },
        )?;
        anyhow::Ok(())
    })
}

fn find_recipients(home: &Home, to: &[String]) -> anyhow::Result<Vec<SigningPublicKey>> {
    to.iter()
        .map(|name| Ok(home.find_contact(name)?.card.identity_key()))
        .collect()
}

/// `mayfly send`.
pub fn send(
    dir: &Path,
    to: &[String],
    file: &Path,
    expires: Option<Duration>,
    allow_save: bool,
    json: bool,
) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let (client, _events) = start(dir, one_shot_config()).await?;
        let recipients = client.with_home(|h| find_recipients(h, to))?;
        let options = SendOptions {
            ttl_ms: expires.map_or(mayfly_protocol::DEFAULT_CLIP_TTL_MS, |d| d.as_millis() as u64),
            allow_save,
            progress: progress::bars(!json),
        };
        let report = client.send_file(&recipients, file, options).await?;
        client.shutdown().await;
        let id = report.message_id.to_hex();
        let delivered: Vec<_> = report
            .delivered
            .iter()
            .map(|d| json!({"to": d.name, "via": via_text(&d.via), "ms": d.elapsed.as_millis() as u64}))
            .collect();
        let failed: Vec<_> = report
            .failed
            .iter()
            .map(|(n, e)| json!({"to": n, "error": e.to_string()}))
            .collect();
        print(
            json,
            json!({"message_id": id, "delivered": delivered, "failed": failed}),
            || {
                let mut lines = vec![format!("sent {}", short(&id))];
                for d in &report.delivered {
                    lines.push(format!("  {}: {}", d.name, via_text(&d.via)));
                }
                for (n, e) in &report.failed {
                    lines.push(format!("  {n}: FAILED: {e}"));
                }
                lines.join("\n")
            },
        )?;
        if !report.failed.is_empty() {
            bail!("{} recipient(s) did not get the clip", report.failed.len());
        }
        anyhow::Ok(())
    })
}

/// Finds a message by id or unique hex prefix (≥ 6 digits) in the inbox or outbox.
fn resolve(home: &Home, prefix: &str) -> anyhow::Result<MessageId> {
    let p = prefix.to_ascii_lowercase();
    if p.len() < 6 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("message id {prefix:?}: give at least 6 hex digits (see `mayfly inbox`)");
    }
    let mut ids: Vec<MessageId> = home
        .list_received()?
        .into_iter()
        .map(|r| r.message_id)
        .chain(home.list_sent()?.into_iter().map(|s| s.message_id))
        .filter(|id| id.to_hex().starts_with(&p))
        .collect();
    ids.dedup();
    match ids.len() {
        0 => bail!("no message {prefix} (see `mayfly inbox`)"),
        1 => Ok(ids[0]),
        _ => bail!("message id {prefix} is ambiguous: give more digits"),
    }
}

/// `mayfly react`.
pub fn react(dir: &Path, id: &str, flik: Option<&str>, json: bool) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let (client, _events) = start(dir, one_shot_config()).await?;
        let parent = client.with_home(|h| resolve(h, id))?;
        let options = SendOptions {
            progress: progress::bars(!json),
            ..SendOptions::default()
        };
        let report = client.react(&parent, flik, options).await?;
        client.shutdown().await;
        let rid = report.message_id.to_hex();
        print(
            json,
            json!({"message_id": rid, "parent": parent.to_hex()}),
            || {
                format!(
                    "reacted to {} with {}",
                    short(&parent.to_hex()),
                    short(&rid)
                )
            },
        )?;
        anyhow::Ok(())
    })
}

/// `mayfly inbox`: syncs with the relays, then lists received and sent clips.
pub fn inbox(dir: &Path, offline: bool, json: bool) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let (client, mut events) = start(dir, one_shot_config()).await?;
        let mut warnings = Vec::new();
        if !offline {
            match client.sync().await {
                // Nothing is left to list: the home has erased itself.
                Err(e @ ClientError::DeviceReplaced { .. }) => return Err(e.into()),
                Err(e) => warnings.push(e.to_string()),
                Ok(_) => {}
            }
        }
        // Expiry needs no network: it is enforced here either way.
        client.expire().await?;
        while let Ok(e) = events.try_recv() {
            if let Event::Warning { message } = e {
                warnings.push(message);
            }
        }
        client.shutdown().await;
        let now = client_now();
        let (received, sent, names) = client.with_home(|h| {
            let names: std::collections::HashMap<_, _> = h
                .contacts()
                .unwrap_or_default()
                .into_iter()
                .map(|c| (c.card.identity_key(), c.name))
                .collect();
            (h.list_received(), h.list_sent(), names)
        });
        let (received, sent) = (received?, sent?);
        let name = |k: &SigningPublicKey| {
            names
                .get(k)
                .cloned()
                .unwrap_or_else(|| format!("unknown {}", &hex::encode(k.to_bytes())[..8]))
        };
        let kind = |k: ClipKind| match k {
            ClipKind::Clip => "clip",
            ClipKind::Reaction => "flik",
            ClipKind::LiveSegment => "live",
        };
        let rows: Vec<_> = received
            .iter()
            .map(|r| {
                json!({
                    "id": r.message_id.to_hex(),
                    "from": name(&r.sender),
                    "kind": kind(r.header.kind),
                    "duration_ms": r.header.duration_ms,
                    "bytes": r.header.content_len,
                    "allow_save": r.header.allow_save,
                    "opened": r.opened,
                    "parent": r.header.parent.map(|p| p.to_hex()),
                    "expires_in_s": r.header.expires_at.0.saturating_sub(now.0) / 1000,
                    "direct": r.sources.iter().any(|s| matches!(s, mayfly_node::home::Source::Local { .. })),
                })
            })
            .collect();
        let sent_rows: Vec<_> = sent
            .iter()
            .map(|s| {
                json!({
                    "id": s.message_id.to_hex(),
                    "to": s.recipients.iter().map(|d| name(&d.identity)).collect::<Vec<_>>(),
                    "kind": kind(s.header.kind),
                    "expires_in_s": s.header.expires_at.0.saturating_sub(now.0) / 1000,
                })
            })
            .collect();
        print(
            json,
            json!({"received": rows, "sent": sent_rows, "warnings": warnings}),
            || {
                let mut lines = Vec::new();
                for w in &warnings {
                    lines.push(format!("warning: {w}"));
                }
                lines.push(format!("received ({}):", received.len()));
                for r in &received {
                    lines.push(format!(
                        "  {}  from {:12} {} {:.1} s{}{}",
                        short(&r.message_id.to_hex()),
                        name(&r.sender),
                        kind(r.header.kind),
                        f64::from(r.header.duration_ms) / 1000.0,
                        if r.opened { "" } else { "  new" },
                        r.header
                            .parent
                            .map(|p| format!("  re {}", short(&p.to_hex())))
                            .unwrap_or_default(),
                    ));
                }
                lines.push(format!("sent ({}):", sent.len()));
                for s in &sent {
                    let to: Vec<_> = s.recipients.iter().map(|d| name(&d.identity)).collect();
                    lines.push(format!(
                        "  {}  to {} {}",
                        short(&s.message_id.to_hex()),
                        to.join(","),
                        kind(s.header.kind)
                    ));
                }
                lines.join("\n")
            },
        )?;
        anyhow::Ok(())
    })
}

fn client_now() -> UnixMillis {
    let offset = super::clock_offset().unwrap_or(0);
    UnixMillis((now().0 as i64).saturating_add(offset).max(0) as u64)
}

/// `mayfly open`.
pub fn open(dir: &Path, id: &str, out: &str, json: bool) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let (client, _events) = start(dir, one_shot_config()).await?;
        let mid = client.with_home(|h| resolve(h, id))?;
        let target = if out == "-" {
            OpenTarget::Writer(Box::new(Stdout))
        } else {
            OpenTarget::File(out.into())
        };
        let started = Instant::now();
        let report = client
            .open(&mid, target, progress::bars(!json && out != "-"))
            .await?;
        client.shutdown().await;
        let msg = json!({
            "message_id": mid.to_hex(),
            "bytes": report.bytes,
            "chunks": report.chunk_latencies.len(),
            "ms": started.elapsed().as_millis() as u64,
        });
        if out == "-" {
            // Stdout carries the clip: the report goes to stderr, for
            // scripts only.
            if json {
                eline(msg);
            }
        } else {
            print(json, msg, || {
                format!("wrote {} bytes to {out}", report.bytes)
            })?;
        }
        anyhow::Ok(())
    })
}

/// `mayfly revoke`.
pub fn revoke(dir: &Path, id: &str, json: bool) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let (client, _events) = start(dir, one_shot_config()).await?;
        let mid = client.with_home(|h| resolve(h, id))?;
        let report = client.revoke(&mid).await?;
        client.shutdown().await;
        let notified: Vec<_> = report
            .notified
            .iter()
            .map(|(n, v)| json!({"to": n, "via": via_text(v)}))
            .collect();
        let failed: Vec<_> = report
            .failed
            .iter()
            .map(|(n, e)| json!({"what": n, "error": e.to_string()}))
            .collect();
        print(
            json,
            json!({"message_id": mid.to_hex(), "relays": report.relays, "notified": notified, "failed": failed, "reactions_erased": report.reactions}),
            || {
                let mut lines = vec![format!(
                    "revoked {}: deleted at {} relay(s), {} recipient(s) told, {} reaction(s) erased",
                    short(&mid.to_hex()),
                    report.relays.len(),
                    report.notified.len(),
                    report.reactions
                )];
                for (n, e) in &report.failed {
                    lines.push(format!("  not reached: {n}: {e}"));
                }
                lines.join("\n")
            },
        )?;
        anyhow::Ok(())
    })
}

/// `mayfly device replace`.
pub fn device_replace(dir: &Path, json: bool) -> anyhow::Result<()> {
    let serial = {
        let mut home = Home::open(dir)?;
        let mut rng = mayfly_node::rng::node_rng(None)?;
        home.replace_device(now(), &mut rng)?.certificate().serial()
    };
    super::runtime()?.block_on(async {
        let (client, _events) = start(dir, one_shot_config()).await?;
        let reached = client.sync().await?;
        let failed = client.send_card_update().await?;
        client.shutdown().await;
        print(
            json,
            json!({"device_serial": serial, "relays": reached, "contacts_not_told": failed.iter().map(|(n, _)| n).collect::<Vec<_>>()}),
            || {
                format!(
                    "this is now device #{serial}; {reached} relay(s) refuse the old one; {} contact(s) not told",
                    failed.len()
                )
            },
        )?;
        anyhow::Ok(())
    })
}

/// `mayfly online`: stays connected, receiving direct deliveries and
/// pushes, until SIGINT/SIGTERM.
pub fn online(dir: &Path, listen: Vec<libp2p::Multiaddr>, json: bool) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let signals = mayfly_node::shutdown::ShutdownSignals::install()?;
        let mut config = ClientConfig::default();
        if !listen.is_empty() {
            config.listen = listen;
        }
        let (client, mut events) = start(dir, config).await?;
        client.start().await?;
        let stop = signals.recv();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                e = events.recv() => {
                    let Some(e) = e else { break };
                    if let Err(e) = print_event(&e, json) {
                        client.shutdown().await;
                        return Err(e.into());
                    }
                }
            }
        }
        client.shutdown().await;
        anyhow::Ok(())
    })
}

fn print_event(e: &Event, json: bool) -> std::io::Result<()> {
    let (v, t) = match e {
        Event::Listening { address } => (
            json!({"event": "listening", "address": address.to_string()}),
            format!("listening {address}"),
        ),
        Event::Received {
            message_id,
            sender_name,
            direct,
            ..
        } => (
            json!({"event": "received", "id": message_id.to_hex(), "from": sender_name, "direct": direct}),
            format!(
                "received {} from {} ({})",
                short(&message_id.to_hex()),
                sender_name.as_deref().unwrap_or("unknown"),
                if *direct { "direct" } else { "relay" }
            ),
        ),
        Event::Revoked { message_id } => (
            json!({"event": "revoked", "id": message_id.to_hex()}),
            format!("revoked {} (erased)", short(&message_id.to_hex())),
        ),
        Event::Expired { message_ids } => (
            json!({"event": "expired", "ids": message_ids.iter().map(|m| m.to_hex()).collect::<Vec<_>>()}),
            format!("expired {} clip(s) (erased)", message_ids.len()),
        ),
        Event::ContactAdded { name, .. } => (
            json!({"event": "contact_added", "name": name}),
            format!("{name} accepted your invite"),
        ),
        Event::ContactUpdated { identity } => (
            json!({"event": "contact_updated", "identity": hex::encode(identity.to_bytes())}),
            format!(
                "contact {} has a new device",
                &hex::encode(identity.to_bytes())[..8]
            ),
        ),
        Event::DeviceReplaced { by_serial } => (
            json!({"event": "device_replaced", "by_serial": by_serial}),
            format!(
                "this device was replaced by device #{by_serial}: its messages and keys are erased"
            ),
        ),
        Event::LiveKey {
            broadcaster_name,
            grant,
            ..
        } if grant.epoch == 0 => (
            json!({"event": "live_started", "from": broadcaster_name, "broadcast": hex::encode(grant.broadcast_id.0), "started_at": grant.started_at.0, "replay": grant.replay}),
            format!(
                "{broadcaster_name} went live (watch: mayfly live watch {} --out -)",
                short(&hex::encode(grant.broadcast_id.0))
            ),
        ),
        Event::Follower {
            identity,
            name,
            following,
        } => (
            json!({"event": if *following { "follower_added" } else { "follower_removed" }, "name": name, "identity": hex::encode(identity.to_bytes())}),
            if *following {
                format!("{name} follows you")
            } else {
                format!("{name} no longer follows you")
            },
        ),
        Event::LiveRevoked { broadcast_id, .. } => (
            json!({"event": "live_revoked", "broadcast": hex::encode(broadcast_id.0)}),
            format!(
                "broadcast {} was revoked: its keys are erased",
                short(&hex::encode(broadcast_id.0))
            ),
        ),
        Event::Warning { message } => (
            json!({"event": "warning", "message": message}),
            format!("warning: {message}"),
        ),
        _ => return Ok(()),
    };
    print(json, v, || t)
}
