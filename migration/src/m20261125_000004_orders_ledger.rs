//! Orders and money: share links, orders and their lines (with prices and rates
//! snapshotted), earnings, the append-only ledger, balances, and withdrawals.
//!
//! Money is BIGINT fen, rates INTEGER basis points (see `entity::money`).

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
                    .table("share_links")
                    .col(pk_uuid("id"))
                    .col(string_len_uniq("code", 16))
                    .col(uuid("member_id"))
                    .col(uuid("product_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut fk("share_links", "member_id", "members"))
                    .foreign_key(&mut fk("share_links", "product_id", "products"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_share_links_member_product")
                    .table("share_links")
                    .col("member_id")
                    .col("product_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("orders")
                    .col(pk_uuid("id"))
                    .col(uuid("buyer_id"))
                    .col(string_len("status", 16))
                    .col(big_integer("total").check(Expr::col("total").gte(0)))
                    .col(string_len_null("payment_reference", 128).unique_key())
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("paid_at"))
                    .col(timestamp_with_time_zone_null("shipped_at"))
                    .col(timestamp_with_time_zone_null("completed_at"))
                    .col(timestamp_with_time_zone_null("cancelled_at"))
                    .foreign_key(&mut fk("orders", "buyer_id", "members"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("order_lines")
                    .col(pk_uuid("id"))
                    .col(uuid("order_id"))
                    .col(uuid("product_id"))
                    .col(uuid("sku_id"))
                    .col(integer("quantity").check(Expr::col("quantity").between(1, 99)))
                    .col(big_integer("unit_price"))
                    .col(big_integer("amount"))
                    .col(integer("rebate_rate"))
                    .col(integer("team_rebate_rate"))
                    .col(boolean("membership_activity"))
                    .col(uuid_null("share_link_id"))
                    .col(timestamp_with_time_zone_null("refunded_at"))
                    .foreign_key(&mut fk("order_lines", "order_id", "orders"))
                    .foreign_key(&mut fk("order_lines", "sku_id", "skus"))
                    .to_owned(),
            )
            .await?;
        // An earning: who earns how much on which line, why, and where it stands. Its status
        // is a projection of the ledger events below, changed only by conditional updates.
        manager
            .create_table(
                Table::create()
                    .table("earnings")
                    .col(pk_uuid("id"))
                    .col(uuid("member_id"))
                    .col(uuid_null("order_id"))
                    .col(uuid_null("order_line_id"))
                    .col(uuid_null("product_id"))
                    .col(string_len("kind", 24))
                    .col(small_integer("level"))
                    .col(big_integer("amount"))
                    .col(string_len("status", 16))
                    .col(text("explanation"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("settle_after"))
                    .col(timestamp_with_time_zone_null("settled_at"))
                    .col(timestamp_with_time_zone_null("reversed_at"))
                    .foreign_key(&mut fk("earnings", "member_id", "members"))
                    .to_owned(),
            )
            .await?;
        // Append-only: every change of money, with its effect on each balance column.
        manager
            .create_table(
                Table::create()
                    .table("ledger_entries")
                    .col(pk_uuid("id"))
                    .col(uuid("member_id"))
                    .col(string_len("event", 32))
                    .col(uuid_null("earning_id"))
                    .col(uuid_null("withdrawal_id"))
                    .col(big_integer("pending_delta"))
                    .col(big_integer("available_delta"))
                    .col(big_integer("reserved_delta"))
                    .col(big_integer("withdrawn_delta"))
                    .col(big_integer("lifetime_delta"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut fk("ledger_entries", "member_id", "members"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("balances")
                    .col(uuid("member_id").primary_key())
                    .col(big_integer("pending").default(0))
                    .col(big_integer("available").default(0))
                    .col(big_integer("reserved").default(0))
                    .col(big_integer("withdrawn").default(0))
                    .col(big_integer("lifetime").default(0))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut fk("balances", "member_id", "members"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("withdrawals")
                    .col(pk_uuid("id"))
                    .col(uuid("member_id"))
                    .col(big_integer("amount").check(Expr::col("amount").gt(0)))
                    .col(big_integer("fee"))
                    .col(string_len("idempotency_key", 128))
                    .col(string_len("status", 16))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("reviewed_at"))
                    .col(uuid_null("reviewer_id"))
                    .foreign_key(&mut fk("withdrawals", "member_id", "members"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_withdrawals_idempotency")
                    .table("withdrawals")
                    .col("member_id")
                    .col("idempotency_key")
                    .unique()
                    .to_owned(),
            )
            .await?;
        for idx in [
            index("orders", "buyer", &["buyer_id", "created_at", "id"]),
            index("orders", "status_expiry", &["status", "expires_at"]),
            index("orders", "status_shipped", &["status", "shipped_at"]),
            index("order_lines", "order", &["order_id"]),
            index("earnings", "member", &["member_id", "created_at", "id"]),
            index("earnings", "line", &["order_line_id"]),
            index("earnings", "order", &["order_id"]),
            index("earnings", "due", &["status", "settle_after"]),
            index("ledger_entries", "member", &["member_id", "created_at"]),
            index("withdrawals", "member", &["member_id", "created_at", "id"]),
        ] {
            manager.create_index(idx).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "withdrawals",
            "balances",
            "ledger_entries",
            "earnings",
            "order_lines",
            "orders",
            "share_links",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
