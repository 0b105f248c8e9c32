//! Table `payout_accounts`: where a member is paid, one account per member and channel.
//! The numbers are stored as given; the API shows them masked (see `service::payouts`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payout_accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub member_id: Uuid,
    /// `WECHAT` (an openid under our app id), `ALIPAY` (logon id or `2088…` user id),
    /// `MANUAL` (a bank card number).
    pub channel: String,
    pub account: String,
    /// The holder's real name (Alipay and bank cards need it).
    pub holder_name: Option<String>,
    /// The bank of a card.
    pub bank_name: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
