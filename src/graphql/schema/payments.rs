//! Payments in GraphQL: `createPayment`, opening a payment at a provider for one of the
//! viewer's unpaid orders. The rules live in [`crate::service::payments`]; notifications
//! arrive over HTTP (`crate::http::payments`), not here.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::payment_intent;

use crate::error::Error;
use crate::graphql::context::{state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::{Dec, JsonValue};
use crate::payments::Channel;
use crate::service::payments as svc;

/// How a buyer pays.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum PaymentChannel {
    /// WeChat Pay (API v3, JSAPI: official account pages and mini-programs).
    WechatJsapi,
    /// Alipay (mobile web pay).
    Alipay,
    /// Development only: a pay button that signs its own notification.
    Sandbox,
}

impl From<PaymentChannel> for Channel {
    fn from(c: PaymentChannel) -> Channel {
        match c {
            PaymentChannel::WechatJsapi => Channel::WechatJsapi,
            PaymentChannel::Alipay => Channel::Alipay,
            PaymentChannel::Sandbox => Channel::Sandbox,
        }
    }
}

/// A payment opened at a provider for an order: what the client SDK needs to pay it.
#[derive(SimpleObject)]
pub struct PaymentIntent {
    /// The intent's id (a UUID; the sandbox pays it at `POST /payments/sandbox/{id}/pay`).
    pub id: ID,
    /// The channel it was opened on.
    pub channel: PaymentChannel,
    /// The amount to pay, in CNY: the order's total.
    pub amount: Dec,
    /// After this the provider no longer takes the payment (the order's expiry).
    pub expires_at: DateTime<Utc>,
    /// What the client SDK needs: for `WECHAT_JSAPI` the `wx.requestPayment` parameters
    /// (`appId timeStamp nonceStr package signType paySign`); for `ALIPAY` the gateway,
    /// the signed parameters and the whole URL; for `SANDBOX` the pay URL.
    pub client_params: JsonValue,
}

impl PaymentIntent {
    fn of(i: payment_intent::Model, channel: PaymentChannel) -> PaymentIntent {
        let params = i
            .client_params
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(serde_json::Value::Null);
        PaymentIntent {
            id: ID(i.id.to_string()),
            channel,
            amount: i.amount.into(),
            expires_at: i.expires_at,
            client_params: JsonValue(params),
        }
    }
}

#[derive(Default)]
pub struct PaymentsMutation;

#[Object]
impl PaymentsMutation {
    /// BUYER: opens a payment for one of your unpaid orders on a channel (asking again
    /// answers the same intent). `CHANNEL_UNAVAILABLE` when the channel is not enabled;
    /// `ORDER_NOT_PAYABLE` / `ORDER_EXPIRED` for an order not awaiting payment;
    /// `PAYMENT_PROVIDER_FAILED` when the provider did not open it (retry).
    async fn create_payment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of your PENDING_PAYMENT orders.")] order_id: ID,
        #[graphql(desc = "How you pay.")] channel: PaymentChannel,
        #[graphql(desc = "WECHAT_JSAPI only: your openid under our app id (from the \
                          mini-program's or official account's login).")]
        openid: Option<String>,
    ) -> Result<PaymentIntent> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let id = ids::decode_as(&order_id, Kind::Order, "orderId")?;
        let provider = st.payments.get(channel.into()).ok_or_else(|| {
            Error::rule("CHANNEL_UNAVAILABLE", "this payment channel is not enabled")
        })?;
        let intent = svc::create_payment(
            &st.db,
            provider.as_ref(),
            me,
            id,
            openid.as_deref(),
            st.clock.now(),
        )
        .await?;
        Ok(PaymentIntent::of(intent, channel))
    }
}
