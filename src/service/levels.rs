//! Push-hand levels (推手等级): levels admins define, and where each push-hand and partner
//! stands.
//!
//! - **The condition is money, never headcount** (禁止传销条例: pay or rank for recruiting
//!   is pyramid selling). A level is reached on **settled, net sales** over a rolling period:
//!   `minSales` is required and above zero (a CHECK in the database too); `minTeamMembers` is
//!   only ever an extra condition beside it. A member's sales are its own purchases and its
//!   team's within the commission levels (descendants at depth 1 to `commission_levels - 1`,
//!   at least the direct team, through the closure table), counted per order line:
//!   - *settled*: the order completed and its return window has passed (the moment its
//!     earnings may settle), and no after-sale of the line is open;
//!   - *in the period*: that moment lies within the last `periodDays` days;
//!   - *net*: the line's paid amount (after its coupon share, shipping never included) less
//!     what its refunds gave back (`paid × refunded units / units`, rounded as the refunds
//!     round), so a refund lowers it, even after settlement.
//! - **Evaluation** ([`evaluate`]): the highest-ranked level whose conditions hold is the
//!   member's *qualified* level. Above its current level, the member moves up at once. Below
//!   it, the grace period starts (`short_since`); only when the current level's `graceDays`
//!   have passed with the member still short does it move down (to what it then qualifies
//!   for). Qualifying again during the grace period ends it. A level change is audited
//!   (`MEMBER_LEVEL_CHANGED`, by the server). Evaluation runs daily in every instance, after
//!   each settlement (for the members whose sales it may have moved: the buyers of orders
//!   that became settled and their uplines), and on `runLevelEvaluation`. Every write is
//!   conditional on the row as read, so concurrent evaluations of one member — on one
//!   instance or several — write one outcome.
//! - **A level grants privileges, not rates**: it carries no rebate bonus, so no line's
//!   payout ever moves, let alone past the 30 % cap; its privileges ([`super::privileges`])
//!   are granted by the evaluation, once per rule and period.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use entity::{Money, after_sale, level, member, member_ancestor, member_level, order, order_line};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, JoinType,
    QueryFilter, QueryOrder, QuerySelect, RelationDef,
};
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use crate::error::{Error, FieldErrors, Result};
use crate::events::{Event, Events, Kind as EventKind};

/// The longest level name, in characters.
pub const MAX_NAME_CHARS: usize = 40;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Ranks run 1 to this.
pub const MAX_RANK: i32 = 100;
/// The longest rolling period and grace period, in days.
pub const MAX_DAYS: i32 = 366;
/// The most team members a level may ask for (besides its sales).
pub const MAX_TEAM_MEMBERS: i32 = 1_000_000;

/// What evaluation needs of the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// How many levels earn on a sale (1–3): the team counted is the descendants at depth 1
    /// to `commission_levels - 1` (at least 1).
    pub commission_levels: u8,
    /// Days after completion before a sale's earnings may settle.
    pub return_window: Duration,
}

impl Policy {
    /// The deepest team level whose purchases count.
    pub fn team_depth(&self) -> i16 {
        std::cmp::max(i16::from(self.commission_levels) - 1, 1)
    }
}

/// A level as an admin gives it (values not yet checked).
pub struct LevelInput {
    pub name: String,
    pub rank: i32,
    /// Parsed by the API (its error is reported with the others).
    pub min_sales: Result<Decimal>,
    pub period_days: i32,
    pub grace_days: i32,
    pub min_team_members: Option<i32>,
    pub description: Option<String>,
}

/// Checks every field at once (`VALIDATION` naming each bad `input.<field>`), and that no
/// other level (`other` than `id`) has the name or the rank.
async fn check(
    db: &impl ConnectionTrait,
    id: Option<Uuid>,
    input: LevelInput,
    now: DateTime<Utc>,
) -> Result<level::Model> {
    let mut errors = FieldErrors::default();
    let name = errors.check(super::text::name("input.name", &input.name, MAX_NAME_CHARS));
    let min_sales = errors
        .check(input.min_sales)
        .and_then(|d| match Money::from_decimal(d) {
            Some(m) if m.fen() > 0 => Some(m),
            Some(_) => {
                errors.push(
                    "input.minSales",
                    "must be above zero: a level is reached on sales, never on headcount alone",
                );
                None
            }
            None => {
                errors.push(
                    "input.minSales",
                    "must be an amount in CNY with at most two decimals",
                );
                None
            }
        });
    if !(1..=MAX_RANK).contains(&input.rank) {
        errors.push("input.rank", format!("must be 1 to {MAX_RANK}"));
    }
    if !(1..=MAX_DAYS).contains(&input.period_days) {
        errors.push("input.periodDays", format!("must be 1 to {MAX_DAYS} days"));
    }
    if !(0..=MAX_DAYS).contains(&input.grace_days) {
        errors.push("input.graceDays", format!("must be 0 to {MAX_DAYS} days"));
    }
    let team = input.min_team_members.unwrap_or(0);
    if !(0..=MAX_TEAM_MEMBERS).contains(&team) {
        errors.push(
            "input.minTeamMembers",
            format!("must be 0 to {MAX_TEAM_MEMBERS}"),
        );
    }
    let description = match input.description.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => {
            errors.push(
                "input.description",
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            );
            None
        }
        Some(d) => Some(d.to_owned()),
    };
    if let Some(n) = &name {
        let taken = level::Entity::find()
            .filter(level::Column::Name.eq(n.as_str()))
            .one(db)
            .await?;
        if taken.is_some_and(|l| Some(l.id) != id) {
            errors.push("input.name", "another level has this name");
        }
    }
    if (1..=MAX_RANK).contains(&input.rank) {
        let taken = level::Entity::find()
            .filter(level::Column::Rank.eq(input.rank))
            .one(db)
            .await?;
        if taken.is_some_and(|l| Some(l.id) != id) {
            errors.push("input.rank", "another level has this rank");
        }
    }
    errors.finish()?;
    Ok(level::Model {
        id: id.unwrap_or_else(Uuid::now_v7),
        name: name.unwrap_or_default(),
        rank: input.rank,
        min_sales: min_sales.unwrap_or(Money::ZERO),
        period_days: input.period_days,
        min_team_members: team,
        grace_days: input.grace_days,
        description,
        created_at: now,
        updated_at: now,
    })
}

fn terms(l: &level::Model) -> serde_json::Value {
    serde_json::json!({
        "name": l.name,
        "rank": l.rank,
        "minSales": l.min_sales.to_decimal().to_string(),
        "periodDays": l.period_days,
        "minTeamMembers": l.min_team_members,
        "graceDays": l.grace_days,
    })
}

/// A name or rank another write took meanwhile (the unique indexes decide).
fn taken(e: sea_orm::DbErr) -> Error {
    if crate::db::is_unique_violation(&e) {
        Error::validation("input.rank", "another level has this name or rank")
    } else {
        e.into()
    }
}

/// Creates a level (audited in its transaction).
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    input: LevelInput,
    now: DateTime<Utc>,
) -> Result<level::Model> {
    let l = check(db, None, input, now).await?;
    let txn = crate::db::begin_write(db).await?;
    level::Entity::insert(level::ActiveModel::from(l.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(taken)?;
    audit::record(
        &txn,
        actor,
        Action::LevelCreated,
        Some((TargetType::Level, l.id)),
        terms(&l),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(l)
}

/// Replaces a level's terms (audited with the previous ones). Members are moved by their
/// next evaluation, as for any change of their sales.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    input: LevelInput,
    now: DateTime<Utc>,
) -> Result<level::Model> {
    let before = get(db, id).await?;
    let mut l = check(db, Some(id), input, now).await?;
    l.created_at = before.created_at;
    let txn = crate::db::begin_write(db).await?;
    level::Entity::update(level::ActiveModel {
        id: Set(id),
        name: Set(l.name.clone()),
        rank: Set(l.rank),
        min_sales: Set(l.min_sales),
        period_days: Set(l.period_days),
        min_team_members: Set(l.min_team_members),
        grace_days: Set(l.grace_days),
        description: Set(l.description.clone()),
        updated_at: Set(now),
        created_at: sea_orm::ActiveValue::NotSet,
    })
    .exec(&txn)
    .await
    .map_err(taken)?;
    audit::record(
        &txn,
        actor,
        Action::LevelUpdated,
        Some((TargetType::Level, id)),
        serde_json::json!({ "terms": terms(&l), "previous": terms(&before) }),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(l)
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<level::Model> {
    level::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("level"))
}

/// Every level, lowest rank first.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<level::Model>> {
    Ok(level::Entity::find()
        .order_by_asc(level::Column::Rank)
        .all(db)
        .await?)
}

/// The relation of an order line to its order (the entities declare none).
fn line_to_order() -> RelationDef {
    order_line::Entity::belongs_to(order::Entity)
        .from(order_line::Column::OrderId)
        .to(order::Column::Id)
        .into()
}

/// `member`'s settled, net sales whose settlement moment lies in the last `period_days`
/// days before `now` (see the module's documentation), in one statement.
pub async fn net_sales(
    db: &impl ConnectionTrait,
    policy: &Policy,
    member: Uuid,
    period_days: i32,
    now: DateTime<Utc>,
) -> Result<Money> {
    let settled_by = now - policy.return_window;
    let from = settled_by - Duration::days(i64::from(period_days));
    let team = Query::select()
        .column(member_ancestor::Column::DescendantId)
        .from(member_ancestor::Entity)
        .and_where(member_ancestor::Column::AncestorId.eq(member))
        .and_where(member_ancestor::Column::Depth.lte(policy.team_depth()))
        .to_owned();
    let open = Query::select()
        .column(after_sale::Column::OrderLineId)
        .from(after_sale::Entity)
        .and_where(after_sale::Column::Status.is_in(after_sale::Status::OPEN))
        .to_owned();
    // paid − floor(paid × refunded / units): integer division on both stores.
    let net = "CAST(COALESCE(SUM((order_lines.amount - order_lines.coupon_share) \
               - (order_lines.amount - order_lines.coupon_share) * order_lines.refunded_quantity \
               / order_lines.quantity), 0) AS BIGINT)";
    let fen: Option<i64> = order_line::Entity::find()
        .select_only()
        .column_as(Expr::cust(net), "net")
        .join(JoinType::InnerJoin, line_to_order())
        .filter(
            sea_orm::Condition::any()
                .add(order::Column::BuyerId.eq(member))
                .add(order::Column::BuyerId.in_subquery(team)),
        )
        .filter(order::Column::CompletedAt.gt(from))
        .filter(order::Column::CompletedAt.lte(settled_by))
        .filter(order_line::Column::Id.not_in_subquery(open))
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(Money::from_fen(fen.unwrap_or(0)))
}

/// How many members `member`'s counted team holds.
pub async fn team_size(db: &impl ConnectionTrait, policy: &Policy, member: Uuid) -> Result<i64> {
    use sea_orm::PaginatorTrait;
    Ok(member_ancestor::Entity::find()
        .filter(member_ancestor::Column::AncestorId.eq(member))
        .filter(member_ancestor::Column::Depth.lte(policy.team_depth()))
        .count(db)
        .await? as i64)
}

/// A member's figures against the levels: sales per distinct period, and the team size.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub sales: HashMap<i32, Money>,
    pub team: i64,
}

impl Figures {
    pub fn sales_for(&self, l: &level::Model) -> Money {
        self.sales
            .get(&l.period_days)
            .copied()
            .unwrap_or(Money::ZERO)
    }

    pub fn meets(&self, l: &level::Model) -> bool {
        self.sales_for(l) >= l.min_sales && self.team >= i64::from(l.min_team_members)
    }
}

/// `member`'s figures for `levels` (one statement per distinct period, one for the team
/// when a level asks for one).
pub async fn figures(
    db: &impl ConnectionTrait,
    policy: &Policy,
    member: Uuid,
    levels: &[level::Model],
    now: DateTime<Utc>,
) -> Result<Figures> {
    let mut f = Figures::default();
    let periods: HashSet<i32> = levels.iter().map(|l| l.period_days).collect();
    for p in periods {
        f.sales
            .insert(p, net_sales(db, policy, member, p, now).await?);
    }
    if levels.iter().any(|l| l.min_team_members > 0) {
        f.team = team_size(db, policy, member).await?;
    }
    Ok(f)
}

/// Where a member stands, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    pub level: Option<Uuid>,
    pub since: DateTime<Utc>,
    pub short_since: Option<DateTime<Utc>>,
}

/// The next state of a member in `current` (none: never evaluated) that qualifies for
/// `qualified` at `now`, with `levels` by id; `None` when nothing changes. Reads nothing.
pub fn decide(
    current: Option<State>,
    qualified: Option<&level::Model>,
    levels: &HashMap<Uuid, level::Model>,
    now: DateTime<Utc>,
) -> Option<State> {
    let to = |l: Option<&level::Model>| State {
        level: l.map(|l| l.id),
        since: now,
        short_since: None,
    };
    let Some(cur) = current else {
        return Some(to(qualified));
    };
    let held = cur.level.and_then(|id| levels.get(&id));
    let rank = |l: Option<&level::Model>| l.map_or(0, |l| l.rank);
    match rank(qualified).cmp(&rank(held)) {
        std::cmp::Ordering::Greater => Some(to(qualified)),
        std::cmp::Ordering::Equal if cur.level.is_some() && held.is_none() => {
            // The level held is gone (cannot happen: levels are never deleted).
            Some(to(qualified))
        }
        std::cmp::Ordering::Equal => cur.short_since.map(|_| State {
            short_since: None,
            ..cur
        }),
        std::cmp::Ordering::Less => {
            let Some(held) = held else {
                return Some(to(qualified));
            };
            match cur.short_since {
                None => Some(State {
                    short_since: Some(now),
                    ..cur
                }),
                Some(short) if now >= short + Duration::days(i64::from(held.grace_days)) => {
                    Some(to(qualified))
                }
                Some(_) => None,
            }
        }
    }
}

/// What one evaluation found and did.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub member: Uuid,
    /// The level held after it.
    pub level: Option<Uuid>,
    /// Whether the level changed.
    pub changed: bool,
    /// Privileges granted (or given back) by it.
    pub granted: usize,
    /// Privileges revoked by it.
    pub revoked: usize,
}

/// Evaluates `member`'s level at `now` and grants the privileges it and its partner status
/// bring (see the module's documentation). Buyers hold no level; staff are members too.
/// `NOT_FOUND` for an unknown member.
pub async fn evaluate(
    db: &DatabaseConnection,
    events: &Events,
    policy: &Policy,
    member_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Evaluation> {
    let m = member::Entity::find_by_id(member_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    let levels = list(db).await?;
    let by_id: HashMap<Uuid, level::Model> = levels.iter().map(|l| (l.id, l.clone())).collect();
    let in_programme = m.tier != member::Tier::Buyer;
    let figures = if in_programme && !levels.is_empty() {
        figures(db, policy, m.id, &levels, now).await?
    } else {
        Figures::default()
    };
    let qualified = if in_programme {
        levels.iter().rev().find(|l| figures.meets(l))
    } else {
        None
    };
    let row = member_level::Entity::find_by_id(m.id).one(db).await?;
    let current = row.as_ref().map(|r| State {
        level: r.level_id,
        since: r.since,
        short_since: r.short_since,
    });
    let shown_sales = levels.first().map_or(Money::ZERO, |l| figures.sales_for(l));
    let mut changed = false;
    let mut held = current.and_then(|c| c.level);
    // A buyer never evaluated stays without a row.
    let next = if current.is_none() && qualified.is_none() && !in_programme {
        None
    } else {
        decide(current, qualified, &by_id, now)
    };
    if let Some(next) = next {
        let txn = crate::db::begin_write(db).await?;
        let written = match current {
            None => {
                member_level::Entity::insert(member_level::ActiveModel {
                    member_id: Set(m.id),
                    level_id: Set(next.level),
                    since: Set(next.since),
                    short_since: Set(next.short_since),
                    sales: Set(shown_sales),
                    evaluated_at: Set(now),
                })
                .on_conflict(
                    OnConflict::column(member_level::Column::MemberId)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?
            }
            Some(cur) => {
                let mut q = member_level::Entity::update_many()
                    .col_expr(member_level::Column::LevelId, Expr::value(next.level))
                    .col_expr(member_level::Column::Since, Expr::value(next.since))
                    .col_expr(
                        member_level::Column::ShortSince,
                        Expr::value(next.short_since),
                    )
                    .col_expr(member_level::Column::Sales, Expr::value(shown_sales))
                    .col_expr(member_level::Column::EvaluatedAt, Expr::value(now))
                    .filter(member_level::Column::MemberId.eq(m.id))
                    .filter(member_level::Column::Since.eq(cur.since));
                q = match cur.level {
                    Some(l) => q.filter(member_level::Column::LevelId.eq(l)),
                    None => q.filter(member_level::Column::LevelId.is_null()),
                };
                q = match cur.short_since {
                    Some(s) => q.filter(member_level::Column::ShortSince.eq(s)),
                    None => q.filter(member_level::Column::ShortSince.is_null()),
                };
                q.exec(&txn).await?.rows_affected
            }
        };
        // Another evaluation wrote first: it decided from the same figures.
        if written == 1 && next.level != current.and_then(|c| c.level) {
            let name = |id: Option<Uuid>| id.and_then(|id| by_id.get(&id)).map(|l| l.name.clone());
            audit::record_by(
                &txn,
                None,
                Action::MemberLevelChanged,
                Some((TargetType::Member, m.id)),
                serde_json::json!({
                    "from": name(current.and_then(|c| c.level)),
                    "to": name(next.level),
                    "sales": shown_sales.to_decimal().to_string(),
                }),
                now,
            )
            .await?;
            changed = true;
        }
        txn.commit().await?;
        if written == 1 {
            held = next.level;
            events
                .publish(vec![Event::new(m.id, EventKind::OwnChanged, m.id)])
                .await;
        } else {
            held = member_level::Entity::find_by_id(m.id)
                .one(db)
                .await?
                .and_then(|r| r.level_id);
        }
    } else if row.is_some() {
        member_level::Entity::update_many()
            .col_expr(member_level::Column::Sales, Expr::value(shown_sales))
            .col_expr(member_level::Column::EvaluatedAt, Expr::value(now))
            .filter(member_level::Column::MemberId.eq(m.id))
            .exec(db)
            .await?;
    }
    let (granted, revoked) = super::privileges::grant_due(db, events, &m, held, now).await?;
    Ok(Evaluation {
        member: m.id,
        level: held,
        changed,
        granted,
        revoked,
    })
}

/// How many members one page of [`evaluate_all`] reads.
const PAGE: u64 = 500;

/// Evaluates every push-hand and partner, and every member that holds a level row (the
/// daily run, and `runLevelEvaluation`). Returns how many it evaluated. One member's
/// failure is logged and the run goes on.
pub async fn evaluate_all(
    db: &DatabaseConnection,
    events: &Events,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<usize> {
    let mut after: Option<Uuid> = None;
    let mut n = 0;
    loop {
        let mut q = member::Entity::find()
            .select_only()
            .column(member::Column::Id)
            .filter(
                sea_orm::Condition::any()
                    .add(member::Column::Tier.ne(member::Tier::Buyer))
                    .add(
                        member::Column::Id.in_subquery(
                            Query::select()
                                .column(member_level::Column::MemberId)
                                .from(member_level::Entity)
                                .to_owned(),
                        ),
                    ),
            )
            .order_by_asc(member::Column::Id)
            .limit(PAGE);
        if let Some(a) = after {
            q = q.filter(member::Column::Id.gt(a));
        }
        let ids: Vec<Uuid> = q.into_tuple().all(db).await?;
        let Some(last) = ids.last().copied() else {
            return Ok(n);
        };
        for id in ids {
            match evaluate(db, events, policy, id, now).await {
                Ok(_) => n += 1,
                Err(e) => tracing::warn!(member = %id, error = ?e, "level evaluation failed"),
            }
        }
        after = Some(last);
    }
}

/// An admin's run of [`evaluate_all`], audited once it finished (the run is a transaction
/// per member).
pub async fn evaluate_all_audited(
    db: &DatabaseConnection,
    events: &Events,
    policy: &Policy,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<usize> {
    let n = evaluate_all(db, events, policy, now).await?;
    audit::record(
        db,
        actor,
        Action::LevelEvaluationRun,
        None,
        serde_json::json!({ "evaluated": n }),
        now,
    )
    .await?;
    Ok(n)
}

/// After a settlement: evaluates the members whose sales became settled in `(from, to]` —
/// the buyers of orders whose return window ended then, and their uplines within the
/// counted depth. Returns how many it evaluated.
pub async fn evaluate_settled(
    db: &DatabaseConnection,
    events: &Events,
    policy: &Policy,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize> {
    let buyers: Vec<Uuid> = order::Entity::find()
        .select_only()
        .column(order::Column::BuyerId)
        .distinct()
        .filter(order::Column::CompletedAt.gt(from - policy.return_window))
        .filter(order::Column::CompletedAt.lte(to - policy.return_window))
        .into_tuple()
        .all(db)
        .await?;
    if buyers.is_empty() {
        return Ok(0);
    }
    let mut who: Vec<Uuid> = buyers.clone();
    for chunk in buyers.chunks(500) {
        let uplines: Vec<Uuid> = member_ancestor::Entity::find()
            .select_only()
            .column(member_ancestor::Column::AncestorId)
            .distinct()
            .filter(member_ancestor::Column::DescendantId.is_in(chunk.iter().copied()))
            .filter(member_ancestor::Column::Depth.lte(policy.team_depth()))
            .into_tuple()
            .all(db)
            .await?;
        who.extend(uplines);
    }
    who.sort();
    who.dedup();
    let mut n = 0;
    for id in who {
        match evaluate(db, events, policy, id, now).await {
            Ok(_) => n += 1,
            Err(e) => tracing::warn!(member = %id, error = ?e, "level evaluation failed"),
        }
    }
    Ok(n)
}

/// A member's standing as `me.level` shows it: the level held (none below the first), since
/// when, the grace period's end while short of it, and the next level with the progress
/// towards it (live figures).
#[derive(Clone, Debug)]
pub struct Standing {
    pub level: Option<level::Model>,
    pub since: Option<DateTime<Utc>>,
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// Sales over the held level's period (or the first level's below it).
    pub sales: Money,
    pub next: Option<Next>,
}

/// The next level up and what is missing for it.
#[derive(Clone, Debug)]
pub struct Next {
    pub level: level::Model,
    pub sales: Money,
    pub team: i64,
    /// Sales over its minimum, 0 to 1 (rounded down to four decimals).
    pub progress: Decimal,
    pub missing_sales: Money,
    pub missing_team_members: i64,
}

/// `member`'s standing (`None` for a buyer, or when no level exists).
pub async fn standing(
    db: &impl ConnectionTrait,
    policy: &Policy,
    m: &member::Model,
    now: DateTime<Utc>,
) -> Result<Option<Standing>> {
    if m.tier == member::Tier::Buyer {
        return Ok(None);
    }
    let levels = list(db).await?;
    if levels.is_empty() {
        return Ok(None);
    }
    let row = member_level::Entity::find_by_id(m.id).one(db).await?;
    let held = row
        .as_ref()
        .and_then(|r| r.level_id)
        .and_then(|id| levels.iter().find(|l| l.id == id))
        .cloned();
    let next = levels
        .iter()
        .find(|l| l.rank > held.as_ref().map_or(0, |h| h.rank))
        .cloned();
    let mut wanted: Vec<level::Model> = next.iter().cloned().collect();
    wanted.push(held.clone().unwrap_or_else(|| levels[0].clone()));
    let f = figures(db, policy, m.id, &wanted, now).await?;
    let next = next.map(|l| {
        let sales = f.sales_for(&l);
        let progress = std::cmp::min(
            Decimal::ONE,
            (Decimal::from(sales.fen()) / Decimal::from(l.min_sales.fen().max(1)))
                .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::ToZero),
        );
        Next {
            sales,
            team: f.team,
            progress,
            missing_sales: Money::from_fen((l.min_sales.fen() - sales.fen()).max(0)),
            missing_team_members: (i64::from(l.min_team_members) - f.team).max(0),
            level: l,
        }
    });
    let grace_ends_at = match (&held, row.as_ref().and_then(|r| r.short_since)) {
        (Some(h), Some(s)) => Some(s + Duration::days(i64::from(h.grace_days))),
        _ => None,
    };
    Ok(Some(Standing {
        sales: f.sales_for(held.as_ref().unwrap_or(&levels[0])),
        since: held.as_ref().and(row.as_ref().map(|r| r.since)),
        level: held,
        grace_ends_at,
        next,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lvl(rank: i32, grace: i32) -> level::Model {
        let now = crate::service::now();
        level::Model {
            id: Uuid::now_v7(),
            name: format!("L{rank}"),
            rank,
            min_sales: Money::from_fen(100),
            period_days: 30,
            min_team_members: 0,
            grace_days: grace,
            description: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn up_at_once_down_only_after_the_grace_period() {
        let (l1, l2) = (lvl(1, 10), lvl(2, 10));
        let by_id: HashMap<Uuid, level::Model> = [(l1.id, l1.clone()), (l2.id, l2.clone())].into();
        let t0 = crate::service::now();
        // First evaluation: whatever qualifies, even nothing.
        let s = decide(None, Some(&l1), &by_id, t0).expect("first");
        assert_eq!(s.level, Some(l1.id));
        // Up at once.
        let s = decide(Some(s), Some(&l2), &by_id, t0).expect("up");
        assert_eq!((s.level, s.short_since), (Some(l2.id), None));
        // Short: the grace period starts, the level stays.
        let t1 = t0 + Duration::days(1);
        let short = decide(Some(s), Some(&l1), &by_id, t1).expect("short");
        assert_eq!((short.level, short.short_since), (Some(l2.id), Some(t1)));
        // Still inside it: nothing changes.
        assert_eq!(
            decide(Some(short), None, &by_id, t1 + Duration::days(9)),
            None
        );
        // Qualifying again ends it.
        let back = decide(Some(short), Some(&l2), &by_id, t1 + Duration::days(5)).expect("back");
        assert_eq!((back.level, back.short_since), (Some(l2.id), None));
        // Past it: down to what qualifies then.
        let down = decide(Some(short), Some(&l1), &by_id, t1 + Duration::days(10)).expect("down");
        assert_eq!((down.level, down.short_since), (Some(l1.id), None));
        // Nothing at all qualifies.
        let none = decide(Some(short), None, &by_id, t1 + Duration::days(10)).expect("none");
        assert_eq!(none.level, None);
    }
}
