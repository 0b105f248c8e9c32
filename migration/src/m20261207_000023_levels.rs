//! Push-hand levels and privileges (issue #29, items 4 and 5).
//!
//! - `levels`: admin-defined levels (推手等级), ordered by `rank` (unique). A level's upgrade
//!   condition is on settled, net sales over a rolling `period_days`: `min_sales` (fen) is
//!   required and above zero (a CHECK), so no level is ever reached on headcount alone;
//!   `min_team_members` is an extra condition beside it. `grace_days`: how long a member
//!   keeps a level it no longer qualifies for.
//! - `member_levels`: where each evaluated member stands: its level (none: null), since
//!   when, and since when it falls short of it (the grace period's start).
//! - `privilege_rules`: what a privilege is (`BADGE`, `COUPON_PACK`, `PRIZE`), whom it goes
//!   to (the members of a level, every partner, or whom an admin names) and how often
//!   (`ONCE`, `MONTHLY`).
//! - `privilege_grants`: the ledger of grants. `(rule_id, member_id, period)` is unique: one
//!   grant per rule, member and period, so a rerun of the evaluation — concurrent, on any
//!   number of instances — grants nothing twice. A prize's entitlement lives on its grant
//!   (`prize_status`, its expiry, the address snapshot and the shipment).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("levels")
                    .col(pk_uuid("id"))
                    .col(string_len("name", 80))
                    .col(integer("rank").check(Expr::col("rank").between(1, 100)))
                    .col(big_integer("min_sales").check(Expr::col("min_sales").gt(0)))
                    .col(integer("period_days").check(Expr::col("period_days").between(1, 366)))
                    .col(
                        integer("min_team_members")
                            .default(0)
                            .check(Expr::col("min_team_members").gte(0)),
                    )
                    .col(integer("grace_days").check(Expr::col("grace_days").between(0, 366)))
                    .col(string_len_null("description", 1000))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [("idx_levels_rank", "rank"), ("idx_levels_name", "name")] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table("levels")
                        .col(col)
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("member_levels")
                    .col(pk_uuid("member_id"))
                    .col(uuid_null("level_id"))
                    .col(timestamp_with_time_zone("since"))
                    .col(timestamp_with_time_zone_null("short_since"))
                    .col(big_integer("sales").default(0))
                    .col(timestamp_with_time_zone("evaluated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_member_levels_member_id")
                            .from("member_levels", "member_id")
                            .to("members", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_member_levels_level_id")
                            .from("member_levels", "level_id")
                            .to("levels", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("privilege_rules")
                    .col(pk_uuid("id"))
                    .col(string_len("name", 120))
                    .col(string_len("kind", 16).check(Expr::col("kind").is_in([
                        "BADGE",
                        "COUPON_PACK",
                        "PRIZE",
                    ])))
                    .col(
                        string_len("audience", 16)
                            .check(Expr::col("audience").is_in(["LEVEL", "PARTNERS", "MANUAL"])),
                    )
                    .col(uuid_null("level_id"))
                    .col(
                        string_len("period", 16)
                            .check(Expr::col("period").is_in(["ONCE", "MONTHLY"])),
                    )
                    .col(text("coupon_template_ids"))
                    .col(
                        integer_null("prize_claim_days")
                            .check(Expr::col("prize_claim_days").between(1, 366)),
                    )
                    .col(boolean("enabled"))
                    .col(uuid_null("created_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .check(Expr::cust("(audience = 'LEVEL') = (level_id IS NOT NULL)"))
                    .check(Expr::cust(
                        "(kind = 'PRIZE') = (prize_claim_days IS NOT NULL)",
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_privilege_rules_level_id")
                            .from("privilege_rules", "level_id")
                            .to("levels", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("privilege_grants")
                    .col(pk_uuid("id"))
                    .col(uuid("rule_id"))
                    .col(uuid("member_id"))
                    .col(string_len("period", 16))
                    .col(string_len("kind", 16))
                    .col(string_len("source", 16).check(Expr::col("source").is_in([
                        "LEVEL", "PARTNER", "ADMIN",
                    ])))
                    .col(uuid_null("level_id"))
                    .col(timestamp_with_time_zone("granted_at"))
                    .col(uuid_null("granted_by"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .col(uuid_null("revoked_by"))
                    .col(text("coupon_ids"))
                    .col(string_len_null("prize_status", 16).check(Expr::col("prize_status").is_in([
                        "UNCLAIMED",
                        "CLAIMED",
                        "SHIPPED",
                    ])))
                    .col(timestamp_with_time_zone_null("prize_expires_at"))
                    .col(timestamp_with_time_zone_null("claimed_at"))
                    .col(string_len_null("ship_recipient_name", 100))
                    .col(string_len_null("ship_phone", 32))
                    .col(string_len_null("ship_province_code", 12))
                    .col(string_len_null("ship_province_name", 64))
                    .col(string_len_null("ship_city_code", 12))
                    .col(string_len_null("ship_city_name", 64))
                    .col(string_len_null("ship_district_code", 12))
                    .col(string_len_null("ship_district_name", 64))
                    .col(string_len_null("ship_detail", 400))
                    .col(string_len_null("ship_postal_code", 12))
                    .col(timestamp_with_time_zone_null("shipped_at"))
                    .col(string_len_null("carrier", 16))
                    .col(string_len_null("tracking_number", 64))
                    .col(uuid_null("shipped_by"))
                    .check(Expr::cust(
                        "(kind = 'PRIZE') = (prize_status IS NOT NULL AND prize_expires_at IS NOT NULL)",
                    ))
                    .check(Expr::cust(
                        "prize_status IS NULL OR prize_status = 'UNCLAIMED' \
                         OR (claimed_at IS NOT NULL AND ship_recipient_name IS NOT NULL)",
                    ))
                    .check(Expr::cust(
                        "prize_status IS NULL OR prize_status <> 'SHIPPED' \
                         OR (shipped_at IS NOT NULL AND carrier IS NOT NULL AND tracking_number IS NOT NULL)",
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_privilege_grants_rule_id")
                            .from("privilege_grants", "rule_id")
                            .to("privilege_rules", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_privilege_grants_member_id")
                            .from("privilege_grants", "member_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_privilege_grants_once_per_period")
                    .table("privilege_grants")
                    .col("rule_id")
                    .col("member_id")
                    .col("period")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_privilege_grants_member")
                    .table("privilege_grants")
                    .col("member_id")
                    .col("granted_at")
                    .to_owned(),
            )
            .await?;
        // The prize queue of admins: unshipped claimed prizes.
        manager
            .create_index(
                Index::create()
                    .name("idx_privilege_grants_prize_status")
                    .table("privilege_grants")
                    .col("prize_status")
                    .col("claimed_at")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "privilege_grants",
            "privilege_rules",
            "member_levels",
            "levels",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
