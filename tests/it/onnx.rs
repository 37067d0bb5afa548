//! ONNX Runtime from the pinned wheel, real models from models/, and clear
//! errors for a missing library and a missing or corrupt model.

use lotsense::onnx::{OnnxError, OnnxRuntime};
use std::path::Path;
use std::process::Command;

const DET: &str = "models/ppocr/PP-OCRv6_det_small.onnx";

#[test]
fn the_text_detector_runs_through_ort() {
    let rt = OnnxRuntime::load(None).expect("ONNX Runtime (run `lotsense models fetch`)");
    let model = rt.session(Path::new(DET)).expect("PP-OCRv6 detector");
    let (inputs, _) = model.io_names();
    assert_eq!(inputs, vec!["x".to_string()]);
    // A white 64x64 image with a black bar: the detector answers with a
    // probability map of the input's size.
    let (h, w) = (64usize, 128usize);
    let mut data = vec![1.0f32; 3 * h * w];
    for c in 0..3 {
        for y in 24..40 {
            for x in 16..112 {
                data[c * h * w + y * w + x] = -1.0;
            }
        }
    }
    let (shape, out) = model.run_f32("x", &[1, 3, h, w], data).unwrap();
    assert_eq!(shape, vec![1, 1, h, w]);
    assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn a_missing_or_corrupt_model_is_a_clear_error() {
    let rt = OnnxRuntime::load(None).unwrap();
    let e = rt.session(Path::new("models/nope.onnx")).err().unwrap();
    assert!(matches!(e, OnnxError::ModelMissing { .. }));
    assert!(e.to_string().contains("run `lotsense models fetch`"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("truncated.onnx");
    let bytes = std::fs::read(DET).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    let e = rt.session(&bad).err().unwrap();
    assert!(matches!(e, OnnxError::ModelLoad { .. }), "{e}");
    assert!(e.to_string().contains("corrupt or truncated"), "{e}");
}

#[test]
fn a_missing_runtime_library_is_a_clear_error_not_a_panic() {
    let out = Command::new(env!("CARGO_BIN_EXE_lotsense"))
        .args(["models", "verify", "--load"])
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ONNX Runtime library not found"), "{err}");
    assert!(err.contains("lotsense models fetch"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn models_verify_loads_every_default_model() {
    let out = Command::new(env!("CARGO_BIN_EXE_lotsense"))
        .args(["models", "verify", "--load"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("ppocr_v6_det_small     ok"), "{text}");
    assert!(text.contains("ppocr_v6_rec_small     ok"), "{text}");
    assert!(text.contains("loads: inputs [\"x\"]"), "{text}");
}
