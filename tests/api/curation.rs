//! The listing gate: submissions, the five stages in order, rejection and resumption, scores,
//! publishing under the brand cap, the quality passport and who sees what of it, and the
//! passport cache (in-process and Redis, including Redis failing).

use pushhand::graphql::ids::Kind;
use pushhand::service::members::CliRole;
use serde_json::{Value, json};

use crate::fixtures::{self, Fixture, gid};
use crate::helpers::{TestApp, error_code, metric_value, redis_url};

pub(crate) const STAGES: [&str; 5] = [
    "QUALIFICATION_REVIEW",
    "INSPECTION_REPORT",
    "FACTORY_AUDIT",
    "SCENARIO_TEST",
    "INTERNAL_TEST",
];

pub(crate) struct Staff {
    pub(crate) merchant: String,
    pub(crate) brand: String,
    pub(crate) curator: String,
}

pub(crate) async fn staff(app: &TestApp, brand_name: &str) -> Staff {
    let (merchant, _) = app
        .user(&format!("m-{brand_name}@example.com"), CliRole::Merchant)
        .await;
    let (curator, _) = app
        .user(&format!("c-{brand_name}@example.com"), CliRole::Curator)
        .await;
    let brand = create_brand(app, &merchant, brand_name).await;
    Staff {
        merchant,
        brand,
        curator,
    }
}

pub(crate) async fn create_brand(app: &TestApp, merchant: &str, name: &str) -> String {
    let data = app
        .data_as(
            merchant,
            "mutation($n: String!) { createBrand(name: $n) { id name } }",
            json!({ "n": name }),
        )
        .await;
    data["createBrand"]["id"]
        .as_str()
        .expect("brand id")
        .to_owned()
}

pub(crate) fn submission(brand: &str, category: &str, name: &str) -> Value {
    json!({ "brandId": brand, "categoryId": category, "name": name, "description": "好东西",
            "skus": [{ "name": "标准", "price": "99.00", "stock": 10 }, { "name": "大号", "price": "129.90", "stock": 0 }],
            "rebateRate": "0.15", "teamRebateRate": "0.05" })
}

pub(crate) const SUBMIT: &str = "mutation($i: SubmitProductInput!) { submitProduct(input: $i) { id status minPrice maxPrice } }";

pub(crate) async fn submit(
    app: &TestApp,
    merchant: &str,
    brand: &str,
    category: &str,
    name: &str,
) -> String {
    let data = app
        .data_as(
            merchant,
            SUBMIT,
            json!({ "i": submission(brand, category, name) }),
        )
        .await;
    assert_eq!(data["submitProduct"]["status"], json!("IN_CURATION"));
    data["submitProduct"]["id"]
        .as_str()
        .expect("product id")
        .to_owned()
}

pub(crate) const STAGE: &str =
    "mutation($i: CurationStageInput!) { recordCurationStage(input: $i) { passed nextStage
  stages { stage result notes evidenceUrls } } }";

pub(crate) async fn stage(
    app: &TestApp,
    curator: &str,
    product: &str,
    stage: &str,
    result: &str,
) -> Value {
    app.gql_as(
        curator,
        STAGE,
        json!({ "i": { "productId": product, "stage": stage, "result": result,
                       "notes": format!("{stage} {result}"), "evidenceUrls": ["https://evidence.example/report.pdf"] } }),
    )
    .await
}

pub(crate) const SCORE: &str = "mutation($i: CurationScoreInput!) { scoreProduct(input: $i) { passed badges scores { essentialNeed } } }";

pub(crate) async fn score(app: &TestApp, curator: &str, product: &str, values: [i32; 4]) -> Value {
    app.gql_as(
        curator,
        SCORE,
        json!({ "i": { "productId": product, "essentialNeed": values[0], "newPainPoint": values[1],
                       "longevity": values[2], "qualityAndSupply": values[3],
                       "highQuality": true, "highDesign": true, "highValue": true, "euExportGrade": true } }),
    )
    .await
}

pub(crate) const PUBLISH: &str =
    "mutation($p: ID!) { publishProduct(productId: $p) { status publishedAt } }";

/// Passes all five stages and scores well.
pub(crate) async fn pass_all(app: &TestApp, curator: &str, product: &str) {
    for s in STAGES {
        let resp = stage(app, curator, product, s, "PASS").await;
        assert!(resp["errors"].is_null(), "{s}: {resp}");
    }
    let resp = score(app, curator, product, [5, 4, 4, 3]).await;
    assert!(resp["errors"].is_null(), "{resp}");
}

pub(crate) async fn setup(app: &TestApp) -> (Fixture, String) {
    let f = fixtures::catalog(app.db(), 0).await;
    let leaf = gid(Kind::Category, f.leaves[0].id);
    (f, leaf)
}

const PASSPORT: &str = "query($id: ID!) { product(id: $id) { status curation { passed badges nextStage publishedAt
  stages { stage result recordedAt notes evidenceUrls reviewerId } scores { essentialNeed newPainPoint longevity qualityAndSupply euExportGrade }
  history { stage result notes } } } }";

#[tokio::test]
async fn a_product_walks_the_gate_and_shows_its_passport() {
    let app = TestApp::spawn().await;
    let (_, leaf) = setup(&app).await;
    let s = staff(&app, "Lumi").await;
    let product = submit(&app, &s.merchant, &s.brand, &leaf, "智能台灯").await;

    // Out of order is refused, in order goes through.
    let resp = stage(&app, &s.curator, &product, "FACTORY_AUDIT", "PASS").await;
    assert_eq!(error_code(&resp), Some("CURATION_OUT_OF_ORDER"), "{resp}");
    assert!(
        resp["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("QUALIFICATION_REVIEW"))
    );
    let resp = stage(&app, &s.curator, &product, "QUALIFICATION_REVIEW", "PASS").await;
    assert_eq!(
        resp["data"]["recordCurationStage"]["nextStage"],
        json!("INSPECTION_REPORT")
    );
    for st in &STAGES[1..] {
        let resp = stage(&app, &s.curator, &product, st, "PASS").await;
        assert!(resp["errors"].is_null(), "{resp}");
    }
    let resp = stage(&app, &s.curator, &product, "INTERNAL_TEST", "PASS").await;
    assert_eq!(
        error_code(&resp),
        Some("CURATION_OUT_OF_ORDER"),
        "no sixth stage"
    );
    let resp = score(&app, &s.curator, &product, [5, 4, 4, 3]).await;
    assert_eq!(resp["data"]["scoreProduct"]["passed"], json!(true));
    assert_eq!(
        resp["data"]["scoreProduct"]["badges"],
        json!(["FIVE_STAGES_PASSED", "THREE_HIGHS", "EU_GRADE"])
    );

    // Not public before publishing.
    assert_eq!(
        error_code(&app.gql(PASSPORT, json!({ "id": product })).await),
        Some("NOT_FOUND")
    );
    let data = app
        .data_as(&s.curator, PUBLISH, json!({ "p": product }))
        .await;
    assert_eq!(data["publishProduct"]["status"], json!("PUBLISHED"));
    let resp = app
        .gql_as(&s.curator, PUBLISH, json!({ "p": product }))
        .await;
    assert_eq!(error_code(&resp), Some("ALREADY_PUBLISHED"));

    // The public passport: results, dates, scores and badges, but no notes or evidence.
    let public = app.data(PASSPORT, json!({ "id": product })).await;
    let c = &public["product"]["curation"];
    assert_eq!(c["passed"], json!(true));
    assert_eq!(c["nextStage"], Value::Null);
    assert!(c["publishedAt"].is_string());
    assert_eq!(c["stages"].as_array().map(Vec::len), Some(5));
    for (i, st) in STAGES.iter().enumerate() {
        assert_eq!(c["stages"][i]["stage"], json!(st));
        assert_eq!(c["stages"][i]["result"], json!("PASS"));
        assert!(c["stages"][i]["recordedAt"].is_string());
        assert_eq!(c["stages"][i]["notes"], Value::Null);
        assert_eq!(c["stages"][i]["evidenceUrls"], Value::Null);
        assert_eq!(c["stages"][i]["reviewerId"], Value::Null);
    }
    assert_eq!(
        c["scores"],
        json!({ "essentialNeed": 5, "newPainPoint": 4, "longevity": 4, "qualityAndSupply": 3, "euExportGrade": true })
    );
    assert_eq!(c["history"], Value::Null);

    // The merchant sees the internals of its own product.
    let own = app
        .data_as(&s.merchant, PASSPORT, json!({ "id": product }))
        .await;
    let c = &own["product"]["curation"];
    assert_eq!(c["stages"][2]["notes"], json!("FACTORY_AUDIT PASS"));
    assert_eq!(
        c["stages"][2]["evidenceUrls"],
        json!(["https://evidence.example/report.pdf"])
    );
    assert_eq!(c["history"].as_array().map(Vec::len), Some(5));

    // Delisting needs a reason and hides the product again.
    let unpublish = "mutation($p: ID!, $r: String!) { unpublishProduct(productId: $p, reason: $r) { status unpublishedReason } }";
    let resp = app
        .gql_as(&s.curator, unpublish, json!({ "p": product, "r": " " }))
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
    let data = app
        .data_as(
            &s.curator,
            unpublish,
            json!({ "p": product, "r": "质量投诉" }),
        )
        .await;
    assert_eq!(
        data["unpublishProduct"],
        json!({ "status": "UNPUBLISHED", "unpublishedReason": "质量投诉" })
    );
    assert_eq!(
        error_code(&app.gql(PASSPORT, json!({ "id": product })).await),
        Some("NOT_FOUND")
    );
}

#[tokio::test]
async fn a_failed_stage_rejects_and_resubmission_resumes_there() {
    let app = TestApp::spawn().await;
    let (_, leaf) = setup(&app).await;
    let s = staff(&app, "Mova").await;
    let product = submit(&app, &s.merchant, &s.brand, &leaf, "扫地机器人").await;
    for st in &STAGES[..2] {
        stage(&app, &s.curator, &product, st, "PASS").await;
    }
    let resp = stage(&app, &s.curator, &product, "FACTORY_AUDIT", "FAIL").await;
    assert!(resp["errors"].is_null(), "{resp}");

    let mine = "{ myProducts { edges { node { id status curation { nextStage stages { stage result notes } } } } } }";
    let data = app.data_as(&s.merchant, mine, json!({})).await;
    let node = &data["myProducts"]["edges"][0]["node"];
    assert_eq!(node["status"], json!("REJECTED"));
    assert_eq!(
        node["curation"]["stages"][2],
        json!({ "stage": "FACTORY_AUDIT", "result": "FAIL", "notes": "FACTORY_AUDIT FAIL" })
    );

    // Rejected products take no more stage results until resubmitted.
    let resp = stage(&app, &s.curator, &product, "FACTORY_AUDIT", "PASS").await;
    assert_eq!(error_code(&resp), Some("NOT_IN_CURATION"));
    let resubmit = "mutation($p: ID!) { resubmitProduct(productId: $p) { status } }";
    let data = app
        .data_as(&s.merchant, resubmit, json!({ "p": product }))
        .await;
    assert_eq!(data["resubmitProduct"]["status"], json!("IN_CURATION"));
    let resp = app
        .gql_as(&s.merchant, resubmit, json!({ "p": product }))
        .await;
    assert_eq!(error_code(&resp), Some("NOT_REJECTED"));

    // It resumes at the failed stage: the first two stay passed.
    let resp = stage(&app, &s.curator, &product, "QUALIFICATION_REVIEW", "PASS").await;
    assert_eq!(error_code(&resp), Some("CURATION_OUT_OF_ORDER"));
    for st in &STAGES[2..] {
        let resp = stage(&app, &s.curator, &product, st, "PASS").await;
        assert!(resp["errors"].is_null(), "{resp}");
    }
    score(&app, &s.curator, &product, [3, 3, 3, 3]).await;
    app.data_as(&s.curator, PUBLISH, json!({ "p": product }))
        .await;
    let data = app
        .data_as(&s.curator, PASSPORT, json!({ "id": product }))
        .await;
    let history: Vec<String> = data["product"]["curation"]["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r["stage"].as_str().unwrap_or(""),
                r["result"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            "QUALIFICATION_REVIEW:PASS",
            "INSPECTION_REPORT:PASS",
            "FACTORY_AUDIT:FAIL",
            "FACTORY_AUDIT:PASS",
            "SCENARIO_TEST:PASS",
            "INTERNAL_TEST:PASS"
        ],
        "the audit trail keeps the failure"
    );
}

#[tokio::test]
async fn publishing_names_what_is_missing() {
    let app = TestApp::spawn().await;
    let (_, leaf) = setup(&app).await;
    let s = staff(&app, "Zhimi").await;
    let product = submit(&app, &s.merchant, &s.brand, &leaf, "空气净化器").await;
    let publish = |msg: &'static str| {
        let (app, curator, product) = (&app, s.curator.clone(), product.clone());
        async move {
            let resp = app.gql_as(&curator, PUBLISH, json!({ "p": product })).await;
            assert_eq!(error_code(&resp), Some("CURATION_INCOMPLETE"), "{resp}");
            let text = resp["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(text.contains(msg), "{text:?} should mention {msg}");
        }
    };
    publish("QUALIFICATION_REVIEW").await;
    for st in &STAGES[..4] {
        stage(&app, &s.curator, &product, st, "PASS").await;
    }
    publish("INTERNAL_TEST").await;
    stage(&app, &s.curator, &product, "INTERNAL_TEST", "PASS").await;
    publish("not been scored").await;
    score(&app, &s.curator, &product, [5, 2, 5, 5]).await;
    publish("NEW_PAIN_POINT scored 2").await;
    let resp = score(&app, &s.curator, &product, [5, 3, 6, 5]).await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
    assert_eq!(resp["errors"][0]["extensions"]["field"], json!("longevity"));
    score(&app, &s.curator, &product, [5, 3, 5, 5]).await;
    let data = app
        .data_as(&s.curator, PUBLISH, json!({ "p": product }))
        .await;
    assert_eq!(data["publishProduct"]["status"], json!("PUBLISHED"));
}

#[tokio::test]
async fn the_brand_cap_holds_exactly_at_the_boundary() {
    let app = TestApp::spawn_with(&["--max-brands-per-category", "2"]).await;
    let (f, leaf) = setup(&app).await;
    let other_leaf = gid(Kind::Category, f.leaves[1].id);
    let (merchant, _) = app.user("m@example.com", CliRole::Merchant).await;
    let (curator, _) = app.user("c@example.com", CliRole::Curator).await;
    let brands: Vec<String> =
        futures_util::future::join_all(["A", "B", "C"].map(|b| create_brand(&app, &merchant, b)))
            .await;

    let mut ready = Vec::new();
    for (brand, category) in [
        (&brands[0], &leaf),
        (&brands[1], &leaf),
        (&brands[2], &leaf),
        (&brands[0], &leaf),
        (&brands[2], &other_leaf),
    ] {
        let p = submit(&app, &merchant, brand, category, "商品").await;
        pass_all(&app, &curator, &p).await;
        ready.push(p);
    }
    for p in &ready[..2] {
        app.data_as(&curator, PUBLISH, json!({ "p": p })).await;
    }
    // A third brand in the same leaf category is one too many...
    let resp = app
        .gql_as(&curator, PUBLISH, json!({ "p": ready[2] }))
        .await;
    assert_eq!(error_code(&resp), Some("BRAND_CAP_EXCEEDED"), "{resp}");
    // ...another product of a listed brand is fine, and so is the third brand elsewhere.
    app.data_as(&curator, PUBLISH, json!({ "p": ready[3] }))
        .await;
    app.data_as(&curator, PUBLISH, json!({ "p": ready[4] }))
        .await;
}

#[tokio::test]
async fn roles_and_ownership_are_enforced() {
    let app = TestApp::spawn().await;
    let (f, leaf) = setup(&app).await;
    let mine = staff(&app, "Mine").await;
    let theirs = staff(&app, "Theirs").await;
    let (buyer, _) = app.user("buyer@example.com", CliRole::PushHand).await;
    let draft = submit(&app, &mine.merchant, &mine.brand, &leaf, "草稿").await;

    // A merchant cannot submit under another merchant's brand, nor curate.
    let resp = app
        .gql_as(
            &mine.merchant,
            SUBMIT,
            json!({ "i": submission(&theirs.brand, &leaf, "x") }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{resp}");
    let resp = stage(&app, &mine.merchant, &draft, "QUALIFICATION_REVIEW", "PASS").await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));
    let resp = app.gql_as(&buyer, PUBLISH, json!({ "p": draft })).await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));
    let resp = app
        .gql(SUBMIT, json!({ "i": submission(&mine.brand, &leaf, "x") }))
        .await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"));
    let resp = app
        .gql_as(
            &buyer,
            "mutation { createBrand(name: \"Nope\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));

    // Drafts: invisible to buyers, anonymous users and other merchants, through every door.
    let by_id = "query($id: ID!) { product(id: $id) { id } }";
    let by_node = "query($id: ID!) { node(id: $id) { id } }";
    for token in [Some(&buyer), Some(&theirs.merchant), None] {
        for q in [by_id, by_node] {
            let resp = match token {
                Some(t) => app.gql_as(t, q, json!({ "id": draft })).await,
                None => app.gql(q, json!({ "id": draft })).await,
            };
            assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp}");
        }
    }
    let listing = app
        .data_as(
            &buyer,
            "{ products(first: 100) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(listing["products"]["edges"], json!([]));
    let resp = app
        .gql_as(
            &buyer,
            "{ myProducts { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));
    let resp = app
        .gql_as(
            &mine.merchant,
            "{ curationQueue { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));

    // The owner and curators see it.
    for token in [&mine.merchant, &mine.curator] {
        let data = app.data_as(token, by_id, json!({ "id": draft })).await;
        assert_eq!(data["product"]["id"], json!(draft));
    }
    let queue = app
        .data_as(
            &mine.curator,
            "{ curationQueue { edges { node { id } } } }",
            json!({}),
        )
        .await;
    // Newest submissions first: this one, then the fixture's older draft.
    assert_eq!(
        queue["curationQueue"]["edges"],
        json!([{ "node": { "id": draft } }, { "node": { "id": gid(Kind::Product, f.draft) } }])
    );
}

#[tokio::test]
async fn submissions_are_validated_field_by_field() {
    let app = TestApp::spawn().await;
    let (f, leaf) = setup(&app).await;
    let s = staff(&app, "Valid").await;
    let top = gid(Kind::Category, f.tops[0].id);
    let base = submission(&s.brand, &leaf, "名字");
    let with = |k: &str, v: Value| {
        let mut i = base.clone();
        i[k] = v;
        i
    };
    let cases = [
        (with("rebateRate", json!("0.31")), "rebateRate"),
        (with("teamRebateRate", json!("-0.01")), "teamRebateRate"),
        (with("teamRebateRate", json!("0.16")), "teamRebateRate"),
        (with("name", json!("   ")), "name"),
        (with("name", json!("长".repeat(121))), "name"),
        (with("skus", json!([])), "skus"),
        (
            with("skus", json!([{ "name": "a", "price": "0", "stock": 1 }])),
            "skus[0].price",
        ),
        (
            with(
                "skus",
                json!([{ "name": "a", "price": "9.999", "stock": 1 }]),
            ),
            "skus[0].price",
        ),
        (
            with(
                "skus",
                json!([{ "name": "a", "price": "9.99", "stock": -1 }]),
            ),
            "skus[0].stock",
        ),
        (with("categoryId", json!(top)), "categoryId"),
    ];
    for (input, field) in cases {
        let resp = app.gql_as(&s.merchant, SUBMIT, json!({ "i": input })).await;
        assert_eq!(error_code(&resp), Some("VALIDATION"), "{field}: {resp}");
        assert_eq!(resp["errors"][0]["extensions"]["field"], json!(field));
    }
    // Exactly at the bounds is fine: 0.30 in total, the price kept to the fen.
    let ok = with("rebateRate", json!("0.25"));
    let data = app.data_as(&s.merchant, SUBMIT, json!({ "i": ok })).await;
    assert_eq!(data["submitProduct"]["minPrice"], json!("99.00"));
    assert_eq!(data["submitProduct"]["maxPrice"], json!("129.90"));
    let resp = app
        .gql_as(
            &s.merchant,
            "mutation { createBrand(name: \"Valid\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("BRAND_NAME_TAKEN"));
    let url = app
        .gql_as(
            &s.curator,
            STAGE,
            json!({ "i": { "productId": data["submitProduct"]["id"], "stage": "QUALIFICATION_REVIEW", "result": "PASS",
                           "evidenceUrls": ["javascript:alert(1)"] } }),
        )
        .await;
    assert_eq!(
        url["errors"][0]["extensions"]["field"],
        json!("evidenceUrls[0]")
    );
}

/// Reads the passport list of the public listing (as the product page does).
const LISTING: &str = "query($first: Int) { products(first: $first) { edges { node {
  id name brand { name } category { nameZh } skus { id price stock } curation { passed badges stages { result } } } } } }";

async fn publish_n(app: &TestApp, n: usize) -> (Staff, Vec<String>) {
    let (_, leaf) = setup(app).await;
    let s = staff(app, "Page").await;
    let mut ids = Vec::new();
    for i in 0..n {
        let p = submit(app, &s.merchant, &s.brand, &leaf, &format!("商品{i}")).await;
        pass_all(app, &s.curator, &p).await;
        app.data_as(&s.curator, PUBLISH, json!({ "p": p })).await;
        ids.push(p);
    }
    (s, ids)
}

async fn cache_calls(app: &TestApp, op: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    text.lines()
        .filter(|l| {
            l.starts_with("pushhand_cache_calls_total{") && l.contains(&format!("op=\"{op}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_page_with_passports_costs_few_statements_and_one_cache_round_trip() {
    // The passport cache under the response cache: with the latter on, the warm page would be
    // a whole-response hit that never reaches the passports.
    let app = TestApp::spawn_with(&["--response-cache", "false"]).await;
    publish_n(&app, 12).await;
    let backend = if redis_url().is_some() {
        "redis"
    } else {
        "memory"
    };

    let (s0, g0) = (app.statements().await, cache_calls(&app, "get").await);
    let cold = app.data(LISTING, json!({ "first": 12 })).await;
    let (s1, g1) = (app.statements().await, cache_calls(&app, "get").await);
    let warm = app.data(LISTING, json!({ "first": 12 })).await;
    let (s2, g2) = (app.statements().await, cache_calls(&app, "get").await);
    println!(
        "{backend}: cold {} statements / {} cache reads, warm {} / {}",
        s1 - s0,
        g1 - g0,
        s2 - s1,
        g2 - g1
    );
    assert_eq!(cold, warm);
    assert!(s1 - s0 <= 5, "cold page: {} statements", s1 - s0);
    assert!(s2 - s1 < s1 - s0, "warm pages skip the passport statement");
    assert_eq!(g1 - g0, 1.0, "one cache round trip for the whole page");
    assert_eq!(g2 - g1, 1.0);
    assert!(cold["products"]["edges"].as_array().is_some_and(|e| {
        e.iter()
            .all(|e| e["node"]["curation"]["passed"] == json!(true))
    }));
}

/// Changing a stage shows on the very next read, whichever cache is in use.
async fn invalidation(app: &TestApp) {
    let (_, leaf) = setup(app).await;
    let s = staff(app, "Fresh").await;
    let p = submit(app, &s.merchant, &s.brand, &leaf, "新品").await;
    let read = "query($id: ID!) { product(id: $id) { curation { nextStage stages { result } } } }";
    let before = app.data_as(&s.curator, read, json!({ "id": p })).await;
    assert_eq!(
        before["product"]["curation"]["nextStage"],
        json!("QUALIFICATION_REVIEW")
    );
    app.data_as(&s.curator, read, json!({ "id": p })).await; // served from the cache now
    stage(app, &s.curator, &p, "QUALIFICATION_REVIEW", "PASS").await;
    let after = app.data_as(&s.curator, read, json!({ "id": p })).await;
    assert_eq!(
        after["product"]["curation"]["nextStage"],
        json!("INSPECTION_REPORT")
    );
    assert_eq!(
        after["product"]["curation"]["stages"][0]["result"],
        json!("PASS")
    );
}

#[tokio::test]
async fn in_process_cache_is_invalidated_by_writes() {
    // An empty REDIS_URL means no Redis, even when the suite runs with one.
    let app = TestApp::spawn_with(&["--redis-url", ""]).await;
    invalidation(&app).await;
}

#[tokio::test]
async fn redis_cache_is_invalidated_by_writes() {
    let Some(url) = redis_url() else {
        eprintln!(
            "PUSHHAND_TEST_REDIS_URL is not set: the Redis variant runs in the PostgreSQL + Redis pass"
        );
        return;
    };
    let app = TestApp::spawn_with(&["--redis-url", &url]).await;
    invalidation(&app).await;
    let hits = app
        .metric("pushhand_cache_requests_total{backend=\"redis\",outcome=\"hit\"}")
        .await;
    assert!(hits >= 1.0, "the second read was a Redis hit");
}

#[tokio::test]
async fn an_unreachable_redis_never_fails_a_query() {
    let app = TestApp::spawn_with(&["--redis-url", "redis://127.0.0.1:1"]).await;
    let (s, ids) = publish_n(&app, 3).await;
    let data = app.data(LISTING, json!({ "first": 10 })).await;
    assert_eq!(data["products"]["edges"].as_array().map(Vec::len), Some(3));
    assert!(
        data["products"]["edges"][0]["node"]["curation"]["passed"]
            .as_bool()
            .unwrap_or(false)
    );
    // Writes still commit and show.
    let unpublish =
        "mutation($p: ID!) { unpublishProduct(productId: $p, reason: \"test\") { status } }";
    app.data_as(&s.curator, unpublish, json!({ "p": ids[0] }))
        .await;
    let errors = app
        .metric("pushhand_cache_requests_total{backend=\"redis\",outcome=\"error\"}")
        .await;
    assert!(errors >= 1.0, "cache errors are counted");
}

#[tokio::test]
async fn a_redis_connection_dropped_mid_test_is_survived() {
    let Some(url) = redis_url() else {
        eprintln!(
            "PUSHHAND_TEST_REDIS_URL is not set: the Redis variant runs in the PostgreSQL + Redis pass"
        );
        return;
    };
    // A database index of its own, so this test can find and kill exactly its connections.
    let db_url = format!("{}/13", url.trim_end_matches('/'));
    // Without the response cache, so that every read reaches the passport cache.
    let app = TestApp::spawn_with(&["--redis-url", &db_url, "--response-cache", "false"]).await;
    publish_n(&app, 3).await;
    app.data(LISTING, json!({ "first": 10 })).await;

    let client = redis::Client::open(url.as_str()).expect("redis url");
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis up");
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut admin)
        .await
        .expect("client list");
    let ids: Vec<String> = list
        .lines()
        .filter(|l| l.split(' ').any(|kv| kv == "db=13"))
        .filter_map(|l| {
            l.split(' ')
                .find_map(|kv| kv.strip_prefix("id=").map(str::to_owned))
        })
        .collect();
    assert!(!ids.is_empty(), "the app holds a Redis connection on db 13");
    for id in ids {
        let _: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(&id)
            .query_async(&mut admin)
            .await
            .expect("kill");
    }
    // The next reads still succeed (falling back, then reconnecting).
    for _ in 0..3 {
        let data = app.data(LISTING, json!({ "first": 10 })).await;
        assert_eq!(data["products"]["edges"].as_array().map(Vec::len), Some(3));
    }
    let hits_before = app
        .metric("pushhand_cache_requests_total{backend=\"redis\",outcome=\"hit\"}")
        .await;
    app.data(LISTING, json!({ "first": 10 })).await;
    let hits_after = app
        .metric("pushhand_cache_requests_total{backend=\"redis\",outcome=\"hit\"}")
        .await;
    assert!(
        hits_after > hits_before,
        "the cache reconnected and serves hits again"
    );
    let _ = metric_value("", "");
}

#[tokio::test]
async fn concurrent_misses_for_one_passport_load_it_once() {
    let app = TestApp::spawn_with(&["--redis-url", ""]).await;
    let f = fixtures::catalog(app.db(), 1).await;
    let id = *f.published.keys().next().expect("a product");
    let store = app.state.curation.clone();

    let before = app.statements().await;
    let ids = [id];
    let loads = (0..20).map(|_| store.load_many(app.db(), &ids));
    let results = futures_util::future::join_all(loads).await;
    let statements = app.statements().await - before;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|m| m.contains_key(&id)))
    );
    assert_eq!(statements, 1, "twenty concurrent misses, one database read");
    // And now it is cached: no statement at all.
    let before = app.statements().await;
    store
        .load_many(app.db(), &[id])
        .await
        .map_err(anyhow::Error::from)
        .expect("load");
    assert_eq!(app.statements().await, before);
}
