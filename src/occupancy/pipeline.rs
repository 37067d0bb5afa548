//! One overview camera's pipeline, on its own thread:
//!
//! ```text
//! FrameSlot ─Frame─► Sampler ─Frame─► warp (PatchBatch) ─► Classifier (one call) ─Vec<f32>─► BayTracker ─Vec<BayUpdate>─► channel
//!  (newest wins)     (rate, frozen)                                                        (hysteresis)  (one per sample) (bounded, waits)
//! ```
//!
//! Camera status comes from [`CameraLink`] (set from the ingest's
//! `CameraEvent`s): `Offline`/`Finished` make every bay `unknown` at once, and
//! frames captured before that moment are discarded so a stale buffered frame
//! cannot count towards recovery.

use super::classifier::Classifier;
use super::sampler::{Decision, Sampler};
use super::tracker::BayTracker;
use super::warp::{BayQuad, PatchBatch};
use super::OccupancyStats;
use crate::events::BayUpdate;
use crate::ingest::{Frame, FrameSlot};
use crate::metrics::{CameraLabel, Metrics};
use crate::vision::image::ImageView;
use chrono::Utc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Status of one camera as reported by ingest, shared with its pipeline.
#[derive(Debug, Default)]
pub struct CameraLink {
    /// Incremented on every `Offline`/`Finished` event.
    offline_gen: AtomicU64,
    /// When the last one happened (ms since the epoch).
    offline_at_ms: AtomicI64,
}

impl CameraLink {
    pub fn mark_offline(&self) {
        self.offline_at_ms
            .store(Utc::now().timestamp_millis(), Ordering::SeqCst);
        self.offline_gen.fetch_add(1, Ordering::SeqCst);
    }
    pub fn generation(&self) -> u64 {
        self.offline_gen.load(Ordering::SeqCst)
    }
    fn offline_at_ms(&self) -> i64 {
        self.offline_at_ms.load(Ordering::SeqCst)
    }
}

/// A camera's bays, ready to warp.
#[derive(Debug, Clone)]
pub struct PreparedBay {
    pub space: String,
    pub quad: BayQuad,
}

pub struct CameraPipeline {
    pub camera: String,
    pub bays: Vec<PreparedBay>,
    pub classifier: Arc<dyn Classifier>,
    pub tracker: BayTracker,
    pub sampler: Sampler,
    pub slot: Arc<FrameSlot>,
    pub link: Arc<CameraLink>,
    /// The changes of one sample travel together, so a board never shows half a sample.
    pub out: mpsc::Sender<Vec<BayUpdate>>,
    pub stats: Arc<OccupancyStats>,
    pub metrics: Arc<Metrics>,
    pub stop: Arc<AtomicBool>,
}

impl CameraPipeline {
    /// Runs until `stop` is set or the camera closes its slot for good. Blocking.
    pub fn run(mut self) {
        let label = CameraLabel::new(&self.camera);
        let mut seen_gen = self.link.generation();
        let mut batch = PatchBatch::with_capacity(self.bays.len());
        let mut checked_size = None;
        let mut was_frozen = false;
        tracing::info!(camera = %self.camera, bays = self.bays.len(), "occupancy pipeline started");
        while !self.stop.load(Ordering::Relaxed) {
            let gen = self.link.generation();
            if gen != seen_gen {
                seen_gen = gen;
                self.stats.offline_events.fetch_add(1, Ordering::Relaxed);
                self.metrics.bay_camera_unknown.get_or_create(&label).inc();
                let updates = self.tracker.mark_offline(Utc::now());
                tracing::info!(camera = %self.camera, bays = updates.len(), "camera offline: its bays are unknown");
                self.sampler.reset();
                was_frozen = false;
                if !self.emit(updates) {
                    break;
                }
            }
            let Some(frame) = self.slot.take(Duration::from_millis(200)) else {
                if self.slot.is_closed() {
                    let updates = self.tracker.mark_offline(Utc::now());
                    self.emit(updates);
                    break;
                }
                let updates = self.tracker.check_timeouts(Utc::now());
                if !self.emit(updates) {
                    break;
                }
                continue;
            };
            if frame.captured_at.timestamp_millis() <= self.link.offline_at_ms() {
                continue; // buffered before the camera went offline
            }
            let updates = match self.sampler.offer(&frame) {
                Decision::Skip => {
                    self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                    self.metrics.frames_skipped.get_or_create(&label).inc();
                    continue;
                }
                Decision::Frozen => {
                    if !was_frozen {
                        was_frozen = true;
                        self.stats.frozen_events.fetch_add(1, Ordering::Relaxed);
                        self.metrics.bay_camera_unknown.get_or_create(&label).inc();
                        tracing::warn!(camera = %self.camera, "camera picture frozen: its bays are unknown until it changes");
                    }
                    self.tracker.mark_offline(frame.captured_at)
                }
                Decision::Sample => {
                    if was_frozen {
                        was_frozen = false;
                        tracing::info!(camera = %self.camera, "camera picture moving again");
                    }
                    if checked_size != Some((frame.width, frame.height)) {
                        checked_size = Some((frame.width, frame.height));
                        self.check_bays_inside(&frame);
                    }
                    match self.classify(&frame, &mut batch) {
                        Ok(probs) => {
                            self.metrics.frames_processed.get_or_create(&label).inc();
                            self.tracker.apply(&probs, frame.captured_at)
                        }
                        Err(e) => {
                            self.stats.failures.fetch_add(1, Ordering::Relaxed);
                            self.metrics
                                .bay_classify_failures
                                .get_or_create(&label)
                                .inc();
                            tracing::warn!(camera = %self.camera, error = %e, "occupancy sample failed; bays go unknown if this persists");
                            self.tracker.check_timeouts(Utc::now())
                        }
                    }
                }
            };
            if !self.emit(updates) {
                break;
            }
        }
        tracing::info!(camera = %self.camera, "occupancy pipeline stopped");
    }

    /// Warp every bay, then one batched classifier call.
    fn classify(
        &self,
        frame: &Frame,
        batch: &mut PatchBatch,
    ) -> Result<Vec<f32>, super::OccupancyError> {
        let t0 = Instant::now();
        let view = ImageView::new(
            &frame.data,
            frame.width as usize,
            frame.height as usize,
            frame.stride,
        )
        .map_err(|e| super::OccupancyError::Model(format!("bad frame: {e}")))?;
        batch.clear();
        for bay in &self.bays {
            batch.push_warp(&view, &bay.quad);
        }
        let t1 = Instant::now();
        let probs = self.classifier.classify(batch)?;
        let t2 = Instant::now();
        self.stats.samples.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bays_classified
            .fetch_add(self.bays.len() as u64, Ordering::Relaxed);
        self.stats
            .last_batch_us
            .store((t2 - t0).as_micros() as u64, Ordering::Relaxed);
        let label = CameraLabel::new(&self.camera);
        self.metrics.bay_samples.get_or_create(&label).inc();
        self.metrics
            .bay_batch_seconds
            .get_or_create(&label)
            .set((t2 - t0).as_secs_f64());
        tracing::debug!(camera = %self.camera, bays = self.bays.len(), warp_ms = (t1 - t0).as_secs_f32() * 1e3, classify_ms = (t2 - t1).as_secs_f32() * 1e3, "occupancy sample");
        Ok(probs)
    }

    fn check_bays_inside(&self, frame: &Frame) {
        let (w, h) = (frame.width as f32, frame.height as f32);
        for bay in &self.bays {
            let b = bay.quad.bbox();
            if b[0] < -2.0 || b[1] < -2.0 || b[2] > w + 2.0 || b[3] > h + 2.0 {
                tracing::warn!(camera = %self.camera, space = %bay.space, frame = %format!("{}x{}", frame.width, frame.height), "bay polygon lies outside the frame; check it with `lotsense bays preview`");
            }
        }
    }

    /// Sends the changes of one sample; false when the receiver is gone (shutdown).
    fn emit(&self, updates: Vec<BayUpdate>) -> bool {
        if updates.is_empty() {
            return true;
        }
        for u in &updates {
            tracing::debug!(camera = %self.camera, space = %u.space_id, state = %u.state, p = ?u.probability, "bay changed");
        }
        self.out.blocking_send(updates).is_ok()
    }
}
