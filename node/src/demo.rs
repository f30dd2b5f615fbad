//! `mayfly demo`, local edition: the whole clip life cycle in one process —
//! identities, a prekey bundle, sealing, an envelope, streaming open, then
//! revocation and key erasure — printing each step with its timing.
//!
//! The networked demo (relay plus three clients) replaces this once the relay
//! and client land.

use std::io::Write;
use std::time::Instant;

use mayfly_protocol::codec::Codec;
use mayfly_protocol::*;

/// Options of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Size of the synthetic clip in bytes.
    pub clip_bytes: usize,
    /// Seed for reproducible keys, or `None` for the OS RNG.
    pub seed: Option<u64>,
    /// `now`, in Unix milliseconds.
    pub now: UnixMillis,
}

/// What the demo established, for tests and the summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoReport {
    /// The clip's message id.
    pub message_id: MessageId,
    /// Chunks the clip was sealed into.
    pub chunks: u32,
    /// Bytes of ciphertext a relay would store.
    pub ciphertext_bytes: u64,
    /// Whether bob's opened plaintext equalled alice's content.
    pub opened_intact: bool,
    /// Whether opening after revocation and erasure failed.
    pub unopenable_after_revocation: bool,
}

/// Runs the demo, writing a step-by-step account to `out`.
pub fn run(opts: &DemoOptions, out: &mut dyn Write) -> anyhow::Result<DemoReport> {
    let mut rng = crate::rng::node_rng(opts.seed)?;
    let now = opts.now;
    let mut step = Step::new(out);

    let alice = Identity::generate(&mut rng);
    let alice_dev = alice.new_device(1, now, &mut rng);
    let bob = Identity::generate(&mut rng);
    let bob_dev = bob.new_device(1, now, &mut rng);
    let mut bob_keys = PrekeyStore::new(&bob_dev, now, &mut rng);
    let otks = bob_keys.issue_one_time(&bob_dev, 10, now, &mut rng);
    let bob_card = ContactCard::new(
        &bob,
        &bob_dev,
        bob_keys.signed_prekey().clone(),
        vec![],
        "bob".into(),
    )?;
    step.done(&format!(
        "identities: alice and bob, each with a certified device; bob has a signed prekey and {} one-time prekeys; bob's card is {} characters",
        otks.len(),
        bob_card.to_text().len()
    ))?;
    step.done(&format!(
        "safety number alice <-> bob: {}",
        safety_number(&alice.public(), &bob.public())
    ))?;

    let bundle = PrekeyBundle {
        certificate: bob_dev.certificate().clone(),
        signed_prekey: bob_keys.signed_prekey().clone(),
        one_time_prekey: otks.first().cloned(),
    };
    let bundle = PrekeyBundle::decode(&bundle.to_bytes())?;
    let to_bob = bundle.verify(&bob.public(), now)?;
    step.done("alice fetched and verified bob's prekey bundle (one-time prekey)")?;

    let content: Vec<u8> = (0..opts.clip_bytes).map(|i| (i * 31 % 251) as u8).collect();
    let header = ClipHeader {
        kind: ClipKind::Clip,
        allow_save: false,
        duration_ms: 30_000,
        created_at: now,
        expires_at: now.plus(DEFAULT_CLIP_TTL_MS),
        content_len: content.len() as u64,
        parent: None,
        media_type: "video/mp4".into(),
    };
    let mut stored = Vec::new();
    let sealed = seal_reader(
        header,
        &mut content.as_slice(),
        |_, c| {
            stored.push(c.to_vec());
            Ok(())
        },
        &mut rng,
    )?;
    let m = sealed.manifest();
    step.done(&format!(
        "sealed a {} byte clip: message {}, {} chunks, padded to {} bytes, {} ciphertext bytes",
        content.len(),
        short(&sealed.message_id()),
        m.chunk_count(),
        m.padded_len(),
        m.ciphertext_len()
    ))?;

    let envelope = Envelope::seal(&sealed, &alice_dev, &to_bob, &mut rng)?.to_bytes();
    let manifest_bytes = m.to_bytes();
    step.done(&format!(
        "wrapped the content key for bob: envelope {} bytes, manifest {} bytes",
        envelope.len(),
        manifest_bytes.len()
    ))?;

    // Bob: unwrap (the one-time prekey secret leaves his store), then stream-open.
    let env = Envelope::decode(&envelope)?;
    let secret = bob_keys
        .take_secret(&env.prekey())
        .ok_or_else(|| anyhow::anyhow!("bob has no secret for that prekey"))?;
    let contents = env.open(&bob.public(), &secret)?;
    anyhow::ensure!(
        contents.sender.identity_key() == alice.public(),
        "sender is not alice"
    );
    let mut opener = contents.open_manifest(Manifest::decode(&manifest_bytes)?, now)?;
    let mut plain = Vec::with_capacity(content.len());
    let mut first_byte = None;
    let t0 = Instant::now();
    for c in &stored {
        plain.extend_from_slice(opener.open_next(c)?);
        first_byte.get_or_insert(t0.elapsed());
    }
    opener.finish()?;
    let opened_intact = plain == content;
    step.done(&format!(
        "bob opened it as a stream: sender verified as alice, first plaintext after {:.2} ms, {} bytes, intact: {}",
        first_byte.unwrap_or_default().as_secs_f64() * 1e3,
        plain.len(),
        opened_intact
    ))?;

    // Alice revokes; bob applies the record and erases the key and the prekey secret.
    let record = RevocationRecord::decode(&sealed.revoke(now.plus(1_000)).to_bytes())?;
    let mut ledger = RevocationLedger::default();
    let first = ledger.apply(&record, now.plus(1_000))?;
    let replay = ledger.apply(&record, now.plus(2_000))?;
    step.done(&format!(
        "alice revoked it: record verified against the manifest's revocation key; first apply: {first:?}, replay: {replay:?}"
    ))?;
    drop(contents);
    drop(secret);
    let gone = bob_keys.take_secret(&env.prekey()).is_none();
    let reopen = Envelope::decode(&envelope)?.open(&bob.public(), &DhSecret::from_bytes([0; 32]));
    let unopenable_after_revocation = gone && reopen.is_err();
    step.done(&format!(
        "bob erased the content key and the one-time prekey secret; the stored envelope and {} ciphertext chunks no longer open: {}",
        stored.len(),
        unopenable_after_revocation
    ))?;

    Ok(DemoReport {
        message_id: sealed.message_id(),
        chunks: m.chunk_count(),
        ciphertext_bytes: m.ciphertext_len(),
        opened_intact,
        unopenable_after_revocation,
    })
}

fn short(id: &MessageId) -> String {
    id.to_hex()[..16].to_owned()
}

struct Step<'a> {
    out: &'a mut dyn Write,
    n: usize,
    last: Instant,
}

impl<'a> Step<'a> {
    fn new(out: &'a mut dyn Write) -> Self {
        Self {
            out,
            n: 0,
            last: Instant::now(),
        }
    }

    fn done(&mut self, what: &str) -> std::io::Result<()> {
        self.n += 1;
        let ms = self.last.elapsed().as_secs_f64() * 1e3;
        writeln!(self.out, "[{}] {what} ({ms:.1} ms)", self.n)?;
        self.last = Instant::now();
        Ok(())
    }
}
