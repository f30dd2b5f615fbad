//! Device certificates and prekeys (RELAY.md §4, §5.1). Prekeys are public
//! and stored in plaintext.

use mayfly_protocol::{
    Codec, DeviceCertificate, MAX_CLOCK_SKEW_MS, MAX_PREKEYS_PER_PUBLISH,
    ONE_TIME_PREKEY_MAX_AGE_MS, Prekey, PrekeyBundle, PrekeyKind, SigningPublicKey, UnixMillis,
};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::erase::get_identity;
use super::records::IdentityRecord;
use super::tables::{IDENTITIES, Tables};
use super::{FF32, RelayStore, StoreError, ZERO32};

impl RelayStore {
    /// Records the device certificate of a login (RELAY.md §4): refuses one
    /// with a lower serial than the highest on record
    /// ([`StoreError::Forbidden`]) and records a higher one, which drops the
    /// superseded device's prekeys. The first certificate of an identity makes
    /// the store serve its mailbox (within
    /// [`super::StoreLimits::max_identities`]).
    pub fn record_certificate(&self, cert: &DeviceCertificate) -> Result<(), StoreError> {
        let _w = self.writer();
        let txn = self.db.begin_write()?;
        {
            let mut t = Tables::open(&txn)?;
            apply_certificate(&mut t, cert, self.limits.max_identities)?;
        }
        self.commit(txn)?;
        Ok(())
    }

    /// The highest device certificate serial seen for `identity`.
    pub fn device_serial(&self, identity: &SigningPublicKey) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read()?;
        let identities = txn.open_table(IDENTITIES)?;
        let rec = identities
            .get(&identity.to_bytes())?
            .map(|g| IdentityRecord::decode(g.value()))
            .transpose()?;
        Ok(rec.map(|r| r.certificate.serial()))
    }

    /// Publishes prekeys of the device `cert` certifies (the logged-in one)
    /// at `now` (RELAY.md §5.1). Every prekey must be signed by the device
    /// key, be of the right kind (signed, then one-time) and not lie in the
    /// future ([`StoreError::Invalid`]). The newest signed prekey (by
    /// `created_at`) is kept, unless the one on record lies more than
    /// `MAX_CLOCK_SKEW_MS` in the future: any valid one replaces it. One-time prekeys are added; the oldest, and any
    /// a sender would pass over as too old, are dropped beyond
    /// [`super::StoreLimits::max_one_time_prekeys`].
    pub fn publish_prekeys(
        &self,
        cert: &DeviceCertificate,
        signed: Prekey,
        one_time: Vec<Prekey>,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        if one_time.len() > MAX_PREKEYS_PER_PUBLISH {
            return Err(StoreError::TooLarge("one-time prekeys"));
        }
        let device = cert.device_key();
        check_prekey(&signed, PrekeyKind::Signed, &device, now)?;
        for p in &one_time {
            check_prekey(p, PrekeyKind::OneTime, &device, now)?;
        }
        let id = cert.identity_key().to_bytes();
        let _w = self.writer();
        let txn = self.db.begin_write()?;
        {
            let mut t = Tables::open(&txn)?;
            let mut rec = apply_certificate(&mut t, cert, self.limits.max_identities)?;
            let current = t
                .signed_prekeys
                .get(&id)?
                .map(|g| Prekey::decode(g.value()))
                .transpose()
                .map_err(|_| StoreError::corrupt("a stored prekey does not decode"))?;
            // The newest is kept, unless the one on record lies in the
            // future: it was made while the device's clock (or this
            // relay's) was ahead, and no sender with a clock put right
            // accepts it (SPEC §5.4), so any valid one replaces it.
            if current.is_none_or(|c| {
                c.created_at() < signed.created_at() || c.created_at() > now.plus(MAX_CLOCK_SKEW_MS)
            }) {
                t.signed_prekeys.insert(&id, signed.to_bytes().as_slice())?;
            }
            for p in &one_time {
                let public = p.public().to_bytes();
                let key = (&id, p.created_at().0, &public);
                if t.one_time_prekeys.get(key)?.is_none() {
                    t.one_time_prekeys.insert(key, p.to_bytes().as_slice())?;
                    rec.one_time += 1;
                }
            }
            // Oldest first: drop the stale, then the oldest beyond the cap.
            let cutoff = now.0.saturating_sub(ONE_TIME_PREKEY_MAX_AGE_MS);
            let cap = self.limits.max_one_time_prekeys;
            let mut drop = Vec::new();
            for row in t
                .one_time_prekeys
                .range((&id, 0u64, &ZERO32)..=(&id, u64::MAX, &FF32))?
            {
                let (k, _) = row?;
                let (_, created, public) = k.value();
                let excess = rec.one_time - drop.len() as u32 > cap;
                if !(excess || created < cutoff) {
                    break;
                }
                drop.push((created, *public));
            }
            for (created, public) in &drop {
                t.one_time_prekeys.remove((&id, *created, public))?;
            }
            rec.one_time -= drop.len() as u32;
            t.identities.insert(&id, rec.encode().as_slice())?;
        }
        self.commit(txn)?;
        Ok(())
    }

    /// A prekey bundle for `identity` at `now`: its certificate, its signed
    /// prekey and, if one is left, one one-time prekey (the oldest a sender
    /// would still use), which is deleted durably before this returns, so
    /// each is handed out once. `None` if the store has no signed prekey for
    /// the identity.
    pub fn take_bundle(
        &self,
        identity: &SigningPublicKey,
        now: UnixMillis,
    ) -> Result<Option<PrekeyBundle>, StoreError> {
        let id = identity.to_bytes();
        let _w = self.writer();
        let txn = self.db.begin_write()?;
        let bundle;
        let mut changed = false;
        {
            let mut t = Tables::open(&txn)?;
            let Some(mut rec) = get_identity(&t, &id)? else {
                return Ok(None);
            };
            let Some(signed) = t
                .signed_prekeys
                .get(&id)?
                .map(|g| Prekey::decode(g.value()))
                .transpose()
                .map_err(|_| StoreError::corrupt("a stored prekey does not decode"))?
            else {
                return Ok(None);
            };
            let cutoff = now.0.saturating_sub(ONE_TIME_PREKEY_MAX_AGE_MS);
            let mut stale = Vec::new();
            let mut taken = None;
            for row in t
                .one_time_prekeys
                .range((&id, 0u64, &ZERO32)..=(&id, u64::MAX, &FF32))?
            {
                let (k, v) = row?;
                let (_, created, public) = k.value();
                if created < cutoff {
                    stale.push((created, *public));
                    continue;
                }
                let p = Prekey::decode(v.value())
                    .map_err(|_| StoreError::corrupt("a stored prekey does not decode"))?;
                taken = Some(((created, *public), p));
                break;
            }
            for (created, public) in stale.iter().chain(taken.iter().map(|(k, _)| k)) {
                t.one_time_prekeys.remove((&id, *created, public))?;
                rec.one_time = rec.one_time.saturating_sub(1);
                changed = true;
            }
            if changed {
                t.identities.insert(&id, rec.encode().as_slice())?;
            }
            bundle = PrekeyBundle {
                certificate: rec.certificate,
                signed_prekey: signed,
                one_time_prekey: taken.map(|(_, p)| p),
            };
        }
        if changed {
            self.commit(txn)?;
        }
        Ok(Some(bundle))
    }
}

/// Checks a published prekey's kind, signature and time.
fn check_prekey(
    p: &Prekey,
    kind: PrekeyKind,
    device: &SigningPublicKey,
    now: UnixMillis,
) -> Result<(), StoreError> {
    if p.kind() != kind {
        return Err(StoreError::Invalid("prekey kind"));
    }
    p.verify(device)
        .map_err(|_| StoreError::Invalid("prekey signature"))?;
    if p.created_at() > now.plus(MAX_CLOCK_SKEW_MS) {
        return Err(StoreError::Invalid("prekey from the future"));
    }
    Ok(())
}

/// Applies a device certificate to the identity's record (creating it), and
/// returns the record (written back by the caller or here).
fn apply_certificate(
    t: &mut Tables,
    cert: &DeviceCertificate,
    max_identities: u64,
) -> Result<IdentityRecord, StoreError> {
    let id = cert.identity_key().to_bytes();
    let rec = match get_identity(t, &id)? {
        None => {
            if t.identities.len()? >= max_identities {
                return Err(StoreError::QuotaExceeded("identities"));
            }
            IdentityRecord::new(cert.clone())
        }
        Some(rec) if cert.serial() < rec.certificate.serial() => {
            return Err(StoreError::Forbidden(
                "a newer device certificate is on record",
            ));
        }
        Some(rec) if cert.serial() == rec.certificate.serial() => {
            if *cert != rec.certificate {
                return Err(StoreError::Conflict(
                    "another device certificate with this serial",
                ));
            }
            return Ok(rec);
        }
        Some(mut rec) => {
            // A new device: the old device's prekeys are of no use to senders.
            rec.certificate = cert.clone();
            t.signed_prekeys.remove(&id)?;
            let old: Vec<(u64, [u8; 32])> = t
                .one_time_prekeys
                .range((&id, 0u64, &ZERO32)..=(&id, u64::MAX, &FF32))?
                .map(|r| r.map(|(k, _)| (k.value().1, *k.value().2)))
                .collect::<Result<_, _>>()?;
            for (created, public) in &old {
                t.one_time_prekeys.remove((&id, *created, public))?;
            }
            rec.one_time = 0;
            rec
        }
    };
    t.identities.insert(&id, rec.encode().as_slice())?;
    Ok(rec)
}
