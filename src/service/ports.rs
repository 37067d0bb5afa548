//! The ports through which the services reach the outside world. The
//! services see only these traits; the adapters (MQTT for gates, the
//! built-in or an external payment gateway) implement them and are handed
//! over in the wiring (`crate::app`), so a use case never knows which
//! broker or gateway is behind it, and tests can hand in their own.

use super::gates::{GateCommand, GateDisplay};
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

pub use super::gateway::PaymentGateway;

/// A gate controller's acknowledgement of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateAck {
    /// The gate the acknowledgement came from (from where it arrived, not
    /// from what it claims).
    pub gate: String,
    pub decision_id: String,
    /// What the controller did: `opened`, `closed`, `denied`, …
    pub state: String,
}

/// Why a gate message could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("gate channel: {0}")]
pub struct GatePortError(pub String);

/// The channel to the gate controllers and their displays.
pub trait GatePort: Send + Sync + 'static {
    /// Sends one command to its gate (`cmd.gate`), once. Retries and the
    /// follow-up belong to the caller ([`super::gates::GateCommander`]).
    fn command<'a>(&'a self, cmd: &'a GateCommand) -> BoxFuture<'a, Result<(), GatePortError>>;

    /// Shows the driver's directions on the gate's display.
    fn display<'a>(
        &'a self,
        gate: &'a str,
        display: &'a GateDisplay,
    ) -> BoxFuture<'a, Result<(), GatePortError>>;

    /// Starts listening for acknowledgements from every gate. The receiver
    /// is bounded by the adapter, which says what it does when it is full.
    fn acks(&self) -> BoxFuture<'_, Result<mpsc::Receiver<GateAck>, GatePortError>>;
}
