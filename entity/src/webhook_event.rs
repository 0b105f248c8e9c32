//! Table `webhook_events`: the outbox. One row per event an endpoint wanted, written in the
//! transaction of the change it reports; its id is the `Pushhand-Event-Id` receivers
//! deduplicate by.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `order.paid`, `withdrawal.approved`, …
    pub event_type: String,
    /// The JSON body every delivery of the event sends.
    pub payload: String,
    /// Whether its deliveries have been made (one per endpoint wanting it).
    pub dispatched: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
