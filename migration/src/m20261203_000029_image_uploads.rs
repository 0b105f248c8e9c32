//! Presigned image uploads and the upload limit's lock (issue #31, item 3).
//!
//! `image_uploads`: one row per `createImageUpload`, until `completeImageUpload` turns it
//! into an `images` row (or refuses it) and deletes it. The client PUTs the bytes straight
//! to the store under `uploads/<id>`; the row says who may complete it, for what, until
//! when.
//!
//! `image_upload_quotas`: one row per member who has uploaded, updated in every upload's
//! transaction before the last hour's uploads are counted: the update takes the row's lock
//! (PostgreSQL) or the database's write lock (SQLite), so one member's uploads are counted
//! one at a time and `PUSHHAND_MEDIA_UPLOADS_PER_HOUR` holds however many arrive at once.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("image_uploads")
                    .col(pk_uuid("id"))
                    .col(uuid("owner_id"))
                    .col(string_len("purpose", 16))
                    .col(string_len("content_type", 32))
                    .col(big_integer("bytes"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_image_uploads_owner_id")
                            .from("image_uploads", "owner_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_image_uploads_owner_created")
                    .table("image_uploads")
                    .col("owner_id")
                    .col("created_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("image_upload_quotas")
                    .col(pk_uuid("member_id"))
                    .col(big_integer("uploads"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_image_upload_quotas_member_id")
                            .from("image_upload_quotas", "member_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("image_upload_quotas").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("image_uploads").to_owned())
            .await
    }
}
