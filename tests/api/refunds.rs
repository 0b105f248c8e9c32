//! Provider refunds against the local fakes of `payments.rs` (WeChat Pay's refund API and
//! notifications, Alipay's `alipay.trade.refund` and refund query) and the sandbox: the real
//! signing, verification and decryption run, and the earnings reversal runs once whatever
//! arrives how many times.

use std::sync::atomic::Ordering;

use axum::http::HeaderMap;
use pushhand::graphql::ids::Kind;
use pushhand::payments::keys::PrivateKey;
use pushhand::payments::{Channel, out_trade_no};
use pushhand::service::members::CliRole;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fixtures::gid;
use crate::helpers::{TestApp, error_code};
use crate::payments::{
    API_V3_KEY, KeyFiles, MCH_ID, PLATFORM_KEY_ID, alipay_fields, alipay_notification, earnings_of,
    fake_alipay_gateway, fake_wechat, keys, order_row, payment_args, provider, signer, spawn_app,
    transaction, unpaid_order, wechat_notification, wechat_signed_headers,
};

const REFUND: &str = "mutation($l: ID!, $q: Int, $k: String) {
  refundOrderLine(orderLineId: $l, quantity: $q, idempotencyKey: $k) {
    status
    lines { id refundState refundedQuantity refundingQuantity
            refunds { id status amount quantity outRefundNo failureReason attempts channel } }
    refunds { id status }
  } }";

const ORDER: &str = "query($id: ID!) { node(id: $id) { ... on Order {
  status
  lines { refundState refundedQuantity refundingQuantity }
  refunds { id status amount quantity outRefundNo failureReason attempts channel }
} } }";

/// An app with both fakes, and the fakes.
async fn app_with_fakes() -> (
    TestApp,
    std::sync::Arc<crate::payments::FakeWechat>,
    std::sync::Arc<crate::payments::FakeAlipay>,
    KeyFiles,
) {
    let k = keys();
    let (wechat, fake_wechat) = fake_wechat(&k.provider).await;
    let (alipay, fake_alipay) = fake_alipay_gateway(&k.merchant).await;
    let files = KeyFiles::new();
    let app = spawn_app(&payment_args(
        &files,
        wechat,
        alipay,
        &k.merchant,
        &k.provider,
    ))
    .await;
    (app, fake_wechat, fake_alipay, files)
}

/// An order (one unit) paid through `channel` by a verified notification.
async fn paid_through(app: &TestApp, channel: Channel) -> entity::order::Model {
    let (buyer, o) = unpaid_order(app).await;
    let p = provider(app, channel);
    let openid = (channel == Channel::WechatJsapi).then_some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    let intent = pushhand::service::payments::create_payment(
        app.db(),
        p.as_ref(),
        &buyer,
        o.id,
        openid,
        app.clock_now(),
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("intent");
    // Every payment has its own provider reference.
    let reference = format!("42000012342026120{}", &out_trade_no(intent.id)[..11]);
    match channel {
        Channel::WechatJsapi => {
            let mut tx = transaction(intent.id, o.total.fen());
            tx["transaction_id"] = json!(reference);
            let (headers, body) = wechat_notification(
                &tx,
                API_V3_KEY,
                &signer(&keys().provider),
                PLATFORM_KEY_ID,
                app.clock_now().timestamp(),
            );
            let resp = app
                .client
                .post(app.url("/payments/wechat/notify"))
                .headers(headers)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 204);
        }
        Channel::Alipay => {
            let no = out_trade_no(intent.id);
            let amount = format!("{:.2}", o.total.to_decimal());
            let mut fields = alipay_fields(&no, &amount);
            fields[7] = ("trade_no", reference.as_str());
            let body = alipay_notification(&signer(&keys().provider), &fields);
            let resp = app
                .client
                .post(app.url("/payments/alipay/notify"))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.text().await.unwrap(), "success");
        }
        Channel::Sandbox => {
            let resp = app
                .client
                .post(app.url(&format!("/payments/sandbox/{}/pay", intent.id)))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 204);
        }
    }
    let paid = order_row(app, o.id).await;
    assert_eq!(paid.status, entity::order::Status::Paid);
    paid
}

async fn line_of(app: &TestApp, order: Uuid) -> entity::order_line::Model {
    entity::order_line::Entity::find()
        .filter(entity::order_line::Column::OrderId.eq(order))
        .one(app.db())
        .await
        .unwrap()
        .unwrap()
}

async fn refund_row(app: &TestApp, order: Uuid) -> entity::refund::Model {
    entity::refund::Entity::find()
        .filter(entity::refund::Column::OrderId.eq(order))
        .one(app.db())
        .await
        .unwrap()
        .expect("a refund")
}

/// Every member's balance and ledger as they stand, for the members who earned on `order`:
/// (member, pending, lifetime, ledger entries, Σ pending deltas, Σ lifetime deltas), fen.
async fn ledger_of(app: &TestApp, order: Uuid) -> Vec<(Uuid, i64, i64, usize, i64, i64)> {
    let earners: std::collections::BTreeSet<Uuid> = entity::earning::Entity::find()
        .filter(entity::earning::Column::OrderId.eq(order))
        .all(app.db())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.member_id)
        .collect();
    let mut out = Vec::new();
    for m in earners {
        let b = entity::balance::Entity::find_by_id(m)
            .one(app.db())
            .await
            .unwrap()
            .expect("a balance");
        let entries = entity::ledger_entry::Entity::find()
            .filter(entity::ledger_entry::Column::MemberId.eq(m))
            .all(app.db())
            .await
            .unwrap();
        out.push((
            m,
            b.pending.fen(),
            b.lifetime.fen(),
            entries.len(),
            entries.iter().map(|e| e.pending_delta.fen()).sum(),
            entries.iter().map(|e| e.lifetime_delta.fen()).sum(),
        ));
    }
    out
}

/// A WeChat Pay refund notification (`event_type`) of `refund` (the refund object as the
/// fake holds it), encrypted with the APIv3 key and signed by `key` at `timestamp`.
fn wechat_refund_notification(
    refund: &Value,
    status: &str,
    event_type: &str,
    key: &PrivateKey,
    timestamp: i64,
) -> (HeaderMap, String) {
    let resource = json!({
        "mchid": MCH_ID,
        "out_trade_no": refund["out_trade_no"],
        "transaction_id": refund["transaction_id"],
        "out_refund_no": refund["out_refund_no"],
        "refund_id": refund["refund_id"],
        "refund_status": status,
        "success_time": "2026-12-02T18:11:00+08:00",
        "user_received_account": "招商银行信用卡0403",
        "amount": {
            "total": refund["amount"]["total"],
            "refund": refund["amount"]["refund"],
            "payer_total": refund["amount"]["payer_total"],
            "payer_refund": refund["amount"]["payer_refund"],
        },
    });
    let nonce = "fdasflkja484";
    let key32: [u8; 32] = API_V3_KEY.as_bytes().try_into().unwrap();
    let ciphertext = pushhand::payments::wechat::encrypt_resource(
        &key32,
        nonce,
        "refund",
        resource.to_string().as_bytes(),
    );
    let body = json!({
        "id": Uuid::now_v7().to_string(),
        "create_time": "2026-12-02T18:11:01+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "退款成功",
        "resource": {
            "original_type": "refund",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": ciphertext,
            "associated_data": "refund",
            "nonce": nonce,
        },
    })
    .to_string();
    (
        wechat_signed_headers(key, PLATFORM_KEY_ID, timestamp, &body),
        body,
    )
}

async fn post_refund_notice(
    app: &TestApp,
    path: &str,
    (headers, body): (HeaderMap, String),
) -> u16 {
    app.client
        .post(app.url(path))
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_wechat_refund_waits_for_the_provider_then_fifty_notifications_reverse_once() {
    let (app, fake, _, _files) = app_with_fakes().await;
    let (admin, _) = app.user("refunds-admin@example.com", CliRole::Admin).await;
    let o = paid_through(&app, Channel::WechatJsapi).await;
    let line = line_of(&app, o.id).await;
    let booked = ledger_of(&app, o.id).await;
    assert!(!booked.is_empty() && booked.iter().any(|b| b.1 > 0));
    let stock_before = entity::sku::Entity::find_by_id(line.sku_id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap()
        .stock;

    let data = app
        .data_as(
            &admin,
            REFUND,
            json!({ "l": gid(Kind::OrderLine, line.id), "k": "refund-1" }),
        )
        .await;
    let r = &data["refundOrderLine"];
    assert_eq!(
        r["status"], "PAID",
        "nothing moves before the provider confirms"
    );
    let l = &r["lines"][0];
    assert_eq!(l["refundState"], "REFUNDING");
    assert_eq!(
        (
            l["refundedQuantity"].as_i64(),
            l["refundingQuantity"].as_i64()
        ),
        (Some(0), Some(1))
    );
    let refund = &l["refunds"][0];
    assert_eq!(refund["status"], "PROCESSING");
    assert_eq!(refund["channel"], "WECHAT_JSAPI");
    assert_eq!(refund["amount"], line.amount.to_decimal().to_string());
    let no = refund["outRefundNo"].as_str().unwrap().to_owned();
    let sent = fake.refund_requests.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "the fake verified our signature");
    assert_eq!(sent[0]["out_refund_no"], no.as_str());
    assert_eq!(sent[0]["amount"]["refund"], line.amount.fen());
    assert_eq!(sent[0]["amount"]["total"], o.total.fen());
    assert_eq!(ledger_of(&app, o.id).await, booked, "no earning moved yet");
    // A retry of the mutation with its key asks for nothing more.
    app.data_as(
        &admin,
        REFUND,
        json!({ "l": gid(Kind::OrderLine, line.id), "k": "refund-1" }),
    )
    .await;
    assert_eq!(fake.refund_requests.lock().unwrap().len(), 1);
    // Another request for the line: its units are in flight.
    let resp = app
        .gql_as(
            &admin,
            REFUND,
            json!({ "l": gid(Kind::OrderLine, line.id) }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("REFUND_IN_PROGRESS"));

    // WeChat Pay confirms, 50 times at once (each delivery signed afresh: new nonces).
    fake.settle_refund(&no, "SUCCESS");
    let held = fake.held.lock().unwrap()[&no].clone();
    let platform = signer(&keys().provider);
    let sends = (0..50).map(|_| {
        let n = wechat_refund_notification(
            &held,
            "SUCCESS",
            "REFUND.SUCCESS",
            &platform,
            app.clock_now().timestamp(),
        );
        let request = app
            .client
            .post(app.url("/payments/wechat/refund-notify"))
            .headers(n.0)
            .body(n.1);
        tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
    });
    let statuses: Vec<u16> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .map(|s| s.unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");

    let row = refund_row(&app, o.id).await;
    assert_eq!(row.status, entity::refund::Status::Succeeded);
    assert!(
        row.provider_reference
            .as_deref()
            .is_some_and(|r| r.starts_with("5030"))
    );
    let line = line_of(&app, o.id).await;
    assert_eq!((line.refunded_quantity, line.refunding_quantity), (1, 0));
    assert_eq!(
        order_row(&app, o.id).await.status,
        entity::order::Status::Refunded
    );
    // The ledger exactly: each earner's booking reversed once — pending and lifetime back
    // to zero, one reversal entry per booking entry, the deltas summing to zero.
    for (before, after) in booked.iter().zip(ledger_of(&app, o.id).await) {
        assert_eq!(after.0, before.0);
        assert_eq!((after.1, after.2), (0, 0), "{before:?} → {after:?}");
        assert_eq!(
            after.3,
            before.3 * 2,
            "one reversal entry per booking: {after:?}"
        );
        assert_eq!((after.4, after.5), (0, 0));
    }
    let reversed = entity::earning::Entity::find()
        .filter(entity::earning::Column::OrderId.eq(o.id))
        .filter(entity::earning::Column::Status.ne(entity::earning::Status::Reversed))
        .count(app.db())
        .await
        .unwrap();
    assert_eq!(reversed, 0);
    let stock_after = entity::sku::Entity::find_by_id(line.sku_id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap()
        .stock;
    assert_eq!(stock_after, stock_before + 1, "the unit came back once");
    let view = app
        .data_as(&admin, ORDER, json!({ "id": gid(Kind::Order, o.id) }))
        .await;
    assert_eq!(view["node"]["lines"][0]["refundState"], "FULL");
    assert_eq!(view["node"]["refunds"][0]["status"], "SUCCEEDED");
    let audited = entity::audit_entry::Entity::find()
        .filter(entity::audit_entry::Column::Action.eq("REFUND_REQUESTED"))
        .count(app.db())
        .await
        .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn wechat_refund_notifications_forged_stale_replayed_or_misdirected_are_refused() {
    let (app, fake, _, _files) = app_with_fakes().await;
    let (admin, _) = app.user("refunds-admin2@example.com", CliRole::Admin).await;
    let o = paid_through(&app, Channel::WechatJsapi).await;
    let line = line_of(&app, o.id).await;
    app.data_as(
        &admin,
        REFUND,
        json!({ "l": gid(Kind::OrderLine, line.id) }),
    )
    .await;
    let no = refund_row(&app, o.id).await.out_refund_no;
    let held = fake.held.lock().unwrap()[&no].clone();
    let booked = earnings_of(&app, o.id).await;
    let platform = signer(&keys().provider);
    let now = app.clock_now().timestamp();
    let url = "/payments/wechat/refund-notify";

    let forged = wechat_refund_notification(
        &held,
        "SUCCESS",
        "REFUND.SUCCESS",
        &signer(&keys().stranger),
        now,
    );
    assert_eq!(post_refund_notice(&app, url, forged).await, 401);
    let stale =
        wechat_refund_notification(&held, "SUCCESS", "REFUND.SUCCESS", &platform, now - 301);
    assert_eq!(post_refund_notice(&app, url, stale).await, 401);
    // A refund's notification at the payment URL, and a payment's at the refund URL.
    let misdirected =
        wechat_refund_notification(&held, "SUCCESS", "REFUND.SUCCESS", &platform, now);
    assert_eq!(
        post_refund_notice(&app, "/payments/wechat/notify", misdirected).await,
        401
    );
    let payment = wechat_notification(
        &transaction(Uuid::now_v7(), 100),
        API_V3_KEY,
        &platform,
        PLATFORM_KEY_ID,
        now,
    );
    assert_eq!(post_refund_notice(&app, url, payment).await, 401);
    // Of another amount: acknowledged, left for review.
    let mut other = held.clone();
    other["amount"]["refund"] = json!(1);
    let tampered = wechat_refund_notification(&other, "SUCCESS", "REFUND.SUCCESS", &platform, now);
    assert_eq!(post_refund_notice(&app, url, tampered).await, 204);
    let row = refund_row(&app, o.id).await;
    assert_eq!(row.status, entity::refund::Status::Processing);
    assert_eq!(earnings_of(&app, o.id).await, booked);
    let reversed_yet = entity::earning::Entity::find()
        .filter(entity::earning::Column::OrderId.eq(o.id))
        .filter(entity::earning::Column::Status.eq(entity::earning::Status::Reversed))
        .count(app.db())
        .await
        .unwrap();
    assert_eq!(reversed_yet, 0, "nothing reversed by what was refused");

    // The genuine one, then the same delivery replayed.
    let genuine = wechat_refund_notification(&held, "SUCCESS", "REFUND.SUCCESS", &platform, now);
    assert_eq!(post_refund_notice(&app, url, genuine.clone()).await, 204);
    assert_eq!(post_refund_notice(&app, url, genuine).await, 401);
    assert_eq!(
        refund_row(&app, o.id).await.status,
        entity::refund::Status::Succeeded
    );
    // A later CLOSED for a refund that succeeded changes nothing.
    let closed = wechat_refund_notification(&held, "CLOSED", "REFUND.CLOSED", &platform, now);
    assert_eq!(post_refund_notice(&app, url, closed).await, 204);
    assert_eq!(
        refund_row(&app, o.id).await.status,
        entity::refund::Status::Succeeded
    );
}

#[tokio::test]
async fn a_failed_wechat_refund_is_visible_and_retried_under_the_same_number() {
    let (app, fake, _, _files) = app_with_fakes().await;
    let (admin, _) = app.user("refunds-admin3@example.com", CliRole::Admin).await;
    let o = paid_through(&app, Channel::WechatJsapi).await;
    let buyer = pushhand::service::members::get(app.db(), o.buyer_id)
        .await
        .map_err(anyhow::Error::from)
        .unwrap();
    let buyer_token = crate::cart::token_of(&app, &buyer);
    let line = line_of(&app, o.id).await;
    fake.refuse_refunds.store(1, Ordering::SeqCst);

    let data = app
        .data_as(
            &admin,
            REFUND,
            json!({ "l": gid(Kind::OrderLine, line.id) }),
        )
        .await;
    let refund = data["refundOrderLine"]["lines"][0]["refunds"][0].clone();
    assert_eq!(refund["status"], "FAILED");
    let reason = refund["failureReason"].as_str().unwrap();
    assert!(reason.contains("NOT_ENOUGH"), "{reason}");
    assert_eq!(
        data["refundOrderLine"]["lines"][0]["refundState"],
        "REFUNDING"
    );
    // The buyer sees the state, not the provider's words.
    let view = app
        .data_as(&buyer_token, ORDER, json!({ "id": gid(Kind::Order, o.id) }))
        .await;
    assert_eq!(view["node"]["refunds"][0]["status"], "FAILED");
    assert_eq!(view["node"]["refunds"][0]["failureReason"], Value::Null);
    // Admins find it among the failed.
    let failed = app
        .data_as(&admin, "{ refunds(status: FAILED) { id } }", json!({}))
        .await;
    assert_eq!(failed["refunds"][0]["id"], refund["id"]);

    // Retried (ten at once): one goes, under the same refund number.
    let retry = "mutation($id: ID!) { retryRefund(id: $id) { id status attempts outRefundNo failureReason } }";
    let answers = futures_util::future::join_all(
        (0..10).map(|_| app.gql_as(&admin, retry, json!({ "id": refund["id"] }))),
    )
    .await;
    let ok: Vec<&Value> = answers.iter().filter(|a| a["errors"].is_null()).collect();
    assert_eq!(ok.len(), 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|a| !a["errors"].is_null())
            .all(|a| error_code(a) == Some("REFUND_NOT_RETRYABLE")),
        "{answers:?}"
    );
    let retried = &ok[0]["data"]["retryRefund"];
    assert_eq!(retried["status"], "PROCESSING");
    assert_eq!(retried["attempts"], 2);
    assert_eq!(retried["outRefundNo"], refund["outRefundNo"]);
    let sent = fake.refund_requests.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["out_refund_no"], sent[1]["out_refund_no"]);

    // Nothing confirmed it yet: a sync asks WeChat Pay (still processing), then again once
    // it is done — and the reversal runs.
    let sync = "mutation($id: ID!) { syncRefund(id: $id) { status completedAt } }";
    let s = app
        .data_as(&admin, sync, json!({ "id": refund["id"] }))
        .await;
    assert_eq!(s["syncRefund"]["status"], "PROCESSING");
    assert!(earnings_of(&app, o.id).await > 0);
    fake.settle_refund(refund["outRefundNo"].as_str().unwrap(), "SUCCESS");
    let s = app
        .data_as(&admin, sync, json!({ "id": refund["id"] }))
        .await;
    assert_eq!(s["syncRefund"]["status"], "SUCCEEDED");
    assert!(s["syncRefund"]["completedAt"].is_string());
    assert_eq!(
        order_row(&app, o.id).await.status,
        entity::order::Status::Refunded
    );
    let resp = app
        .gql_as(&admin, retry, json!({ "id": refund["id"] }))
        .await;
    assert_eq!(error_code(&resp), Some("REFUND_NOT_RETRYABLE"));
    for action in ["REFUND_REQUESTED", "REFUND_RETRIED", "REFUND_SYNCED"] {
        let n = entity::audit_entry::Entity::find()
            .filter(entity::audit_entry::Column::Action.eq(action))
            .count(app.db())
            .await
            .unwrap();
        assert_eq!(n, 1, "{action}");
    }
}

#[tokio::test]
async fn concurrent_sandbox_refund_requests_for_the_same_units_go_through_once() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("refunds-admin4@example.com", CliRole::Admin).await;
    let o = paid_through(&app, Channel::Sandbox).await;
    let line = line_of(&app, o.id).await;
    let answers = futures_util::future::join_all((0..10).map(|i| {
        app.gql_as(
            &admin,
            REFUND,
            json!({ "l": gid(Kind::OrderLine, line.id), "q": 1, "k": format!("race-{i}") }),
        )
    }))
    .await;
    let ok = answers.iter().filter(|a| a["errors"].is_null()).count();
    assert_eq!(ok, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|a| !a["errors"].is_null())
            .all(|a| matches!(
                error_code(a),
                Some("REFUND_IN_PROGRESS" | "REFUND_CONFLICT")
            )),
        "{answers:?}"
    );
    let refunds = entity::refund::Entity::find()
        .filter(entity::refund::Column::OrderId.eq(o.id))
        .count(app.db())
        .await
        .unwrap();
    assert_eq!(refunds, 1);
    let row = refund_row(&app, o.id).await;
    assert_eq!(row.status, entity::refund::Status::Processing);

    // The database holds the invariant itself: no more units in flight than the line has.
    let over = entity::order_line::Entity::update_many()
        .col_expr(
            entity::order_line::Column::RefundingQuantity,
            sea_orm::sea_query::Expr::value(line.quantity + 1),
        )
        .filter(entity::order_line::Column::Id.eq(line.id))
        .exec(app.db())
        .await;
    assert!(over.is_err(), "refunded + refunding <= quantity is checked");

    // The developer closes it (a failure), then it is retried and succeeds.
    let url = |outcome: &str| app.url(&format!("/payments/sandbox/refunds/{}/{outcome}", row.id));
    let resp = app.client.post(url("fail")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        refund_row(&app, o.id).await.status,
        entity::refund::Status::Failed
    );
    let retry = "mutation($id: ID!) { retryRefund(id: $id) { status attempts } }";
    let r = app
        .data_as(&admin, retry, json!({ "id": row.id.to_string() }))
        .await;
    assert_eq!(r["retryRefund"]["status"], "PROCESSING");
    for _ in 0..3 {
        let resp = app.client.post(url("succeed")).send().await.unwrap();
        assert_eq!(resp.status(), 204);
    }
    assert_eq!(
        refund_row(&app, o.id).await.status,
        entity::refund::Status::Succeeded
    );
    assert_eq!(
        order_row(&app, o.id).await.status,
        entity::order::Status::Refunded
    );
    let line = line_of(&app, o.id).await;
    assert_eq!((line.refunded_quantity, line.refunding_quantity), (1, 0));
    // A forged sandbox refund notification is refused.
    let resp = app
        .client
        .post(app.url("/payments/sandbox/refund-notify"))
        .header("pushhand-sandbox-signature", "t=1,n=x,s=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn alipay_refunds_are_signed_their_answers_verified_and_queried() {
    let (app, _, fake, _files) = app_with_fakes().await;
    let (admin, _) = app.user("refunds-admin5@example.com", CliRole::Admin).await;

    // Alipay refunds at once (`fund_change` Y): the reversal runs with the answer.
    let o = paid_through(&app, Channel::Alipay).await;
    let line = line_of(&app, o.id).await;
    let data = app
        .data_as(
            &admin,
            REFUND,
            json!({ "l": gid(Kind::OrderLine, line.id) }),
        )
        .await;
    assert_eq!(data["refundOrderLine"]["status"], "REFUNDED");
    assert_eq!(data["refundOrderLine"]["refunds"][0]["status"], "SUCCEEDED");
    let call = fake.calls.lock().unwrap()[0].clone();
    assert_eq!(call["method"], "alipay.trade.refund");
    assert_eq!(
        call["refund_amount"],
        format!("{:.2}", line.amount.to_decimal())
    );
    assert_eq!(call["out_trade_no"].as_str().unwrap().len(), 32);

    // A forged answer is not believed: FAILED. Alipay did refund, so a query finds it.
    let o = paid_through(&app, Channel::Alipay).await;
    let line = line_of(&app, o.id).await;
    fake.forge.store(true, Ordering::SeqCst);
    let data = app
        .data_as(
            &admin,
            REFUND,
            json!({ "l": gid(Kind::OrderLine, line.id) }),
        )
        .await;
    fake.forge.store(false, Ordering::SeqCst);
    let refund = data["refundOrderLine"]["lines"][0]["refunds"][0].clone();
    assert_eq!(refund["status"], "FAILED");
    assert!(
        refund["failureReason"]
            .as_str()
            .unwrap()
            .contains("Signature"),
        "{refund}"
    );
    assert_eq!(data["refundOrderLine"]["status"], "PAID");
    let sync = "mutation($id: ID!) { syncRefund(id: $id) { status } }";
    let s = app
        .data_as(&admin, sync, json!({ "id": refund["id"] }))
        .await;
    assert_eq!(s["syncRefund"]["status"], "SUCCEEDED");
    assert_eq!(
        order_row(&app, o.id).await.status,
        entity::order::Status::Refunded
    );

    // Taken but not done (`fund_change` N): PROCESSING until its notification, which is
    // verified (a forged one refused) and reverses once.
    let o = paid_through(&app, Channel::Alipay).await;
    let line = line_of(&app, o.id).await;
    fake.pending.store(true, Ordering::SeqCst);
    let data = app
        .data_as(
            &admin,
            REFUND,
            json!({ "l": gid(Kind::OrderLine, line.id) }),
        )
        .await;
    assert_eq!(
        data["refundOrderLine"]["lines"][0]["refunds"][0]["status"],
        "PROCESSING"
    );
    let row = refund_row(&app, o.id).await;
    let intent = out_trade_no(row.intent_id);
    let fields = |amount: &'static str| {
        vec![
            ("notify_time", "2026-12-02 18:12:00".to_owned()),
            ("notify_type", "trade_status_sync".to_owned()),
            ("notify_id", "2026120200222181200012345".to_owned()),
            ("app_id", crate::payments::ALIPAY_APP_ID.to_owned()),
            ("seller_id", crate::payments::ALIPAY_SELLER.to_owned()),
            ("trade_no", "2026120222001404011000000009".to_owned()),
            ("out_trade_no", intent.clone()),
            ("out_biz_no", row.out_refund_no.clone()),
            ("trade_status", "TRADE_CLOSED".to_owned()),
            ("total_amount", format!("{:.2}", o.total.to_decimal())),
            ("refund_fee", amount.to_owned()),
            ("gmt_refund", "2026-12-02 18:11:59.000".to_owned()),
        ]
    };
    let body = |key: &PrivateKey| {
        let f = fields("0.01");
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        alipay_notification(key, &f)
    };
    let send = |b: String| {
        let request = app
            .client
            .post(app.url("/payments/alipay/refund-notify"))
            .body(b);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(send(body(&signer(&keys().stranger))).await, "failure");
    assert_eq!(
        refund_row(&app, o.id).await.status,
        entity::refund::Status::Processing
    );
    let genuine = body(&signer(&keys().provider));
    let answers = futures_util::future::join_all((0..10).map(|_| send(genuine.clone()))).await;
    assert!(answers.iter().all(|a| a == "success"), "{answers:?}");
    assert_eq!(
        refund_row(&app, o.id).await.status,
        entity::refund::Status::Succeeded
    );
    let line = line_of(&app, o.id).await;
    assert_eq!((line.refunded_quantity, line.refunding_quantity), (1, 0));
}
