//! Supplier statements (S2B2C, issue #31 item 4): what each merchant sold in a month, what
//! was refunded, the platform's service fee, and what the platform owes the merchant.
//! Read-only: a statement is computed from the orders, lines, refunds and fee rates each
//! time it is read; nothing here writes but [`set_category_fee`].
//!
//! # Which lines, which month
//! - **Months are Asia/Shanghai calendar months** (UTC+8, no daylight saving since 1991):
//!   "2026-12" runs from 2026-11-30T16:00:00Z to 2026-12-31T16:00:00Z. The merchants and
//!   the platform reconcile in China's civil time; a UTC month would put the evening of the
//!   last day of a month into the next one.
//! - **Only completed, settled lines count**: a line is in a statement once its order has
//!   completed and the return window (`return_window_days`) has passed since, with no
//!   after-sale open on it (an open one pauses the line's settlement, as it does its
//!   earnings). Until then it is in no statement, so a month's statement grows until its
//!   last lines settle (up to the return window after the month ends, longer while an
//!   after-sale is open) and is final from then on.
//! - A **sale** is booked in the month its order completed: the line's units and its paid
//!   amount (the list amount less its coupon share; shipping is never part of it).
//! - A **refund** (a refund the provider confirmed, `SUCCEEDED`) of a settled line is booked
//!   in the later of the month its line's sale is booked in and the month it completed: a
//!   refund before completion lands beside its sale, one after settlement in its own month
//!   (then a month's payable may be negative: it is set off against the next). Units
//!   refunded without a provider (an order paid by hand and refunded at once) have no refund
//!   row and no time of their own: they are booked beside their line's sale.
//!
//! # The fee, to the fen
//! Each category has a service fee rate, 0–100 %, set by admins ([`set_category_fee`]); rates
//! are appended with the time they take effect, never edited. A line pays the rate of its
//! product's category in force when its order was paid — the leaf's own rate, else its
//! top-level category's, else 0 — so a new rate never rewrites a past statement.
//!
//! The fee of each entry is `amount × rate` **rounded half up to the fen, per entry** (a
//! sale, or a refund, which gives its own fee back the same way: `-(refund × rate)` rounded
//! half up). The statement's fee is the sum of its entries' fees, and the payable amount
//! is `sales − refunds − fee`: every figure is a sum of whole fen, so the lines of the CSV
//! add up to its totals exactly. (Rounding the month's total instead would leave totals
//! that no list of lines explains.)

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use entity::{
    Money, Rate, after_sale, category, category_service_fee, order, order_line, product, refund,
    sku,
};
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use crate::error::{Error, Result};

/// Asia/Shanghai: UTC+8 all year.
fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"))
}

/// A calendar month in Asia/Shanghai time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    /// 1–12.
    pub month: u32,
}

impl Month {
    /// Parses `YYYY-MM` (years 2000–2999); `VALIDATION` on `field` otherwise.
    pub fn parse(field: &'static str, raw: &str) -> Result<Month> {
        let bad = || Error::validation(field, "must be a month as YYYY-MM, e.g. 2026-12");
        let (y, m) = raw.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        if !(2000..=2999).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    /// The month (in Shanghai) that `t` falls in.
    pub fn of(t: DateTime<Utc>) -> Month {
        let local = t.with_timezone(&shanghai());
        Month {
            year: local.year(),
            month: local.month(),
        }
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn prev(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// Its first instant, in UTC.
    pub fn start(self) -> DateTime<Utc> {
        let date = NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default();
        shanghai()
            .from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
            .single()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    /// The first instant of the next month, in UTC.
    pub fn end(self) -> DateTime<Utc> {
        self.next().start()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// `fen × rate`, rounded half up to the fen (amounts here are never negative).
pub fn fee_of(amount: Money, rate: Rate) -> Money {
    let num = i128::from(amount.fen()) * i128::from(rate.bp());
    let fen = (num + 5_000).div_euclid(10_000);
    Money::from_fen(i64::try_from(fen).unwrap_or(i64::MAX))
}

/// What an entry books.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Sale,
    Refund,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Sale => "SALE",
            EntryKind::Refund => "REFUND",
        }
    }
}

/// One entry of a statement: a settled line's sale, or a refund of one.
#[derive(Clone, Debug)]
pub struct Entry {
    pub kind: EntryKind,
    /// When it happened: the order's completion (a sale) or the refund's.
    pub at: DateTime<Utc>,
    pub order_id: Uuid,
    pub order_line_id: Uuid,
    /// The refund, for a refund entry.
    pub refund_id: Option<Uuid>,
    pub product_id: Uuid,
    pub product_name: String,
    pub sku_id: Uuid,
    pub sku_name: String,
    pub category_id: Uuid,
    /// Units sold (a sale) or refunded (a refund); never negative.
    pub units: i64,
    /// What the buyer paid for them (a sale) or got back (a refund); never negative.
    pub amount: Money,
    pub fee_rate: Rate,
    /// The fee on `amount`, rounded half up to the fen; a refund gives it back.
    pub fee: Money,
}

impl Entry {
    /// What the entry adds to the payable amount (negative for a refund).
    pub fn payable(&self) -> i64 {
        match self.kind {
            EntryKind::Sale => self.amount.fen() - self.fee.fen(),
            EntryKind::Refund => -(self.amount.fen() - self.fee.fen()),
        }
    }
}

/// The figures of a set of entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub units_sold: i64,
    /// Paid amounts of the sales.
    pub sales: Money,
    pub units_refunded: i64,
    pub refunds: Money,
    /// Sales' fees less refunds' fees.
    pub service_fee: Money,
    /// `sales − refunds − service_fee`.
    pub payable: Money,
}

impl Totals {
    fn add(&mut self, e: &Entry) {
        let f = |m: Money| m.fen();
        match e.kind {
            EntryKind::Sale => {
                self.units_sold += e.units;
                self.sales = Money::from_fen(f(self.sales) + f(e.amount));
                self.service_fee = Money::from_fen(f(self.service_fee) + f(e.fee));
            }
            EntryKind::Refund => {
                self.units_refunded += e.units;
                self.refunds = Money::from_fen(f(self.refunds) + f(e.amount));
                self.service_fee = Money::from_fen(f(self.service_fee) - f(e.fee));
            }
        }
        self.payable = Money::from_fen(f(self.payable) + e.payable());
    }
}

/// The statement of a category within a month.
#[derive(Clone, Debug)]
pub struct CategoryTotals {
    pub category_id: Uuid,
    pub totals: Totals,
}

/// A merchant's statement of a month.
#[derive(Clone, Debug)]
pub struct Statement {
    pub merchant_id: Uuid,
    pub month: Month,
    pub totals: Totals,
    /// Per category, in category id order.
    pub categories: Vec<CategoryTotals>,
    /// Sales and refunds, by time, then line.
    pub entries: Vec<Entry>,
}

impl Statement {
    fn new(merchant_id: Uuid, month: Month, mut entries: Vec<Entry>) -> Statement {
        entries.sort_by_key(|e| {
            (
                e.at,
                e.order_line_id,
                e.kind == EntryKind::Refund,
                e.refund_id,
            )
        });
        let mut totals = Totals::default();
        let mut by_category: BTreeMap<Uuid, Totals> = BTreeMap::new();
        for e in &entries {
            totals.add(e);
            by_category.entry(e.category_id).or_default().add(e);
        }
        Statement {
            merchant_id,
            month,
            totals,
            categories: by_category
                .into_iter()
                .map(|(category_id, totals)| CategoryTotals {
                    category_id,
                    totals,
                })
                .collect(),
            entries,
        }
    }

    /// The statement as CSV (RFC 4180, UTF-8, `\r\n` line ends): a header row, one row per
    /// entry, then a `TOTAL` row whose `units`, `amount`, `fee` and `payable` are the sums
    /// of the rows above. A refund's row is signed negative (units, amount, fee given back,
    /// payable), so every column adds up as it stands. Money as `12.30`, rates as decimals
    /// (`0.05`), times in RFC 3339 UTC, ids as UUIDs. A text cell that a spreadsheet would
    /// read as a formula (starting with `=`, `+`, `-`, `@`, tab or CR) is prefixed with `'`.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "month,kind,at,order_id,order_line_id,refund_id,product_id,product_name,sku_id,sku_name,category_id,units,amount,fee_rate,fee,payable\r\n",
        );
        let month = self.month.to_string();
        for e in &self.entries {
            let sign = match e.kind {
                EntryKind::Sale => 1,
                EntryKind::Refund => -1,
            };
            let cells = [
                month.clone(),
                e.kind.as_str().to_owned(),
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                e.order_id.to_string(),
                e.order_line_id.to_string(),
                e.refund_id.map(|r| r.to_string()).unwrap_or_default(),
                e.product_id.to_string(),
                cell(&e.product_name),
                e.sku_id.to_string(),
                cell(&e.sku_name),
                e.category_id.to_string(),
                (sign * e.units).to_string(),
                Money::from_fen(sign * e.amount.fen()).to_string(),
                e.fee_rate.to_decimal().to_string(),
                Money::from_fen(sign * e.fee.fen()).to_string(),
                Money::from_fen(e.payable()).to_string(),
            ];
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        let t = &self.totals;
        let mut total = vec![month, "TOTAL".to_owned()];
        total.extend(std::iter::repeat_n(String::new(), 9));
        total.extend([
            (t.units_sold - t.units_refunded).to_string(),
            Money::from_fen(t.sales.fen() - t.refunds.fen()).to_string(),
            String::new(),
            t.service_fee.to_string(),
            t.payable.to_string(),
        ]);
        out.push_str(&total.join(","));
        out.push_str("\r\n");
        out
    }
}

/// A text cell: quoted when it holds a comma, quote or line break; defused when a
/// spreadsheet would take it for a formula.
fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// After-sale states that pause a line's settlement.
const OPEN_AFTER_SALES: [after_sale::Status; 4] = [
    after_sale::Status::Requested,
    after_sale::Status::Approved,
    after_sale::Status::ReturnShipped,
    after_sale::Status::Refunding,
];

/// The rates in force: per category, its rows by time.
struct Rates(HashMap<Uuid, Vec<(DateTime<Utc>, Rate)>>);

impl Rates {
    async fn load(db: &impl ConnectionTrait, categories: &[Uuid]) -> Result<Rates> {
        let mut map: HashMap<Uuid, Vec<(DateTime<Utc>, Rate)>> = HashMap::new();
        if categories.is_empty() {
            return Ok(Rates(map));
        }
        for row in category_service_fee::Entity::find()
            .filter(category_service_fee::Column::CategoryId.is_in(categories.iter().copied()))
            .order_by_asc(category_service_fee::Column::EffectiveFrom)
            .order_by_asc(category_service_fee::Column::Id)
            .all(db)
            .await?
        {
            map.entry(row.category_id)
                .or_default()
                .push((row.effective_from, row.rate));
        }
        Ok(Rates(map))
    }

    /// The rate of `category` at `at`, if one was set by then.
    fn own(&self, category: Uuid, at: DateTime<Utc>) -> Option<Rate> {
        self.0
            .get(&category)?
            .iter()
            .rev()
            .find(|(from, _)| *from <= at)
            .map(|(_, r)| *r)
    }
}

/// Everything needed to turn lines into entries.
struct Context {
    products: HashMap<Uuid, product::Model>,
    skus: HashMap<Uuid, sku::Model>,
    parents: HashMap<Uuid, Option<Uuid>>,
    rates: Rates,
}

impl Context {
    async fn load(
        db: &impl ConnectionTrait,
        merchant_id: Uuid,
        sku_ids: HashSet<Uuid>,
    ) -> Result<Context> {
        let products: HashMap<Uuid, product::Model> = product::Entity::find()
            .filter(product::Column::MerchantId.eq(merchant_id))
            .all(db)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let skus: HashMap<Uuid, sku::Model> = if sku_ids.is_empty() {
            HashMap::new()
        } else {
            sku::Entity::find()
                .filter(sku::Column::Id.is_in(sku_ids))
                .all(db)
                .await?
                .into_iter()
                .map(|s| (s.id, s))
                .collect()
        };
        let leaves: HashSet<Uuid> = products.values().map(|p| p.category_id).collect();
        let mut parents = HashMap::new();
        let mut ids: Vec<Uuid> = leaves.iter().copied().collect();
        if !leaves.is_empty() {
            for c in category::Entity::find()
                .filter(category::Column::Id.is_in(leaves))
                .all(db)
                .await?
            {
                parents.insert(c.id, c.parent_id);
                ids.extend(c.parent_id);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let rates = Rates::load(db, &ids).await?;
        Ok(Context {
            products,
            skus,
            parents,
            rates,
        })
    }

    /// The rate a line of a product in `category` pays, for an order paid at `paid_at`.
    fn rate(&self, category: Uuid, paid_at: DateTime<Utc>) -> Rate {
        self.rates
            .own(category, paid_at)
            .or_else(|| {
                self.parents
                    .get(&category)
                    .copied()
                    .flatten()
                    .and_then(|p| self.rates.own(p, paid_at))
            })
            .unwrap_or(Rate::ZERO)
    }

    fn entry(
        &self,
        kind: EntryKind,
        at: DateTime<Utc>,
        line: &order_line::Model,
        paid_at: DateTime<Utc>,
        refund: Option<&refund::Model>,
        direct: Option<(i64, Money)>,
    ) -> Option<Entry> {
        let p = self.products.get(&line.product_id)?;
        let fee_rate = self.rate(p.category_id, paid_at);
        let (units, amount) = match (refund, direct) {
            (Some(r), _) => (i64::from(r.quantity), r.amount),
            (None, Some(d)) => d,
            (None, None) => (i64::from(line.quantity), line.paid()),
        };
        Some(Entry {
            kind,
            at,
            order_id: line.order_id,
            order_line_id: line.id,
            refund_id: refund.map(|r| r.id),
            product_id: p.id,
            product_name: p.name.clone(),
            sku_id: line.sku_id,
            sku_name: self
                .skus
                .get(&line.sku_id)
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            category_id: p.category_id,
            units,
            amount,
            fee_rate,
            fee: fee_of(amount, fee_rate),
        })
    }
}

/// The merchant's products, as a subquery.
fn merchant_products(merchant_id: Uuid) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(product::Column::Id)
        .from(product::Entity)
        .and_where(product::Column::MerchantId.eq(merchant_id))
        .to_owned()
}

/// The statements of merchant `merchant_id` for the months `from..=to`, as of `now`
/// (lines settle `window` after their order's completion). One entry per month, oldest
/// first, empty months included.
pub async fn statements(
    db: &DatabaseConnection,
    merchant_id: Uuid,
    from: Month,
    to: Month,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<Statement>> {
    let (start, end) = (from.start(), to.end());
    // Completed early enough to have settled by now.
    let settled_by = now - window;
    // 1. The sales: lines of the merchant whose orders completed within the range and have
    //    settled.
    let orders_in_range: HashMap<Uuid, order::Model> = order::Entity::find()
        .filter(order::Column::CompletedAt.gte(start))
        .filter(order::Column::CompletedAt.lt(end))
        .filter(order::Column::CompletedAt.lte(settled_by))
        .filter(
            order::Column::Id.in_subquery(
                Query::select()
                    .column(order_line::Column::OrderId)
                    .from(order_line::Entity)
                    .and_where(
                        order_line::Column::ProductId.in_subquery(merchant_products(merchant_id)),
                    )
                    .to_owned(),
            ),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let mut lines: HashMap<Uuid, order_line::Model> = HashMap::new();
    if !orders_in_range.is_empty() {
        for l in order_line::Entity::find()
            .filter(order_line::Column::OrderId.is_in(orders_in_range.keys().copied()))
            .filter(order_line::Column::ProductId.in_subquery(merchant_products(merchant_id)))
            .all(db)
            .await?
        {
            lines.insert(l.id, l);
        }
    }
    // 2. Refunds completed within the range of the merchant's lines (their lines may have
    //    completed earlier), and refunds of the lines above completed before the range.
    let mut refunds: HashMap<Uuid, refund::Model> = HashMap::new();
    for r in refund::Entity::find()
        .filter(refund::Column::Status.eq(refund::Status::Succeeded))
        .filter(refund::Column::CompletedAt.gte(start))
        .filter(refund::Column::CompletedAt.lt(end))
        .filter(
            refund::Column::OrderLineId.in_subquery(
                Query::select()
                    .column(order_line::Column::Id)
                    .from(order_line::Entity)
                    .and_where(
                        order_line::Column::ProductId.in_subquery(merchant_products(merchant_id)),
                    )
                    .to_owned(),
            ),
        )
        .all(db)
        .await?
    {
        refunds.insert(r.id, r);
    }
    if !lines.is_empty() {
        for r in refund::Entity::find()
            .filter(refund::Column::Status.eq(refund::Status::Succeeded))
            .filter(refund::Column::OrderLineId.is_in(lines.keys().copied()))
            .all(db)
            .await?
        {
            refunds.insert(r.id, r);
        }
    }
    // The refunds' lines and orders that step 1 did not read.
    let missing_lines: HashSet<Uuid> = refunds
        .values()
        .map(|r| r.order_line_id)
        .filter(|l| !lines.contains_key(l))
        .collect();
    if !missing_lines.is_empty() {
        for l in order_line::Entity::find()
            .filter(order_line::Column::Id.is_in(missing_lines))
            .all(db)
            .await?
        {
            lines.insert(l.id, l);
        }
    }
    let mut orders = orders_in_range;
    let missing_orders: HashSet<Uuid> = lines
        .values()
        .map(|l| l.order_id)
        .filter(|o| !orders.contains_key(o))
        .collect();
    if !missing_orders.is_empty() {
        for o in order::Entity::find()
            .filter(order::Column::Id.is_in(missing_orders))
            .all(db)
            .await?
        {
            orders.insert(o.id, o);
        }
    }
    // Lines whose settlement an open after-sale pauses.
    let paused: HashSet<Uuid> = if lines.is_empty() {
        HashSet::new()
    } else {
        after_sale::Entity::find()
            .filter(after_sale::Column::OrderLineId.is_in(lines.keys().copied()))
            .filter(after_sale::Column::Status.is_in(OPEN_AFTER_SALES))
            .all(db)
            .await?
            .into_iter()
            .map(|a| a.order_line_id)
            .collect()
    };
    let ctx = Context::load(db, merchant_id, lines.values().map(|l| l.sku_id).collect()).await?;
    // A line counts when its order completed, settled by now, and no after-sale pauses it.
    let settled = |l: &order_line::Model| -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let o = orders.get(&l.order_id)?;
        let completed = o.completed_at?;
        (completed <= settled_by && !paused.contains(&l.id))
            .then_some((completed, o.paid_at.unwrap_or(completed)))
    };
    let mut by_month: BTreeMap<Month, Vec<Entry>> = BTreeMap::new();
    for l in lines.values() {
        let Some((completed, paid_at)) = settled(l) else {
            continue;
        };
        if completed < start || completed >= end {
            continue;
        }
        if let Some(e) = ctx.entry(EntryKind::Sale, completed, l, paid_at, None, None) {
            by_month.entry(Month::of(completed)).or_default().push(e);
        }
        // Units refunded without a provider (an order paid by hand, refunded at once) have
        // no refund row: booked beside the sale, for what the buyer paid for them.
        let (row_units, row_fen) = refunds
            .values()
            .filter(|r| r.order_line_id == l.id)
            .fold((0i64, 0i64), |(u, a), r| {
                (u + i64::from(r.quantity), a + r.amount.fen())
            });
        let units = i64::from(l.refunded_quantity) - row_units;
        if units > 0 {
            let all = super::orders::paid_portion(l, 0, l.refunded_quantity);
            let direct = (units, Money::from_fen(all - row_fen));
            if let Some(e) = ctx.entry(EntryKind::Refund, completed, l, paid_at, None, Some(direct))
            {
                by_month.entry(Month::of(completed)).or_default().push(e);
            }
        }
    }
    for r in refunds.values() {
        let Some(l) = lines.get(&r.order_line_id) else {
            continue;
        };
        let Some((completed, paid_at)) = settled(l) else {
            continue;
        };
        let at = r.completed_at.unwrap_or(r.updated_at).max(completed);
        if at >= start
            && at < end
            && let Some(e) = ctx.entry(EntryKind::Refund, at, l, paid_at, Some(r), None)
        {
            by_month.entry(Month::of(at)).or_default().push(e);
        }
    }
    let mut out = Vec::new();
    let mut m = from;
    while m <= to {
        out.push(Statement::new(
            merchant_id,
            m,
            by_month.remove(&m).unwrap_or_default(),
        ));
        m = m.next();
    }
    Ok(out)
}

/// One month's statement.
pub async fn statement(
    db: &DatabaseConnection,
    merchant_id: Uuid,
    month: Month,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<Statement> {
    statements(db, merchant_id, month, month, window, now)
        .await?
        .pop()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("no statement computed")))
}

/// The months a merchant's statement list shows: the `count` months up to `now`'s, newest
/// first, none before the merchant was created.
pub fn recent_months(created: DateTime<Utc>, now: DateTime<Utc>, count: u32) -> (Month, Month) {
    let to = Month::of(now);
    let first = Month::of(created.min(now));
    let mut from = to;
    for _ in 1..count {
        if from <= first {
            break;
        }
        from = from.prev();
    }
    (from, to)
}

/// ADMIN: sets category `category_id`'s service fee rate (0 to 1, four decimal places at
/// most: `VALIDATION` on `rate` otherwise) from `now` on. Lines of orders paid before keep
/// the rate they had. Audited with the previous rate.
pub async fn set_category_fee(
    db: &DatabaseConnection,
    actor: &Actor,
    category_id: Uuid,
    rate: rust_decimal::Decimal,
    now: DateTime<Utc>,
) -> Result<category_service_fee::Model> {
    let rate = Rate::from_decimal(rate).ok_or_else(|| {
        Error::validation(
            "rate",
            "must be between 0 and 1 (100 %) with at most 4 decimal places",
        )
    })?;
    let txn = crate::db::begin_write(db).await?;
    super::catalog::category(&txn, category_id).await?;
    let previous = Rates::load(&txn, &[category_id])
        .await?
        .own(category_id, now)
        .map(|r| r.to_decimal().to_string());
    let row = category_service_fee::Model {
        id: Uuid::now_v7(),
        category_id,
        rate,
        effective_from: now,
        set_by: Some(actor.member),
    };
    category_service_fee::Entity::insert(category_service_fee::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        Action::CategoryServiceFeeSet,
        Some((TargetType::Category, category_id)),
        json!({ "rate": rate.to_decimal().to_string(), "previous": previous }),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(row)
}

/// The rate in force for `category_id` now: its own, else its parent's, else 0 — with
/// whether it is the category's own.
pub async fn category_fee(
    db: &impl ConnectionTrait,
    category_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Rate> {
    let c = super::catalog::category(db, category_id).await?;
    let mut ids = vec![category_id];
    ids.extend(c.parent_id);
    let rates = Rates::load(db, &ids).await?;
    Ok(rates
        .own(category_id, now)
        .or_else(|| c.parent_id.and_then(|p| rates.own(p, now)))
        .unwrap_or(Rate::ZERO))
}

/// A SKU whose stock is low.
pub struct StockAlert {
    pub sku: sku::Model,
    pub product: product::Model,
}

/// The merchant's SKUs with fewer than `below` units in stock, of products that are listed
/// or on their way (not rejected or delisted), fewest first, at most `limit`.
pub async fn stock_alerts(
    db: &impl ConnectionTrait,
    merchant_id: Uuid,
    below: i32,
    limit: u64,
) -> Result<Vec<StockAlert>> {
    use sea_orm::QuerySelect;
    let live = Query::select()
        .column(product::Column::Id)
        .from(product::Entity)
        .and_where(product::Column::MerchantId.eq(merchant_id))
        .and_where(
            product::Column::Status
                .is_in([product::Status::Published, product::Status::InCuration]),
        )
        .to_owned();
    let skus = sku::Entity::find()
        .filter(sku::Column::ProductId.in_subquery(live))
        .filter(sku::Column::Stock.lt(below))
        .order_by_asc(sku::Column::Stock)
        .order_by_asc(sku::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    let ids: HashSet<Uuid> = skus.iter().map(|s| s.product_id).collect();
    let products: HashMap<Uuid, product::Model> = if ids.is_empty() {
        HashMap::new()
    } else {
        product::Entity::find()
            .filter(product::Column::Id.is_in(ids))
            .all(db)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect()
    };
    Ok(skus
        .into_iter()
        .filter_map(|s| {
            let product = products.get(&s.product_id)?.clone();
            Some(StockAlert { sku: s, product })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_shanghai_months() {
        let m = Month::parse("m", "2026-12").expect("month");
        assert_eq!(m.start().to_rfc3339(), "2026-11-30T16:00:00+00:00");
        assert_eq!(m.end().to_rfc3339(), "2026-12-31T16:00:00+00:00");
        let late = Utc
            .with_ymd_and_hms(2026, 11, 30, 17, 0, 0)
            .single()
            .expect("t");
        assert_eq!(Month::of(late), m);
        assert_eq!(Month::parse("m", "2027-01").expect("m").prev(), m);
        for bad in [
            "2026-13", "2026-1", "26-12", "2026/12", "", "abcd-ef", "1999-12",
        ] {
            assert!(Month::parse("m", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fees_round_half_up_to_the_fen() {
        let r = Rate::from_bp(600);
        assert_eq!(fee_of(Money::from_fen(501), r).fen(), 30); // 30.06
        assert_eq!(fee_of(Money::from_fen(25), Rate::from_bp(2_000)).fen(), 5); // 5.0
        assert_eq!(fee_of(Money::from_fen(25), Rate::from_bp(1_000)).fen(), 3); // 2.5 up
        assert_eq!(fee_of(Money::from_fen(24), Rate::from_bp(1_000)).fen(), 2); // 2.4
        assert_eq!(fee_of(Money::from_fen(999), Rate::ONE).fen(), 999);
        assert_eq!(fee_of(Money::from_fen(999), Rate::ZERO).fen(), 0);
    }

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(cell("毛巾"), "毛巾");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=1+1"), "'=1+1");
    }
}
