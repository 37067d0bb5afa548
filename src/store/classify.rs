//! What kind of failure a database error is (a unique or overlap
//! violation, a retryable conflict, an unreachable database), for both
//! backends.

// ---------------------------------------------------------------- error kinds

/// A unique-constraint violation (duplicate open session, idempotency key…).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.code()
                .is_some_and(|c| c == "23505" || c == "2067" || c == "1555")
                || d.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

/// An overlapping active reservation of the same bay (exclusion constraint on
/// PostgreSQL, trigger on SQLite).
pub fn is_overlap_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.code().is_some_and(|c| c == "23P01") || d.message().contains("reservation_overlap")
        }
        _ => false,
    }
}

/// A serialisation failure or deadlock that a retry resolves.
pub fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.code()
                .is_some_and(|c| c == "40001" || c == "40P01" || c == "5" || c == "517")
                || d.message().contains("database is locked")
        }
        _ => false,
    }
}

/// The database cannot be reached at all (as opposed to refusing a statement).
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    ) || matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("08") || c == "57P01" || c == "57P03"))
}
