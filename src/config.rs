//! Typed settings: defaults in code, overridden by environment variables or flags, checked
//! once at start so that bad configuration fails fast with a clear message.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use rust_decimal::Decimal;

/// Where the server runs: development generates what it lacks (a JWT secret, demo data),
/// production refuses to start without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// A secret string that never shows up in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// Everything the server reads from its environment.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Database URL: `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    /// Default: a SQLite file under the data directory.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Redis URL. Optional: without it the cache and pub/sub stay in-process.
    #[arg(long, env = "REDIS_URL", global = true)]
    pub redis_url: Option<String>,

    /// Address to listen on.
    #[arg(
        long,
        env = "BIND_ADDR",
        default_value = "127.0.0.1:8000",
        global = true
    )]
    pub bind_addr: SocketAddr,

    /// `development` or `production`.
    #[arg(
        long = "env",
        env = "PUSHHAND_ENV",
        value_enum,
        default_value = "development",
        global = true
    )]
    pub environment: Environment,

    /// Secret for signing tokens. Required in production (at least 32 bytes); in development
    /// it is generated once and kept in `<data dir>/jwt_secret`.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<Secret>,

    /// Directory for local state: the default SQLite database and the development JWT secret.
    #[arg(long, env = "PUSHHAND_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,

    /// Seed the demo catalog into an empty database on start (development only; production
    /// never seeds).
    #[arg(long, env = "PUSHHAND_SEED_DEMO", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub seed_demo: bool,

    /// Maximum database connections in the pool. Default: 16 on PostgreSQL; on SQLite twice
    /// the cores (each SQLite connection is a thread the statements hop to, and one writer
    /// runs at a time: measured on one core, 1–2 connections serve 20 % more than 16).
    #[arg(long, env = "PUSHHAND_DB_MAX_CONNECTIONS", global = true)]
    pub db_max_connections: Option<u32>,

    /// How long a request waits for a database connection before failing, in milliseconds.
    #[arg(
        long,
        env = "PUSHHAND_DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 5_000,
        global = true
    )]
    pub db_acquire_timeout_ms: u64,

    /// PostgreSQL `statement_timeout`, in milliseconds: a statement running longer is
    /// cancelled (`UNAVAILABLE`), so no query holds a connection forever.
    #[arg(
        long,
        env = "PUSHHAND_DB_STATEMENT_TIMEOUT_MS",
        default_value_t = 5_000,
        global = true
    )]
    pub db_statement_timeout_ms: u64,

    /// How long a cached quality passport lives, in seconds (writes also drop it at once).
    #[arg(
        long,
        env = "PUSHHAND_CACHE_TTL_SECONDS",
        default_value_t = 3_600,
        global = true
    )]
    pub cache_ttl_seconds: u64,

    /// Serve anonymous catalog reads (`products`, `product`, `categories`, `node`) and
    /// members' reads of their own views (`me`) from the response cache (Redis when
    /// configured, in-process otherwise).
    #[arg(long, env = "PUSHHAND_RESPONSE_CACHE", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub response_cache: bool,

    /// How long a cached response lives, in seconds (the changes it shows drop it at once).
    #[arg(
        long,
        env = "PUSHHAND_RESPONSE_CACHE_TTL_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub response_cache_ttl_seconds: u64,

    /// Answer automatic persisted queries (Apollo's protocol: `extensions.persistedQuery`).
    /// Off: such requests get `PERSISTED_QUERY_NOT_SUPPORTED` and clients send the text.
    #[arg(long, env = "PUSHHAND_PERSISTED_QUERIES", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub persisted_queries: bool,

    /// How long a persisted query's document is kept after its last use, in seconds (in
    /// Redis when configured, in-process otherwise).
    #[arg(
        long,
        env = "PUSHHAND_PERSISTED_QUERIES_TTL_SECONDS",
        default_value_t = 604_800,
        global = true
    )]
    pub persisted_queries_ttl_seconds: u64,

    /// Bound on the in-process store of persisted query documents, in bytes of text (the
    /// whole store without Redis; the local copy of hot documents with it).
    #[arg(
        long,
        env = "PUSHHAND_PERSISTED_QUERIES_MAX_BYTES",
        default_value_t = 16 * 1024 * 1024,
        global = true
    )]
    pub persisted_queries_max_bytes: u64,

    /// How often each instance runs its background jobs (expiry, auto-completion,
    /// settlement), in seconds.
    #[arg(
        long,
        env = "PUSHHAND_JOB_INTERVAL_SECONDS",
        default_value_t = 60,
        global = true
    )]
    pub job_interval_seconds: u64,

    /// How often each instance writes the units sold (`salesCount`) its payments tallied, in
    /// milliseconds: `salesCount` trails payments by up to this long, and a crash loses what
    /// was tallied since the last write.
    #[arg(
        long,
        env = "PUSHHAND_UNITS_SOLD_INTERVAL_MS",
        default_value_t = 1000,
        global = true
    )]
    pub units_sold_interval_ms: u64,

    /// How often each instance looks for webhook deliveries due, in milliseconds, while an
    /// endpoint is enabled (events this instance commits wake it at once; this picks up other
    /// instances' leftovers and retries).
    #[arg(
        long,
        env = "PUSHHAND_WEBHOOK_POLL_MS",
        default_value_t = 5000,
        global = true
    )]
    pub webhook_poll_ms: u64,

    /// How long a signed-in member's row is remembered between its requests, in
    /// milliseconds (0: read on every request). A change of the member is in force at once
    /// on the instance that made it; on the others, a revocation as soon as its event
    /// arrives (Redis), any other change within this long.
    #[arg(
        long,
        env = "PUSHHAND_VIEWER_TTL_MS",
        default_value_t = 1000,
        global = true
    )]
    pub viewer_ttl_ms: u64,

    /// Lifetime of member tokens, in hours.
    #[arg(
        long,
        env = "PUSHHAND_TOKEN_TTL_HOURS",
        default_value_t = 24,
        global = true
    )]
    pub token_ttl_hours: u32,

    /// Failed credential attempts per minute allowed on one account (logins, password
    /// changes), and invite-code / partner-link guesses per minute from one client address,
    /// before `RATE_LIMITED` ([`crate::ratelimit`]).
    #[arg(
        long,
        env = "PUSHHAND_AUTH_FAILURES_PER_MINUTE",
        default_value_t = 5,
        global = true
    )]
    pub auth_failures_per_minute: u32,

    /// Failed credential attempts per minute allowed from one client address, whatever the
    /// account (logins, registrations refused as `EMAIL_TAKEN`/`PHONE_TAKEN`, codes), before
    /// `RATE_LIMITED`. Generous: many people may share an address.
    #[arg(
        long,
        env = "PUSHHAND_AUTH_ADDRESS_FAILURES_PER_MINUTE",
        default_value_t = 50,
        global = true
    )]
    pub auth_address_failures_per_minute: u32,

    /// Password hashes (argon2id, 19 MiB each) computed at once; 0: one per core.
    #[arg(
        long,
        env = "PUSHHAND_HASH_CONCURRENCY",
        default_value_t = 0,
        global = true
    )]
    pub hash_concurrency: u32,

    /// Password hashes allowed to wait for a hashing slot; beyond, `UNAVAILABLE` at once.
    #[arg(long, env = "PUSHHAND_HASH_QUEUE", default_value_t = 32, global = true)]
    pub hash_queue: u32,

    /// WebSocket: seconds a client has to send `connection_init` before close 4408.
    #[arg(
        long,
        env = "PUSHHAND_WS_INIT_TIMEOUT_SECONDS",
        default_value_t = 3,
        global = true
    )]
    pub ws_init_timeout_seconds: u64,

    /// WebSocket: seconds between the server's keep-alive pings.
    #[arg(
        long,
        env = "PUSHHAND_WS_KEEPALIVE_SECONDS",
        default_value_t = 15,
        global = true
    )]
    pub ws_keepalive_seconds: u64,

    /// WebSocket: active operations allowed on one connection.
    #[arg(
        long,
        env = "PUSHHAND_WS_MAX_SUBSCRIPTIONS",
        default_value_t = 20,
        global = true
    )]
    pub ws_max_subscriptions: usize,

    /// WebSocket: largest client message, in bytes (larger ones close the connection, 1009).
    #[arg(
        long,
        env = "PUSHHAND_WS_MAX_MESSAGE_BYTES",
        default_value_t = 64 * 1024,
        global = true
    )]
    pub ws_max_message_bytes: usize,

    /// Serve GraphiQL at `GET /`. Default: on in development, off in production.
    #[arg(long, env = "PUSHHAND_GRAPHIQL", global = true)]
    pub graphiql: Option<bool>,

    /// Answer introspection (`__schema`, `__type`). Default: on in development, off in
    /// production (`INTROSPECTION_DISABLED`).
    #[arg(long, env = "PUSHHAND_INTROSPECTION", global = true)]
    pub introspection: Option<bool>,

    /// Serve `/metrics` on this address only (e.g. a private interface) instead of on the
    /// main listener.
    #[arg(long, env = "PUSHHAND_METRICS_ADDR", global = true)]
    pub metrics_addr: Option<SocketAddr>,

    /// Connections: how long a client has to send a request's head (line and headers),
    /// counted from when the connection starts waiting for it — so also how long a kept-alive
    /// connection may sit idle between requests — in milliseconds.
    #[arg(
        long,
        env = "PUSHHAND_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000,
        global = true
    )]
    pub header_read_timeout_ms: u64,

    /// Connections: longest wait for the next piece of a request body, in milliseconds.
    #[arg(
        long,
        env = "PUSHHAND_BODY_READ_TIMEOUT_MS",
        default_value_t = 10_000,
        global = true
    )]
    pub body_read_timeout_ms: u64,

    /// Longest a request may take from its head to its answer, in milliseconds: then 503
    /// with a `TIMEOUT` GraphQL error (a hung dependency cannot hold a request forever).
    #[arg(
        long,
        env = "PUSHHAND_REQUEST_TIMEOUT_MS",
        default_value_t = 30_000,
        global = true
    )]
    pub request_timeout_ms: u64,

    /// Most open client connections (WebSockets included); beyond, new connections wait in
    /// the listen backlog until one closes. Keep it below the open-files limit (`ulimit -n`),
    /// leaving room for database and Redis connections.
    #[arg(
        long,
        env = "PUSHHAND_MAX_CONNECTIONS",
        default_value_t = 900,
        global = true
    )]
    pub max_connections: usize,

    /// WebSocket: open connections allowed from one client address (beyond: 429,
    /// `TOO_MANY_CONNECTIONS`). The address is the one `PUSHHAND_TRUSTED_PROXIES` resolves.
    #[arg(
        long,
        env = "PUSHHAND_WS_MAX_PER_CLIENT",
        default_value_t = 64,
        global = true
    )]
    pub ws_max_per_client: usize,

    /// Proxies whose `X-Forwarded-For` is believed: comma-separated IPs or CIDRs
    /// (`10.0.0.0/8,::1`). Default: none, the client is the TCP peer.
    #[arg(
        long,
        env = "PUSHHAND_TRUSTED_PROXIES",
        default_value = "",
        global = true
    )]
    pub trusted_proxies: String,

    /// Where a short link `/s/{code}` sends its visitors (302): the storefront (web or H5 page)
    /// that reads the `code` query parameter added to it and passes it on to `addToCart`,
    /// `placeOrder` and `register`. An absolute http(s) URL.
    #[arg(
        long,
        env = "PUSHHAND_STOREFRONT_URL",
        default_value = "http://localhost:5173/",
        global = true
    )]
    pub storefront_url: String,

    /// Our public base URL as phones and browsers reach it (e.g. `https://api.example.com`):
    /// share posters' QR codes hold `<this>/s/{code}`, and their PNGs are at
    /// `<this>/posters/{key}.png`. An absolute http(s) URL.
    #[arg(
        long,
        env = "PUSHHAND_PUBLIC_URL",
        default_value = "http://127.0.0.1:8000",
        global = true
    )]
    pub public_url: String,

    /// Browser origins allowed to call the API (CORS) and open its WebSocket: comma-separated
    /// (`https://shop.example,http://localhost:5173`) or `*`. Default: in development any
    /// `http(s)://localhost`, `127.0.0.1` or `[::1]` origin on any port; in production none.
    #[arg(long, env = "PUSHHAND_CORS_ORIGINS", global = true)]
    pub cors_origins: Option<String>,

    /// Answers at least this large (bytes) are compressed, gzip or brotli as the client's
    /// `Accept-Encoding` prefers; 0 turns compression off (answers from the response cache
    /// keep their stored gzip form either way).
    #[arg(
        long,
        env = "PUSHHAND_COMPRESS_FROM_BYTES",
        default_value_t = 1024,
        global = true
    )]
    pub compress_from_bytes: u16,

    /// `Cache-Control: public, max-age=<this>` on anonymous GET answers from the response
    /// cache (they also carry an `ETag`; `If-None-Match` answers 304); 0 sends no
    /// `Cache-Control`.
    #[arg(
        long,
        env = "PUSHHAND_HTTP_MAX_AGE_SECONDS",
        default_value_t = 5,
        global = true
    )]
    pub http_max_age_seconds: u32,

    /// Log format: `text` or `json`.
    #[arg(
        long,
        env = "PUSHHAND_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub limits: QueryLimits,

    #[command(flatten)]
    pub policy: Policy,

    #[command(flatten)]
    pub payments: PaymentSettings,

    #[command(flatten)]
    pub media: MediaSettings,
}

/// Abuse limits (SPEC §5): what one request may ask of the server.
#[derive(Args, Clone, Debug)]
pub struct QueryLimits {
    /// Largest request body, in bytes (413 above it, before parsing).
    #[arg(long, env = "PUSHHAND_MAX_BODY_BYTES", default_value_t = 256 * 1024, global = true)]
    pub max_body_bytes: usize,
    /// Deepest field nesting (`QUERY_TOO_DEEP`).
    #[arg(long, env = "PUSHHAND_MAX_DEPTH", default_value_t = 12, global = true)]
    pub max_depth: usize,
    /// Deepest nesting of `[`, `{` and `(` in a document's text, and of lists and objects
    /// in its variables, checked by a linear scan before parsing (`QUERY_TOO_DEEP`).
    #[arg(
        long,
        env = "PUSHHAND_MAX_NESTING",
        default_value_t = 64,
        global = true
    )]
    pub max_nesting: usize,
    /// Deepest field nesting under `__schema`/`__type` (`QUERY_TOO_DEEP`; GraphiQL's
    /// introspection query is 13 deep).
    #[arg(
        long,
        env = "PUSHHAND_MAX_INTROSPECTION_DEPTH",
        default_value_t = 16,
        global = true
    )]
    pub max_introspection_depth: usize,
    /// Most values an introspection answer may hold by estimate, each list of types
    /// counted 200 long and every other list 20 (`QUERY_TOO_COMPLEX`; GraphiQL's query is
    /// about 2.7 million by this estimate).
    #[arg(
        long,
        env = "PUSHHAND_MAX_INTROSPECTION_COST",
        default_value_t = 10_000_000,
        global = true
    )]
    pub max_introspection_cost: u64,
    /// Highest cost of an operation (`QUERY_TOO_COMPLEX`): scalars and enums 0, objects 1,
    /// a connection `first` × one item (see `graphql::cost`).
    #[arg(
        long,
        env = "PUSHHAND_MAX_COMPLEXITY",
        default_value_t = 1_000,
        global = true
    )]
    pub max_complexity: usize,
    /// Every answer reports its cost in `extensions.cost` (a request can ask for it alone
    /// with the `x-pushhand-cost: 1` header).
    #[arg(long, env = "PUSHHAND_REPORT_COST", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub report_cost: bool,
    /// Most field selections with fragments expanded (`QUERY_TOO_LARGE`).
    #[arg(
        long,
        env = "PUSHHAND_MAX_SELECTIONS",
        default_value_t = 2_000,
        global = true
    )]
    pub max_selections: u64,
    /// Most fragment definitions in a document (`TOO_MANY_FRAGMENTS`).
    #[arg(
        long,
        env = "PUSHHAND_MAX_FRAGMENTS",
        default_value_t = 50,
        global = true
    )]
    pub max_fragments: usize,
    /// Most aliased fields in an operation, fragments expanded (`TOO_MANY_ALIASES`).
    #[arg(
        long,
        env = "PUSHHAND_MAX_ALIASES",
        default_value_t = 30,
        global = true
    )]
    pub max_aliases: u64,
    /// Most root fields in an operation (`TOO_MANY_ROOT_FIELDS`).
    #[arg(
        long,
        env = "PUSHHAND_MAX_ROOT_FIELDS",
        default_value_t = 20,
        global = true
    )]
    pub max_root_fields: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The business rules' numbers (SPEC §2), with the spec's defaults.
#[derive(Clone, Debug, Args)]
pub struct Policy {
    /// At most this many distinct brands may have published products in one leaf category.
    #[arg(
        long,
        env = "PUSHHAND_MAX_BRANDS_PER_CATEGORY",
        default_value_t = 8,
        global = true
    )]
    pub max_brands_per_category: u32,

    /// Every curation criterion must score at least this (1-5) for a product to be published.
    #[arg(long, env = "PUSHHAND_MIN_CRITERION_SCORE", default_value_t = 3,
          value_parser = clap::value_parser!(u8).range(1..=5), global = true)]
    pub min_criterion_score: u8,

    /// How long a partner's exclusive-link binding lasts, in days.
    #[arg(
        long,
        env = "PUSHHAND_PARTNER_BINDING_DAYS",
        default_value_t = 365,
        global = true
    )]
    pub partner_binding_days: u32,

    /// How many levels earn on a sale (1-3). More than 3 is refused: pay across three or more
    /// levels of recruits is treated as pyramid selling under Chinese law.
    #[arg(long, env = "PUSHHAND_COMMISSION_LEVELS", default_value_t = 2,
          value_parser = clap::value_parser!(u8).range(1..=3), global = true)]
    pub commission_levels: u8,

    /// Fixed reward per unit of a membership-activity product, in CNY.
    #[arg(
        long,
        env = "PUSHHAND_MEMBERSHIP_REWARD",
        default_value = "60.00",
        global = true
    )]
    pub membership_reward: Decimal,

    /// Optional daily cap per member on membership rewards, in CNY.
    #[arg(long, env = "PUSHHAND_MEMBERSHIP_REWARD_DAILY_CAP", global = true)]
    pub membership_reward_daily_cap: Option<Decimal>,

    /// Days after shipping when an order completes by itself.
    #[arg(
        long,
        env = "PUSHHAND_AUTO_COMPLETE_DAYS",
        default_value_t = 10,
        global = true
    )]
    pub auto_complete_days: u32,

    /// Days after completion before earnings settle (the statutory no-reason return window).
    #[arg(
        long,
        env = "PUSHHAND_RETURN_WINDOW_DAYS",
        default_value_t = 7,
        global = true
    )]
    pub return_window_days: u32,

    /// Smallest withdrawal, in CNY.
    #[arg(
        long,
        env = "PUSHHAND_MIN_WITHDRAWAL",
        default_value = "10.00",
        global = true
    )]
    pub min_withdrawal: Decimal,

    /// Fee on withdrawals, as a fraction (0.01 = 1 %).
    #[arg(
        long,
        env = "PUSHHAND_WITHDRAWAL_FEE_RATE",
        default_value = "0",
        global = true
    )]
    pub withdrawal_fee_rate: Decimal,

    /// Minutes before an unpaid order expires and releases its stock.
    #[arg(
        long,
        env = "PUSHHAND_PAYMENT_TIMEOUT_MINUTES",
        default_value_t = 30,
        global = true
    )]
    pub payment_timeout_minutes: u32,

    /// At most this many unpaid (unexpired) orders per member at once; more is
    /// `TOO_MANY_UNPAID_ORDERS` (one buyer cannot hold a SKU's stock in unpaid orders).
    #[arg(
        long,
        env = "PUSHHAND_MAX_UNPAID_ORDERS",
        default_value_t = 5,
        global = true
    )]
    pub max_unpaid_orders: u32,

    /// At most this many units of one SKU in one order; more is `QUANTITY_LIMIT`.
    #[arg(
        long,
        env = "PUSHHAND_MAX_UNITS_PER_SKU",
        default_value_t = 50,
        global = true
    )]
    pub max_units_per_sku: u32,

    /// Reports by this many members hide a public note until a curator reviews it.
    #[arg(
        long,
        env = "PUSHHAND_NOTE_REPORT_THRESHOLD",
        default_value_t = 5,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub note_report_threshold: u32,
}

impl Config {
    /// The database URL in force: the configured one, or the SQLite file under the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("pushhand.db").display()
            ),
        }
    }

    /// The pool size: as configured, else 32 on PostgreSQL and twice the cores on SQLite.
    /// A payment through a provider makes three round trips, two of them commits that wait
    /// for the WAL flush holding their connection: 16 left that path waiting for the pool
    /// (docs/performance.md, S10: 427–482 orders/s with 16, 628–648 with 32; S1 and S6 as
    /// fast or faster).
    pub fn db_pool_size(&self) -> u32 {
        self.db_max_connections.unwrap_or_else(|| {
            if self.database_url().starts_with("sqlite:") {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                (2 * cores as u32).clamp(2, 16)
            } else {
                32
            }
        })
    }

    /// Whether GraphiQL is served: as configured, else in development only.
    pub fn graphiql_enabled(&self) -> bool {
        self.graphiql
            .unwrap_or(self.environment == Environment::Development)
    }

    /// Whether introspection is answered: as configured, else in development only.
    pub fn introspection_enabled(&self) -> bool {
        self.introspection
            .unwrap_or(self.environment == Environment::Development)
    }

    pub fn db_acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.db_acquire_timeout_ms)
    }

    /// Checks what clap cannot: money amounts, rates, and the production requirements.
    /// (The HTTP settings — origins, trusted proxies — are checked by
    /// [`crate::http::check_config`], which the server runs beside this.)
    pub fn validate(&self) -> anyhow::Result<()> {
        let p = &self.policy;
        check_money("PUSHHAND_MEMBERSHIP_REWARD", p.membership_reward)?;
        check_money("PUSHHAND_MIN_WITHDRAWAL", p.min_withdrawal)?;
        if let Some(cap) = p.membership_reward_daily_cap {
            check_money("PUSHHAND_MEMBERSHIP_REWARD_DAILY_CAP", cap)?;
        }
        if p.withdrawal_fee_rate.is_sign_negative() || p.withdrawal_fee_rate >= Decimal::ONE {
            bail!("PUSHHAND_WITHDRAWAL_FEE_RATE must be at least 0 and below 1");
        }
        if p.max_unpaid_orders == 0 || p.max_units_per_sku == 0 {
            bail!("PUSHHAND_MAX_UNPAID_ORDERS and PUSHHAND_MAX_UNITS_PER_SKU must be at least 1");
        }
        if p.max_brands_per_category == 0 {
            bail!("PUSHHAND_MAX_BRANDS_PER_CATEGORY must be at least 1");
        }
        if self.ws_init_timeout_seconds == 0 || self.ws_keepalive_seconds == 0 {
            bail!(
                "PUSHHAND_WS_INIT_TIMEOUT_SECONDS and PUSHHAND_WS_KEEPALIVE_SECONDS must be at least 1"
            );
        }
        if self.ws_max_subscriptions == 0 || self.ws_max_message_bytes < 1024 {
            bail!(
                "PUSHHAND_WS_MAX_SUBSCRIPTIONS must be at least 1 and PUSHHAND_WS_MAX_MESSAGE_BYTES at least 1024"
            );
        }
        if self.header_read_timeout_ms == 0
            || self.body_read_timeout_ms == 0
            || self.request_timeout_ms == 0
        {
            bail!(
                "PUSHHAND_HEADER_READ_TIMEOUT_MS, PUSHHAND_BODY_READ_TIMEOUT_MS and PUSHHAND_REQUEST_TIMEOUT_MS must be at least 1"
            );
        }
        if self.max_connections == 0 || self.ws_max_per_client == 0 {
            bail!("PUSHHAND_MAX_CONNECTIONS and PUSHHAND_WS_MAX_PER_CLIENT must be at least 1");
        }
        if self.response_cache_ttl_seconds == 0 {
            bail!("PUSHHAND_RESPONSE_CACHE_TTL_SECONDS must be at least 1");
        }
        if self.persisted_queries_ttl_seconds == 0 {
            bail!("PUSHHAND_PERSISTED_QUERIES_TTL_SECONDS must be at least 1");
        }
        if self.db_max_connections == Some(0) {
            bail!("PUSHHAND_DB_MAX_CONNECTIONS must be at least 1");
        }
        let url = self.database_url();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            bail!("DATABASE_URL must start with sqlite: or postgres:, got {url:?}");
        }
        let public = self.public_url.trim();
        if !(public.starts_with("https://") || public.starts_with("http://"))
            || public.len() <= "https://".len()
            || public.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            bail!("PUSHHAND_PUBLIC_URL must be an absolute http(s) URL, got {public:?}");
        }
        self.payments.check(self.environment)?;
        self.media.check()?;
        if self.environment == Environment::Production {
            match &self.jwt_secret {
                None => bail!("JWT_SECRET is required when PUSHHAND_ENV=production"),
                Some(s) if s.expose().len() < 32 => {
                    bail!("JWT_SECRET must be at least 32 bytes long")
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The JWT secret in force. In development a missing secret is generated once and kept
    /// in the data directory, so tokens survive restarts without a constant in the code.
    pub fn resolve_jwt_secret(&self) -> anyhow::Result<Secret> {
        if let Some(secret) = &self.jwt_secret {
            return Ok(secret.clone());
        }
        if self.environment == Environment::Production {
            bail!("JWT_SECRET is required when PUSHHAND_ENV=production");
        }
        load_or_create_secret(&self.data_dir.join("jwt_secret"))
    }
}

fn check_money(name: &str, value: Decimal) -> anyhow::Result<()> {
    if value.is_sign_negative() || entity::Money::from_decimal(value).is_none() {
        bail!("{name} must be a non-negative amount with at most 2 decimal places, got {value}");
    }
    Ok(())
}

fn load_or_create_secret(path: &Path) -> anyhow::Result<Secret> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(Secret::new(existing));
        }
    }
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .context("reading OS randomness")?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, &secret).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    Ok(Secret::new(secret))
}

/// The payment channels' settings ([`crate::payments`]): which are enabled, and their ids and
/// keys. Keys are read from files (PEM) or the environment (the APIv3 key), never from the
/// repository; an enabled channel with a setting missing stops the server at start, naming
/// the variable (checked here; the files are read by `payments::Payments::from_config`).
#[derive(Clone, Debug, Args)]
pub struct PaymentSettings {
    /// The sandbox payment channel (`SANDBOX`): no provider, notifications signed by the
    /// server itself. Default: on in development; refused in production.
    #[arg(
        long = "payments-sandbox",
        env = "PUSHHAND_PAYMENTS_SANDBOX",
        global = true
    )]
    pub sandbox: Option<bool>,

    /// Our public base URL as the providers reach it (e.g. `https://api.example.com`): the
    /// notification URLs are `<this>/payments/<provider>/notify`. Required with WeChat Pay
    /// or Alipay enabled.
    #[arg(
        long = "payments-notify-base-url",
        env = "PUSHHAND_PAYMENTS_NOTIFY_BASE_URL",
        global = true
    )]
    pub notify_base_url: Option<String>,

    /// Enable WeChat Pay (`WECHAT_JSAPI`).
    #[arg(long, env = "PUSHHAND_WECHATPAY_ENABLED", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub wechat_enabled: bool,

    /// WeChat Pay API base URL: `http://`, an egress proxy that speaks TLS to
    /// `https://api.mch.weixin.qq.com` (the server carries no TLS client).
    #[arg(long, env = "PUSHHAND_WECHATPAY_BASE_URL", global = true)]
    pub wechat_base_url: Option<String>,

    /// WeChat Pay merchant id (`mchid`).
    #[arg(long, env = "PUSHHAND_WECHATPAY_MCH_ID", global = true)]
    pub wechat_mch_id: Option<String>,

    /// The app id (official account or mini-program) payers pay through.
    #[arg(long, env = "PUSHHAND_WECHATPAY_APP_ID", global = true)]
    pub wechat_app_id: Option<String>,

    /// The merchant API certificate's serial number.
    #[arg(long, env = "PUSHHAND_WECHATPAY_MERCHANT_SERIAL", global = true)]
    pub wechat_merchant_serial: Option<String>,

    /// File holding the merchant API private key (`apiclient_key.pem`).
    #[arg(long, env = "PUSHHAND_WECHATPAY_MERCHANT_KEY_FILE", global = true)]
    pub wechat_merchant_key_file: Option<PathBuf>,

    /// File holding the WeChat Pay public key (PEM) that signs notifications.
    #[arg(long, env = "PUSHHAND_WECHATPAY_PLATFORM_KEY_FILE", global = true)]
    pub wechat_platform_key_file: Option<PathBuf>,

    /// The WeChat Pay public key's id (`PUB_KEY_ID_…`), as notifications name it.
    #[arg(long, env = "PUSHHAND_WECHATPAY_PLATFORM_KEY_ID", global = true)]
    pub wechat_platform_key_id: Option<String>,

    /// The APIv3 key (32 bytes) that encrypts notification resources.
    #[arg(
        long,
        env = "PUSHHAND_WECHATPAY_APIV3_KEY",
        hide_env_values = true,
        global = true
    )]
    pub wechat_api_v3_key: Option<Secret>,

    /// Enable Alipay (`ALIPAY`).
    #[arg(long, env = "PUSHHAND_ALIPAY_ENABLED", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub alipay_enabled: bool,

    /// Alipay app id.
    #[arg(long, env = "PUSHHAND_ALIPAY_APP_ID", global = true)]
    pub alipay_app_id: Option<String>,

    /// File holding the app's private key (PEM, or the base64 Alipay's key tool prints).
    #[arg(long, env = "PUSHHAND_ALIPAY_APP_KEY_FILE", global = true)]
    pub alipay_app_key_file: Option<PathBuf>,

    /// File holding Alipay's public key (PEM or base64).
    #[arg(long, env = "PUSHHAND_ALIPAY_PUBLIC_KEY_FILE", global = true)]
    pub alipay_public_key_file: Option<PathBuf>,

    /// Alipay's gateway, where buyers' browsers are sent.
    #[arg(
        long,
        env = "PUSHHAND_ALIPAY_GATEWAY_URL",
        default_value = "https://openapi.alipay.com/gateway.do",
        global = true
    )]
    pub alipay_gateway_url: String,

    /// Where buyers return after paying with Alipay (optional).
    #[arg(long, env = "PUSHHAND_ALIPAY_RETURN_URL", global = true)]
    pub alipay_return_url: Option<String>,

    /// Our Alipay seller id (`2088…`): notifications for another are refused (optional).
    #[arg(long, env = "PUSHHAND_ALIPAY_SELLER_ID", global = true)]
    pub alipay_seller_id: Option<String>,

    /// Pay withdrawals by WeChat Pay transfer (商家转账, `WECHAT` payouts); needs WeChat Pay.
    #[arg(long, env = "PUSHHAND_WECHATPAY_PAYOUTS_ENABLED", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub wechat_payouts_enabled: bool,

    /// The transfer scene (`transfer_scene_id`) of WeChat Pay transfers: 1005 (佣金报酬).
    #[arg(
        long,
        env = "PUSHHAND_WECHATPAY_TRANSFER_SCENE_ID",
        default_value = "1005",
        global = true
    )]
    pub wechat_transfer_scene_id: String,

    /// Pay withdrawals by Alipay transfer (`alipay.fund.trans.uni.transfer`, `ALIPAY`
    /// payouts); needs Alipay and `PUSHHAND_ALIPAY_API_URL`.
    #[arg(long, env = "PUSHHAND_ALIPAY_PAYOUTS_ENABLED", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub alipay_payouts_enabled: bool,

    /// Where the server calls Alipay's API (refunds, transfers): `http://`, an egress proxy
    /// that speaks TLS to `https://openapi.alipay.com/gateway.do` (the server carries no TLS
    /// client). Optional for payments: without it, Alipay refunds fail visibly, naming this
    /// setting; Alipay payouts need it.
    #[arg(long, env = "PUSHHAND_ALIPAY_API_URL", global = true)]
    pub alipay_api_url: Option<String>,
}

/// Uploaded images ([`crate::media`]): where they are kept, how they are addressed, and the
/// limits an upload is held to.
#[derive(Clone, Debug, Args)]
pub struct MediaSettings {
    /// Directory of the local media store (uploaded images and their thumbnails), created if
    /// missing. Default: `<data dir>/media`.
    #[arg(long, env = "PUSHHAND_MEDIA_DIR", global = true)]
    pub media_dir: Option<PathBuf>,

    /// Where clients fetch media: `Image.url` is `<this>/<key>` (e.g.
    /// `https://shop.example.com/media`), absolute, so it can go into a note's `imageUrls`.
    /// Unset: a path from the server's root (`/media/<key>`).
    #[arg(long, env = "PUSHHAND_MEDIA_PUBLIC_URL", global = true)]
    pub media_public_url: Option<String>,

    /// Largest image file accepted, in bytes (`IMAGE_TOO_LARGE`). A multipart request body
    /// may be this plus `PUSHHAND_MAX_BODY_BYTES` (413 above it).
    #[arg(
        long,
        env = "PUSHHAND_MEDIA_MAX_BYTES",
        default_value_t = 10 * 1024 * 1024,
        global = true
    )]
    pub media_max_bytes: usize,

    /// Most pixels (width × height) an image may declare, read from its header before
    /// anything is decoded (`IMAGE_DIMENSIONS_TOO_LARGE`): a decompression bomb is refused
    /// unread.
    #[arg(
        long,
        env = "PUSHHAND_MEDIA_MAX_PIXELS",
        default_value_t = 40_000_000,
        global = true
    )]
    pub media_max_pixels: u64,

    /// Longest side an image may declare, in pixels (`IMAGE_DIMENSIONS_TOO_LARGE`).
    #[arg(
        long,
        env = "PUSHHAND_MEDIA_MAX_SIDE",
        default_value_t = 12_000,
        global = true
    )]
    pub media_max_side: u32,

    /// Most images one member may upload in an hour (`RATE_LIMITED` beyond), counted in the
    /// database, so across instances.
    #[arg(
        long,
        env = "PUSHHAND_MEDIA_UPLOADS_PER_HOUR",
        default_value_t = 200,
        global = true
    )]
    pub media_uploads_per_hour: u32,

    /// Where images are kept: `fs` (the directory `PUSHHAND_MEDIA_DIR`), `s3` (an
    /// S3-compatible bucket: AWS S3, MinIO, R2, COS…) or `oss` (Alibaba Cloud OSS, through
    /// its S3-compatible API). Whatever the store, images are served by this server under
    /// `/media/` (thumbnails are made there on first request).
    #[arg(
        long,
        env = "PUSHHAND_MEDIA_STORE",
        value_enum,
        default_value_t = MediaStore::Fs,
        global = true
    )]
    pub media_store: MediaStore,

    /// The bucket (`s3`, `oss`; required there).
    #[arg(long, env = "PUSHHAND_MEDIA_BUCKET", global = true)]
    pub media_bucket: Option<String>,

    /// The bucket's region (`s3`: e.g. `us-east-1`, the default; `oss`: required, e.g.
    /// `cn-hangzhou`).
    #[arg(long, env = "PUSHHAND_MEDIA_REGION", global = true)]
    pub media_region: Option<String>,

    /// The store's endpoint URL (`s3`: default AWS's for the region; `oss`: default
    /// `https://oss-<region>.aliyuncs.com`). Path-style: the service's URL; virtual-hosted:
    /// the bucket's own (`https://<bucket>.oss-<region>.aliyuncs.com`) — without one given,
    /// the bucket's is made from the region. `http://` only for a store on this machine or
    /// network (a test or a MinIO next to the server).
    #[arg(long, env = "PUSHHAND_MEDIA_ENDPOINT", global = true)]
    pub media_endpoint: Option<String>,

    /// Address the bucket virtual-hosted style (`https://<bucket>.<host>/<key>`) rather than
    /// path style (`https://<host>/<bucket>/<key>`). Default: on for `oss` (it requires it),
    /// off for `s3` (what MinIO and most S3-compatible stores expect).
    #[arg(long, env = "PUSHHAND_MEDIA_VIRTUAL_HOSTED", global = true)]
    pub media_virtual_hosted: Option<bool>,

    /// The store's access key id (`s3`, `oss`; required there). From the environment or a
    /// secret manager, never the repository.
    #[arg(long, env = "PUSHHAND_MEDIA_ACCESS_KEY_ID", global = true)]
    pub media_access_key_id: Option<String>,

    /// The store's secret access key (`s3`, `oss`; required there).
    #[arg(long, env = "PUSHHAND_MEDIA_SECRET_ACCESS_KEY", global = true)]
    pub media_secret_access_key: Option<Secret>,

    /// How long a presigned upload URL (`createImageUpload`) stays valid, in seconds.
    #[arg(
        long,
        env = "PUSHHAND_MEDIA_UPLOAD_URL_SECONDS",
        default_value_t = 300,
        global = true
    )]
    pub media_upload_url_seconds: u64,
}

/// Where uploaded images are kept ([`MediaSettings::media_store`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MediaStore {
    /// The local directory `PUSHHAND_MEDIA_DIR`.
    Fs,
    /// An S3-compatible bucket.
    S3,
    /// An Alibaba Cloud OSS bucket, through OSS's S3-compatible API.
    Oss,
}

impl MediaSettings {
    /// Checks the limits are usable and the public URL is an http(s) URL.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.media_max_bytes < 1024 {
            bail!("PUSHHAND_MEDIA_MAX_BYTES must be at least 1024");
        }
        if self.media_max_pixels == 0 || self.media_max_side == 0 {
            bail!("PUSHHAND_MEDIA_MAX_PIXELS and PUSHHAND_MEDIA_MAX_SIDE must be at least 1");
        }
        if self.media_uploads_per_hour == 0 {
            bail!("PUSHHAND_MEDIA_UPLOADS_PER_HOUR must be at least 1");
        }
        if let Some(url) = text(&self.media_public_url)
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("PUSHHAND_MEDIA_PUBLIC_URL must be an http(s):// URL, got {url:?}");
        }
        if !(10..=3600).contains(&self.media_upload_url_seconds) {
            bail!("PUSHHAND_MEDIA_UPLOAD_URL_SECONDS must be between 10 and 3600");
        }
        if self.media_store == MediaStore::Fs {
            return Ok(());
        }
        let store = match self.media_store {
            MediaStore::Oss => "PUSHHAND_MEDIA_STORE=oss",
            _ => "PUSHHAND_MEDIA_STORE=s3",
        };
        let need = |value: Option<&str>, var: &str| match value {
            Some(_) => Ok(()),
            None => Err(anyhow::anyhow!("{var} is required when {store}")),
        };
        need(text(&self.media_bucket), "PUSHHAND_MEDIA_BUCKET")?;
        need(
            text(&self.media_access_key_id),
            "PUSHHAND_MEDIA_ACCESS_KEY_ID",
        )?;
        need(
            self.media_secret_access_key
                .as_ref()
                .map(Secret::expose)
                .filter(|s| !s.trim().is_empty()),
            "PUSHHAND_MEDIA_SECRET_ACCESS_KEY",
        )?;
        if self.media_store == MediaStore::Oss {
            need(text(&self.media_region), "PUSHHAND_MEDIA_REGION")?;
        }
        if let Some(url) = text(&self.media_endpoint)
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("PUSHHAND_MEDIA_ENDPOINT must be an http(s):// URL, got {url:?}");
        }
        Ok(())
    }

    /// The media store's directory: as configured, else `<data_dir>/media`.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.media_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("media"))
    }
}

/// A required setting's value, or an error naming its variable.
pub(crate) fn required<'a, T: ?Sized>(
    value: Option<&'a T>,
    var: &str,
    channel: &str,
) -> anyhow::Result<&'a T> {
    value.ok_or_else(|| anyhow::anyhow!("{var} is required when {channel} is enabled"))
}

pub(crate) fn text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl PaymentSettings {
    /// Whether the sandbox is on: as configured, else in development only.
    pub fn sandbox_enabled(&self, environment: Environment) -> bool {
        self.sandbox
            .unwrap_or(environment == Environment::Development)
    }

    /// Checks what can be checked without reading files: the sandbox is not on in
    /// production, every enabled channel has its settings.
    pub fn check(&self, environment: Environment) -> anyhow::Result<()> {
        if environment == Environment::Production && self.sandbox == Some(true) {
            bail!("PUSHHAND_PAYMENTS_SANDBOX cannot be enabled when PUSHHAND_ENV=production");
        }
        if self.wechat_enabled {
            let c = "PUSHHAND_WECHATPAY_ENABLED";
            self.notify_url("wechat", c)?;
            let base = required(
                text(&self.wechat_base_url),
                "PUSHHAND_WECHATPAY_BASE_URL",
                c,
            )?;
            if !base.starts_with("http://") {
                bail!(
                    "PUSHHAND_WECHATPAY_BASE_URL must be an http:// URL (an egress proxy that speaks TLS to WeChat Pay): the server carries no TLS client"
                );
            }
            required(text(&self.wechat_mch_id), "PUSHHAND_WECHATPAY_MCH_ID", c)?;
            required(text(&self.wechat_app_id), "PUSHHAND_WECHATPAY_APP_ID", c)?;
            required(
                text(&self.wechat_merchant_serial),
                "PUSHHAND_WECHATPAY_MERCHANT_SERIAL",
                c,
            )?;
            required(
                self.wechat_merchant_key_file.as_ref(),
                "PUSHHAND_WECHATPAY_MERCHANT_KEY_FILE",
                c,
            )?;
            required(
                self.wechat_platform_key_file.as_ref(),
                "PUSHHAND_WECHATPAY_PLATFORM_KEY_FILE",
                c,
            )?;
            required(
                text(&self.wechat_platform_key_id),
                "PUSHHAND_WECHATPAY_PLATFORM_KEY_ID",
                c,
            )?;
            let key = required(
                self.wechat_api_v3_key.as_ref(),
                "PUSHHAND_WECHATPAY_APIV3_KEY",
                c,
            )?;
            if key.expose().len() != 32 {
                bail!(
                    "PUSHHAND_WECHATPAY_APIV3_KEY must be 32 bytes, got {}",
                    key.expose().len()
                );
            }
        }
        if self.alipay_enabled {
            let c = "PUSHHAND_ALIPAY_ENABLED";
            self.notify_url("alipay", c)?;
            required(text(&self.alipay_app_id), "PUSHHAND_ALIPAY_APP_ID", c)?;
            required(
                self.alipay_app_key_file.as_ref(),
                "PUSHHAND_ALIPAY_APP_KEY_FILE",
                c,
            )?;
            required(
                self.alipay_public_key_file.as_ref(),
                "PUSHHAND_ALIPAY_PUBLIC_KEY_FILE",
                c,
            )?;
            if self.alipay_gateway_url.trim().is_empty() {
                bail!("PUSHHAND_ALIPAY_GATEWAY_URL must not be empty");
            }
            if let Some(api) = text(&self.alipay_api_url)
                && !api.starts_with("http://")
            {
                bail!(
                    "PUSHHAND_ALIPAY_API_URL must be an http:// URL (an egress proxy that speaks TLS to Alipay): the server carries no TLS client"
                );
            }
        }
        self.check_payouts()
    }

    /// The notification URL of `provider` (`<base>/payments/<provider>/notify`).
    pub(crate) fn notify_url(&self, provider: &str, channel: &str) -> anyhow::Result<String> {
        let base = required(
            text(&self.notify_base_url),
            "PUSHHAND_PAYMENTS_NOTIFY_BASE_URL",
            channel,
        )?;
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            bail!("PUSHHAND_PAYMENTS_NOTIFY_BASE_URL must be an http(s):// URL, got {base:?}");
        }
        Ok(format!(
            "{}/payments/{provider}/notify",
            base.trim_end_matches('/')
        ))
    }
}

/// Parses a configuration from command-line style arguments (and the environment), as the
/// binary does; tests use it to build apps with explicit settings.
pub fn from_args<I, T>(args: I) -> Result<Config, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    #[derive(clap::Parser)]
    struct ConfigOnly {
        #[command(flatten)]
        config: Config,
    }
    use clap::Parser;
    ConfigOnly::try_parse_from(args).map(|c| c.config)
}
