//! `lotsense eval anpr`: detection recall, exact match (also with O == 0),
//! character error rate and latency over labelled folders.
//!
//! Two layouts are read, searched recursively; each folder holding samples is
//! a group (e.g. `us`, `eu`, `br`):
//! - OpenALPR end-to-end: `NAME.jpg` + `NAME.txt` with `image x y w h PLATE`;
//! - crop sets: `groundtruth.csv` (`file,state,PLATE`) beside `images/`.

use super::{load_rgb, view_of, PlateEngine};
use crate::vision::geometry::BoxF;
use crate::vision::plate_format::FormatConfig;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One labelled image.
#[derive(Debug, Clone)]
pub struct Sample {
    pub image: PathBuf,
    pub plate: String,
    /// Labelled plate box, when the set has one.
    pub bbox: Option<BoxF>,
    pub group: String,
}

/// Finds every sample under `root`.
pub fn load_dataset(root: &Path) -> Result<Vec<Sample>, String> {
    if !root.is_dir() {
        return Err(format!("{} is not a folder", root.display()));
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort_by(|a, b| a.image.cmp(&b.image));
    Ok(out)
}

fn group_name(root: &Path, dir: &Path) -> String {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    let s = rel.display().to_string();
    if s.is_empty() {
        root.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| ".".into())
    } else {
        s
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Sample>) -> Result<(), String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(root, &p, out)?;
        } else if p.file_name().is_some_and(|n| n == "groundtruth.csv") {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            for line in text.lines() {
                let f: Vec<&str> = line.trim().split(',').collect();
                if f.len() < 3 || !f[0].contains('.') {
                    continue; // header or blank
                }
                let image = dir.join("images").join(f[0]);
                if image.is_file() {
                    out.push(Sample {
                        image,
                        plate: normalise(f[2]),
                        bbox: None,
                        group: group_name(root, dir),
                    });
                }
            }
        } else if p.extension().is_some_and(|e| e == "txt") {
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            let f: Vec<&str> = text.split_whitespace().collect();
            if f.len() < 6 {
                continue;
            }
            let nums: Vec<f32> = f[1..5].iter().filter_map(|v| v.parse().ok()).collect();
            if nums.len() != 4 {
                continue;
            }
            let image = dir.join(f[0]);
            let image = if image.is_file() {
                image
            } else {
                p.with_extension("jpg")
            };
            if image.is_file() {
                out.push(Sample {
                    image,
                    plate: normalise(f[5]),
                    bbox: Some(BoxF::new(
                        nums[0],
                        nums[1],
                        nums[0] + nums[2],
                        nums[1] + nums[3],
                    )),
                    group: group_name(root, dir),
                });
            }
        }
    }
    Ok(())
}

fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn o0(s: &str) -> String {
    s.replace('O', "0")
}

/// Per-sample outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub image: String,
    pub group: String,
    pub truth: String,
    pub predicted: Option<String>,
    pub detected: Option<bool>,
    /// How the plates were looked for (`full_frame`, `regions`, `fallback`).
    pub path: &'static str,
    /// The other plates found in the frame, best first.
    pub candidates: Vec<String>,
    /// The chosen plate's selection score and whether it matched a format.
    pub score: Option<f32>,
    pub format_matched: Option<bool>,
    /// The chosen plate's lowest and mean character confidence.
    pub min_conf: Option<f32>,
    pub mean_conf: Option<f32>,
    pub ms: f64,
    /// Of `ms`: finding text (proposals and detector: pre, inference, post)
    /// and reading it (crops, reader, selection).
    pub detect_ms: f64,
    pub read_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Scores {
    pub frames: usize,
    /// Fraction of labelled boxes overlapped (IoU ≥ 0.5) by a detected text box; null without boxes.
    pub detect_recall: Option<f64>,
    /// Same at IoU ≥ 0.3 (text boxes hug the characters, labels the whole plate).
    pub detect_recall_iou03: Option<f64>,
    pub exact: f64,
    pub exact_o0: f64,
    pub cer: f64,
    pub latency_ms: Latency,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub all: Scores,
    pub by_group: BTreeMap<String, Scores>,
    /// Median ms per stage.
    pub stages_ms: BTreeMap<String, f64>,
    /// Frames by how plates were looked for (`full_frame`, `regions`, `fallback`).
    pub detect_paths: BTreeMap<String, usize>,
    pub settings: BTreeMap<String, String>,
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn scores(items: &[(&Outcome, Option<(bool, bool)>)]) -> Scores {
    let n = items.len();
    if n == 0 {
        return Scores::default();
    }
    let exact = items
        .iter()
        .filter(|(o, _)| o.predicted.as_deref() == Some(o.truth.as_str()))
        .count();
    let exact_o0 = items
        .iter()
        .filter(|(o, _)| o.predicted.as_deref().map(o0) == Some(o0(&o.truth)))
        .count();
    let cer: f64 = items
        .iter()
        .map(|(o, _)| {
            crate::core::edit_count(o.predicted.as_deref().unwrap_or(""), &o.truth) as f64
                / o.truth.len().max(1) as f64
        })
        .sum::<f64>()
        / n as f64;
    let labelled: Vec<(bool, bool)> = items.iter().filter_map(|(_, d)| *d).collect();
    let recall = |f: fn(&(bool, bool)) -> bool| {
        (!labelled.is_empty())
            .then(|| labelled.iter().filter(|d| f(d)).count() as f64 / labelled.len() as f64)
    };
    let mut lat: Vec<f64> = items.iter().map(|(o, _)| o.ms).collect();
    Scores {
        frames: n,
        detect_recall: recall(|d| d.0),
        detect_recall_iou03: recall(|d| d.1),
        exact: exact as f64 / n as f64,
        exact_o0: exact_o0 as f64 / n as f64,
        cer,
        latency_ms: Latency {
            p50: percentile(&mut lat, 0.5),
            p95: percentile(&mut lat, 0.95),
        },
    }
}

/// Measurement options beyond the engine's own settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvalOptions {
    /// Simulate a per-camera ROI covering this fraction of each side, placed
    /// to contain the labelled plate.
    pub roi_sim: Option<f32>,
    /// Give the regions path the labelled plate box as its only proposal:
    /// the accuracy a perfect proposal network would reach (an upper bound).
    pub oracle_proposals: bool,
}

/// Runs the engine over the samples. `group_formats` gives a group (country)
/// its own plate formats, as a site of that country would configure them.
pub fn evaluate(
    engine: &mut PlateEngine,
    samples: &[Sample],
    group_formats: &BTreeMap<String, FormatConfig>,
    opts: EvalOptions,
    mut progress: impl FnMut(usize),
) -> Result<(Report, Vec<Outcome>), String> {
    let roi_sim = opts.roi_sim;
    let default_format = engine.settings.format.clone();
    let mut current_group: Option<String> = None;
    let mut outcomes = Vec::new();
    let mut det = Vec::new();
    let mut stage: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut detect_paths: BTreeMap<String, usize> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        if current_group.as_deref() != Some(s.group.as_str()) {
            let f = group_formats
                .get(&s.group)
                .cloned()
                .unwrap_or_else(|| default_format.clone());
            engine.set_format(f).map_err(|e| e.to_string())?;
            current_group = Some(s.group.clone());
        }
        let img = load_rgb(&s.image)?;
        if let (Some(frac), Some(b)) = (roi_sim, s.bbox) {
            engine.settings.roi = Some(simulated_roi(img.width(), img.height(), &b, frac, i));
        }
        let t0 = Instant::now();
        let res = match (opts.oracle_proposals, s.bbox) {
            (true, Some(b)) => engine.process_with_proposals(&view_of(&img), &[b]),
            _ => engine.process(&view_of(&img)),
        }
        .map_err(|e| format!("{}: {e}", s.image.display()))?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        *detect_paths
            .entry(res.path.as_str().to_string())
            .or_default() += 1;
        let t = res.times;
        for (k, v) in [
            ("detect_pre", t.detect_pre),
            ("detect_infer", t.detect_infer),
            ("detect_post", t.detect_post),
            ("crop", t.crop),
            ("read", t.read),
            ("select", t.select),
        ] {
            stage.entry(k).or_default().push(v);
        }
        let d = s.bbox.map(|b| {
            let best = res
                .boxes
                .iter()
                .map(|tb| tb.quad.bbox().iou(&b))
                .fold(0.0f32, f32::max);
            (best >= 0.5, best >= 0.3)
        });
        det.push(d);
        outcomes.push(Outcome {
            image: s.image.display().to_string(),
            group: s.group.clone(),
            truth: s.plate.clone(),
            predicted: res.hits.first().map(|h| h.plate.clone()),
            detected: d.map(|x| x.0),
            path: res.path.as_str(),
            candidates: res.hits.iter().skip(1).map(|h| h.plate.clone()).collect(),
            score: res.hits.first().map(|h| h.score),
            format_matched: res.hits.first().map(|h| h.format_matched),
            min_conf: res.hits.first().map(|h| h.read.min_conf()),
            mean_conf: res.hits.first().map(|h| h.read.mean_conf()),
            ms,
            detect_ms: t.detect_pre + t.detect_infer + t.detect_post,
            read_ms: t.crop + t.read + t.select,
        });
        progress(i + 1);
    }
    let pairs: Vec<(&Outcome, Option<(bool, bool)>)> =
        outcomes.iter().zip(det.iter().copied()).collect();
    let mut by_group = BTreeMap::new();
    let groups: std::collections::BTreeSet<&str> =
        outcomes.iter().map(|o| o.group.as_str()).collect();
    for g in groups {
        let items: Vec<_> = pairs
            .iter()
            .filter(|(o, _)| o.group == g)
            .cloned()
            .collect();
        by_group.insert(g.to_string(), scores(&items));
    }
    let s = &engine.settings;
    let settings = BTreeMap::from([
        (
            "det_max_side".to_string(),
            s.det_max_side
                .unwrap_or(engine.detector.max_side)
                .to_string(),
        ),
        ("max_reads".to_string(), s.max_reads.to_string()),
        (
            "roi".to_string(),
            match roi_sim {
                Some(f) => format!("simulated per-camera ROI, {:.0}% of each side", f * 100.0),
                None => format!("{:?}", s.roi),
            },
        ),
        (
            "detector".to_string(),
            match (&engine.proposer, engine.uses_proposals()) {
                _ if opts.oracle_proposals => format!(
                    "labelled plate boxes as proposals → {} on regions (upper bound)",
                    engine.detector.name
                ),
                (Some(p), true) => format!(
                    "{} → {} on regions (fallback to the whole frame: {})",
                    p.name, engine.detector.name, s.fallback_full_frame
                ),
                _ => engine.detector.name.clone(),
            },
        ),
        ("reader".to_string(), engine.reader.name.clone()),
    ]);
    let stages_ms = stage
        .into_iter()
        .map(|(k, mut v)| {
            (
                k.to_string(),
                (percentile(&mut v, 0.5) * 100.0).round() / 100.0,
            )
        })
        .collect();
    Ok((
        Report {
            all: scores(&pairs),
            by_group,
            stages_ms,
            detect_paths,
            settings,
        },
        outcomes,
    ))
}

/// A camera's region of interest as an installer would set it: a fixed
/// fraction of the frame that contains the plate, placed at a pseudo-random
/// (deterministic) offset so the plate is not always centred.
pub fn simulated_roi(w: u32, h: u32, plate: &BoxF, frac: f32, seed: usize) -> [u32; 4] {
    let (rw, rh) = ((w as f32 * frac).round(), (h as f32 * frac).round());
    let pick = |lo: f32, hi: f32, k: usize| {
        // Golden-ratio sequence: spread, repeatable, independent of the label.
        let t = ((seed as f32 + 1.0) * 0.618_034 * (k as f32 + 1.0)).fract();
        if hi <= lo {
            lo
        } else {
            lo + t * (hi - lo)
        }
    };
    // The window's left edge may lie anywhere that keeps the plate inside it.
    let x = pick(
        (plate.x2 - rw).max(0.0),
        plate.x1.min(w as f32 - rw).max(0.0),
        0,
    );
    let y = pick(
        (plate.y2 - rh).max(0.0),
        plate.y1.min(h as f32 - rh).max(0.0),
        1,
    );
    [x as u32, y as u32, rw as u32, rh as u32]
}

/// Human-readable table.
pub fn print_report(r: &Report) {
    let pct = |v: Option<f64>| {
        v.map(|x| format!("{:5.1}%", x * 100.0))
            .unwrap_or_else(|| "    -".into())
    };
    println!(
        "{:<28} {:>6} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8}",
        "group", "frames", "det@0.5", "det@0.3", "exact", "exact_o0", "cer", "p50 ms", "p95 ms"
    );
    let row = |name: &str, s: &Scores| {
        println!(
            "{:<28} {:>6} {:>8} {:>8} {:>8} {:>8} {:>6.3} {:>8.0} {:>8.0}",
            name,
            s.frames,
            pct(s.detect_recall),
            pct(s.detect_recall_iou03),
            pct(Some(s.exact)),
            pct(Some(s.exact_o0)),
            s.cer,
            s.latency_ms.p50,
            s.latency_ms.p95
        )
    };
    for (g, s) in &r.by_group {
        row(g, s);
    }
    row("ALL", &r.all);
    println!(
        "median ms per stage: {}",
        r.stages_ms
            .iter()
            .map(|(k, v)| format!("{k} {v:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "frames by detection path: {}",
        r.detect_paths
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The `eval anpr` command: progress bar on a terminal, table or JSON.
pub fn run_command(
    engine: &mut PlateEngine,
    data: &Path,
    json: bool,
    limit: Option<usize>,
    outcomes_file: Option<&Path>,
    group_formats: &BTreeMap<String, FormatConfig>,
    opts: EvalOptions,
) -> anyhow::Result<()> {
    let mut samples = load_dataset(data).map_err(anyhow::Error::msg)?;
    if samples.is_empty() {
        anyhow::bail!("no labelled samples under {} (expected NAME.jpg + NAME.txt, or groundtruth.csv + images/)", data.display());
    }
    if let Some(n) = limit {
        samples.truncate(n);
    }
    let bar = indicatif::ProgressBar::new(samples.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} frames, {eta} left")
            .expect("valid template"),
    );
    let (report, outcomes) = evaluate(engine, &samples, group_formats, opts, |i| {
        bar.set_position(i as u64)
    })
    .map_err(anyhow::Error::msg)?;
    bar.finish_and_clear();
    if let Some(f) = outcomes_file {
        std::fs::write(f, serde_json::to_string_pretty(&outcomes)?)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}
