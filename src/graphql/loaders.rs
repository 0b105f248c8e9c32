//! DataLoaders: every to-one and to-many field loads through one batched statement per
//! resolver tick, keyed by a newtype per relation. Loaders live for one request (no
//! cross-request staleness); the handler puts a fresh [`Loaders`] into each request.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::{brand, category, merchant, product, product_image, sku};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::error::Error;
use crate::service::catalog;
use crate::service::curation::{CurationStore, Summary};
use crate::service::immutable::CatalogRows;
use crate::state::AppState;

/// Loads catalog rows; one `Loader` impl per key type below.
pub struct CatalogLoader {
    db: DatabaseConnection,
    curation: Arc<CurationStore>,
    rows: Arc<CatalogRows>,
}

/// Per-request loaders with a per-request cache: the `products` resolver primes them for a
/// whole page (see `catalog::prime`), and field resolvers then read the cache. Shared
/// (`Arc`) so that a WebSocket connection's operations use one set.
pub type Loaders = Arc<DataLoader<CatalogLoader, HashMapCache>>;

/// A fresh set of loaders for one request.
pub fn for_request(state: &AppState) -> Loaders {
    Arc::new(DataLoader::with_cache(
        CatalogLoader {
            db: state.db.clone(),
            curation: state.curation.clone(),
            rows: state.rows.clone(),
        },
        tokio::spawn,
        HashMapCache::default(),
    ))
}

/// The quality passport of a product, through the cache: a page costs one cache round trip
/// and, for the misses, one statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CurationOf(pub Uuid);

impl Loader<CurationOf> for CatalogLoader {
    type Value = Arc<Summary>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CurationOf],
    ) -> Result<HashMap<CurationOf, Arc<Summary>>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = self
            .curation
            .load_many(&self.db, &ids)
            .await
            .map_err(Arc::new)?;
        Ok(rows
            .into_iter()
            .map(|(id, v)| (CurationOf(id), v))
            .collect())
    }
}

/// Errors are shared between every field waiting on the same batch, hence the `Arc`.
pub type LoadError = Arc<Error>;

/// A key type and its `Loader`: `|loader, ids| fetch` returns the rows of `ids` by id.
macro_rules! loader {
    ($(#[$doc:meta])* $key:ident => $value:ty, |$l:ident, $ids:ident| $fetch:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $key(pub Uuid);

        impl Loader<$key> for CatalogLoader {
            type Value = $value;
            type Error = LoadError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, $value>, LoadError> {
                let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
                let ($l, $ids) = (self, &ids[..]);
                let rows = $fetch.await.map_err(Arc::new)?;
                Ok(rows.into_iter().map(|(id, v)| ($key(id), v)).collect())
            }
        }
    };
}

loader!(/// A brand by id (kept in memory once read, until it changes: `service::immutable`).
    BrandKey => brand::Model, |l, ids| l.rows.brands(&l.db, ids));
loader!(/// A category by id (kept in memory once read, until it changes).
    CategoryKey => category::Model, |l, ids| l.rows.categories(&l.db, ids));
loader!(/// A merchant by id (kept in memory once read, until it changes).
    MerchantKey => merchant::Model, |l, ids| l.rows.merchants(&l.db, ids));
loader!(/// The SKUs of a product, in display order.
    SkusOf => Vec<sku::Model>, |l, ids| catalog::skus_by_product_ids(&l.db, ids));
loader!(/// The images of a product, in display order.
    ImagesOf => Vec<product_image::Model>, |l, ids| catalog::images_by_product_ids(&l.db, ids));
loader!(/// The tags of a product, in display order.
    TagsOf => Vec<String>, |l, ids| catalog::tags_by_product_ids(&l.db, ids));
loader!(/// The subcategories of a category, in display order.
    ChildrenOf => Vec<category::Model>, |l, ids| catalog::categories_by_parent_ids(&l.db, ids));
loader!(/// A SKU by id, of a product in any status (an order line's SKU).
    SkuKey => sku::Model, |l, ids| catalog::skus_by_ids(&l.db, ids));
loader!(/// A merchant's shipping rule, if it has one.
    ShippingRuleOf => crate::service::shipping::Rule, |l, ids| crate::service::shipping::rules_of(&l.db, ids.iter().copied()));
loader!(/// A product by id, in any status (resolvers apply the visibility rules).
    ProductKey => product::Model, |l, ids| catalog::products_by_ids(&l.db, ids));
loader!(/// The lines of an order, in id order.
    OrderLinesOf => Vec<entity::order_line::Model>, |l, ids| crate::service::fulfilment::lines_by_order_ids(&l.db, ids));
loader!(/// The parcels of an order, in the order they shipped.
    ShipmentsOf => Vec<crate::service::fulfilment::Shipment>, |l, ids| crate::service::fulfilment::shipments_by_order_ids(&l.db, ids));
loader!(/// The buyer's cancellation of an order, if it has one.
    CancellationOf => entity::order_cancellation::Model, |l, ids| crate::service::fulfilment::cancellations_by_order_ids(&l.db, ids));
loader!(/// A note's author (what the public sees of them).
    NoteAuthorKey => crate::service::notes::Author, |l, ids| crate::service::notes::authors_by_ids(&l.db, ids));
loader!(/// A member by id (staff lists: a withdrawal's member).
    MemberKey => entity::member::Model, |l, ids| crate::service::members::by_ids(&l.db, ids));
loader!(/// The enabled privilege rules of a level (its benefits).
    BenefitsOf => Vec<entity::privilege_rule::Model>, |l, ids| crate::service::privileges::rules_of_levels(&l.db, ids.iter().copied()));
loader!(/// The badges a member wears (its public profile).
    BadgesOf => Vec<crate::service::privileges::Badge>, |l, ids| crate::service::privileges::badges_of(&l.db, ids));
