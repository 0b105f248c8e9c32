//! Rows that never change once written — brands, merchants and categories: the code has no
//! path that updates or deletes them — kept in memory after their first read. A row read
//! once is right for the life of the process, on every instance, so no invalidation is
//! needed; the cache only saves the statements (a product page's brand and category, a
//! product's merchant and parent category).

use std::collections::HashMap;

use entity::{brand, category, merchant};
use moka::future::Cache;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::catalog;
use crate::error::Result;

pub struct ImmutableRows {
    brands: Cache<Uuid, brand::Model>,
    merchants: Cache<Uuid, merchant::Model>,
    categories: Cache<Uuid, category::Model>,
}

impl ImmutableRows {
    /// Keeps at most `capacity` rows of each kind (least recently used go first).
    pub fn new(capacity: u64) -> ImmutableRows {
        ImmutableRows {
            brands: Cache::new(capacity),
            merchants: Cache::new(capacity),
            categories: Cache::new(capacity),
        }
    }

    pub async fn brands(
        &self,
        db: &impl ConnectionTrait,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, brand::Model>> {
        let (mut found, missing) = cached(&self.brands, ids).await;
        if !missing.is_empty() {
            let rows = catalog::brands_by_ids(db, &missing).await?;
            remember(&self.brands, rows, &mut found).await;
        }
        Ok(found)
    }

    pub async fn merchants(
        &self,
        db: &impl ConnectionTrait,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, merchant::Model>> {
        let (mut found, missing) = cached(&self.merchants, ids).await;
        if !missing.is_empty() {
            let rows = catalog::merchants_by_ids(db, &missing).await?;
            remember(&self.merchants, rows, &mut found).await;
        }
        Ok(found)
    }

    pub async fn categories(
        &self,
        db: &impl ConnectionTrait,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, category::Model>> {
        let (mut found, missing) = cached(&self.categories, ids).await;
        if !missing.is_empty() {
            let rows = catalog::categories_by_ids(db, &missing).await?;
            remember(&self.categories, rows, &mut found).await;
        }
        Ok(found)
    }
}

/// The cached rows of `ids`, and the ids not cached.
async fn cached<M: Clone + Send + Sync + 'static>(
    cache: &Cache<Uuid, M>,
    ids: &[Uuid],
) -> (HashMap<Uuid, M>, Vec<Uuid>) {
    let mut found = HashMap::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in ids {
        match cache.get(id).await {
            Some(row) => {
                found.insert(*id, row);
            }
            None => missing.push(*id),
        }
    }
    (found, missing)
}

/// Keeps freshly loaded rows and adds them to `found`.
async fn remember<M: Clone + Send + Sync + 'static>(
    cache: &Cache<Uuid, M>,
    rows: HashMap<Uuid, M>,
    found: &mut HashMap<Uuid, M>,
) {
    for (id, row) in rows {
        cache.insert(id, row.clone()).await;
        found.insert(id, row);
    }
}
