//! One index for the funnel's visit counts instead of two (issue #30, S15): a visit row was
//! written into the table, its primary key and three indexes — the once-a-day unique key,
//! `(owner_id, day)` and `(note_id, target)` — and each index put the row on a page of its
//! own, so a visit cost about four 4 KiB pages of write-ahead log on SQLite (S15 wrote
//! ~100 MB of WAL a second at 6,700 visits/s). The funnel reads visits by owner and day (a
//! note's stats add the note), so one index `(owner_id, day, note_id, share_link_id,
//! target)` answers it from the index alone, and `(note_id, target)`, which no statement
//! used, goes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["idx_share_visits_owner", "idx_share_visits_note"] {
            manager
                .drop_index(Index::drop().name(name).table("share_visits").to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_share_visits_owner_days")
                    .table("share_visits")
                    .col("owner_id")
                    .col("day")
                    .col("note_id")
                    .col("share_link_id")
                    .col("target")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_share_visits_owner_days")
                    .table("share_visits")
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_share_visits_owner", ["owner_id", "day"]),
            ("idx_share_visits_note", ["note_id", "target"]),
        ] {
            let mut index = Index::create();
            index.name(name).table("share_visits");
            for c in cols {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }
}
