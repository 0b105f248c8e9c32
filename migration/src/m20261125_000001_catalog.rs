//! The catalog: categories, merchants, brands, products, SKUs, images and tags, with an index
//! for every filter and sort order the product listing offers.
//!
//! Money columns are BIGINT fen and rates INTEGER basis points (see `entity::money`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk(from: &'static str, col: &'static str, to: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from}_{col}"))
        .from(from, col)
        .to(to, "id")
        .to_owned()
}

fn index(table: &'static str, name: &str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(format!("idx_{table}_{name}")).table(table);
    for c in cols {
        idx.col(*c);
    }
    idx.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("categories")
                    .col(pk_uuid("id"))
                    .col(uuid_null("parent_id"))
                    .col(string_len_uniq("slug", 64))
                    .col(string_len("name_zh", 64))
                    .col(string_len("name_en", 64))
                    .col(integer("position"))
                    .foreign_key(&mut fk("categories", "parent_id", "categories"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("merchants")
                    .col(pk_uuid("id"))
                    .col(string_len("name", 120))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("brands")
                    .col(pk_uuid("id"))
                    .col(uuid("merchant_id"))
                    .col(string_len_uniq("name", 120))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut fk("brands", "merchant_id", "merchants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("products")
                    .col(pk_uuid("id"))
                    .col(uuid("merchant_id"))
                    .col(uuid("brand_id"))
                    .col(uuid("category_id"))
                    .col(string_len("name", 120))
                    .col(string_len_null("name_en", 200))
                    .col(text_null("description"))
                    .col(string_len("status", 16))
                    .col(integer("rebate_rate").check(Expr::col("rebate_rate").between(0, 3000)))
                    .col(
                        integer("team_rebate_rate")
                            .check(Expr::col("team_rebate_rate").between(0, 3000)),
                    )
                    .col(boolean("membership_activity").default(false))
                    .col(big_integer("min_price"))
                    .col(big_integer("max_price"))
                    .col(big_integer("sales_count").default(0))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("published_at"))
                    .foreign_key(&mut fk("products", "merchant_id", "merchants"))
                    .foreign_key(&mut fk("products", "brand_id", "brands"))
                    .foreign_key(&mut fk("products", "category_id", "categories"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("skus")
                    .col(pk_uuid("id"))
                    .col(uuid("product_id"))
                    .col(string_len("name", 120))
                    .col(big_integer("price").check(Expr::col("price").gt(0)))
                    .col(integer("stock").check(Expr::col("stock").gte(0)))
                    .col(integer("position"))
                    .foreign_key(
                        fk("skus", "product_id", "products").on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("product_images")
                    .col(pk_uuid("id"))
                    .col(uuid("product_id"))
                    .col(string_len("url", 500))
                    .col(string_len_null("alt", 200))
                    .col(integer("position"))
                    .foreign_key(
                        fk("product_images", "product_id", "products")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("product_tags")
                    .col(uuid("product_id"))
                    .col(string_len("tag", 32))
                    .col(integer("position"))
                    .primary_key(Index::create().col("product_id").col("tag"))
                    .foreign_key(
                        fk("product_tags", "product_id", "products")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // One index per listing order: (status, sort key, id) serves the keyset seek of
        // `products(sort:)` on published products without a sort step.
        for idx in [
            index("products", "newest", &["status", "published_at", "id"]),
            index("products", "price", &["status", "min_price", "id"]),
            index("products", "rebate", &["status", "rebate_rate", "id"]),
            index("products", "sales", &["status", "sales_count", "id"]),
            index("products", "category", &["category_id", "status"]),
            index("products", "brand", &["brand_id", "status"]),
            index("products", "membership", &["membership_activity", "status"]),
            index("products", "merchant", &["merchant_id"]),
            index("skus", "product_price", &["product_id", "price"]),
            index("categories", "parent", &["parent_id", "position"]),
            index("brands", "merchant", &["merchant_id"]),
            index("product_images", "product", &["product_id", "position"]),
        ] {
            manager.create_index(idx).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "product_tags",
            "product_images",
            "skus",
            "products",
            "brands",
            "merchants",
            "categories",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
