//! Events that cross from the vision side into the core side, with versioned
//! JSON schemas (fixtures for each version live in `testdata/events/`).
//!
//! These are the typed values passed between adapters through bounded
//! channels; their JSON form is what goes on MQTT.

use serde::{Deserialize, Serialize};

/// Current version of the [`PlateRead`] schema.
pub const PLATE_READ_SCHEMA: u32 = 1;

/// Which way a camera faces a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Entry,
    Exit,
}

crate::variants!(Role, Entry, Exit);

/// A decided plate read: one vehicle seen by one gate camera, fused over the
/// frames it was visible in. Schema version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateRead {
    /// Always [`PLATE_READ_SCHEMA`] when produced by this version.
    pub schema: u32,
    /// Unique id of this read (UUID v4).
    pub id: String,
    pub camera: String,
    pub role: Role,
    pub gate: Option<String>,
    pub lane: Option<String>,
    /// `in` / `out` when known from motion, else absent.
    pub direction: Option<String>,
    /// When the decision was made (UTC, RFC 3339).
    pub timestamp: chrono::DateTime<chrono::Utc>,
    /// When the vehicle was first seen (UTC, RFC 3339).
    pub first_seen: chrono::DateTime<chrono::Utc>,
    /// Normalised plate (A–Z0–9), after format rules.
    pub plate: String,
    /// What the reader produced before format rules.
    pub raw_text: String,
    /// Overall confidence 0..1.
    pub score: f32,
    /// One confidence per character of `plate`.
    pub char_confidences: Vec<f32>,
    /// Alternative plates with scores, best first (includes `plate`).
    pub candidates: Vec<Candidate>,
    /// Whether `plate` fits one of the site's plate formats.
    pub format_matched: bool,
    /// Name from `[lpr] known_plates` when the plate is a known one.
    pub known_as: Option<String>,
    /// Plate box in frame pixels `[x1, y1, x2, y2]`.
    pub plate_box: [f32; 4],
    /// Number of frames whose reads were fused.
    pub reads_fused: u32,
    /// Evidence files (relative to the data directory).
    pub evidence: Evidence,
    /// Model names used for detection and reading.
    pub models: Models,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    pub plate: String,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The exact crop that was read (JPEG).
    pub crop: Option<String>,
    /// The frame it came from (JPEG).
    pub frame: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Models {
    pub detector: String,
    pub reader: String,
}

/// Occupancy of one bay as decided by the overview pipeline (after hysteresis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BayUpdate {
    pub space_id: String,
    pub camera: String,
    /// `free`, `occupied` or `unknown`.
    pub state: String,
    /// Last classifier probability of `occupied` (absent when unknown).
    pub probability: Option<f32>,
    pub at: chrono::DateTime<chrono::Utc>,
}
