//! What the boards show: the state of every space, counted per level, zone
//! and type, with the per-zone sign offsets applied. Pure: the publisher
//! turns a [`Board`] into MQTT messages and the HTTP layer serves its
//! [`OccupancySnapshot`].
//!
//! # Sign offsets (documented decision)
//!
//! A zone with offset N shows N fewer free spaces than counted. So that every
//! board agrees (entrance total, level, zone and type boards), the offset
//! *holds back* N of the zone's free bays — the farthest ones (highest
//! `rank`, then highest id) — and every counter counts the remaining free
//! bays. Held-back bays are counted in `held_back`; so for every group
//! `total = free + occupied + unknown + held_back`. The per-bay topic still
//! shows a held-back bay as `free` (it is).

use crate::config::{SpaceConfig, SpaceType};
use crate::core::baywatch;
use crate::core::hysteresis::BayState;
use crate::events::BayUpdate;
use crate::mqtt::{discovery, Topics};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Counts for one group of spaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub total: u32,
    /// Free and shown as free (after the sign offsets).
    pub free: u32,
    pub occupied: u32,
    pub unknown: u32,
    /// Free but held back by a zone's sign offset.
    pub held_back: u32,
}

/// The figures the boards show; the JSON of `lotsense/<site>/occupancy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OccupancySnapshot {
    pub total: u32,
    pub free: u32,
    pub occupied: u32,
    pub unknown: u32,
    pub held_back: u32,
    pub by_level: BTreeMap<String, Counts>,
    pub by_zone: BTreeMap<String, Counts>,
    pub by_type: BTreeMap<String, Counts>,
    /// When a bay last changed state (absent before the first change).
    pub updated: Option<DateTime<Utc>>,
    /// Every space's state (`free`/`occupied`/`unknown`); not part of the MQTT JSON.
    #[serde(skip_serializing, default)]
    pub bays: BTreeMap<String, BayState>,
}

/// A name made safe for one MQTT topic level (`/ + #` and spaces become `_`).
pub fn topic_level(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if matches!(c, '/' | '+' | '#' | ' ' | '\0') {
                '_'
            } else {
                c
            }
        })
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        t
    }
}

#[derive(Debug, Clone)]
struct Space {
    id: String,
    kind: SpaceType,
    level: String,
    zone: String,
    rank: u32,
    /// What the camera or sensor last said.
    observed: BayState,
    /// A staff override, which wins until cleared ([`baywatch::effective`]).
    manual: Option<BayState>,
    /// What the boards show.
    state: BayState,
}

impl Space {
    /// Recomputes the shown state; true when it changed.
    fn settle(&mut self) -> bool {
        let state = baywatch::effective(self.observed, self.manual);
        std::mem::replace(&mut self.state, state) != state
    }
}

/// The state of every configured space.
#[derive(Debug, Clone)]
pub struct Board {
    spaces: Vec<Space>,
    index: HashMap<String, usize>,
    offsets: BTreeMap<String, u32>,
    updated: Option<DateTime<Utc>>,
}

impl Board {
    /// Every configured space counts, starting `unknown` (a space no camera
    /// watches stays unknown: the boards do not pretend to know it).
    pub fn new(spaces: &[SpaceConfig], offsets: &BTreeMap<String, u32>) -> Self {
        let mut list: Vec<Space> = spaces
            .iter()
            .map(|s| Space {
                id: s.id.clone(),
                kind: s.kind,
                level: s.level.clone(),
                zone: s.zone.clone(),
                rank: s.rank,
                observed: BayState::Unknown,
                manual: None,
                state: BayState::Unknown,
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        let index = list
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        Self {
            spaces: list,
            index,
            offsets: offsets.clone(),
            updated: None,
        }
    }

    /// Applies a bay update; true when a shown state changed. Unknown spaces are ignored (logged).
    pub fn apply(&mut self, u: &BayUpdate) -> bool {
        let Some(&i) = self.index.get(&u.space_id) else {
            tracing::warn!(space = %u.space_id, "bay update for a space that is not configured");
            return false;
        };
        self.spaces[i].observed = BayState::parse(&u.state);
        let changed = self.spaces[i].settle();
        if changed {
            self.updated = Some(self.updated.map_or(u.at, |t| t.max(u.at)));
        }
        changed
    }

    /// Sets (`Some`) or clears (`None`) a staff override; true when a shown state changed.
    pub fn set_override(
        &mut self,
        space: &str,
        manual: Option<BayState>,
        at: DateTime<Utc>,
    ) -> bool {
        let Some(&i) = self.index.get(space) else {
            tracing::warn!(%space, "override for a space that is not configured");
            return false;
        };
        self.spaces[i].manual = manual;
        let changed = self.spaces[i].settle();
        if changed {
            self.updated = Some(self.updated.map_or(at, |t| t.max(at)));
        }
        changed
    }

    pub fn state(&self, space: &str) -> Option<BayState> {
        self.index.get(space).map(|&i| self.spaces[i].state)
    }

    /// Indices of the free bays held back by the zone offsets.
    fn held_back(&self) -> Vec<bool> {
        let mut held = vec![false; self.spaces.len()];
        for (zone, &n) in &self.offsets {
            let mut free: Vec<usize> = (0..self.spaces.len())
                .filter(|&i| &self.spaces[i].zone == zone && self.spaces[i].state == BayState::Free)
                .collect();
            // Farthest first: highest rank, then highest id.
            free.sort_by(|&a, &b| {
                self.spaces[b]
                    .rank
                    .cmp(&self.spaces[a].rank)
                    .then(self.spaces[b].id.cmp(&self.spaces[a].id))
            });
            for &i in free.iter().take(n as usize) {
                held[i] = true;
            }
        }
        held
    }

    pub fn snapshot(&self) -> OccupancySnapshot {
        let held = self.held_back();
        let mut snap = OccupancySnapshot {
            updated: self.updated,
            ..Default::default()
        };
        let mut all = Counts::default();
        for (i, s) in self.spaces.iter().enumerate() {
            let add = |c: &mut Counts| {
                c.total += 1;
                match (s.state, held[i]) {
                    (BayState::Free, false) => c.free += 1,
                    (BayState::Free, true) => c.held_back += 1,
                    (BayState::Occupied, _) => c.occupied += 1,
                    (BayState::Unknown, _) => c.unknown += 1,
                }
            };
            add(&mut all);
            add(snap.by_level.entry(s.level.clone()).or_default());
            add(snap.by_zone.entry(s.zone.clone()).or_default());
            add(snap.by_type.entry(s.kind.as_str().to_string()).or_default());
            snap.bays.insert(s.id.clone(), s.state);
        }
        snap.total = all.total;
        snap.free = all.free;
        snap.occupied = all.occupied;
        snap.unknown = all.unknown;
        snap.held_back = all.held_back;
        snap
    }
}

impl OccupancySnapshot {
    /// Every retained board message `(topic, payload)`: each bay's state, the
    /// plain free counters per level, zone and type, and last the JSON summary
    /// (so a board that sees a new summary has already had the rest).
    pub fn messages(&self, topics: &Topics) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (id, state) in &self.bays {
            out.push((
                topics.sub(&format!("bays/{}", topic_level(id))),
                state.as_str().to_string(),
            ));
        }
        for (kind, map) in [
            ("levels", &self.by_level),
            ("zones", &self.by_zone),
            ("types", &self.by_type),
        ] {
            for (name, c) in map {
                out.push((
                    topics.sub(&format!("{kind}/{}/free", topic_level(name))),
                    c.free.to_string(),
                ));
            }
        }
        out.push((
            topics.sub("occupancy"),
            serde_json::to_string(self).expect("snapshot serialises"),
        ));
        out
    }

    /// Home Assistant MQTT discovery configs (retained) for the free counters:
    /// the site total and each level, zone and type. Entities go unavailable
    /// with lotsense (its `available` topic and last will).
    pub fn discovery(&self, topics: &Topics, prefix: &str, site: &str) -> Vec<(String, String)> {
        let entity = |object: String, name: String, state_topic: String, template: Option<&str>| {
            let e = discovery::Entity {
                component: "sensor",
                object,
                name,
                state_topic,
                value_template: template.map(String::from),
                extra: serde_json::json!({ "unit_of_measurement": "spaces", "state_class": "measurement", "icon": "mdi:parking" }),
            };
            discovery::config(topics, prefix, site, &e)
        };
        let mut out = vec![entity(
            "free".into(),
            "Free spaces".into(),
            topics.sub("occupancy"),
            Some("{{ value_json.free }}"),
        )];
        for (kind, label, map) in [
            ("levels", "level", &self.by_level),
            ("zones", "zone", &self.by_zone),
            ("types", "type", &self.by_type),
        ] {
            for name in map.keys() {
                out.push(entity(
                    format!("{label}_{}_free", discovery::object_id(name)),
                    format!("Free spaces {label} {name}"),
                    topics.sub(&format!("{kind}/{}/free", topic_level(name))),
                    None,
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn space(id: &str, kind: SpaceType, level: &str, zone: &str, rank: u32) -> SpaceConfig {
        SpaceConfig {
            id: id.into(),
            kind,
            level: level.into(),
            zone: zone.into(),
            rank,
        }
    }

    fn upd(space: &str, state: &str, s: i64) -> BayUpdate {
        BayUpdate {
            space_id: space.into(),
            camera: "c".into(),
            state: state.into(),
            probability: None,
            at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(s),
        }
    }

    fn board(offsets: &[(&str, u32)]) -> Board {
        let spaces = vec![
            space("A1", SpaceType::Compact, "L0", "A", 1),
            space("A2", SpaceType::Compact, "L0", "A", 2),
            space("A3", SpaceType::Ev, "L0", "A", 3),
            space("B1", SpaceType::Compact, "L1", "B", 1),
            space("B2", SpaceType::Large, "L1", "B", 2),
        ];
        Board::new(
            &spaces,
            &offsets.iter().map(|(z, n)| (z.to_string(), *n)).collect(),
        )
    }

    #[test]
    fn a_staff_override_wins_until_cleared() {
        let mut b = board(&[]);
        b.apply(&upd("A1", "occupied", 1));
        let at = Utc.with_ymd_and_hms(2024, 1, 1, 0, 1, 0).unwrap();
        assert!(b.set_override("A1", Some(BayState::Free), at));
        assert_eq!(b.state("A1"), Some(BayState::Free));
        // The camera keeps reporting: recorded, not shown.
        assert!(!b.apply(&upd("A1", "occupied", 70)));
        assert!(!b.apply(&upd("A1", "unknown", 71)));
        assert_eq!(b.snapshot().free, 1);
        // Cleared: the camera's latest word counts again.
        assert!(b.set_override("A1", None, at));
        assert_eq!(b.state("A1"), Some(BayState::Unknown));
        assert!(!b.set_override("Z9", Some(BayState::Free), at));
    }

    #[test]
    fn counts_per_level_zone_and_type_with_unknown() {
        let mut b = board(&[]);
        let s = b.snapshot();
        assert_eq!((s.total, s.free, s.unknown), (5, 0, 5));
        assert!(b.apply(&upd("A1", "free", 1)));
        assert!(!b.apply(&upd("A1", "free", 2)), "no change, no update");
        b.apply(&upd("A2", "occupied", 3));
        b.apply(&upd("A3", "free", 4));
        b.apply(&upd("B2", "free", 5));
        assert!(!b.apply(&upd("Z9", "free", 6)));
        let s = b.snapshot();
        assert_eq!((s.total, s.free, s.occupied, s.unknown), (5, 3, 1, 1));
        assert_eq!(
            s.by_level["L0"],
            Counts {
                total: 3,
                free: 2,
                occupied: 1,
                unknown: 0,
                held_back: 0
            }
        );
        assert_eq!(
            s.by_zone["B"],
            Counts {
                total: 2,
                free: 1,
                occupied: 0,
                unknown: 1,
                held_back: 0
            }
        );
        assert_eq!(s.by_type["compact"].free, 1);
        assert_eq!(s.by_type["ev"].free, 1);
        assert_eq!(s.by_type["large"].free, 1);
        assert_eq!(
            s.updated,
            Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 5).unwrap())
        );
        assert_eq!(s.bays["A2"], BayState::Occupied);
    }

    #[test]
    fn a_zone_offset_holds_back_the_farthest_free_bays_on_every_board() {
        let mut b = board(&[("A", 1), ("B", 5)]);
        for id in ["A1", "A2", "A3", "B1"] {
            b.apply(&upd(id, "free", 1));
        }
        let s = b.snapshot();
        // Zone A: 3 free, 1 held back (A3, the farthest, an EV bay). Zone B: 1 free, all held back.
        assert_eq!(
            s.by_zone["A"],
            Counts {
                total: 3,
                free: 2,
                occupied: 0,
                unknown: 0,
                held_back: 1
            }
        );
        assert_eq!(s.by_zone["B"].free, 0);
        assert_eq!(s.by_zone["B"].held_back, 1);
        assert_eq!(s.by_type["ev"].free, 0);
        assert_eq!(s.by_level["L0"].free, 2);
        assert_eq!((s.free, s.held_back), (2, 2));
        for c in s.by_zone.values().chain(s.by_level.values()) {
            assert_eq!(c.total, c.free + c.occupied + c.unknown + c.held_back);
        }
    }

    #[test]
    fn messages_and_discovery_name_every_counter() {
        let mut b = board(&[]);
        b.apply(&upd("A1", "free", 1));
        let t = Topics::new("lotsense", "site1");
        let m: BTreeMap<String, String> = b.snapshot().messages(&t).into_iter().collect();
        assert_eq!(m["lotsense/site1/levels/L0/free"], "1");
        assert_eq!(m["lotsense/site1/zones/B/free"], "0");
        assert_eq!(m["lotsense/site1/types/compact/free"], "1");
        assert_eq!(m["lotsense/site1/bays/A1"], "free");
        assert_eq!(m["lotsense/site1/bays/B2"], "unknown");
        let j: serde_json::Value = serde_json::from_str(&m["lotsense/site1/occupancy"]).unwrap();
        for k in [
            "total", "free", "occupied", "unknown", "by_level", "by_zone", "by_type", "updated",
        ] {
            assert!(j.get(k).is_some(), "missing {k} in {j}");
        }
        assert!(j.get("bays").is_none());
        assert_eq!(j["by_level"]["L0"]["free"], 1);
        let d = b.snapshot().discovery(&t, "homeassistant", "site1");
        assert_eq!(d.len(), 1 + 2 + 2 + 3);
        let (topic, cfg) = &d[0];
        assert_eq!(topic, "homeassistant/sensor/lotsense_site1/free/config");
        let cfg: serde_json::Value = serde_json::from_str(cfg).unwrap();
        assert_eq!(cfg["state_topic"], "lotsense/site1/occupancy");
        assert_eq!(cfg["availability_topic"], "lotsense/site1/available");
        assert!(d.iter().any(|(t, c)| t
            == "homeassistant/sensor/lotsense_site1/level_L0_free/config"
            && c.contains("lotsense/site1/levels/L0/free")));
        assert_eq!(topic_level("a/b c"), "a_b_c");
    }
}
