//! The writes a payment ends with: rows it appends (earnings, ledger entries, team sales)
//! and counter rows it moves (members' balances, their monthly earnings, their membership
//! rewards of the day; for settlements and claw-backs, their leaderboard counters), gathered
//! while it reads and applied together with its transition, as one guarded [`Batch`] (one
//! statement on PostgreSQL: [`Batch::run_guarded`]). A counter the payment's amounts depend
//! on (a capped day of membership rewards) is one of its guards: moved from the figure read,
//! or the payment does not happen.
//!
//! A counter row is locked from its update to the commit, and every other transaction moving
//! it waits that long (a busy member's balance). So the money moves (balances, months) go
//! last, in key order: two payments moving the same rows cannot deadlock, and the rows stay
//! locked only until the commit right after. Units sold are not among them: they are tallied
//! apart ([`super::units_sold`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::SubQueryStatement;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use uuid::Uuid;

use super::batch::Batch;
use super::leaderboards;
use super::ledger::{self, Deltas, Event, Refs};
use super::reward_days;

/// The writes of one transaction: appended rows in order, counter moves summed per row.
#[derive(Debug, Default)]
pub struct Writes {
    rows: Batch,
    balances: BTreeMap<Uuid, Deltas>,
    /// `lifetime` added to each (member, month).
    months: BTreeMap<(Uuid, String), i64>,
    /// Membership rewards added to each (member, day), and the figure its counter must
    /// still say (under a daily cap).
    reward_days: BTreeMap<(Uuid, String), (i64, Option<i64>)>,
    /// Fen added to each leaderboard counter ([`leaderboards`]).
    boards: BTreeMap<leaderboards::Key, i64>,
    /// The time the balances say they were moved at.
    now: Option<DateTime<Utc>>,
}

impl Writes {
    /// Appends a write that runs before the counter moves, after the writes pushed before it.
    pub fn push(&mut self, statement: impl Into<SubQueryStatement>) {
        self.rows.push(statement);
    }

    /// Books a ledger entry later: appends the entry and moves `member`'s balances and month
    /// by it, when these writes run (as [`ledger::book`] does at once).
    pub fn book(&mut self, member: Uuid, event: Event, refs: Refs, d: Deltas, now: DateTime<Utc>) {
        self.push(ledger::entry(member, event, refs, d, now));
        self.balance(member, d, now);
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

    /// Adds `amount` of membership rewards to `member`'s `day`; with `seen`, only if its
    /// counter still says `seen` (the figure the amount was capped by) when the writes run.
    pub fn membership_reward(&mut self, member: Uuid, day: String, amount: i64, seen: Option<i64>) {
        let sum = self.reward_days.entry((member, day)).or_insert((0, seen));
        sum.0 += amount;
    }

    /// Moves leaderboard counters (settled money, or money taken back after settlement):
    /// the rows of [`leaderboards::moves`].
    pub fn leaderboards(&mut self, moves: impl IntoIterator<Item = (leaderboards::Key, i64)>) {
        for (key, fen) in moves {
            *self.boards.entry(key).or_default() += fen;
        }
    }

    /// Everything in the order it runs: the guards (the capped counters, in key order), then
    /// one batch of the appended rows, the other counters of membership rewards, the
    /// leaderboard counters, the months and the balances, each in key order.
    pub fn into_batch(self) -> (Vec<SubQueryStatement>, Batch) {
        let mut guards = Vec::new();
        let mut batch = self.rows;
        for ((member, day), (amount, seen)) in self.reward_days {
            match seen {
                Some(seen) => guards.push(reward_days::take(member, day, seen, amount).into()),
                None => batch.push(reward_days::add(member, day, amount)),
            }
        }
        let mut boards = self.boards;
        boards.retain(|_, fen| *fen != 0);
        if !boards.is_empty() {
            batch.push(leaderboards::add(boards));
        }
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
        (guards, batch)
    }

    /// Runs every write in the caller's transaction `txn` (a refund, a settlement): for
    /// writes without guards, which only [`Writes::run_guarded`] can honour.
    pub async fn run(self, txn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let (guards, batch) = self.into_batch();
        if !guards.is_empty() {
            return Err(DbErr::Custom("guarded writes run with run_guarded".into()));
        }
        batch.run(txn).await
    }

    /// Runs every write, in a transaction of its own, only if `first` (a write of exactly one
    /// row, e.g. a payment's transition) and every guard of these writes change their row;
    /// returns whether they did ([`Batch::run_guarded`]).
    pub async fn run_guarded(
        self,
        db: &DatabaseConnection,
        first: impl Into<SubQueryStatement>,
    ) -> Result<bool, DbErr> {
        let (mut guards, batch) = self.into_batch();
        guards.insert(0, first.into());
        batch.run_guarded(db, guards).await
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
        let (guards, batch) = w.into_batch();
        assert!(guards.is_empty());
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

    #[test]
    fn a_capped_day_of_membership_rewards_is_a_guard_an_uncapped_one_a_part() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let day = || "2026-11-29".to_owned();
        let mut w = Writes::default();
        w.membership_reward(a, day(), 6_000, Some(3_000));
        w.membership_reward(a, day(), 6_000, Some(3_000));
        w.membership_reward(b, day(), 6_000, None);
        let (guards, batch) = w.into_batch();
        assert_eq!(guards.len(), 1);
        let SubQueryStatement::InsertStatement(guard) = &guards[0] else {
            panic!("an upsert: {guards:?}")
        };
        let guard = guard.to_string(sea_orm::sea_query::PostgresQueryBuilder);
        // From the figure read (30.00) to it plus both rewards (150.00), only if unmoved.
        assert!(guard.contains("15000"), "{guard}");
        assert!(
            guard.contains(r#"WHERE "membership_reward_days"."amount" = 3000"#),
            "{guard}"
        );
        let sql = batch.sql_for_tests();
        assert_eq!(sql.len(), 1, "{sql:?}");
        assert!(sql[0].contains(&b.to_string()), "{sql:?}");
        assert!(sql[0].contains("membership_reward_days.amount + excluded.amount"));
    }
}
