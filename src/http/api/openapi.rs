//! The OpenAPI 3 document, generated from [`super::ENDPOINTS`] (paths,
//! methods, roles, parameters) and the component schemas below.

use super::ENDPOINTS;
use crate::core::entry::{EntryReason, EntryVerdict};
use crate::core::exit::ExitReason;
use crate::core::{
    BayState, FlagKind, FlagStatus, PaymentKind, PaymentMethod, PaymentStatus, PermitKind,
    ReservationStatus, SpaceType, Variants, VehicleType,
};
use serde_json::{json, Value};

fn s(t: &str) -> Value {
    json!({ "type": t })
}
fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}
fn nullable(t: &str) -> Value {
    json!({ "type": [t, "null"] })
}
fn obj(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props })
}
fn list(key: &str, item: &str) -> Value {
    obj(
        &[key],
        json!({ key: { "type": "array", "items": r(item) } }),
    )
}

/// A string schema listing every variant of a Rust enum, in its serde
/// spelling: the document cannot drift from the code.
fn one_of<T: Variants + serde::Serialize>() -> Value {
    let names: Vec<Value> = T::ALL
        .iter()
        .map(|v| serde_json::to_value(v).expect("a fieldless enum serialises to a string"))
        .collect();
    json!({ "type": "string", "enum": names })
}

fn schemas() -> Value {
    let ts = json!({ "type": "string", "format": "date-time" });
    let plate = json!({ "type": "string", "description": "normalised on input: upper case, A-Z 0-9, separators dropped", "example": "B123ABC" });
    let space_type = one_of::<SpaceType>();
    let vehicle_type = one_of::<VehicleType>();
    let money =
        json!({ "type": "integer", "description": "integer minor units of the site currency" });
    json!({
        "Error": obj(&["error"], json!({ "error": obj(&["code", "message"], json!({ "code": s("string"), "message": s("string"), "field": s("string") })) })),
        "EntryRequest": obj(&["license_plate"], json!({
            "license_plate": plate, "vehicle_type": vehicle_type, "reservation_id": s("string"), "gate": s("string"),
            "timestamp": { "type": "string", "format": "date-time", "description": "when the car passed; kiosk, operator and admin keys only" } })),
        "ExitRequest": obj(&["license_plate"], json!({ "license_plate": plate, "gate": s("string"), "timestamp": ts })),
        "Flag": obj(&["flag_id", "kind", "detail", "status"], json!({
            "flag_id": s("string"), "kind": one_of::<FlagKind>(),
            "license_plate": nullable("string"), "session_id": nullable("string"), "gate": nullable("string"), "detail": s("string"), "evidence": {},
            "status": one_of::<FlagStatus>(), "created_at": ts, "updated_at": ts, "updated_by": nullable("string"), "note": nullable("string") })),
        "FlagRef": obj(&["flag_id", "kind", "detail"], json!({ "flag_id": s("string"), "kind": s("string"), "detail": s("string") })),
        "FlagList": list("flags", "Flag"),
        "ListEntry": obj(&["license_plate", "list", "source", "added_at"], json!({
            "license_plate": s("string"), "list": { "type": "string", "enum": ["blocked", "watched", "allowed"] }, "reason": nullable("string"),
            "source": { "type": "string", "enum": ["config", "api"], "description": "config entries are changed in the site file" }, "added_at": ts })),
        "ListEntryList": list("entries", "ListEntry"),
        "ListEntryRequest": obj(&[], json!({ "reason": s("string") })),
        "Permit": obj(&["id", "plate", "kind", "valid_from", "covers_fees", "source"], json!({
            "id": s("string"), "plate": s("string"), "kind": one_of::<PermitKind>(),
            "valid_from": { "type": "string", "format": "date" }, "valid_until": { "type": ["string", "null"], "format": "date" },
            "windows": { "type": "array", "items": obj(&["days", "start", "end"], json!({ "days": { "type": "array", "items": s("string") }, "start": s("string"), "end": s("string") })) },
            "lots": { "type": "array", "items": s("string") }, "space_types": { "type": "array", "items": space_type }, "covers_fees": s("boolean"),
            "source": { "type": "string", "enum": ["config", "api"] }, "updated_at": ts })),
        "PermitList": list("permits", "Permit"),
        "PermitRequest": obj(&["license_plate", "kind", "valid_from"], json!({
            "permit_id": { "type": "string", "description": "generated when absent" }, "license_plate": plate,
            "kind": one_of::<PermitKind>(),
            "valid_from": { "type": "string", "format": "date", "description": "first valid day, site time zone" },
            "valid_until": { "type": "string", "format": "date", "description": "last valid day, inclusive; absent = open-ended" },
            "windows": { "type": "array", "description": "when it applies (site-local); empty = all day", "items": obj(&["from", "to"], json!({ "days": { "type": "array", "items": { "type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] } }, "from": { "type": "string", "example": "07:00" }, "to": { "type": "string", "example": "19:00" } })) },
            "space_types": { "type": "array", "items": space_type, "description": "restricted bay types it unlocks (default by kind)" },
            "covers_fees": { "type": "boolean", "description": "parking is free with it (default: staff and resident)" } })),
        "FlagUpdate": obj(&["status"], json!({ "status": { "type": "string", "enum": ["acknowledged", "resolved"] }, "note": s("string") })),
        "Debt": obj(&["debt_id", "license_plate", "kind", "amount", "currency"], json!({ "debt_id": s("string"), "license_plate": s("string"), "session_id": nullable("string"), "reservation_id": nullable("string"), "kind": { "type": "string", "enum": ["unpaid_exit", "no_show"] }, "amount": money, "currency": s("string"), "incurred_at": ts, "settled_at": { "type": ["string", "null"], "format": "date-time" } })),
        "EntryDecision": obj(&["decision_id", "license_plate", "verdict", "reason", "explanation", "gate_command"], json!({
            "decision_id": s("string"), "license_plate": s("string"), "verdict": one_of::<EntryVerdict>(),
            "reason": one_of::<EntryReason>(),
            "explanation": s("string"), "gate": nullable("string"), "gate_command": { "type": "string", "enum": ["open", "deny"] }, "session_id": nullable("string"),
            "space": { "type": ["object", "null"], "properties": { "space_id": s("string"), "level": s("string"), "zone": s("string"), "type": space_type } },
            "reservation_id": nullable("string"), "flags": { "type": "array", "items": r("FlagRef") }, "outstanding_debts": { "type": "array", "items": r("Debt") },
            "offline": { "type": "boolean", "description": "decided from the in-memory permit/list cache while the database was down" }, "timestamp": ts })),
        "ExitDecision": obj(&["decision_id", "license_plate", "verdict", "reason", "explanation", "gate_command", "amount_due", "currency"], json!({
            "decision_id": s("string"), "license_plate": s("string"), "verdict": { "type": "string", "enum": ["open", "payment_required", "hold"] },
            "reason": one_of::<ExitReason>(),
            "explanation": s("string"), "gate": nullable("string"), "gate_command": { "type": "string", "enum": ["open", "deny"] },
            "match_kind": { "type": "string", "enum": ["exact", "fuzzy", "ambiguous", "none"] }, "session_id": nullable("string"), "matched_plate": nullable("string"),
            "amount_due": money, "currency": s("string"), "fee": { "type": ["object", "null"], "description": "itemised fee: total and lines" },
            "debt_id": nullable("string"), "refunds": { "type": "array", "items": r("Payment") }, "flags": { "type": "array", "items": r("FlagRef") }, "offline": s("boolean"), "timestamp": ts })),
        "ReservationRequest": obj(&["license_plate", "start_time", "end_time"], json!({
            "license_plate": plate, "space_id": s("string"), "space_type": space_type, "vehicle_type": vehicle_type, "start_time": ts, "end_time": ts,
            "timestamp": { "type": "string", "format": "date-time", "description": "book as of this instant; trusted roles only" } })),
        "Reservation": obj(&["reservation_id", "license_plate", "space_id", "start_time", "end_time", "status", "price", "currency"], json!({
            "reservation_id": s("string"), "license_plate": s("string"), "space_id": s("string"), "space_type": space_type, "requested": { "type": "string", "enum": ["space", "type"] },
            "start_time": ts, "end_time": ts, "status": one_of::<ReservationStatus>(),
            "price": money, "currency": s("string"), "session_id": nullable("string"), "created_at": ts, "amount_due": money,
            "payments": { "type": "array", "items": r("Payment") } })),
        "CancelOutcome": { "allOf": [r("Reservation"), obj(&["refund_due"], json!({ "refund_due": money, "refunds": { "type": "array", "items": r("Payment") } }))] },
        "SweepRequest": obj(&[], json!({ "timestamp": ts })),
        "SweepOutcome": obj(&["no_shows"], json!({ "no_shows": { "type": "array", "items": s("string") } })),
        "PaymentRequest": obj(&["payment_method", "amount"], json!({
            "session_id": s("string"), "reservation_id": s("string"), "license_plate": { "type": "string", "description": "lost-ticket fee for a plate whose exit matched no session" },
            "payment_method": one_of::<PaymentMethod>(), "amount": money,
            "idempotency_key": { "type": "string", "description": "required here or as the Idempotency-Key header; a retry with the same key returns the first result and never charges twice" },
            "timestamp": ts })),
        "Payment": obj(&["payment_id", "idempotency_key", "kind", "status", "amount", "currency"], json!({
            "payment_id": s("string"), "idempotency_key": s("string"), "kind": one_of::<PaymentKind>(), "session_id": nullable("string"),
            "reservation_id": nullable("string"), "license_plate": nullable("string"), "purpose": { "type": "string", "enum": ["parking", "reservation", "lost_ticket", "refund"] },
            "parent_id": nullable("string"), "payment_method": s("string"), "status": one_of::<PaymentStatus>(),
            "amount": money, "currency": s("string"), "reason": nullable("string"), "failure": nullable("string"), "gateway_ref": nullable("string"), "actor": s("string"),
            "created_at": ts, "completed_at": { "type": ["string", "null"], "format": "date-time" } })),
        "PaymentList": list("payments", "Payment"),
        "PaymentOutcome": obj(&["payment", "replayed", "remaining_due"], json!({ "payment": r("Payment"), "receipt": { "oneOf": [r("Receipt"), { "type": "null" }] }, "replayed": s("boolean"), "remaining_due": money })),
        "RefundRequest": obj(&["reason"], json!({ "amount": money, "reason": s("string"), "idempotency_key": s("string") })),
        "GatewaySwitch": obj(&["available"], json!({ "available": s("boolean") })),
        "Receipt": obj(&["receipt_id", "number", "payment_id", "body"], json!({ "receipt_id": s("string"), "number": s("string"), "payment_id": s("string"), "body": s("object"), "created_at": ts })),
        "Availability": obj(&["type", "total", "available", "occupied", "reserved", "out_of_service"], json!({ "type": space_type, "total": s("integer"), "available": s("integer"), "occupied": s("integer"), "reserved": s("integer"), "out_of_service": s("integer") })),
        "AvailabilityList": obj(&["total", "available", "by_type"], json!({ "total": s("integer"), "available": s("integer"), "occupied": s("integer"), "reserved": s("integer"), "out_of_service": s("integer"), "by_type": { "type": "array", "items": r("Availability") } })),
        "Space": obj(&["space_id", "level", "zone", "type", "status", "display_status"], json!({
            "space_id": s("string"), "level": s("string"), "zone": s("string"), "type": space_type, "rank": s("integer"),
            "status": { "type": "string", "enum": ["available", "occupied", "out_of_service"] }, "display_status": { "type": "string", "enum": ["available", "occupied", "reserved", "out_of_service"] },
            "session_id": nullable("string"), "reservation_id": nullable("string"), "sensor_state": one_of::<BayState>(), "sensor_since": nullable("string"),
            "override_state": { "type": ["string", "null"], "enum": ["free", "occupied", null] }, "override_by": nullable("string"), "updated_at": ts })),
        "SpaceList": list("spaces", "Space"),
        "SpaceStatusRequest": obj(&["status"], json!({
            "status": { "type": "string", "enum": ["available", "occupied", "out_of_service", "auto"],
                        "description": "sensors: available/occupied (a report). Staff: out_of_service; available on an out-of-service bay puts it back; with override=true, available/occupied pin the occupancy state over sensors and cameras until status=auto clears it" },
            "override": { "type": "boolean", "default": false }, "reason": s("string") })),
        "Session": obj(&["session_id", "license_plate", "status", "entry_time"], json!({
            "session_id": s("string"), "license_plate": s("string"), "vehicle_type": vehicle_type, "status": { "type": "string", "enum": ["open", "closed", "superseded"] },
            "entry_time": ts, "exit_time": { "type": ["string", "null"], "format": "date-time" }, "entry_gate": nullable("string"), "exit_gate": nullable("string"),
            "space_id": nullable("string"), "space_type": nullable("string"), "reservation_id": nullable("string"), "entry_reason": s("string"), "exit_reason": nullable("string"),
            "fee": { "type": ["integer", "null"] }, "currency": s("string"), "evidence": {} })),
        "SessionList": list("sessions", "Session"),
        "SessionDetail": { "allOf": [r("Session"), obj(&["payments", "gate_decisions"], json!({ "payments": { "type": "array", "items": r("Payment") }, "gate_decisions": { "type": "array", "items": s("object") }, "amount_due_now": { "type": ["integer", "null"] }, "debt": { "oneOf": [r("Debt"), { "type": "null" }] } }))] },
        "Vehicle": obj(&["license_plate", "history"], json!({
            "license_plate": s("string"), "vehicle": { "type": ["object", "null"] }, "lists": obj(&[], json!({ "blocked": s("boolean"), "watched": s("boolean"), "allowed": s("boolean") })),
            "permits": { "type": "array", "items": s("object") }, "open_session": { "oneOf": [r("Session"), { "type": "null" }] }, "history": { "type": "array", "items": r("Session") },
            "payments": { "type": "array", "items": r("Payment") }, "reservations": { "type": "array", "items": r("Reservation") }, "outstanding_debts": { "type": "array", "items": r("Debt") } })),
        "AuditRecord": obj(&["id", "at", "actor", "action"], json!({ "id": s("integer"), "at": s("string"), "actor": s("string"), "action": s("string"), "subject": nullable("string"), "reason": nullable("string"), "detail": {} })),
        "AuditList": list("records", "AuditRecord"),
        "OpenApi": s("object"),
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for ep in ENDPOINTS {
        let mut params: Vec<Value> = ep
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|x| x.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": s("string") }))
            .collect();
        params.extend(ep.query.iter().map(|(name, desc)| json!({ "name": name, "in": "query", "required": false, "description": desc, "schema": s(if *name == "limit" { "integer" } else { "string" }) })));
        if ep.path == "/api/payments" && ep.method == "post" {
            params.push(json!({ "name": "Idempotency-Key", "in": "header", "required": false, "schema": s("string"), "description": "alternative to the body's idempotency_key" }));
        }
        let roles: Vec<&str> = ep.roles.iter().map(|r| r.as_str()).collect();
        let ok_content = if ep.response == "html" {
            json!({ "text/html": { "schema": s("string") } })
        } else {
            json!({ "application/json": { "schema": r(ep.response) } })
        };
        let mut responses = serde_json::Map::new();
        responses.insert(
            ep.status.to_string(),
            json!({ "description": "success", "content": ok_content }),
        );
        if ep.path == "/api/payments" && ep.method == "post" {
            responses.insert("200".into(), json!({ "description": "a retry with a known idempotency key: the first result, nothing charged again", "content": { "application/json": { "schema": r("PaymentOutcome") } } }));
            responses.insert("402".into(), json!({ "description": "payment declined", "content": { "application/json": { "schema": r("Error") } } }));
        }
        let err = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": r("Error") } } });
        if ep.path != "/api/openapi.json" {
            responses.insert("400".into(), err("malformed request"));
            responses.insert("401".into(), err("missing or unknown API key"));
            responses.insert(
                "403".into(),
                err("the key's role may not call this endpoint"),
            );
            responses.insert("404".into(), err("not found"));
            responses.insert("409".into(), err("conflict with the current state (space taken, nothing due, idempotency key reused, …)"));
            responses.insert("422".into(), err("invalid field (see `field`)"));
            responses.insert("429".into(), err("rate limited (Retry-After)"));
            responses.insert("503".into(), err("database or payment gateway unavailable"));
        }
        let mut op = json!({
            "summary": ep.summary,
            "tags": [ep.tag],
            "description": format!("Roles: {}.", roles.join(", ")),
            "x-roles": roles,
            "parameters": params,
            "responses": responses,
        });
        if let Some(req) = ep.request {
            op["requestBody"] = json!({ "required": ep.path != "/api/reservations/no-shows", "content": { "application/json": { "schema": r(req) } } });
        }
        if ep.path == "/api/openapi.json" {
            op["security"] = json!([]);
        }
        let path = paths
            .entry(ep.path.to_string())
            .or_insert_with(|| json!({}));
        path[ep.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "lotsense parking API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Entries, exits, sessions, payments, reservations and flags of a lotsense car park. Money is in integer minor units of the site currency; times are RFC 3339. Send an API key as `Authorization: Bearer <key>` or `X-API-Key`; each operation lists the roles that may call it. Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`.",
            "license": { "name": "Apache-2.0" },
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }, { "apiKey": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "apiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key" },
            },
            "schemas": schemas(),
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_endpoint_and_reference_is_documented() {
        let doc = super::document();
        for ep in super::ENDPOINTS {
            assert!(
                doc["paths"][ep.path][ep.method].is_object(),
                "{} {}",
                ep.method,
                ep.path
            );
        }
        let text = doc.to_string();
        for (i, _) in text.match_indices("#/components/schemas/") {
            let name: String = text[i + 21..]
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect();
            assert!(
                doc["components"]["schemas"][&name].is_object(),
                "schema {name} is referenced but not defined"
            );
        }
    }
}
