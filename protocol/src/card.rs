//! Contact cards: a signed, self-contained description of how to reach
//! someone, as one copy-pasteable string; and safety numbers.

use crate::codec::{Codec, Reader, Writer, read_header, tag, write_header};
use crate::error::{DecodeError, Error};
use crate::identity::{Device, DeviceCertificate, Identity};
use crate::keys::SigningPublicKey;
use crate::limits::{MAX_DISPLAY_NAME_LEN, MAX_RELAY_ADDR_LEN, MAX_RELAYS};
use crate::prekey::{Prekey, PrekeyKind, Recipient, check_signed_prekey};
use crate::time::UnixMillis;

/// Signature context of contact cards.
pub const CARD_CONTEXT: &str = "mayfly/v1/contact-card";
/// Prefix of a card's text form.
pub const CARD_TEXT_PREFIX: &str = "mfcard1";
/// Context of the safety-number derivation.
pub const CTX_SAFETY_NUMBER: &str = "mayfly 2026-11 v1 safety number";

const BASE32: data_encoding::Encoding = data_encoding::BASE32_NOPAD;

/// A contact card, signed by the identity key it names.
///
/// Decoding checks both the certificate and the card signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactCard {
    certificate: DeviceCertificate,
    signed_prekey: Prekey,
    relays: Vec<String>,
    display_name: String,
    signature: [u8; 64],
}

impl ContactCard {
    /// Makes and signs a card. Fails if a field breaks a limit.
    pub fn new(
        identity: &Identity,
        device: &Device,
        signed_prekey: Prekey,
        relays: Vec<String>,
        display_name: String,
    ) -> Result<Self, Error> {
        device.certificate().check_identity(&identity.public())?;
        if signed_prekey.kind() != PrekeyKind::Signed {
            return Err(Error::InvalidParams("a card carries a signed prekey"));
        }
        signed_prekey.verify(&device.certificate().device_key())?;
        if relays.len() > MAX_RELAYS {
            return Err(Error::InvalidParams("too many relays"));
        }
        if relays.iter().any(|r| {
            r.is_empty() || r.len() > MAX_RELAY_ADDR_LEN || r.chars().any(char::is_control)
        }) {
            return Err(Error::InvalidParams("relay address length or characters"));
        }
        if display_name.len() > MAX_DISPLAY_NAME_LEN || display_name.chars().any(char::is_control) {
            return Err(Error::InvalidParams("display name length or characters"));
        }
        let mut card = Self {
            certificate: device.certificate().clone(),
            signed_prekey,
            relays,
            display_name,
            signature: [0; 64],
        };
        card.signature = identity.secret().sign(CARD_CONTEXT, &card.signed_bytes());
        Ok(card)
    }

    /// The identity key the card speaks for.
    pub fn identity_key(&self) -> SigningPublicKey {
        self.certificate.identity_key()
    }
    /// The current device certificate.
    pub fn certificate(&self) -> &DeviceCertificate {
        &self.certificate
    }
    /// The device's signed prekey when the card was made.
    pub fn signed_prekey(&self) -> &Prekey {
        &self.signed_prekey
    }
    /// Relay addresses (multiaddrs, opaque to this crate).
    pub fn relays(&self) -> &[String] {
        &self.relays
    }
    /// The name the owner chose.
    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// The recipient to seal to from this card alone (its signed prekey), if still fresh at `now`.
    pub fn recipient(&self, now: UnixMillis) -> Result<Recipient, Error> {
        check_signed_prekey(&self.signed_prekey, &self.certificate.device_key(), now)?;
        Ok(Recipient {
            identity_key: self.identity_key(),
            prekey: self.signed_prekey.public(),
        })
    }

    /// The text form: `mfcard1` and lowercase unpadded base32 of the encoding
    /// followed by the first 4 bytes of its BLAKE3 hash.
    pub fn to_text(&self) -> String {
        let mut bytes = self.to_bytes();
        let check = blake3::hash(&bytes);
        bytes.extend_from_slice(&check.as_bytes()[..4]);
        let mut s = String::from(CARD_TEXT_PREFIX);
        s.push_str(&BASE32.encode(&bytes).to_ascii_lowercase());
        s
    }

    /// Parses the text form. Surrounding whitespace is ignored; the rest must
    /// be exactly what [`ContactCard::to_text`] writes.
    pub fn from_text(text: &str) -> Result<Self, DecodeError> {
        let body = text
            .trim()
            .strip_prefix(CARD_TEXT_PREFIX)
            .ok_or(DecodeError::BadPrefix(CARD_TEXT_PREFIX))?;
        // Largest card: fixed parts, all relays and the longest name, plus checksum.
        let max_bytes = Self::MAX_LEN + 4;
        if body.len() > BASE32.encode_len(max_bytes) {
            return Err(DecodeError::TooLong {
                field: "card text",
                limit: BASE32.encode_len(max_bytes),
            });
        }
        if body.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(DecodeError::NonCanonical("card text case"));
        }
        let bytes = BASE32
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| DecodeError::Invalid("card text base32"))?;
        if bytes.len() < 4 {
            return Err(DecodeError::Truncated);
        }
        let (card, check) = bytes.split_at(bytes.len() - 4);
        if blake3::hash(card).as_bytes()[..4] != *check {
            return Err(DecodeError::BadChecksum);
        }
        Self::decode(card)
    }

    /// Largest encoded card.
    pub const MAX_LEN: usize = 2
        + DeviceCertificate::LEN
        + Prekey::LEN
        + 1
        + MAX_RELAYS * (2 + MAX_RELAY_ADDR_LEN)
        + 1
        + MAX_DISPLAY_NAME_LEN
        + 64;

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(&mut out, tag::CONTACT_CARD);
        self.certificate.encode(&mut out);
        self.signed_prekey.encode(&mut out);
        out.put_u8(self.relays.len() as u8);
        for r in &self.relays {
            out.put_string_u16(r);
        }
        out.put_string_u8(&self.display_name);
        out
    }
}

impl Codec for ContactCard {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put(&self.signed_bytes());
        out.put(&self.signature);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_header(r, tag::CONTACT_CARD)?;
        let certificate = DeviceCertificate::read(r)?;
        let signed_prekey = Prekey::read(r)?;
        if signed_prekey.kind() != PrekeyKind::Signed {
            return Err(DecodeError::Invalid("card prekey kind"));
        }
        let n = usize::from(r.u8()?);
        if n > MAX_RELAYS {
            return Err(DecodeError::TooLong {
                field: "relay count",
                limit: MAX_RELAYS,
            });
        }
        let relays = (0..n)
            .map(|_| {
                let s = r.string_u16("relay address", MAX_RELAY_ADDR_LEN)?;
                if s.is_empty() {
                    return Err(DecodeError::Invalid("empty relay address"));
                }
                Ok(s)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let display_name = r.string_u8("display name", MAX_DISPLAY_NAME_LEN)?;
        let signature = r.array()?;
        let card = Self {
            certificate,
            signed_prekey,
            relays,
            display_name,
            signature,
        };
        card.identity_key()
            .verify(
                CARD_CONTEXT,
                &card.signed_bytes(),
                &card.signature,
                "contact card",
            )
            .map_err(|_| DecodeError::BadSignature("contact card"))?;
        card.signed_prekey
            .verify(&card.certificate.device_key())
            .map_err(|_| DecodeError::BadSignature("signed prekey"))?;
        Ok(card)
    }
}

/// The safety number of two identities: 60 digits in 12 groups of 5, the
/// same whichever side computes it. Two people compare it out of band.
pub fn safety_number(a: &SigningPublicKey, b: &SigningPublicKey) -> String {
    let mut halves = [half(a), half(b)];
    halves.sort();
    halves.concat().join(" ")
}

fn half(key: &SigningPublicKey) -> Vec<String> {
    let d = blake3::derive_key(CTX_SAFETY_NUMBER, &key.to_bytes());
    d[..30]
        .chunks(5)
        .map(|c| {
            let v = c.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
            format!("{:05}", v % 100_000)
        })
        .collect()
}
