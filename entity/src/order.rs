//! Table `orders`: a buyer's order and where it stands.

use crate::money::Money;
use sea_orm::entity::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Status {
    #[sea_orm(string_value = "PENDING_PAYMENT")]
    PendingPayment,
    #[sea_orm(string_value = "PAID")]
    Paid,
    #[sea_orm(string_value = "SHIPPED")]
    Shipped,
    #[sea_orm(string_value = "COMPLETED")]
    Completed,
    /// Expired unpaid (stock released).
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
    /// Every line refunded.
    #[sea_orm(string_value = "REFUNDED")]
    Refunded,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub buyer_id: Uuid,
    pub status: Status,
    /// What the buyer pays: the lines' amounts, less `discount`, plus `shipping_fee`.
    pub total: Money,
    /// The payment provider's reference; unique, so a payment books once.
    #[sea_orm(unique)]
    pub payment_reference: Option<String>,
    pub created_at: DateTimeUtc,
    /// Unpaid after this, the order is cancelled and its stock released.
    pub expires_at: DateTimeUtc,
    pub paid_at: Option<DateTimeUtc>,
    pub shipped_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub cancelled_at: Option<DateTimeUtc>,
    /// What the parcels cost (part of `total`; never part of a rebate base).
    pub shipping_fee: Money,
    /// The buyer's note to the shop (留言).
    pub buyer_note: Option<String>,
    /// The delivery address as it was at checkout (all null for an order placed without
    /// one): later edits of the address do not move the order.
    pub ship_recipient_name: Option<String>,
    pub ship_phone: Option<String>,
    pub ship_province_code: Option<String>,
    pub ship_province_name: Option<String>,
    pub ship_city_code: Option<String>,
    pub ship_city_name: Option<String>,
    pub ship_district_code: Option<String>,
    pub ship_district_name: Option<String>,
    pub ship_detail: Option<String>,
    pub ship_postal_code: Option<String>,
    /// The coupon used on the order, if any (one per order).
    pub coupon_id: Option<Uuid>,
    /// What the coupon took off the goods (the sum of the lines' `coupon_share`); `total`
    /// is after it.
    pub discount: Money,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
