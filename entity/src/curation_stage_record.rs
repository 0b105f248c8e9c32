//! Table `curation_stage_records`: one row per stage result, never updated — the audit trail
//! of the five-stage quality gate.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "curation_stage_records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub product_id: Uuid,
    /// `QUALIFICATION_REVIEW`, `INSPECTION_REPORT`, `FACTORY_AUDIT`, `SCENARIO_TEST` or
    /// `INTERNAL_TEST`.
    pub stage: String,
    /// `PASS` or `FAIL`.
    pub result: String,
    pub reviewer_id: Uuid,
    pub notes: Option<String>,
    /// JSON array of http(s) URLs.
    pub evidence_urls: String,
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
