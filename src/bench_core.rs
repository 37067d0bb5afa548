//! `lotsense bench core`: the parking core's throughput and latency through
//! the real services and database, and the HTTP API's latency under an open
//! load. Figures are printed, never asserted.
//!
//! 1. Services on SQLite, then PostgreSQL: 64 concurrent clients, each
//!    looping entry → exit (payment required) → pay (card) → exit (open).
//!    Printed: entry/exit transactions per second and per-operation p50/p99.
//! 2. HTTP API on SQLite at a fixed 500 requests/second (open loop, latency
//!    measured from each request's scheduled start), a mix of availability
//!    reads, entries, exits and vehicle lookups. Printed: p50/p99/max.
//!
//! PostgreSQL is taken from `LOTSENSE_BENCH_PG` (an admin URL, default
//! `postgres://postgres@127.0.0.1:5432/test`); a fresh database is created
//! and dropped. `LOTSENSE_BENCH_SECS` sets each phase's length (default 10);
//! `LOTSENSE_BENCH_PHASES` picks phases (comma-separated `sqlite`,
//! `postgres`, `api`; default all).

use crate::config::{Config, SpaceType, TariffConfig};
use crate::core::{PaymentMethod, Plate};
use crate::service::{
    EntryRequest, ExitRequest, ParkingService, PaymentRequest, PaymentTarget, Settings, Source,
};
use crate::store::Store;
use crate::testkit::{tariff, SiteBuilder};
use chrono::{Duration, Utc};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

const CLIENTS: usize = 64;

fn site(spaces: usize) -> Config {
    let mut site = SiteBuilder::new("bench")
        .time_zone("Europe/Bucharest")
        .currency("RON")
        .tariff(TariffConfig {
            grace_minutes: 10,
            daily_max: Some(6000),
            exit_grace_minutes: 15,
            ..tariff("std", &[SpaceType::Compact, SpaceType::Large], 30, 500)
        });
    for i in 0..spaces {
        let kind = if i % 5 == 0 {
            SpaceType::Large
        } else {
            SpaceType::Compact
        };
        site = site.space(
            format!("S{i:04}"),
            kind,
            format!("L{}", i / 100),
            "Z",
            i as u32,
        );
    }
    site.config()
}

fn secs() -> u64 {
    std::env::var("LOTSENSE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

#[derive(Default)]
struct Lat {
    entry: Vec<f64>,
    exit: Vec<f64>,
    pay: Vec<f64>,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn service(url: &str) -> anyhow::Result<ParkingService> {
    let config = site(1000);
    let store = Store::open(url, 16).await?;
    let svc = ParkingService::new(store, Settings::from_config(&config), None).await?;
    svc.seed(&config).await?;
    Ok(svc)
}

async fn cycle(
    svc: &ParkingService,
    plate: &Plate,
    key: String,
    lat: &mut Lat,
) -> anyhow::Result<()> {
    let api = || Source::Api {
        key: "bench".into(),
    };
    let t = Instant::now();
    let e = svc
        .entry(EntryRequest {
            plate: plate.clone(),
            vehicle_type: None,
            reservation_id: None,
            gate: None,
            at: Utc::now() - Duration::hours(1),
            confidence: 0.99,
            evidence: None,
            source: api(),
        })
        .await?;
    lat.entry.push(t.elapsed().as_secs_f64() * 1e3);
    anyhow::ensure!(e.verdict == "admit", "entry {} for {plate}", e.reason);
    let t = Instant::now();
    let x = svc
        .exit(ExitRequest {
            plate: plate.clone(),
            gate: None,
            at: Utc::now(),
            confidence: 0.99,
            evidence: None,
            source: api(),
        })
        .await?;
    lat.exit.push(t.elapsed().as_secs_f64() * 1e3);
    anyhow::ensure!(x.verdict == "payment_required", "exit {}", x.reason);
    let t = Instant::now();
    svc.pay(PaymentRequest {
        target: PaymentTarget::Session(e.session_id.unwrap_or_default()),
        method: PaymentMethod::Card,
        amount: x.amount_due,
        idempotency_key: key,
        actor: "bench".into(),
        at: Utc::now(),
    })
    .await?;
    lat.pay.push(t.elapsed().as_secs_f64() * 1e3);
    let t = Instant::now();
    let x = svc
        .exit(ExitRequest {
            plate: plate.clone(),
            gate: None,
            at: Utc::now(),
            confidence: 0.99,
            evidence: None,
            source: api(),
        })
        .await?;
    lat.exit.push(t.elapsed().as_secs_f64() * 1e3);
    anyhow::ensure!(x.verdict == "open", "second exit {}", x.reason);
    Ok(())
}

async fn bench_services(name: &str, url: &str) -> anyhow::Result<()> {
    let svc = service(url).await?;
    let all = Arc::new(Mutex::new(Lat::default()));
    let dur = std::time::Duration::from_secs(secs());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (svc, all) = (svc.clone(), all.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Lat::default();
            let mut n = 0u32;
            let mut errors = 0u32;
            while started.elapsed() < dur {
                let plate = Plate::parse(&format!("B{c:02}X{n:05}")).expect("plate");
                if let Err(e) = cycle(&svc, &plate, format!("bench-{c}-{n}"), &mut lat).await {
                    errors += 1;
                    if errors < 3 {
                        eprintln!("  client {c}: {e}");
                    }
                }
                n += 1;
            }
            let mut a = all.lock().await;
            a.entry.extend(lat.entry);
            a.exit.extend(lat.exit);
            a.pay.extend(lat.pay);
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut guard = all.lock().await;
    let a = &mut *guard;
    let gate_tx = a.entry.len() + a.exit.len();
    let total = gate_tx + a.pay.len();
    println!(
        "{name:<10} {CLIENTS} clients, {elapsed:.1} s: {:>7.0} entry/exit tx/s ({:.0} incl. payments/s, {} cycles)",
        gate_tx as f64 / elapsed,
        total as f64 / elapsed,
        a.pay.len()
    );
    for (op, v) in [
        ("entry", &mut a.entry),
        ("exit", &mut a.exit),
        ("payment", &mut a.pay),
    ] {
        println!(
            "{:<10}   {op:<8} p50 {:>7.2} ms   p99 {:>7.2} ms   (n = {})",
            "",
            pct(v, 0.5),
            pct(v, 0.99),
            v.len()
        );
    }
    svc.store().close().await;
    Ok(())
}

async fn bench_api(url: &str) -> anyhow::Result<()> {
    let svc = service(url).await?;
    let key = crate::http::api::auth::generate_key();
    crate::http::api::auth::store_key(
        svc.store(),
        "bench",
        crate::config::ApiRole::Admin,
        &crate::http::api::auth::hash_key(&key),
        Some(1_000_000),
        "bench",
    )
    .await?;
    let state = crate::http::AppState {
        metrics: Arc::new(crate::metrics::Metrics::new()),
        store: svc.store().clone(),
        site: "bench".into(),
        occupancy: None,
        parking: Some(svc.clone()),
    };
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let (addr, _task) = crate::http::serve("127.0.0.1:0", crate::http::router(state), async move {
        let _ = rx.wait_for(|v| *v).await;
    })
    .await?;
    let rate = 500.0;
    let conns = 32usize;
    let dur = std::time::Duration::from_secs(secs());
    let lat = Arc::new(Mutex::new((Vec::new(), 0usize)));
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (lat, key) = (lat.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = crate::http::api::client::Client::new(addr, Some(&key));
            let period = std::time::Duration::from_secs_f64(conns as f64 / rate);
            let mut tick =
                tokio::time::interval_at(started + period.mul_f64(c as f64 / conns as f64), period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let (mut mine, mut errors) = (Vec::new(), 0usize);
            let mut n = 0u32;
            loop {
                let scheduled = tick.tick().await;
                if scheduled.duration_since(started) >= dur {
                    break;
                }
                let plate = format!("A{c:02}Y{:05}", n / 4);
                let r = match n % 4 {
                    0 => client.get("/api/availability").await,
                    1 => {
                        client
                            .post("/api/entry", &serde_json::json!({ "license_plate": plate }))
                            .await
                    }
                    2 => client.get(&format!("/api/vehicles/{plate}")).await,
                    _ => {
                        client
                            .post("/api/exit", &serde_json::json!({ "license_plate": plate }))
                            .await
                    }
                };
                mine.push(scheduled.elapsed().as_secs_f64() * 1e3);
                if !matches!(r, Ok(ref r) if r.status < 300) {
                    errors += 1;
                }
                n += 1;
            }
            let mut l = lat.lock().await;
            l.0.extend(mine);
            l.1 += errors;
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut guard = lat.lock().await;
    let errors = guard.1;
    let lats = &mut guard.0;
    let n = lats.len();
    let max = lats.iter().copied().fold(0.0, f64::max);
    println!(
        "api        {rate:.0} req/s target, {:.0} achieved over {elapsed:.1} s ({n} requests, {} errors): p50 {:.2} ms   p99 {:.2} ms   max {:.1} ms",
        n as f64 / elapsed,
        errors,
        pct(lats, 0.5),
        pct(lats, 0.99),
        max
    );
    let _ = tx.send(true);
    svc.store().close().await;
    Ok(())
}

/// Runs every phase and prints the figures.
pub async fn run() -> anyhow::Result<()> {
    let dir =
        std::env::temp_dir().join(format!("lotsense-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    println!(
        "lotsense bench core ({} build): entry → exit → pay → exit through the services",
        if cfg!(debug_assertions) {
            "DEBUG — use --release for figures"
        } else {
            "release"
        }
    );
    let phases =
        std::env::var("LOTSENSE_BENCH_PHASES").unwrap_or_else(|_| "sqlite,postgres,api".into());
    let phase = |p: &str| phases.split(',').any(|x| x.trim() == p);
    if phase("sqlite") {
        bench_services("sqlite", &format!("sqlite://{}/core.db", dir.display())).await?;
    }
    let admin = std::env::var("LOTSENSE_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    match if phase("postgres") {
        create_pg(&admin).await.map(Some)
    } else {
        Ok(None)
    } {
        Ok(None) => {}
        Ok(Some((url, name))) => {
            let r = bench_services("postgres", &url).await;
            drop_pg(&admin, &name).await;
            r?;
        }
        Err(e) => println!("postgres   skipped: {e} (set LOTSENSE_BENCH_PG to an admin URL)"),
    }
    if phase("api") {
        bench_api(&format!("sqlite://{}/api.db", dir.display())).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn create_pg(admin: &str) -> anyhow::Result<(String, String)> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    let name = format!("lotsense_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let i = admin
        .rfind('/')
        .ok_or_else(|| anyhow::anyhow!("admin URL needs a database"))?;
    Ok((format!("{}/{name}", &admin[..i]), name))
}

async fn drop_pg(admin: &str, name: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}
