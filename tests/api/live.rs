//! Subscriptions end to end with a real graphql-ws client: the right member gets exactly its
//! events (on one instance, and across two instances through Redis), nobody else gets any,
//! rollbacks publish nothing, and every protocol rule closes with its code.

use std::time::{Duration, Instant};

use chrono::Duration as Days;
use entity::member;
use pushhand::service::auth;
use pushhand::service::members::CliRole;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::earnings::{order, pay, product};
use crate::faults::PrivateRedis;
use crate::helpers::{TestApp, without_redis};
use crate::ws::{Incoming, LEGACY, TRANSPORT_WS, Ws};

const EARNINGS: &str = "subscription { earningsUpdated { kind resync
  earning { id kind amount status } withdrawal { id status amount }
  summary { pending available reserved withdrawn lifetime } } }";

struct Scene {
    admin: String,
    pusher_token: String,
    pusher: member::Model,
    sku: Uuid,
}

async fn scene(app: &TestApp) -> Scene {
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (pusher_token, pusher) = app.user("pusher@example.com", CliRole::PushHand).await;
    let (_, sku) = product(app, 1_000, false).await;
    bus_connected(app).await;
    Scene {
        admin,
        pusher_token,
        pusher,
        sku,
    }
}

/// The push-hand buys one unit for itself (a 15 % SELF_PURCHASE earning of 29.85) on
/// `shop`; returns the order id. Unpaid.
async fn self_purchase(shop: &TestApp, s: &Scene) -> String {
    let placed = order(shop, &s.pusher_token, s.sku, 1, None).await;
    placed["data"]["placeOrder"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("order placed: {placed}"))
        .to_owned()
}

async fn confirm(shop: &TestApp, s: &Scene, order_id: &str) {
    let paid = pay(
        shop,
        &s.admin,
        order_id,
        &format!("ref-{order_id}"),
        "199.00",
    )
    .await;
    assert_eq!(
        paid["data"]["confirmPayment"]["status"],
        json!("PAID"),
        "{paid}"
    );
}

/// Waits until `app` has `n` live event receivers: one per subscription plus one per
/// signed-in connection (it listens for revocations). A subscription registers when the
/// server first polls it, a moment after the `subscribe` message.
async fn listening(app: &TestApp, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.events.receivers() < n {
        assert!(Instant::now() < deadline, "subscriptions never registered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the app's event bus reaches Redis (its subscriber connected).
async fn bus_connected(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !app.state.events.connected() {
        assert!(Instant::now() < deadline, "event bus never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn subscribed(app: &TestApp, token: &str, protocol: &str) -> Ws {
    let mut ws = Ws::connect(app, protocol).await;
    ws.init(Some(token)).await;
    ws.subscribe("e", EARNINGS, json!({})).await;
    ws
}

fn event(payload: &Value) -> &Value {
    assert!(payload.get("errors").is_none(), "{payload}");
    &payload["data"]["earningsUpdated"]
}

#[tokio::test]
async fn a_payment_reaches_the_earner_and_nobody_else() {
    let app = TestApp::spawn().await;
    let s = scene(&app).await;
    let (other_token, _) = app.user("other@example.com", CliRole::PushHand).await;
    let mut mine = subscribed(&app, &s.pusher_token, TRANSPORT_WS).await;
    let mut theirs = subscribed(&app, &other_token, TRANSPORT_WS).await;
    listening(&app, 4).await;

    let order_id = self_purchase(&app, &s).await;
    confirm(&app, &s, &order_id).await;
    let payload = mine.next("e").await;
    let e = event(&payload);
    assert_eq!(e["kind"], json!("EARNING_CREATED"));
    assert_eq!(e["resync"], json!(false));
    assert_eq!(e["earning"]["kind"], json!("SELF_PURCHASE"));
    assert_eq!(e["earning"]["amount"], json!("29.85"));
    assert_eq!(e["earning"]["status"], json!("PENDING"));
    assert_eq!(e["summary"]["pending"], json!("29.85"), "the fresh summary");
    assert_eq!(e["withdrawal"], Value::Null);
    // Exactly one event: the order's own status change is not an earnings event.
    mine.silent_for(Duration::from_millis(300)).await;
    theirs.silent_for(Duration::from_millis(300)).await;

    // Anonymous connections may open, but earnings need a member.
    let mut anon = Ws::connect(&app, TRANSPORT_WS).await;
    anon.init(None).await;
    anon.subscribe("e", EARNINGS, json!({})).await;
    let err = anon.json().await;
    assert_eq!(err["type"], json!("error"), "{err}");
    assert_eq!(err["id"], json!("e"));
    assert_eq!(
        err["payload"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED")
    );
}

#[tokio::test]
async fn the_whole_money_path_arrives_live_and_rollbacks_publish_nothing() {
    let app = TestApp::spawn().await;
    let s = scene(&app).await;
    let mut ws = subscribed(&app, &s.pusher_token, TRANSPORT_WS).await;
    listening(&app, 2).await;

    // A withdrawal the balance cannot cover: the row is written, then the transaction rolls
    // back — and nothing may be published for it.
    let refused = app
        .gql_as(
            &s.pusher_token,
            "mutation { requestWithdrawal(amount: \"20.00\", idempotencyKey: \"k1\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        json!("INSUFFICIENT_BALANCE")
    );
    ws.silent_for(Duration::from_millis(300)).await;

    // Paid → created; shipped, received, window passed → settled.
    let order_id = self_purchase(&app, &s).await;
    confirm(&app, &s, &order_id).await;
    let created = ws.next("e").await;
    let earning_id = event(&created)["earning"]["id"].clone();
    for m in [
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
    ] {
        let token = if m.contains("ship") {
            &s.admin
        } else {
            &s.pusher_token
        };
        app.data_as(token, m, json!({ "o": order_id })).await;
    }
    let later = (app.clock_now() + Days::days(8)).to_rfc3339();
    app.data_as(
        &s.admin,
        "mutation($t: DateTime) { runSettlement(asOf: $t) { settled } }",
        json!({ "t": later }),
    )
    .await;
    let settled = ws.next("e").await;
    let e = event(&settled);
    assert_eq!(e["kind"], json!("EARNING_SETTLED"));
    assert_eq!(e["earning"]["id"], earning_id);
    assert_eq!(e["earning"]["status"], json!("SETTLED"));
    assert_eq!(
        (
            e["summary"]["pending"].clone(),
            e["summary"]["available"].clone()
        ),
        (json!("0.00"), json!("29.85"))
    );

    // A withdrawal: requested (reserved), then approved (withdrawn).
    let w = app
        .data_as(
            &s.pusher_token,
            "mutation { requestWithdrawal(amount: \"20.00\", idempotencyKey: \"k2\") { id } }",
            json!({}),
        )
        .await;
    let wid = w["requestWithdrawal"]["id"].clone();
    let requested = ws.next("e").await;
    let e = event(&requested);
    assert_eq!(e["kind"], json!("WITHDRAWAL_CHANGED"));
    assert_eq!(e["earning"], Value::Null);
    assert_eq!(e["withdrawal"]["id"], wid);
    assert_eq!(e["withdrawal"]["status"], json!("PENDING"));
    assert_eq!(e["summary"]["reserved"], json!("20.00"));
    app.data_as(
        &s.admin,
        "mutation($id: ID!) { reviewWithdrawal(id: $id, approve: true) { status } }",
        json!({ "id": wid }),
    )
    .await;
    let approved = ws.next("e").await;
    let e = event(&approved);
    assert_eq!(e["withdrawal"]["status"], json!("PROCESSING"));
    assert_eq!(e["summary"]["reserved"], json!("20.00"));
    app.data_as(
        &s.admin,
        "mutation($id: ID!) { markPayoutPaid(withdrawalId: $id, reference: \"BANK-1\") { status } }",
        json!({ "id": wid }),
    )
    .await;
    let paid = ws.next("e").await;
    let e = event(&paid);
    assert_eq!(e["withdrawal"]["status"], json!("PAID"));
    assert_eq!(e["summary"]["withdrawn"], json!("20.00"));

    // A refund before settlement reverses the earning.
    let second = self_purchase(&app, &s).await;
    confirm(&app, &s, &second).await;
    ws.next("e").await;
    let line = app
        .data_as(
            &s.pusher_token,
            "query($o: ID!) { node(id: $o) { ... on Order { lines { id } } } }",
            json!({ "o": second }),
        )
        .await["node"]["lines"][0]["id"]
        .clone();
    app.data_as(
        &s.admin,
        "mutation($l: ID!) { refundOrderLine(orderLineId: $l) { status } }",
        json!({ "l": line }),
    )
    .await;
    let reversed = ws.next("e").await;
    let e = event(&reversed);
    assert_eq!(e["kind"], json!("EARNING_REVERSED"));
    assert_eq!(e["earning"]["status"], json!("REVERSED"));
    assert_eq!(e["summary"]["pending"], json!("0.00"));
    ws.silent_for(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn order_status_changes_reach_the_buyer_only() {
    let app = TestApp::spawn().await;
    let s = scene(&app).await;
    let (other_token, _) = app.user("other@example.com", CliRole::PushHand).await;
    let order_id = self_purchase(&app, &s).await;
    let q = "subscription($o: ID!) { orderStatusChanged(orderId: $o) { id status } }";

    let mut stranger = Ws::connect(&app, TRANSPORT_WS).await;
    stranger.init(Some(&other_token)).await;
    stranger.subscribe("o", q, json!({ "o": order_id })).await;
    let err = stranger.json().await;
    assert_eq!(err["type"], json!("error"));
    assert_eq!(err["payload"][0]["extensions"]["code"], json!("NOT_FOUND"));

    let mut buyer = Ws::connect(&app, TRANSPORT_WS).await;
    buyer.init(Some(&s.pusher_token)).await;
    buyer.subscribe("o", q, json!({ "o": order_id })).await;
    // The stranger's connection (1) and the buyer's connection and subscription (2).
    listening(&app, 3).await;
    confirm(&app, &s, &order_id).await;
    let paid = buyer.next("o").await;
    assert_eq!(paid["data"]["orderStatusChanged"]["status"], json!("PAID"));
    app.data_as(
        &s.admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": order_id }),
    )
    .await;
    let shipped = buyer.next("o").await;
    assert_eq!(
        shipped["data"]["orderStatusChanged"],
        json!({ "id": order_id, "status": "SHIPPED" })
    );
    // The client completes the operation: the server stops it without a word.
    buyer.send(json!({ "type": "complete", "id": "o" })).await;
    buyer.silent_for(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn the_legacy_protocol_works_too() {
    let app = TestApp::spawn().await;
    let s = scene(&app).await;
    let mut ws = Ws::connect(&app, LEGACY).await;
    ws.init(Some(&s.pusher_token)).await;
    ws.subscribe("1", EARNINGS, json!({})).await;
    listening(&app, 2).await;
    let order_id = self_purchase(&app, &s).await;
    confirm(&app, &s, &order_id).await;
    let payload = ws.next("1").await;
    assert_eq!(event(&payload)["earning"]["amount"], json!("29.85"));
    ws.send(json!({ "type": "stop", "id": "1" })).await;
    assert_eq!(ws.json().await, json!({ "type": "complete", "id": "1" }));
    ws.send(json!({ "type": "connection_terminate" })).await;
    assert_eq!(ws.closed().await.0, 1000);
}

#[tokio::test]
async fn protocol_rules_close_with_their_codes() {
    let app = TestApp::spawn_with(&["--ws-init-timeout-seconds", "1"]).await;
    let (token, _) = app.user("pusher@example.com", CliRole::PushHand).await;

    // No connection_init in time: 4408.
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    assert_eq!(ws.closed().await.0, 4408);

    // A bad token: 4403, in either protocol.
    for protocol in [TRANSPORT_WS, LEGACY] {
        let mut ws = Ws::connect(&app, protocol).await;
        ws.send(json!({ "type": "connection_init", "payload": { "authorization": "Bearer not-a-token" } }))
            .await;
        assert_eq!(ws.closed().await.0, 4403, "{protocol}");
    }

    // The token under `token` works as well as `Authorization`.
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.send(json!({ "type": "connection_init", "payload": { "token": token } }))
        .await;
    assert_eq!(ws.json().await["type"], json!("connection_ack"));

    // Subscribe before the ack: 4401.
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.subscribe("e", EARNINGS, json!({})).await;
    assert_eq!(ws.closed().await.0, 4401);

    // A duplicate id: 4409.
    let mut ws = subscribed(&app, &token, TRANSPORT_WS).await;
    ws.subscribe("e", EARNINGS, json!({})).await;
    assert_eq!(ws.closed().await.0, 4409);

    // A second connection_init: 4429.
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(Some(&token)).await;
    ws.send(json!({ "type": "connection_init", "payload": {} }))
        .await;
    assert_eq!(ws.closed().await.0, 4429);

    // Not JSON, or no type we know: 4400.
    for bad in ["{not json", r#"{"type":"shout"}"#] {
        let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
        ws.init(Some(&token)).await;
        ws.send_text(bad.to_owned()).await;
        assert_eq!(ws.closed().await.0, 4400, "{bad}");
    }

    // A message over 64 KiB: 1009. Just under is fine.
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(Some(&token)).await;
    let pad = |n: usize| {
        let skeleton = json!({ "type": "ping", "payload": { "p": "" } }).to_string();
        json!({ "type": "ping", "payload": { "p": "x".repeat(n - skeleton.len()) } }).to_string()
    };
    ws.send_text(pad(64 * 1024)).await;
    assert_eq!(ws.json().await["type"], json!("pong"));
    ws.send_text(pad(64 * 1024 + 1)).await;
    assert_eq!(ws.closed().await.0, 1009);

    // At most 20 active operations; the 21st is refused alone and the connection stays.
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(Some(&token)).await;
    for i in 0..20 {
        ws.subscribe(&format!("s{i}"), EARNINGS, json!({})).await;
    }
    ws.subscribe("s20", EARNINGS, json!({})).await;
    let refused = ws.json().await;
    assert_eq!(refused["type"], json!("error"), "{refused}");
    assert_eq!(refused["id"], json!("s20"));
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        json!("TOO_MANY_SUBSCRIPTIONS")
    );
    ws.send(json!({ "type": "complete", "id": "s3" })).await;
    ws.subscribe("s20", EARNINGS, json!({})).await;
    // Accepted this time: a ping still gets its pong, with no error in between.
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.json().await["type"], json!("pong"));
}

#[tokio::test]
async fn an_expired_or_revoked_token_ends_the_subscriptions() {
    let app = TestApp::spawn().await;
    let s = scene(&app).await;

    // A token that lives two seconds.
    let short = auth::issue_token(
        &app.state.jwt_secret,
        &s.pusher,
        chrono::Utc::now(),
        Days::seconds(2),
    )
    .expect("token");
    let started = Instant::now();
    let mut ws = subscribed(&app, &short, TRANSPORT_WS).await;
    let err = ws.json().await;
    assert_eq!(err["type"], json!("error"), "{err}");
    assert_eq!(
        err["payload"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED")
    );
    let (code, reason) = ws.closed().await;
    assert_eq!(code, 4403);
    assert!(reason.contains("expired"), "{reason}");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A password change revokes every token: open subscriptions end at once.
    let mut ws = subscribed(&app, &s.pusher_token, TRANSPORT_WS).await;
    listening(&app, 2).await;
    app.data_as(
        &s.pusher_token,
        "mutation($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) { token } }",
        json!({ "o": crate::helpers::PASSWORD, "n": "a brand new password" }),
    )
    .await;
    let err = ws.json().await;
    assert_eq!(
        err["payload"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED")
    );
    let (code, reason) = ws.closed().await;
    assert_eq!((code, reason.contains("revoked")), (4403, true), "{reason}");
    // And the old token cannot open a new connection.
    let mut again = Ws::connect(&app, TRANSPORT_WS).await;
    again
        .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", s.pusher_token) } }))
        .await;
    assert_eq!(again.closed().await.0, 4403);
}

#[tokio::test]
async fn shutdown_closes_websockets_with_1001() {
    let mut app = TestApp::spawn().await;
    let s = scene(&app).await;
    let mut ws = subscribed(&app, &s.pusher_token, TRANSPORT_WS).await;
    listening(&app, 2).await;
    app.begin_shutdown();
    let (code, _) = ws.closed().await;
    assert_eq!(code, 1001);
    let stopped = app.stopped.take().expect("running");
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the server stops once its sockets are closed")
        .expect("join")
        .expect("clean stop");
}

/// Two instances on one database and one Redis: a payment confirmed on B reaches the
/// earner's sockets on A and on B, and no one else's. Needs Redis (skipped without).
#[tokio::test]
async fn events_cross_instances_through_redis() {
    if without_redis() {
        return;
    }
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_sharing(&a, &[]).await;
    bus_connected(&a).await;
    bus_connected(&b).await;
    let s = scene(&a).await;
    let (other_token, _) = a.user("other@example.com", CliRole::PushHand).await;
    let mut on_a = subscribed(&a, &s.pusher_token, TRANSPORT_WS).await;
    let mut on_b = subscribed(&b, &s.pusher_token, LEGACY).await;
    let mut other_a = subscribed(&a, &other_token, TRANSPORT_WS).await;
    let mut other_b = subscribed(&b, &other_token, TRANSPORT_WS).await;
    listening(&a, 4).await;
    listening(&b, 4).await;

    let mut latencies = Vec::new();
    for _ in 0..10 {
        let order_id = self_purchase(&b, &s).await;
        let sent = Instant::now();
        confirm(&b, &s, &order_id).await;
        let payload = on_a.next("e").await;
        latencies.push(sent.elapsed());
        assert_eq!(event(&payload)["earning"]["amount"], json!("29.85"));
        let payload = on_b.next("e").await;
        assert_eq!(event(&payload)["kind"], json!("EARNING_CREATED"));
    }
    latencies.sort();
    let max = latencies[latencies.len() - 1];
    eprintln!(
        "cross-instance delivery (payment sent on B → event on A): p50 {:?}, max {:?}",
        latencies[latencies.len() / 2],
        max
    );
    assert!(max < Duration::from_secs(5), "events crawl: {max:?}");
    other_a.silent_for(Duration::from_millis(300)).await;
    other_b.silent_for(Duration::from_millis(100)).await;
    on_a.silent_for(Duration::from_millis(100)).await;
}

/// Redis restarts under a subscribed client: the subscriber reconnects by itself, the
/// client is told to resync, and later events arrive. Uses a private redis-server (the
/// shared one serves other tests); runs with the Redis suite.
#[tokio::test]
async fn the_event_subscriber_recovers_from_a_redis_restart() {
    if without_redis() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut redis = PrivateRedis::start(port).expect("redis-server on PATH");
    redis.ready().await;
    let url = format!("redis://127.0.0.1:{port}");
    let app = TestApp::spawn_with(&["--redis-url", &url]).await;
    bus_connected(&app).await;
    let s = scene(&app).await;
    let mut ws = subscribed(&app, &s.pusher_token, TRANSPORT_WS).await;
    listening(&app, 2).await;

    redis.stop();
    // While Redis is down the instance still serves, and its own events still reach its own
    // subscribers (degraded to in-process).
    let order_id = self_purchase(&app, &s).await;
    confirm(&app, &s, &order_id).await;
    let payload = ws.next("e").await;
    assert_eq!(event(&payload)["kind"], json!("EARNING_CREATED"));
    // And the catalog with its passports still answers (the cache falls back to the
    // database).
    app.data(
        "{ products(first: 5) { edges { node { id curation { passed } } } } }",
        json!({}),
    )
    .await;

    let mut redis = PrivateRedis::start(port).expect("restart");
    redis.ready().await;
    bus_connected(&app).await;
    // Told to resync: events may have been lost while the subscriber was away.
    let payload = ws.next("e").await;
    let e = event(&payload);
    assert_eq!(
        (e["kind"].clone(), e["resync"].clone()),
        (json!("RESYNC"), json!(true))
    );
    assert_eq!(
        e["summary"]["pending"],
        json!("29.85"),
        "the summary is current"
    );

    // And events flow through Redis again.
    let second = self_purchase(&app, &s).await;
    confirm(&app, &s, &second).await;
    let payload = ws.next("e").await;
    assert_eq!(event(&payload)["summary"]["pending"], json!("59.70"));
    redis.stop();
    match ws.recv_within(Duration::from_millis(50)).await {
        None | Some(Incoming::Json(_)) => {}
        Some(Incoming::Closed(code, _)) => panic!("the socket closed ({code}) when Redis did"),
    }
}
