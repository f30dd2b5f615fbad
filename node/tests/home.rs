//! The client home directory: round trips, locking, contacts, messages,
//! prekeys, invites, and that erased secrets are gone from every file.

use std::path::Path;

use mayfly_node::home::{
    Delivery, Home, HomeError, Profile, Received, SLOT_FILE_NAME, Sent, Source, Via,
};
use mayfly_protocol::{
    ClipHeader, ClipKind, Codec, ContactCard, Identity, MessageId, PrekeyStore, SealedClip,
    UnixMillis, seal_reader,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const T0: UnixMillis = UnixMillis(1_800_000_000_000);
const HOUR: u64 = 3_600_000;

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn profile(name: &str) -> Profile {
    Profile {
        display_name: name.into(),
        relays: vec![
            "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
                .into(),
        ],
    }
}

fn new_home(dir: &Path, seed: u8) -> Home {
    Home::create(dir, profile("me"), T0, &mut rng(seed)).unwrap()
}

/// A small sealed clip expiring `ttl` after `now`.
fn clip(rng: &mut ChaCha20Rng, now: UnixMillis, ttl: u64, parent: Option<MessageId>) -> SealedClip {
    let content = b"a short clip".to_vec();
    let header = ClipHeader {
        kind: if parent.is_some() {
            ClipKind::Reaction
        } else {
            ClipKind::Clip
        },
        allow_save: false,
        duration_ms: 1_000,
        created_at: now,
        expires_at: now.plus(ttl),
        content_len: content.len() as u64,
        parent,
        media_type: "video/mp4".into(),
    };
    seal_reader(header, &mut content.as_slice(), |_, _| Ok(()), rng).unwrap()
}

/// Someone else's card, with device `serial`.
fn other_card(id: &Identity, serial: u64, name: &str, rng: &mut ChaCha20Rng) -> ContactCard {
    let dev = id.new_device(serial, T0.plus(serial), rng);
    let pk = PrekeyStore::new(&dev, T0, rng);
    ContactCard::new(id, &dev, pk.signed_prekey().clone(), vec![], name.into()).unwrap()
}

fn received(sealed: &SealedClip, sender: &Identity, source: Source, at: UnixMillis) -> Received {
    let dev = sender.new_device(1, T0, &mut rng(99));
    Received {
        message_id: sealed.message_id(),
        sender: sender.public(),
        sender_certificate: dev.certificate().clone(),
        header: sealed.header().clone(),
        manifest: sealed.manifest().clone(),
        sources: vec![source],
        received_at: at,
        opened: false,
    }
}

fn sent(sealed: &SealedClip, to: &Identity) -> Sent {
    Sent {
        message_id: sealed.message_id(),
        header: sealed.header().clone(),
        // Every kind of delivery, so that each round-trips.
        recipients: vec![
            Delivery {
                identity: to.public(),
                via: Via::Relay {
                    address: "/dns4/relay.example/tcp/4001".into(),
                },
            },
            Delivery {
                identity: to.public(),
                via: Via::Direct,
            },
            Delivery {
                identity: to.public(),
                via: Via::Pending,
            },
        ],
        created_at: sealed.header().created_at,
    }
}

/// Every byte of every file under `dir`, file by file.
fn all_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(all_files(&e.path()));
        } else {
            out.push((
                e.path().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out
}

/// The files under `dir` that contain `needle`.
fn holders(dir: &Path, needle: &[u8]) -> Vec<String> {
    all_files(dir)
        .into_iter()
        .filter(|(_, b)| b.windows(needle.len()).any(|w| w == needle))
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn create_open_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("home");
    assert!(matches!(
        Home::open(&dir),
        Err(HomeError::NotInitialized { .. })
    ));
    let mut r = rng(1);
    let home = Home::create(&dir, profile("alice"), T0, &mut r).unwrap();
    let identity = home.identity().public();
    let cert = home.device().certificate().clone();
    assert_eq!(cert.serial(), 1);
    let card = home.card().unwrap();
    assert_eq!(card.display_name(), "alice");
    let otks = home
        .with_prekeys(|s, d| s.issue_one_time(d, 5, T0, &mut r))
        .unwrap();
    assert_eq!(otks.len(), 5);
    home.set_cursor("relay-a", 42).unwrap();
    let flik = home.add_flik("wave-hello", b"clip bytes").unwrap();
    assert!(matches!(
        home.add_flik("Bad Name", b""),
        Err(HomeError::InvalidName(_))
    ));
    assert_eq!(home.mailbox_dir(), dir.join("mailbox"));
    drop(home);

    assert!(matches!(
        Home::create(&dir, profile("x"), T0, &mut rng(2)),
        Err(HomeError::AlreadyInitialized { .. })
    ));
    let mut home = Home::open(&dir).unwrap();
    assert_eq!(home.identity().public(), identity);
    assert_eq!(home.device().certificate(), &cert);
    assert_eq!(home.card().unwrap(), card);
    assert_eq!(
        ContactCard::from_text(&home.card().unwrap().to_text()).unwrap(),
        card
    );
    assert_eq!(home.with_prekeys(|s, _| s.one_time_count()).unwrap(), 5);
    assert_eq!(home.cursor("relay-a").unwrap(), 42);
    assert_eq!(home.cursor("relay-b").unwrap(), 0);
    assert_eq!(
        home.fliks().unwrap(),
        vec![("wave-hello".into(), flik.clone())]
    );
    assert_eq!(home.flik("wave-hello").unwrap(), flik);
    assert!(matches!(home.flik("nope"), Err(HomeError::UnknownFlik(_))));

    home.set_relays(vec![]).unwrap();
    assert!(home.card().unwrap().relays().is_empty());
    drop(home);
    assert!(Home::open(&dir).unwrap().profile().relays.is_empty());
}

#[test]
fn a_second_open_while_held_is_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let home = new_home(tmp.path(), 3);
    let err = Home::open(tmp.path()).unwrap_err();
    assert!(matches!(err, HomeError::InUse { .. }));
    assert!(err.to_string().contains("another mayfly process is using"));
    drop(home);
    Home::open(tmp.path()).unwrap();
}

#[test]
fn contacts_add_find_update() {
    let tmp = tempfile::tempdir().unwrap();
    let home = new_home(tmp.path(), 4);
    let mut r = rng(5);
    let (a, b, c) = (
        Identity::generate(&mut r),
        Identity::generate(&mut r),
        Identity::generate(&mut r),
    );
    let a1 = other_card(&a, 1, "alice", &mut r);
    home.add_contact(&a1, T0).unwrap();
    home.add_contact(&other_card(&b, 1, "sam", &mut r), T0)
        .unwrap();
    home.add_contact(&other_card(&c, 1, "sam", &mut r), T0)
        .unwrap();
    let names: Vec<_> = home
        .contacts()
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["alice", "sam", "sam"]);

    assert_eq!(home.find_contact("alice").unwrap().card, a1);
    assert!(matches!(
        home.find_contact("sam"),
        Err(HomeError::AmbiguousContact(_))
    ));
    let hex: String = b
        .public()
        .to_bytes()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    assert_eq!(
        home.find_contact(&hex[..8]).unwrap().card.identity_key(),
        b.public()
    );
    assert_eq!(
        home.find_contact(&hex[..8].to_uppercase())
            .unwrap()
            .card
            .identity_key(),
        b.public()
    );
    assert!(matches!(
        home.find_contact("bob"),
        Err(HomeError::UnknownContact(_))
    ));
    assert!(matches!(
        home.find_contact(&hex[..3]),
        Err(HomeError::UnknownContact(_))
    ));

    // A newer device certificate supersedes; an older card changes nothing.
    let a2 = a.new_device(2, T0.plus(HOUR), &mut r);
    assert!(home.update_certificate(a2.certificate()).unwrap());
    assert!(!home.update_certificate(a2.certificate()).unwrap());
    assert!(!home.update_certificate(a1.certificate()).unwrap());
    let stored = home.contact(&a.public()).unwrap().unwrap();
    assert_eq!(stored.certificate.serial(), 2);
    assert_eq!(stored.card, a1);
    let a3 = other_card(&a, 3, "alice 3", &mut r);
    home.add_contact(&a3, T0.plus(HOUR)).unwrap();
    let stored = home.contact(&a.public()).unwrap().unwrap();
    assert_eq!((stored.card.clone(), stored.added_at), (a3.clone(), T0));
    assert_eq!(stored.certificate.serial(), 3);
    assert_eq!(stored.name, "alice 3");
    assert_eq!(home.add_contact(&a1, T0).unwrap().card, a3);
    assert!(home.contact(&home.identity().public()).unwrap().is_none());
}

#[test]
fn received_and_sent_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let home = new_home(tmp.path(), 6);
    let mut r = rng(7);
    let them = Identity::generate(&mut r);
    let m1 = clip(&mut r, T0, HOUR, None);
    let m2 = clip(&mut r, T0, HOUR, None);
    let reaction = clip(&mut r, T0, HOUR, Some(m1.message_id()));

    let relay = Source::Relay {
        address: "/dns4/relay.example/tcp/4001".into(),
        seq: 7,
    };
    let r1 = received(&m1, &them, relay.clone(), T0);
    home.put_received(&r1, m1.content_key()).unwrap();
    let mut again = received(&m1, &them, Source::Local { seq: 1 }, T0.plus(5));
    again.sources.push(relay.clone());
    home.put_received(&again, m1.content_key()).unwrap();
    let got = home.received(&m1.message_id()).unwrap().unwrap();
    assert_eq!(got.sources, vec![relay, Source::Local { seq: 1 }]);
    assert_eq!(got.received_at, T0);
    assert_eq!(
        home.received_key(&m1.message_id()).unwrap().unwrap(),
        *m1.content_key()
    );
    home.put_received(
        &received(&reaction, &them, Source::Local { seq: 2 }, T0.plus(10)),
        reaction.content_key(),
    )
    .unwrap();
    let ids: Vec<_> = home
        .list_received()
        .unwrap()
        .iter()
        .map(|r| r.message_id)
        .collect();
    assert_eq!(ids, [reaction.message_id(), m1.message_id()]);
    assert!(home.mark_opened(&m1.message_id()).unwrap());
    assert!(home.received(&m1.message_id()).unwrap().unwrap().opened);
    assert!(!home.mark_opened(&m2.message_id()).unwrap());
    assert_eq!(
        home.children(&m1.message_id()).unwrap(),
        [reaction.message_id()]
    );
    // A manifest that is not the message's is refused.
    let mut bad = received(&m2, &them, Source::Local { seq: 3 }, T0);
    bad.message_id = m1.message_id();
    assert!(matches!(
        home.put_received(&bad, m2.content_key()),
        Err(HomeError::Invalid(_))
    ));

    let s2 = sent(&m2, &them);
    assert!(matches!(
        home.put_sent(&s2, None, m1.revocation_secret()),
        Err(HomeError::Invalid(_))
    ));
    home.put_sent(&s2, Some(m2.content_key()), m2.revocation_secret())
        .unwrap();
    assert_eq!(home.sent(&m2.message_id()).unwrap().unwrap(), s2);
    assert_eq!(
        home.sent_revocation_secret(&m2.message_id())
            .unwrap()
            .unwrap()
            .public(),
        m2.revocation_secret().public()
    );
    assert_eq!(
        home.sent_content_key(&m2.message_id()).unwrap().unwrap(),
        *m2.content_key()
    );
    assert!(home.forget_content_key(&m2.message_id()).unwrap());
    assert!(home.sent_content_key(&m2.message_id()).unwrap().is_none());
    assert!(
        home.sent_revocation_secret(&m2.message_id())
            .unwrap()
            .is_some()
    );
    assert_eq!(home.list_sent().unwrap(), vec![s2]);
    assert!(home.sent(&m1.message_id()).unwrap().is_none());
}

#[test]
fn erased_secrets_are_in_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("home");
    let home = new_home(&dir, 8);
    let mut r = rng(9);
    let them = Identity::generate(&mut r);

    // A received key, erased explicitly.
    let gone_rx = clip(&mut r, T0, 100 * HOUR, None);
    home.put_received(
        &received(&gone_rx, &them, Source::Local { seq: 1 }, T0),
        gone_rx.content_key(),
    )
    .unwrap();
    // A sent message's key and revocation secret, erased at expiry.
    let gone_tx = clip(&mut r, T0, HOUR, None);
    home.put_sent(
        &sent(&gone_tx, &them),
        Some(gone_tx.content_key()),
        gone_tx.revocation_secret(),
    )
    .unwrap();
    // A received message that survives.
    let kept = clip(&mut r, T0, 100 * HOUR, None);
    home.put_received(
        &received(&kept, &them, Source::Local { seq: 2 }, T0),
        kept.content_key(),
    )
    .unwrap();
    // One-time prekeys: one taken, one kept.
    let otks = home
        .with_prekeys(|s, d| s.issue_one_time(d, 2, T0, &mut r))
        .unwrap();
    let snap = home.with_prekeys(|s, _| s.snapshot()).unwrap();
    let secret_of = |p: &mayfly_protocol::Prekey| {
        *snap
            .one_time
            .iter()
            .find(|o| o.public == p.public())
            .unwrap()
            .secret
            .as_bytes()
    };
    let (gone_otk, kept_otk) = (secret_of(&otks[0]), secret_of(&otks[1]));
    // Invite tokens: one taken, one kept.
    let gone_invite = home.new_invite_token(T0, &mut r).unwrap();
    let kept_invite = home.new_invite_token(T0, &mut r).unwrap();

    let gone_secrets: Vec<Vec<u8>> = vec![
        gone_rx.content_key().as_bytes().to_vec(),
        gone_tx.content_key().as_bytes().to_vec(),
        gone_tx.revocation_secret().to_seed().to_vec(),
        gone_otk.to_vec(),
        gone_invite.to_vec(),
    ];
    let kept_secrets: Vec<Vec<u8>> = vec![
        kept.content_key().as_bytes().to_vec(),
        kept_otk.to_vec(),
        kept_invite.to_vec(),
    ];
    // The scan finds every secret while it is stored, in the slot file only.
    for s in gone_secrets.iter().chain(&kept_secrets) {
        let h = holders(&dir, s);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h[0].ends_with(SLOT_FILE_NAME));
    }

    let erased = home.erase(&gone_rx.message_id()).unwrap();
    assert!(erased.received && !erased.sent && erased.secrets == 1);
    let now = T0.plus(2 * HOUR);
    assert_eq!(home.expired(now).unwrap(), [gone_tx.message_id()]);
    for id in home.expired(now).unwrap() {
        let e = home.erase(&id).unwrap();
        assert!(e.sent && e.secrets == 2);
    }
    assert!(home.expired(now).unwrap().is_empty());
    let taken = home
        .with_prekeys(|s, _| s.take_secret(&otks[0].public()).is_some())
        .unwrap();
    assert!(taken);
    assert!(home.take_invite_token(&gone_invite, T0.plus(HOUR)).unwrap());
    assert!(!home.take_invite_token(&gone_invite, T0.plus(HOUR)).unwrap());

    for s in &gone_secrets {
        assert_eq!(
            holders(&dir, s),
            Vec::<String>::new(),
            "an erased secret survives"
        );
    }
    for s in &kept_secrets {
        assert_eq!(holders(&dir, s).len(), 1, "a kept secret is missing");
    }
    assert!(home.received(&gone_rx.message_id()).unwrap().is_none());
    assert!(home.received_key(&gone_rx.message_id()).unwrap().is_none());
    assert!(home.sent(&gone_tx.message_id()).unwrap().is_none());
    drop(home);

    let home = Home::open(&dir).unwrap();
    assert_eq!(
        home.received_key(&kept.message_id()).unwrap().unwrap(),
        *kept.content_key()
    );
    assert_eq!(home.with_prekeys(|s, _| s.one_time_count()).unwrap(), 1);
    // An expired invite is refused (and erased).
    assert!(
        !home
            .take_invite_token(&kept_invite, T0.plus(8 * 24 * HOUR))
            .unwrap()
    );
    assert!(holders(&dir, &kept_invite).is_empty());
}

#[test]
fn an_orphan_slot_is_wiped_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("home");
    drop(new_home(&dir, 10));
    // A crash after a slot was written, before its transaction committed.
    let mut r = rng(11);
    let mut slot = [0u8; 64];
    r.fill_bytes(&mut slot);
    let path = dir.join(SLOT_FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!((bytes.len() - 64) % 64, 0);
    bytes.extend_from_slice(&slot);
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(holders(&dir, &slot[32..]).len(), 1);

    let home = Home::open(&dir).unwrap();
    assert!(holders(&dir, &slot[32..]).is_empty());
    assert!(holders(&dir, &slot[..32]).is_empty());
    home.card().unwrap();
}

#[test]
fn replacing_the_device_wipes_the_old_prekeys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("home");
    let mut home = new_home(&dir, 12);
    let mut r = rng(13);
    home.with_prekeys(|s, d| s.issue_one_time(d, 3, T0, &mut r))
        .unwrap();
    let old = home.with_prekeys(|s, _| s.snapshot()).unwrap();
    let new = home.replace_device(T0.plus(HOUR), &mut r).unwrap();
    assert_eq!(new.certificate().serial(), 2);
    assert_eq!(home.device().certificate(), new.certificate());
    assert_eq!(home.card().unwrap().certificate(), new.certificate());
    assert_eq!(home.with_prekeys(|s, _| s.one_time_count()).unwrap(), 0);
    let olds = std::iter::once(&old.current.secret).chain(old.one_time.iter().map(|o| &o.secret));
    for s in olds {
        assert!(holders(&dir, s.as_bytes()).is_empty());
    }
    drop(home);
    let home = Home::open(&dir).unwrap();
    assert_eq!(home.device().certificate(), new.certificate());
    assert_eq!(
        ContactCard::decode(&home.card().unwrap().to_bytes())
            .unwrap()
            .certificate()
            .serial(),
        2
    );
}

#[test]
fn a_superseded_device_erases_its_secrets_and_is_refused_after() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("home");
    let home = new_home(&dir, 14);
    let mut r = rng(15);
    let them = Identity::generate(&mut r);
    let rx = clip(&mut r, T0, 100 * HOUR, None);
    home.put_received(
        &received(&rx, &them, Source::Local { seq: 1 }, T0),
        rx.content_key(),
    )
    .unwrap();
    let tx = clip(&mut r, T0, 100 * HOUR, None);
    home.put_sent(
        &sent(&tx, &them),
        Some(tx.content_key()),
        tx.revocation_secret(),
    )
    .unwrap();
    home.with_prekeys(|s, d| s.issue_one_time(d, 2, T0, &mut r))
        .unwrap();
    let snap = home.with_prekeys(|s, _| s.snapshot()).unwrap();
    let invite = home.new_invite_token(T0, &mut r).unwrap();
    let mut secrets: Vec<Vec<u8>> = vec![
        rx.content_key().as_bytes().to_vec(),
        tx.content_key().as_bytes().to_vec(),
        tx.revocation_secret().to_seed().to_vec(),
        snap.current.secret.as_bytes().to_vec(),
        invite.to_vec(),
    ];
    secrets.extend(snap.one_time.iter().map(|o| o.secret.as_bytes().to_vec()));
    for s in &secrets {
        assert_eq!(holders(&dir, s).len(), 1);
    }

    // Only a certificate of this identity with a higher serial counts, and
    // a refused one changes nothing.
    let stranger = Identity::generate(&mut r).new_device(9, T0, &mut r);
    assert!(matches!(
        home.supersede(stranger.certificate()),
        Err(HomeError::Protocol(_))
    ));
    let same = home.identity().new_device(1, T0.plus(HOUR), &mut r);
    assert!(matches!(
        home.supersede(same.certificate()),
        Err(HomeError::Invalid(_))
    ));
    for s in &secrets {
        assert_eq!(
            holders(&dir, s).len(),
            1,
            "a refused proof erased something"
        );
    }
    assert!(home.received(&rx.message_id()).unwrap().is_some());

    let newer = home.identity().new_device(2, T0.plus(HOUR), &mut r);
    let erased = home.supersede(newer.certificate()).unwrap();
    assert_eq!((erased.by_serial, erased.received, erased.sent), (2, 1, 1));
    assert_eq!(erased.secrets, secrets.len());
    for s in &secrets {
        assert_eq!(holders(&dir, s), Vec::<String>::new(), "a secret survives");
    }
    assert!(home.received(&rx.message_id()).unwrap().is_none());
    assert!(home.list_sent().unwrap().is_empty());
    drop(home);
    let err = Home::open(&dir).unwrap_err();
    assert!(
        matches!(
            err,
            HomeError::Superseded {
                serial: 1,
                by_serial: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("replaced by device #2"), "{err}");
}

#[test]
fn followers_and_live_keys_are_kept_then_erased_from_every_file() {
    use mayfly_protocol::LiveKeyGrant;
    use mayfly_protocol::live::{BroadcastId, EpochKey, MAX_EPOCH_KEYS};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("home");
    let home = new_home(&dir, 21);
    let mut r = rng(22);
    let alice = Identity::generate(&mut r);
    let mallory = Identity::generate(&mut r);

    // Followers: contacts only, once each.
    assert!(matches!(
        home.add_follower(&alice.public(), T0),
        Err(HomeError::UnknownContact(_))
    ));
    home.add_contact(&other_card(&alice, 1, "alice", &mut r), T0)
        .unwrap();
    assert!(home.add_follower(&alice.public(), T0).unwrap());
    assert!(!home.add_follower(&alice.public(), T0).unwrap());
    assert_eq!(home.followers().unwrap(), vec![(alice.public(), T0)]);
    assert!(home.remove_follower(&alice.public()).unwrap());
    assert!(home.followers().unwrap().is_empty());

    // Keys: one slot each, at most MAX_EPOCH_KEYS, lowest epochs go first.
    let id = BroadcastId([0x33; 32]);
    let key = |e: u32| {
        let mut k = [0x5c; 32];
        k[..4].copy_from_slice(&e.to_be_bytes());
        k
    };
    let grant = |e: u32| LiveKeyGrant {
        broadcast_id: id,
        epoch: e,
        key: EpochKey::from_bytes(key(e)),
        started_at: T0,
        replay: false,
        peers: vec!["/ip4/127.0.0.1/tcp/9".into()],
    };
    let n = MAX_EPOCH_KEYS as u32 + 2;
    for e in 0..n {
        let (b, new) = home
            .store_live_key(&alice.public(), &grant(e), T0.plus(u64::from(e)))
            .unwrap();
        assert_eq!(new, e == 0);
        assert_eq!(b.broadcaster, alice.public());
    }
    let held: Vec<u32> = home
        .live_keys(&id)
        .unwrap()
        .iter()
        .map(|(e, _)| *e)
        .collect();
    assert_eq!(held, (2..n).collect::<Vec<_>>());
    for e in 0..n {
        let want = usize::from(e >= 2);
        assert_eq!(holders(&dir, &key(e)).len(), want, "epoch {e}");
    }
    // Another broadcaster cannot add keys to this broadcast.
    assert!(
        home.store_live_key(&mallory.public(), &grant(99), T0)
            .is_err()
    );
    assert_eq!(home.find_broadcast("3333").unwrap().id, id);

    // A day after the newest key, everything goes, from every file.
    let last = T0.plus(u64::from(n - 1));
    assert_eq!(
        home.erase_expired_broadcasts(last.plus(24 * HOUR - 1))
            .unwrap(),
        0
    );
    assert_eq!(
        home.erase_expired_broadcasts(last.plus(24 * HOUR)).unwrap(),
        1
    );
    assert!(home.broadcasts().unwrap().is_empty());
    assert!(home.live_keys(&id).unwrap().is_empty());
    drop(home);
    let home = Home::open(&dir).unwrap();
    drop(home);
    for e in 0..n {
        assert!(holders(&dir, &key(e)).is_empty(), "epoch {e} key remains");
    }
}
