//! Table `share_visits`: a visit of a short link (`/s/{code}`), one row per code, target,
//! visitor and UTC day (the primary key): a visitor counts once a day. On SQLite the table is
//! `WITHOUT ROWID`, so a visit is one entry in one B-tree (migration 33), and every insert is
//! counted into [`super::share_visit_count`] by a trigger in the same statement. On
//! PostgreSQL the counts are a view over these rows, read through the index `(owner_id, day,
//! share_link_id, note_id, target, code)` (migration 35).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "share_visits")]
pub struct Model {
    /// The share code as stored (a share link's or a note's).
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    /// `""` for the link itself; a product's id for a product clicked in a note.
    #[sea_orm(primary_key, auto_increment = false)]
    pub target: String,
    /// A salted hash of the visitor, changing every day (`service::funnel`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub visitor: String,
    /// The UTC day, `YYYY-MM-DD`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    /// Who the code credits.
    pub owner_id: Uuid,
    pub share_link_id: Option<Uuid>,
    pub note_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
