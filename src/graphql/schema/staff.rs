//! The staff's work lists (issue #31): `withdrawals`, `partnerApplications` and `members`
//! for admins, beside the lists that live with their domain (`orders` in
//! [`super::fulfilment`], `curationQueue` in [`super::curation`]). Root fields named for what
//! they list, as `orders` and `auditLog` are; the member's own lists stay under `me`.
//!
//! Every list is a counted connection ([`crate::graphql::pagination::CountedOf`]): keyset
//! pages newest first, filters as arguments, and `totalCount` (one `COUNT` statement, run
//! only when selected). A page costs its statement, the count when asked for, and one
//! batched statement per relation selected (`Withdrawal.member`), whatever its size.

use async_graphql::{Context, ID, Object, Result};

use super::earnings::{Withdrawal, WithdrawalStatus};
use super::members::{Member, PartnerApplicationStatus, Role};
use crate::graphql::context::{load_err, state, viewer};
use crate::graphql::ids;
use crate::graphql::loaders::{Loaders, MemberKey};
use crate::graphql::pagination::{CountedOf, PageArgs, wants_total};
use crate::service::members::{self as members_svc, MemberCursor, MemberFilter, RoleFilter};
use crate::service::withdrawals::{self as withdrawals_svc, WithdrawalCursor, WithdrawalFilter};
use entity::{member, withdrawal};

/// Admins' list of members (`members`, `partnerApplications`).
pub type MemberConnection = CountedOf<MemberCursor, Member>;

/// A withdrawal list: a member's own (`Member.withdrawals`) or the admins' (`withdrawals`).
pub type WithdrawalConnection = CountedOf<WithdrawalCursor, Withdrawal>;

/// A member list narrowed to a role as `Member.roles` lists it: `PUSH_HAND` includes
/// partners.
impl From<Role> for RoleFilter {
    fn from(r: Role) -> RoleFilter {
        match r {
            Role::Buyer => RoleFilter::Buyer,
            Role::PushHand => RoleFilter::PushHand,
            Role::Partner => RoleFilter::Partner,
            Role::Merchant => RoleFilter::Staff(member::StaffRole::Merchant),
            Role::Curator => RoleFilter::Staff(member::StaffRole::Curator),
            Role::Admin => RoleFilter::Staff(member::StaffRole::Admin),
        }
    }
}

fn withdrawal_status(s: WithdrawalStatus) -> withdrawal::Status {
    match s {
        WithdrawalStatus::Pending => withdrawal::Status::Pending,
        WithdrawalStatus::Processing => withdrawal::Status::Processing,
        WithdrawalStatus::Paid => withdrawal::Status::Paid,
        WithdrawalStatus::Failed => withdrawal::Status::Failed,
        WithdrawalStatus::Rejected => withdrawal::Status::Rejected,
    }
}

fn application_status(s: PartnerApplicationStatus) -> member::PartnerApplication {
    match s {
        PartnerApplicationStatus::Pending => member::PartnerApplication::Pending,
        PartnerApplicationStatus::Approved => member::PartnerApplication::Approved,
        PartnerApplicationStatus::Rejected => member::PartnerApplication::Rejected,
    }
}

/// The withdrawals `filter` admits as a page of `args` (`Member.withdrawals` and
/// `withdrawals`).
pub async fn withdrawal_page(
    ctx: &Context<'_>,
    filter: WithdrawalFilter,
    args: PageArgs<WithdrawalCursor>,
) -> Result<WithdrawalConnection> {
    let db = &state(ctx)?.db;
    let page = withdrawals_svc::list_filtered(db, filter, args.after(), args.first).await?;
    let total = withdrawals_svc::total(db, filter, wants_total(ctx)).await?;
    // The page's members in one batch now, when asked for: the loader's own batching waits
    // a moment for keys and may split a slow page in two.
    let la = ctx.look_ahead();
    if la.field("edges").field("node").field("member").exists()
        || la.field("nodes").field("member").exists()
    {
        let keys = page.items.iter().map(|w| MemberKey(w.member_id));
        ctx.data::<Loaders>()?
            .load_many(keys)
            .await
            .map_err(load_err)?;
    }
    Ok(args.counted(
        page,
        total,
        |w| WithdrawalCursor::of(w.created_at, w.id),
        Withdrawal,
    ))
}

async fn member_page(
    ctx: &Context<'_>,
    filter: MemberFilter,
    first: Option<i32>,
    after: Option<String>,
) -> Result<MemberConnection> {
    let args = PageArgs::<MemberCursor>::parse(first, after)?;
    let db = &state(ctx)?.db;
    let page = members_svc::list(db, &filter, args.after(), args.first).await?;
    let total = members_svc::total(db, &filter, wants_total(ctx)).await?;
    Ok(args.counted(
        page,
        total,
        |m| MemberCursor::of(m.created_at, m.id),
        Member,
    ))
}

#[derive(Default)]
pub struct StaffQuery;

#[Object]
impl StaffQuery {
    /// ADMIN: every member's withdrawals, newest first, optionally in one status (e.g.
    /// `PENDING`, the review queue) or of one member (`FORBIDDEN` to anyone else).
    async fn withdrawals(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only withdrawals in this status.")] status: Option<WithdrawalStatus>,
        #[graphql(desc = "Only this member's withdrawals (its `Member` or `MemberProfile` ID).")]
        member_id: Option<ID>,
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
    ) -> Result<WithdrawalConnection> {
        viewer(ctx)?.admin()?;
        let args = PageArgs::parse(first, after)?;
        let filter = WithdrawalFilter {
            member: member_id
                .map(|m| ids::decode_member(&m, "memberId"))
                .transpose()?,
            status: status.map(withdrawal_status),
        };
        withdrawal_page(ctx, filter, args).await
    }

    /// ADMIN: members by where their partner application stands (default `PENDING`, the
    /// review queue), newest registrations first (`FORBIDDEN` to anyone else).
    async fn partner_applications(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Applications in this state (default PENDING).")] status: Option<
            PartnerApplicationStatus,
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
    ) -> Result<MemberConnection> {
        viewer(ctx)?.admin()?;
        let filter = MemberFilter {
            application: Some(application_status(
                status.unwrap_or(PartnerApplicationStatus::Pending),
            )),
            ..MemberFilter::default()
        };
        member_page(ctx, filter, first, after).await
    }

    /// ADMIN: members, newest registrations first, narrowed by a search, a role and whether
    /// they are frozen (`FORBIDDEN` to anyone else). A member's plain fields cost nothing
    /// per row; its `upline`, `team` and money views are read per member (ask for them on
    /// one member, not on a page).
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Case-insensitive part of the email, phone, display name or invite code \
                    (at most 100 characters, else `VALIDATION`; blank: everyone)."
        )]
        search: Option<String>,
        #[graphql(
            desc = "Only members holding this role, as `roles` lists it (`PUSH_HAND` includes \
                    partners)."
        )]
        role: Option<Role>,
        #[graphql(desc = "Only frozen members (true) or only unfrozen ones (false).")]
        frozen: Option<bool>,
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
    ) -> Result<MemberConnection> {
        viewer(ctx)?.admin()?;
        let filter = MemberFilter {
            search,
            role: role.map(Into::into),
            frozen,
            application: None,
        };
        member_page(ctx, filter, first, after).await
    }
}
