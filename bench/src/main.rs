//! The load benchmark (issue #8): one command builds the release server, starts it on a
//! freshly seeded database, drives each scenario from this separate process (server and load
//! generator pinned to different cores when `taskset` exists), and writes a Markdown table,
//! the JSON of every figure and an SVG chart to `bench/results/`.
//!
//! ```sh
//! cargo run --release -p pushhand-bench                      # SQLite, in-process cache
//! cargo run --release -p pushhand-bench -- \
//!     --postgres postgres://postgres@127.0.0.1:5432/postgres --redis redis://127.0.0.1:6379
//! ```
//!
//! Scenarios (64 closed-loop connections; throughput ratios to S0 of the same server
//! process): S0 `{ __typename }`; S1 anonymous `products(first: 50)` with brand, category,
//! SKUs and passport, response cache off; S2 the same, cache on; S3 `product(id)` detail
//! (S3-raw: cache off; S3-member: a signed-in push-hand's, which no cache serves); S4
//! `me { earningsSummary earnings(first: 20) }` for a member with 100,000 ledger entries; S5
//! `me { teamStats team(level: 1, first: 20) }` for a member with 1,000,000 descendants; S6
//! checkout + payment callback of one SKU (orders/s, earnings booked), one push-hand shopper
//! per connection (S6-1: one shopper on all of them, for reference); B24/B60 fragment bombs refused by
//! the guard; S7 resident memory under load and with 10,000 idle subscriptions.
//! S8 `checkoutPreview` of a push-hand's 5-line cart across 2 merchants, with shipping and the
//! push-hand's own earnings; S9 cart checkout + payment — `placeOrder` of a cart filled
//! beforehand (3 lines, 2 merchants, to an address, shipping), the payment callback (orders/s;
//! S6's two calls; a shopper per order, `--s9-carts` carts per connection); S9-lines the same
//! order from explicit lines, without the cart; S9-path the buyer's whole path per order, 3
//! `addToCart` then S9's two calls (orders/s). S10 S6 paid through the sandbox provider —
//! `createPayment(channel: SANDBOX)` then its signed notification, verified and booked as a
//! provider's (orders/s; its target is 0.8 × S6 of the same run). S11 S9's three SKUs from
//! explicit lines with a coupon (¥5 off, one an order, granted beforehand), no address, +
//! payment (orders/s; target 0.8 × S6); S12 1,000 members claim one template of 500 coupons
//! at the same moment, a connection each (claims/s; exactly 500 issued, checked). S13 the
//! anonymous HOT feed of 种草 notes (`notes(feed: HOT, first: 20)` with their products and
//! authors) over `--notes` public notes (S13-raw: cache off, target ≥ 1/40; S13: cache on);
//! S15 `GET /s/{code}` share-link visits, each a visitor never seen before (a row written
//! every visit, the redirect answered; target ≥ 1/3). S14
//! `leaderboard(kind: EARNINGS, period: WEEK, first: 100)`, anonymous, over counters of S5's
//! million members (uncached: no cache serves it); S14-rank a signed-in member's
//! `me.rank` at the median of that board (for reference).

mod bulk;
mod coupons;
mod leaderboards;
mod ledger_history;
mod load;
mod notes;
mod order_history;
mod report;
mod server;
mod services;
mod storefront;
mod team_tree;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use entity::product;
use pushhand::service::catalog::{self, NewProduct, NewSku};
use pushhand::service::members::{self, CliRole};
use sea_orm::{ColumnTrait, ConnectionTrait, Database, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::load::{Call, CartShopper, Pay, Script, Stats};
use crate::report::{Memory, Report, Row};
use crate::server::{Launch, Server};

const JWT_SECRET: &str = "bench-secret-bench-secret-bench-secret-0123";
const PASSWORD: &str = "bench-password-1";

#[derive(Parser, Debug)]
#[command(about = "Pushhand load benchmark: S0–S15, table, JSON and chart")]
struct Args {
    /// A PostgreSQL URL whose user may create databases: run on PostgreSQL (a fresh
    /// database, dropped afterwards) instead of SQLite.
    #[arg(long)]
    postgres: Option<String>,
    /// A Redis URL for the server (cache, events); its database is flushed first.
    #[arg(long)]
    redis: Option<String>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up seconds per scenario (discarded).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Descendants of the S5 member.
    #[arg(long, default_value_t = 1_000_000)]
    descendants: usize,
    /// Earnings of the S4 member (two ledger entries each once settled).
    #[arg(long, default_value_t = 50_000)]
    earnings: usize,
    /// Past orders of the S6 shoppers (completed, one unit of the S6 product each).
    #[arg(long, default_value_t = 100_000)]
    orders: usize,
    /// Public 种草 notes for S13 and S15 (by 1,000 authors).
    #[arg(long, default_value_t = 100_000)]
    notes: usize,
    /// Idle subscriptions for S7 (20 per connection).
    #[arg(long, default_value_t = 10_000)]
    idle_subscriptions: usize,
    /// Run only these scenarios (comma-separated keys, e.g. `S1,S2`); S0 always runs.
    #[arg(long)]
    only: Option<String>,
    /// Carts filled beforehand for S9, and coupons granted for S11, per connection: one is
    /// used per order, so this bounds S9's and S11's orders per connection over the warm-up
    /// and measured seconds.
    #[arg(long, default_value_t = 300)]
    s9_carts: usize,
    /// Where the results go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Measure this server binary instead of building the workspace's (to compare two
    /// builds side by side: copy each `target/release/pushhand` away, then run each).
    #[arg(long)]
    server: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace")?
        .to_path_buf();
    // Build first, on every core; then keep this process off the server's core.
    let binary = match &args.server {
        Some(path) => path.clone(),
        None => server::build_release(&workspace)?,
    };
    let machine = machine();
    let pinned = server::can_pin();
    if pinned {
        server::pin_self(1)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if pinned { 1 } else { 2 })
        .enable_all()
        .build()?;
    rt.block_on(run(args, workspace, binary, pinned, machine))
}

/// Scenarios that take an S9 order apart, run only when named in `--only`: S6-address (S6's
/// order shipped to the shopper's address), S9-no-address (S9-lines without the address) and
/// S9-first (S9-lines, each order a shopper's first, as S9's are).
const DIAGNOSTIC: [&str; 3] = ["S6-address", "S9-no-address", "S9-first"];

fn wants(args: &Args, key: &str) -> bool {
    match &args.only {
        None => !DIAGNOSTIC.contains(&key),
        Some(list) => key == "S0" || list.split(',').any(|k| k.trim() == key),
    }
}

async fn run(
    args: Args,
    workspace: PathBuf,
    binary: PathBuf,
    pinned: bool,
    machine: String,
) -> anyhow::Result<()> {
    let run_dir = workspace.join("target").join("bench-run");
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir)?;
    let (database_url, drop_db) = match &args.postgres {
        Some(admin) => {
            let name = format!("pushhand_bench_{}", std::process::id());
            let db = Database::connect(admin.as_str()).await?;
            db.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .await?;
            db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await?;
            db.close().await?;
            let base = admin.split('?').next().unwrap_or(admin);
            let (server, _) = base.rsplit_once('/').context("database URL has a path")?;
            (format!("{server}/{name}"), Some((admin.clone(), name)))
        }
        None => (
            format!("sqlite://{}?mode=rwc", run_dir.join("bench.db").display()),
            None,
        ),
    };
    if let Some(redis) = &args.redis {
        let client = redis::Client::open(redis.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("FLUSHDB").query_async::<()>(&mut conn).await?;
    }
    let store = match (&args.postgres, &args.redis) {
        (Some(_), Some(_)) => "PostgreSQL + Redis",
        (Some(_), None) => "PostgreSQL",
        (None, Some(_)) => "SQLite + Redis",
        (None, None) => "SQLite",
    };

    // The load generator's core takes the database and the cache too (see `services`).
    let services = match pinned {
        true => {
            services::Pinned::services(args.postgres.as_deref(), args.redis.as_deref(), 1).await
        }
        false => services::Pinned::default(),
    };
    let outcome = bench(&args, &binary, &run_dir, &database_url, store, pinned)
        .await
        .map(|r| Report {
            machine,
            services_pinned: services.what.clone(),
            ..r
        });
    drop(services);
    if let Some((admin, name)) = drop_db
        && let Ok(db) = Database::connect(admin.as_str()).await
    {
        let _ = db
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
    }
    let report = outcome?;
    std::fs::create_dir_all(&args.out)?;
    let stem = if args.postgres.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let md = report::markdown(&report);
    println!("\n{md}");
    std::fs::write(args.out.join(format!("{stem}.md")), &md)?;
    std::fs::write(
        args.out.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&report)?,
    )?;
    report::chart(&report, &args.out.join(format!("{stem}.svg")))?;
    println!("written: {}/{stem}.{{md,json,svg}}", args.out.display());
    Ok(())
}

/// What the data generation left for the scenarios.
struct Fixture {
    sku: String,
    product: String,
    /// Tokens of the S6 shoppers, one per connection.
    shoppers: Vec<String>,
    /// S8's and S9's SKUs and addresses.
    storefront: storefront::Storefront,
    /// S9's carts filled beforehand, `args.s9_carts` per connection (none without S9).
    carts: Vec<storefront::FilledCart>,
    /// S11's and S12's coupons (none without either).
    coupons: Option<coupons::Coupons>,
    /// S13's and S15's notes (none without either).
    notes: Option<notes::Notes>,
    /// S14-rank's viewer: the e-mail of the member at the median of the week's board (none
    /// without S14).
    s14_viewer: Option<String>,
}

async fn generate(
    database_url: &str,
    run_dir: &Path,
    args: &Args,
    timings: &mut Vec<(String, f64)>,
) -> anyhow::Result<Fixture> {
    let config = pushhand::config::from_args([
        "pushhand",
        "--database-url",
        database_url,
        "--data-dir",
        &run_dir.display().to_string(),
        "--jwt-secret",
        JWT_SECRET,
        "--db-statement-timeout-ms",
        "600000",
    ])?;
    let metrics = pushhand::metrics::Metrics::new();
    let db = pushhand::db::connect(&config, &metrics).await?;
    pushhand::db::migrate(&db).await?;
    let t = Instant::now();
    // Nothing runs yet to hear what the seed changed.
    pushhand::seed::run(&db, &pushhand::events::Events::in_process(metrics.clone()))
        .await
        .map_err(anyhow::Error::from)?;
    timings.push(("demo catalog and members".into(), t.elapsed().as_secs_f64()));
    let now = pushhand::service::now();
    let mut staff = Vec::with_capacity(2);
    for (email, role) in [
        ("admin@bench.example", CliRole::Admin),
        ("buyer@bench.example", CliRole::PushHand),
    ] {
        staff.push(
            members::create_user(&db, email, PASSWORD, role, None, now)
                .await
                .map_err(anyhow::Error::from)?
                .id,
        );
    }
    // S6's shoppers: one push-hand per connection, as in a flash sale (many shoppers, one
    // SKU), each booking a self-purchase rebate into their own balance. Tokens are issued
    // here: signing in 64 times would only measure argon2 and the sign-in rate limit.
    let secret = pushhand::config::Secret::new(JWT_SECRET);
    let mut shoppers = Vec::with_capacity(args.clients);
    let mut shopper_ids = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let m = members::create_user(
            &db,
            &format!("shopper{i}@bench.example"),
            PASSWORD,
            CliRole::PushHand,
            None,
            now,
        )
        .await
        .map_err(anyhow::Error::from)?;
        shopper_ids.push(m.id);
        shoppers.push(
            pushhand::service::auth::issue_token(&secret, &m, now, chrono::Duration::days(1))
                .map_err(anyhow::Error::from)?,
        );
    }
    // A product with stock enough for any checkout run.
    let model = product::Entity::find()
        .filter(product::Column::Status.eq(product::Status::Published))
        .order_by_asc(product::Column::Id)
        .one(&db)
        .await?
        .context("a published product")?;
    let p = NewProduct {
        id: uuid::Uuid::now_v7(),
        merchant_id: model.merchant_id,
        brand_id: model.brand_id,
        category_id: model.category_id,
        name: "压测专用商品".into(),
        name_en: Some("Benchmark product".into()),
        description: None,
        status: product::Status::Published,
        rebate_rate: entity::Rate::from_bp(1500),
        team_rebate_rate: entity::Rate::from_bp(500),
        membership_activity: false,
        sales_count: 0,
        created_at: now,
        published_at: Some(now),
        skus: vec![NewSku {
            name: "标准".into(),
            price: entity::Money::from_fen(19_900),
            stock: 1_000_000_000,
        }],
        images: vec![],
        tags: vec![],
    };
    let p_rates = (p.rebate_rate, p.team_rebate_rate);
    let checkout_product = catalog::create_product(&db, p)
        .await
        .map_err(anyhow::Error::from)?;
    let sku = entity::sku::Entity::find()
        .filter(entity::sku::Column::ProductId.eq(checkout_product))
        .one(&db)
        .await?
        .context("the benchmark SKU")?;
    let t = Instant::now();
    let storefront =
        storefront::generate(&db, &model, staff[0], staff[1], &shopper_ids, now).await?;
    timings.push((
        "S8/S9: merchants, shipping rules, addresses".into(),
        t.elapsed().as_secs_f64(),
    ));
    let carts = if wants(args, "S9") || wants(args, "S9-first") {
        let t = Instant::now();
        let n = args.clients * args.s9_carts;
        let carts = storefront::carts(&db, &storefront, n, &secret, now).await?;
        timings.push((
            format!("S9: {n} shoppers with an address and a filled 3-line cart"),
            t.elapsed().as_secs_f64(),
        ));
        carts
    } else {
        Vec::new()
    };
    let coupons = if wants(args, "S11") || wants(args, "S12") {
        let t = Instant::now();
        let c = coupons::generate(
            &db,
            staff[0],
            &shopper_ids,
            args.s9_carts,
            S12_CLAIMERS,
            &secret,
            now,
        )
        .await?;
        timings.push((
            format!(
                "S11/S12: {} coupons granted, {S12_CLAIMERS} claimers",
                args.clients * args.s9_carts
            ),
            t.elapsed().as_secs_f64(),
        ));
        Some(c)
    } else {
        None
    };
    db.close().await?;

    let loader = bulk::loader_connection(&config).await?;
    // First: the ANALYZE after the S4 and S5 loads then covers these tables too.
    let t = Instant::now();
    let orders = order_history::generate(
        &loader,
        args.orders,
        &order_history::Checkout {
            buyers: &shopper_ids,
            sku: &sku,
            rebate_rate: p_rates.0,
            team_rebate_rate: p_rates.1,
        },
    )
    .await?;
    timings.push((
        format!("S6: {orders} past orders of its shoppers"),
        t.elapsed().as_secs_f64(),
    ));
    let notes = if wants(args, "S13") || wants(args, "S13-raw") || wants(args, "S15") {
        let t = Instant::now();
        let n = notes::generate(&loader, args.notes, 1_000, pushhand::service::now()).await?;
        timings.push((
            format!(
                "S13/S15: {} public notes, {} product links",
                n.notes, n.links
            ),
            t.elapsed().as_secs_f64(),
        ));
        Some(n)
    } else {
        None
    };
    let t = Instant::now();
    let h = ledger_history::generate(&loader, args.earnings).await?;
    timings.push((
        format!("S4: {} earnings, {} ledger entries", h.earnings, h.entries),
        t.elapsed().as_secs_f64(),
    ));
    let t = Instant::now();
    let tree = team_tree::generate(&loader, args.descendants).await?;
    timings.push((
        format!(
            "S5: {} descendants ({} closure rows)",
            tree.levels.iter().sum::<usize>(),
            tree.closure_rows
        ),
        t.elapsed().as_secs_f64(),
    ));
    let s14_viewer = if wants(args, "S14") || wants(args, "S14-rank") {
        let t = Instant::now();
        let boards = leaderboards::generate(&loader, &tree.members, now).await?;
        timings.push((
            format!(
                "S14: {} leaderboard counters of {} members ({} frozen)",
                boards.rows,
                tree.members.len(),
                boards.frozen
            ),
            t.elapsed().as_secs_f64(),
        ));
        Some(format!("m{:07}@bench.example", boards.median_member))
    } else {
        None
    };
    loader.close().await?;
    Ok(Fixture {
        sku: pushhand::graphql::ids::encode(pushhand::graphql::ids::Kind::Sku, sku.id).to_string(),
        product: pushhand::graphql::ids::encode(pushhand::graphql::ids::Kind::Product, model.id)
            .to_string(),
        shoppers,
        storefront,
        carts,
        coupons,
        notes,
        s14_viewer,
    })
}

/// S12's members claiming at once, each from a connection of their own.
const S12_CLAIMERS: usize = 1_000;

async fn login(addr: std::net::SocketAddr, email: &str) -> anyhow::Result<String> {
    let call = Call {
        query: "mutation($i: LoginInput!) { login(input: $i) { token } }".into(),
        variables: json!({ "i": { "email": email, "password": PASSWORD } }),
        token: None,
    };
    let v = load::once(addr, &call).await?;
    v["data"]["login"]["token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("login of {email}: {v}"))
}

const S1: &str = "{ products(first: 50) { edges { node { id name minPrice brand { name } category { nameZh } skus { id price stock } curation { passed badges } } } pageInfo { hasNextPage endCursor } } }";
const S3: &str = "query($id: ID!) { product(id: $id) { id name nameEn description minPrice maxPrice salesCount brand { name merchant { name } } category { nameZh parent { nameZh } } skus { id name price stock } images { url alt } tags curation { passed badges stages { stage result } } } }";
/// S3 as a signed-in push-hand sees it (rates and 预估赚 too): executed every time, since
/// signed-in requests bypass the response cache.
const S3_MEMBER: &str = "query($id: ID!) { product(id: $id) { id name nameEn description minPrice maxPrice salesCount rebateRate teamRebateRate estimatedEarning brand { name merchant { name } } category { nameZh parent { nameZh } } skus { id name price stock } images { url alt } tags curation { passed badges stages { stage result } } } }";
const S4: &str = "{ me { earningsSummary { pending available lifetime thisMonth } earnings(first: 20) { edges { node { id kind amount status createdAt explanation { summary } } } pageInfo { hasNextPage endCursor } } } }";
/// S13: the HOT feed's first page as an app's discovery tab shows it.
const S13: &str = "{ notes(feed: HOT, first: 20) { edges { node { id title likeCount publishedAt imageUrls shareCode author { id displayName badge } products { id name minPrice images { url } } } } pageInfo { hasNextPage endCursor } } }";
const S5: &str = "{ me { teamStats { totalMembers newThisMonth levels { level members newThisMonth } } team(level: 1, first: 20) { edges { node { id displayName joinedAt } } pageInfo { hasNextPage } } } }";
/// S14: the week's top 100 by net settled earnings, as a storefront's ranking page reads it.
const S14: &str = "{ leaderboard(kind: EARNINGS, period: WEEK, first: 100) { startsAt endsAt entries { rank name amount isViewer } } }";
/// S14-rank: a member's own place on that board, counted over the whole board.
const S14_RANK: &str = "{ me { rank(kind: EARNINGS, period: WEEK) { rank amount gapToNext } } }";
const PLACE: &str = "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id total } }";
/// Adds to the cart and answers the cart's lines (S8's setup, S9's first three calls).
const ADD_TO_CART: &str =
    "mutation($sku: ID!, $q: Int!) { addToCart(skuId: $sku, quantity: $q) { lines { id } } }";
/// S8: what a checkout page shows before the buyer pays — lines with the push-hand's own
/// earnings and why, a parcel per merchant with its fee and reason, the totals.
const PREVIEW: &str = "query($i: CheckoutPreviewInput!) { checkoutPreview(input: $i) { lines { cartLineId sku { id name } quantity unitPrice lineTotal attribution { rule summary } earnings { kind level amount explanation { summary } } } parcels { merchant { name } subtotal fee reason } goodsTotal shippingTotal total } }";

fn bomb(levels: usize) -> String {
    let mut doc = String::from("fragment F0 on Query { __typename }");
    for i in 1..=levels {
        doc.push_str(&format!(
            " fragment F{i} on Query {{ ...F{} ...F{} }}",
            i - 1,
            i - 1
        ));
    }
    doc.push_str(&format!(" query {{ ...F{levels} }}"));
    doc
}

fn call(query: &str, variables: Value, token: Option<&str>) -> Call {
    Call {
        query: query.into(),
        variables,
        token: token.map(str::to_owned),
    }
}

async fn bench(
    args: &Args,
    binary: &Path,
    run_dir: &Path,
    database_url: &str,
    store: &str,
    pinned: bool,
) -> anyhow::Result<Report> {
    let mut generation = Vec::new();
    println!("generating data…");
    let mut fixture = generate(database_url, run_dir, args, &mut generation).await?;
    for (what, s) in &generation {
        println!("  {what}: {s:.1} s");
    }
    let launch = |response_cache| Launch {
        binary,
        database_url,
        redis_url: args.redis.as_deref(),
        data_dir: run_dir,
        jwt_secret: JWT_SECRET,
        response_cache,
        core: pinned.then_some(0),
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut max_rss = 0u64;

    // Phase 1: response cache off.
    let server = Server::start(&launch(false)).await?;
    let addr = server.addr;
    let buyer = login(addr, "buyer@bench.example").await?;
    let admin = login(addr, "admin@bench.example").await?;
    let earner = login(addr, ledger_history::EMAIL).await?;
    let root = login(addr, team_tree::ROOT_EMAIL).await?;
    check_answers(addr, &earner, &root, &fixture.shoppers, args).await?;
    if fixture.notes.is_some() {
        let v = load::once(addr, &call(S13, json!({}), None)).await?;
        let edges = v["data"]["notes"]["edges"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        anyhow::ensure!(
            edges.len() == 20
                && edges.iter().all(|e| e["node"]["products"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty())),
            "S13's page: {v}"
        );
    }
    let ranked = match &fixture.s14_viewer {
        Some(email) => {
            let token = login(addr, email).await?;
            check_boards(addr, &token).await?;
            Some(token)
        }
        None => None,
    };

    let pid = server.pid();
    let scenarios: Vec<Scenario> = vec![
        (
            "S0",
            "{ __typename }",
            Script::Repeat(call("{ __typename }", json!({}), None)),
            None,
            false,
        ),
        (
            "S1",
            "products(first: 50), cache off",
            Script::Repeat(call(S1, json!({}), None)),
            Some(1.0 / 40.0),
            false,
        ),
        (
            "S3-raw",
            "product(id) detail, cache off",
            Script::Repeat(call(S3, json!({ "id": fixture.product }), None)),
            Some(1.0 / 8.0),
            false,
        ),
        (
            "S3-member",
            "product(id) detail, a signed-in push-hand, cache off",
            Script::Repeat(call(
                S3_MEMBER,
                json!({ "id": fixture.product }),
                Some(&buyer),
            )),
            None,
            false,
        ),
        (
            "S4-raw",
            "earnings, 100k ledger entries, cache off",
            Script::Repeat(call(S4, json!({}), Some(&earner))),
            None,
            false,
        ),
        (
            "S5-raw",
            "team, 1M descendants, cache off",
            Script::Repeat(call(S5, json!({}), Some(&root))),
            None,
            false,
        ),
        (
            "S13-raw",
            "notes(feed: HOT, first: 20), 100k notes, cache off",
            Script::Repeat(call(S13, json!({}), None)),
            Some(1.0 / 40.0),
            false,
        ),
        (
            "S15",
            "GET /s/{code}, a new visitor each time (visits/s)",
            Script::Visits {
                codes: std::sync::Arc::new(
                    fixture
                        .notes
                        .as_ref()
                        .map(|n| n.codes.clone())
                        .unwrap_or_default(),
                ),
            },
            Some(1.0 / 3.0),
            false,
        ),
        (
            "S14",
            "leaderboard(first: 100), 1M members, uncached",
            Script::Repeat(call(S14, json!({}), None)),
            Some(1.0 / 20.0),
            false,
        ),
        (
            "S14-rank",
            "me.rank at the median of a 1M-member board, uncached",
            Script::Repeat(call(S14_RANK, json!({}), ranked.as_deref())),
            None,
            false,
        ),
        (
            "B24",
            "24-level fragment bomb (refused)",
            Script::Repeat(call(&bomb(24), json!({}), None)),
            None,
            true,
        ),
        (
            "B60",
            "60-level fragment bomb (refused)",
            Script::Repeat(call(&bomb(60), json!({}), None)),
            None,
            true,
        ),
    ];
    let mut s0: Option<Stats> = None;
    for scenario in scenarios {
        if !wants(args, scenario.0) {
            continue;
        }
        let row = measure_one(addr, args, scenario, s0.as_ref(), pid).await?;
        max_rss = max_rss.max(row.stats.max_rss);
        s0.get_or_insert_with(|| row.stats.clone());
        rows.push(row);
    }

    // S7: idle subscriptions on the same process, after the load.
    let memory = if wants(args, "S7") {
        let per = 20;
        let connections = args.idle_subscriptions.div_ceil(per);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = server.rss()?;
        let held = load::idle_subscriptions(addr, &buyer, connections, per).await?;
        wait_for_subscriptions(addr, connections * per).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = server.rss()?;
        let subs = connections * per;
        println!(
            "  S7 {subs} idle subscriptions on {connections} connections: RSS {:.1} → {:.1} MiB",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0
        );
        drop(held);
        Some(Memory {
            max_rss_under_load: max_rss,
            idle_subscriptions: subs,
            idle_connections: connections,
            rss_before_idle: before,
            rss_with_idle: after,
            per_idle_subscription: after.saturating_sub(before) as f64 / subs as f64,
        })
    } else {
        None
    };
    server.stop()?;

    // Phase 2: the default configuration, response cache on. Ratios are still to S0 of
    // phase 1 — the server executing `{ __typename }` — because with the cache on
    // `{ __typename }` itself is a cache hit (shown as S0c, for reference).
    const PHASE2: [&str; 18] = [
        "S0c",
        "S2",
        "S3",
        "S4",
        "S5",
        "S6",
        "S10",
        "S6-1",
        "S8",
        "S9",
        "S9-lines",
        "S9-first",
        "S9-no-address",
        "S6-address",
        "S9-path",
        "S11",
        "S12",
        "S13",
    ];
    if PHASE2.iter().any(|k| *k != "S0c" && wants(args, k)) {
        let server = Server::start(&launch(true)).await?;
        let addr = server.addr;
        let pid = server.pid();
        let base = s0.clone().context("S0 ran in phase 1")?;
        // S8's cart: the push-hand's five lines, one unit each (S8 only reads it).
        let mut preview_lines = Vec::new();
        if wants(args, "S8") {
            for sku in &fixture.storefront.cart_skus {
                let added = load::once(
                    addr,
                    &call(ADD_TO_CART, json!({ "sku": sku, "q": 1 }), Some(&buyer)),
                )
                .await?;
                preview_lines = load::cart_line_ids(&added)?;
            }
            anyhow::ensure!(preview_lines.len() == 5, "S8's cart: {preview_lines:?}");
        }
        let preview = json!({ "i": {
            "cartLineIds": preview_lines,
            "addressId": fixture.storefront.buyer_address,
        } });
        let cart_shoppers: Vec<CartShopper> = fixture
            .shoppers
            .iter()
            .zip(&fixture.storefront.shopper_addresses)
            .map(|(token, address)| CartShopper {
                token: token.clone(),
                adds: fixture
                    .storefront
                    .order_skus
                    .iter()
                    .map(|sku| call(ADD_TO_CART, json!({ "sku": sku, "q": 1 }), Some(token)))
                    .collect(),
                address_id: address.clone(),
            })
            .collect();
        // S9's three SKUs as explicit lines, one unit each (S9-lines, S9-first, S9-no-address,
        // S11).
        let lines: Vec<Value> = fixture
            .storefront
            .order_skus
            .iter()
            .map(|sku| json!({ "skuId": sku, "quantity": 1 }))
            .collect();
        // S9-first: S9-lines by S9's shoppers (each order a shopper's first), from each
        // connection's last carts backwards (S9 takes them from the front).
        let first_orders: Vec<Vec<Call>> = fixture
            .carts
            .chunks(args.s9_carts.max(1))
            .take(args.clients)
            .map(|chunk| {
                chunk
                    .iter()
                    .rev()
                    .map(|cart| {
                        call(
                            PLACE,
                            json!({ "i": { "lines": lines, "addressId": cart.address_id } }),
                            Some(&cart.token),
                        )
                    })
                    .collect()
            })
            .collect();
        // S9's filled carts, `s9_carts` per connection: connection i orders its own in turn.
        let mut filled_carts: Vec<Vec<Call>> = Vec::new();
        let mut carts = std::mem::take(&mut fixture.carts).into_iter();
        for _ in 0..args.clients {
            filled_carts.push(
                carts
                    .by_ref()
                    .take(args.s9_carts)
                    .map(|cart| {
                        call(
                            load::PLACE_FROM_CART,
                            json!({ "i": {
                                "cartLineIds": cart.line_ids,
                                "addressId": cart.address_id,
                            } }),
                            Some(&cart.token),
                        )
                    })
                    .collect(),
            );
        }
        // S11's orders: S9's three SKUs from explicit lines, a coupon each, no address.
        let s11_orders: Vec<Vec<Call>> = fixture
            .coupons
            .as_ref()
            .map(|c| {
                fixture
                    .shoppers
                    .iter()
                    .zip(&c.s11)
                    .map(|(token, coupons)| {
                        coupons
                            .iter()
                            .map(|coupon| {
                                call(
                                    PLACE,
                                    json!({ "i": { "lines": lines, "couponId": coupon } }),
                                    Some(token),
                                )
                            })
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Orders of `lines` by S6's shoppers, each to their address.
        let shipped = |lines: Value| -> Vec<Call> {
            fixture
                .shoppers
                .iter()
                .zip(&fixture.storefront.shopper_addresses)
                .map(|(token, address)| {
                    call(
                        PLACE,
                        json!({ "i": { "lines": lines, "addressId": address } }),
                        Some(token),
                    )
                })
                .collect()
        };
        let s9_lines = shipped(json!(lines));
        // S9-no-address: S9-lines by S6's shoppers, without the address (no shipping).
        let s9_no_address: Vec<Call> = fixture
            .shoppers
            .iter()
            .map(|token| call(PLACE, json!({ "i": { "lines": lines } }), Some(token)))
            .collect();
        // S6-address: S6's order, shipped to its shopper's address.
        let s6_address = shipped(json!([{ "skuId": fixture.sku, "quantity": 1 }]));
        // S6's and S10's orders: one unit of the flash sale's SKU, a shopper per connection.
        let flash_sale: Vec<Call> = fixture
            .shoppers
            .iter()
            .map(|shopper| {
                call(
                    PLACE,
                    json!({ "i": { "lines": [{ "skuId": fixture.sku, "quantity": 1 }] } }),
                    Some(shopper),
                )
            })
            .collect();
        let phase2: Vec<Scenario> = vec![
            (
                "S0c",
                "{ __typename }, a cache hit",
                Script::Repeat(call("{ __typename }", json!({}), None)),
                None,
                false,
            ),
            (
                "S2",
                "products(first: 50), cache on",
                Script::Repeat(call(S1, json!({}), None)),
                Some(1.0 / 2.0),
                false,
            ),
            (
                "S3",
                "product(id) detail (default config)",
                Script::Repeat(call(S3, json!({ "id": fixture.product }), None)),
                Some(1.0 / 5.0),
                false,
            ),
            (
                "S4",
                "earnings, 100k ledger entries (default config)",
                Script::Repeat(call(S4, json!({}), Some(&earner))),
                Some(1.0 / 3.0),
                false,
            ),
            (
                "S5",
                "team, 1M descendants (default config)",
                Script::Repeat(call(S5, json!({}), Some(&root))),
                Some(1.0 / 5.0),
                false,
            ),
            (
                "S6",
                "checkout + payment (orders/s)",
                Script::Checkout {
                    places: flash_sale.clone(),
                    pay: Pay::Confirm {
                        admin_token: admin.clone(),
                    },
                },
                Some(1.0 / 50.0),
                false,
            ),
            (
                "S10",
                "S6 paid through the sandbox provider: createPayment + signed notification (orders/s; target ≥ 0.8 × S6)",
                Script::Checkout {
                    places: flash_sale.clone(),
                    pay: Pay::Sandbox,
                },
                None,
                false,
            ),
            (
                "S6-1",
                "S6 with one shopper on every connection (their balance row is every payment's)",
                Script::Checkout {
                    places: vec![call(
                        PLACE,
                        json!({ "i": { "lines": [{ "skuId": fixture.sku, "quantity": 1 }] } }),
                        Some(&buyer),
                    )],
                    pay: Pay::Confirm {
                        admin_token: admin.clone(),
                    },
                },
                None,
                false,
            ),
        ];
        let phase2 = phase2.into_iter().chain([
            (
                "S8",
                "checkoutPreview of a push-hand's 5-line cart (2 merchants, shipping, earnings)",
                Script::Repeat(call(PREVIEW, preview, Some(&buyer))),
                Some(1.0 / 10.0),
                false,
            ),
            (
                "S9",
                "placeOrder from a filled 3-line cart (2 merchants, shipping) + payment (orders/s)",
                Script::Orders {
                    places: std::sync::Arc::new(filled_carts),
                    pay: Pay::Confirm {
                        admin_token: admin.clone(),
                    },
                },
                None,
                false,
            ),
            (
                "S9-path",
                "the buyer's path: 3 addToCart + S9's order and payment (orders/s)",
                Script::CartCheckout {
                    shoppers: cart_shoppers,
                    pay: Pay::Confirm {
                        admin_token: admin.clone(),
                    },
                },
                None,
                false,
            ),
            (
                "S9-first",
                "S9-lines by S9's shoppers, each order a shopper's first (orders/s)",
                Script::Orders {
                    places: std::sync::Arc::new(first_orders),
                    pay: Pay::Confirm {
                        admin_token: admin.clone(),
                    },
                },
                None,
                false,
            ),
            (
                "S9-no-address",
                "S9-lines without the address: no shipping (orders/s)",
                Script::Checkout {
                    places: s9_no_address,
                    pay: Pay::Confirm {
                        admin_token: admin.clone(),
                    },
                },
                None,
                false,
            ),
            (
                "S6-address",
                "S6's order shipped to the shopper's address (orders/s)",
                Script::Checkout {
                    places: s6_address,
                    pay: Pay::Confirm {
                        admin_token: admin.clone(),
                    },
                },
                None,
                false,
            ),
            (
                "S9-lines",
                "S9's order placed from explicit lines (no cart) + payment (orders/s)",
                Script::Checkout {
                    places: s9_lines,
                    pay: Pay::Confirm {
                        admin_token: admin.clone(),
                    },
                },
                None,
                false,
            ),
        ]);
        let phase2 = phase2.chain([
            (
            "S13",
            "notes(feed: HOT, first: 20), 100k notes (default config)",
            Script::Repeat(call(S13, json!({}), None)),
            None,
            false,
            ),
            (
            "S11",
            "S9's three SKUs from explicit lines with a coupon (no address) + payment (orders/s)",
            Script::Orders {
                places: std::sync::Arc::new(s11_orders),
                pay: Pay::Confirm {
                    admin_token: admin.clone(),
                },
            },
            None,
            false,
        ),
        ]);
        for scenario in phase2 {
            if !wants(args, scenario.0) {
                continue;
            }
            rows.push(measure_one(addr, args, scenario, Some(&base), pid).await?);
        }
        if let (true, Some(c)) = (wants(args, "S12"), fixture.coupons.as_ref()) {
            rows.push(s12(addr, database_url, c, &base).await?);
        }
        server.stop()?;
    }
    let memory = memory.map(|mut m| {
        m.max_rss_under_load = max_rss;
        m
    });
    Ok(Report {
        machine: machine(),
        store: store.into(),
        clients: args.clients,
        seconds: args.seconds,
        pinned,
        services_pinned: Vec::new(),
        generation,
        rows,
        memory,
    })
}

/// A scenario: key, label, script, target ratio, whether errors are expected.
type Scenario = (&'static str, &'static str, Script, Option<f64>, bool);

/// S12: every claimer claims S12's template at the same moment. Exactly its total must be
/// issued — the answers, the coupon rows and the template's counter agree — and every other
/// claim refused `COUPONS_EXHAUSTED`.
async fn s12(
    addr: std::net::SocketAddr,
    database_url: &str,
    c: &coupons::Coupons,
    base: &Stats,
) -> anyhow::Result<Row> {
    const CLAIM: &str = "mutation($t: ID!) { claimCoupon(templateId: $t) { id } }";
    let calls = c
        .s12_claimers
        .iter()
        .map(|token| call(CLAIM, json!({ "t": c.s12_template }), Some(token)))
        .collect();
    let (stats, answers) = load::burst(addr, calls).await?;
    let claimed = answers
        .iter()
        .filter(|a| a["data"]["claimCoupon"]["id"].is_string())
        .count();
    let refused = answers
        .iter()
        .filter(|a| a["errors"][0]["extensions"]["code"] == json!("COUPONS_EXHAUSTED"))
        .count();
    let db = Database::connect(database_url).await?;
    let (rows, counter) = coupons::issued(&db, c.s12_template_id).await?;
    db.close().await?;
    let total = usize::try_from(c.s12_total)?;
    anyhow::ensure!(
        claimed == total
            && refused == answers.len() - total
            && rows == total as u64
            && counter == c.s12_total,
        "S12 issued wrong: {claimed} claimed, {refused} refused, {rows} coupons, counter \
         {counter}, of {total}"
    );
    let label = "1,000 members claim one template of 500 at once (claims/s; exactly 500 issued)";
    println!(
        "{:>4} {label:<36} {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        "S12", stats.per_second, stats.p50_ms, stats.p99_ms
    );
    Ok(Row {
        key: "S12",
        label,
        baseline: "S0",
        ratio: stats.per_second / base.per_second,
        stats,
        target: None,
    })
}

/// Runs one scenario, prints its line and returns its row, its ratio to `base` (S0 of the
/// same run; itself when it is S0).
async fn measure_one(
    addr: std::net::SocketAddr,
    args: &Args,
    (key, label, script, target, errors): Scenario,
    base: Option<&Stats>,
    pid: u32,
) -> anyhow::Result<Row> {
    let warmup = Duration::from_secs(args.warmup);
    let measure = Duration::from_secs(args.seconds);
    let stats = load::run(addr, &script, args.clients, warmup, measure, errors, pid)
        .await
        .with_context(|| format!("scenario {key}"))?;
    println!(
        "{key:>4} {label:<36} {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  server CPU {:>6.3} ms",
        stats.per_second,
        stats.p50_ms,
        stats.p99_ms,
        stats.server_cpu_ms.unwrap_or(f64::NAN)
    );
    let base = base.map_or(stats.per_second, |b| b.per_second);
    Ok(Row {
        key,
        label,
        baseline: "S0",
        ratio: stats.per_second / base,
        stats,
        target,
    })
}

/// The answers must be right before their speed means anything.
async fn check_answers(
    addr: std::net::SocketAddr,
    earner: &str,
    root: &str,
    shoppers: &[String],
    args: &Args,
) -> anyhow::Result<()> {
    let s4 = load::once(addr, &call(S4, json!({}), Some(earner))).await?;
    let edges = s4["data"]["me"]["earnings"]["edges"]
        .as_array()
        .map_or(0, Vec::len);
    if edges != 20 || s4["data"]["me"]["earningsSummary"]["lifetime"] == json!("0.00") {
        bail!("S4 answer is wrong: {s4}");
    }
    let s5 = load::once(addr, &call(S5, json!({}), Some(root))).await?;
    let total = s5["data"]["me"]["teamStats"]["totalMembers"]
        .as_u64()
        .unwrap_or(0);
    if total as usize != args.descendants {
        bail!(
            "S5 answer is wrong: {total} members, expected {}",
            args.descendants
        );
    }
    // The first shopper's newest past order, as the API reads it back.
    if args.orders > 0
        && let Some(shopper) = shoppers.first()
    {
        let q =
            "{ me { orders(first: 1) { edges { node { status total lines { quantity } } } } } }";
        let v = load::once(addr, &call(q, json!({}), Some(shopper))).await?;
        let node = &v["data"]["me"]["orders"]["edges"][0]["node"];
        if node["status"] != "COMPLETED" || node["lines"][0]["quantity"] != 1 {
            bail!("the order history reads back wrong: {v}");
        }
    }
    let s1 = load::once(addr, &call(S1, json!({}), None)).await?;
    if s1["data"]["products"]["edges"]
        .as_array()
        .map_or(0, Vec::len)
        != 50
    {
        bail!("S1 answer is wrong: {s1}");
    }
    Ok(())
}

/// S14's board must be full, in order, and S14-rank's member on it, before either is timed.
async fn check_boards(addr: std::net::SocketAddr, token: &str) -> anyhow::Result<()> {
    let v = load::once(addr, &call(S14, json!({}), None)).await?;
    let entries = v["data"]["leaderboard"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let amounts: Vec<rust_decimal::Decimal> = entries
        .iter()
        .filter_map(|e| e["amount"].as_str()?.parse().ok())
        .collect();
    if entries.len() != 100
        || amounts.len() != 100
        || amounts.windows(2).any(|w| w[0] < w[1])
        || entries
            .iter()
            .any(|e| !e["name"].as_str().is_some_and(|n| n.ends_with("**")))
    {
        bail!("S14 answer is wrong: {v}");
    }
    let r = load::once(addr, &call(S14_RANK, json!({}), Some(token))).await?;
    if r["data"]["me"]["rank"]["rank"]
        .as_u64()
        .is_none_or(|n| n <= 100)
    {
        bail!("S14-rank answer is wrong: {r}");
    }
    Ok(())
}

async fn wait_for_subscriptions(addr: std::net::SocketAddr, n: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let text = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let active = text
            .lines()
            .find_map(|l| l.strip_prefix("pushhand_ws_subscriptions "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if active as usize >= n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the idle subscriptions never all registered")
}

/// CPU model and count, for the report.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores")
}
