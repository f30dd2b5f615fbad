//! A second reading of the vectors, written from `spec/SPEC.md` with the
//! primitives alone (X25519, Ed25519 arithmetic, Noise, BLAKE3,
//! ChaCha20-Poly1305) and without `mayfly-protocol`'s decoders.
//!
//! The reference implementation stops at the first check that fails. This
//! reader instead runs every check it still can after a failure and returns
//! the set of rules that fail, in the names that vectors use (SPEC.md §16).
//! A negative vector is isolated when that set is exactly its one `rule`.
//!
//! It keeps going wherever the bytes still allow it: a bad key is reported
//! and the signature is still checked with the point as decoded; a length
//! above its limit is reported and that many bytes are still read; a header
//! that breaks a rule is reported and the clip is still opened; a chunk that
//! fails its hash is still decrypted. It stops only where a later check needs
//! something the failed step would have produced: no prekey secret, no Noise
//! plaintext, a manifest too short to read, an undecryptable header.

#![allow(dead_code)]

use std::collections::BTreeSet;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use serde_json::Value;

/// The rules a vector breaks.
pub type Faults = BTreeSet<String>;

const CHUNK: usize = 262_144;
const SKEW: u64 = 600_000;
const DAY: u64 = 86_400_000;

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn a32(b: &[u8]) -> [u8; 32] {
    b.try_into().expect("32 bytes")
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b.try_into().expect("8 bytes"))
}

fn add(f: &mut Faults, rule: &str) {
    f.insert(rule.to_owned());
}

/// A cursor that reports truncation once and then yields nothing.
pub struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self { b, pos: 0 }
    }
    /// The next `n` bytes; if there are fewer, none, and the input is used up.
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let Some(out) = self.b.get(self.pos..self.pos.saturating_add(n)) else {
            self.pos = self.b.len();
            return None;
        };
        self.pos += n;
        Some(out)
    }
    fn rest(&self) -> usize {
        self.b.len() - self.pos
    }
}

// --- §3.2 -------------------------------------------------------------------

/// The §3.2 checks of an Ed25519 public key, and the point it decodes to.
pub fn ed_key(a: &[u8; 32], f: &mut Faults) -> Option<EdwardsPoint> {
    let Some(p) = CompressedEdwardsY(*a).decompress() else {
        add(f, "§3.2 Ed25519 check 1");
        return None;
    };
    if p.compress().to_bytes() != *a {
        add(f, "§3.2 Ed25519 check 2");
    }
    if p.is_small_order() {
        add(f, "§3.2 Ed25519 check 3");
    }
    Some(p)
}

/// The §3.2 checks of an X25519 public key.
pub fn x_key(u: &[u8; 32], f: &mut Faults) {
    if u[31] & 0x80 != 0 {
        add(f, "§3.2 X25519 check 1 (bit 255)");
    }
    let mut low = *u;
    low[31] &= 0x7f;
    if low[31] == 0x7f && low[1..31].iter().all(|&b| b == 0xff) && low[0] >= 0xed {
        add(f, "§3.2 X25519 check 1 (u < p)");
    }
    if x25519_dalek::x25519([0x42; 32], *u) == [0; 32] {
        add(f, "§3.2 X25519 check 2");
    }
}

fn below_l(s: &[u8; 32]) -> bool {
    bool::from(Scalar::from_canonical_bytes(*s).is_some())
}

fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    use sha2::Digest;
    let mut h = sha2::Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Strict verification (§3.2) of `sig` by the key `a` over
/// `context || 0x00 || msg`. The key's own checks are the caller's; this
/// checks S < L, R, and the equation, which it reports as `equation`.
pub fn verify(a: &[u8; 32], context: &str, msg: &[u8], sig: &[u8], equation: &str, f: &mut Faults) {
    let Some(point) = CompressedEdwardsY(*a).decompress() else {
        return; // no point to verify with; the key check reports it
    };
    let r = a32(&sig[..32]);
    let s = a32(&sig[32..]);
    if !below_l(&s) {
        add(f, "§3.2 strict verification: S < L");
    }
    match CompressedEdwardsY(r).decompress() {
        None => {
            add(f, "§3.2 strict verification: R decodes");
            return;
        }
        Some(rp) if rp.is_small_order() => add(f, "§3.2 strict verification: R not of small order"),
        Some(_) => {}
    }
    let mut m = context.as_bytes().to_vec();
    m.push(0);
    m.extend_from_slice(msg);
    let k = Scalar::from_bytes_mod_order_wide(&sha512(&[&r, a, &m]));
    let s = Scalar::from_bytes_mod_order(s);
    let lhs = EdwardsPoint::vartime_double_scalar_mul_basepoint(&(-k), &point, &s);
    if lhs.compress().to_bytes() != r {
        add(f, equation);
    }
}

// --- Structures ---------------------------------------------------------------

fn type_version(c: &mut Cur<'_>, ty: u8, f: &mut Faults) -> bool {
    let Some(tv) = c.take(2) else {
        add(f, "§3.1 truncation");
        return false;
    };
    if tv[0] != ty {
        add(f, "§3.1 type");
    }
    if tv[1] != 1 {
        add(f, "§3.1 version");
    }
    true
}

fn finish(c: &Cur<'_>, f: &mut Faults) {
    if c.rest() > 0 {
        add(f, "§3.1 trailing bytes");
    }
}

fn string(bytes: &[u8], f: &mut Faults) {
    match core::str::from_utf8(bytes) {
        Err(_) => add(f, "§3.1 string: UTF-8"),
        Ok(s) => {
            if s.chars().any(|c| c.is_control()) {
                add(f, "§3.1 string: control character")
            }
        }
    }
}

/// A device certificate (§3.3); returns the device key if it decodes to a point.
pub fn certificate(c: &mut Cur<'_>, f: &mut Faults) -> Option<[u8; 32]> {
    let start = c.pos;
    if !type_version(c, 0x01, f) {
        return None;
    }
    let Some(body) = c.take(80) else {
        add(f, "§3.1 truncation");
        return None;
    };
    let identity = a32(&body[..32]);
    let device = a32(&body[32..64]);
    ed_key(&identity, f);
    let device_ok = ed_key(&device, f).is_some();
    let Some(sig) = c.take(64) else {
        add(f, "§3.1 truncation");
        return None;
    };
    verify(
        &identity,
        "mayfly/v1/device-certificate",
        &c.b[start..start + 82],
        sig,
        "§3.3 signature",
        f,
    );
    device_ok.then_some(device)
}

/// A prekey (§3.4): returns (kind, public, created_at, signed bytes, signature).
pub struct PrekeyFields {
    kind: u8,
    public: [u8; 32],
    created_at: u64,
    signed: Vec<u8>,
    signature: Vec<u8>,
}

fn prekey(c: &mut Cur<'_>, f: &mut Faults) -> Option<PrekeyFields> {
    let start = c.pos;
    if !type_version(c, 0x02, f) {
        return None;
    }
    let Some(body) = c.take(41 + 64) else {
        add(f, "§3.1 truncation");
        return None;
    };
    let kind = body[0];
    if kind != 1 && kind != 2 {
        add(f, "§3.4 kind");
    }
    let public = a32(&body[1..33]);
    x_key(&public, f);
    Some(PrekeyFields {
        kind,
        public,
        created_at: be64(&body[33..41]),
        signed: c.b[start..start + 43].to_vec(),
        signature: body[41..].to_vec(),
    })
}

fn prekey_signature(p: &PrekeyFields, device: &[u8; 32], rule: &str, f: &mut Faults) {
    verify(device, "mayfly/v1/prekey", &p.signed, &p.signature, rule, f);
}

struct Bundle {
    device: Option<[u8; 32]>,
    identity: [u8; 32],
    signed: Option<PrekeyFields>,
    one_time: Option<PrekeyFields>,
}

fn bundle(bytes: &[u8], f: &mut Faults) -> Option<Bundle> {
    let mut c = Cur::new(bytes);
    if !type_version(&mut c, 0x03, f) {
        return None;
    }
    let identity = a32(bytes.get(4..36)?);
    let device = certificate(&mut c, f);
    let signed = prekey(&mut c, f);
    let one_time = match c.take(1) {
        None => {
            add(f, "§3.1 truncation");
            None
        }
        Some([0]) => None,
        Some([1]) => prekey(&mut c, f),
        Some(_) => {
            // Whether a prekey follows is unknown, so nothing after is read.
            add(f, "§3.1 boolean");
            return Some(Bundle {
                device,
                identity,
                signed,
                one_time: None,
            });
        }
    };
    finish(&c, f);
    Some(Bundle {
        device,
        identity,
        signed,
        one_time,
    })
}

/// A contact card (§3.6).
fn card(c: &mut Cur<'_>, f: &mut Faults) {
    let start = c.pos;
    if !type_version(c, 0x04, f) {
        return;
    }
    let identity = c.b.get(c.pos + 2..c.pos + 34).map(a32);
    let device = certificate(c, f);
    let spk = prekey(c, f);
    if let Some(p) = &spk
        && p.kind != 1
    {
        add(f, "§3.6 step 1");
    }
    if !addresses(c, f, "§3.6 relay_count", "§3.6 relays") {
        return;
    }
    let Some(&[len]) = c.take(1) else {
        add(f, "§3.1 truncation");
        return;
    };
    if usize::from(len) > 64 {
        add(f, "§3.6 display_name");
    }
    let Some(name) = c.take(usize::from(len)) else {
        add(f, "§3.1 truncation");
        return;
    };
    string(name, f);
    let end = c.pos;
    let Some(sig) = c.take(64) else {
        add(f, "§3.1 truncation");
        return;
    };
    if let Some(identity) = identity {
        verify(
            &identity,
            "mayfly/v1/contact-card",
            &c.b[start..end],
            sig,
            "§3.6 step 2",
            f,
        );
    }
    if let (Some(p), Some(d)) = (&spk, device) {
        prekey_signature(p, &d, "§3.6 step 3", f);
    }
}

/// Manifest fields, as far as they could be read.
struct ManifestFields {
    id: [u8; 32],
    expires_at: u64,
    padded_len: u64,
    commitment: [u8; 32],
    sealed_header: Vec<u8>,
    hashes: Vec<[u8; 32]>,
    /// The encoding, without any trailing bytes.
    encoding: Vec<u8>,
}

fn is_padme(p: u64) -> bool {
    if p < 65_536 {
        return false;
    }
    let e = 63 - u64::from(p.leading_zeros());
    let s = 64 - u64::from(e.leading_zeros());
    let mask = (1u64 << (e - s)) - 1;
    p & mask == 0
}

fn padded_len(l: u64) -> u64 {
    if l < 2 {
        return l.max(65_536);
    }
    let e = 63 - u64::from(l.leading_zeros());
    let s = 64 - u64::from(e.leading_zeros());
    let mask = (1u64 << (e - s)) - 1;
    ((l + mask) & !mask).max(65_536)
}

fn manifest(bytes: &[u8], f: &mut Faults) -> Option<ManifestFields> {
    let mut c = Cur::new(bytes);
    if !type_version(&mut c, 0x05, f) {
        return None;
    }
    let Some(fixed) = c.take(256) else {
        add(f, "§3.1 truncation");
        return None;
    };
    let id = a32(&fixed[..32]);
    let rk = a32(&fixed[32..64]);
    ed_key(&rk, f);
    if blake3::derive_key("mayfly 2026-11 v1 message id", &rk) != id {
        add(f, "§3.8 message_id");
    }
    let padded_len = be64(&fixed[72..80]);
    if padded_len > 1 << 30 || !is_padme(padded_len) {
        add(f, "§3.8 padded_len");
    }
    if padded_len > 1 << 32 {
        return None; // too many hashes to read
    }
    let n = padded_len.div_ceil(CHUNK as u64) as usize;
    let mut hashes = Vec::new();
    for _ in 0..n {
        let Some(h) = c.take(32) else {
            add(f, "§3.1 truncation");
            return None;
        };
        hashes.push(a32(h));
    }
    finish(&c, f);
    Some(ManifestFields {
        id,
        expires_at: be64(&fixed[64..72]),
        padded_len,
        commitment: a32(&fixed[80..112]),
        sealed_header: fixed[112..256].to_vec(),
        hashes,
        encoding: bytes[..c.pos].to_vec(),
    })
}

fn envelope(bytes: &[u8], f: &mut Faults) -> Option<([u8; 32], Vec<u8>)> {
    let mut c = Cur::new(bytes);
    if !type_version(&mut c, 0x06, f) {
        return None;
    }
    let Some(body) = c.take(32 + 354) else {
        add(f, "§3.1 truncation");
        return None;
    };
    let prekey = a32(&body[..32]);
    x_key(&prekey, f);
    x_key(&a32(&body[32..64]), f);
    finish(&c, f);
    Some((prekey, body[32..].to_vec()))
}

fn revocation(c: &mut Cur<'_>, f: &mut Faults) {
    let start = c.pos;
    if !type_version(c, 0x07, f) {
        return;
    }
    let Some(body) = c.take(72 + 64) else {
        add(f, "§3.1 truncation");
        return;
    };
    let id = a32(&body[..32]);
    let rk = a32(&body[32..64]);
    ed_key(&rk, f);
    if blake3::derive_key("mayfly 2026-11 v1 message id", &rk) != id {
        add(f, "§3.10 message_id");
    }
    verify(
        &rk,
        "mayfly/v1/revocation",
        &c.b[start..start + 74],
        &body[72..],
        "§3.10 signature",
        f,
    );
}

/// The text forms (§3.6.1, CLIENT-MESSAGES.md §3): the decoded bytes, if any.
fn text(
    t: &str,
    prefix: &str,
    max_bytes: usize,
    checksum_rule: &str,
    f: &mut Faults,
) -> Option<Vec<u8>> {
    let t = t.trim_matches(char::is_whitespace);
    let Some(body) = t.strip_prefix(prefix) else {
        add(f, "§3.6.1 step 2");
        return None;
    };
    if body.chars().count() > (max_bytes * 8).div_ceil(5) {
        add(f, "§3.6.1 step 3");
    }
    if body.bytes().any(|b| b.is_ascii_uppercase()) {
        add(f, "§3.6.1 step 4");
    }
    let Ok(bytes) = data_encoding::BASE32_NOPAD.decode(body.to_ascii_uppercase().as_bytes()) else {
        add(f, "§3.6.1 step 5");
        return None;
    };
    if bytes.len() < 4 {
        add(f, "§3.6.1 step 6");
        return None;
    }
    let (rest, check) = bytes.split_at(bytes.len() - 4);
    if blake3::hash(rest).as_bytes()[..4] != *check {
        add(f, checksum_rule);
    }
    Some(rest.to_vec())
}

const MAX_CARD: usize = 2449;

/// The faults of a `decode:<structure>` case.
pub fn decode(ty: &str, input: &Value) -> Faults {
    let mut f = Faults::new();
    match ty {
        "contact_card_text" => {
            let t = input["text"].as_str().expect("text");
            if let Some(b) = text(t, "mfcard1", MAX_CARD + 4, "§3.6.1 step 6", &mut f) {
                let mut c = Cur::new(&b);
                card(&mut c, &mut f);
                finish(&c, &mut f);
            }
            return f;
        }
        "invite_text" => {
            let t = input["text"].as_str().expect("text");
            let max = 2 + 16 + MAX_CARD + 4;
            if let Some(b) = text(
                t,
                "mfinvite1",
                max,
                "CLIENT-MESSAGES.md §3 checksum",
                &mut f,
            ) {
                f.extend(decode(
                    "invite",
                    &serde_json::json!({ "bytes": hex::encode(b) }),
                ));
            }
            return f;
        }
        _ => {}
    }
    let bytes = unhex(&input["bytes"]);
    let mut c = Cur::new(&bytes);
    match ty {
        "device_certificate" => {
            certificate(&mut c, &mut f);
            finish(&c, &mut f);
        }
        "prekey" => {
            prekey(&mut c, &mut f);
            finish(&c, &mut f);
        }
        "prekey_bundle" => {
            bundle(&bytes, &mut f);
        }
        "contact_card" => {
            card(&mut c, &mut f);
            finish(&c, &mut f);
        }
        "manifest" => {
            manifest(&bytes, &mut f);
        }
        "envelope" => {
            envelope(&bytes, &mut f);
        }
        "revocation" => {
            revocation(&mut c, &mut f);
            finish(&c, &mut f);
        }
        "live_chat" => {
            live_chat(&bytes, &mut f);
        }
        "live_segment" => {
            live_segment(&bytes, &mut f);
        }
        "invite" => {
            if type_version(&mut c, 0x09, &mut f) {
                if c.take(16).is_none() {
                    add(&mut f, "§3.1 truncation");
                }
                card(&mut c, &mut f);
                finish(&c, &mut f);
            }
        }
        "control" => {
            if type_version(&mut c, 0x08, &mut f) {
                match c.take(1) {
                    None => add(&mut f, "§3.1 truncation"),
                    Some([1]) => {
                        if c.take(16).is_none() {
                            add(&mut f, "§3.1 truncation");
                        }
                        card(&mut c, &mut f);
                    }
                    Some([2]) => revocation(&mut c, &mut f),
                    Some([3]) => card(&mut c, &mut f),
                    // Live key: broadcast id, epoch, key, started_at, replay,
                    // then count (u8, at most 8) non-empty string16 peers.
                    Some([4]) => {
                        if c.take(32 + 4 + 32 + 8).is_none() {
                            add(&mut f, "§3.1 truncation");
                        } else {
                            match c.take(1).map(|b| b[0]) {
                                None => add(&mut f, "§3.1 truncation"),
                                Some(b) => {
                                    if b > 1 {
                                        add(&mut f, "§3.1 boolean");
                                    }
                                    let rule = "CLIENT-MESSAGES.md §2 live key peers";
                                    addresses(&mut c, &mut f, rule, rule);
                                }
                            }
                        }
                    }
                    // Follow and unfollow have no body.
                    Some([5 | 6]) => {}
                    // Live revoked: a broadcast id.
                    Some([7]) => {
                        if c.take(32).is_none() {
                            add(&mut f, "§3.1 truncation");
                        }
                    }
                    Some(_) => {
                        // The body of an unknown kind has no layout to check.
                        add(&mut f, "CLIENT-MESSAGES.md §2 kind");
                        return f;
                    }
                }
                finish(&c, &mut f);
            }
        }
        other => panic!("unknown structure {other}"),
    }
    f
}

/// A list of addresses (a card's relays, a live key's peers): a u8 count
/// of at most 8, then that many strings of 1 to 256 bytes, each with a u16
/// length. A count or a length out of bounds breaks `count_rule` or
/// `item_rule`. False if the input ends inside the list.
fn addresses(c: &mut Cur<'_>, f: &mut Faults, count_rule: &str, item_rule: &str) -> bool {
    let Some(&[n]) = c.take(1) else {
        add(f, "§3.1 truncation");
        return false;
    };
    if usize::from(n) > 8 {
        add(f, count_rule);
    }
    for _ in 0..n {
        let Some(len) = c.take(2) else {
            add(f, "§3.1 truncation");
            return false;
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len == 0 || len > 256 {
            add(f, item_rule);
        }
        let Some(r) = c.take(len) else {
            add(f, "§3.1 truncation");
            return false;
        };
        string(r, f);
    }
    true
}

/// The faults of a `prekey_bundle_verify` case (§5.4), and the prekey chosen.
pub fn bundle_verify(input: &Value) -> (Faults, Option<[u8; 32]>) {
    let mut f = Faults::new();
    let now = input["now"].as_u64().expect("now");
    let expected = a32(&unhex(&input["identity_key"]));
    let Some(b) = bundle(&unhex(&input["bundle"]), &mut f) else {
        return (f, None);
    };
    if b.identity != expected {
        add(&mut f, "§5.4 step 2");
    }
    let (Some(spk), Some(device)) = (&b.signed, b.device) else {
        return (f, None);
    };
    if spk.kind != 1 {
        add(&mut f, "§5.4 step 3");
    }
    prekey_signature(spk, &device, "§5.4 step 4", &mut f);
    if spk.created_at > now + SKEW {
        add(&mut f, "§5.4 step 5");
    }
    if now.saturating_sub(spk.created_at) > 7 * DAY {
        add(&mut f, "§5.4 step 6");
    }
    let mut chosen = spk.public;
    if let Some(otk) = &b.one_time {
        if otk.kind != 2 {
            add(&mut f, "§5.4 step 7");
        }
        prekey_signature(otk, &device, "§5.4 step 7", &mut f);
        if otk.created_at <= now + SKEW && now.saturating_sub(otk.created_at) <= 7 * DAY {
            chosen = otk.public;
        }
    }
    (f, Some(chosen))
}

// --- Clips (§9.3, §10; SPEC.md Appendix A) ------------------------------------

fn aead_open(key: &[u8; 32], nonce: [u8; 12], ct: &[u8]) -> Option<Vec<u8>> {
    aead_open_aad(key, nonce, &[], ct)
}

fn aead_open_aad(key: &[u8; 32], nonce: [u8; 12], aad: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    let (body, tag) = ct.split_at(ct.len().checked_sub(16)?);
    let mut buf = body.to_vec();
    chacha20poly1305::ChaCha20Poly1305::new(&chacha20poly1305::Key::from(*key))
        .decrypt_inout_detached(
            &chacha20poly1305::Nonce::from(nonce),
            aad,
            buf.as_mut_slice().into(),
            &chacha20poly1305::Tag::try_from(tag).ok()?,
        )
        .ok()?;
    Some(buf)
}

fn derive(ctx: &str, k: &[u8; 32], id: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key(ctx, &[k.as_slice(), id.as_slice()].concat())
}

fn noise_open(identity: &[u8; 32], secret: &[u8; 32], message: &[u8]) -> Option<Vec<u8>> {
    let mut prologue = b"mayfly/v1/envelope\0".to_vec();
    prologue.extend_from_slice(identity);
    let mut hs = snow::Builder::with_resolver(
        "Noise_N_25519_ChaChaPoly_BLAKE2s".parse().ok()?,
        Box::new(Resolver),
    )
    .prologue(&prologue)
    .ok()?
    .local_private_key(secret)
    .ok()?
    .build_responder()
    .ok()?;
    let mut out = vec![0u8; message.len()];
    let n = hs.read_message(message, &mut out).ok()?;
    out.truncate(n);
    Some(out)
}

/// snow's default resolver, with an RNG that is never used: the responder
/// of `N` draws nothing (the default resolver has no RNG in this build).
struct Resolver;

struct NoRng;

impl snow::types::Random for NoRng {
    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), snow::Error> {
        unreachable!("the responder of Noise N draws no randomness")
    }
}

impl snow::resolvers::CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn snow::types::Random>> {
        Some(Box::new(NoRng))
    }
    fn resolve_dh(&self, c: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
        snow::resolvers::DefaultResolver.resolve_dh(c)
    }
    fn resolve_hash(&self, c: &snow::params::HashChoice) -> Option<Box<dyn snow::types::Hash>> {
        snow::resolvers::DefaultResolver.resolve_hash(c)
    }
    fn resolve_cipher(
        &self,
        c: &snow::params::CipherChoice,
    ) -> Option<Box<dyn snow::types::Cipher>> {
        snow::resolvers::DefaultResolver.resolve_cipher(c)
    }
}

/// The §3.7 header checks and rules.
fn header(h: &[u8], f: &mut Faults) -> Option<(u64, u64, u64)> {
    let kind = h[0];
    if !(1..=3).contains(&kind) {
        add(f, "§3.7 kind");
    }
    if h[1] > 1 {
        add(f, "§3.1 boolean");
    }
    let duration = u32::from_be_bytes(h[2..6].try_into().expect("4"));
    let created = be64(&h[6..14]);
    let expires = be64(&h[14..22]);
    let content_len = be64(&h[22..30]);
    let parent = &h[30..62];
    let m = usize::from(h[62]);
    if m > 64 {
        add(f, "§3.7 media_type_len");
        return None;
    }
    let media = &h[63..63 + m];
    string(media, f);
    if h[63 + m..].iter().any(|&b| b != 0) {
        add(f, "§3.7 padding");
    }
    let (max_duration, max_ttl) = match kind {
        1 => (180_000, 14 * DAY),
        2 => (5_000, 14 * DAY),
        3 => (10_000, DAY),
        _ => (u32::MAX, u64::MAX),
    };
    if duration > max_duration {
        add(f, "§3.7 rule 1");
    }
    if expires <= created {
        add(f, "§3.7 rule 2");
    } else if expires - created > max_ttl {
        add(f, "§3.7 rule 3");
    }
    if content_len == 0 || content_len > 1 << 30 {
        add(f, "§3.7 rule 4");
    }
    let has_parent = parent.iter().any(|&b| b != 0);
    if (kind == 2 && !has_parent) || (kind == 1 && has_parent) {
        add(f, "§3.7 rule 5");
    }
    let token = |s: &[u8]| {
        !s.is_empty()
            && s.iter()
                .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"!#$&-^_.+".contains(&c))
    };
    let slashes = media.iter().filter(|&&c| c == b'/').count();
    let ok = slashes == 1 && {
        let at = media.iter().position(|&c| c == b'/').expect("one slash");
        token(&media[..at]) && token(&media[at + 1..])
    };
    if !ok {
        add(f, "§3.7 rule 6");
    }
    Some((created, expires, content_len))
}

/// The faults of a `clip` case, in the order of SPEC.md Appendix A.
pub fn clip(input: &Value) -> Faults {
    let mut f = Faults::new();
    let now = input["now"].as_u64().expect("now");
    let identity = a32(&unhex(&input["recipient_identity_key"]));
    let secret = a32(&unhex(&input["recipient_prekey_secret"]));
    let Some((prekey, noise_message)) = envelope(&unhex(&input["envelope"]), &mut f) else {
        return f;
    };
    // §9.3 step 2: the recipient holds one secret; it is for another prekey.
    if x25519_dalek::x25519(secret, x25519_dalek::X25519_BASEPOINT_BYTES) != prekey {
        add(&mut f, "§9.3 step 2");
        return f;
    }
    let Some(payload) = noise_open(&identity, &secret, &noise_message) else {
        add(&mut f, "§9.3 step 4");
        return f;
    };
    if payload.len() != 306 {
        add(&mut f, "§9.3 step 4");
        return f;
    }
    let mut cert_faults = Faults::new();
    let device = certificate(&mut Cur::new(&payload[..146]), &mut cert_faults);
    if !cert_faults.is_empty() {
        add(&mut f, "§9.3 step 5");
    }
    let mid = a32(&payload[146..178]);
    let mh = a32(&payload[178..210]);
    let k = a32(&payload[210..242]);
    if let Some(device) = device {
        let signed = [&payload[..146], &identity, &prekey, &mid, &mh].concat();
        verify(
            &device,
            "mayfly/v1/envelope",
            &signed,
            &payload[242..306],
            "§9.3 step 6",
            &mut f,
        );
    }
    let Some(m) = manifest(&unhex(&input["manifest"]), &mut f) else {
        return f;
    };
    if m.id != mid || *blake3::hash(&m.encoding).as_bytes() != mh {
        add(&mut f, "§10 step 2");
    }
    if derive("mayfly 2026-11 v1 key commitment", &k, &m.id) != m.commitment {
        add(&mut f, "§10 step 3");
    }
    let hk = derive("mayfly 2026-11 v1 header key", &k, &m.id);
    let Some(h) = aead_open(&hk, [0; 12], &m.sealed_header) else {
        add(&mut f, "§10 step 4");
        return f;
    };
    let Some((created, expires, content_len)) = header(&h, &mut f) else {
        return f;
    };
    if expires != m.expires_at || padded_len(content_len) != m.padded_len {
        add(&mut f, "§10 step 5");
    }
    if now >= expires || created > now + SKEW {
        add(&mut f, "§10 step 6");
    }
    let pk = derive("mayfly 2026-11 v1 payload key", &k, &m.id);
    let ct = unhex(&input["ciphertext"]);
    let n = m.hashes.len();
    let mut off = 0;
    for (i, want) in m.hashes.iter().enumerate() {
        let len = (m.padded_len as usize - i * CHUNK).min(CHUNK) + 16;
        let Some(c) = ct.get(off..off + len) else {
            add(&mut f, "§10 step 8");
            return f;
        };
        off += len;
        if blake3::hash(c).as_bytes() != want {
            add(&mut f, "§10 step 7.1");
        }
        let mut nonce = [0u8; 12];
        nonce[7..11].copy_from_slice(&(i as u32).to_be_bytes());
        nonce[11] = u8::from(i + 1 == n);
        let Some(plain) = aead_open(&pk, nonce, c) else {
            add(&mut f, "§10 step 7.2");
            continue;
        };
        let content = (content_len.saturating_sub((i * CHUNK) as u64) as usize).min(plain.len());
        if plain[content..].iter().any(|&b| b != 0) {
            add(&mut f, "§10 step 7.3");
        }
    }
    if off != ct.len() {
        add(&mut f, "§10 step 8");
    }
    f
}

// --- Live segments (LIVE.md) ----------------------------------------------------
//
// LIVE.md names one step for several checks: §6 step 1 is the whole layout,
// §6 step 2 the whole certificate, §7 step 3 the whole plaintext. This
// reader names the check within the step too, as `LIVE.md §6 step 1
// (flags)`, so that a vector that breaks two checks of one step is caught.

const MAX_SEGMENT_PLAINTEXT: usize = 4 << 20;
const MAX_INIT: usize = 64 << 10;
const MAX_SEGMENT_DURATION: u32 = 10_000;
const REPLAY_WINDOW: u64 = 256;

/// A live segment's fields (LIVE.md §4.2).
pub struct LiveSegment {
    /// `segment[0..205]`, the AAD.
    head: Vec<u8>,
    broadcast_id: [u8; 32],
    identity: [u8; 32],
    serial: u64,
    seq: u64,
    flags: u8,
    produced_at: u64,
    ciphertext: Vec<u8>,
}

/// LIVE.md §6 steps 1–3: the layout, the certificate and the signature.
/// Returns the fields if the layout could be read to the end.
fn live_segment(bytes: &[u8], f: &mut Faults) -> Option<LiveSegment> {
    fn layout(f: &mut Faults, check: &str) {
        add(f, &format!("LIVE.md §6 step 1 ({check})"));
    }
    let mut c = Cur::new(bytes);
    let Some(tv) = c.take(2) else {
        layout(f, "truncation");
        return None;
    };
    if tv[0] != 0x0a {
        layout(f, "type");
    }
    if tv[1] != 0x01 {
        layout(f, "version");
    }
    let Some(broadcast_id) = c.take(32).map(a32) else {
        layout(f, "truncation");
        return None;
    };
    // The certificate's own rules (SPEC §3.3) are step 2; its truncation is
    // the segment's.
    let cert_at = c.pos;
    let mut cert_faults = Faults::new();
    let device = certificate(&mut c, &mut cert_faults);
    if cert_faults.remove("§3.1 truncation") {
        layout(f, "truncation");
        return None;
    }
    for r in cert_faults {
        add(f, &format!("LIVE.md §6 step 2 ({r})"));
    }
    let cert = &bytes[cert_at..cert_at + 146];
    let Some(fixed) = c.take(4 + 8 + 1 + 8 + 4) else {
        layout(f, "truncation");
        return None;
    };
    let seq = be64(&fixed[4..12]);
    let flags = fixed[12];
    let produced_at = be64(&fixed[13..21]);
    let duration = u32::from_be_bytes(fixed[21..25].try_into().expect("4"));
    if flags & !0x03 != 0 {
        layout(f, "flags");
    }
    if duration > MAX_SEGMENT_DURATION {
        layout(f, "duration_ms");
    }
    let Some(len) = c.take(4) else {
        layout(f, "truncation");
        return None;
    };
    let ct_len = u32::from_be_bytes(len.try_into().expect("4")) as usize;
    if !(4 + 16..=MAX_SEGMENT_PLAINTEXT + 16).contains(&ct_len) {
        layout(f, "ct_len");
    }
    let Some(ciphertext) = c.take(ct_len) else {
        layout(f, "truncation");
        return None;
    };
    let signed = c.pos;
    let Some(sig) = c.take(64) else {
        layout(f, "truncation");
        return None;
    };
    if let Some(device) = device {
        verify(
            &device,
            "mayfly/v1/live-segment",
            &bytes[..signed],
            sig,
            "LIVE.md §6 step 3",
            f,
        );
    }
    if c.rest() > 0 {
        layout(f, "trailing bytes");
    }
    Some(LiveSegment {
        head: bytes[..205].to_vec(),
        broadcast_id,
        identity: a32(&cert[2..34]),
        serial: be64(&cert[66..74]),
        seq,
        flags,
        produced_at,
        ciphertext: ciphertext.to_vec(),
    })
}

/// A segment's plaintext: its init part and its media part (LIVE.md §4.1).
pub type LivePlaintext = (Vec<u8>, Vec<u8>);

/// The faults of a `live_open` case (LIVE.md §6 steps 1–3, then §7), and
/// the init and media parts if it opens.
pub fn live_open(input: &Value) -> (Faults, Option<LivePlaintext>) {
    let mut f = Faults::new();
    let Some(seg) = live_segment(&unhex(&input["segment"]), &mut f) else {
        return (f, None);
    };
    let epoch_key = unhex(&input["epoch_key"]);
    let key = blake3::derive_key(
        "mayfly 2026-12 v1 live segment key",
        &[epoch_key.as_slice(), &seg.broadcast_id].concat(),
    );
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&seg.seq.to_be_bytes());
    let Some(plain) = aead_open_aad(&key, nonce, &seg.head, &seg.ciphertext) else {
        add(&mut f, "LIVE.md §7 step 2");
        return (f, None);
    };
    let step3 = |f: &mut Faults, check: &str| add(f, &format!("LIVE.md §7 step 3 ({check})"));
    let Some(len) = plain.get(..4) else {
        step3(&mut f, "truncation");
        return (f, None);
    };
    let init_len = u32::from_be_bytes(len.try_into().expect("4")) as usize;
    let rest = &plain[4..];
    let before = f.len();
    if init_len > MAX_INIT {
        step3(&mut f, "init_len > MAX_INIT_LEN");
    }
    if init_len > rest.len() {
        step3(&mut f, "init_len > remaining");
    }
    if (seg.flags & 0x01 != 0) != (init_len != 0) {
        step3(&mut f, "keyframe");
    }
    if f.len() > before || init_len > rest.len() {
        return (f, None);
    }
    let (init, media) = rest.split_at(init_len);
    (f, Some((init.to_vec(), media.to_vec())))
}

/// The refusals of each step of a `live_gate` case (LIVE.md §6 steps 4–8),
/// by outcome name: every check is made, and a segment is recorded only
/// when none fails.
pub fn live_gate(input: &Value) -> Vec<BTreeSet<String>> {
    let broadcast_id = a32(&unhex(&input["broadcast_id"]));
    let broadcaster = a32(&unhex(&input["broadcaster_identity_key"]));
    let mut min_serial = input["min_serial"].as_u64().expect("min_serial");
    let mut highest: Option<u64> = None;
    let mut accepted = BTreeSet::new();
    let mut end: Option<u64> = None;
    let mut out = Vec::new();
    for step in input["steps"].as_array().expect("steps") {
        let now = step["now"].as_u64().expect("now");
        let mut faults = Faults::new();
        let seg = live_segment(&unhex(&step["segment"]), &mut faults);
        let mut refusals: BTreeSet<String> = faults.into_iter().collect();
        let Some(seg) = seg else {
            out.push(refusals);
            continue;
        };
        let mut refuse = |r: &str| refusals.insert(r.to_owned());
        if seg.broadcast_id != broadcast_id {
            refuse("other_broadcast");
        }
        if seg.identity != broadcaster || seg.serial < min_serial {
            refuse("wrong_signer");
        }
        if seg.produced_at > now + SKEW {
            refuse("from_the_future");
        }
        if now.saturating_sub(seg.produced_at) > DAY {
            refuse("expired");
        }
        if end.is_some_and(|e| seg.seq > e) {
            refuse("after_end");
        }
        if let Some(h) = highest
            && seg.seq <= h
        {
            if h - seg.seq >= REPLAY_WINDOW {
                refuse("stale");
            } else if accepted.contains(&seg.seq) {
                refuse("duplicate");
            }
        }
        if refusals.is_empty() {
            accepted.insert(seg.seq);
            highest = highest.max(Some(seg.seq));
            if seg.flags & 0x02 != 0 {
                end = Some(end.map_or(seg.seq, |e| e.min(seg.seq)));
            }
            min_serial = min_serial.max(seg.serial);
        }
        out.push(refusals);
    }
    out
}

// --- Live chat (LIVE.md §12) ----------------------------------------------------

/// LIVE.md §12.4 step 1: a chat message's layout. Returns its head (the
/// AAD) and ciphertext if the layout could be read to the end.
fn live_chat(bytes: &[u8], f: &mut Faults) -> Option<(Vec<u8>, Vec<u8>)> {
    fn layout(f: &mut Faults, check: &str) {
        add(f, &format!("LIVE.md §12.4 step 1 ({check})"));
    }
    let mut c = Cur::new(bytes);
    let Some(head) = c.take(70) else {
        layout(f, "truncation");
        return None;
    };
    if head[0] != 0x0b {
        layout(f, "type");
    }
    if head[1] != 0x01 {
        layout(f, "version");
    }
    let Some(len) = c.take(4) else {
        layout(f, "truncation");
        return None;
    };
    let ct_len = u32::from_be_bytes(len.try_into().expect("4")) as usize;
    // Plaintext: kind, sent_at, token, text length, signed: 28 bytes at
    // least; at most 500 bytes of text, a certificate and a signature more.
    if !(28 + 16..=28 + 500 + 146 + 64 + 16).contains(&ct_len) {
        layout(f, "ct_len");
    }
    let Some(ct) = c.take(ct_len) else {
        layout(f, "truncation");
        return None;
    };
    if c.rest() > 0 {
        layout(f, "trailing bytes");
    }
    Some((head.to_vec(), ct.to_vec()))
}

/// The faults of a `live_chat_open` case (LIVE.md §12.4 steps 1, 4 and 5)
/// and, if it opens, what it says, in the vector's `opened` form.
pub fn live_chat_open(input: &Value) -> (Faults, Option<Value>) {
    let mut f = Faults::new();
    let Some((head, ct)) = live_chat(&unhex(&input["message"]), &mut f) else {
        return (f, None);
    };
    let epoch_key = unhex(&input["epoch_key"]);
    let key = blake3::derive_key(
        "mayfly 2026-12 v1 live chat key",
        &[epoch_key.as_slice(), &head[2..34], &head[38..70]].concat(),
    );
    let Some(p) = aead_open_aad(&key, [0; 12], &head, &ct) else {
        add(&mut f, "LIVE.md §12.4 step 4");
        return (f, None);
    };
    let step5 = |f: &mut Faults, check: &str| add(f, &format!("LIVE.md §12.4 step 5 ({check})"));
    let mut c = Cur::new(&p);
    let Some(fixed) = c.take(1 + 8 + 16 + 2) else {
        step5(&mut f, "truncation");
        return (f, None);
    };
    let kind = match fixed[0] {
        1 => "join",
        2 => "leave",
        3 => "comment",
        _ => {
            step5(&mut f, "kind");
            "unknown"
        }
    };
    let text_len = usize::from(u16::from_be_bytes([fixed[25], fixed[26]]));
    let Some(text) = c.take(text_len) else {
        step5(&mut f, "truncation");
        return (f, None);
    };
    let text = match core::str::from_utf8(text) {
        Err(_) => {
            step5(&mut f, "UTF-8");
            String::new()
        }
        Ok(s) => {
            if s.chars().any(char::is_control) {
                step5(&mut f, "control character");
            }
            s.to_owned()
        }
    };
    match kind {
        "comment" if text_len == 0 || text_len > 500 => step5(&mut f, "comment length"),
        "join" | "leave" if text_len > 0 => step5(&mut f, "text in a join or leave"),
        _ => {}
    }
    let Some(signed) = c.take(1) else {
        step5(&mut f, "truncation");
        return (f, None);
    };
    let mut identity = Value::Null;
    let mut device = Value::Null;
    match signed[0] {
        0 => {
            if kind == "comment" {
                step5(&mut f, "unsigned comment");
            }
        }
        1 => {
            let cert_at = c.pos;
            let mut cert_faults = Faults::new();
            let dev = certificate(&mut c, &mut cert_faults);
            for r in cert_faults {
                step5(&mut f, &r);
            }
            let signed_end = c.pos;
            let Some(sig) = c.take(64) else {
                step5(&mut f, "truncation");
                return (f, None);
            };
            if let Some(dev) = dev {
                let msg = [&head[..], &p[..signed_end]].concat();
                verify(
                    &dev,
                    "mayfly/v1/live-chat",
                    &msg,
                    sig,
                    "LIVE.md §12.4 step 5 (signature)",
                    &mut f,
                );
                identity = Value::String(hex::encode(&p[cert_at + 2..cert_at + 34]));
                device = Value::String(hex::encode(dev));
            }
        }
        _ => step5(&mut f, "signed byte"),
    }
    if c.rest() > 0 {
        step5(&mut f, "trailing bytes");
    }
    if !f.is_empty() {
        return (f, None);
    }
    let opened = serde_json::json!({
        "kind": kind,
        "sent_at": be64(&fixed[1..9]),
        "token": hex::encode(&fixed[9..25]),
        "text": text,
        "identity_key": identity,
        "device_key": device,
    });
    (f, Some(opened))
}
