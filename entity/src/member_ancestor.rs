//! Table `member_ancestors`: the closure of the active hierarchy to depth 3 — one row per
//! (ancestor, descendant) pair at most three levels apart.
//!
//! Why a depth-bounded closure table: team pages of any level and team counts must stay fast
//! for members with a million descendants, and a closure row per level gives an index seek
//! for both. Depth is bounded because only three levels ever matter (commissions stop at
//! three by law, teams are shown two or three levels deep); that keeps each member at no
//! more than three rows and bounds the cost of moving a subtree.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "member_ancestors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub ancestor_id: Uuid,
    /// 1 = direct downline, up to 3.
    #[sea_orm(primary_key, auto_increment = false)]
    pub depth: i16,
    #[sea_orm(primary_key, auto_increment = false)]
    pub descendant_id: Uuid,
    /// When the descendant entered this ancestor's team.
    pub since: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
