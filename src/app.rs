//! The wiring: the one place where adapters meet. `serve` starts storage, the
//! MQTT broker/client, the HTTP server and one ingest thread per camera, and
//! connects them with bounded channels.
//!
//! Channel policies:
//! - camera → vision: a one-frame slot per camera, newest wins, drops counted;
//! - camera status events: bounded (64), the camera thread waits (rare events);
//! - plate reads and core commands: bounded, senders wait, never dropped.

use crate::config::Config;
use crate::ingest::{self, CameraEvent, CameraSource, FrameSlot};
use crate::metrics::Metrics;
use crate::mqtt::{self, ClientSettings, EmbeddedBroker, MqttHandle, Topics};
use crate::store::Store;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A running lotsense: handles to what was started, for the caller to print
/// addresses, to wait on, or (in tests) to stop.
pub struct Running {
    pub http_addr: SocketAddr,
    pub mqtt_addr: (String, u16),
    pub mqtt: MqttHandle,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub camera_slots: Vec<(String, Arc<FrameSlot>)>,
    stop: Arc<AtomicBool>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    camera_threads: Vec<std::thread::JoinHandle<()>>,
    http_task: tokio::task::JoinHandle<()>,
}

/// Starts everything the config describes.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let metrics = Arc::new(Metrics::new());
    std::fs::create_dir_all(&config.storage.data_dir)
        .with_context(|| format!("cannot create data folder {}", config.storage.data_dir.display()))?;
    let store = Store::open(&config.storage.url, config.storage.max_connections).await?;
    tracing::info!(backend = ?store.backend(), "storage ready");

    // MQTT: the configured broker, or our own.
    let (host, port) = match &config.mqtt.url {
        Some(u) => mqtt::parse_broker_url(u)?,
        None => {
            let addr: SocketAddr = config.mqtt.listen.parse().context("[mqtt] listen")?;
            let b = EmbeddedBroker::start(addr)?;
            (b.addr.ip().to_string(), b.addr.port())
        }
    };
    let topics = Topics::new(&config.mqtt.topic_prefix, &config.site.name);
    let client_id = config.mqtt.client_id.clone().unwrap_or_else(|| format!("lotsense-{}", config.site.name));
    let mqtt = mqtt::connect(
        ClientSettings { host: host.clone(), port, client_id, keep_alive: Duration::from_secs(config.mqtt.keep_alive_secs), topics: topics.clone() },
        metrics.clone(),
    );
    if !mqtt.wait_connected(Duration::from_secs(5)).await {
        tracing::warn!(%host, port, "MQTT broker not reachable yet; retrying in the background");
    }

    // Cameras.
    ingest::init_gstreamer()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (ev_tx, ev_rx) = mpsc::channel::<CameraEvent>(64);
    let mut camera_threads = Vec::new();
    let mut camera_slots = Vec::new();
    for cam in config.cameras.iter().filter(|c| c.enabled) {
        let source = CameraSource::from_url(&cam.id, &cam.url, cam.realtime, cam.r#loop)?;
        let slot = FrameSlot::new();
        let spec = ingest::pipeline::CameraSpec::new(&cam.id, source, cam.fps);
        let (slot2, tx, m, st) = (slot.clone(), ev_tx.clone(), metrics.clone(), stop.clone());
        camera_threads.push(
            std::thread::Builder::new()
                .name(format!("cam-{}", cam.id))
                .spawn(move || ingest::run_camera(spec, slot2, tx, m, st))
                .context("spawning a camera thread")?,
        );
        camera_slots.push((cam.id.clone(), slot));
        tracing::info!(camera = %cam.id, role = ?cam.role, "camera started");
    }
    drop(ev_tx);
    tokio::spawn(camera_status_task(ev_rx, mqtt.clone(), store.clone()));

    // HTTP.
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let state = crate::http::AppState { metrics: metrics.clone(), store: store.clone(), site: config.site.name.clone() };
    let (http_addr, http_task) = crate::http::serve(&config.http.listen, crate::http::router(state), async move {
        let _ = shutdown_rx.wait_for(|v| *v).await;
    })
    .await?;
    tracing::info!(%http_addr, "http listening");

    Ok(Running { http_addr, mqtt_addr: (host, port), mqtt, store, metrics, camera_slots, stop, shutdown_tx, camera_threads, http_task })
}

/// Publishes camera status (retained) and records it.
async fn camera_status_task(mut rx: mpsc::Receiver<CameraEvent>, mqtt: MqttHandle, store: Store) {
    while let Some(ev) = rx.recv().await {
        let (camera, status, reason) = match &ev {
            CameraEvent::Online { camera } => (camera.clone(), "online", None),
            CameraEvent::Offline { camera, reason } => (camera.clone(), "offline", Some(reason.clone())),
            CameraEvent::Finished { camera } => (camera.clone(), "finished", None),
        };
        let payload = serde_json::json!({ "status": status, "reason": reason, "at": crate::store::now_text() });
        if let Err(e) = mqtt.publish(mqtt.topics.camera_status(&camera), payload.to_string(), true).await {
            tracing::warn!(%camera, error = %e, "camera status not published");
        }
        if let Err(e) = store.camera_event(&camera, status, reason.as_deref()).await {
            tracing::warn!(%camera, error = %e, "camera status not stored");
        }
    }
}

impl Running {
    /// Stops cameras and HTTP, marks lotsense offline, closes the store.
    pub async fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.shutdown_tx.send(true);
        for t in self.camera_threads {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let _ = self.http_task.await;
        self.mqtt.shutdown().await;
        self.store.close().await;
    }
}
