//! Gate decisions and their acknowledgements.

use chrono::{DateTime, Utc};

use super::codec::*;
use super::exec::Conn;
use crate::events::Role;

use super::sql::{self, Row};
use super::R;

// ---------------------------------------------------------------- gate decisions

#[derive(Debug, Clone)]
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

fn gd_row(r: &Row) -> R<GateDecisionRow> {
    let c = r.of("gate_decisions");
    Ok(GateDecisionRow {
        decision_id: c.get(0)?,
        gate: c.get(1)?,
        direction: c.text::<Role>(2)?,
        license_plate: c.get(3)?,
        session_id: c.get(4)?,
        command: c.get(5)?,
        verdict: c.get(6)?,
        reason: c.get(7)?,
        explanation: c.get(8)?,
        amount: c.get(9)?,
        read_id: c.get(10)?,
        source: c.get(11)?,
        decided_at: c.instant(12)?,
        ack_state: c.get(13)?,
        acked_at: c.opt_instant(14)?,
        attempts: c.get(15)?,
    })
}

pub async fn insert_gate_decision(conn: &mut Conn, d: &GateDecisionRow) -> R<()> {
    sql::query(
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
    sql::query(
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
    let row = sql::query(format!(
        "SELECT {GD_COLS} FROM gate_decisions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(gd_row).transpose()
}

pub async fn gate_decisions_for_session(
    conn: &mut Conn,
    session_id: &str,
) -> R<Vec<GateDecisionRow>> {
    let rows = sql::query(format!(
        "SELECT {GD_COLS} FROM gate_decisions WHERE session_id = $1 ORDER BY decided_ms"
    ))
    .bind(session_id)
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(gd_row).collect()
}
