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
    /// Port 0 picks a free port; [`addr`](Self::addr) is the one listened on.
    pub fn start(addr: SocketAddr) -> Result<Self, MqttError> {
        let fail = |reason: String| MqttError::Broker {
            addr: addr.to_string(),
            reason,
        };
        // rumqttd binds the port itself: it only logs a failed bind (from its
        // own thread) and cannot tell which port it got for port 0. So the
        // address is reserved here first, by a socket bound with SO_REUSEADDR
        // that does not listen. A busy port fails now, with a clear error
        // instead of a silent broker-less run. For port 0 the kernel picks a
        // free port and, while it is held, hands it to no other socket asking
        // for a free port; rumqttd (SO_REUSEADDR too) can still bind and
        // listen on it. Released once the broker answers.
        let reserved = reserve(addr).map_err(|e| {
            fail(format!(
                "{e} (is another broker already using this port? set [mqtt] listen or url)"
            ))
        })?;
        let addr = reserved.local_addr().map_err(|e| fail(e.to_string()))?;
        let fail = |reason: String| MqttError::Broker {
            addr: addr.to_string(),
            reason,
        };

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
                drop(reserved);
                tracing::info!(%addr, "embedded MQTT broker listening");
                return Ok(Self { addr });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(fail("did not start listening within 2 s".into()))
    }
}

/// A socket bound to `addr` (SO_REUSEADDR) that does not listen: it holds the
/// port for the broker without accepting connections.
fn reserve(addr: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket)
}
