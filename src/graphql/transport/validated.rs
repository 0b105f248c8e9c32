//! A document is validated in full once; afterwards only its variables are.
//!
//! async-graphql checks every request's document against its 22 validation rules, whatever
//! it has seen before: on a product's detail page (~50 fields) that walk was a third of the
//! request's instructions (callgrind, `docs/performance.md`, #32), on a page of products and
//! a checkout preview a visible share too. The rules look at the document's text alone, but
//! one: `ArgumentsOfCorrectType` also checks the values the variables give arguments. So the
//! front door runs a document through the schema in async-graphql's `Strict` mode until one
//! answer shows its validation passed, remembers that with the parse
//! ([`super::api::Parsed`]), and from then on runs the same text and operation through a twin
//! schema in `Fast` mode (the same types and data; its validation keeps only the fragment
//! cycles, uploads and the cache-control, depth and complexity walks) — after checking here
//! that each variable's value fits the type the operation declares for it.
//!
//! The check is conservative: it says yes only where async-graphql's own
//! (`validation::utils::is_valid_input_value`, which is private) says valid, and anything it
//! is unsure of — a type it does not know, a variable given as `null` (the one place where the
//! declared type may be looser than the argument's: `$x: String = "a"` in a `String!`
//! position), a required variable missing — sends the request the strict way, which answers
//! exactly as before. The document's own rules need no second look:
//! `VariableInAllowedPosition` already held the declared types to the positions they fill.

use std::collections::HashSet;

use async_graphql::parser::types::OperationDefinition;
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{ObjectType, SubscriptionType, Value, Variables};

/// The schema's input types (input objects, enums, scalars with their checks), as
/// async-graphql registers them.
pub struct InputTypes {
    registry: Registry,
}

impl InputTypes {
    /// The types reachable from the roots `Q`, `M` and `S`.
    pub fn of<Q: ObjectType, M: ObjectType, S: SubscriptionType>() -> InputTypes {
        let mut registry = Registry::default();
        Q::create_type_info(&mut registry);
        M::create_type_info(&mut registry);
        S::create_type_info(&mut registry);
        InputTypes { registry }
    }

    /// Whether every variable `op` declares has a value that fits its declared type (or is
    /// left out and may be).
    pub fn fit(&self, op: &OperationDefinition, variables: &Variables) -> bool {
        op.variable_definitions.iter().all(|def| {
            let def = &def.node;
            match variables.get(&def.name.node) {
                // async-graphql reads a missing variable as its default (checked with the
                // document) or as absent; a required one missing is left to the strict way.
                None => def.default_value.is_some() || def.var_type.node.nullable,
                Some(Value::Null) => false,
                Some(value) => self.valid(&def.var_type.node.to_string(), value),
            }
        })
    }

    /// `value` is valid input for the type written `ty` (`[ID!]!`, `PlaceOrderInput`, …):
    /// async-graphql's rule, as a yes or no.
    fn valid(&self, ty: &str, value: &Value) -> bool {
        match MetaTypeName::create(ty) {
            MetaTypeName::NonNull(inner) => {
                !matches!(value, Value::Null) && self.valid(inner, value)
            }
            MetaTypeName::List(inner) => match value {
                Value::List(items) => items.iter().all(|item| self.valid(inner, item)),
                Value::Null => true,
                // One value where a list is expected is a list of one.
                other => self.valid(inner, other),
            },
            MetaTypeName::Named(name) => {
                if matches!(value, Value::Null) {
                    return true;
                }
                match self.registry.types.get(name) {
                    Some(MetaType::Scalar { is_valid, .. }) => {
                        is_valid.as_ref().is_none_or(|is_valid| is_valid(value))
                    }
                    Some(MetaType::Enum { enum_values, .. }) => match value {
                        Value::Enum(v) => enum_values.contains_key(v.as_str()),
                        Value::String(v) => enum_values.contains_key(v.as_str()),
                        _ => false,
                    },
                    Some(MetaType::InputObject {
                        input_fields,
                        oneof,
                        ..
                    }) => {
                        let Value::Object(fields) = value else {
                            return false;
                        };
                        if *oneof
                            && (fields.len() != 1
                                || fields.values().any(|v| matches!(v, Value::Null)))
                        {
                            return false;
                        }
                        let mut unknown: HashSet<&str> =
                            fields.keys().map(|k| k.as_str()).collect();
                        let known = input_fields.values().all(|field| {
                            unknown.remove(field.name.as_str());
                            match fields.get(field.name.as_str()) {
                                Some(v) => self.valid(&field.ty, v),
                                None => {
                                    !MetaTypeName::create(&field.ty).is_non_null()
                                        || field.default_value.is_some()
                                }
                            }
                        });
                        known && unknown.is_empty()
                    }
                    // Not an input type, or unknown here: the strict way decides.
                    _ => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::{Mutation, Query, schema::live::Subscription};

    fn types() -> InputTypes {
        InputTypes::of::<Query, Mutation, Subscription>()
    }

    fn op(doc: &str) -> OperationDefinition {
        let doc = async_graphql::parser::parse_query(doc).expect("parses");
        match doc.operations {
            async_graphql::parser::types::DocumentOperations::Single(op) => op.node,
            async_graphql::parser::types::DocumentOperations::Multiple(_) => {
                unreachable!("one operation")
            }
        }
    }

    fn vars(json: serde_json::Value) -> Variables {
        Variables::from_json(json)
    }

    #[test]
    fn values_that_fit_their_declared_types_pass() {
        let t = types();
        let detail = op("query($id: ID!) { product(id: $id) { name } }");
        assert!(t.fit(&detail, &vars(serde_json::json!({ "id": "UHJvZHVjdDox" }))));
        let page = op(
            "query($n: Int, $after: String) { products(first: $n, after: $after) { nodes { name } } }",
        );
        assert!(
            t.fit(&page, &vars(serde_json::json!({ "n": 5 }))),
            "an optional one left out"
        );
        assert!(t.fit(&page, &vars(serde_json::json!({ "n": 5, "after": "x" }))));
    }

    #[test]
    fn values_that_do_not_fit_go_the_strict_way() {
        let t = types();
        let detail = op("query($id: ID!) { product(id: $id) { name } }");
        assert!(
            !t.fit(&detail, &vars(serde_json::json!({}))),
            "required, missing"
        );
        assert!(
            !t.fit(&detail, &vars(serde_json::json!({ "id": null }))),
            "null"
        );
        assert!(
            !t.fit(&detail, &vars(serde_json::json!({ "id": [1.5] }))),
            "a list for an ID"
        );
        let page = op("query($n: Int) { products(first: $n) { nodes { name } } }");
        assert!(
            !t.fit(&page, &vars(serde_json::json!({ "n": "five" }))),
            "a string for an Int"
        );
        assert!(
            !t.fit(&page, &vars(serde_json::json!({ "n": null }))),
            "null, even where allowed"
        );
        let unknown = op("query($x: NoSuchInput!) { __typename }");
        assert!(
            !t.fit(&unknown, &vars(serde_json::json!({ "x": {} }))),
            "a type not known here"
        );
    }

    #[test]
    fn input_objects_and_enums_are_checked_field_by_field() {
        let t = types();
        let add =
            op("mutation($s: ID!, $q: Int!) { addToCart(skuId: $s, quantity: $q) { subtotal } }");
        assert!(t.fit(&add, &vars(serde_json::json!({ "s": "x", "q": 2 }))));
        assert!(!t.fit(&add, &vars(serde_json::json!({ "s": "x", "q": 2.5 }))));
        // An input object: fields known and typed, required ones present.
        let Some(MetaType::InputObject { input_fields, .. }) = t.registry.types.get("AddressInput")
        else {
            panic!("AddressInput is an input object of the schema");
        };
        let required: Vec<&str> = input_fields
            .values()
            .filter(|f| MetaTypeName::create(&f.ty).is_non_null() && f.default_value.is_none())
            .map(|f| f.name.as_str())
            .collect();
        assert!(!required.is_empty());
        assert!(
            !t.valid("AddressInput!", &Value::Object(Default::default())),
            "required fields missing"
        );
        let mut with_unknown = async_graphql::indexmap::IndexMap::new();
        with_unknown.insert(async_graphql::Name::new("noSuchField"), Value::from(1));
        assert!(
            !t.valid("AddressInput", &Value::Object(with_unknown)),
            "an unknown field"
        );
        assert!(t.valid("OrderStatus", &Value::String("PAID".into())));
        assert!(!t.valid("OrderStatus", &Value::String("NOT_A_STATUS".into())));
        assert!(!t.valid("OrderStatus", &Value::from(3)));
    }
}
