//! The audit log: appended inside the caller's transaction, read by subject.

use crate::core::AuditAction;
use chrono::{DateTime, Utc};

use super::exec::Conn;

use super::sql;
use super::R;

// ---------------------------------------------------------------- audit

/// Appends an audit record inside the caller's transaction.
pub async fn audit(
    conn: &mut Conn,
    at: DateTime<Utc>,
    actor: &str,
    action: AuditAction,
    subject: Option<&str>,
    reason: Option<&str>,
    detail: Option<&serde_json::Value>,
) -> R<()> {
    sql::query("INSERT INTO audit_log (at, actor, action, subject, reason, detail_json) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .bind(actor)
        .bind(action.as_str())
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
    records: Vec<Record>,
}

/// One gathered audit record, as its columns are written.
#[derive(Debug)]
struct Record {
    at: String,
    actor: String,
    action: &'static str,
    subject: Option<String>,
    reason: Option<String>,
    detail: Option<String>,
}

impl AuditBatch {
    pub fn push(
        &mut self,
        at: DateTime<Utc>,
        actor: &str,
        action: AuditAction,
        subject: Option<&str>,
        reason: Option<&str>,
        detail: Option<&serde_json::Value>,
    ) {
        self.records.push(Record {
            at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            actor: actor.to_string(),
            action: action.as_str(),
            subject: subject.map(String::from),
            reason: reason.map(String::from),
            detail: detail.map(|d| d.to_string()),
        });
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
        let mut q = sql::query(format!("INSERT INTO audit_log (at, actor, action, subject, reason, detail_json) VALUES {values}"));
        for r in self.records {
            q = q
                .bind(r.at)
                .bind(r.actor)
                .bind(r.action)
                .bind(r.subject)
                .bind(r.reason)
                .bind(r.detail);
        }
        q.execute(conn.ex()).await?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
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
            sql::query(format!("SELECT id, at, actor, action, subject, reason, detail_json FROM audit_log WHERE subject = $1 ORDER BY id DESC LIMIT {limit}"))
                .bind(s)
                .fetch_all(conn.ex())
                .await?
        }
        None => {
            sql::query(format!("SELECT id, at, actor, action, subject, reason, detail_json FROM audit_log ORDER BY id DESC LIMIT {limit}"))
                .fetch_all(conn.ex())
                .await?
        }
    };
    rows.iter()
        .map(|r| {
            let c = r.of("audit_log");
            Ok(AuditRow {
                id: c.get("id")?,
                at: c.get("at")?,
                actor: c.get("actor")?,
                action: c.get("action")?,
                subject: c.get("subject")?,
                reason: c.get("reason")?,
                detail: c.opt_json("detail_json")?,
            })
        })
        .collect()
}
