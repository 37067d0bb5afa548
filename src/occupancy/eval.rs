//! `lotsense eval occupancy --data DIR [--json]`: accuracy and speed of the
//! bay classifier on labelled data, searched recursively:
//!
//! - patch folders: every image under a folder named `free` or `occupied`
//!   (the nearest such ancestor is the label) is one bay patch, turned long
//!   side horizontal and resized to 64x32;
//! - frames with PKLot-style XML beside them (`NAME.jpg`/`.png` + `NAME.xml`):
//!   each `<space>` with an `occupied` attribute is warped out of the frame
//!   with its polygon, exactly as the live pipeline does.
//!
//! A bay counts as occupied when p ≥ 0.5. Latency per bay is the wall time
//! of warp + batched inference (batches of 64 patches, or all bays of a
//! frame; one ONNX thread) divided by the bays.

use super::classifier::Classifier;
use super::warp::{BayQuad, PatchBatch};
use crate::config::pklot;
use crate::vision::image::ImageView;
use anyhow::Context;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const THRESHOLD: f32 = 0.5;
const PATCH_BATCH: usize = 64;

/// Binary confusion counts, `occupied` is the positive class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Confusion {
    /// Free, predicted free.
    pub tn: u64,
    /// Free, predicted occupied.
    pub fp: u64,
    /// Occupied, predicted free.
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// Occupied, predicted occupied.
    pub tp: u64,
}

impl Confusion {
    pub fn add(&mut self, occupied: bool, p: f32) {
        match (occupied, p >= THRESHOLD) {
            (false, false) => self.tn += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (true, true) => self.tp += 1,
        }
    }
    pub fn samples(&self) -> u64 {
        self.tn + self.fp + self.fn_ + self.tp
    }
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.samples())
    }
    /// Mean of the recalls of both classes (a class with no samples is left out).
    pub fn balanced_accuracy(&self) -> f64 {
        let mut r = Vec::new();
        if self.tp + self.fn_ > 0 {
            r.push(ratio(self.tp, self.tp + self.fn_));
        }
        if self.tn + self.fp > 0 {
            r.push(ratio(self.tn, self.tn + self.fp));
        }
        if r.is_empty() {
            0.0
        } else {
            r.iter().sum::<f64>() / r.len() as f64
        }
    }
    pub fn f1_occupied(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The result printed by the command.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub samples: u64,
    pub free: u64,
    pub occupied: u64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub f1_occupied: f64,
    pub latency_ms_per_bay: f64,
    pub confusion: Confusion,
    pub threshold: f32,
    pub patch_files: usize,
    pub xml_frames: usize,
    pub model: String,
}

/// What was found under the data folder.
#[derive(Debug, Default)]
pub struct Dataset {
    /// (image, occupied)
    pub patches: Vec<(PathBuf, bool)>,
    /// (frame image, xml)
    pub frames: Vec<(PathBuf, PathBuf)>,
}

fn is_image(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("jpg" | "jpeg" | "png")
    )
}

/// Walks `dir` recursively (sorted, so runs are reproducible).
pub fn discover(dir: &Path) -> anyhow::Result<Dataset> {
    let mut ds = Dataset::default();
    walk(dir, None, &mut ds)?;
    Ok(ds)
}

fn walk(dir: &Path, label: Option<bool>, ds: &mut Dataset) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in &entries {
        if p.is_dir() {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            let l = match name.as_str() {
                "free" | "empty" => Some(false),
                "occupied" => Some(true),
                _ => label,
            };
            walk(p, l, ds)?;
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.eq_ignore_ascii_case("xml"))
            .unwrap_or(false)
        {
            if let Some(img) = ["jpg", "jpeg", "png", "JPG", "PNG"]
                .iter()
                .map(|e| p.with_extension(e))
                .find(|c| c.is_file())
            {
                ds.frames.push((img, p.clone()));
            }
        } else if let (Some(l), true) = (label, is_image(p)) {
            ds.patches.push((p.clone(), l));
        }
    }
    Ok(())
}

/// Runs the classifier over the data set.
pub fn evaluate(classifier: &dyn Classifier, ds: &Dataset) -> anyhow::Result<EvalReport> {
    let mut conf = Confusion::default();
    let mut busy = Duration::ZERO;
    let mut batch = PatchBatch::with_capacity(PATCH_BATCH);
    let mut labels = Vec::new();
    let run = |batch: &mut PatchBatch,
               labels: &mut Vec<bool>,
               started: Instant,
               conf: &mut Confusion,
               busy: &mut Duration|
     -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let probs = classifier.classify(batch)?;
        *busy += started.elapsed();
        for (&l, &p) in labels.iter().zip(&probs) {
            conf.add(l, p);
        }
        batch.clear();
        labels.clear();
        Ok(())
    };
    // Patches: decoding is not timed; warp + inference are.
    for chunk in ds.patches.chunks(PATCH_BATCH) {
        let imgs: Vec<(image::RgbImage, bool)> = chunk
            .iter()
            .map(|(p, l)| {
                Ok((
                    image::open(p)
                        .with_context(|| format!("cannot read {}", p.display()))?
                        .to_rgb8(),
                    *l,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let t0 = Instant::now();
        for (img, l) in &imgs {
            batch.push_image(&ImageView::packed(
                img.as_raw(),
                img.width() as usize,
                img.height() as usize,
            )?);
            labels.push(*l);
        }
        run(&mut batch, &mut labels, t0, &mut conf, &mut busy)?;
    }
    // Frames with XML: one batch per frame.
    for (img_path, xml) in &ds.frames {
        let text = std::fs::read_to_string(xml)
            .with_context(|| format!("cannot read {}", xml.display()))?;
        let spaces = pklot::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", xml.display()))?;
        let img = image::open(img_path)
            .with_context(|| format!("cannot read {}", img_path.display()))?
            .to_rgb8();
        let view = ImageView::packed(img.as_raw(), img.width() as usize, img.height() as usize)?;
        let t0 = Instant::now();
        for s in &spaces {
            let (Some(occ), Some(q)) = (s.occupied, BayQuad::from_polygon(&s.polygon)) else {
                continue;
            };
            batch.push_warp(&view, &q);
            labels.push(occ);
        }
        run(&mut batch, &mut labels, t0, &mut conf, &mut busy)?;
    }
    let n = conf.samples();
    Ok(EvalReport {
        samples: n,
        free: conf.tn + conf.fp,
        occupied: conf.tp + conf.fn_,
        accuracy: conf.accuracy(),
        balanced_accuracy: conf.balanced_accuracy(),
        f1_occupied: conf.f1_occupied(),
        latency_ms_per_bay: if n == 0 {
            0.0
        } else {
            busy.as_secs_f64() * 1e3 / n as f64
        },
        confusion: conf,
        threshold: THRESHOLD,
        patch_files: ds.patches.len(),
        xml_frames: ds.frames.len(),
        model: classifier.name().to_string(),
    })
}

/// Human-readable report.
pub fn format_report(r: &EvalReport, data: &Path) -> String {
    let c = &r.confusion;
    format!(
        "occupancy evaluation of {} on {}\n\
         \x20 sources            {} patch file(s), {} frame(s) with XML\n\
         \x20 samples            {} (free {}, occupied {})\n\
         \x20 accuracy           {:.4}\n\
         \x20 balanced accuracy  {:.4}\n\
         \x20 F1 (occupied)      {:.4}\n\
         \x20 confusion matrix   (rows: truth, columns: predicted at p >= {})\n\
         \x20                      free  occupied\n\
         \x20   free          {:>8}  {:>8}\n\
         \x20   occupied      {:>8}  {:>8}\n\
         \x20 latency per bay    {:.3} ms (warp + batched inference, one thread)",
        r.model,
        data.display(),
        r.patch_files,
        r.xml_frames,
        r.samples,
        r.free,
        r.occupied,
        r.accuracy,
        r.balanced_accuracy,
        r.f1_occupied,
        r.threshold,
        c.tn,
        c.fp,
        c.fn_,
        c.tp,
        r.latency_ms_per_bay
    )
}

/// `lotsense eval occupancy`.
pub fn command(classifier: &dyn Classifier, data: &Path, json: bool) -> anyhow::Result<EvalReport> {
    let ds = discover(data)?;
    if ds.patches.is_empty() && ds.frames.is_empty() {
        anyhow::bail!("no labelled data under {}: expected images in `free/` and `occupied/` folders, or NAME.jpg + NAME.xml (PKLot) pairs", data.display());
    }
    let r = evaluate(classifier, &ds)?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("{}", format_report(&r, data));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_from_the_confusion_matrix() {
        let mut c = Confusion::default();
        for p in [0.9, 0.8, 0.7, 0.2] {
            c.add(true, p); // 3 tp, 1 fn
        }
        for p in [0.1, 0.6] {
            c.add(false, p); // 1 tn, 1 fp
        }
        assert_eq!(
            c,
            Confusion {
                tn: 1,
                fp: 1,
                fn_: 1,
                tp: 3
            }
        );
        assert!((c.accuracy() - 4.0 / 6.0).abs() < 1e-12);
        assert!((c.balanced_accuracy() - (0.75 + 0.5) / 2.0).abs() < 1e-12);
        assert!((c.f1_occupied() - 6.0 / 8.0).abs() < 1e-12);
        let empty = Confusion::default();
        assert_eq!(
            (
                empty.accuracy(),
                empty.balanced_accuracy(),
                empty.f1_occupied()
            ),
            (0.0, 0.0, 0.0)
        );
        // Threshold is inclusive.
        let mut t = Confusion::default();
        t.add(true, 0.5);
        assert_eq!(t.tp, 1);
    }

    #[test]
    fn discovers_patch_folders_and_xml_frames_recursively() {
        let d = tempfile::tempdir().unwrap();
        let mk = |p: &str| {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"x").unwrap();
        };
        mk("a/free/1.jpg");
        mk("a/occupied/sub/2.png");
        mk("a/occupied/notes.txt");
        mk("frames/day/f1.jpg");
        mk("frames/day/f1.xml");
        mk("frames/day/orphan.xml");
        let ds = discover(d.path()).unwrap();
        let names: Vec<(String, bool)> = ds
            .patches
            .iter()
            .map(|(p, l)| (p.file_name().unwrap().to_string_lossy().into_owned(), *l))
            .collect();
        assert_eq!(
            names,
            vec![("1.jpg".to_string(), false), ("2.png".to_string(), true)]
        );
        assert_eq!(ds.frames.len(), 1);
        assert!(ds.frames[0].0.ends_with("frames/day/f1.jpg"));
    }
}
