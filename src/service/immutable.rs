//! Brands, merchants and categories kept in memory after their first read: a product page
//! needs its brands, categories and merchants, and these rows change rarely (an admin renames
//! a category, reassigns a brand), so a page reads them from here instead of the database.
//!
//! Until #31 these rows were never updated, and a row once read stayed for the life of the
//! process. Now the catalog's management writes change them, so every such write publishes
//! [`Kind::CatalogRowChanged`] naming the row, after its commit: the instance that wrote
//! hears it as a [`Listener`] before the write answers, and every instance (itself included)
//! hears it again from the bus as an [`Observer`] — Redis pub/sub with several instances —
//! and drops the row; a resync (the bus reconnected: events may have been lost) drops them
//! all. A read that began before a drop does not put its older row back: each kind carries
//! a generation, moved by every drop, and a read keeps what it read only if the generation
//! is still the one it started under.
//!
//! An instance that hears the change from the bus may have answered from the old row in
//! between, and the response cache may have kept that answer under the catalog version the
//! writer had already moved (the versions are shared through Redis). So the observer tells
//! the response cache again once the rows are dropped ([`RowsObserver`]): an answer computed
//! meanwhile is stored under a version that is no longer current.
//!
//! Each kind is a map behind a read-write lock, read once per batch: a page asks for 50
//! brands and 50 categories at a time, and a bounded cache's bookkeeping (moka's, before)
//! cost ~2,000 instructions a key, more than the rest of the look-up. There are few such rows
//! (a curated platform has hundreds of brands, not millions), so there is no eviction: once
//! a kind holds `capacity` rows, further ones are read from the database each time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use entity::{brand, category, merchant};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::catalog;
use crate::error::Result;
use crate::events::{Event, Kind, Listener, Observer};

pub struct CatalogRows {
    brands: Kept<brand::Model>,
    merchants: Kept<merchant::Model>,
    categories: Kept<category::Model>,
}

impl CatalogRows {
    /// Keeps at most `capacity` rows of each kind.
    pub fn new(capacity: usize) -> CatalogRows {
        CatalogRows {
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
        let (mut found, missing, generation) = self.brands.cached(ids);
        if !missing.is_empty() {
            let rows = catalog::brands_by_ids(db, &missing).await?;
            self.brands.remember(rows, &mut found, generation);
        }
        Ok(found)
    }

    pub async fn merchants(
        &self,
        db: &impl ConnectionTrait,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, merchant::Model>> {
        let (mut found, missing, generation) = self.merchants.cached(ids);
        if !missing.is_empty() {
            let rows = catalog::merchants_by_ids(db, &missing).await?;
            self.merchants.remember(rows, &mut found, generation);
        }
        Ok(found)
    }

    pub async fn categories(
        &self,
        db: &impl ConnectionTrait,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, category::Model>> {
        let (mut found, missing, generation) = self.categories.cached(ids);
        if !missing.is_empty() {
            let rows = catalog::categories_by_ids(db, &missing).await?;
            self.categories.remember(rows, &mut found, generation);
        }
        Ok(found)
    }

    /// Drops the rows that `batch` says changed ([`Kind::CatalogRowChanged`]; ids are
    /// unique across the three tables, so each kind drops the id). Whether it named any.
    pub fn forget(&self, batch: &[Event]) -> bool {
        let mut any = false;
        for e in batch.iter().filter(|e| e.kind == Kind::CatalogRowChanged) {
            any = true;
            self.brands.forget(Some(e.subject));
            self.merchants.forget(Some(e.subject));
            self.categories.forget(Some(e.subject));
        }
        any
    }

    /// Drops every kept row (events may have been lost).
    pub fn forget_all(&self) {
        self.brands.forget(None);
        self.merchants.forget(None);
        self.categories.forget(None);
    }
}

/// The writing instance drops the rows before the write answers.
#[async_trait::async_trait]
impl Listener for CatalogRows {
    async fn published(&self, batch: &[Event]) {
        self.forget(batch);
    }
}

/// Hears the bus for the kept rows of this instance: drops the rows a batch names (every
/// instance's changes, with Redis), then tells `then` (the response cache) the batch again,
/// so that an answer computed from a dropped row in the meantime is not served.
pub struct RowsObserver {
    rows: Arc<CatalogRows>,
    then: Vec<Arc<dyn Listener>>,
}

impl RowsObserver {
    pub fn new(rows: Arc<CatalogRows>, then: Vec<Arc<dyn Listener>>) -> RowsObserver {
        RowsObserver { rows, then }
    }
}

impl Observer for RowsObserver {
    fn delivered(&self, batch: &[Event]) {
        if !self.rows.forget(batch) || self.then.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let batch: Vec<Event> = batch
            .iter()
            .filter(|e| e.kind == Kind::CatalogRowChanged)
            .copied()
            .collect();
        let then = self.then.clone();
        runtime.spawn(async move {
            for listener in then {
                listener.published(&batch).await;
            }
        });
    }

    fn resynced(&self) {
        self.rows.forget_all();
    }
}

/// The rows of one kind kept so far.
struct Kept<M> {
    rows: RwLock<Rows<M>>,
    capacity: usize,
}

struct Rows<M> {
    by_id: HashMap<Uuid, M>,
    /// Moved by every drop: rows read under an older one may be stale and are not kept.
    generation: u64,
}

impl<M: Clone> Kept<M> {
    fn new(capacity: usize) -> Kept<M> {
        Kept {
            rows: RwLock::new(Rows {
                by_id: HashMap::new(),
                generation: 0,
            }),
            capacity,
        }
    }

    /// The kept rows of `ids`, the ids not kept, and the generation they were looked up
    /// under (for [`Kept::remember`]).
    fn cached(&self, ids: &[Uuid]) -> (HashMap<Uuid, M>, Vec<Uuid>, u64) {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        // A panic elsewhere cannot leave a half-written map (inserts are whole), so a
        // poisoned lock's map is still right.
        let kept = self.rows.read().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            match kept.by_id.get(id) {
                Some(row) => {
                    found.insert(*id, row.clone());
                }
                None => missing.push(*id),
            }
        }
        (found, missing, kept.generation)
    }

    /// Keeps rows read from the database (while there is room, and unless a drop came
    /// since `generation`: they may predate it) and adds them to `found`.
    fn remember(&self, rows: HashMap<Uuid, M>, found: &mut HashMap<Uuid, M>, generation: u64) {
        let mut kept = self.rows.write().unwrap_or_else(|e| e.into_inner());
        let keep = kept.generation == generation;
        for (id, row) in rows {
            if keep && kept.by_id.len() < self.capacity {
                kept.by_id.insert(id, row.clone());
            }
            found.insert(id, row);
        }
    }

    /// Drops row `id`, or every row (`None`).
    fn forget(&self, id: Option<Uuid>) {
        let mut kept = self.rows.write().unwrap_or_else(|e| e.into_inner());
        kept.generation += 1;
        match id {
            Some(id) => {
                kept.by_id.remove(&id);
            }
            None => kept.by_id.clear(),
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
        let (found, missing, generation) = kept.cached(&ids);
        assert!(found.is_empty());
        assert_eq!(missing, ids);

        let mut found = HashMap::new();
        kept.remember(
            ids.iter().map(|id| (*id, id.to_string())).collect(),
            &mut found,
            generation,
        );
        assert_eq!(found.len(), 3, "every row read is returned");

        let (found, missing, _) = kept.cached(&ids);
        assert_eq!(found.len(), 2, "two are kept");
        assert_eq!(missing.len(), 1, "the third is read again");
        for (id, row) in found {
            assert_eq!(row, id.to_string());
        }
    }

    #[test]
    fn a_dropped_row_is_read_again_and_a_read_from_before_the_drop_is_not_kept() {
        let kept = Kept::new(10);
        let id = Uuid::now_v7();
        let (_, _, generation) = kept.cached(&[id]);
        let mut found = HashMap::new();
        kept.remember(HashMap::from([(id, "old")]), &mut found, generation);
        assert_eq!(kept.cached(&[id]).0.get(&id), Some(&"old"));

        // A read starts, the row changes and is dropped, then the read's row arrives.
        let (_, _, before) = kept.cached(&[Uuid::now_v7()]);
        kept.forget(Some(id));
        let (found, missing, _) = kept.cached(&[id]);
        assert!(found.is_empty() && missing == [id], "dropped");
        let mut found = HashMap::new();
        kept.remember(HashMap::from([(id, "old")]), &mut found, before);
        assert_eq!(
            found.get(&id),
            Some(&"old"),
            "the read still gets what it read"
        );
        assert!(kept.cached(&[id]).0.is_empty(), "but it is not kept");

        kept.forget(None);
        assert!(kept.cached(&[id]).0.is_empty());
    }
}
