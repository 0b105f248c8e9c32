//! The writes a payment ends with: rows it appends (earnings, ledger entries, team sales)
//! and counter rows it moves (members' balances, their monthly earnings, products' units
//! sold), gathered while its transaction reads and applied together, as one [`Batch`] (one
//! statement on PostgreSQL).
//!
//! A counter row is locked from its update to the commit, and every other transaction moving
//! it waits that long: a busy member's balance, a best-seller's `sales_count`. Measured with
//! `pg_stat_statements` under the checkout benchmark, those waits were most of what a
//! payment cost (24 ms per payment statement, queued on the product's and the buyer's rows),
//! and they cap a flash sale's payments at one per lock hold. So:
//!
//! - money moves (balances, months) go last in the statement right before the commit, in
//!   key order, so two payments moving the same rows cannot deadlock;
//! - units sold are a display figure, not money: on PostgreSQL they move right after the
//!   commit, in a statement of their own that commits by itself, so a best-seller's row is
//!   locked for that statement alone. If that statement fails (the database went away
//!   between the two), the payment stands and the product shows that many units fewer; it
//!   is logged. SQLite has no row locks (one writer at a time), so there they stay in the
//!   payment's statement list: a second write transaction would only add a commit.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::DbBackend;
use sea_orm::sea_query::SubQueryStatement;
use uuid::Uuid;

use super::batch::Batch;
use super::ledger::{self, Deltas};

/// The writes of one transaction: appended rows in order, counter moves summed per row.
#[derive(Debug, Default)]
pub struct Writes {
    rows: Batch,
    balances: BTreeMap<Uuid, Deltas>,
    /// `lifetime` added to each (member, month).
    months: BTreeMap<(Uuid, String), i64>,
    /// Units sold added to each product.
    sales: BTreeMap<Uuid, i64>,
    /// The time the balances say they were moved at.
    now: Option<DateTime<Utc>>,
}

impl Writes {
    /// Appends a write that runs before the counter moves, after the writes pushed before it.
    pub fn push(&mut self, statement: impl Into<SubQueryStatement>) {
        self.rows.push(statement);
    }

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

    /// What commits with the payment, in the order it runs (the appended rows, then the
    /// months and the balances, each in key order), and what runs after the commit (the units
    /// sold, in key order; with the payment on SQLite).
    pub fn split(self, backend: DbBackend) -> (Batch, Batch) {
        let mut batch = self.rows;
        if !self.months.is_empty() {
            batch.push(ledger::add_months(
                self.months
                    .into_iter()
                    .map(|((member, period), lifetime)| (member, period, lifetime)),
            ));
        }
        if let Some(now) = self.now
            && !self.balances.is_empty()
        {
            batch.push(ledger::move_balances(self.balances, now));
        }
        let mut after = Batch::default();
        let units_sold = if backend == DbBackend::Postgres {
            &mut after
        } else {
            &mut batch
        };
        for (product, units) in self.sales {
            units_sold.push(super::orders::add_sales(product, units));
        }
        (batch, after)
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{Alias, Expr, Query};

    use super::*;

    #[test]
    fn moves_are_summed_per_row_and_units_sold_wait_for_the_commit() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let (a, b) = (Uuid::from_u128(2), Uuid::from_u128(1));
        let mut w = Writes::default();
        let earned = Deltas {
            pending: 100,
            lifetime: 100,
            ..Deltas::default()
        };
        w.push(
            Query::insert()
                .into_table(Alias::new("appended"))
                .columns([Alias::new("n")])
                .values_panic([Expr::val(1)])
                .to_owned(),
        );
        w.balance(a, earned, now);
        w.balance(b, earned, now);
        w.balance(a, earned, now);
        w.sold(a, 2);
        w.sold(a, 3);
        w.sold(b, 1);
        let on_sqlite = {
            let mut w = Writes::default();
            w.balance(a, earned, now);
            w.sold(a, 1);
            w.split(DbBackend::Sqlite)
        };
        assert_eq!(
            on_sqlite.0.sql_for_tests().len(),
            3,
            "units sold with the payment"
        );
        assert!(on_sqlite.1.is_empty());
        assert_eq!(w.balances[&a].pending, 200);
        assert_eq!(w.months[&(a, "2026-11".to_owned())], 200);
        assert_eq!(w.sales[&a], 5);
        let (with_payment, after) = w.split(DbBackend::Postgres);
        let sql = with_payment.sql_for_tests();
        let after = after.sql_for_tests();
        let at = |needle: &str| {
            sql.iter()
                .position(|s| s.contains(needle))
                .unwrap_or_else(|| panic!("{needle} in {sql:?}"))
        };
        assert!(at("\"appended\"") < at("\"ledger_months\""));
        assert!(at("\"ledger_months\"") < at("\"balances\""));
        // One upsert for both members' months, one for both balances; units sold after the
        // commit, one update per product, the smaller key first.
        assert_eq!(sql.len(), 1 + 1 + 1, "{sql:?}");
        assert!(!sql.iter().any(|s| s.contains("\"products\"")), "{sql:?}");
        assert_eq!(after.len(), 2, "{after:?}");
        assert!(
            after[0].contains(&b.to_string()) && after[0].contains("+ 1"),
            "{after:?}"
        );
        assert!(
            after[1].contains(&a.to_string()) && after[1].contains("+ 5"),
            "{after:?}"
        );
        let balances = &sql[2];
        assert!(balances.find(&b.to_string()) < balances.find(&a.to_string()));
    }
}
