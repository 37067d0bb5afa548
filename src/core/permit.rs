//! Permits: standing entitlements tied to a plate.
//!
//! A permit can do three independent things, each explicit on the record so
//! that staff can issue odd combinations without new code:
//! * admit the plate to a *restricted* lot (any valid permit for that lot does);
//! * unlock restricted space types (`space_types`, e.g. handicapped or EV bays);
//! * waive parking fees (`covers_fees`).

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::core::plate::Plate;
use crate::core::schedule::{local_time, WeeklyWindow};
use crate::core::types::{LotId, PermitId, SpaceType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermitKind {
    Staff,
    Handicapped,
    Ev,
    Resident,
    Contractor,
}

impl PermitKind {
    /// Space types a permit of this kind unlocks unless configured otherwise.
    pub fn default_space_types(self) -> Vec<SpaceType> {
        match self {
            PermitKind::Handicapped => vec![SpaceType::Handicapped],
            PermitKind::Ev => vec![SpaceType::Ev],
            _ => Vec::new(),
        }
    }

    /// Whether a permit of this kind waives fees unless configured otherwise:
    /// staff and residents park free; the others only grant access or bays.
    pub fn default_covers_fees(self) -> bool {
        matches!(self, PermitKind::Staff | PermitKind::Resident)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permit {
    pub id: PermitId,
    pub plate: Plate,
    pub kind: PermitKind,
    /// First valid day, in the site's time zone (inclusive).
    pub valid_from: NaiveDate,
    /// Last valid day, in the site's time zone (inclusive); `None` = open-ended.
    pub valid_until: Option<NaiveDate>,
    /// Weekly windows in site-local time; empty means "all day".
    #[serde(default)]
    pub windows: Vec<WeeklyWindow>,
    /// Lots the permit is valid in; empty means every lot of the site.
    #[serde(default)]
    pub lots: Vec<LotId>,
    /// Restricted space types the permit unlocks, in preference order.
    #[serde(default)]
    pub space_types: Vec<SpaceType>,
    pub covers_fees: bool,
}

impl Permit {
    /// A permit with the kind's defaults, valid everywhere, all day, open-ended.
    pub fn new(id: PermitId, plate: Plate, kind: PermitKind, valid_from: NaiveDate) -> Self {
        Permit {
            id,
            plate,
            kind,
            valid_from,
            valid_until: None,
            windows: Vec::new(),
            lots: Vec::new(),
            space_types: kind.default_space_types(),
            covers_fees: kind.default_covers_fees(),
        }
    }

    /// Whether the permit is in force at `at` in `lot`. Dates and weekly
    /// windows are both judged on the site-local wall clock, so a permit
    /// "until 31 March" lasts until local midnight, not UTC midnight.
    pub fn is_valid_at(&self, at: DateTime<Utc>, tz: Tz, lot: &LotId) -> bool {
        if !self.lots.is_empty() && !self.lots.contains(lot) {
            return false;
        }
        let local = local_time(at, tz);
        let day = local.date();
        if day < self.valid_from || self.valid_until.is_some_and(|until| day > until) {
            return false;
        }
        self.windows.is_empty() || self.windows.iter().any(|w| w.contains_local(local))
    }
}

/// The permits among `permits` that belong to `plate` and are valid at `at` in `lot`.
pub fn active_permits<'a>(
    permits: &'a [Permit],
    plate: &Plate,
    at: DateTime<Utc>,
    tz: Tz,
    lot: &LotId,
) -> Vec<&'a Permit> {
    permits
        .iter()
        .filter(|p| &p.plate == plate && p.is_valid_at(at, tz, lot))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, TimeZone};
    use chrono_tz::Europe::Bucharest;

    fn staff_permit() -> Permit {
        let mut p = Permit::new(
            PermitId::new("p1"),
            Plate::parse("B100ABC").unwrap(),
            PermitKind::Staff,
            NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        );
        p.valid_until = NaiveDate::from_ymd_opt(2024, 12, 31);
        p.windows = vec![WeeklyWindow::weekdays(
            NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
            NaiveTime::from_hms_opt(19, 0, 0).unwrap(),
        )];
        p.lots = vec![LotId::new("north")];
        p
    }

    #[test]
    fn kind_defaults() {
        let p = staff_permit();
        assert!(p.covers_fees);
        let h = Permit::new(
            PermitId::new("h"),
            p.plate.clone(),
            PermitKind::Handicapped,
            p.valid_from,
        );
        assert_eq!(h.space_types, vec![SpaceType::Handicapped]);
        assert!(!h.covers_fees);
    }

    #[test]
    fn validity_uses_local_dates_windows_and_lots() {
        let p = staff_permit();
        let north = LotId::new("north");
        // Mon 2024-06-03 08:00 local = 05:00 UTC.
        let inside = Utc.with_ymd_and_hms(2024, 6, 3, 5, 0, 0).unwrap();
        assert!(p.is_valid_at(inside, Bucharest, &north));
        assert!(!p.is_valid_at(inside, Bucharest, &LotId::new("south")));
        // Mon 06:00 local is before the window.
        let early = Utc.with_ymd_and_hms(2024, 6, 3, 3, 0, 0).unwrap();
        assert!(!p.is_valid_at(early, Bucharest, &north));
        // 2024-12-31 22:30 UTC is already 2025-01-01 local: expired.
        let new_year = Utc.with_ymd_and_hms(2024, 12, 31, 22, 30, 0).unwrap();
        assert!(!p.is_valid_at(new_year, Bucharest, &north));
        // Before valid_from.
        let before = Utc.with_ymd_and_hms(2023, 12, 29, 8, 0, 0).unwrap();
        assert!(!p.is_valid_at(before, Bucharest, &north));
    }

    #[test]
    fn active_permits_filters_plate() {
        let p = staff_permit();
        let at = Utc.with_ymd_and_hms(2024, 6, 3, 5, 0, 0).unwrap();
        let lot = LotId::new("north");
        let permits = [p.clone()];
        assert_eq!(
            active_permits(&permits, &p.plate, at, Bucharest, &lot).len(),
            1
        );
        let other = Plate::parse("X1").unwrap();
        assert!(active_permits(&permits, &other, at, Bucharest, &lot).is_empty());
    }
}

crate::variants!(PermitKind, Staff, Handicapped, Ev, Resident, Contractor);
