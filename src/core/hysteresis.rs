//! Bay occupancy from ceiling cameras, debounced with hysteresis.
//!
//! A detector emits an occupancy probability per bay per frame. Acting on
//! single frames makes bays flicker (people walking past, headlights), so a
//! bay only changes state after `required_samples` *consecutive* confident
//! samples: ≥ `high` to become occupied, ≤ `low` to become free. Samples in
//! between reset both streaks.
//!
//! # Unknown state (documented decisions)
//!
//! * A bay starts `unknown`, becomes `unknown` when the camera is reported
//!   offline/frozen ([`Hysteresis::mark_offline`]), and when no sample has
//!   arrived for `sample_timeout_secs` ([`Hysteresis::check_timeout`], or
//!   implicitly when the next sample arrives after such a gap).
//! * **Recovery needs the full `required_samples` streak**, exactly like a
//!   normal change. A camera coming back from a freeze can deliver stale
//!   buffered frames first; one confident frame is not evidence enough, and
//!   using the same rule everywhere keeps the behaviour predictable.
//! * Samples not newer than the last one accepted are ignored, so replays
//!   and out-of-order delivery cannot flip a bay.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::core::error::CoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BayState {
    Free,
    Occupied,
    Unknown,
}

impl BayState {
    pub fn as_str(self) -> &'static str {
        match self {
            BayState::Free => "free",
            BayState::Occupied => "occupied",
            BayState::Unknown => "unknown",
        }
    }

    /// `free` / `occupied`; anything else is unknown.
    pub fn parse(s: &str) -> BayState {
        match s {
            "free" => BayState::Free,
            "occupied" => BayState::Occupied,
            _ => BayState::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HysteresisConfig {
    /// Probability at or above which a sample counts towards "occupied".
    pub high: f64,
    /// Probability at or below which a sample counts towards "free".
    pub low: f64,
    /// Consecutive confident samples needed to change state (≥ 1).
    pub required_samples: u32,
    /// Silence after which the bay becomes unknown.
    pub sample_timeout_secs: u32,
}

impl Default for HysteresisConfig {
    /// 0.8 / 0.2 thresholds, 3 samples, 60 s timeout.
    fn default() -> Self {
        HysteresisConfig {
            high: 0.8,
            low: 0.2,
            required_samples: 3,
            sample_timeout_secs: 60,
        }
    }
}

impl HysteresisConfig {
    pub fn validate(&self) -> Result<(), CoreError> {
        let ok = (0.0..=1.0).contains(&self.low)
            && (0.0..=1.0).contains(&self.high)
            && self.low < self.high
            && self.required_samples >= 1;
        if ok {
            Ok(())
        } else {
            Err(CoreError::InvalidConfig(format!(
                "hysteresis needs 0 <= low < high <= 1 and required_samples >= 1, got {self:?}"
            )))
        }
    }

    fn timeout(&self) -> Duration {
        Duration::seconds(self.sample_timeout_secs.into())
    }
}

/// Debounced state of one bay. Serialisable so the store can persist it
/// between samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hysteresis {
    config: HysteresisConfig,
    state: BayState,
    high_streak: u32,
    low_streak: u32,
    last_sample_at: Option<DateTime<Utc>>,
}

impl Hysteresis {
    pub fn new(config: HysteresisConfig) -> Result<Self, CoreError> {
        config.validate()?;
        Ok(Hysteresis {
            config,
            state: BayState::Unknown,
            high_streak: 0,
            low_streak: 0,
            last_sample_at: None,
        })
    }

    pub fn state(&self) -> BayState {
        self.state
    }

    pub fn config(&self) -> &HysteresisConfig {
        &self.config
    }

    pub fn last_sample_at(&self) -> Option<DateTime<Utc>> {
        self.last_sample_at
    }

    /// Sets `state`, returning it if it changed.
    fn set(&mut self, state: BayState) -> Option<BayState> {
        (std::mem::replace(&mut self.state, state) != state).then_some(state)
    }

    fn forget(&mut self) -> Option<BayState> {
        self.high_streak = 0;
        self.low_streak = 0;
        self.set(BayState::Unknown)
    }

    /// Feeds one sample; returns the new state if it changed.
    pub fn update(
        &mut self,
        probability: f64,
        at: DateTime<Utc>,
    ) -> Result<Option<BayState>, CoreError> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(CoreError::InvalidProbability(probability));
        }
        let before = self.state;
        if let Some(last) = self.last_sample_at {
            if at <= last {
                return Ok(None);
            }
            if at - last > self.config.timeout() {
                self.forget();
            }
        }
        self.last_sample_at = Some(at);

        if probability >= self.config.high {
            self.high_streak = self.high_streak.saturating_add(1);
            self.low_streak = 0;
        } else if probability <= self.config.low {
            self.low_streak = self.low_streak.saturating_add(1);
            self.high_streak = 0;
        } else {
            self.high_streak = 0;
            self.low_streak = 0;
        }
        if self.high_streak >= self.config.required_samples {
            self.state = BayState::Occupied;
        } else if self.low_streak >= self.config.required_samples {
            self.state = BayState::Free;
        }
        Ok((self.state != before).then_some(self.state))
    }

    /// The camera reported itself offline or frozen.
    pub fn mark_offline(&mut self) -> Option<BayState> {
        self.forget()
    }

    /// Call periodically: goes unknown after `sample_timeout_secs` without samples.
    pub fn check_timeout(&mut self, now: DateTime<Utc>) -> Option<BayState> {
        match self.last_sample_at {
            Some(last) if now - last <= self.config.timeout() => None,
            _ => self.forget(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(s)
    }

    fn bay() -> Hysteresis {
        Hysteresis::new(HysteresisConfig::default()).unwrap()
    }

    /// Feeds samples one second apart starting at `start`; returns the changes.
    fn feed(h: &mut Hysteresis, start: i64, probs: &[f64]) -> Vec<Option<BayState>> {
        probs
            .iter()
            .enumerate()
            .map(|(i, &p)| h.update(p, t(start + i as i64)).unwrap())
            .collect()
    }

    #[test]
    fn needs_n_consecutive_confident_samples() {
        let mut h = bay();
        assert_eq!(h.state(), BayState::Unknown);
        assert_eq!(
            feed(&mut h, 0, &[0.9, 0.95, 0.85]),
            vec![None, None, Some(BayState::Occupied)]
        );
        assert_eq!(h.state(), BayState::Occupied);
    }

    #[test]
    fn dead_band_resets_streak() {
        let mut h = bay();
        feed(&mut h, 0, &[0.9, 0.9, 0.5, 0.9, 0.9]);
        assert_eq!(h.state(), BayState::Unknown);
        feed(&mut h, 5, &[0.9]);
        assert_eq!(h.state(), BayState::Occupied);
    }

    #[test]
    fn occupied_to_free_needs_n_lows() {
        let mut h = bay();
        feed(&mut h, 0, &[0.9, 0.9, 0.9]);
        feed(&mut h, 3, &[0.1, 0.1, 0.9, 0.1, 0.1]);
        assert_eq!(h.state(), BayState::Occupied);
        assert_eq!(feed(&mut h, 8, &[0.0]), vec![Some(BayState::Free)]);
        // Thresholds are inclusive.
        feed(&mut h, 9, &[0.8, 0.8, 0.8]);
        assert_eq!(h.state(), BayState::Occupied);
    }

    #[test]
    fn offline_goes_unknown_and_recovers_after_n_samples() {
        let mut h = bay();
        feed(&mut h, 0, &[0.9, 0.9, 0.9]);
        assert_eq!(h.mark_offline(), Some(BayState::Unknown));
        assert_eq!(h.mark_offline(), None);
        assert_eq!(
            feed(&mut h, 3, &[0.9, 0.9, 0.9]),
            vec![None, None, Some(BayState::Occupied)]
        );
    }

    #[test]
    fn timeout_goes_unknown() {
        let mut h = bay();
        feed(&mut h, 0, &[0.1, 0.1, 0.1]);
        assert_eq!(h.state(), BayState::Free);
        assert_eq!(h.check_timeout(t(62)), None);
        assert_eq!(h.check_timeout(t(63)), Some(BayState::Unknown));
        // Fresh bay with no samples is already unknown.
        assert_eq!(bay().check_timeout(t(0)), None);
    }

    #[test]
    fn gap_longer_than_timeout_discards_old_streak() {
        let mut h = bay();
        feed(&mut h, 0, &[0.1, 0.1, 0.1, 0.9, 0.9]);
        assert_eq!(h.state(), BayState::Free);
        // The next sample arrives after a 100 s gap: bay goes unknown, streak restarts.
        assert_eq!(h.update(0.9, t(104)).unwrap(), Some(BayState::Unknown));
        feed(&mut h, 105, &[0.9, 0.9]);
        assert_eq!(h.state(), BayState::Occupied);
    }

    #[test]
    fn stale_samples_ignored_and_bad_input_rejected() {
        let mut h = bay();
        feed(&mut h, 10, &[0.9, 0.9]);
        assert_eq!(h.update(0.9, t(5)).unwrap(), None);
        assert_eq!(h.update(0.9, t(11)).unwrap(), None);
        assert_eq!(h.state(), BayState::Unknown);
        assert!(h.update(f64::NAN, t(20)).is_err());
        assert!(h.update(1.5, t(20)).is_err());
        let bad = HysteresisConfig {
            low: 0.9,
            high: 0.1,
            ..HysteresisConfig::default()
        };
        assert!(Hysteresis::new(bad).is_err());
        let zero = HysteresisConfig {
            required_samples: 0,
            ..HysteresisConfig::default()
        };
        assert!(Hysteresis::new(zero).is_err());
    }

    #[test]
    fn state_survives_serde() {
        let mut h = bay();
        feed(&mut h, 0, &[0.9, 0.9]);
        let mut back: Hysteresis =
            serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back.update(0.9, t(2)).unwrap(), Some(BayState::Occupied));
    }
}
crate::variants!(BayState, Free, Occupied, Unknown);
