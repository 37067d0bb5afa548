//! The sample stage: which frames of an overview camera are classified.
//!
//! Frames arrive at the camera's fps (newest wins in the one-frame slot);
//! the sampler keeps one per sampling period (by capture time) and checks
//! that the picture still changes. A camera that keeps delivering the very
//! same picture (a frozen encoder, a stuck RTSP relay) for `frozen_after` is
//! *frozen*: its bays must turn `unknown`, not keep their last values. A real
//! camera never delivers two byte-identical frames for long (sensor noise,
//! key frames, the clock overlay), so exact equality is the test: no
//! threshold to tune, no false alarm on a quiet lot.

use crate::ingest::Frame;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// What to do with an offered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not due yet (rate limiting).
    Skip,
    /// Classify this frame.
    Sample,
    /// The picture has not changed for at least the frozen period: bays unknown.
    Frozen,
}

/// Pixels, width, height, first seen.
type Picture = (Arc<Vec<u8>>, u32, u32, DateTime<Utc>);

#[derive(Debug)]
pub struct Sampler {
    period: Duration,
    frozen_after: Duration,
    next_due: Option<DateTime<Utc>>,
    /// The last sampled picture and when it first appeared.
    last: Option<Picture>,
    frozen: bool,
}

impl Sampler {
    /// `rate` samples per second (> 0); `frozen_after` seconds of identical pictures.
    pub fn new(rate: f32, frozen_after_secs: u32) -> Self {
        let period_ms = (1000.0 / rate.max(1e-3)).round() as i64;
        Self {
            period: Duration::milliseconds(period_ms.max(1)),
            frozen_after: Duration::seconds(frozen_after_secs.into()),
            next_due: None,
            last: None,
            frozen: false,
        }
    }

    /// Forget timing and freeze state (after the camera reconnects).
    pub fn reset(&mut self) {
        self.next_due = None;
        self.last = None;
        self.frozen = false;
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    pub fn offer(&mut self, frame: &Frame) -> Decision {
        let at = frame.captured_at;
        if let Some(due) = self.next_due {
            if at < due {
                return Decision::Skip;
            }
            // Keep a steady cadence; after a long gap restart from now.
            let next = due + self.period;
            self.next_due = Some(if next <= at { at + self.period } else { next });
        } else {
            self.next_due = Some(at + self.period);
        }
        let same = match &self.last {
            Some((data, w, h, _)) => {
                *w == frame.width
                    && *h == frame.height
                    && (Arc::ptr_eq(data, &frame.data) || data[..] == frame.data[..])
            }
            None => false,
        };
        if !same {
            self.last = Some((frame.data.clone(), frame.width, frame.height, at));
            self.frozen = false;
            return Decision::Sample;
        }
        let since = self.last.as_ref().map(|l| l.3).unwrap_or(at);
        if at - since >= self.frozen_after {
            self.frozen = true;
            Decision::Frozen
        } else {
            Decision::Sample
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn frame(ms: i64, fill: u8) -> Frame {
        Frame {
            camera: Arc::from("c"),
            seq: 0,
            captured_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
                + Duration::milliseconds(ms),
            pts_ms: 0,
            width: 2,
            height: 1,
            stride: 6,
            data: Arc::new(vec![fill; 6]),
        }
    }

    #[test]
    fn keeps_one_frame_per_period_at_a_steady_cadence() {
        let mut s = Sampler::new(2.0, 30);
        let got: Vec<Decision> = (0..12).map(|i| s.offer(&frame(i * 100, i as u8))).collect();
        let sampled: Vec<usize> = got
            .iter()
            .enumerate()
            .filter(|(_, d)| **d == Decision::Sample)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(sampled, vec![0, 5, 10]);
        // After a long gap: sample at once, then one period later.
        assert_eq!(s.offer(&frame(10_000, 1)), Decision::Sample);
        assert_eq!(s.offer(&frame(10_400, 2)), Decision::Skip);
        assert_eq!(s.offer(&frame(10_500, 3)), Decision::Sample);
    }

    #[test]
    fn identical_pictures_for_the_frozen_period_mean_frozen_until_the_picture_changes() {
        let mut s = Sampler::new(1.0, 3);
        assert_eq!(s.offer(&frame(0, 9)), Decision::Sample);
        assert_eq!(s.offer(&frame(1000, 9)), Decision::Sample);
        assert_eq!(s.offer(&frame(2000, 9)), Decision::Sample);
        assert_eq!(s.offer(&frame(3000, 9)), Decision::Frozen);
        assert!(s.is_frozen());
        assert_eq!(s.offer(&frame(4000, 9)), Decision::Frozen);
        assert_eq!(s.offer(&frame(5000, 8)), Decision::Sample);
        assert!(!s.is_frozen());
        // A changing picture never freezes.
        for i in 6..20 {
            assert_eq!(s.offer(&frame(i * 1000, i as u8)), Decision::Sample);
        }
        s.reset();
        assert_eq!(s.offer(&frame(30_000, 19)), Decision::Sample);
    }
}
