//! Perspective crop of a text quad into an upright RGB strip for the reader (PP-OCR's
//! `get_rotate_crop_image`): the strip is `max(top, bottom)` wide and `max(left, right)`
//! tall, sampled bilinearly with edge replication.

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
/// (vertical text), as PP-OCR does. Returns `None` for a degenerate quad.
pub fn crop_quad(img: &ImageView, quad: &Quad, rotate_tall: bool) -> Option<RgbImage> {
    let w = quad.width() as usize;
    let h = quad.height() as usize;
    if w == 0 || h == 0 {
        return None;
    }
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
    if rotate_tall && h as f32 / w as f32 >= 1.5 {
        // numpy rot90 (counter-clockwise): new(i, j) = old(j, w - 1 - i), size h x w → w x h.
        let mut r = RgbImage {
            data: vec![0; w * h * 3],
            width: h,
            height: w,
        };
        for i in 0..w {
            for j in 0..h {
                let s = (j * w + (w - 1 - i)) * 3;
                let d = (i * h + j) * 3;
                r.data[d..d + 3].copy_from_slice(&out.data[s..s + 3]);
            }
        }
        out = r;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::geometry::BoxF;

    #[test]
    fn axis_aligned_crop_matches_pixels() {
        let mut img = RgbImage::filled(20, 10, [0, 0, 0]);
        img.fill_rect(5, 2, 8, 4, [200, 100, 50]);
        let q = BoxF::new(5.0, 2.0, 13.0, 6.0).to_quad();
        let c = crop_quad(&img.view(), &q, true).unwrap();
        assert_eq!((c.width, c.height), (8, 4));
        assert!(c.data.chunks(3).all(|p| p == [200, 100, 50]));
    }

    #[test]
    fn rotated_quad_is_straightened() {
        // A 20x4 bright bar rotated 90° (vertical) read from a 45°-free layout: quad corners
        // listed so that tl→tr runs downwards; the crop must be 20 wide and uniformly bright.
        let mut img = RgbImage::filled(30, 30, [0, 0, 0]);
        img.fill_rect(10, 5, 4, 20, [255, 255, 255]);
        let q = Quad::new([
            Point::new(14.0, 5.0),
            Point::new(14.0, 25.0),
            Point::new(10.0, 25.0),
            Point::new(10.0, 5.0),
        ]);
        let c = crop_quad(&img.view(), &q, false).unwrap();
        assert_eq!((c.width, c.height), (20, 4));
        // Interior rows are white (edges may blend with the border).
        assert!(c.data[(20 + 1) * 3..(20 + 19) * 3].iter().all(|&v| v > 200));
    }

    #[test]
    fn tall_crop_rotates_and_expand() {
        let img = RgbImage::filled(10, 30, [9, 9, 9]);
        let q = BoxF::new(0.0, 0.0, 4.0, 20.0).to_quad();
        let c = crop_quad(&img.view(), &q, true).unwrap();
        assert_eq!((c.width, c.height), (20, 4));
        let e = expand_quad(&BoxF::new(10.0, 10.0, 50.0, 20.0).to_quad(), 0.1);
        let b = e.bbox();
        assert!((b.x1 - 9.0).abs() < 1e-4 && (b.y2 - 21.0).abs() < 1e-4);
    }
}
