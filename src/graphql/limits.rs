//! The query limits of SPEC §5 as one async-graphql extension: the pre-validation
//! [`guard`](super::guard) runs on the parsed document before async-graphql's own checks
//! (which expand fragments without memoisation), and the limit errors async-graphql raises
//! itself get stable `extensions.code`s. Also the cost of a connection for the complexity
//! limit: `first × child`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerError, ServerResult, Variables};

use super::catalog::{DEFAULT_PAGE, MAX_PAGE};
use super::guard;

/// Nesting async-graphql checks while parsing (fragments included); above the depth limit
/// so that a deep query gets the clearer `QUERY_TOO_DEEP`.
pub const MAX_RECURSIVE_DEPTH: usize = 32;
pub const MAX_DIRECTIVES_PER_FIELD: usize = 5;

/// Complexity of a connection field: its page size (`first`, default 20, capped at 100)
/// times the cost of one item.
pub fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let first = first.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE);
    (first as usize).max(1).saturating_mul(child_complexity)
}

/// The extension factory: the guard's limits and the depth limit.
pub struct QueryLimits {
    pub guard: guard::Limits,
    pub max_depth: usize,
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest {
            limits: self.guard,
            max_depth: self.max_depth,
            parsed: AtomicBool::new(false),
        })
    }
}

struct PerRequest {
    limits: guard::Limits,
    max_depth: usize,
    /// Whether the document parsed (errors without a code are then validation errors).
    parsed: AtomicBool,
}

/// The deepest field nesting of any operation, fragments expanded, not counting what lies
/// under `__schema` and `__type`: introspection's shape is fixed by the spec (GraphiQL's own
/// query nests `ofType` seven levels, 13 deep in all) and its cost is bounded by the guard's
/// selection limit and the parser's recursion limit, so schema tools keep working under a
/// depth limit meant for data. Call after [`guard::check`]: the expansion is then at most
/// the selection limit, so this plain recursion is bounded (and fragment cycles are gone).
fn depth_of(doc: &ExecutableDocument) -> usize {
    use async_graphql::parser::types::{Selection, SelectionSet};
    fn walk(doc: &ExecutableDocument, set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    if name == "__schema" || name == "__type" {
                        1
                    } else {
                        1 + walk(doc, &f.node.selection_set.node)
                    }
                }
                Selection::FragmentSpread(spread) => doc
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .map_or(0, |f| walk(doc, &f.node.selection_set.node)),
                Selection::InlineFragment(inline) => walk(doc, &inline.node.selection_set.node),
            })
            .max()
            .unwrap_or(0)
    }
    doc.operations
        .iter()
        .map(|(_, op)| walk(doc, &op.node.selection_set.node))
        .max()
        .unwrap_or(0)
}

/// A refusal as a GraphQL error carrying its code.
fn coded(message: String, code: &'static str) -> ServerError {
    let mut err = ServerError::new(message, None);
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    err
}

/// The code of an error async-graphql raised itself (it sets none).
fn code_of(message: &str, parsed: bool) -> &'static str {
    if message.starts_with("Query is nested too deep") {
        "QUERY_TOO_DEEP"
    } else if message.starts_with("Query is too complex") {
        "QUERY_TOO_COMPLEX"
    } else if message.starts_with("The recursion depth of the query") {
        "QUERY_TOO_DEEP"
    } else if message.starts_with("The number of directives on the field") {
        "TOO_MANY_DIRECTIVES"
    } else if !parsed {
        "GRAPHQL_PARSE_FAILED"
    } else {
        "GRAPHQL_VALIDATION_FAILED"
    }
}

#[async_trait::async_trait]
impl Extension for PerRequest {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let parsed = self.parsed.load(Ordering::Relaxed);
        for err in &mut response.errors {
            let ext = err.extensions.get_or_insert_with(Default::default);
            if ext.get("code").is_none() {
                ext.set("code", code_of(&err.message, parsed));
            }
        }
        response
    }

    /// The guard runs here, on the document `parsed_query` parses once (async-graphql reuses
    /// it): before async-graphql's own recursive-depth check, which runs while parsing and
    /// is as exponential on a fragment bomb as validation is.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let doc = request.parsed_query()?;
        guard::check(doc, &self.limits).map_err(|r| coded(r.message(), r.code()))?;
        let depth = depth_of(doc);
        if depth > self.max_depth {
            return Err(coded(
                format!(
                    "the query nests {depth} fields deep (limit {}; introspection excepted)",
                    self.max_depth
                ),
                "QUERY_TOO_DEEP",
            ));
        }
        self.parsed.store(true, Ordering::Relaxed);
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        self.parsed.store(true, Ordering::Relaxed);
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_costs_its_page_times_its_items() {
        assert_eq!(page_cost(None, 5), 100, "first defaults to 20");
        assert_eq!(page_cost(Some(50), 10), 500);
        assert_eq!(page_cost(Some(10_000), 10), 1_000, "first is capped at 100");
        assert_eq!(page_cost(Some(-3), 7), 7, "a nonsense first costs one item");
    }
}
