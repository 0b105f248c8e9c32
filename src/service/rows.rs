//! Rows of the listing's hot reads (a page of products, their SKUs) decoded by column
//! position: SeaORM's derived decoder finds every column by its name, a hashed look-up per
//! value, ~30% of decoding a product row (callgrind: 12,400 → 8,700 instructions). The
//! values are decoded by sqlx from the row SeaORM returns: SeaORM checks each value's type
//! and then has sqlx check it again, over a third of what was left on PostgreSQL
//! (callgrind on PostgreSQL: a product row ~9,700 → ~6,100 instructions, a SKU row ~2,300 →
//! ~1,300).
//!
//! [`ByPosition`] reads a select of all of a model's columns in declaration order, which is
//! what `Entity::find()` selects; a tuple of models reads a join whose columns are the first
//! model's, then the second's (and third's), each in declaration order — the checkout's SKUs
//! with their products and cart lines with both, whose SeaORM decoding (`SelectTwo`,
//! `SelectThree`: a column name formatted with its prefix for every value) was about a
//! quarter of a checkout preview's work on the server (callgrind on PostgreSQL, S8: ~2.0M
//! instructions a preview, ~0.3M of them decoding 5 joined rows). The field lists below follow the entities' declarations;
//! `tests/api/catalog.rs` (`rows_by_position_match_rows_by_name`) decodes the same rows both
//! ways on each store, so a column added, removed or moved shows there.

use entity::{
    Money, Rate, address, cart_line, member, note, product, product_image, shipping_rule, sku,
};
use sea_orm::sqlx::postgres::PgRow;
use sea_orm::sqlx::sqlite::SqliteRow;
use sea_orm::sqlx::{self, Decode, Postgres, Row, Sqlite, Type};
use sea_orm::{ActiveEnum, DbErr, FromQueryResult, QueryResult, TryGetable};

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
    /// The next column's value, decoded by sqlx without a check of its type (through
    /// SeaORM on any other kind of row). The types are the entities' own, and
    /// `rows_by_position_match_rows_by_name` decodes every column both ways on each store;
    /// a value of another type or width fails to decode (sqlx's decoders of the types read
    /// here check lengths), except a boolean, which [`Columns::flag`] reads checked.
    fn take<T>(&mut self) -> Result<T, DbErr>
    where
        T: TryGetable
            + Type<Postgres>
            + for<'r> Decode<'r, Postgres>
            + Type<Sqlite>
            + for<'r> Decode<'r, Sqlite>,
    {
        self.next_by(
            |row, i| row.try_get_unchecked(i),
            |row, i| row.try_get_unchecked(i),
        )
    }

    /// The next column's boolean, its type checked (PostgreSQL's decoder reads a byte it
    /// does not check is there).
    fn flag(&mut self) -> Result<bool, DbErr> {
        self.next_by(|row, i| row.try_get(i), |row, i| row.try_get(i))
    }

    /// The next column's value, read by `pg` or `sqlite` from the row sqlx returned.
    fn next_by<T: TryGetable>(
        &mut self,
        pg: impl FnOnce(&PgRow, usize) -> Result<T, sqlx::Error>,
        sqlite: impl FnOnce(&SqliteRow, usize) -> Result<T, sqlx::Error>,
    ) -> Result<T, DbErr> {
        let i = self.next;
        self.next += 1;
        let decoded = if let Some(row) = self.row.try_as_pg_row() {
            pg(row, i)
        } else if let Some(row) = self.row.try_as_sqlite_row() {
            sqlite(row, i)
        } else {
            return self.row.try_get_by_index(i);
        };
        decoded.map_err(|e| DbErr::Type(format!("column {i}: {e}")))
    }

    /// The next column as text (null: None).
    pub fn text(&mut self) -> Result<Option<String>, DbErr> {
        self.take()
    }

    fn money(&mut self) -> Result<Money, DbErr> {
        self.take().map(Money::from_fen)
    }

    fn rate(&mut self) -> Result<Rate, DbErr> {
        self.take().map(Rate::from_bp)
    }
}

/// A model read by position from the first columns of `row` (a select of its columns
/// followed by others), and the columns after them.
pub fn leading<M: Positional>(row: &QueryResult) -> Result<(M, Columns<'_>), DbErr> {
    let mut columns = Columns { row, next: 0 };
    let model = M::read(&mut columns)?;
    Ok((model, columns))
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
            status: product::Status::try_from_value(&c.take()?)?,
            rebate_rate: c.rate()?,
            team_rebate_rate: c.rate()?,
            membership_activity: c.flag()?,
            min_price: c.money()?,
            max_price: c.money()?,
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
            price: c.money()?,
            stock: c.take()?,
            position: c.take()?,
        })
    }
}

impl Positional for product_image::Model {
    fn read(c: &mut Columns<'_>) -> Result<Self, DbErr> {
        Ok(Self {
            id: c.take()?,
            product_id: c.take()?,
            url: c.take()?,
            alt: c.take()?,
            position: c.take()?,
        })
    }
}

impl Positional for cart_line::Model {
    fn read(c: &mut Columns<'_>) -> Result<Self, DbErr> {
        Ok(Self {
            id: c.take()?,
            member_id: c.take()?,
            sku_id: c.take()?,
            quantity: c.take()?,
            share_code: c.take()?,
            unit_price: c.money()?,
            created_at: c.take()?,
            updated_at: c.take()?,
        })
    }
}

impl Positional for address::Model {
    fn read(c: &mut Columns<'_>) -> Result<Self, DbErr> {
        Ok(Self {
            id: c.take()?,
            member_id: c.take()?,
            recipient_name: c.take()?,
            phone: c.take()?,
            province_code: c.take()?,
            province_name: c.take()?,
            city_code: c.take()?,
            city_name: c.take()?,
            district_code: c.take()?,
            district_name: c.take()?,
            detail: c.take()?,
            postal_code: c.take()?,
            is_default: c.flag()?,
            created_at: c.take()?,
            updated_at: c.take()?,
        })
    }
}

impl Positional for shipping_rule::Model {
    fn read(c: &mut Columns<'_>) -> Result<Self, DbErr> {
        Ok(Self {
            merchant_id: c.take()?,
            base_fee: c.money()?,
            free_threshold: c.take::<Option<i64>>()?.map(Money::from_fen),
            created_at: c.take()?,
            updated_at: c.take()?,
            updated_by: c.take()?,
        })
    }
}

impl Positional for note::Model {
    fn read(c: &mut Columns<'_>) -> Result<Self, DbErr> {
        Ok(Self {
            id: c.take()?,
            author_id: c.take()?,
            title: c.take()?,
            body: c.take()?,
            image_urls: c.take()?,
            product_ids: c.take()?,
            status: note::Status::try_from_value(&c.take()?)?,
            review_reason: c.take()?,
            published_title: c.take()?,
            published_body: c.take()?,
            published_image_urls: c.take()?,
            first_published_at: c.take()?,
            published_at: c.take()?,
            hidden_at: c.take()?,
            is_public: c.flag()?,
            report_count: c.take()?,
            like_count: c.take()?,
            hot_rank: c.take()?,
            created_at: c.take()?,
            updated_at: c.take()?,
            share_code: c.take()?,
            published_product_ids: c.take()?,
        })
    }
}

/// A note's author: `members`' `id`, `display_name` and `tier`, in that order (the notes
/// service selects them as its `AUTHOR_COLUMNS`).
impl Positional for crate::service::notes::Author {
    fn read(c: &mut Columns<'_>) -> Result<Self, DbErr> {
        Ok(Self {
            id: c.take()?,
            display_name: c.take()?,
            tier: member::Tier::try_from_value(&c.take()?)?,
        })
    }
}

impl Columns<'_> {
    /// A model of `width` columns from a left join, whose first column (its key, never
    /// null in a row that is there) is null when the join found nothing: `None`, its
    /// columns passed over.
    pub fn optional<M: Positional>(&mut self, width: usize) -> Result<Option<M>, DbErr> {
        let key: Option<uuid::Uuid> = self.take()?;
        if key.is_none() {
            self.next += width - 1;
            return Ok(None);
        }
        self.next -= 1;
        M::read(self).map(Some)
    }

    /// The next column as a sum of money that may be null.
    pub fn optional_money(&mut self) -> Result<Option<Money>, DbErr> {
        Ok(self.take::<Option<i64>>()?.map(Money::from_fen))
    }
}

/// A joined row of two models: `A`'s columns, then `B`'s (select `A::find()`, then
/// `.columns(B's Column::iter())` over an inner join).
impl<A: Positional, B: Positional> Positional for (A, B) {
    fn read(c: &mut Columns<'_>) -> Result<Self, DbErr> {
        Ok((A::read(c)?, B::read(c)?))
    }
}

/// A joined row of three models, in that order.
impl<A: Positional, B: Positional, C: Positional> Positional for (A, B, C) {
    fn read(c: &mut Columns<'_>) -> Result<Self, DbErr> {
        Ok((A::read(c)?, B::read(c)?, C::read(c)?))
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
        assert_eq!(
            names(
                cart_line::Column::iter()
                    .map(|c| c.as_str().to_owned())
                    .collect()
            ),
            "id,member_id,sku_id,quantity,share_code,unit_price,created_at,updated_at"
        );
        assert_eq!(
            names(
                address::Column::iter()
                    .map(|c| c.as_str().to_owned())
                    .collect()
            ),
            "id,member_id,recipient_name,phone,province_code,province_name,city_code,city_name,\
             district_code,district_name,detail,postal_code,is_default,created_at,updated_at"
        );
        assert_eq!(
            names(
                shipping_rule::Column::iter()
                    .map(|c| c.as_str().to_owned())
                    .collect()
            ),
            "merchant_id,base_fee,free_threshold,created_at,updated_at,updated_by"
        );
    }
}
