//! A parking site for the integration tests: real database (SQLite file or
//! a fresh PostgreSQL database), the in-process MQTT broker with a simulated
//! gate controller, the real HTTP API on a free port, and one API key per role.
#![allow(dead_code)]

use lotsense::config::{ApiRole, Config};
use lotsense::http::api::auth::{generate_key, hash_key, store_key};
use lotsense::http::api::client::{Client, Reply};
use lotsense::metrics::Metrics;
use lotsense::mqtt::{self, ClientSettings, EmbeddedBroker, MqttHandle, Topics};
use lotsense::service::{ParkingService, Settings};
use lotsense::store::Store;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[path = "../common/mod.rs"]
mod common;
pub use common::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct Site {
    pub service: ParkingService,
    pub store: Store,
    pub addr: SocketAddr,
    pub keys: HashMap<ApiRole, String>,
    pub mqtt: MqttHandle,
    pub config: Config,
    shutdown: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
    pg: Option<PgDb>,
    _broker: EmbeddedBroker,
}

/// The test site: `spaces` compact bays (C01…) plus one large (L01), one EV
/// (E01) and one handicapped (H01) bay; `extra` is appended to the TOML.
pub fn site_toml(compact: usize, extra: &str) -> String {
    let mut t = String::from(
        r#"
[site]
name = "t"
time_zone = "Europe/Bucharest"
currency = "RON"

[[gates]]
id = "main"
ack_timeout_secs = 1

[[cameras]]
id = "main-in"
role = "entry"
url = "rtsp://127.0.0.1:9/in"
gate = "main"

[[cameras]]
id = "main-out"
role = "exit"
url = "rtsp://127.0.0.1:9/out"
gate = "main"

[[tariffs]]
id = "std"
space_types = ["compact", "large", "handicapped", "motorcycle", "ev"]
grace_minutes = 10
interval_minutes = 30
interval_price = 500
daily_max = 6000
lost_ticket_fee = 10000
exit_grace_minutes = 15
reservation_price = 1000
no_show_fee = 1500

[reservations]
early_departure = "unused_whole_hours"
early_departure_fee = 0
hold_before_minutes = 60

[lists]
blocked = ["BL0CK01"]
watched = ["WATCH01"]

[[permits]]
id = "staff-1"
plate = "STAFF01"
kind = "staff"
valid_from = "2024-01-01"
windows = [{ days = ["mon", "tue", "wed", "thu", "fri"], from = "07:00", to = "19:00" }]
"#,
    );
    for i in 1..=compact {
        t.push_str(&format!("\n[[spaces]]\nid = \"C{i:02}\"\ntype = \"compact\"\nlevel = \"L0\"\nzone = \"A\"\nrank = {i}\n"));
    }
    for (id, ty, rank) in [
        ("L01", "large", 100),
        ("E01", "ev", 101),
        ("H01", "handicapped", 102),
    ] {
        t.push_str(&format!("\n[[spaces]]\nid = \"{id}\"\ntype = \"{ty}\"\nlevel = \"L1\"\nzone = \"B\"\nrank = {rank}\n"));
    }
    t.push_str(extra);
    t
}

impl Site {
    /// None (after a loud message, or a panic under CI) when PostgreSQL is missing.
    pub async fn start(db: Db, toml: &str) -> Option<Site> {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg) = match db {
            Db::Sqlite => (format!("sqlite://{}/t.db", dir.path().display()), None),
            Db::Postgres => {
                let pg = PgDb::create().await?;
                (pg.url.clone(), Some(pg))
            }
        };
        let config = Config::from_toml(toml, "test.toml").expect("test config is valid");
        let store = Store::open(&url, 16).await.expect("store opens");
        let broker_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let broker = EmbeddedBroker::start(broker_addr).expect("broker");
        let metrics = Arc::new(Metrics::new());
        let topics = Topics::new("lotsense", &config.site.name);
        let mqtt = mqtt::connect(
            ClientSettings {
                host: "127.0.0.1".into(),
                port: broker.addr.port(),
                client_id: format!("t-{}", uuid::Uuid::new_v4().simple()),
                keep_alive: Duration::from_secs(10),
                topics,
            },
            metrics.clone(),
        );
        assert!(
            mqtt.wait_connected(Duration::from_secs(5)).await,
            "mqtt connects"
        );
        let settings = Settings::from_config(&config);
        let gates = settings.gates.iter().map(|(g, _)| g.clone()).collect();
        let port =
            lotsense::mqtt::gates::MqttGates::port(mqtt.clone(), gates, settings.discovery.clone());
        let service = ParkingService::new(store.clone(), settings, Some(port))
            .await
            .unwrap();
        service.seed(&config).await.unwrap();
        lotsense::mqtt::gates::simulate_gate(mqtt.clone(), "main")
            .await
            .unwrap();
        let mut keys = HashMap::new();
        for role in ApiRole::ALL {
            let key = generate_key();
            store_key(
                &store,
                &format!("test-{}", role.as_str()),
                role,
                &hash_key(&key),
                Some(100_000),
                "test",
            )
            .await
            .unwrap();
            keys.insert(role, key);
        }
        let (shutdown, mut rx) = tokio::sync::watch::channel(false);
        let state = lotsense::http::AppState {
            metrics,
            store: store.clone(),
            site: config.site.name.clone(),
            occupancy: None,
            parking: Some(service.clone()),
        };
        let (addr, _task) =
            lotsense::http::serve("127.0.0.1:0", lotsense::http::router(state), async move {
                let _ = rx.wait_for(|v| *v).await;
            })
            .await
            .unwrap();
        Some(Site {
            service,
            store,
            addr,
            keys,
            mqtt,
            config,
            shutdown,
            _dir: dir,
            pg,
            _broker: broker,
        })
    }

    pub fn client(&self, role: ApiRole) -> Client {
        Client::new(self.addr, Some(&self.keys[&role]))
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.store.close().await;
        if let Some(pg) = self.pg {
            pg.drop_db().await;
        }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::Row::get(
            &sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_one(self.store.pool())
                .await
                .unwrap(),
            0,
        )
    }
}

/// Asserts a status and returns the JSON body.
pub fn expect(r: &Reply, status: u16) -> serde_json::Value {
    assert_eq!(r.status, status, "unexpected status; body: {}", r.text());
    r.json()
}

pub fn iso(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A camera read as the vision pipeline hands it over.
pub fn read(
    role: lotsense::events::Role,
    plate: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> lotsense::events::PlateRead {
    lotsense::events::PlateRead {
        schema: lotsense::events::PLATE_READ_SCHEMA,
        id: uuid::Uuid::new_v4().to_string(),
        camera: if role == lotsense::events::Role::Entry {
            "main-in".into()
        } else {
            "main-out".into()
        },
        role,
        gate: Some("main".into()),
        lane: None,
        direction: None,
        timestamp: at,
        first_seen: at,
        plate: plate.into(),
        raw_text: plate.into(),
        score: 0.95,
        char_confidences: vec![0.95; plate.len()],
        candidates: vec![],
        format_matched: true,
        known_as: None,
        plate_box: [0.0, 0.0, 10.0, 5.0],
        reads_fused: 3,
        evidence: lotsense::events::Evidence {
            crop: Some(format!("evidence/{plate}.jpg")),
            frame: None,
        },
        models: Default::default(),
    }
}

/// Runs a scenario on SQLite and on PostgreSQL (two tests).
#[macro_export]
macro_rules! on_both {
    ($name:ident, $compact:expr, $extra:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let site = Site::start(Db::Sqlite, &site_toml($compact, $extra))
                    .await
                    .unwrap();
                super::$name(&site).await;
                site.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(site) = Site::start(Db::Postgres, &site_toml($compact, $extra)).await
                else {
                    return;
                };
                super::$name(&site).await;
                site.stop().await;
            }
        }
    };
}
