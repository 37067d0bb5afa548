//! Geometry primitives shared by all stages: points, axis-aligned corner boxes and
//! four-point quads (rotated text boxes). All coordinates are `f32` pixels, x to the right,
//! y down. Corner boxes are continuous: a box covering pixels 0..=9 is `x1 = 0, x2 = 10`.

use serde::{Deserialize, Serialize};

/// A 2-D point in pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }

    /// Euclidean distance to `o`.
    pub fn dist(self, o: Point) -> f32 {
        ((self.x - o.x).powi(2) + (self.y - o.y).powi(2)).sqrt()
    }
}

/// Axis-aligned box given by its corners (`x1 <= x2`, `y1 <= y2` when valid).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BoxF {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BoxF {
    pub const fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self { x1, y1, x2, y2 }
    }

    /// From centre / size, the layout YOLO heads emit.
    pub fn from_cxcywh(cx: f32, cy: f32, w: f32, h: f32) -> Self {
        Self::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)
    }

    /// Width; 0 for an inverted box (never negative, so areas stay sane).
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn center(&self) -> Point {
        Point::new((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }

    /// True when the box has positive area and finite coordinates.
    pub fn is_valid(&self) -> bool {
        [self.x1, self.y1, self.x2, self.y2]
            .iter()
            .all(|v| v.is_finite())
            && self.x2 > self.x1
            && self.y2 > self.y1
    }

    /// Intersection box (may be empty: width/height then report 0).
    pub fn intersection(&self, o: &BoxF) -> BoxF {
        BoxF::new(
            self.x1.max(o.x1),
            self.y1.max(o.y1),
            self.x2.min(o.x2),
            self.y2.min(o.y2),
        )
    }

    /// Intersection over union in `[0, 1]`; 0 when either box is empty.
    pub fn iou(&self, o: &BoxF) -> f32 {
        let inter = self.intersection(o).area();
        if inter <= 0.0 {
            return 0.0;
        }
        let union = self.area() + o.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// Clamp to the image rectangle `[0, w] x [0, h]`.
    pub fn clip(&self, w: f32, h: f32) -> BoxF {
        BoxF::new(
            self.x1.clamp(0.0, w),
            self.y1.clamp(0.0, h),
            self.x2.clamp(0.0, w),
            self.y2.clamp(0.0, h),
        )
    }

    /// Grow each side by `frac` of the box size (negative shrinks); used to give the
    /// reader some margin around a tight plate box.
    pub fn expand(&self, frac_x: f32, frac_y: f32) -> BoxF {
        let dx = self.width() * frac_x;
        let dy = self.height() * frac_y;
        BoxF::new(self.x1 - dx, self.y1 - dy, self.x2 + dx, self.y2 + dy)
    }

    /// Corners as a quad, clockwise from top-left.
    pub fn to_quad(&self) -> Quad {
        Quad::new([
            Point::new(self.x1, self.y1),
            Point::new(self.x2, self.y1),
            Point::new(self.x2, self.y2),
            Point::new(self.x1, self.y2),
        ])
    }
}

/// Four-point polygon, the shape of a (possibly rotated) text box. The DB post-processing
/// emits quads ordered top-left, top-right, bottom-right, bottom-left, which is what the
/// perspective crop expects (`pts[0]→pts[1]` is the text baseline direction).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Quad {
    pub pts: [Point; 4],
}

impl Quad {
    pub const fn new(pts: [Point; 4]) -> Self {
        Self { pts }
    }

    /// Axis-aligned bounding box.
    pub fn bbox(&self) -> BoxF {
        let mut b = BoxF::new(
            f32::INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        );
        for p in &self.pts {
            b.x1 = b.x1.min(p.x);
            b.y1 = b.y1.min(p.y);
            b.x2 = b.x2.max(p.x);
            b.y2 = b.y2.max(p.y);
        }
        b
    }

    /// Polygon area (shoelace), always non-negative.
    pub fn area(&self) -> f32 {
        polygon_area(&self.pts).abs()
    }

    /// Text-direction length: the longer of the top and bottom edges.
    pub fn width(&self) -> f32 {
        self.pts[0]
            .dist(self.pts[1])
            .max(self.pts[2].dist(self.pts[3]))
    }

    /// Across-text length: the longer of the left and right edges.
    pub fn height(&self) -> f32 {
        self.pts[0]
            .dist(self.pts[3])
            .max(self.pts[1].dist(self.pts[2]))
    }

    /// `width / height`; 0 for a degenerate quad.
    pub fn aspect(&self) -> f32 {
        let h = self.height();
        if h > 0.0 {
            self.width() / h
        } else {
            0.0
        }
    }

    pub fn center(&self) -> Point {
        let (sx, sy) = self
            .pts
            .iter()
            .fold((0.0, 0.0), |(sx, sy), p| (sx + p.x, sy + p.y));
        Point::new(sx / 4.0, sy / 4.0)
    }

    /// Reorder the corners to top-left, top-right, bottom-right, bottom-left, by the same
    /// rule PP-OCR uses (two left-most points by x, each pair split by y), so crops
    /// downstream see the text upright for boxes rotated less than 45°.
    pub fn ordered(&self) -> Quad {
        let mut p = self.pts;
        p.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
        let (tl, bl) = if p[0].y <= p[1].y {
            (p[0], p[1])
        } else {
            (p[1], p[0])
        };
        let (tr, br) = if p[2].y <= p[3].y {
            (p[2], p[3])
        } else {
            (p[3], p[2])
        };
        Quad::new([tl, tr, br, bl])
    }

    /// Apply `f` to each corner (e.g. map back through a letterbox).
    pub fn map(&self, mut f: impl FnMut(Point) -> Point) -> Quad {
        Quad::new(self.pts.map(&mut f))
    }

    /// Clamp every corner to `[0, w] x [0, h]`.
    pub fn clip(&self, w: f32, h: f32) -> Quad {
        self.map(|p| Point::new(p.x.clamp(0.0, w), p.y.clamp(0.0, h)))
    }
}

/// Signed shoelace area (positive for counter-clockwise in y-up axes, i.e. clockwise on
/// screen).
pub fn polygon_area(pts: &[Point]) -> f32 {
    if pts.len() < 3 {
        return 0.0;
    }
    let mut s = 0.0f64;
    for i in 0..pts.len() {
        let a = pts[i];
        let b = pts[(i + 1) % pts.len()];
        s += a.x as f64 * b.y as f64 - b.x as f64 * a.y as f64;
    }
    (s / 2.0) as f32
}

/// Polygon perimeter.
pub fn polygon_perimeter(pts: &[Point]) -> f32 {
    if pts.len() < 2 {
        return 0.0;
    }
    (0..pts.len())
        .map(|i| pts[i].dist(pts[(i + 1) % pts.len()]))
        .sum()
}

/// Even-odd point-in-polygon test (ray casting). Points exactly on an edge may land
/// either side; zones are drawn by people, so that does not matter.
pub fn point_in_polygon(p: Point, poly: &[Point]) -> bool {
    let n = poly.len();
    if n < 3 {
        return false;
    }
    let mut inside = false;
    let mut j = n - 1;
    for i in 0..n {
        let (a, b) = (poly[i], poly[j]);
        if (a.y > p.y) != (b.y > p.y) {
            let x_cross = a.x + (p.y - a.y) * (b.x - a.x) / (b.y - a.y);
            if p.x < x_cross {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn iou_basic() {
        let a = BoxF::new(0.0, 0.0, 10.0, 10.0);
        let b = BoxF::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(a.iou(&BoxF::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(BoxF::new(5.0, 5.0, 1.0, 1.0).area(), 0.0);
    }

    #[test]
    fn clip_and_cxcywh() {
        let b = BoxF::from_cxcywh(5.0, 5.0, 20.0, 4.0).clip(12.0, 100.0);
        assert_eq!(b, BoxF::new(0.0, 3.0, 12.0, 7.0));
    }

    #[test]
    fn quad_bbox_order_aspect() {
        let q = Quad::new([
            Point::new(10.0, 12.0),
            Point::new(0.0, 2.0),
            Point::new(2.0, 0.0),
            Point::new(12.0, 10.0),
        ]);
        assert_eq!(q.bbox(), BoxF::new(0.0, 0.0, 12.0, 12.0));
        let o = q.ordered();
        // PP-OCR rule: left pair split by y gives tl/bl, right pair gives tr/br.
        assert_eq!(
            o.pts,
            [
                Point::new(2.0, 0.0),
                Point::new(12.0, 10.0),
                Point::new(10.0, 12.0),
                Point::new(0.0, 2.0),
            ]
        );
        let r = BoxF::new(0.0, 0.0, 40.0, 10.0).to_quad();
        assert!((r.aspect() - 4.0).abs() < 1e-6);
        assert!((r.area() - 400.0).abs() < 1e-3);
        assert!((polygon_perimeter(&r.pts) - 100.0).abs() < 1e-3);
    }

    #[test]
    fn pip() {
        let tri = [
            Point::new(0.0, 0.0),
            Point::new(10.0, 0.0),
            Point::new(0.0, 10.0),
        ];
        assert!(point_in_polygon(Point::new(2.0, 2.0), &tri));
        assert!(!point_in_polygon(Point::new(8.0, 8.0), &tri));
        assert!(!point_in_polygon(Point::new(-1.0, 2.0), &tri));
    }

    proptest! {
        #[test]
        fn iou_symmetric_bounded(a in 0f32..100., b in 0f32..100., w in 1f32..50., h in 1f32..50.,
                                 c in 0f32..100., d in 0f32..100., w2 in 1f32..50., h2 in 1f32..50.) {
            let x = BoxF::new(a, b, a + w, b + h);
            let y = BoxF::new(c, d, c + w2, d + h2);
            let i1 = x.iou(&y);
            let i2 = y.iou(&x);
            prop_assert!((i1 - i2).abs() < 1e-5);
            prop_assert!((0.0..=1.0 + 1e-6).contains(&i1));
        }
    }
}
