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

/// Cost of inserting or deleting a character, in hundredths.
const INDEL_COST: u32 = 100;
/// Cost of substituting two unrelated characters, in hundredths.
const SUBST_COST: u32 = 100;

/// Substitution cost in hundredths of an edit.
///
/// OCR engines confuse glyphs that look alike; such a swap is far more likely
/// to be a misread than a different car, so it costs 0.2 (near-identical
/// shapes) or 0.3 (similar shapes). The table is symmetric by construction,
/// which keeps the distance symmetric.
fn substitution_cost(a: u8, b: u8) -> u32 {
    if a == b {
        return 0;
    }
    let (x, y) = if a < b { (a, b) } else { (b, a) };
    match (x, y) {
        // Near-identical glyphs.
        (b'0', b'O')
        | (b'0', b'D')
        | (b'0', b'Q')
        | (b'D', b'O')
        | (b'O', b'Q')
        | (b'1', b'I')
        | (b'8', b'B')
        | (b'5', b'S')
        | (b'2', b'Z')
        | (b'6', b'G') => 20,
        // Similar glyphs.
        (b'D', b'Q')
        | (b'1', b'L')
        | (b'I', b'L')
        | (b'1', b'7')
        | (b'1', b'T')
        | (b'E', b'F')
        | (b'4', b'A')
        | (b'U', b'V')
        | (b'C', b'G')
        | (b'M', b'N')
        | (b'P', b'R')
        | (b'K', b'X')
        | (b'3', b'B')
        | (b'3', b'8')
        | (b'H', b'M') => 30,
        _ => SUBST_COST,
    }
}

/// Weighted edit distance in hundredths of an edit (exact integer arithmetic,
/// so symmetry and "zero iff equal" hold exactly).
pub(crate) fn distance_hundredths(a: &Plate, b: &Plate) -> u32 {
    let (a, b) = (a.as_str().as_bytes(), b.as_str().as_bytes());
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

/// Confusion-aware weighted edit distance between two plates.
///
/// Insertions and deletions cost 1.0, substitutions of unrelated characters
/// 1.0, and substitutions between OCR-confusable characters (O/0/D/Q, I/1/L,
/// B/8, S/5, Z/2, G/6, ...) 0.2–0.3. Symmetric, and 0 iff the plates are equal.
pub fn plate_distance(a: &Plate, b: &Plate) -> f64 {
    f64::from(distance_hundredths(a, b)) / 100.0
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
        assert_eq!(plate_distance(&p("B123XYZ"), &p("8I23XY2")), 0.6);
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
