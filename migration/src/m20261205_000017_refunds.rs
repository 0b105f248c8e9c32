//! Provider refunds: a refund of a line of an order paid through a provider is a request to
//! that provider (`refunds`), with its own idempotent refund number, until the provider
//! confirms it. The units in flight are counted on the line (`order_lines.
//! refunding_quantity`), and the database keeps the invariants:
//!
//! - a line never refunds more units than it has, counting the units in flight:
//!   `refunded_quantity + refunding_quantity <= quantity` (a CHECK on PostgreSQL; triggers on
//!   SQLite, which cannot add a CHECK to an existing table without rebuilding it);
//! - one refund number per refund (`out_refund_no` unique), so a retry is the same request;
//! - a refund moves at least one unit and one fen, is in one of its four states, and is
//!   `SUCCEEDED` exactly when it has a completion time.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("order_lines")
                    .add_column(integer("refunding_quantity").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("refunds")
                    .col(pk_uuid("id"))
                    .col(uuid("order_id"))
                    .col(uuid("order_line_id"))
                    .col(uuid("intent_id"))
                    .col(string_len("channel", 16))
                    .col(string_len("out_refund_no", 64).unique_key())
                    .col(integer("quantity").check(Expr::col("quantity").gt(0)))
                    .col(big_integer("amount").check(Expr::col("amount").gt(0)))
                    .col(string_len("status", 16).check(Expr::col("status").is_in([
                        "PENDING",
                        "PROCESSING",
                        "SUCCEEDED",
                        "FAILED",
                    ])))
                    .col(text_null("failure_reason"))
                    .col(string_len_null("provider_reference", 128))
                    .col(
                        integer("attempts")
                            .default(0)
                            .check(Expr::col("attempts").gte(0)),
                    )
                    .col(uuid_null("requested_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("completed_at"))
                    .check(Expr::cust(
                        "(status = 'SUCCEEDED') = (completed_at IS NOT NULL)",
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refunds_order_id")
                            .from("refunds", "order_id")
                            .to("orders", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refunds_order_line_id")
                            .from("refunds", "order_line_id")
                            .to("order_lines", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refunds_intent_id")
                            .from("refunds", "intent_id")
                            .to("payment_intents", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_refunds_order_line_id", "order_line_id"),
            ("idx_refunds_order_id", "order_id"),
            ("idx_refunds_status", "status"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table("refunds")
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        match db.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "ALTER TABLE order_lines ADD CONSTRAINT ck_order_lines_refunding_quantity \
                     CHECK (refunding_quantity >= 0 AND refunded_quantity + refunding_quantity <= quantity)",
                )
                .await?;
            }
            _ => {
                for (name, event) in [
                    ("insert", "INSERT"),
                    (
                        "update",
                        "UPDATE OF refunding_quantity, refunded_quantity, quantity",
                    ),
                ] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER order_lines_refunding_quantity_{name} BEFORE {event} ON order_lines \
                         WHEN NEW.refunding_quantity < 0 \
                         OR NEW.refunded_quantity + NEW.refunding_quantity > NEW.quantity \
                         BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: refunded_quantity + refunding_quantity <= quantity'); END"
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match db.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "ALTER TABLE order_lines DROP CONSTRAINT IF EXISTS ck_order_lines_refunding_quantity",
                )
                .await?;
            }
            _ => {
                for name in ["insert", "update"] {
                    db.execute_unprepared(&format!(
                        "DROP TRIGGER IF EXISTS order_lines_refunding_quantity_{name}"
                    ))
                    .await?;
                }
            }
        }
        manager
            .drop_table(Table::drop().table("refunds").to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("order_lines")
                    .drop_column("refunding_quantity")
                    .to_owned(),
            )
            .await
    }
}
