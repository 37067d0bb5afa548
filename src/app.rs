//! The wiring: the one place where adapters meet. `serve` starts storage, the
//! MQTT broker/client, the HTTP server and one ingest thread per camera, and
//! connects them with bounded channels.
//!
//! Channel policies:
//! - camera → vision: a one-frame slot per camera, newest wins, drops counted;
//! - camera status events: bounded (64), the camera thread waits (rare events);
//! - plate reads and core commands: bounded, senders wait, never dropped.
//! - bay updates (occupancy): one batch per sample, bounded (256), the
//!   camera's occupancy thread waits; see `occupancy` for the board publisher.

use crate::anpr::evidence::EvidenceStore;
use crate::anpr::live::{GateCamera, LivePipeline, MotionGate};
use crate::anpr::track::TrackerConfig;
use crate::anpr::{EngineSettings, PlateEngine};
use crate::config::{CameraRole, Config};
use crate::core::BayState;
use crate::events::{PlateRead, Role};
use crate::ingest::{self, CameraEvent, CameraSource, FrameSlot};
use crate::metrics::Metrics;
use crate::mqtt::{self, ClientSettings, EmbeddedBroker, MqttHandle, Topics};
use crate::onnx::OnnxRuntime;
use crate::service::SpaceStatusChange;
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
    /// Bay occupancy (`None` when the site has no bays).
    pub occupancy: Option<crate::occupancy::OccupancyHandle>,
    /// The parking services (entries, exits, payments, reservations, flags).
    pub parking: crate::service::ParkingService,
    /// Input for decided plate reads (the same path camera reads take:
    /// stored, published, then decided by the parking core). Bounded; senders wait.
    pub plate_tx: mpsc::Sender<PlateRead>,
    stop: Arc<AtomicBool>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    camera_threads: Vec<std::thread::JoinHandle<()>>,
    http_task: tokio::task::JoinHandle<()>,
    anpr: Option<LivePipeline>,
}

/// Starts everything the config describes.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let metrics = Arc::new(Metrics::new());
    std::fs::create_dir_all(&config.storage.data_dir).with_context(|| {
        format!(
            "cannot create data folder {}",
            config.storage.data_dir.display()
        )
    })?;
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
    let client_id = config
        .mqtt
        .client_id
        .clone()
        .unwrap_or_else(|| format!("lotsense-{}", config.site.name));
    let mqtt = mqtt::connect(
        ClientSettings {
            host: host.clone(),
            port,
            client_id,
            keep_alive: Duration::from_secs(config.mqtt.keep_alive_secs),
            topics: topics.clone(),
        },
        metrics.clone(),
    );
    if !mqtt.wait_connected(Duration::from_secs(5)).await {
        tracing::warn!(%host, port, "MQTT broker not reachable yet; retrying in the background");
    }

    // Parking core: services over the store, seeded from the config; gate commands over MQTT.
    let settings = crate::service::Settings::from_config(&config);
    let gate_port = crate::mqtt::gates::MqttGates::port(
        mqtt.clone(),
        settings
            .gates
            .iter()
            .map(|(gate, _)| gate.clone())
            .collect(),
        settings.discovery.clone(),
    );
    let parking =
        crate::service::ParkingService::new(store.clone(), settings, Some(gate_port)).await?;
    parking
        .seed(&config)
        .await
        .context("seeding spaces, permits and lists")?;
    for k in &config.api_keys {
        crate::http::api::auth::store_key(
            &store,
            &k.name,
            k.role,
            &k.hash,
            k.rate_per_minute,
            "config",
        )
        .await
        .context("storing [[api_keys]]")?;
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
    // Overview cameras → bay occupancy → boards (retained MQTT, /api/displays).
    let occupancy = crate::occupancy::start(
        &config,
        &camera_slots,
        mqtt.clone(),
        metrics.clone(),
        stop.clone(),
    )?;
    tokio::spawn(camera_status_task(
        ev_rx,
        mqtt.clone(),
        store.clone(),
        occupancy.clone(),
    ));
    if let Some(o) = &occupancy {
        // Staff overrides outlive restarts: the boards start with them.
        for (space, state) in parking.overrides().await.context("reading bay overrides")? {
            o.set_override(&space, Some(state)).await;
        }
        tokio::spawn(bay_states_task(o.clone(), parking.clone()));
    }

    // Gate cameras → plate pipeline → plate events (stored, published, handed to the core).
    let (plate_tx, plate_rx) = mpsc::channel::<PlateRead>(256);
    let plate_input = plate_tx.clone();
    let anpr = start_anpr(&config, &camera_slots, plate_tx, metrics.clone())?;
    // Consumers of decided plate reads besides MQTT and the store (the parking core).
    let (core_tx, core_rx) = mpsc::channel::<PlateRead>(256);
    let plate_consumers: Vec<mpsc::Sender<PlateRead>> = vec![core_tx];
    tokio::spawn(parking_reads_task(core_rx, parking.clone()));
    tokio::spawn(plate_events_task(
        plate_rx,
        mqtt.clone(),
        store.clone(),
        plate_consumers,
    ));

    // HTTP.
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let state = crate::http::AppState {
        metrics: metrics.clone(),
        store: store.clone(),
        site: config.site.name.clone(),
        occupancy: occupancy.clone(),
        parking: Some(parking.clone()),
    };
    parking.spawn_background(shutdown_rx.clone());
    let (http_addr, http_task) = crate::http::serve(
        &config.http.listen,
        crate::http::router(state),
        async move {
            let _ = shutdown_rx.wait_for(|v| *v).await;
        },
    )
    .await?;
    tracing::info!(%http_addr, "http listening");

    Ok(Running {
        http_addr,
        mqtt_addr: (host, port),
        mqtt,
        store,
        metrics,
        camera_slots,
        occupancy,
        parking,
        plate_tx: plate_input,
        stop,
        shutdown_tx,
        camera_threads,
        http_task,
        anpr,
    })
}

/// Loads the plate engine and starts the live pipeline when there are gate
/// cameras. Evidence past retention is cleaned now and hourly.
fn start_anpr(
    config: &Config,
    slots: &[(String, Arc<FrameSlot>)],
    out: mpsc::Sender<PlateRead>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Option<LivePipeline>> {
    let mut cams = Vec::new();
    for (id, slot) in slots {
        let Some(c) = config.camera(id) else { continue };
        let role = match c.role {
            CameraRole::Entry => Role::Entry,
            CameraRole::Exit => Role::Exit,
            CameraRole::Overview => continue,
        };
        // The motion gate is on by default for gate cameras.
        let m = c.motion.clone().unwrap_or_default();
        let motion = m.enabled.then(|| MotionGate {
            threshold: m.threshold,
            zone: m.zone.clone(),
        });
        cams.push(GateCamera {
            id: id.clone(),
            role,
            gate: c.gate.clone(),
            lane: c.lane.clone(),
            slot: slot.clone(),
            motion,
            roi: c.roi,
            approaching: c.approach_direction(),
        });
    }
    if cams.is_empty() {
        return Ok(None);
    }
    let rt = OnnxRuntime::load(config.onnxruntime.library.as_deref())?;
    // One engine serves all cameras; each camera's ROI is applied per frame.
    let settings = EngineSettings::from_lpr(&config.lpr)?;
    let engine = Arc::new(
        PlateEngine::load(&rt, &config.models.dir, settings).context("loading the plate models")?,
    );
    let tracker = TrackerConfig {
        max_decision_delay_ms: config.lpr.max_decision_delay_ms,
        reannounce_gap_ms: config.lpr.reannounce_gap_secs * 1000,
        ..TrackerConfig::default()
    };
    let evidence = Arc::new(EvidenceStore::new(
        &config.storage.data_dir,
        config.evidence.retention_days,
    ));
    let cleaner = evidence.clone();
    tokio::spawn(async move {
        loop {
            let c = cleaner.clone();
            let _ = tokio::task::spawn_blocking(move || c.clean(chrono::Utc::now())).await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    tracing::info!(cameras = cams.len(), detector = %engine.detector.name, reader = %engine.reader.name, "plate pipeline started");
    let known = Arc::new(crate::anpr::known::KnownPlates::new(
        &config.lpr.known_plates,
        config.lpr.match_distance,
    ));
    let reads = crate::anpr::live::ReadSetup {
        tracker,
        evidence,
        known,
        out,
    };
    Ok(Some(LivePipeline::start(engine, cams, reads, metrics)?))
}

/// Camera bay states feed the parking core like a sensor report: the space's
/// sensor state is recorded and an occupied bay with no session is flagged.
/// `unknown` (camera down) changes nothing in the core. If this task falls
/// behind the broadcast, it re-applies the whole current snapshot.
async fn bay_states_task(
    occupancy: crate::occupancy::OccupancyHandle,
    parking: crate::service::ParkingService,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut rx = occupancy.subscribe();
    let apply = |space: String, occupied: bool, camera: String| {
        let parking = parking.clone();
        async move {
            let state = if occupied {
                BayState::Occupied
            } else {
                BayState::Free
            };
            if let Err(e) = parking
                .set_space_status(
                    &space,
                    SpaceStatusChange::Sensor(state),
                    &format!("camera:{camera}"),
                    Some("bay classifier"),
                )
                .await
            {
                tracing::warn!(%space, error = %e, "bay state not applied to the parking core");
            }
        }
    };
    loop {
        match rx.recv().await {
            Ok(u) => match u.state.as_str() {
                "occupied" | "free" => apply(u.space_id, u.state == "occupied", u.camera).await,
                _ => {}
            },
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "bay updates lagged; re-applying the current snapshot"
                );
                for (space, state) in occupancy.snapshot().bays {
                    match state {
                        crate::core::BayState::Occupied => {
                            apply(space, true, "snapshot".into()).await
                        }
                        crate::core::BayState::Free => apply(space, false, "snapshot".into()).await,
                        crate::core::BayState::Unknown => {}
                    }
                }
            }
            Err(RecvError::Closed) => break,
        }
    }
}

/// Stores, publishes (not retained) and forwards each decided plate read, in
/// order. Nothing is dropped: each consumer's bounded channel is awaited.
async fn plate_events_task(
    mut rx: mpsc::Receiver<PlateRead>,
    mqtt: MqttHandle,
    store: Store,
    consumers: Vec<mpsc::Sender<PlateRead>>,
) {
    while let Some(read) = rx.recv().await {
        let json = serde_json::to_string(&read).expect("PlateRead serialises");
        if let Err(e) = store.plate_read(&read, &json).await {
            tracing::error!(plate = %read.plate, error = %e, "plate read not stored");
        }
        if let Err(e) = mqtt.publish(mqtt.topics.plates(), json, false).await {
            tracing::warn!(plate = %read.plate, error = %e, "plate read not published");
        }
        for c in &consumers {
            if c.send(read.clone()).await.is_err() {
                tracing::error!(plate = %read.plate, "plate read consumer closed");
            }
        }
    }
}

/// Hands decided plate reads to the parking core, one at a time, in order.
async fn parking_reads_task(
    mut rx: mpsc::Receiver<PlateRead>,
    parking: crate::service::ParkingService,
) {
    while let Some(read) = rx.recv().await {
        if let Err(e) = parking.on_plate_read(read.clone()).await {
            tracing::error!(plate = %read.plate, read = %read.id, error = %e, "plate read not decided");
        }
    }
}

/// Publishes camera status (retained) and records it.
async fn camera_status_task(
    mut rx: mpsc::Receiver<CameraEvent>,
    mqtt: MqttHandle,
    store: Store,
    occupancy: Option<crate::occupancy::OccupancyHandle>,
) {
    while let Some(ev) = rx.recv().await {
        if let Some(o) = &occupancy {
            o.on_camera_event(&ev);
        }
        let (camera, status, reason) = match &ev {
            CameraEvent::Online { camera } => (camera.clone(), "online", None),
            CameraEvent::Offline { camera, reason } => {
                (camera.clone(), "offline", Some(reason.clone()))
            }
            CameraEvent::Finished { camera } => (camera.clone(), "finished", None),
        };
        let payload = serde_json::json!({ "status": status, "reason": reason, "at": crate::store::now_text() });
        if let Err(e) = mqtt
            .publish(
                mqtt.topics.camera_status(&camera),
                payload.to_string(),
                true,
            )
            .await
        {
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
        if let Some(p) = self.anpr {
            let _ = tokio::task::spawn_blocking(move || p.stop()).await;
        }
        for t in self.camera_threads {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let _ = self.http_task.await;
        self.mqtt.shutdown().await;
        self.store.close().await;
    }
}
