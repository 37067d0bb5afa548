//! Bays: their views, availability, sensor and staff status changes, and
//! the periodic bay review.

use super::*;

/// A change of a bay's status; see [`ParkingService::set_space_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceStatusChange {
    /// A bay sensor or overview camera saw the bay free or occupied.
    Sensor(BayState),
    /// Staff pin the occupancy state (`Some`) or hand it back to the sensors (`None`).
    Override(Option<BayState>),
    OutOfService,
    /// Staff say the bay is available: back in service when it was out of
    /// service, otherwise a report that it is free.
    BackInService,
}

#[derive(Debug, Clone, Default)]
pub struct TypeAvailability {
    pub space_type: String,
    pub total: i64,
    pub available: i64,
    pub occupied: i64,
    pub reserved: i64,
    pub out_of_service: i64,
}

#[derive(Debug, Clone)]
pub struct ParkingSpaceView {
    pub space: st::SpaceRow,
    /// Status as shown to people: `reserved` when held for a booking.
    pub display_status: String,
    pub reservation_id: Option<String>,
}

impl ParkingService {
    pub(super) async fn space_views(
        &self,
        c: &mut st::Conn,
    ) -> Result<Vec<ParkingSpaceView>, ServiceError> {
        let now = Utc::now();
        let held = st::held_spaces(c, now, self.inner.settings.lead_ms()).await?;
        let rows = st::all_spaces(c).await?;
        Ok(rows
            .into_iter()
            .map(|sp| {
                let hold = held.iter().find(|h| h.0 == sp.space_id);
                let display_status = if sp.status == "available" && hold.is_some() {
                    "reserved".to_string()
                } else {
                    sp.status.clone()
                };
                ParkingSpaceView {
                    reservation_id: hold.map(|h| h.1.clone()),
                    display_status,
                    space: sp,
                }
            })
            .collect())
    }

    pub async fn parkings(&self) -> Result<Vec<ParkingSpaceView>, ServiceError> {
        let mut c = self.db().read().await?;
        self.space_views(&mut c).await
    }

    pub async fn availability(
        &self,
        space_type: Option<SpaceType>,
    ) -> Result<Vec<TypeAvailability>, ServiceError> {
        let mut c = self.db().read().await?;
        let counts = st::space_counts(&mut c).await?;
        // Bays held for bookings count as reserved, not available.
        let held = st::held_spaces(&mut c, Utc::now(), self.inner.settings.lead_ms()).await?;
        let mut held_by_type: std::collections::HashMap<String, i64> =
            std::collections::HashMap::new();
        for (space_id, _, _) in &held {
            if let Some(sp) = st::space(&mut c, space_id)
                .await?
                .filter(|sp| sp.status == "available")
            {
                *held_by_type.entry(sp.space_type).or_default() += 1;
            }
        }
        let mut out: Vec<TypeAvailability> = Vec::new();
        for t in SpaceType::ALL {
            if space_type.is_some_and(|x| x != t) {
                continue;
            }
            let mut a = TypeAvailability {
                space_type: t.to_string(),
                ..Default::default()
            };
            for (ty, status, n) in counts.iter().filter(|(ty, _, _)| ty == t.as_str()) {
                a.total += n;
                match status.as_str() {
                    "available" => a.available += n,
                    "occupied" => a.occupied += n,
                    _ => a.out_of_service += n,
                }
                let _ = ty;
            }
            let reserved = held_by_type.get(t.as_str()).copied().unwrap_or(0);
            a.reserved = reserved;
            a.available -= reserved;
            if a.total > 0 || space_type.is_some() {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// A change of a bay's status: a sensor or camera report, a staff
    /// override of the occupancy state (or clearing it), or staff taking the
    /// bay out of service and back. Sensor reports are always recorded; while
    /// an override is set they do not count (see [`core::baywatch`]).
    pub async fn set_space_status(
        &self,
        id: &str,
        change: SpaceStatusChange,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<ParkingSpaceView, ServiceError> {
        let now = Utc::now();
        let mut tx = self.db().write().await?;
        let sp = st::space(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("space", id))?;
        // Staff saying `available` about a bay in service is a report that it is free.
        let change = match change {
            SpaceStatusChange::BackInService if sp.status != "out_of_service" => {
                SpaceStatusChange::Sensor(BayState::Free)
            }
            c => c,
        };
        let (action, detail) = match change {
            SpaceStatusChange::OutOfService | SpaceStatusChange::BackInService => {
                let to = if change == SpaceStatusChange::OutOfService {
                    "out_of_service"
                } else {
                    "available"
                };
                if !st::set_space_status(&mut tx, id, to, now).await? {
                    return Err(ServiceError::Conflict {
                        code: "space_occupied",
                        message: format!(
                            "space {id} is occupied by session {}",
                            sp.session_id.unwrap_or_default()
                        ),
                    });
                }
                (
                    AuditAction::SpaceStatusChanged,
                    serde_json::json!({ "status": to, "from": sp.status }),
                )
            }
            SpaceStatusChange::Sensor(state) => {
                st::set_sensor_state(&mut tx, id, state.as_str(), now).await?;
                if self.inner.settings.bay_grace <= Duration::zero() {
                    self.review_bays_in(&mut tx, now).await?;
                }
                (
                    AuditAction::SpaceSensorReported,
                    serde_json::json!({ "sensor_state": state, "from": sp.sensor_state }),
                )
            }
            SpaceStatusChange::Override(state) => {
                st::set_override(&mut tx, id, state.map(BayState::as_str), actor, now).await?;
                let action = if state.is_some() {
                    AuditAction::SpaceOverrideSet
                } else {
                    AuditAction::SpaceOverrideCleared
                };
                (
                    action,
                    serde_json::json!({ "override_state": state, "from": sp.override_state, "sensor_state": sp.sensor_state }),
                )
            }
        };
        st::audit(&mut tx, now, actor, action, Some(id), reason, Some(&detail)).await?;
        tx.commit().await?;
        let mut c = self.db().read().await?;
        self.space_views(&mut c)
            .await?
            .into_iter()
            .find(|v| v.space.space_id == id)
            .ok_or_else(|| not_found("space", id))
    }

    /// Staff overrides in force: (space id, state), e.g. to seed the boards at start.
    pub async fn overrides(&self) -> Result<Vec<(String, BayState)>, ServiceError> {
        let mut c = self.db().read().await?;
        Ok(st::overrides(&mut c)
            .await?
            .into_iter()
            .map(|(id, s)| (id, BayState::parse(&s)))
            .collect())
    }

    /// Reviews every bay against the open sessions ([`core::baywatch::review`])
    /// and raises `occupied_without_session` / `wrong_bay` flags, once per
    /// occupancy episode. Returns the flags raised.
    pub async fn review_bays(&self, now: DateTime<Utc>) -> Result<Vec<String>, ServiceError> {
        let mut tx = self.db().write().await?;
        let ids = self.review_bays_in(&mut tx, now).await?;
        tx.commit().await?;
        Ok(ids)
    }

    pub(super) async fn review_bays_in(
        &self,
        tx: &mut st::Conn,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, ServiceError> {
        let spaces = st::all_spaces(tx).await?;
        let bays: Vec<BayReport> = spaces
            .iter()
            .map(|sp| BayReport {
                space_id: sp.space_id.clone(),
                sensed: BayState::parse(&sp.sensor_state),
                since: sp.sensor_since,
                manual: sp.override_state.as_deref().map(BayState::parse),
                session: sp.session_id.as_ref().map(SessionId::new),
                out_of_service: sp.status == "out_of_service",
                flagged_episode: sp.flagged_episode,
            })
            .collect();
        if !bays
            .iter()
            .any(|b| b.sensed == BayState::Occupied && b.session.is_none())
        {
            return Ok(Vec::new());
        }
        let sessions: Vec<AssignedBay> = st::open_sessions(tx)
            .await?
            .into_iter()
            .filter_map(|r| {
                Some(AssignedBay {
                    session: SessionId::new(r.session_id),
                    plate: Plate::parse(&r.license_plate).ok()?,
                    space_id: r.space_id?,
                    started_at: r.entry_time,
                })
            })
            .collect();
        let mut ids = Vec::new();
        for f in baywatch::review(now, self.inner.settings.bay_grace, &bays, &sessions) {
            let (kind, plate, session) = match &f {
                BayFinding::OccupiedWithoutSession { .. } => {
                    (core::FlagKind::OccupiedWithoutSession, None, None)
                }
                BayFinding::WrongBay { plate, session, .. } => (
                    core::FlagKind::WrongBay,
                    Some(plate.as_str()),
                    Some(session.as_str()),
                ),
            };
            let fid = st::insert_flag(
                tx,
                &st::NewFlag {
                    kind,
                    plate,
                    session_id: session,
                    gate: None,
                    detail: &f.explain(),
                    evidence: None,
                    now,
                },
            )
            .await?;
            let kind = kind.to_db();
            st::mark_bay_flagged(tx, f.space_id(), f.since()).await?;
            st::audit(
                tx,
                now,
                "system",
                AuditAction::FlagRaised,
                Some(&fid),
                Some(kind),
                Some(&serde_json::json!({ "space_id": f.space_id() })),
            )
            .await?;
            ids.push(fid);
        }
        Ok(ids)
    }
}
