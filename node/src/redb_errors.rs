//! Conversions from redb's error types, shared by the stores.

/// Implements `From<E>` for `$err` for every redb error type a store meets,
/// through `$err::Db(redb::Error)`.
macro_rules! from_redb {
    ($err:ty) => {
        $crate::redb_errors::from_redb!(
            $err;
            redb::DatabaseError,
            redb::TransactionError,
            redb::TableError,
            redb::StorageError,
            redb::CommitError
        );
    };
    ($err:ty; $($t:ty),*) => {$(
        impl From<$t> for $err {
            fn from(e: $t) -> Self {
                Self::Db(redb::Error::from(e))
            }
        }
    )*};
}

pub(crate) use from_redb;
