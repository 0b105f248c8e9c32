//! Provider refunds: a refund of a line of an order paid through a provider
//! ([`crate::payments`]) is a request to that provider, under its own refund number, and
//! the money moves here only once the provider confirms it.
//!
//! - [`refund_line`] (`refundOrderLine`): an order paid through a payment intent (its
//!   payment reference `<provider>:…` and an intent of that channel) gets a `refunds` row
//!   (`PENDING`) and the line's units go in flight (`order_lines.refunding_quantity`: the
//!   line reads `REFUNDING`), in one transaction with the idempotency key and the audit
//!   entry; then the provider is asked ([`crate::payments::Provider::request_refund`]) and
//!   its answer recorded: `PROCESSING`, `FAILED` with its words, or done. An order paid by
//!   the manual `confirmPayment` (no intent) is refunded at once, as before
//!   ([`orders::refund_line_as`]): there is no provider to ask.
//! - Confirmation — the provider's refund notification ([`notified`]), an answer that says
//!   it is done, or a query ([`sync`]) — runs the existing reversal
//!   ([`orders::reverse_units`]: stock, earnings reversal and claw-back, team sales, order
//!   status) in the transaction that moves the refund to `SUCCEEDED`, conditionally on it
//!   not being `SUCCEEDED` yet, after the order's row is locked: any number of duplicate or
//!   concurrent confirmations reverse once.
//! - A `FAILED` refund keeps its units in flight and is retried ([`retry`]) under the same
//!   refund number, which the provider deduplicates; concurrent retries: one goes.
//!
//! Every state change publishes the order's `OrderChanged` (the line's refund state shows
//! on it); staff actions write the audit log in their transaction.

use chrono::{DateTime, Utc};
use entity::{Money, idempotency_key, order, order_line, payment_intent, refund};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use super::orders::{self, Refund};
use super::payments::NotifyError;
use super::units_sold::UnitsSold;
use crate::error::{Error, Result};
use crate::events::{Event, Events, Kind};
use crate::payments::{
    Channel, Notice, PaymentError, Payments, Provider, RefundRequest, RefundState, RefundStatus,
};

/// What the refund paths need from the app.
#[derive(Clone, Copy)]
pub struct Refunds<'a> {
    pub db: &'a DatabaseConnection,
    pub events: &'a Events,
    pub sold: &'a UnitsSold,
    pub payments: &'a Payments,
}

/// The longest failure reason kept, in bytes.
const REASON_MAX: usize = 500;

/// What the provider is told the refund is for.
const REFUND_REASON: &str = "Pushhand refund";

/// The intent `o` was paid through, when it was paid through a provider: its payment
/// reference names a provider (`<provider>:<reference>`, as notifications book it) and the
/// order has an intent of that channel. `None`: paid by hand (`confirmPayment`).
pub async fn paid_intent(
    db: &impl ConnectionTrait,
    o: &order::Model,
) -> Result<Option<payment_intent::Model>> {
    let Some((path, _)) = o
        .payment_reference
        .as_deref()
        .and_then(|r| r.split_once(':'))
    else {
        return Ok(None);
    };
    let Some(channel) = Channel::from_path(path) else {
        return Ok(None);
    };
    Ok(payment_intent::Entity::find()
        .filter(payment_intent::Column::OrderId.eq(o.id))
        .filter(payment_intent::Column::Channel.eq(channel.code()))
        .filter(payment_intent::Column::Status.ne(payment_intent::Status::Mismatch))
        .one(db)
        .await?)
}

/// Refunds units of a line (`refundOrderLine`): through the provider the order was paid
/// with, or at once for an order paid by hand. Returns the order as it stands after.
pub async fn refund_line(
    ctx: Refunds<'_>,
    refund: Refund<'_>,
    now: DateTime<Utc>,
) -> Result<order::Model> {
    let line = order_line::Entity::find_by_id(refund.line_id)
        .one(ctx.db)
        .await?
        .ok_or_else(|| Error::not_found("order line"))?;
    let o = orders::get(ctx.db, line.order_id).await?;
    match paid_intent(ctx.db, &o).await? {
        None => orders::refund_line_as(ctx.db, ctx.events, ctx.sold, refund, now).await,
        Some(intent) => request(ctx, &intent, refund, now).await,
    }
}

/// The provider of a refund's (or intent's) channel, when enabled.
pub(crate) fn provider_of<'a>(ctx: &Refunds<'a>, channel: &str) -> Result<&'a dyn Provider> {
    Channel::from_code(channel)
        .and_then(|c| ctx.payments.get(c))
        .map(|p| p.as_ref())
        .ok_or_else(|| {
            Error::rule(
                "CHANNEL_UNAVAILABLE",
                "the order was paid through a payment channel that is not enabled now",
            )
        })
}

/// Writes a refund request for a line of an order paid through `intent` and asks the
/// provider.
async fn request(
    ctx: Refunds<'_>,
    intent: &payment_intent::Model,
    refund: Refund<'_>,
    now: DateTime<Utc>,
) -> Result<order::Model> {
    let Refund {
        line_id,
        quantity,
        key,
        actor,
    } = refund;
    let db = ctx.db;
    let provider = provider_of(&ctx, &intent.channel)?;
    let key = key.map(orders::idempotency_key_text).transpose()?;
    // As the immediate refund writes it: one key means one request either way.
    let request = format!(
        "{line_id}*{}",
        quantity.map_or_else(|| "all".to_owned(), |q| q.to_string())
    );
    let owner = actor.map(|a| a.member);
    if let (Some(key), Some(owner)) = (key, owner)
        && let Some(id) =
            orders::replay(db, owner, orders::REFUND_ORDER_LINE, key, &request).await?
    {
        return orders::get(db, id).await;
    }
    let txn = crate::db::begin_write(db).await?;
    if let (Some(key), Some(owner)) = (key, owner) {
        let row = idempotency_key::Model {
            id: Uuid::now_v7(),
            owner_id: owner,
            scope: orders::REFUND_ORDER_LINE.to_owned(),
            key: key.to_owned(),
            request: request.clone(),
            result_id: intent.order_id,
            created_at: now,
        };
        let inserted = idempotency_key::Entity::insert(idempotency_key::ActiveModel::from(row))
            .exec_without_returning(&txn)
            .await;
        match inserted {
            Ok(_) => {}
            // A twin committed first (this insert waited for it): its outcome is ours.
            Err(e) if crate::db::is_unique_violation(&e) => {
                drop(txn);
                let id = orders::replay(db, owner, orders::REFUND_ORDER_LINE, key, &request)
                    .await?
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("idempotency key vanished")))?;
                return orders::get(db, id).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    // The order's row first, as every refund, payment and completion takes it.
    let o = order::Entity::find_by_id(intent.order_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("order"))?;
    if !matches!(
        o.status,
        order::Status::Paid | order::Status::Shipped | order::Status::Completed
    ) {
        return Err(Error::rule(
            "ORDER_NOT_REFUNDABLE",
            "only a paid, shipped or completed order can be refunded",
        ));
    }
    let line = order_line::Entity::find_by_id(line_id)
        .one(&txn)
        .await?
        .filter(|l| l.order_id == o.id)
        .ok_or_else(|| Error::not_found("order line"))?;
    if line.refunded_quantity == line.quantity {
        return Err(Error::rule(
            "ALREADY_REFUNDED",
            "this line was refunded already",
        ));
    }
    let left = line.quantity - line.refunded_quantity - line.refunding_quantity;
    if left == 0 {
        return Err(Error::rule(
            "REFUND_IN_PROGRESS",
            "every unit not refunded is being refunded (see the line's refunds)",
        ));
    }
    let units = quantity.unwrap_or(left);
    if units < 1 || units > left {
        return Err(Error::validation(
            "quantity",
            format!("must be 1 to {left} (the units neither refunded nor being refunded)"),
        ));
    }
    // Conditional on the counts read: two concurrent requests cannot both take the same
    // units (and the database checks refunded + refunding <= quantity).
    let marked = order_line::Entity::update_many()
        .col_expr(
            order_line::Column::RefundingQuantity,
            Expr::value(line.refunding_quantity + units),
        )
        .filter(order_line::Column::Id.eq(line.id))
        .filter(order_line::Column::RefundedQuantity.eq(line.refunded_quantity))
        .filter(order_line::Column::RefundingQuantity.eq(line.refunding_quantity))
        .exec(&txn)
        .await;
    match marked {
        Ok(r) if r.rows_affected == 1 => {}
        Ok(_) => {
            return Err(Error::rule(
                "REFUND_CONFLICT",
                "the line was refunded concurrently; reload it",
            ));
        }
        Err(e) if crate::db::is_check_violation(&e) => {
            return Err(Error::rule(
                "REFUND_CONFLICT",
                "the line was refunded concurrently; reload it",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let id = Uuid::now_v7();
    let row = refund::Model {
        id,
        order_id: o.id,
        order_line_id: line.id,
        intent_id: intent.id,
        channel: intent.channel.clone(),
        out_refund_no: crate::payments::out_refund_no(id),
        quantity: units,
        // What the buyer paid for these units (after the line's coupon share), not their
        // list price: the parts of every unit add up to the line's paid amount exactly.
        amount: Money::from_fen(orders::paid_portion(
            &line,
            line.refunded_quantity + line.refunding_quantity,
            line.refunded_quantity + line.refunding_quantity + units,
        )),
        status: refund::Status::Pending,
        failure_reason: None,
        provider_reference: None,
        attempts: 1,
        requested_by: owner,
        created_at: now,
        updated_at: now,
        completed_at: None,
    };
    refund::Entity::insert(refund::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await?;
    if let Some(actor) = actor {
        audit::record(
            &txn,
            actor,
            Action::RefundRequested,
            Some((TargetType::OrderLine, line.id)),
            serde_json::json!({
                "refund": id,
                "quantity": units,
                "amount": row.amount.to_decimal().to_string(),
                "channel": row.channel,
                "idempotencyKey": key,
            }),
            now,
        )
        .await?;
    }
    txn.commit().await?;
    // The line reads REFUNDING.
    ctx.events
        .publish(vec![Event::new(o.buyer_id, Kind::OrderChanged, o.id)])
        .await;
    submit(ctx, provider, &row, now).await?;
    orders::get(db, o.id).await
}

/// The provider's request of a refund.
async fn request_of<'r>(
    db: &DatabaseConnection,
    row: &refund::Model,
    now: DateTime<Utc>,
) -> Result<RefundRequest<'r>> {
    let intent = super::payments::intent(db, row.intent_id).await?;
    Ok(RefundRequest {
        refund_id: row.id,
        intent_id: intent.id,
        amount: row.amount.to_decimal(),
        total: intent.amount.to_decimal(),
        reason: REFUND_REASON,
        now,
    })
}

/// A provider call's failure in words, for the refund's `failureReason`.
fn describe(e: PaymentError) -> String {
    let text = match e {
        PaymentError::Refused(r) => format!("the provider's answer did not verify ({r:?})"),
        PaymentError::Upstream(m) => format!("the provider did not take it: {m}"),
        PaymentError::Invalid(field) => format!("the provider cannot take this {field}"),
        PaymentError::Internal(e) => format!("{e:#}"),
    };
    crate::payments::cut(&text, REASON_MAX).to_owned()
}

/// Asks the provider for a `PENDING` refund and records what it answered.
pub(crate) async fn submit(
    ctx: Refunds<'_>,
    provider: &dyn Provider,
    row: &refund::Model,
    now: DateTime<Utc>,
) -> Result<refund::Model> {
    let request = request_of(ctx.db, row, now).await?;
    let (state, reference) = match provider.request_refund(&request).await {
        Ok(s) if s.refund_id == row.id => (s.state, s.reference),
        Ok(_) => (
            RefundState::Failed("the provider answered for another refund".into()),
            None,
        ),
        Err(e) => {
            tracing::warn!(refund = %row.id, channel = row.channel, error = ?e, "a provider refund request failed");
            (RefundState::Failed(describe(e)), None)
        }
    };
    apply(ctx, row.id, state, reference, None, Source::Request, now).await
}

/// Where a refund's state was learnt: what may move it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The answer to our request: `PROCESSING` only from `PENDING` (a notification that
    /// came first wins).
    Request,
    /// A notification, or a query by staff: `PROCESSING` also from `FAILED` (the provider
    /// has it after all).
    Provider,
}

/// Records a state the provider gave for a refund.
async fn apply(
    ctx: Refunds<'_>,
    id: Uuid,
    state: RefundState,
    reference: Option<String>,
    actor: Option<&Actor>,
    source: Source,
    now: DateTime<Utc>,
) -> Result<refund::Model> {
    use refund::Status as S;
    match state {
        RefundState::Succeeded => complete(ctx, id, reference, actor, now).await,
        RefundState::Processing => {
            let from: &[S] = match source {
                Source::Request => &[S::Pending],
                Source::Provider => &[S::Pending, S::Failed],
            };
            mark(ctx, id, from, S::Processing, None, reference, actor, now).await
        }
        RefundState::Failed(reason) => {
            let reason = crate::payments::cut(&reason, REASON_MAX).to_owned();
            let from = [S::Pending, S::Processing];
            mark(
                ctx,
                id,
                &from,
                S::Failed,
                Some(reason),
                reference,
                actor,
                now,
            )
            .await
        }
    }
}

/// Moves a refund from one of `from` to `to` (a state that moves no money).
#[allow(clippy::too_many_arguments)]
async fn mark(
    ctx: Refunds<'_>,
    id: Uuid,
    from: &[refund::Status],
    to: refund::Status,
    reason: Option<String>,
    reference: Option<String>,
    actor: Option<&Actor>,
    now: DateTime<Utc>,
) -> Result<refund::Model> {
    let txn = crate::db::begin_write(ctx.db).await?;
    let row_line = get(&txn, id).await?.order_line_id;
    let mut update = refund::Entity::update_many()
        .col_expr(refund::Column::Status, Expr::value(to))
        .col_expr(refund::Column::FailureReason, Expr::value(reason.clone()))
        .col_expr(refund::Column::UpdatedAt, Expr::value(now));
    if let Some(reference) = &reference {
        update = update.col_expr(
            refund::Column::ProviderReference,
            Expr::value(reference.clone()),
        );
    }
    let moved = update
        .filter(refund::Column::Id.eq(id))
        .filter(refund::Column::Status.is_in(from.iter().copied()))
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if moved && let Some(actor) = actor {
        audit::record(
            &txn,
            actor,
            Action::RefundSynced,
            Some((TargetType::OrderLine, row_line)),
            serde_json::json!({
                "refund": id,
                "status": sea_orm::ActiveEnum::to_value(&to),
                "failureReason": reason,
            }),
            now,
        )
        .await?;
    }
    let row = get(&txn, id).await?;
    txn.commit().await?;
    if moved {
        let o = orders::get(ctx.db, row.order_id).await?;
        ctx.events
            .publish(vec![Event::new(o.buyer_id, Kind::OrderChanged, o.id)])
            .await;
    }
    Ok(row)
}

/// The provider confirmed a refund: it becomes `SUCCEEDED` and its units are reversed, in
/// one transaction, once (a refund already `SUCCEEDED` is left as it is).
async fn complete(
    ctx: Refunds<'_>,
    id: Uuid,
    reference: Option<String>,
    actor: Option<&Actor>,
    now: DateTime<Utc>,
) -> Result<refund::Model> {
    use refund::Status as S;
    let txn = crate::db::begin_write(ctx.db).await?;
    let row = get(&txn, id).await?;
    // The order's row first, as every refund takes it: concurrent confirmations queue here.
    let o = order::Entity::find_by_id(row.order_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("order"))?;
    let mut update = refund::Entity::update_many()
        .col_expr(refund::Column::Status, Expr::value(S::Succeeded))
        .col_expr(refund::Column::FailureReason, Expr::value(None::<String>))
        .col_expr(refund::Column::UpdatedAt, Expr::value(now))
        .col_expr(refund::Column::CompletedAt, Expr::value(now));
    if let Some(reference) = reference {
        update = update.col_expr(refund::Column::ProviderReference, Expr::value(reference));
    }
    let done = update
        .filter(refund::Column::Id.eq(id))
        .filter(refund::Column::Status.is_in([S::Pending, S::Processing, S::Failed]))
        .exec(&txn)
        .await?;
    if done.rows_affected == 0 {
        // Confirmed before (a duplicate, or a twin that went first): nothing more.
        drop(txn);
        return get(ctx.db, id).await;
    }
    let line = order_line::Entity::find_by_id(row.order_line_id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("order line"))?;
    let after = line.refunded_quantity + row.quantity;
    let moved = order_line::Entity::update_many()
        .col_expr(order_line::Column::RefundedQuantity, Expr::value(after))
        .col_expr(
            order_line::Column::RefundingQuantity,
            Expr::value(line.refunding_quantity - row.quantity),
        )
        .col_expr(
            order_line::Column::RefundedAt,
            Expr::value((after == line.quantity).then_some(now)),
        )
        .filter(order_line::Column::Id.eq(line.id))
        .filter(order_line::Column::RefundedQuantity.eq(line.refunded_quantity))
        .filter(order_line::Column::RefundingQuantity.eq(line.refunding_quantity))
        .exec(&txn)
        .await?;
    if moved.rows_affected == 0 {
        return Err(Error::rule(
            "REFUND_CONFLICT",
            "the line was refunded concurrently; retry",
        ));
    }
    let reversed = orders::reverse_units(&txn, &o, &line, row.quantity, now).await?;
    // The after-sale that asked for it, if one did, is refunded.
    let resumed = super::after_sales::refund_confirmed(&txn, id, now).await?;
    if let Some(actor) = actor {
        audit::record(
            &txn,
            actor,
            Action::RefundSynced,
            Some((TargetType::OrderLine, row.order_line_id)),
            serde_json::json!({
                "refund": id,
                "status": sea_orm::ActiveEnum::to_value(&S::Succeeded),
            }),
            now,
        )
        .await?;
    }
    let o = orders::get(&txn, o.id).await?;
    let row = get(&txn, id).await?;
    txn.commit().await?;
    ctx.sold.add(line.product_id, -i64::from(row.quantity));
    let mut batch = reversed.events(&o, line.product_id);
    // The line's refund state changed, whether or not the order's status did.
    batch.push(Event::new(o.buyer_id, Kind::OrderChanged, o.id));
    batch.extend(Event::changed(resumed, o.id));
    ctx.events.publish(batch).await;
    Ok(row)
}

/// Retries a `FAILED` refund under the same refund number (`retryRefund`, staff):
/// `REFUND_NOT_RETRYABLE` in any other state (of concurrent retries one goes).
pub async fn retry(
    ctx: Refunds<'_>,
    id: Uuid,
    actor: Option<&Actor>,
    now: DateTime<Utc>,
) -> Result<refund::Model> {
    let row = get(ctx.db, id).await?;
    let provider = provider_of(&ctx, &row.channel)?;
    let txn = crate::db::begin_write(ctx.db).await?;
    let moved = refund::Entity::update_many()
        .col_expr(refund::Column::Status, Expr::value(refund::Status::Pending))
        .col_expr(
            refund::Column::Attempts,
            Expr::col(refund::Column::Attempts).add(1),
        )
        .col_expr(refund::Column::UpdatedAt, Expr::value(now))
        .filter(refund::Column::Id.eq(id))
        .filter(refund::Column::Status.eq(refund::Status::Failed))
        .exec(&txn)
        .await?;
    if moved.rows_affected == 0 {
        return Err(Error::rule(
            "REFUND_NOT_RETRYABLE",
            "only a FAILED refund can be retried",
        ));
    }
    if let Some(actor) = actor {
        audit::record(
            &txn,
            actor,
            Action::RefundRetried,
            Some((TargetType::OrderLine, row.order_line_id)),
            serde_json::json!({ "refund": id, "attempt": row.attempts + 1 }),
            now,
        )
        .await?;
    }
    let row = get(&txn, id).await?;
    txn.commit().await?;
    let o = orders::get(ctx.db, row.order_id).await?;
    ctx.events
        .publish(vec![Event::new(o.buyer_id, Kind::OrderChanged, o.id)])
        .await;
    submit(ctx, provider, &row, now).await
}

/// Asks the provider where a refund stands and records it (`syncRefund`, staff; and the
/// background check). A refund the provider has no record of, still `PENDING` or
/// `PROCESSING`, becomes `FAILED` (retryable). `PAYMENT_PROVIDER_FAILED` when the provider
/// did not answer.
pub async fn sync(
    ctx: Refunds<'_>,
    id: Uuid,
    actor: Option<&Actor>,
    now: DateTime<Utc>,
) -> Result<refund::Model> {
    let row = get(ctx.db, id).await?;
    if row.status == refund::Status::Succeeded {
        return Ok(row);
    }
    let provider = provider_of(&ctx, &row.channel)?;
    let request = request_of(ctx.db, &row, now).await?;
    match provider.query_refund(&request).await {
        Ok(Some(s)) if s.refund_id == row.id => {
            apply(ctx, id, s.state, s.reference, actor, Source::Provider, now).await
        }
        Ok(_) => {
            let reason = "the provider has no such refund (never received, or not refunded); \
                          retry it";
            let from = [refund::Status::Pending, refund::Status::Processing];
            mark(
                ctx,
                id,
                &from,
                refund::Status::Failed,
                Some(reason.into()),
                None,
                actor,
                now,
            )
            .await
        }
        Err(e) => {
            tracing::warn!(refund = %id, channel = row.channel, error = ?e, "a provider refund query failed");
            Err(Error::rule(
                "PAYMENT_PROVIDER_FAILED",
                "the payment provider did not answer; retry later",
            ))
        }
    }
}

/// What a refund notification came to.
#[derive(Debug)]
pub enum RefundNotified {
    /// Recorded (now, or by an earlier duplicate): the refund as it stands.
    Recorded(Box<refund::Model>),
    /// Verified, but of another amount than the refund's (`REFUND_MISMATCH`): logged, the
    /// refund left as it is for review.
    Mismatch,
}

/// Verifies a refund notification and records what it proves.
pub async fn notified(
    ctx: Refunds<'_>,
    provider: &dyn Provider,
    notice: Notice<'_>,
    now: DateTime<Utc>,
) -> std::result::Result<RefundNotified, NotifyError> {
    let channel = provider.channel();
    let status: RefundStatus = match provider.verify_refund_notice(notice, now).await {
        Ok(s) => s,
        Err(PaymentError::Refused(r)) => {
            tracing::warn!(channel = channel.code(), refusal = ?r, "refund notification refused");
            return Err(NotifyError::Refused(r));
        }
        Err(PaymentError::Internal(e)) => return Err(NotifyError::Failed(Error::internal(e))),
        Err(other) => {
            return Err(NotifyError::Failed(Error::internal(anyhow::anyhow!(
                "{other:?}"
            ))));
        }
    };
    let row = match get(ctx.db, status.refund_id).await {
        Ok(r)
            if r.channel == channel.code() && status.intent_id.is_none_or(|i| i == r.intent_id) =>
        {
            r
        }
        Ok(_) | Err(Error::NotFound(_)) => {
            tracing::warn!(channel = channel.code(), refund = %status.refund_id, "a verified refund notification of no refund of this channel");
            return Err(NotifyError::Refused(crate::payments::Refusal::Unrelated));
        }
        Err(e) => return Err(NotifyError::Failed(e)),
    };
    if let Some(amount) = status.amount
        && Money::from_decimal(amount) != Some(row.amount)
    {
        tracing::warn!(
            code = "REFUND_MISMATCH",
            channel = channel.code(),
            refund = %row.id,
            expected = %row.amount,
            notified = %amount,
            "a verified refund notification of another amount: left for review"
        );
        return Ok(RefundNotified::Mismatch);
    }
    let row = apply(
        ctx,
        row.id,
        status.state,
        status.reference,
        None,
        Source::Provider,
        now,
    )
    .await
    .map_err(NotifyError::Failed)?;
    Ok(RefundNotified::Recorded(Box::new(row)))
}

/// A refund by id.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<refund::Model> {
    refund::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("refund"))
}

/// The refunds of an order, oldest first.
pub async fn of_order(db: &impl ConnectionTrait, order_id: Uuid) -> Result<Vec<refund::Model>> {
    Ok(refund::Entity::find()
        .filter(refund::Column::OrderId.eq(order_id))
        .order_by_asc(refund::Column::Id)
        .all(db)
        .await?)
}

/// The refunds of an order line, oldest first.
pub async fn of_line(db: &impl ConnectionTrait, line_id: Uuid) -> Result<Vec<refund::Model>> {
    Ok(refund::Entity::find()
        .filter(refund::Column::OrderLineId.eq(line_id))
        .order_by_asc(refund::Column::Id)
        .all(db)
        .await?)
}

/// The most refunds one list answers.
pub const MAX_LIST: u64 = 200;

/// Refunds (in `status` if given), newest first, at most `first` (to [`MAX_LIST`]).
pub async fn list(
    db: &impl ConnectionTrait,
    status: Option<refund::Status>,
    first: u64,
) -> Result<Vec<refund::Model>> {
    let mut q = refund::Entity::find();
    if let Some(status) = status {
        q = q.filter(refund::Column::Status.eq(status));
    }
    Ok(q.order_by_desc(refund::Column::Id)
        .limit(std::cmp::Ord::min(first, MAX_LIST))
        .all(db)
        .await?)
}

/// The background check: asks the providers about the refunds still `PENDING` or
/// `PROCESSING` that were last touched before `older_than` (a notification may never come).
/// Returns how many it asked about; a provider that does not answer is asked next time.
pub async fn check_open(
    ctx: Refunds<'_>,
    older_than: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize> {
    let open = refund::Entity::find()
        .filter(refund::Column::Status.is_in([refund::Status::Pending, refund::Status::Processing]))
        .filter(refund::Column::UpdatedAt.lt(older_than))
        .order_by_asc(refund::Column::Id)
        .limit(MAX_LIST)
        .all(ctx.db)
        .await?;
    let mut asked = 0;
    for row in open {
        asked += 1;
        if let Err(e) = sync(ctx, row.id, None, now).await {
            tracing::warn!(refund = %row.id, error = ?e, "refund check: not synced; next time");
        }
    }
    Ok(asked)
}
