//! Order lists: a member's own (`me.orders(status)`) and the admins' (`orders(status,
//! memberId, placedFrom, placedTo)`), filtered and paged newest first, with parcels and each
//! line's refund state; admins only for the latter.

use pushhand::graphql::ids::Kind;
use pushhand::service::members::CliRole;
use serde_json::{Value, json};

use crate::fixtures::gid;
use crate::fulfilment::{ORDER_FIELDS, placed, shop};
use crate::helpers::{TestApp, error_code};

fn mine_query() -> String {
    format!(
        "query($s: OrderStatus, $first: Int, $after: String) {{ me {{ orders(status: $s, first: $first, after: $after) {{
          edges {{ cursor node {{ {ORDER_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }} }}"
    )
}

fn all_query() -> String {
    format!(
        "query($s: OrderStatus, $m: ID, $from: DateTime, $to: DateTime, $first: Int, $after: String) {{
          orders(status: $s, memberId: $m, placedFrom: $from, placedTo: $to, first: $first, after: $after) {{
          edges {{ cursor node {{ {ORDER_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    )
}

fn ids(conn: &Value) -> Vec<String> {
    conn["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Every order the query answers, page by page of `first`.
async fn walk(
    app: &TestApp,
    token: &str,
    query: &str,
    vars: Value,
    first: i32,
    at: &[&str],
) -> Vec<String> {
    let mut out = Vec::new();
    let mut after = Value::Null;
    loop {
        let mut v = vars.clone();
        v["first"] = json!(first);
        v["after"] = after;
        let data = app.data_as(token, query, v).await;
        let mut conn = &data;
        for key in at {
            conn = &conn[*key];
        }
        let page = ids(conn);
        assert!(page.len() <= first as usize);
        out.extend(page);
        if conn["pageInfo"]["hasNextPage"] != json!(true) {
            return out;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn members_list_their_own_orders_by_status() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let tick = || app.clock.advance(chrono::Duration::minutes(1));
    let (unpaid, _) = placed(&app, &s, &s.buyer, false).await;
    tick();
    let (paid, [l1, _]) = placed(&app, &s, &s.buyer, true).await;
    tick();
    let (cancelled, _) = placed(&app, &s, &s.buyer, false).await;
    app.data_as(
        &s.buyer,
        "mutation($o: ID!) { cancelOrder(orderId: $o, reason: \"选错了\") { status } }",
        json!({ "o": cancelled }),
    )
    .await;
    tick();
    let (shipped, _) = placed(&app, &s, &s.buyer, true).await;
    app.data_as(
        &s.admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": shipped }),
    )
    .await;
    // Someone else's order is never in the buyer's list.
    let (other, _) = app.user("other@example.com", CliRole::PushHand).await;
    placed(&app, &s, &other, false).await;
    // One unit of the paid order's line refunded.
    app.data_as(
        &s.admin,
        "mutation($l: ID!) { refundOrderLine(orderLineId: $l) { status } }",
        json!({ "l": l1 }),
    )
    .await;

    let q = mine_query();
    let all = walk(&app, &s.buyer, &q, json!({}), 2, &["me", "orders"]).await;
    assert_eq!(
        all,
        [shipped.as_str(), &cancelled, &paid, &unpaid],
        "newest first"
    );
    for (status, expected) in [
        ("PENDING_PAYMENT", &unpaid),
        ("PAID", &paid),
        ("CANCELLED", &cancelled),
        ("SHIPPED", &shipped),
    ] {
        let data = app.data_as(&s.buyer, &q, json!({ "s": status })).await;
        assert_eq!(ids(&data["me"]["orders"]), [expected.as_str()], "{status}");
    }
    let data = app.data_as(&s.buyer, &q, json!({ "s": "COMPLETED" })).await;
    assert_eq!(ids(&data["me"]["orders"]), Vec::<String>::new());

    // What a list row shows: the reason, the parcels, each line's refunds.
    let data = app.data_as(&s.buyer, &q, json!({})).await;
    let node = |id: &str| -> Value {
        data["me"]["orders"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .find(|e| e["node"]["id"] == json!(id))
            .map(|e| e["node"].clone())
            .expect("listed")
    };
    assert_eq!(node(&cancelled)["cancelReason"], "选错了");
    assert_eq!(node(&shipped)["fulfilment"], "SHIPPED");
    assert_eq!(
        node(&shipped)["shipments"].as_array().map(Vec::len),
        Some(2)
    );
    let refunded = node(&paid);
    let line = refunded["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["id"] == json!(l1))
        .cloned()
        .expect("line");
    assert_eq!(line["refundState"], "FULL");
    assert_eq!(node(&unpaid)["fulfilment"], "UNSHIPPED");
}

#[tokio::test]
async fn admins_filter_and_page_every_order() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let (other, other_row) = app.user("other@example.com", CliRole::PushHand).await;
    let start = app.clock_now();
    let mut placed_orders = Vec::new();
    for i in 0..7 {
        let token = if i % 2 == 0 { &s.buyer } else { &other };
        let (o, _) = placed(&app, &s, token, i % 3 == 0).await;
        placed_orders.push((o, i));
        app.clock.advance(chrono::Duration::minutes(10));
    }
    let newest_first = |keep: &dyn Fn(usize) -> bool| -> Vec<String> {
        placed_orders
            .iter()
            .rev()
            .filter(|(_, i)| keep(*i))
            .map(|(o, _)| o.clone())
            .collect()
    };
    let q = all_query();
    let at = ["orders"];
    assert_eq!(
        walk(&app, &s.admin, &q, json!({}), 3, &at).await,
        newest_first(&|_| true)
    );
    assert_eq!(
        walk(&app, &s.admin, &q, json!({ "s": "PAID" }), 2, &at).await,
        newest_first(&|i| i % 3 == 0)
    );
    let member = gid(Kind::MemberProfile, other_row.id);
    assert_eq!(
        walk(&app, &s.admin, &q, json!({ "m": member }), 2, &at).await,
        newest_first(&|i| i % 2 == 1)
    );
    // Placed from the third order (inclusive) to the sixth (exclusive).
    let from = (start + chrono::Duration::minutes(20)).to_rfc3339();
    let to = (start + chrono::Duration::minutes(50)).to_rfc3339();
    assert_eq!(
        walk(
            &app,
            &s.admin,
            &q,
            json!({ "from": from, "to": to }),
            2,
            &at
        )
        .await,
        newest_first(&|i| (2..5).contains(&i))
    );
    assert_eq!(
        walk(
            &app,
            &s.admin,
            &q,
            json!({ "from": from, "to": to, "s": "PAID", "m": gid(Kind::Member, other_row.id) }),
            1,
            &at
        )
        .await,
        newest_first(&|i| (2..5).contains(&i) && i % 2 == 1 && i % 3 == 0)
    );

    // Bad arguments, and anyone but an admin.
    let resp = app
        .gql_as(&s.admin, &q, json!({ "from": to, "to": from }))
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
    assert_eq!(resp["errors"][0]["extensions"]["field"], "placedFrom");
    let resp = app
        .gql_as(&s.admin, &q, json!({ "after": "not-a-cursor" }))
        .await;
    assert_eq!(resp["errors"][0]["extensions"]["field"], "after");
    let resp = app
        .gql_as(&s.admin, &q, json!({ "m": gid(Kind::Order, other_row.id) }))
        .await;
    assert_eq!(resp["errors"][0]["extensions"]["field"], "memberId");
    for token in [&s.buyer, &s.merchants[0].0] {
        let resp = app.gql_as(token, &q, json!({})).await;
        assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{resp:#}");
        assert_eq!(resp["data"], Value::Null);
    }
    let resp = app.gql(&q, json!({})).await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"));
}
