//! Per-site policy: every knob that entry and exit decisions read.

use chrono::Duration;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::core::assignment::{AssignmentStrategy, CompatibilityTable};
use crate::core::matching::MatchConfig;
use crate::core::reservation::ReservationPolicy;
use crate::core::types::LotId;

/// What to do when a plate enters while it still has an open session older
/// than the dedupe window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateSessionPolicy {
    /// Refuse entry until staff close the old session. For sites where plate
    /// cloning is a real risk.
    Deny,
    /// Admit, ask the store to close the stale session (it stays for billing
    /// review) and raise a `duplicate_session` flag. Default: a car standing
    /// at the entry is evidently *outside*, so the old session almost always
    /// means a missed exit read, and stranding the driver punishes them for
    /// our camera's fault.
    #[default]
    SupersedeAndFlag,
}

/// What to do with an exit read that matches no session (or several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmatchedExitPolicy {
    /// Keep the barrier closed and call staff.
    #[default]
    HoldForStaff,
    /// Ask for the tariff's lost-ticket fee at the exit terminal.
    ChargeLostTicket,
}

/// What to do when money is owed at exit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnpaidExitPolicy {
    /// Barrier stays closed until paid.
    #[default]
    RequirePayment,
    /// Open anyway, record a debt against the plate and flag `unpaid_exit`
    /// (barrier-less / account-based sites).
    PayLater,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SitePolicy {
    pub lot: LotId,
    #[serde(with = "crate::core::schedule::tz_serde")]
    pub time_zone: Tz,
    /// Only permit holders, allow-listed plates and reservations may enter.
    pub restricted: bool,
    /// Re-reads of the same plate within this many seconds of its session's
    /// start are treated as the same arrival.
    pub dedupe_window_secs: u32,
    pub duplicate_session: DuplicateSessionPolicy,
    /// Reads below this confidence (0..1) raise `low_confidence_read`.
    pub min_read_confidence: f64,
    pub assignment: AssignmentStrategy,
    pub compatibility: CompatibilityTable,
    pub unmatched_exit: UnmatchedExitPolicy,
    pub unpaid_exit: UnpaidExitPolicy,
    pub exit_matching: MatchConfig,
    pub reservations: ReservationPolicy,
}

impl SitePolicy {
    /// An open (non-restricted) lot with the documented defaults: 30 s dedupe,
    /// supersede duplicate sessions, 0.8 confidence, nearest bay, default
    /// compatibility table, hold unmatched exits, require payment.
    pub fn new(lot: LotId, time_zone: Tz) -> Self {
        SitePolicy {
            lot,
            time_zone,
            restricted: false,
            dedupe_window_secs: 30,
            duplicate_session: DuplicateSessionPolicy::default(),
            min_read_confidence: 0.8,
            assignment: AssignmentStrategy::default(),
            compatibility: CompatibilityTable::default(),
            unmatched_exit: UnmatchedExitPolicy::default(),
            unpaid_exit: UnpaidExitPolicy::default(),
            exit_matching: MatchConfig::default(),
            reservations: ReservationPolicy::default(),
        }
    }

    pub fn dedupe_window(&self) -> Duration {
        Duration::seconds(self.dedupe_window_secs.into())
    }

    /// The unpaid-exit policy in force. A payment gateway that is down must
    /// never trap cars behind a barrier: while it is unavailable, money owed
    /// at exit becomes a recorded debt (`pay_later`) whatever the site's
    /// normal policy, and the debt is shown on the next visit.
    pub fn unpaid_exit_when(&self, gateway_available: bool) -> UnpaidExitPolicy {
        if gateway_available {
            self.unpaid_exit
        } else {
            UnpaidExitPolicy::PayLater
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_round_trips_through_json() {
        let policy = SitePolicy::new(LotId::new("north"), chrono_tz::Europe::Bucharest);
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(json["time_zone"], "Europe/Bucharest");
        assert_eq!(json["duplicate_session"], "supersede_and_flag");
        assert_eq!(json["compatibility"]["preferences"]["car"][0], "compact");
        let back: SitePolicy = serde_json::from_value(json).unwrap();
        assert_eq!(back, policy);
    }

    #[test]
    fn gateway_down_means_pay_later() {
        let policy = SitePolicy::new(LotId::new("north"), chrono_tz::UTC);
        assert_eq!(
            policy.unpaid_exit_when(true),
            UnpaidExitPolicy::RequirePayment
        );
        assert_eq!(policy.unpaid_exit_when(false), UnpaidExitPolicy::PayLater);
    }
}
