//! Catalog management (issue #31, item 2).
//!
//! - `categories.archived_at`: an archived category is hidden from the tree and takes no
//!   new products; its rows stay (products and orders still point at it).
//! - Unique `(parent, position)` is not enforced: positions are display hints that an
//!   admin may leave equal (ties show in id order).
//! - Category writes serialise on a `write_locks` row of their own, `catalog`, taken
//!   first: two moves cannot together build a third level.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("categories")
                    .add_column(timestamp_with_time_zone_null("archived_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("INSERT INTO write_locks (name, version) VALUES ('catalog', 0)")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DELETE FROM write_locks WHERE name = 'catalog'")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("categories")
                    .drop_column("archived_at")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
