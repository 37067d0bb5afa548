//! Reservations: book, read, cancel, and the no-show sweep.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReservationBody {
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

pub(super) async fn reserve(
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
    ok_wire(201, st.service.reserve(req).await?)
}

pub(super) async fn reservation(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    c.allow(&RESERVATION)?;
    let (r, payments) = st.service.reservation(&id).await?;
    let mut v = serde_json::to_value(r.wire()).unwrap_or_default();
    v["payments"] = serde_json::to_value(payments.wire()).unwrap_or_default();
    ok(200, v)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct TimestampBody {
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

/// An optional JSON body: empty means the defaults.
pub(super) fn optional_body<T: serde::de::DeserializeOwned + Default>(
    bytes: &[u8],
) -> Result<T, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()))
}

pub(super) async fn cancel(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    c.allow(&CANCEL)?;
    let b: TimestampBody = optional_body(&body)?;
    ok_wire(
        200,
        st.service
            .cancel_reservation(&id, &format!("api:{}", c.name), when(&c, b.timestamp)?)
            .await?,
    )
}

pub(super) async fn sweep(
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
