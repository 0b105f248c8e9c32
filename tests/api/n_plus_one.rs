//! The N+1 bar (SPEC §6): a page of products with brand, category and SKUs costs the same
//! small number of SQL statements whatever the page size.
//!
//! The bar is about executing the query, so these apps run without the response cache: a hit
//! runs no SQL at all and would say nothing about the resolvers.

use serde_json::json;

use crate::fixtures;
use crate::helpers::TestApp;

const LISTING: &str = "query($first: Int) { products(first: $first) { edges { node {
  id name minPrice brand { id name } category { id nameZh } skus { id price stock } } } } }";

const RICH: &str = "query($first: Int) { products(first: $first) { edges { node {
  id name brand { name merchant { name } } category { nameZh parent { nameEn } }
  skus { id price } images { url } tags } } } }";

async fn statements_for(app: &TestApp, query: &str, first: i32) -> u64 {
    let before = app.statements().await;
    let data = app.data(query, json!({ "first": first })).await;
    assert_eq!(
        data["products"]["edges"].as_array().map(Vec::len),
        Some(first as usize)
    );
    app.statements().await - before
}

/// Statements for one page of `first` on a fresh app (cold in-memory caches: brands,
/// merchants and categories are kept once read, which would flatter a second page).
async fn cold(query: &str, first: i32) -> u64 {
    let app = TestApp::spawn_with(&["--response-cache", "false"]).await;
    fixtures::catalog(app.db(), 60).await;
    statements_for(&app, query, first).await
}

#[tokio::test]
async fn product_listing_costs_a_constant_number_of_statements() {
    let five = cold(LISTING, 5).await;
    let fifty = cold(LISTING, 50).await;
    println!(
        "products with brand, category, SKUs: first 5 → {five} statements, first 50 → {fifty}"
    );
    // The bar: the same small count at either page size (one statement per relation: 4).
    assert_eq!(five, fifty, "statement count grows with the page size");
    assert!(fifty <= 5, "{fifty} statements for one page");

    // Every relation of the product card, two levels deep, is still constant.
    let five = cold(RICH, 5).await;
    let fifty = cold(RICH, 50).await;
    println!("products with every relation: first 5 → {five} statements, first 50 → {fifty}");
    // Seven relations plus the page itself: 8, whatever the page size.
    assert_eq!(five, fifty);
    assert!(fifty <= 8, "{fifty} statements for one rich page");

    // Warm, the rows that never change (brands, merchants, categories) come from memory:
    // the same page again costs only the page, its SKUs, images and tags.
    let app = TestApp::spawn_with(&["--response-cache", "false"]).await;
    fixtures::catalog(app.db(), 60).await;
    let first = statements_for(&app, RICH, 50).await;
    let again = statements_for(&app, RICH, 50).await;
    println!("the rich page again: {first} → {again} statements");
    assert_eq!(
        again,
        first - 4,
        "brand, merchant, category and parent from memory"
    );
}

/// Statements of one checkout of `skus` (one unit each) by `buyer` and of its payment, and
/// the earnings the payment booked.
async fn order_statements(
    app: &TestApp,
    buyer: &entity::member::Model,
    skus: &[uuid::Uuid],
) -> (u64, u64, usize) {
    use pushhand::service::orders::{self, LineRequest};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let now = app.clock_now();
    let lines = skus
        .iter()
        .map(|s| LineRequest {
            sku_id: *s,
            quantity: 1,
            share_code: None,
        })
        .collect();
    let before = app.statements().await;
    let (o, _) = orders::place_order(
        &app.state.checkouts,
        buyer,
        lines,
        chrono::Duration::minutes(30),
        now,
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("placed");
    let placed = app.statements().await - before;
    let before = app.statements().await;
    orders::confirm_payment(
        app.db(),
        &app.state.events,
        &app.state.units_sold,
        orders::Payment {
            order_id: o.id,
            reference: &format!("ref-{}", o.id),
            amount: o.total,
            actor: None,
            intent: None,
        },
        &pushhand::graphql::schema::orders::policy(&app.state),
        now,
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("paid");
    let paid = app.statements().await - before;
    let earned = entity::earning::Entity::find()
        .filter(entity::earning::Column::OrderId.eq(o.id))
        .all(app.db())
        .await
        .expect("earnings")
        .len();
    (placed, paid, earned)
}

/// The bar applied to orders: a checkout and its payment read the same statements for one
/// line as for four (the SKUs and share links in one statement each, the buyer's uplines and
/// their rewards once per payment). The writes are one statement either way: on PostgreSQL
/// one statement of CTEs, on SQLite one text of the batch's statements.
#[tokio::test]
async fn checkout_and_payment_cost_the_same_for_one_line_or_four() {
    use entity::member::Tier;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

    let app = TestApp::spawn_with(&["--response-cache", "false"]).await;
    let f = fixtures::catalog(app.db(), 4).await;
    let top = fixtures::member(&app, "top", Tier::PushHand, None).await;
    let mid = fixtures::member(&app, "mid", Tier::PushHand, Some(top.id)).await;
    let buyer = fixtures::member(&app, "buyer", Tier::Buyer, Some(mid.id)).await;
    // One SKU in stock of each product, the membership-activity product's first: both
    // orders then book the same kinds of earnings.
    let mut products: Vec<_> = f.published.values().collect();
    products.sort_by_key(|p| (!p.membership_activity, p.id));
    let mut skus = Vec::new();
    for p in products {
        let sku = entity::sku::Entity::find()
            .filter(entity::sku::Column::ProductId.eq(p.id))
            .filter(entity::sku::Column::Stock.gt(0))
            .order_by_asc(entity::sku::Column::Id)
            .one(app.db())
            .await
            .expect("query")
            .expect("a SKU in stock");
        skus.push(sku.id);
    }

    let (placed1, paid1, earned1) = order_statements(&app, &buyer, &skus[..1]).await;
    let (placed4, paid4, earned4) = order_statements(&app, &buyer, &skus).await;
    println!(
        "checkout: 1 line → {placed1} statements, 4 → {placed4}; payment: {paid1} → {paid4} \
         ({earned1} → {earned4} earnings)"
    );
    assert!(earned4 > earned1, "every line earns its buyer's uplines");
    // On SQLite too: a batch's parts go as one text (`Batch::run`), where they were one
    // statement each (a stock update per extra SKU, an earning and its entry per earning).
    assert_eq!(placed4, placed1, "checkout statements grow with the lines");
    assert_eq!(paid4, paid1, "payment statements grow with the lines");
    assert!(placed1 <= 4, "{placed1} statements for a checkout");
}

/// A checkout from the cart, with an address and its shipping, and its preview: the same
/// statements for one cart line as for four (the cart lines with their SKUs, the address,
/// the share links and the shipping rules with their surcharges in one statement each). On PostgreSQL the writes —
/// the order, its lines, the cart lines' deletion, the stock — are one statement either way
/// (on SQLite one text of several).
#[tokio::test]
async fn cart_checkout_and_preview_cost_the_same_for_one_line_or_four() {
    use entity::member::Tier;
    use pushhand::service::addresses::{self, AddressInput};
    use pushhand::service::cart;
    use pushhand::service::orders::{self, Lines, OrderLimits, OrderRequest};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

    let app = TestApp::spawn_with(&["--response-cache", "false"]).await;
    let f = fixtures::catalog(app.db(), 4).await;
    let top = fixtures::member(&app, "top", Tier::PushHand, None).await;
    let buyer = fixtures::member(&app, "buyer", Tier::Buyer, Some(top.id)).await;
    let now = app.clock_now();
    let home = addresses::add(
        app.db(),
        &app.state.events,
        buyer.id,
        &AddressInput {
            recipient_name: "王小明".into(),
            phone: "13812345678".into(),
            province_code: "650000".into(),
            city_code: "650100".into(),
            district_code: "650102".into(),
            detail: "解放北路 1 号".into(),
            postal_code: None,
            is_default: None,
        },
        now,
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("address");
    let admin = pushhand::service::members::create_user(
        app.db(),
        "admin@example.com",
        "correct horse battery",
        pushhand::service::members::CliRole::Admin,
        None,
        now,
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("admin");
    let rule = pushhand::service::shipping::RuleInput {
        base_fee: rust_decimal::Decimal::new(1000, 2),
        free_threshold: None,
        surcharges: vec![pushhand::service::shipping::SurchargeInput {
            province_codes: vec!["650000".into()],
            amount: rust_decimal::Decimal::new(2000, 2),
        }],
    };
    pushhand::service::shipping::set_rule(
        app.db(),
        &pushhand::service::audit::Actor::new(admin.id, None),
        f.merchant.id,
        &rule,
        now,
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("rule");
    let mut products: Vec<_> = f.published.values().collect();
    products.sort_by_key(|p| p.id);
    let mut lines = Vec::new();
    for p in products {
        let sku = entity::sku::Entity::find()
            .filter(entity::sku::Column::ProductId.eq(p.id))
            .filter(entity::sku::Column::Stock.gt(0))
            .order_by_asc(entity::sku::Column::Id)
            .one(app.db())
            .await
            .expect("query")
            .expect("a SKU in stock");
        for _ in 0..2 {
            let c = cart::add(app.db(), &app.state.events, &buyer, sku.id, 1, None, now)
                .await
                .map_err(anyhow::Error::from)
                .expect("added");
            lines = c.iter().map(|l| l.id).collect();
        }
    }
    assert_eq!(lines.len(), 4);
    let request = |ids: &[uuid::Uuid]| OrderRequest {
        lines: Lines::Cart(ids.to_vec()),
        address_id: Some(home.id),
        buyer_note: Some("请放门卫".into()),
        coupon_id: None,
    };
    let policy = pushhand::graphql::schema::orders::policy(&app.state);
    let preview = |ids: Vec<uuid::Uuid>| {
        let (app, buyer, policy) = (&app, &buyer, &policy);
        let req = request(&ids);
        async move {
            let before = app.statements().await;
            let p =
                cart::checkout_preview(app.db(), buyer, req, OrderLimits::default(), policy, now)
                    .await
                    .map_err(anyhow::Error::from)
                    .expect("preview");
            assert_eq!(p.shipping_fee, entity::Money::from_fen(3000));
            app.statements().await - before
        }
    };
    let place = |ids: Vec<uuid::Uuid>| {
        let (app, buyer) = (&app, &buyer);
        let req = request(&ids);
        let key = format!("key-{}", ids.len());
        async move {
            let before = app.statements().await;
            let (o, _) = orders::place_order_with(
                &app.state.checkouts,
                buyer,
                req,
                Some(key.as_str()),
                OrderLimits::default(),
                chrono::Duration::minutes(30),
                now,
            )
            .await
            .map_err(anyhow::Error::from)
            .expect("placed");
            assert_eq!(o.shipping_fee, entity::Money::from_fen(3000));
            app.statements().await - before
        }
    };
    let previewed1 = preview(lines[..1].to_vec()).await;
    let previewed4 = preview(lines.clone()).await;
    let placed1 = place(lines[..1].to_vec()).await;
    let placed4 = place(lines[1..].to_vec()).await;
    // (The second order has three lines: the cart's other three.)
    println!(
        "cart preview: 1 line → {previewed1} statements, 4 → {previewed4}; \
         cart checkout: 1 line → {placed1}, 3 → {placed4}"
    );
    assert_eq!(
        previewed4, previewed1,
        "preview statements grow with the lines"
    );
    assert_eq!(placed4, placed1, "checkout statements grow with the lines");
    // The preview: one statement — the cart lines joined to their SKUs and products, the
    // address, and their merchants' rules with the surcharge to the address's province
    // (`cart::for_checkout_to`; it was three: the lines, the address, the rules).
    assert_eq!(previewed1, 1, "{previewed1} statements for a preview");
    // The reads (the key, the unpaid count, the cart lines with their SKUs, address and
    // rules), the write, the unpaid count again; on SQLite the write's `BEGIN` and `COMMIT`
    // besides (it was 7 and 11, the address and the rules read on their own, then 5 and 9,
    // the write's parts one by one on SQLite).
    let most = if app.db().get_database_backend() == sea_orm::DbBackend::Postgres {
        5
    } else {
        7
    };
    assert!(placed1 <= most, "{placed1} statements for a cart checkout");
}

/// S11's checkout: explicit lines with a coupon, then the payment. The coupon and its
/// template are read with the SKUs, in their statement (they were two statements of their
/// own), and neither the checkout nor the payment
/// reads anything per line: the same statements for one line as for three, on each store.
#[tokio::test]
async fn a_coupon_checkout_costs_the_same_for_one_line_or_three() {
    use pushhand::service::members::CliRole;
    use pushhand::service::orders::{self, LineRequest, Lines, OrderLimits, OrderRequest};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

    let app = TestApp::spawn_with(&["--response-cache", "false"]).await;
    let f = fixtures::catalog(app.db(), 3).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (_, buyer) = app.user("ph@example.com", CliRole::PushHand).await;
    let create =
        "mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }";
    let input = json!({ "name": "立减", "kind": "FIXED", "amountOff": "1", "minSpend": "0",
        "scope": "ALL", "validDays": 30, "totalQuantity": 10, "perMemberLimit": 5,
        "distribution": "CLAIM" });
    let template = app.data_as(&admin, create, json!({ "i": input })).await["createCouponTemplate"]
        ["id"]
        .as_str()
        .map(fixtures::uuid_of)
        .expect("template");
    let now = app.clock_now();
    let mut coupons = Vec::new();
    for _ in 0..2 {
        let c =
            pushhand::service::coupons::claim(app.db(), &app.state.events, buyer.id, template, now)
                .await
                .map_err(anyhow::Error::from)
                .expect("claimed");
        coupons.push(c.id);
    }
    let mut products: Vec<_> = f.published.values().collect();
    products.sort_by_key(|p| p.id);
    let mut skus = Vec::new();
    for p in products {
        let sku = entity::sku::Entity::find()
            .filter(entity::sku::Column::ProductId.eq(p.id))
            .filter(entity::sku::Column::Stock.gt(0))
            .order_by_asc(entity::sku::Column::Id)
            .one(app.db())
            .await
            .expect("query")
            .expect("a SKU in stock");
        skus.push(sku.id);
    }
    assert_eq!(skus.len(), 3);
    let policy = pushhand::graphql::schema::orders::policy(&app.state);
    let mut counts = Vec::new();
    for (n, coupon) in [(1, coupons[0]), (3, coupons[1])] {
        let req = OrderRequest {
            lines: Lines::Given(
                skus[..n]
                    .iter()
                    .map(|s| LineRequest {
                        sku_id: *s,
                        quantity: 1,
                        share_code: None,
                    })
                    .collect(),
            ),
            address_id: None,
            buyer_note: None,
            coupon_id: Some(coupon),
        };
        let before = app.statements().await;
        let (o, _) = orders::place_order_with(
            &app.state.checkouts,
            &buyer,
            req,
            None,
            OrderLimits::default(),
            chrono::Duration::minutes(30),
            now,
        )
        .await
        .map_err(anyhow::Error::from)
        .expect("placed");
        let placed = app.statements().await - before;
        assert_eq!(o.coupon_id, Some(coupon));
        assert_eq!(o.discount, entity::Money::from_fen(100));
        let before = app.statements().await;
        orders::confirm_payment(
            app.db(),
            &app.state.events,
            &app.state.units_sold,
            orders::Payment {
                order_id: o.id,
                reference: &format!("ref-{}", o.id),
                amount: o.total,
                actor: None,
                intent: None,
            },
            &policy,
            now,
        )
        .await
        .map_err(anyhow::Error::from)
        .expect("paid");
        counts.push((placed, app.statements().await - before));
    }
    let [(placed1, paid1), (placed3, paid3)] = counts[..] else {
        unreachable!()
    };
    println!(
        "coupon checkout: 1 line → {placed1} statements, 3 → {placed3}; payment: {paid1} → {paid3}"
    );
    assert_eq!(placed3, placed1, "checkout statements grow with the lines");
    assert_eq!(paid3, paid1, "payment statements grow with the lines");
    if app.db().get_database_backend() == sea_orm::DbBackend::Postgres {
        // The unpaid count, the SKUs with their products and the coupon with its template,
        // the write (the coupon marked used in it), the unpaid count again: S6's four.
        assert_eq!(placed1, 4, "{placed1} statements for a coupon checkout");
    }
}

/// S10's payment: the sandbox's pay button reads the intent with its order, the order's
/// lines and its buyer in one statement, and books through `confirm_payment`'s guarded
/// write (the intent marked in it): on PostgreSQL one statement fewer than an admin's
/// `confirmPayment`, which reads the order, then its lines with the buyer. `createPayment` is
/// two: the order with its standing intent's id, the intent written with the provider's
/// answer.
#[tokio::test]
async fn a_sandbox_payment_costs_what_confirm_payment_costs() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = TestApp::spawn_with(&["--response-cache", "false"]).await;
    let (buyer, first) = crate::payments::unpaid_order(&app).await;
    let sku = entity::order_line::Entity::find()
        .filter(entity::order_line::Column::OrderId.eq(first.id))
        .one(app.db())
        .await
        .expect("query")
        .expect("a line")
        .sku_id;
    let policy = pushhand::graphql::schema::orders::policy(&app.state);
    let now = app.clock_now();
    let before = app.statements().await;
    pushhand::service::orders::confirm_payment(
        app.db(),
        &app.state.events,
        &app.state.units_sold,
        pushhand::service::orders::Payment {
            order_id: first.id,
            reference: "ref-first",
            amount: first.total,
            actor: None,
            intent: None,
        },
        &policy,
        now,
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("paid");
    let confirmed = app.statements().await - before;

    let o = crate::payments::place_for(&app, &buyer, sku).await;
    let sandbox = crate::payments::provider(&app, pushhand::payments::Channel::Sandbox);
    let before = app.statements().await;
    let intent = pushhand::service::payments::create_payment(
        app.db(),
        sandbox.as_ref(),
        &buyer,
        o.id,
        None,
        now,
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("intent");
    let created = app.statements().await - before;
    let before = app.statements().await;
    let resp = app
        .client
        .post(app.url(&format!("/payments/sandbox/{}/pay", intent.id)))
        .send()
        .await
        .expect("pay");
    assert_eq!(resp.status(), 204);
    let paid = app.statements().await - before;
    let row = crate::payments::order_row(&app, o.id).await;
    assert_eq!(row.status, entity::order::Status::Paid);
    println!(
        "confirmPayment: {confirmed} statements; createPayment: {created}; the sandbox's pay: {paid}"
    );
    assert_eq!(created, 2, "{created} statements for createPayment");
    // One round trip fewer: the intent's read carries the order, its lines and buyer (it
    // was one more than `confirmPayment`'s: the intent with its order, then the lines with
    // the buyer, then the write). On SQLite too, now that the intent's marking is one more
    // part of the batch's one text rather than a statement of its own.
    assert_eq!(paid + 1, confirmed, "the pay button's reads");
}

/// A product's detail page — the benchmark's S3 document, every relation — costs the same
/// few statements whatever the number of its SKUs, images and tags: the product with its
/// SKUs, images and tags is one statement (`service::catalog::visible_detail`); brands,
/// merchants, categories and passports come from memory once read. The same for a signed-in
/// push-hand (S3-member: rates and 预估赚 too), whose member row is remembered between its
/// requests.
#[tokio::test]
async fn product_detail_costs_a_constant_number_of_statements() {
    use pushhand::service::catalog::{NewSku, ProductRows};
    use pushhand::service::members::CliRole;
    const DETAIL: &str = "query($id: ID!) { product(id: $id) { id name nameEn description
      minPrice maxPrice salesCount brand { name merchant { name } } category { nameZh parent { nameZh } }
      skus { id name price stock } images { url alt } tags curation { passed badges stages { stage result } } } }";
    const MEMBER_DETAIL: &str = "query($id: ID!) { product(id: $id) { id name nameEn description
      minPrice maxPrice salesCount rebateRate teamRebateRate estimatedEarning brand { name merchant { name } }
      category { nameZh parent { nameZh } } skus { id name price stock } images { url alt } tags
      curation { passed badges stages { stage result } } } }";
    // The member's row remembered for the whole test (1 s by default, which a slow run
    // could outlast between two requests).
    let app =
        TestApp::spawn_with(&["--response-cache", "false", "--viewer-ttl-ms", "600000"]).await;
    let f = fixtures::catalog(app.db(), 0).await;
    // One product with one SKU, no image and no tag; one with many of each.
    let mut small = fixtures::product(&f, 0, entity::product::Status::Published);
    small.skus.truncate(1);
    small.images.clear();
    small.tags.clear();
    let mut large = fixtures::product(&f, 1, entity::product::Status::Published);
    large.skus = (0..12)
        .map(|i| NewSku {
            name: format!("规格{i}"),
            price: entity::Money::from_fen(1_000 + i),
            stock: 5,
        })
        .collect();
    large.images = (0..9)
        .map(|i| format!("https://img.example/l{i}.jpg"))
        .collect();
    large.tags = (0..7).map(|i| format!("标签{i}")).collect();
    let (small_id, large_id) = (small.id, large.id);
    let mut rows = ProductRows::default();
    rows.push(small, uuid::Uuid::now_v7).expect("small product");
    rows.push(large, uuid::Uuid::now_v7).expect("large product");
    let txn = pushhand::db::begin_write(app.db()).await.expect("begin");
    rows.insert(&txn).await.expect("insert");
    txn.commit().await.expect("commit");
    let (push_hand, _) = app.user("ph@example.com", CliRole::PushHand).await;

    let detail = |id: uuid::Uuid, token: Option<&str>| {
        let app = &app;
        let token = token.map(str::to_owned);
        async move {
            let before = app.statements().await;
            let vars = json!({ "id": fixtures::gid(pushhand::graphql::ids::Kind::Product, id) });
            let data = match &token {
                Some(t) => app.data_as(t, MEMBER_DETAIL, vars).await,
                None => app.data(DETAIL, vars).await,
            };
            (app.statements().await - before, data)
        }
    };
    let mut costs = Vec::new();
    for token in [None, Some(push_hand.as_str())] {
        // Cold, then warm: brands, merchants, categories, passports and the member's row
        // are read once, then kept (the passport until it changes).
        let (cold, _) = detail(small_id, token).await;
        let (small_cost, small_data) = detail(small_id, token).await;
        detail(large_id, token).await;
        let (large_cost, large_data) = detail(large_id, token).await;
        let who = if token.is_some() {
            "a push-hand"
        } else {
            "anonymous"
        };
        println!(
            "product detail ({who}): {cold} statements cold, then {small_cost} (1 SKU, no image or tag) and {large_cost} (12 SKUs, 9 images, 7 tags)"
        );
        assert_eq!(
            small_data["product"]["skus"].as_array().map(Vec::len),
            Some(1)
        );
        assert_eq!(small_data["product"]["images"], json!([]));
        assert_eq!(small_data["product"]["tags"], json!([]));
        let skus = large_data["product"]["skus"].as_array().expect("skus");
        let names: Vec<&str> = skus.iter().filter_map(|s| s["name"].as_str()).collect();
        let expected: Vec<String> = (0..12).map(|i| format!("规格{i}")).collect();
        assert_eq!(names, expected, "SKUs in display order");
        let urls: Vec<&str> = large_data["product"]["images"]
            .as_array()
            .expect("images")
            .iter()
            .filter_map(|i| i["url"].as_str())
            .collect();
        let expected: Vec<String> = (0..9)
            .map(|i| format!("https://img.example/l{i}.jpg"))
            .collect();
        assert_eq!(urls, expected, "images in display order");
        let expected: Vec<String> = (0..7).map(|i| format!("标签{i}")).collect();
        assert_eq!(
            large_data["product"]["tags"],
            json!(expected),
            "tags in order"
        );
        assert!(large_data["product"]["brand"]["merchant"]["name"].is_string());
        assert!(large_data["product"]["category"]["parent"]["nameZh"].is_string());
        assert_eq!(
            large_data["product"]["estimatedEarning"].is_string(),
            token.is_some()
        );
        assert_eq!(
            small_cost, large_cost,
            "statements grow with the product's rows ({who})"
        );
        // Cold: also the passport, the brand, merchant, category and parent (and the
        // member's row), once each.
        assert!(cold <= large_cost + 6, "{cold} statements cold ({who})");
        costs.push(large_cost);
    }
    // The product with its SKUs, images and tags: one statement, for either viewer.
    assert_eq!(costs, [1, 1], "statements for one detail page");
}

/// A page of orders with their lines, parcels (and the lines in each), refund states and
/// cancellations costs the same statements for 2 orders as for 10: each relation is one
/// loader batch.
#[tokio::test]
async fn a_page_of_orders_with_parcels_costs_a_constant_number_of_statements() {
    use crate::fulfilment::{ORDER_FIELDS, placed, shop};
    // No background job may run a statement while the page is counted (the payments leave
    // units sold to write).
    let app = TestApp::spawn_with(&[
        "--response-cache",
        "false",
        "--job-interval-seconds",
        "3600",
        "--units-sold-interval-ms",
        "3600000",
    ])
    .await;
    let s = shop(&app).await;
    for i in 0..10 {
        let (o, _) = placed(&app, &s, &s.buyer, i % 4 != 3).await;
        if i % 4 == 3 {
            app.data_as(
                &s.buyer,
                "mutation($o: ID!) { cancelOrder(orderId: $o, reason: \"r\") { status } }",
                json!({ "o": o }),
            )
            .await;
        } else if i % 2 == 0 {
            app.data_as(
                &s.admin,
                "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
                json!({ "o": o }),
            )
            .await;
        }
    }
    let query = format!(
        "query($first: Int) {{ orders(first: $first) {{ edges {{ node {{ {ORDER_FIELDS} }} }} }} }}"
    );
    let count = |first: i32| {
        let (app, query, admin) = (&app, &query, &s.admin);
        async move {
            let before = app.statements().await;
            let data = app.data_as(admin, query, json!({ "first": first })).await;
            assert_eq!(
                data["orders"]["edges"].as_array().map(Vec::len),
                Some(first as usize)
            );
            app.statements().await - before
        }
    };
    // Warm: the admin's row is remembered after its first request.
    count(1).await;
    let two = count(2).await;
    let ten = count(10).await;
    println!("orders with parcels: first 2 → {two} statements, first 10 → {ten}");
    assert_eq!(two, ten, "statement count grows with the page size");
    assert!(ten <= 8, "{ten} statements for one page of orders");
}
