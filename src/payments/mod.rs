//! Payment providers behind one trait: opening a payment at the provider for an order (what
//! the client SDK needs to pay), and verifying the provider's notification that it was paid.
//!
//! | channel | opens a payment | notification verified by |
//! |---|---|---|
//! | `WECHAT_JSAPI` ([`wechat`]) | signed JSAPI prepay call → `wx.requestPayment` params | platform key (SHA256withRSA), 5-minute timestamp window, nonce never seen, AES-256-GCM resource |
//! | `ALIPAY` ([`alipay`]) | signed `alipay.trade.wap.pay` URL and form (no server call) | Alipay's public key (RSA2), app id, exact amount |
//! | `SANDBOX` ([`sandbox`]) | a URL the developer posts to | HMAC-SHA256 with a key made at start; never in production |
//!
//! A provider only says what a notification proves (which payment, whose reference, how
//! much, in which state); booking it is the order service's, which is idempotent. Every
//! refusal is a [`Refusal`] naming what failed, so tests (and logs) tell a forged signature
//! from a stale one. Refunds go the same way: a request with our refund number, the
//! provider's answer verified, then its notification or a query. Keys come from configuration ([`settings`]), are parsed at start, and
//! never from the repository. The protocol notes, and which behaviours are tested against
//! local fakes: `docs/payments.md`.

pub mod alipay;
pub mod keys;
pub mod nonces;
pub mod payouts;
pub mod reconcile;
pub mod sandbox;
pub mod settings;
pub mod transport;
pub mod wechat;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

pub use crate::config::PaymentSettings;

/// How a buyer pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// WeChat Pay API v3, JSAPI (official account pages and mini-programs).
    WechatJsapi,
    /// Alipay, mobile web (`alipay.trade.wap.pay`).
    Alipay,
    /// The development stand-in: no provider account, refused in production.
    Sandbox,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::WechatJsapi, Channel::Alipay, Channel::Sandbox];

    /// The API's name of the channel.
    pub fn code(self) -> &'static str {
        match self {
            Channel::WechatJsapi => "WECHAT_JSAPI",
            Channel::Alipay => "ALIPAY",
            Channel::Sandbox => "SANDBOX",
        }
    }

    /// The `{provider}` of `POST /payments/{provider}/notify`.
    pub fn path(self) -> &'static str {
        match self {
            Channel::WechatJsapi => "wechat",
            Channel::Alipay => "alipay",
            Channel::Sandbox => "sandbox",
        }
    }

    pub fn from_path(path: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.path() == path)
    }

    /// The channel of an API name (`WECHAT_JSAPI`…), as intents store it.
    pub fn from_code(code: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// What a provider needs to open a payment.
#[derive(Clone, Debug)]
pub struct IntentRequest<'a> {
    /// Our id of the payment; its 32 hex digits are the provider's `out_trade_no`.
    pub intent_id: Uuid,
    /// In CNY, at most 2 decimal places.
    pub amount: Decimal,
    /// Shown to the buyer by the provider (cut to the provider's limit).
    pub description: &'a str,
    /// The provider closes the payment after this.
    pub expires_at: DateTime<Utc>,
    /// The payer's openid under our app id (WeChat JSAPI requires it).
    pub payer_openid: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// The provider's `out_trade_no` of an intent: its 32 hex digits (WeChat allows 6–32
/// characters of `[0-9A-Za-z_-|*]`, Alipay 64).
pub fn out_trade_no(intent_id: Uuid) -> String {
    intent_id.simple().to_string()
}

/// The intent an `out_trade_no` names, if it is one of ours.
pub fn intent_of(out_trade_no: &str) -> Option<Uuid> {
    if out_trade_no.len() != 32 {
        return None;
    }
    Uuid::try_parse(out_trade_no).ok()
}

/// A notification as it arrived: the signatures cover the body's exact bytes.
#[derive(Clone, Copy, Debug)]
pub struct Notice<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Where a verified payment stands at the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TradeState {
    /// Paid (WeChat `SUCCESS`; Alipay `TRADE_SUCCESS`, `TRADE_FINISHED`).
    Paid,
    /// Not paid yet (WeChat `NOTPAY`, `USERPAYING`; Alipay `WAIT_BUYER_PAY`).
    Pending,
    /// Closed without payment, or anything else.
    Closed,
}

/// What a verified notification proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPayment {
    /// Our intent (from `out_trade_no`).
    pub intent_id: Uuid,
    /// The provider's transaction number (WeChat `transaction_id`, Alipay `trade_no`).
    pub reference: String,
    /// In CNY, exact.
    pub amount: Decimal,
    pub state: TradeState,
    /// When the provider says it was paid, when it says so.
    pub paid_at: Option<DateTime<Utc>>,
}

/// Why a notification (or a provider's answer) was not believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A header or field is missing or unreadable.
    Malformed,
    /// Signed with a key we do not hold (WeChat's `Wechatpay-Serial` names another key).
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// Signed more than the window (5 minutes) away from now.
    Stale,
    /// A nonce seen within the window.
    Replayed,
    /// The encrypted resource does not decrypt (wrong key, tampered, bad tag).
    Ciphertext,
    /// For another app id.
    AppId,
    /// For another merchant (WeChat `mchid`, Alipay `seller_id`).
    Merchant,
    /// Not a payment of ours (`out_trade_no` is not an intent id), or not a payment event.
    Unrelated,
}

/// A provider call that did not give what was asked.
#[derive(Debug)]
pub enum PaymentError {
    /// A notification or answer that failed verification: never act on it.
    Refused(Refusal),
    /// The provider said no, or could not be reached (its words, for the log).
    Upstream(String),
    /// Bad input to a provider call (an amount it cannot carry).
    Invalid(&'static str),
    /// A bug or a store down (the nonce store): logged, retried by the provider.
    Internal(anyhow::Error),
}

impl From<Refusal> for PaymentError {
    fn from(r: Refusal) -> PaymentError {
        PaymentError::Refused(r)
    }
}

/// The answer a provider expects to a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    pub status: u16,
    pub content_type: &'static str,
    pub body: &'static str,
}

/// One payment provider.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    fn channel(&self) -> Channel;

    /// Opens a payment at the provider; the result is what the client SDK needs
    /// (`PaymentIntent.clientParams`).
    async fn create_intent(
        &self,
        request: &IntentRequest<'_>,
    ) -> Result<serde_json::Value, PaymentError>;

    /// Verifies a notification and reads what it proves. `now` is the app clock's.
    async fn verify_notice(
        &self,
        notice: Notice<'_>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedPayment, PaymentError>;

    /// The answer once a notification is handled (booked, or already booked).
    fn ack(&self) -> Ack;

    /// The answer when it could not be handled: the provider sends it again later.
    fn nack(&self) -> Ack;

    /// Asks the provider to refund part of a paid intent. The same request (same refund
    /// number) sent again is the same refund at the provider, which answers its state.
    /// `Upstream` when the provider said no or could not be reached (its words).
    async fn request_refund(
        &self,
        request: &RefundRequest<'_>,
    ) -> Result<RefundStatus, PaymentError>;

    /// Asks the provider where a refund stands; `None` when it has no such refund (never
    /// received, or — Alipay — not refunded), which a retry may send again.
    async fn query_refund(
        &self,
        request: &RefundRequest<'_>,
    ) -> Result<Option<RefundStatus>, PaymentError>;

    /// Verifies a refund notification (`POST /payments/{provider}/refund-notify`) and reads
    /// what it proves, with the checks of [`Provider::verify_notice`].
    async fn verify_refund_notice(
        &self,
        notice: Notice<'_>,
        now: DateTime<Utc>,
    ) -> Result<RefundStatus, PaymentError>;
}

/// A refund to ask a provider for.
#[derive(Clone, Debug)]
pub struct RefundRequest<'a> {
    /// Our id of the refund; its 32 hex digits are the provider's refund number.
    pub refund_id: Uuid,
    /// The intent that was paid (its `out_trade_no`).
    pub intent_id: Uuid,
    /// In CNY, at most 2 decimal places, more than zero.
    pub amount: Decimal,
    /// The intent's amount (WeChat Pay wants the original total).
    pub total: Decimal,
    /// Shown to the buyer by the provider (cut to its limit).
    pub reason: &'a str,
    pub now: DateTime<Utc>,
}

/// The provider's refund number of a refund: its 32 hex digits (WeChat's `out_refund_no`
/// and Alipay's `out_request_no` take up to 64 characters).
pub fn out_refund_no(refund_id: Uuid) -> String {
    refund_id.simple().to_string()
}

/// The refund an `out_refund_no` names, if it is one of ours.
pub fn refund_of(out_refund_no: &str) -> Option<Uuid> {
    intent_of(out_refund_no)
}

/// Where a refund stands at the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundState {
    /// Taken, not done yet (WeChat `PROCESSING`; Alipay `fund_change` `N`).
    Processing,
    /// Done: the buyer has the money back (WeChat `SUCCESS`; Alipay `fund_change` `Y`,
    /// `REFUND_SUCCESS`).
    Succeeded,
    /// Ended without the money moving (WeChat `CLOSED`, `ABNORMAL`), with the provider's
    /// words.
    Failed(String),
}

/// What a provider's answer or a verified refund notification proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundStatus {
    /// Our refund (from the refund number).
    pub refund_id: Uuid,
    /// The paid intent, when the provider names it (`out_trade_no`).
    pub intent_id: Option<Uuid>,
    /// The provider's refund id (WeChat `refund_id`), when it gives one.
    pub reference: Option<String>,
    /// The refunded amount, exact, when the provider says it for this refund alone.
    pub amount: Option<Decimal>,
    pub state: RefundState,
}

/// The enabled providers, built once at start from the configuration.
#[derive(Clone, Default)]
pub struct Payments {
    providers: HashMap<Channel, Arc<dyn Provider>>,
    /// The sandbox's own handle (it also signs), when enabled.
    sandbox: Option<Arc<sandbox::Sandbox>>,
    /// The payout channels of withdrawals (`MANUAL` always; WeChat Pay and Alipay when
    /// their payouts are enabled).
    pub payouts: payouts::Payouts,
}

impl Payments {
    /// Builds every enabled provider, reading its keys; an enabled channel whose keys are
    /// missing or unreadable fails here, naming the setting. With `redis`, the nonces of
    /// notifications are shared by every instance (else remembered in-process). They are
    /// not put under the database's namespace: they are 128-bit random strings of the
    /// provider's, so two databases sharing one Redis cannot meet the same one.
    pub fn from_config(
        config: &crate::config::Config,
        redis: Option<crate::redis_conn::LazyRedis>,
    ) -> anyhow::Result<Payments> {
        let settings = &config.payments;
        settings.check(config.environment)?;
        let nonces: Arc<dyn nonces::NonceStore> = match redis {
            Some(conn) => Arc::new(nonces::RedisNonces::new(
                conn,
                "pushhand",
                nonces::REMEMBER_FOR,
            )),
            None => Arc::new(nonces::MemoryNonces::new(nonces::REMEMBER_FOR)),
        };
        let mut payments = Payments::default();
        if settings.wechat_enabled {
            let wechat = wechat::WechatPay::new(settings.wechat_config()?, nonces.clone())?;
            payments.insert(Arc::new(wechat));
        }
        if settings.alipay_enabled {
            payments.insert(Arc::new(alipay::Alipay::new(settings.alipay_config()?)));
        }
        payments.payouts = payouts::Payouts::from_config(settings, nonces.clone())?;
        if settings.sandbox_enabled(config.environment) {
            let sandbox = Arc::new(sandbox::Sandbox::generate(nonces)?);
            payments.sandbox = Some(sandbox.clone());
            payments.insert(sandbox);
        }
        Ok(payments)
    }

    /// Adds (or replaces) a provider.
    pub fn insert(&mut self, provider: Arc<dyn Provider>) {
        self.providers.insert(provider.channel(), provider);
    }

    /// The provider of a channel, when enabled.
    pub fn get(&self, channel: Channel) -> Option<&Arc<dyn Provider>> {
        self.providers.get(&channel)
    }

    /// The sandbox, when enabled (development only).
    pub fn sandbox(&self) -> Option<&Arc<sandbox::Sandbox>> {
        self.sandbox.as_ref()
    }

    /// The enabled channels.
    pub fn channels(&self) -> Vec<Channel> {
        Channel::ALL
            .into_iter()
            .filter(|c| self.providers.contains_key(c))
            .collect()
    }
}

/// An amount in CNY as whole fen, when it is a non-negative amount of at most 2 decimals.
pub fn to_fen(amount: Decimal) -> Option<i64> {
    use rust_decimal::prelude::ToPrimitive;
    if amount.is_sign_negative() || amount.normalize().scale() > 2 {
        return None;
    }
    (amount * Decimal::ONE_HUNDRED).to_i64()
}

/// Fen as CNY.
pub fn from_fen(fen: i64) -> Decimal {
    Decimal::new(fen, 2)
}

/// China Standard Time, the providers' clock (UTC+8, no daylight saving).
pub(crate) fn beijing() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// Whether a signature's timestamp (Unix seconds) is within `window` of `now`, either way.
pub(crate) fn fresh(timestamp: i64, now: DateTime<Utc>, window: std::time::Duration) -> bool {
    (now.timestamp() - timestamp).unsigned_abs() <= window.as_secs()
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fen_is_exact_and_refuses_fractions_of_a_fen() {
        assert_eq!(to_fen("12.34".parse().unwrap()), Some(1234));
        assert_eq!(to_fen("12.340".parse().unwrap()), Some(1234));
        assert_eq!(to_fen("0.01".parse().unwrap()), Some(1));
        assert_eq!(to_fen("12.345".parse().unwrap()), None);
        assert_eq!(to_fen("-1".parse().unwrap()), None);
        assert_eq!(from_fen(1234).to_string(), "12.34");
    }

    #[test]
    fn out_trade_no_round_trips_and_refuses_strangers() {
        let id = Uuid::now_v7();
        let no = out_trade_no(id);
        assert_eq!(no.len(), 32);
        assert_eq!(intent_of(&no), Some(id));
        assert_eq!(intent_of(&id.to_string()), None);
        assert_eq!(intent_of("ORDER-1"), None);
    }

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("好好好", 7), "好好");
        assert_eq!(cut("abc", 7), "abc");
    }

    #[test]
    fn channels_have_one_path_each() {
        for c in Channel::ALL {
            assert_eq!(Channel::from_path(c.path()), Some(c));
        }
        assert_eq!(Channel::from_path("paypal"), None);
    }
}
