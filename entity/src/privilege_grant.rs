//! Table `privilege_grants`: the ledger of privileges granted, one row per rule, member and
//! period (unique), with its revocation and — for a prize — the entitlement's claim and
//! shipment.

use crate::privilege_rule::Kind;
use crate::shipment::Carrier;
use sea_orm::entity::prelude::*;

/// Who granted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Source {
    /// The member's level (`level_id`).
    #[sea_orm(string_value = "LEVEL")]
    Level,
    /// The member's partner status.
    #[sea_orm(string_value = "PARTNER")]
    Partner,
    /// An admin (`granted_by`).
    #[sea_orm(string_value = "ADMIN")]
    Admin,
}

/// Where a prize entitlement stands (expiry is read from `prize_expires_at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum PrizeStatus {
    #[sea_orm(string_value = "UNCLAIMED")]
    Unclaimed,
    #[sea_orm(string_value = "CLAIMED")]
    Claimed,
    #[sea_orm(string_value = "SHIPPED")]
    Shipped,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "privilege_grants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub rule_id: Uuid,
    pub member_id: Uuid,
    /// `ONCE`, or the month `YYYY-MM` of a monthly rule.
    pub period: String,
    pub kind: Kind,
    pub source: Source,
    pub level_id: Option<Uuid>,
    pub granted_at: DateTimeUtc,
    pub granted_by: Option<Uuid>,
    pub revoked_at: Option<DateTimeUtc>,
    /// The admin who revoked it; `None` with `revoked_at`: the server (a level lost).
    pub revoked_by: Option<Uuid>,
    /// JSON array of the coupons a pack issued (`[]` otherwise).
    pub coupon_ids: String,
    pub prize_status: Option<PrizeStatus>,
    pub prize_expires_at: Option<DateTimeUtc>,
    pub claimed_at: Option<DateTimeUtc>,
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
    pub shipped_at: Option<DateTimeUtc>,
    pub carrier: Option<Carrier>,
    pub tracking_number: Option<String>,
    pub shipped_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
