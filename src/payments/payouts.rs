//! Payouts of withdrawals behind one trait, [`Payout`]: a transfer started for a withdrawal,
//! its state asked again (query), and the provider's notification that it ended.
//!
//! | channel | transfer | confirmed by |
//! |---|---|---|
//! | `WECHAT` ([`WechatTransfer`]) | WeChat Pay 商家转账 `POST /v3/fund-app/mch-transfer/transfer-bills` to the member's balance (零钱), by openid | the signed, AES-GCM notification `MCHTRANSFER.BILL.FINISHED` at `POST /payouts/wechat/notify`, or the query `GET …/transfer-bills/out-bill-no/{out_bill_no}` |
//! | `ALIPAY` ([`AlipayTransfer`]) | `alipay.fund.trans.uni.transfer` (`TRANS_ACCOUNT_NO_PWD`, `DIRECT_TRANSFER`), RSA2-signed, its answer verified | its answer, or `alipay.fund.trans.common.query` |
//! | `MANUAL` ([`Manual`]) | nothing: an admin pays the bank card | the admin's `markPayoutPaid` / `markPayoutFailed` |
//!
//! The provider's number of a transfer (`out_bill_no`, `out_biz_no`) is the withdrawal's id
//! (32 hex digits), fixed: a retry or a re-sent transfer names the same one, and the provider
//! pays it once. Only verified answers change a withdrawal: a failure returns the funds, so a
//! forged one would pay twice. An answer that is not understood, an error status, or a
//! timeout leaves the payout `PROCESSING` (the query settles it later).

use std::sync::Arc;

use anyhow::bail;
use axum::http::Method;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::alipay::{Alipay, AlipayConfig};
use super::nonces::NonceStore;
use super::transport::Answer;
use super::wechat::{Resource, WechatConfig, WechatPay};
use super::{Ack, Notice, PaymentError, Refusal};
use crate::config::{PaymentSettings, required, text};

/// How a withdrawal is paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PayoutChannel {
    /// WeChat Pay transfer to the member's WeChat balance (an openid under our app id).
    Wechat,
    /// Alipay transfer to the member's Alipay account.
    Alipay,
    /// An admin pays the member's bank card and records the bank's reference.
    Manual,
}

impl PayoutChannel {
    pub const ALL: [PayoutChannel; 3] = [
        PayoutChannel::Wechat,
        PayoutChannel::Alipay,
        PayoutChannel::Manual,
    ];

    /// The stored (and API) name.
    pub fn code(self) -> &'static str {
        match self {
            PayoutChannel::Wechat => "WECHAT",
            PayoutChannel::Alipay => "ALIPAY",
            PayoutChannel::Manual => "MANUAL",
        }
    }

    pub fn parse(code: &str) -> Option<PayoutChannel> {
        PayoutChannel::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// The provider's number of a withdrawal's transfer (`out_bill_no`, `out_biz_no`).
pub fn out_bill_no(withdrawal: Uuid) -> String {
    withdrawal.simple().to_string()
}

/// What a transfer pays.
#[derive(Clone, Debug)]
pub struct Transfer<'a> {
    pub withdrawal_id: Uuid,
    /// In CNY, at most 2 decimals: the withdrawal's amount less its fee.
    pub amount: Decimal,
    /// The payee (openid, Alipay account).
    pub account: &'a str,
    /// The payee's real name, when known.
    pub holder: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// Where a transfer stands at the provider, as a verified answer says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayoutState {
    /// Paid; the provider's transfer number.
    Paid { reference: String },
    /// Failed for good (the provider will not pay it): the funds may return.
    Failed {
        reference: Option<String>,
        reason: String,
    },
    /// Under way; `client_params` is what the member's client needs to confirm a WeChat
    /// transfer (`wx.requestMerchantTransfer`), when WeChat waits for it.
    Processing {
        reference: Option<String>,
        client_params: Option<serde_json::Value>,
    },
    /// The provider has no transfer of this number: it was never created (safe to send).
    NotFound,
}

/// What a verified payout notification proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutNotice {
    pub withdrawal_id: Uuid,
    /// In CNY, when the notification says.
    pub amount: Option<Decimal>,
    pub state: PayoutState,
}

/// One payout channel.
#[async_trait::async_trait]
pub trait Payout: Send + Sync {
    fn channel(&self) -> PayoutChannel;

    /// Starts (or, with the same number, re-sends) a transfer.
    async fn transfer(&self, t: &Transfer<'_>) -> Result<PayoutState, PaymentError>;

    /// Asks where the transfer stands.
    async fn query(&self, t: &Transfer<'_>) -> Result<PayoutState, PaymentError>;

    /// Verifies a notification of the channel's provider.
    async fn verify_notice(
        &self,
        _notice: Notice<'_>,
        _now: DateTime<Utc>,
    ) -> Result<PayoutNotice, PaymentError> {
        Err(Refusal::Unrelated.into())
    }

    /// The answer once a notification is handled.
    fn ack(&self) -> Ack {
        Ack {
            status: 204,
            content_type: "application/json",
            body: "",
        }
    }

    /// The answer when it could not be: the provider sends it again.
    fn nack(&self) -> Ack {
        Ack {
            status: 500,
            content_type: "application/json",
            body: r#"{"code":"FAIL","message":"not handled"}"#,
        }
    }
}

/// `MANUAL`: nothing is sent; the payout stays `PROCESSING` until an admin records it.
pub struct Manual;

#[async_trait::async_trait]
impl Payout for Manual {
    fn channel(&self) -> PayoutChannel {
        PayoutChannel::Manual
    }

    async fn transfer(&self, _t: &Transfer<'_>) -> Result<PayoutState, PaymentError> {
        Ok(PayoutState::Processing {
            reference: None,
            client_params: None,
        })
    }

    async fn query(&self, _t: &Transfer<'_>) -> Result<PayoutState, PaymentError> {
        Ok(PayoutState::Processing {
            reference: None,
            client_params: None,
        })
    }
}

/// The enabled payout channels (`MANUAL` always).
#[derive(Clone, Default)]
pub struct Payouts {
    wechat: Option<Arc<dyn Payout>>,
    alipay: Option<Arc<dyn Payout>>,
}

impl Payouts {
    /// Builds the enabled channels from the payment settings (keys read again from their
    /// files, as the payment providers do).
    pub fn from_config(
        settings: &PaymentSettings,
        nonces: Arc<dyn NonceStore>,
    ) -> anyhow::Result<Payouts> {
        let mut payouts = Payouts::default();
        if settings.wechat_payouts_enabled {
            let transfer = WechatTransfer::new(
                settings.wechat_config()?,
                settings.wechat_transfer_scene_id.trim().to_owned(),
                settings.payout_notify_url("wechat")?,
                nonces,
            )?;
            payouts.insert(Arc::new(transfer));
        }
        if settings.alipay_payouts_enabled {
            let api = required(
                text(&settings.alipay_api_url),
                "PUSHHAND_ALIPAY_API_URL",
                "PUSHHAND_ALIPAY_PAYOUTS_ENABLED",
            )?;
            payouts.insert(Arc::new(AlipayTransfer::new(
                settings.alipay_config()?,
                api.to_owned(),
            )?));
        }
        Ok(payouts)
    }

    /// Adds (or replaces) a provider's channel.
    pub fn insert(&mut self, payout: Arc<dyn Payout>) {
        match payout.channel() {
            PayoutChannel::Wechat => self.wechat = Some(payout),
            PayoutChannel::Alipay => self.alipay = Some(payout),
            PayoutChannel::Manual => {}
        }
    }

    /// The channel, when enabled (`MANUAL` always is).
    pub fn get(&self, channel: PayoutChannel) -> Option<Arc<dyn Payout>> {
        match channel {
            PayoutChannel::Wechat => self.wechat.clone(),
            PayoutChannel::Alipay => self.alipay.clone(),
            PayoutChannel::Manual => Some(Arc::new(Manual)),
        }
    }
}

impl PaymentSettings {
    /// Checks the payout settings (called by [`PaymentSettings::check`]).
    pub(crate) fn check_payouts(&self) -> anyhow::Result<()> {
        if self.wechat_payouts_enabled {
            if !self.wechat_enabled {
                bail!("PUSHHAND_WECHATPAY_PAYOUTS_ENABLED needs PUSHHAND_WECHATPAY_ENABLED");
            }
            if self.wechat_transfer_scene_id.trim().is_empty() {
                bail!("PUSHHAND_WECHATPAY_TRANSFER_SCENE_ID must not be empty");
            }
        }
        if self.alipay_payouts_enabled {
            if !self.alipay_enabled {
                bail!("PUSHHAND_ALIPAY_PAYOUTS_ENABLED needs PUSHHAND_ALIPAY_ENABLED");
            }
            let api = required(
                text(&self.alipay_api_url),
                "PUSHHAND_ALIPAY_API_URL",
                "PUSHHAND_ALIPAY_PAYOUTS_ENABLED",
            )?;
            if !api.starts_with("http://") {
                bail!(
                    "PUSHHAND_ALIPAY_API_URL must be an http:// URL (an egress proxy that speaks TLS to Alipay): the server carries no TLS client"
                );
            }
        }
        Ok(())
    }

    /// `<base>/payouts/<provider>/notify`.
    pub(crate) fn payout_notify_url(&self, provider: &str) -> anyhow::Result<String> {
        let url = self.notify_url(provider, "PUSHHAND_WECHATPAY_PAYOUTS_ENABLED")?;
        Ok(url.replacen("/payments/", "/payouts/", 1))
    }
}

// ---------------------------------------------------------------------------------------
// WeChat Pay: 商家转账 (transfer-bills, the user-confirmation mode of 2025).

/// Starts a transfer.
pub const TRANSFER_PATH: &str = "/v3/fund-app/mch-transfer/transfer-bills";

/// WeChat Pay's limit on `transfer_remark`, in characters.
const REMARK_MAX_CHARS: usize = 32;

/// From this amount on WeChat needs the payee's real name (`user_name`, RSA-OAEP encrypted
/// with the WeChat Pay public key): a transfer without one is refused before it is sent.
pub const WECHAT_NAME_REQUIRED_FROM: Decimal = Decimal::from_parts(2000, 0, 0, false, 0);

/// Transfers to members' WeChat balances.
pub struct WechatTransfer {
    pay: WechatPay,
    config: WechatConfig,
    scene_id: String,
    notify_url: String,
    nonces: Arc<dyn NonceStore>,
}

/// A transfer bill as WeChat answers it (transfer, query) or notifies it.
#[derive(Deserialize)]
struct Bill {
    out_bill_no: String,
    #[serde(default)]
    transfer_bill_no: Option<String>,
    state: String,
    #[serde(default)]
    fail_reason: Option<String>,
    #[serde(default)]
    package_info: Option<String>,
    /// In fen (query and notification).
    #[serde(default)]
    transfer_amount: Option<i64>,
    /// The notification's merchant (`mch_id`); the query's is `mchid`.
    #[serde(default, alias = "mchid")]
    mch_id: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    event_type: String,
    resource: Resource,
}

impl WechatTransfer {
    pub fn new(
        config: WechatConfig,
        scene_id: String,
        notify_url: String,
        nonces: Arc<dyn NonceStore>,
    ) -> anyhow::Result<WechatTransfer> {
        let pay = WechatPay::new(config.clone(), nonces.clone())?;
        Ok(WechatTransfer {
            pay,
            config,
            scene_id,
            notify_url,
            nonces,
        })
    }

    /// Reads a 200 answer's bill, its signature verified first.
    fn bill(&self, answer: &Answer, t: &Transfer<'_>) -> Result<PayoutState, PaymentError> {
        self.pay
            .check_signed(&answer.headers, &answer.body, t.now)?;
        let bill: Bill = serde_json::from_slice(&answer.body).map_err(|_| Refusal::Malformed)?;
        if bill.out_bill_no != out_bill_no(t.withdrawal_id) {
            return Err(Refusal::Unrelated.into());
        }
        if let Some(fen) = bill.transfer_amount
            && Some(fen) != super::to_fen(t.amount)
        {
            return Err(PaymentError::Upstream(format!(
                "the transfer is of {fen} fen, not {}",
                t.amount
            )));
        }
        Ok(self.state_of(bill))
    }

    fn state_of(&self, bill: Bill) -> PayoutState {
        match bill.state.as_str() {
            "SUCCESS" => PayoutState::Paid {
                reference: bill.transfer_bill_no.unwrap_or_default(),
            },
            "FAIL" | "CANCELLED" => PayoutState::Failed {
                reason: bill.fail_reason.unwrap_or_else(|| bill.state.clone()),
                reference: bill.transfer_bill_no,
            },
            // ACCEPTED, PROCESSING, WAIT_USER_CONFIRM, TRANSFERING, CANCELING.
            _ => PayoutState::Processing {
                client_params: bill.package_info.map(|package| {
                    json!({
                        "mchId": self.config.mch_id,
                        "appId": self.config.app_id,
                        "package": package,
                    })
                }),
                reference: bill.transfer_bill_no,
            },
        }
    }
}

/// A WeChat error answer's `code` and `message`.
fn wechat_error(answer: &Answer) -> (String, String) {
    #[derive(Deserialize, Default)]
    struct Error {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let e: Error = serde_json::from_slice(&answer.body).unwrap_or_default();
    (e.code, e.message)
}

#[async_trait::async_trait]
impl Payout for WechatTransfer {
    fn channel(&self) -> PayoutChannel {
        PayoutChannel::Wechat
    }

    async fn transfer(&self, t: &Transfer<'_>) -> Result<PayoutState, PaymentError> {
        let fen = super::to_fen(t.amount)
            .filter(|f| *f > 0)
            .ok_or(PaymentError::Invalid("amount"))?;
        let user_name = if t.amount >= WECHAT_NAME_REQUIRED_FROM {
            let name = t.holder.ok_or(PaymentError::Invalid("holder"))?;
            Some(
                self.config
                    .platform_key
                    .encrypt_oaep_sha1(name.as_bytes())
                    .map_err(PaymentError::Internal)?,
            )
        } else {
            None
        };
        let remark: String = "推广佣金提现".chars().take(REMARK_MAX_CHARS).collect();
        let mut body = json!({
            "appid": self.config.app_id,
            "out_bill_no": out_bill_no(t.withdrawal_id),
            "transfer_scene_id": self.scene_id,
            "openid": t.account,
            "transfer_amount": fen,
            "transfer_remark": remark,
            "notify_url": self.notify_url,
            "user_recv_perception": "劳务报酬",
            "transfer_scene_report_infos": [
                { "info_type": "岗位类型", "info_content": "推广员" },
                { "info_type": "报酬说明", "info_content": "推广佣金" },
            ],
        });
        if let Some(sealed) = user_name {
            // Read with the key `Wechatpay-Serial` names (every request sends it).
            body["user_name"] = json!(sealed);
        }
        let body = body.to_string();
        let answer = self
            .pay
            .call(Method::POST, TRANSFER_PATH, body, t.now)
            .await?;
        if answer.status != 200 {
            let (code, message) = wechat_error(&answer);
            return Err(PaymentError::Upstream(format!(
                "transfer answered {}: {code} {message}",
                answer.status
            )));
        }
        self.bill(&answer, t)
    }

    async fn query(&self, t: &Transfer<'_>) -> Result<PayoutState, PaymentError> {
        let path = format!(
            "{TRANSFER_PATH}/out-bill-no/{}",
            out_bill_no(t.withdrawal_id)
        );
        let answer = self
            .pay
            .call(Method::GET, &path, String::new(), t.now)
            .await?;
        if answer.status == 404 {
            // Not believed for more than "send it": a re-sent transfer has the same number,
            // which WeChat pays at most once.
            let (code, _) = wechat_error(&answer);
            if code == "NOT_FOUND" {
                return Ok(PayoutState::NotFound);
            }
        }
        if answer.status != 200 {
            let (code, message) = wechat_error(&answer);
            return Err(PaymentError::Upstream(format!(
                "query answered {}: {code} {message}",
                answer.status
            )));
        }
        self.bill(&answer, t)
    }

    async fn verify_notice(
        &self,
        notice: Notice<'_>,
        now: DateTime<Utc>,
    ) -> Result<PayoutNotice, PaymentError> {
        let nonce = self.pay.check_signed(notice.headers, notice.body, now)?;
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
        if !envelope.event_type.starts_with("MCHTRANSFER.BILL.") {
            return Err(Refusal::Unrelated.into());
        }
        let plain = self.pay.decrypt(&envelope.resource)?;
        let bill: Bill = serde_json::from_slice(&plain).map_err(|_| Refusal::Malformed)?;
        if bill.mch_id.as_deref() != Some(self.config.mch_id.as_str()) {
            return Err(Refusal::Merchant.into());
        }
        let withdrawal_id = super::intent_of(&bill.out_bill_no).ok_or(Refusal::Unrelated)?;
        let amount = bill.transfer_amount.map(super::from_fen);
        Ok(PayoutNotice {
            withdrawal_id,
            amount,
            state: self.state_of(bill),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Alipay: alipay.fund.trans.uni.transfer.

/// The transfer method.
pub const ALIPAY_TRANSFER: &str = "alipay.fund.trans.uni.transfer";
/// The query method.
pub const ALIPAY_QUERY: &str = "alipay.fund.trans.common.query";

/// Alipay's answer codes (`sub_code`) that say the transfer will never be paid.
const ALIPAY_FINAL_FAILURES: [&str; 8] = [
    "PAYEE_NOT_EXIST",
    "PAYEE_USER_INFO_ERROR",
    "PAYEE_ACC_OCUPIED",
    "PAYEE_ACCOUNT_STATUS_ERROR",
    "PAYEE_CERT_INFO_ERROR",
    "PERMIT_NON_BANK_LIMIT_PAYEE",
    "PAYEE_ACCOUNT_NOT_EXSIT",
    "EXCEED_LIMIT_PERSONAL_SM_AMOUNT",
];

/// Transfers to members' Alipay accounts: calls through the payment provider's signed
/// gateway call ([`Alipay::call`]), with the transfer API's address.
pub struct AlipayTransfer {
    alipay: Alipay,
}

impl AlipayTransfer {
    pub fn new(mut config: AlipayConfig, api_url: String) -> anyhow::Result<AlipayTransfer> {
        if !api_url.starts_with("http://") {
            bail!("the Alipay API URL must be http:// (an egress proxy that speaks TLS)");
        }
        config.api_url = Some(api_url);
        Ok(AlipayTransfer {
            alipay: Alipay::new(config),
        })
    }

    /// Calls `method`, verifies the answer's signature, and returns its response object.
    async fn call(
        &self,
        method: &str,
        biz: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Value, PaymentError> {
        self.alipay
            .call(method, biz, None, now)
            .await
            .map(serde_json::Value::Object)
    }
}

fn field<'a>(v: &'a serde_json::Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(|x| x.as_str()).filter(|s| !s.is_empty())
}

/// The payee of a transfer: a `2088…` user id, else a logon id (phone or email).
fn payee(account: &str, holder: Option<&str>) -> serde_json::Value {
    let user_id = account.len() == 16
        && account.starts_with("2088")
        && account.bytes().all(|b| b.is_ascii_digit());
    let mut payee = json!({
        "identity": account,
        "identity_type": if user_id { "ALIPAY_USER_ID" } else { "ALIPAY_LOGON_ID" },
    });
    if let Some(name) = holder {
        payee["name"] = json!(name);
    }
    payee
}

#[async_trait::async_trait]
impl Payout for AlipayTransfer {
    fn channel(&self) -> PayoutChannel {
        PayoutChannel::Alipay
    }

    async fn transfer(&self, t: &Transfer<'_>) -> Result<PayoutState, PaymentError> {
        if super::to_fen(t.amount).filter(|f| *f > 0).is_none() {
            return Err(PaymentError::Invalid("amount"));
        }
        let biz = json!({
            "out_biz_no": out_bill_no(t.withdrawal_id),
            "trans_amount": format!("{:.2}", t.amount),
            "product_code": "TRANS_ACCOUNT_NO_PWD",
            "biz_scene": "DIRECT_TRANSFER",
            "order_title": "推广佣金提现",
            "payee_info": payee(t.account, t.holder),
            "remark": "推广佣金提现",
        });
        let r = self.call(ALIPAY_TRANSFER, biz, t.now).await?;
        if field(&r, "out_biz_no").is_some_and(|n| n != out_bill_no(t.withdrawal_id)) {
            return Err(Refusal::Unrelated.into());
        }
        let reference = field(&r, "order_id").map(str::to_owned);
        if field(&r, "code") != Some("10000") {
            let sub = field(&r, "sub_code").unwrap_or("");
            let message = format!(
                "{} {sub} {}",
                field(&r, "code").unwrap_or(""),
                field(&r, "sub_msg").or(field(&r, "msg")).unwrap_or("")
            );
            if ALIPAY_FINAL_FAILURES.contains(&sub) {
                return Ok(PayoutState::Failed {
                    reference,
                    reason: message.trim().to_owned(),
                });
            }
            return Err(PaymentError::Upstream(message.trim().to_owned()));
        }
        Ok(alipay_state(&r, reference))
    }

    async fn query(&self, t: &Transfer<'_>) -> Result<PayoutState, PaymentError> {
        let biz = json!({
            "out_biz_no": out_bill_no(t.withdrawal_id),
            "product_code": "TRANS_ACCOUNT_NO_PWD",
            "biz_scene": "DIRECT_TRANSFER",
        });
        let r = self.call(ALIPAY_QUERY, biz, t.now).await?;
        if field(&r, "code") != Some("10000") {
            let sub = field(&r, "sub_code").unwrap_or("");
            if sub == "ORDER_NOT_EXIST" {
                return Ok(PayoutState::NotFound);
            }
            return Err(PaymentError::Upstream(format!(
                "query: {} {sub}",
                field(&r, "code").unwrap_or("")
            )));
        }
        if field(&r, "out_biz_no").is_some_and(|n| n != out_bill_no(t.withdrawal_id)) {
            return Err(Refusal::Unrelated.into());
        }
        if let Some(amount) = field(&r, "trans_amount")
            && amount.parse::<Decimal>().ok() != Some(t.amount)
        {
            return Err(PaymentError::Upstream(format!(
                "the transfer is of {amount}, not {}",
                t.amount
            )));
        }
        Ok(alipay_state(&r, field(&r, "order_id").map(str::to_owned)))
    }
}

fn alipay_state(r: &serde_json::Value, reference: Option<String>) -> PayoutState {
    match field(r, "status") {
        Some("SUCCESS") => PayoutState::Paid {
            reference: reference.unwrap_or_default(),
        },
        // REFUND: paid, then returned by the payee's side (退票): the money is back with us.
        Some(s @ ("FAIL" | "CLOSED" | "REFUND")) => PayoutState::Failed {
            reason: field(r, "fail_reason").unwrap_or(s).to_owned(),
            reference,
        },
        _ => PayoutState::Processing {
            reference,
            client_params: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_bill_no_is_32_alphanumerics() {
        let id = Uuid::now_v7();
        let no = out_bill_no(id);
        assert_eq!(no.len(), 32);
        assert!(no.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(crate::payments::intent_of(&no), Some(id));
    }

    #[test]
    fn payees_are_user_ids_or_logon_ids() {
        assert_eq!(
            payee("2088000000000001", None)["identity_type"],
            "ALIPAY_USER_ID"
        );
        let p = payee("13800000000", Some("张三"));
        assert_eq!(p["identity_type"], "ALIPAY_LOGON_ID");
        assert_eq!(p["name"], "张三");
    }
}
