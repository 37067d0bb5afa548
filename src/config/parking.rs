//! Configuration sections of the parking core: site policy, reservations,
//! permits, plate lists, payments and API keys. Kept in their own file so the
//! core's settings are in one place; validated by [`validate`], called from
//! the cross-field checks. Enum values use the core's own names
//! (`nearest`/`best_fit`, `hold_for_staff`, …), so a typo is reported by
//! serde with its line.

use super::{Config, ConfigPath, Problem, SpaceType};
use crate::core::{
    AssignmentStrategy, DuplicateSessionPolicy, PaymentMethod, PermitKind, UnmatchedExitPolicy,
    UnpaidExitPolicy, VehicleType,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[policy]`: how the site decides entries and exits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Only permit holders, allow-listed plates and reservations may enter.
    pub restricted: bool,
    /// `nearest` (lowest rank of any fitting type) or `best_fit` (smallest fitting type first).
    pub assignment: AssignmentStrategy,
    /// A second read of an open session's plate within this many seconds is the same car.
    pub dedupe_window_secs: u32,
    /// An older open session for an entering plate: `supersede_and_flag` or `deny`.
    pub duplicate_session: DuplicateSessionPolicy,
    /// Reads below this confidence raise a `low_confidence_read` flag.
    pub min_read_confidence: f64,
    /// Exit read matching no session: `hold_for_staff` or `charge_lost_ticket`.
    pub unmatched_exit: UnmatchedExitPolicy,
    /// Money owed at exit: `require_payment` or `pay_later`.
    pub unpaid_exit: UnpaidExitPolicy,
    /// Largest OCR-weighted edit distance accepted for a fuzzy exit match.
    pub match_max_distance: f64,
    /// How much further the runner-up must be for a fuzzy match to be unique.
    pub match_min_margin: f64,
    /// Vehicle type → space types it may use, most preferred first (default table when empty).
    pub compatibility: BTreeMap<VehicleType, Vec<SpaceType>>,
    /// Space types usable only with a permit that grants them.
    pub permit_only: Vec<SpaceType>,
    /// A bay seen occupied this long with no session on it raises a flag
    /// (`occupied_without_session`, or `wrong_bay` when a car's own bay stayed
    /// free). Time to drive from the gate and park; 0 flags at once.
    pub bay_flag_grace_secs: u32,
    /// How often bays are reviewed for those flags.
    pub bay_review_interval_secs: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            restricted: false,
            assignment: AssignmentStrategy::Nearest,
            dedupe_window_secs: 30,
            duplicate_session: DuplicateSessionPolicy::SupersedeAndFlag,
            min_read_confidence: 0.8,
            unmatched_exit: UnmatchedExitPolicy::HoldForStaff,
            unpaid_exit: UnpaidExitPolicy::RequirePayment,
            match_max_distance: 1.0,
            match_min_margin: 0.5,
            compatibility: BTreeMap::new(),
            permit_only: vec![SpaceType::Handicapped],
            bay_flag_grace_secs: 300,
            bay_review_interval_secs: 30,
        }
    }
}

/// How an early departure from a reservation is refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EarlyDepartureKind {
    NoRefund,
    UnusedWholeHours,
}

/// `[reservations]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReservationsConfig {
    /// A reservation may check in this long before its start.
    pub early_check_in_minutes: u32,
    /// Still not checked in this long after the start → no-show (bay released, fee charged).
    pub no_show_grace_minutes: u32,
    /// Cancelling at least this long before the start refunds everything.
    pub full_refund_minutes_before: u32,
    /// Kept on a late cancellation (minor units).
    pub late_cancel_fee: i64,
    /// `no_refund` or `unused_whole_hours`.
    pub early_departure: EarlyDepartureKind,
    /// Kept from an early-departure refund (minor units).
    pub early_departure_fee: i64,
    /// A reserved bay is held back from walk-ins this long before its check-in window opens.
    pub hold_before_minutes: u32,
    /// How often the no-show sweeper runs.
    pub sweep_interval_secs: u64,
}

impl Default for ReservationsConfig {
    fn default() -> Self {
        Self {
            early_check_in_minutes: 15,
            no_show_grace_minutes: 30,
            full_refund_minutes_before: 60,
            late_cancel_fee: 0,
            early_departure: EarlyDepartureKind::NoRefund,
            early_departure_fee: 0,
            hold_before_minutes: 60,
            sweep_interval_secs: 60,
        }
    }
}

/// A weekly window: days (`mon`…`sun`, empty = every day) and local `HH:MM` times.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    #[serde(default)]
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
}

/// `[[permits]]`: seeded at start-up (updated by id, never deleted by a restart).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermitConfig {
    pub id: String,
    pub plate: String,
    /// `staff`, `handicapped`, `ev`, `resident` or `contractor`.
    pub kind: PermitKind,
    /// First valid day `YYYY-MM-DD` (site time zone).
    pub valid_from: String,
    /// Last valid day, inclusive; absent = open-ended.
    #[serde(default)]
    pub valid_until: Option<String>,
    /// When the permit applies; empty = all day.
    #[serde(default)]
    pub windows: Vec<WindowConfig>,
    /// Restricted space types it unlocks (default by kind: handicapped, ev).
    #[serde(default)]
    pub space_types: Option<Vec<SpaceType>>,
    /// Whether parking is free with it (default: staff and resident).
    #[serde(default)]
    pub covers_fees: Option<bool>,
}

/// `[lists]`: plates, normalised on load.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ListsConfig {
    /// Never admitted.
    pub blocked: Vec<String>,
    /// Admitted, but every read raises a flag for security.
    pub watched: Vec<String>,
    /// Admitted to a restricted site without a permit (fees still apply).
    pub allowed: Vec<String>,
}

/// `[payments]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// `builtin`: the in-process gateway for demos and tests (its ledger is in the database).
    pub gateway: String,
    /// Accepted methods.
    pub methods: Vec<PaymentMethod>,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            gateway: "builtin".into(),
            methods: vec![
                PaymentMethod::Card,
                PaymentMethod::Mobile,
                PaymentMethod::Cash,
            ],
        }
    }
}

/// Roles of API keys; each endpoint lists the roles that may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiRole {
    Kiosk,
    Sensor,
    Board,
    Operator,
    Security,
    Admin,
}

impl ApiRole {
    pub const ALL: [ApiRole; 6] = [
        ApiRole::Kiosk,
        ApiRole::Sensor,
        ApiRole::Board,
        ApiRole::Operator,
        ApiRole::Security,
        ApiRole::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::Kiosk => "kiosk",
            ApiRole::Sensor => "sensor",
            ApiRole::Board => "board",
            ApiRole::Operator => "operator",
            ApiRole::Security => "security",
            ApiRole::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<ApiRole> {
        ApiRole::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Requests per minute a key of this role gets unless configured otherwise.
    pub fn default_rate_per_minute(self) -> u32 {
        match self {
            ApiRole::Board => 600,
            ApiRole::Sensor => 6000,
            ApiRole::Kiosk => 1200,
            ApiRole::Operator | ApiRole::Security => 1200,
            ApiRole::Admin => 60000,
        }
    }
}

/// `[[api_keys]]`: keys known from the config. Only the hash is written here
/// (`lotsense keys hash KEY` prints it); the key itself is never stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    pub name: String,
    pub role: ApiRole,
    /// `sha256:<64 hex digits>` of the full key.
    pub hash: String,
    /// Requests per minute (default by role).
    #[serde(default)]
    pub rate_per_minute: Option<u32>,
}

pub(super) fn validate(c: &Config, out: &mut Vec<Problem>) {
    let mut err = |path: ConfigPath, message: String| {
        out.push(Problem {
            path,
            line: None,
            message,
        })
    };
    let root = ConfigPath::root();

    let p = root.key("policy");
    if !(0.0..=1.0).contains(&c.policy.min_read_confidence) {
        err(
            p.key("min_read_confidence"),
            format!("{} is outside 0..1", c.policy.min_read_confidence),
        );
    }
    // NaN fails too.
    if c.policy.match_max_distance.is_nan() || c.policy.match_max_distance < 0.0 {
        err(p.key("match_max_distance"), "must be zero or more".into());
    }
    if c.policy.match_min_margin.is_nan() || c.policy.match_min_margin < 0.0 {
        err(p.key("match_min_margin"), "must be zero or more".into());
    }
    for (vehicle, kinds) in &c.policy.compatibility {
        if kinds.is_empty() {
            err(
                p.key("compatibility").key(vehicle.as_str()),
                format!("vehicle type `{vehicle}` lists no space type"),
            );
        }
    }

    let r = root.key("reservations");
    for (name, v) in [
        ("late_cancel_fee", c.reservations.late_cancel_fee),
        ("early_departure_fee", c.reservations.early_departure_fee),
    ] {
        if v < 0 {
            err(r.key(name), format!("{name} cannot be negative"));
        }
    }
    if c.reservations.sweep_interval_secs == 0 {
        err(r.key("sweep_interval_secs"), "must be at least 1".into());
    }

    let mut ids = std::collections::HashSet::new();
    for (i, pm) in c.permits.iter().enumerate() {
        let pp = root.key("permits").index(i);
        if pm.id.is_empty() {
            err(pp.key("id"), format!("permit {i} has an empty id"));
        } else if !ids.insert(pm.id.as_str()) {
            err(
                pp.key("id"),
                format!("permit id `{}` is defined twice", pm.id),
            );
        }
        if let Err(e) = crate::core::Plate::parse(&pm.plate) {
            err(pp.key("plate"), format!("permit `{}`: {e}", pm.id));
        }
        let from = chrono::NaiveDate::parse_from_str(&pm.valid_from, "%Y-%m-%d");
        if from.is_err() {
            err(
                pp.key("valid_from"),
                format!(
                    "permit `{}`: `{}` is not a date YYYY-MM-DD",
                    pm.id, pm.valid_from
                ),
            );
        }
        if let Some(u) = &pm.valid_until {
            match chrono::NaiveDate::parse_from_str(u, "%Y-%m-%d") {
                Err(_) => err(
                    pp.key("valid_until"),
                    format!("permit `{}`: `{u}` is not a date YYYY-MM-DD", pm.id),
                ),
                Ok(until) if from.is_ok_and(|f| until < f) => err(
                    pp.key("valid_until"),
                    format!(
                        "permit `{}`: valid_until {u} is before valid_from {}",
                        pm.id, pm.valid_from
                    ),
                ),
                Ok(_) => {}
            }
        }
        for (j, w) in pm.windows.iter().enumerate() {
            if let Err(e) = window_problem(w) {
                err(
                    pp.key("windows").index(j),
                    format!("permit `{}`: {e}", pm.id),
                );
            }
        }
    }

    let l = root.key("lists");
    for (name, plates) in [
        ("blocked", &c.lists.blocked),
        ("watched", &c.lists.watched),
        ("allowed", &c.lists.allowed),
    ] {
        for (i, plate) in plates.iter().enumerate() {
            if let Err(e) = crate::core::Plate::parse(plate) {
                err(l.key(name).index(i), format!("{name} plate: {e}"));
            }
        }
    }

    if c.payments.gateway != "builtin" {
        err(
            root.key("payments").key("gateway"),
            format!(
                "unknown payment gateway `{}` (only `builtin` is available)",
                c.payments.gateway
            ),
        );
    }
    if c.payments.methods.is_empty() {
        err(
            root.key("payments").key("methods"),
            "at least one payment method is needed".into(),
        );
    }

    let mut names = std::collections::HashSet::new();
    for (i, k) in c.api_keys.iter().enumerate() {
        let kp = root.key("api_keys").index(i);
        if k.name.is_empty() {
            err(kp.key("name"), format!("api key {i} has an empty name"));
        } else if !names.insert(k.name.as_str()) {
            err(
                kp.key("name"),
                format!("api key name `{}` is defined twice", k.name),
            );
        }
        let hex = k.hash.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.chars().all(|ch| ch.is_ascii_hexdigit()) {
            err(kp.key("hash"), format!("api key `{}`: hash must be `sha256:` and 64 hex digits (run `lotsense keys hash KEY`)", k.name));
        }
        if k.rate_per_minute == Some(0) {
            err(
                kp.key("rate_per_minute"),
                format!("api key `{}`: rate_per_minute must be at least 1", k.name),
            );
        }
    }
}

/// Parses a weekly window's days and times.
pub fn parse_window(w: &WindowConfig) -> Result<crate::core::WeeklyWindow, String> {
    use chrono::Weekday::*;
    let time = |s: &str| {
        if s == "24:00" {
            return Ok(chrono::NaiveTime::MIN);
        }
        chrono::NaiveTime::parse_from_str(s, "%H:%M")
            .map_err(|_| format!("`{s}` is not a time HH:MM"))
    };
    let mut days = Vec::new();
    for d in &w.days {
        days.push(match d.as_str() {
            "mon" => Mon,
            "tue" => Tue,
            "wed" => Wed,
            "thu" => Thu,
            "fri" => Fri,
            "sat" => Sat,
            "sun" => Sun,
            other => return Err(format!("`{other}` is not a day (mon…sun)")),
        });
    }
    if days.is_empty() {
        days = vec![Mon, Tue, Wed, Thu, Fri, Sat, Sun];
    }
    Ok(crate::core::WeeklyWindow::new(
        &days,
        time(&w.from)?,
        time(&w.to)?,
    ))
}

fn window_problem(w: &WindowConfig) -> Result<(), String> {
    parse_window(w).map(|_| ())
}

crate::variants!(ApiRole, Kiosk, Sensor, Board, Operator, Security, Admin);
