//! Webhooks (issue #31, item 5): the endpoints admins register, the outbox of events written
//! in the transaction of the change they report, and one delivery per event and endpoint.
//!
//! - `webhook_endpoints.events`: the event types wanted, `|`-delimited at both ends
//!   (`|order.paid|after_sale.*|`), so that a writer finds the endpoints wanting an event
//!   with `LIKE` alone, in the statement of the change.
//! - `webhook_events` is the outbox: a row exists exactly when the change it reports
//!   committed (written only while an enabled endpoint wants its type). `dispatched` says
//!   whether its deliveries have been made.
//! - `webhook_deliveries`: unique per `(event_id, endpoint_id)`, so fanning an event out twice
//!   (two instances at once) makes its deliveries once. `lease_until` / `lease_token` are the
//!   claim of the instance sending it: taken by a conditional `UPDATE`, so two instances never
//!   send the same delivery at once.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("webhook_endpoints")
                    .col(pk_uuid("id"))
                    .col(string_len("url", 2048))
                    .col(string_len_null("description", 200))
                    .col(text("events"))
                    .col(string_len("secret", 100))
                    .col(string_len_null("previous_secret", 100))
                    .col(timestamp_with_time_zone_null("previous_secret_until"))
                    .col(boolean("enabled"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_events")
                    .col(pk_uuid("id"))
                    .col(string_len("event_type", 40))
                    .col(text("payload"))
                    .col(boolean("dispatched").default(false))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_events_dispatched")
                    .table("webhook_events")
                    .col("dispatched")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_deliveries")
                    .col(pk_uuid("id"))
                    .col(uuid("event_id"))
                    .col(uuid("endpoint_id"))
                    .col(string_len("event_type", 40))
                    .col(string_len("status", 16))
                    .col(integer("attempts").default(0))
                    .col(timestamp_with_time_zone("next_attempt_at"))
                    .col(timestamp_with_time_zone("give_up_at"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(uuid_null("lease_token"))
                    .col(timestamp_with_time_zone_null("last_attempt_at"))
                    .col(integer_null("last_status_code"))
                    .col(string_len_null("last_error", 500))
                    .col(timestamp_with_time_zone_null("delivered_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_deliveries_event_id")
                            .from("webhook_deliveries", "event_id")
                            .to("webhook_events", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_deliveries_endpoint_id")
                            .from("webhook_deliveries", "endpoint_id")
                            .to("webhook_endpoints", "id"),
                    )
                    .check(Expr::cust(
                        "status IN ('PENDING', 'DELIVERED', 'FAILED') AND attempts >= 0",
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            ("once", &["event_id", "endpoint_id"][..], true),
            ("due", &["status", "next_attempt_at"][..], false),
            ("newest", &["created_at", "id"][..], false),
            ("endpoint", &["endpoint_id", "created_at", "id"][..], false),
        ] {
            let mut idx = Index::create();
            idx.name(format!("idx_webhook_deliveries_{name}"))
                .table("webhook_deliveries");
            for c in cols {
                idx.col(*c);
            }
            if unique {
                idx.unique();
            }
            manager.create_index(idx.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["webhook_deliveries", "webhook_events", "webhook_endpoints"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
