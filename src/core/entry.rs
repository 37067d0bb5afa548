//! The entry decision: may this vehicle in, and where should it park?
//!
//! # Order of checks (documented decisions)
//!
//! 1. **Block-list** → deny `blocked`. Checked first: nothing overrides it.
//! 2. **Open session for the plate.**
//!    * Started within `dedupe_window` (or, with clock skew, "in the future"):
//!      the camera read the same car twice → verdict `duplicate`: the gate
//!      opens again, no session is opened, the existing bay is repeated, and
//!      *no flags* are raised (the first read already raised them).
//!    * Older: per [`DuplicateSessionPolicy`] — `deny` (`duplicate_session`),
//!      or by default admit, ask the store to close the stale session
//!      (`supersede_session`) and flag `duplicate_session`.
//! 3. **Reservation** for the plate: too early for its check-in window → deny
//!    `reservation_not_yet_valid` (admitting as a walk-in would turn the
//!    booking into a no-show); expired/cancelled → ignored; open → it is the
//!    entitlement and its bay wins.
//! 4. **Restricted lot**: needs a reservation, a permit valid now for this
//!    lot, or the allow-list; otherwise deny `no_permit`.
//! 5. **Bay**: the reservation's bay (or a bay of its type), else a bay from
//!    the compatibility table (permit-unlocked types first) by the site's
//!    strategy. None free → deny `full_for_vehicle_type`.
//!
//! Flags never change the verdict: a watch-list hit or low-confidence read is
//! admitted (or denied) exactly as it would be otherwise, and staff review it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::assignment::assign_space;
use crate::core::flags::{FlagKind, RaisedFlag};
use crate::core::permit::{active_permits, Permit};
use crate::core::plate::{ListMembership, Plate};
use crate::core::policy::{DuplicateSessionPolicy, SitePolicy};
use crate::core::reservation::{CheckInStatus, Reservation, ReservationTarget};
use crate::core::types::{
    OpenSession, ReservationId, SessionId, Space, SpaceId, SpaceStatus, SpaceType, VehicleType,
};

/// Snapshot gathered by the store for one entry read.
#[derive(Debug, Clone)]
pub struct EntryContext<'a> {
    pub policy: &'a SitePolicy,
    pub plate: &'a Plate,
    /// OCR confidence of the read, 0..1.
    pub read_confidence: f64,
    pub vehicle_type: VehicleType,
    pub now: DateTime<Utc>,
    pub lists: ListMembership,
    /// Permits on file for this plate; validity at `now` is checked here.
    pub permits: &'a [Permit],
    /// The plate's currently open session, if any.
    pub open_session: Option<&'a OpenSession>,
    /// Bays of the lot with their current status.
    pub spaces: &'a [Space],
    /// The plate's reservation relevant to now, if any.
    pub reservation: Option<&'a Reservation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryVerdict {
    /// Open the gate and open a session.
    Admit,
    /// Open the gate again; the session already exists.
    Duplicate,
    /// Keep the gate closed.
    Deny,
}

/// Machine-readable reason; the first four accompany `admit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryReason {
    Admitted,
    Permit,
    AllowList,
    Reservation,
    DuplicateRead,
    Blocked,
    NoPermit,
    DuplicateSession,
    ReservationNotYetValid,
    FullForVehicleType,
    /// The database is unreachable and the plate has no cached permit or
    /// allow-list entry (see [`crate::core::offline`]).
    OfflineNoEntitlement,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryDecision {
    pub verdict: EntryVerdict,
    pub reason: EntryReason,
    /// For the driver display and the staff console.
    pub explanation: String,
    pub flags: Vec<RaisedFlag>,
    pub assigned_space: Option<SpaceId>,
    /// Reservation to mark checked in (and link to the new session).
    pub check_in_reservation: Option<ReservationId>,
    /// Stale open session the store should close before opening the new one.
    pub supersede_session: Option<SessionId>,
}

impl EntryDecision {
    pub fn opens_gate(&self) -> bool {
        self.verdict != EntryVerdict::Deny
    }

    pub fn opens_session(&self) -> bool {
        self.verdict == EntryVerdict::Admit
    }

    fn deny(reason: EntryReason, explanation: String, flags: Vec<RaisedFlag>) -> Self {
        Self::without_space(EntryVerdict::Deny, reason, explanation, flags)
    }

    /// A decision that assigns no space and touches no reservation or session
    /// (denials, and the offline decisions made without the database).
    pub(crate) fn without_space(
        verdict: EntryVerdict,
        reason: EntryReason,
        explanation: String,
        flags: Vec<RaisedFlag>,
    ) -> Self {
        EntryDecision {
            verdict,
            reason,
            explanation,
            flags,
            assigned_space: None,
            check_in_reservation: None,
            supersede_session: None,
        }
    }
}

fn read_flags(ctx: &EntryContext<'_>) -> Vec<RaisedFlag> {
    let mut flags = Vec::new();
    if ctx.lists.watched {
        flags.push(RaisedFlag::new(
            FlagKind::WatchListHit,
            format!("watch-listed plate {} at entry", ctx.plate),
        ));
    }
    // NaN (no confidence reported) counts as low.
    if ctx.read_confidence.is_nan() || ctx.read_confidence < ctx.policy.min_read_confidence {
        flags.push(RaisedFlag::new(
            FlagKind::LowConfidenceRead,
            format!(
                "entry read {} with confidence {:.2} (threshold {:.2})",
                ctx.plate, ctx.read_confidence, ctx.policy.min_read_confidence
            ),
        ));
    }
    flags
}

/// The bay a usable reservation points to, if it is free for this reservation.
fn reserved_bay<'a>(ctx: &EntryContext<'a>, reservation: &Reservation) -> Option<&'a Space> {
    match &reservation.target {
        ReservationTarget::Space(id) => ctx.spaces.iter().find(|s| {
            &s.id == id && matches!(s.status, SpaceStatus::Available | SpaceStatus::Reserved)
        }),
        ReservationTarget::SpaceType(t) => assign_space(ctx.spaces, &[*t], ctx.policy.assignment),
    }
}

/// Decides an entry read. Pure: the caller persists the outcome.
pub fn decide_entry(ctx: &EntryContext<'_>) -> EntryDecision {
    let policy = ctx.policy;
    let plate = ctx.plate;
    let mut flags = read_flags(ctx);

    if ctx.lists.blocked {
        return EntryDecision::deny(
            EntryReason::Blocked,
            format!("Entry refused: plate {plate} is on the block-list."),
            flags,
        );
    }

    let mut supersede_session = None;
    if let Some(session) = ctx.open_session.filter(|s| &s.plate == plate) {
        if ctx.now - session.started_at <= policy.dedupe_window() {
            return EntryDecision {
                verdict: EntryVerdict::Duplicate,
                reason: EntryReason::DuplicateRead,
                explanation: format!(
                    "Repeated read of {plate}; session {} is already open.",
                    session.id
                ),
                flags: Vec::new(),
                assigned_space: session.space.clone(),
                check_in_reservation: None,
                supersede_session: None,
            };
        }
        flags.push(RaisedFlag::new(
            FlagKind::DuplicateSession,
            format!(
                "{plate} entered while session {} (since {}) was still open",
                session.id, session.started_at
            ),
        ));
        match policy.duplicate_session {
            DuplicateSessionPolicy::Deny => {
                return EntryDecision::deny(
                    EntryReason::DuplicateSession,
                    format!(
                        "Entry refused: {plate} already has an open session since {}. Please call staff.",
                        session.started_at
                    ),
                    flags,
                );
            }
            DuplicateSessionPolicy::SupersedeAndFlag => {
                supersede_session = Some(session.id.clone());
            }
        }
    }

    let reservation = match ctx.reservation.filter(|r| &r.plate == plate) {
        Some(r) => match r.check_in_status(&policy.reservations, ctx.now) {
            CheckInStatus::TooEarly { opens_at } => {
                return EntryDecision::deny(
                    EntryReason::ReservationNotYetValid,
                    format!("Your reservation can be used from {opens_at}."),
                    flags,
                );
            }
            CheckInStatus::Open => Some(r),
            CheckInStatus::Expired => None,
        },
        None => None,
    };

    let permits = active_permits(ctx.permits, plate, ctx.now, policy.time_zone, &policy.lot);
    let reason = if reservation.is_some() {
        EntryReason::Reservation
    } else if !permits.is_empty() {
        EntryReason::Permit
    } else if ctx.lists.allowed {
        EntryReason::AllowList
    } else {
        EntryReason::Admitted
    };
    if policy.restricted && reason == EntryReason::Admitted {
        return EntryDecision::deny(
            EntryReason::NoPermit,
            format!("Entry refused: this car park needs a permit and {plate} has none valid now."),
            flags,
        );
    }

    let granted: Vec<SpaceType> = permits
        .iter()
        .flat_map(|p| p.space_types.iter().copied())
        .collect();
    let eligible = policy
        .compatibility
        .eligible_types(ctx.vehicle_type, &granted);
    let general = || assign_space(ctx.spaces, &eligible, policy.assignment);

    let space = match reservation {
        Some(r) => match reserved_bay(ctx, r) {
            Some(space) => Some(space),
            None => {
                let fallback = general();
                flags.push(RaisedFlag::new(
                    FlagKind::WrongBay,
                    format!(
                        "reservation {} has no free bay of its own; assigned {}",
                        r.id,
                        fallback.map_or("none".to_string(), |s| s.id.to_string())
                    ),
                ));
                fallback
            }
        },
        None => general(),
    };
    let Some(space) = space else {
        return EntryDecision::deny(
            EntryReason::FullForVehicleType,
            format!(
                "Entry refused: no free space for a {} right now.",
                ctx.vehicle_type
            ),
            flags,
        );
    };

    let entitlement = match reason {
        EntryReason::Reservation => " (reservation)",
        EntryReason::Permit => " (permit)",
        EntryReason::AllowList => " (allow-list)",
        _ => "",
    };
    EntryDecision {
        verdict: EntryVerdict::Admit,
        reason,
        explanation: format!(
            "Welcome{entitlement}. Please park in space {} (level {}, zone {}).",
            space.id, space.level, space.zone
        ),
        flags,
        assigned_space: Some(space.id.clone()),
        check_in_reservation: reservation.map(|r| r.id.clone()),
        supersede_session,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::money::{Currency, Money};
    use crate::core::permit::PermitKind;
    use crate::core::reservation::ReservationStatus;
    use crate::core::schedule::TimeRange;
    use crate::core::types::{LotId, PermitId};
    use chrono::{Duration, NaiveDate, TimeZone};
    use chrono_tz::Europe::Bucharest;

    struct Fixture {
        policy: SitePolicy,
        plate: Plate,
        spaces: Vec<Space>,
        permits: Vec<Permit>,
        session: Option<OpenSession>,
        reservation: Option<Reservation>,
        lists: ListMembership,
        confidence: f64,
        vehicle: VehicleType,
        now: DateTime<Utc>,
    }

    fn space(id: &str, t: SpaceType, rank: u32) -> Space {
        Space {
            id: SpaceId::new(id),
            level: "P1".into(),
            zone: "A".into(),
            space_type: t,
            rank,
            status: SpaceStatus::Available,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 3, 9, 0, 0).unwrap()
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                policy: SitePolicy::new(LotId::new("north"), Bucharest),
                plate: Plate::parse("B123ABC").unwrap(),
                spaces: vec![
                    space("C1", SpaceType::Compact, 5),
                    space("L1", SpaceType::Large, 3),
                    space("H1", SpaceType::Handicapped, 1),
                    space("E1", SpaceType::Ev, 2),
                ],
                permits: Vec::new(),
                session: None,
                reservation: None,
                lists: ListMembership::default(),
                confidence: 0.95,
                vehicle: VehicleType::Car,
                now: now(),
            }
        }

        fn decide(&self) -> EntryDecision {
            decide_entry(&EntryContext {
                policy: &self.policy,
                plate: &self.plate,
                read_confidence: self.confidence,
                vehicle_type: self.vehicle,
                now: self.now,
                lists: self.lists,
                permits: &self.permits,
                open_session: self.session.as_ref(),
                spaces: &self.spaces,
                reservation: self.reservation.as_ref(),
            })
        }

        fn permit(&mut self, kind: PermitKind) {
            self.permits.push(Permit::new(
                PermitId::new("p"),
                self.plate.clone(),
                kind,
                NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            ));
        }

        fn open_session(&mut self, age: Duration) {
            self.session = Some(OpenSession {
                id: SessionId::new("s-old"),
                plate: self.plate.clone(),
                started_at: self.now - age,
                vehicle_type: VehicleType::Car,
                space: Some(SpaceId::new("C9")),
                space_type: Some(SpaceType::Compact),
                reservation: None,
            });
        }

        fn reserve(&mut self, target: ReservationTarget, start_in_min: i64) {
            let start = self.now + Duration::minutes(start_in_min);
            self.reservation = Some(Reservation {
                id: ReservationId::new("r1"),
                plate: self.plate.clone(),
                target,
                window: TimeRange::new(start, start + Duration::hours(2)).unwrap(),
                price: Money::new(1000, Currency::RON),
                status: ReservationStatus::Booked,
            });
        }
    }

    fn kinds(d: &EntryDecision) -> Vec<FlagKind> {
        d.flags.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn ordinary_admission_assigns_nearest_fitting_bay() {
        let d = Fixture::new().decide();
        assert_eq!(d.verdict, EntryVerdict::Admit);
        assert_eq!(d.reason, EntryReason::Admitted);
        assert_eq!(d.assigned_space, Some(SpaceId::new("L1")));
        assert!(d.opens_gate() && d.opens_session());
        assert!(d.flags.is_empty());
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["verdict"], "admit");
        assert_eq!(json["reason"], "admitted");
        assert_eq!(json["assigned_space"], "L1");
    }

    #[test]
    fn missing_confidence_counts_as_low() {
        let mut f = Fixture::new();
        f.confidence = f64::NAN;
        assert_eq!(kinds(&f.decide()), vec![FlagKind::LowConfidenceRead]);
    }

    #[test]
    fn best_fit_prefers_smallest_type() {
        let mut f = Fixture::new();
        f.policy.assignment = crate::core::assignment::AssignmentStrategy::BestFit;
        assert_eq!(f.decide().assigned_space, Some(SpaceId::new("C1")));
    }

    #[test]
    fn blocked_is_denied_with_flags_kept() {
        let mut f = Fixture::new();
        f.lists.blocked = true;
        f.lists.watched = true;
        f.confidence = 0.3;
        let d = f.decide();
        assert_eq!(d.verdict, EntryVerdict::Deny);
        assert_eq!(d.reason, EntryReason::Blocked);
        assert_eq!(
            kinds(&d),
            vec![FlagKind::WatchListHit, FlagKind::LowConfidenceRead]
        );
        assert!(!d.opens_gate());
    }

    #[test]
    fn watch_list_and_low_confidence_flag_but_admit() {
        let mut f = Fixture::new();
        f.lists.watched = true;
        f.confidence = 0.5;
        let d = f.decide();
        assert_eq!(d.verdict, EntryVerdict::Admit);
        assert_eq!(
            kinds(&d),
            vec![FlagKind::WatchListHit, FlagKind::LowConfidenceRead]
        );
    }

    #[test]
    fn second_read_within_dedupe_window_is_duplicate() {
        let mut f = Fixture::new();
        f.lists.watched = true;
        f.open_session(Duration::seconds(30));
        let d = f.decide();
        assert_eq!(d.verdict, EntryVerdict::Duplicate);
        assert_eq!(d.reason, EntryReason::DuplicateRead);
        assert!(d.opens_gate() && !d.opens_session());
        assert_eq!(d.assigned_space, Some(SpaceId::new("C9")));
        assert!(d.flags.is_empty());
    }

    #[test]
    fn stale_open_session_is_superseded_by_default() {
        let mut f = Fixture::new();
        f.open_session(Duration::seconds(31));
        let d = f.decide();
        assert_eq!(d.verdict, EntryVerdict::Admit);
        assert_eq!(d.supersede_session, Some(SessionId::new("s-old")));
        assert_eq!(kinds(&d), vec![FlagKind::DuplicateSession]);
    }

    #[test]
    fn stale_open_session_denied_when_configured() {
        let mut f = Fixture::new();
        f.policy.duplicate_session = DuplicateSessionPolicy::Deny;
        f.open_session(Duration::hours(5));
        let d = f.decide();
        assert_eq!(d.verdict, EntryVerdict::Deny);
        assert_eq!(d.reason, EntryReason::DuplicateSession);
        assert_eq!(kinds(&d), vec![FlagKind::DuplicateSession]);
    }

    #[test]
    fn restricted_lot_needs_permit_allow_list_or_reservation() {
        let mut f = Fixture::new();
        f.policy.restricted = true;
        assert_eq!(f.decide().reason, EntryReason::NoPermit);

        f.lists.allowed = true;
        assert_eq!(f.decide().reason, EntryReason::AllowList);

        f.lists.allowed = false;
        f.permit(PermitKind::Staff);
        assert_eq!(f.decide().reason, EntryReason::Permit);

        // A permit for another lot does not count.
        f.permits[0].lots = vec![LotId::new("south")];
        assert_eq!(f.decide().reason, EntryReason::NoPermit);

        f.reserve(ReservationTarget::SpaceType(SpaceType::Compact), 0);
        assert_eq!(f.decide().reason, EntryReason::Reservation);
    }

    #[test]
    fn handicapped_permit_unlocks_handicapped_bay() {
        let mut f = Fixture::new();
        f.policy.assignment = crate::core::assignment::AssignmentStrategy::BestFit;
        f.permit(PermitKind::Handicapped);
        let d = f.decide();
        assert_eq!(d.reason, EntryReason::Permit);
        assert_eq!(d.assigned_space, Some(SpaceId::new("H1")));
    }

    #[test]
    fn ev_bays_only_for_evs() {
        let mut f = Fixture::new();
        f.spaces = vec![space("E1", SpaceType::Ev, 1)];
        assert_eq!(f.decide().reason, EntryReason::FullForVehicleType);
        f.vehicle = VehicleType::Ev;
        assert_eq!(f.decide().assigned_space, Some(SpaceId::new("E1")));
    }

    #[test]
    fn full_for_vehicle_type() {
        let mut f = Fixture::new();
        f.vehicle = VehicleType::Van;
        f.spaces[1].status = SpaceStatus::Occupied;
        let d = f.decide();
        assert_eq!(d.verdict, EntryVerdict::Deny);
        assert_eq!(d.reason, EntryReason::FullForVehicleType);
        assert!(d.explanation.contains("van"));
        f.vehicle = VehicleType::Motorcycle;
        assert_eq!(f.decide().assigned_space, Some(SpaceId::new("C1")));
    }

    #[test]
    fn reservation_bay_wins() {
        let mut f = Fixture::new();
        f.spaces.push(Space {
            status: SpaceStatus::Reserved,
            ..space("R7", SpaceType::Compact, 40)
        });
        f.reserve(ReservationTarget::Space(SpaceId::new("R7")), 10);
        let d = f.decide();
        assert_eq!(d.reason, EntryReason::Reservation);
        assert_eq!(d.assigned_space, Some(SpaceId::new("R7")));
        assert_eq!(d.check_in_reservation, Some(ReservationId::new("r1")));
    }

    #[test]
    fn reservation_bay_taken_falls_back_and_flags() {
        let mut f = Fixture::new();
        f.spaces.push(Space {
            status: SpaceStatus::Occupied,
            ..space("R7", SpaceType::Compact, 40)
        });
        f.reserve(ReservationTarget::Space(SpaceId::new("R7")), 0);
        let d = f.decide();
        assert_eq!(d.verdict, EntryVerdict::Admit);
        assert_eq!(d.assigned_space, Some(SpaceId::new("L1")));
        assert_eq!(kinds(&d), vec![FlagKind::WrongBay]);
    }

    #[test]
    fn reservation_type_restricts_bay_type() {
        let mut f = Fixture::new();
        f.reserve(ReservationTarget::SpaceType(SpaceType::Compact), 0);
        assert_eq!(f.decide().assigned_space, Some(SpaceId::new("C1")));
    }

    #[test]
    fn reservation_too_early_or_expired() {
        let mut f = Fixture::new();
        f.reserve(ReservationTarget::SpaceType(SpaceType::Compact), 16);
        let d = f.decide();
        assert_eq!(d.reason, EntryReason::ReservationNotYetValid);
        assert_eq!(d.verdict, EntryVerdict::Deny);
        // Past the no-show grace the booking is ignored: ordinary walk-in.
        f.reserve(ReservationTarget::SpaceType(SpaceType::Compact), -31);
        let d = f.decide();
        assert_eq!(d.reason, EntryReason::Admitted);
        assert_eq!(d.check_in_reservation, None);
    }
}

crate::variants!(EntryVerdict, Admit, Duplicate, Deny);
crate::variants!(
    EntryReason,
    Admitted,
    Permit,
    AllowList,
    Reservation,
    DuplicateRead,
    Blocked,
    NoPermit,
    DuplicateSession,
    ReservationNotYetValid,
    FullForVehicleType,
    OfflineNoEntitlement,
);
