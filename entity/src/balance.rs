//! Table `balances`: a member's balances, the running sums of its ledger entries, updated in
//! the same transaction as each entry (and checked against them by the consistency check).

use crate::money::Money;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "balances")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub member_id: Uuid,
    /// Earned, not yet settled.
    pub pending: Money,
    /// Settled and withdrawable; may go negative after a clawback.
    pub available: Money,
    /// Held by withdrawals awaiting review.
    pub reserved: Money,
    /// Paid out.
    pub withdrawn: Money,
    /// Everything ever earned, net of reversals and adjustments.
    pub lifetime: Money,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
