//! A minimal HTTP/1.1 keep-alive JSON client for the benchmark, the demo and
//! the integration tests (so they need no extra HTTP crate). It speaks just
//! enough HTTP for this API: `Content-Length` bodies, no chunking, no TLS.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct Client {
    addr: std::net::SocketAddr,
    key: Option<String>,
    conn: Option<BufReader<TcpStream>>,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Client {
    pub fn new(addr: std::net::SocketAddr, key: Option<&str>) -> Client {
        Client {
            addr,
            key: key.map(String::from),
            conn: None,
        }
    }

    pub async fn get(&mut self, path: &str) -> std::io::Result<Reply> {
        self.send("GET", path, None, &[]).await
    }

    pub async fn post(&mut self, path: &str, body: &serde_json::Value) -> std::io::Result<Reply> {
        self.send("POST", path, Some(body), &[]).await
    }

    pub async fn put(&mut self, path: &str, body: &serde_json::Value) -> std::io::Result<Reply> {
        self.send("PUT", path, Some(body), &[]).await
    }

    pub async fn patch(&mut self, path: &str, body: &serde_json::Value) -> std::io::Result<Reply> {
        self.send("PATCH", path, Some(body), &[]).await
    }

    /// Sends a request (retrying once on a fresh connection if a kept-alive one was closed).
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Reply> {
        let fresh = self.conn.is_none();
        match self.try_send(method, path, body, headers).await {
            Ok(r) => Ok(r),
            Err(_) if !fresh => {
                self.conn = None;
                self.try_send(method, path, body, headers).await
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    async fn try_send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Reply> {
        if self.conn.is_none() {
            let s = TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            self.conn = Some(BufReader::new(s));
        }
        let conn = self.conn.as_mut().expect("connected");
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            payload.len()
        );
        if body.is_some() {
            req.push_str("Content-Type: application/json\r\n");
        }
        if let Some(k) = &self.key {
            req.push_str(&format!("Authorization: Bearer {k}\r\n"));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(&payload);
        conn.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        if conn.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        let mut len = 0usize;
        let mut close = false;
        loop {
            line.clear();
            conn.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_string(), v.trim().to_string());
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.parse().unwrap_or(0);
                }
                if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
                    close = true;
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0; len];
        conn.read_exact(&mut body).await?;
        if close {
            self.conn = None;
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}
