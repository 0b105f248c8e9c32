//! Table `shipping_rules`: how much the platform charges to ship one merchant's part of an
//! order (one parcel per merchant): a flat fee, waived from a subtotal, plus the surcharges
//! of [`crate::shipping_surcharge`]. One row per merchant at most.

use crate::money::Money;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipping_rules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub merchant_id: Uuid,
    /// The flat fee per parcel.
    pub base_fee: Money,
    /// From this subtotal of the merchant's lines on, the flat fee is waived; never when null.
    pub free_threshold: Option<Money>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The admin who set the rule last.
    pub updated_by: Uuid,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
