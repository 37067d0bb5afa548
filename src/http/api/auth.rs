//! API keys: stored as SHA-256 hashes (keys are 192-bit random, so a fast
//! hash is enough), looked up once and cached; roles; per-key token-bucket
//! rate limits; request ids.

use super::error::ApiError;
use crate::config::ApiRole;
use crate::store as st;
use crate::store::Store;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::Instrument;

/// `sha256:<hex>` of a key, as stored and as written in the config.
pub fn hash_key(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// A fresh random key: `lsk_` and 48 hex digits.
pub fn generate_key() -> String {
    format!("lsk_{}", hex::encode(rand::random::<[u8; 24]>()))
}

/// Writes a key (by name) into the database.
pub async fn store_key(
    store: &Store,
    name: &str,
    role: ApiRole,
    hash: &str,
    rate: Option<u32>,
    source: &str,
) -> Result<(), st::StoreError> {
    let mut c = store.write_one().await?;
    let rate = rate.unwrap_or_else(|| role.default_rate_per_minute());
    st::upsert_api_key(
        &mut c,
        name,
        role.as_str(),
        hash,
        i64::from(rate),
        source,
        chrono::Utc::now(),
    )
    .await?;
    c.commit().await
}

/// The authenticated caller, put in the request's extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: ApiRole,
}

impl Caller {
    /// Refuses the call unless the caller's role is listed for the endpoint.
    pub fn allow(&self, ep: &super::Endpoint) -> Result<(), ApiError> {
        if ep.roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "role `{}` may not call {} {} (allowed: {})",
                    self.role.as_str(),
                    ep.method.to_uppercase(),
                    ep.path,
                    ep.roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
    }

    /// Roles trusted to report when a car actually passed (`timestamp`).
    pub fn may_set_timestamp(&self) -> bool {
        matches!(
            self.role,
            ApiRole::Kiosk | ApiRole::Operator | ApiRole::Admin
        )
    }
}

#[derive(Clone)]
struct KeyInfo {
    name: String,
    role: ApiRole,
    rate_per_minute: u32,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Clone)]
pub struct Auth {
    store: Store,
    keys: Arc<Mutex<HashMap<String, Option<KeyInfo>>>>,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

impl Auth {
    pub fn new(store: Store) -> Auth {
        Auth {
            store,
            keys: Arc::default(),
            buckets: Arc::default(),
        }
    }

    async fn lookup(&self, key: &str) -> Result<Option<KeyInfo>, ApiError> {
        let hash = hash_key(key);
        if let Some(hit) = self.keys.lock().expect("key cache").get(&hash) {
            if hit.is_some() {
                return Ok(hit.clone());
            }
        }
        let mut c = self.store.pool().acquire().await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                e.to_string(),
            )
        })?;
        let row = st::api_key_by_hash(&mut c, &hash).await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                e.to_string(),
            )
        })?;
        let info = row.filter(|r| !r.revoked).and_then(|r| {
            Some(KeyInfo {
                name: r.name,
                role: ApiRole::parse(&r.role)?,
                rate_per_minute: r.rate_per_minute.clamp(1, i64::from(u32::MAX)) as u32,
            })
        });
        if info.is_some() {
            self.keys
                .lock()
                .expect("key cache")
                .insert(hash, info.clone());
        }
        Ok(info)
    }

    /// Token bucket: `rate` per minute, bursts of up to a tenth of a minute's worth (at least 10).
    fn take(&self, name: &str, rate_per_minute: u32) -> Result<(), u64> {
        let rate = f64::from(rate_per_minute) / 60.0;
        let capacity = (f64::from(rate_per_minute) / 6.0).max(10.0);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate buckets");
        let b = buckets.entry(name.to_string()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(capacity);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

fn presented_key(req: &Request) -> Option<String> {
    let h = req.headers();
    if let Some(v) = h.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_string());
    }
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|v| v.trim().to_string())
}

/// Authenticates `/api/*` (except the OpenAPI document) and applies the key's rate limit.
pub async fn authenticate(State(auth): State<Auth>, mut req: Request, next: Next) -> Response {
    if req.uri().path() == "/api/openapi.json" {
        return next.run(req).await;
    }
    let Some(key) = presented_key(&req) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
        )
        .into_response();
    };
    let info = match auth.lookup(&key).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_key",
                "unknown or revoked API key",
            )
            .into_response()
        }
        Err(e) => return e.into_response(),
    };
    if let Err(retry) = auth.take(&info.name, info.rate_per_minute) {
        let mut r = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "key `{}` is limited to {} requests per minute",
                info.name, info.rate_per_minute
            ),
        )
        .into_response();
        r.headers_mut()
            .insert("retry-after", HeaderValue::from(retry));
        return r;
    }
    tracing::Span::current().record("key", info.name.as_str());
    req.extensions_mut().insert(Caller {
        name: info.name,
        role: info.role,
    });
    next.run(req).await
}

/// Gives every request an id (the client's `x-request-id` or a new one),
/// logs it with method, path, status and latency, and returns it.
pub async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.uri().path(), key = tracing::field::Empty);
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, ms, "request failed");
        } else {
            tracing::debug!(status, ms, "request");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
