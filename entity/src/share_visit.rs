//! Table `share_visits`: a visit of a short link (`/s/{code}`), one row per code, target,
//! visitor and UTC day (a unique index): a visitor counts once a day.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "share_visits")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The share code as stored (a share link's or a note's).
    pub code: String,
    /// `""` for the link itself; a product's id for a product clicked in a note.
    pub target: String,
    /// A salted hash of the visitor, changing every day (`service::funnel`).
    pub visitor: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Who the code credits.
    pub owner_id: Uuid,
    pub share_link_id: Option<Uuid>,
    pub note_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
