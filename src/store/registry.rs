//! Registries an operator keeps: permits, block/watch/allow lists and API keys.

use crate::core::{ListMembership, Permit, Plate};
use chrono::{DateTime, Utc};

use super::codec::*;
use super::exec::Conn;
use super::StoreError;

use super::sql::{self, Row};
use super::R;

pub async fn sync_permits(conn: &mut Conn, permits: &[Permit], now: DateTime<Utc>) -> R<()> {
    sql::query("DELETE FROM permits WHERE source = 'config'")
        .execute(conn.ex())
        .await?;
    for p in permits {
        upsert_permit(conn, p, "config", now).await?;
    }
    Ok(())
}

/// Writes a permit (by id) with where it came from (`config` or `api`).
pub async fn upsert_permit(conn: &mut Conn, p: &Permit, source: &str, now: DateTime<Utc>) -> R<()> {
    sql::query(
        "INSERT INTO permits (id, plate, kind, valid_from, valid_until, permit_json, source, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO UPDATE SET plate = excluded.plate, kind = excluded.kind, valid_from = excluded.valid_from, \
         valid_until = excluded.valid_until, permit_json = excluded.permit_json, source = excluded.source, updated_ms = excluded.updated_ms",
    )
    .bind(p.id.as_str())
    .bind(p.plate.as_str())
    .bind(p.kind.to_db())
    .bind(p.valid_from.to_string())
    .bind(p.valid_until.map(|d| d.to_string()))
    .bind(to_json("a permit", p)?)
    .bind(source)
    .bind(ms(now))
    .execute(conn.ex())
    .await?;
    Ok(())
}

/// A stored permit with its provenance, as the API lists it.
#[derive(Debug, Clone)]
pub struct PermitRow {
    pub permit: Permit,
    /// `config` (seeded from the site file) or `api` (issued at run time).
    pub source: String,
    pub updated_at: DateTime<Utc>,
}

fn permit_row(r: &Row) -> R<PermitRow> {
    let c = r.of("permits");
    Ok(PermitRow {
        permit: c.json("permit_json")?,
        source: c.get("source")?,
        updated_at: c.instant("updated_ms")?,
    })
}

/// Stored permits, of one plate or all, by plate then id.
pub async fn permit_rows(conn: &mut Conn, plate: Option<&str>) -> R<Vec<PermitRow>> {
    let rows = sql::query("SELECT permit_json, source, updated_ms FROM permits WHERE ($1 IS NULL OR plate = $1) ORDER BY plate, id")
        .bind(plate)
        .fetch_all(conn.ex())
        .await?;
    rows.iter().map(permit_row).collect()
}

/// One stored permit.
pub async fn permit_by_id(conn: &mut Conn, id: &str) -> R<Option<PermitRow>> {
    let row = sql::query("SELECT permit_json, source, updated_ms FROM permits WHERE id = $1")
        .bind(id)
        .fetch_optional(conn.ex())
        .await?;
    row.as_ref().map(permit_row).transpose()
}

/// Deletes a permit; whether it existed.
pub async fn delete_permit(conn: &mut Conn, id: &str) -> R<bool> {
    Ok(sql::query("DELETE FROM permits WHERE id = $1")
        .bind(id)
        .execute(conn.ex())
        .await?
        .rows_affected()
        > 0)
}

/// Replaces the config-sourced list entries.
pub async fn sync_lists(
    conn: &mut Conn,
    entries: &[(Plate, &'static str)],
    now: DateTime<Utc>,
) -> R<()> {
    sql::query("DELETE FROM plate_lists WHERE source = 'config'")
        .execute(conn.ex())
        .await?;
    for (plate, list) in entries {
        sql::query(
            "INSERT INTO plate_lists (plate, list, reason, source, added_ms) VALUES ($1, $2, NULL, 'config', $3) \
             ON CONFLICT (plate, list) DO NOTHING",
        )
        .bind(plate.as_str())
        .bind(*list)
        .bind(ms(now))
        .execute(conn.ex())
        .await?;
    }
    Ok(())
}

/// A block-, watch- or allow-list entry, as the API lists it.
#[derive(Debug, Clone)]
pub struct ListEntryRow {
    pub license_plate: String,
    /// `blocked`, `watched` or `allowed`.
    pub list: String,
    pub reason: Option<String>,
    /// `config` (seeded from the site file) or `api` (added at run time).
    pub source: String,
    pub added_at: DateTime<Utc>,
}

fn list_entry_row(r: &Row) -> R<ListEntryRow> {
    let c = r.of(LISTS);
    Ok(ListEntryRow {
        license_plate: c.get(0)?,
        list: list_name(c.get(1)?)?,
        reason: c.get(2)?,
        source: c.get(3)?,
        added_at: c.instant(4)?,
    })
}

const LISTS: &str = "plate_lists";

/// The lists a plate can be on, by their stored names.
const LIST_NAMES: [&str; 3] = ["blocked", "watched", "allowed"];

/// A stored list name, checked to be one.
fn list_name(s: String) -> R<String> {
    if LIST_NAMES.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(StoreError::bad_value(
            LISTS,
            "list",
            s,
            "a list (blocked, watched, allowed)",
        ))
    }
}

/// Marks a plate's membership of a stored list.
pub(super) fn add_membership(m: &mut ListMembership, list: &str) -> R<()> {
    match list {
        "blocked" => m.blocked = true,
        "watched" => m.watched = true,
        "allowed" => m.allowed = true,
        other => return list_name(other.to_string()).map(drop),
    }
    Ok(())
}

/// List entries, optionally of one list and/or one plate, by list then plate.
pub async fn list_entry_rows(
    conn: &mut Conn,
    list: Option<&str>,
    plate: Option<&str>,
) -> R<Vec<ListEntryRow>> {
    let rows = sql::query(
        "SELECT plate, list, reason, source, added_ms FROM plate_lists \
         WHERE ($1 IS NULL OR list = $1) AND ($2 IS NULL OR plate = $2) ORDER BY list, plate",
    )
    .bind(list)
    .bind(plate)
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(list_entry_row).collect()
}

/// One list entry.
pub async fn list_entry(conn: &mut Conn, list: &str, plate: &str) -> R<Option<ListEntryRow>> {
    let row = sql::query("SELECT plate, list, reason, source, added_ms FROM plate_lists WHERE list = $1 AND plate = $2")
        .bind(list)
        .bind(plate)
        .fetch_optional(conn.ex())
        .await?;
    row.as_ref().map(list_entry_row).transpose()
}

/// Adds a plate to a list at run time, or updates the reason of an entry
/// added so before (an entry from the config is left as it is).
pub async fn put_list_entry(
    conn: &mut Conn,
    list: &str,
    plate: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> R<()> {
    sql::query(
        "INSERT INTO plate_lists (plate, list, reason, source, added_ms) VALUES ($1, $2, $3, 'api', $4) \
         ON CONFLICT (plate, list) DO UPDATE SET reason = excluded.reason WHERE plate_lists.source = 'api'",
    )
    .bind(plate)
    .bind(list)
    .bind(reason)
    .bind(ms(now))
    .execute(conn.ex())
    .await?;
    Ok(())
}

/// Removes a list entry; whether it existed.
pub async fn delete_list_entry(conn: &mut Conn, list: &str, plate: &str) -> R<bool> {
    Ok(
        sql::query("DELETE FROM plate_lists WHERE list = $1 AND plate = $2")
            .bind(list)
            .bind(plate)
            .execute(conn.ex())
            .await?
            .rows_affected()
            > 0,
    )
}

pub async fn list_membership(conn: &mut Conn, plate: &Plate) -> R<ListMembership> {
    let rows = sql::query("SELECT list FROM plate_lists WHERE plate = $1")
        .bind(plate.as_str())
        .fetch_all(conn.ex())
        .await?;
    let mut m = ListMembership::default();
    for r in rows {
        add_membership(&mut m, &r.try_get::<String>(0)?)?;
    }
    Ok(m)
}

/// Every list entry (for the offline cache).
pub async fn all_list_entries(conn: &mut Conn) -> R<Vec<(String, String)>> {
    let rows = sql::query("SELECT plate, list FROM plate_lists")
        .fetch_all(conn.ex())
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, list_name(r.try_get(1)?)?)))
        .collect()
}

pub async fn permits_for(conn: &mut Conn, plates: &[&Plate]) -> R<Vec<Permit>> {
    let mut out = Vec::new();
    for (i, plate) in plates.iter().enumerate() {
        if plates[..i].contains(plate) {
            continue;
        }
        let rows = sql::query("SELECT permit_json FROM permits WHERE plate = $1")
            .bind(plate.as_str())
            .fetch_all(conn.ex())
            .await?;
        for r in &rows {
            out.push(r.of("permits").json("permit_json")?);
        }
    }
    Ok(out)
}

/// Every stored permit (for the offline cache).
pub async fn all_permits(conn: &mut Conn) -> R<Vec<Permit>> {
    Ok(permit_rows(conn, None)
        .await?
        .into_iter()
        .map(|r| r.permit)
        .collect())
}

// ---------------------------------------------------------------- api keys

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub key_id: String,
    pub name: String,
    pub role: String,
    pub rate_per_minute: i64,
    pub source: String,
    pub revoked: bool,
}

pub async fn api_key_by_hash(conn: &mut Conn, hash: &str) -> R<Option<ApiKeyRow>> {
    let row = sql::query(
        "SELECT id, name, role, rate_per_min, source, revoked FROM api_keys WHERE key_hash = $1",
    )
    .bind(hash)
    .fetch_optional(conn.ex())
    .await?;
    row.map(|r| {
        Ok(ApiKeyRow {
            key_id: r.try_get(0)?,
            name: r.try_get(1)?,
            role: r.try_get(2)?,
            rate_per_minute: r.try_get(3)?,
            source: r.try_get(4)?,
            revoked: r.try_get::<bool>(5)?,
        })
    })
    .transpose()
}

/// Inserts (or, by name, replaces) a key's hash and role.
pub async fn upsert_api_key(
    conn: &mut Conn,
    name: &str,
    role: &str,
    hash: &str,
    rate: i64,
    source: &str,
    now: DateTime<Utc>,
) -> R<()> {
    sql::query(
        "INSERT INTO api_keys (id, name, role, key_hash, rate_per_min, source, created_ms, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, 0) \
         ON CONFLICT (name) DO UPDATE SET role = excluded.role, key_hash = excluded.key_hash, rate_per_min = excluded.rate_per_min, \
         source = excluded.source, revoked = 0",
    )
    .bind(new_id())
    .bind(name)
    .bind(role)
    .bind(hash)
    .bind(rate)
    .bind(source)
    .bind(ms(now))
    .execute(conn.ex())
    .await?;
    Ok(())
}
