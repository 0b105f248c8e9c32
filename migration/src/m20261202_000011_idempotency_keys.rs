//! Idempotency keys of retried writes (`placeOrder`, `refundOrderLine`): one row per owner,
//! mutation and key, unique, written in the write's own transaction, so that concurrent
//! retries with one key make one order or one refund. Also an index to count a buyer's
//! unpaid orders (the cap on unpaid orders per member).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("idempotency_keys")
                    .col(pk_uuid("id"))
                    .col(uuid("owner_id"))
                    .col(string_len("scope", 32))
                    .col(string_len("key", 128))
                    .col(text("request"))
                    .col(uuid("result_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_idempotency_keys_owner_id")
                            .from("idempotency_keys", "owner_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_keys_owner_scope_key")
                    .table("idempotency_keys")
                    .col("owner_id")
                    .col("scope")
                    .col("key")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_buyer_status")
                    .table("orders")
                    .col("buyer_id")
                    .col("status")
                    .col("expires_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_orders_buyer_status")
                    .table("orders")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table("idempotency_keys").to_owned())
            .await
    }
}
