//! The hysteresis stage: per-bay debouncing (`core::hysteresis`) for one
//! camera's bays, turning probabilities into [`BayUpdate`]s on change.

use crate::core::hysteresis::{BayState, Hysteresis, HysteresisConfig};
use crate::events::BayUpdate;
use chrono::{DateTime, Utc};

/// The debounced state of every bay of one camera, in bay order.
#[derive(Debug, Clone)]
pub struct BayTracker {
    camera: String,
    bays: Vec<(String, Hysteresis)>,
}

impl BayTracker {
    pub fn new(
        camera: &str,
        spaces: &[String],
        cfg: HysteresisConfig,
    ) -> Result<Self, crate::core::error::CoreError> {
        let h = Hysteresis::new(cfg)?;
        Ok(Self {
            camera: camera.to_string(),
            bays: spaces.iter().map(|s| (s.clone(), h.clone())).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.bays.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bays.is_empty()
    }

    pub fn states(&self) -> Vec<(&str, BayState)> {
        self.bays
            .iter()
            .map(|(s, h)| (s.as_str(), h.state()))
            .collect()
    }

    fn update(
        &self,
        space: &str,
        state: BayState,
        probability: Option<f32>,
        at: DateTime<Utc>,
    ) -> BayUpdate {
        BayUpdate {
            space_id: space.to_string(),
            camera: self.camera.clone(),
            state: state.as_str().into(),
            probability,
            at,
        }
    }

    /// Feeds one probability per bay (same order); returns the changes.
    pub fn apply(&mut self, probs: &[f32], at: DateTime<Utc>) -> Vec<BayUpdate> {
        debug_assert_eq!(probs.len(), self.bays.len());
        let mut out = Vec::new();
        for (i, &p) in probs.iter().enumerate().take(self.bays.len()) {
            match self.bays[i].1.update(p as f64, at) {
                Ok(Some(state)) => {
                    let prob = (state != BayState::Unknown).then_some(p);
                    out.push(self.update(&self.bays[i].0, state, prob, at));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(camera = %self.camera, space = %self.bays[i].0, error = %e, "bay sample rejected")
                }
            }
        }
        out
    }

    /// The camera is offline or frozen: every bay becomes `unknown`.
    pub fn mark_offline(&mut self, at: DateTime<Utc>) -> Vec<BayUpdate> {
        let mut out = Vec::new();
        for i in 0..self.bays.len() {
            if let Some(state) = self.bays[i].1.mark_offline() {
                out.push(self.update(&self.bays[i].0, state, None, at));
            }
        }
        out
    }

    /// Bays that have had no sample for the timeout become `unknown`.
    pub fn check_timeouts(&mut self, now: DateTime<Utc>) -> Vec<BayUpdate> {
        let mut out = Vec::new();
        for i in 0..self.bays.len() {
            if let Some(state) = self.bays[i].1.check_timeout(now) {
                out.push(self.update(&self.bays[i].0, state, None, now));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(s)
    }

    fn tracker() -> BayTracker {
        let cfg = HysteresisConfig {
            high: 0.7,
            low: 0.3,
            required_samples: 2,
            sample_timeout_secs: 10,
        };
        BayTracker::new("cam", &["A".into(), "B".into()], cfg).unwrap()
    }

    #[test]
    fn changes_only_after_the_streak_and_reports_each_change_once() {
        let mut tr = tracker();
        assert!(tr.apply(&[0.9, 0.1], t(0)).is_empty());
        let u = tr.apply(&[0.95, 0.2], t(1));
        assert_eq!(
            u.iter()
                .map(|u| (u.space_id.as_str(), u.state.as_str()))
                .collect::<Vec<_>>(),
            vec![("A", "occupied"), ("B", "free")]
        );
        assert_eq!(u[0].probability, Some(0.95));
        assert_eq!(u[0].camera, "cam");
        assert!(tr.apply(&[0.9, 0.1], t(2)).is_empty());
        // One flicker does not flip a bay.
        assert!(tr.apply(&[0.1, 0.1], t(3)).is_empty());
        assert!(tr.apply(&[0.9, 0.1], t(4)).is_empty());
    }

    #[test]
    fn offline_makes_every_bay_unknown_once_then_recovers_after_the_streak() {
        let mut tr = tracker();
        tr.apply(&[0.9, 0.1], t(0));
        tr.apply(&[0.9, 0.1], t(1));
        let u = tr.mark_offline(t(2));
        assert_eq!(u.len(), 2);
        assert!(u
            .iter()
            .all(|u| u.state == "unknown" && u.probability.is_none()));
        assert!(tr.mark_offline(t(3)).is_empty());
        assert!(
            tr.apply(&[0.9, 0.1], t(4)).is_empty(),
            "one sample is not enough to recover"
        );
        assert_eq!(tr.apply(&[0.9, 0.1], t(5)).len(), 2);
        assert_eq!(
            tr.states(),
            vec![("A", BayState::Occupied), ("B", BayState::Free)]
        );
    }

    #[test]
    fn silence_longer_than_the_timeout_makes_bays_unknown() {
        let mut tr = tracker();
        tr.apply(&[0.9, 0.1], t(0));
        tr.apply(&[0.9, 0.1], t(1));
        assert!(tr.check_timeouts(t(11)).is_empty());
        let u = tr.check_timeouts(t(12));
        assert_eq!(u.len(), 2);
        assert!(u.iter().all(|u| u.state == "unknown"));
    }
}
