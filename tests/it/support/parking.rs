//! A parking site for the integration tests: real database (SQLite file or
//! a fresh PostgreSQL database), the in-process MQTT broker with a simulated
//! gate controller, the real HTTP API on a free port, and one API key per role.
//! Every parking test module does `use crate::support::parking::*`.

use lotsense::config::{ApiRole, CameraRole, Config, EarlyDepartureKind, GateConfig};
use lotsense::config::{PermitConfig, SpaceType, TariffConfig};
use lotsense::core::PermitKind;
use lotsense::http::api::auth::{generate_key, hash_key, store_key};
use lotsense::http::api::client::{Client, Reply};
use lotsense::metrics::Metrics;
use lotsense::mqtt::{self, ClientSettings, EmbeddedBroker, MqttHandle, Topics};
use lotsense::service::{ParkingService, Settings};
use lotsense::store::Store;
use lotsense::testkit::{gate, gate_camera, permit, tariff, window};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use super::services::*;
pub use lotsense::testkit::SiteBuilder;

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

/// The test site: `compact` compact bays (C01…, level L0, zone A) plus one
/// large (L01), one EV (E01) and one handicapped (H01) bay (level L1, zone B);
/// gate `main` with an entry and an exit camera, one tariff for every space
/// type, reservations refunded by unused whole hours, a blocked and a
/// watched plate and a weekday staff permit.
pub fn parking_site(compact: usize) -> SiteBuilder {
    use SpaceType::*;
    let mut site = SiteBuilder::new("t")
        .time_zone("Europe/Bucharest")
        .currency("RON")
        .gate(GateConfig {
            ack_timeout_secs: 1,
            ..gate("main")
        })
        .camera(gate_camera(
            "main-in",
            CameraRole::Entry,
            "rtsp://127.0.0.1:9/in",
            "main",
        ))
        .camera(gate_camera(
            "main-out",
            CameraRole::Exit,
            "rtsp://127.0.0.1:9/out",
            "main",
        ))
        .tariff(TariffConfig {
            grace_minutes: 10,
            daily_max: Some(6000),
            lost_ticket_fee: 10000,
            exit_grace_minutes: 15,
            reservation_price: 1000,
            no_show_fee: 1500,
            ..tariff(
                "std",
                &[Compact, Large, Handicapped, Motorcycle, Ev],
                30,
                500,
            )
        })
        .reservations(|r| {
            r.early_departure = EarlyDepartureKind::UnusedWholeHours;
            r.early_departure_fee = 0;
            r.hold_before_minutes = 60;
        })
        .blocked(&["BL0CK01"])
        .watched(&["WATCH01"])
        .permit(PermitConfig {
            windows: vec![window(
                &["mon", "tue", "wed", "thu", "fri"],
                "07:00",
                "19:00",
            )],
            ..permit("staff-1", "STAFF01", PermitKind::Staff, "2024-01-01")
        });
    for i in 1..=compact {
        site = site.space(format!("C{i:02}"), Compact, "L0", "A", i as u32);
    }
    for (id, kind, rank) in [
        ("L01", Large, 100),
        ("E01", Ev, 101),
        ("H01", Handicapped, 102),
    ] {
        site = site.space(id, kind, "L1", "B", rank);
    }
    site
}

impl Site {
    /// None (after a loud message, or a panic under CI) when PostgreSQL is missing.
    pub async fn start(db: Db, site: SiteBuilder) -> Option<Site> {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg) = match db {
            Db::Sqlite => (format!("sqlite://{}/t.db", dir.path().display()), None),
            Db::Postgres => {
                let pg = PgDb::create().await?;
                (pg.url.clone(), Some(pg))
            }
        };
        let config = site.config();
        let store = Store::open(&url, 16).await.expect("store opens");
        let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).expect("broker");
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

/// Runs a scenario on SQLite and on PostgreSQL (two tests) on
/// [`parking_site`]`($compact)`; the PostgreSQL one is skipped when
/// PostgreSQL is missing (a failure under CI).
macro_rules! on_both {
    ($name:ident, $compact:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let site = Site::start(Db::Sqlite, parking_site($compact))
                    .await
                    .unwrap();
                super::$name(&site).await;
                site.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(site) = Site::start(Db::Postgres, parking_site($compact)).await else {
                    return;
                };
                super::$name(&site).await;
                site.stop().await;
            }
        }
    };
}
pub(crate) use on_both;

/// A camera read's decision as the API would show it (its wire form).
pub fn decided(o: &lotsense::service::ReadOutcome) -> serde_json::Value {
    use lotsense::http::api::dto::ToWire;
    serde_json::to_value(o.wire()).unwrap()
}
