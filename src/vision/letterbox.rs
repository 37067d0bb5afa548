//! Resize geometry between a source frame and a model input, and its inverse.
//!
//! Pure numbers, no pixels: [`Letterbox`] says where the resized image sits inside the
//! model input, so pixel code ([`super::tensor`]) and post-processing (mapping boxes back
//! to frame coordinates) share one definition and cannot drift apart.

use serde::{Deserialize, Serialize};

use super::geometry::{BoxF, Point, Quad};

/// Where the letterboxed content sits when the target is larger than the resized image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PadAlign {
    /// Equal padding on both sides (Ultralytics/YOLO convention; odd remainder goes right/bottom).
    Center,
    /// Content at the top-left, padding right/bottom (PP-OCR reader convention).
    TopLeft,
}

/// Which side a PP-OCR detector's `limit_side_len` limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitType {
    /// Shrink so that the longer side is at most the limit (never enlarge).
    Max,
    /// Enlarge so that the shorter side is at least the limit (never shrink).
    Min,
    /// Scale (up or down) so that the longer side is the limit.
    Exact,
}

/// Mapping from a `src_w x src_h` image to a `dst_w x dst_h` model input: the image is
/// resized to `new_w x new_h` and placed at `(pad_left, pad_top)`; the rest is padding.
/// `scale_x`/`scale_y` are the exact content scales (`new / src`), which may differ slightly
/// (rounding) or a lot (PP-OCR's multiple-of-32 resize does not keep aspect exactly).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Letterbox {
    pub src_w: usize,
    pub src_h: usize,
    pub dst_w: usize,
    pub dst_h: usize,
    pub new_w: usize,
    pub new_h: usize,
    pub pad_left: usize,
    pub pad_top: usize,
    pub scale_x: f32,
    pub scale_y: f32,
}

impl Letterbox {
    fn from_parts(
        src: (usize, usize),
        dst: (usize, usize),
        new: (usize, usize),
        pad: (usize, usize),
    ) -> Self {
        Self {
            src_w: src.0,
            src_h: src.1,
            dst_w: dst.0,
            dst_h: dst.1,
            new_w: new.0,
            new_h: new.1,
            pad_left: pad.0,
            pad_top: pad.1,
            scale_x: new.0 as f32 / src.0.max(1) as f32,
            scale_y: new.1 as f32 / src.1.max(1) as f32,
        }
    }

    /// Fit `src` into `dst` keeping aspect ratio (may enlarge), padding the remainder.
    /// This is the YOLO letterbox (`PadAlign::Center`, pad value 114 in the tensor spec).
    pub fn fit(src_w: usize, src_h: usize, dst_w: usize, dst_h: usize, align: PadAlign) -> Self {
        let r = (dst_w as f64 / src_w.max(1) as f64).min(dst_h as f64 / src_h.max(1) as f64);
        let new_w = ((src_w as f64 * r).round() as usize).clamp(1, dst_w.max(1));
        let new_h = ((src_h as f64 * r).round() as usize).clamp(1, dst_h.max(1));
        let (pl, pt) = match align {
            PadAlign::Center => (
                dst_w.saturating_sub(new_w) / 2,
                dst_h.saturating_sub(new_h) / 2,
            ),
            PadAlign::TopLeft => (0, 0),
        };
        Self::from_parts((src_w, src_h), (dst_w, dst_h), (new_w, new_h), (pl, pt))
    }

    /// PP-OCR DB detector resize: scale so the limited side meets `limit`, then round each
    /// side to a multiple of `multiple` (32: the network downsamples 5 times). No padding;
    /// aspect is kept only approximately, hence separate x/y scales.
    pub fn limit_side(
        src_w: usize,
        src_h: usize,
        limit: usize,
        limit_type: LimitType,
        multiple: usize,
    ) -> Self {
        let (w, h) = (src_w.max(1) as f64, src_h.max(1) as f64);
        let ratio = match limit_type {
            LimitType::Max if w.max(h) > limit as f64 => limit as f64 / w.max(h),
            LimitType::Min if w.min(h) < limit as f64 => limit as f64 / w.min(h),
            LimitType::Exact => limit as f64 / w.max(h),
            _ => 1.0,
        };
        let m = multiple.max(1) as f64;
        // Python's `round` (ties to even) as in the reference implementation.
        let round_to = |v: f64| (((v * ratio).floor() / m).round_ties_even() * m).max(m) as usize;
        let (nw, nh) = (round_to(w), round_to(h));
        Self::from_parts((src_w, src_h), (nw, nh), (nw, nh), (0, 0))
    }

    /// PP-OCR reader resize: height `dst_h`, width following the aspect ratio
    /// (`ceil(dst_h * w / h)`), capped at `dst_w`, content at the left, padding right.
    pub fn fixed_height(src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Self {
        let ratio = src_w.max(1) as f64 / src_h.max(1) as f64;
        let new_w = ((dst_h as f64 * ratio).ceil() as usize).clamp(1, dst_w.max(1));
        Self::from_parts((src_w, src_h), (dst_w, dst_h), (new_w, dst_h), (0, 0))
    }

    /// Number of `f32`s in the CHW tensor for this input (3 channels).
    pub fn tensor_len(&self) -> usize {
        3 * self.dst_w * self.dst_h
    }

    /// Source (frame) point → model-input point.
    pub fn to_dst(&self, p: Point) -> Point {
        Point::new(
            p.x * self.scale_x + self.pad_left as f32,
            p.y * self.scale_y + self.pad_top as f32,
        )
    }

    /// Model-input point → source (frame) point (not clipped).
    pub fn to_src(&self, p: Point) -> Point {
        Point::new(
            (p.x - self.pad_left as f32) / self.scale_x,
            (p.y - self.pad_top as f32) / self.scale_y,
        )
    }

    /// Model-input box → frame box, clipped to the frame.
    pub fn undo_box(&self, b: &BoxF) -> BoxF {
        let a = self.to_src(Point::new(b.x1, b.y1));
        let c = self.to_src(Point::new(b.x2, b.y2));
        BoxF::new(a.x, a.y, c.x, c.y).clip(self.src_w as f32, self.src_h as f32)
    }

    /// Model-input quad → frame quad, clipped to the frame.
    pub fn undo_quad(&self, q: &Quad) -> Quad {
        q.map(|p| self.to_src(p))
            .clip(self.src_w as f32, self.src_h as f32)
    }
}

/// Common input width for a batch of PP-OCR reader crops: `max(min_w, dst_h * max aspect)`,
/// capped at `max_w` (wider crops are squeezed). `sizes` are the crops' `(w, h)`.
pub fn rec_batch_width(
    sizes: &[(usize, usize)],
    dst_h: usize,
    min_w: usize,
    max_w: usize,
) -> usize {
    let max_ratio = sizes
        .iter()
        .map(|&(w, h)| w as f64 / h.max(1) as f64)
        .fold(min_w as f64 / dst_h.max(1) as f64, f64::max);
    ((dst_h as f64 * max_ratio) as usize).clamp(min_w.min(max_w), max_w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn yolo_fit_1080p() {
        let lb = Letterbox::fit(1920, 1080, 640, 640, PadAlign::Center);
        assert_eq!((lb.new_w, lb.new_h), (640, 360));
        assert_eq!((lb.pad_left, lb.pad_top), (0, 140));
        let b = lb.undo_box(&BoxF::new(320.0, 140.0, 640.0, 500.0));
        assert!((b.x1 - 960.0).abs() < 1e-3 && b.y1.abs() < 1e-3);
        assert!((b.x2 - 1920.0).abs() < 1e-3 && (b.y2 - 1080.0).abs() < 1e-3);
        // Boxes in the padding clip to the frame.
        let b = lb.undo_box(&BoxF::new(0.0, 0.0, 10.0, 100.0));
        assert_eq!(b.y2, 0.0);
    }

    #[test]
    fn ppocr_det_limits() {
        let lb = Letterbox::limit_side(1920, 1080, 960, LimitType::Max, 32);
        assert_eq!((lb.dst_w, lb.dst_h), (960, 544));
        let small = Letterbox::limit_side(300, 100, 960, LimitType::Max, 32);
        assert_eq!((small.dst_w, small.dst_h), (288, 96));
        let tiny = Letterbox::limit_side(5, 5, 960, LimitType::Max, 32);
        assert_eq!((tiny.dst_w, tiny.dst_h), (32, 32));
        let min = Letterbox::limit_side(1280, 720, 736, LimitType::Min, 32);
        assert_eq!((min.dst_w, min.dst_h), (1312, 736));
        // Round trip of a point through the non-uniform scale.
        let p = Point::new(1000.0, 700.0);
        let q = lb.to_src(lb.to_dst(p));
        assert!((p.x - q.x).abs() < 1e-3 && (p.y - q.y).abs() < 1e-3);
    }

    #[test]
    fn rec_sizes() {
        let lb = Letterbox::fixed_height(100, 25, 320, 48);
        assert_eq!((lb.new_w, lb.new_h, lb.dst_w), (192, 48, 320));
        let lb = Letterbox::fixed_height(1000, 10, 320, 48);
        assert_eq!(lb.new_w, 320);
        assert_eq!(rec_batch_width(&[(100, 25)], 48, 320, 1600), 320);
        assert_eq!(rec_batch_width(&[(100, 25), (400, 40)], 48, 320, 1600), 480);
        assert_eq!(rec_batch_width(&[(10000, 10)], 48, 320, 1600), 1600);
    }

    proptest! {
        #[test]
        fn fit_roundtrip(w in 1usize..4000, h in 1usize..4000, dw in 32usize..1024, dh in 32usize..1024,
                         fx in 0f32..1., fy in 0f32..1.) {
            let lb = Letterbox::fit(w, h, dw, dh, PadAlign::Center);
            prop_assert!(lb.new_w <= dw && lb.new_h <= dh);
            prop_assert!(lb.pad_left + lb.new_w <= dw && lb.pad_top + lb.new_h <= dh);
            let p = Point::new(fx * w as f32, fy * h as f32);
            let q = lb.to_src(lb.to_dst(p));
            prop_assert!((p.x - q.x).abs() < 1e-2 * w as f32 && (p.y - q.y).abs() < 1e-2 * h as f32);
        }
    }
}
