//! `GET /api/displays`: the board figures for displays that poll HTTP
//! instead of subscribing to MQTT. The same numbers as the retained topics:
//! plain free counters per level, zone and type, the full summary, and each
//! bay's state. (`/api/availability` is served by the parking core from
//! [`OccupancyHandle::snapshot`](super::OccupancyHandle::snapshot).)

use super::board::{topic_level, OccupancySnapshot};
use super::OccupancyHandle;
use serde_json::{json, Map, Value};

/// The JSON body of `/api/displays`.
pub fn displays_json(site: &str, occupancy: Option<&OccupancyHandle>) -> Value {
    let snap = occupancy.map(|o| o.snapshot()).unwrap_or_default();
    let free = |m: &std::collections::BTreeMap<String, super::Counts>| -> Map<String, Value> {
        m.iter()
            .map(|(k, c)| (topic_level(k), json!(c.free)))
            .collect()
    };
    let bays: Map<String, Value> = snap
        .bays
        .iter()
        .map(|(k, s)| (k.clone(), json!(s.as_str())))
        .collect();
    json!({
        "site": site,
        "total": snap.total,
        "free": snap.free,
        "occupied": snap.occupied,
        "unknown": snap.unknown,
        "held_back": snap.held_back,
        "levels": free(&snap.by_level),
        "zones": free(&snap.by_zone),
        "types": free(&snap.by_type),
        "occupancy": serde_json::to_value(&snap).unwrap_or(Value::Null),
        "bays": bays,
        "classifier": match occupancy { None => "no bays configured", Some(o) if o.classifier_ok => "ok", Some(_) => "unavailable: every bay is unknown" },
        "stats": occupancy.map(|o| serde_json::to_value(o.stats.view()).unwrap_or(Value::Null)),
    })
}

/// The current figures, or all-zero when the site has no bays.
pub fn snapshot_or_default(occupancy: Option<&OccupancyHandle>) -> OccupancySnapshot {
    occupancy.map(|o| o.snapshot()).unwrap_or_default()
}
