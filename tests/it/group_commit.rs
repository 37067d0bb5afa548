//! SQLite's group commit (`store::sqlite`), against a real SQLite file: a
//! member that rolls back undoes only its own work, a failed group COMMIT
//! fails every member and keeps nothing, a caller giving up in the queue
//! does not strand a group, and racing transactions keep exactly their own
//! work. The groups are built deterministically: a test holds the writer
//! while others queue behind it (waiting for the queue to fill, not for time).

use lotsense::store::Db;
use lotsense::store::{Conn, Store, StoreConn};
use sqlx::Row;
use std::sync::Arc;

async fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/gc.db", dir.path().display()), 4)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE gc (id TEXT PRIMARY KEY);
         CREATE TABLE gc_parent (id INTEGER PRIMARY KEY);
         CREATE TABLE gc_child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES gc_parent (id) DEFERRABLE INITIALLY DEFERRED);",
    )
    .execute(store.pool())
    .await
    .unwrap();
    (dir, Db::new(store))
}

async fn rows(db: &Db) -> Vec<String> {
    let rows = sqlx::query("SELECT id FROM gc ORDER BY id")
        .fetch_all(db.store.pool())
        .await
        .unwrap();
    rows.iter().map(|r| r.get::<String, _>(0)).collect()
}

async fn insert(c: &mut Conn, id: &str) {
    lotsense::store::sql::query("INSERT INTO gc (id) VALUES ($1)")
        .bind(id)
        .execute(c.ex())
        .await
        .unwrap();
}

fn commits(db: &Db) -> u64 {
    db.store.sqlite_writer().unwrap().commit_count()
}

/// Waits until `n` callers queue for the writer.
async fn queued(db: &Db, n: usize) {
    while db.store.sqlite_writer().unwrap().queued() < n {
        tokio::task::yield_now().await;
    }
}

/// One caller's transaction: inserts `id`, then commits or (`keep` false) rolls back.
fn member(
    db: &Db,
    id: &'static str,
    keep: bool,
) -> tokio::task::JoinHandle<Result<(), lotsense::store::StoreError>> {
    let db = db.clone();
    tokio::spawn(async move {
        let mut tx = db.write().await.unwrap();
        insert(&mut tx, id).await;
        if keep {
            tx.commit().await
        } else {
            drop(tx);
            Ok(())
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_rolling_back_undoes_only_its_own_work() {
    let (_dir, db) = open().await;
    let before = commits(&db);
    let mut a = db.write().await.unwrap();
    insert(&mut a, "a").await;
    let b = member(&db, "b", false);
    queued(&db, 1).await;
    let c = member(&db, "c", true);
    queued(&db, 2).await;
    // a hands the open transaction on to b (queued), b rolls back to its
    // savepoint, c commits last and closes the group.
    a.commit().await.unwrap();
    b.await.unwrap().unwrap();
    c.await.unwrap().unwrap();
    assert_eq!(rows(&db).await, ["a", "c"]);
    assert_eq!(
        commits(&db) - before,
        1,
        "a and c were committed by one COMMIT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_member_rolling_back_leaves_the_next_one_whole() {
    let (_dir, db) = open().await;
    let mut a = db.write().await.unwrap();
    insert(&mut a, "a").await;
    let b = member(&db, "b", true);
    queued(&db, 1).await;
    drop(a);
    b.await.unwrap().unwrap();
    assert_eq!(rows(&db).await, ["b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_commit_fails_every_member_and_keeps_nothing() {
    let (_dir, db) = open().await;
    let before = commits(&db);
    let mut a = db.write().await.unwrap();
    insert(&mut a, "a").await;
    // b's row breaks a deferred foreign key: its statement succeeds, the
    // group's COMMIT fails.
    let bad = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.write().await.unwrap();
            insert(&mut tx, "b").await;
            lotsense::store::sql::query("INSERT INTO gc_child (id, parent) VALUES (1, 42)")
                .execute(tx.ex())
                .await
                .unwrap();
            tx.commit().await
        })
    };
    queued(&db, 1).await;
    let c = member(&db, "c", true);
    queued(&db, 2).await;
    let a = a.commit().await;
    let (b, c) = (bad.await.unwrap(), c.await.unwrap());
    for (who, r) in [("a", &a), ("b", &b), ("c", &c)] {
        let e = r.as_ref().expect_err(who);
        assert!(e.to_string().contains("FOREIGN KEY"), "{who}: {e}");
    }
    assert!(
        rows(&db).await.is_empty(),
        "nothing of the failed group was kept"
    );
    assert_eq!(commits(&db), before, "no COMMIT succeeded");
    // The writer is usable afterwards.
    let mut d = db.write().await.unwrap();
    insert(&mut d, "d").await;
    d.commit().await.unwrap();
    assert_eq!(rows(&db).await, ["d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_giving_up_in_the_queue_does_not_strand_the_group() {
    let (_dir, db) = open().await;
    let mut a = db.write().await.unwrap();
    insert(&mut a, "a").await;
    let waiter = {
        let db = db.clone();
        tokio::spawn(async move {
            let _tx = db.write().await;
            std::future::pending::<()>().await;
        })
    };
    queued(&db, 1).await;
    // Whether a hands the group to the waiter before or after it is
    // cancelled, a's commit must complete with its row kept.
    let commit = tokio::spawn(a.commit());
    waiter.abort();
    commit.await.unwrap().unwrap();
    assert_eq!(rows(&db).await, ["a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_statement_write_joins_an_open_group() {
    let (_dir, db) = open().await;
    let before = commits(&db);
    let mut a = db.write().await.unwrap();
    insert(&mut a, "a").await;
    let one = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.write_one().await.unwrap();
            insert(&mut tx, "one").await;
            // A failing single statement undoes only itself.
            assert!(
                lotsense::store::sql::query("INSERT INTO gc (id) VALUES ('a')")
                    .execute(tx.ex())
                    .await
                    .is_err()
            );
            tx.commit().await
        })
    };
    queued(&db, 1).await;
    a.commit().await.unwrap();
    one.await.unwrap().unwrap();
    assert_eq!(rows(&db).await, ["a", "one"]);
    assert_eq!(commits(&db) - before, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_transactions_keep_exactly_their_own_work() {
    let (_dir, db) = open().await;
    let ids: Vec<&'static str> = (0..300)
        .map(|i| &*Box::leak(format!("r{i:03}").into_boxed_str()))
        .collect();
    let tasks: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| member(&db, id, i % 3 != 0))
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let kept: Vec<&str> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(rows(&db).await, kept);
    eprintln!("{} transactions in {} commits", kept.len(), commits(&db));
}

#[tokio::test]
async fn committed_work_survives_reopening() {
    let (dir, db) = open().await;
    let db = Arc::new(db);
    let tasks: Vec<_> = ["x", "y", "z"]
        .into_iter()
        .map(|id| member(&db, id, true))
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    db.store.close().await;
    let store = Store::open(&format!("sqlite://{}/gc.db", dir.path().display()), 2)
        .await
        .unwrap();
    let db = Db::new(store);
    assert_eq!(rows(&db).await, ["x", "y", "z"]);
}
