//! Number plates: normalisation, block/watch/allow lists and OCR-aware distance.
//!
//! Cameras and humans write the same plate as `b-123 xyz`, `B123XYZ` or
//! `B.123.XYZ`; everything in the core compares the normalised form only, so
//! normalisation happens once, at the boundary, by constructing a [`Plate`].

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::core::error::CoreError;

/// A normalised plate: upper-case `A–Z0–9`, separators removed, 1..=12 chars.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Plate(String);

impl Plate {
    /// Longest plate we accept; real-world plates are ≤ 10, vanity/foreign a little more.
    pub const MAX_LEN: usize = 12;

    /// Normalises a raw read: upper-cases, drops whitespace, `-` and `.`, and
    /// rejects anything else outside `A–Z0–9` (diacritics, symbols) rather
    /// than guessing, because a wrong guess could match someone else's permit.
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let invalid = |reason| CoreError::InvalidPlate {
            input: raw.to_string(),
            reason,
        };
        let mut out = String::with_capacity(raw.len());
        for c in raw.chars() {
            if c.is_whitespace() || c == '-' || c == '.' {
                continue;
            }
            if !c.is_ascii_alphanumeric() {
                return Err(invalid("only letters A-Z and digits 0-9 are allowed"));
            }
            out.push(c.to_ascii_uppercase());
        }
        if out.is_empty() {
            return Err(invalid("empty after normalisation"));
        }
        if out.len() > Self::MAX_LEN {
            return Err(invalid("longer than 12 characters"));
        }
        Ok(Plate(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Plate {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Plate::parse(s)
    }
}

impl TryFrom<String> for Plate {
    type Error = CoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Plate::parse(&value)
    }
}

impl From<Plate> for String {
    fn from(value: Plate) -> Self {
        value.0
    }
}

impl AsRef<str> for Plate {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Site-wide plate lists.
///
/// * block-list: never admitted;
/// * watch-list: admitted as normal but every read raises a flag for staff;
/// * allow-list: admitted to restricted lots without a permit (contractors,
///   emergency services). It does not waive fees — that is what permits do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlateLists {
    #[serde(default)]
    pub blocked: BTreeSet<Plate>,
    #[serde(default)]
    pub watched: BTreeSet<Plate>,
    #[serde(default)]
    pub allowed: BTreeSet<Plate>,
}

impl PlateLists {
    pub fn membership(&self, plate: &Plate) -> ListMembership {
        ListMembership {
            blocked: self.blocked.contains(plate),
            watched: self.watched.contains(plate),
            allowed: self.allowed.contains(plate),
        }
    }
}

/// Which lists one plate is on. The store may compute this with a DB query
/// instead of loading whole lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMembership {
    pub blocked: bool,
    pub watched: bool,
    pub allowed: bool,
}

/// Cost of inserting or deleting a character, in hundredths of an edit.
const INDEL_COST: u32 = 100;
/// Cost of substituting two unrelated characters, in hundredths of an edit.
const SUBST_COST: u32 = 100;

/// The one table of look-alike characters: `(read, on the plate, cost in
/// hundredths of an edit)`. Plate fonts and OCR confuse these glyphs, so such
/// a swap is far more likely a misread than a different plate.
///
/// Directional, because some confusions happen one way only: the squarish
/// plate `0` is often read as `D`, but a clear `D` is rarely read as `0`
/// (`D→0`, `Q→0`, `U→0`, `T→1`, `L→1`, `J→1`). The plate reader's format
/// matching ([`crate::vision::plate_format`]) reads it in that direction;
/// the distance between two plates ([`plate_distance`]) takes the cheaper of
/// the two directions, which keeps it symmetric. The costs of the ANPR pairs
/// were chosen on the development frames of the OpenALPR benchmark (see
/// `docs/anpr.md`); the letter/letter and digit/digit pairs only the exit
/// matcher uses cost 0.3.
pub const CONFUSIONS: &[(char, char, u32)] = &[
    ('O', '0', 20),
    ('0', 'O', 20),
    ('I', '1', 20),
    ('1', 'I', 20),
    ('B', '8', 30),
    ('8', 'B', 30),
    ('S', '5', 30),
    ('5', 'S', 30),
    ('Z', '2', 30),
    ('2', 'Z', 30),
    ('G', '6', 40),
    ('6', 'G', 40),
    ('A', '4', 50),
    ('4', 'A', 50),
    ('T', '7', 60),
    ('7', 'T', 60),
    ('D', '0', 40),
    ('Q', '0', 40),
    ('U', '0', 70),
    ('T', '1', 60),
    ('L', '1', 60),
    ('J', '1', 70),
    ('O', 'D', 40),
    ('D', 'O', 40),
    ('O', 'Q', 40),
    ('Q', 'O', 40),
    // Pairs that never turn a letter into a digit or back, so they cannot
    // help a read fit a plate format; the exit matcher uses them.
    ('D', 'Q', 30),
    ('Q', 'D', 30),
    ('I', 'L', 30),
    ('L', 'I', 30),
    ('E', 'F', 30),
    ('F', 'E', 30),
    ('U', 'V', 30),
    ('V', 'U', 30),
    ('C', 'G', 30),
    ('G', 'C', 30),
    ('M', 'N', 30),
    ('N', 'M', 30),
    ('P', 'R', 30),
    ('R', 'P', 30),
    ('K', 'X', 30),
    ('X', 'K', 30),
    ('H', 'M', 30),
    ('M', 'H', 30),
    ('1', '7', 30),
    ('7', '1', 30),
    ('3', '8', 30),
    ('8', '3', 30),
];

/// Look-alike cost (in edits) of reading `read` where the plate has `truth`,
/// if the pair is in [`CONFUSIONS`].
pub fn confusion_cost(read: char, truth: char) -> Option<f32> {
    confusion_hundredths(read, truth).map(|h| h as f32 / 100.0)
}

fn confusion_hundredths(read: char, truth: char) -> Option<u32> {
    CONFUSIONS
        .iter()
        .find(|&&(r, t, _)| r == read && t == truth)
        .map(|&(_, _, c)| c)
}

/// Substitution cost in hundredths of an edit: the cheaper direction of a
/// look-alike pair, else a full edit. Symmetric by construction.
fn substitution_cost(a: char, b: char) -> u32 {
    if a == b {
        return 0;
    }
    match (confusion_hundredths(a, b), confusion_hundredths(b, a)) {
        (Some(x), Some(y)) => x.min(y),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => SUBST_COST,
    }
}

/// Weighted edit distance in hundredths of an edit (exact integer arithmetic,
/// so symmetry and "zero iff equal" hold exactly).
fn text_hundredths(a: &str, b: &str) -> u32 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<u32> = (0..=b.len() as u32).map(|j| j * INDEL_COST).collect();
    let mut cur = vec![0u32; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = (i as u32 + 1) * INDEL_COST;
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + substitution_cost(ca, cb))
                .min(prev[j + 1] + INDEL_COST)
                .min(cur[j] + INDEL_COST);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The one weighted distance between two plate texts, in edits: insertions,
/// deletions and unrelated substitutions cost 1, look-alike substitutions
/// their [`CONFUSIONS`] cost (the cheaper direction). Symmetric, and 0 iff
/// the texts are equal. [`plate_distance`] is the same on parsed plates; the
/// plate tracker clusters raw reads with it.
pub fn text_distance(a: &str, b: &str) -> f64 {
    f64::from(text_hundredths(a, b)) / 100.0
}

/// [`plate_distance`] in hundredths of an edit, for exact comparisons.
pub(crate) fn distance_hundredths(a: &Plate, b: &Plate) -> u32 {
    text_hundredths(a.as_str(), b.as_str())
}

/// Unweighted Levenshtein distance (every edit costs 1): the number of
/// character errors, as evaluation reports count them and as
/// `[lpr] known_plates` bounds a correction.
pub fn edit_count(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Confusion-aware weighted edit distance between two plates.
///
/// [`text_distance`] of the two plates' normalised texts.
pub fn plate_distance(a: &Plate, b: &Plate) -> f64 {
    text_distance(a.as_str(), b.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Plate {
        Plate::parse(s).unwrap()
    }

    #[test]
    fn normalises_separators_and_case() {
        assert_eq!(p(" b-123.xyz ").as_str(), "B123XYZ");
        assert_eq!(p("CJ 07 ABC"), p("cj-07-abc"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(Plate::parse("").is_err());
        assert!(Plate::parse(" - . ").is_err());
        assert!(Plate::parse("AB#12").is_err());
        assert!(Plate::parse("ĂB123").is_err());
        assert!(Plate::parse("ABCDEFGHIJKLM").is_err());
    }

    #[test]
    fn serde_normalises_and_validates() {
        let plate: Plate = serde_json::from_str(r#""b 12 abc""#).unwrap();
        assert_eq!(plate.as_str(), "B12ABC");
        assert!(serde_json::from_str::<Plate>(r#""!!""#).is_err());
    }

    #[test]
    fn confusable_edits_are_cheap() {
        assert_eq!(plate_distance(&p("B123OXY"), &p("B1230XY")), 0.2);
        // B/8 0.3 + I/1 0.2 + Z/2 0.3 (the table's costs; the exit matcher had
        // its own table with 0.2 for each before there was one).
        assert_eq!(plate_distance(&p("B123XYZ"), &p("8I23XY2")), 0.8);
        assert_eq!(plate_distance(&p("B123XYZ"), &p("B123XYK")), 1.0);
        assert_eq!(plate_distance(&p("B123XYZ"), &p("B123XY")), 1.0);
    }

    #[test]
    fn list_membership() {
        let mut lists = PlateLists::default();
        lists.blocked.insert(p("BAD1"));
        lists.watched.insert(p("WATCH1"));
        let m = lists.membership(&p("bad-1"));
        assert!(m.blocked && !m.watched && !m.allowed);
    }

    pub(crate) fn plate_strategy() -> impl Strategy<Value = Plate> {
        "[A-Z0-9]{1,10}".prop_map(|s| Plate::parse(&s).unwrap())
    }

    proptest! {
        #[test]
        fn distance_is_symmetric(a in plate_strategy(), b in plate_strategy()) {
            prop_assert_eq!(distance_hundredths(&a, &b), distance_hundredths(&b, &a));
        }

        #[test]
        fn distance_zero_iff_equal(a in plate_strategy(), b in plate_strategy()) {
            prop_assert_eq!(distance_hundredths(&a, &b) == 0, a == b);
            prop_assert_eq!(distance_hundredths(&a, &a), 0);
        }

        #[test]
        fn parse_is_idempotent(raw in "[a-zA-Z0-9 .-]{0,14}") {
            if let Ok(plate) = Plate::parse(&raw) {
                prop_assert_eq!(Plate::parse(plate.as_str()).unwrap(), plate);
            }
        }
    }
}
