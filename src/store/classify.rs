//! What kind of failure a database error is (a unique or overlap
//! violation, a retryable conflict, an unreachable database), for both
//! backends and both kinds of connection: the classifiers read the store's
//! [`StoreError`] and a bare [`sqlx::Error`] alike.

use super::{SqliteError, StoreError};
use std::borrow::Cow;

/// A database error as the classifiers see it.
pub trait DbFailure {
    /// The database's error code (SQLSTATE on PostgreSQL, the extended
    /// result code in decimal on SQLite) and message, if the database
    /// refused a statement.
    fn refusal(&self) -> Option<(Option<Cow<'_, str>>, &str)>;
    /// Whether the database could not be reached at all.
    fn unreachable(&self) -> bool;
}

impl DbFailure for sqlx::Error {
    fn refusal(&self) -> Option<(Option<Cow<'_, str>>, &str)> {
        match self {
            sqlx::Error::Database(d) => Some((d.code(), d.message())),
            _ => None,
        }
    }

    fn unreachable(&self) -> bool {
        matches!(
            self,
            sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed
        )
    }
}

impl DbFailure for StoreError {
    fn refusal(&self) -> Option<(Option<Cow<'_, str>>, &str)> {
        match self {
            StoreError::Sql(e) => e.refusal(),
            StoreError::Sqlite(e) => e.refusal(),
            _ => None,
        }
    }

    fn unreachable(&self) -> bool {
        match self {
            StoreError::Sql(e) => e.unreachable(),
            StoreError::Writer(_) => true,
            _ => false,
        }
    }
}

impl DbFailure for SqliteError {
    fn refusal(&self) -> Option<(Option<Cow<'_, str>>, &str)> {
        Some((self.code.map(|c| Cow::Owned(c.to_string())), &self.message))
    }

    fn unreachable(&self) -> bool {
        false
    }
}

fn code_is(e: &(impl DbFailure + ?Sized), codes: &[&str], message: &str) -> bool {
    e.refusal().is_some_and(|(code, msg)| {
        code.is_some_and(|c| codes.contains(&c.as_ref())) || msg.contains(message)
    })
}

/// A unique-constraint violation (duplicate open session, idempotency key…).
pub fn is_unique_violation(e: &(impl DbFailure + ?Sized)) -> bool {
    code_is(e, &["23505", "2067", "1555"], "UNIQUE constraint failed")
}

/// An overlapping active reservation of the same bay (exclusion constraint on
/// PostgreSQL, trigger on SQLite).
pub fn is_overlap_violation(e: &(impl DbFailure + ?Sized)) -> bool {
    code_is(e, &["23P01"], "reservation_overlap")
}

/// A serialisation failure or deadlock that a retry resolves.
pub fn is_retryable(e: &(impl DbFailure + ?Sized)) -> bool {
    code_is(e, &["40001", "40P01", "5", "517"], "database is locked")
}

/// SQLite's `SQLITE_BUSY` (any extended code of it).
pub(super) fn is_busy(e: &(impl DbFailure + ?Sized)) -> bool {
    e.refusal().is_some_and(|(code, _)| {
        code.is_some_and(|c| c.parse::<i32>().is_ok_and(|n| n & 0xff == 5))
    })
}

/// The database cannot be reached at all (as opposed to refusing a statement).
pub fn is_unavailable(e: &(impl DbFailure + ?Sized)) -> bool {
    e.unreachable()
        || e.refusal().is_some_and(|(code, _)| {
            code.is_some_and(|c| c.starts_with("08") || c == "57P01" || c == "57P03")
        })
}
