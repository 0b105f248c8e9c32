//! Fulfilment: an order shipped in parcels with tracking numbers (partly, then wholly), every
//! bad parcel refused at once, a line shipped once however many calls race for it (the
//! database's unique index), merchants shipping their own lines only, receipt after
//! shipping; the buyer's cancellation of an unpaid order, racing payment and expiry to one
//! outcome with the stock back exactly once; and the live events of each step.

use entity::{shipment, shipment_line};
use futures_util::future::join_all;
use pushhand::graphql::ids::Kind;
use pushhand::service::earnings::Policy;
use pushhand::service::members::CliRole;
use pushhand::service::orders::{self, LineRequest, Payment};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::earnings::pay;
use crate::fixtures::{self, gid, uuid_of};
use crate::helpers::{TestApp, error_code};

pub(crate) const ORDER_FIELDS: &str = "id status fulfilment shippedAt cancelReason total
  lines { id quantity refundState refundedQuantity sku { id } }
  shipments { id carrier trackingNumber shippedAt lines { id } }";

fn ship_query() -> String {
    format!(
        "mutation($o: ID!, $p: [ParcelInput!]) {{ shipOrder(orderId: $o, parcels: $p) {{ {ORDER_FIELDS} }} }}"
    )
}

fn cancel_query() -> String {
    format!(
        "mutation($o: ID!, $r: String) {{ cancelOrder(orderId: $o, reason: $r) {{ {ORDER_FIELDS} }} }}"
    )
}

/// A published product of `merchant` at 199.00 with `stock` units: its SKU.
pub(crate) async fn product_of(
    app: &TestApp,
    f: &fixtures::Fixture,
    merchant: Uuid,
    stock: i32,
) -> Uuid {
    let listing = fixtures::Listing {
        merchant,
        name: format!("商品 {merchant}"),
        rebate_bp: 1000,
        ..fixtures::Listing::usual(f, stock)
    };
    fixtures::listed_product(app, f, listing).await.1
}

/// Staff, a buyer and two merchants with a product each.
pub(crate) struct Shop {
    pub admin: String,
    pub buyer: String,
    pub buyer_row: entity::member::Model,
    /// Merchant staff tokens and their merchants.
    pub merchants: [(String, Uuid); 2],
    pub skus: [Uuid; 2],
}

pub(crate) async fn shop(app: &TestApp) -> Shop {
    let f = fixtures::catalog(app.db(), 0).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (buyer, buyer_row) = app.user("buyer@example.com", CliRole::PushHand).await;
    let mut merchants = Vec::new();
    let mut skus = Vec::new();
    for name in ["m1", "m2"] {
        let (token, m) = app
            .user(&format!("{name}@example.com"), CliRole::Merchant)
            .await;
        let merchant = m.merchant_id.expect("a merchant account has its merchant");
        skus.push(product_of(app, &f, merchant, 100).await);
        merchants.push((token, merchant));
    }
    Shop {
        admin,
        buyer,
        buyer_row,
        merchants: merchants.try_into().expect("two"),
        skus: skus.try_into().expect("two"),
    }
}

/// An order of one unit of the first merchant's SKU and two of the second's: the order and
/// its lines' IDs (in that order); paid when `paid`.
pub(crate) async fn placed(
    app: &TestApp,
    s: &Shop,
    token: &str,
    paid: bool,
) -> (String, [String; 2]) {
    let placed = app
        .data_as(
            token,
            "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id total lines { id sku { id } } } }",
            json!({ "i": { "lines": [
                { "skuId": gid(Kind::Sku, s.skus[0]), "quantity": 1 },
                { "skuId": gid(Kind::Sku, s.skus[1]), "quantity": 2 },
            ] } }),
        )
        .await["placeOrder"]
        .clone();
    let id = placed["id"].as_str().expect("id").to_owned();
    let line = |sku: Uuid| {
        placed["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .find(|l| l["sku"]["id"] == json!(gid(Kind::Sku, sku)))
            .and_then(|l| l["id"].as_str())
            .expect("line")
            .to_owned()
    };
    let lines = [line(s.skus[0]), line(s.skus[1])];
    if paid {
        let r = pay(app, &s.admin, &id, &format!("ref-{id}"), "597.00").await;
        assert!(r.get("errors").is_none(), "{r}");
    }
    (id, lines)
}

fn fields(resp: &Value) -> Vec<&str> {
    resp["errors"][0]["extensions"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("fields: {resp:#}"))
        .iter()
        .map(|f| f["field"].as_str().expect("field"))
        .collect()
}

async fn shipment_rows(app: &TestApp) -> u64 {
    shipment::Entity::find()
        .count(app.db())
        .await
        .expect("count")
}

async fn stock(app: &TestApp, sku: Uuid) -> i32 {
    entity::sku::Entity::find_by_id(sku)
        .one(app.db())
        .await
        .expect("query")
        .expect("sku")
        .stock
}

#[tokio::test]
async fn two_parcels_with_tracking_ship_an_order_then_the_buyer_receives_it() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let (o, [l1, l2]) = placed(&app, &s, &s.buyer, true).await;
    let read = format!("query($o: ID!) {{ node(id: $o) {{ ... on Order {{ {ORDER_FIELDS} }} }} }}");
    let before = app.data_as(&s.buyer, &read, json!({ "o": o })).await["node"].clone();
    assert_eq!(before["fulfilment"], "UNSHIPPED");
    assert_eq!(before["shipments"], json!([]));

    // The first merchant's parcel: the order stays PAID, partly shipped.
    let r = app
        .data_as(
            &s.admin,
            &ship_query(),
            json!({ "o": o, "p": [{ "merchantId": gid(Kind::Merchant, s.merchants[0].1),
                "carrier": "SF", "trackingNumber": " sf1234567890123 " }] }),
        )
        .await["shipOrder"]
        .clone();
    assert_eq!(r["status"], "PAID");
    assert_eq!(r["fulfilment"], "PARTIALLY_SHIPPED");
    assert_eq!(r["shippedAt"], Value::Null);
    assert_eq!(r["shipments"].as_array().map(Vec::len), Some(1));
    let parcel = &r["shipments"][0];
    assert_eq!(parcel["carrier"], "SF");
    assert_eq!(
        parcel["trackingNumber"], "SF1234567890123",
        "trimmed, upper case"
    );
    assert_eq!(parcel["lines"], json!([{ "id": l1 }]));

    // The second, by its line (hours later): every line is in a parcel, the order has
    // shipped.
    app.clock.advance(chrono::Duration::hours(3));
    let r = app
        .data_as(
            &s.admin,
            &ship_query(),
            json!({ "o": o, "p": [{ "lineIds": [l2], "carrier": "YTO", "trackingNumber": "YT9876543210" }] }),
        )
        .await["shipOrder"]
        .clone();
    assert_eq!(r["status"], "SHIPPED");
    assert_eq!(r["fulfilment"], "SHIPPED");
    let parcels = r["shipments"].as_array().expect("shipments");
    let time =
        |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().expect("time")).expect("time");
    assert!(
        time(&parcels[1]["shippedAt"]) - time(&parcels[0]["shippedAt"])
            >= chrono::Duration::hours(3)
    );
    assert_eq!(
        time(&r["shippedAt"]),
        time(&parcels[1]["shippedAt"]),
        "shippedAt is when the last parcel left"
    );
    assert_eq!(
        parcels
            .iter()
            .map(|p| (p["carrier"].clone(), p["lines"].clone()))
            .collect::<Vec<_>>(),
        [
            (json!("SF"), json!([{ "id": l1 }])),
            (json!("YTO"), json!([{ "id": l2 }]))
        ]
    );
    // A parcel is a node, the buyer's to read.
    let node = app
        .data_as(
            &s.buyer,
            "query($p: ID!) { node(id: $p) { ... on Shipment { trackingNumber lines { id } } } }",
            json!({ "p": parcels[1]["id"] }),
        )
        .await;
    assert_eq!(node["node"]["trackingNumber"], "YT9876543210");
    let (stranger, _) = app.user("stranger@example.com", CliRole::PushHand).await;
    let hidden = app
        .gql_as(
            &stranger,
            "query($p: ID!) { node(id: $p) { id } }",
            json!({ "p": parcels[1]["id"] }),
        )
        .await;
    assert_eq!(error_code(&hidden), Some("NOT_FOUND"), "{hidden}");

    // Nothing is left to ship.
    let again = app.gql_as(&s.admin, &ship_query(), json!({ "o": o })).await;
    assert_eq!(error_code(&again), Some("ORDER_NOT_SHIPPABLE"), "{again}");

    // Each shipment is audited with its parcels.
    let log = app
        .data_as(
            &s.admin,
            "{ auditLog(action: ORDER_SHIPPED) { nodes { arguments } } }",
            json!({}),
        )
        .await;
    let entries = log["auditLog"]["nodes"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    assert!(
        entries.iter().any(
            |e| e["arguments"]["parcels"][0]["trackingNumber"] == "SF1234567890123"
                && e["arguments"]["complete"] == json!(false)
        )
    );

    // Receipt as before.
    let received = app
        .data_as(
            &s.buyer,
            "mutation($o: ID!) { confirmReceipt(orderId: $o) { status fulfilment } }",
            json!({ "o": o }),
        )
        .await;
    assert_eq!(
        received["confirmReceipt"],
        json!({ "status": "COMPLETED", "fulfilment": "SHIPPED" })
    );
}

#[tokio::test]
async fn without_parcels_every_line_ships_untracked_one_parcel_per_merchant() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let (o, [l1, l2]) = placed(&app, &s, &s.buyer, true).await;
    let r = app
        .data_as(&s.admin, &ship_query(), json!({ "o": o }))
        .await["shipOrder"]
        .clone();
    assert_eq!(r["status"], "SHIPPED");
    let mut parcels: Vec<(Value, Value, Value)> = r["shipments"]
        .as_array()
        .expect("shipments")
        .iter()
        .map(|p| {
            (
                p["carrier"].clone(),
                p["trackingNumber"].clone(),
                p["lines"].clone(),
            )
        })
        .collect();
    parcels.sort_by_key(|p| p.2.to_string());
    let mut expected = vec![
        (Value::Null, Value::Null, json!([{ "id": l1 }])),
        (Value::Null, Value::Null, json!([{ "id": l2 }])),
    ];
    expected.sort_by_key(|p| p.2.to_string());
    assert_eq!(parcels, expected);
}

#[tokio::test]
async fn bad_parcels_are_refused_together_and_write_nothing() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let (o, [l1, l2]) = placed(&app, &s, &s.buyer, true).await;
    let m1 = gid(Kind::Merchant, s.merchants[0].1);

    // Every bad field of every parcel at once.
    let resp = app
        .gql_as(
            &s.admin,
            &ship_query(),
            json!({ "o": o, "p": [
                { "carrier": "SF", "trackingNumber": "SF12345678" },
                { "merchantId": m1, "lineIds": [l1], "carrier": "JD", "trackingNumber": "JD 123 456" },
                { "lineIds": [l2, l2], "carrier": "EMS", "trackingNumber": "E1" },
                { "lineIds": [], "carrier": "OTHER", "trackingNumber": "X".repeat(33) },
                { "lineIds": ["not-an-id", gid(Kind::OrderLine, Uuid::now_v7())], "carrier": "ZTO",
                  "trackingNumber": "快递单号123456" },
            ] }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp:#}");
    assert_eq!(
        fields(&resp),
        [
            "parcels[4].lineIds",
            "parcels[0]",
            "parcels[1]",
            "parcels[1].trackingNumber",
            "parcels[2].lineIds",
            "parcels[2].trackingNumber",
            "parcels[3].lineIds",
            "parcels[3].trackingNumber",
            "parcels[4].trackingNumber",
        ]
    );
    let empty = app
        .gql_as(&s.admin, &ship_query(), json!({ "o": o, "p": [] }))
        .await;
    assert_eq!(fields(&empty), ["parcels"]);
    // One tracking number for two parcels of one call.
    let twice = app
        .gql_as(
            &s.admin,
            &ship_query(),
            json!({ "o": o, "p": [
                { "lineIds": [l1], "carrier": "SF", "trackingNumber": "SF100200300" },
                { "lineIds": [l2], "carrier": "SF", "trackingNumber": "sf100200300" },
            ] }),
        )
        .await;
    assert_eq!(fields(&twice), ["parcels[1].trackingNumber"]);

    // A line of another order, and (below) lines already shipped or refunded.
    let (_, [foreign, _]) = placed(&app, &s, &s.buyer, true).await;
    let resp = app
        .gql_as(
            &s.admin,
            &ship_query(),
            json!({ "o": o, "p": [{ "lineIds": [l1, foreign], "carrier": "SF", "trackingNumber": "SF100200301" }] }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("LINE_NOT_IN_ORDER"), "{resp:#}");
    assert!(
        resp["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("parcels[0].lineIds[1]")),
        "{resp:#}"
    );
    assert_eq!(shipment_rows(&app).await, 0, "nothing written");

    app.data_as(
        &s.admin,
        &ship_query(),
        json!({ "o": o, "p": [{ "lineIds": [l1], "carrier": "SF", "trackingNumber": "SF100200302" }] }),
    )
    .await;
    for (parcel, code) in [
        (
            json!({ "lineIds": [l1, l2], "carrier": "SF", "trackingNumber": "SF100200303" }),
            "LINE_ALREADY_SHIPPED",
        ),
        (
            json!({ "merchantId": m1, "carrier": "SF", "trackingNumber": "SF100200304" }),
            "NOTHING_TO_SHIP",
        ),
    ] {
        let resp = app
            .gql_as(&s.admin, &ship_query(), json!({ "o": o, "p": [parcel] }))
            .await;
        assert_eq!(error_code(&resp), Some(code), "{resp:#}");
    }
    assert_eq!(shipment_rows(&app).await, 1);

    // A refunded line is not shipped; an unpaid order not at all.
    let refund = "mutation($l: ID!) { refundOrderLine(orderLineId: $l) { status } }";
    let (o3, [r1, _]) = placed(&app, &s, &s.buyer, true).await;
    app.data_as(&s.admin, refund, json!({ "l": r1 })).await;
    let resp = app
        .gql_as(
            &s.admin,
            &ship_query(),
            json!({ "o": o3, "p": [{ "lineIds": [r1], "carrier": "SF", "trackingNumber": "SF100200305" }] }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("LINE_REFUNDED"), "{resp:#}");
    let (unpaid, _) = placed(&app, &s, &s.buyer, false).await;
    let resp = app
        .gql_as(&s.admin, &ship_query(), json!({ "o": unpaid }))
        .await;
    assert_eq!(error_code(&resp), Some("ORDER_NOT_SHIPPABLE"), "{resp:#}");
    assert_eq!(shipment_rows(&app).await, 1);
}

#[tokio::test]
async fn refunding_the_last_unshipped_line_completes_the_shipment() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let (o, [l1, l2]) = placed(&app, &s, &s.buyer, true).await;
    let parcel = app.data_as(
        &s.admin,
        &ship_query(),
        json!({ "o": o, "p": [{ "lineIds": [l1], "carrier": "JD", "trackingNumber": "JDVA0123456789" }] }),
    )
    .await["shipOrder"]["shipments"][0]["shippedAt"]
        .clone();
    app.clock.advance(chrono::Duration::days(1));
    // One unit of two refunded: the line still waits.
    let refund =
        "mutation($l: ID!, $q: Int) { refundOrderLine(orderLineId: $l, quantity: $q) { status } }";
    let r = app
        .data_as(&s.admin, refund, json!({ "l": l2, "q": 1 }))
        .await;
    assert_eq!(r["refundOrderLine"]["status"], "PAID");
    let r = app.data_as(&s.admin, refund, json!({ "l": l2 })).await;
    assert_eq!(r["refundOrderLine"]["status"], "SHIPPED");
    let read = format!("query($o: ID!) {{ node(id: $o) {{ ... on Order {{ {ORDER_FIELDS} }} }} }}");
    let node = app.data_as(&s.buyer, &read, json!({ "o": o })).await["node"].clone();
    assert_eq!(node["fulfilment"], "SHIPPED");
    assert_eq!(node["shippedAt"], parcel, "shipped as of its last parcel");
    let states: Vec<&Value> = node["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| &l["refundState"])
        .collect();
    assert!(states.contains(&&json!("FULL")) && states.contains(&&json!("NONE")));
}

#[tokio::test]
async fn merchants_ship_their_own_lines_only() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let (o, [l1, l2]) = placed(&app, &s, &s.buyer, true).await;
    let [(m1_token, m1), (m2_token, m2)] = &s.merchants;

    // Another merchant's line or merchant: FORBIDDEN; the buyer may not ship at all.
    for parcel in [
        json!({ "lineIds": [l2], "carrier": "SF", "trackingNumber": "SF555000111" }),
        json!({ "merchantId": gid(Kind::Merchant, *m2), "carrier": "SF", "trackingNumber": "SF555000111" }),
    ] {
        let resp = app
            .gql_as(m1_token, &ship_query(), json!({ "o": o, "p": [parcel] }))
            .await;
        assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{resp:#}");
    }
    let resp = app.gql_as(&s.buyer, &ship_query(), json!({ "o": o })).await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));
    // A merchant with no line in the order does not learn of it.
    let (m3_token, _) = app.user("m3@example.com", CliRole::Merchant).await;
    let resp = app
        .gql_as(&m3_token, &ship_query(), json!({ "o": o }))
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp:#}");
    assert_eq!(shipment_rows(&app).await, 0);

    // Without parcels, a merchant ships its own lines.
    let r = app
        .data_as(m1_token, &ship_query(), json!({ "o": o }))
        .await["shipOrder"]
        .clone();
    assert_eq!(r["fulfilment"], "PARTIALLY_SHIPPED");
    assert_eq!(r["shipments"][0]["lines"], json!([{ "id": l1 }]));
    let r = app
        .data_as(
            m2_token,
            &ship_query(),
            json!({ "o": o, "p": [{ "merchantId": gid(Kind::Merchant, *m2), "carrier": "YUNDA", "trackingNumber": "4312345678901" }] }),
        )
        .await["shipOrder"]
        .clone();
    assert_eq!(r["status"], "SHIPPED");
    let _ = m1;
}

#[tokio::test]
async fn a_line_ships_once_however_many_calls_race_for_it() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let (o, [l1, l2]) = placed(&app, &s, &s.buyer, true).await;
    let ship = ship_query();
    let calls = (0..8).map(|i| {
        let (app, ship, admin, o, l1) = (&app, &ship, &s.admin, &o, &l1);
        async move {
            app.gql_as(
                admin,
                ship,
                json!({ "o": o, "p": [{ "lineIds": [l1], "carrier": "SF", "trackingNumber": format!("SF90000000{i}") }] }),
            )
            .await
        }
    });
    let results = join_all(calls).await;
    let won = results.iter().filter(|r| r.get("errors").is_none()).count();
    assert_eq!(won, 1, "{results:#?}");
    for r in results.iter().filter(|r| r.get("errors").is_some()) {
        assert_eq!(error_code(r), Some("LINE_ALREADY_SHIPPED"), "{r:#}");
    }
    assert_eq!(shipment_rows(&app).await, 1);

    // The database itself refuses a second parcel for the line.
    let second = shipment::Model {
        id: Uuid::now_v7(),
        order_id: uuid_of(&o),
        carrier: None,
        tracking_number: None,
        shipped_at: app.clock_now(),
        shipped_by: None,
    };
    shipment::Entity::insert(shipment::ActiveModel::from(second.clone()))
        .exec_without_returning(app.db())
        .await
        .expect("a parcel");
    let dup =
        shipment_line::Entity::insert(shipment_line::ActiveModel::from(shipment_line::Model {
            shipment_id: second.id,
            order_line_id: uuid_of(&l1),
        }))
        .exec_without_returning(app.db())
        .await;
    assert!(
        dup.is_err_and(|e| pushhand::db::is_unique_violation(&e)),
        "a line in two parcels"
    );
    shipment::Entity::delete_by_id(second.id)
        .exec(app.db())
        .await
        .expect("removed");

    // Parcels of different lines at once: the last of them ships the order.
    let (o, [a, b]) = placed(&app, &s, &s.buyer, true).await;
    let results = join_all([a, b].into_iter().enumerate().map(|(i, l)| {
        let (app, ship, admin, o) = (&app, &ship, &s.admin, &o);
        async move {
            app.gql_as(
                admin,
                ship,
                json!({ "o": o, "p": [{ "lineIds": [l], "carrier": "STO", "trackingNumber": format!("STO7700{i}") }] }),
            )
            .await
        }
    }))
    .await;
    for r in &results {
        assert!(r.get("errors").is_none(), "{r:#}");
    }
    let read = format!("query($o: ID!) {{ node(id: $o) {{ ... on Order {{ {ORDER_FIELDS} }} }} }}");
    let node = app.data_as(&s.buyer, &read, json!({ "o": o })).await["node"].clone();
    assert_eq!(node["status"], "SHIPPED", "{node:#}");
    assert_eq!(node["shipments"].as_array().map(Vec::len), Some(2));
    let _ = l2;
}

#[tokio::test]
async fn buyers_cancel_unpaid_orders_and_get_the_stock_back() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let (o, _) = placed(&app, &s, &s.buyer, false).await;
    assert_eq!(stock(&app, s.skus[1]).await, 98);

    // Another member's order is unknown; a reason too long is refused.
    let (stranger, _) = app.user("stranger@example.com", CliRole::PushHand).await;
    let resp = app
        .gql_as(&stranger, &cancel_query(), json!({ "o": o }))
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp:#}");
    let resp = app
        .gql_as(
            &s.buyer,
            &cancel_query(),
            json!({ "o": o, "r": "太".repeat(201) }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
    assert_eq!(resp["errors"][0]["extensions"]["field"], "reason");
    assert_eq!(stock(&app, s.skus[1]).await, 98, "nothing released");

    let cancelled = app
        .data_as(
            &s.buyer,
            &cancel_query(),
            json!({ "o": o, "r": " 不想要了 " }),
        )
        .await["cancelOrder"]
        .clone();
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["cancelReason"], "不想要了");
    assert_eq!(stock(&app, s.skus[0]).await, 100);
    assert_eq!(stock(&app, s.skus[1]).await, 100);
    // Again: the same answer, and the stock comes back once.
    let again = app
        .data_as(&s.buyer, &cancel_query(), json!({ "o": o, "r": "再取消" }))
        .await["cancelOrder"]
        .clone();
    assert_eq!(again, cancelled);
    assert_eq!(stock(&app, s.skus[1]).await, 100);

    // A paid order cannot be cancelled.
    let (paid, _) = placed(&app, &s, &s.buyer, true).await;
    let resp = app
        .gql_as(&s.buyer, &cancel_query(), json!({ "o": paid }))
        .await;
    assert_eq!(error_code(&resp), Some("ORDER_NOT_CANCELLABLE"), "{resp:#}");

    // An order that expired is cancelled already: answered as it is, without a reason.
    let (late, _) = placed(&app, &s, &s.buyer, false).await;
    app.clock.advance(chrono::Duration::hours(2));
    orders::expire_unpaid(app.db(), &app.state.events, app.clock_now())
        .await
        .map_err(anyhow::Error::from)
        .expect("expiry");
    let r = app
        .data_as(&s.buyer, &cancel_query(), json!({ "o": late, "r": "late" }))
        .await["cancelOrder"]
        .clone();
    assert_eq!(
        (r["status"].clone(), r["cancelReason"].clone()),
        (json!("CANCELLED"), Value::Null)
    );
    assert_eq!(
        stock(&app, s.skus[1]).await,
        98,
        "only the paid order's units are out"
    );
}

#[tokio::test]
async fn cancel_payment_and_expiry_racing_make_one_outcome() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let (db, events, sold) = (app.db(), &app.state.events, &app.state.units_sold);
    let policy = Policy {
        commission_levels: 2,
        membership_reward: entity::Money::ZERO,
        membership_reward_daily_cap: None,
    };
    let mut out = 0;
    let mut outcomes = Vec::new();
    for round in 0..6 {
        let now = app.clock_now();
        let (o, _) = orders::place_order(
            &app.state.checkouts,
            &s.buyer_row,
            vec![LineRequest {
                sku_id: s.skus[0],
                quantity: 2,
                share_code: None,
            }],
            chrono::Duration::minutes(30),
            now,
        )
        .await
        .map_err(anyhow::Error::from)
        .expect("placed");
        let reference = format!("race-{round}");
        let cancels = (0..4).map(|_| async {
            pushhand::service::fulfilment::cancel(db, events, &s.buyer_row, o.id, None, now)
                .await
                .is_ok_and(|c| c.status == entity::order::Status::Cancelled)
        });
        let payments = (0..4).map(|_| async {
            let payment = Payment {
                order_id: o.id,
                reference: &reference,
                amount: o.total,
                actor: None,
                intent: None,
            };
            orders::confirm_payment(db, events, sold, payment, &policy, now)
                .await
                .is_ok()
        });
        let expiries = (0..2).map(|_| async {
            orders::expire_unpaid(db, events, now + chrono::Duration::minutes(31))
                .await
                .map_err(anyhow::Error::from)
                .expect("expiry runs")
        });
        let (cancelled, paid, expired) =
            tokio::join!(join_all(cancels), join_all(payments), join_all(expiries));
        let end = orders::get(db, o.id)
            .await
            .map_err(anyhow::Error::from)
            .expect("order");
        match end.status {
            entity::order::Status::Paid => {
                out += 2;
                assert!(cancelled.iter().all(|c| !c), "round {round}");
                assert_eq!(expired.iter().sum::<usize>(), 0);
            }
            entity::order::Status::Cancelled => {
                assert!(paid.iter().all(|p| !p), "round {round}");
                assert!(expired.iter().sum::<usize>() <= 1);
            }
            other => panic!("round {round}: {other:?}"),
        }
        outcomes.push(end.status);
        assert_eq!(stock(&app, s.skus[0]).await, 100 - out, "round {round}");
    }
    println!("outcomes: {outcomes:?}");
}

#[tokio::test]
async fn order_status_changed_reports_every_parcel_and_the_cancel() {
    use crate::ws::{TRANSPORT_WS, Ws};
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let (o, [l1, l2]) = placed(&app, &s, &s.buyer, true).await;
    let (unpaid, _) = placed(&app, &s, &s.buyer, false).await;
    let q = "subscription($o: ID!) { orderStatusChanged(orderId: $o) { status fulfilment shipments { trackingNumber } } }";
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(Some(&s.buyer)).await;
    ws.subscribe("o", q, json!({ "o": o })).await;
    ws.subscribe("c", q, json!({ "o": unpaid })).await;
    // The connection listens for revocations, and each subscription for its events.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.state.events.receivers() < 3 {
        assert!(std::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Each parcel's event is awaited before the next parcel ships: an event is answered
    // with the order as it stands when it is delivered.
    let query = ship_query();
    let parcel = |line: &String, number: &str| json!({ "o": o, "p": [{ "lineIds": [line], "carrier": "SF", "trackingNumber": number }] });
    app.data_as(&s.admin, &query, parcel(&l1, "SF111222333"))
        .await;
    let first = ws.next("o").await;
    assert_eq!(
        first["data"]["orderStatusChanged"],
        json!({ "status": "PAID", "fulfilment": "PARTIALLY_SHIPPED", "shipments": [{ "trackingNumber": "SF111222333" }] })
    );
    app.data_as(&s.admin, &query, parcel(&l2, "SF444555666"))
        .await;
    let second = ws.next("o").await;
    assert_eq!(second["data"]["orderStatusChanged"]["status"], "SHIPPED");
    assert_eq!(
        second["data"]["orderStatusChanged"]["fulfilment"],
        "SHIPPED"
    );
    app.data_as(&s.buyer, &cancel_query(), json!({ "o": unpaid }))
        .await;
    let cancelled = ws.next("c").await;
    assert_eq!(
        cancelled["data"]["orderStatusChanged"]["status"],
        "CANCELLED"
    );
}
