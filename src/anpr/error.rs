//! The ANPR layer's error type, shared by the engine and the plate proposer.

use crate::onnx::OnnxError;
use crate::vision::VisionError;

/// Errors of the plate engine and the plate proposer.
#[derive(Debug, thiserror::Error)]
pub enum AnprError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error(transparent)]
    Vision(#[from] VisionError),
    #[error("model {model}: unexpected output shape {shape:?}")]
    Shape { model: String, shape: Vec<usize> },
    #[error("the reader model has no `character` metadata (is it a PP-OCR reader?)")]
    NoAlphabet,
    #[error(transparent)]
    Models(#[from] crate::models::ModelsError),
}
