//! The key an answer is stored under: `resp:v2:<namespace>:<32 hex digits>` (the prefix is
//! the store's), two SipHash-1-3 runs with different seeds (std's `DefaultHasher`), salted
//! with a digest of the JWT secret so that nobody without it can craft two documents that
//! collide, over
//! - the query with every run of ignored tokens outside string literals (whitespace,
//!   commas, comments) replaced by one space, and trimmed ([`normalise`]);
//! - the operation name;
//! - the variables as canonical JSON (object keys sorted at every level);
//! - for a member's own answer, its owner: the member, its token's version and the month.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::config::Secret;

/// Seeds of the two hash runs that make a 128-bit key.
const SEEDS: [u64; 2] = [0x7075_7368_6861_6e64, 0x7265_7370_6f6e_7365];

/// Whose own answer a key is: the member, its token version and the month.
pub struct Owner<'a> {
    pub member: uuid::Uuid,
    pub token_version: i32,
    pub period: &'a str,
}

/// The digest of the JWT secret every key is salted with.
pub fn salt_of(secret: &Secret) -> u128 {
    let digest = |seed: u64| {
        let mut h = DefaultHasher::new();
        ("pushhand response cache salt", seed, secret.expose()).hash(&mut h);
        h.finish()
    };
    (u128::from(digest(SEEDS[0])) << 64) | u128::from(digest(SEEDS[1]))
}

/// The key of `req` (an own answer's also names its `owner`), salted with `salt`; `None`
/// if its variables do not serialise.
pub fn key(salt: u128, req: &async_graphql::Request, owner: Option<&Owner<'_>>) -> Option<u128> {
    let query = normalise(&req.query);
    let variables = serde_json::to_value(&req.variables).ok()?;
    let mut canonical = Vec::new();
    write_canonical(&variables, &mut canonical);
    let digest = |seed: u64| {
        let mut h = DefaultHasher::new();
        seed.hash(&mut h);
        salt.hash(&mut h);
        query.hash(&mut h);
        req.operation_name.hash(&mut h);
        canonical.hash(&mut h);
        if let Some(o) = owner {
            (o.member, o.token_version, o.period).hash(&mut h);
        }
        h.finish()
    };
    Some((u128::from(digest(SEEDS[0])) << 64) | u128::from(digest(SEEDS[1])))
}

/// The query with every run of ignored tokens (whitespace, line terminators, commas, the BOM,
/// comments) outside string literals replaced by one space, and trimmed. Two documents with
/// the same normal form are the same document to GraphQL. (A document whose strings do not
/// close may normalise oddly; it does not parse, so it is never cached.)
pub fn normalise(query: &str) -> Vec<u8> {
    #[derive(PartialEq)]
    enum State {
        Code,
        Str,
        Block,
        Comment,
    }
    let bytes = query.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut state = State::Code;
    let mut space = false;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        match state {
            State::Code => match bytes[i] {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                    space = true;
                    i += 1;
                }
                b'#' => {
                    space = true;
                    state = State::Comment;
                    i += 1;
                }
                _ if rest.starts_with("\u{feff}".as_bytes()) => {
                    space = true;
                    i += 3;
                }
                c => {
                    if space && !out.is_empty() {
                        out.push(b' ');
                    }
                    space = false;
                    if rest.starts_with(b"\"\"\"") {
                        out.extend_from_slice(b"\"\"\"");
                        state = State::Block;
                        i += 3;
                    } else {
                        if c == b'"' {
                            state = State::Str;
                        }
                        out.push(c);
                        i += 1;
                    }
                }
            },
            State::Str => {
                let c = bytes[i];
                out.push(c);
                i += 1;
                if c == b'\\' {
                    // The escaped character, whatever it is, never ends the string.
                    if let Some(next) = bytes.get(i) {
                        out.push(*next);
                        i += 1;
                    }
                } else if c == b'"' {
                    state = State::Code;
                }
            }
            State::Block => {
                if rest.starts_with(b"\\\"\"\"") {
                    out.extend_from_slice(b"\\\"\"\"");
                    i += 4;
                } else if rest.starts_with(b"\"\"\"") {
                    out.extend_from_slice(b"\"\"\"");
                    state = State::Code;
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            State::Comment => {
                if matches!(bytes[i], b'\n' | b'\r') {
                    state = State::Code;
                }
                i += 1;
            }
        }
    }
    out
}

/// JSON with object keys sorted at every level, so that variables sent in another order make
/// the same key.
fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing JSON into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(q: &str) -> String {
        String::from_utf8(normalise(q)).expect("UTF-8 in, UTF-8 out")
    }

    #[test]
    fn ignored_tokens_collapse_outside_strings_only() {
        assert_eq!(
            n("  query  Q {\n\tproducts(first: 5, sort: NEWEST) { edges { node { id } } }\r\n}  "),
            "query Q { products(first: 5 sort: NEWEST) { edges { node { id } } } }"
        );
        assert_eq!(n("{ a # a comment with \"quotes\n b }"), "{ a b }");
        assert_eq!(
            n(r#"{ p(s: "a  b,\"  c") { id } }"#),
            r#"{ p(s: "a  b,\"  c") { id } }"#
        );
        assert_ne!(n(r#"{ p(s: "a  b") }"#), n(r#"{ p(s: "a b") }"#));
        assert_eq!(
            n("{ p(s: \"\"\"x  \\\"\"\"  y\"\"\")   { id } }"),
            "{ p(s: \"\"\"x  \\\"\"\"  y\"\"\") { id } }"
        );
        assert_eq!(n("{ p(s: \"\") ,, { id } }"), "{ p(s: \"\") { id } }");
        assert_eq!(n("\u{feff}{ 名前 }"), "{ 名前 }");
    }

    #[test]
    fn documents_that_differ_in_ignored_tokens_share_a_key() {
        let salt = salt_of(&Secret::new("a secret of thirty-two characters!"));
        let a = async_graphql::Request::new("{ products(first: 5) { id } }");
        let b = async_graphql::Request::new("# listing\n  {  products(first: 5) ,\n { id }\t}  ");
        let c = async_graphql::Request::new("{ products(first: 6) { id } }");
        assert_eq!(key(salt, &a, None), key(salt, &b, None));
        assert_ne!(key(salt, &a, None), key(salt, &c, None));
        let other = salt_of(&Secret::new("another secret of thirty-two chars"));
        assert_ne!(key(salt, &a, None), key(other, &a, None), "salted");
        let owner = Owner {
            member: uuid::Uuid::nil(),
            token_version: 0,
            period: "2026-06",
        };
        assert_ne!(key(salt, &a, None), key(salt, &a, Some(&owner)));
    }

    #[test]
    fn canonical_variables_sort_keys_at_every_level() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[{"q":1,"p":2}],"x":"s"}}"#).expect("json");
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":"s","y":[{"p":2,"q":1}]},"b":1}"#).expect("json");
        let (mut ca, mut cb) = (Vec::new(), Vec::new());
        write_canonical(&a, &mut ca);
        write_canonical(&b, &mut cb);
        assert_eq!(ca, cb);
        assert_eq!(
            String::from_utf8(ca).expect("utf-8"),
            r#"{"a":{"x":"s","y":[{"p":2,"q":1}]},"b":1}"#
        );
    }
}
