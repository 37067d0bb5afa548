//! Transactions, for the services and for the store's own writes.
//!
//! SQLite has one writer at a time. Rather than letting concurrent writers
//! spin in SQLite's busy handler (which sleeps in milliseconds and collapses
//! throughput), every SQLite write of this process, the services' and the
//! store's own ([`Store::audit`], [`Store::camera_event`],
//! [`Store::plate_read`]), queues for the store's one writer connection
//! ([`crate::store::SqliteWriter`]), which commits consecutive transactions
//! together (group commit, see there); readers use pooled connections beside
//! it (WAL). PostgreSQL needs no such lock: its constraints and conditional
//! updates settle races, and the services retry.

use super::{Ex, SqliteTx, Store, StoreConn, StoreError};
use sqlx::any::Any;
use sqlx::pool::PoolConnection;
use std::time::Duration;

/// How long a gate decision waits for a database connection before the
/// database counts as down (and the offline rules apply).
pub const ACQUIRE_DEADLINE: Duration = Duration::from_secs(3);

/// The services' handle on the store's transactions.
#[derive(Clone)]
pub struct Db {
    pub store: Store,
}

/// A write transaction: rolled back when dropped without [`WriteTx::commit`].
/// (From [`Db::write_one`]: a connection whose statements commit one by one.)
pub struct WriteTx {
    inner: Inner,
}

enum Inner {
    /// PostgreSQL: a pooled connection's transaction (`None` once committed).
    Pool(Option<sqlx::Transaction<'static, Any>>),
    /// PostgreSQL, one statement: a pooled connection in autocommit.
    PoolSingle(PoolConnection<Any>),
    /// SQLite: a member of the writer's group (it rolls itself back on drop).
    Sqlite(SqliteTx),
}

const OPEN: &str = "an open write transaction has its connection";

impl StoreConn for WriteTx {
    fn ex(&mut self) -> Ex<'_> {
        match &mut self.inner {
            Inner::Pool(tx) => Ex::Any(tx.as_mut().expect(OPEN)),
            Inner::PoolSingle(c) => Ex::Any(c),
            Inner::Sqlite(tx) => tx.ex(),
        }
    }
}

impl WriteTx {
    /// Commits; on SQLite it returns once the group holding this transaction
    /// is committed, with the group's error if its COMMIT failed.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            Inner::Pool(mut tx) => Ok(tx.take().expect(OPEN).commit().await?),
            Inner::PoolSingle(_) => Ok(()),
            Inner::Sqlite(tx) => tx.commit().await,
        }
    }
}

impl Db {
    pub fn new(store: Store) -> Db {
        Db { store }
    }

    /// Opens a write transaction (on SQLite: queues for the writer first).
    pub async fn write(&self) -> Result<WriteTx, StoreError> {
        self.store.write().await
    }

    /// The writer for a write that is one statement, atomic by itself (see
    /// [`Store::write_one`]).
    pub async fn write_one(&self) -> Result<WriteTx, StoreError> {
        self.store.write_one().await
    }

    /// A pooled connection for reads.
    pub async fn read(&self) -> Result<PoolConnection<Any>, StoreError> {
        self.store.read().await
    }
}

impl Store {
    /// Opens a write transaction (on SQLite: queues for the writer first).
    pub async fn write(&self) -> Result<WriteTx, StoreError> {
        self.writer(true).await
    }

    /// The writer for a write that is one statement, atomic by itself: the
    /// same queueing as [`Store::write`] without a savepoint. On SQLite it is
    /// part of the writer's group (opened for it when none is) and its
    /// commit waits for the group's.
    pub async fn write_one(&self) -> Result<WriteTx, StoreError> {
        self.writer(false).await
    }

    async fn writer(&self, in_tx: bool) -> Result<WriteTx, StoreError> {
        let begin = async {
            match self.sqlite_writer() {
                Some(w) => {
                    // A closed pool means the database was shut (tests use
                    // this to take it "down"); the writer follows the pool.
                    if self.pool().is_closed() {
                        return Err(sqlx::Error::PoolClosed.into());
                    }
                    Ok(WriteTx {
                        inner: Inner::Sqlite(w.begin(!in_tx).await?),
                    })
                }
                None if in_tx => Ok(WriteTx {
                    inner: Inner::Pool(Some(self.pool().begin().await?)),
                }),
                None => Ok(WriteTx {
                    inner: Inner::PoolSingle(self.pool().acquire().await?),
                }),
            }
        };
        tokio::time::timeout(ACQUIRE_DEADLINE, begin)
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    /// A pooled connection for reads.
    pub async fn read(&self) -> Result<PoolConnection<Any>, StoreError> {
        Ok(
            tokio::time::timeout(ACQUIRE_DEADLINE, self.pool().acquire())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??,
        )
    }
}
