//! The redb tables. Keys are plaintext (ids, mailboxes, sequence numbers,
//! times); every envelope, manifest and chunk value is sealed (see `crypt`).

use redb::{ReadableTable, Table, TableDefinition, TableHandle, WriteTransaction};

use super::StoreError;

/// A 32-byte key (message id, chunk hash, identity key, prekey).
type K32 = &'static [u8; 32];
/// Key of a one-time prekey: (identity key, created_at, public key).
type OneTimeKey = (K32, u64, K32);

/// Message id → [`super::records::MessageMeta`].
pub(super) const MESSAGES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("messages");
/// Message id → sealed manifest.
pub(super) const MANIFESTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("manifests");
/// Chunk hash → owner message id ‖ chunk sealed under the owner's key.
pub(super) const CHUNKS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("chunks");
/// Chunk hash → the part of its record beyond `chunk_rows::HEAD_MAX` bytes.
pub(super) const CHUNK_TAILS: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new("chunk_tails");
/// (chunk hash, message id): the message's manifest names the chunk. The
/// chunk's reference count is the number of rows with its hash.
pub(super) const CHUNK_REFS: TableDefinition<(&[u8; 32], &[u8; 32]), ()> =
    TableDefinition::new("chunk_refs");
/// (message id, chunk hash): the same relation, to find a message's chunks
/// without its (sealed) manifest.
pub(super) const MESSAGE_CHUNKS: TableDefinition<(&[u8; 32], &[u8; 32]), ()> =
    TableDefinition::new("message_chunks");
/// (mailbox, message id) → [`super::records::EnvelopeMeta`] ‖ sealed envelope.
pub(super) const ENVELOPES: TableDefinition<(&[u8; 32], &[u8; 32]), &[u8]> =
    TableDefinition::new("envelopes");
/// (message id, mailbox): the envelopes of a message.
pub(super) const MESSAGE_ENVELOPES: TableDefinition<(&[u8; 32], &[u8; 32]), ()> =
    TableDefinition::new("message_envelopes");
/// (mailbox, seq) → message id: the complete, listable envelopes.
pub(super) const MAILBOX_SEQ: TableDefinition<(&[u8; 32], u64), &[u8; 32]> =
    TableDefinition::new("mailbox_seq");
/// (expires_at, message id): the collector's queue.
pub(super) const EXPIRIES: TableDefinition<(u64, &[u8; 32]), ()> = TableDefinition::new("expiries");
/// (deposited_at, mailbox, message id): the pending envelopes, oldest
/// first, for the collector of abandoned uploads (`pending_ttl_secs`).
/// A row exists exactly while its envelope is pending.
pub(super) const PENDING: TableDefinition<PendingKey, ()> = TableDefinition::new("pending");
/// Key of a pending envelope's row: (deposited_at, mailbox, message id).
pub(super) type PendingKey = (u64, K32, K32);
/// Message id → (revoked_at, keep_until).
pub(super) const TOMBSTONES: TableDefinition<&[u8; 32], (u64, u64)> =
    TableDefinition::new("tombstones");
/// (keep_until, message id): the tombstone collector's queue.
pub(super) const TOMBSTONE_EXPIRIES: TableDefinition<(u64, &[u8; 32]), ()> =
    TableDefinition::new("tombstone_expiries");
/// Identity key → [`super::records::IdentityRecord`]: the served mailboxes.
pub(super) const IDENTITIES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("identities");
/// Identity key → the newest signed prekey.
pub(super) const SIGNED_PREKEYS: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new("signed_prekeys");
/// (identity key, created_at, public key) → one-time prekey, oldest first.
pub(super) const ONE_TIME_PREKEYS: TableDefinition<OneTimeKey, &[u8]> =
    TableDefinition::new("one_time_prekeys");
/// Depositor peer id → (bytes charged, envelopes).
pub(super) const DEPOSITORS: TableDefinition<&[u8], (u64, u64)> =
    TableDefinition::new("depositors");
/// Name → counter.
pub(super) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// Counter: bytes of chunks, manifests and envelopes held.
pub(super) const STORED_BYTES: &str = "stored_bytes";
/// Counter: bytes of distinct messages (declared ciphertext and manifest), for the store quota.
pub(super) const RESERVED_BYTES: &str = "reserved_bytes";

/// Table names, as used in associated data of sealed values.
pub(super) const T_MANIFESTS: &str = "manifests";
pub(super) const T_CHUNKS: &str = "chunks";
pub(super) const T_ENVELOPES: &str = "envelopes";

/// Every table, opened in one write transaction.
pub(super) struct Tables<'t> {
    pub messages: Table<'t, &'static [u8; 32], &'static [u8]>,
    pub manifests: Table<'t, &'static [u8; 32], &'static [u8]>,
    pub chunks: Table<'t, &'static [u8; 32], &'static [u8]>,
    pub chunk_tails: Table<'t, &'static [u8; 32], &'static [u8]>,
    pub chunk_refs: Table<'t, (&'static [u8; 32], &'static [u8; 32]), ()>,
    pub message_chunks: Table<'t, (&'static [u8; 32], &'static [u8; 32]), ()>,
    pub envelopes: Table<'t, (&'static [u8; 32], &'static [u8; 32]), &'static [u8]>,
    pub message_envelopes: Table<'t, (&'static [u8; 32], &'static [u8; 32]), ()>,
    pub mailbox_seq: Table<'t, (&'static [u8; 32], u64), &'static [u8; 32]>,
    pub expiries: Table<'t, (u64, &'static [u8; 32]), ()>,
    pub pending: Table<'t, PendingKey, ()>,
    pub tombstones: Table<'t, &'static [u8; 32], (u64, u64)>,
    pub tombstone_expiries: Table<'t, (u64, &'static [u8; 32]), ()>,
    pub identities: Table<'t, &'static [u8; 32], &'static [u8]>,
    pub signed_prekeys: Table<'t, &'static [u8; 32], &'static [u8]>,
    pub one_time_prekeys: Table<'t, OneTimeKey, &'static [u8]>,
    pub depositors: Table<'t, &'static [u8], (u64, u64)>,
    pub counters: Table<'t, &'static str, u64>,
}

impl<'t> Tables<'t> {
    /// Opens every table, creating the missing ones, and fills a table new
    /// to an existing database from the others: once, when the store opens.
    pub(super) fn create(txn: &'t WriteTransaction) -> Result<(), StoreError> {
        // A database written before the pending table existed: its pending
        // envelopes are indexed once, here.
        let index_pending = !txn.list_tables()?.any(|h| h.name() == PENDING.name());
        let mut t = Self::open(txn)?;
        if index_pending {
            t.index_pending()?;
        }
        Ok(())
    }

    pub(super) fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            messages: txn.open_table(MESSAGES)?,
            manifests: txn.open_table(MANIFESTS)?,
            chunks: txn.open_table(CHUNKS)?,
            chunk_tails: txn.open_table(CHUNK_TAILS)?,
            chunk_refs: txn.open_table(CHUNK_REFS)?,
            message_chunks: txn.open_table(MESSAGE_CHUNKS)?,
            envelopes: txn.open_table(ENVELOPES)?,
            message_envelopes: txn.open_table(MESSAGE_ENVELOPES)?,
            mailbox_seq: txn.open_table(MAILBOX_SEQ)?,
            expiries: txn.open_table(EXPIRIES)?,
            pending: txn.open_table(PENDING)?,
            tombstones: txn.open_table(TOMBSTONES)?,
            tombstone_expiries: txn.open_table(TOMBSTONE_EXPIRIES)?,
            identities: txn.open_table(IDENTITIES)?,
            signed_prekeys: txn.open_table(SIGNED_PREKEYS)?,
            one_time_prekeys: txn.open_table(ONE_TIME_PREKEYS)?,
            depositors: txn.open_table(DEPOSITORS)?,
            counters: txn.open_table(COUNTERS)?,
        })
    }

    /// Adds a `pending` row for every pending envelope (`seq` 0).
    fn index_pending(&mut self) -> Result<(), StoreError> {
        for row in self.envelopes.iter()? {
            let (k, v) = row?;
            let (mailbox, id) = k.value();
            let (env, _) = super::records::EnvelopeMeta::decode(v.value())?;
            if env.seq == 0 {
                self.pending.insert((env.deposited_at, mailbox, id), ())?;
            }
        }
        Ok(())
    }

    /// A counter's value (0 if never set).
    pub(super) fn counter(&self, name: &str) -> Result<u64, StoreError> {
        use redb::ReadableTable;
        Ok(self.counters.get(name)?.map(|g| g.value()).unwrap_or(0))
    }

    /// Adds `delta` (which may be negative) to a counter.
    pub(super) fn add_counter(&mut self, name: &str, delta: i128) -> Result<(), StoreError> {
        let v = i128::from(self.counter(name)?) + delta;
        let v = u64::try_from(v).map_err(|_| StoreError::corrupt(format!("counter {name}")))?;
        self.counters.insert(name, v)?;
        Ok(())
    }
}

/// The second ids of the `(first, second)` keys with this `first` in a
/// table of id pairs (`chunk_refs`, `message_chunks`,
/// `message_envelopes`), in order.
pub(super) fn seconds(
    table: &impl ReadableTable<(&'static [u8; 32], &'static [u8; 32]), ()>,
    first: &[u8; 32],
) -> Result<Vec<[u8; 32]>, StoreError> {
    let (lo, hi) = (&super::ZERO32, &super::FF32);
    Ok(table
        .range((first, lo)..=(first, hi))?
        .map(|r| r.map(|(k, _)| *k.value().1))
        .collect::<Result<_, _>>()?)
}
