//! Concurrent reads of one Redis key coalesced into one `GET` per batch, and never answered by
//! a `GET` sent before the read began (so a read that starts after a write sees it).
//!
//! Every cache hit asks Redis for a version counter; under load most of those asks are for
//! the same key at the same moment. A read joins the batch waiting for the *next* `GET` of its
//! key, and one task per key sends a `GET` for each batch as soon as the previous one
//! returned: at most one `GET` per key is in flight, and each read waits for at most that one
//! and its own. Joining a `GET` already on its way would be cheaper still but could return a
//! value older than a write that finished before the read began.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::redis_conn::LazyRedis;

/// What one `GET` returned: the value (`None` when the key is missing) or the error.
pub type Value = Result<Option<Vec<u8>>, String>;

/// The batches of every key being read.
pub struct CoalescedReads {
    conn: LazyRedis,
    keys: Arc<Mutex<HashMap<String, Key>>>,
    /// `GET`s sent so far.
    sent: Arc<AtomicU64>,
}

/// A key's state: whether its task is running, and the batch waiting for its next `GET`.
#[derive(Default)]
struct Key {
    running: bool,
    waiting: Option<watch::Sender<Option<Value>>>,
}

impl CoalescedReads {
    pub fn new(conn: LazyRedis) -> CoalescedReads {
        CoalescedReads {
            conn,
            keys: Arc::default(),
            sent: Arc::default(),
        }
    }

    /// How many `GET`s were sent for all the reads so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// `GET key`, as part of the next batch of reads of `key`.
    pub async fn get(&self, key: &str) -> Value {
        let mut answer = {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            let state = keys.entry(key.to_owned()).or_default();
            let answer = state
                .waiting
                .get_or_insert_with(|| watch::channel(None).0)
                .subscribe();
            if !state.running {
                state.running = true;
                let (conn, keys, sent) = (self.conn.clone(), self.keys.clone(), self.sent.clone());
                tokio::spawn(drive(conn, keys, sent, key.to_owned()));
            }
            answer
        };
        match answer.wait_for(Option::is_some).await {
            Ok(value) => value.clone().unwrap_or_else(|| Err("no answer".into())),
            Err(_) => Err("the read of a coalesced batch stopped".into()),
        }
    }
}

/// The task of one key: takes the waiting batch, sends its `GET`, answers it, and goes on
/// while another batch gathered meanwhile; forgets the key when none did.
async fn drive(
    conn: LazyRedis,
    keys: Arc<Mutex<HashMap<String, Key>>>,
    sent: Arc<AtomicU64>,
    key: String,
) {
    loop {
        let batch = {
            let mut keys = keys.lock().unwrap_or_else(|e| e.into_inner());
            match keys.get_mut(&key).and_then(|state| state.waiting.take()) {
                Some(batch) => batch,
                None => {
                    keys.remove(&key);
                    return;
                }
            }
        };
        let mut cmd = redis::cmd("GET");
        cmd.arg(&key);
        sent.fetch_add(1, Ordering::Relaxed);
        let value = conn.run::<Option<Vec<u8>>>(cmd).await;
        // Nobody waiting any more (their requests ended) is fine.
        let _ = batch.send(Some(value));
    }
}
