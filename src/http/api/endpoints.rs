//! The endpoint table: every route with its roles and documentation, read
//! by the router (authorisation) and the OpenAPI document.

use crate::config::ApiRole;

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
