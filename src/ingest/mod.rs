//! Camera ingest: one GStreamer pipeline per camera, kept at the edge.
//!
//! Frames leave an `appsink` whose caps are declared (packed RGB at the
//! camera's fps); we copy the plane once, keeping its stride, into a
//! [`Frame`]. Between ingest and vision sits a [`FrameSlot`]: a one-frame
//! mailbox where the newest frame replaces an unconsumed older one and the
//! replacement is counted as a drop. So a slow vision stage costs latency
//! never more than one frame, and a camera never waits behind another.
//!
//! RTSP cameras reconnect with exponential backoff and jitter when the stream
//! errors, ends or stalls, and report `online`/`offline` each time.

pub mod pipeline;
pub mod testserver;

pub use pipeline::{pipeline_description, run_camera, CameraSource, IngestError};

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// One decoded RGB frame. `data` holds `height` rows of `stride` bytes (the
/// stride may exceed `width * 3`; consumers must respect it).
#[derive(Clone)]
pub struct Frame {
    pub camera: Arc<str>,
    /// Sequence number per camera since start.
    pub seq: u64,
    /// Wall-clock time the frame was pulled from the pipeline.
    pub captured_at: chrono::DateTime<chrono::Utc>,
    /// Stream position in milliseconds (for file replay; 0 when unknown).
    pub pts_ms: u64,
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub data: Arc<Vec<u8>>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("camera", &self.camera)
            .field("seq", &self.seq)
            .field("size", &(self.width, self.height))
            .finish()
    }
}

impl Frame {
    /// Row `y` without the stride padding.
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.stride;
        &self.data[start..start + self.width as usize * 3]
    }

    /// A tightly packed copy as an `image` buffer (for evidence JPEGs and tools).
    pub fn to_rgb_image(&self) -> image::RgbImage {
        let mut out = Vec::with_capacity(self.width as usize * self.height as usize * 3);
        for y in 0..self.height {
            out.extend_from_slice(self.row(y));
        }
        image::RgbImage::from_raw(self.width, self.height, out)
            .expect("buffer size matches dimensions")
    }
}

/// Camera status changes, for MQTT, the store and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraEvent {
    Online {
        camera: String,
    },
    Offline {
        camera: String,
        reason: String,
    },
    /// A file source reached its end and does not loop.
    Finished {
        camera: String,
    },
}

/// The one-frame mailbox between a camera and its consumer.
/// Policy: the newest frame wins; a replaced frame is counted as dropped.
#[derive(Default)]
pub struct FrameSlot {
    inner: Mutex<SlotInner>,
    cv: Condvar,
}

#[derive(Default)]
struct SlotInner {
    frame: Option<Frame>,
    closed: bool,
    dropped: u64,
}

impl FrameSlot {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Puts a frame; returns true when an unconsumed frame was replaced.
    pub fn put(&self, frame: Frame) -> bool {
        let mut g = self.inner.lock().expect("slot lock");
        let replaced = g.frame.replace(frame).is_some();
        if replaced {
            g.dropped += 1;
        }
        drop(g);
        self.cv.notify_one();
        replaced
    }

    /// Takes the newest frame, waiting up to `timeout`. `None` on timeout or
    /// when the slot is closed and empty.
    pub fn take(&self, timeout: Duration) -> Option<Frame> {
        let g = self.inner.lock().expect("slot lock");
        let (mut g, _) = self
            .cv
            .wait_timeout_while(g, timeout, |s| s.frame.is_none() && !s.closed)
            .expect("slot lock");
        g.frame.take()
    }

    /// No more frames will come (the camera stopped for good).
    pub fn close(&self) {
        self.inner.lock().expect("slot lock").closed = true;
        self.cv.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        let g = self.inner.lock().expect("slot lock");
        g.closed && g.frame.is_none()
    }

    pub fn dropped(&self) -> u64 {
        self.inner.lock().expect("slot lock").dropped
    }
}

/// Initialises GStreamer once; a clear error when the libraries are missing.
pub fn init_gstreamer() -> Result<(), IngestError> {
    gstreamer::init().map_err(|e| {
        IngestError::Gstreamer(format!(
            "cannot initialise GStreamer: {e} (install the GStreamer packages: scripts/setup.sh)"
        ))
    })
}
