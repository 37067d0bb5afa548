//! Vehicles seen, what is known about a plate, and the camera reads stored once.

use crate::core::{ListMembership, Permit, Plate, VehicleType};
use chrono::{DateTime, Utc};

use super::codec::*;
use super::exec::Conn;
use super::registry::add_membership;

use super::sql;
use super::R;

// ---------------------------------------------------------------- vehicles

pub async fn upsert_vehicle(
    conn: &mut Conn,
    plate: &Plate,
    vehicle_type: Option<VehicleType>,
    now: DateTime<Utc>,
) -> R<()> {
    let t = vehicle_type.unwrap_or(VehicleType::Unknown);
    sql::query(
        "INSERT INTO vehicles (plate, vehicle_type, first_seen_ms, last_seen_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (plate) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, \
         vehicle_type = CASE WHEN excluded.vehicle_type = 'unknown' THEN vehicles.vehicle_type ELSE excluded.vehicle_type END",
    )
    .bind(plate.as_str())
    .bind(t.to_db())
    .bind(ms(now))
    .bind(ms(now))
    .execute(conn.ex())
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct VehicleRow {
    pub license_plate: String,
    pub vehicle_type: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

pub async fn vehicle(conn: &mut Conn, plate: &Plate) -> R<Option<VehicleRow>> {
    let row = sql::query(
        "SELECT plate, vehicle_type, first_seen_ms, last_seen_ms FROM vehicles WHERE plate = $1",
    )
    .bind(plate.as_str())
    .fetch_optional(conn.ex())
    .await?;
    row.map(|r| {
        let c = r.of("vehicles");
        Ok(VehicleRow {
            license_plate: c.get(0)?,
            vehicle_type: c.text::<VehicleType>(1)?,
            first_seen: c.instant(2)?,
            last_seen: c.instant(3)?,
        })
    })
    .transpose()
}

/// What an entry decision needs to know about a plate besides its sessions:
/// its lists, its permits and its known vehicle type.
#[derive(Debug, Default)]
pub struct PlateFacts {
    pub lists: ListMembership,
    pub permits: Vec<Permit>,
    pub vehicle_type: Option<VehicleType>,
}

/// [`list_membership`], [`permits_for`] and the vehicle's type for one
/// plate in one statement: this runs inside the entry's write transaction,
/// where each statement is a round trip that every other writer waits for.
pub async fn plate_facts(conn: &mut Conn, plate: &Plate) -> R<PlateFacts> {
    let rows = sql::query(
        "SELECT 'list', list FROM plate_lists WHERE plate = $1 \
         UNION ALL SELECT 'permit', permit_json FROM permits WHERE plate = $1 \
         UNION ALL SELECT 'vehicle', vehicle_type FROM vehicles WHERE plate = $1",
    )
    .bind(plate.as_str())
    .fetch_all(conn.ex())
    .await?;
    let mut f = PlateFacts::default();
    for r in &rows {
        match r.try_get::<String>(0)?.as_str() {
            "list" => add_membership(&mut f.lists, &r.try_get::<String>(1)?)?,
            "permit" => f.permits.push(r.of("permits").json(1)?),
            _ => {
                let t: VehicleType = r.of("vehicles").enumeration(1)?;
                f.vehicle_type = Some(t).filter(|t| *t != VehicleType::Unknown)
            }
        }
    }
    Ok(f)
}

// ---------------------------------------------------------------- plate reads

/// Stores a camera read once (re-deliveries of the same id are ignored),
/// with `json`, the read as JSON.
pub async fn insert_plate_read(
    conn: &mut Conn,
    read: &crate::events::PlateRead,
    json: &str,
) -> R<()> {
    sql::query(
        "INSERT INTO plate_reads (id, camera, role, gate, plate, raw_text, score, read_at, event_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&read.id)
    .bind(&read.camera)
    .bind(read.role.to_db())
    .bind(&read.gate)
    .bind(&read.plate)
    .bind(&read.raw_text)
    .bind(f64::from(read.score))
    .bind(read.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    .bind(json)
    .execute(conn.ex())
    .await?;
    Ok(())
}
