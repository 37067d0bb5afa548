//! Flags raised for staff attention, and audit records.
//!
//! A flag is *raised* by a decision (entry, exit, bay monitoring) as a
//! [`RaisedFlag`] value; the store persists it with status `open` and walks it
//! through [`FlagStatus`] as staff act on it. Every state change, gate action
//! or override is described by an [`AuditRecord`] that the store appends.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::error::CoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// A watch-listed plate was read (entry is not blocked).
    WatchListHit,
    /// An exit read matched no open session.
    UnmatchedExit,
    /// An exit read fuzzily matched several open sessions equally well.
    AmbiguousExit,
    /// A vehicle left owing money (pay-later).
    UnpaidExit,
    /// The plate read's confidence was below the site threshold.
    LowConfidenceRead,
    /// A bay camera sees a vehicle where no session is assigned.
    OccupiedWithoutSession,
    /// A vehicle parked in a bay other than the one assigned.
    WrongBay,
    /// A gate was commanded open and never confirmed.
    UnacknowledgedGate,
    /// A plate entered while it still had an open session from earlier.
    DuplicateSession,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl FlagStatus {
    /// Allowed moves: `open → acknowledged → resolved` and `open → resolved`.
    ///
    /// Resolved is terminal: a recurrence raises a *new* flag, so each flag's
    /// history stays a straight line and resolution statistics stay honest.
    /// Setting the current status again is not a transition and is rejected,
    /// which lets the store detect double-clicks and races.
    pub fn can_transition_to(self, to: FlagStatus) -> bool {
        use FlagStatus::*;
        matches!(
            (self, to),
            (Open, Acknowledged) | (Open, Resolved) | (Acknowledged, Resolved)
        )
    }

    pub fn transition(self, to: FlagStatus) -> Result<FlagStatus, CoreError> {
        if self.can_transition_to(to) {
            Ok(to)
        } else {
            Err(CoreError::InvalidFlagTransition { from: self, to })
        }
    }
}

/// A flag a decision asks the store to raise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaisedFlag {
    pub kind: FlagKind,
    /// Human-readable context for the staff console.
    pub detail: String,
}

impl RaisedFlag {
    pub fn new(kind: FlagKind, detail: impl Into<String>) -> Self {
        RaisedFlag {
            kind,
            detail: detail.into(),
        }
    }
}

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// An automatic decision of the system.
    System,
    /// A staff member, by user id.
    Staff(String),
    /// A device (camera, gate controller, pay station), by device id.
    Device(String),
}

/// What an audit record says happened. One variant per action the services
/// record (and the staff console's gate override); the text (`as_str`, the same as serde's) is what the audit log
/// stores and the API shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    EntryAdmitted,
    EntryDenied,
    ExitOpened,
    ExitHeld,
    SessionOpened,
    SessionClosed,
    ReservationCreated,
    ReservationCheckedIn,
    ReservationCancelled,
    ReservationNoShow,
    PaymentRecorded,
    PaymentFailed,
    RefundIssued,
    DebtRecorded,
    DebtSettled,
    FlagRaised,
    FlagAcknowledged,
    FlagResolved,
    ListEntryAdded,
    ListEntryUpdated,
    ListEntryRemoved,
    PermitIssued,
    PermitRevoked,
    SpaceStatusChanged,
    SpaceSensorReported,
    SpaceOverrideSet,
    SpaceOverrideCleared,
    /// A gate opened or closed by hand by staff (the console's action).
    GateOverride,
}

impl AuditAction {
    pub const ALL: [AuditAction; 28] = [
        AuditAction::EntryAdmitted,
        AuditAction::EntryDenied,
        AuditAction::ExitOpened,
        AuditAction::ExitHeld,
        AuditAction::SessionOpened,
        AuditAction::SessionClosed,
        AuditAction::ReservationCreated,
        AuditAction::ReservationCheckedIn,
        AuditAction::ReservationCancelled,
        AuditAction::ReservationNoShow,
        AuditAction::PaymentRecorded,
        AuditAction::PaymentFailed,
        AuditAction::RefundIssued,
        AuditAction::DebtRecorded,
        AuditAction::DebtSettled,
        AuditAction::FlagRaised,
        AuditAction::FlagAcknowledged,
        AuditAction::FlagResolved,
        AuditAction::ListEntryAdded,
        AuditAction::ListEntryUpdated,
        AuditAction::ListEntryRemoved,
        AuditAction::PermitIssued,
        AuditAction::PermitRevoked,
        AuditAction::SpaceStatusChanged,
        AuditAction::SpaceSensorReported,
        AuditAction::SpaceOverrideSet,
        AuditAction::SpaceOverrideCleared,
        AuditAction::GateOverride,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::EntryAdmitted => "entry_admitted",
            AuditAction::EntryDenied => "entry_denied",
            AuditAction::ExitOpened => "exit_opened",
            AuditAction::ExitHeld => "exit_held",
            AuditAction::SessionOpened => "session_opened",
            AuditAction::SessionClosed => "session_closed",
            AuditAction::ReservationCreated => "reservation_created",
            AuditAction::ReservationCheckedIn => "reservation_checked_in",
            AuditAction::ReservationCancelled => "reservation_cancelled",
            AuditAction::ReservationNoShow => "reservation_no_show",
            AuditAction::PaymentRecorded => "payment_recorded",
            AuditAction::PaymentFailed => "payment_failed",
            AuditAction::RefundIssued => "refund_issued",
            AuditAction::DebtRecorded => "debt_recorded",
            AuditAction::DebtSettled => "debt_settled",
            AuditAction::FlagRaised => "flag_raised",
            AuditAction::FlagAcknowledged => "flag_acknowledged",
            AuditAction::FlagResolved => "flag_resolved",
            AuditAction::ListEntryAdded => "list_entry_added",
            AuditAction::ListEntryUpdated => "list_entry_updated",
            AuditAction::ListEntryRemoved => "list_entry_removed",
            AuditAction::PermitIssued => "permit_issued",
            AuditAction::PermitRevoked => "permit_revoked",
            AuditAction::SpaceStatusChanged => "space_status_changed",
            AuditAction::SpaceSensorReported => "space_sensor_reported",
            AuditAction::SpaceOverrideSet => "space_override_set",
            AuditAction::SpaceOverrideCleared => "space_override_cleared",
            AuditAction::GateOverride => "gate_override",
        }
    }

    /// The action named `s`, if there is one.
    pub fn parse(s: &str) -> Option<AuditAction> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Session,
    Plate,
    Space,
    Gate,
    Flag,
    Payment,
    Reservation,
    Permit,
    Tariff,
    List,
}

/// What an action was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSubject {
    pub kind: SubjectKind,
    pub id: String,
}

impl AuditSubject {
    pub fn new(kind: SubjectKind, id: impl Into<String>) -> Self {
        AuditSubject {
            kind,
            id: id.into(),
        }
    }
}

/// One append-only audit entry. `reason` is mandatory so manual overrides
/// always carry a justification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub actor: Actor,
    pub action: AuditAction,
    pub subject: AuditSubject,
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use FlagStatus::*;

    #[test]
    fn flag_transitions() {
        assert_eq!(Open.transition(Acknowledged).unwrap(), Acknowledged);
        assert_eq!(Acknowledged.transition(Resolved).unwrap(), Resolved);
        assert_eq!(Open.transition(Resolved).unwrap(), Resolved);
        assert!(Resolved.transition(Open).is_err());
        assert!(Acknowledged.transition(Open).is_err());
        assert!(Open.transition(Open).is_err());
    }

    #[test]
    fn audit_record_serialises() {
        let rec = AuditRecord {
            actor: Actor::Staff("u42".into()),
            action: AuditAction::GateOverride,
            subject: AuditSubject::new(SubjectKind::Gate, "exit-1"),
            reason: "driver paid cash at booth".into(),
            at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        };
        let v = serde_json::to_value(&rec).unwrap();
        assert_eq!(v["actor"]["type"], "staff");
        assert_eq!(v["actor"]["id"], "u42");
        assert_eq!(v["action"], "gate_override");
        assert_eq!(v["subject"]["kind"], "gate");
        let back: AuditRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, rec);
        assert_eq!(
            serde_json::to_value(Actor::System).unwrap()["type"],
            "system"
        );
        assert_eq!(
            serde_json::to_string(&FlagKind::OccupiedWithoutSession).unwrap(),
            r#""occupied_without_session""#
        );
    }

    #[test]
    fn audit_actions_have_one_spelling() {
        for a in AuditAction::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(AuditAction::parse("entry_admited"), None);
    }
}

crate::variants!(
    FlagKind,
    WatchListHit,
    UnmatchedExit,
    AmbiguousExit,
    UnpaidExit,
    LowConfidenceRead,
    OccupiedWithoutSession,
    WrongBay,
    UnacknowledgedGate,
    DuplicateSession,
);
crate::variants!(FlagStatus, Open, Acknowledged, Resolved);
