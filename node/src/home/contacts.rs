//! Contacts, keyed by identity key.

use mayfly_protocol::{ContactCard, DeviceCertificate, SigningPublicKey, UnixMillis};
use redb::{ReadableDatabase, ReadableTable};

use super::records::Contact;
use super::tables::CONTACTS;
use super::{Home, HomeError};

/// Fewest hex characters of an identity key that [`Home::find_contact`] matches.
pub const MIN_KEY_PREFIX: usize = 4;

impl Home {
    /// Adds the contact `card` speaks for, or updates it: a card whose
    /// certificate is not older than the stored card's replaces it (and its
    /// name); an older card changes nothing. Returns the stored contact.
    pub fn add_contact(&self, card: &ContactCard, now: UnixMillis) -> Result<Contact, HomeError> {
        if card.identity_key() == self.identity().public() {
            return Err(HomeError::OwnCard);
        }
        let key = card.identity_key().to_bytes();
        self.write(|tx| {
            let mut t = tx.txn.open_table(CONTACTS)?;
            let old = t
                .get(&key)?
                .map(|v| Contact::decode(v.value()))
                .transpose()?;
            let contact = match old {
                Some(old) if card.certificate().serial() < old.card.certificate().serial() => {
                    return Ok(old);
                }
                Some(old) => Contact {
                    certificate: if old.certificate.supersedes(card.certificate()) {
                        old.certificate
                    } else {
                        card.certificate().clone()
                    },
                    card: card.clone(),
                    name: card.display_name().to_owned(),
                    added_at: old.added_at,
                },
                None => Contact {
                    card: card.clone(),
                    certificate: card.certificate().clone(),
                    name: card.display_name().to_owned(),
                    added_at: now,
                },
            };
            t.insert(&key, contact.encode().as_slice())?;
            Ok(contact)
        })
    }

    /// Every contact, sorted by name (then identity key).
    pub fn contacts(&self) -> Result<Vec<Contact>, HomeError> {
        let txn = self.db.begin_read()?;
        let mut all = txn
            .open_table(CONTACTS)?
            .iter()?
            .map(|row| Contact::decode(row?.1.value()))
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by(|a, b| {
            (a.name.as_str(), a.card.identity_key().to_bytes())
                .cmp(&(b.name.as_str(), b.card.identity_key().to_bytes()))
        });
        Ok(all)
    }

    /// The contact with this identity key.
    pub fn contact(&self, identity: &SigningPublicKey) -> Result<Option<Contact>, HomeError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(CONTACTS)?;
        let v = t.get(&identity.to_bytes())?;
        v.map(|v| Contact::decode(v.value())).transpose()
    }

    /// The contact named exactly `query`, else the one whose identity key's
    /// lowercase hex starts with `query` (at least [`MIN_KEY_PREFIX`]
    /// characters, case-insensitive).
    pub fn find_contact(&self, query: &str) -> Result<Contact, HomeError> {
        let all = self.contacts()?;
        let pick = |mut found: Vec<Contact>| match found.len() {
            0 => None,
            1 => found.pop().map(Ok),
            _ => Some(Err(HomeError::AmbiguousContact(query.to_owned()))),
        };
        let named = all.iter().filter(|c| c.name == query).cloned().collect();
        if let Some(r) = pick(named) {
            return r;
        }
        let q = query.to_ascii_lowercase();
        if q.len() >= MIN_KEY_PREFIX && q.bytes().all(|b| b.is_ascii_hexdigit()) {
            let by_key = all
                .into_iter()
                .filter(|c| hex::encode(c.card.identity_key().to_bytes()).starts_with(&q))
                .collect();
            if let Some(r) = pick(by_key) {
                return r;
            }
        }
        Err(HomeError::UnknownContact(query.to_owned()))
    }

    /// Stores `cert` as its contact's newest certificate if it supersedes
    /// the one stored. False if it does not, or if its identity is no contact.
    pub fn update_certificate(&self, cert: &DeviceCertificate) -> Result<bool, HomeError> {
        // Most calls (each delivery's fresh bundle) bring the certificate
        // already stored: a read answers them, with no durable commit.
        match self.contact(&cert.identity_key())? {
            Some(c) if cert.supersedes(&c.certificate) => {}
            _ => return Ok(false),
        }
        let key = cert.identity_key().to_bytes();
        self.write(|tx| {
            let mut t = tx.txn.open_table(CONTACTS)?;
            let old = t
                .get(&key)?
                .map(|v| Contact::decode(v.value()))
                .transpose()?;
            let Some(mut c) = old else {
                return Ok(false);
            };
            if !cert.supersedes(&c.certificate) {
                return Ok(false);
            }
            c.certificate = cert.clone();
            t.insert(&key, c.encode().as_slice())?;
            Ok(true)
        })
    }
}
