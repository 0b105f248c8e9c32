//! Payouts of withdrawals against local fakes: a WeChat Pay 商家转账 server and an Alipay
//! gateway on 127.0.0.1 implementing the providers' documented contracts with keys this test
//! makes (the real signing, verification and decryption code runs; nothing leaves the
//! machine), and MANUAL payouts recorded by an admin. Then reconciliation of trade bills the
//! test writes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine as _;
use pushhand::payments::keys::{PrivateKey, PublicKey};
use pushhand::service::ledger::{self, Deltas, Event as Entry, Refs};
use pushhand::service::members::CliRole;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fixtures::uuid_of;
use crate::helpers::{TestApp, error_code};
use crate::payments::{
    API_V3_KEY, APP_ID, KeyFiles, MCH_ID, MERCHANT_SERIAL, PLATFORM_KEY_ID, authorization_fields,
    keys, payment_args, serve, signer, spawn_app, verifier, wechat_signed_headers,
};

const TRANSFER_PATH: &str = "/v3/fund-app/mch-transfer/transfer-bills";

// ---------------------------------------------------------------------------------------
// The fake WeChat Pay transfer server.

/// WeChat Pay's transfer bills as the fake keeps them, by `out_bill_no`.
struct FakeTransfers {
    merchant: PublicKey,
    signer: PrivateKey,
    /// The WeChat Pay key pair's private half: reads `user_name` (RSA-OAEP, SHA-1).
    platform: rsa::RsaPrivateKey,
    bills: Mutex<HashMap<String, Value>>,
    /// How many transfer requests arrived (re-sends included).
    requests: Mutex<usize>,
}

impl FakeTransfers {
    fn authorized(&self, method: &str, path: &str, headers: &HeaderMap, body: &str) -> bool {
        let Some(fields) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(authorization_fields)
        else {
            return false;
        };
        let message = format!(
            "{method}\n{path}\n{}\n{}\n{body}\n",
            fields["timestamp"], fields["nonce_str"]
        );
        fields["mchid"] == MCH_ID
            && fields["serial_no"] == MERCHANT_SERIAL
            && self
                .merchant
                .verify(message.as_bytes(), &fields["signature"])
    }

    fn signed(&self, body: Value) -> axum::response::Response {
        let body = body.to_string();
        let headers = wechat_signed_headers(
            &self.signer,
            PLATFORM_KEY_ID,
            chrono::Utc::now().timestamp(),
            &body,
        );
        (StatusCode::OK, headers, body).into_response()
    }

    fn error(status: StatusCode, code: &str) -> axum::response::Response {
        (status, axum::Json(json!({ "code": code, "message": code }))).into_response()
    }

    /// `POST /v3/fund-app/mch-transfer/transfer-bills`: one bill per `out_bill_no` (a
    /// re-send answers the bill there is), waiting for the user's confirmation.
    fn transfer(&self, headers: &HeaderMap, body: &[u8]) -> axum::response::Response {
        let body = String::from_utf8_lossy(body);
        if !self.authorized("POST", TRANSFER_PATH, headers, &body) {
            return Self::error(StatusCode::UNAUTHORIZED, "SIGN_ERROR");
        }
        *self.requests.lock().unwrap() += 1;
        let Ok(r) = serde_json::from_str::<Value>(&body) else {
            return Self::error(StatusCode::BAD_REQUEST, "PARAM_ERROR");
        };
        let no = r["out_bill_no"].as_str().unwrap_or("").to_owned();
        // From 2000.00 the payee's real name, encrypted with the WeChat Pay public key.
        let user_name = r["user_name"].as_str().and_then(|sealed| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(sealed)
                .ok()?;
            let plain = self
                .platform
                .decrypt(rsa::Oaep::new::<sha1::Sha1>(), &bytes)
                .ok()?;
            String::from_utf8(plain).ok()
        });
        let named = r["transfer_amount"].as_i64().is_some_and(|a| a < 200_000)
            || (user_name.is_some()
                && headers
                    .get("wechatpay-serial")
                    .is_some_and(|v| v == PLATFORM_KEY_ID));
        let well_formed = named
            && r["appid"] == APP_ID
            && r["transfer_scene_id"] == "1005"
            && r["openid"].is_string()
            && r["transfer_amount"].as_i64().is_some_and(|a| a > 0)
            && r["transfer_remark"]
                .as_str()
                .is_some_and(|t| t.chars().count() <= 32)
            && r["notify_url"] == "https://shop.example.com/payouts/wechat/notify"
            && r["transfer_scene_report_infos"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
            && no.len() == 32
            && no.bytes().all(|b| b.is_ascii_alphanumeric());
        if !well_formed {
            return Self::error(StatusCode::BAD_REQUEST, "PARAM_ERROR");
        }
        let bill = self
            .bills
            .lock()
            .unwrap()
            .entry(no.clone())
            .or_insert_with(|| {
                json!({
                    "mchid": MCH_ID,
                    "out_bill_no": no,
                    "transfer_bill_no": format!("1330000{}", &no[..20]),
                    "appid": APP_ID,
                    "state": "WAIT_USER_CONFIRM",
                    "transfer_amount": r["transfer_amount"],
                    "transfer_remark": r["transfer_remark"],
                    "openid": r["openid"],
                    "user_name": user_name,
                    "create_time": "2026-12-02T18:00:00+08:00",
                    "update_time": "2026-12-02T18:00:00+08:00",
                    "package_info": format!("PKG{no}"),
                })
            })
            .clone();
        let mut answer = json!({
            "out_bill_no": bill["out_bill_no"],
            "transfer_bill_no": bill["transfer_bill_no"],
            "create_time": bill["create_time"],
            "state": bill["state"],
        });
        if bill["state"] == "WAIT_USER_CONFIRM" {
            answer["package_info"] = bill["package_info"].clone();
        }
        self.signed(answer)
    }

    /// `GET …/transfer-bills/out-bill-no/{out_bill_no}`.
    fn query(&self, no: &str, headers: &HeaderMap) -> axum::response::Response {
        let path = format!("{TRANSFER_PATH}/out-bill-no/{no}");
        if !self.authorized("GET", &path, headers, "") {
            return Self::error(StatusCode::UNAUTHORIZED, "SIGN_ERROR");
        }
        match self.bills.lock().unwrap().get(no).cloned() {
            Some(mut bill) => {
                bill.as_object_mut().unwrap().remove("package_info");
                self.signed(bill)
            }
            None => Self::error(StatusCode::NOT_FOUND, "NOT_FOUND"),
        }
    }

    fn set_state(&self, no: &str, state: &str, reason: Option<&str>) -> Value {
        let mut bills = self.bills.lock().unwrap();
        let bill = bills.get_mut(no).expect("a bill");
        bill["state"] = json!(state);
        if let Some(r) = reason {
            bill["fail_reason"] = json!(r);
        }
        bill.clone()
    }
}

async fn fake_transfers(signer: &rsa::RsaPrivateKey) -> (SocketAddr, Arc<FakeTransfers>) {
    let fake = Arc::new(FakeTransfers {
        merchant: verifier(&keys().merchant),
        signer: self::signer(signer),
        platform: signer.clone(),
        bills: Mutex::default(),
        requests: Mutex::default(),
    });
    let (a, b) = (fake.clone(), fake.clone());
    let router = axum::Router::new()
        .route(
            TRANSFER_PATH,
            post(move |headers: HeaderMap, body: Bytes| {
                let fake = a.clone();
                async move { fake.transfer(&headers, &body) }
            }),
        )
        .route(
            "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{no}",
            get(move |Path(no): Path<String>, headers: HeaderMap| {
                let fake = b.clone();
                async move { fake.query(&no, &headers) }
            }),
        );
    (serve(router).await, fake)
}

/// A `MCHTRANSFER.BILL.FINISHED` notification of `bill`, encrypted with the APIv3 key and
/// signed by `key` at `timestamp` (each with a fresh nonce, as WeChat re-signs deliveries).
fn transfer_notification(bill: &Value, key: &PrivateKey, timestamp: i64) -> (HeaderMap, String) {
    let nonce = "fPqxLQRZmjVn";
    let key32: [u8; 32] = API_V3_KEY.as_bytes().try_into().unwrap();
    let plain = json!({
        "out_bill_no": bill["out_bill_no"],
        "transfer_bill_no": bill["transfer_bill_no"],
        "state": bill["state"],
        "mch_id": MCH_ID,
        "transfer_amount": bill["transfer_amount"],
        "openid": bill["openid"],
        "fail_reason": bill.get("fail_reason").cloned().unwrap_or(json!(null)),
        "create_time": bill["create_time"],
        "update_time": "2026-12-02T18:05:00+08:00",
    });
    let ciphertext = pushhand::payments::wechat::encrypt_resource(
        &key32,
        nonce,
        "mch_payment",
        plain.to_string().as_bytes(),
    );
    let body = json!({
        "id": Uuid::now_v7().to_string(),
        "create_time": "2026-12-02T18:05:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "MCHTRANSFER.BILL.FINISHED",
        "summary": "商家转账单据终态通知",
        "resource": {
            "original_type": "mch_payment",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": ciphertext,
            "associated_data": "mch_payment",
            "nonce": nonce,
        },
    })
    .to_string();
    (
        wechat_signed_headers(key, PLATFORM_KEY_ID, timestamp, &body),
        body,
    )
}

// ---------------------------------------------------------------------------------------
// The fake Alipay gateway (server calls).

struct FakeAlipay {
    app: PublicKey,
    /// Signs answers; a stranger's key while `forge` is set.
    signer: PrivateKey,
    stranger: PrivateKey,
    forge: Mutex<bool>,
    /// out_biz_no → (status, order id, amount).
    transfers: Mutex<HashMap<String, (String, String, String)>>,
}

impl FakeAlipay {
    fn answer(&self, method: &str, inner: Value) -> axum::response::Response {
        let key = format!("{}_response", method.replace('.', "_"));
        let inner = inner.to_string();
        let signer = if *self.forge.lock().unwrap() {
            &self.stranger
        } else {
            &self.signer
        };
        let sign = signer.sign(inner.as_bytes());
        let body = format!(r#"{{"{key}":{inner},"sign":"{sign}"}}"#);
        (
            StatusCode::OK,
            [("content-type", "application/json;charset=utf-8")],
            body,
        )
            .into_response()
    }

    fn call(&self, body: &[u8]) -> axum::response::Response {
        let Ok(params) = pushhand::payments::alipay::form(body) else {
            return (StatusCode::BAD_REQUEST, "duplicate parameter").into_response();
        };
        let signed = pushhand::payments::alipay::request_text(&params);
        let genuine = params.get("sign_type").map(String::as_str) == Some("RSA2")
            && params.get("app_id").map(String::as_str) == Some(crate::payments::ALIPAY_APP_ID)
            && params
                .get("sign")
                .is_some_and(|s| self.app.verify(signed.as_bytes(), s));
        let method = params.get("method").cloned().unwrap_or_default();
        if !genuine {
            // As Alipay: an unsigned error answer.
            let body = json!({ "error_response": { "code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature" } });
            return (StatusCode::OK, body.to_string()).into_response();
        }
        let biz: Value = serde_json::from_str(&params["biz_content"]).unwrap_or_default();
        let no = biz["out_biz_no"].as_str().unwrap_or("").to_owned();
        match method.as_str() {
            "alipay.fund.trans.uni.transfer" => {
                assert_eq!(biz["product_code"], "TRANS_ACCOUNT_NO_PWD");
                assert_eq!(biz["biz_scene"], "DIRECT_TRANSFER");
                if biz["payee_info"]["identity"] == "nobody@example.com" {
                    return self.answer(
                        &method,
                        json!({ "code": "40004", "msg": "Business Failed", "sub_code": "PAYEE_NOT_EXIST", "sub_msg": "收款账号不存在" }),
                    );
                }
                let order = format!("20261202110070000006{}", &no[..12]);
                let amount = biz["trans_amount"].as_str().unwrap_or("").to_owned();
                self.transfers
                    .lock()
                    .unwrap()
                    .entry(no.clone())
                    .or_insert(("SUCCESS".into(), order.clone(), amount));
                self.answer(
                    &method,
                    json!({ "code": "10000", "msg": "Success", "out_biz_no": no, "order_id": order, "pay_fund_order_id": order, "status": "SUCCESS", "trans_date": "2026-12-02 18:00:00" }),
                )
            }
            "alipay.fund.trans.common.query" => match self.transfers.lock().unwrap().get(&no).cloned() {
                Some((status, order, amount)) => self.answer(
                    &method,
                    json!({ "code": "10000", "msg": "Success", "out_biz_no": no, "order_id": order, "status": status, "trans_amount": amount }),
                ),
                None => self.answer(
                    &method,
                    json!({ "code": "40004", "msg": "Business Failed", "sub_code": "ORDER_NOT_EXIST", "sub_msg": "转账订单不存在" }),
                ),
            },
            _ => (StatusCode::BAD_REQUEST, "unknown method").into_response(),
        }
    }
}

async fn fake_alipay_api() -> (SocketAddr, Arc<FakeAlipay>) {
    let k = keys();
    let fake = Arc::new(FakeAlipay {
        app: verifier(&k.merchant),
        signer: signer(&k.provider),
        stranger: signer(&k.stranger),
        forge: Mutex::new(false),
        transfers: Mutex::default(),
    });
    let handler = fake.clone();
    let router = axum::Router::new().route(
        "/gateway.do",
        post(move |body: Bytes| {
            let fake = handler.clone();
            async move { fake.call(&body) }
        }),
    );
    (serve(router).await, fake)
}

// ---------------------------------------------------------------------------------------
// The app and its people.

struct Scene {
    app: TestApp,
    wechat: Arc<FakeTransfers>,
    alipay: Arc<FakeAlipay>,
    admin: String,
    _files: KeyFiles,
}

async fn scene() -> Scene {
    let k = keys();
    let (wechat_addr, wechat) = fake_transfers(&k.provider).await;
    let (alipay_addr, alipay) = fake_alipay_api().await;
    let files = KeyFiles::new();
    let mut args = payment_args(&files, wechat_addr, alipay_addr, &k.merchant, &k.provider);
    args.extend(
        [
            "--wechat-payouts-enabled",
            "true",
            "--alipay-payouts-enabled",
            "true",
            // (`--alipay-api-url` is the fake's, from `payment_args`.)
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let app = spawn_app(&args).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    Scene {
        app,
        wechat,
        alipay,
        admin,
        _files: files,
    }
}

/// A push-hand with `fen` available to withdraw.
async fn earner(app: &TestApp, email: &str, fen: i64) -> (String, entity::member::Model) {
    let (token, m) = app.user(email, CliRole::PushHand).await;
    let d = Deltas {
        available: fen,
        lifetime: fen,
        ..Deltas::default()
    };
    ledger::book(
        app.db(),
        m.id,
        Entry::Adjusted,
        Refs::default(),
        d,
        app.clock_now(),
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("balance");
    (token, m)
}

const SET: &str = "mutation($i: PayoutAccountInput!) { setPayoutAccount(input: $i) { channel account holderName bankName } }";
const REQUEST: &str = "mutation($a: Decimal!, $k: String!, $c: PayoutChannel) { requestWithdrawal(amount: $a, idempotencyKey: $k, payoutChannel: $c) { id amount fee status payoutChannel payoutAccount } }";
const APPROVE: &str = "mutation($id: ID!) { reviewWithdrawal(id: $id, approve: true) { status payoutReference payoutError } }";
const SYNC: &str = "mutation($id: ID!) { syncPayout(withdrawalId: $id) { status payoutReference failureReason payoutError } }";
const SHOW: &str = "query($id: ID!) { node(id: $id) { ... on Withdrawal { status payoutReference failureReason payoutConfirmation payoutAccount finishedAt } } }";
const MINE: &str = "{ me { earningsSummary { available reserved withdrawn } withdrawals(first: 10) { nodes { status } } } }";

async fn withdraw(
    app: &TestApp,
    token: &str,
    amount: &str,
    channel: Option<&str>,
) -> (String, Value) {
    let w = app
        .data_as(
            token,
            REQUEST,
            json!({ "a": amount, "k": Uuid::now_v7().to_string(), "c": channel }),
        )
        .await;
    let w = w["requestWithdrawal"].clone();
    (w["id"].as_str().unwrap().to_owned(), w)
}

/// The member's ledger entries of `event` for `withdrawal`.
async fn entries(app: &TestApp, member: Uuid, withdrawal: &str, event: &str) -> usize {
    let id = uuid_of(withdrawal);
    ledger::entries(app.db(), member)
        .await
        .map_err(anyhow::Error::from)
        .unwrap()
        .iter()
        .filter(|e| e.withdrawal_id == Some(id) && e.event == event)
        .count()
}

async fn books_balance(app: &TestApp) {
    let (_, mismatches) = ledger::check(app.db())
        .await
        .map_err(anyhow::Error::from)
        .unwrap();
    assert!(mismatches.is_empty(), "{mismatches:?}");
    let statuses = ledger::check_statuses(app.db())
        .await
        .map_err(anyhow::Error::from)
        .unwrap();
    assert!(statuses.is_empty(), "{statuses:?}");
}

fn summary(v: &Value) -> (String, String, String) {
    let s = &v["me"]["earningsSummary"];
    let f = |k: &str| s[k].as_str().unwrap().to_owned();
    (f("available"), f("reserved"), f("withdrawn"))
}

async fn notify(app: &TestApp, (headers, body): (HeaderMap, String)) -> u16 {
    app.client
        .post(app.url("/payouts/wechat/notify"))
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

// ---------------------------------------------------------------------------------------
// WeChat Pay.

#[tokio::test]
async fn a_wechat_payout_is_paid_by_its_notification_and_fifty_duplicates_book_once() {
    let s = scene().await;
    let app = &s.app;
    let (token, m) = earner(app, "wx@example.com", 10_000).await;
    let openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
    let set = app
        .data_as(
            &token,
            SET,
            json!({ "i": { "channel": "WECHAT", "account": openid } }),
        )
        .await;
    assert_eq!(set["setPayoutAccount"]["account"], "oUp****eS6o");
    let (wid, w) = withdraw(app, &token, "50.00", Some("WECHAT")).await;
    assert_eq!(w["payoutChannel"], "WECHAT");
    assert_eq!(w["payoutAccount"], "oUp****eS6o");
    let fee = w["fee"]
        .as_str()
        .unwrap()
        .parse::<rust_decimal::Decimal>()
        .unwrap();
    // The member's cached view before the payout (it must go when the payout lands).
    let before = app.data_as(&token, MINE, json!({})).await;
    assert_eq!(summary(&before).1, "50.00");

    let approved = app.data_as(&s.admin, APPROVE, json!({ "id": wid })).await;
    assert_eq!(approved["reviewWithdrawal"]["status"], "PROCESSING");
    let no = uuid_of(&wid).simple().to_string();
    let bill = s
        .wechat
        .bills
        .lock()
        .unwrap()
        .get(&no)
        .cloned()
        .expect("sent");
    let payout_fen = 50_00 - entity::Money::from_decimal(fee).unwrap().fen();
    assert_eq!(
        bill["transfer_amount"],
        json!(payout_fen),
        "the amount less the fee"
    );
    assert_eq!(bill["openid"], openid);
    // WeChat waits for the member to confirm in the mini-program: the owner gets the package.
    let shown = app.data_as(&token, SHOW, json!({ "id": wid })).await;
    let confirmation = &shown["node"]["payoutConfirmation"];
    assert_eq!(confirmation["mchId"], MCH_ID);
    assert_eq!(confirmation["appId"], APP_ID);
    assert_eq!(confirmation["package"], format!("PKG{no}"));
    let admin_view = app.data_as(&s.admin, SHOW, json!({ "id": wid })).await;
    assert_eq!(admin_view["node"]["payoutConfirmation"], Value::Null);
    assert_eq!(entries(app, m.id, &wid, "WITHDRAWAL_PAID").await, 0);

    // The member confirms; WeChat notifies 50 times at once (each delivery re-signed).
    let done = s.wechat.set_state(&no, "SUCCESS", None);
    let platform = signer(&keys().provider);
    let sends = (0..50).map(|_| {
        let n = transfer_notification(&done, &platform, app.clock_now().timestamp());
        notify(app, n)
    });
    let statuses = futures_util::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    let shown = app.data_as(&token, SHOW, json!({ "id": wid })).await;
    assert_eq!(shown["node"]["status"], "PAID");
    assert_eq!(shown["node"]["payoutReference"], done["transfer_bill_no"]);
    assert_eq!(shown["node"]["payoutConfirmation"], Value::Null);
    assert_eq!(
        entries(app, m.id, &wid, "WITHDRAWAL_PAID").await,
        1,
        "booked once"
    );
    let after = app.data_as(&token, MINE, json!({})).await;
    assert_eq!(
        summary(&after),
        ("50.00".into(), "0.00".into(), "50.00".into()),
        "the member's answers were dropped by the event"
    );
    assert_eq!(after["me"]["withdrawals"]["nodes"][0]["status"], "PAID");
    books_balance(app).await;

    // Forged, stale and replayed notifications are refused (401) and change nothing.
    let forged = transfer_notification(
        &done,
        &signer(&keys().stranger),
        app.clock_now().timestamp(),
    );
    assert_eq!(notify(app, forged).await, 401);
    let stale = transfer_notification(&done, &platform, app.clock_now().timestamp() - 301);
    assert_eq!(notify(app, stale).await, 401);
    let once = transfer_notification(&done, &platform, app.clock_now().timestamp());
    assert_eq!(notify(app, once.clone()).await, 204);
    assert_eq!(notify(app, once).await, 401, "a replayed nonce");
    // A tampered resource (another withdrawal's number, re-encrypted without our key) does not
    // decrypt.
    let (_, body) = transfer_notification(&done, &platform, app.clock_now().timestamp());
    let mut v: Value = serde_json::from_str(&body).unwrap();
    v["resource"]["ciphertext"] = json!("AAAA");
    let tampered = v.to_string();
    let headers = wechat_signed_headers(
        &platform,
        PLATFORM_KEY_ID,
        app.clock_now().timestamp(),
        &tampered,
    );
    assert_eq!(notify(app, (headers, tampered)).await, 401);
    assert_eq!(entries(app, m.id, &wid, "WITHDRAWAL_PAID").await, 1);
}

#[tokio::test]
async fn a_failed_wechat_payout_returns_the_funds_once_under_racing_confirmations() {
    let s = scene().await;
    let app = &s.app;
    let (token, m) = earner(app, "wxfail@example.com", 80_00).await;
    app.data_as(
        &token,
        SET,
        json!({ "i": { "channel": "WECHAT", "account": "oFail0000000000000000000001" } }),
    )
    .await;
    let (wid, _) = withdraw(app, &token, "30.00", Some("WECHAT")).await;
    app.data_as(&s.admin, APPROVE, json!({ "id": wid })).await;
    let no = uuid_of(&wid).simple().to_string();
    let failed = s
        .wechat
        .set_state(&no, "FAIL", Some("PAYEE_ACCOUNT_ABNORMAL"));

    // 25 notifications and 5 admins' syncs of the failure, all at once.
    let platform = signer(&keys().provider);
    let notes = (0..25).map(|_| {
        let n = transfer_notification(&failed, &platform, app.clock_now().timestamp());
        async move { notify(app, n).await == 204 }
    });
    let (admin, id) = (&s.admin, &wid);
    let syncs = (0..5).map(|_| async move {
        let r = app.gql_as(admin, SYNC, json!({ "id": id })).await;
        // A sync that comes after the outcome is refused as no longer processing.
        r.get("errors").is_none() || error_code(&r) == Some("PAYOUT_NOT_PROCESSING")
    });
    let (a, b) = futures_util::future::join(
        futures_util::future::join_all(notes),
        futures_util::future::join_all(syncs),
    )
    .await;
    assert!(a.iter().chain(b.iter()).all(|ok| *ok), "{a:?} {b:?}");

    let shown = app.data_as(&token, SHOW, json!({ "id": wid })).await;
    assert_eq!(shown["node"]["status"], "FAILED");
    assert_eq!(shown["node"]["failureReason"], "PAYEE_ACCOUNT_ABNORMAL");
    assert_eq!(
        entries(app, m.id, &wid, "WITHDRAWAL_FAILED").await,
        1,
        "returned once"
    );
    assert_eq!(entries(app, m.id, &wid, "WITHDRAWAL_PAID").await, 0);
    let mine = app.data_as(&token, MINE, json!({})).await;
    assert_eq!(
        summary(&mine),
        ("80.00".into(), "0.00".into(), "0.00".into()),
        "every fen back, exactly"
    );
    books_balance(app).await;

    // A contradicting late notification (SUCCESS) changes nothing (logged for review).
    let late = s.wechat.set_state(&no, "SUCCESS", None);
    let n = transfer_notification(&late, &platform, app.clock_now().timestamp());
    assert_eq!(notify(app, n).await, 204);
    assert_eq!(entries(app, m.id, &wid, "WITHDRAWAL_PAID").await, 0);
    assert_eq!(
        app.data_as(&token, SHOW, json!({ "id": wid })).await["node"]["status"],
        "FAILED"
    );
    // The sync audited what it did, in its transaction.
    let audit = app
        .data_as(
            &s.admin,
            "{ auditLog(action: PAYOUT_SYNCED, first: 10) { nodes { targetId arguments } } }",
            json!({}),
        )
        .await;
    let synced = audit["auditLog"]["nodes"].as_array().unwrap();
    // Each sync that found the payout PROCESSING wrote one entry (those that came after
    // the outcome were refused, writing nothing).
    assert!(synced.len() <= 5, "{audit}");
    assert!(synced.iter().all(|e| e["targetId"] == json!(wid)));
}

#[tokio::test]
async fn a_lost_wechat_transfer_is_resent_under_its_number_by_sync() {
    let s = scene().await;
    let app = &s.app;
    let (token, m) = earner(app, "wxlost@example.com", 20_00).await;
    app.data_as(
        &token,
        SET,
        json!({ "i": { "channel": "WECHAT", "account": "oLost0000000000000000000001" } }),
    )
    .await;
    let (wid, _) = withdraw(app, &token, "20.00", Some("WECHAT")).await;
    app.data_as(&s.admin, APPROVE, json!({ "id": wid })).await;
    let no = uuid_of(&wid).simple().to_string();
    // WeChat lost it (or the first call never arrived).
    s.wechat.bills.lock().unwrap().remove(&no);
    let synced = app.data_as(&s.admin, SYNC, json!({ "id": wid })).await;
    assert_eq!(synced["syncPayout"]["status"], "PROCESSING");
    assert!(
        s.wechat.bills.lock().unwrap().contains_key(&no),
        "re-sent, same out_bill_no"
    );
    assert_eq!(*s.wechat.requests.lock().unwrap(), 2);
    // Now paid: a sync (a query) settles it, once.
    s.wechat.set_state(&no, "SUCCESS", None);
    let synced = app.data_as(&s.admin, SYNC, json!({ "id": wid })).await;
    assert_eq!(synced["syncPayout"]["status"], "PAID");
    let again = app.gql_as(&s.admin, SYNC, json!({ "id": wid })).await;
    assert_eq!(error_code(&again), Some("PAYOUT_NOT_PROCESSING"));
    assert_eq!(entries(app, m.id, &wid, "WITHDRAWAL_PAID").await, 1);
    books_balance(app).await;
}

// ---------------------------------------------------------------------------------------
// Alipay.

#[tokio::test]
async fn alipay_payouts_are_signed_their_answers_verified_and_failures_returned() {
    let s = scene().await;
    let app = &s.app;
    let (token, m) = earner(app, "ali@example.com", 10_000).await;
    let set = app
        .data_as(
            &token,
            SET,
            json!({ "i": { "channel": "ALIPAY", "account": "zhang.san@example.com", "holderName": "张三" } }),
        )
        .await;
    assert_eq!(set["setPayoutAccount"]["account"], "z***@example.com");
    assert_eq!(set["setPayoutAccount"]["holderName"], "*三");

    // Paid at once: the fake verified our signature and answered SUCCESS, signed.
    let (paid, _) = withdraw(app, &token, "30.00", Some("ALIPAY")).await;
    let r = app.data_as(&s.admin, APPROVE, json!({ "id": paid })).await;
    assert_eq!(r["reviewWithdrawal"]["status"], "PAID", "{r}");
    assert!(
        r["reviewWithdrawal"]["payoutReference"]
            .as_str()
            .unwrap()
            .starts_with("2026120211007")
    );
    assert_eq!(entries(app, m.id, &paid, "WITHDRAWAL_PAID").await, 1);

    // An answer signed by someone else is not believed: it stays PROCESSING.
    *s.alipay.forge.lock().unwrap() = true;
    let (forged, _) = withdraw(app, &token, "20.00", Some("ALIPAY")).await;
    let r = app
        .data_as(&s.admin, APPROVE, json!({ "id": forged }))
        .await;
    assert_eq!(r["reviewWithdrawal"]["status"], "PROCESSING");
    assert!(
        r["reviewWithdrawal"]["payoutError"]
            .as_str()
            .unwrap()
            .contains("Signature"),
        "{r}"
    );
    assert_eq!(entries(app, m.id, &forged, "WITHDRAWAL_PAID").await, 0);
    // Genuine again: the query says SUCCESS, booked once.
    *s.alipay.forge.lock().unwrap() = false;
    let r = app.data_as(&s.admin, SYNC, json!({ "id": forged })).await;
    assert_eq!(r["syncPayout"]["status"], "PAID");
    assert_eq!(entries(app, m.id, &forged, "WITHDRAWAL_PAID").await, 1);

    // A payee Alipay does not know: FAILED, the funds back in one entry.
    app.data_as(
        &token,
        SET,
        json!({ "i": { "channel": "ALIPAY", "account": "nobody@example.com", "holderName": "张三" } }),
    )
    .await;
    let (lost, _) = withdraw(app, &token, "10.00", Some("ALIPAY")).await;
    let r = app.data_as(&s.admin, APPROVE, json!({ "id": lost })).await;
    assert_eq!(r["reviewWithdrawal"]["status"], "FAILED");
    let shown = app.data_as(&token, SHOW, json!({ "id": lost })).await;
    assert!(
        shown["node"]["failureReason"]
            .as_str()
            .unwrap()
            .contains("PAYEE_NOT_EXIST")
    );
    assert_eq!(entries(app, m.id, &lost, "WITHDRAWAL_FAILED").await, 1);
    let mine = app.data_as(&token, MINE, json!({})).await;
    assert_eq!(
        summary(&mine),
        ("50.00".into(), "0.00".into(), "50.00".into())
    );
    books_balance(app).await;
}

// ---------------------------------------------------------------------------------------
// MANUAL, accounts, and who sees what.

#[tokio::test]
async fn a_manual_payout_is_recorded_by_an_admin_audited_and_booked_once() {
    let s = scene().await;
    let app = &s.app;
    let (token, m) = earner(app, "bank@example.com", 10_000).await;
    let set = app
        .data_as(
            &token,
            SET,
            json!({ "i": { "channel": "MANUAL", "account": "6222 0212 3456 7890 123", "holderName": "李小明", "bankName": "中国工商银行" } }),
        )
        .await;
    assert_eq!(
        set["setPayoutAccount"],
        json!({ "channel": "MANUAL", "account": "**** 0123", "holderName": "**明", "bankName": "中国工商银行" })
    );
    // No channel: MANUAL, to the card on file.
    let (wid, w) = withdraw(app, &token, "40.00", None).await;
    assert_eq!(w["payoutChannel"], "MANUAL");
    assert_eq!(w["payoutAccount"], "**** 0123");
    let reveal = "mutation($id: ID!) { revealPayoutAccount(withdrawalId: $id) { account holderName bankName } }";
    let r = app.gql_as(&s.admin, reveal, json!({ "id": wid })).await;
    assert_eq!(
        error_code(&r),
        Some("PAYOUT_NOT_PROCESSING"),
        "not before approval"
    );
    let r = app.data_as(&s.admin, APPROVE, json!({ "id": wid })).await;
    assert_eq!(r["reviewWithdrawal"]["status"], "PROCESSING");
    let r = app.data_as(&s.admin, reveal, json!({ "id": wid })).await;
    assert_eq!(
        r["revealPayoutAccount"],
        json!({ "account": "6222021234567890123", "holderName": "李小明", "bankName": "中国工商银行" })
    );
    let r = app.gql_as(&token, reveal, json!({ "id": wid })).await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"));
    let r = app.gql_as(&s.admin, SYNC, json!({ "id": wid })).await;
    assert_eq!(error_code(&r), Some("PAYOUT_MANUAL"));

    let mark = "mutation($id: ID!, $r: String!) { markPayoutPaid(withdrawalId: $id, reference: $r) { status payoutReference } }";
    let r = app
        .gql_as(&token, mark, json!({ "id": wid, "r": "X" }))
        .await;
    assert_eq!(
        error_code(&r),
        Some("FORBIDDEN"),
        "members cannot mark their own"
    );
    let r = app
        .gql_as(&s.admin, mark, json!({ "id": wid, "r": "  " }))
        .await;
    assert_eq!(error_code(&r), Some("VALIDATION"));
    // Ten admins' clicks at once: one takes effect.
    let clicks = (0..10).map(|_| {
        app.gql_as(
            &s.admin,
            mark,
            json!({ "id": wid, "r": "ICBC-20261202-0001" }),
        )
    });
    let answers = futures_util::future::join_all(clicks).await;
    let ok = answers.iter().filter(|a| a.get("errors").is_none()).count();
    assert_eq!(ok, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|a| a.get("errors").is_some())
            .all(|a| error_code(a) == Some("PAYOUT_NOT_PROCESSING"))
    );
    assert_eq!(entries(app, m.id, &wid, "WITHDRAWAL_PAID").await, 1);
    let mine = app.data_as(&token, MINE, json!({})).await;
    assert_eq!(
        summary(&mine),
        ("60.00".into(), "0.00".into(), "40.00".into())
    );
    let audit = app
        .data_as(
            &s.admin,
            "{ auditLog(action: PAYOUT_MARKED_PAID, first: 10) { nodes { targetId arguments } } }",
            json!({}),
        )
        .await;
    let nodes = audit["auditLog"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "audited once, with the commit");
    assert_eq!(nodes[0]["arguments"]["reference"], "ICBC-20261202-0001");
    let audit = app
        .data_as(
            &s.admin,
            "{ auditLog(action: PAYOUT_ACCOUNT_REVEALED, first: 10) { nodes { targetId } } }",
            json!({}),
        )
        .await;
    assert_eq!(audit["auditLog"]["nodes"].as_array().unwrap().len(), 1);

    // A failed bank transfer: the funds come back once.
    let (second, _) = withdraw(app, &token, "25.00", None).await;
    app.data_as(&s.admin, APPROVE, json!({ "id": second }))
        .await;
    let fail = "mutation($id: ID!) { markPayoutFailed(withdrawalId: $id, reason: \"卡号已注销\") { status failureReason } }";
    let r = app.data_as(&s.admin, fail, json!({ "id": second })).await;
    assert_eq!(
        r["markPayoutFailed"],
        json!({ "status": "FAILED", "failureReason": "卡号已注销" })
    );
    let r = app.gql_as(&s.admin, fail, json!({ "id": second })).await;
    assert_eq!(error_code(&r), Some("PAYOUT_NOT_PROCESSING"));
    assert_eq!(entries(app, m.id, &second, "WITHDRAWAL_FAILED").await, 1);
    let mine = app.data_as(&token, MINE, json!({})).await;
    assert_eq!(
        summary(&mine),
        ("60.00".into(), "0.00".into(), "40.00".into())
    );
    // A provider's payout is not marked by hand.
    app.data_as(
        &token,
        SET,
        json!({ "i": { "channel": "WECHAT", "account": "oManual00000000000000000001" } }),
    )
    .await;
    let (wx, _) = withdraw(app, &token, "10.00", Some("WECHAT")).await;
    app.data_as(&s.admin, APPROVE, json!({ "id": wx })).await;
    let r = app
        .gql_as(&s.admin, mark, json!({ "id": wx, "r": "X" }))
        .await;
    assert_eq!(error_code(&r), Some("PAYOUT_NOT_MANUAL"));
    books_balance(app).await;
}

#[tokio::test]
async fn payout_accounts_are_checked_masked_and_never_shown_to_another_member() {
    let s = scene().await;
    let app = &s.app;
    let (a, a_m) = earner(app, "a@example.com", 50_00).await;
    let (b, _) = earner(app, "b@example.com", 50_00).await;
    // Every bad field at once.
    let r = app
        .gql_as(
            &a,
            SET,
            json!({ "i": { "channel": "MANUAL", "account": "12ab", "holderName": " " } }),
        )
        .await;
    assert_eq!(error_code(&r), Some("VALIDATION"));
    let fields: Vec<&str> = r["errors"][0]["extensions"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().or(f.as_str()).unwrap_or(""))
        .collect();
    assert!(
        ["input.account", "input.holderName", "input.bankName"]
            .iter()
            .all(|f| fields.contains(f)),
        "{r}"
    );
    // No account of the channel: refused before anything is reserved.
    let r = app
        .gql_as(
            &a,
            REQUEST,
            json!({ "a": "10.00", "k": "no-account", "c": "ALIPAY" }),
        )
        .await;
    assert_eq!(error_code(&r), Some("PAYOUT_ACCOUNT_MISSING"));
    // WeChat transfers of 2000.00 or more need the payee's real name: refused without one,
    // nothing reserved; with one, sent encrypted under the WeChat Pay public key.
    let (rich, _) = earner(app, "rich@example.com", 300_000).await;
    app.data_as(
        &rich,
        SET,
        json!({ "i": { "channel": "WECHAT", "account": "oRich00000000000000000000001" } }),
    )
    .await;
    let r = app
        .gql_as(
            &rich,
            REQUEST,
            json!({ "a": "2000.00", "k": "big", "c": "WECHAT" }),
        )
        .await;
    assert_eq!(error_code(&r), Some("PAYOUT_NAME_REQUIRED"), "{r}");
    let balance = app.data_as(&rich, MINE, json!({})).await;
    assert_eq!(
        (summary(&balance).0.as_str(), summary(&balance).1.as_str()),
        ("3000.00", "0.00"),
        "nothing reserved"
    );
    app.data_as(
        &rich,
        SET,
        json!({ "i": { "channel": "WECHAT", "account": "oRich00000000000000000000001",
                       "holderName": "李四" } }),
    )
    .await;
    let (big, _) = withdraw(app, &rich, "2000.00", Some("WECHAT")).await;
    let approved = app.data_as(&s.admin, APPROVE, json!({ "id": big })).await;
    assert_eq!(approved["reviewWithdrawal"]["status"], "PROCESSING");
    let bill = s
        .wechat
        .bills
        .lock()
        .unwrap()
        .get(&uuid_of(&big).simple().to_string())
        .cloned()
        .expect("sent");
    assert_eq!(bill["user_name"], "李四", "decrypted by the fake: {bill}");
    assert!(
        bill["transfer_amount"]
            .as_i64()
            .is_some_and(|f| f >= 199_000)
    );
    app.data_as(
        &a,
        SET,
        json!({ "i": { "channel": "WECHAT", "account": "oBig000000000000000000000001" } }),
    )
    .await;
    app.data_as(
        &a,
        SET,
        json!({ "i": { "channel": "ALIPAY", "account": "13800001234", "holderName": "王五" } }),
    )
    .await;
    let mine = app
        .data_as(
            &a,
            "{ me { payoutAccounts { channel account holderName } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        mine["me"]["payoutAccounts"],
        json!([
            { "channel": "WECHAT", "account": "oBi****0001", "holderName": null },
            { "channel": "ALIPAY", "account": "138****1234", "holderName": "*五" },
        ])
    );
    let (wid, _) = withdraw(app, &a, "10.00", Some("ALIPAY")).await;
    // Another member: neither the withdrawal nor the member's accounts.
    let r = app.gql_as(&b, SHOW, json!({ "id": wid })).await;
    assert!(
        error_code(&r) == Some("NOT_FOUND") || r["data"]["node"].is_null(),
        "{r}"
    );
    let member_id = crate::fixtures::gid(pushhand::graphql::ids::Kind::Member, a_m.id);
    let r = app
        .gql_as(
            &b,
            "query($id: ID!) { node(id: $id) { ... on Member { payoutAccounts { account } } } }",
            json!({ "id": member_id }),
        )
        .await;
    let text = r.to_string();
    assert!(
        !text.contains("13800001234") && !text.contains("138****1234"),
        "{r}"
    );
    // The owner's own withdrawal shows the masked account only.
    let own = app.data_as(&a, SHOW, json!({ "id": wid })).await;
    assert_eq!(own["node"]["payoutAccount"], "138****1234");
    assert!(!own.to_string().contains("13800001234"));
}

#[tokio::test]
async fn approving_needs_the_payout_channel_enabled() {
    // An app without provider payouts: a WECHAT withdrawal cannot even be requested, and
    // MANUAL works.
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (token, _) = earner(&app, "plain@example.com", 30_00).await;
    app.data_as(
        &token,
        SET,
        json!({ "i": { "channel": "WECHAT", "account": "oPlain00000000000000000001" } }),
    )
    .await;
    let r = app
        .gql_as(
            &token,
            REQUEST,
            json!({ "a": "10.00", "k": "wx", "c": "WECHAT" }),
        )
        .await;
    assert_eq!(error_code(&r), Some("PAYOUT_CHANNEL_UNAVAILABLE"));
    let (wid, w) = withdraw(&app, &token, "10.00", None).await;
    assert_eq!(w["payoutAccount"], Value::Null, "no card on file");
    let r = app.data_as(&admin, APPROVE, json!({ "id": wid })).await;
    assert_eq!(r["reviewWithdrawal"]["status"], "PROCESSING");
}

// ---------------------------------------------------------------------------------------
// Reconciliation.

/// Orders paid through WeChat and Alipay intents (as notifications would leave them).
async fn paid_intents(
    app: &TestApp,
    channel: &str,
    fens: &[i64],
) -> Vec<entity::payment_intent::Model> {
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let mut out = Vec::new();
    for fen in fens {
        let (_, o) = crate::payments::unpaid_order(app).await;
        let id = Uuid::now_v7();
        let intent = entity::payment_intent::ActiveModel {
            id: Set(id),
            order_id: Set(o.id),
            channel: Set(channel.to_owned()),
            amount: Set(entity::Money::from_fen(*fen)),
            status: Set(entity::payment_intent::Status::Paid),
            provider_reference: Set(Some(format!("ref:{}", id.simple()))),
            client_params: Set(None),
            expires_at: Set(app.clock_now()),
            created_at: Set(app.clock_now()),
            // 10:00 Beijing time on 2026-12-02.
            paid_at: Set(Some(
                chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:00+08:00")
                    .unwrap()
                    .with_timezone(&chrono::Utc),
            )),
        };
        entity::payment_intent::Entity::insert(intent.clone())
            .exec_without_returning(app.db())
            .await
            .unwrap();
        out.push(
            entity::payment_intent::Entity::find_by_id(id)
                .one(app.db())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn reconcile_reports_both_ways_and_amount_differences_for_both_bills() {
    use pushhand::payments::out_trade_no;
    use pushhand::payments::reconcile::{self, BillProvider};
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();

    // WeChat: A matches, B differs, C is ours but not in the bill, D is the bill's only.
    let wx = paid_intents(&app, "WECHAT_JSAPI", &[88_80, 50_00, 12_34]).await;
    let header = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
    let row = |no: &str, reference: &str, state: &str, amount: &str| {
        format!(
            "`2026-12-02 10:00:00,`{APP_ID},`{MCH_ID},`0,`,`{reference},`{no},`oUser,`JSAPI,`{state},`OTHERS,`CNY,`{amount},`0.00,`0,`0,`0.00,`0.00,`,`,`Pushhand order,`,`0.00000,`0.60%,`{amount},`0.00,`"
        )
    };
    let bill = [
        header.to_owned(),
        row(&out_trade_no(wx[0].id), "4200000001", "SUCCESS", "88.80"),
        row(&out_trade_no(wx[1].id), "4200000002", "SUCCESS", "49.99"),
        row("ffffffffffffffffffffffffffffffff", "4200000009", "SUCCESS", "1.00"),
        row(&out_trade_no(wx[0].id), "4200000001", "REFUND", "0.00"),
        "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额".to_owned(),
        "`4,`139.79,`0.00,`0.00,`0.00000,`139.79,`0.00".to_owned(),
    ]
    .join("\r\n");
    let path = dir.path().join("wechat.csv");
    std::fs::write(&path, format!("\u{feff}{bill}")).unwrap();
    let parsed = reconcile::parse_wechat(&std::fs::read(&path).unwrap()).unwrap();
    let report = reconcile::reconcile(app.db(), BillProvider::Wechat, parsed, None)
        .await
        .unwrap();
    assert_eq!(report.bill_payments, 3);
    assert_eq!(report.bill_other_rows, 1);
    assert_eq!(report.matched, 1);
    assert_eq!(report.amount_differences.len(), 1);
    assert_eq!(report.amount_differences[0].1.intent_id, wx[1].id);
    assert_eq!(report.paid_at_provider_only.len(), 1);
    assert_eq!(report.paid_at_provider_only[0].0.reference, "4200000009");
    assert_eq!(
        report
            .paid_here_only
            .iter()
            .map(|o| o.intent_id)
            .collect::<Vec<_>>(),
        vec![wx[2].id]
    );
    assert!(!report.clean());
    let text = report.render(BillProvider::Wechat);
    assert!(text.contains("amount differences: 1"), "{text}");

    // Alipay, GBK as it is downloaded: one match, one missing here.
    let ali = paid_intents(&app, "ALIPAY", &[20_00, 30_00]).await;
    let header = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";
    let row = |no: &str, kind: &str, amount: &str| {
        format!(
            "2026120222001404011000000001\t,{no}\t,{kind}\t,测试商品\t,2026-12-02 09:59:00\t,2026-12-02 10:00:00\t,\t,\t,\t,\t,张*(zha***@example.com)\t,{amount}\t,{amount}\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,"
        )
    };
    let text = [
        "#支付宝业务明细查询".to_owned(),
        "#账号：[20880000000000010156]".to_owned(),
        "#-----------------------------------------业务明细列表----------------------------------------".to_owned(),
        header.to_owned(),
        row(&out_trade_no(ali[0].id), "交易", "20.00"),
        row(&out_trade_no(ali[0].id), "退款", "-5.00"),
        "#-----------------------------------------业务明细列表结束------------------------------------".to_owned(),
        "#交易合计：1笔，商家实收共20.00元".to_owned(),
    ]
    .join("\r\n");
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    let path = dir.path().join("alipay.csv");
    std::fs::write(&path, &gbk).unwrap();
    let parsed = reconcile::parse_alipay(&std::fs::read(&path).unwrap()).unwrap();
    let days = [chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()].into();
    let report = reconcile::reconcile(app.db(), BillProvider::Alipay, parsed, Some(days))
        .await
        .unwrap();
    assert_eq!((report.matched, report.bill_other_rows), (1, 1));
    assert!(report.paid_at_provider_only.is_empty());
    assert!(report.amount_differences.is_empty());
    assert_eq!(
        report
            .paid_here_only
            .iter()
            .map(|o| o.intent_id)
            .collect::<Vec<_>>(),
        vec![ali[1].id]
    );
}
