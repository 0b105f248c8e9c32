//! Table `leaderboard_counters`: a member's net settled amount on one leaderboard in one
//! period, moved in the transaction of each settlement or claw-back that changes it.

use sea_orm::entity::prelude::*;

use crate::money::Money;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "leaderboard_counters")]
pub struct Model {
    /// `EARNINGS` or `TEAM_SALES`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub board: String,
    /// `WEEK` or `MONTH`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    /// The Asia/Shanghai date the period starts on, `YYYY-MM-DD` (a Monday, or the 1st).
    #[sea_orm(primary_key, auto_increment = false)]
    pub starts_on: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub member_id: Uuid,
    /// Net settled amount (may be zero or negative after claw-backs).
    pub amount: Money,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
