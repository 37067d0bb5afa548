//! The pure parking core of lotsense: domain types and business rules.
//!
//! Nothing in here performs I/O, spawns tasks, reads the clock or touches a
//! database. The store/HTTP layers gather a snapshot (plate read, open
//! sessions, spaces, permits, payments, `now`), call a decision function and
//! persist what it returns. That keeps every rule in one place, testable
//! without fixtures, and replayable from the audit log.
//!
//! Conventions: money is integer minor units with a currency ([`Money`]);
//! instants are `DateTime<Utc>`; wall-clock rules use the site's
//! `chrono_tz::Tz`; business outcomes are values, and [`CoreError`] is kept
//! for malformed input and configuration.
//!
//! Main entry points:
//! * [`decide_entry`] — admit / duplicate / deny, bay assignment, flags.
//! * [`match_exit`] then [`decide_exit`] — confusion-aware matching, pricing.
//! * [`fee`] / [`reservation_quote`] — tariff evaluation with itemisation.
//! * [`check_booking`] and [`Reservation`] methods — booking rules.
//! * [`Hysteresis`] — debounced bay occupancy.
//! * [`baywatch::review`] — manual overrides, occupied-without-session and wrong-bay flags.

pub mod assignment;
pub mod baywatch;
pub mod entry;
pub mod error;
pub mod exit;
pub mod flags;
pub mod hysteresis;
pub mod matching;
pub mod money;
pub mod offline;
pub mod payment;
pub mod permit;
pub mod plate;
pub mod policy;
pub mod reservation;
pub mod schedule;
pub mod tariff;
pub mod types;
pub mod variants;

pub use variants::Variants;

pub use assignment::{assign_space, AssignmentStrategy, CompatibilityTable};
pub use entry::{decide_entry, EntryContext, EntryDecision, EntryReason, EntryVerdict};
pub use error::CoreError;
pub use exit::{decide_exit, ExitContext, ExitDecision, ExitReason, ExitVerdict};
pub use flags::{
    Actor, AuditAction, AuditRecord, AuditSubject, FlagKind, FlagStatus, RaisedFlag, SubjectKind,
};
pub use hysteresis::{BayState, Hysteresis, HysteresisConfig};
pub use matching::{match_exit, ExitMatch, MatchCandidate, MatchConfig};
pub use money::{Currency, Money};
pub use offline::{decide_offline_entry, decide_offline_exit};
pub use payment::{
    amount_owed, check_payment_amount, last_charge_at, net_paid, Debt, Payment, PaymentKind,
    PaymentMethod, PaymentRejection, PaymentStatus,
};
pub use permit::{active_permits, Permit, PermitKind};
pub use plate::{
    confusion_cost, edit_count, plate_distance, text_distance, ListMembership, Plate, PlateLists,
    CONFUSIONS,
};
pub use policy::{DuplicateSessionPolicy, SitePolicy, UnmatchedExitPolicy, UnpaidExitPolicy};
pub use reservation::{
    check_booking, conflicting_reservations, BookingRejection, CancellationRule, CheckInStatus,
    EarlyDepartureRule, NoShow, Reservation, ReservationPolicy, ReservationStatus,
    ReservationTarget,
};
pub use schedule::{overlaps, TimeRange, WeeklyWindow};
pub use tariff::{
    fee, reservation_quote, Fee, FeeLine, FeeLineKind, Tariff, TariffBand, TariffTable,
};
pub use types::{
    LotId, OpenSession, PaymentId, PermitId, ReservationId, SessionId, Space, SpaceId, SpaceStatus,
    SpaceType, VehicleType,
};
