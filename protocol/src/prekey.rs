//! Prekeys: the X25519 keys senders seal envelopes to.
//!
//! A device publishes one signed prekey, replaced every
//! [`SIGNED_PREKEY_ROTATION_MS`], and a batch of one-time prekeys, each
//! handed out once. Both are signed by the device key. [`PrekeyStore`] is the
//! device's side: it issues, rotates, looks up and erases the secrets.

use std::collections::BTreeMap;

use rand_core::CryptoRng;

use crate::codec::{Codec, Reader, Writer, read_header, tag, write_header};
use crate::error::{DecodeError, Error};
use crate::identity::{Device, DeviceCertificate};
use crate::keys::{DhPublicKey, DhSecret, SigningPublicKey};
use crate::limits::{
    MAX_CLOCK_SKEW_MS, MAX_ONE_TIME_PREKEYS, MAX_RETIRED_SIGNED_PREKEYS,
    ONE_TIME_PREKEY_ERASE_AFTER_MS, ONE_TIME_PREKEY_MAX_AGE_MS, SIGNED_PREKEY_ERASE_AFTER_MS,
    SIGNED_PREKEY_MAX_AGE_MS, SIGNED_PREKEY_ROTATION_MS,
};
use crate::time::UnixMillis;

/// Signature context of prekeys.
pub const PREKEY_CONTEXT: &str = "mayfly/v1/prekey";

/// Whether a prekey is the device's signed prekey or a one-time prekey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrekeyKind {
    /// The medium-term prekey, used when no one-time prekey is available.
    Signed = 1,
    /// A prekey handed out to one sender only.
    OneTime = 2,
}

/// A prekey public key with its kind and creation time, signed by a device key.
///
/// Decoding checks the encoding only; call [`Prekey::verify`] with the device key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prekey {
    kind: PrekeyKind,
    public: DhPublicKey,
    created_at: UnixMillis,
    signature: [u8; 64],
}

impl Prekey {
    /// Encoded length in bytes.
    pub const LEN: usize = 2 + 1 + 32 + 8 + 64;

    fn issue(device: &Device, kind: PrekeyKind, public: DhPublicKey, now: UnixMillis) -> Self {
        let mut p = Self {
            kind,
            public,
            created_at: now,
            signature: [0; 64],
        };
        p.signature = device.secret().sign(PREKEY_CONTEXT, &p.signed_bytes());
        p
    }

    /// Signed or one-time.
    pub fn kind(&self) -> PrekeyKind {
        self.kind
    }
    /// The X25519 public key.
    pub fn public(&self) -> DhPublicKey {
        self.public
    }
    /// When the device created it.
    pub fn created_at(&self) -> UnixMillis {
        self.created_at
    }

    /// Checks the signature against `device_key`.
    pub fn verify(&self, device_key: &SigningPublicKey) -> Result<(), Error> {
        device_key.verify(
            PREKEY_CONTEXT,
            &self.signed_bytes(),
            &self.signature,
            "prekey",
        )
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        write_header(&mut out, tag::PREKEY);
        out.put_u8(self.kind as u8);
        out.put(self.public.as_bytes());
        out.put_u64(self.created_at.0);
        out
    }
}

impl Codec for Prekey {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put(&self.signed_bytes());
        out.put(&self.signature);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_header(r, tag::PREKEY)?;
        let kind = match r.u8()? {
            1 => PrekeyKind::Signed,
            2 => PrekeyKind::OneTime,
            _ => return Err(DecodeError::Invalid("prekey kind")),
        };
        Ok(Self {
            kind,
            public: DhPublicKey::read(r)?,
            created_at: UnixMillis(r.u64()?),
            signature: r.array()?,
        })
    }
}

/// What a sender fetches to seal an envelope to a device: its certificate,
/// its signed prekey and, when one was available, a one-time prekey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrekeyBundle {
    /// The device's certificate (signature checked when decoded).
    pub certificate: DeviceCertificate,
    /// The device's current signed prekey.
    pub signed_prekey: Prekey,
    /// A one-time prekey, if the relay had one left.
    pub one_time_prekey: Option<Prekey>,
}

impl PrekeyBundle {
    /// Checks the bundle for a sender who expects `identity`, at time `now`:
    /// the certificate's identity, both prekey signatures and kinds, and the
    /// signed prekey's age. Returns the key an envelope must be sealed to: the
    /// one-time prekey unless it is older than [`ONE_TIME_PREKEY_MAX_AGE_MS`]
    /// (or dated in the future), else the signed prekey.
    pub fn verify(&self, identity: &SigningPublicKey, now: UnixMillis) -> Result<Recipient, Error> {
        self.certificate.check_identity(identity)?;
        let device_key = self.certificate.device_key();
        check_signed_prekey(&self.signed_prekey, &device_key, now)?;
        let prekey = match &self.one_time_prekey {
            Some(otk) => {
                if otk.kind != PrekeyKind::OneTime {
                    return Err(Error::Decode(DecodeError::Invalid("one-time prekey kind")));
                }
                otk.verify(&device_key)?;
                let fresh = otk.created_at <= now.plus(MAX_CLOCK_SKEW_MS)
                    && now.since(otk.created_at) <= ONE_TIME_PREKEY_MAX_AGE_MS;
                if fresh {
                    otk.public
                } else {
                    self.signed_prekey.public
                }
            }
            None => self.signed_prekey.public,
        };
        Ok(Recipient {
            identity_key: *identity,
            prekey,
        })
    }
}

/// Checks a signed prekey's kind, signature and age.
pub fn check_signed_prekey(
    spk: &Prekey,
    device_key: &SigningPublicKey,
    now: UnixMillis,
) -> Result<(), Error> {
    if spk.kind != PrekeyKind::Signed {
        return Err(Error::Decode(DecodeError::Invalid("signed prekey kind")));
    }
    spk.verify(device_key)?;
    if spk.created_at > now.plus(MAX_CLOCK_SKEW_MS) {
        return Err(Error::FromTheFuture);
    }
    if now.since(spk.created_at) > SIGNED_PREKEY_MAX_AGE_MS {
        return Err(Error::Expired);
    }
    Ok(())
}

/// A verified recipient device: the identity an envelope is bound to and the prekey it is sealed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient {
    /// The recipient's identity key, bound into the envelope.
    pub identity_key: SigningPublicKey,
    /// The prekey the envelope is sealed to.
    pub prekey: DhPublicKey,
}

impl Codec for PrekeyBundle {
    fn encode(&self, out: &mut Vec<u8>) {
        write_header(out, tag::PREKEY_BUNDLE);
        self.certificate.encode(out);
        self.signed_prekey.encode(out);
        match &self.one_time_prekey {
            Some(otk) => {
                out.put_u8(1);
                otk.encode(out);
            }
            None => out.put_u8(0),
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_header(r, tag::PREKEY_BUNDLE)?;
        let certificate = DeviceCertificate::read(r)?;
        let signed_prekey = Prekey::read(r)?;
        let one_time_prekey = if r.bool("one-time prekey flag")? {
            Some(Prekey::read(r)?)
        } else {
            None
        };
        Ok(Self {
            certificate,
            signed_prekey,
            one_time_prekey,
        })
    }
}

struct SignedEntry {
    prekey: Prekey,
    secret: DhSecret,
}

/// A device's prekey secrets: issues, rotates, finds and erases them.
///
/// A one-time prekey's secret is erased when it is taken, or unused
/// [`ONE_TIME_PREKEY_ERASE_AFTER_MS`] after its creation; a signed prekey's
/// secret is erased [`SIGNED_PREKEY_ERASE_AFTER_MS`] after its creation.
pub struct PrekeyStore {
    current: SignedEntry,
    retired: Vec<SignedEntry>,
    one_time: BTreeMap<DhPublicKey, (DhSecret, UnixMillis)>,
}

impl core::fmt::Debug for PrekeyStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PrekeyStore")
            .field("current", &self.current.prekey.public)
            .field("retired", &self.retired.len())
            .field("one_time", &self.one_time.len())
            .finish()
    }
}

impl PrekeyStore {
    /// A store with a fresh signed prekey and no one-time prekeys.
    pub fn new<R: CryptoRng + ?Sized>(device: &Device, now: UnixMillis, rng: &mut R) -> Self {
        Self {
            current: new_signed(device, now, rng),
            retired: Vec::new(),
            one_time: BTreeMap::new(),
        }
    }

    /// The signed prekey to publish now.
    pub fn signed_prekey(&self) -> &Prekey {
        &self.current.prekey
    }

    /// How many one-time prekeys are unused.
    pub fn one_time_count(&self) -> usize {
        self.one_time.len()
    }

    /// Issues up to `count` one-time prekeys, never holding more than
    /// [`MAX_ONE_TIME_PREKEYS`]. Returns the public halves to publish.
    pub fn issue_one_time<R: CryptoRng + ?Sized>(
        &mut self,
        device: &Device,
        count: usize,
        now: UnixMillis,
        rng: &mut R,
    ) -> Vec<Prekey> {
        let room = MAX_ONE_TIME_PREKEYS.saturating_sub(self.one_time.len());
        (0..count.min(room))
            .map(|_| {
                let secret = DhSecret::generate(rng);
                let public = secret.public();
                self.one_time.insert(public, (secret, now));
                Prekey::issue(device, PrekeyKind::OneTime, public, now)
            })
            .collect()
    }

    /// Replaces the signed prekey if it is due, returning the new one to
    /// publish. Then erases every secret past its window ([`PrekeyStore::erase_expired`]).
    pub fn rotate_if_due<R: CryptoRng + ?Sized>(
        &mut self,
        device: &Device,
        now: UnixMillis,
        rng: &mut R,
    ) -> Option<Prekey> {
        // A signed prekey dated in the future (the clock was ahead when it
        // was made, and has been put right since) is refused by relays and
        // by senders (§5.4): it is replaced at once, or the device would be
        // unreachable until the clock caught up with it.
        let from_the_future = self.current.prekey.created_at > now.plus(MAX_CLOCK_SKEW_MS);
        let due = from_the_future
            || now.since(self.current.prekey.created_at) >= SIGNED_PREKEY_ROTATION_MS;
        let rotated = due.then(|| {
            let old = core::mem::replace(&mut self.current, new_signed(device, now, rng));
            self.retired.push(old);
            if self.retired.len() > MAX_RETIRED_SIGNED_PREKEYS {
                self.retired.remove(0);
            }
            self.current.prekey.clone()
        });
        self.erase_expired(now);
        rotated
    }

    /// Erases every retired signed prekey older than [`SIGNED_PREKEY_ERASE_AFTER_MS`]
    /// and every unused one-time prekey older than [`ONE_TIME_PREKEY_ERASE_AFTER_MS`].
    /// The current signed prekey is erased only by rotation.
    pub fn erase_expired(&mut self, now: UnixMillis) {
        self.retired
            .retain(|e| now.since(e.prekey.created_at) < SIGNED_PREKEY_ERASE_AFTER_MS);
        self.one_time
            .retain(|_, (_, created)| now.since(*created) < ONE_TIME_PREKEY_ERASE_AFTER_MS);
        // One made while the clock was ahead counts from now, so that it is
        // erased on time after the clock is put right, not that much later.
        for (_, created) in self.one_time.values_mut() {
            if *created > now {
                *created = now;
            }
        }
    }

    /// The secret for `public`, for opening one envelope. A one-time prekey's
    /// secret leaves the store: once the caller drops it, it is gone.
    pub fn take_secret(&mut self, public: &DhPublicKey) -> Option<DhSecret> {
        if let Some((s, _)) = self.one_time.remove(public) {
            return Some(s);
        }
        core::iter::once(&self.current)
            .chain(self.retired.iter())
            .find(|e| e.prekey.public == *public)
            .map(|e| e.secret.clone())
    }
}

/// A signed prekey with its secret, as held in a [`PrekeySnapshot`].
#[derive(Debug, Clone)]
pub struct SignedPrekeySecret {
    /// The signed prekey (public half, creation time, device signature).
    pub prekey: Prekey,
    /// Its X25519 secret.
    pub secret: DhSecret,
}

/// An unused one-time prekey with its secret, as held in a [`PrekeySnapshot`].
#[derive(Debug, Clone)]
pub struct OneTimePrekeySecret {
    /// The public half.
    pub public: DhPublicKey,
    /// Its X25519 secret.
    pub secret: DhSecret,
    /// When it was issued.
    pub created_at: UnixMillis,
}

/// Everything a [`PrekeyStore`] holds, secrets included, for a caller that
/// persists it ([`PrekeyStore::snapshot`], [`PrekeyStore::restore`]).
/// Handle with care: it is the device's ability to open envelopes.
#[derive(Debug, Clone)]
pub struct PrekeySnapshot {
    /// The signed prekey published now.
    pub current: SignedPrekeySecret,
    /// Retired signed prekeys still kept, oldest first.
    pub retired: Vec<SignedPrekeySecret>,
    /// Unused one-time prekeys, in public-key order.
    pub one_time: Vec<OneTimePrekeySecret>,
}

impl PrekeyStore {
    /// A copy of every prekey and secret the store holds.
    pub fn snapshot(&self) -> PrekeySnapshot {
        let signed = |e: &SignedEntry| SignedPrekeySecret {
            prekey: e.prekey.clone(),
            secret: e.secret.clone(),
        };
        PrekeySnapshot {
            current: signed(&self.current),
            retired: self.retired.iter().map(signed).collect(),
            one_time: self
                .one_time
                .iter()
                .map(|(public, (secret, created_at))| OneTimePrekeySecret {
                    public: *public,
                    secret: secret.clone(),
                    created_at: *created_at,
                })
                .collect(),
        }
    }

    /// Rebuilds a store from a snapshot of `device`'s store. Fails if a
    /// signed prekey is not a signed prekey of `device`, if any secret does
    /// not match its public key, or if there are more retired or one-time
    /// prekeys than a store ever holds.
    pub fn restore(device: &Device, snapshot: PrekeySnapshot) -> Result<Self, Error> {
        let device_key = device.certificate().device_key();
        let signed = |s: SignedPrekeySecret| -> Result<SignedEntry, Error> {
            if s.prekey.kind != PrekeyKind::Signed {
                return Err(Error::InvalidParams("a signed prekey of another kind"));
            }
            s.prekey.verify(&device_key)?;
            if s.secret.public() != s.prekey.public {
                return Err(Error::InvalidParams("a prekey secret does not match"));
            }
            Ok(SignedEntry {
                prekey: s.prekey,
                secret: s.secret,
            })
        };
        if snapshot.retired.len() > MAX_RETIRED_SIGNED_PREKEYS {
            return Err(Error::InvalidParams("too many retired signed prekeys"));
        }
        if snapshot.one_time.len() > MAX_ONE_TIME_PREKEYS {
            return Err(Error::InvalidParams("too many one-time prekeys"));
        }
        let current = signed(snapshot.current)?;
        let retired = snapshot
            .retired
            .into_iter()
            .map(signed)
            .collect::<Result<Vec<_>, _>>()?;
        let mut one_time = BTreeMap::new();
        for o in snapshot.one_time {
            if o.secret.public() != o.public {
                return Err(Error::InvalidParams("a prekey secret does not match"));
            }
            one_time.insert(o.public, (o.secret, o.created_at));
        }
        Ok(Self {
            current,
            retired,
            one_time,
        })
    }
}

fn new_signed<R: CryptoRng + ?Sized>(device: &Device, now: UnixMillis, rng: &mut R) -> SignedEntry {
    let secret = DhSecret::generate(rng);
    let prekey = Prekey::issue(device, PrekeyKind::Signed, secret.public(), now);
    SignedEntry { prekey, secret }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::identity::Identity;

    #[test]
    fn snapshot_restore_round_trip() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let t0 = UnixMillis(1_800_000_000_000);
        let id = Identity::generate(&mut rng);
        let dev = id.new_device(1, t0, &mut rng);
        let mut store = PrekeyStore::new(&dev, t0, &mut rng);
        let otks = store.issue_one_time(&dev, 3, t0, &mut rng);
        let t1 = t0.plus(SIGNED_PREKEY_ROTATION_MS);
        let old_spk = store.signed_prekey().clone();
        store.rotate_if_due(&dev, t1, &mut rng).unwrap();

        let snap = store.snapshot();
        assert_eq!(snap.retired.len(), 1);
        assert_eq!(snap.one_time.len(), 3);
        let mut back = PrekeyStore::restore(&dev, snap).unwrap();
        assert_eq!(back.signed_prekey(), store.signed_prekey());
        assert_eq!(back.one_time_count(), 3);
        for p in &otks {
            assert_eq!(
                back.take_secret(&p.public()).unwrap().as_bytes(),
                store.take_secret(&p.public()).unwrap().as_bytes()
            );
        }
        assert!(back.take_secret(&old_spk.public()).is_some());
        assert_eq!(back.one_time_count(), 0);

        // Another device's store, or a secret that does not match, is refused.
        let other = id.new_device(2, t1, &mut rng);
        assert!(PrekeyStore::restore(&other, store.snapshot()).is_err());
        let mut bad = store.snapshot();
        bad.current.secret = DhSecret::generate(&mut rng);
        assert!(PrekeyStore::restore(&dev, bad).is_err());
    }

    #[test]
    fn a_signed_prekey_from_the_future_is_replaced_at_once_and_kept_to_open_with() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let real = UnixMillis(1_800_000_000_000);
        // Made while the clock ran 15 days ahead.
        let ahead = real.plus(15 * 24 * 3600 * 1000);
        let id = Identity::generate(&mut rng);
        let dev = id.new_device(1, real, &mut rng);
        let mut store = PrekeyStore::new(&dev, ahead, &mut rng);
        let future = store.signed_prekey().clone();
        let otk = store.issue_one_time(&dev, 1, ahead, &mut rng).remove(0);
        // Within the allowed skew it stays; beyond it, the clock put right
        // replaces it with one that relays and senders accept.
        let near = ahead.0 - MAX_CLOCK_SKEW_MS;
        assert!(
            store
                .rotate_if_due(&dev, UnixMillis(near), &mut rng)
                .is_none()
        );
        let fresh = store.rotate_if_due(&dev, real, &mut rng).expect("replaced");
        assert_eq!(fresh.created_at(), real);
        assert_eq!(store.signed_prekey(), &fresh);
        check_signed_prekey(&fresh, &dev.certificate().device_key(), real)
            .expect("a sender accepts it");
        assert_eq!(
            check_signed_prekey(&future, &dev.certificate().device_key(), real),
            Err(Error::FromTheFuture)
        );
        // The old secret still opens what was sealed to it.
        assert!(store.take_secret(&future.public()).is_some());
        // A one-time prekey from the future is erased on time after the
        // clock is put right, counted from then.
        store.erase_expired(real);
        store.erase_expired(real.plus(ONE_TIME_PREKEY_ERASE_AFTER_MS));
        assert!(store.take_secret(&otk.public()).is_none());
    }
}
