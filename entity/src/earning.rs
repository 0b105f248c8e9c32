//! Table `earnings`: one member's earning on one order line (or an adjustment), with the
//! explanation of how it was computed. `status` is a projection of the ledger: it changes only
//! by conditional updates that also append a ledger entry.

use crate::money::Money;
use sea_orm::entity::prelude::*;

/// The rule that produced an earning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
pub enum Kind {
    /// 自购省钱: a push-hand's own purchase.
    #[sea_orm(string_value = "SELF_PURCHASE")]
    SelfPurchase,
    /// 推广赚钱: bought through the member's share link.
    #[sea_orm(string_value = "PROMOTION")]
    Promotion,
    /// Bought by a member bound to this one.
    #[sea_orm(string_value = "BOUND_REBATE")]
    BoundRebate,
    /// Bought by a member bound through this partner's exclusive link.
    #[sea_orm(string_value = "PARTNER_REWARD")]
    PartnerReward,
    /// The upline's share (levels 2 and 3).
    #[sea_orm(string_value = "TEAM_REBATE")]
    TeamRebate,
    /// Fixed reward for a membership-activity sale.
    #[sea_orm(string_value = "MEMBERSHIP_REWARD")]
    MembershipReward,
    /// A correction, e.g. the clawback of a refunded earning that had already settled.
    #[sea_orm(string_value = "ADJUSTMENT")]
    Adjustment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Status {
    /// Frozen until the return window after completion has passed.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// Available (withdrawable).
    #[sea_orm(string_value = "SETTLED")]
    Settled,
    /// Cancelled by a refund before it settled.
    #[sea_orm(string_value = "REVERSED")]
    Reversed,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "earnings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub member_id: Uuid,
    pub order_id: Option<Uuid>,
    pub order_line_id: Option<Uuid>,
    pub product_id: Option<Uuid>,
    pub kind: Kind,
    /// 1 for the direct earner, 2 and 3 for its uplines.
    pub level: i16,
    /// Negative for adjustments.
    pub amount: Money,
    pub status: Status,
    /// JSON: rule, level, base amount, rate, attribution, policy version.
    pub explanation: String,
    pub created_at: DateTimeUtc,
    /// When it may settle: completion + the return window. `None` until the order completes.
    pub settle_after: Option<DateTimeUtc>,
    pub settled_at: Option<DateTimeUtc>,
    pub reversed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
