//! Table `bindings`: the history of who was bound to whom, how, from when, until when, and
//! why it ended. A member has at most one binding with `ended_at` null (a partial unique
//! index guards it).

use sea_orm::entity::prelude::*;

/// How a binding came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
pub enum Kind {
    /// Registered with the upline's invite code: permanent (长期受益).
    #[sea_orm(string_value = "INVITE_CODE")]
    InviteCode,
    /// Registered through a partner's exclusive link: lapses after the binding period.
    #[sea_orm(string_value = "PARTNER_LINK")]
    PartnerLink,
    /// Set by an admin with `rebindMember`: permanent.
    #[sea_orm(string_value = "ADMIN_REBIND")]
    AdminRebind,
    /// Became a push-hand by buying a membership product through a referrer: permanent.
    #[sea_orm(string_value = "MEMBERSHIP_PURCHASE")]
    MembershipPurchase,
}

/// Why a binding ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum EndReason {
    /// Its period ran out.
    #[sea_orm(string_value = "EXPIRED")]
    Expired,
    /// An admin bound the member elsewhere.
    #[sea_orm(string_value = "REBOUND")]
    Rebound,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bindings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub member_id: Uuid,
    pub upline_id: Uuid,
    pub kind: Kind,
    pub starts_at: DateTimeUtc,
    /// `None`: permanent.
    pub expires_at: Option<DateTimeUtc>,
    pub ended_at: Option<DateTimeUtc>,
    pub end_reason: Option<EndReason>,
    /// The admin who made it, for `ADMIN_REBIND`.
    pub created_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
