//! Payments: pay, list, refund, switch the gateway, receipts.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PaymentBody {
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

pub(super) async fn pay(
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
    ok_wire(if out.replayed { 200 } else { 201 }, out)
}

pub(super) async fn payments(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    c.allow(&PAYMENTS)?;
    ok(
        200,
        serde_json::json!({ "payments": st.service.payments(q.session_id.as_deref(), q.limit()).await?.wire() }),
    )
}

pub(super) async fn payment(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    c.allow(&PAYMENT)?;
    ok_wire(200, st.service.payment(&id).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RefundBody {
    #[serde(default)]
    amount: Option<i64>,
    reason: String,
    #[serde(default)]
    idempotency_key: Option<String>,
}

pub(super) async fn refund(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<RefundBody>,
) -> ApiResult {
    c.allow(&REFUND)?;
    ok_wire(
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
pub(super) struct GatewayBody {
    available: bool,
}

pub(super) async fn gateway_switch(
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

pub(super) async fn receipt_json(
    State(st): State<ApiState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    c.allow(&RECEIPT)?;
    ok_wire(200, st.service.receipt(&id).await?)
}

pub(super) async fn receipt_page(
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
