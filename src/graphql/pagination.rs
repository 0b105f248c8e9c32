//! Relay connections, one way for every `…Connection` field: [`PageArgs`] reads `first` and
//! `after` (the page size, its cap and the errors of bad arguments are the same everywhere),
//! the service answers a keyset [`Page`] of rows, and [`PageArgs::connection`] turns it into
//! the connection, one edge per row with the cursor just after that row.
//!
//! Cursors are opaque to clients: the service's position type as JSON, base64url-encoded
//! ([`OpaqueCursor`]). A cursor that does not decode to the listing's position type is
//! `VALIDATION` on `after`.

use async_graphql::connection::{
    Connection, ConnectionNameType, CursorType, DefaultConnectionName, DefaultEdgeName, Edge,
    EdgeNameType, EmptyFields, OpaqueCursor,
};
use async_graphql::{OutputType, SimpleObject};
use serde::Serialize;
use serde::de::DeserializeOwned;

use async_graphql::parser::types::Field;

use crate::error::Error;
use crate::graphql::transport::plain::{self, Env, Fast, Json, Plain};
use crate::service::page::Page;

/// Page size when `first` is not given.
pub const DEFAULT_PAGE: i32 = 20;
/// Largest page: a larger `first` is reduced to this.
pub const MAX_PAGE: i32 = 100;

/// Reads `first`: default 20, at most 100, never negative.
pub fn page_size(first: Option<i32>) -> Result<u64, Error> {
    match first.unwrap_or(DEFAULT_PAGE) {
        n if n < 0 => Err(Error::validation("first", "must not be negative")),
        n => Ok(n.min(MAX_PAGE) as u64),
    }
}

/// A page as asked for: how many rows, and the position (of type `C`, the service's cursor)
/// the page starts after.
#[derive(Debug)]
pub struct PageArgs<C> {
    pub first: u64,
    pub after: Option<C>,
}

/// The connection of a listing whose positions are `C` and whose nodes are `N` (named
/// `Name`/`EdgeName` when the default names, from `N`'s, would clash).
pub type ConnectionOf<C, N, Name = DefaultConnectionName, EdgeName = DefaultEdgeName> =
    Connection<OpaqueCursor<C>, N, EmptyFields, EmptyFields, Name, EdgeName>;

/// The connection of a staff work list: [`ConnectionOf`] with `totalCount` beside the
/// edges.
pub type CountedOf<C, N, Name = DefaultConnectionName, EdgeName = DefaultEdgeName> =
    Connection<OpaqueCursor<C>, N, Total, EmptyFields, Name, EdgeName>;

/// The fields a counted connection adds to its edges.
#[derive(SimpleObject)]
pub struct Total {
    /// How many rows the list's filters match, across every page (not only this one; the
    /// cursor plays no part). Counted by one statement, and only when asked for.
    pub total_count: u64,
}

/// Whether the field being resolved selects `totalCount` (a count is a statement: it runs
/// only when asked for).
pub fn wants_total(ctx: &async_graphql::Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

impl<C: Serialize + DeserializeOwned + Send + Sync> PageArgs<C> {
    /// Reads `first` ([`page_size`]), then `after`.
    pub fn parse(first: Option<i32>, after: Option<String>) -> Result<PageArgs<C>, Error> {
        PageArgs::sized(page_size(first)?, after)
    }

    /// Reads `after` for a page of `first` rows already read by [`page_size`] (for a field
    /// that checks its other arguments between the two).
    pub fn sized(first: u64, after: Option<String>) -> Result<PageArgs<C>, Error> {
        let after = after
            .map(|c| {
                OpaqueCursor::<C>::decode_cursor(&c)
                    .map(|c| c.0)
                    .map_err(|_| Error::validation("after", "not a valid cursor"))
            })
            .transpose()?;
        Ok(PageArgs { first, after })
    }

    /// The position to start after, as the services take it.
    pub fn after(&self) -> Option<&C> {
        self.after.as_ref()
    }

    /// The connection of `page`: an edge per row, in order, whose cursor is `cursor(row)` and
    /// whose node is `node(row)`; a previous page exists when the page started after a
    /// cursor, a next one when the service said so.
    pub fn connection<T, N, Name, EdgeName>(
        &self,
        page: Page<T>,
        cursor: impl Fn(&T) -> C,
        mut node: impl FnMut(T) -> N,
    ) -> ConnectionOf<C, N, Name, EdgeName>
    where
        N: OutputType,
        Name: ConnectionNameType,
        EdgeName: EdgeNameType,
    {
        let mut conn = Connection::new(self.after.is_some(), page.has_next);
        conn.edges.extend(page.items.into_iter().map(|row| {
            let at = OpaqueCursor(cursor(&row));
            Edge::new(at, node(row))
        }));
        conn
    }

    /// As [`PageArgs::connection`], with `total` as the connection's `totalCount` (`None`
    /// when it was not asked for: [`wants_total`]).
    pub fn counted<T, N, Name, EdgeName>(
        &self,
        page: Page<T>,
        total: Option<u64>,
        cursor: impl Fn(&T) -> C,
        mut node: impl FnMut(T) -> N,
    ) -> CountedOf<C, N, Name, EdgeName>
    where
        N: OutputType,
        Name: ConnectionNameType,
        EdgeName: EdgeNameType,
    {
        let mut conn = Connection::with_additional_fields(
            self.after.is_some(),
            page.has_next,
            Total {
                total_count: total.unwrap_or(0),
            },
        );
        conn.edges.extend(page.items.into_iter().map(|row| {
            let at = OpaqueCursor(cursor(&row));
            Edge::new(at, node(row))
        }));
        conn
    }
}

/// A type listed in plain connections ([`ConnectionOf`] of [`Fast`] nodes, named by
/// async-graphql's defaults): the names of its connection and edge types, the answers to
/// their `__typename`.
pub trait Listed: Plain {
    const CONNECTION: &'static str;
    const EDGE: &'static str;
}

/// A page's `edges`, `nodes` and `pageInfo`, answered plainly when its nodes' selection is
/// (see [`crate::graphql::transport::plain`]): a whole page without a future per field.
impl<C, T> Plain for ConnectionOf<C, Fast<T>>
where
    C: Serialize + DeserializeOwned + Send + Sync,
    T: Listed + OutputType,
{
    const TYPE: &'static str = T::CONNECTION;

    fn field<'a>(&self, env: &Env<'a>, field: &'a Field, out: &mut Json) -> Option<()> {
        let set = &field.selection_set.node;
        match field.name.node.as_str() {
            "edges" => plain::list(&self.edges, env, set, out),
            "nodes" => plain::list(self.edges.iter().map(|e| &e.node.0), env, set, out),
            "pageInfo" => plain::object(&PageOf(self), env, set, out),
            _ => None,
        }
    }
}

impl<C, T> Plain for Edge<OpaqueCursor<C>, Fast<T>, EmptyFields>
where
    C: Serialize + DeserializeOwned + Send + Sync,
    T: Listed + OutputType,
{
    const TYPE: &'static str = T::EDGE;

    fn field<'a>(&self, env: &Env<'a>, field: &'a Field, out: &mut Json) -> Option<()> {
        match field.name.node.as_str() {
            "cursor" => out.str(&self.cursor.encode_cursor()),
            "node" => plain::object(&self.node.0, env, &field.selection_set.node, out)?,
            _ => return None,
        }
        Some(())
    }
}

/// A plain page's `pageInfo`.
struct PageOf<'p, C, T>(&'p ConnectionOf<C, Fast<T>>)
where
    C: Serialize + DeserializeOwned + Send + Sync,
    T: Listed + OutputType;

impl<C, T> Plain for PageOf<'_, C, T>
where
    C: Serialize + DeserializeOwned + Send + Sync,
    T: Listed + OutputType,
{
    const TYPE: &'static str = "PageInfo";

    fn field<'a>(&self, _: &Env<'a>, field: &'a Field, out: &mut Json) -> Option<()> {
        let page = self.0;
        let mut cursor = |e: Option<&Edge<OpaqueCursor<C>, Fast<T>, EmptyFields>>| match e {
            Some(e) => out.str(&e.cursor.encode_cursor()),
            None => out.null(),
        };
        match field.name.node.as_str() {
            "hasPreviousPage" => out.bool(page.has_previous_page),
            "hasNextPage" => out.bool(page.has_next_page),
            "startCursor" => cursor(page.edges.first()),
            "endCursor" => cursor(page.edges.last()),
            _ => return None,
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::page::NewestCursor;

    #[test]
    fn first_defaults_caps_and_refuses_negatives() {
        assert_eq!(page_size(None).ok(), Some(20));
        assert_eq!(page_size(Some(0)).ok(), Some(0));
        assert_eq!(page_size(Some(500)).ok(), Some(100));
        let err = page_size(Some(-1)).expect_err("negative");
        assert_eq!(err.field(), Some("first"));
    }

    #[test]
    fn a_cursor_goes_round_and_a_foreign_one_is_refused() {
        let at = NewestCursor {
            created_at: chrono::DateTime::UNIX_EPOCH,
            id: uuid::Uuid::from_u128(7),
        };
        let page = Page {
            items: vec![1, 2],
            has_next: true,
        };
        let args = PageArgs::<NewestCursor>::parse(Some(2), None).expect("args");
        let conn: ConnectionOf<NewestCursor, i32> =
            args.connection(page, |_| at.clone(), |n| n * 10);
        assert!(!conn.has_previous_page && conn.has_next_page);
        assert_eq!(
            conn.edges.iter().map(|e| e.node).collect::<Vec<_>>(),
            [10, 20]
        );
        let text = conn.edges[0].cursor.encode_cursor();
        let again = PageArgs::<NewestCursor>::parse(None, Some(text)).expect("decodes");
        assert_eq!(again.after(), Some(&at));
        assert_eq!(again.first, 20);
        for bad in ["not-a-cursor", "", "eyJ4IjoxfQ"] {
            let err = PageArgs::<NewestCursor>::parse(None, Some(bad.into())).expect_err(bad);
            assert_eq!(err.field(), Some("after"), "{bad}");
        }
    }
}
