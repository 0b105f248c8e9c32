//! Resolves plain objects without a future per field: a page of 50 products is ~1,000
//! fields, and async-graphql's per-field machinery (a boxed future, a task in a
//! `FuturesUnordered`, a context and a map insert per field) cost more than the fields.
//!
//! A [`Plain`] type computes each field it can from what it already holds, synchronously.
//! [`Fast`] resolves such a type with [`object`] when every selected field is one of those
//! and the selection is simple (fields only: no fragment, no directive, no response key
//! twice); anything else goes to async-graphql's own resolver, which then answers the whole
//! object. Both give the same answer (`tests/api/catalog.rs` compares them field by field).
//! The listing's whole page is one such object (its connection, edges and page info are
//! `Plain` too), so one [`Env`] serves the page and the objects answering one selection set
//! share its `Shape`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, Name, OutputType, Positioned, ServerResult, Value};

use crate::service::auth::Viewer;
use crate::state::AppState;

/// What plain fields may depend on besides their object (the viewer, the policy), and the
/// shapes of the objects answered so far.
pub struct Env<'a> {
    pub viewer: &'a Viewer,
    /// The lowest criterion score that passes curation.
    pub min_score: u8,
    /// Each selection set met (by address), with its [`Shape`] (None: not plain).
    shapes: RefCell<Vec<(usize, Option<Arc<Shape<'a>>>)>>,
}

impl<'a> Env<'a> {
    pub fn new(viewer: &'a Viewer, min_score: u8) -> Env<'a> {
        Env {
            viewer,
            min_score,
            shapes: RefCell::default(),
        }
    }

    /// The shape of `set`'s answers, worked out once for all the objects answering it.
    fn shape(&self, set: &'a SelectionSet) -> Option<Arc<Shape<'a>>> {
        let key = std::ptr::from_ref(set) as usize;
        if let Some((_, shape)) = self.shapes.borrow().iter().find(|(k, _)| *k == key) {
            return shape.clone();
        }
        let shape = Shape::of(set).map(Arc::new);
        self.shapes.borrow_mut().push((key, shape.clone()));
        shape
    }
}

/// An object whose fields, or some of them, are computed synchronously.
pub trait Plain {
    /// The GraphQL type's name, the answer to `__typename`.
    const TYPE: &'static str;

    /// The value of `field` (never `__typename`), or None when only the type's async-graphql
    /// resolver can answer it (a field that loads rows, or one that can fail).
    fn field<'a>(&self, env: &Env<'a>, field: &'a Field) -> Option<Value>;
}

/// The answer to one selection set, as an object with every response key in place and no
/// values yet. The objects of a list (a page's products, their SKUs) share it: each answer
/// starts as a copy, which keeps the keys' hashes, instead of hashing every key again.
struct Shape<'a> {
    fields: Vec<&'a Field>,
    empty: IndexMap<Name, Value>,
}

impl<'a> Shape<'a> {
    /// None when the selection is not plain fields: a fragment, a directive, a response key
    /// twice.
    fn of(set: &'a SelectionSet) -> Option<Shape<'a>> {
        let mut fields = Vec::with_capacity(set.items.len());
        let mut empty = IndexMap::with_capacity(set.items.len());
        for item in &set.items {
            let Selection::Field(field) = &item.node else {
                return None;
            };
            let field = &field.node;
            if !field.directives.is_empty()
                || empty
                    .insert(field.response_key().node.clone(), Value::Null)
                    .is_some()
            {
                return None;
            }
            fields.push(field);
        }
        Some(Shape { fields, empty })
    }

    /// `obj`'s answer, or None at the first field only async-graphql can answer.
    fn fill<T: Plain + ?Sized>(&self, obj: &T, env: &Env<'a>) -> Option<Value> {
        let mut map = self.empty.clone();
        for (slot, field) in map.values_mut().zip(&self.fields) {
            *slot = if field.name.node == "__typename" {
                Value::String(T::TYPE.to_owned())
            } else {
                obj.field(env, field)?
            };
        }
        Some(Value::Object(map))
    }
}

/// `obj`'s answer to selection `set`, or None at the first thing [`Plain::field`] leaves to
/// async-graphql.
pub fn object<'a, T: Plain + ?Sized>(
    obj: &T,
    env: &Env<'a>,
    set: &'a SelectionSet,
) -> Option<Value> {
    env.shape(set)?.fill(obj, env)
}

/// A list of plain objects, each answering `set`.
pub fn list<'a, 'b, T: Plain + 'b>(
    items: impl IntoIterator<Item = &'b T>,
    env: &Env<'a>,
    set: &'a SelectionSet,
) -> Option<Value> {
    let shape = env.shape(set)?;
    items
        .into_iter()
        .map(|item| shape.fill(item, env))
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
        let plain = ctx.data_opt::<Arc<AppState>>().and_then(|state| {
            let env = Env::new(
                ctx.data_opt::<Viewer>().unwrap_or(&ANONYMOUS),
                state.config.policy.min_criterion_score,
            );
            object(&self.0, &env, &ctx.item.node)
        });
        match plain {
            Some(value) => Ok(value),
            None => self.0.resolve(ctx, field).await,
        }
    }
}
