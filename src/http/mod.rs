//! HTTP adapter (axum): health, Prometheus metrics, and the JSON API.
//!
//! Handlers translate HTTP to calls on the services the wiring hands them;
//! business rules live in the core, never here.

pub mod api;

use crate::metrics::Metrics;
use crate::store::Store;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::Arc;

/// Errors of the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr}: {source} (set [http] listen to a free address)")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// What handlers need; cloned per request (all fields are shared handles).
#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub store: Store,
    pub site: String,
    /// Bay occupancy and board figures (`None` when the site has no bays).
    pub occupancy: Option<crate::occupancy::OccupancyHandle>,
    /// The parking services behind `/api` (`None`: the parking API is not mounted).
    pub parking: Option<crate::service::ParkingService>,
}

pub fn router(state: AppState) -> Router {
    let api = state
        .parking
        .clone()
        .map(|p| api::router(p, state.occupancy.clone()));
    let metrics = state.metrics.clone();
    let base = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .route("/api/displays", get(displays))
        .with_state(state);
    let app = match api {
        Some(api) => base.merge(api),
        None => base,
    };
    app.layer(axum::middleware::from_fn_with_state(metrics, track))
}

/// Counts every request by method, route template and status, and records
/// its latency (see [`Metrics::observe_http`]).
async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let resp = next.run(req).await;
    metrics.observe_http(
        method.as_str(),
        route.as_deref().unwrap_or("unmatched"),
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

async fn healthz(State(st): State<AppState>) -> Response {
    // Healthy means the database answers; cameras may be down without the
    // service being unhealthy (gates keep working from plate events).
    match sqlx::query("SELECT 1").execute(st.store.pool()).await {
        Ok(_) => Json(serde_json::json!({ "status": "ok", "site": st.site })).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "degraded", "database": e.to_string() })),
        )
            .into_response(),
    }
}

async fn metrics_page(State(st): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

/// Binds and serves until `shutdown` resolves. Returns the bound address at once.
pub async fn serve(
    addr: &str,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), HttpError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| HttpError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "http server stopped");
        }
    });
    Ok((local, handle))
}

/// `GET /api/displays`: the board figures for displays that poll HTTP.
async fn displays(
    axum::extract::State(st): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::Json(crate::occupancy::displays::displays_json(
        &st.site,
        st.occupancy.as_ref(),
    ))
    .into_response()
}
