//! Choosing the plate among the text boxes of a frame (when the full-frame text detector
//! is used instead of a plate detector).
//!
//! Measured: dealer-frame text and model badges ("E150") beat the plate in about 5% of US
//! frames when the first/most confident box is taken, and a clock overlay appears as text.
//! The heuristics below are additive scores with hard rejections; weights are starting
//! points to be fitted on real data (each term is exposed in [`ScoreParts`] for that).

use serde::{Deserialize, Serialize};

use super::geometry::Quad;
use super::plate_format::{FormatMatch, PlateFormatter};
use super::read::LineRead;

/// One OCR'd text box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextCandidate {
    /// Text box in frame coordinates (tl, tr, br, bl).
    pub quad: Quad,
    /// Detector score of the box.
    pub det_score: f32,
    /// Reader output before normalisation (keeps `:`, lower case, punctuation).
    pub raw_text: String,
    /// Normalised read.
    pub read: LineRead,
}

/// Selection thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SelectionConfig {
    /// Plate length bounds (after format matching dropped band/state characters).
    pub min_chars: usize,
    pub max_chars: usize,
    /// Text box width/height bounds; outside them a box is rejected.
    pub min_aspect: f32,
    pub max_aspect: f32,
    /// Boxes whose text height is below this many frame pixels are rejected (unreadable).
    pub min_height_px: f32,
    /// A raw text containing any of these characters is rejected (`:` = clocks/timestamps).
    pub reject_chars: String,
    /// Upper-case words that mark non-plate text (brands, dealers, states, slogans). A
    /// read without digits that contains one is rejected.
    pub stop_words: Vec<String>,
}

/// Default stop words: dealer/brand/URL vocabulary and US state names (the state line on
/// US plates is separate text the detector finds).
pub const DEFAULT_STOP_WORDS: &[&str] = &[
    "WWW",
    "COM",
    "NET",
    "DEALER",
    "MOTORS",
    "MOTOR",
    "AUTO",
    "SALES",
    "CARS",
    "TOYOTA",
    "HONDA",
    "FORD",
    "CHEVROLET",
    "CHEVY",
    "NISSAN",
    "HYUNDAI",
    "DODGE",
    "JEEP",
    "SUBARU",
    "MAZDA",
    "VOLKSWAGEN",
    "BMW",
    "AUDI",
    "MERCEDES",
    "LEXUS",
    "KIA",
    "RENAULT",
    "DACIA",
    "PEUGEOT",
    "SKODA",
    "OPEL",
    "FIAT",
    "TAXI",
    "POLICE",
    "STATE",
    "COUNTY",
    "ALABAMA",
    "ALASKA",
    "ARIZONA",
    "ARKANSAS",
    "CALIFORNIA",
    "COLORADO",
    "CONNECTICUT",
    "DELAWARE",
    "FLORIDA",
    "GEORGIA",
    "HAWAII",
    "IDAHO",
    "ILLINOIS",
    "INDIANA",
    "IOWA",
    "KANSAS",
    "KENTUCKY",
    "LOUISIANA",
    "MAINE",
    "MARYLAND",
    "MASSACHUSETTS",
    "MICHIGAN",
    "MINNESOTA",
    "MISSISSIPPI",
    "MISSOURI",
    "MONTANA",
    "NEBRASKA",
    "NEVADA",
    "HAMPSHIRE",
    "JERSEY",
    "MEXICO",
    "YORK",
    "CAROLINA",
    "DAKOTA",
    "OHIO",
    "OKLAHOMA",
    "OREGON",
    "PENNSYLVANIA",
    "RHODE",
    "ISLAND",
    "TENNESSEE",
    "TEXAS",
    "UTAH",
    "VERMONT",
    "VIRGINIA",
    "WASHINGTON",
    "WISCONSIN",
    "WYOMING",
];

impl Default for SelectionConfig {
    fn default() -> Self {
        Self {
            min_chars: 4,
            max_chars: 8,
            min_aspect: 1.2,
            max_aspect: 12.0,
            min_height_px: 8.0,
            // ':' alone is not rejected: Croatian coats of arms and Balkan
            // separators are read as ':'. Clocks are caught by `looks_like_time`.
            reject_chars: String::new(),
            stop_words: DEFAULT_STOP_WORDS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Why a candidate cannot be the plate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RejectReason {
    ForbiddenChar(char),
    TooShort,
    TooLong,
    BadAspect,
    TooSmall,
    StopWord(String),
    Url,
    /// The formatter refused the read (`min_plate_length`).
    FormatterRejected,
}

/// The score's terms, for tuning on labelled frames.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ScoreParts {
    /// +1 for a format match, minus 0.3 × match cost (at least +0.4).
    pub format: f32,
    /// +0.5 letters and digits, +0.15 digits only, 0 letters only.
    pub mix: f32,
    /// +0.3 for 5–8 characters, +0.1 for 4, −0.3 over `max_chars` (unmatched).
    pub length: f32,
    /// +0.2 for aspect 2–7 (a plate's character line), +0.05 otherwise.
    pub aspect: f32,
    /// +0.3 × height / tallest candidate's height (plate text is large).
    pub size: f32,
    /// +0.5 × mean reader confidence.
    pub reader: f32,
    /// +0.2 × detector score.
    pub detector: f32,
    /// −0.5 × share of lower-case letters in the raw text, −0.1 per punctuation mark
    /// other than separators (` -.·`).
    pub raw_text: f32,
}

impl ScoreParts {
    pub fn total(&self) -> f32 {
        self.format
            + self.mix
            + self.length
            + self.aspect
            + self.size
            + self.reader
            + self.detector
            + self.raw_text
    }
}

/// A scored candidate. `text` is the formatted plate text (or the normalised read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedCandidate {
    /// Index into the input slice.
    pub index: usize,
    pub score: f32,
    pub parts: ScoreParts,
    pub text: String,
    pub format: Option<FormatMatch>,
    pub reject: Option<RejectReason>,
}

fn reject_reason(
    c: &TextCandidate,
    plate_len: usize,
    matched: bool,
    cfg: &SelectionConfig,
) -> Option<RejectReason> {
    if let Some(ch) = c.raw_text.chars().find(|ch| cfg.reject_chars.contains(*ch)) {
        return Some(RejectReason::ForbiddenChar(ch));
    }
    if looks_like_time(&c.raw_text) {
        return Some(RejectReason::ForbiddenChar(':'));
    }
    let lower = c.raw_text.to_lowercase();
    if lower.contains("www")
        || lower.contains(".com")
        || lower.contains(".net")
        || lower.contains("http")
    {
        return Some(RejectReason::Url);
    }
    if c.quad.height() < cfg.min_height_px {
        return Some(RejectReason::TooSmall);
    }
    let aspect = c.quad.aspect();
    if aspect < cfg.min_aspect || aspect > cfg.max_aspect {
        return Some(RejectReason::BadAspect);
    }
    if plate_len < cfg.min_chars {
        return Some(RejectReason::TooShort);
    }
    // Unmatched reads may still carry a band/state prefix; allow 3 extra before rejecting.
    if plate_len > cfg.max_chars + if matched { 0 } else { 3 } {
        return Some(RejectReason::TooLong);
    }
    if !c.read.has_digit() {
        let text = c.read.text();
        if let Some(w) = cfg
            .stop_words
            .iter()
            .find(|w| !w.is_empty() && text.contains(w.as_str()))
        {
            return Some(RejectReason::StopWord(w.clone()));
        }
    }
    None
}

/// Score and rank text boxes as plate candidates: accepted candidates by descending score,
/// then rejected ones (also by score, for debugging). With a `formatter`, each read is
/// format-matched and the formatted text is what length/mix rules see.
/// A clock or timestamp overlay: only digits and date/time separators, with a
/// `:` (`12:34:56`, `2014-05-01 12:34`). Plates read with a `:` for a coat of
/// arms or a separator (`RK:855AP`, `1T4:3213`) have letters and pass.
pub fn looks_like_time(raw: &str) -> bool {
    raw.contains(':')
        && raw
            .chars()
            .all(|c| c.is_ascii_digit() || ":/-. ".contains(c))
}

#[cfg(test)]
#[test]
fn clocks_are_times_but_plates_with_a_colon_are_not() {
    assert!(looks_like_time("12:34:56"));
    assert!(looks_like_time("2014-05-01 12:34"));
    assert!(!looks_like_time("RK:855AP"));
    assert!(!looks_like_time("1T4:3213"));
    assert!(!looks_like_time("7ABC123"));
}

pub fn rank_plate_candidates(
    cands: &[TextCandidate],
    formatter: Option<&PlateFormatter>,
    cfg: &SelectionConfig,
) -> Vec<RankedCandidate> {
    let max_h = cands
        .iter()
        .map(|c| c.quad.height())
        .fold(0.0f32, f32::max)
        .max(1e-3);
    let mut out: Vec<RankedCandidate> = cands
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let (format, formatter_rejected) = match formatter {
                Some(f) => {
                    let m = f.apply(&c.read);
                    let rejected = m.is_none();
                    (m, rejected)
                }
                None => (None, false),
            };
            let matched = format.as_ref().is_some_and(|m| m.format_matched);
            let plate: &LineRead = format.as_ref().map(|m| &m.read).unwrap_or(&c.read);
            let text = plate.text();
            let n = plate.len();

            let mut p = ScoreParts::default();
            if let Some(m) = format.as_ref().filter(|m| m.format_matched) {
                p.format = (1.0 - 0.3 * m.cost).max(0.4);
            }
            p.mix = match (plate.has_letter(), plate.has_digit()) {
                (true, true) => 0.5,
                (false, true) => 0.15,
                _ => 0.0,
            };
            p.length = if n > cfg.max_chars {
                -0.3
            } else if n >= 5 {
                0.3
            } else if n == 4 {
                0.1
            } else {
                0.0
            };
            let aspect = c.quad.aspect();
            p.aspect = if (2.0..=7.0).contains(&aspect) {
                0.2
            } else {
                0.05
            };
            p.size = 0.3 * c.quad.height() / max_h;
            p.reader = 0.5 * plate.mean_conf();
            p.detector = 0.2 * c.det_score;
            let letters = c.raw_text.chars().filter(|ch| ch.is_alphabetic()).count();
            let lowers = c.raw_text.chars().filter(|ch| ch.is_lowercase()).count();
            if letters > 0 {
                p.raw_text -= 0.5 * lowers as f32 / letters as f32;
            }
            let punct = c
                .raw_text
                .chars()
                .filter(|ch| !ch.is_alphanumeric() && !" -.·".contains(*ch))
                .count();
            p.raw_text -= 0.1 * punct as f32;

            let reject = if formatter_rejected {
                Some(RejectReason::FormatterRejected)
            } else {
                reject_reason(c, n, matched, cfg)
            };
            RankedCandidate {
                index,
                score: p.total(),
                parts: p,
                text,
                format,
                reject,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        a.reject
            .is_some()
            .cmp(&b.reject.is_some())
            .then(b.score.total_cmp(&a.score))
            .then(a.index.cmp(&b.index))
    });
    out
}

/// The best accepted candidate, if any.
pub fn best_plate(ranked: &[RankedCandidate]) -> Option<&RankedCandidate> {
    ranked.first().filter(|r| r.reject.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::geometry::BoxF;
    use crate::vision::plate_format::FormatConfig;

    fn cand(x: f32, w: f32, h: f32, raw: &str, conf: f32) -> TextCandidate {
        TextCandidate {
            quad: BoxF::new(x, 100.0, x + w, 100.0 + h).to_quad(),
            det_score: 0.8,
            raw_text: raw.into(),
            read: LineRead::from_text(raw, conf),
        }
    }

    #[test]
    fn us_frame_plate_beats_badge_dealer_clock() {
        let cands = vec![
            cand(0.0, 120.0, 30.0, "E150", 0.99), // model badge, confident
            cand(0.0, 200.0, 12.0, "www.smithford.com", 0.95), // dealer frame
            cand(0.0, 100.0, 20.0, "12:34:56", 0.99), // clock overlay
            cand(0.0, 160.0, 34.0, "7ABC123", 0.85), // the plate
            cand(0.0, 150.0, 16.0, "California", 0.9), // state line
            cand(0.0, 120.0, 14.0, "Smith Motors", 0.9), // dealer name
        ];
        let f = PlateFormatter::new(&FormatConfig::with_presets(&["us"]).unwrap()).unwrap();
        let r = rank_plate_candidates(&cands, Some(&f), &SelectionConfig::default());
        let best = best_plate(&r).unwrap();
        assert_eq!(best.index, 3);
        assert_eq!(best.text, "7ABC123");
        let by_idx = |i: usize| r.iter().find(|c| c.index == i).unwrap();
        assert_eq!(by_idx(2).reject, Some(RejectReason::ForbiddenChar(':')));
        assert_eq!(by_idx(1).reject, Some(RejectReason::Url));
        assert!(matches!(by_idx(4).reject, Some(RejectReason::StopWord(_))));
        assert!(matches!(by_idx(5).reject, Some(RejectReason::StopWord(_))));
        assert!(by_idx(0).reject.is_none() && by_idx(0).score < best.score);
        // Rejected ones are ranked last.
        assert!(r[..2].iter().all(|c| c.reject.is_none()));
    }

    #[test]
    fn eu_band_is_dropped_and_without_formatter() {
        let cands = vec![
            cand(0.0, 180.0, 30.0, "RO B 123 ABC", 0.9),
            cand(0.0, 20.0, 5.0, "B1", 0.9),
        ];
        let f = PlateFormatter::new(&FormatConfig::with_presets(&["ro"]).unwrap()).unwrap();
        let r = rank_plate_candidates(&cands, Some(&f), &SelectionConfig::default());
        assert_eq!(r[0].text, "B123ABC");
        assert_eq!(r[1].reject, Some(RejectReason::FormatterRejected));
        let r = rank_plate_candidates(&cands, None, &SelectionConfig::default());
        assert_eq!(r[0].text, "ROB123ABC");
        assert!(r[0].reject.is_none());
        assert_eq!(r[1].reject, Some(RejectReason::TooSmall));
        assert!(best_plate(&[]).is_none());
    }
}
