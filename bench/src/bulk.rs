//! Bulk loading for generated benchmark data: rows assembled as multi-row `INSERT`s on
//! SQLite or `COPY` text on PostgreSQL, inside one transaction.

use std::fmt::Write as _;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, TransactionTrait};
use uuid::Uuid;

/// How rows travel to the database.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Multi-row `INSERT … VALUES` with literals as the app's driver stores the values:
    /// UUIDs as 16-byte blobs, times as RFC 3339 text.
    SqliteValues,
    /// `COPY … FROM STDIN` in text format: PostgreSQL's bulk path (no SQL to parse and plan;
    /// about 1.5 times as fast as multi-row INSERTs for this load).
    PostgresCopy,
}

impl Format {
    /// Member rows per statement; bindings alike, closure rows up to three times as many.
    pub fn chunk(self) -> usize {
        match self {
            Format::SqliteValues => 1_000,
            Format::PostgresCopy => 10_000,
        }
    }
}

/// Rows of one table being assembled, in one of the [`Format`]s.
pub struct Rows {
    pub table: &'static str,
    columns: &'static str,
    format: Format,
    buf: String,
    pub rows: usize,
    fields: usize,
    /// Time spent writing this table.
    pub spent: StdDuration,
}

impl Rows {
    pub fn new(table: &'static str, columns: &'static str, format: Format) -> Rows {
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
    pub fn row(&mut self) -> &mut Rows {
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

    pub fn uuid(&mut self, id: Uuid) -> &mut Rows {
        let format = self.format;
        let out = self.field();
        let _ = match format {
            Format::SqliteValues => write!(out, "X'{}'", id.simple()),
            Format::PostgresCopy => write!(out, "{}", id.hyphenated()),
        };
        self
    }

    pub fn time(&mut self, t: DateTime<Utc>) -> &mut Rows {
        self.text(&t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
    }

    /// Text without quotes, tabs, backslashes or line breaks (all this generator writes).
    pub fn text(&mut self, s: &str) -> &mut Rows {
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

    pub fn int(&mut self, n: i64) -> &mut Rows {
        let _ = write!(self.field(), "{n}");
        self
    }

    pub fn bool(&mut self, b: bool) -> &mut Rows {
        let format = self.format;
        self.field().push_str(match (format, b) {
            (Format::SqliteValues, true) => "1",
            (Format::SqliteValues, false) => "0",
            (Format::PostgresCopy, true) => "t",
            (Format::PostgresCopy, false) => "f",
        });
        self
    }

    pub fn null(&mut self) -> &mut Rows {
        let format = self.format;
        self.field().push_str(match format {
            Format::SqliteValues => "NULL",
            Format::PostgresCopy => "\\N",
        });
        self
    }

    pub fn end(&mut self) {
        self.buf.push(match self.format {
            Format::SqliteValues => ')',
            Format::PostgresCopy => '\n',
        });
    }
}

/// The one transaction the whole load runs in.
pub enum Loader {
    Sqlite(sea_orm::DatabaseTransaction),
    Postgres(sea_orm::sqlx::Transaction<'static, sea_orm::sqlx::Postgres>),
}

impl Loader {
    pub async fn begin(db: &DatabaseConnection) -> anyhow::Result<(Loader, Format)> {
        Ok(match db.get_database_backend() {
            DbBackend::Postgres => (
                Loader::Postgres(db.get_postgres_connection_pool().begin().await?),
                Format::PostgresCopy,
            ),
            _ => (Loader::Sqlite(db.begin().await?), Format::SqliteValues),
        })
    }

    /// Writes the rows collected so far.
    pub async fn flush(&mut self, rows: &mut Rows) -> anyhow::Result<()> {
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

    pub async fn commit(self) -> anyhow::Result<()> {
        match self {
            Loader::Sqlite(txn) => txn.commit().await?,
            Loader::Postgres(txn) => txn.commit().await?,
        }
        Ok(())
    }
}

/// `n` instants drawn at random from `[from, to)`, in order, as Unix milliseconds.
pub fn random_times(
    rng: &mut ChaCha8Rng,
    n: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<i64> {
    let span = (to - from).num_milliseconds().max(1);
    let mut times: Vec<i64> = (0..n)
        .map(|_| from.timestamp_millis() + rng.random_range(0..span))
        .collect();
    times.sort_unstable();
    times
}

/// The instant `ms` Unix milliseconds name.
pub fn at(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

/// A version-7 UUID of the instant `ms` (rows made in time order get ids in that order).
pub fn id_at(ms: i64, rng: &mut ChaCha8Rng) -> Uuid {
    let mut random = [0u8; 10];
    rng.fill(&mut random);
    uuid::Builder::from_unix_timestamp_millis(ms as u64, &random).into_uuid()
}

/// The `n`-th invite code: 8 Crockford symbols, in the order of `n` (so the unique index
/// grows at its end).
pub fn invite_code(n: u64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    (0..8)
        .rev()
        .map(|i| ALPHABET[((n >> (5 * i)) & 31) as usize] as char)
        .collect()
}

/// The columns [`push_hand`] writes, for a `members` [`Rows`].
pub const MEMBER_COLUMNS: &str = "id, email, password_hash, display_name, tier, invite_code, upline_id, token_version, created_at";

/// Adds a push-hand without an upline to `members` (a [`Rows`] of [`MEMBER_COLUMNS`]), its
/// invite code the `code`-th ([`invite_code`]).
pub fn push_hand(
    members: &mut Rows,
    id: Uuid,
    email: &str,
    password_hash: &str,
    display_name: &str,
    code: u64,
    now: DateTime<Utc>,
) {
    members
        .row()
        .uuid(id)
        .text(email)
        .text(password_hash)
        .text(display_name)
        .text("PUSH_HAND")
        .text(&invite_code(code))
        .null()
        .int(0)
        .time(now)
        .end();
}

/// Opens the connection the load runs on. PostgreSQL: the app's own settings. SQLite: one
/// connection that journals in memory without syncing and caches the whole load, so that a
/// gigabyte of new pages is written once, at commit, instead of to the write-ahead log and
/// then again into the database (the app switches the file back to WAL when it connects).
pub async fn loader_connection(
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
