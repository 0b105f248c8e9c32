//! Keyset pages: a page of rows plus whether more follow, and the newest-first listing that
//! orders, earnings, withdrawals and staff product lists share.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Select,
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
    let mut items = q
        .order_by_desc(created)
        .order_by_desc(id)
        .limit(first + 1)
        .all(db)
        .await?;
    let has_next = items.len() as u64 > first;
    items.truncate(first as usize);
    Ok(Page { items, has_next })
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
