//! The query limits of SPEC §5: the pre-validation [`guard`](super::guard) and the depth
//! limit, checked on the parsed document before async-graphql's own checks (which expand
//! fragments without memoisation); stable `extensions.code`s for the limit errors
//! async-graphql raises itself. What an operation costs is [`cost`](super::cost).

use async_graphql::ServerError;
use async_graphql::parser::types::ExecutableDocument;

use super::guard;

/// Nesting async-graphql checks while parsing (fragments included); above the depth limit
/// so that a deep query gets the clearer `QUERY_TOO_DEEP`.
pub const MAX_RECURSIVE_DEPTH: usize = 32;
pub const MAX_DIRECTIVES_PER_FIELD: usize = 5;

/// The guard's limits and the depth limit.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub guard: guard::Limits,
    pub max_depth: usize,
}

impl Limits {
    /// Refuses a parsed document that breaks a limit. Runs before async-graphql's own
    /// checks: its recursive-depth check and validation expand fragments without
    /// memoisation, and are as exponential on a fragment bomb as a naive walk.
    pub fn check(&self, doc: &ExecutableDocument) -> Result<(), ServerError> {
        guard::check(doc, &self.guard).map_err(|r| coded(r.message(), r.code()))?;
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
        Ok(())
    }
}

/// Gives the errors async-graphql raised itself on a parsed document (it sets no code)
/// their codes.
pub fn label(errors: &mut [ServerError]) {
    for err in errors {
        let ext = err.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", code_of(&err.message));
        }
    }
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
pub fn coded(message: String, code: &'static str) -> ServerError {
    let mut err = ServerError::new(message, None);
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    err
}

/// The code of an error async-graphql raised itself on a parsed document (it sets none).
fn code_of(message: &str) -> &'static str {
    if message.starts_with("Query is nested too deep") {
        "QUERY_TOO_DEEP"
    } else if message.starts_with("Query is too complex") {
        "QUERY_TOO_COMPLEX"
    } else if message.starts_with("The recursion depth of the query") {
        "QUERY_TOO_DEEP"
    } else if message.starts_with("The number of directives on the field") {
        "TOO_MANY_DIRECTIVES"
    } else {
        "GRAPHQL_VALIDATION_FAILED"
    }
}
