//! Gate commands over MQTT, with acknowledgement, retry and flagging.
//!
//! * command: `lotsense/<site>/gates/<gate>/command`, never retained:
//!   `{"command":"open"|"deny","decision_id","plate","session_id","reason","direction","attempt","at"}`
//! * acknowledgement from the gate controller: `…/gates/<gate>/state`:
//!   `{"decision_id":"…","state":"opened"|"closed"|"denied"|…}`
//! * driver display: `…/gates/<gate>/display`, never retained:
//!   `{"plate","verdict","reason","message","space_id","level","zone"}`
//!
//! A command is published again when no acknowledgement arrives within the
//! gate's `ack_timeout_secs`, up to [`ATTEMPTS`] times; an `open` that is never
//! acknowledged raises an `unacknowledged_gate` flag (a deny is only recorded:
//! a closed barrier is the safe state).

use crate::core::FlagKind;
use crate::mqtt::{discovery, MqttHandle};
use crate::service::db::Db;
use crate::store as st;
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

#[derive(Debug, Deserialize)]
struct Ack {
    decision_id: String,
    #[serde(default = "opened")]
    state: String,
}

fn opened() -> String {
    "acknowledged".into()
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<String>>>>;

#[derive(Clone)]
pub struct GateCommander {
    mqtt: MqttHandle,
    db: Db,
    pending: Pending,
    timeouts: Arc<HashMap<String, Duration>>,
}

impl GateCommander {
    /// Subscribes to every gate's state topic and starts dispatching acks.
    /// With `discovery` (Home Assistant prefix, site name), the gates are
    /// announced to Home Assistant as well.
    pub async fn start(
        mqtt: MqttHandle,
        db: Db,
        timeouts: HashMap<String, Duration>,
        discovery: Option<(String, String)>,
    ) -> anyhow::Result<GateCommander> {
        if let Some((prefix, site)) = discovery {
            let mut gates: Vec<String> = timeouts.keys().cloned().collect();
            gates.sort();
            tokio::spawn(announce(mqtt.clone(), gates, prefix, site));
        }
        let pending: Pending = Arc::default();
        let filter = mqtt.topics.sub("gates/+/state");
        let mut rx = mqtt.subscribe(&filter).await?;
        let p = pending.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(msg) if msg.topic.ends_with("/state") => {
                        if let Ok(ack) = serde_json::from_slice::<Ack>(&msg.payload) {
                            let tx = p.lock().expect("pending lock").remove(&ack.decision_id);
                            if let Some(tx) = tx {
                                let _ = tx.send(ack.state);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "gate state listener lagged")
                    }
                    Err(_) => break,
                }
            }
        });
        Ok(GateCommander {
            mqtt,
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
        let topic = self.mqtt.topics.sub(&format!("gates/{gate}/display"));
        if let Err(e) = self
            .mqtt
            .publish(topic, serde_json::to_vec(d).unwrap_or_default(), false)
            .await
        {
            tracing::warn!(%gate, error = %e, "gate display not published");
        }
    }

    /// Publishes the command and follows it up in the background.
    pub fn dispatch(&self, cmd: GateCommand) {
        let this = self.clone();
        tokio::spawn(async move { this.run(cmd).await });
    }

    async fn run(&self, mut cmd: GateCommand) {
        let topic = self.mqtt.topics.sub(&format!("gates/{}/command", cmd.gate));
        let timeout = self
            .timeouts
            .get(&cmd.gate)
            .copied()
            .unwrap_or(Duration::from_secs(3));
        let (tx, mut rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending lock")
            .insert(cmd.decision_id.clone(), tx);
        let mut acked = None;
        for attempt in 1..=ATTEMPTS {
            cmd.attempt = attempt;
            if let Err(e) = self
                .mqtt
                .publish(
                    topic.clone(),
                    serde_json::to_vec(&cmd).unwrap_or_default(),
                    false,
                )
                .await
            {
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
    ) -> Result<(), sqlx::Error> {
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
                        &st::enum_str(&FlagKind::UnacknowledgedGate),
                        Some(&cmd.plate),
                        cmd.session_id.as_deref(),
                        Some(&cmd.gate),
                        &detail,
                        None,
                        now,
                    )
                    .await?;
                    st::audit(
                        &mut tx,
                        now,
                        "system",
                        "flag_raised",
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

/// Home Assistant discovery for the gates (retained), at start and again
/// after every reconnect, since a restarted broker may have lost it.
async fn announce(mqtt: MqttHandle, gates: Vec<String>, prefix: String, site: String) {
    let mut connected = mqtt.connected();
    loop {
        let mut all = true;
        for gate in &gates {
            for e in discovery::gate_entities(&mqtt.topics, gate) {
                let (topic, payload) = discovery::config(&mqtt.topics, &prefix, &site, &e);
                if let Err(e) = mqtt.publish(topic.clone(), payload, true).await {
                    tracing::warn!(%topic, error = %e, "gate discovery not published");
                    all = false;
                }
            }
        }
        if !all {
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        if connected.changed().await.is_err() {
            break;
        }
    }
}

/// A stand-in gate controller (demo and tests): acknowledges every command
/// on the gate's state topic with `opened` or `closed`.
pub async fn simulate_gate(
    mqtt: MqttHandle,
    gate: &str,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut rx = mqtt
        .subscribe(&mqtt.topics.sub(&format!("gates/{gate}/command")))
        .await?;
    let state_topic = mqtt.topics.sub(&format!("gates/{gate}/state"));
    let suffix = format!("gates/{gate}/command");
    Ok(tokio::spawn(async move {
        while let Ok(msg) = rx.recv().await {
            if !msg.topic.ends_with(&suffix) {
                continue;
            }
            if let Ok(cmd) = serde_json::from_slice::<GateCommand>(&msg.payload) {
                let state = if cmd.command == "open" {
                    "opened"
                } else {
                    "closed"
                };
                let ack = serde_json::json!({ "decision_id": cmd.decision_id, "state": state });
                let _ = mqtt
                    .publish(state_topic.clone(), ack.to_string(), false)
                    .await;
            }
        }
    }))
}
