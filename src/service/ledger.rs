//! The ledger: every movement of a member's money is an appended entry with its effect on each
//! balance column, and the member's balance row moves by the same amounts in the same
//! transaction. [`check`] recomputes every balance from the entries and reports differences.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use entity::{Money, balance, ledger_entry};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, Statement,
};
use uuid::Uuid;

use crate::error::{Error, Result};

/// How one entry moves each balance column, in fen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deltas {
    pub pending: i64,
    pub available: i64,
    pub reserved: i64,
    pub withdrawn: i64,
    pub lifetime: i64,
}

/// Why an entry exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Earned,
    Settled,
    Reversed,
    Adjusted,
    WithdrawalRequested,
    WithdrawalFee,
    WithdrawalPaid,
    WithdrawalRejected,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Earned => "EARNED",
            Event::Settled => "SETTLED",
            Event::Reversed => "REVERSED",
            Event::Adjusted => "ADJUSTED",
            Event::WithdrawalRequested => "WITHDRAWAL_REQUESTED",
            Event::WithdrawalFee => "WITHDRAWAL_FEE",
            Event::WithdrawalPaid => "WITHDRAWAL_PAID",
            Event::WithdrawalRejected => "WITHDRAWAL_REJECTED",
        }
    }
}

/// What an entry refers to.
#[derive(Clone, Copy, Debug, Default)]
pub struct Refs {
    pub earning: Option<Uuid>,
    pub withdrawal: Option<Uuid>,
}

/// Appends an entry without touching the balance row (for callers that already moved the
/// balance with a conditional update, such as a withdrawal's reservation).
pub async fn append(
    txn: &impl ConnectionTrait,
    member: Uuid,
    event: Event,
    refs: Refs,
    d: Deltas,
    now: DateTime<Utc>,
) -> Result<()> {
    ledger_entry::Entity::insert(ledger_entry::ActiveModel {
        id: Set(Uuid::now_v7()),
        member_id: Set(member),
        event: Set(event.as_str().to_owned()),
        earning_id: Set(refs.earning),
        withdrawal_id: Set(refs.withdrawal),
        pending_delta: Set(Money::from_fen(d.pending)),
        available_delta: Set(Money::from_fen(d.available)),
        reserved_delta: Set(Money::from_fen(d.reserved)),
        withdrawn_delta: Set(Money::from_fen(d.withdrawn)),
        lifetime_delta: Set(Money::from_fen(d.lifetime)),
        created_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Appends an entry and moves the member's balances by it (creating the row if needed).
pub async fn book(
    txn: &impl ConnectionTrait,
    member: Uuid,
    event: Event,
    refs: Refs,
    d: Deltas,
    now: DateTime<Utc>,
) -> Result<()> {
    append(txn, member, event, refs, d, now).await?;
    let add = |c: &str| Expr::cust(format!("balances.{c} + excluded.{c}"));
    balance::Entity::insert(balance::ActiveModel {
        member_id: Set(member),
        pending: Set(Money::from_fen(d.pending)),
        available: Set(Money::from_fen(d.available)),
        reserved: Set(Money::from_fen(d.reserved)),
        withdrawn: Set(Money::from_fen(d.withdrawn)),
        lifetime: Set(Money::from_fen(d.lifetime)),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(balance::Column::MemberId)
            .value(balance::Column::Pending, add("pending"))
            .value(balance::Column::Available, add("available"))
            .value(balance::Column::Reserved, add("reserved"))
            .value(balance::Column::Withdrawn, add("withdrawn"))
            .value(balance::Column::Lifetime, add("lifetime"))
            .value(
                balance::Column::UpdatedAt,
                Expr::cust("excluded.updated_at"),
            )
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// A member's balances and this month's net earnings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub pending: Money,
    pub available: Money,
    pub reserved: Money,
    pub withdrawn: Money,
    pub lifetime: Money,
    /// Net earnings booked since the start of the current month (UTC).
    pub this_month: Money,
}

#[derive(FromQueryResult)]
struct Sum {
    total: Option<i64>,
}

pub async fn summary(
    db: &impl ConnectionTrait,
    member: Uuid,
    now: DateTime<Utc>,
) -> Result<Summary> {
    let row = balance::Entity::find_by_id(member).one(db).await?;
    let month_start = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("month start of {now}")))?;
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT CAST(SUM(lifetime_delta) AS BIGINT) AS total FROM ledger_entries WHERE member_id = $1 AND created_at >= $2"
        }
        _ => {
            "SELECT SUM(lifetime_delta) AS total FROM ledger_entries WHERE member_id = ? AND created_at >= ?"
        }
    };
    let month = Sum::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [member.into(), month_start.into()],
    ))
    .one(db)
    .await?
    .and_then(|s| s.total)
    .unwrap_or(0);
    Ok(match row {
        Some(b) => Summary {
            pending: b.pending,
            available: b.available,
            reserved: b.reserved,
            withdrawn: b.withdrawn,
            lifetime: b.lifetime,
            this_month: Money::from_fen(month),
        },
        None => Summary::default(),
    })
}

/// A member whose stored balances differ from the sum of its ledger entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub member_id: Uuid,
    pub stored: Deltas,
    pub from_ledger: Deltas,
}

#[derive(FromQueryResult)]
struct Folded {
    member_id: Uuid,
    pending: Option<i64>,
    available: Option<i64>,
    reserved: Option<i64>,
    withdrawn: Option<i64>,
    lifetime: Option<i64>,
}

/// Recomputes every member's balances from the ledger and returns those that disagree with
/// the stored balance rows (an empty list means the books balance). Returns how many members
/// were checked.
pub async fn check(db: &impl ConnectionTrait) -> Result<(usize, Vec<Mismatch>)> {
    let backend = db.get_database_backend();
    let cast = |c: &str| match backend {
        DbBackend::Postgres => format!("CAST(SUM({c}_delta) AS BIGINT) AS {c}"),
        _ => format!("SUM({c}_delta) AS {c}"),
    };
    let sql = format!(
        "SELECT member_id, {}, {}, {}, {}, {} FROM ledger_entries GROUP BY member_id",
        cast("pending"),
        cast("available"),
        cast("reserved"),
        cast("withdrawn"),
        cast("lifetime")
    );
    let folded = Folded::find_by_statement(Statement::from_string(backend, sql))
        .all(db)
        .await?;
    let stored: std::collections::HashMap<Uuid, balance::Model> = balance::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|b| (b.member_id, b))
        .collect();
    let mut mismatches = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in &folded {
        seen.insert(f.member_id);
        let from_ledger = Deltas {
            pending: f.pending.unwrap_or(0),
            available: f.available.unwrap_or(0),
            reserved: f.reserved.unwrap_or(0),
            withdrawn: f.withdrawn.unwrap_or(0),
            lifetime: f.lifetime.unwrap_or(0),
        };
        let stored_d = stored.get(&f.member_id).map(as_deltas).unwrap_or_default();
        if stored_d != from_ledger {
            mismatches.push(Mismatch {
                member_id: f.member_id,
                stored: stored_d,
                from_ledger,
            });
        }
    }
    for (id, b) in &stored {
        if !seen.contains(id) && as_deltas(b) != Deltas::default() {
            mismatches.push(Mismatch {
                member_id: *id,
                stored: as_deltas(b),
                from_ledger: Deltas::default(),
            });
        }
    }
    Ok((stored.len().max(folded.len()), mismatches))
}

fn as_deltas(b: &balance::Model) -> Deltas {
    Deltas {
        pending: b.pending.fen(),
        available: b.available.fen(),
        reserved: b.reserved.fen(),
        withdrawn: b.withdrawn.fen(),
        lifetime: b.lifetime.fen(),
    }
}

/// Ledger entries of a member (for tests and audits), oldest first.
pub async fn entries(db: &impl ConnectionTrait, member: Uuid) -> Result<Vec<ledger_entry::Model>> {
    use sea_orm::QueryOrder;
    Ok(ledger_entry::Entity::find()
        .filter(ledger_entry::Column::MemberId.eq(member))
        .order_by_asc(ledger_entry::Column::CreatedAt)
        .order_by_asc(ledger_entry::Column::Id)
        .all(db)
        .await?)
}

/// Buckets of a chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Month,
}

/// Net earnings per day or month in `[from, to)`, every bucket present (zero when quiet),
/// oldest first. At most 366 days or 120 months per call.
pub async fn series(
    db: &impl ConnectionTrait,
    member: Uuid,
    granularity: Granularity,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, Money)>> {
    use sea_orm::QuerySelect;
    if from >= to {
        return Err(Error::validation("from", "must be before `to`"));
    }
    let key = |t: DateTime<Utc>| match granularity {
        Granularity::Day => t.format("%Y-%m-%d").to_string(),
        Granularity::Month => t.format("%Y-%m").to_string(),
    };
    let mut buckets: Vec<(String, Money)> = Vec::new();
    let mut t = from;
    while t < to {
        let k = key(t);
        if buckets.last().is_none_or(|(last, _)| *last != k) {
            buckets.push((k, Money::ZERO));
        }
        if buckets.len()
            > match granularity {
                Granularity::Day => 366,
                Granularity::Month => 120,
            }
        {
            return Err(Error::validation(
                "to",
                "the range is too long for this granularity",
            ));
        }
        t += chrono::Duration::days(1);
    }
    let rows: Vec<(DateTime<Utc>, Money)> = ledger_entry::Entity::find()
        .select_only()
        .column(ledger_entry::Column::CreatedAt)
        .column(ledger_entry::Column::LifetimeDelta)
        .filter(ledger_entry::Column::MemberId.eq(member))
        .filter(ledger_entry::Column::CreatedAt.gte(from))
        .filter(ledger_entry::Column::CreatedAt.lt(to))
        .filter(ledger_entry::Column::LifetimeDelta.ne(0))
        .into_tuple()
        .all(db)
        .await?;
    let index: std::collections::HashMap<String, usize> = buckets
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.clone(), i))
        .collect();
    for (at, delta) in rows {
        if let Some(i) = index.get(&key(at)) {
            buckets[*i].1 = Money::from_fen(buckets[*i].1.fen() + delta.fen());
        }
    }
    Ok(buckets)
}
