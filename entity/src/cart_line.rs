//! Table `cart_lines`: a member's cart (购物车), one line per SKU (a unique index on member and
//! SKU), 1 to 999 units (a CHECK). A line keeps the share code it was added with and the
//! SKU's price at that moment; it has no foreign key to its SKU, so it outlives a deleted one
//! and the cart says why it cannot be ordered.

use crate::money::Money;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cart_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub member_id: Uuid,
    pub sku_id: Uuid,
    pub quantity: i32,
    /// The share code of the last add that came with one (the last click wins).
    pub share_code: Option<String>,
    /// The SKU's price when the line was last added to.
    pub unit_price: Money,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
