//! The ledger: every movement of a member's money is an appended entry with its effect on each
//! balance column, and the member's balance row moves by the same amounts in the same
//! transaction. [`check`] recomputes every balance from the entries and reports differences;
//! [`check_statuses`] compares each earning's and withdrawal's status with its entries. The
//! entries are append-only in the database too (triggers refuse `UPDATE` and `DELETE`).

use chrono::{DateTime, Utc};
use entity::{Money, balance, ledger_entry, ledger_month};
use sea_orm::sea_query::{Expr, InsertStatement, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QueryTrait, Statement,
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
    /// A payout failed: the reserved amount returns to the available balance.
    WithdrawalFailed,
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
            Event::WithdrawalFailed => "WITHDRAWAL_FAILED",
        }
    }
}

/// What an entry refers to.
#[derive(Clone, Copy, Debug, Default)]
pub struct Refs {
    pub earning: Option<Uuid>,
    pub withdrawal: Option<Uuid>,
}

/// Appends an entry (and adds its `lifetime` to the member's month) without touching the
/// balance row (for callers that already moved the
/// balance with a conditional update, such as a withdrawal's reservation).
pub async fn append(
    txn: &impl ConnectionTrait,
    member: Uuid,
    event: Event,
    refs: Refs,
    d: Deltas,
    now: DateTime<Utc>,
) -> Result<()> {
    insert_entry(txn, member, event, refs, d, now).await?;
    if d.lifetime != 0 {
        add_month(txn, member, &super::hierarchy::period(now), d.lifetime).await?;
    }
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
    move_balance(txn, member, d, now).await
}

async fn insert_entry(
    txn: &impl ConnectionTrait,
    member: Uuid,
    event: Event,
    refs: Refs,
    d: Deltas,
    now: DateTime<Utc>,
) -> Result<()> {
    txn.execute(&entry(member, event, refs, d, now)).await?;
    Ok(())
}

/// The insert of one entry.
pub fn entry(
    member: Uuid,
    event: Event,
    refs: Refs,
    d: Deltas,
    now: DateTime<Utc>,
) -> InsertStatement {
    ledger_entry::Entity::insert(ledger_entry::ActiveModel::from(entry_row(
        member, event, refs, d, now,
    )))
    .into_query()
}

/// One entry's row, for callers that insert several at once.
pub fn entry_row(
    member: Uuid,
    event: Event,
    refs: Refs,
    d: Deltas,
    now: DateTime<Utc>,
) -> ledger_entry::Model {
    ledger_entry::Model {
        id: Uuid::now_v7(),
        member_id: member,
        event: event.as_str().to_owned(),
        earning_id: refs.earning,
        withdrawal_id: refs.withdrawal,
        pending_delta: Money::from_fen(d.pending),
        available_delta: Money::from_fen(d.available),
        reserved_delta: Money::from_fen(d.reserved),
        withdrawn_delta: Money::from_fen(d.withdrawn),
        lifetime_delta: Money::from_fen(d.lifetime),
        created_at: now,
    }
}

/// Adds `lifetime` fen to `member`'s net earnings of `period` (`YYYY-MM`).
pub async fn add_month(
    txn: &impl ConnectionTrait,
    member: Uuid,
    period: &str,
    lifetime: i64,
) -> Result<()> {
    txn.execute(&add_months([(member, period.to_owned(), lifetime)]))
        .await?;
    Ok(())
}

/// Adds each row's `lifetime` fen to its (member, period): one upsert. Rows must be
/// distinct (sum them first) and there must be at least one.
pub fn add_months(rows: impl IntoIterator<Item = (Uuid, String, i64)>) -> InsertStatement {
    ledger_month::Entity::insert_many(rows.into_iter().map(|(member, period, lifetime)| {
        ledger_month::ActiveModel {
            member_id: Set(member),
            period: Set(period),
            lifetime: Set(Money::from_fen(lifetime)),
        }
    }))
    .on_conflict(
        OnConflict::columns([ledger_month::Column::MemberId, ledger_month::Column::Period])
            .value(
                ledger_month::Column::Lifetime,
                Expr::cust("ledger_months.lifetime + excluded.lifetime"),
            )
            .to_owned(),
    )
    .into_query()
}

/// Moves `member`'s balance row by `d` (creating it if needed).
pub async fn move_balance(
    txn: &impl ConnectionTrait,
    member: Uuid,
    d: Deltas,
    now: DateTime<Utc>,
) -> Result<()> {
    txn.execute(&move_balances([(member, d)], now)).await?;
    Ok(())
}

/// Moves each member's balance row by its deltas (creating it if needed): one upsert.
/// Members must be distinct (sum their deltas first) and there must be at least one.
pub fn move_balances(
    rows: impl IntoIterator<Item = (Uuid, Deltas)>,
    now: DateTime<Utc>,
) -> InsertStatement {
    let add = |c: &str| Expr::cust(format!("balances.{c} + excluded.{c}"));
    balance::Entity::insert_many(rows.into_iter().map(|(member, d)| balance::ActiveModel {
        member_id: Set(member),
        pending: Set(Money::from_fen(d.pending)),
        available: Set(Money::from_fen(d.available)),
        reserved: Set(Money::from_fen(d.reserved)),
        withdrawn: Set(Money::from_fen(d.withdrawn)),
        lifetime: Set(Money::from_fen(d.lifetime)),
        updated_at: Set(now),
    }))
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
    .into_query()
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

pub async fn summary(
    db: &impl ConnectionTrait,
    member: Uuid,
    now: DateTime<Utc>,
) -> Result<Summary> {
    // One statement: the balance row and this month's total.
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT b.pending, b.available, b.reserved, b.withdrawn, b.lifetime, m.lifetime AS this_month \
             FROM balances b LEFT JOIN ledger_months m ON m.member_id = b.member_id AND m.period = $2 \
             WHERE b.member_id = $1"
        }
        _ => {
            "SELECT b.pending, b.available, b.reserved, b.withdrawn, b.lifetime, m.lifetime AS this_month \
             FROM balances b LEFT JOIN ledger_months m ON m.member_id = b.member_id AND m.period = ?2 \
             WHERE b.member_id = ?1"
        }
    };
    let row = SummaryRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [member.into(), super::hierarchy::period(now).into()],
    ))
    .one(db)
    .await?;
    Ok(match row {
        Some(r) => Summary {
            pending: Money::from_fen(r.pending),
            available: Money::from_fen(r.available),
            reserved: Money::from_fen(r.reserved),
            withdrawn: Money::from_fen(r.withdrawn),
            lifetime: Money::from_fen(r.lifetime),
            this_month: Money::from_fen(r.this_month.unwrap_or(0)),
        },
        None => Summary::default(),
    })
}

#[derive(FromQueryResult)]
struct SummaryRow {
    pending: i64,
    available: i64,
    reserved: i64,
    withdrawn: i64,
    lifetime: i64,
    this_month: Option<i64>,
}

/// A member whose stored balances differ from the sum of its ledger entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub member_id: Uuid,
    /// For a monthly total (`YYYY-MM`) that disagrees with its entries: only `lifetime`
    /// is compared then. `None` for the balance row.
    pub period: Option<String>,
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
                period: None,
                stored: stored_d,
                from_ledger,
            });
        }
    }
    for (id, b) in &stored {
        if !seen.contains(id) && as_deltas(b) != Deltas::default() {
            mismatches.push(Mismatch {
                member_id: *id,
                period: None,
                stored: as_deltas(b),
                from_ledger: Deltas::default(),
            });
        }
    }
    mismatches.extend(check_months(db).await?);
    Ok((stored.len().max(folded.len()), mismatches))
}

/// Compares each monthly total with the sum of its month's entries.
async fn check_months(db: &impl ConnectionTrait) -> Result<Vec<Mismatch>> {
    use sea_orm::QuerySelect;
    use std::collections::HashMap;
    let rows: Vec<(Uuid, DateTime<Utc>, Money)> = ledger_entry::Entity::find()
        .select_only()
        .column(ledger_entry::Column::MemberId)
        .column(ledger_entry::Column::CreatedAt)
        .column(ledger_entry::Column::LifetimeDelta)
        .filter(ledger_entry::Column::LifetimeDelta.ne(Money::ZERO))
        .into_tuple()
        .all(db)
        .await?;
    let mut from_entries: HashMap<(Uuid, String), i64> = HashMap::new();
    for (member, at, delta) in rows {
        *from_entries
            .entry((member, super::hierarchy::period(at)))
            .or_default() += delta.fen();
    }
    let mut stored: HashMap<(Uuid, String), i64> = ledger_month::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|m| ((m.member_id, m.period), m.lifetime.fen()))
        .collect();
    let mut out = Vec::new();
    let lifetime = |n: i64| Deltas {
        lifetime: n,
        ..Deltas::default()
    };
    for ((member, period), sum) in from_entries {
        let kept = stored.remove(&(member, period.clone())).unwrap_or(0);
        if kept != sum {
            out.push(Mismatch {
                member_id: member,
                period: Some(period),
                stored: lifetime(kept),
                from_ledger: lifetime(sum),
            });
        }
    }
    for ((member, period), kept) in stored {
        if kept != 0 {
            out.push(Mismatch {
                member_id: member,
                period: Some(period),
                stored: lifetime(kept),
                from_ledger: lifetime(0),
            });
        }
    }
    Ok(out)
}

/// An earning or a withdrawal whose stored status is not the one its ledger entries say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusMismatch {
    /// `EARNING` or `WITHDRAWAL`.
    pub kind: &'static str,
    pub id: Uuid,
    pub member_id: Uuid,
    pub stored: &'static str,
    pub from_ledger: &'static str,
}

#[derive(FromQueryResult)]
struct Marks {
    id: Uuid,
    first: Option<i64>,
    second: Option<i64>,
    third: Option<i64>,
}

/// Per referenced row (`column`: `earning_id` or `withdrawal_id`), how many entries meet
/// each of three conditions.
async fn marks(
    db: &impl ConnectionTrait,
    column: &str,
    conditions: [&str; 3],
) -> Result<std::collections::HashMap<Uuid, (i64, i64, i64)>> {
    let backend = db.get_database_backend();
    let count = |c: &str| match backend {
        DbBackend::Postgres => format!("CAST(SUM(CASE WHEN {c} THEN 1 ELSE 0 END) AS BIGINT)"),
        _ => format!("SUM(CASE WHEN {c} THEN 1 ELSE 0 END)"),
    };
    let sql = format!(
        "SELECT {column} AS id, {} AS first, {} AS second, {} AS third FROM ledger_entries \
         WHERE {column} IS NOT NULL GROUP BY {column}",
        count(conditions[0]),
        count(conditions[1]),
        count(conditions[2]),
    );
    Ok(
        Marks::find_by_statement(Statement::from_string(backend, sql))
            .all(db)
            .await?
            .into_iter()
            .map(|m| {
                let n = |x: Option<i64>| x.unwrap_or(0);
                (m.id, (n(m.first), n(m.second), n(m.third)))
            })
            .collect(),
    )
}

/// Compares each earning's and each withdrawal's status with what its entries say: an
/// earning is `REVERSED` once a `REVERSED` entry refers to it, `SETTLED` once a `SETTLED`
/// entry does (or an `ADJUSTED` entry moved the available balance: an adjustment booked
/// settled), `PENDING` otherwise; a withdrawal is `PAID` once paid, `REJECTED` or `FAILED`
/// once its funds came back, `PENDING` or `PROCESSING` (its payout under way) otherwise.
pub async fn check_statuses(db: &impl ConnectionTrait) -> Result<Vec<StatusMismatch>> {
    use entity::{earning, withdrawal};
    use sea_orm::QuerySelect;
    let mut out = Vec::new();
    let entries = marks(
        db,
        "earning_id",
        [
            "event = 'REVERSED'",
            "event = 'SETTLED'",
            "event = 'ADJUSTED' AND available_delta <> 0",
        ],
    )
    .await?;
    let earnings: Vec<(Uuid, Uuid, earning::Status)> = earning::Entity::find()
        .select_only()
        .columns([
            earning::Column::Id,
            earning::Column::MemberId,
            earning::Column::Status,
        ])
        .into_tuple()
        .all(db)
        .await?;
    let name = |s: earning::Status| match s {
        earning::Status::Pending => "PENDING",
        earning::Status::Settled => "SETTLED",
        earning::Status::Reversed => "REVERSED",
    };
    for (id, member_id, status) in earnings {
        let (reversed, settled, settled_adjustment) = entries.get(&id).copied().unwrap_or_default();
        let expected = if reversed > 0 {
            earning::Status::Reversed
        } else if settled > 0 || settled_adjustment > 0 {
            earning::Status::Settled
        } else {
            earning::Status::Pending
        };
        if expected != status {
            out.push(StatusMismatch {
                kind: "EARNING",
                id,
                member_id,
                stored: name(status),
                from_ledger: name(expected),
            });
        }
    }
    let entries = marks(
        db,
        "withdrawal_id",
        [
            "event = 'WITHDRAWAL_PAID'",
            "event = 'WITHDRAWAL_REJECTED'",
            "event = 'WITHDRAWAL_FAILED'",
        ],
    )
    .await?;
    let withdrawals: Vec<(Uuid, Uuid, withdrawal::Status)> = withdrawal::Entity::find()
        .select_only()
        .columns([
            withdrawal::Column::Id,
            withdrawal::Column::MemberId,
            withdrawal::Column::Status,
        ])
        .into_tuple()
        .all(db)
        .await?;
    let name = |s: withdrawal::Status| match s {
        withdrawal::Status::Pending => "PENDING",
        withdrawal::Status::Processing => "PROCESSING",
        withdrawal::Status::Paid => "PAID",
        withdrawal::Status::Failed => "FAILED",
        withdrawal::Status::Rejected => "REJECTED",
    };
    for (id, member_id, status) in withdrawals {
        let (paid, rejected, failed) = entries.get(&id).copied().unwrap_or_default();
        let expected = if paid > 0 {
            withdrawal::Status::Paid
        } else if rejected > 0 {
            withdrawal::Status::Rejected
        } else if failed > 0 {
            withdrawal::Status::Failed
        } else if status == withdrawal::Status::Processing {
            // Approved, its payout under way: no entry until it ends.
            withdrawal::Status::Processing
        } else {
            withdrawal::Status::Pending
        };
        if expected != status {
            out.push(StatusMismatch {
                kind: "WITHDRAWAL",
                id,
                member_id,
                stored: name(status),
                from_ledger: name(expected),
            });
        }
    }
    Ok(out)
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
