//! `lotsense bench anpr`: per-frame latency at 720p and 1080p for the
//! engine settings that matter (detector input size, region of interest),
//! the cost of the motion gate on a static scene, and frames per second per
//! camera with N cameras when detection and reading run on separate threads.
//! Figures are printed; nothing is asserted.

use super::engine::{EngineSettings, PlateEngine, StageTimes};
use super::view_of;
use crate::onnx::OnnxRuntime;
use crate::vision::image::ImageView;
use crate::vision::motion::{downscale_grey, frame_motion};
use crate::vision::plate_format::FormatConfig;
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

const FRAME: &str = "testdata/anpr/ro/b68spk.jpg";

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn time_engine(
    engine: &PlateEngine,
    img: &ImageView,
    runs: usize,
) -> (f64, f64, StageTimes, String) {
    let _ = engine.process(img); // warm-up
    let mut totals = Vec::new();
    let mut sum = StageTimes::default();
    let mut plate = String::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let r = engine.process(img).expect("engine runs");
        totals.push(t0.elapsed().as_secs_f64() * 1000.0);
        let t = r.times;
        sum.detect_pre += t.detect_pre / runs as f64;
        sum.detect_infer += t.detect_infer / runs as f64;
        sum.detect_post += t.detect_post / runs as f64;
        sum.crop += t.crop / runs as f64;
        sum.read += t.read / runs as f64;
        sum.select += t.select / runs as f64;
        plate = r
            .hits
            .first()
            .map(|h| h.plate.clone())
            .unwrap_or_else(|| "-".into());
    }
    (
        percentile(&mut totals.clone(), 0.5),
        percentile(&mut totals, 0.95),
        sum,
        plate,
    )
}

/// A change to the engine settings for one benchmark variant (given the frame size).
type SettingsEdit = Box<dyn Fn(&mut EngineSettings, u32, u32)>;

pub fn run(models: &Path, runs: usize) -> anyhow::Result<()> {
    let rt = OnnxRuntime::load(None)?;
    let base = super::load_rgb(Path::new(FRAME)).map_err(anyhow::Error::msg)?;
    let f720 = image::imageops::resize(&base, 1280, 720, image::imageops::FilterType::Triangle);
    let f1080 = image::imageops::resize(&base, 1920, 1080, image::imageops::FilterType::Triangle);
    println!("lotsense bench anpr — one core per stage (intra-op threads 1), {runs} runs per row, frame {FRAME}");
    println!();
    println!(
        "{:<8} {:<34} {:>8} {:>8} {:>9} {:>9} {:>7} {:>8}  plate",
        "frame", "settings", "p50 ms", "p95 ms", "det pre", "det inf", "read", "other"
    );
    let variants: Vec<(&str, SettingsEdit)> = vec![
        (
            "full frame, detector 640",
            Box::new(|s, _, _| s.det_max_side = Some(640)),
        ),
        (
            "full frame, detector 960",
            Box::new(|s, _, _| s.det_max_side = Some(960)),
        ),
        (
            "full frame, detector 1280",
            Box::new(|s, _, _| s.det_max_side = Some(1280)),
        ),
        (
            "ROI lower-centre 50%, detector 640",
            Box::new(|s, w, h| {
                s.det_max_side = Some(640);
                s.roi = Some([w / 4, h * 2 / 5, w / 2, h / 2]);
            }),
        ),
        (
            "ROI lower-centre 50%, detector 480",
            Box::new(|s, w, h| {
                s.det_max_side = Some(480);
                s.roi = Some([w / 4, h * 2 / 5, w / 2, h / 2]);
            }),
        ),
    ];
    // The frame is Romanian: every row reads with the site formats a
    // Romanian site would configure (they decide what a sure plate is).
    let site = || EngineSettings {
        format: FormatConfig::with_presets(&["ro"]).expect("built-in preset"),
        ..EngineSettings::default()
    };
    let mut engine = PlateEngine::load(&rt, models, site())?;
    let proposals = engine.proposer.is_some();
    if !proposals {
        println!("(plate proposal model not present: only the full-frame rows)");
    }
    for (name, img) in [("720p", &f720), ("1080p", &f1080)] {
        if proposals {
            engine.settings = EngineSettings {
                proposals: true,
                read_surest_first: true,
                ..site()
            };
            let (p50, p95, t, plate) = time_engine(&engine, &view_of(img), runs);
            println!(
                "{:<8} {:<34} {:>8.1} {:>8.1} {:>9.1} {:>9.1} {:>7.1} {:>8.1}  {plate}",
                name,
                "proposals, surest first (default)",
                p50,
                p95,
                t.detect_pre,
                t.detect_infer,
                t.read,
                t.detect_post + t.crop + t.select
            );
        }
        for (label, apply) in &variants {
            // The full-frame rows: the text detector on the whole frame (or ROI), every plate-like box read.
            let mut s = EngineSettings {
                proposals: false,
                read_surest_first: false,
                ..site()
            };
            apply(&mut s, img.width(), img.height());
            engine.settings = s;
            let (p50, p95, t, plate) = time_engine(&engine, &view_of(img), runs);
            println!(
                "{:<8} {:<34} {:>8.1} {:>8.1} {:>9.1} {:>9.1} {:>7.1} {:>8.1}  {plate}",
                name,
                label,
                p50,
                p95,
                t.detect_pre,
                t.detect_infer,
                t.read,
                t.detect_post + t.crop + t.select
            );
        }
    }

    // Motion gate on a static scene: the whole cost of a frame nobody reads.
    let v = view_of(&f1080);
    let prev = downscale_grey(&v, 160, 90)?;
    let t0 = Instant::now();
    let n = 200;
    for _ in 0..n {
        let cur = downscale_grey(&v, 160, 90)?;
        let _ = frame_motion(&prev, &cur, 18, None)?;
    }
    println!();
    println!("motion gate (1080p → 160x90 grey, frame difference): {:.2} ms per frame; a static scene costs only this", t0.elapsed().as_secs_f64() * 1000.0 / n as f64);

    // The reader's cost per call: a frame's plate-like boxes are read in one
    // batch, each crop scaled to the reader's height and padded to at least
    // its minimum width (narrower inputs were measured to cost accuracy).
    let crop = image::imageops::crop_imm(&base, 0, 0, 160.min(base.width()), 40.min(base.height()))
        .to_image();
    let cv = view_of(&crop);
    print!(
        "\nreader ({}), one call with N plate crops:",
        engine.reader.name
    );
    for n in [1usize, 2, 4, 6] {
        let views = vec![cv; n];
        let _ = engine.reader.read(&views)?;
        let mut t = Vec::new();
        for _ in 0..runs.max(5) {
            let t0 = Instant::now();
            let _ = engine.reader.read(&views)?;
            t.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        print!("  N={n} {:.1} ms", percentile(&mut t, 0.5));
    }
    println!();

    // Pipelined throughput: detection on one thread, reading on another.
    println!();
    println!("throughput with detection and reading on separate threads (default settings, every frame moving):");
    println!(
        "{:<8} {:>12} {:>22} {:>22}",
        "frame", "frames/s", "fps per camera, N=2", "fps per camera, N=4"
    );
    engine.settings = site();
    let engine = std::sync::Arc::new(engine);
    for (name, img) in [("720p", &f720), ("1080p", &f1080)] {
        let frames = runs.max(8);
        let (tx, rx) = sync_channel(2);
        let e2 = engine.clone();
        let img2 = img.clone();
        let t0 = Instant::now();
        let det = std::thread::spawn(move || {
            let v = view_of(&img2);
            for _ in 0..frames {
                let mut t = StageTimes::default();
                let (boxes, _) = e2.detect(&v, e2.settings.roi, &mut t).expect("detect");
                tx.send(boxes).expect("reader alive");
            }
        });
        let v = view_of(img);
        for boxes in rx.iter() {
            let mut t = StageTimes::default();
            let _ = engine.read_boxes(&v, &boxes, &mut t)?;
        }
        det.join().expect("detect thread");
        let fps = frames as f64 / t0.elapsed().as_secs_f64();
        println!(
            "{:<8} {:>12.1} {:>22.1} {:>22.1}",
            name,
            fps,
            fps / 2.0,
            fps / 4.0
        );
    }
    Ok(())
}
