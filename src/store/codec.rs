//! Values between the database and the domain: instants as epoch
//! milliseconds, ids, and the enums stored as text.

use crate::core::Currency;
use crate::core::{PaymentMethod, ReservationStatus, SpaceType, VehicleType};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

/// Epoch milliseconds of an instant.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The instant of epoch milliseconds.
pub fn at_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

pub(super) fn opt_at(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.map(at_ms)
}

/// A new random id (UUID v4, simple form).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

// ---------------------------------------------------------------- enums ↔ text

pub fn space_type_from(s: &str) -> SpaceType {
    SpaceType::ALL
        .into_iter()
        .find(|t| t.as_str() == s)
        .unwrap_or(SpaceType::Compact)
}

pub fn vehicle_type_from(s: &str) -> VehicleType {
    use VehicleType::*;
    [Car, Motorcycle, Van, Ev, Truck, Unknown]
        .into_iter()
        .find(|t| t.as_str() == s)
        .unwrap_or(Unknown)
}

pub fn reservation_status_str(s: ReservationStatus) -> &'static str {
    match s {
        ReservationStatus::Booked => "booked",
        ReservationStatus::CheckedIn => "checked_in",
        ReservationStatus::Completed => "completed",
        ReservationStatus::Cancelled => "cancelled",
        ReservationStatus::NoShow => "no_show",
    }
}

pub(super) fn reservation_status_from(s: &str) -> ReservationStatus {
    match s {
        "checked_in" => ReservationStatus::CheckedIn,
        "completed" => ReservationStatus::Completed,
        "cancelled" => ReservationStatus::Cancelled,
        "no_show" => ReservationStatus::NoShow,
        _ => ReservationStatus::Booked,
    }
}

pub fn method_str(m: PaymentMethod) -> &'static str {
    match m {
        PaymentMethod::Card => "card",
        PaymentMethod::Mobile => "mobile",
        PaymentMethod::Cash => "cash",
    }
}

pub fn method_from(s: &str) -> Option<PaymentMethod> {
    match s {
        "card" => Some(PaymentMethod::Card),
        "mobile" => Some(PaymentMethod::Mobile),
        "cash" => Some(PaymentMethod::Cash),
        _ => None,
    }
}

/// snake_case name of any serde enum (`FlagKind::WatchListHit` → `watch_list_hit`).
pub fn enum_str<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

pub(super) fn currency_of(s: &str) -> Currency {
    Currency::new(s).unwrap_or(Currency::EUR)
}
