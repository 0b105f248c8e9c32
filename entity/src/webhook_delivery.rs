//! Table `webhook_deliveries`: one event to one endpoint, its attempts so far and when the
//! next is due; unique per `(event_id, endpoint_id)`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Status {
    /// Not yet answered with a 2xx: due at `next_attempt_at`.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// The endpoint answered 2xx.
    #[sea_orm(string_value = "DELIVERED")]
    Delivered,
    /// Retried until `give_up_at` without a 2xx.
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_type: String,
    pub status: Status,
    /// Attempts made (each a POST that got an answer or failed).
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// After this, a failed attempt marks the delivery `FAILED` (24 hours after it was made
    /// or last redelivered).
    pub give_up_at: DateTimeUtc,
    /// An instance is sending it until then (its claim, `lease_token`).
    pub lease_until: Option<DateTimeUtc>,
    pub lease_token: Option<Uuid>,
    pub last_attempt_at: Option<DateTimeUtc>,
    /// The HTTP status of the last answer (none when there was no answer).
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
