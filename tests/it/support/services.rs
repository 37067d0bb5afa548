//! The real PostgreSQL and Mosquitto, when they are there. A test whose
//! service is missing says so loudly and is skipped: it returns early and
//! leaves a skip marker, so scripts/test.sh counts it as skipped, not as
//! passed. Under CI=true a missing service fails the test instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the tests create their databases; `LOTSENSE_TEST_PG` overrides it.
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Mosquitto's address; `LOTSENSE_TEST_MOSQUITTO` (`host:port`) overrides it.
pub const MOSQUITTO: &str = "127.0.0.1:1883";

pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Where skip markers are written: `LOTSENSE_TEST_SKIP_DIR` (scripts/test.sh
/// sets it and empties it before the run), else this checkout's `target/test-skips`.
pub fn skip_dir() -> PathBuf {
    std::env::var_os("LOTSENSE_TEST_SKIP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-skips"))
}

/// Reports a missing service: a panic under CI; otherwise a loud message and
/// a skip marker. Returns false so the caller can `return` (skip).
pub fn service_missing(what: &str, why: &str) -> bool {
    let msg = format!("\n*** {what} is not reachable ({why}); this test needs it. Start it (see README: 'Services for the tests'). ***\n");
    if in_ci() {
        panic!("{msg}");
    }
    record_skip(&format!("{what} is not reachable ({why})"));
    eprintln!("{msg}SKIPPED (not under CI=true)");
    false
}

/// One file per skipped test, named after the test and holding the reason.
/// libtest runs each test on a thread named after it (`module::test`), the
/// name it prints in its `test … ok` line.
fn record_skip(reason: &str) {
    let name = std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map(|n| n.replace('/', "_"))
        .unwrap_or_else(|| format!("unnamed-{}", uuid::Uuid::new_v4().simple()));
    let dir = skip_dir();
    if let Err(e) =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(&name), reason))
    {
        eprintln!("cannot record the skip of {name} in {}: {e}", dir.display());
    }
}

fn pg_admin_url() -> String {
    std::env::var("LOTSENSE_TEST_PG").unwrap_or_else(|_| PG_ADMIN_URL.to_string())
}

/// `PostgreSQL at host:port` for messages (no user or password).
fn pg_name(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "PostgreSQL at {}:{}",
            u.host_str().unwrap_or("?"),
            u.port().unwrap_or(5432)
        ),
        Err(_) => "PostgreSQL".into(),
    }
}

/// A fresh PostgreSQL database for one test, dropped by [`PgDb::drop_db`].
pub struct PgDb {
    pub url: String,
    name: String,
}

impl PgDb {
    /// Creates `lotsense_t_<random>`; None (after a loud message and a skip
    /// marker; a panic under CI) when PostgreSQL is unreachable.
    pub async fn create() -> Option<PgDb> {
        use sqlx::Connection;
        let admin = pg_admin_url();
        let mut conn =
            match tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&admin))
                .await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    service_missing(&pg_name(&admin), &e.to_string());
                    return None;
                }
                Err(_) => {
                    service_missing(&pg_name(&admin), "connect timed out");
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

/// Mosquitto's host and port when it answers; None (after a loud message
/// and a skip marker; a panic under CI) otherwise.
pub fn mosquitto() -> Option<(String, u16)> {
    use std::net::ToSocketAddrs;
    let at = std::env::var("LOTSENSE_TEST_MOSQUITTO").unwrap_or_else(|_| MOSQUITTO.to_string());
    let what = format!("Mosquitto at {at}");
    let addr = match at.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) => {
            service_missing(&what, "no address");
            return None;
        }
        Err(e) => {
            service_missing(&what, &e.to_string());
            return None;
        }
    };
    match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(_) => Some((addr.ip().to_string(), addr.port())),
        Err(e) => {
            service_missing(&what, &e.to_string());
            None
        }
    }
}
