//! The text detector (PP-OCR DB) and the text reader (PP-OCR CTC), the
//! engine's two models, as separate types so the live pipeline can run them
//! on separate threads.

use super::error::AnprError;
use super::timing::{ms, StageTimes};
use crate::models::ModelSpec;
use crate::onnx::{Model, OnnxRuntime};
use crate::vision::ctc::{CtcDecoder, CtcText};
use crate::vision::dbnet::{db_postprocess, DbParams, TextBox};
use crate::vision::image::ImageView;
use crate::vision::letterbox::LimitType;
use crate::vision::tensor::{det_input, rec_batch, TensorSpec};
use std::path::Path;
use std::time::Instant;

/// A DB text detector (PP-OCR) with its manifest spec.
pub struct TextDetector {
    model: Model,
    pub name: String,
    input: String,
    tensor: TensorSpec,
    size_multiple: usize,
    /// The model's default input side.
    pub max_side: usize,
    db: DbParams,
}

impl TextDetector {
    pub fn new(rt: &OnnxRuntime, path: &Path, spec: &ModelSpec) -> Result<Self, AnprError> {
        let model = rt.session(path)?;
        let n = model.name.clone();
        let db = DbParams {
            thresh: spec.threshold(&n, "binarize")?,
            box_thresh: spec.threshold(&n, "box")?,
            unclip_ratio: spec.threshold(&n, "unclip_ratio")?,
            // RapidOCR's 2x2 dilation of the binary map joins characters split by a one-pixel gap.
            dilate: true,
            ..DbParams::default()
        };
        Ok(Self {
            input: spec.input.clone(),
            tensor: spec.tensor(&n)?,
            size_multiple: ModelSpec::need(&n, "size_multiple", spec.size_multiple)?,
            max_side: ModelSpec::need(&n, "max_side", spec.max_side)?,
            db,
            name: n,
            model,
        })
    }

    /// Text boxes in frame coordinates, inside `roi` (`[x, y, w, h]`, e.g. a
    /// camera's), with the input's longer side at most `max_side`.
    pub fn detect_in(
        &self,
        img: &ImageView,
        roi: Option<[u32; 4]>,
        max_side: usize,
        t: &mut StageTimes,
    ) -> Result<Vec<TextBox>, AnprError> {
        self.detect_sized(img, roi, max_side, LimitType::Max, t)
    }

    /// Like [`Self::detect_in`], with the region scaled (up or down) so its longer side is `side`.
    pub fn detect_scaled(
        &self,
        img: &ImageView,
        roi: Option<[u32; 4]>,
        side: usize,
        t: &mut StageTimes,
    ) -> Result<Vec<TextBox>, AnprError> {
        self.detect_sized(img, roi, side, LimitType::Exact, t)
    }

    fn detect_sized(
        &self,
        img: &ImageView,
        roi: Option<[u32; 4]>,
        side: usize,
        limit: LimitType,
        t: &mut StageTimes,
    ) -> Result<Vec<TextBox>, AnprError> {
        let (view, [ox, oy]) = crop_roi(img, roi);
        let off = (ox as f32, oy as f32);
        let t0 = Instant::now();
        let (input, lb) = det_input(&view, side, limit, self.size_multiple, &self.tensor)?;
        t.detect_pre += ms(t0);
        let t0 = Instant::now();
        let (shape, prob) = self
            .model
            .run_f32(&self.input, &[1, 3, lb.dst_h, lb.dst_w], input)?;
        t.detect_infer += ms(t0);
        if shape.len() != 4 || shape[2] != lb.dst_h || shape[3] != lb.dst_w {
            return Err(AnprError::Shape {
                model: self.name.clone(),
                shape,
            });
        }
        let t0 = Instant::now();
        let mut boxes = db_postprocess(&prob, lb.dst_w, lb.dst_h, &lb, &self.db)?;
        if off != (0.0, 0.0) {
            for b in &mut boxes {
                b.quad = b
                    .quad
                    .map(|p| crate::vision::geometry::Point::new(p.x + off.0, p.y + off.1));
            }
        }
        t.detect_post += ms(t0);
        Ok(boxes)
    }
}

/// A CTC text reader (PP-OCR) with its manifest spec.
pub struct TextReader {
    model: Model,
    decoder: CtcDecoder,
    pub name: String,
    input: String,
    tensor: TensorSpec,
    height: usize,
    min_width: usize,
    max_width: usize,
}

impl TextReader {
    pub fn new(rt: &OnnxRuntime, path: &Path, spec: &ModelSpec) -> Result<Self, AnprError> {
        let model = rt.session(path)?;
        let n = model.name.clone();
        let key = ModelSpec::need(&n, "alphabet", spec.alphabet.as_deref())?;
        let key =
            key.strip_prefix("metadata:")
                .ok_or_else(|| crate::models::ModelsError::Spec {
                    model: n.clone(),
                    reason: format!("`alphabet` must be `metadata:<key>`, not `{key}`"),
                })?;
        let meta = model.metadata(key).ok_or(AnprError::NoAlphabet)?;
        Ok(Self {
            decoder: CtcDecoder::from_metadata(&meta),
            input: spec.input.clone(),
            tensor: spec.tensor(&n)?,
            height: ModelSpec::need(&n, "height", spec.height)?,
            min_width: ModelSpec::need(&n, "min_width", spec.min_width)?,
            max_width: ModelSpec::need(&n, "max_width", spec.max_width)?,
            name: n,
            model,
        })
    }

    /// Reads a batch of upright crops in one call.
    pub fn read(&self, crops: &[ImageView]) -> Result<Vec<CtcText>, AnprError> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let (input, w, _) = rec_batch(
            crops,
            self.height,
            self.min_width,
            self.max_width,
            &self.tensor,
        )?;
        let (shape, probs) =
            self.model
                .run_f32(&self.input, &[crops.len(), 3, self.height, w], input)?;
        if shape.len() != 3 || shape[0] != crops.len() || shape[2] != self.decoder.num_classes() {
            return Err(AnprError::Shape {
                model: self.name.clone(),
                shape,
            });
        }
        Ok(self
            .decoder
            .decode_batch(&probs, shape[0], shape[1], shape[2])?)
    }
}

/// The part of `img` inside `roi` (`[x, y, w, h]`, clipped to the frame) and its offset.
pub(super) fn crop_roi<'a>(
    img: &ImageView<'a>,
    roi: Option<[u32; 4]>,
) -> (ImageView<'a>, [u32; 2]) {
    match roi {
        Some([x, y, w, h]) => {
            let (x, y) = (
                (x as usize).min(img.width - 1),
                (y as usize).min(img.height - 1),
            );
            let (w, h) = (
                (w as usize).min(img.width - x),
                (h as usize).min(img.height - y),
            );
            (img.crop(x, y, w, h).unwrap_or(*img), [x as u32, y as u32])
        }
        None => (*img, [0, 0]),
    }
}
