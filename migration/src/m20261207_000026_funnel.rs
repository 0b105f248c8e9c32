//! Notes that sell and the share funnel (issue #30, items 2 and 4).
//!
//! - `notes.share_code`: the note's own share code (12 characters, so it never collides with
//!   a product share link's 10), unique; it credits the note's author on the note's products.
//!   Notes written before this migration get one here.
//! - `order_lines.note_id`: the note a line was bought through (its share code), beside
//!   `share_link_id` (a line has at most one of them).
//! - `share_visits`: one row per code, target (the link itself, or a product clicked in a
//!   note), visitor and UTC day — the unique index is the once-a-day deduplication. The
//!   visitor is a salted hash (see `service::funnel`), never an address.
//! - `share_signups`: which code a member registered through (one row per member).

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
                    .table("notes")
                    .add_column(string_len_null("share_code", 16))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // Hex digits are in the share codes' alphabet; 48 random bits each.
        let backfill = match db.get_database_backend() {
            DbBackend::Postgres => {
                "UPDATE notes SET share_code = upper(substr(md5(random()::text || id::text), 1, 12)) \
                 WHERE share_code IS NULL"
            }
            _ => {
                "UPDATE notes SET share_code = upper(substr(hex(randomblob(6)), 1, 12)) \
                 WHERE share_code IS NULL"
            }
        };
        db.execute_unprepared(backfill).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notes_share_code")
                    .table("notes")
                    .col("share_code")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("order_lines")
                    .add_column(uuid_null("note_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_order_lines_note")
                    .table("order_lines")
                    .col("note_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("share_visits")
                    .col(pk_uuid("id"))
                    .col(string_len("code", 32))
                    // '' for the link itself, else the product clicked (a note's).
                    .col(string_len("target", 36))
                    .col(string_len("visitor", 32))
                    .col(string_len("day", 10))
                    .col(uuid("owner_id"))
                    .col(uuid_null("share_link_id"))
                    .col(uuid_null("note_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_share_visits_owner_id")
                            .from("share_visits", "owner_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            (
                "idx_share_visits_once",
                &["code", "target", "visitor", "day"][..],
                true,
            ),
            ("idx_share_visits_owner", &["owner_id", "day"][..], false),
            ("idx_share_visits_note", &["note_id", "target"][..], false),
        ] {
            let mut index = Index::create();
            index.name(name).table("share_visits");
            for c in cols {
                index.col(*c);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("share_signups")
                    .col(pk_uuid("member_id"))
                    .col(string_len("code", 32))
                    .col(uuid("owner_id"))
                    .col(uuid_null("share_link_id"))
                    .col(uuid_null("note_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_share_signups_member_id")
                            .from("share_signups", "member_id")
                            .to("members", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_share_signups_owner_id")
                            .from("share_signups", "owner_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_share_signups_owner")
                    .table("share_signups")
                    .col("owner_id")
                    .col("created_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["share_signups", "share_visits"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_order_lines_note")
                    .table("order_lines")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_notes_share_code")
                    .table("notes")
                    .to_owned(),
            )
            .await?;
        for (table, column) in [("order_lines", "note_id"), ("notes", "share_code")] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
