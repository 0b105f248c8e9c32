//! The member hierarchy: attaching a member (with its downline) under an upline, detaching
//! it, and letting expired bindings lapse — keeping `bindings`, `members.upline_id`, the
//! closure table `member_ancestors` and `team_counters` in step inside one transaction.
//!
//! Rules: at most one active upline (a partial unique index on `bindings`); never yourself
//! (CHECK constraints); never into your own downline (a recursive walk up from the new
//! upline). Every change first takes the `hierarchy` lock row, so two concurrent re-bindings
//! cannot each pass the cycle check against a tree the other is changing.
//!
//! Write cost: attaching or detaching a member touches one binding, one member row, and for
//! each member of its subtree within two levels, up to three closure rows and counter
//! updates. A new registration (no subtree) costs at most three closure rows and three
//! counter upserts; an admin re-binding a member with a huge team is proportionally dearer,
//! which is the price of team reads that stay constant.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use entity::{binding, member, member_ancestor, team_counter};
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QuerySelect, QueryTrait, Statement,
};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::events::{Event, Events};
use crate::service::catalog::insert_chunks;

/// Levels kept in the closure table (and offered by `team(level:)`).
pub const MAX_DEPTH: i16 = 3;

/// Serialises hierarchy changes: the first statement of every transaction that changes the
/// tree.
pub async fn lock(txn: &impl ConnectionTrait) -> Result<()> {
    txn.execute_unprepared("UPDATE write_locks SET version = version + 1 WHERE name = 'hierarchy'")
        .await?;
    Ok(())
}

/// `YYYY-MM` of a time, the team counters' period.
pub fn period(t: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", t.year(), t.month())
}

/// Whether making `upline` the upline of `member` would close a loop: `upline` is `member`
/// or sits anywhere in `member`'s downline (at any depth, not only the three the closure
/// table keeps).
pub async fn would_cycle(db: &impl ConnectionTrait, member: Uuid, upline: Uuid) -> Result<bool> {
    if member == upline {
        return Ok(true);
    }
    let backend = db.get_database_backend();
    let sql = "WITH RECURSIVE up(id, n) AS ( \
                 SELECT upline_id, 1 FROM members WHERE id = $1 \
                 UNION ALL \
                 SELECT m.upline_id, up.n + 1 FROM members m JOIN up ON m.id = up.id \
                 WHERE up.id IS NOT NULL AND up.n < 10000 \
               ) SELECT COUNT(*) AS hits FROM up WHERE id = $2";
    let sql = if backend == DbBackend::Sqlite {
        sql.replace('$', "?")
    } else {
        sql.to_owned()
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [upline.into(), member.into()],
        ))
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("cycle check returned no row")))?;
    let hits: i64 = row.try_get("", "hits")?;
    Ok(hits > 0)
}

/// The member's active binding at `now`, if any. A binding past its expiry is not active even
/// before the expiry job has ended it.
pub async fn active_binding(
    db: &impl ConnectionTrait,
    member: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<binding::Model>> {
    let found = binding::Entity::find()
        .filter(binding::Column::MemberId.eq(member))
        .filter(binding::Column::EndedAt.is_null())
        .one(db)
        .await?;
    Ok(found.filter(|b| b.expires_at.is_none_or(|e| e > now)))
}

/// The members above `member` (within three levels), nearest first: those whose team shows
/// it.
pub async fn uplines(db: &impl ConnectionTrait, member: Uuid) -> Result<Vec<Uuid>> {
    Ok(ancestors(db, member)
        .await?
        .into_iter()
        .map(|(a, _)| a)
        .collect())
}

/// (ancestor, depth) pairs above `member`, nearest first.
async fn ancestors(db: &impl ConnectionTrait, member: Uuid) -> Result<Vec<(Uuid, i16)>> {
    let rows = member_ancestor::Entity::find()
        .filter(member_ancestor::Column::DescendantId.eq(member))
        .all(db)
        .await?;
    let mut out: Vec<(Uuid, i16)> = rows.into_iter().map(|r| (r.ancestor_id, r.depth)).collect();
    out.sort_by_key(|(_, d)| *d);
    Ok(out)
}

/// `member` itself (depth 0) and its downline within `MAX_DEPTH - 1` levels: the part of a
/// subtree whose closure rows change when `member` moves.
async fn subtree(db: &impl ConnectionTrait, member: Uuid) -> Result<Vec<(Uuid, i16)>> {
    let rows = member_ancestor::Entity::find()
        .select_only()
        .column(member_ancestor::Column::DescendantId)
        .column(member_ancestor::Column::Depth)
        .filter(member_ancestor::Column::AncestorId.eq(member))
        .filter(member_ancestor::Column::Depth.lt(MAX_DEPTH))
        .into_tuple::<(Uuid, i16)>()
        .all(db)
        .await?;
    let mut out = vec![(member, 0)];
    out.extend(rows);
    Ok(out)
}

/// Adds `delta` members to each (ancestor, depth, period) counter, nearest ancestor first
/// (by depth, then key), the order in which payments and refunds move the same counters'
/// sales: so they never wait for each other in a circle.
async fn bump_counters(
    db: &impl ConnectionTrait,
    deltas: HashMap<(Uuid, i16, String), i64>,
) -> Result<()> {
    let mut deltas: Vec<_> = deltas.into_iter().collect();
    deltas.sort_by(|((a1, d1, p1), _), ((a2, d2, p2), _)| (d1, a1, p1).cmp(&(d2, a2, p2)));
    for ((ancestor, depth, period), delta) in deltas {
        if delta == 0 {
            continue;
        }
        db.execute(&add_to_team(ancestor, depth, period, delta, 0))
            .await?;
    }
    Ok(())
}

/// A new binding to record with [`attach`].
pub struct NewBinding {
    pub member: Uuid,
    pub upline: Uuid,
    pub kind: binding::Kind,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: Option<Uuid>,
}

/// Binds `b.member` (and its downline) under `b.upline`. Call inside a transaction that
/// took [`lock`]; the member must have no active binding. Adds the member and its new
/// uplines (whose teams grow) to `changed`.
pub async fn attach(
    txn: &impl ConnectionTrait,
    b: NewBinding,
    now: DateTime<Utc>,
    changed: &mut Vec<Uuid>,
) -> Result<binding::Model> {
    if would_cycle(txn, b.member, b.upline).await? {
        return Err(Error::rule(
            "BINDING_CYCLE",
            "a member cannot be bound to itself or into its own downline",
        ));
    }
    let model = binding::Model {
        id: Uuid::now_v7(),
        member_id: b.member,
        upline_id: b.upline,
        kind: b.kind,
        starts_at: now,
        expires_at: b.expires_at,
        ended_at: None,
        end_reason: None,
        created_by: b.created_by,
    };
    binding::Entity::insert(binding::ActiveModel::from(model.clone()))
        .exec_without_returning(txn)
        .await
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                Error::rule("ALREADY_BOUND", "the member already has an upline")
            } else {
                e.into()
            }
        })?;
    member::Entity::update_many()
        .col_expr(member::Column::UplineId, Expr::value(b.upline))
        .filter(member::Column::Id.eq(b.member))
        .exec(txn)
        .await?;

    let mut above = vec![(b.upline, 1i16)];
    above.extend(
        ancestors(txn, b.upline)
            .await?
            .into_iter()
            .map(|(a, d)| (a, d + 1))
            .filter(|(_, d)| *d <= MAX_DEPTH),
    );
    let below = subtree(txn, b.member).await?;
    let mut rows = Vec::new();
    let mut deltas: HashMap<(Uuid, i16, String), i64> = HashMap::new();
    for &(a, da) in &above {
        for &(d, dd) in &below {
            let depth = da + dd;
            if depth > MAX_DEPTH {
                continue;
            }
            rows.push(member_ancestor::ActiveModel {
                ancestor_id: Set(a),
                depth: Set(depth),
                descendant_id: Set(d),
                since: Set(now),
            });
            *deltas.entry((a, depth, period(now))).or_default() += 1;
        }
    }
    insert_chunks(txn, rows).await?;
    bump_counters(txn, deltas).await?;
    changed.push(b.member);
    changed.extend(above.iter().map(|(a, _)| *a));
    Ok(model)
}

/// Ends `member`'s active binding (`ended_at`, `reason`) and takes it, with its downline,
/// out of its former ancestors' teams. Call inside a transaction that took [`lock`]. Does
/// nothing when the member has no active binding. Adds the member and its former uplines
/// (whose teams shrink) to `changed`.
pub async fn detach(
    txn: &impl ConnectionTrait,
    member: Uuid,
    reason: binding::EndReason,
    ended_at: DateTime<Utc>,
    changed: &mut Vec<Uuid>,
) -> Result<Option<binding::Model>> {
    let Some(active) = binding::Entity::find()
        .filter(binding::Column::MemberId.eq(member))
        .filter(binding::Column::EndedAt.is_null())
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    binding::Entity::update_many()
        .col_expr(binding::Column::EndedAt, Expr::value(ended_at))
        .col_expr(binding::Column::EndReason, Expr::value(reason))
        .filter(binding::Column::Id.eq(active.id))
        .exec(txn)
        .await?;
    member::Entity::update_many()
        .col_expr(member::Column::UplineId, Expr::value(Option::<Uuid>::None))
        .filter(member::Column::Id.eq(member))
        .exec(txn)
        .await?;

    let above = ancestors(txn, member).await?;
    let below = subtree(txn, member).await?;
    let mut deltas: HashMap<(Uuid, i16, String), i64> = HashMap::new();
    for &(a, da) in &above {
        for chunk in below.chunks(500) {
            for depth_below in 0..=(MAX_DEPTH - da) {
                let ids: Vec<Uuid> = chunk
                    .iter()
                    .filter(|(_, dd)| *dd == depth_below)
                    .map(|(d, _)| *d)
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                let gone = member_ancestor::Entity::find()
                    .filter(member_ancestor::Column::AncestorId.eq(a))
                    .filter(member_ancestor::Column::Depth.eq(da + depth_below))
                    .filter(super::one_of(
                        txn,
                        member_ancestor::Column::DescendantId,
                        ids.clone(),
                    ))
                    .all(txn)
                    .await?;
                for row in &gone {
                    *deltas.entry((a, row.depth, period(row.since))).or_default() -= 1;
                }
                member_ancestor::Entity::delete_many()
                    .filter(member_ancestor::Column::AncestorId.eq(a))
                    .filter(member_ancestor::Column::Depth.eq(da + depth_below))
                    .filter(super::one_of(
                        txn,
                        member_ancestor::Column::DescendantId,
                        ids,
                    ))
                    .exec(txn)
                    .await?;
            }
        }
    }
    bump_counters(txn, deltas).await?;
    changed.push(member);
    changed.extend(above.iter().map(|(a, _)| *a));
    Ok(Some(binding::Model {
        ended_at: Some(ended_at),
        end_reason: Some(reason),
        ..active
    }))
}

/// Ends every binding whose period has run out by `now` (each at its own expiry time), in
/// batches, each binding in its own transaction. Idempotent and safe with several instances
/// running it at once (the lock row serialises them and each re-checks under the lock).
pub async fn expire_bindings(
    db: &DatabaseConnection,
    events: &Events,
    now: DateTime<Utc>,
) -> Result<usize> {
    let mut ended = 0;
    loop {
        let due = binding::Entity::find()
            .filter(binding::Column::EndedAt.is_null())
            .filter(binding::Column::ExpiresAt.lte(now))
            .limit(100)
            .all(db)
            .await?;
        if due.is_empty() {
            return Ok(ended);
        }
        for b in due {
            let txn = crate::db::begin_write(db).await?;
            lock(&txn).await?;
            let still_due = binding::Entity::find_by_id(b.id)
                .one(&txn)
                .await?
                .is_some_and(|cur| cur.ended_at.is_none());
            let mut changed = Vec::new();
            if still_due {
                detach(
                    &txn,
                    b.member_id,
                    binding::EndReason::Expired,
                    b.expires_at.unwrap_or(now),
                    &mut changed,
                )
                .await?;
                ended += 1;
            }
            txn.commit().await?;
            events.publish(Event::changed(changed, b.id)).await;
        }
    }
}

/// An admin's run of [`expire_bindings`], audited. The run is a transaction per binding, so
/// its entry is written once the run finished, in a transaction of its own, with how many
/// bindings it ended (each ended binding keeps its own record: `ended_at`, `end_reason`).
pub async fn expire_bindings_audited(
    db: &DatabaseConnection,
    events: &Events,
    actor: &super::audit::Actor,
    now: DateTime<Utc>,
) -> Result<usize> {
    let ended = expire_bindings(db, events, now).await?;
    super::audit::record(
        db,
        actor,
        super::audit::Action::BindingsExpired,
        None,
        serde_json::json!({ "ended": ended }),
        now,
    )
    .await?;
    Ok(ended)
}

/// Ends `member`'s binding if it has expired by `now` (so that a new binding can be made
/// without waiting for the expiry job). Call inside a transaction that took [`lock`]. Adds
/// whom it changes to `changed` ([`detach`]).
pub async fn lapse_if_expired(
    txn: &impl ConnectionTrait,
    member: Uuid,
    now: DateTime<Utc>,
    changed: &mut Vec<Uuid>,
) -> Result<()> {
    let current = binding::Entity::find()
        .filter(binding::Column::MemberId.eq(member))
        .filter(binding::Column::EndedAt.is_null())
        .one(txn)
        .await?;
    if let Some(b) = current
        && let Some(expires) = b.expires_at
        && expires <= now
    {
        detach(txn, member, binding::EndReason::Expired, expires, changed).await?;
    }
    Ok(())
}

/// Adds `fen` to the team sales of every ancestor of `member` (within three levels) for the
/// month of `at`. Call in the transaction that pays (positive) or refunds (negative). Adds
/// those ancestors to `changed`.
pub async fn add_team_sales(
    txn: &impl ConnectionTrait,
    member: Uuid,
    fen: i64,
    at: DateTime<Utc>,
    changed: &mut Vec<Uuid>,
) -> Result<()> {
    for upsert in team_sales(txn, member, fen, at, changed).await? {
        txn.execute(&upsert).await?;
    }
    Ok(())
}

/// The upserts [`add_team_sales`] runs, one per ancestor, nearest first (for callers that
/// run them later, in a batch).
pub async fn team_sales(
    txn: &impl ConnectionTrait,
    member: Uuid,
    fen: i64,
    at: DateTime<Utc>,
    changed: &mut Vec<Uuid>,
) -> Result<Vec<InsertStatement>> {
    if fen == 0 {
        return Ok(Vec::new());
    }
    let mut upserts = Vec::new();
    for (ancestor, depth) in ancestors(txn, member).await? {
        changed.push(ancestor);
        upserts.push(add_to_team(ancestor, depth, period(at), 0, fen));
    }
    Ok(upserts)
}

/// Adds `members` and `sales` (fen) to one (ancestor, depth, period) team counter, creating
/// it if needed.
fn add_to_team(
    ancestor: Uuid,
    depth: i16,
    period: String,
    members: i64,
    sales: i64,
) -> InsertStatement {
    let add = |c: team_counter::Column, n: i64| Expr::col((team_counter::Entity, c)).add(n);
    team_counter::Entity::insert(team_counter::ActiveModel {
        ancestor_id: Set(ancestor),
        depth: Set(depth),
        period: Set(period),
        members: Set(members),
        sales: Set(sales),
    })
    .on_conflict(
        OnConflict::columns([
            team_counter::Column::AncestorId,
            team_counter::Column::Depth,
            team_counter::Column::Period,
        ])
        .value(
            team_counter::Column::Members,
            add(team_counter::Column::Members, members),
        )
        .value(
            team_counter::Column::Sales,
            add(team_counter::Column::Sales, sales),
        )
        .to_owned(),
    )
    .into_query()
}
