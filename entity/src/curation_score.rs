//! Table `curation_scores`: each scoring of the four selection criteria and the badges'
//! flags, never updated; the latest one counts.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "curation_scores")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub product_id: Uuid,
    /// 刚需, 1–5.
    pub essential_need: i16,
    /// 解决新的痛点, 1–5.
    pub new_pain_point: i16,
    /// 产品生命力, 1–5.
    pub longevity: i16,
    /// 品质与供应链, 1–5.
    pub quality_and_supply: i16,
    pub high_quality: bool,
    pub high_design: bool,
    pub high_value: bool,
    /// Meets the export-to-EU quality bar (小米标准).
    pub eu_export_grade: bool,
    pub reviewer_id: Uuid,
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
