//! The server under test: the release `pushhand` binary in its own process, pinned to one
//! core when `taskset` is available, with its resident memory read from `/proc`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

/// How the server is started.
pub struct Launch<'a> {
    pub binary: &'a Path,
    pub database_url: &'a str,
    pub redis_url: Option<&'a str>,
    pub data_dir: &'a Path,
    pub jwt_secret: &'a str,
    pub response_cache: bool,
    /// The core to pin the server to, when `taskset` exists.
    pub core: Option<usize>,
}

impl Server {
    pub async fn start(l: &Launch<'_>) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = match l.core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &core.to_string()]).arg(l.binary);
                c
            }
            None => Command::new(l.binary),
        };
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", l.database_url)
            .env("BIND_ADDR", addr.to_string())
            .env("JWT_SECRET", l.jwt_secret)
            .env("PUSHHAND_DATA_DIR", l.data_dir)
            .env("PUSHHAND_SEED_DEMO", "false")
            .env("PUSHHAND_JOB_INTERVAL_SECONDS", "3600")
            .env("PUSHHAND_RESPONSE_CACHE", l.response_cache.to_string())
            .env("RUST_LOG", "warn")
            // The load generator is one client address holding hundreds of connections and
            // WebSockets (S7: 500), and its kept-alive connections may idle between phases:
            // the limits against hostile clients are raised for it.
            .env("PUSHHAND_MAX_CONNECTIONS", "10000")
            .env("PUSHHAND_WS_MAX_PER_CLIENT", "10000")
            .env("PUSHHAND_HEADER_READ_TIMEOUT_MS", "3600000")
            .env("PUSHHAND_REQUEST_TIMEOUT_MS", "600000")
            // The checkout scenarios place many unpaid orders per buyer, and large ones: the
            // caps on what one member may hold are not what they measure.
            .env("PUSHHAND_MAX_UNPAID_ORDERS", "1000000")
            .env("PUSHHAND_MAX_UNITS_PER_SKU", "1000000")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(redis) = l.redis_url {
            cmd.env("REDIS_URL", redis);
        }
        let child = cmd.spawn().context("starting the server")?;
        let server = Server { child, addr };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = reqwest::Client::new();
        while Instant::now() < deadline {
            if let Ok(r) = client
                .get(format!("http://{}/readyz", self.addr))
                .send()
                .await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the server did not become ready")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory in bytes (the `taskset` wrapper execs the server, so
    /// the pid is the server's).
    pub fn rss(&self) -> anyhow::Result<u64> {
        rss_of(self.pid())
    }

    /// SIGTERM, then wait (graceful shutdown).
    pub fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill().ok();
        self.child.wait().ok();
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rss_of(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("VmRSS in /proc/<pid>/status")?;
    Ok(kb * 1024)
}

/// The fields of a `/proc/<pid>/stat` text after the command's name (which may hold spaces
/// and parentheses, so they start after the last ')'): state, ppid, pgrp, …
pub fn stat_fields(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace())
}

/// The CPU time `pid` has used so far (user and system, every thread), in milliseconds, from
/// `/proc/<pid>/stat`; `None` where there is no such file. Linux counts it in `USER_HZ`
/// ticks, 100 a second on x86-64 and arm64: 10 ms steps, ~1 % of a 10 s scenario on one core.
pub fn cpu_ms_of(pid: u32) -> Option<f64> {
    cpu_ms_in(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// [`cpu_ms_of`] from the text of a `/proc/<pid>/stat`: utime and stime, the 14th and 15th
/// fields of the line.
fn cpu_ms_in(stat: &str) -> Option<f64> {
    let mut times = stat_fields(stat)?.skip(11).map(|t| t.parse::<u64>().ok());
    Some((times.next()?? + times.next()??) as f64 * 10.0)
}

/// Whether `taskset` can pin processes here (and there are at least two cores).
pub fn can_pin() -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores >= 2
        && Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Pins this process (the load generator) to `core`.
pub fn pin_self(core: usize) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &core.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("taskset could not pin the load generator");
    }
    Ok(())
}

/// Builds the release server and returns the binary's path.
pub fn build_release(workspace: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--release", "-p", "pushhand", "--bin", "pushhand"])
        .status()
        .context("cargo build --release")?;
    if !status.success() {
        bail!("building the release server failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace.join("target"));
    Ok(target.join("release").join("pushhand"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_user_plus_system_after_the_name() {
        // pid, (comm), state, ppid, pgrp, session, tty, tpgid, flags, minflt, cminflt,
        // majflt, cmajflt, utime, stime, cutime, …
        let stat = "4242 (a (odd) name) S 1 4242 4242 0 -1 4194560 120 0 3 0 250 37 9 4 20 0";
        assert_eq!(cpu_ms_in(stat), Some(2870.0));
        assert_eq!(cpu_ms_in("4242 (cut short) S 1 2"), None);
        assert_eq!(cpu_ms_in("no name at all"), None);
        // This process has run, so its figure exists and is not negative.
        let own = cpu_ms_of(std::process::id()).expect("this process's /proc/<pid>/stat");
        assert!(own >= 0.0);
    }
}
