//! Table `levels`: push-hand levels (推手等级) admins define, ordered by `rank`. A level is
//! reached on settled, net sales over a rolling period (`min_sales` above zero, a CHECK:
//! never on headcount alone), kept `grace_days` after the member falls short of it.

use crate::money::Money;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "levels")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Unique.
    pub name: String,
    /// 1 = the first level; unique.
    pub rank: i32,
    /// Settled, net sales over `period_days` needed to reach it.
    pub min_sales: Money,
    pub period_days: i32,
    /// Team members (within the commission levels) needed besides the sales; 0: none.
    pub min_team_members: i32,
    /// Days a member keeps the level after falling short of it.
    pub grace_days: i32,
    pub description: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
