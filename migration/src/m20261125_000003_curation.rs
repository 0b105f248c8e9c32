//! Curation: the append-only stage and score records, the per-product summary they roll up
//! into, merchant accounts linked to their merchant, and curation progress on products.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Each stage result, never updated: the audit trail.
        manager
            .create_table(
                Table::create()
                    .table("curation_stage_records")
                    .col(pk_uuid("id"))
                    .col(uuid("product_id"))
                    .col(string_len("stage", 24))
                    .col(string_len("result", 8))
                    .col(uuid("reviewer_id"))
                    .col(text_null("notes"))
                    .col(text("evidence_urls"))
                    .col(timestamp_with_time_zone("recorded_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_curation_stage_records_product_id")
                            .from("curation_stage_records", "product_id")
                            .to("products", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_curation_stage_records_product")
                    .table("curation_stage_records")
                    .col("product_id")
                    .col("recorded_at")
                    .to_owned(),
            )
            .await?;
        // Each scoring, never updated; the latest counts.
        manager
            .create_table(
                Table::create()
                    .table("curation_scores")
                    .col(pk_uuid("id"))
                    .col(uuid("product_id"))
                    .col(
                        small_integer("essential_need")
                            .check(Expr::col("essential_need").between(1, 5)),
                    )
                    .col(
                        small_integer("new_pain_point")
                            .check(Expr::col("new_pain_point").between(1, 5)),
                    )
                    .col(small_integer("longevity").check(Expr::col("longevity").between(1, 5)))
                    .col(
                        small_integer("quality_and_supply")
                            .check(Expr::col("quality_and_supply").between(1, 5)),
                    )
                    .col(boolean("high_quality"))
                    .col(boolean("high_design"))
                    .col(boolean("high_value"))
                    .col(boolean("eu_export_grade"))
                    .col(uuid("reviewer_id"))
                    .col(timestamp_with_time_zone("recorded_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_curation_scores_product_id")
                            .from("curation_scores", "product_id")
                            .to("products", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_curation_scores_product")
                    .table("curation_scores")
                    .col("product_id")
                    .col("recorded_at")
                    .to_owned(),
            )
            .await?;
        // The quality passport of a product, rewritten in the same transaction as every
        // record above: a page of products reads its passports in one statement.
        manager
            .create_table(
                Table::create()
                    .table("curation_summaries")
                    .col(uuid("product_id").primary_key())
                    .col(text("summary"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_curation_summaries_product_id")
                            .from("curation_summaries", "product_id")
                            .to("products", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("products")
                    .add_column(small_integer("stages_passed").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("products")
                    .add_column(string_len_null("unpublished_reason", 500))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("members")
                    .add_column(uuid_null("merchant_id"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared("INSERT INTO write_locks (name, version) VALUES ('publishing', 0)")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "curation_summaries",
            "curation_scores",
            "curation_stage_records",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
