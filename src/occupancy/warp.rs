//! Bay polygon → fixed-size patch: a perspective warp (the projective map of
//! the unit square onto the bay's four corners, bilinear sampling with edge
//! replication — what OpenCV's `warpPerspective` does with `INTER_LINEAR` and
//! `BORDER_REPLICATE`), written straight into the model's CHW float input.
//!
//! The patch is [`PATCH_W`]x[`PATCH_H`] with the bay's long axis horizontal,
//! values RGB in [0, 1] (pixel / 255), as the classifier's contract says.

use crate::vision::crop::SquareToQuad;
use crate::vision::geometry::{Point, Quad};
use crate::vision::hull::min_area_rect;
use crate::vision::image::ImageView;

pub const PATCH_W: usize = 64;
pub const PATCH_H: usize = 32;
/// Floats per patch in the batch tensor (3 x 32 x 64).
pub const PATCH_LEN: usize = 3 * PATCH_W * PATCH_H;

/// A bay's four corners ordered so that corner 0 → 1 runs along the bay's
/// long axis (it becomes the patch's top edge), clockwise on screen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BayQuad {
    pub corners: [[f32; 2]; 4],
}

impl BayQuad {
    /// From a polygon: a 4-point polygon keeps its corners (so a bay drawn in
    /// perspective is rectified); any other polygon is replaced by its
    /// minimum-area rectangle. `None` for a degenerate polygon.
    pub fn from_polygon(poly: &[[f32; 2]]) -> Option<BayQuad> {
        let mut c: [[f32; 2]; 4] = if poly.len() == 4 {
            [poly[0], poly[1], poly[2], poly[3]]
        } else {
            let pts: Vec<Point> = poly.iter().map(|p| Point::new(p[0], p[1])).collect();
            let r = min_area_rect(&pts)?;
            r.corners().pts.map(|p| [p.x, p.y])
        };
        // Clockwise on screen (y down) = positive shoelace sum.
        let area2: f32 = (0..4)
            .map(|i| c[i][0] * c[(i + 1) % 4][1] - c[(i + 1) % 4][0] * c[i][1])
            .sum();
        if area2.abs() < 1e-3 {
            return None;
        }
        if area2 < 0.0 {
            c.reverse();
        }
        let len = |a: [f32; 2], b: [f32; 2]| ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        // Edges 0-1 + 2-3 versus 1-2 + 3-0: start on the longer pair.
        let long02 = len(c[0], c[1]) + len(c[2], c[3]) >= len(c[1], c[2]) + len(c[3], c[0]);
        let candidates: [usize; 2] = if long02 { [0, 2] } else { [1, 3] };
        // Of the two starts, take the one whose top edge points most to the
        // right (ties, i.e. an upright bay: the edge pointing up).
        let dir = |s: usize| {
            let (a, b) = (c[s], c[(s + 1) % 4]);
            (b[0] - a[0], b[1] - a[1])
        };
        let score = |s: usize| {
            let (dx, dy) = dir(s);
            let l = (dx * dx + dy * dy).sqrt().max(1e-6);
            (dx / l, -dy / l)
        };
        let (a, b) = (score(candidates[0]), score(candidates[1]));
        let start = if (a.0 - b.0).abs() > 1e-3 {
            if a.0 > b.0 {
                candidates[0]
            } else {
                candidates[1]
            }
        } else if a.1 >= b.1 {
            candidates[0]
        } else {
            candidates[1]
        };
        let corners = [
            c[start],
            c[(start + 1) % 4],
            c[(start + 2) % 4],
            c[(start + 3) % 4],
        ];
        Some(BayQuad { corners })
    }

    /// Bounding box `[x1, y1, x2, y2]`.
    pub fn bbox(&self) -> [f32; 4] {
        let mut b = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
        for p in &self.corners {
            b[0] = b[0].min(p[0]);
            b[1] = b[1].min(p[1]);
            b[2] = b[2].max(p[0]);
            b[3] = b[3].max(p[1]);
        }
        b
    }
}

/// Warps `quad` out of `img` into `out` (exactly [`PATCH_LEN`] floats, CHW,
/// RGB, /255). Corners are continuous pixel coordinates (a pixel's centre is
/// at +0.5), so an axis-aligned box warps exactly like a bilinear resize of
/// that box. Points outside the image take the nearest edge pixel.
pub fn warp_into(img: &ImageView, quad: &BayQuad, out: &mut [f32]) {
    assert_eq!(
        out.len(),
        PATCH_LEN,
        "a patch is 3x{PATCH_H}x{PATCH_W} floats"
    );
    let m = SquareToQuad::new(&Quad {
        pts: quad.corners.map(|c| Point::new(c[0], c[1])),
    });
    let plane = PATCH_W * PATCH_H;
    let (w, h, stride) = (img.width, img.height, img.stride);
    let (maxx, maxy) = ((w - 1) as f32, (h - 1) as f32);
    let data = img.data;
    const K: f32 = 1.0 / 255.0;
    let du = 1.0 / PATCH_W as f32;
    let (r_plane, rest) = out.split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    for j in 0..PATCH_H {
        let v = (j as f32 + 0.5) / PATCH_H as f32;
        // Along a row the numerators and the denominator are affine in u:
        // step them instead of evaluating the map per pixel.
        let u0 = 0.5 * du;
        let (mut nx, mut ny, mut dw) = (
            m.a * u0 + m.b * v + m.c,
            m.d * u0 + m.e * v + m.f,
            m.g * u0 + m.h * v + 1.0,
        );
        let (sx, sy, sw) = (m.a * du, m.d * du, m.g * du);
        let row = j * PATCH_W;
        for i in 0..PATCH_W {
            let inv = 1.0 / dw;
            let x = (nx * inv - 0.5).max(0.0).min(maxx);
            let y = (ny * inv - 0.5).max(0.0).min(maxy);
            nx += sx;
            ny += sy;
            dw += sw;
            let (x0, y0) = (x as usize, y as usize);
            let (fx, fy) = (x - x0 as f32, y - y0 as f32);
            let dx = if x0 + 1 < w { 3 } else { 0 };
            let dy = if y0 + 1 < h { stride } else { 0 };
            let i00 = y0 * stride + x0 * 3;
            let p00 = &data[i00..i00 + 3 + dx];
            let p01 = &data[i00 + dy..i00 + dy + 3 + dx];
            let (w00, w10, w01, w11) = (
                (1.0 - fx) * (1.0 - fy),
                fx * (1.0 - fy),
                (1.0 - fx) * fy,
                fx * fy,
            );
            let px = |c: usize| {
                (p00[c] as f32 * w00
                    + p00[c + dx] as f32 * w10
                    + p01[c] as f32 * w01
                    + p01[c + dx] as f32 * w11)
                    * K
            };
            let o = row + i;
            r_plane[o] = px(0);
            g_plane[o] = px(1);
            b_plane[o] = px(2);
        }
    }
}

/// A batch of patches in one contiguous `[N, 3, 32, 64]` tensor buffer.
#[derive(Debug, Clone, Default)]
pub struct PatchBatch {
    pub data: Vec<f32>,
}

impl PatchBatch {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            data: Vec::with_capacity(n * PATCH_LEN),
        }
    }
    pub fn len(&self) -> usize {
        self.data.len() / PATCH_LEN
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn clear(&mut self) {
        self.data.clear();
    }
    /// Appends one patch warped from `img`.
    pub fn push_warp(&mut self, img: &ImageView, quad: &BayQuad) {
        let start = self.data.len();
        self.data.resize(start + PATCH_LEN, 0.0);
        warp_into(img, quad, &mut self.data[start..]);
    }
    /// Appends a whole image as one patch (a patch file: rotated so its long side is horizontal).
    pub fn push_image(&mut self, img: &ImageView) {
        let (w, h) = (img.width as f32, img.height as f32);
        let poly = [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]];
        let quad = BayQuad::from_polygon(&poly).expect("a non-empty image is a valid quad");
        self.push_warp(img, &quad);
    }
    /// Patch `k` as `[c][y][x]` floats.
    pub fn patch(&self, k: usize) -> &[f32] {
        &self.data[k * PATCH_LEN..(k + 1) * PATCH_LEN]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::image::RgbImage;

    fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Vec<[f32; 2]> {
        vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    }

    #[test]
    fn a_horizontal_box_keeps_its_corner_order_whatever_the_input_order() {
        let want = [[10.0, 20.0], [50.0, 20.0], [50.0, 40.0], [10.0, 40.0]];
        assert_eq!(
            BayQuad::from_polygon(&rect(10.0, 20.0, 50.0, 40.0))
                .unwrap()
                .corners,
            want
        );
        // Counter-clockwise, starting elsewhere.
        let ccw = [[50.0, 40.0], [50.0, 20.0], [10.0, 20.0], [10.0, 40.0]];
        assert_eq!(BayQuad::from_polygon(&ccw).unwrap().corners, want);
        assert!(BayQuad::from_polygon(&[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]).is_none());
    }

    #[test]
    fn an_upright_bay_is_turned_so_its_long_axis_is_horizontal() {
        // 20 wide, 40 tall; the top 10 rows are red, the rest blue.
        let mut img = RgbImage::filled(40, 60, [0, 0, 255]);
        img.fill_rect(10, 10, 20, 10, [255, 0, 0]);
        let q = BayQuad::from_polygon(&rect(10.0, 10.0, 30.0, 50.0)).unwrap();
        // Top edge runs upwards along the left side: bottom-left → top-left.
        assert_eq!(q.corners[0], [10.0, 50.0]);
        assert_eq!(q.corners[1], [10.0, 10.0]);
        let mut out = vec![0.0; PATCH_LEN];
        warp_into(&img.view(), &q, &mut out);
        // The red end of the bay is now on the right quarter of the patch.
        let red = |x: usize, y: usize| out[y * PATCH_W + x];
        assert!(red(PATCH_W - 3, PATCH_H / 2) > 0.99);
        assert!(red(2, PATCH_H / 2) < 0.01);
    }

    #[test]
    fn an_axis_aligned_box_samples_like_a_resize() {
        // A horizontal gradient 0..255 across 64 px, in a 64x32 box: identity warp.
        let mut img = RgbImage::filled(100, 50, [0, 0, 0]);
        for y in 0..50 {
            for x in 0..100 {
                img.put(x, y, [(x * 2) as u8, y as u8, 7]);
            }
        }
        let q = BayQuad::from_polygon(&rect(10.0, 5.0, 74.0, 37.0)).unwrap();
        let mut b = PatchBatch::with_capacity(1);
        b.push_warp(&img.view(), &q);
        let p = b.patch(0);
        let plane = PATCH_W * PATCH_H;
        for (x, y) in [(0, 0), (17, 9), (63, 31)] {
            assert!((p[y * PATCH_W + x] * 255.0 - ((x + 10) * 2) as f32).abs() < 1e-3);
            assert!((p[plane + y * PATCH_W + x] * 255.0 - (y + 5) as f32).abs() < 1e-3);
            assert!((p[2 * plane + y * PATCH_W + x] * 255.0 - 7.0).abs() < 1e-3);
        }
    }

    #[test]
    fn a_perspective_quad_is_rectified_and_the_border_is_replicated() {
        // A trapezoid whose inside is white on black: the whole patch is white
        // away from the edges; a quad partly outside the image does not panic.
        let mut img = RgbImage::filled(80, 80, [0, 0, 0]);
        for y in 20..60 {
            let inset = (60 - y) / 4; // narrower at the top
            for x in 10 + inset..70 - inset {
                img.put(x, y, [255, 255, 255]);
            }
        }
        let q = BayQuad::from_polygon(&[[20.0, 20.0], [60.0, 20.0], [70.0, 60.0], [10.0, 60.0]])
            .unwrap();
        let mut out = vec![0.0; PATCH_LEN];
        warp_into(&img.view(), &q, &mut out);
        let inner: Vec<f32> = (4..PATCH_H - 4)
            .flat_map(|y| (6..PATCH_W - 6).map(move |x| (x, y)))
            .map(|(x, y)| out[y * PATCH_W + x])
            .collect();
        assert!(
            inner.iter().all(|&v| v > 0.9),
            "min {}",
            inner.iter().cloned().fold(1.0, f32::min)
        );
        let off = BayQuad::from_polygon(&rect(-20.0, -20.0, 200.0, 30.0)).unwrap();
        warp_into(&img.view(), &off, &mut out);
    }

    #[test]
    fn other_polygons_use_their_minimum_area_rectangle() {
        let hex = [
            [0.0, 10.0],
            [20.0, 0.0],
            [60.0, 0.0],
            [80.0, 10.0],
            [60.0, 20.0],
            [20.0, 20.0],
        ];
        let q = BayQuad::from_polygon(&hex).unwrap();
        let b = q.bbox();
        assert!(
            (b[0] - 0.0).abs() < 1e-3 && (b[2] - 80.0).abs() < 1e-3 && (b[3] - 20.0).abs() < 1e-3
        );
        let top = ((q.corners[1][0] - q.corners[0][0]).powi(2)
            + (q.corners[1][1] - q.corners[0][1]).powi(2))
        .sqrt();
        assert!((top - 80.0).abs() < 1e-3, "top edge {top}");
    }

    #[test]
    fn patch_images_are_turned_long_side_horizontal() {
        let img = RgbImage::filled(29, 69, [255, 0, 0]);
        let mut b = PatchBatch::default();
        b.push_image(&img.view());
        assert_eq!(b.len(), 1);
        assert!(b.patch(0)[..PATCH_W * PATCH_H]
            .iter()
            .all(|&v| (v - 1.0).abs() < 1e-6));
    }
}
