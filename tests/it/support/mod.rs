//! Helpers shared by the integration tests: the real services and the skip
//! markers ([`services`]), ports without races ([`net`]), the parking test
//! site ([`parking`]); site configs are written with
//! [`lotsense::testkit::SiteBuilder`].

pub mod net;
pub mod parking;
pub mod services;

/// The end-to-end plate tests run the real models on both cores with
/// timeouts that assume the CPU is theirs; they take this lock so that two
/// of them never compete within the one test process. Other tests still run
/// beside them.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
