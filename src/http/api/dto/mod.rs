//! The API's wire types: what a response body says, kept apart from the
//! store's rows and the services' outcomes so that a column or a field
//! added inside lotsense is not published by accident, and the JSON a
//! client sees changes only here. Each is built from its row or outcome
//! (`From`), field by field; the OpenAPI document (`openapi.rs`) describes
//! these shapes.

use crate::core;
use crate::service as svc;
use crate::store as st;
use chrono::{DateTime, Utc};
use serde::Serialize;

mod outcomes;
mod rows;

pub use outcomes::*;
pub use rows::*;

/// A row or outcome's wire form.
pub trait ToWire {
    type Wire: Serialize;
    fn wire(&self) -> Self::Wire;
}

impl<T: ToWire> ToWire for Vec<T> {
    type Wire = Vec<T::Wire>;
    fn wire(&self) -> Self::Wire {
        self.iter().map(ToWire::wire).collect()
    }
}

impl<T: ToWire> ToWire for Option<T> {
    type Wire = Option<T::Wire>;
    fn wire(&self) -> Self::Wire {
        self.as_ref().map(ToWire::wire)
    }
}

impl ToWire for st::AuditRow {
    type Wire = AuditRecord;
    fn wire(&self) -> AuditRecord {
        self.into()
    }
}

impl ToWire for st::GateDecisionRow {
    type Wire = GateDecision;
    fn wire(&self) -> GateDecision {
        self.into()
    }
}

impl ToWire for st::FlagRow {
    type Wire = Flag;
    fn wire(&self) -> Flag {
        self.into()
    }
}

impl ToWire for st::PaymentRow {
    type Wire = Payment;
    fn wire(&self) -> Payment {
        self.into()
    }
}

impl ToWire for st::ReceiptRow {
    type Wire = Receipt;
    fn wire(&self) -> Receipt {
        self.into()
    }
}

impl ToWire for st::DebtRow {
    type Wire = Debt;
    fn wire(&self) -> Debt {
        self.into()
    }
}

impl ToWire for st::PermitRow {
    type Wire = Permit;
    fn wire(&self) -> Permit {
        self.into()
    }
}

impl ToWire for st::ListEntryRow {
    type Wire = ListEntry;
    fn wire(&self) -> ListEntry {
        self.into()
    }
}

impl ToWire for st::ReservationRow {
    type Wire = Reservation;
    fn wire(&self) -> Reservation {
        self.into()
    }
}

impl ToWire for st::SessionRow {
    type Wire = Session;
    fn wire(&self) -> Session {
        self.into()
    }
}

impl ToWire for st::SpaceRow {
    type Wire = Space;
    fn wire(&self) -> Space {
        self.into()
    }
}

impl ToWire for st::VehicleRow {
    type Wire = Vehicle;
    fn wire(&self) -> Vehicle {
        self.into()
    }
}

impl ToWire for svc::TypeAvailability {
    type Wire = TypeAvailability;
    fn wire(&self) -> TypeAvailability {
        self.into()
    }
}

impl ToWire for svc::ParkingSpaceView {
    type Wire = ParkingSpace;
    fn wire(&self) -> ParkingSpace {
        self.into()
    }
}

impl ToWire for svc::EntryOutcome {
    type Wire = EntryDecision;
    fn wire(&self) -> EntryDecision {
        self.into()
    }
}

impl ToWire for svc::ExitOutcome {
    type Wire = ExitDecision;
    fn wire(&self) -> ExitDecision {
        self.into()
    }
}

impl ToWire for svc::FlagRef {
    type Wire = FlagRef;
    fn wire(&self) -> FlagRef {
        self.into()
    }
}

impl ToWire for svc::SpaceRef {
    type Wire = SpaceRef;
    fn wire(&self) -> SpaceRef {
        self.into()
    }
}

impl ToWire for svc::PaymentOutcome {
    type Wire = PaymentOutcome;
    fn wire(&self) -> PaymentOutcome {
        self.into()
    }
}

impl ToWire for svc::ReservationOutcome {
    type Wire = ReservationOutcome;
    fn wire(&self) -> ReservationOutcome {
        self.into()
    }
}

impl ToWire for svc::CancelOutcome {
    type Wire = CancelOutcome;
    fn wire(&self) -> CancelOutcome {
        self.into()
    }
}

impl ToWire for svc::VehicleView {
    type Wire = VehicleView;
    fn wire(&self) -> VehicleView {
        self.into()
    }
}

impl ToWire for svc::SessionView {
    type Wire = SessionView;
    fn wire(&self) -> SessionView {
        self.into()
    }
}

/// A camera read's decision, as the entry or exit decision it was.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ReadDecision {
    Entry(EntryDecision),
    Exit(ExitDecision),
}

impl ToWire for svc::ReadOutcome {
    type Wire = ReadDecision;
    fn wire(&self) -> ReadDecision {
        match self {
            svc::ReadOutcome::Entry(e) => ReadDecision::Entry(e.into()),
            svc::ReadOutcome::Exit(x) => ReadDecision::Exit(x.into()),
        }
    }
}
