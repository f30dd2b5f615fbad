//! Revocation records and the ledger that applies them idempotently.
//!
//! A record is signed by the clip's per-message revocation key, whose public
//! half is in the manifest and from which the message id is derived. Anyone —
//! a relay that never saw the clip included — can check a record on its own,
//! and only the sender, who alone holds the secret half, can make one.

use std::collections::BTreeMap;

use crate::codec::{Codec, Reader, Writer, read_header, tag, write_header};
use crate::error::{DecodeError, Error};
use crate::kdf::MessageId;
use crate::keys::{SigningPublicKey, SigningSecret};
use crate::limits::{MAX_CLIP_TTL_MS, MAX_CLOCK_SKEW_MS};
use crate::time::UnixMillis;

/// Signature context of revocation records.
pub const REVOCATION_CONTEXT: &str = "mayfly/v1/revocation";

/// The sender's signed statement that a message is revoked.
///
/// Decoding checks that the message id matches the key and that the signature verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    message_id: MessageId,
    revocation_key: SigningPublicKey,
    revoked_at: UnixMillis,
    signature: [u8; 64],
}

impl RevocationRecord {
    /// Encoded length in bytes.
    pub const LEN: usize = 2 + 32 + 32 + 8 + 64;

    /// Signs a revocation with a clip's revocation key.
    pub fn sign(key: &SigningSecret, now: UnixMillis) -> Self {
        let revocation_key = key.public();
        let mut rec = Self {
            message_id: MessageId::for_revocation_key(&revocation_key),
            revocation_key,
            revoked_at: now,
            signature: [0; 64],
        };
        rec.signature = key.sign(REVOCATION_CONTEXT, &rec.signed_bytes());
        rec
    }

    /// The revoked message.
    pub fn message_id(&self) -> MessageId {
        self.message_id
    }
    /// The key that signed it, which a manifest for this message must carry.
    pub fn revocation_key(&self) -> SigningPublicKey {
        self.revocation_key
    }
    /// When the sender revoked it.
    pub fn revoked_at(&self) -> UnixMillis {
        self.revoked_at
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        write_header(&mut out, tag::REVOCATION);
        out.put(&self.message_id.0);
        out.put(&self.revocation_key.to_bytes());
        out.put_u64(self.revoked_at.0);
        out
    }
}

impl Codec for RevocationRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put(&self.signed_bytes());
        out.put(&self.signature);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_header(r, tag::REVOCATION)?;
        let rec = Self {
            message_id: MessageId(r.array()?),
            revocation_key: SigningPublicKey::read(r)?,
            revoked_at: UnixMillis(r.u64()?),
            signature: r.array()?,
        };
        if MessageId::for_revocation_key(&rec.revocation_key) != rec.message_id {
            return Err(DecodeError::Invalid(
                "message id does not match revocation key",
            ));
        }
        rec.revocation_key
            .verify(
                REVOCATION_CONTEXT,
                &rec.signed_bytes(),
                &rec.signature,
                "revocation",
            )
            .map_err(|_| DecodeError::BadSignature("revocation record"))?;
        Ok(rec)
    }
}

/// What applying a record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The message was not revoked before; it is now. The caller erases its keys and data.
    Revoked,
    /// The message was already revoked; nothing changed.
    AlreadyRevoked,
}

/// A tombstone: a revoked message id, kept until no deposit of it can still be live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    /// When the sender revoked the message.
    pub revoked_at: UnixMillis,
    /// When the tombstone may be dropped.
    pub keep_until: UnixMillis,
}

/// The set of revoked message ids. Applying the same record twice is harmless,
/// records for messages never seen become tombstones, and tombstones are
/// collected once no copy of the message can still be unexpired.
#[derive(Debug, Clone)]
pub struct RevocationLedger {
    tombstones: BTreeMap<MessageId, Tombstone>,
    capacity: usize,
}

impl RevocationLedger {
    /// An empty ledger holding at most `capacity` tombstones.
    pub fn new(capacity: usize) -> Self {
        Self {
            tombstones: BTreeMap::new(),
            capacity,
        }
    }

    /// Applies a verified record at time `now`.
    pub fn apply(&mut self, rec: &RevocationRecord, now: UnixMillis) -> Result<Applied, Error> {
        if rec.revoked_at > now.plus(MAX_CLOCK_SKEW_MS) {
            return Err(Error::FromTheFuture);
        }
        if self.tombstones.contains_key(&rec.message_id) {
            return Ok(Applied::AlreadyRevoked);
        }
        if self.tombstones.len() >= self.capacity {
            return Err(Error::Full("revocation ledger"));
        }
        // A message revoked at t was created no later than t + skew and lives at most MAX_CLIP_TTL.
        let keep_until = rec
            .revoked_at
            .max(now)
            .plus(MAX_CLIP_TTL_MS + 2 * MAX_CLOCK_SKEW_MS);
        self.tombstones.insert(
            rec.message_id,
            Tombstone {
                revoked_at: rec.revoked_at,
                keep_until,
            },
        );
        Ok(Applied::Revoked)
    }

    /// True if `id` is revoked: a deposit or envelope for it must be refused.
    pub fn is_revoked(&self, id: &MessageId) -> bool {
        self.tombstones.contains_key(id)
    }

    /// The tombstone of `id`, if any.
    pub fn get(&self, id: &MessageId) -> Option<&Tombstone> {
        self.tombstones.get(id)
    }

    /// Number of tombstones held.
    pub fn len(&self) -> usize {
        self.tombstones.len()
    }

    /// True if no tombstones are held.
    pub fn is_empty(&self) -> bool {
        self.tombstones.is_empty()
    }

    /// Drops tombstones past `keep_until`, returning how many.
    pub fn collect(&mut self, now: UnixMillis) -> usize {
        let before = self.tombstones.len();
        self.tombstones.retain(|_, t| t.keep_until > now);
        before - self.tombstones.len()
    }

    /// Iterates over the tombstones, for persisting them.
    pub fn iter(&self) -> impl Iterator<Item = (&MessageId, &Tombstone)> {
        self.tombstones.iter()
    }

    /// Restores a persisted tombstone (bounded by the capacity).
    pub fn restore(&mut self, id: MessageId, tombstone: Tombstone) -> Result<(), Error> {
        if !self.tombstones.contains_key(&id) && self.tombstones.len() >= self.capacity {
            return Err(Error::Full("revocation ledger"));
        }
        self.tombstones.insert(id, tombstone);
        Ok(())
    }
}

impl Default for RevocationLedger {
    fn default() -> Self {
        Self::new(crate::limits::DEFAULT_LEDGER_CAPACITY)
    }
}
