//! 种草 notes (issue #30, item 1).
//!
//! - `notes`: one row per note, holding two versions side by side: the author's working copy
//!   (`title`, `body`, `image_urls`, `product_ids`, its review `status` and the curator's
//!   `review_reason`) and the approved, public one (`published_*`, null until a first
//!   approval). An edit under review changes the working copy only, so the approved version
//!   stays what the public reads. `is_public` (a published version that reports have not
//!   hidden) is what the public listings filter on; `like_count` (CHECK ≥ 0) and `hot_rank`
//!   (the HOT score, see `service::notes`) are kept in the row, so both feeds are keyset scans
//!   of an index.
//! - `note_products`: the products the *public* version links, in display order; rewritten
//!   on each approval. The `productId` and `categoryId` filters read it.
//! - `note_likes`: one row per note and member (the primary key): a like counts once.
//! - `note_reports`: one row per note and reporter (the primary key): a report flood from one
//!   member counts once.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("notes")
                    .col(pk_uuid("id"))
                    .col(uuid("author_id"))
                    .col(string_len("title", 200))
                    .col(text("body"))
                    .col(text("image_urls"))
                    .col(text("product_ids"))
                    .col(string_len("status", 16).check(
                        Expr::col("status").is_in(["DRAFT", "PENDING", "APPROVED", "REJECTED"]),
                    ))
                    .col(string_len_null("review_reason", 2000))
                    .col(string_len_null("published_title", 200))
                    .col(text_null("published_body"))
                    .col(text_null("published_image_urls"))
                    .col(timestamp_with_time_zone_null("first_published_at"))
                    .col(timestamp_with_time_zone_null("published_at"))
                    .col(timestamp_with_time_zone_null("hidden_at"))
                    .col(boolean("is_public").default(false))
                    .col(
                        integer("report_count")
                            .default(0)
                            .check(Expr::col("report_count").gte(0)),
                    )
                    .col(
                        integer("like_count")
                            .default(0)
                            .check(Expr::col("like_count").gte(0)),
                    )
                    .col(big_integer("hot_rank").default(0))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    // Public means approved once (a first publication time) and not hidden.
                    .check(
                        Expr::col("is_public")
                            .eq(false)
                            .or(Expr::col("first_published_at")
                                .is_not_null()
                                .and(Expr::col("published_title").is_not_null())
                                .and(Expr::col("hidden_at").is_null())),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notes_author_id")
                            .from("notes", "author_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_notes_author", &["author_id", "created_at", "id"][..]),
            (
                "idx_notes_latest",
                &["is_public", "first_published_at", "id"][..],
            ),
            ("idx_notes_hot", &["is_public", "hot_rank", "id"][..]),
            ("idx_notes_review", &["status", "updated_at", "id"][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table("notes");
            for c in cols {
                index.col(*c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("note_products")
                    .col(uuid("note_id"))
                    .col(uuid("product_id"))
                    .col(small_integer("position"))
                    .primary_key(Index::create().col("note_id").col("product_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_note_products_note_id")
                            .from("note_products", "note_id")
                            .to("notes", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_note_products_product_id")
                            .from("note_products", "product_id")
                            .to("products", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_note_products_product")
                    .table("note_products")
                    .col("product_id")
                    .col("note_id")
                    .to_owned(),
            )
            .await?;
        for table in ["note_likes", "note_reports"] {
            let mut t = Table::create();
            t.table(table)
                .col(uuid("note_id"))
                .col(uuid("member_id"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("note_id").col("member_id"))
                .foreign_key(
                    ForeignKey::create()
                        .name(format!("fk_{table}_note_id"))
                        .from(table, "note_id")
                        .to("notes", "id"),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name(format!("fk_{table}_member_id"))
                        .from(table, "member_id")
                        .to("members", "id"),
                );
            if table == "note_reports" {
                t.col(string_len_null("reason", 500));
            }
            manager.create_table(t.to_owned()).await?;
            manager
                .create_index(
                    Index::create()
                        .name(format!("idx_{table}_member"))
                        .table(table)
                        .col("member_id")
                        .col("note_id")
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["note_reports", "note_likes", "note_products", "notes"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
