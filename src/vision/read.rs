//! Plate reads: text restricted to `A–Z0–9` with per-character confidences and
//! alternatives, the value passed from the reader to format matching, plate selection and
//! fusion.

use serde::{Deserialize, Serialize};

use super::ctc::CtcText;

/// One plate character.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateChar {
    /// `A–Z` or `0–9`.
    pub ch: char,
    /// Reader confidence in `[0, 1]`.
    pub conf: f32,
    /// Other plate characters the reader considered at the same step, descending
    /// probability, never containing `ch` itself.
    pub alts: Vec<(char, f32)>,
}

/// A normalised read of one text line.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LineRead {
    pub chars: Vec<PlateChar>,
}

impl LineRead {
    /// Fixture/helper: every character with the same confidence and no alternatives.
    pub fn from_text(text: &str, conf: f32) -> Self {
        Self {
            chars: text
                .chars()
                .filter_map(fold_plate_char)
                .map(|ch| PlateChar {
                    ch,
                    conf,
                    alts: Vec::new(),
                })
                .collect(),
        }
    }

    pub fn text(&self) -> String {
        self.chars.iter().map(|c| c.ch).collect()
    }

    pub fn len(&self) -> usize {
        self.chars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    pub fn confidences(&self) -> Vec<f32> {
        self.chars.iter().map(|c| c.conf).collect()
    }

    /// Mean confidence (0 when empty).
    pub fn mean_conf(&self) -> f32 {
        if self.chars.is_empty() {
            0.0
        } else {
            self.chars.iter().map(|c| c.conf).sum::<f32>() / self.chars.len() as f32
        }
    }

    /// Minimum confidence (0 when empty).
    pub fn min_conf(&self) -> f32 {
        self.chars
            .iter()
            .map(|c| c.conf)
            .reduce(f32::min)
            .unwrap_or(0.0)
    }

    pub fn has_letter(&self) -> bool {
        self.chars.iter().any(|c| c.ch.is_ascii_uppercase())
    }

    pub fn has_digit(&self) -> bool {
        self.chars.iter().any(|c| c.ch.is_ascii_digit())
    }
}

/// Map one character to a plate character: ASCII letters upper-cased, digits kept,
/// full-width forms, Latin letters with diacritics (Croatian `Č`, German `Ü`) and
/// Cyrillic/Greek capitals that look like Latin ones folded to their ASCII look-alike;
/// anything else is `None`. A multilingual reader can legitimately emit `О` (Cyrillic) for
/// a plate's `O`, so folding beats dropping.
pub fn fold_plate_char(c: char) -> Option<char> {
    let c = match c as u32 {
        0xFF10..=0xFF19 | 0xFF21..=0xFF3A | 0xFF41..=0xFF5A => char::from_u32(c as u32 - 0xFEE0)?,
        _ => c,
    };
    if c.is_ascii_alphanumeric() {
        return Some(c.to_ascii_uppercase());
    }
    let up = c.to_uppercase().next()?;
    let folded = match up {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ą' | 'Ă' => 'A',
        'Ç' | 'Č' | 'Ć' => 'C',
        'Ď' | 'Đ' => 'D',
        'È' | 'É' | 'Ê' | 'Ë' | 'Ě' | 'Ę' | 'Ē' => 'E',
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' => 'I',
        'Ł' | 'Ľ' | 'Ĺ' => 'L',
        'Ñ' | 'Ň' | 'Ń' => 'N',
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ő' => 'O',
        'Ř' => 'R',
        'Š' | 'Ś' | 'Ş' | 'Ș' => 'S',
        'Ť' | 'Ţ' | 'Ț' => 'T',
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ů' | 'Ű' => 'U',
        'Ý' | 'Ÿ' => 'Y',
        'Ž' | 'Ź' | 'Ż' => 'Z',
        // Cyrillic look-alikes.
        'А' => 'A',
        'В' => 'B',
        'Е' | 'Ё' => 'E',
        'К' => 'K',
        'М' => 'M',
        'Н' => 'H',
        'О' => 'O',
        'Р' => 'P',
        'С' => 'C',
        'Т' => 'T',
        'У' => 'Y',
        'Х' => 'X',
        'І' => 'I',
        // Greek look-alikes.
        'Α' => 'A',
        'Β' => 'B',
        'Ε' => 'E',
        'Ζ' => 'Z',
        'Η' => 'H',
        'Ι' => 'I',
        'Κ' => 'K',
        'Μ' => 'M',
        'Ν' => 'N',
        'Ο' => 'O',
        'Ρ' => 'P',
        'Τ' => 'T',
        'Υ' => 'Y',
        'Χ' => 'X',
        _ => return None,
    };
    Some(folded)
}

/// Fold an alphabet entry (possibly several code points) to plate characters.
fn fold_entry(s: &str) -> Vec<char> {
    s.chars().filter_map(fold_plate_char).collect()
}

/// Normalise a decoded line to plate characters, keeping confidences and alternatives
/// aligned: non-plate characters (spaces, `-`, `·`, punctuation) are dropped; alternatives
/// are folded the same way, merged (max probability) and stripped of the character itself.
/// An entry that folds to several plate characters yields several, sharing its confidence.
pub fn normalize_plate(t: &CtcText) -> LineRead {
    let mut chars = Vec::with_capacity(t.chars.len());
    for c in &t.chars {
        let folded = fold_entry(&c.text);
        if folded.len() == 1 {
            let ch = folded[0];
            let mut alts: Vec<(char, f32)> = Vec::new();
            for (s, p) in &c.alternatives {
                let f = fold_entry(s);
                if f.len() != 1 || f[0] == ch {
                    continue;
                }
                match alts.iter_mut().find(|(a, _)| *a == f[0]) {
                    Some(e) => e.1 = e.1.max(*p),
                    None => alts.push((f[0], *p)),
                }
            }
            alts.sort_by(|a, b| b.1.total_cmp(&a.1));
            chars.push(PlateChar {
                ch,
                conf: c.conf,
                alts,
            });
        } else {
            chars.extend(folded.into_iter().map(|ch| PlateChar {
                ch,
                conf: c.conf,
                alts: Vec::new(),
            }));
        }
    }
    LineRead { chars }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::ctc::CtcChar;

    fn cc(text: &str, conf: f32, alts: &[(&str, f32)]) -> CtcChar {
        CtcChar {
            text: text.into(),
            class: 1,
            conf,
            step: 0,
            alternatives: alts.iter().map(|(s, p)| (s.to_string(), *p)).collect(),
        }
    }

    #[test]
    fn folding() {
        assert_eq!(fold_plate_char('a'), Some('A'));
        assert_eq!(fold_plate_char('７'), Some('7'));
        assert_eq!(fold_plate_char('ｂ'), Some('B'));
        assert_eq!(fold_plate_char('Č'), Some('C'));
        assert_eq!(fold_plate_char('о'), Some('O')); // Cyrillic small o
        assert_eq!(fold_plate_char('-'), None);
        assert_eq!(fold_plate_char('京'), None);
        assert_eq!(fold_plate_char(':'), None);
    }

    #[test]
    fn normalize_keeps_alignment() {
        let t = CtcText {
            chars: vec![
                cc("R", 0.9, &[("R", 0.9), ("r", 0.05)]),
                cc("-", 0.8, &[]),
                cc("b", 0.7, &[("b", 0.7), ("8", 0.2), ("B", 0.05)]),
                cc("O", 0.6, &[("O", 0.6), ("0", 0.3), ("o", 0.05)]),
                cc("ﬀ", 0.5, &[]), // folds to nothing
            ],
        };
        let r = normalize_plate(&t);
        assert_eq!(r.text(), "RBO");
        assert_eq!(r.confidences(), vec![0.9, 0.7, 0.6]);
        assert!(r.chars[0].alts.is_empty());
        assert_eq!(r.chars[1].alts, vec![('8', 0.2)]);
        assert_eq!(r.chars[2].alts, vec![('0', 0.3)]);
        assert!(r.has_letter() && !r.has_digit());
        assert_eq!(r.min_conf(), 0.6);
    }
}
