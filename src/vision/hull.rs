//! Convex hull and minimum-area rotated rectangle (OpenCV `convexHull` + `minAreaRect`
//! equivalents) for the DB text-detector post-processing.

use super::geometry::{Point, Quad};

/// Convex hull by Andrew's monotone chain, counter-clockwise in y-up axes (clockwise on
/// screen), without collinear points. Input order does not matter.
pub fn convex_hull(points: &[Point]) -> Vec<Point> {
    let mut pts: Vec<Point> = points.to_vec();
    pts.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let cross = |o: Point, a: Point, b: Point| -> f64 {
        (a.x as f64 - o.x as f64) * (b.y as f64 - o.y as f64)
            - (a.y as f64 - o.y as f64) * (b.x as f64 - o.x as f64)
    };
    let mut hull: Vec<Point> = Vec::with_capacity(pts.len() * 2);
    for &p in &pts {
        while hull.len() >= 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
            hull.pop();
        }
        hull.push(p);
    }
    let lower = hull.len() + 1;
    for &p in pts.iter().rev().skip(1) {
        while hull.len() >= lower && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
            hull.pop();
        }
        hull.push(p);
    }
    hull.pop();
    hull
}

/// A rotated rectangle: centre, unit axis `u` (along `width`), and the two side lengths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedRect {
    pub center: Point,
    /// Unit vector of the `width` side; the `height` side is `u` rotated by +90°.
    pub u: Point,
    pub width: f32,
    pub height: f32,
}

impl RotatedRect {
    pub fn min_side(&self) -> f32 {
        self.width.min(self.height)
    }

    pub fn area(&self) -> f32 {
        self.width * self.height
    }

    pub fn perimeter(&self) -> f32 {
        2.0 * (self.width + self.height)
    }

    /// Angle of the `width` axis in degrees, in `(-90, 90]`.
    pub fn angle_deg(&self) -> f32 {
        let mut a = self.u.y.atan2(self.u.x).to_degrees();
        if a <= -90.0 {
            a += 180.0;
        } else if a > 90.0 {
            a -= 180.0;
        }
        a
    }

    /// Corners (unordered cyclic order); use [`Quad::ordered`] for tl, tr, br, bl.
    pub fn corners(&self) -> Quad {
        let v = Point::new(-self.u.y, self.u.x);
        let (hw, hh) = (self.width / 2.0, self.height / 2.0);
        let c = self.center;
        let at =
            |s: f32, t: f32| Point::new(c.x + s * self.u.x + t * v.x, c.y + s * self.u.y + t * v.y);
        Quad::new([at(-hw, -hh), at(hw, -hh), at(hw, hh), at(-hw, hh)])
    }

    /// Offset every side outward by `d`. For a rectangle this is exactly the minimum-area
    /// rectangle of the round-joined polygon offset that PP-OCR's "unclip" computes with
    /// pyclipper, so no polygon clipping library is needed.
    pub fn expanded(&self, d: f32) -> RotatedRect {
        RotatedRect {
            width: (self.width + 2.0 * d).max(0.0),
            height: (self.height + 2.0 * d).max(0.0),
            ..*self
        }
    }

    /// DB "unclip": expand by `area * ratio / perimeter` (the inverse of the shrink applied
    /// to text regions at training time).
    pub fn unclip(&self, ratio: f32) -> RotatedRect {
        let p = self.perimeter();
        if p <= 0.0 {
            return *self;
        }
        self.expanded(self.area() * ratio / p)
    }

    /// Whether `p` lies inside or on the rectangle (with tolerance `eps` pixels).
    pub fn contains(&self, p: Point, eps: f32) -> bool {
        let (dx, dy) = (p.x - self.center.x, p.y - self.center.y);
        let s = dx * self.u.x + dy * self.u.y;
        let t = -dx * self.u.y + dy * self.u.x;
        s.abs() <= self.width / 2.0 + eps && t.abs() <= self.height / 2.0 + eps
    }
}

/// Minimum-area enclosing rectangle by rotating calipers over the hull edges (the optimal
/// rectangle has a side collinear with a hull edge). `None` for an empty input; one or two
/// distinct points give a zero-height rectangle.
pub fn min_area_rect(points: &[Point]) -> Option<RotatedRect> {
    let hull = convex_hull(points);
    match hull.len() {
        0 => None,
        1 => Some(RotatedRect {
            center: hull[0],
            u: Point::new(1.0, 0.0),
            width: 0.0,
            height: 0.0,
        }),
        _ => {
            let n = hull.len();
            let mut best: Option<(f64, RotatedRect)> = None;
            for i in 0..n {
                let (a, b) = (hull[i], hull[(i + 1) % n]);
                let (ex, ey) = (b.x as f64 - a.x as f64, b.y as f64 - a.y as f64);
                let len = (ex * ex + ey * ey).sqrt();
                if len < 1e-12 {
                    continue;
                }
                let (ux, uy) = (ex / len, ey / len);
                let (mut smin, mut smax, mut tmin, mut tmax) = (
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                );
                for p in &hull {
                    let (px, py) = (p.x as f64 - a.x as f64, p.y as f64 - a.y as f64);
                    let s = px * ux + py * uy;
                    let t = -px * uy + py * ux;
                    smin = smin.min(s);
                    smax = smax.max(s);
                    tmin = tmin.min(t);
                    tmax = tmax.max(t);
                }
                let area = (smax - smin) * (tmax - tmin);
                if best.as_ref().is_none_or(|(ba, _)| area < *ba - 1e-9) {
                    let (sc, tc) = ((smin + smax) / 2.0, (tmin + tmax) / 2.0);
                    let cx = a.x as f64 + sc * ux - tc * uy;
                    let cy = a.y as f64 + sc * uy + tc * ux;
                    best = Some((
                        area,
                        RotatedRect {
                            center: Point::new(cx as f32, cy as f32),
                            u: Point::new(ux as f32, uy as f32),
                            width: (smax - smin) as f32,
                            height: (tmax - tmin) as f32,
                        },
                    ));
                }
            }
            best.map(|(_, r)| r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hull_square_with_interior() {
        let pts: Vec<Point> = (0..5)
            .flat_map(|x| (0..5).map(move |y| Point::new(x as f32, y as f32)))
            .collect();
        let h = convex_hull(&pts);
        assert_eq!(h.len(), 4);
    }

    #[test]
    fn rect_axis_and_rotated() {
        let pts = [
            Point::new(0.0, 0.0),
            Point::new(10.0, 0.0),
            Point::new(10.0, 4.0),
            Point::new(0.0, 4.0),
            Point::new(5.0, 2.0),
        ];
        let r = min_area_rect(&pts).unwrap();
        assert!((r.area() - 40.0).abs() < 1e-3);
        assert!((r.center.x - 5.0).abs() < 1e-4 && (r.center.y - 2.0).abs() < 1e-4);

        let (c, s) = (30f32.to_radians().cos(), 30f32.to_radians().sin());
        let rot: Vec<Point> = pts
            .iter()
            .map(|p| Point::new(100.0 + p.x * c - p.y * s, 50.0 + p.x * s + p.y * c))
            .collect();
        let r = min_area_rect(&rot).unwrap();
        assert!((r.area() - 40.0).abs() < 1e-2, "{r:?}");
        assert!((r.width.max(r.height) - 10.0).abs() < 1e-3);
        let a = r.angle_deg();
        assert!((a - 30.0).abs() < 1e-2 || (a + 60.0).abs() < 1e-2, "{a}");
        // Unclip of a 10x4 rect at 1.5: d = 40*1.5/28.
        let u = r.unclip(1.5);
        let d = 40.0 * 1.5 / 28.0;
        assert!((u.min_side() - (4.0 + 2.0 * d)).abs() < 1e-3);
        assert!(r.contains(Point::new(100.0, 50.0), 1e-3));
        assert!(!r.contains(Point::new(90.0, 50.0), 1e-3));
    }

    #[test]
    fn degenerate_inputs() {
        assert!(min_area_rect(&[]).is_none());
        let r = min_area_rect(&[Point::new(1.0, 1.0), Point::new(1.0, 1.0)]).unwrap();
        assert_eq!(r.area(), 0.0);
        let r = min_area_rect(&[Point::new(0.0, 0.0), Point::new(3.0, 4.0)]).unwrap();
        assert!((r.width.max(r.height) - 5.0).abs() < 1e-5 && r.min_side() < 1e-5);
    }

    proptest! {
        #[test]
        fn rect_contains_all_points(pts in proptest::collection::vec((0f32..100., 0f32..100.), 3..40)) {
            let pts: Vec<Point> = pts.into_iter().map(|(x, y)| Point::new(x, y)).collect();
            let r = min_area_rect(&pts).unwrap();
            for p in &pts {
                prop_assert!(r.contains(*p, 1e-2));
            }
            // Never larger than the axis-aligned bounding box.
            let (mut x1, mut y1, mut x2, mut y2) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
            for p in &pts { x1 = x1.min(p.x); y1 = y1.min(p.y); x2 = x2.max(p.x); y2 = y2.max(p.y); }
            prop_assert!(r.area() <= (x2 - x1) * (y2 - y1) + 1e-2);
        }
    }
}
