//! Builds the application — state, schema, router and listener — from a [`Config`]. `main`
//! and the tests call the same function; tests bind port 0 and read the port back.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cache::{Cache, MemoryCache, RedisCache};
use crate::config::{Config, Environment};
use crate::events::Events;
use crate::metrics::Metrics;
use crate::ratelimit::FailureLimiter;
use crate::redis_conn::LazyRedis;
use crate::responses::ResponseCache;
use crate::service::curation::CurationStore;
use crate::service::{Clock, SystemClock, earnings, hierarchy, orders};
use crate::state::AppState;
use crate::{db, graphql, http, seed, service};

/// Bound on each Redis call: a slow Redis costs a request this much at most, then the
/// database answers.
const REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(250);

/// How long shutdown waits for WebSocket close frames to go out.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub struct App {
    listener: TcpListener,
    router: Router,
    /// `/metrics` on its own address (`PUSHHAND_METRICS_ADDR`), when configured.
    metrics: Option<(TcpListener, Router)>,
    state: AppState,
    /// Tells WebSocket connections to close (1001) when the server stops.
    shutdown: CancellationToken,
    /// The open WebSocket connections (their tasks live outside hyper's connections).
    connections: TaskTracker,
}

impl App {
    /// Checks the configuration, binds the listeners, then connects and migrates the
    /// database and seeds the demo catalog into an empty development database (when
    /// enabled): a configuration error or a taken address fails before the database changes.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        App::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`App::build`] with the clock every rule reads (tests pass a [`crate::service::ManualClock`]).
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        config.validate()?;
        crate::http::check_config(&config)?;
        let jwt_secret = config.resolve_jwt_secret()?;
        // Everything that can be refused without touching the database is, before it is
        // touched: a taken address must not leave a migrated, seeded database behind.
        let redis = config
            .redis_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
            .map(redis::Client::open)
            .transpose()
            .context("REDIS_URL is not a valid Redis URL")?;
        // Payment keys are read and parsed now: a missing or bad key stops the start here.
        let payments = Arc::new(crate::payments::Payments::from_config(
            &config,
            redis
                .as_ref()
                .map(|client| LazyRedis::new(client.clone(), REDIS_TIMEOUT)),
        )?);
        // The media store's directory is created (and must be writable) before anything else.
        let media = Arc::new(crate::media::Media::from_settings(
            &config.media,
            &config.data_dir,
            &config.public_url,
        )?);
        let listener = TcpListener::bind(config.bind_addr)
            .await
            .with_context(|| format!("binding {}", config.bind_addr))?;
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr} (PUSHHAND_METRICS_ADDR)"))?,
            ),
            None => None,
        };
        let metrics = Metrics::new();
        let db = db::connect(&config, &metrics).await?;
        db::migrate(&db).await?;
        let visits_db = db::connect_visit_recorder(&config, &metrics, &db).await?;
        let config_failures = config.auth_failures_per_minute;
        let ttl = std::time::Duration::from_secs(config.cache_ttl_seconds.max(1));
        let conn = redis
            .as_ref()
            .map(|client| LazyRedis::new(client.clone(), REDIS_TIMEOUT));
        let (cache, events): (Arc<dyn Cache>, Events) = match (&redis, &conn) {
            (Some(client), Some(conn)) => (
                Arc::new(RedisCache::new(conn.clone())),
                Events::redis(client.clone(), conn.clone(), metrics.clone()),
            ),
            _ => (
                Arc::new(MemoryCache::new(100_000, ttl)),
                Events::in_process(metrics.clone()),
            ),
        };
        let curation = Arc::new(CurationStore::new(cache, metrics.clone(), ttl));
        let responses_ttl =
            std::time::Duration::from_secs(config.response_cache_ttl_seconds.max(1));
        let responses = Arc::new(match (config.response_cache, conn) {
            (false, _) => ResponseCache::off(metrics.clone()),
            (true, Some(conn)) => ResponseCache::redis(
                conn,
                &db::namespace(&db).await?,
                metrics.clone(),
                responses_ttl,
                &jwt_secret,
            ),
            (true, None) => ResponseCache::in_process(metrics.clone(), responses_ttl, &jwt_secret),
        });
        let viewers = Arc::new(crate::service::viewers::Viewers::new(
            10_000,
            std::time::Duration::from_millis(config.viewer_ttl_ms),
            metrics.clone(),
        ));
        let rows = Arc::new(crate::service::immutable::CatalogRows::new(100_000));
        let leaderboards = crate::service::leaderboards::Snapshots::new();
        // Off the database while no endpoint is enabled: read once now.
        let webhooks = Arc::new(crate::service::webhooks::Webhooks::new(
            crate::service::webhooks::any_enabled(&db)
                .await
                .map_err(anyhow::Error::from)?,
        ));
        // Every cache hears what changed. Passports and kept catalog rows go before catalog
        // answers: an answer computed once those are dropped must not read an old one back.
        // The kept rows hear the bus too (every instance keeps its own), and then tell the
        // response cache again.
        let events = events
            .with_listener(curation.clone())
            .with_listener(rows.clone())
            .with_listener(responses.clone())
            .with_listener(viewers.clone())
            .with_listener(webhooks.clone())
            .with_listener(leaderboards.clone())
            .with_observer(viewers.clone())
            .with_observer(leaderboards.clone())
            .with_observer(Arc::new(crate::service::immutable::RowsObserver::new(
                rows.clone(),
                vec![responses.clone()],
            )));
        let seeded = config.environment == Environment::Development
            && config.seed_demo
            && service::catalog::product_count(&db).await? == 0;
        if seeded {
            let started = std::time::Instant::now();
            let report = seed::run(&db, &events).await?;
            tracing::info!(
                ?report,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "seeded the demo catalog"
            );
        }
        let posters = Arc::new(crate::service::posters::Posters::new(
            &config.public_url,
            jwt_secret.expose(),
            metrics.clone(),
        ));
        let state = AppState {
            posters,
            checkouts: crate::service::checkouts::Checkouts::new(
                db.clone(),
                events.clone(),
                metrics.clone(),
            ),
            db,
            config: Arc::new(config),
            redis,
            metrics,
            tokens: crate::service::auth::Tokens::new(jwt_secret.clone(), 50_000),
            viewers,
            jwt_secret,
            clock,
            failures: Arc::new(FailureLimiter::new(config_failures)),
            curation,
            rows,
            events,
            responses,
            units_sold: Arc::default(),
            payments,
            webhooks,
            media,
            leaderboards,
            visits_db,
        };
        let api = std::sync::Arc::new(graphql::build(state.clone()));
        let shutdown = CancellationToken::new();
        let connections = TaskTracker::new();
        let routers = http::router(state.clone(), api, shutdown.clone(), connections.clone());
        Ok(App {
            listener,
            router: routers.public,
            metrics: metrics_listener.map(|l| (l, routers.metrics)),
            state,
            shutdown,
            connections,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The address `/metrics` is served on when `PUSHHAND_METRICS_ADDR` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves (with the connection limits of [`http::serve`]) until `shutdown` resolves,
    /// then lets in-flight requests finish and closes
    /// every WebSocket with 1001 (waiting up to [`CLOSE_GRACE`] for the close frames). Runs
    /// the periodic jobs (expiry, settlement, limiter pruning) beside the server.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let jobs = tokio::spawn(periodic_jobs(self.state.clone()));
        let units_sold = tokio::spawn(write_units_sold(self.state.clone()));
        let webhooks = tokio::spawn(deliver_webhooks(self.state.clone()));
        let wal = tokio::spawn(keep_wal_small(self.state.clone()));
        let metrics = self.metrics.map(|(listener, router)| {
            let stop = self.shutdown.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(e) = served {
                    tracing::warn!(error = ?e, "serving /metrics failed");
                }
            })
        });
        let close_sockets = self.shutdown.clone();
        let limits = http::serve::Limits {
            header_read_timeout: std::time::Duration::from_millis(
                self.state.config.header_read_timeout_ms,
            ),
            max_connections: self.state.config.max_connections,
        };
        http::serve::serve(self.listener, self.router, limits, async move {
            shutdown.await;
            close_sockets.cancel();
        })
        .await;
        self.shutdown.cancel();
        self.connections.close();
        if tokio::time::timeout(CLOSE_GRACE, self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!("some WebSocket connections did not close in time");
        }
        jobs.abort();
        units_sold.abort();
        webhooks.abort();
        wal.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        // What the last interval tallied (the abort landed between writes or mid-write; a
        // write cut short put its tally back).
        self.state.write_units_sold().await;
        Ok(())
    }
}

/// The events of a process that writes without serving (`pushhand seed`): with Redis, their
/// listeners reach what running instances share — the passports and the response cache's
/// versions — so that those instances answer from the change at once. Without Redis there
/// is nothing shared to reach: running instances' in-process caches keep older answers until
/// their TTL.
pub async fn offline_events(config: &Config, db: &DatabaseConnection) -> anyhow::Result<Events> {
    let metrics = Metrics::new();
    let events = Events::in_process(metrics.clone());
    let Some(url) = config.redis_url.as_deref().filter(|u| !u.trim().is_empty()) else {
        return Ok(events);
    };
    let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
    let conn = LazyRedis::new(client, std::time::Duration::from_secs(2));
    let ttl = std::time::Duration::from_secs(config.cache_ttl_seconds.max(1));
    let passports = CurationStore::new(
        Arc::new(RedisCache::new(conn.clone())),
        metrics.clone(),
        ttl,
    );
    let mut events = events.with_listener(Arc::new(passports));
    if config.response_cache {
        // Bumps touch versions alone: the secret that salts entry keys plays no part.
        let responses = ResponseCache::redis(
            conn,
            &db::namespace(db).await?,
            metrics,
            std::time::Duration::from_secs(1),
            &crate::config::Secret::new(""),
        );
        events = events.with_listener(Arc::new(responses));
    }
    Ok(events)
}

/// Ticks every `every`, the first one interval after start (a freshly started instance serves
/// before it works in the background, and tests that count statements are not disturbed); a
/// tick missed while the work ran is delayed, not bunched.
fn ticks(every: std::time::Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Every [`db::WAL_CHECK_EVERY`], checkpoints SQLite's write-ahead log and restarts it when
/// it has grown ([`db::keep_wal_small`]); nothing on PostgreSQL.
async fn keep_wal_small(state: AppState) {
    if state.db.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
        return;
    }
    let mut tick = ticks(db::WAL_CHECK_EVERY);
    loop {
        tick.tick().await;
        match db::keep_wal_small(&state.db).await {
            Ok(db::WalCheck::Busy(frames)) => {
                tracing::debug!(frames, "the write-ahead log is still in use; restart later")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = ?e, "checking the write-ahead log failed"),
        }
    }
}

/// Writes the tallied units sold every `units_sold_interval_ms` (see
/// [`crate::service::units_sold`]).
async fn write_units_sold(state: AppState) {
    let mut tick = ticks(std::time::Duration::from_millis(
        state.config.units_sold_interval_ms.max(1),
    ));
    loop {
        tick.tick().await;
        state.write_units_sold().await;
    }
}

/// Delivers webhooks ([`crate::service::webhooks::Worker`]): polls every
/// `webhook_poll_ms` while an endpoint is enabled, checks for one every
/// `job_interval_seconds` while none is.
async fn deliver_webhooks(state: AppState) {
    crate::service::webhooks::Worker {
        db: state.db.clone(),
        hooks: state.webhooks.clone(),
        clock: state.clock.clone(),
        transport: crate::payments::transport::Transport::default(),
        poll: std::time::Duration::from_millis(state.config.webhook_poll_ms.max(1)),
        idle: std::time::Duration::from_secs(state.config.job_interval_seconds.max(1)),
    }
    .run()
    .await;
}

/// Background upkeep: lapsing expired partner bindings, cancelling unpaid orders,
/// completing long-shipped orders, closing approved returns never shipped back, settling
/// earnings whose return window has passed, evaluating push-hand levels (daily, and after
/// each settlement), asking
/// the providers about refunds they have not confirmed, and pruning the rate limiter. Each job is idempotent and safe with several instances running
/// it (conditional updates decide who does what).
async fn periodic_jobs(state: AppState) {
    let mut tick = ticks(std::time::Duration::from_secs(
        state.config.job_interval_seconds.max(1),
    ));
    // When the levels were last evaluated after a settlement, and on which day for
    // everyone (the first tick evaluates everyone: a member's grace period may have ended
    // while no instance ran).
    let mut levels_checked: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut levels_day: Option<chrono::NaiveDate> = None;
    loop {
        tick.tick().await;
        match hierarchy::expire_bindings(&state.db, &state.events, state.clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(ended = n, "partner bindings lapsed"),
            Err(e) => tracing::warn!(error = ?e, "binding expiry failed; will retry"),
        }
        let now = state.clock.now();
        let policy = &state.config.policy;
        let window = chrono::Duration::days(i64::from(policy.return_window_days));
        let auto = chrono::Duration::days(i64::from(policy.auto_complete_days));
        if let Err(e) = orders::expire_unpaid(&state.db, &state.events, now).await {
            tracing::warn!(error = ?e, "order expiry failed; will retry");
        }
        if let Err(e) = orders::auto_complete(&state.db, &state.events, auto, window, now).await {
            tracing::warn!(error = ?e, "auto-completion failed; will retry");
        }
        // Approved returns not shipped back in time close (their earnings' window restarts)
        // before the settlement looks at them.
        if let Err(e) =
            crate::service::after_sales::auto_close(&state.db, &state.events, window, now).await
        {
            tracing::warn!(error = ?e, "after-sale auto-close failed; will retry");
        }
        match earnings::settle(&state.db, &state.events, now, now).await {
            Ok((0, _)) => {}
            Ok((n, amount)) => tracing::info!(settled = n, %amount, "earnings settled"),
            Err(e) => tracing::warn!(error = ?e, "settlement failed; will retry"),
        }
        // Levels: daily for everyone, and after each settlement for the members whose
        // settled sales it moved. Idempotent, safe with several instances.
        let level_policy = crate::graphql::schema::levels::policy(&state);
        if levels_day != Some(now.date_naive()) {
            match crate::service::levels::evaluate_all(&state.db, &state.events, &level_policy, now)
                .await
            {
                Ok(n) => {
                    tracing::info!(evaluated = n, "levels evaluated");
                    levels_day = Some(now.date_naive());
                    levels_checked = Some(now);
                }
                Err(e) => tracing::warn!(error = ?e, "level evaluation failed; will retry"),
            }
        } else {
            let from = levels_checked.unwrap_or(now - chrono::Duration::days(1));
            match crate::service::levels::evaluate_settled(
                &state.db,
                &state.events,
                &level_policy,
                from,
                now,
                now,
            )
            .await
            {
                Ok(_) => levels_checked = Some(now),
                Err(e) => tracing::warn!(error = ?e, "level evaluation failed; will retry"),
            }
        }
        // Provider refunds no notification confirmed: asked about after 10 minutes.
        let refunds = crate::service::refunds::Refunds {
            db: &state.db,
            events: &state.events,
            sold: &state.units_sold,
            payments: &state.payments,
        };
        let quiet = now - chrono::Duration::minutes(10);
        if let Err(e) = crate::service::refunds::check_open(refunds, quiet, now).await {
            tracing::warn!(error = ?e, "refund check failed; will retry");
        }
        // Presigned uploads never completed: their staging objects and rows.
        match crate::service::images::clear_abandoned(&state.db, &state.media, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(cleared = n, "abandoned image uploads cleared"),
            Err(e) => tracing::warn!(error = ?e, "clearing abandoned uploads failed; will retry"),
        }
        state.failures.prune();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
