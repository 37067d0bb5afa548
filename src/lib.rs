//! # lotsense
//!
//! Cameras watch a car park; lotsense turns what they see into decisions.
//!
//! ## Module map
//!
//! ```text
//!                 ┌──────────────────────── core (pure, no I/O) ────────────────────────┐
//!                 │ domain types · session/entry/exit rules · tariffs · payments ·       │
//!                 │ reservations · flags · plate matching · fusion · bay hysteresis      │
//!                 └───────────────▲───────────────────────────────▲──────────────────────┘
//!                                 │ typed values                  │
//!  ingest (GStreamer) ─Frame─► vision (pure maths + onnx) ─PlateRead─►   app (wiring)   ◄─► store (sqlx: SQLite | PostgreSQL)
//!   rtsp / file replay            letterbox, DB post, CTC,          │                   ◄─► mqtt (rumqttc; rumqttd embedded)
//!   one-frame slot per camera     formats, plate selection          │                   ◄─► http (axum: API, /healthz, /metrics)
//! ```
//!
//! - [`core`]: the business rules, pure functions over snapshots; nothing here
//!   touches a clock, a file or a socket.
//! - [`vision`]: pure vision maths (letterbox, NMS, DB post-processing, CTC,
//!   plate formats, motion gate); [`onnx`] runs the models.
//! - [`ingest`]: GStreamer pipelines from `pipelines/`, reconnects, the
//!   in-process RTSP test server.
//! - [`store`], [`mqtt`], [`http`]: adapters.
//! - [`config`]: the typed TOML config with located problems.
//! - [`models`]: the model manifest, fetch and verify.
//! - [`app`]: the only module that wires adapters together.
//! - [`cli`], [`demo`], [`telemetry`], [`metrics`]: the edges.

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
pub mod vision;
