//! Plate format rules: a small OpenALPR-style pattern language, replace rules, and a
//! cost-based matcher that repairs reads to the nearest allowed format.
//!
//! Pattern language (one pattern = one plate layout, separators removed):
//! - `@` a letter `A–Z`, `#` a digit `0–9`, `?` any letter or digit;
//! - `[ABC]`, `[A-Z0-9]` a character class (ranges and single characters);
//! - `A–Z`, `0–9` a literal (lower case is upper-cased);
//! - spaces and `-` outside classes are ignored, so `B ## @@@` is `B##@@@`.
//!
//! Matching (see [`PlateFormatter::apply`]): the read may carry up to `max_drop` extra
//! characters at each end (EU country band "RO"/"HR"/"D", US state text); for every
//! pattern and every window the matcher accepts positions that already fit, otherwise
//! substitutes a look-alike (confusion map, e.g. O↔0) or one of the reader's own
//! alternatives at that step, and sums the costs. The cheapest window wins; ties are
//! broken deterministically (see [`MatchCosts`]).

use std::cmp::Ordering;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::error::{Result, VisionError};
use super::read::{fold_plate_char, LineRead, PlateChar};

/// One position of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Letter,
    Digit,
    Any,
    /// Sorted, deduplicated set of allowed characters.
    Class(Vec<char>),
    Literal(char),
}

impl Slot {
    pub fn accepts(&self, c: char) -> bool {
        match self {
            Slot::Letter => c.is_ascii_uppercase(),
            Slot::Digit => c.is_ascii_digit(),
            Slot::Any => c.is_ascii_uppercase() || c.is_ascii_digit(),
            Slot::Class(set) => set.binary_search(&c).is_ok(),
            Slot::Literal(l) => *l == c,
        }
    }

    fn regex(&self) -> String {
        match self {
            Slot::Letter => "[A-Z]".into(),
            Slot::Digit => "[0-9]".into(),
            Slot::Any => "[A-Z0-9]".into(),
            Slot::Class(set) => format!("[{}]", set.iter().collect::<String>()),
            Slot::Literal(c) => c.to_string(),
        }
    }
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct PlatePattern {
    pub region: String,
    pub source: String,
    slots: Vec<Slot>,
    regex: Regex,
}

impl PlatePattern {
    /// Parse `source` (see the module docs); `region` is a label carried into results.
    pub fn parse(region: &str, source: &str) -> Result<Self> {
        let err = |reason: &str| VisionError::Pattern {
            pattern: source.to_string(),
            reason: reason.to_string(),
        };
        let mut slots = Vec::new();
        let mut it = source.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '@' => slots.push(Slot::Letter),
                '#' => slots.push(Slot::Digit),
                '?' => slots.push(Slot::Any),
                ' ' | '-' => {}
                '[' => {
                    let mut set = Vec::new();
                    let mut closed = false;
                    while let Some(c) = it.next() {
                        if c == ']' {
                            closed = true;
                            break;
                        }
                        let lo = fold_plate_char(c)
                            .ok_or_else(|| err("class members must be A-Z or 0-9"))?;
                        if it.peek() == Some(&'-') {
                            it.next();
                            let hi = it
                                .next()
                                .and_then(fold_plate_char)
                                .ok_or_else(|| err("bad range in class"))?;
                            if hi < lo || lo.is_ascii_digit() != hi.is_ascii_digit() {
                                return Err(err("bad range in class"));
                            }
                            set.extend(lo..=hi);
                        } else {
                            set.push(lo);
                        }
                    }
                    if !closed {
                        return Err(err("unclosed '['"));
                    }
                    if set.is_empty() {
                        return Err(err("empty class"));
                    }
                    set.sort_unstable();
                    set.dedup();
                    slots.push(Slot::Class(set));
                }
                c => match fold_plate_char(c) {
                    Some(l) if c.is_ascii_alphanumeric() => slots.push(Slot::Literal(l)),
                    _ => return Err(err(&format!("unexpected character {c:?}"))),
                },
            }
        }
        if slots.is_empty() {
            return Err(err("empty pattern"));
        }
        let re = format!("^{}$", slots.iter().map(Slot::regex).collect::<String>());
        let regex = Regex::new(&re).map_err(|e| VisionError::Regex {
            pattern: re.clone(),
            source: e,
        })?;
        Ok(Self {
            region: region.to_string(),
            source: source.to_string(),
            slots,
            regex,
        })
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Anchored regex equivalent of the pattern.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }

    /// Exact match of a normalised plate text.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

/// Named group of patterns (a country or a site).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionFormat {
    pub name: String,
    pub patterns: Vec<String>,
}

impl RegionFormat {
    /// Built-in pattern sets: `ro` Romania, `hr` Croatia, `cz` Czechia (since 2001:
    /// region digit, region letter, a digit or letter, four digits), `br` Brazil (old and
    /// Mercosur), `us` generic US (5–7 alphanumerics: without per-state formats nothing
    /// finer helps).
    pub fn preset(name: &str) -> Option<Self> {
        let pats: &[&str] = match name {
            "ro" => &["@@##@@@", "B###@@@", "B##@@@", "@##@@@"],
            "hr" => &["@@###@@", "@@####@@", "@@###@", "@@####@"],
            "cz" => &["#@#####", "#@@####"],
            "br" => &["@@@####", "@@@#@##"],
            "us" => &["???????", "??????", "?????"],
            _ => return None,
        };
        Some(Self {
            name: name.to_string(),
            patterns: pats.iter().map(|s| s.to_string()).collect(),
        })
    }
}

/// Frigate-style rewrite applied to the normalised text before matching. `pattern` is a
/// `regex` crate expression; `replacement` may use `$1`/`${name}` (Python-style `\1` is
/// accepted too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplaceRule {
    pub pattern: String,
    pub replacement: String,
}

/// Substitution and drop costs, in "character" units. Ranking of candidate matches:
/// lower total cost; then fewer substitutions; then fewer dropped characters; then higher
/// mean confidence of the kept characters (decides which ends to drop); then the longer
/// pattern; then the pattern listed first (list the most common format first).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MatchCosts {
    /// Cost of dropping a leading/trailing character: `drop_base + drop_conf * conf`, so a
    /// confidently read character is dearer to throw away.
    pub drop_base: f32,
    pub drop_conf: f32,
    /// Reader-alternative substitution: `1 - p_alt / p_read`, at least `alt_floor`.
    pub alt_floor: f32,
    /// Confusion-map substitution: `pair_cost * (confusion_floor + (1 - floor) * p_read)`.
    pub confusion_floor: f32,
    /// Matches costing more than this are rejected (the raw text is returned instead).
    pub max_cost: f32,
}

impl Default for MatchCosts {
    fn default() -> Self {
        Self {
            drop_base: 0.2,
            drop_conf: 0.2,
            alt_floor: 0.05,
            confusion_floor: 0.5,
            max_cost: 1.6,
        }
    }
}

pub use crate::core::{confusion_cost, CONFUSIONS};

/// Matcher configuration (serde-friendly, e.g. from the site config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FormatConfig {
    pub regions: Vec<RegionFormat>,
    pub replace_rules: Vec<ReplaceRule>,
    /// Reads shorter than this (after replace rules) are rejected; 0 disables.
    pub min_plate_length: usize,
    /// Extra characters that may be dropped at each end.
    pub max_drop: usize,
    pub costs: MatchCosts,
}

impl Default for FormatConfig {
    fn default() -> Self {
        Self {
            regions: Vec::new(),
            replace_rules: Vec::new(),
            min_plate_length: 4,
            max_drop: 3,
            costs: MatchCosts::default(),
        }
    }
}

impl FormatConfig {
    /// Config with the named built-in regions (unknown names are errors).
    pub fn with_presets(names: &[&str]) -> Result<Self> {
        let regions = names
            .iter()
            .map(|n| {
                RegionFormat::preset(n).ok_or_else(|| VisionError::Pattern {
                    pattern: n.to_string(),
                    reason: "unknown preset region".into(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            regions,
            ..Self::default()
        })
    }
}

/// Result of formatting one read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormatMatch {
    /// Final plate text (`A–Z0–9`).
    pub text: String,
    /// False when no pattern fitted within `max_cost`: `text` is the normalised read.
    pub format_matched: bool,
    pub region: Option<String>,
    pub pattern: Option<String>,
    pub cost: f32,
    pub substitutions: usize,
    pub dropped_leading: usize,
    pub dropped_trailing: usize,
    /// Characters aligned with `text`. A substituted position carries the new character,
    /// a confidence lowered per the substitution, and the originally read character first
    /// among its alternatives.
    pub read: LineRead,
}

#[derive(Debug, Clone, Copy)]
struct Sub {
    to: char,
    cost: f32,
    conf: f32,
}

#[derive(Debug, Clone)]
struct Candidate {
    pattern: usize,
    lead: usize,
    trail: usize,
    cost: f32,
    subs: usize,
    kept_conf: f32,
    len: usize,
}

impl Candidate {
    fn better_than(&self, o: &Candidate) -> bool {
        const EPS: f32 = 1e-4;
        let ord = if (self.cost - o.cost).abs() > EPS {
            self.cost.total_cmp(&o.cost)
        } else {
            self.subs
                .cmp(&o.subs)
                .then((self.lead + self.trail).cmp(&(o.lead + o.trail)))
                .then(if (self.kept_conf - o.kept_conf).abs() > EPS {
                    o.kept_conf.total_cmp(&self.kept_conf)
                } else {
                    Ordering::Equal
                })
                .then(o.len.cmp(&self.len))
                .then(self.pattern.cmp(&o.pattern))
                .then(self.lead.cmp(&o.lead))
        };
        ord == Ordering::Less
    }
}

/// Compiled [`FormatConfig`].
#[derive(Debug, Clone)]
pub struct PlateFormatter {
    patterns: Vec<PlatePattern>,
    rules: Vec<(Regex, String)>,
    min_plate_length: usize,
    max_drop: usize,
    costs: MatchCosts,
}

impl PlateFormatter {
    pub fn new(cfg: &FormatConfig) -> Result<Self> {
        let mut patterns = Vec::new();
        for r in &cfg.regions {
            for p in &r.patterns {
                patterns.push(PlatePattern::parse(&r.name, p)?);
            }
        }
        let backref = Regex::new(r"\\(\d)").expect("static regex");
        let rules = cfg
            .replace_rules
            .iter()
            .map(|r| {
                let re = Regex::new(&r.pattern).map_err(|e| VisionError::Regex {
                    pattern: r.pattern.clone(),
                    source: e,
                })?;
                Ok((
                    re,
                    backref.replace_all(&r.replacement, "$${$1}").into_owned(),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            patterns,
            rules,
            min_plate_length: cfg.min_plate_length,
            max_drop: cfg.max_drop,
            costs: cfg.costs,
        })
    }

    pub fn patterns(&self) -> &[PlatePattern] {
        &self.patterns
    }

    /// Whether `text` matches a pattern exactly (no drops or substitutions).
    pub fn is_exact(&self, text: &str) -> bool {
        self.patterns.iter().any(|p| p.is_match(text))
    }

    /// Apply replace rules, keeping per-character data aligned (see [`realign`]).
    pub fn apply_replace_rules(&self, read: &LineRead) -> LineRead {
        if self.rules.is_empty() {
            return read.clone();
        }
        let old = read.text();
        let mut text = old.clone();
        for (re, rep) in &self.rules {
            text = re.replace_all(&text, rep.as_str()).into_owned();
        }
        if text == old {
            return read.clone();
        }
        let new: String = text.chars().filter_map(fold_plate_char).collect();
        realign(read, &new)
    }

    /// Cheapest substitution making `pc` fit `slot`, if any.
    fn substitute(&self, slot: &Slot, pc: &PlateChar) -> Option<Sub> {
        if slot.accepts(pc.ch) {
            return Some(Sub {
                to: pc.ch,
                cost: 0.0,
                conf: pc.conf,
            });
        }
        let c = &self.costs;
        let mut best: Option<Sub> = None;
        let mut consider = |s: Sub| {
            if best.is_none_or(|b| s.cost < b.cost) {
                best = Some(s);
            }
        };
        for &(a, p) in &pc.alts {
            if slot.accepts(a) {
                let cost = (1.0 - p / pc.conf.max(1e-6)).clamp(c.alt_floor, 1.0);
                consider(Sub {
                    to: a,
                    cost,
                    conf: p,
                });
            }
        }
        for &(from, to, hundredths) in CONFUSIONS {
            let pair = hundredths as f32 / 100.0;
            if from == pc.ch && slot.accepts(to) {
                let cost = pair * (c.confusion_floor + (1.0 - c.confusion_floor) * pc.conf);
                // If the reader also proposed it, take that probability as the confidence.
                let alt_p = pc.alts.iter().find(|(a, _)| *a == to).map(|x| x.1);
                let conf = alt_p.unwrap_or(0.0).max(pc.conf * (1.0 - pair));
                consider(Sub { to, cost, conf });
            }
        }
        best
    }

    fn drop_cost(&self, pc: &PlateChar) -> f32 {
        self.costs.drop_base + self.costs.drop_conf * pc.conf
    }

    fn evaluate(&self, pi: usize, read: &LineRead, lead: usize) -> Option<(Candidate, Vec<Sub>)> {
        let pat = &self.patterns[pi];
        let m = pat.len();
        let trail = read.len() - m - lead;
        let mut cost: f32 = read.chars[..lead]
            .iter()
            .chain(read.chars[lead + m..].iter())
            .map(|c| self.drop_cost(c))
            .sum();
        let mut subs = Vec::with_capacity(m);
        let mut n_subs = 0;
        for (slot, pc) in pat.slots.iter().zip(&read.chars[lead..lead + m]) {
            let s = self.substitute(slot, pc)?;
            if s.to != pc.ch {
                n_subs += 1;
            }
            cost += s.cost;
            subs.push(s);
        }
        let kept_conf = read.chars[lead..lead + m]
            .iter()
            .map(|c| c.conf)
            .sum::<f32>()
            / m as f32;
        Some((
            Candidate {
                pattern: pi,
                lead,
                trail,
                cost,
                subs: n_subs,
                kept_conf,
                len: m,
            },
            subs,
        ))
    }

    /// Format one read: replace rules, `min_plate_length`, then the cheapest pattern
    /// window. `None` when the read is too short; otherwise a [`FormatMatch`], with
    /// `format_matched: false` and the normalised text when nothing fits.
    pub fn apply(&self, read: &LineRead) -> Option<FormatMatch> {
        let read = self.apply_replace_rules(read);
        if read.len() < self.min_plate_length || read.is_empty() {
            return None;
        }
        let mut best: Option<(Candidate, Vec<Sub>)> = None;
        for pi in 0..self.patterns.len() {
            let m = self.patterns[pi].len();
            if m > read.len() || read.len() - m > 2 * self.max_drop {
                continue;
            }
            let extra = read.len() - m;
            for lead in extra.saturating_sub(self.max_drop)..=extra.min(self.max_drop) {
                if let Some(c) = self.evaluate(pi, &read, lead) {
                    if best.as_ref().is_none_or(|(b, _)| c.0.better_than(b)) {
                        best = Some(c);
                    }
                }
            }
        }
        match best {
            Some((c, subs)) if c.cost <= self.costs.max_cost && c.len >= self.min_plate_length => {
                let pat = &self.patterns[c.pattern];
                let chars: Vec<PlateChar> = read.chars[c.lead..c.lead + c.len]
                    .iter()
                    .zip(&subs)
                    .map(|(pc, s)| {
                        if s.to == pc.ch {
                            pc.clone()
                        } else {
                            let mut alts = vec![(pc.ch, pc.conf)];
                            alts.extend(pc.alts.iter().filter(|(a, _)| *a != s.to && *a != pc.ch));
                            PlateChar {
                                ch: s.to,
                                conf: s.conf,
                                alts,
                            }
                        }
                    })
                    .collect();
                let read = LineRead { chars };
                Some(FormatMatch {
                    text: read.text(),
                    format_matched: true,
                    region: Some(pat.region.clone()),
                    pattern: Some(pat.source.clone()),
                    cost: c.cost,
                    substitutions: c.subs,
                    dropped_leading: c.lead,
                    dropped_trailing: c.trail,
                    read,
                })
            }
            _ => Some(FormatMatch {
                text: read.text(),
                format_matched: false,
                region: None,
                pattern: None,
                cost: 0.0,
                substitutions: 0,
                dropped_leading: 0,
                dropped_trailing: 0,
                read,
            }),
        }
    }
}

/// Carry per-character data from `read` onto `new_text` via a minimum edit alignment:
/// kept characters keep everything, substituted ones keep the confidence (alternatives
/// cleared, old character first), inserted ones get the read's mean confidence.
pub fn realign(read: &LineRead, new_text: &str) -> LineRead {
    let old: Vec<char> = read.chars.iter().map(|c| c.ch).collect();
    let new: Vec<char> = new_text.chars().collect();
    let (n, m) = (old.len(), new.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, v) in d[0].iter_mut().enumerate() {
        *v = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let sub = d[i - 1][j - 1] + usize::from(old[i - 1] != new[j - 1]);
            d[i][j] = sub.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
        }
    }
    let mean = read.mean_conf();
    let mut out: Vec<PlateChar> = Vec::with_capacity(m);
    let (mut i, mut j) = (n, m);
    while j > 0 {
        if i > 0 && d[i][j] == d[i - 1][j - 1] + usize::from(old[i - 1] != new[j - 1]) {
            let pc = &read.chars[i - 1];
            out.push(if pc.ch == new[j - 1] {
                pc.clone()
            } else {
                PlateChar {
                    ch: new[j - 1],
                    conf: pc.conf,
                    alts: vec![(pc.ch, pc.conf)],
                }
            });
            i -= 1;
            j -= 1;
        } else if i > 0 && d[i][j] == d[i - 1][j] + 1 {
            i -= 1;
        } else {
            out.push(PlateChar {
                ch: new[j - 1],
                conf: mean,
                alts: Vec::new(),
            });
            j -= 1;
        }
    }
    out.reverse();
    LineRead { chars: out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(regions: &[&str]) -> PlateFormatter {
        PlateFormatter::new(&FormatConfig::with_presets(regions).unwrap()).unwrap()
    }

    fn read(text: &str) -> LineRead {
        LineRead::from_text(text, 0.9)
    }

    #[test]
    fn parse_patterns() {
        let p = PlatePattern::parse("x", "B##@ [A-C7] [x-z]").unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(p.regex().as_str(), "^B[0-9][0-9][A-Z][7ABC][XYZ]$");
        assert!(p.is_match("B12Q7Y") && !p.is_match("B12Q8Y"));
        for bad in ["", "[AB", "[]", "%", "[Z-A]", "[A-9]"] {
            assert!(PlatePattern::parse("x", bad).is_err(), "{bad:?}");
        }
        assert!(FormatConfig::with_presets(&["zz"]).is_err());
    }

    #[test]
    fn romania_band_and_o0() {
        let f = fmt(&["ro"]);
        // Country band read in front; O read for 0 in the digit block.
        let m = f.apply(&read("ROB1O3ABC")).unwrap();
        assert!(m.format_matched);
        assert_eq!(m.text, "B103ABC");
        assert_eq!(m.pattern.as_deref(), Some("B###@@@"));
        assert_eq!(
            (m.dropped_leading, m.dropped_trailing, m.substitutions),
            (2, 0, 1)
        );
        assert_eq!(m.read.chars[2].alts[0].0, 'O');
        assert!(m.read.chars[2].conf < 0.9);
        // County plate, digit read as letter and letter read as digit.
        let m = f.apply(&read("CJ1Z AB8")).unwrap();
        assert_eq!(m.text, "CJ12ABB");
        assert_eq!(m.substitutions, 2);
        assert!(f.is_exact("CJ12ABB") && !f.is_exact("CJ12AB8"));
    }

    #[test]
    fn croatia_prefers_exact_longer_over_drop() {
        let f = fmt(&["hr"]);
        let m = f.apply(&read("HRZG1234AB")).unwrap();
        assert_eq!(m.text, "ZG1234AB");
        assert_eq!(m.pattern.as_deref(), Some("@@####@@"));
        let m = f.apply(&read("ZG123AB")).unwrap();
        assert_eq!((m.text.as_str(), m.cost), ("ZG123AB", 0.0));
    }

    #[test]
    fn czech_plates_keep_their_digits_with_the_czech_preset() {
        // A Czech "1B2 5790" read right: Croatian formats alone force it into
        // letters where Croatia has them (1→I, 0→O); with `cz` it stays.
        let m = fmt(&["hr"]).apply(&read("1B25790")).unwrap();
        assert_eq!(m.text, "IB2579O");
        let f = fmt(&["hr", "cz"]);
        let m = f.apply(&read("1B25790")).unwrap();
        assert_eq!(
            (m.text.as_str(), m.pattern.as_deref(), m.cost),
            ("1B25790", Some("#@#####"), 0.0)
        );
        // Croatian plates are unaffected.
        assert_eq!(f.apply(&read("ZG123AB")).unwrap().text, "ZG123AB");
    }

    #[test]
    fn reader_alternatives_beat_unrelated_letters() {
        let f = fmt(&["br"]);
        // 'H' has no look-alike digit, but the reader's second choice at that step was '4'.
        let mut r = read("ABCH123");
        r.chars[3].conf = 0.5;
        r.chars[3].alts = vec![('4', 0.4), ('M', 0.05)];
        let m = f.apply(&r).unwrap();
        assert_eq!(m.text, "ABC4123");
        assert!((m.read.chars[3].conf - 0.4).abs() < 1e-6);
        // Mercosur: letter in the 5th position.
        assert_eq!(
            f.apply(&read("ABC1D23")).unwrap().pattern.as_deref(),
            Some("@@@#@##")
        );
    }

    #[test]
    fn us_drops_lowest_confidence_ends() {
        let f = fmt(&["us"]);
        let mut r = read("X7ABC123Y");
        r.chars[0].conf = 0.3;
        r.chars[8].conf = 0.95;
        // 9 chars for a 7-char pattern: two must go. The weak 'X' goes first; of '7' (0.9)
        // and 'Y' (0.95) the cheaper one to drop is '7'.
        let m = f.apply(&r).unwrap();
        assert_eq!(m.text.len(), 7);
        assert_eq!(m.dropped_leading, 2, "{m:?}");
        assert_eq!(m.text, "ABC123Y");
    }

    #[test]
    fn unmatched_short_and_rules() {
        let f = fmt(&["ro"]);
        let m = f.apply(&read("HELLOWORLD")).unwrap();
        assert!(!m.format_matched);
        assert_eq!(m.text, "HELLOWORLD");
        assert!(f.apply(&read("AB1")).is_none());

        let cfg = FormatConfig {
            replace_rules: vec![
                ReplaceRule {
                    pattern: "^RO".into(),
                    replacement: "".into(),
                },
                ReplaceRule {
                    pattern: r"(\d)O(\d)".into(),
                    replacement: r"\1 0\2".into(),
                },
            ],
            ..FormatConfig::with_presets(&["ro"]).unwrap()
        };
        let f = PlateFormatter::new(&cfg).unwrap();
        let mut r = read("ROB1O3ABC");
        r.chars[4].conf = 0.42;
        let rr = f.apply_replace_rules(&r);
        assert_eq!(rr.text(), "B103ABC");
        assert_eq!(rr.chars[2].conf, 0.42);
        assert_eq!(rr.chars[2].alts, vec![('O', 0.42)]);
        let m = f.apply(&r).unwrap();
        assert_eq!((m.text.as_str(), m.dropped_leading), ("B103ABC", 0));
        let bad = FormatConfig {
            replace_rules: vec![ReplaceRule {
                pattern: "(".into(),
                replacement: "".into(),
            }],
            ..FormatConfig::default()
        };
        assert!(PlateFormatter::new(&bad).is_err());
    }

    #[test]
    fn config_serde_roundtrip() {
        let cfg = FormatConfig::with_presets(&["ro", "hr"]).unwrap();
        let s = serde_json::to_string(&cfg).unwrap();
        let back: FormatConfig = serde_json::from_str(&s).unwrap();
        assert_eq!(cfg, back);
        let partial: FormatConfig =
            serde_json::from_str(r#"{"regions":[{"name":"site","patterns":["@@###"]}]}"#).unwrap();
        assert_eq!(partial.max_drop, 3);
    }

    proptest::proptest! {
        /// A read that already fits a pattern comes back unchanged at zero cost.
        #[test]
        fn exact_reads_are_kept(l in proptest::collection::vec(0u8..26, 5), d in proptest::collection::vec(0u8..10, 2)) {
            let text: String = [l[0], l[1]].iter().map(|&c| (b'A' + c) as char)
                .chain(d.iter().map(|&c| (b'0' + c) as char))
                .chain(l[2..].iter().map(|&c| (b'A' + c) as char))
                .collect();
            let f = fmt(&["ro"]);
            let m = f.apply(&read(&text)).unwrap();
            proptest::prop_assert!(m.format_matched);
            proptest::prop_assert_eq!(m.text, text);
            proptest::prop_assert_eq!(m.cost, 0.0);
        }
    }
}
