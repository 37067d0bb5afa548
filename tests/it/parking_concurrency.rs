//! Races and invariants, on SQLite and PostgreSQL: 100 clients reserving one
//! bay for overlapping times (exactly one wins), 100 entries racing for the
//! last 10 bays (exactly 10 sessions), the database itself refusing double
//! bookings and a second open session, and gates working with the database down.

use crate::support::parking::decided;
use crate::support::parking::*;
use chrono::{Duration, Utc};
use lotsense::config::ApiRole::*;
use lotsense::config::SpaceType;
use lotsense::core::Plate;
use lotsense::events::Role;
use lotsense::service::{EntryRequest, ReservationRequest, Source};
use lotsense::testkit::tariff;
use serde_json::json;

async fn hundred_reserve_one_space(site: &Site) {
    let now = Utc::now();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let mut c = site.client(Kiosk);
        tasks.push(tokio::spawn(async move {
            // Overlapping windows: all contain [now+2h, now+3h).
            let start = now + Duration::hours(1) + Duration::minutes(i % 60);
            let body = json!({ "license_plate": format!("RACE{i:03}"), "space_id": "C01", "start_time": iso(start), "end_time": iso(start + Duration::hours(2)) });
            c.post("/api/reservations", &body).await.unwrap()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            201 => ok += 1,
            409 => assert_eq!(r.json()["error"]["code"], "space_taken"),
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    assert_eq!(ok, 1, "exactly one overlapping booking of the bay succeeds");
    assert_eq!(
        site.count(
            "SELECT COUNT(*) FROM reservations WHERE space_id = 'C01' AND status = 'booked'"
        )
        .await,
        1
    );
}
on_both!(hundred_reserve_one_space, 3);

async fn hundred_entries_last_ten_spaces(site: &Site) {
    // 15 compact bays, 5 already taken: the last 10 (the large/EV/handicapped
    // bays are out of service so only compact bays count).
    let mut op = site.client(Operator);
    for id in ["L01", "E01", "H01"] {
        expect(
            &op.put(
                &format!("/api/spaces/{id}/status"),
                &json!({ "status": "out_of_service" }),
            )
            .await
            .unwrap(),
            200,
        );
    }
    for i in 0..5 {
        let e = site
            .service
            .on_plate_read(read(Role::Entry, &format!("PRE{i}"), Utc::now()))
            .await
            .map(|o| decided(&o))
            .unwrap();
        assert_eq!(e["verdict"], "admit");
    }
    let mut tasks = Vec::new();
    for i in 0..100 {
        let svc = site.service.clone();
        tasks.push(tokio::spawn(async move {
            // Half through plate events, half through the API path's service call.
            svc.entry(EntryRequest {
                plate: Plate::parse(&format!("RUSH{i:03}")).unwrap(),
                vehicle_type: None,
                reservation_id: None,
                gate: Some("main".into()),
                at: Utc::now(),
                confidence: 0.99,
                evidence: None,
                source: if i % 2 == 0 {
                    Source::Api { key: "t".into() }
                } else {
                    Source::Camera {
                        camera: "main-in".into(),
                        read_id: format!("r{i}"),
                    }
                },
            })
            .await
            .unwrap()
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        let out = t.await.unwrap();
        match out.verdict.as_str() {
            "admit" => admitted += 1,
            "deny" => assert_eq!(out.reason, "full_for_vehicle_type"),
            v => panic!("unexpected verdict {v}"),
        }
    }
    assert_eq!(admitted, 10);
    assert_eq!(
        site.count("SELECT COUNT(*) FROM sessions WHERE status = 'open' AND plate LIKE 'RUSH%'")
            .await,
        10
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM spaces WHERE status = 'occupied'")
            .await,
        15
    );
    // Every open session holds its own bay.
    assert_eq!(
        site.count("SELECT COUNT(DISTINCT space_id) FROM sessions WHERE status = 'open'")
            .await,
        15
    );
    assert_eq!(site.count("SELECT COUNT(*) FROM sessions s JOIN spaces p ON p.session_id = s.id WHERE s.status = 'open'").await, 15);
}
on_both!(hundred_entries_last_ten_spaces, 15);

async fn same_plate_racing_opens_one_session(site: &Site) {
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let svc = site.service.clone();
        tasks.push(tokio::spawn(async move {
            svc.on_plate_read(read(Role::Entry, "TWIN001", Utc::now()))
                .await
                .map(|o| decided(&o))
                .unwrap()
        }));
    }
    let mut verdicts = Vec::new();
    for t in tasks {
        verdicts.push(t.await.unwrap()["verdict"].as_str().unwrap().to_string());
    }
    assert_eq!(
        verdicts.iter().filter(|v| *v == "admit").count(),
        1,
        "{verdicts:?}"
    );
    assert_eq!(verdicts.iter().filter(|v| *v == "duplicate").count(), 19);
    assert_eq!(
        site.count("SELECT COUNT(*) FROM sessions WHERE plate = 'TWIN001'")
            .await,
        1
    );
}
on_both!(same_plate_racing_opens_one_session, 5);

/// The invariants hold even against SQL that skips the services.
async fn database_enforces_invariants(site: &Site) {
    let pool = site.store.pool();
    let ins = |id: &str, start: i64, end: i64| {
        format!("INSERT INTO reservations (id, plate, space_id, space_type, requested, start_ms, end_ms, status, price_minor, currency, created_ms, updated_ms) VALUES ('{id}', 'P', 'C01', 'compact', 'space', {start}, {end}, 'booked', 0, 'RON', 0, 0)")
    };
    sqlx::query(sqlx::AssertSqlSafe(ins("a", 1000, 2000)))
        .execute(pool)
        .await
        .unwrap();
    let e = sqlx::query(sqlx::AssertSqlSafe(ins("b", 1500, 2500)))
        .execute(pool)
        .await
        .unwrap_err();
    assert!(lotsense::store::is_overlap_violation(&e), "{e}");
    // Back to back is fine (half-open windows); a cancelled booking does not count.
    sqlx::query(sqlx::AssertSqlSafe(ins("c", 2000, 3000)))
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE reservations SET status = 'cancelled' WHERE id = 'a'")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(ins("d", 1000, 2000)))
        .execute(pool)
        .await
        .unwrap();
    let e = sqlx::query("UPDATE reservations SET status = 'booked' WHERE id = 'a'")
        .execute(pool)
        .await
        .unwrap_err();
    assert!(lotsense::store::is_overlap_violation(&e), "{e}");
    // One open session per plate.
    let s = |id: &str| {
        format!("INSERT INTO sessions (id, plate, vehicle_type, status, started_ms, entry_reason, currency) VALUES ('{id}', 'DUP1', 'car', 'open', 0, 'admitted', 'RON')")
    };
    sqlx::query(sqlx::AssertSqlSafe(s("s1")))
        .execute(pool)
        .await
        .unwrap();
    let e = sqlx::query(sqlx::AssertSqlSafe(s("s2")))
        .execute(pool)
        .await
        .unwrap_err();
    assert!(lotsense::store::is_unique_violation(&e), "{e}");
    // One payment per idempotency key.
    let p = |id: &str| {
        format!("INSERT INTO payments (id, idempotency_key, kind, purpose, method, status, amount_minor, currency, actor, created_ms) VALUES ('{id}', 'same', 'charge', 'parking', 'card', 'succeeded', 5, 'RON', 't', 0)")
    };
    sqlx::query(sqlx::AssertSqlSafe(p("p1")))
        .execute(pool)
        .await
        .unwrap();
    assert!(sqlx::query(sqlx::AssertSqlSafe(p("p2")))
        .execute(pool)
        .await
        .is_err());
}
on_both!(database_enforces_invariants, 2);

async fn type_bookings_fill_then_refuse(site: &Site) {
    // 3 compact bays: three overlapping type bookings get three different bays, the fourth is refused.
    let now = Utc::now();
    let mut bays = Vec::new();
    for i in 0..4 {
        let r = site
            .service
            .reserve(ReservationRequest {
                plate: Plate::parse(&format!("TYPE{i}")).unwrap(),
                space_id: None,
                space_type: Some(lotsense::core::SpaceType::Compact),
                vehicle_type: None,
                start: now + Duration::hours(2),
                end: now + Duration::hours(4),
                actor: "t".into(),
                now,
            })
            .await;
        match (i, r) {
            (0..=2, Ok(r)) => bays.push(r.reservation.space_id),
            (3, Err(e)) => assert!(e.to_string().contains("no bay"), "{e}"),
            (i, r) => panic!("booking {i}: {:?}", r.map(|r| r.reservation.space_id)),
        }
    }
    bays.sort();
    assert_eq!(bays, ["C01", "C02", "C03"]);
}
on_both!(type_bookings_fill_then_refuse, 3);

/// With the database gone, permit and allow-list plates still get through
/// (from the in-memory cache); others wait for staff. Decisions are queued.
async fn gates_work_with_the_database_down(site: &Site) {
    site.store.pool().close().await;
    let out = site
        .service
        .on_plate_read(read(
            Role::Entry,
            "STAFF01",
            chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 6, 3, 7, 0, 0).unwrap(),
        ))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(out["verdict"], "admit", "{out}");
    assert_eq!(out["reason"], "permit");
    assert_eq!(out["offline"], true);
    let out = site
        .service
        .on_plate_read(read(Role::Entry, "RANDOM1", Utc::now()))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(out["verdict"], "deny");
    assert_eq!(out["reason"], "offline_no_entitlement");
    let out = site
        .service
        .on_plate_read(read(Role::Entry, "BL0CK01", Utc::now()))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(out["reason"], "blocked");
    let out = site
        .service
        .on_plate_read(read(Role::Exit, "RANDOM1", Utc::now()))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(out["verdict"], "hold");
    assert_eq!(site.service.offline_backlog(), 4);
    assert!(site.service.flush_offline().await.is_err());
    assert_eq!(site.service.offline_backlog(), 4, "kept for later");
}
on_both!(gates_work_with_the_database_down, 2);

/// Offline decisions are written once the database is back (same file, new pool).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_decisions_are_written_when_the_database_returns() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/o.db", dir.path().display());
    let config = parking_site(2).config();
    // Seed once so the cache has the permit.
    let store = lotsense::store::Store::open(&url, 4).await.unwrap();
    let svc = lotsense::service::ParkingService::new(
        store.clone(),
        lotsense::service::Settings::from_config(&config),
        None,
    )
    .await
    .unwrap();
    svc.seed(&config).await.unwrap();
    store.pool().close().await;
    let monday = chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 6, 3, 7, 0, 0).unwrap();
    let out = svc
        .on_plate_read(read(Role::Entry, "STAFF01", monday))
        .await
        .map(|o| decided(&o))
        .unwrap();
    assert_eq!(out["offline"], true);
    assert_eq!(svc.offline_backlog(), 1);
    // "The database is back": a service over a fresh pool takes over the queue's work.
    // (In a running lotsense the same pool reconnects; here the pool was closed for good.)
    let store2 = lotsense::store::Store::open(&url, 4).await.unwrap();
    let svc2 = lotsense::service::ParkingService::new(
        store2.clone(),
        lotsense::service::Settings::from_config(&config),
        None,
    )
    .await
    .unwrap();
    svc.adopt_offline_into(&svc2);
    assert_eq!(svc2.flush_offline().await.unwrap(), 1);
    let n: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) FROM gate_decisions WHERE source = 'offline'")
            .fetch_one(store2.pool())
            .await
            .unwrap(),
        0,
    );
    assert_eq!(n, 1);
    let n: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) FROM sessions WHERE plate = 'STAFF01' AND status = 'open'")
            .fetch_one(store2.pool())
            .await
            .unwrap(),
        0,
    );
    assert_eq!(n, 1, "the admitted car has a session so its exit matches");
    let n: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) FROM audit_log WHERE action = 'entry_admitted'")
            .fetch_one(store2.pool())
            .await
            .unwrap(),
        0,
    );
    assert_eq!(n, 1);
}

/// The running app takes plate reads on `Running::plate_tx` and decides them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_decides_plate_reads_from_its_channel() {
    let dir = tempfile::tempdir().unwrap();
    let config = SiteBuilder::new("app")
        .currency("RON")
        .sqlite_in(dir.path(), "a.db")
        .mqtt_listen("127.0.0.1:0")
        .http_listen("127.0.0.1:0")
        .space("A1", SpaceType::Compact, "0", "A", 0)
        .tariff(tariff("t", &[SpaceType::Compact], 60, 100))
        .api_key(
            "ops",
            Operator,
            &lotsense::http::api::auth::hash_key("lsk_test_operator_key"),
            None,
        )
        .config();
    let running = lotsense::app::start(config).await.unwrap();
    let mut r = read(Role::Entry, "APP0001", Utc::now());
    r.gate = None;
    running.plate_tx.send(r).await.unwrap();
    let mut c =
        lotsense::http::api::client::Client::new(running.http_addr, Some("lsk_test_operator_key"));
    let mut found = None;
    for _ in 0..50 {
        let v = expect(&c.get("/api/sessions?status=open").await.unwrap(), 200);
        if let Some(s) = v["sessions"].as_array().unwrap().first() {
            found = Some(s.clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let s = found.expect("a session opened from the plate read");
    assert_eq!(s["license_plate"], "APP0001");
    assert_eq!(s["space_id"], "A1");
    running.shutdown().await;
}
