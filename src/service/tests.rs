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

#[tokio::test]
async fn an_admitted_car_gets_a_bay_a_second_read_is_a_duplicate_and_a_late_one_supersedes() {
    let dir = tempfile::tempdir().unwrap();
    let svc = site(dir.path()).await;
    let first = svc.entry(entry("B123ABC", at(8, 0))).await.unwrap();
    assert_eq!(first.verdict, "admit");
    assert_eq!(first.gate_command, "open");
    let bay = first.space.as_ref().map(|s| s.space_id.as_str());
    assert_eq!(bay, Some("A1"), "the best-ranked free bay");
    let session = first.session_id.clone().unwrap();

    // Within the dedupe window: the same car, read again.
    let again = svc
        .entry(entry("B123ABC", at(8, 0) + Duration::seconds(5)))
        .await
        .unwrap();
    assert_eq!(again.verdict, "duplicate", "{again:?}");
    assert_eq!(again.session_id.as_deref(), Some(session.as_str()));
    let open = svc.sessions(Some("open"), None, 10).await.unwrap();
    assert_eq!(open.len(), 1, "one open session per plate");

    let audit = svc.audit_log(Some(&session), 10).await.unwrap();
    assert!(
        audit.iter().any(|r| r.action == "session_opened"),
        "{audit:?}"
    );

    // An hour later at the entry again: the exit was missed; the old
    // session is closed as superseded and flagged, the car admitted anew.
    let later = svc.entry(entry("B123ABC", at(9, 0))).await.unwrap();
    assert_eq!(later.verdict, "admit", "{later:?}");
    assert_ne!(later.session_id.as_deref(), Some(session.as_str()));
    assert!(
        later.flags.iter().any(|f| f.kind == "duplicate_session"),
        "{later:?}"
    );
    let old = svc.session(&session).await.unwrap();
    assert_eq!(old.session.status, "superseded", "{old:?}");
}

#[tokio::test]
async fn a_blocked_plate_is_denied_and_no_session_opens() {
    let dir = tempfile::tempdir().unwrap();
    let svc = site(dir.path()).await;
    let out = svc.entry(entry("STOLEN1", at(9, 0))).await.unwrap();
    assert_eq!(out.verdict, "deny");
    assert_eq!(out.reason, "blocked");
    assert_eq!(out.gate_command, "deny");
    assert!(out.session_id.is_none());
    assert!(svc.sessions(None, None, 10).await.unwrap().is_empty());
    let audit = svc.audit_log(Some("STOLEN1"), 10).await.unwrap();
    assert_eq!(audit[0].action, "entry_denied", "{audit:?}");
}

#[tokio::test]
async fn an_exit_is_priced_paid_and_then_opens_and_closes_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let svc = site(dir.path()).await;
    let admitted = svc.entry(entry("B123ABC", at(8, 0))).await.unwrap();
    let session = admitted.session_id.clone().unwrap();

    // 90 minutes: two started hours at 100.
    let held = svc.exit(exit("B123ABC", at(9, 30))).await.unwrap();
    assert_eq!(held.verdict, "payment_required", "{held:?}");
    assert_eq!(held.amount_due, 200);
    assert_eq!(held.gate_command, "deny");

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
    assert_eq!(paid.payment.status, "succeeded");

    let out = svc.exit(exit("B123ABC", at(9, 33))).await.unwrap();
    assert_eq!(out.gate_command, "open", "{out:?}");
    assert_eq!(out.reason, "paid");
    let view = svc.session(&session).await.unwrap();
    assert_eq!(view.session.status, "closed", "{view:?}");
}

#[tokio::test]
async fn an_exit_read_with_look_alike_characters_finds_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let svc = site(dir.path()).await;
    let admitted = svc.entry(entry("BO1ABC", at(8, 0))).await.unwrap();
    // The exit camera reads 8 for B and 0 for O: one close, unique
    // candidate (what is due does not matter here).
    let out = svc.exit(exit("801ABC", at(8, 10))).await.unwrap();
    assert_eq!(out.match_kind, "fuzzy", "{out:?}");
    assert_eq!(out.session_id, admitted.session_id);
    assert_eq!(out.matched_plate.as_deref(), Some("BO1ABC"));
}
