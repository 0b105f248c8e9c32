//! Table `image_uploads`: presigned uploads under way (`createImageUpload`), until
//! `completeImageUpload` checks the bytes the client PUT to the store (`uploads/<id>`) and
//! turns them into an image, or refuses them; either way the row goes.

use sea_orm::entity::prelude::*;

use crate::image::Purpose;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "image_uploads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The member who asked for it (the only one who may complete it).
    pub owner_id: Uuid,
    pub purpose: Purpose,
    /// The media type the client declared (the bytes are sniffed all the same).
    pub content_type: String,
    /// The size the client declared, in bytes.
    pub bytes: i64,
    /// When the presigned URL stops working; completing after it is `UPLOAD_EXPIRED`.
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
