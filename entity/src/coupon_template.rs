//! Table `coupon_templates`: a kind of coupon admins define (what it takes off, on what, for
//! how long, how many exist and how members get them). `issued` counts the coupons handed
//! out, never above `total_quantity` (a CHECK).

use crate::money::{Money, Rate};
use sea_orm::entity::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Kind {
    /// A fixed amount off (`amount_off`).
    #[sea_orm(string_value = "FIXED")]
    Fixed,
    /// A rate off (`rate_off`), at most `max_off` when set.
    #[sea_orm(string_value = "PERCENT")]
    Percent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Scope {
    /// The whole catalog.
    #[sea_orm(string_value = "ALL")]
    All,
    /// Products of the categories in `scope_ids` (a top-level category covers its children).
    #[sea_orm(string_value = "CATEGORIES")]
    Categories,
    /// Products of the brands in `scope_ids`.
    #[sea_orm(string_value = "BRANDS")]
    Brands,
    /// The products in `scope_ids`.
    #[sea_orm(string_value = "PRODUCTS")]
    Products,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Distribution {
    /// Members claim it themselves (`claimCoupon`).
    #[sea_orm(string_value = "CLAIM")]
    Claim,
    /// Given by an admin, a level or a privilege; never claimed.
    #[sea_orm(string_value = "GRANT")]
    Grant,
    /// Given to every member as it registers.
    #[sea_orm(string_value = "ON_REGISTER")]
    OnRegister,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "coupon_templates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub kind: Kind,
    pub amount_off: Option<Money>,
    pub rate_off: Option<Rate>,
    /// The most a `PERCENT` coupon takes off; `None`: no cap.
    pub max_off: Option<Money>,
    /// The eligible lines must come to at least this.
    pub min_spend: Money,
    pub scope: Scope,
    /// JSON array of the category, brand or product ids of the scope (empty for `ALL`).
    pub scope_ids: String,
    /// Fixed validity: both set, `valid_days` null.
    pub valid_from: Option<DateTimeUtc>,
    pub valid_until: Option<DateTimeUtc>,
    /// Relative validity: the coupon expires this many days after it is claimed.
    pub valid_days: Option<i32>,
    pub total_quantity: i32,
    pub issued: i32,
    pub per_member_limit: i32,
    pub distribution: Distribution,
    pub enabled: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
