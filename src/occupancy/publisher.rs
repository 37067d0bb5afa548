//! The publish stage: bay updates → [`Board`] → retained MQTT messages for
//! the boards, the snapshot for HTTP, and a broadcast of every update for the
//! parking core.
//!
//! Policies:
//! - input: bounded channel of batches of [`BayUpdate`]s (the changes of one
//!   sample, applied together); the pipelines wait when it is full (updates
//!   are few: only changes); staff overrides on a second bounded channel
//!   (the API waits when it is full);
//! - output: only topics whose payload changed are published, retained, at
//!   most once per `interval` (changes in between are coalesced); the initial
//!   all-`unknown` state is published at once, so a board never keeps showing
//!   a previous run's numbers;
//! - after every (re)connect everything is published again (and the Home
//!   Assistant discovery configs), since a restarted broker may have lost it;
//! - a publish that cannot be queued within 2 s (broker gone for long) is
//!   dropped and counted; its topic is retried on the next round.

use super::board::{Board, OccupancySnapshot};
use super::OccupancyStats;
use crate::core::BayState;
use crate::events::BayUpdate;
use crate::metrics::{BayStateLabel, Metrics};
use crate::mqtt::MqttHandle;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct PublishSettings {
    pub interval: Duration,
    /// Home Assistant discovery prefix, when discovery is on.
    pub discovery_prefix: Option<String>,
    pub site: String,
}

/// Where the publisher sends what the bays say.
pub struct Outputs {
    pub mqtt: MqttHandle,
    pub settings: PublishSettings,
    /// The latest figures, for the API.
    pub snapshot: watch::Sender<OccupancySnapshot>,
    /// Every bay update, for in-process listeners (the parking core).
    pub updates: broadcast::Sender<BayUpdate>,
    pub stats: Arc<OccupancyStats>,
    pub metrics: Arc<Metrics>,
}

/// The outputs and what has been sent on them.
struct Outbox {
    out: Outputs,
    /// Retained payload last published per topic: unchanged ones are skipped.
    sent: HashMap<String, String>,
    discovery_due: bool,
}

pub async fn run(
    mut rx: mpsc::Receiver<Vec<BayUpdate>>,
    mut overrides: mpsc::Receiver<(String, Option<BayState>)>,
    mut board: Board,
    out: Outputs,
) {
    let mut connected = out.mqtt.connected();
    let interval = out.settings.interval;
    let mut outbox = Outbox {
        discovery_due: out.settings.discovery_prefix.is_some(),
        sent: HashMap::new(),
        out,
    };
    let mut dirty = true;
    let mut last_publish: Option<Instant> = None;
    loop {
        let due = match (dirty, last_publish) {
            (false, _) => None,
            (true, None) => Some(Instant::now()),
            (true, Some(t)) => Some(t + interval),
        };
        tokio::select! {
            u = rx.recv() => match u {
                Some(batch) => {
                    for u in batch {
                        if board.apply(&u) {
                            dirty = true;
                        }
                        let _ = outbox.out.updates.send(u);
                    }
                }
                None => {
                    // The pipelines are gone (shutdown): publish the last state and stop.
                    outbox.publish(&board).await;
                    break;
                }
            },
            Some((space, manual)) = overrides.recv() => {
                if board.set_override(&space, manual, chrono::Utc::now()) {
                    dirty = true;
                }
            }
            changed = connected.changed() => {
                if changed.is_err() {
                    break;
                }
                tracing::info!("mqtt (re)connected: publishing the boards again");
                outbox.sent.clear();
                outbox.discovery_due = outbox.out.settings.discovery_prefix.is_some();
                dirty = true;
                last_publish = None;
            }
            _ = sleep_until(due), if due.is_some() => {
                dirty = !outbox.publish(&board).await;
                last_publish = Some(Instant::now());
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Outbox {
    /// Publishes what changed; true when everything went out.
    async fn publish(&mut self, board: &Board) -> bool {
        let Outputs {
            mqtt,
            settings,
            snapshot: snapshot_tx,
            stats,
            metrics,
            ..
        } = &self.out;
        let (sent, discovery_due) = (&mut self.sent, &mut self.discovery_due);
        let snap = board.snapshot();
        for (state, n) in [
            ("free", snap.free),
            ("occupied", snap.occupied),
            ("unknown", snap.unknown),
            ("held_back", snap.held_back),
        ] {
            metrics
                .bays
                .get_or_create(&BayStateLabel {
                    state: state.into(),
                })
                .set(n.into());
        }
        let mut ok = true;
        if *discovery_due {
            if let Some(prefix) = &settings.discovery_prefix {
                let mut all = true;
                for (topic, payload) in snap.discovery(&mqtt.topics, prefix, &settings.site) {
                    all &= send(mqtt, topic, payload, stats, metrics).await;
                }
                *discovery_due = !all;
                ok &= all;
            }
        }
        let mut count = 0;
        for (topic, payload) in snap.messages(&mqtt.topics) {
            if sent.get(&topic) == Some(&payload) {
                continue;
            }
            if send(mqtt, topic.clone(), payload.clone(), stats, metrics).await {
                sent.insert(topic, payload);
                count += 1;
            } else {
                sent.remove(&topic);
                ok = false;
            }
        }
        if count > 0 {
            stats.publications.fetch_add(count, Ordering::Relaxed);
            tracing::debug!(
                messages = count,
                free = snap.free,
                occupied = snap.occupied,
                unknown = snap.unknown,
                "boards published"
            );
        }
        snapshot_tx.send_replace(snap);
        ok
    }
}

async fn send(
    mqtt: &MqttHandle,
    topic: String,
    payload: String,
    stats: &OccupancyStats,
    metrics: &Metrics,
) -> bool {
    match tokio::time::timeout(
        Duration::from_secs(2),
        mqtt.publish(topic.clone(), payload, true),
    )
    .await
    {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            stats.publish_failures.fetch_add(1, Ordering::Relaxed);
            metrics.board_publish_failures.inc();
            tracing::warn!(%topic, error = %e, "board message not published");
            false
        }
        Err(_) => {
            stats.publish_failures.fetch_add(1, Ordering::Relaxed);
            metrics.board_publish_failures.inc();
            tracing::warn!(%topic, "board message not queued within 2 s (broker unreachable?); retried later");
            false
        }
    }
}
