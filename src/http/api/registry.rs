//! Lists, permits and the audit log.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListsQuery {
    list: Option<String>,
    license_plate: Option<String>,
}

pub(super) async fn lists(
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
        serde_json::json!({ "entries": st.service.list_entries(q.list.as_deref(), p.as_ref()).await?.wire() }),
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ListEntryBody {
    #[serde(default)]
    reason: Option<String>,
}

/// The body is optional (`{}` or nothing: no reason).
pub(super) async fn list_put(
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
    ok_wire(
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

pub(super) async fn list_delete(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path((list, p)): Path<(String, String)>,
) -> ApiResult {
    c.allow(&LIST_DELETE)?;
    ok_wire(
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

pub(super) async fn permits(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    c.allow(&PERMITS)?;
    let p = q.plate()?;
    ok(
        200,
        serde_json::json!({ "permits": st.service.permit_list(p.as_ref()).await?.wire() }),
    )
}

/// `POST /api/permits`: the site file's `[[permits]]` fields, with the API's
/// `license_plate` and an optional `permit_id`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PermitBody {
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
    space_types: Option<Vec<crate::core::SpaceType>>,
    #[serde(default)]
    covers_fees: Option<bool>,
}

pub(super) async fn permit_issue(
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
    ok_wire(
        201,
        st.service
            .issue_permit(req, &format!("api:{}", c.name), Utc::now())
            .await?,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeQuery {
    reason: Option<String>,
}

pub(super) async fn permit_revoke(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    q: Result<Query<RevokeQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    c.allow(&PERMIT_REVOKE)?;
    let Query(q) = q?;
    ok_wire(
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

pub(super) async fn audit(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    c.allow(&AUDIT)?;
    ok(
        200,
        serde_json::json!({ "records": st.service.audit_log(q.subject.as_deref(), q.limit()).await?.wire() }),
    )
}
