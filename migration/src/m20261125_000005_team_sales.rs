//! Team sales: the per-ancestor monthly counters also sum the paid amounts of the team's
//! orders, so `teamStats` reads team sales from a handful of rows.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("team_counters")
                    .add_column(big_integer("sales").default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("team_counters")
                    .drop_column("sales")
                    .to_owned(),
            )
            .await
    }
}
