//! Table `image_upload_quotas`: one row per member who has uploaded an image, updated in
//! each upload's transaction before the last hour's uploads are counted, so that one
//! member's uploads are counted one at a time (the row's lock) and the hourly limit holds
//! under concurrency.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "image_upload_quotas")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub member_id: Uuid,
    /// Images this member has uploaded, ever.
    pub uploads: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
