//! The merchants' side (issue #31, items 2 and 4).
//!
//! - `category_service_fees`: the platform's service fee of a category, as admins set it
//!   (`setCategoryServiceFee`), one row per change with the time it takes effect. Rows are
//!   appended, never edited: a supplier statement reads, for each line, the rate in force
//!   when its order was paid, so setting a new rate never rewrites a past statement. Rates
//!   are basis points, 0 to 10000 (100 %), checked by the database.
//! - `product_drafts`: a merchant's working copy of a product that has been listed (one per
//!   product: the primary key), waiting for a curator's review (`PENDING`) or sent back
//!   (`REJECTED`). The product's own row stays the published version until a curator
//!   approves the copy, which then replaces it and deletes the draft.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("category_service_fees")
                    .col(pk_uuid("id"))
                    .col(uuid("category_id"))
                    .col(
                        integer("rate")
                            .check(Expr::col("rate").gte(0).and(Expr::col("rate").lte(10_000))),
                    )
                    .col(timestamp_with_time_zone("effective_from"))
                    .col(uuid_null("set_by"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_category_service_fees_category_id")
                            .from("category_service_fees", "category_id")
                            .to("categories", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_category_service_fees_category")
                    .table("category_service_fees")
                    .col("category_id")
                    .col("effective_from")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("product_drafts")
                    .col(uuid("product_id").primary_key())
                    .col(uuid("merchant_id"))
                    .col(text("content"))
                    .col(
                        string_len("status", 16)
                            .check(Expr::col("status").is_in(["PENDING", "REJECTED"])),
                    )
                    .col(string_len_null("review_reason", 2000))
                    .col(uuid_null("reviewed_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_product_drafts_product_id")
                            .from("product_drafts", "product_id")
                            .to("products", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_product_drafts_queue")
                    .table("product_drafts")
                    .col("status")
                    .col("updated_at")
                    .col("product_id")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("product_drafts").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("category_service_fees").to_owned())
            .await?;
        Ok(())
    }
}
