//! Payouts in GraphQL: members' payout accounts (`setPayoutAccount`, `me.payoutAccounts`,
//! masked), and the admins' payout actions (`markPayoutPaid`, `markPayoutFailed`,
//! `syncPayout`, `revealPayoutAccount`). The rules live in [`crate::service::payouts`];
//! WeChat's notifications arrive over HTTP (`POST /payouts/wechat/notify`).

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::payout_account;

use super::earnings::Withdrawal;
use crate::graphql::context::{actor, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::payments::payouts::PayoutChannel;
use crate::service::payouts::{self as svc, mask_account, mask_name};

/// How a withdrawal is paid out.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "PayoutChannel")]
pub enum PayoutChannelGql {
    /// WeChat Pay transfer to the member's WeChat balance (零钱), to an openid under our
    /// app id; the member may have to confirm it in WeChat (`payoutConfirmation`).
    Wechat,
    /// Alipay transfer to the member's Alipay account.
    Alipay,
    /// An admin pays the member's bank card and records the bank's reference.
    Manual,
}

impl From<PayoutChannelGql> for PayoutChannel {
    fn from(c: PayoutChannelGql) -> PayoutChannel {
        match c {
            PayoutChannelGql::Wechat => PayoutChannel::Wechat,
            PayoutChannelGql::Alipay => PayoutChannel::Alipay,
            PayoutChannelGql::Manual => PayoutChannel::Manual,
        }
    }
}

impl From<PayoutChannel> for PayoutChannelGql {
    fn from(c: PayoutChannel) -> PayoutChannelGql {
        match c {
            PayoutChannel::Wechat => PayoutChannelGql::Wechat,
            PayoutChannel::Alipay => PayoutChannelGql::Alipay,
            PayoutChannel::Manual => PayoutChannelGql::Manual,
        }
    }
}

/// Where a member's withdrawals of one channel are paid. Shown masked, to the member and
/// to admins alike; never to other members.
#[derive(SimpleObject)]
pub struct PayoutAccount {
    /// The channel this account is for.
    pub channel: PayoutChannelGql,
    /// The account, masked: a card's last 4 digits (`**** 1234`), an email's first letter
    /// and domain, otherwise the first 3 and last 4 characters.
    pub account: String,
    /// The holder's name, masked (`**明`); null when not given.
    pub holder_name: Option<String>,
    /// The bank of a card (MANUAL); null for the others.
    pub bank_name: Option<String>,
    /// When it was last set.
    pub updated_at: DateTime<Utc>,
}

impl PayoutAccount {
    pub fn of(a: payout_account::Model) -> PayoutAccount {
        PayoutAccount {
            channel: PayoutChannel::parse(&a.channel)
                .unwrap_or(PayoutChannel::Manual)
                .into(),
            account: mask_account(&a.channel, &a.account),
            holder_name: a.holder_name.as_deref().map(mask_name),
            bank_name: a.bank_name,
            updated_at: a.updated_at,
        }
    }
}

/// A payout account to set (replacing the one of its channel).
#[derive(InputObject)]
pub struct PayoutAccountInput {
    /// Which channel it is for.
    pub channel: PayoutChannelGql,
    /// WECHAT: your openid under our app (6–64 letters, digits, `_`, `-`); ALIPAY: your
    /// Alipay logon id (phone or email) or user id (`2088…`); MANUAL: a bank card number
    /// (12–19 digits, spaces ignored).
    pub account: String,
    /// Your real name as the account holds it: required for ALIPAY and MANUAL, and on
    /// WECHAT for withdrawals of 2000.00 or more (WeChat checks it; sent encrypted)
    /// (1–64 characters).
    pub holder_name: Option<String>,
    /// The card's bank: required for MANUAL (1–64 characters); ignored for the others.
    pub bank_name: Option<String>,
}

/// A MANUAL payout's destination in full, for the admin paying it.
#[derive(SimpleObject)]
pub struct PayoutDestination {
    /// The withdrawal (a `Withdrawal` ID).
    pub withdrawal_id: ID,
    /// The bank card number; null when the member had no card on file when requesting.
    pub account: Option<String>,
    /// The holder's name.
    pub holder_name: Option<String>,
    /// The bank.
    pub bank_name: Option<String>,
}

/// `Member.payoutAccounts`: the member's own, or any member's for an admin (masked for
/// both); `NOT_FOUND` for anyone else.
pub async fn accounts_of(ctx: &Context<'_>, member: uuid::Uuid) -> Result<Vec<PayoutAccount>> {
    if !viewer(ctx)?.is_or_admin(member) {
        return Err(crate::error::Error::not_found("member").into());
    }
    Ok(svc::accounts(&state(ctx)?.db, member)
        .await?
        .into_iter()
        .map(PayoutAccount::of)
        .collect())
}

#[derive(Default)]
pub struct PayoutsMutation;

#[Object]
impl PayoutsMutation {
    /// Sets your payout account of a channel (one per channel; setting again replaces
    /// it). Withdrawals already requested keep the account they recorded. Every bad field
    /// is reported at once (`VALIDATION`, `extensions.fields`).
    async fn set_payout_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account and, as its channel needs, holder and bank.")]
        input: PayoutAccountInput,
    ) -> Result<PayoutAccount> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let input = svc::AccountInput {
            channel: input.channel.into(),
            account: input.account,
            holder_name: input.holder_name,
            bank_name: input.bank_name,
        };
        Ok(PayoutAccount::of(
            svc::set_account(&st.db, &st.events, me, input, st.clock.now()).await?,
        ))
    }

    /// ADMIN: records that a MANUAL payout was paid, with the bank's reference: PAID, booked
    /// once. `PAYOUT_NOT_MANUAL` for a provider's payout; `PAYOUT_NOT_PROCESSING` unless it is
    /// PROCESSING. Audited.
    async fn mark_payout_paid(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A PROCESSING MANUAL withdrawal.")] withdrawal_id: ID,
        #[graphql(desc = "The bank transfer's reference (1–128 characters).")] reference: String,
    ) -> Result<Withdrawal> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&withdrawal_id, Kind::Withdrawal, "withdrawalId")?;
        let a = actor(ctx, admin);
        Ok(Withdrawal(
            svc::mark_paid(&st.db, &st.events, &a, id, &reference, st.clock.now()).await?,
        ))
    }

    /// ADMIN: records that a MANUAL payout failed: FAILED, the amount returned to the
    /// member's available balance once. Errors as `markPayoutPaid`. Audited.
    async fn mark_payout_failed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A PROCESSING MANUAL withdrawal.")] withdrawal_id: ID,
        #[graphql(desc = "Why (1–500 characters), shown to the member.")] reason: String,
    ) -> Result<Withdrawal> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&withdrawal_id, Kind::Withdrawal, "withdrawalId")?;
        let a = actor(ctx, admin);
        Ok(Withdrawal(
            svc::mark_failed(&st.db, &st.events, &a, id, &reason, st.clock.now()).await?,
        ))
    }

    /// ADMIN: asks the provider (WECHAT, ALIPAY) where a PROCESSING payout stands and
    /// applies the answer (PAID or FAILED once); a transfer the provider never received is
    /// sent again under its same number. A provider that cannot be reached leaves it
    /// PROCESSING (`payoutError`). `PAYOUT_MANUAL`, `PAYOUT_NOT_PROCESSING`,
    /// `PAYOUT_CHANNEL_UNAVAILABLE`. Audited.
    async fn sync_payout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A PROCESSING WECHAT or ALIPAY withdrawal.")] withdrawal_id: ID,
    ) -> Result<Withdrawal> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&withdrawal_id, Kind::Withdrawal, "withdrawalId")?;
        let a = actor(ctx, admin);
        Ok(Withdrawal(
            svc::sync(
                &st.db,
                &st.events,
                &st.payments.payouts,
                &a,
                id,
                st.clock.now(),
            )
            .await?,
        ))
    }

    /// ADMIN: the full bank card of a PROCESSING MANUAL payout — what the admin pays to.
    /// Audited (`PAYOUT_ACCOUNT_REVEALED`); `PAYOUT_NOT_MANUAL`, `PAYOUT_NOT_PROCESSING`.
    async fn reveal_payout_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A PROCESSING MANUAL withdrawal.")] withdrawal_id: ID,
    ) -> Result<PayoutDestination> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&withdrawal_id, Kind::Withdrawal, "withdrawalId")?;
        let a = actor(ctx, admin);
        let r = svc::reveal(&st.db, &a, id, st.clock.now()).await?;
        Ok(PayoutDestination {
            withdrawal_id,
            account: r.account,
            holder_name: r.holder,
            bank_name: r.bank,
        })
    }
}
