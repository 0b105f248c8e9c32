//! Table `categories`: the two-level category tree (top level has no parent).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "categories")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `None` for a top-level category; leaf categories point at their top-level parent.
    pub parent_id: Option<Uuid>,
    #[sea_orm(unique)]
    pub slug: String,
    pub name_zh: String,
    pub name_en: String,
    /// Display order among siblings.
    pub position: i32,
    /// When an admin archived it: hidden from the tree, no new products.
    pub archived_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
