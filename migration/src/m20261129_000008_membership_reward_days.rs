//! Membership rewards per member and UTC day: the counter the optional daily cap on
//! `MEMBERSHIP_REWARD` reads and takes (a payment books against the figure it read, or books
//! nothing), kept by payments and refunds in their own transactions. Backfilled from the
//! earnings: every membership reward not reversed, on the day it was earned.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("membership_reward_days")
                    .col(uuid("member_id"))
                    .col(string_len("day", 10))
                    .col(big_integer("amount"))
                    .primary_key(Index::create().col("member_id").col("day"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let day = match db.get_database_backend() {
            DbBackend::Postgres => "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            // RFC 3339 text in UTC: the day is its first ten characters.
            _ => "substr(created_at, 1, 10)",
        };
        db.execute_unprepared(&format!(
            "INSERT INTO membership_reward_days (member_id, day, amount) \
             SELECT member_id, {day}, SUM(amount) FROM earnings \
             WHERE kind = 'MEMBERSHIP_REWARD' AND status <> 'REVERSED' \
             GROUP BY member_id, {day}"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("membership_reward_days").to_owned())
            .await
    }
}
