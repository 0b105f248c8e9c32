//! Table `images`: uploaded product and note images. The bytes live in the media store
//! (`store_key`); the row records who uploaded them, what for, and what they are.

use sea_orm::entity::prelude::*;

/// What an image was uploaded for (who may upload it depends on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Purpose {
    /// A product image, uploaded by a merchant's user (or an admin).
    #[sea_orm(string_value = "PRODUCT")]
    Product,
    /// A note image, uploaded by a push-hand or partner (or an admin).
    #[sea_orm(string_value = "NOTE")]
    Note,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "images")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The member who uploaded it.
    pub owner_id: Uuid,
    pub purpose: Purpose,
    /// The original's key in the media store (`images/<id>.<ext>`), as re-encoded.
    pub store_key: String,
    /// `image/jpeg`, `image/png` or `image/webp`, sniffed from the bytes.
    pub content_type: String,
    /// Size of the stored original, in bytes.
    pub bytes: i64,
    /// In pixels, after the EXIF orientation was applied.
    pub width: i32,
    pub height: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
