//! Rows of the listing's hot reads (a page of products, their SKUs) decoded by column
//! position: SeaORM's derived decoder finds every column by its name, a hashed look-up per
//! value, ~30% of decoding a product row (callgrind: 12,400 → 8,700 instructions).
//!
//! [`ByPosition`] reads a select of all of a model's columns in declaration order, which is
//! what `Entity::find()` selects. The field lists below follow the entities' declarations;
//! `tests/api/catalog.rs` (`rows_by_position_match_rows_by_name`) decodes the same rows both
//! ways on each store, so a column added, removed or moved shows there.

use entity::{product, sku};
use sea_orm::{DbErr, FromQueryResult, QueryResult, TryGetable};

/// A model read by column position ([`Positional`]).
#[derive(Debug)]
pub struct ByPosition<M>(pub M);

/// A model that can be read from a row of all its columns, in declaration order.
pub trait Positional: Sized {
    fn read(row: &mut Columns<'_>) -> Result<Self, DbErr>;
}

/// A row's columns, taken in order.
pub struct Columns<'a> {
    row: &'a QueryResult,
    next: usize,
}

impl Columns<'_> {
    /// The next column's value.
    fn take<T: TryGetable>(&mut self) -> Result<T, DbErr> {
        let value = self.row.try_get_by_index(self.next);
        self.next += 1;
        value
    }
}

impl<M: Positional> FromQueryResult for ByPosition<M> {
    fn from_query_result(row: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        if !pre.is_empty() {
            // A prefix means a joined select, whose columns are not this model's alone.
            return Err(DbErr::Custom(format!(
                "a model read by position cannot be part of a joined select ({pre})"
            )));
        }
        M::read(&mut Columns { row, next: 0 }).map(ByPosition)
    }
}

impl Positional for product::Model {
    fn read(c: &mut Columns<'_>) -> Result<Self, DbErr> {
        // Struct fields are evaluated in the order written: the declaration order.
        Ok(Self {
            id: c.take()?,
            merchant_id: c.take()?,
            brand_id: c.take()?,
            category_id: c.take()?,
            name: c.take()?,
            name_en: c.take()?,
            description: c.take()?,
            status: c.take()?,
            rebate_rate: c.take()?,
            team_rebate_rate: c.take()?,
            membership_activity: c.take()?,
            min_price: c.take()?,
            max_price: c.take()?,
            sales_count: c.take()?,
            created_at: c.take()?,
            updated_at: c.take()?,
            published_at: c.take()?,
            stages_passed: c.take()?,
            unpublished_reason: c.take()?,
        })
    }
}

impl Positional for sku::Model {
    fn read(c: &mut Columns<'_>) -> Result<Self, DbErr> {
        Ok(Self {
            id: c.take()?,
            product_id: c.take()?,
            name: c.take()?,
            price: c.take()?,
            stock: c.take()?,
            position: c.take()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{IdenStatic, Iterable};

    use super::*;

    /// The decoders above list the fields in this order; `find()` selects the columns in
    /// `Column::iter()` order. (The integration test checks the values.)
    #[test]
    fn the_decoders_follow_the_column_order() {
        let names = |cols: Vec<String>| cols.join(",");
        assert_eq!(
            names(
                product::Column::iter()
                    .map(|c| c.as_str().to_owned())
                    .collect()
            ),
            "id,merchant_id,brand_id,category_id,name,name_en,description,status,rebate_rate,\
             team_rebate_rate,membership_activity,min_price,max_price,sales_count,created_at,\
             updated_at,published_at,stages_passed,unpublished_reason"
        );
        assert_eq!(
            names(sku::Column::iter().map(|c| c.as_str().to_owned()).collect()),
            "id,product_id,name,price,stock,position"
        );
    }
}
