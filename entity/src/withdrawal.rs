//! Table `withdrawals`: a member's request to be paid out, unique per idempotency key.

use crate::money::Money;
use sea_orm::entity::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Status {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// Paid out.
    #[sea_orm(string_value = "APPROVED")]
    Approved,
    /// Funds returned to the available balance.
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "withdrawals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub member_id: Uuid,
    /// Taken from the available balance at request time.
    pub amount: Money,
    /// Part of `amount` kept as the withdrawal fee; the payout is `amount - fee`.
    pub fee: Money,
    pub idempotency_key: String,
    pub status: Status,
    pub created_at: DateTimeUtc,
    pub reviewed_at: Option<DateTimeUtc>,
    pub reviewer_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
