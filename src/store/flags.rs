//! Flags raised for staff (watch-list hits, unpaid exits, …).

use chrono::{DateTime, Utc};

use super::codec::*;
use super::exec::Conn;
use crate::core::{FlagKind, FlagStatus};

use super::sql::{self, Row};
use super::R;

// ---------------------------------------------------------------- flags

#[derive(Debug, Clone)]
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

fn flag_row(r: &Row) -> R<FlagRow> {
    let c = r.of("flags");
    Ok(FlagRow {
        flag_id: c.get(0)?,
        kind: c.text::<FlagKind>(1)?,
        license_plate: c.get(2)?,
        session_id: c.get(3)?,
        gate: c.get(4)?,
        detail: c.get(5)?,
        evidence: c.opt_json(6)?,
        status: c.text::<FlagStatus>(7)?,
        created_at: c.instant(8)?,
        updated_at: c.instant(9)?,
        updated_by: c.get(10)?,
        note: c.get(11)?,
    })
}

/// What a new flag is raised with (it starts `open`).
#[derive(Debug, Clone)]
pub struct NewFlag<'a> {
    pub kind: FlagKind,
    pub plate: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub gate: Option<&'a str>,
    pub detail: &'a str,
    pub evidence: Option<&'a serde_json::Value>,
    pub now: DateTime<Utc>,
}

/// Raises a flag; returns its new id.
pub async fn insert_flag(conn: &mut Conn, f: &NewFlag<'_>) -> R<String> {
    let id = new_id();
    sql::query(
        "INSERT INTO flags (id, kind, plate, session_id, gate, detail, evidence_json, status, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9)",
    )
    .bind(&id)
    .bind(f.kind.to_db())
    .bind(f.plate)
    .bind(f.session_id)
    .bind(f.gate)
    .bind(f.detail)
    .bind(f.evidence.map(|e| e.to_string()))
    .bind(ms(f.now))
    .bind(ms(f.now))
    .execute(conn.ex())
    .await?;
    Ok(id)
}

pub async fn flag(conn: &mut Conn, id: &str) -> R<Option<FlagRow>> {
    let row = sql::query(format!("SELECT {FLAG_COLS} FROM flags WHERE id = $1"))
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
    let mut q = sql::query(sql);
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
    let done = sql::query("UPDATE flags SET status = $1, updated_by = $2, note = COALESCE($3, note), updated_ms = $4 WHERE id = $5 AND status = $6")
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
