//! # mayfly-protocol
//!
//! The sans-IO core of Mayfly: identities and devices, prekeys, contact cards,
//! clip sealing and opening (STREAM over ChaCha20-Poly1305 with key
//! commitment, Padmé padding and BLAKE3 chunk addresses), envelopes (Noise N
//! with a sender signature inside), revocation and expiry, and the schedule
//! of a fetch from several peers at once ([`fetch`]).
//!
//! Nothing here touches a socket, a file, the clock or the operating system's
//! RNG: time comes in as [`UnixMillis`] (or, for [`fetch`], as a
//! monotonic [`core::time::Duration`] since an origin) and randomness as a
//! [`rand_core::CryptoRng`], so every output can be reproduced from a seed.
//! The normative description is `spec/SPEC.md` in the repository.
//!
//! ```
//! use mayfly_protocol::*;
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//!
//! let mut rng = ChaCha20Rng::from_seed([7; 32]);
//! let now = UnixMillis(1_800_000_000_000);
//! // Bob publishes a prekey bundle; Alice seals a clip to it.
//! let alice = Identity::generate(&mut rng);
//! let alice_dev = alice.new_device(1, now, &mut rng);
//! let bob = Identity::generate(&mut rng);
//! let bob_dev = bob.new_device(1, now, &mut rng);
//! let mut bob_prekeys = PrekeyStore::new(&bob_dev, now, &mut rng);
//! let bundle = PrekeyBundle {
//!     certificate: bob_dev.certificate().clone(),
//!     signed_prekey: bob_prekeys.signed_prekey().clone(),
//!     one_time_prekey: None,
//! };
//! let to_bob = bundle.verify(&bob.public(), now).unwrap();
//!
//! let content = b"not really a video".to_vec();
//! let header = ClipHeader {
//!     kind: ClipKind::Clip,
//!     allow_save: false,
//!     duration_ms: 1_000,
//!     created_at: now,
//!     expires_at: now.plus(DEFAULT_CLIP_TTL_MS),
//!     content_len: content.len() as u64,
//!     parent: None,
//!     media_type: "video/mp4".into(),
//! };
//! let mut chunks = Vec::new();
//! let sealed = seal_reader(header, &mut content.as_slice(), |_, c| {
//!     chunks.extend_from_slice(c);
//!     Ok(())
//! }, &mut rng).unwrap();
//! let envelope = Envelope::seal(&sealed, &alice_dev, &to_bob, &mut rng).unwrap();
//!
//! // Bob opens it.
//! let secret = bob_prekeys.take_secret(&envelope.prekey()).unwrap();
//! let contents = envelope.open(&bob.public(), &secret).unwrap();
//! assert_eq!(contents.sender.identity_key(), alice.public());
//! let opener = contents.open_manifest(sealed.manifest().clone(), now).unwrap();
//! let mut out = Vec::new();
//! open_reader(opener, &mut chunks.as_slice(), &mut out).unwrap();
//! assert_eq!(out, content);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aead;
pub mod card;
pub mod codec;
pub mod control;
pub mod envelope;
pub mod error;
pub mod fetch;
pub mod fmp4;
pub mod fuzzing;
pub mod header;
pub mod identity;
pub mod kdf;
pub mod keys;
pub mod limits;
pub mod live;
pub mod mailbox;
pub mod manifest;
mod noise;
pub mod open;
pub mod padding;
pub mod playout;
pub mod prekey;
pub mod revocation;
pub mod seal;
mod stream;
pub mod time;

pub use card::{ContactCard, safety_number};
pub use codec::Codec;
pub use control::{CONTROL_MEDIA_TYPE, Control, Invite, LiveKeyGrant};
pub use envelope::{Envelope, EnvelopeContents};
pub use error::{DecodeError, Error};
pub use header::{ClipHeader, ClipKind};
pub use identity::{Device, DeviceCertificate, Identity};
pub use kdf::{ContentKey, MessageId};
pub use keys::{DhPublicKey, DhSecret, SigningPublicKey, SigningSecret};
pub use limits::*;
pub use manifest::{ChunkHash, Manifest, VerifiedChunk};
pub use noise::ENVELOPE_NOISE_PARAMS;
pub use open::{ClipOpener, open_reader};
pub use prekey::{Prekey, PrekeyBundle, PrekeyKind, PrekeyStore, Recipient};
pub use revocation::{Applied, RevocationLedger, RevocationRecord, Tombstone};
pub use seal::{ClipSealer, SealedClip, seal_reader};
pub use stream::chunk_nonce;
pub use time::UnixMillis;
