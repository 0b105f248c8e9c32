//! The audit log: one row per staff action (who, what, on what, with which arguments, when,
//! from where), written in the action's own transaction and never changed afterwards — a
//! trigger refuses `UPDATE` and `DELETE` (and, on PostgreSQL, `TRUNCATE`) on both stores, so
//! not even a bug or an operator's stray statement in the application's role rewrites it.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn index(name: &str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(format!("idx_audit_log_{name}")).table("audit_log");
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
                    .table("audit_log")
                    .col(pk_uuid("id"))
                    // Null: the server itself (a job, the command line), not a person.
                    .col(uuid_null("actor_id"))
                    .col(string_len("action", 40))
                    .col(string_len_null("target_type", 20))
                    .col(uuid_null("target_id"))
                    // JSON object of the arguments that matter.
                    .col(text("arguments"))
                    .col(string_len_null("client_addr", 45))
                    .col(timestamp_with_time_zone("at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_audit_log_actor_id")
                            .from("audit_log", "actor_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        // Newest first, whole or narrowed by actor, action or target.
        for (name, cols) in [
            ("at", &["at", "id"][..]),
            ("actor", &["actor_id", "at", "id"][..]),
            ("action", &["action", "at", "id"][..]),
            ("target", &["target_id", "at", "id"][..]),
        ] {
            manager.create_index(index(name, cols)).await?;
        }
        let db = manager.get_connection();
        match db.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege'; END $$",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log \
                     FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log \
                     FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
                )
                .await?;
            }
            _ => {
                for (name, event) in [("no_update", "UPDATE"), ("no_delete", "DELETE")] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER audit_log_{name} BEFORE {event} ON audit_log \
                         BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        manager
            .drop_table(Table::drop().table("audit_log").to_owned())
            .await?;
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("DROP FUNCTION IF EXISTS audit_log_append_only()")
                .await?;
        }
        Ok(())
    }
}
