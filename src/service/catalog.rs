//! The catalog: the category tree, merchants, brands, products with their SKUs, images and
//! tags; the public product listing with filters, sort orders and keyset pages; and the
//! batched look-ups the API's DataLoaders call.
//!
//! Only `PUBLISHED` products are visible to the public. Writing products here is the raw
//! insert used by the demo seed and tests; the curated submission flow builds on it. These
//! raw writes publish nothing: their callers publish the catalog change once they are done
//! (the seed, the curation writes of [`super::curation`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::member::StaffRole;
use entity::{
    Money, Rate, brand, category, member, merchant, product, product_image, product_tag, sku,
};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, Select, Value,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::service::auth::Viewer;
use crate::service::rows::ByPosition;

/// Longest accepted search term, in characters.
pub const MAX_SEARCH_LEN: usize = 100;

/// What the product listing can be narrowed to. All given conditions must hold.
#[derive(Clone, Debug, Default)]
pub struct ProductFilter {
    /// A category; a top-level category includes its subcategories.
    pub category_id: Option<Uuid>,
    pub brand_id: Option<Uuid>,
    /// Case-insensitive substring of the Chinese or English name.
    pub search: Option<String>,
    /// At least one SKU costs this much or more.
    pub min_price: Option<Money>,
    /// At least one SKU costs this much or less (and, with `min_price`, the same SKU is in
    /// the range).
    pub max_price: Option<Money>,
    pub membership_activity: Option<bool>,
}

/// Listing orders. Each is total: ties are broken by product id in the same direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductSort {
    /// Most recently listed first.
    #[default]
    Newest,
    /// Cheapest (lowest SKU price) first.
    PriceAsc,
    /// Dearest (lowest SKU price) first.
    PriceDesc,
    /// Highest level-1 rebate rate first.
    RebateDesc,
    /// Best-selling first.
    SalesDesc,
}

/// The sort-key value of the last row of a page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKey {
    Time(DateTime<Utc>),
    Int(i64),
}

/// Position after which the next page starts: the sort it belongs to, the last row's sort
/// key and its id. Because it names a position in the order rather than an offset, rows
/// inserted meanwhile neither repeat nor get skipped on the following pages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductCursor {
    pub sort: ProductSort,
    pub key: SortKey,
    pub id: Uuid,
}

pub use super::page::Page;

impl ProductSort {
    fn column(self) -> (product::Column, bool) {
        match self {
            ProductSort::Newest => (product::Column::PublishedAt, true),
            ProductSort::PriceAsc => (product::Column::MinPrice, false),
            ProductSort::PriceDesc => (product::Column::MinPrice, true),
            ProductSort::RebateDesc => (product::Column::RebateRate, true),
            ProductSort::SalesDesc => (product::Column::SalesCount, true),
        }
    }

    /// The cursor pointing just after `p` in this order.
    pub fn cursor_of(self, p: &product::Model) -> ProductCursor {
        let key = match self {
            // Published products always have a publication time; the creation time is a
            // defensive fallback that keeps the cursor well-formed.
            ProductSort::Newest => SortKey::Time(p.published_at.unwrap_or(p.created_at)),
            ProductSort::PriceAsc | ProductSort::PriceDesc => SortKey::Int(p.min_price.fen()),
            ProductSort::RebateDesc => SortKey::Int(i64::from(p.rebate_rate.bp())),
            ProductSort::SalesDesc => SortKey::Int(p.sales_count),
        };
        ProductCursor {
            sort: self,
            key,
            id: p.id,
        }
    }
}

impl ProductFilter {
    fn check(&self) -> Result<()> {
        for (field, value) in [
            ("filter.minPrice", self.min_price),
            ("filter.maxPrice", self.max_price),
        ] {
            if value.is_some_and(|m| m < Money::ZERO) {
                return Err(Error::validation(field, "must not be negative"));
            }
        }
        if let (Some(min), Some(max)) = (self.min_price, self.max_price)
            && min > max
        {
            return Err(Error::validation(
                "filter.minPrice",
                "must not exceed filter.maxPrice",
            ));
        }
        if let Some(s) = &self.search
            && s.chars().count() > MAX_SEARCH_LEN
        {
            return Err(Error::validation(
                "filter.search",
                format!("at most {MAX_SEARCH_LEN} characters"),
            ));
        }
        Ok(())
    }

    fn apply(&self, mut q: Select<product::Entity>) -> Select<product::Entity> {
        if let Some(cat) = self.category_id {
            q = q.filter(
                product::Column::CategoryId.in_subquery(
                    Query::select()
                        .column(category::Column::Id)
                        .from(category::Entity)
                        .cond_where(
                            Condition::any()
                                .add(category::Column::Id.eq(cat))
                                .add(category::Column::ParentId.eq(cat)),
                        )
                        .to_owned(),
                ),
            );
        }
        if let Some(brand) = self.brand_id {
            q = q.filter(product::Column::BrandId.eq(brand));
        }
        if let Some(term) = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let pattern = format!("%{}%", escape_like(&term.to_lowercase()));
            let lower =
                |c: product::Column| Expr::expr(Func::lower(Expr::col((product::Entity, c))));
            q = q.filter(
                Condition::any()
                    .add(
                        lower(product::Column::Name)
                            .like(LikeExpr::new(pattern.clone()).escape('\\')),
                    )
                    .add(lower(product::Column::NameEn).like(LikeExpr::new(pattern).escape('\\'))),
            );
        }
        if self.min_price.is_some() || self.max_price.is_some() {
            let mut skus = Query::select();
            skus.expr(Expr::val(1)).from(sku::Entity).and_where(
                Expr::col((sku::Entity, sku::Column::ProductId))
                    .equals((product::Entity, product::Column::Id)),
            );
            if let Some(min) = self.min_price {
                skus.and_where(Expr::col((sku::Entity, sku::Column::Price)).gte(min.fen()));
            }
            if let Some(max) = self.max_price {
                skus.and_where(Expr::col((sku::Entity, sku::Column::Price)).lte(max.fen()));
            }
            q = q.filter(Expr::exists(skus.to_owned()));
        }
        if let Some(flag) = self.membership_activity {
            q = q.filter(product::Column::MembershipActivity.eq(flag));
        }
        q
    }
}

pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A page of published products: `first` rows after `after`, in `sort` order.
pub async fn list_products(
    db: &impl ConnectionTrait,
    filter: &ProductFilter,
    sort: ProductSort,
    after: Option<&ProductCursor>,
    first: u64,
) -> Result<Page<product::Model>> {
    filter.check()?;
    let (col, desc) = sort.column();
    let mut q = filter.apply(
        product::Entity::find().filter(product::Column::Status.eq(product::Status::Published)),
    );
    if let Some(cursor) = after {
        if cursor.sort != sort {
            return Err(Error::validation(
                "after",
                "cursor belongs to another sort order",
            ));
        }
        let key: Value = match (&cursor.key, sort) {
            (SortKey::Time(t), ProductSort::Newest) => (*t).into(),
            (SortKey::Int(n), ProductSort::RebateDesc) => i32::try_from(*n)
                .map_err(|_| Error::validation("after", "malformed cursor"))?
                .into(),
            (SortKey::Int(n), s) if s != ProductSort::Newest => (*n).into(),
            _ => return Err(Error::validation("after", "malformed cursor")),
        };
        let (beyond, id_beyond) = if desc {
            (col.lt(key.clone()), product::Column::Id.lt(cursor.id))
        } else {
            (col.gt(key.clone()), product::Column::Id.gt(cursor.id))
        };
        q = q.filter(
            Condition::any()
                .add(beyond)
                .add(Condition::all().add(col.eq(key)).add(id_beyond)),
        );
    }
    q = if desc {
        q.order_by_desc(col).order_by_desc(product::Column::Id)
    } else {
        q.order_by_asc(col).order_by_asc(product::Column::Id)
    };
    let items: Vec<product::Model> = super::page::rows_of_page(db.get_database_backend(), q, first)
        .into_model::<ByPosition<product::Model>>()
        .all(db)
        .await?
        .into_iter()
        .map(|row| row.0)
        .collect();
    Ok(Page::of(items, first))
}

/// Whether `viewer` may see `p` in its current status: everyone sees published products;
/// curators and admins see all; a merchant sees its own in every status.
pub fn can_see(viewer: &Viewer, p: &product::Model) -> bool {
    p.status == product::Status::Published || is_insider(viewer, p)
}

/// Whether `viewer` sees rebate rates: staff and programme members do; plain buyers and the
/// public do not.
pub fn sees_rates(viewer: &Viewer) -> bool {
    viewer
        .member()
        .is_ok_and(|m| m.tier != member::Tier::Buyer || m.staff_role.is_some())
}

/// What `viewer` would earn on one unit of `p` at its lowest price (price × rebate rate,
/// rounded down to the fen): push-hands only (`None` for everyone else).
pub fn estimated_earning(viewer: &Viewer, p: &product::Model) -> Option<Money> {
    let is_push_hand = viewer.member().is_ok_and(|m| m.tier != member::Tier::Buyer);
    if !is_push_hand {
        return None;
    }
    Money::floor_from_decimal(p.min_price.to_decimal() * p.rebate_rate.to_decimal())
}

/// Whether `viewer` sees a product's internals (drafts, reviewer notes, evidence): curators,
/// admins, and the product's own merchant.
pub fn is_insider(viewer: &Viewer, p: &product::Model) -> bool {
    let Ok(m) = viewer.member() else { return false };
    match m.staff_role {
        Some(StaffRole::Curator | StaffRole::Admin) => true,
        Some(StaffRole::Merchant) => m.merchant_id == Some(p.merchant_id),
        None => false,
    }
}

/// A product the viewer may see, or `NOT_FOUND` (hidden products are not revealed to
/// exist).
pub async fn visible_product(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: Uuid,
) -> Result<product::Model> {
    product::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|p| can_see(viewer, p))
        .ok_or_else(|| Error::not_found("product"))
}

/// Which of a product's own lists its detail ([`visible_detail`]) reads with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DetailLists {
    pub skus: bool,
    pub images: bool,
    pub tags: bool,
}

/// A product with the lists its detail asked for (None: not asked for), each in display
/// order.
#[derive(Debug)]
pub struct Detail {
    pub product: product::Model,
    pub skus: Option<Vec<sku::Model>>,
    pub images: Option<Vec<product_image::Model>>,
    pub tags: Option<Vec<String>>,
}

/// A product the viewer may see with the lists `lists` names, in one statement: each list a
/// subquery aggregated as a JSON array of arrays (one row comes back, however many SKUs,
/// images and tags), or `NOT_FOUND` as [`visible_product`]. A detail read its product, SKUs,
/// images and tags in four statements before; on SQLite each is a round trip to the
/// connection's thread and every row a message back (see `docs/performance.md`, #32).
pub async fn visible_detail(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: Uuid,
    lists: DetailLists,
) -> Result<Detail> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            detail_sql(backend, lists),
            [id.into()],
        ))
        .await?
        .ok_or_else(|| Error::not_found("product"))?;
    let (product, mut rest) = super::rows::leading::<product::Model>(&row)?;
    if !can_see(viewer, &product) {
        return Err(Error::not_found("product"));
    }
    let mut list = |asked: bool| -> Result<Option<String>> {
        if !asked {
            return Ok(None);
        }
        Ok(Some(rest.text()?.unwrap_or_else(|| "[]".to_owned())))
    };
    let (skus, images, tags) = (list(lists.skus)?, list(lists.images)?, list(lists.tags)?);
    let json = |what: &str, e: serde_json::Error| {
        Error::internal(anyhow::anyhow!("product {id}'s {what} as JSON: {e}"))
    };
    let uuid = |what: &str, text: &str| {
        Uuid::try_parse(text)
            .map_err(|e| Error::internal(anyhow::anyhow!("product {id}'s {what}: {e}")))
    };
    let skus = skus
        .map(|text| -> Result<Vec<sku::Model>> {
            let rows: Vec<(&str, String, i64, i32, i32)> =
                serde_json::from_str(&text).map_err(|e| json("SKUs", e))?;
            let mut skus = rows
                .into_iter()
                .map(|(sku_id, name, price, stock, position)| {
                    Ok(sku::Model {
                        id: uuid("SKU id", sku_id)?,
                        product_id: id,
                        name,
                        price: Money::from_fen(price),
                        stock,
                        position,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            skus.sort_unstable_by_key(|s| (s.position, s.id));
            Ok(skus)
        })
        .transpose()?;
    let images = images
        .map(|text| -> Result<Vec<product_image::Model>> {
            let rows: Vec<(&str, String, Option<String>, i32)> =
                serde_json::from_str(&text).map_err(|e| json("images", e))?;
            let mut images = rows
                .into_iter()
                .map(|(image_id, url, alt, position)| {
                    Ok(product_image::Model {
                        id: uuid("image id", image_id)?,
                        product_id: id,
                        url,
                        alt,
                        position,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            images.sort_by_key(|i| i.position);
            Ok(images)
        })
        .transpose()?;
    let tags = tags
        .map(|text| -> Result<Vec<String>> {
            let mut rows: Vec<(String, i32)> =
                serde_json::from_str(&text).map_err(|e| json("tags", e))?;
            rows.sort_by_key(|t| t.1);
            Ok(rows.into_iter().map(|t| t.0).collect())
        })
        .transpose()?;
    Ok(Detail {
        product,
        skus,
        images,
        tags,
    })
}

/// The statement of [`visible_detail`] for `backend` and `lists`: the product's columns in
/// declaration order (as [`super::rows::ByPosition`] reads them), then one JSON text per
/// list asked for. Built once per combination. A list's order is put right in Rust (JSON
/// aggregates promise none); ids are hex on SQLite (a JSON array cannot hold a blob).
fn detail_sql(backend: sea_orm::DbBackend, lists: DetailLists) -> &'static str {
    use std::sync::OnceLock;
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        use sea_orm::{IdenStatic, Iterable};
        let columns: Vec<String> = product::Column::iter()
            .map(|c| format!("p.{}", c.as_str()))
            .collect();
        let mut out = Vec::with_capacity(16);
        for sqlite in [false, true] {
            for mask in 0..8u8 {
                let (id, param): (fn(&str) -> String, &str) = if sqlite {
                    (|c| format!("hex({c})"), "?")
                } else {
                    (|c| c.to_owned(), "$1")
                };
                let agg = |row: String, from: &str| {
                    if sqlite {
                        format!("(SELECT json_group_array(json_array({row})) FROM {from})")
                    } else {
                        format!(
                            "(SELECT coalesce(json_agg(json_build_array({row})), '[]')::text \
                             FROM {from})"
                        )
                    }
                };
                let mut select = columns.join(", ");
                if mask & 1 != 0 {
                    select.push_str(", ");
                    select.push_str(&agg(
                        format!("{}, s.name, s.price, s.stock, s.position", id("s.id")),
                        "skus AS s WHERE s.product_id = p.id",
                    ));
                }
                if mask & 2 != 0 {
                    select.push_str(", ");
                    select.push_str(&agg(
                        format!("{}, i.url, i.alt, i.position", id("i.id")),
                        "product_images AS i WHERE i.product_id = p.id",
                    ));
                }
                if mask & 4 != 0 {
                    select.push_str(", ");
                    select.push_str(&agg(
                        "t.tag, t.position".to_owned(),
                        "product_tags AS t WHERE t.product_id = p.id",
                    ));
                }
                out.push(format!(
                    "SELECT {select} FROM products AS p WHERE p.id = {param}"
                ));
            }
        }
        out
    });
    let mask =
        usize::from(lists.skus) | usize::from(lists.images) << 1 | usize::from(lists.tags) << 2;
    let sqlite = usize::from(backend == sea_orm::DbBackend::Sqlite);
    &all[sqlite * 8 + mask]
}

/// A SKU whose product the viewer may see, or `NOT_FOUND`.
pub async fn visible_sku(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: Uuid,
) -> Result<sku::Model> {
    let found = sku::Entity::find_by_id(id).one(db).await?;
    match found {
        Some(s) if visible_product(db, viewer, s.product_id).await.is_ok() => Ok(s),
        _ => Err(Error::not_found("SKU")),
    }
}

/// Position after the last row of a staff listing (newest submissions first).
pub type CreatedCursor = super::page::NewestCursor;

/// Products in any status, optionally of one merchant and in one status.
fn by_created(merchant: Option<Uuid>, status: Option<product::Status>) -> Select<product::Entity> {
    let mut q = product::Entity::find();
    if let Some(m) = merchant {
        q = q.filter(product::Column::MerchantId.eq(m));
    }
    if let Some(s) = status {
        q = q.filter(product::Column::Status.eq(s));
    }
    q
}

/// Products in any status, newest first, optionally of one merchant and in one status: the
/// merchant's own list and the curators' queue.
pub async fn list_by_created(
    db: &impl ConnectionTrait,
    merchant: Option<Uuid>,
    status: Option<product::Status>,
    after: Option<&CreatedCursor>,
    first: u64,
) -> Result<Page<product::Model>> {
    super::page::newest_first(
        db,
        by_created(merchant, status),
        product::Column::CreatedAt,
        product::Column::Id,
        after,
        first,
    )
    .await
}

/// How many products [`list_by_created`] lists in all, when `wanted` (`totalCount`).
pub async fn total_by_created(
    db: &impl ConnectionTrait,
    merchant: Option<Uuid>,
    status: Option<product::Status>,
    wanted: bool,
) -> Result<Option<u64>> {
    super::page::total(db, by_created(merchant, status), wanted).await
}

/// The whole category tree, ordered by position (a few hundred rows at most), without
/// archived categories.
pub async fn all_categories(db: &impl ConnectionTrait) -> Result<Vec<category::Model>> {
    Ok(category::Entity::find()
        .filter(category::Column::ArchivedAt.is_null())
        .order_by_asc(category::Column::Position)
        .order_by_asc(category::Column::Id)
        .all(db)
        .await?)
}

pub async fn category(db: &impl ConnectionTrait, id: Uuid) -> Result<category::Model> {
    category::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("category"))
}

pub async fn brand(db: &impl ConnectionTrait, id: Uuid) -> Result<brand::Model> {
    brand::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("brand"))
}

pub async fn merchant(db: &impl ConnectionTrait, id: Uuid) -> Result<merchant::Model> {
    merchant::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("merchant"))
}

// ---- Batched look-ups for the DataLoaders: one statement per batch. ----

pub async fn brands_by_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, brand::Model>> {
    let rows = brand::Entity::find()
        .filter(super::one_of(db, brand::Column::Id, ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

pub async fn categories_by_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, category::Model>> {
    let rows = category::Entity::find()
        .filter(super::one_of(db, category::Column::Id, ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

/// Subcategories per parent (archived ones left out), each list in display order.
pub async fn categories_by_parent_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<category::Model>>> {
    let rows = category::Entity::find()
        .filter(super::one_of(
            db,
            category::Column::ParentId,
            ids.iter().copied(),
        ))
        .filter(category::Column::ArchivedAt.is_null())
        .order_by_asc(category::Column::Position)
        .order_by_asc(category::Column::Id)
        .all(db)
        .await?;
    Ok(group(ids, rows, |r| r.parent_id.unwrap_or_default()))
}

/// Products by id, in any status.
pub async fn products_by_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, product::Model>> {
    let rows = product::Entity::find()
        .filter(super::one_of(db, product::Column::Id, ids.iter().copied()))
        .into_model::<ByPosition<product::Model>>()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|ByPosition(r)| (r.id, r)).collect())
}

pub async fn merchants_by_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, merchant::Model>> {
    let rows = merchant::Entity::find()
        .filter(super::one_of(db, merchant::Column::Id, ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

/// SKUs by id, of products in any status.
pub async fn skus_by_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, sku::Model>> {
    let rows = sku::Entity::find()
        .filter(super::one_of(db, sku::Column::Id, ids.iter().copied()))
        .into_model::<ByPosition<sku::Model>>()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|ByPosition(r)| (r.id, r)).collect())
}

/// SKUs per product, each list in display order. Products without SKUs map to nothing.
pub async fn skus_by_product_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<sku::Model>>> {
    // Ordered here, not by the database: the index on `product_id` is in price order, so
    // SQLite would sort the rows again.
    let rows = sku::Entity::find()
        .filter(super::one_of(
            db,
            sku::Column::ProductId,
            ids.iter().copied(),
        ))
        .into_model::<ByPosition<sku::Model>>()
        .all(db)
        .await?
        .into_iter()
        .map(|row| row.0);
    let mut skus = group(ids, rows, |r| r.product_id);
    for list in skus.values_mut() {
        list.sort_unstable_by_key(|s| (s.position, s.id));
    }
    Ok(skus)
}

pub async fn images_by_product_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<product_image::Model>>> {
    let rows = product_image::Entity::find()
        .filter(super::one_of(
            db,
            product_image::Column::ProductId,
            ids.iter().copied(),
        ))
        .order_by_asc(product_image::Column::ProductId)
        .order_by_asc(product_image::Column::Position)
        .into_model::<ByPosition<product_image::Model>>()
        .all(db)
        .await?;
    let rows = rows.into_iter().map(|ByPosition(r)| r);
    Ok(group(ids, rows, |r| r.product_id))
}

pub async fn tags_by_product_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<String>>> {
    let rows = product_tag::Entity::find()
        .filter(super::one_of(
            db,
            product_tag::Column::ProductId,
            ids.iter().copied(),
        ))
        .order_by_asc(product_tag::Column::ProductId)
        .order_by_asc(product_tag::Column::Position)
        .all(db)
        .await?;
    let grouped = group(ids, rows, |r| r.product_id);
    Ok(grouped
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().map(|t| t.tag).collect()))
        .collect())
}

/// Groups rows by parent id; every asked-for id is present (empty when it has no rows), so a
/// caching loader remembers "none" too.
fn group<T>(
    ids: &[Uuid],
    rows: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> Uuid,
) -> HashMap<Uuid, Vec<T>> {
    let mut out: HashMap<Uuid, Vec<T>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    for row in rows {
        out.entry(key(&row)).or_default().push(row);
    }
    out
}

// ---- Writes (seed and tests; the curated submission flow builds on these). ----

/// A SKU to create with its product.
#[derive(Clone, Debug)]
pub struct NewSku {
    pub name: String,
    pub price: Money,
    pub stock: i32,
}

/// A product to create, with everything that belongs to it.
#[derive(Clone, Debug)]
pub struct NewProduct {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub brand_id: Uuid,
    pub category_id: Uuid,
    pub name: String,
    pub name_en: Option<String>,
    pub description: Option<String>,
    pub status: product::Status,
    pub rebate_rate: Rate,
    pub team_rebate_rate: Rate,
    pub membership_activity: bool,
    pub sales_count: i64,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub skus: Vec<NewSku>,
    pub images: Vec<String>,
    pub tags: Vec<String>,
}

/// The rows a [`NewProduct`] becomes, for inserting many products in a few statements.
#[derive(Default)]
pub struct ProductRows {
    pub products: Vec<product::ActiveModel>,
    pub skus: Vec<sku::ActiveModel>,
    pub images: Vec<product_image::ActiveModel>,
    pub tags: Vec<product_tag::ActiveModel>,
}

impl ProductRows {
    /// Adds a product's rows; `new_id` mints the ids of its SKUs and images.
    pub fn push(&mut self, p: NewProduct, mut new_id: impl FnMut() -> Uuid) -> Result<()> {
        let min = p.skus.iter().map(|s| s.price).min();
        let max = p.skus.iter().map(|s| s.price).max();
        let (Some(min_price), Some(max_price)) = (min, max) else {
            return Err(Error::validation(
                "skus",
                "a product needs at least one SKU",
            ));
        };
        self.products.push(product::ActiveModel {
            id: Set(p.id),
            merchant_id: Set(p.merchant_id),
            brand_id: Set(p.brand_id),
            category_id: Set(p.category_id),
            name: Set(p.name),
            name_en: Set(p.name_en),
            description: Set(p.description),
            status: Set(p.status),
            rebate_rate: Set(p.rebate_rate),
            team_rebate_rate: Set(p.team_rebate_rate),
            membership_activity: Set(p.membership_activity),
            min_price: Set(min_price),
            max_price: Set(max_price),
            sales_count: Set(p.sales_count),
            created_at: Set(p.created_at),
            updated_at: Set(p.created_at),
            published_at: Set(p.published_at),
            stages_passed: Set(if p.status == product::Status::Published {
                5
            } else {
                0
            }),
            unpublished_reason: Set(None),
        });
        for (i, s) in p.skus.into_iter().enumerate() {
            self.skus.push(sku::ActiveModel {
                id: Set(new_id()),
                product_id: Set(p.id),
                name: Set(s.name),
                price: Set(s.price),
                stock: Set(s.stock),
                position: Set(i as i32),
            });
        }
        for (i, url) in p.images.into_iter().enumerate() {
            self.images.push(product_image::ActiveModel {
                id: Set(new_id()),
                product_id: Set(p.id),
                url: Set(url),
                alt: Set(None),
                position: Set(i as i32),
            });
        }
        for (i, tag) in p.tags.into_iter().enumerate() {
            self.tags.push(product_tag::ActiveModel {
                product_id: Set(p.id),
                tag: Set(tag),
                position: Set(i as i32),
            });
        }
        Ok(())
    }

    /// Inserts everything collected, in chunks that stay under every backend's parameter
    /// limit. Call inside a transaction so that a failure leaves nothing behind.
    pub async fn insert(self, db: &impl ConnectionTrait) -> Result<()> {
        insert_chunks(db, self.products).await?;
        insert_chunks(db, self.skus).await?;
        insert_chunks(db, self.images).await?;
        insert_chunks(db, self.tags).await?;
        Ok(())
    }
}

/// Rows per multi-row INSERT: 500 rows × ≤ 17 columns stays far below SQLite's and
/// PostgreSQL's bound-parameter limits.
const CHUNK: usize = 500;

pub async fn insert_chunks<A>(db: &impl ConnectionTrait, rows: Vec<A>) -> Result<()>
where
    A: sea_orm::ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(CHUNK).collect();
        A::Entity::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Creates one product with its SKUs, images and tags in a single transaction.
pub async fn create_product(db: &sea_orm::DatabaseConnection, p: NewProduct) -> Result<Uuid> {
    let id = p.id;
    let mut rows = ProductRows::default();
    rows.push(p, Uuid::now_v7)?;
    let txn = crate::db::begin_write(db).await?;
    rows.insert(&txn).await?;
    txn.commit().await?;
    Ok(id)
}

/// Creates a merchant.
pub async fn create_merchant(db: &impl ConnectionTrait, name: &str) -> Result<merchant::Model> {
    let model = merchant::Model {
        id: Uuid::now_v7(),
        name: name.to_owned(),
        created_at: super::now(),
    };
    merchant::Entity::insert(merchant::ActiveModel::from(model.clone()))
        .exec_without_returning(db)
        .await?;
    Ok(model)
}

/// Creates a brand owned by `merchant_id`; brand names are unique (`BRAND_NAME_TAKEN`), of
/// 1 to 120 characters with none that hides or reorders text ([`super::text::name`]).
pub async fn create_brand(
    db: &impl ConnectionTrait,
    merchant_id: Uuid,
    name: &str,
) -> Result<brand::Model> {
    let name = super::text::name("name", name, 120)?;
    let model = brand::Model {
        id: Uuid::now_v7(),
        merchant_id,
        name,
        created_at: super::now(),
    };
    brand::Entity::insert(brand::ActiveModel::from(model.clone()))
        .exec_without_returning(db)
        .await
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                Error::rule("BRAND_NAME_TAKEN", "a brand with this name exists")
            } else {
                e.into()
            }
        })?;
    Ok(model)
}

/// Creates a category; `parent_id` `None` makes it top-level.
pub async fn create_category(
    db: &impl ConnectionTrait,
    parent_id: Option<Uuid>,
    slug: &str,
    name_zh: &str,
    name_en: &str,
    position: i32,
) -> Result<category::Model> {
    let model = category::Model {
        id: Uuid::now_v7(),
        parent_id,
        slug: slug.to_owned(),
        name_zh: name_zh.to_owned(),
        name_en: name_en.to_owned(),
        position,
        archived_at: None,
    };
    category::Entity::insert(category::ActiveModel::from(model.clone()))
        .exec_without_returning(db)
        .await?;
    Ok(model)
}

/// Number of products in any status (the seed and start-up use it to detect an empty store).
pub async fn product_count(db: &impl ConnectionTrait) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(product::Entity::find().count(db).await?)
}
