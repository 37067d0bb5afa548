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
//! The statements are the store's own (`sql::query`): [`DirectConn::run`]
//! takes the statement's SQL and [`Value`]s, binds them the way sqlx's SQLite
//! driver does (`$N` by number, bare `?` in order, missing ones NULL) and
//! returns the store's [`Row`]s typed by each value's storage class, as the
//! pooled connections' rows are, so the store's code is the same on every
//! connection.
//!
//! Blocking the calling thread is bounded: the writer's transactions are
//! short, COMMIT in WAL mode with `synchronous = NORMAL` writes without an
//! fsync, checkpoints run on another connection, and the only lock wait
//! (another process or a pooled connection writing) is cut short by a small
//! `busy_timeout` and retried asynchronously by the writer (see
//! [`DirectConn::begin_immediate`]).

use crate::store::sql::{Done, Row, Value};
use crate::store::{is_busy, SqliteError};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, Statement};
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

/// What a statement (or several) returned: the rows, and the rows changed.
#[derive(Debug, Default)]
pub struct Output {
    pub rows: Vec<Row>,
    pub done: Done,
}

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
    pub fn open(url: &str, pragmas: &[&str]) -> Result<DirectConn, SqliteError> {
        let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        flags |= if query.split('&').any(|kv| kv == "mode=ro") {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        };
        let conn = Connection::open_with_flags(path, flags)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut me = DirectConn { conn };
        for p in pragmas {
            me.run(p, &[], None)?;
        }
        me.conn.busy_timeout(BLOCKING_BUSY_WAIT)?;
        Ok(me)
    }

    /// Runs `sql` (one statement or several separated by `;`, sharing
    /// `args`) now, to completion (or to `limit` rows of each statement).
    /// Statements before an error stay done (as with sqlx); those after it
    /// do not run.
    pub fn run(
        &mut self,
        sql: &str,
        args: &[Value],
        limit: Option<usize>,
    ) -> Result<Output, SqliteError> {
        let mut out = Output::default();
        let mut positional = 0;
        if is_single(sql) {
            let mut stmt = self.conn.prepare_cached(sql)?;
            step(
                &self.conn,
                &mut stmt,
                args,
                &mut positional,
                limit,
                &mut out,
            )?;
        } else {
            use rusqlite::fallible_iterator::FallibleIterator;
            let mut batch = rusqlite::Batch::new(&self.conn, sql);
            while let Some(mut stmt) = batch.next()? {
                step(
                    &self.conn,
                    &mut stmt,
                    args,
                    &mut positional,
                    limit,
                    &mut out,
                )?;
            }
        }
        Ok(out)
    }

    /// Runs SQL without arguments and rows (transaction control, pragmas).
    pub fn exec(&mut self, sql: &str) -> Result<(), SqliteError> {
        self.run(sql, &[], None).map(drop)
    }

    /// `BEGIN IMMEDIATE` (takes SQLite's write lock). While another
    /// connection holds the lock the attempt is repeated after an
    /// asynchronous pause, so that the thread stays free for whoever holds
    /// it (in a single-threaded runtime that may be this very thread), up to
    /// [`BUSY_DEADLINE`].
    pub async fn begin_immediate(&mut self) -> Result<(), SqliteError> {
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

/// Binds and runs one prepared statement, appending its rows and changes.
fn step(
    conn: &Connection,
    stmt: &mut Statement<'_>,
    args: &[Value],
    positional: &mut usize,
    limit: Option<usize>,
    out: &mut Output,
) -> Result<(), SqliteError> {
    for i in 1..=stmt.parameter_count() {
        // As sqlx's SQLite driver: `?NNN` and `$NNN` by number, bare `?` in order.
        let n = match stmt.parameter_name(i) {
            Some(name) => {
                let num = name
                    .strip_prefix('?')
                    .or_else(|| name.strip_prefix('$'))
                    .and_then(|d| d.parse::<usize>().ok());
                num.ok_or_else(|| SqliteError {
                    code: None,
                    message: format!("unsupported SQL parameter `{name}`"),
                    note: "",
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
            Value::Null(_) => ValueRef::Null,
            Value::Int(x) => ValueRef::Integer(*x),
            Value::Real(x) => ValueRef::Real(*x),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        };
        stmt.raw_bind_parameter(i, ToSqlOutput::Borrowed(value))?;
    }
    let columns: Arc<[String]> = stmt.column_names().into_iter().map(String::from).collect();
    let width = columns.len();
    let writes = !stmt.readonly();
    let mut rows = stmt.raw_query();
    let mut count = 0;
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            // By the value's storage class, as the pooled connections' rows.
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null(None),
                ValueRef::Integer(x) => Value::Int(x),
                ValueRef::Real(x) => Value::Real(x),
                ValueRef::Text(t) => {
                    Value::Text(String::from_utf8(t.to_vec()).map_err(|_| SqliteError {
                        code: None,
                        message: format!("column `{}` holds text that is not UTF-8", columns[i]),
                        note: "",
                    })?)
                }
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        out.rows.push(Row::new(columns.clone(), values));
        count += 1;
        if limit.is_some_and(|l| count >= l) {
            break;
        }
    }
    drop(rows);
    // SQLite's count of the statement's INSERT/UPDATE/DELETE (a read-only
    // statement leaves the previous count, which is not its own).
    if writes {
        out.done.rows_affected += conn.changes();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::query;
    use crate::store::StoreError;

    fn open() -> (tempfile::TempDir, DirectConn) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/d.db?mode=rwc", dir.path().display());
        let c = DirectConn::open(&url, &["PRAGMA journal_mode = WAL"]).unwrap();
        (dir, c)
    }

    fn run(c: &mut DirectConn, q: crate::store::sql::Query) -> Result<Output, SqliteError> {
        c.run(&q.sql, &q.args, None)
    }

    #[test]
    fn binds_numbered_and_positional_parameters_and_reads_rows_by_storage_class() {
        let (_d, mut c) = open();
        c.exec(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, note TEXT)",
        )
        .unwrap();
        // `$2` before `$1`: bound by number, not by position.
        let q = query("INSERT INTO t (name, id, score, note) VALUES ($2, $1, $3, $4)")
            .bind(7_i64)
            .bind("seven")
            .bind(0.5_f64)
            .bind(None::<String>);
        assert_eq!(run(&mut c, q).unwrap().done.rows_affected(), 1);
        let r = run(
            &mut c,
            query("SELECT id, name, score, note FROM t WHERE name = ?"),
        )
        .unwrap()
        .rows;
        assert!(
            r.is_empty(),
            "an unbound parameter is NULL and matches nothing"
        );
        let out = run(
            &mut c,
            query("SELECT id, name AS label, score, note FROM t WHERE name = ?").bind("seven"),
        )
        .unwrap();
        assert_eq!(out.done.rows_affected(), 0, "a SELECT changes nothing");
        let r = out.rows;
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].try_get::<i64>("id").unwrap(), 7);
        assert_eq!(r[0].try_get::<i32>(0).unwrap(), 7);
        assert_eq!(r[0].try_get::<String>("label").unwrap(), "seven");
        assert_eq!(r[0].try_get::<f64>(2).unwrap(), 0.5);
        assert_eq!(r[0].try_get::<Option<String>>("note").unwrap(), None);
        assert!(r[0].try_get::<String>("missing").is_err());
    }

    #[test]
    fn several_statements_share_the_arguments_and_stop_at_the_first_error() {
        let (_d, mut c) = open();
        c.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER); CREATE TABLE u (k TEXT)")
            .unwrap();
        let q = query("INSERT INTO t VALUES ($1, $2); INSERT INTO u VALUES ($1)")
            .bind("a")
            .bind(1_i64);
        assert_eq!(run(&mut c, q).unwrap().done.rows_affected(), 2);
        let q = query("INSERT INTO u VALUES ($1); INSERT INTO t VALUES ($1, 2); INSERT INTO u VALUES ('never')").bind("a");
        let err = StoreError::Sqlite(run(&mut c, q).expect_err("the duplicate key fails"));
        assert!(crate::store::is_unique_violation(&err), "{err}");
        let n: i64 = c.run("SELECT count(*) FROM u", &[], None).unwrap().rows[0]
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
        let r = c
            .run("SELECT v FROM t ORDER BY v", &[], Some(1))
            .unwrap()
            .rows;
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].try_get::<i64>(0).unwrap(), 1);
    }

    #[test]
    fn errors_carry_sqlites_extended_code() {
        let (_d, mut c) = open();
        c.exec("CREATE TABLE t (k TEXT PRIMARY KEY NOT NULL)")
            .unwrap();
        let e = c.exec("INSERT INTO t VALUES (NULL)").unwrap_err();
        assert_eq!(e.code, Some(1299), "SQLITE_CONSTRAINT_NOTNULL: {e}");
        let e = c.exec("SELECT * FROM nowhere").unwrap_err();
        assert_eq!(e.code, Some(1), "{e}");
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
