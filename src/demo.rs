//! `lotsense demo`: the demo site from `testdata/demo/` on the embedded
//! defaults. Cameras are real RTSP streams from an in-process server playing
//! the clips in `testdata/clips/`, so everything downstream is the real path.

use crate::config::Config;
use crate::ingest::testserver::TestCameraServer;
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEMO_CONFIG: &str = "testdata/demo/lotsense.toml";
const CLIPS: &str = "testdata/clips";

/// Loads the demo config and rewrites `rtsp://testserver/NAME` cameras to the
/// in-process server; returns the server too.
pub fn prepare(root: &Path) -> anyhow::Result<(Config, TestCameraServer)> {
    let path = root.join(DEMO_CONFIG);
    let mut config = Config::load(&path).with_context(|| {
        format!(
            "the demo needs {} (run it from the repository root)",
            path.display()
        )
    })?;
    let mounts: Vec<(String, PathBuf)> = config
        .cameras
        .iter()
        .filter_map(|c| {
            c.url
                .strip_prefix("rtsp://testserver/")
                .map(|m| (m.to_string(), root.join(CLIPS).join(format!("{m}.mp4"))))
        })
        .collect();
    let refs: Vec<(&str, &Path)> = mounts
        .iter()
        .map(|(m, p)| (m.as_str(), p.as_path()))
        .collect();
    let server = TestCameraServer::start(0, &refs)?;
    for c in &mut config.cameras {
        if let Some(m) = c.url.strip_prefix("rtsp://testserver/") {
            c.url = server.url(m);
        }
    }
    config.mqtt.listen = free_addr()?;
    Ok((config, server))
}

/// `lotsense demo` arguments.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Seconds to run before stopping by itself (0 = until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub duration: u64,
    /// HTTP listen address for the demo.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: String,
}

fn free_addr() -> anyhow::Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let root = std::env::current_dir()?;
    let (mut config, server) = prepare(&root)?;
    config.http.listen = args.http.clone();
    let running = crate::app::start(config).await?;
    println!("lotsense demo is running");
    println!(
        "  HTTP     http://{}/healthz   http://{}/metrics",
        running.http_addr, running.http_addr
    );
    println!(
        "  MQTT     mqtt://{}:{}  (try: mosquitto_sub -h {} -p {} -t 'lotsense/#' -v)",
        running.mqtt_addr.0, running.mqtt_addr.1, running.mqtt_addr.0, running.mqtt_addr.1
    );
    println!(
        "  cameras  {}",
        running
            .camera_slots
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Parking API: a fresh admin key for this run (stored hashed), a stand-in
    // gate controller that acknowledges commands, and one scripted car.
    let key = crate::http::api::auth::generate_key();
    crate::http::api::auth::store_key(
        &running.store,
        "demo-admin",
        crate::config::ApiRole::Admin,
        &crate::http::api::auth::hash_key(&key),
        None,
        "demo",
    )
    .await?;
    println!("  API key  {key}   (admin; try: curl -H 'Authorization: Bearer {key}' http://{}/api/parkings)", running.http_addr);
    println!("  OpenAPI  http://{}/api/openapi.json", running.http_addr);
    for (gate, _) in &running.parking.settings().gates {
        crate::mqtt::gates::simulate_gate(running.mqtt.clone(), gate).await?;
    }
    // The printer is its own MQTT client, like a board or a gate would be: on
    // lotsense's own connection its `#` subscription would overlap the gate
    // listeners' and the broker would deliver those messages twice.
    let (host, port) = running.mqtt_addr.clone();
    let (client, mut events) = rumqttc::AsyncClient::new(
        rumqttc::MqttOptions::new(
            format!("lotsense-demo-printer-{}", std::process::id()),
            host,
            port,
        ),
        64,
    );
    client
        .subscribe(
            format!("{}/#", running.mqtt.topics.sub("").trim_end_matches('/')),
            rumqttc::QoS::AtLeastOnce,
        )
        .await?;
    let printer = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(m))) => {
                    println!(
                        "  mqtt  {}  {}",
                        m.topic,
                        String::from_utf8_lossy(&m.payload)
                    );
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    });
    if let Err(e) = scripted_car(running.http_addr, &key).await {
        println!("  demo car: {e}");
    }
    if args.duration > 0 {
        tokio::time::sleep(Duration::from_secs(args.duration)).await;
    } else {
        tokio::signal::ctrl_c().await?;
    }
    printer.abort();
    running.shutdown().await;
    server.stop();
    println!("demo stopped");
    Ok(())
}

/// Drives one car through the API: entry an hour ago, exit (payment
/// required), card payment, exit (gate opens). Prints each answer.
async fn scripted_car(addr: std::net::SocketAddr, key: &str) -> anyhow::Result<()> {
    use serde_json::json;
    let mut c = crate::http::api::client::Client::new(addr, Some(key));
    let ts = (chrono::Utc::now() - chrono::Duration::minutes(65))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let plate = format!("DEMO{:03}", rand::random::<u16>() % 1000);
    let e = c
        .post(
            "/api/entry",
            &json!({ "license_plate": plate, "vehicle_type": "car", "timestamp": ts }),
        )
        .await?
        .json();
    println!(
        "  demo car {plate}: entry → {} ({}) space {}",
        e["verdict"], e["reason"], e["space"]["space_id"]
    );
    let x = c
        .post("/api/exit", &json!({ "license_plate": plate }))
        .await?
        .json();
    println!(
        "  demo car {plate}: exit → {} {} minor units",
        x["verdict"], x["amount_due"]
    );
    if let (Some(session), Some(amount)) = (
        e["session_id"].as_str(),
        x["amount_due"].as_i64().filter(|a| *a > 0),
    ) {
        let p = c.post("/api/payments", &json!({ "session_id": session, "payment_method": "card", "amount": amount, "idempotency_key": format!("demo-{session}") })).await?.json();
        println!(
            "  demo car {plate}: paid {} ({}), receipt {}  → http://{addr}/api/receipts/{}/print",
            p["payment"]["amount"],
            p["payment"]["status"],
            p["receipt"]["number"],
            p["payment"]["payment_id"].as_str().unwrap_or("")
        );
        let x = c
            .post("/api/exit", &json!({ "license_plate": plate }))
            .await?
            .json();
        println!(
            "  demo car {plate}: exit → {} ({})",
            x["verdict"], x["reason"]
        );
    }
    Ok(())
}
