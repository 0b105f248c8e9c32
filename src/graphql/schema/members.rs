//! Members in GraphQL: `me`, registration and login, partners, admin actions on members, and
//! the team. A `Member` (private view) is only ever handed to the member itself or an admin;
//! everyone else sees at most a `MemberProfile`.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Duration, Utc};
use entity::{binding, member};

use super::earnings::{EarningKind, EarningStatus};
use crate::error::Error;
use crate::graphql::context::{actor, client_addr, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{ConnectionOf, PageArgs};
use crate::graphql::scalars::Dec;
use crate::ratelimit::Key;
use crate::service::{auth, hierarchy, members as svc, team};

/// What a member is on the platform. Push-hands and partners are programme tiers (a partner
/// is also a push-hand); merchants, curators and admins are staff roles.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A shopper with no programme role (registered without an invite code): earns nothing.
    /// Becomes a PUSH_HAND when an order of a membership product (`membershipActivity`)
    /// completes.
    Buyer,
    /// 推手: earns rebates on its own purchases, on sales through its share links and on the
    /// orders of the members bound to it and its team; has an invite code.
    PushHand,
    /// 合伙人: a push-hand an admin admitted; also has an exclusive partner link that binds
    /// new buyers to it for the binding period. Always listed together with PUSH_HAND.
    Partner,
    /// Staff acting for one merchant: creates brands, submits products (`myProducts`).
    Merchant,
    /// Staff running the quality gate: stages, scores, publishing (`curationQueue`).
    Curator,
    /// Staff with every power: payments, shipping, refunds, withdrawals, members, audit log.
    Admin,
}

/// The programme roles of a member (what its team and the public may see).
fn tier_roles(m: &member::Model) -> Vec<Role> {
    match m.tier {
        member::Tier::Buyer => vec![Role::Buyer],
        member::Tier::PushHand => vec![Role::PushHand],
        member::Tier::Partner => vec![Role::PushHand, Role::Partner],
    }
}

/// Every role, staff included.
fn all_roles(m: &member::Model) -> Vec<Role> {
    let mut roles = tier_roles(m);
    roles.extend(m.staff_role.map(|r| match r {
        member::StaffRole::Merchant => Role::Merchant,
        member::StaffRole::Curator => Role::Curator,
        member::StaffRole::Admin => Role::Admin,
    }));
    roles
}

/// Where a partner application stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum PartnerApplicationStatus {
    /// Waiting for an admin's `approvePartner` or `rejectPartner`; applying again meanwhile
    /// is `APPLICATION_PENDING`.
    Pending,
    /// Admitted: the member is a PARTNER and has a `partnerLinkCode`.
    Approved,
    /// Turned down: the member stays a push-hand and may apply again.
    Rejected,
}

/// How a binding came about.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum BindingKind {
    /// Registered with the upline's invite code: permanent.
    InviteCode,
    /// Through a partner's exclusive link: lapses after the binding period.
    PartnerLink,
    /// Set by an admin: permanent.
    AdminRebind,
    /// Bought a membership product through a referrer: permanent.
    MembershipPurchase,
}

/// Why a binding ended.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum BindingEndReason {
    /// A partner-link binding's period ran out; the member may follow another partner link.
    Expired,
    /// An admin bound the member to another upline (`rebindMember`).
    Rebound,
}

/// The private view of a member: only the member itself and admins ever receive one.
pub struct Member(pub member::Model);

/// A member of the platform, as the member itself (or an admin) sees it.
#[Object]
impl Member {
    /// Opaque global ID of the member's private view; its `MemberProfile` has an ID of its own.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::Member, self.0.id)
    }
    /// The name shown to others (1–64 characters, chosen at registration).
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    /// Programme tier roles and staff roles. A partner has both PUSH_HAND and PARTNER.
    async fn roles(&self) -> Vec<Role> {
        all_roles(&self.0)
    }
    /// Sign-in email, lower-cased; null when the member registered with a phone only.
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// Sign-in phone in E.164, e.g. +8613812345678; null when registered with an email only.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    /// Own invite code (8 characters); null for plain buyers and staff.
    async fn invite_code(&self) -> Option<&str> {
        self.0.invite_code.as_deref()
    }
    /// Exclusive partner link code; partners only.
    async fn partner_link_code(&self) -> Option<&str> {
        self.0.partner_link_code.as_deref()
    }
    /// The latest partner application's state, if the member ever applied.
    async fn partner_application(&self) -> Option<PartnerApplicationStatus> {
        self.0.partner_application.map(|a| match a {
            member::PartnerApplication::Pending => PartnerApplicationStatus::Pending,
            member::PartnerApplication::Approved => PartnerApplicationStatus::Approved,
            member::PartnerApplication::Rejected => PartnerApplicationStatus::Rejected,
        })
    }
    /// Frozen members earn nothing new, cannot withdraw, and their codes are refused.
    async fn frozen(&self) -> bool {
        self.0.frozen_at.is_some()
    }
    /// The admin's reason for the freeze (1–500 characters); null while not frozen.
    async fn frozen_reason(&self) -> Option<&str> {
        self.0.frozen_reason.as_deref()
    }
    /// When the member registered.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The merchant a MERCHANT acts for (`linkMerchantUser`); null for everyone else.
    async fn merchant(&self, ctx: &Context<'_>) -> Result<Option<super::catalog::Merchant>> {
        let Some(id) = self.0.merchant_id else {
            return Ok(None);
        };
        let found = ctx
            .data::<crate::graphql::loaders::Loaders>()?
            .load_one(crate::graphql::loaders::MerchantKey(id))
            .await
            .map_err(crate::graphql::context::load_err)?;
        Ok(found.map(super::catalog::Merchant))
    }
    /// The active upline (inviter or binding partner); null when unbound or lapsed.
    async fn upline(&self, ctx: &Context<'_>) -> Result<Option<MemberProfile>> {
        let st = state(ctx)?;
        let Some(b) = hierarchy::active_binding(&st.db, self.0.id, st.clock.now()).await? else {
            return Ok(None);
        };
        Ok(Some(MemberProfile(svc::get(&st.db, b.upline_id).await?)))
    }
    /// When the active binding lapses; null when it is permanent or there is none.
    async fn binding_expires_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        let st = state(ctx)?;
        Ok(hierarchy::active_binding(&st.db, self.0.id, st.clock.now())
            .await?
            .and_then(|b| b.expires_at))
    }
    /// Every binding this member has had, newest first.
    async fn bindings(&self, ctx: &Context<'_>) -> Result<Vec<Binding>> {
        Ok(svc::bindings_of(&state(ctx)?.db, self.0.id)
            .await?
            .into_iter()
            .map(Binding)
            .collect())
    }
    /// The downline at `level` (1 = bound directly to this member, up to 3), newest first.
    async fn team(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default = 1,
            desc = "How far down: 1 = bound directly to this member, 2 and 3 below them. \
                    Outside 1–3 is `VALIDATION`."
        )]
        level: i32,
        #[graphql(
            desc = "Page size: at most this many edges (default 20, capped at 100; negative is \
                    `VALIDATION`)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "The previous page's last `cursor` (or `pageInfo.endCursor`) to continue after; \
                    omit for the first page. A malformed cursor or one from another list or level \
                    is `VALIDATION`."
        )]
        after: Option<String>,
    ) -> Result<MemberProfileConnection> {
        let args = PageArgs::parse(first, after)?;
        let page = team::page(&state(ctx)?.db, self.0.id, level, args.after(), args.first).await?;
        Ok(args.connection(
            page,
            |m| team::TeamCursor::of(level, m),
            |m| MemberProfile(m.member),
        ))
    }
    /// Balances: pending, available, withdrawn, lifetime, this month.
    async fn earnings_summary(
        &self,
        ctx: &Context<'_>,
    ) -> Result<super::earnings::EarningsSummary> {
        super::earnings::summary_of(ctx, self.0.id).await
    }
    /// Earnings, newest first, optionally of one kind and status.
    async fn earnings(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Page size: at most this many edges (default 20, capped at 100; negative is \
                    `VALIDATION`)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "The previous page's last `cursor` (or `pageInfo.endCursor`) to continue after; \
                    omit for the first page. A malformed cursor or one from another list is \
                    `VALIDATION`."
        )]
        after: Option<String>,
        #[graphql(desc = "Only this kind; all kinds when omitted.")] kind: Option<EarningKind>,
        #[graphql(desc = "Only this status; all when omitted.")] status: Option<EarningStatus>,
    ) -> Result<super::earnings::EarningConnection> {
        super::earnings::earnings_of(ctx, self.0.id, first, after, kind, status).await
    }
    /// Net earnings per day or month in `[from, to)` for charts; every bucket is present.
    /// At most 366 days or 120 months.
    async fn earnings_series(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One point per UTC day or per UTC calendar month.")]
        granularity: super::earnings::Granularity,
        #[graphql(desc = "Start of the range, inclusive (its bucket is the first point).")]
        from: DateTime<Utc>,
        #[graphql(desc = "End of the range, exclusive; after `from` (`VALIDATION` otherwise).")]
        to: DateTime<Utc>,
    ) -> Result<Vec<super::earnings::EarningsPoint>> {
        super::earnings::series_of(ctx, self.0.id, granularity, from, to).await
    }
    /// Where this member's withdrawals are paid, one account per channel, masked (the
    /// member and admins only).
    async fn payout_accounts(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::payouts::PayoutAccount>> {
        super::payouts::accounts_of(ctx, self.0.id).await
    }
    /// Withdrawal requests, newest first.
    async fn withdrawals(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Page size: at most this many edges (default 20, capped at 100; negative is \
                    `VALIDATION`)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "The previous page's last `cursor` (or `pageInfo.endCursor`) to continue after; \
                    omit for the first page. A malformed cursor or one from another list is \
                    `VALIDATION`."
        )]
        after: Option<String>,
    ) -> Result<super::earnings::WithdrawalConnection> {
        super::earnings::withdrawals_of(ctx, self.0.id, first, after).await
    }
    /// After-sale requests (售后), newest first, with their total. The member itself and
    /// admins only (`FORBIDDEN` otherwise).
    async fn after_sales(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only after-sales in this state.")] status: Option<
            super::after_sales::AfterSaleStatus,
        >,
        #[graphql(
            desc = "Page size: at most this many edges (default 20, capped at 100; negative is \
                    `VALIDATION`)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "The previous page's last `cursor` (or `pageInfo.endCursor`) to continue after; \
                    omit for the first page. A malformed cursor or one from another list is \
                    `VALIDATION`."
        )]
        after: Option<String>,
    ) -> Result<super::after_sales::AfterSaleConnection> {
        super::after_sales::of_member(ctx, self.0.id, status, first, after).await
    }
    /// Orders placed, newest first.
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only orders in this status.")] status: Option<super::orders::OrderStatus>,
        #[graphql(
            desc = "Page size: at most this many edges (default 20, capped at 100; negative is \
                    `VALIDATION`)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "The previous page's last `cursor` (or `pageInfo.endCursor`) to continue after; \
                    omit for the first page. A malformed cursor or one from another list is \
                    `VALIDATION`."
        )]
        after: Option<String>,
    ) -> Result<super::orders::OrderConnection> {
        super::orders::orders_of(ctx, self.0.id, status, first, after).await
    }
    /// Coupons held (优惠券), newest claimed first, optionally in one status.
    async fn coupons(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only coupons in this status.")] status: Option<
            super::coupons::CouponStatus,
        >,
        #[graphql(
            desc = "Page size: at most this many edges (default 20, capped at 100; negative is \
                    `VALIDATION`)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "The previous page's last `cursor` (or `pageInfo.endCursor`) to continue after; \
                    omit for the first page. A malformed cursor or one from another list is \
                    `VALIDATION`."
        )]
        after: Option<String>,
    ) -> Result<super::coupons::CouponConnection> {
        super::coupons::coupons_of(ctx, self.0.id, status, first, after).await
    }
    /// The member's push-hand level (推手等级): the level held, since when, what it grants,
    /// and the next one with what is missing. Null for buyers and when no level exists.
    /// Levels go by settled, net sales, never by headcount, and grant privileges, not rates.
    async fn level(&self, ctx: &Context<'_>) -> Result<Option<super::levels::MemberLevel>> {
        super::levels::level_of(ctx, &self.0).await
    }
    /// Privileges granted (特权: badges, coupon packs, prizes), newest first, revoked ones
    /// included, each with its source (a level, partner status, or an admin).
    async fn privileges(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size (default 20, capped at 100).")] first: Option<i32>,
        #[graphql(desc = "The previous page's last cursor.")] after: Option<String>,
    ) -> Result<super::levels::PrivilegeConnection> {
        super::levels::privileges_of(ctx, self.0.id, first, after).await
    }
    /// Physical prizes (实物奖品) granted, newest first: claim one with `claimPrize` before
    /// it expires.
    async fn prizes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size (default 20, capped at 100).")] first: Option<i32>,
        #[graphql(desc = "The previous page's last cursor.")] after: Option<String>,
    ) -> Result<super::levels::PrizeConnection> {
        super::levels::prizes_of(ctx, self.0.id, first, after).await
    }
    /// Delivery addresses (收货地址): the default first, then newest first; at most 20. Only
    /// the member itself reads them (`FORBIDDEN` for an admin).
    async fn addresses(&self, ctx: &Context<'_>) -> Result<Vec<super::addresses::Address>> {
        super::addresses::addresses_of(ctx, self.0.id).await
    }
    /// The cart (购物车): at most 100 lines, one per SKU, oldest first, each with who would
    /// get credit for it and whether it can be ordered now. Only the member itself reads it
    /// (`FORBIDDEN` for an admin).
    async fn cart(&self, ctx: &Context<'_>) -> Result<super::cart::Cart> {
        super::cart::cart_of(ctx, self.0.id).await
    }
    /// The member's own 种草 notes, every status (drafts, under review, public, hidden),
    /// newest first; `review` gives each one's working copy and review.
    async fn notes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size (default 20, capped at 100).")] first: Option<i32>,
        #[graphql(desc = "The previous page's last cursor.")] after: Option<String>,
    ) -> Result<super::notes::NoteWorkConnection> {
        super::notes::own_notes(ctx, self.0.id, first, after).await
    }
    /// The member's share funnel over `period`: per share link and per note, visits,
    /// registrations through it, first orders, paid orders, earnings, and who registered but
    /// never bought. The member's own only (`FORBIDDEN` to an admin reading another member).
    async fn funnel(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "super::funnel::FunnelPeriod::Last30Days",
            desc = "The \
                  period, ending now (default the last 30 days)."
        )]
        period: super::funnel::FunnelPeriod,
    ) -> Result<super::funnel::Funnel> {
        super::funnel::funnel_of(ctx, self.0.id, period).await
    }
    /// Where the member stands on a leaderboard of the current week or month (Asia/Shanghai),
    /// even outside its top: the place, the net settled amount, and what would move it up
    /// one place. Rules as `leaderboard`'s; other members' settlements count as soon as this
    /// server hears of them (see `LeaderboardStanding.rank`).
    async fn rank(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which board.")] kind: super::leaderboards::LeaderboardKind,
        #[graphql(desc = "The current week or month.")]
        period: super::leaderboards::LeaderboardPeriod,
    ) -> Result<super::leaderboards::LeaderboardStanding> {
        super::leaderboards::standing_of(ctx, &self.0, kind, period).await
    }
    /// Team size per level and new members this month.
    async fn team_stats(&self, ctx: &Context<'_>) -> Result<TeamStats> {
        let st = state(ctx)?;
        let levels = team::stats(&st.db, self.0.id, st.clock.now()).await?;
        let sales = entity::Money::from_fen(levels.iter().map(|l| l.sales_this_month).sum());
        Ok(TeamStats {
            total_members: levels.iter().map(|l| l.members).sum(),
            new_this_month: levels.iter().map(|l| l.new_this_month).sum(),
            sales_this_month: sales.into(),
            levels: levels
                .into_iter()
                .map(|l| TeamLevelStats {
                    level: i32::from(l.level),
                    members: l.members,
                    new_this_month: l.new_this_month,
                    sales_this_month: entity::Money::from_fen(l.sales_this_month).into(),
                })
                .collect(),
        })
    }
}

/// The public face of a member: what its upline and team may see. Never an email, phone,
/// code or earnings.
pub struct MemberProfile(pub member::Model);

/// A member as others see it.
#[Object]
impl MemberProfile {
    /// Opaque global ID of this profile, distinct from the member's own `Member.id` (Relay
    /// IDs are unique per type); `node(id:)` answers it with this `MemberProfile`. Arguments
    /// that name a member (`memberId`, `uplineId`, `actorId`) accept it as well.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::MemberProfile, self.0.id)
    }
    /// The name the member chose (1–64 characters): the only personal detail shown to others.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    /// When the member registered.
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Programme roles only (BUYER, PUSH_HAND, PARTNER); staff roles are not shown.
    async fn roles(&self) -> Vec<Role> {
        tier_roles(&self.0)
    }
    /// The identity badges the member wears (专属身份: from its level, partner status, or an
    /// admin), oldest first.
    async fn badges(&self, ctx: &Context<'_>) -> Result<Vec<super::levels::Badge>> {
        super::levels::badges_of(ctx, self.0.id).await
    }
    /// The member's public 种草 notes.
    async fn notes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The order (default LATEST).")] feed: Option<super::notes::NoteFeed>,
        #[graphql(desc = "Page size (default 20, capped at 100).")] first: Option<i32>,
        #[graphql(desc = "The previous page's last cursor.")] after: Option<String>,
    ) -> Result<crate::graphql::transport::plain::Fast<super::notes::NoteConnection>> {
        let filter = crate::service::notes::Filter {
            author: Some(self.0.id),
            ..Default::default()
        };
        super::notes::public_notes(ctx, feed, filter, first, after).await
    }
}

pub type MemberProfileConnection = ConnectionOf<team::TeamCursor, MemberProfile>;

/// Team size at one level.
#[derive(SimpleObject)]
pub struct TeamLevelStats {
    /// 1 = bound directly to the member.
    pub level: i32,
    /// Members currently at this level (active bindings only).
    pub members: i64,
    /// Joined this calendar month (UTC).
    pub new_this_month: i64,
    /// Paid order amounts of this level's members this month, net of refunds (CNY).
    pub sales_this_month: Dec,
}

/// A member's team at a glance.
#[derive(SimpleObject)]
pub struct TeamStats {
    /// Levels 1 to 3, always all three.
    pub levels: Vec<TeamLevelStats>,
    /// Members at all three levels.
    pub total_members: i64,
    /// Members at all three levels who joined this calendar month (UTC).
    pub new_this_month: i64,
    /// Team sales this month (all three levels), net of refunds (CNY).
    pub sales_this_month: Dec,
}

/// One binding of the member's history.
pub struct Binding(pub binding::Model);

/// Who a member was bound to, how, and for how long.
#[Object]
impl Binding {
    /// How the binding came about (invite code, partner link, admin, membership purchase).
    async fn kind(&self) -> BindingKind {
        match self.0.kind {
            binding::Kind::InviteCode => BindingKind::InviteCode,
            binding::Kind::PartnerLink => BindingKind::PartnerLink,
            binding::Kind::AdminRebind => BindingKind::AdminRebind,
            binding::Kind::MembershipPurchase => BindingKind::MembershipPurchase,
        }
    }
    /// Who the member was bound to (its public profile).
    async fn upline(&self, ctx: &Context<'_>) -> Result<MemberProfile> {
        Ok(MemberProfile(
            svc::get(&state(ctx)?.db, self.0.upline_id).await?,
        ))
    }
    /// When the binding took effect.
    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.starts_at
    }
    /// Null: permanent.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    /// Null while the binding is in force.
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }
    /// Why the binding ended; null while it is in force.
    async fn end_reason(&self) -> Option<BindingEndReason> {
        self.0.end_reason.map(|r| match r {
            binding::EndReason::Expired => BindingEndReason::Expired,
            binding::EndReason::Rebound => BindingEndReason::Rebound,
        })
    }
}

/// A token and the member it signs in.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <token>` (HTTP) or in the WebSocket `connection_init`
    /// payload.
    pub token: String,
    /// When the token stops working (`PUSHHAND_TOKEN_TTL_HOURS` after issue); sign in again
    /// then. A password change or a freeze revokes it earlier.
    pub expires_at: DateTime<Utc>,
    /// The member signed in (its private view).
    pub member: Member,
}

/// Registration. Give an email or a phone (or both); an invite code makes the new member a
/// push-hand bound permanently to the code's owner; a partner link binds the new member to
/// the partner for the binding period.
#[derive(InputObject)]
pub struct RegisterInput {
    /// An email address to sign in with; stored lower-cased. `EMAIL_TAKEN` when registered.
    pub email: Option<String>,
    /// An 11-digit Chinese mobile number or an E.164 number.
    pub phone: Option<String>,
    /// At least 10 characters.
    pub password: String,
    /// 1–64 characters, shown to the member's upline and team.
    pub display_name: String,
    /// An upline's invite code (8 characters, case-insensitive; O/0 and I/L/1 are read
    /// alike): makes the new member a PUSH_HAND bound permanently to the code's owner.
    /// `INVALID_INVITE_CODE` when unknown or its owner is frozen.
    pub invite_code: Option<String>,
    /// A partner's exclusive link code: binds the new member (a BUYER) to the partner for
    /// the binding period. Not together with `inviteCode` (`VALIDATION`);
    /// `INVALID_PARTNER_LINK` when unknown.
    pub partner_link_code: Option<String>,
    /// The share code the new member arrived through (the `code` the short link `/s/{code}`
    /// hands the storefront: a share link's or a note's): counted as a registration in its
    /// owner's `funnel`. It binds nobody and earns nobody anything. `VALIDATION` when it is not
    /// shaped like a share code; one that names nothing (any more) is ignored.
    pub share_code: Option<String>,
}

/// Sign-in with an email or a phone.
#[derive(InputObject)]
pub struct LoginInput {
    /// The email registered (any case); give this or `phone`.
    pub email: Option<String>,
    /// The phone registered, as 11 digits or E.164; give this or `email`.
    pub phone: Option<String>,
    /// The account's password. Wrong or unknown accounts are both `INVALID_CREDENTIALS`.
    pub password: String,
}

fn signed_in(ctx: &Context<'_>, m: member::Model) -> Result<AuthPayload> {
    let st = state(ctx)?;
    let now = st.clock.now();
    let ttl = Duration::hours(i64::from(st.config.token_ttl_hours));
    let token = auth::issue_token(&st.jwt_secret, &m, now, ttl)?;
    Ok(AuthPayload {
        token,
        expires_at: now + ttl,
        member: Member(m),
    })
}

/// Runs a credential attempt within the failure limits ([`crate::ratelimit`]): a place on
/// each of `keys` is reserved before it runs (`RATE_LIMITED` when a counter is full), and
/// given back unless it failed as a guess (a wrong password or code, a taken email or phone).
async fn guarded<T>(
    ctx: &Context<'_>,
    keys: &[Key],
    attempt: impl std::future::Future<Output = crate::error::Result<T>>,
) -> Result<T> {
    let st = state(ctx)?;
    let reservation = st
        .failures
        .reserve(&st.config, st.redis.as_ref(), &st.db, keys)
        .await?;
    let outcome = attempt.await;
    let guess = outcome.as_ref().err().is_some_and(|e| {
        matches!(
            e.code(),
            "INVALID_CREDENTIALS"
                | "INVALID_INVITE_CODE"
                | "INVALID_PARTNER_LINK"
                | "EMAIL_TAKEN"
                | "PHONE_TAKEN"
        )
    });
    reservation.settle(guess).await;
    Ok(outcome?)
}

fn member_id(id: &ID, field: &'static str) -> Result<uuid::Uuid, Error> {
    ids::decode_member(id, field)
}

/// `approvePartner` and `rejectPartner`: an admin decides a pending application.
async fn review_partner(
    ctx: &Context<'_>,
    member_id: &ID,
    decision: svc::PartnerDecision,
) -> Result<Member> {
    let actor = actor(ctx, viewer(ctx)?.admin()?);
    let id = self::member_id(member_id, "memberId")?;
    let st = state(ctx)?;
    Ok(Member(
        svc::review_partner(&st.db, &st.events, &actor, id, decision, st.clock.now()).await?,
    ))
}

#[derive(Default)]
pub struct MembersQuery;

#[Object]
impl MembersQuery {
    /// The signed-in member; null when anonymous. An invalid, expired or revoked token is
    /// `UNAUTHENTICATED` rather than null.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        match viewer(ctx)? {
            auth::Viewer::Anonymous => Ok(None),
            v => Ok(Some(Member(v.member()?.clone()))),
        }
    }
}

#[derive(Default)]
pub struct MembersMutation;

#[Object]
impl MembersMutation {
    /// Creates an account and signs it in. Errors: `VALIDATION` (naming the field),
    /// `EMAIL_TAKEN`, `PHONE_TAKEN`, `INVALID_INVITE_CODE`, `INVALID_PARTNER_LINK`,
    /// `RATE_LIMITED` (more than 5 bad codes a minute, or 50 failures of any kind, from one
    /// client address), `UNAVAILABLE` (too many passwords being hashed: retry shortly).
    async fn register(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new account: an email or a phone, a password, a name and \
                          optionally an invite code or a partner link.")]
        input: RegisterInput,
    ) -> Result<AuthPayload> {
        let st = state(ctx)?;
        let client = client_addr(ctx);
        let mut keys = vec![Key::Address(client)];
        let has_code = |c: &Option<String>| c.as_deref().is_some_and(|c| !c.trim().is_empty());
        if has_code(&input.invite_code) || has_code(&input.partner_link_code) {
            keys.push(Key::Codes(client));
        }
        let registration = svc::Registration {
            email: input.email,
            phone: input.phone,
            password: input.password,
            display_name: input.display_name,
            invite_code: input.invite_code,
            partner_link_code: input.partner_link_code,
            share_code: input.share_code,
        };
        let m = guarded(
            ctx,
            &keys,
            svc::register(
                &st.db,
                &st.events,
                st.failures.hashing(&st.config),
                registration,
                st.config.policy.partner_binding_days,
                st.clock.now(),
            ),
        )
        .await?;
        signed_in(ctx, m)
    }

    /// Signs in. Errors: `INVALID_CREDENTIALS`, `RATE_LIMITED` (more than 5 failures a minute
    /// on the account, or 50 from one client address), `UNAVAILABLE` (too many passwords
    /// being hashed: retry shortly).
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "An email or a phone, and the password.")] input: LoginInput,
    ) -> Result<AuthPayload> {
        let st = state(ctx)?;
        let account = svc::login_account(input.email.as_deref(), input.phone.as_deref());
        let keys = [
            Key::Account(format!("login:{account}")),
            Key::Address(client_addr(ctx)),
        ];
        let m = guarded(
            ctx,
            &keys,
            svc::login(
                &st.db,
                st.failures.hashing(&st.config),
                input.email.as_deref(),
                input.phone.as_deref(),
                &input.password,
            ),
        )
        .await?;
        signed_in(ctx, m)
    }

    /// Changes the password; every token issued before stops working. Returns a new token.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The current password (`INVALID_CREDENTIALS` when wrong).")]
        old_password: String,
        #[graphql(desc = "10–128 characters (`VALIDATION` otherwise).")] new_password: String,
    ) -> Result<AuthPayload> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let keys = [
            Key::Account(format!("member:{}", me.id)),
            Key::Address(client_addr(ctx)),
        ];
        let hashing = st.failures.hashing(&st.config);
        let m = guarded(
            ctx,
            &keys,
            svc::change_password(
                &st.db,
                &st.events,
                hashing,
                me,
                &old_password,
                &new_password,
            ),
        )
        .await?;
        signed_in(ctx, m)
    }

    /// A push-hand applies to become a partner (合伙人); an admin approves or rejects.
    async fn apply_for_partner(&self, ctx: &Context<'_>) -> Result<Member> {
        let me = viewer(ctx)?.member()?;
        let st = state(ctx)?;
        Ok(Member(
            svc::apply_for_partner(&st.db, &st.events, me).await?,
        ))
    }

    /// ADMIN: admits a pending applicant as a partner, with an exclusive partner link.
    async fn approve_partner(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The applicant (a `Member` or `MemberProfile` ID).")] member_id: ID,
    ) -> Result<Member> {
        review_partner(ctx, &member_id, svc::PartnerDecision::Approve).await
    }

    /// ADMIN: turns a pending partner application down.
    async fn reject_partner(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The applicant (a `Member` or `MemberProfile` ID).")] member_id: ID,
    ) -> Result<Member> {
        review_partner(ctx, &member_id, svc::PartnerDecision::Reject).await
    }

    /// ADMIN: binds a member permanently under another push-hand or partner, ending its
    /// current binding (recorded as REBOUND). Binding into one's own downline is
    /// `BINDING_CYCLE`.
    async fn rebind_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member to move (a `Member` or `MemberProfile` ID).")] member_id: ID,
        #[graphql(desc = "Its new upline: a push-hand or partner (`VALIDATION` for a \
                          buyer; `NOT_FOUND` when unknown).")]
        upline_id: ID,
    ) -> Result<Member> {
        let actor = actor(ctx, viewer(ctx)?.admin()?);
        let st = state(ctx)?;
        let member = self::member_id(&member_id, "memberId")?;
        let upline = self::member_id(&upline_id, "uplineId")?;
        Ok(Member(
            svc::rebind(&st.db, &st.events, &actor, member, upline, st.clock.now()).await?,
        ))
    }

    /// ADMIN: freezes a member: no new earnings, no withdrawals, its codes refused, its
    /// tokens revoked.
    async fn freeze_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member to freeze (a `Member` or `MemberProfile` ID).")] member_id: ID,
        #[graphql(desc = "Why, 1–500 characters; shown to the member as `frozenReason`.")]
        reason: String,
    ) -> Result<Member> {
        let actor = actor(ctx, viewer(ctx)?.admin()?);
        let st = state(ctx)?;
        let id = self::member_id(&member_id, "memberId")?;
        Ok(Member(
            svc::set_frozen(
                &st.db,
                &st.events,
                &actor,
                id,
                Some(&reason),
                st.clock.now(),
            )
            .await?,
        ))
    }

    /// ADMIN: lifts a freeze.
    async fn unfreeze_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The frozen member (a `Member` or `MemberProfile` ID).")] member_id: ID,
    ) -> Result<Member> {
        let actor = actor(ctx, viewer(ctx)?.admin()?);
        let st = state(ctx)?;
        let id = self::member_id(&member_id, "memberId")?;
        Ok(Member(
            svc::set_frozen(&st.db, &st.events, &actor, id, None, st.clock.now()).await?,
        ))
    }

    /// A signed-in member with no active upline (e.g. after a partner binding lapsed) follows
    /// a partner's exclusive link and is bound to that partner for the binding period.
    async fn accept_partner_link(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The partner's link code (`INVALID_PARTNER_LINK` when unknown or \
                          the partner is frozen; `ALREADY_BOUND` while the viewer has an \
                          upline)."
        )]
        code: String,
    ) -> Result<Member> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?.id;
        let days = st.config.policy.partner_binding_days;
        let client = client_addr(ctx);
        let keys = [Key::Codes(client), Key::Address(client)];
        let m = guarded(
            ctx,
            &keys,
            svc::accept_partner_link(&st.db, &st.events, me, &code, days, st.clock.now()),
        )
        .await?;
        Ok(Member(m))
    }

    /// ADMIN: ends every binding whose period has run out now (the server also does this
    /// every minute). Returns how many ended.
    async fn expire_bindings(&self, ctx: &Context<'_>) -> Result<i32> {
        let actor = actor(ctx, viewer(ctx)?.admin()?);
        let st = state(ctx)?;
        let ended =
            hierarchy::expire_bindings_audited(&st.db, &st.events, &actor, st.clock.now()).await?;
        Ok(i32::try_from(ended).unwrap_or(i32::MAX))
    }
}
