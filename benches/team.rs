//! Team reads for a member with a million descendants, against a trivial query.
//!
//! The bar: `teamStats` and the first page of `team(level: 1)` for a member with 1,000,000
//! descendants stay within a few times the latency of a trivial query. Timings differ from
//! machine to machine, so this measures *ratios* within one run and asserts no time.
//!
//! What it does:
//! 1. Creates a fresh database — a SQLite file in a temporary directory, or, when
//!    `PUSHHAND_BENCH_DATABASE_URL` names a PostgreSQL server, a new database
//!    `pushhand_bench_<uuid>` (dropped at the end) — and applies the migrations.
//! 2. Generates one root push-hand with `PUSHHAND_BENCH_DESCENDANTS` descendants (default
//!    1,000,000): √n members at level 1 (1,000), a few hundred at level 3 and the rest at
//!    level 2, joining over 18 months, with their bindings, closure rows (`member_ancestors`)
//!    and `team_counters` exactly as the hierarchy service keeps them. Rows go in within one
//!    transaction, in joining order, which is also id order, so that most index insertions
//!    append: on SQLite as multi-row INSERTs over a connection that journals in memory, on
//!    PostgreSQL with `COPY` (then `ANALYZE`, as autovacuum would). Most of the load time is
//!    index maintenance (members have eight B-trees, closure rows four), not SQL text.
//! 3. Starts the real app on a loopback port and signs a token for the root.
//! 4. Checks the answers (team size per level, full pages), then runs each scenario with
//!    `PUSHHAND_BENCH_CLIENTS` concurrent clients (default 4) for
//!    `PUSHHAND_BENCH_WARMUP_SECONDS` (default 1, discarded) and `PUSHHAND_BENCH_SECONDS`
//!    (default 5):
//!    - `S0` `{ __typename }`, anonymous: the baseline (HTTP, parsing, execution);
//!    - `M0` `{ me { id } }`: the baseline plus authentication (token check and one
//!      primary-key read), which every team query pays too;
//!    - `T1` `me { teamStats { … } }`;
//!    - `T2` `me { team(level: 1, first: 20) { … } }`;
//!    - `T3` `me { team(level: 2, first: 20) { … } }` (998,700 rows at that level).
//! 5. Prints requests/s, p50 and p99 latency, each scenario's ratio to `S0` (p50 latency
//!    and throughput), and the SQL statements the app ran per request with the time it spent
//!    in them (from its own metrics), and writes them as JSON to `target/bench-team.json`.
//!
//! The clients and the server share the machine, so absolute figures are pessimistic; the
//! ratios are the result. The clients are closed-loop (each sends its next request when the
//! last is answered), so with the CPU saturated p50 ≈ clients ÷ throughput and the ratios
//! mostly compare CPU per request; `PUSHHAND_BENCH_CLIENTS=1` measures unloaded latency.
//! Exits non-zero when an answer is wrong or a request fails.
//!
//! ```sh
//! cargo bench --bench team
//! PUSHHAND_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench team
//! PUSHHAND_BENCH_DESCENDANTS=100000 PUSHHAND_BENCH_SECONDS=2 cargo bench --bench team
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, ensure};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use pushhand::app::App;
use pushhand::service::{auth, hierarchy, members};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, TransactionTrait};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

const JWT_SECRET: &str = "bench-secret-bench-secret-bench-secret-0123";

const S0: &str = "{ __typename }";
const M0: &str = "{ me { id } }";
const T1: &str =
    "{ me { teamStats { totalMembers newThisMonth levels { level members newThisMonth } } } }";
const T2: &str = "{ me { team(level: 1, first: 20) { edges { node { id displayName joinedAt } } pageInfo { hasNextPage } } } }";
const T3: &str = "{ me { team(level: 2, first: 20) { edges { node { id displayName joinedAt } } pageInfo { hasNextPage } } } }";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the environment asks for.
struct Settings {
    admin_url: Option<String>,
    descendants: usize,
    clients: usize,
    warmup: StdDuration,
    measure: StdDuration,
}

fn env_or<T: FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v} is not a valid number")),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let settings = Settings {
            admin_url: std::env::var("PUSHHAND_BENCH_DATABASE_URL")
                .ok()
                .filter(|s| !s.trim().is_empty()),
            descendants: env_or("PUSHHAND_BENCH_DESCENDANTS", 1_000_000)?,
            clients: env_or("PUSHHAND_BENCH_CLIENTS", 4)?,
            warmup: StdDuration::from_secs_f64(env_or("PUSHHAND_BENCH_WARMUP_SECONDS", 1.0)?),
            measure: StdDuration::from_secs_f64(env_or("PUSHHAND_BENCH_SECONDS", 5.0)?),
        };
        ensure!(
            settings.descendants >= 1,
            "PUSHHAND_BENCH_DESCENDANTS must be at least 1"
        );
        ensure!(
            settings.clients >= 1,
            "PUSHHAND_BENCH_CLIENTS must be at least 1"
        );
        ensure!(
            !settings.measure.is_zero(),
            "PUSHHAND_BENCH_SECONDS must be positive"
        );
        Ok(settings)
    }
}

async fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let dir = tempfile::tempdir().context("temporary directory")?;
    let (url, fresh_db) = match &settings.admin_url {
        Some(admin) => {
            let name = format!("pushhand_bench_{}", Uuid::now_v7().simple());
            let conn = Database::connect(admin.as_str())
                .await
                .context("connecting to PUSHHAND_BENCH_DATABASE_URL")?;
            conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .context("creating the bench database")?;
            conn.close().await.ok();
            let base = admin.split('?').next().unwrap_or(admin);
            let (server, _) = base
                .rsplit_once('/')
                .context("PUSHHAND_BENCH_DATABASE_URL has no database path")?;
            (format!("{server}/{name}"), Some((admin.clone(), name)))
        }
        None => (
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            ),
            None,
        ),
    };
    let outcome = bench(&settings, &url, &dir.path().display().to_string()).await;
    if let Some((admin, name)) = fresh_db {
        let dropped = async {
            let conn = Database::connect(admin.as_str()).await?;
            conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await?;
            conn.close().await
        }
        .await;
        if let Err(e) = dropped {
            eprintln!("warning: could not drop database {name}: {e}");
        }
    }
    outcome
}

fn config(url: &str, data_dir: &str) -> anyhow::Result<pushhand::config::Config> {
    Ok(pushhand::config::from_args([
        "pushhand",
        "--database-url",
        url,
        "--bind-addr",
        "127.0.0.1:0",
        "--seed-demo",
        "false",
        "--jwt-secret",
        JWT_SECRET,
        "--data-dir",
        data_dir,
    ])?)
}

async fn bench(settings: &Settings, url: &str, data_dir: &str) -> anyhow::Result<()> {
    let config = config(url, data_dir)?;
    let backend = if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "team bench on {backend}: {} descendants, {} clients, {:.0?} warm-up + {:.0?} per scenario",
        settings.descendants, settings.clients, settings.warmup, settings.measure
    );

    // Generate with a connection of our own, closed before the app starts.
    let db = pushhand::db::connect(&config, &pushhand::metrics::Metrics::new()).await?;
    pushhand::db::migrate(&db).await?;
    db.close().await?;
    let db = loader_connection(&config).await?;
    let started = Instant::now();
    let tree = generate(&db, settings.descendants).await?;
    let generation = started.elapsed();
    db.close().await?;
    println!(
        "generated {} members, {} bindings, {} closure rows, {} counters in {:.1}s \
         (levels 1/2/3: {}/{}/{})",
        tree.levels.iter().sum::<usize>() + 1,
        tree.levels.iter().sum::<usize>(),
        tree.closure_rows,
        tree.counters,
        generation.as_secs_f64(),
        tree.levels[0],
        tree.levels[1],
        tree.levels[2],
    );
    let spent: Vec<String> = tree
        .spent
        .iter()
        .map(|(what, d)| format!("{what} {:.1}s", d.as_secs_f64()))
        .collect();
    println!(
        "  of which {} (the rest: building the rows)",
        spent.join(", ")
    );

    let app = App::build(config).await?;
    let addr = app.local_addr()?;
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    let root = members::get(&state.db, tree.root).await?;
    let token = auth::issue_token(
        &state.jwt_secret,
        &root,
        pushhand::service::now(),
        Duration::hours(1),
    )?;
    let client = Client {
        http: reqwest::Client::new(),
        url: format!("http://{addr}/graphql"),
        auth: format!("Bearer {token}"),
    };

    let outcome = async {
        check_answers(&client, &tree).await?;
        let scenarios = [
            ("S0", "{ __typename } (anonymous)", S0, false),
            ("M0", "{ me { id } } (signed in)", M0, true),
            ("T1", "teamStats", T1, true),
            ("T2", "team(level: 1, first: 20)", T2, true),
            ("T3", "team(level: 2, first: 20)", T3, true),
        ];
        let mut results = Vec::new();
        for (name, label, query, authed) in scenarios {
            let sql = || sql_counters(&state);
            let stats = measure(&client, settings, query, authed, &sql)
                .await
                .with_context(|| format!("scenario {name}"))?;
            results.push((name, label, stats));
        }
        report(settings, backend, generation, &tree, &results)
    }
    .await;

    let _ = stop.send(());
    server.await.ok();
    state.db.close().await.ok();
    outcome
}

/// The generated tree, for checking answers.
struct Tree {
    root: Uuid,
    /// Members at levels 1, 2 and 3 below the root.
    levels: [usize; 3],
    closure_rows: usize,
    counters: usize,
    /// Where the load's time went: writing each table, and committing.
    spent: Vec<(&'static str, StdDuration)>,
}

/// One generated member: when it joined, its upline (an index) and its level below the root.
struct Node {
    id: Uuid,
    at: DateTime<Utc>,
    upline: u32,
    level: u8,
}

/// How rows travel to the database.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Multi-row `INSERT … VALUES` with literals as the app's driver stores the values:
    /// UUIDs as 16-byte blobs, times as RFC 3339 text.
    SqliteValues,
    /// `COPY … FROM STDIN` in text format: PostgreSQL's bulk path (no SQL to parse and plan;
    /// about 1.5 times as fast as multi-row INSERTs for this load).
    PostgresCopy,
}

impl Format {
    /// Member rows per statement; bindings alike, closure rows up to three times as many.
    fn chunk(self) -> usize {
        match self {
            Format::SqliteValues => 1_000,
            Format::PostgresCopy => 10_000,
        }
    }
}

/// Rows of one table being assembled, in one of the [`Format`]s.
struct Rows {
    table: &'static str,
    columns: &'static str,
    format: Format,
    buf: String,
    rows: usize,
    fields: usize,
    /// Time spent writing this table.
    spent: StdDuration,
}

impl Rows {
    fn new(table: &'static str, columns: &'static str, format: Format) -> Rows {
        Rows {
            table,
            columns,
            format,
            buf: String::new(),
            rows: 0,
            fields: 0,
            spent: StdDuration::ZERO,
        }
    }

    /// Starts a row; add its fields in column order, then [`Rows::end`].
    fn row(&mut self) -> &mut Rows {
        if self.format == Format::SqliteValues {
            self.buf.push_str(if self.rows > 0 { ",(" } else { "(" });
        }
        self.rows += 1;
        self.fields = 0;
        self
    }

    fn field(&mut self) -> &mut String {
        if self.fields > 0 {
            self.buf.push(match self.format {
                Format::SqliteValues => ',',
                Format::PostgresCopy => '\t',
            });
        }
        self.fields += 1;
        &mut self.buf
    }

    fn uuid(&mut self, id: Uuid) -> &mut Rows {
        let format = self.format;
        let out = self.field();
        let _ = match format {
            Format::SqliteValues => write!(out, "X'{}'", id.simple()),
            Format::PostgresCopy => write!(out, "{}", id.hyphenated()),
        };
        self
    }

    fn time(&mut self, t: DateTime<Utc>) -> &mut Rows {
        self.text(&t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
    }

    /// Text without quotes, tabs, backslashes or line breaks (all this generator writes).
    fn text(&mut self, s: &str) -> &mut Rows {
        debug_assert!(!s.contains(['\'', '\t', '\\', '\n', '\r']));
        let format = self.format;
        let out = self.field();
        match format {
            Format::SqliteValues => {
                out.push('\'');
                out.push_str(s);
                out.push('\'');
            }
            Format::PostgresCopy => out.push_str(s),
        }
        self
    }

    fn int(&mut self, n: i64) -> &mut Rows {
        let _ = write!(self.field(), "{n}");
        self
    }

    fn null(&mut self) -> &mut Rows {
        let format = self.format;
        self.field().push_str(match format {
            Format::SqliteValues => "NULL",
            Format::PostgresCopy => "\\N",
        });
        self
    }

    fn end(&mut self) {
        self.buf.push(match self.format {
            Format::SqliteValues => ')',
            Format::PostgresCopy => '\n',
        });
    }
}

/// The one transaction the whole load runs in.
enum Loader {
    Sqlite(sea_orm::DatabaseTransaction),
    Postgres(sea_orm::sqlx::Transaction<'static, sea_orm::sqlx::Postgres>),
}

impl Loader {
    async fn begin(db: &DatabaseConnection) -> anyhow::Result<(Loader, Format)> {
        Ok(match db.get_database_backend() {
            DbBackend::Postgres => (
                Loader::Postgres(db.get_postgres_connection_pool().begin().await?),
                Format::PostgresCopy,
            ),
            _ => (Loader::Sqlite(db.begin().await?), Format::SqliteValues),
        })
    }

    /// Writes the rows collected so far.
    async fn flush(&mut self, rows: &mut Rows) -> anyhow::Result<()> {
        if rows.rows == 0 {
            return Ok(());
        }
        let started = Instant::now();
        let data = std::mem::take(&mut rows.buf);
        rows.rows = 0;
        match self {
            Loader::Sqlite(txn) => {
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES {data}",
                    rows.table, rows.columns
                );
                txn.execute_unprepared(&sql).await?;
            }
            Loader::Postgres(txn) => {
                let statement = format!("COPY {} ({}) FROM STDIN", rows.table, rows.columns);
                let mut copy = txn.copy_in_raw(&statement).await?;
                copy.send(data.as_bytes()).await?;
                copy.finish().await?;
            }
        }
        rows.spent += started.elapsed();
        Ok(())
    }

    async fn commit(self) -> anyhow::Result<()> {
        match self {
            Loader::Sqlite(txn) => txn.commit().await?,
            Loader::Postgres(txn) => txn.commit().await?,
        }
        Ok(())
    }
}

/// The `n`-th invite code: 8 Crockford symbols, in the order of `n` (so the unique index
/// grows at its end).
fn invite_code(n: u64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    (0..8)
        .rev()
        .map(|i| ALPHABET[((n >> (5 * i)) & 31) as usize] as char)
        .collect()
}

/// Opens the connection the load runs on. PostgreSQL: the app's own settings. SQLite: one
/// connection that journals in memory without syncing and caches the whole load, so that a
/// gigabyte of new pages is written once, at commit, instead of to the write-ahead log and
/// then again into the database (the app switches the file back to WAL when it connects).
async fn loader_connection(
    config: &pushhand::config::Config,
) -> anyhow::Result<DatabaseConnection> {
    let url = config.database_url();
    if url.starts_with("postgres") {
        return pushhand::db::connect(config, &pushhand::metrics::Metrics::new()).await;
    }
    let mut opts = sea_orm::ConnectOptions::new(url);
    opts.max_connections(1)
        .min_connections(1)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.journal_mode(SqliteJournalMode::Memory)
                .synchronous(SqliteSynchronous::Off)
                .foreign_keys(true)
                .pragma("cache_size", "-2097152")
        });
    Ok(Database::connect(opts).await?)
}

/// Writes the root and its descendants with their bindings, closure rows and counters.
async fn generate(db: &DatabaseConnection, descendants: usize) -> anyhow::Result<Tree> {
    let now = pushhand::service::now();
    let mut rng = ChaCha8Rng::seed_from_u64(0xBE7C_47EA_2026);
    let l1 = ((descendants as f64).sqrt().round() as usize).clamp(1, descendants);
    let l3 = ((descendants - l1) / 10).min(300);
    let start = now - Duration::days(540);
    let millis = |t: DateTime<Utc>| t.timestamp_millis();
    let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or(now);

    // Joining times by level: the first level in the first two months, the second over the
    // rest of the 18 months (more of them lately), the third in the last month.
    let mut joins: Vec<(i64, u8)> = Vec::with_capacity(descendants);
    let (l1_from, l1_to) = (millis(start), millis(start + Duration::days(60)));
    let (l2_from, l2_to) = (l1_to, millis(now - Duration::hours(1)));
    let (l3_from, l3_to) = (millis(now - Duration::days(30)), l2_to);
    for i in 0..descendants {
        let (level, ms) = if i < l1 {
            (1, rng.random_range(l1_from..l1_to))
        } else if i < l1 + l3 {
            (3, rng.random_range(l3_from..l3_to))
        } else {
            let u: f64 = rng.random();
            (2, l2_from + ((l2_to - l2_from) as f64 * u.sqrt()) as i64)
        };
        joins.push((ms, level));
    }
    // Joining order is also id order (UUIDv7), so most index insertions append.
    joins.sort_unstable();

    let id_at = |ms: i64, rng: &mut ChaCha8Rng| {
        let mut random = [0u8; 10];
        rng.fill(&mut random);
        uuid::Builder::from_unix_timestamp_millis(ms as u64, &random).into_uuid()
    };
    let mut nodes = Vec::with_capacity(descendants + 1);
    let root_at = start - Duration::days(1);
    nodes.push(Node {
        id: id_at(millis(root_at), &mut rng),
        at: root_at,
        upline: 0,
        level: 0,
    });
    let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
    for (ms, level) in joins {
        let upline = match level {
            1 => 0,
            2 => firsts[seconds.len() % firsts.len()],
            // A member of the second level who joined earlier (the first level if none has).
            _ if !seconds.is_empty() => seconds[rng.random_range(0..seconds.len())],
            _ => firsts[rng.random_range(0..firsts.len())],
        };
        let index = nodes.len() as u32;
        let level = nodes[upline as usize].level + 1;
        match level {
            1 => firsts.push(index),
            2 => seconds.push(index),
            _ => {}
        }
        nodes.push(Node {
            id: id_at(ms, &mut rng),
            at: at(ms),
            upline,
            level,
        });
    }

    let password_hash = auth::hash_password("bench-password-1".into()).await?;
    let (mut loader, format) = Loader::begin(db).await?;
    let mut member_rows = Rows::new(
        "members",
        "id, email, password_hash, display_name, tier, invite_code, upline_id, token_version, created_at",
        format,
    );
    let mut binding_rows = Rows::new(
        "bindings",
        "id, member_id, upline_id, kind, starts_at",
        format,
    );
    let mut closure_rows = Rows::new(
        "member_ancestors",
        "ancestor_id, depth, descendant_id, since",
        format,
    );
    let mut counts: HashMap<(u32, i16, String), i64> = HashMap::new();
    let mut tree = Tree {
        root: nodes[0].id,
        levels: [0; 3],
        closure_rows: 0,
        counters: 0,
        spent: Vec::new(),
    };
    for (i, node) in nodes.iter().enumerate() {
        let upline = (i > 0).then(|| nodes[node.upline as usize].id);
        let row = member_rows
            .row()
            .uuid(node.id)
            .text(&format!("m{i:07}@bench.example"))
            .text(&password_hash)
            .text(&format!("Member {i}"))
            .text("PUSH_HAND")
            .text(&invite_code(i as u64));
        match upline {
            Some(id) => row.uuid(id),
            None => row.null(),
        }
        .int(0)
        .time(node.at)
        .end();

        if let Some(upline) = upline {
            tree.levels[usize::from(node.level) - 1] += 1;
            binding_rows
                .row()
                .uuid(id_at(millis(node.at), &mut rng))
                .uuid(node.id)
                .uuid(upline)
                .text("INVITE_CODE")
                .time(node.at)
                .end();

            // One closure row per ancestor within reach, since the binding started.
            let mut ancestor = node.upline;
            for depth in 1..=hierarchy::MAX_DEPTH {
                closure_rows
                    .row()
                    .uuid(nodes[ancestor as usize].id)
                    .int(i64::from(depth))
                    .uuid(node.id)
                    .time(node.at)
                    .end();
                tree.closure_rows += 1;
                *counts
                    .entry((ancestor, depth, hierarchy::period(node.at)))
                    .or_default() += 1;
                if ancestor == 0 {
                    break;
                }
                ancestor = nodes[ancestor as usize].upline;
            }
        }
        if member_rows.rows >= format.chunk() || i + 1 == nodes.len() {
            // Members before the bindings that reference them.
            loader.flush(&mut member_rows).await?;
            loader.flush(&mut binding_rows).await?;
            loader.flush(&mut closure_rows).await?;
        }
    }
    let mut counters: Vec<_> = counts.into_iter().collect();
    counters.sort_unstable();
    tree.counters = counters.len();
    let mut counter_rows = Rows::new(
        "team_counters",
        "ancestor_id, depth, period, members",
        format,
    );
    for ((ancestor, depth, period), n) in counters {
        counter_rows
            .row()
            .uuid(nodes[ancestor as usize].id)
            .int(i64::from(depth))
            .text(&period)
            .int(n)
            .end();
        if counter_rows.rows >= format.chunk() {
            loader.flush(&mut counter_rows).await?;
        }
    }
    loader.flush(&mut counter_rows).await?;
    let committing = Instant::now();
    loader.commit().await?;
    if format == Format::PostgresCopy {
        // Planner statistics, as autovacuum would gather them after a load this size.
        db.execute_unprepared("ANALYZE").await?;
    }
    let finishing = committing.elapsed();
    tree.spent = [member_rows, binding_rows, closure_rows, counter_rows]
        .into_iter()
        .map(|r| (r.table, r.spent))
        .chain([(
            if format == Format::PostgresCopy {
                "commit and ANALYZE"
            } else {
                "commit"
            },
            finishing,
        )])
        .collect();
    Ok(tree)
}

/// A GraphQL client for one app.
struct Client {
    http: reqwest::Client,
    url: String,
    auth: String,
}

impl Client {
    fn request(&self, body: String, authed: bool) -> reqwest::RequestBuilder {
        let req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body);
        if authed {
            req.header("authorization", &self.auth)
        } else {
            req
        }
    }

    /// The `data` of a query that must succeed.
    async fn data(&self, query: &str) -> anyhow::Result<Value> {
        let body = json!({ "query": query }).to_string();
        let resp: Value = self.request(body, true).send().await?.json().await?;
        ensure!(resp.get("errors").is_none(), "{query} failed: {resp}");
        Ok(resp["data"].clone())
    }
}

/// The answers must be right before their speed means anything.
async fn check_answers(client: &Client, tree: &Tree) -> anyhow::Result<()> {
    let total: usize = tree.levels.iter().sum();
    let stats = client.data(T1).await?;
    let stats = &stats["me"]["teamStats"];
    ensure!(
        stats["totalMembers"].as_u64() == Some(total as u64),
        "teamStats.totalMembers is {}, expected {total}",
        stats["totalMembers"]
    );
    for (i, expected) in tree.levels.iter().enumerate() {
        let got = &stats["levels"][i];
        ensure!(
            got["level"].as_u64() == Some(i as u64 + 1)
                && got["members"].as_u64() == Some(*expected as u64),
            "teamStats level {} is {got}, expected {expected} members",
            i + 1
        );
    }
    for (query, level) in [(T2, 0), (T3, 1)] {
        let page = client.data(query).await?;
        let team = &page["me"]["team"];
        let edges = team["edges"].as_array().map_or(0, Vec::len);
        let expected = tree.levels[level].min(20);
        ensure!(
            edges == expected,
            "team(level: {}) returned {edges} edges, expected {expected}",
            level + 1
        );
        ensure!(
            team["pageInfo"]["hasNextPage"].as_bool() == Some(tree.levels[level] > 20),
            "team(level: {}) hasNextPage is wrong: {team}",
            level + 1
        );
        let joined: Vec<&str> = team["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["node"]["joinedAt"].as_str())
            .collect();
        let newest_first = joined.windows(2).all(|w| {
            let parse = |s: &str| DateTime::parse_from_rfc3339(s).ok();
            parse(w[0]) >= parse(w[1])
        });
        ensure!(
            newest_first,
            "team(level: {}) is not newest first",
            level + 1
        );
    }
    println!("answers checked: teamStats totals per level, first pages of levels 1 and 2");
    Ok(())
}

/// SQL statements run so far and seconds spent in them, from the app's metrics.
fn sql_counters(state: &pushhand::state::AppState) -> (u64, f64) {
    let text = state.metrics.render(pushhand::db::pool_stats(&state.db));
    let seconds = text
        .lines()
        .find_map(|l| l.strip_prefix("pushhand_db_statement_duration_seconds_sum "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    (state.metrics.db_statements.get(), seconds)
}

/// One scenario's figures.
struct Stats {
    requests: usize,
    per_second: f64,
    p50: StdDuration,
    p99: StdDuration,
    /// SQL statements the app ran per request (from its own counter).
    statements: f64,
    /// Time the app spent in those statements per request (from its own histogram), which
    /// tells database time from the rest of the request.
    sql_time: StdDuration,
}

/// Runs `query` from `settings.clients` concurrent clients: a warm-up, then the measured
/// period. Any failed request fails the scenario.
async fn measure(
    client: &Client,
    settings: &Settings,
    query: &str,
    authed: bool,
    sql: &dyn Fn() -> (u64, f64),
) -> anyhow::Result<Stats> {
    let body = Arc::new(json!({ "query": query }).to_string());
    let phase = |length: StdDuration| {
        let tasks: Vec<_> = (0..settings.clients)
            .map(|_| {
                let req = client.request(String::new(), authed);
                let body = body.clone();
                tokio::spawn(async move {
                    let deadline = Instant::now() + length;
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        let req = req
                            .try_clone()
                            .context("request cannot be cloned")?
                            .body(body.as_str().to_owned());
                        let sent = Instant::now();
                        let resp = req.send().await?;
                        let status = resp.status();
                        let bytes = resp.bytes().await?;
                        latencies.push(sent.elapsed());
                        let errors = bytes.windows(9).any(|w| w == b"\"errors\":");
                        ensure!(
                            status.is_success() && !errors,
                            "HTTP {status}: {}",
                            String::from_utf8_lossy(&bytes)
                        );
                    }
                    anyhow::Ok(latencies)
                })
            })
            .collect();
        async move {
            let started = Instant::now();
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await??);
            }
            anyhow::Ok((all, started.elapsed()))
        }
    };
    phase(settings.warmup).await?;
    let (statements_before, seconds_before) = sql();
    let (mut latencies, elapsed) = phase(settings.measure).await?;
    let (statements_after, seconds_after) = sql();
    let n = latencies.len() as f64;
    ensure!(!latencies.is_empty(), "no request completed");
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Ok(Stats {
        requests: latencies.len(),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        statements: statements_after.saturating_sub(statements_before) as f64 / n,
        sql_time: StdDuration::from_secs_f64(((seconds_after - seconds_before) / n).max(0.0)),
    })
}

fn ms(d: StdDuration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Prints the table and writes `target/bench-team.json`.
fn report(
    settings: &Settings,
    backend: &str,
    generation: StdDuration,
    tree: &Tree,
    results: &[(&str, &str, Stats)],
) -> anyhow::Result<()> {
    let (_, _, base) = &results[0];
    println!();
    println!(
        "{:<4} {:<28} {:>9} {:>10} {:>9} {:>9} {:>10} {:>10} {:>7} {:>10}",
        "",
        "scenario",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p50 / S0",
        "req/s / S0",
        "SQL/req",
        "SQL ms/req"
    );
    let mut rows = Vec::new();
    for (name, label, s) in results {
        let p50_ratio = ms(s.p50) / ms(base.p50);
        let rps_ratio = s.per_second / base.per_second;
        println!(
            "{name:<4} {label:<28} {:>9} {:>10.0} {:>9.3} {:>9.3} {:>9.2}x {:>9.2}x {:>7.1} {:>10.3}",
            s.requests,
            s.per_second,
            ms(s.p50),
            ms(s.p99),
            p50_ratio,
            rps_ratio,
            s.statements,
            ms(s.sql_time)
        );
        rows.push(json!({
            "name": name,
            "scenario": label,
            "requests": s.requests,
            "requests_per_second": s.per_second,
            "p50_ms": ms(s.p50),
            "p99_ms": ms(s.p99),
            "p50_ratio_to_s0": p50_ratio,
            "throughput_ratio_to_s0": rps_ratio,
            "sql_statements_per_request": s.statements,
            "sql_ms_per_request": ms(s.sql_time),
        }));
    }
    let out = json!({
        "backend": backend,
        "descendants": tree.levels.iter().sum::<usize>(),
        "levels": tree.levels,
        "closure_rows": tree.closure_rows,
        "team_counters": tree.counters,
        "generation_seconds": generation.as_secs_f64(),
        "generation_breakdown_seconds": tree
            .spent
            .iter()
            .map(|(what, d)| (what.to_string(), json!(d.as_secs_f64())))
            .collect::<serde_json::Map<_, _>>(),
        "clients": settings.clients,
        "warmup_seconds": settings.warmup.as_secs_f64(),
        "seconds_per_scenario": settings.measure.as_secs_f64(),
        "scenarios": rows,
    });
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target").to_owned());
    let path = std::path::Path::new(&target).join("bench-team.json");
    std::fs::create_dir_all(&target).ok();
    std::fs::write(&path, serde_json::to_string_pretty(&out)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("\nwritten to {}", path.display());
    Ok(())
}
