//! Read-only views: vehicles, sessions and flags (and flag updates).

use super::*;

pub(super) async fn vehicle(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(p): Path<String>,
) -> ApiResult {
    c.allow(&VEHICLE)?;
    ok_wire(200, st.service.vehicle(&plate(&p, "license_plate")?).await?)
}

pub(super) async fn sessions(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    c.allow(&SESSIONS)?;
    let p = q.plate()?;
    ok(
        200,
        serde_json::json!({ "sessions": st.service.sessions(q.status.as_deref(), p.as_ref().map(|p| p.as_str()), q.limit()).await?.wire() }),
    )
}

pub(super) async fn session(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    c.allow(&SESSION)?;
    ok_wire(200, st.service.session(&id).await?)
}

pub(super) async fn flags(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    c.allow(&FLAGS)?;
    let p = q.plate()?;
    ok(
        200,
        serde_json::json!({ "flags": st.service.flags(q.status.as_deref(), q.kind.as_deref(), p.as_ref().map(|p| p.as_str()), q.limit()).await?.wire() }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FlagBody {
    status: FlagStatus,
    #[serde(default)]
    note: Option<String>,
}

pub(super) async fn flag_update(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<FlagBody>,
) -> ApiResult {
    c.allow(&FLAG_UPDATE)?;
    ok_wire(
        200,
        st.service
            .update_flag(&id, b.status, b.note.as_deref(), &format!("api:{}", c.name))
            .await?,
    )
}
