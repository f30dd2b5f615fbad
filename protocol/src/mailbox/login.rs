//! The login proof: a mailbox owner's device signs the relay's challenge,
//! bound to both transport identities, so a proof is good for one connection
//! to one relay only.

use crate::error::Error;
use crate::identity::{Device, DeviceCertificate};
use crate::limits::MAX_PEER_ID_LEN;

/// Signature context of login proofs.
pub const LOGIN_CONTEXT: &str = "mayfly/v1/relay-login";

/// A device's answer to a relay's challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginProof {
    /// The device certificate; its identity key names the mailbox.
    pub certificate: DeviceCertificate,
    /// `Sign(device key, LOGIN_CONTEXT, u8 len || relay peer id || u8 len || client peer id || nonce)`.
    pub signature: [u8; 64],
}

impl LoginProof {
    /// Signs `nonce` for the connection between `client_peer` and `relay_peer`
    /// (transport peer ids as bytes, at most [`MAX_PEER_ID_LEN`] each).
    pub fn sign(
        device: &Device,
        relay_peer: &[u8],
        client_peer: &[u8],
        nonce: &[u8; 32],
    ) -> Result<Self, Error> {
        let msg = signed_bytes(relay_peer, client_peer, nonce)?;
        Ok(Self {
            certificate: device.certificate().clone(),
            signature: device.secret().sign(LOGIN_CONTEXT, &msg),
        })
    }

    /// Checks the proof for this connection and challenge. The caller also
    /// checks that the certificate's serial is the newest it knows for the identity.
    pub fn verify(
        &self,
        relay_peer: &[u8],
        client_peer: &[u8],
        nonce: &[u8; 32],
    ) -> Result<(), Error> {
        let msg = signed_bytes(relay_peer, client_peer, nonce)?;
        self.certificate
            .device_key()
            .verify(LOGIN_CONTEXT, &msg, &self.signature, "login proof")
    }
}

fn signed_bytes(relay_peer: &[u8], client_peer: &[u8], nonce: &[u8; 32]) -> Result<Vec<u8>, Error> {
    if relay_peer.len() > MAX_PEER_ID_LEN || client_peer.len() > MAX_PEER_ID_LEN {
        return Err(Error::InvalidParams("peer id too long"));
    }
    let mut m = Vec::with_capacity(2 + relay_peer.len() + client_peer.len() + 32);
    m.push(relay_peer.len() as u8);
    m.extend_from_slice(relay_peer);
    m.push(client_peer.len() as u8);
    m.extend_from_slice(client_peer);
    m.extend_from_slice(nonce);
    Ok(m)
}
