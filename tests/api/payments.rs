//! Payment providers against local fakes: a WeChat Pay server and an Alipay gateway on
//! 127.0.0.1, implementing the providers' documented contracts with keys this test makes, so
//! the real signing, verification and decryption code runs — nothing leaves the machine. The
//! apps read their keys from files, as in production.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use pushhand::payments::keys::{PrivateKey, PublicKey};
use pushhand::payments::{
    Channel, IntentRequest, Notice, PaymentError, Provider, Refusal, TradeState, VerifiedPayment,
    out_trade_no,
};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::helpers::TestApp;

pub(crate) const MCH_ID: &str = "1900000001";
pub(crate) const APP_ID: &str = "wx8888888888888888";
pub(crate) const MERCHANT_SERIAL: &str = "3775B6A45ACD588826D15E583A95F5DD0000001";
pub(crate) const PLATFORM_KEY_ID: &str = "PUB_KEY_ID_0119000000012025000000000000000001";
pub(crate) const API_V3_KEY: &str = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
pub(crate) const ALIPAY_APP_ID: &str = "2021004100000001";
pub(crate) const ALIPAY_SELLER: &str = "2088000000000001";

/// The key pairs of this run: the merchant's (ours), the provider's, and a stranger's.
pub(crate) struct Keys {
    pub(crate) merchant: RsaPrivateKey,
    pub(crate) provider: RsaPrivateKey,
    pub(crate) stranger: RsaPrivateKey,
}

pub(crate) fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let make = || RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("keygen");
        Keys {
            merchant: make(),
            provider: make(),
            stranger: make(),
        }
    })
}

pub(crate) fn private_pem(key: &RsaPrivateKey) -> String {
    key.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string()
}

pub(crate) fn public_pem(key: &RsaPrivateKey) -> String {
    RsaPublicKey::from(key)
        .to_public_key_pem(LineEnding::LF)
        .expect("pem")
}

pub(crate) fn signer(key: &RsaPrivateKey) -> PrivateKey {
    PrivateKey::new(key.clone())
}

pub(crate) fn verifier(key: &RsaPrivateKey) -> PublicKey {
    PublicKey::new(RsaPublicKey::from(key))
}

/// Key files in a directory of their own, as an operator would place them.
pub(crate) struct KeyFiles {
    dir: TempDir,
}

impl KeyFiles {
    pub(crate) fn new() -> KeyFiles {
        KeyFiles {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write key file");
        path.display().to_string()
    }
}

/// The settings of an app with WeChat Pay at `base` and Alipay at `gateway`, its merchant
/// key `merchant` and the providers' public key `provider`.
pub(crate) fn payment_args(
    files: &KeyFiles,
    base: SocketAddr,
    gateway: SocketAddr,
    merchant: &RsaPrivateKey,
    provider: &RsaPrivateKey,
) -> Vec<String> {
    let merchant_file = files.write("apiclient_key.pem", &private_pem(merchant));
    let provider_file = files.write("pub_key.pem", &public_pem(provider));
    // Alipay's key tool prints bare base64: the app key is given so.
    let bare: String = private_pem(merchant)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let app_key_file = files.write("alipay_app_key.txt", &bare);
    [
        "--payments-notify-base-url",
        "https://shop.example.com",
        "--wechat-enabled",
        "true",
        "--wechat-base-url",
        &format!("http://{base}"),
        "--wechat-mch-id",
        MCH_ID,
        "--wechat-app-id",
        APP_ID,
        "--wechat-merchant-serial",
        MERCHANT_SERIAL,
        "--wechat-merchant-key-file",
        &merchant_file,
        "--wechat-platform-key-file",
        &provider_file,
        "--wechat-platform-key-id",
        PLATFORM_KEY_ID,
        "--wechat-api-v3-key",
        API_V3_KEY,
        "--alipay-enabled",
        "true",
        "--alipay-app-id",
        ALIPAY_APP_ID,
        "--alipay-app-key-file",
        &app_key_file,
        "--alipay-public-key-file",
        &provider_file,
        "--alipay-gateway-url",
        &format!("http://{gateway}/gateway.do"),
        "--alipay-seller-id",
        ALIPAY_SELLER,
        "--alipay-api-url",
        &format!("http://{gateway}/gateway.do"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub(crate) async fn spawn_app(args: &[String]) -> TestApp {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TestApp::spawn_with(&args).await
}

pub(crate) fn provider(app: &TestApp, channel: Channel) -> Arc<dyn Provider> {
    app.state
        .payments
        .get(channel)
        .unwrap_or_else(|| panic!("{channel:?} enabled"))
        .clone()
}

pub(crate) fn refusal(result: Result<VerifiedPayment, PaymentError>) -> Refusal {
    match result {
        Err(PaymentError::Refused(r)) => r,
        other => panic!("not refused: {other:?}"),
    }
}

fn intent_request(app: &TestApp, intent_id: Uuid, amount: &str) -> IntentRequest<'static> {
    let now = app.clock_now();
    IntentRequest {
        intent_id,
        amount: amount.parse().expect("amount"),
        description: "Pushhand 测试订单",
        expires_at: now + chrono::Duration::minutes(30),
        payer_openid: Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        now,
    }
}

// ---------------------------------------------------------------------------------------
// The fake WeChat Pay server.

/// What the fake WeChat Pay server saw and how it answers.
pub(crate) struct FakeWechat {
    /// Verifies our requests' signatures.
    merchant: PublicKey,
    /// Signs its answers (the provider's key, or a stranger's in a test of forged answers).
    signer: PrivateKey,
    /// The prepay requests it accepted (their bodies).
    accepted: Mutex<Vec<Value>>,
    /// The refund requests whose signature held (their bodies), refused ones included.
    pub(crate) refund_requests: Mutex<Vec<Value>>,
    /// How many refund requests to refuse (`403 NOT_ENOUGH`) before taking them.
    pub(crate) refuse_refunds: std::sync::atomic::AtomicUsize,
    /// The refunds it holds, by `out_refund_no` (as its answers write them).
    pub(crate) held: Mutex<std::collections::HashMap<String, Value>>,
}

/// `timestamp\nnonce\nbody\n` signed by `key`, as WeChat Pay signs answers and notifications.
pub(crate) fn wechat_signed_headers(
    key: &PrivateKey,
    serial: &str,
    timestamp: i64,
    body: &str,
) -> HeaderMap {
    let nonce = Uuid::now_v7().simple().to_string();
    let signature = key.sign(format!("{timestamp}\n{nonce}\n{body}\n").as_bytes());
    let mut headers = HeaderMap::new();
    headers.insert(
        "wechatpay-timestamp",
        timestamp.to_string().parse().unwrap(),
    );
    headers.insert("wechatpay-nonce", nonce.parse().unwrap());
    headers.insert("wechatpay-signature", signature.parse().unwrap());
    headers.insert("wechatpay-serial", serial.parse().unwrap());
    headers.insert(
        "wechatpay-signature-type",
        "WECHATPAY2-SHA256-RSA2048".parse().unwrap(),
    );
    headers
}

/// The fields of a `WECHATPAY2-SHA256-RSA2048 k="v",…` header.
pub(crate) fn authorization_fields(
    header: &str,
) -> Option<std::collections::HashMap<String, String>> {
    let fields = header.strip_prefix("WECHATPAY2-SHA256-RSA2048 ")?;
    fields
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((
                k.to_owned(),
                v.strip_prefix('"')?.strip_suffix('"')?.to_owned(),
            ))
        })
        .collect()
}

impl FakeWechat {
    /// `POST /v3/pay/transactions/jsapi`: checks the signature of the request with the
    /// merchant's public key and its fields, then answers a prepay id, signed.
    fn prepay(&self, headers: &HeaderMap, body: &[u8]) -> axum::response::Response {
        let error = |status: StatusCode, code: &str| {
            (status, axum::Json(json!({ "code": code, "message": code }))).into_response()
        };
        let Some(fields) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(authorization_fields)
        else {
            return error(StatusCode::UNAUTHORIZED, "SIGN_ERROR");
        };
        let body = String::from_utf8_lossy(body);
        let message = format!(
            "POST\n/v3/pay/transactions/jsapi\n{}\n{}\n{body}\n",
            fields["timestamp"], fields["nonce_str"]
        );
        if fields["mchid"] != MCH_ID
            || fields["serial_no"] != MERCHANT_SERIAL
            || !self
                .merchant
                .verify(message.as_bytes(), &fields["signature"])
        {
            return error(StatusCode::UNAUTHORIZED, "SIGN_ERROR");
        }
        let Ok(request) = serde_json::from_str::<Value>(&body) else {
            return error(StatusCode::BAD_REQUEST, "PARAM_ERROR");
        };
        let well_formed = request["appid"] == APP_ID
            && request["mchid"] == MCH_ID
            && request["amount"]["currency"] == "CNY"
            && request["amount"]["total"].as_i64().is_some_and(|t| t > 0)
            && request["payer"]["openid"].is_string()
            && request["notify_url"] == "https://shop.example.com/payments/wechat/notify"
            && request["out_trade_no"]
                .as_str()
                .is_some_and(|n| n.len() == 32)
            && request["time_expire"]
                .as_str()
                .is_some_and(|t| t.ends_with("+08:00"));
        if !well_formed {
            return error(StatusCode::BAD_REQUEST, "PARAM_ERROR");
        }
        let answer =
            json!({ "prepay_id": format!("wx{}", request["out_trade_no"].as_str().unwrap_or("")) })
                .to_string();
        let headers = wechat_signed_headers(
            &self.signer,
            PLATFORM_KEY_ID,
            chrono::Utc::now().timestamp(),
            &answer,
        );
        self.accepted.lock().unwrap().push(request);
        (StatusCode::OK, headers, answer).into_response()
    }

    /// Whether a request's `Authorization` is the merchant's signature of `METHOD\nURL\n…`.
    fn signed_by_merchant(&self, headers: &HeaderMap, method: &str, url: &str, body: &str) -> bool {
        let Some(fields) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(authorization_fields)
        else {
            return false;
        };
        let message = format!(
            "{method}\n{url}\n{}\n{}\n{body}\n",
            fields["timestamp"], fields["nonce_str"]
        );
        fields["mchid"] == MCH_ID
            && fields["serial_no"] == MERCHANT_SERIAL
            && self
                .merchant
                .verify(message.as_bytes(), &fields["signature"])
    }

    /// A refund answer, signed.
    fn refund_answer(&self, refund: &Value) -> axum::response::Response {
        let answer = refund.to_string();
        let headers = wechat_signed_headers(
            &self.signer,
            PLATFORM_KEY_ID,
            chrono::Utc::now().timestamp(),
            &answer,
        );
        (StatusCode::OK, headers, answer).into_response()
    }

    /// `POST /v3/refund/domestic/refunds`: checks the signature and fields; refuses while
    /// told to; answers the refund it holds under that `out_refund_no` (a resubmission is
    /// the same refund), else takes a new one (`PROCESSING`).
    fn refund(&self, headers: &HeaderMap, body: &[u8]) -> axum::response::Response {
        let error = |status: StatusCode, code: &str, message: &str| {
            (
                status,
                axum::Json(json!({ "code": code, "message": message })),
            )
                .into_response()
        };
        let body = String::from_utf8_lossy(body);
        if !self.signed_by_merchant(headers, "POST", "/v3/refund/domestic/refunds", &body) {
            return error(StatusCode::UNAUTHORIZED, "SIGN_ERROR", "签名错误");
        }
        let Ok(request) = serde_json::from_str::<Value>(&body) else {
            return error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "参数错误");
        };
        self.refund_requests.lock().unwrap().push(request.clone());
        let refund = request["amount"]["refund"].as_i64().unwrap_or(0);
        let total = request["amount"]["total"].as_i64().unwrap_or(0);
        let well_formed = request["out_trade_no"]
            .as_str()
            .is_some_and(|n| n.len() == 32)
            && request["out_refund_no"]
                .as_str()
                .is_some_and(|n| n.len() == 32)
            && request["notify_url"] == "https://shop.example.com/payments/wechat/refund-notify"
            && request["amount"]["currency"] == "CNY"
            && refund > 0
            && refund <= total;
        if !well_formed {
            return error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "参数错误");
        }
        let refuse = &self.refuse_refunds;
        if refuse
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok()
        {
            return error(
                StatusCode::FORBIDDEN,
                "NOT_ENOUGH",
                "基本账户余额不足，请充值后重新发起",
            );
        }
        let no = request["out_refund_no"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut held = self.held.lock().unwrap();
        let count = held.len();
        let answer = held
            .entry(no.clone())
            .or_insert_with(|| {
                json!({
                    "refund_id": format!("503000000120261202{count:010}"),
                    "out_refund_no": no,
                    "transaction_id": "4200001234202612020000000001",
                    "out_trade_no": request["out_trade_no"],
                    "channel": "ORIGINAL",
                    "user_received_account": "招商银行信用卡0403",
                    "create_time": "2026-12-02T18:10:00+08:00",
                    "status": "PROCESSING",
                    "funds_account": "AVAILABLE",
                    "amount": {
                        "total": total, "refund": refund, "payer_total": total,
                        "payer_refund": refund, "settlement_refund": refund,
                        "settlement_total": total, "discount_refund": 0, "currency": "CNY",
                    },
                })
            })
            .clone();
        drop(held);
        self.refund_answer(&answer)
    }

    /// `GET /v3/refund/domestic/refunds/{out_refund_no}`.
    fn query_refund(&self, headers: &HeaderMap, no: &str) -> axum::response::Response {
        let url = format!("/v3/refund/domestic/refunds/{no}");
        if !self.signed_by_merchant(headers, "GET", &url, "") {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({ "code": "SIGN_ERROR", "message": "签名错误" })),
            )
                .into_response();
        }
        let held = self.held.lock().unwrap().get(no).cloned();
        match held {
            Some(refund) => self.refund_answer(&refund),
            None => (
                StatusCode::NOT_FOUND,
                axum::Json(json!({ "code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在" })),
            )
                .into_response(),
        }
    }

    /// Marks a held refund as WeChat Pay would once the money moved.
    pub(crate) fn settle_refund(&self, no: &str, status: &str) {
        if let Some(refund) = self.held.lock().unwrap().get_mut(no) {
            refund["status"] = json!(status);
            refund["success_time"] = json!("2026-12-02T18:11:00+08:00");
        }
    }
}

pub(crate) async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

pub(crate) async fn fake_wechat(signer: &RsaPrivateKey) -> (SocketAddr, Arc<FakeWechat>) {
    let fake = Arc::new(FakeWechat {
        merchant: verifier(&keys().merchant),
        signer: self::signer(signer),
        accepted: Mutex::default(),
        refund_requests: Mutex::default(),
        refuse_refunds: Default::default(),
        held: Mutex::default(),
    });
    let handler = fake.clone();
    let refunds = fake.clone();
    let queries = fake.clone();
    let router = axum::Router::new()
        .route(
            "/v3/pay/transactions/jsapi",
            post(move |headers: HeaderMap, body: Bytes| {
                let fake = handler.clone();
                async move { fake.prepay(&headers, &body) }
            }),
        )
        .route(
            "/v3/refund/domestic/refunds",
            post(move |headers: HeaderMap, body: Bytes| {
                let fake = refunds.clone();
                async move { fake.refund(&headers, &body) }
            }),
        )
        .route(
            "/v3/refund/domestic/refunds/{no}",
            get(
                move |axum::extract::Path(no): axum::extract::Path<String>, headers: HeaderMap| {
                    let fake = queries.clone();
                    async move { fake.query_refund(&headers, &no) }
                },
            ),
        );
    (serve(router).await, fake)
}

/// A `TRANSACTION.SUCCESS` notification of `transaction`, its resource encrypted with
/// `api_v3_key`, signed by `key` under `serial` at `timestamp`.
pub(crate) fn wechat_notification(
    transaction: &Value,
    api_v3_key: &str,
    key: &PrivateKey,
    serial: &str,
    timestamp: i64,
) -> (HeaderMap, String) {
    let nonce = "r8N2q0aBcD3x";
    let key32: [u8; 32] = api_v3_key.as_bytes().try_into().expect("32 bytes");
    let ciphertext = pushhand::payments::wechat::encrypt_resource(
        &key32,
        nonce,
        "transaction",
        transaction.to_string().as_bytes(),
    );
    let body = json!({
        "id": Uuid::now_v7().to_string(),
        "create_time": "2026-12-02T18:00:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": ciphertext,
            "associated_data": "transaction",
            "nonce": nonce,
        },
    })
    .to_string();
    (wechat_signed_headers(key, serial, timestamp, &body), body)
}

pub(crate) fn transaction(intent: Uuid, fen: i64) -> Value {
    json!({
        "appid": APP_ID,
        "mchid": MCH_ID,
        "out_trade_no": out_trade_no(intent),
        "transaction_id": "4200001234202612020000000001",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2026-12-02T18:00:00+08:00",
        "payer": { "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" },
        "amount": { "total": fen, "payer_total": fen, "currency": "CNY", "payer_currency": "CNY" },
    })
}

// ---------------------------------------------------------------------------------------
// The fake Alipay gateway.

/// The fake Alipay gateway's refunds: what it was asked, how it answers.
#[derive(Default)]
pub(crate) struct FakeAlipay {
    /// The API calls whose signature held (their `biz_content`, with `method`).
    pub(crate) calls: Mutex<Vec<Value>>,
    /// Sign answers with a stranger's key (a forged answer) while set.
    pub(crate) forge: std::sync::atomic::AtomicBool,
    /// `fund_change` of refund answers (`Y` unless set to `N`).
    pub(crate) pending: std::sync::atomic::AtomicBool,
    /// The refunds it made, by `out_request_no`: the amount.
    pub(crate) refunded: Mutex<std::collections::HashMap<String, String>>,
}

/// `{"<node>":<object>,"sign":"…"}` with the object's text signed by `key`, as Alipay
/// answers.
pub(crate) fn alipay_answer(key: &PrivateKey, node: &str, object: &Value) -> String {
    let text = object.to_string();
    let sign = key.sign(text.as_bytes());
    format!("{{\"{node}\":{text},\"sign\":\"{sign}\"}}")
}

impl FakeAlipay {
    /// `POST /gateway.do`: an API call, its signature checked with the app's public key.
    fn call(&self, app_key: &PublicKey, body: &[u8]) -> axum::response::Response {
        let Ok(params) = pushhand::payments::alipay::form(body) else {
            return (StatusCode::BAD_REQUEST, "duplicate parameter").into_response();
        };
        let signed = pushhand::payments::alipay::request_text(&params);
        let ok = params.get("sign_type").map(String::as_str) == Some("RSA2")
            && params.get("app_id").map(String::as_str) == Some(ALIPAY_APP_ID)
            && params
                .get("sign")
                .is_some_and(|s| app_key.verify(signed.as_bytes(), s));
        if !ok {
            // As Alipay: an unsigned error answer.
            return (
                StatusCode::OK,
                r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature","sub_msg":"验签出错"}}"#,
            )
                .into_response();
        }
        let method = params.get("method").cloned().unwrap_or_default();
        let mut biz: Value = serde_json::from_str(&params["biz_content"]).unwrap_or_default();
        biz["method"] = json!(method);
        self.calls.lock().unwrap().push(biz.clone());
        let key = if self.forge.load(std::sync::atomic::Ordering::SeqCst) {
            signer(&keys().stranger)
        } else {
            signer(&keys().provider)
        };
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let answer = match method.as_str() {
            "alipay.trade.refund" => {
                let no = text(&biz["out_request_no"]);
                let amount = text(&biz["refund_amount"]);
                let well_formed = no.len() == 32
                    && text(&biz["out_trade_no"]).len() == 32
                    && params.get("notify_url").map(String::as_str)
                        == Some("https://shop.example.com/payments/alipay/refund-notify");
                if !well_formed {
                    json!({ "code": "40004", "msg": "Business Failed", "sub_code": "ACQ.INVALID_PARAMETER", "sub_msg": "参数无效" })
                } else {
                    let pending = self.pending.load(std::sync::atomic::Ordering::SeqCst);
                    if !pending {
                        self.refunded.lock().unwrap().insert(no, amount.clone());
                    }
                    json!({
                        "code": "10000", "msg": "Success",
                        "trade_no": "2026120222001404011000000001",
                        "out_trade_no": biz["out_trade_no"],
                        "buyer_logon_id": "159****5620",
                        "fund_change": if pending { "N" } else { "Y" },
                        "refund_fee": amount,
                        "gmt_refund_pay": "2026-12-02 18:10:00",
                    })
                }
            }
            "alipay.trade.fastpay.refund.query" => {
                let no = text(&biz["out_request_no"]);
                match self.refunded.lock().unwrap().get(&no) {
                    Some(amount) => json!({
                        "code": "10000", "msg": "Success",
                        "trade_no": "2026120222001404011000000001",
                        "out_trade_no": biz["out_trade_no"],
                        "out_request_no": no,
                        "total_amount": amount,
                        "refund_amount": amount,
                        "refund_status": "REFUND_SUCCESS",
                    }),
                    None => json!({ "code": "10000", "msg": "Success" }),
                }
            }
            _ => {
                json!({ "code": "40004", "msg": "Business Failed", "sub_code": "isv.invalid-method" })
            }
        };
        let node = format!("{}_response", method.replace('.', "_"));
        (
            StatusCode::OK,
            [("content-type", "text/html;charset=utf-8")],
            alipay_answer(&key, &node, &answer),
        )
            .into_response()
    }
}

/// `GET /gateway.do?…`: checks a page pay's signature with the app's public key, as the
/// cashier does before showing the payment page.
pub(crate) async fn fake_alipay(app_key: &RsaPrivateKey) -> SocketAddr {
    fake_alipay_gateway(app_key).await.0
}

/// The fake gateway and its refunds: `GET /gateway.do` the cashier, `POST /gateway.do` the
/// API (refunds).
pub(crate) async fn fake_alipay_gateway(app_key: &RsaPrivateKey) -> (SocketAddr, Arc<FakeAlipay>) {
    let app_key = verifier(app_key);
    let fake = Arc::new(FakeAlipay::default());
    let api = fake.clone();
    let api_key = app_key.clone();
    let router = axum::Router::new().route(
        "/gateway.do",
        get(move |query: axum::extract::RawQuery| {
            let app_key = app_key.clone();
            async move {
                let query = query.0.unwrap_or_default();
                let Ok(params) = pushhand::payments::alipay::form(query.as_bytes()) else {
                    return (StatusCode::BAD_REQUEST, "duplicate parameter").into_response();
                };
                let signed = pushhand::payments::alipay::request_text(&params);
                let ok = params.get("sign_type").map(String::as_str) == Some("RSA2")
                    && params.get("app_id").map(String::as_str) == Some(ALIPAY_APP_ID)
                    && params.get("method").map(String::as_str) == Some("alipay.trade.wap.pay")
                    && params
                        .get("sign")
                        .is_some_and(|s| app_key.verify(signed.as_bytes(), s));
                if !ok {
                    return (StatusCode::OK, "invalid-signature").into_response();
                }
                let biz: Value = serde_json::from_str(&params["biz_content"]).unwrap_or_default();
                (StatusCode::OK, format!("cashier {}", biz["total_amount"])).into_response()
            }
        })
        .post(move |body: Bytes| {
            let fake = api.clone();
            let key = api_key.clone();
            async move { fake.call(&key, &body) }
        }),
    );
    (serve(router).await, fake)
}

/// An Alipay asynchronous notification, signed by `key`.
pub(crate) fn alipay_notification(key: &PrivateKey, fields: &[(&str, &str)]) -> String {
    let mut params: std::collections::BTreeMap<String, String> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    params.insert("sign_type".into(), "RSA2".into());
    let sign = key.sign(pushhand::payments::alipay::notice_text(&params).as_bytes());
    params.insert("sign".into(), sign);
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish()
}

pub(crate) fn alipay_fields<'a>(out_trade_no: &'a str, amount: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("notify_time", "2026-12-02 18:00:01"),
        ("notify_type", "trade_status_sync"),
        ("notify_id", "ac05099524730693a8b330c5ecf72da9786"),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("app_id", ALIPAY_APP_ID),
        ("seller_id", ALIPAY_SELLER),
        ("trade_no", "2026120222001404011000000001"),
        ("out_trade_no", out_trade_no),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", amount),
        ("receipt_amount", amount),
        ("subject", "Pushhand 测试订单 & more"),
        ("gmt_payment", "2026-12-02 18:00:00"),
    ]
}

// ---------------------------------------------------------------------------------------
// WeChat Pay.

#[tokio::test]
async fn wechat_prepay_is_signed_and_answers_wx_request_payment_params() {
    let k = keys();
    let (wechat, fake) = fake_wechat(&k.provider).await;
    let alipay = fake_alipay(&k.merchant).await;
    let files = KeyFiles::new();
    let app = spawn_app(&payment_args(
        &files,
        wechat,
        alipay,
        &k.merchant,
        &k.provider,
    ))
    .await;
    let intent = Uuid::now_v7();

    let params = provider(&app, Channel::WechatJsapi)
        .create_intent(&intent_request(&app, intent, "88.80"))
        .await
        .expect("prepay accepted");

    let accepted = fake.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1, "the fake verified our signature");
    assert_eq!(accepted[0]["amount"]["total"], 8880);
    assert_eq!(accepted[0]["out_trade_no"], out_trade_no(intent));
    let package = format!("prepay_id=wx{}", out_trade_no(intent));
    assert_eq!(params["package"], package.as_str());
    assert_eq!(params["appId"], APP_ID);
    assert_eq!(params["signType"], "RSA");
    let message = format!(
        "{APP_ID}\n{}\n{}\n{package}\n",
        params["timeStamp"].as_str().unwrap(),
        params["nonceStr"].as_str().unwrap()
    );
    assert!(
        verifier(&k.merchant).verify(message.as_bytes(), params["paySign"].as_str().unwrap()),
        "paySign is the merchant's signature of appId, timeStamp, nonceStr, package"
    );
}

#[tokio::test]
async fn wechat_prepay_with_the_wrong_merchant_key_or_a_forged_answer_is_refused() {
    let k = keys();
    let files = KeyFiles::new();
    // Our key is not the one WeChat Pay holds: it answers SIGN_ERROR.
    let (wechat, fake) = fake_wechat(&k.provider).await;
    let alipay = fake_alipay(&k.merchant).await;
    let app = spawn_app(&payment_args(
        &files,
        wechat,
        alipay,
        &k.stranger,
        &k.provider,
    ))
    .await;
    let err = provider(&app, Channel::WechatJsapi)
        .create_intent(&intent_request(&app, Uuid::now_v7(), "1.00"))
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, PaymentError::Upstream(m) if m.contains("SIGN_ERROR")),
        "{err:?}"
    );
    assert!(fake.accepted.lock().unwrap().is_empty());

    // An answer signed by someone else: its prepay id is not believed.
    let (forger, _) = fake_wechat(&k.stranger).await;
    let files = KeyFiles::new();
    let app = spawn_app(&payment_args(
        &files,
        forger,
        alipay,
        &k.merchant,
        &k.provider,
    ))
    .await;
    let err = provider(&app, Channel::WechatJsapi)
        .create_intent(&intent_request(&app, Uuid::now_v7(), "1.00"))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, PaymentError::Refused(Refusal::Signature)),
        "{err:?}"
    );
}

#[tokio::test]
async fn wechat_notifications_are_verified_decrypted_and_refused_when_forged() {
    let k = keys();
    let (wechat, _) = fake_wechat(&k.provider).await;
    let alipay = fake_alipay(&k.merchant).await;
    let files = KeyFiles::new();
    let app = spawn_app(&payment_args(
        &files,
        wechat,
        alipay,
        &k.merchant,
        &k.provider,
    ))
    .await;
    let wechat = provider(&app, Channel::WechatJsapi);
    let platform = signer(&k.provider);
    let now = app.clock_now();
    let intent = Uuid::now_v7();
    let verify = |(headers, body): (HeaderMap, String)| {
        let wechat = wechat.clone();
        let now = app.clock_now();
        async move {
            wechat
                .verify_notice(
                    Notice {
                        headers: &headers,
                        body: body.as_bytes(),
                    },
                    now,
                )
                .await
        }
    };

    // The genuine notification: believed once.
    let genuine = wechat_notification(
        &transaction(intent, 12345),
        API_V3_KEY,
        &platform,
        PLATFORM_KEY_ID,
        now.timestamp(),
    );
    let paid = verify(genuine.clone()).await.expect("verified");
    assert_eq!(paid.intent_id, intent);
    assert_eq!(paid.amount, Decimal::new(12345, 2));
    assert_eq!(paid.reference, "4200001234202612020000000001");
    assert_eq!(paid.state, TradeState::Paid);
    assert_eq!(refusal(verify(genuine.clone()).await), Refusal::Replayed);

    // Forged: signed by a stranger under the platform key's id.
    let stranger = signer(&k.stranger);
    let forged = wechat_notification(
        &transaction(intent, 1),
        API_V3_KEY,
        &stranger,
        PLATFORM_KEY_ID,
        now.timestamp(),
    );
    assert_eq!(refusal(verify(forged).await), Refusal::Signature);
    // Signed under a key id (certificate) we do not hold.
    let other_key = wechat_notification(
        &transaction(intent, 1),
        API_V3_KEY,
        &platform,
        "PUB_KEY_ID_OTHER",
        now.timestamp(),
    );
    assert_eq!(refusal(verify(other_key).await), Refusal::UnknownKey);
    // The amount tampered with after signing (the body no longer matches its signature).
    let (headers, body) = wechat_notification(
        &transaction(intent, 12345),
        API_V3_KEY,
        &platform,
        PLATFORM_KEY_ID,
        now.timestamp(),
    );
    let value: Value = serde_json::from_str(&body).unwrap();
    let mut tampered = value.clone();
    let original = B64
        .decode(value["resource"]["ciphertext"].as_str().unwrap())
        .unwrap();
    let mut flipped = original.clone();
    flipped[20] ^= 1;
    tampered["resource"]["ciphertext"] = json!(B64.encode(&flipped));
    assert_eq!(
        refusal(verify((headers, tampered.to_string())).await),
        Refusal::Signature
    );
    // A ciphertext that does not decrypt, though the body is signed (a bad tag).
    let (_, body) = wechat_notification(
        &transaction(intent, 12345),
        API_V3_KEY,
        &platform,
        PLATFORM_KEY_ID,
        now.timestamp(),
    );
    let mut bad: Value = serde_json::from_str(&body).unwrap();
    bad["resource"]["ciphertext"] = json!(B64.encode(&flipped));
    let bad = bad.to_string();
    let headers = wechat_signed_headers(&platform, PLATFORM_KEY_ID, now.timestamp(), &bad);
    assert_eq!(refusal(verify((headers, bad)).await), Refusal::Ciphertext);
    // Encrypted with another APIv3 key.
    let other_v3 = wechat_notification(
        &transaction(intent, 1),
        "b7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
        &platform,
        PLATFORM_KEY_ID,
        now.timestamp(),
    );
    assert_eq!(refusal(verify(other_v3).await), Refusal::Ciphertext);
    // Another app's, another merchant's.
    let mut other_app = transaction(intent, 1);
    other_app["appid"] = json!("wx0000000000000000");
    let n = wechat_notification(
        &other_app,
        API_V3_KEY,
        &platform,
        PLATFORM_KEY_ID,
        now.timestamp(),
    );
    assert_eq!(refusal(verify(n).await), Refusal::AppId);
    let mut other_mch = transaction(intent, 1);
    other_mch["mchid"] = json!("1900000002");
    let n = wechat_notification(
        &other_mch,
        API_V3_KEY,
        &platform,
        PLATFORM_KEY_ID,
        now.timestamp(),
    );
    assert_eq!(refusal(verify(n).await), Refusal::Merchant);
    // Not one of our intents.
    let mut stranger_order = transaction(intent, 1);
    stranger_order["out_trade_no"] = json!("ORDER20261202000001");
    let n = wechat_notification(
        &stranger_order,
        API_V3_KEY,
        &platform,
        PLATFORM_KEY_ID,
        now.timestamp(),
    );
    assert_eq!(refusal(verify(n).await), Refusal::Unrelated);

    // Stale: signed now, arriving more than 5 minutes later (the app's clock moves).
    let late = wechat_notification(
        &transaction(intent, 12345),
        API_V3_KEY,
        &platform,
        PLATFORM_KEY_ID,
        now.timestamp(),
    );
    app.clock.advance(chrono::Duration::seconds(301));
    assert_eq!(refusal(verify(late).await), Refusal::Stale);
}

#[tokio::test]
async fn a_replayed_wechat_nonce_is_refused_by_every_instance_sharing_redis() {
    let k = keys();
    let (wechat, _) = fake_wechat(&k.provider).await;
    let alipay = fake_alipay(&k.merchant).await;
    let files = KeyFiles::new();
    let args = payment_args(&files, wechat, alipay, &k.merchant, &k.provider);
    let first = spawn_app(&args).await;
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let second = TestApp::spawn_sharing(&first, &refs).await;
    let platform = signer(&k.provider);
    let (headers, body) = wechat_notification(
        &transaction(Uuid::now_v7(), 100),
        API_V3_KEY,
        &platform,
        PLATFORM_KEY_ID,
        first.clock_now().timestamp(),
    );
    let notice = Notice {
        headers: &headers,
        body: body.as_bytes(),
    };

    // Concurrent deliveries of one notification to one instance: one is believed.
    let wechat = provider(&first, Channel::WechatJsapi);
    let now = first.clock_now();
    let tries = (0..20).map(|_| {
        let wechat = wechat.clone();
        let (headers, body) = (headers.clone(), body.clone());
        tokio::spawn(async move {
            wechat
                .verify_notice(
                    Notice {
                        headers: &headers,
                        body: body.as_bytes(),
                    },
                    now,
                )
                .await
                .is_ok()
        })
    });
    let believed = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(believed, 1);

    let elsewhere = provider(&second, Channel::WechatJsapi)
        .verify_notice(notice, second.clock_now())
        .await;
    if crate::helpers::redis_url().is_some() {
        assert_eq!(
            refusal(elsewhere),
            Refusal::Replayed,
            "the nonce is shared through Redis"
        );
    } else {
        // Without Redis each instance remembers its own nonces (booking stays idempotent).
        assert!(elsewhere.is_ok(), "{elsewhere:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Alipay.

#[tokio::test]
async fn alipay_page_pay_is_signed_and_its_notifications_verified() {
    let k = keys();
    let (wechat, _) = fake_wechat(&k.provider).await;
    let gateway = fake_alipay(&k.merchant).await;
    let files = KeyFiles::new();
    let app = spawn_app(&payment_args(
        &files,
        wechat,
        gateway,
        &k.merchant,
        &k.provider,
    ))
    .await;
    let alipay = provider(&app, Channel::Alipay);
    let intent = Uuid::now_v7();

    // The page pay: the buyer's browser opens the signed URL; the fake cashier accepts it.
    let params = alipay
        .create_intent(&intent_request(&app, intent, "88.8"))
        .await
        .expect("signed");
    let url = params["url"].as_str().expect("url");
    let page = reqwest::get(url).await.unwrap().text().await.unwrap();
    assert_eq!(page, "cashier \"88.80\"");
    let tampered = url.replace("88.80", "0.01");
    assert_ne!(tampered, url);
    let page = reqwest::get(&tampered).await.unwrap().text().await.unwrap();
    assert_eq!(page, "invalid-signature");

    let no = out_trade_no(intent);
    let alipay_key = signer(&k.provider);
    let verify = |body: String| {
        let alipay = alipay.clone();
        let now = app.clock_now();
        async move {
            let headers = HeaderMap::new();
            alipay
                .verify_notice(
                    Notice {
                        headers: &headers,
                        body: body.as_bytes(),
                    },
                    now,
                )
                .await
        }
    };
    let genuine = alipay_notification(&alipay_key, &alipay_fields(&no, "88.80"));
    let paid = verify(genuine.clone()).await.expect("verified");
    assert_eq!(
        (paid.intent_id, paid.amount),
        (intent, Decimal::new(8880, 2))
    );
    assert_eq!(paid.reference, "2026120222001404011000000001");
    assert_eq!(paid.state, TradeState::Paid);
    assert_eq!(alipay.ack().body, "success");

    // Tampered amount, forged signature, another app, another seller.
    assert_eq!(
        refusal(verify(genuine.replace("88.80", "0.88")).await),
        Refusal::Signature
    );
    let forged = alipay_notification(&signer(&k.stranger), &alipay_fields(&no, "88.80"));
    assert_eq!(refusal(verify(forged).await), Refusal::Signature);
    let mut fields = alipay_fields(&no, "88.80");
    fields[5] = ("app_id", "2021004100000002");
    assert_eq!(
        refusal(verify(alipay_notification(&alipay_key, &fields)).await),
        Refusal::AppId
    );
    let mut fields = alipay_fields(&no, "88.80");
    fields[6] = ("seller_id", "2088000000000002");
    assert_eq!(
        refusal(verify(alipay_notification(&alipay_key, &fields)).await),
        Refusal::Merchant
    );
    // Closed trades are verified but not paid; TRADE_FINISHED is paid.
    let mut fields = alipay_fields(&no, "88.80");
    fields[9] = ("trade_status", "TRADE_CLOSED");
    assert_eq!(
        verify(alipay_notification(&alipay_key, &fields))
            .await
            .unwrap()
            .state,
        TradeState::Closed
    );
    fields[9] = ("trade_status", "TRADE_FINISHED");
    assert_eq!(
        verify(alipay_notification(&alipay_key, &fields))
            .await
            .unwrap()
            .state,
        TradeState::Paid
    );
}

// ---------------------------------------------------------------------------------------
// Configuration.

#[tokio::test]
async fn an_enabled_channel_without_its_keys_stops_the_start_naming_the_setting() {
    let check = |args: &[&str]| {
        let mut all = vec!["pushhand"];
        all.extend_from_slice(args);
        let config = pushhand::config::from_args(all).expect("parses");
        config.validate().map_err(|e| e.to_string())
    };
    let err = check(&["--wechat-enabled", "true"]).expect_err("refused");
    assert!(err.contains("PUSHHAND_PAYMENTS_NOTIFY_BASE_URL"), "{err}");
    let err = check(&[
        "--wechat-enabled",
        "true",
        "--payments-notify-base-url",
        "https://shop.example.com",
        "--wechat-base-url",
        "http://127.0.0.1:9",
    ])
    .expect_err("refused");
    assert!(err.contains("PUSHHAND_WECHATPAY_MCH_ID"), "{err}");
    let err = check(&[
        "--wechat-enabled",
        "true",
        "--payments-notify-base-url",
        "https://shop.example.com",
        "--wechat-base-url",
        "https://api.mch.weixin.qq.com",
    ])
    .expect_err("refused");
    assert!(err.contains("http://"), "{err}");
    let err = check(&[
        "--alipay-enabled",
        "true",
        "--payments-notify-base-url",
        "https://x.example",
    ])
    .expect_err("refused");
    assert!(err.contains("PUSHHAND_ALIPAY_APP_ID"), "{err}");
    let secret = "x".repeat(32);
    let err = check(&[
        "--env",
        "production",
        "--jwt-secret",
        &secret,
        "--payments-sandbox",
        "true",
    ])
    .expect_err("refused");
    assert!(err.contains("PUSHHAND_PAYMENTS_SANDBOX"), "{err}");

    // A key file that does not hold a key: the build stops, naming the setting.
    let k = keys();
    let files = KeyFiles::new();
    let mut args = payment_args(
        &files,
        "127.0.0.1:9".parse().unwrap(),
        "127.0.0.1:9".parse().unwrap(),
        &k.merchant,
        &k.provider,
    );
    let garbage = files.write(
        "garbage.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let at = args
        .iter()
        .position(|a| a == "--wechat-merchant-key-file")
        .unwrap();
    args[at + 1] = garbage;
    let data = tempfile::tempdir().expect("temp dir");
    let mut all = vec![
        "pushhand".to_owned(),
        "--bind-addr".into(),
        "127.0.0.1:0".into(),
        "--jwt-secret".into(),
        "x".repeat(32),
        "--data-dir".into(),
        data.path().display().to_string(),
    ];
    all.extend(args);
    let config = pushhand::config::from_args(all).expect("parses");
    let err = match pushhand::app::App::build(config).await {
        Ok(_) => panic!("built with a garbage key"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("PUSHHAND_WECHATPAY_MERCHANT_KEY_FILE"),
        "{err}"
    );
}

#[tokio::test]
async fn the_sandbox_is_on_in_development_only() {
    let app = TestApp::spawn().await;
    assert_eq!(app.state.payments.channels(), vec![Channel::Sandbox]);
    let prod = TestApp::spawn_with(&["--env", "production"]).await;
    assert!(prod.state.payments.channels().is_empty());
}

// ---------------------------------------------------------------------------------------
// Booking notifications: `POST /payments/{provider}/notify`, the sandbox's pay button.

/// A buyer with an upline (so that a payment books earnings) and an unpaid order of theirs.
pub(crate) async fn unpaid_order(app: &TestApp) -> (entity::member::Model, entity::order::Model) {
    use entity::member::Tier;
    use sea_orm::PaginatorTrait;

    if entity::sku::Entity::find()
        .count(app.db())
        .await
        .expect("count")
        == 0
    {
        crate::fixtures::catalog(app.db(), 2).await;
    }
    let top = crate::fixtures::member(
        app,
        &format!("top{}", Uuid::now_v7().simple()),
        Tier::PushHand,
        None,
    )
    .await;
    let buyer = crate::fixtures::member(
        app,
        &format!("buyer{}", Uuid::now_v7().simple()),
        Tier::PushHand,
        Some(top.id),
    )
    .await;
    let published = entity::product::Entity::find()
        .filter(entity::product::Column::Status.eq(entity::product::Status::Published))
        .all(app.db())
        .await
        .expect("read");
    let published: Vec<Uuid> = published.into_iter().map(|p| p.id).collect();
    let sku = entity::sku::Entity::find()
        .filter(entity::sku::Column::ProductId.is_in(published))
        .filter(entity::sku::Column::Stock.gt(5))
        .one(app.db())
        .await
        .expect("read")
        .expect("a SKU in stock");
    let o = place_for(app, &buyer, sku.id).await;
    (buyer, o)
}

/// An unpaid order of one unit of `sku` by `buyer`.
pub(crate) async fn place_for(
    app: &TestApp,
    buyer: &entity::member::Model,
    sku: Uuid,
) -> entity::order::Model {
    let line = pushhand::service::orders::LineRequest {
        sku_id: sku,
        quantity: 1,
        share_code: None,
    };
    let (o, _) = pushhand::service::orders::place_order(
        &app.state.checkouts,
        buyer,
        vec![line],
        chrono::Duration::minutes(30),
        app.clock_now(),
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("placed");
    o
}

pub(crate) async fn order_row(app: &TestApp, id: Uuid) -> entity::order::Model {
    entity::order::Entity::find_by_id(id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap()
}

pub(crate) async fn earnings_of(app: &TestApp, order: Uuid) -> u64 {
    use sea_orm::PaginatorTrait;
    entity::earning::Entity::find()
        .filter(entity::earning::Column::OrderId.eq(order))
        .count(app.db())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_sandbox_pays_an_order_end_to_end_once() {
    let app = TestApp::spawn().await;
    let (buyer, o) = unpaid_order(&app).await;
    let sandbox = provider(&app, Channel::Sandbox);
    let intent = pushhand::service::payments::create_payment(
        app.db(),
        sandbox.as_ref(),
        &buyer,
        o.id,
        None,
        app.clock_now(),
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("intent");
    assert_eq!(intent.amount, o.total);
    let again = pushhand::service::payments::create_payment(
        app.db(),
        sandbox.as_ref(),
        &buyer,
        o.id,
        None,
        app.clock_now(),
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("intent");
    assert_eq!(
        (again.id, &again.client_params),
        (intent.id, &intent.client_params),
        "one intent per order and channel"
    );
    let params: Value = serde_json::from_str(intent.client_params.as_deref().unwrap()).unwrap();
    let pay_url = params["payUrl"].as_str().unwrap().to_owned();

    for _ in 0..3 {
        let resp = app.client.post(app.url(&pay_url)).send().await.unwrap();
        assert_eq!(resp.status(), 204);
    }
    let paid = order_row(&app, o.id).await;
    assert_eq!(paid.status, entity::order::Status::Paid);
    assert_eq!(
        paid.payment_reference.as_deref(),
        Some(format!("sandbox:SANDBOX-{}", out_trade_no(intent.id)).as_str())
    );
    assert!(earnings_of(&app, o.id).await > 0);
    // The intent is marked in the payment's transaction, with the same reference.
    let marked = entity::payment_intent::Entity::find_by_id(intent.id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(marked.status, entity::payment_intent::Status::Paid);
    assert_eq!(marked.provider_reference, paid.payment_reference);
    assert_eq!(marked.paid_at, paid.paid_at);

    // A forged sandbox notification is refused and books nothing.
    let resp = app
        .client
        .post(app.url("/payments/sandbox/notify"))
        .header("pushhand-sandbox-signature", "t=1,n=x,s=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn fifty_concurrent_duplicate_notifications_book_once_and_a_wrong_amount_none() {
    let k = keys();
    let (wechat, _) = fake_wechat(&k.provider).await;
    let alipay = fake_alipay(&k.merchant).await;
    let files = KeyFiles::new();
    let app = spawn_app(&payment_args(
        &files,
        wechat,
        alipay,
        &k.merchant,
        &k.provider,
    ))
    .await;
    let alipay = provider(&app, Channel::Alipay);

    // Reference: an order paid by one notification.
    let (buyer, single) = unpaid_order(&app).await;
    let intent = pushhand::service::payments::create_payment(
        app.db(),
        alipay.as_ref(),
        &buyer,
        single.id,
        None,
        app.clock_now(),
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("intent");
    let key = signer(&k.provider);
    let no = out_trade_no(intent.id);
    let amount = format!("{:.2}", single.total.to_decimal());
    let body = alipay_notification(&key, &alipay_fields(&no, &amount));
    let resp = app
        .client
        .post(app.url("/payments/alipay/notify"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "success");
    let booked_once = earnings_of(&app, single.id).await;
    assert!(booked_once > 0);

    // 50 identical WeChat notifications at once (WeChat re-signs each delivery: fresh nonces).
    let (buyer, o) = unpaid_order(&app).await;
    let wechat = provider(&app, Channel::WechatJsapi);
    let intent = pushhand::service::payments::create_payment(
        app.db(),
        wechat.as_ref(),
        &buyer,
        o.id,
        Some("oOpenid"),
        app.clock_now(),
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("intent");
    let platform = signer(&k.provider);
    let fen = o.total.fen();
    let sends = (0..50).map(|_| {
        let (headers, body) = wechat_notification(
            &transaction(intent.id, fen),
            API_V3_KEY,
            &platform,
            PLATFORM_KEY_ID,
            app.clock_now().timestamp(),
        );
        let request = app
            .client
            .post(app.url("/payments/wechat/notify"))
            .headers(headers)
            .body(body);
        tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
    });
    let statuses: Vec<u16> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .map(|s| s.unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    let paid = order_row(&app, o.id).await;
    assert_eq!(paid.status, entity::order::Status::Paid);
    assert_eq!(
        paid.payment_reference.as_deref(),
        Some("wechat:4200001234202612020000000001")
    );
    assert_eq!(earnings_of(&app, o.id).await, booked_once, "booked once");

    // A verified notification of another amount: acknowledged, logged, the order unpaid.
    let (buyer, o) = unpaid_order(&app).await;
    let intent = pushhand::service::payments::create_payment(
        app.db(),
        alipay.as_ref(),
        &buyer,
        o.id,
        None,
        app.clock_now(),
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("intent");
    let no = out_trade_no(intent.id);
    let mut fields = alipay_fields(&no, "0.01");
    fields[7] = ("trade_no", "2026120222001404011000000002");
    let body = alipay_notification(&key, &fields);
    let resp = app
        .client
        .post(app.url("/payments/alipay/notify"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "success");
    assert_eq!(
        order_row(&app, o.id).await.status,
        entity::order::Status::PendingPayment
    );
    assert_eq!(earnings_of(&app, o.id).await, 0);

    let marked = entity::payment_intent::Entity::find_by_id(intent.id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(marked.status, entity::payment_intent::Status::Mismatch);

    // A forged one: refused ("failure" to Alipay), nothing booked.
    let body = alipay_notification(
        &signer(&k.stranger),
        &alipay_fields(&no, &format!("{:.2}", o.total.to_decimal())),
    );
    let resp = app
        .client
        .post(app.url("/payments/alipay/notify"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "failure");
    assert_eq!(
        order_row(&app, o.id).await.status,
        entity::order::Status::PendingPayment
    );
}

#[tokio::test]
async fn create_payment_opens_an_intent_for_the_buyer_only() {
    use pushhand::graphql::ids::Kind;
    use pushhand::service::members::CliRole;
    let app = TestApp::spawn().await;
    let (_, other) = unpaid_order(&app).await;
    let (token, me) = app.user("payer@example.com", CliRole::PushHand).await;
    let sku = entity::order_line::Entity::find()
        .filter(entity::order_line::Column::OrderId.eq(other.id))
        .one(app.db())
        .await
        .unwrap()
        .unwrap()
        .sku_id;
    let o = place_for(&app, &me, sku).await;
    let create = "mutation($o: ID!, $c: PaymentChannel!) { createPayment(orderId: $o, channel: $c) { id channel amount expiresAt clientParams } }";
    let vars = |o: Uuid, c: &str| json!({ "o": crate::fixtures::gid(Kind::Order, o), "c": c });

    let data = app.data_as(&token, create, vars(o.id, "SANDBOX")).await;
    let intent = &data["createPayment"];
    assert_eq!(intent["channel"], "SANDBOX");
    assert_eq!(intent["amount"], o.total.to_decimal().to_string());
    let again = app.data_as(&token, create, vars(o.id, "SANDBOX")).await;
    assert_eq!(again["createPayment"]["id"], intent["id"]);
    // Another buyer's order, a channel not enabled.
    let resp = app.gql_as(&token, create, vars(other.id, "SANDBOX")).await;
    assert_eq!(crate::helpers::error_code(&resp), Some("NOT_FOUND"));
    let resp = app.gql_as(&token, create, vars(o.id, "ALIPAY")).await;
    assert_eq!(
        crate::helpers::error_code(&resp),
        Some("CHANNEL_UNAVAILABLE")
    );

    let pay_url = intent["clientParams"]["payUrl"].as_str().unwrap();
    let resp = app.client.post(app.url(pay_url)).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        order_row(&app, o.id).await.status,
        entity::order::Status::Paid
    );
    let resp = app.gql_as(&token, create, vars(o.id, "SANDBOX")).await;
    assert_eq!(crate::helpers::error_code(&resp), Some("ORDER_NOT_PAYABLE"));
}

/// Intents open money paths: a buyer's client retrying `createPayment` many times at once
/// gets one intent (the unique index on order and channel), the same to every call.
#[tokio::test]
async fn concurrent_create_payments_open_one_intent() {
    use pushhand::graphql::ids::Kind;
    use pushhand::service::members::CliRole;
    let app = TestApp::spawn().await;
    let (_, other) = unpaid_order(&app).await;
    let (token, me) = app.user("racer@example.com", CliRole::PushHand).await;
    let sku = entity::order_line::Entity::find()
        .filter(entity::order_line::Column::OrderId.eq(other.id))
        .one(app.db())
        .await
        .unwrap()
        .unwrap()
        .sku_id;
    let o = place_for(&app, &me, sku).await;
    let create = "mutation($o: ID!) { createPayment(orderId: $o, channel: SANDBOX) { id amount } }";
    let vars = json!({ "o": crate::fixtures::gid(Kind::Order, o.id) });
    let answers =
        futures_util::future::join_all((0..16).map(|_| app.data_as(&token, create, vars.clone())))
            .await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| a["createPayment"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    let rows = entity::payment_intent::Entity::find()
        .filter(entity::payment_intent::Column::OrderId.eq(o.id))
        .count(app.db())
        .await
        .unwrap();
    assert_eq!(rows, 1);
}
