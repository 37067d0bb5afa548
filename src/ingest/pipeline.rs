//! Builds and runs one camera's GStreamer pipeline from the templates in
//! `pipelines/`, with reconnects, stall detection and status events.

use super::{CameraEvent, Frame, FrameSlot};
use crate::metrics::{CameraLabel, Metrics};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use rand::Rng;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RTSP_TEMPLATE: &str = include_str!("../../pipelines/rtsp.pipeline");
const FILE_TEMPLATE: &str = include_str!("../../pipelines/file.pipeline");

/// Errors of the ingest layer; each names the camera.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Gstreamer(String),
    #[error("camera `{camera}`: url `{url}` is not rtsp://, rtsps:// or file://")]
    BadUrl { camera: String, url: String },
    #[error("camera `{camera}`: file {path} does not exist")]
    NoFile { camera: String, path: PathBuf },
    #[error("camera `{camera}`: cannot build pipeline: {reason}")]
    Pipeline { camera: String, reason: String },
}

/// Where a camera's video comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum CameraSource {
    Rtsp {
        url: String,
    },
    File {
        path: PathBuf,
        realtime: bool,
        looping: bool,
    },
}

impl CameraSource {
    pub fn from_url(
        camera: &str,
        url: &str,
        realtime: bool,
        looping: bool,
    ) -> Result<Self, IngestError> {
        if url.starts_with("rtsp://") || url.starts_with("rtsps://") {
            if url.contains('"') {
                return Err(IngestError::BadUrl {
                    camera: camera.into(),
                    url: url.into(),
                });
            }
            Ok(CameraSource::Rtsp {
                url: url.to_string(),
            })
        } else if let Some(p) = url.strip_prefix("file://") {
            let path = PathBuf::from(p);
            if p.contains('"') {
                return Err(IngestError::BadUrl {
                    camera: camera.into(),
                    url: url.into(),
                });
            }
            if !path.is_file() {
                return Err(IngestError::NoFile {
                    camera: camera.into(),
                    path,
                });
            }
            Ok(CameraSource::File {
                path,
                realtime,
                looping,
            })
        } else {
            Err(IngestError::BadUrl {
                camera: camera.into(),
                url: url.into(),
            })
        }
    }
}

/// Fills a pipeline template; comment lines are removed.
pub fn pipeline_description(source: &CameraSource, fps: u32) -> String {
    let (template, vars): (&str, Vec<(&str, String)>) = match source {
        CameraSource::Rtsp { url } => (
            RTSP_TEMPLATE,
            vec![
                ("location", url.clone()),
                ("latency_ms", "200".into()),
                ("fps", fps.to_string()),
            ],
        ),
        CameraSource::File { path, realtime, .. } => (
            FILE_TEMPLATE,
            vec![
                ("path", path.display().to_string()),
                ("fps", fps.to_string()),
                ("sync", realtime.to_string()),
                // Real time: newest frame wins. Evaluation: back-pressure, no drops.
                ("max_buffers", if *realtime { "1" } else { "4" }.into()),
                ("drop", realtime.to_string()),
            ],
        ),
    };
    let mut s: String = template
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for (k, v) in vars {
        s = s.replace(&format!("{{{k}}}"), &v);
    }
    s
}

/// Settings for [`run_camera`].
#[derive(Debug, Clone)]
pub struct CameraSpec {
    pub id: String,
    pub source: CameraSource,
    pub fps: u32,
    /// No frame for this long counts as a stall (and triggers a reconnect).
    pub stall_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl CameraSpec {
    pub fn new(id: &str, source: CameraSource, fps: u32) -> Self {
        Self {
            id: id.to_string(),
            source,
            fps,
            stall_timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Why one pipeline run ended.
enum RunEnd {
    Stopped,
    Eos,
    Failed(String),
}

/// Runs the camera until `stop` is set (or a non-looping file ends). Blocking:
/// call it on its own thread. Frames go to `slot`; status changes to `events`
/// (bounded; the camera waits if the consumer is behind, events are rare).
pub fn run_camera(
    spec: CameraSpec,
    slot: Arc<FrameSlot>,
    events: tokio::sync::mpsc::Sender<CameraEvent>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) {
    let label = CameraLabel::new(&spec.id);
    let camera: Arc<str> = Arc::from(spec.id.as_str());
    let mut seq = 0u64;
    let mut backoff = spec.backoff_initial;
    let mut online = false;
    let mut reported_offline = false;
    let send = |e: CameraEvent| {
        let _ = events.blocking_send(e);
    };
    while !stop.load(Ordering::Relaxed) {
        let mut got_frame = false;
        let end = match build(&spec) {
            Ok((pipeline, sink)) => {
                let end = pump(
                    Feed {
                        spec: &spec,
                        slot: &slot,
                        metrics: &metrics,
                        label: &label,
                        camera: &camera,
                        stop: &stop,
                    },
                    &pipeline,
                    &sink,
                    &mut seq,
                    &mut |first| {
                        got_frame = true;
                        if first && !online {
                            online = true;
                            reported_offline = false;
                            metrics.camera_online.get_or_create(&label).set(1);
                            tracing::info!(camera = %spec.id, "camera online");
                            send(CameraEvent::Online {
                                camera: spec.id.clone(),
                            });
                        }
                    },
                );
                let _ = pipeline.set_state(gst::State::Null);
                end
            }
            Err(e) => RunEnd::Failed(e.to_string()),
        };
        if got_frame {
            backoff = spec.backoff_initial;
        }
        match end {
            RunEnd::Stopped => break,
            RunEnd::Eos => match &spec.source {
                CameraSource::File { looping: true, .. } => continue,
                CameraSource::File { looping: false, .. } => {
                    send(CameraEvent::Finished {
                        camera: spec.id.clone(),
                    });
                    break;
                }
                CameraSource::Rtsp { .. } => {
                    metrics.camera_failures.get_or_create(&label).inc();
                    if online || !reported_offline {
                        report_offline(&spec.id, "stream ended", &metrics, &label, &send);
                    }
                }
            },
            RunEnd::Failed(reason) => {
                metrics.camera_failures.get_or_create(&label).inc();
                if online || !reported_offline {
                    report_offline(&spec.id, &reason, &metrics, &label, &send);
                } else {
                    tracing::debug!(camera = %spec.id, %reason, "camera still unreachable");
                }
            }
        }
        online = false;
        reported_offline = true;
        // Exponential backoff with ±25 % jitter so many cameras behind one
        // switch do not reconnect in lock-step.
        let jitter = rand::rng().random_range(0.75..1.25);
        let wait = backoff.mul_f64(jitter);
        tracing::info!(camera = %spec.id, retry_in_ms = wait.as_millis() as u64, "camera reconnect scheduled");
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        backoff = (backoff * 2).min(spec.backoff_max);
        metrics.camera_reconnects.get_or_create(&label).inc();
    }
    metrics.camera_online.get_or_create(&label).set(0);
    slot.close();
}

fn report_offline(
    id: &str,
    reason: &str,
    metrics: &Metrics,
    label: &CameraLabel,
    send: &dyn Fn(CameraEvent),
) {
    metrics.camera_online.get_or_create(label).set(0);
    tracing::warn!(camera = %id, %reason, "camera offline");
    send(CameraEvent::Offline {
        camera: id.to_string(),
        reason: reason.to_string(),
    });
}

fn build(spec: &CameraSpec) -> Result<(gst::Pipeline, gst_app::AppSink), IngestError> {
    let err = |reason: String| IngestError::Pipeline {
        camera: spec.id.clone(),
        reason,
    };
    let desc = pipeline_description(&spec.source, spec.fps);
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| err(format!("{e} (are the GStreamer plugins installed?)")))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| err("template is not a pipeline".into()))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| err("template has no appsink named `sink`".into()))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| err("pipeline refused to start".into()))?;
    Ok((pipeline, sink))
}

/// What stays the same for a camera across its pipeline restarts.
#[derive(Clone, Copy)]
struct Feed<'a> {
    spec: &'a CameraSpec,
    slot: &'a FrameSlot,
    metrics: &'a Metrics,
    label: &'a CameraLabel,
    camera: &'a Arc<str>,
    stop: &'a AtomicBool,
}

fn pump(
    feed: Feed<'_>,
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
    seq: &mut u64,
    on_frame: &mut dyn FnMut(bool),
) -> RunEnd {
    let Feed {
        spec,
        slot,
        metrics,
        label,
        camera,
        stop,
    } = feed;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let mut last = Instant::now();
    // The first frame of an RTSP session may take a while (DESCRIBE, SETUP,
    // first key frame): allow twice the stall timeout for it.
    let mut limit = spec.stall_timeout * 2;
    loop {
        if stop.load(Ordering::Relaxed) {
            return RunEnd::Stopped;
        }
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos]) {
            match msg.view() {
                gst::MessageView::Eos(_) => return RunEnd::Eos,
                gst::MessageView::Error(e) => {
                    let detail = e.debug().map(|d| format!(" ({d})")).unwrap_or_default();
                    let short = detail
                        .lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(200)
                        .collect::<String>();
                    return RunEnd::Failed(format!("{}{}", e.error(), short));
                }
                _ => {}
            }
        }
        match sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
            Some(sample) => {
                metrics.frames_in.get_or_create(label).inc();
                match to_frame(&sample, camera, *seq) {
                    Ok(frame) => {
                        *seq += 1;
                        on_frame(true);
                        if slot.put(frame) {
                            metrics.frames_dropped.get_or_create(label).inc();
                        }
                        last = Instant::now();
                        limit = spec.stall_timeout;
                    }
                    Err(e) => {
                        metrics.camera_failures.get_or_create(label).inc();
                        tracing::warn!(camera = %spec.id, error = %e, "bad frame skipped");
                    }
                }
            }
            None => {
                if sink.is_eos() {
                    return RunEnd::Eos;
                }
                if last.elapsed() > limit {
                    return RunEnd::Failed(format!(
                        "stalled: no frame for {:.1} s",
                        last.elapsed().as_secs_f32()
                    ));
                }
            }
        }
    }
}

/// Copies the RGB plane out of a sample, respecting its stride.
fn to_frame(sample: &gst::Sample, camera: &Arc<str>, seq: u64) -> Result<Frame, String> {
    let caps = sample.caps().ok_or("sample without caps")?;
    let info = gst_video::VideoInfo::from_caps(caps)
        .map_err(|e| format!("caps are not raw video: {e}"))?;
    if info.format() != gst_video::VideoFormat::Rgb {
        return Err(format!("expected RGB frames, got {:?}", info.format()));
    }
    let buffer = sample.buffer().ok_or("sample without buffer")?;
    let vframe = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(|_| "cannot map frame")?;
    let stride = vframe.plane_stride()[0] as usize;
    let (w, h) = (vframe.width(), vframe.height());
    let plane = vframe.plane_data(0).map_err(|e| e.to_string())?;
    let needed = stride * (h as usize - 1) + w as usize * 3;
    if plane.len() < needed {
        return Err(format!(
            "truncated frame: {} bytes, need {needed}",
            plane.len()
        ));
    }
    Ok(Frame {
        camera: camera.clone(),
        seq,
        captured_at: chrono::Utc::now(),
        pts_ms: buffer.pts().map(|p| p.mseconds()).unwrap_or(0),
        width: w,
        height: h,
        stride,
        data: Arc::new(plane[..needed.max(stride * h as usize).min(plane.len())].to_vec()),
    })
}
