//! Transactions for the services.
//!
//! SQLite has one writer at a time. Rather than letting concurrent writers
//! spin in SQLite's busy handler (which sleeps in milliseconds and collapses
//! throughput), every write transaction of this process queues for the
//! store's one writer connection ([`crate::store::SqliteWriter`]) and opens
//! `BEGIN IMMEDIATE` on it; readers use pooled connections beside it (WAL).
//! PostgreSQL needs no such lock: its constraints and conditional updates
//! settle races, and the services retry.

use crate::store::{SqliteWriter, Store, WriterGuard};
use sqlx::any::Any;
use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, Executor};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

/// How long a gate decision waits for a database connection before the
/// database counts as down (and the offline rules apply).
pub const ACQUIRE_DEADLINE: Duration = Duration::from_secs(3);

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
    /// SQLite: the writer connection, held until commit or rollback (`guard`
    /// is `None` once committed or handed to the rollback task). `in_tx` is
    /// false for [`Db::write_one`].
    Sqlite { guard: Option<WriterGuard>, writer: Arc<SqliteWriter>, in_tx: bool },
}

const OPEN: &str = "an open write transaction has its connection";

impl Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.inner {
            Inner::Pool(tx) => &**tx.as_ref().expect(OPEN),
            Inner::PoolSingle(c) => c,
            Inner::Sqlite { guard, .. } => guard.as_ref().and_then(|g| g.as_ref()).expect(OPEN),
        }
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.inner {
            Inner::Pool(tx) => &mut **tx.as_mut().expect(OPEN),
            Inner::PoolSingle(c) => c,
            Inner::Sqlite { guard, .. } => guard.as_mut().and_then(|g| g.as_mut()).expect(OPEN),
        }
    }
}

impl WriteTx {
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        match &mut self.inner {
            Inner::Pool(tx) => tx.take().expect(OPEN).commit().await,
            Inner::PoolSingle(_) => Ok(()),
            Inner::Sqlite { guard, writer, in_tx } => {
                if *in_tx {
                    guard.as_mut().and_then(|g| g.as_mut()).expect(OPEN).execute("COMMIT").await?;
                    *in_tx = false;
                }
                // Committed: release the writer (no rollback).
                *guard = None;
                writer.committed();
                Ok(())
            }
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        // An uncommitted SQLite transaction is rolled back before the next
        // writer gets the connection: the guard moves into a task that
        // rolls back and then releases it. (A pooled transaction rolls
        // itself back.) Without a runtime (shutting down) the connection is
        // dropped, which ends the transaction as well.
        let Inner::Sqlite { guard, in_tx: true, .. } = &mut self.inner else { return };
        let Some(mut guard) = guard.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Some(conn) = guard.as_mut() {
                        // A database error here means no transaction was open
                        // (BEGIN failed, or COMMIT went through before its
                        // caller was cancelled); anything else leaves the
                        // connection in doubt, so it is replaced.
                        match conn.execute("ROLLBACK").await {
                            Ok(_) | Err(sqlx::Error::Database(_)) => {}
                            Err(_) => *guard = None,
                        }
                    }
                });
            }
            Err(_) => *guard = None,
        }
    }
}

impl Db {
    pub fn new(store: Store) -> Db {
        Db { store }
    }

    /// Opens a write transaction (on SQLite: queues for the writer first).
    pub async fn write(&self) -> Result<WriteTx, sqlx::Error> {
        self.writer(true).await
    }

    /// The writer for a write that is one statement, atomic by itself: the
    /// same queueing as [`Db::write`] without `BEGIN` and `COMMIT` (two
    /// round trips). [`WriteTx::commit`] only releases it.
    pub async fn write_one(&self) -> Result<WriteTx, sqlx::Error> {
        self.writer(false).await
    }

    async fn writer(&self, in_tx: bool) -> Result<WriteTx, sqlx::Error> {
        let begin = async {
            match self.store.sqlite_writer() {
                Some(w) => {
                    // A closed pool means the database was shut (tests use
                    // this to take it "down"); the writer follows the pool.
                    if self.store.pool().is_closed() {
                        return Err(sqlx::Error::PoolClosed);
                    }
                    // Wrapped before BEGIN so that being cancelled (the
                    // deadline) or failing from here on rolls back.
                    let mut tx = WriteTx { inner: Inner::Sqlite { guard: Some(w.lock().await?), writer: w.clone(), in_tx } };
                    if in_tx {
                        (&mut *tx).execute("BEGIN IMMEDIATE").await?;
                    }
                    Ok(tx)
                }
                None if in_tx => Ok(WriteTx { inner: Inner::Pool(Some(self.store.pool().begin().await?)) }),
                None => Ok(WriteTx { inner: Inner::PoolSingle(self.store.pool().acquire().await?) }),
            }
        };
        tokio::time::timeout(ACQUIRE_DEADLINE, begin).await.map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    pub async fn read(&self) -> Result<PoolConnection<Any>, sqlx::Error> {
        tokio::time::timeout(ACQUIRE_DEADLINE, self.store.pool().acquire()).await.map_err(|_| sqlx::Error::PoolTimedOut)?
    }
}
