//! Revocation and expiry, end to end. The sender signs a revocation record
//! with the clip's revocation key and sends it to every relay that holds the
//! clip and to every recipient (straight to its device when online, else as
//! a control message in its mailbox). Whoever applies it erases the content
//! key and any cached ciphertext, and the reactions to the clip go with it.

use std::future::Future;
use std::pin::Pin;

use mayfly_protocol::mailbox::{Request, Response};
use mayfly_protocol::{Control, MessageId, RevocationRecord};

use super::inner::{Inner, card_relays};
use super::{Client, ClientError, Event};
use crate::home::{Source, Via};

/// What a revocation reached.
#[derive(Debug, Default)]
pub struct RevokeReport {
    /// Relays that deleted the clip (or had already).
    pub relays: Vec<String>,
    /// Recipients told, and how.
    pub notified: Vec<(String, Via)>,
    /// What could not be reached, and why.
    pub failed: Vec<(String, ClientError)>,
    /// Reactions erased with the clip.
    pub reactions: usize,
}

impl Client {
    /// Revokes a clip this device sent: relays delete it, recipients erase
    /// it, and the local record of it (with its revocation key) is erased.
    pub async fn revoke(&self, id: &MessageId) -> Result<RevokeReport, ClientError> {
        self.inner.revoke_sent(*id).await
    }

    /// Erases every clip past its expiry here (what the event loop does on
    /// its timer). Returns the ids erased.
    pub async fn expire(&self) -> Result<Vec<MessageId>, ClientError> {
        self.inner.expire().await
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Inner {
    pub fn revoke_sent(&self, id: MessageId) -> BoxFuture<'_, Result<RevokeReport, ClientError>> {
        Box::pin(async move {
            let (sent, secret) = {
                let home = self.home();
                let sent = home
                    .sent(&id)?
                    .ok_or_else(|| ClientError::UnknownMessage(id.to_hex()))?;
                let secret = home
                    .sent_revocation_secret(&id)?
                    .ok_or_else(|| ClientError::UnknownMessage(id.to_hex()))?;
                (sent, secret)
            };
            let record = RevocationRecord::sign(&secret, self.now());
            drop(secret);
            let mut report = RevokeReport::default();
            for delivery in &sent.recipients {
                let contact = self.home().contact(&delivery.identity)?;
                let Some(contact) = contact else { continue };
                // Every relay of the recipient, not only the one used: a
                // tombstone there also stops a re-deposit.
                for (address, relay, dial) in card_relays(&contact.card) {
                    let r = async {
                        self.connect(relay, &dial).await?;
                        match self.request(relay, Request::Revoke(record.clone())).await? {
                            Response::Revoked(_) => Ok(()),
                            _ => Err(super::inner::unexpected(relay, "revoke")),
                        }
                    };
                    match r.await {
                        Ok(()) => {
                            if !report.relays.contains(&address) {
                                report.relays.push(address);
                            }
                        }
                        Err(e) => report.failed.push((address, e)),
                    }
                }
                match self.notify_revocation(&contact, &record).await {
                    Ok(via) => report.notified.push((contact.name.clone(), via)),
                    Err(e) => report.failed.push((contact.name.clone(), e)),
                }
            }
            // Then the copy this device serves (RELAY.md §8): after the
            // notices, so that erasing a large clip here does not delay
            // them. A failure is a warning: the notices are out.
            let local = self.local.clone();
            let now = self.now();
            let erased = tokio::task::spawn_blocking(move || local.revoke(&record, now)).await;
            if let Some(e) = match erased {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            } {
                self.emit(super::Event::Warning {
                    message: format!("erasing the served copy of {}: {e}", id.to_hex()),
                });
            }
            report.reactions = self.erase_with_children(&id).await?;
            Ok(report)
        })
    }

    /// Tells `contact` about `record`: straight to its device if it is
    /// online, else as a control message through its relays.
    async fn notify_revocation(
        &self,
        contact: &crate::home::Contact,
        record: &RevocationRecord,
    ) -> Result<Via, ClientError> {
        let identity = contact.card.identity_key();
        let relays = card_relays(&contact.card);
        if self.config.direct
            && let Ok(Some((peer, addrs))) = self.locate(&identity, &relays).await
        {
            for addr in &addrs {
                if self.connect(peer, addr).await.is_ok()
                    && let Ok(Response::Revoked(_)) =
                        self.request(peer, Request::Revoke(record.clone())).await
                {
                    return Ok(Via::Direct);
                }
            }
        }
        self.send_control(contact, &Control::Revoked(record.clone()))
            .await?;
        Ok(relays
            .first()
            .map(|(a, _, _)| Via::Relay { address: a.clone() })
            .unwrap_or(Via::Direct))
    }

    /// A revocation arrived (from a relay's control message or straight
    /// from the sender): erase the clip, its cached ciphertext, its
    /// reactions, and revoke our own reactions to it.
    pub async fn apply_revocation(&self, record: &RevocationRecord) -> Result<(), ClientError> {
        let id = record.message_id();
        let received = self.home().received(&id)?;
        let Some(received) = received else {
            return Ok(());
        };
        // Only the clip's own revocation key can sign for its id (the id is
        // derived from that key), so the record speaks for the sender.
        let now = self.now();
        if received
            .sources
            .iter()
            .any(|s| matches!(s, Source::Local { .. }))
        {
            self.local.revoke(record, now)?;
        }
        self.erase_with_children(&id).await?;
        self.emit(Event::Revoked { message_id: id });
        Ok(())
    }

    /// Erases `id` here, with every reaction to it: reactions we received
    /// are erased, reactions we sent are revoked. Returns how many.
    async fn erase_with_children(&self, id: &MessageId) -> Result<usize, ClientError> {
        let children = self.home().children(id)?;
        let mut n = 0;
        for child in &children {
            let ours = self.home().sent(child)?.is_some();
            if ours {
                if let Err(e) = self.revoke_sent(*child).await {
                    self.emit(Event::Warning {
                        message: format!("revoking reaction {}: {e}", child.to_hex()),
                    });
                    self.erase_local(child)?;
                }
            } else {
                self.erase_local(child)?;
            }
            n += 1;
        }
        self.erase_local(id)?;
        Ok(n)
    }

    /// Erases `id`'s keys and records, and its copy in the local store.
    fn erase_local(&self, id: &MessageId) -> Result<(), ClientError> {
        let received = self.home().received(id)?;
        if let Some(r) = received {
            let seqs: Vec<u64> = r
                .sources
                .iter()
                .filter_map(|s| match s {
                    Source::Local { seq } => Some(*seq),
                    _ => None,
                })
                .collect();
            if !seqs.is_empty() {
                self.local.ack(&self.identity, &seqs)?;
            }
        }
        self.home().erase(id)?;
        Ok(())
    }

    /// Erases every clip past its expiry, here and in the local store, and
    /// the keys of live broadcasts past theirs.
    pub async fn expire(&self) -> Result<Vec<MessageId>, ClientError> {
        let now = self.now();
        self.home().erase_expired_broadcasts(now)?;
        let ids = self.home().expired(now)?;
        for id in &ids {
            self.erase_local(id)?;
        }
        loop {
            let stats = self.local.collect(now)?;
            if !stats.more {
                break;
            }
        }
        if !ids.is_empty() {
            self.emit(Event::Expired {
                message_ids: ids.clone(),
            });
        }
        Ok(ids)
    }
}
