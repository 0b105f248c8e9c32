//! Push-hand levels and privileges in GraphQL: the admins' levels and privilege rules
//! (`createLevel`, `updateLevel`, `levels`, `createPrivilegeRule`, `privilegeRules`,
//! `grantPrivilege`, `revokePrivilege`, `runLevelEvaluation`, `prizesToShip`, `shipPrize`),
//! and what a member sees (`me.level`, `me.privileges`, `me.prizes`, `claimPrize`,
//! `MemberProfile.badges`). The rules live in [`crate::service::levels`] and
//! [`crate::service::privileges`].

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::privilege_grant as grant;
use entity::{level, privilege_rule as rule};
use uuid::Uuid;

use crate::graphql::context::{actor, state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{ConnectionOf, PageArgs};
use crate::graphql::scalars::{Dec, DecArg};
use crate::service::levels as svc;
use crate::service::privileges;
use crate::state::AppState;

/// What the level evaluation reads of the configuration.
pub fn policy(st: &AppState) -> svc::Policy {
    svc::Policy {
        commission_levels: st.config.policy.commission_levels,
        return_window: chrono::Duration::days(i64::from(st.config.policy.return_window_days)),
    }
}

/// What a privilege gives.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entity::privilege_rule::Kind")]
pub enum PrivilegeKind {
    /// An identity badge (专属身份) shown on the member's public profile
    /// (`MemberProfile.badges`); its text is the rule's name.
    Badge,
    /// One coupon of each of the rule's GRANT coupon templates, granted at once.
    CouponPack,
    /// A physical prize (实物奖品) the member claims to a delivery address within
    /// `prizeClaimDays`; admins ship it.
    Prize,
}

/// Whom a privilege rule goes to.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entity::privilege_rule::Audience")]
pub enum PrivilegeAudience {
    /// The members holding the rule's level (granted by the level evaluation).
    Level,
    /// Every partner (granted by the level evaluation).
    Partners,
    /// Only whom an admin names (`grantPrivilege`).
    Manual,
}

/// How often a member gets a privilege.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entity::privilege_rule::Period")]
pub enum PrivilegePeriod {
    /// A single time.
    Once,
    /// Once per calendar month (UTC).
    Monthly,
}

/// Who granted a privilege.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entity::privilege_grant::Source")]
pub enum PrivilegeSource {
    /// The member's level.
    Level,
    /// The member's partner status.
    Partner,
    /// An admin.
    Admin,
}

/// Where a prize stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::service::privileges::PrizeState")]
pub enum PrizeStatus {
    /// Waiting for the member's `claimPrize` until `expiresAt`.
    Unclaimed,
    /// Claimed to an address; waiting to ship.
    Claimed,
    /// On its way (`carrier`, `trackingNumber`).
    Shipped,
    /// Not claimed in time.
    Expired,
    /// Revoked by an admin before it shipped.
    Revoked,
}

/// A push-hand level (推手等级).
pub struct Level(pub level::Model);

/// A push-hand level. It is reached on settled, net sales — the member's own purchases and
/// its team's within the commission levels, over a rolling period, refunds taken off —
/// never on headcount alone. A level grants privileges, never rates: it changes no rebate,
/// so no line's payout ever passes the 30 % cap.
#[Object]
impl Level {
    /// Opaque global ID.
    async fn id(&self) -> ID {
        ids::encode(Kind::Level, self.0.id)
    }
    /// Its name, as members see it.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Its place in the ladder: 1 is the first level; higher is higher.
    async fn rank(&self) -> i32 {
        self.0.rank
    }
    /// Settled, net sales needed over the last `periodDays` days, CNY.
    async fn min_sales(&self) -> Dec {
        self.0.min_sales.into()
    }
    /// The rolling period the sales are counted over, in days.
    async fn period_days(&self) -> i32 {
        self.0.period_days
    }
    /// Members of the counted team needed besides the sales (0: none). Never enough alone.
    async fn min_team_members(&self) -> i32 {
        self.0.min_team_members
    }
    /// How many days a member keeps the level after falling short of it.
    async fn grace_days(&self) -> i32 {
        self.0.grace_days
    }
    /// What the level offers, in words.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The privileges it grants (its enabled rules).
    async fn benefits(&self, ctx: &Context<'_>) -> Result<Vec<PrivilegeRule>> {
        benefits(ctx, self.0.id).await
    }
}

async fn benefits(ctx: &Context<'_>, level: Uuid) -> Result<Vec<PrivilegeRule>> {
    let loaders = ctx.data::<crate::graphql::loaders::Loaders>()?;
    Ok(loaders
        .load_one(crate::graphql::loaders::BenefitsOf(level))
        .await
        .map_err(|e| crate::graphql::context::to_graphql(&e))?
        .unwrap_or_default()
        .into_iter()
        .map(PrivilegeRule)
        .collect())
}

/// A privilege rule (特权规则).
pub struct PrivilegeRule(pub rule::Model);

/// What a privilege gives, to whom and how often.
#[Object]
impl PrivilegeRule {
    /// Opaque global ID (for `grantPrivilege`).
    async fn id(&self) -> ID {
        ids::encode(Kind::PrivilegeRule, self.0.id)
    }
    /// The badge's text, or the pack's or prize's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// BADGE, COUPON_PACK or PRIZE.
    async fn kind(&self) -> PrivilegeKind {
        self.0.kind.into()
    }
    /// Whom it goes to: a level's members, every partner, or whom an admin names.
    async fn audience(&self) -> PrivilegeAudience {
        self.0.audience.into()
    }
    /// The level of a LEVEL rule.
    async fn level_id(&self) -> Option<ID> {
        self.0.level_id.map(|id| ids::encode(Kind::Level, id))
    }
    /// How often a member gets it: once, or once a month.
    async fn period(&self) -> PrivilegePeriod {
        self.0.period.into()
    }
    /// COUPON_PACK: the templates it gives one coupon of each.
    async fn coupon_template_ids(&self) -> Vec<ID> {
        serde_json::from_str::<Vec<Uuid>>(&self.0.coupon_template_ids)
            .unwrap_or_default()
            .into_iter()
            .map(|id| ids::encode(Kind::CouponTemplate, id))
            .collect()
    }
    /// PRIZE: days the member has to claim it.
    async fn prize_claim_days(&self) -> Option<i32> {
        self.0.prize_claim_days
    }
    /// Whether it is granted (a disabled rule grants nothing new).
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// When an admin created it.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The next level up and what is missing for it.
pub struct NextLevel(pub svc::Next);

/// The next level up, with the member's progress towards it.
#[Object]
impl NextLevel {
    /// The level.
    async fn level(&self) -> Level {
        Level(self.0.level.clone())
    }
    /// Its name.
    async fn name(&self) -> &str {
        &self.0.level.name
    }
    /// The member's settled, net sales over its period, CNY.
    async fn sales(&self) -> Dec {
        self.0.sales.into()
    }
    /// Sales over the level's minimum, a fraction from "0" to "1" (rounded down).
    async fn progress(&self) -> Dec {
        Dec(self.0.progress)
    }
    /// Sales still missing, CNY ("0.00" when the sales are there).
    async fn missing_sales(&self) -> Dec {
        self.0.missing_sales.into()
    }
    /// Members of the counted team.
    async fn team_members(&self) -> i64 {
        self.0.team
    }
    /// Team members still missing (0 when there are enough; never enough alone).
    async fn missing_team_members(&self) -> i64 {
        self.0.missing_team_members
    }
    /// What is missing, in words (empty when nothing is: the next evaluation — daily, or
    /// after a settlement — moves the member up).
    async fn missing(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.0.missing_sales.fen() > 0 {
            out.push(format!(
                "¥{} more settled sales in the last {} days",
                self.0.missing_sales, self.0.level.period_days
            ));
        }
        if self.0.missing_team_members > 0 {
            out.push(format!("{} more team members", self.0.missing_team_members));
        }
        out
    }
}

/// Where a member stands in the levels.
pub struct MemberLevel(pub svc::Standing);

/// A member's level (推手等级): the level held (none below the first), since when, what it
/// grants, and the next one with what is missing. Re-evaluated daily and after each
/// settlement; a level is lost only after its grace period.
#[Object]
impl MemberLevel {
    /// The level held; null below the first level.
    async fn level(&self) -> Option<Level> {
        self.0.level.clone().map(Level)
    }
    /// Its name; null below the first level.
    async fn name(&self) -> Option<&str> {
        self.0.level.as_ref().map(|l| l.name.as_str())
    }
    /// Since when the member holds it.
    async fn since(&self) -> Option<DateTime<Utc>> {
        self.0.since
    }
    /// While the member falls short of its level: when the grace period ends (the level
    /// goes then unless the member qualifies again); null otherwise.
    async fn grace_ends_at(&self) -> Option<DateTime<Utc>> {
        self.0.grace_ends_at
    }
    /// Settled, net sales over the held level's period (the first level's below it), CNY.
    async fn sales(&self) -> Dec {
        self.0.sales.into()
    }
    /// The privileges the level grants.
    async fn benefits(&self, ctx: &Context<'_>) -> Result<Vec<PrivilegeRule>> {
        match &self.0.level {
            Some(l) => benefits(ctx, l.id).await,
            None => Ok(Vec::new()),
        }
    }
    /// The next level up; null at the top.
    async fn next(&self) -> Option<NextLevel> {
        self.0.next.clone().map(NextLevel)
    }
}

/// A badge on a public profile.
#[derive(SimpleObject)]
pub struct Badge {
    /// Its text.
    pub name: String,
    /// What it came with: a level, partner status, or an admin.
    pub source: PrivilegeSource,
    /// Since when the member wears it.
    pub since: DateTime<Utc>,
}

impl From<privileges::Badge> for Badge {
    fn from(b: privileges::Badge) -> Self {
        Badge {
            name: b.name,
            source: b.source.into(),
            since: b.since,
        }
    }
}

/// The badges of `member` (through the loader: a team page costs one batch).
pub async fn badges_of(ctx: &Context<'_>, member: Uuid) -> Result<Vec<Badge>> {
    let loaders = ctx.data::<crate::graphql::loaders::Loaders>()?;
    Ok(loaders
        .load_one(crate::graphql::loaders::BadgesOf(member))
        .await
        .map_err(|e| crate::graphql::context::to_graphql(&e))?
        .unwrap_or_default()
        .into_iter()
        .map(Badge::from)
        .collect())
}

/// A privilege granted to a member, with its rule.
pub struct Privilege {
    pub row: grant::Model,
    pub rule: Option<rule::Model>,
    pub now: DateTime<Utc>,
}

/// A privilege granted (特权): one row of the grants ledger — one per rule, member and
/// period.
#[Object]
impl Privilege {
    /// Opaque global ID (a prize's is its `entitlementId`).
    async fn id(&self) -> ID {
        ids::encode(Kind::Privilege, self.row.id)
    }
    /// BADGE, COUPON_PACK or PRIZE.
    async fn kind(&self) -> PrivilegeKind {
        self.row.kind.into()
    }
    /// The badge's text, or the pack's or prize's name.
    async fn name(&self) -> &str {
        self.rule.as_ref().map_or("", |r| r.name.as_str())
    }
    /// The rule it was granted by.
    async fn rule(&self) -> Option<PrivilegeRule> {
        self.rule.clone().map(PrivilegeRule)
    }
    /// Who granted it: the member's level, its partner status, or an admin.
    async fn source(&self) -> PrivilegeSource {
        self.row.source.into()
    }
    /// The level it came with (source LEVEL).
    async fn level_id(&self) -> Option<ID> {
        self.row.level_id.map(|id| ids::encode(Kind::Level, id))
    }
    /// `ONCE`, or the month (`YYYY-MM`, UTC) of a monthly privilege.
    async fn period(&self) -> &str {
        &self.row.period
    }
    /// When it was granted.
    async fn granted_at(&self) -> DateTime<Utc> {
        self.row.granted_at
    }
    /// When it was revoked (by an admin, or with the level or status a badge came with).
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.row.revoked_at
    }
    /// Not revoked.
    async fn active(&self) -> bool {
        self.row.revoked_at.is_none()
    }
    /// COUPON_PACK: the coupons it gave (they stay the member's if it is revoked).
    async fn coupon_ids(&self) -> Vec<ID> {
        serde_json::from_str::<Vec<Uuid>>(&self.row.coupon_ids)
            .unwrap_or_default()
            .into_iter()
            .map(|id| ids::encode(Kind::Coupon, id))
            .collect()
    }
    /// PRIZE: the prize.
    async fn prize(&self) -> Option<Prize> {
        (self.row.kind == rule::Kind::Prize).then(|| Prize {
            row: self.row.clone(),
            rule: self.rule.clone(),
            now: self.now,
        })
    }
}

/// A prize entitlement.
pub struct Prize {
    pub row: grant::Model,
    pub rule: Option<rule::Model>,
    pub now: DateTime<Utc>,
}

/// A physical prize (实物奖品) a privilege gave: claimed to a delivery address before it
/// expires, then shipped by an admin.
#[Object]
impl Prize {
    /// Its entitlement ID (the privilege's ID): `claimPrize(entitlementId:)`,
    /// `shipPrize(id:)`.
    async fn id(&self) -> ID {
        ids::encode(Kind::Privilege, self.row.id)
    }
    /// The prize's name.
    async fn name(&self) -> &str {
        self.rule.as_ref().map_or("", |r| r.name.as_str())
    }
    /// The member it belongs to (a `MemberProfile` ID).
    async fn member_id(&self) -> ID {
        ids::encode(Kind::MemberProfile, self.row.member_id)
    }
    /// UNCLAIMED, CLAIMED, SHIPPED, EXPIRED or REVOKED.
    async fn status(&self) -> PrizeStatus {
        privileges::prize_state(&self.row, self.now)
            .unwrap_or(privileges::PrizeState::Revoked)
            .into()
    }
    /// When it was granted.
    async fn granted_at(&self) -> DateTime<Utc> {
        self.row.granted_at
    }
    /// Claimable until (exclusive).
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.row.prize_expires_at
    }
    /// When the member claimed it.
    async fn claimed_at(&self) -> Option<DateTime<Utc>> {
        self.row.claimed_at
    }
    /// The delivery address as it was when claimed.
    async fn address(&self) -> Option<PrizeAddress> {
        self.row
            .ship_recipient_name
            .is_some()
            .then(|| PrizeAddress(self.row.clone()))
    }
    /// When an admin shipped it.
    async fn shipped_at(&self) -> Option<DateTime<Utc>> {
        self.row.shipped_at
    }
    /// Who carries it, once shipped.
    async fn carrier(&self) -> Option<super::fulfilment::Carrier> {
        self.row.carrier.map(Into::into)
    }
    /// The carrier's tracking number, once shipped (upper case).
    async fn tracking_number(&self) -> Option<&str> {
        self.row.tracking_number.as_deref()
    }
}

/// The address a prize was claimed to.
pub struct PrizeAddress(pub grant::Model);

/// A delivery address copied onto a prize when it was claimed: later edits of the member's
/// address do not move it.
#[Object]
impl PrizeAddress {
    /// The person who receives the prize.
    async fn recipient_name(&self) -> &str {
        self.0.ship_recipient_name.as_deref().unwrap_or_default()
    }
    /// A mainland mobile number in E.164.
    async fn phone(&self) -> &str {
        self.0.ship_phone.as_deref().unwrap_or_default()
    }
    /// Province, city and district as people write them (北京市朝阳区).
    async fn region_text(&self) -> String {
        crate::service::regions::text_of(
            self.0.ship_province_name.as_deref().unwrap_or_default(),
            self.0.ship_city_name.as_deref().unwrap_or_default(),
            self.0.ship_district_name.as_deref().unwrap_or_default(),
        )
    }
    /// The district's code (6 digits).
    async fn district_code(&self) -> &str {
        self.0.ship_district_code.as_deref().unwrap_or_default()
    }
    /// Street, building, unit and room.
    async fn detail(&self) -> &str {
        self.0.ship_detail.as_deref().unwrap_or_default()
    }
    /// Six digits, if given.
    async fn postal_code(&self) -> Option<&str> {
        self.0.ship_postal_code.as_deref()
    }
}

pub type PrivilegeConnection = ConnectionOf<privileges::GrantCursor, Privilege>;
pub type PrizeConnection = ConnectionOf<privileges::GrantCursor, Prize>;

/// `member`'s standing (backs `Member.level`).
pub async fn level_of(ctx: &Context<'_>, m: &entity::member::Model) -> Result<Option<MemberLevel>> {
    let st = state(ctx)?;
    Ok(svc::standing(&st.db, &policy(st), m, st.clock.now())
        .await?
        .map(MemberLevel))
}

/// `member`'s privileges, newest first (backs `Member.privileges`).
pub async fn privileges_of(
    ctx: &Context<'_>,
    member: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<PrivilegeConnection> {
    let st = state(ctx)?;
    let args = PageArgs::parse(first, after)?;
    let now = st.clock.now();
    let page = privileges::list(&st.db, member, false, args.after(), args.first).await?;
    let rules = privileges::rules_by_id(&st.db, page.items.iter().map(|g| g.rule_id)).await?;
    Ok(args.connection(
        page,
        |g| privileges::GrantCursor::of(g.granted_at, g.id),
        |row| Privilege {
            rule: rules.get(&row.rule_id).cloned(),
            row,
            now,
        },
    ))
}

/// `member`'s prizes, newest first (backs `Member.prizes`).
pub async fn prizes_of(
    ctx: &Context<'_>,
    member: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<PrizeConnection> {
    let st = state(ctx)?;
    let args = PageArgs::parse(first, after)?;
    let now = st.clock.now();
    let page = privileges::list(&st.db, member, true, args.after(), args.first).await?;
    let rules = privileges::rules_by_id(&st.db, page.items.iter().map(|g| g.rule_id)).await?;
    Ok(args.connection(
        page,
        |g| privileges::GrantCursor::of(g.granted_at, g.id),
        |row| Prize {
            rule: rules.get(&row.rule_id).cloned(),
            row,
            now,
        },
    ))
}

/// A level's terms.
#[derive(InputObject)]
pub struct LevelInput {
    /// 1–40 characters, unique.
    pub name: String,
    /// 1–100, unique: 1 is the first level, higher is higher.
    pub rank: i32,
    /// Settled, net sales needed over `periodDays`, CNY, above zero (a level is never
    /// reached on headcount alone).
    pub min_sales: DecArg,
    /// The rolling period, 1–366 days.
    pub period_days: i32,
    /// Days a member keeps the level after falling short of it, 0–366.
    pub grace_days: i32,
    /// Members of the counted team needed besides the sales, 0–1,000,000 (default 0).
    pub min_team_members: Option<i32>,
    /// What the level offers, in words (at most 500 characters).
    pub description: Option<String>,
}

impl LevelInput {
    fn into_service(self) -> svc::LevelInput {
        svc::LevelInput {
            min_sales: self.min_sales.decimal("input.minSales"),
            name: self.name,
            rank: self.rank,
            period_days: self.period_days,
            grace_days: self.grace_days,
            min_team_members: self.min_team_members,
            description: self.description,
        }
    }
}

/// A privilege rule's terms.
#[derive(InputObject)]
pub struct PrivilegeRuleInput {
    /// 1–60 characters: the badge's text, or the pack's or prize's name.
    pub name: String,
    /// BADGE, COUPON_PACK or PRIZE.
    pub kind: PrivilegeKind,
    /// LEVEL (give `levelId`), PARTNERS or MANUAL.
    pub audience: PrivilegeAudience,
    /// LEVEL: the level (required); no other audience names one.
    pub level_id: Option<ID>,
    /// ONCE or MONTHLY (UTC months).
    pub period: PrivilegePeriod,
    /// COUPON_PACK: 1–20 GRANT coupon templates (none for other kinds).
    pub coupon_template_ids: Option<Vec<ID>>,
    /// PRIZE: days the member has to claim it, 1–366 (required; none for other kinds).
    pub prize_claim_days: Option<i32>,
}

#[derive(Default)]
pub struct LevelsQuery;

#[Object]
impl LevelsQuery {
    /// Signed-in members: the push-hand levels, lowest first, each with its conditions and
    /// what it grants.
    async fn levels(&self, ctx: &Context<'_>) -> Result<Vec<Level>> {
        viewer(ctx)?.member()?;
        let st = state(ctx)?;
        Ok(svc::list(&st.db).await?.into_iter().map(Level).collect())
    }

    /// ADMIN: every privilege rule, newest first (at most 200).
    async fn privilege_rules(&self, ctx: &Context<'_>) -> Result<Vec<PrivilegeRule>> {
        viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        Ok(privileges::rules(&st.db)
            .await?
            .into_iter()
            .map(PrivilegeRule)
            .collect())
    }

    /// ADMIN: claimed prizes waiting to ship, oldest claim first (at most 200).
    async fn prizes_to_ship(&self, ctx: &Context<'_>) -> Result<Vec<Prize>> {
        viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let now = st.clock.now();
        let rows = privileges::prizes_to_ship(&st.db).await?;
        let rules = privileges::rules_by_id(&st.db, rows.iter().map(|g| g.rule_id)).await?;
        Ok(rows
            .into_iter()
            .map(|row| Prize {
                rule: rules.get(&row.rule_id).cloned(),
                row,
                now,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct LevelsMutation;

#[Object]
impl LevelsMutation {
    /// ADMIN: creates a level (audited). Every bad field at once (`VALIDATION`,
    /// `extensions.fields`): a name or rank taken, `minSales` zero or negative (levels are
    /// reached on sales, never on headcount alone), days out of range.
    async fn create_level(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The level's terms.")] input: LevelInput,
    ) -> Result<Level> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let l = svc::create(
            &st.db,
            &actor(ctx, admin),
            input.into_service(),
            st.clock.now(),
        )
        .await?;
        Ok(Level(l))
    }

    /// ADMIN: replaces a level's terms (audited with the previous ones); members move at
    /// their next evaluation.
    async fn update_level(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A `Level` ID.")] id: ID,
        #[graphql(desc = "The level's new terms.")] input: LevelInput,
    ) -> Result<Level> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&id, Kind::Level, "id")?;
        let l = svc::update(
            &st.db,
            &actor(ctx, admin),
            id,
            input.into_service(),
            st.clock.now(),
        )
        .await?;
        Ok(Level(l))
    }

    /// ADMIN: evaluates every push-hand's and partner's level now and grants the privileges
    /// due (the server also does it daily and after each settlement). Idempotent: a rerun
    /// grants nothing twice. Audited; returns how many members were evaluated.
    async fn run_level_evaluation(&self, ctx: &Context<'_>) -> Result<i32> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let n = svc::evaluate_all_audited(
            &st.db,
            &st.events,
            &policy(st),
            &actor(ctx, admin),
            st.clock.now(),
        )
        .await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// ADMIN: creates a privilege rule (enabled; audited). Every bad field at once
    /// (`VALIDATION`): a LEVEL rule without its level, a pack without templates or with one
    /// that is not GRANT (`input.couponTemplateIds[i]`), a prize without its claim window.
    async fn create_privilege_rule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The rule's terms.")] input: PrivilegeRuleInput,
    ) -> Result<PrivilegeRule> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let new = privileges::RuleInput {
            name: input.name,
            kind: input.kind.into(),
            audience: input.audience.into(),
            level_id: input
                .level_id
                .map(|id| ids::decode_as(&id, Kind::Level, "input.levelId")),
            period: input.period.into(),
            coupon_template_ids: input
                .coupon_template_ids
                .unwrap_or_default()
                .iter()
                .map(|id| ids::decode_as(id, Kind::CouponTemplate, "input.couponTemplateIds"))
                .collect(),
            prize_claim_days: input.prize_claim_days,
        };
        let r = privileges::create_rule(&st.db, &actor(ctx, admin), new, st.clock.now()).await?;
        Ok(PrivilegeRule(r))
    }

    /// ADMIN: grants a rule to a member for the current period (source ADMIN; audited).
    /// Idempotent: granted for the period already, it answers that grant (given back if it
    /// was revoked). `PRIVILEGE_RULE_DISABLED`; `NOT_FOUND` for an unknown rule or member.
    async fn grant_privilege(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A `PrivilegeRule` ID.")] rule_id: ID,
        #[graphql(desc = "A `Member` or `MemberProfile` ID.")] member_id: ID,
    ) -> Result<Privilege> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let rule_id = ids::decode_as(&rule_id, Kind::PrivilegeRule, "ruleId")?;
        let member_id = ids::decode_member(&member_id, "memberId")?;
        let now = st.clock.now();
        let row = privileges::grant_by_admin(
            &st.db,
            &st.events,
            &actor(ctx, admin),
            rule_id,
            member_id,
            now,
        )
        .await?;
        let rule = privileges::rules_by_id(&st.db, [row.rule_id])
            .await?
            .remove(&row.rule_id);
        Ok(Privilege { row, rule, now })
    }

    /// ADMIN: revokes a granted privilege (audited): `PRIVILEGE_REVOKED` when it is
    /// already, `PRIZE_SHIPPED` for a prize on its way. A pack's coupons stay the member's.
    async fn revoke_privilege(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A `Privilege` ID.")] id: ID,
    ) -> Result<Privilege> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&id, Kind::Privilege, "id")?;
        let now = st.clock.now();
        let row = privileges::revoke(&st.db, &st.events, &actor(ctx, admin), id, now).await?;
        let rule = privileges::rules_by_id(&st.db, [row.rule_id])
            .await?
            .remove(&row.rule_id);
        Ok(Privilege { row, rule, now })
    }

    /// Claims one of the viewer's prizes to one of its delivery addresses, copied onto the
    /// prize. `PRIZE_EXPIRED` past its claim window, `PRIZE_ALREADY_CLAIMED`,
    /// `PRIVILEGE_REVOKED`; `NOT_FOUND` for another member's prize or address.
    async fn claim_prize(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The prize's ID (`me.prizes`).")] entitlement_id: ID,
        #[graphql(desc = "An `Address` ID of the viewer's.")] address_id: ID,
    ) -> Result<Prize> {
        let me = viewer(ctx)?.member()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&entitlement_id, Kind::Privilege, "entitlementId");
        let address = ids::decode_as(&address_id, Kind::Address, "addressId");
        let (id, address) = match (id, address) {
            (Ok(i), Ok(a)) => (i, a),
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e.into()),
            (Err(a), Err(b)) => {
                let mut errors = crate::error::FieldErrors::default();
                errors.check::<()>(Err(a));
                errors.check::<()>(Err(b));
                return Err(errors
                    .finish()
                    .err()
                    .unwrap_or(crate::error::Error::Unavailable)
                    .into());
            }
        };
        let now = st.clock.now();
        let row = privileges::claim_prize(&st.db, &st.events, me.id, id, address, now).await?;
        let rule = privileges::rules_by_id(&st.db, [row.rule_id])
            .await?
            .remove(&row.rule_id);
        Ok(Prize { row, rule, now })
    }

    /// ADMIN: ships a claimed prize with its carrier and tracking number (audited).
    /// `VALIDATION` on `trackingNumber`; `PRIZE_NOT_CLAIMED` (unclaimed, expired or
    /// revoked), `PRIZE_ALREADY_SHIPPED`.
    async fn ship_prize(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The prize's ID.")] id: ID,
        #[graphql(desc = "Who carries it.")] carrier: super::fulfilment::Carrier,
        #[graphql(desc = "The carrier's tracking number, 6–32 letters, digits or '-'.")]
        tracking_number: String,
    ) -> Result<Prize> {
        let admin = viewer(ctx)?.admin()?;
        let st = state(ctx)?;
        let id = ids::decode_as(&id, Kind::Privilege, "id")?;
        let now = st.clock.now();
        let row = privileges::ship_prize(
            &st.db,
            &st.events,
            &actor(ctx, admin),
            id,
            carrier.into(),
            &tracking_number,
            now,
        )
        .await?;
        let rule = privileges::rules_by_id(&st.db, [row.rule_id])
            .await?
            .remove(&row.rule_id);
        Ok(Prize { row, rule, now })
    }
}
