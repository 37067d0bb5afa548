//! SQLite's writer: one connection kept outside the pool, and group commit.
//!
//! SQLite runs one write transaction at a time, so the services serialise
//! their writes anyway (see `store::tx`). Keeping that one connection out
//! of the pool makes a write transaction cheaper: no pool bookkeeping on the
//! critical path when every writer queues for the same lock, the writer's
//! prepared statements stay cached on one connection, and the connection is
//! a [`DirectConn`] whose statements run on the caller's thread without a
//! round trip to a worker thread (see `direct` for why and what it costs).
//!
//! # Group commit
//!
//! A `COMMIT` is the WAL write of every page the transaction touched, while
//! every other writer queues
//! behind it. Under load consecutive transactions touch mostly the same pages
//! (the tail of `sessions`, `audit_log`, `gate_decisions`, their indexes), so
//! the writer keeps ONE SQLite transaction open across several callers'
//! transactions (a *group*) and commits them together:
//!
//! * The first member opens the group with `BEGIN IMMEDIATE; SAVEPOINT m`;
//!   each later member starts with `RELEASE m; SAVEPOINT m` (the previous
//!   member's work merges into the group, and `RELEASE` fails if SQLite
//!   ended the transaction behind our back, which fails the group instead of
//!   silently starting a new one). One call, as `BEGIN` was.
//! * A one-statement member ([`SqliteWriter::begin`] with `one`) needs no
//!   savepoint: it joins the open group as it is, or opens one with a bare
//!   `BEGIN IMMEDIATE` (so that waiting for SQLite's lock is always the
//!   asynchronous wait of `BEGIN`, never a blocking one mid-statement).
//! * A member's rollback is `ROLLBACK TO m` (only its own work; the first
//!   member, alone in the group, rolls the whole transaction back).
//! * A member's commit adds it to the group and hands the writer to the next
//!   queued caller without any statement; when nobody is queued, or the group
//!   reached [`GROUP_MAX_MEMBERS`], the real `COMMIT`
//!   runs, and only its outcome answers every member's `commit()`: nobody
//!   sees success before the group is durably committed (as durable as a
//!   lone commit: WAL, synchronous = NORMAL), and if the `COMMIT` fails
//!   every member gets the error.
//!
//! Members of a group see each other's uncommitted work, exactly as they
//! would see it committed had they run one after the other; since none of
//! them answers before the group commits, and all fail if it fails, the
//! outcome is the same as the one-by-one commit it replaces.
//!
//! The schema has no deferred constraints (they would be checked at the
//! group's `COMMIT` and let one member's violation fail the others).
//!
//! One owner: the state of the connection and of the open group lives behind
//! the writer's mutex, and only the caller holding it reads or changes it.

use super::direct::DirectConn;
use crate::store::{SqliteError, StoreError};
use sqlx::AnyPool;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, OwnedMutexGuard};

/// A group commits at the latest when it holds this many transactions: it
/// bounds how long the first member waits for its answer (the writer spends
/// well under a millisecond on a gate transaction), how long a writer from
/// outside the services (busy_timeout) waits for its turn, and how much one
/// failed `COMMIT` takes down with it. A size, not a time, so that what a
/// group holds does not depend on the machine's speed.
pub const GROUP_MAX_MEMBERS: usize = 32;

/// The writer asks for a WAL checkpoint every this many commits.
const CHECKPOINT_EVERY: u64 = 100;

/// Settings of the writer connection only. SQLite checkpoints the WAL from
/// the connection whose commit pushes it past `wal_autocheckpoint` pages,
/// inside that commit, fsyncs included: a stall of milliseconds while every
/// other writer queues behind it. The writer instead asks for a PASSIVE
/// checkpoint on another connection every [`CHECKPOINT_EVERY`] commits
/// (it runs beside the writer and never blocks it); its own automatic
/// checkpoint stays as a backstop, at a WAL of 40 MB instead of 4 MB.
///
/// `temp_store = MEMORY` keeps each member's savepoint journal in memory:
/// by default SQLite spills a savepoint's journal past 64 KiB to a temporary
/// file, and those writes cost as much CPU as the commits grouping saves.
const WRITER_PRAGMAS: &[&str] = &[
    "PRAGMA wal_autocheckpoint = 10000",
    "PRAGMA temp_store = MEMORY",
];

/// What the members of a group learn when it ends.
type Outcome = Option<Result<(), Arc<StoreError>>>;

/// SQLite's one writer connection and its group commit (see the module).
pub struct SqliteWriter {
    url: String,
    state: Arc<tokio::sync::Mutex<WriterState>>,
    /// Callers waiting for the writer: a member hands the open group on only
    /// when somebody is coming to continue (or close) it.
    queued: AtomicUsize,
    /// For checkpoints, which run on a pooled connection.
    pool: AnyPool,
    commits: AtomicU64,
    checkpointing: Arc<AtomicBool>,
}

/// The writer connection and the group open on it (behind the writer's mutex).
#[derive(Default)]
pub struct WriterState {
    /// `None` before the first connect and after a failure that left the
    /// connection in doubt (the next caller reconnects).
    conn: Option<DirectConn>,
    group: Option<Group>,
}

/// An open SQLite transaction shared by several callers' transactions.
struct Group {
    /// Members that committed their part and wait for the group's COMMIT.
    committed: usize,
    outcome: watch::Sender<Outcome>,
}

impl Group {
    fn new() -> Group {
        Group {
            committed: 0,
            outcome: watch::channel(None).0,
        }
    }

    /// Answers every member that committed into this group.
    fn finish(self, result: Result<(), Arc<StoreError>>) {
        self.outcome.send_replace(Some(result));
    }
}

impl std::fmt::Debug for SqliteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWriter").finish_non_exhaustive()
    }
}

/// Counts a caller as queued for the writer until it holds it (or gives up).
struct Ticket<'a> {
    writer: &'a Arc<SqliteWriter>,
    holds: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.writer.queued.fetch_sub(1, Ordering::AcqRel);
        if !self.holds {
            // Cancelled while queued: the holder may have handed the open
            // group on to us. Somebody must close it, or its members would
            // wait for the next writer.
            self.writer.spawn_sweep();
        }
    }
}

impl SqliteWriter {
    pub(crate) fn new(url: String, pool: AnyPool) -> Arc<SqliteWriter> {
        Arc::new(SqliteWriter {
            url,
            state: Arc::default(),
            queued: AtomicUsize::new(0),
            pool,
            commits: AtomicU64::new(0),
            checkpointing: Arc::default(),
        })
    }

    /// Opens a write transaction (`one`: a single statement, atomic by
    /// itself, which needs no savepoint): queues for the writer (first come,
    /// first served), connecting first when there is no live connection, and
    /// joins the open group or opens one.
    pub async fn begin(self: &Arc<Self>, one: bool) -> Result<SqliteTx, StoreError> {
        self.queued.fetch_add(1, Ordering::AcqRel);
        let mut ticket = Ticket {
            writer: self,
            holds: false,
        };
        let guard = self.state.clone().lock_owned().await;
        ticket.holds = true;
        drop(ticket);
        // From here a drop (cancellation, error) releases the writer properly.
        let mut tx = SqliteTx {
            guard: Some(guard),
            writer: self.clone(),
            member: Member::Joining,
        };
        let state = tx.guard.as_mut().expect("held");
        if state.conn.is_none() {
            let pragmas: Vec<&str> = crate::store::SQLITE_PRAGMAS
                .iter()
                .chain(WRITER_PRAGMAS)
                .copied()
                .collect();
            state.conn = Some(DirectConn::open(&self.url, &pragmas)?);
        }
        tx.member = if one {
            // Its statement is part of the group (opened for it if need be);
            // statement-level atomicity undoes it if it fails, so no
            // savepoint is needed.
            if state.group.is_none() {
                open_group(state, "").await?;
            }
            Member::Plain
        } else {
            join(state).await?;
            Member::Savepoint
        };
        Ok(tx)
    }

    /// Hands the writer on while the group can grow (somebody is queued to
    /// continue it), else commits the group in a task of its own, so that
    /// no caller's cancellation can interrupt a COMMIT.
    fn release(self: &Arc<Self>, mut guard: OwnedMutexGuard<WriterState>) {
        let Some(g) = &guard.group else { return };
        let grow = self.queued.load(Ordering::Acquire) > 0 && g.committed < GROUP_MAX_MEMBERS;
        if grow {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let w = self.clone();
                rt.spawn(async move { w.close_group(&mut guard).await });
            }
            // Shutting down: dropping the connection rolls back, and the
            // members hear that the group ended without a commit.
            Err(_) => *guard = WriterState::default(),
        }
    }

    /// COMMITs the open group and answers its members.
    async fn close_group(&self, state: &mut WriterState) {
        let Some(group) = state.group.take() else {
            return;
        };
        let Some(conn) = state.conn.as_mut() else {
            return group.finish(Err(Arc::new(StoreError::Writer(GONE))));
        };
        match conn.exec("COMMIT") {
            Ok(_) => {
                group.finish(Ok(()));
                self.committed();
            }
            Err(e) => {
                // A failed COMMIT may leave the transaction open (SQLITE_BUSY).
                end_transaction(state).await;
                group.finish(Err(Arc::new(e.into())));
            }
        }
    }

    /// After a queued caller gave up: takes the writer and commits a group
    /// that nobody else is coming to continue.
    fn spawn_sweep(self: &Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let w = self.clone();
        rt.spawn(async move {
            let mut guard = w.state.clone().lock_owned().await;
            if guard.group.is_some() {
                w.close_group(&mut guard).await;
            }
        });
    }

    /// Counts a commit; every [`CHECKPOINT_EVERY`] commits starts a
    /// background checkpoint unless one is still running.
    fn committed(&self) {
        if self.commits.fetch_add(1, Ordering::Relaxed) % CHECKPOINT_EVERY != CHECKPOINT_EVERY - 1 {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.checkpointing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, busy) = (self.pool.clone(), self.checkpointing.clone());
        rt.spawn(async move {
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                tracing::debug!(error = %e, "WAL checkpoint failed (the writer's own checkpoint is the backstop)");
            }
            busy.store(false, Ordering::Release);
        });
    }

    /// Commits an open group, then closes the connection.
    pub(crate) async fn close(&self) {
        let mut state = self.state.lock().await;
        self.close_group(&mut state).await;
        // Dropping the connection closes it.
        state.conn = None;
    }

    /// COMMITs so far, groups counted once (for tests and diagnostics).
    pub fn commit_count(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Callers waiting for the writer now (for tests and diagnostics).
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

/// Starts a member's savepoint, opening the group if there is none. If the
/// group's transaction is gone (SQLite rolls a transaction back by itself on
/// some errors), the group fails and this member opens a new one.
async fn join(state: &mut WriterState) -> Result<(), StoreError> {
    if state.group.is_some() {
        let conn = state.conn.as_mut().expect("connected");
        match conn.exec("RELEASE m; SAVEPOINT m") {
            Ok(_) => return Ok(()),
            Err(e) => fail_group(state, e.into()).await,
        }
    }
    open_group(state, "SAVEPOINT m").await
}

/// Opens a group: `BEGIN IMMEDIATE` (waiting asynchronously while another
/// connection writes), then `then` (the first member's savepoint, if any).
async fn open_group(state: &mut WriterState, then: &str) -> Result<(), StoreError> {
    // Set before BEGIN: if this is cancelled or fails, the member's rollback
    // (alone in the group) ends whatever transaction BEGIN left.
    state.group = Some(Group::new());
    let conn = state.conn.as_mut().ok_or(StoreError::Writer(GONE))?;
    conn.begin_immediate().await?;
    if !then.is_empty() {
        conn.exec(then)?;
    }
    Ok(())
}

/// Ends the group with `e` for its members and leaves no transaction open.
async fn fail_group(state: &mut WriterState, e: StoreError) {
    let group = state.group.take();
    end_transaction(state).await;
    if let Some(g) = group {
        g.finish(Err(Arc::new(e)));
    }
}

/// Rolls back whatever transaction is open; a connection that cannot say
/// (an error that is not SQLite's own) is replaced.
async fn end_transaction(state: &mut WriterState) {
    if let Some(conn) = state.conn.as_mut() {
        if !conn.in_transaction() {
            return;
        }
        match conn.exec("ROLLBACK") {
            // SQLite's own error here means no transaction was open.
            Ok(_) => {}
            Err(e) if e.code.is_some() => {}
            Err(_) => state.conn = None,
        }
    }
}

/// How a transaction takes part in the writer's group.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Member {
    /// Queued or starting: holds no work of its own yet.
    Joining,
    /// Its work is inside its savepoint `m`.
    Savepoint,
    /// One statement inside the group, no savepoint ([`SqliteWriter::begin`] with `one`).
    Plain,
}

/// A caller's write transaction on the writer: rolled back when dropped
/// without [`SqliteTx::commit`].
pub struct SqliteTx {
    /// `None` once committed or handed to the rollback task.
    guard: Option<OwnedMutexGuard<WriterState>>,
    writer: Arc<SqliteWriter>,
    member: Member,
}

const HELD: &str = "an open write transaction holds the writer connection";

impl crate::store::StoreConn for SqliteTx {
    fn ex(&mut self) -> crate::store::Ex<'_> {
        crate::store::Ex::Direct(
            self.guard
                .as_mut()
                .and_then(|g| g.conn.as_mut())
                .expect(HELD),
        )
    }
}

impl SqliteTx {
    /// Commits: returns once the group holding this transaction committed
    /// (its error if the group's COMMIT failed).
    pub async fn commit(mut self) -> Result<(), StoreError> {
        let mut guard = self.guard.take().expect(HELD);
        let Some(group) = guard.group.as_mut() else {
            // Cannot happen (only the holder ends a group); never report
            // success for work whose transaction is unaccounted for.
            drop(guard);
            return Err(StoreError::Writer(
                "ended the write transaction's group before its commit",
            ));
        };
        group.committed += 1;
        let mut outcome = group.outcome.subscribe();
        self.writer.release(guard);
        let result = match outcome.wait_for(Option::is_some).await {
            Ok(o) => o.clone().expect("answered"),
            Err(_) => Err(Arc::new(StoreError::Writer(GONE))),
        };
        result.map_err(|e| share(&e))
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        let (writer, member) = (self.writer.clone(), self.member);
        match tokio::runtime::Handle::try_current() {
            // The writer moves into a task that undoes this member's work,
            // then hands the writer on (or commits the rest of the group).
            Ok(rt) => {
                rt.spawn(async move {
                    rollback(&mut guard, member).await;
                    writer.release(guard);
                });
            }
            // Without a runtime (shutting down) the connection is dropped,
            // which ends the transaction; members hear the group ended.
            Err(_) => *guard = WriterState::default(),
        }
    }
}

/// Undoes one member's work inside the group.
async fn rollback(state: &mut WriterState, member: Member) {
    let Some(group) = &state.group else { return };
    if group.committed == 0 {
        // Alone in the group: end the whole transaction (also after a
        // cancelled or failed BEGIN).
        state.group = None;
        return end_transaction(state).await;
    }
    if member != Member::Savepoint {
        // A cancelled join (the new savepoint, if any, is empty) or one
        // statement that either ran whole or was undone by SQLite.
        return;
    }
    let Some(conn) = state.conn.as_mut() else {
        return;
    };
    if let Err(e) = conn.exec("ROLLBACK TO m") {
        // The transaction is gone (or in doubt): so is the group's work.
        let doubt = e.code.is_none();
        fail_group(state, e.into()).await;
        if doubt {
            state.conn = None;
        }
    }
}

/// A copy of a group's error for each member: same kind, code and message,
/// so the services classify it as they would their own (errors are not
/// `Clone`: sqlx's are not).
fn share(e: &StoreError) -> StoreError {
    match e {
        StoreError::Sqlite(d) => StoreError::Sqlite(SqliteError {
            note: "group commit",
            ..d.clone()
        }),
        StoreError::Writer(w) => StoreError::Writer(w),
        // The group's COMMIT runs on the direct connection, whose errors
        // are SQLite's; anything else leaves the outcome in doubt.
        _ => StoreError::Writer("failed the group commit"),
    }
}

/// What [`StoreError::Writer`] says when the connection is gone.
const GONE: &str = "is gone";
