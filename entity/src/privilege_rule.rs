//! Table `privilege_rules`: a privilege (特权) — what it is, whom it goes to and how often.

use sea_orm::entity::prelude::*;

/// What a privilege gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Kind {
    /// An identity badge shown on the member's public profile.
    #[sea_orm(string_value = "BADGE")]
    Badge,
    /// One coupon of each of a set of `GRANT` coupon templates.
    #[sea_orm(string_value = "COUPON_PACK")]
    CouponPack,
    /// A physical prize the member claims to an address.
    #[sea_orm(string_value = "PRIZE")]
    Prize,
}

/// Whom a rule goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Audience {
    /// The members holding `level_id`.
    #[sea_orm(string_value = "LEVEL")]
    Level,
    /// Every partner.
    #[sea_orm(string_value = "PARTNERS")]
    Partners,
    /// Whom an admin grants it to.
    #[sea_orm(string_value = "MANUAL")]
    Manual,
}

/// How often a member gets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Period {
    #[sea_orm(string_value = "ONCE")]
    Once,
    /// Once per calendar month (UTC).
    #[sea_orm(string_value = "MONTHLY")]
    Monthly,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "privilege_rules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// What members see: the badge's text, the pack's or the prize's name.
    pub name: String,
    pub kind: Kind,
    pub audience: Audience,
    /// The level of a `LEVEL` rule.
    pub level_id: Option<Uuid>,
    pub period: Period,
    /// JSON array of coupon template ids (`COUPON_PACK`; `[]` otherwise).
    pub coupon_template_ids: String,
    /// `PRIZE`: days the member has to claim it.
    pub prize_claim_days: Option<i32>,
    pub enabled: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
