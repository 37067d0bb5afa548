//! DB (Differentiable Binarization) text-detector post-processing, as in PP-OCR:
//! probability map → binary map → connected components → minimum-area rectangle →
//! score filter → "unclip" expansion → frame coordinates.
//!
//! Differences from the Python reference, all deliberate:
//! - components are 8-connected pixel sets instead of OpenCV contours (same outer shape;
//!   holes are ignored rather than producing extra boxes);
//! - the hull is built from each row's left-most and right-most pixel centres (enough for a
//!   convex hull, and the pixel-centre convention matches OpenCV contours so `unclip_ratio`
//!   keeps its calibrated meaning);
//! - unclip is computed analytically on the rectangle (see [`RotatedRect::expanded`]).

use serde::{Deserialize, Serialize};

use super::error::{Result, VisionError};
use super::geometry::{Point, Quad};
use super::hull::{min_area_rect, RotatedRect};
use super::letterbox::Letterbox;

/// How a candidate's score is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScoreMode {
    /// Mean probability inside the (pre-unclip) rotated rectangle: PP-OCR's "fast" mode,
    /// which `box_thresh` values in PP-OCR configs are calibrated for.
    Box,
    /// Mean probability over the component's own pixels (always ≥ `thresh`).
    Component,
}

/// Post-processing parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DbParams {
    /// Binarisation threshold on the probability map.
    pub thresh: f32,
    /// Minimum candidate score.
    pub box_thresh: f32,
    /// Expansion: distance = area × ratio / perimeter.
    pub unclip_ratio: f32,
    /// At most this many components are examined (scan order).
    pub max_candidates: usize,
    /// Minimum rectangle side (map pixels) before unclip; after unclip `min_size + 2`.
    pub min_size: f32,
    /// 2×2 dilation of the binary map (RapidOCR default on): joins characters split by a
    /// one-pixel gap.
    pub dilate: bool,
    pub score_mode: ScoreMode,
}

impl Default for DbParams {
    fn default() -> Self {
        Self {
            thresh: 0.3,
            box_thresh: 0.6,
            unclip_ratio: 1.5,
            max_candidates: 1000,
            min_size: 3.0,
            dilate: false,
            score_mode: ScoreMode::Box,
        }
    }
}

impl DbParams {
    /// RapidOCR 3.x detector defaults (box_thresh 0.5, unclip 1.6, dilation on).
    pub fn rapidocr() -> Self {
        Self {
            box_thresh: 0.5,
            unclip_ratio: 1.6,
            dilate: true,
            ..Self::default()
        }
    }
}

/// A detected text region in frame coordinates, corners ordered tl, tr, br, bl.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TextBox {
    pub quad: Quad,
    pub score: f32,
}

fn binarize(prob: &[f32], w: usize, h: usize, p: &DbParams) -> Vec<bool> {
    let mut bin: Vec<bool> = prob.iter().map(|&v| v > p.thresh).collect();
    if p.dilate {
        // OpenCV 2x2 kernel, anchor (1,1): set if any of (x-1..=x, y-1..=y) is set.
        // Iterate backwards so reads see undilated neighbours.
        for y in (0..h).rev() {
            for x in (0..w).rev() {
                let i = y * w + x;
                let mut v = bin[i];
                if x > 0 {
                    v |= bin[i - 1];
                }
                if y > 0 {
                    v |= bin[i - w] || (x > 0 && bin[i - w - 1]);
                }
                bin[i] = v;
            }
        }
    }
    bin
}

/// Mean of `prob` over the pixel centres inside `r` (integer-grid fill, like `fillPoly`).
fn box_score(prob: &[f32], w: usize, h: usize, r: &RotatedRect) -> Option<f32> {
    let bb = r.corners().bbox();
    let x0 = (bb.x1.floor().max(0.0) as usize).min(w - 1);
    let x1 = (bb.x2.ceil().max(0.0) as usize).min(w - 1);
    let y0 = (bb.y1.floor().max(0.0) as usize).min(h - 1);
    let y1 = (bb.y2.ceil().max(0.0) as usize).min(h - 1);
    let (mut sum, mut n) = (0.0f64, 0usize);
    for y in y0..=y1 {
        for x in x0..=x1 {
            if r.contains(Point::new(x as f32, y as f32), 0.5) {
                sum += prob[y * w + x] as f64;
                n += 1;
            }
        }
    }
    (n > 0).then(|| (sum / n as f64) as f32)
}

/// PP-OCR's reading order: top to bottom by the first corner, then boxes whose first
/// corners are within 10 px vertically are ordered left to right.
pub fn sort_reading_order(boxes: &mut [TextBox]) {
    boxes.sort_by(|a, b| {
        a.quad.pts[0]
            .y
            .total_cmp(&b.quad.pts[0].y)
            .then(a.quad.pts[0].x.total_cmp(&b.quad.pts[0].x))
    });
    for i in 0..boxes.len().saturating_sub(1) {
        for j in (0..=i).rev() {
            let (a, b) = (boxes[j].quad.pts[0], boxes[j + 1].quad.pts[0]);
            if (b.y - a.y).abs() < 10.0 && b.x < a.x {
                boxes.swap(j, j + 1);
            } else {
                break;
            }
        }
    }
}

/// Turn a DB probability map (`height x width`, row-major, the model output `[1,1,H,W]`)
/// into text boxes in frame coordinates. `lb` is the mapping used to build the detector
/// input (its `dst` size must equal the map size).
pub fn db_postprocess(
    prob: &[f32],
    width: usize,
    height: usize,
    lb: &Letterbox,
    params: &DbParams,
) -> Result<Vec<TextBox>> {
    if width == 0 || height == 0 {
        return Err(VisionError::InvalidDimensions(
            "empty probability map".into(),
        ));
    }
    if prob.len() < width * height {
        return Err(VisionError::BufferTooSmall {
            what: "probability map",
            need: width * height,
            got: prob.len(),
        });
    }
    if lb.dst_w != width || lb.dst_h != height {
        return Err(VisionError::Shape(format!(
            "map {width}x{height} but letterbox target {}x{}",
            lb.dst_w, lb.dst_h
        )));
    }
    let bin = binarize(prob, width, height, params);
    let mut visited = vec![false; width * height];
    let mut stack: Vec<usize> = Vec::new();
    let mut pixels: Vec<usize> = Vec::new();
    // Per-row extremes of the current component, reset through `rows`.
    let mut row_min = vec![usize::MAX; height];
    let mut row_max = vec![0usize; height];
    let mut rows: Vec<usize> = Vec::new();
    let mut hull_pts: Vec<Point> = Vec::new();
    let mut out = Vec::new();
    let mut candidates = 0usize;

    for start in 0..width * height {
        if !bin[start] || visited[start] {
            continue;
        }
        if candidates >= params.max_candidates {
            break;
        }
        candidates += 1;
        // Flood fill (8-connectivity).
        pixels.clear();
        stack.push(start);
        visited[start] = true;
        while let Some(i) = stack.pop() {
            pixels.push(i);
            let (x, y) = (i % width, i / width);
            for dy in -1i32..=1 {
                for dx in -1i32..=1 {
                    let (nx, ny) = (x as i32 + dx, y as i32 + dy);
                    if nx < 0 || ny < 0 || nx >= width as i32 || ny >= height as i32 {
                        continue;
                    }
                    let j = ny as usize * width + nx as usize;
                    if bin[j] && !visited[j] {
                        visited[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        rows.clear();
        for &i in &pixels {
            let (x, y) = (i % width, i / width);
            if row_min[y] == usize::MAX {
                rows.push(y);
            }
            row_min[y] = row_min[y].min(x);
            row_max[y] = row_max[y].max(x);
        }
        hull_pts.clear();
        for &y in &rows {
            hull_pts.push(Point::new(row_min[y] as f32, y as f32));
            hull_pts.push(Point::new(row_max[y] as f32, y as f32));
            row_min[y] = usize::MAX;
            row_max[y] = 0;
        }
        let Some(rect) = min_area_rect(&hull_pts) else {
            continue;
        };
        if rect.min_side() < params.min_size {
            continue;
        }
        let comp_mean =
            || (pixels.iter().map(|&i| prob[i] as f64).sum::<f64>() / pixels.len() as f64) as f32;
        let score = match params.score_mode {
            ScoreMode::Box => box_score(prob, width, height, &rect).unwrap_or_else(comp_mean),
            ScoreMode::Component => comp_mean(),
        };
        if score < params.box_thresh {
            continue;
        }
        let grown = rect.unclip(params.unclip_ratio);
        if grown.min_side() < params.min_size + 2.0 {
            continue;
        }
        let quad = lb.undo_quad(&grown.corners()).ordered();
        // PP-OCR drops boxes of 3 px or less in frame coordinates after clipping.
        if quad.pts[0].dist(quad.pts[1]) <= 3.0 || quad.pts[0].dist(quad.pts[3]) <= 3.0 {
            continue;
        }
        out.push(TextBox { quad, score });
    }
    sort_reading_order(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::letterbox::PadAlign;

    const W: usize = 200;
    const H: usize = 100;

    fn paint(map: &mut [f32], r: &RotatedRect, v: f32) {
        for y in 0..H {
            for x in 0..W {
                if r.contains(Point::new(x as f32, y as f32), 0.0) {
                    map[y * W + x] = v;
                }
            }
        }
    }

    fn fill(map: &mut [f32], x0: usize, y0: usize, w: usize, h: usize, v: f32) {
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                map[y * W + x] = v;
            }
        }
    }

    /// Two axis-aligned rectangles, one rotated by 30°, one faint blob and one speck.
    fn fixture() -> Vec<f32> {
        let mut m = vec![0.05f32; W * H];
        fill(&mut m, 20, 10, 40, 20, 0.9); // pixels 20..=59 x 10..=29
        fill(&mut m, 20, 60, 30, 10, 0.8);
        let a = 30f32.to_radians();
        let rot = RotatedRect {
            center: Point::new(140.0, 55.0),
            u: Point::new(a.cos(), a.sin()),
            width: 60.0,
            height: 16.0,
        };
        paint(&mut m, &rot, 0.95);
        fill(&mut m, 80, 85, 20, 8, 0.4); // above thresh, below box_thresh
        fill(&mut m, 5, 90, 2, 2, 0.99); // too small
        m
    }

    #[test]
    fn finds_boxes_and_maps_to_frame() {
        let map = fixture();
        // The frame was 400x200, the map is half size.
        let lb = Letterbox::fit(400, 200, W, H, PadAlign::TopLeft);
        let boxes = db_postprocess(&map, W, H, &lb, &DbParams::default()).unwrap();
        assert_eq!(boxes.len(), 3, "{boxes:#?}");

        // First in reading order: the top-left rectangle. Pixel-centre rect 39x19,
        // d = 741*1.5/116 → 57.16 x 37.16 map px, centre (39.5,19.5) → frame x2.
        let b = &boxes[0];
        assert!(b.score > 0.85);
        let d = 39.0 * 19.0 * 1.5 / 116.0;
        let bb = b.quad.bbox();
        assert!((bb.x1 - 2.0 * (20.0 - d)).abs() < 0.05, "{bb:?}");
        assert!((bb.y1 - 2.0 * (10.0 - d)).abs() < 0.05, "{bb:?}");
        assert!((bb.x2 - 2.0 * (59.0 + d)).abs() < 0.05, "{bb:?}");
        assert!((bb.y2 - 2.0 * (29.0 + d)).abs() < 0.05, "{bb:?}");
        assert!(
            (b.quad.width() / b.quad.height() - (39.0 + 2.0 * d) / (19.0 + 2.0 * d)).abs() < 0.01
        );

        // The rotated one keeps its angle and aspect.
        let r = boxes.iter().find(|b| b.quad.center().x > 200.0).unwrap();
        let (p0, p1) = (r.quad.pts[0], r.quad.pts[1]);
        let angle = (p1.y - p0.y).atan2(p1.x - p0.x).to_degrees();
        assert!((angle - 30.0).abs() < 2.0, "angle {angle}");
        assert!(r.quad.aspect() > 2.0);
        let c = r.quad.center();
        assert!(
            (c.x - 280.0).abs() < 2.0 && (c.y - 110.0).abs() < 2.0,
            "{c:?}"
        );

        // Lower rectangle is last (reading order by top-left corner).
        assert!(boxes[2].quad.center().y > boxes[0].quad.center().y);
    }

    #[test]
    fn thresholds_and_modes() {
        let map = fixture();
        let lb = Letterbox::fit(W, H, W, H, PadAlign::TopLeft);
        let low = DbParams {
            box_thresh: 0.3,
            ..DbParams::default()
        };
        assert_eq!(db_postprocess(&map, W, H, &lb, &low).unwrap().len(), 4);
        let comp = DbParams {
            score_mode: ScoreMode::Component,
            ..DbParams::default()
        };
        let boxes = db_postprocess(&map, W, H, &lb, &comp).unwrap();
        assert_eq!(boxes.len(), 3);
        assert!((boxes[0].score - 0.9).abs() < 1e-5);
        let few = DbParams {
            max_candidates: 1,
            ..DbParams::default()
        };
        assert_eq!(db_postprocess(&map, W, H, &lb, &few).unwrap().len(), 1);
        assert!(db_postprocess(&map[..10], W, H, &lb, &low).is_err());
    }

    #[test]
    fn dilation_joins_split_characters() {
        let mut m = vec![0.0f32; W * H];
        fill(&mut m, 10, 10, 10, 10, 0.9);
        fill(&mut m, 21, 10, 10, 10, 0.9); // one-pixel gap at x = 20
        let lb = Letterbox::fit(W, H, W, H, PadAlign::TopLeft);
        let p = DbParams {
            box_thresh: 0.5,
            ..DbParams::default()
        };
        assert_eq!(db_postprocess(&m, W, H, &lb, &p).unwrap().len(), 2);
        let pd = DbParams { dilate: true, ..p };
        assert_eq!(db_postprocess(&m, W, H, &lb, &pd).unwrap().len(), 1);
    }
}
