//! Gate commands with acknowledgement, retry and flagging, through the
//! [`GatePort`] (the MQTT adapter is `crate::mqtt::gates`, which documents
//! the topics and payloads).
//!
//! A command is published again when no acknowledgement arrives within the
//! gate's `ack_timeout_secs`, up to [`ATTEMPTS`] times; an `open` that is never
//! acknowledged raises an `unacknowledged_gate` flag (a deny is only recorded:
//! a closed barrier is the safe state).

use super::ports::{GateAck, GatePort};
use crate::core::AuditAction;
use crate::core::FlagKind;
use crate::store as st;
use crate::store::Db;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Publications of one command before it is given up.
pub const ATTEMPTS: u32 = 3;

/// What the gate is told.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GateCommand {
    /// `open` or `deny`.
    pub command: String,
    pub decision_id: String,
    pub gate: String,
    pub plate: String,
    pub session_id: Option<String>,
    pub reason: String,
    /// `entry` or `exit`.
    pub direction: String,
    #[serde(default)]
    pub attempt: u32,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// What the driver sees on the gate's sign.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GateDisplay {
    pub plate: String,
    pub verdict: String,
    pub reason: String,
    pub message: String,
    pub space_id: Option<String>,
    pub level: Option<String>,
    pub zone: Option<String>,
    pub amount_due: Option<i64>,
}

/// Commands waiting for their acknowledgement: decision id → (gate, waiter).
type Pending = Arc<Mutex<HashMap<String, (String, oneshot::Sender<String>)>>>;

#[derive(Clone)]
pub struct GateCommander {
    port: Arc<dyn GatePort>,
    db: Db,
    pending: Pending,
    timeouts: Arc<HashMap<String, Duration>>,
}

impl GateCommander {
    /// Starts listening for the gates' acknowledgements and dispatching
    /// them to the commands that wait for them.
    pub async fn start(
        port: Arc<dyn GatePort>,
        db: Db,
        timeouts: HashMap<String, Duration>,
    ) -> Result<GateCommander, super::ports::GatePortError> {
        let pending: Pending = Arc::default();
        let mut acks = port.acks().await?;
        let p = pending.clone();
        tokio::spawn(async move {
            while let Some(ack) = acks.recv().await {
                deliver(&p, ack);
            }
        });
        Ok(GateCommander {
            port,
            db,
            pending,
            timeouts: Arc::new(timeouts),
        })
    }

    pub fn knows(&self, gate: &str) -> bool {
        self.timeouts.contains_key(gate)
    }

    /// Shows the driver's directions on the gate's display (not retained).
    pub async fn display(&self, gate: &str, d: &GateDisplay) {
        if let Err(e) = self.port.display(gate, d).await {
            tracing::warn!(%gate, error = %e, "gate display not published");
        }
    }

    /// Publishes the command and follows it up in the background.
    pub fn dispatch(&self, cmd: GateCommand) {
        let this = self.clone();
        tokio::spawn(async move { this.run(cmd).await });
    }

    async fn run(&self, mut cmd: GateCommand) {
        let timeout = self
            .timeouts
            .get(&cmd.gate)
            .copied()
            .unwrap_or(Duration::from_secs(3));
        let (tx, mut rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending lock")
            .insert(cmd.decision_id.clone(), (cmd.gate.clone(), tx));
        let mut acked = None;
        for attempt in 1..=ATTEMPTS {
            cmd.attempt = attempt;
            if let Err(e) = self.port.command(&cmd).await {
                tracing::warn!(gate = %cmd.gate, error = %e, "gate command not published");
            }
            match tokio::time::timeout(timeout, &mut rx).await {
                Ok(Ok(state)) => {
                    acked = Some((state, attempt));
                    break;
                }
                Ok(Err(_)) => break,
                Err(_) => {
                    tracing::warn!(gate = %cmd.gate, decision = %cmd.decision_id, attempt, "gate did not acknowledge")
                }
            }
        }
        self.pending
            .lock()
            .expect("pending lock")
            .remove(&cmd.decision_id);
        if let Err(e) = self.record(&cmd, acked).await {
            tracing::warn!(gate = %cmd.gate, error = %e, "gate acknowledgement not recorded");
        }
    }

    async fn record(
        &self,
        cmd: &GateCommand,
        acked: Option<(String, u32)>,
    ) -> Result<(), st::StoreError> {
        let now = chrono::Utc::now();
        let mut tx = self.db.write().await?;
        match acked {
            Some((state, attempts)) => {
                st::record_gate_ack(
                    &mut tx,
                    &cmd.decision_id,
                    &state,
                    i64::from(attempts),
                    Some(now),
                )
                .await?
            }
            None => {
                st::record_gate_ack(
                    &mut tx,
                    &cmd.decision_id,
                    "unacknowledged",
                    i64::from(ATTEMPTS),
                    None,
                )
                .await?;
                if cmd.command == "open" {
                    let detail = format!("gate {} did not acknowledge `open` for {} after {ATTEMPTS} attempts (decision {})", cmd.gate, cmd.plate, cmd.decision_id);
                    let id = st::insert_flag(
                        &mut tx,
                        &st::NewFlag {
                            kind: FlagKind::UnacknowledgedGate,
                            plate: Some(&cmd.plate),
                            session_id: cmd.session_id.as_deref(),
                            gate: Some(&cmd.gate),
                            detail: &detail,
                            evidence: None,
                            now,
                        },
                    )
                    .await?;
                    st::audit(
                        &mut tx,
                        now,
                        "system",
                        AuditAction::FlagRaised,
                        Some(&id),
                        Some("unacknowledged_gate"),
                        None,
                    )
                    .await?;
                }
            }
        }
        tx.commit().await
    }
}

/// Hands an acknowledgement to the command waiting for it, if the ack comes
/// from the gate the command went to (another gate cannot acknowledge it).
fn deliver(pending: &Pending, ack: GateAck) {
    let mut pending = pending.lock().expect("pending lock");
    match pending.remove(&ack.decision_id) {
        Some((gate, tx)) if gate == ack.gate => {
            let _ = tx.send(ack.state);
        }
        Some(entry) => {
            tracing::warn!(decision = %ack.decision_id, from = %ack.gate, expected = %entry.0, "gate acknowledgement from the wrong gate ignored");
            pending.insert(ack.decision_id, entry);
        }
        None => {}
    }
}
