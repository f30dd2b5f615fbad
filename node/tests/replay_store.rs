//! The relay's store of live replays (RELAY.md §5.7): pieces in and out,
//! the checks on a segment's head and on the whole, each broadcaster's own
//! namespace, quotas, deletion with a tombstone, expiry 24 hours after a
//! segment was produced, a restart, and erasure from every file.
//! Deterministic: seeded RNGs, injected time, temp dirs.

use std::path::Path;

use mayfly_node::store::{
    REPLAY_SLOT_CONTEXT, REPLAY_SLOT_FILE_NAME, RelayStore, StoreError, StoreLimits,
};
use mayfly_protocol::codec::Codec;
use mayfly_protocol::live::{BroadcastId, EpochKey, SegmentSealer};
use mayfly_protocol::mailbox::replay::{Piece, REPLAY_PIECE_LEN, ReplayEntry, pieces};
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

fn rng(seed: u64) -> ChaCha20Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(s)
}

fn open(dir: &Path, limits: StoreLimits, seed: u64) -> RelayStore {
    RelayStore::open(dir, limits, rng(seed))
        .and_then(RelayStore::with_replays)
        .unwrap()
}

struct Broadcaster {
    identity: Identity,
    sealer: SegmentSealer,
    id: BroadcastId,
}

impl Broadcaster {
    fn new(seed: u64) -> Self {
        Self::with_id(seed, BroadcastId([seed as u8; 32]))
    }

    /// The identity `seed` gives, broadcasting `id`.
    fn with_id(seed: u64, id: BroadcastId) -> Self {
        let mut r = rng(seed);
        let identity = Identity::generate(&mut r);
        let device = identity.new_device(1, NOW, &mut r);
        Self {
            identity,
            sealer: SegmentSealer::new(device, id, EpochKey::from_bytes([9; 32])),
            id,
        }
    }

    fn key(&self) -> SigningPublicKey {
        self.identity.public()
    }

    /// The next segment, `media_len` bytes of media, as bytes.
    fn segment(&mut self, media_len: usize, at: UnixMillis) -> Vec<u8> {
        let keyframe = self.sealer.next_seq() == 0;
        let init: &[u8] = if keyframe { b"ftyp-moov" } else { b"" };
        let media: Vec<u8> = (0..media_len).map(|i| (i % 251) as u8).collect();
        self.sealer
            .seal(keyframe, false, init, &media, 1000, at)
            .unwrap()
            .to_bytes()
    }
}

/// The pieces of `segment`, in order.
fn cut(segment: &[u8]) -> Vec<Piece> {
    pieces(segment)
        .enumerate()
        .map(|(i, p)| Piece {
            segment_len: segment.len() as u32,
            index: i as u16,
            bytes: p.to_vec(),
        })
        .collect()
}

/// Puts every piece of `segment` as segment `seq`; true if the last completed it.
fn put_all(
    store: &RelayStore,
    b: &Broadcaster,
    seq: u64,
    segment: &[u8],
    now: UnixMillis,
) -> Result<bool, StoreError> {
    let mut done = false;
    for p in cut(segment) {
        done = store.replay().unwrap().put(&b.key(), &b.id, seq, &p, now)?;
    }
    Ok(done)
}

/// Reads segment `seq` back, piece by piece.
fn fetch(store: &RelayStore, b: &Broadcaster, seq: u64, now: UnixMillis) -> Vec<u8> {
    let mut out = Vec::new();
    let mut index = 0;
    loop {
        let p = store
            .replay()
            .unwrap()
            .get(&b.key(), &b.id, seq, index, now)
            .unwrap();
        out.extend_from_slice(&p.bytes);
        if out.len() == p.segment_len as usize {
            return out;
        }
        index += 1;
    }
}

fn seqs(store: &RelayStore, b: &Broadcaster, now: UnixMillis) -> Vec<u64> {
    let (entries, more) = store
        .replay()
        .unwrap()
        .list(&b.key(), &b.id, 0, 64, now)
        .unwrap();
    assert!(!more);
    entries.iter().map(|e| e.seq).collect()
}

#[test]
fn segments_go_in_by_pieces_and_come_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), StoreLimits::default(), 1);
    let mut alice = Broadcaster::new(1);
    // One segment of three pieces, one of one.
    let big = alice.segment(2 * REPLAY_PIECE_LEN + 1000, NOW);
    let small = alice.segment(500, NOW);
    assert_eq!(cut(&big).len(), 3);
    let pieces = cut(&big);
    assert!(
        !store
            .replay()
            .unwrap()
            .put(&alice.key(), &alice.id, 0, &pieces[0], NOW)
            .unwrap()
    );
    // Not listed, not served until every piece is in.
    assert!(matches!(
        store.replay().unwrap().list(&alice.key(), &alice.id, 0, 64, NOW),
        Ok((v, false)) if v.is_empty()
    ));
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .get(&alice.key(), &alice.id, 0, 0, NOW),
        Err(StoreError::NotFound(_))
    ));
    // Out of order after the first, and again: each piece is taken once.
    assert!(
        !store
            .replay()
            .unwrap()
            .put(&alice.key(), &alice.id, 0, &pieces[2], NOW)
            .unwrap()
    );
    assert!(
        !store
            .replay()
            .unwrap()
            .put(&alice.key(), &alice.id, 0, &pieces[2], NOW)
            .unwrap()
    );
    assert!(
        store
            .replay()
            .unwrap()
            .put(&alice.key(), &alice.id, 0, &pieces[1], NOW)
            .unwrap()
    );
    assert!(
        !store
            .replay()
            .unwrap()
            .put(&alice.key(), &alice.id, 0, &pieces[1], NOW)
            .unwrap()
    );
    assert!(put_all(&store, &alice, 1, &small, NOW).unwrap());
    assert_eq!(fetch(&store, &alice, 0, NOW), big);
    assert_eq!(fetch(&store, &alice, 1, NOW), small);
    let (entries, more) = store
        .replay()
        .unwrap()
        .list(&alice.key(), &alice.id, 1, 64, NOW)
        .unwrap();
    assert_eq!(
        (entries, more),
        (
            vec![ReplayEntry {
                seq: 1,
                segment_len: small.len() as u32
            }],
            false
        )
    );
    let (entries, more) = store
        .replay()
        .unwrap()
        .list(&alice.key(), &alice.id, 0, 1, NOW)
        .unwrap();
    assert_eq!((entries.len(), more), (1, true));
    // No such piece.
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .get(&alice.key(), &alice.id, 1, 1, NOW),
        Err(StoreError::NotFound(_))
    ));
    let s = store.replay().unwrap().stats().unwrap();
    assert_eq!((s.replays, s.segments), (1, 2));
    assert_eq!(s.bytes, (big.len() + small.len()) as u64);
}

#[test]
fn heads_that_are_not_the_uploaders_or_not_this_piece_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), StoreLimits::default(), 2);
    let mut alice = Broadcaster::new(2);
    let mallory = Broadcaster::new(3);
    let seg = alice.segment(100, NOW);
    let p = &cut(&seg)[0];
    // Mallory uploads alice's segment under her own login: not hers.
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .put(&mallory.key(), &alice.id, 0, p, NOW),
        Err(StoreError::Forbidden(_))
    ));
    // Another sequence number or broadcast than the head says.
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .put(&alice.key(), &alice.id, 1, p, NOW),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .put(&alice.key(), &BroadcastId([0; 32]), 0, p, NOW),
        Err(StoreError::Invalid(_))
    ));
    // A later piece before the first.
    let mut alice2 = Broadcaster::new(4);
    let big = alice2.segment(REPLAY_PIECE_LEN + 10, NOW);
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .put(&alice2.key(), &alice2.id, 0, &cut(&big)[1], NOW),
        Err(StoreError::NotFound(_))
    ));
    // Too old, or from too far ahead.
    let day = UnixMillis(NOW.0 + MAX_LIVE_TTL_MS);
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .put(&alice.key(), &alice.id, 0, p, day),
        Err(StoreError::Expired(_))
    ));
    let before = UnixMillis(NOW.0 - MAX_CLOCK_SKEW_MS - 1);
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .put(&alice.key(), &alice.id, 0, p, before),
        Err(StoreError::Expired(_))
    ));
    // A corrupt segment: its head is fine, its signature is not. Refused
    // once whole, and nothing of it is kept or charged.
    let mut bad = seg.clone();
    let last = bad.len() - 70;
    bad[last] ^= 1;
    assert!(matches!(
        put_all(&store, &alice, 0, &bad, NOW),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.replay().unwrap().stats().unwrap().segments, 0);
    assert_eq!(store.replay().unwrap().stats().unwrap().bytes, 0);
    // The real one then goes in, and a second length for it is a conflict.
    assert!(put_all(&store, &alice, 0, &seg, NOW).unwrap());
    let mut other = p.clone();
    other.segment_len += 1;
    other.bytes.push(0);
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .put(&alice.key(), &alice.id, 0, &other, NOW),
        Err(StoreError::Conflict(_))
    ));
    // Each broadcaster's replays are its own: mallory sees none under her key.
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .list(&mallory.key(), &alice.id, 0, 64, NOW),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn quotas_bound_a_broadcaster_and_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Broadcaster::new(5);
    let first = alice.segment(1000, NOW);
    let second = alice.segment(1000, NOW);
    let limits = StoreLimits {
        replay_bytes: (first.len() + second.len() - 1) as u64,
        replays_per_broadcaster: 1,
        ..StoreLimits::default()
    };
    let store = open(dir.path(), limits, 5);
    assert!(put_all(&store, &alice, 0, &first, NOW).unwrap());
    assert!(matches!(
        put_all(&store, &alice, 1, &second, NOW),
        Err(StoreError::QuotaExceeded(_))
    ));
    // A second replay of the same broadcaster is one too many.
    let mut again = Broadcaster::with_id(5, BroadcastId([77; 32]));
    let other = again.segment(10, NOW);
    assert!(matches!(
        put_all(&store, &again, 0, &other, NOW),
        Err(StoreError::QuotaExceeded(_))
    ));
    // Deleting gives the bytes back; the tombstone holds the replay's place.
    assert_eq!(
        store
            .replay()
            .unwrap()
            .delete(&alice.key(), &alice.id, NOW)
            .unwrap(),
        1
    );
    assert_eq!(store.replay().unwrap().stats().unwrap().bytes, 0);
    assert!(matches!(
        put_all(&store, &again, 0, &other, NOW),
        Err(StoreError::QuotaExceeded(_))
    ));
    // The relay's own bound.
    let dir = tempfile::tempdir().unwrap();
    let limits = StoreLimits {
        replay_total_bytes: first.len() as u64 - 1,
        ..StoreLimits::default()
    };
    let store = open(dir.path(), limits, 6);
    let mut bob = Broadcaster::new(6);
    let b0 = bob.segment(1000, NOW);
    assert!(matches!(
        put_all(&store, &bob, 0, &b0, NOW),
        Err(StoreError::QuotaExceeded(_))
    ));
}

#[test]
fn a_deleted_replay_is_gone_and_stays_refused_until_its_tombstone_expires() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), StoreLimits::default(), 7);
    let mut alice = Broadcaster::new(7);
    let s0 = alice.segment(300, NOW);
    let s1 = alice.segment(300, NOW);
    put_all(&store, &alice, 0, &s0, NOW).unwrap();
    put_all(&store, &alice, 1, &s1, NOW).unwrap();
    // Mallory "deletes" the same broadcast id: that names her own replay.
    let mallory = Broadcaster::new(8);
    assert_eq!(
        store
            .replay()
            .unwrap()
            .delete(&mallory.key(), &alice.id, NOW)
            .unwrap(),
        0
    );
    assert_eq!(seqs(&store, &alice, NOW), vec![0, 1]);
    assert_eq!(
        store
            .replay()
            .unwrap()
            .delete(&alice.key(), &alice.id, NOW)
            .unwrap(),
        2
    );
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .list(&alice.key(), &alice.id, 0, 64, NOW),
        Err(StoreError::Revoked)
    ));
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .get(&alice.key(), &alice.id, 0, 0, NOW),
        Err(StoreError::Revoked)
    ));
    // A segment still on its way does not bring it back.
    let s2 = alice.segment(300, NOW);
    assert!(matches!(
        put_all(&store, &alice, 2, &s2, NOW),
        Err(StoreError::Revoked)
    ));
    assert_eq!(
        store
            .replay()
            .unwrap()
            .delete(&alice.key(), &alice.id, NOW)
            .unwrap(),
        0
    );
    let keep_until = UnixMillis(NOW.0 + MAX_LIVE_TTL_MS + MAX_CLOCK_SKEW_MS);
    let before = UnixMillis(keep_until.0 - 1);
    assert_eq!(store.collect(before).unwrap().replay_tombstones, 0);
    let c = store.collect(keep_until).unwrap();
    assert_eq!(c.replay_tombstones, 2, "alice's and mallory's");
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .list(&alice.key(), &alice.id, 0, 64, keep_until),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn each_segment_expires_24_hours_after_it_was_produced_and_a_restart_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), StoreLimits::default(), 9);
    let mut alice = Broadcaster::new(9);
    let later = UnixMillis(NOW.0 + 60_000);
    let s0 = alice.segment(300, NOW);
    let s1 = alice.segment(300, later);
    put_all(&store, &alice, 0, &s0, NOW).unwrap();
    put_all(&store, &alice, 1, &s1, later).unwrap();
    let day = UnixMillis(NOW.0 + MAX_LIVE_TTL_MS);
    // From its 24 hours on it is neither listed nor served, even before
    // the collector has run.
    assert_eq!(seqs(&store, &alice, day), vec![1]);
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .get(&alice.key(), &alice.id, 0, 0, day),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.collect(day).unwrap().replay_segments, 1);
    drop(store);
    let store = open(dir.path(), StoreLimits::default(), 10);
    assert_eq!(seqs(&store, &alice, day), vec![1]);
    assert_eq!(fetch(&store, &alice, 1, day), s1);
    let end = UnixMillis(later.0 + MAX_LIVE_TTL_MS);
    assert_eq!(store.collect(end).unwrap().replay_segments, 1);
    assert!(matches!(
        store
            .replay()
            .unwrap()
            .list(&alice.key(), &alice.id, 0, 64, end),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.replay().unwrap().stats().unwrap(), Default::default());
}

/// Every byte of every file under `dir`.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn found_in(dir: &Path, needle: &[u8]) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
        .map(|(name, _)| name)
        .collect()
}

/// The data key of segment `seq` of `b`'s replay, read from `replay.slots`
/// as RELAY.md §7 documents it: a slot is `name ‖ key`, the name
/// `derive_key(REPLAY_SLOT_CONTEXT, identity ‖ broadcast id ‖ seq)`.
fn data_key(dir: &Path, b: &Broadcaster, seq: u64) -> Option<[u8; 32]> {
    let mut m = b.key().to_bytes().to_vec();
    m.extend_from_slice(&b.id.0);
    m.extend_from_slice(&seq.to_be_bytes());
    let name = blake3::derive_key(REPLAY_SLOT_CONTEXT, &m);
    let bytes = std::fs::read(dir.join(REPLAY_SLOT_FILE_NAME)).unwrap();
    bytes[64..]
        .chunks_exact(64)
        .find(|s| s[..32] == name)
        .map(|s| s[32..].try_into().unwrap())
}

#[test]
fn deleted_and_expired_segments_leave_no_key_in_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let store = open(path, StoreLimits::default(), 11);
    let mut alice = Broadcaster::new(11);
    let mut bob = Broadcaster::new(12);
    let a0 = alice.segment(REPLAY_PIECE_LEN + 5000, NOW);
    let b0 = bob.segment(4000, NOW);
    put_all(&store, &alice, 0, &a0, NOW).unwrap();
    put_all(&store, &bob, 0, &b0, NOW).unwrap();
    let ka = data_key(path, &alice, 0).expect("a slot per segment");
    let kb = data_key(path, &bob, 0).expect("a slot per segment");
    // The scan is meaningful: it finds each key where it lives, once.
    assert_eq!(found_in(path, &ka).len(), 1);
    assert!(found_in(path, &ka)[0].ends_with(REPLAY_SLOT_FILE_NAME));
    // Pieces are sealed: no stretch of a segment is in the files as sent.
    for seg in [&a0, &b0] {
        assert!(found_in(path, &seg[300..364]).is_empty());
    }
    // Alice deletes hers; bob's expires.
    store
        .replay()
        .unwrap()
        .delete(&alice.key(), &alice.id, NOW)
        .unwrap();
    assert_eq!(data_key(path, &alice, 0), None);
    assert!(found_in(path, &ka).is_empty());
    assert_eq!(found_in(path, &kb).len(), 1);
    let day = UnixMillis(NOW.0 + MAX_LIVE_TTL_MS);
    assert_eq!(store.collect(day).unwrap().replay_segments, 1);
    assert!(found_in(path, &kb).is_empty());
    drop(store);
    // Nor after a restart.
    let _store = open(path, StoreLimits::default(), 13);
    assert!(found_in(path, &ka).is_empty());
    assert!(found_in(path, &kb).is_empty());
}

#[test]
fn a_slot_no_segment_names_is_wiped_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let store = open(path, StoreLimits::default(), 14);
    let mut alice = Broadcaster::new(14);
    let a0 = alice.segment(100, NOW);
    put_all(&store, &alice, 0, &a0, NOW).unwrap();
    drop(store);
    // A crash after a slot was written and before its transaction
    // committed leaves a slot no row names.
    let slots = path.join(REPLAY_SLOT_FILE_NAME);
    let mut bytes = std::fs::read(&slots).unwrap();
    let stray = [0x5au8; 64];
    bytes.extend_from_slice(&stray);
    std::fs::write(&slots, &bytes).unwrap();
    assert_eq!(found_in(path, &stray).len(), 1);
    let store = open(path, StoreLimits::default(), 15);
    assert!(found_in(path, &stray).is_empty());
    assert_eq!(fetch(&store, &alice, 0, NOW), a0);
}

#[test]
fn a_store_without_replays_keeps_none_and_writes_no_replay_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_without_replays(dir.path());
    let mut alice = Broadcaster::new(16);
    let seg = alice.segment(10, NOW);
    assert!(matches!(store.replay(), Err(StoreError::NotFound(_))));
    assert!(matches!(
        store
            .replay()
            .and_then(|r| r.put(&alice.key(), &alice.id, 0, &cut(&seg)[0], NOW)),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.collect(NOW).unwrap().replay_segments, 0);
    assert!(!dir.path().join(REPLAY_SLOT_FILE_NAME).exists());
}

fn open_without_replays(dir: &Path) -> RelayStore {
    RelayStore::open(dir, StoreLimits::default(), rng(99)).unwrap()
}

/// A join for broadcast `id`, sealed under some key (the relay cannot
/// tell which), its salt chosen by `n`.
fn join(id: BroadcastId, n: u8) -> mayfly_protocol::live::chat::ChatMessage {
    use mayfly_protocol::live::chat::{ChatBody, ChatKind, ChatMessage};
    let body = ChatBody {
        kind: ChatKind::Join,
        sent_at: NOW,
        token: [n; 16],
        text: String::new(),
    };
    ChatMessage::seal(id, 0, &EpochKey::from_bytes([n; 32]), [n; 32], &body, None).unwrap()
}

#[test]
fn replay_viewers_joins_are_kept_once_bounded_and_go_with_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let limits = StoreLimits {
        replay_watches: 3,
        ..StoreLimits::default()
    };
    let store = open(dir.path(), limits, 17);
    let replays = store.replay().unwrap();
    let mut alice = Broadcaster::new(17);
    // No replay yet: nothing to join.
    assert!(matches!(
        replays.watched(&alice.key(), &join(alice.id, 1)),
        Err(StoreError::NotFound(_))
    ));
    let s0 = alice.segment(100, NOW);
    put_all(&store, &alice, 0, &s0, NOW).unwrap();
    for n in [1, 2, 1, 3] {
        replays.watched(&alice.key(), &join(alice.id, n)).unwrap();
    }
    assert!(matches!(
        replays.watched(&alice.key(), &join(alice.id, 4)),
        Err(StoreError::QuotaExceeded(_))
    ));
    let (all, more) = replays.viewers(&alice.key(), &alice.id, 0, 64).unwrap();
    assert!(!more);
    let numbers: Vec<u32> = all.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [0, 1, 2]);
    assert_eq!(all[1].1, join(alice.id, 2));
    let (page, more) = replays.viewers(&alice.key(), &alice.id, 1, 1).unwrap();
    assert_eq!((page.len(), page[0].0, more), (1, 1, true));
    // Under another broadcaster's name they are not there.
    let mallory = Broadcaster::new(18);
    assert!(matches!(
        replays.viewers(&mallory.key(), &alice.id, 0, 64),
        Err(StoreError::NotFound(_))
    ));
    // They go with the replay.
    replays.delete(&alice.key(), &alice.id, NOW).unwrap();
    assert!(matches!(
        replays.viewers(&alice.key(), &alice.id, 0, 64),
        Err(StoreError::Revoked)
    ));
    assert!(matches!(
        replays.watched(&alice.key(), &join(alice.id, 5)),
        Err(StoreError::Revoked)
    ));
    let keep_until = UnixMillis(NOW.0 + MAX_LIVE_TTL_MS + MAX_CLOCK_SKEW_MS);
    store.collect(keep_until).unwrap();
    // A new replay under the same id starts with no joins.
    let mut again = Broadcaster::new(17);
    let fresh = again.segment(100, keep_until);
    put_all(&store, &again, 0, &fresh, keep_until).unwrap();
    assert_eq!(
        replays.viewers(&alice.key(), &alice.id, 0, 64).unwrap(),
        (vec![], false)
    );
}
