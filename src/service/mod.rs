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

mod bays;
mod entry;
mod exit;
mod flags;
use flags::{DecisionRecord, FlagScene};
pub mod gates;
pub mod gateway;
mod lists;
pub mod offline;
mod payments;
use payments::RefundPlan;
pub mod ports;
mod reservations;
pub mod setup;
mod views;

pub use bays::{ParkingSpaceView, SpaceStatusChange, TypeAvailability};
pub use entry::{EntryOutcome, EntryRequest};
pub use exit::{ExitOutcome, ExitRequest};
pub use payments::{PaymentOutcome, PaymentRequest, PaymentTarget};
pub use reservations::{CancelOutcome, ReservationOutcome, ReservationRequest};
pub use views::{SessionView, VehicleView};

use crate::config::Config;
use crate::core::baywatch::{self, AssignedBay, BayFinding, BayReport};
use crate::core::BayState;
use crate::core::{
    self, check_booking, check_payment_amount, decide_entry, decide_exit, match_exit, net_paid,
    reservation_quote, AuditAction, BookingRejection, CoreError, Currency, EntryContext,
    EntryVerdict, ExitContext, ExitDecision, ExitMatch, ExitVerdict, FlagStatus, Money,
    OpenSession, PaymentMethod, PaymentRejection, Plate, RaisedFlag, ReservationStatus,
    ReservationTarget, SessionId, SitePolicy, Space, SpaceStatus, SpaceType, TariffTable,
    TimeRange, VehicleType,
};
use crate::events::{PlateRead, Role};
use crate::store::Store;
use crate::store::{self as st, Db, DbText, PaymentRow};
use chrono::{DateTime, Duration, Utc};
use gates::{GateCommand, GateCommander, GateDisplay};
use gateway::{BuiltinGateway, GatewayError, GatewayRequest};
use ports::{GatePort, PaymentGateway};
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
    Db(st::StoreError),
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<st::StoreError> for ServiceError {
    fn from(e: st::StoreError) -> Self {
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
pub struct FlagRef {
    pub flag_id: String,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct SpaceRef {
    pub space_id: String,
    pub level: String,
    pub zone: String,
    pub space_type: String,
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
            kind: f.kind.to_db().to_string(),
            detail: f.detail.clone(),
        })
        .collect()
}

/// What a decision tells its gate (the command is sent only when the gate
/// is known and the service has a gate port).
pub(super) struct GateOrder<'a> {
    /// `entry` or `exit`.
    pub direction: &'a str,
    pub decision_id: &'a str,
    pub gate: Option<&'a str>,
    pub plate: &'a str,
    pub session: Option<&'a str>,
    /// `open` or `deny`.
    pub command: &'a str,
    pub reason: &'a str,
}

/// What a camera read decided: an entry or an exit.
#[derive(Debug, Clone)]
pub enum ReadOutcome {
    Entry(EntryOutcome),
    Exit(ExitOutcome),
}

impl ParkingService {
    /// Builds the service and seeds the database from the configuration
    /// (spaces, permits, lists). `gates` enables gate commands.
    pub async fn new(
        store: Store,
        settings: Settings,
        gates: Option<Arc<dyn GatePort>>,
    ) -> anyhow::Result<ParkingService> {
        let db = Db::new(store);
        let gateway: Arc<dyn PaymentGateway> = Arc::new(BuiltinGateway::new(db.clone()));
        let gates = match gates {
            Some(port) => Some(
                GateCommander::start(port, db.clone(), settings.gates.iter().cloned().collect())
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
    pub async fn on_plate_read(&self, read: PlateRead) -> Result<ReadOutcome, ServiceError> {
        let plate = Plate::parse(&read.plate)
            .map_err(|e| invalid("invalid_plate", "plate", e.to_string()))?;
        let evidence = serde_json::json!({ "read_id": read.id, "camera": read.camera, "crop": read.evidence.crop, "frame": read.evidence.frame, "score": read.score });
        let source = Source::Camera {
            camera: read.camera.clone(),
            read_id: read.id.clone(),
        };
        let out = match read.role {
            Role::Entry => ReadOutcome::Entry(
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
            Role::Exit => ReadOutcome::Exit(
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
        Ok(out)
    }

    async fn command_gate(&self, order: GateOrder<'_>, display: GateDisplay) {
        let GateOrder {
            direction,
            decision_id,
            gate,
            plate,
            session,
            command,
            reason,
        } = order;
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

#[allow(dead_code)]
fn _assert_send(s: &ParkingService, r: EntryRequest) {
    fn is_send<T: Send>(_: T) {}
    is_send(s.entry(r));
}

#[cfg(test)]
pub(crate) mod tests;
