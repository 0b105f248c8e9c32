//! What an operation costs (SPEC §5), in the model of Shopify's and GitHub's public APIs:
//!
//! - a scalar or enum field costs 0 (it is read with its object's row);
//! - an object, interface or union field costs 1 plus what it selects (a list without a page
//!   size, such as `skus` or `children`, costs as one object: its length is bounded by the
//!   data, not by the client);
//! - a connection (a field returning `…Connection`) costs 1, plus `first`
//!   times the cost of one item (what `edges { node }` or `nodes` select: the node's own 1
//!   and its fields), plus what it selects besides (`pageInfo` 1, `totalCount` 0); `first`
//!   defaults to 20 and is capped at 100, as the resolvers serve it, and a variable is read
//!   from the request's variables.
//!
//! So a 50-card product grid — `products(first: 50) { edges { node { id name … brand { … }
//! category { … } skus { … } curation { passed } } } pageInfo { … } }` — costs
//! 1 + 50 × 5 + 1 = 252 against the limit of 1,000, and a refusal says the cost and the limit.
//!
//! The cost is computed per request (variables change it) over a document the
//! [`guard`](super::guard) has already admitted, so the walk visits at most its selection
//! limit of fields. Field types come from the schema's own SDL, read once at start.
//! async-graphql's complexity counts every field as 1 and is not used.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use async_graphql::Variables;
use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet, Type, TypeDefinition, TypeKind, TypeSystemDefinition,
};
use async_graphql::{Name, Value};

use crate::graphql::pagination::{DEFAULT_PAGE, MAX_PAGE};

/// The field types of a schema, as far as cost needs them.
#[derive(Debug, Default)]
pub struct CostModel {
    /// Type name → field name → the field's named (innermost) type.
    fields: HashMap<String, HashMap<String, String>>,
    /// Types whose fields are composite (objects, interfaces, unions): selecting one costs 1.
    composite: HashSet<String>,
    /// The root types of queries, mutations and subscriptions.
    roots: [String; 3],
}

impl CostModel {
    /// Reads the schema's SDL (`Schema::sdl`). An SDL that does not parse gives a model that
    /// still costs by shape alone (a field with a selection set is an object).
    pub fn from_sdl(sdl: &str) -> CostModel {
        let mut model = CostModel {
            roots: ["Query".into(), "Mutation".into(), "Subscription".into()],
            ..CostModel::default()
        };
        let Ok(doc) = async_graphql::parser::parse_schema(sdl) else {
            return model;
        };
        for def in doc.definitions {
            match def {
                TypeSystemDefinition::Schema(s) => {
                    let s = s.node;
                    if let Some(q) = s.query {
                        model.roots[0] = q.node.to_string();
                    }
                    if let Some(m) = s.mutation {
                        model.roots[1] = m.node.to_string();
                    }
                    if let Some(s) = s.subscription {
                        model.roots[2] = s.node.to_string();
                    }
                }
                TypeSystemDefinition::Type(t) => model.add_type(t.node),
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        model
    }

    fn add_type(&mut self, t: TypeDefinition) {
        let name = t.name.node.to_string();
        let fields = match t.kind {
            TypeKind::Object(o) => o.fields,
            TypeKind::Interface(i) => i.fields,
            TypeKind::Union(_) => Vec::new(),
            TypeKind::Scalar | TypeKind::Enum(_) | TypeKind::InputObject(_) => return,
        };
        self.composite.insert(name.clone());
        let fields = fields
            .into_iter()
            .map(|f| (f.node.name.node.to_string(), named(&f.node.ty.node)))
            .collect();
        self.fields.insert(name, fields);
    }

    /// The cost of the operation `operation_name` selects in `doc` (0 when none is selected:
    /// execution then refuses the request itself).
    pub fn cost(
        &self,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> usize {
        self.cost_and_reads(doc, operation_name, variables).0
    }

    /// [`CostModel::cost`], and whether it read a variable (a cost that did not is the
    /// document's whatever the variables, and may be remembered with it).
    pub fn cost_and_reads(
        &self,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> (usize, bool) {
        let Some(op) = super::api::selected_operation(doc, operation_name) else {
            return (0, false);
        };
        let root = match op.ty {
            OperationType::Query => &self.roots[0],
            OperationType::Mutation => &self.roots[1],
            OperationType::Subscription => &self.roots[2],
        };
        let walk = Walk {
            model: self,
            doc,
            op,
            variables,
            read: Cell::new(false),
        };
        let cost = walk.set(Some(root), &op.selection_set.node);
        (cost, walk.read.get())
    }
}

/// The named type inside any list and non-null wrappers.
fn named(ty: &Type) -> String {
    match &ty.base {
        BaseType::Named(n) => n.to_string(),
        BaseType::List(inner) => named(inner),
    }
}

struct Walk<'a> {
    model: &'a CostModel,
    doc: &'a ExecutableDocument,
    op: &'a OperationDefinition,
    variables: &'a Variables,
    /// Whether a variable was read.
    read: Cell<bool>,
}

impl Walk<'_> {
    /// The cost of a selection set on type `on` (`None`: a type the model does not know,
    /// such as introspection's, costed by shape).
    fn set(&self, on: Option<&str>, set: &SelectionSet) -> usize {
        set.items.iter().fold(0usize, |sum, s| {
            let cost = match &s.node {
                Selection::Field(f) => self.field(on, &f.node),
                Selection::FragmentSpread(spread) => self
                    .doc
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .map_or(0, |f| {
                        let on = f.node.type_condition.node.on.node.as_str();
                        self.set(Some(on), &f.node.selection_set.node)
                    }),
                Selection::InlineFragment(inline) => {
                    let on = inline
                        .node
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.as_str())
                        .or(on);
                    self.set(on, &inline.node.selection_set.node)
                }
            };
            sum.saturating_add(cost)
        })
    }

    fn field(&self, on: Option<&str>, f: &Field) -> usize {
        let ty = on
            .and_then(|t| self.model.fields.get(t))
            .and_then(|fields| fields.get(f.name.node.as_str()))
            .map(String::as_str);
        let selects = !f.selection_set.node.items.is_empty();
        let composite = match ty {
            Some(t) => self.model.composite.contains(t),
            None => selects,
        };
        if !composite {
            return 0;
        }
        if !ty.is_some_and(|t| t.ends_with("Connection")) {
            return 1usize.saturating_add(self.set(ty, &f.selection_set.node));
        }
        // A connection: one item's cost times the page, plus what is selected once.
        let first = self.first(f);
        let mut once = 1usize;
        let mut item = 0usize;
        for s in &f.selection_set.node.items {
            match &s.node {
                Selection::Field(child) if is_items(&child.node) => {
                    let child_ty = ty
                        .and_then(|t| self.model.fields.get(t))
                        .and_then(|fields| fields.get(child.node.name.node.as_str()))
                        .map(String::as_str);
                    let per_item = if child.node.name.node == "nodes" {
                        1usize.saturating_add(self.set(child_ty, &child.node.selection_set.node))
                    } else {
                        // `edges`: the edge itself is free, its node costs 1 plus its fields.
                        self.set(child_ty, &child.node.selection_set.node)
                    };
                    item = item.saturating_add(per_item);
                }
                _ => {
                    let single = SelectionSet {
                        items: vec![s.clone()],
                    };
                    once = once.saturating_add(self.set(ty, &single));
                }
            }
        }
        once.saturating_add(first.saturating_mul(item))
    }

    /// The page a connection field asks for, as the resolvers serve it.
    fn first(&self, f: &Field) -> usize {
        let value = f
            .arguments
            .iter()
            .find(|(n, _)| n.node == "first")
            .and_then(|(_, v)| {
                v.node
                    .clone()
                    .into_const_with(|name| self.variable(&name).ok_or(()))
                    .ok()
            })
            .and_then(|v| as_i64(&v));
        let first = value.unwrap_or(i64::from(DEFAULT_PAGE));
        usize::try_from(first.clamp(0, i64::from(MAX_PAGE)))
            .unwrap_or(0)
            .max(1)
    }

    /// A variable's value in the request, else its default.
    fn variable(&self, name: &Name) -> Option<Value> {
        self.read.set(true);
        if let Some(v) = self.variables.get(name) {
            return Some(v.clone());
        }
        self.op
            .variable_definitions
            .iter()
            .find(|d| d.node.name.node == *name)
            .and_then(|d| d.node.default_value.as_ref())
            .map(|d| d.node.clone())
    }
}

/// `edges` and `nodes` are a connection's per-item selections.
fn is_items(f: &Field) -> bool {
    matches!(f.name.node.as_str(), "edges" | "nodes")
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = r#"
        type Query { products(first: Int, after: String): ProductConnection!
                     product(id: ID!): Product node(id: ID!): Node categories: [Category!]! }
        interface Node { id: ID! }
        type ProductConnection { edges: [ProductEdge!]! nodes: [Product!]! pageInfo: PageInfo!
                                 totalCount: Int! }
        type ProductEdge { cursor: String! node: Product! }
        type PageInfo { hasNextPage: Boolean! endCursor: String }
        type Product implements Node { id: ID! name: String! status: Status!
                        brand: Brand! skus: [Sku!]! }
        type Brand { name: String! }
        type Sku { price: String! }
        type Category { id: ID! children: [Category!]! }
        enum Status { PUBLISHED }
    "#;

    #[test]
    fn a_cost_says_whether_it_read_a_variable() {
        let model = CostModel::from_sdl(SDL);
        let reads = |query: &str| {
            let doc = async_graphql::parser::parse_query(query).expect("parses");
            model
                .cost_and_reads(
                    &doc,
                    None,
                    &Variables::from_json(serde_json::json!({ "n": 5 })),
                )
                .1
        };
        assert!(!reads(
            "query($id: ID!) { product(id: $id) { brand { name } } }"
        ));
        assert!(!reads("{ products(first: 5) { nodes { id } } }"));
        assert!(reads(
            "query($n: Int) { products(first: $n) { nodes { id } } }"
        ));
    }

    fn cost(query: &str, variables: serde_json::Value) -> usize {
        let model = CostModel::from_sdl(SDL);
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        model.cost(&doc, None, &Variables::from_json(variables))
    }

    #[test]
    fn scalars_are_free_objects_cost_one() {
        assert_eq!(
            cost(
                "{ product(id: 1) { id name status } }",
                serde_json::json!({})
            ),
            1
        );
        assert_eq!(
            cost(
                "{ product(id: 1) { brand { name } skus { price } } }",
                serde_json::json!({})
            ),
            3
        );
        assert_eq!(
            cost(
                "{ categories { children { children { id } } } }",
                serde_json::json!({})
            ),
            3,
            "a list without a page size costs as one object"
        );
        assert_eq!(cost("{ __typename }", serde_json::json!({})), 0);
    }

    #[test]
    fn a_connection_costs_its_page_times_one_item() {
        let grid = "{ products(first: 50) { edges { cursor node { id brand { name } skus { price } } } pageInfo { hasNextPage } totalCount } }";
        assert_eq!(cost(grid, serde_json::json!({})), 1 + 50 * 3 + 1);
        let nodes = "{ products(first: 10) { nodes { id } } }";
        assert_eq!(cost(nodes, serde_json::json!({})), 1 + 10);
        // `first` from a variable, its default, 20 when absent, and the cap of 100.
        let q = "query($n: Int = 7) { products(first: $n) { edges { node { id } } } }";
        assert_eq!(cost(q, serde_json::json!({ "n": 30 })), 1 + 30);
        assert_eq!(cost(q, serde_json::json!({})), 1 + 7);
        assert_eq!(
            cost(
                "{ products(first: 5000) { edges { node { id } } } }",
                serde_json::json!({})
            ),
            1 + 100
        );
        assert_eq!(
            cost(
                "{ products(first: -3) { edges { node { id } } } }",
                serde_json::json!({})
            ),
            1 + 1
        );
    }

    #[test]
    fn fragments_take_their_type_condition() {
        let q = "{ node(id: 1) { ... on Product { brand { name } } ...P } }
                 fragment P on Product { skus { price } }";
        assert_eq!(cost(q, serde_json::json!({})), 3);
        // Unknown types (introspection's) are costed by shape.
        assert_eq!(
            cost(
                "{ __schema { types { name fields { name } } } }",
                serde_json::json!({})
            ),
            3
        );
    }
}
