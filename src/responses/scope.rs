//! Which operations the response cache may answer, worked out once per document (the parse
//! memo keeps it beside the parsed document: [`crate::graphql::transport::api`]).
//!
//! - A **catalog answer** (an anonymous request's): a query every root field of which —
//!   fragment spreads and inline fragments at the root expanded — is one of
//!   [`ROOT_FIELDS`]: `products`, `notes`, `note`, `product`, `categories`, `regions`, `node`,
//!   `__typename`. Anything
//!   else — `me`, introspection, a root field added later — bypasses until it is listed
//!   there.
//! - A member's **own answer** (a signed-in request's): a query whose root selects only `me`
//!   (and `__typename`), and below it only what [`own_field`] lists, through fragments
//!   whose type condition is the type they are spread in.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};

/// The root fields an anonymous query may select and still be cached.
pub const ROOT_FIELDS: [&str; 8] = [
    "products",
    "notes",
    "note",
    "product",
    "categories",
    "regions",
    "node",
    "__typename",
];

/// What the cache may do with one operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cacheable {
    /// An anonymous request's answer may be a catalog answer.
    pub catalog: bool,
    /// A signed-in member's answer may be its own answer.
    pub own: bool,
}

impl Cacheable {
    /// Nothing: a document that does not parse or is refused, a mutation, a subscription.
    pub const NOTHING: Cacheable = Cacheable {
        catalog: false,
        own: false,
    };
}

/// What the cache may do with each operation of a document.
#[derive(Clone, Debug)]
pub enum Cacheability {
    Single(Cacheable),
    /// By operation name.
    Multiple(HashMap<String, Cacheable>),
}

impl Cacheability {
    /// Works out every operation of `doc`.
    pub fn of(doc: &ExecutableDocument) -> Cacheability {
        match &doc.operations {
            DocumentOperations::Single(op) => Cacheability::Single(cacheable(doc, &op.node)),
            DocumentOperations::Multiple(ops) => Cacheability::Multiple(
                ops.iter()
                    .map(|(name, op)| (name.to_string(), cacheable(doc, &op.node)))
                    .collect(),
            ),
        }
    }

    /// For the operation `name` selects, as execution selects it (the only operation needs
    /// no name); nothing when it selects none.
    pub fn operation(&self, name: Option<&str>) -> Cacheable {
        match (self, name) {
            (Cacheability::Single(c), _) => *c,
            (Cacheability::Multiple(ops), Some(name)) => {
                ops.get(name).copied().unwrap_or(Cacheable::NOTHING)
            }
            (Cacheability::Multiple(ops), None) if ops.len() == 1 => {
                ops.values().next().copied().unwrap_or(Cacheable::NOTHING)
            }
            (Cacheability::Multiple(_), None) => Cacheable::NOTHING,
        }
    }
}

fn cacheable(doc: &ExecutableDocument, op: &OperationDefinition) -> Cacheable {
    if op.ty != OperationType::Query {
        return Cacheable::NOTHING;
    }
    Cacheable {
        catalog: catalog_only(doc, &op.selection_set.node),
        own: own_only(doc, &op.selection_set.node),
    }
}

/// Whether every root field of `set`, fragments at the root level expanded (each once, so
/// cycles end), is in [`ROOT_FIELDS`]. An unknown fragment is not cacheable.
fn catalog_only(doc: &ExecutableDocument, set: &SelectionSet) -> bool {
    let mut stack = vec![set];
    let mut expanded = HashSet::new();
    while let Some(set) = stack.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(f) => {
                    if !ROOT_FIELDS.contains(&f.node.name.node.as_str()) {
                        return false;
                    }
                }
                Selection::InlineFragment(i) => stack.push(&i.node.selection_set.node),
                Selection::FragmentSpread(s) => {
                    let name = &s.node.fragment_name.node;
                    if expanded.insert(name.as_str()) {
                        match doc.fragments.get(name) {
                            Some(f) => stack.push(&f.node.selection_set.node),
                            None => return false,
                        }
                    }
                }
            }
        }
    }
    true
}

/// Whether the root `set` selects only the member's own views that member versions cover:
/// `me` (and `__typename`), and below it only what [`own_field`] lists, through fragments
/// whose type condition is the type they are spread in.
fn own_only(doc: &ExecutableDocument, set: &SelectionSet) -> bool {
    let mut stack = vec![(set, "Query")];
    let mut expanded = HashSet::new();
    while let Some((set, ty)) = stack.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    let children = &f.node.selection_set.node;
                    if name == "__typename" {
                        continue;
                    }
                    match own_field(ty, name) {
                        Some(Some(child)) => stack.push((children, child)),
                        Some(None) if children.items.is_empty() => {}
                        _ => return false,
                    }
                }
                Selection::InlineFragment(i) => match &i.node.type_condition {
                    Some(c) if c.node.on.node.as_str() != ty => return false,
                    _ => stack.push((&i.node.selection_set.node, ty)),
                },
                Selection::FragmentSpread(s) => {
                    let name = s.node.fragment_name.node.as_str();
                    let Some(f) = doc.fragments.get(name) else {
                        return false;
                    };
                    if f.node.type_condition.node.on.node.as_str() != ty {
                        return false;
                    }
                    if expanded.insert(name) {
                        stack.push((&f.node.selection_set.node, ty));
                    }
                }
            }
        }
    }
    true
}

/// The fields of a member's own views an own answer may hold, by parent type: `Some(None)`
/// for a leaf, `Some(Some(type))` for an object, `None` for anything else. What each shows
/// changes only with a change that bumps the member's version (see [`crate::responses`]):
/// its own member row, its earnings and balances, its team (bindings, roles and sales of
/// the members within three levels below), and the month. A field added here must be
/// covered by those bumps.
fn own_field(parent: &str, field: &str) -> Option<Option<&'static str>> {
    let object = |t: &'static str| Some(Some(t));
    match (parent, field) {
        ("Query", "me") => object("Member"),
        (
            "Member",
            "id" | "displayName" | "createdAt" | "email" | "phone" | "frozen" | "frozenReason"
            | "inviteCode" | "roles",
        ) => Some(None),
        ("Member", "earningsSummary") => object("EarningsSummary"),
        ("Member", "earnings") => object("EarningConnection"),
        ("Member", "teamStats") => object("TeamStats"),
        ("Member", "team") => object("MemberProfileConnection"),
        (
            "EarningsSummary",
            "available" | "lifetime" | "pending" | "reserved" | "thisMonth" | "withdrawn",
        ) => Some(None),
        ("EarningConnection", "edges") => object("EarningEdge"),
        ("EarningConnection", "nodes") | ("EarningEdge", "node") => object("Earning"),
        ("EarningEdge" | "MemberProfileEdge", "cursor") => Some(None),
        ("EarningConnection" | "MemberProfileConnection", "pageInfo") => object("PageInfo"),
        ("PageInfo", "endCursor" | "hasNextPage" | "hasPreviousPage" | "startCursor") => Some(None),
        (
            "Earning",
            "amount" | "createdAt" | "id" | "kind" | "level" | "settleAfter" | "settledAt"
            | "status",
        ) => Some(None),
        ("Earning", "explanation") => object("EarningExplanation"),
        (
            "EarningExplanation",
            "adjustsEarningId" | "baseAmount" | "bindingId" | "fixedPerUnit" | "level"
            | "policyVersion" | "rate" | "rule" | "shareLinkId" | "summary" | "uncappedAmount"
            | "units",
        ) => Some(None),
        ("TeamStats", "levels") => object("TeamLevelStats"),
        ("TeamStats", "newThisMonth" | "salesThisMonth" | "totalMembers") => Some(None),
        ("TeamLevelStats", "level" | "members" | "newThisMonth" | "salesThisMonth") => Some(None),
        ("MemberProfileConnection", "edges") => object("MemberProfileEdge"),
        ("MemberProfileConnection", "nodes") | ("MemberProfileEdge", "node") => {
            object("MemberProfile")
        }
        ("MemberProfile", "displayName" | "id" | "joinedAt" | "roles") => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the cache may do with `q`'s operation `name`.
    fn of(q: &str, name: Option<&str>) -> Cacheable {
        async_graphql::parser::parse_query(q)
            .map(|doc| Cacheability::of(&doc).operation(name))
            .unwrap_or(Cacheable::NOTHING)
    }

    #[test]
    fn only_catalog_queries_are_cacheable_as_catalog_answers() {
        let ok = |q: &str| of(q, None).catalog;
        assert!(ok(
            "{ products { edges { node { id } } } categories { id } __typename }"
        ));
        assert!(ok(
            "query { ...F ... { product(id: 1) { id } } } fragment F on Query { node(id: 1) { id } }"
        ));
        assert!(
            ok("fragment F on Query { ...F categories { id } } { ...F }"),
            "a cycle ends"
        );
        assert!(!ok("{ products { edges { node { id } } } me { id } }"));
        assert!(!ok("{ ... on Query { me { id } } }"));
        assert!(!ok(
            "{ ...F } fragment F on Query { curationQueue { edges { node { id } } } }"
        ));
        assert!(!ok("{ ...Missing }"));
        assert!(!ok("{ __schema { types { name } } }"));
        assert!(!ok("mutation { products }"));
        assert!(!ok("subscription { products }"));
        assert!(!ok("{ products "));
        assert!(
            !ok("query A { categories { id } } query B { me { id } }"),
            "no name given"
        );
        let two = "query A { categories { id } } query B { me { id } }";
        assert!(of(two, Some("A")).catalog);
        assert!(!of(two, Some("B")).catalog);
        assert!(of(two, Some("B")).own);
        assert_eq!(of(two, Some("C")), Cacheable::NOTHING);
        assert_eq!(
            of("query A { categories { id } }", None),
            of("query A { categories { id } }", Some("A")),
            "the only operation needs no name"
        );
    }

    #[test]
    fn only_own_views_within_the_list_are_cacheable_as_own() {
        let ok = |q: &str| of(q, None).own;
        assert!(ok(
            "{ me { id earningsSummary { pending } earnings(first: 5) { edges { node { amount explanation { summary } } } } } }"
        ));
        assert!(ok(
            "query Q { __typename me { ...T } } fragment T on Member { teamStats { levels { members } } t: team(level: 2) { nodes { id roles __typename } } }"
        ));
        assert!(ok("{ me { ... on Member { id } ... { displayName } } }"));
        assert!(
            ok("fragment F on Member { id ...F } { me { ...F } }"),
            "a cycle ends"
        );
        assert!(!ok(
            "{ me { earnings { edges { node { product { name } } } } } }"
        ));
        assert!(!ok("{ me { orders { edges { node { id } } } } }"));
        assert!(!ok("{ me { id } categories { id } }"));
        assert!(
            !ok("{ me { ...F } } fragment F on Query { me { id } }"),
            "wrong type condition"
        );
        assert!(!ok("{ me { ... on Node { id } } }"));
        assert!(!ok("{ me { ...Missing } }"));
        assert!(!ok("{ me { id { x } } }"));
        assert!(!ok("mutation { me { id } }"));
        assert!(!ok("{ me { id } "));
        assert!(!ok("{ product(id: 1) { id } }"));
    }
}
