//! Entry: a plate at an entry gate (or an API entry) becomes a session, a
//! refusal or a duplicate, with its gate command and audit record.

use super::*;

#[derive(Debug, Clone)]
pub struct EntryRequest {
    pub plate: Plate,
    pub vehicle_type: Option<VehicleType>,
    pub reservation_id: Option<String>,
    pub gate: Option<String>,
    pub at: DateTime<Utc>,
    pub confidence: f64,
    pub evidence: Option<serde_json::Value>,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub struct EntryOutcome {
    pub decision_id: String,
    pub license_plate: String,
    /// `admit`, `duplicate` or `deny`.
    pub verdict: String,
    pub reason: String,
    pub explanation: String,
    pub gate: Option<String>,
    /// `open` or `deny`.
    pub gate_command: String,
    pub session_id: Option<String>,
    pub space: Option<SpaceRef>,
    pub reservation_id: Option<String>,
    pub flags: Vec<FlagRef>,
    /// Money still owed from earlier visits.
    pub outstanding_debts: Vec<st::DebtRow>,
    /// Decided from the in-memory cache because the database was down.
    pub offline: bool,
    pub timestamp: DateTime<Utc>,
}

impl ParkingService {
    /// Decides an entry (camera or API), opens the session and assigns the
    /// bay atomically, records and audits it, then commands the gate.
    pub async fn entry(&self, req: EntryRequest) -> Result<EntryOutcome, ServiceError> {
        let gate = req.gate.clone().or_else(|| self.default_gate());
        let out = match self.entry_db(&req, gate.clone()).await {
            Err(ServiceError::Unavailable(why)) => {
                tracing::warn!(plate = %req.plate, %why, "database unavailable: offline entry decision");
                self.entry_offline(&req, gate)
            }
            other => other?,
        };
        self.command_gate(
            GateOrder {
                direction: "entry",
                decision_id: &out.decision_id,
                gate: out.gate.as_deref(),
                plate: &out.license_plate,
                session: out.session_id.as_deref(),
                command: &out.gate_command,
                reason: &out.reason,
            },
            {
                GateDisplay {
                    plate: out.license_plate.clone(),
                    verdict: out.verdict.clone(),
                    reason: out.reason.clone(),
                    message: out.explanation.clone(),
                    space_id: out.space.as_ref().map(|s| s.space_id.clone()),
                    level: out.space.as_ref().map(|s| s.level.clone()),
                    zone: out.space.as_ref().map(|s| s.zone.clone()),
                    amount_due: None,
                }
            },
        )
        .await;
        Ok(out)
    }

    pub(super) async fn entry_db(
        &self,
        req: &EntryRequest,
        gate: Option<String>,
    ) -> Result<EntryOutcome, ServiceError> {
        let s = &self.inner.settings;
        let now = req.at;
        let plate = &req.plate;
        // The nearest free bays of each type are enough for the core to choose
        // from; only when that could wrongly look full is the whole list read.
        let mut full_scan = false;
        for _attempt in 0..MAX_ATTEMPTS {
            let mut tx = self.db().write().await?;
            let mut audit = st::AuditBatch::default();
            let st::PlateFacts {
                lists,
                permits,
                vehicle_type: known_type,
            } = st::plate_facts(&mut tx, plate).await?;
            let open_row = st::open_session_for(&mut tx, plate).await?;
            let open = open_row
                .as_ref()
                .map(|r| r.to_open())
                .transpose()?
                .flatten();
            let res_row = match &req.reservation_id {
                Some(id) => {
                    let r = st::reservation(&mut tx, id)
                        .await?
                        .ok_or_else(|| not_found("reservation", id))?;
                    if r.license_plate != plate.as_str() {
                        return Err(invalid(
                            "reservation_plate_mismatch",
                            "reservation_id",
                            format!("reservation {id} is for another plate"),
                        ));
                    }
                    Some(r)
                }
                None => st::current_reservation_for(&mut tx, plate, now).await?,
            };
            let reservation = res_row.as_ref().map(|r| r.to_core()).transpose()?.flatten();
            let vehicle_type = match req.vehicle_type {
                Some(v) => v,
                None => known_type.unwrap_or(VehicleType::Unknown),
            };
            let held = st::held_spaces(&mut tx, now, s.lead_ms()).await?;
            let (rows, truncated) = if full_scan {
                (st::available_spaces(&mut tx).await?, false)
            } else {
                st::nearest_available_spaces(&mut tx, 16 + held.len() as i64).await?
            };
            let mut spaces: Vec<Space> = rows
                .iter()
                .map(|r| r.to_core(held.iter().any(|h| h.0 == r.space_id)))
                .collect::<Result<_, _>>()?;
            // A checked-in booking's own bay (re-entry) is offered to it too.
            if let Some(r) = res_row.as_ref().filter(|r| r.status == "checked_in") {
                if !spaces.iter().any(|sp| sp.id.as_str() == r.space_id) {
                    if let Some(row) = st::space(&mut tx, &r.space_id)
                        .await?
                        .filter(|row| row.status == "available")
                    {
                        spaces.push(row.to_core(true)?);
                    }
                }
            }

            let (decision, session_id) = loop {
                let decision = decide_entry(&EntryContext {
                    policy: &s.policy,
                    plate,
                    read_confidence: req.confidence,
                    vehicle_type,
                    now,
                    lists,
                    permits: &permits,
                    open_session: open.as_ref(),
                    spaces: &spaces,
                    reservation: reservation.as_ref(),
                });
                if !decision.opens_session() {
                    let dup = decision.verdict == EntryVerdict::Duplicate;
                    break (
                        decision,
                        open.as_ref().filter(|_| dup).map(|o| o.id.to_string()),
                    );
                }
                if let Some(old) = &decision.supersede_session {
                    st::close_session(&mut tx, &st::SessionEnd::superseded(old.as_str(), now))
                        .await?;
                    st::release_space_of(&mut tx, old.as_str(), now).await?;
                    audit.push(
                        now,
                        &req.source.actor(),
                        AuditAction::SessionClosed,
                        Some(old.as_str()),
                        Some("superseded"),
                        None,
                    );
                }
                let sid = st::new_id();
                if let Some(space) = &decision.assigned_space {
                    if !st::claim_space(&mut tx, space.as_str(), &sid, now).await? {
                        // Lost the race for this bay: the core picks again without it.
                        if let Some(sp) = spaces.iter_mut().find(|sp| &sp.id == space) {
                            sp.status = SpaceStatus::Occupied;
                        }
                        continue;
                    }
                }
                break (decision, Some(sid));
            };

            if truncated && decision.reason == core::EntryReason::FullForVehicleType {
                drop(tx);
                full_scan = true;
                continue;
            }
            let admitted = decision.opens_session();
            if admitted {
                let sid = session_id.as_deref().unwrap_or_default();
                let space = decision
                    .assigned_space
                    .as_ref()
                    .and_then(|id| spaces.iter().find(|sp| &sp.id == id));
                let new = st::NewSession {
                    id: sid,
                    plate,
                    vehicle_type,
                    started: now,
                    gate: gate.as_deref(),
                    read_id: req.source.read_id(),
                    space: space.map(|sp| (sp.id.as_str(), sp.space_type)),
                    reservation_id: decision.check_in_reservation.as_ref().map(|r| r.as_str()),
                    reason: decision.reason.to_db(),
                    currency: s.currency,
                    evidence: req.evidence.as_ref(),
                };
                if let Err(e) = st::insert_session(&mut tx, &new).await {
                    if st::is_unique_violation(&e) {
                        // Another read of the same car won; decide again (→ duplicate).
                        drop(tx);
                        continue;
                    }
                    return Err(e.into());
                }
                if let Some(rid) = &decision.check_in_reservation {
                    let moved = st::set_reservation_status(
                        &mut tx,
                        rid.as_str(),
                        ReservationStatus::Booked,
                        ReservationStatus::CheckedIn,
                        Some(sid),
                        now,
                    )
                    .await?
                        || st::set_reservation_status(
                            &mut tx,
                            rid.as_str(),
                            ReservationStatus::CheckedIn,
                            ReservationStatus::CheckedIn,
                            Some(sid),
                            now,
                        )
                        .await?;
                    if moved {
                        audit.push(
                            now,
                            &req.source.actor(),
                            AuditAction::ReservationCheckedIn,
                            Some(rid.as_str()),
                            None,
                            Some(&serde_json::json!({ "session_id": sid })),
                        );
                    }
                }
                audit.push(
                    now,
                    &req.source.actor(),
                    AuditAction::SessionOpened,
                    Some(sid),
                    Some(decision.reason.to_db()),
                    None,
                );
            }
            if admitted || decision.verdict == EntryVerdict::Duplicate || req.vehicle_type.is_some()
            {
                st::upsert_vehicle(&mut tx, plate, req.vehicle_type, now).await?;
            }
            let decision_id = st::new_id();
            let command = if decision.opens_gate() {
                "open"
            } else {
                "deny"
            };
            st::insert_gate_decision(
                &mut tx,
                &st::GateDecisionRow {
                    decision_id: decision_id.clone(),
                    gate: gate.clone(),
                    direction: "entry".into(),
                    license_plate: plate.to_string(),
                    session_id: session_id.clone(),
                    command: command.into(),
                    verdict: decision.verdict.to_db().to_string(),
                    reason: decision.reason.to_db().to_string(),
                    explanation: decision.explanation.clone(),
                    amount: None,
                    read_id: req.source.read_id().map(String::from),
                    source: req.source.kind().into(),
                    decided_at: now,
                    ack_state: None,
                    acked_at: None,
                    attempts: 0,
                },
            )
            .await?;
            let flag_ids = self
                .raise_flags(
                    &mut tx,
                    &mut audit,
                    &decision.flags,
                    FlagScene {
                        plate,
                        session: session_id.as_deref(),
                        gate: gate.as_deref(),
                        evidence: req.evidence.as_ref(),
                        now,
                    },
                )
                .await?;
            let action = if decision.opens_gate() {
                AuditAction::EntryAdmitted
            } else {
                AuditAction::EntryDenied
            };
            let detail = serde_json::json!({ "decision_id": decision_id, "verdict": decision.verdict, "space": decision.assigned_space, "gate": gate });
            audit.push(
                now,
                &req.source.actor(),
                action,
                Some(plate.as_str()),
                Some(decision.reason.to_db()),
                Some(&detail),
            );
            audit.write(&mut tx).await?;
            let debts = st::open_debts_for(&mut tx, plate.as_str()).await?;
            tx.commit().await?;

            let space = decision
                .assigned_space
                .as_ref()
                .and_then(|id| spaces.iter().find(|sp| &sp.id == id))
                .map(|sp| SpaceRef {
                    space_id: sp.id.to_string(),
                    level: sp.level.clone(),
                    zone: sp.zone.clone(),
                    space_type: sp.space_type.to_string(),
                });
            let space = match (space, decision.verdict, open_row.as_ref()) {
                (None, EntryVerdict::Duplicate, Some(o)) => {
                    o.space_id.as_ref().map(|id| SpaceRef {
                        space_id: id.clone(),
                        level: String::new(),
                        zone: String::new(),
                        space_type: o.space_type.clone().unwrap_or_default(),
                    })
                }
                (sp, _, _) => sp,
            };
            return Ok(EntryOutcome {
                decision_id,
                license_plate: plate.to_string(),
                verdict: decision.verdict.to_db().to_string(),
                reason: decision.reason.to_db().to_string(),
                explanation: decision.explanation.clone(),
                gate,
                gate_command: command.into(),
                session_id,
                space,
                reservation_id: decision
                    .check_in_reservation
                    .as_ref()
                    .map(|r| r.to_string()),
                flags: flag_refs(&flag_ids, &decision.flags),
                outstanding_debts: debts,
                offline: false,
                timestamp: now,
            });
        }
        Err(ServiceError::Busy)
    }
}
