//! The entry and exit use cases against a real SQLite file (a temporary
//! folder per test): what a gate read decides, what is written, and what
//! the audit log says. The HTTP layer and the camera path call the same
//! methods; their own tests are in `tests/it`.

use super::*;
use crate::config::CameraRole;
use crate::core::{PaymentMethod, SpaceType};
use crate::testkit::{gate, gate_camera, tariff, SiteBuilder};
use chrono::TimeZone;

/// A site with one gate, two compact bays, 100 per started hour, a blocked
/// plate, and its service over a fresh SQLite file.
pub(crate) async fn site(dir: &std::path::Path) -> ParkingService {
    let config = SiteBuilder::new("unit")
        .time_zone("UTC")
        .currency("EUR")
        .sqlite_in(dir, "lot.db")
        .gate(gate("main"))
        // Never opened: the service runs no cameras, but a gate needs one.
        .camera(gate_camera(
            "cam-main",
            CameraRole::Entry,
            "rtsp://127.0.0.1:9/none",
            "main",
        ))
        .space("A1", SpaceType::Compact, "L0", "A", 1)
        .space("A2", SpaceType::Compact, "L0", "A", 2)
        .tariff(tariff("std", &[SpaceType::Compact], 60, 100))
        .blocked(&["STOLEN1"])
        .config();
    let store = Store::open(&config.storage.url, 4).await.unwrap();
    let svc = ParkingService::new(store, Settings::from_config(&config), None)
        .await
        .unwrap();
    svc.seed(&config).await.unwrap();
    svc
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
}

fn entry(plate: &str, when: DateTime<Utc>) -> EntryRequest {
    EntryRequest {
        plate: Plate::parse(plate).unwrap(),
        vehicle_type: Some(VehicleType::Car),
        reservation_id: None,
        gate: Some("main".into()),
        at: when,
        confidence: 0.99,
        evidence: None,
        source: Source::System,
    }
}

fn exit(plate: &str, when: DateTime<Utc>) -> ExitRequest {
    ExitRequest {
        plate: Plate::parse(plate).unwrap(),
        gate: Some("main".into()),
        at: when,
        confidence: 0.99,
        evidence: None,
        source: Source::System,
    }
}

fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

#[tokio::test]
async fn an_admitted_car_gets_a_bay_a_second_read_is_a_duplicate_and_a_late_one_supersedes() {
    let dir = tempfile::tempdir().unwrap();
    let svc = site(dir.path()).await;
    let first = json(&svc.entry(entry("B123ABC", at(8, 0))).await.unwrap());
    assert_eq!(first["verdict"], "admit");
    assert_eq!(first["gate_command"], "open");
    assert_eq!(first["space"]["space_id"], "A1", "the best-ranked free bay");
    let session = first["session_id"].as_str().unwrap().to_string();

    // Within the dedupe window: the same car, read again.
    let again = json(
        &svc.entry(entry("B123ABC", at(8, 0) + Duration::seconds(5)))
            .await
            .unwrap(),
    );
    assert_eq!(again["verdict"], "duplicate", "{again}");
    assert_eq!(again["session_id"], session.as_str());
    let open = svc.sessions(Some("open"), None, 10).await.unwrap();
    assert_eq!(open.len(), 1, "one open session per plate");

    let audit = json(&svc.audit_log(Some(&session), 10).await.unwrap());
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "session_opened"),
        "{audit}"
    );

    // An hour later at the entry again: the exit was missed; the old
    // session is closed as superseded and flagged, the car admitted anew.
    let later = json(&svc.entry(entry("B123ABC", at(9, 0))).await.unwrap());
    assert_eq!(later["verdict"], "admit", "{later}");
    assert_ne!(later["session_id"], session.as_str());
    assert!(
        later["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "duplicate_session"),
        "{later}"
    );
    let old = json(&svc.session(&session).await.unwrap());
    assert_eq!(old["status"], "superseded", "{old}");
}

#[tokio::test]
async fn a_blocked_plate_is_denied_and_no_session_opens() {
    let dir = tempfile::tempdir().unwrap();
    let svc = site(dir.path()).await;
    let out = json(&svc.entry(entry("STOLEN1", at(9, 0))).await.unwrap());
    assert_eq!(out["verdict"], "deny");
    assert_eq!(out["reason"], "blocked");
    assert_eq!(out["gate_command"], "deny");
    assert!(out["session_id"].is_null());
    assert!(svc.sessions(None, None, 10).await.unwrap().is_empty());
    let audit = json(&svc.audit_log(Some("STOLEN1"), 10).await.unwrap());
    assert_eq!(audit[0]["action"], "entry_denied", "{audit}");
}

#[tokio::test]
async fn an_exit_is_priced_paid_and_then_opens_and_closes_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let svc = site(dir.path()).await;
    let admitted = json(&svc.entry(entry("B123ABC", at(8, 0))).await.unwrap());
    let session = admitted["session_id"].as_str().unwrap().to_string();

    // 90 minutes: two started hours at 100.
    let held = json(&svc.exit(exit("B123ABC", at(9, 30))).await.unwrap());
    assert_eq!(held["verdict"], "payment_required", "{held}");
    assert_eq!(held["amount_due"], 200);
    assert_eq!(held["gate_command"], "deny");

    let paid = svc
        .pay(PaymentRequest {
            target: PaymentTarget::Session(session.clone()),
            method: PaymentMethod::Cash,
            amount: 200,
            idempotency_key: "desk-1".into(),
            actor: "test".into(),
            at: at(9, 31),
        })
        .await
        .unwrap();
    assert_eq!(json(&paid)["payment"]["status"], "succeeded");

    let out = json(&svc.exit(exit("B123ABC", at(9, 33))).await.unwrap());
    assert_eq!(out["gate_command"], "open", "{out}");
    assert_eq!(out["reason"], "paid");
    let view = json(&svc.session(&session).await.unwrap());
    assert_eq!(view["status"], "closed", "{view}");
}

#[tokio::test]
async fn an_exit_read_with_look_alike_characters_finds_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let svc = site(dir.path()).await;
    let admitted = json(&svc.entry(entry("BO1ABC", at(8, 0))).await.unwrap());
    // The exit camera reads 8 for B and 0 for O: one close, unique
    // candidate (what is due does not matter here).
    let out = json(&svc.exit(exit("801ABC", at(8, 10))).await.unwrap());
    assert_eq!(out["match_kind"], "fuzzy", "{out}");
    assert_eq!(out["session_id"], admitted["session_id"]);
    assert_eq!(out["matched_plate"], "BO1ABC");
}
