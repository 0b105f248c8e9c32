//! The cart: lines merge per SKU and keep the share code they were added with, say who would
//! get credit and why, stay when they cannot be ordered (with the reason), flag price
//! changes, keep to their limits, are the member's own, add up under concurrent adds, and
//! every write publishes the member's change.

use chrono::Duration;
use entity::member::Tier;
use entity::{Money, cart_line, product, sku};
use futures_util::future::join_all;
use pushhand::graphql::ids::Kind;
use pushhand::service::auth;
use pushhand::service::members::CliRole;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::earnings::{another_product, product};
use crate::fixtures::{self, gid};
use crate::helpers::{TestApp, error_code};

pub(crate) const CART: &str = "{ me { cart { subtotal lines { id skuId sku { id price } quantity
  shareCode available unavailableReason unitPrice priceWhenAdded priceChanged
  attribution { rule earnerName summary } } } } }";

pub(crate) const ADD: &str = "mutation($s: ID!, $q: Int!, $c: String) {
  addToCart(skuId: $s, quantity: $q, shareCode: $c) { subtotal lines { id quantity shareCode
    attribution { rule earnerName summary } } } }";

const UPDATE: &str = "mutation($l: ID!, $q: Int!) { updateCartLine(lineId: $l, quantity: $q) {
  lines { id quantity } } }";

const REMOVE: &str = "mutation($l: [ID!]!) { removeCartLines(lineIds: $l) { lines { id } } }";

/// A signed token for a member made by [`fixtures::member`].
pub(crate) fn token_of(app: &TestApp, m: &entity::member::Model) -> String {
    auth::issue_token(
        &app.state.jwt_secret,
        m,
        chrono::Utc::now(),
        Duration::hours(1),
    )
    .map_err(anyhow::Error::from)
    .expect("token")
}

pub(crate) async fn add(
    app: &TestApp,
    token: &str,
    sku: Uuid,
    quantity: i32,
    code: Option<&str>,
) -> Value {
    app.gql_as(
        token,
        ADD,
        json!({ "s": gid(Kind::Sku, sku), "q": quantity, "c": code }),
    )
    .await
}

pub(crate) async fn add_ok(
    app: &TestApp,
    token: &str,
    sku: Uuid,
    quantity: i32,
    code: Option<&str>,
) -> Value {
    let resp = add(app, token, sku, quantity, code).await;
    assert!(resp.get("errors").is_none(), "{resp:#}");
    resp["data"]["addToCart"].clone()
}

pub(crate) async fn cart(app: &TestApp, token: &str) -> Value {
    app.data_as(token, CART, json!({})).await["me"]["cart"].clone()
}

/// The share code of `token`'s link to `product`.
pub(crate) async fn share_code(app: &TestApp, token: &str, product: Uuid) -> String {
    app.data_as(
        token,
        "mutation($p: ID!) { createShareLink(productId: $p) { code } }",
        json!({ "p": gid(Kind::Product, product) }),
    )
    .await["createShareLink"]["code"]
        .as_str()
        .expect("code")
        .to_owned()
}

#[tokio::test]
async fn lines_merge_per_sku_keep_the_last_share_code_and_say_who_earns() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product_id, sku_id) = another_product(&app, &f, 50, false).await;
    let (x, _) = app.user("x@example.com", CliRole::PushHand).await;
    let (y, _) = app.user("y@example.com", CliRole::PushHand).await;
    let x_code = share_code(&app, &x, product_id).await;
    let y_code = share_code(&app, &y, product_id).await;
    let upline = fixtures::member(&app, "upline", Tier::PushHand, None).await;
    let bound = fixtures::member(&app, "bound", Tier::Buyer, Some(upline.id)).await;
    let bound = token_of(&app, &bound);
    let lone = fixtures::member(&app, "lone", Tier::Buyer, None).await;
    let lone = token_of(&app, &lone);

    // Through X's link: X would earn a promotion rebate, whoever the buyer's upline is.
    let c = add_ok(&app, &bound, sku_id, 2, Some(&x_code)).await;
    let line = &c["lines"][0];
    assert_eq!(
        (line["quantity"].clone(), line["shareCode"].clone()),
        (json!(2), json!(x_code))
    );
    assert_eq!(line["attribution"]["rule"], "PROMOTION");
    assert_eq!(line["attribution"]["earnerName"], "x");
    let summary = line["attribution"]["summary"].as_str().expect("summary");
    assert!(
        summary.starts_with("PROMOTION: bought through x's share link"),
        "{summary}"
    );

    // Again without a code: the units add up, the code stays.
    let c = add_ok(&app, &bound, sku_id, 3, None).await;
    assert_eq!(
        c["lines"].as_array().map(Vec::len),
        Some(1),
        "one line per SKU"
    );
    assert_eq!(
        (
            c["lines"][0]["quantity"].clone(),
            c["lines"][0]["shareCode"].clone()
        ),
        (json!(5), json!(x_code))
    );
    // Through Y's link: the last click wins.
    let c = add_ok(&app, &bound, sku_id, 1, Some(&y_code.to_lowercase())).await;
    assert_eq!(
        (
            c["lines"][0]["quantity"].clone(),
            c["lines"][0]["shareCode"].clone()
        ),
        (json!(6), json!(y_code))
    );
    assert_eq!(c["lines"][0]["attribution"]["earnerName"], "y");
    assert_eq!(c["subtotal"], "1194.00");

    let full = cart(&app, &bound).await;
    let line = &full["lines"][0];
    assert_eq!(line["available"], true);
    assert_eq!(line["unavailableReason"], Value::Null);
    assert_eq!(
        (line["unitPrice"].clone(), line["priceWhenAdded"].clone()),
        (json!("199.00"), json!("199.00"))
    );
    assert_eq!(line["priceChanged"], false);
    assert_eq!(line["sku"]["id"], gid(Kind::Sku, sku_id));

    // Without a link, the buyer's upline earns; without either, nobody.
    let (_, other_sku) = another_product(&app, &f, 5, false).await;
    let c = add_ok(&app, &bound, other_sku, 1, None).await;
    let attribution = &c["lines"][1]["attribution"];
    assert_eq!(attribution["rule"], "BOUND_REBATE");
    assert_eq!(attribution["earnerName"], "upline");
    let c = add_ok(&app, &lone, other_sku, 1, None).await;
    assert_eq!(c["lines"][0]["attribution"]["rule"], Value::Null);
    assert!(
        c["lines"][0]["attribution"]["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("nobody"))
    );
    // A push-hand's own purchase is its own, share code or not.
    let c = add_ok(&app, &y, sku_id, 1, Some(&x_code)).await;
    assert_eq!(c["lines"][0]["attribution"]["rule"], "SELF_PURCHASE");
    assert_eq!(c["lines"][0]["attribution"]["earnerName"], "y");
    // A membership-activity product through a link: a fixed reward.
    let (m_product, m_sku) = another_product(&app, &f, 5, true).await;
    let m_code = share_code(&app, &x, m_product).await;
    let c = add_ok(&app, &lone, m_sku, 1, Some(&m_code)).await;
    let line = c["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["shareCode"] == json!(m_code))
        .expect("line")
        .clone();
    assert_eq!(line["attribution"]["rule"], "MEMBERSHIP_REWARD");
}

#[tokio::test]
async fn bad_input_and_other_members_lines_are_refused() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product_id, sku_id) = another_product(&app, &f, 50, false).await;
    let (other_product, other_sku) = another_product(&app, &f, 5, false).await;
    let (x, _) = app.user("x@example.com", CliRole::PushHand).await;
    let other_code = share_code(&app, &x, other_product).await;
    let (me, _) = app.user("me@example.com", CliRole::PushHand).await;
    let (them, _) = app.user("them@example.com", CliRole::PushHand).await;
    let field = |v: &Value| v["errors"][0]["extensions"]["field"].clone();

    for q in [0, -1, 1000] {
        let resp = add(&app, &me, sku_id, q, None).await;
        assert_eq!(
            (error_code(&resp), field(&resp)),
            (Some("VALIDATION"), json!("quantity")),
            "{q}: {resp:#}"
        );
    }
    let resp = add(&app, &me, sku_id, 1, Some("NOPE")).await;
    assert_eq!(
        (error_code(&resp), field(&resp)),
        (Some("VALIDATION"), json!("shareCode"))
    );
    let resp = add(&app, &me, sku_id, 1, Some(&other_code)).await;
    assert_eq!(
        (error_code(&resp), field(&resp)),
        (Some("VALIDATION"), json!("shareCode")),
        "another product's code"
    );
    let resp = add(&app, &me, Uuid::now_v7(), 1, None).await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"));
    assert!(
        cart(&app, &me).await["lines"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "nothing half-written"
    );

    // 999 units at most in one line, however they come.
    let c = add_ok(&app, &me, sku_id, 999, None).await;
    let line = c["lines"][0]["id"].as_str().expect("id").to_owned();
    let resp = add(&app, &me, sku_id, 1, None).await;
    assert_eq!(
        (error_code(&resp), field(&resp)),
        (Some("VALIDATION"), json!("quantity"))
    );
    for q in [0, 1000] {
        let resp = app.gql_as(&me, UPDATE, json!({ "l": line, "q": q })).await;
        assert_eq!(
            (error_code(&resp), field(&resp)),
            (Some("VALIDATION"), json!("quantity"))
        );
    }
    let set = app.data_as(&me, UPDATE, json!({ "l": line, "q": 7 })).await;
    assert_eq!(set["updateCartLine"]["lines"][0]["quantity"], 7);

    // Another member's line: unknown, to every write and to node(id:).
    let resp = app
        .gql_as(&them, UPDATE, json!({ "l": line, "q": 1 }))
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"));
    let theirs = add_ok(&app, &them, other_sku, 1, None).await["lines"][0]["id"].clone();
    let resp = app
        .gql_as(&them, REMOVE, json!({ "l": [theirs, line] }))
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"));
    let resp = app
        .gql_as(
            &them,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": line }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"));
    let node = app
        .data_as(
            &me,
            "query($id: ID!) { node(id: $id) { ... on CartLine { quantity } } }",
            json!({ "id": line }),
        )
        .await;
    assert_eq!(node["node"]["quantity"], 7);
    assert_eq!(
        cart(&app, &them).await["lines"].as_array().map(Vec::len),
        Some(1),
        "all or nothing"
    );
    assert_eq!(
        cart(&app, &me).await["lines"].as_array().map(Vec::len),
        Some(1)
    );
    let left = app.data_as(&me, REMOVE, json!({ "l": [line] })).await;
    assert!(
        left["removeCartLines"]["lines"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    // 100 lines at most.
    fill_cart(&app, "me@example.com", 100).await;
    let resp = add(&app, &me, sku_id, 1, None).await;
    assert_eq!(error_code(&resp), Some("CART_FULL"), "{resp:#}");
    let _ = product_id;
}

#[tokio::test]
async fn lines_that_cannot_be_ordered_stay_with_their_reason() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let mut skus = Vec::new();
    let mut products = Vec::new();
    for _ in 0..5 {
        let (p, s) = another_product(&app, &f, 10, false).await;
        products.push(p);
        skus.push(s);
    }
    let (me, _) = app.user("me@example.com", CliRole::PushHand).await;
    for s in &skus {
        add_ok(&app, &me, *s, 2, None).await;
    }
    let set_sku = |id: Uuid, col: sku::Column, v: sea_orm::Value| {
        let app = &app;
        async move {
            sku::Entity::update_many()
                .col_expr(col, Expr::value(v))
                .filter(sku::Column::Id.eq(id))
                .exec(app.db())
                .await
                .expect("update");
        }
    };
    // 0: price changed; 1: one unit left; 2: none left; 3: delisted; 4: deleted.
    set_sku(skus[0], sku::Column::Price, Money::from_fen(18_900).into()).await;
    set_sku(skus[1], sku::Column::Stock, 1.into()).await;
    set_sku(skus[2], sku::Column::Stock, 0.into()).await;
    product::Entity::update_many()
        .col_expr(
            product::Column::Status,
            Expr::value(product::Status::Unpublished),
        )
        .filter(product::Column::Id.eq(products[3]))
        .exec(app.db())
        .await
        .expect("unpublish");
    sku::Entity::delete_by_id(skus[4])
        .exec(app.db())
        .await
        .expect("delete");

    let c = cart(&app, &me).await;
    let lines = c["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 5, "nothing dropped: {c:#}");
    let seen: Vec<(Value, Value, Value)> = lines
        .iter()
        .map(|l| {
            (
                l["available"].clone(),
                l["unavailableReason"].clone(),
                l["priceChanged"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (json!(true), Value::Null, json!(true)),
            (json!(false), json!("NOT_ENOUGH_STOCK"), json!(false)),
            (json!(false), json!("OUT_OF_STOCK"), json!(false)),
            (json!(false), json!("UNPUBLISHED"), json!(false)),
            (json!(false), json!("DELETED"), json!(false)),
        ]
    );
    assert_eq!(
        (
            lines[0]["unitPrice"].clone(),
            lines[0]["priceWhenAdded"].clone()
        ),
        (json!("189.00"), json!("199.00"))
    );
    assert_eq!(
        (
            lines[3]["sku"].clone(),
            lines[4]["sku"].clone(),
            lines[4]["unitPrice"].clone()
        ),
        (Value::Null, Value::Null, Value::Null)
    );
    assert_eq!(lines[4]["skuId"], gid(Kind::Sku, skus[4]));
    assert_eq!(
        c["subtotal"], "378.00",
        "the available line at today's price"
    );

    // Ordering a line that cannot be ordered is refused, and leaves it in the cart.
    for (i, code) in [
        (3, "CART_LINE_UNAVAILABLE"),
        (4, "CART_LINE_UNAVAILABLE"),
        (2, "OUT_OF_STOCK"),
    ] {
        let resp = app
            .gql_as(
                &me,
                "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }",
                json!({ "i": { "cartLineIds": [lines[i]["id"]] } }),
            )
            .await;
        assert_eq!(error_code(&resp), Some(code), "{i}: {resp:#}");
    }
    assert_eq!(
        cart(&app, &me).await["lines"].as_array().map(Vec::len),
        Some(5)
    );
    // Adding again takes today's price: no change to flag any more.
    let c = add_ok(&app, &me, skus[0], 1, None).await;
    assert_eq!(c["lines"][0]["quantity"], 3);
    assert_eq!(cart(&app, &me).await["lines"][0]["priceChanged"], false);
}

#[tokio::test]
async fn concurrent_adds_of_one_sku_add_every_unit() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (_, sku_id) = another_product(&app, &f, 50, false).await;
    let (me, _) = app.user("me@example.com", CliRole::PushHand).await;
    let (_, other) = another_product(&app, &f, 5, false).await;
    // Twenty adds of 1 to 20 units of one SKU, and of another, all at once.
    let adds = (1..=20)
        .flat_map(|q| [(sku_id, q), (other, 1)])
        .map(|(s, q)| {
            let (app, me) = (&app, &me);
            async move { add(app, me, s, q, None).await }
        });
    for resp in join_all(adds).await {
        assert!(resp.get("errors").is_none(), "{resp:#}");
    }
    let c = cart(&app, &me).await;
    let mut quantities: Vec<(Value, Value)> = c["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| (l["skuId"].clone(), l["quantity"].clone()))
        .collect();
    quantities.sort_by_key(|(_, q)| q.as_i64());
    assert_eq!(
        quantities,
        vec![
            (json!(gid(Kind::Sku, other)), json!(20)),
            (json!(gid(Kind::Sku, sku_id)), json!(210))
        ],
        "one line per SKU, every unit added"
    );
    let rows = cart_line::Entity::find()
        .count(app.db())
        .await
        .expect("count");
    assert_eq!(rows, 2);
}

/// Puts `n` lines of SKUs that do not exist into the cart of the member signed up as `email`
/// (the cart's limits count lines, not what they hold); answers the member.
async fn fill_cart(app: &TestApp, email: &str, n: usize) -> entity::member::Model {
    let member = entity::member::Entity::find()
        .filter(entity::member::Column::Email.eq(email))
        .one(app.db())
        .await
        .expect("query")
        .expect("member");
    let now = app.clock_now();
    let rows: Vec<cart_line::ActiveModel> = (0..n)
        .map(|_| {
            cart_line::ActiveModel::from(cart_line::Model {
                id: Uuid::now_v7(),
                member_id: member.id,
                sku_id: Uuid::now_v7(),
                quantity: 1,
                share_code: None,
                unit_price: Money::from_fen(100),
                created_at: now,
                updated_at: now,
            })
        })
        .collect();
    cart_line::Entity::insert_many(rows)
        .exec_without_returning(app.db())
        .await
        .expect("lines");
    member
}

/// The last lines' room under concurrency: a cart of 97 lines and ten new SKUs added at
/// once — exactly three get in (the member's row is held while the line count is checked in
/// the insert), the other seven are `CART_FULL`, and no line is half-written.
#[tokio::test]
async fn concurrent_adds_never_pass_the_line_limit() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (me, _) = app.user("full@example.com", CliRole::PushHand).await;
    let me_row = fill_cart(&app, "full@example.com", 97).await;
    let mut skus = Vec::new();
    for _ in 0..10 {
        skus.push(another_product(&app, &f, 5, false).await.1);
    }
    let adds = skus.iter().map(|s| {
        let (app, me) = (&app, &me);
        async move { add(app, me, *s, 1, None).await }
    });
    let answers = join_all(adds).await;
    let added = answers.iter().filter(|r| r.get("errors").is_none()).count();
    let full = answers
        .iter()
        .filter(|r| error_code(r) == Some("CART_FULL"))
        .count();
    assert_eq!((added, full), (3, 7), "{answers:#?}");
    let lines = cart_line::Entity::find()
        .filter(cart_line::Column::MemberId.eq(me_row.id))
        .count(app.db())
        .await
        .expect("count");
    assert_eq!(lines, 100);
}

/// A cart write drops the member's cached answers but keeps its remembered row (the event is
/// `OwnChanged`, not `Changed`): the cart read right after an add costs the cart's lines
/// only, and a field about the lines' SKUs one statement more, whatever the number of lines.
#[tokio::test]
async fn a_cart_write_keeps_the_members_remembered_row() {
    let app = TestApp::spawn_with(&["--response-cache", "false"]).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (me, _) = app.user("kept@example.com", CliRole::PushHand).await;
    for _ in 0..3 {
        let (_, sku) = another_product(&app, &f, 10, false).await;
        add_ok(&app, &me, sku, 1, None).await;
    }
    let before = app.statements().await;
    let c = app
        .data_as(&me, "{ me { cart { lines { id quantity } } } }", json!({}))
        .await;
    assert_eq!(c["me"]["cart"]["lines"].as_array().map(Vec::len), Some(3));
    assert_eq!(app.statements().await - before, 1, "the lines only");
    let before = app.statements().await;
    let c = app
        .data_as(
            &me,
            "{ me { cart { subtotal lines { available sku { price } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(c["me"]["cart"]["lines"][2]["available"], true);
    assert_eq!(
        app.statements().await - before,
        2,
        "the lines, then their SKUs with their products"
    );
}

/// Every cart write tells the caches that the member's own views changed (after its commit);
/// a refused one publishes nothing.
#[tokio::test]
async fn every_cart_write_publishes_the_members_change() {
    use pushhand::events::{Event, Kind as EventKind};
    use pushhand::service::cart as svc;
    let app = TestApp::spawn().await;
    let (_, sku_id) = product(&app, 50, false).await;
    let m = fixtures::member(&app, "heard", Tier::Buyer, None).await;
    let heard = std::sync::Arc::new(crate::storefront::Heard::default());
    let events = app.state.events.clone().with_listener(heard.clone());
    let changed = Event::new(m.id, EventKind::OwnChanged, m.id);
    let now = app.clock_now();
    let expect_one = |step: &str| {
        let batch = std::mem::take(&mut *heard.0.lock().expect("lock"));
        assert_eq!(batch, vec![changed], "{step}");
    };
    let c = svc::add(app.db(), &events, &m, sku_id, 2, None, now)
        .await
        .map_err(anyhow::Error::from)
        .expect("added");
    expect_one("add");
    let line = c[0].id;
    svc::update_line(app.db(), &events, &m, line, 3, now)
        .await
        .map_err(anyhow::Error::from)
        .expect("updated");
    expect_one("update");
    assert!(
        svc::update_line(app.db(), &events, &m, Uuid::now_v7(), 3, now)
            .await
            .is_err()
    );
    assert!(
        svc::add(app.db(), &events, &m, sku_id, 1000, None, now)
            .await
            .is_err()
    );
    assert!(
        heard.0.lock().expect("lock").is_empty(),
        "nothing on a refusal"
    );
    svc::remove_lines(app.db(), &events, &m, &[line])
        .await
        .map_err(anyhow::Error::from)
        .expect("removed");
    expect_one("remove");
}
