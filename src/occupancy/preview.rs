//! `lotsense bays preview`: draws a camera's bay polygons, their space ids
//! and their current state on a frame and writes a PNG, so an installer can
//! check the layout by eye.
//!
//! The state shown is the classifier's verdict on that one frame (no
//! hysteresis): green free, red occupied, amber undecided (between the
//! thresholds), blue when no classifier could be loaded.

use super::classifier::{Classifier, OnnxBayClassifier};
use super::warp::{BayQuad, PatchBatch};
use crate::config::{CameraRole, Config};
use crate::core::hysteresis::BayState;
use crate::vision::image::ImageView;
use anyhow::{bail, Context};
use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One bay to draw.
#[derive(Debug, Clone)]
pub struct PreviewBay {
    pub space: String,
    pub polygon: Vec<[f32; 2]>,
    /// `None`: no classifier verdict.
    pub state: Option<BayState>,
    pub probability: Option<f32>,
}

const FREE: Rgb<u8> = Rgb([40, 220, 40]);
const OCCUPIED: Rgb<u8> = Rgb([235, 30, 30]);
const UNDECIDED: Rgb<u8> = Rgb([255, 190, 0]);
const NO_MODEL: Rgb<u8> = Rgb([40, 160, 255]);

fn colour(state: Option<BayState>) -> Rgb<u8> {
    match state {
        Some(BayState::Free) => FREE,
        Some(BayState::Occupied) => OCCUPIED,
        Some(BayState::Unknown) => UNDECIDED,
        None => NO_MODEL,
    }
}

/// Renders the preview: the frame (enlarged to at least ~800 px wide so the
/// labels are legible), a legend strip on top, each polygon outlined in its
/// state's colour with its space id.
pub fn render(frame: &RgbImage, bays: &[PreviewBay]) -> RgbImage {
    let s = (800 / frame.width().max(1)).clamp(1, 4);
    let big = if s > 1 {
        image::imageops::resize(
            frame,
            frame.width() * s,
            frame.height() * s,
            image::imageops::FilterType::Triangle,
        )
    } else {
        frame.clone()
    };
    const STRIP: u32 = 14;
    let mut out = RgbImage::from_pixel(big.width(), big.height() + STRIP, Rgb([0, 0, 0]));
    image::imageops::replace(&mut out, &big, 0, STRIP as i64);
    let sf = s as f32;
    for bay in bays {
        let c = colour(bay.state);
        let pts: Vec<(f32, f32)> = bay
            .polygon
            .iter()
            .map(|p| (p[0] * sf, p[1] * sf + STRIP as f32))
            .collect();
        for i in 0..pts.len() {
            line(&mut out, pts[i], pts[(i + 1) % pts.len()], c, 2);
        }
        let n = pts.len().max(1) as f32;
        let (cx, cy) = pts
            .iter()
            .fold((0.0, 0.0), |a, p| (a.0 + p.0 / n, a.1 + p.1 / n));
        let tw = text_width(&bay.space) as f32;
        label(
            &mut out,
            (cx - tw / 2.0) as i64,
            (cy - 4.0) as i64,
            &bay.space,
            c,
        );
    }
    let count = |st: Option<BayState>| bays.iter().filter(|b| b.state == st).count();
    let legend = if bays.iter().all(|b| b.state.is_none()) {
        format!("{} BAYS - NO CLASSIFIER", bays.len())
    } else {
        format!(
            "FREE {}  OCCUPIED {}  UNDECIDED {}",
            count(Some(BayState::Free)),
            count(Some(BayState::Occupied)),
            count(Some(BayState::Unknown))
        )
    };
    label(&mut out, 3, 3, &legend, Rgb([255, 255, 255]));
    out
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, c);
    }
}

/// A line `thick` pixels wide (DDA with a square brush).
fn line(img: &mut RgbImage, a: (f32, f32), b: (f32, f32), c: Rgb<u8>, thick: i64) {
    let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil().max(1.0) as i64;
    for k in 0..=steps {
        let t = k as f32 / steps as f32;
        let (x, y) = (
            (a.0 + (b.0 - a.0) * t).round() as i64,
            (a.1 + (b.1 - a.1) * t).round() as i64,
        );
        for dy in 0..thick {
            for dx in 0..thick {
                put(img, x + dx - thick / 2, y + dy - thick / 2, c);
            }
        }
    }
}

fn text_width(s: &str) -> u32 {
    s.chars().count() as u32 * 6 + 1
}

/// Text in the built-in 5x7 font on a black box, in colour `c`.
fn label(img: &mut RgbImage, x: i64, y: i64, s: &str, c: Rgb<u8>) {
    let w = text_width(s) as i64;
    for yy in y - 1..y + 8 {
        for xx in x - 1..x + w {
            put(img, xx, yy, Rgb([0, 0, 0]));
        }
    }
    for (i, ch) in s.chars().enumerate() {
        let g = glyph(ch);
        for (row, bits) in g.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    put(img, x + i as i64 * 6 + col, y + row as i64, c);
                }
            }
        }
    }
}

/// 5x7 glyphs (bit 4 = leftmost column) for what space ids and the legend use.
fn glyph(ch: char) -> [u8; 7] {
    match ch.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        ' ' => [0; 7],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    }
}

/// Classifies every bay on one frame; `None` states when there is no classifier.
pub fn judge(
    frame: &RgbImage,
    bays: &[(String, Vec<[f32; 2]>)],
    classifier: Option<&dyn Classifier>,
    low: f64,
    high: f64,
) -> anyhow::Result<Vec<PreviewBay>> {
    let mut out: Vec<PreviewBay> = bays
        .iter()
        .map(|(s, p)| PreviewBay {
            space: s.clone(),
            polygon: p.clone(),
            state: None,
            probability: None,
        })
        .collect();
    let Some(cls) = classifier else {
        return Ok(out);
    };
    let view = ImageView::packed(
        frame.as_raw(),
        frame.width() as usize,
        frame.height() as usize,
    )?;
    let mut batch = PatchBatch::with_capacity(bays.len());
    let mut idx = Vec::new();
    for (i, (_, poly)) in bays.iter().enumerate() {
        if let Some(q) = BayQuad::from_polygon(poly) {
            batch.push_warp(&view, &q);
            idx.push(i);
        }
    }
    let probs = cls.classify(&batch)?;
    for (&i, &p) in idx.iter().zip(&probs) {
        out[i].probability = Some(p);
        out[i].state = Some(if p as f64 >= high {
            BayState::Occupied
        } else if p as f64 <= low {
            BayState::Free
        } else {
            BayState::Unknown
        });
    }
    Ok(out)
}

/// One frame from a camera: its URL as configured (`rtsp://testserver/NAME`
/// is served from `testdata/clips/NAME.mp4` like the demo does).
pub fn grab_frame(config: &Config, camera: &str, timeout: Duration) -> anyhow::Result<RgbImage> {
    use crate::ingest::{self, pipeline::CameraSpec, CameraSource, FrameSlot};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let cam = config
        .camera(camera)
        .with_context(|| format!("camera `{camera}` is not in the config"))?;
    ingest::init_gstreamer()?;
    let mut server = None;
    let url = match cam.url.strip_prefix("rtsp://testserver/") {
        Some(m) => {
            let clip = PathBuf::from("testdata/clips").join(format!("{m}.mp4"));
            let s = ingest::testserver::TestCameraServer::start(0, &[(m, clip.as_path())])?;
            let u = s.url(m);
            server = Some(s);
            u
        }
        None => cam.url.clone(),
    };
    let source = CameraSource::from_url(camera, &url, false, false)?;
    let slot = FrameSlot::new();
    let (tx, _rx) = tokio::sync::mpsc::channel(16);
    let stop = Arc::new(AtomicBool::new(false));
    let (s2, st2) = (slot.clone(), stop.clone());
    let spec = CameraSpec::new(camera, source, cam.fps);
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let t = std::thread::spawn(move || ingest::run_camera(spec, s2, tx, metrics, st2));
    let frame = slot.take(timeout);
    stop.store(true, Ordering::Relaxed);
    let _ = t.join();
    drop(server);
    let f = frame.with_context(|| {
        format!(
            "no frame from camera `{camera}` ({}) within {} s; pass --frame IMAGE instead",
            cam.url,
            timeout.as_secs()
        )
    })?;
    Ok(f.to_rgb_image())
}

/// `lotsense bays preview`: returns the PNG's path.
pub fn command(
    config_path: &Path,
    camera: &str,
    frame: Option<&Path>,
    out: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let config = Config::load(config_path)?;
    let overview: Vec<&str> = config
        .cameras
        .iter()
        .filter(|c| c.role == CameraRole::Overview)
        .map(|c| c.id.as_str())
        .collect();
    match config.camera(camera) {
        None => bail!(
            "camera `{camera}` is not in {} (overview cameras: {})",
            config_path.display(),
            overview.join(", ")
        ),
        Some(c) if c.role != CameraRole::Overview => bail!(
            "camera `{camera}` is not an overview camera (overview cameras: {})",
            overview.join(", ")
        ),
        _ => {}
    }
    let bays: Vec<(String, Vec<[f32; 2]>)> = config
        .bays
        .iter()
        .filter(|b| b.camera == camera)
        .map(|b| (b.space.clone(), b.polygon.clone()))
        .collect();
    if bays.is_empty() {
        bail!("camera `{camera}` has no bays in {}", config_path.display());
    }
    let img = match frame {
        Some(p) => image::open(p)
            .with_context(|| format!("cannot read frame {}", p.display()))?
            .to_rgb8(),
        None => grab_frame(&config, camera, Duration::from_secs(20))?,
    };
    let classifier = match OnnxBayClassifier::load(
        &config.occupancy.model,
        config.onnxruntime.library.as_deref(),
    ) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("warning: {e}; drawing the polygons without states");
            None
        }
    };
    let judged = judge(
        &img,
        &bays,
        classifier.as_ref().map(|c| c as &dyn Classifier),
        config.occupancy.low,
        config.occupancy.high,
    )?;
    let png = render(&img, &judged);
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("bays-{camera}.png")));
    png.save(&out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    for b in &judged {
        let state = match b.state {
            Some(s) => s.as_str().replace("unknown", "undecided"),
            None => "-".into(),
        };
        println!(
            "{:<16} {:<10} {}",
            b.space,
            state,
            b.probability
                .map(|p| format!("p={p:.2}"))
                .unwrap_or_default()
        );
    }
    println!(
        "wrote {} ({}x{}, {} bays of camera `{camera}`)",
        out.display(),
        png.width(),
        png.height(),
        judged.len()
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_outlines_in_state_colours_and_labels() {
        let frame = RgbImage::from_pixel(200, 100, Rgb([100, 100, 100]));
        let bays = vec![
            PreviewBay {
                space: "A-1".into(),
                polygon: vec![[10.0, 10.0], [60.0, 10.0], [60.0, 40.0], [10.0, 40.0]],
                state: Some(BayState::Free),
                probability: Some(0.1),
            },
            PreviewBay {
                space: "A-2".into(),
                polygon: vec![[100.0, 10.0], [150.0, 10.0], [150.0, 40.0], [100.0, 40.0]],
                state: Some(BayState::Occupied),
                probability: Some(0.9),
            },
        ];
        let out = render(&frame, &bays);
        // 200 px wide → enlarged 4x, plus the legend strip.
        assert_eq!((out.width(), out.height()), (800, 414));
        let has = |c: Rgb<u8>| out.pixels().any(|p| *p == c);
        assert!(has(FREE) && has(OCCUPIED));
        assert!(!has(NO_MODEL));
        // The free bay's top edge at y = 10*4 + 14.
        assert_eq!(*out.get_pixel(120, 54), FREE);
    }
}
