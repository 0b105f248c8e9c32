//! Table `membership_reward_days`: the membership rewards a member earned on a UTC day and
//! still holds (not reversed), the counter the optional daily cap reads and takes.

use sea_orm::entity::prelude::*;

use crate::money::Money;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "membership_reward_days")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub member_id: Uuid,
    /// `YYYY-MM-DD` (UTC) of the rewards' `created_at`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    pub amount: Money,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
