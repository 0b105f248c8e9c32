//! Table `members`: accounts of buyers, push-hands, partners and staff.

use sea_orm::entity::prelude::*;

/// The member's standing in the programme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Tier {
    /// Anyone who registered without an invite code.
    #[sea_orm(string_value = "BUYER")]
    Buyer,
    /// 推手会员: joined by invite code (or a membership purchase); has an invite code.
    #[sea_orm(string_value = "PUSH_HAND")]
    PushHand,
    /// 合伙人: a push-hand admitted by an admin; also has an exclusive partner link.
    #[sea_orm(string_value = "PARTNER")]
    Partner,
}

/// Platform staff roles, held beside the tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum StaffRole {
    #[sea_orm(string_value = "MERCHANT")]
    Merchant,
    #[sea_orm(string_value = "CURATOR")]
    Curator,
    #[sea_orm(string_value = "ADMIN")]
    Admin,
}

/// Where a partner application stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum PartnerApplication {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "APPROVED")]
    Approved,
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Lower-cased; unique. At least one of email and phone is set.
    #[sea_orm(unique)]
    pub email: Option<String>,
    /// Normalised (11-digit Chinese mobile or E.164); unique.
    #[sea_orm(unique)]
    pub phone: Option<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    pub display_name: String,
    pub tier: Tier,
    pub staff_role: Option<StaffRole>,
    /// Own invite code (push-hands and partners).
    #[sea_orm(unique)]
    pub invite_code: Option<String>,
    /// Exclusive partner link code (partners).
    #[sea_orm(unique)]
    pub partner_link_code: Option<String>,
    pub partner_application: Option<PartnerApplication>,
    /// The active upline, kept equal to the member's active binding (`bindings`).
    pub upline_id: Option<Uuid>,
    pub frozen_at: Option<DateTimeUtc>,
    pub frozen_reason: Option<String>,
    /// Bumped by a password change or a freeze: tokens carrying an older version are dead.
    pub token_version: i32,
    pub created_at: DateTimeUtc,
    /// For `MERCHANT` staff: the merchant they act for.
    pub merchant_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
