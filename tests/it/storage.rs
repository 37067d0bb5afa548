//! Migrations and basic writes on both backends, against real databases.

use crate::support::services::PgDb;
use lotsense::store::{Backend, Store};

async fn check_store(store: &Store) {
    assert_eq!(store.applied_migrations().await.unwrap(), vec![1, 2, 3]);
    let tables = store.tables().await.unwrap();
    for t in ["plate_reads", "camera_events", "audit_log"] {
        assert!(
            tables.iter().any(|x| x == t),
            "table {t} missing in {tables:?}"
        );
    }
    store
        .audit(
            "test",
            lotsense::core::AuditAction::GateOverride,
            Some("B68SPK"),
            Some("paid"),
            None,
        )
        .await
        .unwrap();
    // The audit log is append-only, enforced by the database itself.
    let upd = sqlx::query("UPDATE audit_log SET reason = 'forged'")
        .execute(store.pool())
        .await;
    assert!(upd.is_err(), "audit_log accepted an UPDATE");
    let del = sqlx::query("DELETE FROM audit_log")
        .execute(store.pool())
        .await;
    assert!(del.is_err(), "audit_log accepted a DELETE");
    store.camera_event("gate-in", "online", None).await.unwrap();
}

#[tokio::test]
async fn sqlite_migrates_a_new_file_and_reopens_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sub/lotsense.db", dir.path().display());
    let store = Store::open(&url, 4).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    check_store(&store).await;
    store.close().await;
    // Re-opening applies nothing twice and keeps the data.
    let store = Store::open(&url, 4).await.unwrap();
    assert_eq!(store.applied_migrations().await.unwrap(), vec![1, 2, 3]);
    let n: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) FROM audit_log")
            .fetch_one(store.pool())
            .await
            .unwrap(),
        0,
    );
    assert_eq!(n, 1);
}

#[tokio::test]
async fn postgres_migrates_a_fresh_database() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let store = Store::open(&db.url, 4).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    check_store(&store).await;
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_bad_storage_url_is_a_clear_error() {
    let e = Store::open("mysql://x", 1).await.unwrap_err();
    assert!(
        e.to_string().contains("neither sqlite: nor postgres://"),
        "{e}"
    );
    let e = Store::open("postgres://nobody@127.0.0.1:1/none", 1)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot open the database at postgres://nobody@127.0.0.1:1/none"),
        "{e}"
    );
}
