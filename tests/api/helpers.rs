//! Test harness: a running app on a fresh database, and a small GraphQL client.
//!
//! Environment:
//! - `PUSHHAND_TEST_DATABASE_URL` — a PostgreSQL URL whose user may create databases (e.g.
//!   `postgres://postgres@127.0.0.1:5432/postgres`). Each test then gets a new database named
//!   `pushhand_test_<host tag>_<process id>_<uuid>`, dropped with its app or, when its
//!   process ends first, by the next test process on the same host. Unset: each test gets a SQLite file in its own
//!   temporary dir.
//! - `PUSHHAND_TEST_REDIS_URL` — a Redis URL the apps under test use (e.g.
//!   `redis://127.0.0.1:6379`). Unset: no Redis.

use std::net::SocketAddr;
use std::sync::Arc;

use entity::member;
use pushhand::app::App;
use pushhand::service::ManualClock;
use pushhand::service::members::{self, CliRole};
use pushhand::state::AppState;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    /// The app's clock: tests move it forward instead of sleeping.
    pub clock: Arc<ManualClock>,
    /// The database this app uses (another app may share it: [`TestApp::spawn_sharing`]).
    pub db_url: String,
    _dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    /// Resolves when the server has finished shutting down.
    pub stopped: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The PostgreSQL database this app created for itself, dropped with the app (apps
    /// sharing it are made after it, so they go first).
    owned_database: Option<String>,
}

/// A database URL no other test uses.
pub async fn fresh_database_url(dir: &TempDir) -> String {
    match std::env::var("PUSHHAND_TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let name = format!(
                "{}{}_{}",
                this_host_prefix(),
                std::process::id(),
                uuid::Uuid::now_v7().simple()
            );
            let admin = Database::connect(admin_url.as_str())
                .await
                .expect("connect to PUSHHAND_TEST_DATABASE_URL");
            reap_ended_runs(&admin).await;
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create test database");
            admin.close().await.ok();
            let base = admin_url.split('?').next().unwrap_or(&admin_url);
            let (server, _) = base.rsplit_once('/').expect("database URL has a path");
            format!("{server}/{name}")
        }
        _ => format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display()),
    }
}

/// How the names of the databases [`fresh_database_url`] creates begin on this host:
/// `pushhand_test_`, then a tag of the host name and PID namespace (so that runs in other
/// containers or on other machines sharing the PostgreSQL server, whose process ids mean
/// nothing here, are never taken for ended ones), then `_`. The creating process's id
/// follows.
/// Worked out once per process.
fn this_host_prefix() -> &'static str {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .hash(&mut h);
        std::fs::read_link("/proc/self/ns/pid")
            .unwrap_or_default()
            .hash(&mut h);
        format!("pushhand_test_{:08x}_", h.finish() as u32)
    })
}

/// Drops the test databases left by this host's test processes that have ended, once per
/// process: a test's own drop runs in the background, and a process that exits first (the
/// last tests of a run; every test under `cargo nextest`, a process each) leaves its
/// database behind. A database's name carries its process's id, and a process that still
/// runs (a concurrent test run) keeps its own. Linux only (`/proc`); elsewhere nothing is
/// dropped here.
async fn reap_ended_runs(admin: &sea_orm::DatabaseConnection) {
    static REAPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if REAPED.swap(true, std::sync::atomic::Ordering::SeqCst)
        || !std::path::Path::new("/proc/self/ns/pid").exists()
    {
        return;
    }
    let prefix = this_host_prefix();
    let Ok(rows) = admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%'"),
        ))
        .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "datname") else {
            continue;
        };
        let ended = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
        if ended {
            // Another process may be dropping it too: either way it goes.
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            admin.execute_unprepared(&sql).await.ok();
        }
    }
}

pub fn redis_url() -> Option<String> {
    std::env::var("PUSHHAND_TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// For a test that needs Redis: true (and a note) when there is none, so that it returns;
/// it runs in the PostgreSQL + Redis pass.
pub fn without_redis() -> bool {
    let missing = redis_url().is_none();
    if missing {
        eprintln!("skipped: PUSHHAND_TEST_REDIS_URL is not set (runs in the Redis pass)");
    }
    missing
}

/// A test's own PostgreSQL database goes with its app: dropped on a thread of its own, which
/// the test does not wait for (a drop takes PostgreSQL a while), so the last few of a
/// process may remain, for the next test process to drop ([`reap_ended_runs`]).
impl Drop for TestApp {
    fn drop(&mut self) {
        let (Some(name), Ok(admin_url)) = (
            self.owned_database.take(),
            std::env::var("PUSHHAND_TEST_DATABASE_URL"),
        ) else {
            return;
        };
        // This runs inside the test's runtime, which cannot block. The app's pool may still
        // hold connections: FORCE ends them.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = Database::connect(admin_url.as_str()).await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let done = admin.execute_unprepared(&sql).await.ok();
                admin.close().await.ok();
                done
            })
        });
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[]).await
    }

    /// Starts an app with extra command-line settings (e.g. `["--redis-url", "..."]`).
    pub async fn spawn_with(extra: &[&str]) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_url = fresh_database_url(&dir).await;
        let owned = db_url
            .starts_with("postgres")
            .then(|| db_url.rsplit('/').next().unwrap_or_default().to_owned());
        let mut app = TestApp::spawn_on(dir, db_url, extra).await;
        app.owned_database = owned;
        app
    }

    /// A second instance on `other`'s database (a cluster of two, as in production).
    pub async fn spawn_sharing(other: &TestApp, extra: &[&str]) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        TestApp::spawn_on(dir, other.db_url.clone(), extra).await
    }

    /// An app on a given database URL (e.g. through a proxy), owning `dir`.
    pub async fn spawn_at(dir: TempDir, db_url: String, extra: &[&str]) -> TestApp {
        TestApp::spawn_on(dir, db_url, extra).await
    }

    async fn spawn_on(dir: TempDir, db_url: String, extra: &[&str]) -> TestApp {
        let data_dir = dir.path().display().to_string();
        let mut args: Vec<String> = [
            "pushhand",
            "--database-url",
            &db_url,
            "--bind-addr",
            "127.0.0.1:0",
            "--data-dir",
            &data_dir,
            "--jwt-secret",
            "test-secret-test-secret-test-secret-0123",
            "--seed-demo",
            "false",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let redis = redis_url();
        if let (Some(url), false) = (&redis, extra.contains(&"--redis-url")) {
            args.extend(["--redis-url".to_owned(), url.clone()]);
        }
        // Tests run side by side, some with two instances each, on one PostgreSQL (100
        // connections by default): each app keeps to 16, not the default 32.
        if db_url.starts_with("postgres") && !extra.contains(&"--db-max-connections") {
            args.extend(["--db-max-connections".to_owned(), "16".to_owned()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let config = pushhand::config::from_args(args).expect("test config parses");
        let clock = Arc::new(ManualClock::default());
        let app = App::build_with_clock(config, clock.clone())
            .await
            .expect("app builds");
        let addr = app.local_addr().expect("bound address");
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let stopped = tokio::spawn(app.run(async move {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            client: reqwest::Client::new(),
            state,
            clock,
            db_url,
            _dir: dir,
            shutdown: Some(tx),
            stopped: Some(stopped),
            owned_database: None,
        }
    }

    /// Begins a graceful shutdown, as SIGTERM does.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs a GraphQL request and returns the whole JSON response.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("JSON response")
    }

    /// POSTs a GraphQL request that must succeed, and returns its `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let resp = self.gql(query, variables).await;
        assert!(resp.get("errors").is_none(), "unexpected errors: {resp:#}");
        resp["data"].clone()
    }

    /// POSTs a GraphQL request with `Authorization: Bearer <token>`.
    pub async fn gql_as(&self, token: &str, query: &str, variables: Value) -> Value {
        self.client
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("JSON response")
    }

    /// Like [`TestApp::gql_as`], asserting success and returning `data`.
    pub async fn data_as(&self, token: &str, query: &str, variables: Value) -> Value {
        let resp = self.gql_as(token, query, variables).await;
        assert!(resp.get("errors").is_none(), "unexpected errors: {resp:#}");
        resp["data"].clone()
    }

    /// Creates an account the way `pushhand create-user` does and signs it in through the
    /// API. Returns the token and the member row.
    pub async fn user(&self, email: &str, role: CliRole) -> (String, member::Model) {
        let m = members::create_user(self.db(), email, PASSWORD, role, None, self.clock_now())
            .await
            .map_err(anyhow::Error::from)
            .expect("create user");
        (self.login(email, PASSWORD).await, m)
    }

    /// Signs in through the API and returns the token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let data = self
            .data(
                "mutation($i: LoginInput!) { login(input: $i) { token } }",
                json!({ "i": { "email": email, "password": password } }),
            )
            .await;
        data["login"]["token"].as_str().expect("token").to_owned()
    }

    /// Registers through the API; returns the whole response.
    pub async fn register(&self, email: &str, invite: Option<&str>, link: Option<&str>) -> Value {
        self.gql(
            "mutation($i: RegisterInput!) { register(input: $i) { token member { id roles inviteCode upline { id } bindingExpiresAt } } }",
            json!({ "i": { "email": email, "password": PASSWORD, "displayName": email,
                           "inviteCode": invite, "partnerLinkCode": link } }),
        )
        .await
    }

    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use pushhand::service::Clock;
        self.clock.now()
    }

    /// The value of an unlabelled counter or gauge line in `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("body");
        metric_value(&text, name).unwrap_or(0.0)
    }

    /// SQL statements executed so far by this app.
    pub async fn statements(&self) -> u64 {
        self.metric("pushhand_db_statements_total").await as u64
    }
}

/// The password every test account uses.
pub const PASSWORD: &str = "correct horse battery";

/// Finds `name value` (or `name{labels} value` when `name` includes the labels) in
/// Prometheus text.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The `extensions.code` of the first error, if any.
pub fn error_code(resp: &Value) -> Option<&str> {
    resp["errors"][0]["extensions"]["code"].as_str()
}

/// Rolls the schema back until `name` (a migration's module name, e.g.
/// `m20261210_000033_visit_counts`) is undone — with every migration after it — then applies
/// them all again: a data migration's test runs its migration, not whichever came last.
pub async fn redo_migration(db: &DatabaseConnection, name: &str) {
    use migration::MigratorTrait;
    let names: Vec<String> = migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let at = names
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("no migration {name}"));
    let steps = u32::try_from(names.len() - at).expect("a few migrations");
    migration::Migrator::down(db, Some(steps))
        .await
        .expect("rolled back");
    pushhand::db::migrate(db).await.expect("applied again");
}
