//! Table `payment_intents`: a payment opened at a provider for an order (`createPayment`),
//! one per order and channel; what the client SDK needs is kept, so asking again answers
//! the same.

use crate::money::Money;
use sea_orm::entity::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Status {
    /// Opened; not paid yet.
    #[sea_orm(string_value = "OPEN")]
    Open,
    /// A verified notification booked it.
    #[sea_orm(string_value = "PAID")]
    Paid,
    /// A verified notification of another amount: the order stays unpaid for review.
    #[sea_orm(string_value = "MISMATCH")]
    Mismatch,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment_intents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub order_id: Uuid,
    /// `WECHAT_JSAPI`, `ALIPAY`, `SANDBOX`.
    pub channel: String,
    /// The order's total when opened.
    pub amount: Money,
    pub status: Status,
    /// The provider's transaction number, once a notification names it.
    pub provider_reference: Option<String>,
    /// What the client SDK needs (JSON), once the provider answered.
    pub client_params: Option<String>,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub paid_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
