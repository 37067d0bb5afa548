//! Perspective crop (deskew) of a text quad into an upright RGB strip for the reader:
//! PP-OCR's `get_rotate_crop_image`. The strip is `max(top, bottom)` wide and
//! `max(left, right)` tall, the quad's corners go to the strip's corners (so a tilted or
//! foreshortened plate comes out straight), points outside the frame take the nearest edge
//! pixel, and strips at least 1.5× taller than wide may be turned upright.
//!
//! This is the crop stage between the detector's boxes and the reader's tensors; it has
//! two warps with the same geometry:
//! - `crop_quad_opencv` (cargo feature `opencv`, on by default): OpenCV's
//!   `getPerspectiveTransform` + `warpPerspective` with `BORDER_REPLICATE`, as PP-OCR
//!   itself does, so crops match what the PP-OCR models were trained and tested on.
//!   The frame is lent to OpenCV without a copy (`super::cv`).
//! - [`crop_quad_rust`]: the same map in pure Rust (bilinear), always compiled; it is
//!   what `--no-default-features` builds use, and the reference the OpenCV crop is
//!   tested against.
//!
//! [`crop_quad`] picks one, so callers (the ANPR engine) do not depend on the feature.

use super::geometry::{Point, Quad};
use super::image::{ImageView, RgbImage};

/// Projective map from the unit square `(0,0),(1,0),(1,1),(0,1)` onto a quad's corners
/// (Heckbert's closed form; no linear solve needed).
/// `(u, v) ↦ ((a·u + b·v + c) / w, (d·u + e·v + f) / w)` with `w = g·u + h·v + 1`;
/// the coefficients are public so callers can step them incrementally.
#[derive(Debug, Clone, Copy)]
pub struct SquareToQuad {
    pub a: f32,
    pub b: f32,
    pub c: f32,
    pub d: f32,
    pub e: f32,
    pub f: f32,
    pub g: f32,
    pub h: f32,
}

impl SquareToQuad {
    pub fn new(q: &Quad) -> Self {
        let [p0, p1, p2, p3] = q.pts;
        let (dx3, dy3) = (p0.x - p1.x + p2.x - p3.x, p0.y - p1.y + p2.y - p3.y);
        let (dx1, dy1) = (p1.x - p2.x, p1.y - p2.y);
        let (dx2, dy2) = (p3.x - p2.x, p3.y - p2.y);
        let det = dx1 * dy2 - dx2 * dy1;
        let (g, h) = if (dx3.abs() < 1e-6 && dy3.abs() < 1e-6) || det.abs() < 1e-9 {
            (0.0, 0.0) // parallelogram (or degenerate): affine
        } else {
            ((dx3 * dy2 - dx2 * dy3) / det, (dx1 * dy3 - dx3 * dy1) / det)
        };
        Self {
            a: p1.x - p0.x + g * p1.x,
            b: p3.x - p0.x + h * p3.x,
            c: p0.x,
            d: p1.y - p0.y + g * p1.y,
            e: p3.y - p0.y + h * p3.y,
            f: p0.y,
            g,
            h,
        }
    }

    #[inline]
    pub fn map(&self, u: f32, v: f32) -> Point {
        let w = self.g * u + self.h * v + 1.0;
        Point::new(
            (self.a * u + self.b * v + self.c) / w,
            (self.d * u + self.e * v + self.f) / w,
        )
    }
}

/// Bilinear sample with edge replication.
#[inline]
fn sample(img: &ImageView, p: Point) -> [u8; 3] {
    let x = p.x.clamp(0.0, (img.width - 1) as f32);
    let y = p.y.clamp(0.0, (img.height - 1) as f32);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(img.width - 1), (y0 + 1).min(img.height - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let (a, b, c, d) = (
        img.pixel(x0, y0),
        img.pixel(x1, y0),
        img.pixel(x0, y1),
        img.pixel(x1, y1),
    );
    let mut out = [0u8; 3];
    for k in 0..3 {
        let t = a[k] as f32 + (b[k] as f32 - a[k] as f32) * fx;
        let u = c[k] as f32 + (d[k] as f32 - c[k] as f32) * fx;
        out[k] = (t + (u - t) * fy).round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// Expand a quad (ordered tl, tr, br, bl) outward by `frac` of its height on every side;
/// tight text boxes cut plate characters' edges, a little margin helps the reader.
pub fn expand_quad(q: &Quad, frac: f32) -> Quad {
    if frac == 0.0 {
        return *q;
    }
    let c = q.center();
    let (w, h) = (q.width().max(1e-3), q.height().max(1e-3));
    let d = h * frac;
    // Scale about the centre separately along the quad's own axes (approximated by the
    // scale factors on width and height), which is exact for rectangles.
    let (sx, sy) = ((w + 2.0 * d) / w, (h + 2.0 * d) / h);
    let ux = Point::new((q.pts[1].x - q.pts[0].x) / w, (q.pts[1].y - q.pts[0].y) / w);
    let uy = Point::new(-ux.y, ux.x);
    q.map(|p| {
        let (rx, ry) = (p.x - c.x, p.y - c.y);
        let a = (rx * ux.x + ry * ux.y) * sx;
        let b = (rx * uy.x + ry * uy.y) * sy;
        Point::new(c.x + a * ux.x + b * uy.x, c.y + a * ux.y + b * uy.y)
    })
}

/// Crop `quad` (ordered tl, tr, br, bl, frame coordinates) into an upright strip. With
/// `rotate_tall`, strips at least 1.5× taller than wide are rotated 90° counter-clockwise
/// (vertical text), as PP-OCR does. Returns `None` for a degenerate quad (see
/// [`crop_size`]).
///
/// Uses OpenCV when built with the `opencv` feature (the default), with
/// `OPENCV_INTERPOLATION`; otherwise the pure-Rust warp.
pub fn crop_quad(img: &ImageView, quad: &Quad, rotate_tall: bool) -> Option<RgbImage> {
    #[cfg(feature = "opencv")]
    {
        crop_quad_opencv(img, quad, rotate_tall, OPENCV_INTERPOLATION)
    }
    #[cfg(not(feature = "opencv"))]
    {
        crop_quad_rust(img, quad, rotate_tall)
    }
}

/// The strip's size for `quad`: `(max(top, bottom), max(left, right))`, truncated to
/// whole pixels as PP-OCR does. `None` when a corner is not finite, a side is under one
/// pixel, or the quad encloses less than one pixel (collinear or crossed corners): such
/// a quad has no perspective map, and nothing readable in it.
pub fn crop_size(quad: &Quad) -> Option<(usize, usize)> {
    if !quad.pts.iter().all(|p| p.x.is_finite() && p.y.is_finite()) {
        return None;
    }
    let (w, h) = (quad.width() as usize, quad.height() as usize);
    // i32: OpenCV's sizes; far beyond any frame.
    let ok = |n: usize| n > 0 && n <= i32::MAX as usize / 4;
    (ok(w) && ok(h) && quad.area() >= 1.0).then_some((w, h))
}

/// [`crop_quad`] with the pure-Rust warp: bilinear sampling through [`SquareToQuad`],
/// edge replication. Destination pixel `(x, y)` samples the quad at `(x / w, y / h)`,
/// the same map `warpPerspective` applies to `getPerspectiveTransform(quad → strip
/// corners)`.
pub fn crop_quad_rust(img: &ImageView, quad: &Quad, rotate_tall: bool) -> Option<RgbImage> {
    let (w, h) = crop_size(quad)?;
    let m = SquareToQuad::new(quad);
    let mut out = RgbImage {
        data: vec![0; w * h * 3],
        width: w,
        height: h,
    };
    let (iw, ih) = (1.0 / w as f32, 1.0 / h as f32);
    for y in 0..h {
        let v = y as f32 * ih;
        for x in 0..w {
            let px = sample(img, m.map(x as f32 * iw, v));
            let i = (y * w + x) * 3;
            out.data[i..i + 3].copy_from_slice(&px);
        }
    }
    Some(upright(out, rotate_tall))
}

/// OpenCV's interpolation for a crop. PP-OCR's `get_rotate_crop_image` uses cubic; the
/// pure-Rust warp is bilinear.
#[cfg(feature = "opencv")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// `INTER_LINEAR`: bilinear, the pure-Rust warp's sampling.
    Linear,
    /// `INTER_CUBIC`: bicubic, PP-OCR's choice.
    Cubic,
}

/// The interpolation [`crop_quad`] uses with OpenCV. Measured on the OpenALPR
/// end-to-end set (README, "Plate reading"): bilinear reads 86.9 % exact with O==0,
/// like the pure-Rust warp; PP-OCR's bicubic 85.9 % (3 more US plates misread).
#[cfg(feature = "opencv")]
pub const OPENCV_INTERPOLATION: Interpolation = Interpolation::Linear;

/// [`crop_quad`] with OpenCV: `getPerspectiveTransform` from the quad's corners to the
/// strip's, then `warpPerspective` with `BORDER_REPLICATE`, straight into the returned
/// image's buffer, reading the frame in place (stride respected, no copy).
///
/// OpenCV does not fail on valid input; if it ever does (a broken installation), the
/// error is logged once and the pure-Rust warp answers instead, so a plate is not lost.
#[cfg(feature = "opencv")]
pub fn crop_quad_opencv(
    img: &ImageView,
    quad: &Quad,
    rotate_tall: bool,
    interp: Interpolation,
) -> Option<RgbImage> {
    let (w, h) = crop_size(quad)?;
    match warp_opencv(img, quad, w, h, interp) {
        Ok(out) => Some(upright(out, rotate_tall)),
        Err(e) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| tracing::warn!(error = %e, "OpenCV perspective crop failed; using the pure-Rust warp"));
            crop_quad_rust(img, quad, rotate_tall)
        }
    }
}

#[cfg(feature = "opencv")]
fn warp_opencv(
    img: &ImageView,
    quad: &Quad,
    w: usize,
    h: usize,
    interp: Interpolation,
) -> opencv::Result<RgbImage> {
    use opencv::core::{Point2f, Scalar, Size, BORDER_REPLICATE, DECOMP_LU};
    use opencv::imgproc::{self, INTER_CUBIC, INTER_LINEAR};

    let src = super::cv::mat_view(img)?;
    let from = quad.pts.map(|p| Point2f::new(p.x, p.y));
    let (wf, hf) = (w as f32, h as f32);
    let to = [
        Point2f::new(0.0, 0.0),
        Point2f::new(wf, 0.0),
        Point2f::new(wf, hf),
        Point2f::new(0.0, hf),
    ];
    let m = imgproc::get_perspective_transform_slice(from, to, DECOMP_LU)?;
    let flags = match interp {
        Interpolation::Linear => INTER_LINEAR,
        Interpolation::Cubic => INTER_CUBIC,
    };
    let mut out = RgbImage {
        data: vec![0; w * h * 3],
        width: w,
        height: h,
    };
    super::cv::write_into(&mut out, |dst| {
        imgproc::warp_perspective(
            &src,
            dst,
            &m,
            Size::new(w as i32, h as i32),
            flags,
            BORDER_REPLICATE,
            Scalar::default(),
        )
    })?;
    Ok(out)
}

/// PP-OCR's vertical-text rule: with `rotate_tall`, a strip at least 1.5× taller than
/// wide is turned 90° counter-clockwise (numpy `rot90`). Shared by both warps so they
/// turn alike.
fn upright(img: RgbImage, rotate_tall: bool) -> RgbImage {
    let (w, h) = (img.width, img.height);
    if !rotate_tall || (h as f32 / w as f32) < 1.5 {
        return img;
    }
    // new(i, j) = old(j, w - 1 - i), size h x w → w x h.
    let mut r = RgbImage {
        data: vec![0; w * h * 3],
        width: h,
        height: w,
    };
    for i in 0..w {
        for j in 0..h {
            let s = (j * w + (w - 1 - i)) * 3;
            let d = (i * h + j) * 3;
            r.data[d..d + 3].copy_from_slice(&img.data[s..s + 3]);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::geometry::BoxF;

    type Crop = fn(&ImageView, &Quad, bool) -> Option<RgbImage>;

    /// Every warp this build has, by name; each test runs on all of them.
    fn backends() -> Vec<(&'static str, Crop)> {
        #[allow(unused_mut)]
        let mut v: Vec<(&'static str, Crop)> =
            vec![("dispatch", crop_quad), ("rust", crop_quad_rust)];
        #[cfg(feature = "opencv")]
        {
            v.push(("opencv-linear", |i, q, r| {
                crop_quad_opencv(i, q, r, Interpolation::Linear)
            }));
            v.push(("opencv-cubic", |i, q, r| {
                crop_quad_opencv(i, q, r, Interpolation::Cubic)
            }));
        }
        v
    }

    fn quad(p: [(f32, f32); 4]) -> Quad {
        Quad::new(p.map(|(x, y)| Point::new(x, y)))
    }

    /// The plate the fixtures show, on the unit square: white, a blue band on the left
    /// (catches mirroring), five dark "characters" (catch shifts along the text) and a
    /// dark stroke under them (catches shifts across it).
    fn plate(u: f32, v: f32) -> [u8; 3] {
        if u < 0.1 {
            return [20, 40, 200];
        }
        let ch = [0.16, 0.32, 0.48, 0.64, 0.80]
            .iter()
            .any(|&x0| u >= x0 && u < x0 + 0.08);
        if (ch && (0.15..0.65).contains(&v)) || (0.75..0.85).contains(&v) {
            [30, 30, 30]
        } else {
            [240, 240, 240]
        }
    }

    /// A `w`x`h` grey frame with [`plate`] drawn into `q` through its homography: each
    /// frame pixel is mapped back onto the unit square (inverse of [`SquareToQuad`]),
    /// 4x4 supersampled.
    fn render_tilted(w: usize, h: usize, q: &Quad) -> RgbImage {
        let m = SquareToQuad::new(q);
        let f = [m.a, m.b, m.c, m.d, m.e, m.f, m.g, m.h, 1.0].map(f64::from);
        // Inverse by the adjugate (the determinant's scale cancels in the projective divide).
        let inv = [
            f[4] * f[8] - f[5] * f[7],
            f[2] * f[7] - f[1] * f[8],
            f[1] * f[5] - f[2] * f[4],
            f[5] * f[6] - f[3] * f[8],
            f[0] * f[8] - f[2] * f[6],
            f[2] * f[3] - f[0] * f[5],
            f[3] * f[7] - f[4] * f[6],
            f[1] * f[6] - f[0] * f[7],
            f[0] * f[4] - f[1] * f[3],
        ];
        let mut img = RgbImage::filled(w, h, [120, 120, 120]);
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0u32; 3];
                for sy in 0..4 {
                    for sx in 0..4 {
                        let (px, py) = (x as f64 + sx as f64 / 4.0, y as f64 + sy as f64 / 4.0);
                        let z = inv[6] * px + inv[7] * py + inv[8];
                        let (u, v) = (
                            (inv[0] * px + inv[1] * py + inv[2]) / z,
                            (inv[3] * px + inv[4] * py + inv[5]) / z,
                        );
                        let c = if (0.0..1.0).contains(&u) && (0.0..1.0).contains(&v) {
                            plate(u as f32, v as f32)
                        } else {
                            [120, 120, 120]
                        };
                        for k in 0..3 {
                            acc[k] += c[k] as u32;
                        }
                    }
                }
                img.put(x, y, acc.map(|a| (a / 16) as u8));
            }
        }
        img
    }

    /// Share of `c`'s pixels within 48 levels (every channel) of [`plate`] at the pixel's
    /// centre, and the mean absolute difference.
    fn match_plate(c: &RgbImage) -> (f32, f32) {
        let (mut close, mut sum) = (0usize, 0u64);
        for y in 0..c.height {
            for x in 0..c.width {
                let want = plate(
                    (x as f32 + 0.5) / c.width as f32,
                    (y as f32 + 0.5) / c.height as f32,
                );
                let i = (y * c.width + x) * 3;
                let d = (0..3)
                    .map(|k| c.data[i + k].abs_diff(want[k]))
                    .max()
                    .unwrap();
                close += (d <= 48) as usize;
                sum += (0..3)
                    .map(|k| c.data[i + k].abs_diff(want[k]) as u64)
                    .sum::<u64>();
            }
        }
        let n = c.width * c.height;
        (close as f32 / n as f32, sum as f32 / (3 * n) as f32)
    }

    #[test]
    fn axis_aligned_crop_matches_pixels() {
        let mut img = RgbImage::filled(20, 10, [0, 0, 0]);
        img.fill_rect(5, 2, 8, 4, [200, 100, 50]);
        let q = BoxF::new(5.0, 2.0, 13.0, 6.0).to_quad();
        for (name, crop) in backends() {
            let c = crop(&img.view(), &q, true).unwrap();
            assert_eq!((c.width, c.height), (8, 4), "{name}");
            assert!(
                c.data.chunks(3).all(|p| p == [200, 100, 50]),
                "{name}: {:?}",
                c.data
            );
        }
    }

    #[test]
    fn rotated_quad_is_straightened() {
        // A 20x4 bright bar rotated 90° (vertical): quad corners listed so that tl→tr
        // runs downwards; the crop must be 20 wide and uniformly bright.
        let mut img = RgbImage::filled(30, 30, [0, 0, 0]);
        img.fill_rect(10, 5, 4, 20, [255, 255, 255]);
        let q = quad([(14.0, 5.0), (14.0, 25.0), (10.0, 25.0), (10.0, 5.0)]);
        for (name, crop) in backends() {
            let c = crop(&img.view(), &q, false).unwrap();
            assert_eq!((c.width, c.height), (20, 4), "{name}");
            // Interior rows are white (edges may blend with the border).
            assert!(
                c.data[(20 + 1) * 3..(20 + 19) * 3].iter().all(|&v| v > 200),
                "{name}"
            );
        }
    }

    /// The straightened crop must match the plate this closely; the bounds sit between
    /// what the warps reach (0.925-0.934 of pixels, mean 8.9-9.2: only blended edges
    /// differ) and what a one-pixel misplacement of the quad gives (0.894, 14.0).
    fn matches(close: f32, mean: f32) -> bool {
        close >= 0.91 && mean <= 11.0
    }

    #[test]
    fn tilted_perspective_plate_is_deskewed() {
        // A plate seen from the side and below: rotated about 7°, its right edge shorter.
        let q = quad([(30.0, 40.0), (170.0, 22.0), (166.0, 78.0), (34.0, 97.0)]);
        let frame = render_tilted(200, 120, &q);
        for (name, crop) in backends() {
            let c = crop(&frame.view(), &q, false).unwrap();
            assert_eq!(
                (c.width, c.height),
                (q.width() as usize, q.height() as usize),
                "{name}"
            );
            let (close, mean) = match_plate(&c);
            assert!(matches(close, mean), "{name}: the straightened crop matches the plate on {close:.3} of pixels, mean diff {mean:.1}");
        }
        // The check can fail: crops that are not straightened right do not pass it.
        let p = q.pts;
        let wrong = [
            ("the upright bounding box (no deskew)", q.bbox().to_quad()),
            (
                "rotation and shear only (no perspective)",
                Quad::new([
                    p[0],
                    p[1],
                    Point::new(p[1].x + p[3].x - p[0].x, p[1].y + p[3].y - p[0].y),
                    p[3],
                ]),
            ),
            (
                "the quad one pixel to the right",
                q.map(|p| Point::new(p.x + 1.0, p.y)),
            ),
        ];
        for (what, w) in wrong {
            let (close, mean) = match_plate(&crop_quad(&frame.view(), &w, false).unwrap());
            assert!(
                !matches(close, mean),
                "{what} must not match: {close:.3}, {mean:.1}"
            );
        }
    }

    #[test]
    fn tall_crops_rotate_counter_clockwise() {
        // Left half red, right half blue, 3x taller than wide.
        let mut img = RgbImage::filled(10, 30, [255, 0, 0]);
        img.fill_rect(5, 0, 5, 30, [0, 0, 255]);
        let q = BoxF::new(0.0, 0.0, 10.0, 30.0).to_quad();
        for (name, crop) in backends() {
            let c = crop(&img.view(), &q, true).unwrap();
            assert_eq!((c.width, c.height), (30, 10), "{name}");
            // numpy rot90: the right column becomes the top row.
            let px = |x: usize, y: usize| &c.data[(y * c.width + x) * 3..][..3];
            assert_eq!(
                px(15, 1),
                [0, 0, 255],
                "{name}: top is the right (blue) side"
            );
            assert_eq!(
                px(15, 8),
                [255, 0, 0],
                "{name}: bottom is the left (red) side"
            );
            let c = crop(&img.view(), &q, false).unwrap();
            assert_eq!(
                (c.width, c.height),
                (10, 30),
                "{name}: not rotated unless asked"
            );
            // Under 1.5x taller: kept as it is.
            let c = crop(
                &img.view(),
                &BoxF::new(0.0, 0.0, 10.0, 14.0).to_quad(),
                true,
            )
            .unwrap();
            assert_eq!((c.width, c.height), (10, 14), "{name}");
        }
        let e = expand_quad(&BoxF::new(10.0, 10.0, 50.0, 20.0).to_quad(), 0.1);
        let b = e.bbox();
        assert!((b.x1 - 9.0).abs() < 1e-4 && (b.y2 - 21.0).abs() < 1e-4);
    }

    #[test]
    fn degenerate_quads_return_none() {
        let img = RgbImage::filled(40, 40, [9, 9, 9]);
        let degenerate = [
            ("a point", quad([(5.0, 5.0); 4])),
            (
                "flat",
                quad([(5.0, 5.0), (25.0, 5.0), (25.0, 5.0), (5.0, 5.0)]),
            ),
            (
                "thinner than a pixel",
                quad([(5.0, 5.0), (25.0, 5.0), (25.0, 5.6), (5.0, 5.6)]),
            ),
            (
                "collinear",
                quad([(0.0, 0.0), (10.0, 10.0), (20.0, 20.0), (30.0, 30.0)]),
            ),
            (
                "crossed (bow tie)",
                quad([(0.0, 0.0), (10.0, 0.0), (0.0, 10.0), (10.0, 10.0)]),
            ),
            (
                "NaN corner",
                quad([(f32::NAN, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]),
            ),
            (
                "infinite corner",
                quad([(0.0, 0.0), (f32::INFINITY, 0.0), (10.0, 10.0), (0.0, 10.0)]),
            ),
        ];
        for (name, crop) in backends() {
            for (what, q) in &degenerate {
                assert!(crop(&img.view(), q, true).is_none(), "{name}: {what}");
            }
            assert!(
                crop(&img.view(), &BoxF::new(5.0, 5.0, 6.0, 6.0).to_quad(), true).is_some(),
                "{name}: 1x1 is a crop"
            );
        }
    }

    /// A frame with smooth gradients and a few sharp-edged blocks, and the same pixels
    /// behind a padded stride (as GStreamer hands them over).
    #[cfg(feature = "opencv")]
    fn textured(w: usize, h: usize, pad: usize) -> (RgbImage, Vec<u8>, usize) {
        let mut img = RgbImage::filled(w, h, [0, 0, 0]);
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = (x as f32, y as f32);
                let r = 128.0 + 100.0 * (fx / 7.0).sin() * (fy / 9.0).cos();
                let g = (fx * 255.0 / w as f32 + fy) % 256.0;
                let b = 128.0 + 120.0 * ((fx + fy) / 13.0).cos();
                img.put(x, y, [r as u8, g as u8, b as u8]);
            }
        }
        img.fill_rect(40, 30, 25, 12, [250, 250, 250]);
        img.fill_rect(90, 70, 6, 30, [5, 5, 5]);
        let stride = w * 3 + pad;
        let mut padded = vec![0xA5; stride * h];
        for y in 0..h {
            padded[y * stride..y * stride + w * 3].copy_from_slice(img.view().row(y));
        }
        (img, padded, stride)
    }

    /// (max, mean) absolute per-channel difference of two same-sized crops.
    #[cfg(feature = "opencv")]
    fn diff(a: &RgbImage, b: &RgbImage) -> (u8, f32) {
        assert_eq!((a.width, a.height), (b.width, b.height));
        let max = a
            .data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap();
        let sum: u64 = a
            .data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| x.abs_diff(*y) as u64)
            .sum();
        (max, sum as f32 / a.data.len() as f32)
    }

    #[cfg(feature = "opencv")]
    #[test]
    fn opencv_and_rust_crops_agree() {
        let (img, padded, stride) = textured(160, 120, 7);
        let padded_view = ImageView::new(&padded, 160, 120, stride).unwrap();
        let quads = [
            (
                "axis-aligned, fractional",
                BoxF::new(20.3, 15.7, 100.9, 40.2).to_quad(),
            ),
            (
                "rotated 12°",
                quad([(20.0, 50.0), (118.0, 29.0), (123.0, 52.5), (25.0, 73.5)]),
            ),
            (
                "perspective",
                quad([(30.0, 40.0), (140.0, 22.0), (136.0, 78.0), (34.0, 97.0)]),
            ),
            (
                "past the frame's edges",
                quad([(-15.0, -8.0), (60.0, -12.0), (64.0, 20.0), (-11.0, 24.0)]),
            ),
            (
                "small",
                quad([
                    (100.2, 100.1),
                    (117.8, 101.0),
                    (117.5, 106.9),
                    (100.0, 106.0),
                ]),
            ),
            (
                "tall",
                quad([(70.0, 10.0), (84.0, 11.0), (83.0, 95.0), (69.0, 94.0)]),
            ),
        ];
        for (what, q) in &quads {
            let rust = crop_quad_rust(&img.view(), q, true).unwrap();
            let cv = crop_quad_opencv(&img.view(), q, true, Interpolation::Linear).unwrap();
            let (max, mean) = diff(&rust, &cv);
            // OpenCV rounds its bilinear weights to 1/32 pixel: a few levels on sharp
            // edges (measured: max 1-5, mean 0.03-0.07).
            assert!(
                max <= 6 && mean <= 0.2,
                "{what}: OpenCV (linear) vs Rust differ by max {max}, mean {mean:.2}"
            );
            let cubic = crop_quad_opencv(&img.view(), q, true, Interpolation::Cubic).unwrap();
            let (_, mean) = diff(&rust, &cubic);
            // Bicubic sharpens edges (measured: max up to 27, mean 0.18-0.45).
            assert!(
                mean <= 1.0,
                "{what}: OpenCV (cubic) vs Rust differ by mean {mean:.2}"
            );
            // The frame read in place through a padded stride gives the same crop.
            assert_eq!(
                crop_quad_opencv(&padded_view, q, true, Interpolation::Linear).unwrap(),
                cv,
                "{what}: padded stride"
            );
            assert_eq!(
                crop_quad_rust(&padded_view, q, true).unwrap(),
                rust,
                "{what}: padded stride (Rust)"
            );
        }
        // The tolerance can fail: the same quad moved by one pixel is out of it.
        let q = quads[2].1;
        let moved = q.map(|p| Point::new(p.x + 1.0, p.y));
        let (max, mean) = diff(
            &crop_quad_rust(&img.view(), &moved, true).unwrap(),
            &crop_quad_opencv(&img.view(), &q, true, Interpolation::Linear).unwrap(),
        );
        assert!(
            max > 6 && mean > 0.2,
            "a one-pixel shift must exceed the tolerance: max {max}, mean {mean:.2}"
        );
    }
}
