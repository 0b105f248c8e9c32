//! Liveness, readiness and metrics endpoints.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::HttpState;
use crate::db;

/// How long a readiness probe waits for each dependency.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// The instance can serve when the database answers: 200, or 503 naming what is down.
/// Redis is reported but not required — without it the cache falls back to the database and
/// live events to this instance — so a Redis outage shows as `"degraded": true` rather than
/// taking every instance out of the load balancer at once. Redis is pinged on one connection
/// kept for the probes ([`HttpState::probe_redis`]): a probe every few seconds from each load
/// balancer must not open a connection each time.
pub async fn readyz(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    let database = match tokio::time::timeout(PROBE_TIMEOUT, state.app.db.ping()).await {
        Ok(Ok(())) => "ok",
        _ => "unavailable",
    };
    let redis = match &state.probe_redis {
        None => "not_configured",
        Some(conn) => match conn.run::<String>(redis::cmd("PING")).await {
            Ok(_) => "ok",
            Err(_) => "unavailable",
        },
    };
    let ready = database == "ok";
    let events = &state.app.events;
    let degraded = redis == "unavailable" || !events.connected();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "ready": ready,
            "degraded": degraded,
            "database": database,
            "redis": redis,
            "events": { "backend": events.backend(), "connected": events.connected() },
        })),
    )
}

pub async fn metrics(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    let body = state.app.metrics.render(db::pool_stats(&state.app.db));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}
