//! Webhooks: a receiver in the suite checks every signature as docs/api.md tells an
//! integrator to; events come from the outbox written with the change, are retried with
//! backoff, survive the instance that committed them, are sent once by two instances, never
//! slow the request that caused them, can be redelivered, and are signed with both secrets
//! while a rotated one is in its grace.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::Duration;
use hmac::{Hmac, Mac};
use pushhand::graphql::ids::Kind;
use pushhand::service::audit::Actor;
use pushhand::service::members::CliRole;
use pushhand::service::webhooks::{self as svc, NewEndpoint, Webhooks};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::earnings::{order, pay, product};
use crate::fixtures::gid;
use crate::helpers::{TestApp, error_code};

/// One request the receiver took.
#[derive(Clone, Debug)]
struct Received {
    event_id: String,
    event_type: String,
    body: Value,
    /// Which of the receiver's secrets signed it (indexes into `secrets`), empty if none.
    signed_by: Vec<usize>,
    /// How many `v1` signatures the header carried.
    signatures: usize,
}

/// A webhook receiver on a port of its own: verifies `Pushhand-Signature` against the
/// secrets it is told, answers 500 to the first `fail_first` requests, waits `delay` before
/// answering, and notes the most requests for one event it had in hand at once.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    secrets: Arc<Mutex<Vec<String>>>,
    fail_first: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicUsize>,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    most_at_once: Arc<AtomicUsize>,
    url: String,
}

/// Checks a signature as a receiver written from docs/api.md would: `t` equals
/// `Pushhand-Timestamp` and is recent, and some `v1` is the hex HMAC-SHA256 of
/// `"{t}.{body}"` under the secret. Returns which secrets matched and how many `v1`s came.
fn verify(headers: &HeaderMap, body: &[u8], secrets: &[String]) -> (Vec<usize>, usize) {
    let header = headers
        .get("pushhand-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1.push(v.to_owned()),
            _ => {}
        }
    }
    let stamp = headers
        .get("pushhand-timestamp")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let Some(t) = t.filter(|t| Some(*t) == stamp) else {
        return (vec![], v1.len());
    };
    if (chrono::Utc::now().timestamp() - t).abs() > 300 {
        return (vec![], v1.len());
    }
    let matched = secrets
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            let mut mac = Hmac::<Sha256>::new_from_slice(s.as_bytes()).expect("any key");
            mac.update(format!("{t}.").as_bytes());
            mac.update(body);
            let hex: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            v1.contains(&hex)
        })
        .map(|(i, _)| i)
        .collect();
    (matched, v1.len())
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let r = Receiver {
            url: format!("http://{}/hooks", listener.local_addr().expect("addr")),
            ..Receiver::default()
        };
        let me = r.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let me = me.clone();
                async move { me.take(headers, body).await }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        r
    }

    async fn take(&self, headers: HeaderMap, body: Bytes) -> StatusCode {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let event_id = header("pushhand-event-id");
        {
            let mut flight = self.in_flight.lock().expect("lock");
            let n = flight.entry(event_id.clone()).or_default();
            *n += 1;
            self.most_at_once.fetch_max(*n, Ordering::SeqCst);
        }
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(StdDuration::from_millis(delay as u64)).await;
        }
        let secrets = self.secrets.lock().expect("lock").clone();
        let (signed_by, signatures) = verify(&headers, &body, &secrets);
        self.got.lock().expect("lock").push(Received {
            event_id: event_id.clone(),
            event_type: header("pushhand-event-type"),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            signed_by,
            signatures,
        });
        if let Some(n) = self.in_flight.lock().expect("lock").get_mut(&event_id) {
            *n -= 1;
        }
        let failing = self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::NO_CONTENT
        }
    }

    fn trust(&self, secret: &str) {
        self.secrets.lock().expect("lock").push(secret.to_owned());
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    fn of_type(&self, t: &str) -> Vec<Received> {
        self.got()
            .into_iter()
            .filter(|r| r.event_type == t)
            .collect()
    }

    /// Waits (up to 20 s) until `n` requests of type `t` came; returns them.
    async fn wait_for(&self, t: &str, n: usize) -> Vec<Received> {
        let until = Instant::now() + StdDuration::from_secs(20);
        loop {
            let got = self.of_type(t);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < until,
                "{n} × {t} expected, got {:?}",
                self.got()
            );
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    }
}

const CREATE: &str = "mutation($i: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $i) { secret endpoint { id url events enabled } } }";
const DELIVERIES: &str = "query($e: ID, $s: WebhookDeliveryStatus) {
  webhookDeliveries(endpointId: $e, status: $s, first: 50) { totalCount edges { node {
    id eventId eventType endpointId status attempts lastStatusCode lastError deliveredAt
    nextAttemptAt payload } } } }";

/// Polling fast, so tests wait milliseconds, not seconds.
const FAST: [&str; 2] = ["--webhook-poll-ms", "25"];

/// Registers an endpoint for `events` at the receiver, which then trusts its secret.
async fn endpoint(app: &TestApp, admin: &str, r: &Receiver, events: &[&str]) -> String {
    let d = app
        .data_as(
            admin,
            CREATE,
            json!({ "i": { "url": r.url, "events": events } }),
        )
        .await;
    let secret = d["createWebhookEndpoint"]["secret"]
        .as_str()
        .expect("secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    r.trust(secret);
    d["createWebhookEndpoint"]["endpoint"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Places and pays an order of one unit (199.00) through the API; returns its global ID.
async fn paid_order(app: &TestApp, admin: &str, buyer: &str, sku: Uuid) -> String {
    let o = order(app, buyer, sku, 1, None).await;
    let id = o["data"]["placeOrder"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{o}"))
        .to_owned();
    let paid = pay(
        app,
        admin,
        &id,
        &format!("ref-{}", Uuid::now_v7()),
        "199.00",
    )
    .await;
    assert!(paid["errors"].is_null(), "{paid}");
    id
}

async fn deliveries(app: &TestApp, admin: &str, endpoint: &str, status: Option<&str>) -> Value {
    app.data_as(admin, DELIVERIES, json!({ "e": endpoint, "s": status }))
        .await["webhookDeliveries"]
        .clone()
}

/// Waits (up to 20 s) until `endpoint`'s deliveries in `status` number `n`.
async fn wait_deliveries(
    app: &TestApp,
    admin: &str,
    endpoint: &str,
    status: &str,
    n: u64,
) -> Value {
    let until = Instant::now() + StdDuration::from_secs(20);
    loop {
        let d = deliveries(app, admin, endpoint, Some(status)).await;
        // The count and the page are two reads: both must have seen the change.
        let listed = d["edges"].as_array().map_or(0, Vec::len) as u64;
        if d["totalCount"].as_u64() == Some(n) && listed == n.min(20) {
            return d;
        }
        assert!(Instant::now() < until, "{n} {status} expected: {d:#}");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

/// The one `PENDING` delivery of `endpoint` once `attempts` attempts of it are recorded (the
/// receiver hears an attempt before its outcome is written).
async fn wait_pending_after(app: &TestApp, admin: &str, endpoint: &str, attempts: u64) -> Value {
    let until = Instant::now() + StdDuration::from_secs(20);
    loop {
        let d = wait_deliveries(app, admin, endpoint, "PENDING", 1).await;
        if d["edges"][0]["node"]["attempts"].as_u64() == Some(attempts) {
            return d;
        }
        assert!(
            Instant::now() < until,
            "{attempts} attempts expected: {d:#}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_paid_shipped_and_completed_order_is_delivered_signed() {
    let app = TestApp::spawn_with(&FAST).await;
    let (admin, _) = app.user("wh-admin@example.com", CliRole::Admin).await;
    let (buyer, _) = app.user("wh-buyer@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 50, false).await;
    let r = Receiver::start().await;
    let only_shipped = Receiver::start().await;
    let e = endpoint(&app, &admin, &r, &["order.*"]).await;
    endpoint(&app, &admin, &only_shipped, &["order.shipped"]).await;

    let id = paid_order(&app, &admin, &buyer, sku).await;

    let paid = r.wait_for("order.paid", 1).await;
    assert_eq!(paid[0].signed_by, [0], "signed with the endpoint's secret");
    assert_eq!(paid[0].signatures, 1);
    let body = &paid[0].body;
    assert_eq!(body["type"], "order.paid");
    assert_eq!(
        body["id"],
        paid[0].event_id.as_str(),
        "the header's event id"
    );
    assert_eq!(
        body["data"]["order"]["id"],
        id.as_str(),
        "the API's global ID"
    );
    assert_eq!(body["data"]["order"]["status"], "PAID");
    assert_eq!(body["data"]["order"]["total"], "199.00");
    assert_eq!(body["data"]["lines"][0]["quantity"], 1);
    assert_eq!(
        body["data"]["lines"][0]["skuId"],
        gid(Kind::Sku, sku).as_str()
    );
    let d = wait_deliveries(&app, &admin, &e, "DELIVERED", 1).await;
    let node = &d["edges"][0]["node"];
    assert_eq!(node["eventType"], "order.paid");
    assert_eq!(node["attempts"], 1);
    assert_eq!(node["lastStatusCode"], 204);
    assert!(node["nextAttemptAt"].is_null());
    let sent: Value =
        serde_json::from_str(node["payload"].as_str().expect("payload")).expect("json");
    assert_eq!(&sent, body, "the payload shown is the body sent");

    app.data_as(
        &admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": id }),
    )
    .await;
    let shipped = r.wait_for("order.shipped", 1).await;
    assert_eq!(shipped[0].body["data"]["order"]["status"], "SHIPPED");
    assert_eq!(
        shipped[0].body["data"]["parcels"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(shipped[0].signed_by, [0]);
    let other = only_shipped.wait_for("order.shipped", 1).await;
    assert_eq!(
        other[0].signed_by,
        [0],
        "each endpoint signs with its own secret"
    );
    assert_ne!(other[0].signatures, 0);
    app.data_as(
        &buyer,
        "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
        json!({ "o": id }),
    )
    .await;
    let done = r.wait_for("order.completed", 1).await;
    assert_eq!(done[0].body["data"]["order"]["status"], "COMPLETED");
    assert_eq!(done[0].signed_by, [0]);
    // The shipped-only endpoint heard nothing else.
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    assert_eq!(only_shipped.got().len(), 1, "{:?}", only_shipped.got());
    assert_eq!(r.got().len(), 3, "each event once: {:?}", r.got());
    let all = deliveries(&app, &admin, &e, None).await;
    assert_eq!(all["totalCount"], 3);
}

#[tokio::test]
async fn staff_fields_are_admin_only_and_inputs_checked_at_once() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("wh2-admin@example.com", CliRole::Admin).await;
    let (curator, _) = app.user("wh2-cur@example.com", CliRole::Curator).await;
    let (buyer, _) = app.user("wh2-buyer@example.com", CliRole::PushHand).await;
    for token in [&curator, &buyer] {
        for (q, v) in [
            ("{ webhookEndpoints { id } }", json!({})),
            (DELIVERIES, json!({})),
            (
                CREATE,
                json!({ "i": { "url": "http://127.0.0.1:9/x", "events": ["order.paid"] } }),
            ),
            (
                "mutation($id: ID!) { redeliver(id: $id) { id } }",
                json!({ "id": gid(Kind::WebhookDelivery, Uuid::now_v7()) }),
            ),
            (
                "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
                json!({ "id": gid(Kind::WebhookEndpoint, Uuid::now_v7()) }),
            ),
        ] {
            let resp = app.gql_as(token, q, v).await;
            assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{q}: {resp}");
        }
    }
    let bad = app
        .gql_as(
            &admin,
            CREATE,
            json!({ "i": { "url": "https://example.com/x", "events": ["order.refunded"] } }),
        )
        .await;
    assert_eq!(error_code(&bad), Some("VALIDATION"), "{bad}");
    let fields: Vec<&str> = bad["errors"][0]["extensions"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(fields, ["input.url", "input.events"], "{bad}");
    // Created and listed, the secret never shown again; the creation is audited.
    let r = Receiver::start().await;
    let e = endpoint(&app, &admin, &r, &["after_sale.*", "order.paid"]).await;
    let list = app
        .data_as(
            &admin,
            "{ webhookEndpoints { id events enabled } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["webhookEndpoints"],
        json!([{ "id": e, "events": ["after_sale.*", "order.paid"], "enabled": true }])
    );
    let audit = app
        .data_as(
            &admin,
            "{ auditLog(first: 5) { edges { node { action targetId arguments } } } }",
            json!({}),
        )
        .await;
    let entry = &audit["auditLog"]["edges"][0]["node"];
    assert_eq!(entry["action"], "WEBHOOK_ENDPOINT_CREATED");
    assert_eq!(entry["targetId"], e.as_str());
    assert!(!entry["arguments"].to_string().contains("whsec_"));
    // Disabled: a change no enabled endpoint wants writes no event.
    let off = app
        .data_as(
            &admin,
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: { enabled: false }) { enabled } }",
            json!({ "id": e }),
        )
        .await;
    assert_eq!(off["updateWebhookEndpoint"]["enabled"], false);
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_backoff_then_given_up() {
    let app = TestApp::spawn_with(&FAST).await;
    let (admin, _) = app.user("wh3-admin@example.com", CliRole::Admin).await;
    let (buyer, _) = app.user("wh3-buyer@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 50, false).await;
    let r = Receiver::start().await;
    r.fail_first.store(2, Ordering::SeqCst);
    let e = endpoint(&app, &admin, &r, &["order.paid"]).await;

    paid_order(&app, &admin, &buyer, sku).await;
    r.wait_for("order.paid", 1).await;
    let pending = wait_pending_after(&app, &admin, &e, 1).await;
    let node = &pending["edges"][0]["node"];
    assert_eq!(node["lastStatusCode"], 500);
    assert!(
        node["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("500"))
    );
    // Not before the backoff: 10 s after the first attempt, then 20 s after the second.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(r.got().len(), 1, "no retry before its time");
    app.clock.advance(Duration::seconds(11));
    r.wait_for("order.paid", 2).await;
    wait_pending_after(&app, &admin, &e, 2).await;
    app.clock.advance(Duration::seconds(21));
    let got = r.wait_for("order.paid", 3).await;
    let d = wait_deliveries(&app, &admin, &e, "DELIVERED", 1).await;
    assert_eq!(d["edges"][0]["node"]["attempts"], 3);
    assert!(
        got.iter().all(|g| g.event_id == got[0].event_id),
        "one event id"
    );

    // A receiver that never answers 2xx: retried for 24 hours, then FAILED.
    r.fail_first.store(usize::MAX, Ordering::SeqCst);
    paid_order(&app, &admin, &buyer, sku).await;
    r.wait_for("order.paid", 4).await;
    // The first attempt's outcome is written before the clock moves on (else it could be
    // written as of 25 hours later, and be the last).
    wait_pending_after(&app, &admin, &e, 1).await;
    app.clock.advance(Duration::hours(25));
    let failed = wait_deliveries(&app, &admin, &e, "FAILED", 1).await;
    let node = &failed["edges"][0]["node"];
    assert_eq!(node["attempts"], 2);
    assert_eq!(node["status"], "FAILED");
}

#[tokio::test]
async fn redeliver_sends_the_same_event_again() {
    let app = TestApp::spawn_with(&FAST).await;
    let (admin, _) = app.user("wh4-admin@example.com", CliRole::Admin).await;
    let (buyer, _) = app.user("wh4-buyer@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 50, false).await;
    let r = Receiver::start().await;
    let e = endpoint(&app, &admin, &r, &["order.paid"]).await;
    paid_order(&app, &admin, &buyer, sku).await;
    let first = r.wait_for("order.paid", 1).await;
    let d = wait_deliveries(&app, &admin, &e, "DELIVERED", 1).await;
    let id = d["edges"][0]["node"]["id"].as_str().expect("id").to_owned();

    let again = app
        .data_as(
            &admin,
            "mutation($id: ID!) { redeliver(id: $id) { id status eventId } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(again["redeliver"]["status"], "PENDING");
    let got = r.wait_for("order.paid", 2).await;
    assert_eq!(
        got[1].event_id, first[0].event_id,
        "the receiver can deduplicate"
    );
    assert_eq!(got[1].body, first[0].body);
    assert_eq!(got[1].signed_by, [0]);
    let d = wait_deliveries(&app, &admin, &e, "DELIVERED", 1).await;
    assert_eq!(d["edges"][0]["node"]["attempts"], 2);
    let audit = app
        .data_as(
            &admin,
            "{ auditLog(first: 1, action: WEBHOOK_REDELIVERED) { edges { node { targetId } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        audit["auditLog"]["edges"][0]["node"]["targetId"],
        id.as_str()
    );
    let unknown = app
        .gql_as(
            &admin,
            "mutation($id: ID!) { redeliver(id: $id) { id } }",
            json!({ "id": gid(Kind::WebhookDelivery, Uuid::now_v7()) }),
        )
        .await;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"), "{unknown}");
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_for_its_grace() {
    let app = TestApp::spawn_with(&FAST).await;
    let (admin, _) = app.user("wh5-admin@example.com", CliRole::Admin).await;
    let (buyer, _) = app.user("wh5-buyer@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 50, false).await;
    let r = Receiver::start().await;
    let e = endpoint(&app, &admin, &r, &["order.paid"]).await;
    const ROTATE: &str =
        "mutation($id: ID!, $g: Int) { rotateWebhookSecret(id: $id, graceHours: $g) {
      secret endpoint { previousSecretValidUntil } } }";
    let rotated = app
        .data_as(&admin, ROTATE, json!({ "id": e, "g": 1 }))
        .await["rotateWebhookSecret"]
        .clone();
    let second = rotated["secret"].as_str().expect("secret").to_owned();
    assert!(!rotated["endpoint"]["previousSecretValidUntil"].is_null());
    r.trust(&second);
    paid_order(&app, &admin, &buyer, sku).await;
    let got = r.wait_for("order.paid", 1).await;
    assert_eq!(got[0].signatures, 2, "new and old");
    assert_eq!(got[0].signed_by, [0, 1], "either secret verifies");

    // Past the grace the old one no longer signs.
    app.clock.advance(Duration::hours(2));
    paid_order(&app, &admin, &buyer, sku).await;
    let got = r.wait_for("order.paid", 2).await;
    assert_eq!(got[1].signatures, 1);
    assert_eq!(got[1].signed_by, [1]);

    // No grace: the new secret alone, at once.
    let third = app
        .data_as(&admin, ROTATE, json!({ "id": e, "g": 0 }))
        .await["rotateWebhookSecret"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    r.trust(&third);
    paid_order(&app, &admin, &buyer, sku).await;
    let got = r.wait_for("order.paid", 3).await;
    assert_eq!(got[2].signed_by, [2]);
    let too_long = app
        .gql_as(&admin, ROTATE, json!({ "id": e, "g": 169 }))
        .await;
    assert_eq!(error_code(&too_long), Some("VALIDATION"), "{too_long}");
}

#[tokio::test]
async fn a_slow_receiver_does_not_slow_the_request_that_caused_the_event() {
    let app = TestApp::spawn_with(&FAST).await;
    let (admin, _) = app.user("wh6-admin@example.com", CliRole::Admin).await;
    let (buyer, _) = app.user("wh6-buyer@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 50, false).await;
    let r = Receiver::start().await;
    r.delay_ms.store(4_000, Ordering::SeqCst);
    endpoint(&app, &admin, &r, &["order.paid"]).await;
    let o = order(&app, &buyer, sku, 1, None).await;
    let id = o["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let started = Instant::now();
    let paid = pay(&app, &admin, &id, "ref-slow", "199.00").await;
    let took = started.elapsed();

    assert!(paid["errors"].is_null(), "{paid}");
    assert!(
        took < StdDuration::from_secs(3),
        "the payment took {took:?}"
    );
    let got = r.wait_for("order.paid", 1).await;
    assert_eq!(got[0].signed_by, [0]);
}

#[tokio::test]
async fn an_event_committed_by_a_stopped_instance_is_delivered_by_the_next() {
    // Instance A commits the payment and its event, and stops before sending it: its worker
    // was never told an endpoint exists (the endpoint is registered straight in the
    // database) and its next look is a minute away.
    let mut a = TestApp::spawn().await;
    let (admin, admin_row) = a.user("wh7-admin@example.com", CliRole::Admin).await;
    let (buyer, _) = a.user("wh7-buyer@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&a, 50, false).await;
    let r = Receiver::start().await;
    let (_, secret) = svc::create_endpoint(
        a.db(),
        &Webhooks::default(),
        &Actor::new(admin_row.id, None),
        NewEndpoint {
            url: r.url.clone(),
            events: vec!["order.paid".into()],
            description: Some("ERP".into()),
        },
        a.clock_now(),
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("endpoint");
    r.trust(&secret);
    let id = paid_order(&a, &admin, &buyer, sku).await;
    a.begin_shutdown();
    a.stopped
        .take()
        .expect("running")
        .await
        .expect("joined")
        .expect("stopped");
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    assert!(r.got().is_empty(), "A sent nothing");

    let b = TestApp::spawn_sharing(&a, &FAST).await;

    let got = r.wait_for("order.paid", 1).await;
    assert_eq!(got[0].body["data"]["order"]["id"], id.as_str());
    assert_eq!(got[0].signed_by, [0]);
    drop(b);
}

#[tokio::test]
async fn two_instances_send_each_event_once() {
    let a = TestApp::spawn_with(&FAST).await;
    let (admin, _) = a.user("wh8-admin@example.com", CliRole::Admin).await;
    let (buyer, _) = a.user("wh8-buyer@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&a, 100, false).await;
    let r = Receiver::start().await;
    // Slow answers widen the window in which the other instance could take the same one.
    r.delay_ms.store(150, Ordering::SeqCst);
    let e = endpoint(&a, &admin, &r, &["order.paid"]).await;
    let b = TestApp::spawn_sharing(&a, &FAST).await;
    let admin_b = b
        .login("wh8-admin@example.com", crate::helpers::PASSWORD)
        .await;
    let buyer_b = b
        .login("wh8-buyer@example.com", crate::helpers::PASSWORD)
        .await;

    const N: usize = 8;
    let mut ids = Vec::new();
    for i in 0..N {
        let (app, admin, buyer) = if i % 2 == 0 {
            (&a, &admin, &buyer)
        } else {
            (&b, &admin_b, &buyer_b)
        };
        ids.push(paid_order(app, admin, buyer, sku).await);
    }

    r.wait_for("order.paid", N).await;
    wait_deliveries(&a, &admin, &e, "DELIVERED", N as u64).await;
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    let got = r.got();
    assert_eq!(got.len(), N, "each event once: {got:?}");
    let mut orders: Vec<String> = got
        .iter()
        .map(|g| {
            g.body["data"]["order"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    orders.sort();
    ids.sort();
    assert_eq!(orders, ids);
    assert_eq!(r.most_at_once.load(Ordering::SeqCst), 1, "never at once");
    let d = deliveries(&a, &admin, &e, Some("DELIVERED")).await;
    assert!(
        d["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .all(|n| n["node"]["attempts"] == 1),
        "{d:#}"
    );
}

#[tokio::test]
async fn refunds_and_settlements_are_events_too() {
    let app = TestApp::spawn_with(&FAST).await;
    let (admin, _) = app.user("wh9-admin@example.com", CliRole::Admin).await;
    let (buyer, _) = app.user("wh9-buyer@example.com", CliRole::PushHand).await;
    let (_, sku) = product(&app, 50, false).await;
    let r = Receiver::start().await;
    endpoint(
        &app,
        &admin,
        &r,
        &["refund.completed", "earning.settled", "after_sale.*"],
    )
    .await;
    // One order refunded at once (paid by hand: no provider to ask).
    let refunded = paid_order(&app, &admin, &buyer, sku).await;
    let o = app
        .data_as(
            &admin,
            "query($id: ID!) { node(id: $id) { ... on Order { lines { id } } } }",
            json!({ "id": refunded }),
        )
        .await;
    let line = o["node"]["lines"][0]["id"]
        .as_str()
        .expect("line")
        .to_owned();
    app.data_as(
        &admin,
        "mutation($l: ID!) { refundOrderLine(orderLineId: $l) { status } }",
        json!({ "l": line }),
    )
    .await;
    let got = r.wait_for("refund.completed", 1).await;
    assert_eq!(got[0].body["data"]["refund"]["orderLineId"], line.as_str());
    assert_eq!(got[0].body["data"]["refund"]["amount"], "199.00");
    assert_eq!(got[0].signed_by, [0]);

    // Another completed and settled: its earning's settlement is an event.
    let kept = paid_order(&app, &admin, &buyer, sku).await;
    app.data_as(
        &admin,
        "mutation($o: ID!) { shipOrder(orderId: $o) { status } }",
        json!({ "o": kept }),
    )
    .await;
    app.data_as(
        &buyer,
        "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
        json!({ "o": kept }),
    )
    .await;
    // An after-sale asked for and refused is two events.
    let line = app
        .data_as(
            &admin,
            "query($id: ID!) { node(id: $id) { ... on Order { lines { id } } } }",
            json!({ "id": kept }),
        )
        .await["node"]["lines"][0]["id"]
        .as_str()
        .expect("line")
        .to_owned();
    let asked = app
        .data_as(
            &buyer,
            "mutation($i: RequestAfterSaleInput!) { requestAfterSale(input: $i) { id } }",
            json!({ "i": { "orderLineId": line, "quantity": 1, "kind": "REFUND_ONLY",
                "reason": "不想要了", "evidenceUrls": ["https://img.example/a.jpg"],
                "idempotencyKey": "wh9" } }),
        )
        .await;
    let after_sale = asked["requestAfterSale"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.data_as(
        &admin,
        "mutation($id: ID!) { reviewAfterSale(id: $id, approve: false, note: \"no\") { status } }",
        json!({ "id": after_sale }),
    )
    .await;
    let requested = r.wait_for("after_sale.requested", 1).await;
    assert_eq!(
        requested[0].body["data"]["afterSale"]["id"],
        after_sale.as_str()
    );
    let rejected = r.wait_for("after_sale.rejected", 1).await;
    assert_eq!(rejected[0].body["data"]["afterSale"]["status"], "REJECTED");

    app.clock.advance(Duration::days(30));
    let settled = app
        .data_as(&admin, "mutation { runSettlement { settled } }", json!({}))
        .await;
    assert!(
        settled["runSettlement"]["settled"].as_i64() >= Some(1),
        "{settled}"
    );
    let got = r.wait_for("earning.settled", 1).await;
    assert_eq!(got[0].body["data"]["earning"]["orderId"], kept.as_str());
    assert_eq!(got[0].signed_by, [0]);
}

/// Issue #31's "done when": a fresh install — no seed, only the staff accounts the command
/// line creates — is set up through the API alone (categories, a merchant, its brand and
/// user, a product with an uploaded image, curation, publication), the listing shows it with
/// its image served, and an integration hears the publication and a paid order over a
/// signed webhook.
#[tokio::test]
async fn a_fresh_install_is_set_up_through_the_api_and_heard_over_a_webhook() {
    use crate::images::{encoded, fetch, gradient, uploaded};
    use image::{DynamicImage, ImageFormat};
    let app = TestApp::spawn_with(&FAST).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let r = Receiver::start().await;
    endpoint(&app, &admin, &r, &["product.published", "order.paid"]).await;
    let empty = app
        .data(
            "{ products(first: 10) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(empty["products"]["edges"], json!([]), "a fresh install");

    // The catalog's tree, a merchant and its brand.
    let category = "mutation($i: CreateCategoryInput!) { createCategory(input: $i) { id } }";
    let top = app
        .data_as(
            &admin,
            category,
            json!({ "i": { "slug": "home", "nameZh": "居家", "nameEn": "Home" } }),
        )
        .await["createCategory"]["id"]
        .clone();
    let leaf = app
        .data_as(
            &admin,
            category,
            json!({ "i": { "slug": "kitchen", "nameZh": "厨房", "nameEn": "Kitchen",
                           "parentId": top } }),
        )
        .await["createCategory"]["id"]
        .clone();
    let merchant = app
        .data_as(
            &admin,
            "mutation { createMerchant(name: \"远方工厂\") { id } }",
            json!({}),
        )
        .await["createMerchant"]["id"]
        .clone();
    let brand = app
        .data_as(
            &admin,
            "mutation($m: ID!) { createBrand(name: \"远方\", merchantId: $m) { id } }",
            json!({ "m": merchant }),
        )
        .await["createBrand"]["id"]
        .clone();
    // The merchant's user registers, is linked, and signs in again as the merchant.
    let registered = app.register("maker@example.com", None, None).await;
    let member = registered["data"]["register"]["member"]["id"].clone();
    assert!(member.is_string(), "{registered:#}");
    app.data_as(
        &admin,
        "mutation($u: ID!, $m: ID!) { linkMerchantUser(memberId: $u, merchantId: $m) { id } }",
        json!({ "u": member, "m": merchant }),
    )
    .await;
    let maker = app
        .login("maker@example.com", crate::helpers::PASSWORD)
        .await;

    // The product, its image, its curation and publication.
    let product = app
        .data_as(
            &maker,
            "mutation($i: SubmitProductInput!) { submitProduct(input: $i) { id status skus { id } } }",
            json!({ "i": { "brandId": brand, "categoryId": leaf, "name": "铸铁锅",
                           "skus": [{ "name": "24cm", "price": "99.00", "stock": 10 }],
                           "rebateRate": "0.10", "teamRebateRate": "0.05" } }),
        )
        .await["submitProduct"]
        .clone();
    assert_eq!(product["status"], json!("IN_CURATION"));
    let pid = product["id"].clone();
    let png = encoded(DynamicImage::ImageRgba8(gradient(32, 24)), ImageFormat::Png);
    let image = uploaded(&app, &maker, "PRODUCT", "pot.png", &png).await;
    app.data_as(
        &maker,
        "mutation($i: UpdateProductDraftInput!) { updateProductDraft(input: $i) { product { id } } }",
        json!({ "i": { "productId": pid, "imageIds": [image["id"]] } }),
    )
    .await;
    for stage in crate::catalog_answers::STAGES {
        app.data_as(
            &curator,
            "mutation($i: CurationStageInput!) { recordCurationStage(input: $i) { passed } }",
            json!({ "i": { "productId": pid, "stage": stage, "result": "PASS" } }),
        )
        .await;
    }
    app.data_as(
        &curator,
        "mutation($i: CurationScoreInput!) { scoreProduct(input: $i) { passed } }",
        json!({ "i": { "productId": pid, "essentialNeed": 5, "newPainPoint": 4, "longevity": 4,
                       "qualityAndSupply": 4, "highQuality": true, "highDesign": true,
                       "highValue": true, "euExportGrade": false } }),
    )
    .await;
    app.data_as(
        &curator,
        "mutation($p: ID!) { publishProduct(productId: $p) { status } }",
        json!({ "p": pid }),
    )
    .await;

    // Anyone sees it listed, in its category, with its image served.
    let listed = app
        .data(
            "{ products(first: 10) { edges { node { id name minPrice
                 category { nameZh parent { nameZh } } brand { name merchant { name } }
                 images { url } } } } }",
            json!({}),
        )
        .await;
    let node = &listed["products"]["edges"][0]["node"];
    assert_eq!(
        (&node["id"], &node["name"], &node["minPrice"]),
        (&pid, &json!("铸铁锅"), &json!("99.00")),
        "{listed:#}"
    );
    assert_eq!(
        node["category"],
        json!({ "nameZh": "厨房", "parent": { "nameZh": "居家" } })
    );
    assert_eq!(
        node["brand"],
        json!({ "name": "远方", "merchant": { "name": "远方工厂" } })
    );
    let url = node["images"][0]["url"].as_str().expect("an image");
    let path = url
        .strip_prefix(app.state.config.public_url.trim_end_matches('/'))
        .expect("under the public URL");
    let (status, content_type, _, _) = fetch(&app, path).await;
    assert_eq!(
        (status, content_type.as_str()),
        (axum::http::StatusCode::OK, "image/png")
    );

    // A buyer's paid order; the integration hears both, signed.
    let (buyer, _) = app.user("buyer@example.com", CliRole::PushHand).await;
    let sku = crate::fixtures::uuid_of(product["skus"][0]["id"].as_str().expect("sku"));
    let placed = order(&app, &buyer, sku, 1, None).await;
    let oid = placed["data"]["placeOrder"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{placed:#}"))
        .to_owned();
    let paid = pay(&app, &admin, &oid, "ref-fresh-1", "99.00").await;
    assert!(paid["errors"].is_null(), "{paid:#}");
    let published = r.wait_for("product.published", 1).await;
    assert_eq!(published[0].signed_by, [0]);
    let heard = r.wait_for("order.paid", 1).await;
    assert_eq!(heard[0].signed_by, [0]);
    assert_eq!(heard[0].body["data"]["order"]["id"], json!(oid));
    assert_eq!(heard[0].body["data"]["order"]["total"], json!("99.00"));
}
