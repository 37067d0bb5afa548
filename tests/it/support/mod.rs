//! Helpers shared by the integration tests: the real services and the skip
//! markers ([`services`]), ports without races ([`net`]), the parking test
//! site ([`parking`]); site configs are written with
//! [`lotsense::testkit::SiteBuilder`].

pub mod net;
pub mod parking;
pub mod services;

/// Tests that must keep pace with real time on the CPU take this lock, so
/// that two of them never compete within the one test process: the
/// end-to-end plate tests run the models on both cores with timeouts that
/// assume the CPU is theirs, and the file replay test counts the frames its
/// consumer keeps up with. Other tests still run beside them.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
