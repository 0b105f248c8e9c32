//! Table `idempotency_keys`: a client's key for a write it may retry (`placeOrder`,
//! `refundOrderLine`), with the arguments it came with and what it made. Written in the
//! write's own transaction; the unique index on (owner, scope, key) makes concurrent retries
//! book once.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The member who sent the key (the buyer, the staff member).
    pub owner_id: Uuid,
    /// Which mutation the key belongs to ("placeOrder", "refundOrderLine").
    pub scope: String,
    pub key: String,
    /// The arguments in a canonical form: a retry must send the same.
    pub request: String,
    /// What the first request made (the order).
    pub result_id: Uuid,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
