//! Table `shipments`: a parcel of an order, with its carrier and tracking number; the lines
//! it covers are in [`crate::shipment_line`].

use sea_orm::entity::prelude::*;

/// The express companies a parcel may go with (a fixed list, so that tracking links and
/// reports can rely on the name); `Other` for anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Carrier {
    /// 顺丰速运.
    #[sea_orm(string_value = "SF")]
    Sf,
    /// 京东物流.
    #[sea_orm(string_value = "JD")]
    Jd,
    /// 中国邮政 EMS.
    #[sea_orm(string_value = "EMS")]
    Ems,
    /// 中通快递.
    #[sea_orm(string_value = "ZTO")]
    Zto,
    /// 圆通速递.
    #[sea_orm(string_value = "YTO")]
    Yto,
    /// 申通快递.
    #[sea_orm(string_value = "STO")]
    Sto,
    /// 韵达速递.
    #[sea_orm(string_value = "YUNDA")]
    Yunda,
    /// 极兔速递.
    #[sea_orm(string_value = "JT")]
    Jt,
    /// 德邦快递.
    #[sea_orm(string_value = "DEPPON")]
    Deppon,
    /// Any other carrier.
    #[sea_orm(string_value = "OTHER")]
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub order_id: Uuid,
    /// Null (with the tracking number) for a parcel shipped without tracking.
    pub carrier: Option<Carrier>,
    /// Upper-case letters, digits and `-`.
    pub tracking_number: Option<String>,
    pub shipped_at: DateTimeUtc,
    /// The staff member who shipped it (null off the API).
    pub shipped_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
