//! Paying orders through the providers ([`crate::payments`]): opening a payment intent for
//! an order, and booking a verified notification through the same idempotent service
//! `confirmPayment` uses ([`orders::confirm_payment`]).
//!
//! One intent per order and channel (a unique index): asking again answers the intent
//! already open, with the client params the provider gave. A notification is verified
//! first, then matched to its intent (same channel, same amount), then booked: duplicates,
//! concurrent or not, book once (the order's conditional transition). A verified payment of
//! another amount is `PAYMENT_MISMATCH`: logged, the intent marked, the order left unpaid for
//! review — and acknowledged, since the provider sending it again changes nothing.

use chrono::{DateTime, Utc};
use entity::money::Money;
use entity::{member, order, payment_intent};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::events::Events;
use crate::payments::{
    Channel, IntentRequest, Notice, PaymentError, Provider, Refusal, TradeState,
};
use crate::service::earnings::Policy;
use crate::service::orders::{self, Payment};
use crate::service::units_sold::UnitsSold;

/// Opens (or finds) `buyer`'s payment intent for an unpaid order of theirs on `provider`.
pub async fn create_payment(
    db: &DatabaseConnection,
    provider: &dyn Provider,
    buyer: &member::Model,
    order_id: Uuid,
    payer_openid: Option<&str>,
    now: DateTime<Utc>,
) -> Result<payment_intent::Model> {
    let o = orders::get(db, order_id).await?;
    if o.buyer_id != buyer.id {
        return Err(Error::not_found("order"));
    }
    if o.status != order::Status::PendingPayment {
        return Err(Error::rule(
            "ORDER_NOT_PAYABLE",
            "the order is not awaiting payment",
        ));
    }
    if o.expires_at <= now {
        return Err(Error::rule(
            "ORDER_EXPIRED",
            "the order expired before it was paid",
        ));
    }
    let channel = provider.channel().code();
    // Concurrent calls insert one row; every call then reads the one that stands.
    payment_intent::Entity::insert(payment_intent::ActiveModel {
        id: Set(Uuid::now_v7()),
        order_id: Set(o.id),
        channel: Set(channel.to_owned()),
        amount: Set(o.total),
        status: Set(payment_intent::Status::Open),
        provider_reference: Set(None),
        client_params: Set(None),
        expires_at: Set(o.expires_at),
        created_at: Set(now),
        paid_at: Set(None),
    })
    .on_conflict(
        OnConflict::columns([
            payment_intent::Column::OrderId,
            payment_intent::Column::Channel,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    let intent = intent_of_order(db, o.id, channel).await?;
    if intent.client_params.is_some() {
        return Ok(intent);
    }
    // Twins may both ask the provider for the same out_trade_no (the providers answer
    // alike); the first answer stored is the one every caller gets.
    let params = provider
        .create_intent(&IntentRequest {
            intent_id: intent.id,
            amount: intent.amount.to_decimal(),
            description: "Pushhand order",
            expires_at: intent.expires_at,
            payer_openid,
            now,
        })
        .await
        .map_err(|e| match e {
            PaymentError::Invalid(field) => Error::validation(field, "the provider needs it"),
            PaymentError::Internal(e) => Error::internal(e),
            other => {
                tracing::warn!(channel, error = ?other, "the payment provider refused to open a payment");
                Error::rule("PAYMENT_PROVIDER_FAILED", "the payment provider did not open the payment; retry later")
            }
        })?;
    payment_intent::Entity::update_many()
        .col_expr(
            payment_intent::Column::ClientParams,
            Expr::value(params.to_string()),
        )
        .filter(payment_intent::Column::Id.eq(intent.id))
        .filter(payment_intent::Column::ClientParams.is_null())
        .exec(db)
        .await?;
    intent_of_order(db, o.id, channel).await
}

async fn intent_of_order(
    db: &DatabaseConnection,
    order_id: Uuid,
    channel: &str,
) -> Result<payment_intent::Model> {
    payment_intent::Entity::find()
        .filter(payment_intent::Column::OrderId.eq(order_id))
        .filter(payment_intent::Column::Channel.eq(channel))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("payment intent"))
}

/// An intent by id.
pub async fn intent(db: &DatabaseConnection, id: Uuid) -> Result<payment_intent::Model> {
    payment_intent::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("payment intent"))
}

/// What a notification came to.
#[derive(Debug)]
pub enum Notified {
    /// Booked (now, or by an earlier duplicate).
    Paid(Box<order::Model>),
    /// Verified, but not a payment (pending, closed).
    NotPaid,
    /// Verified, but not bookable: `PAYMENT_MISMATCH`, `PAYMENT_CONFLICT`, `ORDER_EXPIRED`,
    /// `ORDER_NOT_PAYABLE`. Logged; the order is left as it is for review.
    Unbookable(&'static str),
}

/// Why a notification was not handled.
#[derive(Debug)]
pub enum NotifyError {
    /// Not believed: answered as a failure, nothing touched.
    Refused(Refusal),
    /// Believed, but booking failed (database down…): the provider sends it again.
    Failed(Error),
}

/// Verifies a notification and books what it proves.
pub async fn notified(
    db: &DatabaseConnection,
    events: &Events,
    sold: &UnitsSold,
    policy: &Policy,
    provider: &dyn Provider,
    notice: Notice<'_>,
    now: DateTime<Utc>,
) -> std::result::Result<Notified, NotifyError> {
    let channel: Channel = provider.channel();
    let paid = match provider.verify_notice(notice, now).await {
        Ok(paid) => paid,
        Err(PaymentError::Refused(r)) => {
            tracing::warn!(channel = channel.code(), refusal = ?r, "payment notification refused");
            return Err(NotifyError::Refused(r));
        }
        Err(PaymentError::Internal(e)) => return Err(NotifyError::Failed(Error::internal(e))),
        Err(other) => {
            return Err(NotifyError::Failed(Error::internal(anyhow::anyhow!(
                "{other:?}"
            ))));
        }
    };
    if paid.state != TradeState::Paid {
        return Ok(Notified::NotPaid);
    }
    let intent = match intent(db, paid.intent_id).await {
        Ok(i) if i.channel == channel.code() => i,
        Ok(_) | Err(Error::NotFound(_)) => {
            tracing::warn!(channel = channel.code(), intent = %paid.intent_id, "a verified payment of no intent of this channel");
            return Err(NotifyError::Refused(Refusal::Unrelated));
        }
        Err(e) => return Err(NotifyError::Failed(e)),
    };
    let reference = format!("{}:{}", channel.path(), paid.reference);
    let amount = Money::from_decimal(paid.amount);
    if amount != Some(intent.amount) {
        tracing::warn!(
            code = "PAYMENT_MISMATCH",
            channel = channel.code(),
            intent = %intent.id,
            order = %intent.order_id,
            expected = %intent.amount,
            paid = %paid.amount,
            reference,
            "a verified payment of another amount: the order stays unpaid for review"
        );
        mark(
            db,
            intent.id,
            payment_intent::Status::Mismatch,
            &reference,
            now,
        )
        .await
        .map_err(NotifyError::Failed)?;
        return Ok(Notified::Unbookable("PAYMENT_MISMATCH"));
    }
    let payment = Payment {
        order_id: intent.order_id,
        reference: &reference,
        amount: intent.amount,
        actor: None,
    };
    match orders::confirm_payment(db, events, sold, payment, policy, now).await {
        Ok(o) => {
            mark(db, intent.id, payment_intent::Status::Paid, &reference, now)
                .await
                .map_err(NotifyError::Failed)?;
            Ok(Notified::Paid(Box::new(o)))
        }
        Err(e) => match e.code() {
            code @ ("PAYMENT_MISMATCH" | "PAYMENT_CONFLICT" | "ORDER_EXPIRED"
            | "ORDER_NOT_PAYABLE") => {
                tracing::warn!(
                    code,
                    channel = channel.code(),
                    intent = %intent.id,
                    order = %intent.order_id,
                    reference,
                    "a verified payment that cannot be booked: left for review"
                );
                Ok(Notified::Unbookable(code))
            }
            _ => Err(NotifyError::Failed(e)),
        },
    }
}

/// Records what the notification came to on its intent (once: an open intent only).
async fn mark(
    db: &DatabaseConnection,
    id: Uuid,
    status: payment_intent::Status,
    reference: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    payment_intent::Entity::update_many()
        .col_expr(payment_intent::Column::Status, Expr::value(status))
        .col_expr(
            payment_intent::Column::ProviderReference,
            Expr::value(reference),
        )
        .col_expr(payment_intent::Column::PaidAt, Expr::value(now))
        .filter(payment_intent::Column::Id.eq(id))
        .filter(payment_intent::Column::Status.eq(payment_intent::Status::Open))
        .exec(db)
        .await?;
    Ok(())
}
