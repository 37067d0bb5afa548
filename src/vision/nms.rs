//! Non-maximum suppression and the YOLO (Ultralytics v8) head decoder, for the optional
//! plate detector (platedet).

use serde::{Deserialize, Serialize};

use super::error::{Result, VisionError};
use super::geometry::BoxF;

/// A scored box in whatever coordinates the caller uses (model input or frame).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub bbox: BoxF,
    pub score: f32,
    pub class: usize,
}

/// Greedy NMS on corner boxes: highest score first, drop every later box whose IoU with a
/// kept box is above `iou_thresh`. With `class_aware`, boxes of different classes never
/// suppress each other. Ties in score keep input order (stable sort), so results are
/// deterministic. `max_det` caps the output.
pub fn nms(
    dets: &[Detection],
    iou_thresh: f32,
    class_aware: bool,
    max_det: Option<usize>,
) -> Vec<Detection> {
    let mut order: Vec<usize> = (0..dets.len())
        .filter(|&i| dets[i].bbox.is_valid())
        .collect();
    order.sort_by(|&a, &b| dets[b].score.total_cmp(&dets[a].score));
    let cap = max_det.unwrap_or(usize::MAX);
    let mut keep: Vec<Detection> = Vec::new();
    for i in order {
        if keep.len() >= cap {
            break;
        }
        let d = dets[i];
        let suppressed = keep
            .iter()
            .any(|k| (!class_aware || k.class == d.class) && k.bbox.iou(&d.bbox) > iou_thresh);
        if !suppressed {
            keep.push(d);
        }
    }
    keep
}

/// Memory layout of a YOLO head output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum YoloLayout {
    /// `[1, channels, anchors]` (Ultralytics export default: channel-major).
    ChannelsFirst,
    /// `[1, anchors, channels]`.
    AnchorsFirst,
}

/// Decode a YOLOv8-style head `[1, 4 + num_classes + extra, anchors]`: per anchor
/// `cx, cy, w, h` (model-input pixels), `num_classes` scores (already sigmoid), then
/// `extra` values the caller ignores (e.g. 32 mask coefficients for platedet). Returns
/// corner boxes with their best class whose score is above `score_thresh`, not yet
/// suppressed: run [`nms`] next (on corner boxes), then [`super::letterbox::Letterbox::undo_box`].
pub fn decode_yolo(
    output: &[f32],
    shape: &[usize],
    num_classes: usize,
    layout: YoloLayout,
    score_thresh: f32,
) -> Result<Vec<Detection>> {
    let (c, a) = match (shape, layout) {
        ([1, c, a], YoloLayout::ChannelsFirst) | ([c, a], YoloLayout::ChannelsFirst) => (*c, *a),
        ([1, a, c], YoloLayout::AnchorsFirst) | ([a, c], YoloLayout::AnchorsFirst) => (*c, *a),
        _ => return Err(VisionError::Shape(format!("YOLO output shape {shape:?}"))),
    };
    if num_classes == 0 || c < 4 + num_classes {
        return Err(VisionError::Shape(format!(
            "{c} channels cannot hold 4 box values + {num_classes} classes"
        )));
    }
    if output.len() < c * a {
        return Err(VisionError::BufferTooSmall {
            what: "YOLO output",
            need: c * a,
            got: output.len(),
        });
    }
    let at = |ch: usize, i: usize| match layout {
        YoloLayout::ChannelsFirst => output[ch * a + i],
        YoloLayout::AnchorsFirst => output[i * c + ch],
    };
    let mut out = Vec::new();
    for i in 0..a {
        let (mut best, mut cls) = (f32::NEG_INFINITY, 0);
        for k in 0..num_classes {
            let s = at(4 + k, i);
            if s > best {
                best = s;
                cls = k;
            }
        }
        if best > score_thresh {
            let b = BoxF::from_cxcywh(at(0, i), at(1, i), at(2, i), at(3, i));
            if b.is_valid() {
                out.push(Detection {
                    bbox: b,
                    score: best,
                    class: cls,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, s: f32, class: usize) -> Detection {
        Detection {
            bbox: BoxF::new(x, 0.0, x + 10.0, 10.0),
            score: s,
            class,
        }
    }

    #[test]
    fn greedy_nms() {
        let d = [
            det(0.0, 0.5, 0),
            det(1.0, 0.9, 0),
            det(30.0, 0.7, 0),
            det(2.0, 0.8, 1),
        ];
        let k = nms(&d, 0.45, false, None);
        assert_eq!(k.len(), 2);
        assert_eq!(k[0].score, 0.9);
        assert_eq!(k[1].score, 0.7);
        let k = nms(&d, 0.45, true, None);
        assert_eq!(
            k.iter().map(|d| d.score).collect::<Vec<_>>(),
            vec![0.9, 0.8, 0.7]
        );
        assert_eq!(nms(&d, 0.45, true, Some(1)).len(), 1);
        // Corner-box IoU: two boxes with the same centre but different shape still overlap.
        let a = Detection {
            bbox: BoxF::new(0.0, 0.0, 100.0, 20.0),
            score: 0.9,
            class: 0,
        };
        let b = Detection {
            bbox: BoxF::new(5.0, 0.0, 95.0, 22.0),
            score: 0.8,
            class: 0,
        };
        assert_eq!(nms(&[a, b], 0.45, false, None).len(), 1);
    }

    #[test]
    fn yolo_decode_both_layouts() {
        // 3 anchors, 1 class, 2 extra channels: [cx, cy, w, h, score, m0, m1].
        let anchors = [
            [100.0, 50.0, 40.0, 20.0, 0.9, 7.0, 7.0],
            [10.0, 10.0, 4.0, 4.0, 0.1, 7.0, 7.0],
            [102.0, 51.0, 40.0, 20.0, 0.6, 7.0, 7.0],
        ];
        let mut cf = vec![0.0; 21];
        let mut af = vec![0.0; 21];
        for (i, an) in anchors.iter().enumerate() {
            for (ch, v) in an.iter().enumerate() {
                cf[ch * 3 + i] = *v;
                af[i * 7 + ch] = *v;
            }
        }
        let a = decode_yolo(&cf, &[1, 7, 3], 1, YoloLayout::ChannelsFirst, 0.4).unwrap();
        let b = decode_yolo(&af, &[1, 3, 7], 1, YoloLayout::AnchorsFirst, 0.4).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].bbox, BoxF::new(80.0, 40.0, 120.0, 60.0));
        assert_eq!(nms(&a, 0.45, false, None).len(), 1);
        assert!(decode_yolo(&cf, &[1, 4, 3], 1, YoloLayout::ChannelsFirst, 0.4).is_err());
        assert!(decode_yolo(&cf[..5], &[1, 7, 3], 1, YoloLayout::ChannelsFirst, 0.4).is_err());
    }
}
