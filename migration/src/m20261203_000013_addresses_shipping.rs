//! The storefront's foundations: members' delivery addresses (收货地址) and the merchants'
//! shipping rules.
//!
//! - `addresses`: a member's addresses, with the region codes and the names they had when
//!   saved. At most one default per member: a partial unique index on `member_id` where
//!   `is_default` (PostgreSQL and SQLite alike), so no race can leave two. The service keeps
//!   the other half (a member with addresses has one default) and the limit of 20.
//! - `shipping_rules`: one per merchant (a flat fee, optionally waived from a subtotal), and
//!   `shipping_surcharges`: its remote-province surcharges, one row per province. Amounts are
//!   fen, never negative.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const ONE_DEFAULT: &str =
    "CREATE UNIQUE INDEX idx_addresses_one_default ON addresses (member_id) WHERE is_default";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("addresses")
                    .col(pk_uuid("id"))
                    .col(uuid("member_id"))
                    .col(string_len("recipient_name", 64))
                    // E.164, +86 and 11 digits.
                    .col(string_len("phone", 16))
                    .col(string_len("province_code", 6))
                    .col(string_len("province_name", 32))
                    .col(string_len("city_code", 6))
                    .col(string_len("city_name", 32))
                    .col(string_len("district_code", 6))
                    .col(string_len("district_name", 32))
                    .col(string_len("detail", 200))
                    .col(string_len_null("postal_code", 6))
                    .col(boolean("is_default"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_addresses_member_id")
                            .from("addresses", "member_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        // A member's addresses, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_addresses_member_created")
                    .table("addresses")
                    .col("member_id")
                    .col("created_at")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(ONE_DEFAULT)
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("shipping_rules")
                    .col(
                        ColumnDef::new("merchant_id")
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(big_integer("base_fee").check(Expr::col("base_fee").gte(0)))
                    // Null: the base fee is never waived.
                    .col(
                        big_integer_null("free_threshold").check(Expr::col("free_threshold").gt(0)),
                    )
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(uuid("updated_by"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_shipping_rules_merchant_id")
                            .from("shipping_rules", "merchant_id")
                            .to("merchants", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_shipping_rules_updated_by")
                            .from("shipping_rules", "updated_by")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("shipping_surcharges")
                    .col(uuid("merchant_id"))
                    .col(string_len("province_code", 6))
                    .col(big_integer("amount").check(Expr::col("amount").gt(0)))
                    .primary_key(
                        Index::create()
                            .name("pk_shipping_surcharges")
                            .col("merchant_id")
                            .col("province_code"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_shipping_surcharges_merchant_id")
                            .from("shipping_surcharges", "merchant_id")
                            .to("shipping_rules", "merchant_id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["shipping_surcharges", "shipping_rules", "addresses"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
