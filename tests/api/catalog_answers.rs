//! Anonymous catalog answers from the response cache: after every write that changes what
//! they show — a brand, a submission, curation stages and scores, publishing through the
//! API and through the service as the command line would, stock taken by an order and given
//! back by a cancellation beyond the unpaid cap, an expiry, the buyer's cancellation or a
//! refund, units sold written, the seed — the cached answer of every catalog document equals
//! the same document computed afresh. A write that changed an answer without publishing its
//! change fails here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Duration;
use entity::member;
use pushhand::events::{Event, Events, Kind as EventKind};
use pushhand::graphql::ids::Kind;
use pushhand::service::audit::Actor;
use pushhand::service::checkouts::Checkouts;
use pushhand::service::members::CliRole;
use pushhand::service::orders::{self, LineRequest, OrderLimits};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::earnings::{another_product, pay};
use crate::fixtures::{self, gid};
use crate::helpers::{TestApp, error_code};

/// A page of cards with everything a write moves: status, stock, units sold, prices and
/// the passport.
const LIST: &str = "query($first: Int) { products(first: $first) { edges { cursor node { id name status salesCount minPrice maxPrice
  skus { id name price stock } brand { name } curation { passed badges nextStage stages { stage result } } } }
  pageInfo { hasNextPage endCursor } } }";
const BY_SALES: &str =
    "{ products(first: 10, sort: SALES_DESC) { edges { node { id salesCount skus { stock } } } } }";
const DETAIL: &str = "query($id: ID!) { product(id: $id) { id name status salesCount minPrice
  skus { id stock } curation { passed badges stages { stage result } scores { essentialNeed longevity highDesign } } } }";
const CATEGORIES: &str = "{ categories { id nameZh children { id nameZh } } }";

pub(crate) const STAGES: [&str; 5] = [
    "QUALIFICATION_REVIEW",
    "INSPECTION_REPORT",
    "FACTORY_AUDIT",
    "SCENARIO_TEST",
    "INTERNAL_TEST",
];

/// One catalog document and its variables.
type Doc = (&'static str, Value);

/// The documents compared: the listing, the best-sellers, the categories, and the page of
/// each product named (a product not listed yet answers `NOT_FOUND`, never stored).
fn documents(products: &[Uuid]) -> Vec<Doc> {
    let mut docs = vec![
        (LIST, json!({ "first": 50 })),
        (BY_SALES, json!({})),
        (CATEGORIES, json!({})),
    ];
    for p in products {
        docs.push((DETAIL, json!({ "id": gid(Kind::Product, *p) })));
    }
    docs
}

/// Asks `doc` anonymously: from the cache (filling it on a miss), or `fresh`, executed and
/// never stored (`x-pushhand-cost`, whose report is then dropped).
async fn ask(app: &TestApp, doc: &Doc, fresh: bool) -> Value {
    ask_at(&app.client, &app.url("/graphql"), doc, fresh).await
}

async fn ask_at(
    client: &reqwest::Client,
    url: &str,
    (query, variables): &Doc,
    fresh: bool,
) -> Value {
    let mut req = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if fresh {
        req = req.header("x-pushhand-cost", "1");
    }
    let mut answer: Value = req
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON answer");
    if let Some(answer) = answer.as_object_mut() {
        answer.remove("extensions");
    }
    answer
}

async fn hits(app: &TestApp) -> f64 {
    app.metric("pushhand_response_cache_total{outcome=\"hit\"}")
        .await
}

/// Asks every document, filling the cache.
async fn prime(app: &TestApp, docs: &[Doc]) {
    for doc in docs {
        ask(app, doc, false).await;
    }
}

/// The cached answer of each document equals the fresh one; returns how many were hits.
async fn agree(app: &TestApp, step: &str, docs: &[Doc]) -> f64 {
    let before = hits(app).await;
    for doc in docs {
        let cached = ask(app, doc, false).await;
        let fresh = ask(app, doc, true).await;
        assert_eq!(cached, fresh, "{} after {step}", doc.0);
    }
    hits(app).await - before
}

/// Primes every document, runs `write`, and compares.
async fn after<F: std::future::Future>(
    app: &TestApp,
    step: &str,
    docs: &[Doc],
    write: F,
) -> F::Output {
    prime(app, docs).await;
    let out = write.await;
    agree(app, step, docs).await;
    out
}

/// An app whose cached answers outlive the test and whose background jobs stay away: only
/// a write's own event can show its change.
async fn spawn() -> TestApp {
    TestApp::spawn_with(&[
        "--response-cache-ttl-seconds",
        "600",
        "--job-interval-seconds",
        "3600",
        "--units-sold-interval-ms",
        "3600000",
    ])
    .await
}

/// How many stages of `product`'s passport a curator sees recorded (through the passport
/// cache, which each record must have dropped).
async fn stages_recorded(app: &TestApp, curator: &str, product: &Value) -> usize {
    let seen = app
        .data_as(
            curator,
            "query($id: ID!) { product(id: $id) { curation { stages { result } } } }",
            json!({ "id": product }),
        )
        .await;
    seen["product"]["curation"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter(|s| !s["result"].is_null())
        .count()
}

fn card<'a>(list: &'a Value, product: &Value) -> Option<&'a Value> {
    list["data"]["products"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|e| e["node"]["id"] == *product)
        .map(|e| &e["node"])
}

#[tokio::test]
async fn catalog_answers_follow_every_write_they_show() {
    let app = spawn().await;
    let f = fixtures::catalog(app.db(), 3).await;
    let (_, sku) = another_product(&app, &f, 1000, false).await;
    let (curator, curator_row) = app.user("curator@example.com", CliRole::Curator).await;
    let (merchant, _) = app.user("merchant@example.com", CliRole::Merchant).await;
    let (buyer, _) = app.user("buyer@example.com", CliRole::PushHand).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let mut listed: Vec<Uuid> = f.published.keys().copied().collect();
    listed.sort();

    let docs = documents(&listed);
    // The set-up's own events (with Redis, heard back from the bus) may still be on their
    // way under load and drop answers primed before they land: prime again until a round
    // with nothing written in between is all hits.
    let mut rounds = 0;
    loop {
        prime(&app, &docs).await;
        if agree(&app, "nothing", &docs).await == docs.len() as f64 {
            break;
        }
        rounds += 1;
        assert!(rounds < 50, "unchanged answers are hits");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // A brand and a submission: nothing an anonymous shopper sees, yet published.
    let brand = after(&app, "a brand", &docs, async {
        app.data_as(
            &merchant,
            "mutation { createBrand(name: \"Fresh\") { id } }",
            json!({}),
        )
        .await["createBrand"]["id"]
            .clone()
    })
    .await;
    let submitted = after(&app, "a submission", &docs, async {
        app.data_as(
            &merchant,
            "mutation($i: SubmitProductInput!) { submitProduct(input: $i) { id } }",
            json!({ "i": { "brandId": brand, "categoryId": gid(Kind::Category, f.leaves[0].id),
                           "name": "新品", "skus": [{ "name": "标准", "price": "99.00", "stock": 10 }],
                           "rebateRate": "0.10", "teamRebateRate": "0.05" } }),
        )
        .await["submitProduct"]["id"]
            .clone()
    })
    .await;
    let new_id = fixtures::uuid_of(submitted.as_str().expect("id"));
    let docs = documents(&[listed.clone(), vec![new_id]].concat());

    // The curator reads the draft's passport (cached), then walks it through the stages:
    // each record drops the cached passport as well as the catalog answers.
    assert_eq!(stages_recorded(&app, &curator, &submitted).await, 0);
    for (n, stage) in STAGES.into_iter().enumerate() {
        after(&app, stage, &docs, async {
            app.data_as(
                &curator,
                "mutation($i: CurationStageInput!) { recordCurationStage(input: $i) { passed } }",
                json!({ "i": { "productId": submitted, "stage": stage, "result": "PASS" } }),
            )
            .await
        })
        .await;
        assert_eq!(stages_recorded(&app, &curator, &submitted).await, n + 1);
    }
    after(&app, "a score", &docs, async {
        app.data_as(
            &curator,
            "mutation($i: CurationScoreInput!) { scoreProduct(input: $i) { passed } }",
            json!({ "i": { "productId": submitted, "essentialNeed": 5, "newPainPoint": 4, "longevity": 4,
                           "qualityAndSupply": 4, "highQuality": true, "highDesign": true,
                           "highValue": true, "euExportGrade": false } }),
        )
        .await
    })
    .await;
    after(&app, "publishing", &docs, async {
        app.data_as(
            &curator,
            "mutation($p: ID!) { publishProduct(productId: $p) { status } }",
            json!({ "p": submitted }),
        )
        .await
    })
    .await;
    let list = ask(&app, &docs[0], false).await;
    let published = card(&list, &submitted).expect("listed at once");
    assert_eq!(published["curation"]["passed"], json!(true), "{published}");

    // Unpublished through the API, published again through the service, as the command
    // line would: no resolver in between.
    after(&app, "unpublishing", &docs, async {
        app.data_as(
            &curator,
            "mutation($p: ID!) { unpublishProduct(productId: $p, reason: \"recall\") { status } }",
            json!({ "p": submitted }),
        )
        .await
    })
    .await;
    assert!(card(&ask(&app, &docs[0], false).await, &submitted).is_none());
    after(&app, "publishing through the service", &docs, async {
        let policy = &app.state.config.policy;
        pushhand::service::curation::publish_product(
            app.db(),
            &app.state.events,
            &Actor::new(curator_row.id, None),
            new_id,
            policy.min_criterion_score,
            policy.max_brands_per_category,
            app.clock_now(),
        )
        .await
        .map_err(anyhow::Error::from)
        .expect("published")
    })
    .await;
    assert!(card(&ask(&app, &docs[0], false).await, &submitted).is_some());

    // Stock taken by an order, and the order paid: units sold show once written.
    let sku_gid = gid(Kind::Sku, sku);
    let order = after(&app, "an order", &docs, async {
        app.data_as(
            &buyer,
            "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id total lines { id } } }",
            json!({ "i": { "lines": [{ "skuId": sku_gid, "quantity": 3 }] } }),
        )
        .await["placeOrder"]
            .clone()
    })
    .await;
    after(&app, "a payment", &docs, async {
        let paid = pay(
            &app,
            &admin,
            order["id"].as_str().expect("id"),
            "catalog-1",
            order["total"].as_str().expect("total"),
        )
        .await;
        assert!(paid.get("errors").is_none(), "{paid}");
    })
    .await;
    after(
        &app,
        "units sold written",
        &docs,
        app.state.write_units_sold(),
    )
    .await;

    // A refund gives the stock back, and takes the units back once written.
    after(&app, "a refund", &docs, async {
        app.data_as(
            &admin,
            "mutation($l: ID!, $q: Int) { refundOrderLine(orderLineId: $l, quantity: $q) { status } }",
            json!({ "l": order["lines"][0]["id"], "q": 2 }),
        )
        .await
    })
    .await;
    after(
        &app,
        "refunded units written",
        &docs,
        app.state.write_units_sold(),
    )
    .await;

    // An unpaid order expires: expiry through the service, as any job would run it.
    after(&app, "an order", &docs, async {
        app.data_as(
            &buyer,
            "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }",
            json!({ "i": { "lines": [{ "skuId": sku_gid, "quantity": 4 }] } }),
        )
        .await
    })
    .await;
    app.clock.advance(Duration::minutes(31));
    let expired = after(&app, "an expiry", &docs, async {
        orders::expire_unpaid(app.db(), &app.state.events, app.clock_now())
            .await
            .map_err(anyhow::Error::from)
            .expect("expiry runs")
    })
    .await;
    assert_eq!(expired, 1);

    // The buyer cancels an unpaid order: its stock is back at once.
    let unpaid = after(&app, "an order", &docs, async {
        app.data_as(
            &buyer,
            "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }",
            json!({ "i": { "lines": [{ "skuId": sku_gid, "quantity": 5 }] } }),
        )
        .await["placeOrder"]["id"]
            .clone()
    })
    .await;
    after(&app, "a cancellation", &docs, async {
        app.data_as(
            &buyer,
            "mutation($o: ID!) { cancelOrder(orderId: $o, reason: \"changed my mind\") { status } }",
            json!({ "o": unpaid }),
        )
        .await
    })
    .await;

    // Every answer is a hit again, showing what the database holds.
    let stock: i64 = ask(&app, &documents(&[])[0], true).await["data"]["products"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .flat_map(|e| e["node"]["skus"].as_array().expect("skus").iter())
        .find(|s| s["id"] == json!(sku_gid))
        .and_then(|s| s["stock"].as_i64())
        .expect("listed");
    assert_eq!(
        stock,
        1000 - 3 + 2,
        "the paid units kept, the refunded, expired and cancelled back"
    );
    assert_eq!(agree(&app, "nothing", &docs).await, docs.len() as f64);
}

/// Places a second order of the buyer the moment the first one says its stock moved, then
/// reads the listing anonymously: the first order, one too many now, cancels itself after
/// the listing was cached with its stock taken.
struct Meanwhile {
    client: reqwest::Client,
    url: String,
    checkouts: Checkouts,
    buyer: member::Model,
    sku: Uuid,
    now: chrono::DateTime<chrono::Utc>,
    fired: AtomicBool,
}

#[async_trait::async_trait]
impl pushhand::events::Listener for Meanwhile {
    async fn published(&self, batch: &[Event]) {
        if !batch.iter().any(|e| e.kind == EventKind::CatalogChanged)
            || self.fired.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let line = LineRequest {
            sku_id: self.sku,
            quantity: 2,
            share_code: None,
        };
        orders::place_order(
            &self.checkouts,
            &self.buyer,
            vec![line],
            Duration::minutes(30),
            self.now,
        )
        .await
        .map_err(anyhow::Error::from)
        .expect("the second order is placed");
        ask_at(
            &self.client,
            &self.url,
            &(LIST, json!({ "first": 50 })),
            false,
        )
        .await;
    }
}

#[tokio::test]
async fn stock_given_back_beyond_the_unpaid_cap_shows_at_once() {
    let app = spawn().await;
    let (_, sku) = crate::earnings::product(&app, 100, false).await;
    let (_, buyer) = app.user("buyer@example.com", CliRole::PushHand).await;
    let docs = documents(&[]);
    prime(&app, &docs).await;

    // The order goes through checkouts whose events also reach `Meanwhile`, after every
    // cache of the app has heard them.
    let meanwhile = Arc::new(Meanwhile {
        client: app.client.clone(),
        url: app.url("/graphql"),
        checkouts: app.state.checkouts.clone(),
        buyer: buyer.clone(),
        sku,
        now: app.clock_now(),
        fired: AtomicBool::new(false),
    });
    let events: Events = app.state.events.clone().with_listener(meanwhile.clone());
    let checkouts = Checkouts::new(app.db().clone(), events, app.state.metrics.clone());
    let line = LineRequest {
        sku_id: sku,
        quantity: 5,
        share_code: None,
    };
    let limits = OrderLimits {
        max_unpaid_orders: 1,
        max_units_per_sku: 50,
    };
    let refused = orders::place_order_as(
        &checkouts,
        &buyer,
        vec![line],
        None,
        limits,
        Duration::minutes(30),
        app.clock_now(),
    )
    .await
    .err()
    .map(|e| e.code());
    assert_eq!(
        refused,
        Some("TOO_MANY_UNPAID_ORDERS"),
        "refused by the cap once written"
    );
    assert!(meanwhile.fired.load(Ordering::SeqCst));
    agree(&app, "a cancellation beyond the cap", &docs).await;
    let list = ask(&app, &docs[0], false).await;
    let stocks: Vec<i64> = list["data"]["products"]["edges"][0]["node"]["skus"]
        .as_array()
        .expect("skus")
        .iter()
        .filter_map(|s| s["stock"].as_i64())
        .collect();
    assert_eq!(stocks, vec![98], "the second order's two units only");
    assert!(error_code(&list).is_none());
}

#[tokio::test]
async fn the_seed_shows_at_once() {
    let app = spawn().await;
    let docs = documents(&[]);
    prime(&app, &docs).await;
    let empty = ask(&app, &docs[0], false).await;
    assert_eq!(empty["data"]["products"]["edges"], json!([]));
    pushhand::seed::run_catalog_only(app.db(), &app.state.events)
        .await
        .map_err(anyhow::Error::from)
        .expect("seeded");
    agree(&app, "the seed", &docs).await;
    let seeded = ask(&app, &docs[0], false).await;
    assert_eq!(
        seeded["data"]["products"]["edges"].as_array().map(Vec::len),
        Some(50)
    );
}
