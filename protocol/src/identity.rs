//! Identities, devices and device certificates.
//!
//! An identity is a long-term Ed25519 key. It certifies exactly one active
//! device at a time: each certificate carries a serial number, and a higher
//! serial supersedes every lower one.

use rand_core::CryptoRng;

use crate::codec::{Codec, Reader, Writer, read_header, tag, write_header};
use crate::error::{DecodeError, Error};
use crate::keys::{SigningPublicKey, SigningSecret};
use crate::time::UnixMillis;

/// Signature context of device certificates.
pub const DEVICE_CERT_CONTEXT: &str = "mayfly/v1/device-certificate";

/// A person's long-term identity key pair.
#[derive(Debug, Clone)]
pub struct Identity {
    secret: SigningSecret,
}

impl Identity {
    /// A new identity drawn from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self {
            secret: SigningSecret::generate(rng),
        }
    }

    /// The identity with this secret key.
    pub fn from_secret(secret: SigningSecret) -> Self {
        Self { secret }
    }

    /// The secret key.
    pub fn secret(&self) -> &SigningSecret {
        &self.secret
    }

    /// The public identity key, which contacts pin.
    pub fn public(&self) -> SigningPublicKey {
        self.secret.public()
    }

    /// Creates a new device key and certifies it with `serial`, which must exceed
    /// the serial of every device certified before.
    pub fn new_device<R: CryptoRng + ?Sized>(
        &self,
        serial: u64,
        now: UnixMillis,
        rng: &mut R,
    ) -> Device {
        let secret = SigningSecret::generate(rng);
        let certificate = self.certify(secret.public(), serial, now);
        Device {
            secret,
            certificate,
        }
    }

    /// Certifies `device_key` as this identity's device number `serial`.
    pub fn certify(
        &self,
        device_key: SigningPublicKey,
        serial: u64,
        now: UnixMillis,
    ) -> DeviceCertificate {
        let mut cert = DeviceCertificate {
            identity_key: self.public(),
            device_key,
            serial,
            issued_at: now,
            signature: [0; 64],
        };
        cert.signature = self.secret.sign(DEVICE_CERT_CONTEXT, &cert.signed_bytes());
        cert
    }
}

/// An identity's statement that `device_key` is its device number `serial`.
///
/// Decoding checks the signature, so a `DeviceCertificate` value is always
/// validly signed by its `identity_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificate {
    identity_key: SigningPublicKey,
    device_key: SigningPublicKey,
    serial: u64,
    issued_at: UnixMillis,
    signature: [u8; 64],
}

impl DeviceCertificate {
    /// Encoded length in bytes.
    pub const LEN: usize = 2 + 32 + 32 + 8 + 8 + 64;

    /// The certifying identity.
    pub fn identity_key(&self) -> SigningPublicKey {
        self.identity_key
    }
    /// The certified device key.
    pub fn device_key(&self) -> SigningPublicKey {
        self.device_key
    }
    /// The serial number: higher supersedes lower.
    pub fn serial(&self) -> u64 {
        self.serial
    }
    /// When the identity issued it.
    pub fn issued_at(&self) -> UnixMillis {
        self.issued_at
    }

    /// True if `self` supersedes `other`: same identity, higher serial.
    pub fn supersedes(&self, other: &DeviceCertificate) -> bool {
        self.identity_key == other.identity_key && self.serial > other.serial
    }

    /// Fails unless this certificate was issued by `identity`.
    pub fn check_identity(&self, identity: &SigningPublicKey) -> Result<(), Error> {
        if self.identity_key == *identity {
            Ok(())
        } else {
            Err(Error::WrongSigner)
        }
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        write_header(&mut out, tag::DEVICE_CERTIFICATE);
        out.put(&self.identity_key.to_bytes());
        out.put(&self.device_key.to_bytes());
        out.put_u64(self.serial);
        out.put_u64(self.issued_at.0);
        out
    }
}

impl Codec for DeviceCertificate {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put(&self.signed_bytes());
        out.put(&self.signature);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.remaining();
        read_header(r, tag::DEVICE_CERTIFICATE)?;
        let cert = Self {
            identity_key: SigningPublicKey::read(r)?,
            device_key: SigningPublicKey::read(r)?,
            serial: r.u64()?,
            issued_at: UnixMillis(r.u64()?),
            signature: r.array()?,
        };
        debug_assert_eq!(start - r.remaining(), Self::LEN);
        cert.identity_key
            .verify(
                DEVICE_CERT_CONTEXT,
                &cert.signed_bytes(),
                &cert.signature,
                "device certificate",
            )
            .map_err(|_| DecodeError::BadSignature("device certificate"))?;
        Ok(cert)
    }
}

/// A device: its signing key and the certificate that binds it to an identity.
#[derive(Debug, Clone)]
pub struct Device {
    secret: SigningSecret,
    certificate: DeviceCertificate,
}

impl Device {
    /// Reassembles a device from its stored parts, checking that they match.
    pub fn from_parts(
        secret: SigningSecret,
        certificate: DeviceCertificate,
    ) -> Result<Self, Error> {
        if secret.public() != certificate.device_key {
            return Err(Error::WrongSigner);
        }
        Ok(Self {
            secret,
            certificate,
        })
    }

    /// The device's signing key.
    pub fn secret(&self) -> &SigningSecret {
        &self.secret
    }

    /// The device certificate.
    pub fn certificate(&self) -> &DeviceCertificate {
        &self.certificate
    }

    /// The identity this device belongs to.
    pub fn identity_key(&self) -> SigningPublicKey {
        self.certificate.identity_key
    }
}
