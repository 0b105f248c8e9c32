//! Table `shipping_surcharges`: what a merchant's shipping rule adds for parcels to a remote
//! province (新疆, 西藏, …), one row per (merchant, province).

use crate::money::Money;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipping_surcharges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub merchant_id: Uuid,
    /// Six-digit province code (`650000`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub province_code: String,
    pub amount: Money,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
