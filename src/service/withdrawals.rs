//! Withdrawals (提现): a member takes money out of its available balance. The amount is
//! reserved at once by a conditional update (`available >= amount`), so no two requests can
//! spend the same money — on SQLite and PostgreSQL alike, with no `SELECT … FOR UPDATE`. The
//! client's idempotency key makes retries safe: the same key returns the same withdrawal.
//!
//! A withdrawal pays to the member's payout account of its channel, recorded on it when
//! requested. Approving starts its payout ([`super::payouts`]): `PENDING → PROCESSING`, the
//! amount still reserved, then `PAID` (booked out) or `FAILED` (returned) once.

use chrono::{DateTime, Utc};
use entity::{Money, Rate, balance, member, withdrawal};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use super::ledger::{self, Deltas, Event as Entry, Refs};
use crate::error::{Error, Result};
use crate::events::{Event, Events, Kind};
use crate::payments::payouts::{PayoutChannel, Payouts};

/// The withdrawal rules of the policy.
#[derive(Clone, Copy, Debug)]
pub struct Terms {
    /// The smallest amount one may request.
    pub minimum: Money,
    /// The fee's share of the amount.
    pub fee_rate: Rate,
}

/// A member requests `amount` (≥ `minimum`, ≤ available). The fee (`fee_rate` of the amount,
/// rounded down to the fen) is part of the amount and booked as its own entry on approval.
pub async fn request(
    db: &DatabaseConnection,
    events: &Events,
    m: &member::Model,
    amount: rust_decimal::Decimal,
    key: &str,
    terms: Terms,
    now: DateTime<Utc>,
) -> Result<withdrawal::Model> {
    let payouts = crate::payments::payouts::Payouts::default();
    request_to(db, events, &payouts, m, amount, key, terms, None, now).await
}

/// [`request`] paid through `channel` (the member's account of it, `PAYOUT_ACCOUNT_MISSING`
/// without one; `PAYOUT_CHANNEL_UNAVAILABLE` when not enabled). Without a channel it is
/// `MANUAL`, to the member's bank card when one is on file.
#[allow(clippy::too_many_arguments)]
pub async fn request_to(
    db: &DatabaseConnection,
    events: &Events,
    payouts: &Payouts,
    m: &member::Model,
    amount: rust_decimal::Decimal,
    key: &str,
    terms: Terms,
    channel: Option<PayoutChannel>,
    now: DateTime<Utc>,
) -> Result<withdrawal::Model> {
    let key = key.trim();
    if key.is_empty() || key.len() > 128 {
        return Err(Error::validation(
            "idempotencyKey",
            "must be 1 to 128 characters",
        ));
    }
    let amount = Money::from_decimal(amount)
        .filter(|a| a.fen() > 0)
        .ok_or_else(|| {
            Error::validation("amount", "must be above 0 with at most 2 decimal places")
        })?;
    if m.frozen_at.is_some() {
        return Err(Error::rule("MEMBER_FROZEN", "this account is frozen"));
    }
    let Terms { minimum, fee_rate } = terms;
    if amount < minimum {
        return Err(Error::rule(
            "WITHDRAWAL_BELOW_MINIMUM",
            format!("the minimum withdrawal is {minimum}"),
        ));
    }
    let fee = Money::floor_from_decimal(amount.to_decimal() * fee_rate.to_decimal())
        .unwrap_or(Money::ZERO);
    let destination = super::payouts::destination(
        db,
        payouts,
        m.id,
        channel,
        Money::from_fen(amount.fen() - fee.fen()),
    )
    .await?;
    let model = withdrawal::Model {
        id: Uuid::now_v7(),
        member_id: m.id,
        amount,
        fee,
        idempotency_key: key.to_owned(),
        status: withdrawal::Status::Pending,
        created_at: now,
        reviewed_at: None,
        reviewer_id: None,
        payout_channel: Some(destination.channel.code().to_owned()),
        payout_account: destination.account,
        payout_holder: destination.holder,
        payout_bank: destination.bank,
        payout_reference: None,
        payout_error: None,
        payout_client_params: None,
        finished_at: None,
    };
    let txn = crate::db::begin_write(db).await?;
    let inserted = withdrawal::Entity::insert(withdrawal::ActiveModel::from(model.clone()))
        .exec_without_returning(&txn)
        .await;
    if let Err(e) = inserted {
        if crate::db::is_unique_violation(&e) {
            drop(txn);
            let existing = withdrawal::Entity::find()
                .filter(withdrawal::Column::MemberId.eq(m.id))
                .filter(withdrawal::Column::IdempotencyKey.eq(key))
                .one(db)
                .await?
                .ok_or_else(|| Error::internal(anyhow::anyhow!("withdrawal vanished")))?;
            if existing.amount != amount {
                return Err(Error::rule(
                    "IDEMPOTENCY_CONFLICT",
                    "this idempotency key was used for another amount",
                ));
            }
            return Ok(existing);
        }
        return Err(e.into());
    }
    let reserved = balance::Entity::update_many()
        .col_expr(
            balance::Column::Available,
            Expr::col(balance::Column::Available).sub(amount.fen()),
        )
        .col_expr(
            balance::Column::Reserved,
            Expr::col(balance::Column::Reserved).add(amount.fen()),
        )
        .col_expr(balance::Column::UpdatedAt, Expr::value(now))
        .filter(balance::Column::MemberId.eq(m.id))
        .filter(balance::Column::Available.gte(amount.fen()))
        .exec(&txn)
        .await?;
    if reserved.rows_affected == 0 {
        return Err(Error::rule(
            "INSUFFICIENT_BALANCE",
            "the available balance is lower than the amount",
        ));
    }
    let d = Deltas {
        available: -amount.fen(),
        reserved: amount.fen(),
        ..Deltas::default()
    };
    ledger::append(
        &txn,
        m.id,
        Entry::WithdrawalRequested,
        Refs {
            earning: None,
            withdrawal: Some(model.id),
        },
        d,
        now,
    )
    .await?;
    super::webhooks::record(
        &txn,
        "withdrawal.requested",
        super::webhooks::withdrawal_data(&model, "PENDING"),
        now,
    )
    .await?;
    txn.commit().await?;
    events
        .publish(vec![Event::new(m.id, Kind::WithdrawalChanged, model.id)])
        .await;
    Ok(model)
}

/// An admin approves (pays out) or rejects (returns the funds) a pending withdrawal, once.
pub async fn review(
    db: &DatabaseConnection,
    events: &Events,
    admin: Uuid,
    id: Uuid,
    approve: bool,
    now: DateTime<Utc>,
) -> Result<withdrawal::Model> {
    review_as(db, events, &Actor::new(admin, None), id, approve, now).await
}

/// [`review`] by `actor`, whose audit entry (the decision, the amount) is written in the
/// review's transaction. Only `MANUAL` payouts (see [`review_with`]).
pub async fn review_as(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    id: Uuid,
    approve: bool,
    now: DateTime<Utc>,
) -> Result<withdrawal::Model> {
    let payouts = Payouts::default();
    review_with(db, events, &payouts, actor, id, approve, now).await
}

/// [`review_as`] with the enabled payout channels: approving moves the withdrawal to
/// `PROCESSING` (nothing booked: the amount stays reserved), commits, then starts its payout
/// (an answer that settles it books it at once; otherwise a notification, `syncPayout` or an
/// admin's `markPayoutPaid` / `markPayoutFailed` ends it). A provider that cannot be reached
/// leaves it `PROCESSING` with the error noted. Rejecting returns the funds, as before.
pub async fn review_with(
    db: &DatabaseConnection,
    events: &Events,
    payouts: &Payouts,
    actor: &Actor,
    id: Uuid,
    approve: bool,
    now: DateTime<Utc>,
) -> Result<withdrawal::Model> {
    let admin = actor.member;
    let w = withdrawal::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("withdrawal"))?;
    if approve && w.status == withdrawal::Status::Pending {
        let channel = super::payouts::channel_of(&w);
        if payouts.get(channel).is_none() {
            return Err(Error::rule(
                "PAYOUT_CHANNEL_UNAVAILABLE",
                format!("{} payouts are not enabled", channel.code()),
            ));
        }
    }
    let txn = crate::db::begin_write(db).await?;
    let to = if approve {
        withdrawal::Status::Processing
    } else {
        withdrawal::Status::Rejected
    };
    let updated = withdrawal::Entity::update_many()
        .col_expr(withdrawal::Column::Status, Expr::value(to))
        .col_expr(withdrawal::Column::ReviewedAt, Expr::value(now))
        .col_expr(withdrawal::Column::ReviewerId, Expr::value(admin))
        .filter(withdrawal::Column::Id.eq(id))
        .filter(withdrawal::Column::Status.eq(withdrawal::Status::Pending))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(Error::rule(
            "ALREADY_REVIEWED",
            "this withdrawal was reviewed already",
        ));
    }
    let refs = Refs {
        earning: None,
        withdrawal: Some(id),
    };
    let amount = w.amount.fen();
    if !approve {
        let d = Deltas {
            reserved: -amount,
            available: amount,
            ..Deltas::default()
        };
        ledger::book(&txn, w.member_id, Entry::WithdrawalRejected, refs, d, now).await?;
    }
    let action = if approve {
        Action::WithdrawalApproved
    } else {
        Action::WithdrawalRejected
    };
    audit::record(
        &txn,
        actor,
        action,
        Some((TargetType::Withdrawal, id)),
        serde_json::json!({
            "memberId": w.member_id.to_string(),
            "amount": w.amount.to_decimal().to_string(),
            "fee": w.fee.to_decimal().to_string(),
            "payoutChannel": w.payout_channel,
        }),
        now,
    )
    .await?;
    let w = withdrawal::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("withdrawal"))?;
    let (kind, status) = if approve {
        ("withdrawal.approved", "PROCESSING")
    } else {
        ("withdrawal.rejected", "REJECTED")
    };
    super::webhooks::record(
        &txn,
        kind,
        super::webhooks::withdrawal_data(&w, status),
        now,
    )
    .await?;
    txn.commit().await?;
    events
        .publish(vec![Event::new(w.member_id, Kind::WithdrawalChanged, w.id)])
        .await;
    if approve {
        return super::payouts::start(db, events, payouts, w, now).await;
    }
    Ok(w)
}

/// Books a withdrawal's payout as paid, in `txn`: the amount less the fee and the fee
/// leave the reserved balance for the withdrawn one.
pub(crate) async fn book_paid(
    txn: &impl ConnectionTrait,
    w: &withdrawal::Model,
    now: DateTime<Utc>,
) -> Result<()> {
    let refs = Refs {
        earning: None,
        withdrawal: Some(w.id),
    };
    let (amount, fee) = (w.amount.fen(), w.fee.fen());
    let payout = Deltas {
        reserved: -(amount - fee),
        withdrawn: amount - fee,
        ..Deltas::default()
    };
    ledger::book(txn, w.member_id, Entry::WithdrawalPaid, refs, payout, now).await?;
    if fee > 0 {
        let d = Deltas {
            reserved: -fee,
            withdrawn: fee,
            ..Deltas::default()
        };
        ledger::book(txn, w.member_id, Entry::WithdrawalFee, refs, d, now).await?;
    }
    super::webhooks::record(
        txn,
        "withdrawal.paid",
        super::webhooks::withdrawal_data(w, "PAID"),
        now,
    )
    .await
}

/// Books a failed payout, in `txn`: the whole reserved amount returns to the available
/// balance in one entry.
pub(crate) async fn book_failed(
    txn: &impl ConnectionTrait,
    w: &withdrawal::Model,
    now: DateTime<Utc>,
) -> Result<()> {
    let refs = Refs {
        earning: None,
        withdrawal: Some(w.id),
    };
    let d = Deltas {
        reserved: -w.amount.fen(),
        available: w.amount.fen(),
        ..Deltas::default()
    };
    ledger::book(txn, w.member_id, Entry::WithdrawalFailed, refs, d, now).await?;
    super::webhooks::record(
        txn,
        "withdrawal.failed",
        super::webhooks::withdrawal_data(w, "FAILED"),
        now,
    )
    .await
}

/// A withdrawal `viewer` may see (its member's and admins'), or `NOT_FOUND`.
pub async fn visible(
    db: &impl ConnectionTrait,
    viewer: &super::auth::Viewer,
    id: Uuid,
) -> Result<withdrawal::Model> {
    withdrawal::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|w| viewer.is_or_admin(w.member_id))
        .ok_or_else(|| Error::not_found("withdrawal"))
}

/// `member`'s withdrawal `id`; `None` when it is gone or someone else's.
pub async fn of_member(
    db: &impl ConnectionTrait,
    member: Uuid,
    id: Uuid,
) -> Result<Option<withdrawal::Model>> {
    Ok(withdrawal::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|w| w.member_id == member))
}

/// Position after the last withdrawal of a page: newest first.
pub type WithdrawalCursor = super::page::NewestCursor;

/// What a withdrawal list is narrowed to: a member's own (`Member.withdrawals`) or the
/// admins' work list (`withdrawals(status)`). All given conditions hold.
#[derive(Clone, Copy, Debug, Default)]
pub struct WithdrawalFilter {
    pub member: Option<Uuid>,
    pub status: Option<withdrawal::Status>,
}

impl WithdrawalFilter {
    fn query(self) -> sea_orm::Select<withdrawal::Entity> {
        let mut q = withdrawal::Entity::find();
        if let Some(m) = self.member {
            q = q.filter(withdrawal::Column::MemberId.eq(m));
        }
        if let Some(s) = self.status {
            q = q.filter(withdrawal::Column::Status.eq(s));
        }
        q
    }
}

/// `member`'s withdrawals, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    member: Uuid,
    after: Option<&WithdrawalCursor>,
    first: u64,
) -> Result<super::page::Page<withdrawal::Model>> {
    let filter = WithdrawalFilter {
        member: Some(member),
        status: None,
    };
    list_filtered(db, filter, after, first).await
}

/// The withdrawals `filter` admits, newest first.
pub async fn list_filtered(
    db: &impl ConnectionTrait,
    filter: WithdrawalFilter,
    after: Option<&WithdrawalCursor>,
    first: u64,
) -> Result<super::page::Page<withdrawal::Model>> {
    super::page::newest_first(
        db,
        filter.query(),
        withdrawal::Column::CreatedAt,
        withdrawal::Column::Id,
        after,
        first,
    )
    .await
}

/// How many withdrawals `filter` admits, when `wanted` ([`super::page::total`]).
pub async fn total(
    db: &impl ConnectionTrait,
    filter: WithdrawalFilter,
    wanted: bool,
) -> Result<Option<u64>> {
    super::page::total(db, filter.query(), wanted).await
}
