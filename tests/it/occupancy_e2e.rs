//! Overview camera to the boards, end to end: the in-process RTSP server
//! streams a clip cut from the aerial lot video (testdata/clips/aerial-lot.mp4),
//! lotsense warps and classifies its 32 bays with the committed model, and a
//! separate MQTT client on the real broker (in-process, and Mosquitto when it
//! runs) receives retained counts that match the labelled bays
//! (testdata/occupancy/aerial-lot-labels.csv, derived from the data set's
//! manifest; see testdata/occupancy/make_fixture.py and SOURCE.md).
//! Then the RTSP server is stopped: the bays become `unknown`; it is started
//! again: they recover.

use crate::support::net::ClosedPort;
use crate::support::services::mosquitto;
use lotsense::config::{CameraRole, Config};
use lotsense::ingest::testserver::TestCameraServer;
use lotsense::testkit::{camera, SiteBuilder};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

const CLIP: &str = "testdata/clips/aerial-lot.mp4";
const BAYS: &str = "testdata/occupancy/aerial-lot.toml";
const LABELS: &str = "testdata/occupancy/aerial-lot-labels.csv";

/// The site: one overview camera at `camera_url` over the 32 labelled bays,
/// sampled fast, zone E holding one free bay back, bays flagged at once; MQTT
/// through the broker at `mqtt_url`, or the in-process one on a free port.
fn config(
    dir: &Path,
    site: &str,
    mqtt_url: Option<&str>,
    camera_url: &str,
    discovery_prefix: &str,
) -> Config {
    let builder = SiteBuilder::new(site)
        .sqlite_in(dir, "db.sqlite")
        .http_listen("127.0.0.1:0")
        .camera(camera("overview", CameraRole::Overview, camera_url))
        .occupancy(|o| {
            o.sample_rate = 4.0;
            o.required_samples = 2;
            o.sample_timeout_secs = 5;
            o.publish_interval_ms = 200;
            o.discovery_prefix = discovery_prefix.into();
            o.sign_offsets.insert("E".into(), 1);
        })
        .policy(|p| p.bay_flag_grace_secs = 0)
        .spaces_and_bays_from(Path::new(BAYS));
    match mqtt_url {
        Some(url) => builder.mqtt_url(url),
        None => builder.mqtt_listen("127.0.0.1:0"),
    }
    .config()
}

/// What the boards must show, computed here from the labels and the
/// documented sign-offset rule (the farthest free bays of a zone are held back).
struct Expected {
    bays: BTreeMap<String, String>,
    free: u32,
    occupied: u32,
    zones: BTreeMap<String, u32>,
    levels: BTreeMap<String, u32>,
    types: BTreeMap<String, u32>,
}

fn expected(config: &Config) -> Expected {
    let text = std::fs::read_to_string(LABELS).unwrap();
    let labels: HashMap<String, String> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect();
    let mut e = Expected {
        bays: BTreeMap::new(),
        free: 0,
        occupied: 0,
        zones: BTreeMap::new(),
        levels: BTreeMap::new(),
        types: BTreeMap::new(),
    };
    let mut held = std::collections::HashSet::new();
    for (zone, n) in &config.occupancy.sign_offsets {
        let mut free: Vec<_> = config
            .spaces
            .iter()
            .filter(|s| &s.zone == zone && labels[&s.id] == "free")
            .collect();
        free.sort_by(|a, b| b.rank.cmp(&a.rank).then(b.id.cmp(&a.id)));
        held.extend(free.iter().take(*n as usize).map(|s| s.id.clone()));
    }
    for s in &config.spaces {
        let label = labels[&s.id].clone();
        let shown_free = (label == "free" && !held.contains(&s.id)) as u32;
        e.free += shown_free;
        e.occupied += (label == "occupied") as u32;
        *e.zones.entry(s.zone.clone()).or_default() += shown_free;
        *e.levels.entry(s.level.clone()).or_default() += shown_free;
        let kind = serde_json::to_value(s.kind)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        *e.types.entry(kind).or_default() += shown_free;
        e.bays.insert(s.id.clone(), label);
    }
    assert_eq!(e.bays.len(), 32);
    e
}

/// A board: a separate MQTT client that keeps the latest payload per topic.
struct BoardClient {
    latest: tokio::sync::watch::Receiver<HashMap<String, (String, bool)>>,
    task: tokio::task::JoinHandle<()>,
}

async fn board(host: &str, port: u16, filters: &[String]) -> BoardClient {
    let mut opts = MqttOptions::new(
        format!("board-{}", uuid::Uuid::new_v4().simple()),
        host,
        port,
    );
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(opts, 64);
    for f in filters {
        client.subscribe(f.clone(), QoS::AtLeastOnce).await.unwrap();
    }
    let (tx, rx) = tokio::sync::watch::channel(HashMap::new());
    let task = tokio::spawn(async move {
        let _keep = client;
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let (t, v) = (
                        p.topic.to_string(),
                        String::from_utf8_lossy(&p.payload).to_string(),
                    );
                    tx.send_modify(|m| {
                        m.insert(t, (v, p.retain));
                    });
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    BoardClient { latest: rx, task }
}

impl BoardClient {
    /// Waits until `pred` holds on the latest messages; returns them either way.
    async fn wait(
        &mut self,
        secs: u64,
        pred: impl Fn(&HashMap<String, (String, bool)>) -> bool,
    ) -> (bool, HashMap<String, (String, bool)>) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let now = self.latest.borrow_and_update().clone();
            if pred(&now) {
                return (true, now);
            }
            if Instant::now() >= deadline {
                return (false, now);
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), self.latest.changed()).await;
        }
    }
}

fn occupancy(m: &HashMap<String, (String, bool)>, site: &str) -> Option<serde_json::Value> {
    m.get(&format!("lotsense/{site}/occupancy"))
        .and_then(|(v, _)| serde_json::from_str(v).ok())
}

fn counts_match(m: &HashMap<String, (String, bool)>, site: &str, e: &Expected) -> bool {
    occupancy(m, site)
        .is_some_and(|j| j["unknown"] == 0 && j["free"] == e.free && j["occupied"] == e.occupied)
}

/// Counts and every board topic as labelled.
fn boards_match(m: &HashMap<String, (String, bool)>, site: &str, e: &Expected) -> bool {
    counts_match(m, site, e)
        && e.bays.iter().all(|(id, l)| {
            m.get(&format!("lotsense/{site}/bays/{id}"))
                .is_some_and(|v| &v.0 == l)
        })
        && e.zones.iter().all(|(z, n)| {
            m.get(&format!("lotsense/{site}/zones/{z}/free"))
                .is_some_and(|v| v.0 == n.to_string())
        })
}

fn all_unknown(m: &HashMap<String, (String, bool)>, site: &str) -> bool {
    occupancy(m, site).is_some_and(|j| j["unknown"] == 32 && j["free"] == 0 && j["occupied"] == 0)
}

/// Every board topic matches the labels (retained).
fn check_topics(m: &HashMap<String, (String, bool)>, site: &str, e: &Expected) {
    let get = |t: String| {
        m.get(&t)
            .unwrap_or_else(|| panic!("no message on {t}"))
            .clone()
    };
    for (id, label) in &e.bays {
        assert_eq!(
            &get(format!("lotsense/{site}/bays/{id}")).0,
            label,
            "bay {id}"
        );
    }
    for (zone, n) in &e.zones {
        assert_eq!(
            get(format!("lotsense/{site}/zones/{zone}/free")).0,
            n.to_string(),
            "zone {zone}"
        );
    }
    for (level, n) in &e.levels {
        assert_eq!(
            get(format!("lotsense/{site}/levels/{level}/free")).0,
            n.to_string(),
            "level {level}"
        );
    }
    for (kind, n) in &e.types {
        assert_eq!(
            get(format!("lotsense/{site}/types/{kind}/free")).0,
            n.to_string(),
            "type {kind}"
        );
    }
    let j = occupancy(m, site).unwrap();
    assert_eq!(j["total"], 32);
    assert_eq!(j["held_back"], 1, "zone E holds one free bay back");
    for k in ["by_level", "by_zone", "by_type", "updated"] {
        assert!(!j[k].is_null(), "{k} missing in {j}");
    }
    assert_eq!(j["by_zone"]["E"]["free"], e.zones["E"]);
}

/// GET over a plain TCP connection (no HTTP client in the dependencies).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bay_counts_reach_the_boards_go_unknown_when_the_camera_stops_and_recover() {
    let server = TestCameraServer::start(0, &[("aerial", Path::new(CLIP))]).unwrap();
    let rtsp_port = server.port;
    let dir = tempfile::tempdir().unwrap();
    let site = "occtest";
    let cfg = config(
        dir.path(),
        site,
        None,
        &server.url("aerial"),
        "homeassistant",
    );
    let e = expected(&cfg);
    let running = lotsense::app::start(cfg).await.unwrap();
    let port = running.mqtt_addr.1;
    let mut b = board(
        "127.0.0.1",
        port,
        &[format!("lotsense/{site}/#"), "homeassistant/#".into()],
    )
    .await;

    let (ok, m) = b.wait(30, |m| boards_match(m, site, &e)).await;
    assert!(
        ok,
        "the boards never showed the labelled counts; last occupancy: {:?}",
        occupancy(&m, site)
    );
    check_topics(&m, site, &e);
    // Home Assistant discovery for the free counters, retained.
    let (ok, m) = b
        .wait(5, |m| {
            m.contains_key(&format!(
                "homeassistant/sensor/lotsense_{site}/zone_E_free/config"
            ))
        })
        .await;
    assert!(
        ok,
        "no discovery config: {:?}",
        m.keys()
            .filter(|k| k.starts_with("homeassistant"))
            .collect::<Vec<_>>()
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&m[&format!("homeassistant/sensor/lotsense_{site}/free/config")].0)
            .unwrap();
    assert_eq!(cfg["state_topic"], format!("lotsense/{site}/occupancy"));
    // The same figures over HTTP.
    let d = http_get(running.http_addr, "/api/displays").await;
    assert_eq!(d["free"], e.free);
    assert_eq!(d["zones"]["E"], e.zones["E"]);
    assert_eq!(d["bays"]["O-004"], e.bays["O-004"].as_str());
    assert_eq!(d["classifier"], "ok");

    // Into the parking core: no car entered through a gate, so every bay the
    // camera sees occupied is flagged for staff (occupied without a session).
    let occupied: Vec<&String> = e
        .bays
        .iter()
        .filter(|(_, s)| s.as_str() == "occupied")
        .map(|(id, _)| id)
        .collect();
    let mut flagged = Vec::new();
    for _ in 0..50 {
        let flags = running
            .parking
            .flags(None, Some("occupied_without_session"), None, 500)
            .await
            .unwrap();
        flagged = flags.iter().map(|f| f.detail.clone()).collect::<Vec<_>>();
        if occupied
            .iter()
            .all(|id| flagged.iter().any(|d| d.contains(&format!("space {id} "))))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &occupied {
        assert!(
            flagged.iter().any(|d| d.contains(&format!("space {id} "))),
            "occupied bay {id} was not flagged: {flagged:?}"
        );
    }
    assert_eq!(
        flagged.len(),
        occupied.len(),
        "free bays must not be flagged: {flagged:?}"
    );

    // A board that connects now still gets the counts (retained).
    let mut late = board("127.0.0.1", port, &[format!("lotsense/{site}/#")]).await;
    let (ok, m) = late.wait(5, |m| boards_match(m, site, &e)).await;
    assert!(
        ok,
        "a late board did not get the retained counts: {:?}",
        occupancy(&m, site)
    );
    assert!(
        m[&format!("lotsense/{site}/occupancy")].1,
        "delivered as retained"
    );
    check_topics(&m, site, &e);
    late.task.abort();

    // A staff override through the API wins on the boards until it is cleared.
    let key = lotsense::http::api::auth::generate_key();
    let hash = lotsense::http::api::auth::hash_key(&key);
    lotsense::http::api::auth::store_key(
        &running.store,
        "ops",
        lotsense::config::ApiRole::Operator,
        &hash,
        None,
        "test",
    )
    .await
    .unwrap();
    let mut op = lotsense::http::api::client::Client::new(running.http_addr, Some(&key));
    let bay = e
        .bays
        .iter()
        .find(|(_, s)| s.as_str() == "occupied")
        .map(|(id, _)| id.clone())
        .unwrap();
    let topic = format!("lotsense/{site}/bays/{bay}");
    let r = op
        .put(
            &format!("/api/spaces/{bay}/status"),
            &serde_json::json!({ "status": "available", "override": true }),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (ok, m) = b
        .wait(5, |m| m.get(&topic).is_some_and(|v| v.0 == "free"))
        .await;
    assert!(
        ok,
        "the override did not reach the board: {:?}",
        m.get(&topic)
    );
    let r = op
        .put(
            &format!("/api/spaces/{bay}/status"),
            &serde_json::json!({ "status": "auto" }),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let (ok, m) = b
        .wait(5, |m| m.get(&topic).is_some_and(|v| v.0 == "occupied"))
        .await;
    assert!(
        ok,
        "clearing the override did not give the board back to the camera: {:?}",
        m.get(&topic)
    );
    // Occupancy figures are in /metrics too.
    let r = op.get("/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        text.contains(&format!("lotsense_bays{{state=\"free\"}} {}", e.free)),
        "{text}"
    );
    assert!(
        text.contains("lotsense_bay_samples_total{camera=\"overview\"}"),
        "{text}"
    );

    // The camera's server goes away: every bay becomes unknown, on every board.
    server.stop();
    let held = ClosedPort::hold(rtsp_port);
    let (ok, m) = b
        .wait(20, |m| {
            all_unknown(m, site)
                && e.bays
                    .keys()
                    .all(|id| m[&format!("lotsense/{site}/bays/{id}")].0 == "unknown")
        })
        .await;
    assert!(
        ok,
        "bays did not go unknown after the camera stopped: {:?}",
        occupancy(&m, site)
    );
    assert!(e
        .bays
        .keys()
        .all(|id| m[&format!("lotsense/{site}/bays/{id}")].0 == "unknown"));
    assert_eq!(m[&format!("lotsense/{site}/zones/W/free")].0, "0");
    let snap = running.occupancy.as_ref().unwrap().snapshot();
    assert_eq!(snap.unknown, 32);

    // Back again: the bays recover.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = TestCameraServer::start(rtsp_port, &[("aerial", Path::new(CLIP))]).unwrap();
    drop(held);
    let (ok, m) = b.wait(45, |m| boards_match(m, site, &e)).await;
    assert!(
        ok,
        "bays did not recover after the camera came back: {:?}",
        occupancy(&m, site)
    );
    check_topics(&m, site, &e);
    let stats = running.occupancy.as_ref().unwrap().stats.view();
    assert!(
        stats.samples >= 4 && stats.offline_events >= 1 && stats.failures == 0,
        "{stats:?}"
    );

    b.task.abort();
    running.shutdown().await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bay_counts_through_mosquitto_reach_a_board_that_connects_later() {
    let Some((host, port)) = mosquitto() else {
        return;
    };
    let server = TestCameraServer::start(0, &[("aerial", Path::new(CLIP))]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let site = format!("occ{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let prefix = format!("ha{site}");
    let cfg = config(
        dir.path(),
        &site,
        Some(&format!("mqtt://{host}:{port}")),
        &server.url("aerial"),
        &prefix,
    );
    let e = expected(&cfg);
    let running = lotsense::app::start(cfg).await.unwrap();
    let mut b = board(&host, port, &[format!("lotsense/{site}/occupancy")]).await;
    let (ok, m) = b.wait(30, |m| counts_match(m, &site, &e)).await;
    assert!(
        ok,
        "the boards never showed the labelled counts: {:?}",
        occupancy(&m, &site)
    );
    b.task.abort();
    let mut late = board(
        &host,
        port,
        &[format!("lotsense/{site}/#"), format!("{prefix}/#")],
    )
    .await;
    let discovery = format!("{prefix}/sensor/lotsense_{site}/level_L1_free/config");
    let (ok, m) = late
        .wait(5, |m| {
            boards_match(m, &site, &e) && m.contains_key(&discovery)
        })
        .await;
    assert!(
        ok,
        "a late board did not get the retained counts: {:?}",
        occupancy(&m, &site)
    );
    check_topics(&m, &site, &e);
    running.shutdown().await;
    server.stop();
    // Leave nothing retained behind on the shared broker.
    let (client, mut el) = AsyncClient::new(
        MqttOptions::new(format!("clean-{site}"), host.as_str(), port),
        256,
    );
    let poller = tokio::spawn(async move {
        loop {
            if el.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    for t in m.keys() {
        client
            .publish(t.clone(), QoS::AtLeastOnce, true, Vec::<u8>::new())
            .await
            .unwrap();
    }
    for t in [
        format!("lotsense/{site}/available"),
        format!("lotsense/{site}/cameras/overview/status"),
    ] {
        client
            .publish(t, QoS::AtLeastOnce, true, Vec::<u8>::new())
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    poller.abort();
}

/// A TCP proxy in front of the broker whose connections can be cut, to make
/// lotsense's MQTT client reconnect.
struct Proxy {
    port: u16,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let c2 = conns.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut down, _)) = l.accept().await {
                let h = tokio::spawn(async move {
                    if let Ok(mut up) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                c2.lock().unwrap().push(h);
            }
        });
        Proxy {
            port,
            conns,
            accept,
        }
    }
    fn cut(&self) {
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_boards_are_published_again_after_every_mqtt_reconnect() {
    let broker = lotsense::mqtt::EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let broker_port = broker.addr.port();
    let proxy = Proxy::start(broker_port).await;
    let dir = tempfile::tempdir().unwrap();
    let site = "occreconnect";
    // The camera is unreachable: every bay stays unknown, and that is what the boards must show.
    let dead = ClosedPort::new();
    let cfg = config(
        dir.path(),
        site,
        Some(&format!("mqtt://127.0.0.1:{}", proxy.port)),
        &format!("rtsp://127.0.0.1:{}/x", dead.port()),
        "homeassistant",
    );
    let running = lotsense::app::start(cfg).await.unwrap();
    let topic = format!("lotsense/{site}/occupancy");
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (client, mut el) =
        AsyncClient::new(MqttOptions::new("counter", "127.0.0.1", broker_port), 64);
    client
        .subscribe(topic.clone(), QoS::AtLeastOnce)
        .await
        .unwrap();
    let s2 = seen.clone();
    let counter = tokio::spawn(async move {
        let _keep = client;
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let j: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                    assert_eq!(j["unknown"], 32, "{j}");
                    s2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    let wait_more_than = |n: usize, secs: u64| {
        let seen = seen.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(secs);
            while seen.load(std::sync::atomic::Ordering::SeqCst) <= n && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen.load(std::sync::atomic::Ordering::SeqCst)
        }
    };
    let first = wait_more_than(0, 10).await;
    assert!(
        first >= 1,
        "the initial (all unknown) boards were not published"
    );
    // Nothing changes, so nothing more is published...
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = seen.load(std::sync::atomic::Ordering::SeqCst);
    // ...until the connection drops and comes back: then everything again.
    for round in 1..=2 {
        proxy.cut();
        let now = wait_more_than(settled + round - 1, 20).await;
        assert!(
            now >= settled + round,
            "round {round}: boards not published again after the reconnect ({now} messages)"
        );
    }
    counter.abort();
    proxy.accept.abort();
    running.shutdown().await;
}
