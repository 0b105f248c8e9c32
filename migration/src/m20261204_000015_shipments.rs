//! Fulfilment: the parcels an order ships in, the buyer's cancellations, and the index the
//! admins' order list filters by.
//!
//! - `shipments`: one row per parcel of an order (carrier and tracking number; both null for
//!   a parcel shipped through the call without parcels, from before tracking).
//! - `shipment_lines`: the order lines each parcel covers. A line is in at most one parcel:
//!   a unique index on `order_line_id` (PostgreSQL and SQLite alike), so no two concurrent
//!   `shipOrder` calls can both ship it.
//! - `order_cancellations`: who cancelled an unpaid order and why (a buyer's `cancelOrder`;
//!   an expiry writes none), one row per order at most (its primary key).
//! - `idx_orders_status_created`, `idx_orders_created`: the admins' order list, newest first,
//!   with or without a status (a member filter uses `idx_orders_buyer`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("shipments")
                    .col(pk_uuid("id"))
                    .col(uuid("order_id"))
                    .col(string_len_null("carrier", 16))
                    .col(string_len_null("tracking_number", 32))
                    .col(timestamp_with_time_zone("shipped_at"))
                    // Null: shipped off the API (the command line, tests).
                    .col(uuid_null("shipped_by"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_shipments_order_id")
                            .from("shipments", "order_id")
                            .to("orders", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_shipments_shipped_by")
                            .from("shipments", "shipped_by")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_shipments_order")
                    .table("shipments")
                    .col("order_id")
                    .col("shipped_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("shipment_lines")
                    .col(uuid("shipment_id"))
                    .col(uuid("order_line_id"))
                    .primary_key(
                        Index::create()
                            .name("pk_shipment_lines")
                            .col("shipment_id")
                            .col("order_line_id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_shipment_lines_shipment_id")
                            .from("shipment_lines", "shipment_id")
                            .to("shipments", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_shipment_lines_order_line_id")
                            .from("shipment_lines", "order_line_id")
                            .to("order_lines", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        // A line ships once.
        manager
            .create_index(
                Index::create()
                    .name("idx_shipment_lines_one_parcel")
                    .table("shipment_lines")
                    .col("order_line_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("order_cancellations")
                    .col(ColumnDef::new("order_id").uuid().not_null().primary_key())
                    .col(string_len_null("reason", 200))
                    .col(uuid("cancelled_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_order_cancellations_order_id")
                            .from("order_cancellations", "order_id")
                            .to("orders", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_order_cancellations_cancelled_by")
                            .from("order_cancellations", "cancelled_by")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_status_created")
                    .table("orders")
                    .col("status")
                    .col("created_at")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_created")
                    .table("orders")
                    .col("created_at")
                    .col("id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["idx_orders_created", "idx_orders_status_created"] {
            manager
                .drop_index(Index::drop().name(name).table("orders").to_owned())
                .await?;
        }
        for table in ["order_cancellations", "shipment_lines", "shipments"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
