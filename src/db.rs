//! The database connection: pool set-up for SQLite and PostgreSQL, a statement counter wired
//! into the metrics, and migrations.

use std::ffi::c_int;
use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseBackend, DatabaseConnection};

use crate::config::Config;
use crate::metrics::{Metrics, PoolStats};

/// Open the pool the configuration names and count every statement it runs.
pub async fn connect(config: &Config, metrics: &Metrics) -> anyhow::Result<DatabaseConnection> {
    connect_as(config, metrics, Pool::Main).await
}

/// The pool the short links' visits are recorded through ([`crate::service::funnel::Visits`]):
/// on PostgreSQL connections of their own, as many as the groups written at once, whose
/// commits do not wait for the log's flush (`synchronous_commit = off`); elsewhere `db`.
///
/// A visit is a count for the funnel, not money or stock: should PostgreSQL crash, the
/// visits of its last moments (at most three times `wal_writer_delay`, 0.6 s by default)
/// may be lost, the database stays consistent, and nothing else is written through this
/// pool. Under S15 the groups spent most of their time waiting for that flush (sampled
/// `pg_stat_activity`: 137 of 189 samples in `LWLock:WALWrite` or `IO:WALSync`, 2026-12-06).
pub async fn connect_visit_recorder(
    config: &Config,
    metrics: &Metrics,
    db: &DatabaseConnection,
) -> anyhow::Result<DatabaseConnection> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(db.clone());
    }
    connect_as(config, metrics, Pool::Visits).await
}

/// Which pool [`connect_as`] opens.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pool {
    Main,
    Visits,
}

async fn connect_as(
    config: &Config,
    metrics: &Metrics,
    pool: Pool,
) -> anyhow::Result<DatabaseConnection> {
    let url = config.database_url();
    if let Some(path) = sqlite_file(&url)
        && let Some(dir) = std::path::Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let statement_timeout_ms = config.db_statement_timeout_ms;
    let mut opts = ConnectOptions::new(url.clone());
    let size = match pool {
        Pool::Main => config.db_pool_size(),
        Pool::Visits => crate::service::funnel::GROUPS_IN_FLIGHT as u32,
    };
    opts.max_connections(size)
        .min_connections(1)
        .acquire_timeout(config.db_acquire_timeout())
        .connect_timeout(config.db_acquire_timeout())
        .sqlx_logging(false)
        // No ping before every statement (sqlx's default): it doubles the round trips of
        // cheap queries. A dead connection then fails one statement (`UNAVAILABLE`) and is
        // dropped from the pool.
        .test_before_acquire(false)
        .map_sqlx_postgres_opts(move |o| {
            // No statement may hold a connection longer than this. (Not set:
            // `plan_cache_mode = force_generic_plan`, which cut PostgreSQL's planning but
            // slowed S10 by a third and S14 by a tenth: docs/performance.md, 2026-12-05.)
            let o = o.options([("statement_timeout", statement_timeout_ms.to_string())]);
            match pool {
                Pool::Main => o,
                Pool::Visits => o.options([("synchronous_commit", "off")]),
            }
        })
        .map_sqlx_sqlite_opts(|o| {
            // WAL lets readers run beside the one writer; the busy timeout makes writers queue
            // instead of failing with SQLITE_BUSY; foreign keys are off by default in SQLite.
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // Each statement runs on the connection's own thread and sends its rows back
                // over a channel. With sqlx's 50 the thread parks on every page of 51 products
                // or 150 SKUs and waits to be woken: two more context switches per statement.
                .row_buffer_size(512)
                // The log's file is cut back to this size when it restarts (whichever
                // connection writes next): see `keep_wal_small`.
                .pragma("journal_size_limit", WAL_FILE_LIMIT_BYTES.to_string())
                // No memory map (`mmap_size` stays 0): in WAL mode a connection that finds
                // the database changed since its last transaction drops its page cache
                // *and unmaps the file* (`pagerBeginReadTransaction`), so under writes every
                // transaction paid a `munmap`, a new map and a page fault per page it read
                // (S15: 7 % of the server's samples in `munmap`, 11 % in page faults).
                // Alternating runs, 1 GiB map → none: S15 7,137/7,908 → 10,804/11,968
                // visits/s, S6 720/727 → 844/908, S9 517/519 → 586/615 orders/s, the read
                // scenarios (S8, S13-raw) within their noise.
                // No checkpoint on the commit path: `keep_wal_small` checkpoints the log
                // several times a second instead, off every request's path.
                .pragma("wal_autocheckpoint", "0")
        })
        .map_sqlx_sqlite_pool_opts(|o| {
            o.after_connect(|conn, _| Box::pin(async move { stable_plans(conn).await }))
        });
    let mut db = Database::connect(opts)
        .await
        .with_context(|| format!("connecting to {}", redact(&url)))?;
    let statements = metrics.db_statements.clone();
    let failures = metrics.db_statement_failures.clone();
    let duration = metrics.db_statement_duration.clone();
    db.set_metric_callback(move |info| {
        statements.inc();
        if info.failed {
            failures.inc();
        }
        duration.observe(info.elapsed.as_secs_f64());
    });
    Ok(db)
}

/// Turns on SQLite's query planner stability guarantee (`SQLITE_DBCONFIG_ENABLE_QPSG`) for a
/// new connection: a statement's plan then never depends on the values bound to it.
///
/// Without it SQLite plans a statement again whenever a value is bound to a parameter the
/// planner looked at: a `LIMIT ?` (every keyset page), a `LIKE ?` pattern, and, once
/// `ANALYZE` has gathered statistics (STAT4), any value compared with an indexed column.
/// The product listing was planned again on every page (~135,000 instructions, ~8% of the
/// SQLite thread's work per page). Our statements' plans do not depend on values, and the
/// guarantee keeps them from changing with the data.
async fn stable_plans(
    conn: &mut sea_orm::sqlx::SqliteConnection,
) -> Result<(), sea_orm::sqlx::Error> {
    match stable_plans_setting(conn, 1).await? {
        1 => Ok(()),
        other => Err(sea_orm::sqlx::Error::Configuration(
            format!("SQLITE_DBCONFIG_ENABLE_QPSG stayed {other}").into(),
        )),
    }
}

/// Sets `conn`'s `SQLITE_DBCONFIG_ENABLE_QPSG` (1 on, 0 off, -1 as it is) and returns the
/// setting as it then is.
async fn stable_plans_setting(
    conn: &mut sea_orm::sqlx::SqliteConnection,
    set: c_int,
) -> Result<c_int, sea_orm::sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let mut now: c_int = -1;
    // SAFETY: the connection's open handle, locked for this thread by `lock_handle` until
    // `handle` drops; with this option `sqlite3_db_config` takes an int (the new setting, or
    // -1 to leave it) and a pointer it writes the setting to.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            handle.as_raw_handle().as_ptr(),
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            set,
            &mut now as *mut c_int,
        )
    };
    if rc == libsqlite3_sys::SQLITE_OK {
        Ok(now)
    } else {
        Err(sea_orm::sqlx::Error::Configuration(
            format!("SQLITE_DBCONFIG_ENABLE_QPSG failed with {rc}").into(),
        ))
    }
}

/// The write-ahead log's size, in 4 KiB frames, above which [`keep_wal_small`] restarts it.
pub const WAL_RESTART_FRAMES: i64 = 4096;

/// How often the server checkpoints SQLite's log ([`keep_wal_small`]): SQLite's own
/// checkpoint on commit is off ([`connect`]), so this bounds how much log a busy instance
/// writes between two checkpoints.
pub const WAL_CHECK_EVERY: Duration = Duration::from_millis(250);

/// How large the WAL file is left after a restart ([`keep_wal_small`]).
const WAL_FILE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// What [`keep_wal_small`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalCheck {
    /// Not SQLite, or an in-memory database: there is no log to keep.
    NoLog,
    /// The log held this many frames, at most [`WAL_RESTART_FRAMES`]: left as it was.
    Small(i64),
    /// The log held this many frames; it was checkpointed and starts again from its
    /// beginning.
    Restarted(i64),
    /// The log held this many frames; readers were still on it when the busy timeout ran
    /// out, so it goes on from where it is (tried again at the next check).
    Busy(i64),
}

/// Checkpoints SQLite's write-ahead log and keeps it from growing without bound (a job of
/// the running server, every [`WAL_CHECK_EVERY`]).
///
/// Left to itself SQLite checkpoints the log on commit — once it holds 1,000 pages, the
/// committing connection copies its pages into the database and syncs it, on every commit
/// until the log restarts. That put a copy and an `fsync` on the path of the requests that
/// write (S15: 17 % of the server's samples in `walCheckpoint` under `pushhand-bench --only
/// S15`), so [`connect`] turns it off (`wal_autocheckpoint = 0`) and this job's `PASSIVE`
/// checkpoint does the copying, four times a second, each page once however often it was
/// written meanwhile (alternating runs: S6 778 → 955 orders/s, S15 10,434 → 11,580 visits/s
/// on SQLite, with a memory map then on). A checkpoint copies the log's pages
/// into the database, but SQLite only **starts the log again from its beginning** when a
/// writer finds that no reader is using it; under constant load some connection is always
/// reading, so the log never restarts and every commit appends to it ("checkpoint
/// starvation" in SQLite's WAL documentation). Measured: `pushhand-bench --only S15` (a
/// write a request) grew `bench.db-wal` from 0.1 to 1.2 GB in twelve seconds, and the
/// server spent its SQLite threads' time growing the file (ext4 block allocation,
/// page-cache misses of a log larger than any cache). A log past [`WAL_RESTART_FRAMES`]
/// frames is checkpointed in `RESTART` mode: the pages already copied are skipped, the
/// writer lock is held while the readers still on the log finish their statements
/// (milliseconds here), and the next commit writes from the log's beginning — over file
/// blocks that exist. Every connection's `journal_size_limit` ([`connect`]) then cuts a
/// file that grew past [`WAL_FILE_LIMIT_BYTES`] back to that size.
pub async fn keep_wal_small(db: &DatabaseConnection) -> Result<WalCheck, sea_orm::DbErr> {
    if db.get_database_backend() != DatabaseBackend::Sqlite {
        return Ok(WalCheck::NoLog);
    }
    // A passive checkpoint copies what it can without waiting and says how long the log is
    // (-1 when the database is not in WAL mode: in memory).
    let frames = checkpoint(db, Checkpoint::Passive).await?.1;
    if frames < 0 {
        return Ok(WalCheck::NoLog);
    }
    if frames <= WAL_RESTART_FRAMES {
        return Ok(WalCheck::Small(frames));
    }
    let (busy, _, _) = checkpoint(db, Checkpoint::Restart).await?;
    Ok(if busy == 0 {
        WalCheck::Restarted(frames)
    } else {
        WalCheck::Busy(frames)
    })
}

/// `PRAGMA wal_checkpoint(mode)`: (busy, frames in the log, frames checkpointed). Run on
/// sqlx's pool, past SeaORM's statement metrics: `pushhand_db_statements_total` counts the
/// statements of the work the server was asked to do, not this job's four a second (and
/// the N+1 tests, which count statements around a request, would count them too).
async fn checkpoint(
    db: &DatabaseConnection,
    mode: Checkpoint,
) -> Result<(i64, i64, i64), sea_orm::DbErr> {
    use sea_orm::sqlx::Row;
    let sql = match mode {
        Checkpoint::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Checkpoint::Restart => "PRAGMA wal_checkpoint(RESTART)",
    };
    let failed = |e: sea_orm::sqlx::Error| sea_orm::DbErr::Custom(format!("{sql}: {e}"));
    let row = sea_orm::sqlx::query(sql)
        .fetch_one(db.get_sqlite_connection_pool())
        .await
        .map_err(failed)?;
    Ok((
        row.try_get(0).map_err(failed)?,
        row.try_get(1).map_err(failed)?,
        row.try_get(2).map_err(failed)?,
    ))
}

/// A mode of `PRAGMA wal_checkpoint`.
#[derive(Clone, Copy, Debug)]
enum Checkpoint {
    Passive,
    Restart,
}

/// Apply every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.context("applying migrations")
}

/// The pool's connection counts, for `/metrics`.
pub fn pool_stats(db: &DatabaseConnection) -> PoolStats {
    match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            PoolStats {
                size: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            }
        }
        DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            PoolStats {
                size: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            }
        }
        _ => PoolStats::default(),
    }
}

/// The number naming this database in keys shared over Redis (the response cache's, the
/// failure limits'): created once, by the first instance that starts (the others read it),
/// so every instance on one database agrees whatever URL it reaches the database by, and
/// deployments and test databases sharing one Redis never see each other's keys. Two
/// statements (a random number kept in the `write_locks` row `response_cache`), at start,
/// and only when Redis is configured.
pub async fn namespace(db: &DatabaseConnection) -> anyhow::Result<String> {
    use rand::TryRngCore;
    use sea_orm::{ConnectionTrait, Statement};
    const ROW: &str = "response_cache";
    let candidate = rand::rngs::OsRng
        .try_next_u64()
        .context("reading OS randomness")?
        >> 1;
    db.execute_unprepared(&format!(
        "INSERT INTO write_locks (name, version) VALUES ('{ROW}', {candidate}) \
         ON CONFLICT (name) DO NOTHING"
    ))
    .await
    .context("creating the database's namespace")?;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT version FROM write_locks WHERE name = '{ROW}'"),
        ))
        .await
        .context("reading the database's namespace")?
        .context("the database's namespace row is missing")?;
    let n: i64 = row
        .try_get("", "version")
        .context("reading the database's namespace")?;
    Ok(format!("{:016x}", n as u64))
}

/// The file path of a SQLite URL, if it names a file.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Begins a transaction that will write. On SQLite it takes the database's write lock at
/// `BEGIN` (`BEGIN IMMEDIATE`): a transaction that reads first and writes later would
/// otherwise fail with `SQLITE_BUSY` as soon as another writer commits in between, and the
/// busy timeout cannot help there. PostgreSQL ignores the option.
pub async fn begin_write(
    db: &DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// Whether `err` means the database cannot be reached or did not answer in time (pool
/// exhausted, connection lost, server restarting, statement timeout) or rolled the
/// transaction back to break a deadlock — a condition the client may retry
/// (`UNAVAILABLE`), not a bug.
pub fn is_unavailable(err: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::{DbErr, RuntimeErr};
    let runtime = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(r) | DbErr::Query(r) => r,
        _ => return false,
    };
    let RuntimeErr::SqlxError(e) = runtime else {
        return false;
    };
    match e.as_ref() {
        Sqlx::Io(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed
        | Sqlx::Tls(_)
        | Sqlx::Protocol(_) => true,
        // 57014 query_canceled (statement_timeout), 57P01..57P03 admin shutdown, crash
        // shutdown, cannot connect now, 08xxx connection exceptions; 40P01 deadlock_detected
        // and 40001 serialization_failure (the transaction was rolled back whole: safe to
        // run again).
        Sqlx::Database(db) => db.code().is_some_and(|c| {
            c == "57014"
                || c.starts_with("57P")
                || c.starts_with("08")
                || c == "40P01"
                || c == "40001"
        }),
        _ => false,
    }
}

/// Whether a database error is a unique-constraint violation: how the services turn races
/// (a taken email, a repeated idempotency key, a second payment reference) into answers.
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// Whether a database error is a division by zero (SQLSTATE 22012): how a guarded batch on
/// PostgreSQL says its guard updated nothing ([`crate::service::batch::Batch::run_guarded`]).
pub fn is_division_by_zero(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|code| code == "22012"),
        _ => false,
    }
}

/// Whether a database error is a `CHECK` constraint violation (a checkout taking more stock
/// than is left: `skus.stock >= 0`).
pub fn is_check_violation(err: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::error::ErrorKind;
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .is_some_and(|d| d.kind() == ErrorKind::CheckViolation),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection of a SQLite pool has the planner stability guarantee on.
    #[tokio::test]
    async fn sqlite_connections_plan_independently_of_bound_values() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/plans.db?mode=rwc", dir.path().display());
        let config =
            crate::config::from_args(["pushhand", "--database-url", url.as_str()]).expect("config");
        let db = connect(&config, &Metrics::new()).await.expect("connects");
        let pool = db.get_sqlite_connection_pool();
        let mut conns = Vec::new();
        for _ in 0..2 {
            conns.push(pool.acquire().await.expect("a connection"));
        }
        for conn in &mut conns {
            let on = stable_plans_setting(conn, -1)
                .await
                .expect("reads the setting");
            assert_eq!(on, 1);
        }
    }

    /// A log that a long reader kept from being checkpointed grows past the threshold; once
    /// the reader is gone, `keep_wal_small` restarts it and the next commit writes from the
    /// log's beginning (without it, the log goes on growing under constant load).
    #[tokio::test]
    async fn a_grown_write_ahead_log_starts_again() {
        use sea_orm::{ConnectionTrait, TransactionTrait};
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/wal.db?mode=rwc", dir.path().display());
        let config =
            crate::config::from_args(["pushhand", "--database-url", url.as_str()]).expect("config");
        let db = connect(&config, &Metrics::new()).await.expect("connects");
        db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
            .await
            .expect("a table");
        assert!(matches!(
            keep_wal_small(&db).await.expect("checks"),
            WalCheck::Small(_)
        ));
        // A reader that holds its snapshot while 6,000 pages are written.
        let reader = db.begin().await.expect("a reader");
        reader
            .execute_unprepared("SELECT COUNT(*) FROM t")
            .await
            .expect("reads");
        for _ in 0..60 {
            db.execute_unprepared(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) \
                 INSERT INTO t (b) SELECT randomblob(4000) FROM n",
            )
            .await
            .expect("writes");
        }
        let frames = checkpoint(&db, Checkpoint::Passive)
            .await
            .expect("checkpoint")
            .1;
        assert!(frames > WAL_RESTART_FRAMES, "the log holds {frames} frames");
        reader.commit().await.expect("the reader ends");
        match keep_wal_small(&db).await.expect("checks") {
            WalCheck::Restarted(n) => assert_eq!(n, frames),
            other => panic!("not restarted: {other:?}"),
        }
        db.execute_unprepared("INSERT INTO t (b) VALUES (randomblob(10))")
            .await
            .expect("writes");
        let after = checkpoint(&db, Checkpoint::Passive)
            .await
            .expect("checkpoint")
            .1;
        assert!(after < 10, "the next commit wrote from frame {after}");
        let limit = db
            .query_one_raw(sea_orm::Statement::from_string(
                DatabaseBackend::Sqlite,
                "PRAGMA journal_size_limit",
            ))
            .await
            .expect("reads")
            .expect("a row")
            .try_get_by_index::<i64>(0)
            .expect("a number");
        assert_eq!(limit, WAL_FILE_LIMIT_BYTES);
    }
}
