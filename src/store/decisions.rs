//! Gate decisions and their acknowledgements.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::codec::*;
use super::exec::Conn;

type R<T> = Result<T, sqlx::Error>;

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
