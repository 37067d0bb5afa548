//! Ports for parallel tests without the bind-and-drop race (binding port 0,
//! dropping the listener and handing its number on, which another test may
//! be given meanwhile). Servers bind port 0 themselves and report the port
//! they got (the HTTP server, the embedded MQTT broker, the RTSP test
//! server, `lotsense serve` on its stdout). What is left are ports that must
//! stay *closed*, held here by a socket bound to the port that does not
//! listen: connections to it are refused, and while it is held the kernel
//! hands the port to no socket asking for a free one (Linux skips ports with
//! a bound socket when it picks one).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that nothing listens on, for as long as this lives.
pub struct ClosedPort(tokio::net::TcpSocket);

impl ClosedPort {
    /// A free port, held closed (for cameras and brokers that must be unreachable).
    pub fn new() -> ClosedPort {
        Self::bind(0).expect("bind a socket to a free port")
    }

    /// Holds `port` closed once a test server has released it, until the
    /// server binds it again on restart (it may, with SO_REUSEADDR, as the
    /// RTSP test server does, because this socket does not listen). Waits up
    /// to 5 s for the old listener to close.
    pub fn hold(port: u16) -> ClosedPort {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match Self::bind(port) {
                Ok(p) => return p,
                Err(e) if Instant::now() >= deadline => panic!("cannot hold port {port}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn bind(port: u16) -> std::io::Result<ClosedPort> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        Ok(ClosedPort(socket))
    }

    pub fn port(&self) -> u16 {
        self.0.local_addr().expect("a bound socket").port()
    }
}
