//! `pushhand seed`: the demo catalog — the 17 top-level categories of the seed article with
//! their subcategories, 420 merchants, their brands and about 3,100 products with SKUs,
//! images and tags — and the demo member hierarchy of [`members`] (staff, founding
//! push-hands, about 3,000 push-hands over six levels, partners with active and lapsed
//! bindings; every demo account's password is [`members::DEMO_PASSWORD`], for development
//! only).
//!
//! Deterministic (a fixed random seed and fixed timestamps make the same ids and rows on
//! every machine; only the members' active partner bindings are placed relative to the
//! current time), idempotent (a second run finds the first category and the named demo
//! accounts and adds nothing), and written with multi-row inserts, the catalog in one
//! transaction and the hierarchy in another, so it takes a few seconds. A run that wrote
//! anything publishes a catalog change ([`crate::events::Kind::CatalogChanged`]) at its end:
//! answers cached while the catalog was empty go.

mod curation;
mod data;
pub mod members;

use chrono::{DateTime, Duration, TimeZone, Utc};
use entity::{Money, Rate, brand, category, merchant, product};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};
use uuid::Uuid;

use crate::error::Result;
use crate::events::{Event, Events};
use crate::service::catalog::{self, NewProduct, NewSku, ProductRows};

const SEED: u64 = 0x005E_ED0F_7011_2026;
const MERCHANTS: usize = 420;
/// Brands in each leaf category: the curated cap is 8, and the demo stays inside it.
const BRANDS_PER_LEAF: std::ops::RangeInclusive<usize> = 5..=8;
/// Products per leaf category: 86 leaves × 36 on average ≈ 3,100 products.
const PRODUCTS_PER_LEAF: std::ops::RangeInclusive<usize> = 30..=42;

/// What a seed run wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// True when the demo data was already there and nothing was written.
    pub already_seeded: bool,
    pub categories: usize,
    pub merchants: usize,
    pub brands: usize,
    pub products: usize,
    pub published: usize,
    pub skus: usize,
    /// Demo members written (staff, push-hands, partners and their buyers).
    pub members: usize,
    /// Products given demo curation records (stages, scores, passport).
    pub curated: usize,
}

/// Mints UUIDv7 ids from the seeded generator, with timestamps counting up from a fixed
/// instant: stable across runs and ordered like real v7 ids.
struct Ids {
    rng: ChaCha8Rng,
    millis: u64,
}

impl Ids {
    fn next(&mut self) -> Uuid {
        self.millis += 1;
        let mut random = [0u8; 10];
        self.rng.fill(&mut random);
        uuid::Builder::from_unix_timestamp_millis(self.millis, &random).into_uuid()
    }
}

fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Writes the demo catalog, the demo member hierarchy and the demo curation records, each
/// unless it is already there.
pub async fn run(db: &DatabaseConnection, events: &Events) -> Result<SeedReport> {
    let mut report = run_catalog(db).await?;
    report.members = members::run(db, crate::service::now()).await?;
    let txn = crate::db::begin_write(db).await?;
    report.curated = curation::run(&txn).await?;
    txn.commit().await?;
    report.already_seeded &= report.members == 0 && report.curated == 0;
    published(events, &report).await;
    Ok(report)
}

/// Writes the demo catalog alone — categories, merchants, brands, products — unless it is
/// already there: no accounts (whose password is public) and no curation records (which
/// name the demo curator), so production may import it.
pub async fn run_catalog_only(db: &DatabaseConnection, events: &Events) -> Result<SeedReport> {
    let report = run_catalog(db).await?;
    published(events, &report).await;
    Ok(report)
}

/// Publishes the catalog change of a run that wrote anything.
async fn published(events: &Events, report: &SeedReport) {
    if !report.already_seeded {
        events.publish(vec![Event::catalog(None)]).await;
    }
}

/// Writes the demo catalog unless it is already there.
async fn run_catalog(db: &DatabaseConnection) -> Result<SeedReport> {
    let first_slug = data::CATEGORIES[0].slug;
    let exists = category::Entity::find()
        .filter(category::Column::Slug.eq(first_slug))
        .one(db)
        .await?
        .is_some();
    if exists {
        return Ok(SeedReport {
            already_seeded: true,
            ..SeedReport::default()
        });
    }

    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut ids = Ids {
        rng: ChaCha8Rng::seed_from_u64(SEED ^ 0xFFFF),
        millis: epoch().timestamp_millis() as u64,
    };
    let mut report = SeedReport::default();
    let txn = db.begin().await?;

    // Categories: top level, then leaves, in data order.
    let mut categories = Vec::new();
    let mut leaves = Vec::new(); // (top index, leaf data, leaf id)
    for (ti, top) in data::CATEGORIES.iter().enumerate() {
        let top_id = ids.next();
        categories.push(category::ActiveModel {
            id: Set(top_id),
            parent_id: Set(None),
            slug: Set(top.slug.into()),
            name_zh: Set(top.name_zh.into()),
            name_en: Set(top.name_en.into()),
            position: Set(ti as i32),
            archived_at: Set(None),
        });
        for (li, leaf) in top.children.iter().enumerate() {
            let leaf_id = ids.next();
            categories.push(category::ActiveModel {
                id: Set(leaf_id),
                parent_id: Set(Some(top_id)),
                slug: Set(leaf.slug.into()),
                name_zh: Set(leaf.name_zh.into()),
                name_en: Set(leaf.name_en.into()),
                position: Set(li as i32),
                archived_at: Set(None),
            });
            leaves.push((ti, leaf, leaf_id));
        }
    }
    report.categories = categories.len();
    catalog::insert_chunks(&txn, categories).await?;

    // Merchants: distinct city × trade names.
    let mut merchant_names: Vec<(usize, usize)> = (0..data::MERCHANT_CITIES.len())
        .flat_map(|c| (0..data::MERCHANT_TRADES.len()).map(move |t| (c, t)))
        .collect();
    merchant_names.shuffle(&mut rng);
    let mut merchants = Vec::new();
    for &(c, t) in merchant_names.iter().take(MERCHANTS) {
        let (city, _) = data::MERCHANT_CITIES[c];
        let (trade, _) = data::MERCHANT_TRADES[t];
        merchants.push(merchant::Model {
            id: ids.next(),
            name: format!("{city}{trade}有限公司"),
            created_at: epoch() - Duration::days(rng.random_range(400..1500)),
        });
    }

    // Brands: each merchant owns one or two, with distinct prefix × suffix names, and each
    // brand serves one top-level category.
    let mut brand_names: Vec<(usize, usize)> = (0..data::BRAND_PREFIXES.len())
        .flat_map(|p| (0..data::BRAND_SUFFIXES.len()).map(move |s| (p, s)))
        .collect();
    brand_names.shuffle(&mut rng);
    let mut brand_names = brand_names.into_iter();
    let mut brands: Vec<(brand::Model, usize)> = Vec::new(); // (brand, top index)
    for (mi, m) in merchants.iter().enumerate() {
        let owned = if rng.random_bool(0.4) { 2 } else { 1 };
        for _ in 0..owned {
            let Some((p, s)) = brand_names.next() else {
                break;
            };
            let (pz, pe) = data::BRAND_PREFIXES[p];
            let (sz, se) = data::BRAND_SUFFIXES[s];
            brands.push((
                brand::Model {
                    id: ids.next(),
                    merchant_id: m.id,
                    name: format!("{pe}{} {pz}{sz}", se.to_lowercase()),
                    created_at: m.created_at + Duration::days(rng.random_range(1..60)),
                },
                mi % data::CATEGORIES.len(),
            ));
        }
    }
    report.merchants = merchants.len();
    report.brands = brands.len();
    catalog::insert_chunks(
        &txn,
        merchants
            .into_iter()
            .map(merchant::ActiveModel::from)
            .collect(),
    )
    .await?;

    // Products, leaf by leaf, from the brands serving the leaf's top-level category.
    let mut rows = ProductRows::default();
    for (ti, leaf, leaf_id) in &leaves {
        let pool: Vec<&brand::Model> = brands
            .iter()
            .filter(|(_, t)| t == ti)
            .map(|(b, _)| b)
            .collect();
        let wanted = rng.random_range(BRANDS_PER_LEAF).min(pool.len());
        let leaf_brands: Vec<&brand::Model> =
            pool.choose_multiple(&mut rng, wanted).copied().collect();
        for _ in 0..rng.random_range(PRODUCTS_PER_LEAF) {
            let Some(brand) = leaf_brands.choose(&mut rng) else {
                break;
            };
            let p = demo_product(&mut rng, &mut ids, leaf, *leaf_id, brand);
            report.products += 1;
            report.skus += p.skus.len();
            if p.status == product::Status::Published {
                report.published += 1;
            }
            rows.push(p, || ids.next())?;
        }
    }
    catalog::insert_chunks(
        &txn,
        brands
            .into_iter()
            .map(|(b, _)| brand::ActiveModel::from(b))
            .collect(),
    )
    .await?;
    rows.insert(&txn).await?;
    txn.commit().await?;
    Ok(report)
}

/// A price in fen within `range` yuan, skewed towards the cheap end and ending in .90 or .00.
fn demo_price(rng: &mut ChaCha8Rng, (lo, hi): (u32, u32)) -> Money {
    let u: f64 = rng.random();
    // Demo data only: the float picks a position in the range, the price itself is integral fen.
    let yuan = i64::from(lo) + ((f64::from(hi - lo)) * u * u) as i64;
    let fen = if rng.random_bool(0.7) {
        yuan * 100 - 10
    } else {
        yuan * 100
    };
    Money::from_fen(fen.clamp(990, 499_900))
}

fn demo_product(
    rng: &mut ChaCha8Rng,
    ids: &mut Ids,
    leaf: &data::LeafCategory,
    leaf_id: Uuid,
    brand: &brand::Model,
) -> NewProduct {
    let (noun_zh, noun_en) = *leaf
        .products
        .choose(rng)
        .unwrap_or(&(leaf.name_zh, leaf.name_en));
    let (mod_zh, mod_en) = *data::MODIFIERS.choose(rng).unwrap_or(&("", ""));
    let series = if rng.random_bool(0.35) {
        data::SERIES.choose(rng).copied()
    } else {
        None
    };
    let brand_short = brand.name.split(' ').next().unwrap_or(&brand.name);
    let brand_zh = brand.name.split(' ').nth(1).unwrap_or(brand_short);
    let (name, name_en) = match series {
        Some((sz, se)) => (
            format!("{brand_zh}{mod_zh}{noun_zh} {sz}"),
            format!("{brand_short} {mod_en} {noun_en} {se}"),
        ),
        None => (
            format!("{brand_zh}{mod_zh}{noun_zh}"),
            format!("{brand_short} {mod_en} {noun_en}"),
        ),
    };

    let base = demo_price(rng, leaf.price_yuan);
    let variants = data::VARIANT_SETS.choose(rng).copied().unwrap_or(&[]);
    let sku_count = rng.random_range(1..=4usize).min(variants.len().max(1));
    let mut skus = Vec::with_capacity(sku_count);
    for (i, (vz, ve)) in variants.iter().take(sku_count).enumerate() {
        // Later variants cost up to 10 % more each, in whole yuan.
        let step = base.fen() / 10 / 100 * 100 * i as i64;
        let stock = if rng.random_bool(0.05) {
            rng.random_range(0..20)
        } else {
            rng.random_range(100..1000)
        };
        skus.push(NewSku {
            name: if vz == ve {
                (*vz).to_owned()
            } else {
                format!("{vz} / {ve}")
            },
            price: Money::from_fen((base.fen() + step).min(499_900)),
            stock,
        });
    }
    if skus.is_empty() {
        skus.push(NewSku {
            name: "标准款 / Standard".into(),
            price: base,
            stock: 500,
        });
    }

    let membership_activity = rng.random_bool(0.003);
    let mut tags: Vec<String> = Vec::new();
    for _ in 0..rng.random_range(0..=2) {
        if let Some((tz, _)) = data::TAGS.choose(rng)
            && !tags.iter().any(|t| t == tz)
        {
            tags.push((*tz).to_owned());
        }
    }
    if membership_activity {
        tags.push("会员礼包".into());
    }

    let id = ids.next();
    let published_at = epoch() - Duration::minutes(rng.random_range(0..(700 * 24 * 60)));
    let in_curation = rng.random_bool(0.01);
    NewProduct {
        id,
        merchant_id: brand.merchant_id,
        brand_id: brand.id,
        category_id: leaf_id,
        name,
        name_en: Some(name_en),
        description: Some(format!(
            "{mod_zh}{noun_zh}，通过五道品控关卡的精选好物。 A curated {noun_en}."
        )),
        status: if in_curation {
            product::Status::InCuration
        } else {
            product::Status::Published
        },
        rebate_rate: Rate::from_bp(rng.random_range(5..=20) * 100),
        team_rebate_rate: Rate::from_bp(rng.random_range(1..=5) * 100),
        membership_activity,
        sales_count: (rng.random_range(0.0f64..1.0).powi(3) * 50_000.0) as i64,
        created_at: published_at - Duration::days(rng.random_range(5..90)),
        published_at: (!in_curation).then_some(published_at),
        images: (1..=3)
            .map(|n| {
                format!(
                    "https://cdn.pushhand.example/products/{}/{id}/{n}.jpg",
                    leaf.slug
                )
            })
            .collect(),
        tags,
        skus,
    }
}
