//! Persistence adapter: sqlx on SQLite (default, one file, no server) or
//! PostgreSQL (scale-out), through one code path.
//!
//! Every statement is written once, as a store statement (`sql::query`,
//! `$N` placeholders) that runs on sqlx's `Any` driver (PostgreSQL, SQLite's
//! pooled readers) or on SQLite's writer connection (`sqlite`), and every
//! row comes back as the store's own `sql::Row`, decoded fallibly (`codec`).
//! The two backends differ only in their migrations (types, constraints and
//! triggers), kept side by side in `migrations/sqlite` and
//! `migrations/postgres` and compiled into the binary so a deployed lotsense
//! needs no files beside it. Timestamps are stored as RFC 3339 UTC text and
//! booleans as integers, because the `Any` driver cannot decode SQLite's
//! BOOLEAN or PostgreSQL's TIMESTAMPTZ uniformly.

mod audit;
mod classify;
mod codec;
mod decisions;
mod error;
mod exec;
mod flags;
mod payments;
mod registry;
mod reservations;
mod sessions;
mod spaces;
pub mod sql;
mod sqlite;
mod tx;
mod vehicles;

// The parking statements, one module per aggregate. Functions take a
// `&mut Conn` (any [`StoreConn`]: a pooled connection, a transaction,
// SQLite's direct writer) so the services can compose them in one
// transaction. Nothing here decides anything: the services gather snapshots
// with these functions, ask the core, and write back what it decided. The
// invariants that must hold under concurrency are in the schema
// (`0002_parking.sql`), not here: one open session per plate (partial unique
// index), no overlapping active reservations of a bay (exclusion constraint /
// trigger), one payment per idempotency key (unique), one session per bay
// (conditional update + unique index). Instants are epoch milliseconds in the
// database and `DateTime<Utc>` in Rust.
pub use audit::*;
pub use classify::*;
pub use codec::*;
pub use decisions::*;
pub use flags::*;
pub use payments::*;
pub use registry::*;
pub use reservations::*;
pub use sessions::*;
pub use spaces::*;
pub use vehicles::*;

pub(crate) use error::R;
pub use error::{SqliteError, StoreError};
pub use exec::{Conn, Ex, StoreConn};
pub use sqlite::{DirectConn, SqliteTx, SqliteWriter, GROUP_MAX_MEMBERS};
pub use tx::{Db, WriteTx, ACQUIRE_DEADLINE};

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Executor};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store: a connection pool plus the backend kind and, on SQLite, the
/// one connection that writes.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    writer: Option<Arc<SqliteWriter>>,
}

/// Per-connection settings. WAL lets readers run beside the one writer;
/// synchronous = NORMAL in WAL mode keeps the database consistent after a
/// crash or power loss and may lose only the last transactions before a
/// power loss (not a process crash); busy_timeout makes a writer from
/// outside the services wait instead of failing with SQLITE_BUSY.
pub(crate) const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA journal_mode = WAL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
];

async fn sqlite_pragmas(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    for p in SQLITE_PRAGMAS {
        conn.execute(*p).await?;
    }
    Ok(())
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "parking",
        include_str!("migrations/sqlite/0002_parking.sql"),
    ),
    (
        3,
        "bay_watch",
        include_str!("migrations/sqlite/0003_bay_watch.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "parking",
        include_str!("migrations/postgres/0002_parking.sql"),
    ),
    (
        3,
        "bay_watch",
        include_str!("migrations/postgres/0003_bay_watch.sql"),
    ),
];

impl Store {
    /// Opens (creating if needed) the database at `url` and applies migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let connect_url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_string(),
        };
        let mut opts = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10));
        opts = match backend {
            // A local file cannot drop the link, so the pool need not ping a
            // connection (a round trip to its worker thread) before lending it.
            Backend::Sqlite => opts
                .test_before_acquire(false)
                .after_connect(|conn, _| Box::pin(sqlite_pragmas(conn))),
            // A server can go away: the pool's ping before lending a
            // connection replaces one that died instead of failing a request.
            Backend::Postgres => opts,
        };
        let pool = opts
            .connect(&connect_url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact(url),
                source,
            })?;
        let writer = (backend == Backend::Sqlite)
            .then(|| SqliteWriter::new(connect_url.clone(), pool.clone()));
        let store = Store {
            pool,
            backend,
            writer,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let list = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let migrations = list
            .iter()
            .map(|(v, d, sql)| {
                Migration::new(
                    *v,
                    Cow::Borrowed(*d),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(*sql),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// SQLite's writer connection (`None` on PostgreSQL, where writers
    /// take pooled connections and run side by side).
    pub fn sqlite_writer(&self) -> Option<&Arc<SqliteWriter>> {
        self.writer.as_ref()
    }

    /// Versions of the applied migrations, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let mut c = self.read().await?;
        let rows = sql::query(
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
        )
        .fetch_all(c.ex())
        .await?;
        rows.iter().map(|r| r.try_get(0)).collect()
    }

    /// Names of the user tables (for checks and diagnostics).
    pub async fn tables(&self) -> Result<Vec<String>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            Backend::Postgres => "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name",
        };
        let mut c = self.read().await?;
        let rows = sql::query(sql).fetch_all(c.ex()).await?;
        rows.iter().map(|r| r.try_get(0)).collect()
    }

    /// Appends an audit record (through the writer on SQLite, as every write).
    pub async fn audit(
        &self,
        actor: &str,
        action: crate::core::AuditAction,
        subject: Option<&str>,
        reason: Option<&str>,
        detail: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_one().await?;
        sql::query("INSERT INTO audit_log (at, actor, action, subject, reason, detail_json) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(now_text())
            .bind(actor)
            .bind(action.as_str())
            .bind(subject)
            .bind(reason)
            .bind(detail.map(|d| d.to_string()))
            .execute(tx.ex())
            .await?;
        tx.commit().await
    }

    /// Records a camera going online/offline (through the writer on SQLite).
    pub async fn camera_event(
        &self,
        camera: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_one().await?;
        sql::query(
            "INSERT INTO camera_events (camera, status, reason, at) VALUES ($1, $2, $3, $4)",
        )
        .bind(camera)
        .bind(status)
        .bind(reason)
        .bind(now_text())
        .execute(tx.ex())
        .await?;
        tx.commit().await
    }

    /// Records a decided plate read once (the full event as JSON beside the
    /// key columns; a re-delivery of the same id is ignored), through the
    /// writer on SQLite. The one place a plate read is stored.
    pub async fn plate_read(
        &self,
        read: &crate::events::PlateRead,
        json: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_one().await?;
        insert_plate_read(&mut tx, read, json).await?;
        tx.commit().await
    }

    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(w) = &self.writer {
            w.close().await;
        }
    }
}

/// Current UTC time as stored text.
pub fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn backend_of(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::BadUrl(url.to_string()))
    }
}

/// `sqlite://var/x.db` → a URL that creates the file, after making its folder.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path != ":memory:" && !path.is_empty() {
        if let Some(parent) = std::path::Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
                path: parent.display().to_string(),
                source,
            })?;
        }
    }
    let mut q = String::from(query);
    if !q.contains("mode=") {
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str("mode=rwc");
    }
    Ok(format!("sqlite://{path}?{q}"))
}

/// Hides a password in a URL before it goes into a message.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
