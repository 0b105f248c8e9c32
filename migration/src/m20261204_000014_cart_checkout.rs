//! The cart and the checkout from it.
//!
//! - `cart_lines`: a member's cart, one row per member and SKU (a unique index: concurrent
//!   adds of one SKU meet in one row), 1 to 999 units (a CHECK), the share code it was added
//!   with and the SKU's price at that moment (to flag a change). No foreign key to `skus`: a
//!   line outlives its SKU and says so (`unavailableReason: DELETED`).
//! - `order_lines.cart_line_id`: the cart line an order line was ordered from, unique: of
//!   concurrent checkouts of one cart line, one order gets it (the others break the index).
//! - `orders`: the shipping fee (part of `total`, never of a rebate base), the buyer's note,
//!   and the delivery address as it was at checkout (`ship_*`, null for an order placed
//!   without one).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The delivery address columns of `orders`, with their lengths (as `addresses` has them).
const SHIP_COLUMNS: [(&str, u32); 10] = [
    ("ship_recipient_name", 64),
    ("ship_phone", 16),
    ("ship_province_code", 6),
    ("ship_province_name", 32),
    ("ship_city_code", 6),
    ("ship_city_name", 32),
    ("ship_district_code", 6),
    ("ship_district_name", 32),
    ("ship_detail", 200),
    ("ship_postal_code", 6),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("cart_lines")
                    .col(pk_uuid("id"))
                    .col(uuid("member_id"))
                    .col(uuid("sku_id"))
                    .col(
                        integer("quantity").check(
                            Expr::col("quantity")
                                .gte(1)
                                .and(Expr::col("quantity").lte(999)),
                        ),
                    )
                    .col(string_len_null("share_code", 16))
                    // The SKU's price when the line was added (fen).
                    .col(big_integer("unit_price").check(Expr::col("unit_price").gte(0)))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_cart_lines_member_id")
                            .from("cart_lines", "member_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_cart_lines_member_sku")
                    .table("cart_lines")
                    .col("member_id")
                    .col("sku_id")
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table("order_lines")
                    .add_column(uuid_null("cart_line_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_order_lines_cart_line")
                    .table("order_lines")
                    .col("cart_line_id")
                    .unique()
                    .to_owned(),
            )
            .await?;

        // One column per statement: SQLite alters one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table("orders")
                    .add_column(
                        big_integer("shipping_fee")
                            .default(0)
                            .check(Expr::col("shipping_fee").gte(0)),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("orders")
                    .add_column(string_len_null("buyer_note", 800))
                    .to_owned(),
            )
            .await?;
        for (name, len) in SHIP_COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table("orders")
                        .add_column(string_len_null(name, len))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in SHIP_COLUMNS
            .iter()
            .map(|(n, _)| *n)
            .chain(["buyer_note", "shipping_fee"])
        {
            manager
                .alter_table(Table::alter().table("orders").drop_column(name).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_order_lines_cart_line")
                    .table("order_lines")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("order_lines")
                    .drop_column("cart_line_id")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table("cart_lines").to_owned())
            .await
    }
}
