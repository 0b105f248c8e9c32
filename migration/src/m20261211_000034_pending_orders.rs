//! A member's unpaid orders in an index of their own (issues #27, #29: S9 ÷ S6, S11 ÷ S6).
//!
//! Every checkout counts the buyer's unpaid, unexpired orders twice (the cap, before the
//! write and after its commit). It read `(buyer_id, status, expires_at)`, but PostgreSQL's
//! custom plan for `status = 'PENDING_PAYMENT'` took `(status, created_at, id)` instead —
//! the statistics say few orders are unpaid — and walked every buyer's unpaid entries, among
//! them the dead ones each payment leaves behind until vacuum (a payment changes `status`,
//! so it is never a HOT update): 330 buffers a count after S6's 10 seconds (docs/
//! performance.md, 2026-12-05). It was also planned afresh on most calls, its generic plan
//! costed above the custom one.
//!
//! The partial index `(buyer_id, expires_at) WHERE status = 'PENDING_PAYMENT'` holds only
//! unpaid orders, so a payment writes no entry into it; the count names the status as a
//! literal, so both stores' planners (and PostgreSQL's generic plan) match it to the
//! index's predicate and read the buyer's unpaid orders alone. It replaces
//! `idx_orders_buyer_status`, which nothing else read (a member's order list reads
//! `idx_orders_buyer`, newest first).
//!
//! On PostgreSQL the write scenarios are bound by the write-ahead log (the payments wait in
//! `WALWrite`; S6 and S9 both wrote ~6.5 MB of it a second), so what an order line writes is
//! what S9 ÷ S6 and S11 ÷ S6 come to. A B-tree holds NULL keys too: every order line wrote
//! an entry into `idx_order_lines_note` and `idx_order_lines_cart_line` even without a note
//! or a cart line (S9: 203 and 277 bytes of log an order; `pg_walinspect`). Both become
//! partial, `WHERE … IS NOT NULL`: every statement that reads them compares the column with
//! `=`, which implies it (both stores' planners prove that), and the cart line's uniqueness
//! is the same (NULLs were never equal). They take new names, `idx_order_lines_noted` and
//! `idx_order_lines_from_cart`: each is built before the whole one is dropped.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_orders_buyer_status")
                    .table("orders")
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_orders_pending ON orders (buyer_id, expires_at) \
                 WHERE status = 'PENDING_PAYMENT'",
            )
            .await?;
        for (old, new, column, unique) in PARTIAL {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "CREATE {unique}INDEX {new} ON order_lines ({column}) \
                     WHERE {column} IS NOT NULL"
                ))
                .await?;
            drop_index(manager, old).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (old, new, column, unique) in PARTIAL {
            let mut index = Index::create()
                .name(old)
                .table("order_lines")
                .col(column)
                .to_owned();
            if !unique.is_empty() {
                index.unique();
            }
            manager.create_index(index).await?;
            drop_index(manager, new).await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_orders_pending")
                    .table("orders")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_buyer_status")
                    .table("orders")
                    .col("buyer_id")
                    .col("status")
                    .col("expires_at")
                    .to_owned(),
            )
            .await
    }
}

/// The order lines' indexes of a nullable column: the whole one, the partial one that
/// replaces it (a new name: the index is created before the old one goes), the column,
/// `UNIQUE ` or not.
const PARTIAL: [(&str, &str, &str, &str); 2] = [
    (
        "idx_order_lines_note",
        "idx_order_lines_noted",
        "note_id",
        "",
    ),
    (
        "idx_order_lines_cart_line",
        "idx_order_lines_from_cart",
        "cart_line_id",
        "UNIQUE ",
    ),
];

async fn drop_index(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    manager
        .drop_index(Index::drop().name(name).table("order_lines").to_owned())
        .await
}
