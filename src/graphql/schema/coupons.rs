//! Coupons in GraphQL: the admins' templates (`createCouponTemplate`,
//! `setCouponTemplateEnabled`, `couponTemplates`), what members may claim
//! (`claimableCoupons`, `claimCoupon`) and hold (`me.coupons`). Using one is `couponId` on
//! `checkoutPreview` and `placeOrder`. The rules live in [`crate::service::coupons`].

use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::coupon;
use entity::coupon_template::{self as template, Distribution, Kind as TemplateKind, Scope};

use crate::graphql::context::{actor, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{ConnectionOf, PageArgs};
use crate::graphql::scalars::{Dec, DecArg};
use crate::service::coupons as svc;

/// What a coupon takes off.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum CouponKind {
    /// A fixed amount off (`amountOff`).
    Fixed,
    /// A rate off the eligible goods (`rateOff`), rounded down to the fen, at most `maxOff`
    /// when set.
    Percent,
}

impl From<TemplateKind> for CouponKind {
    fn from(k: TemplateKind) -> Self {
        match k {
            TemplateKind::Fixed => CouponKind::Fixed,
            TemplateKind::Percent => CouponKind::Percent,
        }
    }
}

impl From<CouponKind> for TemplateKind {
    fn from(k: CouponKind) -> Self {
        match k {
            CouponKind::Fixed => TemplateKind::Fixed,
            CouponKind::Percent => TemplateKind::Percent,
        }
    }
}

/// Which lines of an order a coupon applies to.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum CouponScope {
    /// Every line.
    All,
    /// Lines of products in the categories of `scopeIds` (a top-level category covers its
    /// subcategories).
    Categories,
    /// Lines of products of the brands of `scopeIds`.
    Brands,
    /// Lines of the products of `scopeIds`.
    Products,
}

impl From<Scope> for CouponScope {
    fn from(s: Scope) -> Self {
        match s {
            Scope::All => CouponScope::All,
            Scope::Categories => CouponScope::Categories,
            Scope::Brands => CouponScope::Brands,
            Scope::Products => CouponScope::Products,
        }
    }
}

impl From<CouponScope> for Scope {
    fn from(s: CouponScope) -> Self {
        match s {
            CouponScope::All => Scope::All,
            CouponScope::Categories => Scope::Categories,
            CouponScope::Brands => Scope::Brands,
            CouponScope::Products => Scope::Products,
        }
    }
}

/// How members get a template's coupons.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum CouponDistribution {
    /// Members claim them (`claimableCoupons`, `claimCoupon`).
    Claim,
    /// Given by an admin, a level or a privilege; never claimed.
    Grant,
    /// Every member gets one as it registers (in `register`'s transaction), while any are
    /// left.
    OnRegister,
}

impl From<Distribution> for CouponDistribution {
    fn from(d: Distribution) -> Self {
        match d {
            Distribution::Claim => CouponDistribution::Claim,
            Distribution::Grant => CouponDistribution::Grant,
            Distribution::OnRegister => CouponDistribution::OnRegister,
        }
    }
}

impl From<CouponDistribution> for Distribution {
    fn from(d: CouponDistribution) -> Self {
        match d {
            CouponDistribution::Claim => Distribution::Claim,
            CouponDistribution::Grant => Distribution::Grant,
            CouponDistribution::OnRegister => Distribution::OnRegister,
        }
    }
}

/// Where a member's coupon stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum CouponStatus {
    /// Usable (from `validFrom`) until `expiresAt`.
    Available,
    /// Held by an order (`order`). It comes back when that order is cancelled unpaid or
    /// expires, or when every line it took money off is fully refunded.
    Used,
    /// Not used, and past `expiresAt`.
    Expired,
}

impl From<svc::Status> for CouponStatus {
    fn from(s: svc::Status) -> Self {
        match s {
            svc::Status::Available => CouponStatus::Available,
            svc::Status::Used => CouponStatus::Used,
            svc::Status::Expired => CouponStatus::Expired,
        }
    }
}

impl From<CouponStatus> for svc::Status {
    fn from(s: CouponStatus) -> Self {
        match s {
            CouponStatus::Available => svc::Status::Available,
            CouponStatus::Used => svc::Status::Used,
            CouponStatus::Expired => svc::Status::Expired,
        }
    }
}

/// A coupon template (优惠券模板).
pub struct CouponTemplate(pub template::Model);

/// A kind of coupon: what it takes off, on which lines, for how long, how many exist and
/// how members get them. Coupons are funded by the platform: every rebate is computed on
/// what the buyer paid after the coupon.
#[Object]
impl CouponTemplate {
    /// Opaque global ID (for `claimCoupon`, `setCouponTemplateEnabled`).
    async fn id(&self) -> ID {
        ids::encode(Kind::CouponTemplate, self.0.id)
    }
    /// Its name, as members see it.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// FIXED or PERCENT.
    async fn kind(&self) -> CouponKind {
        self.0.kind.into()
    }
    /// FIXED: the amount off, CNY; null for PERCENT.
    async fn amount_off(&self) -> Option<Dec> {
        self.0.amount_off.map(Into::into)
    }
    /// PERCENT: the rate off, a fraction ("0.15" = 15 % off); null for FIXED.
    async fn rate_off(&self) -> Option<Dec> {
        self.0.rate_off.map(|r| Dec(r.to_decimal()))
    }
    /// PERCENT: the most it takes off, CNY; null for no cap (and for FIXED).
    async fn max_off(&self) -> Option<Dec> {
        self.0.max_off.map(Into::into)
    }
    /// The eligible lines must come to at least this, CNY (list prices).
    async fn min_spend(&self) -> Dec {
        self.0.min_spend.into()
    }
    /// Which lines it applies to.
    async fn scope(&self) -> CouponScope {
        self.0.scope.into()
    }
    /// The categories, brands or products of the scope (global IDs; empty for ALL; a
    /// top-level category is listed with its subcategories).
    async fn scope_ids(&self) -> Vec<ID> {
        let kind = match self.0.scope {
            Scope::All => return Vec::new(),
            Scope::Categories => Kind::Category,
            Scope::Brands => Kind::Brand,
            Scope::Products => Kind::Product,
        };
        svc::scope_ids_of(&self.0)
            .into_iter()
            .map(|id| ids::encode(kind, id))
            .collect()
    }
    /// Fixed validity: from; null for a validity counted from claiming.
    async fn valid_from(&self) -> Option<DateTime<Utc>> {
        self.0.valid_from
    }
    /// Fixed validity: until (exclusive); null for a validity counted from claiming.
    async fn valid_until(&self) -> Option<DateTime<Utc>> {
        self.0.valid_until
    }
    /// Relative validity: a coupon expires this many days after it is claimed; null for
    /// fixed dates.
    async fn valid_days(&self) -> Option<i32> {
        self.0.valid_days
    }
    /// How many coupons exist in all.
    async fn total_quantity(&self) -> i32 {
        self.0.total_quantity
    }
    /// How many were handed out (claimed or granted); never above `totalQuantity`.
    async fn issued(&self) -> i32 {
        self.0.issued
    }
    /// How many are left to hand out.
    async fn remaining(&self) -> i32 {
        self.0.total_quantity - self.0.issued
    }
    /// The most one member holds.
    async fn per_member_limit(&self) -> i32 {
        self.0.per_member_limit
    }
    /// How members get them.
    async fn distribution(&self) -> CouponDistribution {
        self.0.distribution.into()
    }
    /// A disabled template is neither claimed nor granted, and its coupons do not apply to
    /// new orders.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A template a member may claim, with how many of its coupons the member holds.
pub struct ClaimableCoupon(pub template::Model, pub i64);

/// A template open for claiming, as a member sees it.
#[Object]
impl ClaimableCoupon {
    /// The template.
    async fn template(&self) -> CouponTemplate {
        CouponTemplate(self.0.clone())
    }
    /// How many of its coupons the viewer holds (used and expired ones included).
    async fn held(&self) -> i32 {
        i32::try_from(self.1).unwrap_or(i32::MAX)
    }
    /// Whether the viewer may claim one more (below the per-member limit).
    async fn can_claim(&self) -> bool {
        self.1 < i64::from(self.0.per_member_limit)
    }
}

/// A member's coupon, with its template.
pub struct Coupon {
    pub row: coupon::Model,
    pub template: Option<template::Model>,
    pub now: DateTime<Utc>,
}

/// A coupon a member holds (优惠券).
#[Object]
impl Coupon {
    /// Opaque global ID (pass as `couponId` to `checkoutPreview` and `placeOrder`).
    async fn id(&self) -> ID {
        ids::encode(Kind::Coupon, self.row.id)
    }
    /// What it is (as the template is now).
    async fn template(&self) -> Option<CouponTemplate> {
        self.template.clone().map(CouponTemplate)
    }
    /// AVAILABLE, USED or EXPIRED.
    async fn status(&self) -> CouponStatus {
        svc::status_of(&self.row, self.now).into()
    }
    /// When it was claimed or granted.
    async fn claimed_at(&self) -> DateTime<Utc> {
        self.row.claimed_at
    }
    /// Usable from.
    async fn valid_from(&self) -> DateTime<Utc> {
        self.row.valid_from
    }
    /// Usable until (exclusive).
    async fn expires_at(&self) -> DateTime<Utc> {
        self.row.expires_at
    }
    /// The order holding it, while USED.
    async fn order_id(&self) -> Option<ID> {
        self.row.order_id.map(|id| ids::encode(Kind::Order, id))
    }
    /// When the order holding it was placed.
    async fn used_at(&self) -> Option<DateTime<Utc>> {
        self.row.used_at
    }
}

pub type CouponTemplateConnection = ConnectionOf<svc::TemplateCursor, CouponTemplate>;
pub type CouponConnection = ConnectionOf<svc::CouponCursor, Coupon>;

/// The viewer's coupons, newest first (backs `Member.coupons`).
pub async fn coupons_of(
    ctx: &Context<'_>,
    member: uuid::Uuid,
    status: Option<CouponStatus>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<CouponConnection> {
    let st = state(ctx)?;
    let args = PageArgs::parse(first, after)?;
    let now = st.clock.now();
    let page = svc::list(
        &st.db,
        member,
        status.map(Into::into),
        args.after(),
        args.first,
        now,
    )
    .await?;
    let templates = svc::templates_by_id(&st.db, page.items.iter().map(|c| c.template_id)).await?;
    Ok(args.connection(
        page,
        |c| svc::CouponCursor::of(c.claimed_at, c.id),
        |row| Coupon {
            template: templates.get(&row.template_id).cloned(),
            row,
            now,
        },
    ))
}

/// A coupon template to create.
#[derive(InputObject)]
pub struct CreateCouponTemplateInput {
    /// 1–60 characters, as members see it.
    pub name: String,
    /// FIXED (give `amountOff`) or PERCENT (give `rateOff`, optionally `maxOff`).
    pub kind: CouponKind,
    /// FIXED: the amount off, CNY, above zero and below `minSpend` when there is one.
    pub amount_off: Option<DecArg>,
    /// PERCENT: the rate off, a fraction above 0 and at most 1 ("0.15" = 15 % off).
    pub rate_off: Option<DecArg>,
    /// PERCENT: the most it takes off, CNY, above zero; omit for no cap.
    pub max_off: Option<DecArg>,
    /// The eligible lines must come to at least this, CNY (default 0).
    pub min_spend: Option<DecArg>,
    /// Which lines it applies to.
    pub scope: CouponScope,
    /// 1–200 category, brand or product IDs for a scope other than ALL (none for ALL).
    pub scope_ids: Option<Vec<ID>>,
    /// Fixed validity: from (with `validUntil`; not with `validDays`).
    pub valid_from: Option<DateTime<Utc>>,
    /// Fixed validity: until, after `validFrom` and in the future.
    pub valid_until: Option<DateTime<Utc>>,
    /// Relative validity: 1–3650 days from claiming (not with fixed dates).
    pub valid_days: Option<i32>,
    /// How many coupons exist in all, 1–10,000,000.
    pub total_quantity: i32,
    /// The most one member holds, 1 to `totalQuantity`.
    pub per_member_limit: i32,
    /// How members get them.
    pub distribution: CouponDistribution,
}

#[derive(Default)]
pub struct CouponsQuery;

#[Object]
impl CouponsQuery {
    /// ADMIN: every coupon template, newest first.
    async fn coupon_templates(
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
    ) -> Result<CouponTemplateConnection> {
        viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let args = PageArgs::parse(first, after)?;
        let page = svc::list_templates(&st.db, args.after(), args.first).await?;
        Ok(args.connection(
            page,
            |t| svc::TemplateCursor::of(t.created_at, t.id),
            CouponTemplate,
        ))
    }

    /// Signed-in members: the templates open for claiming now (enabled, CLAIM, coupons
    /// left, not past their validity), newest first, at most 100, each with how many the
    /// viewer holds.
    async fn claimable_coupons(&self, ctx: &Context<'_>) -> Result<Vec<ClaimableCoupon>> {
        let me = viewer(ctx)?.member()?;
        let st = state(ctx)?;
        Ok(svc::claimable(&st.db, me.id, st.clock.now())
            .await?
            .into_iter()
            .map(|(t, n)| ClaimableCoupon(t, n))
            .collect())
    }
}

#[derive(Default)]
pub struct CouponsMutation;

#[Object]
impl CouponsMutation {
    /// ADMIN: creates a coupon template (enabled). Every bad field is reported at once
    /// (`VALIDATION`, `extensions.fields`): a rate above 1, a negative or zero amount, a
    /// cap below zero, validity dates in the wrong order or mixed with `validDays`, an
    /// unknown scope ID, and so on. Audited.
    async fn create_coupon_template(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The template's terms.")] input: CreateCouponTemplateInput,
    ) -> Result<CouponTemplate> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let scope_kind = match input.scope {
            CouponScope::Categories => Kind::Category,
            CouponScope::Brands => Kind::Brand,
            CouponScope::All | CouponScope::Products => Kind::Product,
        };
        let scope_ids = input
            .scope_ids
            .unwrap_or_default()
            .iter()
            .map(|id| ids::decode_as(id, scope_kind, "input.scopeIds"))
            .collect();
        let new = svc::NewTemplate {
            name: input.name,
            kind: input.kind.into(),
            amount_off: input.amount_off.map(|d| d.decimal("input.amountOff")),
            rate_off: input.rate_off.map(|d| d.decimal("input.rateOff")),
            max_off: input.max_off.map(|d| d.decimal("input.maxOff")),
            min_spend: input.min_spend.map(|d| d.decimal("input.minSpend")),
            scope: input.scope.into(),
            scope_ids,
            valid_from: input.valid_from,
            valid_until: input.valid_until,
            valid_days: input.valid_days,
            total_quantity: input.total_quantity,
            per_member_limit: input.per_member_limit,
            distribution: input.distribution.into(),
        };
        let t = svc::create_template(&st.db, &actor(ctx, admin), new, st.clock.now()).await?;
        Ok(CouponTemplate(t))
    }

    /// ADMIN: enables or disables a template (audited). A disabled template is neither
    /// claimed nor granted, and its coupons are `COUPON_DISABLED` at checkout; orders
    /// already placed keep theirs.
    async fn set_coupon_template_enabled(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A `CouponTemplate` ID.")] id: ID,
        #[graphql(desc = "true to enable, false to disable.")] enabled: bool,
    ) -> Result<CouponTemplate> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&id, Kind::CouponTemplate, "id")?;
        let t = svc::set_enabled(&st.db, &actor(ctx, admin), id, enabled, st.clock.now()).await?;
        Ok(CouponTemplate(t))
    }

    /// Claims one coupon of a CLAIM template for the viewer. Never more coupons than the
    /// total (`COUPONS_EXHAUSTED`), never more per member than the limit
    /// (`COUPON_LIMIT_REACHED`), however many claims run at once. A disabled template is
    /// `COUPON_DISABLED`, one past its validity `COUPON_EXPIRED`; an unknown template or one
    /// that is not claimed (GRANT, ON_REGISTER) is `NOT_FOUND`.
    async fn claim_coupon(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A `CouponTemplate` ID from `claimableCoupons`.")] template_id: ID,
    ) -> Result<Coupon> {
        let me = viewer(ctx)?.member()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&template_id, Kind::CouponTemplate, "templateId")?;
        let now = st.clock.now();
        let row = svc::claim(&st.db, &st.events, me.id, id, now).await?;
        let template = svc::get_template(&st.db, row.template_id).await.ok();
        Ok(Coupon { row, template, now })
    }
}
