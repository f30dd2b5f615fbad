//! The tables of `client.redb`. Nothing here is secret: every value that
//! must become unrecoverable lives in `secrets.slots` (see `slots`).

use redb::{TableDefinition, WriteTransaction};

use super::HomeError;

/// A 32-byte key (message id, identity key, prekey, slot name).
pub(super) type K32 = &'static [u8; 32];

/// `"format"` → `1` (u64 BE, written last by `create`); `"profile"` → JSON;
/// `"superseded"` → the newer device's certificate, once superseded.
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Slot name → slot number in `secrets.slots`.
pub(super) const SLOTS: TableDefinition<K32, u32> = TableDefinition::new("slots");
/// Identity key → contact record.
pub(super) const CONTACTS: TableDefinition<K32, &[u8]> = TableDefinition::new("contacts");
/// Message id → received record.
pub(super) const RECEIVED: TableDefinition<K32, &[u8]> = TableDefinition::new("received");
/// Message id → sent record.
pub(super) const SENT: TableDefinition<K32, &[u8]> = TableDefinition::new("sent");
/// (expires_at, message id): received and sent messages by expiry.
pub(super) const EXPIRIES: TableDefinition<(u64, K32), ()> = TableDefinition::new("expiries");
/// (parent id, message id): messages whose header names a parent.
pub(super) const CHILDREN: TableDefinition<(K32, K32), ()> = TableDefinition::new("children");
/// Prekey public key → prekey record.
pub(super) const PREKEYS: TableDefinition<K32, &[u8]> = TableDefinition::new("prekeys");
/// Invite slot name → expires_at.
pub(super) const INVITES: TableDefinition<K32, u64> = TableDefinition::new("invites");
/// Relay address → last sequence number fetched.
pub(super) const CURSORS: TableDefinition<&str, u64> = TableDefinition::new("cursors");

/// Identity key → `u64` when it started following this device's identity.
pub(super) const FOLLOWERS: TableDefinition<K32, u64> = TableDefinition::new("followers");
/// Broadcast id → live broadcast record (keys in slots of purpose 6).
pub(super) const BROADCASTS: TableDefinition<K32, &[u8]> = TableDefinition::new("broadcasts");

/// `META` key of the format version.
pub(super) const FORMAT_KEY: &str = "format";
/// `META` key of the profile.
pub(super) const PROFILE_KEY: &str = "profile";
/// `META` key of the certificate that superseded this device (CLIENT.md §3.3).
pub(super) const SUPERSEDED_KEY: &str = "superseded";
/// The only format version.
pub(super) const FORMAT_VERSION: u64 = 1;

/// Creates every table (a no-op when they exist).
pub(super) fn create_all(txn: &WriteTransaction) -> Result<(), HomeError> {
    txn.open_table(META)?;
    txn.open_table(SLOTS)?;
    txn.open_table(CONTACTS)?;
    txn.open_table(RECEIVED)?;
    txn.open_table(SENT)?;
    txn.open_table(EXPIRIES)?;
    txn.open_table(CHILDREN)?;
    txn.open_table(PREKEYS)?;
    txn.open_table(INVITES)?;
    txn.open_table(CURSORS)?;
    txn.open_table(FOLLOWERS)?;
    txn.open_table(BROADCASTS)?;
    Ok(())
}
