//! Fixed encodings of the plaintext bookkeeping records (big-endian).

use mayfly_protocol::codec::Reader;
use mayfly_protocol::{DeviceCertificate, MAX_PEER_ID_LEN};

use super::StoreError;

/// What the store knows about one message (one clip), besides its sealed
/// manifest and chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MessageMeta {
    /// Slot of the data key in the key file.
    pub slot: u32,
    /// The manifest's `expires_at`.
    pub expires_at: u64,
    /// The manifest's declared ciphertext length.
    pub ciphertext_len: u64,
    /// Length of the encoded manifest.
    pub manifest_len: u32,
    /// BLAKE3 of the encoded manifest, to compare a repeated deposit without decrypting.
    pub manifest_hash: [u8; 32],
    /// Distinct chunk hashes the manifest names.
    pub distinct: u32,
    /// How many of those are stored.
    pub present: u32,
    /// Envelopes (pending or complete) that refer to the message.
    pub envelopes: u32,
    /// Of those, the pending ones.
    pub pending: u32,
}

impl MessageMeta {
    const LEN: usize = 4 + 8 + 8 + 4 + 32 + 4 + 4 + 4 + 4;

    pub(super) fn complete(&self) -> bool {
        self.present == self.distinct
    }

    /// Bytes this message reserves against the store quota.
    pub(super) fn reserved(&self) -> u64 {
        self.ciphertext_len + u64::from(self.manifest_len)
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(Self::LEN);
        o.extend_from_slice(&self.slot.to_be_bytes());
        o.extend_from_slice(&self.expires_at.to_be_bytes());
        o.extend_from_slice(&self.ciphertext_len.to_be_bytes());
        o.extend_from_slice(&self.manifest_len.to_be_bytes());
        o.extend_from_slice(&self.manifest_hash);
        o.extend_from_slice(&self.distinct.to_be_bytes());
        o.extend_from_slice(&self.present.to_be_bytes());
        o.extend_from_slice(&self.envelopes.to_be_bytes());
        o.extend_from_slice(&self.pending.to_be_bytes());
        o
    }

    pub(super) fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut r = Reader::new(b);
        let m = (|| {
            let m = Self {
                slot: r.u32()?,
                expires_at: r.u64()?,
                ciphertext_len: r.u64()?,
                manifest_len: r.u32()?,
                manifest_hash: r.array()?,
                distinct: r.u32()?,
                present: r.u32()?,
                envelopes: r.u32()?,
                pending: r.u32()?,
            };
            r.finish()?;
            Ok::<_, mayfly_protocol::DecodeError>(m)
        })();
        m.map_err(|_| StoreError::corrupt("a message record does not decode"))
    }
}

/// The plaintext part of a stored envelope; the sealed envelope follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EnvelopeMeta {
    /// The mailbox sequence number, or 0 while pending.
    pub seq: u64,
    /// When the relay accepted the deposit.
    pub deposited_at: u64,
    /// Bytes charged to the mailbox and the depositor.
    pub charged: u64,
    /// The depositing peer (at most `MAX_PEER_ID_LEN` bytes).
    pub depositor: Vec<u8>,
}

impl EnvelopeMeta {
    /// Encodes the record followed by `sealed`.
    pub(super) fn encode_with(&self, sealed: &[u8]) -> Vec<u8> {
        let mut o = Vec::with_capacity(25 + self.depositor.len() + sealed.len());
        o.extend_from_slice(&self.seq.to_be_bytes());
        o.extend_from_slice(&self.deposited_at.to_be_bytes());
        o.extend_from_slice(&self.charged.to_be_bytes());
        // Checked against MAX_PEER_ID_LEN (64) before it is stored.
        o.push(self.depositor.len() as u8);
        o.extend_from_slice(&self.depositor);
        o.extend_from_slice(sealed);
        o
    }

    /// Decodes the record and returns the sealed envelope after it.
    pub(super) fn decode(b: &[u8]) -> Result<(Self, &[u8]), StoreError> {
        let mut r = Reader::new(b);
        let m = (|| {
            let seq = r.u64()?;
            let deposited_at = r.u64()?;
            let charged = r.u64()?;
            let n = r.u8()? as usize;
            if n > MAX_PEER_ID_LEN {
                return Err(mayfly_protocol::DecodeError::Truncated);
            }
            let depositor = r.take(n)?.to_vec();
            Ok(Self {
                seq,
                deposited_at,
                charged,
                depositor,
            })
        })();
        let m = m.map_err(|_| StoreError::corrupt("an envelope record does not decode"))?;
        let used = r.consumed().len();
        Ok((m, &b[used..]))
    }
}

/// A served identity: its newest device certificate and its mailbox's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IdentityRecord {
    /// The certificate with the highest serial seen.
    pub certificate: DeviceCertificate,
    /// The mailbox's next sequence number (starting at 1, never reused).
    pub next_seq: u64,
    /// Bytes charged to the mailbox.
    pub bytes: u64,
    /// Envelopes (pending and complete) in the mailbox.
    pub entries: u64,
    /// One-time prekeys held.
    pub one_time: u32,
}

impl IdentityRecord {
    pub(super) fn new(certificate: DeviceCertificate) -> Self {
        Self {
            certificate,
            next_seq: 1,
            bytes: 0,
            entries: 0,
            one_time: 0,
        }
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        use mayfly_protocol::Codec;
        let mut o = self.certificate.to_bytes();
        o.extend_from_slice(&self.next_seq.to_be_bytes());
        o.extend_from_slice(&self.bytes.to_be_bytes());
        o.extend_from_slice(&self.entries.to_be_bytes());
        o.extend_from_slice(&self.one_time.to_be_bytes());
        o
    }

    pub(super) fn decode(b: &[u8]) -> Result<Self, StoreError> {
        use mayfly_protocol::Codec;
        let mut r = Reader::new(b);
        let m = (|| {
            let m = Self {
                certificate: DeviceCertificate::read(&mut r)?,
                next_seq: r.u64()?,
                bytes: r.u64()?,
                entries: r.u64()?,
                one_time: r.u32()?,
            };
            r.finish()?;
            Ok::<_, mayfly_protocol::DecodeError>(m)
        })();
        m.map_err(|_| StoreError::corrupt("an identity record does not decode"))
    }
}
