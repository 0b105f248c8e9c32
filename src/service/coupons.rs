//! Coupons (优惠券): templates admins define, coupons members claim or are given, and what a
//! coupon takes off an order.
//!
//! - A **template** says what a coupon takes off (`FIXED`: an amount; `PERCENT`: a rate of
//!   the eligible goods, at most `max_off` when set), the minimum spend (of the eligible
//!   lines), the scope (the whole catalog, or categories — a top-level one covers its
//!   children, expanded when the template is created —, brands or products), the validity
//!   (fixed dates, or N days from claiming), the total and the per-member limit, and how
//!   members get it (`CLAIM`, `GRANT`, `ON_REGISTER`). Creating one and enabling or disabling
//!   it are audited, in their transaction.
//! - **Claiming** ([`claim`]) never issues more than the total nor more per member than the
//!   limit, however many claims run at once, on either store: the template's `issued`
//!   counter moves by a conditional update (`issued < total_quantity`, backed by a CHECK),
//!   which also queues the claims of one template on its row; the member's count is read
//!   after that, and the coupon is written with `seq` = count + 1 under a unique index on
//!   (template, member, seq), so no member ever holds more than `per_member_limit`.
//!   `ON_REGISTER` templates are granted in `register`'s transaction ([`grant_on_register`]).
//! - **Using** (one coupon per order): [`apply`] decides, from what the checkout has read,
//!   whether the coupon applies and why not (a stable code and a reason); the discount is
//!   spread over the eligible lines in proportion to their amounts ([`spread`]). The
//!   checkout marks the coupon used in its own statement (`in_use = in_use + n`, a CHECK
//!   keeps it at most 1), so of two orders using one coupon at once, one is written. The
//!   coupon comes back ([`release`]) when its order is cancelled unpaid (by the buyer or by
//!   its expiry) or when every line it touched is fully refunded.
//!
//! Coupons are funded by the platform: every rebate and reward is computed on a line's
//! paid amount after its coupon share, so a coupon never pays commission on money nobody
//! paid. A push-hand may use one on its own purchase (自购): its `SELF_PURCHASE` rebate is
//! then on what it paid after the coupon, as for anyone else, and the explanation says so.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use entity::coupon_template::{self as template, Distribution, Kind, Scope};
use entity::{Money, Rate, brand, category, coupon, order_line, product};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use crate::error::{Error, FieldErrors, Result};
use crate::events::{Event, Events, Kind as EventKind};

/// The longest template name, in characters.
pub const MAX_NAME_CHARS: usize = 60;
/// The most ids a scope names.
pub const MAX_SCOPE_IDS: usize = 200;
/// The most coupons one template issues.
pub const MAX_TOTAL: i32 = 10_000_000;
/// The most days a relative validity lasts.
pub const MAX_VALID_DAYS: i32 = 3650;

/// A decimal argument as the API parsed it: its error (`VALIDATION` on its field) is
/// reported with the others.
pub type Num = Result<Decimal>;

/// A template as an admin asks for it (the API's input, values not yet checked).
pub struct NewTemplate {
    pub name: String,
    pub kind: Kind,
    /// `FIXED`: the amount off, CNY.
    pub amount_off: Option<Num>,
    /// `PERCENT`: the rate off, a fraction (0.15 = 15 % off).
    pub rate_off: Option<Num>,
    /// `PERCENT`: the most it takes off, CNY (none: no cap).
    pub max_off: Option<Num>,
    /// The eligible lines must come to at least this, CNY (none: 0).
    pub min_spend: Option<Num>,
    pub scope: Scope,
    /// The ids of the scope as decoded (a malformed one: its error).
    pub scope_ids: Vec<Result<Uuid>>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub valid_days: Option<i32>,
    pub total_quantity: i32,
    pub per_member_limit: i32,
    pub distribution: Distribution,
}

/// A positive amount of money, exact to the fen.
fn positive_money(errors: &mut FieldErrors, field: &'static str, d: Decimal) -> Option<Money> {
    match Money::from_decimal(d) {
        Some(m) if m.fen() > 0 => Some(m),
        Some(_) => {
            errors.push(field, "must be above zero");
            None
        }
        None => {
            errors.push(field, "must be an amount in CNY with at most two decimals");
            None
        }
    }
}

/// Checks every field of `input` at once (`VALIDATION` naming each bad `input.<field>`),
/// then that the scope's ids exist; returns the row to write.
async fn check_template(
    db: &impl ConnectionTrait,
    input: NewTemplate,
    now: DateTime<Utc>,
) -> Result<template::Model> {
    let mut errors = FieldErrors::default();
    let name = errors.check(super::text::name("input.name", &input.name, MAX_NAME_CHARS));
    // A number that did not parse is reported once, and then neither given nor missing.
    let mut given = |n: Option<Num>| n.map(|n| errors.check(n));
    let (amount_in, rate_in, max_in, min_in) = (
        given(input.amount_off),
        given(input.rate_off),
        given(input.max_off),
        given(input.min_spend),
    );
    let n_ids = input.scope_ids.len();
    let mut ids = Vec::with_capacity(n_ids);
    for id in input.scope_ids {
        if let Some(id) = errors.check(id) {
            ids.push(id);
        }
    }
    let (mut amount_off, mut rate_off, mut max_off) = (None, None, None);
    match input.kind {
        Kind::Fixed => {
            match amount_in {
                None => errors.push("input.amountOff", "a FIXED coupon needs an amount off"),
                Some(None) => {}
                Some(Some(d)) => amount_off = positive_money(&mut errors, "input.amountOff", d),
            }
            if rate_in.is_some() {
                errors.push("input.rateOff", "only a PERCENT coupon has a rate off");
            }
            if max_in.is_some() {
                errors.push("input.maxOff", "only a PERCENT coupon has a cap");
            }
        }
        Kind::Percent => {
            match rate_in {
                None => errors.push("input.rateOff", "a PERCENT coupon needs a rate off"),
                Some(None) => {}
                Some(Some(d)) => match Rate::from_decimal(d) {
                    Some(r) if r.bp() > 0 && r.bp() <= 10_000 => rate_off = Some(r),
                    _ => errors.push(
                        "input.rateOff",
                        "must be a fraction above 0 and at most 1 (0.15 = 15 % off), at most \
                         four decimals",
                    ),
                },
            }
            if amount_in.is_some() {
                errors.push("input.amountOff", "only a FIXED coupon has an amount off");
            }
            if let Some(Some(d)) = max_in {
                max_off = positive_money(&mut errors, "input.maxOff", d);
            }
        }
    }
    let min_spend = match min_in {
        None => Some(Money::ZERO),
        Some(None) => None,
        Some(Some(d)) => match Money::from_decimal(d) {
            Some(m) if m.fen() >= 0 => Some(m),
            Some(_) => {
                errors.push("input.minSpend", "must not be negative");
                None
            }
            None => {
                errors.push(
                    "input.minSpend",
                    "must be an amount in CNY with at most two decimals",
                );
                None
            }
        },
    };
    if let (Some(off), Some(min)) = (amount_off, min_spend)
        && min.fen() > 0
        && off.fen() >= min.fen()
    {
        errors.push(
            "input.amountOff",
            "must be below the minimum spend (an order always pays something)",
        );
    }
    match input.scope {
        Scope::All if n_ids > 0 => {
            errors.push("input.scopeIds", "the whole catalog takes no ids");
        }
        Scope::All => {}
        _ if n_ids == 0 => {
            errors.push("input.scopeIds", "name at least one id of the scope");
        }
        _ if n_ids > MAX_SCOPE_IDS => {
            errors.push("input.scopeIds", format!("at most {MAX_SCOPE_IDS} ids"));
        }
        _ => {}
    }
    match (input.valid_from, input.valid_until, input.valid_days) {
        (None, None, Some(days)) => {
            if !(1..=MAX_VALID_DAYS).contains(&days) {
                errors.push(
                    "input.validDays",
                    format!("must be 1 to {MAX_VALID_DAYS} days"),
                );
            }
        }
        (Some(from), Some(until), None) => {
            if until <= from {
                errors.push("input.validUntil", "must be after validFrom");
            } else if until <= now {
                errors.push("input.validUntil", "must be in the future");
            }
        }
        (_, _, Some(_)) => errors.push(
            "input.validDays",
            "give either validDays or validFrom and validUntil, not both",
        ),
        (None, _, None) => errors.push(
            "input.validFrom",
            "give validFrom and validUntil, or validDays",
        ),
        (Some(_), None, None) => errors.push(
            "input.validUntil",
            "give validFrom and validUntil, or validDays",
        ),
    }
    if !(1..=MAX_TOTAL).contains(&input.total_quantity) {
        errors.push("input.totalQuantity", format!("must be 1 to {MAX_TOTAL}"));
    }
    if input.per_member_limit < 1 {
        errors.push("input.perMemberLimit", "must be at least 1");
    } else if input.per_member_limit > std::cmp::max(input.total_quantity, 1) {
        errors.push("input.perMemberLimit", "must not exceed totalQuantity");
    }
    errors.finish()?;
    let scope_ids = scope_ids(db, input.scope, &ids).await?;
    Ok(template::Model {
        id: Uuid::now_v7(),
        name: name.unwrap_or_default(),
        kind: input.kind,
        amount_off,
        rate_off,
        max_off,
        min_spend: min_spend.unwrap_or(Money::ZERO),
        scope: input.scope,
        scope_ids: serde_json::to_string(&scope_ids).map_err(Error::internal)?,
        valid_from: input.valid_from,
        valid_until: input.valid_until,
        valid_days: input.valid_days,
        total_quantity: input.total_quantity,
        issued: 0,
        per_member_limit: input.per_member_limit,
        distribution: input.distribution,
        enabled: true,
        created_by: None,
        created_at: now,
    })
}

/// The ids a scope stores: every id named must exist (`VALIDATION` on
/// `input.scopeIds[i]` for each one that does not); a top-level category brings its children.
async fn scope_ids(db: &impl ConnectionTrait, scope: Scope, ids: &[Uuid]) -> Result<Vec<Uuid>> {
    let mut unique: Vec<Uuid> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(id) {
            unique.push(*id);
        }
    }
    let found: HashSet<Uuid> = match scope {
        Scope::All => return Ok(Vec::new()),
        Scope::Categories => category::Entity::find()
            .select_only()
            .column(category::Column::Id)
            .filter(category::Column::Id.is_in(unique.clone()))
            .into_tuple::<Uuid>()
            .all(db)
            .await?
            .into_iter()
            .collect(),
        Scope::Brands => brand::Entity::find()
            .select_only()
            .column(brand::Column::Id)
            .filter(brand::Column::Id.is_in(unique.clone()))
            .into_tuple::<Uuid>()
            .all(db)
            .await?
            .into_iter()
            .collect(),
        Scope::Products => product::Entity::find()
            .select_only()
            .column(product::Column::Id)
            .filter(product::Column::Id.is_in(unique.clone()))
            .into_tuple::<Uuid>()
            .all(db)
            .await?
            .into_iter()
            .collect(),
    };
    let mut errors = FieldErrors::default();
    for (i, id) in ids.iter().enumerate() {
        if !found.contains(id) {
            errors.push(format!("input.scopeIds[{i}]"), "no such id of the scope");
        }
    }
    errors.finish()?;
    if scope == Scope::Categories {
        let children: Vec<Uuid> = category::Entity::find()
            .select_only()
            .column(category::Column::Id)
            .filter(category::Column::ParentId.is_in(unique.clone()))
            .into_tuple::<Uuid>()
            .all(db)
            .await?;
        for c in children {
            if !unique.contains(&c) {
                unique.push(c);
            }
        }
    }
    Ok(unique)
}

/// Creates a template (enabled), with its audit entry in the same transaction.
pub async fn create_template(
    db: &DatabaseConnection,
    actor: &Actor,
    input: NewTemplate,
    now: DateTime<Utc>,
) -> Result<template::Model> {
    let mut t = check_template(db, input, now).await?;
    t.created_by = Some(actor.member);
    let txn = crate::db::begin_write(db).await?;
    template::Entity::insert(template::ActiveModel::from(t.clone()))
        .exec_without_returning(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        Action::CouponTemplateCreated,
        Some((TargetType::CouponTemplate, t.id)),
        serde_json::json!({
            "name": t.name,
            "kind": kind_name(t.kind),
            "amountOff": t.amount_off.map(|m| m.to_decimal().to_string()),
            "rateOff": t.rate_off.map(|r| r.to_decimal().to_string()),
            "maxOff": t.max_off.map(|m| m.to_decimal().to_string()),
            "minSpend": t.min_spend.to_decimal().to_string(),
            "scope": scope_name(t.scope),
            "totalQuantity": t.total_quantity,
            "perMemberLimit": t.per_member_limit,
            "distribution": distribution_name(t.distribution),
        }),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(t)
}

/// Enables or disables a template (audited). A disabled template is neither claimed nor
/// granted, and its coupons do not apply to new orders (`COUPON_DISABLED`) until it is
/// enabled again; orders already placed keep theirs.
pub async fn set_enabled(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    enabled: bool,
    now: DateTime<Utc>,
) -> Result<template::Model> {
    let txn = crate::db::begin_write(db).await?;
    let updated = template::Entity::update_many()
        .col_expr(template::Column::Enabled, Expr::value(enabled))
        .filter(template::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(Error::not_found("coupon template"));
    }
    audit::record(
        &txn,
        actor,
        Action::CouponTemplateEnabledSet,
        Some((TargetType::CouponTemplate, id)),
        serde_json::json!({ "enabled": enabled }),
        now,
    )
    .await?;
    let t = get_template(&txn, id).await?;
    txn.commit().await?;
    Ok(t)
}

pub async fn get_template(db: &impl ConnectionTrait, id: Uuid) -> Result<template::Model> {
    template::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("coupon template"))
}

/// Position after the last template of a page: newest first.
pub type TemplateCursor = super::page::NewestCursor;

/// Every template, newest first (admins).
pub async fn list_templates(
    db: &impl ConnectionTrait,
    after: Option<&TemplateCursor>,
    first: u64,
) -> Result<super::page::Page<template::Model>> {
    super::page::newest_first(
        db,
        template::Entity::find(),
        template::Column::CreatedAt,
        template::Column::Id,
        after,
        first,
    )
    .await
}

/// The most templates `claimableCoupons` lists.
pub const MAX_CLAIMABLE: u64 = 100;

/// The templates a member may claim now: enabled, `CLAIM`, not all issued, not past their
/// fixed validity; newest first, at most [`MAX_CLAIMABLE`]. With each, how many of its
/// coupons `member` holds (one statement more).
pub async fn claimable(
    db: &impl ConnectionTrait,
    member: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<(template::Model, i64)>> {
    let templates = template::Entity::find()
        .filter(template::Column::Enabled.eq(true))
        .filter(template::Column::Distribution.eq(Distribution::Claim))
        .filter(Expr::col(template::Column::Issued).lt(Expr::col(template::Column::TotalQuantity)))
        .filter(
            sea_orm::Condition::any()
                .add(template::Column::ValidUntil.is_null())
                .add(template::Column::ValidUntil.gt(now)),
        )
        .order_by_desc(template::Column::CreatedAt)
        .order_by_desc(template::Column::Id)
        .limit(MAX_CLAIMABLE)
        .all(db)
        .await?;
    if templates.is_empty() {
        return Ok(Vec::new());
    }
    let held: HashMap<Uuid, i64> = coupon::Entity::find()
        .select_only()
        .column(coupon::Column::TemplateId)
        .column_as(coupon::Column::Id.count(), "n")
        .filter(coupon::Column::MemberId.eq(member))
        .filter(coupon::Column::TemplateId.is_in(templates.iter().map(|t| t.id)))
        .group_by(coupon::Column::TemplateId)
        .into_tuple::<(Uuid, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(templates
        .into_iter()
        .map(|t| {
            let n = held.get(&t.id).copied().unwrap_or(0);
            (t, n)
        })
        .collect())
}

/// When a coupon of `t` claimed at `now` is valid: from, until.
fn validity(t: &template::Model, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    match (t.valid_from, t.valid_until, t.valid_days) {
        (Some(from), Some(until), _) => (from, until),
        (_, _, Some(days)) => (now, now + Duration::days(i64::from(days))),
        // The CHECK makes this impossible; a coupon valid for nothing.
        _ => (now, now),
    }
}

/// How many times a claim tries again when a concurrent write took the coupon number it
/// chose.
const MAX_CLAIM_TRIES: u32 = 4;

/// Issues one coupon of `t` to `member` in `txn`, or says why not: `COUPONS_EXHAUSTED`
/// when every coupon is issued, `COUPON_LIMIT_REACHED` when the member holds its limit.
/// The template's row is taken first (the conditional update of `issued`), so claims of one
/// template queue there and each counts the member's coupons after the ones before it.
async fn issue(
    txn: &impl ConnectionTrait,
    t: &template::Model,
    member: Uuid,
    now: DateTime<Utc>,
) -> Result<coupon::Model> {
    let taken = template::Entity::update_many()
        .col_expr(
            template::Column::Issued,
            Expr::col(template::Column::Issued).add(1),
        )
        .filter(template::Column::Id.eq(t.id))
        .filter(template::Column::Enabled.eq(true))
        .filter(Expr::col(template::Column::Issued).lt(Expr::col(template::Column::TotalQuantity)))
        .exec(txn)
        .await
        .map_err(|e| {
            if crate::db::is_check_violation(&e) {
                exhausted()
            } else {
                e.into()
            }
        })?;
    if taken.rows_affected == 0 {
        return Err(exhausted());
    }
    let held = coupon::Entity::find()
        .filter(coupon::Column::TemplateId.eq(t.id))
        .filter(coupon::Column::MemberId.eq(member))
        .count(txn)
        .await?;
    if held >= u64::try_from(t.per_member_limit).unwrap_or(0) {
        return Err(limit_reached(t.per_member_limit));
    }
    let (valid_from, expires_at) = validity(t, now);
    let c = coupon::Model {
        id: Uuid::now_v7(),
        template_id: t.id,
        member_id: member,
        seq: i32::try_from(held + 1).unwrap_or(i32::MAX),
        claimed_at: now,
        valid_from,
        expires_at,
        in_use: 0,
        order_id: None,
        used_at: None,
    };
    coupon::Entity::insert(coupon::ActiveModel::from(c.clone()))
        .exec_without_returning(txn)
        .await
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                Error::rule(NUMBER_TAKEN, "the coupon's number was taken meanwhile")
            } else {
                e.into()
            }
        })?;
    Ok(c)
}

/// The code of a claim whose coupon number another write took meanwhile (retried).
const NUMBER_TAKEN: &str = "TRY_AGAIN";

fn exhausted() -> Error {
    Error::rule(
        "COUPONS_EXHAUSTED",
        "every coupon of this template is issued",
    )
}

fn limit_reached(limit: i32) -> Error {
    Error::rule(
        "COUPON_LIMIT_REACHED",
        format!("a member holds at most {limit} of these coupons"),
    )
}

/// A member claims a coupon of a `CLAIM` template: `NOT_FOUND` for an unknown template or
/// one not claimed (`GRANT`, `ON_REGISTER`), `COUPON_DISABLED`, `COUPON_EXPIRED` (its fixed
/// validity is over), `COUPONS_EXHAUSTED`, `COUPON_LIMIT_REACHED`. Exact under any
/// concurrency (see the module's doc).
pub async fn claim(
    db: &DatabaseConnection,
    events: &Events,
    member: Uuid,
    template_id: Uuid,
    now: DateTime<Utc>,
) -> Result<coupon::Model> {
    let t = template::Entity::find_by_id(template_id)
        .one(db)
        .await?
        .filter(|t| t.distribution == Distribution::Claim)
        .ok_or_else(|| Error::not_found("coupon template"))?;
    if !t.enabled {
        return Err(Error::rule("COUPON_DISABLED", "this coupon is disabled"));
    }
    if t.valid_until.is_some_and(|until| until <= now) {
        return Err(Error::rule("COUPON_EXPIRED", "this coupon has expired"));
    }
    let mut tries = 0;
    loop {
        tries += 1;
        let txn = crate::db::begin_write(db).await?;
        match issue(&txn, &t, member, now).await {
            Ok(c) => {
                txn.commit().await?;
                events
                    .publish(vec![Event::new(member, EventKind::OwnChanged, member)])
                    .await;
                return Ok(c);
            }
            // Another claim of the member took the number meanwhile (outside the template's
            // queue: a grant): count again.
            Err(e) if e.code() == NUMBER_TAKEN && tries < MAX_CLAIM_TRIES => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Grants `member`, registering in `txn`, one coupon of every enabled `ON_REGISTER`
/// template with coupons left and not past its validity. A template with none left is
/// skipped (registration never fails for a coupon): each template is issued under a
/// savepoint, so a refusal leaves neither its counter moved nor the registration's
/// transaction aborted (PostgreSQL aborts a transaction on a failed statement). Returns the
/// coupons.
pub async fn grant_on_register(
    txn: &sea_orm::DatabaseTransaction,
    member: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<coupon::Model>> {
    use sea_orm::TransactionTrait;
    let templates = template::Entity::find()
        .filter(template::Column::Enabled.eq(true))
        .filter(template::Column::Distribution.eq(Distribution::OnRegister))
        .filter(Expr::col(template::Column::Issued).lt(Expr::col(template::Column::TotalQuantity)))
        .filter(
            sea_orm::Condition::any()
                .add(template::Column::ValidUntil.is_null())
                .add(template::Column::ValidUntil.gt(now)),
        )
        .order_by_asc(template::Column::Id)
        .limit(MAX_CLAIMABLE)
        .all(txn)
        .await?;
    let mut out = Vec::new();
    for t in templates {
        let sp = txn.begin().await?;
        match issue(&sp, &t, member, now).await {
            Ok(c) => {
                sp.commit().await?;
                out.push(c);
            }
            Err(e)
                if matches!(
                    e.code(),
                    "COUPONS_EXHAUSTED" | "COUPON_LIMIT_REACHED" | NUMBER_TAKEN
                ) =>
            {
                sp.rollback().await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Grants `member` one coupon of each `GRANT` template of `templates` in `txn` (a
/// privilege's coupon pack, [`super::privileges`]). Each template is issued under a
/// savepoint through the claims' path ([`issue`]: the total and the per-member limit hold
/// under any concurrency); a template that gives none — unknown, not `GRANT`, disabled, past
/// its validity, exhausted, or at the member's limit — is skipped with its reason, and the
/// pack gives the rest. Returns the coupons and the skipped templates with their codes. A
/// coupon number taken meanwhile is `TRY_AGAIN` (the caller runs its transaction again).
pub async fn grant_pack(
    txn: &sea_orm::DatabaseTransaction,
    templates: &[Uuid],
    member: Uuid,
    now: DateTime<Utc>,
) -> Result<(Vec<coupon::Model>, Vec<(Uuid, &'static str)>)> {
    use sea_orm::TransactionTrait;
    let mut ids = templates.to_vec();
    // In key order, as every writer of several templates takes their rows.
    ids.sort();
    ids.dedup();
    let found = templates_by_id(txn, ids.iter().copied()).await?;
    let (mut issued, mut skipped) = (Vec::new(), Vec::new());
    for id in ids {
        let Some(t) = found.get(&id) else {
            skipped.push((id, "NOT_FOUND"));
            continue;
        };
        if t.distribution != Distribution::Grant {
            skipped.push((id, "NOT_FOUND"));
            continue;
        }
        if !t.enabled {
            skipped.push((id, "COUPON_DISABLED"));
            continue;
        }
        if t.valid_until.is_some_and(|until| until <= now) {
            skipped.push((id, "COUPON_EXPIRED"));
            continue;
        }
        let sp = txn.begin().await?;
        match issue(&sp, t, member, now).await {
            Ok(c) => {
                sp.commit().await?;
                issued.push(c);
            }
            Err(e) if e.code() == NUMBER_TAKEN => return Err(e),
            Err(e) => match e.code() {
                code @ ("COUPONS_EXHAUSTED" | "COUPON_LIMIT_REACHED") => {
                    sp.rollback().await?;
                    skipped.push((id, code));
                }
                _ => return Err(e),
            },
        }
    }
    Ok((issued, skipped))
}

/// Where a member's coupon stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not used and not expired (possibly not valid yet: see `validFrom`).
    Available,
    /// Held by an order.
    Used,
    /// Not used, and its validity is over.
    Expired,
}

/// Where `c` stands at `now`.
pub fn status_of(c: &coupon::Model, now: DateTime<Utc>) -> Status {
    if c.in_use > 0 {
        Status::Used
    } else if c.expires_at <= now {
        Status::Expired
    } else {
        Status::Available
    }
}

/// Position after the last coupon of a page: newest first.
pub type CouponCursor = super::page::NewestCursor;

/// A member's coupons (in `status` if given), newest claimed first.
pub async fn list(
    db: &impl ConnectionTrait,
    member: Uuid,
    status: Option<Status>,
    after: Option<&CouponCursor>,
    first: u64,
    now: DateTime<Utc>,
) -> Result<super::page::Page<coupon::Model>> {
    let mut q = coupon::Entity::find().filter(coupon::Column::MemberId.eq(member));
    q = match status {
        None => q,
        Some(Status::Used) => q.filter(coupon::Column::InUse.gt(0)),
        Some(Status::Expired) => q
            .filter(coupon::Column::InUse.eq(0))
            .filter(coupon::Column::ExpiresAt.lte(now)),
        Some(Status::Available) => q
            .filter(coupon::Column::InUse.eq(0))
            .filter(coupon::Column::ExpiresAt.gt(now)),
    };
    super::page::newest_first(
        db,
        q,
        coupon::Column::ClaimedAt,
        coupon::Column::Id,
        after,
        first,
    )
    .await
}

/// The templates `ids`, by id (one statement).
pub async fn templates_by_id(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, template::Model>> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(template::Entity::find()
        .filter(template::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect())
}

/// `member`'s coupon `id` with its template, for a checkout, in one statement (the coupon
/// joined to its template): another member's (or none) is `NOT_FOUND`.
pub async fn for_checkout(
    db: &impl ConnectionTrait,
    member: Uuid,
    id: Uuid,
) -> Result<(coupon::Model, template::Model)> {
    use sea_orm::{JoinType, RelationDef};
    let of_template: RelationDef = coupon::Entity::belongs_to(template::Entity)
        .from(coupon::Column::TemplateId)
        .to(template::Column::Id)
        .into();
    match coupon::Entity::find_by_id(id)
        .select_also(template::Entity)
        .join(JoinType::InnerJoin, of_template)
        .one(db)
        .await?
    {
        Some((c, Some(t))) if c.member_id == member => Ok((c, t)),
        _ => Err(Error::not_found("coupon")),
    }
}

/// Why a coupon does not apply to an order: a stable code and the reason in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub reason: String,
}

impl Refusal {
    fn new(code: &'static str, reason: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason: reason.into(),
        }
    }

    /// The refusal as `placeOrder`'s error.
    pub fn error(&self) -> Error {
        Error::rule(self.code, self.reason.clone())
    }
}

/// What a coupon takes off an order: the discount and each line's share (in the lines'
/// order; 0 for a line outside the scope).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub coupon_id: Uuid,
    pub discount: Money,
    pub shares: Vec<i64>,
}

/// Whether `line`'s product is in `t`'s scope.
fn in_scope(t: &template::Model, ids: &HashSet<Uuid>, p: &product::Model) -> bool {
    match t.scope {
        Scope::All => true,
        Scope::Categories => ids.contains(&p.category_id),
        Scope::Brands => ids.contains(&p.brand_id),
        Scope::Products => ids.contains(&p.id),
    }
}

/// Works out what coupon `c` of template `t` takes off `lines` (their products in
/// `products`) at `now`, or why it does not apply: `COUPON_USED`, `COUPON_DISABLED`,
/// `COUPON_NOT_YET_VALID`, `COUPON_EXPIRED`, `COUPON_NO_ELIGIBLE_LINE`, `COUPON_MIN_SPEND`
/// ("¥X short of the minimum"). Reads nothing.
pub fn apply(
    c: &coupon::Model,
    t: &template::Model,
    lines: &[order_line::Model],
    products: &HashMap<Uuid, product::Model>,
    now: DateTime<Utc>,
) -> std::result::Result<Applied, Refusal> {
    if c.in_use > 0 {
        return Err(Refusal::new(
            "COUPON_USED",
            "this coupon is used by another order",
        ));
    }
    if !t.enabled {
        return Err(Refusal::new("COUPON_DISABLED", "this coupon is disabled"));
    }
    if now < c.valid_from {
        return Err(Refusal::new(
            "COUPON_NOT_YET_VALID",
            format!("this coupon is valid from {}", c.valid_from.to_rfc3339()),
        ));
    }
    if now >= c.expires_at {
        return Err(Refusal::new(
            "COUPON_EXPIRED",
            format!("this coupon expired at {}", c.expires_at.to_rfc3339()),
        ));
    }
    let ids: HashSet<Uuid> = serde_json::from_str::<Vec<Uuid>>(&t.scope_ids)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let eligible: Vec<bool> = lines
        .iter()
        .map(|l| {
            products
                .get(&l.product_id)
                .is_some_and(|p| in_scope(t, &ids, p))
        })
        .collect();
    let base: i64 = lines
        .iter()
        .zip(&eligible)
        .filter(|(_, e)| **e)
        .map(|(l, _)| l.amount.fen())
        .sum();
    if base == 0 {
        return Err(Refusal::new(
            "COUPON_NO_ELIGIBLE_LINE",
            format!(
                "no line of this order is in the coupon's scope ({})",
                scope_words(t.scope)
            ),
        ));
    }
    if base < t.min_spend.fen() {
        let short = Money::from_fen(t.min_spend.fen() - base);
        return Err(Refusal::new(
            "COUPON_MIN_SPEND",
            format!(
                "¥{short} short of the minimum: the eligible lines come to ¥{}, the coupon needs ¥{}",
                Money::from_fen(base),
                t.min_spend
            ),
        ));
    }
    let off = match t.kind {
        Kind::Fixed => t.amount_off.map_or(0, Money::fen),
        Kind::Percent => {
            let bp = i128::from(t.rate_off.map_or(0, Rate::bp));
            // Rounded down: a percentage never takes a fen more than its rate.
            let off = (i128::from(base) * bp / 10_000) as i64;
            match t.max_off {
                Some(cap) => std::cmp::min(off, cap.fen()),
                None => off,
            }
        }
    };
    // An order always pays something for its goods: at most all but one fen comes off.
    let discount = std::cmp::max(std::cmp::min(off, base - 1), 0);
    let amounts: Vec<i64> = lines
        .iter()
        .zip(&eligible)
        .map(|(l, e)| if *e { l.amount.fen() } else { 0 })
        .collect();
    Ok(Applied {
        coupon_id: c.id,
        discount: Money::from_fen(discount),
        shares: spread(discount, &amounts),
    })
}

/// Spreads `discount` fen over lines of `amounts` fen (0: not eligible) in proportion to
/// their amounts: each line gets `floor(discount × amount / total)`, and the fen left over
/// go one each to the largest lines (ties: the earlier line), so the shares sum to exactly
/// `discount`. With `0 <= discount < total`, no share is negative or reaches its line's
/// amount. Deterministic: the same lines always get the same shares.
pub fn spread(discount: i64, amounts: &[i64]) -> Vec<i64> {
    let total: i128 = amounts
        .iter()
        .map(|a| i128::from(std::cmp::max(*a, 0)))
        .sum();
    if total == 0 || discount <= 0 {
        return vec![0; amounts.len()];
    }
    let mut shares: Vec<i64> = amounts
        .iter()
        .map(|a| (i128::from(discount) * i128::from(std::cmp::max(*a, 0)) / total) as i64)
        .collect();
    let mut left = discount - shares.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..amounts.len()).filter(|i| amounts[*i] > 0).collect();
    order.sort_by(|a, b| amounts[*b].cmp(&amounts[*a]).then(a.cmp(b)));
    // Fewer fen are left than there are eligible lines (each floor lost less than one).
    for i in order.iter().cycle().take(order.len() * 2) {
        if left == 0 {
            break;
        }
        shares[*i] += 1;
        left -= 1;
    }
    shares
}

/// Gives coupon `id` back to its member when order `order` held it, in `txn` (the order's
/// cancellation or its last refund). Returns whether it came back.
pub async fn release(txn: &impl ConnectionTrait, id: Uuid, order: Uuid) -> Result<bool> {
    let r = coupon::Entity::update_many()
        .col_expr(coupon::Column::InUse, Expr::value(0))
        .col_expr(coupon::Column::OrderId, Expr::value(Option::<Uuid>::None))
        .col_expr(
            coupon::Column::UsedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(coupon::Column::Id.eq(id))
        .filter(coupon::Column::OrderId.eq(order))
        .exec(txn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Gives back whichever coupon order `order` holds (none: nothing), in `txn` (the order's
/// cancellation while unpaid). One statement, whether or not it holds one.
pub async fn release_of_order(txn: &impl ConnectionTrait, order: Uuid) -> Result<bool> {
    let r = coupon::Entity::update_many()
        .col_expr(coupon::Column::InUse, Expr::value(0))
        .col_expr(coupon::Column::OrderId, Expr::value(Option::<Uuid>::None))
        .col_expr(
            coupon::Column::UsedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(coupon::Column::OrderId.eq(order))
        .exec(txn)
        .await?;
    Ok(r.rows_affected > 0)
}

/// After a refund of a line of an order that used a coupon, in the refund's transaction:
/// the coupon comes back when every line it touched (a share above zero) is fully refunded.
/// Returns whether it came back.
pub async fn release_if_refunded(
    txn: &impl ConnectionTrait,
    coupon_id: Uuid,
    order: Uuid,
) -> Result<bool> {
    let open = order_line::Entity::find()
        .filter(order_line::Column::OrderId.eq(order))
        .filter(order_line::Column::CouponShare.gt(0))
        .filter(order_line::Column::RefundedAt.is_null())
        .count(txn)
        .await?;
    if open > 0 {
        return Ok(false);
    }
    release(txn, coupon_id, order).await
}

pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Fixed => "FIXED",
        Kind::Percent => "PERCENT",
    }
}

pub fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::All => "ALL",
        Scope::Categories => "CATEGORIES",
        Scope::Brands => "BRANDS",
        Scope::Products => "PRODUCTS",
    }
}

fn scope_words(s: Scope) -> &'static str {
    match s {
        Scope::All => "the whole catalog",
        Scope::Categories => "some categories",
        Scope::Brands => "some brands",
        Scope::Products => "some products",
    }
}

pub fn distribution_name(d: Distribution) -> &'static str {
    match d {
        Distribution::Claim => "CLAIM",
        Distribution::Grant => "GRANT",
        Distribution::OnRegister => "ON_REGISTER",
    }
}

/// The scope's ids of a template.
pub fn scope_ids_of(t: &template::Model) -> Vec<Uuid> {
    serde_json::from_str(&t.scope_ids).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::spread;

    /// A small deterministic generator (no dependency): xorshift.
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn spread_is_proportional_with_the_remainder_to_the_largest_lines() {
        // 10.00 off 30.00 + 60.00 + 10.00: 3.33 / 6.66 / 1.11 = 11.10 … exact here.
        assert_eq!(spread(1000, &[3000, 6000, 1000]), vec![300, 600, 100]);
        // 1 fen over three equal lines: the first of the largest takes it.
        assert_eq!(spread(1, &[100, 100, 100]), vec![1, 0, 0]);
        // 2 fen: 0.666 each → floors 0; the two first (equal) lines take one each.
        assert_eq!(spread(2, &[100, 100, 100]), vec![1, 1, 0]);
        // A line outside the scope (0) gets nothing.
        assert_eq!(spread(500, &[0, 1000, 3000]), vec![0, 125, 375]);
        // 100 fen over 1 / 2 / 3 fen lines cannot exceed the amounts (discount < total).
        assert_eq!(spread(5, &[1, 2, 3]), vec![0, 2, 3]);
        assert_eq!(spread(0, &[10, 20]), vec![0, 0]);
        assert_eq!(spread(7, &[0, 0]), vec![0, 0]);
    }

    #[test]
    fn spread_property_sum_exact_no_negative_no_line_over_its_amount() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..20_000 {
            let n = (next(&mut seed) % 8 + 1) as usize;
            let amounts: Vec<i64> = (0..n)
                .map(|_| match next(&mut seed) % 4 {
                    0 => 0,
                    1 => (next(&mut seed) % 10) as i64 + 1,
                    _ => (next(&mut seed) % 1_000_000) as i64 + 1,
                })
                .collect();
            let total: i64 = amounts.iter().sum();
            if total == 0 {
                assert_eq!(spread(5, &amounts), vec![0; n]);
                continue;
            }
            let discount = (next(&mut seed) % total as u64) as i64;
            let shares = spread(discount, &amounts);
            assert_eq!(
                shares.iter().sum::<i64>(),
                discount,
                "{amounts:?} {discount}"
            );
            for (s, a) in shares.iter().zip(&amounts) {
                assert!(*s >= 0, "{amounts:?} {discount} {shares:?}");
                assert!(*s <= *a, "{amounts:?} {discount} {shares:?}");
                if *a == 0 {
                    assert_eq!(*s, 0);
                }
            }
            // Deterministic.
            assert_eq!(spread(discount, &amounts), shares);
            // Proportional: no share is more than one fen off its exact part.
            for (s, a) in shares.iter().zip(&amounts) {
                let exact = i128::from(discount) * i128::from(*a) / i128::from(total);
                assert!(i128::from(*s) - exact <= 1 && i128::from(*s) >= exact);
            }
        }
    }
}
