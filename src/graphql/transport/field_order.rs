//! Puts an answer's fields in the order the document asks for them (GraphQL spec §6.3,
//! "CollectFields": ordered). async-graphql 7 resolves an object's fields concurrently and
//! inserts each as it completes, so a field that waits on the database comes after a
//! `__typename` asked after it. Plain answers ([`super::plain`]) are written in order already
//! (they travel as text and are not walked); an object already in order is left as it is.

use async_graphql::Value;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Reorders `data`, the answer of the operation whose root selection set is `root`.
pub fn reorder(doc: &ExecutableDocument, root: &SelectionSet, data: &mut Value) {
    walk(doc, &[root], data);
}

fn walk(doc: &ExecutableDocument, sets: &[&SelectionSet], value: &mut Value) {
    match value {
        Value::List(items) => {
            for item in items {
                walk(doc, sets, item);
            }
        }
        Value::Object(map) => {
            let mut order: Vec<(&str, Vec<&SelectionSet>)> = Vec::new();
            for set in sets {
                collect(doc, set, &mut order);
            }
            let rank = |key: &str| {
                order
                    .iter()
                    .position(|(k, _)| *k == key)
                    .unwrap_or(usize::MAX)
            };
            let ranks: Vec<usize> = map.keys().map(|k| rank(k.as_str())).collect();
            if ranks.windows(2).any(|w| w[0] > w[1]) {
                map.sort_by(|a, _, b, _| rank(a.as_str()).cmp(&rank(b.as_str())));
            }
            for (key, children) in &order {
                if children.is_empty() {
                    continue;
                }
                if let Some(child) = map.get_mut(*key) {
                    walk(doc, children, child);
                }
            }
        }
        _ => {}
    }
}

/// The response keys `set` selects, in order (fragments expanded), each with the selection
/// sets below it (fields sharing a response key merge theirs).
fn collect<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    out: &mut Vec<(&'a str, Vec<&'a SelectionSet>)>,
) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.as_str();
                let below = &field.node.selection_set.node;
                let entry = match out.iter().position(|(k, _)| *k == key) {
                    Some(i) => &mut out[i].1,
                    None => {
                        out.push((key, Vec::new()));
                        &mut out.last_mut().expect("just pushed").1
                    }
                };
                if !below.items.is_empty() {
                    entry.push(below);
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                    collect(doc, &fragment.node.selection_set.node, out);
                }
            }
            Selection::InlineFragment(inline) => {
                collect(doc, &inline.node.selection_set.node, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_put_in_document_order_at_every_level() {
        let doc = async_graphql::parser::parse_query(
            "query { z: __typename ...F a { y x } } fragment F on Query { m }",
        )
        .expect("parses");
        let mut data: Value =
            serde_json::from_str::<serde_json::Value>(r#"{"a":[{"x":1,"y":2}],"m":3,"z":"Query"}"#)
                .ok()
                .and_then(|v| Value::from_json(v).ok())
                .expect("value");
        let root = &super::super::api::selected_operation(&doc, None)
            .expect("one operation")
            .selection_set
            .node;
        reorder(&doc, root, &mut data);
        assert_eq!(
            serde_json::to_string(&data).expect("json"),
            r#"{"z":"Query","m":3,"a":[{"y":2,"x":1}]}"#
        );
    }
}
