//! The merchants' side (issue #31, items 2 and 4): supplier statements against a hand
//! computation, to the fen, with their CSV; who may read them; working copies of listed
//! products that wait for curation while the listed version stays on sale; direct, audited
//! price and stock changes that reach cached answers; the 30 % rule; stock edits racing
//! checkouts.

use chrono::Duration;
use entity::member::Tier;
use entity::{Money, Rate, product};
use futures_util::future::join_all;
use pushhand::graphql::ids::Kind;
use pushhand::service::audit::Actor;
use pushhand::service::catalog::{self as catalog_svc, NewProduct, NewSku};
use pushhand::service::members::CliRole;
use pushhand::service::merchant_products as drafts;
use pushhand::service::orders::{self as orders_svc, LineRequest};
use pushhand::service::statements::Month;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::checkouts::stock;
use crate::earnings::{order, pay};
use crate::fixtures::{self, gid};
use crate::helpers::{TestApp, error_code};

const STATEMENT: &str = "query($p: String!) { myMerchant { merchant { id } sales(period: $p) {
  period startsAt endsAt
  totals { unitsSold sales unitsRefunded refunds serviceFee payable }
  categories { category { slug } figures { unitsSold sales unitsRefunded refunds serviceFee payable } }
  csv } } }";

const EDIT: &str = "mutation($i: UpdateProductDraftInput!) { updateProductDraft(input: $i) {
  product { id name minPrice skus { id name price stock } }
  draft { status name rebateRate teamRebateRate reviewReason skuNames { skuId name } newSkus { name price stock } } } }";

const REVIEW: &str = "mutation($p: ID!, $a: Boolean!, $r: String) {
  reviewProductDraft(productId: $p, approve: $a, reason: $r) {
    product { name rebateRate skus { name } } draft { status reviewReason } } }";

const PUBLIC: &str = "query($id: ID!) { product(id: $id) { name description minPrice maxPrice skus { name price stock } } }";

/// A published product of `merchant`'s `brand` in `category`, one SKU at `price` with
/// `stock` units. Returns the product and its SKU.
async fn listed(
    app: &TestApp,
    merchant: Uuid,
    brand: Uuid,
    category: Uuid,
    price: &str,
    stock: i32,
) -> (Uuid, Uuid) {
    let p = NewProduct {
        id: Uuid::now_v7(),
        merchant_id: merchant,
        brand_id: brand,
        category_id: category,
        name: format!("商品 {price}"),
        name_en: None,
        description: Some("原版描述".into()),
        status: product::Status::Published,
        rebate_rate: Rate::from_bp(1000),
        team_rebate_rate: Rate::from_bp(500),
        membership_activity: false,
        sales_count: 0,
        created_at: app.clock_now(),
        published_at: Some(app.clock_now()),
        skus: vec![NewSku {
            name: "标准".into(),
            price: Money::from_decimal(price.parse().expect("price")).expect("money"),
            stock,
        }],
        images: vec![],
        tags: vec![],
    };
    let id = catalog_svc::create_product(app.db(), p)
        .await
        .map_err(anyhow::Error::from)
        .expect("product");
    let sku = entity::sku::Entity::find()
        .filter(entity::sku::Column::ProductId.eq(id))
        .one(app.db())
        .await
        .expect("query")
        .expect("sku");
    (id, sku.id)
}

/// Places, pays, ships and completes an order of `qty` units of `sku` at `unit` each.
/// Returns the order's and its line's global IDs.
async fn completed(
    app: &TestApp,
    admin: &str,
    buyer: &str,
    sku: Uuid,
    qty: i32,
    unit_fen: i64,
) -> (String, String) {
    let o = order(app, buyer, sku, qty, None).await;
    let o = &o["data"]["placeOrder"];
    let id = o["id"].as_str().expect("order id").to_owned();
    let total = Money::from_fen(unit_fen * i64::from(qty)).to_string();
    let paid = pay(app, admin, &id, &format!("ref-{}", Uuid::now_v7()), &total).await;
    assert!(paid["errors"].is_null(), "{paid}");
    app.data_as(
        admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": id }),
    )
    .await;
    let done = app
        .data_as(
            buyer,
            "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
            json!({ "o": id }),
        )
        .await;
    assert_eq!(done["confirmReceipt"]["status"], "COMPLETED");
    (id, o["lines"][0]["id"].as_str().expect("line").to_owned())
}

fn fields(resp: &Value) -> Vec<String> {
    let mut f: Vec<String> = resp["errors"][0]["extensions"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no fields: {resp:#}"))
        .iter()
        .map(|f| f["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    f.sort();
    f
}

fn fen(v: &Value) -> i64 {
    Money::from_decimal(v.as_str().expect("money").parse().expect("decimal"))
        .expect("money")
        .fen()
}

/// A merchant user (through `linkMerchantUser`) of the fixture's merchant.
async fn merchant_user(app: &TestApp, admin: &str, email: &str, merchant: Uuid) -> String {
    let reg = app.register(email, None, None).await;
    let member = reg["data"]["register"]["member"]["id"]
        .as_str()
        .expect("member")
        .to_owned();
    let linked = app
        .gql_as(
            admin,
            "mutation($m: ID!, $x: ID!) { linkMerchantUser(memberId: $m, merchantId: $x) { roles } }",
            json!({ "m": member, "x": gid(Kind::Merchant, merchant) }),
        )
        .await;
    assert!(linked["errors"].is_null(), "{linked}");
    app.login(email, crate::helpers::PASSWORD).await
}

/// Hand computation (fees per line, half up, in fen):
///
/// | line | category (rate) | units | amount | fee |
/// |---|---|---|---|---|
/// | O1 | A (5 %, its parent's) | 3 × 19.90 | 59.70 | 2.985 → 2.99 |
/// | O2 | A | 1 × 19.90 | 19.90 | 0.995 → 1.00 |
/// | O3 | B (8.33 %) | 2 × 33.33 | 66.66 | 5.552778 → 5.55 |
/// | O4 | B | 1 × 33.33 | 33.33 | 2.776389 → 2.78 |
/// | refund of 1 unit of O1 | A | 1 | 19.90 | −0.995 → −1.00 |
///
/// Sales 179.59 (7 units), refunds 19.90 (1), fee 11.32, payable 148.37; A: 79.60, 19.90,
/// 2.99, 56.71; B: 99.99, 0, 8.33, 91.66. A month-level rounding would differ: O2 alone
/// (19.90 at 5 %) rounds 0.995 up to 1.00, and the refund gives exactly that back.
#[tokio::test]
async fn statements_match_a_hand_computation_to_the_fen() {
    let app = TestApp::spawn_with(&["--max-unpaid-orders", "20"]).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (buyer, _) = app.user("buyer@example.com", CliRole::PushHand).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let m = f.merchant.id;
    let (_, sku_a) = listed(&app, m, f.brands[0].id, f.leaves[0].id, "19.90", 100).await;
    let (_, sku_b) = listed(&app, m, f.brands[1].id, f.leaves[2].id, "33.33", 100).await;
    // Another merchant's sale in the same category: never in this statement.
    let other = catalog_svc::create_merchant(app.db(), "别家")
        .await
        .expect("m");
    let other_brand = catalog_svc::create_brand(app.db(), other.id, "别家牌")
        .await
        .expect("brand");
    let (_, sku_x) = listed(&app, other.id, other_brand.id, f.leaves[0].id, "50.00", 100).await;

    let fee = "mutation($c: ID!, $r: Decimal!) { setCategoryServiceFee(categoryId: $c, rate: $r) { rate } }";
    for (c, r) in [(f.tops[0].id, "0.05"), (f.leaves[2].id, "0.0833")] {
        app.data_as(&admin, fee, json!({ "c": gid(Kind::Category, c), "r": r }))
            .await;
    }
    for bad in ["1.5", "-0.01", "0.00001"] {
        let resp = app
            .gql_as(
                &admin,
                fee,
                json!({ "c": gid(Kind::Category, f.leaves[0].id), "r": bad }),
            )
            .await;
        assert_eq!(error_code(&resp), Some("VALIDATION"), "{bad}: {resp}");
    }

    let (_, o1) = completed(&app, &admin, &buyer, sku_a, 3, 1990).await;
    completed(&app, &admin, &buyer, sku_a, 1, 1990).await;
    completed(&app, &admin, &buyer, sku_b, 2, 3333).await;
    completed(&app, &admin, &buyer, sku_b, 1, 3333).await;
    completed(&app, &admin, &buyer, sku_x, 1, 5000).await;
    let refunded = app
        .gql_as(
            &admin,
            "mutation($l: ID!, $q: Int) { refundOrderLine(orderLineId: $l, quantity: $q) { status } }",
            json!({ "l": o1, "q": 1 }),
        )
        .await;
    assert!(refunded["errors"].is_null(), "{refunded}");
    let period = Month::of(app.clock_now()).to_string();
    // A new rate after the payments changes nothing already paid.
    app.data_as(
        &admin,
        fee,
        json!({ "c": gid(Kind::Category, f.tops[0].id), "r": "0.5" }),
    )
    .await;
    assert_eq!(
        entity::audit_entry::Entity::find()
            .filter(entity::audit_entry::Column::Action.eq("CATEGORY_SERVICE_FEE_SET"))
            .count(app.db())
            .await
            .expect("count"),
        3
    );

    let merchant = merchant_user(&app, &admin, "m1@example.com", m).await;
    // Not settled yet: nothing counts.
    let before = app
        .data_as(&merchant, STATEMENT, json!({ "p": period }))
        .await;
    assert_eq!(
        before["myMerchant"]["sales"]["totals"]["unitsSold"],
        json!(0)
    );
    assert_eq!(
        before["myMerchant"]["sales"]["totals"]["payable"],
        json!("0.00")
    );

    app.clock.advance(Duration::days(8));
    // Completed now, settles after the window: not in the statement either.
    completed(&app, &admin, &buyer, sku_a, 1, 1990).await;

    let s = app
        .data_as(&merchant, STATEMENT, json!({ "p": period }))
        .await;
    let s = &s["myMerchant"]["sales"];
    assert_eq!(
        s["totals"],
        json!({ "unitsSold": 7, "sales": "179.59", "unitsRefunded": 1, "refunds": "19.90",
                "serviceFee": "11.32", "payable": "148.37" }),
        "{s:#}"
    );
    let cats = s["categories"].as_array().expect("categories");
    assert_eq!(cats.len(), 2);
    let by_slug = |slug: &str| {
        cats.iter()
            .find(|c| c["category"]["slug"] == json!(slug))
            .unwrap_or_else(|| panic!("{slug}: {cats:#?}"))["figures"]
            .clone()
    };
    assert_eq!(
        by_slug("leaf-0-0"),
        json!({ "unitsSold": 4, "sales": "79.60", "unitsRefunded": 1, "refunds": "19.90",
                "serviceFee": "2.99", "payable": "56.71" })
    );
    assert_eq!(
        by_slug("leaf-1-0"),
        json!({ "unitsSold": 3, "sales": "99.99", "unitsRefunded": 0, "refunds": "0.00",
                "serviceFee": "8.33", "payable": "91.66" })
    );

    // The CSV: one row per sale or refund, adding up to the totals exactly, in fen.
    let csv = s["csv"].as_str().expect("csv");
    let rows: Vec<Vec<&str>> = csv
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows[0][1], "kind");
    assert_eq!(rows[0][14], "fee");
    let body: Vec<&Vec<&str>> = rows[1..rows.len() - 1].iter().collect();
    assert_eq!(body.len(), 5, "{csv}");
    assert_eq!(body.iter().filter(|r| r[1] == "REFUND").count(), 1);
    let total = rows.last().expect("total row");
    assert_eq!(total[1], "TOTAL");
    let sum = |col: usize| -> i64 { body.iter().map(|r| fen(&json!(r[col]))).sum() };
    assert_eq!(sum(12), fen(&json!(total[12])), "amount");
    assert_eq!(sum(14), fen(&s["totals"]["serviceFee"]), "fee");
    assert_eq!(sum(15), fen(&s["totals"]["payable"]), "payable");
    assert_eq!(total[14], "11.32");
    assert_eq!(total[15], "148.37");
    assert_eq!(total[12], "159.69", "sales less refunds");
    let fees: Vec<&str> = body.iter().map(|r| r[14]).collect();
    for expected in ["2.99", "1.00", "5.55", "2.78", "-1.00"] {
        assert!(fees.contains(&expected), "{expected} in {fees:?}");
    }

    // The statement list shows the same month; the admin reads the same figures.
    let list = app
        .data_as(
            &merchant,
            "{ myMerchant { statements(months: 2) { period totals { payable } } } }",
            json!({}),
        )
        .await;
    let months = list["myMerchant"]["statements"].as_array().expect("list");
    assert!(
        months
            .iter()
            .any(|m| m["period"] == json!(period) && m["totals"]["payable"] == json!("148.37")),
        "{months:#?}"
    );
    let admin_view = app
        .data_as(
            &admin,
            "query($m: ID!, $p: String!) { merchantStatement(merchantId: $m, period: $p) { totals { payable } csv } }",
            json!({ "m": gid(Kind::Merchant, m), "p": period }),
        )
        .await;
    assert_eq!(
        admin_view["merchantStatement"]["totals"]["payable"],
        json!("148.37")
    );
    assert_eq!(admin_view["merchantStatement"]["csv"], json!(csv));
    let bad = app
        .gql_as(&merchant, STATEMENT, json!({ "p": "2026-13" }))
        .await;
    assert_eq!(error_code(&bad), Some("VALIDATION"));
}

/// Other merchants' data and other roles are refused.
#[tokio::test]
async fn other_merchants_and_roles_are_refused() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (buyer, _) = app.user("buyer@example.com", CliRole::PushHand).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product, _) = listed(
        &app,
        f.merchant.id,
        f.brands[0].id,
        f.leaves[0].id,
        "10.00",
        5,
    )
    .await;
    let (other, _) = app.user("other@example.com", CliRole::Merchant).await;
    let mine = merchant_user(&app, &admin, "mine@example.com", f.merchant.id).await;

    for token in [&buyer, &admin] {
        let resp = app
            .gql_as(token, "{ myMerchant { merchant { id } } }", json!({}))
            .await;
        assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{resp}");
    }
    let anonymous = app
        .gql("{ myMerchant { merchant { id } } }", json!({}))
        .await;
    assert_eq!(error_code(&anonymous), Some("UNAUTHENTICATED"));
    // The other merchant sees its own merchant, never this one's.
    let own = app
        .data_as(&other, "{ myMerchant { merchant { id } } }", json!({}))
        .await;
    assert_ne!(
        own["myMerchant"]["merchant"]["id"],
        json!(gid(Kind::Merchant, f.merchant.id))
    );
    let resp = app
        .gql_as(
            &other,
            EDIT,
            json!({ "i": { "productId": gid(Kind::Product, product), "name": "改名" } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp}");
    let resp = app
        .gql_as(
            &other,
            "query($p: ID!) { myMerchant { productDraft(productId: $p) { status } } }",
            json!({ "p": gid(Kind::Product, product) }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp}");
    for token in [&other, &mine, &buyer] {
        let resp = app
            .gql_as(
                token,
                "query($m: ID!) { merchantStatement(merchantId: $m, period: \"2026-12\") { csv } }",
                json!({ "m": gid(Kind::Merchant, f.merchant.id) }),
            )
            .await;
        assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{resp}");
        let resp = app
            .gql_as(
                token,
                "mutation($c: ID!) { setCategoryServiceFee(categoryId: $c, rate: \"0.1\") { rate } }",
                json!({ "c": gid(Kind::Category, f.leaves[0].id) }),
            )
            .await;
        assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{resp}");
    }
    for token in [&mine, &buyer] {
        let resp = app
            .gql_as(token, "{ productDraftQueue { productId } }", json!({}))
            .await;
        assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{resp}");
    }
    let resp = app
        .gql_as(
            &buyer,
            EDIT,
            json!({ "i": { "productId": gid(Kind::Product, product), "name": "改名" } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{resp}");
    // The merchant's own user reads its stock alerts.
    let alerts = app
        .data_as(
            &mine,
            "{ myMerchant { stockAlerts(below: 10) { stock sku { name } product { id } } } }",
            json!({}),
        )
        .await;
    let alerts = alerts["myMerchant"]["stockAlerts"]
        .as_array()
        .expect("alerts");
    assert!(
        alerts.contains(&json!({ "stock": 5, "sku": { "name": "标准" },
                                 "product": { "id": gid(Kind::Product, product) } })),
        "{alerts:#?}"
    );
    let stocks: Vec<i64> = alerts
        .iter()
        .map(|a| a["stock"].as_i64().expect("stock"))
        .collect();
    assert!(stocks.windows(2).all(|w| w[0] <= w[1]), "fewest first");
    let none = app
        .data_as(
            &other,
            "{ myMerchant { stockAlerts(below: 10) { stock } } }",
            json!({}),
        )
        .await;
    assert_eq!(none["myMerchant"]["stockAlerts"], json!([]));
}

/// A change of a listed product's content waits for a curator while the listed version
/// stays what everyone reads (cached answers included); a rejection sends it back, an
/// approval replaces the listed version at once.
#[tokio::test]
async fn a_listed_products_draft_waits_for_curation() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product, sku) = listed(
        &app,
        f.merchant.id,
        f.brands[0].id,
        f.leaves[0].id,
        "10.00",
        5,
    )
    .await;
    let merchant = merchant_user(&app, &admin, "m@example.com", f.merchant.id).await;
    let pid = gid(Kind::Product, product);
    let original = app.data(PUBLIC, json!({ "id": pid })).await;
    assert_eq!(original["product"]["name"], json!("商品 10.00"));

    let edited = app
        .data_as(
            &merchant,
            EDIT,
            json!({ "i": { "productId": pid, "name": "新名字", "description": "新描述",
                           "rebateRate": "0.2", "teamRebateRate": "0.1",
                           "skus": [{ "id": gid(Kind::Sku, sku), "name": "大号" },
                                    { "name": "礼盒", "price": "25.00", "stock": 3 }] } }),
        )
        .await;
    let d = &edited["updateProductDraft"];
    assert_eq!(d["product"]["name"], json!("商品 10.00"), "{d:#}");
    assert_eq!(d["draft"]["status"], json!("PENDING"));
    assert_eq!(d["draft"]["name"], json!("新名字"));
    assert_eq!(d["draft"]["rebateRate"], json!("0.2"));
    assert_eq!(
        d["draft"]["newSkus"],
        json!([{ "name": "礼盒", "price": "25.00", "stock": 3 }])
    );
    assert_eq!(app.data(PUBLIC, json!({ "id": pid })).await, original);

    let queue = app
        .data_as(
            &curator,
            "{ productDraftQueue { productId name } }",
            json!({}),
        )
        .await;
    assert_eq!(
        queue["productDraftQueue"],
        json!([{ "productId": pid, "name": "新名字" }])
    );
    let no_reason = app
        .gql_as(&curator, REVIEW, json!({ "p": pid, "a": false }))
        .await;
    assert_eq!(error_code(&no_reason), Some("VALIDATION"));
    let rejected = app
        .data_as(
            &curator,
            REVIEW,
            json!({ "p": pid, "a": false, "r": "描述不实" }),
        )
        .await;
    assert_eq!(
        rejected["reviewProductDraft"]["draft"],
        json!({ "status": "REJECTED", "reviewReason": "描述不实" })
    );
    let again = app
        .data_as(
            &merchant,
            EDIT,
            json!({ "i": { "productId": pid, "description": "如实描述" } }),
        )
        .await;
    assert_eq!(
        again["updateProductDraft"]["draft"]["status"],
        json!("PENDING")
    );
    assert_eq!(
        again["updateProductDraft"]["draft"]["name"],
        json!("新名字"),
        "merged"
    );
    assert_eq!(app.data(PUBLIC, json!({ "id": pid })).await, original);

    let approved = app
        .data_as(&curator, REVIEW, json!({ "p": pid, "a": true }))
        .await;
    assert_eq!(approved["reviewProductDraft"]["draft"], Value::Null);
    let now = app.data(PUBLIC, json!({ "id": pid })).await;
    assert_eq!(
        now["product"],
        json!({ "name": "新名字", "description": "如实描述", "minPrice": "10.00",
                "maxPrice": "25.00",
                "skus": [{ "name": "大号", "price": "10.00", "stock": 5 },
                         { "name": "礼盒", "price": "25.00", "stock": 3 }] })
    );
    let again = app
        .gql_as(&curator, REVIEW, json!({ "p": pid, "a": true }))
        .await;
    assert_eq!(error_code(&again), Some("NOT_FOUND"));
    let audited = entity::audit_entry::Entity::find()
        .filter(entity::audit_entry::Column::TargetId.eq(product))
        .all(app.db())
        .await
        .expect("audit");
    let actions: Vec<&str> = audited.iter().map(|a| a.action.as_str()).collect();
    for a in [
        "PRODUCT_DRAFT_SUBMITTED",
        "PRODUCT_DRAFT_REJECTED",
        "PRODUCT_DRAFT_APPROVED",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

/// Price and stock of a listed SKU change at once, audited, and cached answers follow.
#[tokio::test]
async fn price_and_stock_change_at_once_audited_and_seen() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product, sku) = listed(
        &app,
        f.merchant.id,
        f.brands[0].id,
        f.leaves[0].id,
        "10.00",
        5,
    )
    .await;
    let merchant = merchant_user(&app, &admin, "m@example.com", f.merchant.id).await;
    let pid = gid(Kind::Product, product);
    let sid = gid(Kind::Sku, sku);
    // Twice: the second is served from the response cache.
    app.data(PUBLIC, json!({ "id": pid })).await;
    app.data(PUBLIC, json!({ "id": pid })).await;

    let edited = app
        .data_as(
            &merchant,
            EDIT,
            json!({ "i": { "productId": pid,
                           "skus": [{ "id": sid, "price": "12.50", "stockDelta": 7 }] } }),
        )
        .await;
    assert_eq!(edited["updateProductDraft"]["draft"], Value::Null);
    let seen = app.data(PUBLIC, json!({ "id": pid })).await;
    assert_eq!(
        seen["product"]["skus"],
        json!([{ "name": "标准", "price": "12.50", "stock": 12 }])
    );
    assert_eq!(seen["product"]["minPrice"], json!("12.50"));
    assert_eq!(seen["product"]["maxPrice"], json!("12.50"));

    let set = app
        .data_as(
            &merchant,
            EDIT,
            json!({ "i": { "productId": pid, "skus": [{ "id": sid, "stock": 2 }] } }),
        )
        .await;
    assert_eq!(
        set["updateProductDraft"]["product"]["skus"][0]["stock"],
        json!(2)
    );
    let below = app
        .gql_as(
            &merchant,
            EDIT,
            json!({ "i": { "productId": pid, "skus": [{ "id": sid, "stockDelta": -3 }] } }),
        )
        .await;
    assert_eq!(fields(&below), vec!["input.skus[0].stockDelta"]);
    assert_eq!(stock(&app, sku).await, 2);
    let seen = app.data(PUBLIC, json!({ "id": pid })).await;
    assert_eq!(seen["product"]["skus"][0]["stock"], json!(2));

    let audited = entity::audit_entry::Entity::find()
        .filter(entity::audit_entry::Column::TargetId.eq(product))
        .all(app.db())
        .await
        .expect("audit");
    let count = |a: &str| audited.iter().filter(|e| e.action == a).count();
    assert_eq!(count("SKU_PRICE_CHANGED"), 1);
    assert_eq!(count("SKU_STOCK_CHANGED"), 2);
    assert_eq!(count("PRODUCT_DRAFT_SUBMITTED"), 0);
    let price = audited
        .iter()
        .find(|e| e.action == "SKU_PRICE_CHANGED")
        .expect("price entry");
    let args: Value = serde_json::from_str(&price.arguments).expect("json");
    assert_eq!(args["price"], json!("12.50"));
    assert_eq!(args["previous"], json!("10.00"));
}

/// The 30 % rule and every other bad field, all named at once; nothing written.
#[tokio::test]
async fn the_30_percent_rule_and_every_bad_field_at_once() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product, sku) = listed(
        &app,
        f.merchant.id,
        f.brands[0].id,
        f.leaves[0].id,
        "10.00",
        5,
    )
    .await;
    let merchant = merchant_user(&app, &admin, "m@example.com", f.merchant.id).await;
    let pid = gid(Kind::Product, product);
    let sid = gid(Kind::Sku, sku);
    let resp = app
        .gql_as(
            &merchant,
            EDIT,
            json!({ "i": { "productId": pid, "name": " ", "description": "长".repeat(5001),
                           "rebateRate": "0.31", "teamRebateRate": "abc",
                           "skus": [
                               { "id": "not-an-id", "name": "x" },
                               { "id": sid, "price": "-1", "stock": -5 },
                               { "name": "新", "stock": 1 },
                           ] } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
    assert_eq!(
        fields(&resp),
        vec![
            "input.description",
            "input.name",
            "input.rebateRate",
            "input.skus[0].id",
            "input.skus[1].price",
            "input.skus[1].stock",
            "input.skus[2].price",
            "input.teamRebateRate",
        ]
    );
    // Each rate within 0.30, together above it.
    let resp = app
        .gql_as(
            &merchant,
            EDIT,
            json!({ "i": { "productId": pid, "rebateRate": "0.20", "teamRebateRate": "0.15" } }),
        )
        .await;
    assert_eq!(fields(&resp), vec!["input.teamRebateRate"]);
    // One rate given: checked against the other as it stands (0.05 now).
    let resp = app
        .gql_as(
            &merchant,
            EDIT,
            json!({ "i": { "productId": pid, "rebateRate": "0.26" } }),
        )
        .await;
    assert_eq!(fields(&resp), vec!["input.rebateRate"]);
    let resp = app
        .gql_as(&merchant, EDIT, json!({ "i": { "productId": pid } }))
        .await;
    assert_eq!(fields(&resp), vec!["input"]);
    let resp = app
        .gql_as(
            &merchant,
            EDIT,
            json!({ "i": { "productId": pid, "skus": [{ "id": sid, "stock": 1, "stockDelta": 1 }] } }),
        )
        .await;
    assert_eq!(fields(&resp), vec!["input.skus[0].stockDelta"]);
    // The edge of the rule passes.
    let ok = app
        .data_as(
            &merchant,
            EDIT,
            json!({ "i": { "productId": pid, "rebateRate": "0.25" } }),
        )
        .await;
    assert_eq!(
        ok["updateProductDraft"]["draft"]["rebateRate"],
        json!("0.25")
    );
    assert_eq!(
        entity::product_draft::Entity::find()
            .count(app.db())
            .await
            .expect("count"),
        1
    );
    assert_eq!(stock(&app, sku).await, 5);
}

/// Stock moved down by the merchant while shoppers check out the same SKU: the stock
/// never goes below zero, and what was taken adds up.
#[tokio::test]
async fn concurrent_stock_edits_and_checkouts_keep_stock_non_negative() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product, sku) = listed(
        &app,
        f.merchant.id,
        f.brands[0].id,
        f.leaves[0].id,
        "10.00",
        30,
    )
    .await;
    let (_, merchant) = app.user("m@example.com", CliRole::Merchant).await;
    let merchant = entity::member::Model {
        merchant_id: Some(f.merchant.id),
        ..merchant
    };
    let buyer = fixtures::member(&app, "crowd", Tier::PushHand, None).await;
    let now = app.clock_now();
    let actor = Actor::new(merchant.id, None);
    let checkouts = join_all((0..30).map(|_| {
        let (app, buyer) = (&app, &buyer);
        async move {
            orders_svc::place_order(
                &app.state.checkouts,
                buyer,
                vec![LineRequest {
                    sku_id: sku,
                    quantity: 1,
                    share_code: None,
                }],
                Duration::minutes(30),
                now,
            )
            .await
            .is_ok()
        }
    }));
    let edits = join_all((0..15).map(|_| {
        let (app, merchant, actor) = (&app, &merchant, &actor);
        async move {
            let edit = drafts::ProductEdit {
                skus: vec![drafts::SkuEdit {
                    id: Some(Some(sku)),
                    stock_delta: Some(-2),
                    ..Default::default()
                }],
                ..Default::default()
            };
            match drafts::update(
                app.db(),
                &app.state.events,
                &app.state.media,
                merchant,
                actor,
                product,
                edit,
                now,
            )
            .await
            {
                Ok(_) => true,
                Err(e) => {
                    assert_eq!(e.code(), "VALIDATION", "{e:?}");
                    false
                }
            }
        }
    }));
    let (checkouts, edits) = futures_util::join!(checkouts, edits);
    let sold = checkouts.iter().filter(|ok| **ok).count() as i32;
    let taken = 2 * edits.iter().filter(|ok| **ok).count() as i32;
    let left = stock(&app, sku).await;
    assert!(left >= 0);
    assert_eq!(left, 30 - sold - taken, "sold {sold}, taken {taken}");
    // 30 units against 60 wanted: something was refused, so little or nothing is left.
    assert!(left < 2, "{left} left");
}
