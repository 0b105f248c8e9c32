//! Business rules, one module per domain. Services take a database connection (or a
//! transaction) and plain values, return [`crate::error::Result`], and know nothing of
//! GraphQL or HTTP: the API, the CLI, the seed and the tests call the same functions.
//!
//! Functions whose outcome depends on the time take `now` as an argument; the API passes the
//! app's [`Clock`], so tests can move time forward without sleeping.
//!
//! Writes that lock several rows take them in one order, so that no two transactions wait
//! for each other in a circle (PostgreSQL would abort one as a deadlock): an order's row
//! first; then its lines and SKUs (by id); earnings (by id); the membership-reward day
//! counters (by key, [`reward_days`]); team counters (nearest upline first, [`hierarchy`]);
//! the leaderboard counters (by key, [`leaderboards`]); and the money counters last, months
//! then balances, each by key ([`writes::Writes`]).
//! Binding changes take the hierarchy's lock row before any of theirs. A new write path
//! keeps to this order, and gets a test that races it against the paths it shares rows with
//! (`tests/api/earnings.rs`, `…_never_deadlock`).

pub mod addresses;
pub mod after_sales;
pub mod audit;
pub mod auth;
pub mod batch;
pub mod cart;
pub mod catalog;
pub mod catalog_admin;
pub mod checkouts;
pub mod coupons;
pub mod curation;
pub mod earnings;
pub mod fulfilment;
pub mod funnel;
pub mod hierarchy;
pub mod images;
pub mod immutable;
pub mod leaderboards;
pub mod ledger;
pub mod levels;
pub mod members;
pub mod merchant_products;
pub mod notes;
pub mod orders;
pub mod page;
pub mod payments;
pub mod payouts;
pub mod posters;
pub mod privileges;
pub mod refunds;
pub mod regions;
pub mod reward_days;
pub mod rows;
pub mod shipping;
pub mod statements;
pub mod team;
pub mod text;
pub mod units_sold;
pub mod viewers;
pub mod webhooks;
pub mod withdrawals;
pub mod writes;

use std::sync::Mutex;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend};
use uuid::Uuid;

use chrono::{DateTime, Duration, SubsecRound, Utc};

/// The current time at millisecond precision.
///
/// Every stored timestamp goes through here. SQLite keeps timestamps as RFC 3339 text with
/// as many fraction digits as the value needs; at a fixed precision the text sorts in time
/// order, which the keyset cursors rely on. PostgreSQL would keep microseconds either way.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// Where the app reads the time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The real time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }
}

/// The real time plus an offset that tests move forward (binding expiry, settlement windows).
#[derive(Default)]
pub struct ManualClock {
    /// A std Mutex: nothing awaits while it is held.
    offset: Mutex<Duration>,
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        now() + *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `col` is one of `ids`. On PostgreSQL, beyond [`LISTED_IDS`] ids, that is
/// `col = ANY($1)`, the ids in one array parameter: one prepared statement and one cached
/// plan for any number of ids, where an `IN` list is a new statement for every length,
/// planned for its exact elements (a page's 50 SKU look-ups were planned as a sequential scan
/// of `skus`, 0.72 ms, against 0.2 ms by the index). SQLite has no arrays: there it is
/// `col IN (…)`.
///
/// One id is `col = $1` on both, and up to [`LISTED_IDS`] are `col IN ($1, …)` on
/// PostgreSQL too. PostgreSQL's generic plan for `= ANY($1)` assumes ten elements, which
/// costs more than the plan for the two to five of a checkout, so it kept the custom plan
/// and planned the statement afresh on every call: S11's SKU-and-coupon read was planned on
/// all 4,430 of its calls in 6 s, 0.47 ms each against 0.09 ms of execution — 35 % of a core
/// (`pg_stat_statements`, docs/performance.md, 2026-12-06). A list of parameters has a
/// length the generic plan knows; it costs what the custom plan does, and PostgreSQL keeps
/// it after five calls. Its price is a statement per length, at most [`LISTED_IDS`] − 1 more
/// per call site.
pub fn one_of(
    db: &impl ConnectionTrait,
    col: impl ColumnTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Expr {
    one_of_on(db.get_database_backend(), col, ids)
}

/// Begins a write that holds `member_id`'s row until it ends, so that the member's writes of
/// one kind — their addresses, their cart — run one at a time (SQLite: its write lock at
/// `BEGIN`). `NOT_FOUND` for an unknown member.
pub(crate) async fn begin_as_member(
    db: &sea_orm::DatabaseConnection,
    member_id: Uuid,
) -> crate::error::Result<sea_orm::DatabaseTransaction> {
    use sea_orm::{EntityTrait, QuerySelect, sea_query::LockType};
    let txn = crate::db::begin_write(db).await?;
    entity::member::Entity::find_by_id(member_id)
        .select_only()
        .column(entity::member::Column::Id)
        .lock(LockType::NoKeyUpdate)
        .into_tuple::<Uuid>()
        .one(&txn)
        .await?
        .ok_or_else(|| crate::error::Error::not_found("member"))?;
    Ok(txn)
}

/// SKUs by id, each with its product.
pub type SkusWithProducts =
    std::collections::HashMap<Uuid, (entity::sku::Model, Option<entity::product::Model>)>;

/// Each SKU of `ids` with its product (a deleted SKU is absent), in one statement.
pub(crate) async fn skus_with_products(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> crate::error::Result<SkusWithProducts> {
    use entity::{product, sku};
    use sea_orm::{EntityTrait, Iterable, JoinType, QueryFilter, QuerySelect, RelationTrait};
    // A SKU's product always exists (a foreign key): an inner join, read by position.
    Ok(sku::Entity::find()
        .join(JoinType::InnerJoin, sku::Relation::Product.def())
        .columns(product::Column::iter())
        .filter(one_of(db, sku::Column::Id, ids))
        .into_model::<rows::ByPosition<(sku::Model, product::Model)>>()
        .all(db)
        .await?
        .into_iter()
        .map(|row| {
            let (s, p) = row.0;
            (s.id, (s, Some(p)))
        })
        .collect())
}

/// A member's coupon with its template, for a checkout (`None`: not the member's, or none).
pub(crate) type CouponRead = Option<(entity::coupon::Model, entity::coupon_template::Model)>;

/// A row of [`skus_with_products_and_coupon`]: the SKU and its product by position, then the
/// coupon and its template by name (prefixed `c_` and `t_`; null when left-joined to nothing).
struct SkuAndCoupon {
    sku: entity::sku::Model,
    product: entity::product::Model,
    coupon: CouponRead,
}

impl sea_orm::FromQueryResult for SkuAndCoupon {
    fn from_query_result(row: &sea_orm::QueryResult, _: &str) -> Result<Self, sea_orm::DbErr> {
        let ((sku, product), _) =
            rows::leading::<(entity::sku::Model, entity::product::Model)>(row)?;
        let coupon = entity::coupon::Model::from_query_result_optional(row, "c_")?;
        let template = entity::coupon_template::Model::from_query_result_optional(row, "t_")?;
        Ok(SkuAndCoupon {
            sku,
            product,
            coupon: coupon.zip(template),
        })
    }
}

/// [`skus_with_products`] with `member`'s coupon `coupon_id` and its template, in the same
/// one statement (the coupon and its template left-joined to every row): a checkout with a
/// coupon reads its SKUs and its coupon in one round trip. The coupon is `None` when no SKU
/// came back (the caller reads it alone, [`coupons::for_checkout`]), `Some(None)` when it is
/// not the member's.
pub(crate) async fn skus_with_products_and_coupon(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
    coupon_id: Uuid,
    member: Uuid,
) -> crate::error::Result<(SkusWithProducts, Option<CouponRead>)> {
    use entity::{coupon, coupon_template, product, sku};
    use sea_orm::sea_query::{Condition, ExprTrait, JoinType};
    use sea_orm::{
        EntityTrait, IdenStatic, Iterable, QueryFilter, QuerySelect, QueryTrait, RelationTrait,
    };
    let mut select = sku::Entity::find()
        .join(JoinType::InnerJoin, sku::Relation::Product.def())
        .columns(product::Column::iter())
        .filter(one_of(db, sku::Column::Id, ids));
    for c in coupon::Column::iter() {
        select = select.expr_as(Expr::col((coupon::Entity, c)), format!("c_{}", c.as_str()));
    }
    for c in coupon_template::Column::iter() {
        select = select.expr_as(
            Expr::col((coupon_template::Entity, c)),
            format!("t_{}", c.as_str()),
        );
    }
    QueryTrait::query(&mut select)
        .join(
            JoinType::LeftJoin,
            coupon::Entity,
            Condition::all()
                .add(Expr::col((coupon::Entity, coupon::Column::Id)).eq(coupon_id))
                .add(Expr::col((coupon::Entity, coupon::Column::MemberId)).eq(member)),
        )
        .join(
            JoinType::LeftJoin,
            coupon_template::Entity,
            Expr::col((coupon_template::Entity, coupon_template::Column::Id))
                .equals((coupon::Entity, coupon::Column::TemplateId)),
        );
    let rows = select.into_model::<SkuAndCoupon>().all(db).await?;
    let mut found = None;
    let mut skus = SkusWithProducts::with_capacity(rows.len());
    for row in rows {
        found.get_or_insert(row.coupon);
        skus.insert(row.sku.id, (row.sku, Some(row.product)));
    }
    Ok((skus, found))
}

fn one_of_on(
    backend: DbBackend,
    col: impl ColumnTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Expr {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    match (ids.as_slice(), backend) {
        ([id], _) => col.eq(*id),
        (_, DbBackend::Postgres) if ids.len() > LISTED_IDS => col.eq_any(ids),
        _ => col.is_in(ids),
    }
}

/// Up to this many ids, [`one_of`] lists them as parameters on PostgreSQL too (a checkout's
/// SKUs, a cart's lines); more go in one array.
pub const LISTED_IDS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use entity::sku;
    use sea_orm::{EntityTrait, QueryFilter, QueryTrait};

    #[test]
    fn one_of_is_a_list_of_few_and_one_array_of_many_on_postgres() {
        for n in [2, 3, LISTED_IDS, LISTED_IDS + 1, 50] {
            let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
            let query = |backend| {
                sku::Entity::find()
                    .filter(one_of_on(backend, sku::Column::ProductId, ids.clone()))
                    .build(backend)
            };
            let pg = query(DbBackend::Postgres);
            if n > LISTED_IDS {
                assert!(
                    pg.sql.ends_with(r#""skus"."product_id" = ANY($1)"#),
                    "{}",
                    pg.sql
                );
                assert_eq!(pg.values.map(|v| v.0.len()), Some(1));
            } else {
                let listed = (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>();
                let expected = format!(r#""skus"."product_id" IN ({})"#, listed.join(", "));
                assert!(pg.sql.ends_with(&expected), "{}", pg.sql);
                assert_eq!(pg.values.map(|v| v.0.len()), Some(n));
            }
            let sqlite = query(DbBackend::Sqlite);
            assert!(
                sqlite.sql.contains(r#""skus"."product_id" IN (?"#),
                "{}",
                sqlite.sql
            );
            assert_eq!(sqlite.values.map(|v| v.0.len()), Some(n));
        }
        // One id is an equality, on either.
        let id = Uuid::now_v7();
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let q = sku::Entity::find()
                .filter(one_of_on(backend, sku::Column::ProductId, [id]))
                .build(backend);
            let expected = match backend {
                DbBackend::Postgres => r#""skus"."product_id" = $1"#,
                _ => r#""skus"."product_id" = ?"#,
            };
            assert!(q.sql.ends_with(expected), "{}", q.sql);
            assert_eq!(q.values.map(|v| v.0.len()), Some(1));
        }
        // No ids match nothing, on either.
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let sql = sku::Entity::find()
                .filter(one_of_on(backend, sku::Column::ProductId, []))
                .build(backend)
                .to_string();
            assert!(sql.ends_with("WHERE 1 = 2"), "{sql}");
        }
    }
}
