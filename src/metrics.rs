//! Prometheus metrics of one server instance, rendered at `/metrics`.
//!
//! Each app owns its own registry (no global recorder), so tests that start several apps in
//! one process read their own numbers.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Connection counts of the database pool, as [`crate::db::pool_stats`] reads them: the
/// figures [`Metrics::render`] reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `query`, `mutation`, `subscription`, or `invalid` when the document did not parse.
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `redis` or `memory`.
    pub backend: &'static str,
    /// `hit`, `miss` or `error`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheCallLabels {
    pub backend: &'static str,
    /// `get`, `set` or `delete`.
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseCacheLabels {
    /// `hit`, `miss`, `bypass` (not cacheable) or `error` (a cache call failed).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PosterLabels {
    /// `svg` or `png`.
    pub form: &'static str,
    /// `hit` (served from the poster cache) or `miss` (composed or rendered).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViewerLabels {
    /// `remembered` or `read`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `redis` or `memory`.
    pub backend: &'static str,
    /// `published`, `local_only` (the bus was down) or `received`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    /// The WebSocket close code the server sent.
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub state: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// The instance's metrics; clone the handles freely, they share their values.
pub struct Metrics {
    registry: Registry,
    pub graphql_requests: Family<OperationLabels, Counter>,
    pub graphql_duration: HistogramFamily<OperationLabels>,
    pub graphql_errors: Family<CodeLabels, Counter>,
    pub db_statements: Counter,
    pub db_statement_failures: Counter,
    pub db_statement_duration: Histogram,
    pub db_pool_connections: Family<PoolLabels, Gauge>,
    pub checkout_statement_orders: Histogram,
    pub checkout_splits: Counter,
    pub cache_requests: Family<CacheLabels, Counter>,
    pub cache_calls: Family<CacheCallLabels, Counter>,
    pub response_cache: Family<ResponseCacheLabels, Counter>,
    pub posters: Family<PosterLabels, Counter>,
    pub viewer_rows: Family<ViewerLabels, Counter>,
    pub events: Family<EventLabels, Counter>,
    pub event_resyncs: Counter,
    pub ws_connections: Gauge,
    pub ws_subscriptions: Gauge,
    pub ws_closes: Family<CloseLabels, Counter>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::default();
        let graphql_requests = Family::<OperationLabels, Counter>::default();
        let graphql_duration =
            HistogramFamily::<OperationLabels>::new_with_constructor(latency_histogram);
        let graphql_errors = Family::<CodeLabels, Counter>::default();
        let db_statements = Counter::default();
        let db_statement_failures = Counter::default();
        let db_statement_duration = latency_histogram();
        let db_pool_connections = Family::<PoolLabels, Gauge>::default();
        // 1 .. 64 orders
        let checkout_statement_orders = Histogram::new(exponential_buckets(1.0, 2.0, 7));
        let checkout_splits = Counter::default();
        let cache_requests = Family::<CacheLabels, Counter>::default();
        let cache_calls = Family::<CacheCallLabels, Counter>::default();
        let response_cache = Family::<ResponseCacheLabels, Counter>::default();
        let posters = Family::<PosterLabels, Counter>::default();
        let viewer_rows = Family::<ViewerLabels, Counter>::default();
        let events = Family::<EventLabels, Counter>::default();
        let event_resyncs = Counter::default();
        let ws_connections = Gauge::default();
        let ws_subscriptions = Gauge::default();
        let ws_closes = Family::<CloseLabels, Counter>::default();
        registry.register(
            "pushhand_events",
            "Live events by bus backend and outcome",
            events.clone(),
        );
        registry.register(
            "pushhand_event_resyncs",
            "Times subscribers were told to resync (event subscriber (re)connected)",
            event_resyncs.clone(),
        );
        registry.register(
            "pushhand_ws_connections",
            "Open GraphQL WebSocket connections",
            ws_connections.clone(),
        );
        registry.register(
            "pushhand_ws_subscriptions",
            "Active operations on GraphQL WebSocket connections",
            ws_subscriptions.clone(),
        );
        registry.register(
            "pushhand_ws_closes",
            "WebSocket connections closed by the server, by close code",
            ws_closes.clone(),
        );
        registry.register(
            "pushhand_cache_calls",
            "Cache round trips by backend and operation",
            cache_calls.clone(),
        );
        registry.register(
            "pushhand_cache_requests",
            "Cache look-ups by backend and outcome (hit, miss, error)",
            cache_requests.clone(),
        );
        registry.register(
            "pushhand_response_cache",
            "Anonymous catalog reads by response-cache outcome (hit, miss, bypass), and failed \
             response-cache calls (error)",
            response_cache.clone(),
        );
        registry.register(
            "pushhand_posters",
            "Share posters asked for, by form (svg, png) and poster-cache outcome (hit, miss)",
            posters.clone(),
        );
        registry.register(
            "pushhand_viewer_rows",
            "Signed-in members' rows of HTTP requests, by where they came from (remembered from \
             an earlier request, or read)",
            viewer_rows.clone(),
        );
        registry.register(
            "pushhand_graphql_requests",
            "GraphQL requests by operation type",
            graphql_requests.clone(),
        );
        registry.register(
            "pushhand_graphql_request_duration_seconds",
            "GraphQL request latency by operation type",
            graphql_duration.clone(),
        );
        registry.register(
            "pushhand_graphql_errors",
            "GraphQL errors returned, by extensions.code",
            graphql_errors.clone(),
        );
        registry.register(
            "pushhand_db_statements",
            "SQL statements executed",
            db_statements.clone(),
        );
        registry.register(
            "pushhand_db_statement_failures",
            "SQL statements that returned an error",
            db_statement_failures.clone(),
        );
        registry.register(
            "pushhand_db_statement_duration_seconds",
            "SQL statement latency",
            db_statement_duration.clone(),
        );
        registry.register(
            "pushhand_db_pool_connections",
            "Database pool connections by state (idle, in_use), sampled at scrape time",
            db_pool_connections.clone(),
        );
        registry.register(
            "pushhand_checkout_statement_orders",
            "Orders written by one checkout statement (checkouts of one SKU are combined on \
             PostgreSQL)",
            checkout_statement_orders.clone(),
        );
        registry.register(
            "pushhand_checkout_splits",
            "Combined checkout statements that failed and were sent again order by order",
            checkout_splits.clone(),
        );
        Arc::new(Metrics {
            registry,
            graphql_requests,
            graphql_duration,
            graphql_errors,
            db_statements,
            db_statement_failures,
            db_statement_duration,
            db_pool_connections,
            checkout_statement_orders,
            checkout_splits,
            cache_requests,
            cache_calls,
            response_cache,
            posters,
            viewer_rows,
            events,
            event_resyncs,
            ws_connections,
            ws_subscriptions,
            ws_closes,
        })
    }

    pub fn count_events(&self, backend: &'static str, outcome: &'static str, n: usize) {
        self.events
            .get_or_create(&EventLabels { backend, outcome })
            .inc_by(n as u64);
    }

    /// One GraphQL request of `operation` type that took `seconds`.
    pub fn count_graphql_request(&self, operation: &'static str, seconds: f64) {
        let labels = OperationLabels { operation };
        self.graphql_requests.get_or_create(&labels).inc();
        self.graphql_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    pub fn count_response_cache(&self, outcome: &'static str) {
        self.response_cache
            .get_or_create(&ResponseCacheLabels { outcome })
            .inc();
    }

    /// A share poster in `form` (`svg`, `png`) served from the cache (`hit`) or made (`miss`).
    pub fn count_poster(&self, form: &'static str, outcome: &'static str) {
        self.posters
            .get_or_create(&PosterLabels { form, outcome })
            .inc();
    }

    pub fn count_viewer_row(&self, outcome: &'static str) {
        self.viewer_rows
            .get_or_create(&ViewerLabels { outcome })
            .inc();
    }

    /// Records the pool's current state, then renders everything in the Prometheus text format.
    pub fn render(&self, pool: PoolStats) -> String {
        let in_use = i64::from(pool.size.saturating_sub(pool.idle));
        self.db_pool_connections
            .get_or_create(&PoolLabels { state: "idle" })
            .set(i64::from(pool.idle));
        self.db_pool_connections
            .get_or_create(&PoolLabels { state: "in_use" })
            .set(in_use);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
