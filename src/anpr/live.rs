//! The live plate pipeline for gate cameras.
//!
//! ```text
//! FrameSlot per camera ──► detect thread ──(bounded 2, waits)──► read thread ──(bounded, waits)──► PlateRead events
//!   newest frame wins        round-robin over cameras,              crops + reader, format rules,
//!   (drops counted)          motion gate, text detector             tracker + fusion, evidence
//! ```
//!
//! Detection and reading run on separate threads so both cores work; the
//! detect thread visits cameras in turn and always takes a camera's newest
//! frame, so a frame never waits behind another camera's backlog. Decided
//! reads are never dropped: the read thread waits when the consumer is behind.

use super::engine::{PlateEngine, StageTimes};
use super::evidence::EvidenceStore;
use crate::anpr::track::{FusedRead, Motion, PlateObservation, Tracker, TrackerConfig};
use crate::config::TravelDirection;
use crate::events::{Candidate, Evidence, Models, PlateRead, Role, PLATE_READ_SCHEMA};
use crate::ingest::{Frame, FrameSlot};
use crate::metrics::{CameraLabel, Metrics};
use crate::vision::dbnet::TextBox;
use crate::vision::image::{ImageView, RgbImage};
use crate::vision::motion::{downscale_grey, frame_motion, GreyFrame, ZoneMask};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

/// One gate camera as the pipeline sees it.
#[derive(Clone)]
pub struct GateCamera {
    pub id: String,
    pub role: Role,
    pub gate: Option<String>,
    pub lane: Option<String>,
    pub slot: Arc<FrameSlot>,
    pub motion: Option<MotionGate>,
    /// Look for plates only here (`[x, y, w, h]`, frame pixels).
    pub roi: Option<[u32; 4]>,
    /// Where a car approaching this camera is going.
    pub approaching: TravelDirection,
}

/// Motion gate settings for one camera.
#[derive(Debug, Clone)]
pub struct MotionGate {
    /// Fraction of changed pixels that counts as motion.
    pub threshold: f32,
    /// Zone polygon in frame pixels.
    pub zone: Option<Vec<[f32; 2]>>,
}

/// The grey copy the motion gate compares.
const GREY_W: usize = 160;
const GREY_H: usize = 90;
/// Per-pixel grey difference that counts as a change.
const PIXEL_DELTA: u8 = 18;

struct DetJob {
    cam: usize,
    frame: Frame,
    boxes: Vec<TextBox>,
    /// The boxes came from the proposals' regions: an unconfident read of
    /// them sends the frame to the whole-frame search (on the reader thread,
    /// so detection goes on with the next frames).
    from_regions: bool,
    times: StageTimes,
}

/// What the read stage needs besides the engine and the cameras.
pub struct ReadSetup {
    pub tracker: TrackerConfig,
    /// Where the crops and frames of decided reads are kept.
    pub evidence: Arc<EvidenceStore>,
    /// Plates a read may be corrected to (`[lpr] known_plates`).
    pub known: Arc<super::known::KnownPlates>,
    /// Decided reads, to the parking core.
    pub out: tokio::sync::mpsc::Sender<PlateRead>,
}

/// Handle to the running threads.
pub struct LivePipeline {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl LivePipeline {
    /// Starts the detect and read threads. Decided reads go to `reads.out`.
    pub fn start(
        engine: Arc<PlateEngine>,
        cameras: Vec<GateCamera>,
        reads: ReadSetup,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        // Two jobs in flight: the reader always has the next frame ready, and
        // the detector waits (rather than queueing stale work) when it is ahead.
        let (tx, rx) = sync_channel::<DetJob>(2);
        let cams = Arc::new(cameras);
        let mut threads = Vec::new();
        {
            let (engine, cams, stop, metrics) =
                (engine.clone(), cams.clone(), stop.clone(), metrics.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("anpr-detect".into())
                    .spawn(move || detect_loop(&engine, &cams, tx, &stop, &metrics))?,
            );
        }
        {
            let stop = stop.clone();
            threads.push(std::thread::Builder::new().name("anpr-read".into()).spawn(
                move || {
                    let mut reader = ReadStage::new(engine, cams, reads, metrics);
                    reader.run(rx, &stop)
                },
            )?);
        }
        Ok(Self { stop, threads })
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn detect_loop(
    engine: &PlateEngine,
    cams: &[GateCamera],
    tx: SyncSender<DetJob>,
    stop: &AtomicBool,
    metrics: &Metrics,
) {
    let mut prev: Vec<Option<GreyFrame>> = vec![None; cams.len()];
    let mut masks: Vec<Option<ZoneMask>> = vec![None; cams.len()];
    let labels: Vec<CameraLabel> = cams.iter().map(|c| CameraLabel::new(&c.id)).collect();
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        for (i, cam) in cams.iter().enumerate() {
            let Some(frame) = cam.slot.take(Duration::ZERO) else {
                continue;
            };
            idle = false;
            let Ok(view) = ImageView::new(
                &frame.data,
                frame.width as usize,
                frame.height as usize,
                frame.stride,
            ) else {
                metrics.camera_failures.get_or_create(&labels[i]).inc();
                continue;
            };
            if let Some(gate) = &cam.motion {
                let Ok(grey) = downscale_grey(&view, GREY_W, GREY_H) else {
                    continue;
                };
                if masks[i].is_none() {
                    masks[i] = gate.zone.as_ref().map(|z| {
                        let pts: Vec<_> = z
                            .iter()
                            .map(|p| crate::vision::geometry::Point::new(p[0], p[1]))
                            .collect();
                        ZoneMask::from_frame_polygon(&pts, view.width, view.height, GREY_W, GREY_H)
                    });
                }
                let moving = match &prev[i] {
                    Some(p) => frame_motion(p, &grey, PIXEL_DELTA, masks[i].as_ref())
                        .map(|f| f >= gate.threshold)
                        .unwrap_or(true),
                    None => true,
                };
                prev[i] = Some(grey);
                if !moving {
                    metrics.frames_skipped.get_or_create(&labels[i]).inc();
                    continue;
                }
            }
            let mut times = StageTimes::default();
            match engine.detect(&view, cam.roi, &mut times) {
                Ok((boxes, from_regions)) => {
                    metrics.frames_processed.get_or_create(&labels[i]).inc();
                    if tx
                        .send(DetJob {
                            cam: i,
                            frame,
                            boxes,
                            from_regions,
                            times,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    metrics.camera_failures.get_or_create(&labels[i]).inc();
                    tracing::warn!(camera = %cam.id, error = %e, "plate detection failed on a frame");
                }
            }
        }
        if idle {
            // Nothing new anywhere: tell the reader time passed (track timeouts).
            if tx
                .send(DetJob {
                    cam: usize::MAX,
                    frame: tick_frame(),
                    boxes: Vec::new(),
                    from_regions: false,
                    times: StageTimes::default(),
                })
                .is_err()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn tick_frame() -> Frame {
    Frame {
        camera: Arc::from(""),
        seq: 0,
        captured_at: chrono::Utc::now(),
        pts_ms: 0,
        width: 0,
        height: 0,
        stride: 0,
        data: Arc::new(Vec::new()),
    }
}

/// A recent hit kept for evidence: the exact crop read and its frame.
struct Seen {
    ts_ms: u64,
    plate: String,
    raw_text: String,
    score: f32,
    bbox: [f32; 4],
    crop: RgbImage,
    frame: Frame,
}

struct ReadStage {
    engine: Arc<PlateEngine>,
    cams: Arc<Vec<GateCamera>>,
    trackers: Vec<Tracker>,
    recent: Vec<VecDeque<Seen>>,
    evidence: Arc<EvidenceStore>,
    out: tokio::sync::mpsc::Sender<PlateRead>,
    metrics: Arc<Metrics>,
    known: Arc<super::known::KnownPlates>,
}

fn epoch_ms(t: chrono::DateTime<chrono::Utc>) -> u64 {
    t.timestamp_millis().max(0) as u64
}

impl ReadStage {
    fn new(
        engine: Arc<PlateEngine>,
        cams: Arc<Vec<GateCamera>>,
        reads: ReadSetup,
        metrics: Arc<Metrics>,
    ) -> Self {
        let ReadSetup {
            tracker: cfg,
            evidence,
            known,
            out,
        } = reads;
        let trackers = cams
            .iter()
            .map(|c| Tracker::new(c.id.clone(), cfg.clone()))
            .collect();
        let recent = cams.iter().map(|_| VecDeque::new()).collect();
        Self {
            engine,
            cams,
            trackers,
            recent,
            evidence,
            out,
            metrics,
            known,
        }
    }

    fn run(&mut self, rx: Receiver<DetJob>, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let job = match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(j) => j,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    self.tick_all(epoch_ms(chrono::Utc::now()));
                    continue;
                }
                Err(_) => break,
            };
            if job.cam == usize::MAX {
                self.tick_all(epoch_ms(job.frame.captured_at));
                continue;
            }
            self.handle(job);
        }
        let now = epoch_ms(chrono::Utc::now());
        for i in 0..self.trackers.len() {
            let decided = self.trackers[i].flush(now);
            self.emit(i, decided);
        }
    }

    fn tick_all(&mut self, now: u64) {
        for i in 0..self.trackers.len() {
            let decided = self.trackers[i].tick(now);
            self.emit(i, decided);
        }
    }

    fn handle(&mut self, job: DetJob) {
        let cam = job.cam;
        let f = &job.frame;
        let Ok(view) = ImageView::new(&f.data, f.width as usize, f.height as usize, f.stride)
        else {
            return;
        };
        let mut times = job.times;
        let roi = self.cams[cam].roi;
        let hits = self
            .engine
            .read_boxes(&view, &job.boxes, &mut times)
            .and_then(|hits| {
                if job.from_regions && self.engine.needs_full_frame(&hits) {
                    self.engine
                        .full_frame(&view, roi, &mut times)
                        .map(|(_, full)| if full.is_empty() { hits } else { full })
                } else {
                    Ok(hits)
                }
            });
        let hits = match hits {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(camera = %self.cams[cam].id, error = %e, "plate reading failed on a frame");
                return;
            }
        };
        let now = epoch_ms(f.captured_at);
        // A gate sees one vehicle at a time: the best-ranked plate of the frame.
        let obs: Vec<PlateObservation> = hits
            .iter()
            .take(1)
            .map(|h| PlateObservation {
                bbox: h.bbox,
                read: h.read.clone(),
                score: (h.read.mean_conf() * h.det_score.max(0.5)).clamp(0.0, 1.0),
                format_matched: h.format_matched,
            })
            .collect();
        if let Some(h) = hits.first() {
            let ring = &mut self.recent[cam];
            ring.push_back(Seen {
                ts_ms: now,
                plate: h.plate.clone(),
                raw_text: h.raw_text.clone(),
                score: h.read.mean_conf(),
                bbox: [h.bbox.x1, h.bbox.y1, h.bbox.x2, h.bbox.y2],
                crop: h.crop.clone(),
                frame: job.frame.clone(),
            });
            while ring.len() > 64
                || ring
                    .front()
                    .is_some_and(|s| now.saturating_sub(s.ts_ms) > 10_000)
            {
                ring.pop_front();
            }
        }
        tracing::debug!(camera = %self.cams[cam].id, ms = times.total(), hits = hits.len(), "frame read");
        let decided = self.trackers[cam].update(now, &obs);
        self.emit(cam, decided);
    }

    fn emit(&mut self, cam: usize, decided: Vec<FusedRead>) {
        for fr in decided {
            let c = &self.cams[cam];
            // The evidence is the surest recent read of the decided plate (the exact crop that was read).
            let seen = self.recent[cam]
                .iter()
                .filter(|s| s.ts_ms >= fr.first_seen_ms.saturating_sub(50))
                .max_by(|a, b| {
                    (a.plate == fr.plate, a.score)
                        .partial_cmp(&(b.plate == fr.plate, b.score))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
            let id = uuid::Uuid::new_v4().to_string();
            let ts = chrono::DateTime::from_timestamp_millis(fr.decided_ms as i64)
                .unwrap_or_else(chrono::Utc::now);
            let first =
                chrono::DateTime::from_timestamp_millis(fr.first_seen_ms as i64).unwrap_or(ts);
            let evidence = match seen {
                Some(s) => match self.evidence.save(&id, ts, &s.crop, &s.frame) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(camera = %c.id, error = %e, "evidence not saved");
                        Evidence::default()
                    }
                },
                None => Evidence::default(),
            };
            let (plate, known_as) = match self.known.lookup(&fr.plate) {
                Some((p, name)) => (p, Some(name)),
                None => (fr.plate.clone(), None),
            };
            let read = PlateRead {
                schema: PLATE_READ_SCHEMA,
                id,
                camera: c.id.clone(),
                role: c.role,
                gate: c.gate.clone(),
                lane: c.lane.clone(),
                direction: fr.motion.map(|m| {
                    match m {
                        Motion::Approaching => c.approaching,
                        Motion::Receding => c.approaching.reverse(),
                    }
                    .as_str()
                    .to_string()
                }),
                timestamp: ts,
                first_seen: first,
                plate,
                known_as,
                raw_text: seen.map(|s| s.raw_text.clone()).unwrap_or_default(),
                score: fr.score,
                char_confidences: fr.char_confidences.clone(),
                candidates: fr
                    .candidates
                    .iter()
                    .map(|(p, s)| Candidate {
                        plate: p.clone(),
                        score: *s,
                    })
                    .collect(),
                format_matched: fr.format_matched,
                plate_box: seen
                    .map(|s| s.bbox)
                    .unwrap_or([fr.bbox.x1, fr.bbox.y1, fr.bbox.x2, fr.bbox.y2]),
                reads_fused: fr.n_reads as u32,
                evidence,
                models: Models {
                    detector: self.engine.detector.name.clone(),
                    reader: self.engine.reader.name.clone(),
                },
            };
            self.metrics
                .plate_reads
                .get_or_create(&CameraLabel::new(&c.id))
                .inc();
            tracing::info!(camera = %c.id, plate = %read.plate, score = read.score, reads = read.reads_fused, "plate decided");
            // Never dropped: wait for the consumer.
            if self.out.blocking_send(read).is_err() {
                tracing::warn!("plate read consumer is gone");
            }
        }
    }
}
