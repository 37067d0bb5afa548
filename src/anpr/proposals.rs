//! The fast first stage: our plate proposal network (`plate_proposals` in
//! `models/manifest.toml`) looks at the whole frame scaled down (longer side
//! 640) and says where plates are; the PP-OCR text detector then runs only on
//! small full-resolution regions around them instead of on the whole frame
//! scaled to 960. Small plates stay sharp (they are not shrunk) and the
//! expensive detector sees a few thousand pixels instead of half a million.

use super::error::AnprError;
use super::timing::{ms, StageTimes};
use crate::models::ModelSpec;
use crate::onnx::{Model, OnnxRuntime};
use crate::vision::centres::{decode_centres, CentreParams};
use crate::vision::geometry::BoxF;
use crate::vision::image::ImageView;
use crate::vision::nms::Detection;
use crate::vision::tensor::{padded_input, TensorSpec};
use std::path::Path;
use std::time::Instant;

/// The manifest name of the proposal network.
pub const PROPOSER: &str = "plate_proposals";

/// The plate proposal network with its manifest spec.
pub struct PlateProposer {
    model: Model,
    pub name: String,
    input: String,
    tensor: TensorSpec,
    max_side: usize,
    size_multiple: usize,
    params: CentreParams,
}

impl PlateProposer {
    pub fn new(rt: &OnnxRuntime, path: &Path, spec: &ModelSpec) -> Result<Self, AnprError> {
        let model = rt.session(path)?;
        let n = model.name.clone();
        let params = CentreParams {
            stride: spec.threshold(&n, "stride")?,
            threshold: spec.threshold(&n, "score")?,
            top_k: spec.threshold(&n, "top_k")?.max(1.0) as usize,
            nms_iou: spec.threshold(&n, "nms_iou")?,
        };
        Ok(Self {
            input: spec.input.clone(),
            tensor: spec.tensor(&n)?,
            max_side: ModelSpec::need(&n, "max_side", spec.max_side)?,
            size_multiple: ModelSpec::need(&n, "size_multiple", spec.size_multiple)?,
            params,
            name: n,
            model,
        })
    }

    /// Plate boxes in frame coordinates, surest first.
    pub fn propose(
        &self,
        img: &ImageView,
        t: &mut StageTimes,
    ) -> Result<Vec<Detection>, AnprError> {
        let t0 = Instant::now();
        let (input, lb) = padded_input(img, self.max_side, self.size_multiple, &self.tensor)?;
        t.detect_pre += ms(t0);
        let t0 = Instant::now();
        let out = self.model.run_f32_outputs(
            &self.input,
            &[1, 3, lb.dst_h, lb.dst_w],
            input,
            &["heatmap", "size"],
        )?;
        t.detect_infer += ms(t0);
        let t0 = Instant::now();
        let [(hs, heat), (ss, size)] = <[_; 2]>::try_from(out).map_err(|_| AnprError::Shape {
            model: self.name.clone(),
            shape: vec![],
        })?;
        let grid = |s: &[usize], c: usize| (s.len() == 4 && s[1] == c).then(|| (s[3], s[2]));
        let (gw, gh) = match (grid(&hs, 1), grid(&ss, 2)) {
            (Some(a), Some(b)) if a == b => a,
            _ => {
                return Err(AnprError::Shape {
                    model: self.name.clone(),
                    shape: hs,
                })
            }
        };
        let mut dets = decode_centres(&heat, &size, gw, gh, &self.params)?;
        for d in &mut dets {
            d.bbox = lb.undo_box(&d.bbox);
        }
        t.detect_post += ms(t0);
        Ok(dets)
    }
}

/// How proposals become regions for the text detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegionParams {
    /// Region size as a multiple of the proposal's width and height (context
    /// around the plate: the proposal may be loose or off-centre).
    pub grow_w: f32,
    pub grow_h: f32,
    /// Smallest region, pixels.
    pub min_w: f32,
    pub min_h: f32,
}

impl Default for RegionParams {
    fn default() -> Self {
        Self {
            grow_w: 2.0,
            grow_h: 3.0,
            min_w: 96.0,
            min_h: 64.0,
        }
    }
}

/// A region of the frame to run the text detector on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    /// `[x, y, w, h]`, frame pixels.
    pub rect: [u32; 4],
    /// Width of the widest proposal in it (sets the detector's scale).
    pub plate_width: f32,
}

/// Regions of a `frame_w x frame_h` frame around the proposals, clipped to
/// the frame; overlapping regions are merged into their union so no text is
/// detected twice.
pub fn proposal_regions(
    boxes: &[BoxF],
    frame_w: usize,
    frame_h: usize,
    p: &RegionParams,
) -> Vec<Region> {
    let (fw, fh) = (frame_w as f32, frame_h as f32);
    let mut regions: Vec<(BoxF, f32)> = boxes
        .iter()
        .filter(|b| b.is_valid())
        .map(|b| {
            let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
            let (w, h) = (
                ((b.x2 - b.x1) * p.grow_w).max(p.min_w),
                ((b.y2 - b.y1) * p.grow_h).max(p.min_h),
            );
            (
                BoxF::new(
                    (cx - w / 2.0).max(0.0),
                    (cy - h / 2.0).max(0.0),
                    (cx + w / 2.0).min(fw),
                    (cy + h / 2.0).min(fh),
                ),
                b.x2 - b.x1,
            )
        })
        .filter(|(b, _)| b.is_valid())
        .collect();
    loop {
        let mut merged = false;
        'outer: for i in 0..regions.len() {
            for j in i + 1..regions.len() {
                let ((a, wa), (b, wb)) = (regions[i], regions[j]);
                if a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2 {
                    regions[i] = (
                        BoxF::new(
                            a.x1.min(b.x1),
                            a.y1.min(b.y1),
                            a.x2.max(b.x2),
                            a.y2.max(b.y2),
                        ),
                        wa.max(wb),
                    );
                    regions.remove(j);
                    merged = true;
                    break 'outer;
                }
            }
        }
        if !merged {
            break;
        }
    }
    regions
        .iter()
        .map(|(r, pw)| {
            let (x, y) = (r.x1.floor() as u32, r.y1.floor() as u32);
            Region {
                rect: [
                    x,
                    y,
                    (r.x2.ceil() as u32).saturating_sub(x).max(1),
                    (r.y2.ceil() as u32).saturating_sub(y).max(1),
                ],
                plate_width: *pw,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_add_context_clip_and_merge() {
        let p = RegionParams {
            grow_w: 2.0,
            grow_h: 3.0,
            min_w: 96.0,
            min_h: 64.0,
        };
        // A 60x15 plate in the middle: region 120x64 (min height) around its centre.
        let r = proposal_regions(&[BoxF::new(500.0, 300.0, 560.0, 315.0)], 1920, 1080, &p);
        assert_eq!(
            r,
            vec![Region {
                rect: [470, 275, 120, 65],
                plate_width: 60.0
            }]
        );
        // Near the corner: clipped.
        let r = proposal_regions(&[BoxF::new(0.0, 0.0, 20.0, 10.0)], 1920, 1080, &p);
        assert_eq!(r[0].rect, [0, 0, 58, 37]);
        // Two overlapping proposals of one plate become one region; a far one stays apart.
        let r = proposal_regions(
            &[
                BoxF::new(500.0, 300.0, 560.0, 315.0),
                BoxF::new(510.0, 302.0, 570.0, 318.0),
                BoxF::new(1500.0, 900.0, 1560.0, 915.0),
            ],
            1920,
            1080,
            &p,
        );
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            Region {
                rect: [470, 275, 130, 67],
                plate_width: 60.0
            }
        );
    }
}
