//! The Redis bus: each batch is one `PUBLISH` of a JSON array on one channel; every
//! instance (this one included) runs a subscriber task that hands what arrives to its hub.
//!
//! The subscriber reconnects by itself with backoff (Redis restarted, connection killed),
//! pings every few seconds so a silently dead connection is noticed, and after every
//! (re)subscription tells this instance's subscribers to resync: pub/sub is at most once and
//! anything published while we were away is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;

use super::{Bus, Event, Hub};
use crate::metrics::Metrics;
use crate::redis_conn::LazyRedis;

/// The one channel every instance publishes and listens on (versioned with the format).
pub const CHANNEL: &str = "pushhand:events:v1";
/// How often the subscriber checks its connection.
const PING_EVERY: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct RedisBus {
    publish: LazyRedis,
    connected: Arc<AtomicBool>,
    listener: tokio::task::JoinHandle<()>,
}

impl RedisBus {
    pub fn start(
        client: redis::Client,
        publish: LazyRedis,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
    ) -> RedisBus {
        let connected = Arc::new(AtomicBool::new(false));
        let listener = tokio::spawn(listen(client, hub, connected.clone(), metrics));
        RedisBus {
            publish,
            connected,
            listener,
        }
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

#[async_trait::async_trait]
impl Bus for RedisBus {
    async fn publish(&self, batch: &[Event]) -> Result<(), String> {
        let payload = serde_json::to_string(batch).map_err(|e| e.to_string())?;
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(CHANNEL).arg(payload);
        self.publish.run::<i64>(cmd).await.map(|_| ())
    }

    fn backend(&self) -> &'static str {
        "redis"
    }

    fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

/// The subscriber loop: connect, subscribe, resync, relay; on any failure start over.
async fn listen(
    client: redis::Client,
    hub: Arc<Hub>,
    connected: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match subscribe(&client).await {
            Ok(pubsub) => {
                backoff = Duration::from_millis(100);
                connected.store(true, Ordering::Relaxed);
                tracing::info!(channel = CHANNEL, "event subscriber connected");
                hub.resync_all();
                metrics.event_resyncs.inc();
                relay(pubsub, &hub, &metrics).await;
                connected.store(false, Ordering::Relaxed);
                tracing::warn!("event subscriber lost its Redis connection; reconnecting");
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "event subscriber cannot reach Redis");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe(client: &redis::Client) -> Result<redis::aio::PubSub, String> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    tokio::time::timeout(PING_TIMEOUT, connect)
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())
}

/// Relays messages to the hub until the connection fails or stops answering pings.
async fn relay(pubsub: redis::aio::PubSub, hub: &Hub, metrics: &Metrics) {
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return };
                let payload: Vec<u8> = match msg.get_payload() {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable event message");
                        continue;
                    }
                };
                match serde_json::from_slice::<Vec<Event>>(&payload) {
                    Ok(batch) => {
                        metrics.count_events("redis", "received", batch.len());
                        hub.deliver(&batch);
                    }
                    Err(e) => tracing::warn!(error = %e, "malformed event batch ignored"),
                }
            }
            _ = ping.tick() => {
                let alive = tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await;
                if !matches!(alive, Ok(Ok(_))) {
                    return;
                }
            }
        }
    }
}
