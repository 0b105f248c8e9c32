//! Payment intents: one per order and channel, the payment opened at a provider
//! (`createPayment`). The unique (order, channel) index makes concurrent `createPayment`s
//! of one order and channel open one intent; the provider's reference is unique, so one
//! provider payment belongs to one intent.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("payment_intents")
                    .col(pk_uuid("id"))
                    .col(uuid("order_id"))
                    .col(string_len("channel", 16))
                    .col(big_integer("amount").check(Expr::col("amount").gt(0)))
                    .col(string_len("status", 16))
                    .col(string_len_null("provider_reference", 128))
                    .col(text_null("client_params"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("paid_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_payment_intents_order_id")
                            .from("payment_intents", "order_id")
                            .to("orders", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payment_intents_order_channel")
                    .table("payment_intents")
                    .col("order_id")
                    .col("channel")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payment_intents_provider_reference")
                    .table("payment_intents")
                    .col("channel")
                    .col("provider_reference")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("payment_intents").to_owned())
            .await
    }
}
