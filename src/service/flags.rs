//! Flags for staff: raised by the use cases, listed and updated through
//! the API.

use super::*;

/// Where and when the flags of one decision were raised.
pub(super) struct FlagScene<'a> {
    pub plate: &'a Plate,
    pub session: Option<&'a str>,
    pub gate: Option<&'a str>,
    /// The read's evidence (crop, frame, confidences), for the reviewer.
    pub evidence: Option<&'a serde_json::Value>,
    pub now: DateTime<Utc>,
}

/// A gate decision as it is recorded: its row, the flags it raised and its
/// audit record, all in the decision's transaction.
pub(super) struct DecisionRecord<'a> {
    pub id: &'a str,
    /// `entry` or `exit`.
    pub direction: &'static str,
    pub gate: Option<&'a str>,
    pub plate: &'a Plate,
    pub session_id: Option<&'a str>,
    /// `open` or `deny`.
    pub command: &'static str,
    pub verdict: &'a str,
    pub reason: &'static str,
    pub explanation: &'a str,
    pub amount: Option<i64>,
    pub source: &'a Source,
    pub evidence: Option<&'a serde_json::Value>,
    pub now: DateTime<Utc>,
    pub flags: &'a [RaisedFlag],
    pub action: AuditAction,
    pub detail: serde_json::Value,
}

impl ParkingService {
    /// Writes a gate decision, its flags and its audit record (the batch is
    /// written out with it); returns the new flags' ids.
    pub(super) async fn record_decision(
        &self,
        tx: &mut st::Conn,
        audit: &mut st::AuditBatch,
        rec: DecisionRecord<'_>,
    ) -> Result<Vec<String>, ServiceError> {
        let row = st::GateDecisionRow {
            decision_id: rec.id.into(),
            gate: rec.gate.map(String::from),
            direction: rec.direction.into(),
            license_plate: rec.plate.to_string(),
            session_id: rec.session_id.map(String::from),
            command: rec.command.into(),
            verdict: rec.verdict.into(),
            reason: rec.reason.into(),
            explanation: rec.explanation.into(),
            amount: rec.amount,
            read_id: rec.source.read_id().map(String::from),
            source: rec.source.kind().into(),
            decided_at: rec.now,
            ack_state: None,
            acked_at: None,
            attempts: 0,
        };
        st::insert_gate_decision(tx, &row).await?;
        let scene = FlagScene {
            plate: rec.plate,
            session: rec.session_id,
            gate: rec.gate,
            evidence: rec.evidence,
            now: rec.now,
        };
        let flag_ids = self.raise_flags(tx, audit, rec.flags, scene).await?;
        audit.push(
            rec.now,
            &rec.source.actor(),
            rec.action,
            Some(rec.plate.as_str()),
            Some(rec.reason),
            Some(&rec.detail),
        );
        std::mem::take(audit).write(tx).await?;
        Ok(flag_ids)
    }

    /// Writes the core's flags with their audit records, in the decision's
    /// transaction; returns the new flags' ids.
    pub(super) async fn raise_flags(
        &self,
        tx: &mut st::Conn,
        audit: &mut st::AuditBatch,
        flags: &[RaisedFlag],
        scene: FlagScene<'_>,
    ) -> Result<Vec<String>, st::StoreError> {
        let FlagScene {
            plate,
            session,
            gate,
            evidence,
            now,
        } = scene;
        let mut ids = Vec::new();
        for f in flags {
            let kind = f.kind.to_db();
            let id = st::insert_flag(
                tx,
                &st::NewFlag {
                    kind: f.kind,
                    plate: Some(plate.as_str()),
                    session_id: session,
                    gate,
                    detail: &f.detail,
                    evidence,
                    now,
                },
            )
            .await?;
            audit.push(
                now,
                "system",
                AuditAction::FlagRaised,
                Some(&id),
                Some(kind),
                Some(&serde_json::json!({ "plate": plate, "detail": f.detail })),
            );
            ids.push(id);
        }
        Ok(ids)
    }

    pub async fn flags(
        &self,
        status: Option<&str>,
        kind: Option<&str>,
        plate: Option<&str>,
        limit: i64,
    ) -> Result<Vec<st::FlagRow>, ServiceError> {
        let mut c = self.db().read().await?;
        Ok(st::flags(&mut c, status, kind, plate, limit).await?)
    }

    /// Moves a flag along its workflow (the core says which moves are allowed).
    pub async fn update_flag(
        &self,
        id: &str,
        to: FlagStatus,
        note: Option<&str>,
        by: &str,
    ) -> Result<st::FlagRow, ServiceError> {
        let now = Utc::now();
        let mut tx = self.db().write().await?;
        let flag = st::flag(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("flag", id))?;
        let from: FlagStatus =
            serde_json::from_value(serde_json::Value::String(flag.status.clone()))
                .map_err(|_| ServiceError::Busy)?;
        from.transition(to).map_err(|e| ServiceError::Conflict {
            code: "invalid_transition",
            message: e.to_string(),
        })?;
        if !st::update_flag(&mut tx, id, &flag.status, to.to_db(), by, note, now).await? {
            return Err(ServiceError::Conflict {
                code: "concurrent_update",
                message: "the flag changed meanwhile; reload it".into(),
            });
        }
        let action = if to == FlagStatus::Resolved {
            AuditAction::FlagResolved
        } else {
            AuditAction::FlagAcknowledged
        };
        st::audit(&mut tx, now, by, action, Some(id), note, None).await?;
        let out = st::flag(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("flag", id))?;
        tx.commit().await?;
        Ok(out)
    }
}
