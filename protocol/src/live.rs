//! Live broadcasts: segments sealed under a broadcast's epoch key and
//! signed by the broadcaster's device (spec/LIVE.md).
//!
//! A broadcaster cuts its stream into segments of about a second, seals each
//! with the current **epoch key** (a random key it hands to each viewer in a
//! [`crate::Control::LiveKey`] envelope, and replaces on a schedule and
//! whenever a viewer is removed), and signs it. Anyone holding the
//! broadcaster's identity key can check a segment's signature without the
//! epoch key, so viewers forward only what the broadcaster sent; only key
//! holders can read it.
//!
//! Sans-IO: [`SegmentSealer`] is the broadcaster's side, [`SegmentGate`] a
//! viewer's (and a forwarder's): bytes and `now` go in, a verdict and
//! plaintext come out.

use std::collections::BTreeMap;

pub mod chat;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::aead;
use crate::codec::{Codec, Reader, Writer, read_header, tag, write_header};
use crate::error::{DecodeError, Error};
use crate::identity::{Device, DeviceCertificate};
use crate::keys::SigningPublicKey;
use crate::limits::{MAX_CLOCK_SKEW_MS, MAX_LIVE_SEGMENT_DURATION_MS, MAX_LIVE_TTL_MS, TAG_SIZE};
use crate::time::UnixMillis;

/// Signature context of live segments.
pub const LIVE_SEGMENT_CONTEXT: &str = "mayfly/v1/live-segment";
/// BLAKE3 `derive_key` context of a segment key, from an epoch key.
pub const CTX_LIVE_SEGMENT_KEY: &str = "mayfly 2026-12 v1 live segment key";
/// Largest plaintext of one segment: its init part, its media part and their
/// length prefix.
pub const MAX_SEGMENT_PLAINTEXT_LEN: usize = 4 << 20;
/// Largest init part (the fragmented MP4's `ftyp` and `moov`).
pub const MAX_INIT_LEN: usize = 64 << 10;
/// How many sequence numbers below the highest one a gate still accepts
/// (once each); older ones are refused as stale.
pub const LIVE_REPLAY_WINDOW: u64 = 256;
/// The most epoch keys a gate holds at once; adding one more forgets the
/// oldest.
pub const MAX_EPOCH_KEYS: usize = 16;
/// RECOMMENDED longest life of one epoch key, in ms (LIVE.md §3.2).
pub const LIVE_EPOCH_MS: u64 = 10 * 60 * 1000;

/// Segment flag: a player can start here; the init part is present.
pub const FLAG_KEYFRAME: u8 = 0x01;
/// Segment flag: the broadcast's last segment.
pub const FLAG_END: u8 = 0x02;
const KNOWN_FLAGS: u8 = FLAG_KEYFRAME | FLAG_END;

/// A broadcast's 32-byte identifier, drawn at random by the broadcaster.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct BroadcastId(pub [u8; 32]);

/// One epoch's key of a broadcast, zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct EpochKey([u8; 32]);

impl EpochKey {
    /// The key with these bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    /// The raw bytes. Handle with care.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `derive_key(CTX_LIVE_SEGMENT_KEY, epoch_key ‖ broadcast_id)`.
    fn segment_key(&self, id: &BroadcastId) -> Zeroizing<[u8; 32]> {
        let mut material = Zeroizing::new([0u8; 64]);
        material[..32].copy_from_slice(&self.0);
        material[32..].copy_from_slice(&id.0);
        Zeroizing::new(blake3::derive_key(CTX_LIVE_SEGMENT_KEY, &material[..]))
    }
}

impl core::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EpochKey(..)")
    }
}

/// A sealed, signed live segment as it travels (LIVE.md §4).
///
/// Decoding checks the layout, the broadcaster's certificate and the
/// segment signature; it needs no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    broadcast_id: BroadcastId,
    certificate: DeviceCertificate,
    epoch: u32,
    seq: u64,
    flags: u8,
    produced_at: UnixMillis,
    duration_ms: u32,
    ciphertext: Vec<u8>,
    signature: [u8; 64],
}

impl Segment {
    /// Bytes before the ciphertext: type and version, broadcast id,
    /// certificate, epoch, seq, flags, produced_at, duration.
    pub const HEAD_LEN: usize = 2 + 32 + DeviceCertificate::LEN + 4 + 8 + 1 + 8 + 4;

    /// The broadcast.
    pub fn broadcast_id(&self) -> BroadcastId {
        self.broadcast_id
    }
    /// The broadcaster's device certificate.
    pub fn certificate(&self) -> &DeviceCertificate {
        &self.certificate
    }
    /// The epoch whose key sealed it.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
    /// Its position in the broadcast, from 0.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// [`FLAG_KEYFRAME`] and [`FLAG_END`].
    pub fn flags(&self) -> u8 {
        self.flags
    }
    /// When the broadcaster sealed it.
    pub fn produced_at(&self) -> UnixMillis {
        self.produced_at
    }
    /// Its media duration.
    pub fn duration_ms(&self) -> u32 {
        self.duration_ms
    }

    fn head(&self, out: &mut Vec<u8>) {
        write_header(out, tag::LIVE_SEGMENT);
        out.put(&self.broadcast_id.0);
        self.certificate.encode(out);
        out.put_u32(self.epoch);
        out.put_u64(self.seq);
        out.put_u8(self.flags);
        out.put_u64(self.produced_at.0);
        out.put_u32(self.duration_ms);
    }

    /// What the device signs: every byte before the signature.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::HEAD_LEN + 4 + self.ciphertext.len());
        self.head(&mut out);
        out.put_u32(self.ciphertext.len() as u32);
        out.put(&self.ciphertext);
        out
    }

    /// Decrypts with `key` (the key of [`Segment::epoch`]): the init part
    /// (empty unless [`FLAG_KEYFRAME`]) and the media part.
    pub fn open(&self, key: &EpochKey) -> Result<SegmentPlaintext, Error> {
        let mut aad = Vec::with_capacity(Self::HEAD_LEN);
        self.head(&mut aad);
        let at = self.ciphertext.len() - TAG_SIZE;
        let mut buf = Zeroizing::new(self.ciphertext[..at].to_vec());
        let tag: [u8; TAG_SIZE] = self.ciphertext[at..].try_into().expect("16 bytes");
        aead::open_in_place(
            &key.segment_key(&self.broadcast_id),
            &nonce(self.seq),
            &aad,
            &mut buf,
            &tag,
        )?;
        let mut r = Reader::new(&buf);
        let init = r
            .bytes_u32("init", MAX_INIT_LEN)
            .map_err(|_| Error::Decrypt)?;
        let keyframe = self.flags & FLAG_KEYFRAME != 0;
        // Rule: a keyframe segment carries the init part, no other does.
        if keyframe == init.is_empty() {
            return Err(Error::Decrypt);
        }
        let init = init.to_vec();
        let media = r.take(r.remaining()).map_err(|_| Error::Decrypt)?.to_vec();
        Ok(SegmentPlaintext { init, media })
    }
}

/// A segment's plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SegmentPlaintext {
    /// The init part (`ftyp` and `moov`), on keyframe segments only.
    pub init: Vec<u8>,
    /// The media part (`moof` and `mdat` boxes).
    pub media: Vec<u8>,
}

/// Nonce of segment `seq`: four zero bytes and `seq` big-endian.
fn nonce(seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&seq.to_be_bytes());
    n
}

const MAX_CIPHERTEXT_LEN: usize = MAX_SEGMENT_PLAINTEXT_LEN + TAG_SIZE;

impl Codec for Segment {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put(&self.signed_bytes());
        out.put(&self.signature);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_header(r, tag::LIVE_SEGMENT)?;
        let broadcast_id = BroadcastId(r.array()?);
        let certificate = DeviceCertificate::read(r)?;
        let epoch = r.u32()?;
        let seq = r.u64()?;
        let flags = r.u8()?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::Invalid("unknown segment flag"));
        }
        let produced_at = UnixMillis(r.u64()?);
        let duration_ms = r.u32()?;
        if duration_ms > MAX_LIVE_SEGMENT_DURATION_MS {
            return Err(DecodeError::Invalid("segment duration"));
        }
        let ciphertext = r.bytes_u32("segment ciphertext", MAX_CIPHERTEXT_LEN)?;
        // The smallest plaintext is the init length prefix alone.
        if ciphertext.len() < 4 + TAG_SIZE {
            return Err(DecodeError::Invalid("segment ciphertext too short"));
        }
        let seg = Self {
            broadcast_id,
            certificate,
            epoch,
            seq,
            flags,
            produced_at,
            duration_ms,
            ciphertext: ciphertext.to_vec(),
            signature: r.array()?,
        };
        seg.certificate
            .device_key()
            .verify(
                LIVE_SEGMENT_CONTEXT,
                &seg.signed_bytes(),
                &seg.signature,
                "live segment",
            )
            .map_err(|_| DecodeError::BadSignature("live segment"))?;
        Ok(seg)
    }
}

/// The broadcaster's side: seals and signs segments in order.
pub struct SegmentSealer {
    device: Device,
    broadcast_id: BroadcastId,
    epoch: u32,
    key: EpochKey,
    next_seq: u64,
    ended: bool,
}

impl SegmentSealer {
    /// Starts broadcast `broadcast_id` at epoch 0 with `key`.
    pub fn new(device: Device, broadcast_id: BroadcastId, key: EpochKey) -> Self {
        Self {
            device,
            broadcast_id,
            epoch: 0,
            key,
            next_seq: 0,
            ended: false,
        }
    }

    /// The current epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The sequence number the next segment gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The current epoch's key (to hand to a viewer added mid-epoch).
    pub fn key(&self) -> &EpochKey {
        &self.key
    }

    /// Moves to the next epoch with a fresh `key`; returns its number. Every
    /// segment sealed from now on uses it. The caller hands it to the
    /// remaining viewers first.
    pub fn rotate(&mut self, key: EpochKey) -> Result<u32, Error> {
        self.epoch = self
            .epoch
            .checked_add(1)
            .ok_or(Error::InvalidParams("no epoch left"))?;
        self.key = key;
        Ok(self.epoch)
    }

    /// Seals the next segment: `init` (non-empty exactly when `keyframe`)
    /// and `media`, produced at `now`, lasting `duration_ms`. `end` marks the
    /// last segment, after which nothing more can be sealed.
    pub fn seal(
        &mut self,
        keyframe: bool,
        end: bool,
        init: &[u8],
        media: &[u8],
        duration_ms: u32,
        now: UnixMillis,
    ) -> Result<Segment, Error> {
        if self.ended {
            return Err(Error::Stream("the broadcast has ended"));
        }
        if keyframe == init.is_empty() {
            return Err(Error::InvalidParams(
                "a keyframe segment carries the init part, no other does",
            ));
        }
        if init.len() > MAX_INIT_LEN {
            return Err(Error::InvalidParams("init part too long"));
        }
        if 4 + init.len() + media.len() > MAX_SEGMENT_PLAINTEXT_LEN {
            return Err(Error::InvalidParams("segment too long"));
        }
        if duration_ms > MAX_LIVE_SEGMENT_DURATION_MS {
            return Err(Error::InvalidParams("segment duration"));
        }
        let mut seg = Segment {
            broadcast_id: self.broadcast_id,
            certificate: self.device.certificate().clone(),
            epoch: self.epoch,
            seq: self.next_seq,
            flags: if keyframe { FLAG_KEYFRAME } else { 0 } | if end { FLAG_END } else { 0 },
            produced_at: now,
            duration_ms,
            ciphertext: Vec::new(),
            signature: [0; 64],
        };
        let mut aad = Vec::with_capacity(Segment::HEAD_LEN);
        seg.head(&mut aad);
        let mut buf = Zeroizing::new(Vec::with_capacity(4 + init.len() + media.len() + TAG_SIZE));
        buf.put_u32(init.len() as u32);
        buf.put(init);
        buf.put(media);
        let tag = aead::seal_in_place(
            &self.key.segment_key(&self.broadcast_id),
            &nonce(seg.seq),
            &aad,
            &mut buf,
        )?;
        buf.put(&tag);
        seg.ciphertext = buf.to_vec();
        seg.signature = self
            .device
            .secret()
            .sign(LIVE_SEGMENT_CONTEXT, &seg.signed_bytes());
        self.next_seq = self
            .next_seq
            .checked_add(1)
            .ok_or(Error::InvalidParams("no sequence number left"))?;
        self.ended = end;
        Ok(seg)
    }
}

/// Why a gate refused a segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The bytes are not a valid, validly signed segment.
    #[error("not a valid segment: {0}")]
    Invalid(DecodeError),
    /// Another broadcast's segment.
    #[error("another broadcast")]
    OtherBroadcast,
    /// Signed by a device of another identity, or by a superseded device.
    #[error("not signed by the broadcaster's current device")]
    WrongSigner,
    /// `produced_at` lies more than `MAX_CLOCK_SKEW_MS` in the future.
    #[error("produced in the future")]
    FromTheFuture,
    /// Older than the replay window (`MAX_LIVE_TTL_MS`).
    #[error("expired")]
    Expired,
    /// Already accepted once.
    #[error("a duplicate")]
    Duplicate,
    /// More than [`LIVE_REPLAY_WINDOW`] below the highest accepted.
    #[error("stale")]
    Stale,
    /// After the segment flagged [`FLAG_END`].
    #[error("after the broadcast's end")]
    AfterEnd,
}

impl Refusal {
    /// True when the peer that sent it should be penalised: anything but a
    /// duplicate, which honest forwarders send when their paths cross.
    pub fn is_offence(&self) -> bool {
        !matches!(self, Refusal::Duplicate)
    }
}

/// A viewer's (and forwarder's) check of incoming segments (LIVE.md §6):
/// the broadcast, the broadcaster's current device and signature,
/// freshness, and each sequence number once. Bounded: a bitmap of the last
/// [`LIVE_REPLAY_WINDOW`] sequence numbers and at most [`MAX_EPOCH_KEYS`]
/// epoch keys.
#[derive(Debug)]
pub struct SegmentGate {
    broadcast_id: BroadcastId,
    broadcaster: SigningPublicKey,
    min_serial: u64,
    highest: Option<u64>,
    /// Bit i: `highest - i` was accepted.
    seen: [u64; (LIVE_REPLAY_WINDOW / 64) as usize],
    end: Option<u64>,
    keys: BTreeMap<u32, EpochKey>,
}

impl SegmentGate {
    /// A gate for `broadcast_id` by identity `broadcaster`, whose current
    /// device certificate has serial `min_serial` (segments from a lower
    /// serial are refused; a higher one is adopted).
    pub fn new(broadcast_id: BroadcastId, broadcaster: SigningPublicKey, min_serial: u64) -> Self {
        Self {
            broadcast_id,
            broadcaster,
            min_serial,
            highest: None,
            seen: [0; (LIVE_REPLAY_WINDOW / 64) as usize],
            end: None,
            keys: BTreeMap::new(),
        }
    }

    /// Adds the key of `epoch`. Beyond [`MAX_EPOCH_KEYS`], the oldest epoch's
    /// key is forgotten (and zeroized).
    pub fn add_key(&mut self, epoch: u32, key: EpochKey) {
        self.keys.insert(epoch, key);
        while self.keys.len() > MAX_EPOCH_KEYS {
            self.keys.pop_first();
        }
    }

    /// Forgets every key: what they sealed can no longer be opened here.
    pub fn erase_keys(&mut self) {
        self.keys.clear();
    }

    /// Whether the key of `epoch` is held.
    pub fn has_key(&self, epoch: u32) -> bool {
        self.keys.contains_key(&epoch)
    }

    /// The newest epoch whose key is held.
    pub fn newest_epoch(&self) -> Option<u32> {
        self.keys.keys().next_back().copied()
    }

    /// The broadcast this gate admits.
    pub fn broadcast_id(&self) -> BroadcastId {
        self.broadcast_id
    }

    /// The highest sequence number accepted so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Decodes and checks `bytes` at `now`; on success records its sequence
    /// number, so the same segment is refused next time as a duplicate. A
    /// forwarder forwards exactly what this accepts.
    pub fn accept(&mut self, bytes: &[u8], now: UnixMillis) -> Result<Segment, Refusal> {
        let seg = Segment::decode(bytes).map_err(Refusal::Invalid)?;
        self.check(&seg, now)?;
        self.mark(seg.seq, seg.flags & FLAG_END != 0);
        Ok(seg)
    }

    /// Opens an accepted segment with the key of its epoch; `None` if this
    /// gate has no key for it (the viewer was not given it, or forgot it).
    pub fn open(&self, seg: &Segment) -> Option<Result<SegmentPlaintext, Error>> {
        self.keys.get(&seg.epoch).map(|k| seg.open(k))
    }

    fn check(&mut self, seg: &Segment, now: UnixMillis) -> Result<(), Refusal> {
        if seg.broadcast_id != self.broadcast_id {
            return Err(Refusal::OtherBroadcast);
        }
        let cert = &seg.certificate;
        if cert.identity_key() != self.broadcaster || cert.serial() < self.min_serial {
            return Err(Refusal::WrongSigner);
        }
        if seg.produced_at > now.plus(MAX_CLOCK_SKEW_MS) {
            return Err(Refusal::FromTheFuture);
        }
        if now.since(seg.produced_at) > MAX_LIVE_TTL_MS {
            return Err(Refusal::Expired);
        }
        if self.end.is_some_and(|end| seg.seq > end) {
            return Err(Refusal::AfterEnd);
        }
        self.check_seq(seg.seq)?;
        // A newer device of the broadcaster: older ones are refused from now.
        self.min_serial = self.min_serial.max(cert.serial());
        Ok(())
    }

    /// Each sequence number once, and none a window or more below the
    /// highest accepted.
    fn check_seq(&self, seq: u64) -> Result<(), Refusal> {
        if let Some(h) = self.highest
            && seq <= h
        {
            let back = h - seq;
            if back >= LIVE_REPLAY_WINDOW {
                return Err(Refusal::Stale);
            }
            if self.seen[(back / 64) as usize] & (1 << (back % 64)) != 0 {
                return Err(Refusal::Duplicate);
            }
        }
        Ok(())
    }

    fn mark(&mut self, seq: u64, end: bool) {
        match self.highest {
            Some(h) if seq <= h => {
                let back = h - seq;
                self.seen[(back / 64) as usize] |= 1 << (back % 64);
            }
            Some(h) => {
                self.shift(seq - h);
                self.seen[0] |= 1;
                self.highest = Some(seq);
            }
            None => {
                self.seen[0] = 1;
                self.highest = Some(seq);
            }
        }
        if end {
            self.end = Some(self.end.map_or(seq, |e| e.min(seq)));
        }
    }

    /// Moves the window up by `by` sequence numbers.
    fn shift(&mut self, by: u64) {
        if by >= LIVE_REPLAY_WINDOW {
            self.seen = [0; (LIVE_REPLAY_WINDOW / 64) as usize];
            return;
        }
        let (words, bits) = ((by / 64) as usize, (by % 64) as u32);
        let n = self.seen.len();
        for i in (0..n).rev() {
            let lo = if i >= words { self.seen[i - words] } else { 0 };
            let below = if i > words && bits > 0 {
                self.seen[i - words - 1] >> (64 - bits)
            } else {
                0
            };
            self.seen[i] = if bits == 0 { lo } else { (lo << bits) | below };
        }
    }
}

#[cfg(test)]
mod tests;
