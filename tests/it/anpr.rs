//! Gate camera to plate events, end to end: the in-process RTSP server streams
//! a clip of real Romanian plates, lotsense reads them with the real models,
//! and a separate MQTT client on the real broker receives the plate events.

use crate::support::net::ClosedPort;
use crate::support::HEAVY;
use lotsense::config::{CameraConfig, CameraRole, Config};
use lotsense::events::PlateRead;
use lotsense::ingest::testserver::TestCameraServer;
use lotsense::testkit::{gate, gate_camera, SiteBuilder};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

const CLIP: &str = "testdata/clips/gate-ro.mp4";

const EXPECTED: [&str; 3] = ["BR07AAC", "B68SPK", "B305CIL"];

/// The site: gate `main` with `cameras`, Romanian plate formats, the
/// in-process broker and HTTP on free ports.
fn config(dir: &Path, cameras: Vec<CameraConfig>, gap_secs: u64) -> Config {
    let mut site = SiteBuilder::new("anprtest")
        .time_zone("Europe/Bucharest")
        .currency("RON")
        .sqlite_in(dir, "db.sqlite")
        .mqtt_listen("127.0.0.1:0")
        .http_listen("127.0.0.1:0")
        .lpr(|l| {
            l.format = ["@@##@@@", "@##@@@", "B##@@@", "B###@@@"]
                .map(String::from)
                .to_vec();
            l.reannounce_gap_secs = gap_secs;
        })
        .gate(gate("main"));
    for c in cameras {
        site = site.camera(c);
    }
    site.config()
}

/// An entry camera of gate `main`.
fn entry(id: &str, url: &str) -> CameraConfig {
    gate_camera(id, CameraRole::Entry, url, "main")
}

/// Subscribes to the plate topic and collects events.
async fn plate_listener(port: u16) -> tokio::sync::mpsc::UnboundedReceiver<PlateRead> {
    let mut opts = MqttOptions::new(
        format!("listener-{}", uuid::Uuid::new_v4().simple()),
        "127.0.0.1",
        port,
    );
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(opts, 16);
    client
        .subscribe("lotsense/anprtest/plates", QoS::AtLeastOnce)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _keep = client;
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let read: PlateRead = serde_json::from_slice(&p.payload)
                        .expect("plate event is a valid PlateRead");
                    let _ = tx.send(read);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    rx
}

async fn collect_until(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<PlateRead>,
    secs: u64,
    want: &[&str],
) -> Vec<PlateRead> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            got.push(r);
        }
        let seen: BTreeSet<&str> = got.iter().map(|r| r.plate.as_str()).collect();
        if want.iter().all(|w| seen.contains(w)) {
            break;
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plates_streamed_over_rtsp_are_read_fused_and_published() {
    let _one = HEAVY.lock().await;
    let server = TestCameraServer::start(0, &[("gate", Path::new(CLIP))]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cams = vec![CameraConfig {
        fps: 10,
        ..entry("gate-in", &server.url("gate"))
    }];
    let running = lotsense::app::start(config(dir.path(), cams, 600))
        .await
        .unwrap();
    let port = running.mqtt_addr.1;
    let mut rx = plate_listener(port).await;
    let got = collect_until(&mut rx, 90, &EXPECTED).await;
    let plates: Vec<&str> = got.iter().map(|r| r.plate.as_str()).collect();
    for want in EXPECTED {
        assert!(
            plates.contains(&want),
            "plate {want} not read; got {plates:?}"
        );
    }
    // One event per car: the loop of the clip and the frames of one car are fused.
    for want in EXPECTED {
        assert_eq!(
            plates.iter().filter(|p| **p == want).count(),
            1,
            "{want} announced more than once: {plates:?}"
        );
    }
    let r = got.iter().find(|r| r.plate == "B68SPK").unwrap();
    assert_eq!(r.camera, "gate-in");
    assert_eq!(r.gate.as_deref(), Some("main"));
    assert!(r.format_matched);
    assert!(r.reads_fused >= 1);
    assert!(r.score > 0.5);
    assert_eq!(r.char_confidences.len(), r.plate.len());
    // The evidence is the crop that was read and its frame, on disk.
    let crop = dir
        .path()
        .join(r.evidence.crop.as_ref().expect("crop evidence"));
    let frame = dir
        .path()
        .join(r.evidence.frame.as_ref().expect("frame evidence"));
    let crop_img = image::open(&crop).unwrap();
    let frame_img = image::open(&frame).unwrap();
    assert_eq!((frame_img.width(), frame_img.height()), (1280, 720));
    assert!(
        crop_img.width() > crop_img.height() * 2,
        "a plate crop is wide"
    );
    assert!(r.timestamp >= r.first_seen);
    // Stored too.
    let n: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) FROM plate_reads")
            .fetch_one(running.store.pool())
            .await
            .unwrap(),
        0,
    );
    assert!(n >= 3);
    running.shutdown().await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plates_are_read_again_after_the_camera_server_restarts_and_a_broken_camera_does_not_stop_the_others(
) {
    let _one = HEAVY.lock().await;
    let server = TestCameraServer::start(
        0,
        &[
            ("gate", Path::new(CLIP)),
            ("broken", Path::new("testdata/clips/truncated.mp4")),
        ],
    )
    .unwrap();
    let rtsp_port = server.port;
    let dir = tempfile::tempdir().unwrap();
    let dead = ClosedPort::new();
    let cams = vec![
        CameraConfig {
            fps: 10,
            ..entry("gate-in", &server.url("gate"))
        },
        entry("broken", &server.url("broken")),
        gate_camera(
            "unreachable",
            CameraRole::Exit,
            &format!("rtsp://127.0.0.1:{}/x", dead.port()),
            "main",
        ),
    ];
    // A short re-announce gap so the same cars count again after the restart.
    let running = lotsense::app::start(config(dir.path(), cams, 1))
        .await
        .unwrap();
    let port = running.mqtt_addr.1;
    let mut status = running
        .mqtt
        .subscribe("lotsense/anprtest/cameras/+/status")
        .await
        .unwrap();
    let mut rx = plate_listener(port).await;
    let first = collect_until(&mut rx, 90, &["B68SPK"]).await;
    assert!(
        first.iter().any(|r| r.plate == "B68SPK"),
        "no plate before the restart: {first:?}"
    );

    server.stop();
    let held = ClosedPort::hold(rtsp_port);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server = TestCameraServer::start(rtsp_port, &[("gate", Path::new(CLIP))]).unwrap();
    drop(held);
    while rx.try_recv().is_ok() {}
    let again = collect_until(&mut rx, 90, &["B305CIL"]).await;
    assert!(
        again.iter().any(|r| r.plate == "B305CIL"),
        "no plate after the restart: {again:?}"
    );

    // Status events name each camera; the broken and unreachable ones say why.
    let mut statuses = Vec::new();
    while let Ok(m) = status.try_recv() {
        statuses.push((m.topic, String::from_utf8_lossy(&m.payload).to_string()));
    }
    let offline = |cam: &str| {
        statuses.iter().any(|(t, p)| {
            t.ends_with(&format!("/{cam}/status"))
                && p.contains("\"offline\"")
                && p.contains("reason")
        })
    };
    assert!(
        offline("gate-in"),
        "gate-in never reported offline: {statuses:?}"
    );
    assert!(
        offline("broken"),
        "the broken camera was not reported: {statuses:?}"
    );
    assert!(
        offline("unreachable"),
        "the unreachable camera was not reported: {statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .filter(|(t, p)| t.ends_with("/gate-in/status") && p.contains("\"online\""))
            .count()
            >= 2,
        "gate-in did not come back online: {statuses:?}"
    );
    running.shutdown().await;
    server.stop();
}

#[test]
fn plate_read_fixtures_of_every_schema_version_parse() {
    for entry in std::fs::read_dir("testdata/events").unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("plate_read_v")
        {
            let text = std::fs::read_to_string(&path).unwrap();
            let r: PlateRead =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let back: PlateRead =
                serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            assert_eq!(r, back);
            assert_eq!(r.schema, 1);
        }
    }
}

#[test]
fn read_command_finds_the_plates_in_still_frames() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lotsense"))
        .args([
            "read",
            "--json",
            "--formats",
            "ro",
            "testdata/anpr/ro/b68spk.jpg",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["plates"][0]["plate"], "B68SPK");
    let b = v[0]["plates"][0]["box"].as_array().unwrap();
    assert!(
        b[0].as_f64().unwrap() > 550.0 && b[2].as_f64().unwrap() < 880.0,
        "box {b:?}"
    );
}
