//! Privileges (特权): what a level, partner status or an admin gives a member besides cash
//! rewards — an identity badge, a pack of coupons, a physical prize.
//!
//! - A **rule** says what (`BADGE`: its name is the badge's text; `COUPON_PACK`: one coupon
//!   of each of its `GRANT` templates; `PRIZE`: a prize to claim within `prizeClaimDays`),
//!   to whom (`LEVEL`: the members holding its level; `PARTNERS`: every partner; `MANUAL`:
//!   whom an admin names) and how often (`ONCE`, or `MONTHLY`: once per UTC month).
//! - A **grant** is a row of the grants ledger, unique per (rule, member, period) in the
//!   database: the grant's insert is the first write of its transaction and does nothing on
//!   a conflict, so a rerun — or the same run on two instances at once — grants nothing
//!   twice; only the one transaction that inserted the row issues the pack's coupons
//!   ([`super::coupons::grant_pack`], through the claims' exact path) or opens the prize.
//!   Every grant and revocation is in the audit log (`PRIVILEGE_GRANTED`,
//!   `PRIVILEGE_REVOKED`; by the server, without an actor, when the evaluation does it).
//! - **Revocation**: a badge goes when the level or partner status it came with goes (and
//!   comes back, the same row, if the member regains it within the period); an admin may
//!   revoke any grant but a shipped prize (`revokePrivilege`). Coupons already issued stay
//!   the member's.
//! - **Prizes**: `claimPrize` copies the delivery address onto the grant (later edits of the
//!   address do not move it) while the prize is unclaimed, not revoked and not expired;
//!   admins ship it with a carrier and tracking number. An unclaimed prize past its claim
//!   window is `EXPIRED` (read from its expiry: nothing needs to run).

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use entity::privilege_grant::{self as grant, PrizeStatus, Source};
use entity::privilege_rule::{self as rule, Audience, Kind, Period};
use entity::{coupon_template, level, member};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use crate::error::{Error, FieldErrors, Result};
use crate::events::{Event, Events, Kind as EventKind};

/// The longest rule name, in characters.
pub const MAX_NAME_CHARS: usize = 60;
/// The most coupon templates one pack holds.
pub const MAX_PACK_TEMPLATES: usize = 20;
/// The longest claim window of a prize, in days.
pub const MAX_CLAIM_DAYS: i32 = 366;

/// A rule as an admin gives it (ids decoded by the API; a malformed one: its error).
pub struct RuleInput {
    pub name: String,
    pub kind: Kind,
    pub audience: Audience,
    pub level_id: Option<Result<Uuid>>,
    pub period: Period,
    pub coupon_template_ids: Vec<Result<Uuid>>,
    pub prize_claim_days: Option<i32>,
}

/// Creates a rule (enabled; audited). Every bad field at once: `VALIDATION` on
/// `input.<field>`, `input.couponTemplateIds[i]` for an unknown or non-`GRANT` template.
pub async fn create_rule(
    db: &DatabaseConnection,
    actor: &Actor,
    input: RuleInput,
    now: DateTime<Utc>,
) -> Result<rule::Model> {
    let mut errors = FieldErrors::default();
    let name = errors.check(super::text::name("input.name", &input.name, MAX_NAME_CHARS));
    let level_id = match (input.audience, input.level_id) {
        (Audience::Level, None) => {
            errors.push("input.levelId", "a LEVEL rule names its level");
            None
        }
        (Audience::Level, Some(id)) => match errors.check(id) {
            Some(id) => {
                let exists = level::Entity::find_by_id(id).one(db).await?.is_some();
                if !exists {
                    errors.push("input.levelId", "no such level");
                }
                exists.then_some(id)
            }
            None => None,
        },
        (_, Some(_)) => {
            errors.push("input.levelId", "only a LEVEL rule names a level");
            None
        }
        (_, None) => None,
    };
    let mut templates = Vec::new();
    let n = input.coupon_template_ids.len();
    for (i, id) in input.coupon_template_ids.into_iter().enumerate() {
        match id {
            Ok(id) => templates.push((i, id)),
            Err(_) => errors.push(
                format!("input.couponTemplateIds[{i}]"),
                "not a valid CouponTemplate ID",
            ),
        }
    }
    match input.kind {
        Kind::CouponPack if n == 0 => errors.push(
            "input.couponTemplateIds",
            "a COUPON_PACK names its templates",
        ),
        Kind::CouponPack if n > MAX_PACK_TEMPLATES => errors.push(
            "input.couponTemplateIds",
            format!("at most {MAX_PACK_TEMPLATES} templates"),
        ),
        Kind::CouponPack => {
            let found =
                super::coupons::templates_by_id(db, templates.iter().map(|(_, id)| *id)).await?;
            for (i, id) in &templates {
                match found.get(id) {
                    None => errors.push(
                        format!("input.couponTemplateIds[{i}]"),
                        "no such coupon template",
                    ),
                    Some(t) if t.distribution != coupon_template::Distribution::Grant => errors
                        .push(
                            format!("input.couponTemplateIds[{i}]"),
                            "a pack gives GRANT templates only",
                        ),
                    Some(_) => {}
                }
            }
        }
        _ if n > 0 => errors.push(
            "input.couponTemplateIds",
            "only a COUPON_PACK names coupon templates",
        ),
        _ => {}
    }
    match (input.kind, input.prize_claim_days) {
        (Kind::Prize, None) => errors.push(
            "input.prizeClaimDays",
            "a PRIZE says how many days the member has to claim it",
        ),
        (Kind::Prize, Some(d)) if !(1..=MAX_CLAIM_DAYS).contains(&d) => errors.push(
            "input.prizeClaimDays",
            format!("must be 1 to {MAX_CLAIM_DAYS} days"),
        ),
        (Kind::Prize, Some(_)) | (_, None) => {}
        (_, Some(_)) => errors.push("input.prizeClaimDays", "only a PRIZE has a claim window"),
    }
    errors.finish()?;
    let mut ids: Vec<Uuid> = templates.into_iter().map(|(_, id)| id).collect();
    ids.dedup();
    let r = rule::Model {
        id: Uuid::now_v7(),
        name: name.unwrap_or_default(),
        kind: input.kind,
        audience: input.audience,
        level_id,
        period: input.period,
        coupon_template_ids: serde_json::to_string(&ids).map_err(Error::internal)?,
        prize_claim_days: input.prize_claim_days,
        enabled: true,
        created_by: Some(actor.member),
        created_at: now,
    };
    let txn = crate::db::begin_write(db).await?;
    rule::Entity::insert(rule::ActiveModel::from(r.clone()))
        .exec_without_returning(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        Action::PrivilegeRuleCreated,
        Some((TargetType::PrivilegeRule, r.id)),
        serde_json::json!({
            "name": r.name,
            "kind": kind_name(r.kind),
            "audience": audience_name(r.audience),
            "levelId": r.level_id,
            "period": period_name(r.period),
            "couponTemplateIds": ids,
            "prizeClaimDays": r.prize_claim_days,
        }),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(r)
}

/// Every rule, newest first (admins; at most 200).
pub async fn rules(db: &impl ConnectionTrait) -> Result<Vec<rule::Model>> {
    Ok(rule::Entity::find()
        .order_by_desc(rule::Column::CreatedAt)
        .order_by_desc(rule::Column::Id)
        .limit(200)
        .all(db)
        .await?)
}

/// The enabled rules of each of `levels` (a level's benefits), in creation order.
pub async fn rules_of_levels(
    db: &impl ConnectionTrait,
    levels: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, Vec<rule::Model>>> {
    let ids: Vec<Uuid> = levels.into_iter().collect();
    let mut out: HashMap<Uuid, Vec<rule::Model>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for r in rule::Entity::find()
        .filter(rule::Column::LevelId.is_in(ids))
        .filter(rule::Column::Enabled.eq(true))
        .order_by_asc(rule::Column::CreatedAt)
        .order_by_asc(rule::Column::Id)
        .all(db)
        .await?
    {
        if let Some(l) = r.level_id {
            out.entry(l).or_default().push(r);
        }
    }
    Ok(out)
}

/// The rules `ids`, by id.
pub async fn rules_by_id(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, rule::Model>> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(rule::Entity::find()
        .filter(rule::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect())
}

/// The period a grant of `p` at `now` belongs to: `ONCE`, or the UTC month `YYYY-MM`.
pub fn period_of(p: Period, now: DateTime<Utc>) -> String {
    match p {
        Period::Once => "ONCE".to_owned(),
        Period::Monthly => format!("{:04}-{:02}", now.year(), now.month()),
    }
}

/// What a grant did.
#[derive(Clone, Debug)]
pub enum Granted {
    /// A new grant (its pack's coupons issued, its prize opened).
    New(grant::Model),
    /// A revoked badge given back (the same row).
    Restored(grant::Model),
    /// Granted for this period already: nothing written.
    Already(grant::Model),
}

impl Granted {
    pub fn model(&self) -> &grant::Model {
        match self {
            Granted::New(g) | Granted::Restored(g) | Granted::Already(g) => g,
        }
    }
}

/// How many times a grant runs its transaction again when a coupon number was taken
/// meanwhile.
const MAX_TRIES: u32 = 4;

/// Grants `r` to `member` for the current period, `from` a source (with the level, for a level's),
/// by `actor` (`None`: the server). Idempotent and exact under any concurrency (see the
/// module's documentation).
pub async fn grant(
    db: &DatabaseConnection,
    events: &Events,
    r: &rule::Model,
    member: Uuid,
    from: (Source, Option<Uuid>),
    actor: Option<&Actor>,
    now: DateTime<Utc>,
) -> Result<Granted> {
    let mut tries = 0;
    loop {
        tries += 1;
        match grant_once(db, r, member, from, actor, now).await {
            Err(e) if e.code() == "TRY_AGAIN" && tries < MAX_TRIES => continue,
            Err(e) => return Err(e),
            Ok(g) => {
                if !matches!(g, Granted::Already(_)) {
                    events
                        .publish(vec![Event::new(member, EventKind::OwnChanged, member)])
                        .await;
                }
                return Ok(g);
            }
        }
    }
}

async fn grant_once(
    db: &DatabaseConnection,
    r: &rule::Model,
    member: Uuid,
    (source, level): (Source, Option<Uuid>),
    actor: Option<&Actor>,
    now: DateTime<Utc>,
) -> Result<Granted> {
    let period = period_of(r.period, now);
    let prize = r.kind == Kind::Prize;
    let mut g = grant::Model {
        id: Uuid::now_v7(),
        rule_id: r.id,
        member_id: member,
        period: period.clone(),
        kind: r.kind,
        source,
        level_id: level,
        granted_at: now,
        granted_by: actor.map(|a| a.member),
        revoked_at: None,
        revoked_by: None,
        coupon_ids: "[]".to_owned(),
        prize_status: prize.then_some(PrizeStatus::Unclaimed),
        prize_expires_at: prize
            .then(|| now + Duration::days(i64::from(r.prize_claim_days.unwrap_or(1)))),
        claimed_at: None,
        ship_recipient_name: None,
        ship_phone: None,
        ship_province_code: None,
        ship_province_name: None,
        ship_city_code: None,
        ship_city_name: None,
        ship_district_code: None,
        ship_district_name: None,
        ship_detail: None,
        ship_postal_code: None,
        shipped_at: None,
        carrier: None,
        tracking_number: None,
        shipped_by: None,
    };
    let txn = crate::db::begin_write(db).await?;
    let inserted = grant::Entity::insert(grant::ActiveModel::from(g.clone()))
        .on_conflict(
            OnConflict::columns([
                grant::Column::RuleId,
                grant::Column::MemberId,
                grant::Column::Period,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    if inserted == 0 {
        let existing = grant::Entity::find()
            .filter(grant::Column::RuleId.eq(r.id))
            .filter(grant::Column::MemberId.eq(member))
            .filter(grant::Column::Period.eq(period.as_str()))
            .one(&txn)
            .await?
            .ok_or_else(|| Error::rule("TRY_AGAIN", "the grant changed meanwhile"))?;
        // A badge the server took back comes back with its level; an admin's grant gives
        // back any grant revoked (a revoked prize with its claim window as it was).
        let restore = existing.revoked_at.is_some()
            && match actor {
                Some(_) => true,
                None => existing.revoked_by.is_none() && existing.kind == Kind::Badge,
            };
        if !restore {
            txn.commit().await?;
            return Ok(Granted::Already(existing));
        }
        let back = grant::Entity::update_many()
            .col_expr(
                grant::Column::RevokedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(grant::Column::RevokedBy, Expr::value(Option::<Uuid>::None))
            .col_expr(grant::Column::Source, Expr::value(source))
            .col_expr(grant::Column::LevelId, Expr::value(level))
            .filter(grant::Column::Id.eq(existing.id))
            .filter(grant::Column::RevokedAt.is_not_null())
            .exec(&txn)
            .await?;
        if back.rows_affected == 0 {
            txn.commit().await?;
            return Ok(Granted::Already(existing));
        }
        audit::record_by(
            &txn,
            actor,
            Action::PrivilegeGranted,
            Some((TargetType::Privilege, existing.id)),
            serde_json::json!({
                "ruleId": r.id, "memberId": member, "period": period,
                "source": source_name(source), "restored": true,
            }),
            now,
        )
        .await?;
        txn.commit().await?;
        return Ok(Granted::Restored(grant::Model {
            revoked_at: None,
            revoked_by: None,
            source,
            level_id: level,
            ..existing
        }));
    }
    let mut skipped = Vec::new();
    if r.kind == Kind::CouponPack {
        let templates: Vec<Uuid> = serde_json::from_str(&r.coupon_template_ids).unwrap_or_default();
        let (coupons, left) = super::coupons::grant_pack(&txn, &templates, member, now).await?;
        let ids: Vec<Uuid> = coupons.iter().map(|c| c.id).collect();
        g.coupon_ids = serde_json::to_string(&ids).map_err(Error::internal)?;
        grant::Entity::update_many()
            .col_expr(grant::Column::CouponIds, Expr::value(g.coupon_ids.clone()))
            .filter(grant::Column::Id.eq(g.id))
            .exec(&txn)
            .await?;
        skipped = left
            .into_iter()
            .map(|(id, code)| serde_json::json!({ "templateId": id, "reason": code }))
            .collect();
    }
    audit::record_by(
        &txn,
        actor,
        Action::PrivilegeGranted,
        Some((TargetType::Privilege, g.id)),
        serde_json::json!({
            "ruleId": r.id, "memberId": member, "period": period,
            "kind": kind_name(r.kind), "source": source_name(source), "levelId": level,
            "couponIds": serde_json::from_str::<serde_json::Value>(&g.coupon_ids)
                .unwrap_or_default(),
            "skippedTemplates": skipped,
        }),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(Granted::New(g))
}

/// What an evaluation owes `m`, who holds `level` now: every enabled rule of that level and,
/// for a partner, every enabled `PARTNERS` rule, granted for the current period; and the
/// badges of a level or partner status it no longer has, revoked. A frozen member is
/// granted nothing (its badges stay until it loses what they came with). Returns how many
/// grants it made (or gave back) and how many it revoked.
pub async fn grant_due(
    db: &DatabaseConnection,
    events: &Events,
    m: &member::Model,
    level: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(usize, usize)> {
    let partner = m.tier == member::Tier::Partner;
    let mut revoked = 0;
    // Badges whose ground is gone.
    let stale = grant::Entity::find()
        .filter(grant::Column::MemberId.eq(m.id))
        .filter(grant::Column::Kind.eq(Kind::Badge))
        .filter(grant::Column::RevokedAt.is_null())
        .filter(grant::Column::Source.ne(Source::Admin))
        .all(db)
        .await?
        .into_iter()
        .filter(|g| match g.source {
            Source::Level => g.level_id != level || level.is_none(),
            Source::Partner => !partner,
            Source::Admin => false,
        });
    for g in stale {
        if revoke_row(db, &g, None, "lost the level or status it came with", now).await? {
            revoked += 1;
            events
                .publish(vec![Event::new(m.id, EventKind::OwnChanged, m.id)])
                .await;
        }
    }
    if m.frozen_at.is_some() {
        return Ok((0, revoked));
    }
    let mut q = rule::Entity::find().filter(rule::Column::Enabled.eq(true));
    let mut any = sea_orm::Condition::any();
    if let Some(l) = level {
        any = any.add(rule::Column::LevelId.eq(l));
    }
    if partner {
        any = any.add(rule::Column::Audience.eq(Audience::Partners));
    }
    if level.is_none() && !partner {
        return Ok((0, revoked));
    }
    q = q.filter(any);
    let mut granted = 0;
    for r in q.order_by_asc(rule::Column::Id).all(db).await? {
        let (source, lvl) = match r.audience {
            Audience::Level => (Source::Level, r.level_id),
            _ => (Source::Partner, None),
        };
        match grant(db, events, &r, m.id, (source, lvl), None, now).await? {
            Granted::Already(_) => {}
            _ => granted += 1,
        }
    }
    Ok((granted, revoked))
}

/// Revokes `g` (not yet revoked), by `actor` (`None`: the server), audited in its
/// transaction. Returns whether this call revoked it.
async fn revoke_row(
    db: &DatabaseConnection,
    g: &grant::Model,
    actor: Option<&Actor>,
    why: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let txn = crate::db::begin_write(db).await?;
    let mut q = grant::Entity::update_many()
        .col_expr(grant::Column::RevokedAt, Expr::value(now))
        .col_expr(
            grant::Column::RevokedBy,
            Expr::value(actor.map(|a| a.member)),
        )
        .filter(grant::Column::Id.eq(g.id))
        .filter(grant::Column::RevokedAt.is_null());
    if g.kind == Kind::Prize {
        q = q.filter(grant::Column::PrizeStatus.ne(PrizeStatus::Shipped));
    }
    let r = q.exec(&txn).await?;
    if r.rows_affected == 0 {
        return Ok(false);
    }
    audit::record_by(
        &txn,
        actor,
        Action::PrivilegeRevoked,
        Some((TargetType::Privilege, g.id)),
        serde_json::json!({
            "ruleId": g.rule_id, "memberId": g.member_id, "period": g.period, "reason": why,
        }),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// An admin grants rule `rule_id` to `member_id` for the current period (source `ADMIN`):
/// `NOT_FOUND` for an unknown rule or member, `PRIVILEGE_RULE_DISABLED`. Granted for the
/// period already: that grant, unchanged (or given back, if it was revoked).
pub async fn grant_by_admin(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    rule_id: Uuid,
    member_id: Uuid,
    now: DateTime<Utc>,
) -> Result<grant::Model> {
    let r = rule::Entity::find_by_id(rule_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("privilege rule"))?;
    if !r.enabled {
        return Err(Error::rule(
            "PRIVILEGE_RULE_DISABLED",
            "this privilege rule is disabled",
        ));
    }
    member::Entity::find_by_id(member_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    let g = grant(
        db,
        events,
        &r,
        member_id,
        (Source::Admin, None),
        Some(actor),
        now,
    )
    .await?;
    Ok(g.model().clone())
}

/// An admin revokes grant `id`: `NOT_FOUND` for an unknown one, `PRIVILEGE_REVOKED` when it
/// is already, `PRIZE_SHIPPED` for a prize already on its way.
pub async fn revoke(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<grant::Model> {
    let g = get(db, id).await?;
    if g.revoked_at.is_some() {
        return Err(Error::rule(
            "PRIVILEGE_REVOKED",
            "this privilege is revoked already",
        ));
    }
    if g.prize_status == Some(PrizeStatus::Shipped) {
        return Err(Error::rule("PRIZE_SHIPPED", "this prize has shipped"));
    }
    if !revoke_row(db, &g, Some(actor), "revoked by an admin", now).await? {
        return Err(Error::rule(
            "PRIVILEGE_REVOKED",
            "this privilege was revoked or shipped meanwhile",
        ));
    }
    events
        .publish(vec![Event::new(
            g.member_id,
            EventKind::OwnChanged,
            g.member_id,
        )])
        .await;
    get(db, id).await
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<grant::Model> {
    grant::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("privilege"))
}

/// Position after the last grant of a page: newest first.
pub type GrantCursor = super::page::NewestCursor;

/// `member`'s grants (only prizes with `prizes_only`), newest first, revoked ones included.
pub async fn list(
    db: &impl ConnectionTrait,
    member: Uuid,
    prizes_only: bool,
    after: Option<&GrantCursor>,
    first: u64,
) -> Result<super::page::Page<grant::Model>> {
    let mut q = grant::Entity::find().filter(grant::Column::MemberId.eq(member));
    if prizes_only {
        q = q.filter(grant::Column::Kind.eq(Kind::Prize));
    }
    super::page::newest_first(
        db,
        q,
        grant::Column::GrantedAt,
        grant::Column::Id,
        after,
        first,
    )
    .await
}

/// Claimed prizes waiting to ship, oldest claim first (admins; at most 200).
pub async fn prizes_to_ship(db: &impl ConnectionTrait) -> Result<Vec<grant::Model>> {
    Ok(grant::Entity::find()
        .filter(grant::Column::PrizeStatus.eq(PrizeStatus::Claimed))
        .filter(grant::Column::RevokedAt.is_null())
        .order_by_asc(grant::Column::ClaimedAt)
        .order_by_asc(grant::Column::Id)
        .limit(200)
        .all(db)
        .await?)
}

/// Where a prize stands, as members see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrizeState {
    Unclaimed,
    Claimed,
    Shipped,
    /// Unclaimed past its claim window.
    Expired,
    /// Revoked by an admin before it shipped.
    Revoked,
}

/// Where prize grant `g` stands at `now` (`None`: not a prize).
pub fn prize_state(g: &grant::Model, now: DateTime<Utc>) -> Option<PrizeState> {
    let status = g.prize_status?;
    Some(if status == PrizeStatus::Shipped {
        PrizeState::Shipped
    } else if g.revoked_at.is_some() {
        PrizeState::Revoked
    } else if status == PrizeStatus::Claimed {
        PrizeState::Claimed
    } else if g.prize_expires_at.is_some_and(|e| e <= now) {
        PrizeState::Expired
    } else {
        PrizeState::Unclaimed
    })
}

/// Why a prize cannot be claimed now.
fn unclaimable(g: &grant::Model, now: DateTime<Utc>) -> Error {
    match prize_state(g, now) {
        Some(PrizeState::Expired) => {
            Error::rule("PRIZE_EXPIRED", "this prize's claim window is over")
        }
        Some(PrizeState::Revoked) => Error::rule("PRIVILEGE_REVOKED", "this prize was revoked"),
        Some(PrizeState::Claimed | PrizeState::Shipped) => {
            Error::rule("PRIZE_ALREADY_CLAIMED", "this prize is claimed already")
        }
        _ => Error::rule("TRY_AGAIN", "the prize changed meanwhile; try again"),
    }
}

/// `member` claims prize `id` to its address `address_id`, copied onto the prize:
/// `NOT_FOUND` for another member's prize or address (or none), `PRIZE_EXPIRED`,
/// `PRIZE_ALREADY_CLAIMED`, `PRIVILEGE_REVOKED`. Of concurrent claims, one wins.
pub async fn claim_prize(
    db: &DatabaseConnection,
    events: &Events,
    member: Uuid,
    id: Uuid,
    address_id: Uuid,
    now: DateTime<Utc>,
) -> Result<grant::Model> {
    let g = get(db, id)
        .await
        .ok()
        .filter(|g| g.member_id == member && g.kind == Kind::Prize)
        .ok_or_else(|| Error::not_found("prize"))?;
    if prize_state(&g, now) != Some(PrizeState::Unclaimed) {
        return Err(unclaimable(&g, now));
    }
    let a = super::addresses::get(db, member, address_id).await?;
    let r = grant::Entity::update_many()
        .col_expr(
            grant::Column::PrizeStatus,
            Expr::value(PrizeStatus::Claimed),
        )
        .col_expr(grant::Column::ClaimedAt, Expr::value(now))
        .col_expr(
            grant::Column::ShipRecipientName,
            Expr::value(a.recipient_name),
        )
        .col_expr(grant::Column::ShipPhone, Expr::value(a.phone))
        .col_expr(
            grant::Column::ShipProvinceCode,
            Expr::value(a.province_code),
        )
        .col_expr(
            grant::Column::ShipProvinceName,
            Expr::value(a.province_name),
        )
        .col_expr(grant::Column::ShipCityCode, Expr::value(a.city_code))
        .col_expr(grant::Column::ShipCityName, Expr::value(a.city_name))
        .col_expr(
            grant::Column::ShipDistrictCode,
            Expr::value(a.district_code),
        )
        .col_expr(
            grant::Column::ShipDistrictName,
            Expr::value(a.district_name),
        )
        .col_expr(grant::Column::ShipDetail, Expr::value(a.detail))
        .col_expr(grant::Column::ShipPostalCode, Expr::value(a.postal_code))
        .filter(grant::Column::Id.eq(id))
        .filter(grant::Column::PrizeStatus.eq(PrizeStatus::Unclaimed))
        .filter(grant::Column::RevokedAt.is_null())
        .filter(grant::Column::PrizeExpiresAt.gt(now))
        .exec(db)
        .await?;
    let after = get(db, id).await?;
    if r.rows_affected == 0 {
        return Err(unclaimable(&after, now));
    }
    events
        .publish(vec![Event::new(member, EventKind::OwnChanged, member)])
        .await;
    Ok(after)
}

/// An admin ships claimed prize `id` (audited in its transaction): `VALIDATION` on
/// `trackingNumber`, `NOT_FOUND` for an unknown prize, `PRIZE_NOT_CLAIMED` (unclaimed,
/// expired or revoked), `PRIZE_ALREADY_SHIPPED`.
pub async fn ship_prize(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    id: Uuid,
    carrier: entity::shipment::Carrier,
    tracking_number: &str,
    now: DateTime<Utc>,
) -> Result<grant::Model> {
    let number = super::fulfilment::tracking_number("trackingNumber".into(), tracking_number)?;
    let g = get(db, id)
        .await
        .ok()
        .filter(|g| g.kind == Kind::Prize)
        .ok_or_else(|| Error::not_found("prize"))?;
    let refused = |g: &grant::Model| match prize_state(g, now) {
        Some(PrizeState::Shipped) => {
            Error::rule("PRIZE_ALREADY_SHIPPED", "this prize has shipped already")
        }
        _ => Error::rule(
            "PRIZE_NOT_CLAIMED",
            "only a claimed prize ships (this one is unclaimed, expired or revoked)",
        ),
    };
    if prize_state(&g, now) != Some(PrizeState::Claimed) {
        return Err(refused(&g));
    }
    let txn = crate::db::begin_write(db).await?;
    let r = grant::Entity::update_many()
        .col_expr(
            grant::Column::PrizeStatus,
            Expr::value(PrizeStatus::Shipped),
        )
        .col_expr(grant::Column::ShippedAt, Expr::value(now))
        .col_expr(grant::Column::Carrier, Expr::value(carrier))
        .col_expr(grant::Column::TrackingNumber, Expr::value(number.clone()))
        .col_expr(grant::Column::ShippedBy, Expr::value(actor.member))
        .filter(grant::Column::Id.eq(id))
        .filter(grant::Column::PrizeStatus.eq(PrizeStatus::Claimed))
        .filter(grant::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if r.rows_affected == 0 {
        drop(txn);
        return Err(refused(&get(db, id).await?));
    }
    audit::record(
        &txn,
        actor,
        Action::PrizeShipped,
        Some((TargetType::Privilege, id)),
        serde_json::json!({
            "memberId": g.member_id,
            "carrier": carrier.to_value(),
            "trackingNumber": number,
        }),
        now,
    )
    .await?;
    txn.commit().await?;
    events
        .publish(vec![Event::new(
            g.member_id,
            EventKind::OwnChanged,
            g.member_id,
        )])
        .await;
    get(db, id).await
}

/// A badge as a public profile shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Badge {
    pub name: String,
    pub source: Source,
    pub since: DateTime<Utc>,
}

/// The badges (not revoked) of each of `members`, oldest first (two statements).
pub async fn badges_of(
    db: &impl ConnectionTrait,
    members: &[Uuid],
) -> Result<Vec<(Uuid, Vec<Badge>)>> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let grants = grant::Entity::find()
        .filter(grant::Column::MemberId.is_in(members.iter().copied()))
        .filter(grant::Column::Kind.eq(Kind::Badge))
        .filter(grant::Column::RevokedAt.is_null())
        .order_by_asc(grant::Column::GrantedAt)
        .order_by_asc(grant::Column::Id)
        .all(db)
        .await?;
    let rules = rules_by_id(db, grants.iter().map(|g| g.rule_id)).await?;
    let mut out: HashMap<Uuid, Vec<Badge>> = members.iter().map(|m| (*m, Vec::new())).collect();
    for g in grants {
        if let Some(r) = rules.get(&g.rule_id) {
            out.entry(g.member_id).or_default().push(Badge {
                name: r.name.clone(),
                source: g.source,
                since: g.granted_at,
            });
        }
    }
    Ok(out.into_iter().collect())
}

pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Badge => "BADGE",
        Kind::CouponPack => "COUPON_PACK",
        Kind::Prize => "PRIZE",
    }
}

pub fn audience_name(a: Audience) -> &'static str {
    match a {
        Audience::Level => "LEVEL",
        Audience::Partners => "PARTNERS",
        Audience::Manual => "MANUAL",
    }
}

pub fn period_name(p: Period) -> &'static str {
    match p {
        Period::Once => "ONCE",
        Period::Monthly => "MONTHLY",
    }
}

pub fn source_name(s: Source) -> &'static str {
    match s {
        Source::Level => "LEVEL",
        Source::Partner => "PARTNER",
        Source::Admin => "ADMIN",
    }
}
