//! Known plates (`[lpr] known_plates`, Frigate's key): a name for each list of
//! plates or regexes. A read within `match_distance` edits of exactly one
//! known plate takes that plate's spelling (OCR slips on a known car are
//! corrected) and its name.

use crate::core::edit_count;
use std::collections::BTreeMap;

pub struct KnownPlates {
    entries: Vec<(String, Entry)>,
    match_distance: usize,
}

enum Entry {
    Plate(String),
    Pattern(regex::Regex),
}

impl KnownPlates {
    /// Entries made only of A–Z0–9 are plates; anything else is a regex
    /// (validated when the config was loaded).
    pub fn new(known: &BTreeMap<String, Vec<String>>, match_distance: usize) -> Self {
        let mut entries = Vec::new();
        for (name, list) in known {
            for p in list {
                let e = if p.chars().all(|c| c.is_ascii_alphanumeric()) {
                    Entry::Plate(p.to_ascii_uppercase())
                } else {
                    match regex::Regex::new(&format!("^(?:{p})$")) {
                        Ok(r) => Entry::Pattern(r),
                        Err(_) => continue,
                    }
                };
                entries.push((name.clone(), e));
            }
        }
        Self {
            entries,
            match_distance,
        }
    }

    /// The (possibly corrected) plate and the name it is known by.
    pub fn lookup(&self, plate: &str) -> Option<(String, String)> {
        let mut close: Vec<(&str, &str, usize)> = Vec::new();
        for (name, e) in &self.entries {
            match e {
                Entry::Pattern(r) if r.is_match(plate) => {
                    return Some((plate.to_string(), name.clone()))
                }
                Entry::Plate(p) if p == plate => return Some((plate.to_string(), name.clone())),
                Entry::Plate(p) => {
                    let d = edit_count(p, plate);
                    if d <= self.match_distance {
                        close.push((name, p, d));
                    }
                }
                Entry::Pattern(_) => {}
            }
        }
        match close.as_slice() {
            [(name, p, _)] => Some((p.to_string(), name.to_string())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_regex_and_unique_near_matches() {
        let known = BTreeMap::from([
            ("Staff van".to_string(), vec!["B123ABC".to_string()]),
            ("Fleet".to_string(), vec!["CJ\\d{2}FLT".to_string()]),
            (
                "Twins".to_string(),
                vec!["AB12CDE".to_string(), "AB12CDF".to_string()],
            ),
        ]);
        let k = KnownPlates::new(&known, 1);
        assert_eq!(
            k.lookup("B123ABC"),
            Some(("B123ABC".into(), "Staff van".into()))
        );
        assert_eq!(
            k.lookup("B123A8C"),
            Some(("B123ABC".into(), "Staff van".into()))
        );
        assert_eq!(
            k.lookup("CJ07FLT"),
            Some(("CJ07FLT".into(), "Fleet".into()))
        );
        // Two known plates one edit away: ambiguous, no correction.
        assert_eq!(k.lookup("AB12CDX"), None);
        assert_eq!(k.lookup("ZZ99ZZZ"), None);
    }
}
