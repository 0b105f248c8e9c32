//! Table `withdrawals`: a member's request to be paid out, unique per idempotency key, and
//! its payout (channel, destination snapshot, provider reference).

use crate::money::Money;
use sea_orm::entity::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Status {
    /// Awaiting review; the amount is reserved.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// Approved: the payout is under way; the amount stays reserved.
    #[sea_orm(string_value = "PROCESSING")]
    Processing,
    /// Paid out.
    #[sea_orm(string_value = "PAID")]
    Paid,
    /// The payout failed: funds returned to the available balance.
    #[sea_orm(string_value = "FAILED")]
    Failed,
    /// Rejected by an admin: funds returned to the available balance.
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "withdrawals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub member_id: Uuid,
    /// Taken from the available balance at request time.
    pub amount: Money,
    /// Part of `amount` kept as the withdrawal fee; the payout is `amount - fee`.
    pub fee: Money,
    pub idempotency_key: String,
    pub status: Status,
    pub created_at: DateTimeUtc,
    pub reviewed_at: Option<DateTimeUtc>,
    pub reviewer_id: Option<Uuid>,
    /// `WECHAT`, `ALIPAY` or `MANUAL` (null only on rows from before payouts).
    pub payout_channel: Option<String>,
    /// The account paid to, as it was when requested (openid, Alipay account, card number);
    /// null for a `MANUAL` withdrawal of a member without a bank card on file.
    pub payout_account: Option<String>,
    /// The account holder's name, when the channel needs it.
    pub payout_holder: Option<String>,
    /// The bank (`MANUAL`).
    pub payout_bank: Option<String>,
    /// The provider's transfer number, or the bank reference an admin recorded.
    pub payout_reference: Option<String>,
    /// Why the payout failed (`FAILED`), or the last provider error while `PROCESSING`.
    pub payout_error: Option<String>,
    /// What the member's client needs to confirm a WeChat transfer (JSON), while waiting.
    pub payout_client_params: Option<String>,
    /// When it became `PAID`, `FAILED` (or `REJECTED`: `reviewed_at`).
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
