//! A note's public products in its own row (issue #30, S13): `notes.published_product_ids`,
//! a JSON array of product ids in display order, as `product_ids` holds the working copy's.
//!
//! A page of public notes with their products read the links from `note_products` in a
//! statement of its own, between the notes and the products: one of the feed's five
//! statements, each a round trip to a connection (on SQLite to the connection's worker
//! thread, and sqlx's pool pings the connection once more when it goes back). The HOT feed
//! (S13-raw) is bound by the server's core, and what it spends there is mostly handing
//! statements and rows across, not SQLite's work (docs/performance.md, "Session of
//! 2026-12-06 (4)"). `note_products` stays: the feed's filters by product and category, the
//! funnel and the cart's attribution find notes through it. The service writes both in the
//! same statement's transaction (approval, take-down); null means no public version.
//!
//! Up fills the column from `note_products` for every note with a public version. Down
//! drops it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::Uuid;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("notes")
                    .add_column(ColumnDef::new("published_product_ids").text().null())
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        // A public version without products links none: an empty list.
        manager
            .exec_stmt(
                Query::update()
                    .table("notes")
                    .value("published_product_ids", "[]")
                    .and_where(Expr::col("published_title").is_not_null())
                    .to_owned(),
            )
            .await?;
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT note_id, product_id FROM note_products ORDER BY note_id, position",
            ))
            .await?;
        let mut links: Vec<(Uuid, Vec<Uuid>)> = Vec::new();
        for row in rows {
            let note: Uuid = row.try_get("", "note_id")?;
            let product: Uuid = row.try_get("", "product_id")?;
            match links.last_mut() {
                Some((n, ps)) if *n == note => ps.push(product),
                _ => links.push((note, vec![product])),
            }
        }
        for (note, products) in links {
            // The text `serde_json` writes for a list of ids (the service reads it so).
            let list: Vec<String> = products.iter().map(|p| format!("\"{p}\"")).collect();
            manager
                .exec_stmt(
                    Query::update()
                        .table("notes")
                        .value("published_product_ids", format!("[{}]", list.join(",")))
                        .and_where(Expr::col("id").eq(note))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("notes")
                    .drop_column("published_product_ids")
                    .to_owned(),
            )
            .await
    }
}
