//! Pushhand: a GraphQL API server for curated, membership-driven social commerce.
//!
//! Products pass a five-stage quality pipeline before they are listed; members join by
//! invite code and earn rebates that move through a ledger; frontends read it all through one
//! GraphQL schema.
//!
//! # Layout
//! Data flows one way: `http → graphql → service → entity/db`; `http` asks the response
//! cache (`responses`) first, and the services tell every cache what changed through
//! `events`. `python3 docs/modgraph.py` prints the modules' import graph and any circle.
//! - [`config`]: typed settings from flags and environment, checked at start.
//! - [`app`]: builds state, schema, router and listener (used by `main` and the tests).
//! - [`state`]: the cheap-to-clone bundle of resources (pool, config, Redis, metrics, caches).
//! - [`error`]: the one error type of the API boundary and its stable codes.
//! - [`http`]: routes — GraphQL over HTTP, the graphql-ws protocols, GraphiQL, health, metrics;
//!   a cached answer as a response, gzip or JSON (`http::answers`).
//! - [`graphql`]: the schema, in two groups. `graphql::schema`: one module per domain, its
//!   API types wrapping service rows and its resolvers. `graphql::transport`: the front door
//!   (`transport::api`: one parse per distinct document, shared with the response cache;
//!   guard, limits, cost, error codes, metrics) and the plain renderer of a product page,
//!   written without a future per field as JSON text (`transport::plain`, `transport::json`).
//!   Shared by both at `graphql`'s root: global IDs, scalars, loaders, and every
//!   connection's `first`/`after` and edges (`graphql::pagination`).
//! - [`responses`]: the response cache of anonymous catalog reads and members' own views —
//!   which operations it may answer (`responses::scope`), their keys (`responses::key`),
//!   the stores behind one trait (`responses::store`: Redis or in-process) and the stored
//!   answer with its gzip form; it hears what changed as events.
//! - [`service`]: the business rules, one module per domain, and who may see which row
//!   (each domain's `visible` functions; keyset pages in `service::page`); no GraphQL in
//!   sight (the listing's hot rows decoded by position, by sqlx, in `service::rows`;
//!   concurrent checkouts of one SKU written as one statement on PostgreSQL in
//!   `service::checkouts`).
//! - [`payments`]: the payment providers behind one trait (WeChat Pay v3 JSAPI, Alipay, the
//!   development sandbox): signed requests, notifications verified (signatures, timestamp
//!   window, replayed nonces, AES-256-GCM resources) into what they prove.
//! - [`db`]: pool set-up (SQLite plans kept stable), statement counting, migrations, the
//!   database's namespace in shared Redis keys.
//! - [`cache`]: the key–value cache (Redis or in-process) behind the curation passports,
//!   whose texts start with a tag a page reads alone.
//! - [`events`]: what changed, published by the services after commit: live events for
//!   subscriptions (Redis pub/sub or in-process), member and catalog changes; every cache
//!   hears them — the response cache, the passports, the remembered viewers.
//! - [`redis_conn`]: the self-healing Redis connection the cache and the events share.
//! - [`redis_reads`]: concurrent reads of one Redis key coalesced into one `GET` per batch.
//! - [`media`]: uploaded images in an object store (local filesystem by default): type
//!   sniffed, size and pixel limits, EXIF stripped by re-encoding, thumbnails.
//! - [`metrics`]: the instance's Prometheus registry (the pool's figures handed in by `db`).
//! - [`ratelimit`]: limits on failed credential attempts, per account and per client address (Redis-shared when configured).
//! - [`seed`]: the deterministic demo data: catalog, member hierarchy, curation records.
//! - [`telemetry`]: structured logs.

// The merged `Mutation`'s resolver futures are deep types: proving them `Send`/`Sync` takes
// more than the default 128 steps.
#![recursion_limit = "256"]

pub mod app;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod media;
pub mod metrics;
pub mod payments;
pub mod ratelimit;
pub mod redis_conn;
pub mod redis_reads;
pub mod responses;
pub mod seed;
pub mod service;
pub mod state;
pub mod telemetry;
