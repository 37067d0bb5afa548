//! Parking sessions: opened at entry, closed at exit.

use crate::core::Currency;
use crate::core::{OpenSession, Plate, ReservationId, SessionId, SpaceId, SpaceType, VehicleType};
use chrono::{DateTime, Utc};

use super::codec::*;
use super::exec::Conn;

use super::sql::{self, Row};
use super::R;

// ---------------------------------------------------------------- sessions

#[derive(Debug, Clone)]
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

const T: &str = "sessions";

fn session_row(r: &Row) -> R<SessionRow> {
    let c = r.of(T);
    Ok(SessionRow {
        session_id: c.get(0)?,
        license_plate: c.get(1)?,
        vehicle_type: c.text::<VehicleType>(2)?,
        status: c.get(3)?,
        entry_time: c.instant(4)?,
        exit_time: c.opt_instant(5)?,
        entry_gate: c.get(6)?,
        exit_gate: c.get(7)?,
        entry_read_id: c.get(8)?,
        exit_read_id: c.get(9)?,
        space_id: c.get(10)?,
        space_type: c.opt_text::<SpaceType>(11)?,
        reservation_id: c.get(12)?,
        entry_reason: c.get(13)?,
        exit_reason: c.get(14)?,
        fee: c.get(15)?,
        currency: c.currency(16)?,
        evidence: c.opt_json(17)?,
    })
}

impl SessionRow {
    /// The core's view of an open session; `None` if its plate does not
    /// parse as one (an error if a stored name is unknown).
    pub fn to_open(&self) -> R<Option<OpenSession>> {
        let Ok(plate) = Plate::parse(&self.license_plate) else {
            return Ok(None);
        };
        Ok(Some(OpenSession {
            id: SessionId::new(self.session_id.clone()),
            plate,
            started_at: self.entry_time,
            vehicle_type: self.vehicle_type()?,
            space: self.space_id.clone().map(SpaceId::new),
            space_type: self.space_type()?,
            reservation: self.reservation_id.clone().map(ReservationId::new),
        }))
    }

    /// The session's vehicle type.
    pub fn vehicle_type(&self) -> R<VehicleType> {
        VehicleType::decode(T, "vehicle_type", &self.vehicle_type)
    }

    /// The type of the session's bay, if it has one.
    pub fn space_type(&self) -> R<Option<SpaceType>> {
        self.space_type
            .as_deref()
            .map(|s| SpaceType::decode(T, "space_type", s))
            .transpose()
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
    sql::query(
        "INSERT INTO sessions (id, plate, vehicle_type, status, started_ms, entry_gate, entry_read_id, space_id, space_type, \
         reservation_id, entry_reason, currency, evidence_json) VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(s.id)
    .bind(s.plate.as_str())
    .bind(s.vehicle_type.to_db())
    .bind(ms(s.started))
    .bind(s.gate)
    .bind(s.read_id)
    .bind(s.space.map(|(id, _)| id))
    .bind(s.space.map(|(_, t)| t.to_db()))
    .bind(s.reservation_id)
    .bind(s.reason)
    .bind(s.currency.as_str())
    .bind(s.evidence.map(|e| e.to_string()))
    .execute(conn.ex())
    .await?;
    Ok(())
}

/// How a session ends: closed at an exit, or superseded by a new entry.
#[derive(Debug, Clone)]
pub struct SessionEnd<'a> {
    pub id: &'a str,
    /// `closed` or `superseded`.
    pub status: &'a str,
    pub ended: DateTime<Utc>,
    pub exit_gate: Option<&'a str>,
    pub exit_read_id: Option<&'a str>,
    pub fee_minor: Option<i64>,
    pub reason: &'a str,
}

impl<'a> SessionEnd<'a> {
    /// A stale open session replaced by a new entry of its plate.
    pub fn superseded(id: &'a str, at: DateTime<Utc>) -> SessionEnd<'a> {
        SessionEnd {
            id,
            status: "superseded",
            ended: at,
            exit_gate: None,
            exit_read_id: None,
            fee_minor: None,
            reason: "superseded",
        }
    }
}

/// Closes an open session (or marks it superseded). False if it was not open.
pub async fn close_session(conn: &mut Conn, end: &SessionEnd<'_>) -> R<bool> {
    let done = sql::query(
        "UPDATE sessions SET status = $1, ended_ms = $2, exit_gate = $3, exit_read_id = $4, fee_minor = $5, exit_reason = $6 \
         WHERE id = $7 AND status = 'open'",
    )
    .bind(end.status)
    .bind(ms(end.ended))
    .bind(end.exit_gate)
    .bind(end.exit_read_id)
    .bind(end.fee_minor)
    .bind(end.reason)
    .bind(end.id)
    .execute(conn.ex())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn open_session_for(conn: &mut Conn, plate: &Plate) -> R<Option<SessionRow>> {
    let row = sql::query(format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE plate = $1 AND status = 'open'"
    ))
    .bind(plate.as_str())
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(session_row).transpose()
}

pub async fn open_sessions(conn: &mut Conn) -> R<Vec<SessionRow>> {
    let rows = sql::query(format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE status = 'open'"
    ))
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(session_row).collect()
}

pub async fn session(conn: &mut Conn, id: &str) -> R<Option<SessionRow>> {
    let row = sql::query(format!("SELECT {SESSION_COLS} FROM sessions WHERE id = $1"))
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
    let mut q = sql::query(sql);
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
    sql::query("SELECT COUNT(*) FROM sessions WHERE status = 'open'")
        .fetch_one(conn.ex())
        .await?
        .try_get(0)
}
