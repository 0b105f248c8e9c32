//! Table `order_lines`: what was bought, with the price and both rebate rates snapshotted at
//! checkout (later product changes never alter a placed order).

use crate::money::{Money, Rate};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub order_id: Uuid,
    pub product_id: Uuid,
    pub sku_id: Uuid,
    pub quantity: i32,
    pub unit_price: Money,
    /// unit_price × quantity: the line's list amount (its paid amount is this less
    /// `coupon_share`).
    pub amount: Money,
    pub rebate_rate: Rate,
    pub team_rebate_rate: Rate,
    pub membership_activity: bool,
    /// The share link the line was bought through, if any.
    pub share_link_id: Option<Uuid>,
    /// Set when the last unit has been refunded.
    pub refunded_at: Option<DateTimeUtc>,
    /// Units refunded so far (0..=quantity).
    pub refunded_quantity: i32,
    /// The cart line it was ordered from, if any; unique, so a cart line is ordered once.
    pub cart_line_id: Option<Uuid>,
    /// Units whose provider refund is requested and not confirmed yet (`refunds`);
    /// `refunded_quantity + refunding_quantity <= quantity`, which the database checks.
    pub refunding_quantity: i32,
    /// The part of the order's coupon discount this line carries, in fen (0 without one).
    pub coupon_share: Money,
    /// The note the line was bought through (its share code), if any; then
    /// `share_link_id` is null.
    pub note_id: Option<Uuid>,
}

impl Model {
    /// What the buyer paid for the line: its amount less its coupon share. Every earning
    /// and every refund of the line is worked out on this.
    pub fn paid(&self) -> Money {
        Money::from_fen(self.amount.fen() - self.coupon_share.fen())
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
