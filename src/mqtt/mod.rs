//! MQTT adapter: the embedded broker (rumqttd) for a single box, and the
//! client (rumqttc) lotsense uses towards whichever broker is in force.
//!
//! The client owns its event loop in one task. It announces availability
//! (`online`, with `offline` as the retained last will) on every (re)connect and
//! tells subscribers of [`MqttHandle::connected`] so retained state such as
//! occupancy counts can be published again after the broker comes back.

mod broker;
pub mod discovery;
pub mod gates;

pub use broker::EmbeddedBroker;

use crate::metrics::Metrics;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Errors of the MQTT layer.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("broker url `{0}` is not of the form mqtt://host:port")]
    BadUrl(String),
    #[error("cannot start the in-process MQTT broker on {addr}: {reason}")]
    Broker { addr: String, reason: String },
    #[error("MQTT client request failed: {0}")]
    Client(#[from] rumqttc::ClientError),
}

/// Host and port of a broker given as `mqtt://host:port` (port defaults to
/// 1883); the syntax is the config's ([`crate::config::broker_address`]).
pub fn parse_broker_url(u: &str) -> Result<(String, u16), MqttError> {
    crate::config::broker_address(u).ok_or_else(|| MqttError::BadUrl(u.to_string()))
}

/// Topic names, all under `<prefix>/<site>/`.
#[derive(Debug, Clone)]
pub struct Topics {
    base: String,
}

impl Topics {
    pub fn new(prefix: &str, site: &str) -> Self {
        Self {
            base: format!("{prefix}/{site}"),
        }
    }
    pub fn available(&self) -> String {
        format!("{}/available", self.base)
    }
    pub fn plates(&self) -> String {
        format!("{}/plates", self.base)
    }
    pub fn camera_status(&self, camera: &str) -> String {
        format!("{}/cameras/{camera}/status", self.base)
    }
    pub fn sub(&self, rest: &str) -> String {
        format!("{}/{rest}", self.base)
    }
}

/// A message received on a subscribed topic.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// Cheap-to-clone handle to the running client.
#[derive(Clone)]
pub struct MqttHandle {
    client: AsyncClient,
    pub topics: Topics,
    connected: watch::Receiver<u64>,
    incoming: broadcast::Sender<Incoming>,
    /// Filters to subscribe again after a reconnect (clean sessions forget them).
    subs: Subscriptions,
    /// Set by `shutdown`: the event loop must not reconnect (and re-announce `online`).
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

/// Settings for [`connect`].
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub keep_alive: Duration,
    pub topics: Topics,
}

/// Starts the client and its event-loop task. Returns at once; the connection
/// is made (and remade) in the background.
pub fn connect(settings: ClientSettings, metrics: Arc<Metrics>) -> MqttHandle {
    let mut opts = MqttOptions::new(
        settings.client_id.clone(),
        settings.host.clone(),
        settings.port,
    );
    opts.set_keep_alive(settings.keep_alive);
    opts.set_clean_session(true);
    // Plate events and gate commands must not be lost on a short broker outage;
    // publishers wait (back-pressure) when this queue is full rather than drop.
    opts.set_request_channel_capacity(1024);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let avail = settings.topics.available();
    opts.set_last_will(LastWill::new(
        avail.clone(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    let (conn_tx, conn_rx) = watch::channel(0u64);
    let (in_tx, _) = broadcast::channel(1024);
    let subs = Subscriptions::default();
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_flag = stopping.clone();
    let handle = MqttHandle {
        stopping,
        client: client.clone(),
        topics: settings.topics.clone(),
        connected: conn_rx,
        incoming: in_tx.clone(),
        subs: subs.clone(),
    };
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        let mut generation = 0u64;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    generation += 1;
                    backoff = Duration::from_millis(200);
                    tracing::info!(host = %settings.host, port = settings.port, generation, "mqtt connected");
                    if generation > 1 {
                        metrics.mqtt_reconnects.inc();
                    }
                    // Publish through a clone so this loop keeps polling.
                    let c = client.clone();
                    let avail = avail.clone();
                    let subs = subs.clone();
                    tokio::spawn(async move {
                        let _ = c.publish(avail, QoS::AtLeastOnce, true, "online").await;
                        let filters: Vec<String> = subs.lock().expect("subscriptions lock").clone();
                        for t in filters {
                            let _ = c.subscribe(t, QoS::AtLeastOnce).await;
                        }
                    });
                    let _ = conn_tx.send(generation);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = in_tx.send(Incoming {
                        topic: p.topic.to_string(),
                        payload: p.payload.to_vec(),
                        retain: p.retain,
                    });
                }
                Ok(_) => {}
                Err(_) if stop_flag.load(std::sync::atomic::Ordering::Relaxed) => break,
                Err(e) => {
                    metrics.mqtt_failures.inc();
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "mqtt connection lost");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    });
    handle
}

type Subscriptions = Arc<std::sync::Mutex<Vec<String>>>;

impl MqttHandle {
    /// Publishes and waits until the request is queued (never drops).
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Vec<u8>>,
        retain: bool,
    ) -> Result<(), MqttError> {
        self.client
            .publish(topic.into(), QoS::AtLeastOnce, retain, payload.into())
            .await?;
        Ok(())
    }

    /// Subscribes now and again after every reconnect.
    pub async fn subscribe(
        &self,
        filter: &str,
    ) -> Result<broadcast::Receiver<Incoming>, MqttError> {
        self.subs
            .lock()
            .expect("subscriptions lock")
            .push(filter.to_string());
        let rx = self.incoming.subscribe();
        self.client.subscribe(filter, QoS::AtLeastOnce).await?;
        Ok(rx)
    }

    /// Changes (a generation counter) every time the connection is (re)made.
    pub fn connected(&self) -> watch::Receiver<u64> {
        self.connected.clone()
    }

    /// Waits until the first connection is made, up to `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.connected.clone();
        tokio::time::timeout(timeout, async {
            while *rx.borrow_and_update() == 0 {
                if rx.changed().await.is_err() {
                    return false;
                }
            }
            true
        })
        .await
        .unwrap_or(false)
    }

    /// Marks lotsense `offline` and disconnects cleanly (a clean disconnect
    /// does not trigger the last will, so we publish it ourselves).
    pub async fn shutdown(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self
            .client
            .publish(self.topics.available(), QoS::AtLeastOnce, true, "offline")
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = self.client.disconnect().await;
    }
}
