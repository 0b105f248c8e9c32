//! Table `webhook_endpoints`: where an integration wants events POSTed, which events, and
//! the secret their signatures are made with (and, for a while after a rotation, the
//! previous one).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// An `http://` URL (TLS through an egress proxy, as for the payment providers).
    pub url: String,
    pub description: Option<String>,
    /// The event types wanted, `|`-delimited at both ends: `|order.paid|after_sale.*|`.
    pub events: String,
    /// The signing secret (the server must sign with it, so it is kept as is).
    pub secret: String,
    /// The secret before the last rotation, still signing until `previous_secret_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTimeUtc>,
    pub enabled: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
