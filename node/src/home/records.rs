//! The public record types and their encodings in `client.redb`: a version
//! byte (1), then fields with the protocol's codec (big-endian integers,
//! length-prefixed strings and byte strings, protocol structures in their
//! wire encoding). `spec/CLIENT.md` gives each layout.

use mayfly_protocol::codec::{Reader, Writer};
use mayfly_protocol::{
    ClipHeader, Codec, ContactCard, DeviceCertificate, MAX_RELAY_ADDR_LEN, Manifest, MessageId,
    SigningPublicKey, UnixMillis,
};

use super::HomeError;

/// Version byte of every record.
const RECORD_V1: u8 = 1;
/// Largest encoded card or manifest accepted when decoding.
const MAX_BLOB: usize = 1 << 20;
/// Most sources or recipients in one record.
const MAX_LIST: usize = 4096;

/// Someone whose card was added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The newest card added.
    pub card: ContactCard,
    /// The newest device certificate seen (from a card or a message).
    pub certificate: DeviceCertificate,
    /// The name the contact is found by (the card's display name).
    pub name: String,
    /// When the contact was first added.
    pub added_at: UnixMillis,
}

/// Where a received message's envelope was fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A relay mailbox, at this sequence number.
    Relay {
        /// The relay's multiaddr.
        address: String,
        /// The mailbox sequence number.
        seq: u64,
    },
    /// The local mailbox (direct delivery), at this sequence number.
    Local {
        /// The mailbox sequence number.
        seq: u64,
    },
}

/// A message this device received and opened the envelope of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The message id.
    pub message_id: MessageId,
    /// The sender's identity key.
    pub sender: SigningPublicKey,
    /// The sender's device certificate from the envelope.
    pub sender_certificate: DeviceCertificate,
    /// The decrypted clip header.
    pub header: ClipHeader,
    /// The manifest (public: chunk hashes and the sealed header).
    pub manifest: Manifest,
    /// Where its envelope was seen.
    pub sources: Vec<Source>,
    /// When it was first stored.
    pub received_at: UnixMillis,
    /// Whether the user has opened it.
    pub opened: bool,
}

/// How a sent message reached one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// Straight to the recipient's device.
    Direct,
    /// Through a relay.
    Relay {
        /// The relay's multiaddr.
        address: String,
    },
    /// Not known to have reached it: the record is written before any
    /// delivery starts (so that a sender that dies mid-send can still
    /// revoke what it may have deposited), and a recipient stays pending if
    /// the sender died before its delivery ended.
    Pending,
}

/// One recipient of a sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The recipient's identity key.
    pub identity: SigningPublicKey,
    /// How it was delivered.
    pub via: Via,
}

/// A message this device sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The message id.
    pub message_id: MessageId,
    /// The clip header.
    pub header: ClipHeader,
    /// Its recipients.
    pub recipients: Vec<Delivery>,
    /// When it was sent.
    pub created_at: UnixMillis,
}

/// What [`super::Home::erase`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Erased {
    /// A received record was removed.
    pub received: bool,
    /// A sent record was removed.
    pub sent: bool,
    /// Secret slots wiped (content keys, revocation secret).
    pub secrets: usize,
}

fn check_addr(a: &str) -> Result<(), HomeError> {
    if a.is_empty() || a.len() > MAX_RELAY_ADDR_LEN || a.chars().any(char::is_control) {
        return Err(HomeError::Invalid(format!("relay address {a:?}")));
    }
    Ok(())
}

fn header_bytes(r: &mut Reader<'_>) -> Result<ClipHeader, HomeError> {
    Ok(ClipHeader::decode(&r.array()?)?)
}

fn start(r: &mut Reader<'_>, what: &str) -> Result<(), HomeError> {
    match r.u8()? {
        RECORD_V1 => Ok(()),
        v => Err(HomeError::corrupt(format!("{what} record version {v}"))),
    }
}

fn blob(out: &mut Vec<u8>, b: &[u8]) {
    out.put_u32(u32::try_from(b.len()).expect("cards and manifests are small"));
    out.put(b);
}

impl Contact {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_V1];
        blob(&mut out, &self.card.to_bytes());
        self.certificate.encode(&mut out);
        // The name is a card's display name: at most 64 bytes.
        out.put_string_u16(&self.name);
        out.put_u64(self.added_at.0);
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Self, HomeError> {
        let mut r = Reader::new(bytes);
        start(&mut r, "contact")?;
        let card = ContactCard::decode(r.bytes_u32("card", MAX_BLOB)?)?;
        let certificate = DeviceCertificate::read(&mut r)?;
        let name = r.string_u16("name", u16::MAX as usize)?;
        let added_at = UnixMillis(r.u64()?);
        r.finish()?;
        Ok(Self {
            card,
            certificate,
            name,
            added_at,
        })
    }
}

impl Received {
    pub(super) fn check(&self) -> Result<(), HomeError> {
        if self.manifest.message_id() != self.message_id {
            return Err(HomeError::Invalid(
                "the manifest is not the message's".into(),
            ));
        }
        if self.sender_certificate.identity_key() != self.sender {
            return Err(HomeError::Invalid(
                "the certificate is not the sender's".into(),
            ));
        }
        if self.sources.len() > MAX_LIST {
            return Err(HomeError::Invalid("too many sources".into()));
        }
        for s in &self.sources {
            if let Source::Relay { address, .. } = s {
                check_addr(address)?;
            }
        }
        Ok(())
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_V1];
        out.put(&self.sender.to_bytes());
        self.sender_certificate.encode(&mut out);
        out.put(&self.header.encode());
        blob(&mut out, &self.manifest.to_bytes());
        out.put_u16(self.sources.len() as u16);
        for s in &self.sources {
            match s {
                Source::Relay { address, seq } => {
                    out.put_u8(1);
                    out.put_string_u16(address);
                    out.put_u64(*seq);
                }
                Source::Local { seq } => {
                    out.put_u8(2);
                    out.put_u64(*seq);
                }
            }
        }
        out.put_u64(self.received_at.0);
        out.put_u8(u8::from(self.opened));
        out
    }

    pub(super) fn decode(id: &[u8; 32], bytes: &[u8]) -> Result<Self, HomeError> {
        let mut r = Reader::new(bytes);
        start(&mut r, "received")?;
        let sender = SigningPublicKey::read(&mut r)?;
        let sender_certificate = DeviceCertificate::read(&mut r)?;
        let header = header_bytes(&mut r)?;
        let manifest = Manifest::decode(r.bytes_u32("manifest", MAX_BLOB)?)?;
        let n = r.count_u16("sources", MAX_LIST)?;
        let mut sources = Vec::with_capacity(n);
        for _ in 0..n {
            sources.push(match r.u8()? {
                1 => Source::Relay {
                    address: r.string_u16("relay address", MAX_RELAY_ADDR_LEN)?,
                    seq: r.u64()?,
                },
                2 => Source::Local { seq: r.u64()? },
                t => return Err(HomeError::corrupt(format!("source kind {t}"))),
            });
        }
        let received_at = UnixMillis(r.u64()?);
        let opened = r.bool("opened")?;
        r.finish()?;
        Ok(Self {
            message_id: MessageId(*id),
            sender,
            sender_certificate,
            header,
            manifest,
            sources,
            received_at,
            opened,
        })
    }
}

impl Sent {
    pub(super) fn check(&self) -> Result<(), HomeError> {
        if self.recipients.len() > MAX_LIST {
            return Err(HomeError::Invalid("too many recipients".into()));
        }
        for d in &self.recipients {
            if let Via::Relay { address } = &d.via {
                check_addr(address)?;
            }
        }
        Ok(())
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_V1];
        out.put(&self.header.encode());
        out.put_u16(self.recipients.len() as u16);
        for d in &self.recipients {
            out.put(&d.identity.to_bytes());
            match &d.via {
                Via::Direct => out.put_u8(1),
                Via::Relay { address } => {
                    out.put_u8(2);
                    out.put_string_u16(address);
                }
                Via::Pending => out.put_u8(3),
            }
        }
        out.put_u64(self.created_at.0);
        out
    }

    pub(super) fn decode(id: &[u8; 32], bytes: &[u8]) -> Result<Self, HomeError> {
        let mut r = Reader::new(bytes);
        start(&mut r, "sent")?;
        let header = header_bytes(&mut r)?;
        let n = r.count_u16("recipients", MAX_LIST)?;
        let mut recipients = Vec::with_capacity(n);
        for _ in 0..n {
            let identity = SigningPublicKey::read(&mut r)?;
            let via = match r.u8()? {
                1 => Via::Direct,
                2 => Via::Relay {
                    address: r.string_u16("relay address", MAX_RELAY_ADDR_LEN)?,
                },
                3 => Via::Pending,
                t => return Err(HomeError::corrupt(format!("delivery kind {t}"))),
            };
            recipients.push(Delivery { identity, via });
        }
        let created_at = UnixMillis(r.u64()?);
        r.finish()?;
        Ok(Self {
            message_id: MessageId(*id),
            header,
            recipients,
            created_at,
        })
    }
}
