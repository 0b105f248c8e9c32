//! After-sales (售后): requests within the return window, reviews, return shipments and
//! receipts, the refund through the provider or at once, settlement waiting while one is
//! open, the auto-close of returns never shipped, and the races of each against the others.

use chrono::Duration;
use entity::{after_sale, earning};
use pushhand::graphql::ids::Kind;
use pushhand::service::after_sales as svc;
use pushhand::service::earnings as earnings_svc;
use pushhand::service::members::CliRole;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::earnings::{order, pay, product};
use crate::fixtures::{gid, uuid_of};
use crate::helpers::{TestApp, error_code};

const REQUEST: &str = "mutation($i: RequestAfterSaleInput!) { requestAfterSale(input: $i) {
  id kind status quantity amount reason evidenceUrls orderLineId closedAt } }";
const REVIEW: &str = "mutation($id: ID!, $a: Boolean!, $n: String) {
  reviewAfterSale(id: $id, approve: $a, note: $n) {
    id status reviewNote returnDeadline closedAt refund { id status amount quantity } } }";
const SHIP_BACK: &str = "mutation($id: ID!, $t: String!) {
  submitReturnShipment(id: $id, carrier: SF, trackingNumber: $t) {
    status returnCarrier returnTrackingNumber } }";
const RECEIVE: &str = "mutation($id: ID!) { receiveReturn(id: $id) {
  status receivedAt closedAt refund { id status amount quantity } } }";

/// A completed order of `qty` units (199.00 each, 15 % to the push-hand buyer itself) and
/// the people around it.
struct Bought {
    app: TestApp,
    admin: String,
    buyer: String,
    buyer_row: entity::member::Model,
    order: Uuid,
    /// The line's global ID.
    line: String,
}

/// An app, an admin and a push-hand buyer (earning `SELF_PURCHASE` on its orders).
async fn people() -> (TestApp, String, String, entity::member::Model, Uuid) {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("as-admin@example.com", CliRole::Admin).await;
    let (buyer, buyer_row) = app.user("as-buyer@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 500, false).await;
    (app, admin, buyer, buyer_row, sku)
}

/// Places, pays by hand, ships and (if `receive`) completes an order of `qty` units.
async fn bought_on(
    app: &TestApp,
    admin: &str,
    buyer: &str,
    sku: Uuid,
    qty: i32,
    receive: bool,
) -> (Uuid, String) {
    let o = order(app, buyer, sku, qty, None).await["data"]["placeOrder"].clone();
    let id = o["id"].as_str().expect("id").to_owned();
    let total = format!("{}.00", 199 * qty);
    let paid = pay(app, admin, &id, &format!("ref-{}", Uuid::now_v7()), &total).await;
    assert!(paid["errors"].is_null(), "{paid}");
    ship_and_receive(app, admin, buyer, &id, receive).await;
    (
        uuid_of(&id),
        o["lines"][0]["id"].as_str().expect("line").to_owned(),
    )
}

async fn ship_and_receive(app: &TestApp, admin: &str, buyer: &str, id: &str, receive: bool) {
    app.data_as(
        admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": id }),
    )
    .await;
    if receive {
        let done = app
            .data_as(
                buyer,
                "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
                json!({ "o": id }),
            )
            .await;
        assert_eq!(done["confirmReceipt"]["status"], "COMPLETED");
    }
}

async fn bought(qty: i32) -> Bought {
    let (app, admin, buyer, buyer_row, sku) = people().await;
    let (order, line) = bought_on(&app, &admin, &buyer, sku, qty, true).await;
    Bought {
        app,
        admin,
        buyer,
        buyer_row,
        order,
        line,
    }
}

fn input(line: &str, qty: i32, kind: &str, key: &str) -> Value {
    json!({ "i": {
        "orderLineId": line, "quantity": qty, "kind": kind,
        "reason": "商品有划痕", "evidenceUrls": ["https://img.example/scratch.jpg"],
        "idempotencyKey": key,
    } })
}

async fn earnings_of(app: &TestApp, order: Uuid) -> Vec<earning::Model> {
    earning::Entity::find()
        .filter(earning::Column::OrderId.eq(order))
        .all(app.db())
        .await
        .unwrap()
}

async fn settle(app: &TestApp, as_of: chrono::DateTime<chrono::Utc>) -> u64 {
    earnings_svc::settle(app.db(), &app.state.events, as_of, app.clock_now())
        .await
        .map_err(anyhow::Error::from)
        .expect("settle")
        .0
}

async fn audited(app: &TestApp, action: &str) -> u64 {
    entity::audit_entry::Entity::find()
        .filter(entity::audit_entry::Column::Action.eq(action))
        .count(app.db())
        .await
        .unwrap()
}

async fn row(app: &TestApp, id: &str) -> after_sale::Model {
    svc::get(app.db(), Uuid::parse_str(id).unwrap())
        .await
        .map_err(anyhow::Error::from)
        .unwrap()
}

async fn balance(app: &TestApp, member: Uuid) -> (i64, i64, i64) {
    let b = entity::balance::Entity::find_by_id(member)
        .one(app.db())
        .await
        .unwrap()
        .expect("a balance");
    (b.pending.fen(), b.available.fen(), b.lifetime.fen())
}

#[tokio::test]
async fn refund_only_approved_refunds_at_once_and_reverses_earnings_once() {
    let b = bought(2).await;
    let app = &b.app;
    // 15 % of 398.00 to the buyer itself.
    assert_eq!(balance(app, b.buyer_row.id).await, (5970, 0, 5970));
    let due = earnings_of(app, b.order).await[0]
        .settle_after
        .expect("window started");

    let r = app
        .data_as(&b.buyer, REQUEST, input(&b.line, 1, "REFUND_ONLY", "as-1"))
        .await["requestAfterSale"]
        .clone();
    assert_eq!(r["status"], "REQUESTED");
    assert_eq!(r["amount"], "199.00", "one unit, no shipping");
    assert_eq!(r["evidenceUrls"][0], "https://img.example/scratch.jpg");
    let id = r["id"].as_str().unwrap().to_owned();
    // The line's earnings wait while it is open, whatever the settlement is asked.
    assert!(
        earnings_of(app, b.order)
            .await
            .iter()
            .all(|e| e.settle_after.is_none())
    );
    assert_eq!(settle(app, app.clock_now() + Duration::days(30)).await, 0);
    // A retry with the key is the same request.
    let again = app
        .data_as(&b.buyer, REQUEST, input(&b.line, 1, "REFUND_ONLY", "as-1"))
        .await;
    assert_eq!(again["requestAfterSale"]["id"], id.as_str());

    let done = app
        .data_as(
            &b.admin,
            REVIEW,
            json!({ "id": id, "a": true, "n": "同意退款" }),
        )
        .await["reviewAfterSale"]
        .clone();
    assert_eq!(done["status"], "REFUNDED");
    assert!(done["closedAt"].is_string());
    assert_eq!(
        done["refund"],
        Value::Null,
        "paid by hand: refunded at once"
    );
    // Half the line's earning comes back, once: a pending adjustment of −29.85.
    assert_eq!(balance(app, b.buyer_row.id).await, (2985, 0, 2985));
    let again = app
        .gql_as(&b.admin, REVIEW, json!({ "id": id, "a": true }))
        .await;
    assert_eq!(error_code(&again), Some("AFTER_SALE_STATE"));
    let again = app
        .data_as(&b.buyer, REQUEST, input(&b.line, 1, "REFUND_ONLY", "as-1"))
        .await;
    assert_eq!(again["requestAfterSale"]["status"], "REFUNDED");
    assert_eq!(balance(app, b.buyer_row.id).await, (2985, 0, 2985));
    let adjustments = earnings_of(app, b.order)
        .await
        .into_iter()
        .filter(|e| e.kind == earning::Kind::Adjustment)
        .count();
    assert_eq!(adjustments, 1);
    let line = entity::order_line::Entity::find_by_id(uuid_of(&b.line))
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((line.refunded_quantity, line.refunding_quantity), (1, 0));
    // The other unit's earnings resume their old deadline and settle then.
    assert!(
        earnings_of(app, b.order)
            .await
            .iter()
            .all(|e| e.settle_after == Some(due))
    );
    assert_eq!(settle(app, due - Duration::seconds(1)).await, 0);
    assert_eq!(settle(app, due).await, 2);
    assert_eq!(balance(app, b.buyer_row.id).await, (0, 2985, 2985));
    assert_eq!(audited(app, "AFTER_SALE_REQUESTED").await, 1);
    assert_eq!(audited(app, "AFTER_SALE_APPROVED").await, 1);

    // The buyer's list and the admins'.
    let mine = app
        .data_as(
            &b.buyer,
            "{ me { afterSales { totalCount edges { node { id status } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(mine["me"]["afterSales"]["totalCount"], 1);
    assert_eq!(
        mine["me"]["afterSales"]["edges"][0]["node"]["id"],
        id.as_str()
    );
    let all = app
        .data_as(
            &b.admin,
            "{ afterSales(status: REFUNDED) { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(all["afterSales"]["totalCount"], 1);
    let resp = app
        .gql_as(&b.buyer, "{ afterSales { totalCount } }", json!({}))
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));
}

#[tokio::test]
async fn a_return_is_shipped_received_and_refunded_through_the_provider() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("as-admin@example.com", CliRole::Admin).await;
    // Paid through the sandbox provider.
    let (_, o) = crate::payments::unpaid_order(&app).await;
    let payer = pushhand::service::members::get(app.db(), o.buyer_id)
        .await
        .map_err(anyhow::Error::from)
        .unwrap();
    let payer_token = crate::cart::token_of(&app, &payer);
    let sandbox = crate::payments::provider(&app, pushhand::payments::Channel::Sandbox);
    let intent = pushhand::service::payments::create_payment(
        app.db(),
        sandbox.as_ref(),
        &payer,
        o.id,
        None,
        app.clock_now(),
    )
    .await
    .map_err(anyhow::Error::from)
    .unwrap();
    let resp = app
        .client
        .post(app.url(&format!("/payments/sandbox/{}/pay", intent.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    ship_and_receive(&app, &admin, &payer_token, &gid(Kind::Order, o.id), true).await;
    let line = entity::order_line::Entity::find()
        .filter(entity::order_line::Column::OrderId.eq(o.id))
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    let line_gid = gid(Kind::OrderLine, line.id);
    let booked: i64 = earnings_of(&app, o.id)
        .await
        .iter()
        .map(|e| e.amount.fen())
        .sum();
    assert!(booked > 0);

    let r = app
        .data_as(
            &payer_token,
            REQUEST,
            input(&line_gid, 1, "RETURN_AND_REFUND", "ret-1"),
        )
        .await["requestAfterSale"]
        .clone();
    let id = r["id"].as_str().unwrap().to_owned();
    let approved = app
        .data_as(&admin, REVIEW, json!({ "id": id, "a": true }))
        .await["reviewAfterSale"]
        .clone();
    assert_eq!(approved["status"], "APPROVED");
    assert!(approved["returnDeadline"].is_string());
    // Not received before it is shipped back.
    let resp = app.gql_as(&admin, RECEIVE, json!({ "id": id })).await;
    assert_eq!(error_code(&resp), Some("AFTER_SALE_STATE"));
    // Only its buyer ships it back.
    let (stranger, _) = app.user("as-stranger@example.com", CliRole::PushHand).await;
    let resp = app
        .gql_as(
            &stranger,
            SHIP_BACK,
            json!({ "id": id, "t": "SF1234567890" }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"));
    let shipped = app
        .data_as(
            &payer_token,
            SHIP_BACK,
            json!({ "id": id, "t": "sf1234567890" }),
        )
        .await["submitReturnShipment"]
        .clone();
    assert_eq!(shipped["status"], "RETURN_SHIPPED");
    assert_eq!(shipped["returnTrackingNumber"], "SF1234567890");

    let received = app.data_as(&admin, RECEIVE, json!({ "id": id })).await["receiveReturn"].clone();
    assert_eq!(received["status"], "REFUNDING");
    assert_eq!(received["refund"]["status"], "PROCESSING");
    assert_eq!(received["refund"]["quantity"], 1);
    // Nothing reversed before the provider confirms; nothing settles either.
    assert!(
        earnings_of(&app, o.id)
            .await
            .iter()
            .all(|e| e.status == earning::Status::Pending && e.settle_after.is_none())
    );
    assert_eq!(settle(&app, app.clock_now() + Duration::days(30)).await, 0);

    // The provider confirms, three times.
    let refund_id = received["refund"]["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let resp = app
            .client
            .post(app.url(&format!("/payments/sandbox/refunds/{refund_id}/succeed")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
    }
    let a = row(&app, &id).await;
    assert_eq!(a.status, after_sale::Status::Refunded);
    assert!(a.closed_at.is_some() && a.received_at.is_some());
    let after = earnings_of(&app, o.id).await;
    assert!(after.iter().all(|e| e.status == earning::Status::Reversed));
    assert_eq!(
        after.len(),
        2,
        "no adjustment: the whole line went back once"
    );
    let line = entity::order_line::Entity::find_by_id(line.id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((line.refunded_quantity, line.refunding_quantity), (1, 0));
    for action in [
        "AFTER_SALE_REQUESTED",
        "AFTER_SALE_APPROVED",
        "AFTER_SALE_RETURN_SHIPPED",
        "AFTER_SALE_RETURN_RECEIVED",
    ] {
        assert_eq!(audited(&app, action).await, 1, "{action}");
    }
    let view = app
        .data_as(
            &payer_token,
            "query($id: ID!) { node(id: $id) { ... on Order { status lines { afterSales { status } } } } }",
            json!({ "id": gid(Kind::Order, o.id) }),
        )
        .await;
    assert_eq!(view["node"]["status"], "REFUNDED");
    assert_eq!(
        view["node"]["lines"][0]["afterSales"][0]["status"],
        "REFUNDED"
    );
}

#[tokio::test]
async fn a_rejection_restarts_the_window_and_settlement_skips_open_ones() {
    let b = bought(1).await;
    let app = &b.app;
    let r = app
        .data_as(&b.buyer, REQUEST, input(&b.line, 1, "REFUND_ONLY", "rej-1"))
        .await["requestAfterSale"]
        .clone();
    let id = r["id"].as_str().unwrap().to_owned();
    // Ten days on the window has long passed, but the after-sale is open.
    app.clock.advance(Duration::days(3));
    assert_eq!(settle(app, app.clock_now() + Duration::days(10)).await, 0);

    let rejected = app
        .data_as(
            &b.admin,
            REVIEW,
            json!({ "id": id, "a": false, "n": "无质量问题" }),
        )
        .await["reviewAfterSale"]
        .clone();
    assert_eq!(rejected["status"], "REJECTED");
    assert_eq!(rejected["reviewNote"], "无质量问题");
    let restarted = app.clock_now() + Duration::days(7);
    for e in earnings_of(app, b.order).await {
        let at = e.settle_after.expect("the window restarted");
        assert!(
            (at - restarted).num_seconds().abs() < 5,
            "{at} vs {restarted}"
        );
    }
    assert_eq!(settle(app, app.clock_now() + Duration::days(6)).await, 0);
    assert_eq!(settle(app, app.clock_now() + Duration::days(8)).await, 1);
    assert_eq!(balance(app, b.buyer_row.id).await, (0, 2985, 2985));
    assert_eq!(audited(app, "AFTER_SALE_REJECTED").await, 1);
    let resp = app
        .gql_as(&b.admin, REVIEW, json!({ "id": id, "a": true }))
        .await;
    assert_eq!(error_code(&resp), Some("AFTER_SALE_STATE"));
}

#[tokio::test]
async fn requests_outside_the_rules_are_refused() {
    let (app, admin, buyer, _, sku) = people().await;
    let (_, line) = bought_on(&app, &admin, &buyer, sku, 2, true).await;
    let (_, unreceived) = bought_on(&app, &admin, &buyer, sku, 1, false).await;

    // Every bad field at once.
    let bad = json!({ "i": {
        "orderLineId": line, "quantity": 0, "kind": "REFUND_ONLY", "reason": "  ",
        "evidenceUrls": ["ftp://x", "https://ok.example/a.jpg"], "idempotencyKey": "",
    } });
    let resp = app.gql_as(&buyer, REQUEST, bad).await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp}");
    let text = resp.to_string();
    for field in [
        "input.quantity",
        "input.reason",
        "input.evidenceUrls[0]",
        "input.idempotencyKey",
    ] {
        assert!(text.contains(field), "{field}: {text}");
    }
    // More units than the line has.
    let resp = app
        .gql_as(&buyer, REQUEST, input(&line, 3, "REFUND_ONLY", "k-3"))
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
    assert_eq!(resp["errors"][0]["extensions"]["field"], "input.quantity");
    // Another buyer's line does not exist for them.
    let (other, _) = app.user("as-other@example.com", CliRole::PushHand).await;
    let resp = app
        .gql_as(&other, REQUEST, input(&line, 1, "REFUND_ONLY", "k-o"))
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"));
    // Not received yet.
    let resp = app
        .gql_as(&buyer, REQUEST, input(&unreceived, 1, "REFUND_ONLY", "k-u"))
        .await;
    assert_eq!(error_code(&resp), Some("AFTER_SALE_NOT_ALLOWED"));
    // One open after-sale per line.
    app.data_as(&buyer, REQUEST, input(&line, 1, "REFUND_ONLY", "k-1"))
        .await;
    let resp = app
        .gql_as(&buyer, REQUEST, input(&line, 1, "RETURN_AND_REFUND", "k-2"))
        .await;
    assert_eq!(error_code(&resp), Some("AFTER_SALE_OPEN"));
    // The same key with other arguments.
    let resp = app
        .gql_as(&buyer, REQUEST, input(&line, 2, "REFUND_ONLY", "k-1"))
        .await;
    assert_eq!(error_code(&resp), Some("IDEMPOTENCY_CONFLICT"));
    // The window: seven days after receipt.
    let (_, late) = bought_on(&app, &admin, &buyer, sku, 1, true).await;
    app.clock.advance(Duration::days(7) + Duration::minutes(1));
    let resp = app
        .gql_as(&buyer, REQUEST, input(&late, 1, "REFUND_ONLY", "k-late"))
        .await;
    assert_eq!(error_code(&resp), Some("AFTER_SALE_WINDOW_CLOSED"));
    // Admins only review.
    let resp = app
        .gql_as(
            &buyer,
            REVIEW,
            json!({ "id": Uuid::now_v7().to_string(), "a": true }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));
}

#[tokio::test]
async fn a_return_not_shipped_within_seven_days_closes_by_itself() {
    let b = bought(1).await;
    let app = &b.app;
    let r = app
        .data_as(
            &b.buyer,
            REQUEST,
            input(&b.line, 1, "RETURN_AND_REFUND", "ac-1"),
        )
        .await["requestAfterSale"]
        .clone();
    let id = r["id"].as_str().unwrap().to_owned();
    app.data_as(&b.admin, REVIEW, json!({ "id": id, "a": true }))
        .await;
    let window = Duration::days(7);
    let run = || async {
        svc::auto_close(app.db(), &app.state.events, window, app.clock_now())
            .await
            .map_err(anyhow::Error::from)
            .expect("auto-close")
    };
    app.clock.advance(Duration::days(6));
    assert_eq!(run().await, 0, "six days: still waiting");
    app.clock.advance(Duration::days(1) + Duration::minutes(1));
    assert_eq!(run().await, 1);
    assert_eq!(run().await, 0, "closed once");
    let a = row(app, &id).await;
    assert_eq!(a.status, after_sale::Status::Closed);
    assert!(a.closed_at.is_some());
    let restarted = app.clock_now() + window;
    for e in earnings_of(app, b.order).await {
        let at = e.settle_after.expect("the window restarted");
        assert!((at - restarted).num_seconds().abs() < 5);
    }
    let resp = app
        .gql_as(
            &b.buyer,
            SHIP_BACK,
            json!({ "id": id, "t": "SF1234567890" }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("AFTER_SALE_STATE"));
    let closed = entity::audit_entry::Entity::find()
        .filter(entity::audit_entry::Column::Action.eq("AFTER_SALE_CLOSED"))
        .one(app.db())
        .await
        .unwrap()
        .expect("audited");
    assert_eq!(closed.actor_id, None);
}

#[tokio::test]
async fn concurrent_requests_for_the_same_units_open_one() {
    let b = bought(3).await;
    let app = &b.app;
    let answers = futures_util::future::join_all((0..10).map(|i| {
        app.gql_as(
            &b.buyer,
            REQUEST,
            input(&b.line, 1 + i % 3, "REFUND_ONLY", &format!("race-{i}")),
        )
    }))
    .await;
    let ok = answers.iter().filter(|a| a["errors"].is_null()).count();
    assert_eq!(ok, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|a| !a["errors"].is_null())
            .all(|a| error_code(a) == Some("AFTER_SALE_OPEN")),
        "{answers:?}"
    );
    let open = after_sale::Entity::find()
        .filter(after_sale::Column::OrderLineId.eq(uuid_of(&b.line)))
        .all(app.db())
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    // The database holds it too: a second open after-sale of the line is refused.
    let twin = after_sale::Model {
        id: Uuid::now_v7(),
        status: after_sale::Status::Approved,
        ..open[0].clone()
    };
    let err = after_sale::Entity::insert(after_sale::ActiveModel::from(twin.clone()))
        .exec_without_returning(app.db())
        .await;
    assert!(err.is_err(), "one open after-sale per line");
    // And a closed one beside it is fine; a zero quantity is not.
    let closed = after_sale::Model {
        id: Uuid::now_v7(),
        status: after_sale::Status::Rejected,
        closed_at: Some(app.clock_now()),
        ..open[0].clone()
    };
    after_sale::Entity::insert(after_sale::ActiveModel::from(closed.clone()))
        .exec_without_returning(app.db())
        .await
        .expect("a closed one is history");
    let zero = after_sale::Model {
        id: Uuid::now_v7(),
        quantity: 0,
        ..closed
    };
    let err = after_sale::Entity::insert(after_sale::ActiveModel::from(zero))
        .exec_without_returning(app.db())
        .await;
    assert!(err.is_err(), "quantity > 0 is checked");
}

#[tokio::test]
async fn requests_racing_settlement_either_pause_or_claw_back_never_both() {
    let (app, admin, buyer, buyer_row, sku) = people().await;
    let mut bought = Vec::new();
    for _ in 0..6 {
        bought.push(bought_on(&app, &admin, &buyer, sku, 1, true).await);
    }
    // The settlement runs "as of" after the window while the buyers ask, within it.
    let as_of = app.clock_now() + Duration::days(8);
    let settling = async {
        let mut n = 0;
        for _ in 0..6 {
            n += settle(&app, as_of).await;
            tokio::task::yield_now().await;
        }
        n
    };
    let asking = futures_util::future::join_all(bought.iter().enumerate().map(|(i, (_, line))| {
        app.gql_as(
            &buyer,
            REQUEST,
            input(line, 1, "REFUND_ONLY", &format!("rs-{i}")),
        )
    }));
    let (_, answers) = tokio::join!(settling, asking);
    let mut ids = Vec::new();
    for a in &answers {
        assert!(a["errors"].is_null(), "within the window: {a}");
        ids.push(
            a["data"]["requestAfterSale"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Each earning either settled first, or waits: never pending and due.
    for (o, _) in &bought {
        for e in earnings_of(&app, *o).await {
            assert!(
                e.status == earning::Status::Settled
                    || (e.status == earning::Status::Pending && e.settle_after.is_none()),
                "{e:?}"
            );
        }
    }
    assert_eq!(settle(&app, as_of).await, 0);
    // Refunded: settled earnings clawed back, paused ones reversed — each exactly once.
    for id in &ids {
        let r = app
            .data_as(&admin, REVIEW, json!({ "id": id, "a": true }))
            .await;
        assert_eq!(r["reviewAfterSale"]["status"], "REFUNDED");
    }
    for (o, _) in &bought {
        let rows = earnings_of(&app, *o).await;
        let net: i64 = rows
            .iter()
            .filter(|e| e.status != earning::Status::Reversed)
            .map(|e| e.amount.fen())
            .sum();
        assert_eq!(net, 0, "{rows:?}");
        assert!(rows.len() <= 2, "at most one adjustment: {rows:?}");
    }
    let (pending, available, lifetime) = balance(&app, buyer_row.id).await;
    assert_eq!((pending, available, lifetime), (0, 0, 0));
}

#[tokio::test]
async fn reviews_racing_each_other_and_the_auto_close_have_one_outcome() {
    let (app, admin, buyer, _, sku) = people().await;
    // Approve and reject at once: one review goes.
    let (o, line) = bought_on(&app, &admin, &buyer, sku, 1, true).await;
    let r = app
        .data_as(&buyer, REQUEST, input(&line, 1, "REFUND_ONLY", "rv-1"))
        .await;
    let id = r["requestAfterSale"]["id"].as_str().unwrap().to_owned();
    let answers = futures_util::future::join_all(
        (0..8).map(|i| app.gql_as(&admin, REVIEW, json!({ "id": id, "a": i % 2 == 0 }))),
    )
    .await;
    let ok: Vec<&Value> = answers.iter().filter(|a| a["errors"].is_null()).collect();
    assert_eq!(ok.len(), 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|a| !a["errors"].is_null())
            .all(|a| error_code(a) == Some("AFTER_SALE_STATE")),
        "{answers:?}"
    );
    let status = ok[0]["data"]["reviewAfterSale"]["status"].as_str().unwrap();
    let rows = earnings_of(&app, o).await;
    match status {
        "REFUNDED" => assert!(rows.iter().all(|e| e.status == earning::Status::Reversed)),
        "REJECTED" => assert!(
            rows.iter()
                .all(|e| e.status == earning::Status::Pending && e.settle_after.is_some())
        ),
        other => panic!("{other}"),
    }

    // An approved return at its deadline: the buyer's shipment and the auto-close at once.
    let (_, line) = bought_on(&app, &admin, &buyer, sku, 1, true).await;
    let r = app
        .data_as(
            &buyer,
            REQUEST,
            input(&line, 1, "RETURN_AND_REFUND", "rv-2"),
        )
        .await;
    let id = r["requestAfterSale"]["id"].as_str().unwrap().to_owned();
    app.data_as(&admin, REVIEW, json!({ "id": id, "a": true }))
        .await;
    app.clock.advance(Duration::days(7) + Duration::seconds(1));
    let closing = futures_util::future::join_all((0..4).map(|_| async {
        svc::auto_close(
            app.db(),
            &app.state.events,
            Duration::days(7),
            app.clock_now(),
        )
        .await
        .map_err(anyhow::Error::from)
        .expect("auto-close")
    }));
    let shipping = futures_util::future::join_all(
        (0..4).map(|_| app.gql_as(&buyer, SHIP_BACK, json!({ "id": id, "t": "SF1234567890" }))),
    );
    let (closed, shipped) = tokio::join!(closing, shipping);
    let closed: usize = closed.into_iter().sum();
    let shipped = shipped.iter().filter(|a| a["errors"].is_null()).count();
    assert_eq!(closed + shipped, 1, "closed {closed}, shipped {shipped}");
    let a = row(&app, &id).await;
    if closed == 1 {
        assert_eq!(a.status, after_sale::Status::Closed);
        assert_eq!(a.return_tracking_number, None);
    } else {
        assert_eq!(a.status, after_sale::Status::ReturnShipped);
        assert_eq!(a.closed_at, None);
    }
}

/// With a coupon on the order, an after-sale gives back what was paid for its units — their
/// part of the line's paid amount after its coupon share, exact in fen — not their list
/// price; the earnings come back on the same base.
#[tokio::test]
async fn an_after_sale_refunds_what_was_paid_after_the_coupon() {
    let (app, admin, buyer, buyer_row, sku) = people().await;
    let template = app
        .data_as(
            &admin,
            "mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }",
            json!({ "i": { "name": "立减", "kind": "FIXED", "amountOff": "10", "minSpend": "100",
                           "scope": "ALL", "validDays": 30, "totalQuantity": 5,
                           "perMemberLimit": 1, "distribution": "CLAIM" } }),
        )
        .await["createCouponTemplate"]["id"]
        .as_str()
        .expect("template")
        .to_owned();
    let coupon = app
        .data_as(
            &buyer,
            "mutation($t: ID!) { claimCoupon(templateId: $t) { id } }",
            json!({ "t": template }),
        )
        .await["claimCoupon"]["id"]
        .as_str()
        .expect("coupon")
        .to_owned();
    let placed = app
        .data_as(
            &buyer,
            "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) {
               id total lines { id paidAmount } } }",
            json!({ "i": { "lines": [{ "skuId": gid(Kind::Sku, sku), "quantity": 3 }],
                           "couponId": coupon } }),
        )
        .await["placeOrder"]
        .clone();
    // 3 × 199.00 − 10.00 = 587.00 paid for the line.
    assert_eq!(placed["total"], "587.00", "{placed}");
    assert_eq!(placed["lines"][0]["paidAmount"], "587.00");
    let id = placed["id"].as_str().expect("id").to_owned();
    let line = placed["lines"][0]["id"].as_str().expect("line").to_owned();
    let paid = pay(&app, &admin, &id, "ref-coupon", "587.00").await;
    assert!(paid["errors"].is_null(), "{paid}");
    ship_and_receive(&app, &admin, &buyer, &id, true).await;
    // 15 % of 587.00, to the push-hand buyer itself.
    assert_eq!(balance(&app, buyer_row.id).await.0, 8805);

    // One unit: 587.00 × 1/3 = 195.66 (down to the fen; the last unit takes the rest).
    let r = app
        .data_as(&buyer, REQUEST, input(&line, 1, "REFUND_ONLY", "c-1"))
        .await["requestAfterSale"]
        .clone();
    assert_eq!(r["amount"], "195.66", "{r}");
    let done = app
        .data_as(
            &admin,
            REVIEW,
            json!({ "id": r["id"], "a": true, "n": "同意" }),
        )
        .await["reviewAfterSale"]
        .clone();
    assert_eq!(done["status"], "REFUNDED", "{done}");
    // The earning comes back on the paid base: 88.05 × 1/3 = 29.35.
    assert_eq!(balance(&app, buyer_row.id).await.0, 8805 - 2935);
    // The other two units: 587.00 − 195.66 = 391.34 between them.
    let r = app
        .data_as(&buyer, REQUEST, input(&line, 2, "REFUND_ONLY", "c-2"))
        .await["requestAfterSale"]
        .clone();
    assert_eq!(r["amount"], "391.34", "{r}");
}
