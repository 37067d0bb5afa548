//! Spaces: availability, the bay list and bay status changes.

use super::*;

#[derive(Deserialize)]
pub(super) struct AvailabilityQuery {
    #[serde(rename = "type")]
    space_type: Option<SpaceType>,
}

pub(super) async fn availability(
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
            "reserved": sum(|a| a.reserved), "out_of_service": sum(|a| a.out_of_service), "by_type": by_type.wire(),
        }),
    )
}

pub(super) async fn parkings(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
) -> ApiResult {
    c.allow(&PARKINGS)?;
    ok(
        200,
        serde_json::json!({ "spaces": st.service.parkings().await?.wire() }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SpaceStatusBody {
    status: String,
    #[serde(default)]
    reason: Option<String>,
    /// Staff only: pin the occupancy state over sensors and cameras.
    #[serde(default, rename = "override")]
    manual: bool,
}

pub(super) async fn space_status(
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
    ok_wire(200, v)
}
