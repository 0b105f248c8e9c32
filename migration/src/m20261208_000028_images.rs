//! Uploaded images (issue #31, item 3): `images`, one row per upload, the bytes in the media
//! store under `store_key`. Uploads per member are counted over the last hour (the upload
//! rate limit), hence the index on the owner and the time.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("images")
                    .col(pk_uuid("id"))
                    .col(uuid("owner_id"))
                    .col(string_len("purpose", 16))
                    .col(string_len("store_key", 200))
                    .col(string_len("content_type", 32))
                    .col(big_integer("bytes"))
                    .col(integer("width"))
                    .col(integer("height"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_images_owner_id")
                            .from("images", "owner_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_images_owner_created")
                    .table("images")
                    .col("owner_id")
                    .col("created_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("images").to_owned())
            .await
    }
}
