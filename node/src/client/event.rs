//! What the client tells the application.

use libp2p::Multiaddr;
use mayfly_protocol::{ClipKind, LiveKeyGrant, MessageId, SigningPublicKey};

/// Something the application may show or act on.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The client accepts direct deliveries at `address`.
    Listening {
        /// The address, with `/p2p/<peer id>`.
        address: Multiaddr,
    },
    /// A clip arrived and can be opened.
    Received {
        /// The clip.
        message_id: MessageId,
        /// Its sender's identity.
        sender: SigningPublicKey,
        /// The sender's name, if a contact.
        sender_name: Option<String>,
        /// Clip or reaction.
        kind: ClipKind,
        /// Whether it came straight from the sender (not through a relay).
        direct: bool,
    },
    /// A clip was revoked by its sender and erased here.
    Revoked {
        /// The clip.
        message_id: MessageId,
    },
    /// Clips expired and were erased here.
    Expired {
        /// The clips.
        message_ids: Vec<MessageId>,
    },
    /// Someone accepted an invite and is now a contact.
    ContactAdded {
        /// Their identity.
        identity: SigningPublicKey,
        /// Their name.
        name: String,
    },
    /// A contact moved to a new device.
    ContactUpdated {
        /// Their identity.
        identity: SigningPublicKey,
    },
    /// This device was replaced by a newer one of the same identity; it has
    /// erased its messages and keys, and relays refuse it from now on.
    DeviceReplaced {
        /// The serial of the device that replaced this one.
        by_serial: u64,
    },
    /// A contact handed this device a key of its live broadcast (LIVE.md
    /// §3.3). Epoch 0 is the start notification: the contact went live.
    /// The key is kept in the home (`Home::live_keys`) for 24 hours.
    LiveKey {
        /// The broadcaster's identity (the envelope's sender).
        broadcaster: SigningPublicKey,
        /// The broadcaster's contact name.
        broadcaster_name: String,
        /// The broadcast, epoch and key.
        grant: LiveKeyGrant,
    },
    /// A broadcaster revoked a broadcast whose keys this device held: they
    /// are erased (LIVE.md §13.3).
    LiveRevoked {
        /// The broadcaster.
        broadcaster: SigningPublicKey,
        /// The broadcast.
        broadcast_id: mayfly_protocol::live::BroadcastId,
    },
    /// A contact started or stopped following this identity (LIVE.md
    /// §3.4).
    Follower {
        /// Their identity.
        identity: SigningPublicKey,
        /// Their contact name.
        name: String,
        /// True for a new follower, false for one that left.
        following: bool,
    },
    /// Something went wrong in the background; the client goes on.
    Warning {
        /// What.
        message: String,
    },
}
