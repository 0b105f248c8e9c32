//! Money guards (issue #24): decimal inputs read exactly or refused, replayed payments and
//! refunds that cannot book twice, order caps, and the invariants the database itself keeps.

use futures_util::future::join_all;
use pushhand::graphql::ids::Kind;
use pushhand::service::members::CliRole;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use crate::earnings::{order, pay, product};
use crate::fixtures::gid;
use crate::helpers::{PASSWORD, TestApp, error_code};

const WITHDRAW: &str = "mutation($a: Decimal!, $k: String!) { requestWithdrawal(amount: $a, idempotencyKey: $k) { id amount status } }";
const SHIP: &str = "mutation($o: ID!) { shipOrder(orderId: $o) { status } }";
const RECEIVE: &str = "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }";
const SETTLE: &str = "mutation($t: DateTime) { runSettlement(asOf: $t) { settled amount } }";

/// Places one order of `units` of `sku` and returns (order id, line id, total).
async fn placed(app: &TestApp, token: &str, sku: Uuid, units: i32) -> (String, String, String) {
    let r = order(app, token, sku, units, None).await;
    let o = &r["data"]["placeOrder"];
    assert!(o.is_object(), "{r}");
    (
        o["id"].as_str().expect("id").to_owned(),
        o["lines"][0]["id"].as_str().expect("line").to_owned(),
        o["total"].as_str().expect("total").to_owned(),
    )
}

/// A push-hand with 29.85 × `units` CNY available (a settled self purchase at 15 %), and
/// the SKU it bought (of a product with 100 units).
pub(crate) async fn funded(app: &TestApp, admin: &str, email: &str, units: i32) -> (String, Uuid) {
    let (token, _) = app.user(email, CliRole::PushHand).await;
    let (_, sku) = product(app, 100, false).await;
    let (id, _, total) = placed(app, &token, sku, units).await;
    let r = pay(app, admin, &id, &format!("ref-{email}"), &total).await;
    assert!(r["errors"].is_null(), "{r}");
    app.data_as(admin, SHIP, json!({ "o": id })).await;
    app.data_as(&token, RECEIVE, json!({ "o": id })).await;
    let later = (app.clock_now() + chrono::Duration::days(8)).to_rfc3339();
    app.data_as(admin, SETTLE, json!({ "t": later })).await;
    (token, sku)
}

// ---- 10. Decimal inputs -------------------------------------------------------------------

#[tokio::test]
async fn decimal_inputs_are_plain_and_exact_or_refused() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (token, sku) = funded(&app, &admin, "rich@example.com", 3).await;
    let (buyer, _) = app.user("buyer@example.com", CliRole::PushHand).await;
    let (oid, _, total) = placed(&app, &buyer, sku, 1).await;
    assert_eq!(total, "199.00");

    for bad in [
        "9.9999999999999999999999999999",
        "198.999999999999999999999999999",
        "199.000000000000000000000000001",
        "1.99e2",
        "1_99.0_0",
        " 199.00",
        "+199.00",
        "199.",
        "199.001",
        "-199.00",
        "0x10",
    ] {
        let r = pay(&app, &admin, &oid, "ref-decimals", bad).await;
        assert_eq!(error_code(&r), Some("VALIDATION"), "pay {bad:?}: {r}");
        assert_eq!(
            r["errors"][0]["extensions"]["field"],
            json!("amount"),
            "{r}"
        );
        let r = app
            .gql_as(
                &token,
                WITHDRAW,
                json!({ "a": bad, "k": format!("k-{bad}") }),
            )
            .await;
        assert_eq!(error_code(&r), Some("VALIDATION"), "withdraw {bad:?}: {r}");
        assert_eq!(
            r["errors"][0]["extensions"]["field"],
            json!("amount"),
            "{r}"
        );
    }
    // Money fields with too many places name the field.
    let r = app
        .gql_as(&token, WITHDRAW, json!({ "a": "10.000", "k": "k-places" }))
        .await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    assert_eq!(
        r["errors"][0]["extensions"]["field"],
        json!("amount"),
        "{r}"
    );
    // A float is refused too: no amount goes through f64.
    let r = app
        .gql_as(&token, WITHDRAW, json!({ "a": 10.5, "k": "k-float" }))
        .await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    // Written in the document rather than as a variable, likewise.
    let r = app
        .gql_as(
            &token,
            "mutation { requestWithdrawal(amount: \"1e1\", idempotencyKey: \"k-lit\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    assert_eq!(
        r["errors"][0]["extensions"]["field"],
        json!("amount"),
        "{r}"
    );
    // Where the field is not known (the catalog's price filter), the scalar refuses.
    let r = app
        .gql(
            "query($p: Decimal) { products(first: 1, filter: { minPrice: $p }) { edges { cursor } } }",
            json!({ "p": "1e1" }),
        )
        .await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    // Nothing was booked by the refusals.
    let me = app
        .data_as(
            &token,
            "{ me { earningsSummary { available reserved } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["me"]["earningsSummary"]["reserved"], json!("0.00"));

    // Plain decimals and integers are read exactly.
    let r = pay(&app, &admin, &oid, "ref-decimals", "199").await;
    assert_eq!(r["data"]["confirmPayment"]["status"], json!("PAID"), "{r}");
    let r = app
        .data_as(&token, WITHDRAW, json!({ "a": "10.5", "k": "k-good" }))
        .await;
    assert_eq!(r["requestWithdrawal"]["amount"], json!("10.50"), "{r}");
    let r = app
        .data_as(&token, WITHDRAW, json!({ "a": 11, "k": "k-int" }))
        .await;
    assert_eq!(r["requestWithdrawal"]["amount"], json!("11.00"), "{r}");
}

// ---- 7. Replayed payments and retried refunds and orders ----------------------------------

const REFUND: &str = "mutation($l: ID!, $q: Int, $k: String) {
  refundOrderLine(orderLineId: $l, quantity: $q, idempotencyKey: $k) {
    id status lines { refundedQuantity } } }";
const PLACE: &str = "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id status total lines { id quantity } } }";

async fn stock(app: &TestApp, sku: Uuid) -> i32 {
    entity::sku::Entity::find_by_id(sku)
        .one(app.db())
        .await
        .expect("query")
        .expect("sku")
        .stock
}

async fn orders_of(app: &TestApp, buyer: Uuid) -> Vec<entity::order::Model> {
    entity::order::Entity::find()
        .filter(entity::order::Column::BuyerId.eq(buyer))
        .all(app.db())
        .await
        .expect("query")
}

#[tokio::test]
async fn a_paid_order_replayed_with_another_amount_is_a_mismatch() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (buyer, _) = app.user("buyer@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 10, false).await;
    let (oid, _, total) = placed(&app, &buyer, sku, 1).await;
    let r = pay(&app, &admin, &oid, "wx-1", &total).await;
    assert_eq!(r["data"]["confirmPayment"]["status"], json!("PAID"), "{r}");
    for other in ["0.01", "999999.00", "198.99"] {
        let r = pay(&app, &admin, &oid, "wx-1", other).await;
        assert_eq!(error_code(&r), Some("PAYMENT_MISMATCH"), "{other}: {r}");
    }
    // The true replay still answers the order.
    let r = pay(&app, &admin, &oid, "wx-1", "199.00").await;
    assert_eq!(r["data"]["confirmPayment"]["status"], json!("PAID"), "{r}");
}

/// A paid order of `units` of a fresh SKU (stock 100): (order id, line id, SKU).
async fn paid_order(app: &TestApp, admin: &str, email: &str, units: i32) -> (String, String, Uuid) {
    let (buyer, _) = app.user(email, CliRole::PushHand).await;
    let (_, sku) = product(app, 100, false).await;
    let (oid, line, total) = placed(app, &buyer, sku, units).await;
    let r = pay(app, admin, &oid, &format!("ref-{email}"), &total).await;
    assert!(r["errors"].is_null(), "{r}");
    (oid, line, sku)
}

#[tokio::test]
async fn concurrent_refund_retries_with_one_key_refund_once() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (_, line, sku) = paid_order(&app, &admin, "b@example.com", 3).await;
    let before = stock(&app, sku).await;
    let vars = json!({ "l": line, "q": 1, "k": "refund-1" });
    let results = join_all((0..10).map(|_| app.gql_as(&admin, REFUND, vars.clone()))).await;
    for r in &results {
        assert_eq!(
            r["data"]["refundOrderLine"]["lines"][0]["refundedQuantity"],
            json!(1),
            "{r}"
        );
    }
    assert_eq!(stock(&app, sku).await, before + 1, "one unit came back");
    // Later retries too; the same key with another quantity or line is a conflict.
    let r = app.data_as(&admin, REFUND, vars.clone()).await;
    assert_eq!(
        r["refundOrderLine"]["lines"][0]["refundedQuantity"],
        json!(1)
    );
    let r = app
        .gql_as(
            &admin,
            REFUND,
            json!({ "l": line, "q": 2, "k": "refund-1" }),
        )
        .await;
    assert_eq!(error_code(&r), Some("IDEMPOTENCY_CONFLICT"), "{r}");
    let r = app
        .gql_as(&admin, REFUND, json!({ "l": line, "k": "refund-1" }))
        .await;
    assert_eq!(error_code(&r), Some("IDEMPOTENCY_CONFLICT"), "{r}");
    // Another key refunds another unit; without a key, as before.
    let r = app
        .data_as(
            &admin,
            REFUND,
            json!({ "l": line, "q": 1, "k": "refund-2" }),
        )
        .await;
    assert_eq!(
        r["refundOrderLine"]["lines"][0]["refundedQuantity"],
        json!(2)
    );
    let r = app
        .data_as(&admin, REFUND, json!({ "l": line, "q": 1 }))
        .await;
    assert_eq!(r["refundOrderLine"]["status"], json!("REFUNDED"));
    assert_eq!(stock(&app, sku).await, before + 3);
    let r = app
        .gql_as(
            &admin,
            REFUND,
            json!({ "l": line, "q": 1, "k": "bad\u{0}key" }),
        )
        .await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    let check = app
        .data_as(
            &admin,
            "{ ledgerCheck { mismatches { memberId } statusMismatches { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(check["ledgerCheck"]["mismatches"], json!([]));
    assert_eq!(check["ledgerCheck"]["statusMismatches"], json!([]));
}

#[tokio::test]
async fn concurrent_order_retries_with_one_key_place_one_order() {
    let app = TestApp::spawn().await;
    let (buyer, me) = app.user("b@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 100, false).await;
    let input = |qty: i32, key: &str| json!({ "i": { "lines": [{ "skuId": gid(Kind::Sku, sku), "quantity": qty }], "idempotencyKey": key } });
    let results = join_all((0..10).map(|_| app.gql_as(&buyer, PLACE, input(3, "order-1")))).await;
    let ids: std::collections::BTreeSet<String> = results
        .iter()
        .map(|r| {
            r["data"]["placeOrder"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{r}"))
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one order for one key: {results:#?}");
    assert_eq!(orders_of(&app, me.id).await.len(), 1);
    assert_eq!(stock(&app, sku).await, 97, "stock moved once");
    // A later retry answers the same order; other lines under the key are a conflict.
    let r = app.data_as(&buyer, PLACE, input(3, "order-1")).await;
    assert!(ids.contains(r["placeOrder"]["id"].as_str().expect("id")));
    let r = app.gql_as(&buyer, PLACE, input(4, "order-1")).await;
    assert_eq!(error_code(&r), Some("IDEMPOTENCY_CONFLICT"), "{r}");
    // Keys are the member's own: another member's order under the same key is its own.
    let (other, _) = app.user("c@example.com", CliRole::PushHand).await;
    let r = app.data_as(&other, PLACE, input(3, "order-1")).await;
    assert!(!ids.contains(r["placeOrder"]["id"].as_str().expect("id")));
    assert_eq!(stock(&app, sku).await, 94);
}

// ---- 18. Unpublished products are not found -----------------------------------------------

#[tokio::test]
async fn an_unpublished_products_sku_is_as_unknown_as_a_missing_one() {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let app = TestApp::spawn().await;
    let (buyer, _) = app.user("b@example.com", CliRole::PushHand).await;
    let (product_id, sku) = product(&app, 10, false).await;
    let mut p: entity::product::ActiveModel = entity::product::Entity::find_by_id(product_id)
        .one(app.db())
        .await
        .expect("query")
        .expect("product")
        .into();
    p.status = Set(entity::product::Status::Unpublished);
    p.update(app.db()).await.expect("unpublish");
    let hidden = order(&app, &buyer, sku, 1, None).await;
    let missing = order(&app, &buyer, Uuid::now_v7(), 1, None).await;
    assert_eq!(error_code(&hidden), Some("NOT_FOUND"), "{hidden}");
    assert_eq!(error_code(&missing), Some("NOT_FOUND"), "{missing}");
    assert_eq!(
        hidden["errors"][0]["message"], missing["errors"][0]["message"],
        "nothing tells them apart"
    );
    assert_eq!(stock(&app, sku).await, 10);
}

// ---- 12. Caps on unpaid orders and units --------------------------------------------------

#[tokio::test]
async fn unpaid_orders_per_member_are_capped_even_at_once() {
    let app = TestApp::spawn().await;
    let (buyer, me) = app.user("b@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 1000, false).await;
    let results = join_all((0..20).map(|_| order(&app, &buyer, sku, 2, None))).await;
    let ok = results
        .iter()
        .filter(|r| r["data"]["placeOrder"].is_object())
        .count();
    for r in &results {
        assert!(
            r["data"]["placeOrder"].is_object() || error_code(r) == Some("TOO_MANY_UNPAID_ORDERS"),
            "{r}"
        );
    }
    // At most the cap (a burst may leave fewer: an order that finds too many pending once
    // written withdraws itself).
    assert!(ok <= 5, "{ok} placed: {results:#?}");
    let pending = orders_of(&app, me.id)
        .await
        .into_iter()
        .filter(|o| o.status == entity::order::Status::PendingPayment)
        .count();
    assert_eq!(pending, ok);
    assert_eq!(
        stock(&app, sku).await,
        1000 - 2 * ok as i32,
        "refused orders hold no stock"
    );
    // Fill up to the cap one by one; the next is refused.
    for _ in ok..5 {
        let r = order(&app, &buyer, sku, 1, None).await;
        assert!(r["data"]["placeOrder"].is_object(), "{r}");
    }
    let r = order(&app, &buyer, sku, 1, None).await;
    assert_eq!(error_code(&r), Some("TOO_MANY_UNPAID_ORDERS"), "{r}");
    // A paid order no longer counts (it leaves the index of unpaid orders): one slot frees.
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let unpaid = orders_of(&app, me.id)
        .await
        .into_iter()
        .find(|o| o.status == entity::order::Status::PendingPayment)
        .expect("an unpaid order");
    let paid = pay(
        &app,
        &admin,
        &gid(Kind::Order, unpaid.id),
        "ref-cap",
        &unpaid.total.to_decimal().to_string(),
    )
    .await;
    assert_eq!(
        paid["data"]["confirmPayment"]["status"],
        json!("PAID"),
        "{paid}"
    );
    let r = order(&app, &buyer, sku, 1, None).await;
    assert!(r["data"]["placeOrder"].is_object(), "{r}");
    let r = order(&app, &buyer, sku, 1, None).await;
    assert_eq!(error_code(&r), Some("TOO_MANY_UNPAID_ORDERS"), "{r}");
    // Another member is not held back; expiry frees the slots.
    let (other, _) = app.user("c@example.com", CliRole::PushHand).await;
    assert!(order(&app, &other, sku, 1, None).await["data"]["placeOrder"].is_object());
    app.clock.advance(chrono::Duration::minutes(31));
    let r = order(&app, &buyer, sku, 1, None).await;
    assert!(r["data"]["placeOrder"].is_object(), "{r}");
}

#[tokio::test]
async fn units_per_sku_per_order_are_capped_and_caps_are_configurable() {
    let app = TestApp::spawn().await;
    let (buyer, _) = app.user("b@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 1000, false).await;
    let r = order(&app, &buyer, sku, 51, None).await;
    assert_eq!(error_code(&r), Some("QUANTITY_LIMIT"), "{r}");
    let two_lines = json!({ "i": { "lines": [
        { "skuId": gid(Kind::Sku, sku), "quantity": 30 },
        { "skuId": gid(Kind::Sku, sku), "quantity": 30 }
    ] } });
    let r = app.gql_as(&buyer, PLACE, two_lines).await;
    assert_eq!(error_code(&r), Some("QUANTITY_LIMIT"), "{r}");
    assert_eq!(stock(&app, sku).await, 1000);
    let r = order(&app, &buyer, sku, 50, None).await;
    assert!(r["data"]["placeOrder"].is_object(), "{r}");

    let app = TestApp::spawn_with(&["--max-unpaid-orders", "2", "--max-units-per-sku", "3"]).await;
    let (buyer, _) = app.user("b@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 1000, false).await;
    assert_eq!(
        error_code(&order(&app, &buyer, sku, 4, None).await),
        Some("QUANTITY_LIMIT")
    );
    for _ in 0..2 {
        assert!(order(&app, &buyer, sku, 3, None).await["data"]["placeOrder"].is_object());
    }
    assert_eq!(
        error_code(&order(&app, &buyer, sku, 1, None).await),
        Some("TOO_MANY_UNPAID_ORDERS")
    );
}

// ---- 15. No settlement from the future in production --------------------------------------

#[tokio::test]
async fn production_refuses_a_settlement_as_of_the_future() {
    let app = TestApp::spawn_with(&["--env", "production"]).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let future = (app.clock_now() + chrono::Duration::days(8)).to_rfc3339();
    let r = app.gql_as(&admin, SETTLE, json!({ "t": future })).await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["field"], json!("asOf"));
    let past = (app.clock_now() - chrono::Duration::days(1)).to_rfc3339();
    let r = app.data_as(&admin, SETTLE, json!({ "t": past })).await;
    assert_eq!(r["runSettlement"]["settled"], json!(0));
    let r = app.data_as(&admin, SETTLE, json!({})).await;
    assert_eq!(r["runSettlement"]["settled"], json!(0));
    // Development keeps moving time (the other tests settle from the future).
    let dev = TestApp::spawn().await;
    let (admin, _) = dev.user("admin@example.com", CliRole::Admin).await;
    let future = (dev.clock_now() + chrono::Duration::days(8)).to_rfc3339();
    let r = dev.data_as(&admin, SETTLE, json!({ "t": future })).await;
    assert_eq!(r["runSettlement"]["settled"], json!(0));
}

// ---- 9. A line refunded in parts leaves nothing pending -----------------------------------

const EARNINGS: &str = "{ me { earningsSummary { pending available lifetime }
  earnings(first: 50) { edges { node { kind status amount } } } } }";

#[tokio::test]
async fn a_line_refunded_in_parts_ends_its_pending_earnings() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (upline_token, upline) = app.user("up@example.com", CliRole::PushHand).await;
    let r = app
        .register("buyer@example.com", upline.invite_code.as_deref(), None)
        .await;
    assert!(r["data"].is_object(), "{r}");
    let buyer = app.login("buyer@example.com", PASSWORD).await;
    let (_, sku) = product(&app, 100, false).await;
    // The upline earns on the bound buyer's line and on its own purchase; both lines go back
    // one unit at a time.
    for (who, reference) in [(&buyer, "ref-bound"), (&upline_token, "ref-self")] {
        let (oid, line, total) = placed(&app, who, sku, 3).await;
        let r = pay(&app, &admin, &oid, reference, &total).await;
        assert!(r["errors"].is_null(), "{r}");
        for _ in 0..3 {
            let r = app
                .data_as(&admin, REFUND, json!({ "l": line, "q": 1 }))
                .await;
            assert!(r["refundOrderLine"].is_object(), "{r}");
        }
    }
    let me = app.data_as(&upline_token, EARNINGS, json!({})).await;
    let s = &me["me"]["earningsSummary"];
    assert_eq!(s["pending"], json!("0.00"), "{me}");
    assert_eq!(s["lifetime"], json!("0.00"), "{me}");
    let edges = me["me"]["earnings"]["edges"].as_array().expect("edges");
    let kinds: std::collections::BTreeSet<&str> = edges
        .iter()
        .filter_map(|e| e["node"]["kind"].as_str())
        .collect();
    assert!(kinds.contains("SELF_PURCHASE") && kinds.len() >= 3, "{me}");
    for e in edges {
        assert_eq!(
            e["node"]["status"],
            json!("REVERSED"),
            "no phantom pending: {me}"
        );
    }
    // Nothing is left to settle.
    let later = (app.clock_now() + chrono::Duration::days(30)).to_rfc3339();
    let r = app.data_as(&admin, SETTLE, json!({ "t": later })).await;
    assert_eq!(r["runSettlement"]["settled"], json!(0), "{r}");
    let check = app
        .data_as(
            &admin,
            "{ ledgerCheck { mismatches { memberId } statusMismatches { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(check["ledgerCheck"]["mismatches"], json!([]));
    assert_eq!(check["ledgerCheck"]["statusMismatches"], json!([]));
}

// ---- 8. Invariants in the database --------------------------------------------------------

#[tokio::test]
async fn the_database_keeps_the_money_invariants() {
    use sea_orm::{ConnectionTrait, PaginatorTrait, QueryOrder};
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (token, _) = funded(&app, &admin, "rich@example.com", 2).await;
    let w = app
        .data_as(&token, WITHDRAW, json!({ "a": "20.00", "k": "w-1" }))
        .await;
    assert!(w["requestWithdrawal"].is_object(), "{w}");
    let db = app.db();

    // Ledger entries are append-only.
    let entry = entity::ledger_entry::Entity::find()
        .one(db)
        .await
        .expect("query")
        .expect("an entry");
    let id = entry.id;
    let q = |sql: &str| {
        let sql = sql.to_owned();
        async move { db.execute_unprepared(&sql).await }
    };
    let first = "(SELECT id FROM ledger_entries ORDER BY created_at LIMIT 1)";
    assert!(
        q(&format!(
            "UPDATE ledger_entries SET pending_delta = 0 WHERE id = {first}"
        ))
        .await
        .is_err(),
        "an entry cannot be changed"
    );
    assert!(
        q(&format!("DELETE FROM ledger_entries WHERE id = {first}"))
            .await
            .is_err(),
        "an entry cannot be deleted"
    );
    assert!(q("DELETE FROM ledger_entries").await.is_err());
    assert!(
        entity::ledger_entry::Entity::find_by_id(id)
            .one(db)
            .await
            .expect("query")
            .is_some()
    );

    // An order line never refunds more units than it has.
    assert!(
        q("UPDATE order_lines SET refunded_quantity = quantity + 1")
            .await
            .is_err(),
        "over-refund refused"
    );
    assert!(
        q("UPDATE order_lines SET refunded_quantity = -1")
            .await
            .is_err()
    );
    assert!(
        q("UPDATE order_lines SET refunded_quantity = quantity")
            .await
            .is_ok()
    );

    // One earning per (line, member, kind, level).
    let e = entity::earning::Entity::find()
        .filter(entity::earning::Column::Kind.ne(entity::earning::Kind::Adjustment))
        .order_by_asc(entity::earning::Column::Id)
        .one(db)
        .await
        .expect("query")
        .expect("an earning");
    let twin = entity::earning::Model {
        id: Uuid::now_v7(),
        ..e.clone()
    };
    let dup = entity::earning::Entity::insert(entity::earning::ActiveModel::from(twin))
        .exec_without_returning(db)
        .await;
    assert!(
        dup.is_err(),
        "a second earning for the same line, member, kind and level"
    );
    // Adjustments of one line, member and level are as many as its partial refunds: the
    // same index (`idx_earnings_by_line`) lets them be.
    for _ in 0..2 {
        let adjustment = entity::earning::Model {
            id: Uuid::now_v7(),
            kind: entity::earning::Kind::Adjustment,
            amount: entity::Money::from_fen(-1),
            ..e.clone()
        };
        entity::earning::Entity::insert(entity::earning::ActiveModel::from(adjustment))
            .exec_without_returning(db)
            .await
            .expect("a second adjustment of the same line, member and level");
    }
    let on_line = entity::earning::Entity::find()
        .filter(entity::earning::Column::OrderLineId.eq(e.order_line_id))
        .filter(entity::earning::Column::MemberId.eq(e.member_id))
        .filter(entity::earning::Column::Level.eq(e.level))
        .count(db)
        .await
        .expect("count");
    assert_eq!(on_line, 3, "the earning and its two adjustments");
    entity::earning::Entity::delete_many()
        .filter(entity::earning::Column::Kind.eq(entity::earning::Kind::Adjustment))
        .filter(entity::earning::Column::OrderLineId.eq(e.order_line_id))
        .exec(db)
        .await
        .expect("the test's adjustments go");

    // ledgerCheck compares statuses with the entries: tampered rows show.
    let check = "{ ledgerCheck { mismatches { memberId }
        statusMismatches { kind id storedStatus ledgerStatus } } }";
    let clean = app.data_as(&admin, check, json!({})).await;
    assert_eq!(
        clean["ledgerCheck"]["statusMismatches"],
        json!([]),
        "{clean}"
    );
    entity::earning::Entity::update_many()
        .col_expr(
            entity::earning::Column::Status,
            sea_orm::sea_query::Expr::value(entity::earning::Status::Pending),
        )
        .filter(entity::earning::Column::Id.eq(e.id))
        .exec(db)
        .await
        .expect("tamper an earning");
    entity::withdrawal::Entity::update_many()
        .col_expr(
            entity::withdrawal::Column::Status,
            sea_orm::sea_query::Expr::value(entity::withdrawal::Status::Paid),
        )
        .exec(db)
        .await
        .expect("tamper a withdrawal");
    let tampered = app.data_as(&admin, check, json!({})).await;
    let found = tampered["ledgerCheck"]["statusMismatches"]
        .as_array()
        .expect("list")
        .clone();
    assert_eq!(found.len(), 2, "{tampered}");
    assert!(
        found.contains(&json!({
            "kind": "EARNING",
            "id": gid(Kind::Earning, e.id),
            "storedStatus": "PENDING",
            "ledgerStatus": "SETTLED",
        })),
        "{tampered}"
    );
    assert!(
        found.iter().any(|m| m["kind"] == json!("WITHDRAWAL")
            && m["storedStatus"] == json!("PAID")
            && m["ledgerStatus"] == json!("PENDING")),
        "{tampered}"
    );
}

/// The reads of an earning by its line (after-sales, claw-backs) and of an order's earnings
/// (its completion) find them through `idx_earnings_by_line` (migration 37), the index that
/// also keeps one earning per line, member, kind and level: the two indexes it replaced
/// are gone, and a scan here would grow with every earning ever booked.
#[tokio::test]
async fn earnings_are_read_by_line_through_the_unique_index() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
    let app = TestApp::spawn().await;
    let db = app.db();
    let backend = db.get_database_backend();
    let (a, b, order) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (explain, p) = match backend {
        DbBackend::Postgres => ("EXPLAIN", ["$1", "$2", "$3"]),
        _ => ("EXPLAIN QUERY PLAN", ["?", "?", "?"]),
    };
    for (sql, values) in [
        (
            format!(
                "{explain} SELECT id FROM earnings WHERE order_line_id = {}",
                p[0]
            ),
            vec![a.into()],
        ),
        // `earnings::start_window`'s shape.
        (
            format!(
                "{explain} SELECT id, member_id, status FROM earnings \
                 WHERE order_line_id IN ({}, {}) AND order_id = {}",
                p[0], p[1], p[2]
            ),
            vec![a.into(), b.into(), order.into()],
        ),
    ] {
        let txn = db.begin().await.expect("begin");
        // A statement first: SQLite's `EXPLAIN` does not check that the connection's copy of
        // the schema is current (a connection opened before the migrations ran would explain
        // with the indexes it knew); a statement reads the schema again when it changed.
        txn.execute_unprepared("SELECT count(*) FROM earnings")
            .await
            .expect("count");
        if backend == DbBackend::Postgres {
            // A test's tables are so small that a scan is cheapest: ask for an index.
            txn.execute_unprepared("SET LOCAL enable_seqscan = off")
                .await
                .expect("set");
        }
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(backend, &sql, values))
            .await
            .expect("explain");
        txn.rollback().await.expect("rollback");
        let plan: Vec<String> = rows
            .iter()
            .map(|r| {
                let column = if backend == DbBackend::Postgres { 0 } else { 3 };
                r.try_get_by_index::<String>(column).expect("plan text")
            })
            .collect();
        assert!(
            plan.iter().any(|l| l.contains("idx_earnings_by_line")),
            "{sql}: {plan:?}"
        );
    }
    for gone in [
        "idx_earnings_line",
        "idx_earnings_order",
        "idx_earnings_one_per_line",
    ] {
        let sql = match backend {
            DbBackend::Postgres => {
                format!("SELECT count(*) FROM pg_indexes WHERE indexname = '{gone}'")
            }
            _ => format!(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '{gone}'"
            ),
        };
        let n: i64 = db
            .query_one_raw(Statement::from_string(backend, sql))
            .await
            .expect("query")
            .expect("a row")
            .try_get_by_index(0)
            .expect("count");
        assert_eq!(n, 0, "{gone} is gone");
    }
}
