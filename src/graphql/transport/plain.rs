//! Resolves plain objects without a future per field: a page of 50 products is ~1,000
//! fields, and async-graphql's per-field machinery (a boxed future, a task in a
//! `FuturesUnordered`, a context and a map insert per field) cost more than the fields.
//!
//! A [`Plain`] type writes each field it can from what it already holds, synchronously, as
//! JSON text ([`Json`]). [`Fast`] resolves such a type with [`object`] when every selected
//! field is one of those and the selection is simple (fields only: no fragment, no
//! directive, no response key twice); anything else goes to async-graphql's own resolver,
//! which then answers the whole object. Both give the same answer (`tests/api/catalog.rs`
//! compares them field by field). The listing's whole page is one such object (its
//! connection, edges and page info are `Plain` too), so one [`Env`] serves the page and the
//! objects answering one selection set share its `Shape`: their keys, written once.
//!
//! Over HTTP the text is the answer (see [`super::json`]); elsewhere it is read back into
//! values.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};

pub use super::json::Json;
use super::json::TextAnswers;

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

    /// The environment of a resolver: the request's viewer and the app's policy.
    pub fn of(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<Env<'a>> {
        Ok(Env::new(
            crate::graphql::context::viewer(ctx)?,
            crate::graphql::context::state(ctx)?
                .config
                .policy
                .min_criterion_score,
        ))
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

    /// Writes the value of `field` (never `__typename`) to `out`, or returns None when only
    /// the type's async-graphql resolver can answer it (a field that loads rows, or one that
    /// can fail); what it wrote is then thrown away.
    fn field<'a>(&self, env: &Env<'a>, field: &'a Field, out: &mut Json) -> Option<()>;
}

/// A value a plain field writes: the same value its async-graphql resolver returns, written
/// as the resolver's answer would be. A field declared once with [`plain_object!`] gives its
/// value to both.
pub trait PlainValue {
    fn write(&self, out: &mut Json);
}

impl PlainValue for bool {
    fn write(&self, out: &mut Json) {
        out.bool(*self);
    }
}

impl PlainValue for i32 {
    fn write(&self, out: &mut Json) {
        out.serialize(self);
    }
}

impl PlainValue for i64 {
    fn write(&self, out: &mut Json) {
        out.serialize(self);
    }
}

impl PlainValue for str {
    fn write(&self, out: &mut Json) {
        out.str(self);
    }
}

impl PlainValue for String {
    fn write(&self, out: &mut Json) {
        out.str(self);
    }
}

impl<T: PlainValue + ?Sized> PlainValue for &T {
    fn write(&self, out: &mut Json) {
        (**self).write(out);
    }
}

impl<T: PlainValue> PlainValue for Option<T> {
    fn write(&self, out: &mut Json) {
        match self {
            Some(v) => v.write(out),
            None => out.null(),
        }
    }
}

impl<T: PlainValue> PlainValue for Vec<T> {
    fn write(&self, out: &mut Json) {
        let _ = out.array(self, |v, out| {
            v.write(out);
            Some(())
        });
    }
}

impl PlainValue for crate::graphql::scalars::Dec {
    fn write(&self, out: &mut Json) {
        out.decimal(self.0);
    }
}

impl PlainValue for chrono::DateTime<chrono::Utc> {
    fn write(&self, out: &mut Json) {
        out.serialize(&async_graphql::ScalarType::to_value(self));
    }
}

impl PlainValue for async_graphql::ID {
    fn write(&self, out: &mut Json) {
        out.str(&self.0);
    }
}

impl PlainValue for crate::graphql::ids::GlobalId {
    fn write(&self, out: &mut Json) {
        out.id(self.0, self.1);
    }
}

/// [`PlainValue`] for GraphQL enums: written as their names.
macro_rules! plain_enums {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::graphql::transport::plain::PlainValue for $t {
            fn write(&self, out: &mut $crate::graphql::transport::plain::Json) {
                out.serialize(&async_graphql::resolver_utils::enum_value(*self));
            }
        }
    )*};
}
pub(crate) use plain_enums;

/// Declares a GraphQL object whose plain fields are written once and answered by both
/// paths: the [`Plain`] impl of the plain type (answering a selection synchronously, as JSON
/// text) and the `#[Object]` impl of the API type (async-graphql's resolvers, for whatever
/// selection the plain path leaves to them). Each field is `name "graphqlName": Type =
/// value;`, where `value` reads the plain type's row (`r`) and the [`Env`] (`e`, the
/// viewer and the policy). `plain |s, field, out| { arms }` adds match arms only the plain
/// path has (relations answered from a page's rows, which their resolvers load instead);
/// `resolvers { fns }` adds the fields only async-graphql resolves. Doc comments on fields
/// and on the type become the schema's descriptions.
///
/// ```ignore
/// plain_object! {
///     /// A purchasable variant.
///     impl Sku => sku::Model as "Sku" {
///         |this| &this.0;
///         |r, e|
///         /// Opaque global ID.
///         id "id": GlobalId = GlobalId(Kind::Sku, r.id);
///     }
///     plain |s, field, out| {}
///     resolvers {}
/// }
/// ```
macro_rules! plain_object {
    (
        $(#[$meta:meta])*
        impl $obj:ty => $plain:ty as $name:literal {
            |$this:ident| $row:expr;
            |$r:ident, $e:ident|
            $(
                $(#[$fmeta:meta])*
                $field:ident $gql:literal: $ty:ty = $value:expr;
            )*
        }
        plain |$ps:ident, $pf:ident, $po:ident| { $($arm:tt)* }
        resolvers { $($rest:tt)* }
    ) => {
        impl $crate::graphql::transport::plain::Plain for $plain {
            const TYPE: &'static str = $name;

            #[allow(unused_variables, clippy::match_single_binding)]
            fn field<'a>(
                &self,
                $e: &$crate::graphql::transport::plain::Env<'a>,
                $pf: &'a async_graphql::parser::types::Field,
                $po: &mut $crate::graphql::transport::plain::Json,
            ) -> Option<()> {
                let $ps = self;
                match $pf.name.node.as_str() {
                    $(
                        $gql => {
                            let $r = self;
                            let value: $ty = $value;
                            $crate::graphql::transport::plain::PlainValue::write(&value, $po);
                        }
                    )*
                    $($arm)*
                    _ => return None,
                }
                Some(())
            }
        }

        $(#[$meta])*
        #[async_graphql::Object]
        impl $obj {
            $(
                $(#[$fmeta])*
                #[allow(unused_variables)]
                pub async fn $field(
                    &self,
                    ctx: &async_graphql::Context<'_>,
                ) -> async_graphql::Result<$ty> {
                    let $this = self;
                    let $r = $row;
                    let env = $crate::graphql::transport::plain::Env::of(ctx)?;
                    let $e = &env;
                    Ok($value)
                }
            )*
            $($rest)*
        }
    };
}
pub(crate) use plain_object;

/// How the answers to one selection set are written: its fields, and before each field's
/// value its key (`{"key":` for the first, `,"key":` for the others). The objects of a list (a
/// page's products, their SKUs) share it.
struct Shape<'a> {
    fields: Vec<&'a Field>,
    keys: Vec<Vec<u8>>,
}

impl<'a> Shape<'a> {
    /// None when the selection is not plain fields: a fragment, a directive, a response key
    /// twice (or no field at all).
    fn of(set: &'a SelectionSet) -> Option<Shape<'a>> {
        let mut fields: Vec<&'a Field> = Vec::with_capacity(set.items.len());
        let mut keys = Vec::with_capacity(set.items.len());
        let mut seen = std::collections::HashSet::with_capacity(set.items.len());
        for item in &set.items {
            let Selection::Field(field) = &item.node else {
                return None;
            };
            let field = &field.node;
            let key = &field.response_key().node;
            if !field.directives.is_empty() || !seen.insert(key.as_str()) {
                return None;
            }
            let mut text = Json::default();
            text.raw(if fields.is_empty() { b"{" } else { b"," });
            text.str(key);
            text.raw(b":");
            keys.push(text.into_bytes());
            fields.push(field);
        }
        (!fields.is_empty()).then_some(Shape { fields, keys })
    }

    /// Writes `obj`'s answer, or returns None at the first field only async-graphql can
    /// answer.
    fn fill<T: Plain + ?Sized>(&self, obj: &T, env: &Env<'a>, out: &mut Json) -> Option<()> {
        for (key, field) in self.keys.iter().zip(&self.fields) {
            out.raw(key);
            if field.name.node == "__typename" {
                out.str(T::TYPE);
            } else {
                obj.field(env, field, out)?;
            }
        }
        out.raw(b"}");
        Some(())
    }
}

/// Writes `obj`'s answer to selection `set`, or returns None at the first thing
/// [`Plain::field`] leaves to async-graphql.
pub fn object<'a, T: Plain + ?Sized>(
    obj: &T,
    env: &Env<'a>,
    set: &'a SelectionSet,
    out: &mut Json,
) -> Option<()> {
    env.shape(set)?.fill(obj, env, out)
}

/// Writes a list of plain objects, each answering `set`.
pub fn list<'a, 'b, T: Plain + 'b>(
    items: impl IntoIterator<Item = &'b T>,
    env: &Env<'a>,
    set: &'a SelectionSet,
    out: &mut Json,
) -> Option<()> {
    let shape = env.shape(set)?;
    out.array(items, |item, out| shape.fill(item, env, out))
}

/// `obj`'s answer to `set` as JSON text, or None as [`object`].
fn text<'a, T: Plain + ?Sized>(obj: &T, env: &Env<'a>, set: &'a SelectionSet) -> Option<Vec<u8>> {
    let mut out = Json::with_capacity(4096);
    object(obj, env, set, &mut out)?;
    Some(out.into_bytes())
}

/// `obj`'s answer to `set` as values, or None as [`object`] (for answers that do not travel
/// as text, and tests).
pub fn answer<'a, T: Plain + ?Sized>(
    obj: &T,
    env: &Env<'a>,
    set: &'a SelectionSet,
) -> Option<Value> {
    serde_json::from_slice(&text(obj, env, set)?).ok()
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
            if ctx.data_opt::<TextAnswers>().is_some() {
                text(&self.0, &env, &ctx.item.node).map(super::json::Text::value)
            } else {
                answer(&self.0, &env, &ctx.item.node)
            }
        });
        match plain {
            Some(value) => Ok(value),
            None => self.0.resolve(ctx, field).await,
        }
    }
}
