//! The classify stage: one batched call for all bays of a frame.
//!
//! [`Classifier`] is the seam between the pipeline and ONNX Runtime, so the
//! pipeline logic can be tested with a scripted classifier and the real
//! model is exercised where it matters (tests/occupancy*.rs, eval, bench).

use super::warp::{PatchBatch, PATCH_H, PATCH_W};
use super::OccupancyError;
use crate::onnx::{Model, OnnxRuntime};
use std::path::Path;

/// Occupancy probability for each patch of a batch, in batch order.
pub trait Classifier: Send + Sync {
    fn classify(&self, batch: &PatchBatch) -> Result<Vec<f32>, OccupancyError>;
    /// For logs and reports.
    fn name(&self) -> &str;
}

/// The ONNX bay classifier: input `patches` [N,3,32,64] float32 RGB in [0,1],
/// output `p_occupied` [N] float32.
pub struct OnnxBayClassifier {
    model: Model,
    input: String,
}

impl OnnxBayClassifier {
    /// Loads ONNX Runtime (once per process) and opens the model.
    pub fn load(path: &Path, library: Option<&Path>) -> Result<Self, OccupancyError> {
        let rt = OnnxRuntime::load(library)?;
        let model = rt.session(path)?;
        let (inputs, outputs) = model.io_names();
        let input = if inputs.iter().any(|i| i == "patches") {
            "patches".to_string()
        } else {
            inputs
                .first()
                .cloned()
                .ok_or_else(|| OccupancyError::Model(format!("{} has no inputs", path.display())))?
        };
        if outputs.is_empty() {
            return Err(OccupancyError::Model(format!(
                "{} has no outputs",
                path.display()
            )));
        }
        tracing::info!(model = %path.display(), %input, outputs = ?outputs, "bay classifier loaded");
        Ok(Self { model, input })
    }
}

impl Classifier for OnnxBayClassifier {
    fn classify(&self, batch: &PatchBatch) -> Result<Vec<f32>, OccupancyError> {
        let n = batch.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let (shape, data) =
            self.model
                .run_f32(&self.input, &[n, 3, PATCH_H, PATCH_W], batch.data.clone())?;
        // [N] or [N,1]; a two-class [N,2] output would be a different contract.
        if data.len() != n {
            return Err(OccupancyError::Model(format!(
                "{} returned shape {shape:?} for {n} patches; expected [{n}]",
                self.model.name
            )));
        }
        Ok(data
            .into_iter()
            .map(|p| {
                if p.is_finite() {
                    p.clamp(0.0, 1.0)
                } else {
                    0.5
                }
            })
            .collect())
    }

    fn name(&self) -> &str {
        &self.model.name
    }
}

/// The classifier for `eval`/`bench`: the config's `[occupancy] model` when a
/// config is given, else `<models>/occupancy/bay_classifier.onnx`.
pub fn for_cli(config: Option<&Path>, models: &Path) -> anyhow::Result<OnnxBayClassifier> {
    let (model, library) = match config {
        Some(c) => {
            let c = crate::config::Config::load(c)?;
            (c.occupancy.model.clone(), c.onnxruntime.library.clone())
        }
        None => (models.join("occupancy").join("bay_classifier.onnx"), None),
    };
    Ok(OnnxBayClassifier::load(&model, library.as_deref())?)
}
