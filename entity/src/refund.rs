//! Table `refunds`: a refund of units of an order line requested from the provider that
//! was paid (the order's payment intent), under its own refund number (`out_refund_no`,
//! unique: a retry is the same request, which the provider deduplicates). The line's units
//! in flight are `order_lines.refunding_quantity` until the refund ends.

use crate::money::Money;
use sea_orm::entity::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Status {
    /// Written; the provider not asked yet (or being asked).
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// The provider took the request and has not confirmed it yet.
    #[sea_orm(string_value = "PROCESSING")]
    Processing,
    /// The provider confirmed it: the line's units and earnings were reversed (once).
    #[sea_orm(string_value = "SUCCEEDED")]
    Succeeded,
    /// The provider refused it, could not be reached, or closed it: the units stay
    /// reserved for a retry under the same refund number.
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refunds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub order_id: Uuid,
    pub order_line_id: Uuid,
    /// The payment intent the order was paid through.
    pub intent_id: Uuid,
    /// `WECHAT_JSAPI`, `ALIPAY`, `SANDBOX` (the intent's).
    pub channel: String,
    /// The provider's refund number (WeChat `out_refund_no`, Alipay `out_request_no`).
    #[sea_orm(unique)]
    pub out_refund_no: String,
    pub quantity: i32,
    /// What the buyer paid for the units: their part of the line's paid amount (after its
    /// coupon share).
    pub amount: Money,
    pub status: Status,
    /// Why the last attempt failed (the provider's words), while `FAILED`.
    pub failure_reason: Option<String>,
    /// The provider's refund id, once it named one.
    pub provider_reference: Option<String>,
    /// Requests sent to the provider (the first and each retry).
    pub attempts: i32,
    /// The staff member who asked for it (none: the command line, tests).
    pub requested_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When the provider's confirmation was booked.
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
