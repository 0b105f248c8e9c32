//! Membership rewards per member and UTC day: the counter the optional daily cap reads.
//!
//! A payment reads the member's counter, books what fits under the cap, and moves the counter
//! from exactly the figure it read ([`take`], a guard of the payment's batch): of two
//! payments that read the same figure, one books and the other finds the counter moved, reads
//! again and books what is left. Without a cap the counter still moves ([`add`]), so a cap
//! turned on later counts the day from its start. A reward reversed by a refund gives its
//! amount back to the day it was earned on ([`give_back`]).

use chrono::{DateTime, Utc};
use entity::{Money, membership_reward_day as day_row};
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, OnConflict};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, QueryTrait};
use uuid::Uuid;

use crate::error::Result;

/// The UTC day of `t`, as the counter keys it: `YYYY-MM-DD`.
pub fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The membership rewards `member` holds from the day of `now`, in fen.
pub async fn read(db: &impl ConnectionTrait, member: Uuid, now: DateTime<Utc>) -> Result<i64> {
    Ok(day_row::Entity::find_by_id((member, day(now)))
        .one(db)
        .await?
        .map_or(0, |r| r.amount.fen()))
}

fn upsert(member: Uuid, day: String, amount: i64, on_conflict: OnConflict) -> InsertStatement {
    day_row::Entity::insert(day_row::ActiveModel {
        member_id: Set(member),
        day: Set(day),
        amount: Set(Money::from_fen(amount)),
    })
    .on_conflict(on_conflict)
    .into_query()
}

/// Moves the counter from `seen` (the figure read) to `seen + amount`; changes no row if it
/// no longer says `seen` (a guard: the caller's batch then does not run).
pub fn take(member: Uuid, day: String, seen: i64, amount: i64) -> InsertStatement {
    upsert(
        member,
        day,
        seen + amount,
        OnConflict::columns([day_row::Column::MemberId, day_row::Column::Day])
            .update_column(day_row::Column::Amount)
            .action_and_where(Expr::col((day_row::Entity, day_row::Column::Amount)).eq(seen))
            .to_owned(),
    )
}

/// Adds `amount` to the counter, whatever it says.
pub fn add(member: Uuid, day: String, amount: i64) -> InsertStatement {
    upsert(
        member,
        day,
        amount,
        OnConflict::columns([day_row::Column::MemberId, day_row::Column::Day])
            .value(
                day_row::Column::Amount,
                Expr::cust("membership_reward_days.amount + excluded.amount"),
            )
            .to_owned(),
    )
}

/// Takes a reversed reward of `amount` earned at `earned_at` off its day.
pub async fn give_back(
    txn: &impl ConnectionTrait,
    member: Uuid,
    earned_at: DateTime<Utc>,
    amount: i64,
) -> Result<()> {
    txn.execute(&add(member, day(earned_at), -amount)).await?;
    Ok(())
}
