//! `share_visit_counts`: how many visitors a code's target had on a UTC day — the rows of
//! [`super::share_visit`] counted by the database itself, so the count can never differ from
//! the rows. On SQLite a table kept by a trigger on insert and delete (migration 33); on
//! PostgreSQL a view that counts the rows (migration 35: there the trigger cost as much as
//! the visit). Read only; the funnel reads it by owner and days.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "share_visit_counts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub target: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    /// Who the code credits.
    pub owner_id: Uuid,
    pub share_link_id: Option<Uuid>,
    pub note_id: Option<Uuid>,
    /// Visitors that day.
    pub visits: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
