//! Table `after_sales`: a buyer's after-sale request (售后) for units of a received order
//! line — a refund only, or a return and refund — and where it stands. At most one per line
//! is open at a time (a partial unique index); while it is open the line's pending earnings
//! do not settle (their `settle_after` is cleared; `paused_settle_after` keeps it).

use crate::money::Money;
use crate::shipment::Carrier;
use sea_orm::entity::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
pub enum Kind {
    /// 仅退款: the buyer keeps the goods (or never got them) and asks for the money.
    #[sea_orm(string_value = "REFUND_ONLY")]
    RefundOnly,
    /// 退货退款: the buyer sends the units back; the refund follows their receipt.
    #[sea_orm(string_value = "RETURN_AND_REFUND")]
    ReturnAndRefund,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
pub enum Status {
    /// Waiting for an admin's review.
    #[sea_orm(string_value = "REQUESTED")]
    Requested,
    /// A return was approved: waiting for the buyer's return shipment.
    #[sea_orm(string_value = "APPROVED")]
    Approved,
    /// The buyer shipped the units back: waiting for staff to receive them.
    #[sea_orm(string_value = "RETURN_SHIPPED")]
    ReturnShipped,
    /// The refund was asked of the payment provider and is not confirmed yet.
    #[sea_orm(string_value = "REFUNDING")]
    Refunding,
    /// Refunded: the units' earnings were reversed (closed).
    #[sea_orm(string_value = "REFUNDED")]
    Refunded,
    /// An admin rejected it (closed).
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
    /// Closed without a refund: the buyer did not ship the return in time (closed).
    #[sea_orm(string_value = "CLOSED")]
    Closed,
}

impl Status {
    /// The open states: the line's earnings wait while it is in one.
    pub const OPEN: [Status; 4] = [
        Status::Requested,
        Status::Approved,
        Status::ReturnShipped,
        Status::Refunding,
    ];

    pub fn is_open(self) -> bool {
        Status::OPEN.contains(&self)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "after_sales")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub order_id: Uuid,
    pub order_line_id: Uuid,
    pub buyer_id: Uuid,
    pub kind: Kind,
    pub status: Status,
    /// Units asked about.
    pub quantity: i32,
    /// What a refund gives back: the line's unit price × `quantity` (no shipping).
    pub amount: Money,
    pub reason: String,
    /// JSON array of http(s) URLs (photos of the goods, …).
    pub evidence_urls: String,
    /// The reviewer's note to the buyer.
    pub review_note: Option<String>,
    pub reviewed_by: Option<Uuid>,
    pub return_carrier: Option<Carrier>,
    pub return_tracking_number: Option<String>,
    /// The provider refund it started (orders paid through a provider).
    pub refund_id: Option<Uuid>,
    /// When the line's earnings were due to settle before this paused them (none: none were
    /// pending).
    pub paused_settle_after: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub reviewed_at: Option<DateTimeUtc>,
    pub return_shipped_at: Option<DateTimeUtc>,
    pub received_at: Option<DateTimeUtc>,
    /// When it left the open states.
    pub closed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
