//! Contacts, invites and device changes.

use mayfly_protocol::limits::MAX_LIVE_TTL_MS;
use mayfly_protocol::{ContactCard, Control, Invite, LiveKeyGrant, SigningPublicKey, UnixMillis};

use super::inner::lock;
use super::{Client, ClientError};
use crate::home::Contact;

impl Client {
    /// This device's contact card, as others add it.
    pub fn card(&self) -> Result<ContactCard, ClientError> {
        Ok(self.inner.home().card()?)
    }

    /// Adds `card` as a contact (one way: they learn of us when we send).
    pub fn add_contact(&self, card: &ContactCard) -> Result<Contact, ClientError> {
        let now = self.inner.now();
        Ok(self.inner.home().add_contact(card, now)?)
    }

    /// A new invite: our card and a one-time token. Whoever accepts it
    /// becomes a contact on both sides.
    pub fn invite(&self) -> Result<Invite, ClientError> {
        let now = self.inner.now();
        let home = self.inner.home();
        let token = home.new_invite_token(now, &mut lock(&self.inner.rng))?;
        Ok(Invite {
            token,
            card: home.card()?,
        })
    }

    /// Accepts `invite`: adds the inviter and sends them our card with the
    /// invite's token, so they add us.
    pub async fn accept_invite(&self, invite: &Invite) -> Result<Contact, ClientError> {
        if invite.card.identity_key() == self.inner.identity {
            return Err(ClientError::Invite("this is your own invite".into()));
        }
        let contact = self.add_contact(&invite.card)?;
        let reply = Control::InviteReply {
            token: invite.token,
            card: self.card()?,
        };
        self.inner.send_control(&contact, &reply).await?;
        Ok(contact)
    }

    /// Sends our current card to every contact, e.g. after
    /// [`crate::home::Home::replace_device`], so they seal to the new device
    /// at once. Returns the contacts that could not be told.
    pub async fn send_card_update(&self) -> Result<Vec<(String, ClientError)>, ClientError> {
        let update = Control::CardUpdate(self.card()?);
        let contacts = self.inner.home().contacts()?;
        let mut failed = Vec::new();
        for contact in contacts {
            if let Err(e) = self.inner.send_control(&contact, &update).await {
                failed.push((contact.name.clone(), e));
            }
        }
        Ok(failed)
    }

    /// Hands `grant`, a key of this device's live broadcast, to each of
    /// `to` (contacts) in an envelope (LIVE.md §3.3): epoch 0 tells them the
    /// broadcast has started, at once if they are online, else at their
    /// next sync. The clip carrying it expires `MAX_LIVE_TTL_MS` after the
    /// broadcast started. Returns the contacts that could not be told.
    pub async fn send_live_key(
        &self,
        to: &[SigningPublicKey],
        grant: &LiveKeyGrant,
    ) -> Result<Vec<(String, ClientError)>, ClientError> {
        let expires_at = grant.started_at.plus(MAX_LIVE_TTL_MS);
        if expires_at <= self.inner.now() {
            return Err(mayfly_protocol::Error::InvalidParams(
                "the broadcast started more than a day ago",
            )
            .into());
        }
        let contacts = to
            .iter()
            .map(|identity| {
                self.inner.home().contact(identity)?.ok_or_else(|| {
                    ClientError::from(crate::home::HomeError::UnknownContact(hex::encode(
                        identity.to_bytes(),
                    )))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self
            .send_each(&contacts, &Control::LiveKey(grant.clone()), expires_at)
            .await)
    }

    /// Sends `control` to each of `contacts`, the clip carrying it
    /// expiring at `expires_at`; returns those that could not be told.
    async fn send_each(
        &self,
        contacts: &[Contact],
        control: &Control,
        expires_at: UnixMillis,
    ) -> Vec<(String, ClientError)> {
        let mut failed = Vec::new();
        for contact in contacts {
            if let Err(e) = self
                .inner
                .send_control_until(contact, control, expires_at)
                .await
            {
                failed.push((contact.name.clone(), e));
            }
        }
        failed
    }

    /// Tells each of `to` (contacts) that this device's broadcast `id` is
    /// revoked, so they erase its keys (LIVE.md §13.3). Returns the
    /// contacts that could not be told.
    pub async fn send_live_revoked(
        &self,
        to: &[SigningPublicKey],
        id: &mayfly_protocol::live::BroadcastId,
    ) -> Result<Vec<(String, ClientError)>, ClientError> {
        // The keys it erases die within a day anyway.
        let expires_at = self.inner.now().plus(MAX_LIVE_TTL_MS);
        let mut contacts = Vec::new();
        for identity in to {
            contacts.extend(self.inner.home().contact(identity)?);
        }
        Ok(self
            .send_each(&contacts, &Control::LiveRevoked(*id), expires_at)
            .await)
    }

    /// Follows `contact`'s broadcasts: tells them in a `Follow` control
    /// message, so they send this device their start notifications and
    /// keys (LIVE.md §3.4).
    pub async fn follow(&self, contact: &Contact) -> Result<(), ClientError> {
        self.inner.send_control(contact, &Control::Follow).await
    }

    /// Stops following `contact`'s broadcasts (an `Unfollow` message).
    pub async fn unfollow(&self, contact: &Contact) -> Result<(), ClientError> {
        self.inner.send_control(contact, &Control::Unfollow).await
    }

    /// Removes `identity` from this identity's followers (no message is
    /// sent: they simply get no more keys). True if it was a follower.
    pub fn remove_follower(&self, identity: &SigningPublicKey) -> Result<bool, ClientError> {
        Ok(self.inner.home().remove_follower(identity)?)
    }

    /// This identity's followers that are contacts, with since when.
    pub fn followers(&self) -> Result<Vec<(Contact, UnixMillis)>, ClientError> {
        let home = self.inner.home();
        let mut out = Vec::new();
        for (id, since) in home.followers()? {
            if let Some(c) = home.contact(&id)? {
                out.push((c, since));
            }
        }
        Ok(out)
    }

    /// The client's idea of now (the system clock plus any test offset).
    pub fn now(&self) -> UnixMillis {
        self.inner.now()
    }

    /// 32 bytes from the client's random generator (seeded in tests).
    pub fn random_32(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut *lock(&self.inner.rng), &mut b);
        b
    }

    /// The local peer id (derived from the device key).
    pub fn peer_id(&self) -> libp2p::PeerId {
        self.inner.net.local_peer_id()
    }

    /// Stops the client and waits for its event loop to finish. The home
    /// is released when the last handle is dropped.
    pub async fn shutdown(&self) {
        self.inner.net.shutdown().await;
        let mut stopped = self.inner.stopped.subscribe();
        let _ = stopped.wait_for(|s| *s).await;
    }

    /// Sends `request` to `peer` as is and returns its answer, error answers
    /// included (for tools and tests).
    pub async fn relay_request(
        &self,
        peer: libp2p::PeerId,
        request: mayfly_protocol::mailbox::Request,
    ) -> Result<mayfly_protocol::mailbox::Response, ClientError> {
        Ok(self
            .inner
            .net
            .request(peer, request, self.inner.config.request_timeout)
            .await?)
    }

    /// Moves the client's clock `ms` ahead (tests and demos of expiry).
    pub fn advance_clock(&self, ms: i64) {
        self.inner.clock.advance(ms);
    }

    /// The home's directory.
    pub fn home_dir(&self) -> std::path::PathBuf {
        self.inner.home().dir().to_owned()
    }

    /// Runs `f` on the home (for listing the inbox, contacts, fliks).
    pub fn with_home<T>(&self, f: impl FnOnce(&crate::home::Home) -> T) -> T {
        f(&self.inner.home())
    }
}
