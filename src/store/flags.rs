//! Flags raised for staff (watch-list hits, unpaid exits, …).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::codec::*;
use super::exec::Conn;

type R<T> = Result<T, sqlx::Error>;

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
