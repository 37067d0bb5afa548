//! The gates' MQTT adapter: implements the services' [`GatePort`].
//!
//! * command: `lotsense/<site>/gates/<gate>/command`, never retained:
//!   `{"command":"open"|"deny","decision_id","plate","session_id","reason","direction","attempt","at"}`
//! * acknowledgement from the gate controller: `…/gates/<gate>/state`:
//!   `{"decision_id":"…","state":"opened"|"closed"|"denied"|…}`; the gate is
//!   taken from the topic it arrived on.
//! * driver display: `…/gates/<gate>/display`, never retained:
//!   `{"plate","verdict","reason","message","space_id","level","zone"}`
//!
//! With Home Assistant discovery on, the gates are announced (retained) at
//! start and after every reconnect.

use super::{discovery, MqttHandle};
use crate::service::gates::{GateCommand, GateDisplay};
use crate::service::ports::{GateAck, GatePort, GatePortError};
use futures_util::future::BoxFuture;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Acknowledgements buffered between the MQTT client and the commander.
/// When full, further acks are dropped with a warning: the command they
/// answer is then published again and, if never acknowledged, flagged, so
/// a dropped ack errs on the safe side.
const ACK_BUFFER: usize = 256;

/// The gates behind an MQTT broker.
pub struct MqttGates {
    mqtt: MqttHandle,
}

impl MqttGates {
    /// The port for the given gates; with `discovery` (Home Assistant
    /// prefix, site name) the gates are announced as well.
    pub fn port(
        mqtt: MqttHandle,
        gates: Vec<String>,
        discovery: Option<(String, String)>,
    ) -> Arc<dyn GatePort> {
        if let Some((prefix, site)) = discovery {
            let mut gates = gates;
            gates.sort();
            tokio::spawn(announce(mqtt.clone(), gates, prefix, site));
        }
        Arc::new(MqttGates { mqtt })
    }

    async fn publish(&self, topic: String, payload: Vec<u8>) -> Result<(), GatePortError> {
        self.mqtt
            .publish(topic, payload, false)
            .await
            .map_err(|e| GatePortError(e.to_string()))
    }
}

#[derive(Debug, Deserialize)]
struct Ack {
    decision_id: String,
    #[serde(default = "acknowledged")]
    state: String,
}

fn acknowledged() -> String {
    "acknowledged".into()
}

/// The gate of a `…/gates/<gate>/state` topic.
fn gate_of_state_topic(topic: &str) -> Option<&str> {
    let rest = topic.strip_suffix("/state")?;
    let (prefix, gate) = rest.rsplit_once('/')?;
    prefix.ends_with("/gates").then_some(gate)
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, GatePortError> {
    serde_json::to_vec(v).map_err(|e| GatePortError(format!("cannot encode: {e}")))
}

impl GatePort for MqttGates {
    fn command<'a>(&'a self, cmd: &'a GateCommand) -> BoxFuture<'a, Result<(), GatePortError>> {
        Box::pin(async move {
            let topic = self.mqtt.topics.sub(&format!("gates/{}/command", cmd.gate));
            self.publish(topic, json(cmd)?).await
        })
    }

    fn display<'a>(
        &'a self,
        gate: &'a str,
        display: &'a GateDisplay,
    ) -> BoxFuture<'a, Result<(), GatePortError>> {
        Box::pin(async move {
            let topic = self.mqtt.topics.sub(&format!("gates/{gate}/display"));
            self.publish(topic, json(display)?).await
        })
    }

    fn acks(&self) -> BoxFuture<'_, Result<mpsc::Receiver<GateAck>, GatePortError>> {
        Box::pin(async move {
            let filter = self.mqtt.topics.sub("gates/+/state");
            let mut rx = self
                .mqtt
                .subscribe(&filter)
                .await
                .map_err(|e| GatePortError(e.to_string()))?;
            let (tx, out) = mpsc::channel(ACK_BUFFER);
            tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(msg) => {
                            let Some(gate) = gate_of_state_topic(&msg.topic) else {
                                continue;
                            };
                            let Ok(ack) = serde_json::from_slice::<Ack>(&msg.payload) else {
                                tracing::warn!(topic = %msg.topic, "gate state message is not an acknowledgement");
                                continue;
                            };
                            let ack = GateAck {
                                gate: gate.to_string(),
                                decision_id: ack.decision_id,
                                state: ack.state,
                            };
                            match tx.try_send(ack) {
                                Ok(()) => {}
                                Err(mpsc::error::TrySendError::Full(a)) => {
                                    tracing::warn!(gate = %a.gate, decision = %a.decision_id, "gate acknowledgement dropped: buffer full")
                                }
                                Err(mpsc::error::TrySendError::Closed(_)) => break,
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "gate state listener lagged")
                        }
                        Err(_) => break,
                    }
                }
            });
            Ok(out)
        })
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

#[cfg(test)]
mod tests {
    use super::gate_of_state_topic;

    #[test]
    fn the_gate_comes_from_the_state_topic() {
        assert_eq!(
            gate_of_state_topic("lotsense/demo/gates/north/state"),
            Some("north")
        );
        assert_eq!(
            gate_of_state_topic("lotsense/demo/gates/north/command"),
            None
        );
        assert_eq!(
            gate_of_state_topic("lotsense/demo/cameras/north/state"),
            None
        );
    }
}
