//! Retained messages through the in-process broker and through Mosquitto,
//! availability and the last will, with real brokers and a separate client.

use crate::support::services::mosquitto;
use lotsense::metrics::Metrics;
use lotsense::mqtt::{self, ClientSettings, EmbeddedBroker, Topics};
use lotsense::testkit::SiteBuilder;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::Arc;
use std::time::Duration;

fn settings(host: &str, port: u16, site: &str) -> ClientSettings {
    ClientSettings {
        host: host.into(),
        port,
        client_id: format!("lotsense-test-{site}"),
        keep_alive: Duration::from_secs(5),
        topics: Topics::new("lotsense", site),
    }
}

/// A separate subscriber: collects messages on `filter` for `secs`.
async fn collect(host: &str, port: u16, filter: &str, secs: u64) -> Vec<(String, String, bool)> {
    let mut opts = MqttOptions::new(
        format!("board-{}", uuid::Uuid::new_v4().simple()),
        host,
        port,
    );
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(opts, 16);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            if let Ok(Event::Incoming(Packet::Publish(p))) = el.poll().await {
                got.push((
                    p.topic.to_string(),
                    String::from_utf8_lossy(&p.payload).to_string(),
                    p.retain,
                ));
            }
        }
    })
    .await;
    got
}

async fn retained_roundtrip(host: &str, port: u16, site: &str) {
    let handle = mqtt::connect(settings(host, port, site), Arc::new(Metrics::new()));
    assert!(
        handle.wait_connected(Duration::from_secs(5)).await,
        "client did not connect"
    );
    let topic = handle.topics.sub("levels/L0/free");
    handle.publish(topic.clone(), "17", true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A board that connects later still gets the retained values.
    let got = collect(host, port, &format!("lotsense/{site}/#"), 2).await;
    assert!(
        got.iter().any(|(t, p, r)| t == &topic && p == "17" && *r),
        "retained count not received: {got:?}"
    );
    assert!(
        got.iter()
            .any(|(t, p, _)| t == &format!("lotsense/{site}/available") && p == "online"),
        "availability not received: {got:?}"
    );
    handle.shutdown().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = collect(host, port, &format!("lotsense/{site}/available"), 1).await;
    assert!(
        got.iter().any(|(_, p, _)| p == "offline"),
        "offline not received after shutdown: {got:?}"
    );
}

#[tokio::test]
async fn retained_messages_through_the_embedded_broker() {
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = broker.addr.port();
    retained_roundtrip("127.0.0.1", port, &format!("emb{port}")).await;
}

#[tokio::test]
async fn retained_messages_through_mosquitto() {
    let Some((host, port)) = mosquitto() else {
        return;
    };
    let site = format!("t{}", uuid::Uuid::new_v4().simple());
    retained_roundtrip(&host, port, &site).await;
    // Leave nothing behind on the shared broker.
    let handle = mqtt::connect(
        settings(&host, port, &format!("{site}-clean")),
        Arc::new(Metrics::new()),
    );
    handle.wait_connected(Duration::from_secs(5)).await;
    for t in ["levels/L0/free", "available"] {
        handle
            .publish(format!("lotsense/{site}/{t}"), Vec::new(), true)
            .await
            .unwrap();
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn the_embedded_broker_refuses_a_busy_port_clearly() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let e = EmbeddedBroker::start(l.local_addr().unwrap())
        .err()
        .expect("busy port must fail");
    assert!(
        e.to_string()
            .contains("cannot start the in-process MQTT broker"),
        "{e}"
    );
}

#[tokio::test]
async fn the_last_will_marks_lotsense_offline_when_the_process_dies() {
    let Some((host, port)) = mosquitto() else {
        return;
    };
    // A child process connects (with its will) and is killed without a clean disconnect.
    let site = format!("will{}", uuid::Uuid::new_v4().simple());
    let bin = env!("CARGO_BIN_EXE_lotsense");
    let dir = tempfile::tempdir().unwrap();
    let cfg = SiteBuilder::new(&site)
        .sqlite_in(dir.path(), "db.sqlite")
        .mqtt_url(&format!("mqtt://{host}:{port}"))
        .mqtt_keep_alive_secs(2)
        .http_listen("127.0.0.1:0")
        .write(&dir.path().join("c.toml"));
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut online = false;
    for _ in 0..20 {
        let got = collect(&host, port, &format!("lotsense/{site}/available"), 1).await;
        if got.iter().any(|(_, p, _)| p == "online") {
            online = true;
            break;
        }
    }
    assert!(online, "lotsense serve never announced itself online");
    child.kill().unwrap();
    child.wait().unwrap();
    // The broker publishes the will once it notices (keep-alive 2 s × 1.5, or at once on the closed socket).
    let mut offline = false;
    for _ in 0..10 {
        let got = collect(&host, port, &format!("lotsense/{site}/available"), 1).await;
        if got.iter().any(|(_, p, _)| p == "offline") {
            offline = true;
            break;
        }
    }
    assert!(offline, "last will `offline` was not published");
    let handle = mqtt::connect(
        settings(&host, port, &format!("{site}-clean")),
        Arc::new(Metrics::new()),
    );
    handle.wait_connected(Duration::from_secs(5)).await;
    handle
        .publish(format!("lotsense/{site}/available"), Vec::new(), true)
        .await
        .unwrap();
    handle.shutdown().await;
}
