//! "Gates keep working when the database is down."
//!
//! The service keeps an in-memory copy of the plate lists and permits
//! (refreshed every 30 s and at start-up). When a gate decision cannot reach
//! the database (no connection within [`crate::store::ACQUIRE_DEADLINE`]), the
//! core's offline rules ([`crate::core::offline`]) decide from that copy:
//! permit and allow-list plates enter (no bay assigned), fee-covering permits
//! leave, everyone else waits for staff. Each such decision is queued in
//! memory and written (gate decision, flags, audit, and for an admitted car
//! its session) when the database answers again. A process that dies while
//! the database is down loses that queue; the gate log on the broker is the
//! remaining record.

use super::{
    flag_refs, EntryOutcome, EntryRequest, ExitOutcome, ExitRequest, FlagScene, ParkingService,
    ServiceError,
};
use crate::core::AuditAction;
use crate::core::{
    decide_offline_entry, decide_offline_exit, ListMembership, Permit, Plate, RaisedFlag,
    VehicleType,
};
use crate::store::{self as st, DbText};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Offline {
    cache: Mutex<Cache>,
    queue: Mutex<Vec<Queued>>,
}

#[derive(Default)]
struct Cache {
    lists: HashMap<Plate, ListMembership>,
    permits: Vec<Permit>,
}

struct Queued {
    decision: st::GateDecisionRow,
    flags: Vec<RaisedFlag>,
    open_session: bool,
    actor: String,
}

impl ParkingService {
    /// Reloads the lists and permits used when the database is down.
    pub async fn refresh_offline_cache(&self) -> Result<(), ServiceError> {
        let mut c = self.db().read().await?;
        let entries = st::all_list_entries(&mut c).await?;
        let permits = st::all_permits(&mut c).await?;
        let mut lists: HashMap<Plate, ListMembership> = HashMap::new();
        for (plate, list) in entries {
            let Ok(p) = Plate::parse(&plate) else {
                continue;
            };
            let m = lists.entry(p).or_default();
            match list.as_str() {
                "blocked" => m.blocked = true,
                "watched" => m.watched = true,
                "allowed" => m.allowed = true,
                _ => {}
            }
        }
        *self.inner.offline.cache.lock().expect("offline cache") = Cache { lists, permits };
        Ok(())
    }

    /// Offline decisions waiting to be written.
    pub fn offline_backlog(&self) -> usize {
        self.inner
            .offline
            .queue
            .lock()
            .expect("offline queue")
            .len()
    }

    /// Hands this service's queued offline decisions to `other` (a service
    /// rebuilt over a new pool).
    pub fn adopt_offline_into(&self, other: &ParkingService) {
        let q = std::mem::take(&mut *self.inner.offline.queue.lock().expect("offline queue"));
        other
            .inner
            .offline
            .queue
            .lock()
            .expect("offline queue")
            .extend(q);
    }

    fn queue(&self, q: Queued) {
        self.inner
            .offline
            .queue
            .lock()
            .expect("offline queue")
            .push(q);
    }

    pub(super) fn entry_offline(&self, req: &EntryRequest, gate: Option<String>) -> EntryOutcome {
        let s = &self.inner.settings;
        let d = {
            let cache = self.inner.offline.cache.lock().expect("offline cache");
            let lists = cache.lists.get(&req.plate).copied().unwrap_or_default();
            decide_offline_entry(&s.policy, &req.plate, lists, &cache.permits, req.at)
        };
        let decision_id = st::new_id();
        let command = if d.opens_gate() { "open" } else { "deny" };
        self.queue(Queued {
            decision: st::GateDecisionRow {
                decision_id: decision_id.clone(),
                gate: gate.clone(),
                direction: "entry".into(),
                license_plate: req.plate.to_string(),
                session_id: None,
                command: command.into(),
                verdict: d.verdict.to_db().to_string(),
                reason: d.reason.to_db().to_string(),
                explanation: d.explanation.clone(),
                amount: None,
                read_id: req.source.read_id().map(String::from),
                source: "offline".into(),
                decided_at: req.at,
                ack_state: None,
                acked_at: None,
                attempts: 0,
            },
            flags: d.flags.clone(),
            open_session: d.opens_session(),
            actor: req.source.actor(),
        });
        EntryOutcome {
            decision_id,
            license_plate: req.plate.to_string(),
            verdict: d.verdict.to_db().to_string(),
            reason: d.reason.to_db().to_string(),
            explanation: d.explanation.clone(),
            gate,
            gate_command: command.into(),
            session_id: None,
            space: None,
            reservation_id: None,
            flags: flag_refs(&vec![String::new(); d.flags.len()], &d.flags),
            outstanding_debts: Vec::new(),
            offline: true,
            timestamp: req.at,
        }
    }

    pub(super) fn exit_offline(&self, req: &ExitRequest, gate: Option<String>) -> ExitOutcome {
        let s = &self.inner.settings;
        let d = {
            let cache = self.inner.offline.cache.lock().expect("offline cache");
            decide_offline_exit(&s.policy, &req.plate, &cache.permits, s.currency, req.at)
        };
        let decision_id = st::new_id();
        let (verdict, command) = if d.opens_gate() {
            ("open", "open")
        } else {
            ("hold", "deny")
        };
        self.queue(Queued {
            decision: st::GateDecisionRow {
                decision_id: decision_id.clone(),
                gate: gate.clone(),
                direction: "exit".into(),
                license_plate: req.plate.to_string(),
                session_id: None,
                command: command.into(),
                verdict: verdict.into(),
                reason: d.reason.to_db().to_string(),
                explanation: d.explanation.clone(),
                amount: None,
                read_id: req.source.read_id().map(String::from),
                source: "offline".into(),
                decided_at: req.at,
                ack_state: None,
                acked_at: None,
                attempts: 0,
            },
            flags: d.flags.clone(),
            open_session: false,
            actor: req.source.actor(),
        });
        ExitOutcome {
            decision_id,
            license_plate: req.plate.to_string(),
            verdict: verdict.into(),
            reason: d.reason.to_db().to_string(),
            explanation: d.explanation.clone(),
            gate,
            gate_command: command.into(),
            match_kind: "none".into(),
            session_id: None,
            matched_plate: None,
            amount_due: 0,
            currency: s.currency.to_string(),
            fee: None,
            debt_id: None,
            refunds: Vec::new(),
            flags: flag_refs(&vec![String::new(); d.flags.len()], &d.flags),
            offline: true,
            timestamp: req.at,
        }
    }

    /// Writes queued offline decisions once the database answers. Returns how many were written.
    pub async fn flush_offline(&self) -> Result<usize, ServiceError> {
        let batch: Vec<Queued> =
            std::mem::take(&mut *self.inner.offline.queue.lock().expect("offline queue"));
        if batch.is_empty() {
            return Ok(0);
        }
        let result = self.write_offline(&batch).await;
        if result.is_err() {
            // Put them back in front of anything queued meanwhile.
            let mut q = self.inner.offline.queue.lock().expect("offline queue");
            let later = std::mem::take(&mut *q);
            *q = batch;
            q.extend(later);
        }
        result
    }

    async fn write_offline(&self, batch: &[Queued]) -> Result<usize, ServiceError> {
        let s = &self.inner.settings;
        let mut tx = self.db().write().await?;
        for q in batch {
            let d = &q.decision;
            let plate = Plate::parse(&d.license_plate)?;
            let mut row = d.clone();
            if q.open_session && st::open_session_for(&mut tx, &plate).await?.is_none() {
                let sid = st::new_id();
                st::insert_session(
                    &mut tx,
                    &st::NewSession {
                        id: &sid,
                        plate: &plate,
                        vehicle_type: VehicleType::Unknown,
                        started: d.decided_at,
                        gate: d.gate.as_deref(),
                        read_id: d.read_id.as_deref(),
                        space: None,
                        reservation_id: None,
                        reason: &d.reason,
                        currency: s.currency,
                        evidence: None,
                    },
                )
                .await?;
                st::audit(
                    &mut tx,
                    d.decided_at,
                    &q.actor,
                    AuditAction::SessionOpened,
                    Some(&sid),
                    Some("offline"),
                    None,
                )
                .await?;
                row.session_id = Some(sid);
            }
            st::insert_gate_decision(&mut tx, &row).await?;
            let mut audit = st::AuditBatch::default();
            self.raise_flags(
                &mut tx,
                &mut audit,
                &q.flags,
                FlagScene {
                    plate: &plate,
                    session: row.session_id.as_deref(),
                    gate: d.gate.as_deref(),
                    evidence: None,
                    now: d.decided_at,
                },
            )
            .await?;
            let action = match (d.direction.as_str(), d.command.as_str()) {
                ("entry", "open") => AuditAction::EntryAdmitted,
                ("entry", _) => AuditAction::EntryDenied,
                (_, "open") => AuditAction::ExitOpened,
                _ => AuditAction::ExitHeld,
            };
            let detail = serde_json::json!({ "decision_id": d.decision_id, "offline": true, "gate": d.gate });
            audit.push(
                d.decided_at,
                &q.actor,
                action,
                Some(&d.license_plate),
                Some(&d.reason),
                Some(&detail),
            );
            audit.write(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(batch.len())
    }
}
