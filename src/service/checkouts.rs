//! Checkouts written together: on PostgreSQL, the orders placed at the same moment go to the
//! database as one statement (their orders, their lines, and one stock decrement per SKU),
//! so that a flash sale's SKU row is locked, and a commit flushed, once for many orders.
//!
//! Every checkout joins the queue of the first SKU it takes (in SKU order). Each queue has
//! one writer, a task that takes what is queued, at most [`MOST`] orders at a time, and
//! writes it as one statement, which commits or fails whole. Should it break a constraint
//! (a SKU has fewer units left than the orders together take, a foreign key a row no longer
//! meets), its orders are written again one by one, in the order they came, so each gets
//! its own outcome, as if it had been written alone: at a sale's last units, the first to
//! come get them. Any other failure (a timeout, a lost connection) is every order's. An
//! order's rows are written together or not at all, whichever way it goes.
//!
//! A checkout waits for at most the statement in flight for its SKU; under load the
//! statements simply grow, where single writes would queue for the SKU's row inside the
//! database (and take a backend each while they wait). Checkouts of different SKUs go
//! through different queues, side by side. The rows go as JSON
//! (`jsonb_populate_recordset`), so that the statement's text, and its prepared plan, is the
//! same for any number of orders. Elsewhere (SQLite, one writer at a time anyway) each
//! checkout is its own transaction.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use entity::{cart_line, coupon, idempotency_key, order, order_line, sku};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, IntoIden, Query, SubQueryStatement, TableRef};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, IdenStatic, QueryFilter,
    QueryTrait, SqlErr,
};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::batch::{Batch, insert_rows, json_of, recordset};
use crate::events::Events;
use crate::metrics::Metrics;

/// The most orders one statement writes.
pub const MOST: usize = 64;

/// An order to write: its row, its lines, and the units it takes from each SKU.
pub struct Checkout {
    pub order: order::Model,
    pub lines: Vec<order_line::Model>,
    pub stock: BTreeMap<Uuid, i32>,
    /// The client's idempotency key, written with the order: its unique index refuses a
    /// second order under the same key.
    pub key: Option<idempotency_key::Model>,
    /// The cart lines the order comes from, deleted with its writes. The lines carry their
    /// ids (`order_lines.cart_line_id`, unique): a cart line ordered by another checkout
    /// breaks that index, and the order is written again alone, to its own outcome.
    pub cart_lines: Vec<Uuid>,
    /// The coupon the order uses, marked used with its writes: `in_use` goes up by the
    /// number of orders of the statement using it, which its CHECK keeps at most 1, so of
    /// orders using one coupon one is written (the others break the CHECK and are written
    /// again alone, to their own outcome).
    pub coupon: Option<Uuid>,
}

/// The queues of checkouts to write, one per SKU (cheap to clone: one per process is
/// shared), and the events through which a placed order says that stock moved
/// ([`super::orders::place_order_as`]).
#[derive(Clone)]
pub struct Checkouts {
    db: DatabaseConnection,
    events: Events,
    metrics: Arc<Metrics>,
    /// Checkouts by the first SKU they take (in SKU order), while any wait or are being
    /// written. Each queue has one writer at a time.
    queues: Arc<Mutex<HashMap<Uuid, Vec<Waiting>>>>,
}

struct Waiting {
    checkout: Checkout,
    done: oneshot::Sender<Result<(), DbErr>>,
}

impl Checkouts {
    pub fn new(db: DatabaseConnection, events: Events, metrics: Arc<Metrics>) -> Checkouts {
        Checkouts {
            db,
            events,
            metrics,
            queues: Arc::default(),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Writes `checkout`'s rows, with other checkouts' or alone (see the module's doc); a
    /// CHECK violation means a SKU has fewer units left than it takes.
    pub async fn write(&self, checkout: Checkout) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        let key = checkout.stock.keys().next().copied();
        let (Some(key), DbBackend::Postgres) = (key, backend) else {
            return self.write_once(std::slice::from_ref(&checkout)).await;
        };
        let (done, outcome) = oneshot::channel();
        let start = {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            let waiting = Waiting { checkout, done };
            match queues.entry(key) {
                Entry::Occupied(mut queue) => {
                    queue.get_mut().push(waiting);
                    false
                }
                Entry::Vacant(none) => {
                    none.insert(vec![waiting]);
                    true
                }
            }
        };
        if start {
            tokio::spawn(self.clone().drain(key));
        }
        outcome
            .await
            .unwrap_or_else(|_| Err(DbErr::Custom("the checkout's writer stopped".into())))
    }

    /// The writer of `key`'s queue: writes what is queued until nothing is, then removes
    /// the queue (the next checkout of the SKU starts a writer again).
    async fn drain(self, key: Uuid) {
        let mut writer = Writer {
            queues: &self.queues,
            key,
            done: false,
        };
        loop {
            let taken: Vec<Waiting> = {
                let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
                let Some(queue) = queues.get_mut(&key) else {
                    writer.done = true;
                    return;
                };
                if queue.is_empty() {
                    queues.remove(&key);
                    writer.done = true;
                    return;
                }
                let n = queue.len().min(MOST);
                queue.drain(..n).collect()
            };
            self.write_together(taken).await;
        }
    }

    /// Writes `taken` (see [`Checkouts::write_all`]) and tells each waiting checkout its
    /// outcome.
    async fn write_together(&self, taken: Vec<Waiting>) {
        let (checkouts, done): (Vec<Checkout>, Vec<_>) =
            taken.into_iter().map(|w| (w.checkout, w.done)).unzip();
        for (outcome, done) in self.write_all(&checkouts).await.into_iter().zip(done) {
            // A checkout whose request went away has no one to tell.
            let _ = done.send(outcome);
        }
    }

    /// Writes `checkouts` in one statement (one transaction on SQLite). Should that break a
    /// constraint (a CHECK, a foreign key, a unique key: one order may be to blame), each is
    /// written again on its own, in turn; any other failure (a timeout, a lost connection)
    /// is every order's. The outcome of each, as if it had been written alone after the ones
    /// before it.
    pub async fn write_all(&self, checkouts: &[Checkout]) -> Vec<Result<(), DbErr>> {
        let together = self.write_once(checkouts).await;
        match &together {
            Err(e) if checkouts.len() > 1 && one_order_may_be_to_blame(e) => {}
            _ => return vec![together; checkouts.len()],
        }
        self.metrics.checkout_splits.inc();
        let mut outcomes = Vec::with_capacity(checkouts.len());
        for checkout in checkouts {
            outcomes.push(self.write_once(std::slice::from_ref(checkout)).await);
        }
        outcomes
    }

    /// One statement (one transaction on SQLite) for `checkouts`.
    async fn write_once(&self, checkouts: &[Checkout]) -> Result<(), DbErr> {
        self.metrics
            .checkout_statement_orders
            .observe(checkouts.len() as f64);
        rows_of(self.db.get_database_backend(), checkouts)?
            .run_alone(&self.db)
            .await
    }
}

/// Whether a failed statement broke a constraint, which one of its orders may have done on
/// its own.
fn one_order_may_be_to_blame(e: &DbErr) -> bool {
    crate::db::is_check_violation(e)
        || matches!(
            e.sql_err(),
            Some(SqlErr::UniqueConstraintViolation(_) | SqlErr::ForeignKeyConstraintViolation(_))
        )
}

/// A queue's writer. Should it stop before its queue is empty (a panic), it removes the
/// queue, so that its checkouts hear it stopped and the next one starts a writer.
struct Writer<'a> {
    queues: &'a Mutex<HashMap<Uuid, Vec<Waiting>>>,
    key: Uuid,
    done: bool,
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            queues.remove(&self.key);
        }
    }
}

/// The rows of `checkouts` as one batch, in the order that keeps batches from deadlocking:
/// the orders, their lines, their idempotency keys, the deletion of the cart lines they come
/// from, then each SKU's decrement (the sum of the checkouts'), in SKU order, last. On PostgreSQL the rows go as JSON, so that the statement is the same for any
/// number of orders; elsewhere as `VALUES`.
fn rows_of(backend: DbBackend, checkouts: &[Checkout]) -> Result<Batch, DbErr> {
    let orders = checkouts.iter().map(|c| &c.order);
    let lines = checkouts.iter().flat_map(|c| &c.lines);
    let keys: Vec<&idempotency_key::Model> =
        checkouts.iter().filter_map(|c| c.key.as_ref()).collect();
    let mut batch = Batch::default();
    batch.push(insert_rows::<_, order::ActiveModel>(backend, orders)?);
    batch.push(insert_rows::<_, order_line::ActiveModel>(backend, lines)?);
    if !keys.is_empty() {
        batch.push(insert_rows::<_, idempotency_key::ActiveModel>(
            backend, keys,
        )?);
    }
    // One deletion for every checkout's cart lines; on PostgreSQL one array parameter, so
    // that its text is the same for any number of lines.
    let mut cart: Vec<Uuid> = checkouts
        .iter()
        .flat_map(|c| c.cart_lines.iter().copied())
        .collect();
    if !cart.is_empty() {
        cart.sort_unstable();
        let filter = if backend == DbBackend::Postgres {
            cart_line::Column::Id.eq_any(cart)
        } else {
            cart_line::Column::Id.is_in(cart)
        };
        batch.push(cart_line::Entity::delete_many().filter(filter).into_query());
    }
    // The coupons, each once with the number of orders using it, in id order, before the
    // stock (as a cancellation gives them back): on PostgreSQL in one part for all.
    let mut coupons: BTreeMap<Uuid, (i32, &order::Model)> = BTreeMap::new();
    for c in checkouts {
        if let Some(id) = c.coupon {
            coupons.entry(id).or_insert((0, &c.order)).0 += 1;
        }
    }
    if backend == DbBackend::Postgres {
        if !coupons.is_empty() {
            batch.push(use_coupons_json(&coupons)?);
        }
    } else {
        for (id, (n, o)) in coupons {
            batch.push(
                coupon::Entity::update_many()
                    .col_expr(
                        coupon::Column::InUse,
                        Expr::col(coupon::Column::InUse).add(n),
                    )
                    .col_expr(coupon::Column::OrderId, Expr::value(o.id))
                    .col_expr(coupon::Column::UsedAt, Expr::value(o.created_at))
                    .filter(coupon::Column::Id.eq(id))
                    .into_query(),
            );
        }
    }
    let taken = checkouts
        .iter()
        .flat_map(|c| c.stock.iter().map(|(sku, n)| (*sku, -n)));
    push_stock_moves(&mut batch, taken);
    Ok(batch)
}

/// `UPDATE coupons SET in_use = in_use + r.in_use, order_id = r.order_id, used_at =
/// r.used_at FROM jsonb_populate_recordset(NULL::coupons, $1) r WHERE coupons.id = r.id`:
/// every coupon of a statement's orders in one part whose text is the same for any number of
/// coupons (PostgreSQL), so that the checkouts' statement stays one prepared statement. With
/// a part per coupon its text changed with the number of coupons in it: each statement of
/// S11's checkouts was parsed and planned anew (13–22 ms for 30–40 orders, on the one writer
/// of its SKUs' queue). `r.in_use` is the number of the statement's orders using the coupon,
/// so its CHECK still refuses a coupon two orders use.
///
/// The rows are locked in the order of the plan's join, not by a part per coupon in id
/// order: two statements lock the same coupons only when each of those coupons is in two
/// checkouts at once (a race one of them loses anyway); should they deadlock, PostgreSQL
/// fails one statement and its orders with it.
fn use_coupons_json(
    coupons: &BTreeMap<Uuid, (i32, &order::Model)>,
) -> Result<SubQueryStatement, DbErr> {
    let records: Vec<serde_json::Value> = coupons
        .iter()
        .map(|(id, (n, o))| {
            Ok(serde_json::json!({
                coupon::Column::Id.as_str(): id,
                coupon::Column::InUse.as_str(): n,
                coupon::Column::OrderId.as_str(): o.id,
                coupon::Column::UsedAt.as_str(): json_of(o.created_at.into())?,
            }))
        })
        .collect::<Result<_, DbErr>>()?;
    let rows = recordset(&coupon::Entity, records);
    let r = Alias::new("r");
    let mut update = Query::update();
    update
        .table(coupon::Entity)
        .value(
            coupon::Column::InUse,
            Expr::col((coupon::Entity, coupon::Column::InUse))
                .add(Expr::col((r.clone(), coupon::Column::InUse))),
        )
        .value(
            coupon::Column::OrderId,
            Expr::col((r.clone(), coupon::Column::OrderId)),
        )
        .value(
            coupon::Column::UsedAt,
            Expr::col((r.clone(), coupon::Column::UsedAt)),
        )
        .from(TableRef::FunctionCall(rows, r.clone().into_iden()))
        .and_where(Expr::col((coupon::Entity, coupon::Column::Id)).equals((r, coupon::Column::Id)));
    Ok(update.into())
}

/// Adds to `batch` the stock moves `moves` (pairs of SKU and units, negative to take them):
/// summed per SKU, one update each, in SKU order — the order every checkout and every
/// restock moves stock in, so that no two of them wait for each other in a circle.
pub(super) fn push_stock_moves(batch: &mut Batch, moves: impl IntoIterator<Item = (Uuid, i32)>) {
    let mut per_sku: BTreeMap<Uuid, i32> = BTreeMap::new();
    for (sku_id, n) in moves {
        *per_sku.entry(sku_id).or_default() += n;
    }
    for (sku_id, n) in per_sku {
        batch.push(
            sku::Entity::update_many()
                .col_expr(sku::Column::Stock, Expr::col(sku::Column::Stock).add(n))
                .filter(sku::Column::Id.eq(sku_id))
                .into_query(),
        );
    }
}
