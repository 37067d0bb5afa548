//! Entry: a plate at an entry gate (or an API entry) becomes a session, a
//! refusal or a duplicate, with its gate command and audit record.

use super::*;
use crate::core::{EntryDecision, ListMembership, Permit, Reservation};

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
        // The nearest free bays of each type are enough for the core to choose
        // from; only when that could wrongly look full is the whole list read.
        let mut full_scan = false;
        for _attempt in 0..MAX_ATTEMPTS {
            let mut tx = self.db().write().await?;
            let mut audit = st::AuditBatch::default();
            let mut snap = self.entry_snapshot(&mut tx, req, full_scan).await?;
            let (decision, session_id) = self
                .decide_and_claim(&mut tx, &mut audit, req, &mut snap)
                .await?;
            if snap.truncated && decision.reason == core::EntryReason::FullForVehicleType {
                full_scan = true;
                continue;
            }
            let case = EntryCase {
                req,
                gate: gate.as_deref(),
                snap: &snap,
                decision: &decision,
            };
            if let Some(sid) = session_id.as_deref().filter(|_| decision.opens_session()) {
                let opened = self.open_session(&mut tx, &mut audit, &case, sid).await?;
                if !opened {
                    // Another read of the same car won; decide again (→ duplicate).
                    continue;
                }
            }
            let out = self
                .record_entry(&mut tx, &mut audit, &case, session_id)
                .await?;
            tx.commit().await?;
            return Ok(out);
        }
        Err(ServiceError::Busy)
    }

    /// What the core needs to decide this entry, read in its transaction.
    async fn entry_snapshot(
        &self,
        tx: &mut st::Conn,
        req: &EntryRequest,
        full_scan: bool,
    ) -> Result<EntrySnapshot, ServiceError> {
        let (plate, now) = (&req.plate, req.at);
        let st::PlateFacts {
            lists,
            permits,
            vehicle_type: known_type,
        } = st::plate_facts(tx, plate).await?;
        let open_row = st::open_session_for(tx, plate).await?;
        let open = open_row
            .as_ref()
            .map(|r| r.to_open())
            .transpose()?
            .flatten();
        let res_row = match &req.reservation_id {
            Some(id) => {
                let r = st::reservation(tx, id)
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
            None => st::current_reservation_for(tx, plate, now).await?,
        };
        let reservation = res_row.as_ref().map(|r| r.to_core()).transpose()?.flatten();
        let vehicle_type = req
            .vehicle_type
            .unwrap_or(known_type.unwrap_or(VehicleType::Unknown));
        let held = st::held_spaces(tx, now, self.inner.settings.lead_ms()).await?;
        let (rows, truncated) = if full_scan {
            (st::available_spaces(tx).await?, false)
        } else {
            st::nearest_available_spaces(tx, 16 + held.len() as i64).await?
        };
        let mut spaces: Vec<Space> = rows
            .iter()
            .map(|r| r.to_core(held.iter().any(|h| h.0 == r.space_id)))
            .collect::<Result<_, _>>()?;
        // A checked-in booking's own bay (re-entry) is offered to it too.
        if let Some(r) = res_row.as_ref().filter(|r| r.status == "checked_in") {
            if !spaces.iter().any(|sp| sp.id.as_str() == r.space_id) {
                if let Some(row) = st::space(tx, &r.space_id)
                    .await?
                    .filter(|row| row.status == "available")
                {
                    spaces.push(row.to_core(true)?);
                }
            }
        }
        Ok(EntrySnapshot {
            lists,
            permits,
            open_row,
            open,
            reservation,
            vehicle_type,
            spaces,
            truncated,
        })
    }

    /// Asks the core, and claims the bay it assigned; a bay lost to another
    /// car is marked taken and the core asked again. Returns the decision
    /// and the session it opens (or, for a duplicate read, the open one).
    async fn decide_and_claim(
        &self,
        tx: &mut st::Conn,
        audit: &mut st::AuditBatch,
        req: &EntryRequest,
        snap: &mut EntrySnapshot,
    ) -> Result<(EntryDecision, Option<String>), ServiceError> {
        let now = req.at;
        loop {
            let decision = decide_entry(&EntryContext {
                policy: &self.inner.settings.policy,
                plate: &req.plate,
                read_confidence: req.confidence,
                vehicle_type: snap.vehicle_type,
                now,
                lists: snap.lists,
                permits: &snap.permits,
                open_session: snap.open.as_ref(),
                spaces: &snap.spaces,
                reservation: snap.reservation.as_ref(),
            });
            if !decision.opens_session() {
                let dup = decision.verdict == EntryVerdict::Duplicate;
                let open = snap.open.as_ref().filter(|_| dup).map(|o| o.id.to_string());
                return Ok((decision, open));
            }
            if let Some(old) = &decision.supersede_session {
                st::close_session(tx, &st::SessionEnd::superseded(old.as_str(), now)).await?;
                st::release_space_of(tx, old.as_str(), now).await?;
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
                if !st::claim_space(tx, space.as_str(), &sid, now).await? {
                    // Lost the race for this bay: the core picks again without it.
                    if let Some(sp) = snap.spaces.iter_mut().find(|sp| &sp.id == space) {
                        sp.status = SpaceStatus::Occupied;
                    }
                    continue;
                }
            }
            return Ok((decision, Some(sid)));
        }
    }

    /// Writes the admitted car's session (and checks its booking in).
    /// `false` when another read of the same car opened one first.
    async fn open_session(
        &self,
        tx: &mut st::Conn,
        audit: &mut st::AuditBatch,
        case: &EntryCase<'_>,
        sid: &str,
    ) -> Result<bool, ServiceError> {
        let EntryCase {
            req,
            gate,
            snap,
            decision,
        } = *case;
        let now = req.at;
        let space = snap.assigned(decision);
        let new = st::NewSession {
            id: sid,
            plate: &req.plate,
            vehicle_type: snap.vehicle_type,
            started: now,
            gate,
            read_id: req.source.read_id(),
            space: space.map(|sp| (sp.id.as_str(), sp.space_type)),
            reservation_id: decision.check_in_reservation.as_ref().map(|r| r.as_str()),
            reason: decision.reason.to_db(),
            currency: self.inner.settings.currency,
            evidence: req.evidence.as_ref(),
        };
        if let Err(e) = st::insert_session(tx, &new).await {
            if st::is_unique_violation(&e) {
                return Ok(false);
            }
            return Err(e.into());
        }
        if let Some(rid) = &decision.check_in_reservation {
            let moved = st::set_reservation_status(
                tx,
                rid.as_str(),
                ReservationStatus::Booked,
                ReservationStatus::CheckedIn,
                Some(sid),
                now,
            )
            .await?
                || st::set_reservation_status(
                    tx,
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
        Ok(true)
    }

    /// Records the decision (vehicle, gate decision, flags, audit) in the
    /// transaction and builds the reply.
    async fn record_entry(
        &self,
        tx: &mut st::Conn,
        audit: &mut st::AuditBatch,
        case: &EntryCase<'_>,
        session_id: Option<String>,
    ) -> Result<EntryOutcome, ServiceError> {
        let EntryCase {
            req,
            gate,
            snap,
            decision,
        } = *case;
        let gate = gate.map(String::from);
        let (plate, now) = (&req.plate, req.at);
        if decision.opens_session()
            || decision.verdict == EntryVerdict::Duplicate
            || req.vehicle_type.is_some()
        {
            st::upsert_vehicle(tx, plate, req.vehicle_type, now).await?;
        }
        let decision_id = st::new_id();
        let command = if decision.opens_gate() {
            "open"
        } else {
            "deny"
        };
        let action = if decision.opens_gate() {
            AuditAction::EntryAdmitted
        } else {
            AuditAction::EntryDenied
        };
        let detail = serde_json::json!({ "decision_id": decision_id, "verdict": decision.verdict, "space": decision.assigned_space, "gate": gate });
        let flag_ids = self
            .record_decision(
                tx,
                audit,
                DecisionRecord {
                    id: &decision_id,
                    direction: "entry",
                    gate: gate.as_deref(),
                    plate,
                    session_id: session_id.as_deref(),
                    command,
                    verdict: decision.verdict.to_db(),
                    reason: decision.reason.to_db(),
                    explanation: &decision.explanation,
                    amount: None,
                    source: &req.source,
                    evidence: req.evidence.as_ref(),
                    now,
                    flags: &decision.flags,
                    action,
                    detail,
                },
            )
            .await?;
        let outstanding_debts = st::open_debts_for(tx, plate.as_str()).await?;
        Ok(EntryOutcome {
            decision_id,
            license_plate: plate.to_string(),
            verdict: decision.verdict.to_db().to_string(),
            reason: decision.reason.to_db().to_string(),
            explanation: decision.explanation.clone(),
            gate,
            gate_command: command.into(),
            session_id,
            space: snap.space_ref(decision),
            reservation_id: decision
                .check_in_reservation
                .as_ref()
                .map(|r| r.to_string()),
            flags: flag_refs(&flag_ids, &decision.flags),
            outstanding_debts,
            offline: false,
            timestamp: now,
        })
    }
}

/// One entry being decided: the request, its gate, what was read and what
/// the core decided.
#[derive(Clone, Copy)]
struct EntryCase<'a> {
    req: &'a EntryRequest,
    gate: Option<&'a str>,
    snap: &'a EntrySnapshot,
    decision: &'a EntryDecision,
}

/// What an entry is decided on, read in the decision's transaction.
struct EntrySnapshot {
    lists: ListMembership,
    permits: Vec<Permit>,
    open_row: Option<st::SessionRow>,
    open: Option<OpenSession>,
    reservation: Option<Reservation>,
    vehicle_type: VehicleType,
    /// Free bays the core may choose from (those held for bookings marked).
    spaces: Vec<Space>,
    /// Only the nearest bays were read: "full" may be wrong.
    truncated: bool,
}

impl EntrySnapshot {
    fn assigned(&self, decision: &EntryDecision) -> Option<&Space> {
        let id = decision.assigned_space.as_ref()?;
        self.spaces.iter().find(|sp| &sp.id == id)
    }

    /// The bay to show the driver: the assigned one, or for a duplicate
    /// read the open session's.
    fn space_ref(&self, decision: &EntryDecision) -> Option<SpaceRef> {
        let assigned = self.assigned(decision).map(|sp| SpaceRef {
            space_id: sp.id.to_string(),
            level: sp.level.clone(),
            zone: sp.zone.clone(),
            space_type: sp.space_type.to_string(),
        });
        match (assigned, decision.verdict, self.open_row.as_ref()) {
            (None, EntryVerdict::Duplicate, Some(o)) => o.space_id.as_ref().map(|id| SpaceRef {
                space_id: id.clone(),
                level: String::new(),
                zone: String::new(),
                space_type: o.space_type.clone().unwrap_or_default(),
            }),
            (sp, _, _) => sp,
        }
    }
}
