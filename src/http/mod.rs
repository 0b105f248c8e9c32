//! The HTTP surface: routes, and nothing but translating HTTP to GraphQL and back.
//!
//! | route | what |
//! |---|---|
//! | `GET /`, `GET /ide/*` | GraphiQL, served from the binary ([`ide`]; development, or `PUSHHAND_GRAPHIQL=true`) |
//! | `POST /graphql`, `GET /graphql` | GraphQL (GET: queries only; POST: `application/json`, or `multipart/form-data` for uploads) |
//! | `GET /media/{key}` | uploaded images and their thumbnails, cached for a year ([`media`]) |
//! | `GET /graphql/ws` | GraphQL over WebSocket (`graphql-transport-ws` and `graphql-ws`) |
//! | `GET /healthz`, `GET /readyz` | liveness, readiness (database and Redis) |
//! | `POST /payments/{wechat,alipay,sandbox}/notify` | providers' payment notifications, verified then booked ([`payments`]) |
//! | `POST /payments/{wechat,alipay,sandbox}/refund-notify` | providers' refund notifications, verified then recorded ([`payments`]) |
//! | `POST /payments/sandbox/{intentId}/pay` | the sandbox's pay button (development only) |
//! | `POST /payouts/wechat/notify` | WeChat Pay's transfer (payout) notifications ([`payouts`]) |
//! | `GET /s/{code}` | a share code's short link: counts the visit, redirects to the storefront ([`short_link`]) |
//! | `GET /posters/{key}.png` | a share poster's PNG, by the signed key `sharePoster` gave ([`posters`]) |
//! | `GET /metrics` | Prometheus text (on `PUSHHAND_METRICS_ADDR` only, when set) |
//!
//! Browsers on the origins of `PUSHHAND_CORS_ORIGINS` may call `/graphql` and open
//! `/graphql/ws` ([`cors`]).
//!
//! Every request has an ID (`x-request-id`, taken or made, echoed), a `request` span and an
//! INFO access log line ([`access`]).
//!
//! Anonymous catalog reads and members' reads of their own views are answered from the
//! response cache when they can be ([`crate::responses`]; a stored answer as a response:
//! [`answers`]).
//!
//! Connections are accepted by [`serve`] (header-read timeout, connection cap); every route
//! has a body-read timeout and a whole-request timeout (503, `TIMEOUT`). The client's
//! address is the TCP peer's, or the forwarded one behind a trusted proxy ([`client`]).

pub mod access;
pub mod answers;
pub mod client;
pub mod cors;
mod graphql;
mod health;
mod ide;
mod media;
pub mod payments;
pub mod payouts;
pub mod persisted;
mod posters;
pub mod serve;
mod short_link;
mod ws;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::time::Duration;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::graphql::transport::api::Api;
use crate::redis_conn::LazyRedis;
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
    /// Whose `X-Forwarded-For` to believe ([`client`]).
    pub proxies: client::TrustedProxies,
    /// The browser origins allowed (`PUSHHAND_CORS_ORIGINS`), for the WebSocket upgrade.
    pub origins: cors::Origins,
    /// Open WebSockets per client address (`PUSHHAND_WS_MAX_PER_CLIENT`).
    pub ws_clients: ws::PerClient,
    /// The readiness probe's Redis connection, opened on first use and reused (reopened
    /// after a failure), when Redis is configured.
    pub probe_redis: Option<LazyRedis>,
    /// Automatic persisted queries' documents ([`persisted`]).
    pub persisted: persisted::PersistedQueries,
    /// The short link's visits, recorded in groups ([`crate::service::funnel::Visits`]).
    pub visits: crate::service::funnel::Visits,
}

/// The routers: the public one, and the one that serves `/metrics` alone (on
/// `PUSHHAND_METRICS_ADDR`, when set; the public router then has no `/metrics`).
pub struct Routers {
    pub public: Router,
    pub metrics: Router,
}

pub fn router(
    app: AppState,
    api: std::sync::Arc<Api>,
    shutdown: CancellationToken,
    connections: TaskTracker,
) -> Routers {
    let config = app.config.clone();
    // Shared, not copied per request: the state holds the app's clients and settings.
    let probe_redis = app
        .redis
        .clone()
        .map(|client| LazyRedis::new(client, health::PROBE_TIMEOUT));
    // Checked by `check_config`; an unparsable list trusts nobody.
    let proxies = client::TrustedProxies::parse(&config.trusted_proxies).unwrap_or_default();
    let persisted = persisted::PersistedQueries::new(&config, app.redis.clone());
    // Checked by `check_config`; an unparsable list allows no other origin.
    let origins = cors_origins(&config).unwrap_or(cors::Origins::List(Vec::new()));
    let cors = origins.layer(&[graphql::REPORT_COST_HEADER]);
    let visits = crate::service::funnel::Visits::start(app.visits_db.clone(), app.events.clone());
    let state = std::sync::Arc::new(HttpState {
        visits,
        api,
        app,
        shutdown,
        connections,
        proxies,
        origins,
        ws_clients: ws::PerClient::new(config.ws_max_per_client),
        probe_redis,
        persisted,
    });
    let mut public = Router::new();
    if config.graphiql_enabled() {
        public = public
            .route("/", get(ide::page))
            .route("/ide/{name}", get(ide::asset));
    }
    public = public
        .route(
            "/graphql",
            get(graphql::get)
                .post(graphql::post)
                .layer(DefaultBodyLimit::max(config.limits.max_body_bytes)),
        )
        .route("/graphql/ws", get(ws::upgrade))
        .route("/media/{*key}", get(media::get))
        .route(
            "/payments/wechat/notify",
            post(payments::wechat).layer(DefaultBodyLimit::max(payments::MAX_NOTIFICATION_BYTES)),
        )
        .route(
            "/payments/alipay/notify",
            post(payments::alipay).layer(DefaultBodyLimit::max(payments::MAX_NOTIFICATION_BYTES)),
        )
        .route(
            "/payments/wechat/refund-notify",
            post(payments::wechat_refund)
                .layer(DefaultBodyLimit::max(payments::MAX_NOTIFICATION_BYTES)),
        )
        .route(
            "/payments/alipay/refund-notify",
            post(payments::alipay_refund)
                .layer(DefaultBodyLimit::max(payments::MAX_NOTIFICATION_BYTES)),
        )
        .route("/s/{code}", get(short_link::visit))
        .route("/posters/{file}", get(posters::png))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route(
            "/payouts/wechat/notify",
            post(payouts::wechat).layer(DefaultBodyLimit::max(payments::MAX_NOTIFICATION_BYTES)),
        );
    // The sandbox exists in development only (`PUSHHAND_PAYMENTS_SANDBOX`).
    if state.app.payments.sandbox().is_some() {
        public = public
            .route(
                "/payments/sandbox/notify",
                post(payments::sandbox)
                    .layer(DefaultBodyLimit::max(payments::MAX_NOTIFICATION_BYTES)),
            )
            .route(
                "/payments/sandbox/{intent_id}/pay",
                post(payments::sandbox_pay),
            )
            .route(
                "/payments/sandbox/refund-notify",
                post(payments::sandbox_refund)
                    .layer(DefaultBodyLimit::max(payments::MAX_NOTIFICATION_BYTES)),
            )
            .route(
                "/payments/sandbox/refunds/{refund_id}/{outcome}",
                post(payments::sandbox_refund_outcome),
            );
    }
    if config.metrics_addr.is_none() {
        public = public.route("/metrics", get(health::metrics));
    }
    let metrics = Router::new()
        .route("/metrics", get(health::metrics))
        .with_state(state.clone());
    let request_timeout = Duration::from_millis(config.request_timeout_ms);
    let public = public
        // Between two pieces of a body (a trickle of pieces is the whole-request timeout's).
        .layer(RequestBodyTimeoutLayer::new(Duration::from_millis(
            config.body_read_timeout_ms,
        )))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            within(request_timeout, req, next)
        }))
        .layer(compression(config.compress_from_bytes))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(access::span)
                .on_response(access::log),
        )
        // The request's ID, taken or made before the span opens, echoed in the answer.
        .layer(PropagateRequestIdLayer::new(access::REQUEST_ID))
        .layer(SetRequestIdLayer::new(access::REQUEST_ID, MakeRequestUuid))
        // Outermost: a preflight is answered here, before routing (which knows no OPTIONS).
        .layer(cors)
        .with_state(state);
    Routers { public, metrics }
}

/// gzip or brotli, as `Accept-Encoding` prefers, for answers of at least `from` bytes (0:
/// none). The fastest useful level (1 of gzip's 9, 1 of brotli's 11), since answers executed
/// every time are compressed every time: on a 39 KB page of 50 products gzip 1 gives 11.2 KB
/// against 11.1 KB at level 3 and 10.6 KB at 6, for two thirds and a third of their CPU.
/// Answers that already say `content-encoding` (the response cache's stored gzip) are left
/// as they are; so are WebSocket upgrades.
fn compression(from: u16) -> CompressionLayer<impl Predicate> {
    let wanted = move |status: axum::http::StatusCode,
                       _: axum::http::Version,
                       _: &axum::http::HeaderMap,
                       _: &axum::http::Extensions| {
        from > 0 && status != axum::http::StatusCode::SWITCHING_PROTOCOLS
    };
    CompressionLayer::new()
        .gzip(true)
        .br(true)
        .quality(CompressionLevel::Precise(1))
        .compress_when(
            SizeAbove::new(from)
                .and(NotForContentType::SSE)
                .and(NotForContentType::IMAGES)
                .and(wanted),
        )
}

/// The whole-request timeout: a request that has not been answered within `limit` (body
/// read, execution, a dependency that hangs) gets 503 with a `TIMEOUT` GraphQL error. A
/// WebSocket is answered (101) at once, so this never limits its life.
async fn within(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            let ms = limit.as_millis();
            let body = serde_json::json!({ "errors": [{
                "message": format!("the request took longer than {ms} ms"),
                "extensions": { "code": "TIMEOUT" },
            }] });
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(body),
            )
                .into_response()
        }
    }
}

/// The browser origins allowed (`PUSHHAND_CORS_ORIGINS`, or the environment's default).
fn cors_origins(config: &crate::config::Config) -> anyhow::Result<cors::Origins> {
    cors::Origins::parse(
        config.cors_origins.as_deref(),
        config.environment == crate::config::Environment::Development,
    )
}

/// Checks the HTTP settings [`Config::validate`] leaves to this module: the trusted proxies
/// and the allowed origins parse. The server runs it before binding.
pub fn check_config(config: &crate::config::Config) -> anyhow::Result<()> {
    use anyhow::Context as _;
    client::TrustedProxies::parse(&config.trusted_proxies).context("PUSHHAND_TRUSTED_PROXIES")?;
    cors_origins(config)?;
    short_link::storefront(&config.storefront_url).context("PUSHHAND_STOREFRONT_URL")?;
    Ok(())
}
