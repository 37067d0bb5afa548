//! Pure vision maths and plate logic: no I/O, no ONNX calls.
//!
//! Data flows through typed values between stages:
//! frame ([`image::ImageView`]) → [`letterbox::Letterbox`] + [`tensor`] (model input) →
//! detector output → [`dbnet`] / [`nms`] / [`centres`] (boxes in frame coordinates) → [`crop`] + [`tensor`]
//! (reader input) → [`ctc`] ([`ctc::CtcText`]) → [`read::LineRead`] (A–Z0–9 with
//! confidences) → [`plate_format`] / [`plate_select`] → `core::fusion` (tracks, decisions).
//! [`motion`] decides whether a frame is worth running the models on at all.
//! `cv` (cargo feature `opencv`) lends frames to OpenCV without copying, for the
//! stages that use it (the perspective crop).
//!
//! Running the models (ONNX Runtime) is not done here; the runtime modules call these
//! functions on the model inputs and outputs.

pub mod centres;
pub mod crop;
pub mod ctc;
#[cfg(feature = "opencv")]
pub mod cv;
pub mod dbnet;
pub mod error;
pub mod geometry;
pub mod hull;
pub mod image;
pub mod letterbox;
pub mod motion;
pub mod nms;
pub mod plate_format;
pub mod plate_select;
pub mod read;
pub mod tensor;

pub use error::VisionError;
