//! The plate engine: one frame in, ranked plate reads out.
//!
//! Stages, each a typed hand-over:
//! 1. [`TextDetector::detect`]: frame (or its region of interest) → text boxes
//!    (PP-OCRv6 DB detector; pre/post-processing are pure functions in `vision`);
//! 2. box pre-filter: plate-like geometry only, at most `max_reads` boxes, so
//!    the reader (≈ 30 ms a box) runs on few crops;
//! 3. [`TextReader::read`]: deskewed crops (perspective warp of the rotated
//!    box) → CTC reads with per-character confidences and alternatives;
//! 4. format rules and plate selection (`vision::plate_format`, `plate_select`).
//!
//! The detector and reader are separate types so the live pipeline can run
//! them on separate threads.

pub use super::error::AnprError;
use super::proposals::{proposal_regions, PlateProposer, Region, RegionParams, PROPOSER};
use super::text::{crop_roi, TextDetector, TextReader};
use super::timing::ms;
pub use super::timing::StageTimes;
use crate::onnx::OnnxRuntime;
use crate::vision::crop::{crop_quad, expand_quad};
use crate::vision::ctc::CtcText;
use crate::vision::dbnet::TextBox;
use crate::vision::geometry::{BoxF, Quad};
use crate::vision::image::{ImageView, RgbImage};
use crate::vision::plate_format::{FormatConfig, FormatMatch, PlateFormatter};
use crate::vision::plate_select::{rank_plate_candidates, SelectionConfig, TextCandidate};
use crate::vision::read::{normalize_plate, LineRead};
use crate::vision::VisionError;
use std::path::Path;
use std::time::Instant;

/// Engine settings; the defaults are what the evaluation chose (see README).
/// What belongs to a model (input sizes, normalisation, decoding thresholds)
/// is in its `[model.spec]` in `models/manifest.toml`, not here.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The detector input's longer side (a multiple of the model's
    /// `size_multiple`); `None`: the model's `max_side`.
    pub det_max_side: Option<usize>,
    /// Look for plates only in this region `[x, y, w, h]` of the frame.
    pub roi: Option<[u32; 4]>,
    /// Boxes scoring below this are dropped (`lpr.detection_threshold`).
    pub detection_threshold: f32,
    /// Boxes smaller than this (pixels², frame scale) are dropped (`lpr.min_area`).
    pub min_area: f32,
    /// Plate-like text boxes: width/height within this range.
    pub min_aspect: f32,
    pub max_aspect: f32,
    /// At most this many boxes are read per frame (largest and surest first).
    pub max_reads: usize,
    /// Crops get this margin (fraction of the box height) before reading.
    /// Measured on the OpenALPR set: 0 gains US plates (77.2 → 79.2 % with
    /// O==0; frames and bolts are no longer read as characters) but loses EU
    /// ones (86.5 → 83.8 %, tight boxes cut characters), so 0.12 stays.
    pub crop_margin: f32,
    pub format: FormatConfig,
    pub selection: SelectionConfig,
    /// Use the plate proposal network (when loaded) to find plates, running
    /// the text detector only on regions around them, the whole frame only
    /// when they give no confident plate (on by default: as accurate as the
    /// whole frame on the OpenALPR frames at about a third of the median
    /// time; README, "Plate reading").
    pub proposals: bool,
    pub regions: RegionParams,
    /// On a proposal region the text detector sees the plate about this
    /// wide (pixels), with its input side at most `region_max_side`. 160
    /// rather than the 110 measured before: with the labelled boxes as
    /// proposals, 86.9 % exact (O==0) instead of 83.9 %.
    pub region_plate_width: f32,
    pub region_max_side: usize,
    /// When the regions give no confident plate, look at the whole frame as
    /// well (see [`PlateEngine::needs_full_frame`]; the live pipeline's
    /// reader does the same).
    pub fallback_full_frame: bool,
    /// With proposals: also run the text detector on the whole frame at
    /// this small input side and add its plate-like boxes to the proposals.
    pub coarse_side: Option<usize>,
    /// Read the surest plate-like box alone first and the others only when
    /// it is not a sure plate (letters and digits, format matched).
    pub read_surest_first: bool,
    /// A plate read from a proposal's region is taken as is only when it is
    /// sure and its least sure character reaches this; otherwise the whole
    /// frame is searched too (see [`PlateEngine::process`]).
    pub region_min_conf: f32,
}

/// The site file's default `[lpr] region_min_confidence` (chosen and
/// measured as documented there).
pub const DEFAULT_REGION_MIN_CONF: f32 = crate::config::DEFAULT_REGION_MIN_CONFIDENCE;

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            det_max_side: None,
            roi: None,
            detection_threshold: 0.5,
            min_area: 60.0,
            min_aspect: 1.2,
            max_aspect: 12.0,
            max_reads: 6,
            crop_margin: 0.12,
            format: FormatConfig::default(),
            selection: SelectionConfig::default(),
            proposals: true,
            regions: RegionParams::default(),
            region_plate_width: 160.0,
            region_max_side: 480,
            fallback_full_frame: true,
            coarse_side: None,
            read_surest_first: true,
            region_min_conf: DEFAULT_REGION_MIN_CONF,
        }
    }
}

impl EngineSettings {
    /// Settings from the site's `[lpr]` section.
    pub fn from_lpr(lpr: &crate::config::LprConfig) -> Result<Self, VisionError> {
        let mut format = FormatConfig {
            min_plate_length: lpr.min_plate_length,
            ..FormatConfig::default()
        };
        if !lpr.format.is_empty() {
            let patterns = lpr.format.clone();
            format
                .regions
                .push(crate::vision::plate_format::RegionFormat {
                    name: "site".into(),
                    patterns,
                });
        }
        format.replace_rules = lpr
            .replace_rules
            .iter()
            .map(|r| crate::vision::plate_format::ReplaceRule {
                pattern: r.pattern.clone(),
                replacement: r.replacement.clone(),
            })
            .collect();
        PlateFormatter::new(&format)?;
        Ok(Self {
            detection_threshold: lpr.detection_threshold,
            det_max_side: lpr.detector_max_side,
            proposals: lpr.proposals,
            fallback_full_frame: lpr.proposal_fallback,
            read_surest_first: lpr.read_surest_first,
            region_min_conf: lpr.region_min_confidence,
            min_area: lpr.min_area as f32,
            format,
            ..Self::default()
        })
    }
}

/// One plate found in a frame.
#[derive(Debug, Clone)]
pub struct PlateHit {
    /// Final plate text (format rules applied).
    pub plate: String,
    /// Reader output before normalisation.
    pub raw_text: String,
    /// Characters aligned with `plate` (confidences, alternatives).
    pub read: LineRead,
    pub format: Option<FormatMatch>,
    pub format_matched: bool,
    /// Selection score (higher is more plate-like).
    pub score: f32,
    pub det_score: f32,
    pub quad: Quad,
    pub bbox: BoxF,
    /// The exact crop that was read.
    pub crop: RgbImage,
}

/// All text boxes (for recall measurements) and the ranked plate hits.
#[derive(Debug, Clone, Default)]
pub struct FrameResult {
    pub boxes: Vec<TextBox>,
    pub hits: Vec<PlateHit>,
    /// Texts that were read but rejected as plates, with the reason (for `read --all`).
    pub rejected: Vec<(String, String)>,
    pub times: StageTimes,
    pub path: DetectPath,
}

/// How a frame's plates were looked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DetectPath {
    /// The text detector on the whole frame (or ROI).
    #[default]
    FullFrame,
    /// Only on the regions around the proposals.
    Regions,
    /// Regions first, then the whole frame because they gave no plate.
    Fallback,
}

impl DetectPath {
    pub fn as_str(self) -> &'static str {
        match self {
            DetectPath::FullFrame => "full_frame",
            DetectPath::Regions => "regions",
            DetectPath::Fallback => "fallback",
        }
    }
}

pub use crate::models::{DETECTOR, READER};

/// Detector + reader + rules.
pub struct PlateEngine {
    pub detector: TextDetector,
    pub reader: TextReader,
    /// The fast first stage, when its model is present.
    pub proposer: Option<PlateProposer>,
    formatter: PlateFormatter,
    pub settings: EngineSettings,
}

impl PlateEngine {
    /// Loads the default models from the models folder, each with its
    /// `[model.spec]` from the manifest there.
    pub fn load(
        rt: &OnnxRuntime,
        models_dir: &Path,
        settings: EngineSettings,
    ) -> Result<Self, AnprError> {
        let manifest = crate::models::Manifest::load(models_dir)?;
        let (det, rec) = (DETECTOR, READER);
        Ok(Self {
            detector: TextDetector::new(
                rt,
                &crate::models::model_path(models_dir, det)?,
                manifest.spec(det)?,
            )?,
            reader: TextReader::new(
                rt,
                &crate::models::model_path(models_dir, rec)?,
                manifest.spec(rec)?,
            )?,
            proposer: match crate::models::model_path(models_dir, PROPOSER) {
                Ok(p) if p.exists() => Some(PlateProposer::new(rt, &p, manifest.spec(PROPOSER)?)?),
                _ => None,
            },
            formatter: PlateFormatter::new(&settings.format)?,
            settings,
        })
    }

    pub fn formatter(&self) -> &PlateFormatter {
        &self.formatter
    }

    /// Replaces the plate formats (e.g. per country group in an evaluation).
    pub fn set_format(&mut self, format: FormatConfig) -> Result<(), AnprError> {
        self.formatter = PlateFormatter::new(&format)?;
        self.settings.format = format;
        Ok(())
    }

    /// Whether plates are found by proposals first.
    pub fn uses_proposals(&self) -> bool {
        self.settings.proposals && self.proposer.is_some()
    }

    /// Stage 1: text boxes in frame coordinates inside `roi`. With the
    /// proposal network: boxes in the regions around its proposals, or (with
    /// `fallback_full_frame`) of the whole `roi` when the regions hold no
    /// plate-like box. Returns the boxes and whether they came from regions.
    pub fn detect(
        &self,
        img: &ImageView,
        roi: Option<[u32; 4]>,
        t: &mut StageTimes,
    ) -> Result<(Vec<TextBox>, bool), AnprError> {
        let s = &self.settings;
        if let Some(p) = self.proposer_for(img, roi) {
            let boxes = self.detect_regions(p, img, roi, t)?;
            if !s.fallback_full_frame || !prefilter(&boxes, s).is_empty() {
                return Ok((boxes, true));
            }
        }
        Ok((
            self.detector.detect_in(img, roi, self.full_side(), t)?,
            false,
        ))
    }

    /// The proposer, when proposals are on and can save work on this frame:
    /// a frame (or ROI) whose longer side is at most `region_max_side` costs
    /// the text detector no more than one region would (a plate crop, a
    /// small camera), and the proposer is not made for plates that fill the
    /// frame (on the OpenALPR US crops it proposed parts of them).
    fn proposer_for(&self, img: &ImageView, roi: Option<[u32; 4]>) -> Option<&PlateProposer> {
        let (view, _) = crop_roi(img, roi);
        self.proposer.as_ref().filter(|_| {
            self.settings.proposals && view.width.max(view.height) > self.settings.region_max_side
        })
    }

    fn detect_regions(
        &self,
        p: &PlateProposer,
        img: &ImageView,
        roi: Option<[u32; 4]>,
        t: &mut StageTimes,
    ) -> Result<Vec<TextBox>, AnprError> {
        let (regions, off) = self.regions(p, img, roi, t)?;
        let mut boxes = Vec::new();
        for r in &regions {
            boxes.extend(self.detect_region(r, img, off, t)?);
        }
        Ok(boxes)
    }

    /// The regions around the plate proposals in `roi` (best proposal
    /// first: the proposer returns its boxes surest first and a merged
    /// region keeps the place of its surest member) and the ROI's offset.
    fn regions(
        &self,
        p: &PlateProposer,
        img: &ImageView,
        roi: Option<[u32; 4]>,
        t: &mut StageTimes,
    ) -> Result<(Vec<Region>, [u32; 2]), AnprError> {
        let (view, off) = crop_roi(img, roi);
        let mut props: Vec<BoxF> = p.propose(&view, t)?.iter().map(|d| d.bbox).collect();
        if let Some(side) = self.settings.coarse_side {
            let coarse = self.detector.detect_in(img, roi, side, t)?;
            let (ox, oy) = (off[0] as f32, off[1] as f32);
            props.extend(prefilter(&coarse, &self.settings).iter().map(|b| {
                let bb = b.quad.bbox();
                BoxF::new(bb.x1 - ox, bb.y1 - oy, bb.x2 - ox, bb.y2 - oy)
            }));
        }
        Ok((
            proposal_regions(&props, view.width, view.height, &self.settings.regions),
            off,
        ))
    }

    /// The text detector on the regions around `props` (boxes in the
    /// coordinates of the `size` view at offset `off` of `img`).
    fn detect_around(
        &self,
        props: &[BoxF],
        img: &ImageView,
        size: (usize, usize),
        off: [u32; 2],
        t: &mut StageTimes,
    ) -> Result<Vec<TextBox>, AnprError> {
        let mut boxes = Vec::new();
        for r in proposal_regions(props, size.0, size.1, &self.settings.regions) {
            boxes.extend(self.detect_region(&r, img, off, t)?);
        }
        Ok(boxes)
    }

    /// The text detector on one region (in the coordinates of the view at
    /// offset `off` of `img`).
    fn detect_region(
        &self,
        r: &Region,
        img: &ImageView,
        off: [u32; 2],
        t: &mut StageTimes,
    ) -> Result<Vec<TextBox>, AnprError> {
        let s = &self.settings;
        // The detector sees the plate at about the size it reads best
        // (`region_plate_width`): a small plate is enlarged, a close one
        // shrunk; a plate at its native size is split into character groups
        // more often.
        let [x, y, w, h] = r.rect;
        let scale = (s.region_plate_width / r.plate_width.max(1.0)).clamp(0.25, 4.0);
        let side = ((w.max(h) as f32 * scale).round() as usize).clamp(64, s.region_max_side);
        self.detector
            .detect_scaled(img, Some([x + off[0], y + off[1], w, h]), side, t)
    }

    /// The proposal path of [`Self::process`]: one region at a time, best
    /// proposal first, each region's text read before the next is looked
    /// at; it stops at the first confident plate (most frames hold one
    /// plate, and its proposal is usually the surest), so the other regions
    /// cost nothing. Hits come out best first: the confident one, else all
    /// by selection score.
    fn read_regions(
        &self,
        p: &PlateProposer,
        img: &ImageView,
        t: &mut StageTimes,
        rejected: &mut Vec<(String, String)>,
    ) -> Result<(Vec<TextBox>, Vec<PlateHit>), AnprError> {
        let (regions, off) = self.regions(p, img, self.settings.roi, t)?;
        let (mut boxes, mut hits) = (Vec::new(), Vec::new());
        for r in &regions {
            let found = self.detect_region(r, img, off, t)?;
            let mut read = self.read_boxes_explained(img, &found, t, Some(&mut *rejected))?;
            boxes.extend(found);
            if read.first().is_some_and(|h| self.is_confident(h)) {
                read.append(&mut hits);
                return Ok((boxes, read));
            }
            hits.append(&mut read);
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok((boxes, hits))
    }

    /// Full pipeline on one frame. With proposals, the regions are read
    /// first ([`Self::read_regions`]), and the whole frame is searched too
    /// when they give no confident plate: a read of letters and digits that
    /// matches the site's formats (if it has any) and whose least sure
    /// character reaches `region_min_conf` (see `fallback_full_frame`).
    pub fn process(&self, img: &ImageView) -> Result<FrameResult, AnprError> {
        let mut times = StageTimes::default();
        let mut rejected = Vec::new();
        let roi = self.settings.roi;
        let Some(p) = self.proposer_for(img, roi) else {
            let (boxes, hits) = self.whole_frame(img, roi, &mut times, Some(&mut rejected))?;
            return Ok(FrameResult {
                boxes,
                hits,
                rejected,
                times,
                path: DetectPath::FullFrame,
            });
        };
        let (mut boxes, mut hits) = self.read_regions(p, img, &mut times, &mut rejected)?;
        // A region can hold text that passes a loose format (a camera's
        // timestamp, a sign's word) while the plate itself was not proposed,
        // and a region read with a doubtful character is no better than a
        // guess: then the whole frame's read (the accurate path) decides.
        if !self.needs_full_frame(&hits) {
            return Ok(FrameResult {
                boxes,
                hits,
                rejected,
                times,
                path: DetectPath::Regions,
            });
        }
        let (full, full_hits) = self.whole_frame(img, roi, &mut times, Some(&mut rejected))?;
        // The whole frame's plates replace the regions' unsure one, unless it has none.
        if !full_hits.is_empty() || hits.is_empty() {
            (boxes, hits) = (full, full_hits);
        }
        Ok(FrameResult {
            boxes,
            hits,
            rejected,
            times,
            path: DetectPath::Fallback,
        })
    }

    /// The regions path with the plate boxes given instead of proposed, no
    /// fallback: `eval anpr --oracle-proposals` measures with it what a
    /// perfect proposal network would give (an upper bound, not a mode).
    pub fn process_with_proposals(
        &self,
        img: &ImageView,
        props: &[BoxF],
    ) -> Result<FrameResult, AnprError> {
        let mut times = StageTimes::default();
        let boxes = self.detect_around(props, img, (img.width, img.height), [0, 0], &mut times)?;
        let mut rejected = Vec::new();
        let hits = self.read_boxes_explained(img, &boxes, &mut times, Some(&mut rejected))?;
        Ok(FrameResult {
            boxes,
            hits,
            rejected,
            times,
            path: DetectPath::Regions,
        })
    }

    /// Whether the plates read from the proposals' regions (best first) call
    /// for the whole-frame search: no confident plate, and the fallback is on.
    pub fn needs_full_frame(&self, region_hits: &[PlateHit]) -> bool {
        self.settings.fallback_full_frame
            && !region_hits.first().is_some_and(|h| self.is_confident(h))
    }

    /// The text detector on the whole frame (or `roi`) at the accurate
    /// input size, and the plates read there: the fallback of the live
    /// pipeline's reader (see [`Self::needs_full_frame`]).
    pub fn full_frame(
        &self,
        img: &ImageView,
        roi: Option<[u32; 4]>,
        t: &mut StageTimes,
    ) -> Result<(Vec<TextBox>, Vec<PlateHit>), AnprError> {
        self.whole_frame(img, roi, t, None)
    }

    fn whole_frame(
        &self,
        img: &ImageView,
        roi: Option<[u32; 4]>,
        t: &mut StageTimes,
        rejected: Option<&mut Vec<(String, String)>>,
    ) -> Result<(Vec<TextBox>, Vec<PlateHit>), AnprError> {
        let boxes = self.detector.detect_in(img, roi, self.full_side(), t)?;
        let hits = self.read_boxes_explained(img, &boxes, t, rejected)?;
        Ok((boxes, hits))
    }

    /// The text detector's input side on a whole frame.
    fn full_side(&self) -> usize {
        self.settings.det_max_side.unwrap_or(self.detector.max_side)
    }

    /// A region's read taken without looking at the whole frame: sure, and
    /// no character below `region_min_conf`.
    fn is_confident(&self, h: &PlateHit) -> bool {
        self.is_sure(h.format_matched, &h.read)
            && h.read.min_conf() >= self.settings.region_min_conf
    }

    /// A sure plate: letters and digits, matching the site's formats when it
    /// has any. (Timestamps, dates and sign words are not.)
    fn is_sure(&self, format_matched: bool, read: &LineRead) -> bool {
        (format_matched || self.formatter.patterns().is_empty())
            && read.has_letter()
            && read.has_digit()
    }

    /// Stages 2–4 on boxes from the detector.
    pub fn read_boxes(
        &self,
        img: &ImageView,
        boxes: &[TextBox],
        times: &mut StageTimes,
    ) -> Result<Vec<PlateHit>, AnprError> {
        self.read_boxes_explained(img, boxes, times, None)
    }

    fn read_boxes_explained(
        &self,
        img: &ImageView,
        boxes: &[TextBox],
        times: &mut StageTimes,
        rejected: Option<&mut Vec<(String, String)>>,
    ) -> Result<Vec<PlateHit>, AnprError> {
        let s = &self.settings;
        let t0 = Instant::now();
        let chosen = prefilter(boxes, s);
        let quads: Vec<Quad> = chosen
            .iter()
            .map(|b| expand_quad(&b.quad, s.crop_margin).clip(img.width as f32, img.height as f32))
            .collect();
        let crops: Vec<(usize, RgbImage)> = quads
            .iter()
            .enumerate()
            .filter_map(|(i, q)| crop_quad(img, q, false).map(|c| (i, c)))
            .collect();
        times.crop += ms(t0);
        let t0 = Instant::now();
        let views: Vec<ImageView> = crops.iter().map(|(_, c)| c.view()).collect();
        // Each crop costs the reader about as much as the first (it is padded
        // to the reader's minimum width): the surest box is read alone first,
        // and the others only when it is not a sure plate.
        let first = if s.read_surest_first && views.len() > 1 {
            1
        } else {
            views.len()
        };
        let mut texts = self.reader.read(&views[..first])?;
        times.read += ms(t0);
        let t0 = Instant::now();
        let rank = |texts: &[CtcText]| {
            let cands: Vec<TextCandidate> = crops
                .iter()
                .zip(texts)
                .map(|((i, _), t)| TextCandidate {
                    quad: chosen[*i].quad,
                    det_score: chosen[*i].score,
                    raw_text: t.text(),
                    read: normalize_plate(t),
                })
                .collect();
            let ranked = rank_plate_candidates(&cands, Some(&self.formatter), &s.selection);
            (cands, ranked)
        };
        let (mut cands, mut ranked) = rank(&texts);
        let top_sure = ranked.first().is_some_and(|r| {
            let read = r
                .format
                .as_ref()
                .map(|f| &f.read)
                .unwrap_or(&cands[r.index].read);
            r.reject.is_none()
                && self.is_sure(r.format.as_ref().is_some_and(|f| f.format_matched), read)
        });
        times.select += ms(t0);
        if first < views.len() && !top_sure {
            let t0 = Instant::now();
            texts.extend(self.reader.read(&views[first..])?);
            times.read += ms(t0);
            (cands, ranked) = rank(&texts);
        }
        let t0 = Instant::now();
        let mut hits = Vec::new();
        if let Some(out) = rejected {
            for r in ranked.iter().filter(|r| r.reject.is_some()) {
                out.push((cands[r.index].raw_text.clone(), format!("{:?}", r.reject)));
            }
        }
        for r in ranked.into_iter().filter(|r| r.reject.is_none()) {
            let c = &cands[r.index];
            let (ci, crop) = &crops[r.index];
            let read = r
                .format
                .as_ref()
                .map(|f| f.read.clone())
                .unwrap_or_else(|| c.read.clone());
            hits.push(PlateHit {
                plate: r.text.clone(),
                raw_text: c.raw_text.clone(),
                read,
                format_matched: r.format.as_ref().is_some_and(|f| f.format_matched),
                format: r.format,
                score: r.score,
                det_score: c.det_score,
                quad: quads[*ci],
                bbox: c.quad.bbox(),
                crop: crop.clone(),
            });
        }
        times.select += ms(t0);
        Ok(hits)
    }
}

/// Plate-like boxes only, surest and largest first, at most `max_reads`.
fn prefilter(boxes: &[TextBox], s: &EngineSettings) -> Vec<TextBox> {
    let mut v: Vec<TextBox> = boxes
        .iter()
        .filter(|b| {
            let (w, h) = (b.quad.width(), b.quad.height());
            let aspect = if h > 0.0 { w / h } else { 0.0 };
            b.score >= s.detection_threshold
                && w * h >= s.min_area
                && (s.min_aspect..=s.max_aspect).contains(&aspect)
        })
        .copied()
        .collect();
    v.sort_by(|a, b| {
        let ka = a.score * a.quad.height().sqrt();
        let kb = b.score * b.quad.height().sqrt();
        kb.total_cmp(&ka)
    });
    v.truncate(s.max_reads);
    v
}
