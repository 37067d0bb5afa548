//! Which vehicle may use which bay, and which bay to hand out.
//!
//! Compatibility is data, not code: a [`CompatibilityTable`] lists, per
//! vehicle type, the space types it fits in order of preference (smallest
//! adequate bay first). Some space types are *permit-only* (handicapped by
//! default): they are never offered from the table, only when a valid permit
//! unlocks them. EV bays are kept for EVs simply by listing `ev` only under
//! the `ev` vehicle type; an EV permit unlocks them for any vehicle.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::types::{Space, SpaceStatus, SpaceType, VehicleType};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatibilityTable {
    /// Space types per vehicle type, most preferred first.
    pub preferences: BTreeMap<VehicleType, Vec<SpaceType>>,
    /// Space types only usable through a permit that grants them.
    pub permit_only: Vec<SpaceType>,
}

impl Default for CompatibilityTable {
    /// car/unknown: compact, large · van/truck: large · motorcycle:
    /// motorcycle, compact · ev: ev, compact, large · handicapped: permit-only.
    fn default() -> Self {
        use SpaceType::*;
        let preferences = BTreeMap::from([
            (VehicleType::Car, vec![Compact, Large]),
            (VehicleType::Unknown, vec![Compact, Large]),
            (VehicleType::Van, vec![Large]),
            (VehicleType::Truck, vec![Large]),
            (VehicleType::Motorcycle, vec![Motorcycle, Compact]),
            (VehicleType::Ev, vec![Ev, Compact, Large]),
        ]);
        CompatibilityTable {
            preferences,
            permit_only: vec![Handicapped],
        }
    }
}

impl CompatibilityTable {
    /// Space types this vehicle may use, in preference order.
    ///
    /// Types unlocked by the vehicle's permits (`granted`) come first — a
    /// handicapped-permit holder should be sent to a handicapped bay before
    /// an ordinary one — followed by the table's types minus permit-only ones.
    pub fn eligible_types(&self, vehicle: VehicleType, granted: &[SpaceType]) -> Vec<SpaceType> {
        let mut out: Vec<SpaceType> = Vec::new();
        for &t in granted {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        for &t in self.preferences.get(&vehicle).into_iter().flatten() {
            if !self.permit_only.contains(&t) && !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }
}

/// How to choose among fitting free bays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentStrategy {
    /// Closest bay (lowest rank) of any eligible type. The preference order
    /// only breaks ties between equally close bays: walking distance is what
    /// the driver notices, and the preference order is already encoded in
    /// *which* types are eligible.
    #[default]
    Nearest,
    /// Most preferred (smallest fitting) type that has any free bay, then the
    /// closest bay of that type. Keeps large/EV bays free for vehicles that
    /// need them, at the cost of a longer walk.
    BestFit,
}

/// Picks a bay among `spaces` with status `available` whose type is in
/// `eligible` (preference order). Remaining ties go to the lowest space id,
/// so the result is deterministic for a given snapshot.
pub fn assign_space<'a>(
    spaces: &'a [Space],
    eligible: &[SpaceType],
    strategy: AssignmentStrategy,
) -> Option<&'a Space> {
    let preference = |t: SpaceType| eligible.iter().position(|&e| e == t);
    let candidates = spaces
        .iter()
        .filter(|s| s.status == SpaceStatus::Available)
        .filter_map(|s| preference(s.space_type).map(|pref| (pref, s)));
    match strategy {
        AssignmentStrategy::Nearest => {
            candidates.min_by(|(pa, a), (pb, b)| (a.rank, pa, &a.id).cmp(&(b.rank, pb, &b.id)))
        }
        AssignmentStrategy::BestFit => {
            candidates.min_by(|(pa, a), (pb, b)| (pa, a.rank, &a.id).cmp(&(pb, b.rank, &b.id)))
        }
    }
    .map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::SpaceId;

    pub(crate) fn space(id: &str, t: SpaceType, rank: u32) -> Space {
        Space {
            id: SpaceId::new(id),
            level: "P0".into(),
            zone: "A".into(),
            space_type: t,
            rank,
            status: SpaceStatus::Available,
        }
    }

    #[test]
    fn default_table() {
        let table = CompatibilityTable::default();
        use SpaceType::*;
        assert_eq!(
            table.eligible_types(VehicleType::Car, &[]),
            vec![Compact, Large]
        );
        assert_eq!(
            table.eligible_types(VehicleType::Motorcycle, &[]),
            vec![Motorcycle, Compact]
        );
        assert_eq!(
            table.eligible_types(VehicleType::Car, &[Handicapped]),
            vec![Handicapped, Compact, Large]
        );
        assert_eq!(
            table.eligible_types(VehicleType::Car, &[Ev]),
            vec![Ev, Compact, Large]
        );
        // Handicapped is never offered without a permit, even if listed.
        let mut t = table.clone();
        t.preferences
            .insert(VehicleType::Car, vec![Handicapped, Compact]);
        assert_eq!(t.eligible_types(VehicleType::Car, &[]), vec![Compact]);
    }

    #[test]
    fn nearest_vs_best_fit() {
        use SpaceType::*;
        let spaces = vec![
            space("L1", Large, 1),
            space("C5", Compact, 5),
            space("C9", Compact, 9),
            space("E0", Ev, 0),
        ];
        let eligible = [Compact, Large];
        let nearest = assign_space(&spaces, &eligible, AssignmentStrategy::Nearest).unwrap();
        assert_eq!(nearest.id.as_str(), "L1");
        let best = assign_space(&spaces, &eligible, AssignmentStrategy::BestFit).unwrap();
        assert_eq!(best.id.as_str(), "C5");
    }

    #[test]
    fn nearest_ties_prefer_earlier_type_then_id() {
        use SpaceType::*;
        let spaces = vec![
            space("L1", Large, 2),
            space("C2", Compact, 2),
            space("C1", Compact, 2),
        ];
        let got = assign_space(&spaces, &[Compact, Large], AssignmentStrategy::Nearest).unwrap();
        assert_eq!(got.id.as_str(), "C1");
    }

    #[test]
    fn skips_unavailable_and_ineligible() {
        use SpaceType::*;
        let mut occupied = space("C1", Compact, 0);
        occupied.status = SpaceStatus::Occupied;
        let spaces = vec![occupied, space("M1", Motorcycle, 0)];
        assert!(assign_space(&spaces, &[Compact, Large], AssignmentStrategy::Nearest).is_none());
    }
}
