//! A stored answer ([`crate::responses::Answer`]) as an HTTP response: its gzip form for a
//! client that accepts gzip, its JSON otherwise, with the headers an executed answer gets.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::responses::Answer;

/// The `content-type` of every GraphQL answer (async-graphql-axum's, for cached ones too).
pub const CONTENT_TYPE: &str = "application/graphql-response+json";

/// The HTTP answer for a client whose request had `headers`: gzip when it accepts gzip and
/// the answer has a gzip form, the JSON otherwise. Either way it says that it varies with
/// `Accept-Encoding`, so a shared HTTP cache in front keeps the two apart, and carries the
/// answer's `ETag`.
pub fn response_for(answer: &Answer, headers: &HeaderMap) -> Response {
    let content_type = (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    let vary = (header::VARY, HeaderValue::from_static("accept-encoding"));
    let etag = HeaderValue::from_maybe_shared(answer.etag().clone())
        .unwrap_or_else(|_| HeaderValue::from_static("W/\"0\""));
    let etag = (header::ETAG, etag);
    match answer.gzip() {
        Some(gzip) if accepts_gzip(headers) => {
            let encoding = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            ([content_type, vary, encoding, etag], gzip.clone()).into_response()
        }
        _ => ([content_type, vary, etag], answer.json().clone()).into_response(),
    }
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
    use axum::body::Bytes;

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
    fn a_client_gets_gzip_only_when_it_accepts_it() {
        let answer = Answer::new(Bytes::from(vec![b'a'; 4096]));
        let gz = response_for(&answer, &with("gzip, br"));
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gz.headers()[header::VARY], "accept-encoding");
        let plain = response_for(&answer, &HeaderMap::new());
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(plain.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(plain.headers()[header::VARY], "accept-encoding");
        assert_eq!(plain.headers()[header::ETAG], gz.headers()[header::ETAG]);
    }
}
