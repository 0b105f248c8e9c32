//! The response cache of anonymous catalog reads: hits are the miss's bytes, catalog changes
//! show on the very next request (on every instance sharing Redis), and nothing personalised,
//! failed or mutating is ever stored or served from it.

use std::time::Duration;

use entity::sku;
use pushhand::events::Event;
use pushhand::graphql::ids::Kind;
use pushhand::service::members::CliRole;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::fixtures::{self, gid};
use crate::helpers::{TestApp, error_code, without_redis};

/// The product card of the listing: status, stock and the passport are all public.
const LIST: &str = "query($first: Int) { products(first: $first) { edges { node { id name status minPrice skus { id name stock } curation { passed stages { stage result } } } } } }";

/// The same card with the push-hand's personalised fields.
const PERSONAL: &str = "query($first: Int) { products(first: $first) { edges { node { id estimatedEarning rebateRate } } } }";

const STAGES: [&str; 5] = [
    "QUALIFICATION_REVIEW",
    "INSPECTION_REPORT",
    "FACTORY_AUDIT",
    "SCENARIO_TEST",
    "INTERNAL_TEST",
];

/// POSTs a raw JSON body (so tests control the bytes, key order included); returns the
/// `content-type` and the body bytes.
async fn post(app: &TestApp, token: Option<&str>, body: String) -> (String, Vec<u8>) {
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request sent");
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (content_type, resp.bytes().await.expect("body").to_vec())
}

fn body(query: &str, variables: Value) -> String {
    json!({ "query": query, "variables": variables }).to_string()
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON body")
}

/// `[hit, miss, bypass]` so far.
async fn outcomes(app: &TestApp) -> [f64; 3] {
    let mut out = [0.0; 3];
    for (i, o) in ["hit", "miss", "bypass"].into_iter().enumerate() {
        out[i] = app
            .metric(&format!("pushhand_response_cache_total{{outcome=\"{o}\"}}"))
            .await;
    }
    out
}

async fn errors(app: &TestApp) -> f64 {
    app.metric("pushhand_response_cache_total{outcome=\"error\"}")
        .await
}

/// The anonymous listing of the first 10 products.
async fn listing(app: &TestApp) -> Value {
    let (_, bytes) = post(app, None, body(LIST, json!({ "first": 10 }))).await;
    let v = parse(&bytes);
    assert!(v.get("errors").is_none(), "unexpected errors: {v:#}");
    v["data"].clone()
}

/// Reads the listing twice and checks the second read was a hit (so the next read after a
/// change would be served stale if the change did not invalidate).
async fn warm(app: &TestApp) -> Value {
    let first = listing(app).await;
    let hits = outcomes(app).await[0];
    let second = listing(app).await;
    assert_eq!(first, second);
    assert_eq!(
        outcomes(app).await[0],
        hits + 1.0,
        "the second read is a hit"
    );
    second
}

fn ids(listing: &Value) -> Vec<String> {
    listing["products"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The stock of SKU `sku` (global ID) in a listing.
fn stock(listing: &Value, sku: &str) -> i64 {
    listing["products"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .flat_map(|e| e["node"]["skus"].as_array().expect("skus").iter())
        .find(|s| s["id"] == json!(sku))
        .and_then(|s| s["stock"].as_i64())
        .expect("the SKU is listed")
}

/// The first SKU (标准, stock 100 in the fixture) of the listing's first product.
fn first_sku(listing: &Value) -> String {
    listing["products"]["edges"][0]["node"]["skus"][0]["id"]
        .as_str()
        .expect("sku id")
        .to_owned()
}

const ORDER: &str =
    "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id total lines { id } } }";

async fn place_order(app: &TestApp, token: &str, sku: &str, quantity: i32) -> Value {
    app.data_as(
        token,
        ORDER,
        json!({ "i": { "lines": [{ "skuId": sku, "quantity": quantity }] } }),
    )
    .await["placeOrder"]
        .clone()
}

const UNPUBLISH: &str =
    "mutation($p: ID!) { unpublishProduct(productId: $p, reason: \"recall\") { status } }";

async fn set_stock_behind_the_apps_back(app: &TestApp, sku_gid: &str, stock: i32) {
    let id = fixtures::uuid_of(sku_gid);
    sku::Entity::update_many()
        .col_expr(sku::Column::Stock, Expr::value(stock))
        .filter(sku::Column::Id.eq(id))
        .exec(app.db())
        .await
        .expect("update stock");
}

#[tokio::test]
async fn a_repeated_anonymous_read_is_a_byte_identical_hit() {
    let app = TestApp::spawn().await;
    fixtures::catalog(app.db(), 3).await;

    let request = body(LIST, json!({ "first": 10 }));
    let (miss_type, miss) = post(&app, None, request.clone()).await;
    assert_eq!(outcomes(&app).await, [0.0, 1.0, 0.0]);
    let statements = app.statements().await;
    let (hit_type, hit) = post(&app, None, request.clone()).await;
    assert_eq!(outcomes(&app).await, [1.0, 1.0, 0.0]);
    assert_eq!(app.statements().await, statements, "a hit runs no SQL");
    assert_eq!(hit, miss, "a hit is the miss's body, byte for byte");
    assert_eq!(hit_type, miss_type);
    assert_eq!(hit_type, "application/graphql-response+json");
    assert_eq!(ids(&parse(&hit)["data"]).len(), 3);

    // Other whitespace, commas and comments make the same document, hence the same entry.
    let spaced = format!(
        "# the catalog listing\n  {}  ,\n",
        LIST.replace(' ', "\n\t ,  ")
    );
    let (_, same) = post(&app, None, body(&spaced, json!({ "first": 10 }))).await;
    assert_eq!(same, miss);
    assert_eq!(outcomes(&app).await, [2.0, 1.0, 0.0]);

    // GET shares the entry.
    let got = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", LIST), ("variables", "{\"first\":10}")])
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(got.as_ref(), miss.as_slice());
    assert_eq!(outcomes(&app).await, [3.0, 1.0, 0.0]);

    // Variables in another order are the same variables; other values are another entry.
    let sorted = "query($first: Int, $sort: ProductSort) { products(first: $first, sort: $sort) { edges { node { id minPrice } } } }";
    let q = serde_json::to_string(sorted).expect("string");
    let (_, a) = post(
        &app,
        None,
        format!(r#"{{"query":{q},"variables":{{"first":2,"sort":"PRICE_ASC"}}}}"#),
    )
    .await;
    let (_, b) = post(
        &app,
        None,
        format!(r#"{{"variables":{{"sort":"PRICE_ASC","first":2}},"query":{q}}}"#),
    )
    .await;
    assert_eq!(a, b);
    assert_eq!(outcomes(&app).await, [4.0, 2.0, 0.0]);
    let (_, c) = post(
        &app,
        None,
        format!(r#"{{"query":{q},"variables":{{"first":2,"sort":"PRICE_DESC"}}}}"#),
    )
    .await;
    assert_ne!(a, c, "another sort is another answer");
    assert_eq!(outcomes(&app).await, [4.0, 3.0, 0.0]);

    // A write behind the app's back (no bump) is not seen: the cache answers. The bump every
    // write path makes is what shows it.
    let sku = first_sku(&parse(&miss)["data"]);
    set_stock_behind_the_apps_back(&app, &sku, 7).await;
    let (_, stale) = post(&app, None, request.clone()).await;
    assert_eq!(stale, miss, "served from the cache");
    app.state.events.publish(vec![Event::catalog(None)]).await;
    let (_, fresh) = post(&app, None, request).await;
    assert_eq!(stock(&parse(&fresh)["data"], &sku), 7);
    assert_eq!(outcomes(&app).await, [5.0, 4.0, 0.0]);
}

/// POSTs `body` anonymously with `Accept-Encoding: <accept>` (none if empty); returns the
/// `content-encoding` and `vary` headers and the body as it came.
async fn post_encoded(app: &TestApp, accept: &str, body: String) -> (String, String, Vec<u8>) {
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body);
    if !accept.is_empty() {
        req = req.header("accept-encoding", accept);
    }
    let resp = req.send().await.expect("request sent");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    // Only `Vary: accept-encoding` matters here (CORS adds its own `Vary` values).
    let vary = resp
        .headers()
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.eq_ignore_ascii_case("accept-encoding"))
        .collect::<Vec<_>>()
        .join(", ");
    let encoding = header("content-encoding");
    (encoding, vary, resp.bytes().await.expect("body").to_vec())
}

fn inflate(gzip: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gzip), &mut out)
        .expect("valid gzip");
    out
}

#[tokio::test]
async fn cached_answers_go_out_compressed_to_clients_that_accept_gzip() {
    let app = TestApp::spawn().await;
    fixtures::catalog(app.db(), 10).await;
    let request = body(LIST, json!({ "first": 10 }));

    // The miss that stores the answer sends it compressed, as every hit then does.
    let (encoding, vary, miss) = post_encoded(&app, "gzip, deflate, br", request.clone()).await;
    assert_eq!(
        (encoding.as_str(), vary.as_str()),
        ("gzip", "accept-encoding")
    );
    let (encoding, _, hit) = post_encoded(&app, "br;q=1, gzip;q=0.8", request.clone()).await;
    assert_eq!(encoding, "gzip");
    assert_eq!(hit, miss, "a compressed hit is the miss's bytes");
    assert_eq!(outcomes(&app).await, [1.0, 1.0, 0.0]);

    // Clients that do not accept gzip get the same answer as JSON, from the same entry.
    let (encoding, vary, plain) = post_encoded(&app, "", request.clone()).await;
    assert_eq!((encoding.as_str(), vary.as_str()), ("", "accept-encoding"));
    // Brotli only: compressed on the way out by the router (not the stored gzip twice).
    let (encoding, _, refused) = post_encoded(&app, "gzip;q=0, br", request.clone()).await;
    assert_eq!(encoding, "br");
    assert_eq!(crate::browser_http::unbrotli(&refused), plain);
    assert_eq!(outcomes(&app).await, [3.0, 1.0, 0.0]);
    assert_eq!(inflate(&hit), plain);
    assert_eq!(ids(&parse(&plain)["data"]).len(), 10);
    assert!(
        hit.len() * 2 < plain.len(),
        "{} bytes compressed, {} as JSON",
        hit.len(),
        plain.len()
    );

    // After a change, the next answer is the new one, compressed too.
    let sku = first_sku(&parse(&plain)["data"]);
    set_stock_behind_the_apps_back(&app, &sku, 7).await;
    app.state.events.publish(vec![Event::catalog(None)]).await;
    let (encoding, _, fresh) = post_encoded(&app, "gzip", request).await;
    assert_eq!(encoding, "gzip");
    assert_eq!(stock(&parse(&inflate(&fresh))["data"], &sku), 7);

    // Small answers are not worth compressing; answers executed every time are compressed
    // by the router on the way out.
    let (encoding, vary, small) =
        post_encoded(&app, "gzip", body("{ __typename }", json!({}))).await;
    assert_eq!((encoding.as_str(), vary.as_str()), ("", "accept-encoding"));
    assert_eq!(parse(&small)["data"]["__typename"], "Query");
    // The listing with introspection at its root bypasses the cache: it runs every time.
    let uncached = format!(
        "{} __schema {{ queryType {{ name }} }} }}",
        LIST.strip_suffix('}').expect("a closing brace")
    );
    let (encoding, vary, executed) =
        post_encoded(&app, "gzip", body(&uncached, json!({ "first": 10 }))).await;
    assert_eq!(
        (encoding.as_str(), vary.as_str()),
        ("gzip", "accept-encoding")
    );
    let executed = parse(&inflate(&executed));
    assert_eq!(ids(&executed["data"]).len(), 10, "{executed:#}");
    assert!(executed.to_string().len() > 1024);
}

#[tokio::test]
async fn catalog_changes_through_the_api_show_on_the_very_next_request() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 2).await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let (merchant, _) = app.user("merchant@example.com", CliRole::Merchant).await;
    let (buyer, _) = app.user("buyer@example.com", CliRole::PushHand).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;

    // Unpublishing: gone from the listing and from `product(id:)` at once.
    let before = warm(&app).await;
    let listed = ids(&before);
    assert_eq!(listed.len(), 2);
    let one = body(
        "query($id: ID!) { product(id: $id) { id name } }",
        json!({ "id": listed[0] }),
    );
    post(&app, None, one.clone()).await;
    let (_, cached) = post(&app, None, one.clone()).await;
    assert_eq!(parse(&cached)["data"]["product"]["id"], json!(listed[0]));
    app.data_as(&curator, UNPUBLISH, json!({ "p": listed[0] }))
        .await;
    assert_eq!(ids(&listing(&app).await), vec![listed[1].clone()]);
    let (_, gone) = post(&app, None, one).await;
    assert_eq!(error_code(&parse(&gone)), Some("NOT_FOUND"));

    // Checkout reserves stock; a refund returns it.
    let sku = first_sku(&warm(&app).await);
    let order = place_order(&app, &buyer, &sku, 3).await;
    assert_eq!(stock(&listing(&app).await, &sku), 97);
    warm(&app).await;
    let paid = app
        .data_as(
            &admin,
            "mutation($i: ConfirmPaymentInput!) { confirmPayment(input: $i) { status } }",
            json!({ "i": { "orderId": order["id"], "paymentReference": "ref-1", "amount": order["total"] } }),
        )
        .await;
    assert_eq!(paid["confirmPayment"]["status"], json!("PAID"));
    app.data_as(
        &admin,
        "mutation($l: ID!) { refundOrderLine(orderLineId: $l) { status } }",
        json!({ "l": order["lines"][0]["id"] }),
    )
    .await;
    assert_eq!(stock(&listing(&app).await, &sku), 100);

    // Publishing through the gate: every curation record drops the cached answers (the
    // passport is public), and the published product shows at once.
    let brand = app
        .data_as(
            &merchant,
            "mutation { createBrand(name: \"Fresh\") { id } }",
            json!({}),
        )
        .await["createBrand"]["id"]
        .clone();
    let submitted = app
        .data_as(
            &merchant,
            "mutation($i: SubmitProductInput!) { submitProduct(input: $i) { id } }",
            json!({ "i": { "brandId": brand, "categoryId": gid(Kind::Category, f.leaves[0].id),
                           "name": "新品", "skus": [{ "name": "标准", "price": "99.00", "stock": 10 }],
                           "rebateRate": "0.10", "teamRebateRate": "0.05" } }),
        )
        .await["submitProduct"]["id"]
        .clone();
    for stage in STAGES {
        warm(&app).await;
        let [hits, misses, _] = outcomes(&app).await;
        app.data_as(
            &curator,
            "mutation($i: CurationStageInput!) { recordCurationStage(input: $i) { passed } }",
            json!({ "i": { "productId": submitted, "stage": stage, "result": "PASS" } }),
        )
        .await;
        listing(&app).await;
        assert_eq!(
            outcomes(&app).await[..2],
            [hits, misses + 1.0],
            "{stage}: the read after a curation record is a miss"
        );
    }
    app.data_as(
        &curator,
        "mutation($i: CurationScoreInput!) { scoreProduct(input: $i) { passed } }",
        json!({ "i": { "productId": submitted, "essentialNeed": 5, "newPainPoint": 4, "longevity": 4,
                       "qualityAndSupply": 4, "highQuality": true, "highDesign": true,
                       "highValue": true, "euExportGrade": false } }),
    )
    .await;
    warm(&app).await;
    app.data_as(
        &curator,
        "mutation($p: ID!) { publishProduct(productId: $p) { status } }",
        json!({ "p": submitted }),
    )
    .await;
    let after = listing(&app).await;
    assert!(
        ids(&after).contains(&submitted.as_str().expect("id").to_owned()),
        "published product listed at once: {after:#}"
    );
    let card = after["products"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|e| e["node"]["id"] == submitted)
        .expect("listed");
    assert_eq!(card["node"]["curation"]["passed"], json!(true));
    assert_eq!(
        card["node"]["curation"]["stages"].as_array().map(Vec::len),
        Some(5)
    );
}

#[tokio::test]
async fn stock_released_by_expiring_orders_shows_at_once() {
    // A TTL far beyond the test: only the expiry job's bump can show the stock.
    let app = TestApp::spawn_with(&[
        "--job-interval-seconds",
        "1",
        "--response-cache-ttl-seconds",
        "600",
    ])
    .await;
    fixtures::catalog(app.db(), 1).await;
    let (buyer, _) = app.user("buyer@example.com", CliRole::PushHand).await;
    let sku = first_sku(&warm(&app).await);
    place_order(&app, &buyer, &sku, 5).await;
    assert_eq!(stock(&warm(&app).await, &sku), 95);

    app.clock.advance(chrono::Duration::minutes(31));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if stock(&listing(&app).await, &sku) == 100 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the expired order's stock never showed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn personalised_reads_never_fill_or_hit_the_cache() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 2).await;
    let (push_hand, _) = app.user("ph@example.com", CliRole::PushHand).await;
    let request = body(PERSONAL, json!({ "first": 5 }));
    // Signing in is an anonymous mutation: count from here.
    let base = outcomes(&app).await;
    let since = |now: [f64; 3]| [now[0] - base[0], now[1] - base[1], now[2] - base[2]];
    let earning = |v: &Value| v["data"]["products"]["edges"][0]["node"]["estimatedEarning"].clone();

    // The push-hand's reads: always executed, never stored.
    for _ in 0..2 {
        let (_, bytes) = post(&app, Some(&push_hand), request.clone()).await;
        assert!(
            earning(&parse(&bytes)).is_string(),
            "a push-hand sees 预估赚"
        );
    }
    assert_eq!(since(outcomes(&app).await), [0.0, 0.0, 2.0]);

    // So the next anonymous read, the same document, is a miss and shows nothing personal.
    let (_, anon) = post(&app, None, request.clone()).await;
    assert_eq!(earning(&parse(&anon)), Value::Null);
    assert_eq!(
        parse(&anon)["data"]["products"]["edges"][0]["node"]["rebateRate"],
        Value::Null
    );
    assert_eq!(since(outcomes(&app).await), [0.0, 1.0, 2.0]);
    let (_, again) = post(&app, None, request.clone()).await;
    assert_eq!(again, anon);
    assert_eq!(since(outcomes(&app).await), [1.0, 1.0, 2.0]);

    // With the anonymous answer stored, the push-hand still gets their own.
    let (_, mine) = post(&app, Some(&push_hand), request.clone()).await;
    assert!(earning(&parse(&mine)).is_string());
    assert_ne!(mine, anon);
    // A rejected token is not anonymous either: it bypasses.
    let (_, rejected) = post(&app, Some("not-a-token"), request).await;
    assert_ne!(rejected, Vec::<u8>::new());
    assert_eq!(since(outcomes(&app).await), [1.0, 1.0, 4.0]);

    // Insiders' reads of drafts are never stored: the anonymous read stays NOT_FOUND.
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let draft = body(
        "query($id: ID!) { product(id: $id) { id status } }",
        json!({ "id": gid(Kind::Product, f.draft) }),
    );
    let (_, seen) = post(&app, Some(&curator), draft.clone()).await;
    assert_eq!(
        parse(&seen)["data"]["product"]["status"],
        json!("IN_CURATION")
    );
    let (_, hidden) = post(&app, None, draft).await;
    assert_eq!(error_code(&parse(&hidden)), Some("NOT_FOUND"));
    assert_eq!(outcomes(&app).await[0], 1.0, "no hit");
}

#[tokio::test]
async fn me_mutations_introspection_and_failed_reads_are_never_stored() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 1).await;
    let draft = gid(Kind::Product, f.draft);

    let bypassed = [
        "{ me { id } }",
        "{ categories { id } me { id } }",
        "{ __schema { queryType { name } } }",
        "mutation { createBrand(name: \"x\") { id } }",
        "{ products(first: 1) { edges { node { id } } } ",
    ];
    for q in bypassed {
        for _ in 0..2 {
            post(&app, None, body(q, json!({}))).await;
        }
    }
    assert_eq!(outcomes(&app).await, [0.0, 0.0, 10.0]);

    // Answers with errors, even partial ones, are looked up but never stored.
    let failing = [
        format!("{{ product(id: \"{draft}\") {{ id }} }}"),
        format!("{{ categories {{ id }} product(id: \"{draft}\") {{ id }} }}"),
        "{ product(id: \"not-an-id\") { id } }".to_owned(),
    ];
    for q in &failing {
        for _ in 0..2 {
            let (_, bytes) = post(&app, None, body(q, json!({}))).await;
            assert!(parse(&bytes).get("errors").is_some(), "{q}");
        }
    }
    assert_eq!(outcomes(&app).await, [0.0, 6.0, 10.0]);

    // `__typename` is allowed with the catalog fields.
    for _ in 0..2 {
        post(
            &app,
            None,
            body("{ __typename categories { id } }", json!({})),
        )
        .await;
    }
    assert_eq!(outcomes(&app).await, [1.0, 7.0, 10.0]);
}

#[tokio::test]
async fn instances_sharing_redis_share_entries_and_invalidation() {
    if without_redis() {
        return;
    }
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_sharing(&a, &[]).await;
    fixtures::catalog(a.db(), 2).await;
    let (curator, _) = a.user("curator@example.com", CliRole::Curator).await;
    let (buyer, _) = a.user("buyer@example.com", CliRole::PushHand).await;

    // A fills, B hits the same entry.
    let request = body(LIST, json!({ "first": 10 }));
    let (_, filled) = post(&a, None, request.clone()).await;
    let (_, shared) = post(&b, None, request.clone()).await;
    assert_eq!(shared, filled);
    assert_eq!(outcomes(&b).await, [1.0, 0.0, 0.0], "B served A's answer");
    let listed = ids(&parse(&filled)["data"]);

    // A change on B shows on A at once.
    warm(&a).await;
    b.data_as(&curator, UNPUBLISH, json!({ "p": listed[0] }))
        .await;
    assert_eq!(ids(&listing(&a).await), vec![listed[1].clone()]);
    let sku = first_sku(&warm(&a).await);
    place_order(&b, &buyer, &sku, 2).await;
    assert_eq!(stock(&listing(&a).await, &sku), 98);

    // Another database on the same Redis never sees these answers.
    let c = TestApp::spawn().await;
    fixtures::catalog(c.db(), 2).await;
    let (_, own) = post(&c, None, request).await;
    assert_eq!(outcomes(&c).await, [0.0, 1.0, 0.0]);
    let own = ids(&parse(&own)["data"]);
    assert_eq!(own.len(), 2);
    assert!(own.iter().all(|id| !listed.contains(id)));
}

#[tokio::test]
async fn an_unreachable_redis_never_fails_a_read_nor_serves_a_stale_one() {
    let app = TestApp::spawn_with(&["--redis-url", "redis://127.0.0.1:1"]).await;
    fixtures::catalog(app.db(), 2).await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let first = listing(&app).await;
    assert_eq!(ids(&first).len(), 2);
    assert_eq!(listing(&app).await, first);
    app.data_as(&curator, UNPUBLISH, json!({ "p": ids(&first)[0] }))
        .await;
    assert_eq!(ids(&listing(&app).await).len(), 1);
    assert_eq!(
        outcomes(&app).await[0],
        0.0,
        "nothing served from a cache that is down"
    );
    assert!(
        errors(&app).await >= 4.0,
        "failed look-ups and the failed bump are counted"
    );
}

#[tokio::test]
async fn the_cache_can_be_turned_off_and_entries_expire() {
    let off = TestApp::spawn_with(&["--response-cache", "false"]).await;
    fixtures::catalog(off.db(), 1).await;
    let sku = first_sku(&listing(&off).await);
    set_stock_behind_the_apps_back(&off, &sku, 7).await;
    assert_eq!(stock(&listing(&off).await, &sku), 7, "every read runs");
    assert_eq!(outcomes(&off).await, [0.0, 0.0, 0.0]);

    let short = TestApp::spawn_with(&["--response-cache-ttl-seconds", "1"]).await;
    fixtures::catalog(short.db(), 1).await;
    let sku = first_sku(&warm(&short).await);
    set_stock_behind_the_apps_back(&short, &sku, 7).await;
    assert_eq!(stock(&listing(&short).await, &sku), 100, "cached");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(
        stock(&listing(&short).await, &sku),
        7,
        "expired after its TTL"
    );

    let err = pushhand::config::from_args(["pushhand", "--response-cache-ttl-seconds", "0"])
        .expect("parses")
        .validate()
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains("PUSHHAND_RESPONSE_CACHE_TTL_SECONDS"),
        "{err}"
    );
}

/// Cache hits read their version through [`CoalescedReads`]: many reads share one `GET`, yet
/// a read never returns a value older than a write that finished before it began.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coalesced_version_reads_share_gets_and_see_every_finished_write() {
    use pushhand::redis_conn::LazyRedis;
    use pushhand::redis_reads::CoalescedReads;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    if without_redis() {
        return;
    }
    let url = crate::helpers::redis_url().expect("Redis URL");
    let conn = LazyRedis::new(
        redis::Client::open(url).expect("Redis URL"),
        Duration::from_secs(2),
    );
    let key = format!("pushhand:test:coalesced:{}", uuid::Uuid::now_v7());
    let mut set = redis::cmd("SET");
    set.arg(&key).arg(0).arg("EX").arg(60);
    conn.run::<()>(set).await.expect("SET");

    // The reads go over their own connection: one shared with the writes would order each
    // read after the writes sent before it, whatever the batching.
    let read_conn = LazyRedis::new(
        redis::Client::open(crate::helpers::redis_url().expect("Redis URL")).expect("Redis URL"),
        Duration::from_secs(2),
    );
    let reads = Arc::new(CoalescedReads::new(read_conn));
    // The last value whose INCR has returned.
    let written = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..32 {
        let (reads, written, done, key) =
            (reads.clone(), written.clone(), done.clone(), key.clone());
        readers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !done.load(Ordering::SeqCst) {
                let floor = written.load(Ordering::SeqCst);
                let raw = reads.get(&key).await.expect("GET").expect("the key exists");
                let seen: u64 = std::str::from_utf8(&raw)
                    .expect("UTF-8")
                    .parse()
                    .expect("a number");
                assert!(seen >= floor, "read {seen} after {floor} was written");
                n += 1;
            }
            n
        }));
    }
    for _ in 0..1000 {
        let mut incr = redis::cmd("INCR");
        incr.arg(&key);
        let now: u64 = conn.run(incr).await.expect("INCR");
        written.store(now, Ordering::SeqCst);
        tokio::task::yield_now().await;
    }
    done.store(true, Ordering::SeqCst);
    let mut total = 0;
    for r in readers {
        total += r.await.expect("reader");
    }
    assert!(total > 1000, "{total} reads");
    assert!(
        reads.sent() < total,
        "{} GETs for {total} reads: nothing was shared",
        reads.sent()
    );
    let mut del = redis::cmd("DEL");
    del.arg(&key);
    conn.run::<i64>(del).await.expect("DEL");
}
