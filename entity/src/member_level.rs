//! Table `member_levels`: where an evaluated member stands — its level (none: `None`), since
//! when, and since when it falls short of that level (the grace period's start).

use crate::money::Money;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "member_levels")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub member_id: Uuid,
    pub level_id: Option<Uuid>,
    /// When the member reached its level (or lost its last one).
    pub since: DateTimeUtc,
    /// When the member first fell short of its level; `None` while it qualifies.
    pub short_since: Option<DateTimeUtc>,
    /// Settled, net sales over the first level's period at the last evaluation.
    pub sales: Money,
    pub evaluated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
