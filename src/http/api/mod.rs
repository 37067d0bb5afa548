//! The JSON API under `/api`. Handlers parse, authorise and serialise; the
//! services orchestrate; the core decides. Every endpoint is declared once in
//! [`ENDPOINTS`] with the roles that may call it, and that table drives both
//! the authorisation check and the OpenAPI document.

pub mod auth;
pub mod client;
pub mod dto;
mod endpoints;
pub mod error;
mod gates;
pub mod openapi;
mod payments;
mod reads;
mod receipt;
mod registry;
mod reservations;
mod spaces;

use endpoints::*;
pub use endpoints::{Endpoint, ENDPOINTS};
use gates::*;
use payments::*;
use reads::*;
use registry::*;
use reservations::*;
use spaces::*;

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
use dto::ToWire;
use error::ApiError;
use serde::Deserialize;
use ApiRole::*;

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

/// A success reply with the wire form of a row or outcome.
fn ok_wire<T: dto::ToWire>(status: u16, v: T) -> ApiResult {
    ok(status, v.wire())
}

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

#[derive(Deserialize)]
pub(super) struct ListQuery {
    session_id: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    license_plate: Option<String>,
    subject: Option<String>,
    limit: Option<i64>,
}

impl ListQuery {
    /// The `license_plate` filter, normalised (a bad plate is a 400 naming it).
    fn plate(&self) -> Result<Option<Plate>, ApiError> {
        self.license_plate
            .as_deref()
            .map(|p| plate(p, "license_plate"))
            .transpose()
    }

    fn limit(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }
}

#[cfg(test)]
mod tests;
