//! Table `ledger_months`: a member's net earnings (the sum of its entries' `lifetime_delta`)
//! per calendar month, kept by the ledger in the same transaction as the entries.

use sea_orm::entity::prelude::*;

use crate::money::Money;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_months")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub member_id: Uuid,
    /// `YYYY-MM` (UTC) of the entries' `created_at`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    pub lifetime: Money,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
