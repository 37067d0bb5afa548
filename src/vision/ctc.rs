//! Greedy CTC decoding of PP-OCR reader output `[T, C]` (softmax already applied).
//!
//! Classes are `[blank] + alphabet + [" "]`: blank is class 0, the last class is space.
//! Greedy decoding (argmax per step, collapse repeats, drop blanks) is what PP-OCR itself
//! does; besides the text we keep, per output character, its confidence and the reader's
//! runner-up classes, which the plate format matcher and the tracker use to repair O/0 and
//! I/1 style confusions instead of guessing.

use serde::{Deserialize, Serialize};

use super::error::{Result, VisionError};

/// Number of alternatives kept per character.
pub const TOP_K: usize = 3;

/// One decoded character (an alphabet entry, possibly several bytes or code points).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtcChar {
    pub text: String,
    pub class: usize,
    /// Maximum probability of this class over the steps of its run.
    pub conf: f32,
    /// Step (time index) where `conf` was reached.
    pub step: usize,
    /// Top-[`TOP_K`] non-blank classes at `step`, by descending probability; the first is
    /// the decoded character itself.
    pub alternatives: Vec<(String, f32)>,
}

/// Decoded line of text.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CtcText {
    pub chars: Vec<CtcChar>,
}

impl CtcText {
    pub fn text(&self) -> String {
        self.chars.iter().map(|c| c.text.as_str()).collect()
    }

    /// Mean character confidence (PP-OCR's line score); 0 for an empty line.
    pub fn mean_conf(&self) -> f32 {
        if self.chars.is_empty() {
            0.0
        } else {
            self.chars.iter().map(|c| c.conf).sum::<f32>() / self.chars.len() as f32
        }
    }
}

/// Greedy CTC decoder for one alphabet.
#[derive(Debug, Clone)]
pub struct CtcDecoder {
    /// `[""(blank)] + alphabet + [" "]`.
    labels: Vec<String>,
}

impl CtcDecoder {
    /// `alphabet` are the model's characters in class order (the lines of the ONNX
    /// metadata key `character`), without blank and space; they are added here.
    pub fn new(alphabet: Vec<String>) -> Self {
        let mut labels = Vec::with_capacity(alphabet.len() + 2);
        labels.push(String::new());
        labels.extend(alphabet);
        labels.push(" ".to_string());
        Self { labels }
    }

    /// Build from the raw `character` metadata string (newline-separated; a trailing
    /// newline or `\r\n` endings are tolerated).
    pub fn from_metadata(meta: &str) -> Self {
        let meta = meta.strip_suffix('\n').unwrap_or(meta);
        Self::new(
            meta.split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
                .collect(),
        )
    }

    /// Number of classes the model output must have (`alphabet + 2`).
    pub fn num_classes(&self) -> usize {
        self.labels.len()
    }

    /// Label of a class (`""` for blank).
    pub fn label(&self, class: usize) -> &str {
        &self.labels[class]
    }

    /// Decode one line: `probs` is `[steps, classes]` row-major.
    pub fn decode(&self, probs: &[f32], steps: usize, classes: usize) -> Result<CtcText> {
        // A model exported without the space class has one class fewer; accept it.
        if classes != self.labels.len() && classes + 1 != self.labels.len() {
            return Err(VisionError::Shape(format!(
                "reader has {classes} classes, alphabet implies {}",
                self.labels.len()
            )));
        }
        if probs.len() < steps * classes {
            return Err(VisionError::BufferTooSmall {
                what: "CTC probabilities",
                need: steps * classes,
                got: probs.len(),
            });
        }
        let mut chars: Vec<CtcChar> = Vec::new();
        let mut prev = 0usize; // blank
        for t in 0..steps {
            let row = &probs[t * classes..(t + 1) * classes];
            let (cls, p) = argmax(row);
            if cls != 0 {
                if cls == prev {
                    // Same run: keep the most confident step.
                    let last = chars.last_mut().expect("run has a char");
                    if p > last.conf {
                        last.conf = p;
                        last.step = t;
                    }
                } else {
                    chars.push(CtcChar {
                        text: self.labels[cls].clone(),
                        class: cls,
                        conf: p,
                        step: t,
                        alternatives: Vec::new(),
                    });
                }
            }
            prev = cls;
        }
        for c in &mut chars {
            let row = &probs[c.step * classes..(c.step + 1) * classes];
            c.alternatives = top_k_non_blank(row, TOP_K)
                .into_iter()
                .map(|(k, p)| (self.labels[k].clone(), p))
                .collect();
        }
        Ok(CtcText { chars })
    }

    /// Decode a batch `[n, steps, classes]`.
    pub fn decode_batch(
        &self,
        probs: &[f32],
        n: usize,
        steps: usize,
        classes: usize,
    ) -> Result<Vec<CtcText>> {
        let slot = steps * classes;
        if probs.len() < n * slot {
            return Err(VisionError::BufferTooSmall {
                what: "CTC batch",
                need: n * slot,
                got: probs.len(),
            });
        }
        (0..n)
            .map(|i| self.decode(&probs[i * slot..(i + 1) * slot], steps, classes))
            .collect()
    }
}

fn argmax(row: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, &v) in row.iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best
}

/// Top `k` classes of a row, skipping class 0 (blank), by descending probability.
fn top_k_non_blank(row: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut top: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    for (i, &v) in row.iter().enumerate().skip(1) {
        if top.len() < k || v > top[top.len() - 1].1 {
            let pos = top.iter().position(|&(_, p)| v > p).unwrap_or(top.len());
            top.insert(pos, (i, v));
            top.truncate(k);
        }
    }
    top
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Build `[T, C]` probabilities from per-step `(class, prob)` lists; the rest of each
    /// row's mass goes to blank.
    pub(crate) fn probs(classes: usize, steps: &[&[(usize, f32)]]) -> Vec<f32> {
        let mut out = vec![0.0; steps.len() * classes];
        for (t, s) in steps.iter().enumerate() {
            let row = &mut out[t * classes..(t + 1) * classes];
            let mut rest = 1.0;
            for &(c, p) in s.iter() {
                row[c] = p;
                rest -= p;
            }
            row[0] += rest.max(0.0);
        }
        out
    }

    pub(crate) fn decoder() -> CtcDecoder {
        // classes: 0 blank, 1 'A', 2 'B', 3 '0', 4 'O', 5 '1', 6 'é', 7 ':', 8 ' '
        CtcDecoder::from_metadata("A\nB\n0\nO\n1\né\n:\n")
    }

    #[test]
    fn collapse_blanks_and_repeats() {
        let d = decoder();
        assert_eq!(d.num_classes(), 9);
        let p = probs(
            9,
            &[
                &[(1, 0.9)],
                &[(1, 0.95), (2, 0.03)],
                &[],
                &[(1, 0.8)],
                &[(4, 0.6), (3, 0.35)],
                &[(4, 0.5)],
                &[(8, 0.9)],
                &[(6, 0.7)],
            ],
        );
        let t = d.decode(&p, 8, 9).unwrap();
        assert_eq!(t.text(), "AAO é");
        assert!((t.chars[0].conf - 0.95).abs() < 1e-6);
        assert_eq!(t.chars[0].step, 1);
        assert_eq!(t.chars[0].alternatives[0], ("A".to_string(), 0.95));
        assert_eq!(t.chars[0].alternatives[1].0, "B");
        let o = &t.chars[2];
        assert_eq!(o.text, "O");
        assert_eq!(o.alternatives[1], ("0".to_string(), 0.35));
        assert_eq!(o.alternatives.len(), TOP_K);
        assert!(t.mean_conf() > 0.7);
    }

    #[test]
    fn shape_checks_and_batch() {
        let d = decoder();
        let p = probs(9, &[&[(1, 0.9)], &[(2, 0.9)]]);
        assert!(d.decode(&p, 2, 7).is_err());
        assert!(d.decode(&p[..10], 2, 9).is_err());
        // Model without the space class.
        let p8 = probs(8, &[&[(1, 0.9)]]);
        assert_eq!(d.decode(&p8, 1, 8).unwrap().text(), "A");
        let both: Vec<f32> = p.iter().chain(p.iter()).copied().collect();
        let b = d.decode_batch(&both, 2, 2, 9).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].text(), "AB");
        assert_eq!(d.decode(&[], 0, 9).unwrap().text(), "");
    }
}
