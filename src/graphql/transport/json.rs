//! JSON text of answers: the writer plain objects answer into ([`Json`]), and an HTTP
//! response's body with those answers spliced in verbatim ([`response_body`]).
//!
//! A plain answer (see [`super::plain`]) is written as JSON text from the start, instead of
//! being built as a tree of values, serialised, then freed: for a page of 50 products that
//! was ~1.35M instructions of the page's ~3.7M (callgrind). Over HTTP, where the body is
//! written by [`response_body`], the text travels through async-graphql as a [`Text`]
//! value, which the body writer copies as it is. Elsewhere (WebSocket operations, tests executing the schema) the text is
//! read back into a tree of values, so the answer is the same wherever it goes.

use async_graphql::Value;
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::write_decimal;

/// Request data saying that plain answers may travel as JSON text: set by the HTTP handler,
/// which writes bodies with [`response_body`].
#[derive(Clone, Copy, Debug)]
pub struct TextAnswers;

/// JSON text being written. Writing to memory cannot fail, and neither can serialising the
/// values these methods take (strings, numbers, values without maps keyed by non-strings):
/// their results are ignored.
#[derive(Debug, Default)]
pub struct Json(Vec<u8>);

impl Json {
    pub fn with_capacity(n: usize) -> Json {
        Json(Vec::with_capacity(n))
    }

    /// Bytes that are already JSON (or part of it).
    pub fn raw(&mut self, text: &[u8]) {
        self.0.extend_from_slice(text);
    }

    pub fn null(&mut self) {
        self.raw(b"null");
    }

    pub fn bool(&mut self, b: bool) {
        self.raw(if b { b"true" } else { b"false" });
    }

    /// A JSON string, escaped.
    pub fn str(&mut self, s: &str) {
        self.serialize(s);
    }

    /// A JSON string, or null.
    pub fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }

    /// The global ID of row `id` of type `kind` (a string that needs no escaping).
    pub fn id(&mut self, kind: Kind, id: Uuid) {
        self.0.push(b'"');
        ids::encode_to(kind, id, &mut self.0);
        self.0.push(b'"');
    }

    /// A decimal as the `Decimal` scalar answers it: a string of its digits ("10.00").
    pub fn decimal(&mut self, d: Decimal) {
        self.0.push(b'"');
        write_decimal(d, &mut self.0);
        self.0.push(b'"');
    }

    /// Any leaf or value as serde writes it (numbers, dates, enums as their names).
    pub fn serialize<T: Serialize + ?Sized>(&mut self, v: &T) {
        let _ = serde_json::to_writer(&mut self.0, v);
    }

    /// A JSON array of `items`, each written by `each`; None as soon as `each` gives up.
    pub fn array<I: IntoIterator>(
        &mut self,
        items: I,
        mut each: impl FnMut(I::Item, &mut Json) -> Option<()>,
    ) -> Option<()> {
        self.raw(b"[");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.raw(b",");
            }
            each(item, self)?;
        }
        self.raw(b"]");
        Some(())
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// A plain answer's JSON text on its way through async-graphql: carried as a
/// [`Value::Binary`], the one variant no field of this schema returns (no scalar of it
/// produces bytes: `json::tests::no_scalar_of_the_schema_answers_bytes` lists them), so that
/// [`response_body`] can tell it from every other value and copy it verbatim. Only this type
/// puts bytes into an answer, and only the body writer reads them.
pub struct Text;

impl Text {
    /// The value that carries `json` (JSON text, whole) to [`response_body`].
    pub fn value(json: Vec<u8>) -> Value {
        Value::Binary(json.into())
    }

    /// The JSON text `v` carries, if it is one.
    fn of(v: &Value) -> Option<&[u8]> {
        match v {
            Value::Binary(text) => Some(text),
            _ => None,
        }
    }
}

/// The body of `resp` as async-graphql-axum writes it (`data`, then `extensions` and `errors`
/// when there are any), except that a [`Value::Binary`] anywhere in `data` is JSON text
/// written by a plain answer and is copied verbatim.
pub fn response_body(resp: &async_graphql::Response) -> Vec<u8> {
    let mut out = Json::with_capacity(1024);
    out.raw(b"{\"data\":");
    value(&resp.data, &mut out);
    if !resp.extensions.is_empty() {
        out.raw(b",\"extensions\":");
        out.serialize(&resp.extensions);
    }
    if !resp.errors.is_empty() {
        out.raw(b",\"errors\":");
        out.serialize(&resp.errors);
    }
    out.raw(b"}");
    out.into_bytes()
}

fn value(v: &Value, out: &mut Json) {
    if let Some(text) = Text::of(v) {
        return out.raw(text);
    }
    match v {
        Value::List(items) => {
            out.array(items, |item, out| {
                value(item, out);
                Some(())
            });
        }
        Value::Object(map) => {
            out.raw(b"{");
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.raw(b",");
                }
                out.str(key);
                out.raw(b":");
                value(item, out);
            }
            out.raw(b"}");
        }
        leaf => out.serialize(leaf),
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{Name, Pos, ServerError};

    use super::*;

    fn object(entries: Vec<(&str, Value)>) -> Value {
        Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| (Name::new(k), v))
                .collect(),
        )
    }

    /// Without text answers in it, a body is byte for byte what serde writes for the response.
    #[test]
    fn a_body_is_what_async_graphql_writes() {
        let data = object(vec![
            ("s", Value::String("引号 \" and \\ and \n".into())),
            ("n", Value::Number(42.into())),
            (
                "f",
                Value::Number(async_graphql::Number::from_f64(1.5).expect("finite")),
            ),
            ("b", Value::Boolean(true)),
            ("z", Value::Null),
            ("e", Value::Enum(Name::new("FIVE_STAGES_PASSED"))),
            (
                "l",
                Value::List(vec![object(vec![("x", Value::Null)]), Value::List(vec![])]),
            ),
            ("o", object(vec![])),
        ]);
        let mut resp = async_graphql::Response::new(data.clone());
        assert_eq!(
            response_body(&resp),
            serde_json::to_vec(&resp).expect("serialises")
        );
        resp.errors
            .push(ServerError::new("no", Some(Pos { line: 1, column: 2 })));
        resp.extensions
            .insert("cost".into(), Value::Number(3.into()));
        let body = response_body(&resp);
        assert_eq!(body, serde_json::to_vec(&resp).expect("serialises"));
        let read: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(read["errors"][0]["message"], "no");
        assert_eq!(read["data"]["s"], "引号 \" and \\ and \n");
    }

    /// A text answer is spliced in as it is, wherever it sits.
    #[test]
    fn text_answers_are_copied_verbatim() {
        let page = br#"{"edges":[{"node":{"name":"\u5c0f"}}]}"#;
        let data = object(vec![
            ("products", Text::value(page.to_vec())),
            ("more", Value::List(vec![Text::value(b"[1,2]".to_vec())])),
        ]);
        let body = response_body(&async_graphql::Response::new(data));
        let expected = [
            &b"{\"data\":{\"products\":"[..],
            page,
            b",\"more\":[[1,2]]}}",
        ]
        .concat();
        assert_eq!(body, expected);
    }

    /// The text rides in `Value::Binary` because no field of the schema can answer bytes:
    /// its scalars are the built-in ones (strings, numbers, booleans, IDs) and these, none of
    /// which produces bytes (`Upload` is an input only: no field answers one). A new scalar
    /// must be checked for that before it joins the list.
    #[test]
    fn no_scalar_of_the_schema_answers_bytes() {
        let sdl = crate::graphql::sdl();
        let scalars: Vec<&str> = sdl
            .lines()
            .filter_map(|l| l.strip_prefix("scalar "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(scalars, ["DateTime", "Decimal", "JSON", "Upload"]);
    }

    #[test]
    fn leaves_are_written_as_json() {
        let mut out = Json::default();
        out.raw(b"[");
        out.str("a\"b");
        out.raw(b",");
        out.opt_str(None);
        out.raw(b",");
        out.bool(false);
        out.raw(b",");
        out.serialize(&-7i64);
        out.raw(b",");
        out.decimal(Decimal::new(-5, 2));
        out.raw(b",");
        let row = Uuid::now_v7();
        out.id(Kind::Sku, row);
        out.raw(b"]");
        let id = serde_json::to_string(&ids::encode(Kind::Sku, row).0).expect("json");
        assert_eq!(
            String::from_utf8(out.into_bytes()).expect("utf-8"),
            format!(r#"["a\"b",null,false,-7,"-0.05",{id}]"#)
        );
    }
}
