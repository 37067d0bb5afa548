//! `lotsense bench occupancy`: the cost of one frame of a large overview
//! camera — 400 bays warped and classified in one batched call on one core
//! (the ONNX session has one intra-op thread; this thread does the warps).
//! Target: ≤ 50 ms per frame.

use super::classifier::Classifier;
use super::warp::{BayQuad, PatchBatch};
use crate::vision::image::ImageView;
use std::time::{Duration, Instant};

pub const BAYS: usize = 400;
pub const TARGET_MS: f64 = 50.0;

#[derive(Debug, Clone)]
pub struct BenchResult {
    pub bays: usize,
    pub frames: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub min_ms: f64,
    pub warp_ms: f64,
    pub infer_ms: f64,
}

/// A 1280x720 noise frame and 400 slightly skewed bays (20 x 20 grid of ~48x22 px).
pub fn synthetic_site() -> (Vec<u8>, usize, usize, Vec<BayQuad>) {
    let (w, h) = (1280usize, 720usize);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let frame: Vec<u8> = (0..w * h * 3)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 56) as u8
        })
        .collect();
    let mut quads = Vec::with_capacity(BAYS);
    for r in 0..20 {
        for c in 0..20 {
            let (x, y) = (20.0 + c as f32 * 62.0, 10.0 + r as f32 * 35.0);
            let skew = (c as f32 - 10.0) * 0.4;
            let poly = [
                [x + skew, y],
                [x + 48.0 + skew, y],
                [x + 48.0, y + 22.0],
                [x, y + 22.0],
            ];
            quads.push(BayQuad::from_polygon(&poly).expect("valid bay"));
        }
    }
    (frame, w, h, quads)
}

/// Runs `frames` timed frames after 3 warm-up frames.
pub fn run(classifier: &dyn Classifier, frames: usize) -> anyhow::Result<BenchResult> {
    let (data, w, h, quads) = synthetic_site();
    let view = ImageView::packed(&data, w, h)?;
    let mut batch = PatchBatch::with_capacity(quads.len());
    let mut totals = Vec::with_capacity(frames);
    let (mut warp, mut infer) = (Duration::ZERO, Duration::ZERO);
    for i in 0..frames + 3 {
        let t0 = Instant::now();
        batch.clear();
        for q in &quads {
            batch.push_warp(&view, q);
        }
        let t1 = Instant::now();
        let p = classifier.classify(&batch)?;
        let t2 = Instant::now();
        anyhow::ensure!(
            p.len() == quads.len(),
            "classifier returned {} values for {} bays",
            p.len(),
            quads.len()
        );
        if i >= 3 {
            totals.push((t2 - t0).as_secs_f64() * 1e3);
            warp += t1 - t0;
            infer += t2 - t1;
        }
    }
    totals.sort_by(|a, b| a.total_cmp(b));
    let n = totals.len().max(1);
    Ok(BenchResult {
        bays: quads.len(),
        frames: totals.len(),
        median_ms: totals[n / 2],
        p90_ms: totals[((n * 9) / 10).min(n - 1)],
        min_ms: totals[0],
        warp_ms: warp.as_secs_f64() * 1e3 / n as f64,
        infer_ms: infer.as_secs_f64() * 1e3 / n as f64,
    })
}

pub fn format(r: &BenchResult, model: &str) -> String {
    format!(
        "bench occupancy: {} bays per frame, one batched call, one thread ({model}, {} frames)\n\
         \x20 per frame   median {:.1} ms, p90 {:.1} ms, min {:.1} ms (warp {:.1} ms + inference {:.1} ms on average)\n\
         \x20 per bay     {:.3} ms\n\
         \x20 target      <= {TARGET_MS} ms per frame: {}",
        r.bays,
        r.frames,
        r.median_ms,
        r.p90_ms,
        r.min_ms,
        r.warp_ms,
        r.infer_ms,
        r.median_ms / r.bays as f64,
        if r.median_ms <= TARGET_MS { "met" } else { "MISSED" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Half;
    impl Classifier for Half {
        fn classify(&self, b: &PatchBatch) -> Result<Vec<f32>, crate::occupancy::OccupancyError> {
            Ok(vec![0.5; b.len()])
        }
        fn name(&self) -> &str {
            "half"
        }
    }

    #[test]
    fn the_synthetic_site_has_400_bays_inside_the_frame() {
        let (d, w, h, q) = synthetic_site();
        assert_eq!(d.len(), w * h * 3);
        assert_eq!(q.len(), BAYS);
        assert!(q.iter().all(|q| {
            let b = q.bbox();
            b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= w as f32 && b[3] <= h as f32
        }));
        let r = run(&Half, 2).unwrap();
        assert_eq!((r.bays, r.frames), (400, 2));
        assert!(format(&r, "half").contains("400 bays"));
    }
}
