//! Table `product_drafts`: a merchant's working copy of a listed product, waiting for a
//! curator's review; the product's row stays the published version until it is approved.

use sea_orm::entity::prelude::*;

/// Where a working copy stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Status {
    /// Waiting for a curator.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// A curator sent it back (`review_reason` says why); a new edit makes it pending again.
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "product_drafts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: Uuid,
    pub merchant_id: Uuid,
    /// The working copy as JSON (`service::merchant_products::Draft`).
    pub content: String,
    pub status: Status,
    pub review_reason: Option<String>,
    pub reviewed_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
