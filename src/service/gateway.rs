//! Payment gateways. A [`PaymentGateway`] charges and refunds by idempotency
//! key: asking twice with one key must never move money twice. That is what
//! makes a crash between "payment requested" and "payment recorded" safe: on
//! restart the service asks again with the same key and gets the same answer.

use crate::core::{Money, PaymentMethod};
use crate::store as st;
use crate::store::{Db, DbText};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The gateway cannot be reached; nothing was charged. Retry later with the same key.
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
    /// The gateway refused the charge (final for this key).
    #[error("declined: {0}")]
    Declined(String),
}

/// A money movement asked of the gateway.
#[derive(Debug, Clone)]
pub struct GatewayRequest<'a> {
    pub idempotency_key: &'a str,
    pub method: PaymentMethod,
    pub amount: Money,
}

pub trait PaymentGateway: Send + Sync {
    /// Charges once per key; returns the gateway's reference.
    fn charge<'a>(&'a self, req: GatewayRequest<'a>)
        -> BoxFuture<'a, Result<String, GatewayError>>;
    /// Refunds once per key; returns the gateway's reference.
    fn refund<'a>(&'a self, req: GatewayRequest<'a>)
        -> BoxFuture<'a, Result<String, GatewayError>>;
    /// Whether the gateway is believed to be up (drives the pay-later exit rule).
    fn is_available(&self) -> bool;
    /// Switches a test/demo gateway up or down; real gateways ignore it.
    fn set_available(&self, _up: bool) {}
}

/// The built-in gateway for demos and tests. It approves everything while
/// up, fails with `Unavailable` while switched down, and keeps its ledger in
/// the database (`gateway_ledger`, one row per key) like a real processor
/// would on its side, so a re-driven charge is recognised after a crash.
pub struct BuiltinGateway {
    db: Db,
    up: AtomicBool,
}

impl BuiltinGateway {
    pub fn new(db: Db) -> Self {
        BuiltinGateway {
            db,
            up: AtomicBool::new(true),
        }
    }

    async fn record(&self, kind: &str, req: GatewayRequest<'_>) -> Result<String, GatewayError> {
        if !self.is_available() {
            return Err(GatewayError::Unavailable(
                "the built-in gateway is switched down".into(),
            ));
        }
        // One insert, atomic by itself (a second ask with the key reads the first answer).
        let mut tx = self
            .db
            .write_one()
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        let reference = st::ledger_record(
            &mut tx,
            req.idempotency_key,
            kind,
            req.method.to_db(),
            req.amount,
            chrono::Utc::now(),
        )
        .await
        .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        tx.commit()
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        Ok(reference)
    }
}

impl PaymentGateway for BuiltinGateway {
    fn charge<'a>(
        &'a self,
        req: GatewayRequest<'a>,
    ) -> BoxFuture<'a, Result<String, GatewayError>> {
        Box::pin(self.record("charge", req))
    }

    fn refund<'a>(
        &'a self,
        req: GatewayRequest<'a>,
    ) -> BoxFuture<'a, Result<String, GatewayError>> {
        Box::pin(self.record("refund", req))
    }

    fn is_available(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn set_available(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }
}
