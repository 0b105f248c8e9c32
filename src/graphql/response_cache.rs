//! Whole answers cached under the normalised request: anonymous catalog reads, dropped all at once by a catalog version that catalog writes bump after their commit, and each member's reads of its own views, dropped by that member's version, which every change they show bumps.
//!
//! # What is cached
//! [`ResponseCache::lookup`] decides on the parsed document, before anything runs. A request
//! is served from the cache (and fills it) only when
//! - the viewer is anonymous: no `Authorization` header at all — a rejected token bypasses
//!   too — so no personalised field (push-hands' `estimatedEarning`, rebate rates, drafts and
//!   reviewer notes for insiders, `me`) is ever computed into a cached answer or served from
//!   one;
//! - the document parses, the selected operation is a query, and every root field (fragment
//!   spreads and inline fragments at the root expanded) is one of [`ROOT_FIELDS`]: `products`,
//!   `product`, `categories`, `node`, `__typename`. Anything else — `me`, introspection, a root
//!   field added later — bypasses until it is listed there.
//!
//! [`ResponseCache::store`] keeps only answers without errors, without HTTP headers or
//! cache-control hints set by a resolver (a `private` hint opts a field out), and of at most
//! 1 MiB. It keeps the exact bytes it sends, so a hit is byte for byte the answer of the miss
//! that filled it, with the same headers: the JSON, and its gzip form for clients that accept
//! gzip, compressed once when stored ([`crate::graphql::cached_answer`]).
//!
//! # Members' own answers
//! [`ResponseCache::lookup_own`] serves a signed-in member's query whose root selects only
//! `me`, and below it only the fields [`own_field`] lists: the member's own columns, its
//! balances (`earningsSummary`), its earnings (without `product`), `teamStats` and `team`
//! (profiles: id, name, roles, joining time). The key adds the member, the token's version
//! and the month (`thisMonth`, `newThisMonth` and `salesThisMonth` turn with it) to the
//! request. A hit is served before authentication touches the database: the token's
//! signature and expiry are checked, and the member's version vouches for the rest, since
//! a revocation (password change, freeze) bumps it too.
//!
//! The member's version is bumped for every member an event names
//! ([`crate::events::Events::publish`] tells the cache before the events go out, after the
//! commit), so the writes that change own views publish an event for each member whose
//! views they change:
//!
//! | change | members named |
//! |---|---|
//! | earnings booked, settled, reversed, adjusted; withdrawals requested, reviewed | the earner (live events) |
//! | an order completed (its earnings get `settleAfter`) | its earners ([`Kind::Changed`]) |
//! | a payment or refund (team sales) | the buyer's uplines within three levels |
//! | a binding made, rebound, lapsed or expired | the member and its old and new uplines |
//! | roles (partner approval, promotion by a membership purchase) | the member and its uplines |
//! | a freeze (revokes tokens), an unfreeze, a password change, a partner application | the member |
//!
//! A new field in [`own_field`] must be covered by these, and a new write that changes
//! what they show must publish for the members whose views it changes.
//! `own_answers_follow_every_change_they_show` compares every member's cached answer with a
//! fresh one after each of these writes.
//!
//! [`Kind::Changed`]: crate::events::Kind::Changed
//!
//! # Key
//! `resp:v2:<namespace>:<32 hex digits>`: two SipHash-1-3 runs with different seeds (std's
//! `DefaultHasher`), salted with a digest of the JWT secret so that nobody without it can craft
//! two documents that collide, over
//! - the query with every run of ignored tokens outside string literals (whitespace, commas,
//!   comments) replaced by one space, and trimmed;
//! - the operation name;
//! - the variables as canonical JSON (object keys sorted at every level).
//!
//! # Invalidation
//! One catalog version. Each entry carries the version it was computed at and is served only
//! while that version is current, so one bump drops every answer. The version is read *before*
//! the request runs: an answer computed while a change commits is stored under the old version
//! and never served. Bumps happen after the commit and before the mutation answers
//! ([`AppState::catalog_changed`], [`AppState::product_changed`]), so the next request sees the
//! change — on every instance, when they share Redis. The writes that bump:
//!
//! | write | bumps in |
//! |---|---|
//! | `createBrand`, `submitProduct`, `resubmitProduct` | `graphql::curation` (whatever the outcome) |
//! | `recordCurationStage`, `scoreProduct`, `publishProduct`, `unpublishProduct` | `graphql::curation`, with the passport invalidation (whatever the outcome: some write before a read that can still fail) |
//! | `placeOrder` (reserves stock) | `graphql::orders`, on success (nothing fails after its commit, and `OUT_OF_STOCK` refusals must not flush the cache) |
//! | `refundOrderLine` (returns stock) | `graphql::orders`, on success (nothing fails after its commit) |
//! | units sold (`salesCount`) tallied by payments and refunds, written | `AppState::write_units_sold`, every interval and at shutdown, when any product moved |
//! | unpaid orders expiring (release stock) | `app::periodic_jobs`, unless nothing expired |
//! | the demo seed | `App::build`; `pushhand seed` (Redis only) |
//!
//! Writes that no anonymous catalog answer shows do not bump: shipping, completion,
//! settlement, members, bindings, withdrawals. A new write that changes products, SKUs,
//! brands, merchants, categories or passports must call [`AppState::catalog_changed`] after
//! its commit, and a new public root field must be added to [`ROOT_FIELDS`] to be cached.
//!
//! # Backends
//! - Redis, when `REDIS_URL` is set, shared by every instance. The version is
//!   `pushhand:catalog:version:<namespace>` (INCR; it lives a week from its creation); an
//!   entry is `"<version>\n<j or g><body>"` (JSON, or gzip when there is a gzip form) with
//!   the TTL; a lookup without a copy (below) is one round trip, `MGET version entry`. The
//!   namespace names the database (a random number the first instance keeps in its
//!   `write_locks` table, see [`database_namespace`]), so deployments and test databases that
//!   share one Redis never see each other's answers. Each instance also keeps a copy of the
//!   entries it read or wrote, with their version (bounded like the in-process cache, and as
//!   long-lived): a hit on a copy asks Redis for the version alone (`GET`), and concurrent
//!   asks for one version share a `GET` without ever being answered by one sent before they
//!   began ([`crate::redis_reads`]), so a change is still seen by the next request on every
//!   instance. A copy whose version is no longer current is a miss of the copy, and the
//!   lookup goes on to `MGET`. A missing
//!   version key (new, expired, flushed or evicted) is recreated (`SET NX`) at the current
//!   time in microseconds — never at a value an old entry could carry — by the first lookup
//!   or bump that finds it missing; only the lookup that created it stores its answer under
//!   it.
//!   A member's version is `pushhand:member:version:<namespace>:<id>`, kept the same way.
//! - In-process otherwise: an `AtomicU64` version and a moka cache bounded at 64 MiB of
//!   bodies; members' versions in a moka map (a forgotten one restarts at a number never
//!   used before) and their answers in another 64 MiB. Not shared: instances without Redis see each other's changes only after the TTL
//!   (run several instances with Redis).
//!
//! The cache never fails a request: a failed lookup runs the request (and stores nothing); a
//! failed store or bump is logged. All count as `error` in `pushhand_response_cache_total`
//! (requests count once as `hit`, `miss` or `bypass`). After a failed bump, older answers stay
//! until their TTL (`PUSHHAND_RESPONSE_CACHE_TTL_SECONDS`, 30 by default).
//!
//! [`AppState::catalog_changed`]: crate::state::AppState::catalog_changed
//! [`AppState::product_changed`]: crate::state::AppState::product_changed

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use axum::body::Bytes;

use crate::config::Secret;
use crate::graphql::cached_answer::Answer;
use crate::metrics::Metrics;
use crate::redis_conn::LazyRedis;
use crate::redis_reads::CoalescedReads;
use crate::service::auth::{Credentials, Viewer};
use uuid::Uuid;

/// The root fields an anonymous query may select and still be cached.
pub const ROOT_FIELDS: [&str; 5] = ["products", "product", "categories", "node", "__typename"];

/// Members whose version the in-process cache keeps (a forgotten one starts over at a new
/// number, which only costs its answers).
const MEMBER_VERSIONS: u64 = 1_000_000;

/// Larger answers are sent but not stored.
const MAX_ENTRY_BYTES: usize = 1 << 20;

/// Bound on the in-process cache, in bytes of bodies.
const MEMORY_BYTES: u64 = 64 << 20;

/// Lifetime of a Redis version counter from its creation (INCR keeps it): it is then
/// recreated like an evicted one, so counters of databases that are gone (test databases)
/// do not pile up in a shared Redis.
const VERSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Seeds of the two hash runs that make a 128-bit key.
const SEEDS: [u64; 2] = [0x7075_7368_6861_6e64, 0x7265_7370_6f6e_7365];

pub struct ResponseCache {
    backend: Backend,
    ttl: Duration,
    /// Digest of the JWT secret, hashed into every key.
    salt: u128,
    metrics: Arc<Metrics>,
    /// Whether a document (normal form and operation name) is cacheable, so that a hit does
    /// not parse it again: parsing is most of what a hit would cost.
    documents: std::sync::Mutex<std::collections::HashMap<u64, bool>>,
}

/// Documents whose cacheability is remembered; the memo starts over beyond this.
const DOCUMENTS_REMEMBERED: usize = 10_000;

// One per app: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Off,
    Memory {
        version: AtomicU64,
        entries: Bodies,
        /// Each member's version; a (re)created one takes the next number of `next`, so it
        /// never repeats a version an older answer carries.
        members: moka::future::Cache<Uuid, u64>,
        next: AtomicU64,
        /// Members' own answers (apart from `entries`, which every catalog change empties).
        own: Bodies,
    },
    Redis {
        conn: LazyRedis,
        version_key: String,
        /// `pushhand:member:version:<namespace>:`, followed by the member's id.
        member_prefix: String,
        /// `resp:v2:<namespace>:`
        entry_prefix: String,
        /// This instance's copies of the answers it read from or wrote to Redis, with the
        /// version they carry there: a hit on a copy asks Redis for the version alone.
        near: Bodies,
        /// Version reads of hits on `near`, coalesced.
        versions: CoalescedReads,
    },
}

/// Which answers a document may be cached as.
#[derive(Clone, Copy, Hash)]
enum Scope {
    /// Anonymous catalog reads, under the catalog version.
    Catalog,
    /// A member's own views (`me` within [`own_field`]), under the member's version.
    Own,
}

/// Whose answer a key is: the member, its token version and the month.
struct Owner<'a> {
    member: Uuid,
    token_version: i32,
    period: &'a str,
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
    version: u64,
    /// The member whose own answer this is; `None` for a catalog answer.
    member: Option<Uuid>,
}

impl ResponseCache {
    /// A cache that caches nothing (`--response-cache false`).
    pub fn off(metrics: Arc<Metrics>) -> ResponseCache {
        ResponseCache {
            backend: Backend::Off,
            ttl: Duration::ZERO,
            salt: 0,
            metrics,
            documents: Default::default(),
        }
    }

    /// The in-process cache of one instance.
    pub fn in_process(metrics: Arc<Metrics>, ttl: Duration, secret: &Secret) -> ResponseCache {
        let bodies = || bodies(ttl);
        ResponseCache {
            backend: Backend::Memory {
                version: AtomicU64::new(0),
                entries: bodies(),
                members: moka::future::Cache::new(MEMBER_VERSIONS),
                next: AtomicU64::new(0),
                own: bodies(),
            },
            ttl,
            salt: salt_of(secret),
            metrics,
            documents: Default::default(),
        }
    }

    /// The Redis cache every instance on the database named `namespace` shares.
    pub fn redis(
        conn: LazyRedis,
        namespace: &str,
        metrics: Arc<Metrics>,
        ttl: Duration,
        secret: &Secret,
    ) -> ResponseCache {
        ResponseCache {
            backend: Backend::Redis {
                conn: conn.clone(),
                version_key: format!("pushhand:catalog:version:{namespace}"),
                member_prefix: format!("pushhand:member:version:{namespace}:"),
                entry_prefix: format!("resp:v2:{namespace}:"),
                near: bodies(ttl),
                versions: CoalescedReads::new(conn),
            },
            ttl,
            salt: salt_of(secret),
            metrics,
            documents: Default::default(),
        }
    }

    /// Whether the cache is on.
    pub fn enabled(&self) -> bool {
        !matches!(self.backend, Backend::Off)
    }

    /// Looks up an anonymous catalog answer (`credentials` must be none: a rejected token
    /// bypasses too): one round trip with Redis, none when it is not cacheable.
    pub async fn lookup(&self, credentials: Credentials, req: &async_graphql::Request) -> Lookup {
        if !self.enabled() {
            return Lookup::Skip;
        }
        if credentials != Credentials::None {
            self.count("bypass");
            return Lookup::Skip;
        }
        self.lookup_in(req, None).await
    }

    /// Looks up a member's own answer: `req` asked with a token of `member` at
    /// `token_version` (well signed and unexpired: [`crate::service::auth::Tokens::credentials`]) in
    /// the month `period`. A hit needs no database: the member's version is bumped by every
    /// change of what such an answer shows, token revocations included, so an answer stored
    /// under the current version was computed for a token the database accepted then and
    /// still accepts. One round trip with Redis, none when the document is not cacheable.
    pub async fn lookup_own(
        &self,
        member: Uuid,
        token_version: i32,
        period: &str,
        req: &async_graphql::Request,
    ) -> Lookup {
        if !self.enabled() {
            return Lookup::Skip;
        }
        let owner = Owner {
            member,
            token_version,
            period,
        };
        self.lookup_in(req, Some(owner)).await
    }

    /// Looks `req` up as a catalog answer, or as `owner`'s own answer.
    async fn lookup_in(&self, req: &async_graphql::Request, owner: Option<Owner<'_>>) -> Lookup {
        let query = normalise(&req.query);
        let scope = match owner {
            None => Scope::Catalog,
            Some(_) => Scope::Own,
        };
        let Some(key) = self
            .remembered(scope, req, &query)
            .then(|| self.key(&query, req, owner.as_ref()))
            .flatten()
        else {
            self.count("bypass");
            return Lookup::Skip;
        };
        self.find(key, owner.map(|o| o.member)).await
    }

    /// The entry under `key` if it carries the current version — the catalog's, or
    /// `member`'s for an own answer — else where to store the answer.
    async fn find(&self, key: u128, member: Option<Uuid>) -> Lookup {
        let found = match &self.backend {
            Backend::Off => return Lookup::Skip,
            Backend::Memory {
                version,
                entries,
                members,
                next,
                own,
            } => {
                let (current, bodies) = match member {
                    None => (version.load(Ordering::SeqCst), entries),
                    Some(m) => {
                        let start = async { next.fetch_add(1, Ordering::SeqCst) + 1 };
                        (members.get_with(m, start).await, own)
                    }
                };
                match bodies.get(&key).await {
                    Some((v, answer)) if v == current => Lookup::Hit(answer),
                    _ => Lookup::Miss(Fill {
                        key,
                        version: current,
                        member,
                    }),
                }
            }
            Backend::Redis {
                conn,
                version_key,
                member_prefix,
                entry_prefix,
                near,
                versions,
            } => {
                let version_key = match member {
                    None => std::borrow::Cow::Borrowed(version_key),
                    Some(m) => std::borrow::Cow::Owned(format!("{member_prefix}{m}")),
                };
                if let Some((version, answer)) = near.get(&key).await
                    && self.redis_version(versions, &version_key).await == Some(version)
                {
                    self.count("hit");
                    return Lookup::Hit(answer);
                }
                let entry = entry_key(entry_prefix, key);
                match self
                    .redis_lookup(conn, near, &version_key, entry, key, member)
                    .await
                {
                    Some(found) => found,
                    None => return Lookup::Skip,
                }
            }
        };
        self.count(match found {
            Lookup::Hit(_) => "hit",
            _ => "miss",
        });
        found
    }

    /// The version under `version_key` in Redis: `None` if it is missing, unreadable or Redis
    /// failed (counted; the caller then goes on to [`ResponseCache::redis_lookup`], which
    /// deals with each).
    async fn redis_version(&self, versions: &CoalescedReads, version_key: &str) -> Option<u64> {
        match versions.get(version_key).await {
            Ok(v) => parse_version(&v?),
            Err(e) => {
                tracing::warn!(error = %e, "response cache version read failed");
                self.count("error");
                None
            }
        }
    }

    /// `MGET version entry`: the entry if it carries the current version, else where to
    /// store the answer. A missing version is started (`SET NX`) at the time in microseconds;
    /// only the lookup that started it may store under it. `None`: run the request without
    /// the cache (an error, counted, or a version someone else just started). A hit is also
    /// kept in `near`, this instance's copies.
    async fn redis_lookup(
        &self,
        conn: &LazyRedis,
        near: &Bodies,
        version_key: &str,
        entry_key: String,
        key: u128,
        member: Option<Uuid>,
    ) -> Option<Lookup> {
        let mut cmd = redis::cmd("MGET");
        cmd.arg(version_key).arg(entry_key);
        let miss = |version| {
            Lookup::Miss(Fill {
                key,
                version,
                member,
            })
        };
        match conn.run::<(Option<Vec<u8>>, Option<Vec<u8>>)>(cmd).await {
            Err(e) => {
                tracing::warn!(error = %e, "response cache read failed; running the request");
                self.count("error");
                None
            }
            Ok((None, _)) => {
                let start = fresh_version();
                let mut init = redis::cmd("SET");
                init.arg(version_key)
                    .arg(start)
                    .arg("NX")
                    .arg("EX")
                    .arg(VERSION_TTL.as_secs());
                match conn.run::<Option<String>>(init).await {
                    Ok(Some(_)) => Some(miss(start)),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "response cache version start failed");
                        self.count("error");
                        None
                    }
                }
            }
            Ok((Some(v), entry)) => match parse_version(&v) {
                None => {
                    tracing::warn!("response cache version is not a number");
                    self.count("error");
                    None
                }
                Some(current) => Some(match entry.and_then(|e| answer_at(e, current)) {
                    Some(answer) => {
                        near.insert(key, (current, answer.clone())).await;
                        Lookup::Hit(answer)
                    }
                    None => miss(current),
                }),
            },
        }
    }

    /// Stores a missed answer if it may be stored. Returns the answer to send when it
    /// serialised it (stored or too large to store), `None` when the answer is not storable
    /// (errors, headers, cache hints): send it as usual then.
    pub async fn store(&self, fill: Fill, response: &async_graphql::Response) -> Option<Answer> {
        if !response.is_ok()
            || !response.http_headers.is_empty()
            || response.cache_control.value().is_some()
        {
            return None;
        }
        let json = Bytes::from(super::json::response_body(response));
        if json.len() > MAX_ENTRY_BYTES {
            return Some(Answer::uncompressed(json));
        }
        let answer = Answer::new(json);
        match &self.backend {
            Backend::Off => {}
            Backend::Memory {
                version,
                entries,
                members,
                own,
                ..
            } => {
                // A bump while the request ran made this answer stale: skip it.
                match fill.member {
                    None if version.load(Ordering::SeqCst) == fill.version => {
                        entries
                            .insert(fill.key, (fill.version, answer.clone()))
                            .await;
                    }
                    Some(m) if members.get(&m).await == Some(fill.version) => {
                        own.insert(fill.key, (fill.version, answer.clone())).await;
                    }
                    _ => {}
                }
            }
            Backend::Redis {
                conn,
                entry_prefix,
                near,
                ..
            } => {
                near.insert(fill.key, (fill.version, answer.clone())).await;
                let mut value = format!("{}\n", fill.version).into_bytes();
                value.extend_from_slice(&answer.to_stored());
                let mut cmd = redis::cmd("SET");
                cmd.arg(entry_key(entry_prefix, fill.key))
                    .arg(value)
                    .arg("EX")
                    .arg(self.ttl.as_secs().max(1));
                if let Err(e) = conn.run::<()>(cmd).await {
                    tracing::warn!(error = %e, "response cache write failed");
                    self.count("error");
                }
            }
        }
        Some(answer)
    }

    /// Drops every cached answer (on every instance, with Redis): call after committing a
    /// write that can change an anonymous catalog read. Never fails; a Redis failure is
    /// logged and counted, and the old answers then live out their TTL.
    pub async fn catalog_changed(&self) {
        match &self.backend {
            Backend::Off => {}
            Backend::Memory {
                version, entries, ..
            } => {
                version.fetch_add(1, Ordering::SeqCst);
                // Stale now: free the memory early rather than at the TTL.
                entries.invalidate_all();
            }
            Backend::Redis {
                conn, version_key, ..
            } => {
                let mut pipe = redis::pipe();
                bump(&mut pipe, version_key);
                if let Err(e) = conn.run::<()>(pipe).await {
                    tracing::warn!(error = %e, "response cache invalidation failed; cached answers live out their TTL");
                    self.count("error");
                }
            }
        }
    }

    /// Drops the own answers of `members` (on every instance, with Redis): called by
    /// [`crate::events::Events::publish`] for every member an event names, after the commit
    /// and before the events go out. Never fails; a Redis failure is logged and counted, and
    /// the old answers then live out their TTL.
    pub async fn members_changed(&self, changed: &[Uuid]) {
        if let Err(e) = self.bump_members(changed).await {
            tracing::warn!(error = %e, "response cache invalidation failed; cached answers live out their TTL");
            self.count("error");
        }
    }

    /// Bumps the versions of `changed`: their own answers cached so far are never served
    /// again, on any instance. An error means Redis did not take the bump.
    async fn bump_members(&self, changed: &[Uuid]) -> Result<(), String> {
        match &self.backend {
            Backend::Off => Ok(()),
            Backend::Memory { members, next, .. } => {
                for m in changed {
                    members
                        .insert(*m, next.fetch_add(1, Ordering::SeqCst) + 1)
                        .await;
                }
                Ok(())
            }
            Backend::Redis {
                conn,
                member_prefix,
                ..
            } => {
                if changed.is_empty() {
                    return Ok(());
                }
                let mut pipe = redis::pipe();
                for m in changed {
                    bump(&mut pipe, &format!("{member_prefix}{m}"));
                }
                conn.run::<()>(pipe).await
            }
        }
    }

    fn count(&self, outcome: &'static str) {
        self.metrics.count_response_cache(outcome);
    }

    /// Whether a document (its normal form and operation name) may be cached in `scope`
    /// ([`cacheable`], [`own_cacheable`]), remembered per document.
    fn remembered(&self, scope: Scope, req: &async_graphql::Request, query: &[u8]) -> bool {
        // Salted like the keys: nobody without the secret can make a document collide with
        // a cacheable one.
        let mut h = DefaultHasher::new();
        self.salt.hash(&mut h);
        scope.hash(&mut h);
        query.hash(&mut h);
        req.operation_name.hash(&mut h);
        let doc = h.finish();
        let remembered = self
            .documents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&doc)
            .copied();
        if let Some(known) = remembered {
            return known;
        }
        let known = match scope {
            Scope::Catalog => cacheable(&Viewer::Anonymous, req),
            Scope::Own => own_cacheable(req),
        };
        let mut documents = self.documents.lock().unwrap_or_else(|e| e.into_inner());
        if documents.len() >= DOCUMENTS_REMEMBERED {
            documents.clear();
        }
        documents.insert(doc, known);
        known
    }

    /// The request's key (an own answer's also names its owner), `None` if its variables do
    /// not serialise.
    fn key(
        &self,
        query: &[u8],
        req: &async_graphql::Request,
        owner: Option<&Owner<'_>>,
    ) -> Option<u128> {
        let variables = serde_json::to_value(&req.variables).ok()?;
        let mut canonical = Vec::new();
        write_canonical(&variables, &mut canonical);
        let digest = |seed: u64| {
            let mut h = DefaultHasher::new();
            seed.hash(&mut h);
            self.salt.hash(&mut h);
            query.hash(&mut h);
            req.operation_name.hash(&mut h);
            canonical.hash(&mut h);
            if let Some(o) = owner {
                (o.member, o.token_version, o.period).hash(&mut h);
            }
            h.finish()
        };
        Some((u128::from(digest(SEEDS[0])) << 64) | u128::from(digest(SEEDS[1])))
    }
}

/// Answers under the version they were computed at, at most [`MEMORY_BYTES`] of them, each
/// for `ttl`.
type Bodies = moka::future::Cache<u128, (u64, Answer)>;

fn bodies(ttl: Duration) -> Bodies {
    moka::future::Cache::builder()
        .max_capacity(MEMORY_BYTES)
        .weigher(|_: &u128, (_, answer): &(u64, Answer)| {
            u32::try_from(answer.weight())
                .unwrap_or(u32::MAX)
                .saturating_add(64)
        })
        .time_to_live(ttl)
        .build()
}

/// Adds the increment of a Redis version counter to `pipe`. Recreated after a flush or an
/// eviction, a counter starts at the time, so it never repeats a version an entry still
/// carries.
fn bump(pipe: &mut redis::Pipeline, version_key: &str) {
    pipe.cmd("SET")
        .arg(version_key)
        .arg(fresh_version())
        .arg("NX")
        .arg("EX")
        .arg(VERSION_TTL.as_secs())
        .ignore()
        .cmd("INCR")
        .arg(version_key)
        .ignore();
}

#[async_trait::async_trait]
impl crate::events::Listener for ResponseCache {
    async fn published(&self, batch: &[crate::events::Event]) {
        if batch.iter().any(|e| e.kind.changes_catalog()) {
            self.catalog_changed().await;
        }
        let mut members: Vec<Uuid> = batch
            .iter()
            .filter(|e| e.kind.names_member())
            .map(|e| e.member)
            .collect();
        members.sort_unstable();
        members.dedup();
        ResponseCache::members_changed(self, &members).await;
    }

    /// A revocation bumps the member's version before it commits, and must: a cached own
    /// answer is served on the token's signature alone, so were the bump lost (the one after
    /// the commit is best-effort), a revoked token would read cached answers until their TTL.
    async fn revoking(&self, member: Uuid) -> Result<(), String> {
        self.bump_members(&[member]).await.inspect_err(|_| {
            self.count("error");
        })
    }
}

fn entry_key(prefix: &str, key: u128) -> String {
    format!("{prefix}{key:032x}")
}

fn parse_version(raw: &[u8]) -> Option<u64> {
    std::str::from_utf8(raw).ok()?.trim().parse().ok()
}

/// The answer of a Redis entry `"<version>\n<stored answer>"` if it was computed at
/// `current` ([`Answer::to_stored`]).
fn answer_at(entry: Vec<u8>, current: u64) -> Option<Answer> {
    let newline = entry.iter().position(|b| *b == b'\n')?;
    if parse_version(&entry[..newline])? != current {
        return None;
    }
    Answer::from_stored(Bytes::from(entry).slice(newline + 1..), MAX_ENTRY_BYTES)
}

/// A starting value for a (re)created Redis counter: the time in microseconds.
fn fresh_version() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1)
}

fn salt_of(secret: &Secret) -> u128 {
    let digest = |seed: u64| {
        let mut h = DefaultHasher::new();
        ("pushhand response cache salt", seed, secret.expose()).hash(&mut h);
        h.finish()
    };
    (u128::from(digest(SEEDS[0])) << 64) | u128::from(digest(SEEDS[1]))
}

/// Whether `viewer` may be served `req` from the cache: anonymous, a query that parses, and
/// only [`ROOT_FIELDS`] at its root.
pub fn cacheable(viewer: &Viewer, req: &async_graphql::Request) -> bool {
    if !matches!(viewer, Viewer::Anonymous) {
        return false;
    }
    let Ok(doc) = async_graphql::parser::parse_query(&req.query) else {
        return false;
    };
    let Some(op) = super::api::selected_operation(&doc, req.operation_name.as_deref()) else {
        return false;
    };
    op.ty == OperationType::Query && catalog_only(&doc, &op.selection_set.node)
}

/// Whether every root field of `set`, fragments at the root level expanded (each once, so
/// cycles end), is in [`ROOT_FIELDS`]. An unknown fragment is not cacheable.
fn catalog_only(
    doc: &ExecutableDocument,
    set: &async_graphql::parser::types::SelectionSet,
) -> bool {
    let mut stack = vec![set];
    let mut expanded = HashSet::new();
    while let Some(set) = stack.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(f) => {
                    if !ROOT_FIELDS.contains(&f.node.name.node.as_str()) {
                        return false;
                    }
                }
                Selection::InlineFragment(i) => stack.push(&i.node.selection_set.node),
                Selection::FragmentSpread(s) => {
                    let name = &s.node.fragment_name.node;
                    if expanded.insert(name.as_str()) {
                        match doc.fragments.get(name) {
                            Some(f) => stack.push(&f.node.selection_set.node),
                            None => return false,
                        }
                    }
                }
            }
        }
    }
    true
}

/// Whether `req` asks only for the member's own views that member versions cover: a query
/// whose root selects `me` (and `__typename`), and below it only what [`own_field`] lists,
/// through fragments whose type condition is the type they are spread in.
pub fn own_cacheable(req: &async_graphql::Request) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(&req.query) else {
        return false;
    };
    let Some(op) = super::api::selected_operation(&doc, req.operation_name.as_deref()) else {
        return false;
    };
    if op.ty != OperationType::Query {
        return false;
    }
    let mut stack = vec![(&op.selection_set.node, "Query")];
    let mut expanded = HashSet::new();
    while let Some((set, ty)) = stack.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    let children = &f.node.selection_set.node;
                    if name == "__typename" {
                        continue;
                    }
                    match own_field(ty, name) {
                        Some(Some(child)) => stack.push((children, child)),
                        Some(None) if children.items.is_empty() => {}
                        _ => return false,
                    }
                }
                Selection::InlineFragment(i) => match &i.node.type_condition {
                    Some(c) if c.node.on.node.as_str() != ty => return false,
                    _ => stack.push((&i.node.selection_set.node, ty)),
                },
                Selection::FragmentSpread(s) => {
                    let name = s.node.fragment_name.node.as_str();
                    let Some(f) = doc.fragments.get(name) else {
                        return false;
                    };
                    if f.node.type_condition.node.on.node.as_str() != ty {
                        return false;
                    }
                    if expanded.insert(name) {
                        stack.push((&f.node.selection_set.node, ty));
                    }
                }
            }
        }
    }
    true
}

/// The fields of a member's own views an own answer may hold, by parent type: `Some(None)`
/// for a leaf, `Some(Some(type))` for an object, `None` for anything else. What each shows
/// changes only with a change that bumps the member's version (see the module docs): its
/// own member row, its earnings and balances, its team (bindings, roles and sales of the
/// members within three levels below), and the month. A field added here must be covered
/// by those bumps.
fn own_field(parent: &str, field: &str) -> Option<Option<&'static str>> {
    let object = |t: &'static str| Some(Some(t));
    match (parent, field) {
        ("Query", "me") => object("Member"),
        (
            "Member",
            "id" | "displayName" | "createdAt" | "email" | "phone" | "frozen" | "frozenReason"
            | "inviteCode" | "roles",
        ) => Some(None),
        ("Member", "earningsSummary") => object("EarningsSummary"),
        ("Member", "earnings") => object("EarningConnection"),
        ("Member", "teamStats") => object("TeamStats"),
        ("Member", "team") => object("MemberProfileConnection"),
        (
            "EarningsSummary",
            "available" | "lifetime" | "pending" | "reserved" | "thisMonth" | "withdrawn",
        ) => Some(None),
        ("EarningConnection", "edges") => object("EarningEdge"),
        ("EarningConnection", "nodes") | ("EarningEdge", "node") => object("Earning"),
        ("EarningEdge" | "MemberProfileEdge", "cursor") => Some(None),
        ("EarningConnection" | "MemberProfileConnection", "pageInfo") => object("PageInfo"),
        ("PageInfo", "endCursor" | "hasNextPage" | "hasPreviousPage" | "startCursor") => Some(None),
        (
            "Earning",
            "amount" | "createdAt" | "id" | "kind" | "level" | "settleAfter" | "settledAt"
            | "status",
        ) => Some(None),
        ("Earning", "explanation") => object("EarningExplanation"),
        (
            "EarningExplanation",
            "adjustsEarningId" | "baseAmount" | "bindingId" | "fixedPerUnit" | "level"
            | "policyVersion" | "rate" | "rule" | "shareLinkId" | "summary" | "uncappedAmount"
            | "units",
        ) => Some(None),
        ("TeamStats", "levels") => object("TeamLevelStats"),
        ("TeamStats", "newThisMonth" | "salesThisMonth" | "totalMembers") => Some(None),
        ("TeamLevelStats", "level" | "members" | "newThisMonth" | "salesThisMonth") => Some(None),
        ("MemberProfileConnection", "edges") => object("MemberProfileEdge"),
        ("MemberProfileConnection", "nodes") | ("MemberProfileEdge", "node") => {
            object("MemberProfile")
        }
        ("MemberProfile", "displayName" | "id" | "joinedAt" | "roles") => Some(None),
        _ => None,
    }
}

/// The query with every run of ignored tokens (whitespace, line terminators, commas, the BOM,
/// comments) outside string literals replaced by one space, and trimmed. Two documents with
/// the same normal form are the same document to GraphQL. (A document whose strings do not
/// close may normalise oddly; it does not parse, so it is never cached.)
pub fn normalise(query: &str) -> Vec<u8> {
    #[derive(PartialEq)]
    enum State {
        Code,
        Str,
        Block,
        Comment,
    }
    let bytes = query.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut state = State::Code;
    let mut space = false;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        match state {
            State::Code => match bytes[i] {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                    space = true;
                    i += 1;
                }
                b'#' => {
                    space = true;
                    state = State::Comment;
                    i += 1;
                }
                _ if rest.starts_with("\u{feff}".as_bytes()) => {
                    space = true;
                    i += 3;
                }
                c => {
                    if space && !out.is_empty() {
                        out.push(b' ');
                    }
                    space = false;
                    if rest.starts_with(b"\"\"\"") {
                        out.extend_from_slice(b"\"\"\"");
                        state = State::Block;
                        i += 3;
                    } else {
                        if c == b'"' {
                            state = State::Str;
                        }
                        out.push(c);
                        i += 1;
                    }
                }
            },
            State::Str => {
                let c = bytes[i];
                out.push(c);
                i += 1;
                if c == b'\\' {
                    // The escaped character, whatever it is, never ends the string.
                    if let Some(next) = bytes.get(i) {
                        out.push(*next);
                        i += 1;
                    }
                } else if c == b'"' {
                    state = State::Code;
                }
            }
            State::Block => {
                if rest.starts_with(b"\\\"\"\"") {
                    out.extend_from_slice(b"\\\"\"\"");
                    i += 4;
                } else if rest.starts_with(b"\"\"\"") {
                    out.extend_from_slice(b"\"\"\"");
                    state = State::Code;
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            State::Comment => {
                if matches!(bytes[i], b'\n' | b'\r') {
                    state = State::Code;
                }
                i += 1;
            }
        }
    }
    out
}

/// JSON with object keys sorted at every level, so that variables sent in another order make
/// the same key.
fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing JSON into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(q: &str) -> String {
        String::from_utf8(normalise(q)).expect("UTF-8 in, UTF-8 out")
    }

    #[test]
    fn ignored_tokens_collapse_outside_strings_only() {
        assert_eq!(
            n("  query  Q {\n\tproducts(first: 5, sort: NEWEST) { edges { node { id } } }\r\n}  "),
            "query Q { products(first: 5 sort: NEWEST) { edges { node { id } } } }"
        );
        assert_eq!(n("{ a # a comment with \"quotes\n b }"), "{ a b }");
        assert_eq!(
            n(r#"{ p(s: "a  b,\"  c") { id } }"#),
            r#"{ p(s: "a  b,\"  c") { id } }"#
        );
        assert_ne!(n(r#"{ p(s: "a  b") }"#), n(r#"{ p(s: "a b") }"#));
        assert_eq!(
            n("{ p(s: \"\"\"x  \\\"\"\"  y\"\"\")   { id } }"),
            "{ p(s: \"\"\"x  \\\"\"\"  y\"\"\") { id } }"
        );
        assert_eq!(n("{ p(s: \"\") ,, { id } }"), "{ p(s: \"\") { id } }");
        assert_eq!(n("\u{feff}{ 名前 }"), "{ 名前 }");
    }

    #[test]
    fn only_anonymous_catalog_queries_are_cacheable() {
        let anon = Viewer::Anonymous;
        let ok = |q: &str| cacheable(&anon, &async_graphql::Request::new(q));
        assert!(ok(
            "{ products { edges { node { id } } } categories { id } __typename }"
        ));
        assert!(ok(
            "query { ...F ... { product(id: 1) { id } } } fragment F on Query { node(id: 1) { id } }"
        ));
        assert!(
            ok("fragment F on Query { ...F categories { id } } { ...F }"),
            "a cycle ends"
        );
        assert!(!ok("{ products { edges { node { id } } } me { id } }"));
        assert!(!ok("{ ... on Query { me { id } } }"));
        assert!(!ok(
            "{ ...F } fragment F on Query { curationQueue { edges { node { id } } } }"
        ));
        assert!(!ok("{ ...Missing }"));
        assert!(!ok("{ __schema { types { name } } }"));
        assert!(!ok("mutation { products }"));
        assert!(!ok("subscription { products }"));
        assert!(!ok("{ products "));
        assert!(
            !ok("query A { categories { id } } query B { me { id } }"),
            "no name given"
        );
        let named = |name: &str| {
            let req =
                async_graphql::Request::new("query A { categories { id } } query B { me { id } }")
                    .operation_name(name);
            cacheable(&anon, &req)
        };
        assert!(named("A"));
        assert!(!named("B"));
        assert!(!named("C"));
        let q = async_graphql::Request::new("{ categories { id } }");
        assert!(!cacheable(&Viewer::Rejected, &q));
    }

    #[test]
    fn only_own_views_within_the_list_are_cacheable_as_own() {
        let ok = |q: &str| own_cacheable(&async_graphql::Request::new(q));
        assert!(ok(
            "{ me { id earningsSummary { pending } earnings(first: 5) { edges { node { amount explanation { summary } } } } } }"
        ));
        assert!(ok(
            "query Q { __typename me { ...T } } fragment T on Member { teamStats { levels { members } } t: team(level: 2) { nodes { id roles __typename } } }"
        ));
        assert!(ok("{ me { ... on Member { id } ... { displayName } } }"));
        assert!(
            ok("fragment F on Member { id ...F } { me { ...F } }"),
            "a cycle ends"
        );
        assert!(!ok(
            "{ me { earnings { edges { node { product { name } } } } } }"
        ));
        assert!(!ok("{ me { orders { edges { node { id } } } } }"));
        assert!(!ok("{ me { id } categories { id } }"));
        assert!(
            !ok("{ me { ...F } } fragment F on Query { me { id } }"),
            "wrong type condition"
        );
        assert!(!ok("{ me { ... on Node { id } } }"));
        assert!(!ok("{ me { ...Missing } }"));
        assert!(!ok("{ me { id { x } } }"));
        assert!(!ok("mutation { me { id } }"));
        assert!(!ok("{ me { id } "));
        assert!(!ok("{ product(id: 1) { id } }"));
    }

    #[test]
    fn canonical_variables_sort_keys_at_every_level() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[{"q":1,"p":2}],"x":"s"}}"#).expect("json");
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":"s","y":[{"p":2,"q":1}]},"b":1}"#).expect("json");
        let (mut ca, mut cb) = (Vec::new(), Vec::new());
        write_canonical(&a, &mut ca);
        write_canonical(&b, &mut cb);
        assert_eq!(ca, cb);
        assert_eq!(
            String::from_utf8(ca).expect("utf-8"),
            r#"{"a":{"x":"s","y":[{"p":2,"q":1}]},"b":1}"#
        );
    }
}
