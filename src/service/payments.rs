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
use entity::{member, order, order_line, payment_intent};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, OnConflict, Order, Query};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, Iterable, QueryFilter,
    QueryResult, QuerySelect, RelationDef,
};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::events::Events;
use crate::payments::{
    Channel, IntentRequest, Notice, PaymentError, Provider, Refusal, TradeState,
};
use crate::service::earnings::Policy;
use crate::service::orders::{self, Payment};
use crate::service::units_sold::UnitsSold;

/// An order and the id of its intent on one channel, if any.
#[derive(FromQueryResult)]
struct OrderAndIntent {
    #[sea_orm(nested)]
    order: order::Model,
    standing_intent: Option<Uuid>,
}

/// Opens (or finds) `buyer`'s payment intent for an unpaid order of theirs on `provider`.
pub async fn create_payment(
    db: &DatabaseConnection,
    provider: &dyn Provider,
    buyer: &member::Model,
    order_id: Uuid,
    payer_openid: Option<&str>,
    now: DateTime<Utc>,
) -> Result<payment_intent::Model> {
    let channel = provider.channel().code();
    // The order, and the id of its intent on this channel when one stands, in one read.
    let standing_id = Query::select()
        .column(payment_intent::Column::Id)
        .from(payment_intent::Entity)
        .and_where(payment_intent::Column::OrderId.eq(order_id))
        .and_where(payment_intent::Column::Channel.eq(channel))
        .to_owned();
    let read: Option<OrderAndIntent> = order::Entity::find_by_id(order_id)
        .expr_as(
            Expr::SubQuery(None, Box::new(standing_id.into())),
            "standing_intent",
        )
        .into_model()
        .one(db)
        .await?;
    let OrderAndIntent {
        order: o,
        standing_intent,
    } = read.ok_or_else(|| Error::not_found("order"))?;
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
    // Asking again (the usual retry) answers the intent already open.
    let standing = match standing_intent {
        Some(id) => Some(intent(db, id).await?),
        None => None,
    };
    let intent = match standing {
        Some(intent) if intent.client_params.is_some() => return Ok(intent),
        Some(intent) => intent,
        None => payment_intent::Model {
            id: Uuid::now_v7(),
            order_id: o.id,
            channel: channel.to_owned(),
            amount: o.total,
            status: payment_intent::Status::Open,
            provider_reference: None,
            client_params: None,
            expires_at: o.expires_at,
            created_at: now,
            paid_at: None,
        },
    };
    // The provider is asked first and the intent written once with its answer (one
    // commit). Twins may both ask for their own out_trade_no: one intent row stands (the
    // unique index), and every caller answers with it; the other prepay is never paid.
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
    let opened = payment_intent::Model {
        client_params: Some(params.to_string()),
        ..intent
    };
    let inserted =
        payment_intent::Entity::insert(payment_intent::ActiveModel::from(opened.clone()))
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
    if inserted == 1 {
        return Ok(opened);
    }
    // A twin's row stands: it keeps the first answer stored (an intent written without
    // one by an older version gets this one).
    payment_intent::Entity::update_many()
        .col_expr(
            payment_intent::Column::ClientParams,
            Expr::value(params.to_string()),
        )
        .filter(payment_intent::Column::OrderId.eq(o.id))
        .filter(payment_intent::Column::Channel.eq(channel))
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

/// An intent with its order, in one read.
pub async fn intent_and_order(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<(payment_intent::Model, order::Model)> {
    let of_order: RelationDef = payment_intent::Entity::belongs_to(order::Entity)
        .from(payment_intent::Column::OrderId)
        .to(order::Column::Id)
        .into();
    match payment_intent::Entity::find_by_id(id)
        .select_also(order::Entity)
        .join(JoinType::InnerJoin, of_order)
        .one(db)
        .await?
    {
        Some((intent, Some(o))) => Ok((intent, o)),
        _ => Err(Error::not_found("payment intent")),
    }
}

/// An intent with its order, the order's lines (in id order) and its buyer: all a payment
/// of the intent reads before it writes ([`orders::confirm_payment_of`]).
pub struct Known {
    pub intent: payment_intent::Model,
    pub order: order::Model,
    pub lines: Vec<order_line::Model>,
    pub buyer: member::Model,
}

/// A row of [`intent_to_pay`]: each model's columns under its own prefix.
struct Paying {
    intent: payment_intent::Model,
    order: order::Model,
    line: order_line::Model,
    buyer: member::Model,
}

impl FromQueryResult for Paying {
    fn from_query_result(row: &QueryResult, _: &str) -> std::result::Result<Self, DbErr> {
        Ok(Paying {
            intent: payment_intent::Model::from_query_result(row, "i_")?,
            order: order::Model::from_query_result(row, "o_")?,
            line: order_line::Model::from_query_result(row, "l_")?,
            buyer: member::Model::from_query_result(row, "m_")?,
        })
    }
}

/// An intent with its order, the order's lines and its buyer, in one statement (a row per
/// line; an order always has a line): the sandbox's pay button reads what the payment needs
/// in one round trip instead of two.
pub async fn intent_to_pay(db: &DatabaseConnection, id: Uuid) -> Result<Known> {
    let mut q = Query::select();
    fn prefixed<C: ColumnTrait + Iterable>(
        q: &mut sea_orm::sea_query::SelectStatement,
        prefix: &str,
    ) where
        C::EntityName: Default,
    {
        for c in C::iter() {
            q.expr_as(
                Expr::col((C::EntityName::default(), c)),
                Alias::new(format!("{prefix}{}", c.as_str())),
            );
        }
    }
    prefixed::<payment_intent::Column>(&mut q, "i_");
    prefixed::<order::Column>(&mut q, "o_");
    prefixed::<order_line::Column>(&mut q, "l_");
    prefixed::<member::Column>(&mut q, "m_");
    q.from(payment_intent::Entity)
        .inner_join(
            order::Entity,
            Expr::col((order::Entity, order::Column::Id))
                .equals((payment_intent::Entity, payment_intent::Column::OrderId)),
        )
        .inner_join(
            order_line::Entity,
            Expr::col((order_line::Entity, order_line::Column::OrderId))
                .equals((order::Entity, order::Column::Id)),
        )
        .inner_join(
            member::Entity,
            Expr::col((member::Entity, member::Column::Id))
                .equals((order::Entity, order::Column::BuyerId)),
        )
        .and_where(Expr::col((payment_intent::Entity, payment_intent::Column::Id)).eq(id))
        .order_by((order_line::Entity, order_line::Column::Id), Order::Asc);
    let rows = Paying::find_by_statement(db.get_database_backend().build(&q))
        .all(db)
        .await?;
    let mut rows = rows.into_iter();
    let Some(first) = rows.next() else {
        return Err(Error::not_found("payment intent"));
    };
    let mut lines = vec![first.line];
    lines.extend(rows.map(|r| r.line));
    Ok(Known {
        intent: first.intent,
        order: first.order,
        lines,
        buyer: first.buyer,
    })
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

/// Verifies a notification and books what it proves. `known` is the intent and its order
/// when the caller has just read them (the sandbox's pay button): used when the verified
/// notification names that intent, so they are not read again.
#[allow(clippy::too_many_arguments)]
pub async fn notified(
    db: &DatabaseConnection,
    events: &Events,
    sold: &UnitsSold,
    policy: &Policy,
    provider: &dyn Provider,
    notice: Notice<'_>,
    known: Option<Known>,
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
    let read = match known.filter(|k| k.intent.id == paid.intent_id) {
        Some(k) => Ok((
            k.intent,
            orders::Read {
                order: k.order,
                lines: Some((k.lines, k.buyer)),
            },
        )),
        None => intent_and_order(db, paid.intent_id)
            .await
            .map(|(i, order)| (i, orders::Read { order, lines: None })),
    };
    let (intent, order) = match read {
        Ok((i, o)) if i.channel == channel.code() => (i, o),
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
    // The intent is marked paid in the payment's own transaction.
    let payment = Payment {
        order_id: intent.order_id,
        reference: &reference,
        amount: intent.amount,
        actor: None,
        intent: Some(intent.id),
    };
    match orders::confirm_payment_of(db, events, sold, payment, Some(order), policy, now).await {
        Ok(o) => Ok(Notified::Paid(Box::new(o))),
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
    marking(id, status, reference, now).exec(db).await?;
    Ok(())
}

/// The update that records on intent `id`, while it is open, what a notification came to
/// (also run inside a payment's own batch, [`orders::confirm_payment`]).
pub(crate) fn marking(
    id: Uuid,
    status: payment_intent::Status,
    reference: &str,
    now: DateTime<Utc>,
) -> sea_orm::UpdateMany<payment_intent::Entity> {
    payment_intent::Entity::update_many()
        .col_expr(payment_intent::Column::Status, Expr::value(status))
        .col_expr(
            payment_intent::Column::ProviderReference,
            Expr::value(reference),
        )
        .col_expr(payment_intent::Column::PaidAt, Expr::value(now))
        .filter(payment_intent::Column::Id.eq(id))
        .filter(payment_intent::Column::Status.eq(payment_intent::Status::Open))
}
