//! Coupons (issue #29, items 1–3).
//!
//! - `coupon_templates`: what a coupon takes off (`FIXED` fen, or `PERCENT` basis points
//!   with an optional cap), the minimum spend, the scope (`ALL`, or the categories, brands or
//!   products in `scope_ids`), the validity (fixed dates, or `valid_days` from claiming), how
//!   many exist and how many one member may hold, how members get them. `issued` counts the
//!   coupons handed out: `0 <= issued <= total_quantity` is a CHECK, so no claim, however
//!   many run at once, issues one coupon too many.
//! - `coupons`: a member's coupon of a template. `(template_id, member_id, seq)` is unique
//!   and a claim writes `seq` = the member's count + 1, refused past the per-member limit:
//!   concurrent claims of one member meet in that index. `in_use` (0 or 1, a CHECK) counts
//!   the orders holding it: a checkout adds the number of its orders using it, so two orders
//!   with one coupon break the CHECK, even inside one batched statement.
//! - `orders.coupon_id`, `orders.discount` (fen, `>= 0`) and `order_lines.coupon_share`
//!   (fen, `>= 0`; on PostgreSQL also `<= amount`): what the coupon took off, spread over
//!   the lines it applied to. A line's paid amount is `amount - coupon_share`.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("coupon_templates")
                    .col(pk_uuid("id"))
                    .col(string_len("name", 200))
                    .col(string_len("kind", 16).check(Expr::col("kind").is_in(["FIXED", "PERCENT"])))
                    .col(big_integer_null("amount_off").check(Expr::col("amount_off").gt(0)))
                    .col(integer_null("rate_off").check(Expr::col("rate_off").between(1, 10_000)))
                    .col(big_integer_null("max_off").check(Expr::col("max_off").gt(0)))
                    .col(big_integer("min_spend").default(0).check(Expr::col("min_spend").gte(0)))
                    .col(string_len("scope", 16).check(Expr::col("scope").is_in([
                        "ALL",
                        "CATEGORIES",
                        "BRANDS",
                        "PRODUCTS",
                    ])))
                    .col(text("scope_ids"))
                    .col(timestamp_with_time_zone_null("valid_from"))
                    .col(timestamp_with_time_zone_null("valid_until"))
                    .col(integer_null("valid_days").check(Expr::col("valid_days").between(1, 3650)))
                    .col(integer("total_quantity").check(Expr::col("total_quantity").gt(0)))
                    .col(integer("issued").default(0))
                    .col(integer("per_member_limit").check(Expr::col("per_member_limit").gt(0)))
                    .col(string_len("distribution", 16).check(Expr::col("distribution").is_in([
                        "CLAIM",
                        "GRANT",
                        "ON_REGISTER",
                    ])))
                    .col(boolean("enabled"))
                    .col(uuid_null("created_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .check(Expr::cust("issued >= 0 AND issued <= total_quantity"))
                    .check(Expr::cust(
                        "(kind = 'FIXED' AND amount_off IS NOT NULL AND rate_off IS NULL AND max_off IS NULL) \
                         OR (kind = 'PERCENT' AND amount_off IS NULL AND rate_off IS NOT NULL)",
                    ))
                    .check(Expr::cust(
                        "(valid_days IS NOT NULL AND valid_from IS NULL AND valid_until IS NULL) \
                         OR (valid_days IS NULL AND valid_from IS NOT NULL AND valid_until IS NOT NULL \
                             AND valid_until > valid_from)",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("coupons")
                    .col(pk_uuid("id"))
                    .col(uuid("template_id"))
                    .col(uuid("member_id"))
                    .col(integer("seq").check(Expr::col("seq").gt(0)))
                    .col(timestamp_with_time_zone("claimed_at"))
                    .col(timestamp_with_time_zone("valid_from"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(
                        integer("in_use")
                            .default(0)
                            .check(Expr::col("in_use").between(0, 1)),
                    )
                    .col(uuid_null("order_id"))
                    .col(timestamp_with_time_zone_null("used_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_coupons_template_id")
                            .from("coupons", "template_id")
                            .to("coupon_templates", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_coupons_member_id")
                            .from("coupons", "member_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_coupons_one_per_seq")
                    .table("coupons")
                    .col("template_id")
                    .col("member_id")
                    .col("seq")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_coupons_member_claimed")
                    .table("coupons")
                    .col("member_id")
                    .col("claimed_at")
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite alters one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table("orders")
                    .add_column(uuid_null("coupon_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("orders")
                    .add_column(
                        big_integer("discount")
                            .default(0)
                            .check(Expr::col("discount").gte(0)),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("order_lines")
                    .add_column(
                        big_integer("coupon_share")
                            .default(0)
                            .check(Expr::col("coupon_share").gte(0)),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE order_lines ADD CONSTRAINT ck_order_lines_coupon_share \
                 CHECK (coupon_share <= amount)",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE order_lines DROP CONSTRAINT IF EXISTS ck_order_lines_coupon_share",
            )
            .await?;
        }
        for (table, column) in [
            ("order_lines", "coupon_share"),
            ("orders", "discount"),
            ("orders", "coupon_id"),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table("coupons").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("coupon_templates").to_owned())
            .await
    }
}
