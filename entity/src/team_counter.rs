//! Table `team_counters`: how many members joined an ancestor's team at each level in each
//! month, kept in step with `member_ancestors` in the same transaction.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "team_counters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub ancestor_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub depth: i16,
    /// Month the members joined, `YYYY-MM` (UTC).
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    pub members: i64,
    /// Paid amount (fen) of orders placed that month by members at this depth of the team,
    /// net of refunds.
    pub sales: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
