//! The in-process broker used when no external broker is configured, so one
//! box runs lotsense with nothing else installed. Boards and gate controllers
//! connect to it like to any MQTT 3.1.1 broker.

use super::MqttError;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// A running rumqttd broker. rumqttd has no shutdown API: it lives until the
/// process exits, which is what lotsense needs.
pub struct EmbeddedBroker {
    pub addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts a broker on `addr` and waits until it accepts connections.
    pub fn start(addr: SocketAddr) -> Result<Self, MqttError> {
        let fail = |reason: String| MqttError::Broker {
            addr: addr.to_string(),
            reason,
        };
        // rumqttd only logs a failed bind from its own thread; check first so
        // the user gets a clear error instead of a silent broker-less run.
        drop(std::net::TcpListener::bind(addr).map_err(|e| {
            fail(format!(
                "{e} (is another broker already using this port? set [mqtt] listen or url)"
            ))
        })?);

        let connections = rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 1 << 20,
            max_inflight_count: 1000,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        };
        let server = rumqttd::ServerSettings {
            name: "v4-lotsense".into(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 1,
            connections,
        };
        let config = rumqttd::Config {
            id: 0,
            router: rumqttd::RouterConfig {
                max_connections: 10_000,
                max_outgoing_packet_count: 200,
                max_segment_size: 16 << 20,
                max_segment_count: 10,
                custom_segment: None,
                initialized_filters: None,
                shared_subscriptions_strategy: Default::default(),
            },
            v4: Some(HashMap::from([("1".to_string(), server)])),
            ..Default::default()
        };
        let mut broker = rumqttd::Broker::new(config);
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "embedded MQTT broker stopped");
                }
            })
            .map_err(|e| fail(e.to_string()))?;
        for _ in 0..100 {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                tracing::info!(%addr, "embedded MQTT broker listening");
                return Ok(Self { addr });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(fail("did not start listening within 2 s".into()))
    }
}
