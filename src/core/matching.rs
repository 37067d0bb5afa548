//! Exit matching: which open session does this exit read belong to?
//!
//! Exit cameras misread plates in predictable ways (O↔0, B↔8, ...), so an
//! exact lookup alone strands paying customers at the barrier. We accept a
//! fuzzy match only when it is both *close* (within `max_distance`) and
//! *unique* (the runner-up is at least `min_margin` further away); otherwise
//! the read is ambiguous and a human decides, because charging the wrong
//! session is worse than a short hold.

use serde::{Deserialize, Serialize};

use crate::core::plate::{distance_hundredths, Plate};
use crate::core::types::{OpenSession, SessionId};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MatchConfig {
    /// Largest weighted distance still accepted as the same plate.
    pub max_distance: f64,
    /// How much further the second-best candidate must be for the best to be unique.
    pub min_margin: f64,
}

impl Default for MatchConfig {
    /// One real edit (or up to ~4 confusable swaps), and a half-edit margin.
    fn default() -> Self {
        MatchConfig {
            max_distance: 1.0,
            min_margin: 0.5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchCandidate {
    pub session: SessionId,
    pub plate: Plate,
    pub distance: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitMatch {
    Exact {
        session: SessionId,
    },
    Fuzzy {
        session: SessionId,
        distance: f64,
    },
    /// The best is within `max_distance` but others are within `min_margin`
    /// of it; those candidates, best first.
    Ambiguous {
        candidates: Vec<MatchCandidate>,
    },
    None,
}

impl ExitMatch {
    /// The session chosen, if the match is usable without staff.
    pub fn session(&self) -> Option<&SessionId> {
        match self {
            ExitMatch::Exact { session } | ExitMatch::Fuzzy { session, .. } => Some(session),
            ExitMatch::Ambiguous { .. } | ExitMatch::None => None,
        }
    }
}

fn to_hundredths(x: f64) -> u32 {
    (x.max(0.0) * 100.0).round() as u32
}

/// Matches an exit read against the open sessions.
///
/// An exact plate match always wins. Should the store's one-open-session-per-
/// plate invariant ever be broken, the *oldest* exact session is chosen: it
/// is the one that has been accruing fees and that supersession should have
/// closed.
pub fn match_exit(read: &Plate, open_sessions: &[OpenSession], config: &MatchConfig) -> ExitMatch {
    if let Some(exact) = open_sessions
        .iter()
        .filter(|s| &s.plate == read)
        .min_by_key(|s| (s.started_at, s.id.clone()))
    {
        return ExitMatch::Exact {
            session: exact.id.clone(),
        };
    }

    let max = to_hundredths(config.max_distance);
    let margin = to_hundredths(config.min_margin);
    // The runner-up matters even beyond `max_distance`: a best match at 1.0
    // is not unique if another plate sits at 1.2.
    let horizon = max.saturating_add(margin);
    let read_len = read.as_str().len();
    let mut scored: Vec<(u32, &OpenSession)> = open_sessions
        .iter()
        // Each length difference costs a full indel: skip hopeless candidates cheaply.
        .filter(|s| {
            (s.plate.as_str().len().abs_diff(read_len) as u32).saturating_mul(100) <= horizon
        })
        .map(|s| (distance_hundredths(read, &s.plate), s))
        .filter(|(d, _)| *d <= horizon)
        .collect();
    scored.sort_by(|(da, a), (db, b)| (da, a.started_at, &a.id).cmp(&(db, b.started_at, &b.id)));

    let candidate = |(d, s): &(u32, &OpenSession)| MatchCandidate {
        session: s.id.clone(),
        plate: s.plate.clone(),
        distance: f64::from(*d) / 100.0,
    };
    match scored.as_slice() {
        [] => ExitMatch::None,
        [(best_d, _), ..] if *best_d > max => ExitMatch::None,
        [(d, best)] => ExitMatch::Fuzzy {
            session: best.id.clone(),
            distance: f64::from(*d) / 100.0,
        },
        [(d1, best), (d2, _), ..] if d2 - d1 >= margin => ExitMatch::Fuzzy {
            session: best.id.clone(),
            distance: f64::from(*d1) / 100.0,
        },
        [(d1, _), ..] => ExitMatch::Ambiguous {
            // Everything within the margin of the best: the plates staff must choose from.
            candidates: scored
                .iter()
                .take_while(|(d, _)| d - d1 < margin)
                .map(candidate)
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::VehicleType;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    fn session(id: &str, plate: &str) -> OpenSession {
        OpenSession {
            id: SessionId::new(id),
            plate: Plate::parse(plate).unwrap(),
            started_at: Utc.with_ymd_and_hms(2024, 1, 1, 8, 0, 0).unwrap(),
            vehicle_type: VehicleType::Car,
            space: None,
            space_type: None,
            reservation: None,
        }
    }

    fn m(read: &str, sessions: &[OpenSession]) -> ExitMatch {
        match_exit(
            &Plate::parse(read).unwrap(),
            sessions,
            &MatchConfig::default(),
        )
    }

    #[test]
    fn exact_fuzzy_ambiguous_none() {
        let sessions = [session("s1", "B123ABC"), session("s2", "CJ07XYZ")];
        assert_eq!(
            m("B123ABC", &sessions),
            ExitMatch::Exact {
                session: SessionId::new("s1")
            }
        );
        assert_eq!(
            m("8I23A8C", &sessions),
            ExitMatch::Fuzzy {
                session: SessionId::new("s1"),
                // B/8 0.3 + I/1 0.2 + B/8 0.3 in the one confusion table.
                distance: 0.8
            }
        );
        assert_eq!(m("ZZ99ZZZ", &sessions), ExitMatch::None);

        let twins = [session("s1", "B123OBC"), session("s2", "B1230BC")];
        // Read "B123DBC": 0.2 from both → ambiguous.
        match m("B123DBC", &twins) {
            ExitMatch::Ambiguous { candidates } => assert_eq!(candidates.len(), 2),
            other => panic!("expected ambiguous, got {other:?}"),
        }
    }

    #[test]
    fn margin_decides_uniqueness() {
        // One candidate at 0.2, another at 1.0: margin 0.8 ≥ 0.5 → fuzzy.
        let sessions = [session("s1", "B1230BC"), session("s2", "B123XBC")];
        assert_eq!(
            m("B123OBC", &sessions),
            ExitMatch::Fuzzy {
                session: SessionId::new("s1"),
                distance: 0.2
            }
        );
        // 0.2 vs 0.6: margin 0.4 < 0.5 → ambiguous.
        let sessions = [session("s1", "B1230BC"), session("s2", "8I23OBC")];
        assert!(matches!(
            m("B123OBC", &sessions),
            ExitMatch::Ambiguous { .. }
        ));
    }

    #[test]
    fn oldest_exact_wins_if_invariant_broken() {
        let mut newer = session("s2", "B1");
        newer.started_at += chrono::Duration::hours(1);
        let sessions = [newer, session("s1", "B1")];
        assert_eq!(m("B1", &sessions).session(), Some(&SessionId::new("s1")));
    }

    fn plate_str() -> impl Strategy<Value = String> {
        "[A-Z0-9]{2,8}"
    }

    proptest! {
        #[test]
        fn exact_match_always_wins(
            target in plate_str(),
            others in prop::collection::vec(plate_str(), 0..8),
            pos in 0usize..8,
        ) {
            let mut sessions: Vec<OpenSession> = others
                .iter()
                .enumerate()
                .filter(|(_, p)| **p != target)
                .map(|(i, p)| session(&format!("o{i}"), p))
                .collect();
            let pos = pos.min(sessions.len());
            sessions.insert(pos, session("target", &target));
            prop_assert_eq!(
                m(&target, &sessions),
                ExitMatch::Exact { session: SessionId::new("target") }
            );
        }

        #[test]
        fn fuzzy_result_is_within_threshold_and_unique(
            read in plate_str(),
            others in prop::collection::vec(plate_str(), 0..8),
        ) {
            let sessions: Vec<OpenSession> = others
                .iter()
                .enumerate()
                .map(|(i, p)| session(&format!("o{i}"), p))
                .collect();
            let read_plate = Plate::parse(&read).unwrap();
            if let ExitMatch::Fuzzy { session: id, distance } = m(&read, &sessions) {
                prop_assert!(distance <= 1.0 && distance > 0.0);
                for s in sessions.iter().filter(|s| s.id != id) {
                    let d = f64::from(distance_hundredths(&read_plate, &s.plate)) / 100.0;
                    prop_assert!(d - distance >= 0.5 - 1e-9);
                }
            }
        }
    }
}
