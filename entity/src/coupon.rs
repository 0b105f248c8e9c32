//! Table `coupons`: a member's coupon of a template. `seq` numbers a member's coupons of one
//! template (unique with them, at most the template's per-member limit); `in_use` is 1
//! while an order holds it (`order_id`), 0 again when that order is cancelled unpaid or every
//! line it touched is refunded.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "coupons")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub template_id: Uuid,
    pub member_id: Uuid,
    pub seq: i32,
    pub claimed_at: DateTimeUtc,
    /// Usable from this time…
    pub valid_from: DateTimeUtc,
    /// …until this time (exclusive).
    pub expires_at: DateTimeUtc,
    /// 0 or 1 (a CHECK): whether an order holds it.
    pub in_use: i32,
    /// The order holding it, while `in_use`.
    pub order_id: Option<Uuid>,
    pub used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
