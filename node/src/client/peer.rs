//! Peer ids and addresses: a client's libp2p identity is its device key,
//! and relays are named by multiaddrs ending in `/p2p/<peer id>`.

use libp2p::identity::{Keypair, PublicKey, ed25519};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use mayfly_protocol::{Device, SigningPublicKey};

use super::ClientError;

/// The libp2p keypair of `device`: its ed25519 device key.
pub fn keypair(device: &Device) -> Keypair {
    let mut seed = *device.secret().to_seed();
    let secret = ed25519::SecretKey::try_from_bytes(&mut seed).expect("32 bytes");
    Keypair::from(ed25519::Keypair::from(secret))
}

/// The peer id of the device whose key is `device_key`.
pub fn peer_id(device_key: &SigningPublicKey) -> PeerId {
    let key = ed25519::PublicKey::try_from_bytes(&device_key.to_bytes())
        .expect("a checked Ed25519 key is a valid libp2p key");
    PublicKey::from(key).to_peer_id()
}

/// Splits a relay address (`/…/p2p/<peer id>`) into its peer id and the
/// address to dial.
pub fn parse_relay(address: &str) -> Result<(PeerId, Multiaddr), ClientError> {
    let bad = |reason: &str| ClientError::BadRelayAddress {
        address: address.to_owned(),
        reason: reason.to_owned(),
    };
    let addr: Multiaddr = address
        .parse()
        .map_err(|e: libp2p::multiaddr::Error| bad(&e.to_string()))?;
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Ok((peer, addr)),
        _ => Err(bad("it must end in /p2p/<peer id>")),
    }
}

/// `address` with `/p2p/<peer>` appended unless it already ends so.
pub fn with_peer(address: Multiaddr, peer: PeerId) -> Multiaddr {
    if matches!(address.iter().last(), Some(Protocol::P2p(_))) {
        address
    } else {
        address.with(Protocol::P2p(peer))
    }
}
