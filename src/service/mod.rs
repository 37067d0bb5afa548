//! Application services of the parking core: they gather a snapshot in a
//! transaction, ask the pure core (`crate::core`) what to do, write the result
//! and its audit record in the same transaction, and then talk to the world
//! (gate commands, displays, the payment gateway).
//!
//! Decisions from camera plate reads ([`ParkingService::on_plate_read`]) and
//! from the HTTP API go through the same methods.
//!
//! Concurrency and crash safety come from the schema: one open session per
//! plate (unique index), one session per bay (conditional `UPDATE … WHERE
//! status = 'available'`, retried with the next bay), no overlapping
//! reservations of a bay (exclusion constraint / trigger), one payment per
//! idempotency key. A payment is written `pending` *before* the gateway is
//! asked and settled after; pending payments are re-driven at start-up with
//! the same key, which the gateway honours once.

pub mod db;
pub mod gates;
pub mod gateway;
mod lists;
pub mod offline;
pub mod setup;

use crate::config::Config;
use crate::core::baywatch::{self, AssignedBay, BayFinding, BayReport};
use crate::core::BayState;
use crate::core::{
    self, check_booking, check_payment_amount, decide_entry, decide_exit, match_exit, net_paid,
    reservation_quote, BookingRejection, CoreError, Currency, EntryContext, EntryVerdict,
    ExitContext, ExitDecision, ExitMatch, ExitVerdict, FlagStatus, Money, OpenSession,
    PaymentMethod, PaymentRejection, Plate, RaisedFlag, ReservationStatus, ReservationTarget,
    SessionId, SitePolicy, Space, SpaceStatus, SpaceType, TariffTable, TimeRange, VehicleType,
};
use crate::events::{PlateRead, Role};
use crate::store::parking::{self as st, PaymentRow};
use crate::store::Store;
use chrono::{DateTime, Duration, Utc};
use db::Db;
use gates::{GateCommand, GateCommander, GateDisplay};
use gateway::{BuiltinGateway, GatewayError, GatewayRequest, PaymentGateway};
use serde::Serialize;
use std::sync::Arc;

/// How many times a decision is retried after losing a race.
const MAX_ATTEMPTS: usize = 8;

/// Errors of the services, each with a stable machine code for the API.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: Option<&'static str>,
        message: String,
    },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0}")]
    GatewayUnavailable(String),
    #[error("payment declined: {0}")]
    Declined(String),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("too many concurrent changes; try again")]
    Busy,
    #[error("database error: {0}")]
    Db(sqlx::Error),
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        if st::is_unavailable(&e) {
            ServiceError::Unavailable(e.to_string())
        } else {
            ServiceError::Db(e)
        }
    }
}

fn invalid(code: &'static str, field: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid {
        code,
        field: Some(field),
        message: message.into(),
    }
}

fn not_found(what: &'static str, id: &str) -> ServiceError {
    ServiceError::NotFound {
        what,
        id: id.to_string(),
    }
}

/// Everything the services need from the configuration, in core terms.
#[derive(Debug, Clone)]
pub struct Settings {
    pub site: String,
    pub policy: SitePolicy,
    pub tariffs: TariffTable,
    pub currency: Currency,
    pub methods: Vec<PaymentMethod>,
    /// Gates by id, with their acknowledgement timeouts.
    pub gates: Vec<(String, std::time::Duration)>,
    /// Bays are held for a booking from this long before its check-in window.
    pub hold_before: Duration,
    pub sweep_interval: std::time::Duration,
    /// Home Assistant discovery (prefix, site) for the gates, when on.
    pub discovery: Option<(String, String)>,
    /// Occupied-without-session grace and how often bays are reviewed.
    pub bay_grace: Duration,
    pub bay_review_interval: std::time::Duration,
}

impl Settings {
    pub fn from_config(c: &Config) -> Settings {
        Settings {
            site: c.site.name.clone(),
            policy: setup::site_policy(c),
            tariffs: setup::tariffs(c),
            currency: setup::currency(c),
            methods: c.payments.methods.clone(),
            gates: c
                .gates
                .iter()
                .map(|g| {
                    (
                        g.id.clone(),
                        std::time::Duration::from_secs(g.ack_timeout_secs.max(1)),
                    )
                })
                .collect(),
            hold_before: Duration::minutes(c.reservations.hold_before_minutes.into()),
            sweep_interval: std::time::Duration::from_secs(
                c.reservations.sweep_interval_secs.max(1),
            ),
            discovery: c
                .occupancy
                .home_assistant
                .then(|| (c.occupancy.discovery_prefix.clone(), c.site.name.clone())),
            bay_grace: Duration::seconds(c.policy.bay_flag_grace_secs.into()),
            bay_review_interval: std::time::Duration::from_secs(
                c.policy.bay_review_interval_secs.max(1).into(),
            ),
        }
    }

    fn lead_ms(&self) -> i64 {
        (self.hold_before
            + Duration::minutes(self.policy.reservations.early_check_in_minutes.into()))
        .num_milliseconds()
    }
}

/// A change of a bay's status; see [`ParkingService::set_space_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceStatusChange {
    /// A bay sensor or overview camera saw the bay free or occupied.
    Sensor(BayState),
    /// Staff pin the occupancy state (`Some`) or hand it back to the sensors (`None`).
    Override(Option<BayState>),
    OutOfService,
    /// Staff say the bay is available: back in service when it was out of
    /// service, otherwise a report that it is free.
    BackInService,
}

/// Who or what asked for a decision.
#[derive(Debug, Clone)]
pub enum Source {
    Camera { camera: String, read_id: String },
    Api { key: String },
    System,
}

impl Source {
    fn actor(&self) -> String {
        match self {
            Source::Camera { camera, .. } => format!("camera:{camera}"),
            Source::Api { key } => format!("api:{key}"),
            Source::System => "system".into(),
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Source::Camera { .. } => "camera",
            Source::Api { .. } => "api",
            Source::System => "system",
        }
    }
    fn read_id(&self) -> Option<&str> {
        match self {
            Source::Camera { read_id, .. } => Some(read_id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EntryRequest {
    pub plate: Plate,
    pub vehicle_type: Option<VehicleType>,
    pub reservation_id: Option<String>,
    pub gate: Option<String>,
    pub at: DateTime<Utc>,
    pub confidence: f64,
    pub evidence: Option<serde_json::Value>,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub struct ExitRequest {
    pub plate: Plate,
    pub gate: Option<String>,
    pub at: DateTime<Utc>,
    pub confidence: f64,
    pub evidence: Option<serde_json::Value>,
    pub source: Source,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlagRef {
    pub flag_id: String,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpaceRef {
    pub space_id: String,
    pub level: String,
    pub zone: String,
    #[serde(rename = "type")]
    pub space_type: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryOutcome {
    pub decision_id: String,
    pub license_plate: String,
    /// `admit`, `duplicate` or `deny`.
    pub verdict: String,
    pub reason: String,
    pub explanation: String,
    pub gate: Option<String>,
    /// `open` or `deny`.
    pub gate_command: String,
    pub session_id: Option<String>,
    pub space: Option<SpaceRef>,
    pub reservation_id: Option<String>,
    pub flags: Vec<FlagRef>,
    /// Money still owed from earlier visits.
    pub outstanding_debts: Vec<st::DebtRow>,
    /// Decided from the in-memory cache because the database was down.
    pub offline: bool,
    pub timestamp: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExitOutcome {
    pub decision_id: String,
    pub license_plate: String,
    /// `open`, `payment_required` or `hold`.
    pub verdict: String,
    pub reason: String,
    pub explanation: String,
    pub gate: Option<String>,
    pub gate_command: String,
    /// `exact`, `fuzzy`, `ambiguous` or `none`.
    pub match_kind: String,
    pub session_id: Option<String>,
    /// The plate of the matched session (differs from the read on a fuzzy match).
    pub matched_plate: Option<String>,
    pub amount_due: i64,
    pub currency: String,
    pub fee: Option<core::Fee>,
    pub debt_id: Option<String>,
    pub refunds: Vec<PaymentRow>,
    pub flags: Vec<FlagRef>,
    pub offline: bool,
    pub timestamp: DateTime<Utc>,
}

/// What a payment is for.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentTarget {
    Session(String),
    Reservation(String),
    /// A lost-ticket fee for a plate whose exit matched no session.
    LostTicket(Plate),
}

#[derive(Debug, Clone)]
pub struct PaymentRequest {
    pub target: PaymentTarget,
    pub method: PaymentMethod,
    pub amount: i64,
    pub idempotency_key: String,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentOutcome {
    pub payment: PaymentRow,
    pub receipt: Option<st::ReceiptRow>,
    /// True when this answers a retry of an earlier request with the same key.
    pub replayed: bool,
    /// Still owed on the same target after this payment.
    pub remaining_due: i64,
}

#[derive(Debug, Clone)]
pub struct ReservationRequest {
    pub plate: Plate,
    pub space_id: Option<String>,
    pub space_type: Option<SpaceType>,
    pub vehicle_type: Option<VehicleType>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub actor: String,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReservationOutcome {
    #[serde(flatten)]
    pub reservation: st::ReservationRow,
    pub price_lines: Vec<core::FeeLine>,
    pub amount_due: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CancelOutcome {
    #[serde(flatten)]
    pub reservation: st::ReservationRow,
    pub refund_due: i64,
    pub refunds: Vec<PaymentRow>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct TypeAvailability {
    #[serde(rename = "type")]
    pub space_type: String,
    pub total: i64,
    pub available: i64,
    pub occupied: i64,
    pub reserved: i64,
    pub out_of_service: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParkingSpaceView {
    #[serde(flatten)]
    pub space: st::SpaceRow,
    /// Status as shown to people: `reserved` when held for a booking.
    pub display_status: String,
    pub reservation_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VehicleView {
    pub license_plate: String,
    pub vehicle: Option<st::VehicleRow>,
    pub lists: core::ListMembership,
    pub permits: Vec<core::Permit>,
    pub open_session: Option<st::SessionRow>,
    pub history: Vec<st::SessionRow>,
    pub payments: Vec<PaymentRow>,
    pub reservations: Vec<st::ReservationRow>,
    pub outstanding_debts: Vec<st::DebtRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    #[serde(flatten)]
    pub session: st::SessionRow,
    pub payments: Vec<PaymentRow>,
    pub gate_decisions: Vec<st::GateDecisionRow>,
    /// For an open session: what leaving now would cost after payments.
    pub amount_due_now: Option<i64>,
    pub debt: Option<st::DebtRow>,
}

struct Inner {
    db: Db,
    settings: Settings,
    gateway: Arc<dyn PaymentGateway>,
    gates: Option<GateCommander>,
    offline: offline::Offline,
}

/// The parking services; cheap to clone.
#[derive(Clone)]
pub struct ParkingService {
    inner: Arc<Inner>,
}

fn flag_refs(ids: &[String], flags: &[RaisedFlag]) -> Vec<FlagRef> {
    ids.iter()
        .zip(flags)
        .map(|(id, f)| FlagRef {
            flag_id: id.clone(),
            kind: st::enum_str(&f.kind),
            detail: f.detail.clone(),
        })
        .collect()
}

impl ParkingService {
    /// Builds the service and seeds the database from the configuration
    /// (spaces, permits, lists). `mqtt` enables gate commands.
    pub async fn new(
        store: Store,
        settings: Settings,
        mqtt: Option<crate::mqtt::MqttHandle>,
    ) -> anyhow::Result<ParkingService> {
        let db = Db::new(store);
        let gateway: Arc<dyn PaymentGateway> = Arc::new(BuiltinGateway::new(db.clone()));
        let gates = match mqtt {
            Some(m) => Some(
                GateCommander::start(
                    m,
                    db.clone(),
                    settings.gates.iter().cloned().collect(),
                    settings.discovery.clone(),
                )
                .await?,
            ),
            None => None,
        };
        Ok(ParkingService {
            inner: Arc::new(Inner {
                db,
                settings,
                gateway,
                gates,
                offline: offline::Offline::default(),
            }),
        })
    }

    /// Writes the configured spaces, permits and lists into the database.
    pub async fn seed(&self, config: &Config) -> Result<(), ServiceError> {
        let now = Utc::now();
        let mut tx = self.db().write().await?;
        st::sync_spaces(&mut tx, &setup::space_seeds(config), now).await?;
        st::sync_permits(&mut tx, &setup::permits(config), now).await?;
        st::sync_lists(&mut tx, &setup::list_entries(config), now).await?;
        tx.commit().await?;
        self.refresh_offline_cache().await?;
        Ok(())
    }

    fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn store(&self) -> &Store {
        &self.inner.db.store
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn gateway(&self) -> &Arc<dyn PaymentGateway> {
        &self.inner.gateway
    }

    fn default_gate(&self) -> Option<String> {
        self.inner.settings.gates.first().map(|(g, _)| g.clone())
    }

    // ------------------------------------------------------------ plate reads

    /// Consumes one camera read: entry or exit by the camera's role.
    pub async fn on_plate_read(&self, read: PlateRead) -> Result<serde_json::Value, ServiceError> {
        let plate = Plate::parse(&read.plate)
            .map_err(|e| invalid("invalid_plate", "plate", e.to_string()))?;
        if let Ok(mut c) = self.db().read().await {
            if let Err(e) = st::insert_plate_read(&mut c, &read).await {
                tracing::warn!(read = %read.id, error = %e, "plate read not stored");
            }
        }
        let evidence = serde_json::json!({ "read_id": read.id, "camera": read.camera, "crop": read.evidence.crop, "frame": read.evidence.frame, "score": read.score });
        let source = Source::Camera {
            camera: read.camera.clone(),
            read_id: read.id.clone(),
        };
        let out = match read.role {
            Role::Entry => serde_json::to_value(
                self.entry(EntryRequest {
                    plate,
                    vehicle_type: None,
                    reservation_id: None,
                    gate: read.gate.clone(),
                    at: read.timestamp,
                    confidence: f64::from(read.score),
                    evidence: Some(evidence),
                    source,
                })
                .await?,
            ),
            Role::Exit => serde_json::to_value(
                self.exit(ExitRequest {
                    plate,
                    gate: read.gate.clone(),
                    at: read.timestamp,
                    confidence: f64::from(read.score),
                    evidence: Some(evidence),
                    source,
                })
                .await?,
            ),
        };
        Ok(out.unwrap_or_default())
    }

    // ------------------------------------------------------------ entry

    /// Decides an entry (camera or API), opens the session and assigns the
    /// bay atomically, records and audits it, then commands the gate.
    pub async fn entry(&self, req: EntryRequest) -> Result<EntryOutcome, ServiceError> {
        let gate = req.gate.clone().or_else(|| self.default_gate());
        let out = match self.entry_db(&req, gate.clone()).await {
            Err(ServiceError::Unavailable(why)) => {
                tracing::warn!(plate = %req.plate, %why, "database unavailable: offline entry decision");
                self.entry_offline(&req, gate)
            }
            other => other?,
        };
        self.command_gate(
            "entry",
            &out.decision_id,
            out.gate.as_deref(),
            &out.license_plate,
            out.session_id.as_deref(),
            &out.gate_command,
            &out.reason,
            {
                GateDisplay {
                    plate: out.license_plate.clone(),
                    verdict: out.verdict.clone(),
                    reason: out.reason.clone(),
                    message: out.explanation.clone(),
                    space_id: out.space.as_ref().map(|s| s.space_id.clone()),
                    level: out.space.as_ref().map(|s| s.level.clone()),
                    zone: out.space.as_ref().map(|s| s.zone.clone()),
                    amount_due: None,
                }
            },
        )
        .await;
        Ok(out)
    }

    async fn entry_db(
        &self,
        req: &EntryRequest,
        gate: Option<String>,
    ) -> Result<EntryOutcome, ServiceError> {
        let s = &self.inner.settings;
        let now = req.at;
        let plate = &req.plate;
        // The nearest free bays of each type are enough for the core to choose
        // from; only when that could wrongly look full is the whole list read.
        let mut full_scan = false;
        for _attempt in 0..MAX_ATTEMPTS {
            let mut tx = self.db().write().await?;
            let mut audit = st::AuditBatch::default();
            let st::PlateFacts {
                lists,
                permits,
                vehicle_type: known_type,
            } = st::plate_facts(&mut tx, plate).await?;
            let open_row = st::open_session_for(&mut tx, plate).await?;
            let open = open_row.as_ref().and_then(|r| r.to_open());
            let res_row = match &req.reservation_id {
                Some(id) => {
                    let r = st::reservation(&mut tx, id)
                        .await?
                        .ok_or_else(|| not_found("reservation", id))?;
                    if r.license_plate != plate.as_str() {
                        return Err(invalid(
                            "reservation_plate_mismatch",
                            "reservation_id",
                            format!("reservation {id} is for another plate"),
                        ));
                    }
                    Some(r)
                }
                None => st::current_reservation_for(&mut tx, plate, now).await?,
            };
            let reservation = res_row.as_ref().and_then(|r| r.to_core());
            let vehicle_type = match req.vehicle_type {
                Some(v) => v,
                None => known_type.unwrap_or(VehicleType::Unknown),
            };
            let held = st::held_spaces(&mut tx, now, s.lead_ms()).await?;
            let (rows, truncated) = if full_scan {
                (st::available_spaces(&mut tx).await?, false)
            } else {
                st::nearest_available_spaces(&mut tx, 16 + held.len() as i64).await?
            };
            let mut spaces: Vec<Space> = rows
                .iter()
                .map(|r| r.to_core(held.iter().any(|h| h.0 == r.space_id)))
                .collect();
            // A checked-in booking's own bay (re-entry) is offered to it too.
            if let Some(r) = res_row.as_ref().filter(|r| r.status == "checked_in") {
                if !spaces.iter().any(|sp| sp.id.as_str() == r.space_id) {
                    if let Some(row) = st::space(&mut tx, &r.space_id)
                        .await?
                        .filter(|row| row.status == "available")
                    {
                        spaces.push(row.to_core(true));
                    }
                }
            }

            let (decision, session_id) = loop {
                let decision = decide_entry(&EntryContext {
                    policy: &s.policy,
                    plate,
                    read_confidence: req.confidence,
                    vehicle_type,
                    now,
                    lists,
                    permits: &permits,
                    open_session: open.as_ref(),
                    spaces: &spaces,
                    reservation: reservation.as_ref(),
                });
                if !decision.opens_session() {
                    let dup = decision.verdict == EntryVerdict::Duplicate;
                    break (
                        decision,
                        open.as_ref().filter(|_| dup).map(|o| o.id.to_string()),
                    );
                }
                if let Some(old) = &decision.supersede_session {
                    st::close_session(
                        &mut tx,
                        old.as_str(),
                        "superseded",
                        now,
                        None,
                        None,
                        None,
                        "superseded",
                    )
                    .await?;
                    st::release_space_of(&mut tx, old.as_str(), now).await?;
                    audit.push(
                        now,
                        &req.source.actor(),
                        "session_closed",
                        Some(old.as_str()),
                        Some("superseded"),
                        None,
                    );
                }
                let sid = st::new_id();
                if let Some(space) = &decision.assigned_space {
                    if !st::claim_space(&mut tx, space.as_str(), &sid, now).await? {
                        // Lost the race for this bay: the core picks again without it.
                        if let Some(sp) = spaces.iter_mut().find(|sp| &sp.id == space) {
                            sp.status = SpaceStatus::Occupied;
                        }
                        continue;
                    }
                }
                break (decision, Some(sid));
            };

            if truncated && decision.reason == core::EntryReason::FullForVehicleType {
                drop(tx);
                full_scan = true;
                continue;
            }
            let admitted = decision.opens_session();
            if admitted {
                let sid = session_id.as_deref().unwrap_or_default();
                let space = decision
                    .assigned_space
                    .as_ref()
                    .and_then(|id| spaces.iter().find(|sp| &sp.id == id));
                let new = st::NewSession {
                    id: sid,
                    plate,
                    vehicle_type,
                    started: now,
                    gate: gate.as_deref(),
                    read_id: req.source.read_id(),
                    space: space.map(|sp| (sp.id.as_str(), sp.space_type)),
                    reservation_id: decision.check_in_reservation.as_ref().map(|r| r.as_str()),
                    reason: &st::enum_str(&decision.reason),
                    currency: s.currency,
                    evidence: req.evidence.as_ref(),
                };
                if let Err(e) = st::insert_session(&mut tx, &new).await {
                    if st::is_unique_violation(&e) {
                        // Another read of the same car won; decide again (→ duplicate).
                        drop(tx);
                        continue;
                    }
                    return Err(e.into());
                }
                if let Some(rid) = &decision.check_in_reservation {
                    let moved = st::set_reservation_status(
                        &mut tx,
                        rid.as_str(),
                        ReservationStatus::Booked,
                        ReservationStatus::CheckedIn,
                        Some(sid),
                        now,
                    )
                    .await?
                        || st::set_reservation_status(
                            &mut tx,
                            rid.as_str(),
                            ReservationStatus::CheckedIn,
                            ReservationStatus::CheckedIn,
                            Some(sid),
                            now,
                        )
                        .await?;
                    if moved {
                        audit.push(
                            now,
                            &req.source.actor(),
                            "reservation_checked_in",
                            Some(rid.as_str()),
                            None,
                            Some(&serde_json::json!({ "session_id": sid })),
                        );
                    }
                }
                audit.push(
                    now,
                    &req.source.actor(),
                    "session_opened",
                    Some(sid),
                    Some(&st::enum_str(&decision.reason)),
                    None,
                );
            }
            if admitted || decision.verdict == EntryVerdict::Duplicate || req.vehicle_type.is_some()
            {
                st::upsert_vehicle(&mut tx, plate, req.vehicle_type, now).await?;
            }
            let decision_id = st::new_id();
            let command = if decision.opens_gate() {
                "open"
            } else {
                "deny"
            };
            st::insert_gate_decision(
                &mut tx,
                &st::GateDecisionRow {
                    decision_id: decision_id.clone(),
                    gate: gate.clone(),
                    direction: "entry".into(),
                    license_plate: plate.to_string(),
                    session_id: session_id.clone(),
                    command: command.into(),
                    verdict: st::enum_str(&decision.verdict),
                    reason: st::enum_str(&decision.reason),
                    explanation: decision.explanation.clone(),
                    amount: None,
                    read_id: req.source.read_id().map(String::from),
                    source: req.source.kind().into(),
                    decided_at: now,
                    ack_state: None,
                    acked_at: None,
                    attempts: 0,
                },
            )
            .await?;
            let flag_ids = self
                .raise_flags(
                    &mut tx,
                    &mut audit,
                    &decision.flags,
                    plate,
                    session_id.as_deref(),
                    gate.as_deref(),
                    req.evidence.as_ref(),
                    now,
                )
                .await?;
            let action = if decision.opens_gate() {
                "entry_admitted"
            } else {
                "entry_denied"
            };
            let detail = serde_json::json!({ "decision_id": decision_id, "verdict": decision.verdict, "space": decision.assigned_space, "gate": gate });
            audit.push(
                now,
                &req.source.actor(),
                action,
                Some(plate.as_str()),
                Some(&st::enum_str(&decision.reason)),
                Some(&detail),
            );
            audit.write(&mut tx).await?;
            let debts = st::open_debts_for(&mut tx, plate.as_str()).await?;
            tx.commit().await?;

            let space = decision
                .assigned_space
                .as_ref()
                .and_then(|id| spaces.iter().find(|sp| &sp.id == id))
                .map(|sp| SpaceRef {
                    space_id: sp.id.to_string(),
                    level: sp.level.clone(),
                    zone: sp.zone.clone(),
                    space_type: sp.space_type.to_string(),
                });
            let space = match (space, decision.verdict, open_row.as_ref()) {
                (None, EntryVerdict::Duplicate, Some(o)) => {
                    o.space_id.as_ref().map(|id| SpaceRef {
                        space_id: id.clone(),
                        level: String::new(),
                        zone: String::new(),
                        space_type: o.space_type.clone().unwrap_or_default(),
                    })
                }
                (sp, _, _) => sp,
            };
            return Ok(EntryOutcome {
                decision_id,
                license_plate: plate.to_string(),
                verdict: st::enum_str(&decision.verdict),
                reason: st::enum_str(&decision.reason),
                explanation: decision.explanation.clone(),
                gate,
                gate_command: command.into(),
                session_id,
                space,
                reservation_id: decision
                    .check_in_reservation
                    .as_ref()
                    .map(|r| r.to_string()),
                flags: flag_refs(&flag_ids, &decision.flags),
                outstanding_debts: debts,
                offline: false,
                timestamp: now,
            });
        }
        Err(ServiceError::Busy)
    }

    #[allow(clippy::too_many_arguments)]
    async fn raise_flags(
        &self,
        tx: &mut st::Conn,
        audit: &mut st::AuditBatch,
        flags: &[RaisedFlag],
        plate: &Plate,
        session: Option<&str>,
        gate: Option<&str>,
        evidence: Option<&serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, sqlx::Error> {
        let mut ids = Vec::new();
        for f in flags {
            let kind = st::enum_str(&f.kind);
            let id = st::insert_flag(
                tx,
                &kind,
                Some(plate.as_str()),
                session,
                gate,
                &f.detail,
                evidence,
                now,
            )
            .await?;
            audit.push(
                now,
                "system",
                "flag_raised",
                Some(&id),
                Some(&kind),
                Some(&serde_json::json!({ "plate": plate, "detail": f.detail })),
            );
            ids.push(id);
        }
        Ok(ids)
    }

    #[allow(clippy::too_many_arguments)]
    async fn command_gate(
        &self,
        direction: &str,
        decision_id: &str,
        gate: Option<&str>,
        plate: &str,
        session: Option<&str>,
        command: &str,
        reason: &str,
        display: GateDisplay,
    ) {
        let (Some(gates), Some(gate)) = (&self.inner.gates, gate) else {
            return;
        };
        if !gates.knows(gate) {
            return;
        }
        gates.display(gate, &display).await;
        gates.dispatch(GateCommand {
            command: command.into(),
            decision_id: decision_id.into(),
            gate: gate.into(),
            plate: plate.into(),
            session_id: session.map(String::from),
            reason: reason.into(),
            direction: direction.into(),
            attempt: 0,
            at: Utc::now(),
        });
    }

    // ------------------------------------------------------------ exit

    /// Decides an exit (camera or API): matches the session (exact, then
    /// confusion-aware), prices it, closes it when the gate opens.
    pub async fn exit(&self, req: ExitRequest) -> Result<ExitOutcome, ServiceError> {
        let gate = req.gate.clone().or_else(|| self.default_gate());
        let (out, refunds_to_drive) = match self.exit_db(&req, gate.clone()).await {
            Err(ServiceError::Unavailable(why)) => {
                tracing::warn!(plate = %req.plate, %why, "database unavailable: offline exit decision");
                (self.exit_offline(&req, gate), Vec::new())
            }
            other => other?,
        };
        self.command_gate(
            "exit",
            &out.decision_id,
            out.gate.as_deref(),
            &out.license_plate,
            out.session_id.as_deref(),
            &out.gate_command,
            &out.reason,
            GateDisplay {
                plate: out.license_plate.clone(),
                verdict: out.verdict.clone(),
                reason: out.reason.clone(),
                message: out.explanation.clone(),
                space_id: None,
                level: None,
                zone: None,
                amount_due: (out.amount_due > 0).then_some(out.amount_due),
            },
        )
        .await;
        let mut out = out;
        for r in refunds_to_drive {
            match self.drive(r).await {
                Ok(row) => {
                    if let Some(slot) = out
                        .refunds
                        .iter_mut()
                        .find(|x| x.payment_id == row.payment_id)
                    {
                        *slot = row;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "early-departure refund left pending"),
            }
        }
        Ok(out)
    }

    /// Core exit decision over a snapshot (no writes). `open` is the plate's
    /// open session when the caller has just read it (saves reading it again).
    async fn exit_snapshot(
        &self,
        c: &mut st::Conn,
        plate: &Plate,
        open: Option<st::SessionRow>,
        now: DateTime<Utc>,
        policy: &SitePolicy,
    ) -> Result<
        (
            ExitDecision,
            ExitMatch,
            Option<st::SessionRow>,
            Option<st::ReservationRow>,
        ),
        ServiceError,
    > {
        let s = &self.inner.settings;
        let open = match open {
            Some(row) => Some(row),
            None => st::open_session_for(c, plate).await?,
        };
        let (m, rows) = match open {
            Some(row) => (
                ExitMatch::Exact {
                    session: core::SessionId::new(row.session_id.clone()),
                },
                vec![row],
            ),
            None => {
                let rows = st::open_sessions(c).await?;
                let opens: Vec<OpenSession> = rows.iter().filter_map(|r| r.to_open()).collect();
                (match_exit(plate, &opens, &policy.exit_matching), rows)
            }
        };
        let row = m
            .session()
            .and_then(|id| rows.iter().find(|r| r.session_id == id.as_str()))
            .cloned();
        let session = row.as_ref().and_then(|r| r.to_open());
        let payments: Vec<core::Payment> = match &row {
            Some(r) => st::payments_for_session(c, &r.session_id).await?,
            None => st::unattached_payments(c, plate, now - Duration::hours(24)).await?,
        }
        .iter()
        .map(PaymentRow::to_core)
        .collect();
        let mut plates = vec![plate];
        if let Some(sess) = &session {
            plates.push(&sess.plate);
        }
        let permits = st::permits_for(c, &plates).await?;
        let tariff = match &session {
            Some(sess) => s.tariffs.select(sess.space_type, sess.vehicle_type),
            None => &s.tariffs.default,
        };
        let res_row = match row.as_ref().and_then(|r| r.reservation_id.clone()) {
            Some(id) => st::reservation(c, &id).await?,
            None => None,
        };
        let reservation = match &res_row {
            Some(r) => {
                let paid: Vec<core::Payment> = st::payments_for_reservation(c, &r.reservation_id)
                    .await?
                    .iter()
                    .map(PaymentRow::to_core)
                    .collect();
                r.to_core()
                    .filter(|core_r| core_r.is_paid(&paid).unwrap_or(false))
            }
            None => None,
        };
        let decision = decide_exit(&ExitContext {
            policy,
            read_plate: plate,
            exit_match: &m,
            session: session.as_ref(),
            payments: &payments,
            permits: &permits,
            tariff,
            reservation: reservation.as_ref(),
            now,
        })?;
        Ok((decision, m, row, res_row))
    }

    fn exit_policy(&self) -> std::borrow::Cow<'_, SitePolicy> {
        let policy = &self.inner.settings.policy;
        let effective = policy.unpaid_exit_when(self.inner.gateway.is_available());
        if effective == policy.unpaid_exit {
            std::borrow::Cow::Borrowed(policy)
        } else {
            let mut p = policy.clone();
            p.unpaid_exit = effective;
            std::borrow::Cow::Owned(p)
        }
    }

    async fn exit_db(
        &self,
        req: &ExitRequest,
        gate: Option<String>,
    ) -> Result<(ExitOutcome, Vec<PaymentRow>), ServiceError> {
        let s = &self.inner.settings;
        let now = req.at;
        let plate = &req.plate;
        let policy = self.exit_policy();
        for _attempt in 0..MAX_ATTEMPTS {
            let mut tx = self.db().write().await?;
            let mut audit = st::AuditBatch::default();
            let (decision, m, row, res_row) = self
                .exit_snapshot(&mut tx, plate, None, now, &policy)
                .await?;
            let session_id = row.as_ref().map(|r| r.session_id.clone());
            let mut debt_id = None;
            let mut refunds = Vec::new();
            if let Some(sid) = &decision.close_session {
                let fee_minor = decision.fee.as_ref().map(|f| f.total.amount_minor);
                let closed = st::close_session(
                    &mut tx,
                    sid.as_str(),
                    "closed",
                    now,
                    gate.as_deref(),
                    req.source.read_id(),
                    fee_minor,
                    &st::enum_str(&decision.reason),
                )
                .await?;
                if !closed {
                    drop(tx);
                    continue; // closed meanwhile by another read: decide again
                }
                let released = st::release_space_of(&mut tx, sid.as_str(), now).await?;
                audit.push(
                    now,
                    &req.source.actor(),
                    "session_closed",
                    Some(sid.as_str()),
                    Some(&st::enum_str(&decision.reason)),
                    Some(&serde_json::json!({ "space": released, "fee": fee_minor })),
                );
                if let Some(r) = res_row.as_ref().filter(|r| r.status == "checked_in") {
                    st::set_reservation_status(
                        &mut tx,
                        &r.reservation_id,
                        ReservationStatus::CheckedIn,
                        ReservationStatus::Completed,
                        None,
                        now,
                    )
                    .await?;
                    if let Some(core_r) = r.to_core() {
                        let refund = core_r.early_departure_refund(&s.policy.reservations, now)?;
                        if refund.is_positive() {
                            let charges =
                                st::payments_for_reservation(&mut tx, &r.reservation_id).await?;
                            refunds = self
                                .plan_refunds(
                                    &mut tx,
                                    &charges,
                                    refund.amount_minor,
                                    "early departure",
                                    &req.source.actor(),
                                    now,
                                    &format!("early-departure:{}", r.reservation_id),
                                )
                                .await?;
                        }
                    }
                }
                if let Some(debt) = &decision.debt {
                    let id = st::insert_debt(
                        &mut tx,
                        &debt.plate,
                        Some(sid.as_str()),
                        None,
                        "unpaid_exit",
                        debt.amount,
                        now,
                    )
                    .await?;
                    audit.push(
                        now,
                        &req.source.actor(),
                        "debt_recorded",
                        Some(sid.as_str()),
                        Some("pay_later"),
                        Some(&serde_json::json!({ "debt_id": id, "amount": debt.amount })),
                    );
                    debt_id = Some(id);
                }
            }
            let decision_id = st::new_id();
            let (verdict, amount) = match decision.verdict {
                ExitVerdict::OpenGate => ("open", None),
                ExitVerdict::PaymentRequired { amount } => {
                    ("payment_required", Some(amount.amount_minor))
                }
                ExitVerdict::HoldForStaff => ("hold", None),
            };
            let command = if decision.opens_gate() {
                "open"
            } else {
                "deny"
            };
            st::insert_gate_decision(
                &mut tx,
                &st::GateDecisionRow {
                    decision_id: decision_id.clone(),
                    gate: gate.clone(),
                    direction: "exit".into(),
                    license_plate: plate.to_string(),
                    session_id: session_id.clone(),
                    command: command.into(),
                    verdict: verdict.into(),
                    reason: st::enum_str(&decision.reason),
                    explanation: decision.explanation.clone(),
                    amount,
                    read_id: req.source.read_id().map(String::from),
                    source: req.source.kind().into(),
                    decided_at: now,
                    ack_state: None,
                    acked_at: None,
                    attempts: 0,
                },
            )
            .await?;
            let flag_ids = self
                .raise_flags(
                    &mut tx,
                    &mut audit,
                    &decision.flags,
                    plate,
                    session_id.as_deref(),
                    gate.as_deref(),
                    req.evidence.as_ref(),
                    now,
                )
                .await?;
            let action = if decision.opens_gate() {
                "exit_opened"
            } else {
                "exit_held"
            };
            let detail = serde_json::json!({ "decision_id": decision_id, "verdict": verdict, "owed": decision.owed, "match": m, "gate": gate });
            audit.push(
                now,
                &req.source.actor(),
                action,
                Some(plate.as_str()),
                Some(&st::enum_str(&decision.reason)),
                Some(&detail),
            );
            audit.write(&mut tx).await?;
            tx.commit().await?;
            let match_kind = match &m {
                ExitMatch::Exact { .. } => "exact",
                ExitMatch::Fuzzy { .. } => "fuzzy",
                ExitMatch::Ambiguous { .. } => "ambiguous",
                ExitMatch::None => "none",
            };
            let amount_due = match decision.verdict {
                ExitVerdict::PaymentRequired { amount } => amount.amount_minor,
                _ => decision.owed.amount_minor,
            };
            return Ok((
                ExitOutcome {
                    decision_id,
                    license_plate: plate.to_string(),
                    verdict: verdict.into(),
                    reason: st::enum_str(&decision.reason),
                    explanation: decision.explanation.clone(),
                    gate,
                    gate_command: command.into(),
                    match_kind: match_kind.into(),
                    session_id,
                    matched_plate: row.map(|r| r.license_plate),
                    amount_due,
                    currency: s.currency.to_string(),
                    fee: decision.fee.clone(),
                    debt_id,
                    refunds: refunds.clone(),
                    flags: flag_refs(&flag_ids, &decision.flags),
                    offline: false,
                    timestamp: now,
                },
                refunds,
            ));
        }
        Err(ServiceError::Busy)
    }

    // ------------------------------------------------------------ payments

    /// What is owed on a payment target right now.
    async fn amount_due(
        &self,
        c: &mut st::Conn,
        target: &PaymentTarget,
        now: DateTime<Utc>,
    ) -> Result<(i64, Option<String>), ServiceError> {
        let s = &self.inner.settings;
        match target {
            PaymentTarget::Session(id) => {
                let row = st::session(c, id)
                    .await?
                    .ok_or_else(|| not_found("session", id))?;
                let plate = Plate::parse(&row.license_plate)?;
                if row.status == "open" {
                    let mut policy = s.policy.clone();
                    policy.unpaid_exit = core::UnpaidExitPolicy::RequirePayment;
                    // One open session per plate: this row is the plate's open session.
                    let (d, _, _, _) = self
                        .exit_snapshot(c, &plate, Some(row.clone()), now, &policy)
                        .await?;
                    if d.close_session.as_ref().map(|x| x.as_str()) == Some(id.as_str())
                        || matches!(d.verdict, ExitVerdict::PaymentRequired { .. })
                    {
                        return Ok((d.owed.amount_minor, Some(row.license_plate)));
                    }
                    // The open session is not the plate's match (should not happen): price it directly.
                    let pays: Vec<core::Payment> = st::payments_for_session(c, id)
                        .await?
                        .iter()
                        .map(PaymentRow::to_core)
                        .collect();
                    let tariff = s.tariffs.select(
                        row.space_type.as_deref().map(st::space_type_from),
                        st::vehicle_type_from(&row.vehicle_type),
                    );
                    let fee = core::fee(tariff, row.entry_time, now.max(row.entry_time))?;
                    return Ok((
                        core::amount_owed(fee.total, &pays)?.amount_minor,
                        Some(row.license_plate),
                    ));
                }
                let pays: Vec<core::Payment> = st::payments_for_session(c, id)
                    .await?
                    .iter()
                    .map(PaymentRow::to_core)
                    .collect();
                let fee = Money::new(row.fee.unwrap_or(0), s.currency);
                Ok((
                    core::amount_owed(fee, &pays)?.amount_minor,
                    Some(row.license_plate),
                ))
            }
            PaymentTarget::Reservation(id) => {
                let r = st::reservation(c, id)
                    .await?
                    .ok_or_else(|| not_found("reservation", id))?;
                let pays: Vec<core::Payment> = st::payments_for_reservation(c, id)
                    .await?
                    .iter()
                    .map(PaymentRow::to_core)
                    .collect();
                let price = if r.status == "cancelled" { 0 } else { r.price };
                let debt = st::debt_for_reservation(c, id)
                    .await?
                    .map(|d| d.amount)
                    .unwrap_or(0);
                let owed = core::amount_owed(Money::new(price + debt, s.currency), &pays)?;
                Ok((owed.amount_minor, Some(r.license_plate)))
            }
            PaymentTarget::LostTicket(plate) => {
                let pays: Vec<core::Payment> =
                    st::unattached_payments(c, plate, now - Duration::hours(24))
                        .await?
                        .iter()
                        .map(PaymentRow::to_core)
                        .collect();
                let owed = core::amount_owed(s.tariffs.default.lost_ticket(), &pays)?;
                Ok((owed.amount_minor, Some(plate.to_string())))
            }
        }
    }

    /// Takes a payment exactly once per idempotency key.
    pub async fn pay(&self, req: PaymentRequest) -> Result<PaymentOutcome, ServiceError> {
        let s = &self.inner.settings;
        if req.idempotency_key.trim().is_empty() || req.idempotency_key.len() > 200 {
            return Err(invalid(
                "invalid_idempotency_key",
                "idempotency_key",
                "an idempotency key of 1-200 characters is required",
            ));
        }
        if !s.methods.contains(&req.method) {
            return Err(invalid(
                "method_not_accepted",
                "payment_method",
                format!(
                    "payment method {} is not accepted here",
                    st::method_str(req.method)
                ),
            ));
        }
        let now = req.at;
        let (session_id, reservation_id, purpose) = match &req.target {
            PaymentTarget::Session(id) => (Some(id.clone()), None, "parking"),
            PaymentTarget::Reservation(id) => (None, Some(id.clone()), "reservation"),
            PaymentTarget::LostTicket(_) => (None, None, "lost_ticket"),
        };
        let mut replayed = false;
        let mut row = None;
        for _ in 0..MAX_ATTEMPTS {
            let mut tx = self.db().write().await?;
            if let Some(existing) = st::payment_by_key(&mut tx, &req.idempotency_key).await? {
                let same = existing.kind == "charge"
                    && existing.session_id == session_id
                    && existing.reservation_id == reservation_id
                    && existing.amount == req.amount
                    && existing.payment_method == st::method_str(req.method);
                if !same {
                    return Err(ServiceError::Conflict {
                        code: "idempotency_key_reused",
                        message: format!(
                            "idempotency key `{}` was used for a different payment ({})",
                            req.idempotency_key, existing.payment_id
                        ),
                    });
                }
                replayed = true;
                // A payment that failed only because the gateway was down is tried again.
                if existing.status == "failed"
                    && existing.failure.as_deref() == Some("gateway_unavailable")
                {
                    st::reopen_payment(&mut tx, &existing.payment_id).await?;
                    tx.commit().await?;
                    let mut e = existing;
                    e.status = "pending".into();
                    e.failure = None;
                    row = Some(e);
                } else {
                    drop(tx);
                    row = Some(existing);
                }
                break;
            }
            let (due, plate) = self.amount_due(&mut tx, &req.target, now).await?;
            check_payment_amount(
                Money::new(req.amount, s.currency),
                Money::new(due, s.currency),
            )
            .map_err(|r| match r {
                PaymentRejection::NonPositive => invalid(
                    "invalid_amount",
                    "amount",
                    "amount must be positive (minor units)",
                ),
                PaymentRejection::NothingDue => ServiceError::Conflict {
                    code: "nothing_due",
                    message: "nothing is owed".into(),
                },
                PaymentRejection::ExceedsDue { due } => invalid(
                    "amount_exceeds_due",
                    "amount",
                    format!(
                        "amount exceeds what is owed ({} minor units)",
                        due.amount_minor
                    ),
                ),
                PaymentRejection::WrongCurrency => {
                    invalid("wrong_currency", "amount", "wrong currency")
                }
            })?;
            let new = PaymentRow {
                payment_id: st::new_id(),
                idempotency_key: req.idempotency_key.clone(),
                kind: "charge".into(),
                session_id: session_id.clone(),
                reservation_id: reservation_id.clone(),
                license_plate: plate,
                purpose: purpose.into(),
                parent_id: None,
                payment_method: st::method_str(req.method).into(),
                status: "pending".into(),
                amount: req.amount,
                currency: s.currency.to_string(),
                reason: None,
                failure: None,
                gateway_ref: None,
                actor: req.actor.clone(),
                created_at: now,
                completed_at: None,
            };
            match st::insert_payment(&mut tx, &new).await {
                Ok(()) => {}
                Err(e) if st::is_unique_violation(&e) => {
                    drop(tx);
                    continue; // a concurrent request with the same key: replay it
                }
                Err(e) => return Err(e.into()),
            }
            tx.commit().await?;
            row = Some(new);
            break;
        }
        let row = row.ok_or(ServiceError::Busy)?;
        let row = if row.status == "pending" {
            self.drive(row).await?
        } else {
            row
        };
        let mut c = self.db().read().await?;
        let receipt = st::receipt_for_payment(&mut c, &row.payment_id).await?;
        let remaining_due = self
            .amount_due(&mut c, &req.target, Utc::now().max(now))
            .await
            .map(|d| d.0)
            .unwrap_or(0);
        drop(c);
        match (row.status.as_str(), row.failure.as_deref()) {
            ("failed", Some("gateway_unavailable")) => Err(ServiceError::GatewayUnavailable(format!(
                "the payment gateway is unavailable; nothing was charged (payment {}). Retry later with the same idempotency key; at the exit the amount is recorded as a debt (pay later)",
                row.payment_id
            ))),
            ("failed", f) => Err(ServiceError::Declined(f.unwrap_or("declined").to_string())),
            _ => Ok(PaymentOutcome { payment: row, receipt, replayed, remaining_due }),
        }
    }

    /// Asks the gateway about a pending charge or refund and records the answer.
    async fn drive(&self, row: PaymentRow) -> Result<PaymentRow, ServiceError> {
        let method = st::method_from(&row.payment_method).unwrap_or(PaymentMethod::Card);
        let amount = Money::new(row.amount, Currency::new(&row.currency)?);
        let result = if method == PaymentMethod::Cash {
            Ok(format!(
                "cash_{}",
                &row.payment_id[..12.min(row.payment_id.len())]
            ))
        } else {
            let greq = GatewayRequest {
                idempotency_key: &row.idempotency_key,
                method,
                amount,
            };
            if row.kind == "refund" {
                self.inner.gateway.refund(greq).await
            } else {
                self.inner.gateway.charge(greq).await
            }
        };
        let now = Utc::now();
        let (status, reference, failure) = match &result {
            Ok(r) => ("succeeded", Some(r.as_str()), None),
            Err(GatewayError::Unavailable(_)) => ("failed", None, Some("gateway_unavailable")),
            Err(GatewayError::Declined(_)) => ("failed", None, Some("declined")),
        };
        let mut tx = self.db().write().await?;
        if let Some(done) =
            st::complete_payment(&mut tx, &row.payment_id, status, reference, failure, now).await?
        {
            if status == "succeeded" {
                let action = if done.kind == "refund" {
                    "refund_issued"
                } else {
                    "payment_recorded"
                };
                st::audit(&mut tx, now, &done.actor, action, Some(&done.payment_id), done.reason.as_deref().or(Some(&done.purpose)), Some(&serde_json::json!({ "amount": done.amount, "currency": done.currency, "method": done.payment_method, "session_id": done.session_id, "reservation_id": done.reservation_id, "gateway_ref": done.gateway_ref }))).await?;
                let body = self.receipt_body(&mut tx, &done).await?;
                st::insert_receipt(&mut tx, &done.payment_id, &body, now).await?;
                self.settle_debts(&mut tx, &done, now).await?;
            } else {
                st::audit(
                    &mut tx,
                    now,
                    &done.actor,
                    "payment_failed",
                    Some(&done.payment_id),
                    failure,
                    None,
                )
                .await?;
            }
            tx.commit().await?;
            Ok(done)
        } else {
            drop(tx);
            let mut c = self.db().read().await?;
            Ok(st::payment(&mut c, &row.payment_id)
                .await?
                .ok_or_else(|| not_found("payment", &row.payment_id))?)
        }
    }

    async fn settle_debts(
        &self,
        c: &mut st::Conn,
        p: &PaymentRow,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let s = &self.inner.settings;
        if let Some(sid) = &p.session_id {
            if let Some(debt) = st::debt_for_session(c, sid)
                .await?
                .filter(|d| d.settled_at.is_none())
            {
                let session = st::session(c, sid).await?;
                let pays: Vec<core::Payment> = st::payments_for_session(c, sid)
                    .await?
                    .iter()
                    .map(PaymentRow::to_core)
                    .collect();
                let fee = Money::new(session.and_then(|x| x.fee).unwrap_or(0), s.currency);
                if core::amount_owed(fee, &pays)?.is_zero() {
                    st::settle_debt(c, &debt.debt_id, now).await?;
                    st::audit(
                        c,
                        now,
                        &p.actor,
                        "debt_settled",
                        Some(&debt.debt_id),
                        None,
                        None,
                    )
                    .await?;
                }
            }
        }
        if let Some(rid) = &p.reservation_id {
            if let Some(debt) = st::debt_for_reservation(c, rid)
                .await?
                .filter(|d| d.settled_at.is_none())
            {
                let (due, _) = self
                    .amount_due(c, &PaymentTarget::Reservation(rid.clone()), now)
                    .await?;
                if due == 0 {
                    st::settle_debt(c, &debt.debt_id, now).await?;
                    st::audit(
                        c,
                        now,
                        &p.actor,
                        "debt_settled",
                        Some(&debt.debt_id),
                        None,
                        None,
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn receipt_body(
        &self,
        c: &mut st::Conn,
        p: &PaymentRow,
    ) -> Result<serde_json::Value, ServiceError> {
        let session = match &p.session_id {
            Some(id) => st::session(c, id).await?,
            None => None,
        };
        let reservation = match &p.reservation_id {
            Some(id) => st::reservation(c, id).await?,
            None => None,
        };
        Ok(serde_json::json!({
            "site": self.inner.settings.site,
            "payment_id": p.payment_id,
            "kind": p.kind,
            "purpose": p.purpose,
            "license_plate": p.license_plate,
            "payment_method": p.payment_method,
            "amount": p.amount,
            "currency": p.currency,
            "reason": p.reason,
            "gateway_ref": p.gateway_ref,
            "paid_at": p.completed_at,
            "session": session.map(|s| serde_json::json!({ "session_id": s.session_id, "entry_time": s.entry_time, "exit_time": s.exit_time, "space_id": s.space_id })),
            "reservation": reservation.map(|r| serde_json::json!({ "reservation_id": r.reservation_id, "space_id": r.space_id, "start_time": r.start_time, "end_time": r.end_time })),
        }))
    }

    /// Writes pending refund rows totalling `amount` against the succeeded
    /// charges in `charges`; the caller drives them after commit.
    #[allow(clippy::too_many_arguments)]
    async fn plan_refunds(
        &self,
        c: &mut st::Conn,
        charges: &[PaymentRow],
        amount: i64,
        reason: &str,
        actor: &str,
        now: DateTime<Utc>,
        key_base: &str,
    ) -> Result<Vec<PaymentRow>, ServiceError> {
        let mut left = amount;
        let mut out = Vec::new();
        for ch in charges
            .iter()
            .filter(|p| p.kind == "charge" && p.status == "succeeded")
        {
            if left <= 0 {
                break;
            }
            let already: i64 = charges
                .iter()
                .filter(|r| {
                    r.kind == "refund"
                        && r.parent_id.as_deref() == Some(&ch.payment_id)
                        && r.status != "failed"
                })
                .map(|r| r.amount)
                .sum();
            let take = (ch.amount - already).min(left);
            if take <= 0 {
                continue;
            }
            let row = PaymentRow {
                payment_id: st::new_id(),
                idempotency_key: format!("{key_base}:{}", ch.payment_id),
                kind: "refund".into(),
                session_id: ch.session_id.clone(),
                reservation_id: ch.reservation_id.clone(),
                license_plate: ch.license_plate.clone(),
                purpose: "refund".into(),
                parent_id: Some(ch.payment_id.clone()),
                payment_method: ch.payment_method.clone(),
                status: "pending".into(),
                amount: take,
                currency: ch.currency.clone(),
                reason: Some(reason.to_string()),
                failure: None,
                gateway_ref: None,
                actor: actor.to_string(),
                created_at: now,
                completed_at: None,
            };
            st::insert_payment(c, &row).await?;
            left -= take;
            out.push(row);
        }
        Ok(out)
    }

    /// Refunds (part of) a succeeded charge, with a reason.
    pub async fn refund(
        &self,
        payment_id: &str,
        amount: Option<i64>,
        reason: &str,
        idempotency_key: Option<String>,
        actor: &str,
    ) -> Result<PaymentRow, ServiceError> {
        if reason.trim().is_empty() {
            return Err(invalid(
                "reason_required",
                "reason",
                "a refund needs a reason",
            ));
        }
        let now = Utc::now();
        let key =
            idempotency_key.unwrap_or_else(|| format!("refund:{payment_id}:{}", st::new_id()));
        let mut tx = self.db().write().await?;
        if let Some(existing) = st::payment_by_key(&mut tx, &key).await? {
            drop(tx);
            if existing.kind != "refund" || existing.parent_id.as_deref() != Some(payment_id) {
                return Err(ServiceError::Conflict {
                    code: "idempotency_key_reused",
                    message: format!("idempotency key `{key}` was used for something else"),
                });
            }
            return if existing.status == "pending" {
                self.drive(existing).await
            } else {
                Ok(existing)
            };
        }
        let charge = st::payment(&mut tx, payment_id)
            .await?
            .ok_or_else(|| not_found("payment", payment_id))?;
        if charge.kind != "charge" || charge.status != "succeeded" {
            return Err(ServiceError::Conflict {
                code: "not_refundable",
                message: format!("payment {payment_id} is not a succeeded charge"),
            });
        }
        let siblings = match (&charge.session_id, &charge.reservation_id) {
            (Some(s), _) => st::payments_for_session(&mut tx, s).await?,
            (None, Some(r)) => st::payments_for_reservation(&mut tx, r).await?,
            _ => vec![charge.clone()],
        };
        let refunded: i64 = siblings
            .iter()
            .filter(|r| {
                r.kind == "refund"
                    && r.parent_id.as_deref() == Some(payment_id)
                    && r.status != "failed"
            })
            .map(|r| r.amount)
            .sum();
        let refundable = charge.amount - refunded;
        let amount = amount.unwrap_or(refundable);
        if amount <= 0 || amount > refundable {
            return Err(invalid(
                "invalid_amount",
                "amount",
                format!("refund must be between 1 and {refundable} minor units"),
            ));
        }
        let only = [charge.clone()];
        let mut rows = self
            .plan_refunds(&mut tx, &only, amount, reason, actor, now, "x")
            .await?;
        let mut row = rows.pop().ok_or(ServiceError::Busy)?;
        // Use the caller's key (plan_refunds derives one for automatic refunds).
        st::set_payment_key(&mut tx, &row.payment_id, &key).await?;
        row.idempotency_key = key;
        tx.commit().await?;
        self.drive(row).await
    }

    /// Re-drives payments left pending by a crash (same keys: never charged twice).
    pub async fn reconcile_pending(&self) -> Result<usize, ServiceError> {
        let pending = {
            let mut c = self.db().read().await?;
            st::pending_payments(&mut c).await?
        };
        let n = pending.len();
        for p in pending {
            if let Err(e) = self.drive(p).await {
                tracing::warn!(error = %e, "pending payment not settled yet");
            }
        }
        Ok(n)
    }

    // ------------------------------------------------------------ reservations

    /// Books a bay (or a bay of a type) for `[start, end)`. The database
    /// refuses overlapping bookings of one bay, so concurrent requests for
    /// the same bay cannot both succeed.
    pub async fn reserve(
        &self,
        req: ReservationRequest,
    ) -> Result<ReservationOutcome, ServiceError> {
        let s = &self.inner.settings;
        let window = TimeRange::new(req.start, req.end)
            .map_err(|e| invalid("invalid_time_range", "end_time", e.to_string()))?;
        if req.end <= req.now {
            return Err(invalid(
                "in_the_past",
                "end_time",
                "the reservation ends in the past",
            ));
        }
        for _ in 0..MAX_ATTEMPTS {
            let mut tx = self.db().write().await?;
            let rows = st::all_spaces(&mut tx).await?;
            let spaces: Vec<Space> = rows.iter().map(|r| r.to_core(false)).collect();
            let existing: Vec<core::Reservation> =
                st::active_reservations_overlapping(&mut tx, req.start, req.end)
                    .await?
                    .iter()
                    .filter_map(|r| r.to_core())
                    .collect();
            // Candidate bays in order, each checked by the core.
            let (requested, candidates): (&str, Vec<&Space>) =
                match (&req.space_id, req.space_type, req.vehicle_type) {
                    (Some(id), _, _) => {
                        let target = ReservationTarget::Space(core::SpaceId::new(id.clone()));
                        check_booking(&target, &window, &spaces, &existing)
                            .map_err(|r| booking_error(&r, id))?;
                        (
                            "space",
                            spaces.iter().filter(|sp| sp.id.as_str() == id).collect(),
                        )
                    }
                    (None, t, v) => {
                        let types = match (t, v) {
                            (Some(t), _) => vec![t],
                            (None, Some(v)) => s.policy.compatibility.eligible_types(v, &[]),
                            (None, None) => {
                                return Err(invalid(
                                    "target_required",
                                    "space_id",
                                    "give `space_id`, `space_type` or `vehicle_type`",
                                ))
                            }
                        };
                        let mut out = Vec::new();
                        for t in types {
                            if check_booking(
                                &ReservationTarget::SpaceType(t),
                                &window,
                                &spaces,
                                &existing,
                            )
                            .is_err()
                            {
                                continue;
                            }
                            let mut of_type: Vec<&Space> = spaces
                                .iter()
                                .filter(|sp| {
                                    sp.space_type == t
                                        && check_booking(
                                            &ReservationTarget::Space(sp.id.clone()),
                                            &window,
                                            &spaces,
                                            &existing,
                                        )
                                        .is_ok()
                                })
                                .collect();
                            of_type.sort_by_key(|sp| (sp.rank, sp.id.clone()));
                            out.extend(of_type);
                        }
                        if out.is_empty() {
                            return Err(ServiceError::Conflict {
                                code: "no_capacity",
                                message: "no bay of that type is free for the whole window".into(),
                            });
                        }
                        ("type", out)
                    }
                };
            let Some(space) = candidates.first() else {
                return Err(not_found("space", req.space_id.as_deref().unwrap_or("")));
            };
            let tariff = s.tariffs.select(
                Some(space.space_type),
                req.vehicle_type.unwrap_or(VehicleType::Car),
            );
            let quote = reservation_quote(tariff, &window)?;
            let id = st::new_id();
            let new = st::NewReservation {
                id: &id,
                plate: &req.plate,
                space_id: space.id.as_str(),
                space_type: space.space_type,
                requested,
                window,
                price: quote.total,
                now: req.now,
            };
            match st::insert_reservation(&mut tx, &new).await {
                Ok(()) => {}
                Err(e) if st::is_overlap_violation(&e) => {
                    drop(tx);
                    if requested == "space" {
                        return Err(ServiceError::Conflict {
                            code: "space_taken",
                            message: format!(
                                "space {} is already reserved for an overlapping time",
                                space.id
                            ),
                        });
                    }
                    continue; // another booking took this bay: look again
                }
                Err(e) => return Err(e.into()),
            }
            st::audit(&mut tx, req.now, &req.actor, "reservation_created", Some(&id), None, Some(&serde_json::json!({ "plate": req.plate, "space_id": space.id, "start": req.start, "end": req.end, "price": quote.total }))).await?;
            let row = st::reservation(&mut tx, &id)
                .await?
                .ok_or_else(|| not_found("reservation", &id))?;
            tx.commit().await?;
            return Ok(ReservationOutcome {
                amount_due: row.price,
                reservation: row,
                price_lines: quote.lines,
            });
        }
        Err(ServiceError::Busy)
    }

    pub async fn reservation(
        &self,
        id: &str,
    ) -> Result<(st::ReservationRow, Vec<PaymentRow>), ServiceError> {
        let mut c = self.db().read().await?;
        let r = st::reservation(&mut c, id)
            .await?
            .ok_or_else(|| not_found("reservation", id))?;
        let pays = st::payments_for_reservation(&mut c, id).await?;
        Ok((r, pays))
    }

    /// Cancels a booked reservation; the core says what is refunded.
    pub async fn cancel_reservation(
        &self,
        id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<CancelOutcome, ServiceError> {
        let s = &self.inner.settings;
        let mut tx = self.db().write().await?;
        let row = st::reservation(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("reservation", id))?;
        let r = row.to_core().ok_or_else(|| not_found("reservation", id))?;
        let refund = r
            .cancellation_refund(&s.policy.reservations, now)
            .map_err(|e| ServiceError::Conflict {
                code: "not_cancellable",
                message: e.to_string(),
            })?;
        if !st::set_reservation_status(
            &mut tx,
            id,
            ReservationStatus::Booked,
            ReservationStatus::Cancelled,
            None,
            now,
        )
        .await?
        {
            return Err(ServiceError::Conflict {
                code: "not_cancellable",
                message: format!("reservation {id} is no longer booked"),
            });
        }
        let pays = st::payments_for_reservation(&mut tx, id).await?;
        let paid = net_paid(
            &pays.iter().map(PaymentRow::to_core).collect::<Vec<_>>(),
            s.currency,
        )?;
        let refund_now = refund.amount_minor.min(paid.amount_minor).max(0);
        let planned = if refund_now > 0 {
            self.plan_refunds(
                &mut tx,
                &pays,
                refund_now,
                "reservation cancelled",
                actor,
                now,
                &format!("cancel:{id}"),
            )
            .await?
        } else {
            Vec::new()
        };
        st::audit(
            &mut tx,
            now,
            actor,
            "reservation_cancelled",
            Some(id),
            None,
            Some(&serde_json::json!({ "refund_due": refund.amount_minor, "refunded": refund_now })),
        )
        .await?;
        let row = st::reservation(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("reservation", id))?;
        tx.commit().await?;
        let mut refunds = Vec::new();
        for p in planned {
            refunds.push(self.drive(p).await?);
        }
        Ok(CancelOutcome {
            reservation: row,
            refund_due: refund.amount_minor,
            refunds,
        })
    }

    /// Releases bookings not checked in within the grace and charges the
    /// no-show fee (recorded as a debt on the plate). Returns their ids.
    pub async fn sweep_no_shows(&self, now: DateTime<Utc>) -> Result<Vec<String>, ServiceError> {
        let s = &self.inner.settings;
        let grace = Duration::minutes(s.policy.reservations.no_show_grace_minutes.into())
            .num_milliseconds();
        let mut tx = self.db().write().await?;
        let mut done = Vec::new();
        for row in st::overdue_bookings(&mut tx, now, grace).await? {
            let Some(r) = row.to_core() else { continue };
            let tariff = s
                .tariffs
                .select(Some(st::space_type_from(&row.space_type)), VehicleType::Car);
            let Some(ns) = r.no_show(&s.policy.reservations, tariff, now) else {
                continue;
            };
            if !st::set_reservation_status(
                &mut tx,
                &row.reservation_id,
                ReservationStatus::Booked,
                ReservationStatus::NoShow,
                None,
                now,
            )
            .await?
            {
                continue;
            }
            if ns.fee.is_positive() {
                st::insert_debt(
                    &mut tx,
                    &r.plate,
                    None,
                    Some(&row.reservation_id),
                    "no_show",
                    ns.fee,
                    now,
                )
                .await?;
            }
            st::audit(
                &mut tx,
                now,
                "system",
                "reservation_no_show",
                Some(&row.reservation_id),
                Some("not checked in within the grace"),
                Some(&serde_json::json!({ "fee": ns.fee, "released_space": ns.release_space })),
            )
            .await?;
            done.push(row.reservation_id);
        }
        tx.commit().await?;
        Ok(done)
    }

    // ------------------------------------------------------------ flags

    pub async fn flags(
        &self,
        status: Option<&str>,
        kind: Option<&str>,
        plate: Option<&str>,
        limit: i64,
    ) -> Result<Vec<st::FlagRow>, ServiceError> {
        let mut c = self.db().read().await?;
        Ok(st::flags(&mut c, status, kind, plate, limit).await?)
    }

    /// Moves a flag along its workflow (the core says which moves are allowed).
    pub async fn update_flag(
        &self,
        id: &str,
        to: FlagStatus,
        note: Option<&str>,
        by: &str,
    ) -> Result<st::FlagRow, ServiceError> {
        let now = Utc::now();
        let mut tx = self.db().write().await?;
        let flag = st::flag(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("flag", id))?;
        let from: FlagStatus =
            serde_json::from_value(serde_json::Value::String(flag.status.clone()))
                .map_err(|_| ServiceError::Busy)?;
        from.transition(to).map_err(|e| ServiceError::Conflict {
            code: "invalid_transition",
            message: e.to_string(),
        })?;
        if !st::update_flag(&mut tx, id, &flag.status, &st::enum_str(&to), by, note, now).await? {
            return Err(ServiceError::Conflict {
                code: "concurrent_update",
                message: "the flag changed meanwhile; reload it".into(),
            });
        }
        let action = if to == FlagStatus::Resolved {
            "flag_resolved"
        } else {
            "flag_acknowledged"
        };
        st::audit(&mut tx, now, by, action, Some(id), note, None).await?;
        let out = st::flag(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("flag", id))?;
        tx.commit().await?;
        Ok(out)
    }

    // ------------------------------------------------------------ spaces

    async fn space_views(&self, c: &mut st::Conn) -> Result<Vec<ParkingSpaceView>, ServiceError> {
        let now = Utc::now();
        let held = st::held_spaces(c, now, self.inner.settings.lead_ms()).await?;
        let rows = st::all_spaces(c).await?;
        Ok(rows
            .into_iter()
            .map(|sp| {
                let hold = held.iter().find(|h| h.0 == sp.space_id);
                let display_status = if sp.status == "available" && hold.is_some() {
                    "reserved".to_string()
                } else {
                    sp.status.clone()
                };
                ParkingSpaceView {
                    reservation_id: hold.map(|h| h.1.clone()),
                    display_status,
                    space: sp,
                }
            })
            .collect())
    }

    pub async fn parkings(&self) -> Result<Vec<ParkingSpaceView>, ServiceError> {
        let mut c = self.db().read().await?;
        self.space_views(&mut c).await
    }

    pub async fn availability(
        &self,
        space_type: Option<SpaceType>,
    ) -> Result<Vec<TypeAvailability>, ServiceError> {
        let mut c = self.db().read().await?;
        let counts = st::space_counts(&mut c).await?;
        // Bays held for bookings count as reserved, not available.
        let held = st::held_spaces(&mut c, Utc::now(), self.inner.settings.lead_ms()).await?;
        let mut held_by_type: std::collections::HashMap<String, i64> =
            std::collections::HashMap::new();
        for (space_id, _, _) in &held {
            if let Some(sp) = st::space(&mut c, space_id)
                .await?
                .filter(|sp| sp.status == "available")
            {
                *held_by_type.entry(sp.space_type).or_default() += 1;
            }
        }
        let mut out: Vec<TypeAvailability> = Vec::new();
        for t in SpaceType::ALL {
            if space_type.is_some_and(|x| x != t) {
                continue;
            }
            let mut a = TypeAvailability {
                space_type: t.to_string(),
                ..Default::default()
            };
            for (ty, status, n) in counts.iter().filter(|(ty, _, _)| ty == t.as_str()) {
                a.total += n;
                match status.as_str() {
                    "available" => a.available += n,
                    "occupied" => a.occupied += n,
                    _ => a.out_of_service += n,
                }
                let _ = ty;
            }
            let reserved = held_by_type.get(t.as_str()).copied().unwrap_or(0);
            a.reserved = reserved;
            a.available -= reserved;
            if a.total > 0 || space_type.is_some() {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// A change of a bay's status: a sensor or camera report, a staff
    /// override of the occupancy state (or clearing it), or staff taking the
    /// bay out of service and back. Sensor reports are always recorded; while
    /// an override is set they do not count (see [`core::baywatch`]).
    pub async fn set_space_status(
        &self,
        id: &str,
        change: SpaceStatusChange,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<ParkingSpaceView, ServiceError> {
        let now = Utc::now();
        let mut tx = self.db().write().await?;
        let sp = st::space(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("space", id))?;
        // Staff saying `available` about a bay in service is a report that it is free.
        let change = match change {
            SpaceStatusChange::BackInService if sp.status != "out_of_service" => {
                SpaceStatusChange::Sensor(BayState::Free)
            }
            c => c,
        };
        let (action, detail) = match change {
            SpaceStatusChange::OutOfService | SpaceStatusChange::BackInService => {
                let to = if change == SpaceStatusChange::OutOfService {
                    "out_of_service"
                } else {
                    "available"
                };
                if !st::set_space_status(&mut tx, id, to, now).await? {
                    return Err(ServiceError::Conflict {
                        code: "space_occupied",
                        message: format!(
                            "space {id} is occupied by session {}",
                            sp.session_id.unwrap_or_default()
                        ),
                    });
                }
                (
                    "space_status_changed",
                    serde_json::json!({ "status": to, "from": sp.status }),
                )
            }
            SpaceStatusChange::Sensor(state) => {
                st::set_sensor_state(&mut tx, id, state.as_str(), now).await?;
                if self.inner.settings.bay_grace <= Duration::zero() {
                    self.review_bays_in(&mut tx, now).await?;
                }
                (
                    "space_sensor_reported",
                    serde_json::json!({ "sensor_state": state, "from": sp.sensor_state }),
                )
            }
            SpaceStatusChange::Override(state) => {
                st::set_override(&mut tx, id, state.map(BayState::as_str), actor, now).await?;
                let action = if state.is_some() {
                    "space_override_set"
                } else {
                    "space_override_cleared"
                };
                (
                    action,
                    serde_json::json!({ "override_state": state, "from": sp.override_state, "sensor_state": sp.sensor_state }),
                )
            }
        };
        st::audit(&mut tx, now, actor, action, Some(id), reason, Some(&detail)).await?;
        tx.commit().await?;
        let mut c = self.db().read().await?;
        self.space_views(&mut c)
            .await?
            .into_iter()
            .find(|v| v.space.space_id == id)
            .ok_or_else(|| not_found("space", id))
    }

    /// Staff overrides in force: (space id, state), e.g. to seed the boards at start.
    pub async fn overrides(&self) -> Result<Vec<(String, BayState)>, ServiceError> {
        let mut c = self.db().read().await?;
        Ok(st::overrides(&mut c)
            .await?
            .into_iter()
            .map(|(id, s)| (id, BayState::parse(&s)))
            .collect())
    }

    /// Reviews every bay against the open sessions ([`core::baywatch::review`])
    /// and raises `occupied_without_session` / `wrong_bay` flags, once per
    /// occupancy episode. Returns the flags raised.
    pub async fn review_bays(&self, now: DateTime<Utc>) -> Result<Vec<String>, ServiceError> {
        let mut tx = self.db().write().await?;
        let ids = self.review_bays_in(&mut tx, now).await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn review_bays_in(
        &self,
        tx: &mut st::Conn,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, ServiceError> {
        let spaces = st::all_spaces(tx).await?;
        let bays: Vec<BayReport> = spaces
            .iter()
            .map(|sp| BayReport {
                space_id: sp.space_id.clone(),
                sensed: BayState::parse(&sp.sensor_state),
                since: sp.sensor_since,
                manual: sp.override_state.as_deref().map(BayState::parse),
                session: sp.session_id.as_ref().map(SessionId::new),
                out_of_service: sp.status == "out_of_service",
                flagged_episode: sp.flagged_episode,
            })
            .collect();
        if !bays
            .iter()
            .any(|b| b.sensed == BayState::Occupied && b.session.is_none())
        {
            return Ok(Vec::new());
        }
        let sessions: Vec<AssignedBay> = st::open_sessions(tx)
            .await?
            .into_iter()
            .filter_map(|r| {
                Some(AssignedBay {
                    session: SessionId::new(r.session_id),
                    plate: Plate::parse(&r.license_plate).ok()?,
                    space_id: r.space_id?,
                    started_at: r.entry_time,
                })
            })
            .collect();
        let mut ids = Vec::new();
        for f in baywatch::review(now, self.inner.settings.bay_grace, &bays, &sessions) {
            let (kind, plate, session) = match &f {
                BayFinding::OccupiedWithoutSession { .. } => {
                    (core::FlagKind::OccupiedWithoutSession, None, None)
                }
                BayFinding::WrongBay { plate, session, .. } => (
                    core::FlagKind::WrongBay,
                    Some(plate.as_str()),
                    Some(session.as_str()),
                ),
            };
            let kind = st::enum_str(&kind);
            let fid =
                st::insert_flag(tx, &kind, plate, session, None, &f.explain(), None, now).await?;
            st::mark_bay_flagged(tx, f.space_id(), f.since()).await?;
            st::audit(
                tx,
                now,
                "system",
                "flag_raised",
                Some(&fid),
                Some(&kind),
                Some(&serde_json::json!({ "space_id": f.space_id() })),
            )
            .await?;
            ids.push(fid);
        }
        Ok(ids)
    }

    // ------------------------------------------------------------ reads

    pub async fn vehicle(&self, plate: &Plate) -> Result<VehicleView, ServiceError> {
        let mut c = self.db().read().await?;
        let history = st::sessions(&mut c, None, Some(plate.as_str()), 50).await?;
        let mut payments = Vec::new();
        for s in &history {
            payments.extend(st::payments_for_session(&mut c, &s.session_id).await?);
        }
        Ok(VehicleView {
            license_plate: plate.to_string(),
            vehicle: st::vehicle(&mut c, plate).await?,
            lists: st::list_membership(&mut c, plate).await?,
            permits: st::permits_for(&mut c, &[plate]).await?,
            open_session: st::open_session_for(&mut c, plate).await?,
            history,
            payments,
            reservations: st::reservations_for_plate(&mut c, plate.as_str(), 50).await?,
            outstanding_debts: st::open_debts_for(&mut c, plate.as_str()).await?,
        })
    }

    pub async fn sessions(
        &self,
        status: Option<&str>,
        plate: Option<&str>,
        limit: i64,
    ) -> Result<Vec<st::SessionRow>, ServiceError> {
        let mut c = self.db().read().await?;
        Ok(st::sessions(&mut c, status, plate, limit).await?)
    }

    pub async fn session(&self, id: &str) -> Result<SessionView, ServiceError> {
        let mut c = self.db().read().await?;
        let session = st::session(&mut c, id)
            .await?
            .ok_or_else(|| not_found("session", id))?;
        let amount_due_now = if session.status == "open" {
            self.amount_due(&mut c, &PaymentTarget::Session(id.to_string()), Utc::now())
                .await
                .ok()
                .map(|d| d.0)
        } else {
            None
        };
        Ok(SessionView {
            payments: st::payments_for_session(&mut c, id).await?,
            gate_decisions: st::gate_decisions_for_session(&mut c, id).await?,
            debt: st::debt_for_session(&mut c, id).await?,
            amount_due_now,
            session,
        })
    }

    pub async fn payment(&self, id: &str) -> Result<PaymentRow, ServiceError> {
        let mut c = self.db().read().await?;
        st::payment(&mut c, id)
            .await?
            .ok_or_else(|| not_found("payment", id))
    }

    pub async fn payments(
        &self,
        session_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PaymentRow>, ServiceError> {
        let mut c = self.db().read().await?;
        Ok(st::payments_list(&mut c, session_id, limit).await?)
    }

    pub async fn receipt(&self, id: &str) -> Result<st::ReceiptRow, ServiceError> {
        let mut c = self.db().read().await?;
        st::receipt_for_payment(&mut c, id)
            .await?
            .ok_or_else(|| not_found("receipt", id))
    }

    pub async fn audit_log(
        &self,
        subject: Option<&str>,
        limit: i64,
    ) -> Result<Vec<st::AuditRow>, ServiceError> {
        let mut c = self.db().read().await?;
        Ok(st::audit_log(&mut c, subject, limit).await?)
    }

    // ------------------------------------------------------------ background

    /// Starts the no-show sweeper, the offline cache refresher and the
    /// offline-decision flusher, and re-drives pending payments once.
    pub fn spawn_background(
        &self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            match this.reconcile_pending().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(payments = n, "re-drove payments left pending"),
                Err(e) => tracing::warn!(error = %e, "pending payments not reconciled"),
            }
            let mut sweep = tokio::time::interval(this.inner.settings.sweep_interval);
            let mut cache = tokio::time::interval(std::time::Duration::from_secs(30));
            let mut flush = tokio::time::interval(std::time::Duration::from_secs(5));
            let mut bays = tokio::time::interval(this.inner.settings.bay_review_interval);
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = sweep.tick() => {
                        match this.sweep_no_shows(Utc::now()).await {
                            Ok(ids) if !ids.is_empty() => tracing::info!(count = ids.len(), "reservations marked no-show"),
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "no-show sweep failed"),
                        }
                    }
                    _ = bays.tick() => {
                        match this.review_bays(Utc::now()).await {
                            Ok(ids) if !ids.is_empty() => tracing::info!(flags = ids.len(), "bays flagged for staff"),
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "bay review failed"),
                        }
                    }
                    _ = cache.tick() => { let _ = this.refresh_offline_cache().await; }
                    _ = flush.tick() => {
                        if let Err(e) = this.flush_offline().await {
                            tracing::debug!(error = %e, "offline decisions not flushed yet");
                        }
                    }
                }
            }
        })
    }
}

fn booking_error(r: &BookingRejection, id: &str) -> ServiceError {
    match r {
        BookingRejection::UnknownSpace => not_found("space", id),
        BookingRejection::SpaceOutOfService => ServiceError::Conflict {
            code: "space_out_of_service",
            message: format!("space {id} is out of service"),
        },
        BookingRejection::SpaceTaken { .. } => ServiceError::Conflict {
            code: "space_taken",
            message: format!("space {id} is already reserved for an overlapping time"),
        },
        BookingRejection::NoCapacity => ServiceError::Conflict {
            code: "no_capacity",
            message: format!(
                "booking space {id} would leave too few bays of its type for earlier type bookings"
            ),
        },
    }
}

#[allow(dead_code)]
fn _assert_send(s: &ParkingService, r: EntryRequest) {
    fn is_send<T: Send>(_: T) {}
    is_send(s.entry(r));
}
