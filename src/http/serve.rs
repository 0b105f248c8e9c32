//! The accept loop: hyper's HTTP/1 connections with the limits `axum::serve` lacks.
//!
//! - **Header-read timeout** (`PUSHHAND_HEADER_READ_TIMEOUT_MS`): hyper's own, which starts
//!   as soon as a connection waits for a request — so a connection that sends nothing, one
//!   that trickles its headers, and a kept-alive connection left idle are all closed after it.
//! - **Connection cap** (`PUSHHAND_MAX_CONNECTIONS`): a semaphore permit per connection,
//!   taken before `accept`: beyond the cap new connections wait in the kernel's listen
//!   backlog (costing the process no file descriptor) until one closes. A WebSocket keeps
//!   its connection's permit ([`ConnectionSlot`]) for as long as it is open.
//! - **Graceful shutdown**: stop accepting, let every connection finish its request in
//!   flight, then return (WebSockets are closed by their own tasks, see `App::run`).
//!
//! The body-read and whole-request timeouts are layers of the router (see [`super::router`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// The limits the accept loop enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// A connection's place under the cap, in every request's extensions: a WebSocket handler
/// moves a clone into its task, so the place is freed when both the HTTP connection and the
/// WebSocket are gone.
#[derive(Clone)]
pub struct ConnectionSlot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// Serves `router` on `listener` until `shutdown` resolves, then waits for the connections'
/// requests in flight to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    warn_if_files_short(limits.max_connections);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let connections = TaskTracker::new();
    let stop = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let slot = ConnectionSlot(Arc::new(permit));
        let router = router.clone();
        let stop = stop.clone();
        let builder = builder.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(slot.clone());
                let mut router = router.clone();
                async move { router.call(req).await }
            });
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    // A connection error (a timeout, a reset) only ends this connection.
                    _ = conn.as_mut() => break,
                    () = stop.cancelled(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    drop(listener);
    stop.cancel();
    connections.close();
    connections.wait().await;
}

/// After a failed `accept`: a connection that died in the backlog is nothing; anything else
/// (out of file descriptors) gets a pause instead of a busy loop, as `axum::serve` does.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; pausing");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Warns when the process may open fewer files than the connection cap needs (each
/// connection is a descriptor; the database pool, Redis and logs need some too): the cap
/// then cannot prevent `accept: Too many open files`.
fn warn_if_files_short(max_connections: usize) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(soft) = soft
        && soft < max_connections.saturating_add(64)
    {
        tracing::warn!(
            open_files = soft,
            max_connections,
            "the open-files limit (ulimit -n) is too low for PUSHHAND_MAX_CONNECTIONS: raise it or lower the cap"
        );
    }
}
