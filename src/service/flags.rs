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

impl ParkingService {
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
