//! Monthly ledger totals: each member's net earnings per calendar month (UTC), kept by the
//! ledger in the same transaction as its entries, so `earningsSummary.thisMonth` reads one
//! row instead of summing a month of entries. Backfilled from the entries.

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
                    .table("ledger_months")
                    .col(uuid("member_id"))
                    .col(string_len("period", 7))
                    .col(big_integer("lifetime"))
                    .primary_key(Index::create().col("member_id").col("period"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let period = match db.get_database_backend() {
            DbBackend::Postgres => "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM')",
            // RFC 3339 text in UTC: the month is its first seven characters.
            _ => "substr(created_at, 1, 7)",
        };
        db.execute_unprepared(&format!(
            "INSERT INTO ledger_months (member_id, period, lifetime) \
             SELECT member_id, {period}, SUM(lifetime_delta) FROM ledger_entries \
             WHERE lifetime_delta <> 0 GROUP BY member_id, {period}"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("ledger_months").to_owned())
            .await
    }
}
