//! Automatic persisted queries, Apollo's protocol (what `PersistedQueryLink` speaks).
//!
//! A client sends `extensions.persistedQuery = { version: 1, sha256Hash }`:
//!
//! - without `query`: when the hash is known its document runs; otherwise the answer is the
//!   error `PersistedQueryNotFound` (`extensions.code = PERSISTED_QUERY_NOT_FOUND`, status
//!   200 and `Cache-Control: private, no-cache, must-revalidate`, so that no CDN keeps it),
//!   and the client sends the request again with the text;
//! - with `query`: the hash must be the SHA-256 of the text (hex), else
//!   `PERSISTED_QUERY_HASH_MISMATCH` (400) and nothing is stored; the document is stored
//!   under its hash and runs.
//!
//! A hash alone makes a short GET URL (`?extensions={"persistedQuery":…}`), so CDNs can cache
//! anonymous catalog reads. Requests are resolved here, in the HTTP layer, before the front
//! door and the response cache see them (both then read the stored text); async-graphql's
//! own `ApolloPersistedQueries` extension is not used, as no extension is (see
//! [`crate::graphql::transport::api`]).
//!
//! The store: with Redis, `pushhand:apq:v1:<hash>` shared by every instance, living
//! `PUSHHAND_PERSISTED_QUERIES_TTL_SECONDS` (a week) after its last read (`GETEX` refreshes
//! it), with an in-process copy of hot documents kept an hour at most (a hit on it costs no
//! round trip); without Redis, the in-process store alone, idle documents dropped after the
//! TTL. The in-process store is bounded in bytes (`PUSHHAND_PERSISTED_QUERIES_MAX_BYTES`).
//! A document is content-addressed, so no copy is ever stale. Redis failures are misses (the
//! client then sends the text). A stored document is never longer than a request body.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Value;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::redis_conn::LazyRedis;

/// The `extensions` key of the protocol.
const EXTENSION: &str = "persistedQuery";
/// Prefix of the Redis keys (`v1`: the protocol's version).
const KEY_PREFIX: &str = "pushhand:apq:v1:";
/// Longest life of the in-process copy of a document stored in Redis: a hit on Redis
/// refreshes its TTL there, so a document in use is read from Redis at least this often.
const LOCAL_COPY_TTL: Duration = Duration::from_secs(3_600);
/// Bound on each Redis call.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// Why a persisted query request is not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `PUSHHAND_PERSISTED_QUERIES=false`: the client stops hashing and sends texts.
    NotSupported,
    /// The hash is not known: the client sends the text with it.
    NotFound,
    /// The hash is not the SHA-256 of the text.
    HashMismatch,
    /// Not the protocol's shape (version, hash), said how.
    Invalid(String),
}

impl Refusal {
    /// The error's `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
            Refusal::NotFound => "PERSISTED_QUERY_NOT_FOUND",
            Refusal::HashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
            Refusal::Invalid(_) => "PERSISTED_QUERY_INVALID",
        }
    }

    /// The error's message: Apollo's clients also match the first two by message.
    pub fn message(&self) -> String {
        match self {
            Refusal::NotSupported => "PersistedQueryNotSupported".into(),
            Refusal::NotFound => "PersistedQueryNotFound".into(),
            Refusal::HashMismatch => {
                "the persisted query's sha256Hash is not the SHA-256 of its query".into()
            }
            Refusal::Invalid(why) => why.clone(),
        }
    }

    /// The `errors` list of the answer (also the payload of a WebSocket `error`).
    pub fn errors(&self) -> serde_json::Value {
        serde_json::json!([{ "message": self.message(), "extensions": { "code": self.code() } }])
    }

    /// The HTTP answer. A miss is a normal step of the protocol, answered 200 as Apollo
    /// Server does (older Apollo clients give up persisted queries on a 400); the others are
    /// the client's mistakes (400). No answer may be cached: the next one differs.
    pub fn into_response(self) -> Response {
        let status = match self {
            Refusal::NotSupported | Refusal::NotFound => StatusCode::OK,
            Refusal::HashMismatch | Refusal::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        let body = serde_json::json!({ "errors": self.errors() });
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache, must-revalidate"),
        );
        resp
    }
}

/// The hash → document store, and the protocol's decoding.
/// Cheap to clone: clones share the store.
#[derive(Clone)]
pub struct PersistedQueries {
    enabled: bool,
    /// The whole store without Redis; the copy of hot documents with it.
    local: moka::future::Cache<String, Arc<str>>,
    redis: Option<LazyRedis>,
    ttl: Duration,
}

impl PersistedQueries {
    /// The store `config` describes, in `redis` when given.
    pub fn new(config: &Config, redis: Option<redis::Client>) -> PersistedQueries {
        let ttl = Duration::from_secs(config.persisted_queries_ttl_seconds.max(1));
        let redis = redis.map(|client| LazyRedis::new(client, REDIS_TIMEOUT));
        let builder = moka::future::Cache::builder()
            .max_capacity(config.persisted_queries_max_bytes)
            .weigher(|hash: &String, doc: &Arc<str>| {
                u32::try_from(hash.len() + doc.len()).unwrap_or(u32::MAX)
            });
        let local = match redis {
            Some(_) => builder.time_to_live(ttl.min(LOCAL_COPY_TTL)).build(),
            None => builder.time_to_idle(ttl).build(),
        };
        PersistedQueries {
            enabled: config.persisted_queries,
            local,
            redis,
            ttl,
        }
    }

    /// Makes `req` a plain request: when it carries `extensions.persistedQuery`, its `query`
    /// becomes the stored document (hash alone) or is checked against the hash and stored
    /// (hash and text), and the extension is removed. A request without the extension is
    /// left as it is.
    pub async fn resolve(&self, req: &mut async_graphql::Request) -> Result<(), Refusal> {
        let Some(ext) = req.extensions.0.remove(EXTENSION) else {
            return Ok(());
        };
        if !self.enabled {
            return Err(Refusal::NotSupported);
        }
        let hash = requested_hash(&ext)?;
        if req.query.is_empty() {
            req.query = self.get(&hash).await.ok_or(Refusal::NotFound)?.to_string();
            return Ok(());
        }
        if sha256_hex(&req.query) != hash {
            return Err(Refusal::HashMismatch);
        }
        self.put(hash, &req.query).await;
        Ok(())
    }

    /// The document stored under `hash`: the local copy, else Redis (refreshing its TTL).
    async fn get(&self, hash: &str) -> Option<Arc<str>> {
        if let Some(doc) = self.local.get(hash).await {
            return Some(doc);
        }
        let redis = self.redis.as_ref()?;
        let mut cmd = redis::cmd("GETEX");
        cmd.arg(key(hash)).arg("EX").arg(self.ttl.as_secs());
        match redis.run::<Option<String>>(cmd).await {
            Ok(Some(doc)) if sha256_hex(&doc) == hash => {
                let doc: Arc<str> = Arc::from(doc);
                self.local.insert(hash.to_owned(), doc.clone()).await;
                Some(doc)
            }
            Ok(Some(_)) => {
                tracing::warn!(hash, "a persisted query in Redis does not match its hash");
                None
            }
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "persisted query read failed; answered as a miss");
                None
            }
        }
    }

    /// Stores `doc` under `hash` (already checked); a document stored here already is not
    /// written again.
    async fn put(&self, hash: String, doc: &str) {
        if self.local.contains_key(&hash) {
            return;
        }
        if let Some(redis) = &self.redis {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key(&hash))
                .arg(doc)
                .arg("EX")
                .arg(self.ttl.as_secs());
            if let Err(error) = redis.run::<()>(cmd).await {
                tracing::warn!(%error, "persisted query not stored in Redis");
            }
        }
        self.local.insert(hash, Arc::from(doc)).await;
    }
}

fn key(hash: &str) -> String {
    format!("{KEY_PREFIX}{hash}")
}

/// The lower-case hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// The hash of a `persistedQuery` extension (lower case), after checking its version.
fn requested_hash(ext: &Value) -> Result<String, Refusal> {
    let Value::Object(fields) = ext else {
        return Err(Refusal::Invalid(
            "extensions.persistedQuery must be an object".into(),
        ));
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        _ => {
            return Err(Refusal::Invalid(
                "unsupported persisted query version (only version 1 is)".into(),
            ));
        }
    }
    match fields.get("sha256Hash") {
        Some(Value::String(h)) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(h.to_ascii_lowercase())
        }
        _ => Err(Refusal::Invalid(
            "extensions.persistedQuery.sha256Hash must be 64 hex digits".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(version: i64, hash: &str) -> Value {
        Value::from_json(serde_json::json!({ "version": version, "sha256Hash": hash }))
            .expect("a JSON value")
    }

    #[test]
    fn the_hash_is_the_hex_sha256_of_the_text() {
        // `printf '{ __typename }' | sha256sum`
        assert_eq!(
            sha256_hex("{ __typename }"),
            "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b"
        );
    }

    #[test]
    fn only_version_1_with_a_hex_hash_is_accepted() {
        let hash = sha256_hex("{ __typename }");
        assert_eq!(
            requested_hash(&ext(1, &hash.to_uppercase())),
            Ok(hash.clone())
        );
        assert!(matches!(
            requested_hash(&ext(2, &hash)),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            requested_hash(&ext(1, "abc")),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            requested_hash(&Value::from("x")),
            Err(Refusal::Invalid(_))
        ));
    }
}
