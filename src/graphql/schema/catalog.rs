//! The catalog in GraphQL: `Product`, `Sku`, `Brand`, `Merchant`, `Category`, and the root
//! fields `product`, `products` and `categories`. Types wrap entity rows; related rows come
//! through the DataLoaders, or with the page for a listing, whose products are then answered
//! by [`plain`] when their selection allows.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::parser::types::Field;
use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::{brand, category, merchant, product, product_image, sku};

use super::curation::CurationReport;
use crate::error::Error;
use crate::graphql::context::{load_err, state, viewer};
use crate::graphql::ids::{self, GlobalId, Kind};
use crate::graphql::loaders::{
    BrandKey, CatalogLoader, CategoryKey, ChildrenOf, CurationOf, ImagesOf, LoadError, Loaders,
    MerchantKey, ProductKey, SkusOf, TagsOf,
};
use crate::graphql::pagination::{ConnectionOf, PageArgs, page_size};
use crate::graphql::scalars::Dec;
use crate::graphql::transport::plain::{
    self, Env, Fast, Json, Plain, PlainValue, plain_enums, plain_object,
};
use crate::service::auth::Viewer;
use crate::service::catalog::{self as svc, sees_rates};
use crate::service::curation::Summary;

/// Where a product stands in the listing pipeline.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ProductStatus {
    /// Going through the five curation stages.
    InCuration,
    /// A curation stage failed; back with the merchant.
    Rejected,
    /// Listed (上架) and visible to everyone.
    Published,
    /// Delisted (下架).
    Unpublished,
}

impl From<product::Status> for ProductStatus {
    fn from(s: product::Status) -> Self {
        match s {
            product::Status::InCuration => ProductStatus::InCuration,
            product::Status::Rejected => ProductStatus::Rejected,
            product::Status::Published => ProductStatus::Published,
            product::Status::Unpublished => ProductStatus::Unpublished,
        }
    }
}

/// A product row, with the related rows of its page when it came from a listing (see
/// [`prime`]): the fields then read them directly instead of asking the loaders once each.
pub struct Product(pub product::Model, pub Option<Arc<PageRows>>);

impl Product {
    /// A product on its own: related rows come through the loaders.
    pub fn of(row: product::Model) -> Product {
        Product(row, None)
    }

    fn page(&self) -> Option<&PageRows> {
        self.1.as_deref()
    }

    /// `estimatedEarning` as `viewer` sees it.
    fn earning_for(&self, viewer: &Viewer) -> Option<Dec> {
        svc::estimated_earning(viewer, &self.0).map(Dec::from)
    }

    /// `unpublishedReason` as `viewer` sees it.
    fn reason_for(&self, viewer: &Viewer) -> Option<&str> {
        if svc::is_insider(viewer, &self.0) {
            self.0.unpublished_reason.as_deref()
        } else {
            None
        }
    }
}

/// A related row: the page's copy when the product came with one, else through the loaders.
async fn related<K, V>(ctx: &Context<'_>, on_page: Option<&V>, key: K) -> Result<Option<V>>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    V: Clone + Send + Sync + 'static,
    CatalogLoader: Loader<K, Value = V, Error = LoadError>,
{
    match on_page {
        Some(v) => Ok(Some(v.clone())),
        None => ctx.data::<Loaders>()?.load_one(key).await.map_err(load_err),
    }
}

/// The related rows of a page of products (or of one product's detail), loaded once for
/// the page by [`prime`]. A map is empty when the query does not ask for that relation; a
/// to-many map then has an entry for every product of the page, empty or not.
#[derive(Default)]
pub struct PageRows {
    brands: HashMap<BrandKey, brand::Model>,
    /// The products' categories, and their parents when the query asks for them.
    categories: HashMap<CategoryKey, category::Model>,
    merchants: HashMap<MerchantKey, merchant::Model>,
    skus: HashMap<SkusOf, Vec<sku::Model>>,
    images: HashMap<ImagesOf, Vec<product_image::Model>>,
    tags: HashMap<TagsOf, Vec<String>>,
    curation: HashMap<CurationOf, Arc<Summary>>,
}

/// A brand or category of a page with the page itself, so that its own relations (a
/// brand's merchant, a category's parent) are answered from the page's rows too.
struct OnPage<'p, T> {
    row: &'p T,
    page: &'p PageRows,
}

impl Plain for OnPage<'_, brand::Model> {
    const TYPE: &'static str = <brand::Model as Plain>::TYPE;

    fn field<'a>(&self, env: &Env<'a>, field: &'a Field, out: &mut Json) -> Option<()> {
        match field.name.node.as_str() {
            "merchant" => {
                let merchant = self
                    .page
                    .merchants
                    .get(&MerchantKey(self.row.merchant_id))?;
                plain::object(merchant, env, &field.selection_set.node, out)
            }
            _ => self.row.field(env, field, out),
        }
    }
}

impl Plain for OnPage<'_, category::Model> {
    const TYPE: &'static str = <category::Model as Plain>::TYPE;

    fn field<'a>(&self, env: &Env<'a>, field: &'a Field, out: &mut Json) -> Option<()> {
        match (field.name.node.as_str(), self.row.parent_id) {
            ("parent", Some(parent)) => {
                let row = self.page.categories.get(&CategoryKey(parent))?;
                let parent = OnPage {
                    row,
                    page: self.page,
                };
                plain::object(&parent, env, &field.selection_set.node, out)
            }
            _ => self.row.field(env, field, out),
        }
    }
}

plain_enums!(ProductStatus);

plain_object! {
    /// A curated product (商品): one brand, one leaf category, one or more SKUs.
    impl Product => Product as "Product" {
        |this| this;
        |r, e|
        /// Opaque global ID.
        id "id": GlobalId = GlobalId(Kind::Product, r.0.id);
        /// Name as shoppers see it (Chinese in the demo data).
        name "name": &str = &r.0.name;
        /// English name, when there is one.
        name_en "nameEn": Option<&str> = r.0.name_en.as_deref();
        /// The merchant's description, plain text (no markup; line breaks kept), at most
        /// 5,000 characters; null when it has none.
        description "description": Option<&str> = r.0.description.as_deref();
        /// Where it stands in the listing pipeline. Everyone but staff only ever sees
        /// PUBLISHED products (the others are `NOT_FOUND` to them).
        status "status": ProductStatus = r.0.status.into();
        /// 会员活动商品: a completed order for it makes the buyer a push-hand.
        membership_activity "membershipActivity": bool = r.0.membership_activity;
        /// Lowest SKU price, CNY.
        min_price "minPrice": Dec = r.0.min_price.into();
        /// Highest SKU price, CNY.
        max_price "maxPrice": Dec = r.0.max_price.into();
        /// Units sold (已售): paid units, less refunded ones. Written about once a second, so
        /// it trails a payment by up to that long.
        sales_count "salesCount": i64 = r.0.sales_count;
        /// When it was listed; null until first published.
        published_at "publishedAt": Option<DateTime<Utc>> = r.0.published_at;
        /// When the merchant submitted it into curation.
        created_at "createdAt": DateTime<Utc> = r.0.created_at;
        /// Level-1 rebate rate (e.g. "0.15"); shown to push-hands, partners and staff, null
        /// for everyone else.
        rebate_rate "rebateRate": Option<Dec> =
            sees_rates(e.viewer).then(|| r.0.rebate_rate.into());
        /// Level-2 (team) rebate rate; same visibility as `rebateRate`.
        team_rebate_rate "teamRebateRate": Option<Dec> =
            sees_rates(e.viewer).then(|| r.0.team_rebate_rate.into());
        /// 预估赚: what the signed-in push-hand earns on one unit at the lowest price (price ×
        /// rebate rate, rounded down to the fen). Null for everyone who is not a push-hand.
        estimated_earning "estimatedEarning": Option<Dec> = r.earning_for(e.viewer);
        /// Why it was delisted; shown to curators, admins and the product's merchant.
        unpublished_reason "unpublishedReason": Option<&str> = r.reason_for(e.viewer);
    }
    // Relations from the page's rows when the product came with them (a listing, a
    // detail).
    plain |s, field, out| {
        "brand" => {
            let page = s.page()?;
            let row = page.brands.get(&BrandKey(s.0.brand_id))?;
            plain::object(&OnPage { row, page }, e, &field.selection_set.node, out)?;
        }
        "category" => {
            let page = s.page()?;
            let row = page.categories.get(&CategoryKey(s.0.category_id))?;
            plain::object(&OnPage { row, page }, e, &field.selection_set.node, out)?;
        }
        "skus" => {
            let skus = s.page()?.skus.get(&SkusOf(s.0.id))?;
            plain::list(skus, e, &field.selection_set.node, out)?;
        }
        "images" => {
            let images = s.page()?.images.get(&ImagesOf(s.0.id))?;
            plain::list(images, e, &field.selection_set.node, out)?;
        }
        "tags" => s.page()?.tags.get(&TagsOf(s.0.id))?.write(out),
        "curation" => {
            let summary = s.page()?.curation.get(&CurationOf(s.0.id))?;
            let insider = svc::is_insider(e.viewer, &s.0);
            let report = CurationReport::new(&s.0, summary.clone(), insider, e.min_score);
            plain::object(&report, e, &field.selection_set.node, out)?;
        }
    }
    resolvers {
        /// The quality passport (品控): stage results, scores, badges. Reviewer notes and
        /// evidence are shown to curators, admins and the product's merchant only.
        async fn curation(&self, ctx: &Context<'_>) -> Result<CurationReport> {
            let key = CurationOf(self.0.id);
            let summary =
                related(ctx, self.page().and_then(|p| p.curation.get(&key)), key).await?;
            let insider = svc::is_insider(viewer(ctx)?, &self.0);
            let min_score = state(ctx)?.config.policy.min_criterion_score;
            Ok(CurationReport::new(
                &self.0,
                summary.unwrap_or_default(),
                insider,
                min_score,
            ))
        }
        /// The brand it is sold under (every product has exactly one).
        async fn brand(&self, ctx: &Context<'_>) -> Result<Brand> {
            let key = BrandKey(self.0.brand_id);
            let found = related(ctx, self.page().and_then(|p| p.brands.get(&key)), key).await?;
            found.map(Brand).ok_or_else(|| {
                Error::internal(anyhow::anyhow!("product {} has no brand", self.0.id)).into()
            })
        }
        /// The leaf category it is listed in.
        async fn category(&self, ctx: &Context<'_>) -> Result<Category> {
            let key = CategoryKey(self.0.category_id);
            let found =
                related(ctx, self.page().and_then(|p| p.categories.get(&key)), key).await?;
            found.map(Category).ok_or_else(|| {
                Error::internal(anyhow::anyhow!("product {} has no category", self.0.id)).into()
            })
        }
        /// Purchasable variants, in display order.
        async fn skus(&self, ctx: &Context<'_>) -> Result<Vec<Sku>> {
            let key = SkusOf(self.0.id);
            let found = related(ctx, self.page().and_then(|p| p.skus.get(&key)), key).await?;
            Ok(found.unwrap_or_default().into_iter().map(Sku).collect())
        }
        /// Images, in display order.
        async fn images(&self, ctx: &Context<'_>) -> Result<Vec<ProductImage>> {
            let key = ImagesOf(self.0.id);
            let found = related(ctx, self.page().and_then(|p| p.images.get(&key)), key).await?;
            Ok(found.unwrap_or_default().into_iter().map(ProductImage).collect())
        }
        /// Public 种草 notes that recommend this product.
        async fn notes(
            &self,
            ctx: &Context<'_>,
            #[graphql(desc = "The order (default LATEST).")] feed: Option<super::notes::NoteFeed>,
            #[graphql(desc = "Page size (default 20, capped at 100).")] first: Option<i32>,
            #[graphql(desc = "The previous page's last cursor.")] after: Option<String>,
        ) -> Result<Fast<super::notes::NoteConnection>> {
            let filter = crate::service::notes::Filter {
                product: Some(self.0.id),
                ..Default::default()
            };
            super::notes::public_notes(ctx, feed, filter, first, after).await
        }
        /// Card labels such as 爆品 (bestseller) or 新品 (new).
        async fn tags(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
            let key = TagsOf(self.0.id);
            let found = related(ctx, self.page().and_then(|p| p.tags.get(&key)), key).await?;
            Ok(found.unwrap_or_default())
        }
    }
}

pub struct Sku(pub sku::Model);

plain_object! {
    /// A purchasable variant of a product (colour, size...), with its own price and stock.
    impl Sku => sku::Model as "Sku" {
        |this| &this.0;
        |r, e|
        /// Opaque global ID; pass it as `skuId` when ordering.
        id "id": GlobalId = GlobalId(Kind::Sku, r.id);
        /// Variant label, e.g. "白色 / White".
        name "name": &str = &r.name;
        /// Unit price, CNY.
        price "price": Dec = r.price.into();
        /// Units available to order.
        stock "stock": i32 = r.stock;
    }
    plain |s, field, out| {}
    resolvers {
        /// The product this SKU belongs to.
        async fn product(&self, ctx: &Context<'_>) -> Result<Product> {
            let found = ctx
                .data::<Loaders>()?
                .load_one(ProductKey(self.0.product_id))
                .await
                .map_err(load_err)?;
            found
                .map(Product::of)
                .ok_or_else(|| Error::not_found("product").into())
        }
    }
}

pub struct ProductImage(pub product_image::Model);

plain_object! {
    /// An image of a product.
    impl ProductImage => product_image::Model as "ProductImage" {
        |this| &this.0;
        |r, e|
        /// Absolute http(s) URL of the image file, for an `<img src>`.
        url "url": &str = &r.url;
        /// Alternative text for screen readers.
        alt "alt": Option<&str> = r.alt.as_deref();
    }
    plain |s, field, out| {}
    resolvers {}
}

pub struct Brand(pub brand::Model);

plain_object! {
    /// A brand (品牌). Curated means few of them: at most a configured number of brands have
    /// published products in any one leaf category.
    impl Brand => brand::Model as "Brand" {
        |this| &this.0;
        |r, e|
        /// Opaque global ID.
        id "id": GlobalId = GlobalId(Kind::Brand, r.id);
        /// Brand name as shown on product cards (unique across the platform).
        name "name": &str = &r.name;
    }
    plain |s, field, out| {}
    resolvers {
        /// The merchant that owns the brand.
        async fn merchant(&self, ctx: &Context<'_>) -> Result<Merchant> {
            let found = ctx
                .data::<Loaders>()?
                .load_one(MerchantKey(self.0.merchant_id))
                .await
                .map_err(load_err)?;
            found.map(Merchant).ok_or_else(|| {
                Error::internal(anyhow::anyhow!("brand {} has no merchant", self.0.id)).into()
            })
        }
    }
}

pub struct Merchant(pub merchant::Model);

plain_object! {
    /// A supplier (商家) whose products the platform curates; the platform provides
    /// logistics, customer service and quality control (S2B2C).
    impl Merchant => merchant::Model as "Merchant" {
        |this| &this.0;
        |r, e|
        /// Opaque global ID.
        id "id": GlobalId = GlobalId(Kind::Merchant, r.id);
        /// The merchant's trading name.
        name "name": &str = &r.name;
    }
    plain |s, field, out| {}
    resolvers {
        /// ADMIN: the merchant's shipping rule; null when it has none (its parcels ship free).
        async fn shipping_rule(
            &self,
            ctx: &Context<'_>,
        ) -> Result<Option<super::shipping::ShippingRule>> {
            super::shipping::rule_of(ctx, self.0.id).await
        }
    }
}

pub struct Category(pub category::Model);

plain_object! {
    /// A category of the two-level tree: top-level categories have `children`, leaf
    /// categories a `parent`. Products are listed in leaf categories.
    impl Category => category::Model as "Category" {
        |this| &this.0;
        |r, e|
        /// Opaque global ID.
        id "id": GlobalId = GlobalId(Kind::Category, r.id);
        /// URL-friendly unique name, e.g. `home-bedding`.
        slug "slug": &str = &r.slug;
        /// Chinese name, e.g. 家居.
        name_zh "nameZh": &str = &r.name_zh;
        /// English name, e.g. Home.
        name_en "nameEn": &str = &r.name_en;
    }
    // A top-level category's `parent` needs no row.
    plain |s, field, out| {
        "parent" if s.parent_id.is_none() => out.null(),
    }
    resolvers {
        /// Null for a top-level category.
        async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Category>> {
            let Some(parent) = self.0.parent_id else {
                return Ok(None);
            };
            let found = ctx
                .data::<Loaders>()?
                .load_one(CategoryKey(parent))
                .await
                .map_err(load_err)?;
            Ok(found.map(Category))
        }
        /// Subcategories in display order; empty for a leaf.
        async fn children(&self, ctx: &Context<'_>) -> Result<Vec<Category>> {
            let found = ctx
                .data::<Loaders>()?
                .load_one(ChildrenOf(self.0.id))
                .await
                .map_err(load_err)?;
            Ok(found
                .unwrap_or_default()
                .into_iter()
                .map(Category)
                .collect())
        }
    }
}

/// Narrows the product listing; every given condition must hold.
#[derive(InputObject, Default)]
pub struct ProductFilter {
    /// A category's ID; a top-level category includes its subcategories.
    pub category_id: Option<ID>,
    /// A brand's ID.
    pub brand_id: Option<ID>,
    /// Case-insensitive substring of the product's Chinese or English name (≤ 100 characters).
    pub search: Option<String>,
    /// Only products with a SKU at this price or above (CNY).
    pub min_price: Option<Dec>,
    /// Only products with a SKU at this price or below (CNY). With `minPrice`, one SKU must
    /// lie in the range.
    pub max_price: Option<Dec>,
    /// Only membership-activity products (true) or only the others (false).
    pub membership_activity: Option<bool>,
}

fn money_arg(field: &'static str, value: Option<Dec>) -> Result<Option<entity::Money>, Error> {
    value
        .map(|d| {
            entity::Money::from_decimal(d.0)
                .ok_or_else(|| Error::validation(field, "at most 2 decimal places"))
        })
        .transpose()
}

impl ProductFilter {
    fn parse(self) -> Result<svc::ProductFilter, Error> {
        Ok(svc::ProductFilter {
            category_id: self
                .category_id
                .map(|id| ids::decode_as(&id, Kind::Category, "filter.categoryId"))
                .transpose()?,
            brand_id: self
                .brand_id
                .map(|id| ids::decode_as(&id, Kind::Brand, "filter.brandId"))
                .transpose()?,
            search: self.search,
            min_price: money_arg("filter.minPrice", self.min_price)?,
            max_price: money_arg("filter.maxPrice", self.max_price)?,
            membership_activity: self.membership_activity,
        })
    }
}

/// Orders of the product listing. Ties are broken by product ID, so every order is total and
/// pages never overlap.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProductSort {
    /// Most recently listed first (the default).
    #[default]
    Newest,
    /// Lowest price (cheapest SKU) first.
    PriceAsc,
    /// Highest price (by cheapest SKU) first.
    PriceDesc,
    /// Highest level-1 rebate rate first.
    RebateDesc,
    /// Best-selling first.
    SalesDesc,
}

impl From<ProductSort> for svc::ProductSort {
    fn from(s: ProductSort) -> Self {
        match s {
            ProductSort::Newest => svc::ProductSort::Newest,
            ProductSort::PriceAsc => svc::ProductSort::PriceAsc,
            ProductSort::PriceDesc => svc::ProductSort::PriceDesc,
            ProductSort::RebateDesc => svc::ProductSort::RebateDesc,
            ProductSort::SalesDesc => svc::ProductSort::SalesDesc,
        }
    }
}

/// Loads, for a whole page at once (or a product's detail), every relation the query asks of
/// its products — `selections` are where the products' fields are selected: a listing's
/// `edges { node }` and `nodes`, a detail's own field. One load per relation is one batch,
/// one statement, by construction; brands, merchants and categories come from memory once
/// read. The fields then find the rows in the returned [`PageRows`]. (Left to the resolvers
/// alone, batching depends on timing: a list of more than 32 items yields mid-way, and a
/// busy machine can let a batch fire with half its keys.) Without `lists`, the products'
/// SKUs, images and tags are left to the caller (a detail reads them with its product).
pub(crate) async fn prime(
    ctx: &Context<'_>,
    products: &[product::Model],
    selections: &[async_graphql::Lookahead<'_>],
    lists: bool,
) -> Result<PageRows> {
    use futures_util::future::OptionFuture;
    let wants = |path: &[&str]| {
        selections.iter().any(|f| {
            let Some((first, rest)) = path.split_first() else {
                return f.exists();
            };
            let mut f = f.field(first);
            for p in rest {
                f = f.field(p);
            }
            f.exists()
        })
    };
    // Loaded by the loader itself: the page knows every key at once, so the DataLoader's
    // batching, delay and request cache would only cost (a task, a timer and a hash per key).
    let direct = ctx.data::<Loaders>()?.loader();
    let ids: Vec<uuid::Uuid> = products.iter().map(|p| p.id).collect();
    let when = |path: &[&str]| wants(path).then_some(());
    let list = |path: &[&str]| (lists && wants(path)).then_some(());
    let (brands, categories, skus, images, tags, curation) = futures_util::join!(
        OptionFuture::from(
            when(&["brand"])
                .map(|_| load_now(direct, products.iter().map(|p| BrandKey(p.brand_id))))
        ),
        OptionFuture::from(
            when(&["category"])
                .map(|_| load_now(direct, products.iter().map(|p| CategoryKey(p.category_id))))
        ),
        OptionFuture::from(
            list(&["skus"]).map(|_| load_now(direct, ids.iter().map(|id| SkusOf(*id))))
        ),
        OptionFuture::from(
            list(&["images"]).map(|_| load_now(direct, ids.iter().map(|id| ImagesOf(*id))))
        ),
        OptionFuture::from(
            list(&["tags"]).map(|_| load_now(direct, ids.iter().map(|id| TagsOf(*id))))
        ),
        OptionFuture::from(
            when(&["curation"]).map(|_| load_now(direct, ids.iter().map(|id| CurationOf(*id))))
        ),
    );
    let brands = brands.transpose().map_err(load_err)?.unwrap_or_default();
    let mut categories = categories
        .transpose()
        .map_err(load_err)?
        .unwrap_or_default();
    let merchants = wants(&["brand", "merchant"])
        .then(|| load_now(direct, brands.values().map(|b| MerchantKey(b.merchant_id))));
    let parents = wants(&["category", "parent"]).then(|| {
        load_now(
            direct,
            categories
                .values()
                .filter_map(|c| c.parent_id.map(CategoryKey)),
        )
    });
    let (merchants, parents) =
        futures_util::join!(OptionFuture::from(merchants), OptionFuture::from(parents));
    categories.extend(parents.transpose().map_err(load_err)?.unwrap_or_default());
    // A product without images, tags or SKUs has none: an empty list, not a missing one.
    fn every<K: std::hash::Hash + Eq, V: Default>(
        map: Option<HashMap<K, V>>,
        ids: &[uuid::Uuid],
        key: impl Fn(uuid::Uuid) -> K,
    ) -> HashMap<K, V> {
        let Some(mut map) = map else {
            return HashMap::new();
        };
        for id in ids {
            map.entry(key(*id)).or_default();
        }
        map
    }
    Ok(PageRows {
        brands,
        categories,
        merchants: merchants.transpose().map_err(load_err)?.unwrap_or_default(),
        skus: every(skus.transpose().map_err(load_err)?, &ids, SkusOf),
        images: every(images.transpose().map_err(load_err)?, &ids, ImagesOf),
        tags: every(tags.transpose().map_err(load_err)?, &ids, TagsOf),
        curation: curation.transpose().map_err(load_err)?.unwrap_or_default(),
    })
}

/// Loads `keys` (repeats allowed) with the loader itself, in one batch.
pub(crate) async fn load_now<K, V>(
    loader: &CatalogLoader,
    keys: impl Iterator<Item = K>,
) -> Result<HashMap<K, V>, LoadError>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    V: Send + Sync + Clone + 'static,
    CatalogLoader: Loader<K, Value = V, Error = LoadError>,
{
    let keys: Vec<K> = keys
        .collect::<std::collections::HashSet<K>>()
        .into_iter()
        .collect();
    loader.load(&keys).await
}

/// A page of listed products, answered by [`plain`] as a whole when its selection allows
/// (or else each product when its selection allows).
pub type ProductConnection = ConnectionOf<svc::ProductCursor, Fast<Product>>;

impl crate::graphql::pagination::Listed for Product {
    const CONNECTION: &'static str = "ProductConnection";
    const EDGE: &'static str = "ProductEdge";
}

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// A published product by ID. Unknown IDs and unpublished products are `NOT_FOUND`;
    /// malformed IDs and IDs of other types are `VALIDATION`.
    // Answered like a listing's product: its related rows read together, one statement
    // each, and its fields without a future each when the selection allows.
    async fn product(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A `Product` ID (from `Product.id` or a share link's URL).")] id: ID,
    ) -> Result<Option<Fast<Product>>> {
        let id = ids::decode_as(&id, Kind::Product, "id")?;
        let la = ctx.look_ahead();
        let lists = svc::DetailLists {
            skus: la.field("skus").exists(),
            images: la.field("images").exists(),
            tags: la.field("tags").exists(),
        };
        // The product and its SKUs, images and tags in one statement; the rest as a page's.
        let detail = svc::visible_detail(&state(ctx)?.db, viewer(ctx)?, id, lists).await?;
        let row = detail.product;
        let mut rows = prime(ctx, std::slice::from_ref(&row), &[la], false).await?;
        if let Some(skus) = detail.skus {
            rows.skus.insert(SkusOf(id), skus);
        }
        if let Some(images) = detail.images {
            rows.images.insert(ImagesOf(id), images);
        }
        if let Some(tags) = detail.tags {
            rows.tags.insert(TagsOf(id), tags);
        }
        Ok(Some(Fast(Product(row, Some(Arc::new(rows))))))
    }

    /// Published products, a page at a time. `first` defaults to 20 and is capped at 100;
    /// pass the last edge's `cursor` (or `pageInfo.endCursor`) as `after` for the next page.
    /// Cursors are keyset positions: rows listed meanwhile are neither repeated nor skipped.
    async fn products(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Page size: at most this many edges (default 20, capped at 100; negative is \
                    `VALIDATION`)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "The previous page's last `cursor` (or `pageInfo.endCursor`) to continue after; \
                    omit for the first page. A malformed cursor or one from another list or order \
                    is `VALIDATION`."
        )]
        after: Option<String>,
        #[graphql(desc = "Narrows the listing; every condition given must hold. All \
                          published products when omitted.")]
        filter: Option<ProductFilter>,
        #[graphql(desc = "The order of the listing (default NEWEST). Keep it the same \
                          across the pages of one listing: a cursor belongs to its order.")]
        sort: Option<ProductSort>,
    ) -> Result<Fast<ProductConnection>> {
        // `first`, then the filter, then `after`: the first bad argument is the one named.
        let first = page_size(first)?;
        let sort: svc::ProductSort = sort.unwrap_or_default().into();
        let filter = filter.unwrap_or_default().parse()?;
        let args = PageArgs::sized(first, after)?;
        let page =
            svc::list_products(&state(ctx)?.db, &filter, sort, args.after(), args.first).await?;
        let la = ctx.look_ahead();
        let selections = [la.field("edges").field("node"), la.field("nodes")];
        let rows = Arc::new(prime(ctx, &page.items, &selections, true).await?);
        Ok(Fast(args.connection(
            page,
            |p| sort.cursor_of(p),
            |p| Fast(Product(p, Some(rows.clone()))),
        )))
    }

    /// The top-level categories in display order, each with its `children`.
    async fn categories(&self, ctx: &Context<'_>) -> Result<Vec<Category>> {
        let all = svc::all_categories(&state(ctx)?.db).await?;
        Ok(all
            .into_iter()
            .filter(|c| c.parent_id.is_none())
            .map(Category)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::Value;
    use async_graphql::connection::{CursorType, Edge, OpaqueCursor};
    use async_graphql::parser::parse_query;
    use async_graphql::parser::types::{DocumentOperations, SelectionSet};
    use entity::{Money, Rate};
    use uuid::Uuid;

    /// The selection set of `{ <selection> }`.
    fn selection(selection: &str) -> SelectionSet {
        let doc = parse_query(format!("{{ {selection} }}")).expect("query parses");
        match doc.operations {
            DocumentOperations::Single(op) => op.node.selection_set.node,
            DocumentOperations::Multiple(_) => unreachable!("one anonymous operation"),
        }
    }

    /// A listed product with its page's rows: a leaf category and two SKUs.
    fn listed() -> Product {
        let now = Utc::now();
        let p = product::Model {
            id: Uuid::now_v7(),
            merchant_id: Uuid::now_v7(),
            brand_id: Uuid::now_v7(),
            category_id: Uuid::now_v7(),
            name: "小米净水器".into(),
            name_en: None,
            description: Some("净水".into()),
            status: product::Status::Published,
            rebate_rate: Rate::from_bp(1500),
            team_rebate_rate: Rate::from_bp(500),
            membership_activity: false,
            min_price: Money::from_fen(1000),
            max_price: Money::from_fen(6000),
            sales_count: 7,
            created_at: now,
            updated_at: now,
            published_at: Some(now),
            stages_passed: 5,
            unpublished_reason: None,
        };
        let mut rows = PageRows::default();
        let brand = brand::Model {
            id: p.brand_id,
            merchant_id: p.merchant_id,
            name: "Brand 0".into(),
            created_at: now,
        };
        let category = category::Model {
            id: p.category_id,
            parent_id: Some(Uuid::now_v7()),
            slug: "leaf".into(),
            name_zh: "叶".into(),
            name_en: "Leaf".into(),
            position: 0,
            archived_at: None,
        };
        let skus = [1000, 6000]
            .into_iter()
            .enumerate()
            .map(|(i, fen)| sku::Model {
                id: Uuid::now_v7(),
                product_id: p.id,
                name: format!("SKU {i}"),
                price: Money::from_fen(fen),
                stock: 3,
                position: i as i32,
            })
            .collect();
        rows.brands.insert(BrandKey(p.brand_id), brand);
        rows.categories.insert(CategoryKey(p.category_id), category);
        rows.skus.insert(SkusOf(p.id), skus);
        rows.curation
            .insert(CurationOf(p.id), Arc::new(Summary::default()));
        Product(p, Some(Arc::new(rows)))
    }

    fn answer(p: &Product, sel: &str) -> Option<Value> {
        let set = selection(sel);
        let env = Env::new(&Viewer::Anonymous, 3);
        plain::answer(p, &env, &set)
    }

    /// The benchmark's whole page (edges, cursors, `pageInfo`) is answered plainly.
    #[test]
    fn a_whole_page_is_answered_without_resolvers() {
        let p = listed();
        let sort = svc::ProductSort::Newest;
        let cursor = sort.cursor_of(&p.0);
        let id = p.0.id;
        let mut page = ProductConnection::new(false, true);
        page.edges
            .push(Edge::new(OpaqueCursor(cursor.clone()), Fast(p)));
        let set = selection(
            "edges { node { id skus { price } } cursor } pageInfo { hasNextPage endCursor }",
        );
        let env = Env::new(&Viewer::Anonymous, 3);
        let got = plain::answer(&page, &env, &set)
            .expect("the page is plain")
            .into_json()
            .expect("json");
        assert_eq!(
            got["edges"][0]["node"]["id"],
            ids::encode(Kind::Product, id).0
        );
        assert_eq!(got["edges"][0]["node"]["skus"][1]["price"], "60.00");
        assert_eq!(got["pageInfo"]["hasNextPage"], true);
        let end = got["pageInfo"]["endCursor"].as_str().expect("a cursor");
        assert_eq!(got["edges"][0]["cursor"], end);
        let decoded = OpaqueCursor::<svc::ProductCursor>::decode_cursor(end).expect("decodes");
        assert_eq!(decoded.0, cursor);
        // A field the page cannot answer plainly sends the whole page to the resolvers.
        let set = selection("edges { node { images { url } } }");
        assert!(plain::answer(&page, &env, &set).is_none());
    }

    #[test]
    fn a_listing_page_is_answered_without_resolvers() {
        let p = listed();
        let bench = "id name minPrice brand { name } category { nameZh } skus { id price stock } \
                     curation { passed badges }";
        let got = answer(&p, bench)
            .expect("the benchmark's page is plain")
            .into_json()
            .expect("json");
        assert_eq!(got["id"], ids::encode(Kind::Product, p.0.id).0);
        assert_eq!(got["name"], "小米净水器");
        assert_eq!(got["minPrice"], "10.00");
        assert_eq!(got["brand"]["name"], "Brand 0");
        assert_eq!(got["category"]["nameZh"], "叶");
        assert_eq!(got["skus"][1]["price"], "60.00");
        assert_eq!(got["skus"][1]["stock"], 3);
        assert_eq!(got["curation"]["passed"], false);
        assert_eq!(got["curation"]["badges"], serde_json::json!([]));
        // The anonymous see no rates.
        let got = answer(
            &p,
            "rebateRate estimatedEarning unpublishedReason __typename",
        )
        .expect("plain")
        .into_json()
        .expect("json");
        assert_eq!(
            got,
            serde_json::json!({ "rebateRate": null, "estimatedEarning": null,
                                "unpublishedReason": null, "__typename": "Product" })
        );
    }

    #[test]
    fn anything_else_goes_to_the_resolvers() {
        let p = listed();
        for sel in [
            "id images { url }",
            "id tags",
            "brand { merchant { name } }",
            "category { parent { slug } }",
            "skus { product { id } }",
            "... on Product { id }",
            "name @include(if: true)",
            "name name",
            "a: name a: id",
        ] {
            assert_eq!(answer(&p, sel), None, "{sel}");
        }
        // The curation report travels with the product's row: its stages answer plain.
        let got = answer(&p, "curation { stages { stage } }")
            .expect("plain")
            .into_json()
            .expect("json");
        assert_eq!(got["curation"]["stages"].as_array().map(Vec::len), Some(5));
        // A product on its own has no page rows: its relations are loaded by the resolvers.
        let alone = Product::of(p.0.clone());
        assert!(answer(&alone, "id name salesCount").is_some());
        assert_eq!(answer(&alone, "brand { name }"), None);
    }
}
