//! The HTTP surface: routes, and nothing but translating HTTP to GraphQL and back.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | GraphiQL |
//! | `POST /graphql`, `GET /graphql` | GraphQL (GET: queries only) |
//! | `GET /graphql/ws` | GraphQL over WebSocket (`graphql-transport-ws` and `graphql-ws`) |
//! | `GET /healthz`, `GET /readyz` | liveness, readiness (database and Redis) |
//! | `GET /metrics` | Prometheus text |

mod graphql;
mod health;
mod ws;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tower_http::trace::TraceLayer;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::graphql::api::Api;
use crate::state::AppState;

/// State of the HTTP handlers: the schema and the resources behind it.
#[derive(Clone)]
pub struct HttpState {
    pub api: std::sync::Arc<Api>,
    pub app: AppState,
    /// Cancelled when the server shuts down: WebSocket connections close with 1001.
    pub shutdown: CancellationToken,
    /// The open WebSocket connections, so that shutdown can wait for their close frames.
    pub connections: TaskTracker,
}

pub fn router(
    app: AppState,
    api: std::sync::Arc<Api>,
    shutdown: CancellationToken,
    connections: TaskTracker,
) -> Router {
    Router::new()
        .route("/", get(graphql::graphiql))
        .route(
            "/graphql",
            get(graphql::get)
                .post(graphql::post)
                .layer(DefaultBodyLimit::max(app.config.limits.max_body_bytes)),
        )
        .route("/graphql/ws", get(ws::upgrade))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .layer(TraceLayer::new_for_http())
        // Shared, not copied per request: the state holds the app's clients and settings.
        .with_state(std::sync::Arc::new(HttpState {
            api,
            app,
            shutdown,
            connections,
        }))
}
