//! Per-stage timings of a frame, shared by the engine and the plate proposer.

use std::time::Instant;

/// Time spent per stage for one frame, milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct StageTimes {
    pub detect_pre: f64,
    pub detect_infer: f64,
    pub detect_post: f64,
    pub crop: f64,
    pub read: f64,
    pub select: f64,
}

impl StageTimes {
    pub fn total(&self) -> f64 {
        self.detect_pre + self.detect_infer + self.detect_post + self.crop + self.read + self.select
    }
}

pub(crate) fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
