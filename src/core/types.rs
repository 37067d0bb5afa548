//! Core domain vocabulary: identifiers, spaces, vehicles and open sessions.
//!
//! Identifiers are opaque string newtypes: the core only compares them, so the
//! store is free to use UUIDs, database keys or human-readable bay labels.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::plate::Plate;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A parking bay.
    SpaceId
);
id_type!(
    /// A car park (one barrier system, one set of spaces).
    LotId
);
id_type!(
    /// A parking session: one stay from entry to exit.
    SessionId
);
id_type!(
    /// A reservation.
    ReservationId
);
id_type!(
    /// A permit.
    PermitId
);
id_type!(
    /// A payment or refund record.
    PaymentId
);

/// Physical kind of a bay. Ordered roughly smallest → largest so `BTreeMap`s print nicely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpaceType {
    Motorcycle,
    Compact,
    Large,
    Handicapped,
    Ev,
}

impl SpaceType {
    pub const ALL: [SpaceType; 5] = [
        SpaceType::Motorcycle,
        SpaceType::Compact,
        SpaceType::Large,
        SpaceType::Handicapped,
        SpaceType::Ev,
    ];
}

impl SpaceType {
    /// The snake_case name used in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            SpaceType::Motorcycle => "motorcycle",
            SpaceType::Compact => "compact",
            SpaceType::Large => "large",
            SpaceType::Handicapped => "handicapped",
            SpaceType::Ev => "ev",
        }
    }
}

impl fmt::Display for SpaceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Live status of a bay as known to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpaceStatus {
    Available,
    Occupied,
    /// Held for a reservation; only that reservation may be assigned to it.
    Reserved,
    OutOfService,
}

/// Vehicle class as reported by the entry camera's classifier (or the kiosk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleType {
    Car,
    Motorcycle,
    Van,
    Ev,
    Truck,
    /// The classifier could not tell; the default compatibility table treats it like a car.
    Unknown,
}

impl VehicleType {
    /// The snake_case name used in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            VehicleType::Car => "car",
            VehicleType::Motorcycle => "motorcycle",
            VehicleType::Van => "van",
            VehicleType::Ev => "ev",
            VehicleType::Truck => "truck",
            VehicleType::Unknown => "unknown",
        }
    }
}

impl fmt::Display for VehicleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parking bay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Space {
    pub id: SpaceId,
    pub level: String,
    pub zone: String,
    #[serde(rename = "type")]
    pub space_type: SpaceType,
    /// Walking distance to the entrance, as an ordinal: lower is closer.
    pub rank: u32,
    pub status: SpaceStatus,
}

/// A session that has been opened at entry and not yet closed at exit.
///
/// This is the snapshot the store passes into entry (duplicate detection) and
/// exit (matching and pricing) decisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSession {
    pub id: SessionId,
    pub plate: Plate,
    pub started_at: DateTime<Utc>,
    pub vehicle_type: VehicleType,
    pub space: Option<SpaceId>,
    pub space_type: Option<SpaceType>,
    pub reservation: Option<ReservationId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_serialise_snake_case() {
        assert_eq!(
            serde_json::to_string(&SpaceStatus::OutOfService).unwrap(),
            r#""out_of_service""#
        );
        assert_eq!(serde_json::to_string(&SpaceType::Ev).unwrap(), r#""ev""#);
        let space = Space {
            id: SpaceId::new("A-01"),
            level: "P1".into(),
            zone: "A".into(),
            space_type: SpaceType::Compact,
            rank: 3,
            status: SpaceStatus::Available,
        };
        let json = serde_json::to_value(&space).unwrap();
        assert_eq!(json["type"], "compact");
        assert_eq!(json["id"], "A-01");
        for t in SpaceType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(
            serde_json::to_value(VehicleType::Unknown).unwrap(),
            "unknown"
        );
    }
}

crate::variants!(SpaceType, Motorcycle, Compact, Large, Handicapped, Ev);
crate::variants!(VehicleType, Car, Motorcycle, Van, Ev, Truck, Unknown);
crate::variants!(SpaceStatus, Available, Occupied, Reserved, OutOfService);
