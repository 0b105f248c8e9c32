//! Table `audit_log`: one row per staff action, append-only (triggers refuse `UPDATE` and
//! `DELETE` on both stores).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The staff member who acted; `None` for the server itself.
    pub actor_id: Option<Uuid>,
    /// A SCREAMING_SNAKE action code, e.g. `PAYMENT_CONFIRMED`.
    pub action: String,
    /// What the action was on (`ORDER`, `MEMBER`, ...), if anything.
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    /// The arguments that matter, as a JSON object.
    pub arguments: String,
    /// The client's address, as the server saw it (behind trusted proxies, the forwarded one).
    pub client_addr: Option<String>,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
