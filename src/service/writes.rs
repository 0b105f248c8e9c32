//! The writes a payment ends with: rows it appends (earnings, ledger entries, team sales)
//! and counter rows it moves (members' balances, their monthly earnings), gathered while it
//! reads and applied together with its transition, as one guarded [`Batch`] (one statement on
//! PostgreSQL: [`Batch::run_guarded`]).
//!
//! A counter row is locked from its update to the commit, and every other transaction moving
//! it waits that long (a busy member's balance). So the money moves (balances, months) go
//! last, in key order: two payments moving the same rows cannot deadlock, and the rows stay
//! locked only until the commit right after. Units sold are not among them: they are tallied
//! apart ([`super::units_sold`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
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

    /// Everything as one batch, in the order it runs: the appended rows, then the months and
    /// the balances, each in key order.
    pub fn into_batch(self) -> Batch {
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
        batch
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{Alias, Expr, Query};

    use super::*;

    #[test]
    fn moves_are_summed_per_row_and_money_goes_last() {
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
        assert_eq!(w.balances[&a].pending, 200);
        assert_eq!(w.months[&(a, "2026-11".to_owned())], 200);
        let batch = w.into_batch();
        let sql = batch.sql_for_tests();
        let at = |needle: &str| {
            sql.iter()
                .position(|s| s.contains(needle))
                .unwrap_or_else(|| panic!("{needle} in {sql:?}"))
        };
        assert!(at("\"appended\"") < at("\"ledger_months\""));
        assert!(at("\"ledger_months\"") < at("\"balances\""));
        // One upsert for both members' months, one for both balances.
        assert_eq!(sql.len(), 1 + 1 + 1, "{sql:?}");
        let balances = &sql[2];
        assert!(balances.find(&b.to_string()) < balances.find(&a.to_string()));
    }
}
