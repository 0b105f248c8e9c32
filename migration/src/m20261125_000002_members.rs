//! Members and their hierarchy: accounts, binding history, the team closure table with its
//! per-ancestor counters, and the row that serialises hierarchy changes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("members")
                    .col(pk_uuid("id"))
                    .col(string_len_null("email", 254).unique_key())
                    .col(string_len_null("phone", 20).unique_key())
                    .col(string_len("password_hash", 255))
                    .col(string_len("display_name", 64))
                    .col(string_len("tier", 16))
                    .col(string_len_null("staff_role", 16))
                    .col(string_len_null("invite_code", 16).unique_key())
                    .col(string_len_null("partner_link_code", 16).unique_key())
                    .col(string_len_null("partner_application", 16))
                    .col(uuid_null("upline_id").check(Expr::col("upline_id").ne(Expr::col("id"))))
                    .col(timestamp_with_time_zone_null("frozen_at"))
                    .col(string_len_null("frozen_reason", 500))
                    .col(integer("token_version").default(0))
                    .col(timestamp_with_time_zone("created_at"))
                    .check(
                        Expr::col("email")
                            .is_not_null()
                            .or(Expr::col("phone").is_not_null()),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_members_upline_id")
                            .from("members", "upline_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_members_upline")
                    .table("members")
                    .col("upline_id")
                    .to_owned(),
            )
            .await?;

        // Every binding a member ever had: who, to whom, how, from, until, and why it ended.
        manager
            .create_table(
                Table::create()
                    .table("bindings")
                    .col(pk_uuid("id"))
                    .col(uuid("member_id"))
                    .col(uuid("upline_id"))
                    .col(string_len("kind", 24))
                    .col(timestamp_with_time_zone("starts_at"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(timestamp_with_time_zone_null("ended_at"))
                    .col(string_len_null("end_reason", 16))
                    .col(uuid_null("created_by"))
                    .check(Expr::col("member_id").ne(Expr::col("upline_id")))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_bindings_member_id")
                            .from("bindings", "member_id")
                            .to("members", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_bindings_upline_id")
                            .from("bindings", "upline_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // At most one active binding per member, enforced by the database (a partial unique
        // index: both SQLite and PostgreSQL have them).
        db.execute_unprepared(
            "CREATE UNIQUE INDEX idx_bindings_one_active ON bindings (member_id) WHERE ended_at IS NULL",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX idx_bindings_expiring ON bindings (expires_at) WHERE ended_at IS NULL AND expires_at IS NOT NULL",
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_bindings_member_history")
                    .table("bindings")
                    .col("member_id")
                    .col("starts_at")
                    .to_owned(),
            )
            .await?;

        // Closure table of the active hierarchy, three levels deep: (ancestor, depth,
        // descendant) for depth 1..=3. `since` is when the descendant entered the ancestor's
        // team. Team pages seek on (ancestor, depth, since, descendant).
        manager
            .create_table(
                Table::create()
                    .table("member_ancestors")
                    .col(uuid("ancestor_id"))
                    .col(small_integer("depth").check(Expr::col("depth").between(1, 3)))
                    .col(uuid("descendant_id"))
                    .col(timestamp_with_time_zone("since"))
                    .primary_key(
                        Index::create()
                            .col("ancestor_id")
                            .col("depth")
                            .col("descendant_id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_member_ancestors_team_page")
                    .table("member_ancestors")
                    .col("ancestor_id")
                    .col("depth")
                    .col("since")
                    .col("descendant_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_member_ancestors_descendant")
                    .table("member_ancestors")
                    .col("descendant_id")
                    .to_owned(),
            )
            .await?;

        // Team size per ancestor, level and month joined, maintained with every closure row:
        // team statistics read a handful of rows however large the team.
        manager
            .create_table(
                Table::create()
                    .table("team_counters")
                    .col(uuid("ancestor_id"))
                    .col(small_integer("depth"))
                    .col(string_len("period", 7))
                    .col(big_integer("members"))
                    .primary_key(
                        Index::create()
                            .col("ancestor_id")
                            .col("depth")
                            .col("period"),
                    )
                    .to_owned(),
            )
            .await?;

        // Rows that serialise a class of writes: a transaction that changes the hierarchy
        // first updates the `hierarchy` row, so two concurrent re-bindings cannot both pass
        // the cycle check (a row lock on PostgreSQL, the write lock on SQLite).
        manager
            .create_table(
                Table::create()
                    .table("write_locks")
                    .col(string_len("name", 32).primary_key())
                    .col(big_integer("version").default(0))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared("INSERT INTO write_locks (name, version) VALUES ('hierarchy', 0)")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "write_locks",
            "team_counters",
            "member_ancestors",
            "bindings",
            "members",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
