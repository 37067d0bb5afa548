//! Motion gate: decide cheaply whether a frame changed enough (inside the zone where cars
//! appear) to be worth running the models. Works on small grey copies of the frames
//! (e.g. 160×90), so a frame costs one pass over the full image (area downscale) plus a
//! few thousand comparisons.

use serde::{Deserialize, Serialize};

use super::error::{Result, VisionError};
use super::geometry::{point_in_polygon, Point};
use super::image::ImageView;

/// Small 8-bit grey image (packed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreyFrame {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

/// Area-average downscale of an RGB frame to `dst_w x dst_h` grey (BT.601 luma,
/// `(77 R + 150 G + 29 B) / 256`). Each output pixel averages the source block
/// `[x * W / dst_w, (x + 1) * W / dst_w)` (same for rows), so noise is averaged out
/// instead of aliased. `dst` sizes are clamped to the source size.
pub fn downscale_grey(img: &ImageView, dst_w: usize, dst_h: usize) -> Result<GreyFrame> {
    if dst_w == 0 || dst_h == 0 {
        return Err(VisionError::InvalidDimensions("empty grey target".into()));
    }
    let (dw, dh) = (dst_w.min(img.width), dst_h.min(img.height));
    let xb: Vec<usize> = (0..=dw).map(|x| x * img.width / dw).collect();
    let yb: Vec<usize> = (0..=dh).map(|y| y * img.height / dh).collect();
    let mut acc = vec![0u64; dw];
    let mut data = Vec::with_capacity(dw * dh);
    for oy in 0..dh {
        acc.iter_mut().for_each(|a| *a = 0);
        for y in yb[oy]..yb[oy + 1] {
            let row = img.row(y);
            for ox in 0..dw {
                let mut s = 0u64;
                for px in row[xb[ox] * 3..xb[ox + 1] * 3].chunks_exact(3) {
                    s += (77 * px[0] as u32 + 150 * px[1] as u32 + 29 * px[2] as u32) as u64;
                }
                acc[ox] += s;
            }
        }
        let rows = (yb[oy + 1] - yb[oy]) as u64;
        for ox in 0..dw {
            let n = rows * (xb[ox + 1] - xb[ox]) as u64;
            data.push(((acc[ox] + n * 128) / (n * 256)).min(255) as u8);
        }
    }
    Ok(GreyFrame {
        data,
        width: dw,
        height: dh,
    })
}

/// Pixel mask of a zone polygon on a grid of a given size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneMask {
    pub width: usize,
    pub height: usize,
    bits: Vec<bool>,
    count: usize,
}

impl ZoneMask {
    /// Rasterise `poly` (in grid pixel coordinates) by testing each pixel centre.
    pub fn from_polygon(poly: &[Point], width: usize, height: usize) -> Self {
        let mut bits = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                bits.push(point_in_polygon(
                    Point::new(x as f32 + 0.5, y as f32 + 0.5),
                    poly,
                ));
            }
        }
        let count = bits.iter().filter(|&&b| b).count();
        Self {
            width,
            height,
            bits,
            count,
        }
    }

    /// Zone given in normalised frame coordinates (`0..1`), so one config fits any
    /// resolution.
    pub fn from_normalized(poly: &[Point], width: usize, height: usize) -> Self {
        let scaled: Vec<Point> = poly
            .iter()
            .map(|p| Point::new(p.x * width as f32, p.y * height as f32))
            .collect();
        Self::from_polygon(&scaled, width, height)
    }

    /// Zone given in frame pixels (`[lpr] motion.zone` in the config) for a grey grid
    /// made from a `frame_w x frame_h` frame.
    pub fn from_frame_polygon(
        poly: &[Point],
        frame_w: usize,
        frame_h: usize,
        width: usize,
        height: usize,
    ) -> Self {
        let (sx, sy) = (
            width as f32 / frame_w.max(1) as f32,
            height as f32 / frame_h.max(1) as f32,
        );
        let scaled: Vec<Point> = poly
            .iter()
            .map(|p| Point::new(p.x * sx, p.y * sy))
            .collect();
        Self::from_polygon(&scaled, width, height)
    }

    pub fn contains(&self, x: usize, y: usize) -> bool {
        self.bits[y * self.width + x]
    }

    /// Number of pixels inside.
    pub fn count(&self) -> usize {
        self.count
    }
}

/// Fraction (`0..=1`) of pixels (inside `mask`, if given) whose absolute difference
/// between `prev` and `cur` exceeds `threshold`. An empty zone yields 0.
pub fn motion_fraction(
    prev: &[u8],
    cur: &[u8],
    width: usize,
    height: usize,
    threshold: u8,
    mask: Option<&ZoneMask>,
) -> Result<f32> {
    let n = width * height;
    if prev.len() < n || cur.len() < n {
        return Err(VisionError::BufferTooSmall {
            what: "grey frame",
            need: n,
            got: prev.len().min(cur.len()),
        });
    }
    let changed = |i: usize| prev[i].abs_diff(cur[i]) > threshold;
    let (hits, total) = match mask {
        Some(m) => {
            if m.width != width || m.height != height {
                return Err(VisionError::InvalidDimensions(format!(
                    "mask {}x{} vs frame {width}x{height}",
                    m.width, m.height
                )));
            }
            let hits = (0..n).filter(|&i| m.bits[i] && changed(i)).count();
            (hits, m.count)
        }
        None => ((0..n).filter(|&i| changed(i)).count(), n),
    };
    Ok(if total == 0 {
        0.0
    } else {
        hits as f32 / total as f32
    })
}

/// Convenience: [`motion_fraction`] on two [`GreyFrame`]s.
pub fn frame_motion(
    prev: &GreyFrame,
    cur: &GreyFrame,
    threshold: u8,
    mask: Option<&ZoneMask>,
) -> Result<f32> {
    if prev.width != cur.width || prev.height != cur.height {
        return Err(VisionError::InvalidDimensions(
            "grey frames differ in size".into(),
        ));
    }
    motion_fraction(
        &prev.data, &cur.data, cur.width, cur.height, threshold, mask,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::image::RgbImage;

    #[test]
    fn downscale_averages_blocks_with_stride() {
        // 4x2 image, left half white, right half black, padded stride.
        let mut buf = vec![0u8; 2 * 16];
        for y in 0..2 {
            for x in 0..2 {
                buf[y * 16 + x * 3..y * 16 + x * 3 + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        let img = ImageView::new(&buf, 4, 2, 16).unwrap();
        let g = downscale_grey(&img, 2, 1).unwrap();
        assert_eq!(g.data, vec![255, 0]);
        let g = downscale_grey(&img, 1, 1).unwrap();
        assert_eq!(g.data, vec![128]);
        let g = downscale_grey(&img, 100, 100).unwrap();
        assert_eq!((g.width, g.height), (4, 2));
    }

    #[test]
    fn motion_in_zone() {
        let a = RgbImage::filled(40, 20, [50, 50, 50]);
        let mut b = a.clone();
        b.fill_rect(0, 0, 10, 20, [200, 200, 200]); // change in the left quarter
        let (ga, gb) = (
            downscale_grey(&a.view(), 20, 10).unwrap(),
            downscale_grey(&b.view(), 20, 10).unwrap(),
        );
        let all = frame_motion(&ga, &gb, 25, None).unwrap();
        assert!((all - 0.25).abs() < 1e-6);
        // Zone = right half: nothing moves there.
        let right = ZoneMask::from_normalized(
            &[
                Point::new(0.5, 0.0),
                Point::new(1.0, 0.0),
                Point::new(1.0, 1.0),
                Point::new(0.5, 1.0),
            ],
            20,
            10,
        );
        assert_eq!(right.count(), 100);
        let same = ZoneMask::from_frame_polygon(
            &[
                Point::new(20.0, 0.0),
                Point::new(40.0, 0.0),
                Point::new(40.0, 20.0),
                Point::new(20.0, 20.0),
            ],
            40,
            20,
            20,
            10,
        );
        assert_eq!(same, right);
        assert_eq!(frame_motion(&ga, &gb, 25, Some(&right)).unwrap(), 0.0);
        let left = ZoneMask::from_polygon(
            &[
                Point::new(0.0, 0.0),
                Point::new(10.0, 0.0),
                Point::new(10.0, 10.0),
                Point::new(0.0, 10.0),
            ],
            20,
            10,
        );
        assert!((frame_motion(&ga, &gb, 25, Some(&left)).unwrap() - 0.5).abs() < 1e-6);
        assert!(left.contains(0, 0) && !left.contains(15, 5));
        // Threshold above the change: no motion.
        assert_eq!(frame_motion(&ga, &gb, 200, None).unwrap(), 0.0);
        let empty = ZoneMask::from_polygon(&[], 20, 10);
        assert_eq!(frame_motion(&ga, &gb, 25, Some(&empty)).unwrap(), 0.0);
        assert!(motion_fraction(&ga.data, &gb.data[..5], 20, 10, 25, None).is_err());
    }
}
