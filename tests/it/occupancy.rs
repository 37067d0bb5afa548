//! Bay occupancy pieces with the committed model and the real commands:
//! the classifier on the fixture patches (batched = one by one), `eval
//! occupancy` on patch folders and on frames with PKLot XML, `bays preview`,
//! the PKLot import in the config, and the camera pipeline's unknown logic
//! (offline, frozen, recovery) with a scripted classifier.

use lotsense::config::{BayImportConfig, CameraRole, SpaceType};
use lotsense::events::BayUpdate;
use lotsense::ingest::{Frame, FrameSlot};
use lotsense::metrics::Metrics;
use lotsense::occupancy::classifier::{Classifier, OnnxBayClassifier};
use lotsense::occupancy::pipeline::{CameraLink, CameraPipeline, PreparedBay};
use lotsense::occupancy::warp::{BayQuad, PatchBatch};
use lotsense::occupancy::{sampler::Sampler, tracker::BayTracker, OccupancyError, OccupancyStats};
use lotsense::testkit::{camera, SiteBuilder};
use lotsense::vision::image::ImageView;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MODEL: &str = "models/occupancy/bay_classifier.onnx";
const PATCHES: &str = "testdata/occupancy/patches";
const FRAMES: &str = "testdata/occupancy/frames";
const DEMO: &str = "testdata/demo/lotsense.toml";

fn lotsense(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lotsense"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn patch_files() -> Vec<(std::path::PathBuf, bool)> {
    let mut v = Vec::new();
    for (dir, occ) in [("free", false), ("occupied", true)] {
        let mut files: Vec<_> = std::fs::read_dir(Path::new(PATCHES).join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        v.extend(files.into_iter().map(|f| (f, occ)));
    }
    v
}

#[test]
fn the_model_classifies_the_fixture_patches_and_batching_changes_nothing() {
    let model = OnnxBayClassifier::load(Path::new(MODEL), None).unwrap();
    let files = patch_files();
    assert_eq!(files.len(), 20);
    let mut batch = PatchBatch::default();
    for (f, _) in &files {
        let img = image::open(f).unwrap().to_rgb8();
        assert_eq!(
            (img.width(), img.height()),
            (64, 32),
            "fixture patches are 64x32"
        );
        batch.push_image(&ImageView::packed(img.as_raw(), 64, 32).unwrap());
    }
    let all = model.classify(&batch).unwrap();
    for (k, ((f, occupied), p)) in files.iter().zip(&all).enumerate() {
        assert_eq!(*p >= 0.5, *occupied, "{} p={p}", f.display());
        // The same patch alone gives the same probability.
        let one = PatchBatch {
            data: batch.patch(k).to_vec(),
        };
        let alone = model.classify(&one).unwrap();
        assert!(
            (alone[0] - p).abs() < 1e-4,
            "{}: batched {p}, alone {}",
            f.display(),
            alone[0]
        );
    }
    assert!(model.classify(&PatchBatch::default()).unwrap().is_empty());
}

#[test]
fn eval_occupancy_on_patch_folders_prints_the_figures_and_json() {
    let (ok, out, err) = lotsense(&["eval", "occupancy", "--data", PATCHES, "--json"]);
    assert!(ok, "{err}");
    let j: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    for k in [
        "samples",
        "accuracy",
        "balanced_accuracy",
        "f1_occupied",
        "latency_ms_per_bay",
    ] {
        assert!(j[k].is_number(), "{k} missing: {j}");
    }
    assert_eq!(j["samples"], 20);
    assert_eq!(j["accuracy"], 1.0);
    assert!(j["latency_ms_per_bay"].as_f64().unwrap() > 0.0);
    let (ok, out, _) = lotsense(&["eval", "occupancy", "--data", PATCHES]);
    assert!(ok);
    for s in [
        "samples",
        "accuracy",
        "balanced accuracy",
        "F1 (occupied)",
        "confusion matrix",
        "latency per bay",
    ] {
        assert!(out.contains(s), "`{s}` missing in:\n{out}");
    }
}

#[test]
fn eval_occupancy_on_frames_with_pklot_xml_warps_each_polygon() {
    let (ok, out, err) = lotsense(&["eval", "occupancy", "--data", FRAMES, "--json"]);
    assert!(ok, "{err}");
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    // 2 frames x 33 labelled bays; the model (v1) misses bay 188 (a black
    // vehicle) in every frame, see testdata/occupancy/SOURCE.md.
    assert_eq!(j["samples"], 66);
    assert_eq!(j["xml_frames"], 2);
    assert!(j["accuracy"].as_f64().unwrap() >= 64.0 / 66.0 - 1e-9, "{j}");
    assert_eq!(j["confusion"]["fp"], 0);
    let (ok, _, err) = lotsense(&["eval", "occupancy", "--data", "testdata/clips"]);
    assert!(!ok && err.contains("no labelled data"), "{err}");
}

fn labels() -> std::collections::HashMap<String, String> {
    std::fs::read_to_string("testdata/occupancy/aerial-lot-labels.csv")
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect()
}

#[test]
fn bays_preview_draws_the_demo_camera_with_the_states_of_that_frame() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("overview.png");
    let frame = format!("{FRAMES}/aerial-lot-f060.jpg");
    let (ok, stdout, err) = lotsense(&[
        "bays",
        "preview",
        "--config",
        DEMO,
        "--camera",
        "overview",
        "--frame",
        &frame,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let png = image::open(&out).unwrap().to_rgb8();
    // 276x336 frame, enlarged 2x, plus the 14 px legend strip.
    assert_eq!((png.width(), png.height()), (552, 686));
    assert!(
        png.pixels().any(|p| p.0 == [40, 220, 40]) && png.pixels().any(|p| p.0 == [235, 30, 30])
    );
    let labels = labels();
    let mut n = 0;
    for line in stdout.lines().filter(|l| l.starts_with("O-")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[1], labels[f[0]], "{line}");
        n += 1;
    }
    assert_eq!(n, 32, "{stdout}");
    // Without --frame, one frame is taken from the camera (the demo's in-process RTSP clip).
    let out2 = dir.path().join("live.png");
    let (ok, _, err) = lotsense(&[
        "bays",
        "preview",
        "--config",
        DEMO,
        "--camera",
        "overview",
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out2.is_file());
    let (ok, _, err) = lotsense(&["bays", "preview", "--config", DEMO, "--camera", "gate-in"]);
    assert!(!ok && err.contains("not an overview camera"), "{err}");
}

#[test]
fn bays_are_imported_from_pklot_xml_and_bad_imports_are_located() {
    let xml = std::fs::canonicalize(format!("{FRAMES}/aerial-lot-f000.xml")).unwrap();
    let spaces = lotsense::config::pklot::parse(&std::fs::read_to_string(&xml).unwrap()).unwrap();
    let mut site =
        SiteBuilder::default().camera(camera("top", CameraRole::Overview, "rtsp://127.0.0.1:1/x"));
    for s in &spaces {
        site = site.space(format!("P-{}", s.id), SpaceType::Compact, "L1", "A", 0);
    }
    let import = |camera: &str, file: &Path, space_prefix: &str, scale: f32| BayImportConfig {
        camera: camera.into(),
        file: file.into(),
        space_prefix: space_prefix.into(),
        scale,
    };
    let good = site
        .clone()
        .occupancy(|o| o.imports.push(import("top", &xml, "P-", 2.0)));
    let c = good.try_config_as("test.toml").unwrap();
    assert_eq!(c.bays.len(), 33);
    let b = c.bays.iter().find(|b| b.space == "P-4").unwrap();
    assert_eq!(b.camera, "top");
    assert_eq!(
        b.polygon[0],
        [spaces[0].polygon[0][0] * 2.0, spaces[0].polygon[0][1] * 2.0]
    );
    // A prefix that names no space, a missing file, a gate camera.
    let bad = site.occupancy(|o| {
        o.imports.push(import("top", &xml, "Q-", 1.0));
        o.imports
            .push(import("nope", Path::new("missing.xml"), "", 1.0));
    });
    let e = bad.try_config_as("test.toml").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("33 space(s) not defined in [[spaces]]: `Q-4`"),
        "{msg}"
    );
    assert!(msg.contains("cannot read bay file missing.xml"), "{msg}");
    assert!(msg.contains("names camera `nope`"), "{msg}");
    assert!(e.problems().iter().all(|p| p.line.is_some()), "{msg}");
}

#[test]
fn bad_occupancy_settings_are_reported() {
    let site = SiteBuilder::default().occupancy(|o| {
        o.sample_rate = 0.0;
        o.low = 0.8;
        o.high = 0.2;
        o.required_samples = 0;
        o.frozen_secs = 0;
        o.sign_offsets.insert("Z".into(), 2);
    });
    let msg = site.try_config_as("t").unwrap_err().to_string();
    for s in [
        "sample_rate",
        "low < high",
        "required_samples",
        "frozen_secs",
        "zone `Z` has no spaces",
    ] {
        assert!(msg.contains(s), "`{s}` missing in {msg}");
    }
}

/// Probabilities from a script, for the pipeline's own logic.
struct Scripted(Mutex<f32>);
impl Classifier for Scripted {
    fn classify(&self, b: &PatchBatch) -> Result<Vec<f32>, OccupancyError> {
        Ok(vec![*self.0.lock().unwrap(); b.len()])
    }
    fn name(&self) -> &str {
        "scripted"
    }
}

fn frame(seq: u64, fill: u8) -> Frame {
    Frame {
        camera: Arc::from("cam"),
        seq,
        captured_at: chrono::Utc::now(),
        pts_ms: 0,
        width: 40,
        height: 20,
        stride: 120,
        data: Arc::new(vec![fill; 40 * 20 * 3]),
    }
}

#[test]
fn the_pipeline_makes_bays_unknown_when_the_camera_is_offline_or_frozen_and_recovers() {
    let slot = FrameSlot::new();
    let link = Arc::new(CameraLink::default());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<BayUpdate>>(64);
    let stop = Arc::new(AtomicBool::new(false));
    let cls = Arc::new(Scripted(Mutex::new(0.95)));
    let cfg = lotsense::core::hysteresis::HysteresisConfig {
        high: 0.7,
        low: 0.3,
        required_samples: 2,
        sample_timeout_secs: 30,
    };
    let spaces = vec!["A".to_string(), "B".to_string()];
    let quad =
        BayQuad::from_polygon(&[[0.0, 0.0], [20.0, 0.0], [20.0, 10.0], [0.0, 10.0]]).unwrap();
    let p = CameraPipeline {
        camera: "cam".into(),
        bays: spaces
            .iter()
            .map(|s| PreparedBay {
                space: s.clone(),
                quad,
            })
            .collect(),
        classifier: cls.clone(),
        tracker: BayTracker::new("cam", &spaces, cfg).unwrap(),
        sampler: Sampler::new(20.0, 1),
        slot: slot.clone(),
        link: link.clone(),
        out: tx,
        stats: Arc::new(OccupancyStats::default()),
        metrics: Arc::new(Metrics::new()),
        stop: stop.clone(),
    };
    let t = std::thread::spawn(move || p.run());
    let mut fill = 0u8;
    // Feeds changing frames every 60 ms until `n` updates arrived or 5 s passed.
    let mut feed = |n: usize,
                    frozen: bool,
                    rx: &mut tokio::sync::mpsc::Receiver<Vec<BayUpdate>>|
     -> Vec<BayUpdate> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < n && Instant::now() < deadline {
            if !frozen {
                fill = fill.wrapping_add(1);
            }
            slot.put(frame(fill as u64, fill));
            std::thread::sleep(Duration::from_millis(60));
            while let Ok(u) = rx.try_recv() {
                got.extend(u);
            }
        }
        got
    };
    let states = |u: &[BayUpdate]| {
        u.iter()
            .map(|u| format!("{}={}", u.space_id, u.state))
            .collect::<Vec<_>>()
    };
    let u = feed(2, false, &mut rx);
    assert_eq!(states(&u), vec!["A=occupied", "B=occupied"]);
    // The camera reports offline: unknown at once, without a frame.
    link.mark_offline();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut off = Vec::new();
    while off.len() < 2 && Instant::now() < deadline {
        if let Ok(u) = rx.try_recv() {
            off.extend(u);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(states(&off), vec!["A=unknown", "B=unknown"]);
    // Frames again (the classifier now says free): recovery after the streak.
    *cls.0.lock().unwrap() = 0.05;
    let u = feed(2, false, &mut rx);
    assert_eq!(states(&u), vec!["A=free", "B=free"]);
    // The picture freezes (identical frames) for longer than frozen_secs (1 s): unknown.
    let u = feed(2, true, &mut rx);
    assert_eq!(states(&u), vec!["A=unknown", "B=unknown"]);
    let u = feed(2, false, &mut rx);
    assert_eq!(states(&u), vec!["A=free", "B=free"]);
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
}

#[test]
fn bench_occupancy_runs_400_bays_in_one_call() {
    let model = OnnxBayClassifier::load(Path::new(MODEL), None).unwrap();
    let r = lotsense::occupancy::bench::run(&model, 3).unwrap();
    println!(
        "{}",
        lotsense::occupancy::bench::format(&r, "bay_classifier")
    );
    assert_eq!(r.bays, 400);
    assert!(r.median_ms > 0.0);
}
