//! Tariffs and fee calculation.
//!
//! # Pricing model (documented decisions)
//!
//! * **Free grace.** A stay of at most `free_grace_minutes` costs nothing. A
//!   longer stay is charged *from entry* — the grace is not deducted — so
//!   there is no incentive to game it and the fee never drops as a stay grows.
//! * **Started intervals.** The stay is cut into consecutive intervals of
//!   `interval_minutes` of *elapsed* time starting at entry; every interval
//!   that has started before exit is charged in full. Elapsed time (not wall
//!   clock) means a DST change never creates a 0- or 120-minute interval: a
//!   2 h stay across spring-forward costs 2 h, not 3 h.
//! * **Bands.** Each interval is priced by the band in force at the interval's
//!   *start*, judged on the site-local wall clock (`time_zone`); the first
//!   matching band wins, otherwise `interval_price` applies. Overnight bands
//!   belong to the day they start on (see [`WeeklyWindow`]).
//! * **Daily maximum: rolling 24 h from entry.** Intervals are grouped into
//!   consecutive 24 h periods counted from entry (elapsed time, so DST days
//!   are still 24 h), and each period costs at most `daily_max`. We chose
//!   rolling periods over calendar days because a calendar cap charges two
//!   maxima for a 23:00–09:00 stay, and because the rolling rule is trivially
//!   monotone. A stay of `n` started days therefore never costs more than
//!   `n × daily_max`.
//! * **Multi-day stays** are just more periods; each period is itemised, or
//!   summarised as one `daily_maximum` line when the cap applied.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::core::error::CoreError;
use crate::core::money::{Currency, Money};
use crate::core::schedule::{local_time, TimeRange, WeeklyWindow};
use crate::core::types::{SpaceType, VehicleType};

const DAY_SECS: i64 = 24 * 60 * 60;

/// A time-of-day / day-of-week band with its own interval price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffBand {
    pub name: String,
    pub window: WeeklyWindow,
    pub interval_price: i64,
}

/// One tariff: every amount is in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tariff {
    pub name: String,
    pub currency: Currency,
    /// The site's time zone; bands are evaluated on its wall clock.
    #[serde(with = "crate::core::schedule::tz_serde")]
    pub time_zone: Tz,
    pub free_grace_minutes: u32,
    pub interval_minutes: u32,
    /// Price of one started interval outside every band.
    pub interval_price: i64,
    #[serde(default)]
    pub bands: Vec<TariffBand>,
    /// Cap per rolling 24 h period from entry.
    pub daily_max: Option<i64>,
    /// Charged when a vehicle leaves without a matchable session (policy permitting).
    pub lost_ticket_fee: i64,
    /// Flat booking fee added to a reservation's time-based price.
    pub reservation_fee: i64,
    /// Charged when a reservation is not checked in within its grace.
    pub no_show_fee: i64,
    /// Time allowed between paying and driving out before more is owed.
    pub exit_grace_minutes: u32,
}

impl Tariff {
    /// A tariff with one flat interval price and no grace, bands, cap or fees.
    pub fn simple(
        name: &str,
        currency: Currency,
        time_zone: Tz,
        interval_minutes: u32,
        interval_price: i64,
    ) -> Self {
        Tariff {
            name: name.to_string(),
            currency,
            time_zone,
            free_grace_minutes: 0,
            interval_minutes,
            interval_price,
            bands: Vec::new(),
            daily_max: None,
            lost_ticket_fee: 0,
            reservation_fee: 0,
            no_show_fee: 0,
            exit_grace_minutes: 0,
        }
    }

    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |msg: String| Err(CoreError::InvalidTariff(format!("{}: {msg}", self.name)));
        if self.interval_minutes == 0 {
            return bad("interval_minutes must be positive".into());
        }
        let amounts = [
            ("interval_price", self.interval_price),
            ("lost_ticket_fee", self.lost_ticket_fee),
            ("reservation_fee", self.reservation_fee),
            ("no_show_fee", self.no_show_fee),
            ("daily_max", self.daily_max.unwrap_or(0)),
        ];
        for (field, amount) in amounts {
            if amount < 0 {
                return bad(format!("{field} must not be negative"));
            }
        }
        for band in &self.bands {
            if band.interval_price < 0 {
                return bad(format!("band {} has a negative price", band.name));
            }
            band.window.validate()?;
        }
        Ok(())
    }

    pub fn free_grace(&self) -> Duration {
        Duration::minutes(self.free_grace_minutes.into())
    }

    pub fn exit_grace(&self) -> Duration {
        Duration::minutes(self.exit_grace_minutes.into())
    }

    pub fn money(&self, amount_minor: i64) -> Money {
        Money::new(amount_minor, self.currency)
    }

    pub fn lost_ticket(&self) -> Money {
        self.money(self.lost_ticket_fee)
    }

    pub fn no_show(&self) -> Money {
        self.money(self.no_show_fee)
    }

    /// Price of an interval starting at `at`, and the band that set it.
    pub fn price_at(&self, at: DateTime<Utc>) -> (i64, Option<&TariffBand>) {
        let local = local_time(at, self.time_zone);
        match self.bands.iter().find(|b| b.window.contains_local(local)) {
            Some(band) => (band.interval_price, Some(band)),
            None => (self.interval_price, None),
        }
    }
}

/// Tariffs of a site, chosen per bay type, then vehicle type, then default.
///
/// The bay wins over the vehicle because the bay is the scarce resource being
/// priced (a car in an EV bay pays the EV-bay rate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffTable {
    pub default: Tariff,
    #[serde(default)]
    pub by_space_type: BTreeMap<SpaceType, Tariff>,
    #[serde(default)]
    pub by_vehicle_type: BTreeMap<VehicleType, Tariff>,
}

impl TariffTable {
    pub fn select(&self, space_type: Option<SpaceType>, vehicle: VehicleType) -> &Tariff {
        space_type
            .and_then(|t| self.by_space_type.get(&t))
            .or_else(|| self.by_vehicle_type.get(&vehicle))
            .unwrap_or(&self.default)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeLineKind {
    /// The whole stay fell within the free grace.
    FreeGrace,
    /// `quantity` consecutive intervals at `unit_price` (one band).
    Intervals,
    /// A 24 h period whose intervals reached the daily maximum.
    DailyMaximum,
    /// Flat reservation booking fee.
    ReservationFee,
}

/// One line of a fee breakdown; the lines' amounts add up to the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeLine {
    pub kind: FeeLineKind,
    /// Band name for `intervals` lines priced by a band.
    pub band: Option<String>,
    /// Start of the first interval covered.
    pub from: DateTime<Utc>,
    /// End of the last interval covered ("paid until").
    pub to: DateTime<Utc>,
    /// Number of intervals covered.
    pub quantity: u32,
    pub unit_price: Option<i64>,
    pub amount: Money,
}

/// A computed fee with its itemisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fee {
    pub total: Money,
    pub lines: Vec<FeeLine>,
}

impl Fee {
    pub fn zero(currency: Currency) -> Self {
        Fee {
            total: Money::zero(currency),
            lines: Vec::new(),
        }
    }
}

/// Ceiling of `d / step_secs` for a non-negative duration.
fn ceil_div(d: Duration, step_secs: i64) -> i64 {
    let secs = d.num_seconds();
    let exact = secs % step_secs == 0 && d.subsec_nanos() == 0;
    secs / step_secs + i64::from(!exact)
}

/// Charges every interval started in `[start, end)`, applying bands and the daily cap.
fn charge_intervals(
    tariff: &Tariff,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(i64, Vec<FeeLine>), CoreError> {
    let iv = i64::from(tariff.interval_minutes) * 60;
    let at = |k: i64| start + Duration::seconds(k * iv);
    let n_intervals = ceil_div(end - start, iv);
    let money = |a| Money::new(a, tariff.currency);

    let mut total: i64 = 0;
    let mut lines = Vec::new();
    let mut k = 0;
    while k < n_intervals {
        let period = k * iv / DAY_SECS;
        // First interval index belonging to the next 24 h period.
        let next_period_k = ((period + 1) * DAY_SECS + iv - 1) / iv;
        let period_end_k = next_period_k.min(n_intervals);
        let period_first_k = k;

        let mut sum: i64 = 0;
        let mut period_lines: Vec<FeeLine> = Vec::new();
        let mut capped = false;
        while k < period_end_k {
            let (price, band) = tariff.price_at(at(k));
            sum = sum.checked_add(price).ok_or(CoreError::Overflow)?;
            let band = band.map(|b| b.name.clone());
            match period_lines.last_mut() {
                Some(line) if line.band == band && line.unit_price == Some(price) => {
                    line.quantity += 1;
                    line.to = at(k + 1);
                    line.amount = money(line.amount.amount_minor + price);
                }
                _ => period_lines.push(FeeLine {
                    kind: FeeLineKind::Intervals,
                    band,
                    from: at(k),
                    to: at(k + 1),
                    quantity: 1,
                    unit_price: Some(price),
                    amount: money(price),
                }),
            }
            k += 1;
            if tariff.daily_max.is_some_and(|cap| sum >= cap) {
                capped = true;
                break;
            }
        }

        let period_total = match (capped, tariff.daily_max) {
            (true, Some(cap)) => {
                // Everything else started in this period is covered by the cap.
                k = period_end_k;
                lines.push(FeeLine {
                    kind: FeeLineKind::DailyMaximum,
                    band: None,
                    from: at(period_first_k),
                    to: at(period_end_k),
                    quantity: u32::try_from(period_end_k - period_first_k)
                        .map_err(|_| CoreError::Overflow)?,
                    unit_price: None,
                    amount: money(cap),
                });
                cap
            }
            _ => {
                lines.extend(period_lines);
                sum
            }
        };
        total = total.checked_add(period_total).ok_or(CoreError::Overflow)?;
    }
    Ok((total, lines))
}

/// The parking fee for a stay from `entry` to `exit`, itemised.
///
/// Errors if the tariff is invalid or `exit < entry`.
pub fn fee(tariff: &Tariff, entry: DateTime<Utc>, exit: DateTime<Utc>) -> Result<Fee, CoreError> {
    tariff.validate()?;
    if exit < entry {
        return Err(CoreError::InvalidTimeRange {
            start: entry,
            end: exit,
        });
    }
    if exit - entry <= tariff.free_grace() {
        return Ok(Fee {
            total: Money::zero(tariff.currency),
            lines: vec![FeeLine {
                kind: FeeLineKind::FreeGrace,
                band: None,
                from: entry,
                to: exit,
                quantity: 0,
                unit_price: None,
                amount: Money::zero(tariff.currency),
            }],
        });
    }
    let (total, lines) = charge_intervals(tariff, entry, exit)?;
    Ok(Fee {
        total: tariff.money(total),
        lines,
    })
}

/// Price of reserving `window`: the time-based tariff over the window (bands
/// and daily cap apply, free grace does not — the bay is held either way)
/// plus the flat `reservation_fee`.
pub fn reservation_quote(tariff: &Tariff, window: &TimeRange) -> Result<Fee, CoreError> {
    tariff.validate()?;
    let (time_total, mut lines) = charge_intervals(tariff, window.start, window.end)?;
    if tariff.reservation_fee > 0 {
        lines.push(FeeLine {
            kind: FeeLineKind::ReservationFee,
            band: None,
            from: window.start,
            to: window.end,
            quantity: 1,
            unit_price: Some(tariff.reservation_fee),
            amount: tariff.money(tariff.reservation_fee),
        });
    }
    let total = time_total
        .checked_add(tariff.reservation_fee)
        .ok_or(CoreError::Overflow)?;
    Ok(Fee {
        total: tariff.money(total),
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, TimeZone, Weekday};
    use chrono_tz::Europe::{Bucharest, London};
    use proptest::prelude::*;

    fn base() -> Tariff {
        let mut t = Tariff::simple("std", Currency::EUR, London, 30, 150);
        t.free_grace_minutes = 10;
        t
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn local(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn total(t: &Tariff, a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
        fee(t, a, b).unwrap().total.amount_minor
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn night_band(price: i64) -> TariffBand {
        TariffBand {
            name: "night".into(),
            window: WeeklyWindow::every_day(hm(0, 0), hm(4, 0)),
            interval_price: price,
        }
    }

    #[test]
    fn grace_and_started_intervals() {
        let t = base();
        let e = utc(2024, 6, 3, 9, 0);
        let m = |min| e + Duration::minutes(min);
        assert_eq!(total(&t, e, e), 0);
        assert_eq!(total(&t, e, m(10)), 0);
        assert_eq!(total(&t, e, m(11)), 150);
        assert_eq!(total(&t, e, m(30)), 150);
        assert_eq!(total(&t, e, m(31)), 300);
        assert_eq!(
            total(&t, e, e + Duration::minutes(30) + Duration::nanoseconds(1)),
            300
        );
        assert_eq!(
            fee(&t, e, m(5)).unwrap().lines[0].kind,
            FeeLineKind::FreeGrace
        );
    }

    #[test]
    fn rejects_bad_input() {
        let mut t = base();
        let e = utc(2024, 6, 3, 9, 0);
        assert!(fee(&t, e, e - Duration::minutes(1)).is_err());
        t.interval_minutes = 0;
        assert!(matches!(fee(&t, e, e), Err(CoreError::InvalidTariff(_))));
        let mut t = base();
        t.daily_max = Some(-1);
        assert!(t.validate().is_err());
    }

    #[test]
    fn daily_max_per_rolling_24h() {
        let mut t = base();
        t.daily_max = Some(2000);
        let e = utc(2024, 6, 3, 23, 0);
        let h = |hours| e + Duration::hours(hours);
        // 10 h = 20 intervals = 3000, capped.
        assert_eq!(total(&t, e, h(10)), 2000);
        // Crossing midnight does not start a new cap period.
        assert_eq!(total(&t, e, h(24)), 2000);
        // Second period: 1 h = 2 intervals.
        assert_eq!(total(&t, e, h(25)), 2300);
        // Three full days plus 1 h.
        let f = fee(&t, e, h(73)).unwrap();
        assert_eq!(f.total.amount_minor, 3 * 2000 + 300);
        assert_eq!(
            f.lines
                .iter()
                .filter(|l| l.kind == FeeLineKind::DailyMaximum)
                .count(),
            3
        );
        assert_eq!(f.lines[0].quantity, 48);
        assert_eq!(f.lines[0].to, h(24));
    }

    #[test]
    fn itemised_bands_across_midnight() {
        // Weekday rate 200 per hour, weekend default 100; Fri 23:00 → Sat 01:00 (UTC+0 in winter).
        let mut t = Tariff::simple("wk", Currency::GBP, London, 60, 100);
        t.bands = vec![TariffBand {
            name: "weekday".into(),
            window: WeeklyWindow::weekdays(hm(0, 0), hm(0, 0)),
            interval_price: 200,
        }];
        let f = fee(&t, utc(2024, 1, 5, 23, 0), utc(2024, 1, 6, 1, 0)).unwrap();
        assert_eq!(f.total.amount_minor, 300);
        assert_eq!(f.lines.len(), 2);
        assert_eq!(f.lines[0].band.as_deref(), Some("weekday"));
        assert_eq!(f.lines[1].band, None);
        assert_eq!(f.lines[1].from, utc(2024, 1, 6, 0, 0));
    }

    #[test]
    fn london_spring_forward_charges_elapsed_time() {
        // 2024-03-31 01:00 GMT → 02:00 BST. 00:30 → 03:30 local is 2 real hours.
        let t = base();
        let entry = local(London, 2024, 3, 31, 0, 30);
        let exit = local(London, 2024, 3, 31, 3, 30);
        assert_eq!(exit - entry, Duration::hours(2));
        assert_eq!(total(&t, entry, exit), 4 * 150);
    }

    #[test]
    fn london_fall_back_charges_elapsed_time() {
        // 2024-10-27 02:00 BST → 01:00 GMT. 00:30 BST → 02:30 GMT is 3 real hours.
        let t = base();
        let entry = local(London, 2024, 10, 27, 0, 30);
        let exit = local(London, 2024, 10, 27, 2, 30);
        assert_eq!(exit - entry, Duration::hours(3));
        assert_eq!(total(&t, entry, exit), 6 * 150);
    }

    #[test]
    fn bucharest_spring_forward_bands() {
        // 2024-03-31 03:00 EET → 04:00 EEST. Hourly, night band 00–04 at 50, else 100.
        let mut t = Tariff::simple("b", Currency::RON, Bucharest, 60, 100);
        t.bands = vec![night_band(50)];
        let entry = local(Bucharest, 2024, 3, 31, 0, 0);
        let exit = local(Bucharest, 2024, 3, 31, 6, 0);
        assert_eq!(exit - entry, Duration::hours(5));
        // Intervals start at local 00, 01, 02, 04, 05.
        assert_eq!(total(&t, entry, exit), 3 * 50 + 2 * 100);
    }

    #[test]
    fn bucharest_fall_back_bands() {
        // 2024-10-27 04:00 EEST → 03:00 EET: the 03:xx hour happens twice.
        let mut t = Tariff::simple("b", Currency::RON, Bucharest, 60, 100);
        t.bands = vec![night_band(50)];
        let entry = local(Bucharest, 2024, 10, 27, 0, 0);
        let exit = local(Bucharest, 2024, 10, 27, 6, 0);
        assert_eq!(exit - entry, Duration::hours(7));
        // Local starts 00, 01, 02, 03, 03, 04, 05: five night hours.
        assert_eq!(total(&t, entry, exit), 5 * 50 + 2 * 100);
    }

    #[test]
    fn overnight_band_belongs_to_start_day() {
        let mut t = Tariff::simple("n", Currency::EUR, London, 60, 100);
        t.bands = vec![TariffBand {
            name: "fri-night".into(),
            window: WeeklyWindow::new(&[Weekday::Fri], hm(22, 0), hm(6, 0)),
            interval_price: 10,
        }];
        // Fri 2024-01-05 21:00 → Sat 02:00 (UTC+0): 21:00 at 100, then 22,23,00,01 at 10.
        assert_eq!(
            total(&t, utc(2024, 1, 5, 21, 0), utc(2024, 1, 6, 2, 0)),
            140
        );
    }

    #[test]
    fn reservation_quote_adds_fee_without_grace() {
        let mut t = base();
        t.reservation_fee = 99;
        let w = TimeRange::new(utc(2024, 6, 3, 9, 0), utc(2024, 6, 3, 9, 5)).unwrap();
        let q = reservation_quote(&t, &w).unwrap();
        assert_eq!(q.total.amount_minor, 150 + 99);
        assert_eq!(q.lines.last().unwrap().kind, FeeLineKind::ReservationFee);
    }

    #[test]
    fn table_selection_order() {
        let mut table = TariffTable {
            default: base(),
            by_space_type: BTreeMap::new(),
            by_vehicle_type: BTreeMap::new(),
        };
        let mut ev = base();
        ev.name = "ev-bay".into();
        let mut van = base();
        van.name = "van".into();
        table.by_space_type.insert(SpaceType::Ev, ev);
        table.by_vehicle_type.insert(VehicleType::Van, van);
        assert_eq!(
            table.select(Some(SpaceType::Ev), VehicleType::Van).name,
            "ev-bay"
        );
        assert_eq!(
            table.select(Some(SpaceType::Large), VehicleType::Van).name,
            "van"
        );
        assert_eq!(table.select(None, VehicleType::Car).name, "std");
    }

    fn tariff_strategy() -> impl Strategy<Value = Tariff> {
        (
            prop::sample::select(vec![5u32, 15, 20, 30, 45, 60, 7]),
            0i64..500,
            0u32..60,
            prop::option::of(0i64..5000),
            prop::option::of(0i64..500),
            prop::bool::ANY,
        )
            .prop_map(|(iv, price, grace, cap, night, bucharest)| {
                let tz = if bucharest { Bucharest } else { London };
                let mut t = Tariff::simple("p", Currency::EUR, tz, iv, price);
                t.free_grace_minutes = grace;
                t.daily_max = cap;
                if let Some(n) = night {
                    t.bands = vec![night_band(n)];
                }
                t
            })
    }

    fn entry_strategy() -> impl Strategy<Value = DateTime<Utc>> {
        // Any second of 2024, DST transitions included.
        (0i64..366 * DAY_SECS).prop_map(|s| utc(2024, 1, 1, 0, 0) + Duration::seconds(s))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn fee_is_monotone_in_stay(
            t in tariff_strategy(),
            entry in entry_strategy(),
            a in 0i64..4 * DAY_SECS,
            extra in 0i64..DAY_SECS,
        ) {
            let shorter = total(&t, entry, entry + Duration::seconds(a));
            let longer = total(&t, entry, entry + Duration::seconds(a + extra));
            prop_assert!(shorter <= longer, "{shorter} > {longer}");
        }

        #[test]
        fn fee_never_exceeds_daily_max_per_started_day(
            t in tariff_strategy(),
            entry in entry_strategy(),
            stay in 1i64..5 * DAY_SECS,
        ) {
            if let Some(cap) = t.daily_max {
                let started_days = (stay + DAY_SECS - 1) / DAY_SECS;
                let got = total(&t, entry, entry + Duration::seconds(stay));
                prop_assert!(got <= cap * started_days);
            }
        }

        #[test]
        fn stays_within_grace_are_free(
            t in tariff_strategy(),
            entry in entry_strategy(),
            frac in 0.0f64..=1.0,
        ) {
            let stay = (f64::from(t.free_grace_minutes) * 60.0 * frac) as i64;
            prop_assert_eq!(total(&t, entry, entry + Duration::seconds(stay)), 0);
        }

        #[test]
        fn lines_add_up_to_total(
            t in tariff_strategy(),
            entry in entry_strategy(),
            stay in 0i64..3 * DAY_SECS,
        ) {
            let f = fee(&t, entry, entry + Duration::seconds(stay)).unwrap();
            let sum: i64 = f.lines.iter().map(|l| l.amount.amount_minor).sum();
            prop_assert_eq!(sum, f.total.amount_minor);
        }
    }
}
