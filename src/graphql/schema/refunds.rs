//! Provider refunds in GraphQL: the `Refund` type (on `Order.refunds` and
//! `OrderLine.refunds`), the admins' `refunds(status)` list, `retryRefund` and `syncRefund`.
//! The rules live in [`crate::service::refunds`]; refund notifications arrive over HTTP
//! (`crate::http::payments`).

use async_graphql::{Context, Enum, ID, Object, Result};
use chrono::{DateTime, Utc};
use entity::refund;

use super::payments::PaymentChannel;
use crate::error::Error;
use crate::graphql::context::{actor, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::Dec;
use crate::service::refunds::{self as svc, Refunds};
use crate::state::AppState;

/// Where a provider refund stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "entity::refund::Status")]
pub enum RefundStatus {
    /// Written; the provider is being asked.
    Pending,
    /// The provider took it and has not confirmed it yet (the line reads `REFUNDING`).
    Processing,
    /// The provider confirmed it: the units' stock came back and their earnings were
    /// reversed (once).
    Succeeded,
    /// The provider refused it, could not be reached, or closed it (`failureReason`): the
    /// units stay reserved; an admin retries it (`retryRefund`) under the same refund number.
    Failed,
}

/// A provider refund (a row of `refunds`).
pub struct Refund(pub refund::Model);

/// A refund of units of an order line requested from the payment provider that was paid
/// (orders paid through `createPayment`); orders paid by `confirmPayment` are refunded at
/// once and have none.
#[Object]
impl Refund {
    /// The refund's id (a UUID), for `retryRefund` and `syncRefund`.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Where it stands; `orderStatusChanged` reports each change.
    async fn status(&self) -> RefundStatus {
        self.0.status.into()
    }
    /// Units refunded.
    async fn quantity(&self) -> i32 {
        self.0.quantity
    }
    /// What goes back to the buyer, CNY: what was paid for `quantity` units, their part of
    /// the line's paid amount after its coupon share (shipping is not refunded).
    async fn amount(&self) -> Dec {
        self.0.amount.into()
    }
    /// The provider (the channel the order was paid on).
    async fn channel(&self) -> Option<PaymentChannel> {
        crate::payments::Channel::from_code(&self.0.channel).map(Into::into)
    }
    /// The refund number the provider knows it by (WeChat `out_refund_no`, Alipay
    /// `out_request_no`): the same on every retry.
    async fn out_refund_no(&self) -> &str {
        &self.0.out_refund_no
    }
    /// ADMIN only (null for others): why the last attempt failed, in the provider's words;
    /// null unless `FAILED`.
    async fn failure_reason(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(if viewer(ctx)?.is_admin() {
            self.0.failure_reason.as_deref()
        } else {
            None
        })
    }
    /// Requests sent to the provider (the first and each retry).
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// The order line refunded (`OrderLine.id`).
    async fn order_line_id(&self) -> ID {
        ids::encode(Kind::OrderLine, self.0.order_line_id)
    }
    /// The order (`Order.id`).
    async fn order_id(&self) -> ID {
        ids::encode(Kind::Order, self.0.order_id)
    }
    /// When it was asked for.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When its state last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When the provider's confirmation was booked; null until `SUCCEEDED`.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
}

impl From<crate::payments::Channel> for PaymentChannel {
    fn from(c: crate::payments::Channel) -> PaymentChannel {
        match c {
            crate::payments::Channel::WechatJsapi => PaymentChannel::WechatJsapi,
            crate::payments::Channel::Alipay => PaymentChannel::Alipay,
            crate::payments::Channel::Sandbox => PaymentChannel::Sandbox,
        }
    }
}

/// The refunds of an order (`Order.refunds`), oldest first.
pub async fn of_order(ctx: &Context<'_>, order_id: uuid::Uuid) -> Result<Vec<Refund>> {
    let rows = svc::of_order(&state(ctx)?.db, order_id).await?;
    Ok(rows.into_iter().map(Refund).collect())
}

/// The refunds of an order line (`OrderLine.refunds`), oldest first.
pub async fn of_line(ctx: &Context<'_>, line_id: uuid::Uuid) -> Result<Vec<Refund>> {
    let rows = svc::of_line(&state(ctx)?.db, line_id).await?;
    Ok(rows.into_iter().map(Refund).collect())
}

/// The refund paths' view of the app.
pub fn refunds_of(st: &AppState) -> Refunds<'_> {
    Refunds {
        db: &st.db,
        events: &st.events,
        sold: &st.units_sold,
        payments: &st.payments,
    }
}

fn refund_id(id: &ID) -> Result<uuid::Uuid, Error> {
    uuid::Uuid::try_parse(id.as_str())
        .map_err(|_| Error::validation("id", "must be a refund's id (Refund.id)"))
}

#[derive(Default)]
pub struct RefundsQuery;

#[Object]
impl RefundsQuery {
    /// ADMIN: provider refunds, newest first (e.g. the `FAILED` ones to retry).
    async fn refunds(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only refunds in this state; default: all.")] status: Option<RefundStatus>,
        #[graphql(desc = "At most this many, 1–200 (default 50).", default = 50)] first: i32,
    ) -> Result<Vec<Refund>> {
        viewer(ctx)?.admin()?;
        if !(1..=200).contains(&first) {
            return Err(Error::validation("first", "must be 1 to 200").into());
        }
        let rows = svc::list(
            &state(ctx)?.db,
            status.map(Into::into),
            u64::try_from(first).unwrap_or(50),
        )
        .await?;
        Ok(rows.into_iter().map(Refund).collect())
    }
}

#[derive(Default)]
pub struct RefundsMutation;

#[Object]
impl RefundsMutation {
    /// ADMIN: sends a `FAILED` refund to the provider again, under the same refund number
    /// (the provider deduplicates). `REFUND_NOT_RETRYABLE` in any other state (of
    /// concurrent retries one goes); `CHANNEL_UNAVAILABLE` when its channel is off. Audited.
    async fn retry_refund(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refund (`Refund.id`).")] id: ID,
    ) -> Result<Refund> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = refund_id(&id)?;
        let actor = actor(ctx, admin);
        let row = svc::retry(refunds_of(st), id, Some(&actor), st.clock.now()).await?;
        Ok(Refund(row))
    }

    /// ADMIN: asks the provider where a refund stands and records it: confirmed, it reverses
    /// the units (once); one the provider has no record of becomes `FAILED` (retryable).
    /// `PAYMENT_PROVIDER_FAILED` when the provider does not answer. Audited when it changes
    /// the refund.
    async fn sync_refund(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refund (`Refund.id`).")] id: ID,
    ) -> Result<Refund> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = refund_id(&id)?;
        let actor = actor(ctx, admin);
        let row = svc::sync(refunds_of(st), id, Some(&actor), st.clock.now()).await?;
        Ok(Refund(row))
    }
}
