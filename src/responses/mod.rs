//! Whole answers cached under the normalised request: anonymous catalog reads, dropped all
//! at once by the catalog's version, and each member's reads of its own views, dropped by
//! that member's version. Versions move when the events that say what changed are
//! published ([`crate::events`]): no resolver and no HTTP handler knows about invalidation.
//!
//! The parts: which operations may be cached ([`scope`]), the key they are stored under
//! ([`key`]), where they are stored ([`store`]: Redis or in-process, one trait), and the
//! stored answer ([`Answer`]: the JSON, its gzip form and its tag). The HTTP side — which
//! form a client gets, and the headers — is [`crate::http::answers`].
//!
//! # What is cached
//! [`ResponseCache::lookup`] decides on the parsed document, before anything runs (the
//! document is parsed once, and what the cache may do with it remembered with it:
//! [`crate::graphql::transport::api`]). A request is served from the cache (and fills it) only when
//! - the viewer is anonymous: no `Authorization` header at all — a rejected token bypasses
//!   too — so no personalised field (push-hands' `estimatedEarning`, rebate rates, drafts and
//!   reviewer notes for insiders, `me`) is ever computed into a cached answer or served from
//!   one;
//! - the document parses and passes the limits, the selected operation is a query, and
//!   every root field (fragment spreads and inline fragments at the root expanded) is one of
//!   [`ROOT_FIELDS`]: `products`, `notes`, `note`, `product`, `categories`, `node`,
//!   `__typename`. Anything
//!   else — `me`, introspection, a root field added later — bypasses until it is listed
//!   there.
//!
//! [`ResponseCache::store`] keeps only answers without errors, without HTTP headers or
//! cache-control hints set by a resolver (a `private` hint opts a field out: [`storable`]),
//! and of at most 1 MiB. It keeps the exact bytes it sends, so a hit is byte for byte the
//! answer of the miss that filled it, with the same headers: the JSON, and its gzip form
//! for clients that accept gzip, compressed once when stored.
//!
//! # Members' own answers
//! [`ResponseCache::lookup_own`] serves a signed-in member's query whose root selects only
//! `me`, and below it only the fields [`scope`] lists: the member's own columns, its
//! balances (`earningsSummary`), its earnings (without `product`), `teamStats` and `team`
//! (profiles: id, name, roles, joining time). The key adds the member, the token's version
//! and the month (`thisMonth`, `newThisMonth` and `salesThisMonth` turn with it) to the
//! request. A hit is served before authentication touches the database: the token's
//! signature and expiry are checked, and the member's version vouches for the rest, since
//! a revocation (password change, freeze) bumps it too.
//!
//! # Invalidation
//! The cache is a [`Listener`]: [`crate::events::Events::publish`] hands it every batch
//! after the commit and before the write answers, and it bumps, in one round trip, the
//! catalog's version when the batch changes the catalog ([`Kind::CatalogChanged`],
//! [`Kind::PassportChanged`]) and the version of every member an event names. An answer is
//! stored under the version read *before* its request ran, so an answer computed while a
//! change commits is never served; the bump happens before the write answers, so the next
//! request sees the change — on every instance, since with Redis the versions are shared
//! (catalog events need not travel over the bus: every instance reads the one version).
//! The services publish, once their transaction has committed:
//!
//! | write | event |
//! |---|---|
//! | a brand created (`service::curation::create_brand`) | catalog |
//! | a category, merchant or brand owner changed (`service::catalog_admin`) | catalog row (over the bus: every instance's kept rows, then the catalog version again) |
//! | a product submitted or resubmitted | catalog, the product |
//! | a curation stage recorded, a score, publishing, unpublishing (GraphQL, the CLI, anything calling `service::curation`) | passport, the product (its passport goes first) |
//! | an order placed (stock taken: `service::orders::place_order_with`) | catalog, its products; from the cart, the buyer ([`Kind::OwnChanged`]) |
//! | a cart written (`service::cart`: add, update, remove) | the member ([`Kind::OwnChanged`]) |
//! | an order cancelled: beyond the unpaid cap, expired, or by its buyer (`service::fulfilment::cancel`; stock back) | catalog, its products |
//! | a refund (stock back) | catalog, the product |
//! | units sold (`salesCount`) written (`service::units_sold`, every interval and at shutdown) | catalog, the products moved |
//! | the demo seed (`App::build`, `pushhand seed`) | catalog |
//! | a note approved, taken down, hidden by reports, deleted while public, liked or unliked; a freeze that recounts likes (`service::notes`) | catalog ([`Kind::NoteChanged`](crate::events::Kind::NoteChanged)) |
//! | earnings booked, settled, reversed, adjusted; withdrawals requested, reviewed | the earner (live events) |
//! | an order completed (its earnings get `settleAfter`) | its earners ([`Kind::Changed`]) |
//! | a payment or refund (team sales) | the buyer's uplines within three levels |
//! | a binding made, rebound, lapsed or expired | the member and its old and new uplines |
//! | roles (partner approval, promotion by a membership purchase) | the member and its uplines |
//! | a freeze (revokes tokens), an unfreeze, a password change, a partner application | the member |
//!
//! Payments publish no catalog change: the units they sell reach `salesCount` when the
//! tally is written. Writes that no anonymous catalog answer shows publish none: shipping,
//! completion, settlement, members, bindings, withdrawals. A new write that changes
//! products, SKUs, brands, merchants, categories or passports must publish a catalog event
//! after its commit; a new field in the own list must be covered by the member events, and
//! a new write that changes what own answers show must name the members whose views it
//! changes. `catalog_answers_follow_every_write_they_show` compares cached catalog answers
//! with fresh ones after each catalog write, and
//! `own_answers_follow_every_change_they_show` every member's cached answer with a fresh
//! one after each member change. A new public root field must be added to
//! [`ROOT_FIELDS`] to be cached. The leaderboards (`leaderboard`, `Member.rank`) are
//! deliberately in neither list: every settlement moves them, and they are read from
//! counters in a statement or two ([`crate::service::leaderboards`]), so no event has to
//! reach them.
//!
//! A revocation bumps the member's version before it commits, too ([`Listener::revoking`]),
//! and must: a cached own answer is served on the token's signature alone, so were the bump
//! lost (the one after the commit is best-effort), a revoked token would read cached
//! answers until their TTL.
//!
//! The cache never fails a request: a failed lookup runs the request (and stores nothing);
//! a failed store or bump is logged. All count as `error` in `pushhand_response_cache_total`
//! (requests count once as `hit`, `miss` or `bypass`). After a failed bump, older answers
//! stay until their TTL (`PUSHHAND_RESPONSE_CACHE_TTL_SECONDS`, 30 by default). A process
//! that writes without serving (`pushhand seed`) reaches the versions through Redis
//! ([`crate::app::offline_events`]); without Redis, running instances keep their answers
//! until the TTL.
//!
//! [`Kind::CatalogChanged`]: crate::events::Kind::CatalogChanged
//! [`Kind::PassportChanged`]: crate::events::Kind::PassportChanged
//! [`Kind::Changed`]: crate::events::Kind::Changed
//! [`Kind::OwnChanged`]: crate::events::Kind::OwnChanged

mod answer;
pub mod key;
pub mod scope;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use uuid::Uuid;

pub use self::answer::Answer;
pub use self::scope::{Cacheability, Cacheable, ROOT_FIELDS};
use self::store::{Found, MemoryStore, RedisStore, Store, Version};
use crate::config::Secret;
use crate::events::{Event, Listener};
use crate::metrics::Metrics;
use crate::redis_conn::LazyRedis;
use crate::service::auth::Credentials;

pub struct ResponseCache {
    /// `None` when the cache is off.
    store: Option<Box<dyn Store>>,
    /// Digest of the JWT secret, hashed into every key.
    salt: u128,
    metrics: Arc<Metrics>,
}

/// What to do with a request.
pub enum Lookup {
    /// Run it as usual: not cacheable, the cache is off, or the cache failed.
    Skip,
    /// A stored answer: send it.
    Hit(Answer),
    /// Cacheable but not stored: run it, then hand the answer to [`ResponseCache::store`].
    Miss(Fill),
}

/// Where and under which version a missed answer goes.
pub struct Fill {
    key: u128,
    version: Version,
    at: u64,
}

/// Whether an answer may be stored: no errors, no HTTP headers and no cache-control hint
/// set by a resolver.
pub fn storable(response: &async_graphql::Response) -> bool {
    response.is_ok() && response.http_headers.is_empty() && response.cache_control.value().is_none()
}

impl ResponseCache {
    /// A cache that caches nothing (`--response-cache false`).
    pub fn off(metrics: Arc<Metrics>) -> ResponseCache {
        ResponseCache {
            store: None,
            salt: 0,
            metrics,
        }
    }

    /// The in-process cache of one instance; answers live `ttl`.
    pub fn in_process(metrics: Arc<Metrics>, ttl: Duration, secret: &Secret) -> ResponseCache {
        ResponseCache {
            store: Some(Box::new(MemoryStore::new(ttl))),
            salt: key::salt_of(secret),
            metrics,
        }
    }

    /// The Redis cache every instance on the database named `namespace`
    /// ([`crate::db::namespace`]) shares; answers live `ttl`.
    pub fn redis(
        conn: LazyRedis,
        namespace: &str,
        metrics: Arc<Metrics>,
        ttl: Duration,
        secret: &Secret,
    ) -> ResponseCache {
        ResponseCache {
            store: Some(Box::new(RedisStore::new(
                conn,
                namespace,
                ttl,
                metrics.clone(),
            ))),
            salt: key::salt_of(secret),
            metrics,
        }
    }

    /// Whether the cache is on.
    pub fn enabled(&self) -> bool {
        self.store.is_some()
    }

    /// Looks up an anonymous catalog answer (`credentials` must be none: a rejected token
    /// bypasses too) for `req`, whose operation the cache may treat as `cacheable`: one
    /// round trip with Redis, none when it is not cacheable.
    pub async fn lookup(
        &self,
        credentials: Credentials,
        req: &async_graphql::Request,
        cacheable: Cacheable,
    ) -> Lookup {
        let Some(store) = &self.store else {
            return Lookup::Skip;
        };
        if credentials != Credentials::None || !cacheable.catalog {
            self.count("bypass");
            return Lookup::Skip;
        }
        self.find(
            store.as_ref(),
            Version::Catalog,
            key::key(self.salt, req, None),
        )
        .await
    }

    /// Looks up a member's own answer: `req` asked with a token of `member` at
    /// `token_version` (well signed and unexpired:
    /// [`crate::service::auth::Tokens::credentials`]) in the month `period`, its operation
    /// one the cache may treat as `cacheable`. A hit needs no database: the member's version
    /// is bumped by every change of what such an answer shows, token revocations included,
    /// so an answer stored under the current version was computed for a token the database
    /// accepted then and still accepts. One round trip with Redis, none when the document
    /// is not cacheable.
    pub async fn lookup_own(
        &self,
        member: Uuid,
        token_version: i32,
        period: &str,
        req: &async_graphql::Request,
        cacheable: Cacheable,
    ) -> Lookup {
        let Some(store) = &self.store else {
            return Lookup::Skip;
        };
        if !cacheable.own {
            self.count("bypass");
            return Lookup::Skip;
        }
        let owner = key::Owner {
            member,
            token_version,
            period,
        };
        let key = key::key(self.salt, req, Some(&owner));
        self.find(store.as_ref(), Version::Member(member), key)
            .await
    }

    /// The answer under `key` if it carries `version`'s current value, else where to store
    /// the answer.
    async fn find(&self, store: &dyn Store, version: Version, key: Option<u128>) -> Lookup {
        let Some(key) = key else {
            self.count("bypass");
            return Lookup::Skip;
        };
        match store.find(version, key).await {
            Found::Hit(answer) => {
                self.count("hit");
                Lookup::Hit(answer)
            }
            Found::Miss(at) => {
                self.count("miss");
                Lookup::Miss(Fill { key, version, at })
            }
            Found::Unusable => Lookup::Skip,
        }
    }

    /// Stores a missed answer, `json` (of a [`storable`] response), unless it is too large
    /// to; returns the answer to send (with its gzip form when stored).
    pub async fn store(&self, fill: Fill, json: Bytes) -> Answer {
        if json.len() > store::MAX_ENTRY_BYTES {
            return Answer::uncompressed(json);
        }
        let answer = Answer::new(json);
        if let Some(store) = &self.store {
            store.put(fill.version, fill.at, fill.key, &answer).await;
        }
        answer
    }

    fn count(&self, outcome: &'static str) {
        self.metrics.count_response_cache(outcome);
    }
}

/// Hears every published batch: the catalog's version moves when it changes the catalog,
/// and the version of every member it names.
#[async_trait::async_trait]
impl Listener for ResponseCache {
    async fn published(&self, batch: &[Event]) {
        let Some(store) = &self.store else {
            return;
        };
        let mut members: Vec<Uuid> = batch
            .iter()
            .filter(|e| e.kind.names_member())
            .map(|e| e.member)
            .collect();
        members.sort_unstable();
        members.dedup();
        let mut versions: Vec<Version> = members.into_iter().map(Version::Member).collect();
        if batch.iter().any(|e| e.kind.changes_catalog()) {
            versions.push(Version::Catalog);
        }
        // A failure is logged and counted by the store; the old answers live out their TTL.
        let _ = store.bump(&versions).await;
    }

    async fn revoking(&self, member: Uuid) -> Result<(), String> {
        match &self.store {
            Some(store) => store.bump(&[Version::Member(member)]).await,
            None => Ok(()),
        }
    }
}
