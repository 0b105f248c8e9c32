//! A stored answer: its JSON and, when that is worth it, the same JSON gzip-compressed once
//! when stored, which clients that accept gzip are sent instead (the HTTP side of that:
//! [`crate::http::answers`]), and the weak `ETag` of its content.
//!
//! Compressing a cached answer is paid once per stored answer, not once per request (answers
//! executed every time are compressed on the way out by the router's compression layer,
//! which leaves these alone: they already say `content-encoding`). A page of 50 products
//! (~24 KiB) compresses to under a third, and the bytes a hit writes are most of what it
//! costs; Redis keeps the gzip form alone.
//!
//! The tag is computed once from the JSON: it changes exactly when the answer does (a
//! catalog write bumps the cache's catalog version, and the answer then recomputed carries
//! a new tag if, and only if, its content changed).

use std::hash::{Hash, Hasher};
use std::io::{Read, Write};

use bytes::Bytes;

/// Smaller answers are not compressed: the gzip header and a deflate block cost more than
/// they save.
const GZIP_FROM: usize = 1024;

/// One answer as sent: the JSON, its gzip form when compressing it saved bytes, and its tag.
#[derive(Clone, Debug)]
pub struct Answer {
    json: Bytes,
    gzip: Option<Bytes>,
    etag: Bytes,
}

/// `W/"<hash><length>"` of the JSON (weak: the gzip and plain forms share it).
fn etag_of(json: &[u8]) -> Bytes {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut h);
    Bytes::from(format!("W/\"{:016x}{:x}\"", h.finish(), json.len()))
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

    /// The JSON.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The gzip form of the JSON, when it has one.
    pub fn gzip(&self) -> Option<&Bytes> {
        self.gzip.as_ref()
    }

    /// The weak entity tag, `W/"…"` (ASCII).
    pub fn etag(&self) -> &Bytes {
        &self.etag
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
}

fn compress(json: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 3),
        flate2::Compression::default(),
    );
    encoder.write_all(json).ok()?;
    encoder.finish().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(back.etag, answer.etag, "the tag is the content's");
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
}
