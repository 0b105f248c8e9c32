//! WeChat Pay API v3, JSAPI (official account pages and mini-programs).
//!
//! - Requests carry `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",
//!   signature="…",timestamp="…",serial_no="…"`, the signature being SHA256withRSA, by the
//!   merchant key, of `METHOD\nURL\ntimestamp\nnonce\nbody\n` (URL: path and query).
//! - `POST /v3/pay/transactions/jsapi` answers `{"prepay_id": …}`, itself signed like a
//!   notification (checked the same way, bar the nonce memory); the client then calls
//!   `wx.requestPayment` with `appId timeStamp nonceStr package signType paySign`, `paySign`
//!   signing `appId\ntimeStamp\nnonceStr\npackage\n` with the merchant key.
//! - A notification's `Wechatpay-Signature` signs `timestamp\nnonce\nbody\n` with the
//!   platform key that `Wechatpay-Serial` names — here the "WeChat Pay public key" and its
//!   id (`PUB_KEY_ID_…`), WeChat's current mode; its `resource` is AEAD_AES_256_GCM with the
//!   APIv3 key, the resource's `nonce` and `associated_data`, the tag at the end of the
//!   ciphertext.
//!
//! The checks, in order: the key (serial), the signature, the timestamp (5 minutes either
//! way), the nonce (never seen: recorded only once the signature holds, so forgeries cannot
//! use up nonces), the decryption, then app id and merchant id against ours.
//!
//! Refunds: `POST /v3/refund/domestic/refunds` (`out_trade_no out_refund_no reason
//! notify_url amount{refund total currency}`), answered with the refund (`refund_id
//! status`), signed like a notification and verified; `GET /v3/refund/domestic/refunds/
//! {out_refund_no}` reads it again (404 `RESOURCE_NOT_EXISTS`: never received). The refund
//! notification (`REFUND.SUCCESS`, `REFUND.ABNORMAL`, `REFUND.CLOSED`) is checked as a
//! payment's, its resource (`original_type` `refund`) naming `mchid out_trade_no
//! out_refund_no refund_id refund_status amount{refund}`. `SUCCESS` is done, `PROCESSING`
//! in flight, `CLOSED` and `ABNORMAL` failed. A failed refund is sent again under the same
//! `out_refund_no`, as WeChat Pay asks.

use std::sync::Arc;

use anyhow::{Context, bail};
use axum::http::{HeaderMap, Method, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http_body_util::Full;
use serde::Deserialize;
use serde_json::json;

use super::keys::{PrivateKey, PublicKey, nonce};
use super::nonces::{NonceStore, WINDOW};
use super::transport::Answer;
use super::transport::Transport;
use super::{
    Ack, Channel, IntentRequest, Notice, PaymentError, Provider, RefundRequest, RefundState,
    RefundStatus, Refusal, TradeState, VerifiedPayment,
};

/// The JSAPI prepay call.
pub const JSAPI_PATH: &str = "/v3/pay/transactions/jsapi";

/// The domestic refund call (`POST`); a refund's query is `GET {REFUNDS_PATH}/{out_refund_no}`.
pub const REFUNDS_PATH: &str = "/v3/refund/domestic/refunds";

/// WeChat Pay's limit on a refund's `reason`, in bytes.
const REASON_MAX: usize = 80;

/// WeChat Pay's limit on `description`, in bytes.
const DESCRIPTION_MAX: usize = 127;

/// A merchant's WeChat Pay settings, keys parsed.
#[derive(Clone, Debug)]
pub struct WechatConfig {
    /// Where the API is reached (`http://`, through an egress proxy; tests: a fake).
    pub base_url: String,
    pub mch_id: String,
    /// The app (official account or mini-program) the payers' openids belong to.
    pub app_id: String,
    /// The merchant certificate's serial number (`serial_no` of our requests).
    pub merchant_serial: String,
    pub merchant_key: PrivateKey,
    /// The WeChat Pay public key's id (`PUB_KEY_ID_…`), as `Wechatpay-Serial` names it.
    pub platform_key_id: String,
    pub platform_key: PublicKey,
    /// The APIv3 key: 32 bytes.
    pub api_v3_key: [u8; 32],
    /// Our notification URL (`…/payments/wechat/notify`).
    pub notify_url: String,
}

/// The WeChat Pay JSAPI provider.
pub struct WechatPay {
    config: WechatConfig,
    nonces: Arc<dyn NonceStore>,
    transport: Transport,
}

impl WechatPay {
    pub fn new(config: WechatConfig, nonces: Arc<dyn NonceStore>) -> anyhow::Result<WechatPay> {
        if !config.base_url.starts_with("http://") {
            bail!("the WeChat Pay base URL must be http:// (an egress proxy that speaks TLS)");
        }
        Ok(WechatPay {
            config,
            nonces,
            transport: Transport::default(),
        })
    }

    /// The `Authorization` header of a request.
    pub fn authorization(
        &self,
        method: &str,
        url: &str,
        body: &str,
        timestamp: i64,
        nonce: &str,
    ) -> String {
        let message = format!("{method}\n{url}\n{timestamp}\n{nonce}\n{body}\n");
        let signature = self.config.merchant_key.sign(message.as_bytes());
        format!(
            "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{timestamp}\",serial_no=\"{}\"",
            self.config.mch_id, self.config.merchant_serial
        )
    }

    /// The `wx.requestPayment` parameters for a prepay id.
    pub fn request_payment(
        &self,
        prepay_id: &str,
        timestamp: i64,
        nonce: &str,
    ) -> serde_json::Value {
        let package = format!("prepay_id={prepay_id}");
        let app_id = &self.config.app_id;
        let message = format!("{app_id}\n{timestamp}\n{nonce}\n{package}\n");
        json!({
            "appId": app_id,
            "timeStamp": timestamp.to_string(),
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": self.config.merchant_key.sign(message.as_bytes()),
        })
    }

    /// Checks a signed message from WeChat Pay (a notification or an answer): the key, the
    /// signature, the timestamp. Returns the nonce.
    pub(crate) fn check_signed<'h>(
        &self,
        headers: &'h HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<&'h str, Refusal> {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or(Refusal::Malformed)
        };
        let timestamp = get("wechatpay-timestamp")?;
        let nonce = get("wechatpay-nonce")?;
        let signature = get("wechatpay-signature")?;
        let serial = get("wechatpay-serial")?;
        if serial != self.config.platform_key_id {
            return Err(Refusal::UnknownKey);
        }
        let mut message = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
        for part in [
            timestamp.as_bytes(),
            b"\n",
            nonce.as_bytes(),
            b"\n",
            body,
            b"\n",
        ] {
            message.extend_from_slice(part);
        }
        if !self.config.platform_key.verify(&message, signature) {
            return Err(Refusal::Signature);
        }
        let timestamp: i64 = timestamp.parse().map_err(|_| Refusal::Malformed)?;
        if !super::fresh(timestamp, now, WINDOW) {
            return Err(Refusal::Stale);
        }
        Ok(nonce)
    }

    /// Decrypts a notification's resource (AEAD_AES_256_GCM).
    pub(crate) fn decrypt(&self, resource: &Resource) -> Result<Vec<u8>, Refusal> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        if resource.algorithm != "AEAD_AES_256_GCM" || resource.nonce.len() != 12 {
            return Err(Refusal::Malformed);
        }
        let nonce: [u8; 12] = resource
            .nonce
            .as_bytes()
            .try_into()
            .map_err(|_| Refusal::Malformed)?;
        let ciphertext = B64
            .decode(resource.ciphertext.trim())
            .map_err(|_| Refusal::Ciphertext)?;
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&self.config.api_v3_key)
            .map_err(|_| Refusal::Ciphertext)?;
        cipher
            .decrypt(
                &aes_gcm::Nonce::from(nonce),
                Payload {
                    msg: &ciphertext,
                    aad: resource.associated_data.as_deref().unwrap_or("").as_bytes(),
                },
            )
            .map_err(|_| Refusal::Ciphertext)
    }

    /// Our refund notification URL (`…/payments/wechat/refund-notify`), beside the payment's.
    fn refund_notify_url(&self) -> String {
        let url = &self.config.notify_url;
        format!(
            "{}/refund-notify",
            url.strip_suffix("/notify").unwrap_or(url)
        )
    }

    /// Sends a signed API request (`body` empty for a `GET`) and reads the answer (the
    /// payments' calls and the transfers' of [`super::payouts`]).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: String,
        now: DateTime<Utc>,
    ) -> Result<Answer, PaymentError> {
        let authorization =
            self.authorization(method.as_str(), path, &body, now.timestamp(), &nonce());
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        let mut builder = axum::http::Request::builder()
            .method(method)
            .uri(&url)
            .header(header::AUTHORIZATION, authorization)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("pushhand/", env!("CARGO_PKG_VERSION")),
            )
            .header("wechatpay-serial", &self.config.platform_key_id);
        if !body.is_empty() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .context("building the request")
            .map_err(PaymentError::Internal)?;
        self.transport
            .send(request)
            .await
            .map_err(|e| PaymentError::Upstream(format!("{e:#}")))
    }

    /// A refund as WeChat Pay writes it (an answer or a decrypted notification).
    fn refund_status(&self, r: WechatRefund) -> Result<RefundStatus, Refusal> {
        let refund_id = super::refund_of(&r.out_refund_no).ok_or(Refusal::Unrelated)?;
        let status = r.status.or(r.refund_status).ok_or(Refusal::Malformed)?;
        let state = match status.as_str() {
            "SUCCESS" => RefundState::Succeeded,
            "PROCESSING" => RefundState::Processing,
            "CLOSED" => RefundState::Failed("CLOSED: WeChat Pay closed the refund".into()),
            "ABNORMAL" => RefundState::Failed(
                "ABNORMAL: the money could not go back to the buyer's account (WeChat Pay \
                 merchant platform: handle the abnormal refund)"
                    .into(),
            ),
            other => RefundState::Failed(format!("{other}: unknown refund status")),
        };
        Ok(RefundStatus {
            refund_id,
            intent_id: r.out_trade_no.as_deref().and_then(super::intent_of),
            reference: r.refund_id.filter(|r| !r.is_empty()),
            amount: Some(super::from_fen(r.amount.refund)),
            state,
        })
    }

    /// A signed answer's refund, once its signature holds.
    fn refund_answer(
        &self,
        answer: &Answer,
        now: DateTime<Utc>,
    ) -> Result<RefundStatus, PaymentError> {
        self.check_signed(&answer.headers, &answer.body, now)?;
        let refund: WechatRefund =
            serde_json::from_slice(&answer.body).map_err(|_| Refusal::Malformed)?;
        Ok(self.refund_status(refund)?)
    }
}

/// A refund as WeChat Pay's answers (`status`) and notifications (`refund_status`) write it.
#[derive(Deserialize)]
struct WechatRefund {
    #[serde(default)]
    mchid: Option<String>,
    #[serde(default)]
    refund_id: Option<String>,
    out_refund_no: String,
    #[serde(default)]
    out_trade_no: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    refund_status: Option<String>,
    amount: RefundAmount,
}

#[derive(Deserialize)]
struct RefundAmount {
    /// In fen.
    refund: i64,
}

/// An error answer's words: `status code: message`.
fn error_text(answer: &Answer) -> String {
    #[derive(Deserialize)]
    struct Failure {
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Failure>(&answer.body) {
        Ok(f) => format!("{} {}: {}", answer.status, f.code, f.message),
        Err(_) => format!(
            "{}: {}",
            answer.status,
            super::cut(&String::from_utf8_lossy(&answer.body), 200)
        ),
    }
}

/// A notification's body.
#[derive(Deserialize)]
struct Envelope {
    event_type: String,
    resource: Resource,
}

/// The encrypted part of a notification.
#[derive(Deserialize)]
pub struct Resource {
    pub algorithm: String,
    pub ciphertext: String,
    pub nonce: String,
    #[serde(default)]
    pub associated_data: Option<String>,
}

/// The decrypted transaction (the fields we read).
#[derive(Deserialize)]
struct Transaction {
    appid: String,
    mchid: String,
    out_trade_no: String,
    transaction_id: Option<String>,
    trade_state: String,
    success_time: Option<String>,
    amount: TransactionAmount,
}

#[derive(Deserialize)]
struct TransactionAmount {
    /// In fen.
    total: i64,
}

#[async_trait::async_trait]
impl Provider for WechatPay {
    fn channel(&self) -> Channel {
        Channel::WechatJsapi
    }

    async fn create_intent(
        &self,
        request: &IntentRequest<'_>,
    ) -> Result<serde_json::Value, PaymentError> {
        let total = super::to_fen(request.amount)
            .filter(|fen| *fen > 0)
            .ok_or(PaymentError::Invalid("amount"))?;
        let openid = request
            .payer_openid
            .filter(|o| !o.trim().is_empty())
            .ok_or(PaymentError::Invalid("payerOpenid"))?;
        let body = json!({
            "appid": self.config.app_id,
            "mchid": self.config.mch_id,
            "description": super::cut(request.description, DESCRIPTION_MAX),
            "out_trade_no": super::out_trade_no(request.intent_id),
            "time_expire": request
                .expires_at
                .with_timezone(&super::beijing())
                .to_rfc3339_opts(SecondsFormat::Secs, false),
            "notify_url": self.config.notify_url,
            "amount": { "total": total, "currency": "CNY" },
            "payer": { "openid": openid },
        })
        .to_string();
        let timestamp = request.now.timestamp();
        let nonce_str = nonce();
        let authorization = self.authorization("POST", JSAPI_PATH, &body, timestamp, &nonce_str);
        let url = format!("{}{JSAPI_PATH}", self.config.base_url.trim_end_matches('/'));
        let http_request = axum::http::Request::builder()
            .method(Method::POST)
            .uri(&url)
            .header(header::AUTHORIZATION, authorization)
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("pushhand/", env!("CARGO_PKG_VERSION")),
            )
            .header("wechatpay-serial", &self.config.platform_key_id)
            .body(Full::new(Bytes::from(body)))
            .context("building the prepay request")
            .map_err(PaymentError::Internal)?;
        let answer = self
            .transport
            .send(http_request)
            .await
            .map_err(|e| PaymentError::Upstream(format!("{e:#}")))?;
        if answer.status != 200 {
            return Err(PaymentError::Upstream(format!(
                "prepay answered {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            )));
        }
        // The answer is signed too: a prepay id from anyone else would send the buyer to
        // pay them.
        self.check_signed(&answer.headers, &answer.body, request.now)?;
        #[derive(Deserialize)]
        struct Prepay {
            prepay_id: String,
        }
        let prepay: Prepay =
            serde_json::from_slice(&answer.body).map_err(|_| Refusal::Malformed)?;
        Ok(self.request_payment(&prepay.prepay_id, timestamp, &nonce()))
    }

    async fn verify_notice(
        &self,
        notice: Notice<'_>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedPayment, PaymentError> {
        let nonce = self.check_signed(notice.headers, notice.body, now)?;
        let first = self
            .nonces
            .first_seen(&format!("wechat:{nonce}"))
            .await
            .map_err(PaymentError::Internal)?;
        if !first {
            return Err(Refusal::Replayed.into());
        }
        let envelope: Envelope =
            serde_json::from_slice(notice.body).map_err(|_| Refusal::Malformed)?;
        if !envelope.event_type.starts_with("TRANSACTION.") {
            return Err(Refusal::Unrelated.into());
        }
        let plain = self.decrypt(&envelope.resource)?;
        let t: Transaction = serde_json::from_slice(&plain).map_err(|_| Refusal::Malformed)?;
        if t.appid != self.config.app_id {
            return Err(Refusal::AppId.into());
        }
        if t.mchid != self.config.mch_id {
            return Err(Refusal::Merchant.into());
        }
        let intent_id = super::intent_of(&t.out_trade_no).ok_or(Refusal::Unrelated)?;
        let state = match t.trade_state.as_str() {
            "SUCCESS" => TradeState::Paid,
            "NOTPAY" | "USERPAYING" => TradeState::Pending,
            _ => TradeState::Closed,
        };
        let reference = t.transaction_id.unwrap_or_default();
        if state == TradeState::Paid && reference.is_empty() {
            return Err(Refusal::Malformed.into());
        }
        let paid_at = t
            .success_time
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        Ok(VerifiedPayment {
            intent_id,
            reference,
            amount: super::from_fen(t.amount.total),
            state,
            paid_at,
        })
    }

    fn ack(&self) -> Ack {
        Ack {
            status: 204,
            content_type: "application/json",
            body: "",
        }
    }

    fn nack(&self) -> Ack {
        Ack {
            status: 500,
            content_type: "application/json",
            body: r#"{"code":"FAIL","message":"not handled"}"#,
        }
    }

    async fn request_refund(
        &self,
        request: &RefundRequest<'_>,
    ) -> Result<RefundStatus, PaymentError> {
        let refund = super::to_fen(request.amount)
            .filter(|fen| *fen > 0)
            .ok_or(PaymentError::Invalid("amount"))?;
        let total = super::to_fen(request.total)
            .filter(|fen| *fen >= refund)
            .ok_or(PaymentError::Invalid("amount"))?;
        let body = json!({
            "out_trade_no": super::out_trade_no(request.intent_id),
            "out_refund_no": super::out_refund_no(request.refund_id),
            "reason": super::cut(request.reason, REASON_MAX),
            "notify_url": self.refund_notify_url(),
            "amount": { "refund": refund, "total": total, "currency": "CNY" },
        })
        .to_string();
        let answer = self
            .call(Method::POST, REFUNDS_PATH, body, request.now)
            .await?;
        if answer.status != 200 {
            return Err(PaymentError::Upstream(error_text(&answer)));
        }
        self.refund_answer(&answer, request.now)
    }

    async fn query_refund(
        &self,
        request: &RefundRequest<'_>,
    ) -> Result<Option<RefundStatus>, PaymentError> {
        let path = format!("{REFUNDS_PATH}/{}", super::out_refund_no(request.refund_id));
        let answer = self
            .call(Method::GET, &path, String::new(), request.now)
            .await?;
        match answer.status {
            200 => self.refund_answer(&answer, request.now).map(Some),
            404 => Ok(None),
            _ => Err(PaymentError::Upstream(error_text(&answer))),
        }
    }

    async fn verify_refund_notice(
        &self,
        notice: Notice<'_>,
        now: DateTime<Utc>,
    ) -> Result<RefundStatus, PaymentError> {
        let nonce = self.check_signed(notice.headers, notice.body, now)?;
        let first = self
            .nonces
            .first_seen(&format!("wechat:{nonce}"))
            .await
            .map_err(PaymentError::Internal)?;
        if !first {
            return Err(Refusal::Replayed.into());
        }
        let envelope: Envelope =
            serde_json::from_slice(notice.body).map_err(|_| Refusal::Malformed)?;
        if !envelope.event_type.starts_with("REFUND.") {
            return Err(Refusal::Unrelated.into());
        }
        let plain = self.decrypt(&envelope.resource)?;
        let refund: WechatRefund =
            serde_json::from_slice(&plain).map_err(|_| Refusal::Malformed)?;
        if refund.mchid.as_deref() != Some(self.config.mch_id.as_str()) {
            return Err(Refusal::Merchant.into());
        }
        Ok(self.refund_status(refund)?)
    }
}

/// The APIv3 key as configured: exactly 32 bytes of text.
pub fn api_v3_key(text: &str) -> anyhow::Result<[u8; 32]> {
    text.as_bytes()
        .try_into()
        .map_err(|_| anyhow::anyhow!("the APIv3 key must be 32 bytes, got {}", text.len()))
}

/// Encrypts a resource as WeChat Pay does (for fakes and tests): base64 of ciphertext and tag.
pub fn encrypt_resource(
    key: &[u8; 32],
    nonce: &str,
    associated_data: &str,
    plain: &[u8],
) -> String {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(key).expect("a 32-byte key");
    let nonce: [u8; 12] = nonce.as_bytes().try_into().expect("a 12-byte nonce");
    let sealed = cipher
        .encrypt(
            &aes_gcm::Nonce::from(nonce),
            Payload {
                msg: plain,
                aad: associated_data.as_bytes(),
            },
        )
        .expect("AES-GCM encryption of a small message cannot fail");
    B64.encode(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::keys::tests::pair;
    use crate::payments::nonces::MemoryNonces;

    const KEY: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

    fn provider() -> WechatPay {
        let (private, public) = pair();
        WechatPay::new(
            WechatConfig {
                base_url: "http://127.0.0.1:9".into(),
                mch_id: "1900000001".into(),
                app_id: "wx0000000000000001".into(),
                merchant_serial: "SERIAL1".into(),
                merchant_key: PrivateKey::new(private.clone()),
                platform_key_id: "PUB_KEY_ID_1".into(),
                // One pair plays both sides here; the integration tests use two.
                platform_key: PublicKey::new(public.clone()),
                api_v3_key: *KEY,
                notify_url: "http://127.0.0.1/payments/wechat/notify".into(),
            },
            Arc::new(MemoryNonces::new(crate::payments::nonces::REMEMBER_FOR)),
        )
        .unwrap()
    }

    fn signed(p: &WechatPay, body: &str, timestamp: i64, nonce: &str) -> HeaderMap {
        let signature = p
            .config
            .merchant_key
            .sign(format!("{timestamp}\n{nonce}\n{body}\n").as_bytes());
        let mut headers = HeaderMap::new();
        headers.insert(
            "wechatpay-timestamp",
            timestamp.to_string().parse().unwrap(),
        );
        headers.insert("wechatpay-nonce", nonce.parse().unwrap());
        headers.insert("wechatpay-signature", signature.parse().unwrap());
        headers.insert("wechatpay-serial", "PUB_KEY_ID_1".parse().unwrap());
        headers
    }

    fn notification(transaction: serde_json::Value, key: &[u8; 32]) -> String {
        let plain = transaction.to_string();
        json!({
            "id": "EV-1",
            "create_time": "2026-12-02T10:00:00+08:00",
            "event_type": "TRANSACTION.SUCCESS",
            "resource_type": "encrypt-resource",
            "resource": {
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": encrypt_resource(key, "abcdefghijkl", "transaction", plain.as_bytes()),
                "associated_data": "transaction",
                "original_type": "transaction",
                "nonce": "abcdefghijkl",
            },
            "summary": "支付成功",
        })
        .to_string()
    }

    #[test]
    fn the_authorization_header_signs_the_canonical_request() {
        let p = provider();
        let auth = p.authorization("POST", JSAPI_PATH, "{}", 1_700_000_000, "N1");
        let signature = auth
            .split("signature=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap();
        assert!(
            auth.starts_with("WECHATPAY2-SHA256-RSA2048 mchid=\"1900000001\",nonce_str=\"N1\"")
        );
        assert!(auth.ends_with("timestamp=\"1700000000\",serial_no=\"SERIAL1\""));
        let message = format!("POST\n{JSAPI_PATH}\n1700000000\nN1\n{{}}\n");
        assert!(p.config.platform_key.verify(message.as_bytes(), signature));
    }

    #[test]
    fn request_payment_signs_app_time_nonce_and_package() {
        let p = provider();
        let params = p.request_payment("wx201410272009395522657a690389285100", 1_414_561_699, "N2");
        assert_eq!(
            params["package"],
            "prepay_id=wx201410272009395522657a690389285100"
        );
        assert_eq!(params["timeStamp"], "1414561699");
        let message =
            "wx0000000000000001\n1414561699\nN2\nprepay_id=wx201410272009395522657a690389285100\n";
        assert!(
            p.config
                .platform_key
                .verify(message.as_bytes(), params["paySign"].as_str().unwrap())
        );
    }

    #[tokio::test]
    async fn a_notification_is_verified_decrypted_and_read_once() {
        let p = provider();
        let intent = uuid::Uuid::now_v7();
        let now = Utc::now();
        let body = notification(
            json!({
                "appid": "wx0000000000000001", "mchid": "1900000001",
                "out_trade_no": crate::payments::out_trade_no(intent),
                "transaction_id": "4200000001", "trade_state": "SUCCESS",
                "success_time": "2026-12-02T18:00:00+08:00",
                "amount": { "total": 12345, "payer_total": 12345, "currency": "CNY", "payer_currency": "CNY" },
            }),
            KEY,
        );
        let headers = signed(&p, &body, now.timestamp(), "nonce-1");
        let notice = Notice {
            headers: &headers,
            body: body.as_bytes(),
        };
        let paid = p.verify_notice(notice, now).await.unwrap();
        assert_eq!(paid.intent_id, intent);
        assert_eq!(paid.reference, "4200000001");
        assert_eq!(paid.amount.to_string(), "123.45");
        assert_eq!(paid.state, TradeState::Paid);
        assert_eq!(
            paid.paid_at.unwrap().to_rfc3339(),
            "2026-12-02T10:00:00+00:00"
        );
        let again = p.verify_notice(notice, now).await.unwrap_err();
        assert!(
            matches!(again, PaymentError::Refused(Refusal::Replayed)),
            "{again:?}"
        );
    }

    #[tokio::test]
    async fn refusals_name_what_failed() {
        let p = provider();
        let now = Utc::now();
        let tx = |appid: &str, mchid: &str| {
            json!({
                "appid": appid, "mchid": mchid, "out_trade_no": crate::payments::out_trade_no(uuid::Uuid::now_v7()),
                "transaction_id": "42", "trade_state": "SUCCESS", "amount": { "total": 1 },
            })
        };
        let good = notification(tx("wx0000000000000001", "1900000001"), KEY);
        let refusal = |body: String, headers: HeaderMap| {
            let p = &p;
            async move {
                match p
                    .verify_notice(
                        Notice {
                            headers: &headers,
                            body: body.as_bytes(),
                        },
                        now,
                    )
                    .await
                {
                    Err(PaymentError::Refused(r)) => r,
                    other => panic!("not refused: {other:?}"),
                }
            }
        };
        // Tampered body after signing.
        let headers = signed(&p, &good, now.timestamp(), "a");
        assert_eq!(
            refusal(good.replace("EV-1", "EV-2"), headers).await,
            Refusal::Signature
        );
        // Another key's serial.
        let mut headers = signed(&p, &good, now.timestamp(), "b");
        headers.insert("wechatpay-serial", "PUB_KEY_ID_2".parse().unwrap());
        assert_eq!(refusal(good.clone(), headers).await, Refusal::UnknownKey);
        // Stale and future timestamps.
        let headers = signed(&p, &good, now.timestamp() - 301, "c");
        assert_eq!(refusal(good.clone(), headers).await, Refusal::Stale);
        let headers = signed(&p, &good, now.timestamp() + 301, "d");
        assert_eq!(refusal(good.clone(), headers).await, Refusal::Stale);
        // Wrong APIv3 key.
        let other = notification(
            tx("wx0000000000000001", "1900000001"),
            b"fedcba9876543210fedcba9876543210",
        );
        let headers = signed(&p, &other, now.timestamp(), "e");
        assert_eq!(refusal(other, headers).await, Refusal::Ciphertext);
        // Another app, another merchant.
        let other = notification(tx("wx0000000000000002", "1900000001"), KEY);
        let headers = signed(&p, &other, now.timestamp(), "f");
        assert_eq!(refusal(other, headers).await, Refusal::AppId);
        let other = notification(tx("wx0000000000000001", "1900000002"), KEY);
        let headers = signed(&p, &other, now.timestamp(), "g");
        assert_eq!(refusal(other, headers).await, Refusal::Merchant);
        // A missing header.
        let mut headers = signed(&p, &good, now.timestamp(), "h");
        headers.remove("wechatpay-nonce");
        assert_eq!(refusal(good.clone(), headers).await, Refusal::Malformed);
    }

    #[test]
    fn the_api_v3_key_is_32_bytes() {
        assert!(api_v3_key("0123456789abcdef0123456789abcdef").is_ok());
        assert!(api_v3_key("short").is_err());
    }
}
