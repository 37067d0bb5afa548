//! ONNX Runtime adapter: finds and loads `libonnxruntime.so` (from the pinned
//! PyPI wheel that `lotsense models fetch` installs), and opens model sessions
//! with the threading this 2-core class of machine wants.
//!
//! `ort` is built with `load-dynamic`, so no binary is downloaded at build
//! time. Its implicit loader panics when the library is missing; we always go
//! through [`OnnxRuntime::load`], which returns an error that says how to
//! install it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Errors of the ONNX layer.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("ONNX Runtime library not found (looked in: {searched}). Install it with `lotsense models fetch` (or run scripts/setup.sh), or set [onnxruntime] library / ORT_DYLIB_PATH to libonnxruntime.so")]
    NotFound { searched: String },
    #[error(
        "cannot load ONNX Runtime from {path}: {reason}. Reinstall it with `lotsense models fetch`"
    )]
    Load { path: PathBuf, reason: String },
    #[error("model file {path} is missing; run `lotsense models fetch`")]
    ModelMissing { path: PathBuf },
    #[error("cannot load model {path}: {reason} (corrupt or truncated? `lotsense models verify` checks it)")]
    ModelLoad { path: PathBuf, reason: String },
    #[error("inference failed in {model}: {reason}")]
    Run { model: String, reason: String },
}

/// The loaded runtime. The shared library can be loaded once per process, so
/// this is a process-wide singleton.
/// One output tensor: its shape and its values.
pub type Output = (Vec<usize>, Vec<f32>);

pub struct OnnxRuntime {
    env: ort::environment::Environment,
    pub library: PathBuf,
}

static RUNTIME: OnceLock<Result<Arc<OnnxRuntime>, String>> = OnceLock::new();

impl std::fmt::Debug for OnnxRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxRuntime")
            .field("library", &self.library)
            .finish()
    }
}

impl OnnxRuntime {
    /// Loads the runtime (once). `explicit` is the configured library path.
    pub fn load(explicit: Option<&Path>) -> Result<Arc<OnnxRuntime>, OnnxError> {
        if let Some(r) = RUNTIME.get() {
            return r.clone().map_err(|reason| OnnxError::Load {
                path: PathBuf::from("(earlier attempt)"),
                reason,
            });
        }
        let path = find_library(explicit)?;
        let result = ort::init_from(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| b.with_name("lotsense").build().map_err(|e| e.to_string()))
            .map(|env| {
                Arc::new(OnnxRuntime {
                    env,
                    library: path.clone(),
                })
            });
        let stored = RUNTIME.get_or_init(|| result);
        stored
            .clone()
            .map_err(|reason| OnnxError::Load { path, reason })
    }

    /// Opens a model with one intra-op thread and spinning off (on two cores
    /// we parallelise across stages, detection beside reading, not inside
    /// ops) and subnormals flushed to zero.
    pub fn session(&self, path: &Path) -> Result<Model, OnnxError> {
        if !path.is_file() {
            return Err(OnnxError::ModelMissing {
                path: path.to_path_buf(),
            });
        }
        let err = |e: String| OnnxError::ModelLoad {
            path: path.to_path_buf(),
            reason: e,
        };
        let session = ort::session::Session::builder(&self.env)
            .map_err(|e| err(e.to_string()))?
            .with_intra_threads(1)
            .map_err(|e| err(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| err(e.to_string()))?
            .with_intra_op_spinning(false)
            .map_err(|e| err(e.to_string()))?
            // Subnormal floats as zero: on some CPUs (an AVX-512 Xeon here)
            // the text detector spent three quarters of its time on them
            // (887 → 231 ms at 1080p); its accuracy is unchanged.
            .with_flush_to_zero()
            .map_err(|e| err(e.to_string()))?
            .commit_from_file(path)
            .map_err(|e| err(e.to_string()))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Model {
            name,
            session: Mutex::new(session),
        })
    }
}

/// One model session, shared by all cameras; `ort` needs `&mut` to run, and
/// with one intra-op thread per session a mutex costs nothing measurable.
pub struct Model {
    pub name: String,
    pub session: Mutex<ort::session::Session>,
}

impl Model {
    /// A custom metadata value (e.g. the PP-OCR reader's `character` list).
    pub fn metadata(&self, key: &str) -> Option<String> {
        let s = self.session.lock().ok()?;
        let value = s.metadata().ok()?.custom(key);
        value
    }

    /// Input names and output names, for diagnostics.
    pub fn io_names(&self) -> (Vec<String>, Vec<String>) {
        let s = self.session.lock().expect("session lock");
        (
            s.inputs().iter().map(|i| i.name().to_string()).collect(),
            s.outputs().iter().map(|o| o.name().to_string()).collect(),
        )
    }

    /// Runs the model on one f32 tensor and returns the first output's shape and data.
    pub fn run_f32(
        &self,
        input_name: &str,
        shape: &[usize],
        data: Vec<f32>,
    ) -> Result<(Vec<usize>, Vec<f32>), OnnxError> {
        let err = |e: String| OnnxError::Run {
            model: self.name.clone(),
            reason: e,
        };
        let tensor = ort::value::Tensor::from_array((shape.to_vec(), data))
            .map_err(|e| err(e.to_string()))?;
        let mut s = self
            .session
            .lock()
            .map_err(|_| err("session lock poisoned".into()))?;
        let outputs = s
            .run(ort::inputs![input_name => tensor])
            .map_err(|e| err(e.to_string()))?;
        let (shape, data) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| err(e.to_string()))?;
        Ok((shape.iter().map(|d| *d as usize).collect(), data.to_vec()))
    }

    /// Runs one input and returns the named float outputs, in the order asked.
    pub fn run_f32_outputs(
        &self,
        input_name: &str,
        shape: &[usize],
        data: Vec<f32>,
        outputs: &[&str],
    ) -> Result<Vec<Output>, OnnxError> {
        let err = |e: String| OnnxError::Run {
            model: self.name.clone(),
            reason: e,
        };
        let tensor = ort::value::Tensor::from_array((shape.to_vec(), data))
            .map_err(|e| err(e.to_string()))?;
        let mut s = self
            .session
            .lock()
            .map_err(|_| err("session lock poisoned".into()))?;
        let out = s
            .run(ort::inputs![input_name => tensor])
            .map_err(|e| err(e.to_string()))?;
        outputs
            .iter()
            .map(|name| {
                let v = out
                    .get(*name)
                    .ok_or_else(|| err(format!("no output `{name}`")))?;
                let (shape, data) = v
                    .try_extract_tensor::<f32>()
                    .map_err(|e| err(e.to_string()))?;
                Ok((shape.iter().map(|d| *d as usize).collect(), data.to_vec()))
            })
            .collect()
    }
}

/// Where we look for the library, in order: the configured path,
/// `ORT_DYLIB_PATH`, `.deps/onnxruntime` under the working directory and under
/// every ancestor of the executable (covers `target/debug/lotsense`), then the
/// system library folders.
pub fn library_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    if let Some(p) = explicit {
        files.push(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        files.push(PathBuf::from(p));
    }
    if let Ok(cwd) = std::env::current_dir() {
        dirs.push(cwd.join(".deps/onnxruntime"));
    }
    if let Ok(exe) = std::env::current_exe() {
        for anc in exe.ancestors().skip(1) {
            dirs.push(anc.join(".deps/onnxruntime"));
            dirs.push(anc.join("lib"));
        }
    }
    dirs.push(PathBuf::from("/usr/local/lib"));
    dirs.push(PathBuf::from("/usr/lib"));
    for d in dirs {
        files.push(d.join("libonnxruntime.so"));
        files.push(d.join("libonnxruntime.so.1"));
        files.push(d.join(format!("libonnxruntime.so.{}", crate::models::ORT_VERSION)));
    }
    files.dedup();
    files
}

fn find_library(explicit: Option<&Path>) -> Result<PathBuf, OnnxError> {
    // A configured path (or ORT_DYLIB_PATH) is authoritative: if it is wrong
    // the user must hear so, not silently get another library.
    let chosen = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from));
    if let Some(p) = chosen {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(OnnxError::NotFound {
                searched: p.display().to_string(),
            })
        };
    }
    let candidates = library_candidates(None);
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| OnnxError::NotFound {
            searched: candidates
                .iter()
                .take(6)
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
                + ", …",
        })
}
