//! Faults of the services the server depends on: PostgreSQL going away under a running
//! server (through a TCP proxy the test can cut) must give fast `UNAVAILABLE` errors, never a
//! hang, and the server must recover by itself; Redis restarts are covered with the events
//! (`live`) and the cache (`curation`) tests, using [`PrivateRedis`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::helpers::{TestApp, error_code};

/// A private Redis server the test can stop and start again, on a free port.
pub struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    pub fn start(port: u16) -> std::io::Result<PrivateRedis> {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()?;
        Ok(PrivateRedis {
            port,
            child: Some(child),
        })
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn ready(&self) {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port)).expect("url");
        for _ in 0..200 {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("private redis-server did not start");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP proxy to `target` on a fixed local port that the test can cut (every connection
/// dropped, new ones refused) and restore — a database restart as the server sees it.
pub struct Proxy {
    pub port: u16,
    target: SocketAddr,
    tasks: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let mut p = Proxy {
            port,
            target,
            tasks: None,
        };
        p.serve(listener);
        p
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target;
        self.tasks = Some(tokio::spawn(async move {
            // Dropping this task (on cut) drops the JoinSet, which aborts every connection.
            let mut conns = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Drops every connection and stops listening.
    pub fn cut(&mut self) {
        if let Some(t) = self.tasks.take() {
            t.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&mut self) {
        for _ in 0..100 {
            if let Ok(l) = TcpListener::bind(("127.0.0.1", self.port)).await {
                self.serve(l);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("could not listen on port {} again", self.port);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

const PRODUCTS: &str = "{ products(first: 3) { edges { node { id name } } } }";

/// PostgreSQL goes away under a serving instance: requests fail fast with `UNAVAILABLE`
/// (bounded by the pool's acquire timeout, no hang), `/readyz` says so, and once the
/// database is back the server answers again by itself. Runs in the PostgreSQL pass.
#[tokio::test]
async fn postgres_going_away_gives_unavailable_and_the_server_recovers() {
    if std::env::var("PUSHHAND_TEST_DATABASE_URL").is_err() {
        eprintln!("skipped: PUSHHAND_TEST_DATABASE_URL is not set");
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let direct = crate::helpers::fresh_database_url(&dir).await;
    // postgres://user@host:port/db → the same through the proxy.
    let after_at = direct.split('@').nth(1).expect("host in URL");
    let hostport = after_at.split('/').next().expect("host:port");
    let target: SocketAddr = hostport.parse().expect("numeric host:port");
    let mut proxy = Proxy::start(target).await;
    let via_proxy = direct.replace(hostport, &format!("127.0.0.1:{}", proxy.port));
    let app = TestApp::spawn_at(
        dir,
        via_proxy,
        &[
            "--db-acquire-timeout-ms",
            "1000",
            "--db-max-connections",
            "4",
            // Every read must reach the database: a cached anonymous answer would (rightly)
            // still be served while it is away.
            "--response-cache",
            "false",
        ],
    )
    .await;
    app.data(PRODUCTS, json!({})).await;

    proxy.cut();
    for _ in 0..3 {
        let started = Instant::now();
        let resp = tokio::time::timeout(Duration::from_secs(20), app.gql(PRODUCTS, json!({})))
            .await
            .expect("an answer, not a hang");
        assert_eq!(error_code(&resp), Some("UNAVAILABLE"), "{resp}");
        eprintln!("UNAVAILABLE after {:?}", started.elapsed());
    }
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), 503);

    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = app.gql(PRODUCTS, json!({})).await;
        if resp.get("errors").is_none() {
            break;
        }
        assert_eq!(error_code(&resp), Some("UNAVAILABLE"), "{resp}");
        assert!(Instant::now() < deadline, "never recovered: {resp}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A transaction PostgreSQL rolls back to break a deadlock is a retryable `UNAVAILABLE`,
/// not an internal error: nothing of it was kept. (The services take rows in a fixed order
/// and should never meet one; this is the net under them. SQLite runs one writer at a time.)
#[tokio::test]
async fn a_deadlock_is_a_retryable_error() {
    use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};

    let app = TestApp::spawn().await;
    let db = app.db();
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    for sql in [
        "CREATE TABLE deadlock_probe (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
        "INSERT INTO deadlock_probe (id, n) VALUES (1, 0), (2, 0)",
    ] {
        db.execute_unprepared(sql).await.expect("set-up");
    }
    let touch = |id: i32| format!("UPDATE deadlock_probe SET n = n + 1 WHERE id = {id}");
    let (a, b) = (
        db.begin().await.expect("begin"),
        db.begin().await.expect("begin"),
    );
    a.execute_unprepared(&touch(1)).await.expect("a takes 1");
    b.execute_unprepared(&touch(2)).await.expect("b takes 2");
    // Each now waits for the other's row: PostgreSQL aborts one of the two.
    let (a_then, b_then) = (touch(2), touch(1));
    let (ra, rb) = tokio::join!(a.execute_unprepared(&a_then), b.execute_unprepared(&b_then));
    let failed: Vec<pushhand::error::Error> = [ra.err(), rb.err()]
        .into_iter()
        .flatten()
        .map(pushhand::error::Error::from)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].code(), "UNAVAILABLE", "{:?}", failed[0]);
    drop((a, b));
}
