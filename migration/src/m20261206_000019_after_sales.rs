//! After-sales (售后): a buyer's request to get units of a received order line refunded
//! (`REFUND_ONLY`) or to send them back and be refunded (`RETURN_AND_REFUND`), reviewed by
//! an admin. The database keeps the invariants:
//!
//! - a request is for at least one unit and one fen, of one of two kinds, in one of seven
//!   states (CHECKs);
//! - **at most one open after-sale per order line** (`REQUESTED`, `APPROVED`,
//!   `RETURN_SHIPPED`, `REFUNDING`): a partial unique index, so two concurrent requests for
//!   the same line cannot both open, whatever the service read;
//! - a return shipment has a carrier and a tracking number together; a closed after-sale
//!   (`REFUNDED`, `REJECTED`, `CLOSED`) has its closing time, an open one none.
//!
//! The line's earnings are paused while it is open by clearing their `settle_after` (the
//! settlement only takes earnings due by a time); the pause's former deadline is kept here
//! (`paused_settle_after`) to resume them after a refund.

use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The states in which an after-sale is open (pauses its line's settlement).
const OPEN: &str = "('REQUESTED', 'APPROVED', 'RETURN_SHIPPED', 'REFUNDING')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("after_sales")
                    .col(pk_uuid("id"))
                    .col(uuid("order_id"))
                    .col(uuid("order_line_id"))
                    .col(uuid("buyer_id"))
                    .col(
                        string_len("kind", 24)
                            .check(Expr::col("kind").is_in(["REFUND_ONLY", "RETURN_AND_REFUND"])),
                    )
                    .col(string_len("status", 24).check(Expr::col("status").is_in([
                        "REQUESTED",
                        "APPROVED",
                        "RETURN_SHIPPED",
                        "REFUNDING",
                        "REFUNDED",
                        "REJECTED",
                        "CLOSED",
                    ])))
                    .col(integer("quantity").check(Expr::col("quantity").gt(0)))
                    .col(big_integer("amount").check(Expr::col("amount").gt(0)))
                    .col(text("reason"))
                    .col(text("evidence_urls"))
                    .col(text_null("review_note"))
                    .col(uuid_null("reviewed_by"))
                    .col(string_len_null("return_carrier", 16))
                    .col(string_len_null("return_tracking_number", 32))
                    .col(uuid_null("refund_id"))
                    .col(timestamp_with_time_zone_null("paused_settle_after"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("reviewed_at"))
                    .col(timestamp_with_time_zone_null("return_shipped_at"))
                    .col(timestamp_with_time_zone_null("received_at"))
                    .col(timestamp_with_time_zone_null("closed_at"))
                    .check(Expr::cust(
                        "(return_carrier IS NULL) = (return_tracking_number IS NULL)",
                    ))
                    .check(Expr::cust(format!(
                        "(status IN {OPEN}) = (closed_at IS NULL)"
                    )))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_after_sales_order_id")
                            .from("after_sales", "order_id")
                            .to("orders", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_after_sales_order_line_id")
                            .from("after_sales", "order_line_id")
                            .to("order_lines", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_after_sales_buyer_id")
                            .from("after_sales", "buyer_id")
                            .to("members", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_after_sales_refund_id")
                            .from("after_sales", "refund_id")
                            .to("refunds", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_after_sales_buyer",
                &["buyer_id", "created_at", "id"][..],
            ),
            (
                "idx_after_sales_status",
                &["status", "created_at", "id"][..],
            ),
            ("idx_after_sales_order_line_id", &["order_line_id"][..]),
            ("idx_after_sales_refund_id", &["refund_id"][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table("after_sales");
            for c in cols {
                index.col(*c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        // Both SQLite and PostgreSQL have partial indexes, with the same syntax.
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE UNIQUE INDEX ux_after_sales_open_line ON after_sales (order_line_id) \
                 WHERE status IN {OPEN}"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("after_sales").to_owned())
            .await
    }
}
