//! Gate decisions while the database is unreachable.
//!
//! The full entry and exit decisions need sessions, bays and payments, which
//! live in the database. When it is down, the gates must still let in and
//! out the people who are *always* entitled: the service keeps an in-memory
//! copy of the block-list, the allow-list and the permits, and asks these
//! functions. The decisions are queued and written to the database (audit
//! included) once it answers again.
//!
//! # Rules (documented decisions)
//! * Entry: block-listed → deny `blocked`; a permit valid now for this lot →
//!   admit `permit`; allow-listed → admit `allow_list`; anyone else → deny
//!   `offline_no_entitlement` (no bay can be assigned safely, no session
//!   opened). No bay is assigned offline.
//! * Exit: a fee-covering permit valid now → open `permit`; anyone else →
//!   hold `offline_hold` (nothing can be priced without the session) and
//!   flag it, so staff let the car out by hand.

use chrono::{DateTime, Utc};

use crate::core::entry::{EntryDecision, EntryReason, EntryVerdict};
use crate::core::exit::{ExitDecision, ExitReason, ExitVerdict};
use crate::core::flags::{FlagKind, RaisedFlag};
use crate::core::money::{Currency, Money};
use crate::core::permit::{active_permits, Permit};
use crate::core::plate::{ListMembership, Plate};
use crate::core::policy::SitePolicy;

/// Entry decision from cached lists and permits only.
pub fn decide_offline_entry(
    policy: &SitePolicy,
    plate: &Plate,
    lists: ListMembership,
    permits: &[Permit],
    now: DateTime<Utc>,
) -> EntryDecision {
    let mut flags = Vec::new();
    if lists.watched {
        flags.push(RaisedFlag::new(
            FlagKind::WatchListHit,
            format!("watch-listed plate {plate} at entry (database offline)"),
        ));
    }
    let decision = EntryDecision::without_space;
    if lists.blocked {
        return decision(
            EntryVerdict::Deny,
            EntryReason::Blocked,
            format!("Entry refused: plate {plate} is on the block-list."),
            flags,
        );
    }
    let permits = active_permits(permits, plate, now, policy.time_zone, &policy.lot);
    if let Some(p) = permits.first() {
        return decision(
            EntryVerdict::Admit,
            EntryReason::Permit,
            format!("Welcome (permit {}). Please park in any free space.", p.id),
            flags,
        );
    }
    if lists.allowed {
        return decision(
            EntryVerdict::Admit,
            EntryReason::AllowList,
            "Welcome (allow-list). Please park in any free space.".to_string(),
            flags,
        );
    }
    decision(
        EntryVerdict::Deny,
        EntryReason::OfflineNoEntitlement,
        "Entry is not possible right now. Please call staff.".to_string(),
        flags,
    )
}

/// Exit decision from cached permits only.
pub fn decide_offline_exit(
    policy: &SitePolicy,
    plate: &Plate,
    permits: &[Permit],
    currency: Currency,
    now: DateTime<Utc>,
) -> ExitDecision {
    let zero = Money::zero(currency);
    let covering = active_permits(permits, plate, now, policy.time_zone, &policy.lot)
        .into_iter()
        .find(|p| p.covers_fees);
    match covering {
        Some(p) => ExitDecision {
            verdict: ExitVerdict::OpenGate,
            reason: ExitReason::Permit,
            explanation: format!("Goodbye. Parking covered by permit {}.", p.id),
            flags: Vec::new(),
            close_session: None,
            fee: None,
            owed: zero,
            debt: None,
        },
        None => ExitDecision {
            verdict: ExitVerdict::HoldForStaff,
            reason: ExitReason::OfflineHold,
            explanation: "Please wait, a member of staff will open the gate.".to_string(),
            flags: vec![RaisedFlag::new(
                FlagKind::UnmatchedExit,
                format!("exit read {plate} while the database was offline"),
            )],
            close_session: None,
            fee: None,
            owed: zero,
            debt: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::permit::PermitKind;
    use crate::core::types::{LotId, PermitId};
    use chrono::{NaiveDate, TimeZone};

    fn setup() -> (SitePolicy, Plate, Vec<Permit>, DateTime<Utc>) {
        let policy = SitePolicy::new(LotId::new("main"), chrono_tz::UTC);
        let plate = Plate::parse("B100ABC").unwrap();
        let permits = vec![Permit::new(
            PermitId::new("staff-1"),
            plate.clone(),
            PermitKind::Staff,
            NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        )];
        (
            policy,
            plate,
            permits,
            Utc.with_ymd_and_hms(2024, 6, 3, 9, 0, 0).unwrap(),
        )
    }

    #[test]
    fn permit_and_allow_list_enter_others_wait() {
        let (policy, plate, permits, now) = setup();
        let d = decide_offline_entry(&policy, &plate, ListMembership::default(), &permits, now);
        assert_eq!(
            (d.verdict, d.reason),
            (EntryVerdict::Admit, EntryReason::Permit)
        );
        assert!(d.assigned_space.is_none());
        let other = Plate::parse("CJ01XYZ").unwrap();
        let d = decide_offline_entry(&policy, &other, ListMembership::default(), &permits, now);
        assert_eq!(d.reason, EntryReason::OfflineNoEntitlement);
        let allowed = ListMembership {
            allowed: true,
            ..Default::default()
        };
        let d = decide_offline_entry(&policy, &other, allowed, &permits, now);
        assert_eq!(d.reason, EntryReason::AllowList);
        let blocked = ListMembership {
            blocked: true,
            allowed: true,
            watched: true,
        };
        let d = decide_offline_entry(&policy, &plate, blocked, &permits, now);
        assert_eq!(d.reason, EntryReason::Blocked);
        assert_eq!(d.flags[0].kind, FlagKind::WatchListHit);
    }

    #[test]
    fn only_fee_covering_permits_leave() {
        let (policy, plate, mut permits, now) = setup();
        let d = decide_offline_exit(&policy, &plate, &permits, Currency::EUR, now);
        assert_eq!(d.verdict, ExitVerdict::OpenGate);
        permits[0].covers_fees = false;
        let d = decide_offline_exit(&policy, &plate, &permits, Currency::EUR, now);
        assert_eq!(
            (d.verdict, d.reason),
            (ExitVerdict::HoldForStaff, ExitReason::OfflineHold)
        );
        assert_eq!(d.flags[0].kind, FlagKind::UnmatchedExit);
    }
}
