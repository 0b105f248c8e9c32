//! Alipay, mobile web pay (`alipay.trade.wap.pay`), signed `RSA2`.
//!
//! - A request is its public parameters (`app_id method format charset sign_type timestamp
//!   version notify_url`, `return_url` when set) and `biz_content` (JSON); the signed text is
//!   every non-empty parameter but `sign`, sorted by name, as `name=value` joined by `&`
//!   (values as they are, not URL-encoded); `sign` is its SHA256withRSA by the app's private
//!   key, base64. The page pay is opened by the buyer's browser: the client params are the
//!   gateway, the signed parameters, and the whole URL — nothing is called from the server.
//! - An asynchronous notification is a form post; its signed text is every parameter but
//!   `sign` and `sign_type`, sorted, `name=value` joined by `&` (values decoded), verified
//!   with Alipay's public key. Then `app_id` (and `seller_id`, when configured) must be ours;
//!   `trade_status` `TRADE_SUCCESS`/`TRADE_FINISHED` is paid, `WAIT_BUYER_PAY` pending,
//!   anything else closed; `total_amount` is read exactly (yuan, at most 2 decimals).
//!
//! Alipay sends a notification again (same `notify_id`) until it gets the text `success`,
//! and signs no timestamp or nonce: a repeat is verified again and booked once by the order
//! service's idempotence, not refused.
//!
//! Refunds are server calls (the only ones to Alipay): `alipay.trade.refund` (`out_trade_no
//! refund_amount out_request_no refund_reason`) and `alipay.trade.fastpay.refund.query`
//! (`out_trade_no out_request_no`), signed as above and posted as a form to the API URL —
//! `http://`, an egress proxy that speaks TLS to Alipay, as for WeChat Pay (the server
//! carries no TLS client). The answer `{"<method>_response": {…}, "sign": "…"}` is verified
//! over the exact text of the response object with Alipay's public key before anything in
//! it is believed. `code` `10000` with `fund_change` `Y` is refunded; `N` is taken, and a
//! query says when it is done (`refund_status` `REFUND_SUCCESS`; no refund data: not
//! refunded, a retry under the same `out_request_no` may send it again). Any other `code`
//! is a failure with Alipay's `sub_code`/`sub_msg`. A refund notification (a signed
//! `trade_status_sync` form naming the refund by `out_biz_no`) is verified as a payment's.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use anyhow::Context;
use axum::http::{Method, header};
use bytes::Bytes;
use http_body_util::Full;

use super::keys::{PrivateKey, PublicKey};
use super::transport::Transport;
use super::{
    Ack, Channel, IntentRequest, Notice, PaymentError, Provider, RefundRequest, RefundState,
    RefundStatus, Refusal, TradeState, VerifiedPayment,
};

/// Alipay's production gateway.
pub const GATEWAY: &str = "https://openapi.alipay.com/gateway.do";

/// Alipay's limit on `subject`, in bytes.
const SUBJECT_MAX: usize = 256;

/// Alipay's limit on `refund_reason`, in bytes.
const REASON_MAX: usize = 256;

/// Alipay's date-time format (Beijing time).
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// An app's Alipay settings, keys parsed.
#[derive(Clone, Debug)]
pub struct AlipayConfig {
    pub app_id: String,
    pub app_key: PrivateKey,
    pub alipay_key: PublicKey,
    /// Where the buyer's browser is sent (the gateway).
    pub gateway_url: String,
    /// Our notification URL (`…/payments/alipay/notify`).
    pub notify_url: String,
    /// Where the buyer returns after paying, when set.
    pub return_url: Option<String>,
    /// Our seller id (`seller_id` of notifications), checked when set.
    pub seller_id: Option<String>,
    /// Where the server calls Alipay's API (refunds): `http://`, an egress proxy that
    /// speaks TLS to the gateway; none: refunds fail, saying so.
    pub api_url: Option<String>,
}

/// The Alipay provider.
pub struct Alipay {
    config: AlipayConfig,
    transport: Transport,
}

impl Alipay {
    pub fn new(config: AlipayConfig) -> Alipay {
        Alipay {
            config,
            transport: Transport::default(),
        }
    }

    /// The signed public parameters and `biz_content` of an API call.
    pub fn call_params(
        &self,
        method: &str,
        biz: &serde_json::Value,
        notify_url: Option<&str>,
        now: DateTime<Utc>,
    ) -> BTreeMap<String, String> {
        let mut params = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            params.insert(k.to_owned(), v);
        };
        set("app_id", self.config.app_id.clone());
        set("method", method.into());
        set("format", "JSON".into());
        set("charset", "utf-8".into());
        set("sign_type", "RSA2".into());
        set(
            "timestamp",
            now.with_timezone(&super::beijing())
                .format(TIME_FORMAT)
                .to_string(),
        );
        set("version", "1.0".into());
        if let Some(url) = notify_url {
            set("notify_url", url.to_owned());
        }
        set("biz_content", biz.to_string());
        let sign = self.config.app_key.sign(request_text(&params).as_bytes());
        params.insert("sign".into(), sign);
        params
    }

    /// Calls `method` on the API (refunds, their queries, transfers) and returns its
    /// response object — or the gateway's `error_response`, when that is what came — once
    /// Alipay's signature over the object's exact text holds. An unsigned answer (Alipay
    /// leaves some gateway errors unsigned) is believed in nothing: an upstream error.
    pub(crate) async fn call(
        &self,
        method: &str,
        biz: serde_json::Value,
        notify_url: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, PaymentError> {
        let api = self.config.api_url.as_deref().ok_or_else(|| {
            PaymentError::Upstream(
                "no Alipay API URL is configured (PUSHHAND_ALIPAY_API_URL)".into(),
            )
        })?;
        let params = self.call_params(method, &biz, notify_url, now);
        let form = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let request = axum::http::Request::builder()
            .method(Method::POST)
            .uri(api)
            .header(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=utf-8",
            )
            .header(
                header::USER_AGENT,
                concat!("pushhand/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(form)))
            .context("building the request")
            .map_err(PaymentError::Internal)?;
        let answer = self
            .transport
            .send(request)
            .await
            .map_err(|e| PaymentError::Upstream(format!("{e:#}")))?;
        if answer.status != 200 {
            return Err(PaymentError::Upstream(format!(
                "Alipay answered {}",
                answer.status
            )));
        }
        let text = std::str::from_utf8(&answer.body).map_err(|_| Refusal::Malformed)?;
        let node = format!("{}_response", method.replace('.', "_"));
        let Some((signed, sign)) =
            response_text(text, &node).or_else(|| response_text(text, "error_response"))
        else {
            return Err(PaymentError::Upstream(format!(
                "Alipay answered no signed {node}: {}",
                super::cut(text, 300)
            )));
        };
        if !self.config.alipay_key.verify(signed.as_bytes(), &sign) {
            return Err(Refusal::Signature.into());
        }
        serde_json::from_str(signed).map_err(|_| Refusal::Malformed.into())
    }

    /// Our refund notification URL (`…/payments/alipay/refund-notify`).
    fn refund_notify_url(&self) -> String {
        let url = &self.config.notify_url;
        format!(
            "{}/refund-notify",
            url.strip_suffix("/notify").unwrap_or(url)
        )
    }

    /// A notification's parameters, once its signature, app id and seller hold.
    fn verified_form(&self, body: &[u8]) -> Result<BTreeMap<String, String>, Refusal> {
        let params = form(body)?;
        let get = |k: &str| {
            params
                .get(k)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
                .ok_or(Refusal::Malformed)
        };
        if get("sign_type")? != "RSA2" {
            return Err(Refusal::Malformed);
        }
        if !self
            .config
            .alipay_key
            .verify(notice_text(&params).as_bytes(), get("sign")?)
        {
            return Err(Refusal::Signature);
        }
        if get("app_id")? != self.config.app_id {
            return Err(Refusal::AppId);
        }
        if let Some(seller) = &self.config.seller_id
            && params.get("seller_id") != Some(seller)
        {
            return Err(Refusal::Merchant);
        }
        Ok(params)
    }

    /// The signed request parameters of a WAP pay.
    pub fn wap_pay_params(
        &self,
        request: &IntentRequest<'_>,
    ) -> Result<BTreeMap<String, String>, PaymentError> {
        if super::to_fen(request.amount).filter(|f| *f > 0).is_none() {
            return Err(PaymentError::Invalid("amount"));
        }
        let beijing = super::beijing();
        let biz = json!({
            "out_trade_no": super::out_trade_no(request.intent_id),
            "total_amount": format!("{:.2}", request.amount),
            "subject": super::cut(request.description, SUBJECT_MAX),
            "product_code": "QUICK_WAP_WAY",
            "time_expire": request.expires_at.with_timezone(&beijing).format(TIME_FORMAT).to_string(),
        });
        let mut params = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            params.insert(k.to_owned(), v);
        };
        set("app_id", self.config.app_id.clone());
        set("method", "alipay.trade.wap.pay".into());
        set("format", "JSON".into());
        set("charset", "utf-8".into());
        set("sign_type", "RSA2".into());
        set(
            "timestamp",
            request
                .now
                .with_timezone(&beijing)
                .format(TIME_FORMAT)
                .to_string(),
        );
        set("version", "1.0".into());
        set("notify_url", self.config.notify_url.clone());
        if let Some(url) = &self.config.return_url {
            set("return_url", url.clone());
        }
        set("biz_content", biz.to_string());
        let sign = self.config.app_key.sign(request_text(&params).as_bytes());
        params.insert("sign".into(), sign);
        Ok(params)
    }
}

/// The signed text of a request: non-empty parameters but `sign`, sorted, `k=v&…`.
pub fn request_text(params: &BTreeMap<String, String>) -> String {
    join(
        params
            .iter()
            .filter(|(k, v)| k.as_str() != "sign" && !v.is_empty()),
    )
}

/// The signed text of a notification: every parameter but `sign` and `sign_type`, sorted.
pub fn notice_text(params: &BTreeMap<String, String>) -> String {
    join(
        params
            .iter()
            .filter(|(k, _)| k.as_str() != "sign" && k.as_str() != "sign_type"),
    )
}

fn join<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    let mut text = String::new();
    for (k, v) in pairs {
        if !text.is_empty() {
            text.push('&');
        }
        text.push_str(k);
        text.push('=');
        text.push_str(v);
    }
    text
}

/// A form body's parameters; a name given twice makes it unreadable.
pub fn form(body: &[u8]) -> Result<BTreeMap<String, String>, Refusal> {
    let mut params = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        if params.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(Refusal::Malformed);
        }
    }
    Ok(params)
}

/// The exact text of the response object `node` of an API answer
/// (`{"<node>":{…},"sign":"…"}`) and the signature: Alipay signs the object's text as sent,
/// so it is cut out of the answer, not re-serialized (as Alipay's SDKs do: from after
/// `"<node>":` to the last `,"sign"`).
pub fn response_text<'a>(answer: &'a str, node: &str) -> Option<(&'a str, String)> {
    let key = format!("\"{node}\"");
    let at = answer.find(&key)? + key.len();
    let rest = answer[at..].trim_start().strip_prefix(':')?;
    let end = rest.rfind(",\"sign\"")?;
    let signed = rest[..end].trim();
    #[derive(serde::Deserialize)]
    struct Signed {
        sign: String,
    }
    let sign: Signed = serde_json::from_str(answer).ok()?;
    Some((signed, sign.sign))
}

/// An amount in yuan as Alipay writes it: non-negative, at most 2 decimals, exact.
fn amount(text: &str) -> Option<Decimal> {
    let value: Decimal = text.trim().parse().ok()?;
    super::to_fen(value).map(super::from_fen)
}

#[async_trait::async_trait]
impl Provider for Alipay {
    fn channel(&self) -> Channel {
        Channel::Alipay
    }

    async fn create_intent(
        &self,
        request: &IntentRequest<'_>,
    ) -> Result<serde_json::Value, PaymentError> {
        let params = self.wap_pay_params(request)?;
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let url = format!("{}?{query}", self.config.gateway_url);
        Ok(json!({
            "gatewayUrl": self.config.gateway_url,
            "method": "GET",
            "params": params,
            "url": url,
        }))
    }

    async fn verify_notice(
        &self,
        notice: Notice<'_>,
        _now: DateTime<Utc>,
    ) -> Result<VerifiedPayment, PaymentError> {
        let params = self.verified_form(notice.body)?;
        let get = |k: &str| {
            params
                .get(k)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
                .ok_or(Refusal::Malformed)
        };
        let intent_id = super::intent_of(get("out_trade_no")?).ok_or(Refusal::Unrelated)?;
        let state = match get("trade_status")? {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => TradeState::Paid,
            "WAIT_BUYER_PAY" => TradeState::Pending,
            _ => TradeState::Closed,
        };
        let amount = amount(get("total_amount")?).ok_or(Refusal::Malformed)?;
        let reference = get("trade_no")?.to_owned();
        let paid_at = params
            .get("gmt_payment")
            .and_then(|t| NaiveDateTime::parse_from_str(t, TIME_FORMAT).ok())
            .and_then(|t| t.and_local_timezone(super::beijing()).single())
            .map(|t| t.with_timezone(&Utc));
        Ok(VerifiedPayment {
            intent_id,
            reference,
            amount,
            state,
            paid_at,
        })
    }

    fn ack(&self) -> Ack {
        Ack {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: "success",
        }
    }

    fn nack(&self) -> Ack {
        Ack {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: "failure",
        }
    }

    async fn request_refund(
        &self,
        request: &RefundRequest<'_>,
    ) -> Result<RefundStatus, PaymentError> {
        if super::to_fen(request.amount).filter(|f| *f > 0).is_none() {
            return Err(PaymentError::Invalid("amount"));
        }
        let biz = json!({
            "out_trade_no": super::out_trade_no(request.intent_id),
            "refund_amount": format!("{:.2}", request.amount),
            "out_request_no": super::out_refund_no(request.refund_id),
            "refund_reason": super::cut(request.reason, REASON_MAX),
        });
        let notify = self.refund_notify_url();
        let r = self
            .call("alipay.trade.refund", biz, Some(&notify), request.now)
            .await?;
        let text = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("");
        if text("code") != "10000" {
            return Err(PaymentError::Upstream(format!(
                "{} {}: {}",
                text("code"),
                text("sub_code"),
                text("sub_msg")
            )));
        }
        if text("out_trade_no") != super::out_trade_no(request.intent_id) {
            return Err(Refusal::Unrelated.into());
        }
        Ok(RefundStatus {
            refund_id: request.refund_id,
            intent_id: Some(request.intent_id),
            reference: Some(text("trade_no").to_owned()).filter(|t| !t.is_empty()),
            // `refund_fee` is the trade's refunds together, not this one's.
            amount: None,
            state: if text("fund_change") == "Y" {
                RefundState::Succeeded
            } else {
                RefundState::Processing
            },
        })
    }

    async fn query_refund(
        &self,
        request: &RefundRequest<'_>,
    ) -> Result<Option<RefundStatus>, PaymentError> {
        let no = super::out_refund_no(request.refund_id);
        let biz = json!({
            "out_trade_no": super::out_trade_no(request.intent_id),
            "out_request_no": no,
        });
        let r = self
            .call("alipay.trade.fastpay.refund.query", biz, None, request.now)
            .await?;
        let text = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("");
        if text("code") != "10000" {
            return Err(PaymentError::Upstream(format!(
                "{} {}: {}",
                text("code"),
                text("sub_code"),
                text("sub_msg")
            )));
        }
        if text("refund_status") != "REFUND_SUCCESS" {
            return Ok(None);
        }
        if text("out_request_no") != no {
            return Err(Refusal::Unrelated.into());
        }
        Ok(Some(RefundStatus {
            refund_id: request.refund_id,
            intent_id: Some(request.intent_id),
            reference: Some(text("trade_no").to_owned()).filter(|t| !t.is_empty()),
            amount: Some(amount(text("refund_amount")).ok_or(Refusal::Malformed)?),
            state: RefundState::Succeeded,
        }))
    }

    async fn verify_refund_notice(
        &self,
        notice: Notice<'_>,
        _now: DateTime<Utc>,
    ) -> Result<RefundStatus, PaymentError> {
        let params = self.verified_form(notice.body)?;
        let get = |k: &str| {
            params
                .get(k)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
                .ok_or(Refusal::Malformed)
        };
        let refund_id = super::refund_of(get("out_biz_no")?).ok_or(Refusal::Unrelated)?;
        let intent_id = super::intent_of(get("out_trade_no")?).ok_or(Refusal::Unrelated)?;
        // `refund_fee` is the trade's refunds together: read, not matched to this refund.
        amount(get("refund_fee")?).ok_or(Refusal::Malformed)?;
        get("gmt_refund")?;
        Ok(RefundStatus {
            refund_id,
            intent_id: Some(intent_id),
            reference: params.get("trade_no").cloned(),
            amount: None,
            state: RefundState::Succeeded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::keys::tests::pair;

    fn provider() -> Alipay {
        let (private, public) = pair();
        Alipay::new(AlipayConfig {
            app_id: "2021000000000001".into(),
            app_key: PrivateKey::new(private.clone()),
            // One pair plays both sides here; the integration tests use two.
            alipay_key: PublicKey::new(public.clone()),
            gateway_url: "http://127.0.0.1:9/gateway.do".into(),
            notify_url: "http://127.0.0.1/payments/alipay/notify".into(),
            return_url: None,
            seller_id: Some("2088000000000001".into()),
            api_url: None,
        })
    }

    fn notice_body(p: &Alipay, params: &[(&str, &str)]) -> String {
        let mut map: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        map.insert("sign_type".into(), "RSA2".into());
        let sign = p.config.app_key.sign(notice_text(&map).as_bytes());
        map.insert("sign".into(), sign);
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(map.iter())
            .finish()
    }

    #[test]
    fn an_answer_is_verified_over_the_exact_text_of_its_response_object() {
        let p = provider();
        let object = r#"{"code":"10000","msg":"Success","fund_change":"Y","refund_fee":"88.80"}"#;
        let sign = p.config.app_key.sign(object.as_bytes());
        let answer = format!(r#"{{"alipay_trade_refund_response":{object},"sign":"{sign}"}}"#);
        let (text, signature) = response_text(&answer, "alipay_trade_refund_response").unwrap();
        assert_eq!(text, object);
        assert!(p.config.alipay_key.verify(text.as_bytes(), &signature));
        assert!(response_text(&answer, "alipay_trade_query_response").is_none());
        let unsigned = r#"{"error_response":{"code":"40002","msg":"Invalid Arguments"}}"#;
        assert!(response_text(unsigned, "alipay_trade_refund_response").is_none());
    }

    #[test]
    fn the_request_text_is_sorted_and_skips_sign_and_empty_values() {
        let params: BTreeMap<String, String> = [("b", "2"), ("a", "1"), ("sign", "x"), ("c", "")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(request_text(&params), "a=1&b=2");
        assert_eq!(notice_text(&params), "a=1&b=2&c=");
    }

    #[tokio::test]
    async fn wap_pay_params_are_signed_over_the_sorted_text() {
        let p = provider();
        let intent = uuid::Uuid::now_v7();
        let now = Utc::now();
        let request = IntentRequest {
            intent_id: intent,
            amount: "88.8".parse().unwrap(),
            description: "测试商品",
            expires_at: now,
            payer_openid: None,
            now,
        };
        let params = p.wap_pay_params(&request).unwrap();
        let biz: serde_json::Value = serde_json::from_str(&params["biz_content"]).unwrap();
        assert_eq!(biz["total_amount"], "88.80");
        assert_eq!(biz["out_trade_no"], crate::payments::out_trade_no(intent));
        let (_, public) = pair();
        assert!(
            PublicKey::new(public.clone())
                .verify(request_text(&params).as_bytes(), &params["sign"])
        );
        let client = p.create_intent(&request).await.unwrap();
        assert!(
            client["url"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:9/gateway.do?")
        );
    }

    #[tokio::test]
    async fn notifications_are_verified_and_checked() {
        let p = provider();
        let intent = crate::payments::out_trade_no(uuid::Uuid::now_v7());
        let base = |app: &'static str, amount: &'static str, status: &'static str| {
            vec![
                ("app_id", app),
                ("notify_type", "trade_status_sync"),
                ("trade_no", "2026120222001"),
                ("out_trade_no", intent.as_str()),
                ("trade_status", status),
                ("total_amount", amount),
                ("seller_id", "2088000000000001"),
                ("gmt_payment", "2026-12-02 18:00:00"),
                ("subject", "测试 & 商品"),
            ]
        };
        let body = notice_body(&p, &base("2021000000000001", "88.80", "TRADE_SUCCESS"));
        let headers = HeaderMap::new();
        let verify = |body: String| {
            let p = &p;
            let headers = &headers;
            async move {
                p.verify_notice(
                    Notice {
                        headers,
                        body: body.as_bytes(),
                    },
                    Utc::now(),
                )
                .await
            }
        };
        let paid = verify(body.clone()).await.unwrap();
        assert_eq!(paid.amount.to_string(), "88.80");
        assert_eq!(paid.reference, "2026120222001");
        assert_eq!(paid.state, TradeState::Paid);
        assert_eq!(
            paid.paid_at.unwrap().to_rfc3339(),
            "2026-12-02T10:00:00+00:00"
        );
        // A repeat is believed again: booking is idempotent, Alipay repeats until `success`.
        assert!(verify(body.clone()).await.is_ok());
        let refused = |r: Result<VerifiedPayment, PaymentError>| match r {
            Err(PaymentError::Refused(r)) => r,
            other => panic!("not refused: {other:?}"),
        };
        assert_eq!(
            refused(verify(body.replace("88.80", "0.01")).await),
            Refusal::Signature
        );
        let other_app = notice_body(&p, &base("2021000000000002", "88.80", "TRADE_SUCCESS"));
        assert_eq!(refused(verify(other_app).await), Refusal::AppId);
        let pending = notice_body(&p, &base("2021000000000001", "88.80", "WAIT_BUYER_PAY"));
        assert_eq!(verify(pending).await.unwrap().state, TradeState::Pending);
        let fraction = notice_body(&p, &base("2021000000000001", "88.805", "TRADE_SUCCESS"));
        assert_eq!(refused(verify(fraction).await), Refusal::Malformed);
    }

    use axum::http::HeaderMap;
}
