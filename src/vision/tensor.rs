//! RGB8 frame → CHW `f32` model input: bilinear resize into a [`Letterbox`], channel
//! order, normalisation and padding in one pass.
//!
//! Runs per frame at 1080p, so: no per-pixel allocation, source x-coordinates and
//! weights precomputed once per call, two source rows per output row, and normalisation
//! folded into one multiply-add per channel (`v * a + b`; bilinear interpolation commutes
//! with the affine normalisation, so interpolating raw values is exact).

use serde::{Deserialize, Serialize};

use super::error::{Result, VisionError};
use super::image::ImageView;
use super::letterbox::{rec_batch_width, Letterbox, LimitType, PadAlign};

/// Channel order of the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelOrder {
    Rgb,
    /// PP-OCR models were trained on OpenCV (BGR) images.
    Bgr,
}

/// `out = (pixel * scale - mean[c]) / std[c]`, indexed by *output* channel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// `v / 255` (YOLO).
    pub const UNIT: Self = Self {
        scale: 1.0 / 255.0,
        mean: [0.0; 3],
        std: [1.0; 3],
    };
    /// `(v / 255 - 0.5) / 0.5` (PP-OCR reader; RapidOCR's detector default).
    pub const PP_OCR: Self = Self {
        scale: 1.0 / 255.0,
        mean: [0.5; 3],
        std: [0.5; 3],
    };
    /// ImageNet statistics in RGB order.
    pub const IMAGENET_RGB: Self = Self {
        scale: 1.0 / 255.0,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    fn affine(&self, c: usize) -> (f32, f32) {
        (self.scale / self.std[c], -self.mean[c] / self.std[c])
    }
}

/// Value written into the padding area.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum PadValue {
    /// A raw pixel value, normalised like image pixels (YOLO pads with grey 114).
    Pixel(f32),
    /// A value written into the tensor as is (PP-OCR pads the normalised tensor with 0).
    Tensor(f32),
}

/// How to turn pixels into tensor values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub order: ChannelOrder,
    pub norm: Normalization,
    pub pad: PadValue,
}

impl TensorSpec {
    /// Ultralytics YOLO (platedet): RGB, /255, pad 114.
    pub const YOLO: Self = Self {
        order: ChannelOrder::Rgb,
        norm: Normalization::UNIT,
        pad: PadValue::Pixel(114.0),
    };
    /// PP-OCR detector and reader: BGR, (v/255 − 0.5)/0.5, pad 0 in tensor units.
    pub const PP_OCR: Self = Self {
        order: ChannelOrder::Bgr,
        norm: Normalization::PP_OCR,
        pad: PadValue::Tensor(0.0),
    };

    fn pad_for(&self, c: usize) -> f32 {
        match self.pad {
            PadValue::Tensor(v) => v,
            PadValue::Pixel(v) => {
                let (a, b) = self.norm.affine(c);
                v * a + b
            }
        }
    }
}

/// Precomputed horizontal sampling: byte offsets of the two source pixels and the weight
/// of the right one, per output column (OpenCV `INTER_LINEAR` half-pixel alignment).
fn sample_table(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f32 / dst as f32;
    (0..dst)
        .map(|d| {
            let s = ((d as f32 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f32);
            let i0 = s.floor() as usize;
            let i1 = (i0 + 1).min(src - 1);
            (i0, i1, s - i0 as f32)
        })
        .collect()
}

/// Write the CHW tensor (`3 * lb.dst_h * lb.dst_w` values, batch slot layout) for `img`
/// resized/placed per `lb`. `img` must have `lb.src_w x lb.src_h` pixels.
pub fn write_chw(
    img: &ImageView,
    lb: &Letterbox,
    spec: &TensorSpec,
    out: &mut [f32],
) -> Result<()> {
    if img.width != lb.src_w || img.height != lb.src_h {
        return Err(VisionError::InvalidDimensions(format!(
            "image {}x{} does not match letterbox source {}x{}",
            img.width, img.height, lb.src_w, lb.src_h
        )));
    }
    if lb.pad_left + lb.new_w > lb.dst_w || lb.pad_top + lb.new_h > lb.dst_h {
        return Err(VisionError::InvalidDimensions(
            "letterbox content exceeds target".into(),
        ));
    }
    let plane = lb.dst_w * lb.dst_h;
    if out.len() < 3 * plane {
        return Err(VisionError::BufferTooSmall {
            what: "CHW tensor",
            need: 3 * plane,
            got: out.len(),
        });
    }
    // Output channel c reads source byte src_c[c] of each RGB pixel.
    let src_c = match spec.order {
        ChannelOrder::Rgb => [0usize, 1, 2],
        ChannelOrder::Bgr => [2usize, 1, 0],
    };
    let aff = [
        spec.norm.affine(0),
        spec.norm.affine(1),
        spec.norm.affine(2),
    ];
    let pads = [spec.pad_for(0), spec.pad_for(1), spec.pad_for(2)];

    let (planes, _) = out.split_at_mut(3 * plane);
    let (p0, rest) = planes.split_at_mut(plane);
    let (p1, p2) = rest.split_at_mut(plane);
    let outs = [p0, p1, p2];
    let has_pad = lb.new_w != lb.dst_w || lb.new_h != lb.dst_h;
    if has_pad {
        for c in 0..3 {
            outs[c].fill(pads[c]);
        }
    }

    let xs = sample_table(lb.src_w, lb.new_w);
    let ys = sample_table(lb.src_h, lb.new_h);
    for (dy, &(y0, y1, fy)) in ys.iter().enumerate() {
        let r0 = img.row(y0);
        let r1 = img.row(y1);
        let base = (dy + lb.pad_top) * lb.dst_w + lb.pad_left;
        for c in 0..3 {
            let sc = src_c[c];
            let (a, b) = aff[c];
            let dst = &mut outs[c][base..base + lb.new_w];
            for (o, &(x0, x1, fx)) in dst.iter_mut().zip(xs.iter()) {
                let (i0, i1) = (x0 * 3 + sc, x1 * 3 + sc);
                let t = r0[i0] as f32 + (r0[i1] as f32 - r0[i0] as f32) * fx;
                let u = r1[i0] as f32 + (r1[i1] as f32 - r1[i0] as f32) * fx;
                *o = (t + (u - t) * fy) * a + b;
            }
        }
    }
    Ok(())
}

/// Allocating variant of [`write_chw`].
pub fn to_chw(img: &ImageView, lb: &Letterbox, spec: &TensorSpec) -> Result<Vec<f32>> {
    let mut out = vec![0.0; lb.tensor_len()];
    write_chw(img, lb, spec, &mut out)?;
    Ok(out)
}

/// YOLO input `[1, 3, size, size]` (letterbox, pad 114, RGB /255) and its mapping.
pub fn yolo_input(img: &ImageView, size: usize) -> Result<(Vec<f32>, Letterbox)> {
    let lb = Letterbox::fit(img.width, img.height, size, size, PadAlign::Center);
    Ok((to_chw(img, &lb, &TensorSpec::YOLO)?, lb))
}

/// Dynamic-size detector input `[1, 3, H, W]` (longer side limited by `max_side` per `limit`, sides multiples
/// of `multiple`, e.g. PP-OCR's DB detector: 32) and its mapping; a DB probability map
/// has the same `H x W`.
pub fn det_input(
    img: &ImageView,
    max_side: usize,
    limit: LimitType,
    multiple: usize,
    spec: &TensorSpec,
) -> Result<(Vec<f32>, Letterbox)> {
    let lb = Letterbox::limit_side(img.width, img.height, max_side, limit, multiple);
    Ok((to_chw(img, &lb, spec)?, lb))
}

/// Aspect-keeping input `[1, 3, H, W]`: the frame scaled so its longer side is
/// `max_side`, placed top-left, padded right/bottom up to multiples of `multiple`
/// (our plate proposal network), and its mapping.
pub fn padded_input(
    img: &ImageView,
    max_side: usize,
    multiple: usize,
    spec: &TensorSpec,
) -> Result<(Vec<f32>, Letterbox)> {
    let s = max_side as f32 / img.width.max(img.height).max(1) as f32;
    let up = |v: usize| {
        ((v as f32 * s).round().max(1.0) as usize).div_ceil(multiple.max(1)) * multiple.max(1)
    };
    let lb = Letterbox::fit(
        img.width,
        img.height,
        up(img.width),
        up(img.height),
        PadAlign::TopLeft,
    );
    Ok((to_chw(img, &lb, spec)?, lb))
}

/// Text reader batch `[N, 3, height, W]`: every crop resized to `height` keeping aspect,
/// left-aligned, right-padded; `W = max(min_w, widest aspect)` capped at `max_w`
/// (48 / 320 / e.g. 960 for PP-OCRv6). Returns the tensor, `W`, and each crop's mapping.
pub fn rec_batch(
    crops: &[ImageView],
    height: usize,
    min_w: usize,
    max_w: usize,
    spec: &TensorSpec,
) -> Result<(Vec<f32>, usize, Vec<Letterbox>)> {
    let sizes: Vec<_> = crops.iter().map(|c| (c.width, c.height)).collect();
    let w = rec_batch_width(&sizes, height, min_w, max_w);
    let slot = 3 * height * w;
    let mut out = vec![0.0; slot * crops.len()];
    let mut lbs = Vec::with_capacity(crops.len());
    for (i, c) in crops.iter().enumerate() {
        let lb = Letterbox::fixed_height(c.width, c.height, w, height);
        write_chw(c, &lb, spec, &mut out[i * slot..(i + 1) * slot])?;
        lbs.push(lb);
    }
    Ok((out, w, lbs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::geometry::BoxF;
    use crate::vision::image::RgbImage;

    #[test]
    fn identity_resize_and_order() {
        let mut img = RgbImage::filled(4, 2, [0, 0, 0]);
        img.put(1, 0, [255, 128, 0]);
        let lb = Letterbox::fit(4, 2, 4, 2, PadAlign::Center);
        let t = to_chw(&img.view(), &lb, &TensorSpec::YOLO).unwrap();
        assert_eq!(t.len(), 24);
        assert!((t[1] - 1.0).abs() < 1e-6); // R plane
        assert!((t[8 + 1] - 128.0 / 255.0).abs() < 1e-6); // G plane
        let bgr = TensorSpec {
            order: ChannelOrder::Bgr,
            ..TensorSpec::YOLO
        };
        let t = to_chw(&img.view(), &lb, &bgr).unwrap();
        assert!(t[1].abs() < 1e-6 && (t[16 + 1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn padding_and_stride() {
        // 2x1 image in a buffer with 2 bytes of row padding, into a 4x4 letterbox.
        let data = [10u8, 10, 10, 250, 250, 250, 99, 99];
        let img = ImageView::new(&data, 2, 1, 8).unwrap();
        let lb = Letterbox::fit(2, 1, 4, 4, PadAlign::Center);
        assert_eq!((lb.new_w, lb.new_h, lb.pad_top), (4, 2, 1));
        let t = to_chw(&img, &lb, &TensorSpec::YOLO).unwrap();
        let pad = 114.0 / 255.0;
        assert!((t[0] - pad).abs() < 1e-6 && (t[15] - pad).abs() < 1e-6);
        // Row 1: left edge clamps to the first pixel, right edge to the second.
        assert!((t[4] - 10.0 / 255.0).abs() < 1e-6);
        assert!((t[7] - 250.0 / 255.0).abs() < 1e-6);
        // Interpolated middle: (10*0.25+250*0.75) at x=1 (sx=0.25).
        assert!((t[5] - (10.0 * 0.75 + 250.0 * 0.25) / 255.0).abs() < 1e-5);
    }

    #[test]
    fn ppocr_helpers() {
        let img = RgbImage::filled(100, 50, [255, 255, 255]);
        let (t, lb) = det_input(&img.view(), 960, LimitType::Max, 32, &TensorSpec::PP_OCR).unwrap();
        assert_eq!((lb.dst_w, lb.dst_h), (96, 64));
        assert!(t.iter().all(|v| (v - 1.0).abs() < 1e-6));
        let a = RgbImage::filled(96, 24, [0, 0, 0]);
        let b = RgbImage::filled(30, 30, [255, 255, 255]);
        let (t, w, lbs) =
            rec_batch(&[a.view(), b.view()], 48, 320, 1600, &TensorSpec::PP_OCR).unwrap();
        assert_eq!(w, 320);
        assert_eq!(t.len(), 2 * 3 * 48 * 320);
        assert_eq!(lbs[0].new_w, 192);
        assert!((t[0] + 1.0).abs() < 1e-6 && t[200].abs() < 1e-6);
        let slot = 3 * 48 * 320;
        assert!((t[slot] - 1.0).abs() < 1e-6 && t[slot + 48].abs() < 1e-6);
    }

    #[test]
    fn padded_input_keeps_aspect_and_pads_to_the_multiple() {
        let img = RgbImage::filled(1920, 1080, [10, 20, 30]);
        let (t, lb) = padded_input(&img.view(), 640, 32, &TensorSpec::PP_OCR).unwrap();
        assert_eq!(
            (
                lb.dst_w,
                lb.dst_h,
                lb.new_w,
                lb.new_h,
                lb.pad_left,
                lb.pad_top
            ),
            (640, 384, 640, 360, 0, 0)
        );
        assert_eq!(t.len(), 3 * 640 * 384);
        let b = lb.undo_box(&BoxF::new(320.0, 180.0, 330.0, 190.0));
        assert!(
            (b.x1 - 960.0).abs() < 0.5 && (b.y1 - 540.0).abs() < 0.5 && (b.x2 - 990.0).abs() < 0.5,
            "{b:?}"
        );
    }

    #[test]
    fn rejects_bad_buffers() {
        let img = RgbImage::filled(4, 4, [0; 3]);
        let lb = Letterbox::fit(4, 4, 8, 8, PadAlign::Center);
        let mut small = vec![0.0; 10];
        assert!(write_chw(&img.view(), &lb, &TensorSpec::YOLO, &mut small).is_err());
        let lb2 = Letterbox::fit(5, 4, 8, 8, PadAlign::Center);
        assert!(to_chw(&img.view(), &lb2, &TensorSpec::YOLO).is_err());
    }

    /// Timing probe: `cargo test --release -- --ignored --nocapture tensor_speed`.
    #[test]
    #[ignore]
    fn tensor_speed() {
        let w = 1920;
        let h = 1080;
        let data: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let img = ImageView::packed(&data, w, h).unwrap();
        let mut buf = vec![0.0; 3 * 960 * 544];
        let lb = Letterbox::limit_side(w, h, 960, LimitType::Max, 32);
        let t0 = std::time::Instant::now();
        for _ in 0..20 {
            write_chw(&img, &lb, &TensorSpec::PP_OCR, &mut buf).unwrap();
        }
        eprintln!("1080p -> 960x544 CHW: {:?} per frame", t0.elapsed() / 20);
    }
}
