//! Rows that never change once written — brands, merchants and categories: the code has no
//! path that updates or deletes them — kept in memory after their first read. A row read
//! once is right for the life of the process, on every instance, so no invalidation is
//! needed; the cache only saves the statements (a product page's brand and category, a
//! product's merchant and parent category).
//!
//! Each kind is a map behind a read-write lock, read once per batch: a page asks for 50
//! brands and 50 categories at a time, and a bounded cache's bookkeeping (moka's, before)
//! cost ~2,000 instructions a key, more than the rest of the look-up. There are few such rows
//! (a curated platform has hundreds of brands, not millions), so there is no eviction: once
//! a kind holds `capacity` rows, further ones are read from the database each time.

use std::collections::HashMap;
use std::sync::RwLock;

use entity::{brand, category, merchant};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::catalog;
use crate::error::Result;

pub struct ImmutableRows {
    brands: Kept<brand::Model>,
    merchants: Kept<merchant::Model>,
    categories: Kept<category::Model>,
}

impl ImmutableRows {
    /// Keeps at most `capacity` rows of each kind.
    pub fn new(capacity: usize) -> ImmutableRows {
        ImmutableRows {
            brands: Kept::new(capacity),
            merchants: Kept::new(capacity),
            categories: Kept::new(capacity),
        }
    }

    pub async fn brands(
        &self,
        db: &impl ConnectionTrait,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, brand::Model>> {
        let (mut found, missing) = self.brands.cached(ids);
        if !missing.is_empty() {
            let rows = catalog::brands_by_ids(db, &missing).await?;
            self.brands.remember(rows, &mut found);
        }
        Ok(found)
    }

    pub async fn merchants(
        &self,
        db: &impl ConnectionTrait,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, merchant::Model>> {
        let (mut found, missing) = self.merchants.cached(ids);
        if !missing.is_empty() {
            let rows = catalog::merchants_by_ids(db, &missing).await?;
            self.merchants.remember(rows, &mut found);
        }
        Ok(found)
    }

    pub async fn categories(
        &self,
        db: &impl ConnectionTrait,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, category::Model>> {
        let (mut found, missing) = self.categories.cached(ids);
        if !missing.is_empty() {
            let rows = catalog::categories_by_ids(db, &missing).await?;
            self.categories.remember(rows, &mut found);
        }
        Ok(found)
    }
}

/// The rows of one kind kept so far.
struct Kept<M> {
    rows: RwLock<HashMap<Uuid, M>>,
    capacity: usize,
}

impl<M: Clone> Kept<M> {
    fn new(capacity: usize) -> Kept<M> {
        Kept {
            rows: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// The kept rows of `ids`, and the ids not kept.
    fn cached(&self, ids: &[Uuid]) -> (HashMap<Uuid, M>, Vec<Uuid>) {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        // A panic elsewhere cannot leave a half-written map (inserts are whole), so a
        // poisoned lock's map is still right.
        let kept = self.rows.read().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            match kept.get(id) {
                Some(row) => {
                    found.insert(*id, row.clone());
                }
                None => missing.push(*id),
            }
        }
        (found, missing)
    }

    /// Keeps freshly read rows (while there is room) and adds them to `found`.
    fn remember(&self, rows: HashMap<Uuid, M>, found: &mut HashMap<Uuid, M>) {
        let mut kept = self.rows.write().unwrap_or_else(|e| e.into_inner());
        for (id, row) in rows {
            if kept.len() < self.capacity {
                kept.insert(id, row.clone());
            }
            found.insert(id, row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_kept_up_to_the_capacity() {
        let kept = Kept::new(2);
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let (found, missing) = kept.cached(&ids);
        assert!(found.is_empty());
        assert_eq!(missing, ids);

        let mut found = HashMap::new();
        kept.remember(
            ids.iter().map(|id| (*id, id.to_string())).collect(),
            &mut found,
        );
        assert_eq!(found.len(), 3, "every row read is returned");

        let (found, missing) = kept.cached(&ids);
        assert_eq!(found.len(), 2, "two are kept");
        assert_eq!(missing.len(), 1, "the third is read again");
        for (id, row) in found {
            assert_eq!(row, id.to_string());
        }
    }
}
