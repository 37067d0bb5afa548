//! Helpers shared by the integration tests: real PostgreSQL and Mosquitto
//! when they are there (loud skip otherwise; under CI=true, a failure).
#![allow(dead_code)]

use std::time::Duration;

pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const MOSQUITTO: (&str, u16) = ("127.0.0.1", 1883);

pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Reports a missing service: a panic under CI, a loud message otherwise.
/// Returns false so the caller can `return` (skip).
pub fn service_missing(what: &str, why: &str) -> bool {
    let msg = format!("\n*** {what} is not reachable ({why}); this test needs it. Start it (see README: 'Services for the tests'). ***\n");
    if in_ci() {
        panic!("{msg}");
    }
    eprintln!("{msg}SKIPPED (not under CI=true)");
    false
}

fn pg_admin_url() -> String {
    std::env::var("LOTSENSE_TEST_PG").unwrap_or_else(|_| PG_ADMIN_URL.to_string())
}

/// A fresh PostgreSQL database for one test, dropped by [`PgDb::drop_db`].
pub struct PgDb {
    pub url: String,
    name: String,
}

impl PgDb {
    /// Creates `lotsense_t_<random>`; None (after a loud message) when PostgreSQL is unreachable.
    pub async fn create() -> Option<PgDb> {
        use sqlx::Connection;
        let admin = pg_admin_url();
        let mut conn =
            match tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&admin))
                .await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    service_missing("PostgreSQL at 127.0.0.1:5432", &e.to_string());
                    return None;
                }
                Err(_) => {
                    service_missing("PostgreSQL at 127.0.0.1:5432", "connect timed out");
                    return None;
                }
            };
        let name = format!("lotsense_t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = match admin.rfind('/') {
            Some(i) => format!("{}/{name}", &admin[..i]),
            None => unreachable!(),
        };
        Some(PgDb { url, name })
    }

    pub async fn drop_db(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

/// True when Mosquitto answers on 127.0.0.1:1883 (loud message otherwise).
pub fn mosquitto_available() -> bool {
    match std::net::TcpStream::connect_timeout(
        &"127.0.0.1:1883".parse().unwrap(),
        Duration::from_secs(2),
    ) {
        Ok(_) => true,
        Err(e) => service_missing("Mosquitto at 127.0.0.1:1883", &e.to_string()),
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
