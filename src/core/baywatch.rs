//! What bay sensors and overview cameras say, held against what the core
//! knows: which bay each open session was given.
//!
//! Three rules live here, and nowhere else:
//! * **Manual override wins.** Staff may pin a bay `free` or `occupied`
//!   (a sensor that is wrong, a coned-off bay); until they clear it, sensor
//!   and camera reports are still recorded but do not count.
//! * **Physically occupied bays are not handed out.** A bay the sensors see
//!   occupied is not offered to an entering car even when no session holds
//!   it (someone parked without passing the gate, or in the wrong bay).
//! * **Occupied without a session, wrong bay.** A bay seen occupied for longer
//!   than a grace period (time to drive from the gate and park) with no
//!   session on it raises a flag for staff, once per occupancy episode. When
//!   an open session's own bay has been seen free for that long, the likely
//!   explanation is that this car parked in the wrong bay: the flag says
//!   which car and which bay it was given.

use super::hysteresis::BayState;
use super::types::{SessionId, SpaceStatus};
use super::Plate;
use chrono::{DateTime, Duration, Utc};

/// The state that counts: a staff override when there is one, else what the
/// sensor or camera last said.
pub fn effective(sensed: BayState, manual: Option<BayState>) -> BayState {
    manual.unwrap_or(sensed)
}

/// The status the allocator sees: an available bay that is held for a
/// booking is `reserved`; one that is physically occupied is `occupied`.
pub fn allocation_status(
    stored: SpaceStatus,
    held_for_booking: bool,
    state: BayState,
) -> SpaceStatus {
    match stored {
        SpaceStatus::Available if held_for_booking => SpaceStatus::Reserved,
        SpaceStatus::Available if state == BayState::Occupied => SpaceStatus::Occupied,
        other => other,
    }
}

/// One bay as the review sees it.
#[derive(Debug, Clone)]
pub struct BayReport {
    pub space_id: String,
    /// Last sensor/camera state and since when it has held.
    pub sensed: BayState,
    pub since: Option<DateTime<Utc>>,
    pub manual: Option<BayState>,
    /// The session the bay was assigned to, if any.
    pub session: Option<SessionId>,
    pub out_of_service: bool,
    /// The `since` of the occupancy episode already flagged, if any.
    pub flagged_episode: Option<DateTime<Utc>>,
}

/// An open session and the bay it was given.
#[derive(Debug, Clone)]
pub struct AssignedBay {
    pub session: SessionId,
    pub plate: Plate,
    pub space_id: String,
    pub started_at: DateTime<Utc>,
}

/// What the review found; each names the bay and the occupancy episode
/// (`since`) so it is raised once.
#[derive(Debug, Clone, PartialEq)]
pub enum BayFinding {
    OccupiedWithoutSession {
        space_id: String,
        since: DateTime<Utc>,
    },
    WrongBay {
        space_id: String,
        since: DateTime<Utc>,
        session: SessionId,
        plate: Plate,
        assigned_space: String,
    },
}

impl BayFinding {
    pub fn space_id(&self) -> &str {
        match self {
            BayFinding::OccupiedWithoutSession { space_id, .. }
            | BayFinding::WrongBay { space_id, .. } => space_id,
        }
    }

    pub fn since(&self) -> DateTime<Utc> {
        match self {
            BayFinding::OccupiedWithoutSession { since, .. }
            | BayFinding::WrongBay { since, .. } => *since,
        }
    }

    /// A sentence for staff.
    pub fn explain(&self) -> String {
        match self {
            BayFinding::OccupiedWithoutSession { space_id, since } => {
                format!("space {space_id} has been occupied since {} with no session assigned to it", since.format("%Y-%m-%d %H:%M:%S UTC"))
            }
            BayFinding::WrongBay { space_id, since, plate, assigned_space, .. } => format!(
                "space {space_id} has been occupied since {} with no session, while {plate}'s assigned space {assigned_space} is free: probably parked in the wrong bay",
                since.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        }
    }
}

/// Reviews every bay at `now`. A bay is reported when it is (effectively)
/// occupied by sensor, has no session, is in service, has no staff override,
/// has been occupied for at least `grace`, and this episode was not reported
/// before. Each such bay is matched to at most one open session whose own bay
/// has been seen free for at least `grace` and which started before the bay
/// filled (the latest such entry wins); a session explains one bay only.
pub fn review(
    now: DateTime<Utc>,
    grace: Duration,
    bays: &[BayReport],
    sessions: &[AssignedBay],
) -> Vec<BayFinding> {
    let settled = |b: &BayReport, state: BayState| {
        b.manual.is_none() && b.sensed == state && b.since.is_some_and(|t| now - t >= grace)
    };
    let mut suspects: Vec<(&BayReport, DateTime<Utc>)> = bays
        .iter()
        .filter(|b| !b.out_of_service && b.session.is_none() && settled(b, BayState::Occupied))
        .filter_map(|b| b.since.map(|t| (b, t)))
        .filter(|(b, t)| b.flagged_episode != Some(*t))
        .collect();
    // Earliest-filled bays first, so the earliest arrival is explained first.
    suspects.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.space_id.cmp(&b.0.space_id)));
    let mut absent: Vec<&AssignedBay> = sessions
        .iter()
        .filter(|s| {
            bays.iter().any(|b| {
                b.space_id == s.space_id
                    && b.session.as_ref() == Some(&s.session)
                    && settled(b, BayState::Free)
            })
        })
        .collect();
    let mut out = Vec::new();
    for (bay, since) in suspects {
        let pick = absent
            .iter()
            .enumerate()
            .filter(|(_, s)| s.started_at <= since)
            .max_by_key(|(_, s)| s.started_at)
            .map(|(i, _)| i);
        out.push(match pick {
            Some(i) => {
                let s = absent.remove(i);
                BayFinding::WrongBay {
                    space_id: bay.space_id.clone(),
                    since,
                    session: s.session.clone(),
                    plate: s.plate.clone(),
                    assigned_space: s.space_id.clone(),
                }
            }
            None => BayFinding::OccupiedWithoutSession {
                space_id: bay.space_id.clone(),
                since,
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn bay(id: &str, sensed: BayState, since: i64, session: Option<&str>) -> BayReport {
        BayReport {
            space_id: id.into(),
            sensed,
            since: Some(t(since)),
            manual: None,
            session: session.map(SessionId::new),
            out_of_service: false,
            flagged_episode: None,
        }
    }

    fn assigned(session: &str, plate: &str, space: &str, started: i64) -> AssignedBay {
        AssignedBay {
            session: SessionId::new(session),
            plate: Plate::parse(plate).unwrap(),
            space_id: space.into(),
            started_at: t(started),
        }
    }

    const GRACE: i64 = 5;

    #[test]
    fn override_wins_over_the_sensor() {
        assert_eq!(
            effective(BayState::Occupied, Some(BayState::Free)),
            BayState::Free
        );
        assert_eq!(effective(BayState::Free, None), BayState::Free);
        assert_eq!(
            effective(BayState::Unknown, Some(BayState::Occupied)),
            BayState::Occupied
        );
    }

    #[test]
    fn allocator_skips_physically_occupied_and_held_bays() {
        assert_eq!(
            allocation_status(SpaceStatus::Available, false, BayState::Occupied),
            SpaceStatus::Occupied
        );
        assert_eq!(
            allocation_status(SpaceStatus::Available, false, BayState::Unknown),
            SpaceStatus::Available
        );
        assert_eq!(
            allocation_status(SpaceStatus::Available, true, BayState::Free),
            SpaceStatus::Reserved
        );
        assert_eq!(
            allocation_status(SpaceStatus::OutOfService, false, BayState::Free),
            SpaceStatus::OutOfService
        );
    }

    #[test]
    fn no_flag_within_the_grace_period() {
        let bays = [bay("A1", BayState::Occupied, 0, None)];
        assert!(review(t(GRACE - 1), Duration::minutes(GRACE), &bays, &[]).is_empty());
        let f = review(t(GRACE), Duration::minutes(GRACE), &bays, &[]);
        assert_eq!(
            f,
            vec![BayFinding::OccupiedWithoutSession {
                space_id: "A1".into(),
                since: t(0)
            }]
        );
        assert!(f[0].explain().contains("A1"));
    }

    #[test]
    fn an_episode_is_flagged_once_and_a_new_episode_again() {
        let mut b = bay("A1", BayState::Occupied, 0, None);
        b.flagged_episode = Some(t(0));
        assert!(review(
            t(60),
            Duration::minutes(GRACE),
            std::slice::from_ref(&b),
            &[]
        )
        .is_empty());
        b.since = Some(t(30)); // the car left and another came
        assert_eq!(review(t(60), Duration::minutes(GRACE), &[b], &[]).len(), 1);
    }

    #[test]
    fn bays_with_a_session_an_override_or_out_of_service_are_not_flagged() {
        let mut manual = bay("A2", BayState::Occupied, 0, None);
        manual.manual = Some(BayState::Occupied);
        let mut oos = bay("A3", BayState::Occupied, 0, None);
        oos.out_of_service = true;
        let bays = [
            bay("A1", BayState::Occupied, 0, Some("s1")),
            manual,
            oos,
            bay("A4", BayState::Free, 0, None),
            bay("A5", BayState::Unknown, 0, None),
        ];
        assert!(review(t(60), Duration::minutes(GRACE), &bays, &[]).is_empty());
    }

    #[test]
    fn wrong_bay_names_the_car_whose_bay_stayed_free() {
        // s1 was given B1 at 9:00; B1 stays free; B7 fills at 9:02.
        let bays = [
            bay("B1", BayState::Free, 0, Some("s1")),
            bay("B7", BayState::Occupied, 2, None),
        ];
        let sessions = [assigned("s1", "B123ABC", "B1", 0)];
        let f = review(t(10), Duration::minutes(GRACE), &bays, &sessions);
        assert_eq!(
            f,
            vec![BayFinding::WrongBay {
                space_id: "B7".into(),
                since: t(2),
                session: SessionId::new("s1"),
                plate: Plate::parse("B123ABC").unwrap(),
                assigned_space: "B1".into()
            }]
        );
        assert!(f[0].explain().contains("B123ABC") && f[0].explain().contains("wrong bay"));
    }

    #[test]
    fn a_session_that_started_after_the_bay_filled_does_not_explain_it() {
        let bays = [
            bay("B1", BayState::Free, 0, Some("s1")),
            bay("B7", BayState::Occupied, 0, None),
        ];
        let sessions = [assigned("s1", "B123ABC", "B1", 3)];
        let f = review(t(20), Duration::minutes(GRACE), &bays, &sessions);
        assert!(matches!(f[0], BayFinding::OccupiedWithoutSession { .. }));
    }

    #[test]
    fn each_session_explains_one_bay_the_latest_entry_first() {
        let bays = [
            bay("B1", BayState::Free, 0, Some("s1")),
            bay("B2", BayState::Free, 0, Some("s2")),
            bay("B7", BayState::Occupied, 4, None),
            bay("B8", BayState::Occupied, 6, None),
            bay("B9", BayState::Occupied, 7, None),
        ];
        let sessions = [
            assigned("s1", "B111AAA", "B1", 1),
            assigned("s2", "B222BBB", "B2", 3),
        ];
        let f = review(t(30), Duration::minutes(GRACE), &bays, &sessions);
        let summary: Vec<(String, Option<String>)> = f
            .iter()
            .map(|x| match x {
                BayFinding::WrongBay {
                    space_id, plate, ..
                } => (space_id.clone(), Some(plate.to_string())),
                BayFinding::OccupiedWithoutSession { space_id, .. } => (space_id.clone(), None),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("B7".into(), Some("B222BBB".into())),
                ("B8".into(), Some("B111AAA".into())),
                ("B9".into(), None)
            ]
        );
    }

    #[test]
    fn an_assigned_bay_that_is_occupied_or_recently_free_explains_nothing() {
        // s1's bay is occupied (it parked right); s2's bay went free only a minute ago.
        let bays = [
            bay("B1", BayState::Occupied, 0, Some("s1")),
            bay("B2", BayState::Free, 9, Some("s2")),
            bay("B7", BayState::Occupied, 2, None),
        ];
        let sessions = [
            assigned("s1", "B111AAA", "B1", 0),
            assigned("s2", "B222BBB", "B2", 0),
        ];
        let f = review(t(10), Duration::minutes(GRACE), &bays, &sessions);
        assert!(matches!(f[0], BayFinding::OccupiedWithoutSession { .. }));
    }
}
