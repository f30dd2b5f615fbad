//! The relay store: deposits, chunks, listing, acknowledgement, revocation,
//! expiry, quotas, prekeys, restarts, and erasure of deleted data from the
//! store's files. Deterministic: seeded RNGs, injected time, temp dirs.

use std::path::Path;

use mayfly_node::store::{
    CHUNK_DIR_NAME, DB_FILE_NAME, DEFERRED_ROWS_PER_UPLOAD, KEY_FILE_HEADER_LEN, KEY_FILE_NAME,
    KEY_SLOT_LEN, MAX_DEFERRED_UPLOADS, RelayStore, StoreError, StoreLimits,
};
use mayfly_protocol::mailbox::ErrorCode;
use mayfly_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: UnixMillis = UnixMillis(1_800_000_000_000);
const DEPOSITOR: &[u8] = b"peer-a";

fn rng(seed: u64) -> ChaCha20Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(s)
}

struct Party {
    identity: Identity,
    device: Device,
    prekeys: PrekeyStore,
}

impl Party {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        let identity = Identity::generate(rng);
        let device = identity.new_device(1, NOW, rng);
        let prekeys = PrekeyStore::new(&device, NOW, rng);
        Self {
            identity,
            device,
            prekeys,
        }
    }

    fn key(&self) -> SigningPublicKey {
        self.identity.public()
    }

    fn recipient(&self) -> Recipient {
        Recipient {
            identity_key: self.identity.public(),
            prekey: self.prekeys.signed_prekey().public(),
        }
    }
}

struct Clip {
    sealed: SealedClip,
    chunks: Vec<Vec<u8>>,
}

impl Clip {
    fn manifest(&self) -> &Manifest {
        self.sealed.manifest()
    }
    fn id(&self) -> MessageId {
        self.sealed.message_id()
    }
}

fn header(content_len: usize) -> ClipHeader {
    ClipHeader {
        kind: ClipKind::Clip,
        allow_save: false,
        duration_ms: 10_000,
        created_at: NOW,
        expires_at: NOW.plus(DEFAULT_CLIP_TTL_MS),
        content_len: content_len as u64,
        parent: None,
        media_type: "video/mp4".into(),
    }
}

fn content(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1] ^ salt)
        .collect()
}

/// Seals `len` bytes of content with the given keys.
fn seal_with(len: usize, salt: u8, content_key: [u8; 32], revocation: SigningSecret) -> Clip {
    let data = content(len, salt);
    let mut sealer =
        ClipSealer::with_keys(header(len), ContentKey::from_bytes(content_key), revocation)
            .expect("header");
    let mut chunks = Vec::new();
    let mut at = 0;
    while let Some(n) = sealer.next_content_len() {
        let mut out = Vec::new();
        sealer.seal_next(&data[at..at + n], &mut out).expect("seal");
        at += n;
        chunks.push(out);
    }
    Clip {
        sealed: sealer.finish().expect("finish"),
        chunks,
    }
}

fn clip(len: usize, rng: &mut ChaCha20Rng) -> Clip {
    let mut k = [0u8; 32];
    rand_core::Rng::fill_bytes(rng, &mut k);
    seal_with(len, k[0], k, SigningSecret::generate(rng))
}

fn envelope(clip: &Clip, from: &Party, to: &Party, rng: &mut ChaCha20Rng) -> Envelope {
    Envelope::seal(&clip.sealed, &from.device, &to.recipient(), rng).expect("envelope")
}

fn open(dir: &Path, limits: StoreLimits, seed: u64) -> RelayStore {
    RelayStore::open(dir, limits, rng(seed)).expect("open store")
}

/// A store with `parties` registered as served mailboxes.
fn store_with(dir: &Path, limits: StoreLimits, parties: &[&Party]) -> RelayStore {
    let store = open(dir, limits, 1000);
    for p in parties {
        store
            .record_certificate(p.device.certificate())
            .expect("register mailbox");
    }
    store
}

/// Uploads every chunk, returning what the last upload listed.
fn upload_all(store: &RelayStore, clip: &Clip) -> Vec<(SigningPublicKey, u64)> {
    let mut listed = Vec::new();
    for (i, c) in clip.chunks.iter().enumerate() {
        listed.extend(store.put_chunk(&clip.id(), i as u32, c).expect("put chunk"));
    }
    listed
}

fn code<T: std::fmt::Debug>(r: Result<T, StoreError>) -> ErrorCode {
    r.expect_err("should fail").code()
}

/// Three chunks: a bit over 512 KiB of content.
const THREE_CHUNKS: usize = 2 * 256 * 1024 + 1000;

#[test]
fn deposit_upload_list_fetch_ack_then_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(1);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let store = store_with(dir.path(), StoreLimits::default(), &[&bob]);
    let clip = clip(THREE_CHUNKS, &mut r);
    assert_eq!(clip.chunks.len(), 3);
    let env = envelope(&clip, &alice, &bob, &mut r);

    let d = store
        .deposit(&bob.key(), &env, clip.manifest(), DEPOSITOR, NOW)
        .unwrap();
    assert_eq!(d.missing, vec![0, 1, 2]);
    assert_eq!(d.listed, None);
    assert_eq!(store.stats().unwrap().envelopes, 1);

    let listed = upload_all(&store, &clip);
    assert_eq!(listed, vec![(bob.key(), 1)]);

    let (entries, more) = store.list(&bob.key(), 0, 64, NOW).unwrap();
    assert!(!more);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].seq, 1);
    assert_eq!(entries[0].message_id, clip.id());
    assert_eq!(entries[0].deposited_at, NOW);
    assert_eq!(entries[0].envelope, env);

    assert_eq!(
        &store.get_manifest(&clip.id(), NOW).unwrap(),
        clip.manifest()
    );
    for (i, c) in clip.chunks.iter().enumerate() {
        let h = clip.manifest().chunk_hashes()[i];
        assert_eq!(&store.get_chunk(&h, 0, 0).unwrap(), c);
        assert_eq!(store.get_chunk(&h, 10, 20).unwrap(), c[10..30]);
        assert_eq!(store.get_chunk(&h, 100, 0).unwrap(), c[100..]);
        let len = c.len() as u32;
        assert_eq!(store.get_chunk(&h, len - 1, 1).unwrap(), c[c.len() - 1..]);
        assert_eq!(code(store.get_chunk(&h, len, 0)), ErrorCode::TooLarge);
        assert_eq!(code(store.get_chunk(&h, len - 1, 2)), ErrorCode::TooLarge);
        assert_eq!(
            code(store.get_chunk(&h, u32::MAX, u32::MAX)),
            ErrorCode::TooLarge
        );
    }
    // The recipient opens what the store serves.
    let mut bob = bob;
    let secret = bob
        .prekeys
        .take_secret(&entries[0].envelope.prekey())
        .unwrap();
    let contents = entries[0].envelope.open(&bob.key(), &secret).unwrap();
    let manifest = store.get_manifest(&entries[0].message_id, NOW).unwrap();
    let mut opener = contents.open_manifest(manifest.clone(), NOW).unwrap();
    let mut out = Vec::new();
    for h in manifest.chunk_hashes() {
        let c = store.get_chunk(h, 0, 0).unwrap();
        out.extend_from_slice(opener.open_next(&c).unwrap());
    }
    opener.finish().unwrap();
    assert_eq!(out.len(), THREE_CHUNKS);

    // Unknown sequence numbers are ignored.
    assert_eq!(store.ack(&bob.key(), &[1, 7]).unwrap(), 1);
    assert_eq!(store.list(&bob.key(), 0, 64, NOW).unwrap().0, vec![]);
    assert_eq!(
        code(store.get_manifest(&clip.id(), NOW)),
        ErrorCode::NotFound
    );
    for h in clip.manifest().chunk_hashes() {
        assert_eq!(code(store.get_chunk(h, 0, 0)), ErrorCode::NotFound);
    }
    let s = store.stats().unwrap();
    assert_eq!(
        (
            s.envelopes,
            s.chunks,
            s.messages,
            s.stored_bytes,
            s.reserved_bytes
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(store.ack(&bob.key(), &[1]).unwrap(), 0);
}

#[test]
fn sequence_numbers_grow_and_pages_report_more() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(2);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let store = store_with(dir.path(), StoreLimits::default(), &[&bob]);
    for _ in 0..5 {
        let c = clip(1000, &mut r);
        let env = envelope(&c, &alice, &bob, &mut r);
        store
            .deposit(&bob.key(), &env, c.manifest(), DEPOSITOR, NOW)
            .unwrap();
        upload_all(&store, &c);
    }
    let (page, more) = store.list(&bob.key(), 0, 2, NOW).unwrap();
    assert!(more);
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    let (page, more) = store.list(&bob.key(), 2, 3, NOW).unwrap();
    assert!(!more);
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert!(
        store
            .list(&bob.key(), u64::MAX, 64, NOW)
            .unwrap()
            .0
            .is_empty()
    );
    // Acknowledged numbers are never reused.
    store.ack(&bob.key(), &[1, 2, 3, 4, 5]).unwrap();
    let c = clip(1000, &mut r);
    let env = envelope(&c, &alice, &bob, &mut r);
    store
        .deposit(&bob.key(), &env, c.manifest(), DEPOSITOR, NOW)
        .unwrap();
    assert_eq!(upload_all(&store, &c), vec![(bob.key(), 6)]);
}

#[test]
fn an_upload_resumes_and_pending_envelopes_are_never_listed() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(3);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let store = store_with(dir.path(), StoreLimits::default(), &[&bob]);
    let clip = clip(THREE_CHUNKS, &mut r);
    let env = envelope(&clip, &alice, &bob, &mut r);
    let deposit = || {
        store
            .deposit(&bob.key(), &env, clip.manifest(), DEPOSITOR, NOW)
            .unwrap()
    };
    assert_eq!(deposit().missing, vec![0, 1, 2]);
    assert!(
        store
            .put_chunk(&clip.id(), 0, &clip.chunks[0])
            .unwrap()
            .is_empty()
    );
    // The same chunk again is accepted, and changes nothing.
    assert!(
        store
            .put_chunk(&clip.id(), 0, &clip.chunks[0])
            .unwrap()
            .is_empty()
    );
    assert_eq!(deposit().missing, vec![1, 2]);
    assert!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.is_empty());
    assert!(
        store
            .put_chunk(&clip.id(), 2, &clip.chunks[2])
            .unwrap()
            .is_empty()
    );
    assert_eq!(deposit().missing, vec![1]);
    assert!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.is_empty());
    // A repeated deposit is not charged twice.
    assert_eq!(store.stats().unwrap().envelopes, 1);
    assert_eq!(
        store.put_chunk(&clip.id(), 1, &clip.chunks[1]).unwrap(),
        vec![(bob.key(), 1)]
    );
    let d = deposit();
    assert!(d.missing.is_empty());
    assert_eq!(d.listed, None);
    assert_eq!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.len(), 1);
}

#[test]
fn the_same_clip_for_two_mailboxes_shares_its_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(4);
    let (alice, bob, carol) = (Party::new(&mut r), Party::new(&mut r), Party::new(&mut r));
    let store = store_with(dir.path(), StoreLimits::default(), &[&bob, &carol]);
    let clip = clip(THREE_CHUNKS, &mut r);
    let to_bob = envelope(&clip, &alice, &bob, &mut r);
    let to_carol = envelope(&clip, &alice, &carol, &mut r);

    store
        .deposit(&bob.key(), &to_bob, clip.manifest(), DEPOSITOR, NOW)
        .unwrap();
    // Carol's envelope arrives mid-upload: both complete together.
    store.put_chunk(&clip.id(), 0, &clip.chunks[0]).unwrap();
    let d = store
        .deposit(&carol.key(), &to_carol, clip.manifest(), DEPOSITOR, NOW)
        .unwrap();
    assert_eq!(d.missing, vec![1, 2]);
    store.put_chunk(&clip.id(), 1, &clip.chunks[1]).unwrap();
    let mut listed = store.put_chunk(&clip.id(), 2, &clip.chunks[2]).unwrap();
    listed.sort_by_key(|(k, _)| k.to_bytes());
    let mut want = vec![(bob.key(), 1), (carol.key(), 1)];
    want.sort_by_key(|(k, _)| k.to_bytes());
    assert_eq!(listed, want);

    // A third deposit of the finished clip completes at once.
    let dave = Party::new(&mut r);
    store.record_certificate(dave.device.certificate()).unwrap();
    let to_dave = envelope(&clip, &alice, &dave, &mut r);
    let d = store
        .deposit(&dave.key(), &to_dave, clip.manifest(), DEPOSITOR, NOW)
        .unwrap();
    assert!(d.missing.is_empty());
    assert_eq!(d.listed, Some(1));
    assert_eq!(
        store.list(&dave.key(), 0, 64, NOW).unwrap().0[0].envelope,
        to_dave
    );

    let s = store.stats().unwrap();
    assert_eq!((s.chunks, s.messages, s.envelopes), (3, 1, 3));
    let h = clip.manifest().chunk_hashes()[0];
    store.ack(&bob.key(), &[1]).unwrap();
    store.ack(&dave.key(), &[1]).unwrap();
    assert_eq!(store.get_chunk(&h, 0, 0).unwrap(), clip.chunks[0]);
    assert_eq!(
        store.list(&carol.key(), 0, 64, NOW).unwrap().0[0].envelope,
        to_carol
    );
    store.ack(&carol.key(), &[1]).unwrap();
    assert_eq!(code(store.get_chunk(&h, 0, 0)), ErrorCode::NotFound);
    assert_eq!(store.stats().unwrap().chunks, 0);
}

/// A manifest naming `clip`'s chunks under a fresh message id, as anyone who
/// knows the hashes can make one.
fn twin_manifest(clip: &Clip, rng: &mut ChaCha20Rng) -> (Manifest, SigningSecret) {
    let rsk = SigningSecret::generate(rng);
    let mut bytes = clip.manifest().to_bytes();
    bytes[2..34].copy_from_slice(&MessageId::for_revocation_key(&rsk.public()).0);
    bytes[34..66].copy_from_slice(&rsk.public().to_bytes());
    (Manifest::decode(&bytes).unwrap(), rsk)
}

#[test]
fn a_chunk_two_messages_name_outlives_the_one_that_stored_it() {
    a_shared_chunk_outlives_the_one_that_stored_it(false);
}

#[test]
fn an_unsealed_shared_chunk_outlives_the_one_that_stored_it() {
    a_shared_chunk_outlives_the_one_that_stored_it(true);
}

fn a_shared_chunk_outlives_the_one_that_stored_it(unsealed: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(5);
    let (alice, bob, carol) = (Party::new(&mut r), Party::new(&mut r), Party::new(&mut r));
    let mut store = store_with(dir.path(), StoreLimits::default(), &[&bob, &carol]);
    if unsealed {
        store = store.with_chunk_files();
    }
    let clip = clip(THREE_CHUNKS, &mut r);
    let env = envelope(&clip, &alice, &bob, &mut r);
    store
        .deposit(&bob.key(), &env, clip.manifest(), DEPOSITOR, NOW)
        .unwrap();
    upload_all(&store, &clip);

    let (twin, _) = twin_manifest(&clip, &mut r);
    let twin_env = envelope(&clip, &alice, &carol, &mut r);
    let d = store
        .deposit(&carol.key(), &twin_env, &twin, DEPOSITOR, NOW)
        .unwrap();
    assert!(d.missing.is_empty(), "the chunks are already stored");
    assert_eq!(d.listed, Some(1));
    assert_eq!(store.stats().unwrap().chunks, 3);

    // Revoking the original re-seals the shared chunks under the twin's key.
    assert_eq!(
        store.revoke(&clip.sealed.revoke(NOW), NOW).unwrap(),
        Applied::Revoked
    );
    assert_eq!(
        code(store.get_manifest(&clip.id(), NOW)),
        ErrorCode::NotFound
    );
    for (i, h) in clip.manifest().chunk_hashes().iter().enumerate() {
        assert_eq!(store.get_chunk(h, 0, 0).unwrap(), clip.chunks[i]);
    }
    // And it survives a restart, whichever form the reopened store writes.
    drop(store);
    let mut store = open(dir.path(), StoreLimits::default(), 1001);
    if !unsealed {
        store = store.with_chunk_files();
    }
    let h = clip.manifest().chunk_hashes()[2];
    assert_eq!(store.get_chunk(&h, 0, 0).unwrap(), clip.chunks[2]);
    store.ack(&carol.key(), &[1]).unwrap();
    assert_eq!(code(store.get_chunk(&h, 0, 0)), ErrorCode::NotFound);
    let s = store.stats().unwrap();
    assert_eq!((s.chunks, s.messages, s.stored_bytes), (0, 0, 0));
}

#[test]
fn wrong_chunks_unknown_messages_and_conflicting_deposits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(6);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let store = store_with(dir.path(), StoreLimits::default(), &[&bob]);
    let clip = clip(THREE_CHUNKS, &mut r);
    let env = envelope(&clip, &alice, &bob, &mut r);
    let id = clip.id();

    assert_eq!(
        code(store.put_chunk(&id, 0, &clip.chunks[0])),
        ErrorCode::NotFound
    );
    store
        .deposit(&bob.key(), &env, clip.manifest(), DEPOSITOR, NOW)
        .unwrap();
    // Wrong index, flipped byte, wrong length, out of range.
    assert_eq!(
        code(store.put_chunk(&id, 1, &clip.chunks[0])),
        ErrorCode::Conflict
    );
    let mut bad = clip.chunks[0].clone();
    bad[5] ^= 1;
    assert_eq!(code(store.put_chunk(&id, 0, &bad)), ErrorCode::Conflict);
    assert_eq!(
        code(store.put_chunk(&id, 0, &clip.chunks[0][..100])),
        ErrorCode::Conflict
    );
    assert_eq!(
        code(store.put_chunk(&id, 3, &clip.chunks[2])),
        ErrorCode::Conflict
    );
    assert_eq!(
        code(store.put_chunk(&id, 0, &vec![0; CIPHERTEXT_CHUNK_SIZE + 1])),
        ErrorCode::TooLarge
    );
    assert_eq!(store.stats().unwrap().chunks, 0);

    // Another manifest under the same message id (same revocation key).
    let rsk = SigningSecret::from_seed(&clip.sealed.revocation_secret().to_seed());
    let other = seal_with(1000, 9, [9; 32], rsk);
    assert_eq!(other.id(), id);
    assert_ne!(other.manifest(), clip.manifest());
    let other_env = envelope(&other, &alice, &bob, &mut r);
    assert_eq!(
        code(store.deposit(&bob.key(), &other_env, other.manifest(), DEPOSITOR, NOW)),
        ErrorCode::Conflict
    );
    // Another envelope for the same deposit.
    let env2 = envelope(&clip, &alice, &bob, &mut r);
    assert_eq!(
        code(store.deposit(&bob.key(), &env2, clip.manifest(), DEPOSITOR, NOW)),
        ErrorCode::Conflict
    );
    // A mailbox the store does not serve; an over-long depositor id.
    let stranger = Party::new(&mut r);
    assert_eq!(
        code(store.deposit(&stranger.key(), &env, clip.manifest(), DEPOSITOR, NOW)),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(store.deposit(&bob.key(), &env, clip.manifest(), &[7; 65], NOW)),
        ErrorCode::TooLarge
    );
    // The unknown chunk and the unknown manifest.
    assert_eq!(code(store.get_chunk(&[3; 32], 0, 0)), ErrorCode::NotFound);
    assert_eq!(
        code(store.get_manifest(&MessageId([3; 32]), NOW)),
        ErrorCode::NotFound
    );
    assert_eq!(store.stats().unwrap().envelopes, 1);
}

#[test]
fn clips_beyond_the_size_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(7);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let small = clip(1000, &mut r);
    let limits = StoreLimits {
        max_clip_bytes: small.manifest().ciphertext_len(),
        ..StoreLimits::default()
    };
    let store = store_with(dir.path(), limits, &[&bob]);
    let big = clip(THREE_CHUNKS, &mut r);
    let env = envelope(&big, &alice, &bob, &mut r);
    assert_eq!(
        code(store.deposit(&bob.key(), &env, big.manifest(), DEPOSITOR, NOW)),
        ErrorCode::TooLarge
    );
    let env = envelope(&small, &alice, &bob, &mut r);
    store
        .deposit(&bob.key(), &env, small.manifest(), DEPOSITOR, NOW)
        .unwrap();
}

#[test]
fn mailbox_quotas_are_enforced_and_freed_by_acks() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(8);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let clips: Vec<Clip> = (0..3).map(|_| clip(1000, &mut r)).collect();
    let one = clips[0].manifest().ciphertext_len();
    let limits = StoreLimits {
        mailbox_entries: 2,
        mailbox_bytes: 10 * one,
        ..StoreLimits::default()
    };
    let store = store_with(dir.path(), limits, &[&bob]);
    let envs: Vec<Envelope> = clips
        .iter()
        .map(|c| envelope(c, &alice, &bob, &mut r))
        .collect();
    for i in 0..2 {
        store
            .deposit(&bob.key(), &envs[i], clips[i].manifest(), DEPOSITOR, NOW)
            .unwrap();
        upload_all(&store, &clips[i]);
    }
    let third = store.deposit(&bob.key(), &envs[2], clips[2].manifest(), DEPOSITOR, NOW);
    assert_eq!(code(third), ErrorCode::QuotaExceeded);
    // Nothing of the refused deposit was kept.
    assert_eq!(store.stats().unwrap().messages, 2);
    store.ack(&bob.key(), &[1]).unwrap();
    store
        .deposit(&bob.key(), &envs[2], clips[2].manifest(), DEPOSITOR, NOW)
        .unwrap();

    // Bytes: a mailbox that holds one clip's worth.
    let dir = tempfile::tempdir().unwrap();
    let limits = StoreLimits {
        mailbox_bytes: one + one / 2,
        ..StoreLimits::default()
    };
    let store = store_with(dir.path(), limits, &[&bob]);
    store
        .deposit(&bob.key(), &envs[0], clips[0].manifest(), DEPOSITOR, NOW)
        .unwrap();
    assert_eq!(
        code(store.deposit(&bob.key(), &envs[1], clips[1].manifest(), DEPOSITOR, NOW)),
        ErrorCode::QuotaExceeded
    );
}

#[test]
fn depositor_and_store_quotas_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(9);
    let (alice, bob, carol) = (Party::new(&mut r), Party::new(&mut r), Party::new(&mut r));
    let a = clip(1000, &mut r);
    let b = clip(1000, &mut r);
    let one = a.manifest().ciphertext_len();
    let limits = StoreLimits {
        depositor_bytes: one,
        ..StoreLimits::default()
    };
    let store = store_with(dir.path(), limits, &[&bob, &carol]);
    let a_bob = envelope(&a, &alice, &bob, &mut r);
    let a_carol = envelope(&a, &alice, &carol, &mut r);
    let b_carol = envelope(&b, &alice, &carol, &mut r);
    store
        .deposit(&bob.key(), &a_bob, a.manifest(), b"peer-1", NOW)
        .unwrap();
    // Each envelope is charged, even of a clip already stored.
    assert_eq!(
        code(store.deposit(&carol.key(), &a_carol, a.manifest(), b"peer-1", NOW)),
        ErrorCode::QuotaExceeded
    );
    store
        .deposit(&carol.key(), &a_carol, a.manifest(), b"peer-2", NOW)
        .unwrap();
    assert_eq!(
        code(store.deposit(&carol.key(), &b_carol, b.manifest(), b"peer-2", NOW)),
        ErrorCode::QuotaExceeded
    );
    // Acknowledgement frees the depositor's quota.
    upload_all(&store, &a);
    store.ack(&carol.key(), &[1]).unwrap();
    store
        .deposit(&carol.key(), &b_carol, b.manifest(), b"peer-2", NOW)
        .unwrap();

    // The store-wide limits: bytes and messages.
    let reserve = one + a.manifest().to_bytes().len() as u64;
    for limits in [
        StoreLimits {
            total_bytes: reserve,
            ..StoreLimits::default()
        },
        StoreLimits {
            max_messages: 1,
            ..StoreLimits::default()
        },
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), limits, &[&bob, &carol]);
        store
            .deposit(&bob.key(), &a_bob, a.manifest(), b"peer-9", NOW)
            .unwrap();
        // The same message for another mailbox reserves nothing more.
        store
            .deposit(&carol.key(), &a_carol, a.manifest(), b"peer-9", NOW)
            .unwrap();
        assert_eq!(
            code(store.deposit(&carol.key(), &b_carol, b.manifest(), b"peer-9", NOW)),
            ErrorCode::QuotaExceeded
        );
    }
}

#[test]
fn expiry_out_of_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(10);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let store = store_with(dir.path(), StoreLimits::default(), &[&bob]);
    let c = clip(1000, &mut r);
    let env = envelope(&c, &alice, &bob, &mut r);
    let expires = c.manifest().expires_at();
    for now in [
        expires,
        expires.plus(1),
        UnixMillis(expires.0 - MAX_CLIP_TTL_MS - MAX_CLOCK_SKEW_MS - 1),
    ] {
        assert_eq!(
            code(store.deposit(&bob.key(), &env, c.manifest(), DEPOSITOR, now)),
            ErrorCode::Expired
        );
    }
    let earliest = UnixMillis(expires.0 - MAX_CLIP_TTL_MS - MAX_CLOCK_SKEW_MS);
    store
        .deposit(&bob.key(), &env, c.manifest(), DEPOSITOR, earliest)
        .unwrap();
}

#[test]
fn revocation_deletes_at_once_and_blocks_redeposit() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(11);
    let (alice, bob, carol) = (Party::new(&mut r), Party::new(&mut r), Party::new(&mut r));
    let store = store_with(dir.path(), StoreLimits::default(), &[&bob, &carol]);
    let c = clip(THREE_CHUNKS, &mut r);
    let to_bob = envelope(&c, &alice, &bob, &mut r);
    let to_carol = envelope(&c, &alice, &carol, &mut r);
    store
        .deposit(&bob.key(), &to_bob, c.manifest(), DEPOSITOR, NOW)
        .unwrap();
    upload_all(&store, &c);
    // Carol's envelope is still pending (deposited after completion it would be listed, so
    // deposit one of a clip whose upload is unfinished too).
    store
        .deposit(&carol.key(), &to_carol, c.manifest(), DEPOSITOR, NOW)
        .unwrap();
    let unfinished = clip(THREE_CHUNKS, &mut r);
    let env_u = envelope(&unfinished, &alice, &carol, &mut r);
    store
        .deposit(&carol.key(), &env_u, unfinished.manifest(), DEPOSITOR, NOW)
        .unwrap();
    store
        .put_chunk(&unfinished.id(), 0, &unfinished.chunks[0])
        .unwrap();

    let rec = c.sealed.revoke(NOW);
    assert_eq!(store.revoke(&rec, NOW).unwrap(), Applied::Revoked);
    assert!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.is_empty());
    assert!(store.list(&carol.key(), 0, 64, NOW).unwrap().0.is_empty());
    assert_eq!(code(store.get_manifest(&c.id(), NOW)), ErrorCode::NotFound);
    for h in c.manifest().chunk_hashes() {
        assert_eq!(code(store.get_chunk(h, 0, 0)), ErrorCode::NotFound);
    }
    // Replays change nothing; the id cannot come back.
    assert_eq!(
        store.revoke(&rec, NOW.plus(5)).unwrap(),
        Applied::AlreadyRevoked
    );
    assert_eq!(
        code(store.deposit(&bob.key(), &to_bob, c.manifest(), DEPOSITOR, NOW)),
        ErrorCode::Revoked
    );
    assert_eq!(
        code(store.put_chunk(&c.id(), 0, &c.chunks[0])),
        ErrorCode::Revoked
    );

    // A pending deposit is revoked the same way.
    let rec_u = unfinished.sealed.revoke(NOW);
    assert_eq!(store.revoke(&rec_u, NOW).unwrap(), Applied::Revoked);
    let s = store.stats().unwrap();
    assert_eq!(
        (
            s.envelopes,
            s.chunks,
            s.messages,
            s.tombstones,
            s.stored_bytes
        ),
        (0, 0, 0, 2, 0)
    );
    for _ in 0..2 {
        let x = clip(1000, &mut r);
        let e = envelope(&x, &alice, &carol, &mut r);
        store
            .deposit(&carol.key(), &e, x.manifest(), DEPOSITOR, NOW)
            .unwrap();
    }

    // A record for a message never seen still leaves a tombstone.
    let never = clip(1000, &mut r);
    assert_eq!(
        store.revoke(&never.sealed.revoke(NOW), NOW).unwrap(),
        Applied::Revoked
    );
    let e = envelope(&never, &alice, &bob, &mut r);
    assert_eq!(
        code(store.deposit(&bob.key(), &e, never.manifest(), DEPOSITOR, NOW)),
        ErrorCode::Revoked
    );
    // A record from the future is refused.
    let future = clip(1000, &mut r);
    let rec_f = future.sealed.revoke(NOW.plus(MAX_CLOCK_SKEW_MS + 1));
    assert_eq!(code(store.revoke(&rec_f, NOW)), ErrorCode::Malformed);
}

#[test]
fn tombstones_are_bounded_and_collected() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(12);
    let limits = StoreLimits {
        max_tombstones: 2,
        ..StoreLimits::default()
    };
    let store = open(dir.path(), limits, 1000);
    let recs: Vec<RevocationRecord> = (0..3)
        .map(|_| RevocationRecord::sign(&SigningSecret::generate(&mut r), NOW))
        .collect();
    store.revoke(&recs[0], NOW).unwrap();
    store.revoke(&recs[1], NOW).unwrap();
    assert_eq!(code(store.revoke(&recs[2], NOW)), ErrorCode::QuotaExceeded);
    assert_eq!(
        store.revoke(&recs[0], NOW).unwrap(),
        Applied::AlreadyRevoked
    );
    let keep_until = NOW.plus(MAX_CLIP_TTL_MS + 2 * MAX_CLOCK_SKEW_MS);
    let before = store.collect(UnixMillis(keep_until.0 - 1)).unwrap();
    assert_eq!(before.tombstones, 0);
    // A full ledger makes room from tombstones that are due.
    assert_eq!(
        store.revoke(&recs[2], keep_until).unwrap(),
        Applied::Revoked
    );
    assert_eq!(store.stats().unwrap().tombstones, 1);
    let after = store.collect(keep_until.plus(MAX_CLIP_TTL_MS * 2)).unwrap();
    assert_eq!(after.tombstones, 1);
    assert_eq!(store.stats().unwrap().tombstones, 0);
}

#[test]
fn the_collector_deletes_expired_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(13);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let limits = StoreLimits {
        collect_batch: 2,
        // Longer than a clip lives: the pending clip below goes at expiry.
        pending_ttl_secs: 15 * 24 * 3600,
        ..StoreLimits::default()
    };
    let store = store_with(dir.path(), limits, &[&bob]);
    let clips: Vec<Clip> = (0..3).map(|_| clip(THREE_CHUNKS, &mut r)).collect();
    for c in &clips {
        let e = envelope(c, &alice, &bob, &mut r);
        store
            .deposit(&bob.key(), &e, c.manifest(), DEPOSITOR, NOW)
            .unwrap();
    }
    // Two complete, one pending.
    upload_all(&store, &clips[0]);
    upload_all(&store, &clips[1]);
    store
        .put_chunk(&clips[2].id(), 1, &clips[2].chunks[1])
        .unwrap();
    let expires = clips[0].manifest().expires_at();
    // Before the collector runs, an expired message is neither listed nor
    // described; a moment earlier it is.
    let just_before = UnixMillis(expires.0 - 1);
    assert_eq!(
        store.list(&bob.key(), 0, 64, just_before).unwrap().0.len(),
        2
    );
    assert!(store.get_manifest(&clips[0].id(), just_before).is_ok());
    let (listed, more) = store.list(&bob.key(), 0, 1, expires).unwrap();
    assert!(
        listed.is_empty() && !more,
        "expired entries are skipped, not paged"
    );
    assert_eq!(
        code(store.get_manifest(&clips[0].id(), expires)),
        ErrorCode::NotFound
    );
    assert_eq!(
        store.collect(UnixMillis(expires.0 - 1)).unwrap(),
        Default::default()
    );
    let first = store.collect(expires).unwrap();
    assert_eq!((first.messages, first.envelopes, first.more), (2, 2, true));
    let second = store.collect(expires).unwrap();
    assert_eq!((second.messages, second.more), (1, false));
    let s = store.stats().unwrap();
    assert_eq!(
        (
            s.envelopes,
            s.chunks,
            s.messages,
            s.stored_bytes,
            s.reserved_bytes
        ),
        (0, 0, 0, 0, 0)
    );
    assert!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.is_empty());
    for c in &clips {
        assert_eq!(code(store.get_manifest(&c.id(), NOW)), ErrorCode::NotFound);
    }
}

#[test]
fn a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(14);
    let (alice, mut bob) = (Party::new(&mut r), Party::new(&mut r));
    let done = clip(THREE_CHUNKS, &mut r);
    let half = clip(THREE_CHUNKS, &mut r);
    let env_done = envelope(&done, &alice, &bob, &mut r);
    let env_half = envelope(&half, &alice, &bob, &mut r);
    let revoked = RevocationRecord::sign(&SigningSecret::generate(&mut r), NOW);
    let otks = bob.prekeys.issue_one_time(&bob.device, 2, NOW, &mut r);
    let first;
    {
        let store = store_with(dir.path(), StoreLimits::default(), &[&bob]);
        store
            .publish_prekeys(
                bob.device.certificate(),
                bob.prekeys.signed_prekey().clone(),
                otks.clone(),
                NOW,
            )
            .unwrap();
        store
            .deposit(&bob.key(), &env_done, done.manifest(), DEPOSITOR, NOW)
            .unwrap();
        upload_all(&store, &done);
        store
            .deposit(&bob.key(), &env_half, half.manifest(), DEPOSITOR, NOW)
            .unwrap();
        store.put_chunk(&half.id(), 1, &half.chunks[1]).unwrap();
        store.revoke(&revoked, NOW).unwrap();
        first = store
            .take_bundle(&bob.key(), NOW)
            .unwrap()
            .unwrap()
            .one_time_prekey;
        assert!(first.is_some());
    }
    let store = open(dir.path(), StoreLimits::default(), 1001);
    let (entries, _) = store.list(&bob.key(), 0, 64, NOW).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].envelope, env_done);
    assert_eq!(
        store
            .get_chunk(&done.manifest().chunk_hashes()[1], 0, 0)
            .unwrap(),
        done.chunks[1]
    );
    assert_eq!(
        store
            .deposit(&bob.key(), &env_half, half.manifest(), DEPOSITOR, NOW)
            .unwrap()
            .missing,
        vec![0, 2]
    );
    assert_eq!(
        store.revoke(&revoked, NOW).unwrap(),
        Applied::AlreadyRevoked
    );
    assert_eq!(store.device_serial(&bob.key()).unwrap(), Some(1));
    // The one-time prekey handed out before the restart is not handed out again.
    let second = store
        .take_bundle(&bob.key(), NOW)
        .unwrap()
        .unwrap()
        .one_time_prekey;
    assert!(second.is_some());
    assert_ne!(second, first);
    assert!(otks.contains(second.as_ref().unwrap()) && otks.contains(first.as_ref().unwrap()));
    upload_all(&store, &half);
    assert_eq!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.len(), 2);
    drop(store);
    let store = open(dir.path(), StoreLimits::default(), 1002);
    assert_eq!(
        store.list(&bob.key(), 1, 64, NOW).unwrap().0[0].envelope,
        env_half
    );
    let s = store.stats().unwrap();
    assert_eq!(
        (s.envelopes, s.messages, s.chunks, s.tombstones),
        (2, 2, 6, 1)
    );
}

#[test]
fn prekey_bundles_hand_out_each_one_time_prekey_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(15);
    let mut bob = Party::new(&mut r);
    let store = open(dir.path(), StoreLimits::default(), 1000);
    assert_eq!(store.take_bundle(&bob.key(), NOW).unwrap(), None);
    assert_eq!(store.device_serial(&bob.key()).unwrap(), None);

    let otks = bob.prekeys.issue_one_time(&bob.device, 3, NOW, &mut r);
    let spk = bob.prekeys.signed_prekey().clone();
    let cert = bob.device.certificate().clone();
    store
        .publish_prekeys(&cert, spk.clone(), otks.clone(), NOW)
        .unwrap();
    // Publishing the same again adds nothing.
    store
        .publish_prekeys(&cert, spk.clone(), otks.clone(), NOW)
        .unwrap();
    assert_eq!(store.device_serial(&bob.key()).unwrap(), Some(1));
    let mut handed = Vec::new();
    for _ in 0..3 {
        let b = store.take_bundle(&bob.key(), NOW).unwrap().unwrap();
        assert_eq!(b.certificate, cert);
        assert_eq!(b.signed_prekey, spk);
        b.verify(&bob.key(), NOW).unwrap();
        handed.push(b.one_time_prekey.unwrap());
    }
    let mut want = otks.clone();
    want.sort_by_key(|p| p.public().to_bytes());
    handed.sort_by_key(|p| p.public().to_bytes());
    assert_eq!(handed, want);
    let b = store.take_bundle(&bob.key(), NOW).unwrap().unwrap();
    assert_eq!(b.one_time_prekey, None);

    // The newest signed prekey stays, whatever order they arrive in.
    let later = NOW.plus(SIGNED_PREKEY_ROTATION_MS);
    let newer = bob
        .prekeys
        .rotate_if_due(&bob.device, later, &mut r)
        .unwrap();
    store
        .publish_prekeys(&cert, newer.clone(), vec![], later)
        .unwrap();
    store
        .publish_prekeys(&cert, spk.clone(), vec![], later)
        .unwrap();
    let b = store.take_bundle(&bob.key(), later).unwrap().unwrap();
    assert_eq!(b.signed_prekey, newer);

    // Wrong kinds, foreign signatures and future dates are refused.
    assert_eq!(
        code(store.publish_prekeys(&cert, otks[0].clone(), vec![], NOW)),
        ErrorCode::Malformed
    );
    assert_eq!(
        code(store.publish_prekeys(&cert, spk.clone(), vec![spk.clone()], NOW)),
        ErrorCode::Malformed
    );
    let mallory = Party::new(&mut r);
    assert_eq!(
        code(store.publish_prekeys(&cert, mallory.prekeys.signed_prekey().clone(), vec![], NOW)),
        ErrorCode::Malformed
    );
    let past = UnixMillis(NOW.0 - MAX_CLOCK_SKEW_MS - 1);
    assert_eq!(
        code(store.publish_prekeys(&cert, spk.clone(), vec![], past)),
        ErrorCode::Malformed
    );
    let too_many =
        bob.prekeys
            .issue_one_time(&bob.device, MAX_PREKEYS_PER_PUBLISH + 1, later, &mut r);
    if too_many.len() > MAX_PREKEYS_PER_PUBLISH {
        assert_eq!(
            code(store.publish_prekeys(&cert, newer.clone(), too_many, later)),
            ErrorCode::TooLarge
        );
    }
}

#[test]
fn one_time_prekeys_are_capped_and_stale_ones_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(16);
    let mut bob = Party::new(&mut r);
    let limits = StoreLimits {
        max_one_time_prekeys: 2,
        ..StoreLimits::default()
    };
    let store = open(dir.path(), limits, 1000);
    let cert = bob.device.certificate().clone();
    let spk = bob.prekeys.signed_prekey().clone();
    let old = bob.prekeys.issue_one_time(&bob.device, 1, NOW, &mut r);
    let t1 = NOW.plus(1000);
    let mid = bob.prekeys.issue_one_time(&bob.device, 1, t1, &mut r);
    let t2 = NOW.plus(2000);
    let new = bob.prekeys.issue_one_time(&bob.device, 1, t2, &mut r);
    store
        .publish_prekeys(
            &cert,
            spk.clone(),
            [old, mid.clone(), new.clone()].concat(),
            t2,
        )
        .unwrap();
    let b1 = store.take_bundle(&bob.key(), t2).unwrap().unwrap();
    let b2 = store.take_bundle(&bob.key(), t2).unwrap().unwrap();
    assert_eq!(b1.one_time_prekey.as_ref(), Some(&mid[0]));
    assert_eq!(b2.one_time_prekey.as_ref(), Some(&new[0]));
    assert_eq!(
        store
            .take_bundle(&bob.key(), t2)
            .unwrap()
            .unwrap()
            .one_time_prekey,
        None
    );

    // A one-time prekey a sender would pass over is not handed out.
    let stale = bob.prekeys.issue_one_time(&bob.device, 1, t2, &mut r);
    store.publish_prekeys(&cert, spk, stale, t2).unwrap();
    let much_later = t2.plus(ONE_TIME_PREKEY_MAX_AGE_MS + 1);
    assert_eq!(
        store
            .take_bundle(&bob.key(), much_later)
            .unwrap()
            .unwrap()
            .one_time_prekey,
        None
    );
}

#[test]
fn a_newer_device_supersedes_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(17);
    let mut bob = Party::new(&mut r);
    let store = open(dir.path(), StoreLimits::default(), 1000);
    let old_cert = bob.device.certificate().clone();
    let otks = bob.prekeys.issue_one_time(&bob.device, 2, NOW, &mut r);
    store
        .publish_prekeys(&old_cert, bob.prekeys.signed_prekey().clone(), otks, NOW)
        .unwrap();

    let new_device = bob.identity.new_device(2, NOW, &mut r);
    let new_prekeys = PrekeyStore::new(&new_device, NOW, &mut r);
    store.record_certificate(new_device.certificate()).unwrap();
    assert_eq!(store.device_serial(&bob.key()).unwrap(), Some(2));
    // The old device's prekeys are gone with it.
    assert_eq!(store.take_bundle(&bob.key(), NOW).unwrap(), None);
    assert_eq!(
        code(store.record_certificate(&old_cert)),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(store.publish_prekeys(&old_cert, bob.prekeys.signed_prekey().clone(), vec![], NOW)),
        ErrorCode::Forbidden
    );
    store
        .publish_prekeys(
            new_device.certificate(),
            new_prekeys.signed_prekey().clone(),
            vec![],
            NOW,
        )
        .unwrap();
    let b = store.take_bundle(&bob.key(), NOW).unwrap().unwrap();
    assert_eq!(&b.certificate, new_device.certificate());
    // Another certificate with the same serial is a conflict.
    let twin = bob.identity.new_device(2, NOW, &mut r);
    assert_eq!(
        code(store.record_certificate(twin.certificate())),
        ErrorCode::Conflict
    );
    bob.device = new_device;
    let limits = StoreLimits {
        max_identities: 1,
        ..StoreLimits::default()
    };
    drop(store);
    let store = open(dir.path(), limits, 1001);
    let carol = Party::new(&mut r);
    assert_eq!(
        code(store.record_certificate(carol.device.certificate())),
        ErrorCode::QuotaExceeded
    );
    store.record_certificate(bob.device.certificate()).unwrap();
}

// ---------------------------------------------------------------------------
// Erasure: what the files hold before and after deletion.
// ---------------------------------------------------------------------------

/// Every byte of every file under `dir`.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    assert!(!out.is_empty());
    out
}

/// The files of `dir` that contain `needle`.
fn found_in(dir: &Path, needle: &[u8]) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
        .map(|(name, _)| name)
        .collect()
}

/// The data key of message `id`, read from the key file as the format
/// documents it (a slot is `id ‖ key`).
fn data_key(dir: &Path, id: &MessageId) -> Option<[u8; 32]> {
    let bytes = std::fs::read(dir.join(KEY_FILE_NAME)).unwrap();
    bytes[KEY_FILE_HEADER_LEN as usize..]
        .chunks_exact(KEY_SLOT_LEN)
        .find(|s| s[..32] == id.0)
        .map(|s| s[32..].try_into().unwrap())
}

#[test]
fn deleted_data_leaves_no_readable_trace_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let mut r = rng(18);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let store = store_with(path, StoreLimits::default(), &[&bob]);
    // The depositor id is stored in plaintext (a redb key): the scan must find it.
    let marker = b"MARKER:plaintext-depositor-peer-id";

    let clips: Vec<Clip> = (0..3).map(|_| clip(THREE_CHUNKS, &mut r)).collect();
    let envs: Vec<Envelope> = clips
        .iter()
        .map(|c| envelope(c, &alice, &bob, &mut r))
        .collect();
    for (c, e) in clips.iter().zip(&envs) {
        store
            .deposit(&bob.key(), e, c.manifest(), marker, NOW)
            .unwrap();
        upload_all(&store, c);
    }
    let keys: Vec<[u8; 32]> = clips
        .iter()
        .map(|c| data_key(path, &c.id()).expect("a key slot per message"))
        .collect();

    // The scan is meaningful: it finds plaintext the store wrote, and it finds the keys
    // where they live.
    assert!(
        !found_in(path, marker).is_empty(),
        "the scan finds a known plaintext"
    );
    for k in &keys {
        assert_eq!(
            found_in(path, k).len(),
            1,
            "the key is in the key file only"
        );
        assert!(found_in(path, k)[0].ends_with(KEY_FILE_NAME));
    }
    // Values are sealed: no envelope, manifest or chunk is in the files as sent.
    for (c, e) in clips.iter().zip(&envs) {
        assert!(
            found_in(path, &e.to_bytes()).is_empty(),
            "envelope in plaintext"
        );
        assert!(
            found_in(path, &c.manifest().to_bytes()).is_empty(),
            "manifest in plaintext"
        );
        for chunk in &c.chunks {
            assert!(
                found_in(path, &chunk[..64]).is_empty(),
                "chunk in plaintext"
            );
        }
    }

    // Delete one by acknowledgement, one by revocation, one by expiry.
    let (entries, _) = store.list(&bob.key(), 0, 64, NOW).unwrap();
    let seq_of = |id: MessageId| entries.iter().find(|e| e.message_id == id).unwrap().seq;
    assert_eq!(store.ack(&bob.key(), &[seq_of(clips[0].id())]).unwrap(), 1);
    assert_eq!(
        store.revoke(&clips[1].sealed.revoke(NOW), NOW).unwrap(),
        Applied::Revoked
    );
    assert_eq!(data_key(path, &clips[2].id()), Some(keys[2]));
    let expires = clips[2].manifest().expires_at();
    assert_eq!(store.collect(expires).unwrap().messages, 1);

    for (i, (c, e)) in clips.iter().zip(&envs).enumerate() {
        assert_eq!(data_key(path, &c.id()), None, "slot {i} wiped");
        assert!(
            found_in(path, &keys[i]).is_empty(),
            "key {i} gone from every file"
        );
        assert!(found_in(path, &e.to_bytes()).is_empty(), "envelope {i}");
    }
    // Nothing sealed is left that the store could open, and it says so.
    let s = store.stats().unwrap();
    assert_eq!((s.envelopes, s.chunks, s.messages), (0, 0, 0));
    // The same holds after a restart (which rewrites nothing it should not).
    drop(store);
    let store = open(path, StoreLimits::default(), 1001);
    for k in &keys {
        assert!(found_in(path, k).is_empty());
    }
    drop(store);
}

#[test]
fn an_interrupted_deletion_is_finished_at_the_next_open() {
    // Simulates a crash after the deleting transaction committed and before the
    // key slot was wiped: an orphaned slot, which open must wipe.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let mut r = rng(19);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let c = clip(1000, &mut r);
    let e = envelope(&c, &alice, &bob, &mut r);
    {
        let store = store_with(path, StoreLimits::default(), &[&bob]);
        store
            .deposit(&bob.key(), &e, c.manifest(), DEPOSITOR, NOW)
            .unwrap();
        upload_all(&store, &c);
    }
    let key = data_key(path, &c.id()).unwrap();
    let slots_before = std::fs::read(path.join(KEY_FILE_NAME)).unwrap();
    {
        let store = open(path, StoreLimits::default(), 1001);
        store.ack(&bob.key(), &[1]).unwrap();
    }
    assert!(found_in(path, &key).is_empty());
    // Put the slot back as if the wipe never happened, plus a torn slot at the end.
    let mut torn = slots_before.clone();
    torn.extend_from_slice(&[0xab; 10]);
    std::fs::write(path.join(KEY_FILE_NAME), &torn).unwrap();
    assert!(!found_in(path, &key).is_empty());
    let store = open(path, StoreLimits::default(), 1002);
    assert!(
        found_in(path, &key).is_empty(),
        "open wiped the orphaned slot"
    );
    assert!(found_in(path, &[0xab; 10]).is_empty(), "and the torn one");
    assert_eq!(store.stats().unwrap().messages, 0);
    // A key file that lost a live key makes its message unreadable: open deletes it.
    let c2 = clip(1000, &mut r);
    let e2 = envelope(&c2, &alice, &bob, &mut r);
    store
        .deposit(&bob.key(), &e2, c2.manifest(), DEPOSITOR, NOW)
        .unwrap();
    upload_all(&store, &c2);
    drop(store);
    let mut slots = std::fs::read(path.join(KEY_FILE_NAME)).unwrap();
    for b in &mut slots[KEY_FILE_HEADER_LEN as usize..] {
        *b = 0;
    }
    std::fs::write(path.join(KEY_FILE_NAME), &slots).unwrap();
    let store = open(path, StoreLimits::default(), 1003);
    let s = store.stats().unwrap();
    assert_eq!((s.messages, s.envelopes, s.chunks), (0, 0, 0));
    assert!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.is_empty());
}

#[test]
fn the_integrity_check_counts_a_whole_store_and_finds_a_damaged_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let mut r = rng(23);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let (c1, c2) = (clip(THREE_CHUNKS, &mut r), clip(1000, &mut r));
    let mut store = store_with(path, StoreLimits::default(), &[&bob]);
    for c in [&c1, &c2] {
        let e = envelope(c, &alice, &bob, &mut r);
        store
            .deposit(&bob.key(), &e, c.manifest(), DEPOSITOR, NOW)
            .unwrap();
    }
    // c1 complete and listed, c2 pending with no chunk.
    upload_all(&store, &c1);
    let report = store.check().expect("a whole store passes");
    assert!(!report.repaired);
    assert_eq!(
        (
            report.messages,
            report.complete,
            report.envelopes,
            report.chunks,
            report.key_slots
        ),
        (2, 1, 2, 3, 2)
    );
    drop(store);

    // One bit of c1's data key flipped in place: its values no longer open.
    let key = data_key(path, &c1.id()).unwrap();
    let mut slots = std::fs::read(path.join(KEY_FILE_NAME)).unwrap();
    let at = memchr::memmem::find(&slots, &key).expect("the key is in the key file");
    slots[at] ^= 1;
    std::fs::write(path.join(KEY_FILE_NAME), &slots).unwrap();
    let mut store = open(path, StoreLimits::default(), 1004);
    let e = store.check().expect_err("a damaged key is found");
    assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
}

#[test]
fn errors_map_onto_mailbox_codes() {
    let cases = [
        (StoreError::NotFound("x"), ErrorCode::NotFound),
        (StoreError::Conflict("x"), ErrorCode::Conflict),
        (StoreError::QuotaExceeded("x"), ErrorCode::QuotaExceeded),
        (StoreError::TooLarge("x"), ErrorCode::TooLarge),
        (StoreError::Revoked, ErrorCode::Revoked),
        (StoreError::Expired("x"), ErrorCode::Expired),
        (StoreError::Forbidden("x"), ErrorCode::Forbidden),
        (StoreError::Invalid("x"), ErrorCode::Malformed),
        (StoreError::Corrupt("x".into()), ErrorCode::Internal),
        (
            StoreError::Io(std::io::Error::other("x")),
            ErrorCode::Internal,
        ),
    ];
    for (e, c) in cases {
        assert_eq!(e.code(), c, "{e}");
    }
}

#[test]
fn readers_run_beside_the_writer_and_see_deleted_data_as_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(20);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let store = store_with(dir.path(), StoreLimits::default(), &[&bob]);
    let clips: Vec<Clip> = (0..6).map(|_| clip(1000, &mut r)).collect();
    let envs: Vec<Envelope> = clips
        .iter()
        .map(|c| envelope(c, &alice, &bob, &mut r))
        .collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            // Deposit, complete and acknowledge each clip in turn: key slots are
            // written, wiped and reused while the reader reads.
            for (i, (c, e)) in clips.iter().zip(&envs).enumerate() {
                store
                    .deposit(&bob.key(), e, c.manifest(), DEPOSITOR, NOW)
                    .unwrap();
                assert_eq!(upload_all(&store, c), vec![(bob.key(), i as u64 + 1)]);
                assert_eq!(store.ack(&bob.key(), &[i as u64 + 1]).unwrap(), 1);
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        s.spawn(|| {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
                let (entries, _) = store.list(&bob.key(), 0, 64, NOW).unwrap();
                for e in &entries {
                    let c = clips.iter().find(|c| c.id() == e.message_id).unwrap();
                    match store.get_manifest(&e.message_id, NOW) {
                        Ok(m) => assert_eq!(&m, c.manifest()),
                        Err(err) => assert_eq!(err.code(), ErrorCode::NotFound, "{err}"),
                    }
                }
                for c in &clips {
                    match store.get_chunk(&c.manifest().chunk_hashes()[0], 0, 0) {
                        Ok(bytes) => assert_eq!(bytes, c.chunks[0]),
                        Err(err) => assert_eq!(err.code(), ErrorCode::NotFound, "{err}"),
                    }
                }
                reads += 1;
            }
        });
    });
    let s = store.stats().unwrap();
    assert_eq!((s.envelopes, s.messages, s.chunks), (0, 0, 0));
}

#[test]
fn lazy_chunk_commits_still_list_only_complete_clips_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(31);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let c = clip(THREE_CHUNKS, &mut r);
    let env = envelope(&c, &alice, &bob, &mut r);
    {
        let store =
            store_with(dir.path(), StoreLimits::default(), &[&bob]).with_lazy_chunk_commits();
        store
            .deposit(&bob.key(), &env, c.manifest(), DEPOSITOR, NOW)
            .unwrap();
        for (i, chunk) in c.chunks.iter().enumerate().take(c.chunks.len() - 1) {
            assert!(
                store
                    .put_chunk(&c.id(), i as u32, chunk)
                    .unwrap()
                    .is_empty()
            );
            assert!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.is_empty());
        }
        let last = c.chunks.len() - 1;
        let listed = store
            .put_chunk(&c.id(), last as u32, &c.chunks[last])
            .unwrap();
        assert_eq!(listed, [(bob.key(), 1)]);
    }
    // The completing commit was durable, and with it every earlier one.
    let store = open(dir.path(), StoreLimits::default(), 1002);
    let (entries, _) = store.list(&bob.key(), 0, 64, NOW).unwrap();
    assert_eq!(entries.len(), 1);
    for (i, h) in c.manifest().chunk_hashes().iter().enumerate() {
        assert_eq!(store.get_chunk(h, 0, 0).unwrap(), c.chunks[i]);
    }
}

#[test]
fn chunk_files_hold_a_personal_stores_chunks_and_go_with_their_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(32);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let c = clip(THREE_CHUNKS, &mut r);
    let env = envelope(&c, &alice, &bob, &mut r);
    let file = dir.path().join(CHUNK_DIR_NAME).join(hex(&c.id().0));
    let personal = |seed| {
        open(dir.path(), StoreLimits::default(), seed)
            .with_lazy_chunk_commits()
            .with_chunk_files()
    };
    {
        let store = store_with(dir.path(), StoreLimits::default(), &[&bob]);
        drop(store);
        let store = personal(1003);
        store
            .deposit(&bob.key(), &env, c.manifest(), DEPOSITOR, NOW)
            .unwrap();
        // Out of order: chunk i lies at i × CIPHERTEXT_CHUNK_SIZE whatever came first.
        for i in [2u32, 0] {
            store.put_chunk(&c.id(), i, &c.chunks[i as usize]).unwrap();
        }
        let d = store
            .deposit(&bob.key(), &env, c.manifest(), DEPOSITOR, NOW)
            .unwrap();
        assert_eq!(d.missing, [1], "a resumed upload learns what is missing");
        assert_eq!(
            store.put_chunk(&c.id(), 1, &c.chunks[1]).unwrap(),
            [(bob.key(), 1)]
        );
    }
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes.len(), 2 * CIPHERTEXT_CHUNK_SIZE + c.chunks[2].len());
    for (i, chunk) in c.chunks.iter().enumerate() {
        let at = i * CIPHERTEXT_CHUNK_SIZE;
        assert_eq!(&bytes[at..at + chunk.len()], chunk.as_slice());
    }
    let db = std::fs::read(dir.path().join("relay.redb")).unwrap();
    assert!(
        !db.windows(64).any(|w| w == &c.chunks[1][1000..1064]),
        "chunk bytes are in the file, not the database"
    );

    // After a restart (the completing commit synced the file first), a
    // store that no longer writes files still reads them, ranges too.
    let store = open(dir.path(), StoreLimits::default(), 1004);
    assert_eq!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.len(), 1);
    let h = c.manifest().chunk_hashes();
    assert_eq!(store.get_chunk(&h[1], 0, 0).unwrap(), c.chunks[1]);
    assert_eq!(store.get_chunk(&h[2], 10, 20).unwrap(), c.chunks[2][10..30]);
    assert_eq!(
        code(store.get_chunk(&h[2], 0, u32::MAX)),
        ErrorCode::TooLarge
    );
    assert_eq!(
        store
            .deposit(&bob.key(), &env, c.manifest(), DEPOSITOR, NOW)
            .unwrap()
            .missing,
        Vec::<u32>::new(),
        "chunks in files count as stored"
    );

    // Revocation removes the file with the message.
    store.revoke(&c.sealed.revoke(NOW), NOW).unwrap();
    assert!(!file.exists());
    assert_eq!(code(store.get_chunk(&h[0], 0, 0)), ErrorCode::NotFound);
    let s = store.stats().unwrap();
    assert_eq!((s.chunks, s.messages, s.stored_bytes), (0, 0, 0));
}

#[test]
fn chunk_files_of_deleted_messages_are_removed_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(33);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let c = clip(THREE_CHUNKS, &mut r);
    let env = envelope(&c, &alice, &bob, &mut r);
    let chunk_dir = dir.path().join(CHUNK_DIR_NAME);
    {
        let store = store_with(dir.path(), StoreLimits::default(), &[&bob]).with_chunk_files();
        store
            .deposit(&bob.key(), &env, c.manifest(), DEPOSITOR, NOW)
            .unwrap();
        upload_all(&store, &c);
    }
    // A crash between a deletion's commit and the file's removal leaves a
    // file no message names; so does one of a message never recorded.
    let orphan = chunk_dir.join(hex(&[7; 32]));
    std::fs::write(&orphan, b"ciphertext of a deleted clip").unwrap();
    std::fs::write(chunk_dir.join("README"), b"not a chunk file").unwrap();
    let store = open(dir.path(), StoreLimits::default(), 1005);
    assert!(!orphan.exists());
    assert!(chunk_dir.join(hex(&c.id().0)).exists());
    assert!(
        chunk_dir.join("README").exists(),
        "other names are left alone"
    );
    let h = c.manifest().chunk_hashes()[0];
    assert_eq!(store.get_chunk(&h, 0, 0).unwrap(), c.chunks[0]);

    // A file shorter than its rows say is corruption, not a panic.
    std::fs::write(chunk_dir.join(hex(&c.id().0)), b"short").unwrap();
    assert_eq!(code(store.get_chunk(&h, 0, 0)), ErrorCode::Internal);
}

/// A client's personal store: lazy chunk commits and chunk files.
fn personal(dir: &Path, seed: u64, parties: &[&Party]) -> RelayStore {
    let store = open(dir, StoreLimits::default(), seed)
        .with_lazy_chunk_commits()
        .with_chunk_files();
    for p in parties {
        store.record_certificate(p.device.certificate()).unwrap();
    }
    store
}

#[test]
fn a_personal_store_writes_chunk_rows_per_clip_and_loses_none_it_answered() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(34);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let (c, d) = (clip(THREE_CHUNKS, &mut r), clip(THREE_CHUNKS, &mut r));
    let (env_c, env_d) = (
        envelope(&c, &alice, &bob, &mut r),
        envelope(&d, &alice, &bob, &mut r),
    );
    let hc = c.manifest().chunk_hashes();
    {
        let store = personal(dir.path(), 1006, &[&bob]);
        store
            .deposit(&bob.key(), &env_c, c.manifest(), DEPOSITOR, NOW)
            .unwrap();
        for i in 0..2 {
            assert!(
                store
                    .put_chunk(&c.id(), i, &c.chunks[i as usize])
                    .unwrap()
                    .is_empty()
            );
        }
        // Answered, and held: their rows wait, so GetChunk does not serve
        // them yet, but a resumed upload is not asked for them again.
        assert_eq!(store.stats().unwrap().chunks, 0);
        assert_eq!(code(store.get_chunk(&hc[0], 0, 0)), ErrorCode::NotFound);
        let again = store
            .deposit(&bob.key(), &env_c, c.manifest(), DEPOSITOR, NOW)
            .unwrap();
        assert_eq!(again.missing, [2]);
        // A chunk sent twice changes nothing.
        store.put_chunk(&c.id(), 1, &c.chunks[1]).unwrap();
        // The last one writes every row, durably, and lists the clip.
        assert_eq!(
            store.put_chunk(&c.id(), 2, &c.chunks[2]).unwrap(),
            [(bob.key(), 1)]
        );
        assert_eq!(store.stats().unwrap().chunks, 3);
        for (i, h) in hc.iter().enumerate() {
            assert_eq!(store.get_chunk(h, 0, 0).unwrap(), c.chunks[i]);
        }

        // Closing the store writes the rows still waiting.
        store
            .deposit(&bob.key(), &env_d, d.manifest(), DEPOSITOR, NOW)
            .unwrap();
        store.put_chunk(&d.id(), 0, &d.chunks[0]).unwrap();
    }
    let store = personal(dir.path(), 1007, &[&bob]);
    let again = store
        .deposit(&bob.key(), &env_d, d.manifest(), DEPOSITOR, NOW)
        .unwrap();
    assert_eq!(again.missing, [1, 2]);
    let h0 = d.manifest().chunk_hashes()[0];
    assert_eq!(store.get_chunk(&h0, 0, 0).unwrap(), d.chunks[0]);
    assert_eq!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.len(), 1);

    // A revocation while rows wait takes the clip and its file all the same.
    let e = clip(THREE_CHUNKS, &mut r);
    let env_e = envelope(&e, &alice, &bob, &mut r);
    store
        .deposit(&bob.key(), &env_e, e.manifest(), DEPOSITOR, NOW)
        .unwrap();
    store.put_chunk(&e.id(), 0, &e.chunks[0]).unwrap();
    store.revoke(&e.sealed.revoke(NOW), NOW).unwrap();
    assert_eq!(
        code(store.put_chunk(&e.id(), 1, &e.chunks[1])),
        ErrorCode::Revoked
    );
    assert!(
        !dir.path()
            .join(CHUNK_DIR_NAME)
            .join(hex(&e.id().0))
            .exists()
    );
    drop(store);
    let store = personal(dir.path(), 1008, &[&bob]);
    assert_eq!(store.stats().unwrap().messages, 2, "c and d; e is gone");
}

#[test]
fn waiting_chunk_rows_are_bounded_per_upload_and_in_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(35);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let store = personal(dir.path(), 1009, &[&bob]);
    // One upload: at most DEFERRED_ROWS_PER_UPLOAD rows wait.
    let big = clip((DEFERRED_ROWS_PER_UPLOAD + 1) * 256 * 1024 + 1, &mut r);
    let env = envelope(&big, &alice, &bob, &mut r);
    store
        .deposit(&bob.key(), &env, big.manifest(), DEPOSITOR, NOW)
        .unwrap();
    for i in 0..DEFERRED_ROWS_PER_UPLOAD - 1 {
        store
            .put_chunk(&big.id(), i as u32, &big.chunks[i])
            .unwrap();
    }
    assert_eq!(store.stats().unwrap().chunks, 0);
    let i = DEFERRED_ROWS_PER_UPLOAD - 1;
    store
        .put_chunk(&big.id(), i as u32, &big.chunks[i])
        .unwrap();
    assert_eq!(
        store.stats().unwrap().chunks,
        DEFERRED_ROWS_PER_UPLOAD as u64
    );

    // Uploads: starting one more than MAX_DEFERRED_UPLOADS writes out the
    // least recently used (the big one, whose next chunk now waits).
    let i = DEFERRED_ROWS_PER_UPLOAD;
    store
        .put_chunk(&big.id(), i as u32, &big.chunks[i])
        .unwrap();
    let small: Vec<Clip> = (0..MAX_DEFERRED_UPLOADS)
        .map(|_| clip(300 * 1024, &mut r))
        .collect();
    for (n, c) in small.iter().enumerate() {
        let env = envelope(c, &alice, &bob, &mut r);
        store
            .deposit(&bob.key(), &env, c.manifest(), DEPOSITOR, NOW)
            .unwrap();
        store.put_chunk(&c.id(), 0, &c.chunks[0]).unwrap();
        let expect = DEFERRED_ROWS_PER_UPLOAD + usize::from(n + 1 == MAX_DEFERRED_UPLOADS);
        assert_eq!(
            store.stats().unwrap().chunks,
            expect as u64,
            "after {} uploads",
            n + 2
        );
    }
    // The evicted upload goes on as before and completes.
    let d = store
        .deposit(&bob.key(), &env, big.manifest(), DEPOSITOR, NOW)
        .unwrap();
    assert_eq!(d.missing, [DEFERRED_ROWS_PER_UPLOAD as u32 + 1]);
    let last = big.chunks.len() - 1;
    assert_eq!(
        store
            .put_chunk(&big.id(), last as u32, &big.chunks[last])
            .unwrap(),
        [(bob.key(), 1)]
    );
}

#[test]
fn a_personal_store_checks_every_chunk_of_an_upload_under_way_and_stops_at_its_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(36);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let store = personal(dir.path(), 1010, &[&bob]);
    let (c, d) = (clip(THREE_CHUNKS, &mut r), clip(1000, &mut r));
    for x in [&c, &d] {
        let env = envelope(x, &alice, &bob, &mut r);
        store
            .deposit(&bob.key(), &env, x.manifest(), DEPOSITOR, NOW)
            .unwrap();
    }
    // The first chunk starts the upload; later ones are checked against
    // the manifest all the same.
    store.put_chunk(&c.id(), 0, &c.chunks[0]).unwrap();
    assert_eq!(
        code(store.put_chunk(&c.id(), 1, &c.chunks[2])),
        ErrorCode::Conflict
    );
    assert_eq!(
        code(store.put_chunk(&c.id(), 3, &c.chunks[2])),
        ErrorCode::Conflict
    );
    store.put_chunk(&c.id(), 1, &c.chunks[1]).unwrap();
    store.put_chunk(&c.id(), 0, &c.chunks[0]).unwrap();
    // Another clip's deletion does not stop it.
    assert_eq!(upload_all(&store, &d), [(bob.key(), 1)]);
    store.revoke(&d.sealed.revoke(NOW), NOW).unwrap();
    assert_eq!(
        store.put_chunk(&c.id(), 2, &c.chunks[2]).unwrap(),
        [(bob.key(), 2)]
    );
    for (i, h) in c.manifest().chunk_hashes().iter().enumerate() {
        assert_eq!(store.get_chunk(h, 0, 0).unwrap(), c.chunks[i]);
    }
    drop(store);

    // Eight clips uploaded from eight threads, every chunk twice, while
    // the last is revoked: it is refused from then on, and no file of it
    // stays behind once the store is closed.
    let store = personal(dir.path(), 1011, &[&bob]);
    let clips: Vec<Clip> = (0..8).map(|_| clip(THREE_CHUNKS, &mut r)).collect();
    for x in &clips {
        let env = envelope(x, &alice, &bob, &mut r);
        store
            .deposit(&bob.key(), &env, x.manifest(), DEPOSITOR, NOW)
            .unwrap();
    }
    let revoked = clips[7].id();
    // Chunk 0 of every clip, then chunk 1, then chunk 2; twice.
    let work: Vec<(usize, usize)> = (0..2)
        .flat_map(|_| (0..3).flat_map(|i| (0..clips.len()).map(move |c| (c, i))))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let listed = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(&(c, i)) = work.get(n) else { break };
                    match store.put_chunk(&clips[c].id(), i as u32, &clips[c].chunks[i]) {
                        Ok(l) => listed.lock().unwrap().extend(l),
                        Err(e) => {
                            assert_eq!(clips[c].id(), revoked, "{e}");
                            assert_eq!(e.code(), ErrorCode::Revoked, "{e}");
                        }
                    }
                    if n == 7 {
                        // Its first chunk is in; the others may be on their way.
                        store.revoke(&clips[7].sealed.revoke(NOW), NOW).unwrap();
                    }
                }
            });
        }
    });
    // Each clip listed once (the revoked one, if it completed first).
    let mut seqs: Vec<u64> = listed.into_inner().unwrap().iter().map(|l| l.1).collect();
    seqs.sort_unstable();
    assert!(
        seqs == (3..=9).collect::<Vec<u64>>() || seqs == (3..=10).collect::<Vec<u64>>(),
        "{seqs:?}"
    );
    assert_eq!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.len(), 8);
    for x in &clips[..7] {
        for (i, h) in x.manifest().chunk_hashes().iter().enumerate() {
            assert_eq!(store.get_chunk(h, 0, 0).unwrap(), x.chunks[i]);
        }
    }
    assert_eq!(
        code(store.put_chunk(&revoked, 0, &clips[7].chunks[0])),
        ErrorCode::Revoked
    );
    drop(store);
    let chunk_dir = dir.path().join(CHUNK_DIR_NAME);
    assert!(!chunk_dir.join(hex(&revoked.0)).exists());
    assert!(chunk_dir.join(hex(&clips[0].id().0)).exists());
}

/// `clip`'s chunks laid out as a chunk file, as a sender's spool holds them.
fn spool_of(clip: &Clip, path: &Path) {
    std::fs::write(path, clip.chunks.concat()).unwrap();
}

#[test]
fn a_held_clip_takes_its_senders_spool_as_its_chunk_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(41);
    let alice = Party::new(&mut r);
    let c = clip(THREE_CHUNKS, &mut r);
    let spool = dir.path().join("spool");
    spool_of(&c, &spool);
    // A store without chunk files leaves the file where it is.
    {
        let relay = store_with(&dir.path().join("relay"), StoreLimits::default(), &[&alice]);
        assert!(!relay.hold_file(c.manifest(), NOW, &spool).unwrap());
        assert!(spool.exists());
    }
    let home = dir.path().join("home");
    let store = personal(&home, 1012, &[&alice]);
    let short = dir.path().join("short");
    std::fs::write(&short, &c.chunks[0]).unwrap();
    assert_eq!(
        code(store.hold_file(c.manifest(), NOW, &short)),
        ErrorCode::Malformed
    );
    assert!(short.exists());

    assert!(store.hold_file(c.manifest(), NOW, &spool).unwrap());
    assert!(!spool.exists(), "moved, not copied");
    let file = home.join(CHUNK_DIR_NAME).join(hex(&c.id().0));
    assert_eq!(std::fs::read(&file).unwrap(), c.chunks.concat());
    let h = c.manifest().chunk_hashes();
    for (i, hash) in h.iter().enumerate() {
        assert_eq!(store.get_chunk(hash, 0, 0).unwrap(), c.chunks[i]);
    }
    assert_eq!(store.hold(c.manifest(), NOW).unwrap(), Vec::<u32>::new());
    assert_eq!(store.list(&alice.key(), 0, 64, NOW).unwrap().0, vec![]);
    // Held already: another copy is left where it is.
    spool_of(&c, &spool);
    assert!(!store.hold_file(c.manifest(), NOW, &spool).unwrap());
    assert!(spool.exists());

    // It survives a restart, and goes at revocation.
    drop(store);
    let store = personal(&home, 1013, &[&alice]);
    assert_eq!(store.get_chunk(&h[2], 0, 0).unwrap(), c.chunks[2]);
    store.revoke(&c.sealed.revoke(NOW), NOW).unwrap();
    assert!(!file.exists());
    assert_eq!(code(store.get_chunk(&h[0], 0, 0)), ErrorCode::NotFound);
    let s = store.stats().unwrap();
    assert_eq!((s.chunks, s.messages, s.stored_bytes), (0, 0, 0));
    assert_eq!(
        code(store.hold_file(c.manifest(), NOW, &spool)),
        ErrorCode::Revoked
    );
    assert!(spool.exists());
    assert!(!file.exists());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn concurrent_uploads_share_transactions_and_list_each_clip_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(40);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let store = store_with(dir.path(), StoreLimits::default(), &[&bob]);
    // Eight clips of three chunks; the last is revoked after its first chunk.
    let clips: Vec<Clip> = (0..8).map(|_| clip(THREE_CHUNKS, &mut r)).collect();
    for c in &clips {
        let env = envelope(c, &alice, &bob, &mut r);
        store
            .deposit(&bob.key(), &env, c.manifest(), DEPOSITOR, NOW)
            .unwrap();
    }
    let revoked = clips[7].id();
    store.put_chunk(&revoked, 0, &clips[7].chunks[0]).unwrap();
    store.revoke(&clips[7].sealed.revoke(NOW), NOW).unwrap();
    // Every chunk twice, from eight threads at once.
    let work: Vec<(usize, usize)> = (0..2)
        .flat_map(|_| (0..clips.len()).flat_map(|c| (0..3).map(move |i| (c, i))))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let listed = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(&(c, i)) = work.get(n) else { break };
                    match store.put_chunk(&clips[c].id(), i as u32, &clips[c].chunks[i]) {
                        Ok(l) => listed.lock().unwrap().extend(l),
                        Err(e) => {
                            assert_eq!(clips[c].id(), revoked, "{e}");
                            assert_eq!(e.code(), ErrorCode::Revoked, "{e}");
                        }
                    }
                }
            });
        }
    });
    let mut seqs: Vec<u64> = listed
        .into_inner()
        .unwrap()
        .iter()
        .map(|(_, s)| *s)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=7).collect::<Vec<u64>>(), "each clip listed once");
    let (entries, _) = store.list(&bob.key(), 0, 64, NOW).unwrap();
    assert_eq!(entries.len(), 7);
    for c in &clips[..7] {
        for (i, h) in c.manifest().chunk_hashes().iter().enumerate() {
            assert_eq!(store.get_chunk(h, 0, 0).unwrap(), c.chunks[i]);
        }
    }
    let s = store.stats().unwrap();
    assert_eq!((s.messages, s.chunks), (7, 21));
}

#[test]
fn a_held_clip_serves_its_chunks_is_never_listed_and_goes_at_revocation_or_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(40);
    let alice = Party::new(&mut r);
    let store = store_with(dir.path(), StoreLimits::default(), &[&alice]);
    let (kept, revoked) = (clip(THREE_CHUNKS, &mut r), clip(1000, &mut r));
    for c in [&kept, &revoked] {
        assert_eq!(
            store.hold(c.manifest(), NOW).unwrap(),
            vec![0, 1, 2][..c.chunks.len()]
        );
        assert_eq!(upload_all(&store, c), vec![]);
        // Holding it again: nothing missing, nothing changed.
        assert_eq!(store.hold(c.manifest(), NOW).unwrap(), Vec::<u32>::new());
        for (i, h) in c.manifest().chunk_hashes().iter().enumerate() {
            assert_eq!(store.get_chunk(h, 0, 0).unwrap(), c.chunks[i]);
        }
    }
    assert_eq!(store.list(&alice.key(), 0, 64, NOW).unwrap().0, vec![]);
    // Another manifest under a held id is a conflict.
    let mut other = kept.manifest().to_bytes();
    *other.last_mut().unwrap() ^= 1;
    let other = Manifest::decode(&other).unwrap();
    assert_eq!(other.message_id(), kept.id());
    assert_eq!(code(store.hold(&other, NOW)), ErrorCode::Conflict);

    store.revoke(&revoked.sealed.revoke(NOW), NOW).unwrap();
    let h = revoked.manifest().chunk_hashes()[0];
    assert_eq!(code(store.get_chunk(&h, 0, 0)), ErrorCode::NotFound);
    assert_eq!(
        code(store.hold(revoked.manifest(), NOW)),
        ErrorCode::Revoked
    );

    let expires = kept.manifest().expires_at();
    assert_eq!(
        code(store.hold(kept.manifest(), expires)),
        ErrorCode::Expired
    );
    store.collect(expires).unwrap();
    let h = kept.manifest().chunk_hashes()[0];
    assert_eq!(code(store.get_chunk(&h, 0, 0)), ErrorCode::NotFound);
}

/// The default deadline of a pending deposit, in milliseconds.
fn pending_ttl() -> u64 {
    StoreLimits::default().pending_ttl_secs * 1000
}

#[test]
fn an_abandoned_upload_is_collected_and_gives_back_its_quota() {
    // Once sealed in redb, once as uploaded in a chunk file (which the scan
    // below can see).
    for chunk_files in [false, true] {
        abandoned_upload_is_collected(chunk_files);
    }
}

fn abandoned_upload_is_collected(chunk_files: bool) {
    let mut r = rng(41);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let (a, b) = (clip(THREE_CHUNKS, &mut r), clip(THREE_CHUNKS, &mut r));
    let one = a.manifest().ciphertext_len();
    let reserve = one + a.manifest().to_bytes().len() as u64;
    let a_env = envelope(&a, &alice, &bob, &mut r);
    let b_env = envelope(&b, &alice, &bob, &mut r);
    // Each quota alone has room for one of the two clips.
    for limits in [
        StoreLimits {
            mailbox_bytes: one + one / 2,
            ..StoreLimits::default()
        },
        StoreLimits {
            depositor_bytes: one + one / 2,
            ..StoreLimits::default()
        },
        StoreLimits {
            total_bytes: reserve + reserve / 2,
            ..StoreLimits::default()
        },
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let mut store = store_with(path, limits.clone(), &[&bob]);
        if chunk_files {
            store = store.with_chunk_files();
        }
        store
            .deposit(&bob.key(), &a_env, a.manifest(), DEPOSITOR, NOW)
            .unwrap();
        // Two of three chunks arrive, then the sender goes away.
        for i in [0u32, 1] {
            store.put_chunk(&a.id(), i, &a.chunks[i as usize]).unwrap();
        }
        let s = store.stats().unwrap();
        assert_eq!((s.envelopes, s.chunks, s.messages), (1, 2, 1));
        let uploaded = (a.chunks[0].len() + a.chunks[1].len()) as u64;
        assert!(s.stored_bytes >= uploaded && s.reserved_bytes == reserve);
        // The partial upload holds its whole clip's quota.
        assert_eq!(
            code(store.deposit(&bob.key(), &b_env, b.manifest(), DEPOSITOR, NOW)),
            ErrorCode::QuotaExceeded
        );
        let key = data_key(path, &a.id()).expect("a key slot");
        if chunk_files {
            assert!(!found_in(path, &a.chunks[0][..64]).is_empty());
        }

        // A resumed upload learns what is missing; its deadline stays.
        let deadline = NOW.plus(pending_ttl());
        let d = store
            .deposit(
                &bob.key(),
                &a_env,
                a.manifest(),
                DEPOSITOR,
                UnixMillis(deadline.0 - 1000),
            )
            .unwrap();
        assert_eq!(d.missing, [2]);
        assert_eq!(
            store.collect(UnixMillis(deadline.0 - 1)).unwrap(),
            Default::default()
        );
        let c = store.collect(deadline).unwrap();
        assert_eq!(
            (c.messages, c.envelopes, c.abandoned, c.more),
            (1, 1, 1, false)
        );

        // Everything of it is gone, as at expiry: rows, key, chunk file.
        let s = store.stats().unwrap();
        assert_eq!(
            (
                s.envelopes,
                s.chunks,
                s.messages,
                s.stored_bytes,
                s.reserved_bytes
            ),
            (0, 0, 0, 0, 0)
        );
        assert_eq!(data_key(path, &a.id()), None);
        assert!(found_in(path, &key).is_empty(), "the data key is erased");
        for chunk in &a.chunks[..2] {
            assert!(found_in(path, &chunk[..64]).is_empty(), "chunk bytes");
        }
        assert!(!path.join(CHUNK_DIR_NAME).join(hex(&a.id().0)).exists());
        let h = a.manifest().chunk_hashes()[0];
        assert_eq!(code(store.get_chunk(&h, 0, 0)), ErrorCode::NotFound);
        assert_eq!(code(store.get_manifest(&a.id(), NOW)), ErrorCode::NotFound);
        assert_eq!(
            code(store.put_chunk(&a.id(), 2, &a.chunks[2])),
            ErrorCode::NotFound
        );

        // Its quota is free again, and it stays so across a restart.
        drop(store);
        let store = open(path, limits, 1001);
        let later = deadline.plus(1);
        let d = store
            .deposit(&bob.key(), &b_env, b.manifest(), DEPOSITOR, later)
            .unwrap();
        assert_eq!(d.missing, [0, 1, 2]);
        assert_eq!(upload_all(&store, &b), [(bob.key(), 1)]);
        assert!(found_in(path, &key).is_empty());
        // The same deposit again is a new one, with a new deadline.
        store.ack(&bob.key(), &[1]).unwrap();
        let d = store
            .deposit(&bob.key(), &a_env, a.manifest(), DEPOSITOR, later)
            .unwrap();
        assert_eq!(d.missing, [0, 1, 2]);
        assert_eq!(store.collect(deadline).unwrap(), Default::default());
        assert_eq!(
            store.collect(later.plus(pending_ttl())).unwrap().abandoned,
            1
        );
    }
}

#[test]
fn complete_uploads_and_clips_other_envelopes_need_outlive_the_pending_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rng(42);
    let (alice, bob, carol) = (Party::new(&mut r), Party::new(&mut r), Party::new(&mut r));
    let limits = StoreLimits {
        pending_ttl_secs: 3600,
        collect_batch: 2,
        ..StoreLimits::default()
    };
    let ttl = 3_600_000;
    let store = store_with(dir.path(), limits, &[&bob, &carol]);

    // Complete within the hour: not affected, then or later.
    let done = clip(THREE_CHUNKS, &mut r);
    store
        .deposit(
            &bob.key(),
            &envelope(&done, &alice, &bob, &mut r),
            done.manifest(),
            DEPOSITOR,
            NOW,
        )
        .unwrap();
    store.put_chunk(&done.id(), 0, &done.chunks[0]).unwrap();
    store.put_chunk(&done.id(), 1, &done.chunks[1]).unwrap();
    assert_eq!(
        store.put_chunk(&done.id(), 2, &done.chunks[2]).unwrap(),
        [(bob.key(), 1)]
    );

    // One clip for bob and carol, carol's envelope deposited half an hour
    // later; one chunk uploaded.
    let shared = clip(THREE_CHUNKS, &mut r);
    let to_carol = envelope(&shared, &alice, &carol, &mut r);
    store
        .deposit(
            &bob.key(),
            &envelope(&shared, &alice, &bob, &mut r),
            shared.manifest(),
            DEPOSITOR,
            NOW,
        )
        .unwrap();
    store.put_chunk(&shared.id(), 0, &shared.chunks[0]).unwrap();
    let half = NOW.plus(ttl / 2);
    store
        .deposit(&carol.key(), &to_carol, shared.manifest(), b"peer-b", half)
        .unwrap();

    let c = store.collect(NOW.plus(ttl)).unwrap();
    assert_eq!(
        (c.messages, c.envelopes, c.abandoned, c.more),
        (0, 1, 1, false)
    );
    // Bob's envelope went; the clip stays, with its chunk, for carol.
    let s = store.stats().unwrap();
    assert_eq!((s.envelopes, s.chunks, s.messages), (2, 4, 2));
    let h = shared.manifest().chunk_hashes()[0];
    assert_eq!(store.get_chunk(&h, 0, 0).unwrap(), shared.chunks[0]);
    let d = store
        .deposit(
            &carol.key(),
            &to_carol,
            shared.manifest(),
            b"peer-b",
            NOW.plus(ttl),
        )
        .unwrap();
    assert_eq!(d.missing, [1, 2]);
    store.put_chunk(&shared.id(), 1, &shared.chunks[1]).unwrap();
    assert_eq!(
        store.put_chunk(&shared.id(), 2, &shared.chunks[2]).unwrap(),
        [(carol.key(), 1)],
        "only carol's envelope is listed"
    );
    assert_eq!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.len(), 1);

    // Complete envelopes stay until their clips expire.
    assert_eq!(
        store.collect(half.plus(10 * ttl)).unwrap(),
        Default::default()
    );
    assert_eq!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.len(), 1);
    assert_eq!(store.list(&carol.key(), 0, 64, NOW).unwrap().0.len(), 1);

    // The collector takes at most `collect_batch` abandoned envelopes a call.
    let pending: Vec<Clip> = (0..3).map(|_| clip(1000, &mut r)).collect();
    for p in &pending {
        store
            .deposit(
                &bob.key(),
                &envelope(p, &alice, &bob, &mut r),
                p.manifest(),
                DEPOSITOR,
                NOW,
            )
            .unwrap();
    }
    let c = store.collect(NOW.plus(ttl)).unwrap();
    assert_eq!((c.messages, c.abandoned, c.more), (2, 2, true));
    let c = store.collect(NOW.plus(ttl)).unwrap();
    assert_eq!((c.messages, c.abandoned, c.more), (1, 1, false));
    let s = store.stats().unwrap();
    assert_eq!((s.envelopes, s.messages), (2, 2));
}

#[test]
fn pending_deposits_of_a_database_from_before_the_deadline_are_collected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let mut r = rng(43);
    let (alice, bob) = (Party::new(&mut r), Party::new(&mut r));
    let (done, pending) = (clip(1000, &mut r), clip(THREE_CHUNKS, &mut r));
    {
        let store = store_with(path, StoreLimits::default(), &[&bob]);
        for c in [&done, &pending] {
            store
                .deposit(
                    &bob.key(),
                    &envelope(c, &alice, &bob, &mut r),
                    c.manifest(),
                    DEPOSITOR,
                    NOW,
                )
                .unwrap();
        }
        upload_all(&store, &done);
        store
            .put_chunk(&pending.id(), 0, &pending.chunks[0])
            .unwrap();
    }
    // As an older store left it: no table of pending deposits.
    {
        let db = redb::Database::open(path.join(DB_FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        let gone = txn
            .delete_table(redb::TableDefinition::<(u64, &[u8; 32], &[u8; 32]), ()>::new("pending"))
            .unwrap();
        assert!(gone, "the table is named as RELAY.md §7 says");
        txn.commit().unwrap();
    }
    let store = open(path, StoreLimits::default(), 1001);
    let c = store.collect(NOW.plus(pending_ttl())).unwrap();
    assert_eq!((c.messages, c.abandoned), (1, 1));
    assert_eq!(data_key(path, &pending.id()), None);
    let s = store.stats().unwrap();
    assert_eq!((s.envelopes, s.messages, s.chunks), (1, 1, 1));
    assert_eq!(store.list(&bob.key(), 0, 64, NOW).unwrap().0.len(), 1);
}
