//! Wire forms of the store's rows.

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<serde_json::Value>,
}
impl From<&st::AuditRow> for AuditRecord {
    fn from(r: &st::AuditRow) -> Self {
        Self {
            id: r.id,
            at: r.at.clone(),
            actor: r.actor.clone(),
            action: r.action.clone(),
            subject: r.subject.clone(),
            reason: r.reason.clone(),
            detail: r.detail.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GateDecision {
    pub decision_id: String,
    pub gate: Option<String>,
    pub direction: String,
    pub license_plate: String,
    pub session_id: Option<String>,
    pub command: String,
    pub verdict: String,
    pub reason: String,
    pub explanation: String,
    pub amount: Option<i64>,
    pub read_id: Option<String>,
    pub source: String,
    pub decided_at: DateTime<Utc>,
    pub ack_state: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
    pub attempts: i64,
}
impl From<&st::GateDecisionRow> for GateDecision {
    fn from(r: &st::GateDecisionRow) -> Self {
        Self {
            decision_id: r.decision_id.clone(),
            gate: r.gate.clone(),
            direction: r.direction.clone(),
            license_plate: r.license_plate.clone(),
            session_id: r.session_id.clone(),
            command: r.command.clone(),
            verdict: r.verdict.clone(),
            reason: r.reason.clone(),
            explanation: r.explanation.clone(),
            amount: r.amount,
            read_id: r.read_id.clone(),
            source: r.source.clone(),
            decided_at: r.decided_at,
            ack_state: r.ack_state.clone(),
            acked_at: r.acked_at,
            attempts: r.attempts,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Flag {
    pub flag_id: String,
    pub kind: String,
    pub license_plate: Option<String>,
    pub session_id: Option<String>,
    pub gate: Option<String>,
    pub detail: String,
    pub evidence: Option<serde_json::Value>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<String>,
    pub note: Option<String>,
}
impl From<&st::FlagRow> for Flag {
    fn from(r: &st::FlagRow) -> Self {
        Self {
            flag_id: r.flag_id.clone(),
            kind: r.kind.clone(),
            license_plate: r.license_plate.clone(),
            session_id: r.session_id.clone(),
            gate: r.gate.clone(),
            detail: r.detail.clone(),
            evidence: r.evidence.clone(),
            status: r.status.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            updated_by: r.updated_by.clone(),
            note: r.note.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Payment {
    pub payment_id: String,
    pub idempotency_key: String,
    pub kind: String,
    pub session_id: Option<String>,
    pub reservation_id: Option<String>,
    pub license_plate: Option<String>,
    /// `parking`, `reservation`, `lost_ticket`, `debt`, `refund`.
    pub purpose: String,
    /// For a refund: the charge it refunds.
    pub parent_id: Option<String>,
    pub payment_method: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub reason: Option<String>,
    pub failure: Option<String>,
    pub gateway_ref: Option<String>,
    pub actor: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}
impl From<&st::PaymentRow> for Payment {
    fn from(r: &st::PaymentRow) -> Self {
        Self {
            payment_id: r.payment_id.clone(),
            idempotency_key: r.idempotency_key.clone(),
            kind: r.kind.clone(),
            session_id: r.session_id.clone(),
            reservation_id: r.reservation_id.clone(),
            license_plate: r.license_plate.clone(),
            purpose: r.purpose.clone(),
            parent_id: r.parent_id.clone(),
            payment_method: r.payment_method.clone(),
            status: r.status.clone(),
            amount: r.amount,
            currency: r.currency.clone(),
            reason: r.reason.clone(),
            failure: r.failure.clone(),
            gateway_ref: r.gateway_ref.clone(),
            actor: r.actor.clone(),
            created_at: r.created_at,
            completed_at: r.completed_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    pub receipt_id: String,
    pub number: String,
    pub payment_id: String,
    pub body: serde_json::Value,
    pub created_at: DateTime<Utc>,
}
impl From<&st::ReceiptRow> for Receipt {
    fn from(r: &st::ReceiptRow) -> Self {
        Self {
            receipt_id: r.receipt_id.clone(),
            number: r.number.clone(),
            payment_id: r.payment_id.clone(),
            body: r.body.clone(),
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Debt {
    pub debt_id: String,
    pub license_plate: String,
    pub session_id: Option<String>,
    pub reservation_id: Option<String>,
    /// `unpaid_exit` or `no_show`.
    pub kind: String,
    pub amount: i64,
    pub currency: String,
    pub incurred_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}
impl From<&st::DebtRow> for Debt {
    fn from(r: &st::DebtRow) -> Self {
        Self {
            debt_id: r.debt_id.clone(),
            license_plate: r.license_plate.clone(),
            session_id: r.session_id.clone(),
            reservation_id: r.reservation_id.clone(),
            kind: r.kind.clone(),
            amount: r.amount,
            currency: r.currency.clone(),
            incurred_at: r.incurred_at,
            settled_at: r.settled_at,
        }
    }
}

/// A stored permit with its provenance, as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Permit {
    #[serde(flatten)]
    pub permit: core::Permit,
    /// `config` (seeded from the site file) or `api` (issued at run time).
    pub source: String,
    pub updated_at: DateTime<Utc>,
}
impl From<&st::PermitRow> for Permit {
    fn from(r: &st::PermitRow) -> Self {
        Self {
            permit: r.permit.clone(),
            source: r.source.clone(),
            updated_at: r.updated_at,
        }
    }
}

/// A block-, watch- or allow-list entry, as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ListEntry {
    pub license_plate: String,
    /// `blocked`, `watched` or `allowed`.
    pub list: String,
    pub reason: Option<String>,
    /// `config` (seeded from the site file) or `api` (added at run time).
    pub source: String,
    pub added_at: DateTime<Utc>,
}
impl From<&st::ListEntryRow> for ListEntry {
    fn from(r: &st::ListEntryRow) -> Self {
        Self {
            license_plate: r.license_plate.clone(),
            list: r.list.clone(),
            reason: r.reason.clone(),
            source: r.source.clone(),
            added_at: r.added_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Reservation {
    pub reservation_id: String,
    pub license_plate: String,
    pub space_id: String,
    pub space_type: String,
    /// What was asked for: `space` or `type`.
    pub requested: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub status: String,
    pub price: i64,
    pub currency: String,
    pub session_id: Option<String>,
    pub created_at: DateTime<Utc>,
}
impl From<&st::ReservationRow> for Reservation {
    fn from(r: &st::ReservationRow) -> Self {
        Self {
            reservation_id: r.reservation_id.clone(),
            license_plate: r.license_plate.clone(),
            space_id: r.space_id.clone(),
            space_type: r.space_type.clone(),
            requested: r.requested.clone(),
            start_time: r.start_time,
            end_time: r.end_time,
            status: r.status.clone(),
            price: r.price,
            currency: r.currency.clone(),
            session_id: r.session_id.clone(),
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub session_id: String,
    pub license_plate: String,
    pub vehicle_type: String,
    pub status: String,
    pub entry_time: DateTime<Utc>,
    pub exit_time: Option<DateTime<Utc>>,
    pub entry_gate: Option<String>,
    pub exit_gate: Option<String>,
    pub entry_read_id: Option<String>,
    pub exit_read_id: Option<String>,
    pub space_id: Option<String>,
    pub space_type: Option<String>,
    pub reservation_id: Option<String>,
    pub entry_reason: String,
    pub exit_reason: Option<String>,
    /// Fee of the stay in minor units, set when the session closes.
    pub fee: Option<i64>,
    pub currency: String,
    pub evidence: Option<serde_json::Value>,
}
impl From<&st::SessionRow> for Session {
    fn from(r: &st::SessionRow) -> Self {
        Self {
            session_id: r.session_id.clone(),
            license_plate: r.license_plate.clone(),
            vehicle_type: r.vehicle_type.clone(),
            status: r.status.clone(),
            entry_time: r.entry_time,
            exit_time: r.exit_time,
            entry_gate: r.entry_gate.clone(),
            exit_gate: r.exit_gate.clone(),
            entry_read_id: r.entry_read_id.clone(),
            exit_read_id: r.exit_read_id.clone(),
            space_id: r.space_id.clone(),
            space_type: r.space_type.clone(),
            reservation_id: r.reservation_id.clone(),
            entry_reason: r.entry_reason.clone(),
            exit_reason: r.exit_reason.clone(),
            fee: r.fee,
            currency: r.currency.clone(),
            evidence: r.evidence.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Space {
    pub space_id: String,
    pub level: String,
    pub zone: String,
    #[serde(rename = "type")]
    pub space_type: String,
    pub rank: i64,
    /// Stored allocation status: available | occupied | out_of_service.
    pub status: String,
    pub session_id: Option<String>,
    /// What a sensor or camera last said (free | occupied | unknown), and since when.
    pub sensor_state: String,
    pub sensor_since: Option<DateTime<Utc>>,
    /// A staff override of the occupancy state (free | occupied) that wins
    /// over sensors and cameras until cleared; who set it.
    pub override_state: Option<String>,
    pub override_by: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// `sensor_since` of the occupancy episode already flagged.
    #[serde(skip)]
    pub flagged_episode: Option<DateTime<Utc>>,
}
impl From<&st::SpaceRow> for Space {
    fn from(r: &st::SpaceRow) -> Self {
        Self {
            space_id: r.space_id.clone(),
            level: r.level.clone(),
            zone: r.zone.clone(),
            space_type: r.space_type.clone(),
            rank: r.rank,
            status: r.status.clone(),
            session_id: r.session_id.clone(),
            sensor_state: r.sensor_state.clone(),
            sensor_since: r.sensor_since,
            override_state: r.override_state.clone(),
            override_by: r.override_by.clone(),
            updated_at: r.updated_at,
            flagged_episode: r.flagged_episode,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Vehicle {
    pub license_plate: String,
    pub vehicle_type: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}
impl From<&st::VehicleRow> for Vehicle {
    fn from(r: &st::VehicleRow) -> Self {
        Self {
            license_plate: r.license_plate.clone(),
            vehicle_type: r.vehicle_type.clone(),
            first_seen: r.first_seen,
            last_seen: r.last_seen,
        }
    }
}
