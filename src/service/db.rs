//! Transactions for the services.
//!
//! SQLite has one writer at a time. Rather than letting concurrent writers
//! spin in SQLite's busy handler (which sleeps in milliseconds and collapses
//! throughput), every write transaction of this process first takes one async
//! mutex and then opens `BEGIN IMMEDIATE`; readers use their own connections
//! beside it (WAL). PostgreSQL needs no such lock: its constraints and
//! conditional updates settle races, and the services retry.

use crate::store::{Backend, Store};
use sqlx::any::Any;
use sqlx::pool::PoolConnection;
use sqlx::AnyConnection;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

/// How long a gate decision waits for a database connection before the
/// database counts as down (and the offline rules apply).
pub const ACQUIRE_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct Db {
    pub store: Store,
    lock: Option<Arc<Mutex<()>>>,
}

/// A write transaction (holding the SQLite writer lock when there is one).
pub struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, Any>,
    _guard: Option<MutexGuard<'a, ()>>,
}

impl Deref for WriteTx<'_> {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl WriteTx<'_> {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl Db {
    pub fn new(store: Store) -> Db {
        let lock = (store.backend() == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Db { store, lock }
    }

    pub async fn write(&self) -> Result<WriteTx<'_>, sqlx::Error> {
        let guard = match &self.lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        let pool = self.store.pool();
        let begin = async {
            match self.store.backend() {
                Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
                Backend::Postgres => pool.begin().await,
            }
        };
        let tx = tokio::time::timeout(ACQUIRE_DEADLINE, begin).await.map_err(|_| sqlx::Error::PoolTimedOut)??;
        Ok(WriteTx { tx, _guard: guard })
    }

    pub async fn read(&self) -> Result<PoolConnection<Any>, sqlx::Error> {
        tokio::time::timeout(ACQUIRE_DEADLINE, self.store.pool().acquire()).await.map_err(|_| sqlx::Error::PoolTimedOut)?
    }
}
