//! Table `ledger_entries`: the append-only ledger. Every movement of a member's money is one
//! row with its effect on each balance column; the balance row is their running sum.

use crate::money::Money;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub member_id: Uuid,
    /// `EARNED`, `SETTLED`, `REVERSED`, `ADJUSTED`, `WITHDRAWAL_REQUESTED`, `WITHDRAWAL_FEE`,
    /// `WITHDRAWAL_PAID`, `WITHDRAWAL_REJECTED`.
    pub event: String,
    pub earning_id: Option<Uuid>,
    pub withdrawal_id: Option<Uuid>,
    pub pending_delta: Money,
    pub available_delta: Money,
    pub reserved_delta: Money,
    pub withdrawn_delta: Money,
    pub lifetime_delta: Money,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
