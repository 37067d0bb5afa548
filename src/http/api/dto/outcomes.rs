//! Wire forms of the services' outcomes and views.

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct TypeAvailability {
    #[serde(rename = "type")]
    pub space_type: String,
    pub total: i64,
    pub available: i64,
    pub occupied: i64,
    pub reserved: i64,
    pub out_of_service: i64,
}
impl From<&svc::TypeAvailability> for TypeAvailability {
    fn from(r: &svc::TypeAvailability) -> Self {
        Self {
            space_type: r.space_type.clone(),
            total: r.total,
            available: r.available,
            occupied: r.occupied,
            reserved: r.reserved,
            out_of_service: r.out_of_service,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ParkingSpace {
    #[serde(flatten)]
    pub space: Space,
    /// Status as shown to people: `reserved` when held for a booking.
    pub display_status: String,
    pub reservation_id: Option<String>,
}
impl From<&svc::ParkingSpaceView> for ParkingSpace {
    fn from(r: &svc::ParkingSpaceView) -> Self {
        Self {
            space: (&r.space).into(),
            display_status: r.display_status.clone(),
            reservation_id: r.reservation_id.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryDecision {
    pub decision_id: String,
    pub license_plate: String,
    /// `admit`, `duplicate` or `deny`.
    pub verdict: String,
    pub reason: String,
    pub explanation: String,
    pub gate: Option<String>,
    /// `open` or `deny`.
    pub gate_command: String,
    pub session_id: Option<String>,
    pub space: Option<SpaceRef>,
    pub reservation_id: Option<String>,
    pub flags: Vec<FlagRef>,
    /// Money still owed from earlier visits.
    pub outstanding_debts: Vec<Debt>,
    /// Decided from the in-memory cache because the database was down.
    pub offline: bool,
    pub timestamp: DateTime<Utc>,
}
impl From<&svc::EntryOutcome> for EntryDecision {
    fn from(r: &svc::EntryOutcome) -> Self {
        Self {
            decision_id: r.decision_id.clone(),
            license_plate: r.license_plate.clone(),
            verdict: r.verdict.clone(),
            reason: r.reason.clone(),
            explanation: r.explanation.clone(),
            gate: r.gate.clone(),
            gate_command: r.gate_command.clone(),
            session_id: r.session_id.clone(),
            space: r.space.as_ref().map(Into::into),
            reservation_id: r.reservation_id.clone(),
            flags: r.flags.iter().map(Into::into).collect(),
            outstanding_debts: r.outstanding_debts.iter().map(Into::into).collect(),
            offline: r.offline,
            timestamp: r.timestamp,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ExitDecision {
    pub decision_id: String,
    pub license_plate: String,
    /// `open`, `payment_required` or `hold`.
    pub verdict: String,
    pub reason: String,
    pub explanation: String,
    pub gate: Option<String>,
    pub gate_command: String,
    /// `exact`, `fuzzy`, `ambiguous` or `none`.
    pub match_kind: String,
    pub session_id: Option<String>,
    /// The plate of the matched session (differs from the read on a fuzzy match).
    pub matched_plate: Option<String>,
    pub amount_due: i64,
    pub currency: String,
    pub fee: Option<crate::core::Fee>,
    pub debt_id: Option<String>,
    pub refunds: Vec<Payment>,
    pub flags: Vec<FlagRef>,
    pub offline: bool,
    pub timestamp: DateTime<Utc>,
}
impl From<&svc::ExitOutcome> for ExitDecision {
    fn from(r: &svc::ExitOutcome) -> Self {
        Self {
            decision_id: r.decision_id.clone(),
            license_plate: r.license_plate.clone(),
            verdict: r.verdict.clone(),
            reason: r.reason.clone(),
            explanation: r.explanation.clone(),
            gate: r.gate.clone(),
            gate_command: r.gate_command.clone(),
            match_kind: r.match_kind.clone(),
            session_id: r.session_id.clone(),
            matched_plate: r.matched_plate.clone(),
            amount_due: r.amount_due,
            currency: r.currency.clone(),
            fee: r.fee.clone(),
            debt_id: r.debt_id.clone(),
            refunds: r.refunds.iter().map(Into::into).collect(),
            flags: r.flags.iter().map(Into::into).collect(),
            offline: r.offline,
            timestamp: r.timestamp,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FlagRef {
    pub flag_id: String,
    pub kind: String,
    pub detail: String,
}
impl From<&svc::FlagRef> for FlagRef {
    fn from(r: &svc::FlagRef) -> Self {
        Self {
            flag_id: r.flag_id.clone(),
            kind: r.kind.clone(),
            detail: r.detail.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SpaceRef {
    pub space_id: String,
    pub level: String,
    pub zone: String,
    #[serde(rename = "type")]
    pub space_type: String,
}
impl From<&svc::SpaceRef> for SpaceRef {
    fn from(r: &svc::SpaceRef) -> Self {
        Self {
            space_id: r.space_id.clone(),
            level: r.level.clone(),
            zone: r.zone.clone(),
            space_type: r.space_type.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentOutcome {
    pub payment: Payment,
    pub receipt: Option<Receipt>,
    /// True when this answers a retry of an earlier request with the same key.
    pub replayed: bool,
    /// Still owed on the same target after this payment.
    pub remaining_due: i64,
}
impl From<&svc::PaymentOutcome> for PaymentOutcome {
    fn from(r: &svc::PaymentOutcome) -> Self {
        Self {
            payment: (&r.payment).into(),
            receipt: r.receipt.as_ref().map(Into::into),
            replayed: r.replayed,
            remaining_due: r.remaining_due,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReservationOutcome {
    #[serde(flatten)]
    pub reservation: Reservation,
    pub price_lines: Vec<crate::core::FeeLine>,
    pub amount_due: i64,
}
impl From<&svc::ReservationOutcome> for ReservationOutcome {
    fn from(r: &svc::ReservationOutcome) -> Self {
        Self {
            reservation: (&r.reservation).into(),
            price_lines: r.price_lines.clone(),
            amount_due: r.amount_due,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CancelOutcome {
    #[serde(flatten)]
    pub reservation: Reservation,
    pub refund_due: i64,
    pub refunds: Vec<Payment>,
}
impl From<&svc::CancelOutcome> for CancelOutcome {
    fn from(r: &svc::CancelOutcome) -> Self {
        Self {
            reservation: (&r.reservation).into(),
            refund_due: r.refund_due,
            refunds: r.refunds.iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VehicleView {
    pub license_plate: String,
    pub vehicle: Option<Vehicle>,
    pub lists: crate::core::ListMembership,
    pub permits: Vec<crate::core::Permit>,
    pub open_session: Option<Session>,
    pub history: Vec<Session>,
    pub payments: Vec<Payment>,
    pub reservations: Vec<Reservation>,
    pub outstanding_debts: Vec<Debt>,
}
impl From<&svc::VehicleView> for VehicleView {
    fn from(r: &svc::VehicleView) -> Self {
        Self {
            license_plate: r.license_plate.clone(),
            vehicle: r.vehicle.as_ref().map(Into::into),
            lists: r.lists,
            permits: r.permits.clone(),
            open_session: r.open_session.as_ref().map(Into::into),
            history: r.history.iter().map(Into::into).collect(),
            payments: r.payments.iter().map(Into::into).collect(),
            reservations: r.reservations.iter().map(Into::into).collect(),
            outstanding_debts: r.outstanding_debts.iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    #[serde(flatten)]
    pub session: Session,
    pub payments: Vec<Payment>,
    pub gate_decisions: Vec<GateDecision>,
    /// For an open session: what leaving now would cost after payments.
    pub amount_due_now: Option<i64>,
    pub debt: Option<Debt>,
}
impl From<&svc::SessionView> for SessionView {
    fn from(r: &svc::SessionView) -> Self {
        Self {
            session: (&r.session).into(),
            payments: r.payments.iter().map(Into::into).collect(),
            gate_decisions: r.gate_decisions.iter().map(Into::into).collect(),
            amount_due_now: r.amount_due_now,
            debt: r.debt.as_ref().map(Into::into),
        }
    }
}
