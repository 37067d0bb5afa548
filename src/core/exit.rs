//! The exit decision: open the barrier, ask for money, or call staff.
//!
//! The store first calls [`match_exit`](crate::core::matching::match_exit),
//! loads the matched session's payments, permits, tariff and reservation, and
//! then calls [`decide_exit`].
//!
//! # Rules (documented decisions)
//!
//! * **Exit grace after payment.** The stay is priced up to the last
//!   successful payment if the car leaves within the tariff's
//!   `exit_grace_minutes` of it; otherwise up to now, and the difference to
//!   what was paid is owed (the whole stay is repriced, so there is no gap).
//! * **Free grace** is part of the tariff: a short stay prices to zero.
//! * **Permits** that `cover_fees` waive the fee if valid at entry *or* at
//!   exit (a permit that starts or lapses mid-stay still counts), for either
//!   the session's plate or the read plate.
//! * **Reservations** cover their booked window (the booking was paid for
//!   separately); time after the window's end is charged at the tariff,
//!   with the tariff's free grace applied to the overstay. Early-departure
//!   refunds are a separate call ([`Reservation::early_departure_refund`]).
//! * **Owed money**: `require_payment` keeps the barrier closed with
//!   `payment_required{amount}`; `pay_later` opens it, returns a [`Debt`]
//!   and flags `unpaid_exit`.
//! * **Unmatched / ambiguous** reads always raise a flag; a fee-covering
//!   permit for the read plate opens the gate; otherwise `hold_for_staff`
//!   holds, and `charge_lost_ticket` asks for the lost-ticket fee (payments
//!   passed in for this exit count against it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::error::CoreError;
use crate::core::flags::{FlagKind, RaisedFlag};
use crate::core::matching::ExitMatch;
use crate::core::money::Money;
use crate::core::payment::{amount_owed, last_charge_at, net_paid, Debt, Payment};
use crate::core::permit::Permit;
use crate::core::plate::Plate;
use crate::core::policy::{SitePolicy, UnmatchedExitPolicy, UnpaidExitPolicy};
use crate::core::reservation::Reservation;
use crate::core::tariff::{fee, Fee, FeeLineKind, Tariff};
use crate::core::types::{OpenSession, SessionId};

/// Snapshot gathered by the store for one exit read.
#[derive(Debug, Clone)]
pub struct ExitContext<'a> {
    pub policy: &'a SitePolicy,
    pub read_plate: &'a Plate,
    pub exit_match: &'a ExitMatch,
    /// The session named by `exit_match`; required for exact/fuzzy matches.
    pub session: Option<&'a OpenSession>,
    /// Payments and refunds of that session (or, when unmatched, of this exit).
    pub payments: &'a [Payment],
    /// Permits on file for the session's plate and/or the read plate.
    pub permits: &'a [Permit],
    /// The tariff for the session (see `TariffTable::select`), or the default.
    pub tariff: &'a Tariff,
    /// The session's reservation, if it has one.
    pub reservation: Option<&'a Reservation>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum ExitVerdict {
    OpenGate,
    PaymentRequired { amount: Money },
    HoldForStaff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// The stay was within the tariff's free grace.
    FreeGrace,
    /// Payments cover the fee (and the car is within the exit grace).
    Paid,
    /// The tariff priced the stay at zero.
    NothingOwed,
    /// A fee-covering permit.
    Permit,
    /// The stay was within the reserved window.
    ReservationCovered,
    /// Money is owed; pay at the terminal.
    PaymentRequired,
    /// Money is owed; let out and recorded as debt.
    PayLater,
    /// Unmatched/ambiguous read charged the lost-ticket fee.
    LostTicket,
    UnmatchedHold,
    AmbiguousHold,
    /// Unmatched/ambiguous read, but the read plate holds a fee-covering permit.
    UnmatchedPermit,
    /// The database is unreachable: only fee-covering permits are let out.
    OfflineHold,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitDecision {
    pub verdict: ExitVerdict,
    pub reason: ExitReason,
    pub explanation: String,
    pub flags: Vec<RaisedFlag>,
    /// Session the store should close (set only when the gate opens on a match).
    pub close_session: Option<SessionId>,
    /// The fee for the stay, itemised (matched sessions and lost tickets).
    pub fee: Option<Fee>,
    /// What is still owed after payments (zero when the gate opens, unless `debt`).
    pub owed: Money,
    /// Debt to record for a pay-later exit.
    pub debt: Option<Debt>,
}

impl ExitDecision {
    pub fn opens_gate(&self) -> bool {
        self.verdict == ExitVerdict::OpenGate
    }
}

fn permit_covers(
    ctx: &ExitContext<'_>,
    plates: &[&Plate],
    instants: &[DateTime<Utc>],
) -> Option<String> {
    let policy = ctx.policy;
    ctx.permits
        .iter()
        .filter(|p| p.covers_fees && plates.contains(&&p.plate))
        .find(|p| {
            instants
                .iter()
                .any(|&at| p.is_valid_at(at, policy.time_zone, &policy.lot))
        })
        .map(|p| p.id.to_string())
}

/// Where pricing stops: the last payment if we are within its exit grace.
fn priced_until(ctx: &ExitContext<'_>, started_at: DateTime<Utc>) -> DateTime<Utc> {
    let until = match last_charge_at(ctx.payments) {
        Some(paid_at) if ctx.now <= paid_at + ctx.tariff.exit_grace() => paid_at.min(ctx.now),
        _ => ctx.now,
    };
    // Clock skew between entry and exit lanes must not make pricing fail.
    until.max(started_at)
}

/// Decides an exit read. Errors only on inconsistent input (missing session,
/// invalid tariff, corrupt payments).
pub fn decide_exit(ctx: &ExitContext<'_>) -> Result<ExitDecision, CoreError> {
    match ctx.exit_match {
        ExitMatch::Exact { session } | ExitMatch::Fuzzy { session, .. } => {
            let matched = ctx
                .session
                .filter(|s| &s.id == session)
                .ok_or_else(|| CoreError::MissingSession(session.clone()))?;
            decide_matched(ctx, matched)
        }
        ExitMatch::Ambiguous { candidates } => decide_unmatched(
            ctx,
            FlagKind::AmbiguousExit,
            ExitReason::AmbiguousHold,
            format!(
                "exit read {} matches {} open sessions ({})",
                ctx.read_plate,
                candidates.len(),
                candidates
                    .iter()
                    .map(|c| c.plate.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        ExitMatch::None => decide_unmatched(
            ctx,
            FlagKind::UnmatchedExit,
            ExitReason::UnmatchedHold,
            format!("exit read {} matches no open session", ctx.read_plate),
        ),
    }
}

fn decide_matched(ctx: &ExitContext<'_>, session: &OpenSession) -> Result<ExitDecision, CoreError> {
    let currency = ctx.tariff.currency;
    let zero = Money::zero(currency);
    let open = |reason, explanation: String, fee: Option<Fee>| ExitDecision {
        verdict: ExitVerdict::OpenGate,
        reason,
        explanation,
        flags: Vec::new(),
        close_session: Some(session.id.clone()),
        fee,
        owed: zero,
        debt: None,
    };

    if let Some(permit) = permit_covers(
        ctx,
        &[&session.plate, ctx.read_plate],
        &[session.started_at, ctx.now],
    ) {
        return Ok(open(
            ExitReason::Permit,
            format!("Goodbye. Parking covered by permit {permit}."),
            None,
        ));
    }

    let until = priced_until(ctx, session.started_at);
    let reservation = ctx
        .reservation
        .filter(|r| session.reservation.as_ref() == Some(&r.id));
    let within_reservation = reservation.is_some_and(|r| until <= r.window.end);
    let stay_fee = match reservation {
        _ if within_reservation => Fee::zero(currency),
        Some(r) => fee(ctx.tariff, r.window.end.max(session.started_at), until)?,
        None => fee(ctx.tariff, session.started_at, until)?,
    };
    let paid = net_paid(ctx.payments, currency)?;
    let owed = amount_owed(stay_fee.total, ctx.payments)?;

    if owed.is_zero() {
        let within_grace = stay_fee
            .lines
            .first()
            .is_some_and(|l| l.kind == FeeLineKind::FreeGrace);
        let (reason, explanation) = if within_reservation {
            (
                ExitReason::ReservationCovered,
                "Goodbye. Your stay was within your reservation.".to_string(),
            )
        } else if within_grace {
            (
                ExitReason::FreeGrace,
                "Goodbye. Short stays are free.".to_string(),
            )
        } else if paid.is_positive() {
            (
                ExitReason::Paid,
                format!("Goodbye. Paid {paid}, thank you."),
            )
        } else {
            (
                ExitReason::NothingOwed,
                "Goodbye. Nothing to pay.".to_string(),
            )
        };
        return Ok(open(reason, explanation, Some(stay_fee)));
    }

    match ctx.policy.unpaid_exit {
        UnpaidExitPolicy::RequirePayment => Ok(ExitDecision {
            verdict: ExitVerdict::PaymentRequired { amount: owed },
            reason: ExitReason::PaymentRequired,
            explanation: format!("Please pay {owed} to exit."),
            flags: Vec::new(),
            close_session: None,
            fee: Some(stay_fee),
            owed,
            debt: None,
        }),
        UnpaidExitPolicy::PayLater => Ok(ExitDecision {
            flags: vec![RaisedFlag::new(
                FlagKind::UnpaidExit,
                format!(
                    "{} left owing {owed} (session {})",
                    session.plate, session.id
                ),
            )],
            owed,
            debt: Debt::for_unpaid_exit(
                session.plate.clone(),
                Some(session.id.clone()),
                owed,
                ctx.now,
            ),
            ..open(
                ExitReason::PayLater,
                format!("Goodbye. {owed} will be charged to your account."),
                Some(stay_fee),
            )
        }),
    }
}

fn decide_unmatched(
    ctx: &ExitContext<'_>,
    flag: FlagKind,
    hold_reason: ExitReason,
    detail: String,
) -> Result<ExitDecision, CoreError> {
    let tariff = ctx.tariff;
    let zero = Money::zero(tariff.currency);
    let flags = vec![RaisedFlag::new(flag, detail)];
    let decision = |verdict, reason, explanation: String, fee, owed| ExitDecision {
        verdict,
        reason,
        explanation,
        flags: flags.clone(),
        close_session: None,
        fee,
        owed,
        debt: None,
    };

    if let Some(permit) = permit_covers(ctx, &[ctx.read_plate], &[ctx.now]) {
        return Ok(decision(
            ExitVerdict::OpenGate,
            ExitReason::UnmatchedPermit,
            format!("Goodbye. Parking covered by permit {permit}."),
            None,
            zero,
        ));
    }

    match ctx.policy.unmatched_exit {
        UnmatchedExitPolicy::HoldForStaff => Ok(decision(
            ExitVerdict::HoldForStaff,
            hold_reason,
            "We could not find your entry. A member of staff will help you shortly.".to_string(),
            None,
            zero,
        )),
        UnmatchedExitPolicy::ChargeLostTicket => {
            let lost = Fee {
                total: tariff.lost_ticket(),
                lines: Vec::new(),
            };
            let owed = amount_owed(lost.total, ctx.payments)?;
            let recently_paid =
                last_charge_at(ctx.payments).is_some_and(|at| ctx.now <= at + tariff.exit_grace());
            if owed.is_zero() && (recently_paid || lost.total.is_zero()) {
                Ok(decision(
                    ExitVerdict::OpenGate,
                    ExitReason::LostTicket,
                    "Goodbye. Lost-ticket fee settled.".to_string(),
                    Some(lost),
                    zero,
                ))
            } else {
                // Paid too long ago for this exit: charge the full fee again.
                let owed = if owed.is_zero() { lost.total } else { owed };
                Ok(decision(
                    ExitVerdict::PaymentRequired { amount: owed },
                    ExitReason::LostTicket,
                    format!(
                        "We could not find your entry. Please pay the lost-ticket fee of {owed}."
                    ),
                    Some(lost),
                    owed,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::matching::{match_exit, MatchCandidate};
    use crate::core::money::Currency;
    use crate::core::payment::{PaymentKind, PaymentMethod, PaymentStatus};
    use crate::core::permit::PermitKind;
    use crate::core::reservation::{ReservationStatus, ReservationTarget};
    use crate::core::schedule::TimeRange;
    use crate::core::types::{LotId, PaymentId, PermitId, ReservationId, SpaceType, VehicleType};
    use chrono::{Duration, NaiveDate, TimeZone};
    use chrono_tz::Europe::London;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 3, 8, 0, 0).unwrap()
    }

    fn mins(m: i64) -> DateTime<Utc> {
        t0() + Duration::minutes(m)
    }

    struct Fixture {
        policy: SitePolicy,
        tariff: Tariff,
        session: OpenSession,
        read: Plate,
        payments: Vec<Payment>,
        permits: Vec<Permit>,
        reservation: Option<Reservation>,
        now: DateTime<Utc>,
    }

    impl Fixture {
        fn new() -> Self {
            let mut tariff = Tariff::simple("std", Currency::GBP, London, 30, 150);
            tariff.free_grace_minutes = 10;
            tariff.exit_grace_minutes = 15;
            tariff.lost_ticket_fee = 2500;
            let plate = Plate::parse("AB12CDE").unwrap();
            Fixture {
                policy: SitePolicy::new(LotId::new("main"), London),
                tariff,
                session: OpenSession {
                    id: SessionId::new("s1"),
                    plate: plate.clone(),
                    started_at: t0(),
                    vehicle_type: VehicleType::Car,
                    space: None,
                    space_type: Some(SpaceType::Compact),
                    reservation: None,
                },
                read: plate,
                payments: Vec::new(),
                permits: Vec::new(),
                reservation: None,
                now: mins(90),
            }
        }

        fn decide(&self) -> ExitDecision {
            let sessions = [self.session.clone()];
            let m = match_exit(&self.read, &sessions, &self.policy.exit_matching);
            self.decide_with(&m).unwrap()
        }

        fn decide_with(&self, m: &ExitMatch) -> Result<ExitDecision, CoreError> {
            decide_exit(&ExitContext {
                policy: &self.policy,
                read_plate: &self.read,
                exit_match: m,
                session: Some(&self.session),
                payments: &self.payments,
                permits: &self.permits,
                tariff: &self.tariff,
                reservation: self.reservation.as_ref(),
                now: self.now,
            })
        }

        fn pay(&mut self, amount: i64, at: DateTime<Utc>) {
            self.payments.push(Payment {
                id: PaymentId::new(format!("p{}", self.payments.len())),
                kind: PaymentKind::Charge,
                method: PaymentMethod::Mobile,
                status: PaymentStatus::Succeeded,
                amount: Money::new(amount, Currency::GBP),
                at,
            });
        }
    }

    fn gbp(a: i64) -> Money {
        Money::new(a, Currency::GBP)
    }

    #[test]
    fn unpaid_stay_requires_payment() {
        let d = Fixture::new().decide();
        assert_eq!(d.verdict, ExitVerdict::PaymentRequired { amount: gbp(450) });
        assert_eq!(d.reason, ExitReason::PaymentRequired);
        assert!(d.close_session.is_none() && !d.opens_gate());
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["verdict"]["verdict"], "payment_required");
        assert_eq!(json["verdict"]["amount"]["amount_minor"], 450);
        assert_eq!(json["reason"], "payment_required");
        assert_eq!(d.fee.unwrap().total, gbp(450));
    }

    #[test]
    fn free_grace_opens() {
        let mut f = Fixture::new();
        f.now = mins(10);
        let d = f.decide();
        assert_eq!(d.reason, ExitReason::FreeGrace);
        assert_eq!(d.close_session, Some(SessionId::new("s1")));
    }

    #[test]
    fn paid_within_exit_grace_opens_even_if_new_interval_started() {
        let mut f = Fixture::new();
        f.pay(300, mins(55)); // 2 intervals, paid just before the third starts
        f.now = mins(69); // third interval would have started at 60
        let d = f.decide();
        assert_eq!(d.verdict, ExitVerdict::OpenGate);
        assert_eq!(d.reason, ExitReason::Paid);
        // Past the exit grace: the whole stay is repriced.
        f.now = mins(71);
        let d = f.decide();
        assert_eq!(d.verdict, ExitVerdict::PaymentRequired { amount: gbp(150) });
    }

    #[test]
    fn failed_payments_do_not_count() {
        let mut f = Fixture::new();
        f.pay(450, mins(85));
        f.payments[0].status = PaymentStatus::Failed;
        assert_eq!(f.decide().reason, ExitReason::PaymentRequired);
    }

    #[test]
    fn fee_covering_permit_opens() {
        let mut f = Fixture::new();
        f.permits.push(Permit::new(
            PermitId::new("staff-1"),
            f.session.plate.clone(),
            PermitKind::Staff,
            NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        ));
        let d = f.decide();
        assert_eq!(d.reason, ExitReason::Permit);
        assert!(d.opens_gate());
        // A handicapped permit grants a bay, not free parking.
        f.permits[0] = Permit::new(
            PermitId::new("h"),
            f.session.plate.clone(),
            PermitKind::Handicapped,
            NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        );
        assert_eq!(f.decide().reason, ExitReason::PaymentRequired);
    }

    #[test]
    fn pay_later_opens_with_debt_and_flag() {
        let mut f = Fixture::new();
        f.policy.unpaid_exit = UnpaidExitPolicy::PayLater;
        f.pay(100, mins(30));
        let d = f.decide();
        assert_eq!(d.verdict, ExitVerdict::OpenGate);
        assert_eq!(d.reason, ExitReason::PayLater);
        assert_eq!(d.owed, gbp(350));
        assert_eq!(d.debt.as_ref().unwrap().amount, gbp(350));
        assert_eq!(d.flags[0].kind, FlagKind::UnpaidExit);
        assert_eq!(d.close_session, Some(SessionId::new("s1")));
    }

    #[test]
    fn fuzzy_match_is_priced_like_exact() {
        let mut f = Fixture::new();
        f.read = Plate::parse("A812CDE").unwrap();
        let d = f.decide();
        assert_eq!(d.verdict, ExitVerdict::PaymentRequired { amount: gbp(450) });
    }

    #[test]
    fn reservation_covers_its_window_then_tariff_applies() {
        let mut f = Fixture::new();
        f.session.reservation = Some(ReservationId::new("r1"));
        f.reservation = Some(Reservation {
            id: ReservationId::new("r1"),
            plate: f.session.plate.clone(),
            target: ReservationTarget::SpaceType(SpaceType::Compact),
            window: TimeRange::new(mins(0), mins(120)).unwrap(),
            price: gbp(800),
            status: ReservationStatus::CheckedIn,
        });
        assert_eq!(f.decide().reason, ExitReason::ReservationCovered);
        f.now = mins(125); // 5 min overstay within free grace
        assert_eq!(f.decide().reason, ExitReason::FreeGrace);
        f.now = mins(140);
        assert_eq!(
            f.decide().verdict,
            ExitVerdict::PaymentRequired { amount: gbp(150) }
        );
    }

    #[test]
    fn unmatched_exit_holds_or_charges_lost_ticket() {
        let mut f = Fixture::new();
        f.read = Plate::parse("ZZ999ZZ").unwrap();
        let d = f.decide();
        assert_eq!(d.verdict, ExitVerdict::HoldForStaff);
        assert_eq!(d.reason, ExitReason::UnmatchedHold);
        assert_eq!(d.flags[0].kind, FlagKind::UnmatchedExit);

        f.policy.unmatched_exit = UnmatchedExitPolicy::ChargeLostTicket;
        let d = f.decide();
        assert_eq!(
            d.verdict,
            ExitVerdict::PaymentRequired { amount: gbp(2500) }
        );
        assert_eq!(d.reason, ExitReason::LostTicket);
        assert_eq!(d.flags[0].kind, FlagKind::UnmatchedExit);

        f.pay(2500, f.now - Duration::minutes(1));
        let d = f.decide();
        assert_eq!(d.verdict, ExitVerdict::OpenGate);
        assert_eq!(d.flags[0].kind, FlagKind::UnmatchedExit);
    }

    #[test]
    fn unmatched_permit_holder_is_let_out_but_flagged() {
        let mut f = Fixture::new();
        f.read = Plate::parse("ZZ999ZZ").unwrap();
        f.permits.push(Permit::new(
            PermitId::new("res"),
            f.read.clone(),
            PermitKind::Resident,
            NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        ));
        let d = f.decide();
        assert_eq!(d.reason, ExitReason::UnmatchedPermit);
        assert!(d.opens_gate());
        assert_eq!(d.flags[0].kind, FlagKind::UnmatchedExit);
    }

    #[test]
    fn ambiguous_exit_holds_with_flag() {
        let f = Fixture::new();
        let m = ExitMatch::Ambiguous {
            candidates: vec![MatchCandidate {
                session: SessionId::new("s1"),
                plate: f.session.plate.clone(),
                distance: 0.2,
            }],
        };
        let d = f.decide_with(&m).unwrap();
        assert_eq!(d.verdict, ExitVerdict::HoldForStaff);
        assert_eq!(d.reason, ExitReason::AmbiguousHold);
        assert_eq!(d.flags[0].kind, FlagKind::AmbiguousExit);
    }

    #[test]
    fn missing_session_is_an_error() {
        let f = Fixture::new();
        let m = ExitMatch::Exact {
            session: SessionId::new("other"),
        };
        assert!(matches!(
            f.decide_with(&m),
            Err(CoreError::MissingSession(_))
        ));
    }

    #[test]
    fn clock_skew_does_not_fail() {
        let mut f = Fixture::new();
        f.now = mins(-1);
        assert_eq!(f.decide().reason, ExitReason::FreeGrace);
    }
}

crate::variants!(
    ExitReason,
    FreeGrace,
    Paid,
    NothingOwed,
    Permit,
    ReservationCovered,
    PaymentRequired,
    PayLater,
    LostTicket,
    UnmatchedHold,
    AmbiguousHold,
    UnmatchedPermit,
    OfflineHold,
);
