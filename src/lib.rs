//! # lotsense
//!
//! Cameras watch a car park; lotsense turns what they see into decisions.
//!
//! ## Module map
//!
//! ```text
//!              ┌──────────────────────────── core (pure, no I/O) ────────────────────────────┐
//!              │ domain types · entry/exit rules · confusion-aware matching · tariffs ·       │
//!              │ payments · reservations · flags · offline decisions · fusion · hysteresis    │
//!              └──────▲──────────────────────────▲──────────────────────────────▲─────────────┘
//!                     │ typed values             │                              │
//!  ingest ─Frame─► anpr (engine, live, eval) ─PlateRead─► service ◄── http/api (axum, OpenAPI, keys)
//!  (GStreamer,     uses vision (pure maths)      (events)   │   (orchestration: snapshot in a
//!   one-frame       + onnx (ort sessions)                   │    transaction → core → persist,
//!   slot/camera)                                            │    audit, gate commands)
//!        └─Frame─► occupancy (warp, batched classifier, hysteresis, boards) ─BayUpdate─┘
//!                                                          store (sqlx Any: SQLite | PostgreSQL)
//!                                                          mqtt  (rumqttc → rumqttd in-process | Mosquitto)
//! ```
//!
//! - [`core`]: the business rules, pure functions over snapshots; nothing here
//!   touches a clock, a file or a socket.
//! - [`vision`]: pure vision maths (letterbox, tensors, DB post-processing,
//!   NMS, CTC, plate formats, plate selection, motion gate, crops).
//! - [`onnx`]: ONNX Runtime loading and model sessions; [`models`]: the
//!   manifest, fetch and verify.
//! - [`anpr`]: the plate engine (detector → reader → formats → selection),
//!   the live gate-camera pipeline, evidence, `read`/`eval`/`bench anpr`.
//! - [`occupancy`]: bays, warp, classifier, sampler, boards over MQTT,
//!   `eval`/`bench occupancy`, `bays preview`.
//! - [`ingest`]: GStreamer pipelines from `pipelines/`, reconnects, the
//!   in-process RTSP test server.
//! - [`service`]: the parking application services around the core;
//!   [`store`], [`mqtt`], [`http`]: adapters.
//! - [`events`]: the versioned events passed between the two sides.
//! - [`config`]: the typed TOML config with located problems.
//! - [`app`]: the only place the adapters are wired together, with the
//!   channel policies.
//! - [`cli`], [`demo`], [`telemetry`], [`metrics`], [`bench_core`]: the edges.

#![recursion_limit = "256"]

pub mod anpr;
pub mod app;
pub mod bench_core;
pub mod cli;
pub mod config;
pub mod core;
pub mod demo;
pub mod events;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod models;
pub mod mqtt;
pub mod occupancy;
pub mod onnx;
pub mod service;
pub mod store;
pub mod telemetry;
/// Test and bench support: the site config builder of the integration tests
/// and `lotsense bench core`.
pub mod testkit;
pub mod vision;

#[cfg(test)]
mod architecture;
