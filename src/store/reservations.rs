//! Reservations (bookings) of a bay or a space type for a time range.

use crate::core::Money;
use crate::core::{
    Plate, Reservation, ReservationId, ReservationStatus, ReservationTarget, SpaceId, SpaceType,
    TimeRange,
};
use chrono::{DateTime, Utc};

use super::codec::*;
use super::exec::Conn;

use super::sql::{self, Row};
use super::R;

// ---------------------------------------------------------------- reservations

#[derive(Debug, Clone)]
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

const T: &str = "reservations";

fn reservation_row(r: &Row) -> R<ReservationRow> {
    let c = r.of(T);
    Ok(ReservationRow {
        reservation_id: c.get(0)?,
        license_plate: c.get(1)?,
        space_id: c.get(2)?,
        space_type: c.text::<SpaceType>(3)?,
        requested: c.get(4)?,
        start_time: c.instant(5)?,
        end_time: c.instant(6)?,
        status: c.text::<ReservationStatus>(7)?,
        price: c.get(8)?,
        currency: c.currency(9)?,
        session_id: c.get(10)?,
        created_at: c.instant(11)?,
    })
}

impl ReservationRow {
    /// The core's view: a booking of the bay it holds; `None` if its plate
    /// or window is not a valid one (an error if a stored name is unknown).
    pub fn to_core(&self) -> R<Option<Reservation>> {
        let (Ok(plate), Ok(window)) = (
            Plate::parse(&self.license_plate),
            TimeRange::new(self.start_time, self.end_time),
        ) else {
            return Ok(None);
        };
        Ok(Some(Reservation {
            id: ReservationId::new(self.reservation_id.clone()),
            plate,
            target: ReservationTarget::Space(SpaceId::new(self.space_id.clone())),
            window,
            price: Money::new(self.price, decode_currency(T, "currency", &self.currency)?),
            status: ReservationStatus::decode(T, "status", &self.status)?,
        }))
    }

    /// The type of the reserved bay.
    pub fn space_type(&self) -> R<SpaceType> {
        SpaceType::decode(T, "space_type", &self.space_type)
    }
}

pub async fn reservation(conn: &mut Conn, id: &str) -> R<Option<ReservationRow>> {
    let row = sql::query(format!("SELECT {RES_COLS} FROM reservations WHERE id = $1"))
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
    let rows = sql::query(format!(
        "SELECT {RES_COLS} FROM reservations WHERE plate = $1 AND status IN ('booked', 'checked_in') AND end_ms > $2 ORDER BY start_ms LIMIT 5"
    ))
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
    let rows = sql::query(format!(
        "SELECT {RES_COLS} FROM reservations WHERE status IN ('booked', 'checked_in') AND start_ms < $1 AND end_ms > $2"
    ))
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
    let rows = sql::query(format!(
        "SELECT {RES_COLS} FROM reservations WHERE plate = $1 ORDER BY start_ms DESC LIMIT {limit}"
    ))
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
    let rows = sql::query(format!(
        "SELECT {RES_COLS} FROM reservations WHERE status = 'booked' AND start_ms <= $1"
    ))
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
    sql::query(
        "INSERT INTO reservations (id, plate, space_id, space_type, requested, start_ms, end_ms, status, price_minor, currency, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'booked', $8, $9, $10, $11)",
    )
    .bind(r.id)
    .bind(r.plate.as_str())
    .bind(r.space_id)
    .bind(r.space_type.to_db())
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
    let done = sql::query(
        "UPDATE reservations SET status = $1, session_id = COALESCE($2, session_id), updated_ms = $3 WHERE id = $4 AND status = $5",
    )
    .bind(to.to_db())
    .bind(session_id)
    .bind(ms(now))
    .bind(id)
    .bind(from.to_db())
    .execute(conn.ex())
    .await?;
    Ok(done.rows_affected() == 1)
}
