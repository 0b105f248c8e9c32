//! Table `category_service_fees`: the platform's service fee rate of a category from a time
//! on, appended by admins (`setCategoryServiceFee`), never edited.

use crate::money::Rate;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "category_service_fees")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub category_id: Uuid,
    /// 0 to 100 %; the database checks the range.
    pub rate: Rate,
    /// Orders paid from this time on pay this rate (until a later row).
    pub effective_from: DateTimeUtc,
    /// The admin who set it (none: the command line, tests).
    pub set_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
