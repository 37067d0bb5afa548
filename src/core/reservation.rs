//! Reservations: booking checks, check-in window, refunds and no-shows.
//!
//! These functions *decide*; the database still enforces uniqueness (e.g. an
//! exclusion constraint on a bay's booked ranges) because two concurrent
//! bookings can both pass a check made on the same snapshot.
//!
//! # Rules (documented decisions)
//!
//! * Windows are half-open `[start, end)`: back-to-back bookings don't clash.
//! * **Check-in window**: `[start − early_check_in, start + no_show_grace)`.
//!   Earlier arrivals are turned away (`reservation_not_yet_valid`); once
//!   checked in, the driver may leave and re-enter until `end`.
//! * **No-show**: still `booked` at `start + no_show_grace` → the space is
//!   released, the price is kept and the tariff's `no_show_fee` is charged on
//!   top (set it to 0 for prepaid-only sites).
//! * **Cancellation**: full refund up to `full_refund_minutes_before` the
//!   start; after that and before start, the price minus `late_cancel_fee`;
//!   from the start on, nothing (the booking is in use or becoming a no-show).
//! * **Early departure**: configurable — `no_refund`, or
//!   `unused_whole_hours`: each whole unused hour refunds a pro-rata share of
//!   the price (price ÷ started reserved hours, rounded down), minus a fee,
//!   never below zero.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::core::error::CoreError;
use crate::core::money::Money;
use crate::core::plate::Plate;
use crate::core::schedule::TimeRange;
use crate::core::tariff::Tariff;
use crate::core::types::{ReservationId, Space, SpaceId, SpaceStatus, SpaceType};

/// What is reserved: one particular bay, or any bay of a type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationTarget {
    Space(SpaceId),
    SpaceType(SpaceType),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Booked,
    CheckedIn,
    Completed,
    Cancelled,
    NoShow,
}

impl ReservationStatus {
    /// Whether the reservation still holds capacity.
    pub fn holds_capacity(self) -> bool {
        matches!(
            self,
            ReservationStatus::Booked | ReservationStatus::CheckedIn
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: ReservationId,
    pub plate: Plate,
    pub target: ReservationTarget,
    pub window: TimeRange,
    /// What the customer paid (or will pay) for the booking.
    pub price: Money,
    pub status: ReservationStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationRule {
    pub full_refund_minutes_before: u32,
    /// Minor units of the reservation's currency.
    pub late_cancel_fee: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum EarlyDepartureRule {
    NoRefund,
    /// Whole unused hours refunded pro rata, minus `fee` (minor units).
    UnusedWholeHours {
        fee: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationPolicy {
    pub early_check_in_minutes: u32,
    pub no_show_grace_minutes: u32,
    pub cancellation: CancellationRule,
    pub early_departure: EarlyDepartureRule,
}

impl Default for ReservationPolicy {
    /// 15 min early check-in, 30 min no-show grace, free cancellation up to
    /// 60 min before start, no early-departure refund.
    fn default() -> Self {
        ReservationPolicy {
            early_check_in_minutes: 15,
            no_show_grace_minutes: 30,
            cancellation: CancellationRule {
                full_refund_minutes_before: 60,
                late_cancel_fee: 0,
            },
            early_departure: EarlyDepartureRule::NoRefund,
        }
    }
}

/// Whether a reservation can be used to enter right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CheckInStatus {
    TooEarly {
        opens_at: DateTime<Utc>,
    },
    Open,
    /// Past its window, released as a no-show, cancelled or completed.
    Expired,
}

/// A no-show to apply: release the bay (if a specific one was held) and charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoShow {
    pub reservation: ReservationId,
    pub release_space: Option<SpaceId>,
    pub fee: Money,
}

/// Why a booking request cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum BookingRejection {
    UnknownSpace,
    SpaceOutOfService,
    /// The bay is already reserved in an overlapping window.
    SpaceTaken {
        by: Vec<ReservationId>,
    },
    /// Every bay of the type is reserved at some instant of the window.
    NoCapacity,
}

impl Reservation {
    pub fn check_in_window(&self, policy: &ReservationPolicy) -> (DateTime<Utc>, DateTime<Utc>) {
        let opens = self.window.start - Duration::minutes(policy.early_check_in_minutes.into());
        let closes = (self.window.start + Duration::minutes(policy.no_show_grace_minutes.into()))
            .min(self.window.end);
        (opens, closes)
    }

    pub fn check_in_status(&self, policy: &ReservationPolicy, now: DateTime<Utc>) -> CheckInStatus {
        match self.status {
            ReservationStatus::Booked => {
                let (opens, closes) = self.check_in_window(policy);
                if now < opens {
                    CheckInStatus::TooEarly { opens_at: opens }
                } else if now < closes {
                    CheckInStatus::Open
                } else {
                    CheckInStatus::Expired
                }
            }
            // In-and-out privileges until the end of the booking.
            ReservationStatus::CheckedIn if now < self.window.end => CheckInStatus::Open,
            _ => CheckInStatus::Expired,
        }
    }

    /// `Some` once a still-booked reservation is past its no-show grace.
    pub fn no_show(
        &self,
        policy: &ReservationPolicy,
        tariff: &Tariff,
        now: DateTime<Utc>,
    ) -> Option<NoShow> {
        let grace = Duration::minutes(policy.no_show_grace_minutes.into());
        (self.status == ReservationStatus::Booked && now >= self.window.start + grace).then(|| {
            NoShow {
                reservation: self.id.clone(),
                release_space: match &self.target {
                    ReservationTarget::Space(id) => Some(id.clone()),
                    ReservationTarget::SpaceType(_) => None,
                },
                fee: tariff.no_show(),
            }
        })
    }

    /// Whether the booking has been paid in full. Only a paid booking covers
    /// its window at exit; an unpaid one is priced like a walk-in stay.
    pub fn is_paid(&self, payments: &[crate::core::payment::Payment]) -> Result<bool, CoreError> {
        let paid = crate::core::payment::net_paid(payments, self.price.currency)?;
        Ok(paid.amount_minor >= self.price.amount_minor)
    }

    /// Refund due if the booking is cancelled at `now`. Only `booked`
    /// reservations can be cancelled.
    pub fn cancellation_refund(
        &self,
        policy: &ReservationPolicy,
        now: DateTime<Utc>,
    ) -> Result<Money, CoreError> {
        if self.status != ReservationStatus::Booked {
            return Err(CoreError::InvalidReservationState {
                id: self.id.clone(),
                status: self.status,
                action: "cancelled",
            });
        }
        let rule = policy.cancellation;
        let free_until =
            self.window.start - Duration::minutes(rule.full_refund_minutes_before.into());
        let refund = if now <= free_until {
            self.price
        } else if now < self.window.start {
            self.price
                .checked_sub(Money::new(rule.late_cancel_fee, self.price.currency))?
                .clamp_non_negative()
        } else {
            Money::zero(self.price.currency)
        };
        Ok(refund)
    }

    /// Refund due when a checked-in vehicle leaves at `departed_at` before the
    /// booking ends.
    pub fn early_departure_refund(
        &self,
        policy: &ReservationPolicy,
        departed_at: DateTime<Utc>,
    ) -> Result<Money, CoreError> {
        let currency = self.price.currency;
        let EarlyDepartureRule::UnusedWholeHours { fee } = policy.early_departure else {
            return Ok(Money::zero(currency));
        };
        if departed_at >= self.window.end {
            return Ok(Money::zero(currency));
        }
        let hour = 3600;
        let reserved_secs = self.window.duration().num_seconds();
        let started_hours = (reserved_secs + hour - 1) / hour;
        let unused_hours =
            (self.window.end - departed_at.max(self.window.start)).num_seconds() / hour;
        let per_hour = self.price.amount_minor / started_hours.max(1);
        let gross = per_hour
            .checked_mul(unused_hours)
            .ok_or(CoreError::Overflow)?;
        let refund = (gross - fee).clamp(0, self.price.amount_minor.max(0));
        Ok(Money::new(refund, currency))
    }
}

/// Active reservations of the same bay whose windows overlap `window`.
pub fn conflicting_reservations<'a>(
    space: &SpaceId,
    window: &TimeRange,
    existing: &'a [Reservation],
) -> Vec<&'a Reservation> {
    existing
        .iter()
        .filter(|r| r.status.holds_capacity())
        .filter(|r| matches!(&r.target, ReservationTarget::Space(id) if id == space))
        .filter(|r| r.window.overlaps(window))
        .collect()
}

/// Peak number of simultaneous reservations among `ranges` inside `window`.
fn peak_concurrency(window: &TimeRange, ranges: &[TimeRange]) -> usize {
    // +1 at start, −1 at end; at equal instants ends sort first (half-open).
    let mut events: Vec<(DateTime<Utc>, i32)> = ranges
        .iter()
        .filter(|r| r.overlaps(window))
        .flat_map(|r| [(r.start.max(window.start), 1), (r.end.min(window.end), -1)])
        .collect();
    events.sort();
    let mut current: i32 = 0;
    let mut peak: i32 = 0;
    for (_, delta) in events {
        current += delta;
        peak = peak.max(current);
    }
    peak as usize
}

/// Whether a new booking of `target` over `window` fits, given the bays and
/// the existing reservations.
///
/// A type booking needs a free bay of that type at every instant; a bay
/// booking needs the bay itself free *and* leaves type capacity intact, so
/// type bookings already accepted can still be honoured.
pub fn check_booking(
    target: &ReservationTarget,
    window: &TimeRange,
    spaces: &[Space],
    existing: &[Reservation],
) -> Result<(), BookingRejection> {
    let space_type = match target {
        ReservationTarget::Space(id) => {
            let space = spaces
                .iter()
                .find(|s| &s.id == id)
                .ok_or(BookingRejection::UnknownSpace)?;
            if space.status == SpaceStatus::OutOfService {
                return Err(BookingRejection::SpaceOutOfService);
            }
            let taken = conflicting_reservations(id, window, existing);
            if !taken.is_empty() {
                return Err(BookingRejection::SpaceTaken {
                    by: taken.iter().map(|r| r.id.clone()).collect(),
                });
            }
            space.space_type
        }
        ReservationTarget::SpaceType(t) => *t,
    };
    let type_of = |id: &SpaceId| spaces.iter().find(|s| &s.id == id).map(|s| s.space_type);
    let capacity = spaces
        .iter()
        .filter(|s| s.space_type == space_type && s.status != SpaceStatus::OutOfService)
        .count();
    let same_type: Vec<TimeRange> = existing
        .iter()
        .filter(|r| r.status.holds_capacity())
        .filter(|r| match &r.target {
            ReservationTarget::SpaceType(t) => *t == space_type,
            ReservationTarget::Space(id) => type_of(id) == Some(space_type),
        })
        .map(|r| r.window)
        .collect();
    if peak_concurrency(window, &same_type) < capacity {
        Ok(())
    } else {
        Err(BookingRejection::NoCapacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::money::Currency;
    use chrono::TimeZone;
    use chrono_tz::Europe::London;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 3, h, m, 0).unwrap()
    }

    fn range(a: u32, b: u32) -> TimeRange {
        TimeRange::new(at(a, 0), at(b, 0)).unwrap()
    }

    fn space(id: &str, t: SpaceType) -> Space {
        Space {
            id: SpaceId::new(id),
            level: "P1".into(),
            zone: "R".into(),
            space_type: t,
            rank: 1,
            status: SpaceStatus::Available,
        }
    }

    pub(crate) fn reservation(
        id: &str,
        target: ReservationTarget,
        window: TimeRange,
    ) -> Reservation {
        Reservation {
            id: ReservationId::new(id),
            plate: Plate::parse("R1").unwrap(),
            target,
            window,
            price: Money::new(1000, Currency::EUR),
            status: ReservationStatus::Booked,
        }
    }

    #[test]
    fn paid_only_when_net_payments_cover_the_price() {
        use crate::core::payment::{Payment, PaymentKind, PaymentMethod, PaymentStatus};
        use crate::core::types::PaymentId;
        let r = reservation(
            "r",
            ReservationTarget::SpaceType(SpaceType::Compact),
            range(10, 12),
        );
        let pay = |kind, amount| Payment {
            id: PaymentId::new("p"),
            kind,
            method: PaymentMethod::Card,
            status: PaymentStatus::Succeeded,
            amount: Money::new(amount, Currency::EUR),
            at: at(9, 0),
        };
        assert!(!r.is_paid(&[]).unwrap());
        assert!(!r.is_paid(&[pay(PaymentKind::Charge, 999)]).unwrap());
        assert!(r.is_paid(&[pay(PaymentKind::Charge, 1000)]).unwrap());
        assert!(!r
            .is_paid(&[pay(PaymentKind::Charge, 1000), pay(PaymentKind::Refund, 1)])
            .unwrap());
    }

    #[test]
    fn check_in_window_and_reentry() {
        let policy = ReservationPolicy::default();
        let mut r = reservation(
            "r",
            ReservationTarget::SpaceType(SpaceType::Compact),
            range(10, 12),
        );
        assert_eq!(
            r.check_in_status(&policy, at(9, 44)),
            CheckInStatus::TooEarly {
                opens_at: at(9, 45)
            }
        );
        assert_eq!(r.check_in_status(&policy, at(9, 45)), CheckInStatus::Open);
        assert_eq!(r.check_in_status(&policy, at(10, 29)), CheckInStatus::Open);
        assert_eq!(
            r.check_in_status(&policy, at(10, 30)),
            CheckInStatus::Expired
        );
        r.status = ReservationStatus::CheckedIn;
        assert_eq!(r.check_in_status(&policy, at(11, 59)), CheckInStatus::Open);
        assert_eq!(
            r.check_in_status(&policy, at(12, 0)),
            CheckInStatus::Expired
        );
        r.status = ReservationStatus::Cancelled;
        assert_eq!(
            r.check_in_status(&policy, at(10, 0)),
            CheckInStatus::Expired
        );
    }

    #[test]
    fn no_show_releases_and_charges() {
        let policy = ReservationPolicy::default();
        let mut tariff = Tariff::simple("t", Currency::EUR, London, 60, 100);
        tariff.no_show_fee = 500;
        let r = reservation(
            "r",
            ReservationTarget::Space(SpaceId::new("A1")),
            range(10, 12),
        );
        assert!(r.no_show(&policy, &tariff, at(10, 29)).is_none());
        let ns = r.no_show(&policy, &tariff, at(10, 30)).unwrap();
        assert_eq!(ns.release_space, Some(SpaceId::new("A1")));
        assert_eq!(ns.fee.amount_minor, 500);
        let mut checked_in = r.clone();
        checked_in.status = ReservationStatus::CheckedIn;
        assert!(checked_in.no_show(&policy, &tariff, at(11, 0)).is_none());
    }

    #[test]
    fn cancellation_refunds() {
        let mut policy = ReservationPolicy::default();
        policy.cancellation.late_cancel_fee = 300;
        let r = reservation(
            "r",
            ReservationTarget::SpaceType(SpaceType::Compact),
            range(10, 12),
        );
        let refund = |t| r.cancellation_refund(&policy, t).unwrap().amount_minor;
        assert_eq!(refund(at(9, 0)), 1000);
        assert_eq!(refund(at(9, 1)), 700);
        assert_eq!(refund(at(10, 0)), 0);
        let mut done = r.clone();
        done.status = ReservationStatus::Completed;
        assert!(done.cancellation_refund(&policy, at(8, 0)).is_err());
    }

    #[test]
    fn early_departure_refunds() {
        let mut policy = ReservationPolicy::default();
        let r = reservation(
            "r",
            ReservationTarget::SpaceType(SpaceType::Compact),
            range(10, 14),
        );
        assert!(r
            .early_departure_refund(&policy, at(11, 0))
            .unwrap()
            .is_zero());
        policy.early_departure = EarlyDepartureRule::UnusedWholeHours { fee: 50 };
        // 4 h for 1000 → 250 per hour; leaving 11:30 leaves 2 whole hours unused.
        let refund = |t| r.early_departure_refund(&policy, t).unwrap().amount_minor;
        assert_eq!(refund(at(11, 30)), 450);
        assert_eq!(refund(at(13, 30)), 0);
        assert_eq!(refund(at(14, 0)), 0);
        // Leaving before the start counts from the start: all 4 hours unused.
        assert_eq!(refund(at(9, 50)), 950);
    }

    #[test]
    fn bay_bookings_conflict_on_overlap_only() {
        let spaces = [
            space("A1", SpaceType::Compact),
            space("A2", SpaceType::Compact),
        ];
        let existing = [reservation(
            "r1",
            ReservationTarget::Space(SpaceId::new("A1")),
            range(10, 12),
        )];
        let a1 = ReservationTarget::Space(SpaceId::new("A1"));
        assert_eq!(
            check_booking(&a1, &range(11, 13), &spaces, &existing),
            Err(BookingRejection::SpaceTaken {
                by: vec![ReservationId::new("r1")]
            })
        );
        assert_eq!(
            check_booking(&a1, &range(12, 13), &spaces, &existing),
            Ok(())
        );
        let unknown = ReservationTarget::Space(SpaceId::new("Z9"));
        assert_eq!(
            check_booking(&unknown, &range(12, 13), &spaces, &existing),
            Err(BookingRejection::UnknownSpace)
        );
    }

    #[test]
    fn type_capacity_uses_peak_overlap() {
        let spaces = [
            space("A1", SpaceType::Compact),
            space("A2", SpaceType::Compact),
            space("L1", SpaceType::Large),
        ];
        let compact = ReservationTarget::SpaceType(SpaceType::Compact);
        // Two bookings that never overlap each other use one bay at a time.
        let existing = [
            reservation("r1", compact.clone(), range(10, 11)),
            reservation("r2", compact.clone(), range(11, 12)),
        ];
        assert_eq!(
            check_booking(&compact, &range(10, 12), &spaces, &existing),
            Ok(())
        );
        // A bay booking of A2 over the same hour fills the type.
        let mut full = existing.to_vec();
        full.push(reservation(
            "r3",
            ReservationTarget::Space(SpaceId::new("A2")),
            range(10, 12),
        ));
        assert_eq!(
            check_booking(&compact, &range(10, 12), &spaces, &full),
            Err(BookingRejection::NoCapacity)
        );
        // A specific free compact bay also respects type capacity.
        let a1 = ReservationTarget::Space(SpaceId::new("A1"));
        assert_eq!(
            check_booking(&a1, &range(10, 11), &spaces, &full),
            Err(BookingRejection::NoCapacity)
        );
        // Cancelled bookings hold nothing.
        for r in &mut full {
            r.status = ReservationStatus::Cancelled;
        }
        assert_eq!(
            check_booking(&compact, &range(10, 12), &spaces, &full),
            Ok(())
        );
    }
}

crate::variants!(
    ReservationStatus,
    Booked,
    CheckedIn,
    Completed,
    Cancelled,
    NoShow
);
