//! Earnings: the rebate rules of SPEC §2.4 (who earns what on a paid order line, and why),
//! booking them into the ledger in the payment's transaction, settling them after the return
//! window, and reversing or clawing them back on refunds.
//!
//! [`plan`] is the pure rule: given a line and the people around it, the earnings to book.
//! Every amount is rounded down to the fen, and the percentage earnings of one line never
//! exceed 30 % of its paid amount: each level takes its share from what is left of that
//! budget, nearest level first.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{Money, Rate, binding, earning, ledger_entry, member, order, order_line, share_link};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::batch::insert_rows;
use super::ledger::{Deltas, Event, Refs};
use super::writes::Writes;
use super::{hierarchy, leaderboards, reward_days};
use crate::error::{Error, Result};
use crate::events::{Event as LiveEvent, Events, Kind as LiveKind};

/// Names the rules in force; stored in every explanation so old earnings stay explainable
/// after the rules change.
pub const POLICY_VERSION: &str = "2026-11.1";

/// The most the percentage earnings of one line may take: 30 % of its paid amount.
pub const LINE_CAP: Rate = Rate::from_bp(3_000);

/// The numbers the rules use (from the configuration).
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// 1 to 3 levels earn.
    pub commission_levels: u8,
    /// Fixed reward per unit of a membership-activity product.
    pub membership_reward: Money,
    /// Optional daily cap per member on membership rewards.
    pub membership_reward_daily_cap: Option<Money>,
}

/// Someone who may earn on a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Person {
    pub id: Uuid,
    /// Frozen members earn nothing new (the chain continues past them).
    pub frozen: bool,
}

/// How a line is attributed to its level-1 earner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attribution {
    /// The buyer is a push-hand or partner.
    SelfPurchase { buyer: Person },
    /// Bought through push-hand X's share link, or X's note (X is not the buyer).
    Promotion {
        sharer: Person,
        share_link: Option<Uuid>,
        note: Option<Uuid>,
    },
    /// The buyer's active upline; `partner` when the binding came from a partner's link.
    Bound {
        upline: Person,
        binding: Uuid,
        partner: bool,
    },
    /// Nobody to reward.
    Nobody,
}

/// The facts of a paid line the rules need.
#[derive(Clone, Copy, Debug)]
pub struct LineFacts {
    pub amount: Money,
    pub quantity: i32,
    pub rebate_rate: Rate,
    pub team_rebate_rate: Rate,
    pub membership_activity: bool,
}

/// Why an earning exists, stored with it and shown as `Earning.explanation`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// The rule (the earning's kind).
    pub rule: String,
    pub level: i16,
    /// The line's paid amount the rate applies to (for fixed rewards, the line amount too).
    pub base_amount: Decimal,
    /// The rate applied; null for fixed rewards.
    pub rate: Option<Decimal>,
    /// Fixed reward per unit and units, for membership rewards.
    pub fixed_per_unit: Option<Decimal>,
    pub units: Option<i32>,
    /// What the rate (or the fixed reward) gave before a cap cut it: the 30 % line cap, or
    /// for a membership reward the daily cap.
    pub uncapped_amount: Option<Decimal>,
    pub share_link_id: Option<Uuid>,
    pub binding_id: Option<Uuid>,
    /// For adjustments: the earning corrected.
    pub adjusts_earning_id: Option<Uuid>,
    pub policy_version: String,
    /// The line's list amount (unit price × units), when a coupon took something off it:
    /// `base_amount` is then this less `coupon_share`. Absent on lines without a coupon
    /// (and on earnings booked before coupons existed), whose base is the list amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_amount: Option<Decimal>,
    /// The line's share of the order's coupon discount (see `list_amount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_share: Option<Decimal>,
    /// The note the sale came through (its share code), with its title when booked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_title: Option<String>,
    /// For adjustments: the part of `base_amount` the refunded units take back (what a team
    /// rebate's adjustment takes off the upline's `TEAM_SALES` board). Absent on other
    /// earnings and on adjustments booked before the leaderboards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_refunded: Option<Decimal>,
}

/// What a line's share code names: a push-hand's share link to the product, or a note
/// linking it — and whose it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Referral {
    pub member_id: Uuid,
    pub share_link: Option<Uuid>,
    pub note: Option<Uuid>,
}

impl Referral {
    pub fn link(l: &share_link::Model) -> Referral {
        Referral {
            member_id: l.member_id,
            share_link: Some(l.id),
            note: None,
        }
    }
}

/// The rule for coupons, stated in every explanation of a line a coupon took money off.
pub const COUPON_RULE: &str = "coupons are funded by the platform; every rebate and reward \
     is computed on the line's paid amount after its coupon share (shipping excluded), also \
     on a push-hand's own purchase";

/// An earning [`plan`] decided on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub member: Uuid,
    pub kind: earning::Kind,
    pub level: i16,
    pub amount: Money,
    pub explanation: Explanation,
}

fn pct(amount: Money, rate: Rate) -> Money {
    // Both factors are exact decimals; the product is rounded down to the fen.
    Money::floor_from_decimal(amount.to_decimal() * rate.to_decimal()).unwrap_or(Money::ZERO)
}

/// The earnings of one paid line. `uplines` are the level-1 earner's upline and its upline
/// (each `None` when absent), used for levels 2 and 3 as `commission_levels` allows.
pub fn plan(
    line: &LineFacts,
    who: Attribution,
    uplines: [Option<Person>; 2],
    policy: &Policy,
) -> Vec<Planned> {
    let (first, kind, share_link_id, binding_id, note_id) = match who {
        Attribution::Nobody => return Vec::new(),
        Attribution::SelfPurchase { buyer } => {
            (buyer, earning::Kind::SelfPurchase, None, None, None)
        }
        Attribution::Promotion {
            sharer,
            share_link,
            note,
        } => (sharer, earning::Kind::Promotion, share_link, None, note),
        Attribution::Bound {
            upline,
            binding,
            partner,
        } => {
            let kind = if partner {
                earning::Kind::PartnerReward
            } else {
                earning::Kind::BoundRebate
            };
            (upline, kind, None, Some(binding), None)
        }
    };
    let explanation = |rule: earning::Kind,
                       level: i16,
                       rate: Option<Rate>,
                       uncapped: Option<Money>| Explanation {
        rule: kind_name(rule).to_owned(),
        level,
        base_amount: line.amount.to_decimal(),
        rate: rate.map(Rate::to_decimal),
        fixed_per_unit: None,
        units: None,
        uncapped_amount: uncapped.map(Money::to_decimal),
        share_link_id,
        binding_id,
        adjusts_earning_id: None,
        policy_version: POLICY_VERSION.to_owned(),
        list_amount: None,
        coupon_share: None,
        note_id,
        note_title: None,
        base_refunded: None,
    };

    // A membership-activity line bought by a non-member through a referrer: a fixed reward
    // per unit instead of percentages (and no team rebate).
    let referred = !matches!(who, Attribution::SelfPurchase { .. });
    if line.membership_activity && referred {
        if first.frozen {
            return Vec::new();
        }
        let amount = Money::from_fen(policy.membership_reward.fen() * i64::from(line.quantity));
        let mut e = explanation(earning::Kind::MembershipReward, 1, None, None);
        e.fixed_per_unit = Some(policy.membership_reward.to_decimal());
        e.units = Some(line.quantity);
        return vec![Planned {
            member: first.id,
            kind: earning::Kind::MembershipReward,
            level: 1,
            amount,
            explanation: e,
        }];
    }

    let mut budget = pct(line.amount, LINE_CAP);
    let mut out = Vec::new();
    let levels = [Some(first), uplines[0], uplines[1]];
    for (i, person) in levels
        .into_iter()
        .enumerate()
        .take(usize::from(policy.commission_levels))
    {
        let Some(person) = person else { break };
        let level = i as i16 + 1;
        let (rule, rate) = if level == 1 {
            (kind, line.rebate_rate)
        } else {
            (earning::Kind::TeamRebate, line.team_rebate_rate)
        };
        let uncapped = pct(line.amount, rate);
        let amount = uncapped.min(budget);
        budget = Money::from_fen(budget.fen() - amount.fen());
        if person.frozen || amount == Money::ZERO {
            continue;
        }
        let cut = (amount < uncapped).then_some(uncapped);
        out.push(Planned {
            member: person.id,
            kind: rule,
            level,
            amount,
            explanation: explanation(rule, level, Some(rate), cut),
        });
    }
    out
}

pub fn kind_name(k: earning::Kind) -> &'static str {
    match k {
        earning::Kind::SelfPurchase => "SELF_PURCHASE",
        earning::Kind::Promotion => "PROMOTION",
        earning::Kind::BoundRebate => "BOUND_REBATE",
        earning::Kind::PartnerReward => "PARTNER_REWARD",
        earning::Kind::TeamRebate => "TEAM_REBATE",
        earning::Kind::MembershipReward => "MEMBERSHIP_REWARD",
        earning::Kind::Adjustment => "ADJUSTMENT",
    }
}

/// What a payment reads about the people around its lines, each read once per payment:
/// every line of an order has the same buyer and the same uplines, so the lines after the
/// first cost no statement (but a line shared through another link: its link and sharer).
#[derive(Default)]
struct Known {
    people: HashMap<Uuid, Option<(Person, member::Tier)>>,
    uplines: HashMap<Uuid, Option<(Person, binding::Model)>>,
    links: HashMap<Uuid, Option<share_link::Model>>,
    /// Notes lines came through: author and public title.
    notes: HashMap<Uuid, Option<(Uuid, String)>>,
    /// Membership rewards each member holds from today before this payment, in fen (their
    /// counter as read: the payment books only if it still says so).
    rewards_today: HashMap<Uuid, i64>,
}

impl Known {
    async fn person(
        &mut self,
        db: &impl ConnectionTrait,
        id: Uuid,
    ) -> Result<Option<(Person, member::Tier)>> {
        if let Some(known) = self.people.get(&id) {
            return Ok(*known);
        }
        let found = member::Entity::find_by_id(id).one(db).await?.map(|m| {
            (
                Person {
                    id: m.id,
                    frozen: m.frozen_at.is_some(),
                },
                m.tier,
            )
        });
        self.people.insert(id, found);
        Ok(found)
    }

    async fn upline_of(
        &mut self,
        db: &impl ConnectionTrait,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<(Person, binding::Model)>> {
        if let Some(known) = self.uplines.get(&id) {
            return Ok(known.clone());
        }
        let found = match hierarchy::active_binding(db, id, now).await? {
            None => None,
            Some(b) => self.person(db, b.upline_id).await?.map(|(p, _)| (p, b)),
        };
        self.uplines.insert(id, found.clone());
        Ok(found)
    }

    /// [`Known::upline_of`] for a member whose row is at hand: one without an upline
    /// (`upline_id`, kept with its bindings) has no active binding, and costs no statement.
    async fn upline_of_member(
        &mut self,
        db: &impl ConnectionTrait,
        m: &member::Model,
        now: DateTime<Utc>,
    ) -> Result<Option<(Person, binding::Model)>> {
        match m.upline_id {
            None => Ok(None),
            Some(_) => self.upline_of(db, m.id, now).await,
        }
    }

    async fn link(
        &mut self,
        db: &impl ConnectionTrait,
        id: Uuid,
    ) -> Result<Option<share_link::Model>> {
        if let Some(known) = self.links.get(&id) {
            return Ok(known.clone());
        }
        let found = share_link::Entity::find_by_id(id).one(db).await?;
        self.links.insert(id, found.clone());
        Ok(found)
    }

    async fn note(
        &mut self,
        db: &impl ConnectionTrait,
        id: Uuid,
    ) -> Result<Option<(Uuid, String)>> {
        if let Some(known) = self.notes.get(&id) {
            return Ok(known.clone());
        }
        let found = entity::note::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(|n| (n.author_id, n.published_title.unwrap_or(n.title)));
        self.notes.insert(id, found.clone());
        Ok(found)
    }

    async fn rewards_today(
        &mut self,
        db: &impl ConnectionTrait,
        member: Uuid,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        if let Some(known) = self.rewards_today.get(&member) {
            return Ok(*known);
        }
        let found = reward_days::read(db, member, now).await?;
        self.rewards_today.insert(member, found);
        Ok(found)
    }
}

/// Who a line is attributed to, from the buyer, the line's share link and the buyer's
/// active binding at `now`.
async fn attribute(
    db: &impl ConnectionTrait,
    known: &mut Known,
    buyer: &member::Model,
    line: &order_line::Model,
    now: DateTime<Utc>,
) -> Result<Attribution> {
    let me = Person {
        id: buyer.id,
        frozen: buyer.frozen_at.is_some(),
    };
    if buyer.tier != member::Tier::Buyer {
        return Ok(Attribution::SelfPurchase { buyer: me });
    }
    if let Some(link_id) = line.share_link_id
        && let Some(link) = known.link(db, link_id).await?
        && link.member_id != buyer.id
        && let Some((sharer, tier)) = known.person(db, link.member_id).await?
        && tier != member::Tier::Buyer
    {
        return Ok(Attribution::Promotion {
            sharer,
            share_link: Some(link.id),
            note: None,
        });
    }
    if let Some(note_id) = line.note_id
        && let Some((author, _)) = known.note(db, note_id).await?
        && author != buyer.id
        && let Some((sharer, tier)) = known.person(db, author).await?
        && tier != member::Tier::Buyer
    {
        return Ok(Attribution::Promotion {
            sharer,
            share_link: None,
            note: Some(note_id),
        });
    }
    if let Some((upline, b)) = known.upline_of_member(db, buyer, now).await? {
        return Ok(Attribution::Bound {
            upline,
            binding: b.id,
            partner: b.kind == binding::Kind::PartnerLink,
        });
    }
    Ok(Attribution::Nobody)
}

/// [`attribute`]'s rule on rows already read (the cart and the checkout preview, which read
/// them for many lines at once): the buyer's own purchase as a push-hand or partner; else
/// the share link or note of a push-hand or partner other than the buyer (`link`: what the
/// code names and its member); else the buyer's active binding (`upline`: the upline and the binding); else
/// nobody.
pub fn attribution_of(
    buyer: &member::Model,
    link: Option<(Referral, &member::Model)>,
    upline: Option<(&member::Model, &binding::Model)>,
) -> Attribution {
    let person = |m: &member::Model| Person {
        id: m.id,
        frozen: m.frozen_at.is_some(),
    };
    if buyer.tier != member::Tier::Buyer {
        return Attribution::SelfPurchase {
            buyer: person(buyer),
        };
    }
    if let Some((link, sharer)) = link
        && link.member_id != buyer.id
        && sharer.id == link.member_id
        && sharer.tier != member::Tier::Buyer
    {
        return Attribution::Promotion {
            sharer: person(sharer),
            share_link: link.share_link,
            note: link.note,
        };
    }
    if let Some((upline, b)) = upline {
        return Attribution::Bound {
            upline: person(upline),
            binding: b.id,
            partner: b.kind == binding::Kind::PartnerLink,
        };
    }
    Attribution::Nobody
}

/// Books the earnings of every line of an order of `buyer` being paid: reads who earns
/// through `db`, and leaves the earnings' rows, their ledger entries and the balance moves to
/// `writes`, which the payment applies together with its transition.
pub async fn book_order(
    txn: &impl ConnectionTrait,
    writes: &mut Writes,
    o: &order::Model,
    buyer: &member::Model,
    lines: &[order_line::Model],
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Vec<earning::Model>> {
    let mut booked = Vec::new();
    let mut entries = Vec::new();
    let mut known = Known::default();
    for line in lines {
        let who = attribute(txn, &mut known, buyer, line, now).await?;
        let first = match who {
            Attribution::SelfPurchase { buyer } => Some(buyer.id),
            Attribution::Promotion { sharer, .. } => Some(sharer.id),
            Attribution::Bound { upline, .. } => Some(upline.id),
            Attribution::Nobody => None,
        };
        let mut uplines = [None, None];
        let first_upline = match first {
            Some(first) if first == buyer.id => known.upline_of_member(txn, buyer, now).await?,
            Some(first) => known.upline_of(txn, first, now).await?,
            None => None,
        };
        if let Some((u1, _)) = first_upline {
            uplines[0] = Some(u1);
            if policy.commission_levels >= 3
                && let Some((u2, _)) = known.upline_of(txn, u1.id, now).await?
            {
                uplines[1] = Some(u2);
            }
        }
        let facts = line_facts(line);
        for mut p in plan(&facts, who, uplines, policy) {
            explain_coupon(&mut p.explanation, line);
            if let Some(note) = p.explanation.note_id {
                p.explanation.note_title = known.note(txn, note).await?.map(|(_, t)| t);
            }
            if p.kind == earning::Kind::MembershipReward {
                let seen = match policy.membership_reward_daily_cap {
                    None => None,
                    Some(cap) => {
                        let seen = known.rewards_today(txn, p.member, now).await?;
                        // What this order books is not written yet: count it too.
                        let this_order: i64 = booked
                            .iter()
                            .filter(|e: &&earning::Model| {
                                e.member_id == p.member && e.kind == earning::Kind::MembershipReward
                            })
                            .map(|e| e.amount.fen())
                            .sum();
                        let room = (cap.fen() - seen - this_order).max(0);
                        if room == 0 {
                            continue;
                        }
                        if room < p.amount.fen() {
                            p.explanation.uncapped_amount = Some(p.amount.to_decimal());
                            p.amount = Money::from_fen(room);
                        }
                        Some(seen)
                    }
                };
                writes.membership_reward(p.member, reward_days::day(now), p.amount.fen(), seen);
            }
            let (earning, entry) = earning_row(writes, p, o.id, line, now)?;
            booked.push(earning);
            entries.push(entry);
        }
    }
    // Every earning of the order in one insert, then every ledger entry in one: the parts
    // of the payment's batch do not grow with its lines. (`n_plus_one` counts the batch's
    // round trips, which were constant before too; it does not see these parts.)
    if !booked.is_empty() {
        let backend = txn.get_database_backend();
        writes.push(insert_rows::<_, earning::ActiveModel>(backend, &booked)?);
        writes.push(insert_rows::<_, ledger_entry::ActiveModel>(
            backend, &entries,
        )?);
    }
    Ok(booked)
}

/// The facts [`plan`] needs of an order line: its amount is the line's **paid** amount,
/// after its coupon share — the base of every rebate and reward.
pub fn line_facts(line: &order_line::Model) -> LineFacts {
    LineFacts {
        amount: line.paid(),
        quantity: line.quantity,
        rebate_rate: line.rebate_rate,
        team_rebate_rate: line.team_rebate_rate,
        membership_activity: line.membership_activity,
    }
}

/// Adds to an explanation of an earning on `line` the list amount and the coupon share,
/// when a coupon took something off the line.
pub fn explain_coupon(x: &mut Explanation, line: &order_line::Model) {
    if line.coupon_share.fen() > 0 {
        x.list_amount = Some(line.amount.to_decimal());
        x.coupon_share = Some(line.coupon_share.to_decimal());
    }
}

/// The row of an earning on `line` of `order`, and of its ledger entry; moves the earner's
/// balances in `writes` (the rows are the caller's to insert).
fn earning_row(
    writes: &mut Writes,
    p: Planned,
    order: Uuid,
    line: &order_line::Model,
    now: DateTime<Utc>,
) -> Result<(earning::Model, ledger_entry::Model)> {
    let model = earning::Model {
        id: Uuid::now_v7(),
        member_id: p.member,
        order_id: Some(order),
        order_line_id: Some(line.id),
        product_id: Some(line.product_id),
        kind: p.kind,
        level: p.level,
        amount: p.amount,
        status: earning::Status::Pending,
        explanation: serde_json::to_string(&p.explanation).map_err(Error::internal)?,
        created_at: now,
        settle_after: None,
        settled_at: None,
        reversed_at: None,
    };
    let a = p.amount.fen();
    let d = Deltas {
        pending: a,
        lifetime: a,
        ..Deltas::default()
    };
    let refs = Refs {
        earning: Some(model.id),
        withdrawal: None,
    };
    let entry = super::ledger::entry_row(p.member, Event::Earned, refs, d, now);
    writes.balance(p.member, d, now);
    Ok((model, entry))
}

/// Starts the return window of an order's pending earnings: they may settle from
/// `settle_after`. Call in the transaction that completes the order, with the order's
/// `lines`: earnings are found by line (`idx_earnings_by_line`, migration 37; every earning
/// of an order is on one of its lines).
pub async fn start_window(
    txn: &impl ConnectionTrait,
    order_id: Uuid,
    lines: &[order_line::Model],
    settle_after: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    // By line and order only: the one index that applies is the line's (the status is
    // checked here, and by the update, which goes by primary key).
    let found: Vec<(Uuid, Uuid, earning::Status)> = earning::Entity::find()
        .select_only()
        .columns([
            earning::Column::Id,
            earning::Column::MemberId,
            earning::Column::Status,
        ])
        .filter(super::one_of(
            txn,
            earning::Column::OrderLineId,
            lines.iter().map(|l| l.id),
        ))
        .filter(earning::Column::OrderId.eq(order_id))
        .into_tuple()
        .all(txn)
        .await?;
    let (pending, earners): (Vec<Uuid>, Vec<Uuid>) = found
        .into_iter()
        .filter(|(_, _, status)| *status == earning::Status::Pending)
        .map(|(id, member, _)| (id, member))
        .unzip();
    if pending.is_empty() {
        return Ok(earners);
    }
    earning::Entity::update_many()
        .col_expr(earning::Column::SettleAfter, Expr::value(settle_after))
        .filter(super::one_of(txn, earning::Column::Id, pending))
        .filter(earning::Column::Status.eq(earning::Status::Pending))
        .exec(txn)
        .await?;
    Ok(earners)
}

/// Settles every pending earning whose return window has passed by `as_of` — not those of
/// a line with an open after-sale, which have no `settle_after` while it is open
/// ([`super::after_sales`]). Idempotent and
/// safe with several instances at once: each earning moves by a conditional update, so only
/// one run books its settlement. The balances move after the earnings, in key order (one
/// batch), as a payment or a refund moves them, so that none of them waits for another in a
/// circle. Returns how many settled and their total.
pub async fn settle(
    db: &DatabaseConnection,
    events: &Events,
    as_of: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(u64, Money)> {
    let (mut count, mut total) = (0u64, 0i64);
    loop {
        let due = earning::Entity::find()
            .filter(earning::Column::Status.eq(earning::Status::Pending))
            .filter(earning::Column::SettleAfter.lte(as_of))
            .order_by_asc(earning::Column::SettleAfter)
            .order_by_asc(earning::Column::Id)
            .limit(200)
            .all(db)
            .await?;
        if due.is_empty() {
            return Ok((count, Money::from_fen(total)));
        }
        let txn = crate::db::begin_write(db).await?;
        let mut moved = Vec::new();
        let mut writes = Writes::default();
        for e in due {
            let updated = earning::Entity::update_many()
                .col_expr(
                    earning::Column::Status,
                    Expr::value(earning::Status::Settled),
                )
                .col_expr(earning::Column::SettledAt, Expr::value(now))
                .filter(earning::Column::Id.eq(e.id))
                .filter(earning::Column::Status.eq(earning::Status::Pending))
                // Still due: an after-sale opened since the read paused it (no
                // `settle_after`), and the earning waits for it to close.
                .filter(earning::Column::SettleAfter.lte(as_of))
                .exec(&txn)
                .await?;
            if updated.rows_affected == 1 {
                let a = e.amount.fen();
                let d = Deltas {
                    pending: -a,
                    available: a,
                    ..Deltas::default()
                };
                writes.book(
                    e.member_id,
                    Event::Settled,
                    Refs {
                        earning: Some(e.id),
                        withdrawal: None,
                    },
                    d,
                    now,
                );
                // Settled money reaches the leaderboards of the week and month it settles in.
                writes.leaderboards(leaderboards::moves(
                    e.member_id,
                    e.level,
                    a,
                    sales_of(&e),
                    now,
                ));
                count += 1;
                total += a;
                moved.push(LiveEvent::new(e.member_id, LiveKind::EarningSettled, e.id));
                writes.push(super::webhooks::outbox(
                    "earning.settled",
                    serde_json::json!({
                        "earning": {
                            "id": super::webhooks::node_id("Earning", e.id),
                            "memberId": super::webhooks::node_id("Member", e.member_id),
                            "orderId": e.order_id.map(|o| super::webhooks::node_id("Order", o)),
                            "kind": sea_orm::ActiveEnum::to_value(&e.kind),
                            "level": e.level,
                            "amount": super::webhooks::money(e.amount),
                            "settledAt": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        }
                    }),
                    now,
                ));
            }
        }
        // The balances after the earnings, in key order, as a payment moves them.
        writes.run(&txn).await?;
        txn.commit().await?;
        if moved.is_empty() {
            // Another instance took this batch; look again (it will come back empty soon).
            tokio::task::yield_now().await;
        }
        events.publish(moved).await;
    }
}

/// The sale an earning stands for on the `TEAM_SALES` board, in fen: for a team rebate
/// (level 2 or 3) its line's paid amount, for an adjustment of one minus the part of it the
/// refunded units took back; 0 for the rest.
fn sales_of(e: &earning::Model) -> i64 {
    if e.level < 2 {
        return 0;
    }
    let Ok(x) = serde_json::from_str::<Explanation>(&e.explanation) else {
        return 0;
    };
    let fen = |d: Decimal| Money::from_decimal(d).map_or(0, Money::fen);
    match e.kind {
        earning::Kind::Adjustment => -x.base_refunded.map_or(0, fen),
        _ => fen(x.base_amount),
    }
}

/// The live events of earnings just booked or changed (publish them after the commit).
pub fn events_of(changed: &[earning::Model]) -> Vec<LiveEvent> {
    changed
        .iter()
        .map(|e| {
            let kind = if e.status == earning::Status::Reversed {
                LiveKind::EarningReversed
            } else {
                LiveKind::EarningCreated
            };
            LiveEvent::new(e.member_id, kind, e.id)
        })
        .collect()
}

/// The part of an earning of `amount` fen that refunding units `before..after` of `q` takes
/// back. Cumulative floors make the parts sum to exactly `amount` once all units are back.
pub fn refund_portion(amount: i64, q: i32, before: i32, after: i32) -> i64 {
    let share = |n: i32| (i128::from(amount) * i128::from(n) / i128::from(q)) as i64;
    share(after) - share(before)
}

/// Undoes the earnings of refunded units `before..after` of a line: a pending earning is
/// `REVERSED` when the whole line goes back at once, or reduced by a pending negative
/// `ADJUSTMENT` (settling with it) for part of a line; a settled one gets a settled negative
/// `ADJUSTMENT` (the balance may go negative). A reversed membership reward gives its amount
/// back to the day it was earned on (the daily cap's counter). When the last units of a line
/// go back, a pending earning is `REVERSED` together with the pending adjustments of the
/// earlier parts (nothing is left to settle). Call in the refund's transaction.
pub async fn claw_back_line(
    txn: &impl ConnectionTrait,
    writes: &mut Writes,
    line: &order_line::Model,
    before: i32,
    after: i32,
    now: DateTime<Utc>,
) -> Result<Vec<earning::Model>> {
    let earnings = earning::Entity::find()
        .filter(earning::Column::OrderLineId.eq(line.id))
        .filter(earning::Column::Kind.ne(earning::Kind::Adjustment))
        .order_by_asc(earning::Column::Id)
        .all(txn)
        .await?;
    let whole_line = before == 0 && after == line.quantity;
    let last_units = after == line.quantity;
    // The pending adjustments of earlier partial refunds, by the earning they adjust: the
    // last refund of a line finishes them with their earning.
    let mut adjustments: HashMap<Uuid, Vec<earning::Model>> = HashMap::new();
    if last_units && !whole_line {
        for adj in earning::Entity::find()
            .filter(earning::Column::OrderLineId.eq(line.id))
            .filter(earning::Column::Kind.eq(earning::Kind::Adjustment))
            .order_by_asc(earning::Column::Id)
            .all(txn)
            .await?
        {
            let x: Explanation = serde_json::from_str(&adj.explanation).map_err(Error::internal)?;
            if let Some(of) = x.adjusts_earning_id {
                adjustments.entry(of).or_default().push(adj);
            }
        }
    }
    let mut changed = Vec::new();
    for e in earnings {
        let a = e.amount.fen();
        if e.status == earning::Status::Reversed {
            continue;
        }
        // The line's last units go back while the earning still waits: nothing of it is left
        // to settle, so it ends `REVERSED` with its pending adjustments instead of staying
        // `PENDING` beside them for ever. The entries move what one more adjustment would
        // have (the earning's amount back, the adjustments' given back).
        let adjusted = adjustments.remove(&e.id).unwrap_or_default();
        if e.status == earning::Status::Pending
            && last_units
            && !whole_line
            && adjusted
                .iter()
                .all(|x| x.status == earning::Status::Pending)
        {
            for x in std::iter::once(&e).chain(&adjusted) {
                let reversed = earning::Entity::update_many()
                    .col_expr(
                        earning::Column::Status,
                        Expr::value(earning::Status::Reversed),
                    )
                    .col_expr(earning::Column::ReversedAt, Expr::value(now))
                    .filter(earning::Column::Id.eq(x.id))
                    .filter(earning::Column::Status.eq(earning::Status::Pending))
                    .exec(txn)
                    .await?;
                if reversed.rows_affected != 1 {
                    // A settlement took it meanwhile: nothing of this refund is written.
                    return Err(Error::rule(
                        "REFUND_CONFLICT",
                        "the line's earnings settled meanwhile; retry the refund",
                    ));
                }
                let amount = x.amount.fen();
                let d = Deltas {
                    pending: -amount,
                    lifetime: -amount,
                    ..Deltas::default()
                };
                writes.book(
                    x.member_id,
                    Event::Reversed,
                    Refs {
                        earning: Some(x.id),
                        withdrawal: None,
                    },
                    d,
                    now,
                );
                changed.push(earning::Model {
                    status: earning::Status::Reversed,
                    reversed_at: Some(now),
                    ..x.clone()
                });
            }
            continue;
        }
        if e.status == earning::Status::Pending && whole_line {
            let reversed = earning::Entity::update_many()
                .col_expr(
                    earning::Column::Status,
                    Expr::value(earning::Status::Reversed),
                )
                .col_expr(earning::Column::ReversedAt, Expr::value(now))
                .filter(earning::Column::Id.eq(e.id))
                .filter(earning::Column::Status.eq(earning::Status::Pending))
                .exec(txn)
                .await?;
            if reversed.rows_affected == 1 {
                // The day's counter before the balance: payments take it first too.
                if e.kind == earning::Kind::MembershipReward {
                    reward_days::give_back(txn, e.member_id, e.created_at, a).await?;
                }
                let d = Deltas {
                    pending: -a,
                    lifetime: -a,
                    ..Deltas::default()
                };
                writes.book(
                    e.member_id,
                    Event::Reversed,
                    Refs {
                        earning: Some(e.id),
                        withdrawal: None,
                    },
                    d,
                    now,
                );
                changed.push(earning::Model {
                    status: earning::Status::Reversed,
                    reversed_at: Some(now),
                    ..e
                });
                continue;
            }
        }
        let portion = refund_portion(a, line.quantity, before, after);
        if portion == 0 {
            continue;
        }
        // Settled or not as read: should a settlement commit in between (PostgreSQL, read
        // committed), the pending adjustment simply settles in the next run with the same
        // net effect.
        let settled = e.status == earning::Status::Settled;
        let mut explanation: Explanation =
            serde_json::from_str(&e.explanation).map_err(Error::internal)?;
        explanation.rule = "ADJUSTMENT".into();
        explanation.adjusts_earning_id = Some(e.id);
        explanation.units = Some(after - before);
        explanation.policy_version = POLICY_VERSION.into();
        let base_refunded = refund_portion(line.paid().fen(), line.quantity, before, after);
        explanation.base_refunded = Some(Money::from_fen(base_refunded).to_decimal());
        let model = earning::Model {
            id: Uuid::now_v7(),
            member_id: e.member_id,
            order_id: e.order_id,
            order_line_id: e.order_line_id,
            product_id: e.product_id,
            kind: earning::Kind::Adjustment,
            level: e.level,
            amount: Money::from_fen(-portion),
            status: if settled {
                earning::Status::Settled
            } else {
                earning::Status::Pending
            },
            explanation: serde_json::to_string(&explanation).map_err(Error::internal)?,
            created_at: now,
            settle_after: if settled { Some(now) } else { e.settle_after },
            settled_at: settled.then_some(now),
            reversed_at: None,
        };
        writes
            .push(earning::Entity::insert(earning::ActiveModel::from(model.clone())).into_query());
        if settled {
            // Taken back after settlement: off the leaderboards of the period the earning
            // settled in, however long ago (a pending adjustment counts when it settles).
            writes.leaderboards(leaderboards::moves(
                e.member_id,
                e.level,
                -portion,
                -base_refunded,
                e.settled_at.unwrap_or(now),
            ));
        }
        let d = if settled {
            Deltas {
                available: -portion,
                lifetime: -portion,
                ..Deltas::default()
            }
        } else {
            Deltas {
                pending: -portion,
                lifetime: -portion,
                ..Deltas::default()
            }
        };
        writes.book(
            e.member_id,
            Event::Adjusted,
            Refs {
                earning: Some(model.id),
                withdrawal: None,
            },
            d,
            now,
        );
        changed.push(model);
    }
    Ok(changed)
}

/// An earning `viewer` may see (its member's and admins'), or `NOT_FOUND`.
pub async fn visible(
    db: &impl ConnectionTrait,
    viewer: &super::auth::Viewer,
    id: Uuid,
) -> Result<earning::Model> {
    earning::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|e| viewer.is_or_admin(e.member_id))
        .ok_or_else(|| Error::not_found("earning"))
}

/// `member`'s earning `id`; `None` when it is gone or someone else's.
pub async fn of_member(
    db: &impl ConnectionTrait,
    member: Uuid,
    id: Uuid,
) -> Result<Option<earning::Model>> {
    Ok(earning::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|e| e.member_id == member))
}

/// Position after the last earning of a page: newest first.
pub type EarningCursor = super::page::NewestCursor;

/// A member's earnings, newest first, optionally of one kind and status.
pub async fn list(
    db: &impl ConnectionTrait,
    member: Uuid,
    kind: Option<earning::Kind>,
    status: Option<earning::Status>,
    after: Option<&EarningCursor>,
    first: u64,
) -> Result<super::page::Page<earning::Model>> {
    let mut q = earning::Entity::find().filter(earning::Column::MemberId.eq(member));
    if let Some(k) = kind {
        q = q.filter(earning::Column::Kind.eq(k));
    }
    if let Some(s) = status {
        q = q.filter(earning::Column::Status.eq(s));
    }
    super::page::newest_first(
        db,
        q,
        earning::Column::CreatedAt,
        earning::Column::Id,
        after,
        first,
    )
    .await
}
