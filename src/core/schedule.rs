//! Time vocabulary: half-open UTC ranges and weekly local-time windows.
//!
//! Instants are always `DateTime<Utc>`; wall-clock rules ("weekdays
//! 07:00–19:00") are evaluated by converting the instant to the site's
//! `chrono_tz::Tz`. Converting UTC → local is a total function, so DST gaps
//! and repeated hours never make a rule ambiguous: during a fall-back night
//! the repeated 01:xx hour simply matches twice, and the skipped spring-forward
//! hour never occurs.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::core::error::CoreError;

/// The wall-clock time of `at` in `tz`.
pub fn local_time(at: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    tz.from_utc_datetime(&at.naive_utc()).naive_local()
}

/// Serde adapter for `chrono_tz::Tz` as its IANA name (the crate's own serde
/// support is behind a feature we do not enable).
pub mod tz_serde {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse::<Tz>().map_err(serde::de::Error::custom)
    }
}

/// A half-open interval `[start, end)` of instants, with `start < end`.
///
/// Half-open so that back-to-back bookings (10:00–11:00 and 11:00–12:00) do
/// not overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawTimeRange")]
pub struct TimeRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Deserialize)]
struct RawTimeRange {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl TryFrom<RawTimeRange> for TimeRange {
    type Error = CoreError;
    fn try_from(raw: RawTimeRange) -> Result<Self, Self::Error> {
        TimeRange::new(raw.start, raw.end)
    }
}

impl TimeRange {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, CoreError> {
        if end <= start {
            return Err(CoreError::InvalidTimeRange { start, end });
        }
        Ok(TimeRange { start, end })
    }

    pub fn duration(&self) -> Duration {
        self.end - self.start
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }

    pub fn overlaps(&self, other: &TimeRange) -> bool {
        overlaps(self, other)
    }
}

/// Half-open overlap test: `[a.start, a.end)` and `[b.start, b.end)` share an instant.
pub fn overlaps(a: &TimeRange, b: &TimeRange) -> bool {
    a.start < b.end && b.start < a.end
}

/// A recurring weekly window in site-local wall-clock time, e.g. Mon–Fri 07:00–19:00.
///
/// `end <= start` means the window runs past midnight (22:00–06:00); such a
/// window *belongs to the day it starts on*, so "Fri 22:00–06:00" covers
/// Saturday 03:00 but "Sat 22:00–06:00" does not. `start == end` means the
/// whole 24 hours from `start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklyWindow {
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl WeeklyWindow {
    pub fn new(days: &[Weekday], start: NaiveTime, end: NaiveTime) -> Self {
        WeeklyWindow {
            days: days.to_vec(),
            start,
            end,
        }
    }

    /// Monday–Friday.
    pub fn weekdays(start: NaiveTime, end: NaiveTime) -> Self {
        use Weekday::*;
        Self::new(&[Mon, Tue, Wed, Thu, Fri], start, end)
    }

    /// Every day of the week.
    pub fn every_day(start: NaiveTime, end: NaiveTime) -> Self {
        use Weekday::*;
        Self::new(&[Mon, Tue, Wed, Thu, Fri, Sat, Sun], start, end)
    }

    fn has_day(&self, day: Weekday) -> bool {
        self.days.contains(&day)
    }

    /// Whether a local wall-clock time falls inside the window.
    pub fn contains_local(&self, local: NaiveDateTime) -> bool {
        let day = local.weekday();
        let t = local.time();
        if self.start < self.end {
            self.has_day(day) && self.start <= t && t < self.end
        } else {
            (self.has_day(day) && t >= self.start) || (self.has_day(day.pred()) && t < self.end)
        }
    }

    /// Whether an instant falls inside the window in the given time zone.
    pub fn contains(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        self.contains_local(local_time(at, tz))
    }

    pub fn validate(&self) -> Result<(), CoreError> {
        if self.days.is_empty() {
            return Err(CoreError::InvalidConfig(
                "weekly window has no days".to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use chrono_tz::Europe::Bucharest;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    #[test]
    fn daytime_window() {
        let w = WeeklyWindow::weekdays(t(7, 0), t(19, 0));
        // 2024-06-03 is a Monday.
        assert!(w.contains_local(local(2024, 6, 3, 7, 0)));
        assert!(!w.contains_local(local(2024, 6, 3, 19, 0)));
        assert!(!w.contains_local(local(2024, 6, 8, 12, 0))); // Saturday
    }

    #[test]
    fn overnight_window_belongs_to_start_day() {
        use Weekday::*;
        let w = WeeklyWindow::new(&[Fri], t(22, 0), t(6, 0));
        assert!(w.contains_local(local(2024, 6, 7, 23, 0))); // Fri 23:00
        assert!(w.contains_local(local(2024, 6, 8, 3, 0))); // Sat 03:00
        assert!(!w.contains_local(local(2024, 6, 8, 23, 0))); // Sat 23:00
        assert!(!w.contains_local(local(2024, 6, 7, 3, 0))); // Fri 03:00 (Thu's night)
    }

    #[test]
    fn whole_day_window() {
        use Weekday::*;
        let w = WeeklyWindow::new(&[Sun], t(0, 0), t(0, 0));
        assert!(w.contains_local(local(2024, 6, 9, 0, 0)));
        assert!(w.contains_local(local(2024, 6, 9, 23, 59)));
        assert!(!w.contains_local(local(2024, 6, 10, 0, 0)));
    }

    #[test]
    fn evaluated_in_site_time_zone() {
        let w = WeeklyWindow::weekdays(t(7, 0), t(19, 0));
        // 04:30 UTC on a summer Monday is 07:30 in Bucharest (UTC+3).
        let at = Utc.with_ymd_and_hms(2024, 6, 3, 4, 30, 0).unwrap();
        assert!(w.contains(at, Bucharest));
        assert!(!w.contains(at, chrono_tz::UTC));
    }

    #[test]
    fn ranges_are_half_open() {
        let h = |h| Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0).unwrap();
        let a = TimeRange::new(h(10), h(11)).unwrap();
        let b = TimeRange::new(h(11), h(12)).unwrap();
        let c = TimeRange::new(h(10), h(12)).unwrap();
        assert!(!overlaps(&a, &b));
        assert!(overlaps(&a, &c) && overlaps(&c, &b));
        assert!(TimeRange::new(h(11), h(11)).is_err());
        assert!(serde_json::from_str::<TimeRange>(
            r#"{"start":"2024-01-01T11:00:00Z","end":"2024-01-01T10:00:00Z"}"#
        )
        .is_err());
    }

    #[test]
    fn tz_serde_round_trip() {
        #[derive(Serialize, Deserialize)]
        struct S {
            #[serde(with = "tz_serde")]
            tz: Tz,
        }
        let json = serde_json::to_string(&S { tz: Bucharest }).unwrap();
        assert_eq!(json, r#"{"tz":"Europe/Bucharest"}"#);
        assert_eq!(serde_json::from_str::<S>(&json).unwrap().tz, Bucharest);
        assert!(serde_json::from_str::<S>(r#"{"tz":"Mars/Olympus"}"#).is_err());
    }
}
