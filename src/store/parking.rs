//! Parking persistence: every SQL statement of the parking core, written once
//! for both backends through sqlx's `Any` driver.
//!
//! Functions take a `&mut Conn` (any [`super::StoreConn`]: a pooled
//! connection, a transaction, SQLite's direct writer) so the services can
//! compose them in one transaction. Nothing here decides
//! anything: the services gather snapshots with these functions, ask the
//! core, and write back what it decided. The invariants that must hold under
//! concurrency are in the schema (`0002_parking.sql`), not here:
//! one open session per plate (partial unique index), no overlapping active
//! reservations of a bay (exclusion constraint / trigger), one payment per
//! idempotency key (unique), one session per bay (conditional update +
//! unique index).
//!
//! Instants are epoch milliseconds in the database and `DateTime<Utc>` here.

use crate::core::baywatch;
use crate::core::BayState;
use crate::core::{Currency, Money};
use crate::core::{
    ListMembership, OpenSession, Payment, PaymentId, PaymentKind, PaymentMethod, PaymentStatus,
    Permit, Plate, Reservation, ReservationId, ReservationStatus, ReservationTarget, SessionId,
    Space, SpaceId, SpaceStatus, SpaceType, TimeRange, VehicleType,
};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

pub use super::exec::Conn;
type R<T> = Result<T, sqlx::Error>;

/// Epoch milliseconds of an instant.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The instant of epoch milliseconds.
pub fn at_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

fn opt_at(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.map(at_ms)
}

/// A new random id (UUID v4, simple form).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

// ---------------------------------------------------------------- enums ↔ text

pub fn space_type_from(s: &str) -> SpaceType {
    SpaceType::ALL
        .into_iter()
        .find(|t| t.as_str() == s)
        .unwrap_or(SpaceType::Compact)
}

pub fn vehicle_type_from(s: &str) -> VehicleType {
    use VehicleType::*;
    [Car, Motorcycle, Van, Ev, Truck, Unknown]
        .into_iter()
        .find(|t| t.as_str() == s)
        .unwrap_or(Unknown)
}

pub fn reservation_status_str(s: ReservationStatus) -> &'static str {
    match s {
        ReservationStatus::Booked => "booked",
        ReservationStatus::CheckedIn => "checked_in",
        ReservationStatus::Completed => "completed",
        ReservationStatus::Cancelled => "cancelled",
        ReservationStatus::NoShow => "no_show",
    }
}

fn reservation_status_from(s: &str) -> ReservationStatus {
    match s {
        "checked_in" => ReservationStatus::CheckedIn,
        "completed" => ReservationStatus::Completed,
        "cancelled" => ReservationStatus::Cancelled,
        "no_show" => ReservationStatus::NoShow,
        _ => ReservationStatus::Booked,
    }
}

pub fn method_str(m: PaymentMethod) -> &'static str {
    match m {
        PaymentMethod::Card => "card",
        PaymentMethod::Mobile => "mobile",
        PaymentMethod::Cash => "cash",
    }
}

pub fn method_from(s: &str) -> Option<PaymentMethod> {
    match s {
        "card" => Some(PaymentMethod::Card),
        "mobile" => Some(PaymentMethod::Mobile),
        "cash" => Some(PaymentMethod::Cash),
        _ => None,
    }
}

/// snake_case name of any serde enum (`FlagKind::WatchListHit` → `watch_list_hit`).
pub fn enum_str<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn currency_of(s: &str) -> Currency {
    Currency::new(s).unwrap_or(Currency::EUR)
}

// ---------------------------------------------------------------- error kinds

/// A unique-constraint violation (duplicate open session, idempotency key…).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.code()
                .is_some_and(|c| c == "23505" || c == "2067" || c == "1555")
                || d.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

/// An overlapping active reservation of the same bay (exclusion constraint on
/// PostgreSQL, trigger on SQLite).
pub fn is_overlap_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.code().is_some_and(|c| c == "23P01") || d.message().contains("reservation_overlap")
        }
        _ => false,
    }
}

/// A serialisation failure or deadlock that a retry resolves.
pub fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.code()
                .is_some_and(|c| c == "40001" || c == "40P01" || c == "5" || c == "517")
                || d.message().contains("database is locked")
        }
        _ => false,
    }
}

/// The database cannot be reached at all (as opposed to refusing a statement).
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    ) || matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("08") || c == "57P01" || c == "57P03"))
}

// ---------------------------------------------------------------- audit

/// Appends an audit record inside the caller's transaction.
pub async fn audit(
    conn: &mut Conn,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    reason: Option<&str>,
    detail: Option<&serde_json::Value>,
) -> R<()> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, subject, reason, detail_json) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(reason)
        .bind(detail.map(|d| d.to_string()))
        .execute(conn.ex())
        .await?;
    Ok(())
}

/// Audit records gathered while a decision is written, appended by
/// [`AuditBatch::write`] in one statement inside the same transaction (one
/// round trip instead of one per record; order and content as if written
/// one by one).
#[derive(Debug, Default)]
pub struct AuditBatch {
    records: Vec<(
        String,
        String,
        &'static str,
        Option<String>,
        Option<String>,
        Option<String>,
    )>,
}

impl AuditBatch {
    pub fn push(
        &mut self,
        at: DateTime<Utc>,
        actor: &str,
        action: &'static str,
        subject: Option<&str>,
        reason: Option<&str>,
        detail: Option<&serde_json::Value>,
    ) {
        self.records.push((
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            actor.to_string(),
            action,
            subject.map(String::from),
            reason.map(String::from),
            detail.map(|d| d.to_string()),
        ));
    }

    /// Appends the gathered records (nothing when there are none).
    pub async fn write(self, conn: &mut Conn) -> R<()> {
        if self.records.is_empty() {
            return Ok(());
        }
        let values = (0..self.records.len())
            .map(|i| {
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    6 * i + 1,
                    6 * i + 2,
                    6 * i + 3,
                    6 * i + 4,
                    6 * i + 5,
                    6 * i + 6
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO audit_log (at, actor, action, subject, reason, detail_json) VALUES {values}")));
        for (at, actor, action, subject, reason, detail) in self.records {
            q = q
                .bind(at)
                .bind(actor)
                .bind(action)
                .bind(subject)
                .bind(reason)
                .bind(detail);
        }
        q.execute(conn.ex()).await?;
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<serde_json::Value>,
}

pub async fn audit_log(conn: &mut Conn, subject: Option<&str>, limit: i64) -> R<Vec<AuditRow>> {
    let rows = match subject {
        Some(s) => {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT id, at, actor, action, subject, reason, detail_json FROM audit_log WHERE subject = $1 ORDER BY id DESC LIMIT {limit}")))
                .bind(s)
                .fetch_all(conn.ex())
                .await?
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT id, at, actor, action, subject, reason, detail_json FROM audit_log ORDER BY id DESC LIMIT {limit}")))
                .fetch_all(conn.ex())
                .await?
        }
    };
    rows.iter()
        .map(|r| {
            Ok(AuditRow {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                subject: r.try_get("subject")?,
                reason: r.try_get("reason")?,
                detail: r
                    .try_get::<Option<String>, _>("detail_json")?
                    .and_then(|s| serde_json::from_str(&s).ok()),
            })
        })
        .collect()
}

// ---------------------------------------------------------------- seeds

/// One configured space, as the store needs it.
#[derive(Debug, Clone)]
pub struct SpaceSeed {
    pub id: String,
    pub level: String,
    pub zone: String,
    pub space_type: SpaceType,
    pub rank: u32,
}

/// Inserts or updates the configured spaces (keeping their live status);
/// spaces no longer configured are taken out of service unless occupied.
pub async fn sync_spaces(conn: &mut Conn, seeds: &[SpaceSeed], now: DateTime<Utc>) -> R<()> {
    sqlx::query("UPDATE spaces SET in_config = 0")
        .execute(conn.ex())
        .await?;
    for s in seeds {
        sqlx::query(
            "INSERT INTO spaces (id, level, zone, space_type, rank, status, sensor_state, in_config, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, 'available', 'unknown', 1, $6) \
             ON CONFLICT (id) DO UPDATE SET level = excluded.level, zone = excluded.zone, \
             space_type = excluded.space_type, rank = excluded.rank, in_config = 1",
        )
        .bind(&s.id)
        .bind(&s.level)
        .bind(&s.zone)
        .bind(s.space_type.as_str())
        .bind(i64::from(s.rank))
        .bind(ms(now))
        .execute(conn.ex())
        .await?;
    }
    sqlx::query("UPDATE spaces SET status = 'out_of_service', updated_ms = $1 WHERE in_config = 0 AND status = 'available'")
        .bind(ms(now))
        .execute(conn.ex())
        .await?;
    Ok(())
}

/// Replaces the config-sourced permits by `permits` (permits issued through
/// the API are left alone).
pub async fn sync_permits(conn: &mut Conn, permits: &[Permit], now: DateTime<Utc>) -> R<()> {
    sqlx::query("DELETE FROM permits WHERE source = 'config'")
        .execute(conn.ex())
        .await?;
    for p in permits {
        upsert_permit(conn, p, "config", now).await?;
    }
    Ok(())
}

/// Writes a permit (by id) with where it came from (`config` or `api`).
pub async fn upsert_permit(conn: &mut Conn, p: &Permit, source: &str, now: DateTime<Utc>) -> R<()> {
    sqlx::query(
        "INSERT INTO permits (id, plate, kind, valid_from, valid_until, permit_json, source, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO UPDATE SET plate = excluded.plate, kind = excluded.kind, valid_from = excluded.valid_from, \
         valid_until = excluded.valid_until, permit_json = excluded.permit_json, source = excluded.source, updated_ms = excluded.updated_ms",
    )
    .bind(p.id.as_str())
    .bind(p.plate.as_str())
    .bind(enum_str(&p.kind))
    .bind(p.valid_from.to_string())
    .bind(p.valid_until.map(|d| d.to_string()))
    .bind(serde_json::to_string(p).unwrap_or_default())
    .bind(source)
    .bind(ms(now))
    .execute(conn.ex())
    .await?;
    Ok(())
}

/// A stored permit with its provenance, as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PermitRow {
    #[serde(flatten)]
    pub permit: Permit,
    /// `config` (seeded from the site file) or `api` (issued at run time).
    pub source: String,
    pub updated_at: DateTime<Utc>,
}

fn permit_row(r: &AnyRow) -> R<Option<PermitRow>> {
    Ok(permit_of(r)?.map(|permit| PermitRow {
        permit,
        source: r.try_get("source").unwrap_or_default(),
        updated_at: at_ms(r.try_get("updated_ms").unwrap_or_default()),
    }))
}

/// Stored permits, of one plate or all, by plate then id.
pub async fn permit_rows(conn: &mut Conn, plate: Option<&str>) -> R<Vec<PermitRow>> {
    let rows = sqlx::query("SELECT permit_json, source, updated_ms FROM permits WHERE ($1 IS NULL OR plate = $1) ORDER BY plate, id")
        .bind(plate)
        .fetch_all(conn.ex())
        .await?;
    let mut out = Vec::new();
    for r in &rows {
        out.extend(permit_row(r)?);
    }
    Ok(out)
}

/// One stored permit.
pub async fn permit_by_id(conn: &mut Conn, id: &str) -> R<Option<PermitRow>> {
    let row = sqlx::query("SELECT permit_json, source, updated_ms FROM permits WHERE id = $1")
        .bind(id)
        .fetch_optional(conn.ex())
        .await?;
    Ok(match row {
        Some(r) => permit_row(&r)?,
        None => None,
    })
}

/// Deletes a permit; whether it existed.
pub async fn delete_permit(conn: &mut Conn, id: &str) -> R<bool> {
    Ok(sqlx::query("DELETE FROM permits WHERE id = $1")
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
    sqlx::query("DELETE FROM plate_lists WHERE source = 'config'")
        .execute(conn.ex())
        .await?;
    for (plate, list) in entries {
        sqlx::query(
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
#[derive(Debug, Clone, Serialize)]
pub struct ListEntryRow {
    pub license_plate: String,
    /// `blocked`, `watched` or `allowed`.
    pub list: String,
    pub reason: Option<String>,
    /// `config` (seeded from the site file) or `api` (added at run time).
    pub source: String,
    pub added_at: DateTime<Utc>,
}

fn list_entry_row(r: &AnyRow) -> R<ListEntryRow> {
    Ok(ListEntryRow {
        license_plate: r.try_get(0)?,
        list: r.try_get(1)?,
        reason: r.try_get(2)?,
        source: r.try_get(3)?,
        added_at: at_ms(r.try_get(4)?),
    })
}

/// List entries, optionally of one list and/or one plate, by list then plate.
pub async fn list_entry_rows(
    conn: &mut Conn,
    list: Option<&str>,
    plate: Option<&str>,
) -> R<Vec<ListEntryRow>> {
    let rows = sqlx::query(
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
    let row = sqlx::query("SELECT plate, list, reason, source, added_ms FROM plate_lists WHERE list = $1 AND plate = $2")
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
    sqlx::query(
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
        sqlx::query("DELETE FROM plate_lists WHERE list = $1 AND plate = $2")
            .bind(list)
            .bind(plate)
            .execute(conn.ex())
            .await?
            .rows_affected()
            > 0,
    )
}

pub async fn list_membership(conn: &mut Conn, plate: &Plate) -> R<ListMembership> {
    let rows = sqlx::query("SELECT list FROM plate_lists WHERE plate = $1")
        .bind(plate.as_str())
        .fetch_all(conn.ex())
        .await?;
    let mut m = ListMembership::default();
    for r in rows {
        match r.try_get::<String, _>(0)?.as_str() {
            "blocked" => m.blocked = true,
            "watched" => m.watched = true,
            "allowed" => m.allowed = true,
            _ => {}
        }
    }
    Ok(m)
}

/// Every list entry (for the offline cache).
pub async fn all_list_entries(conn: &mut Conn) -> R<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT plate, list FROM plate_lists")
        .fetch_all(conn.ex())
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

fn permit_of(r: &AnyRow) -> R<Option<Permit>> {
    let json: String = r.try_get("permit_json")?;
    Ok(serde_json::from_str(&json).ok())
}

pub async fn permits_for(conn: &mut Conn, plates: &[&Plate]) -> R<Vec<Permit>> {
    let mut out = Vec::new();
    for (i, plate) in plates.iter().enumerate() {
        if plates[..i].contains(plate) {
            continue;
        }
        let rows = sqlx::query("SELECT permit_json FROM permits WHERE plate = $1")
            .bind(plate.as_str())
            .fetch_all(conn.ex())
            .await?;
        for r in &rows {
            out.extend(permit_of(r)?);
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

// ---------------------------------------------------------------- vehicles

pub async fn upsert_vehicle(
    conn: &mut Conn,
    plate: &Plate,
    vehicle_type: Option<VehicleType>,
    now: DateTime<Utc>,
) -> R<()> {
    let t = vehicle_type.unwrap_or(VehicleType::Unknown);
    sqlx::query(
        "INSERT INTO vehicles (plate, vehicle_type, first_seen_ms, last_seen_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (plate) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, \
         vehicle_type = CASE WHEN excluded.vehicle_type = 'unknown' THEN vehicles.vehicle_type ELSE excluded.vehicle_type END",
    )
    .bind(plate.as_str())
    .bind(t.as_str())
    .bind(ms(now))
    .bind(ms(now))
    .execute(conn.ex())
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct VehicleRow {
    pub license_plate: String,
    pub vehicle_type: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

pub async fn vehicle(conn: &mut Conn, plate: &Plate) -> R<Option<VehicleRow>> {
    let row = sqlx::query(
        "SELECT plate, vehicle_type, first_seen_ms, last_seen_ms FROM vehicles WHERE plate = $1",
    )
    .bind(plate.as_str())
    .fetch_optional(conn.ex())
    .await?;
    row.map(|r| {
        Ok(VehicleRow {
            license_plate: r.try_get(0)?,
            vehicle_type: r.try_get(1)?,
            first_seen: at_ms(r.try_get(2)?),
            last_seen: at_ms(r.try_get(3)?),
        })
    })
    .transpose()
}

/// What an entry decision needs to know about a plate besides its sessions:
/// its lists, its permits and its known vehicle type.
#[derive(Debug, Default)]
pub struct PlateFacts {
    pub lists: ListMembership,
    pub permits: Vec<Permit>,
    pub vehicle_type: Option<VehicleType>,
}

/// [`list_membership`], [`permits_for`] and the vehicle's type for one
/// plate in one statement: this runs inside the entry's write transaction,
/// where each statement is a round trip that every other writer waits for.
pub async fn plate_facts(conn: &mut Conn, plate: &Plate) -> R<PlateFacts> {
    let rows = sqlx::query(
        "SELECT 'list', list FROM plate_lists WHERE plate = $1 \
         UNION ALL SELECT 'permit', permit_json FROM permits WHERE plate = $1 \
         UNION ALL SELECT 'vehicle', vehicle_type FROM vehicles WHERE plate = $1",
    )
    .bind(plate.as_str())
    .fetch_all(conn.ex())
    .await?;
    let mut f = PlateFacts::default();
    for r in &rows {
        let value: String = r.try_get(1)?;
        match (r.try_get::<String, _>(0)?.as_str(), value.as_str()) {
            ("list", "blocked") => f.lists.blocked = true,
            ("list", "watched") => f.lists.watched = true,
            ("list", "allowed") => f.lists.allowed = true,
            ("permit", json) => f.permits.extend(serde_json::from_str(json).ok()),
            ("vehicle", t) => {
                f.vehicle_type = Some(vehicle_type_from(t)).filter(|t| *t != VehicleType::Unknown)
            }
            _ => {}
        }
    }
    Ok(f)
}

// ---------------------------------------------------------------- spaces

#[derive(Debug, Clone, Serialize)]
pub struct SpaceRow {
    pub space_id: String,
    pub level: String,
    pub zone: String,
    #[serde(rename = "type")]
    pub space_type: String,
    pub rank: i64,
    /// Stored allocation status: available | occupied | out_of_service.
    pub status: String,
    pub session_id: Option<String>,
    /// What a sensor or camera last said (free | occupied | unknown), and since when.
    pub sensor_state: String,
    pub sensor_since: Option<DateTime<Utc>>,
    /// A staff override of the occupancy state (free | occupied) that wins
    /// over sensors and cameras until cleared; who set it.
    pub override_state: Option<String>,
    pub override_by: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// `sensor_since` of the occupancy episode already flagged.
    #[serde(skip)]
    pub flagged_episode: Option<DateTime<Utc>>,
}

const SPACE_COLS: &str =
    "id, level, zone, space_type, rank, status, session_id, sensor_state, updated_ms, sensor_since_ms, override_state, override_by, sensor_flagged_ms";

fn space_row(r: &AnyRow) -> R<SpaceRow> {
    Ok(SpaceRow {
        space_id: r.try_get(0)?,
        level: r.try_get(1)?,
        zone: r.try_get(2)?,
        space_type: r.try_get(3)?,
        rank: r.try_get(4)?,
        status: r.try_get(5)?,
        session_id: r.try_get(6)?,
        sensor_state: r.try_get(7)?,
        updated_at: at_ms(r.try_get(8)?),
        sensor_since: opt_at(r.try_get(9)?),
        override_state: r.try_get(10)?,
        override_by: r.try_get(11)?,
        flagged_episode: opt_at(r.try_get(12)?),
    })
}

impl SpaceRow {
    /// The state that counts for this bay: the staff override, else the sensor's.
    pub fn sensed(&self) -> BayState {
        baywatch::effective(
            BayState::parse(&self.sensor_state),
            self.override_state.as_deref().map(BayState::parse),
        )
    }

    pub fn to_core(&self, held: bool) -> Space {
        let stored = match self.status.as_str() {
            "occupied" => SpaceStatus::Occupied,
            "out_of_service" => SpaceStatus::OutOfService,
            _ => SpaceStatus::Available,
        };
        let status = baywatch::allocation_status(stored, held, self.sensed());
        Space {
            id: SpaceId::new(self.space_id.clone()),
            level: self.level.clone(),
            zone: self.zone.clone(),
            space_type: space_type_from(&self.space_type),
            rank: self.rank.clamp(0, i64::from(u32::MAX)) as u32,
            status,
        }
    }
}

pub async fn all_spaces(conn: &mut Conn) -> R<Vec<SpaceRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SPACE_COLS} FROM spaces WHERE in_config = 1 ORDER BY rank, id"
    )))
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(space_row).collect()
}

/// Bays free for allocation (stored status `available`).
pub async fn available_spaces(conn: &mut Conn) -> R<Vec<SpaceRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SPACE_COLS} FROM spaces WHERE status = 'available' AND in_config = 1"
    )))
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(space_row).collect()
}

/// The `limit` nearest free bays of each space type (by rank, then id):
/// enough for the core to choose from without reading the whole car park.
/// `truncated` says whether some type had more. One statement (a `UNION ALL`
/// of one index range per type) rather than one per type, because every
/// statement is a round trip and this runs inside the write transaction.
///
/// Here and below, `LIMIT` is written as a literal: SQLite's planner reads
/// a bound `LIMIT` value, so a statement with `LIMIT $n` is re-prepared
/// every time it is bound, which defeats the prepared-statement cache.
pub async fn nearest_available_spaces(conn: &mut Conn, limit: i64) -> R<(Vec<SpaceRow>, bool)> {
    let sql = SpaceType::ALL
        .iter()
        .map(|t| {
            let t = t.as_str();
            format!("SELECT * FROM (SELECT {SPACE_COLS} FROM spaces WHERE status = 'available' AND space_type = '{t}' AND in_config = 1 ORDER BY rank, id LIMIT {limit}) AS nearest_{t}")
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn.ex())
        .await?;
    let out = rows.iter().map(space_row).collect::<R<Vec<_>>>()?;
    let truncated = SpaceType::ALL
        .iter()
        .any(|t| out.iter().filter(|r| r.space_type == t.as_str()).count() as i64 >= limit);
    Ok((out, truncated))
}

/// Bays per (type, stored status), counted by the database.
pub async fn space_counts(conn: &mut Conn) -> R<Vec<(String, String, i64)>> {
    let rows = sqlx::query("SELECT space_type, status, COUNT(*) FROM spaces WHERE in_config = 1 GROUP BY space_type, status").fetch_all(conn.ex()).await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

pub async fn space(conn: &mut Conn, id: &str) -> R<Option<SpaceRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SPACE_COLS} FROM spaces WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(space_row).transpose()
}

/// Bays held for booked reservations at `now`: the reservation's check-in
/// window opens within `lead` (early check-in + hold) and it has not ended.
pub async fn held_spaces(
    conn: &mut Conn,
    now: DateTime<Utc>,
    lead_ms: i64,
) -> R<Vec<(String, String, String)>> {
    let rows = sqlx::query(
        "SELECT space_id, id, plate FROM reservations WHERE status = 'booked' AND start_ms <= $1 AND end_ms > $2",
    )
    .bind(ms(now) + lead_ms)
    .bind(ms(now))
    .fetch_all(conn.ex())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

/// Atomically takes a free bay for a session. False when someone was faster.
pub async fn claim_space(
    conn: &mut Conn,
    space_id: &str,
    session_id: &str,
    now: DateTime<Utc>,
) -> R<bool> {
    let done = sqlx::query("UPDATE spaces SET status = 'occupied', session_id = $1, updated_ms = $2 WHERE id = $3 AND status = 'available'")
        .bind(session_id)
        .bind(ms(now))
        .bind(space_id)
        .execute(conn.ex())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Frees the session's bay, if it had one; returns the bay's id.
pub async fn release_space_of(
    conn: &mut Conn,
    session_id: &str,
    now: DateTime<Utc>,
) -> R<Option<String>> {
    let row = sqlx::query("UPDATE spaces SET status = 'available', session_id = NULL, updated_ms = $1 WHERE session_id = $2 RETURNING id")
        .bind(ms(now))
        .bind(session_id)
        .fetch_optional(conn.ex())
        .await?;
    row.map(|r| r.try_get(0)).transpose()
}

/// Staff status change between `available` and `out_of_service`; false if
/// the bay is occupied (or already in that status).
pub async fn set_space_status(
    conn: &mut Conn,
    id: &str,
    status: &str,
    now: DateTime<Utc>,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE spaces SET status = $1, updated_ms = $2 WHERE id = $3 AND status <> 'occupied'",
    )
    .bind(status)
    .bind(ms(now))
    .bind(id)
    .execute(conn.ex())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a sensor/camera state; `sensor_since` moves only when the state changes.
pub async fn set_sensor_state(
    conn: &mut Conn,
    id: &str,
    state: &str,
    now: DateTime<Utc>,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE spaces SET sensor_since_ms = CASE WHEN sensor_state = $1 AND sensor_since_ms IS NOT NULL THEN sensor_since_ms ELSE $2 END, \
         sensor_state = $1, updated_ms = $2 WHERE id = $3",
    )
    .bind(state)
    .bind(ms(now))
    .bind(id)
    .execute(conn.ex())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets (`Some`) or clears (`None`) the staff override of a bay's occupancy state.
pub async fn set_override(
    conn: &mut Conn,
    id: &str,
    state: Option<&str>,
    by: &str,
    now: DateTime<Utc>,
) -> R<bool> {
    let done = sqlx::query("UPDATE spaces SET override_state = $1, override_by = $2, override_ms = $3, updated_ms = $3 WHERE id = $4")
        .bind(state)
        .bind(state.map(|_| by))
        .bind(ms(now))
        .bind(id)
        .execute(conn.ex())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Remembers that the occupancy episode starting at `since` was flagged.
pub async fn mark_bay_flagged(conn: &mut Conn, id: &str, since: DateTime<Utc>) -> R<()> {
    sqlx::query("UPDATE spaces SET sensor_flagged_ms = $1 WHERE id = $2")
        .bind(ms(since))
        .bind(id)
        .execute(conn.ex())
        .await?;
    Ok(())
}

/// Bays with a staff override: (space id, state).
pub async fn overrides(conn: &mut Conn) -> R<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT id, override_state FROM spaces WHERE override_state IS NOT NULL AND in_config = 1 ORDER BY id").fetch_all(conn.ex()).await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

// ---------------------------------------------------------------- sessions

#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    pub session_id: String,
    pub license_plate: String,
    pub vehicle_type: String,
    pub status: String,
    pub entry_time: DateTime<Utc>,
    pub exit_time: Option<DateTime<Utc>>,
    pub entry_gate: Option<String>,
    pub exit_gate: Option<String>,
    pub entry_read_id: Option<String>,
    pub exit_read_id: Option<String>,
    pub space_id: Option<String>,
    pub space_type: Option<String>,
    pub reservation_id: Option<String>,
    pub entry_reason: String,
    pub exit_reason: Option<String>,
    /// Fee of the stay in minor units, set when the session closes.
    pub fee: Option<i64>,
    pub currency: String,
    pub evidence: Option<serde_json::Value>,
}

const SESSION_COLS: &str = "id, plate, vehicle_type, status, started_ms, ended_ms, entry_gate, exit_gate, entry_read_id, exit_read_id, \
                            space_id, space_type, reservation_id, entry_reason, exit_reason, fee_minor, currency, evidence_json";

fn session_row(r: &AnyRow) -> R<SessionRow> {
    Ok(SessionRow {
        session_id: r.try_get(0)?,
        license_plate: r.try_get(1)?,
        vehicle_type: r.try_get(2)?,
        status: r.try_get(3)?,
        entry_time: at_ms(r.try_get(4)?),
        exit_time: opt_at(r.try_get(5)?),
        entry_gate: r.try_get(6)?,
        exit_gate: r.try_get(7)?,
        entry_read_id: r.try_get(8)?,
        exit_read_id: r.try_get(9)?,
        space_id: r.try_get(10)?,
        space_type: r.try_get(11)?,
        reservation_id: r.try_get(12)?,
        entry_reason: r.try_get(13)?,
        exit_reason: r.try_get(14)?,
        fee: r.try_get(15)?,
        currency: r.try_get(16)?,
        evidence: r
            .try_get::<Option<String>, _>(17)?
            .and_then(|s| serde_json::from_str(&s).ok()),
    })
}

impl SessionRow {
    pub fn to_open(&self) -> Option<OpenSession> {
        Some(OpenSession {
            id: SessionId::new(self.session_id.clone()),
            plate: Plate::parse(&self.license_plate).ok()?,
            started_at: self.entry_time,
            vehicle_type: vehicle_type_from(&self.vehicle_type),
            space: self.space_id.clone().map(SpaceId::new),
            space_type: self.space_type.as_deref().map(space_type_from),
            reservation: self.reservation_id.clone().map(ReservationId::new),
        })
    }
}

/// What a new session is opened with.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub id: &'a str,
    pub plate: &'a Plate,
    pub vehicle_type: VehicleType,
    pub started: DateTime<Utc>,
    pub gate: Option<&'a str>,
    pub read_id: Option<&'a str>,
    pub space: Option<(&'a str, SpaceType)>,
    pub reservation_id: Option<&'a str>,
    pub reason: &'a str,
    pub currency: Currency,
    pub evidence: Option<&'a serde_json::Value>,
}

/// Inserts an open session; a unique violation means the plate already has one.
pub async fn insert_session(conn: &mut Conn, s: &NewSession<'_>) -> R<()> {
    sqlx::query(
        "INSERT INTO sessions (id, plate, vehicle_type, status, started_ms, entry_gate, entry_read_id, space_id, space_type, \
         reservation_id, entry_reason, currency, evidence_json) VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(s.id)
    .bind(s.plate.as_str())
    .bind(s.vehicle_type.as_str())
    .bind(ms(s.started))
    .bind(s.gate)
    .bind(s.read_id)
    .bind(s.space.map(|(id, _)| id))
    .bind(s.space.map(|(_, t)| t.as_str()))
    .bind(s.reservation_id)
    .bind(s.reason)
    .bind(s.currency.as_str())
    .bind(s.evidence.map(|e| e.to_string()))
    .execute(conn.ex())
    .await?;
    Ok(())
}

/// Closes an open session (or marks it superseded). False if it was not open.
#[allow(clippy::too_many_arguments)]
pub async fn close_session(
    conn: &mut Conn,
    id: &str,
    status: &str,
    ended: DateTime<Utc>,
    exit_gate: Option<&str>,
    exit_read_id: Option<&str>,
    fee_minor: Option<i64>,
    reason: &str,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET status = $1, ended_ms = $2, exit_gate = $3, exit_read_id = $4, fee_minor = $5, exit_reason = $6 \
         WHERE id = $7 AND status = 'open'",
    )
    .bind(status)
    .bind(ms(ended))
    .bind(exit_gate)
    .bind(exit_read_id)
    .bind(fee_minor)
    .bind(reason)
    .bind(id)
    .execute(conn.ex())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn open_session_for(conn: &mut Conn, plate: &Plate) -> R<Option<SessionRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE plate = $1 AND status = 'open'"
    )))
    .bind(plate.as_str())
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(session_row).transpose()
}

pub async fn open_sessions(conn: &mut Conn) -> R<Vec<SessionRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE status = 'open'"
    )))
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(session_row).collect()
}

pub async fn session(conn: &mut Conn, id: &str) -> R<Option<SessionRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(session_row).transpose()
}

pub async fn sessions(
    conn: &mut Conn,
    status: Option<&str>,
    plate: Option<&str>,
    limit: i64,
) -> R<Vec<SessionRow>> {
    let mut sql = format!("SELECT {SESSION_COLS} FROM sessions");
    let mut conds = Vec::new();
    let mut n = 0;
    if status.is_some() {
        n += 1;
        conds.push(format!("status = ${n}"));
    }
    if plate.is_some() {
        n += 1;
        conds.push(format!("plate = ${n}"));
    }
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY started_ms DESC LIMIT {limit}"));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(s) = status {
        q = q.bind(s.to_string());
    }
    if let Some(p) = plate {
        q = q.bind(p.to_string());
    }
    let rows = q.fetch_all(conn.ex()).await?;
    rows.iter().map(session_row).collect()
}

pub async fn count_open_sessions(conn: &mut Conn) -> R<i64> {
    sqlx::query("SELECT COUNT(*) FROM sessions WHERE status = 'open'")
        .fetch_one(conn.ex())
        .await?
        .try_get(0)
}

// ---------------------------------------------------------------- reservations

#[derive(Debug, Clone, Serialize)]
pub struct ReservationRow {
    pub reservation_id: String,
    pub license_plate: String,
    pub space_id: String,
    pub space_type: String,
    /// What was asked for: `space` or `type`.
    pub requested: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub status: String,
    pub price: i64,
    pub currency: String,
    pub session_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

const RES_COLS: &str = "id, plate, space_id, space_type, requested, start_ms, end_ms, status, price_minor, currency, session_id, created_ms";

fn reservation_row(r: &AnyRow) -> R<ReservationRow> {
    Ok(ReservationRow {
        reservation_id: r.try_get(0)?,
        license_plate: r.try_get(1)?,
        space_id: r.try_get(2)?,
        space_type: r.try_get(3)?,
        requested: r.try_get(4)?,
        start_time: at_ms(r.try_get(5)?),
        end_time: at_ms(r.try_get(6)?),
        status: r.try_get(7)?,
        price: r.try_get(8)?,
        currency: r.try_get(9)?,
        session_id: r.try_get(10)?,
        created_at: at_ms(r.try_get(11)?),
    })
}

impl ReservationRow {
    /// The core's view: a booking of the bay it holds.
    pub fn to_core(&self) -> Option<Reservation> {
        Some(Reservation {
            id: ReservationId::new(self.reservation_id.clone()),
            plate: Plate::parse(&self.license_plate).ok()?,
            target: ReservationTarget::Space(SpaceId::new(self.space_id.clone())),
            window: TimeRange::new(self.start_time, self.end_time).ok()?,
            price: Money::new(self.price, currency_of(&self.currency)),
            status: reservation_status_from(&self.status),
        })
    }
}

pub async fn reservation(conn: &mut Conn, id: &str) -> R<Option<ReservationRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RES_COLS} FROM reservations WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(reservation_row).transpose()
}

/// The plate's active reservation closest to `now` (checked in first, then
/// the earliest booked one that has not ended).
pub async fn current_reservation_for(
    conn: &mut Conn,
    plate: &Plate,
    now: DateTime<Utc>,
) -> R<Option<ReservationRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RES_COLS} FROM reservations WHERE plate = $1 AND status IN ('booked', 'checked_in') AND end_ms > $2 ORDER BY start_ms LIMIT 5"
    )))
    .bind(plate.as_str())
    .bind(ms(now))
    .fetch_all(conn.ex())
    .await?;
    let rows: Vec<ReservationRow> = rows.iter().map(reservation_row).collect::<R<_>>()?;
    Ok(rows
        .iter()
        .find(|r| r.status == "checked_in")
        .or(rows.first())
        .cloned())
}

/// Active reservations overlapping `[start, end)` (for booking checks).
pub async fn active_reservations_overlapping(
    conn: &mut Conn,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> R<Vec<ReservationRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RES_COLS} FROM reservations WHERE status IN ('booked', 'checked_in') AND start_ms < $1 AND end_ms > $2"
    )))
    .bind(ms(end))
    .bind(ms(start))
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(reservation_row).collect()
}

pub async fn reservations_for_plate(
    conn: &mut Conn,
    plate: &str,
    limit: i64,
) -> R<Vec<ReservationRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RES_COLS} FROM reservations WHERE plate = $1 ORDER BY start_ms DESC LIMIT {limit}"
    )))
    .bind(plate)
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(reservation_row).collect()
}

/// Booked reservations whose no-show grace has passed at `now`.
pub async fn overdue_bookings(
    conn: &mut Conn,
    now: DateTime<Utc>,
    grace_ms: i64,
) -> R<Vec<ReservationRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RES_COLS} FROM reservations WHERE status = 'booked' AND start_ms <= $1"
    )))
    .bind(ms(now) - grace_ms)
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(reservation_row).collect()
}

#[derive(Debug, Clone)]
pub struct NewReservation<'a> {
    pub id: &'a str,
    pub plate: &'a Plate,
    pub space_id: &'a str,
    pub space_type: SpaceType,
    pub requested: &'a str,
    pub window: TimeRange,
    pub price: Money,
    pub now: DateTime<Utc>,
}

/// Inserts a booking; an overlap with another active booking of the bay is
/// refused by the database ([`is_overlap_violation`]).
pub async fn insert_reservation(conn: &mut Conn, r: &NewReservation<'_>) -> R<()> {
    sqlx::query(
        "INSERT INTO reservations (id, plate, space_id, space_type, requested, start_ms, end_ms, status, price_minor, currency, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'booked', $8, $9, $10, $11)",
    )
    .bind(r.id)
    .bind(r.plate.as_str())
    .bind(r.space_id)
    .bind(r.space_type.as_str())
    .bind(r.requested)
    .bind(ms(r.window.start))
    .bind(ms(r.window.end))
    .bind(r.price.amount_minor)
    .bind(r.price.currency.as_str())
    .bind(ms(r.now))
    .bind(ms(r.now))
    .execute(conn.ex())
    .await?;
    Ok(())
}

/// Moves a reservation from `from` to `to` (optionally linking a session).
/// False if it was not in `from`.
pub async fn set_reservation_status(
    conn: &mut Conn,
    id: &str,
    from: ReservationStatus,
    to: ReservationStatus,
    session_id: Option<&str>,
    now: DateTime<Utc>,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE reservations SET status = $1, session_id = COALESCE($2, session_id), updated_ms = $3 WHERE id = $4 AND status = $5",
    )
    .bind(reservation_status_str(to))
    .bind(session_id)
    .bind(ms(now))
    .bind(id)
    .bind(reservation_status_str(from))
    .execute(conn.ex())
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------- payments

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PaymentRow {
    pub payment_id: String,
    pub idempotency_key: String,
    pub kind: String,
    pub session_id: Option<String>,
    pub reservation_id: Option<String>,
    pub license_plate: Option<String>,
    /// `parking`, `reservation`, `lost_ticket`, `debt`, `refund`.
    pub purpose: String,
    /// For a refund: the charge it refunds.
    pub parent_id: Option<String>,
    pub payment_method: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub reason: Option<String>,
    pub failure: Option<String>,
    pub gateway_ref: Option<String>,
    pub actor: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

const PAY_COLS: &str = "id, idempotency_key, kind, session_id, reservation_id, plate, purpose, parent_id, method, status, amount_minor, currency, \
                        reason, failure, gateway_ref, actor, created_ms, completed_ms";

fn payment_row(r: &AnyRow) -> R<PaymentRow> {
    Ok(PaymentRow {
        payment_id: r.try_get(0)?,
        idempotency_key: r.try_get(1)?,
        kind: r.try_get(2)?,
        session_id: r.try_get(3)?,
        reservation_id: r.try_get(4)?,
        license_plate: r.try_get(5)?,
        purpose: r.try_get(6)?,
        parent_id: r.try_get(7)?,
        payment_method: r.try_get(8)?,
        status: r.try_get(9)?,
        amount: r.try_get(10)?,
        currency: r.try_get(11)?,
        reason: r.try_get(12)?,
        failure: r.try_get(13)?,
        gateway_ref: r.try_get(14)?,
        actor: r.try_get(15)?,
        created_at: at_ms(r.try_get(16)?),
        completed_at: opt_at(r.try_get(17)?),
    })
}

impl PaymentRow {
    pub fn to_core(&self) -> Payment {
        Payment {
            id: PaymentId::new(self.payment_id.clone()),
            kind: if self.kind == "refund" {
                PaymentKind::Refund
            } else {
                PaymentKind::Charge
            },
            method: method_from(&self.payment_method).unwrap_or(PaymentMethod::Card),
            status: match self.status.as_str() {
                "succeeded" => PaymentStatus::Succeeded,
                "failed" => PaymentStatus::Failed,
                _ => PaymentStatus::Pending,
            },
            amount: Money::new(self.amount, currency_of(&self.currency)),
            at: self.completed_at.unwrap_or(self.created_at),
        }
    }
}

pub async fn payment(conn: &mut Conn, id: &str) -> R<Option<PaymentRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PAY_COLS} FROM payments WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(payment_row).transpose()
}

pub async fn payment_by_key(conn: &mut Conn, key: &str) -> R<Option<PaymentRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PAY_COLS} FROM payments WHERE idempotency_key = $1"
    )))
    .bind(key)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(payment_row).transpose()
}

pub async fn payments_for_session(conn: &mut Conn, session_id: &str) -> R<Vec<PaymentRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PAY_COLS} FROM payments WHERE session_id = $1 ORDER BY created_ms"
    )))
    .bind(session_id)
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(payment_row).collect()
}

pub async fn payments_for_reservation(conn: &mut Conn, reservation_id: &str) -> R<Vec<PaymentRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PAY_COLS} FROM payments WHERE reservation_id = $1 ORDER BY created_ms"
    )))
    .bind(reservation_id)
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(payment_row).collect()
}

/// Lost-ticket payments of a plate (no session) since `since`.
pub async fn unattached_payments(
    conn: &mut Conn,
    plate: &Plate,
    since: DateTime<Utc>,
) -> R<Vec<PaymentRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PAY_COLS} FROM payments WHERE plate = $1 AND session_id IS NULL AND reservation_id IS NULL AND created_ms >= $2 ORDER BY created_ms"
    )))
    .bind(plate.as_str())
    .bind(ms(since))
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(payment_row).collect()
}

pub async fn payments_list(
    conn: &mut Conn,
    session_id: Option<&str>,
    limit: i64,
) -> R<Vec<PaymentRow>> {
    let rows = match session_id {
        Some(s) => {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PAY_COLS} FROM payments WHERE session_id = $1 ORDER BY created_ms DESC LIMIT {limit}")))
                .bind(s)
                .fetch_all(conn.ex())
                .await?
        }
        None => sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PAY_COLS} FROM payments ORDER BY created_ms DESC LIMIT {limit}"))).fetch_all(conn.ex()).await?,
    };
    rows.iter().map(payment_row).collect()
}

pub async fn pending_payments(conn: &mut Conn) -> R<Vec<PaymentRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PAY_COLS} FROM payments WHERE status = 'pending' ORDER BY created_ms"
    )))
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(payment_row).collect()
}

/// Inserts a payment row as given (usually `pending`).
/// Gives a payment the caller's idempotency key.
pub async fn set_payment_key(conn: &mut Conn, payment_id: &str, key: &str) -> R<()> {
    sqlx::query("UPDATE payments SET idempotency_key = $1 WHERE id = $2")
        .bind(key)
        .bind(payment_id)
        .execute(conn.ex())
        .await?;
    Ok(())
}

pub async fn insert_payment(conn: &mut Conn, p: &PaymentRow) -> R<()> {
    sqlx::query(
        "INSERT INTO payments (id, idempotency_key, kind, session_id, reservation_id, plate, purpose, parent_id, method, status, amount_minor, \
         currency, reason, failure, gateway_ref, actor, created_ms, completed_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&p.payment_id)
    .bind(&p.idempotency_key)
    .bind(&p.kind)
    .bind(&p.session_id)
    .bind(&p.reservation_id)
    .bind(&p.license_plate)
    .bind(&p.purpose)
    .bind(&p.parent_id)
    .bind(&p.payment_method)
    .bind(&p.status)
    .bind(p.amount)
    .bind(&p.currency)
    .bind(&p.reason)
    .bind(&p.failure)
    .bind(&p.gateway_ref)
    .bind(&p.actor)
    .bind(ms(p.created_at))
    .bind(p.completed_at.map(ms))
    .execute(conn.ex())
    .await?;
    Ok(())
}

/// Settles a pending payment and returns it as settled; `None` if it was
/// no longer pending.
pub async fn complete_payment(
    conn: &mut Conn,
    id: &str,
    status: &str,
    gateway_ref: Option<&str>,
    failure: Option<&str>,
    now: DateTime<Utc>,
) -> R<Option<PaymentRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE payments SET status = $1, gateway_ref = $2, failure = $3, completed_ms = $4 WHERE id = $5 AND status = 'pending' RETURNING {PAY_COLS}"
    )))
    .bind(status)
    .bind(gateway_ref)
    .bind(failure)
    .bind(ms(now))
    .bind(id)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(payment_row).transpose()
}

/// A failed payment with a transient failure goes back to pending for a retry.
pub async fn reopen_payment(conn: &mut Conn, id: &str) -> R<bool> {
    let done = sqlx::query("UPDATE payments SET status = 'pending', failure = NULL, completed_ms = NULL WHERE id = $1 AND status = 'failed'")
        .bind(id)
        .execute(conn.ex())
        .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------- gateway ledger

/// Records a charge/refund in the built-in gateway's ledger exactly once per
/// key and returns its reference (the first one if it was already there).
pub async fn ledger_record(
    conn: &mut Conn,
    key: &str,
    kind: &str,
    method: &str,
    amount: Money,
    now: DateTime<Utc>,
) -> R<String> {
    let reference = format!("bgw_{}", &new_id()[..16]);
    let inserted = sqlx::query(
        "INSERT INTO gateway_ledger (idempotency_key, kind, method, amount_minor, currency, reference, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING reference",
    )
    .bind(key)
    .bind(kind)
    .bind(method)
    .bind(amount.amount_minor)
    .bind(amount.currency.as_str())
    .bind(&reference)
    .bind(ms(now))
    .fetch_optional(conn.ex())
    .await?;
    match inserted {
        Some(row) => row.try_get(0),
        None => sqlx::query("SELECT reference FROM gateway_ledger WHERE idempotency_key = $1")
            .bind(key)
            .fetch_one(conn.ex())
            .await?
            .try_get(0),
    }
}

// ---------------------------------------------------------------- receipts

#[derive(Debug, Clone, Serialize)]
pub struct ReceiptRow {
    pub receipt_id: String,
    pub number: String,
    pub payment_id: String,
    pub body: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_receipt(
    conn: &mut Conn,
    payment_id: &str,
    body: &serde_json::Value,
    now: DateTime<Utc>,
) -> R<String> {
    let id = new_id();
    let number = format!("R-{}-{}", now.format("%Y%m%d"), &id[..8].to_uppercase());
    sqlx::query("INSERT INTO receipts (id, number, payment_id, body_json, created_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (payment_id) DO NOTHING")
        .bind(&id)
        .bind(&number)
        .bind(payment_id)
        .bind(body.to_string())
        .bind(ms(now))
        .execute(conn.ex())
        .await?;
    Ok(id)
}

pub async fn receipt_for_payment(conn: &mut Conn, payment_id: &str) -> R<Option<ReceiptRow>> {
    let row = sqlx::query("SELECT id, number, payment_id, body_json, created_ms FROM receipts WHERE payment_id = $1 OR id = $2")
        .bind(payment_id)
        .bind(payment_id)
        .fetch_optional(conn.ex())
        .await?;
    row.map(|r| {
        Ok(ReceiptRow {
            receipt_id: r.try_get(0)?,
            number: r.try_get(1)?,
            payment_id: r.try_get(2)?,
            body: serde_json::from_str(&r.try_get::<String, _>(3)?).unwrap_or_default(),
            created_at: at_ms(r.try_get(4)?),
        })
    })
    .transpose()
}

// ---------------------------------------------------------------- debts

#[derive(Debug, Clone, Serialize)]
pub struct DebtRow {
    pub debt_id: String,
    pub license_plate: String,
    pub session_id: Option<String>,
    pub reservation_id: Option<String>,
    /// `unpaid_exit` or `no_show`.
    pub kind: String,
    pub amount: i64,
    pub currency: String,
    pub incurred_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_debt(
    conn: &mut Conn,
    plate: &Plate,
    session_id: Option<&str>,
    reservation_id: Option<&str>,
    kind: &str,
    amount: Money,
    now: DateTime<Utc>,
) -> R<String> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO debts (id, plate, session_id, reservation_id, kind, amount_minor, currency, incurred_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(plate.as_str())
    .bind(session_id)
    .bind(reservation_id)
    .bind(kind)
    .bind(amount.amount_minor)
    .bind(amount.currency.as_str())
    .bind(ms(now))
    .execute(conn.ex())
    .await?;
    Ok(id)
}

const DEBT_COLS: &str =
    "id, plate, session_id, reservation_id, kind, amount_minor, currency, incurred_ms, settled_ms";

fn debt_row(r: &AnyRow) -> R<DebtRow> {
    Ok(DebtRow {
        debt_id: r.try_get(0)?,
        license_plate: r.try_get(1)?,
        session_id: r.try_get(2)?,
        reservation_id: r.try_get(3)?,
        kind: r.try_get(4)?,
        amount: r.try_get(5)?,
        currency: r.try_get(6)?,
        incurred_at: at_ms(r.try_get(7)?),
        settled_at: opt_at(r.try_get(8)?),
    })
}

pub async fn open_debts_for(conn: &mut Conn, plate: &str) -> R<Vec<DebtRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DEBT_COLS} FROM debts WHERE plate = $1 AND settled_ms IS NULL ORDER BY incurred_ms")))
        .bind(plate)
        .fetch_all(conn.ex())
        .await?;
    rows.iter().map(debt_row).collect()
}

pub async fn debt_for_session(conn: &mut Conn, session_id: &str) -> R<Option<DebtRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DEBT_COLS} FROM debts WHERE session_id = $1"
    )))
    .bind(session_id)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(debt_row).transpose()
}

pub async fn debt_for_reservation(conn: &mut Conn, reservation_id: &str) -> R<Option<DebtRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DEBT_COLS} FROM debts WHERE reservation_id = $1"
    )))
    .bind(reservation_id)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(debt_row).transpose()
}

pub async fn settle_debt(conn: &mut Conn, id: &str, now: DateTime<Utc>) -> R<()> {
    sqlx::query("UPDATE debts SET settled_ms = $1 WHERE id = $2 AND settled_ms IS NULL")
        .bind(ms(now))
        .bind(id)
        .execute(conn.ex())
        .await?;
    Ok(())
}

// ---------------------------------------------------------------- flags

#[derive(Debug, Clone, Serialize)]
pub struct FlagRow {
    pub flag_id: String,
    pub kind: String,
    pub license_plate: Option<String>,
    pub session_id: Option<String>,
    pub gate: Option<String>,
    pub detail: String,
    pub evidence: Option<serde_json::Value>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<String>,
    pub note: Option<String>,
}

const FLAG_COLS: &str = "id, kind, plate, session_id, gate, detail, evidence_json, status, created_ms, updated_ms, updated_by, note";

fn flag_row(r: &AnyRow) -> R<FlagRow> {
    Ok(FlagRow {
        flag_id: r.try_get(0)?,
        kind: r.try_get(1)?,
        license_plate: r.try_get(2)?,
        session_id: r.try_get(3)?,
        gate: r.try_get(4)?,
        detail: r.try_get(5)?,
        evidence: r
            .try_get::<Option<String>, _>(6)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        status: r.try_get(7)?,
        created_at: at_ms(r.try_get(8)?),
        updated_at: at_ms(r.try_get(9)?),
        updated_by: r.try_get(10)?,
        note: r.try_get(11)?,
    })
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_flag(
    conn: &mut Conn,
    kind: &str,
    plate: Option<&str>,
    session_id: Option<&str>,
    gate: Option<&str>,
    detail: &str,
    evidence: Option<&serde_json::Value>,
    now: DateTime<Utc>,
) -> R<String> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO flags (id, kind, plate, session_id, gate, detail, evidence_json, status, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9)",
    )
    .bind(&id)
    .bind(kind)
    .bind(plate)
    .bind(session_id)
    .bind(gate)
    .bind(detail)
    .bind(evidence.map(|e| e.to_string()))
    .bind(ms(now))
    .bind(ms(now))
    .execute(conn.ex())
    .await?;
    Ok(id)
}

pub async fn flag(conn: &mut Conn, id: &str) -> R<Option<FlagRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FLAG_COLS} FROM flags WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(flag_row).transpose()
}

pub async fn flags(
    conn: &mut Conn,
    status: Option<&str>,
    kind: Option<&str>,
    plate: Option<&str>,
    limit: i64,
) -> R<Vec<FlagRow>> {
    let mut conds = Vec::new();
    let mut binds = Vec::new();
    for (col, v) in [("status", status), ("kind", kind), ("plate", plate)] {
        if let Some(v) = v {
            binds.push(v.to_string());
            conds.push(format!("{col} = ${}", binds.len()));
        }
    }
    let mut sql = format!("SELECT {FLAG_COLS} FROM flags");
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY created_ms DESC LIMIT {limit}"));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(conn.ex()).await?;
    rows.iter().map(flag_row).collect()
}

/// Moves a flag from `from` to `to`; false if someone changed it meanwhile.
pub async fn update_flag(
    conn: &mut Conn,
    id: &str,
    from: &str,
    to: &str,
    by: &str,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> R<bool> {
    let done = sqlx::query("UPDATE flags SET status = $1, updated_by = $2, note = COALESCE($3, note), updated_ms = $4 WHERE id = $5 AND status = $6")
        .bind(to)
        .bind(by)
        .bind(note)
        .bind(ms(now))
        .bind(id)
        .bind(from)
        .execute(conn.ex())
        .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------- gate decisions

#[derive(Debug, Clone, Serialize)]
pub struct GateDecisionRow {
    pub decision_id: String,
    pub gate: Option<String>,
    pub direction: String,
    pub license_plate: String,
    pub session_id: Option<String>,
    pub command: String,
    pub verdict: String,
    pub reason: String,
    pub explanation: String,
    pub amount: Option<i64>,
    pub read_id: Option<String>,
    pub source: String,
    pub decided_at: DateTime<Utc>,
    pub ack_state: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
    pub attempts: i64,
}

const GD_COLS: &str = "id, gate, direction, plate, session_id, command, verdict, reason, explanation, amount_minor, read_id, source, decided_ms, ack_state, acked_ms, attempts";

fn gd_row(r: &AnyRow) -> R<GateDecisionRow> {
    Ok(GateDecisionRow {
        decision_id: r.try_get(0)?,
        gate: r.try_get(1)?,
        direction: r.try_get(2)?,
        license_plate: r.try_get(3)?,
        session_id: r.try_get(4)?,
        command: r.try_get(5)?,
        verdict: r.try_get(6)?,
        reason: r.try_get(7)?,
        explanation: r.try_get(8)?,
        amount: r.try_get(9)?,
        read_id: r.try_get(10)?,
        source: r.try_get(11)?,
        decided_at: at_ms(r.try_get(12)?),
        ack_state: r.try_get(13)?,
        acked_at: opt_at(r.try_get(14)?),
        attempts: r.try_get(15)?,
    })
}

pub async fn insert_gate_decision(conn: &mut Conn, d: &GateDecisionRow) -> R<()> {
    sqlx::query(
        "INSERT INTO gate_decisions (id, gate, direction, plate, session_id, command, verdict, reason, explanation, amount_minor, read_id, source, decided_ms, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&d.decision_id)
    .bind(&d.gate)
    .bind(&d.direction)
    .bind(&d.license_plate)
    .bind(&d.session_id)
    .bind(&d.command)
    .bind(&d.verdict)
    .bind(&d.reason)
    .bind(&d.explanation)
    .bind(d.amount)
    .bind(&d.read_id)
    .bind(&d.source)
    .bind(ms(d.decided_at))
    .execute(conn.ex())
    .await?;
    Ok(())
}

pub async fn record_gate_ack(
    conn: &mut Conn,
    id: &str,
    state: &str,
    attempts: i64,
    acked: Option<DateTime<Utc>>,
) -> R<()> {
    sqlx::query(
        "UPDATE gate_decisions SET ack_state = $1, attempts = $2, acked_ms = $3 WHERE id = $4",
    )
    .bind(state)
    .bind(attempts)
    .bind(acked.map(ms))
    .bind(id)
    .execute(conn.ex())
    .await?;
    Ok(())
}

pub async fn gate_decision(conn: &mut Conn, id: &str) -> R<Option<GateDecisionRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {GD_COLS} FROM gate_decisions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(gd_row).transpose()
}

pub async fn gate_decisions_for_session(
    conn: &mut Conn,
    session_id: &str,
) -> R<Vec<GateDecisionRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {GD_COLS} FROM gate_decisions WHERE session_id = $1 ORDER BY decided_ms"
    )))
    .bind(session_id)
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(gd_row).collect()
}

// ---------------------------------------------------------------- api keys

#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyRow {
    pub key_id: String,
    pub name: String,
    pub role: String,
    pub rate_per_minute: i64,
    pub source: String,
    pub revoked: bool,
}

pub async fn api_key_by_hash(conn: &mut Conn, hash: &str) -> R<Option<ApiKeyRow>> {
    let row = sqlx::query(
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
            revoked: r.try_get::<i64, _>(5)? != 0,
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
    sqlx::query(
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

// ---------------------------------------------------------------- plate reads

/// Stores a camera read once (re-deliveries of the same id are ignored).
pub async fn insert_plate_read(conn: &mut Conn, read: &crate::events::PlateRead) -> R<()> {
    sqlx::query(
        "INSERT INTO plate_reads (id, camera, role, gate, plate, raw_text, score, read_at, event_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&read.id)
    .bind(&read.camera)
    .bind(enum_str(&read.role))
    .bind(&read.gate)
    .bind(&read.plate)
    .bind(&read.raw_text)
    .bind(f64::from(read.score))
    .bind(read.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    .bind(serde_json::to_string(read).unwrap_or_default())
    .execute(conn.ex())
    .await?;
    Ok(())
}
