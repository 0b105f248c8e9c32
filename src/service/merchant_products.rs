//! Merchants editing their products (issue #31, item 2): `updateProductDraft`, and the
//! curators' review of the working copies it leaves.
//!
//! # Two versions of a listed product
//! A product that has been listed (`PUBLISHED`, or `UNPUBLISHED` after having been) was
//! curated as it stands, so a change of its **content or rates** — name, description, the
//! rebate rates, a SKU's name, a new SKU — does not touch it: it goes into the product's
//! working copy (`product_drafts`, one per product, `PENDING`), which a curator approves
//! (the copy replaces the listed content, in one transaction) or rejects with a reason
//! ([`review`]). Until then the listed version stays on sale unchanged. Edits made while a
//! copy waits are merged into it (the fields given replace the copy's). Like a note's
//! working copy (`service::notes`), but in a table of its own: the product's row is the one
//! every listing, checkout and passport reads, and stays the published version.
//!
//! A product that has not been listed yet (`IN_CURATION`, `REJECTED`) is changed directly:
//! curators examine it as it stands, and it is not on sale.
//!
//! # Direct changes
//! **Stock and price of an existing SKU** change at once, whatever the product's status:
//! audited (`SKU_STOCK_CHANGED`, `SKU_PRICE_CHANGED`, with the values before and after), and
//! after the commit [`Kind::CatalogChanged`] of the product is published, so every cached
//! catalog answer drops. Stock is set (`stock`) or moved (`stockDelta`: goods received,
//! damaged); a move below zero is refused (`VALIDATION` on `stockDelta`), and the database's
//! `CHECK (stock >= 0)` holds against concurrent checkouts whatever happens: a checkout takes
//! units with `stock = stock - n`, an edit sets or moves the row it holds locked, so neither
//! loses the other's change below zero. SKU rows are taken in id order (the service lock
//! order, `service`), then the product's row (its price range, `min_price`/`max_price`).
//!
//! # Rules
//! Names 1–120 characters, descriptions at most 5000, prices 0.01–1,000,000.00 with two
//! decimal places, stock 0–1,000,000,000, at most 50 SKUs; rebate rates each 0–0.30 with
//! four decimal places at most and together at most 0.30 (the 30 % rule: a line's
//! percentage earnings never exceed 30 % of its paid amount). Every bad field of the input
//! is named at once (`VALIDATION`). A product of another merchant is `NOT_FOUND`.
//!
//! [`Kind::CatalogChanged`]: crate::events::Kind::CatalogChanged

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{Money, Rate, member, product, product_draft, product_image, sku};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use crate::error::{Error, FieldErrors, Result};
use crate::events::{Event, Events};
use crate::media::Media;

/// Longest product or SKU name, in characters.
pub const MAX_NAME: usize = 120;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 5_000;
/// Most SKUs of a product.
pub const MAX_SKUS: usize = 50;
/// Highest price, in fen (1,000,000.00).
pub const MAX_PRICE_FEN: i64 = 100_000_000;
/// Most units of a SKU in stock.
pub const MAX_STOCK: i64 = 1_000_000_000;
/// The 30 % rule, in basis points.
pub const MAX_RATE_BP: i32 = 3_000;
/// Longest review reason, in characters.
pub const MAX_REASON: usize = 500;
/// Most images of a product.
pub const MAX_IMAGES: usize = 20;

/// A SKU's change: an existing SKU (`id`) or a new one (`id` `None`).
#[derive(Debug, Default)]
pub struct SkuEdit {
    /// `Some(None)`: an id was given that is not a SKU's ID.
    pub id: Option<Option<Uuid>>,
    pub name: Option<String>,
    /// A price as the client sent it: `Err` when it was no decimal (reported with the
    /// other bad fields).
    pub price: Option<Result<Decimal>>,
    pub stock: Option<i64>,
    pub stock_delta: Option<i64>,
}

/// What `updateProductDraft` changes: the fields given.
#[derive(Debug, Default)]
pub struct ProductEdit {
    pub name: Option<String>,
    /// `Some("")` clears it.
    pub description: Option<String>,
    /// `Err`: not a decimal (reported with the other bad fields).
    pub rebate_rate: Option<Result<Decimal>>,
    pub team_rebate_rate: Option<Result<Decimal>>,
    pub skus: Vec<SkuEdit>,
    /// The product's images, replacing its list: images the merchant's user uploaded
    /// (`uploadImage(purpose: PRODUCT)`), in display order; `None` in the list for an
    /// argument that is not an image's ID.
    pub image_ids: Option<Vec<Option<Uuid>>>,
}

/// A new SKU in a working copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftSku {
    pub name: String,
    pub price_fen: i64,
    pub stock: i32,
}

/// A listed product's working copy: its content and rates as they would be once approved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub name: String,
    pub description: Option<String>,
    pub rebate_rate_bp: i32,
    pub team_rebate_rate_bp: i32,
    /// New names of existing SKUs.
    #[serde(default)]
    pub sku_names: BTreeMap<Uuid, String>,
    /// SKUs to add.
    #[serde(default)]
    pub new_skus: Vec<DraftSku>,
    /// The image URLs replacing the product's (`None`: unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
}

impl Draft {
    fn of(p: &product::Model) -> Draft {
        Draft {
            name: p.name.clone(),
            description: p.description.clone(),
            rebate_rate_bp: p.rebate_rate.bp(),
            team_rebate_rate_bp: p.team_rebate_rate.bp(),
            sku_names: BTreeMap::new(),
            new_skus: Vec::new(),
            images: None,
        }
    }

    pub fn parse(row: &product_draft::Model) -> Result<Draft> {
        serde_json::from_str(&row.content).map_err(Error::internal)
    }
}

/// A working copy with its row.
pub struct DraftRow {
    pub row: product_draft::Model,
    pub draft: Draft,
}

/// What an edit did.
pub struct Edited {
    pub product: product::Model,
    /// The working copy waiting for review, if the product has one.
    pub draft: Option<DraftRow>,
}

fn rate(errors: &mut FieldErrors, field: &'static str, d: &Result<Decimal>) -> Option<Rate> {
    let r = d
        .as_ref()
        .ok()
        .and_then(|d| Rate::from_decimal(*d))
        .filter(|r| r.bp() <= MAX_RATE_BP);
    if r.is_none() {
        errors.push(
            field,
            "must be between 0 and 0.30 with at most 4 decimal places",
        );
    }
    r
}

fn name(errors: &mut FieldErrors, field: String, raw: &str) -> Option<String> {
    let s = raw.trim();
    let n = s.chars().count();
    if n == 0 || n > MAX_NAME || s.chars().any(super::text::hides_text) {
        errors.push(
            field,
            format!("must be 1 to {MAX_NAME} characters, without control characters"),
        );
        None
    } else {
        Some(s.to_owned())
    }
}

/// A SKU change whose fields passed.
struct CheckedSku {
    index: usize,
    id: Option<Uuid>,
    name: Option<String>,
    price: Option<Money>,
    stock: Option<i32>,
    stock_delta: Option<i32>,
}

/// Checks every field of `edit` against product `p` and its SKUs (one `VALIDATION` naming
/// every bad field).
fn check(
    edit: &ProductEdit,
    current: &Draft,
    skus: &HashMap<Uuid, sku::Model>,
    images: Option<Result<Vec<String>>>,
) -> Result<(Draft, Vec<CheckedSku>)> {
    let mut errors = FieldErrors::default();
    let mut next = current.clone();
    if let Some(images) = images
        && let Some(urls) = errors.check(images)
    {
        next.images = Some(urls);
    }
    if let Some(n) = &edit.name
        && let Some(n) = name(&mut errors, "input.name".into(), n)
    {
        next.name = n;
    }
    if let Some(d) = &edit.description {
        let d = d.trim();
        if d.chars().count() > MAX_DESCRIPTION {
            errors.push(
                "input.description",
                format!("must be at most {MAX_DESCRIPTION} characters"),
            );
        } else {
            next.description = (!d.is_empty()).then(|| d.to_owned());
        }
    }
    let r1 = edit
        .rebate_rate
        .as_ref()
        .and_then(|d| rate(&mut errors, "input.rebateRate", d));
    let r2 = edit
        .team_rebate_rate
        .as_ref()
        .and_then(|d| rate(&mut errors, "input.teamRebateRate", d));
    if let Some(r) = r1 {
        next.rebate_rate_bp = r.bp();
    }
    if let Some(r) = r2 {
        next.team_rebate_rate_bp = r.bp();
    }
    let rates_ok = edit.rebate_rate.as_ref().is_none_or(|_| r1.is_some())
        && edit.team_rebate_rate.as_ref().is_none_or(|_| r2.is_some());
    if rates_ok
        && (edit.rebate_rate.is_some() || edit.team_rebate_rate.is_some())
        && next.rebate_rate_bp + next.team_rebate_rate_bp > MAX_RATE_BP
    {
        let field = if edit.team_rebate_rate.is_some() {
            "input.teamRebateRate"
        } else {
            "input.rebateRate"
        };
        errors.push(
            field,
            "rebateRate + teamRebateRate must not exceed 0.30 (the 30 % rule)",
        );
    }
    let mut checked = Vec::new();
    let mut seen = HashSet::new();
    let mut added = 0usize;
    for (i, s) in edit.skus.iter().enumerate() {
        let f = |what: &str| format!("input.skus[{i}].{what}");
        let id = match s.id {
            Some(None) => {
                errors.push(f("id"), "not a SKU's ID");
                continue;
            }
            Some(Some(id)) if !skus.contains_key(&id) => {
                errors.push(f("id"), "not a SKU of this product");
                continue;
            }
            Some(Some(id)) if !seen.insert(id) => {
                errors.push(f("id"), "the SKU is named twice");
                continue;
            }
            Some(Some(id)) => Some(id),
            None => None,
        };
        let name = s
            .name
            .as_deref()
            .and_then(|n| name(&mut errors, f("name"), n));
        let price = s.price.as_ref().and_then(|d| {
            let m = d
                .as_ref()
                .ok()
                .and_then(|d| Money::from_decimal(*d))
                .filter(|m| m.fen() > 0 && m.fen() <= MAX_PRICE_FEN);
            if m.is_none() {
                errors.push(
                    f("price"),
                    "must be 0.01 to 1000000.00 with at most 2 decimal places",
                );
            }
            m
        });
        let stock = s.stock.and_then(|n| {
            if (0..=MAX_STOCK).contains(&n) {
                i32::try_from(n).ok()
            } else {
                errors.push(f("stock"), format!("must be 0 to {MAX_STOCK}"));
                None
            }
        });
        let stock_delta = s.stock_delta.and_then(|d| {
            if s.stock.is_some() {
                errors.push(f("stockDelta"), "give stock or stockDelta, not both");
                None
            } else if id.is_none() {
                errors.push(f("stockDelta"), "a new SKU takes stock, not stockDelta");
                None
            } else if d == 0 || d.abs() > MAX_STOCK {
                errors.push(
                    f("stockDelta"),
                    format!("must be a non-zero change of at most {MAX_STOCK} units"),
                );
                None
            } else {
                i32::try_from(d).ok()
            }
        });
        match id {
            None => {
                if s.name.is_none() {
                    errors.push(f("name"), "a new SKU needs a name");
                }
                if s.price.is_none() {
                    errors.push(f("price"), "a new SKU needs a price");
                }
                if s.stock.is_none() {
                    errors.push(f("stock"), "a new SKU needs its stock");
                }
                added += 1;
            }
            Some(_) => {
                if s.name.is_none()
                    && s.price.is_none()
                    && s.stock.is_none()
                    && s.stock_delta.is_none()
                {
                    errors.push(
                        f("id"),
                        "give at least one of name, price, stock, stockDelta",
                    );
                }
            }
        }
        checked.push(CheckedSku {
            index: i,
            id,
            name,
            price,
            stock,
            stock_delta,
        });
    }
    if skus.len() + current.new_skus.len() + added > MAX_SKUS {
        errors.push(
            "input.skus",
            format!("a product has at most {MAX_SKUS} SKUs"),
        );
    }
    if edit.name.is_none()
        && edit.description.is_none()
        && edit.rebate_rate.is_none()
        && edit.team_rebate_rate.is_none()
        && edit.skus.is_empty()
        && edit.image_ids.is_none()
    {
        errors.push("input", "give at least one field to change");
    }
    errors.finish()?;
    for c in &checked {
        match (c.id, &c.name) {
            (Some(id), Some(n)) => {
                if skus.get(&id).is_some_and(|s| &s.name == n) {
                    next.sku_names.remove(&id);
                } else {
                    next.sku_names.insert(id, n.clone());
                }
            }
            (None, Some(n)) => next.new_skus.push(DraftSku {
                name: n.clone(),
                price_fen: c.price.map(Money::fen).unwrap_or_default(),
                stock: c.stock.unwrap_or_default(),
            }),
            _ => {}
        }
    }
    Ok((next, checked))
}

/// Whether the product has been through the listing gate (its content was curated as it
/// stands).
fn listed(p: &product::Model) -> bool {
    matches!(
        p.status,
        product::Status::Published | product::Status::Unpublished
    )
}

async fn skus_of(txn: &impl ConnectionTrait, product: Uuid) -> Result<HashMap<Uuid, sku::Model>> {
    Ok(sku::Entity::find()
        .filter(sku::Column::ProductId.eq(product))
        .all(txn)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect())
}

/// Writes `draft`'s content over the product's row and its SKUs (names, new SKUs), then
/// its price range.
async fn apply(
    txn: &impl ConnectionTrait,
    p: &product::Model,
    draft: &Draft,
    now: DateTime<Utc>,
) -> Result<()> {
    for (id, n) in &draft.sku_names {
        sku::Entity::update_many()
            .col_expr(sku::Column::Name, Expr::value(n.clone()))
            .filter(sku::Column::Id.eq(*id))
            .filter(sku::Column::ProductId.eq(p.id))
            .exec(txn)
            .await?;
    }
    if !draft.new_skus.is_empty() {
        let last: Option<i32> = sku::Entity::find()
            .select_only()
            .column_as(sku::Column::Position.max(), "m")
            .filter(sku::Column::ProductId.eq(p.id))
            .into_tuple::<Option<i32>>()
            .one(txn)
            .await?
            .flatten();
        let mut position = last.unwrap_or(-1);
        for s in &draft.new_skus {
            position += 1;
            sku::Entity::insert(sku::ActiveModel {
                id: Set(Uuid::now_v7()),
                product_id: Set(p.id),
                name: Set(s.name.clone()),
                price: Set(Money::from_fen(s.price_fen)),
                stock: Set(s.stock),
                position: Set(position),
            })
            .exec_without_returning(txn)
            .await?;
        }
    }
    if let Some(urls) = &draft.images {
        set_images(txn, p.id, urls).await?;
    }
    product::Entity::update_many()
        .col_expr(product::Column::Name, Expr::value(draft.name.clone()))
        .col_expr(
            product::Column::Description,
            Expr::value(draft.description.clone()),
        )
        .col_expr(
            product::Column::RebateRate,
            Expr::value(Rate::from_bp(draft.rebate_rate_bp)),
        )
        .col_expr(
            product::Column::TeamRebateRate,
            Expr::value(Rate::from_bp(draft.team_rebate_rate_bp)),
        )
        .col_expr(product::Column::UpdatedAt, Expr::value(now))
        .filter(product::Column::Id.eq(p.id))
        .exec(txn)
        .await?;
    price_range(txn, p.id).await
}

/// Sets the product's `min_price` and `max_price` from its SKUs.
async fn price_range(txn: &impl ConnectionTrait, product_id: Uuid) -> Result<()> {
    let prices: Vec<Money> = skus_of(txn, product_id)
        .await?
        .into_values()
        .map(|s| s.price)
        .collect();
    let (Some(min), Some(max)) = (prices.iter().min(), prices.iter().max()) else {
        return Ok(());
    };
    product::Entity::update_many()
        .col_expr(product::Column::MinPrice, Expr::value(*min))
        .col_expr(product::Column::MaxPrice, Expr::value(*max))
        .filter(product::Column::Id.eq(product_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// The working copy of `product_id`, if any.
pub async fn draft_of(db: &impl ConnectionTrait, product_id: Uuid) -> Result<Option<DraftRow>> {
    match product_draft::Entity::find_by_id(product_id)
        .one(db)
        .await?
    {
        None => Ok(None),
        Some(row) => {
            let draft = Draft::parse(&row)?;
            Ok(Some(DraftRow { row, draft }))
        }
    }
}

/// The URLs of a product's new images (`imageIds`): the caller's own `PRODUCT` uploads.
/// `NOT_FOUND` for an image that is not the caller's; the other bad entries as fields.
async fn images_of(
    txn: &impl ConnectionTrait,
    media: &Media,
    uploader: Uuid,
    ids: &[Option<Uuid>],
) -> Result<Vec<String>> {
    let mut errors = FieldErrors::default();
    if ids.len() > MAX_IMAGES {
        errors.push("input.imageIds", format!("at most {MAX_IMAGES} images"));
    }
    let urls = super::images::urls_of(
        txn,
        media,
        uploader,
        entity::image::Purpose::Product,
        ids,
        "input.imageIds",
        &mut errors,
    )
    .await?;
    errors.finish()?;
    Ok(urls)
}

/// Replaces the product's images with `urls`, in order.
async fn set_images(txn: &impl ConnectionTrait, product: Uuid, urls: &[String]) -> Result<()> {
    product_image::Entity::delete_many()
        .filter(product_image::Column::ProductId.eq(product))
        .exec(txn)
        .await?;
    for (i, url) in urls.iter().enumerate() {
        product_image::Entity::insert(product_image::ActiveModel {
            id: Set(Uuid::now_v7()),
            product_id: Set(product),
            url: Set(url.clone()),
            alt: Set(None),
            position: Set(i32::try_from(i).map_err(Error::internal)?),
        })
        .exec_without_returning(txn)
        .await?;
    }
    Ok(())
}

/// A merchant user edits a product of its merchant (see the module's rules).
#[allow(clippy::too_many_arguments)]
pub async fn update(
    db: &DatabaseConnection,
    events: &Events,
    media: &Media,
    merchant: &member::Model,
    actor: &Actor,
    product_id: Uuid,
    edit: ProductEdit,
    now: DateTime<Utc>,
) -> Result<Edited> {
    let merchant_id = merchant
        .merchant_id
        .ok_or_else(|| Error::Forbidden("this account acts for no merchant".into()))?;
    let txn = crate::db::begin_write(db).await?;
    // The SKUs first, by id (the service's lock order), then the product's row.
    let mut ids: Vec<Uuid> = sku::Entity::find()
        .select_only()
        .column(sku::Column::Id)
        .filter(sku::Column::ProductId.eq(product_id))
        .into_tuple()
        .all(&txn)
        .await?;
    ids.sort_unstable();
    let mut skus = HashMap::new();
    if !ids.is_empty() {
        for s in sku::Entity::find()
            .filter(sku::Column::Id.is_in(ids))
            .order_by_asc(sku::Column::Id)
            .lock_exclusive()
            .all(&txn)
            .await?
        {
            skus.insert(s.id, s);
        }
    }
    let p = product::Entity::find_by_id(product_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .filter(|p| p.merchant_id == merchant_id)
        .ok_or_else(|| Error::not_found("product"))?;
    let existing = draft_of(&txn, product_id).await?;
    let current = existing
        .as_ref()
        .map(|d| d.draft.clone())
        .unwrap_or_else(|| Draft::of(&p));
    let images = match &edit.image_ids {
        None => None,
        Some(ids) => Some(images_of(&txn, media, merchant.id, ids).await),
    };
    let (next, checked) = check(&edit, &current, &skus, images)?;
    // Stock and price of existing SKUs: at once, in id order.
    let mut direct: Vec<&CheckedSku> = checked
        .iter()
        .filter(|c| {
            c.id.is_some() && (c.price.is_some() || c.stock.is_some() || c.stock_delta.is_some())
        })
        .collect();
    direct.sort_by_key(|c| c.id);
    let mut catalog_changed = false;
    let mut price_changed = false;
    let mut delta_errors = FieldErrors::default();
    for c in &direct {
        let Some(id) = c.id else { continue };
        let Some(before) = skus.get(&id) else {
            continue;
        };
        if let Some(price) = c.price
            && price != before.price
        {
            sku::Entity::update_many()
                .col_expr(sku::Column::Price, Expr::value(price))
                .filter(sku::Column::Id.eq(id))
                .exec(&txn)
                .await?;
            audit::record(
                &txn,
                actor,
                Action::SkuPriceChanged,
                Some((TargetType::Product, p.id)),
                json!({ "skuId": id, "price": price.to_string(),
                        "previous": before.price.to_string() }),
                now,
            )
            .await?;
            price_changed = true;
            catalog_changed = true;
        }
        let stock_update = match (c.stock, c.stock_delta) {
            (Some(s), _) if s != before.stock => Some(Expr::value(s)),
            (_, Some(d)) => Some(Expr::col(sku::Column::Stock).add(d)),
            _ => None,
        };
        if let Some(expr) = stock_update {
            let mut update = sku::Entity::update_many()
                .col_expr(sku::Column::Stock, expr)
                .filter(sku::Column::Id.eq(id));
            if let Some(d) = c.stock_delta {
                update = update.filter(Expr::col(sku::Column::Stock).add(d).gte(0));
            }
            if update.exec(&txn).await?.rows_affected == 0 {
                delta_errors.push(
                    format!("input.skus[{}].stockDelta", c.index),
                    "would take the stock below zero",
                );
                continue;
            }
            let after = sku::Entity::find_by_id(id)
                .one(&txn)
                .await?
                .map(|s| s.stock)
                .unwrap_or_default();
            audit::record(
                &txn,
                actor,
                Action::SkuStockChanged,
                Some((TargetType::Product, p.id)),
                json!({ "skuId": id, "stock": after, "delta": c.stock_delta,
                        "set": c.stock, "previous": before.stock }),
                now,
            )
            .await?;
            catalog_changed = true;
        }
    }
    // Nothing is written when a move would go below zero (the transaction is dropped).
    delta_errors.finish()?;
    let content_changed = next != current;
    let mut draft_out = existing;
    if content_changed {
        let fields = json!({
            "name": edit.name.as_ref().map(|_| &next.name),
            "description": edit.description.as_ref().map(|_| &next.description),
            "rebateRate": edit.rebate_rate.as_ref().map(|_| Rate::from_bp(next.rebate_rate_bp).to_decimal().to_string()),
            "teamRebateRate": edit.team_rebate_rate.as_ref().map(|_| Rate::from_bp(next.team_rebate_rate_bp).to_decimal().to_string()),
            "skuNames": &next.sku_names,
            "newSkus": next.new_skus.len(),
            "images": edit.image_ids.as_ref().map(|_| &next.images),
        });
        if listed(&p) {
            let content = serde_json::to_string(&next).map_err(Error::internal)?;
            let row = product_draft::Model {
                product_id: p.id,
                merchant_id,
                content,
                status: product_draft::Status::Pending,
                review_reason: None,
                reviewed_by: None,
                created_at: draft_out.as_ref().map_or(now, |d| d.row.created_at),
                updated_at: now,
            };
            if draft_out.is_some() {
                product_draft::Entity::update(
                    product_draft::ActiveModel::from(row.clone()).reset_all(),
                )
                .exec(&txn)
                .await?;
            } else {
                product_draft::Entity::insert(product_draft::ActiveModel::from(row.clone()))
                    .exec_without_returning(&txn)
                    .await?;
            }
            audit::record(
                &txn,
                actor,
                Action::ProductDraftSubmitted,
                Some((TargetType::Product, p.id)),
                fields,
                now,
            )
            .await?;
            draft_out = Some(DraftRow { row, draft: next });
        } else {
            apply(&txn, &p, &next, now).await?;
            price_changed = false;
            catalog_changed = true;
            audit::record(
                &txn,
                actor,
                Action::ProductEdited,
                Some((TargetType::Product, p.id)),
                fields,
                now,
            )
            .await?;
        }
    }
    if price_changed {
        price_range(&txn, p.id).await?;
    }
    if catalog_changed {
        product::Entity::update_many()
            .col_expr(product::Column::UpdatedAt, Expr::value(now))
            .filter(product::Column::Id.eq(p.id))
            .exec(&txn)
            .await?;
    }
    let product = product::Entity::find_by_id(p.id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("product"))?;
    txn.commit().await?;
    if catalog_changed {
        events.publish(vec![Event::catalog(Some(p.id))]).await;
    }
    Ok(Edited {
        product,
        draft: draft_out,
    })
}

/// A curator approves a product's pending working copy (it replaces the listed content at
/// once) or rejects it with a reason (`VALIDATION` on `reason` without one). `NOT_FOUND`
/// without a pending copy. Audited.
#[allow(clippy::too_many_arguments)]
pub async fn review(
    db: &DatabaseConnection,
    events: &Events,
    curator: &member::Model,
    actor: &Actor,
    product_id: Uuid,
    approve: bool,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Edited> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON) {
        return Err(Error::validation(
            "reason",
            format!("must be at most {MAX_REASON} characters"),
        ));
    }
    if !approve && reason.is_none() {
        return Err(Error::validation(
            "reason",
            "say why the change is rejected",
        ));
    }
    let txn = crate::db::begin_write(db).await?;
    let p = product::Entity::find_by_id(product_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("product"))?;
    let d = draft_of(&txn, product_id)
        .await?
        .filter(|d| d.row.status == product_draft::Status::Pending)
        .ok_or_else(|| Error::not_found("pending product draft"))?;
    let out = if approve {
        apply(&txn, &p, &d.draft, now).await?;
        product_draft::Entity::delete_by_id(product_id)
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            Action::ProductDraftApproved,
            Some((TargetType::Product, product_id)),
            json!({ "name": d.draft.name, "submittedAt": d.row.updated_at }),
            now,
        )
        .await?;
        None
    } else {
        let row = product_draft::Model {
            status: product_draft::Status::Rejected,
            review_reason: reason.map(str::to_owned),
            reviewed_by: Some(curator.id),
            ..d.row
        };
        product_draft::Entity::update(product_draft::ActiveModel::from(row.clone()).reset_all())
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            Action::ProductDraftRejected,
            Some((TargetType::Product, product_id)),
            json!({ "reason": reason }),
            now,
        )
        .await?;
        Some(DraftRow {
            row,
            draft: d.draft,
        })
    };
    let product = product::Entity::find_by_id(product_id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("product"))?;
    txn.commit().await?;
    if approve {
        events.publish(vec![Event::catalog(Some(product_id))]).await;
    }
    Ok(Edited {
        product,
        draft: out,
    })
}

/// Pending working copies, oldest first (the curators' queue), at most `limit`.
pub async fn pending(db: &impl ConnectionTrait, limit: u64) -> Result<Vec<DraftRow>> {
    product_draft::Entity::find()
        .filter(product_draft::Column::Status.eq(product_draft::Status::Pending))
        .order_by_asc(product_draft::Column::UpdatedAt)
        .order_by_asc(product_draft::Column::ProductId)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|row| {
            let draft = Draft::parse(&row)?;
            Ok(DraftRow { row, draft })
        })
        .collect()
}
