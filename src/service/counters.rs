//! Counter rows a payment moves (members' balances, their monthly earnings, products' units
//! sold), gathered while its transaction appends and applied together at its end: one
//! statement on PostgreSQL, so the hottest rows stay locked only from that statement to the
//! commit.
//!
//! A counter row is locked from its update to the commit, and every other transaction moving
//! it waits that long: a popular product's `sales_count`, a busy member's balance. Moving the
//! counters last, in one round trip, makes that wait one statement and the commit, instead of
//! every statement after the first counter. Rows are moved in key order, so two transactions
//! moving the same rows cannot deadlock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use uuid::Uuid;

use super::ledger::{self, Deltas};
use crate::error::Result;

/// The moves of one transaction, summed per row.
#[derive(Debug, Default)]
pub struct Counters {
    balances: BTreeMap<Uuid, Deltas>,
    /// `lifetime` added to each (member, month).
    months: BTreeMap<(Uuid, String), i64>,
    /// Units sold added to each product.
    sales: BTreeMap<Uuid, i64>,
    /// The time the balances say they were moved at.
    now: Option<DateTime<Utc>>,
}

impl Counters {
    /// Moves `member`'s balances by `d` (and its month by `d.lifetime`) at `now`.
    pub fn balance(&mut self, member: Uuid, d: Deltas, now: DateTime<Utc>) {
        let sum = self.balances.entry(member).or_default();
        sum.pending += d.pending;
        sum.available += d.available;
        sum.reserved += d.reserved;
        sum.withdrawn += d.withdrawn;
        sum.lifetime += d.lifetime;
        if d.lifetime != 0 {
            *self
                .months
                .entry((member, super::hierarchy::period(now)))
                .or_default() += d.lifetime;
        }
        self.now = Some(self.now.map_or(now, |t| t.max(now)));
    }

    /// Adds `units` to `product`'s units sold.
    pub fn sold(&mut self, product: Uuid, units: i64) {
        *self.sales.entry(product).or_default() += units;
    }

    /// Applies every move: one statement on PostgreSQL, one per row elsewhere (SQLite runs one
    /// writer at a time: nothing waits on a row lock there).
    pub async fn apply(self, txn: &impl ConnectionTrait) -> Result<()> {
        if self.balances.is_empty() && self.sales.is_empty() {
            return Ok(());
        }
        if txn.get_database_backend() == DbBackend::Postgres {
            let (sql, values) = self.postgres();
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ))
            .await?;
            return Ok(());
        }
        for ((member, period), lifetime) in &self.months {
            ledger::add_month(txn, *member, period, *lifetime).await?;
        }
        if let Some(now) = self.now {
            for (member, d) in &self.balances {
                ledger::move_balance(txn, *member, *d, now).await?;
            }
        }
        for (product, units) in &self.sales {
            super::orders::add_sales(txn, *product, *units).await?;
        }
        Ok(())
    }

    /// One statement: each part a data-modifying CTE (PostgreSQL runs them all), balances and
    /// months as upserts, units sold as an update from a list.
    fn postgres(&self) -> (String, Vec<Value>) {
        let mut values: Vec<Value> = Vec::new();
        let mut arg = |v: Value, cast: &str| {
            values.push(v);
            format!("${}::{cast}", values.len())
        };
        let mut parts = Vec::new();
        if !self.months.is_empty() {
            let rows: Vec<String> = self
                .months
                .iter()
                .map(|((member, period), lifetime)| {
                    format!(
                        "({}, {}, {})",
                        arg((*member).into(), "uuid"),
                        arg(period.clone().into(), "text"),
                        arg((*lifetime).into(), "bigint")
                    )
                })
                .collect();
            parts.push(format!(
                "INSERT INTO ledger_months (member_id, period, lifetime) VALUES {} \
                 ON CONFLICT (member_id, period) \
                 DO UPDATE SET lifetime = ledger_months.lifetime + excluded.lifetime",
                rows.join(", ")
            ));
        }
        if let Some(now) = self.now
            && !self.balances.is_empty()
        {
            let now = arg(now.into(), "timestamptz");
            let rows: Vec<String> = self
                .balances
                .iter()
                .map(|(member, d)| {
                    format!(
                        "({}, {}, {}, {}, {}, {}, {now})",
                        arg((*member).into(), "uuid"),
                        arg(d.pending.into(), "bigint"),
                        arg(d.available.into(), "bigint"),
                        arg(d.reserved.into(), "bigint"),
                        arg(d.withdrawn.into(), "bigint"),
                        arg(d.lifetime.into(), "bigint"),
                    )
                })
                .collect();
            parts.push(format!(
                "INSERT INTO balances \
                 (member_id, pending, available, reserved, withdrawn, lifetime, updated_at) \
                 VALUES {} ON CONFLICT (member_id) DO UPDATE SET \
                 pending = balances.pending + excluded.pending, \
                 available = balances.available + excluded.available, \
                 reserved = balances.reserved + excluded.reserved, \
                 withdrawn = balances.withdrawn + excluded.withdrawn, \
                 lifetime = balances.lifetime + excluded.lifetime, \
                 updated_at = excluded.updated_at",
                rows.join(", ")
            ));
        }
        if !self.sales.is_empty() {
            let rows: Vec<String> = self
                .sales
                .iter()
                .map(|(product, units)| {
                    format!(
                        "({}, {})",
                        arg((*product).into(), "uuid"),
                        arg((*units).into(), "bigint")
                    )
                })
                .collect();
            parts.push(format!(
                "UPDATE products SET sales_count = products.sales_count + sold.units \
                 FROM (VALUES {}) AS sold (id, units) WHERE products.id = sold.id",
                rows.join(", ")
            ));
        }
        // The last part is the statement; the others run as its CTEs.
        let last = parts.pop().unwrap_or_default();
        let ctes: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| format!("c{i} AS ({p})"))
            .collect();
        let sql = if ctes.is_empty() {
            last
        } else {
            format!("WITH {} {last}", ctes.join(", "))
        };
        (sql, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_are_summed_per_row_and_written_in_key_order() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let (a, b) = (Uuid::from_u128(2), Uuid::from_u128(1));
        let mut c = Counters::default();
        let earned = Deltas {
            pending: 100,
            lifetime: 100,
            ..Deltas::default()
        };
        c.balance(a, earned, now);
        c.balance(b, earned, now);
        c.balance(a, earned, now);
        c.sold(a, 2);
        c.sold(a, 3);
        assert_eq!(c.balances[&a].pending, 200);
        assert_eq!(c.months[&(a, "2026-11".to_owned())], 200);
        assert_eq!(c.sales[&a], 5);
        let (sql, values) = c.postgres();
        assert!(
            sql.starts_with("WITH c0 AS (INSERT INTO ledger_months"),
            "{sql}"
        );
        assert!(sql.contains("c1 AS (INSERT INTO balances"), "{sql}");
        assert!(sql.contains(") UPDATE products"), "{sql}");
        // Months (2 rows × 3), the time, balances (2 rows × 6), sales (1 row × 2).
        assert_eq!(values.len(), 6 + 1 + 12 + 2);
        assert_eq!(values[0], Value::from(b), "the smaller key first");
        let only_sales = {
            let mut c = Counters::default();
            c.sold(a, 1);
            c.postgres().0
        };
        assert!(only_sales.starts_with("UPDATE products"), "{only_sales}");
    }
}
