//! The seed flows, end to end through the HTTP API and through plate events,
//! each written once and run on SQLite and on PostgreSQL (`…::sqlite`,
//! `…::postgres`). Real database, real MQTT broker with a simulated gate
//! controller, real HTTP server.

use crate::support::parking::decided;
use crate::support::parking::*;
use chrono::{Duration, TimeZone, Utc};
use lotsense::config::ApiRole::*;
use lotsense::events::Role;
use serde_json::json;

// ------------------------------------------------------------------ entry → exit → pay (API)

async fn entry_exit_pay(site: &Site) {
    let mut kiosk = site.client(Kiosk);
    let mut cmd_rx = site
        .mqtt
        .subscribe(&site.mqtt.topics.sub("gates/main/#"))
        .await
        .unwrap();
    let t0 = Utc::now() - Duration::hours(2) + Duration::minutes(1);

    let e = expect(&kiosk.post("/api/entry", &json!({ "license_plate": "b-123 abc", "vehicle_type": "car", "timestamp": iso(t0) })).await.unwrap(), 200);
    assert_eq!(e["verdict"], "admit", "{e}");
    assert_eq!(e["license_plate"], "B123ABC");
    assert_eq!(e["gate_command"], "open");
    assert_eq!(e["space"]["space_id"], "C01", "nearest compact bay: {e}");
    let session = e["session_id"].as_str().unwrap().to_string();

    // The gate got an `open` for this decision and the display the directions.
    let mut saw_command = false;
    let mut saw_display = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !(saw_command && saw_display) && tokio::time::Instant::now() < deadline {
        if let Ok(Ok(m)) =
            tokio::time::timeout(std::time::Duration::from_secs(5), cmd_rx.recv()).await
        {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap_or_default();
            if m.topic.ends_with("/command") && v["decision_id"] == e["decision_id"] {
                assert_eq!(v["command"], "open");
                assert_eq!(v["plate"], "B123ABC");
                assert_eq!(v["session_id"], session.as_str());
                assert!(!m.retain, "gate commands are never retained");
                saw_command = true;
            }
            if m.topic.ends_with("/display") && v["plate"] == "B123ABC" {
                assert_eq!(v["space_id"], "C01");
                saw_display = true;
            }
        }
    }
    assert!(
        saw_command && saw_display,
        "command {saw_command} display {saw_display}"
    );

    // A second read a few seconds later is the same car.
    let again = expect(
        &kiosk
            .post(
                "/api/entry",
                &json!({ "license_plate": "B123ABC", "timestamp": iso(t0 + Duration::seconds(5)) }),
            )
            .await
            .unwrap(),
        200,
    );
    assert_eq!(again["verdict"], "duplicate");
    assert_eq!(again["session_id"], session.as_str());
    assert_eq!(
        site.count("SELECT COUNT(*) FROM sessions WHERE plate = 'B123ABC'")
            .await,
        1
    );

    // Exit without paying: 2 h = 4 intervals of 5.00.
    let x = expect(
        &kiosk
            .post("/api/exit", &json!({ "license_plate": "B123ABC" }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(x["verdict"], "payment_required", "{x}");
    assert_eq!(x["amount_due"], 2000);
    assert_eq!(x["gate_command"], "deny");

    // Pay; the retry with the same key is answered from the first payment.
    let body = json!({ "session_id": session, "payment_method": "card", "amount": 2000, "idempotency_key": format!("k-{session}") });
    let p = expect(&kiosk.post("/api/payments", &body).await.unwrap(), 201);
    assert_eq!(p["payment"]["status"], "succeeded");
    assert_eq!(p["remaining_due"], 0);
    assert!(p["receipt"]["number"].as_str().unwrap().starts_with("R-"));
    let pid = p["payment"]["payment_id"].as_str().unwrap().to_string();
    let again = expect(&kiosk.post("/api/payments", &body).await.unwrap(), 200);
    assert_eq!(again["payment"]["payment_id"], pid.as_str());
    assert_eq!(again["replayed"], true);
    let reused = kiosk.post("/api/payments", &json!({ "session_id": session, "payment_method": "card", "amount": 1000, "idempotency_key": format!("k-{session}") })).await.unwrap();
    assert_eq!(
        expect(&reused, 409)["error"]["code"],
        "idempotency_key_reused"
    );
    assert_eq!(
        site.count(&format!(
            "SELECT COUNT(*) FROM gateway_ledger WHERE idempotency_key = 'k-{session}'"
        ))
        .await,
        1
    );
    // Nothing more to pay.
    let more = kiosk.post("/api/payments", &json!({ "session_id": session, "payment_method": "cash", "amount": 100, "idempotency_key": "other" })).await.unwrap();
    assert_eq!(expect(&more, 409)["error"]["code"], "nothing_due");

    // Now the gate opens, the session closes and the bay is free again.
    let x = expect(
        &kiosk
            .post("/api/exit", &json!({ "license_plate": "B123ABC" }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(x["verdict"], "open", "{x}");
    assert_eq!(x["reason"], "paid");
    let mut op = site.client(Operator);
    let s = expect(
        &op.get(&format!("/api/sessions/{session}")).await.unwrap(),
        200,
    );
    assert_eq!(s["status"], "closed");
    assert_eq!(s["fee"], 2000);
    assert_eq!(s["payments"].as_array().unwrap().len(), 1);
    let parkings = expect(&op.get("/api/parkings").await.unwrap(), 200);
    let c01 = parkings["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["space_id"] == "C01")
        .unwrap()
        .clone();
    assert_eq!(c01["status"], "available");

    // Receipts: JSON and a printable page.
    let r = expect(
        &kiosk.get(&format!("/api/receipts/{pid}")).await.unwrap(),
        200,
    );
    assert_eq!(r["body"]["amount"], 2000);
    assert_eq!(r["body"]["license_plate"], "B123ABC");
    let page = kiosk
        .get(&format!("/api/receipts/{pid}/print"))
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().contains("20.00 RON"), "{}", page.text());

    // Vehicle history and the audit trail.
    let v = expect(&op.get("/api/vehicles/b123abc").await.unwrap(), 200);
    assert_eq!(v["history"].as_array().unwrap().len(), 1);
    assert_eq!(v["vehicle"]["vehicle_type"], "car");
    let mut sec = site.client(Security);
    let a = expect(&sec.get("/api/audit?subject=B123ABC").await.unwrap(), 200);
    let actions: Vec<&str> = a["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"entry_admitted")
            && actions.contains(&"exit_opened")
            && actions.contains(&"exit_held"),
        "{actions:?}"
    );

    // The simulated gate acknowledged the commands.
    let mut acked = false;
    for _ in 0..50 {
        let s = expect(
            &op.get(&format!("/api/sessions/{session}")).await.unwrap(),
            200,
        );
        if s["gate_decisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["ack_state"] == "opened")
        {
            acked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(acked, "no gate acknowledgement recorded");
}
on_both!(entry_exit_pay, 5);

// ------------------------------------------------------------------ misread exit (plate events)

async fn exit_with_misread_plate(site: &Site) {
    let t0 = Utc::now() - Duration::minutes(5);
    let e = site
        .service
        .on_plate_read(read(Role::Entry, "CJ08BOX", t0))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(e["verdict"], "admit", "{e}");
    assert_eq!(e["reason"], "admitted");
    // The exit camera reads 8 for B and 0 for O: a unique, close, confusion-aware match.
    let x = site
        .service
        .on_plate_read(read(Role::Exit, "CJ0880X", t0 + Duration::minutes(4)))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(x["match_kind"], "fuzzy", "{x}");
    assert_eq!(x["matched_plate"], "CJ08BOX");
    assert_eq!(x["verdict"], "open");
    assert_eq!(x["reason"], "free_grace");
    assert_eq!(
        site.count("SELECT COUNT(*) FROM sessions WHERE status = 'open'")
            .await,
        0
    );
    // A read that matches nothing holds the gate and raises a flag with evidence.
    let x = site
        .service
        .on_plate_read(read(Role::Exit, "ZZ999ZZ", t0 + Duration::minutes(4)))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(x["verdict"], "hold");
    assert_eq!(x["flags"][0]["kind"], "unmatched_exit");
    let flags = site
        .service
        .flags(Some("open"), Some("unmatched_exit"), None, 10)
        .await
        .unwrap();
    assert_eq!(flags.len(), 1);
    assert_eq!(
        flags[0].evidence.as_ref().unwrap()["crop"],
        "evidence/ZZ999ZZ.jpg"
    );
}
on_both!(exit_with_misread_plate, 5);

// ------------------------------------------------------------------ full lot

async fn full_lot(site: &Site) {
    let mut kiosk = site.client(Kiosk);
    for i in 0..3 {
        let e = expect(
            &kiosk
                .post(
                    "/api/entry",
                    &json!({ "license_plate": format!("FULL{i}"), "vehicle_type": "car" }),
                )
                .await
                .unwrap(),
            200,
        );
        assert_eq!(e["verdict"], "admit", "{e}");
    }
    // 2 compact + 1 large taken: the next car finds nothing that fits (EV and handicapped bays are not for it).
    let e = expect(
        &kiosk
            .post(
                "/api/entry",
                &json!({ "license_plate": "FULL9", "vehicle_type": "car" }),
            )
            .await
            .unwrap(),
        200,
    );
    assert_eq!(e["verdict"], "deny");
    assert_eq!(e["reason"], "full_for_vehicle_type");
    assert_eq!(e["gate_command"], "deny");
    // An EV still gets the EV bay.
    let e = expect(
        &kiosk
            .post(
                "/api/entry",
                &json!({ "license_plate": "EVCAR1", "vehicle_type": "ev" }),
            )
            .await
            .unwrap(),
        200,
    );
    assert_eq!(e["space"]["space_id"], "E01", "{e}");
    let a = expect(
        &kiosk.get("/api/availability?type=compact").await.unwrap(),
        200,
    );
    assert_eq!(a["by_type"][0]["available"], 0);
    assert_eq!(a["by_type"][0]["occupied"], 2);
    let bad = kiosk.get("/api/availability?type=spaceship").await.unwrap();
    assert_eq!(bad.status, 400);
}
on_both!(full_lot, 2);

// ------------------------------------------------------------------ blocked and watched plates, flags API

async fn blocked_and_watched(site: &Site) {
    let e = site
        .service
        .on_plate_read(read(Role::Entry, "BL0CK01", Utc::now()))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(e["verdict"], "deny");
    assert_eq!(e["reason"], "blocked");
    let mut kiosk = site.client(Kiosk);
    let e = expect(
        &kiosk
            .post("/api/entry", &json!({ "license_plate": "WATCH01" }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(e["verdict"], "admit");
    assert_eq!(e["flags"][0]["kind"], "watch_list_hit");

    // Staff work the flag: open → acknowledged → resolved; nothing else.
    let mut sec = site.client(Security);
    let flags = expect(
        &sec.get("/api/flags?status=open&kind=watch_list_hit")
            .await
            .unwrap(),
        200,
    );
    let id = flags["flags"][0]["flag_id"].as_str().unwrap().to_string();
    assert_eq!(flags["flags"][0]["license_plate"], "WATCH01");
    let f = expect(
        &sec.patch(
            &format!("/api/flags/{id}"),
            &json!({ "status": "acknowledged", "note": "seen on camera 2" }),
        )
        .await
        .unwrap(),
        200,
    );
    assert_eq!(f["status"], "acknowledged");
    assert_eq!(f["updated_by"], "api:test-security");
    let f = expect(
        &sec.patch(
            &format!("/api/flags/{id}"),
            &json!({ "status": "resolved" }),
        )
        .await
        .unwrap(),
        200,
    );
    assert_eq!(f["status"], "resolved");
    assert_eq!(f["note"], "seen on camera 2");
    let back = sec
        .patch(
            &format!("/api/flags/{id}"),
            &json!({ "status": "acknowledged" }),
        )
        .await
        .unwrap();
    assert_eq!(expect(&back, 409)["error"]["code"], "invalid_transition");
    // Kiosks may not read flags; boards may not enter cars.
    assert_eq!(
        expect(&kiosk.get("/api/flags").await.unwrap(), 403)["error"]["code"],
        "forbidden"
    );
    let mut board = site.client(Board);
    assert_eq!(
        board
            .post("/api/entry", &json!({ "license_plate": "X1" }))
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(board.get("/api/availability").await.unwrap().status, 200);
}
on_both!(blocked_and_watched, 3);

// ------------------------------------------------------------------ permit window (plate events)

async fn permit_window(site: &Site) {
    // Staff permit: weekdays 07:00–19:00 Bucharest. Monday 3 June 2024, 10:00 local = 07:00 UTC.
    let mon = Utc.with_ymd_and_hms(2024, 6, 3, 7, 0, 0).unwrap();
    let e = site
        .service
        .on_plate_read(read(Role::Entry, "STAFF01", mon))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(e["reason"], "permit", "{e}");
    let x = site
        .service
        .on_plate_read(read(Role::Exit, "STAFF01", mon + Duration::hours(3)))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(x["verdict"], "open", "{x}");
    assert_eq!(x["reason"], "permit");
    // Saturday: outside the window, the stay is charged.
    let sat = Utc.with_ymd_and_hms(2024, 6, 8, 7, 0, 0).unwrap();
    let e = site
        .service
        .on_plate_read(read(Role::Entry, "STAFF01", sat))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(e["reason"], "admitted", "{e}");
    let x = site
        .service
        .on_plate_read(read(Role::Exit, "STAFF01", sat + Duration::hours(1)))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(x["verdict"], "payment_required", "{x}");
    assert_eq!(x["amount_due"], 1000);
}
on_both!(permit_window, 3);

// ------------------------------------------------------------------ lists and permits changed at run time (API)

async fn lists_and_permits_at_run_time(site: &Site) {
    let mut op = site.client(Operator);
    let mut kiosk = site.client(Kiosk);
    let del = |path: String| async move {
        site.client(Operator)
            .send("DELETE", &path, None, &[])
            .await
            .unwrap()
    };

    // Block a plate: its next entry is refused, with no restart.
    let e = expect(
        &op.put(
            "/api/lists/blocked/b-77xyz",
            &json!({ "reason": "stolen, police report 123" }),
        )
        .await
        .unwrap(),
        200,
    );
    assert_eq!(e["license_plate"], "B77XYZ");
    assert_eq!(e["source"], "api");
    assert_eq!(e["reason"], "stolen, police report 123");
    let d = expect(
        &kiosk
            .post("/api/entry", &json!({ "license_plate": "B77XYZ" }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(
        (d["verdict"].as_str(), d["reason"].as_str()),
        (Some("deny"), Some("blocked")),
        "{d}"
    );
    // Both sources are listed; the config's entry cannot be removed here.
    let l = expect(&op.get("/api/lists?list=blocked").await.unwrap(), 200);
    let plates: Vec<(&str, &str)> = l["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["license_plate"].as_str().unwrap(),
                e["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(plates, [("B77XYZ", "api"), ("BL0CK01", "config")]);
    assert_eq!(
        expect(&del("/api/lists/blocked/BL0CK01".into()).await, 409)["error"]["code"],
        "config_managed"
    );
    // A restart re-seeds the config's entries and keeps the API's.
    site.service.seed(&site.config).await.unwrap();
    assert_eq!(
        expect(
            &op.get("/api/lists?license_plate=B77XYZ").await.unwrap(),
            200
        )["entries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Unblock: admitted again.
    let r = expect(&del("/api/lists/blocked/B77XYZ".into()).await, 200);
    assert_eq!(r["license_plate"], "B77XYZ");
    assert_eq!(
        expect(&del("/api/lists/blocked/B77XYZ".into()).await, 404)["error"]["code"],
        "list_entry_not_found"
    );
    let d = expect(
        &kiosk
            .post("/api/entry", &json!({ "license_plate": "B77XYZ" }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(d["verdict"], "admit", "{d}");
    // A watched plate is admitted and flagged.
    expect(
        &op.put("/api/lists/watched/W88ABC", &json!({}))
            .await
            .unwrap(),
        200,
    );
    let d = expect(
        &kiosk
            .post("/api/entry", &json!({ "license_plate": "W88ABC" }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(d["flags"][0]["kind"], "watch_list_hit", "{d}");
    // Bad requests name what is wrong; kiosks may not change lists.
    let bad = expect(&op.put("/api/lists/vip/X1", &json!({})).await.unwrap(), 422);
    assert_eq!(
        (
            bad["error"]["code"].as_str(),
            bad["error"]["field"].as_str()
        ),
        (Some("unknown_list"), Some("list"))
    );
    assert_eq!(
        expect(
            &kiosk
                .put("/api/lists/blocked/X1", &json!({}))
                .await
                .unwrap(),
            403
        )["error"]["code"],
        "forbidden"
    );

    // A staff permit for weekdays 07:00–19:00 (site time): free on Monday morning.
    let p = expect(&op.post("/api/permits", &json!({
        "license_plate": "STAFF77", "kind": "staff", "valid_from": "2024-01-01",
        "windows": [{ "days": ["mon", "tue", "wed", "thu", "fri"], "from": "07:00", "to": "19:00" }] })).await.unwrap(), 201);
    let pid = p["id"].as_str().unwrap().to_string();
    assert_eq!(
        (
            p["plate"].as_str(),
            p["source"].as_str(),
            p["covers_fees"].as_bool()
        ),
        (Some("STAFF77"), Some("api"), Some(true)),
        "{p}"
    );
    let mon = Utc.with_ymd_and_hms(2024, 6, 3, 7, 0, 0).unwrap();
    let e = site
        .service
        .on_plate_read(read(Role::Entry, "STAFF77", mon))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(e["reason"], "permit", "{e}");
    let x = site
        .service
        .on_plate_read(read(Role::Exit, "STAFF77", mon + Duration::hours(3)))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(
        (x["verdict"].as_str(), x["reason"].as_str()),
        (Some("open"), Some("permit")),
        "{x}"
    );
    // The same id twice, bad dates and bad windows are refused with the field.
    let dup = op.post("/api/permits", &json!({ "permit_id": pid, "license_plate": "STAFF77", "kind": "staff", "valid_from": "2024-01-01" })).await.unwrap();
    assert_eq!(expect(&dup, 409)["error"]["code"], "permit_exists");
    let bad = expect(&op.post("/api/permits", &json!({ "license_plate": "X2", "kind": "ev", "valid_from": "2024-05-01", "valid_until": "2024-04-01" })).await.unwrap(), 422);
    assert_eq!(bad["error"]["field"], "valid_until", "{bad}");
    let bad = expect(&op.post("/api/permits", &json!({ "license_plate": "X2", "kind": "ev", "valid_from": "2024-05-01", "windows": [{ "from": "25:00", "to": "26:00" }] })).await.unwrap(), 422);
    assert_eq!(bad["error"]["field"], "windows", "{bad}");
    assert_eq!(
        expect(
            &kiosk
                .post(
                    "/api/permits",
                    &json!({ "license_plate": "X2", "kind": "ev", "valid_from": "2024-05-01" })
                )
                .await
                .unwrap(),
            403
        )["error"]["code"],
        "forbidden"
    );
    // Revoked: the next Monday stay is charged. Config permits are changed in the config.
    let r = expect(
        &del(format!("/api/permits/{pid}?reason=left%20the%20company")).await,
        200,
    );
    assert_eq!(r["id"], pid.as_str());
    assert_eq!(
        expect(&del("/api/permits/staff-1".into()).await, 409)["error"]["code"],
        "config_managed"
    );
    let next = mon + Duration::days(7);
    let e = site
        .service
        .on_plate_read(read(Role::Entry, "STAFF77", next))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(e["reason"], "admitted", "{e}");
    let x = site
        .service
        .on_plate_read(read(Role::Exit, "STAFF77", next + Duration::hours(1)))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(
        (x["verdict"].as_str(), x["amount_due"].as_i64()),
        (Some("payment_required"), Some(1000)),
        "{x}"
    );
    let permits = expect(&op.get("/api/permits").await.unwrap(), 200);
    assert!(
        permits["permits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["id"] != pid.as_str()),
        "{permits}"
    );

    // Every change is in the audit log, with who and why.
    let mut sec = site.client(Security);
    let a = expect(&sec.get("/api/audit?subject=B77XYZ").await.unwrap(), 200);
    let actions: Vec<&str> = a["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .filter(|a| a.starts_with("list_"))
        .collect();
    assert_eq!(actions, ["list_entry_removed", "list_entry_added"], "{a}");
    let a = expect(&sec.get("/api/audit?subject=STAFF77").await.unwrap(), 200);
    let revoked = a["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "permit_revoked")
        .expect("revocation audited");
    assert_eq!(
        (revoked["actor"].as_str(), revoked["reason"].as_str()),
        (Some("api:test-operator"), Some("left the company"))
    );
}
on_both!(lists_and_permits_at_run_time, 3);

// ------------------------------------------------------------------ reservation → check-in → early departure

async fn reservation_checkin_early_departure(site: &Site) {
    let mut kiosk = site.client(Kiosk);
    let now = Utc::now();
    // Booked two hours ago for a 4 h window that started 70 minutes ago.
    let (start, end) = (
        now - Duration::minutes(70),
        now - Duration::minutes(70) + Duration::hours(4),
    );
    let booked_at = now - Duration::hours(2);
    let r = expect(&kiosk.post("/api/reservations", &json!({ "license_plate": "RES001", "space_id": "C03", "start_time": iso(start), "end_time": iso(end), "timestamp": iso(booked_at) })).await.unwrap(), 201);
    assert_eq!(r["status"], "booked");
    assert_eq!(r["space_id"], "C03");
    let price = r["price"].as_i64().unwrap();
    assert_eq!(
        price,
        8 * 500 + 1000,
        "4 h of 30-min intervals plus the reservation fee"
    );
    let rid = r["reservation_id"].as_str().unwrap().to_string();
    // The bay shows as reserved and walk-ins are sent elsewhere.
    let sp = expect(&kiosk.get("/api/parkings").await.unwrap(), 200);
    let c03 = sp["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["space_id"] == "C03")
        .unwrap()
        .clone();
    assert_eq!(c03["display_status"], "reserved");
    let p = expect(&kiosk.post("/api/payments", &json!({ "reservation_id": rid, "payment_method": "mobile", "amount": price, "idempotency_key": format!("res-{rid}"), "timestamp": iso(booked_at) })).await.unwrap(), 201);
    assert_eq!(p["payment"]["purpose"], "reservation");

    // Check in by plate at the entry gate, a minute after the start.
    let e = expect(&kiosk.post("/api/entry", &json!({ "license_plate": "RES001", "timestamp": iso(start + Duration::minutes(1)) })).await.unwrap(), 200);
    assert_eq!(e["reason"], "reservation", "{e}");
    assert_eq!(e["space"]["space_id"], "C03");
    assert_eq!(e["reservation_id"], rid.as_str());
    // Leave now, 70 min in: covered by the booking; 2 whole unused hours refunded pro rata.
    let x = expect(
        &kiosk
            .post("/api/exit", &json!({ "license_plate": "RES001" }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(x["verdict"], "open", "{x}");
    assert_eq!(x["reason"], "reservation_covered");
    let refunds = x["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 1, "{x}");
    assert_eq!(refunds[0]["amount"], price / 4 * 2);
    assert_eq!(refunds[0]["status"], "succeeded");
    let r = expect(
        &kiosk
            .get(&format!("/api/reservations/{rid}"))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(r["status"], "completed");
    assert_eq!(r["payments"].as_array().unwrap().len(), 2);
}
on_both!(reservation_checkin_early_departure, 4);

// ------------------------------------------------------------------ no-show

async fn reservation_no_show(site: &Site) {
    let mut kiosk = site.client(Kiosk);
    let now = Utc::now();
    let booked_at = now - Duration::hours(3);
    let r = expect(&kiosk.post("/api/reservations", &json!({ "license_plate": "NOSHOW1", "space_type": "compact", "start_time": iso(now - Duration::hours(1)), "end_time": iso(now + Duration::hours(1)), "timestamp": iso(booked_at) })).await.unwrap(), 201);
    let rid = r["reservation_id"].as_str().unwrap().to_string();
    assert_eq!(r["requested"], "type");
    let mut op = site.client(Operator);
    let swept = expect(
        &op.post("/api/reservations/no-shows", &json!({}))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(swept["no_shows"], json!([rid]));
    let r = expect(
        &op.get(&format!("/api/reservations/{rid}")).await.unwrap(),
        200,
    );
    assert_eq!(r["status"], "no_show");
    // The bay is free again and the no-show fee is a debt shown on the plate.
    let sp = expect(&op.get("/api/parkings").await.unwrap(), 200);
    assert!(sp["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["display_status"] != "reserved"));
    let v = expect(&op.get("/api/vehicles/NOSHOW1").await.unwrap(), 200);
    assert_eq!(v["outstanding_debts"][0]["kind"], "no_show");
    assert_eq!(v["outstanding_debts"][0]["amount"], 1500);
    // Arriving late is turned away as a reservation (admitted as a walk-in instead).
    let e = expect(
        &kiosk
            .post("/api/entry", &json!({ "license_plate": "NOSHOW1" }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(e["reason"], "admitted");
    assert_eq!(e["outstanding_debts"][0]["amount"], 1500);
    // Paying the reservation's price and the fee settles the debt.
    let due = r["price"].as_i64().unwrap() + 1500;
    let p = expect(&kiosk.post("/api/payments", &json!({ "reservation_id": rid, "payment_method": "card", "amount": due, "idempotency_key": "ns-1" })).await.unwrap(), 201);
    assert_eq!(p["remaining_due"], 0);
    let v = expect(&op.get("/api/vehicles/NOSHOW1").await.unwrap(), 200);
    assert_eq!(v["outstanding_debts"], json!([]));
}
on_both!(reservation_no_show, 3);

// ------------------------------------------------------------------ cancel

async fn reservation_cancel(site: &Site) {
    let mut kiosk = site.client(Kiosk);
    let now = Utc::now();
    let r = expect(&kiosk.post("/api/reservations", &json!({ "license_plate": "CANCEL1", "vehicle_type": "car", "start_time": iso(now + Duration::hours(5)), "end_time": iso(now + Duration::hours(6)) })).await.unwrap(), 201);
    let rid = r["reservation_id"].as_str().unwrap().to_string();
    let price = r["price"].as_i64().unwrap();
    expect(&kiosk.post("/api/payments", &json!({ "reservation_id": rid, "payment_method": "card", "amount": price, "idempotency_key": "c-1" })).await.unwrap(), 201);
    let c = expect(
        &kiosk
            .post(&format!("/api/reservations/{rid}/cancel"), &json!({}))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(c["status"], "cancelled");
    assert_eq!(
        c["refund_due"], price,
        "free cancellation more than an hour ahead"
    );
    assert_eq!(c["refunds"][0]["amount"], price);
    assert_eq!(c["refunds"][0]["status"], "succeeded");
    let again = kiosk
        .post(&format!("/api/reservations/{rid}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(expect(&again, 409)["error"]["code"], "not_cancellable");
    // The bay can be booked again for the same time.
    let r2 = kiosk.post("/api/reservations", &json!({ "license_plate": "CANCEL2", "space_id": r["space_id"], "start_time": iso(now + Duration::hours(5)), "end_time": iso(now + Duration::hours(6)) })).await.unwrap();
    expect(&r2, 201);
    // …but not twice.
    let r3 = kiosk.post("/api/reservations", &json!({ "license_plate": "CANCEL3", "space_id": r["space_id"], "start_time": iso(now + Duration::hours(5) + Duration::minutes(30)), "end_time": iso(now + Duration::hours(7)) })).await.unwrap();
    assert_eq!(expect(&r3, 409)["error"]["code"], "space_taken");
}
on_both!(reservation_cancel, 3);

// ------------------------------------------------------------------ gateway down → pay later

async fn gateway_down_pay_later(site: &Site) {
    let mut kiosk = site.client(Kiosk);
    let mut admin = site.client(Admin);
    let e = expect(&kiosk.post("/api/entry", &json!({ "license_plate": "LATER01", "timestamp": iso(Utc::now() - Duration::minutes(50)) })).await.unwrap(), 200);
    let session = e["session_id"].as_str().unwrap().to_string();
    expect(
        &admin
            .put("/api/payments/gateway", &json!({ "available": false }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(
        kiosk
            .put("/api/payments/gateway", &json!({ "available": true }))
            .await
            .unwrap()
            .status,
        403
    );

    // Paying fails without charging anything…
    let body = json!({ "session_id": session, "payment_method": "card", "amount": 1000, "idempotency_key": "later-1" });
    let p = kiosk.post("/api/payments", &body).await.unwrap();
    assert_eq!(expect(&p, 503)["error"]["code"], "gateway_unavailable");
    assert_eq!(site.count("SELECT COUNT(*) FROM gateway_ledger").await, 0);
    // …so the car may leave and the debt is recorded.
    let x = expect(
        &kiosk
            .post("/api/exit", &json!({ "license_plate": "LATER01" }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(x["verdict"], "open", "{x}");
    assert_eq!(x["reason"], "pay_later");
    assert_eq!(x["amount_due"], 1000);
    assert!(x["debt_id"].is_string());
    assert!(x["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "unpaid_exit"));

    // Next visit: the debt is shown.
    let e = expect(
        &kiosk
            .post("/api/entry", &json!({ "license_plate": "LATER01" }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(e["outstanding_debts"][0]["amount"], 1000);
    // Gateway back: the same key now charges once and settles the debt.
    expect(
        &admin
            .put("/api/payments/gateway", &json!({ "available": true }))
            .await
            .unwrap(),
        200,
    );
    let p = expect(&kiosk.post("/api/payments", &body).await.unwrap(), 200);
    assert_eq!(p["payment"]["status"], "succeeded");
    assert_eq!(p["replayed"], true);
    let p = expect(&kiosk.post("/api/payments", &body).await.unwrap(), 200);
    assert_eq!(p["payment"]["status"], "succeeded");
    assert_eq!(site.count("SELECT COUNT(*) FROM gateway_ledger").await, 1);
    let v = expect(&kiosk.get("/api/vehicles/LATER01").await.unwrap(), 200);
    assert_eq!(v["outstanding_debts"], json!([]));
}
on_both!(gateway_down_pay_later, 3);

// ------------------------------------------------------------------ errors, auth, timestamps

async fn api_errors_and_auth(site: &Site) {
    let mut anon = lotsense::http::api::client::Client::new(site.addr, None);
    let r = anon.get("/api/parkings").await.unwrap();
    assert_eq!(expect(&r, 401)["error"]["code"], "unauthenticated");
    assert!(r.header("x-request-id").is_some());
    let mut wrong = lotsense::http::api::client::Client::new(site.addr, Some("lsk_nope"));
    assert_eq!(
        expect(&wrong.get("/api/parkings").await.unwrap(), 401)["error"]["code"],
        "invalid_key"
    );
    let doc = expect(&anon.get("/api/openapi.json").await.unwrap(), 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/entry"]["post"]["x-roles"]
        .as_array()
        .unwrap()
        .contains(&json!("kiosk")));

    let mut kiosk = site.client(Kiosk);
    let bad = kiosk
        .post("/api/entry", &json!({ "license_plate": "ÄÖ!" }))
        .await
        .unwrap();
    let e = expect(&bad, 422);
    assert_eq!(e["error"]["code"], "invalid_plate");
    assert_eq!(e["error"]["field"], "license_plate");
    let bad = kiosk
        .post("/api/entry", &json!({ "plate": "X" }))
        .await
        .unwrap();
    assert_eq!(expect(&bad, 400)["error"]["code"], "invalid_body");
    let bad = kiosk
        .post(
            "/api/entry",
            &json!({ "license_plate": "X1", "gate": "nowhere" }),
        )
        .await
        .unwrap();
    assert_eq!(expect(&bad, 422)["error"]["field"], "gate");
    // Only trusted roles may say when the car passed.
    let mut sec = site.client(Security);
    let r = sec
        .post(
            "/api/entry",
            &json!({ "license_plate": "TS0001", "timestamp": iso(Utc::now()) }),
        )
        .await
        .unwrap();
    assert_eq!(expect(&r, 403)["error"]["code"], "timestamp_not_allowed");
    let r = kiosk.post("/api/entry", &json!({ "license_plate": "TS0001", "timestamp": iso(Utc::now() + Duration::hours(1)) })).await.unwrap();
    assert_eq!(expect(&r, 422)["error"]["code"], "timestamp_out_of_range");
    let r = kiosk.get("/api/sessions/nope").await.unwrap();
    assert_eq!(expect(&r, 404)["error"]["code"], "session_not_found");
    let r = kiosk
        .post(
            "/api/payments",
            &json!({ "session_id": "s", "payment_method": "card", "amount": 5 }),
        )
        .await
        .unwrap();
    assert_eq!(expect(&r, 422)["error"]["field"], "idempotency_key");
    // Sensors report bays; staff take them out of service (and only staff may override).
    let mut sensor = site.client(Sensor);
    let s = expect(
        &sensor
            .put("/api/spaces/C02/status", &json!({ "status": "occupied" }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(s["sensor_state"], "occupied");
    assert_eq!(
        sensor
            .put(
                "/api/spaces/C02/status",
                &json!({ "status": "out_of_service" })
            )
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        sensor
            .put(
                "/api/spaces/C02/status",
                &json!({ "status": "available", "override": true })
            )
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        sensor
            .put("/api/spaces/C02/status", &json!({ "status": "auto" }))
            .await
            .unwrap()
            .status,
        403
    );
    let bad = sensor
        .put("/api/spaces/C02/status", &json!({ "status": "parked" }))
        .await
        .unwrap();
    assert_eq!(expect(&bad, 422)["error"]["field"], "status");
    let mut op = site.client(Operator);
    let s = expect(
        &op.put(
            "/api/spaces/C03/status",
            &json!({ "status": "out_of_service", "reason": "repainting" }),
        )
        .await
        .unwrap(),
        200,
    );
    assert_eq!(s["display_status"], "out_of_service");
    let a = expect(&op.get("/api/availability").await.unwrap(), 200);
    assert_eq!(a["out_of_service"], 1);
}
on_both!(api_errors_and_auth, 3);

// ------------------------------------------------------------------ bays: grace, wrong bay, override

/// Bay reports held against sessions: an occupied bay with no session is
/// flagged only after the grace period (5 min here) and once per episode; a
/// car that parked in another bay than its own is named; the allocator does
/// not hand out a bay the sensors see occupied; a staff override wins over the
/// sensors until cleared, and the whole API trail is audited.
async fn bay_watch(site: &Site) {
    let mut sensor = site.client(Sensor);
    let mut op = site.client(Operator);
    let mut kiosk = site.client(Kiosk);
    let put = |id: &str| format!("/api/spaces/{id}/status");

    // C01 is seen occupied although nobody entered: no flag within the grace period.
    expect(
        &sensor
            .put(&put("C01"), &json!({ "status": "occupied" }))
            .await
            .unwrap(),
        200,
    );
    let now = Utc::now();
    assert!(site
        .service
        .review_bays(now + Duration::minutes(4))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        site.service
            .review_bays(now + Duration::minutes(6))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        site.service
            .review_bays(now + Duration::minutes(7))
            .await
            .unwrap()
            .is_empty(),
        "one flag per episode"
    );
    let f = site
        .service
        .flags(None, Some("occupied_without_session"), None, 10)
        .await
        .unwrap();
    assert_eq!(f.len(), 1);
    assert!(f[0].detail.contains("space C01 "), "{}", f[0].detail);

    // The nearest compact bay is physically taken, so an entering car gets C02.
    let e = expect(
        &kiosk
            .post("/api/entry", &json!({ "license_plate": "WB0001" }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(
        e["space"]["space_id"], "C02",
        "C01 is occupied by sensor: {e}"
    );
    // It parks in C03 instead: C02 stays free, C03 fills.
    expect(
        &sensor
            .put(&put("C02"), &json!({ "status": "available" }))
            .await
            .unwrap(),
        200,
    );
    expect(
        &sensor
            .put(&put("C03"), &json!({ "status": "occupied" }))
            .await
            .unwrap(),
        200,
    );
    let raised = site
        .service
        .review_bays(Utc::now() + Duration::minutes(6))
        .await
        .unwrap();
    assert_eq!(raised.len(), 1);
    let w = site
        .service
        .flags(None, Some("wrong_bay"), None, 10)
        .await
        .unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].license_plate.as_deref(), Some("WB0001"));
    assert_eq!(w[0].session_id.as_deref(), e["session_id"].as_str());
    assert!(
        w[0].detail.contains("space C03 ") && w[0].detail.contains("C02"),
        "{}",
        w[0].detail
    );

    // Staff override: C01 pinned free wins over the sensor (which keeps reporting).
    let v = expect(
        &op.put(
            &put("C01"),
            &json!({ "status": "available", "override": true, "reason": "sensor fault" }),
        )
        .await
        .unwrap(),
        200,
    );
    assert_eq!(v["override_state"], "free");
    assert_eq!(v["sensor_state"], "occupied");
    assert_eq!(v["override_by"], "api:test-operator");
    expect(
        &sensor
            .put(&put("C01"), &json!({ "status": "occupied" }))
            .await
            .unwrap(),
        200,
    );
    let e2 = expect(
        &kiosk
            .post("/api/entry", &json!({ "license_plate": "WB0002" }))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(
        e2["space"]["space_id"], "C01",
        "the override says C01 is free: {e2}"
    );
    // Cleared: the sensor's word counts again.
    let v = expect(
        &op.put(
            &put("C04"),
            &json!({ "status": "occupied", "override": true }),
        )
        .await
        .unwrap(),
        200,
    );
    assert_eq!(v["override_state"], "occupied");
    let v = expect(
        &op.put(&put("C04"), &json!({ "status": "auto" }))
            .await
            .unwrap(),
        200,
    );
    assert!(v["override_state"].is_null());
    let overrides = site.service.overrides().await.unwrap();
    assert_eq!(
        overrides,
        vec![("C01".to_string(), lotsense::core::BayState::Free)]
    );
    assert_eq!(site.count("SELECT COUNT(*) FROM audit_log WHERE action IN ('space_override_set', 'space_override_cleared')").await, 3);
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit_log WHERE action = 'space_sensor_reported'")
            .await,
        4
    );

    // The gate is announced to Home Assistant (retained discovery config).
    let mut rx = site
        .mqtt
        .subscribe("homeassistant/sensor/lotsense_t/+/config")
        .await
        .unwrap();
    let mut seen = std::collections::BTreeMap::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while seen.len() < 2 && tokio::time::Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(std::time::Duration::from_secs(1), rx.recv()).await
        {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            seen.insert(m.topic.clone(), v);
        }
    }
    let cmd = &seen["homeassistant/sensor/lotsense_t/gate_main_command/config"];
    assert_eq!(cmd["state_topic"], "lotsense/t/gates/main/command");
    assert_eq!(
        seen["homeassistant/sensor/lotsense_t/gate_main_state/config"]["state_topic"],
        "lotsense/t/gates/main/state"
    );
}
on_both!(bay_watch, 4);

// ------------------------------------------------------------------ per-key rate limit

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_key() {
    let site = Site::start(Db::Sqlite, parking_site(2)).await.unwrap();
    let key = lotsense::http::api::auth::generate_key();
    lotsense::http::api::auth::store_key(
        &site.store,
        "slow-board",
        lotsense::config::ApiRole::Board,
        &lotsense::http::api::auth::hash_key(&key),
        Some(60),
        "test",
    )
    .await
    .unwrap();
    let mut c = lotsense::http::api::client::Client::new(site.addr, Some(&key));
    let mut limited = None;
    for i in 0..30 {
        let r = c.get("/api/availability").await.unwrap();
        if r.status == 429 {
            limited = Some((i, r));
            break;
        }
    }
    let (i, r) = limited.expect("a 60/min key is limited within 30 quick requests");
    assert!(i >= 10, "burst of at least 10 allowed, got {i}");
    assert_eq!(r.json()["error"]["code"], "rate_limited");
    assert!(r.header("retry-after").is_some());
    // Other keys are unaffected.
    assert_eq!(
        site.client(Board)
            .get("/api/availability")
            .await
            .unwrap()
            .status,
        200
    );
    site.stop().await;
}

// ------------------------------------------------------------------ HTTP metrics

/// `/metrics` counts API requests per method, route template and status, and
/// their latency per route (plates in paths do not become series).
async fn http_metrics_per_route(site: &Site) {
    let mut kiosk = site.client(Kiosk);
    expect(
        &kiosk
            .post("/api/entry", &json!({ "license_plate": "MET001" }))
            .await
            .unwrap(),
        200,
    );
    expect(&kiosk.get("/api/vehicles/MET001").await.unwrap(), 200);
    expect(&kiosk.get("/api/vehicles/MET002").await.unwrap(), 200);
    assert_eq!(
        kiosk.get("/api/no-such-endpoint").await.unwrap().status,
        404
    );
    let m = kiosk.get("/metrics").await.unwrap();
    assert_eq!(m.status, 200);
    let text = m.text();
    for line in [
        r#"lotsense_http_requests_total{method="POST",route="/api/entry",status="200"} 1"#,
        r#"lotsense_http_requests_total{method="GET",route="/api/vehicles/{license_plate}",status="200"} 2"#,
        r#"lotsense_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"lotsense_http_request_duration_seconds_count{method="GET",route="/api/vehicles/{license_plate}"} 2"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert!(!text.contains("MET001"), "no per-plate series");
}
on_both!(http_metrics_per_route, 3);
