//! The single error type of the parking core.
//!
//! Business *outcomes* (deny entry, payment required, ambiguous match, ...) are
//! never errors: they are values in the decision types. `CoreError` is reserved
//! for inputs the core cannot reason about at all — malformed plates, broken
//! configuration, mixed currencies, arithmetic overflow — so that the store and
//! HTTP layers can map it to a 4xx/5xx without inspecting business state.

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::core::flags::FlagStatus;
use crate::core::money::Currency;
use crate::core::reservation::ReservationStatus;
use crate::core::types::{ReservationId, SessionId};

/// Everything that can go wrong inside the parking core.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CoreError {
    /// A plate string that does not normalise to 1..=12 characters of `A–Z0–9`.
    #[error("invalid plate {input:?}: {reason}")]
    InvalidPlate { input: String, reason: &'static str },

    /// A currency code that is not three ASCII letters.
    #[error("invalid currency code {0:?}: expected three ASCII letters")]
    InvalidCurrency(String),

    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {left} vs {right}")]
    CurrencyMismatch { left: Currency, right: Currency },

    /// An amount left the `i64` range (only possible with absurd tariffs).
    #[error("amount overflow")]
    Overflow,

    /// A negative amount where only non-negative ones make sense (a payment, a price).
    #[error("negative amount {0} where a non-negative one is required")]
    NegativeAmount(i64),

    /// A half-open time range whose end is not after its start.
    #[error("invalid time range: end {end} is not after start {start}")]
    InvalidTimeRange {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },

    /// A tariff that cannot be evaluated (zero interval, negative price, ...).
    #[error("invalid tariff: {0}")]
    InvalidTariff(String),

    /// Any other inconsistent configuration (thresholds, windows, ...).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// A flag status change that the workflow does not allow.
    #[error("flag cannot move from {from:?} to {to:?}")]
    InvalidFlagTransition { from: FlagStatus, to: FlagStatus },

    /// A sensor probability outside `[0, 1]` (or NaN).
    #[error("probability {0} is outside [0, 1]")]
    InvalidProbability(f64),

    /// A reservation operation that its current status does not allow.
    #[error("reservation {id} cannot be {action} while {status:?}")]
    InvalidReservationState {
        id: ReservationId,
        status: ReservationStatus,
        action: &'static str,
    },

    /// The exit match names a session but the caller did not pass it in.
    #[error("exit match refers to session {0} which was not supplied")]
    MissingSession(SessionId),
}
