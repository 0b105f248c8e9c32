//! Table `products`: a product of one brand in one leaf category, with its rebate settings
//! and the denormalised columns the listing sorts on (`min_price`, `max_price`, `sales_count`).

use crate::money::{Money, Rate};
use sea_orm::entity::prelude::*;

/// Where a product stands in the listing pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Status {
    /// Submitted by its merchant and going through the five curation stages.
    #[sea_orm(string_value = "IN_CURATION")]
    InCuration,
    /// A curation stage failed: back with the merchant.
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
    /// Listed (上架): visible to everyone.
    #[sea_orm(string_value = "PUBLISHED")]
    Published,
    /// Delisted (下架) after having been published.
    #[sea_orm(string_value = "UNPUBLISHED")]
    Unpublished,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub brand_id: Uuid,
    /// Always a leaf category.
    pub category_id: Uuid,
    /// The name shoppers see (Chinese in the demo data).
    pub name: String,
    /// English name, when the merchant supplied one.
    pub name_en: Option<String>,
    pub description: Option<String>,
    pub status: Status,
    /// Level-1 rebate rate (SELF_PURCHASE, PROMOTION, BOUND_REBATE...).
    pub rebate_rate: Rate,
    /// Level-2 (team) rebate rate.
    pub team_rebate_rate: Rate,
    /// 会员活动商品: completing an order for it makes the buyer a push-hand.
    pub membership_activity: bool,
    /// Lowest SKU price; kept in step with the SKUs so the listing can sort by price.
    pub min_price: Money,
    /// Highest SKU price.
    pub max_price: Money,
    /// Units sold; the SALES_DESC sort key.
    pub sales_count: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When it was (last) listed; the NEWEST sort key. `None` until first published.
    pub published_at: Option<DateTimeUtc>,
    /// How many of the five curation stages have passed, in order (0..=5). A failed stage
    /// leaves it where it was, so resubmission resumes at the failed stage.
    pub stages_passed: i16,
    /// Why it was delisted, when `status` is `UNPUBLISHED`.
    pub unpublished_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
