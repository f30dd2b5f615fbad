//! Announce and Locate (RELAY.md §5.6): a logged-in device's direct-dial
//! addresses, kept with its session only, and the lookup of them by
//! identity.

use libp2p::{Multiaddr, PeerId};
use mayfly_protocol::mailbox::{ErrorCode, Response};
use mayfly_protocol::{DeviceCertificate, SigningPublicKey};

use super::service::{Ctx, lock};

/// The peer id of the transport key equal to `cert`'s device key, if that
/// key is a valid Ed25519 key for libp2p.
pub fn device_peer_id(cert: &DeviceCertificate) -> Option<PeerId> {
    let key =
        libp2p::identity::ed25519::PublicKey::try_from_bytes(&cert.device_key().to_bytes()).ok()?;
    Some(libp2p::identity::PublicKey::from(key).to_peer_id())
}

impl Ctx {
    /// Announce: replaces the addresses of `peer`'s session (logged in, as
    /// the peer whose id is its device key's), each a valid multiaddr.
    pub(super) async fn announce(
        &self,
        peer: PeerId,
        generation: u64,
        addrs: Vec<Vec<u8>>,
    ) -> Result<Response, Response> {
        let cert = self.current_login(&peer, generation).await?;
        if device_peer_id(&cert) != Some(peer) {
            return Err(Response::error(
                ErrorCode::Forbidden,
                "announce from the peer id of the device key",
            ));
        }
        for a in &addrs {
            Multiaddr::try_from(a.clone())
                .map_err(|_| Response::error(ErrorCode::Malformed, "not a multiaddr"))?;
        }
        let mut s = lock(&self.sessions);
        match s.peers.get_mut(&peer) {
            Some(session) if session.generation == generation => {
                tracing::debug!(%peer, addrs = addrs.len(), "announced");
                session.addrs = addrs;
                Ok(Response::Ok)
            }
            _ => Err(Response::error(ErrorCode::Unauthenticated, "not connected")),
        }
    }

    /// Locate: the certificate and addresses of a logged-in session of
    /// `identity` that announced some, preferring the newest device and
    /// then the latest session. A superseded device is not found.
    pub(super) async fn locate(&self, identity: SigningPublicKey) -> Result<Response, Response> {
        let not_found = || Response::error(ErrorCode::NotFound, "not online");
        let found = lock(&self.sessions)
            .peers
            .iter()
            .filter(|(_, s)| !s.addrs.is_empty())
            .filter_map(|(peer, s)| {
                let cert = s.login.as_ref()?;
                (cert.identity_key() == identity).then_some((*peer, cert, s))
            })
            .max_by_key(|(_, cert, s)| (cert.serial(), s.generation))
            .map(|(peer, cert, s)| (peer, s.generation, cert.clone(), s.addrs.clone()));
        let (peer, generation, certificate, addrs) = found.ok_or_else(not_found)?;
        let newest = self.blocking(move |s| s.device_serial(&identity)).await?;
        if newest.is_some_and(|serial| serial > certificate.serial()) {
            // The newest announcing session is superseded, so are any
            // others: drop it, as its next request would.
            let mut s = lock(&self.sessions);
            if s.peers
                .get(&peer)
                .is_some_and(|session| session.generation == generation)
            {
                s.peers.remove(&peer);
                self.metrics.session_superseded();
                tracing::debug!(%peer, "a newer device logged in: session dropped");
            }
            return Err(not_found());
        }
        Ok(Response::Located {
            certificate: Box::new(certificate),
            addrs,
        })
    }
}
