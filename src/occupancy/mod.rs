//! Bay occupancy from overview (ceiling) cameras, and the boards.
//!
//! ```text
//!  ingest FrameSlot (per overview camera, newest wins)
//!      │ Frame
//!      ▼
//!  pipeline thread per camera:  sampler (rate, frozen) → warp (bay → 64x32 patch) →
//!                               classifier (one batched ONNX call) → tracker (hysteresis)
//!      │ Vec<BayUpdate> (a sample's changes)   bounded channel (256), the pipeline waits
//!      ▼
//!  publisher task: Board (counts, sign offsets) → retained MQTT (rate-limited, again
//!                  after every reconnect, Home Assistant discovery) · snapshot (watch)
//!                  for HTTP · broadcast of every BayUpdate for the parking core
//! ```
//!
//! Modules: [`warp`], [`classifier`], [`sampler`],
//! [`tracker`], [`pipeline`], [`board`], [`publisher`], [`http`] (`/api/displays`),
//! [`preview`] (`lotsense bays preview`), [`eval`] (`lotsense eval occupancy`),
//! [`bench`] (`lotsense bench occupancy`).

pub mod bench;
pub mod board;
pub mod classifier;
pub mod displays;
pub mod eval;
pub mod pipeline;
pub mod preview;
pub mod publisher;
pub mod sampler;
pub mod tracker;
pub mod warp;

pub use board::{Board, Counts, OccupancySnapshot};
pub use classifier::{Classifier, OnnxBayClassifier};

use crate::config::{CameraRole, Config};
use crate::core::hysteresis::{BayState, HysteresisConfig};
use crate::events::BayUpdate;
use crate::ingest::{CameraEvent, FrameSlot};
use crate::metrics::Metrics;
use crate::mqtt::MqttHandle;
use pipeline::{CameraLink, CameraPipeline, PreparedBay};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// Errors of the occupancy runtime.
#[derive(Debug, thiserror::Error)]
pub enum OccupancyError {
    #[error(transparent)]
    Onnx(#[from] crate::onnx::OnnxError),
    #[error("bay classifier: {0}")]
    Model(String),
}

/// Counters of the occupancy runtime (served in `/api/displays`).
#[derive(Debug, Default)]
pub struct OccupancyStats {
    /// Frames classified.
    pub samples: AtomicU64,
    pub bays_classified: AtomicU64,
    /// Frames not sampled (rate limiting).
    pub skipped: AtomicU64,
    /// Classifier calls that failed.
    pub failures: AtomicU64,
    /// Times a camera went offline / froze.
    pub offline_events: AtomicU64,
    pub frozen_events: AtomicU64,
    /// Board messages published / not published.
    pub publications: AtomicU64,
    pub publish_failures: AtomicU64,
    /// Duration of the last warp + classify of one frame, microseconds.
    pub last_batch_us: AtomicU64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatsView {
    pub samples: u64,
    pub bays_classified: u64,
    pub skipped: u64,
    pub failures: u64,
    pub offline_events: u64,
    pub frozen_events: u64,
    pub publications: u64,
    pub publish_failures: u64,
    pub last_batch_ms: f64,
}

impl OccupancyStats {
    pub fn view(&self) -> StatsView {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsView {
            samples: g(&self.samples),
            bays_classified: g(&self.bays_classified),
            skipped: g(&self.skipped),
            failures: g(&self.failures),
            offline_events: g(&self.offline_events),
            frozen_events: g(&self.frozen_events),
            publications: g(&self.publications),
            publish_failures: g(&self.publish_failures),
            last_batch_ms: g(&self.last_batch_us) as f64 / 1000.0,
        }
    }
}

/// Handle to the running occupancy runtime: the current figures, the stream
/// of bay changes, and the camera-status input.
#[derive(Clone)]
pub struct OccupancyHandle {
    snapshot: watch::Receiver<OccupancySnapshot>,
    updates: broadcast::Sender<BayUpdate>,
    links: Arc<HashMap<String, Arc<CameraLink>>>,
    input: mpsc::Sender<Vec<BayUpdate>>,
    overrides: mpsc::Sender<(String, Option<BayState>)>,
    pub stats: Arc<OccupancyStats>,
    /// Whether the classifier loaded (false: every bay stays unknown).
    pub classifier_ok: bool,
}

impl OccupancyHandle {
    /// The figures the boards show now (for `/api/availability` and `/api/displays`).
    pub fn snapshot(&self) -> OccupancySnapshot {
        self.snapshot.borrow().clone()
    }

    /// Waits for the next snapshot change.
    pub fn watch(&self) -> watch::Receiver<OccupancySnapshot> {
        self.snapshot.clone()
    }

    /// Every bay change (after hysteresis), for the parking core. A receiver
    /// that falls more than 1024 updates behind loses the oldest (`Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<BayUpdate> {
        self.updates.subscribe()
    }

    /// Feeds a bay state from elsewhere (e.g. a bay sensor reported through
    /// the API) into the same boards. Waits when the channel is full.
    pub async fn submit(&self, update: BayUpdate) -> bool {
        self.input.send(vec![update]).await.is_ok()
    }

    /// A staff override of one bay (`None` clears it): the boards show it
    /// instead of what the cameras see until it is cleared.
    pub async fn set_override(&self, space: &str, state: Option<BayState>) {
        let _ = self.overrides.send((space.to_string(), state)).await;
    }

    /// Feed from the camera-status task: offline/finished makes that camera's bays unknown.
    pub fn on_camera_event(&self, ev: &CameraEvent) {
        if let CameraEvent::Offline { camera, .. } | CameraEvent::Finished { camera } = ev {
            if let Some(l) = self.links.get(camera) {
                l.mark_offline();
            }
        }
    }
}

/// Hysteresis settings from `[occupancy]`.
pub fn hysteresis_config(c: &crate::config::OccupancyConfig) -> HysteresisConfig {
    HysteresisConfig {
        high: c.high,
        low: c.low,
        required_samples: c.required_samples,
        sample_timeout_secs: c.sample_timeout_secs,
    }
}

/// Starts a pipeline thread per overview camera with bays and the board
/// publisher. `None` when the site has no bays. A classifier that cannot be
/// loaded is logged as an error and leaves every bay `unknown` (the gates keep
/// working); the boards say so rather than show nothing.
pub fn start(
    config: &Config,
    slots: &[(String, Arc<FrameSlot>)],
    mqtt: MqttHandle,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Option<OccupancyHandle>> {
    if config.bays.is_empty() {
        return Ok(None);
    }
    let occ = &config.occupancy;
    let stats = Arc::new(OccupancyStats::default());
    let (tx, rx) = mpsc::channel::<Vec<BayUpdate>>(256);
    let (override_tx, override_rx) = mpsc::channel(64);
    let board = Board::new(&config.spaces, &occ.sign_offsets);
    let (snap_tx, snap_rx) = watch::channel(board.snapshot());
    let (updates_tx, _) = broadcast::channel(1024);
    let classifier: Option<Arc<dyn Classifier>> = match OnnxBayClassifier::load(
        &occ.model,
        config.onnxruntime.library.as_deref(),
    ) {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            tracing::error!(error = %e, "bay classifier not available: every bay stays unknown");
            None
        }
    };
    let mut links = HashMap::new();
    for (camera, slot) in slots {
        let Some(cam) = config.camera(camera) else {
            continue;
        };
        if cam.role != CameraRole::Overview {
            continue;
        }
        let bays: Vec<PreparedBay> = config
            .bays
            .iter()
            .filter(|b| &b.camera == camera)
            .filter_map(|b| match warp::BayQuad::from_polygon(&b.polygon) {
                Some(quad) => Some(PreparedBay { space: b.space.clone(), quad }),
                None => {
                    tracing::error!(camera = %camera, space = %b.space, "degenerate bay polygon skipped");
                    None
                }
            })
            .collect();
        if bays.is_empty() {
            continue;
        }
        let link = Arc::new(CameraLink::default());
        links.insert(camera.clone(), link.clone());
        let Some(classifier) = classifier.clone() else {
            continue;
        };
        let spaces: Vec<String> = bays.iter().map(|b| b.space.clone()).collect();
        let p = CameraPipeline {
            camera: camera.clone(),
            tracker: tracker::BayTracker::new(camera, &spaces, hysteresis_config(occ))?,
            bays,
            classifier,
            sampler: sampler::Sampler::new(occ.sample_rate, occ.frozen_secs),
            slot: slot.clone(),
            link,
            out: tx.clone(),
            stats: stats.clone(),
            metrics: metrics.clone(),
            stop: stop.clone(),
        };
        std::thread::Builder::new()
            .name(format!("occ-{camera}"))
            .spawn(move || p.run())?;
    }
    let settings = publisher::PublishSettings {
        interval: Duration::from_millis(occ.publish_interval_ms),
        discovery_prefix: occ.home_assistant.then(|| occ.discovery_prefix.clone()),
        site: config.site.name.clone(),
    };
    let classifier_ok = classifier.is_some();
    tokio::spawn(publisher::run(
        rx,
        override_rx,
        board,
        publisher::Outputs {
            mqtt,
            settings,
            snapshot: snap_tx,
            updates: updates_tx.clone(),
            stats: stats.clone(),
            metrics,
        },
    ));
    Ok(Some(OccupancyHandle {
        snapshot: snap_rx,
        updates: updates_tx,
        links: Arc::new(links),
        input: tx,
        overrides: override_tx,
        stats,
        classifier_ok,
    }))
}
