//! Earnings in GraphQL: the member's summary, earnings with their explanation, withdrawals,
//! settlement on demand, and the ledger consistency check. A member reads only its own.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{earning, withdrawal};

use super::catalog::Product;
use crate::error::Error;
use crate::graphql::context::{load_err, state, viewer};
use crate::graphql::ids::{self, GlobalId, Kind};
use crate::graphql::loaders::{Loaders, ProductKey};
use crate::graphql::pagination::{ConnectionOf, PageArgs};
use crate::graphql::scalars::{Dec, DecArg, JsonValue};
use crate::graphql::transport::plain::plain_object;
use crate::service::earnings::{self as svc, Explanation};
use crate::service::{ledger, withdrawals};

/// Why a member earned: the rule that booked the earning (its `explanation.rule`).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum EarningKind {
    /// 自购省钱: your own purchase as a push-hand.
    SelfPurchase,
    /// 推广赚钱: bought through your share link.
    Promotion,
    /// Bought by a member bound to you.
    BoundRebate,
    /// Bought by a member bound through your partner link.
    PartnerReward,
    /// Your share of your team's sales (level 2 or 3).
    TeamRebate,
    /// Fixed reward for a membership sale.
    MembershipReward,
    /// A correction, e.g. the clawback of a refunded earning that had settled.
    Adjustment,
}

impl From<earning::Kind> for EarningKind {
    fn from(k: earning::Kind) -> Self {
        match k {
            earning::Kind::SelfPurchase => EarningKind::SelfPurchase,
            earning::Kind::Promotion => EarningKind::Promotion,
            earning::Kind::BoundRebate => EarningKind::BoundRebate,
            earning::Kind::PartnerReward => EarningKind::PartnerReward,
            earning::Kind::TeamRebate => EarningKind::TeamRebate,
            earning::Kind::MembershipReward => EarningKind::MembershipReward,
            earning::Kind::Adjustment => EarningKind::Adjustment,
        }
    }
}

impl From<EarningKind> for earning::Kind {
    fn from(k: EarningKind) -> Self {
        match k {
            EarningKind::SelfPurchase => earning::Kind::SelfPurchase,
            EarningKind::Promotion => earning::Kind::Promotion,
            EarningKind::BoundRebate => earning::Kind::BoundRebate,
            EarningKind::PartnerReward => earning::Kind::PartnerReward,
            EarningKind::TeamRebate => earning::Kind::TeamRebate,
            EarningKind::MembershipReward => earning::Kind::MembershipReward,
            EarningKind::Adjustment => earning::Kind::Adjustment,
        }
    }
}

/// Where an earning stands: pending through the return window, then settled (withdrawable),
/// or reversed by a refund.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum EarningStatus {
    /// Frozen until the return window after completion has passed.
    Pending,
    /// Available to withdraw.
    Settled,
    /// Cancelled by a refund before it settled.
    Reversed,
}

impl From<earning::Status> for EarningStatus {
    fn from(s: earning::Status) -> Self {
        match s {
            earning::Status::Pending => EarningStatus::Pending,
            earning::Status::Settled => EarningStatus::Settled,
            earning::Status::Reversed => EarningStatus::Reversed,
        }
    }
}

impl From<EarningStatus> for earning::Status {
    fn from(s: EarningStatus) -> Self {
        match s {
            EarningStatus::Pending => earning::Status::Pending,
            EarningStatus::Settled => earning::Status::Settled,
            EarningStatus::Reversed => earning::Status::Reversed,
        }
    }
}

/// One earning.
pub struct Earning(pub earning::Model);

/// An earning (收益): who earned how much on which sale, and exactly why.
#[Object]
impl Earning {
    /// Opaque global ID.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::Earning, self.0.id)
    }
    /// The rule that booked it.
    async fn kind(&self) -> EarningKind {
        self.0.kind.into()
    }
    /// PENDING until it settles (or is reversed by a refund).
    async fn status(&self) -> EarningStatus {
        self.0.status.into()
    }
    /// CNY, rounded down to the fen; negative for adjustments.
    async fn amount(&self) -> Dec {
        self.0.amount.into()
    }
    /// 1 for the direct earner, 2 and 3 for its uplines.
    async fn level(&self) -> i32 {
        i32::from(self.0.level)
    }
    /// The product sold; null for earnings on no one product (some adjustments).
    async fn product(&self, ctx: &Context<'_>) -> Result<Option<Product>> {
        let Some(id) = self.0.product_id else {
            return Ok(None);
        };
        Ok(ctx
            .data::<Loaders>()?
            .load_one(ProductKey(id))
            .await
            .map_err(load_err)?
            .map(Product::of))
    }
    /// When it was booked (the order's payment, or the refund for an adjustment).
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it settles (becomes withdrawable); null until the order completes.
    async fn settle_after(&self) -> Option<DateTime<Utc>> {
        self.0.settle_after
    }
    /// When it settled and became withdrawable; null while PENDING or once REVERSED.
    async fn settled_at(&self) -> Option<DateTime<Utc>> {
        self.0.settled_at
    }
    /// How this amount was computed: the rule, level, base amount, rate, what attributed the
    /// sale, and the policy version.
    async fn explanation(&self) -> Result<EarningExplanation> {
        let e: Explanation = serde_json::from_str(&self.0.explanation).map_err(Error::internal)?;
        Ok(EarningExplanation::from_parts(e, self.0.amount))
    }
}

/// [`EarningExplanation::basis`]: what every earning's base is.
const BASIS: &str = "GOODS_AMOUNT: the line's paid amount — unit price × units, less its coupon \
     share; shipping is never part of it";

/// An earning's explanation as stored, with the amount it explains: fields are answered
/// from it (the summary only when asked for).
pub struct EarningExplanation {
    explanation: Explanation,
    amount: entity::Money,
}

impl EarningExplanation {
    pub(crate) fn from_parts(
        explanation: Explanation,
        amount: entity::Money,
    ) -> EarningExplanation {
        EarningExplanation {
            explanation,
            amount,
        }
    }

    /// The computation in one sentence (and, after a coupon, how its base was reached).
    fn sentence(&self) -> String {
        let (e, amount) = (&self.explanation, self.amount);
        let summary = match (e.rate, e.fixed_per_unit, e.units) {
            (_, Some(per), Some(units)) => match e.uncapped_amount {
                Some(u) => format!(
                    "{per} × {units} unit(s) = {u}, cut to {amount} by the daily cap ({} reward)",
                    e.rule
                ),
                None => format!("{per} × {units} unit(s) = {amount} ({} reward)", e.rule),
            },
            (Some(rate), _, _) => {
                let pct = (rate * rust_decimal::Decimal::ONE_HUNDRED).normalize();
                match e.uncapped_amount {
                    Some(u) => format!(
                        "{pct}% of {} = {u}, cut to {} by the 30% per-line cap ({}, level {})",
                        e.base_amount, amount, e.rule, e.level
                    ),
                    None => format!(
                        "{pct}% of {} = {} rounded down to the fen ({}, level {})",
                        e.base_amount, amount, e.rule, e.level
                    ),
                }
            }
            _ => format!("{} of {} ({})", amount, e.base_amount, e.rule),
        };
        let summary = match (e.list_amount, e.coupon_share) {
            (Some(list), Some(share)) => format!(
                "{summary}; base {} = list amount {list} − coupon share {share}",
                e.base_amount
            ),
            _ => summary,
        };
        match &e.note_title {
            Some(title) => format!("{summary}; bought through the note «{title}»"),
            None => summary,
        }
    }
}

plain_object! {
    /// Why an earning exists and how each fen of it was computed.
    impl EarningExplanation => EarningExplanation as "EarningExplanation" {
        |this| this;
        |r, e|
        /// The rule applied (e.g. PROMOTION, TEAM_REBATE).
        rule "rule": &str = &r.explanation.rule;
        /// 1 for the direct earner, 2 and 3 for the uplines sharing in a team sale.
        level "level": i32 = i32::from(r.explanation.level);
        /// The base the rate applies to: the order line's goods amount (unit price × units),
        /// never shipping (see `basis`).
        base_amount "baseAmount": Dec = Dec(r.explanation.base_amount);
        /// What `baseAmount` is, in words: always the line's goods amount; shipping is never
        /// part of a rebate base.
        basis "basis": &str = BASIS;
        /// The rate applied; null for fixed rewards.
        rate "rate": Option<Dec> = r.explanation.rate.map(Dec);
        /// For fixed rewards: the reward per unit and the units.
        fixed_per_unit "fixedPerUnit": Option<Dec> = r.explanation.fixed_per_unit.map(Dec);
        /// For fixed rewards: how many units the reward was paid on; null for rate-based ones.
        units "units": Option<i32> = r.explanation.units;
        /// What the rate gave before the 30 % per-line cap cut it (for a membership reward: what
        /// the fixed reward gave before the daily cap cut it); null when not cut.
        uncapped_amount "uncappedAmount": Option<Dec> = r.explanation.uncapped_amount.map(Dec);
        /// Set when the sale came through a share link.
        share_link_id "shareLinkId": Option<ID> =
            r.explanation.share_link_id.map(|id| ID(id.to_string()));
        /// Set when the sale came through a 种草 note's share code: the note.
        note_id "noteId": Option<GlobalId> =
            r.explanation.note_id.map(|id| GlobalId(Kind::Note, id));
        /// The note's title when the earning was booked (see `noteId`).
        note_title "noteTitle": Option<&str> = r.explanation.note_title.as_deref();
        /// Set when the sale was attributed through a binding (the buyer's upline).
        binding_id "bindingId": Option<String> = r.explanation.binding_id.map(|id| id.to_string());
        /// For adjustments: the earning corrected.
        adjusts_earning_id "adjustsEarningId": Option<GlobalId> =
            r.explanation.adjusts_earning_id.map(|id| GlobalId(Kind::Earning, id));
        /// The version of the earning rules that computed it (e.g. "2026-11.1"): old earnings
        /// keep the rules they were booked under.
        policy_version "policyVersion": &str = &r.explanation.policy_version;
        /// The computation in one sentence, e.g. "15% of 199.00 = 29.85 (rounded down to the fen)".
        summary "summary": String = r.sentence();
        /// The line's list amount (unit price × units) when a coupon took something off it;
        /// null otherwise (the base is then the list amount).
        list_amount "listAmount": Option<Dec> = r.explanation.list_amount.map(Dec);
        /// The line's share of the order's coupon discount; null without one. `baseAmount` =
        /// `listAmount` − `couponShare`.
        coupon_share "couponShare": Option<Dec> = r.explanation.coupon_share.map(Dec);
        /// The coupon rule, stated when a coupon took something off the line: coupons are
        /// funded by the platform, and every rebate is on what was paid after them (a
        /// push-hand's own purchase included).
        coupon_rule "couponRule": Option<&str> = r
            .explanation
            .coupon_share
            .map(|_| crate::service::earnings::COUPON_RULE);
    }
    plain |s, field, out| {}
    resolvers {}
}

/// A member's money at a glance (CNY).
#[derive(SimpleObject)]
pub struct EarningsSummary {
    /// Earned, not yet settled (frozen during the return window).
    pub pending: Dec,
    /// Settled and withdrawable; negative after a clawback, which blocks withdrawals.
    pub available: Dec,
    /// Held by withdrawals awaiting review.
    pub reserved: Dec,
    /// Paid out (fees included).
    pub withdrawn: Dec,
    /// Everything earned, net of reversals and adjustments.
    pub lifetime: Dec,
    /// Net earnings booked this calendar month (UTC).
    pub this_month: Dec,
}

pub async fn summary_of(ctx: &Context<'_>, member: uuid::Uuid) -> Result<EarningsSummary> {
    Ok(summary_in(state(ctx)?, member).await?)
}

/// The summary from the state alone (subscriptions build it outside a resolver).
pub async fn summary_in(
    st: &crate::state::AppState,
    member: uuid::Uuid,
) -> crate::error::Result<EarningsSummary> {
    let s = ledger::summary(&st.db, member, st.clock.now()).await?;
    Ok(EarningsSummary {
        pending: s.pending.into(),
        available: s.available.into(),
        reserved: s.reserved.into(),
        withdrawn: s.withdrawn.into(),
        lifetime: s.lifetime.into(),
        this_month: s.this_month.into(),
    })
}

pub type EarningConnection = ConnectionOf<svc::EarningCursor, Earning>;

pub async fn earnings_of(
    ctx: &Context<'_>,
    member: uuid::Uuid,
    first: Option<i32>,
    after: Option<String>,
    kind: Option<EarningKind>,
    status: Option<EarningStatus>,
) -> Result<EarningConnection> {
    let args = PageArgs::parse(first, after)?;
    let page = svc::list(
        &state(ctx)?.db,
        member,
        kind.map(Into::into),
        status.map(Into::into),
        args.after(),
        args.first,
    )
    .await?;
    Ok(args.connection(
        page,
        |e| svc::EarningCursor::of(e.created_at, e.id),
        Earning,
    ))
}

/// Where a withdrawal stands: `PENDING` → (approved) `PROCESSING` → `PAID` or `FAILED`;
/// or `PENDING` → (rejected) `REJECTED`.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawalStatus {
    /// Waiting for an admin's review; the amount is held (`EarningsSummary.reserved`).
    Pending,
    /// Approved: its payout is under way; the amount is still held.
    Processing,
    /// Paid out.
    Paid,
    /// The payout failed: the amount returned to the available balance (`failureReason`).
    Failed,
    /// Rejected by an admin: the amount returned to the available balance.
    Rejected,
}

/// A withdrawal request.
pub struct Withdrawal(pub withdrawal::Model);

/// A request to be paid out (提现).
#[Object]
impl Withdrawal {
    /// Opaque global ID.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::Withdrawal, self.0.id)
    }
    /// Taken from the available balance when requested (CNY).
    async fn amount(&self) -> Dec {
        self.0.amount.into()
    }
    /// Kept as the withdrawal fee; the payout is amount − fee.
    async fn fee(&self) -> Dec {
        self.0.fee.into()
    }
    /// PENDING until an admin approves (its payout starts: PROCESSING, then PAID or
    /// FAILED) or rejects it.
    async fn status(&self) -> WithdrawalStatus {
        match self.0.status {
            withdrawal::Status::Pending => WithdrawalStatus::Pending,
            withdrawal::Status::Processing => WithdrawalStatus::Processing,
            withdrawal::Status::Paid => WithdrawalStatus::Paid,
            withdrawal::Status::Failed => WithdrawalStatus::Failed,
            withdrawal::Status::Rejected => WithdrawalStatus::Rejected,
        }
    }
    /// How it is paid out (chosen when requested).
    async fn payout_channel(&self) -> super::payouts::PayoutChannelGql {
        crate::service::payouts::channel_of(&self.0).into()
    }
    /// The account it pays to, masked as recorded when requested (`**** 1234`); null for a
    /// MANUAL withdrawal requested without a bank card on file.
    async fn payout_account(&self) -> Option<String> {
        let channel = crate::service::payouts::channel_of(&self.0).code();
        self.0
            .payout_account
            .as_deref()
            .map(|a| crate::service::payouts::mask_account(channel, a))
    }
    /// The provider's transfer number, or the bank reference an admin recorded; null until
    /// there is one.
    async fn payout_reference(&self) -> Option<&str> {
        self.0.payout_reference.as_deref()
    }
    /// Why the payout failed (FAILED only).
    async fn failure_reason(&self) -> Option<&str> {
        (self.0.status == withdrawal::Status::Failed)
            .then_some(self.0.payout_error.as_deref())
            .flatten()
    }
    /// ADMIN: the last provider error of a payout still PROCESSING (null for others and for
    /// members).
    async fn payout_error(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        let admin = viewer(ctx)?.is_admin();
        Ok((admin && self.0.status == withdrawal::Status::Processing)
            .then_some(self.0.payout_error.as_deref())
            .flatten())
    }
    /// OWNER: what the WeChat mini-program needs to confirm the transfer
    /// (`wx.requestMerchantTransfer({ mchId, appId, package })`) while WeChat waits for the
    /// member (state `WAIT_USER_CONFIRM`); null otherwise and for anyone else.
    async fn payout_confirmation(&self, ctx: &Context<'_>) -> Result<Option<JsonValue>> {
        let own = viewer(ctx)?
            .member()
            .is_ok_and(|m| m.id == self.0.member_id);
        if !own || self.0.status != withdrawal::Status::Processing {
            return Ok(None);
        }
        Ok(self
            .0
            .payout_client_params
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .map(JsonValue))
    }
    /// When it was paid or failed; null before.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// The key the client sent with `requestWithdrawal`: a retry with it answers this
    /// withdrawal.
    async fn idempotency_key(&self) -> &str {
        &self.0.idempotency_key
    }
    /// When it was requested.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When an admin approved or rejected it; null while PENDING.
    async fn reviewed_at(&self) -> Option<DateTime<Utc>> {
        self.0.reviewed_at
    }
    /// The member who asked for it (its private view: only the member itself and admins
    /// see a withdrawal). One batched statement for a whole page.
    async fn member(&self, ctx: &Context<'_>) -> Result<super::members::Member> {
        let found = ctx
            .data::<Loaders>()?
            .load_one(crate::graphql::loaders::MemberKey(self.0.member_id))
            .await
            .map_err(load_err)?;
        found.map(super::members::Member).ok_or_else(|| {
            Error::internal(anyhow::anyhow!("withdrawal {} has no member", self.0.id)).into()
        })
    }
}

pub use super::staff::WithdrawalConnection;

pub async fn withdrawals_of(
    ctx: &Context<'_>,
    member: uuid::Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<WithdrawalConnection> {
    let args = PageArgs::parse(first, after)?;
    let filter = withdrawals::WithdrawalFilter {
        member: Some(member),
        status: None,
    };
    super::staff::withdrawal_page(ctx, filter, args).await
}

/// What a settlement run did.
#[derive(SimpleObject)]
pub struct SettlementReport {
    /// The moment settled up to: earnings whose return window ended by then settled.
    pub as_of: DateTime<Utc>,
    /// Earnings that became available in this run.
    pub settled: i64,
    /// Their total, CNY, moved from pending to available balances.
    pub amount: Dec,
}

/// A member whose stored balances differ from its ledger.
#[derive(SimpleObject)]
pub struct LedgerMismatch {
    /// The member whose figures disagree (a `Member` ID).
    pub member_id: ID,
    /// The month (`YYYY-MM`) whose total disagrees with its entries (only the lifetime
    /// figures are compared then); null for the balance row.
    pub period: Option<String>,
    /// The available balance as stored (what the member is shown), CNY.
    pub stored_available: Dec,
    /// The available balance recomputed from the ledger entries, CNY.
    pub ledger_available: Dec,
    /// The pending balance as stored, CNY.
    pub stored_pending: Dec,
    /// The pending balance recomputed from the ledger entries, CNY.
    pub ledger_pending: Dec,
    /// Lifetime earnings as stored (for a month: that month's total), CNY.
    pub stored_lifetime: Dec,
    /// Lifetime earnings (or the month's) recomputed from the ledger entries, CNY.
    pub ledger_lifetime: Dec,
}

/// An earning or a withdrawal whose status is not the one its ledger entries say.
#[derive(SimpleObject)]
pub struct StatusMismatch {
    /// `EARNING` or `WITHDRAWAL`.
    pub kind: String,
    /// The earning's or withdrawal's global ID.
    pub id: ID,
    /// Its member (a `Member` ID).
    pub member_id: ID,
    /// The status stored on the row (`PENDING`, `SETTLED`, `REVERSED`, `PROCESSING`,
    /// `PAID`, `FAILED`, `REJECTED`).
    pub stored_status: String,
    /// The status its ledger entries imply.
    pub ledger_status: String,
}

/// The result of recomputing every balance from the ledger.
#[derive(SimpleObject)]
pub struct LedgerCheck {
    /// How many members' balances were recomputed.
    pub members_checked: i64,
    /// Empty when the books balance.
    pub mismatches: Vec<LedgerMismatch>,
    /// Earnings and withdrawals whose status disagrees with their entries (empty when
    /// none does).
    pub status_mismatches: Vec<StatusMismatch>,
}

#[derive(Default)]
pub struct EarningsQuery;

#[Object]
impl EarningsQuery {
    /// ADMIN: recomputes every member's balances from the ledger and lists disagreements.
    async fn ledger_check(&self, ctx: &Context<'_>) -> Result<LedgerCheck> {
        viewer(ctx)?.admin()?;
        let db = &state(ctx)?.db;
        let (checked, mismatches) = ledger::check(db).await?;
        let statuses = ledger::check_statuses(db).await?;
        let m = |fen: i64| Dec(entity::Money::from_fen(fen).to_decimal());
        Ok(LedgerCheck {
            members_checked: checked as i64,
            mismatches: mismatches
                .into_iter()
                .map(|x| LedgerMismatch {
                    member_id: ids::encode(Kind::Member, x.member_id),
                    period: x.period.clone(),
                    stored_available: m(x.stored.available),
                    ledger_available: m(x.from_ledger.available),
                    stored_pending: m(x.stored.pending),
                    ledger_pending: m(x.from_ledger.pending),
                    stored_lifetime: m(x.stored.lifetime),
                    ledger_lifetime: m(x.from_ledger.lifetime),
                })
                .collect(),
            status_mismatches: statuses
                .into_iter()
                .map(|x| StatusMismatch {
                    kind: x.kind.to_owned(),
                    id: ids::encode(
                        if x.kind == "EARNING" {
                            Kind::Earning
                        } else {
                            Kind::Withdrawal
                        },
                        x.id,
                    ),
                    member_id: ids::encode(Kind::Member, x.member_id),
                    stored_status: x.stored.to_owned(),
                    ledger_status: x.from_ledger.to_owned(),
                })
                .collect(),
        })
    }
}

#[derive(Default)]
pub struct EarningsMutation;

#[Object]
impl EarningsMutation {
    /// ADMIN: settles every pending earning whose return window has passed by `asOf`
    /// (default: now). Idempotent; the server also runs it every minute. In production an
    /// `asOf` later than now is `VALIDATION` (it would settle money inside the return
    /// window); development and tests use it to move time.
    async fn run_settlement(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Settle as if it were this moment (default: now); later than now \
                          only outside production."
        )]
        as_of: Option<DateTime<Utc>>,
    ) -> Result<SettlementReport> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let now = st.clock.now();
        let as_of = as_of.unwrap_or(now);
        if as_of > now && st.config.environment == crate::config::Environment::Production {
            return Err(Error::validation(
                "asOf",
                "must not be later than now: earnings settle after their return window",
            )
            .into());
        }
        let (settled, amount) = svc::settle(&st.db, &st.events, as_of, now).await?;
        // Levels follow settled sales: the members whose sales became settled in the last
        // two days are evaluated again (a failure does not undo the settlement; the daily run
        // catches up).
        if let Err(e) = crate::service::levels::evaluate_settled(
            &st.db,
            &st.events,
            &super::levels::policy(st),
            now - chrono::Duration::days(2),
            now,
            now,
        )
        .await
        {
            tracing::warn!(error = ?e, "level evaluation after settlement failed");
        }
        // The run is many transactions (one per batch of earnings): its entry follows it.
        crate::service::audit::record(
            &st.db,
            &crate::graphql::context::actor(ctx, admin),
            crate::service::audit::Action::SettlementRun,
            None,
            serde_json::json!({
                "asOf": as_of.to_rfc3339(),
                "settled": settled,
                "amount": amount.to_decimal().to_string(),
            }),
            now,
        )
        .await?;
        Ok(SettlementReport {
            as_of,
            settled: settled as i64,
            amount: amount.into(),
        })
    }

    /// Requests a payout of `amount` CNY from the available balance, reserved at once.
    /// The same `idempotencyKey` returns the same withdrawal; with another amount it is
    /// `IDEMPOTENCY_CONFLICT`. Errors: `WITHDRAWAL_BELOW_MINIMUM`, `INSUFFICIENT_BALANCE`,
    /// `MEMBER_FROZEN`; with `payoutChannel`: `PAYOUT_ACCOUNT_MISSING` (no account of that
    /// channel: `setPayoutAccount`), `PAYOUT_CHANNEL_UNAVAILABLE`, `PAYOUT_NAME_REQUIRED`
    /// (WeChat, 2000.00 or more, and the WECHAT account has no `holderName`).
    async fn request_withdrawal(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "CNY, above 0 with at most 2 decimal places, e.g. \"100.00\"; \
                          the fee is taken from it.")]
        amount: DecArg,
        #[graphql(desc = "1–128 characters the client makes up per withdrawal (a UUID \
                          will do) and reuses when retrying it.")]
        idempotency_key: String,
        #[graphql(
            desc = "How to be paid: to your payout account of this channel, recorded \
                          on the withdrawal. Omitted: MANUAL (to your bank card, when set)."
        )]
        payout_channel: Option<super::payouts::PayoutChannelGql>,
    ) -> Result<Withdrawal> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let p = &st.config.policy;
        let minimum = entity::Money::from_decimal(p.min_withdrawal).unwrap_or(entity::Money::ZERO);
        let fee_rate =
            entity::Rate::from_decimal(p.withdrawal_fee_rate).unwrap_or(entity::Rate::ZERO);
        Ok(Withdrawal(
            withdrawals::request_to(
                &st.db,
                &st.events,
                &st.payments.payouts,
                me,
                amount.money("amount")?.to_decimal(),
                &idempotency_key,
                withdrawals::Terms { minimum, fee_rate },
                payout_channel.map(Into::into),
                st.clock.now(),
            )
            .await?,
        ))
    }

    /// ADMIN: approves or rejects (returns the funds) a pending withdrawal. Approving starts
    /// its payout: PROCESSING, then PAID or FAILED when the provider answers, notifies, or
    /// `syncPayout` asks; a MANUAL payout waits for `markPayoutPaid` / `markPayoutFailed`.
    /// `PAYOUT_CHANNEL_UNAVAILABLE` when its channel is not enabled.
    async fn review_withdrawal(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A PENDING withdrawal (`ALREADY_REVIEWED` otherwise).")] id: ID,
        #[graphql(desc = "True starts its payout; false returns the amount to the \
                          member's available balance.")]
        approve: bool,
    ) -> Result<Withdrawal> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let wid = ids::decode_as(&id, Kind::Withdrawal, "id")?;
        let actor = crate::graphql::context::actor(ctx, admin);
        Ok(Withdrawal(
            withdrawals::review_with(
                &st.db,
                &st.events,
                &st.payments.payouts,
                &actor,
                wid,
                approve,
                st.clock.now(),
            )
            .await?,
        ))
    }
}

/// `node(id:)` for earnings: the owner and admins only.
pub async fn earning_node(ctx: &Context<'_>, id: uuid::Uuid) -> Result<earning::Model> {
    Ok(svc::visible(&state(ctx)?.db, viewer(ctx)?, id).await?)
}

/// `node(id:)` for withdrawals: the owner and admins only.
pub async fn withdrawal_node(ctx: &Context<'_>, id: uuid::Uuid) -> Result<withdrawal::Model> {
    Ok(withdrawals::visible(&state(ctx)?.db, viewer(ctx)?, id).await?)
}

/// Chart buckets.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// One bucket per UTC day (`period` is `YYYY-MM-DD`); at most 366.
    Day,
    /// One bucket per UTC calendar month (`period` is `YYYY-MM`); at most 120.
    Month,
}

/// Net earnings in one bucket of a chart.
#[derive(SimpleObject)]
pub struct EarningsPoint {
    /// `YYYY-MM-DD` or `YYYY-MM` (UTC).
    pub period: String,
    /// Net earnings booked in the bucket (reversals and adjustments subtracted), CNY; zero
    /// for a bucket without any.
    pub amount: Dec,
}

pub async fn series_of(
    ctx: &Context<'_>,
    member: uuid::Uuid,
    granularity: Granularity,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<EarningsPoint>> {
    let g = match granularity {
        Granularity::Day => ledger::Granularity::Day,
        Granularity::Month => ledger::Granularity::Month,
    };
    let points = ledger::series(&state(ctx)?.db, member, g, from, to).await?;
    Ok(points
        .into_iter()
        .map(|(period, amount)| EarningsPoint {
            period,
            amount: amount.into(),
        })
        .collect())
}
