//! lotsense's integration tests, in one binary (one link of GStreamer,
//! OpenCV and ort instead of one per area): one module per area, shared
//! helpers in [`support`].
//!
//! All tests share this process and run on parallel threads, so none may
//! change process-wide state: no environment variables, no working
//! directory (paths are relative to the package root, where cargo runs
//! tests), no fixed ports (servers bind port 0 and report the port they
//! got; see `support::net`). Process-wide initialisation is once-only in
//! lotsense itself (ONNX Runtime behind a `OnceLock`, GStreamer's own init).
//! Child processes (`CARGO_BIN_EXE_lotsense`) get their settings through
//! their arguments, environment and config file.

mod support;

mod anpr;
mod anpr_proposals;
mod config;
mod group_commit;
mod ingest;
mod models;
mod mqtt;
mod occupancy;
mod occupancy_e2e;
mod onnx;
mod parking_concurrency;
mod parking_crash;
mod parking_scenarios;
mod storage;
