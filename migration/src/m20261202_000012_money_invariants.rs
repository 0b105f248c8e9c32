//! The money's invariants, kept by the database itself and not only by the application:
//!
//! - `ledger_entries` is append-only: a trigger refuses `UPDATE` and `DELETE` (and, on
//!   PostgreSQL, `TRUNCATE`), as on `audit_log`.
//! - An order line never refunds more units than it has: a CHECK on PostgreSQL; on SQLite,
//!   which cannot add a CHECK to an existing table without rebuilding it, triggers on insert
//!   and update.
//! - One earning per (order line, member, kind, level): a unique index, partial because a
//!   line's adjustments (one per partial refund) share those columns.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const ONE_EARNING: &str = "CREATE UNIQUE INDEX idx_earnings_one_per_line \
     ON earnings (order_line_id, member_id, kind, level) WHERE kind <> 'ADJUSTMENT'";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match db.get_database_backend() {
            DbBackend::Postgres => {
                for sql in [
                    "CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN RAISE EXCEPTION 'ledger_entries is append-only' USING ERRCODE = 'insufficient_privilege'; END $$",
                    "CREATE TRIGGER ledger_entries_no_change BEFORE UPDATE OR DELETE ON ledger_entries \
                     FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()",
                    "CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries \
                     FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only()",
                    "ALTER TABLE order_lines ADD CONSTRAINT ck_order_lines_refunded_quantity \
                     CHECK (refunded_quantity >= 0 AND refunded_quantity <= quantity)",
                    ONE_EARNING,
                ] {
                    db.execute_unprepared(sql).await?;
                }
            }
            _ => {
                for (name, event) in [("no_update", "UPDATE"), ("no_delete", "DELETE")] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER ledger_entries_{name} BEFORE {event} ON ledger_entries \
                         BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END"
                    ))
                    .await?;
                }
                for (name, event) in [
                    ("insert", "INSERT"),
                    ("update", "UPDATE OF refunded_quantity, quantity"),
                ] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER order_lines_refunded_quantity_{name} BEFORE {event} ON order_lines \
                         WHEN NEW.refunded_quantity < 0 OR NEW.refunded_quantity > NEW.quantity \
                         BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: refunded_quantity <= quantity'); END"
                    ))
                    .await?;
                }
                db.execute_unprepared(ONE_EARNING).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS idx_earnings_one_per_line")
            .await?;
        match db.get_database_backend() {
            DbBackend::Postgres => {
                for sql in [
                    "ALTER TABLE order_lines DROP CONSTRAINT IF EXISTS ck_order_lines_refunded_quantity",
                    "DROP TRIGGER IF EXISTS ledger_entries_no_change ON ledger_entries",
                    "DROP TRIGGER IF EXISTS ledger_entries_no_truncate ON ledger_entries",
                    "DROP FUNCTION IF EXISTS ledger_entries_append_only()",
                ] {
                    db.execute_unprepared(sql).await?;
                }
            }
            _ => {
                for name in [
                    "ledger_entries_no_update",
                    "ledger_entries_no_delete",
                    "order_lines_refunded_quantity_insert",
                    "order_lines_refunded_quantity_update",
                ] {
                    db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {name}"))
                        .await?;
                }
            }
        }
        Ok(())
    }
}
