//! Table `addresses`: a member's delivery addresses (收货地址), at most 20, exactly one of
//! them the default (a partial unique index keeps it to at most one). The region codes are
//! stored with the names they had when the address was saved, so an address reads the same
//! after the region list moves on.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "addresses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub member_id: Uuid,
    pub recipient_name: String,
    /// E.164: `+86` and a mainland mobile number.
    pub phone: String,
    pub province_code: String,
    pub province_name: String,
    pub city_code: String,
    pub city_name: String,
    pub district_code: String,
    pub district_name: String,
    /// Street, building, unit, room.
    pub detail: String,
    /// Six digits.
    pub postal_code: Option<String>,
    pub is_default: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
