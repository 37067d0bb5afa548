//! Gates: entry and exit requests (kiosks and gate controllers).

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EntryBody {
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

pub(super) async fn entry(
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
    ok_wire(200, st.service.entry(req).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExitBody {
    license_plate: String,
    #[serde(default)]
    gate: Option<String>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

pub(super) async fn exit(
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
    ok_wire(200, st.service.exit(req).await?)
}
