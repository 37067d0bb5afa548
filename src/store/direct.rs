//! SQLite's writer connection, driven directly on the calling thread.
//!
//! sqlx runs every SQLite connection on a worker thread of its own: each
//! statement is a message to that thread and an answer back, two thread
//! wake-ups. For pooled readers that is fine (they run side by side), but the
//! writer is a serial section: every write transaction of the process queues
//! for it (see `writer`), so whatever one transaction spends holding it caps
//! the throughput of all of them. Profiling `lotsense bench core` showed the
//! process spending more time in the kernel switching threads than in SQLite,
//! and the holder of the writer waiting in the runtime's queue to be woken
//! after each of its statements.
//!
//! [`DirectConn`] therefore opens the writer's connection with `rusqlite`
//! (the same bundled SQLite library sqlx links) and runs each statement to
//! completion inside the call, without yielding: a gate transaction's dozen
//! statements take tens of microseconds instead of a dozen round trips.
//! The statements are still the store's sqlx queries: [`DirectConn::run_query`]
//! takes the query's SQL and `Any` arguments, binds them the way sqlx's SQLite
//! driver does (`$N` by number, bare `?` in order, missing ones NULL) and
//! returns `Any` rows decoded the way that driver decodes them (by the value's
//! storage class), so the store's code is the same on every connection.
//!
//! Blocking the calling thread is bounded: the writer's transactions are
//! short, COMMIT in WAL mode with `synchronous = NORMAL` writes without an
//! fsync, checkpoints run on another connection, and the only lock wait
//! (another process or a pooled connection writing) is cut short by a small
//! `busy_timeout` and retried asynchronously by the writer (see
//! [`DirectConn::begin_immediate`]).

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, Statement};
use sqlx::any::{
    Any, AnyArguments, AnyQueryResult, AnyRow, AnyTypeInfo, AnyTypeInfoKind, AnyValue,
};
use sqlx::Either;
use sqlx::Execute;
use sqlx_core::any::{AnyColumn, AnyValueKind};
use sqlx_core::ext::ustr::UStr;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one statement waits inside SQLite for another writer's lock
/// before giving up (it then waits asynchronously, see
/// [`DirectConn::begin_immediate`]). Short, because it blocks the thread.
const BLOCKING_BUSY_WAIT: Duration = Duration::from_millis(20);

/// How long [`DirectConn::begin_immediate`] keeps retrying a busy database,
/// as `busy_timeout` does for the pooled connections.
const BUSY_DEADLINE: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection: every distinct query of the
/// store fits, so none is parsed twice.
const STATEMENT_CACHE: usize = 256;

/// One step of a query's results, as sqlx's executors yield them.
pub type Step = Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>;

/// A SQLite connection whose statements run on the calling thread.
pub struct DirectConn {
    conn: Connection,
}

impl std::fmt::Debug for DirectConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectConn")
            .field("path", &self.conn.path())
            .finish_non_exhaustive()
    }
}

impl DirectConn {
    /// Opens the database file of a `sqlite://PATH?...` URL (as the store
    /// builds it: the folder exists; `mode=ro` opens read-only) and applies
    /// `pragmas`.
    pub fn open(url: &str, pragmas: &[&str]) -> Result<DirectConn, sqlx::Error> {
        let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        flags |= if query.split('&').any(|kv| kv == "mode=ro") {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        };
        let conn = Connection::open_with_flags(path, flags).map_err(db_error)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut me = DirectConn { conn };
        for p in pragmas {
            me.run(p, Vec::new(), None)?;
        }
        me.conn.busy_timeout(BLOCKING_BUSY_WAIT).map_err(db_error)?;
        Ok(me)
    }

    /// Runs an sqlx query (SQL and `Any` arguments) now, to completion (or to
    /// `limit` rows), and returns its steps as sqlx would stream them.
    pub fn run_query<'q, E: Execute<'q, Any>>(
        &mut self,
        mut query: E,
        limit: Option<usize>,
    ) -> Result<Vec<Step>, sqlx::Error> {
        let args = query.take_arguments().map_err(sqlx::Error::Encode)?;
        let sql = query.sql();
        self.run(sql.as_str(), args.map(arguments).unwrap_or_default(), limit)
    }

    /// Runs `sql` (one statement or several separated by `;`) with `args`.
    /// Steps after an error are not produced; statements before it stay done
    /// (as with sqlx).
    pub fn run(
        &mut self,
        sql: &str,
        args: Vec<AnyValueKind>,
        limit: Option<usize>,
    ) -> Result<Vec<Step>, sqlx::Error> {
        let mut out = Vec::new();
        let mut positional = 0;
        if is_single(sql) {
            let mut stmt = self.conn.prepare_cached(sql).map_err(db_error)?;
            if let Err(e) = step(
                &self.conn,
                &mut stmt,
                &args,
                &mut positional,
                limit,
                &mut out,
            ) {
                out.push(Err(e));
            }
        } else {
            use rusqlite::fallible_iterator::FallibleIterator;
            let mut batch = rusqlite::Batch::new(&self.conn, sql);
            loop {
                match batch.next() {
                    Ok(Some(mut stmt)) => {
                        if let Err(e) = step(
                            &self.conn,
                            &mut stmt,
                            &args,
                            &mut positional,
                            limit,
                            &mut out,
                        ) {
                            out.push(Err(e));
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Err(db_error(e)));
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Runs SQL without arguments and rows (transaction control, pragmas),
    /// returning its first error.
    pub fn exec(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        for s in self.run(sql, Vec::new(), None)? {
            s?;
        }
        Ok(())
    }

    /// `BEGIN IMMEDIATE` (takes SQLite's write lock). While another
    /// connection holds the lock the attempt is repeated after an
    /// asynchronous pause, so that the thread stays free for whoever holds
    /// it (in a single-threaded runtime that may be this very thread), up to
    /// [`BUSY_DEADLINE`].
    pub async fn begin_immediate(&mut self) -> Result<(), sqlx::Error> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match self.exec("BEGIN IMMEDIATE") {
                Err(e) if is_busy(&e) && started.elapsed() < BUSY_DEADLINE => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// Whether a transaction is open on the connection.
    pub fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }
}

/// A statement with no `;` but (maybe) a trailing one: the cacheable case.
fn is_single(sql: &str) -> bool {
    !sql.trim_end().trim_end_matches(';').contains(';')
}

fn is_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c == "5" || c.parse::<i32>().is_ok_and(|n| n & 0xff == 5)))
}

/// The argument values of an `Any` query.
fn arguments(a: AnyArguments) -> Vec<AnyValueKind> {
    a.values.0
}

/// Binds and runs one prepared statement, appending its rows and result.
fn step(
    conn: &Connection,
    stmt: &mut Statement<'_>,
    args: &[AnyValueKind],
    positional: &mut usize,
    limit: Option<usize>,
    out: &mut Vec<Step>,
) -> Result<(), sqlx::Error> {
    for i in 1..=stmt.parameter_count() {
        // As sqlx's SQLite driver: `?NNN` and `$NNN` by number, bare `?` in order.
        let n = match stmt.parameter_name(i) {
            Some(name) => {
                let num = name
                    .strip_prefix('?')
                    .or_else(|| name.strip_prefix('$'))
                    .and_then(|d| d.parse::<usize>().ok());
                num.ok_or_else(|| {
                    sqlx::Error::AnyDriverError(
                        format!("unsupported SQL parameter `{name}`").into(),
                    )
                })?
            }
            None => {
                *positional += 1;
                *positional
            }
        };
        // Unbound parameters stay NULL, as in sqlx.
        let Some(v) = n.checked_sub(1).and_then(|k| args.get(k)) else {
            break;
        };
        let value = match v {
            AnyValueKind::Null(_) => ValueRef::Null,
            AnyValueKind::Bool(b) => ValueRef::Integer(i64::from(*b)),
            AnyValueKind::SmallInt(x) => ValueRef::Integer(i64::from(*x)),
            AnyValueKind::Integer(x) => ValueRef::Integer(i64::from(*x)),
            AnyValueKind::BigInt(x) => ValueRef::Integer(*x),
            AnyValueKind::Real(x) => ValueRef::Real(f64::from(*x)),
            AnyValueKind::Double(x) => ValueRef::Real(*x),
            AnyValueKind::Text(s) => ValueRef::Text(s.as_bytes()),
            AnyValueKind::TextSlice(s) => ValueRef::Text(s.as_bytes()),
            AnyValueKind::Blob(b) => ValueRef::Blob(b),
            other => {
                return Err(sqlx::Error::AnyDriverError(
                    format!("unsupported argument {other:?}").into(),
                ))
            }
        };
        stmt.raw_bind_parameter(i, ToSqlOutput::Borrowed(value))
            .map_err(db_error)?;
    }
    let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let mut index = sqlx_core::HashMap::with_capacity(names.len());
    let mut columns = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        let name = UStr::from(name);
        index.insert(name.clone(), i);
        columns.push(AnyColumn {
            ordinal: i,
            name,
            type_info: AnyTypeInfo {
                kind: AnyTypeInfoKind::Null,
            },
        });
    }
    let index = Arc::new(index);
    let width = columns.len();
    let mut rows = stmt.raw_query();
    let mut count = 0;
    while let Some(row) = rows.next().map_err(db_error)? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            // Typed by the value's storage class, as sqlx's SQLite driver
            // maps values into `Any`.
            let kind = match row.get_ref(i).map_err(db_error)? {
                ValueRef::Null => AnyValueKind::Null(AnyTypeInfoKind::Null),
                ValueRef::Integer(x) => AnyValueKind::BigInt(x),
                ValueRef::Real(x) => AnyValueKind::Double(x),
                ValueRef::Text(t) => {
                    AnyValueKind::Text(Arc::new(String::from_utf8_lossy(t).into_owned()))
                }
                ValueRef::Blob(b) => AnyValueKind::Blob(Arc::new(b.to_vec())),
            };
            values.push(AnyValue { kind });
        }
        out.push(Ok(Either::Right(AnyRow {
            column_names: index.clone(),
            columns: columns.clone(),
            values,
        })));
        count += 1;
        if limit.is_some_and(|l| count >= l) {
            break;
        }
    }
    drop(rows);
    // As sqlx: SQLite's count of the last INSERT/UPDATE/DELETE.
    out.push(Ok(Either::Left(AnyQueryResult {
        rows_affected: conn.changes(),
        last_insert_id: None,
    })));
    Ok(())
}

/// A SQLite error as sqlx reports one: a database error whose code is the
/// extended result code in decimal (so `is_unique_violation` and friends
/// classify it the same), anything else as a driver error.
fn db_error(e: rusqlite::Error) -> sqlx::Error {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            let message = msg.unwrap_or_else(|| f.to_string());
            sqlx::Error::Database(Box::new(StoreDbError {
                code: Some(f.extended_code.to_string()),
                message,
                note: "",
            }))
        }
        other => sqlx::Error::AnyDriverError(Box::new(other)),
    }
}

/// A database error made by the store itself: one from the direct
/// connection, or a copy of a group's COMMIT error for each of its members
/// (`note` says which).
#[derive(Debug)]
pub(super) struct StoreDbError {
    pub code: Option<String>,
    pub message: String,
    pub note: &'static str,
}

impl std::fmt::Display for StoreDbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.code, self.note) {
            (_, note) if !note.is_empty() => write!(f, "{} ({note})", self.message),
            (Some(code), _) => write!(f, "(code: {code}) {}", self.message),
            (None, _) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for StoreDbError {}

impl sqlx::error::DatabaseError for StoreDbError {
    fn message(&self) -> &str {
        &self.message
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        self.code.as_deref().map(Cow::Borrowed)
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    /// By SQLite's extended result codes (PostgreSQL codes, only ever
    /// copied for a group, are `Other`).
    fn kind(&self) -> sqlx::error::ErrorKind {
        use sqlx::error::ErrorKind;
        match self.code.as_deref() {
            Some("2067" | "1555") => ErrorKind::UniqueViolation,
            Some("787") => ErrorKind::ForeignKeyViolation,
            Some("1299") => ErrorKind::NotNullViolation,
            Some("275") => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row;

    fn open() -> (tempfile::TempDir, DirectConn) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/d.db?mode=rwc", dir.path().display());
        let c = DirectConn::open(&url, &["PRAGMA journal_mode = WAL"]).unwrap();
        (dir, c)
    }

    fn rows(steps: Vec<Step>) -> Vec<AnyRow> {
        steps
            .into_iter()
            .filter_map(|s| s.unwrap().right())
            .collect()
    }

    #[test]
    fn binds_numbered_and_positional_parameters_and_decodes_rows_like_sqlx() {
        let (_d, mut c) = open();
        c.exec(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, note TEXT)",
        )
        .unwrap();
        // `$2` before `$1`: bound by number, not by position.
        let q = sqlx::query("INSERT INTO t (name, id, score, note) VALUES ($2, $1, $3, $4)")
            .bind(7_i64)
            .bind("seven")
            .bind(0.5_f64)
            .bind(None::<String>);
        let steps = c.run_query(q, None).unwrap();
        let done = steps.into_iter().find_map(|s| s.unwrap().left()).unwrap();
        assert_eq!(done.rows_affected, 1);
        let r = rows(
            c.run_query(
                sqlx::query("SELECT id, name, score, note FROM t WHERE name = ?"),
                None,
            )
            .unwrap(),
        );
        assert!(
            r.is_empty(),
            "an unbound parameter is NULL and matches nothing"
        );
        let r = rows(
            c.run_query(
                sqlx::query("SELECT id, name AS label, score, note FROM t WHERE name = ?")
                    .bind("seven"),
                None,
            )
            .unwrap(),
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].try_get::<i64, _>("id").unwrap(), 7);
        assert_eq!(r[0].try_get::<i32, _>(0).unwrap(), 7);
        assert_eq!(r[0].try_get::<String, _>("label").unwrap(), "seven");
        assert_eq!(r[0].try_get::<f64, _>(2).unwrap(), 0.5);
        assert_eq!(r[0].try_get::<Option<String>, _>("note").unwrap(), None);
        assert!(r[0].try_get::<String, _>("missing").is_err());
    }

    #[test]
    fn several_statements_share_the_arguments_and_stop_at_the_first_error() {
        let (_d, mut c) = open();
        c.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER); CREATE TABLE u (k TEXT)")
            .unwrap();
        let q = sqlx::query("INSERT INTO t VALUES ($1, $2); INSERT INTO u VALUES ($1)")
            .bind("a")
            .bind(1_i64);
        assert!(c.run_query(q, None).unwrap().into_iter().all(|s| s.is_ok()));
        let q = sqlx::query("INSERT INTO u VALUES ($1); INSERT INTO t VALUES ($1, 2); INSERT INTO u VALUES ('never')").bind("a");
        let steps = c.run_query(q, None).unwrap();
        let err = steps
            .into_iter()
            .find_map(|s| s.err())
            .expect("the duplicate key fails");
        assert!(crate::store::is_unique_violation(&err), "{err}");
        let n: i64 = rows(c.run("SELECT count(*) FROM u", Vec::new(), None).unwrap())[0]
            .try_get(0)
            .unwrap();
        assert_eq!(
            n, 2,
            "the statement before the error stays, the one after never runs"
        );
    }

    #[test]
    fn limit_stops_after_the_first_rows() {
        let (_d, mut c) = open();
        c.exec("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (2), (3)")
            .unwrap();
        let r = rows(
            c.run("SELECT v FROM t ORDER BY v", Vec::new(), Some(1))
                .unwrap(),
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].try_get::<i64, _>(0).unwrap(), 1);
    }

    #[tokio::test]
    async fn begin_immediate_waits_for_another_writer_without_blocking_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/d.db?mode=rwc", dir.path().display());
        let mut a = DirectConn::open(&url, &["PRAGMA journal_mode = WAL"]).unwrap();
        let mut b = DirectConn::open(&url, &[]).unwrap();
        a.exec("CREATE TABLE t (v INTEGER)").unwrap();
        a.begin_immediate().await.unwrap();
        // `b` is refused while `a` holds the lock: a timer on the same
        // (single-threaded) runtime releases it, which only works if `b`
        // waits asynchronously.
        let release = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            a.exec("INSERT INTO t VALUES (1); COMMIT").unwrap();
        };
        let (_, got) = tokio::join!(release, b.begin_immediate());
        got.unwrap();
        assert!(b.in_transaction());
        b.exec("INSERT INTO t VALUES (2); COMMIT").unwrap();
    }
}
