//! Parking spaces (bays): seeded from the site file, claimed by sessions,
//! reported by sensors and overridden by staff.

use crate::core::baywatch;
use crate::core::BayState;
use crate::core::{Space, SpaceId, SpaceStatus, SpaceType};
use chrono::{DateTime, Utc};

use super::codec::*;
use super::exec::Conn;

use super::sql::{self, Row};
use super::R;

// ---------------------------------------------------------------- seeds

/// One configured space, as the store needs it.
#[derive(Debug, Clone)]
pub struct SpaceSeed {
    pub id: String,
    pub level: String,
    pub zone: String,
    pub space_type: SpaceType,
    pub rank: u32,
}

/// Inserts or updates the configured spaces (keeping their live status);
/// spaces no longer configured are taken out of service unless occupied.
pub async fn sync_spaces(conn: &mut Conn, seeds: &[SpaceSeed], now: DateTime<Utc>) -> R<()> {
    sql::query("UPDATE spaces SET in_config = 0")
        .execute(conn.ex())
        .await?;
    for s in seeds {
        sql::query(
            "INSERT INTO spaces (id, level, zone, space_type, rank, status, sensor_state, in_config, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, 'available', 'unknown', 1, $6) \
             ON CONFLICT (id) DO UPDATE SET level = excluded.level, zone = excluded.zone, \
             space_type = excluded.space_type, rank = excluded.rank, in_config = 1",
        )
        .bind(&s.id)
        .bind(&s.level)
        .bind(&s.zone)
        .bind(s.space_type.to_db())
        .bind(i64::from(s.rank))
        .bind(ms(now))
        .execute(conn.ex())
        .await?;
    }
    sql::query("UPDATE spaces SET status = 'out_of_service', updated_ms = $1 WHERE in_config = 0 AND status = 'available'")
        .bind(ms(now))
        .execute(conn.ex())
        .await?;
    Ok(())
}

// ---------------------------------------------------------------- spaces

#[derive(Debug, Clone)]
pub struct SpaceRow {
    pub space_id: String,
    pub level: String,
    pub zone: String,
    pub space_type: String,
    pub rank: i64,
    /// Stored allocation status: available | occupied | out_of_service.
    pub status: String,
    pub session_id: Option<String>,
    /// What a sensor or camera last said (free | occupied | unknown), and since when.
    pub sensor_state: String,
    pub sensor_since: Option<DateTime<Utc>>,
    /// A staff override of the occupancy state (free | occupied) that wins
    /// over sensors and cameras until cleared; who set it.
    pub override_state: Option<String>,
    pub override_by: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// `sensor_since` of the occupancy episode already flagged.
    pub flagged_episode: Option<DateTime<Utc>>,
}

const SPACE_COLS: &str =
    "id, level, zone, space_type, rank, status, session_id, sensor_state, updated_ms, sensor_since_ms, override_state, override_by, sensor_flagged_ms";

const T: &str = "spaces";

fn space_row(r: &Row) -> R<SpaceRow> {
    let c = r.of(T);
    Ok(SpaceRow {
        space_id: c.get(0)?,
        level: c.get(1)?,
        zone: c.get(2)?,
        space_type: c.text::<SpaceType>(3)?,
        rank: c.get(4)?,
        status: c.text::<SpaceStatus>(5)?,
        session_id: c.get(6)?,
        sensor_state: c.text::<BayState>(7)?,
        updated_at: c.instant(8)?,
        sensor_since: c.opt_instant(9)?,
        override_state: c.opt_text::<BayState>(10)?,
        override_by: c.get(11)?,
        flagged_episode: c.opt_instant(12)?,
    })
}

impl SpaceRow {
    /// The state that counts for this bay: the staff override, else the sensor's.
    pub fn sensed(&self) -> R<BayState> {
        let sensor = BayState::decode(T, "sensor_state", &self.sensor_state)?;
        let over = self
            .override_state
            .as_deref()
            .map(|s| BayState::decode(T, "override_state", s))
            .transpose()?;
        Ok(baywatch::effective(sensor, over))
    }

    /// The core's view of the bay (`held`: kept for a booking).
    pub fn to_core(&self, held: bool) -> R<Space> {
        let stored = SpaceStatus::decode(T, "status", &self.status)?;
        let status = baywatch::allocation_status(stored, held, self.sensed()?);
        Ok(Space {
            id: SpaceId::new(self.space_id.clone()),
            level: self.level.clone(),
            zone: self.zone.clone(),
            space_type: self.space_type()?,
            rank: self.rank.clamp(0, i64::from(u32::MAX)) as u32,
            status,
        })
    }

    /// The bay's type.
    pub fn space_type(&self) -> R<SpaceType> {
        SpaceType::decode(T, "space_type", &self.space_type)
    }
}

pub async fn all_spaces(conn: &mut Conn) -> R<Vec<SpaceRow>> {
    let rows = sql::query(format!(
        "SELECT {SPACE_COLS} FROM spaces WHERE in_config = 1 ORDER BY rank, id"
    ))
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(space_row).collect()
}

/// Bays free for allocation (stored status `available`).
pub async fn available_spaces(conn: &mut Conn) -> R<Vec<SpaceRow>> {
    let rows = sql::query(format!(
        "SELECT {SPACE_COLS} FROM spaces WHERE status = 'available' AND in_config = 1"
    ))
    .fetch_all(conn.ex())
    .await?;
    rows.iter().map(space_row).collect()
}

/// The `limit` nearest free bays of each space type (by rank, then id):
/// enough for the core to choose from without reading the whole car park.
/// `truncated` says whether some type had more. One statement (a `UNION ALL`
/// of one index range per type) rather than one per type, because every
/// statement is a round trip and this runs inside the write transaction.
///
/// Here and below, `LIMIT` is written as a literal: SQLite's planner reads
/// a bound `LIMIT` value, so a statement with `LIMIT $n` is re-prepared
/// every time it is bound, which defeats the prepared-statement cache.
pub async fn nearest_available_spaces(conn: &mut Conn, limit: i64) -> R<(Vec<SpaceRow>, bool)> {
    let sql = SpaceType::ALL
        .iter()
        .map(|t| {
            let t = t.to_db();
            format!("SELECT * FROM (SELECT {SPACE_COLS} FROM spaces WHERE status = 'available' AND space_type = '{t}' AND in_config = 1 ORDER BY rank, id LIMIT {limit}) AS nearest_{t}")
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows = sql::query(sql).fetch_all(conn.ex()).await?;
    let out = rows.iter().map(space_row).collect::<R<Vec<_>>>()?;
    let truncated = SpaceType::ALL
        .iter()
        .any(|t| out.iter().filter(|r| r.space_type == t.to_db()).count() as i64 >= limit);
    Ok((out, truncated))
}

/// Bays per (type, stored status), counted by the database.
pub async fn space_counts(conn: &mut Conn) -> R<Vec<(String, String, i64)>> {
    let rows = sql::query("SELECT space_type, status, COUNT(*) FROM spaces WHERE in_config = 1 GROUP BY space_type, status").fetch_all(conn.ex()).await?;
    rows.iter()
        .map(|r| {
            let c = r.of(T);
            Ok((
                c.text::<SpaceType>(0)?,
                c.text::<SpaceStatus>(1)?,
                c.get(2)?,
            ))
        })
        .collect()
}

pub async fn space(conn: &mut Conn, id: &str) -> R<Option<SpaceRow>> {
    let row = sql::query(format!("SELECT {SPACE_COLS} FROM spaces WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn.ex())
        .await?;
    row.as_ref().map(space_row).transpose()
}

/// Bays held for booked reservations at `now`: the reservation's check-in
/// window opens within `lead` (early check-in + hold) and it has not ended.
pub async fn held_spaces(
    conn: &mut Conn,
    now: DateTime<Utc>,
    lead_ms: i64,
) -> R<Vec<(String, String, String)>> {
    let rows = sql::query(
        "SELECT space_id, id, plate FROM reservations WHERE status = 'booked' AND start_ms <= $1 AND end_ms > $2",
    )
    .bind(ms(now) + lead_ms)
    .bind(ms(now))
    .fetch_all(conn.ex())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

/// Atomically takes a free bay for a session. False when someone was faster.
pub async fn claim_space(
    conn: &mut Conn,
    space_id: &str,
    session_id: &str,
    now: DateTime<Utc>,
) -> R<bool> {
    let done = sql::query("UPDATE spaces SET status = 'occupied', session_id = $1, updated_ms = $2 WHERE id = $3 AND status = 'available'")
        .bind(session_id)
        .bind(ms(now))
        .bind(space_id)
        .execute(conn.ex())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Frees the session's bay, if it had one; returns the bay's id.
pub async fn release_space_of(
    conn: &mut Conn,
    session_id: &str,
    now: DateTime<Utc>,
) -> R<Option<String>> {
    let row = sql::query("UPDATE spaces SET status = 'available', session_id = NULL, updated_ms = $1 WHERE session_id = $2 RETURNING id")
        .bind(ms(now))
        .bind(session_id)
        .fetch_optional(conn.ex())
        .await?;
    row.map(|r| r.try_get(0)).transpose()
}

/// Staff status change between `available` and `out_of_service`; false if
/// the bay is occupied (or already in that status).
pub async fn set_space_status(
    conn: &mut Conn,
    id: &str,
    status: &str,
    now: DateTime<Utc>,
) -> R<bool> {
    let done = sql::query(
        "UPDATE spaces SET status = $1, updated_ms = $2 WHERE id = $3 AND status <> 'occupied'",
    )
    .bind(status)
    .bind(ms(now))
    .bind(id)
    .execute(conn.ex())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a sensor/camera state; `sensor_since` moves only when the state changes.
pub async fn set_sensor_state(
    conn: &mut Conn,
    id: &str,
    state: &str,
    now: DateTime<Utc>,
) -> R<bool> {
    let done = sql::query(
        "UPDATE spaces SET sensor_since_ms = CASE WHEN sensor_state = $1 AND sensor_since_ms IS NOT NULL THEN sensor_since_ms ELSE $2 END, \
         sensor_state = $1, updated_ms = $2 WHERE id = $3",
    )
    .bind(state)
    .bind(ms(now))
    .bind(id)
    .execute(conn.ex())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets (`Some`) or clears (`None`) the staff override of a bay's occupancy state.
pub async fn set_override(
    conn: &mut Conn,
    id: &str,
    state: Option<&str>,
    by: &str,
    now: DateTime<Utc>,
) -> R<bool> {
    let done = sql::query("UPDATE spaces SET override_state = $1, override_by = $2, override_ms = $3, updated_ms = $3 WHERE id = $4")
        .bind(state)
        .bind(state.map(|_| by))
        .bind(ms(now))
        .bind(id)
        .execute(conn.ex())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Remembers that the occupancy episode starting at `since` was flagged.
pub async fn mark_bay_flagged(conn: &mut Conn, id: &str, since: DateTime<Utc>) -> R<()> {
    sql::query("UPDATE spaces SET sensor_flagged_ms = $1 WHERE id = $2")
        .bind(ms(since))
        .bind(id)
        .execute(conn.ex())
        .await?;
    Ok(())
}

/// Bays with a staff override: (space id, state).
pub async fn overrides(conn: &mut Conn) -> R<Vec<(String, String)>> {
    let rows = sql::query("SELECT id, override_state FROM spaces WHERE override_state IS NOT NULL AND in_config = 1 ORDER BY id").fetch_all(conn.ex()).await?;
    rows.iter()
        .map(|r| {
            let c = r.of(T);
            Ok((c.get(0)?, c.text::<BayState>(1)?))
        })
        .collect()
}
