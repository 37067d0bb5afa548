//! The JSON API under `/api`. Handlers parse, authorise and serialise; the
//! services orchestrate; the core decides. Every endpoint is declared once in
//! [`ENDPOINTS`] with the roles that may call it, and that table drives both
//! the authorisation check and the OpenAPI document.

pub mod auth;
pub mod client;
pub mod error;
pub mod openapi;
mod receipt;

use crate::config::ApiRole;
use crate::core::{FlagStatus, PaymentMethod, Plate, SpaceType, VehicleType};
use crate::service::{
    EntryRequest, ExitRequest, ParkingService, PaymentRequest, PaymentTarget, ReservationRequest,
    Source,
};
use auth::{Auth, Caller};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use error::ApiError;
use serde::Deserialize;

/// One endpoint: method, path, who may call it, and its documentation.
#[derive(Debug)]
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub roles: &'static [ApiRole],
    pub summary: &'static str,
    pub tag: &'static str,
    /// Query parameters (name, description).
    pub query: &'static [(&'static str, &'static str)],
    /// Component schema of the JSON body, if any.
    pub request: Option<&'static str>,
    /// Component schema of the success body (`html` for a page).
    pub response: &'static str,
    /// Success status.
    pub status: u16,
}

use ApiRole::*;
const EVERYONE: &[ApiRole] = &[Kiosk, Sensor, Board, Operator, Security, Admin];
const GATE_ROLES: &[ApiRole] = &[Kiosk, Operator, Security, Admin];
const SELLERS: &[ApiRole] = &[Kiosk, Operator, Admin];
const READERS: &[ApiRole] = &[Kiosk, Operator, Security, Admin];
const STAFF: &[ApiRole] = &[Operator, Security, Admin];

macro_rules! ep {
    ($name:ident, $m:literal, $p:literal, $roles:expr, $tag:literal, $summary:literal, query = $q:expr, req = $req:expr, resp = $resp:literal, status = $st:literal) => {
        pub const $name: Endpoint = Endpoint {
            method: $m,
            path: $p,
            roles: $roles,
            summary: $summary,
            tag: $tag,
            query: $q,
            request: $req,
            response: $resp,
            status: $st,
        };
    };
}

ep!(
    AVAILABILITY,
    "get",
    "/api/availability",
    EVERYONE,
    "spaces",
    "Free, occupied, reserved and out-of-service bays per space type",
    query = &[(
        "type",
        "only this space type (compact, large, handicapped, motorcycle, ev)"
    )],
    req = None,
    resp = "AvailabilityList",
    status = 200
);
ep!(
    PARKINGS,
    "get",
    "/api/parkings",
    EVERYONE,
    "spaces",
    "All bays with their status",
    query = &[],
    req = None,
    resp = "SpaceList",
    status = 200
);
ep!(
    SPACE_STATUS,
    "put",
    "/api/spaces/{space_id}/status",
    &[Sensor, Operator, Admin],
    "spaces",
    "Report a bay's status: sensors send occupied/available; staff set out_of_service/available",
    query = &[],
    req = Some("SpaceStatusRequest"),
    resp = "Space",
    status = 200
);
ep!(
    ENTRY,
    "post",
    "/api/entry",
    GATE_ROLES,
    "gates",
    "Decide an entry: admit (session + assigned bay), duplicate, or deny; commands the gate",
    query = &[],
    req = Some("EntryRequest"),
    resp = "EntryDecision",
    status = 200
);
ep!(
    EXIT,
    "post",
    "/api/exit",
    GATE_ROLES,
    "gates",
    "Decide an exit: open (session closed), payment_required with the amount, or hold for staff",
    query = &[],
    req = Some("ExitRequest"),
    resp = "ExitDecision",
    status = 200
);
ep!(RESERVE, "post", "/api/reservations", SELLERS, "reservations", "Reserve a bay (space_id) or a bay of a type (space_type / vehicle_type) for [start_time, end_time)", query = &[], req = Some("ReservationRequest"), resp = "Reservation", status = 201);
ep!(
    RESERVATION,
    "get",
    "/api/reservations/{reservation_id}",
    READERS,
    "reservations",
    "A reservation with its payments",
    query = &[],
    req = None,
    resp = "Reservation",
    status = 200
);
ep!(
    CANCEL,
    "post",
    "/api/reservations/{reservation_id}/cancel",
    SELLERS,
    "reservations",
    "Cancel a booked reservation; refunds what the cancellation rule allows",
    query = &[],
    req = None,
    resp = "CancelOutcome",
    status = 200
);
ep!(
    SWEEP,
    "post",
    "/api/reservations/no-shows",
    &[Operator, Admin],
    "reservations",
    "Run the no-show sweep now (it also runs in the background)",
    query = &[],
    req = Some("SweepRequest"),
    resp = "SweepOutcome",
    status = 200
);
ep!(PAY, "post", "/api/payments", SELLERS, "payments", "Pay for a session, a reservation or a lost ticket; a retry with the same idempotency key never charges twice", query = &[], req = Some("PaymentRequest"), resp = "PaymentOutcome", status = 201);
ep!(
    PAYMENTS,
    "get",
    "/api/payments",
    READERS,
    "payments",
    "Recent payments and refunds",
    query = &[
        ("session_id", "only this session's"),
        ("limit", "at most this many (default 100)")
    ],
    req = None,
    resp = "PaymentList",
    status = 200
);
ep!(
    PAYMENT,
    "get",
    "/api/payments/{payment_id}",
    READERS,
    "payments",
    "One payment or refund",
    query = &[],
    req = None,
    resp = "Payment",
    status = 200
);
ep!(
    REFUND,
    "post",
    "/api/payments/{payment_id}/refund",
    &[Operator, Admin],
    "payments",
    "Refund (part of) a charge, with a reason",
    query = &[],
    req = Some("RefundRequest"),
    resp = "Payment",
    status = 201
);
ep!(
    GATEWAY,
    "put",
    "/api/payments/gateway",
    &[Admin],
    "payments",
    "Switch the built-in payment gateway up or down (tests and demos)",
    query = &[],
    req = Some("GatewaySwitch"),
    resp = "GatewaySwitch",
    status = 200
);
ep!(
    RECEIPT,
    "get",
    "/api/receipts/{payment_id}",
    SELLERS,
    "payments",
    "The receipt of a payment (JSON)",
    query = &[],
    req = None,
    resp = "Receipt",
    status = 200
);
ep!(
    RECEIPT_PAGE,
    "get",
    "/api/receipts/{payment_id}/print",
    SELLERS,
    "payments",
    "The receipt as a printable HTML page",
    query = &[],
    req = None,
    resp = "html",
    status = 200
);
ep!(VEHICLE, "get", "/api/vehicles/{license_plate}", READERS, "vehicles", "A vehicle with its lists, permits, open session, parking history, payments, reservations and debts", query = &[], req = None, resp = "Vehicle", status = 200);
ep!(
    SESSIONS,
    "get",
    "/api/sessions",
    READERS,
    "sessions",
    "Sessions, newest first",
    query = &[
        ("status", "open, closed or superseded"),
        ("license_plate", "only this plate"),
        ("limit", "at most this many (default 100)")
    ],
    req = None,
    resp = "SessionList",
    status = 200
);
ep!(
    SESSION,
    "get",
    "/api/sessions/{session_id}",
    READERS,
    "sessions",
    "A session with payments, gate decisions, debt and what leaving now would cost",
    query = &[],
    req = None,
    resp = "SessionDetail",
    status = 200
);
ep!(
    FLAGS,
    "get",
    "/api/flags",
    STAFF,
    "flags",
    "Flags for staff, newest first",
    query = &[
        ("status", "open, acknowledged or resolved"),
        ("kind", "flag kind"),
        ("license_plate", "only this plate"),
        ("limit", "at most this many (default 100)")
    ],
    req = None,
    resp = "FlagList",
    status = 200
);
ep!(
    FLAG_UPDATE,
    "patch",
    "/api/flags/{flag_id}",
    STAFF,
    "flags",
    "Acknowledge or resolve a flag, with a note",
    query = &[],
    req = Some("FlagUpdate"),
    resp = "Flag",
    status = 200
);
ep!(
    LISTS,
    "get",
    "/api/lists",
    STAFF,
    "lists",
    "Block-, watch- and allow-list entries (from the site file and added at run time)",
    query = &[
        ("list", "blocked, watched or allowed"),
        ("license_plate", "only this plate")
    ],
    req = None,
    resp = "ListEntryList",
    status = 200
);
ep!(LIST_PUT, "put", "/api/lists/{list}/{license_plate}", STAFF, "lists", "Put a plate on a list (blocked: never admitted; watched: admitted, flagged for security; allowed: admitted to a restricted site); takes effect at once, audited", query = &[], req = Some("ListEntryRequest"), resp = "ListEntry", status = 200);
ep!(
    LIST_DELETE,
    "delete",
    "/api/lists/{list}/{license_plate}",
    STAFF,
    "lists",
    "Take a plate off a list (entries from the site file are changed there: 409)",
    query = &[],
    req = None,
    resp = "ListEntry",
    status = 200
);
ep!(
    PERMITS,
    "get",
    "/api/permits",
    STAFF,
    "permits",
    "Permits (from the site file and issued at run time)",
    query = &[("license_plate", "only this plate")],
    req = None,
    resp = "PermitList",
    status = 200
);
ep!(PERMIT_ISSUE, "post", "/api/permits", &[Operator, Admin], "permits", "Issue a permit: access to restricted lots, restricted bay types and/or free parking, within dates and weekly windows; audited", query = &[], req = Some("PermitRequest"), resp = "Permit", status = 201);
ep!(
    PERMIT_REVOKE,
    "delete",
    "/api/permits/{permit_id}",
    &[Operator, Admin],
    "permits",
    "Revoke a permit issued at run time (permits from the site file are changed there: 409)",
    query = &[("reason", "why, for the audit log")],
    req = None,
    resp = "Permit",
    status = 200
);
ep!(
    AUDIT,
    "get",
    "/api/audit",
    &[Security, Admin],
    "audit",
    "The append-only audit log, newest first",
    query = &[
        ("subject", "only records about this id or plate"),
        ("limit", "at most this many (default 100)")
    ],
    req = None,
    resp = "AuditList",
    status = 200
);
ep!(
    OPENAPI,
    "get",
    "/api/openapi.json",
    EVERYONE,
    "meta",
    "This document (no key needed)",
    query = &[],
    req = None,
    resp = "OpenApi",
    status = 200
);

/// Every endpoint, in documentation order.
pub const ENDPOINTS: &[&Endpoint] = &[
    &AVAILABILITY,
    &PARKINGS,
    &SPACE_STATUS,
    &ENTRY,
    &EXIT,
    &RESERVE,
    &RESERVATION,
    &CANCEL,
    &SWEEP,
    &PAY,
    &PAYMENTS,
    &PAYMENT,
    &REFUND,
    &GATEWAY,
    &RECEIPT,
    &RECEIPT_PAGE,
    &VEHICLE,
    &SESSIONS,
    &SESSION,
    &FLAGS,
    &FLAG_UPDATE,
    &LISTS,
    &LIST_PUT,
    &LIST_DELETE,
    &PERMITS,
    &PERMIT_ISSUE,
    &PERMIT_REVOKE,
    &AUDIT,
    &OPENAPI,
];

#[derive(Clone)]
pub struct ApiState {
    pub service: ParkingService,
    /// Boards: sensor reports are shown on them like camera states.
    pub occupancy: Option<crate::occupancy::OccupancyHandle>,
}

/// JSON body extractor whose rejections use the API's error shape.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(v) = Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

type ApiResult = Result<Response, ApiError>;

fn ok<T: serde::Serialize>(status: u16, v: T) -> ApiResult {
    Ok((
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        Json(v),
    )
        .into_response())
}

fn plate(raw: &str, field: &str) -> Result<Plate, ApiError> {
    Plate::parse(raw).map_err(|e| ApiError::unprocessable("invalid_plate", field, e.to_string()))
}

/// `timestamp`: only trusted roles, and not absurdly far from now.
fn when(caller: &Caller, ts: Option<DateTime<Utc>>) -> Result<DateTime<Utc>, ApiError> {
    let now = Utc::now();
    let Some(ts) = ts else { return Ok(now) };
    if !caller.may_set_timestamp() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "timestamp_not_allowed",
            format!(
                "role `{}` may not set `timestamp`; only kiosk, operator and admin keys may",
                caller.role.as_str()
            ),
        )
        .field("timestamp"));
    }
    if ts > now + chrono::Duration::minutes(5) || ts < now - chrono::Duration::days(7) {
        return Err(ApiError::unprocessable(
            "timestamp_out_of_range",
            "timestamp",
            "timestamp must be within the last 7 days and not in the future",
        ));
    }
    Ok(ts)
}

fn gate(st: &ApiState, g: Option<String>) -> Result<Option<String>, ApiError> {
    match g {
        Some(g) if !st.service.settings().gates.iter().any(|(id, _)| *id == g) => {
            Err(ApiError::unprocessable(
                "unknown_gate",
                "gate",
                format!("gate `{g}` is not configured"),
            ))
        }
        other => Ok(other),
    }
}

pub fn router(
    service: ParkingService,
    occupancy: Option<crate::occupancy::OccupancyHandle>,
) -> Router {
    let auth_state = Auth::new(service.store().clone());
    let st = ApiState { service, occupancy };
    Router::new()
        .route(AVAILABILITY.path, get(availability))
        .route(PARKINGS.path, get(parkings))
        .route(SPACE_STATUS.path, put(space_status))
        .route(ENTRY.path, post(entry))
        .route(EXIT.path, post(exit))
        .route(RESERVE.path, post(reserve))
        .route(SWEEP.path, post(sweep))
        .route(RESERVATION.path, get(reservation))
        .route(CANCEL.path, post(cancel))
        .route(PAY.path, post(pay).get(payments))
        .route(GATEWAY.path, put(gateway_switch))
        .route(PAYMENT.path, get(payment))
        .route(REFUND.path, post(refund))
        .route(RECEIPT.path, get(receipt_json))
        .route(RECEIPT_PAGE.path, get(receipt_page))
        .route(VEHICLE.path, get(vehicle))
        .route(SESSIONS.path, get(sessions))
        .route(SESSION.path, get(session))
        .route(FLAGS.path, get(flags))
        .route(FLAG_UPDATE.path, patch(flag_update))
        .route(LISTS.path, get(lists))
        .route(LIST_PUT.path, put(list_put).delete(list_delete))
        .route(PERMITS.path, get(permits).post(permit_issue))
        .route(PERMIT_REVOKE.path, delete(permit_revoke))
        .route(AUDIT.path, get(audit))
        .route(OPENAPI.path, get(openapi_doc))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint (see /api/openapi.json)",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            auth_state,
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn(auth::request_id))
        .with_state(st)
}

async fn openapi_doc() -> Response {
    Json(openapi::document()).into_response()
}

// ---------------------------------------------------------------- spaces

#[derive(Deserialize)]
struct AvailabilityQuery {
    #[serde(rename = "type")]
    space_type: Option<SpaceType>,
}

async fn availability(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    q: Result<Query<AvailabilityQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    c.allow(&AVAILABILITY)?;
    let Query(q) = q.map_err(|e| ApiError::from(e).field("type"))?;
    let by_type = st.service.availability(q.space_type).await?;
    let sum = |f: fn(&crate::service::TypeAvailability) -> i64| by_type.iter().map(f).sum::<i64>();
    ok(
        200,
        serde_json::json!({
            "total": sum(|a| a.total), "available": sum(|a| a.available), "occupied": sum(|a| a.occupied),
            "reserved": sum(|a| a.reserved), "out_of_service": sum(|a| a.out_of_service), "by_type": by_type,
        }),
    )
}

async fn parkings(State(st): State<ApiState>, Extension(c): Extension<Caller>) -> ApiResult {
    c.allow(&PARKINGS)?;
    ok(
        200,
        serde_json::json!({ "spaces": st.service.parkings().await? }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpaceStatusBody {
    status: String,
    #[serde(default)]
    reason: Option<String>,
    /// Staff only: pin the occupancy state over sensors and cameras.
    #[serde(default, rename = "override")]
    manual: bool,
}

async fn space_status(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SpaceStatusBody>,
) -> ApiResult {
    use crate::core::BayState;
    use crate::service::SpaceStatusChange as Change;
    c.allow(&SPACE_STATUS)?;
    let staff = matches!(c.role, Operator | Admin);
    let staff_only = |what: &str| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("only staff may {what}"),
        )
        .field("status")
    };
    let sensed = match b.status.as_str() {
        "occupied" => Some(BayState::Occupied),
        "available" => Some(BayState::Free),
        _ => None,
    };
    let change = match (b.status.as_str(), sensed) {
        ("out_of_service", _) if !staff => return Err(staff_only("take a bay out of service")),
        ("out_of_service", _) => Change::OutOfService,
        ("auto", _) if !staff => return Err(staff_only("clear an override")),
        ("auto", _) => Change::Override(None),
        (_, Some(_)) if b.manual && !staff => return Err(staff_only("override a bay's state")),
        (_, Some(s)) if b.manual => Change::Override(Some(s)),
        ("available", _) if staff => Change::BackInService,
        (_, Some(s)) => Change::Sensor(s),
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_status",
                "status must be `available`, `occupied`, (staff) `out_of_service` or `auto`",
            )
            .field("status"))
        }
    };
    let v = st
        .service
        .set_space_status(&id, change, &format!("api:{}", c.name), b.reason.as_deref())
        .await?;
    // The boards follow the same state the core keeps: what a sensor reports
    // (an override, when set, still wins there) and staff overrides.
    if let Some(o) = &st.occupancy {
        match change {
            Change::Sensor(s) => {
                o.submit(crate::events::BayUpdate {
                    space_id: id.clone(),
                    camera: format!("sensor:{}", c.name),
                    state: s.as_str().into(),
                    probability: None,
                    at: chrono::Utc::now(),
                })
                .await;
            }
            Change::Override(s) => o.set_override(&id, s).await,
            _ => {}
        }
    }
    ok(200, v)
}

// ---------------------------------------------------------------- gates

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryBody {
    license_plate: String,
    #[serde(default)]
    vehicle_type: Option<VehicleType>,
    #[serde(default)]
    reservation_id: Option<String>,
    #[serde(default)]
    gate: Option<String>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

async fn entry(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    ApiJson(b): ApiJson<EntryBody>,
) -> ApiResult {
    c.allow(&ENTRY)?;
    let req = EntryRequest {
        plate: plate(&b.license_plate, "license_plate")?,
        vehicle_type: b.vehicle_type,
        reservation_id: b.reservation_id,
        gate: gate(&st, b.gate)?,
        at: when(&c, b.timestamp)?,
        confidence: 1.0,
        evidence: None,
        source: Source::Api {
            key: c.name.clone(),
        },
    };
    ok(200, st.service.entry(req).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExitBody {
    license_plate: String,
    #[serde(default)]
    gate: Option<String>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

async fn exit(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    ApiJson(b): ApiJson<ExitBody>,
) -> ApiResult {
    c.allow(&EXIT)?;
    let req = ExitRequest {
        plate: plate(&b.license_plate, "license_plate")?,
        gate: gate(&st, b.gate)?,
        at: when(&c, b.timestamp)?,
        confidence: 1.0,
        evidence: None,
        source: Source::Api {
            key: c.name.clone(),
        },
    };
    ok(200, st.service.exit(req).await?)
}

// ---------------------------------------------------------------- reservations

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReservationBody {
    license_plate: String,
    #[serde(default)]
    space_id: Option<String>,
    #[serde(default)]
    space_type: Option<SpaceType>,
    #[serde(default)]
    vehicle_type: Option<VehicleType>,
    start_time: DateTime<Utc>,
    end_time: DateTime<Utc>,
    /// Trusted roles only: book as of this instant (tests, back-office).
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

async fn reserve(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    ApiJson(b): ApiJson<ReservationBody>,
) -> ApiResult {
    c.allow(&RESERVE)?;
    let req = ReservationRequest {
        plate: plate(&b.license_plate, "license_plate")?,
        space_id: b.space_id,
        space_type: b.space_type,
        vehicle_type: b.vehicle_type,
        start: b.start_time,
        end: b.end_time,
        actor: format!("api:{}", c.name),
        now: when(&c, b.timestamp)?,
    };
    ok(201, st.service.reserve(req).await?)
}

async fn reservation(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    c.allow(&RESERVATION)?;
    let (r, payments) = st.service.reservation(&id).await?;
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["payments"] = serde_json::to_value(payments).unwrap_or_default();
    ok(200, v)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TimestampBody {
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

/// An optional JSON body: empty means the defaults.
fn optional_body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()))
}

async fn cancel(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    c.allow(&CANCEL)?;
    let b: TimestampBody = optional_body(&body)?;
    ok(
        200,
        st.service
            .cancel_reservation(&id, &format!("api:{}", c.name), when(&c, b.timestamp)?)
            .await?,
    )
}

async fn sweep(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    body: axum::body::Bytes,
) -> ApiResult {
    c.allow(&SWEEP)?;
    let b: TimestampBody = optional_body(&body)?;
    let now = match b.timestamp {
        Some(ts) if c.may_set_timestamp() => ts,
        _ => Utc::now(),
    };
    ok(
        200,
        serde_json::json!({ "no_shows": st.service.sweep_no_shows(now).await? }),
    )
}

// ---------------------------------------------------------------- payments

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentBody {
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    reservation_id: Option<String>,
    /// Lost-ticket fee for a plate whose exit matched no session.
    #[serde(default)]
    license_plate: Option<String>,
    payment_method: PaymentMethod,
    amount: i64,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

async fn pay(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<PaymentBody>,
) -> ApiResult {
    c.allow(&PAY)?;
    let header_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let key = match (b.idempotency_key, header_key) {
        (Some(a), Some(h)) if a != h => return Err(ApiError::unprocessable("idempotency_key_mismatch", "idempotency_key", "the body and the Idempotency-Key header disagree")),
        (Some(a), _) => a,
        (None, Some(h)) => h,
        (None, None) => return Err(ApiError::unprocessable("idempotency_key_required", "idempotency_key", "send `idempotency_key` (or an Idempotency-Key header); a retry with the same key never charges twice")),
    };
    let target = match (b.session_id, b.reservation_id, b.license_plate) {
        (Some(s), None, None) => PaymentTarget::Session(s),
        (None, Some(r), None) => PaymentTarget::Reservation(r),
        (None, None, Some(p)) => PaymentTarget::LostTicket(plate(&p, "license_plate")?),
        _ => return Err(ApiError::unprocessable(
            "target_required",
            "session_id",
            "give exactly one of `session_id`, `reservation_id` or `license_plate` (lost ticket)",
        )),
    };
    let req = PaymentRequest {
        target,
        method: b.payment_method,
        amount: b.amount,
        idempotency_key: key,
        actor: format!("api:{}", c.name),
        at: when(&c, b.timestamp)?,
    };
    let out = st.service.pay(req).await?;
    ok(if out.replayed { 200 } else { 201 }, out)
}

#[derive(Deserialize)]
struct ListQuery {
    session_id: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    license_plate: Option<String>,
    subject: Option<String>,
    limit: Option<i64>,
}

impl ListQuery {
    fn limit(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }
}

async fn payments(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    c.allow(&PAYMENTS)?;
    ok(
        200,
        serde_json::json!({ "payments": st.service.payments(q.session_id.as_deref(), q.limit()).await? }),
    )
}

async fn payment(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    c.allow(&PAYMENT)?;
    ok(200, st.service.payment(&id).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    #[serde(default)]
    amount: Option<i64>,
    reason: String,
    #[serde(default)]
    idempotency_key: Option<String>,
}

async fn refund(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<RefundBody>,
) -> ApiResult {
    c.allow(&REFUND)?;
    ok(
        201,
        st.service
            .refund(
                &id,
                b.amount,
                &b.reason,
                b.idempotency_key,
                &format!("api:{}", c.name),
            )
            .await?,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayBody {
    available: bool,
}

async fn gateway_switch(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    ApiJson(b): ApiJson<GatewayBody>,
) -> ApiResult {
    c.allow(&GATEWAY)?;
    st.service.gateway().set_available(b.available);
    tracing::info!(available = b.available, by = %c.name, "payment gateway switched");
    ok(
        200,
        serde_json::json!({ "available": st.service.gateway().is_available() }),
    )
}

async fn receipt_json(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    c.allow(&RECEIPT)?;
    ok(200, st.service.receipt(&id).await?)
}

async fn receipt_page(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    c.allow(&RECEIPT_PAGE)?;
    let r = st.service.receipt(&id).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        receipt::html(&r),
    )
        .into_response())
}

// ---------------------------------------------------------------- reads

async fn vehicle(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(p): Path<String>,
) -> ApiResult {
    c.allow(&VEHICLE)?;
    ok(200, st.service.vehicle(&plate(&p, "license_plate")?).await?)
}

async fn sessions(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    c.allow(&SESSIONS)?;
    let p = q
        .license_plate
        .as_deref()
        .map(|p| plate(p, "license_plate"))
        .transpose()?;
    ok(
        200,
        serde_json::json!({ "sessions": st.service.sessions(q.status.as_deref(), p.as_ref().map(|p| p.as_str()), q.limit()).await? }),
    )
}

async fn session(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    c.allow(&SESSION)?;
    ok(200, st.service.session(&id).await?)
}

async fn flags(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    c.allow(&FLAGS)?;
    let p = q
        .license_plate
        .as_deref()
        .map(|p| plate(p, "license_plate"))
        .transpose()?;
    ok(
        200,
        serde_json::json!({ "flags": st.service.flags(q.status.as_deref(), q.kind.as_deref(), p.as_ref().map(|p| p.as_str()), q.limit()).await? }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlagBody {
    status: FlagStatus,
    #[serde(default)]
    note: Option<String>,
}

async fn flag_update(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<FlagBody>,
) -> ApiResult {
    c.allow(&FLAG_UPDATE)?;
    ok(
        200,
        st.service
            .update_flag(&id, b.status, b.note.as_deref(), &format!("api:{}", c.name))
            .await?,
    )
}

// ---------------------------------------------------------------- lists and permits

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListsQuery {
    list: Option<String>,
    license_plate: Option<String>,
}

async fn lists(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    q: Result<Query<ListsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    c.allow(&LISTS)?;
    let Query(q) = q?;
    let p = q
        .license_plate
        .as_deref()
        .map(|p| plate(p, "license_plate"))
        .transpose()?;
    ok(
        200,
        serde_json::json!({ "entries": st.service.list_entries(q.list.as_deref(), p.as_ref()).await? }),
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListEntryBody {
    #[serde(default)]
    reason: Option<String>,
}

/// The body is optional (`{}` or nothing: no reason).
async fn list_put(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path((list, p)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    c.allow(&LIST_PUT)?;
    let b: ListEntryBody = if body.iter().all(u8::is_ascii_whitespace) {
        ListEntryBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()))?
    };
    ok(
        200,
        st.service
            .add_to_list(
                &list,
                &plate(&p, "license_plate")?,
                b.reason.as_deref(),
                &format!("api:{}", c.name),
                Utc::now(),
            )
            .await?,
    )
}

async fn list_delete(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path((list, p)): Path<(String, String)>,
) -> ApiResult {
    c.allow(&LIST_DELETE)?;
    ok(
        200,
        st.service
            .remove_from_list(
                &list,
                &plate(&p, "license_plate")?,
                &format!("api:{}", c.name),
                Utc::now(),
            )
            .await?,
    )
}

async fn permits(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    c.allow(&PERMITS)?;
    let p = q
        .license_plate
        .as_deref()
        .map(|p| plate(p, "license_plate"))
        .transpose()?;
    ok(
        200,
        serde_json::json!({ "permits": st.service.permit_list(p.as_ref()).await? }),
    )
}

/// `POST /api/permits`: the site file's `[[permits]]` fields, with the API's
/// `license_plate` and an optional `permit_id`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermitBody {
    #[serde(default)]
    permit_id: Option<String>,
    license_plate: String,
    kind: crate::core::PermitKind,
    valid_from: String,
    #[serde(default)]
    valid_until: Option<String>,
    #[serde(default)]
    windows: Vec<crate::config::WindowConfig>,
    #[serde(default)]
    space_types: Option<Vec<crate::config::SpaceKind>>,
    #[serde(default)]
    covers_fees: Option<bool>,
}

async fn permit_issue(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    ApiJson(b): ApiJson<PermitBody>,
) -> ApiResult {
    c.allow(&PERMIT_ISSUE)?;
    let req = crate::config::PermitConfig {
        id: b.permit_id.unwrap_or_default(),
        plate: b.license_plate,
        kind: b.kind,
        valid_from: b.valid_from,
        valid_until: b.valid_until,
        windows: b.windows,
        space_types: b.space_types,
        covers_fees: b.covers_fees,
    };
    ok(
        201,
        st.service
            .issue_permit(req, &format!("api:{}", c.name), Utc::now())
            .await?,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeQuery {
    reason: Option<String>,
}

async fn permit_revoke(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    q: Result<Query<RevokeQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    c.allow(&PERMIT_REVOKE)?;
    let Query(q) = q?;
    ok(
        200,
        st.service
            .revoke_permit(
                &id,
                q.reason.as_deref(),
                &format!("api:{}", c.name),
                Utc::now(),
            )
            .await?,
    )
}

async fn audit(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    c.allow(&AUDIT)?;
    ok(
        200,
        serde_json::json!({ "records": st.service.audit_log(q.subject.as_deref(), q.limit()).await? }),
    )
}
