//! Keyset pages: a page of rows plus whether more follow, and the newest-first listing that
//! orders, earnings, withdrawals and staff product lists share.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QueryTrait, Select, SelectModel, SelectorRaw, Statement,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Result;

/// One page of a listing.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next: bool,
}

impl<T> Page<T> {
    /// The first `first` of the rows [`rows_of_page`] read; a next page exists when it read more.
    pub fn of(mut items: Vec<T>, first: u64) -> Page<T> {
        let has_next = items.len() as u64 > first;
        items.truncate(first as usize);
        Page { items, has_next }
    }
}

/// The rows of one keyset page of `q`, already filtered and ordered: `first` and at least one
/// more, which tells [`Page::of`] whether a next page exists. The `LIMIT` is written into the
/// text as [`written_limit`]`(first) + 1` rather than bound, so a listing has at most four
/// texts and PostgreSQL keeps one generic plan for each.
///
/// Bound (`LIMIT $n`, what `QuerySelect::limit` writes), PostgreSQL's generic plan cannot know
/// the limit, never looks cheaper than a custom plan, and every run is planned again: the HOT
/// feed's notes statement was planned on 7,713 of 7,714 runs under S13 (814 ms of planning
/// against 853 ms of execution; docs/performance.md, "Session of 2026-12-06 (3)").
pub fn rows_of_page<E: EntityTrait>(
    backend: DbBackend,
    q: Select<E>,
    first: u64,
) -> SelectorRaw<SelectModel<E::Model>> {
    rows_of_page_as::<E::Model, E>(backend, q, first)
}

/// [`rows_of_page`] read as `M` (a select with other columns than `E`'s, such as a join).
pub fn rows_of_page_as<M: FromQueryResult, E: EntityTrait>(
    backend: DbBackend,
    q: Select<E>,
    first: u64,
) -> SelectorRaw<SelectModel<M>> {
    let built = q.build(backend);
    M::find_by_statement(Statement {
        sql: format!("{} LIMIT {}", built.sql, written_limit(first) + 1),
        ..built
    })
}

/// A `LIMIT` written into a statement's text: `first` rounded up to 10, 20, 50 or 100 (the
/// caller drops the rows past `first`), so that there are at most four texts; beyond 100,
/// `first` itself.
///
/// As a parameter, PostgreSQL planned such statements again on every run: its generic plan
/// cannot know the limit, so it never looked cheaper than the custom one. For the top 100 of
/// a million members' board, planning cost as much as running (0.28–0.30 ms against
/// 0.29–0.31 ms, `EXPLAIN ANALYZE` of the prepared statement); with the limit in the text,
/// the generic plan is the same nested loop, kept after five runs, and a run plans in 0.02 ms
/// (docs/performance.md, "Session of 2026-12-06 (2)").
pub fn written_limit(first: u64) -> u64 {
    [10, 20, 50, 100]
        .into_iter()
        .find(|&n| n >= first)
        .unwrap_or(first)
}

/// Position after the last row of a newest-first page: its creation time and id (the
/// tie-breaker). Rows inserted meanwhile are neither repeated nor skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewestCursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl NewestCursor {
    /// The position just after the row created at `created_at` with id `id`.
    pub fn of(created_at: DateTime<Utc>, id: Uuid) -> NewestCursor {
        NewestCursor { created_at, id }
    }
}

/// `first` rows of `q`, newest first by (`created`, `id`), after `after`.
pub async fn newest_first<E: EntityTrait>(
    db: &impl ConnectionTrait,
    q: Select<E>,
    created: E::Column,
    id: E::Column,
    after: Option<&NewestCursor>,
    first: u64,
) -> Result<Page<E::Model>> {
    let mut q = q;
    if let Some(c) = after {
        q = q.filter(
            Condition::any().add(created.lt(c.created_at)).add(
                Condition::all()
                    .add(created.eq(c.created_at))
                    .add(id.lt(c.id)),
            ),
        );
    }
    let q = q.order_by_desc(created).order_by_desc(id);
    let items = rows_of_page(db.get_database_backend(), q, first)
        .all(db)
        .await?;
    Ok(Page::of(items, first))
}

/// How many rows `q` matches — a work list's `totalCount`, the cursor playing no part — or
/// `None` without a statement when it is not `wanted`.
pub async fn total<E>(db: &impl ConnectionTrait, q: Select<E>, wanted: bool) -> Result<Option<u64>>
where
    E: EntityTrait,
    E::Model: Sync,
{
    use sea_orm::PaginatorTrait;
    if !wanted {
        return Ok(None);
    }
    Ok(Some(q.count(db).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::note;

    #[test]
    fn the_written_limit_is_one_of_four_sizes_never_below_first() {
        let sizes: std::collections::BTreeSet<u64> = (1..=100).map(written_limit).collect();
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![10, 20, 50, 100]);
        for first in 1..=100 {
            let limit = written_limit(first);
            assert!(limit >= first, "{first} → {limit}");
        }
        assert_eq!(written_limit(10), 10);
        assert_eq!(written_limit(11), 20);
        assert_eq!(written_limit(51), 100);
        assert_eq!(written_limit(250), 250);
    }

    #[test]
    fn a_page_reads_its_limit_from_the_text_and_one_more_row() {
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let q = note::Entity::find()
                .filter(note::Column::Id.eq(Uuid::nil()))
                .order_by_desc(note::Column::Id);
            let bound = q.build(backend).values.map_or(0, |v| v.0.len());
            let stmt = rows_of_page(backend, q, 20).into_statement();
            assert!(stmt.sql.ends_with(" LIMIT 21"), "{}", stmt.sql);
            // The filter's value is the only one bound: the limit is not a parameter.
            assert_eq!(stmt.values.map_or(0, |v| v.0.len()), bound);
        }
    }

    #[test]
    fn a_page_keeps_first_rows_and_says_whether_more_were_read() {
        let p = Page::of((0..21).collect::<Vec<u32>>(), 20);
        assert_eq!((p.items.len(), p.has_next), (20, true));
        let p = Page::of((0..20).collect::<Vec<u32>>(), 20);
        assert_eq!((p.items.len(), p.has_next), (20, false));
        let p = Page::of((0..3).collect::<Vec<u32>>(), 2);
        assert_eq!((p.items, p.has_next), (vec![0, 1], true));
    }
}
