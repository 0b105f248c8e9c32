//! On PostgreSQL, a visit written into one B-tree more instead of a count row (issue #30,
//! S15). SQLite keeps migration 33's table and trigger: nothing changes there.
//!
//! Migration 33 made `share_visit_counts` a table that a trigger keeps, one row per code,
//! target and day. On PostgreSQL that trigger cost as much as the visit itself: S15 (a new
//! visitor, and so far a new code, every visit) spent 0.68 ms of the database's time per
//! insert of about 8 visits, the trigger's upsert half of it, and the core PostgreSQL shares
//! with the load generator was the one that was full. `pgbench` on a copy of the two tables
//! (8 visits a statement over 100,000 codes, 4 clients, `synchronous_commit = off`):
//!
//! | what a visit writes | statements/s |
//! |---|---:|
//! | the row (its key only) | 7,580–8,680 |
//! | the row and the count (the trigger, today) | 3,360–4,200 |
//! | the row and the count by a writable CTE instead of the trigger | 4,080–4,570 |
//! | the row and a second index `(owner_id, day, …)` | 7,460–7,770 |
//!
//! So on PostgreSQL, `share_visit_counts` becomes a view that counts the visit rows, and the
//! visits get the index `(owner_id, day, share_link_id, note_id, target, code)`: the funnel's
//! statement (`WHERE owner_id = $1 AND day BETWEEN …`, grouped) reads the owner's visits of
//! the period from the index alone, as it reads their orders and earnings. The count is the
//! rows' count by definition, so deletes need no trigger either. The owner's foreign key,
//! which migration 33 moved from the visits to the counts, goes: checked on every visit row
//! it cost a third of the throughput in the same `pgbench` (a `FOR KEY SHARE` lock on the
//! member row). `owner_id` is a copy of the share link's `member_id` or the note's
//! `author_id`, both foreign keys, and members are never deleted.
//!
//! Down rebuilds migration 33's table from the visits, with its key, index, foreign key and
//! triggers.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: [&str; 7] = [
    "DROP TRIGGER share_visits_counted ON share_visits",
    "DROP TRIGGER share_visits_uncounted ON share_visits",
    "DROP FUNCTION share_visits_count_in()",
    "DROP FUNCTION share_visits_count_out()",
    "DROP TABLE share_visit_counts",
    "CREATE INDEX idx_share_visits_owner_days \
     ON share_visits (owner_id, day, share_link_id, note_id, target, code)",
    // A code credits one owner, link or note: grouping by them splits nothing.
    "CREATE VIEW share_visit_counts AS \
     SELECT code, target, day, owner_id, share_link_id, note_id, COUNT(*) AS visits \
     FROM share_visits GROUP BY code, target, day, owner_id, share_link_id, note_id",
];

const DOWN: [&str; 5] = [
    "DROP VIEW share_visit_counts",
    "DROP INDEX idx_share_visits_owner_days",
    "CREATE TABLE share_visit_counts (code varchar(32) NOT NULL, target varchar(36) NOT NULL, \
     day varchar(10) NOT NULL, owner_id uuid NOT NULL, share_link_id uuid, note_id uuid, \
     visits bigint NOT NULL, PRIMARY KEY (code, target, day), \
     CONSTRAINT fk_share_visit_counts_owner_id FOREIGN KEY (owner_id) REFERENCES members (id))",
    "CREATE INDEX idx_share_visit_counts_owner_days ON share_visit_counts (owner_id, day)",
    "INSERT INTO share_visit_counts (code, target, day, owner_id, share_link_id, note_id, visits) \
     SELECT code, target, day, owner_id, share_link_id, note_id, COUNT(*) FROM share_visits \
     GROUP BY code, target, day, owner_id, share_link_id, note_id",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for sql in UP {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for sql in DOWN
            .into_iter()
            .chain(super::m20261210_000033_visit_counts::PG_UP)
        {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
