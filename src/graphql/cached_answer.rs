//! A cached answer's bytes: its JSON and, when that is worth it, the same JSON gzip-compressed
//! once when stored, which clients that accept gzip are sent instead.
//!
//! Compressing a cached answer is paid once per stored answer, not once per request (answers
//! executed every time are compressed on the way out by the router's compression layer, which
//! leaves these alone: they already say `content-encoding`). A page of 50 products (~24 KiB)
//! compresses to under a third, and the bytes a hit writes are most of what it costs.
//!
//! Every answer carries a weak `ETag` computed once from its JSON: it changes exactly when
//! the answer does (a catalog write bumps the cache's catalog version, and the answer then
//! recomputed carries a new tag if, and only if, its content changed).

use std::hash::{Hash, Hasher};
use std::io::{Read, Write};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// Smaller answers are not compressed: the gzip header and a deflate block cost more than
/// they save.
const GZIP_FROM: usize = 1024;

/// The `content-type` of every GraphQL answer (async-graphql-axum's, for cached ones too).
pub const CONTENT_TYPE: &str = "application/graphql-response+json";

/// One answer as sent: the JSON, and its gzip form when compressing it saved bytes.
#[derive(Clone, Debug)]
pub struct Answer {
    json: Bytes,
    gzip: Option<Bytes>,
    etag: HeaderValue,
}

/// `W/"<hash><length>"` of the JSON (weak: the gzip and plain forms share it).
fn etag_of(json: &[u8]) -> HeaderValue {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut h);
    HeaderValue::from_str(&format!("W/\"{:016x}{:x}\"", h.finish(), json.len()))
        .unwrap_or_else(|_| HeaderValue::from_static("W/\"0\""))
}

impl Answer {
    /// Compresses `json` if it is large enough for that to pay.
    pub fn new(json: Bytes) -> Answer {
        let gzip = (json.len() >= GZIP_FROM)
            .then(|| compress(&json))
            .flatten()
            .filter(|g| g.len() < json.len())
            .map(Bytes::from);
        let etag = etag_of(&json);
        Answer { json, gzip, etag }
    }

    /// `json` as it is, never compressed (an answer too large to store).
    pub fn uncompressed(json: Bytes) -> Answer {
        let etag = etag_of(&json);
        Answer {
            json,
            gzip: None,
            etag,
        }
    }

    /// How the answer is kept outside this process: `j` and the JSON, or `g` and the gzip form.
    pub fn to_stored(&self) -> Vec<u8> {
        let (tag, bytes) = match &self.gzip {
            Some(g) => (b'g', g),
            None => (b'j', &self.json),
        };
        let mut out = Vec::with_capacity(bytes.len() + 1);
        out.push(tag);
        out.extend_from_slice(bytes);
        out
    }

    /// Reads what [`Answer::to_stored`] wrote; `None` if it is damaged or inflates beyond
    /// `max_json` bytes.
    pub fn from_stored(stored: Bytes, max_json: usize) -> Option<Answer> {
        let (&tag, _) = stored.split_first()?;
        let body = stored.slice(1..);
        match tag {
            b'j' => Some(Answer {
                etag: etag_of(&body),
                json: body,
                gzip: None,
            }),
            b'g' => {
                let mut json = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .take(max_json as u64 + 1)
                    .read_to_end(&mut json)
                    .ok()?;
                (json.len() <= max_json).then(|| Answer {
                    etag: etag_of(&json),
                    json: Bytes::from(json),
                    gzip: Some(body),
                })
            }
            _ => None,
        }
    }

    /// Bytes held in memory, for cache weights.
    pub fn weight(&self) -> usize {
        self.json.len() + self.gzip.as_ref().map_or(0, Bytes::len)
    }

    /// The HTTP answer for a client whose request had `headers`: gzip when it accepts gzip
    /// and the answer has a gzip form, the JSON otherwise. Either way it says that it varies
    /// with `Accept-Encoding`, so a shared HTTP cache in front keeps the two apart, and
    /// carries the answer's `ETag`.
    pub fn into_response_for(self, headers: &HeaderMap) -> Response {
        let content_type = (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        let vary = (header::VARY, HeaderValue::from_static("accept-encoding"));
        let etag = (header::ETAG, self.etag);
        match self.gzip {
            Some(gzip) if accepts_gzip(headers) => {
                let encoding = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                ([content_type, vary, encoding, etag], gzip).into_response()
            }
            _ => ([content_type, vary, etag], self.json).into_response(),
        }
    }
}

fn compress(json: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 3),
        flate2::Compression::default(),
    );
    encoder.write_all(json).ok()?;
    encoder.finish().ok()
}

/// Whether `Accept-Encoding` lists `gzip` (or `*`) without `q=0` (RFC 9110 §12.5.3).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                let p = p.trim();
                let Some(q) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) else {
                    return false;
                };
                q.trim().parse::<f32>().map_or(true, |q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).expect("header"),
        );
        h
    }

    #[test]
    fn accept_encoding_is_read_as_rfc_9110_says() {
        assert!(accepts_gzip(&with("gzip")));
        assert!(accepts_gzip(&with("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("gzip; q=0.000")));
        assert!(!accepts_gzip(&with("br, deflate")));
        assert!(!accepts_gzip(&with("identity")));
        assert!(!accepts_gzip(&with("gzipx")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn large_answers_round_trip_through_their_stored_form() {
        let json = Bytes::from(format!(
            "{{\"data\":{{\"xs\":[{}]}}}}",
            vec!["\"abcdefgh\""; 400].join(",")
        ));
        let answer = Answer::new(json.clone());
        let gzip = answer
            .gzip
            .clone()
            .expect("a 4 KiB repetitive answer compresses");
        assert!(gzip.len() < json.len() / 4, "{} bytes", gzip.len());
        let back = Answer::from_stored(Bytes::from(answer.to_stored()), 1 << 20).expect("reads");
        assert_eq!(back.json, json);
        assert_eq!(back.gzip, Some(gzip));
        assert!(
            Answer::from_stored(Bytes::from(answer.to_stored()), json.len() - 1).is_none(),
            "an answer inflating beyond the bound is refused"
        );
        let small = Answer::new(Bytes::from_static(b"{\"data\":{\"__typename\":\"Query\"}}"));
        assert!(small.gzip.is_none());
        let back = Answer::from_stored(Bytes::from(small.to_stored()), 1 << 20).expect("reads");
        assert_eq!(back.json, small.json);
        assert!(Answer::from_stored(Bytes::from_static(b"x{}"), 100).is_none());
        assert!(Answer::from_stored(Bytes::from_static(b"gnot gzip"), 100).is_none());
        assert!(Answer::from_stored(Bytes::new(), 100).is_none());
    }

    #[test]
    fn a_client_gets_gzip_only_when_it_accepts_it() {
        let json = Bytes::from(vec![b'a'; 4096]);
        let answer = Answer::new(json);
        let gz = answer.clone().into_response_for(&with("gzip, br"));
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gz.headers()[header::VARY], "accept-encoding");
        let plain = answer.into_response_for(&HeaderMap::new());
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(plain.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(plain.headers()[header::VARY], "accept-encoding");
    }
}
