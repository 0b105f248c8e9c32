//! Resolves plain objects without a future per field: a page of 50 products is ~1,000
//! fields, and async-graphql's per-field machinery (a boxed future, a task in a
//! `FuturesUnordered`, a context and a map insert per field) cost more than the fields.
//!
//! A [`Plain`] type computes each field it can from what it already holds, synchronously.
//! [`Fast`] resolves such a type with [`object`] when every selected field is one of those
//! and the selection is simple (fields only: no fragment, no directive, no response key
//! twice); anything else goes to async-graphql's own resolver, which then answers the whole
//! object. Both give the same answer (`tests/api/catalog.rs` compares them field by field).

use std::borrow::Cow;
use std::sync::Arc;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};

use crate::service::auth::Viewer;
use crate::state::AppState;

/// What plain fields may depend on besides their object: the viewer, and the policy.
pub struct Env<'a> {
    pub viewer: &'a Viewer,
    /// The lowest criterion score that passes curation.
    pub min_score: u8,
}

/// An object whose fields, or some of them, are computed synchronously.
pub trait Plain {
    /// The GraphQL type's name, the answer to `__typename`.
    const TYPE: &'static str;

    /// The value of `field` (never `__typename`), or None when only the type's async-graphql
    /// resolver can answer it (a field that loads rows, or one that can fail).
    fn field(&self, env: &Env<'_>, field: &Field) -> Option<Value>;
}

/// `obj`'s answer to selection `set`, or None at the first thing [`Plain::field`] leaves to
/// async-graphql.
pub fn object<T: Plain + ?Sized>(obj: &T, env: &Env<'_>, set: &SelectionSet) -> Option<Value> {
    let mut map = IndexMap::with_capacity(set.items.len());
    for item in &set.items {
        let Selection::Field(field) = &item.node else {
            return None;
        };
        let field = &field.node;
        if !field.directives.is_empty() {
            return None;
        }
        let value = if field.name.node == "__typename" {
            Value::String(T::TYPE.to_owned())
        } else {
            obj.field(env, field)?
        };
        if map
            .insert(field.response_key().node.clone(), value)
            .is_some()
        {
            return None;
        }
    }
    Some(Value::Object(map))
}

/// A list of plain objects, each answering `set`.
pub fn list<'a, T: Plain + 'a>(
    items: impl IntoIterator<Item = &'a T>,
    env: &Env<'_>,
    set: &SelectionSet,
) -> Option<Value> {
    items
        .into_iter()
        .map(|item| object(item, env, set))
        .collect::<Option<Vec<_>>>()
        .map(Value::List)
}

/// `T` as the same GraphQL type, resolved by [`object`] when it can be and by `T`'s own
/// resolver otherwise.
pub struct Fast<T>(pub T);

impl<T: Plain + OutputType> OutputType for Fast<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        static ANONYMOUS: Viewer = Viewer::Anonymous;
        let env = ctx.data_opt::<Arc<AppState>>().map(|state| Env {
            viewer: ctx.data_opt::<Viewer>().unwrap_or(&ANONYMOUS),
            min_score: state.config.policy.min_criterion_score,
        });
        match env.and_then(|env| object(&self.0, &env, &ctx.item.node)) {
            Some(value) => Ok(value),
            None => self.0.resolve(ctx, field).await,
        }
    }
}
