//! The default path with the real models: the plate proposal network finds
//! the plate, the text detector runs on the region around it, and the whole
//! frame is searched as well when the regions give no confident plate.

use lotsense::anpr::engine::{DetectPath, EngineSettings, PlateEngine};
use lotsense::anpr::{load_rgb, view_of};
use lotsense::onnx::OnnxRuntime;
use lotsense::vision::geometry::BoxF;
use lotsense::vision::plate_format::FormatConfig;
use std::path::Path;

const FRAME: &str = "testdata/anpr/ro/b68spk.jpg";

fn engine(formats: &[&str]) -> PlateEngine {
    let rt = OnnxRuntime::load(None).expect("ONNX Runtime (run `lotsense models fetch`)");
    let settings = EngineSettings {
        proposals: true,
        format: FormatConfig::with_presets(formats).unwrap(),
        ..EngineSettings::default()
    };
    let engine = PlateEngine::load(&rt, Path::new("models"), settings)
        .expect("models (run `lotsense models fetch`)");
    assert!(
        engine.uses_proposals(),
        "the committed proposal model is loaded"
    );
    engine
}

#[test]
fn the_plate_is_found_and_read_in_the_region_around_its_proposal() {
    let img = load_rgb(Path::new(FRAME)).unwrap();
    let r = engine(&["ro"]).process(&view_of(&img)).unwrap();
    assert_eq!(
        r.path,
        DetectPath::Regions,
        "a sure plate in a region needs no whole-frame search"
    );
    assert_eq!(r.hits[0].plate, "B68SPK");
    assert!(r.hits[0].format_matched);
    // The box is where the plate is (as the full-frame path finds it), in frame coordinates.
    let b = r.hits[0].bbox;
    assert!(b.x1 > 550.0 && b.x2 < 880.0, "box {b:?}");
}

#[test]
fn without_site_formats_a_read_of_letters_and_digits_is_sure() {
    let img = load_rgb(Path::new(FRAME)).unwrap();
    let r = engine(&[]).process(&view_of(&img)).unwrap();
    assert_eq!(r.path, DetectPath::Regions);
    assert_eq!(r.hits[0].plate, "B68SPK");
}

#[test]
fn a_read_that_matches_no_format_sends_the_frame_to_the_whole_frame_search() {
    // With Brazilian formats (three letters, four digits) the Romanian plate
    // is not a sure read: the whole frame is searched too, and the plate is
    // still reported (best effort), from that search.
    let img = load_rgb(Path::new(FRAME)).unwrap();
    let r = engine(&["br"]).process(&view_of(&img)).unwrap();
    assert_eq!(r.path, DetectPath::Fallback);
    assert!(!r.hits.is_empty() && !r.hits[0].format_matched);
    assert!(
        r.hits[0].raw_text.replace(' ', "").contains("68SPK"),
        "raw {}",
        r.hits[0].raw_text
    );
}

#[test]
fn a_proposal_on_a_plate_free_patch_yields_no_plate() {
    // The top-left corner of the frame is road and sky: a (wrong) proposal
    // there must not invent a plate.
    let img = load_rgb(Path::new(FRAME)).unwrap();
    let e = engine(&["ro"]);
    let r = e
        .process_with_proposals(&view_of(&img), &[BoxF::new(10.0, 10.0, 60.0, 22.0)])
        .unwrap();
    assert!(
        r.hits.is_empty(),
        "hits {:?}",
        r.hits.iter().map(|h| &h.plate).collect::<Vec<_>>()
    );
}

#[test]
fn reading_the_surest_box_first_reads_nothing_else_when_it_is_a_sure_plate() {
    let img = load_rgb(Path::new(FRAME)).unwrap();
    let mut e = engine(&["ro"]);
    e.settings.proposals = false;
    e.settings.read_surest_first = false;
    let all = e.process(&view_of(&img)).unwrap();
    let read_all = all.hits.len() + all.rejected.len();
    assert!(read_all > 1, "the frame holds other text than the plate");
    e.settings.read_surest_first = true;
    let first = e.process(&view_of(&img)).unwrap();
    assert_eq!(first.hits[0].plate, "B68SPK");
    assert_eq!(
        first.hits.len() + first.rejected.len(),
        1,
        "only the plate was read"
    );
    assert_eq!(first.hits[0].bbox, all.hits[0].bbox);
}

#[test]
fn a_region_read_with_a_doubtful_character_sends_the_frame_to_the_whole_frame_search() {
    let img = load_rgb(Path::new(FRAME)).unwrap();
    let mut e = engine(&["ro"]);
    let region = e.process(&view_of(&img)).unwrap();
    assert_eq!(region.path, DetectPath::Regions);
    let least = region.hits[0].read.min_conf();
    // The same sure read, but its least sure character is now below the bar:
    // the whole frame decides, and reads the same plate there.
    e.settings.region_min_conf = least + 0.001;
    let r = e.process(&view_of(&img)).unwrap();
    assert_eq!(r.path, DetectPath::Fallback);
    assert_eq!(r.hits[0].plate, "B68SPK");
    // Exactly at the bar it is confident.
    e.settings.region_min_conf = least;
    assert_eq!(e.process(&view_of(&img)).unwrap().path, DetectPath::Regions);
}
