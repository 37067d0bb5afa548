//! Payments, the gateway ledger, receipts and debts.

use crate::core::Money;
use crate::core::{Payment, PaymentId, PaymentKind, PaymentMethod, PaymentStatus, Plate};
use chrono::{DateTime, Utc};

use super::codec::*;
use super::exec::Conn;

use super::sql::{self, Row};
use super::R;

// ---------------------------------------------------------------- payments

#[derive(Debug, Clone, PartialEq)]
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

const T: &str = "payments";

fn payment_row(r: &Row) -> R<PaymentRow> {
    let c = r.of(T);
    Ok(PaymentRow {
        payment_id: c.get(0)?,
        idempotency_key: c.get(1)?,
        kind: c.text::<PaymentKind>(2)?,
        session_id: c.get(3)?,
        reservation_id: c.get(4)?,
        license_plate: c.get(5)?,
        purpose: c.get(6)?,
        parent_id: c.get(7)?,
        payment_method: c.text::<PaymentMethod>(8)?,
        status: c.text::<PaymentStatus>(9)?,
        amount: c.get(10)?,
        currency: c.currency(11)?,
        reason: c.get(12)?,
        failure: c.get(13)?,
        gateway_ref: c.get(14)?,
        actor: c.get(15)?,
        created_at: c.instant(16)?,
        completed_at: c.opt_instant(17)?,
    })
}

impl PaymentRow {
    /// The core's view of the payment (an error if a stored name is unknown).
    pub fn to_core(&self) -> R<Payment> {
        Ok(Payment {
            id: PaymentId::new(self.payment_id.clone()),
            kind: PaymentKind::decode(T, "kind", &self.kind)?,
            method: self.method()?,
            status: PaymentStatus::decode(T, "status", &self.status)?,
            amount: Money::new(self.amount, decode_currency(T, "currency", &self.currency)?),
            at: self.completed_at.unwrap_or(self.created_at),
        })
    }

    /// How the payment was made.
    pub fn method(&self) -> R<PaymentMethod> {
        PaymentMethod::decode(T, "method", &self.payment_method)
    }
}

pub async fn payment(conn: &mut Conn, id: &str) -> R<Option<PaymentRow>> {
    let row = sql::query(format!("SELECT {PAY_COLS} FROM payments WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn.ex())
        .await?;
    row.as_ref().map(payment_row).transpose()
}

pub async fn payment_by_key(conn: &mut Conn, key: &str) -> R<Option<PaymentRow>> {
    let row = sql::query(format!(
        "SELECT {PAY_COLS} FROM payments WHERE idempotency_key = $1"
    ))
    .bind(key)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(payment_row).transpose()
}

pub async fn payments_for_session(conn: &mut Conn, session_id: &str) -> R<Vec<PaymentRow>> {
    let rows = sql::query(format!(
        "SELECT {PAY_COLS} FROM payments WHERE session_id = $1 ORDER BY created_ms"
    ))
    .bind(session_id)
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(payment_row).collect()
}

pub async fn payments_for_reservation(conn: &mut Conn, reservation_id: &str) -> R<Vec<PaymentRow>> {
    let rows = sql::query(format!(
        "SELECT {PAY_COLS} FROM payments WHERE reservation_id = $1 ORDER BY created_ms"
    ))
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
    let rows = sql::query(format!(
        "SELECT {PAY_COLS} FROM payments WHERE plate = $1 AND session_id IS NULL AND reservation_id IS NULL AND created_ms >= $2 ORDER BY created_ms"
    ))
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
            sql::query(format!("SELECT {PAY_COLS} FROM payments WHERE session_id = $1 ORDER BY created_ms DESC LIMIT {limit}"))
                .bind(s)
                .fetch_all(conn.ex())
                .await?
        }
        None => sql::query(format!("SELECT {PAY_COLS} FROM payments ORDER BY created_ms DESC LIMIT {limit}")).fetch_all(conn.ex()).await?,
    };
    rows.iter().map(payment_row).collect()
}

pub async fn pending_payments(conn: &mut Conn) -> R<Vec<PaymentRow>> {
    let rows = sql::query(format!(
        "SELECT {PAY_COLS} FROM payments WHERE status = 'pending' ORDER BY created_ms"
    ))
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(payment_row).collect()
}

/// Gives a payment the caller's idempotency key.
pub async fn set_payment_key(conn: &mut Conn, payment_id: &str, key: &str) -> R<()> {
    sql::query("UPDATE payments SET idempotency_key = $1 WHERE id = $2")
        .bind(key)
        .bind(payment_id)
        .execute(conn.ex())
        .await?;
    Ok(())
}

/// Inserts a payment row as given (usually `pending`).
pub async fn insert_payment(conn: &mut Conn, p: &PaymentRow) -> R<()> {
    sql::query(
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
    let row = sql::query(format!(
        "UPDATE payments SET status = $1, gateway_ref = $2, failure = $3, completed_ms = $4 WHERE id = $5 AND status = 'pending' RETURNING {PAY_COLS}"
    ))
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
    let done = sql::query("UPDATE payments SET status = 'pending', failure = NULL, completed_ms = NULL WHERE id = $1 AND status = 'failed'")
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
    let inserted = sql::query(
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
        None => sql::query("SELECT reference FROM gateway_ledger WHERE idempotency_key = $1")
            .bind(key)
            .fetch_one(conn.ex())
            .await?
            .try_get(0),
    }
}

// ---------------------------------------------------------------- receipts

#[derive(Debug, Clone)]
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
    sql::query("INSERT INTO receipts (id, number, payment_id, body_json, created_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (payment_id) DO NOTHING")
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
    let row = sql::query("SELECT id, number, payment_id, body_json, created_ms FROM receipts WHERE payment_id = $1 OR id = $2")
        .bind(payment_id)
        .bind(payment_id)
        .fetch_optional(conn.ex())
        .await?;
    row.map(|r| {
        let c = r.of("receipts");
        Ok(ReceiptRow {
            receipt_id: c.get(0)?,
            number: c.get(1)?,
            payment_id: c.get(2)?,
            body: c.json(3)?,
            created_at: c.instant(4)?,
        })
    })
    .transpose()
}

// ---------------------------------------------------------------- debts

#[derive(Debug, Clone)]
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
    sql::query(
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

fn debt_row(r: &Row) -> R<DebtRow> {
    let c = r.of("debts");
    Ok(DebtRow {
        debt_id: c.get(0)?,
        license_plate: c.get(1)?,
        session_id: c.get(2)?,
        reservation_id: c.get(3)?,
        kind: c.get(4)?,
        amount: c.get(5)?,
        currency: c.currency(6)?,
        incurred_at: c.instant(7)?,
        settled_at: c.opt_instant(8)?,
    })
}

pub async fn open_debts_for(conn: &mut Conn, plate: &str) -> R<Vec<DebtRow>> {
    let rows = sql::query(format!("SELECT {DEBT_COLS} FROM debts WHERE plate = $1 AND settled_ms IS NULL ORDER BY incurred_ms"))
        .bind(plate)
        .fetch_all(conn.ex())
        .await?;
    rows.iter().map(debt_row).collect()
}

pub async fn debt_for_session(conn: &mut Conn, session_id: &str) -> R<Option<DebtRow>> {
    let row = sql::query(format!(
        "SELECT {DEBT_COLS} FROM debts WHERE session_id = $1"
    ))
    .bind(session_id)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(debt_row).transpose()
}

pub async fn debt_for_reservation(conn: &mut Conn, reservation_id: &str) -> R<Option<DebtRow>> {
    let row = sql::query(format!(
        "SELECT {DEBT_COLS} FROM debts WHERE reservation_id = $1"
    ))
    .bind(reservation_id)
    .fetch_optional(conn.ex())
    .await?;
    row.as_ref().map(debt_row).transpose()
}

pub async fn settle_debt(conn: &mut Conn, id: &str, now: DateTime<Utc>) -> R<()> {
    sql::query("UPDATE debts SET settled_ms = $1 WHERE id = $2 AND settled_ms IS NULL")
        .bind(ms(now))
        .bind(id)
        .execute(conn.ex())
        .await?;
    Ok(())
}
