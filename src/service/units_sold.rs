//! Units sold (`salesCount`), tallied in memory as payments commit and written to the
//! products together, once per interval.
//!
//! Why not in the payment: a product's `sales_count` is in its index for sorting by sales, so
//! every write of it is a new row version with new index entries (PostgreSQL cannot update
//! it in place), and a best-seller's row is written by every payment of it, one after the
//! other. Under the checkout benchmark (a flash sale of one SKU) that write was one of the
//! two statements every order queued for. Tallied here, the row is written once per
//! interval, whatever the rate of payments.
//!
//! The price: `salesCount` trails payments by up to one interval
//! (`PUSHHAND_UNITS_SOLD_INTERVAL_MS`), and a crash loses the units tallied since the last
//! write (a shutdown writes them first). Units sold are a display figure, not money; every
//! money move stays in its payment's transaction. A failed write keeps the tally for the
//! next one. Refunds take their units back the same way, once they commit. A write publishes
//! the products it moved ([`crate::events::Kind::CatalogChanged`]) once it commits.

use std::collections::BTreeMap;
use std::sync::Mutex;

use entity::product;
use sea_orm::sea_query::{Expr, ExprTrait, UpdateStatement};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryTrait};
use uuid::Uuid;

use super::batch::Batch;
use crate::error::Result;
use crate::events::{Event, Events};

/// Units sold not yet written, per product.
#[derive(Debug, Default)]
pub struct UnitsSold {
    pending: Mutex<BTreeMap<Uuid, i64>>,
}

impl UnitsSold {
    /// Counts `units` more sold of `product` (negative to take some back).
    pub fn add(&self, product: Uuid, units: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending.entry(product).or_default() += units;
    }

    /// Writes the tally: every product it moved, in one statement on PostgreSQL (in key
    /// order, so two instances writing at once cannot deadlock), one write transaction
    /// elsewhere, then publishes those products. Returns whether any product changed. On
    /// failure the tally is kept, added to whatever comes in meanwhile.
    pub async fn write(&self, db: &DatabaseConnection, events: &Events) -> Result<bool> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let mut batch = Batch::default();
        let mut moved = Vec::new();
        for (product, units) in &taken {
            if *units != 0 {
                batch.push(add_sales(*product, *units));
                moved.push(*product);
            }
        }
        if batch.is_empty() {
            return Ok(false);
        }
        if let Err(e) = batch.run_alone(db).await {
            for (product, units) in taken {
                self.add(product, units);
            }
            return Err(e.into());
        }
        events.publish(Event::catalog_of(moved)).await;
        Ok(true)
    }

    /// Units tallied for `product` and not yet written.
    #[cfg(test)]
    fn pending(&self, product: Uuid) -> i64 {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.get(&product).copied().unwrap_or_default()
    }
}

/// Adds `units` (negative for refunds) to a product's units sold (`salesCount`).
fn add_sales(product_id: Uuid, units: i64) -> UpdateStatement {
    product::Entity::update_many()
        .col_expr(
            product::Column::SalesCount,
            Expr::col(product::Column::SalesCount).add(units),
        )
        .filter(product::Column::Id.eq(product_id))
        .into_query()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_summed_per_product() {
        let sold = UnitsSold::default();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        sold.add(a, 3);
        sold.add(b, 1);
        sold.add(a, 2);
        sold.add(b, -1);
        assert_eq!(sold.pending(a), 5);
        assert_eq!(sold.pending(b), 0);
    }
}
