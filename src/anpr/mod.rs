//! Gate cameras to plate reads: the plate engine (detection, reading,
//! formats, selection), the live per-camera pipeline (motion gate, tracking,
//! fusion, evidence, events), evaluation and benchmarks.

pub mod bench;
pub mod engine;
mod error;
pub mod eval;
pub mod evidence;
pub mod known;
pub mod live;
pub mod proposals;
pub mod text;
mod timing;
pub mod track;

pub use engine::{
    AnprError, EngineSettings, FrameResult, PlateEngine, PlateHit, StageTimes,
    DEFAULT_REGION_MIN_CONF,
};

use crate::vision::image::ImageView;
use std::path::Path;

/// Decodes an image file to packed RGB.
pub fn load_rgb(path: &Path) -> Result<image::RgbImage, String> {
    let img = image::ImageReader::open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .with_guessed_format()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .decode()
        .map_err(|e| format!("{}: cannot decode image: {e}", path.display()))?;
    Ok(img.to_rgb8())
}

/// A view over an `image` buffer.
pub fn view_of(img: &image::RgbImage) -> ImageView<'_> {
    ImageView::packed(img.as_raw(), img.width() as usize, img.height() as usize)
        .expect("image buffer matches its size")
}

/// `lotsense read IMAGE...`: prints each plate found with score and box.
pub fn read_command(
    engine: &PlateEngine,
    images: &[std::path::PathBuf],
    json: bool,
) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for path in images {
        let img = load_rgb(path).map_err(anyhow::Error::msg)?;
        let res = engine.process(&view_of(&img))?;
        let plates: Vec<serde_json::Value> = res
            .hits
            .iter()
            .map(|h| {
                serde_json::json!({
                    "plate": h.plate, "raw_text": h.raw_text, "score": round3(h.score),
                    "confidence": round3(h.read.mean_conf()), "format_matched": h.format_matched,
                    "box": [h.bbox.x1.round(), h.bbox.y1.round(), h.bbox.x2.round(), h.bbox.y2.round()],
                })
            })
            .collect();
        if json {
            all.push(serde_json::json!({ "image": path.display().to_string(), "plates": plates, "ms": round3(res.times.total() as f32) }));
        } else {
            println!("{} ({:.0} ms)", path.display(), res.times.total());
            if res.hits.is_empty() {
                println!("  no plate found");
            }
            if std::env::var_os("LOTSENSE_READ_ALL").is_some() {
                for (raw, why) in &res.rejected {
                    println!("  rejected {raw:?}: {why}");
                }
            }
            for h in &res.hits {
                println!(
                    "  {:<10} score {:.2}  conf {:.2}  box [{:.0}, {:.0}, {:.0}, {:.0}]  raw {:?}{}",
                    h.plate, h.score, h.read.mean_conf(), h.bbox.x1, h.bbox.y1, h.bbox.x2, h.bbox.y2, h.raw_text,
                    if h.format_matched { "" } else { "  (no format matched)" }
                );
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}

fn round3(v: f32) -> f64 {
    (v as f64 * 1000.0).round() / 1000.0
}
