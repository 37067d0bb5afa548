//! Decoding a centre heat map (CenterNet-style) into boxes: the output of our
//! plate proposal network (`models/plates/plate_proposals.onnx`). Per cell of
//! a stride-`s` grid the network gives the probability that a plate's centre
//! lies there and the plate's width and height in input pixels; a plate is a
//! 3x3 local maximum above a threshold. Boxes are in model-input pixels: undo
//! the letterbox next ([`super::letterbox::Letterbox::undo_box`]).

use super::error::{Result, VisionError};
use super::geometry::BoxF;
use super::nms::{nms, Detection};

/// Decoding settings (from the model's `[model.spec]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CentreParams {
    /// Input pixels per grid cell.
    pub stride: f32,
    /// Minimum centre probability.
    pub threshold: f32,
    /// At most this many boxes, surest first.
    pub top_k: usize,
    /// Overlapping peaks of one plate (IoU above this) are merged.
    pub nms_iou: f32,
}

/// Boxes from `heat` (`gh x gw`, row-major) and `size` (two planes `gh x gw`:
/// width then height), surest first.
pub fn decode_centres(
    heat: &[f32],
    size: &[f32],
    gw: usize,
    gh: usize,
    p: &CentreParams,
) -> Result<Vec<Detection>> {
    let n = gw * gh;
    if heat.len() < n || size.len() < 2 * n {
        return Err(VisionError::BufferTooSmall {
            what: "centre heat map / size planes",
            need: 2 * n,
            got: heat.len().min(size.len() / 2) * 2,
        });
    }
    if gw == 0 || gh == 0 || p.stride <= 0.0 {
        return Err(VisionError::InvalidDimensions(format!(
            "grid {gw}x{gh}, stride {}",
            p.stride
        )));
    }
    let at = |x: usize, y: usize| heat[y * gw + x];
    let mut peaks = Vec::new();
    for y in 0..gh {
        for x in 0..gw {
            let v = at(x, y);
            if v.is_nan() || v < p.threshold {
                continue;
            }
            // A local maximum; on a plateau the first cell in scan order wins.
            let mut peak = true;
            'n: for ny in y.saturating_sub(1)..=(y + 1).min(gh - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(gw - 1) {
                    let before = (ny, nx) < (y, x);
                    let u = at(nx, ny);
                    if (ny, nx) != (y, x) && (u > v || (before && u == v)) {
                        peak = false;
                        break 'n;
                    }
                }
            }
            if !peak {
                continue;
            }
            let (w, h) = (size[y * gw + x], size[n + y * gw + x]);
            if !(w > 0.0 && h > 0.0) {
                continue;
            }
            let (cx, cy) = ((x as f32 + 0.5) * p.stride, (y as f32 + 0.5) * p.stride);
            peaks.push(Detection {
                bbox: BoxF::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0),
                score: v,
                class: 0,
            });
        }
    }
    Ok(nms(&peaks, p.nms_iou, false, Some(p.top_k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: CentreParams = CentreParams {
        stride: 4.0,
        threshold: 0.3,
        top_k: 5,
        nms_iou: 0.5,
    };

    /// A 8x6 grid with plates centred at cells (2,1) and (6,4).
    fn fixture() -> (Vec<f32>, Vec<f32>, usize, usize) {
        let (gw, gh) = (8, 6);
        let mut heat = vec![0.05; gw * gh];
        let mut size = vec![0.0; 2 * gw * gh];
        for (x, y, v, w, h) in [(2, 1, 0.9, 20.0, 6.0), (6, 4, 0.6, 12.0, 4.0)] {
            heat[y * gw + x] = v;
            // Neighbours are lower (a Gaussian bump).
            for (dx, dy) in [(-1i32, 0i32), (1, 0), (0, -1), (0, 1)] {
                let (nx, ny) = ((x as i32 + dx) as usize, (y as i32 + dy) as usize);
                if nx < gw && ny < gh {
                    heat[ny * gw + nx] = v * 0.6;
                }
            }
            size[y * gw + x] = w;
            size[gw * gh + y * gw + x] = h;
        }
        (heat, size, gw, gh)
    }

    #[test]
    fn peaks_become_boxes_in_input_pixels_surest_first() {
        let (heat, size, gw, gh) = fixture();
        let d = decode_centres(&heat, &size, gw, gh, &P).unwrap();
        assert_eq!(d.len(), 2, "{d:?}");
        // Cell (2,1): centre (10, 6), 20x6.
        assert_eq!(d[0].bbox, BoxF::new(0.0, 3.0, 20.0, 9.0));
        assert!((d[0].score - 0.9).abs() < 1e-6);
        assert_eq!(d[1].bbox, BoxF::new(20.0, 16.0, 32.0, 20.0));
    }

    #[test]
    fn threshold_top_k_and_plateaus() {
        let (mut heat, size, gw, gh) = fixture();
        let d = decode_centres(
            &heat,
            &size,
            gw,
            gh,
            &CentreParams {
                threshold: 0.7,
                ..P
            },
        )
        .unwrap();
        assert_eq!(d.len(), 1);
        let d = decode_centres(&heat, &size, gw, gh, &CentreParams { top_k: 1, ..P }).unwrap();
        assert_eq!(d.len(), 1);
        // A plateau of two equal cells gives one peak (the first in scan order).
        heat[gw + 3] = 0.9;
        let d = decode_centres(&heat, &size, gw, gh, &P).unwrap();
        assert_eq!(
            d.iter().filter(|x| (x.score - 0.9).abs() < 1e-6).count(),
            1,
            "{d:?}"
        );
    }

    #[test]
    fn bad_buffers_are_errors_and_nan_is_no_plate() {
        assert!(decode_centres(&[0.0; 4], &[0.0; 4], 2, 2, &P).is_err());
        let mut heat = vec![0.0; 4];
        heat[0] = f32::NAN;
        assert!(decode_centres(&heat, &[1.0; 8], 2, 2, &P)
            .unwrap()
            .is_empty());
    }
}
