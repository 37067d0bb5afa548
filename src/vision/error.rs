//! Errors of the pure vision stages. Only inputs that the caller can get wrong (buffer
//! sizes, tensor shapes, configuration) produce errors; "nothing found" is an empty result.

use thiserror::Error;

/// Error from a vision function given inconsistent input.
#[derive(Debug, Error)]
pub enum VisionError {
    /// A pixel or tensor buffer is shorter than its declared dimensions need.
    #[error("buffer too small for {what}: need {need} elements, got {got}")]
    BufferTooSmall {
        what: &'static str,
        need: usize,
        got: usize,
    },
    /// Width/height/stride are zero or inconsistent.
    #[error("invalid dimensions: {0}")]
    InvalidDimensions(String),
    /// A model output does not have the expected shape.
    #[error("unexpected tensor shape: {0}")]
    Shape(String),
    /// A plate format pattern (`@##@@@` style) could not be parsed.
    #[error("invalid plate pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
    /// A user-supplied regular expression (replace rule) did not compile.
    #[error("invalid regex {pattern:?}: {source}")]
    Regex {
        pattern: String,
        #[source]
        source: regex::Error,
    },
}

/// Shorthand result type for this module tree.
pub type Result<T> = std::result::Result<T, VisionError>;
