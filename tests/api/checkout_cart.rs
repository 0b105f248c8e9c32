//! Checkout from the cart: the preview writes nothing and shows shipping and the viewer's own
//! earnings; the order snapshots its address, charges shipping (never part of a rebate base),
//! takes its lines out of the cart in its own transaction, orders a cart line once however
//! many checkouts race, answers a retried key with the first order, and refuses another
//! member's cart lines and addresses.

use entity::member::Tier;
use entity::{cart_line, idempotency_key, order, order_line};
use futures_util::future::join_all;
use pushhand::graphql::ids::Kind;
use pushhand::service::members::CliRole;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cart::{add_ok, cart, share_code, token_of};
use crate::earnings::{another_product, pay, product};
use crate::fixtures::{self, gid};
use crate::helpers::{TestApp, error_code};

const PREVIEW: &str = "query($i: CheckoutPreviewInput!) { checkoutPreview(input: $i) {
  goodsTotal shippingTotal total address { regionText }
  parcels { merchant { name } subtotal fee baseFee surcharge freeThreshold basis reason }
  lines { cartLineId sku { id } quantity unitPrice lineTotal shareCode
    attribution { rule earnerName summary }
    earnings { kind level amount explanation { baseAmount basis rate summary } } } } }";

const PLACE: &str = "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) {
  id status total goodsTotal shippingFee buyerNote
  address { recipientName phone province { code name } city { code name } district { code name }
    regionText detail postalCode }
  lines { id quantity amount } } }";

const ADD_ADDRESS: &str = "mutation($i: AddressInput!) { addAddress(input: $i) { id } }";

/// An address in 新疆乌鲁木齐市天山区 (a remote province).
fn xinjiang(name: &str) -> Value {
    json!({
        "recipientName": name,
        "phone": "13912345678",
        "provinceCode": "650000",
        "cityCode": "650100",
        "districtCode": "650102",
        "detail": "解放北路 1 号",
        "postalCode": "830000",
    })
}

async fn address(app: &TestApp, token: &str, input: Value) -> String {
    app.data_as(token, ADD_ADDRESS, json!({ "i": input })).await["addAddress"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Rows of every table a checkout writes.
async fn rows(app: &TestApp) -> [u64; 4] {
    let db = app.db();
    [
        order::Entity::find().count(db).await.expect("orders"),
        order_line::Entity::find().count(db).await.expect("lines"),
        cart_line::Entity::find().count(db).await.expect("cart"),
        idempotency_key::Entity::find()
            .count(db)
            .await
            .expect("keys"),
    ]
}

/// The shipping rule of the catalog's merchant: 10.00 a parcel, free from 300.00, 20.00 more
/// to 新疆.
async fn shipping_rule(app: &TestApp, admin: &str, merchant: Uuid) {
    app.data_as(
        admin,
        "mutation($m: ID!, $i: ShippingRuleInput!) { setShippingRule(merchantId: $m, input: $i) { baseFee } }",
        json!({ "m": gid(Kind::Merchant, merchant), "i": {
            "baseFee": "10.00", "freeThreshold": "300.00",
            "surcharges": [{ "provinceCodes": ["650000"], "amount": "20.00" }] } }),
    )
    .await;
}

fn ids(cart: &Value) -> Vec<Value> {
    cart["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["id"].clone())
        .collect()
}

#[tokio::test]
async fn a_cart_checkout_previews_orders_snapshots_and_charges_shipping() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product_id, sku_id) = another_product(&app, &f, 50, false).await;
    shipping_rule(&app, &admin, f.merchant.id).await;
    let (x, _) = app.user("x@example.com", CliRole::PushHand).await;
    let code = share_code(&app, &x, product_id).await;
    let buyer = fixtures::member(&app, "buyer", Tier::Buyer, None).await;
    let buyer = token_of(&app, &buyer);
    let home = address(&app, &buyer, xinjiang("王小明")).await;
    let c = add_ok(&app, &buyer, sku_id, 1, Some(&code)).await;
    let lines = ids(&c);

    // The preview: 199.00 of goods, 10.00 + 20.00 to 新疆; nothing written.
    let before = rows(&app).await;
    let preview = app
        .data_as(
            &buyer,
            PREVIEW,
            json!({ "i": { "cartLineIds": lines, "addressId": home } }),
        )
        .await["checkoutPreview"]
        .clone();
    assert_eq!(rows(&app).await, before, "a preview writes nothing");
    assert_eq!(
        (
            &preview["goodsTotal"],
            &preview["shippingTotal"],
            &preview["total"]
        ),
        (&json!("199.00"), &json!("30.00"), &json!("229.00"))
    );
    let parcel = &preview["parcels"][0];
    assert_eq!(
        (&parcel["basis"], &parcel["fee"], &parcel["surcharge"]),
        (&json!("BASE_FEE"), &json!("30.00"), &json!("20.00"))
    );
    assert_eq!(
        preview["address"]["regionText"],
        "新疆维吾尔自治区乌鲁木齐市天山区"
    );
    let line = &preview["lines"][0];
    assert_eq!(
        (&line["unitPrice"], &line["lineTotal"], &line["shareCode"]),
        (&json!("199.00"), &json!("199.00"), &json!(code))
    );
    assert_eq!(line["cartLineId"], lines[0]);
    assert_eq!(line["attribution"]["rule"], "PROMOTION");
    assert_eq!(
        line["earnings"],
        json!([]),
        "a plain buyer sees no one's amounts"
    );

    // Two units reach the threshold: only the remote surcharge is left.
    let two = app
        .data_as(
            &buyer,
            "mutation($l: ID!) { updateCartLine(lineId: $l, quantity: 2) { lines { id } } }",
            json!({ "l": lines[0] }),
        )
        .await;
    assert!(two.get("updateCartLine").is_some());
    let preview = app
        .data_as(
            &buyer,
            PREVIEW,
            json!({ "i": { "cartLineIds": lines, "addressId": home } }),
        )
        .await["checkoutPreview"]
        .clone();
    assert_eq!(
        (&preview["parcels"][0]["basis"], &preview["total"]),
        (&json!("FREE_OVER_THRESHOLD"), &json!("418.00"))
    );

    // The order: shipping in the total, the address copied, the note kept, the cart emptied.
    let input = json!({ "cartLineIds": lines, "addressId": home, "buyerNote": " 请放门卫 ",
                        "idempotencyKey": "k-1" });
    let placed = app.data_as(&buyer, PLACE, json!({ "i": input })).await["placeOrder"].clone();
    assert_eq!(
        (
            &placed["total"],
            &placed["goodsTotal"],
            &placed["shippingFee"],
            &placed["buyerNote"]
        ),
        (
            &json!("418.00"),
            &json!("398.00"),
            &json!("20.00"),
            &json!("请放门卫")
        )
    );
    let snapshot = placed["address"].clone();
    assert_eq!(snapshot["recipientName"], "王小明");
    assert_eq!(snapshot["phone"], "+8613912345678");
    assert_eq!(
        snapshot["district"],
        json!({ "code": "650102", "name": "天山区" })
    );
    assert_eq!(snapshot["postalCode"], "830000");
    assert!(
        cart(&app, &buyer).await["lines"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "ordered lines leave the cart"
    );
    // The same key again answers the first order.
    let again = app.data_as(&buyer, PLACE, json!({ "i": input })).await["placeOrder"].clone();
    assert_eq!(again, placed);
    // Editing the address does not move the order.
    app.data_as(
        &buyer,
        "mutation($id: ID!, $i: AddressInput!) { updateAddress(id: $id, input: $i) { id } }",
        json!({ "id": home, "i": { "recipientName": "李四", "phone": "13800000000", "provinceCode": "110000",
                "cityCode": "110100", "districtCode": "110105", "detail": "建国路 88 号" } }),
    )
    .await;
    let read = app
        .data_as(&buyer, "query($id: ID!) { node(id: $id) { ... on Order { address { recipientName phone province { code name } city { code name } district { code name } regionText detail postalCode } } } }", json!({ "id": placed["id"] }))
        .await;
    assert_eq!(read["node"]["address"], snapshot);

    // Paid with the shipping: the earning's base is the goods, never shipping.
    let paid = pay(
        &app,
        &admin,
        placed["id"].as_str().expect("id"),
        "ref-1",
        "418.00",
    )
    .await;
    assert!(paid.get("errors").is_none(), "{paid:#}");
    let earned = app
        .data_as(&x, "{ me { earnings(first: 5) { nodes { kind amount explanation { baseAmount basis } } } } }", json!({}))
        .await;
    let e = &earned["me"]["earnings"]["nodes"][0];
    assert_eq!(
        (&e["kind"], &e["amount"], &e["explanation"]["baseAmount"]),
        (&json!("PROMOTION"), &json!("59.70"), &json!("398.00"))
    );
    assert!(
        e["explanation"]["basis"]
            .as_str()
            .is_some_and(|b| b.starts_with("GOODS_AMOUNT"))
    );
}

#[tokio::test]
async fn a_push_hand_previews_its_own_earnings_only() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product_id, sku_id) = another_product(&app, &f, 50, false).await;
    let upline = fixtures::member(&app, "upline", Tier::PushHand, None).await;
    let me = fixtures::member(&app, "me", Tier::PushHand, Some(upline.id)).await;
    let me = token_of(&app, &me);
    let (x, _) = app.user("x@example.com", CliRole::PushHand).await;
    let code = share_code(&app, &x, product_id).await;
    // Explicit lines work as well as cart lines.
    let preview = app
        .data_as(&me, PREVIEW, json!({ "i": { "lines": [{ "skuId": gid(Kind::Sku, sku_id), "quantity": 1, "shareCode": code }] } }))
        .await["checkoutPreview"]
        .clone();
    assert_eq!(
        (
            &preview["shippingTotal"],
            &preview["total"],
            &preview["parcels"]
        ),
        (&json!("0.00"), &json!("199.00"), &json!([]))
    );
    let line = &preview["lines"][0];
    assert_eq!(line["attribution"]["rule"], "SELF_PURCHASE");
    // Its own 15 %, not its upline's team rebate.
    let earnings = line["earnings"].as_array().expect("earnings");
    assert_eq!(earnings.len(), 1, "{earnings:?}");
    assert_eq!(
        (&earnings[0]["kind"], &earnings[0]["amount"]),
        (&json!("SELF_PURCHASE"), &json!("29.85"))
    );
    assert_eq!(earnings[0]["explanation"]["baseAmount"], "199.00");
    assert!(
        earnings[0]["explanation"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("15% of 199.00"))
    );
}

#[tokio::test]
async fn another_members_cart_lines_and_addresses_are_not_found() {
    let app = TestApp::spawn().await;
    let (_, sku_id) = product(&app, 50, false).await;
    let (me, _) = app.user("me@example.com", CliRole::PushHand).await;
    let (them, _) = app.user("them@example.com", CliRole::PushHand).await;
    let mine = ids(&add_ok(&app, &me, sku_id, 1, None).await);
    let theirs = ids(&add_ok(&app, &them, sku_id, 1, None).await);
    let my_address = address(&app, &me, xinjiang("甲")).await;
    let their_address = address(&app, &them, xinjiang("乙")).await;
    let before = rows(&app).await;
    for input in [
        json!({ "cartLineIds": theirs }),
        json!({ "cartLineIds": [mine[0].clone(), theirs[0].clone()] }),
        json!({ "cartLineIds": mine, "addressId": their_address }),
    ] {
        let resp = app.gql_as(&me, PLACE, json!({ "i": input })).await;
        assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{input}: {resp:#}");
        let resp = app.gql_as(&me, PREVIEW, json!({ "i": input })).await;
        assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{input}: {resp:#}");
    }
    // Bad input: both or neither source, a line twice, a long note, a line too large.
    let field = |v: &Value| v["errors"][0]["extensions"]["field"].clone();
    let line = json!([{ "skuId": gid(Kind::Sku, sku_id), "quantity": 1 }]);
    for (input, at) in [
        (json!({ "cartLineIds": mine, "lines": line }), "lines"),
        (json!({ "addressId": my_address }), "lines"),
        (json!({ "cartLineIds": [] }), "cartLineIds"),
        (
            json!({ "cartLineIds": [mine[0].clone(), mine[0].clone()] }),
            "cartLineIds[1]",
        ),
        (
            json!({ "cartLineIds": mine, "buyerNote": "长".repeat(201) }),
            "buyerNote",
        ),
        (
            json!({ "lines": [{ "skuId": gid(Kind::Sku, sku_id), "quantity": 100 }] }),
            "lines[0].quantity",
        ),
    ] {
        let resp = app.gql_as(&me, PLACE, json!({ "i": input })).await;
        assert_eq!(
            (error_code(&resp), field(&resp)),
            (Some("VALIDATION"), json!(at)),
            "{input}: {resp:#}"
        );
    }
    app.data_as(
        &me,
        "mutation($l: ID!) { updateCartLine(lineId: $l, quantity: 100) { subtotal } }",
        json!({ "l": mine[0] }),
    )
    .await;
    let resp = app
        .gql_as(&me, PLACE, json!({ "i": { "cartLineIds": mine } }))
        .await;
    assert_eq!(
        (error_code(&resp), field(&resp)),
        (Some("VALIDATION"), json!("cartLineIds[0]")),
        "{resp:#}"
    );
    assert_eq!(rows(&app).await, before, "nothing written");
}

/// Checkouts of the same cart lines at once, with different keys: one order, one stock
/// decrement, the lines gone; the others `NOT_FOUND`. With one key: every call answers the
/// one order.
#[tokio::test]
async fn concurrent_checkouts_of_one_cart_order_each_line_once() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (_, sku_id) = another_product(&app, &f, 50, false).await;
    let (_, other_sku) = another_product(&app, &f, 50, false).await;
    let (me, _) = app.user("me@example.com", CliRole::PushHand).await;
    let (twin, _) = app.user("twin@example.com", CliRole::PushHand).await;
    for (token, key) in [(&me, None), (&twin, Some("same"))] {
        add_ok(&app, token, sku_id, 2, None).await;
        let lines = ids(&add_ok(&app, token, other_sku, 1, None).await);
        let calls = (0..8).map(|i| {
            let (app, token, lines) = (&app, token, lines.clone());
            let key = key.map_or_else(|| format!("key-{i}"), str::to_owned);
            async move {
                app.gql_as(
                    token,
                    "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }",
                    json!({ "i": { "cartLineIds": lines, "idempotencyKey": key } }),
                )
                .await
            }
        });
        let answers = join_all(calls).await;
        let placed: Vec<&Value> = answers
            .iter()
            .filter_map(|a| {
                a["data"]["placeOrder"]["id"]
                    .as_str()
                    .map(|_| &a["data"]["placeOrder"]["id"])
            })
            .collect();
        match key {
            None => {
                assert_eq!(placed.len(), 1, "exactly one order: {answers:#?}");
                for a in answers.iter().filter(|a| a.get("errors").is_some()) {
                    assert_eq!(error_code(a), Some("NOT_FOUND"), "{a:#}");
                }
            }
            Some(_) => {
                assert_eq!(placed.len(), 8, "{answers:#?}");
                assert!(
                    placed.iter().all(|id| *id == placed[0]),
                    "one order for one key"
                );
            }
        }
        assert!(
            cart(&app, token).await["lines"]
                .as_array()
                .is_some_and(Vec::is_empty)
        );
    }
    assert_eq!(
        order::Entity::find().count(app.db()).await.expect("orders"),
        2
    );
    let left = |id: Uuid| {
        let app = &app;
        async move {
            entity::sku::Entity::find_by_id(id)
                .one(app.db())
                .await
                .expect("q")
                .expect("sku")
                .stock
        }
    };
    assert_eq!(
        (left(sku_id).await, left(other_sku).await),
        (46, 48),
        "each order took its units once"
    );
}

/// The unpaid-order cap (5 by default) under a burst of checkouts from one cart: twenty
/// orders of one cart line each at once place at most five; every refused order's line is
/// still in the cart — untouched when the cap refused it up front, put back (with its share
/// code) when its order withdrew after being written — and no line is in both an order and
/// the cart.
#[tokio::test]
async fn cart_lines_of_orders_refused_by_the_unpaid_cap_stay_in_the_cart() {
    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (me, _) = app.user("burst@example.com", CliRole::PushHand).await;
    let (sharer, _) = app.user("sharer@example.com", CliRole::PushHand).await;
    let mut lines = Vec::new();
    for _ in 0..20 {
        let (product_id, sku) = another_product(&app, &f, 10, false).await;
        let code = share_code(&app, &sharer, product_id).await;
        lines = ids(&add_ok(&app, &me, sku, 1, Some(&code)).await);
    }
    assert_eq!(lines.len(), 20);
    let calls = lines.iter().map(|line| {
        let (app, me) = (&app, &me);
        async move {
            app.gql_as(
                me,
                "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id lines { sku { id } } } }",
                json!({ "i": { "cartLineIds": [line] } }),
            )
            .await
        }
    });
    let answers = join_all(calls).await;
    let mut ordered = Vec::new();
    for a in &answers {
        match a["data"]["placeOrder"]["lines"][0]["sku"]["id"].as_str() {
            Some(sku) => ordered.push(sku.to_owned()),
            None => assert_eq!(error_code(a), Some("TOO_MANY_UNPAID_ORDERS"), "{a:#}"),
        }
    }
    // At most the cap (a burst may place fewer, even none: an order that finds too many
    // pending once written withdraws itself).
    assert!(ordered.len() <= 5, "{answers:#?}");
    let left = cart(&app, &me).await;
    let left = left["lines"].as_array().expect("lines");
    assert_eq!(left.len(), 20 - ordered.len(), "{left:#?}");
    for l in left {
        let sku = l["skuId"].as_str().expect("sku");
        assert!(
            !ordered.iter().any(|o| o == sku),
            "{sku} both ordered and in the cart"
        );
        assert!(l["shareCode"].is_string(), "the share code came back: {l}");
        assert_eq!(l["quantity"], 1);
    }
}

/// Checkouts written together on PostgreSQL (one transaction each on SQLite): two of them
/// from the same cart line break its unique index, so the statement fails whole and each
/// order is written again on its own — the first gets the line, the second is refused, an
/// order beside them is written as if alone, and nothing is half-written.
#[tokio::test]
async fn a_cart_line_in_two_checkouts_written_together_goes_to_the_first() {
    use crate::checkouts::{checkout, rows_of, stock};
    use pushhand::service::cart as cart_svc;

    let app = TestApp::spawn().await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product_id, sku) = another_product(&app, &f, 10, false).await;
    let buyer = fixtures::member(&app, "buyer", Tier::Buyer, None).await;
    let now = app.clock_now();
    let c = cart_svc::add(app.db(), &app.state.events, &buyer, sku, 1, None, now)
        .await
        .map_err(anyhow::Error::from)
        .expect("added");
    let line = c[0].id;
    let from_cart = || {
        let mut c = checkout(buyer.id, product_id, sku, 1, now);
        c.lines[0].cart_line_id = Some(line);
        c.cart_lines = vec![line];
        c
    };
    let together = [
        from_cart(),
        from_cart(),
        checkout(buyer.id, product_id, sku, 1, now),
    ];
    let outcomes = app.state.checkouts.write_all(&together).await;
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
    assert!(
        outcomes[1]
            .as_ref()
            .is_err_and(pushhand::db::is_unique_violation),
        "{outcomes:?}"
    );
    assert_eq!(
        rows_of(&app, &together[1]).await,
        (None, vec![]),
        "nothing half-written"
    );
    for c in [&together[0], &together[2]] {
        assert_eq!(rows_of(&app, c).await.0.as_ref(), Some(&c.order));
    }
    assert_eq!(stock(&app, sku).await, 8, "two orders took a unit each");
    assert_eq!(
        cart_line::Entity::find()
            .count(app.db())
            .await
            .expect("count"),
        0
    );
}

/// A preview is answered without a future per field when its selection is plain fields
/// (`graphql::transport::plain`), with the parcels' merchants read beforehand; inside an
/// inline fragment the same selection goes through the resolvers. Both answer alike, for a
/// push-hand's own purchase (earnings and their explanations), with shipping, from cart
/// lines and from explicit lines.
#[tokio::test]
async fn plain_and_resolved_previews_answer_alike() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let f = fixtures::catalog(app.db(), 0).await;
    let (product_id, sku_id) = another_product(&app, &f, 50, false).await;
    shipping_rule(&app, &admin, f.merchant.id).await;
    let upline = fixtures::member(&app, "upline", Tier::PushHand, None).await;
    let me = fixtures::member(&app, "me", Tier::PushHand, Some(upline.id)).await;
    let me = token_of(&app, &me);
    let (x, _) = app.user("x@example.com", CliRole::PushHand).await;
    let code = share_code(&app, &x, product_id).await;
    let home = address(&app, &me, xinjiang("王小明")).await;
    let lines = ids(&add_ok(&app, &me, sku_id, 2, Some(&code)).await);
    let sel = "__typename goodsTotal shippingTotal total
      parcels { __typename merchant { __typename id name } subtotal fee baseFee surcharge
        freeThreshold basis reason }
      lines { __typename cartLineId sku { __typename id name price stock } quantity unitPrice
        lineTotal shareCode attribution { __typename rule earnerName summary }
        earnings { __typename kind level amount explanation { __typename rule level baseAmount
          basis rate fixedPerUnit units uncappedAmount shareLinkId bindingId adjustsEarningId
          policyVersion summary } } }";
    let plain =
        format!("query($i: CheckoutPreviewInput!) {{ checkoutPreview(input: $i) {{ {sel} }} }}");
    let resolved = format!(
        "query($i: CheckoutPreviewInput!) {{ checkoutPreview(input: $i) {{ ... on CheckoutPreview {{ {sel} }} }} }}"
    );
    let explicit = json!([{ "skuId": gid(Kind::Sku, sku_id), "quantity": 1 }]);
    for input in [
        json!({ "cartLineIds": lines, "addressId": home }),
        json!({ "lines": explicit }),
    ] {
        let a = app.data_as(&me, &plain, json!({ "i": input })).await;
        let b = app.data_as(&me, &resolved, json!({ "i": input })).await;
        assert_eq!(a, b, "{input}");
        let p = &a["checkoutPreview"];
        assert_eq!(p["__typename"], "CheckoutPreview");
        let line = &p["lines"][0];
        assert_eq!(line["attribution"]["rule"], "SELF_PURCHASE", "{p}");
        assert_eq!(
            line["earnings"][0]["explanation"]["__typename"],
            "EarningExplanation"
        );
        assert!(line["earnings"][0]["explanation"]["summary"].is_string());
    }
    let with_address = &app
        .data_as(
            &me,
            &plain,
            json!({ "i": { "cartLineIds": lines, "addressId": home } }),
        )
        .await["checkoutPreview"];
    assert_eq!(
        with_address["parcels"][0]["merchant"]["name"],
        json!(f.merchant.name)
    );
    assert_eq!(with_address["shippingTotal"], "20.00", "{with_address}");
}
