//! Block-, watch- and allow-lists and permits changed at run time.
//!
//! The site file seeds both at start-up (`source = config`); staff add and
//! remove entries through the API without a restart (`source = api`). A
//! restart re-seeds only the config's own entries, so run-time changes
//! survive it, and an entry that comes from the config can only be changed
//! in the config (otherwise the next restart would silently undo the API's
//! change). Every change is audited and refreshes the in-memory cache the
//! gates decide from while the database is down.

use super::{invalid, not_found, setup, ParkingService, ServiceError};
use crate::config::PermitConfig;
use crate::core::AuditAction;
use crate::core::Plate;
use crate::store::{self as st, ListEntryRow, PermitRow};
use chrono::{DateTime, Utc};

/// The lists a plate can be put on.
pub const LISTS: [&str; 3] = ["blocked", "watched", "allowed"];

/// Checks a list name (the API's path segment).
pub fn list_name(list: &str) -> Result<&'static str, ServiceError> {
    LISTS.into_iter().find(|l| *l == list).ok_or_else(|| {
        invalid(
            "unknown_list",
            "list",
            format!("`{list}` is not a list; use blocked, watched or allowed"),
        )
    })
}

fn config_managed(what: &str) -> ServiceError {
    ServiceError::Conflict {
        code: "config_managed",
        message: format!("{what} comes from the site configuration; change it there"),
    }
}

impl ParkingService {
    /// List entries, optionally of one list and/or one plate.
    pub async fn list_entries(
        &self,
        list: Option<&str>,
        plate: Option<&Plate>,
    ) -> Result<Vec<ListEntryRow>, ServiceError> {
        let list = list.map(list_name).transpose()?;
        let mut c = self.db().read().await?;
        Ok(st::list_entry_rows(&mut c, list, plate.map(|p| p.as_str())).await?)
    }

    /// Puts a plate on a list (idempotent: a repeat updates the reason).
    pub async fn add_to_list(
        &self,
        list: &str,
        plate: &Plate,
        reason: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<ListEntryRow, ServiceError> {
        let list = list_name(list)?;
        let mut tx = self.db().write().await?;
        let before = st::list_entry(&mut tx, list, plate.as_str()).await?;
        if before.as_ref().is_some_and(|e| e.source == "config") {
            return Err(config_managed(&format!("{plate} on the {list} list")));
        }
        st::put_list_entry(&mut tx, list, plate.as_str(), reason, now).await?;
        let action = if before.is_some() {
            AuditAction::ListEntryUpdated
        } else {
            AuditAction::ListEntryAdded
        };
        st::audit(
            &mut tx,
            now,
            actor,
            action,
            Some(plate.as_str()),
            reason,
            Some(&serde_json::json!({ "list": list })),
        )
        .await?;
        let entry = st::list_entry(&mut tx, list, plate.as_str())
            .await?
            .ok_or_else(|| not_found("list_entry", plate.as_str()))?;
        tx.commit().await?;
        self.refresh_offline_cache().await?;
        Ok(entry)
    }

    /// Takes a plate off a list; returns the entry that was removed.
    pub async fn remove_from_list(
        &self,
        list: &str,
        plate: &Plate,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<ListEntryRow, ServiceError> {
        let list = list_name(list)?;
        let mut tx = self.db().write().await?;
        let entry = st::list_entry(&mut tx, list, plate.as_str())
            .await?
            .ok_or_else(|| not_found("list_entry", &format!("{list}/{plate}")))?;
        if entry.source == "config" {
            return Err(config_managed(&format!("{plate} on the {list} list")));
        }
        st::delete_list_entry(&mut tx, list, plate.as_str()).await?;
        st::audit(
            &mut tx,
            now,
            actor,
            AuditAction::ListEntryRemoved,
            Some(plate.as_str()),
            entry.reason.as_deref(),
            Some(&serde_json::json!({ "list": list })),
        )
        .await?;
        tx.commit().await?;
        self.refresh_offline_cache().await?;
        Ok(entry)
    }

    /// Stored permits, of one plate or all.
    pub async fn permit_list(&self, plate: Option<&Plate>) -> Result<Vec<PermitRow>, ServiceError> {
        let mut c = self.db().read().await?;
        Ok(st::permit_rows(&mut c, plate.map(|p| p.as_str())).await?)
    }

    /// Issues a permit (its `id` is generated when empty); the same rules as
    /// the site file's `[[permits]]`.
    pub async fn issue_permit(
        &self,
        mut req: PermitConfig,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<PermitRow, ServiceError> {
        if req.id.trim().is_empty() {
            req.id = format!("P-{}", &st::new_id()[..12]);
        }
        let permit = setup::permit(&req)
            .map_err(|(field, message)| invalid("invalid_permit", field, message))?;
        let mut tx = self.db().write().await?;
        if st::permit_by_id(&mut tx, permit.id.as_str())
            .await?
            .is_some()
        {
            return Err(ServiceError::Conflict {
                code: "permit_exists",
                message: format!(
                    "permit `{}` already exists; revoke it first or use another id",
                    permit.id
                ),
            });
        }
        st::upsert_permit(&mut tx, &permit, "api", now).await?;
        let detail = serde_json::to_value(&permit).ok();
        st::audit(
            &mut tx,
            now,
            actor,
            AuditAction::PermitIssued,
            Some(permit.plate.as_str()),
            None,
            detail.as_ref(),
        )
        .await?;
        let row = st::permit_by_id(&mut tx, permit.id.as_str())
            .await?
            .ok_or_else(|| not_found("permit", permit.id.as_str()))?;
        tx.commit().await?;
        self.refresh_offline_cache().await?;
        Ok(row)
    }

    /// Revokes (deletes) a permit issued at run time; returns it.
    pub async fn revoke_permit(
        &self,
        id: &str,
        reason: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<PermitRow, ServiceError> {
        let mut tx = self.db().write().await?;
        let row = st::permit_by_id(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("permit", id))?;
        if row.source == "config" {
            return Err(config_managed(&format!("permit `{id}`")));
        }
        st::delete_permit(&mut tx, id).await?;
        st::audit(
            &mut tx,
            now,
            actor,
            AuditAction::PermitRevoked,
            Some(row.permit.plate.as_str()),
            reason,
            Some(&serde_json::json!({ "permit_id": id })),
        )
        .await?;
        tx.commit().await?;
        self.refresh_offline_cache().await?;
        Ok(row)
    }
}
