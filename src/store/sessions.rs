//! Parking sessions: opened at entry, closed at exit.

use crate::core::Currency;
use crate::core::{OpenSession, Plate, ReservationId, SessionId, SpaceId, SpaceType, VehicleType};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::codec::*;
use super::exec::Conn;

type R<T> = Result<T, sqlx::Error>;

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
