//! An earning's line in one index instead of three (issues #27, #29: S9, S11).
//!
//! Every earning a payment books was written into six B-trees: its row's key, the member's
//! list, the due list, and three that all start at the line or the order —
//! `idx_earnings_one_per_line` (unique `(order_line_id, member_id, kind, level)`, partial:
//! not for adjustments, which a line gets one per partial refund), `idx_earnings_line`
//! (`order_line_id`, for the after-sales and claw-back reads, which read adjustments too)
//! and `idx_earnings_order` (`order_id`, read once, when an order completes). Each is at
//! least one page more in every commit's log and one more seek per earning; an order line
//! costs one earning per earner, so they are the part of a payment that grows with its
//! lines (docs/performance.md, "Session of 2026-12-06 (6)").
//!
//! Now one unique index, `idx_earnings_by_line`, keeps the rule and serves both reads: its
//! columns are the old unique index's and, last, the earning's own id for an adjustment and
//! a constant for any other kind — so two non-adjustments of one (line, member, kind, level)
//! still collide, adjustments never do, and a read by line (adjustments included) seeks on
//! the leading column. The completion's read by order goes through the order's lines
//! (`earnings::start_window`).
//!
//! Down restores the three indexes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // The id of an adjustment; for any other kind one value for all (PostgreSQL: the nil
        // UUID; SQLite, which stores a UUID as 16 bytes: the empty blob).
        let own = match db.get_database_backend() {
            DbBackend::Postgres => {
                "CASE WHEN kind = 'ADJUSTMENT' THEN id \
                 ELSE '00000000-0000-0000-0000-000000000000'::uuid END"
            }
            _ => "CASE WHEN kind = 'ADJUSTMENT' THEN id ELSE X'' END",
        };
        for sql in [
            "DROP INDEX IF EXISTS idx_earnings_one_per_line".to_owned(),
            "DROP INDEX IF EXISTS idx_earnings_line".to_owned(),
            "DROP INDEX IF EXISTS idx_earnings_order".to_owned(),
            format!(
                "CREATE UNIQUE INDEX idx_earnings_by_line \
                 ON earnings (order_line_id, member_id, kind, level, ({own}))"
            ),
        ] {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in [
            "DROP INDEX IF EXISTS idx_earnings_by_line",
            "CREATE UNIQUE INDEX idx_earnings_one_per_line \
             ON earnings (order_line_id, member_id, kind, level) WHERE kind <> 'ADJUSTMENT'",
            "CREATE INDEX idx_earnings_line ON earnings (order_line_id)",
            "CREATE INDEX idx_earnings_order ON earnings (order_id)",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
