//! Reservations (bookings) of a bay or a space type for a time range.

use crate::core::Money;
use crate::core::{
    Plate, Reservation, ReservationId, ReservationStatus, ReservationTarget, SpaceId, SpaceType,
    TimeRange,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::codec::*;
use super::exec::Conn;

type R<T> = Result<T, sqlx::Error>;

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
