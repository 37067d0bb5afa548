//! From the typed configuration to the core's values: site policy,
//! compatibility table, tariffs, permits, plate lists and space seeds.

use crate::config::{parse_window, Config, EarlyDepartureKind, PermitConfig, TariffConfig};
use crate::core::{
    CancellationRule, CompatibilityTable, Currency, EarlyDepartureRule, LotId, MatchConfig, Permit,
    PermitId, Plate, ReservationPolicy, SitePolicy, Tariff, TariffBand, TariffTable,
};
use crate::store::SpaceSeed;
use chrono::NaiveDate;
use std::collections::BTreeMap;

pub fn currency(c: &Config) -> Currency {
    Currency::new(&c.site.currency).unwrap_or(Currency::EUR)
}

pub fn site_policy(c: &Config) -> SitePolicy {
    let p = &c.policy;
    let r = &c.reservations;
    let mut policy = SitePolicy::new(LotId::new(c.site.name.clone()), c.time_zone());
    policy.restricted = p.restricted;
    policy.dedupe_window_secs = p.dedupe_window_secs;
    policy.duplicate_session = p.duplicate_session;
    policy.min_read_confidence = p.min_read_confidence;
    policy.assignment = p.assignment;
    policy.unmatched_exit = p.unmatched_exit;
    policy.unpaid_exit = p.unpaid_exit;
    policy.exit_matching = MatchConfig {
        max_distance: p.match_max_distance,
        min_margin: p.match_min_margin,
    };
    let mut compat = CompatibilityTable::default();
    if !p.compatibility.is_empty() {
        compat.preferences = p
            .compatibility
            .iter()
            .map(|(v, kinds)| (*v, kinds.clone()))
            .collect();
    }
    compat.permit_only = p.permit_only.to_vec();
    policy.compatibility = compat;
    policy.reservations = ReservationPolicy {
        early_check_in_minutes: r.early_check_in_minutes,
        no_show_grace_minutes: r.no_show_grace_minutes,
        cancellation: CancellationRule {
            full_refund_minutes_before: r.full_refund_minutes_before,
            late_cancel_fee: r.late_cancel_fee,
        },
        early_departure: match r.early_departure {
            EarlyDepartureKind::NoRefund => EarlyDepartureRule::NoRefund,
            EarlyDepartureKind::UnusedWholeHours => EarlyDepartureRule::UnusedWholeHours {
                fee: r.early_departure_fee,
            },
        },
    };
    policy
}

fn tariff(c: &Config, t: &TariffConfig) -> Tariff {
    let mut out = Tariff::simple(
        &t.id,
        currency(c),
        c.time_zone(),
        t.interval_minutes.max(1),
        t.interval_price,
    );
    out.free_grace_minutes = t.grace_minutes;
    out.daily_max = t.daily_max;
    out.lost_ticket_fee = t.lost_ticket_fee;
    out.reservation_fee = t.reservation_price;
    out.no_show_fee = t.no_show_fee;
    out.exit_grace_minutes = t.exit_grace_minutes;
    out.bands = t
        .bands
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            let w = crate::config::WindowConfig {
                days: b.days.clone(),
                from: b.from.clone(),
                to: b.to.clone(),
            };
            parse_window(&w).ok().map(|window| TariffBand {
                name: format!("{}#{i}", t.id),
                window,
                interval_price: b.interval_price,
            })
        })
        .collect();
    out
}

/// The tariff table: per space type from `[[tariffs]]`; the first tariff is
/// also the default (a free tariff when none is configured).
pub fn tariffs(c: &Config) -> TariffTable {
    let default = c
        .tariffs
        .first()
        .map(|t| tariff(c, t))
        .unwrap_or_else(|| Tariff::simple("free", currency(c), c.time_zone(), 60, 0));
    let mut by_space_type = BTreeMap::new();
    for t in &c.tariffs {
        let tt = tariff(c, t);
        for k in &t.space_types {
            by_space_type.insert(*k, tt.clone());
        }
    }
    TariffTable {
        default,
        by_space_type,
        by_vehicle_type: BTreeMap::new(),
    }
}

/// The permits of the site file (validated with the config, so none is
/// dropped here in practice).
pub fn permits(c: &Config) -> Vec<Permit> {
    c.permits.iter().filter_map(|p| permit(p).ok()).collect()
}

/// One permit from its configuration form (the site file's `[[permits]]` or
/// the API's request), or the field that is wrong and why.
pub fn permit(p: &PermitConfig) -> Result<Permit, (&'static str, String)> {
    let plate = Plate::parse(&p.plate).map_err(|e| ("license_plate", e.to_string()))?;
    let date = |field: &'static str, s: &str| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| (field, format!("`{s}` is not a date YYYY-MM-DD")))
    };
    let from = date("valid_from", &p.valid_from)?;
    let mut permit = Permit::new(PermitId::new(p.id.clone()), plate, p.kind, from);
    permit.valid_until = p
        .valid_until
        .as_deref()
        .map(|u| date("valid_until", u))
        .transpose()?;
    if permit.valid_until.is_some_and(|u| u < from) {
        return Err((
            "valid_until",
            format!(
                "valid_until {} is before valid_from {from}",
                p.valid_until.as_deref().unwrap_or_default()
            ),
        ));
    }
    permit.windows = p
        .windows
        .iter()
        .map(|w| parse_window(w).map_err(|e| ("windows", e)))
        .collect::<Result<_, _>>()?;
    if let Some(types) = &p.space_types {
        permit.space_types = types.to_vec();
    }
    if let Some(covers) = p.covers_fees {
        permit.covers_fees = covers;
    }
    Ok(permit)
}

pub fn list_entries(c: &Config) -> Vec<(Plate, &'static str)> {
    let mut out = Vec::new();
    for (name, plates) in [
        ("blocked", &c.lists.blocked),
        ("watched", &c.lists.watched),
        ("allowed", &c.lists.allowed),
    ] {
        out.extend(
            plates
                .iter()
                .filter_map(|p| Plate::parse(p).ok())
                .map(|p| (p, name)),
        );
    }
    out
}

pub fn space_seeds(c: &Config) -> Vec<SpaceSeed> {
    c.spaces
        .iter()
        .map(|s| SpaceSeed {
            id: s.id.clone(),
            level: s.level.clone(),
            zone: s.zone.clone(),
            space_type: s.kind,
            rank: s.rank,
        })
        .collect()
}
