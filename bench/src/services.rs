//! PostgreSQL and Redis moved onto the load generator's core for the run, when they run on
//! this machine, and put back afterwards.
//!
//! The server under test has a core of its own, as in S0, whose ratio every scenario is
//! measured against. Left to the scheduler, PostgreSQL's backends and Redis are woken on
//! whichever core woke them, often the server's, and the server then measures its
//! neighbours too (`perf`: during S1 on PostgreSQL the server got ~0.77 of its core, with
//! half of the other core idle). With them on the other core, the server's core holds the
//! server alone, as it would with its database on another machine.

use std::process::{Command, Stdio};

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

/// Processes whose affinity the run changed, with the CPU list each had.
#[derive(Debug, Default)]
pub struct Pinned {
    /// PostgreSQL's postmaster and the CPU list it had (its backends had the same).
    postmaster: Option<(u32, String)>,
    redis: Option<(u32, String)>,
    /// What was pinned, for the report.
    pub what: Vec<&'static str>,
}

impl Pinned {
    /// Pins the PostgreSQL server that `postgres` (an admin URL) reaches (its postmaster,
    /// whose affinity new backends inherit, and its current backends) and the Redis server
    /// that `redis` reaches to `core`, each only when its process is visible here and
    /// `taskset` may move it. What cannot be pinned is said and left as it is.
    pub async fn services(postgres: Option<&str>, redis: Option<&str>, core: usize) -> Pinned {
        let mut pinned = Pinned::default();
        if let Some(url) = postgres {
            match postmaster(url).await {
                Some(pid) => {
                    if let Some(before) = cpus(pid)
                        && pin(pid, &core.to_string())
                    {
                        // Backends that end meanwhile cannot be pinned, and need not be.
                        for backend in family(pid) {
                            pin(backend, &core.to_string());
                        }
                        pinned.postmaster = Some((pid, before));
                        pinned.what.push("PostgreSQL");
                    } else {
                        eprintln!("  PostgreSQL (pid {pid}) could not be pinned; left as it is");
                    }
                }
                None => eprintln!("  PostgreSQL's processes are not visible here; not pinned"),
            }
        }
        if let Some(url) = redis {
            match redis_pid(url).await.and_then(|pid| Some((pid, cpus(pid)?))) {
                Some((pid, before)) => {
                    if pin(pid, &core.to_string()) {
                        pinned.redis = Some((pid, before));
                        pinned.what.push("Redis");
                    } else {
                        eprintln!("  Redis (pid {pid}) could not be pinned; left as it is");
                    }
                }
                _ => eprintln!("  Redis's process is not visible here; not pinned"),
            }
        }
        pinned
    }
}

impl Drop for Pinned {
    /// Gives every process pinned its CPU list back (the backends started meanwhile too).
    fn drop(&mut self) {
        if let Some((pid, before)) = self.postmaster.take() {
            for p in family(pid) {
                pin(p, &before);
            }
        }
        if let Some((pid, before)) = self.redis.take() {
            pin(pid, &before);
        }
    }
}

/// The postmaster of the PostgreSQL server `url` reaches: the parent of the backend serving
/// this connection, if it is a process of this machine named `postgres`.
async fn postmaster(url: &str) -> Option<u32> {
    let db = Database::connect(url).await.ok()?;
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_backend_pid()",
        ))
        .await
        .ok()??;
    let backend: i32 = row.try_get_by_index(0).ok()?;
    // Read while the backend lives: once the connection closes, its process goes.
    let parent = parent(u32::try_from(backend).ok()?);
    let _ = db.close().await;
    let parent = parent?;
    let name = std::fs::read_to_string(format!("/proc/{parent}/comm")).ok()?;
    (name.trim() == "postgres").then_some(parent)
}

/// The pid Redis reports (`INFO server`), if it is a process of this machine.
async fn redis_pid(url: &str) -> Option<u32> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .ok()?;
    let pid: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))?
        .trim()
        .parse()
        .ok()?;
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    name.starts_with("redis").then_some(pid)
}

/// `pid`'s parent, from `/proc/<pid>/stat`.
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    crate::server::stat_fields(&stat)?.nth(1)?.parse().ok()
}

/// `pid` and its children.
fn family(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        out.extend(
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|p| parent(*p) == Some(pid)),
        );
    }
    out
}

/// The CPUs `pid` may run on (`Cpus_allowed_list`, e.g. `0-1`).
fn cpus(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|l| l.trim().to_owned())
}

/// Sets the CPU list of every thread of `pid`; whether `taskset` did.
fn pin(pid: u32, list: &str) -> bool {
    Command::new("taskset")
        .args(["-a", "-p", "-c", list, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_parent_and_a_cpu_list() {
        let me = std::process::id();
        assert_eq!(parent(me), Some(std::os::unix::process::parent_id()));
        assert!(cpus(me).is_some_and(|l| !l.is_empty()));
        assert!(family(std::os::unix::process::parent_id()).contains(&me));
    }
}
