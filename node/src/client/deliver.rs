//! Delivering a sealed clip to one recipient: a fresh prekey bundle, an
//! envelope, then the upload — straight to the recipient's device when it is
//! online, otherwise to its relays.

use std::time::Instant;

use libp2p::{Multiaddr, PeerId};
use mayfly_protocol::mailbox::{Request, Response};
use mayfly_protocol::{Envelope, Recipient, SealedClip, SigningPublicKey};

use super::ClientError;
use super::inner::{Inner, card_relays, lock, unexpected};
use super::peer;
use super::progress::ProgressFn;
use super::send::Delivered;
use super::spool::Spool;
use super::upload::Parcel;
use crate::home::{Contact, Via};

impl Inner {
    /// Delivers `sealed` to `contact`, directly if it is online and
    /// [`super::ClientConfig::direct`] is on, else through its relays.
    pub async fn deliver(
        &self,
        contact: &Contact,
        sealed: &SealedClip,
        spool: &Spool,
        progress: &ProgressFn,
    ) -> Result<Delivered, ClientError> {
        let start = Instant::now();
        let identity = contact.card.identity_key();
        let relays = card_relays(&contact.card);
        // The bundle and the recipient's whereabouts are asked for at once:
        // one round trip to the relay instead of two. The first relay is
        // dialled before, so that the two do not dial it twice.
        if let Some((_, relay, dial)) = relays.first() {
            let _ = self.connect(*relay, dial).await;
        }
        let located = async {
            match self.config.direct {
                true => Some(self.locate(&identity, &relays).await),
                false => None,
            }
        };
        let (recipient, located) = futures::join!(self.recipient(contact, &relays), located);
        let recipient = recipient?;
        let envelope = {
            let home = self.home();
            let mut rng = lock(&self.rng);
            Envelope::seal(sealed, home.device(), &recipient, &mut *rng)?
        };
        let parcel = Parcel {
            mailbox: identity,
            envelope: &envelope,
            manifest: sealed.manifest(),
            spool,
            progress,
        };
        let mut last_error = None;
        if let Some(located) = located {
            match located {
                Ok(Some((peer, addrs))) => {
                    let label = format!("{} (direct)", contact.name);
                    match self.upload_direct(peer, &addrs, &parcel, &label).await {
                        Ok(()) => {
                            return Ok(Delivered {
                                name: contact.name.clone(),
                                identity,
                                via: Via::Direct,
                                elapsed: start.elapsed(),
                            });
                        }
                        Err(e) => {
                            tracing::info!("direct delivery to {} failed: {e}", contact.name);
                            last_error = Some(e);
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::debug!("locating {} failed: {e}", contact.name),
            }
        }
        for (address, relay, dial) in relays {
            let label = format!("{} (via relay)", contact.name);
            let attempt = async {
                self.connect(relay, &dial).await?;
                self.upload(relay, &parcel, &label).await
            };
            match attempt.await {
                Ok(()) => {
                    return Ok(Delivered {
                        name: contact.name.clone(),
                        identity,
                        via: Via::Relay { address },
                        elapsed: start.elapsed(),
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(ClientError::Undeliverable {
            name: contact.name.clone(),
            reason: last_error.map_or_else(|| "the contact has no relay".into(), |e| e.to_string()),
        })
    }

    /// A verified recipient for `contact`: a fresh bundle from one of its
    /// relays (using a one-time prekey), else the signed prekey of its card.
    async fn recipient(
        &self,
        contact: &Contact,
        relays: &[(String, PeerId, Multiaddr)],
    ) -> Result<Recipient, ClientError> {
        let identity = contact.card.identity_key();
        let now = self.now();
        for (_, relay, dial) in relays {
            let fetched = async {
                self.connect(*relay, dial).await?;
                match self
                    .request(
                        *relay,
                        Request::FetchBundle {
                            identity_key: identity,
                        },
                    )
                    .await?
                {
                    Response::Bundle(b) => Ok(*b),
                    _ => Err(unexpected(*relay, "fetch bundle")),
                }
            };
            match fetched.await {
                Ok(bundle) => match bundle.verify(&identity, now) {
                    Ok(r) => {
                        self.home().update_certificate(&bundle.certificate)?;
                        return Ok(r);
                    }
                    Err(e) => tracing::warn!("relay {relay} gave a bad bundle: {e}"),
                },
                Err(e) => tracing::debug!("no bundle from {relay}: {e}"),
            }
        }
        Ok(contact.card.recipient(now)?)
    }

    /// Where `identity`'s current device can be reached directly, if it is
    /// online: asks its relays.
    pub(super) async fn locate(
        &self,
        identity: &SigningPublicKey,
        relays: &[(String, PeerId, Multiaddr)],
    ) -> Result<Option<(PeerId, Vec<Multiaddr>)>, ClientError> {
        for (_, relay, dial) in relays {
            self.connect(*relay, dial).await?;
            let request = Request::Locate {
                identity_key: *identity,
            };
            match self.request(*relay, request).await {
                Ok(Response::Located { certificate, addrs }) => {
                    if certificate.identity_key() != *identity {
                        continue;
                    }
                    let peer = peer::peer_id(&certificate.device_key());
                    let addrs = addrs
                        .into_iter()
                        .filter_map(|a| Multiaddr::try_from(a).ok())
                        .collect::<Vec<_>>();
                    if !addrs.is_empty() {
                        return Ok(Some((peer, addrs)));
                    }
                }
                Ok(_) => return Err(unexpected(*relay, "locate")),
                Err(ClientError::Refused { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    async fn upload_direct(
        &self,
        peer: PeerId,
        addrs: &[Multiaddr],
        parcel: &Parcel<'_>,
        label: &str,
    ) -> Result<(), ClientError> {
        let mut last = None;
        for addr in addrs {
            match self.connect(peer, addr).await {
                Ok(()) => {
                    return self.upload(peer, parcel, label).await;
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ClientError::Undeliverable {
            name: label.to_owned(),
            reason: "no address".into(),
        }))
    }
}
