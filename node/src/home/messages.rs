//! Received and sent messages, their secrets, expiry, reactions and erasure.

use mayfly_protocol::{ContentKey, MessageId, SigningSecret, UnixMillis};
use redb::{ReadableDatabase, ReadableTable};

use super::records::{Erased, Received, Sent};
use super::slots::{Purpose, Tx, slot_name};
use super::tables::{CHILDREN, EXPIRIES, RECEIVED, SENT};
use super::{Home, HomeError};

fn name(p: Purpose, id: &MessageId) -> [u8; 32] {
    slot_name(p, &id.0)
}

/// Indexes a message by expiry and parent.
fn index(tx: &Tx<'_>, id: &MessageId, h: &mayfly_protocol::ClipHeader) -> Result<(), HomeError> {
    tx.txn
        .open_table(EXPIRIES)?
        .insert((h.expires_at.0, &id.0), ())?;
    if let Some(p) = &h.parent {
        tx.txn.open_table(CHILDREN)?.insert((&p.0, &id.0), ())?;
    }
    Ok(())
}

/// Removes a message's expiry and parent index rows.
fn unindex(tx: &Tx<'_>, id: &MessageId, h: &mayfly_protocol::ClipHeader) -> Result<(), HomeError> {
    tx.txn
        .open_table(EXPIRIES)?
        .remove((h.expires_at.0, &id.0))?;
    if let Some(p) = &h.parent {
        tx.txn.open_table(CHILDREN)?.remove((&p.0, &id.0))?;
    }
    Ok(())
}

impl Home {
    /// Stores a received message and its content key. Storing it again is
    /// harmless: the new sources are merged into the stored record, which
    /// stays opened once opened; the key is kept.
    pub fn put_received(&self, r: &Received, key: &ContentKey) -> Result<(), HomeError> {
        r.check()?;
        let id = r.message_id;
        self.write(|tx| {
            let old = {
                let t = tx.txn.open_table(RECEIVED)?;
                let v = t.get(&id.0)?;
                v.map(|v| Received::decode(&id.0, v.value())).transpose()?
            };
            let rec = match old {
                Some(mut old) => {
                    for s in &r.sources {
                        if !old.sources.contains(s) {
                            old.sources.push(s.clone());
                        }
                    }
                    old.opened |= r.opened;
                    old.check()?;
                    old
                }
                None => r.clone(),
            };
            tx.put_secret(&name(Purpose::ReceivedKey, &id), key.as_bytes())?;
            tx.txn
                .open_table(RECEIVED)?
                .insert(&id.0, rec.encode().as_slice())?;
            index(tx, &id, &rec.header)
        })
    }

    /// The received message `id`.
    pub fn received(&self, id: &MessageId) -> Result<Option<Received>, HomeError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(RECEIVED)?;
        let v = t.get(&id.0)?;
        v.map(|v| Received::decode(&id.0, v.value())).transpose()
    }

    /// The content key of received message `id`, while it is stored.
    pub fn received_key(&self, id: &MessageId) -> Result<Option<ContentKey>, HomeError> {
        let k = self.slots.read(&self.db, &name(Purpose::ReceivedKey, id))?;
        Ok(k.map(|k| ContentKey::from_bytes(*k)))
    }

    /// Every received message, newest first.
    pub fn list_received(&self) -> Result<Vec<Received>, HomeError> {
        let txn = self.db.begin_read()?;
        let mut all = txn
            .open_table(RECEIVED)?
            .iter()?
            .map(|row| {
                let (k, v) = row?;
                Received::decode(k.value(), v.value())
            })
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by_key(|r| std::cmp::Reverse((r.received_at, r.message_id)));
        Ok(all)
    }

    /// Marks received message `id` opened. False if there is no such message.
    pub fn mark_opened(&self, id: &MessageId) -> Result<bool, HomeError> {
        self.write(|tx| {
            let mut t = tx.txn.open_table(RECEIVED)?;
            let old = t
                .get(&id.0)?
                .map(|v| Received::decode(&id.0, v.value()))
                .transpose()?;
            let Some(mut r) = old else {
                return Ok(false);
            };
            r.opened = true;
            t.insert(&id.0, r.encode().as_slice())?;
            Ok(true)
        })
    }

    /// Stores a sent message with its revocation secret (which must be the
    /// one its id derives from) and, while the sender still needs it, its
    /// content key. Storing it again replaces the record and keeps the secrets.
    pub fn put_sent(
        &self,
        s: &Sent,
        content_key: Option<&ContentKey>,
        revocation: &SigningSecret,
    ) -> Result<(), HomeError> {
        s.check()?;
        let id = s.message_id;
        if MessageId::for_revocation_key(&revocation.public()) != id {
            return Err(HomeError::Invalid(
                "the revocation secret is not the message's".into(),
            ));
        }
        self.write(|tx| {
            let old = {
                let t = tx.txn.open_table(SENT)?;
                let v = t.get(&id.0)?;
                v.map(|v| Sent::decode(&id.0, v.value())).transpose()?
            };
            if let Some(old) = old {
                unindex(tx, &id, &old.header)?;
            }
            tx.put_secret(&name(Purpose::Revocation, &id), &revocation.to_seed())?;
            if let Some(k) = content_key {
                tx.put_secret(&name(Purpose::SentKey, &id), k.as_bytes())?;
            }
            tx.txn
                .open_table(SENT)?
                .insert(&id.0, s.encode().as_slice())?;
            index(tx, &id, &s.header)?;
            // A message both sent and received keeps the received index rows.
            if let Some(r) = tx.txn.open_table(RECEIVED)?.get(&id.0)? {
                let r = Received::decode(&id.0, r.value())?;
                index(tx, &id, &r.header)?;
            }
            Ok(())
        })
    }

    /// The sent message `id`.
    pub fn sent(&self, id: &MessageId) -> Result<Option<Sent>, HomeError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(SENT)?;
        let v = t.get(&id.0)?;
        v.map(|v| Sent::decode(&id.0, v.value())).transpose()
    }

    /// The revocation secret of sent message `id`, while it is stored.
    pub fn sent_revocation_secret(
        &self,
        id: &MessageId,
    ) -> Result<Option<SigningSecret>, HomeError> {
        let k = self.slots.read(&self.db, &name(Purpose::Revocation, id))?;
        Ok(k.map(|k| SigningSecret::from_seed(&k)))
    }

    /// The content key of sent message `id`, until [`Home::forget_content_key`].
    pub fn sent_content_key(&self, id: &MessageId) -> Result<Option<ContentKey>, HomeError> {
        let k = self.slots.read(&self.db, &name(Purpose::SentKey, id))?;
        Ok(k.map(|k| ContentKey::from_bytes(*k)))
    }

    /// Wipes the content key of sent message `id` (the record and the
    /// revocation secret stay). False if none was stored.
    pub fn forget_content_key(&self, id: &MessageId) -> Result<bool, HomeError> {
        self.write(|tx| tx.drop_secret(&name(Purpose::SentKey, id)))
    }

    /// Every sent message, newest first.
    pub fn list_sent(&self) -> Result<Vec<Sent>, HomeError> {
        let txn = self.db.begin_read()?;
        let mut all = txn
            .open_table(SENT)?
            .iter()?
            .map(|row| {
                let (k, v) = row?;
                Sent::decode(k.value(), v.value())
            })
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.message_id)));
        Ok(all)
    }

    /// Erases message `id`: its received and sent records go, then every
    /// secret slot of it (content keys, revocation secret) is wiped.
    pub fn erase(&self, id: &MessageId) -> Result<Erased, HomeError> {
        self.write(|tx| {
            let mut erased = Erased::default();
            let r = tx
                .txn
                .open_table(RECEIVED)?
                .remove(&id.0)?
                .map(|v| v.value().to_vec());
            if let Some(r) = r {
                unindex(tx, id, &Received::decode(&id.0, &r)?.header)?;
                erased.received = true;
            }
            let s = tx
                .txn
                .open_table(SENT)?
                .remove(&id.0)?
                .map(|v| v.value().to_vec());
            if let Some(s) = s {
                unindex(tx, id, &Sent::decode(&id.0, &s)?.header)?;
                erased.sent = true;
            }
            for p in [Purpose::ReceivedKey, Purpose::SentKey, Purpose::Revocation] {
                if tx.drop_secret(&name(p, id))? {
                    erased.secrets += 1;
                }
            }
            Ok(erased)
        })
    }

    /// Messages (received or sent) whose `expires_at` is at or before `now`,
    /// soonest first. The caller erases them with [`Home::erase`].
    pub fn expired(&self, now: UnixMillis) -> Result<Vec<MessageId>, HomeError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(EXPIRIES)?;
        let mut out: Vec<MessageId> = Vec::new();
        for row in t.range((0u64, &[0u8; 32])..=(now.0, &[0xffu8; 32]))? {
            let id = MessageId(*row?.0.value().1);
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Messages whose header names `parent` (reactions, live segments).
    pub fn children(&self, parent: &MessageId) -> Result<Vec<MessageId>, HomeError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(CHILDREN)?;
        t.range((&parent.0, &[0u8; 32])..=(&parent.0, &[0xffu8; 32]))?
            .map(|row| Ok(MessageId(*row?.0.value().1)))
            .collect()
    }
}
