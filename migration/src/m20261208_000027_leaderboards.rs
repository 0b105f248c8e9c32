//! Leaderboards (issue #30, item 5): `leaderboard_counters` holds each member's net settled
//! amount per board (`EARNINGS`, `TEAM_SALES`), period kind (`WEEK`, `MONTH`) and period
//! (the Asia/Shanghai date it starts on), moved by the settlement and the claw-back that
//! change it, in their own transactions (`service::leaderboards`).
//!
//! - The primary key is the upsert's conflict target and a member's own row.
//! - `leaderboard_counters_rank` (board, period, starts_on, amount DESC, member_id) is the
//!   board's order: the top N is its first N entries of the period, and a member's rank the
//!   count of entries before theirs.
//! - `members_frozen` indexes the few frozen members, so that a rank subtracts the frozen
//!   members ahead without reading the rest.
//!
//! Not backfilled: the boards count from the migration on (earlier settlements are on no
//! board).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("leaderboard_counters")
                    .col(string_len("board", 16))
                    .col(string_len("period", 8))
                    .col(string_len("starts_on", 10))
                    .col(uuid("member_id"))
                    .col(big_integer("amount"))
                    .primary_key(
                        Index::create()
                            .col("board")
                            .col("period")
                            .col("starts_on")
                            .col("member_id"),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX leaderboard_counters_rank ON leaderboard_counters \
             (board, period, starts_on, amount DESC, member_id)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX members_frozen ON members (id) WHERE frozen_at IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS members_frozen")
            .await?;
        manager
            .drop_table(Table::drop().table("leaderboard_counters").to_owned())
            .await
    }
}
