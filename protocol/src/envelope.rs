//! Envelopes: a clip's content key wrapped for one recipient device.
//!
//! An envelope is one `Noise_N_25519_ChaChaPoly_BLAKE2s` handshake message
//! from a fresh ephemeral key to the recipient's prekey. Its payload names the
//! sender (device certificate), the message and manifest, carries the content
//! key, and ends with the sender device's signature over its certificate, the
//! recipient, the prekey, the message id and the manifest hash. Relays see only the prekey
//! the envelope is sealed to.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::codec::{Codec, Reader, Writer, read_header, tag, write_header};
use crate::error::{DecodeError, Error};
use crate::identity::{Device, DeviceCertificate};
use crate::kdf::{ContentKey, MessageId};
use crate::keys::{DhPublicKey, DhSecret, SigningPublicKey};
use crate::manifest::Manifest;
use crate::noise::{ENVELOPE_NOISE_PARAMS, InjectedResolver};
use crate::open::ClipOpener;
use crate::prekey::Recipient;
use crate::seal::SealedClip;
use crate::time::UnixMillis;

/// Noise prologue prefix and signature context of envelopes.
pub const ENVELOPE_CONTEXT: &str = "mayfly/v1/envelope";
/// Length of the envelope payload (the Noise plaintext).
pub const PAYLOAD_LEN: usize = DeviceCertificate::LEN + 32 + 32 + 32 + 64;
/// Length of the Noise message: ephemeral key, payload, tag.
pub const NOISE_MESSAGE_LEN: usize = 32 + PAYLOAD_LEN + 16;

/// A content key wrapped for one recipient device.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    prekey: DhPublicKey,
    noise_message: Box<[u8; NOISE_MESSAGE_LEN]>,
}

impl core::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Envelope")
            .field("prekey", &self.prekey)
            .finish_non_exhaustive()
    }
}

/// What an opened envelope tells its recipient.
#[derive(Debug)]
pub struct EnvelopeContents {
    /// The sender's device certificate (signature checked). The caller checks
    /// that its identity is a contact and that its serial is current.
    pub sender: DeviceCertificate,
    /// The message the envelope is for.
    pub message_id: MessageId,
    /// BLAKE3 hash of the manifest the sender signed.
    pub manifest_hash: [u8; 32],
    /// The clip's content key.
    pub content_key: ContentKey,
}

impl Envelope {
    /// Encoded length in bytes.
    pub const LEN: usize = 2 + 32 + NOISE_MESSAGE_LEN;

    /// Wraps `clip`'s content key for `recipient`, signed by `sender`.
    pub fn seal<R: CryptoRng + ?Sized>(
        clip: &SealedClip,
        sender: &Device,
        recipient: &Recipient,
        rng: &mut R,
    ) -> Result<Self, Error> {
        let message_id = clip.message_id();
        let manifest_hash = clip.manifest().hash();
        let signature = sender.secret().sign(
            ENVELOPE_CONTEXT,
            &signed_bytes(sender.certificate(), recipient, &message_id, &manifest_hash),
        );
        let mut payload = Zeroizing::new(Vec::with_capacity(PAYLOAD_LEN));
        sender.certificate().encode(&mut payload);
        payload.put(&message_id.0);
        payload.put(&manifest_hash);
        payload.put(clip.content_key().as_bytes());
        payload.put(&signature);
        debug_assert_eq!(payload.len(), PAYLOAD_LEN);

        let prologue = prologue(&recipient.identity_key);
        let mut hs = snow::Builder::with_resolver(
            ENVELOPE_NOISE_PARAMS
                .parse()
                .expect("valid Noise parameters"),
            Box::new(InjectedResolver::new(rng)),
        )
        .prologue(&prologue)
        .and_then(|b| b.remote_public_key(recipient.prekey.as_bytes()))
        .and_then(|b| b.build_initiator())
        .map_err(|_| Error::InvalidParams("noise initiator"))?;
        let mut noise_message = Box::new([0u8; NOISE_MESSAGE_LEN]);
        let n = hs
            .write_message(&payload, noise_message.as_mut_slice())
            .map_err(|_| Error::InvalidParams("noise message"))?;
        debug_assert_eq!(n, NOISE_MESSAGE_LEN);
        Ok(Self {
            prekey: recipient.prekey,
            noise_message,
        })
    }

    /// The prekey this envelope is sealed to: the recipient looks up its secret.
    pub fn prekey(&self) -> DhPublicKey {
        self.prekey
    }

    /// Unwraps the envelope with the recipient's identity key and the prekey's
    /// secret. Every failure is [`Error::Decrypt`].
    pub fn open(
        &self,
        recipient_identity: &SigningPublicKey,
        prekey_secret: &DhSecret,
    ) -> Result<EnvelopeContents, Error> {
        if prekey_secret.public() != self.prekey {
            return Err(Error::Decrypt);
        }
        let prologue = prologue(recipient_identity);
        let mut hs = snow::Builder::with_resolver(
            ENVELOPE_NOISE_PARAMS
                .parse()
                .expect("valid Noise parameters"),
            Box::new(InjectedResolver::without_rng()),
        )
        .prologue(&prologue)
        .and_then(|b| b.local_private_key(prekey_secret.as_bytes()))
        .and_then(|b| b.build_responder())
        .map_err(|_| Error::Decrypt)?;
        let mut payload = Zeroizing::new([0u8; PAYLOAD_LEN + 16]);
        let n = hs
            .read_message(self.noise_message.as_slice(), payload.as_mut_slice())
            .map_err(|_| Error::Decrypt)?;
        if n != PAYLOAD_LEN {
            return Err(Error::Decrypt);
        }
        let mut r = Reader::new(&payload[..PAYLOAD_LEN]);
        let sender = DeviceCertificate::read(&mut r).map_err(|_| Error::Decrypt)?;
        let message_id = MessageId(r.array().map_err(|_| Error::Decrypt)?);
        let manifest_hash = r.array().map_err(|_| Error::Decrypt)?;
        let content_key = ContentKey(r.array().map_err(|_| Error::Decrypt)?);
        let signature = r.array().map_err(|_| Error::Decrypt)?;
        let recipient = Recipient {
            identity_key: *recipient_identity,
            prekey: self.prekey,
        };
        sender
            .device_key()
            .verify(
                ENVELOPE_CONTEXT,
                &signed_bytes(&sender, &recipient, &message_id, &manifest_hash),
                &signature,
                "envelope",
            )
            .map_err(|_| Error::Decrypt)?;
        Ok(EnvelopeContents {
            sender,
            message_id,
            manifest_hash,
            content_key,
        })
    }
}

impl EnvelopeContents {
    /// Checks that `manifest` is the one the sender signed and starts opening it.
    pub fn open_manifest(&self, manifest: Manifest, now: UnixMillis) -> Result<ClipOpener, Error> {
        if manifest.message_id() != self.message_id || manifest.hash() != self.manifest_hash {
            return Err(Error::Decrypt);
        }
        ClipOpener::new(manifest, &self.content_key, now)
    }
}

fn prologue(recipient_identity: &SigningPublicKey) -> Vec<u8> {
    let mut p = ENVELOPE_CONTEXT.as_bytes().to_vec();
    p.push(0);
    p.extend_from_slice(&recipient_identity.to_bytes());
    p
}

fn signed_bytes(
    sender: &DeviceCertificate,
    recipient: &Recipient,
    id: &MessageId,
    manifest_hash: &[u8; 32],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(DeviceCertificate::LEN + 128);
    sender.encode(&mut m);
    m.put(&recipient.identity_key.to_bytes());
    m.put(recipient.prekey.as_bytes());
    m.put(&id.0);
    m.put(manifest_hash);
    m
}

impl Codec for Envelope {
    fn encode(&self, out: &mut Vec<u8>) {
        write_header(out, tag::ENVELOPE);
        out.put(self.prekey.as_bytes());
        out.put(self.noise_message.as_slice());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_header(r, tag::ENVELOPE)?;
        let prekey = DhPublicKey::read(r)?;
        let noise_message = Box::new(r.array::<NOISE_MESSAGE_LEN>()?);
        // The ephemeral key must be a canonical point of large order, so the
        // one DH of the handshake is contributory.
        let ephemeral: [u8; 32] = noise_message[..32].try_into().expect("32 bytes");
        DhPublicKey::from_bytes(&ephemeral)?;
        Ok(Self {
            prekey,
            noise_message,
        })
    }
}
